-- schedule.lua: put one job into the schedule set, idempotently on its job id.
-- KEYS[1] schedule sorted set    KEYS[2] status hash of the job
-- ARGV[1] job JSON    ARGV[2] '1' to track status, '0' not    ARGV[3] status ttl (s)
-- ARGV[4] run-at in epoch seconds, or '' to use ARGV[5]
-- ARGV[5] delay in ms, added to Redis's own clock (so dynos' clocks do not matter)
-- ARGV[6..] status record: field, value, ...
-- Returns: the run-at score (string) when scheduled; 0 when the id already exists.
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local at = ARGV[4]
if at == '' then
  local t = redis.call('TIME')
  at = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[5]) / 1000)
end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[2], 'run_at', at, unpack(ARGV, 6))
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('ZADD', KEYS[1], at, ARGV[1])
return at
