-- due.lua: the members of the schedule or retry set that are due, by Redis's clock, so that
-- every dyno agrees whatever its own clock says. Writes nothing: promote.lua moves them.
-- KEYS[1] schedule or retry set
-- ARGV[1] clock offset (ms, tests)    ARGV[2] most members
-- Returns: {now (epoch seconds, text), ms until the first member is due (0 when some are;
--   -1 when the set is empty), member, member, ...} oldest due first; {-1, KEYS[1]} when
--   the key holds another type
local found = redis.call('TYPE', KEYS[1])['ok']
if found ~= 'zset' and found ~= 'none' then
  return {-1, KEYS[1]}
end
local now = now_secs() + tonumber(ARGV[1]) / 1000
local nows = string.format('%.6f', now)
local due = redis.call('ZRANGE', KEYS[1], '-inf', nows, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local wait = 0
if #due == 0 then
  wait = -1
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] then
    wait = math.max(0, math.floor((tonumber(first[2]) - now) * 1000))
  end
end
local out = {nows, wait}
for _, member in ipairs(due) do
  out[#out + 1] = member
end
return out
