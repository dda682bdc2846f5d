#!/usr/bin/env bash
# Costs that must not grow with the fleet or with the number of watchers (BENCHMARKS.md,
# "Fleet size and event-stream clients"). Run by hand, on a quiet machine:  bench/scale.sh
# Everything listens on 127.0.0.1 only; servers run with --no-mdns.
#  1. Progress reports at FLEET enrolled devices against their cost at REPORTERS (default 50,000
#     vs 10): exits non-zero when the ratio is above MAX_RATIO (default 1.5).
#  2. A WAVE-device update wave (native, default 200) with SSE_CLIENTS event-stream clients
#     attached (default 550) against the same wave with none, each on a fresh server, ROUNDS
#     times (default 3): prints the median ratio.
# Env: OUT (results directory, default bench/out).
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET=${FLEET:-50000}; REPORTERS=${REPORTERS:-10}; MAX_RATIO=${MAX_RATIO:-1.5}
WAVE=${WAVE:-200}; SSE_CLIENTS=${SSE_CLIENTS:-550}; ROUNDS=${ROUNDS:-3}; OUT=${OUT:-bench/out}
P_OTA=18471
mkdir -p "$OUT"; R="$OUT/scale.txt"; : > "$R"
W=$(mktemp -d /tmp/otafleet-scale.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
say() { echo "$*" | tee -a "$R"; }

# BIN: a directory of already built binaries (otafleet, otafleet-sim, bench-tool) to measure
# instead of building; SKIP_PROGRESS=1 / SKIP_WAVE=1 leave a part out.
if [ -n "${BIN:-}" ]; then B=$BIN; else
  cargo build --release -q -p otafleet-cli -p otafleet-sim -p otafleet-bench
  B=${CARGO_TARGET_DIR:-target}/release
fi

# A fresh server on $P_OTA over data dir $1; sets OTA_PID.
start_server() {
  RUST_LOG=warn $B/otafleet serve --no-mdns --listen 127.0.0.1:$P_OTA --data-dir "$1" \
    --admin-token bench --checkin-interval 60 > "$1.log" 2>&1 & OTA_PID=$!; PIDS+=($OTA_PID)
  for _ in $(seq 1 100); do curl -fsS -o /dev/null http://127.0.0.1:$P_OTA/api/v1/health 2>/dev/null && break; sleep 0.1; done
  # A server left over on the port would answer the health check for ours: make sure ours runs.
  kill -0 $OTA_PID 2>/dev/null || { cat "$1.log"; exit 1; }
}
stop_server() { kill "$OTA_PID"; wait "$OTA_PID" 2>/dev/null || true; }

say "== machine"
say "date: $(date -u +%FT%TZ)  commit: $(git rev-parse --short HEAD)  host cores: $(nproc)  cpu: $(lscpu | sed -n 's/^Model name: *//p')"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. progress reports, small fleet vs large ----------------------------------------------
PROGRESS_RC=0
if [ -z "${SKIP_PROGRESS:-}" ]; then
  say "== progress reports: $REPORTERS enrolled devices, then $FLEET (goal: <= ${MAX_RATIO}x)"
  start_server "$W/progress"
  set +e
  $B/bench-tool progress --server http://127.0.0.1:$P_OTA --admin-token bench --pid $OTA_PID \
    --reporters "$REPORTERS" --fleet "$FLEET" --max-ratio "$MAX_RATIO" | tee -a "$R"
  PROGRESS_RC=${PIPESTATUS[0]}
  set -e
  stop_server
fi

# --- 2. an update wave with event-stream clients attached vs none ----------------------------
say "== wave: otafleet-sim --devices $WAVE (native), with $SSE_CLIENTS event-stream clients vs none, $ROUNDS rounds"
wave() {  # $1 = data dir, $2 = SSE clients; sets WAVE_S to the wave's seconds
  start_server "$1"
  local sse_pid=""
  if [ "$2" -gt 0 ]; then
    $B/bench-tool sse --addr 127.0.0.1:$P_OTA --admin-token bench --clients "$2" > "$1.sse" 2> "$1.sse.err" & sse_pid=$!
    PIDS+=($sse_pid)
    for _ in $(seq 1 300); do grep -q connected "$1.sse" && break; sleep 0.1; done
    grep -q connected "$1.sse" || { echo "event-stream clients did not connect" >&2; exit 1; }
  fi
  local t0 t1
  t0=$(date +%s.%N)
  $B/otafleet-sim --server http://127.0.0.1:$P_OTA --admin-token bench --devices "$WAVE" \
    --protocols native=100 --connections 64 --interval 0.5 --reboot-ms 100 --progress-step 5 \
    --image-size 131072 --no-progress --seed 7 > "$1.sim" 2>&1 || { cat "$1.sim" >&2; exit 1; }
  t1=$(date +%s.%N)
  [ -n "$sse_pid" ] && { kill "$sse_pid"; wait "$sse_pid" 2>/dev/null || true; }
  stop_server
  WAVE_S=$(echo "$t1 - $t0" | bc)
}
RATIOS=()
[ -n "${SKIP_WAVE:-}" ] && ROUNDS=0
for round in $(seq 1 "$ROUNDS"); do
  wave "$W/wave-none-$round" 0; none=$WAVE_S
  wave "$W/wave-sse-$round" "$SSE_CLIENTS"; with=$WAVE_S
  RATIOS+=("$(echo "scale=3; $with / $none" | bc)")
  say "round $round: wave of $WAVE without event-stream clients ${none}s, with $SSE_CLIENTS ${with}s: ratio ${RATIOS[-1]}"
done
[ "$ROUNDS" -gt 0 ] && say "wave ratio with/without $SSE_CLIENTS event-stream clients, median of $ROUNDS rounds: $(printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$PROGRESS_RC" -eq 0 ] || { say "FAILED: progress reports at $FLEET devices cost more than ${MAX_RATIO}x their cost at $REPORTERS"; exit 1; }
