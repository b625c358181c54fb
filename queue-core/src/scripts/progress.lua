-- progress.lua: record a running job's progress.
-- KEYS[1] status hash    ARGV[1] percent (0-100)    ARGV[2] message ('' for none)
-- ARGV[3] status channel
-- Returns: 1 recorded; 0 the job is not running (no record, a key of another type, or
-- already finished).
-- Every value is read and checked before the one write, so the change lands whole.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  return 0
end
local record = redis.call('HMGET', KEYS[1], 'state', 'rev', 'watched_until')
if record[1] ~= 'running' then
  return 0
end
-- A missing or unreadable rev reads as 1 (status::read_rev).
local rev = next_rev(record[2])
local r = string.format('%d', rev)
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'progress', ARGV[1], 'message', ARGV[2], 'rev', r)
else
  redis.call('HSET', KEYS[1], 'progress', ARGV[1], 'rev', r)
end
announce(ARGV[3], KEYS[1], rev, record[3])
return 1
