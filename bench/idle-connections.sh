#!/usr/bin/env bash
# Idle connections cannot lock devices out (BENCHMARKS.md, "Idle connections"). Run by hand from
# anywhere:  bench/idle-connections.sh
# Starts the release `otafleet serve --no-mdns --listen 127.0.0.1:0` under `ulimit -Sn 1024`, opens
# and holds IDLE (default 5000) idle TCP connections (bench/idle_connections.py raises its own
# limit), then times a native device check-in and an admin GET on fresh connections. Two runs:
# with the machine's hard limit (the server raises its soft limit to it), and with the hard limit
# also lowered to 1024 (nothing to raise: the connection cap and idle eviction must do it).
# Exits non-zero if a check-in takes 1 s or more. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-5000}
B=${CARGO_TARGET_DIR:-target}/release
BIN=${OTAFLEET_BIN:-$B/otafleet}
[ -n "${OTAFLEET_BIN:-}" ] || cargo build --release -q -p otafleet-cli
W=$(mktemp -d /tmp/otafleet-idle.XXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

echo "date: $(date -u +%FT%TZ)  cores: $(nproc)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo -)"
echo "this shell: open files soft $(ulimit -Sn), hard $(ulimit -Hn)"
# One pass: start BIN under `ulimit -Sn 1024 -Hn HARD`, hold the crowd, time a check-in.
pass() {
  local bin=$1 label=$2 hard=$3 rc=0
  rm -rf "$W/data" "$W/out"
  echo "== $label: server started with ulimit -Sn 1024 -Hn $hard"
  # `exec` in a child bash, so that $! is the server itself (its limits are read, it is killed).
  RUST_LOG=warn bash -c 'ulimit -Sn 1024 && ulimit -Hn "$1" && shift && exec "$@"' _ "$hard" \
    "$bin" serve --no-mdns --listen 127.0.0.1:0 --data-dir "$W/data" --admin-token bench \
    > "$W/out" 2> "$W/err" &
  PID=$!
  for _ in $(seq 1 300); do grep -q "listening on" "$W/out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^otafleet listening on //p' "$W/out")
  [ -n "$url" ] || { echo "the server did not start:"; cat "$W/err"; exit 1; }
  echo "server's open files after start: $(awk '/^Max open files/ {print "soft " $4 ", hard " $5}' /proc/$PID/limits)"
  python3 bench/idle_connections.py --url "$url" --idle "$IDLE" --token bench || rc=1
  n=$(grep -c "Too many open files" "$W/err" || true)
  echo "server log: $n lines with 'Too many open files'"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  return $rc
}

fail=0
for hard in "$(ulimit -Hn)" 1024; do
  pass "$BIN" "this build" "$hard" || fail=1
  # BASELINE_BIN: an older build to compare with (its failures do not fail the run).
  if [ -n "${BASELINE_BIN:-}" ]; then pass "$BASELINE_BIN" "baseline $BASELINE_BIN" "$hard" || true; fi
done
exit $fail
