-- delete.lua: an operator's "delete": members of the schedule, retry or dead set are
-- removed, with their status records, as Sidekiq's `SortedEntry#delete` / `JobSet#clear`.
-- KEYS[1] the set    then per member i: KEYS[1+i] its status hash (the set again when the
--   member has no readable id)
-- ARGV[1] status channel    ARGV[2] the state a record of a job in this set shows
--   ('scheduled', 'retrying' or 'dead')
-- then per member i, two entries: the member; '1' when KEYS[1+i] is its status hash, or '0'
-- Returns: {-1, set} when the set holds another type (nothing written); else one code per
--   member: 1 deleted; 0 no longer in the set.
-- The record goes only while it describes this entry (its state is the set's, or
-- cancelled): a record that says queued or running belongs to a copy of the job that lives
-- elsewhere and stays true. A deleted record that a long poll watches is announced, so the
-- waiter re-reads it at once and answers "not found".
local refused = refused_unless(KEYS[1], 'zset')
if refused then
  return refused
end
local codes = {}
for i = 1, (#ARGV - 2) / 2 do
  local member, has_status = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  local status = KEYS[1 + i]
  if not redis.call('ZSCORE', KEYS[1], member) then
    codes[i] = 0
  else
    if has_status == '1' and kind(status) == 'hash' then
      local record = redis.call('HMGET', status, 'state', 'rev', 'watched_until')
      if record[1] == ARGV[2] or record[1] == 'cancelled' then
        redis.call('DEL', status)
        announce(ARGV[1], status, next_rev(record[2]), record[3])
      end
    end
    redis.call('ZREM', KEYS[1], member)
    codes[i] = 1
  end
end
return codes
