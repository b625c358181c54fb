-- pause.lua: pause or resume a queue: workers take nothing from a paused queue.
-- KEYS[1] paused set
-- ARGV[1] queue name    ARGV[2] '1' pause, '0' resume    ARGV[3] wake channel
-- ARGV[4] the notice workers read as "the paused set changed" (not a queue name)
-- Returns: 1 changed; 0 it already was; {-1, key} when the paused set holds another type.
-- The set survives restarts; the notice makes every worker re-read it at once (each also
-- re-reads it on a timer, for a notice lost while its subscription was down).
local refused = refused_unless(KEYS[1], 'set')
if refused then
  return refused
end
local changed
if ARGV[2] == '1' then
  changed = redis.call('SADD', KEYS[1], ARGV[1])
else
  changed = redis.call('SREM', KEYS[1], ARGV[1])
end
if changed == 1 then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return changed
