-- retry_now.lua: an operator's "retry now": members of the schedule, retry or dead set go
-- into their queues at once, pushed like a new job (LPUSH), as
-- Sidekiq's `SortedEntry#retry` / `JobSet#retry_all` do.
-- KEYS[1] the set    KEYS[2] queues set
-- then per member i: KEYS[1+2i] its queue list    KEYS[2+2i] its status hash
-- ARGV[1] now (epoch seconds)    ARGV[2] wake channel    ARGV[3] status channel
-- ARGV[4] status ttl (s) of a live job
-- then per member i, three entries: the member; the job as its queue gets it (with
--   `enqueued_at`); its queue name
-- Returns: {-1, set} when the set holds another type (nothing written); else one code per
--   member: 1 queued; 0 no longer in the set (moved or removed by someone else); 2 its
--   record says cancelled, so it was dropped (cancel.lua's rule) instead of queued; -1 its
--   queue holds another type, so it stays in the set.
-- A record of another type is left alone and the job still moves.
local refused = refused_unless(KEYS[1], 'zset')
if refused then
  return refused
end
local queues_ok = holds(KEYS[2], 'set')
local codes = {}
local woken = {}
for i = 1, (#ARGV - 4) / 3 do
  local base = 4 + (i - 1) * 3
  local member, payload, queue = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local dest, status = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  if not redis.call('ZSCORE', KEYS[1], member) then
    codes[i] = 0
  else
    local record = {false, false, false}
    if kind(status) == 'hash' then
      record = redis.call('HMGET', status, 'state', 'rev', 'watched_until')
    end
    if record[1] == 'cancelled' then
      expire_cancelled(status)
      redis.call('ZREM', KEYS[1], member)
      codes[i] = 2
    elseif holds(dest, 'list') then
      redis.call('LPUSH', dest, payload)
      if queues_ok then
        redis.call('SADD', KEYS[2], queue)
      end
      if record[1] then
        -- Queued again: the fields of the set it left no longer describe it, and the record
        -- must live as long as a waiting job's (a dead record had the short retention).
        local rev = next_rev(record[2])
        redis.call('HDEL', status, 'finished_at', 'run_at')
        redis.call('HSET', status, 'state', 'queued', 'enqueued_at', ARGV[1],
          'rev', string.format('%d', rev))
        redis.call('EXPIRE', status, ARGV[4])
        announce(ARGV[3], status, rev, record[3])
      end
      redis.call('ZREM', KEYS[1], member)
      codes[i] = 1
      woken[queue] = true
    else
      codes[i] = -1
    end
  end
end
for queue, _ in pairs(woken) do
  redis.call('PUBLISH', ARGV[2], queue)
end
return codes
