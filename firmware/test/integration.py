#!/usr/bin/env python3
"""integration.py - the host device against a real `otafleet serve`.

Why it exists: it proves the portable client and the server agree on the
native v1 contract, end to end, over real HTTP: enrolment (trust on first
use), refusal of a wrong or missing token without the device re-enrolling,
an update from 1.0.0 to 2.0.0 streamed and verified with progress every 5%,
the simulated reboot and the confirming check-in the server counts as done,
and a corrupted download that ends in a "failed" report; then, on a second
device, remote management: a report the admin lists, a restart command
(acknowledged, reported, rebooted, back), a config change applied and
acknowledged, a custom command answered by the sketch, and a log session driven by a `log`
command; then HTTPS (the server's --tls auto and require): a device given the server's CA
enrols and checks in over TLS (the server records tls: true), a wrong CA fails the handshake
with nothing reaching the server, and trust on first use from an mDNS-style tls=1 ca=
answer stores and logs the CA, or refuses a mismatching one without sending the token.

The management checks other than the report need the commands, config and
logs slices of issue 15 on the server; against a server without them they
FAIL (they are not skipped). OTAFLEET_MGMT_CHECKS=0 leaves them out and
prints "NOT RUN" for each.

Run from firmware/ (make -C firmware test does): needs build/hostdevice and
the server binary OTAFLEET_BIN (default ../target/debug/otafleet, built by
`cargo build -p otafleet-cli` at the repository root). Prints one line per
check and ends with "N passed, N failed". Standard library only.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FIRMWARE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import mkimage  # noqa: E402  (sibling module)

ADMIN_TOKEN = "integration-admin-token-0123456789"
MAC = "24:0A:C4:12:34:56"
MGMT_MAC = "24:0A:C4:AB:CD:EF"  # the remote-management device
MGMT_CHECKS = os.environ.get("OTAFLEET_MGMT_CHECKS", "1") != "0"
HOSTDEVICE = os.path.join(FIRMWARE_DIR, "build", "hostdevice")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   - %s" % name)
        else:
            self.failed += 1
            print("FAIL - %s%s" % (name, (": " + detail) if detail else ""))
        sys.stdout.flush()
        return ok


def api(base, method, path, body=None, raw=None, token=ADMIN_TOKEN, ctype="application/json"):
    """One admin API call; returns (status, parsed JSON or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            status, text = r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode("utf-8", "replace")
    except OSError as e:
        return -1, str(e)
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def start_server(binary, work, name="server", data="data", extra=()):
    """Start `otafleet serve` on port 0 and wait (bounded) for its ready line."""
    out_path, err_path = os.path.join(work, name + ".out"), os.path.join(work, name + ".err")
    out, err = open(out_path, "wb"), open(err_path, "wb")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(work, data),
         "--admin-token", ADMIN_TOKEN, "--no-mdns", "--https-port", "off", "--mqtt", "off"] + list(extra),
        stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    ready = re.compile(r"^otafleet listening on (http://127\.0\.0\.1:\d+)\s*$", re.M)
    for _ in range(40):  # poll every 0.5 s, at most 20 s
        with open(out_path, "rb") as f:
            m = ready.search(f.read().decode("utf-8", "replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    return proc, None


def run_device(state, server, *args, timeout=120, mac=MAC):
    """Run the host device; returns (exit code, list of event dicts, stdout, stderr)."""
    cmd = [HOSTDEVICE, "--server", server, "--state", state, "--mac", mac] + list(args)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return -1, [], e.stdout or "", "timed out\n" + (e.stderr or "")
    events = []
    for line in p.stdout.splitlines():
        if line.startswith("event="):
            ev = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
            events.append({k: v.strip('"') for k, v in ev.items()})
    return p.returncode, events, p.stdout, p.stderr


def upload(c, base, path, version):
    """Upload an image; returns the firmware object (or None).

    The 201 body is the firmware object itself."""
    data = open(path, "rb").read()
    st, body = api(base, "POST", "/api/v1/firmware?filename=hostdevice-%s.bin" % version, raw=data,
                   ctype="application/octet-stream")
    fw = body if isinstance(body, dict) else {}
    c.check("upload of the generated %s image accepted (201, sha256 and version as in the file)" % version,
            st == 201 and fw.get("sha256", "").lower() == hashlib.sha256(data).hexdigest()
            and fw.get("version") == version, "%s %s" % (st, body))
    return fw if fw.get("id") is not None else None


def named(events, name, **match):
    return [e for e in events if e["event"] == name and all(e.get(k) == v for k, v in match.items())]


def tail(text, n=15):
    return "\n      " + "\n      ".join(text.strip().splitlines()[-n:])


def scenario(c, base, work, images):
    dev_state = os.path.join(work, "device")

    # 1. First contact: trust on first use gives the device its token.
    rc, ev, out, err = run_device(dev_state, base, "--image", images["1.0.0"], "--until", "enrolled")
    c.check("device enrols on first check-in (token received)", rc == 0 and named(ev, "enrolled"), tail(out + err))
    token_file = os.path.join(dev_state, "nvs", "token")
    token = open(token_file).read() if os.path.exists(token_file) else ""
    c.check("device token kept in NVS", len(token) > 0)
    st, dev = api(base, "GET", "/api/v1/devices/" + MAC)
    c.check("server lists the device running 1.0.0",
            st == 200 and isinstance(dev, dict) and dev.get("version") == "1.0.0", "%s %s" % (st, dev))

    # 2. Same MAC, wrong token / no token: refused; the impostor must not take over.
    imp = os.path.join(work, "impostor")
    rc, ev, out, err = run_device(imp, base, "--image", images["1.0.0"], "--token", "not-the-real-token",
                                  "--until", "checkins:3")
    c.check("wrong token: every check-in refused with 401",
            rc == 0 and len(named(ev, "checkin", status="401")) == 3, tail(out + err))
    c.check("wrong token: device backs off and reports, keeps its token, does not re-enrol",
            len(named(ev, "unauthorized")) == 3 and not named(ev, "enrolled")
            and all(int(e.get("delay_ms", 0)) > 0 for e in named(ev, "unauthorized"))
            and open(os.path.join(imp, "nvs", "token")).read() == "not-the-real-token", tail(out))
    imp2 = os.path.join(work, "impostor2")
    rc, ev, out, err = run_device(imp2, base, "--image", images["1.0.0"], "--until", "checkins:2")
    c.check("no token for a known MAC: 401, nothing stored",
            rc == 0 and len(named(ev, "checkin", status="401")) == 2
            and not os.path.exists(os.path.join(imp2, "nvs", "token")), tail(out + err))
    rc, ev, out, err = run_device(dev_state, base, "--until", "checkins:1")
    c.check("the real device still checks in with its token",
            rc == 0 and named(ev, "checkin", status="200") and not named(ev, "offer"), tail(out + err))

    # 3. Upload 2.0.0 and deploy it to the device.
    data = open(images["2.0.0"], "rb").read()
    sha, md5 = hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    fw = upload(c, base, images["2.0.0"], "2.0.0") or {}
    st, dep = api(base, "POST", "/api/v1/deployments", {"firmware_id": fw.get("id"), "devices": [MAC]})
    c.check("deployment of 2.0.0 to the device created (201)", st == 201, "%s %s" % (st, dep))

    # 4. The update: offer, streamed download, reboot, confirming check-in.
    rc, ev, out, err = run_device(dev_state, base, "--until", "confirmed", "--chunk", "1024")
    c.check("device is offered 2.0.0, updates, reboots and confirms",
            rc == 0 and named(ev, "offer", text="2.0.0") and named(ev, "reboot")
            and "reboot-simulated" in out and named(ev, "confirmed") and named(ev, "update_done"), tail(out + err, 30))
    steps = [int(e["progress"]) for e in named(ev, "progress", state="downloading")]
    c.check("progress reported at every 5% (0..100) while downloading", steps == list(range(0, 101, 5)),
            str(steps))
    order = [e["state"] for e in named(ev, "progress")]
    c.check("state changes reported: downloading, verifying, flashing, rebooting, done",
            [s for i, s in enumerate(order) if i == 0 or order[i - 1] != s]
            == ["downloading", "verifying", "flashing", "rebooting", "done"], str(order))
    bad = [e for e in named(ev, "progress") if e["status"] not in ("200", "204")]
    c.check("server accepted every progress report (200/204)", not bad, str(bad[:3]))
    dl = re.search(r"^download url=\S+ status=(\d+) x_sha256=(\S+) x_md5=(\S+)$", out, re.M)
    c.check("firmware served with 200, x-SHA256 and x-MD5 matching the image",
            dl is not None and dl.group(1) == "200" and dl.group(2).lower() == sha and dl.group(3).lower() == md5,
            dl.group(0) if dl else "no download line")
    st, dev = api(base, "GET", "/api/v1/devices/" + MAC)
    upd = dev.get("update") if isinstance(dev, dict) else "?"
    c.check("server shows the device on 2.0.0 with the update done",
            st == 200 and dev.get("version") == "2.0.0" and (upd is None or (isinstance(upd, dict) and upd.get("state") == "done")),
            "%s %s" % (st, dev))
    rc, ev, out, err = run_device(dev_state, base, "--until", "checkins:1")
    c.check("after the update, the next check-in offers nothing",
            rc == 0 and named(ev, "checkin", status="200") and not named(ev, "offer"), tail(out + err))

    # 5. A download corrupted on the way: sha256 mismatch, reported as failed.
    fw3 = upload(c, base, images["3.0.0"], "3.0.0") or {}
    st, dep = api(base, "POST", "/api/v1/deployments", {"firmware_id": fw3.get("id"), "devices": [MAC]})
    c.check("deployment of 3.0.0 to the device created (201)", st == 201, "%s %s" % (st, dep))
    rc, ev, out, err = run_device(dev_state, base, "--until", "update-failed", "--corrupt-download")
    failed = named(ev, "progress", state="failed")
    c.check("corrupted download fails the sha256 check and reports state=failed with the error",
            rc == 0 and failed and "sha256 mismatch" in failed[0].get("text", "")
            and failed[0]["status"] in ("200", "204") and not named(ev, "reboot"), tail(out + err, 30))
    st, dev = api(base, "GET", "/api/v1/devices/" + MAC)
    upd = dev.get("update") if isinstance(dev, dict) else None
    c.check("server shows the 3.0.0 update failed, device still on 2.0.0",
            st == 200 and isinstance(upd, dict) and upd.get("state") == "failed" and dev.get("version") == "2.0.0",
            "%s %s" % (st, dev))


# ---- remote management (issue 15) ----
#
# The admin-side shapes below belong to the commands and config slices, which
# were not on main when these checks were written; they follow those slices'
# work in progress (variable types string/int/bool/secret, PATCH {values},
# GET .../config with applied_version, GET .../commands as {commands: [...]})
# and are kept here, in one place, to adjust if the merged server differs.
PROJECT_BODY = {
    "name": "otafleet-hostdevice",  # the project the generated images (mkimage) carry
    "variables": [
        {"key": "greeting", "type": "string", "default": "hello"},
        {"key": "blink_ms", "type": "int", "default": 500},
        {"key": "verbose", "type": "bool", "default": False},
        {"key": "api_key", "type": "secret"},
    ],
}
CONFIG_PATCH = {"values": {"greeting": "bonjour", "blink_ms": 250, "api_key": "s3cret-for-the-device"}}
MGMT_POLLS = "60"  # a device run that cannot reach its goal ends quickly
# What a device run "returns" when the admin step before it failed: the check fails, saying why.
NOT_ATTEMPTED = (-1, [], "", "not attempted: the admin request before it failed (see above)")


def as_list(body, key):
    """A list answer, bare or wrapped as {key: [...]}."""
    if isinstance(body, dict):
        body = body.get(key)
    return body if isinstance(body, list) else []


def queue_command(c, base, body, what):
    st, cmd = api(base, "POST", "/api/v1/devices/%s/commands" % MGMT_MAC, body)
    ok = st in (200, 201) and isinstance(cmd, dict) and cmd.get("id") is not None
    c.check("admin queues %s (POST /api/v1/devices/{mac}/commands)" % what, ok, "%s %s" % (st, cmd))
    return cmd if ok else None


def command_state(base, cmd_id):
    st, body = api(base, "GET", "/api/v1/devices/%s/commands" % MGMT_MAC)
    for cmd in as_list(body, "commands"):
        if isinstance(cmd, dict) and cmd.get("id") == cmd_id:
            return cmd.get("state"), cmd
    return None, "%s %s" % (st, body)


def report_check(c, base, state, images):
    rc, ev, out, err = run_device(state, base, "--image", images["1.0.0"], "--until", "report-sent",
                                  "--report", "success:hostdevice says \"hello\"", "--max-polls", MGMT_POLLS,
                                  mac=MGMT_MAC)
    c.check("device posts a report after its first check-in (200)",
            rc == 0 and named(ev, "report", status="200"), tail(out + err))
    st, reps = api(base, "GET", "/api/v1/reports?mac=" + MGMT_MAC)
    mine = [r for r in as_list(reps, "reports") if r.get("subject") == 'hostdevice says "hello"']
    c.check("GET /api/v1/reports lists it with its type, subject and body",
            st == 200 and len(mine) == 1 and mine[0].get("type") == "success"
            and mine[0].get("body") == "sent by hostdevice --report", "%s %s" % (st, reps))


def restart_check(c, base, state):
    cmd = queue_command(c, base, {"kind": "restart"}, "a restart")
    rc, ev, out, err = run_device(state, base, "--until", "restarted", "--max-polls", MGMT_POLLS, mac=MGMT_MAC) \
        if cmd else NOT_ATTEMPTED
    c.check("device acks the restart done, reports it, restarts and checks in again",
            cmd is not None and rc == 0 and named(ev, "command", text="restart", state="done", status="200")
            and named(ev, "report", text="restarting on request", status="200") and named(ev, "restart")
            and "reboot-simulated" in out, tail(out + err, 25))
    cmd_st, detail = command_state(base, cmd.get("id")) if cmd else (None, "not queued")
    c.check("server shows the restart command done", cmd_st == "done", str(detail))
    st, reps = api(base, "GET", "/api/v1/reports?mac=" + MGMT_MAC)
    c.check("the \"restarting on request\" report is listed",
            any(r.get("subject") == "restarting on request" and r.get("type") == "info"
                for r in as_list(reps, "reports")), "%s %s" % (st, reps))


def config_check(c, base, state):
    # The project exists once a device or image names it (the server makes its row): give it the
    # variables with PATCH; create it only if nothing named it yet.
    name = PROJECT_BODY["name"]
    st, proj = api(base, "PATCH", "/api/v1/projects/%s" % name,
                   {k: v for k, v in PROJECT_BODY.items() if k != "name"})
    if st == 404:
        st, proj = api(base, "POST", "/api/v1/projects", PROJECT_BODY)
    c.check("admin gives the device's project its variables (PATCH /api/v1/projects/{name})",
            st in (200, 201), "%s %s" % (st, proj))
    st, patched = api(base, "PATCH", "/api/v1/devices/%s/config" % MGMT_MAC, CONFIG_PATCH)
    c.check("admin changes the device's config (PATCH /api/v1/devices/{mac}/config)", st == 200,
            "%s %s" % (st, patched))
    rc, ev, out, err = run_device(state, base, "--until", "config-applied", "--max-polls", MGMT_POLLS,
                                  mac=MGMT_MAC) if st == 200 else NOT_ATTEMPTED
    m = re.search(r"^config values=(.*)$", out, re.M)
    try:
        values = json.loads(m.group(1)) if m else None
    except ValueError:
        values = None
    applied = named(ev, "config", status="200")
    c.check("device fetches the config (the secret included), hands it to the sketch and acknowledges it",
            rc == 0 and applied and isinstance(values, dict) and values.get("greeting") == "bonjour"
            and values.get("blink_ms") == 250 and values.get("verbose") is False
            and values.get("api_key") == "s3cret-for-the-device", tail(out + err, 25))
    nvs = os.path.join(state, "nvs")
    stored_v = open(os.path.join(nvs, "cfg_v")).read() if os.path.exists(os.path.join(nvs, "cfg_v")) else None
    c.check("device keeps the values and the acknowledged version in NVS",
            stored_v is not None and applied and stored_v == applied[-1].get("text")
            and "bonjour" in open(os.path.join(nvs, "cfg")).read(), "cfg_v=%s" % stored_v)
    st, cfg = api(base, "GET", "/api/v1/devices/%s/config" % MGMT_MAC)
    ok = st == 200 and isinstance(cfg, dict) and stored_v is not None and (
        str(cfg.get("applied_version")) == stored_v
        or (str(cfg.get("version")) == stored_v and (cfg.get("applied") is True or cfg.get("state") == "applied")))
    c.check("GET /api/v1/devices/{mac}/config shows that version applied", ok, "%s %s" % (st, cfg))
    rc, ev, out, err = run_device(state, base, "--until", "checkins:1", "--max-polls", MGMT_POLLS, mac=MGMT_MAC)
    c.check("the next check-in fetches no config (version unchanged)",
            stored_v is not None and rc == 0 and not named(ev, "config") and "/device/config" not in out, tail(out + err))


def custom_check(c, base, state):
    cmd = queue_command(c, base, {"kind": "custom", "key": "blink", "payload": {"times": 3}}, "a custom command")
    rc, ev, out, err = run_device(state, base, "--until", "commands:1", "--max-polls", MGMT_POLLS,
                                  mac=MGMT_MAC) if cmd else NOT_ATTEMPTED
    c.check("device hands the custom command to the sketch with its payload and acks it done",
            rc == 0 and "command key=blink payload=" in out and named(ev, "command", text="blink", state="done",
                                                                       status="200"), tail(out + err, 25))
    cmd_st, detail = command_state(base, cmd.get("id")) if cmd else (None, "not queued")
    c.check("server shows the custom command done with the sketch's result",
            cmd_st == "done" and isinstance(detail, dict) and detail.get("result") == "echo blink", str(detail))


def log_check(c, base, state):
    cmd = queue_command(c, base, {"kind": "log", "payload": {"on": True}}, "log forwarding on")
    rc, ev, out, err = run_device(state, base, "--log-lines", "5", "--until", "log-sent:5", "--max-polls",
                                  MGMT_POLLS, mac=MGMT_MAC) if cmd else NOT_ATTEMPTED
    c.check("device acks the log command, turns forwarding on and posts its 5 lines",
            cmd is not None and rc == 0 and named(ev, "command", text="log", state="done", status="200")
            and named(ev, "log_forwarding", status="1") and named(ev, "logs_sent", status="200"),
            tail(out + err, 25))
    st, logs = api(base, "GET", "/api/v1/devices/%s/logs" % MGMT_MAC)
    texts = [line.get("text") for line in as_list(logs, "lines") if isinstance(line, dict)]
    want = ["hostdevice line %d of 5" % i for i in range(1, 6)]
    c.check("GET /api/v1/devices/{mac}/logs shows the 5 lines", all(w in texts for w in want),
            "%s %s" % (st, str(logs)[:400]))


MGMT_NOT_RUN = [
    "restart command: acked, reported, rebooted, back; command done; report listed (3 checks + queuing)",
    "custom command: handed to the sketch, acked done with its result (2 checks + queuing)",
    "config change: project, patch, device applies and acks, NVS, admin sees it applied, no refetch",
    "log session: log command, 5 lines posted, admin reads them",
]


def mgmt_scenario(c, base, work, images):
    state = os.path.join(work, "mgmt-device")
    report_check(c, base, state, images)
    if not MGMT_CHECKS:
        for what in MGMT_NOT_RUN:
            print("NOT RUN - %s (OTAFLEET_MGMT_CHECKS=0)" % what)
        return
    restart_check(c, base, state)
    custom_check(c, base, state)
    config_check(c, base, state)
    log_check(c, base, state)


# ---- HTTPS: the CA given, a wrong CA, --tls require, trust on first use ----

TLS_MAC = "24:0A:C4:70:00:01"
WRONG_MAC = "24:0A:C4:70:00:02"
REQUIRE_MAC = "24:0A:C4:70:00:03"
TOFU_MAC = "24:0A:C4:70:00:04"
TOFU_BAD_MAC = "24:0A:C4:70:00:05"
PIN_MAC = "24:0A:C4:70:00:06"
TLS_POLLS = "40"


def ca_sha256(pem_path):
    """SHA-256 of the first certificate's DER, lower-case hex."""
    import ssl
    text = open(pem_path).read()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(text[:end] + "\n")).hexdigest()


def colon(hexfp):
    return ":".join(hexfp[i:i + 2] for i in range(0, 64, 2)).upper()


def requests_of(out):
    """(method, url, token sent) for every request the host device made."""
    return [(m.group(1), m.group(2), m.group(3) == "1")
            for m in re.finditer(r"^(post|get) url=(\S+) status=\S+ token=(\d)$", out, re.M)]


def device_tls(base, mac):
    st, dev = api(base, "GET", "/api/v1/devices/" + mac)
    return st, (dev.get("tls") if isinstance(dev, dict) else None), dev


def wrong_ca(work):
    """A CA of nobody's: a fresh self-signed certificate made with openssl."""
    path, key = os.path.join(work, "wrong-ca.pem"), os.path.join(work, "wrong-ca.key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-subj", "/CN=not the otafleet CA", "-days", "2", "-keyout", key, "-out", path],
                       capture_output=True, text=True, timeout=60)
    return path if r.returncode == 0 and os.path.exists(path) else None


