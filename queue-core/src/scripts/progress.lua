-- progress.lua: record a running job's progress.
-- KEYS[1] status hash    ARGV[1] percent (0-100)    ARGV[2] message ('' for none)
-- Returns: 1 recorded; 0 the job is not running (no record, or already finished).
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  return 0
end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'message', ARGV[2])
end
redis.call('HINCRBY', KEYS[1], 'rev', 1)
return 1
