-- reap.lua: claim the jobs of worker processes whose lease expired.
-- KEYS[1] our workers set    KEYS[2] processing list of the calling process
-- KEYS[3] lease of the calling process    KEYS[4] Sidekiq processes set
-- ARGV[1] lease key prefix   ARGV[2] processing key prefix    ARGV[3] most jobs to claim
-- ARGV[4] Sidekiq process key prefix (the bare prefix)    ARGV[5] lease ttl (ms)
-- Returns: {1, job, job, ...} claimed into the caller's processing list, which the caller
-- then requeues (or buries) one by one; {0} the caller's own lease expired.
-- At-least-once: claimed jobs sit in a live process's processing list, so a crash of the
-- reaper itself is recovered by the next reaper; nothing is ever only in memory.
if redis.call('PEXPIRE', KEYS[3], ARGV[5]) == 0 then
  return {0}
end
local out = {1}
local budget = tonumber(ARGV[3])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. id) == 0 then
    local list = ARGV[2] .. id
    while budget > 0 do
      local job = redis.call('LMOVE', list, KEYS[2], 'RIGHT', 'LEFT')
      if not job then
        break
      end
      out[#out + 1] = job
      budget = budget - 1
    end
    if redis.call('EXISTS', list) == 0 then
      redis.call('SREM', KEYS[1], id)
      redis.call('SREM', KEYS[4], id)
      redis.call('DEL', ARGV[4] .. id, ARGV[4] .. id .. ':work')
    end
  end
  if budget <= 0 then
    break
  end
end
return out
