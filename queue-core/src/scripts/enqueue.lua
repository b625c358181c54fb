-- enqueue.lua: push one job onto its queue, idempotently on its job id.
-- KEYS[1] queue list    KEYS[2] queues set    KEYS[3] status hash of the job
-- ARGV[1] queue name    ARGV[2] job JSON      ARGV[3] '1' to track status, '0' not
-- ARGV[4] status ttl (s) while the job is alive      ARGV[5] wake channel
-- ARGV[6..] status record: field, value, field, value, ...
-- Returns: 1 enqueued; 0 a job with this id already has a status record (nothing written).
-- Reads come first so that an OOM refusal happens before any write: nothing half-done.
if ARGV[3] == '1' then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return 0
  end
  redis.call('HSET', KEYS[3], unpack(ARGV, 6))
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[1])
return 1
