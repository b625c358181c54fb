-- enqueue_bulk.lua: push many jobs of one queue in one call, skipping caller-given ids
-- that already have a status record.
-- KEYS[1] queue list    KEYS[2] queues set    KEYS[2+i] status hash of job i (only when tracking)
-- ARGV[1] queue name    ARGV[2] '1' to track status, '0' not    ARGV[3] status ttl (s)
-- ARGV[4] wake channel
-- ARGV[5] checks: '' when no job needs one, else one character per job: '1' the id was
--         given by the caller (push only if it has no status record yet), '0' the client
--         generated it (UUID v4 from a CSPRNG: new by construction, so no EXISTS)
-- ARGV[6] n = number of shared status entries (field, value, ...)
-- ARGV[7 .. 6+n] the shared status entries (no `rev`, no `attempt`: absent they read as 1 and 0)
-- ARGV[7+n ..] the jobs' JSON, in order
-- Returns: how many jobs were pushed.
-- Any EXISTS of job i runs before its writes, and the first write is the first HSET (or SADD):
-- an OOM refusal comes before anything is written.
local track = ARGV[2] == '1'
local checks = ARGV[5]
local n = tonumber(ARGV[6])
local fields = {}
for i = 1, n do
  fields[i] = ARGV[6 + i]
end
local first = 7 + n
local ttl = ARGV[3]
local fresh = {}
local pushed = 0
for i = first, #ARGV do
  local j = i - first + 1
  local status = KEYS[2 + j]
  -- 49 is '1'.
  if checks == '' or string.byte(checks, j) ~= 49 or redis.call('EXISTS', status) == 0 then
    if track then
      redis.call('HSET', status, unpack(fields))
      redis.call('EXPIRE', status, ttl)
    end
    pushed = pushed + 1
    fresh[pushed] = ARGV[i]
  end
end
if pushed == 0 then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[1], unpack(fresh))
redis.call('PUBLISH', ARGV[4], ARGV[1])
return pushed