def tls_scenario(c, base, work, images, ca_path):
    server_out = open(os.path.join(work, "server.out"), errors="replace").read()
    fp = ca_sha256(ca_path) if os.path.exists(ca_path) else ""
    m = re.search(r"^otafleet serving HTTPS on the same port: https://127\.0\.0\.1:\d+ \(CA SHA-256 ([0-9A-F:]+)\)$",
                  server_out, re.M)
    c.check("server (--tls auto) serves HTTPS and prints the SHA-256 of DATA_DIR/tls/ca.pem",
            m is not None and fp and m.group(1) == colon(fp), tail(server_out))

    # (a) The CA given to the device: the http:// URL becomes https://, every request uses it.
    state = os.path.join(work, "tls-device")
    rc, ev, out, err = run_device(state, base, "--image", images["1.0.0"], "--ca", ca_path, "--until", "enrolled",
                                  "--max-polls", TLS_POLLS, mac=TLS_MAC)
    reqs = requests_of(out)
    c.check("CA configured: the device enrols over https:// (the http:// URL rewritten on the same port)",
            rc == 0 and named(ev, "enrolled") and named(ev, "server", text=base.replace("http://", "https://"))
            and reqs and all(u.startswith("https://") for _, u, _ in reqs), tail(out + err))
    rc, ev, out, err = run_device(state, base, "--ca", ca_path, "--until", "checkins:1", "--max-polls", TLS_POLLS,
                                  mac=TLS_MAC)
    reqs = requests_of(out)
    c.check("CA configured: the device checks in with its token over https:// (200)",
            rc == 0 and named(ev, "checkin", status="200")
            and any(u.endswith("/device/checkin") and tok and u.startswith("https://") for _, u, tok in reqs)
            and all(u.startswith("https://") for _, u, _ in reqs), tail(out + err))
    st, tls, dev = device_tls(base, TLS_MAC)
    c.check("server shows the device tls: true (GET /api/v1/devices/{mac})", st == 200 and tls is True,
            "%s %s" % (st, dev))

    # An update over TLS: the image streams through mbedTLS, progress and confirmation too.
    st, fws = api(base, "GET", "/api/v1/firmware")
    fw2 = [f for f in as_list(fws, "firmware") if isinstance(f, dict) and f.get("version") == "2.0.0"]
    st, dep = api(base, "POST", "/api/v1/deployments",
                  {"firmware_id": fw2[0].get("id") if fw2 else None, "devices": [TLS_MAC]})
    rc, ev, out, err = run_device(state, base, "--ca", ca_path, "--until", "confirmed", "--max-polls", "200",
                                  mac=TLS_MAC) if st == 201 else NOT_ATTEMPTED
    dl = re.search(r"^download url=(\S+) status=(\d+) ", out, re.M)
    c.check("CA configured: an update to 2.0.0 downloads over https://, reports and confirms",
            rc == 0 and dl is not None and dl.group(1).startswith("https://") and dl.group(2) == "200"
            and named(ev, "update_done") and all(u.startswith("https://") for _, u, _ in requests_of(out))
            and not [e for e in named(ev, "progress") if e["status"] not in ("200", "204")],
            "%s %s" % (st, dep) + tail(out + err))

    # (b) A wrong CA: the handshake fails, the device says so, the server sees nothing.
    wrong = wrong_ca(work)
    if c.check("a wrong CA made with openssl", wrong is not None, "openssl req failed"):
        rc, ev, out, err = run_device(os.path.join(work, "wrong-ca-device"), base, "--image", images["1.0.0"],
                                      "--ca", wrong, "--token", "wrong-ca-token-must-not-arrive",
                                      "--until", "checkins:2", "--max-polls", TLS_POLLS, mac=WRONG_MAC)
        checkins = named(ev, "checkin")
        c.check("wrong CA: every check-in fails in the TLS handshake and the device logs why",
                rc == 0 and len(checkins) == 2 and all(int(e["status"]) < 0 for e in checkins)
                and "TLS handshake" in err and "not trusted" in err
                and not any(u.startswith("http://") for _, u, _ in requests_of(out)), tail(out + err))
        st, body = api(base, "GET", "/api/v1/devices/" + WRONG_MAC)
        c.check("wrong CA: the server saw no check-in from that device (404)", st == 404, "%s %s" % (st, body))

    # (d) Trust on first use from an mDNS-style answer (tls=1 ca=<sha256>).
    state = os.path.join(work, "tofu-device")
    rc, ev, out, err = run_device(state, base, "--image", images["1.0.0"], "--mdns-txt", "tls=1 ca=%s" % fp,
                                  "--mdns-host", "otafleet-it.local", "--until", "enrolled", "--max-polls", TLS_POLLS,
                                  mac=TOFU_MAC)
    reqs = requests_of(out)
    line = "trusting otafleet CA %s on first use (advertised over mDNS by otafleet-it.local)" % colon(fp)
    stored = os.path.join(state, "nvs", "ca_pem")
    c.check("TOFU: the CA fetched without the token, matching mDNS ca=, is trusted and logged",
            rc == 0 and line in err and named(ev, "ca", status="1", text=colon(fp))
            and any(u.endswith("/api/v1/tls/ca.pem") and not tok for _, u, tok in reqs), tail(out + err))
    c.check("TOFU: the CA is stored in NVS (ca_pem) as the server's DATA_DIR/tls/ca.pem",
            os.path.exists(stored) and ca_sha256(stored) == fp)
    c.check("TOFU: then the device enrols over https:// only",
            named(ev, "enrolled") and all(u.startswith("https://") for _, u, _ in reqs
                                          if not u.endswith("/tls/ca.pem")), tail(out))
    rc, ev, out, err = run_device(state, base, "--until", "checkins:1", "--max-polls", TLS_POLLS, mac=TOFU_MAC)
    st, tls, dev = device_tls(base, TOFU_MAC)
    c.check("TOFU: after a restart the stored CA is used (https:// check-in, server shows tls: true)",
            rc == 0 and named(ev, "checkin", status="200") and "tls/ca.pem" not in out
            and all(u.startswith("https://") for _, u, _ in requests_of(out)) and tls is True,
            tail(out + err) + " %s %s" % (st, dev))

    bad_fp = "0" * 64
    state = os.path.join(work, "tofu-bad-device")
    rc, ev, out, err = run_device(state, base, "--image", images["1.0.0"], "--mdns-txt", "tls=1 ca=%s" % bad_fp,
                                  "--token", "tofu-token-must-not-leak", "--until", "ca-refused",
                                  "--max-polls", TLS_POLLS, mac=TOFU_BAD_MAC)
    reqs = requests_of(out)
    c.check("TOFU mismatch: the CA is refused with a reason, not stored, the token sent nowhere",
            rc == 0 and "refusing the CA served by" in err and named(ev, "ca", status="0")
            and not os.path.exists(os.path.join(state, "nvs", "ca_pem"))
            and reqs and not any(tok for _, _, tok in reqs) and not any(m == "post" for m, _, _ in reqs),
            tail(out + err))
    st, body = api(base, "GET", "/api/v1/devices/" + TOFU_BAD_MAC)
    c.check("TOFU mismatch: the server saw no check-in (404)", st == 404, "%s %s" % (st, body))

    # A pin always wins over mDNS.
    rc, ev, out, err = run_device(os.path.join(work, "pin-device"), base, "--image", images["1.0.0"],
                                  "--mdns-txt", "tls=1 ca=%s" % fp, "--pin", colon(bad_fp), "--until", "ca-refused",
                                  "--max-polls", TLS_POLLS, mac=PIN_MAC)
    c.check("a pinned fingerprint wins over mDNS ca=: the (other) CA is refused, nothing posted",
            rc == 0 and "pin wins" in err and not any(m == "post" for m, _, _ in requests_of(out)), tail(out + err))


