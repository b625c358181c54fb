-- ack_fetch.lua: the worker's one round trip per cycle. It finishes the jobs that succeeded
-- (or were skipped as cancelled), then takes up to N more into the processing list. Either
-- half may be empty. The jobs taken are marked running by start.lua, once the worker has
-- read their ids: every key a script touches arrives in KEYS.
-- KEYS[1] lease of this process    KEYS[2] processing list of this process
-- KEYS[3] stat:processed    KEYS[4] stat:processed:<day>    KEYS[5] finished-record keeps set
-- KEYS[6 .. 5+2A] per acked job i: its status hash, then its finished-record shard
-- KEYS[6+2A ..] queue lists, in the order to try
-- ARGV[1] A = number of acks    ARGV[2] most jobs to take    ARGV[3] lease ttl (ms)
-- ARGV[4] now (epoch seconds)   ARGV[5] longest id or packed record that may be packed
--   (finished_store.rs; 0: pack nothing)
-- ARGV[6] ttl (s) of the daily counter    ARGV[7] status channel
-- then per acked job, seven entries: raw job as fetched; '0' untracked / '1' tracked, first
--   attempt / '2' tracked, a retry (clears the last error); result JSON ('' for none; '-'
--   when the job was cancelled and did not run); job id; seconds its finished record is
--   kept ('0': dropped at once); epoch seconds at which its shard expires; the most the
--   worker's clock may be off Redis's for the record to be packed (s)
-- Returns: {-1, KEYS[2]} when the processing list holds another type (nothing is done), or
-- {lease, ack_1 .. ack_A, job, job, ...} where
--   lease is 1, or 0 when this process's lease has expired: nothing was taken (the reaper may
--     already own the processing list), though the acks were applied;
--   ack_i is 1 acked, or 0 the job was no longer in the processing list (the reaper handed
--     it to another worker): its result is rejected;
--   the jobs taken follow, oldest first.
-- A succeeded job's record is packed into its shard and its own hash deleted, when it fits
-- (pack_finished, finished_store.rs); otherwise it stays in its own hash, kept as long.
-- At-least-once: a job stays in the processing list until its ack lands here, so a crash
-- at any point means it runs again, never that it is lost.
-- Writes at maxmemory: LREM and PEXPIRE are writes Redis allows when full, and a script that
-- has written may finish, so workers keep draining queues, which frees memory.
local acks = tonumber(ARGV[1])
local want = tonumber(ARGV[2])

-- Checks first: this process's own list must be a list, or nothing can be acked or taken.
local processing = kind(KEYS[2])
if processing ~= 'list' and processing ~= 'none' then
  return {-1, KEYS[2]}
end
local out = {1}
if want > 0 then
  -- A lease key of another type is no lease (and is not renewed).
  if kind(KEYS[1]) ~= 'string' or redis.call('PEXPIRE', KEYS[1], ARGV[3]) == 0 then
    out[1] = 0
    want = 0
  end
end

