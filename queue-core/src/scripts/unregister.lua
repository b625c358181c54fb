-- unregister.lua: the last step of a clean shutdown: forget this worker process.
-- KEYS[1] lease    KEYS[2] our workers set    KEYS[3] Sidekiq processes set
-- KEYS[4] Sidekiq process hash    KEYS[5] Sidekiq work hash    KEYS[6] processing list
-- ARGV[1] identity
-- Returns: the number of jobs still in the processing list (normally 0). Those stay, and
-- since the lease is gone the reaper of any live worker recovers them at once.
-- Keys of a type we never write there are not ours and are left as they are; a processing
-- list that is not a list holds no jobs.

local left = 0
if kind(KEYS[6]) == 'list' then
  left = redis.call('LLEN', KEYS[6])
end
if kind(KEYS[1]) == 'string' then
  redis.call('DEL', KEYS[1])
end
for i = 4, 5 do
  if kind(KEYS[i]) == 'hash' then
    redis.call('DEL', KEYS[i])
  end
end
if kind(KEYS[3]) == 'set' then
  redis.call('SREM', KEYS[3], ARGV[1])
end
if left == 0 and kind(KEYS[2]) == 'set' then
  redis.call('SREM', KEYS[2], ARGV[1])
end
return left
