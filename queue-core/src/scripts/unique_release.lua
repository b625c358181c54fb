-- unique_release.lua: give a uniqueness key back, only if job ARGV[1] still holds it.
-- KEYS[1] unique lock (string: holder's job id)
-- ARGV[1] job id
-- Returns: 1 released; 0 another job holds it, or nobody does (nothing written).
-- Compare and delete in one step: a release that comes late (after the TTL passed and a newer
-- job took the key) must not free the newer job's key.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then
  return 0
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
