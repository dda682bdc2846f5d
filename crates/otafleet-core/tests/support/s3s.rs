//! A real S3 server for tests: `s3s-fs` (SigV4 checked, `x-amz-checksum-sha256` verified), on a
//! free loopback port over a temporary folder, killed when dropped. Installed by
//! `scripts/setup-deps` (`cargo install s3s-fs --version 0.14.1 --features binary --locked`).
//!
//! When it is not installed the S3 cases print `SKIPPED` and pass — unless `CI=true`, where they
//! fail: CI must never pass them silently. Shared by the core's and the CLI's tests.

#![allow(dead_code)] // each test file uses a part of it

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "otafleet-test-key";
pub const SECRET_KEY: &str = "otafleet-test-secret";
pub const BUCKET: &str = "firmware";

/// A running `s3s-fs` with one bucket, [`BUCKET`].
pub struct S3Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl S3Server {
    /// `s3://firmware?endpoint=http://127.0.0.1:PORT&region=us-east-1`
    pub fn url(&self) -> String {
        format!(
            "s3://{BUCKET}?endpoint=http://{}&region=us-east-1",
            self.addr
        )
    }

    /// The folder `s3s-fs` keeps the bucket's objects in (`<key>` as a path).
    pub fn bucket_dir(&self) -> PathBuf {
        self.dir.path().join(BUCKET)
    }

    /// Where the object of blob `sha256` is on the server's disk.
    pub fn object_file(&self, sha256: &str) -> PathBuf {
        self.bucket_dir()
            .join("sha256")
            .join(&sha256[..2])
            .join(&sha256[2..])
    }

    /// Every object file in the bucket (what any client would list), hidden metadata skipped.
    pub fn object_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.bucket_dir(), &mut out);
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `s3s-fs` binary: `$S3S_FS` when set (and only it), else on `PATH`, else in
/// `~/.cargo/bin`.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("S3S_FS") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home_bin = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin"));
    std::env::split_paths(&path)
        .chain(home_bin)
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
}

/// Start `s3s-fs`, or `None` (having printed `SKIPPED: <what>`) when it is not installed and this
/// is not CI. Panics under `CI=true` without it.
pub fn start(what: &str) -> Option<S3Server> {
    let Some(bin) = binary() else {
        let why = "s3s-fs is not installed (scripts/setup-deps installs it: cargo install s3s-fs \
                   --version 0.14.1 --features binary --locked)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{what}: {why}; CI must run the S3 cases");
        }
        eprintln!("SKIPPED: {what} against S3: {why}");
        return None;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join(BUCKET)).expect("bucket folder");
    // A free port: bound and released; s3s-fs takes it a moment later.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    let mut server = S3Server { child, dir, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("s3s-fs exited before answering: {status}");
        }
        assert!(Instant::now() < deadline, "s3s-fs did not answer on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

/// The credentials `S3Blobs` reads from the environment, set once for the whole test binary
/// (every test uses the same pair, so concurrent tests agree).
pub fn set_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        std::env::remove_var("AWS_SESSION_TOKEN");
    });
}
