-- fail.lua: a job failed: move it from the processing list to the retry set or the dead set.
-- KEYS[1] processing list    KEYS[2] retry set    KEYS[3] dead set    KEYS[4] status hash
-- KEYS[5] stat:processed     KEYS[6] stat:failed  KEYS[7] stat:processed:<day>
-- KEYS[8] stat:failed:<day>
-- ARGV[1] raw job as fetched     ARGV[2] rewritten job (error fields set)
-- ARGV[3] 'retry' or 'dead'      ARGV[4] retry delay (s)     ARGV[5] clock offset (ms, tests)
-- ARGV[6] '1' tracked / '0'      ARGV[7] error message       ARGV[8] status ttl alive (s)
-- ARGV[9] status ttl finished (s)    ARGV[10] dead set max size    ARGV[11] dead set max age (s)
-- ARGV[12] ttl (s) of the daily counters    ARGV[13] status channel
-- Returns: the score (epoch s) of the retry or death as a string; 0 when the job is no
-- longer in the processing list (another worker owns it now): nothing is written;
-- 2 its status record says cancelled: the job is dropped and the record stays cancelled;
-- {-1, key} that key (the destination set) holds another type: nothing is written.
-- Times come from Redis's clock, shared by every dyno.
-- Order (scripts/mod.rs): reads and checks, one write Redis allows at maxmemory, the
-- destination, the record and counters, and the removal from the processing list last. A
-- status record or counter that is not ours to update is left as it is: the job still moves.

local held, status, rev, watched = held_job(KEYS[1], ARGV[1], KEYS[4])
if held == 'gone' then
  return 0
elseif held == 'cancelled' then
  return 2
end
local dest = 2
if ARGV[3] ~= 'retry' then
  dest = 3
end
local d = kind(KEYS[dest])
if d ~= 'zset' and d ~= 'none' then
  return {-1, KEYS[dest]}
end
local counters = {}
for i = 5, 8 do
  if counter_ok(KEYS[i]) then
    counters[#counters + 1] = i
  end
end

-- LTRIM 0 -1 changes nothing, but as the first write it is one Redis allows at maxmemory,
-- after which it runs the rest: a full Redis must still let failed jobs settle.
redis.call('LTRIM', KEYS[1], 0, -1)
local now = now_secs() + tonumber(ARGV[5]) / 1000
local score
if dest == 2 then
  score = string.format('%.6f', now + tonumber(ARGV[4]))
  redis.call('ZADD', KEYS[2], score, ARGV[2])
else
  score = string.format('%.6f', now)
  bury(KEYS[3], ARGV[2], now, ARGV[10], ARGV[11])
end
if ARGV[6] == '1' and (status == 'hash' or status == 'none') then
  local r = string.format('%d', rev or 2)
  if dest == 2 then
    redis.call('HSET', KEYS[4], 'state', 'retrying', 'error', ARGV[7], 'run_at', score, 'rev', r)
    redis.call('EXPIRE', KEYS[4], ARGV[8])
  else
    redis.call('HSET', KEYS[4], 'state', 'dead', 'error', ARGV[7], 'finished_at', score, 'rev', r)
    redis.call('EXPIRE', KEYS[4], ARGV[9])
  end
  announce(ARGV[13], KEYS[4], r, watched)
end
for _, i in ipairs(counters) do
  redis.call('INCR', KEYS[i])
  if i >= 7 then
    redis.call('EXPIRE', KEYS[i], ARGV[12])
  end
end
redis.call('LREM', KEYS[1], -1, ARGV[1])
return score
