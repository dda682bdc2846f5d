#!/usr/bin/env python3
"""Hold many idle TCP connections to an otafleet server, then time a device check-in and an
admin request on fresh connections. Used by bench/idle-connections.sh (BENCHMARKS.md).

Prints one line per figure; exits 1 if the check-in failed or took 1 s or more.
"""
import argparse
import json
import resource
import selectors
import socket
import sys
import time
import urllib.parse


def http(host, port, method, path, headers, body=b"", timeout=10.0):
    """One request on a new connection; returns (status, seconds until the whole answer)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
    for k, v in headers.items():
        head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    t0 = time.perf_counter()
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(head.encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    took = time.perf_counter() - t0
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, took


def open_all(host, port, n, batch=500):
    """Open n connections, `batch` non-blocking connects at a time; returns (sockets, failures)."""
    socks, failed = [], 0
    while len(socks) + failed < n:
        pending = {}
        sel = selectors.DefaultSelector()
        for _ in range(min(batch, n - len(socks) - failed)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            sel.register(s, selectors.EVENT_WRITE)
            pending[s.fileno()] = s
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = pending.pop(key.fd)
                sel.unregister(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    socks.append(s)
                else:
                    s.close()
                    failed += 1
        for s in pending.values():
            s.close()
            failed += 1
        sel.close()
    return socks, failed


def still_open(socks):
    """How many of the held sockets the server has not closed (non-blocking peek)."""
    n = 0
    for s in socks:
        try:
            s.setblocking(False)
            if s.recv(1, socket.MSG_PEEK) == b"":
                continue  # closed by the server
        except BlockingIOError:
            pass  # nothing to read: still open
        except OSError:
            continue  # reset
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--token", required=True)
    args = ap.parse_args()
    t0 = 0.0
    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port

    # The client needs its own descriptors for the crowd.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, args.idle + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    t0 = time.perf_counter()
    socks, refused = open_all(host, port, args.idle)
    opened = time.perf_counter() - t0
    print(f"idle connections: {len(socks)} opened ({refused} refused) in {opened:.2f} s; "
          f"{still_open(socks)} still open at the check-in")

    body = json.dumps({"mac": "24:6F:28:BE:EF:01", "chip": "esp32", "project": "blink",
                       "version": "1.0.0", "sha256": None, "free_space": 1310720,
                       "rssi": -60, "uptime_s": 5}).encode()
    try:
        cs, ct = http(host, port, "POST", "/api/v1/device/checkin",
                      {"Content-Type": "application/json"}, body)
    except OSError as e:
        cs, ct = 0, float("inf")
        print(f"check-in failed: {e}")
    try:
        ast, at = http(host, port, "GET", "/api/v1/devices",
                       {"Authorization": f"Bearer {args.token}"})
    except OSError as e:
        ast, at = 0, float("inf")
        print(f"admin GET failed: {e}")
    print(f"check-in: HTTP {cs} in {ct * 1000:.1f} ms")
    print(f"admin GET /api/v1/devices: HTTP {ast} in {at * 1000:.1f} ms")
    for s in socks:
        s.close()
    ok = cs == 200 and ct < 1.0 and ast == 200
    print("PASS" if ok else "FAIL: the check-in must answer 200 in under 1 s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
