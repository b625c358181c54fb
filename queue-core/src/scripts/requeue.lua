-- requeue.lua: hand a job back to the front of its queue (shutdown, or recovery by the reaper).
-- KEYS[1] processing list    KEYS[2] queue list    KEYS[3] queues set    KEYS[4] status hash
-- ARGV[1] raw job as held    ARGV[2] job to push (may be rewritten)    ARGV[3] queue name
-- ARGV[4] '1' tracked / '0'  ARGV[5] status ttl alive (s)    ARGV[6] wake channel
-- Returns: 1 handed back; 0 the job was no longer in the processing list; 2 its status
-- record says cancelled (it never started): the job is dropped instead.
-- RPUSH puts it at the consuming end, so it runs next, as Sidekiq does on shutdown.
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end
if redis.call('HGET', KEYS[4], 'state') == 'cancelled' then
  return 2
end
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[2])
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], 'state', 'queued')
  redis.call('HINCRBY', KEYS[4], 'rev', 1)
  redis.call('EXPIRE', KEYS[4], ARGV[5])
end
redis.call('PUBLISH', ARGV[6], ARGV[3])
return 1
