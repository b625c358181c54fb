-- heartbeat.lua: register or renew this worker process (its lease and Sidekiq's process record).
-- KEYS[1] lease    KEYS[2] our workers set    KEYS[3] Sidekiq processes set
-- KEYS[4] Sidekiq process hash
-- ARGV[1] lease ttl (ms)    ARGV[2] 'register' or 'renew'    ARGV[3] identity
-- ARGV[4] info JSON    ARGV[5] busy count    ARGV[6] beat (epoch s)    ARGV[7] quiet 'true'/'false'
-- ARGV[8] rss (KiB)    ARGV[9] Sidekiq process record ttl (s)
-- Returns: 1 alive; 0 the lease had expired (the process must take a new identity, since
-- the reaper may already have handed its jobs to others).
-- PEXPIRE comes before any other write: it is a write Redis allows at maxmemory, and a
-- script that has called a write may finish, so a worker can register and beat while Redis
-- is full (draining jobs is what frees memory). Renewal by PEXPIRE cannot revive an expired
-- lease. Register refuses an identity whose lease exists without touching it (its holder's
-- TTL stays), and otherwise PEXPIREs the missing key (a no-op that counts as that first
-- write) before SET NX.
local ok
if ARGV[2] == 'register' then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ok = redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX')
else
  ok = redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1
end
if not ok then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[4], 'info', ARGV[4], 'busy', ARGV[5], 'beat', ARGV[6],
  'quiet', ARGV[7], 'rss', ARGV[8])
redis.call('EXPIRE', KEYS[4], ARGV[9])
return 1
