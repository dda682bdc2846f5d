//! Helpers for the sim's LAN tests: the real `otafleet` binary (this crate's tests cannot name
//! another package's binary through `CARGO_BIN_EXE_*`, so it is taken from `OTAFLEET_BIN` or built
//! with the cargo that runs the test), `otafleet serve` in namespace A with output lines that can
//! be awaited with a deadline, `otafleet discover` in namespace B, and a whole `otafleet-sim` run
//! in namespace B. Every wait is for a condition, up to a deadline.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns;

pub const TOKEN: &str = "sim-mdns-test-token";
pub const SECRET: &str = "sim-mdns-test-legacy-secret";
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The `otafleet` binary: `$OTAFLEET_BIN` (as the firmware and UI tests take it), else
/// `cargo build -p otafleet-cli --bin otafleet` in this test's profile, which does nothing once it
/// is built (a workspace build or test run has built it already).
pub fn otafleet() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("OTAFLEET_BIN") {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "OTAFLEET_BIN={} is not a file",
                bin.display()
            );
            return bin;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--locked",
            "-p",
            "otafleet-cli",
            "--bin",
            "otafleet",
        ])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit());
        // target/<profile dir>/deps/<this test>: build in the same profile.
        let exe = std::env::current_exe().expect("test binary path");
        match exe
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .and_then(|p| p.to_str())
        {
            Some("debug") | None => {}
            Some(profile) => {
                cmd.args(["--profile", profile]);
            }
        }
        let out = cmd.output().expect("run cargo build for otafleet");
        assert!(
            out.status.success(),
            "cargo build -p otafleet-cli --bin otafleet failed (or set OTAFLEET_BIN)"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "otafleet")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo named the otafleet executable")
    })
}

/// A child process, killed when dropped; its stdout and stderr lines arrive on one channel.
pub struct Proc {
    pub child: Child,
    lines: Receiver<String>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let (tx, lines) = channel();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [out, err] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Proc { child, lines }
    }

    /// For each of `preds`, the first line it accepts, within the deadline. One pass over the
    /// lines for all of them: stdout and stderr are read by two threads, so lines of the two
    /// streams can arrive in either order.
    pub fn wait_lines(&self, what: &str, preds: &[&dyn Fn(&str) -> bool]) -> Vec<String> {
        let end = Instant::now() + DEADLINE;
        let mut found: Vec<Option<String>> = vec![None; preds.len()];
        while found.iter().any(Option::is_none) {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    for (f, pred) in found.iter_mut().zip(preds) {
                        if f.is_none() && pred(&l) {
                            *f = Some(l.clone());
                        }
                    }
                }
                Err(_) => panic!("waited {DEADLINE:?} for {what}; it never came"),
            }
        }
        found.into_iter().flatten().collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `otafleet serve` with mDNS on, advertised as `name`, inside namespace A; returns it and its
/// port once it says it advertises.
pub fn serve(lan: &netns::Lan, data: &Path, name: &str) -> (Proc, u16) {
    let mut cmd = lan.cmd(&lan.a, otafleet());
    cmd.args([
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--admin-token",
        TOKEN,
        "--legacy-device-secret",
        SECRET,
        "--mdns-name",
        name,
    ])
    .arg("--data-dir")
    .arg(data)
    .env("RUST_LOG", "info");
    let p = Proc::spawn(cmd);
    let lines = p.wait_lines(
        "the listening line and the server's word that it advertises over mDNS",
        &[&|l| l.starts_with("otafleet listening on"), &|l| {
            l.contains("advertising over mDNS")
        }],
    );
    let port = lines[0].rsplit(':').next().unwrap().parse().expect("port");
    (p, port)
}

/// Poll `otafleet discover` in namespace B until every one of `names` answers there.
pub fn discover_until_seen(lan: &netns::Lan, names: &[&str]) {
    let end = Instant::now() + DEADLINE;
    loop {
        let out = lan
            .cmd(&lan.b, otafleet())
            .args(["discover", "--json", "--seconds", "1"])
            .output()
            .expect("otafleet discover");
        assert!(out.status.success(), "otafleet discover failed: {out:?}");
        let seen: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        if names.iter().all(|n| {
            seen.iter()
                .any(|s| s["kind"] == "server" && s["instance"] == *n)
        }) {
            return;
        }
        assert!(
            Instant::now() < end,
            "waited {DEADLINE:?} for servers {names:?} to answer in namespace B; seen: {seen:#?}"
        );
    }
}

/// What an `otafleet-sim` run printed and how it ended.
pub struct SimRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl SimRun {
    /// The run's output, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The stdout line that starts with `prefix`.
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.lines().find(|l| l.starts_with(prefix))
    }
}

/// `otafleet-sim ARGS` inside namespace B, to its end (it bounds itself with --mdns-timeout and
/// --timeout; the test's own deadline only guards against a hang).
pub fn sim(lan: &netns::Lan, args: &[&str]) -> SimRun {
    let mut child = lan
        .cmd(&lan.b, env!("CARGO_BIN_EXE_otafleet-sim"))
        .args(args)
        .env_remove("OTAFLEET_SIM_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn otafleet-sim");
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let end = Instant::now() + 2 * DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for otafleet-sim") {
            break status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "otafleet-sim still running after {:?}; stdout so far:\n{}",
                2 * DEADLINE,
                out.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    SimRun {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The flags every fleet run of these tests uses: small and quick, but a realistic reboot (see
/// `tests/fleet.rs`: a stock client back within a few ms can poll before the server has recorded
/// the end of its download).
pub const QUICK: &[&str] = &[
    "--admin-token",
    TOKEN,
    "--legacy-device-secret",
    SECRET,
    "--interval",
    "0.2",
    "--reboot-ms",
    "300",
    "--image-size",
    "65536",
    "--timeout",
    "60",
    "--no-progress",
];
