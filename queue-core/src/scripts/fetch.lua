-- fetch.lua: take up to N jobs from the queues, in the given order, into this process's
-- processing list (reliable fetch: a job is never only in memory).
-- KEYS[1] lease of this process    KEYS[2] processing list of this process
-- KEYS[3..] queue lists, in the order to try them
-- ARGV[1] most jobs to take    ARGV[2] lease ttl (ms)
-- Returns: {1, job, job, ...} taken (possibly none); {0} this process's lease has expired
-- (the reaper may already own its processing list, so nothing may be added to it).
-- The lease is extended first (PEXPIRE is a write Redis allows at maxmemory): a script that
-- has written may finish, so workers keep draining queues, which frees memory, when Redis
-- is full and refuses enqueues.
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
  return {0}
end
local out = {1}
local want = tonumber(ARGV[1])
local taken = 0
for i = 3, #KEYS do
  while taken < want do
    local job = redis.call('LMOVE', KEYS[i], KEYS[2], 'RIGHT', 'LEFT')
    if not job then
      break
    end
    taken = taken + 1
    out[taken + 1] = job
  end
  if taken >= want then
    break
  end
end
return out
