#!/usr/bin/env bash
# Memory per status record in candidate layouts and in the finished-record store as built
# (docs/benchmarks.md, "Status store: where the bytes go" and "Status store after the
# redesign"): N (100,000) records each, written by EVAL loops into a private
# redis-server on PORT (7555), measured as the used_memory delta per record.
#   benches/status_memory_probe.sh
set -euo pipefail
PORT=${PORT:-7555}
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --logfile /tmp/mem_probe.log
sleep 0.3
R="redis-cli -p $PORT"
N=${N:-100000}
measure() { # name lua
  $R flushall >/dev/null
  local before after
  before=$($R info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
  $R eval "$2" 0 "$N" >/dev/null
  after=$($R info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
  echo "$1: $(( (after - before) / N )) bytes/record"
}
# Today: one hash per job, finished record (state, queue, class, created_at, enqueued_at,
# started_at, finished_at, attempt, rev, result) + EXPIRE.
measure "per-job hash, finished, today" "
for i=1,tonumber(ARGV[1]) do
  local k = 'jobstatus:' .. string.format('%032x', i * 2654435761)
  redis.call('HSET', k, 'state','succeeded','queue','default','class','Noop','created_at','1796170000.123456','enqueued_at','1796170000.123456','started_at','1796170001.123456','finished_at','1796170001.223456','attempt','1','rev','3','result','null')
  redis.call('EXPIRE', k, 86400)
end"
measure "per-job hash, queued, today" "
for i=1,tonumber(ARGV[1]) do
  local k = 'jobstatus:' .. string.format('%032x', i * 2654435761)
  redis.call('HSET', k, 'state','queued','queue','default','class','Noop','created_at','1796170000.123456','enqueued_at','1796170000.123456')
  redis.call('EXPIRE', k, 2592000)
end"
# Packed value in one field of a shared hash: 4096 shards (listpack while <= 128 entries).
measure "4096 shards, packed finished value (32-hex field)" "
for i=1,tonumber(ARGV[1]) do
  local id = string.format('%032x', i * 2654435761)
  redis.call('HSET', 'js:' .. string.sub(id, 30), id, 's|1796170000123|1796170000123|1796170001123|1796170001223|1|3|null')
end"
measure "one hash per hour, packed finished value (hashtable)" "
for i=1,tonumber(ARGV[1]) do
  local id = string.format('%032x', i * 2654435761)
  redis.call('HSET', 'js:h:493380', id, 's|1796170000123|1796170000123|1796170001123|1796170001223|1|3|null')
end"
measure "job JSON in a list, 64-byte arg (the queued job itself)" "
for i=1,tonumber(ARGV[1]) do
  local id = string.format('%032x', i * 2654435761)
  redis.call('LPUSH', 'queue:default', '{\"class\":\"Noop\",\"args\":[\"' .. string.rep('x', 64) .. '\"],\"jid\":\"' .. id .. '\",\"queue\":\"default\",\"retry\":true,\"created_at\":1796170000.123456,\"enqueued_at\":1796170000.123456}')
end"
# Compact candidates: 16 raw bytes of id as the field, a struct-packed value (state byte,
# four u32 times, attempt u8, rev u16 = 20 bytes), in shards of a shared hash.
VAL="struct.pack('>BIIIIBH', 3, 1000, 1000, 1001, 1001, 1, 3)"
measure "4096 shards listpack, 16-byte field, 20-byte value" "
for i=1,tonumber(ARGV[1]) do
  local id = struct.pack('>IIII', i, i*7, i*13, i*2654435761 % 4294967296)
  redis.call('HSET', 'js:' .. (i % 4096), id, $VAL)
end"
measure "65536 shards listpack, 16-byte field, 20-byte value" "
for i=1,tonumber(ARGV[1]) do
  local id = struct.pack('>IIII', i, i*7, i*13, i*2654435761 % 4294967296)
  redis.call('HSET', 'js:' .. (i % 65536), id, $VAL)
end"
measure "256 shards hashtable, 16-byte field, 20-byte value" "
for i=1,tonumber(ARGV[1]) do
  local id = struct.pack('>IIII', i, i*7, i*13, i*2654435761 % 4294967296)
  redis.call('HSET', 'js:' .. (i % 256), id, $VAL)
end"
measure "4096 shards listpack, 32-hex field, 20-byte value" "
for i=1,tonumber(ARGV[1]) do
  local id = string.format('%032x', i * 2654435761)
  redis.call('HSET', 'js:' .. (i % 4096), id, $VAL)
end"
measure "4096 shards listpack, 32-hex field, 1-byte value (queued marker)" "
for i=1,tonumber(ARGV[1]) do
  local id = string.format('%032x', i * 2654435761)
  redis.call('HSET', 'js:' .. (i % 4096), id, 'q')
end"
# The finished-record store as built (queue-core/src/finished_store.rs): a no-op job's packed
# record (its value as ack_fetch.lua writes it), 32-hex id as the field, shards of
# 512 per hourly bucket with EXPIREAT, records spread over a day's 24 buckets (a steady rate
# of N a day) or all in one bucket (a burst of N).
PACKED="'S|3|1|1796170001223|100|0|0||default|Noop|||null'"
measure "finished-record store as built, a day of N jobs (24 buckets x 512 shards)" "
for i=1,tonumber(ARGV[1]) do
  local id = string.format('%032x', i * 2654435761)
  local k = '{app}:done:86400:' .. (498936 + i % 24) .. ':' .. (math.floor(i / 24) % 512)
  redis.call('HSET', k, id, $PACKED)
  redis.call('EXPIREAT', k, 1796256000 + i % 24 * 3600)
end"
measure "finished-record store as built, a burst of N jobs (1 bucket x 512 shards)" "
for i=1,tonumber(ARGV[1]) do
  local id = string.format('%032x', i * 2654435761)
  local k = '{app}:done:86400:498936:' .. (i % 512)
  redis.call('HSET', k, id, $PACKED)
  redis.call('EXPIREAT', k, 1796256000)
end"
$R shutdown nosave >/dev/null 2>&1 || true
