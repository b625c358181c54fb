-- status_read.lua: a job's status record wherever it is, its own hash or a shard of the
-- finished-record store (finished_store.rs); for a long poll, the same read also marks the
-- record watched, so that the scripts changing it announce the change (prelude.lua's
-- announce).
-- KEYS[1] the job's status hash    KEYS[2 ..] the shards its packed record may be in,
--   newest first
-- ARGV[1] job id    ARGV[2] how long a long poll will wait (ms); 0 for a plain read
-- Returns: {} no record (or keys of another type);
--   {marked, field, value, ...}: its own hash as HGETALL reads it, marked 1 when it is
--   watched for at least ARGV[2] ms from now, 0 when it was not marked (a plain read, a
--   terminal state, which never changes, or Redis refused the write at maxmemory: the
--   caller then answers at once instead of waiting unannounced);
--   {2, packed}: a packed finished record (terminal, never marked).
-- The mark is not a change: `rev` stays, nothing is announced, the expiry is untouched.
if redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
  local record = redis.call('HGETALL', KEYS[1])
  local state, watched = nil, nil
  for i = 1, #record, 2 do
    if record[i] == 'state' then
      state = record[i + 1]
    elseif record[i] == 'watched_until' then
      watched = tonumber(record[i + 1])
    end
  end
  if state then
    local marked = 0
    local wait = tonumber(ARGV[2])
    if wait > 0 and state ~= 'succeeded' and state ~= 'dead' and state ~= 'cancelled' then
      local until_ms = now_ms() + wait
      if watched and watched >= until_ms then
        marked = 1
      else
        -- A refusal (maxmemory) comes back as an error table; the read is still answered.
        local wrote = redis.pcall('HSET', KEYS[1], 'watched_until', string.format('%d', until_ms))
        if type(wrote) ~= 'table' then
          marked = 1
        end
      end
    end
    local out = {marked}
    for i = 1, #record do
      out[i + 1] = record[i]
    end
    return out
  end
end
for i = 2, #KEYS do
  -- A shard of another type holds no record: pcall's error table is not a string.
  local packed = redis.pcall('HGET', KEYS[i], ARGV[1])
  if type(packed) == 'string' then
    return {2, packed}
  end
end
return {}
