#!/usr/bin/env bash
# One instance at a time: with a first window open, a second launch hands over to it and exits at
# once (0, no server of its own); SIGTERM then closes the first cleanly (exit 0, server stopped).
# Run inside a display and a D-Bus session (scripts/test-desktop: xvfb-run + dbus-run-session).
set -euo pipefail
cd "$(dirname "$0")/../.."
app=target/debug/otafleet-desktop
tmp=$(mktemp -d)
export XDG_CONFIG_HOME=$tmp/config OTAFLEET_NO_MDNS=1 RUST_LOG=info NO_COLOR=1
"$app" --listen 127.0.0.1:0 --data-dir "$tmp/one" > "$tmp/first.log" 2>&1 &
first=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'embedded server listening url=http://[0-9.:]*' "$tmp/first.log" | sed 's/.*url=//' || true)
  [ -n "$url" ] && break
  sleep 0.2
done
[ -n "$url" ] || { echo "single-instance: the first instance did not start"; cat "$tmp/first.log"; exit 1; }
sleep 2 # the window is up
if ! timeout 20 "$app" --listen 127.0.0.1:0 --data-dir "$tmp/two" > "$tmp/second.log" 2>&1; then
  echo "single-instance: the second launch did not exit 0"; cat "$tmp/second.log"; exit 1
fi
if grep -q 'embedded server listening' "$tmp/second.log"; then
  echo "single-instance: the second launch started its own server"; exit 1
fi
curl -fsS "$url/api/v1/health" > /dev/null || { echo "single-instance: the first instance stopped serving"; exit 1; }
kill -TERM "$first"
rc=0; wait "$first" || rc=$?
[ "$rc" = 0 ] || { echo "single-instance: SIGTERM exit code $rc"; tail "$tmp/first.log"; exit 1; }
grep -q 'SIGTERM: shutting down' "$tmp/first.log" || { echo "single-instance: no clean shutdown"; exit 1; }
echo "single-instance: a second launch handed over and exited; SIGTERM closed the first cleanly"
rm -rf "$tmp"
