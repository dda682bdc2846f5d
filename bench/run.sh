#!/usr/bin/env bash
# The benchmark harness (BENCHMARKS.md says what each figure means and the goals). Run by hand,
# on a quiet machine, from the repository root or anywhere:  bench/run.sh
# Everything listens on 127.0.0.1 only. Needs wrk, nginx and mosquitto (Debian: apt-get install wrk
# nginx-light mosquitto).
# Env: DUR (wrk duration, default 15s), CONNS (default 64), FLEET (simulated devices, default 10000),
#      OUT (results directory, default bench/out), ROUNDS (rounds of every wrk row, default 3),
#      CHECK_DEVICES (devices per check row, default 1000), MQTT_DEVICES and MQTT_RATE (the MQTT
#      part: devices, default 1000, and log lines a second each, default 5),
#      PARTS (default "checkins checks downloads ranges fleet memory import commands logs tls mqtt": the
#      parts to run),
#      BIN (a directory of built otafleet, otafleet-sim, bench-tool, bare-checkin: no build),
#      OTAFLEET_BIN (measure this otafleet binary instead, e.g. an older build, against the same
#      baselines), SEED1_DIR (a checkout of the seed-1 "ESP32 OTA Update Server", FastAPI:
#      its device check is measured too; run in a venv, SEED1_VENV, default
#      ~/.cache/otafleet-bench/seed1-venv, with the versions pinned below, one uvicorn worker).
# Every answer is checked: wrk's non-2xx and socket errors, and the Lua scripts' answer checks
# (bench/expect.lua), fail the run; downloads are checked byte for byte once per server before
# they are timed, and `bench-tool ranges` checks every range it reads.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-15s}; CONNS=${CONNS:-64}; FLEET=${FLEET:-10000}; OUT=${OUT:-bench/out}; ROUNDS=${ROUNDS:-3}
CHECK_DEVICES=${CHECK_DEVICES:-1000}
PARTS=${PARTS:-checkins checks downloads ranges fleet memory import commands logs tls mqtt}
P_OTA=18470; P_BARE=18490; P_NGINX=18480; P_SEED1=18500
SECRET=bench-secret  # the legacy devices' shared secret (their OTA_UPDATE_KEY)
mkdir -p "$OUT"; R="$OUT/results.txt"; : > "$R"; T="$OUT/table.md"; : > "$T"
W=$(mktemp -d /tmp/otafleet-bench.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
say() { echo "$*" | tee -a "$R"; }
row() { echo "$*" >> "$T"; }
part() { [[ " $PARTS " == *" $1 "* ]]; }
wait_http() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { case $1 in *ms) echo "0.${1%ms}";; *m) echo $(( ${1%m} * 60 ));; *s) echo "${1%s}";; *) echo "$1";; esac; }

if [ -n "${BIN:-}" ]; then B=$BIN; else
  cargo build --release -q -p otafleet-cli -p otafleet-sim -p otafleet-bench
  B=${CARGO_TARGET_DIR:-target}/release  # honours CARGO_TARGET_DIR, like the cargo build above
fi
OTA_BIN=${OTAFLEET_BIN:-$B/otafleet}

say "== machine"
say "date: $(date -u +%FT%TZ)  host cores: $(nproc)  cpu: $(lscpu | sed -n 's/^Model name: *//p')"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "rustc: $(rustc -V)  wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)  nginx: $(nginx -v 2>&1 | cut -d/ -f2)"
say "otafleet measured: $OTA_BIN ($(git log -1 --format=%h 2>/dev/null)$([ -n "${OTAFLEET_BIN:-}" ] && echo ', given by OTAFLEET_BIN'))"

# --- servers ---------------------------------------------------------------------------------
RUST_LOG=warn "$OTA_BIN" serve --no-mdns --listen 127.0.0.1:$P_OTA --data-dir "$W/data" \
  --admin-token bench --checkin-interval 60 --legacy-device-secret "$SECRET" \
  > "$W/otafleet.log" 2>&1 & PIDS+=($!); OTA_PID=$!
$B/bare-checkin 127.0.0.1:$P_BARE > "$W/bare.log" 2>&1 & PIDS+=($!); BARE_PID=$!
mkdir -p "$W/www" "$W/nginx"; chmod 755 "$W" "$W/www"  # nginx workers run as www-data
# nginx serves the image (sendfile, as fast as a static server gets) and answers every device
# check with a constant (`return`): the floor of what an HTTP server costs per check.
OFFER_JSON='{"device_id":"AA:BB:CC:DD:EE:FF","token":null,"update":{"id":1234,"version":"2.0.0","url":"http://127.0.0.1:18470/api/v1/device/firmware/429cbd877c87514a95221fad68d3e2b35ca9c7b0681ebf7f9551071557045f6e","size":131104,"sha256":"429cbd877c87514a95221fad68d3e2b35ca9c7b0681ebf7f9551071557045f6e","md5":"0a4ad2de4bd4ac4e2e4a7b3e1c6b8d9f"},"checkin_interval_s":60}'
LEGACY_JSON='{"update_available":false,"firmware_version":null,"firmware_url":null,"checksum":null}'
cat > "$W/nginx.conf" <<NGX
worker_processes auto;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000000;
  client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
  uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
  server {
    listen 127.0.0.1:$P_NGINX; root $W/www;
    location = /ota/arduino { return 304; }
    location = /api/firmware { default_type application/json; return 200 '$LEGACY_JSON'; }
    location = /api/v1/device/checkin { default_type application/json; return 200 '$OFFER_JSON'; }
  }
}
NGX
nginx -c "$W/nginx.conf" -g 'daemon off;' & PIDS+=($!); NGINX_PID=$!
wait_http http://127.0.0.1:$P_OTA/api/v1/health
# A server left over on the port would answer the health check for ours: make sure ours runs.
sleep 0.5; kill -0 $OTA_PID 2>/dev/null || { cat "$W/otafleet.log"; exit 1; }
nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }

