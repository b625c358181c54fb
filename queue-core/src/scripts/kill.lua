-- kill.lua: an operator's "kill": a member of the schedule or retry set moves to the dead
-- set now, as Sidekiq's `SortedEntry#kill` does (the member is kept byte for byte).
-- KEYS[1] the set    KEYS[2] dead set    KEYS[3] the job's status hash
-- ARGV[1] the member    ARGV[2] now (epoch seconds)    ARGV[3] dead set max size
-- ARGV[4] dead set max age (s)    ARGV[5] status ttl (s) after a terminal state
-- ARGV[6] status channel
-- Returns: 1 dead; 0 no longer in the set; 2 its record says cancelled, so it was dropped
--   (cancel.lua's rule); {-1, key} when the set or the dead set holds another type (nothing
--   written).
local refused = refused_unless(KEYS[1], 'zset') or refused_unless(KEYS[2], 'zset')
if refused then
  return refused
end
local member = ARGV[1]
if not redis.call('ZSCORE', KEYS[1], member) then
  return 0
end
local record = {false, false, false}
if kind(KEYS[3]) == 'hash' then
  record = redis.call('HMGET', KEYS[3], 'state', 'rev', 'watched_until')
end
if record[1] == 'cancelled' then
  expire_cancelled(KEYS[3])
  redis.call('ZREM', KEYS[1], member)
  return 2
end
bury(KEYS[2], member, tonumber(ARGV[2]), ARGV[3], ARGV[4])
if record[1] then
  local rev = next_rev(record[2])
  redis.call('HDEL', KEYS[3], 'run_at')
  redis.call('HSET', KEYS[3], 'state', 'dead', 'finished_at', ARGV[2],
    'rev', string.format('%d', rev))
  redis.call('EXPIRE', KEYS[3], ARGV[5])
  announce(ARGV[6], KEYS[3], rev, record[3])
end
redis.call('ZREM', KEYS[1], member)
return 1
