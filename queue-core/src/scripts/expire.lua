-- expire.lua: drop a taken job that was not started by its deadline, with status `expired`.
-- KEYS[1] processing list    KEYS[2] status hash
-- ARGV[1] raw job as fetched    ARGV[2] status ttl (s) after a terminal state
-- ARGV[3] status channel    ARGV[4] the job's deadline (epoch s)
-- ARGV[5] added to Redis's clock (ms; tests shift time with it, 0 otherwise)
-- Returns: 1 expired; 0 the job was no longer in the processing list (nothing written);
-- 2 its record says cancelled: dropped as cancelled; 3 the deadline has not passed on
-- Redis's clock (nothing written: the job runs).
-- The deadline is judged here, on the clock every dyno shares, not on the taking worker's:
-- a dyno whose clock is minutes off must neither drop jobs early nor run them late.
-- Order: reads and checks (the deadline, held_job), the record, then the removal from the
-- list last; a record of another type is left as it is and the job still goes.
if now_secs() + tonumber(ARGV[5]) / 1000 < tonumber(ARGV[4]) then
  return 3
end
local held, status, rev, watched = held_job(KEYS[1], ARGV[1], KEYS[2])
if held == 'gone' then
  return 0
elseif held == 'cancelled' then
  return 2
end
-- LTRIM 0 -1 changes nothing; as the first write it is one Redis allows at maxmemory.
redis.call('LTRIM', KEYS[1], 0, -1)
if status == 'hash' then
  redis.call('HSET', KEYS[2], 'state', 'expired', 'finished_at', string.format('%.6f', now_secs()),
    'rev', string.format('%d', rev))
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  announce(ARGV[3], KEYS[2], rev, watched)
end
redis.call('LREM', KEYS[1], -1, ARGV[1])
return 1
