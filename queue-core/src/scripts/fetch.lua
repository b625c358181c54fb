-- fetch.lua: take up to N jobs from the queues, in the given order, into this process's
-- processing list (reliable fetch: a job is never only in memory), and mark the ones that
-- have a status record as running, in the same round trip.
-- KEYS[1] lease of this process    KEYS[2] processing list of this process
-- KEYS[3..] queue lists, in the order to try them
-- ARGV[1] most jobs to take    ARGV[2] lease ttl (ms)    ARGV[3] status key prefix
-- ARGV[4] now (epoch seconds)
-- Returns: {1, job, mark, job, mark, ...} taken (possibly none), where mark is
--   1 status marked running;  0 status says cancelled (skip the job and ack it);
--   2 no status record (the caller creates one if the job type keeps status);
--   3 not a JSON object with a jid (the caller parses it and buries it if it cannot);
-- or {0}: this process's lease has expired (the reaper may already own its processing list,
-- so nothing may be added to it).
-- The lease is extended first (PEXPIRE is a write Redis allows at maxmemory): a script that
-- has written may finish, so workers keep draining queues, which frees memory, when Redis
-- is full and refuses enqueues. Reading the job id decodes the JSON but never re-encodes it.
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
  return {0}
end
local out = {1}
local want = tonumber(ARGV[1])
local taken = 0
for i = 3, #KEYS do
  while taken < want do
    local raw = redis.call('LMOVE', KEYS[i], KEYS[2], 'RIGHT', 'LEFT')
    if not raw then
      break
    end
    taken = taken + 1
    local mark = 3
    local ok, job = pcall(cjson.decode, raw)
    if ok and type(job) == 'table' and type(job.jid) == 'string' then
      local status = ARGV[3] .. job.jid
      local state = redis.call('HGET', status, 'state')
      if state == 'cancelled' then
        mark = 0
      elseif not state then
        mark = 2
      else
        local attempt = 1
        if type(job.retry_count) == 'number' and job.retry_count >= 0 then
          attempt = job.retry_count + 2
        end
        redis.call('HSET', status, 'state', 'running', 'started_at', ARGV[4],
          'attempt', attempt, 'progress', '0')
        if attempt > 1 then
          redis.call('HDEL', status, 'message')
        end
        redis.call('HINCRBY', status, 'rev', 1)
        mark = 1
      end
    end
    out[#out + 1] = raw
    out[#out + 1] = mark
  end
  if taken >= want then
    break
  end
end
return out
