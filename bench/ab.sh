#!/usr/bin/env bash
# A/B of the plain native check-in between otafleet builds (or flag sets) in one run: every
# server runs side by side with 1,000 enrolled devices (`bench-tool enroll`), and in each of
# ROUNDS rounds every server gets DUR of `wrk -t2 -c$CONNS -s bench/checkin.lua`, in an order
# that rotates each round, so a neighbour's burst on a shared machine hits one round of one server,
# not one server. Prints req/s and server CPU per request (utime+stime from /proc) per round and
# server, then the medians and each server's median ratio to the first one.
# Usage (from anywhere):
#   bench/ab.sh NAME=BINARY[:FLAG,FLAG,...] ...
#   bench/ab.sh old=/tmp/old/otafleet new=target/release/otafleet:--https-port,off
# Env: DUR (default 10s), ROUNDS (default 8), CONNS (default 64), BIN (directory with bench-tool,
# default target/release). Everything listens on 127.0.0.1 (ports 18601 and up), with mDNS off.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}; ROUNDS=${ROUNDS:-8}; CONNS=${CONNS:-64}; B=${BIN:-target/release}
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 2; }
W=$(mktemp -d /tmp/otafleet-ab.XXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
NAMES=(); declare -A PID PORT; port=18600
for spec in "$@"; do
  name=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; flags=""; [ "$bin" != "$rest" ] && flags=${rest#*:}
  port=$((port + 1))
  # shellcheck disable=SC2086  # the flags are split on purpose
  RUST_LOG=warn "$bin" serve --no-mdns --listen 127.0.0.1:$port --data-dir "$W/$name" \
    --admin-token bench --checkin-interval 60 ${flags//,/ } > "$W/$name.log" 2>&1 & PIDS+=($!)
  PID[$name]=$!; PORT[$name]=$port; NAMES+=("$name")
done
for n in "${NAMES[@]}"; do
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:${PORT[$n]}/api/v1/health" && break; sleep 0.1; done
  "$B/bench-tool" enroll --server "http://127.0.0.1:${PORT[$n]}" --devices 1000 --lua "$W/$n.lua" > /dev/null
done
echo "date: $(date -u +%FT%TZ)  cores: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)  DUR=$DUR ROUNDS=$ROUNDS CONNS=$CONNS"
for n in "${NAMES[@]}"; do echo "server $n: $(ps -o args= -p "${PID[$n]}")"; done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
declare -A RPS CPU
for r in $(seq 1 "$ROUNDS"); do
  k=$(( (r - 1) % ${#NAMES[@]} )); order=("${NAMES[@]:k}" "${NAMES[@]:0:k}")
  for n in "${order[@]}"; do
    c0=$(cpu "${PID[$n]}")
    DEVICES_LUA="$W/$n.lua" wrk -t2 -c"$CONNS" -d"$DUR" -s bench/checkin.lua "http://127.0.0.1:${PORT[$n]}" > "$W/wrk.txt" 2>&1
    c1=$(cpu "${PID[$n]}")
    if grep -q "Non-2xx\|Socket errors" "$W/wrk.txt" || ! grep -q "^unexpected answers: 0$" "$W/wrk.txt"; then cat "$W/wrk.txt"; echo "bad answers from $n"; exit 1; fi
    rps=$(awk '/Requests\/sec/ {print $2}' "$W/wrk.txt"); reqs=$(awk '/requests in/ {print $1}' "$W/wrk.txt")
    us=$(awk -v t=$((c1 - c0)) -v q="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t * 1e6 / hz / q}')
    RPS[$n]+="$rps "; CPU[$n]+="$us "
    echo "round $r $n: $rps req/s, $us us CPU/req"
  done
done
first=${NAMES[0]}
# shellcheck disable=SC2086
base=$(median ${RPS[$first]})
for n in "${NAMES[@]}"; do
  # shellcheck disable=SC2086
  m=$(median ${RPS[$n]}); c=$(median ${CPU[$n]})
  echo "median $n: $m req/s, $c us CPU/req, req/s ratio to $first $(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.3f", a / b}')"
done
