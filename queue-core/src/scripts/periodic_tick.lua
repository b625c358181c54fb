-- periodic_tick.lua: enqueue one tick of a periodic (cron) entry, exactly once across every
-- process that runs the entry: the entry's `last` tick only grows, and is read and moved in
-- the same atomic step as the push.
-- KEYS[1] entry hash (periodic:NAME)    KEYS[2] queue list    KEYS[3] queues set
-- KEYS[4] status hash of the tick's job (when tracked)
-- ARGV[1] definition digest    ARGV[2] tick (epoch s)    ARGV[3] the tick after it (epoch s)
-- ARGV[4] 'due' (a tick on time) or 'missed' (the newest tick missed while no worker ran,
--         for the run-once policy: only pushed when an earlier tick ran, none after it)
-- ARGV[5] job id    ARGV[6] queue name    ARGV[7] job JSON    ARGV[8] '1' tracked, '0' not
-- ARGV[9] status ttl (s)    ARGV[10] wake channel
-- ARGV[11] added to Redis's clock (ms; tests shift time with it, 0 otherwise)
-- ARGV[12] a 'due' tick later than this by Redis's clock is stale (ms; 0: never)
-- ARGV[13] '1': a stale tick still runs when the tick after it is not due (run-once policy)
-- ARGV[14..] status record: field, value, ...
-- Returns: {1, late_ms} pushed (late_ms: Redis's clock minus the tick); {0} this tick or a
-- later one was already pushed (nothing written); {3} the entry is not registered with this
-- definition (removed, or changed by a newer deploy: nothing written); {4} the tick is still
-- ahead on Redis's clock (this process's clock runs fast: nothing written, try again);
-- {5, late_ms} the offer arrived stale (it waited out a Redis stall: nothing written);
-- {6, late_ms, last} pushed, replacing a `last` tick more than a minute ahead of Redis's clock;
-- {-1, key} that key holds another type (nothing written).
if kind(KEYS[1]) ~= 'hash' then
  return {3}
end
local entry = redis.call('HMGET', KEYS[1], 'digest', 'last')
if entry[1] ~= ARGV[1] then
  return {3}
end
local tick = tonumber(ARGV[2])
local last = tonumber(entry[2] or '')
local ran = last ~= nil
local now = now_secs() + tonumber(ARGV[11]) / 1000
-- No tick is pushed before Redis's clock reaches it, so a `last` more than a minute ahead of
-- that clock is not a tick this entry ran: planted, or left by a Redis clock that stepped
-- back. Trusted, it would stop the entry until then (for ever, for a year-3000 value),
-- silently; it is replaced by this tick, and the reply says so.
local future = nil
if last and last > now + 60 then
  future = last
  last = nil
end
if last and last >= tick then
  return {0}
end
if ARGV[4] == 'missed' and not ran then
  -- An entry that never ran has missed nothing.
  return {0}
end
if tick > now then
  return {4}
end
local late_ms = math.floor((now - tick) * 1000)
local stale_after = tonumber(ARGV[12])
if ARGV[4] == 'due' and stale_after > 0 and late_ms > stale_after
  and (ARGV[13] ~= '1' or tonumber(ARGV[3]) <= now) then
  return {5, late_ms}
end
local refused = refused_unless(KEYS[2], 'list') or refused_unless(KEYS[3], 'set')
  or (ARGV[8] == '1' and known_id(KEYS[4]))
if refused == 0 then
  -- The tick's job exists (its record says so) but `last` did not move: move it now.
  redis.call('HSET', KEYS[1], 'last', ARGV[2], 'next', ARGV[3])
  return {0}
elseif refused then
  return refused
end
if ARGV[8] == '1' then
  redis.call('HSET', KEYS[4], unpack(ARGV, 14))
  redis.call('EXPIRE', KEYS[4], ARGV[9])
end
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('LPUSH', KEYS[2], ARGV[7])
redis.call('PUBLISH', ARGV[10], ARGV[6])
redis.call('HSET', KEYS[1], 'last', ARGV[2], 'next', ARGV[3], 'last_jid', ARGV[5],
  'last_enqueued_at', string.format('%.6f', now), 'last_late_ms', string.format('%d', late_ms))
if future then
  return {6, late_ms, math.floor(math.min(future, 1e15))}
end
return {1, late_ms}
