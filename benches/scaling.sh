#!/usr/bin/env bash
# Drain throughput against worker processes, on one Redis and on a Redis Cluster
# (docs/benchmarks.md, "Scaling with worker processes and Redis Cluster").
#
#   benches/scaling.sh OUT_DIR [PROCESSES...]        (default processes: 1 2 5 10 20)
#   RUNS=3 JOBS=100000 LOADTEST=target/release/loadtest benches/scaling.sh /tmp/scaling
#
# Starts its own servers on ports from BASE_PORT (7300) up (one redis-server; a cluster of
# 3 masters + REPLICAS (1) replicas each, formed with redis-cli --cluster create) and stops
# them at the end.
# For every point and run it writes, as one JSON line per run in OUT_DIR/<series>.jsonl:
# the loadtest's --json object, plus the redis-benchmark baseline of that run
# (`redis-benchmark -t lpush -P 16 -q`, on the same server or, with --cluster, on the
# cluster) and the machine's 1-minute load and CPU steal over the whole run.
# Series: single (one server), cluster (one app: one slot, one master), spread (three apps at
# once, hash tags on three different masters, drains started together with --go-at), queues
# (one app whose three queues are spread over the masters: REDIS_CLUSTER_SPREAD=queues,
# loadtest --queues 3; each worker process works the three queues).
set -euo pipefail

OUT=${1:?usage: scaling.sh OUT_DIR [PROCESSES...]}
shift
PROCS=("${@:-1 2 5 10 20}")
read -r -a PROCS <<<"${PROCS[*]}"
RUNS=${RUNS:-3}
JOBS=${JOBS:-100000}
LOADTEST=${LOADTEST:-${CARGO_TARGET_DIR:-target}/release/loadtest}
SERIES=${SERIES:-single cluster spread queues}
BASE_PORT=${BASE_PORT:-7300}
# Replicas per master (1: each master streams every write to a replica, as a production
# cluster does; 0: no replication, which separates its cost from the cluster's own).
REPLICAS=${REPLICAS:-1}
mkdir -p "$OUT"
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

# Short phases around the drain: the drain is what this measures.
LT_ARGS=(--jobs "$JOBS" --json --no-c100 --ping-samples 500 --enqueue-samples 500 --pickup-samples 100)

start_server() { # port [args...]
  local port=$1
  shift
  mkdir -p "$DIR/$port"
  (cd "$DIR/$port" && exec redis-server --port "$port" --bind 127.0.0.1 --save '' \
    --appendonly no "$@" >"$DIR/$port/log" 2>&1) &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis-server on $port did not start" >&2
  exit 1
}

steal_ticks() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

# One JSON line: the loadtest objects (one per app) and this run's context.
record() { # series procs run baseline steal0 total0 load0 files...
  local series=$1 procs=$2 run=$3 baseline=$4 s0=$5 t0=$6 load0=$7
  shift 7
  read -r s1 t1 < <(steal_ticks)
  python3 - "$series" "$procs" "$run" "$baseline" "$s0" "$t0" "$s1" "$t1" "$load0" "$@" <<'EOF' >>"$OUT/$series.jsonl"
import json, sys
series, procs, run, baseline, s0, t0, s1, t1, load0, *files = sys.argv[1:]
apps = [json.loads(open(f).read().strip().splitlines()[-1]) for f in files]
load1 = float(open('/proc/loadavg').read().split()[0])
dt = int(t1) - int(t0)
print(json.dumps({
    "series": series, "processes_per_app": int(procs), "run": int(run),
    "redis_benchmark_lpush_p16": float(baseline or 0),
    "run_steal_pct": round(100 * (int(s1) - int(s0)) / dt, 2) if dt else None,
    "load_1m_start": float(load0), "load_1m_end": load1, "apps": apps,
}))
EOF
}

baseline() { # redis-benchmark arguments selecting the target
  redis-benchmark "$@" -t lpush -P 16 -n 1000000 -q 2>/dev/null |
    tr '\r' '\n' | awk '/LPUSH:/{for(i=1;i<=NF;i++) if($i ~ /^[0-9.]+$/){print $i; exit}}'
}

