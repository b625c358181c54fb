-- cancel.lua: cancel a job: one that has not started is skipped by the worker; a running one
-- is told to stop.
-- KEYS[1] status hash of the job
-- ARGV[1] now (epoch seconds)    ARGV[2] status ttl (s) after a terminal state
-- ARGV[3] status channel    ARGV[4] wake channel (every worker process listens)
-- ARGV[5] notice of a running job's cancel, followed by its id, on the wake channel
-- ARGV[6] the job id
-- Returns: 1 cancelled before it started; 2 running: its record says cancelled and the worker
-- holding it was told (it ends the job; a job that still returns success is recorded as
-- succeeded, since its work was done); 0 no record (or a key of another type), or the job
-- already finished.
-- The record must outlive the job's wait, however long: a vanished record would let the
-- job run. So it loses its expiry here and keeps the retention as `retention`; whichever
-- script drops the job (the worker's ack of a skipped job, fail, promote, requeue, defer)
-- then applies it (prelude.lua's expire_cancelled). A running job's record says cancelled at
-- once, so that however the job leaves its worker (failure, shutdown, a crash and the
-- reaper), it does not run again: fail and requeue drop it, start.lua skips it.
-- Every value is read and checked before the first write, so the change lands whole.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  return 0
end
local record = redis.call('HMGET', KEYS[1], 'state', 'rev', 'watched_until')
local state = record[1]
local running = state == 'running'
if running or state == 'queued' or state == 'scheduled' or state == 'retrying' then
  -- A queued record is written without `rev`, which means 1, as does an unreadable one
  -- (status::read_rev): the change makes it 2.
  local rev = next_rev(record[2])
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1],
    'rev', string.format('%d', rev), 'retention', ARGV[2])
  redis.call('PERSIST', KEYS[1])
  announce(ARGV[3], KEYS[1], rev, record[3])
  if running then
    redis.call('PUBLISH', ARGV[4], ARGV[5] .. ARGV[6])
    return 2
  end
  return 1
end
return 0
