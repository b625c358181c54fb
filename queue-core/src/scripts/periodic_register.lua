-- periodic_register.lua: make this process's periodic entries the registered ones: write
-- each definition (keeping its `last` and `next`), and forget entries it does not have.
-- KEYS[1] periodic set (entry names)    KEYS[2..n+1] entry hashes of this process's n entries
-- KEYS[n+2..] entry hashes of registered entries this process does not have (removed)
-- ARGV[1] n    then per entry: name, digest, cron, tz, class, queue, missed
-- Returns: the number of entries removed; {-1, key} a key holds another type (nothing written).
-- The last process to start decides: during a deploy, the new code's entries win once its
-- first process starts, and older processes' ticks of a changed or removed entry are refused
-- by periodic_tick.lua (their digest no longer matches).
local n = tonumber(ARGV[1])
local refused = refused_unless(KEYS[1], 'set')
if refused then
  return refused
end
for i = 2, #KEYS do
  refused = refused_unless(KEYS[i], 'hash')
  if refused then
    return refused
  end
end
for i = 1, n do
  local a = 2 + (i - 1) * 7
  redis.call('SADD', KEYS[1], ARGV[a])
  redis.call('HSET', KEYS[1 + i], 'name', ARGV[a], 'digest', ARGV[a + 1], 'cron', ARGV[a + 2],
    'tz', ARGV[a + 3], 'class', ARGV[a + 4], 'queue', ARGV[a + 5], 'missed', ARGV[a + 6])
end
local removed = 0
for i = n + 2, #KEYS do
  local name = redis.call('HGET', KEYS[i], 'name')
  redis.call('DEL', KEYS[i])
  if name then
    redis.call('SREM', KEYS[1], name)
  end
  removed = removed + 1
end
return removed
