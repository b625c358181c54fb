-- ack_fetch.lua: the worker's one round trip per cycle. It finishes the jobs that succeeded
-- (or were skipped as cancelled), then takes up to N more into the processing list and marks
-- the ones that have a status record as running. Either half may be empty.
-- KEYS[1] lease of this process    KEYS[2] processing list of this process
-- KEYS[3] stat:processed    KEYS[4] stat:processed:<day>
-- KEYS[5 .. 4+A] status hash of acked job i    KEYS[5+A ..] queue lists, in the order to try
-- ARGV[1] A = number of acks    ARGV[2] most jobs to take    ARGV[3] lease ttl (ms)
-- ARGV[4] status key prefix     ARGV[5] now (epoch seconds)
-- ARGV[6] status ttl (s) after a terminal state    ARGV[7] ttl (s) of the daily counter
-- then per acked job, three entries: raw job as fetched; '0' untracked / '1' tracked, first
--   attempt / '2' tracked, a retry (clears the last error); result JSON ('' for none; '-'
--   when the job was cancelled and did not run)
-- Returns: {lease, ack_1 .. ack_A, job, mark, job, mark, ...} where
--   lease is 1, or 0 when this process's lease has expired: nothing was taken (the reaper may
--     already own the processing list), though the acks were applied;
--   ack_i is 1 acked, or 0 the job was no longer in the processing list (the reaper handed
--     it to another worker): its result is rejected;
--   mark is 1 status marked running; 0 status says cancelled (skip the job and ack it);
--     2 no status record (the caller creates one if the job type keeps status);
--     3 not a JSON object with a jid (the caller parses it and buries it if it cannot).
-- At-least-once: a job stays in the processing list until its ack lands here, so a crash
-- at any point means it runs again, never that it is lost.
-- Writes at maxmemory: LREM and PEXPIRE are writes Redis allows when full, and a script that
-- has written may finish, so workers keep draining queues, which frees memory.
local acks = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local out = {1}
if want > 0 and redis.call('PEXPIRE', KEYS[1], ARGV[3]) == 0 then
  out[1] = 0
  want = 0
end

local acked = 0
for i = 1, acks do
  local base = 7 + (i - 1) * 3
  local raw, tracked, result = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local status = KEYS[4 + i]
  if redis.call('LREM', KEYS[2], -1, raw) == 1 then
    out[#out + 1] = 1
    if result ~= '-' then
      acked = acked + 1
      if tracked ~= '0' then
        if result ~= '' then
          redis.call('HSET', status, 'state', 'succeeded', 'finished_at', ARGV[5],
            'progress', '100', 'result', result)
        else
          redis.call('HSET', status, 'state', 'succeeded', 'finished_at', ARGV[5],
            'progress', '100')
        end
        if tracked == '2' then
          redis.call('HDEL', status, 'error')
        end
        redis.call('HINCRBY', status, 'rev', 1)
        redis.call('EXPIRE', status, ARGV[6])
      end
    end
  else
    out[#out + 1] = 0
  end
end
if acked > 0 then
  redis.call('INCRBY', KEYS[3], acked)
  redis.call('INCRBY', KEYS[4], acked)
  redis.call('EXPIRE', KEYS[4], ARGV[7])
end

-- The job id and retry count, from the anchored prefix our own client writes (jid first,
-- then retry_count when there is one) or, for jobs written by others, by decoding the JSON.
-- Neither way re-encodes the job.
local function identify(raw)
  local jid, rest = string.match(raw, '^{"jid":"([%w_%-]+)"()')
  if jid then
    local count = string.match(raw, '^,"retry_count":(%d+)', rest)
    -- Another writer may put jid first and retry_count elsewhere: decode those.
    if count or not string.find(raw, '"retry_count"', rest, true) then
      return jid, tonumber(count)
    end
  end
  local ok, job = pcall(cjson.decode, raw)
  if ok and type(job) == 'table' and type(job.jid) == 'string' then
    local count = job.retry_count
    if type(count) ~= 'number' or count < 0 then
      count = nil
    end
    return job.jid, count
  end
  return nil, nil
end

local taken = 0
for q = 5 + acks, #KEYS do
  if taken >= want then
    break
  end
  -- The oldest jobs are at the right end: move a block of them with a few commands, oldest
  -- first, so the processing list keeps the queue's order (acks, mostly oldest first, then
  -- find their job near the tail, where LREM starts). The copy lands before the trim, and
  -- in slices that unpack can take, so that an error cannot drop jobs.
  local jobs = redis.call('LRANGE', KEYS[q], -(want - taken), -1)
  local oldest_first = {}
  for j = #jobs, 1, -1 do
    oldest_first[#oldest_first + 1] = jobs[j]
  end
  for i = 1, #oldest_first, 1000 do
    redis.call('LPUSH', KEYS[2], unpack(oldest_first, i, math.min(i + 999, #oldest_first)))
  end
  if #jobs > 0 then
    redis.call('LTRIM', KEYS[q], 0, -(#jobs + 1))
  end
  for _, raw in ipairs(oldest_first) do
    taken = taken + 1
    local mark = 3
    local jid, retry_count = identify(raw)
    if jid then
      local status = ARGV[4] .. jid
      local record = redis.call('HMGET', status, 'state', 'rev')
      local state = record[1]
      if state == 'cancelled' then
        mark = 0
      elseif not state then
        mark = 2
      else
        local attempt = 1
        if retry_count then
          attempt = retry_count + 2
        end
        -- A queued record may omit rev: it is then 1.
        local rev = (tonumber(record[2]) or 1) + 1
        redis.call('HSET', status, 'state', 'running', 'started_at', ARGV[5],
          'attempt', attempt, 'progress', '0', 'rev', rev)
        if attempt > 1 then
          redis.call('HDEL', status, 'message')
        end
        mark = 1
      end
    end
    out[#out + 1] = raw
    out[#out + 1] = mark
  end
end
return out
