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
-- Returns: how many jobs were pushed; {-1, key} that key holds another type: nothing written.
-- Reads and type checks of every job run before the first write (the first HSET, or SADD),
-- so neither an OOM refusal nor a key of another type can stop the script after a write: a
-- record never claims a job that was not pushed. A status key of a client-generated id is
-- not checked: nothing can be there before a new UUID v4 is drawn.

local refused = refused_unless(KEYS[1], 'list') or refused_unless(KEYS[2], 'set')
if refused then
  return refused
end
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
local statuses = {}
local seen = {}
local pushed = 0
for i = first, #ARGV do
  local j = i - first + 1
  local status = KEYS[2 + j]
  local new = true
  -- 49 is '1'. A caller-given id twice in one chunk is pushed once, as if the first had
  -- written its record already.
  if checks ~= '' and string.byte(checks, j) == 49 then
    local k = redis.call('TYPE', status)['ok']
    if k == 'hash' or seen[status] then
      new = false
    elseif k ~= 'none' then
      return {-1, status}
    end
    seen[status] = true
  end
  if new then
    pushed = pushed + 1
    fresh[pushed] = ARGV[i]
    statuses[pushed] = status
  end
end
if pushed == 0 then
  return 0
end
if track then
  for j = 1, pushed do
    redis.call('HSET', statuses[j], unpack(fields))
    redis.call('EXPIRE', statuses[j], ttl)
  end
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[1], unpack(fresh))
redis.call('PUBLISH', ARGV[4], ARGV[1])
return pushed
