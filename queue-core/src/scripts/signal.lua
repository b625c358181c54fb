-- signal.lua: an operator asks a worker process to quiet (stop fetching) or stop (shut down),
-- as Sidekiq's Web UI does.
-- KEYS[1] the process's hash    KEYS[2] its signals list
-- ARGV[1] the signal ('TSTP' quiet, 'TERM' stop)    ARGV[2] signals list ttl (s)
-- ARGV[3] wake channel    ARGV[4] the notice "process <identity> has a signal"
-- Returns: 1 sent; 0 no such process (no hash: never registered, or its record expired);
-- {-1, key} the signals list holds another type: nothing is written.
-- The process pops its signals on its next heartbeat; the notice makes it beat at once, so
-- the signal acts within a round trip while its pub/sub connection is up. The list expires
-- like Sidekiq's, so a signal for a process that died unnoticed does not linger.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  return 0
end
local refused = refused_unless(KEYS[2], 'list')
if refused then
  return refused
end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
