-- cancel.lua: mark a job that has not started yet as cancelled; the worker skips it.
-- KEYS[1] status hash of the job
-- ARGV[1] now (epoch seconds)    ARGV[2] status ttl (s) after a terminal state
-- ARGV[3] status channel
-- Returns: 1 cancelled; 0 no record (or a key of another type), or the job is running or
-- already finished.
-- The record must outlive the job's wait, however long: a vanished record would let the
-- job run. So it loses its expiry here and keeps the retention as `retention`; whichever
-- script drops the job (the worker's ack of a skipped job, promote, requeue, defer, fail)
-- then applies it (prelude.lua's expire_cancelled).
-- Every value is read and checked before the first write, so the change lands whole.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  return 0
end
local record = redis.call('HMGET', KEYS[1], 'state', 'rev', 'watched_until')
local state = record[1]
if state == 'queued' or state == 'scheduled' or state == 'retrying' then
  -- A queued record is written without `rev`, which means 1, as does an unreadable one
  -- (status::read_rev): the change makes it 2.
  local rev = next_rev(record[2])
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1],
    'rev', string.format('%d', rev), 'retention', ARGV[2])
  redis.call('PERSIST', KEYS[1])
  announce(ARGV[3], KEYS[1], rev, record[3])
  return 1
end
return 0
