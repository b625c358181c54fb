-- start.lua: marks the jobs a worker just took as running, before it runs them. Tracked jobs
-- taken without a record (pushed by another client, such as Sidekiq's Ruby client) get one.
-- Reports the jobs cancelled while they were queued.
-- KEYS[i] status hash of job i
-- ARGV[1] now (epoch seconds)    ARGV[2] status ttl (s) while alive    ARGV[3] status channel
-- then per job i, four entries: attempt number, queue, class, '1' when its type keeps a
--   status record (one is created if missing) or '0'
-- Returns: one entry per job: 1 marked running, 0 cancelled (skip it and ack it), 2 no record
--   (an untracked job, or a key of another type in the record's place, left alone): run it.
-- At maxmemory: HDEL is a write Redis allows when full, and a script that has written may
-- go on writing, so a full Redis still lets workers start, and so drain, their jobs.
local out = {}
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 4
  local key = KEYS[i]
  local record = redis.pcall('HMGET', key, 'state', 'rev', 'watched_until')
  if record['err'] then
    out[i] = 2
  elseif record[1] == 'cancelled' then
    out[i] = 0
  elseif record[1] then
    -- A queued record may omit rev: it is then 1. A damaged one starts again from 1.
    local rev = next_rev(record[2])
    -- A new attempt clears the last one's message (and is the write allowed when full).
    redis.call('HDEL', key, 'message')
    redis.call('HSET', key, 'state', 'running', 'started_at', ARGV[1],
      'attempt', ARGV[base + 1], 'progress', '0', 'rev', string.format('%d', rev))
    if record[3] then
      announce(ARGV[3], key, rev, record[3])
    end
    out[i] = 1
  elseif ARGV[base + 4] == '1' then
    redis.call('HDEL', key, 'message')
    redis.call('HSET', key, 'state', 'running', 'started_at', ARGV[1],
      'attempt', ARGV[base + 1], 'queue', ARGV[base + 2], 'class', ARGV[base + 3],
      'progress', '0', 'rev', '1')
    redis.call('EXPIRE', key, ARGV[2])
    out[i] = 1
  else
    out[i] = 2
  end
end
return out
