#!/usr/bin/env bash
# Proxy mode's overhead (issue 11): one load generator (wrk), one model (breast_cancer_folded.onnx, 30
# features), the same request bodies for every point, concurrency 1 and 64:
#   direct      wrk → upstream Rampart (bench/proxy-upstream.toml: model in process, every layer off)
#   proxy       wrk → Rampart in proxy mode, every layer off (bench/proxy-no-layers.toml) → upstream
#   proxy-full  wrk → Rampart in proxy mode, every layer on, durable audit (bench/proxy-full-defense.toml)
#               → upstream
# Prints req/s, p50 and p99 per point, and the p50 each proxy point adds over direct. Writes JSON to
# bench/results/. Usage: bench/proxy.sh            (10 s per point)
#                        SMOKE=1 bench/proxy.sh    (2 s: a check that it runs, not a measurement)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

duration=${DURATION:-10}
concurrency=${CONCURRENCY:-"1 64"}
warmup=${WARMUP:-2}
if [ "${SMOKE:-0}" = 1 ]; then duration=2; warmup=1; fi
results="$here/results"
mkdir -p "$results"
rm -rf "$results"/proxy-*-data "$results/keys.toml"

command -v wrk >/dev/null 2>&1 || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
python3 -c 'import numpy' 2>/dev/null || pip install -q numpy

if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== building (release)" >&2
  cargo build --release --quiet -p rampart
fi
bin="$root/target/release"

# shellcheck source=bench/lib.sh
source "$here/lib.sh"
make_key_and_bodies

for port in 8511 8512 8513; do
  if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "port $port is in use (a previous run still draining?)" >&2
    exit 1
  fi
done

# The upstream serves every point; the proxies read its metadata at start-up, so it starts first.
start_rampart "$here/proxy-upstream.toml" 8511

echo "== direct (upstream alone)" >&2
measure direct http://127.0.0.1:8511/v1/models/bench/predict

echo "== proxy, no layers" >&2
start_rampart "$here/proxy-no-layers.toml" 8512
measure proxy http://127.0.0.1:8512/v1/models/bench/predict
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== proxy, full defense" >&2
start_rampart "$here/proxy-full-defense.toml" 8513
measure proxy-full http://127.0.0.1:8513/v1/models/bench/predict
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo
echo "added p50 over direct:"
for c in $concurrency; do
  d=${p50s[direct,$c]:-0}; p=${p50s[proxy,$c]:-0}; f=${p50s[proxy-full,$c]:-0}
  printf '  c=%-3s proxy +%s us   proxy-full +%s us\n' "$c" "$((p - d))" "$((f - d))"
done
write_results proxy
