#!/usr/bin/env bash
# Check-ins while rollouts run (issue 17; BENCHMARKS.md): two servers side by side, each with
# FLEET enrolled native devices (default 10,000); on one of them ROLLOUTS staged rollouts
# (default 5) each cover FLEET/ROLLOUTS of the devices by name, with a first wave of one device
# and a soak time of an hour, so they stay under way (stepped every second) for the whole run.
# After an untimed warm-up of each server (WARMUP, below), in each of ROUNDS rounds (default 6) both servers get DUR (default 10s) of
# `wrk -t2 -c$CONNS -s bench/checkin.lua` over all their devices, in an order that alternates.
# Prints each round and the medians of req/s and p99, and the ratio with/without.
# Env: BIN (a directory with otafleet and bench-tool; else cargo build --release), OUT.
# Everything listens on 127.0.0.1 (ports 18611, 18612), with mDNS off.
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET=${FLEET:-10000}; ROLLOUTS=${ROLLOUTS:-5}; ROUNDS=${ROUNDS:-6}; DUR=${DUR:-10s}; CONNS=${CONNS:-64}
OUT=${OUT:-bench/out}; mkdir -p "$OUT"; R="$OUT/rollouts.txt"; : > "$R"
if [ -n "${BIN:-}" ]; then B=$BIN; else
  cargo build --release -q -p otafleet-cli -p otafleet-bench
  B=${CARGO_TARGET_DIR:-target}/release
fi
W=$(mktemp -d /tmp/otafleet-rollouts.XXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
say() { echo "$*" | tee -a "$R"; }
declare -A PID PORT
PORT[without]=18611; PORT[with]=18612
for n in without with; do
  RUST_LOG=warn "$B/otafleet" serve --no-mdns --listen 127.0.0.1:${PORT[$n]} --data-dir "$W/$n" \
    --admin-token bench --checkin-interval 60 --tls off --mqtt off --https-port off > "$W/$n.log" 2>&1 & PIDS+=($!)
  PID[$n]=$!
done
for n in without with; do
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:${PORT[$n]}/api/v1/health" && break; sleep 0.1; done
  "$B/bench-tool" enroll --server "http://127.0.0.1:${PORT[$n]}" --devices "$FLEET" --lua "$W/$n.lua" > /dev/null
done
say "date: $(date -u +%FT%TZ)  cores: $(nproc)  commit: $(git log -1 --format=%h 2>/dev/null)  FLEET=$FLEET ROLLOUTS=$ROLLOUTS ROUNDS=$ROUNDS DUR=$DUR CONNS=$CONNS"
# The image the rollouts offer, and the rollouts: devices by name, FLEET/ROLLOUTS each.
"$B/bench-tool" image --size 200000 --version 2.0.0 --project bench --out "$W/bench-2.bin" > /dev/null
FW=$(curl -fsS -H 'Authorization: Bearer bench' -H 'content-type: application/octet-stream' \
  --data-binary @"$W/bench-2.bin" "http://127.0.0.1:${PORT[with]}/api/v1/firmware?filename=bench-2.0.0.bin")
FW_ID=$(echo "$FW" | sed -n 's/.*"id":\([0-9]*\).*/\1/p' | head -1)
python3 - "$W/with.lua" "$ROLLOUTS" "$FW_ID" > "$W/rollouts.jsonl" <<'PY'
import json, re, sys
macs = re.findall(r'\{"([0-9A-F:]{17})"', open(sys.argv[1]).read())
k, fw = int(sys.argv[2]), int(sys.argv[3])
per = len(macs) // k
plan = {"waves": [{"by": "count", "count": 1}, {"by": "percent", "percent": 100}], "soak_s": 3600}
for i in range(k):
    print(json.dumps({"firmware_id": fw, "devices": macs[i * per:(i + 1) * per], "plan": plan}))
PY
while read -r body; do
  curl -fsS -o /dev/null -H 'Authorization: Bearer bench' -H 'content-type: application/json' \
    -d "$body" "http://127.0.0.1:${PORT[with]}/api/v1/deployments"
done < "$W/rollouts.jsonl"
say "rollouts under way on 'with': $(curl -fsS -H 'Authorization: Bearer bench' "http://127.0.0.1:${PORT[with]}/api/v1/deployments" | python3 -c 'import json,sys; print(sum(1 for d in json.load(sys.stdin) if d["plan"] and d["status"] == "active"))')"
# Warm-up, not counted: making the rollouts changed what the 'with' server's devices are told,
# so each one's next check-in takes the database path once (as after any new deployment) before
# it is answered from memory again. One untimed WARMUP (default 30s) per server, so the rounds
# compare the steady state; its figures are printed for what that first pass costs.
for n in without with; do
  DEVICES_LUA="$W/$n.lua" wrk -t2 -c"$CONNS" -d"${WARMUP:-30s}" --latency -s bench/checkin.lua "http://127.0.0.1:${PORT[$n]}" > "$W/wrk.txt" 2>&1
  say "warm-up $n: $(awk '/Requests\/sec/ {print $2}' "$W/wrk.txt") req/s, p99 $(awk '$1 == "99%" {print $2}' "$W/wrk.txt")"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'; }
declare -A RPS P99
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="without with"; else order="with without"; fi
  for n in $order; do
    DEVICES_LUA="$W/$n.lua" wrk -t2 -c"$CONNS" -d"$DUR" --latency -s bench/checkin.lua "http://127.0.0.1:${PORT[$n]}" > "$W/wrk.txt" 2>&1
    if grep -q "Non-2xx\|Socket errors" "$W/wrk.txt"; then cat "$W/wrk.txt"; echo "bad answers from $n"; exit 1; fi
    rps=$(awk '/Requests\/sec/ {print $2}' "$W/wrk.txt"); p99=$(awk '$1 == "99%" {print $2}' "$W/wrk.txt" | ms)
    RPS[$n]+="$rps "; P99[$n]+="$p99 "
    say "round $r $n: $rps req/s, p99 $p99 ms"
  done
done
# shellcheck disable=SC2086
for n in without with; do say "median $n: $(median ${RPS[$n]}) req/s, p99 $(median ${P99[$n]}) ms"; done
# shellcheck disable=SC2086
say "with/without: req/s $(awk -v a="$(median ${RPS[with]})" -v b="$(median ${RPS[without]})" 'BEGIN {printf "%.3f", a/b}'), p99 $(awk -v a="$(median ${P99[with]})" -v b="$(median ${P99[without]})" 'BEGIN {printf "%.3f", a/b}')"
say "server CPU seconds (utime+stime): without $(awk '{print ($14+$15)/100}' /proc/${PID[without]}/stat), with $(awk '{print ($14+$15)/100}' /proc/${PID[with]}/stat)"
