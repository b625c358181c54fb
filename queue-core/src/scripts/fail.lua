-- fail.lua: a job failed: move it from the processing list to the retry set or the dead set.
-- KEYS[1] processing list    KEYS[2] retry set    KEYS[3] dead set    KEYS[4] status hash
-- KEYS[5] stat:processed     KEYS[6] stat:failed  KEYS[7] stat:processed:<day>
-- KEYS[8] stat:failed:<day>
-- ARGV[1] raw job as fetched     ARGV[2] rewritten job (error fields set)
-- ARGV[3] 'retry' or 'dead'      ARGV[4] retry delay (s)     ARGV[5] clock offset (ms, tests)
-- ARGV[6] '1' tracked / '0'      ARGV[7] error message       ARGV[8] status ttl alive (s)
-- ARGV[9] status ttl finished (s)    ARGV[10] dead set max size    ARGV[11] dead set max age (s)
-- ARGV[12] ttl (s) of the daily counters
-- Returns: the score (epoch s) of the retry or death as a string; 0 when the job is no
-- longer in the processing list (another worker owns it now): nothing is written.
-- Times come from Redis's clock, shared by every dyno.
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[5]) / 1000
local score
if ARGV[3] == 'retry' then
  score = string.format('%.6f', now + tonumber(ARGV[4]))
  redis.call('ZADD', KEYS[2], score, ARGV[2])
else
  score = string.format('%.6f', now)
  redis.call('ZADD', KEYS[3], score, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%.6f', now - tonumber(ARGV[11])))
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[10]) + 1))
end
if ARGV[6] == '1' then
  if ARGV[3] == 'retry' then
    redis.call('HSET', KEYS[4], 'state', 'retrying', 'error', ARGV[7], 'run_at', score)
    redis.call('EXPIRE', KEYS[4], ARGV[8])
  else
    redis.call('HSET', KEYS[4], 'state', 'dead', 'error', ARGV[7], 'finished_at', score)
    redis.call('EXPIRE', KEYS[4], ARGV[9])
  end
  redis.call('HINCRBY', KEYS[4], 'rev', 1)
end
redis.call('INCR', KEYS[5])
redis.call('INCR', KEYS[6])
redis.call('INCR', KEYS[7])
redis.call('INCR', KEYS[8])
redis.call('EXPIRE', KEYS[7], ARGV[12])
redis.call('EXPIRE', KEYS[8], ARGV[12])
return score
