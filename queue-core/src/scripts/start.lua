-- start.lua: create the status record, as running, of tracked jobs that were taken without
-- one (pushed by another client, such as Sidekiq's Ruby client, or not JSON to Lua);
-- ack_fetch.lua marks the jobs that have a record. Reports the ones cancelled meanwhile.
-- KEYS[i] status hash of job i
-- ARGV[1] now (epoch seconds)    ARGV[2] status ttl (s) while alive
-- then per job i, three entries: attempt number, queue, class
-- Returns: one entry per job: 1 run it, 0 it was cancelled (skip it and ack it)
local out = {}
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 3
  local key = KEYS[i]
  if redis.call('HGET', key, 'state') == 'cancelled' then
    out[i] = 0
  else
    redis.call('HSET', key, 'state', 'running', 'started_at', ARGV[1],
      'attempt', ARGV[base + 1], 'queue', ARGV[base + 2], 'class', ARGV[base + 3], 'progress', '0')
    redis.call('HDEL', key, 'message')
    redis.call('HINCRBY', key, 'rev', 1)
    redis.call('EXPIRE', key, ARGV[2])
    out[i] = 1
  end
end
return out