local acked = 0
local pack_limit = tonumber(ARGV[5])
-- Each shard's expiry and each period's entry in the keeps set, written once per call.
local expiring, kept = {}, {}
local redis_now = nil
for i = 1, acks do
  local base = 7 + (i - 1) * 7
  local raw, tracked, result = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local jid, keep, shard_until = ARGV[base + 4], ARGV[base + 5], ARGV[base + 6]
  local clock_tolerance = ARGV[base + 7]
  local status, shard = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  if redis.call('LREM', KEYS[2], -1, raw) == 1 then
    out[#out + 1] = 1
    if result == '-' and redis.pcall('HGET', status, 'state') == 'cancelled' then
      -- Skipped as cancelled: its record, kept while it waited, may now expire.
      expire_cancelled(status)
    end
    if result ~= '-' then
      acked = acked + 1
      -- A key of another type where the record belongs (a name collision, or planted) is
      -- left alone: the job is done either way, and an error here would stall every ack.
      local read = nil
      if tracked ~= '0' then
        read = redis.pcall('HMGET', status, 'rev', 'watched_until', 'given', 'error', 'attempt',
          'queue', 'class', 'owner', 'message', 'started_at', 'enqueued_at', 'created_at',
          'run_at', 'result')
        if read['err'] then
          read = nil
        end
      end
      if read then
        local watched = read[2]
        local rev = string.format('%d', next_rev(read[1] or nil))
        -- A caller-given id keeps its record at its own key, where an enqueue with the same
        -- id finds it; so does a record with an error this ack does not clear (not part of
        -- the packed form).
        local packed = nil
        if keep ~= '0' and #jid <= pack_limit and not read[3]
          and (tracked == '2' or not read[4]) then
          local kept_result = result
          if result == '' then
            kept_result = read[14] or ''
          end
          packed = pack_finished(rev, read[5] or nil, read[6] or nil, read[7] or nil,
            read[8] or nil, read[9] or nil, read[10] or nil, read[11] or nil, read[12] or nil,
            read[13] or nil, ARGV[4], kept_result)
        end
        -- The shard was picked by the worker's clock, and readers look for it by theirs,
        -- around Redis's: a worker whose clock is off by more than half a bucket
        -- (finished_store::Spot::clock_tolerance) would put the record where no reader
        -- looks, so it stays in its own hash, whose expiry does not depend on any clock.
        if packed then
          if not redis_now then
            redis_now = tonumber(redis.call('TIME')[1])
          end
          if math.abs(tonumber(ARGV[4]) - redis_now) > tonumber(clock_tolerance) then
            packed = nil
          end
        end
        if keep == '0' then
          -- Its job type keeps no finished record. A long poll watching it is still told
          -- (its re-read finds no record) rather than wait out its wait and answer the
          -- record it read before, which says running.
          redis.call('DEL', status)
        elseif packed and #packed <= pack_limit
          and type(redis.pcall('HSET', shard, jid, packed)) == 'number' then
          if not expiring[shard] then
            expiring[shard] = true
            -- Never sooner than the retention from Redis's own clock: a worker whose clock
            -- runs far behind must not make Redis drop a shard, and the others' records in it.
            redis.call('EXPIREAT', shard, string.format('%d',
              math.max(tonumber(shard_until), redis_now + tonumber(keep))))
          end
          if not kept[keep] then
            kept[keep] = true
            redis.pcall('SADD', KEYS[5], keep)
          end
          redis.call('DEL', status)
        else
          if result ~= '' then
            redis.call('HSET', status, 'state', 'succeeded', 'finished_at', ARGV[4],
              'progress', '100', 'result', result, 'rev', rev)
          else
            redis.call('HSET', status, 'state', 'succeeded', 'finished_at', ARGV[4],
              'progress', '100', 'rev', rev)
          end
          if tracked == '2' then
            redis.call('HDEL', status, 'error')
          end
          redis.call('EXPIRE', status, keep)
        end
        if watched then
          announce(ARGV[7], status, rev, watched)
        end
      end
    end
  else
    out[#out + 1] = 0
  end
end
if acked > 0 then
  -- A counter that INCRBY cannot add to is left as it is.
  if counter_ok(KEYS[3]) then
    redis.call('INCRBY', KEYS[3], acked)
  end
  if counter_ok(KEYS[4]) then
    redis.call('INCRBY', KEYS[4], acked)
    redis.call('EXPIRE', KEYS[4], ARGV[6])
  end
end

local taken = 0
for q = 6 + 2 * acks, #KEYS do
  if taken >= want then
    break
  end
  -- A queue key of another type is skipped rather than failing the call, which would stop
  -- this worker from taking jobs from its other queues.
  if redis.call('TYPE', KEYS[q])['ok'] == 'list' then
    -- The oldest jobs are at the right end: move a block of them with a few commands, oldest
    -- first, so the processing list keeps the queue's order (acks, mostly oldest first,
    -- then find their job near the tail, where LREM starts). The copy lands before the
    -- trim, and in slices that unpack can take, so that an error cannot drop jobs.
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
      out[#out + 1] = raw
    end
  end
end
return out