# Seed 1: the "ESP32 OTA Update Server" (FastAPI) our legacy API replaces, when a checkout is given.
SEED1_PID=""
if [ -n "${SEED1_DIR:-}" ]; then
  SEED1_APP=""
  for d in "$SEED1_DIR/ota-server/backend" "$SEED1_DIR/backend" "$SEED1_DIR"; do
    [ -f "$d/app/main.py" ] && SEED1_APP=$d && break
  done
  [ -n "$SEED1_APP" ] || { echo "SEED1_DIR=$SEED1_DIR: no app/main.py under it (ota-server/backend, backend or itself)"; exit 1; }
  SEED1_VENV=${SEED1_VENV:-$HOME/.cache/otafleet-bench/seed1-venv}
  if [ ! -x "$SEED1_VENV/bin/uvicorn" ]; then
    python3 -m venv "$SEED1_VENV"
    "$SEED1_VENV/bin/pip" install -q pydantic==1.10.27 fastapi==0.125.0 starlette==0.50.0 \
      uvicorn==0.54.0 python-multipart aiofiles python-dotenv
  fi
  mkdir -p "$W/seed1/firmware"
  ( cd "$W/seed1" && OTA_SERVER_SHARED_SECRET_KEY=$SECRET OTA_SERVER_ADMIN_API_KEY=bench \
      OTA_SERVER_DEVICES_FILE="$W/seed1/devices.json" OTA_SERVER_FIRMWARE_DIR="$W/seed1/firmware" \
      OTA_SERVER_SERVER_HOST=127.0.0.1 OTA_SERVER_SERVER_PORT=$P_SEED1 \
      exec "$SEED1_VENV/bin/uvicorn" --app-dir "$SEED1_APP" app.main:app \
        --host 127.0.0.1 --port $P_SEED1 > "$W/seed1.log" 2>&1 ) & PIDS+=($!); SEED1_PID=$!
  wait_http http://127.0.0.1:$P_SEED1/status
  say "seed 1: $SEED1_APP (uvicorn $("$SEED1_VENV/bin/python" -c 'import uvicorn, fastapi, pydantic, starlette; print(uvicorn.__version__, "fastapi", fastapi.__version__, "pydantic", pydantic.VERSION, "starlette", starlette.__version__)'), one worker) on :$P_SEED1"
else
  say "seed 1: not measured (SEED1_DIR not set)"
fi

# --- one wrk run -----------------------------------------------------------------------------
# wrk_run FILE "PIDS" wrk-args...: runs wrk --latency, and sets RPS, MIBS (MiB/s), P50, P99 (ms),
# N (requests), BAD (non-2xx), SOCK (socket errors), UNEXP (answers the script found wrong) and
# CPU_US (server CPU per request: utime+stime of PIDS from /proc, which does not depend on the
# neighbours' load).
cpu_ticks() { local t=0 p; for p in $1; do t=$(( t + $(awk '{print $14+$15}' "/proc/$p/stat") )); done; echo $t; }
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))
ms_of() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print v }'; }
wrk_run() {
  local f=$1 pids=$2; shift 2
  local c0; c0=$(cpu_ticks "$pids")
  wrk --latency "$@" > "$f" 2>&1
  local c1; c1=$(cpu_ticks "$pids")
  N=$(awk '/requests in/ {print $1}' "$f")
  RPS=$(awk '/^Requests\/sec/ {print $2}' "$f")
  MIBS=$(awk '/^Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v=v*1024} else if (v ~ /MB/) {sub("MB","",v)} else if (v ~ /KB/) {sub("KB","",v); v=v/1024} else {sub("B","",v); v=v/1048576}; print v}' "$f")
  P50=$(ms_of "$(awk '$1=="50%" {print $2}' "$f")"); P99=$(ms_of "$(awk '$1=="99%" {print $2}' "$f")")
  BAD=$(awk '/Non-2xx/ {print $NF}' "$f"); BAD=${BAD:-0}
  SOCK=$(awk '/Socket errors/ {n=0; for (i=1;i<=NF;i++) {v=$i; sub(",","",v); if (v ~ /^[0-9]+$/) n+=v}; print n}' "$f"); SOCK=${SOCK:-0}
  UNEXP=$(awk '/^unexpected answers:/ {print $3}' "$f"); UNEXP=${UNEXP:-0}
  CPU_US=$(( N > 0 ? (c1 - c0) * TICK_US / N : 0 ))
}
# Fail the run on anything but the expected answers; $2: whether 3xx are expected (wrk counts them).
checked() {
  local what=$1 allow3xx=${2:-no}
  if [ "$N" = "" ] || [ "$N" = 0 ]; then echo "$what: no answers (see $F)"; exit 1; fi
  if [ "$SOCK" != 0 ] || [ "$UNEXP" != 0 ] || { [ "$allow3xx" = no ] && [ "$BAD" != 0 ]; }; then
    echo "$what: socket errors $SOCK, non-2xx $BAD, unexpected answers $UNEXP (see $F)"; grep -i "unexpected answer:" "$F" || true; exit 1
  fi
}

# A check row: CHECK_SCRIPT, CHECK_ENV (env for the script), CHECK_3XX (yes when 304 is the
# answer) against each "name:port:pids" in CHECK_SERVERS, ROUNDS rounds back to back; prints each
# round, the medians and the per-round ratios of otafleet to each baseline, and adds a table row.
check_row() {
  local key=$1 title=$2 path=$3
  local -A rps p99 cpu ratios
  local names=() t name port pids round
  for t in "${CHECK_SERVERS[@]}"; do names+=("${t%%:*}"); done
  say "== $title: wrk -t2 -c$CONNS -d$DUR, $ROUNDS rounds, servers back to back: ${names[*]}"
  for round in $(seq 1 "$ROUNDS"); do
    for t in "${CHECK_SERVERS[@]}"; do
      IFS=: read -r name port pids <<< "$t"
      F="$OUT/wrk-$key-$name-$round.txt"
      wrk_run "$F" "$pids" -t2 -c"$CONNS" -d"$DUR" -s "$CHECK_SCRIPT" "http://127.0.0.1:$port$path"
      checked "$key on $name" "${CHECK_3XX:-no}"
      say "round $round $key $name: ${RPS} req/s  p50 ${P50} ms  p99 ${P99} ms  server CPU ${CPU_US} us/req  (every answer checked: $N)"
      rps[$name]+="$RPS "; p99[$name]+="$P99 "; cpu[$name]+="$CPU_US "
      eval "R_$name=$RPS"
    done
    for name in "${names[@]:1}"; do
      ratios[$name]+="$(ratio "$R_otafleet" "$(eval echo "\$R_$name")") "
    done
  done
  local cells=() rcells=()
  for name in "${names[@]}"; do
    # shellcheck disable=SC2086
    local line="$(median ${rps[$name]}) req/s, p99 $(median ${p99[$name]}) ms, $(median ${cpu[$name]}) µs CPU/req"
    say "$key $name, median of $ROUNDS rounds: $line"
    if [ "$name" = otafleet ]; then cells+=("$line"); else
      # shellcheck disable=SC2086
      local m; m=$(median ${ratios[$name]})
      say "$key ratio otafleet/$name per round: ${ratios[$name]}, median $m"
      cells+=("$name: $line"); rcells+=("/$name $m")
    fi
  done
  row "| $title | ${cells[0]} | $(IFS=';'; echo "${cells[*]:1}" | sed 's/;/; /g') | ${rcells[*]} |"
}

