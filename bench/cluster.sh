#!/usr/bin/env bash
# Check-ins with 1, 2 and 3 instances on PostgreSQL beside one instance on SQLite (issue 18;
# BENCHMARKS.md), and each instance's memory with HUGE registered devices.
#
# - sqlite: one `otafleet serve` on its own data directory (the default set-up), asked directly.
# - pg1: one instance on a throwaway PostgreSQL cluster (scripts/pg, fsync on: the figures are
#   for a database that keeps what it acknowledges), asked directly.
# - pg1n, pg2, pg3: 1, 2 or 3 instances sharing one database behind nginx, balanced by device
#   (`hash $http_authorization consistent`: a device's check-ins go to one instance, whose
#   memory answers them; docs/deployment.md), HTTP/1.1 keep-alive to the instances.
# - pg2rr, pg3rr: the same, round-robin: every check-in of a device lands on another instance
#   than the one before, whose memory of it the other's database path just invalidated.
# FLEET enrolled native devices (default 10,000) on each set-up; then in each of ROUNDS rounds
# (default 4) every set-up gets DUR (default 10s) of `wrk -t2 -c$CONNS -s bench/checkin.lua`,
# in an order that rotates, after an untimed warm-up (WARMUP, default 15s). Prints each round,
# the medians and the ratios against sqlite.
# Then memory: HUGE devices (default 100,000; 0 skips it) enrolled on a fresh 3-instance
# cluster, check-ins of them all through nginx (HUGE_DUR, default 300s; the distinct devices
# that checked in are counted), and every instance's resident memory (VmRSS, VmHWM). Enrolling
# is one committed transaction per device: ~4 minutes here with fsync on.
# Env: BIN (a directory with otafleet and bench-tool; else cargo build --release), OUT.
# Everything listens on 127.0.0.1 (ports 18700-18799), with mDNS off. Root (scripts/pg runs
# PostgreSQL as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET=${FLEET:-10000}; ROUNDS=${ROUNDS:-4}; DUR=${DUR:-10s}; CONNS=${CONNS:-64}; HUGE=${HUGE:-100000}
OUT=${OUT:-bench/out}; mkdir -p "$OUT"; R="$OUT/cluster.txt"; : > "$R"
if [ -n "${BIN:-}" ]; then B=$BIN; else
  cargo build --release -q -p otafleet-cli -p otafleet-bench
  B=${CARGO_TARGET_DIR:-target}/release
fi
W=$(mktemp -d /tmp/otafleet-cluster.XXXX); chmod 755 "$W"; PIDS=()  # scripts/pg runs PostgreSQL as postgres
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  bash scripts/pg stop "$W/pg" > /dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
say() { echo "$*" | tee -a "$R"; }
health() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1/api/v1/health" && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }

# One PostgreSQL cluster with fsync on (scripts/pg turns it off for tests).
PG=$(PG_FSYNC=on bash scripts/pg start "$W/pg")
psql_() { psql "$PG" -qAtc "$1"; }

# instance NAME PORT DBNAME: an otafleet serve on 127.0.0.1:PORT (DBNAME empty: SQLite).
declare -A IPID
instance() {
  local name=$1 port=$2 db=$3 extra=()
  if [ -n "$db" ]; then extra=(--database-url "${PG%/*}/$db"); fi
  RUST_LOG=warn "$B/otafleet" serve --no-mdns --listen "127.0.0.1:$port" --data-dir "$W/$name" \
    --admin-token bench --checkin-interval 60 --tls off --mqtt off --https-port off "${extra[@]}" \
    > "$W/$name.log" 2>&1 &
  PIDS+=($!); IPID[$name]=$!
  health "http://127.0.0.1:$port"
}
# nginx NAME PORT BALANCE UPSTREAM_PORTS...: BALANCE is `device` (hash of the device's token) or
# `rr` (round-robin).
nginx_() {
  local name=$1 port=$2 balance=$3; shift 3
  mkdir -p "$W/nginx-$name"
  { echo "worker_processes 1; pid $W/nginx-$name/pid; error_log $W/nginx-$name/error.log;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; upstream otafleet {"
    # The balancing method first: `keepalive` after it, or nginx drops keep-alive.
    if [ "$balance" = device ]; then echo "  hash \$http_authorization consistent;"; fi
    echo "  keepalive 64;"
    for p in "$@"; do echo "  server 127.0.0.1:$p;"; done
    echo "} server { listen 127.0.0.1:$port; location / { proxy_pass http://otafleet;"
    echo "  proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$http_host; } } }"
  } > "$W/nginx-$name/nginx.conf"
  nginx -c "$W/nginx-$name/nginx.conf" -p "$W/nginx-$name" -g 'daemon off;' &
  PIDS+=($!)
  health "http://127.0.0.1:$port"
}

