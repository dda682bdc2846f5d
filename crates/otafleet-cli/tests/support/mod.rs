//! The `otafleet serve` process as the CLI tests start it: the binary, its command line, the one
//! listening line, and a handle that never outlives a failed test.

#![allow(dead_code)] // each test file uses a part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The binary under test: `$OTAFLEET_BIN` when set (as the firmware, UI and sim tests take it),
/// else the one cargo built for this test.
pub fn bin() -> PathBuf {
    std::env::var_os("OTAFLEET_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_otafleet").into())
}

/// `otafleet serve` on a free loopback port, mDNS off, over `data_dir`, with `extra` flags; its
/// standard output piped (for the listening line).
pub fn serve_command(data_dir: &Path, token: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-mdns",
        "--https-port",
        "off",
        "--mqtt",
        "off",
        "--admin-token",
        token,
    ])
    .args(extra)
    .arg("--data-dir")
    .arg(data_dir)
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    cmd
}

/// Read the one `otafleet listening on http://ADDR` line and return ADDR.
pub fn listening_addr(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("otafleet listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string()
}

pub fn signal(child: &Child, sig: i32) {
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// A running server. Dropped while still running (a test that failed half-way), it is killed.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub addr: String,
}

impl Server {
    /// Start `cmd` (from [`serve_command`]) with its standard error going to `stderr`.
    pub fn spawn(mut cmd: Command, stderr: Stdio) -> Self {
        let mut child = cmd.stderr(stderr).spawn().expect("start otafleet");
        let addr = listening_addr(&mut child);
        Self {
            child,
            base: format!("http://{addr}"),
            addr,
        }
    }

    /// Send `sig` and wait for the process; after SIGTERM it must have stopped cleanly.
    pub fn stop(mut self, sig: i32) {
        signal(&self.child, sig);
        let status = self.child.wait().unwrap();
        if sig == libc::SIGTERM {
            assert!(status.success(), "a clean stop: {status:?}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