if part checkins || part checks; then
  row "| Device check | otafleet | baselines (same run) | ratio |"
  row "| --- | --- | --- | --- |"
fi

# --- check-ins -------------------------------------------------------------------------------
if part checkins; then
say "== check-ins: wrk -t2 -c$CONNS -d$DUR, 1000 enrolled devices, authenticated POSTs, $ROUNDS rounds"
$B/bench-tool enroll --server http://127.0.0.1:$P_OTA --devices 1000 --lua "$W/devices.lua" | tee -a "$R"
# The two servers run back to back in each round, and the ratio is taken per round: on a shared
# machine a neighbour's burst then hits one round, not one server. Server CPU per request
# (utime+stime from /proc, in microseconds) is printed too: it does not depend on the load.
RATIOS=(); CK_RPS=(); CK_P99=(); CK_CPU=(); BARE_RPS=(); BARE_P99=(); BARE_CPU=()
for round in $(seq 1 "$ROUNDS"); do
  for t in bare:$P_BARE:$BARE_PID otafleet:$P_OTA:$OTA_PID; do
    IFS=: read -r name port pid <<< "$t"
    F="$OUT/wrk-checkin-$name-$round.txt"
    DEVICES_LUA="$W/devices.lua" wrk_run "$F" "$pid" -t2 -c"$CONNS" -d"$DUR" -s bench/checkin.lua http://127.0.0.1:$port
    say "round $round checkin $name: ${RPS} req/s  p50 ${P50} ms  p99 ${P99} ms  non-2xx ${BAD}  server CPU ${CPU_US} us/req"
    checked "check-ins on $name"
    eval "RPS_$name=$RPS"
    if [ $name = otafleet ]; then CK_RPS+=("$RPS"); CK_P99+=("$P99"); CK_CPU+=("$CPU_US"); else BARE_RPS+=("$RPS"); BARE_P99+=("$P99"); BARE_CPU+=("$CPU_US"); fi
  done
  RATIOS+=("$(ratio "$RPS_otafleet" "$RPS_bare")")
  say "round $round checkin ratio otafleet/bare: ${RATIOS[-1]}"
done
M=$(median "${RATIOS[@]}")
say "checkin ratio otafleet/bare, median of $ROUNDS rounds: $M  (goal >= 0.7)"
row "| Native check-in, nothing to do (1,000 enrolled devices, kept-alive) | $(median "${CK_RPS[@]}") req/s, p99 $(median "${CK_P99[@]}") ms, $(median "${CK_CPU[@]}") µs CPU/req | bare: $(median "${BARE_RPS[@]}") req/s, p99 $(median "${BARE_P99[@]}") ms, $(median "${BARE_CPU[@]}") µs CPU/req | /bare $M (goal ≥ 0.7) |"
fi

# --- device checks of every kind -------------------------------------------------------------
if part checks; then
run_check_row() {  # check_row with CHECK_ENV exported into wrk's environment (the Lua scripts read it)
  local kv; for kv in "${CHECK_ENV[@]}"; do export "${kv?}"; done
  check_row "$@"
  for kv in "${CHECK_ENV[@]}"; do unset "${kv%%=*}"; done
}

# (a) Arduino HTTPUpdate whose running image is the deployed one: 304.
$B/bench-tool image --size 1000000 --version 1.0.0 --project ardbench --out "$W/ardbench.bin" | tee -a "$R"
FW=$(curl -fsS -H 'Authorization: Bearer bench' -H 'content-type: application/octet-stream' \
  --data-binary @"$W/ardbench.bin" "http://127.0.0.1:$P_OTA/api/v1/firmware?filename=ardbench-1.0.0.bin")
FW_ID=$(echo "$FW" | sed -n 's/.*"id":\([0-9]*\).*/\1/p' | head -1)
curl -fsS -o /dev/null -H 'Authorization: Bearer bench' -H 'content-type: application/json' \
  -d "{\"firmware_id\": $FW_ID}" http://127.0.0.1:$P_OTA/api/v1/deployments
CHECK_ENV=("ARD_MD5=$(md5sum "$W/ardbench.bin" | cut -d' ' -f1)" \
  "ARD_SHA=$(echo "$FW" | sed -n 's/.*"appended_sha256":"\([0-9a-f]*\)".*/\1/p' | tr a-f A-F)" \
  "ARD_SIZE=$(stat -c %s "$W/ardbench.bin")" "ARD_DEVICES=$CHECK_DEVICES")
CHECK_SCRIPT=bench/arduino.lua; CHECK_3XX=yes
# The devices' first checks register them: once through, not counted.
for kv in "${CHECK_ENV[@]}"; do export "${kv?}"; done
F="$OUT/wrk-arduino-warmup.txt"; wrk_run "$F" "$OTA_PID" -t2 -c"$CONNS" -d3s -s bench/arduino.lua http://127.0.0.1:$P_OTA/ota/arduino
checked "arduino warm-up on otafleet" yes
for kv in "${CHECK_ENV[@]}"; do unset "${kv%%=*}"; done
say "arduino: $CHECK_DEVICES devices on ardbench 1.0.0, deployed; warm-up: $N checks, $RPS req/s, $CPU_US us CPU/req"
CHECK_SERVERS=("otafleet:$P_OTA:$OTA_PID" "bare:$P_BARE:$BARE_PID" "nginx:$P_NGINX:$(nginx_pids)")
run_check_row arduino "Arduino HTTPUpdate check, nothing to do → 304 ($CHECK_DEVICES devices, stock request: HTTP/1.0, a connection per check)" /ota/arduino
[ -n "$SEED1_PID" ] && say "arduino: seed 1 has no such endpoint"

