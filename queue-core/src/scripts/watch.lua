-- watch.lua: a long poll's read of a status record, which marks the record watched in the
-- same call, so that the scripts changing it announce the change (prelude.lua's announce).
-- KEYS[1] status hash
-- ARGV[1] how long the caller will wait (ms)
-- Returns: {} no record (or a key of another type); else {marked, field, value, ...}: the
-- record as HGETALL reads it, marked 1 when it is watched for at least ARGV[1] ms from now,
-- 0 when it was not marked (a terminal state, which never changes, or Redis refused the
-- write at maxmemory: the caller then answers at once instead of waiting unannounced).
-- The mark is not a change: `rev` stays, nothing is announced, the expiry is untouched.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  return {}
end
local record = redis.call('HGETALL', KEYS[1])
local state, watched = nil, nil
for i = 1, #record, 2 do
  if record[i] == 'state' then
    state = record[i + 1]
  elseif record[i] == 'watched_until' then
    watched = tonumber(record[i + 1])
  end
end
if not state then
  return {}
end
local marked = 0
if state ~= 'succeeded' and state ~= 'dead' and state ~= 'cancelled' then
  local until_ms = now_ms() + tonumber(ARGV[1])
  if watched and watched >= until_ms then
    marked = 1
  else
    -- A refusal (maxmemory) comes back as an error table; the read is still answered.
    local wrote = redis.pcall('HSET', KEYS[1], 'watched_until', string.format('%d', until_ms))
    if type(wrote) ~= 'table' then
      marked = 1
    end
  end
end
local out = {marked}
for i = 1, #record do
  out[i + 1] = record[i]
end
return out
