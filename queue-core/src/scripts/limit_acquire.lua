-- limit_acquire.lua: take one of a job class's global concurrency slots, across all processes.
-- KEYS[1] concurrency set of the class (member = holder, score = expiry, epoch ms)
-- ARGV[1] holder (identity:jid)    ARGV[2] limit    ARGV[3] slot lifetime (ms)
-- Returns: 1 taken; 0 the class is at its limit (the caller defers the job); {-1, key} the
-- key holds another type: nothing is written.
-- Slots of processes that died expire on their own, so a crash cannot leak the limit.
local k = redis.call('TYPE', KEYS[1])['ok']
if k ~= 'zset' and k ~= 'none' then
  return {-1, KEYS[1]}
end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
-- A slot expiring more than its lifetime (or a day) from now was not written here: planted,
-- or left by a Redis clock that stepped back. Kept, it would hold the class at its limit
-- until then (for ever, for a huge score).
redis.call('ZREMRANGEBYSCORE', KEYS[1],
  '(' .. string.format('%d', now + math.max(tonumber(ARGV[3]), 86400000)), '+inf')
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
