-- reap.lua: claim the jobs of one worker process whose lease expired.
-- KEYS[1] our workers set    KEYS[2] processing list of the calling process
-- KEYS[3] lease of the calling process    KEYS[4] Sidekiq processes set
-- KEYS[5] lease of the reaped process     KEYS[6] its processing list
-- KEYS[7] its Sidekiq process hash        KEYS[8] its Sidekiq work hash
-- ARGV[1] identity of the reaped process  ARGV[2] most jobs to claim
-- ARGV[3] lease ttl (ms) of the calling process
-- Returns: {1, job, job, ...} claimed into the caller's processing list, which the caller
-- then requeues (or buries) one by one; {0} the caller's own lease expired (nothing done);
-- {2} the process is alive (its lease exists, or its record says the lease would still
-- last): nothing done; {-1, key} that key (the
-- caller's processing list) holds another type: nothing done.
-- At-least-once: claimed jobs sit in a live process's processing list, so a crash of the
-- reaper itself is recovered by the next reaper; nothing is ever only in memory.
-- Keys of a type we never write there are nobody's: a lease that is not a string is no
-- lease, a processing list that is not a list holds no jobs, and the registry entries that
-- are not sets or hashes are left as they are. LMOVE moves each job in one step.

if kind(KEYS[3]) ~= 'string' then
  return {0}
end
local mine = kind(KEYS[2])
if mine ~= 'list' and mine ~= 'none' then
  return {-1, KEYS[2]}
end
if kind(KEYS[5]) == 'string' then
  return {2}
end
-- A lease that vanished before its time (deleted, or lost in a failover) is not yet a dead
-- process: it may still run its jobs until it notices, at its next beat. Its record says
-- until when the lease would have lasted (heartbeat.lua, Redis's clock).
if kind(KEYS[7]) == 'hash' then
  local until_ms = tonumber(redis.call('HGET', KEYS[7], 'leased_until') or '')
  if until_ms then
    local now = now_ms()
    -- More than an hour ahead is no lease anyone took (leases last seconds): a planted or
    -- damaged value must not keep the jobs from recovery.
    if now < until_ms and until_ms - now <= 3600000 then
      return {2}
    end
  end
end
local theirs = kind(KEYS[6]) == 'list'
-- PEXPIRE renews the caller's lease; as the first write, one Redis allows at maxmemory, it
-- lets recovery run while Redis is full.
redis.call('PEXPIRE', KEYS[3], ARGV[3])
local out = {1}
local budget = tonumber(ARGV[2])
while theirs and budget > 0 do
  local job = redis.call('LMOVE', KEYS[6], KEYS[2], 'RIGHT', 'LEFT')
  if not job then
    break
  end
  out[#out + 1] = job
  budget = budget - 1
end
if not theirs or redis.call('EXISTS', KEYS[6]) == 0 then
  if kind(KEYS[1]) == 'set' then
    redis.call('SREM', KEYS[1], ARGV[1])
  end
  if kind(KEYS[4]) == 'set' then
    redis.call('SREM', KEYS[4], ARGV[1])
  end
  for i = 7, 8 do
    if kind(KEYS[i]) == 'hash' then
      redis.call('DEL', KEYS[i])
    end
  end
end
return out