def require_scenario(c, binary, work, images):
    """(c) A `--tls require` server: the device given its CA works."""
    proc, base = start_server(binary, work, name="require", data="data-require", extra=["--tls", "require"])
    try:
        if not c.check("second server with --tls require started", base is not None,
                       tail(open(os.path.join(work, "require.out"), errors="replace").read()
                            + open(os.path.join(work, "require.err"), errors="replace").read())):
            return
        ca_path = os.path.join(work, "data-require", "tls", "ca.pem")
        rc, ev, out, err = run_device(os.path.join(work, "require-device"), base, "--image", images["1.0.0"],
                                      "--ca", ca_path, "--until", "checkins:2", "--max-polls", TLS_POLLS,
                                      mac=REQUIRE_MAC)
        st, tls, dev = device_tls(base, REQUIRE_MAC)
        c.check("--tls require: the device with the server's CA enrols and checks in over https://",
                rc == 0 and named(ev, "enrolled") and len(named(ev, "checkin", status="200")) == 2
                and all(u.startswith("https://") for _, u, _ in requests_of(out)) and tls is True,
                tail(out + err) + " %s %s" % (st, dev))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_images(c, images):
    """Check the generated images with the team's inspect.py, when shared/ is beside the repo."""
    inspect_py = os.path.normpath(os.path.join(FIRMWARE_DIR, "..", "..", "shared", "testdata", "firmware",
                                               "inspect.py"))
    if not os.path.exists(inspect_py):
        print("skip - generated images not cross-checked: %s not found" % inspect_py)
        return
    import importlib.util
    spec = importlib.util.spec_from_file_location("esp_inspect", inspect_py)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for version, path in images.items():
        info = mod.inspect(path)
        c.check("inspect.py sees %s as a valid ESP32 app image" % os.path.basename(path),
                info.get("kind", "").startswith("APP image with esp_app_desc_t") and info.get("checksum_ok")
                and info.get("sha256_appended_ok") and info.get("app_desc", {}).get("version") == version,
                str({k: info.get(k) for k in ("kind", "checksum_ok", "sha256_appended_ok")}))


