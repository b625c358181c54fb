-- prelude.lua: the helpers scripts share, written once. Each starts at a `-- @helper NAME
-- [needs NAME ...]` line; the `lua!` macro puts in front of a script only the helpers it
-- calls, with what they need (prelude.rs), since defining a local function costs every call
-- of the script.

-- @helper kind
-- The type of `key` ('none' when it is absent).
local function kind(key)
  return redis.call('TYPE', key)['ok']
end

-- @helper holds needs kind
-- Whether `key` holds a `want` (a Redis type name), or nothing yet.
local function holds(key, want)
  local found = kind(key)
  return found == want or found == 'none'
end

-- @helper now_secs
-- Redis's clock, the one every dyno shares: epoch seconds (with microseconds).
local function now_secs()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end

-- @helper now_ms
-- Redis's clock in whole milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- @helper bury
-- Adds `member` to dead set `dead` at `score` (epoch seconds, a number) and trims the set as
-- Sidekiq does: deaths older than `max_age` seconds, then all but the newest `max_jobs`.
local function bury(dead, member, score, max_jobs, max_age)
  redis.call('ZADD', dead, string.format('%.6f', score), member)
  redis.call('ZREMRANGEBYSCORE', dead, '-inf', string.format('%.6f', score - tonumber(max_age)))
  redis.call('ZREMRANGEBYRANK', dead, 0, -(tonumber(max_jobs) + 1))
end

-- @helper counter_ok needs kind
-- Whether INCR can add to counter `key`: absent, or an integer INCR reads (no sign but '-',
-- no leading zero) far enough from the 64-bit limit.
local function counter_ok(key)
  local found = kind(key)
  if found == 'none' then
    return true
  end
  if found ~= 'string' then
    return false
  end
  local v = redis.call('GET', key)
  return #v <= 18 and (v == '0' or string.match(v, '^%-?[1-9]%d*$') ~= nil)
end

-- @helper next_rev
-- A record's `rev` after one more change, from the `rev` it holds: a missing or unreadable
-- one reads as 1 (status::read_rev), so the change makes it 2.
local function next_rev(old)
  if old and #old <= 15 and string.match(old, '^%d+$') then
    return tonumber(old) + 1
  end
  return 2
end

-- @helper expire_cancelled
-- Once a cancelled job is dropped, its record (kept for as long as the job waited, see
-- cancel.lua) gets the retention cancel.lua noted in it. `key` holds a hash.
local function expire_cancelled(key)
  local keep = tonumber(redis.call('HGET', key, 'retention') or '')
  if keep and keep == keep and keep >= 1 and keep <= 315360000 then
    redis.call('EXPIRE', key, string.format('%d', keep))
  end
end

-- @helper held_job needs kind next_rev expire_cancelled
-- Where a script that settles a held job starts (fail, requeue, defer): 'gone' when
-- processing list `list` no longer holds `raw` (another worker owns it now); 'cancelled'
-- when its record `status` says so (the job is then dropped from the list, and the record
-- may expire); else 'held'. Also returns the type of `status` and, for a hash, the `rev`
-- after the change and its `watched_until` (for announce).
local function held_job(list, raw, status)
  if kind(list) ~= 'list' or not redis.call('LPOS', list, raw, 'RANK', -1) then
    return 'gone', nil, nil, nil
  end
  local found = kind(status)
  if found ~= 'hash' then
    return 'held', found, nil, nil
  end
  local record = redis.call('HMGET', status, 'state', 'rev', 'watched_until')
  if record[1] == 'cancelled' then
    redis.call('LREM', list, -1, raw)
    expire_cancelled(status)
    return 'cancelled', found, nil, nil
  end
  -- A missing or unreadable rev reads as 1 (status::read_rev).
  return 'held', found, next_rev(record[2]), record[3]
end

