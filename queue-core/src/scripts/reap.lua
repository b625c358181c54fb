-- reap.lua: claim the jobs of one worker process whose lease expired.
-- KEYS[1] our workers set    KEYS[2] processing list of the calling process
-- KEYS[3] lease of the calling process    KEYS[4] Sidekiq processes set
-- KEYS[5] lease of the reaped process     KEYS[6] its processing list
-- KEYS[7] its Sidekiq process hash        KEYS[8] its Sidekiq work hash
-- ARGV[1] identity of the reaped process  ARGV[2] most jobs to claim
-- ARGV[3] lease ttl (ms) of the calling process
-- Returns: {1, job, job, ...} claimed into the caller's processing list, which the caller
-- then requeues (or buries) one by one; {0} the caller's own lease expired (nothing done);
-- {2} the process is alive (its lease exists): nothing done.
-- At-least-once: claimed jobs sit in a live process's processing list, so a crash of the
-- reaper itself is recovered by the next reaper; nothing is ever only in memory.
if redis.call('PEXPIRE', KEYS[3], ARGV[3]) == 0 then
  return {0}
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return {2}
end
local out = {1}
local budget = tonumber(ARGV[2])
while budget > 0 do
  local job = redis.call('LMOVE', KEYS[6], KEYS[2], 'RIGHT', 'LEFT')
  if not job then
    break
  end
  out[#out + 1] = job
  budget = budget - 1
end
if redis.call('EXISTS', KEYS[6]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[4], ARGV[1])
  redis.call('DEL', KEYS[7], KEYS[8])
end
return out
