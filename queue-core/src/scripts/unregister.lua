-- unregister.lua: the last step of a clean shutdown: forget this worker process.
-- KEYS[1] lease    KEYS[2] our workers set    KEYS[3] Sidekiq processes set
-- KEYS[4] Sidekiq process hash    KEYS[5] Sidekiq work hash    KEYS[6] processing list
-- ARGV[1] identity
-- Returns: the number of jobs still in the processing list (normally 0). Those stay, and
-- since the lease is gone the reaper of any live worker recovers them at once.
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5])
redis.call('SREM', KEYS[3], ARGV[1])
local left = redis.call('LLEN', KEYS[6])
if left == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
end
return left