-- @helper refused_unless needs holds
-- {-1, key} when `key` holds something other than a `want` (the reply every script gives
-- for a destination of another type, before any write), else nil.
local function refused_unless(key, want)
  if not holds(key, want) then
    return {-1, key}
  end
  return nil
end

-- @helper announce needs now_ms
-- Redis's clock in ms, read at most once per script and only when a record is watched, so
-- the scripts of unwatched jobs (the hot path) never call TIME for it.
local clock_ms = nil

-- After a change of status record `key` to `rev`: when a long poll watches it (`watched`, the
-- record's watched_until as read with the fields the script reads anyway, has not passed),
-- PUBLISH '<rev> <key>' on `channel`, the one channel every web process subscribes to.
-- Unwatched records cost nothing more than the extra field of their HMGET.
local function announce(channel, key, rev, watched)
  local until_ms = tonumber(watched or '')
  if not until_ms then
    return
  end
  if not clock_ms then
    clock_ms = now_ms()
  end
  if until_ms >= clock_ms then
    redis.call('PUBLISH', channel, string.format('%d', rev) .. ' ' .. key)
  end
end

-- @helper known_id needs kind
-- For a job whose id may be known already: 0 when a record exists at `key` (write
-- nothing, the id is taken), {-1, key} when a key of another type does, else nil.
local function known_id(key)
  local found = kind(key)
  if found == 'hash' then
    return 0
  elseif found ~= 'none' then
    return {-1, key}
  end
  return nil
end


-- @helper packed_ms
-- Epoch seconds `t` (text) as whole milliseconds; nil when absent or unreadable.
local function packed_ms(t)
  local v = tonumber(t or '')
  if v and v == v and v >= 0 and v <= 1e11 then
    return math.floor(v * 1000 + 0.5)
  end
  return nil
end

-- @helper pack_finished needs packed_ms
-- A succeeded job's record in the packed form of the finished-record store, version 1
-- (finished_store.rs), from its fields as text (nil when absent): nil when it cannot be
-- packed without loss (no readable finished_at, a text field other than the result holding
-- the separator, or an optional one present but empty), and the caller keeps the record in
-- its own hash. Written for the hot path (about 2.4 µs a call here): no table, no
-- closure, decimal numbers (base 36 would save 5 bytes and cost 1.9 µs more).
local function pack_finished(rev, attempt, queue, class, owner, message, started, enqueued,
                             created, run_at, finished, result)
  local anchor = packed_ms(finished)
  if not anchor then
    return nil
  end
  local finished_ms = anchor
  -- An empty text field reads back as an absent one: one that is there but empty (an
  -- owner of '', which an access hook may not take for "no owner") stays in its hash.
  if queue == '' or class == '' or owner == '' or message == '' then
    return nil
  end
  attempt, queue, class = attempt or '', queue or '', class or ''
  owner, message = owner or '', message or ''
  if string.find(attempt, '|', 1, true) or string.find(queue, '|', 1, true)
    or string.find(class, '|', 1, true) or string.find(owner, '|', 1, true)
    or string.find(message, '|', 1, true) then
    return nil
  end
  -- Each time as the milliseconds before the last one present before it in the chain, so
  -- that a job that waited long pays for the wait once; '' when absent or unreadable, as a
  -- reader of the hash would read it.
  local s, e, c, r = '', '', '', ''
  local t = packed_ms(started)
  if t then
    s, anchor = string.format('%d', anchor - t), t
  end
  t = packed_ms(enqueued)
  if t then
    e, anchor = string.format('%d', anchor - t), t
  end
  t = packed_ms(created)
  if t then
    c, anchor = string.format('%d', anchor - t), t
  end
  t = packed_ms(run_at)
  if t then
    r = string.format('%d', anchor - t)
  end
  return string.format('S|%s|%s|%d|%s|%s|%s|%s|%s|%s|%s|%s|%s', rev, attempt,
    finished_ms, s, e, c, r, queue, class, owner, message, result or '')
end
