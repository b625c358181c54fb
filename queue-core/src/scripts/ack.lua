-- ack.lua: finish jobs that succeeded (or were skipped as cancelled).
-- KEYS[1] processing list of the process that fetched them
-- KEYS[2] stat:processed    KEYS[3] stat:processed:<day>    KEYS[3+i] status hash of job i
-- ARGV[1] now (epoch seconds)    ARGV[2] status ttl (s) after a terminal state
-- ARGV[3] ttl (s) of the daily counter
-- then per job i, three entries: raw job as fetched, '0' untracked / '1' tracked, first
--   attempt / '2' tracked, a retry (clears the last error),
--   result JSON ('' for none; '-' when the job was cancelled and did not run)
-- Returns: one entry per job: 1 acked; 0 the job is no longer in the processing list
-- (the reaper handed it to another worker): its result is rejected.
-- At-least-once: a crash before this runs leaves the job in the processing list, so the
-- reaper runs it again; it is never lost.
local out = {}
local acked = 0
for i = 4, #KEYS do
  local base = 3 + (i - 4) * 3
  local raw, tracked, result = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  if redis.call('LREM', KEYS[1], -1, raw) == 1 then
    out[#out + 1] = 1
    if result ~= '-' then
      acked = acked + 1
      -- tracked: '0' no record, '1' first attempt, '2' a retry (an old error to clear)
      if tracked ~= '0' then
        if result ~= '' then
          redis.call('HSET', KEYS[i], 'state', 'succeeded', 'finished_at', ARGV[1],
            'progress', '100', 'result', result)
        else
          redis.call('HSET', KEYS[i], 'state', 'succeeded', 'finished_at', ARGV[1],
            'progress', '100')
        end
        if tracked == '2' then
          redis.call('HDEL', KEYS[i], 'error')
        end
        redis.call('HINCRBY', KEYS[i], 'rev', 1)
        redis.call('EXPIRE', KEYS[i], ARGV[2])
      end
    end
  else
    out[#out + 1] = 0
  end
end
if acked > 0 then
  redis.call('INCRBY', KEYS[2], acked)
  redis.call('INCRBY', KEYS[3], acked)
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
return out
