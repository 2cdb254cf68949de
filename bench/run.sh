#!/usr/bin/env bash
# The side-by-side load benchmark (issue 8): one run, one load generator (wrk), the same model
# (breast_cancer_folded.onnx, 30 features) and the same request bodies for every point:
#   1. Rampart, full defense (bench/full-defense.toml)   2. Rampart, no layers (bench/no-layers.toml)
#   1b. Rampart, full defense with a buffered audit (bench/full-defense-buffered.toml: the Python pipeline's
#       durability: its audit file is line-buffered, never synced)
#   3. a bare axum + tract server (bench/bare)           4. the Python reference pipeline (../shared/bench)
# Prints req/s, p50 and p99 per point and concurrency, the ratios full/python and full/bare, and writes JSON to
# bench/results/. Usage: bench/run.sh            (15 s per point, concurrency 1 16 64)
#                        SMOKE=1 bench/run.sh    (2 s, concurrency 1 and 16: a check that it runs, not a measurement)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

duration=${DURATION:-15}
concurrency=${CONCURRENCY:-"1 16 64"}
warmup=${WARMUP:-3}
if [ "${SMOKE:-0}" = 1 ]; then duration=2; concurrency="1 16"; warmup=1; fi
shared=${SHARED:-$root/../shared}
results="$here/results"
mkdir -p "$results"
rm -rf "$results"/full-defense-data "$results"/full-defense-buffered-data "$results"/no-layers-data "$results/keys.toml"

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
python3 -c 'import numpy' 2>/dev/null || pip install -q numpy

echo "== building (release)" >&2
cargo build --release --quiet -p rampart -p rampart-bench-bare
bin="$root/target/release"

# shellcheck source=bench/lib.sh
source "$here/lib.sh"
make_key_and_bodies

sync_us=$(disk_sync_us)
echo "disk: one 512-byte append + fdatasync, p50 $sync_us us (the floor a durable audit adds at c=1)"
json_extra+=",\"disk_fdatasync_p50_us\":$sync_us"

echo "== 1. rampart, full defense" >&2
start_rampart "$here/full-defense.toml" 8501
measure full-defense http://127.0.0.1:8501/v1/models/bench/predict "${pids[-1]}"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== 1b. rampart, full defense, buffered audit (the Python pipeline's durability)" >&2
start_rampart "$here/full-defense-buffered.toml" 8505
measure full-buffered http://127.0.0.1:8505/v1/models/bench/predict "${pids[-1]}"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== 2. rampart, no layers" >&2
start_rampart "$here/no-layers.toml" 8502
measure no-layers http://127.0.0.1:8502/v1/models/bench/predict "${pids[-1]}"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== 3. bare axum + tract" >&2
"$bin/rampart-bench-bare" "$root/crates/rampart-model/tests/models/breast_cancer_folded.onnx" 127.0.0.1:8503 >/dev/null &
pids+=($!)
wait_port 8503
measure bare http://127.0.0.1:8503/v1/models/bench/predict "${pids[-1]}"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

if [ -x "$shared/bench/run_baseline.sh" ] || [ -f "$shared/bench/run_baseline.sh" ]; then
  echo "== 4. python reference pipeline" >&2
  pypid=$(bash "$shared/bench/run_baseline.sh" 8504 "$root/crates/rampart-model/tests/models/breast_cancer_folded.onnx" \
    "$shared/models/breast_cancer_stats.json")
  pids+=("$pypid")
  wait_port 8504
  sleep 2
  measure python http://127.0.0.1:8504/predict "$pypid"
  kill "$pypid" 2>/dev/null || true
  pkill -f "uvicorn baseline_seed:app --host 127.0.0.1 --port 8504" 2>/dev/null || true
else
  echo "== 4. python reference pipeline: skipped ($shared/bench not found)" >&2
fi

echo
echo "ratios (req/s):"
for c in $concurrency; do
  f=${rps[full-defense,$c]:-0}; fb=${rps[full-buffered,$c]:-0}; b=${rps[bare,$c]:-0}; p=${rps[python,$c]:-0}
  awk -v c="$c" -v f="$f" -v fb="$fb" -v b="$b" -v p="$p" 'BEGIN {
    printf "  c=%-3s full/python %s   full/bare %s   full-buffered/python %s   full-buffered/bare %s\n", c,
      (p > 0 ? sprintf("%.2fx", f / p) : "n/a"), (b > 0 ? sprintf("%.2fx", f / b) : "n/a"),
      (p > 0 ? sprintf("%.2fx", fb / p) : "n/a"), (b > 0 ? sprintf("%.2fx", fb / b) : "n/a") }'
done
write_results bench
