#!/usr/bin/env bash
# The benchmark harness (BENCHMARKS.md says what each figure means and the goals). Run by hand,
# on a quiet machine, from the repository root or anywhere:  bench/run.sh
# Everything listens on 127.0.0.1 only. Needs wrk and nginx (Debian: apt-get install wrk nginx-light).
# Env: DUR (wrk duration, default 15s), CONNS (default 64), FLEET (simulated devices, default 10000),
#      OUT (results directory, default bench/out), ROUNDS (check-in rounds, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-15s}; CONNS=${CONNS:-64}; FLEET=${FLEET:-10000}; OUT=${OUT:-bench/out}; ROUNDS=${ROUNDS:-3}
P_OTA=18470; P_BARE=18490; P_NGINX=18480
mkdir -p "$OUT"; R="$OUT/results.txt"; : > "$R"
W=$(mktemp -d /tmp/otafleet-bench.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
say() { echo "$*" | tee -a "$R"; }
wait_http() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }

cargo build --release -q -p otafleet-cli -p otafleet-sim -p otafleet-bench
B=${CARGO_TARGET_DIR:-target}/release  # honours CARGO_TARGET_DIR, like the cargo build above

say "== machine"
say "date: $(date -u +%FT%TZ)  host cores: $(nproc)  cpu: $(lscpu | sed -n 's/^Model name: *//p')"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "rustc: $(rustc -V)  wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)  nginx: $(nginx -v 2>&1 | cut -d/ -f2)"

# --- servers ---------------------------------------------------------------------------------
RUST_LOG=warn $B/otafleet serve --no-mdns --listen 127.0.0.1:$P_OTA --data-dir "$W/data" \
  --admin-token bench --checkin-interval 60 > "$W/otafleet.log" 2>&1 & PIDS+=($!); OTA_PID=$!
$B/bare-checkin 127.0.0.1:$P_BARE > "$W/bare.log" 2>&1 & PIDS+=($!); BARE_PID=$!
mkdir -p "$W/www" "$W/nginx"; chmod 755 "$W" "$W/www"  # nginx workers run as www-data
cat > "$W/nginx.conf" <<NGX
worker_processes auto;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
  uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
  server { listen 127.0.0.1:$P_NGINX; root $W/www; }
}
NGX
nginx -c "$W/nginx.conf" -g 'daemon off;' & PIDS+=($!)
wait_http http://127.0.0.1:$P_OTA/api/v1/health
# A server left over on the port would answer the health check for ours: make sure ours runs.
sleep 0.5; kill -0 $OTA_PID 2>/dev/null || { cat "$W/otafleet.log"; exit 1; }

# --- check-ins -------------------------------------------------------------------------------
say "== check-ins: wrk -t2 -c$CONNS -d$DUR, 1000 enrolled devices, authenticated POSTs, $ROUNDS rounds"
$B/bench-tool enroll --server http://127.0.0.1:$P_OTA --devices 1000 --lua "$W/devices.lua" | tee -a "$R"
# The two servers run back to back in each round, and the ratio is taken per round: on a shared
# machine a neighbour's burst then hits one round, not one server. Server CPU per request
# (utime+stime from /proc, in microseconds) is printed too: it does not depend on the load.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))
RATIOS=()
for round in $(seq 1 "$ROUNDS"); do
  for t in bare:$P_BARE:$BARE_PID otafleet:$P_OTA:$OTA_PID; do
    IFS=: read -r name port pid <<< "$t"
    f="$OUT/wrk-checkin-$name-$round.txt"
    c0=$(cpu_ticks "$pid")
    DEVICES_LUA="$W/devices.lua" wrk -t2 -c"$CONNS" -d"$DUR" --latency -s bench/checkin.lua \
      http://127.0.0.1:$port > "$f"
    c1=$(cpu_ticks "$pid")
    n=$(awk '/requests in/ {print $1}' "$f")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$f")
    bad=$(awk '/Non-2xx/ {print $NF}' "$f")
    say "round $round checkin $name: ${rps} req/s  p50 $(awk '$1=="50%" {print $2}' "$f")  p99 $(awk '$1=="99%" {print $2}' "$f")  non-2xx ${bad:-0}  server CPU $(( (c1 - c0) * TICK_US / n )) us/req"
    [ -z "$bad" ] || { echo "check-ins failed on $name"; exit 1; }
    eval "RPS_$name=$rps"
  done
  RATIOS+=("$(echo "scale=3; $RPS_otafleet / $RPS_bare" | bc)")
  say "round $round checkin ratio otafleet/bare: ${RATIOS[-1]}"