# (b) The "ESP32 OTA Update Server" device check, devices on their target: update_available false.
$B/bench-tool image --size 1000000 --version 1.3.8 --project PanicButton --out "$W/PanicButton_v1.3.8.bin" | tee -a "$R"
LEGACY_SERVERS=("otafleet:$P_OTA:$OTA_PID")
[ -n "$SEED1_PID" ] && LEGACY_SERVERS+=("seed1:$P_SEED1:$SEED1_PID")
for t in "${LEGACY_SERVERS[@]}"; do
  IFS=: read -r name port pid <<< "$t"
  $B/bench-tool legacy-setup --server http://127.0.0.1:$port --admin-key bench --secret "$SECRET" \
    --image "$W/PanicButton_v1.3.8.bin" --filename PanicButton_v1.3.8.bin --version 1.3.8 \
    --devices "$CHECK_DEVICES" --lua "$W/legacy-$name.lua" | tee -a "$R"
done
cp "$W/legacy-otafleet.lua" "$W/legacy.lua"  # the same MACs and tokens for every server
CHECK_ENV=("DEVICES_LUA=$W/legacy.lua" "VERSION=1.3.8"); CHECK_SCRIPT=bench/legacy.lua; CHECK_3XX=no
# The devices' first checks record their address and find their deployments done: once through
# (8 s covers every device on each wrk thread even at the database path's speed), not counted;
# its figures are those of a first check.
for kv in "${CHECK_ENV[@]}"; do export "${kv?}"; done
F="$OUT/wrk-legacy-warmup.txt"; wrk_run "$F" "$OTA_PID" -t2 -c"$CONNS" -d8s -s bench/legacy.lua http://127.0.0.1:$P_OTA/api/firmware
checked "legacy warm-up on otafleet"
for kv in "${CHECK_ENV[@]}"; do unset "${kv%%=*}"; done
say "legacy: $CHECK_DEVICES devices on PanicButton 1.3.8, each with its own deployment (as the legacy admin API makes them); warm-up (first checks): $N checks, $RPS req/s, $CPU_US us CPU/req"
CHECK_SERVERS=("otafleet:$P_OTA:$OTA_PID" "bare:$P_BARE:$BARE_PID" "nginx:$P_NGINX:$(nginx_pids)")
[ -n "$SEED1_PID" ] && CHECK_SERVERS+=("seed1:$P_SEED1:$SEED1_PID")
run_check_row legacy "Seed-1 device check GET /api/firmware, on target → update_available false ($CHECK_DEVICES devices, a connection per check)" /api/firmware
[ -z "$SEED1_PID" ] && say "legacy: seed 1: not measured (SEED1_DIR not set)" && row "| (seed 1: not measured, SEED1_DIR not set) | | | |"

# (c) Native check-ins that get an offer: enrolled devices on 1.0.0, a deployment of 2.0.0.
$B/bench-tool enroll --server http://127.0.0.1:$P_OTA --devices "$CHECK_DEVICES" --project offerbench \
  --prefix 192 --lua "$W/offer.lua" | tee -a "$R"
$B/bench-tool image --size 131072 --version 2.0.0 --project offerbench --out "$W/offerbench.bin" | tee -a "$R"
FW=$(curl -fsS -H 'Authorization: Bearer bench' -H 'content-type: application/octet-stream' \
  --data-binary @"$W/offerbench.bin" "http://127.0.0.1:$P_OTA/api/v1/firmware?filename=offerbench-2.0.0.bin")
FW_ID=$(echo "$FW" | sed -n 's/.*"id":\([0-9]*\).*/\1/p' | head -1)
curl -fsS -o /dev/null -H 'Authorization: Bearer bench' -H 'content-type: application/json' \
  -d "{\"firmware_id\": $FW_ID}" http://127.0.0.1:$P_OTA/api/v1/deployments
CHECK_ENV=("DEVICES_LUA=$W/offer.lua" "PROJECT=offerbench" "VERSION=1.0.0" "EXPECT=offer")
CHECK_SCRIPT=bench/checkin.lua; CHECK_3XX=no
CHECK_SERVERS=("otafleet:$P_OTA:$OTA_PID" "bare:$P_BARE:$BARE_PID" "nginx:$P_NGINX:$(nginx_pids)")
run_check_row offer "Native check-in answered with an offer ($CHECK_DEVICES enrolled devices on 1.0.0, 2.0.0 deployed, kept-alive)" /api/v1/device/checkin
[ -n "$SEED1_PID" ] && say "offer: seed 1 has no such endpoint"
fi

# --- downloads -------------------------------------------------------------------------------
if part downloads || part ranges || part memory; then
$B/bench-tool image --size 1572864 --version 9.9.9 --out "$W/www/image.bin" | tee -a "$R"
SHA=$(sha256sum "$W/www/image.bin" | cut -d' ' -f1)
curl -fsS -o /dev/null -H 'Authorization: Bearer bench' -H 'content-type: application/octet-stream' \
  --data-binary @"$W/www/image.bin" "http://127.0.0.1:$P_OTA/api/v1/firmware?filename=bench-9.9.9.bin"
fi
if part downloads; then
say "== downloads: one 1.5 MB image, $ROUNDS rounds of each mode, nginx and otafleet back to back"
DL_SERVERS=("nginx:$P_NGINX:/image.bin:$(nginx_pids)" "otafleet:$P_OTA:/api/v1/device/firmware/$SHA:$OTA_PID")
for t in "${DL_SERVERS[@]}"; do
  IFS=: read -r name port path pids <<< "$t"
  curl -fsS "http://127.0.0.1:$port$path" | sha256sum | grep -q "$SHA" || { echo "$name serves other bytes"; exit 1; }
done
[ -s "$T" ] && row ""
row "| Download of one 1.5 MB image | otafleet | nginx (same run) | ratio (MiB/s) | goal |"
row "| --- | --- | --- | --- | --- |"
# key|wrk threads|connections|extra wrk header|what|goal
DL_MODES=("c$CONNS|2|$CONNS||kept-alive, wrk -t2 -c$CONNS|≥ 0.9×"
          "c4|2|4||kept-alive, wrk -t2 -c4|≥ 0.9×, p99 < 10 ms"
          "c1|1|1||kept-alive, wrk -t1 -c1|≥ 0.9×, p99 < 10 ms"
          "c1close|1|1|Connection: close|a connection per request, wrk -t1 -c1 -H 'Connection: close'|—")
