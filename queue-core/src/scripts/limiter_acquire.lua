-- limiter_acquire.lua: ask a named rate limiter, shared by every process, for one admission.
-- KEYS[1] the limiter's state: sorted set (concurrent: holder -> expiry ms; window: one
--         member per admission, score = its time ms) or string (bucket: theoretical arrival
--         time, ms)
-- KEYS[2] hash of limiter names -> 'kind limit span_ms' (for inspect and metrics)
-- ARGV[1] kind: 'concurrent', 'window' or 'bucket'    ARGV[2] limit (n)
-- ARGV[3] concurrent: slot lifetime (ms); window and bucket: the interval (ms)
-- ARGV[4] name    ARGV[5] holder (concurrent: identity:jid; window: a unique token)
-- Returns: {1, now_ms} admitted at Redis's time now_ms; {0, wait_ms} over the limit, and how
-- long until an admission may be free (0: unknown); {-1, key} a key holds another type.
local kind, limit, span = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local want = 'zset'
if kind == 'bucket' then
  want = 'string'
end
local refused = refused_unless(KEYS[1], want) or refused_unless(KEYS[2], 'hash')
if refused then
  return refused
end
local now = now_ms()
-- State beyond what this script ever writes (a slot expiring more than its lifetime, or a
-- day, from now; an admission scored ahead of now by more than the interval; a bucket more
-- than the interval ahead) is planted, or left by a Redis clock that stepped back: kept, it
-- would hold the limiter at its limit until then, for ever for a huge score. It is dropped.
if kind == 'concurrent' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now + math.max(span, 86400000)),
    '+inf')
  if not redis.call('ZSCORE', KEYS[1], ARGV[5]) then
    if redis.call('ZCARD', KEYS[1]) >= limit then
      return {0, 0}
    end
    redis.call('ZADD', KEYS[1], now + span, ARGV[5])
  end
  redis.call('HSET', KEYS[2], ARGV[4], kind .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
  return {1, now}
elseif kind == 'window' then
  -- A sliding window: at most `limit` admissions in any `span` ms.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now + span), '+inf')
  if redis.call('ZCARD', KEYS[1]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, math.max(1, tonumber(oldest[2]) + span - now + 1)}
  end
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[5])
  redis.call('PEXPIRE', KEYS[1], span + 1000)
  redis.call('HSET', KEYS[2], ARGV[4], kind .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
  return {1, now}
else
  -- GCRA without burst: admissions spaced by span / limit ms, never closer. Microseconds
  -- (Redis's TIME has them), so a limit above 1,000 per second still spaces admissions.
  local step = span / limit
  local t = redis.call('TIME')
  local precise = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local tat = tonumber(redis.call('GET', KEYS[1]) or '') or precise
  if tat ~= tat or tat > precise + span then
    tat = precise
  end
  if tat > precise then
    return {0, math.ceil(tat - precise)}
  end
  redis.call('SET', KEYS[1], string.format('%.3f', precise + step), 'PX',
    string.format('%d', math.ceil(step) + 1000))
  redis.call('HSET', KEYS[2], ARGV[4], kind .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
  return {1, now}
end
