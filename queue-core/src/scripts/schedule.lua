-- schedule.lua: put one job into the schedule set, idempotently on its job id.
-- KEYS[1] schedule sorted set    KEYS[2] status hash of the job
-- ARGV[1] job JSON    ARGV[2] '1' to track status, '0' not    ARGV[3] status ttl (s)
-- ARGV[4] run-at in epoch seconds, or '' to use ARGV[5]
-- ARGV[5] delay in ms, added to Redis's own clock (so dynos' clocks do not matter)
-- ARGV[6..] status record: field, value, ...
-- Returns: the run-at score (string) when scheduled; 0 when the id already exists;
-- {-1, key} that key holds another type: nothing written.
-- Reads and type checks come first, so that neither an OOM refusal nor a key of another type
-- can stop the script after a write: a record never claims a job that was not scheduled.
local refused = refused_unless(KEYS[1], 'zset') or (ARGV[2] == '1' and known_id(KEYS[2]))
if refused then
  return refused
end
local now = now_secs()
local at = ARGV[4]
if at == '' then
  at = string.format('%.6f', now + tonumber(ARGV[5]) / 1000)
end
if ARGV[2] == '1' then
  -- The record lives until the job runs and then its usual time: a job scheduled months
  -- ahead must still be cancellable, and its id still known. About ten years at most.
  local ttl = tonumber(ARGV[3])
  local ahead = tonumber(at) - now
  if ahead == ahead and ahead > 0 then
    ttl = ttl + math.ceil(math.min(ahead, 315360000))
  end
  redis.call('HSET', KEYS[2], 'run_at', at, unpack(ARGV, 6))
  redis.call('EXPIRE', KEYS[2], string.format('%d', math.min(ttl, 315360000)))
end
redis.call('ZADD', KEYS[1], at, ARGV[1])
return at
