-- defer.lua: put a job back into a sorted set for later without counting a failure or using
-- up a retry: a job whose class is at its concurrency limit (into `schedule`), or a job of a
-- class this worker does not know, during a deploy (into `retry`, with its error fields).
-- KEYS[1] processing list    KEYS[2] schedule or retry set    KEYS[3] status hash
-- ARGV[1] raw job as fetched    ARGV[2] job to store (without enqueued_at)    ARGV[3] delay (ms)
-- ARGV[4] status state to show ('scheduled' or 'retrying')    ARGV[5] error ('' for none)
-- ARGV[6] status ttl (s) while alive: a job deferred again and again keeps its record
-- ARGV[7] status channel
-- Returns: 1 deferred; 0 the job was no longer in the processing list (nothing written);
-- 2 its status record says cancelled: the job is dropped instead; {-1, key} that key (the
-- set) holds another type: nothing is written.
-- Order (scripts/mod.rs): reads and checks, one write Redis allows at maxmemory, the set,
-- and the removal from the processing list last. A status record of another type is left
-- as it is: the job still moves.

local held, status, rev, watched = held_job(KEYS[1], ARGV[1], KEYS[3])
if held == 'gone' then
  return 0
elseif held == 'cancelled' then
  return 2
end
local set = kind(KEYS[2])
if set ~= 'zset' and set ~= 'none' then
  return {-1, KEYS[2]}
end

-- LTRIM 0 -1 changes nothing, but as the first write it is one Redis allows at maxmemory,
-- after which it runs the rest: a full Redis must still let jobs be deferred.
redis.call('LTRIM', KEYS[1], 0, -1)
local at = now_secs() + tonumber(ARGV[3]) / 1000
local score = string.format('%.6f', at)
redis.call('ZADD', KEYS[2], score, ARGV[2])
if status == 'hash' then
  redis.call('HSET', KEYS[3], 'state', ARGV[4], 'run_at', score, 'rev', string.format('%d', rev))
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[3], 'error', ARGV[5])
  end
  -- Never shortened, and never given an expiry it did not have.
  local left = redis.call('TTL', KEYS[3])
  if left >= 0 and left < tonumber(ARGV[6]) then
    redis.call('EXPIRE', KEYS[3], ARGV[6])
  end
  announce(ARGV[7], KEYS[3], rev, watched)
end
redis.call('LREM', KEYS[1], -1, ARGV[1])
return 1