for m in "${DL_MODES[@]}"; do
  IFS='|' read -r key threads conns header desc goal <<< "$m"
  extra=(); [ -n "$header" ] && extra=(-H "$header")
  unset DMB DP99; declare -A DMB=() DP99=(); DRATIOS=()
  for round in $(seq 1 "$ROUNDS"); do
    for t in "${DL_SERVERS[@]}"; do
      IFS=: read -r name port path pids <<< "$t"
      F="$OUT/wrk-download-$key-$name-$round.txt"
      wrk_run "$F" "$pids" -t"$threads" -c"$conns" "${extra[@]}" -d"$DUR" "http://127.0.0.1:$port$path"
      checked "download $key on $name"
      say "round $round download $key $name: ${MIBS} MiB/s ($RPS images/s)  p50 ${P50} ms  p99 ${P99} ms  server CPU ${CPU_US} us/image"
      DMB[$name]+="$MIBS "; DP99[$name]+="$P99 "
      eval "MB_$name=$MIBS"
    done
    DRATIOS+=("$(ratio "$MB_otafleet" "$MB_nginx")")
  done
  MR=$(median "${DRATIOS[@]}")
  say "download $key ratio otafleet/nginx per round: ${DRATIOS[*]}, median $MR  ($desc; goal $goal)"
  # shellcheck disable=SC2086
  row "| $desc | $(median ${DMB[otafleet]}) MiB/s, p99 $(median ${DP99[otafleet]}) ms | $(median ${DMB[nginx]}) MiB/s, p99 $(median ${DP99[nginx]}) ms | **${MR}×** | $goal |"
done
fi
# ESP-IDF's partial download: 64 KiB ranges over one kept-alive connection, every range checked.
if part ranges; then
DL_SERVERS=("nginx:$P_NGINX:/image.bin:$(nginx_pids)" "otafleet:$P_OTA:/api/v1/device/firmware/$SHA:$OTA_PID")
[ -s "$T" ] && ! part downloads && row ""
part downloads || { row "| Download of one 1.5 MB image | otafleet | nginx (same run) | ratio | goal |"; row "| --- | --- | --- | --- | --- |"; }
say "== ranges: ESP-IDF partial download, 64 KiB ranges on one kept-alive connection, $(secs "$DUR") s, $ROUNDS rounds"
unset RMEAN RP99 RSLOW; declare -A RMEAN=() RP99=() RSLOW=(); RRATIOS=()
for round in $(seq 1 "$ROUNDS"); do
  for t in "${DL_SERVERS[@]}"; do
    IFS=: read -r name port path pids <<< "$t"
    line=$($B/bench-tool ranges --name "$name" --addr 127.0.0.1:$port --path "$path" --file "$W/www/image.bin" \
      --piece 65536 --seconds "$(secs "$DUR")") || { echo "ranges on $name: wrong answer"; exit 1; }
    say "round $round $line"
    mean=$(echo "$line" | sed -n 's/.* mean \([0-9.]*\) ms.*/\1/p'); p99=$(echo "$line" | sed -n 's/.* p99 \([0-9.]*\) ms.*/\1/p')
    RMEAN[$name]+="$mean "; RP99[$name]+="$p99 "; RSLOW[$name]+="$(echo "$line" | sed -n 's/.*over 30 ms: \([0-9]*\).*/\1/p') "
    eval "RM_$name=$mean"
  done
  RRATIOS+=("$(ratio "$RM_nginx" "$RM_otafleet")")
done
# shellcheck disable=SC2086
{
  MR=$(median "${RRATIOS[@]}")
  say "ranges speed ratio otafleet/nginx (nginx's mean time per range / otafleet's) per round: ${RRATIOS[*]}, median $MR"
  row "| ESP-IDF partial download: 64 KiB ranges on one kept-alive connection, every range checked (time per range) | mean $(median ${RMEAN[otafleet]}) ms, p99 $(median ${RP99[otafleet]}) ms; over 30 ms: ${RSLOW[otafleet]}| mean $(median ${RMEAN[nginx]}) ms, p99 $(median ${RP99[nginx]}) ms; over 30 ms: ${RSLOW[nginx]}| **${MR}×** | — |"
}
fi

