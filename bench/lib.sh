# Shared by bench/run.sh and bench/proxy.sh (sourced, not run). The caller sets: here (bench/), bin (the
# release dir), results, warmup, duration, concurrency; make_key_and_bodies sets BENCH_KEY and lua.

pids=()
json_points=()
json_extra=""   # more top-level JSON fields, each as ',"name":value'
clk_tck=$(getconf CLK_TCK)
declare -A rps p50s

# Stops every server started, and waits for each to exit (they drain first), so a next run finds its ports
# free.
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# A fresh API key for the bench (exported for the wrk script) and the request bodies (lua: the wrk script).
make_key_and_bodies() {
  export BENCH_KEY
  BENCH_KEY=$("$bin/rampart" key new --id bench --role predictor --keys-file "$results/keys.toml" 2>/dev/null | head -1)
  lua="$results/bodies.lua"
  python3 "$here/make_bodies.py" "$here/data/breast_cancer_test.csv" "$here/data/breast_cancer.baseline.json" "$lua" >&2
}

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

# CPU time, in clock ticks, of a process and its direct children (uvicorn's workers).
cpu_ticks() { # pid
  local p total=0 t
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    # Fields after the parenthesised name: utime and stime are the 12th and 13th.
    t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
    total=$(( total + ${t:-0} ))
  done
  echo "$total"
}

# A warm-up, then one wrk run per concurrency: prints req/s, p50, p99, non-2xx and, given the server's pid,
# its CPU time per request (all threads and worker processes: a figure the machine's noise moves less than
# req/s); records them in rps, p50s and json_points.
measure() { # name url [pid]
  local name=$1 url=$2 pid=${3:-} c threads out r p50 p99 non2xx t0 t1 n cpu
  wrk -t 1 -c 4 -d "${warmup}s" -s "$lua" "$url" >/dev/null 2>&1 || true
  for c in $concurrency; do
    threads=$(( c < 2 ? 1 : 2 ))
    t0=${pid:+$(cpu_ticks "$pid")}
    out=$(wrk -t "$threads" -c "$c" -d "${duration}s" --latency -s "$lua" "$url")
    t1=${pid:+$(cpu_ticks "$pid")}
    r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    n=$(awk '/ requests in / {print $1}' <<<"$out")
    cpu=null
    if [ -n "$pid" ] && [ "${n:-0}" -gt 0 ]; then
      cpu=$(awk -v d="$(( t1 - t0 ))" -v n="$n" -v hz="$clk_tck" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
    fi
    printf '%-14s c=%-3s %10.0f req/s   p50 %7s us   p99 %7s us   cpu %6s us/req   non-2xx %s\n' \
      "$name" "$c" "$r" "$p50" "$p99" "${cpu/null/-}" "${non2xx:-0}"
    rps[$name,$c]=$r
    p50s[$name,$c]=$p50
    json_points+=("{\"server\":\"$name\",\"concurrency\":$c,\"rps\":$r,\"p50_us\":$p50,\"p99_us\":$p99,\"cpu_us_per_req\":$cpu,\"non_2xx\":${non2xx:-0}}")
  done
}

# The p50 of one 512-byte append and fdatasync in the results directory, in microseconds: what a durable
# audit adds to every answer at concurrency 1 on this disk, whatever the gateway does.
disk_sync_us() {
  python3 - "$results" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_TRUNC, 0o600)
times = []
for _ in range(400):
    t = time.perf_counter_ns()
    os.write(fd, b"x" * 511 + b"\n")
    os.fdatasync(fd)
    times.append(time.perf_counter_ns() - t)
os.close(fd)
os.unlink(path)
times.sort()
print(round(times[len(times) // 2] / 1000))
PY
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
  printf '{"duration_s":%s%s,"points":[%s]}\n' "$duration" "$json_extra" "$(IFS=,; echo "${json_points[*]}")" >"$out"
  echo "results: $out"
}
