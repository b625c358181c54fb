-- requeue.lua: hand a job back to the front of its queue (shutdown, or recovery by the reaper).
-- KEYS[1] processing list    KEYS[2] queue list    KEYS[3] queues set    KEYS[4] status hash
-- ARGV[1] raw job as held    ARGV[2] job to push (may be rewritten)    ARGV[3] queue name
-- ARGV[4] '1' tracked / '0'  ARGV[5] status ttl alive (s)    ARGV[6] wake channel
-- ARGV[7] status channel
-- Returns: 1 handed back; 0 the job was no longer in the processing list; 2 its status
-- record says cancelled (it never started): the job is dropped instead; {-1, key} that key
-- (the queue list) holds another type: nothing is written.
-- RPUSH puts it at the consuming end, so it runs next, as Sidekiq does on shutdown.
-- Order (scripts/mod.rs): reads and checks, one write Redis allows at maxmemory, the queue,
-- and the removal from the processing list last. A `queues` set or status record of another
-- type is left as it is: the job still goes back.

local held, status, rev, watched = held_job(KEYS[1], ARGV[1], KEYS[4])
if held == 'gone' then
  return 0
elseif held == 'cancelled' then
  return 2
end
local queue = kind(KEYS[2])
if queue ~= 'list' and queue ~= 'none' then
  return {-1, KEYS[2]}
end
local queues = kind(KEYS[3])

-- LTRIM 0 -1 changes nothing, but as the first write it is one Redis allows at maxmemory,
-- after which it runs the rest: a full Redis must still take jobs back.
redis.call('LTRIM', KEYS[1], 0, -1)
redis.call('RPUSH', KEYS[2], ARGV[2])
if queues == 'set' or queues == 'none' then
  redis.call('SADD', KEYS[3], ARGV[3])
end
if ARGV[4] == '1' and status == 'hash' then
  redis.call('HSET', KEYS[4], 'state', 'queued', 'rev', string.format('%d', rev))
  redis.call('EXPIRE', KEYS[4], ARGV[5])
  announce(ARGV[7], KEYS[4], rev, watched)
end
redis.call('PUBLISH', ARGV[6], ARGV[3])
redis.call('LREM', KEYS[1], -1, ARGV[1])
return 1
