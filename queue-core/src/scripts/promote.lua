-- promote.lua: move due jobs from the schedule or retry set into their queues.
-- KEYS[1] schedule or retry set    KEYS[2] queues set    KEYS[3] dead set
-- ARGV[1] queue key prefix    ARGV[2] status key prefix    ARGV[3] clock offset (ms, tests)
-- ARGV[4] most jobs to move   ARGV[5] wake channel
-- Returns: {moved, ms until the next job is due or -1 when the set is empty}
-- A job whose status record says `cancelled` is dropped instead of queued.
-- Safe with any number of workers: the whole move is one atomic script, judged by Redis's
-- clock. The job JSON is never re-encoded (cjson would turn [] into {} and round floats):
-- `enqueued_at` is inserted as text before the closing brace when the job has none.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[3]) / 1000
local nows = string.format('%.6f', now)
local due = redis.call('ZRANGE', KEYS[1], '-inf', nows, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
local woken = {}
for _, raw in ipairs(due) do
  redis.call('ZREM', KEYS[1], raw)
  local ok, job = pcall(cjson.decode, raw)
  if ok and type(job) == 'table' and type(job.class) == 'string' then
    local queue = job.queue
    if type(queue) ~= 'string' or queue == '' then
      queue = 'default'
    end
    local payload = raw
    if job.enqueued_at == nil then
      -- Before the closing brace, so that the job still starts with its jid (the prefix
      -- ack_fetch.lua reads without decoding).
      local close = string.find(raw, '}%s*$')
      payload = string.sub(raw, 1, close - 1) .. ',"enqueued_at":' .. nows .. string.sub(raw, close)
    end
    local status = nil
    local state = nil
    if type(job.jid) == 'string' then
      status = ARGV[2] .. job.jid
      state = redis.call('HGET', status, 'state')
    end
    if state ~= 'cancelled' then
      redis.call('SADD', KEYS[2], queue)
      redis.call('LPUSH', ARGV[1] .. queue, payload)
      if state then
        redis.call('HSET', status, 'state', 'queued', 'enqueued_at', nows)
        redis.call('HINCRBY', status, 'rev', 1)
      end
      woken[queue] = true
    end
  else
    local wrapper = cjson.encode({
      class = 'queue::MalformedJob', args = {}, queue = 'dead', jid = redis.sha1hex(raw),
      error_class = 'MalformedPayload', error_message = 'not valid job JSON in ' .. KEYS[1],
      failed_at = now, raw = string.sub(raw, 1, 4096)
    })
    redis.call('ZADD', KEYS[3], nows, wrapper)
  end
end
for queue, _ in pairs(woken) do
  redis.call('PUBLISH', ARGV[5], queue)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then
  wait = math.max(0, math.floor((tonumber(nxt[2]) - now) * 1000))
end
return {#due, wait}