# --- a whole fleet, end to end -----------------------------------------------------------------
fleet_run() {  # fleet_run KEY DESC sim-args...
  local key=$1 desc=$2; shift 2
  say "== fleet ($key): otafleet-sim --devices $FLEET $*"
  rm -f "$W/peak"
  ( peak=0; while kill -0 $OTA_PID 2>/dev/null; do r=$(awk '/VmRSS/ {print $2}' /proc/$OTA_PID/status); \
    [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" > "$W/peak"; sleep 0.2; done ) & local watcher=$!
  set +e
  $B/otafleet-sim --server http://127.0.0.1:$P_OTA --admin-token bench --devices "$FLEET" "$@" \
    | tee "$OUT/fleet-$key.txt" | tee -a "$R"
  local rc=${PIPESTATUS[0]}
  set -e
  kill $watcher 2>/dev/null || true
  say "otafleet-sim exit code: $rc"
  local peak_mib=$(( $(cat "$W/peak") / 1024 ))
  say "server RSS peak during the fleet run: $peak_mib MiB"
  local f="$OUT/fleet-$key.txt"
  # The sim's "check latency" lines: all checks together when it mixed protocols, else check-ins.
  local lat; lat=$(awk '$1=="all" && $2=="checks" {print "p50 " $4 " ms, p99 " $6 " ms"; exit}' "$f")
  [ -n "$lat" ] || lat=$(awk '$1=="check-in" && $2 ~ /^[0-9]+$/ {print "p50 " $3 " ms, p99 " $5 " ms"; exit}' "$f")
  row "| $desc | $(sed -n 's/^time *\([0-9.]*\) s/\1 s/p' "$f"), $(sed -n 's/^errors *//p' "$f") errors, $(sed -n 's/^updated *\([0-9]*\).*/\1/p' "$f") updated; check latency $lat; RSS peak $peak_mib MiB | — | — | 0 errors |"
  [ "$rc" = 0 ] || { echo "fleet run $key failed"; exit 1; }
}
if part fleet; then
  [ -s "$T" ] && row ""
  row "| Fleet | result | | | goal |"
  row "| --- | --- | --- | --- | --- |"
  fleet_run native "$FLEET devices updated end to end, native, 128 KB images, 64 connections, 5 s check-in interval" \
    --protocols native=100 --connections 64 --interval 5 --reboot-ms 500 --image-size 131072 --no-progress --seed 42
  fleet_run mixed "$FLEET devices during a release, all five protocols (native 40, arduino 15, esp8266 15, esp32fota 15, legacy 15), 128 KB images, 64 connections, 5 s interval" \
    --protocols native=40,arduino=15,esp8266=15,esp32fota=15,legacy=15 --legacy-device-secret "$SECRET" \
    --connections 64 --interval 5 --reboot-ms 500 --image-size 131072 --no-progress --seed 43
fi

# --- memory with downloads in flight ---------------------------------------------------------
if part memory; then
say "== memory: downloads held in flight (4 KiB receive buffers), $(curl -fsS -H 'Authorization: Bearer bench' http://127.0.0.1:$P_OTA/api/v1/devices | grep -o '"mac":' | wc -l) registered devices"
$B/bench-tool inflight --addr 127.0.0.1:$P_OTA --path /api/v1/device/firmware/$SHA --pid $OTA_PID \
  --steps 0,250,500,1000 | tee -a "$R" | tee "$W/inflight.txt"
[ -s "$T" ] && row ""
row "| Memory | otafleet | | | goal |"
row "| --- | --- | --- | --- | --- |"
row "| Server RSS, downloads held in flight (0 / 250 / 500 / 1,000) | $(awk -F'rss_mb=' '/^in_flight=[0-9]+ / {printf "%s%s", s, $2; s=" / "}' "$W/inflight.txt") MB | — | — | < 80 MB |"
fi

# --- import ----------------------------------------------------------------------------------
if part import; then
say "== import of a 4 MB image (criterion)"
cargo bench -q -p otafleet-core --bench import -- --noplot 2>&1 | grep -E '^import_4mb|thrpt|time:' | tee -a "$R"
fi
# --- commands: 1,000 devices long-polling; delivery time, their memory, check-ins meanwhile ----
if part commands; then
say "== commands: 1,000 devices long-polling (wait=25); check-ins without and with them; 500 commands at 50/s"
P_CMD=18520
RUST_LOG=warn "$OTA_BIN" serve --no-mdns --listen 127.0.0.1:$P_CMD --data-dir "$W/cmd-data" \
  --admin-token bench --checkin-interval 60 > "$W/cmd-server.log" 2>&1 & PIDS+=($!); CMD_PID=$!
wait_http http://127.0.0.1:$P_CMD/api/v1/health
$B/bench-tool enroll --server http://127.0.0.1:$P_CMD --devices 1000 --lua "$W/cmd-devices.lua" | tee -a "$R"
CK_ALONE=(); CK_WAIT=()
for round in $(seq 1 "$ROUNDS"); do
  F="$OUT/wrk-checkin-alone-$round.txt"
  DEVICES_LUA="$W/cmd-devices.lua" wrk_run "$F" "$CMD_PID" -t2 -c"$CONNS" -d"$DUR" -s bench/checkin.lua http://127.0.0.1:$P_CMD
  checked "check-ins without waiting devices"; CK_ALONE+=("$RPS")
  say "round $round check-ins, no device waiting: ${RPS} req/s p99 ${P99} ms, ${CPU_US} us CPU/req"
done
HOLD=$(( ROUNDS * ($(secs "$DUR") + 2) + 2 ))
$B/bench-tool commands --server http://127.0.0.1:$P_CMD --pid $CMD_PID --devices 1000 --commands 500 \
  --rate 50 --hold-seconds "$HOLD" > "$W/commands.txt" 2>&1 & CT=$!
for _ in $(seq 1 600); do grep -q '^waiting' "$W/commands.txt" && break; sleep 0.1; done
grep -q '^waiting' "$W/commands.txt" || { cat "$W/commands.txt"; echo "commands: the devices never all waited"; exit 1; }
for round in $(seq 1 "$ROUNDS"); do
  F="$OUT/wrk-checkin-waiting-$round.txt"
  DEVICES_LUA="$W/cmd-devices.lua" wrk_run "$F" "$CMD_PID" -t2 -c"$CONNS" -d"$DUR" -s bench/checkin.lua http://127.0.0.1:$P_CMD
  checked "check-ins with 1,000 waiting devices"; CK_WAIT+=("$RPS")
  say "round $round check-ins, 1,000 devices waiting: ${RPS} req/s p99 ${P99} ms, ${CPU_US} us CPU/req"
done
wait $CT || { cat "$W/commands.txt"; echo "commands: not all delivered"; exit 1; }
tee -a "$R" < "$W/commands.txt"
kill $CMD_PID 2>/dev/null || true
A=$(median "${CK_ALONE[@]}"); Bw=$(median "${CK_WAIT[@]}"); CR=$(ratio "$Bw" "$A")
say "check-ins with/without 1,000 waiting devices: $Bw / $A req/s = $CR (goal >= 0.9)"
CL=$(sed -n 's/^commands devices=[0-9]* waiting: \(.*\)/\1/p' "$W/commands.txt")
[ -s "$T" ] && row ""
row "| Commands | otafleet | | | goal |"
row "| --- | --- | --- | --- | --- |"
row "| 500 commands at 50/s to 1,000 long-polling devices: delivery | $(echo "$CL" | sed -n 's/.*\(delivery p50 [0-9.]* ms p99 [0-9.]* ms\).*/\1/p') | — | — | p50 < 100 ms, p99 < 500 ms |"
row "| Server memory of 1,000 waiting devices | $(echo "$CL" | sed -n 's/.*server RSS \(.*\)/\1/p') | — | — | < 30 MB |"
row "| Native check-ins while 1,000 devices wait (vs none, same server) | $Bw vs $A req/s | — | $CR | ≥ 0.9 |"
fi

# --- live logs: 50 devices at 20 lines/s each watched, and the Logs tab of a 1,000 lines/s one ---
if part logs; then
say "== live logs: 50 devices x 20 lines/s, a viewer each; one device at 1,000 lines/s in the Logs tab (Chromium)"
if [ ! -f ui/dist/index.html ] || [ ! -d ui/node_modules/playwright-core ]; then
  say "logs: SKIPPED (not measured): needs the built UI and its node modules (npm --prefix ui ci && npm --prefix ui run build)"
else
  P_LOGS=18510
  RUST_LOG=warn "$OTA_BIN" serve --no-mdns --listen 127.0.0.1:$P_LOGS --data-dir "$W/logs-data" \
    --admin-token bench --ui-dir ui/dist > "$W/logs-server.log" 2>&1 & PIDS+=($!); LOGS_PID=$!
  wait_http http://127.0.0.1:$P_LOGS/api/v1/health
  LSECS=$(( $(secs "$DUR") + 10 ))
  $B/bench-tool logs --server http://127.0.0.1:$P_LOGS --pid $LOGS_PID --devices 50 --rate 20 \
    --seconds "$LSECS" > "$W/logs-fleet.txt" 2>&1 & LF=$!
  $B/bench-tool logs --server http://127.0.0.1:$P_LOGS --devices 1 --rate 1000 --seconds "$LSECS" \
    --project logbench-hot --prefix 197 > "$W/logs-hot.txt" 2>&1 & LH=$!
  node bench/ui-logs.mjs http://127.0.0.1:$P_LOGS bench logbench-hot "$(secs "$DUR")" | tee -a "$R" | tee "$W/logs-ui.txt"
  wait $LF || { cat "$W/logs-fleet.txt"; echo "logs: lines lost"; exit 1; }
  wait $LH || { cat "$W/logs-hot.txt"; echo "logs: lines lost"; exit 1; }
  tee -a "$R" < "$W/logs-fleet.txt"; tee -a "$R" < "$W/logs-hot.txt"
  kill $LOGS_PID 2>/dev/null || true
  [ -s "$T" ] && row ""
  row "| Live logs | otafleet | | | goal |"
  row "| --- | --- | --- | --- | --- |"
  row "| 50 devices x 20 lines/s, one viewer each: $(sed -n 's/.*received \([0-9]*\).*/\1/p' "$W/logs-fleet.txt") of $(sed -n 's/.*sent \([0-9]*\) lines.*/\1/p' "$W/logs-fleet.txt") lines delivered | delivery $(sed -n 's/.*delivery \(p50 [0-9.]* ms p99 [0-9.]* ms\).*/\1/p' "$W/logs-fleet.txt"); $(sed -n 's/.*\(server CPU [0-9.]*% of one core\).*/\1/p' "$W/logs-fleet.txt") | — | — | none lost |"
  row "| Logs tab of a device at 1,000 lines/s (while the 50 above send) | $(sed -n 's/^ui-logs device=[0-9A-Fa-f:]*: \(.*\)/\1/p' "$W/logs-ui.txt") | — | — | no stalls |"
fi
fi
# --- HTTPS: handshakes/s and check-ins/s over TLS, against nginx with the same certificate ------
# otafleet serves HTTPS on its HTTP port. nginx, given otafleet's own ECDSA P-256 certificate and
# key, answers the same paths with constants over TLS: the floor of what a TLS server costs.
# Handshakes: every request on a new connection (Connection: close), so each is a full handshake;
# nginx with its session cache and tickets off (otafleet's rustls issues no tickets; wrk opens
# every connection without a session to resume).
if part tls; then
P_NGINX_TLS=18481
cat > "$W/nginx-tls.conf" <<NGX
worker_processes auto;
pid $W/nginx/nginx-tls.pid;
error_log $W/nginx/error-tls.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000;
  client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
  uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
  server {
    listen 127.0.0.1:$P_NGINX_TLS ssl;
    ssl_certificate $W/data/tls/server.pem; ssl_certificate_key $W/data/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;
    location = /api/v1/health { default_type application/json; return 200 '{"status":"ok","version":"0.1.0"}'; }
    location = /api/v1/device/checkin { default_type application/json; return 200 '$OFFER_JSON'; }
  }
}
NGX
nginx -c "$W/nginx-tls.conf" -g 'daemon off;' & PIDS+=($!); NGINX_TLS_PID=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null --cacert "$W/data/tls/ca.pem" https://127.0.0.1:$P_NGINX_TLS/api/v1/health 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null --cacert "$W/data/tls/ca.pem" https://127.0.0.1:$P_OTA/api/v1/health || { echo "otafleet does not answer HTTPS"; exit 1; }
nginx_tls_pids() { echo "$NGINX_TLS_PID $(pgrep -P "$NGINX_TLS_PID" | tr '\n' ' ')"; }
[ -f "$W/devices.lua" ] || $B/bench-tool enroll --server http://127.0.0.1:$P_OTA --devices 1000 --lua "$W/devices.lua" | tee -a "$R"
say "== HTTPS: wrk -t2 -c$CONNS -d$DUR, $ROUNDS rounds; otafleet over TLS, otafleet over plain HTTP, nginx over TLS, back to back"
HS_O=(); HS_N=(); HS_R=(); HS_OC=(); HS_NC=(); KA_O=(); KA_P=(); KA_N=(); KA_RP=(); KA_OP99=(); KA_OC=()
for round in $(seq 1 "$ROUNDS"); do
  F="$OUT/wrk-handshake-otafleet-$round.txt"
  wrk_run "$F" "$OTA_PID" -t2 -c"$CONNS" -d"$DUR" -H 'Connection: close' https://127.0.0.1:$P_OTA/api/v1/health
  checked "TLS handshakes on otafleet"; HO=$RPS; HS_O+=("$RPS"); HS_OC+=("$CPU_US")
  say "round $round handshakes otafleet: ${RPS}/s  p99 ${P99} ms  server CPU ${CPU_US} us/handshake"
  F="$OUT/wrk-handshake-nginx-$round.txt"
  wrk_run "$F" "$(nginx_tls_pids)" -t2 -c"$CONNS" -d"$DUR" -H 'Connection: close' https://127.0.0.1:$P_NGINX_TLS/api/v1/health
  checked "TLS handshakes on nginx"; HS_N+=("$RPS"); HS_NC+=("$CPU_US")
  say "round $round handshakes nginx: ${RPS}/s  p99 ${P99} ms  server CPU ${CPU_US} us/handshake"
  HS_R+=("$(ratio "$HO" "$RPS")")
  for t in otafleet-tls:https:$P_OTA otafleet-plain:http:$P_OTA nginx-tls:https:$P_NGINX_TLS; do
    IFS=: read -r name scheme port <<< "$t"
    pids=$OTA_PID; [ "$name" = nginx-tls ] && pids=$(nginx_tls_pids)
    F="$OUT/wrk-checkin-$name-$round.txt"
    DEVICES_LUA="$W/devices.lua" wrk_run "$F" "$pids" -t2 -c"$CONNS" -d"$DUR" -s bench/checkin.lua "$scheme://127.0.0.1:$port"
    checked "check-ins on $name"
    say "round $round checkin $name: ${RPS} req/s  p50 ${P50} ms  p99 ${P99} ms  server CPU ${CPU_US} us/req"
    case $name in
      otafleet-tls) KO=$RPS; KA_O+=("$RPS"); KA_OP99+=("$P99"); KA_OC+=("$CPU_US");;
      otafleet-plain) KP=$RPS; KA_P+=("$RPS");;
      nginx-tls) KA_N+=("$RPS"); KN=$RPS;;
    esac
  done
  KA_RP+=("$(ratio "$KO" "$KP")")
  say "round $round: handshakes otafleet/nginx ${HS_R[-1]}; check-ins over TLS/plain ${KA_RP[-1]}, otafleet TLS/nginx TLS $(ratio "$KO" "$KN")"
