# Shared by bench/run.sh and bench/proxy.sh (sourced, not run). The caller sets: bin (the release dir),
# results, lua (the wrk body script), warmup, duration, concurrency.

pids=()
json_points=()
declare -A rps p50s

# Stops every server started, and waits for each to exit (they drain first), so a next run finds its ports
# free.
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# wrk's latency lines read like "50%  105.00us": normalise to microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "ms") n *= 1000; else if (u == "s") n *= 1000000; else if (u == "m") n *= 60000000;
    printf "%.0f", n }'
}

# A warm-up, then one wrk run per concurrency: prints req/s, p50, p99 and non-2xx, and records them in
# rps, p50s and json_points.
measure() { # name url
  local name=$1 url=$2 c threads out r p50 p99 non2xx
  wrk -t 1 -c 4 -d "${warmup}s" -s "$lua" "$url" >/dev/null 2>&1 || true
  for c in $concurrency; do
    threads=$(( c < 2 ? 1 : 2 ))
    out=$(wrk -t "$threads" -c "$c" -d "${duration}s" --latency -s "$lua" "$url")
    r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    printf '%-14s c=%-3s %10.0f req/s   p50 %7s us   p99 %7s us   non-2xx %s\n' "$name" "$c" "$r" "$p50" "$p99" "${non2xx:-0}"
    rps[$name,$c]=$r
    p50s[$name,$c]=$p50
    json_points+=("{\"server\":\"$name\",\"concurrency\":$c,\"rps\":$r,\"p50_us\":$p50,\"p99_us\":$p99,\"non_2xx\":${non2xx:-0}}")
  done
}

# `serve` refuses root without --allow-root; benchmark machines and containers often run as root.
root_flag=()
if [ "$(id -u)" = 0 ]; then root_flag=(--allow-root); fi

start_rampart() { # config port
  "$bin/rampart" serve "${root_flag[@]}" --config "$1" >"$results/$(basename "$1" .toml).log" 2>&1 &
  pids+=($!)
  wait_port "$2"
}

# Writes json_points to "$results/<prefix>-<time>.json" and prints the path.
write_results() { # prefix
  local out
  out="$results/$1-$(date -u +%Y%m%dT%H%M%SZ).json"
  printf '{"duration_s":%s,"points":[%s]}\n' "$duration" "$(IFS=,; echo "${json_points[*]}")" >"$out"
  echo "results: $out"
}
