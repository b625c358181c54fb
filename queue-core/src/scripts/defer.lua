-- defer.lua: put a job that may not run yet (its class is at its concurrency limit) back into
-- the schedule set for a short while, without counting a failure or a retry.
-- KEYS[1] processing list    KEYS[2] schedule set    KEYS[3] status hash
-- ARGV[1] raw job as fetched    ARGV[2] job to schedule (without enqueued_at)    ARGV[3] delay (ms)
-- Returns: 1 deferred; 0 the job was no longer in the processing list.
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end
local t = redis.call('TIME')
local at = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[3]) / 1000
local score = string.format('%.6f', at)
redis.call('ZADD', KEYS[2], score, ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'state', 'scheduled', 'run_at', score)
  redis.call('HINCRBY', KEYS[3], 'rev', 1)
end
return 1
