-- defer.lua: put a job back into a sorted set for later without counting a failure or using
-- up a retry: a job whose class is at its concurrency limit (into `schedule`), or a job of a
-- class this worker does not know, during a deploy (into `retry`, with its error fields).
-- KEYS[1] processing list    KEYS[2] schedule or retry set    KEYS[3] status hash
-- ARGV[1] raw job as fetched    ARGV[2] job to store (without enqueued_at)    ARGV[3] delay (ms)
-- ARGV[4] status state to show ('scheduled' or 'retrying')    ARGV[5] error ('' for none)
-- Returns: 1 deferred; 0 the job was no longer in the processing list (nothing written);
-- 2 its status record says cancelled: the job is dropped instead.
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end
if redis.call('HGET', KEYS[3], 'state') == 'cancelled' then
  return 2
end
local t = redis.call('TIME')
local at = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[3]) / 1000
local score = string.format('%.6f', at)
redis.call('ZADD', KEYS[2], score, ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'state', ARGV[4], 'run_at', score)
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[3], 'error', ARGV[5])
  end
  redis.call('HINCRBY', KEYS[3], 'rev', 1)
end
return 1