done
say "checkin ratio otafleet/bare, median of $ROUNDS rounds: $(printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')  (goal >= 0.7)"

# --- downloads -------------------------------------------------------------------------------
say "== downloads: one 1.5 MB image, wrk -t2 -c$CONNS -d$DUR"
$B/bench-tool image --size 1572864 --version 9.9.9 --out "$W/www/image.bin" | tee -a "$R"
SHA=$(sha256sum "$W/www/image.bin" | cut -d' ' -f1)
curl -fsS -o /dev/null -H 'Authorization: Bearer bench' -H 'content-type: application/octet-stream' \
  --data-binary @"$W/www/image.bin" "http://127.0.0.1:$P_OTA/api/v1/firmware?filename=bench-9.9.9.bin"
for t in nginx:$P_NGINX:/image.bin otafleet:$P_OTA:/api/v1/device/firmware/$SHA; do
  IFS=: read -r name port path <<< "$t"
  curl -fsS "http://127.0.0.1:$port$path" | sha256sum | grep -q "$SHA" || { echo "$name serves other bytes"; exit 1; }
  wrk -t2 -c"$CONNS" -d"$DUR" "http://127.0.0.1:$port$path" > "$OUT/wrk-download-$name.txt"
  mbs=$(awk '/^Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v=v*1024} else {sub("MB","",v)}; print v}' "$OUT/wrk-download-$name.txt")
  say "download $name: ${mbs} MiB/s  ($(awk '/^Requests\/sec/ {print $2}' "$OUT/wrk-download-$name.txt") images/s)"
  eval "MBS_$name=$mbs"
done
say "download ratio otafleet/nginx: $(echo "scale=3; $MBS_otafleet / $MBS_nginx" | bc)  (goal >= 0.9)"

# --- a whole fleet, end to end -----------------------------------------------------------------
say "== fleet: otafleet-sim --devices $FLEET --connections 64 (native protocol), 128 KB images"
( peak=0; while kill -0 $OTA_PID 2>/dev/null; do r=$(awk '/VmRSS/ {print $2}' /proc/$OTA_PID/status); \
  [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" > "$W/peak"; sleep 0.2; done ) & PIDS+=($!)
set +e
$B/otafleet-sim --server http://127.0.0.1:$P_OTA --admin-token bench --devices "$FLEET" \
  --protocols native=100 \
  --connections 64 --interval 5 --reboot-ms 500 --image-size 131072 --no-progress --seed 42 \
  | tee "$OUT/fleet.txt" | tee -a "$R"
say "otafleet-sim exit code: ${PIPESTATUS[0]}"
set -e
say "server RSS peak during the fleet run: $(( $(cat "$W/peak") / 1024 )) MiB"

# --- memory with downloads in flight ---------------------------------------------------------
say "== memory: downloads held in flight (4 KiB receive buffers), $((FLEET + 1000)) registered devices"
$B/bench-tool inflight --addr 127.0.0.1:$P_OTA --path /api/v1/device/firmware/$SHA --pid $OTA_PID \
  --steps 0,250,500,1000 | tee -a "$R"

# --- import ----------------------------------------------------------------------------------
say "== import of a 4 MB image (criterion)"
cargo bench -q -p otafleet-core --bench import -- --noplot 2>&1 | grep -E '^import_4mb|thrpt|time:' | tee -a "$R"
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