# ---- the servers: one redis-server, and a cluster of 3 masters (+ REPLICAS each)
PORT=$BASE_PORT
[[ " $SERIES " == *" single "* ]] && start_server "$PORT"
if [[ " $SERIES " == *" cluster "* || " $SERIES " == *" spread "* || " $SERIES " == *" queues "* ]]; then
  NODES=()
  for i in $(seq $((3 * (1 + REPLICAS)))); do
    p=$((BASE_PORT + 10 + i))
    start_server "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 5000 --repl-diskless-sync-delay 0
    NODES+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${NODES[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >"$DIR/create.log"
  FIRST=$((BASE_PORT + 11))
  for _ in $(seq 200); do
    ok=0
    for node in "${NODES[@]}"; do
      redis-cli -p "${node#*:}" cluster info | grep -q 'cluster_state:ok' && ok=$((ok + 1))
    done
    [[ $ok == "${#NODES[@]}" ]] && break
    sleep 0.1
  done
  URLS=$(printf 'redis://%s,' "${NODES[@]}")
  URLS=${URLS%,}
  # Three hash tags whose slots are served by three different masters.
  TAGS=()
  declare -A SEEN=()
  for i in $(seq 100); do
    tag="lt-$i"
    slot=$(redis-cli -p "$FIRST" cluster keyslot "{$tag}")
    master=$(redis-cli -p "$FIRST" cluster nodes | awk -v s="$slot" '
      $3 ~ /master/ { for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1];
        if (s >= r[1] && s <= r[2]) print $2 } }')
    [[ -n ${SEEN[$master]:-} ]] && continue
    SEEN[$master]=1
    TAGS+=("$tag")
    echo "tag {$tag}: slot $slot on master $master" | tee -a "$OUT/tags.txt" >&2
    [[ ${#TAGS[@]} == 3 ]] && break
  done

fi

# ---- the runs, interleaved so that the series of one point meet the same machine
for n in "${PROCS[@]}"; do
  for run in $(seq "$RUNS"); do
    if [[ " $SERIES " == *" single "* ]]; then
      read -r s0 t0 < <(steal_ticks)
      load0=$(cut -d' ' -f1 /proc/loadavg)
      b=$(baseline -p "$PORT")
      REDIS_URL=redis://127.0.0.1:$PORT "$LOADTEST" "${LT_ARGS[@]}" --processes "$n" \
        --tag lt-single >"$DIR/a.json"
      record single "$n" "$run" "$b" "$s0" "$t0" "$load0" "$DIR/a.json"
      echo "single n=$n run=$run done" >&2
    fi
    if [[ " $SERIES " == *" cluster "* ]]; then
      read -r s0 t0 < <(steal_ticks)
      load0=$(cut -d' ' -f1 /proc/loadavg)
      b=$(baseline --cluster -p "$FIRST")
      REDIS_CLUSTER_URLS=$URLS "$LOADTEST" "${LT_ARGS[@]}" --processes "$n" \
        --tag "${TAGS[0]}" >"$DIR/a.json"
      record cluster "$n" "$run" "$b" "$s0" "$t0" "$load0" "$DIR/a.json"
      echo "cluster n=$n run=$run done" >&2
    fi
    if [[ " $SERIES " == *" spread "* ]]; then
      read -r s0 t0 < <(steal_ticks)
      load0=$(cut -d' ' -f1 /proc/loadavg)
      b=$(baseline --cluster -p "$FIRST")
      # Every app's workers should be up and gated before this; the report's drain
      # start and end times show whether they were.
      go=$(($(date +%s%3N) + 8000 + 600 * n))
      LT_PIDS=()
      for k in 0 1 2; do
        REDIS_CLUSTER_URLS=$URLS "$LOADTEST" "${LT_ARGS[@]}" --processes "$n" \
          --tag "${TAGS[$k]}" --go-at "$go" >"$DIR/s$k.json" &
        LT_PIDS+=($!)
      done
      for p in "${LT_PIDS[@]}"; do wait "$p"; done
      record spread "$n" "$run" "$b" "$s0" "$t0" "$load0" "$DIR/s0.json" "$DIR/s1.json" "$DIR/s2.json"
      echo "spread n=$n run=$run done" >&2
    fi
    if [[ " $SERIES " == *" queues "* ]]; then
      read -r s0 t0 < <(steal_ticks)
      load0=$(cut -d' ' -f1 /proc/loadavg)
      b=$(baseline --cluster -p "$FIRST")
      REDIS_CLUSTER_URLS=$URLS "$LOADTEST" "${LT_ARGS[@]}" --processes "$n" --queues 3 \
        --tag "${TAGS[0]}" >"$DIR/a.json"
      record queues "$n" "$run" "$b" "$s0" "$t0" "$load0" "$DIR/a.json"
      echo "queues n=$n run=$run done" >&2
    fi
  done
done