done
kill $NGINX_TLS_PID 2>/dev/null || true
[ -s "$T" ] && row ""
row "| HTTPS | otafleet | baseline (same run) | ratio |"
row "| --- | --- | --- | --- |"
row "| TLS handshakes (a new connection per request, ECDSA P-256, GET /api/v1/health) | $(median "${HS_O[@]}")/s, $(median "${HS_OC[@]}") µs CPU each | nginx TLS (same certificate, constant answer): $(median "${HS_N[@]}")/s, $(median "${HS_NC[@]}") µs CPU each | /nginx $(median "${HS_R[@]}") |"
row "| Native check-in over HTTPS, kept-alive (1,000 enrolled devices) | $(median "${KA_O[@]}") req/s, p99 $(median "${KA_OP99[@]}") ms, $(median "${KA_OC[@]}") µs CPU/req | otafleet over plain HTTP: $(median "${KA_P[@]}") req/s; nginx TLS constant: $(median "${KA_N[@]}") req/s | /plain $(median "${KA_RP[@]}") |"
fi
# --- MQTT: ESP Admin devices on the embedded broker, against Mosquitto as the user's broker ----
# MQTT_DEVICES devices (default 1,000), added through the admin API, connect as the SDK does (id
# and key, last will, subscribe, "connected") and each sends MQTT_RATE log lines a second (QoS 0)
# for DUR. Once on otafleet's embedded broker (TLS with its CA), once on Mosquitto 2.0 (anonymous,
# plain: the floor of a broker's cost) with otafleet as its client over the same bridge. CPU and
# RSS are otafleet's, plus Mosquitto's in the second run.
if part mqtt; then
MQTT_DEVICES=${MQTT_DEVICES:-1000}; MQTT_RATE=${MQTT_RATE:-5}
P_MQ=18530; P_MQB=18531; P_MOSQ=18532; P_MQ2=18533
say "== MQTT: $MQTT_DEVICES ESP Admin devices x $MQTT_RATE log lines/s for $DUR; embedded broker, then Mosquitto with the same bridge"
RUST_LOG=warn "$OTA_BIN" serve --no-mdns --listen 127.0.0.1:$P_MQ --https-port off --mqtt embedded \
  --mqtt-port $P_MQB --data-dir "$W/mqtt-embedded" --admin-token bench > "$W/mqtt-embedded.log" 2>&1 & PIDS+=($!); MQ_PID=$!
