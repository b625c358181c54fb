#!/usr/bin/env bash
# Sidekiq, BullMQ and this project side by side on one private redis-server, in one run.
#
#   benches/compare/run.sh [--runs 3] [--jobs 20000] [--singles 2000] [--pickups 200] [--quiet-wait 600]
#                          [--concurrency 10] [--payload-bytes 64] [--out FILE.json]
#
# Installs what is missing (redis-server and Debian's ruby-sidekiq through
# script/ensure-redis, Node and npm from Debian, BullMQ with `npm ci` from the committed
# lock file), builds the `compare` binary, runs benches/compare/compare.py (which writes
# docs/compare/compare.json unless --out says otherwise) and draws the chart next to it
# (docs/compare/compare.svg). Takes a few minutes per run; not part of script/test.
set -euo pipefail
cd "$(dirname "$0")/../.."

WITH_SIDEKIQ=1 source script/ensure-redis
if ! have node || ! have npm; then
  echo "node/npm not found: installing Debian's nodejs and npm packages..." >&2
  apt_install nodejs npm
fi
if [ ! -f benches/compare/bullmq/node_modules/.package-lock.json ] ||
  [ benches/compare/bullmq/package-lock.json -nt benches/compare/bullmq/node_modules/.package-lock.json ]; then
  (cd benches/compare/bullmq && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo build --release -q -p benches --bin compare
ours="${CARGO_TARGET_DIR:-$PWD/target}/release/compare"

out=docs/compare/compare.json
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = --out ] && [ $((i + 1)) -lt ${#args[@]} ]; then out="${args[$((i + 1))]}"; fi
done
python3 benches/compare/compare.py --ours "$ours" "$@"
python3 benches/compare/chart.py "$out" "${out%.json}.svg"
