//! Helpers for the LAN tests: child processes whose output lines can be awaited with a deadline,
//! `otafleet serve` in namespace A, python-zeroconf in namespace B, and admin API reads (with curl
//! inside A, since the server is not reachable from the test's own namespace).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::netns;

pub const TOKEN: &str = "mdns-test-token";
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A child process, killed when dropped; its stdout lines arrive on a channel.
pub struct Proc {
    pub child: Child,
    lines: Receiver<String>,
    stdin: Option<ChildStdin>,
}

impl Proc {
    pub fn spawn(mut cmd: std::process::Command) -> Proc {
        cmd.stdout(Stdio::piped()).stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Proc {
            child,
            lines,
            stdin,
        }
    }

    /// The first line that `pred` accepts, within the deadline.
    pub fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => {}
                Err(_) => panic!("waited {DEADLINE:?} for {what}; it never came"),
            }
        }
    }

    pub fn say(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{line}").unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `otafleet serve` inside namespace A; returns it and its port.
pub fn serve(lan: &netns::Lan, data: &std::path::Path, name: &str) -> (Proc, u16) {
    let mut cmd = lan.cmd(&lan.a, env!("CARGO_BIN_EXE_otafleet"));
    cmd.args([
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--admin-token",
        TOKEN,
        "--mdns-name",
        name,
    ])
    .arg("--data-dir")
    .arg(data)
    .stderr(Stdio::null());
    let p = Proc::spawn(cmd);
    let line = p.wait_line("the listening line", |l| {
        l.starts_with("otafleet listening on")
    });
    let port = line.rsplit(':').next().unwrap().parse().expect("port");
    (p, port)
}

/// The CA fingerprint `serve` printed on its HTTPS line, as mDNS TXT `ca` carries it (lower-case
/// hex, no colons).
pub fn printed_ca(p: &Proc) -> String {
    let line = p.wait_line("the HTTPS line", |l| {
        l.starts_with("otafleet serving HTTPS") && l.contains("CA SHA-256 ")
    });
    let fp = line
        .split("CA SHA-256 ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    fp.replace(':', "").to_ascii_lowercase()
}

/// python-zeroconf inside namespace B.
pub fn peer(lan: &netns::Lan, args: &[&str]) -> Proc {
    let mut cmd = lan.cmd(&lan.b, netns::zeroconf_python());
    cmd.arg(netns::peer_script()).args(args);
    Proc::spawn(cmd)
}

pub fn devices_spec(lan: &netns::Lan) -> String {
    json!([
        {"type": "_arduino._tcp.local.", "name": "bench-relay", "host": "bench-relay.local.",
         "ip": lan.ip_b, "port": 3232,
         "txt": {"board": "esp32", "tcp_check": "no", "ssh_upload": "no", "auth_upload": "no"}},
        {"type": "_arduino._tcp.local.", "name": "esp32-246f28a1b2c3", "host": "esp32-246f28a1b2c3.local.",
         "ip": lan.ip_b, "port": 3232, "txt": {"board": "esp32s3"}},
        {"type": "_esphomelib._tcp.local.", "name": "kitchen", "host": "kitchen.local.",
         "ip": lan.ip_b, "port": 6053,
         "txt": {"friendly_name": "Kitchen", "version": "2024.6.0", "mac": "240ac4a3153c",
                 "platform": "ESP32", "board": "esp32dev", "network": "wifi"}}
    ])
    .to_string()
}

/// GET an admin API path from inside namespace A (the server is not reachable from here).
pub fn api(lan: &netns::Lan, port: u16, path: &str) -> Value {
    let out = lan
        .cmd(&lan.a, "curl")
        .args(["-sf", "-H", &format!("Authorization: Bearer {TOKEN}")])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {path} failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Poll GET /api/v1/devices until `pred` holds; returns that list.
pub fn devices_until(
    lan: &netns::Lan,
    port: u16,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let end = Instant::now() + DEADLINE;
    loop {
        let list = api(lan, port, "/api/v1/devices")
            .as_array()
            .unwrap()
            .clone();
        if pred(&list) {
            return list;
        }
        assert!(
            Instant::now() < end,
            "waited {DEADLINE:?} for {what}; devices: {list:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn find<'a>(list: &'a [Value], field: &str, value: &str) -> Option<&'a Value> {
    list.iter().find(|d| d[field] == value)
}
