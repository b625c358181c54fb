-- slot_renew.lua: extend the concurrency slots a live worker process holds, with its lease.
-- KEYS[i] a sorted set of slots (a class's, or a concurrent limiter's; member = holder,
--         score = expiry, epoch ms)
-- ARGV[1] the slots' new lifetime (ms)    ARGV[1 + i] the holder of a slot in KEYS[i]
-- Returns: how many slots were renewed.
-- Slots live about as long as the lease of the process holding them: renewed while it beats,
-- given back soon after it dies (SIGKILL, OOM), as its jobs are. A slot already given back
-- (released, expired and swept) is not taken again; a key of another type is skipped.
local expiry = now_ms() + tonumber(ARGV[1])
local renewed = 0
for i = 1, #KEYS do
  if kind(KEYS[i]) == 'zset' and redis.call('ZSCORE', KEYS[i], ARGV[1 + i]) then
    -- ZREMRANGEBYRANK 1 0 removes nothing; as the first write it is one Redis allows at
    -- maxmemory, so a full Redis still renews (ZADD XX of a member does not grow it).
    if renewed == 0 then
      redis.call('ZREMRANGEBYRANK', KEYS[i], 1, 0)
    end
    redis.call('ZADD', KEYS[i], 'XX', expiry, ARGV[1 + i])
    renewed = renewed + 1
  end
end
return renewed
