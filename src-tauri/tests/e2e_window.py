#!/usr/bin/env python3
"""The real desktop window, end to end, driven over WebDriver.

tauri-driver (with WebKitWebDriver from Debian's webkit2gtk-driver) launches the debug binary in a
display (Xvfb under scripts/test-desktop), with mDNS off, a fresh data directory and a free
loopback port. The test then:

1. reads the connection the shell injected (window.__OTAFLEET__) and checks the token;
2. checks a simulated device in over HTTP (POST /api/v1/device/checkin to the embedded server)
   and waits for it in the device table (data-testid="device-row");
3. imports an app image and a bootloader through `import_paths`, the command behind native drops,
   invoked from the page, and checks the per-file results (accepted / rejected: bootloader);
4. waits for the image in the firmware library (data-testid="firmware-row");
5. drops a second image on the window for real (a GTK drag source + xdotool: an X11 file drop, as
   from a file manager) and waits for it in the library: the shell's native drop handler;
6. saves docs/screenshots/window.png.

Selectors are data-testid attributes only: nav-devices, nav-firmware, device-row, firmware-row.
Environment: OTAFLEET_DESKTOP_BIN, TAURI_DRIVER, SYNTH_BIN override the default paths.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.options import ArgOptions

ROOT = Path(__file__).resolve().parents[2]
APP = Path(os.environ.get("OTAFLEET_DESKTOP_BIN", ROOT / "target/debug/otafleet-desktop"))
DRIVER = Path(os.environ.get("TAURI_DRIVER", ROOT / "target/tools/bin/tauri-driver"))
SYNTH = Path(os.environ.get("SYNTH_BIN", ROOT / "target/debug/examples/synth_bin"))
SHOT = Path(os.environ.get("OTAFLEET_SCREENSHOTS", ROOT / "docs/screenshots")) / "window.png"
TOKEN = "e2e-admin-token"
MAC = "24:6F:28:AA:BB:01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, fn, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # the page may still be loading
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def rows(d, testid):
    return [e.text for e in d.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')]


def checkin(base_url):
    body = json.dumps({
        "mac": MAC, "chip": "esp32s3", "project": "blink", "version": "1.0.0",
        "ip": "192.168.4.23", "rssi": -51,
    }).encode()
    req = urllib.request.Request(f"{base_url}/api/v1/device/checkin", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, f"check-in answered {r.status}"
        return json.load(r)


def main():
    for p, hint in [(APP, "cargo build -p otafleet-desktop"),
                    (DRIVER, "cargo install tauri-driver --version ^2 --locked --root target/tools"),
                    (SYNTH, "cargo build -p otafleet-image --example synth_bin")]:
        if not p.exists():
            sys.exit(f"e2e: missing {p} ({hint})")
    tmp = Path(tempfile.mkdtemp(prefix="otafleet-e2e-"))
    env = dict(os.environ)
    env.update({
        "OTAFLEET_DATA_DIR": str(tmp / "data"),
        "OTAFLEET_LISTEN": "127.0.0.1:0",
        "OTAFLEET_NO_MDNS": "1",
        "OTAFLEET_ADMIN_TOKEN": TOKEN,
        # Window-state and WebKit caches go to the temp dir, not the user's home.
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_DATA_HOME": str(tmp / "xdg-data"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
    })
    port, native_port = free_port(), free_port()
    log = open(tmp / "tauri-driver.log", "w")
    driver = subprocess.Popen([str(DRIVER), "--port", str(port), "--native-port", str(native_port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until("tauri-driver to listen", lambda: port_open(port), timeout=15)
        opts = ArgOptions()
        opts.set_capability("browserName", "wry")
        opts.set_capability("tauri:options", {"application": str(APP)})
        d = webdriver.Remote(f"http://127.0.0.1:{port}", options=opts)
        try:
            run(d, tmp)
        finally:
            d.quit()
    except BaseException:
        log.flush()
        sys.stderr.write(f"--- tauri-driver log ({tmp / 'tauri-driver.log'}):\n")
        sys.stderr.write((tmp / "tauri-driver.log").read_text()[-4000:])
        raise
    finally:
        driver.terminate()
        driver.wait(10)
    print("e2e: window test passed")


def run(d, tmp):
    conn = wait_until("window.__OTAFLEET__", lambda: d.execute_script("return window.__OTAFLEET__ || null"))
    assert conn["token"] == TOKEN, f"the injected token is the server's admin token: {conn}"
    assert conn["baseUrl"].startswith("http://127.0.0.1:"), conn
    print(f"e2e: window open, embedded server at {conn['baseUrl']}")

    reply = checkin(conn["baseUrl"])
    assert reply.get("device_id"), reply
    wait_until("nav-devices", lambda: d.find_element(By.CSS_SELECTOR, '[data-testid="nav-devices"]')).click()
    wait_until(f"a device-row with {MAC}",
               lambda: any(MAC.lower() in t.lower() for t in rows(d, "device-row")))
    print("e2e: the checked-in device is in the table")

    image, boot = tmp / "blink-2.0.0.bin", tmp / "bootloader.bin"
    subprocess.run([str(SYNTH), "app", str(image), "esp32s3", "blink", "2.0.0"], check=True)
    subprocess.run([str(SYNTH), "bootloader", str(boot), "esp32s3"], check=True)
    results = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.__TAURI_INTERNALS__.invoke('import_paths', {paths: arguments[0]})"
        "  .then(done, (e) => done({failed: e}));",
        [str(image), str(boot)])
    assert isinstance(results, list) and len(results) == 2, f"per-file results: {results}"
    ok, bad = results
    assert ok["ok"] is True and ok["created"] is True, ok
    assert (ok["firmware"]["chip"], ok["firmware"]["project"], ok["firmware"]["version"]) == \
        ("esp32s3", "blink", "2.0.0"), ok
    assert bad["ok"] is False and bad["error"]["code"] == "bootloader", bad
    print("e2e: import_paths accepted the app image and rejected the bootloader (code bootloader)")

    d.find_element(By.CSS_SELECTOR, '[data-testid="nav-firmware"]').click()
    wait_until("a firmware-row with blink 2.0.0",
               lambda: any("blink" in t and "2.0.0" in t for t in rows(d, "firmware-row")))
    assert len(rows(d, "firmware-row")) == 1, f"only the app image is in the library: {rows(d, 'firmware-row')}"

    print("e2e: the image is in the firmware library")

    real_drop(d, tmp)

    d.find_element(By.CSS_SELECTOR, '[data-testid="nav-devices"]').click()
    wait_until("the device table again", lambda: rows(d, "device-row"))
    time.sleep(0.5)  # only for the picture: let the row transitions finish; nothing is asserted after
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    assert d.save_screenshot(str(SHOT)), "screenshot"
    print(f"e2e: screenshot saved to {SHOT}")


def real_drop(d, tmp):
    image = tmp / "blink-3.0.0.bin"
    subprocess.run([str(SYNTH), "app", str(image), "esp32s3", "blink", "3.0.0"], check=True)
    source = subprocess.Popen(["/usr/bin/python3", str(ROOT / "src-tauri/tests/drag_source.py"), str(image)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"})
    try:
        assert source.stdout.readline().strip() == "ready", "the drag source window is up"
        # Wait until X reports the source window visible (no fixed pause).
        subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "otafleet-e2e-drag-source"],
                       check=True, timeout=20, stdout=subprocess.DEVNULL)
        # Press on the source button, move in steps onto the otafleet window, release there.
        steps = ["mousemove", "1000", "90", "mousedown", "1"]
        for i in range(1, 11):
            steps += ["sleep", "0.05", "mousemove", str(1000 - 60 * i), str(90 + 21 * i)]
        steps += ["sleep", "0.2", "mousemove", "401", "301", "sleep", "0.2", "mouseup", "1"]
        subprocess.run(["xdotool", *steps], check=True)
        wait_until("the dropped blink 3.0.0 in the firmware library",
                   lambda: any("3.0.0" in t for t in rows(d, "firmware-row")), timeout=20)
        print("e2e: a real X11 file drop on the window imported blink 3.0.0")
    finally:
        source.terminate()
        source.wait(5)


if __name__ == "__main__":
    main()
