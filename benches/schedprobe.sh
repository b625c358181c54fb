#!/usr/bin/env bash
# benches/schedprobe.sh PID OUTFILE: every 50 ms until PID exits, one line
# "unix_ms on_cpu_ns runqueue_wait_ns" from /proc/PID/schedstat. Deltas over a drain window
# (loadtest's drain_started_unix_ms / drain_ended_unix_ms) tell a Redis that waits for
# requests (round trips) from one that waits for a CPU (the machine's cores).
while [[ -e /proc/$1 ]]; do
  read -r cpu wait _ </proc/"$1"/schedstat
  echo "$(date +%s%3N) $cpu $wait"
  sleep 0.05
done >"$2"
