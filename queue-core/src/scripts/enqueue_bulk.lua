-- enqueue_bulk.lua: push many jobs of one queue in one call, skipping ids already known.
-- KEYS[1] queue list    KEYS[2] queues set    KEYS[2+i] status hash of job i (only when tracking)
-- ARGV[1] queue name    ARGV[2] '1' to track status, '0' not    ARGV[3] status ttl (s)
-- ARGV[4] wake channel  ARGV[5] n = number of shared status entries (field, value, ...)
-- ARGV[6 .. 5+n] the shared status entries    ARGV[6+n ..] the jobs' JSON, in order
-- Returns: how many jobs were pushed.
local track = ARGV[2] == '1'
local n = tonumber(ARGV[5])
local fields = {}
for i = 1, n do
  fields[i] = ARGV[5 + i]
end
local first = 6 + n
local fresh = {}
for i = first, #ARGV do
  if track then
    local status = KEYS[2 + i - first + 1]
    if redis.call('EXISTS', status) == 0 then
      redis.call('HSET', status, unpack(fields))
      redis.call('EXPIRE', status, ARGV[3])
      fresh[#fresh + 1] = ARGV[i]
    end
  else
    fresh[#fresh + 1] = ARGV[i]
  end
end
if #fresh == 0 then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[1], unpack(fresh))
redis.call('PUBLISH', ARGV[4], ARGV[1])
return #fresh