declare -A URL
instance sqlite 18700 ""; URL[sqlite]=http://127.0.0.1:18700
psql_ "CREATE DATABASE pg1"; instance pg1 18701 pg1; URL[pg1]=http://127.0.0.1:18701
n=0; b=0
for setup in pg1n:1:device pg2:2:device pg3:3:device pg2rr:2:rr pg3rr:3:rr; do
  IFS=: read -r name k balance <<< "$setup"
  psql_ "CREATE DATABASE $name"
  ports=()
  for i in $(seq 1 "$k"); do n=$((n + 1)); instance "$name-$i" $((18710 + n)) "$name"; ports+=($((18710 + n))); done
  b=$((b + 1)); nginx_ "$name" $((18750 + b)) "$balance" "${ports[@]}"; URL[$name]=http://127.0.0.1:$((18750 + b))
done
SETUPS="sqlite pg1 pg1n pg2 pg3 pg2rr pg3rr"
for s in $SETUPS; do
  "$B/bench-tool" enroll --server "${URL[$s]}" --devices "$FLEET" --lua "$W/$s.lua" > /dev/null
done
say "date: $(date -u +%FT%TZ)  cores: $(nproc)  commit: $(git log -1 --format=%h 2>/dev/null)  FLEET=$FLEET ROUNDS=$ROUNDS DUR=$DUR CONNS=$CONNS"
for s in $SETUPS; do
  DEVICES_LUA="$W/$s.lua" wrk -t2 -c"$CONNS" -d"${WARMUP:-15s}" --latency -s bench/checkin.lua "${URL[$s]}" > "$W/wrk.txt" 2>&1
  say "warm-up $s: $(awk '/Requests\/sec/ {print $2}' "$W/wrk.txt") req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'; }
declare -A RPS P99
order=($SETUPS)
for r in $(seq 1 "$ROUNDS"); do
  for s in "${order[@]}"; do
    DEVICES_LUA="$W/$s.lua" wrk -t2 -c"$CONNS" -d"$DUR" --latency -s bench/checkin.lua "${URL[$s]}" > "$W/wrk.txt" 2>&1
    if grep -q "Non-2xx\|Socket errors" "$W/wrk.txt"; then cat "$W/wrk.txt"; echo "bad answers from $s"; exit 1; fi
    rps=$(awk '/Requests\/sec/ {print $2}' "$W/wrk.txt"); p99=$(awk '$1 == "99%" {print $2}' "$W/wrk.txt" | ms)
    RPS[$s]+="$rps "; P99[$s]+="$p99 "
    say "round $r $s: $rps req/s, p99 $p99 ms"
  done
  order=("${order[@]:1}" "${order[0]}")
done
# shellcheck disable=SC2086
for s in $SETUPS; do
  say "median $s: $(median ${RPS[$s]}) req/s, p99 $(median ${P99[$s]}) ms; vs sqlite: req/s $(awk -v a="$(median ${RPS[$s]})" -v b="$(median ${RPS[sqlite]})" 'BEGIN {printf "%.2f", a/b}'), p99 $(awk -v a="$(median ${P99[$s]})" -v b="$(median ${P99[sqlite]})" 'BEGIN {printf "%.2f", a/b}')"
done
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; PIDS=()

# Memory per instance with HUGE registered devices: a fresh 3-instance cluster (HUGE=0: skip).
if [ "$HUGE" = 0 ]; then exit 0; fi
psql_ "CREATE DATABASE huge"
ports=()
for i in 1 2 3; do instance "huge-$i" $((18790 + i)) huge; ports+=($((18790 + i))); done
nginx_ huge 18799 device "${ports[@]}"
"$B/bench-tool" enroll --server http://127.0.0.1:18799 --devices "$HUGE" --lua "$W/huge.lua" > /dev/null
# One check-in of each device (at least), spread by nginx over the three.
T0=$(date -u +%Y-%m-%dT%H:%M:%S)
# The first check-in of a device after its enrolment takes the database path (a committed write,
# fsync on: a few hundred a second at first here), so reaching all of them takes minutes; the two
# threads start 7,919 devices apart and each goes through the list in order.
DEVICES_LUA="$W/huge.lua" wrk -t2 -c"$CONNS" -d"${HUGE_DUR:-300s}" -s bench/checkin.lua http://127.0.0.1:18799 > "$W/wrk.txt" 2>&1 \
  || { cat "$W/wrk.txt"; echo "wrk failed"; exit 1; }
# Last-seen times are written in batches: wait until the count of devices seen since T0 holds.
seen=-1; now=0
while [ "$now" != "$seen" ]; do
  seen=$now; sleep 2
  now=$(psql "${PG%/*}/huge" -qAtc "SELECT count(*) FROM devices WHERE last_seen >= '$T0'")
done
say "HUGE=$HUGE registered: $(psql "${PG%/*}/huge" -qAtc 'SELECT count(*) FROM devices') devices in PostgreSQL; check-ins after enrolment: $(awk '/requests in/ {print $1}' "$W/wrk.txt"), from $seen distinct devices"
for i in 1 2 3; do
  say "instance huge-$i: $(awk '/VmRSS|VmHWM/ {printf "%s %d MiB  ", $1, $2/1024}' /proc/${IPID[huge-$i]}/status)"
done
