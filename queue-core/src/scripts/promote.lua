-- promote.lua: moves due members of the schedule or retry set (found by due.lua, and read by
-- the caller) into their queues; a member whose record says cancelled is dropped, and one
-- the caller could not read as a job goes to the dead set (its record, when its id could be
-- read, says dead).
-- KEYS[1] schedule or retry set    KEYS[2] queues set
-- then per member i: KEYS[1+2i] where it goes: its queue list, or the dead set;
--   KEYS[2+2i] its status hash (the dead set again when it has none)
-- ARGV[1] now (epoch seconds, from due.lua)    ARGV[2] clock offset (ms, tests)
-- ARGV[3] wake channel    ARGV[4] status ttl (s) after a terminal state    ARGV[5] status channel
-- then per member i, five entries: the member; what to write (the job with `enqueued_at`,
--   or the dead set's wrapper); its queue name, or '' to bury it; '1' when it has a status
--   hash, or '0'; the error its record shows when it is buried ('' otherwise)
-- Returns: {moved, ms until the next member is due, or -1 when the set is empty, stuck:
--   members left in the set because where they go holds a key of another type}
-- A member another scheduler moved since due.lua read it is skipped, so any number of
-- workers may promote at once. Each member is written to its destination before it leaves
-- the set, so an error half-way leaves it in the set; a queue key of another type leaves it
-- there too, and the rest of the batch moves on.
local queues_ok = holds(KEYS[2], 'set')
local moved = 0
local stuck = 0
local woken = {}
for i = 1, (#ARGV - 5) / 5 do
  local base = 5 + (i - 1) * 5
  local member, payload, queue, has_status, shown =
    ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  local dest, status = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  if redis.call('ZSCORE', KEYS[1], member) then
    if queue == '' then
      if holds(dest, 'zset') then
        redis.call('ZADD', dest, ARGV[1], payload)
        -- Its record, unless cancelled (or of another type), says what became of it.
        if has_status == '1' then
          local read = redis.pcall('HMGET', status, 'state', 'rev', 'watched_until')
          if not read['err'] and read[1] and read[1] ~= 'cancelled' then
            local rev = next_rev(read[2])
            redis.call('HSET', status, 'state', 'dead', 'error', shown, 'finished_at', ARGV[1],
              'rev', string.format('%d', rev))
            redis.call('EXPIRE', status, ARGV[4])
            announce(ARGV[5], status, rev, read[3])
          end
        end
        redis.call('ZREM', KEYS[1], member)
        moved = moved + 1
      else
        stuck = stuck + 1
      end
    else
      -- A record of another type is left alone: the job still moves.
      local record = {false, false, false}
      if has_status == '1' then
        local read = redis.pcall('HMGET', status, 'state', 'rev', 'watched_until')
        if not read['err'] then
          record = read
        end
      end
      if record[1] == 'cancelled' then
        expire_cancelled(status)
        redis.call('ZREM', KEYS[1], member)
        moved = moved + 1
      elseif holds(dest, 'list') then
        redis.call('LPUSH', dest, payload)
        if queues_ok then
          redis.call('SADD', KEYS[2], queue)
        end
        if record[1] then
          local rev = next_rev(record[2])
          redis.call('HSET', status, 'state', 'queued', 'enqueued_at', ARGV[1],
            'rev', string.format('%d', rev))
          announce(ARGV[5], status, rev, record[3])
        end
        redis.call('ZREM', KEYS[1], member)
        moved = moved + 1
        woken[queue] = true
      else
        stuck = stuck + 1
      end
    end
  end
end
for queue, _ in pairs(woken) do
  redis.call('PUBLISH', ARGV[3], queue)
end
local now = now_secs() + tonumber(ARGV[2]) / 1000
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then
  wait = math.max(0, math.floor((tonumber(nxt[2]) - now) * 1000))
end
return {moved, wait, stuck}
