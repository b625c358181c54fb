-- heartbeat.lua: register or renew this worker process (its lease and Sidekiq's process record).
-- KEYS[1] lease    KEYS[2] our workers set    KEYS[3] Sidekiq processes set
-- KEYS[4] Sidekiq process hash    KEYS[5] Sidekiq signals list of the process
-- KEYS[6] this minute's counters (stat:minute:<n>)
-- ARGV[1] lease ttl (ms)    ARGV[2] 'register' or 'renew'    ARGV[3] identity
-- ARGV[4] info JSON    ARGV[5] busy count    ARGV[6] beat (epoch s)    ARGV[7] quiet 'true'/'false'
-- ARGV[8] rss (KiB)    ARGV[9] Sidekiq process record ttl (s)
-- ARGV[10] jobs processed since the last beat    ARGV[11] of which failed
-- ARGV[12] ttl (s) of the minute counters
-- Returns: 1 alive; {1, signal, ...} alive, with the signals an operator sent (oldest first,
-- at most ten per beat; they leave the list); 0 the lease had expired (the process must take a new identity, since
-- the reaper may already have handed its jobs to others); {-1, key} that key (the workers
-- set) holds another type: nothing is written.
-- Type checks come first. A process missing from `workers` could never be reaped, so with a
-- workers set of another type no lease is taken or renewed (the process stops fetching);
-- a lease key that is not a string is not ours (register: taken; renew: lost); Sidekiq's
-- set and hash, when of another type, are left as they are.
-- PEXPIRE comes before any other write: it is a write Redis allows at maxmemory, and a
-- script that has called a write may finish, so a worker can register and beat while Redis
-- is full (draining jobs is what frees memory). Renewal by PEXPIRE cannot revive an expired
-- lease. Register refuses an identity whose lease exists without touching it (its holder's
-- TTL stays), and otherwise PEXPIREs the missing key (a no-op that counts as that first
-- write) before SET NX.

local workers = kind(KEYS[2])
if workers ~= 'set' and workers ~= 'none' then
  return {-1, KEYS[2]}
end
local lease = kind(KEYS[1])
local ok
if ARGV[2] == 'register' then
  if lease ~= 'none' then
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ok = redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX')
else
  if lease ~= 'string' then
    return 0
  end
  ok = redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1
end
if not ok then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[3])
local processes = kind(KEYS[3])
if processes == 'set' or processes == 'none' then
  redis.call('SADD', KEYS[3], ARGV[3])
end
local record = kind(KEYS[4])
if record == 'hash' or record == 'none' then
  -- `leased_until` (ms, Redis's clock): reapers leave this process alone until then even
  -- if its lease key vanishes early (deleted, or a failover to a replica that lags), so
  -- that the process notices the loss and stops its jobs first.
  local leased_until = now_ms() + tonumber(ARGV[1])
  redis.call('HSET', KEYS[4], 'info', ARGV[4], 'busy', ARGV[5], 'beat', ARGV[6],
    'quiet', ARGV[7], 'rss', ARGV[8], 'leased_until', string.format('%d', leased_until))
  redis.call('EXPIRE', KEYS[4], ARGV[9])
end
-- The minute counters ride on the beat, so the hot path pays nothing for the dashboard's
-- chart; a hash of another type, or a field HINCRBY would refuse (not an integer, or near
-- overflow), is left alone: the counts are lost, the beat is not (an error here would come
-- after the lease's renewal, and the process would take it as not renewed).
local function countable(count)
  return count == false or (#count <= 15 and string.match(count, '^%d+$') ~= nil)
end
if ARGV[10] ~= '0' and holds(KEYS[6], 'hash') then
  local counts = redis.call('HMGET', KEYS[6], 'processed', 'failed')
  if countable(counts[1]) and countable(counts[2]) then
    redis.call('HINCRBY', KEYS[6], 'processed', ARGV[10])
    if ARGV[11] ~= '0' then
      redis.call('HINCRBY', KEYS[6], 'failed', ARGV[11])
    end
    redis.call('EXPIRE', KEYS[6], ARGV[12])
  end
end
-- Signals (signal.lua) are read here, as Sidekiq's heartbeat reads them, so a quiet or stop
-- costs no command of its own; a list of another type is no signal.
if kind(KEYS[5]) == 'list' then
  local signals = redis.call('RPOP', KEYS[5], 10)
  if signals then
    table.insert(signals, 1, 1)
    return signals
  end
end
return 1
