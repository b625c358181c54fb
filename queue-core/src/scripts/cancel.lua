-- cancel.lua: mark a job that has not started yet as cancelled; the worker skips it.
-- KEYS[1] status hash of the job
-- ARGV[1] now (epoch seconds)    ARGV[2] status ttl (s) after a terminal state
-- Returns: 1 cancelled; 0 no record, or the job is running or already finished.
-- The record must outlive the job's run time: the scheduler drops a job whose record says
-- cancelled, and a vanished record would let it run.
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'scheduled' or state == 'retrying' then
  local ttl = tonumber(ARGV[2])
  local run_at = tonumber(redis.call('HGET', KEYS[1], 'run_at') or '')
  if run_at and run_at > tonumber(ARGV[1]) then
    ttl = ttl + math.ceil(run_at - tonumber(ARGV[1]))
  end
  -- A queued record is written without `rev`, which means 1: the change makes it 2.
  redis.call('HSETNX', KEYS[1], 'rev', 1)
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'rev', 1)
  redis.call('EXPIRE', KEYS[1], ttl)
  return 1
end
return 0