wait_http http://127.0.0.1:$P_MQ/api/v1/health
$B/bench-tool mqtt --server http://127.0.0.1:$P_MQ --pid $MQ_PID --broker 127.0.0.1:$P_MQB \
  --ca "$W/mqtt-embedded/tls/ca.pem" --devices "$MQTT_DEVICES" --rate "$MQTT_RATE" --seconds "$(secs "$DUR")" | tee -a "$R" | tee "$W/mqtt-embedded.txt"
kill $MQ_PID 2>/dev/null || true
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' $P_MOSQ > "$W/mosquitto.conf"
mosquitto -c "$W/mosquitto.conf" > "$W/mosquitto.log" 2>&1 & PIDS+=($!); MOSQ_PID=$!
RUST_LOG=warn "$OTA_BIN" serve --no-mdns --listen 127.0.0.1:$P_MQ2 --https-port off --mqtt mqtt://otafleet@127.0.0.1:$P_MOSQ \
  --data-dir "$W/mqtt-mosquitto" --admin-token bench > "$W/mqtt-mosquitto.log" 2>&1 & PIDS+=($!); MQ2_PID=$!
wait_http http://127.0.0.1:$P_MQ2/api/v1/health
$B/bench-tool mqtt --server http://127.0.0.1:$P_MQ2 --pid $MQ2_PID --pid $MOSQ_PID --broker 127.0.0.1:$P_MOSQ \
  --devices "$MQTT_DEVICES" --rate "$MQTT_RATE" --seconds "$(secs "$DUR")" | tee -a "$R" | tee "$W/mqtt-mosquitto.txt"
kill $MQ2_PID $MOSQ_PID 2>/dev/null || true
mq() { sed -n "s/.*$2.*/\1/p" "$W/mqtt-$1.txt"; }
[ -s "$T" ] && row ""
row "| MQTT, $MQTT_DEVICES ESP Admin devices x $MQTT_RATE log lines/s | embedded broker (TLS) | Mosquitto + the same bridge (plain) | ratio |"
row "| --- | --- | --- | --- |"
row "| All online (connect, subscribe, status seen by otafleet) | $(mq embedded 'all online in \([0-9.]* s\)') | $(mq mosquitto 'all online in \([0-9.]* s\)') | |"
row "| Lines kept by otafleet | $(mq embedded 'kept \([0-9]* ([0-9.]*%)\)'), $(mq embedded ', \([0-9]*\) lines\/s kept')/s | $(mq mosquitto 'kept \([0-9]* ([0-9.]*%)\)'), $(mq mosquitto ', \([0-9]*\) lines\/s kept')/s | /Mosquitto $(ratio "$(mq embedded ', \([0-9]*\) lines\/s kept')" "$(mq mosquitto ', \([0-9]*\) lines\/s kept')") |"
row "| CPU per line kept (otafleet, + Mosquitto in the reference) | $(mq embedded '= \([0-9.]*\) us\/line') µs | $(mq mosquitto '= \([0-9.]*\) us\/line') µs | $(ratio "$(mq embedded '= \([0-9.]*\) us\/line')" "$(mq mosquitto '= \([0-9.]*\) us\/line')") |"
row "| RSS with all connected / under load | $(mq embedded 'RSS connected \([0-9]*\) MiB') / $(mq embedded 'RSS under load \([0-9]*\) MiB') MiB | $(mq mosquitto 'RSS connected \([0-9]*\) MiB') / $(mq mosquitto 'RSS under load \([0-9]*\) MiB') MiB | |"
fi
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
say ""
say "== results table (BENCHMARKS.md)"
tee -a "$R" < "$T"