def main():
    c = Checks()
    binary = os.environ.get("OTAFLEET_BIN", "../target/debug/otafleet")
    if not os.path.isabs(binary):
        binary = os.path.normpath(os.path.join(FIRMWARE_DIR, binary))
    if not os.path.exists(binary):
        c.check("otafleet server binary present", False,
                "%s does not exist. Build it at the repository root with `cargo build -p otafleet-cli`, "
                "or point OTAFLEET_BIN at a server binary." % binary)
        print("%d passed, %d failed" % (c.passed, c.failed))
        return 1
    if not os.path.exists(HOSTDEVICE):
        c.check("build/hostdevice present", False, "run `make -C firmware` first")
        print("%d passed, %d failed" % (c.passed, c.failed))
        return 1
    work = tempfile.mkdtemp(prefix="otafleet-fw-it-")
    images = {}
    for v in ("1.0.0", "2.0.0", "3.0.0"):
        images[v] = os.path.join(work, "hostdevice-%s.bin" % v)
        with open(images[v], "wb") as f:
            f.write(mkimage.build(v, "otafleet-hostdevice", 0, 40000, "it"))
    check_images(c, images)
    proc, base = start_server(binary, work)
    try:
        if c.check("server started and printed its ready line", base is not None,
                   tail(open(os.path.join(work, "server.out"), errors="replace").read()
                        + open(os.path.join(work, "server.err"), errors="replace").read())):
            scenario(c, base, work, images)
            mgmt_scenario(c, base, work, images)
            tls_scenario(c, base, work, images, os.path.join(work, "data", "tls", "ca.pem"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    require_scenario(c, binary, work, images)
    if c.failed:
        print("(work files kept in %s: server.out, server.err, device/)" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
