-- cancel.lua: mark a job that has not started yet as cancelled; the worker skips it.
-- KEYS[1] status hash of the job
-- ARGV[1] now (epoch seconds)    ARGV[2] status ttl (s) after a terminal state
-- Returns: 1 cancelled; 0 no record (or a key of another type), or the job is running or
-- already finished.
-- The record must outlive the job's run time: the scheduler drops a job whose record says
-- cancelled, and a vanished record would let it run.
-- Every value is read and checked before the one write, so the change lands whole.
-- Longest record lifetime (s), about ten years: far beyond any run time, and an EXPIRE
-- argument Redis always accepts.
local MAX_TTL = 315360000
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  return 0
end
local record = redis.call('HMGET', KEYS[1], 'state', 'run_at', 'rev')
local state = record[1]
if state == 'queued' or state == 'scheduled' or state == 'retrying' then
  local now = tonumber(ARGV[1])
  local ttl = tonumber(ARGV[2])
  local run_at = tonumber(record[2] or '')
  -- `run_at ~= run_at` is NaN.
  if run_at and run_at == run_at and run_at > now then
    ttl = math.min(MAX_TTL, ttl + math.ceil(math.min(run_at - now, MAX_TTL)))
  end
  -- A queued record is written without `rev`, which means 1, as does an unreadable one
  -- (status::read_rev): the change makes it 2.
  local rev = next_rev(record[3])
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1],
    'rev', string.format('%d', rev))
  redis.call('EXPIRE', KEYS[1], string.format('%d', ttl))
  return 1
end
return 0
