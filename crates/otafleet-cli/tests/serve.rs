//! The `otafleet` binary as a user runs it: the listening line, --help, clean shutdown on
//! SIGTERM, and a crash in the middle of an upload that leaves no half image behind.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "cli-test-token";

mod support;
use support::{bin, listening_addr, serve_command, signal, Server};

fn start(data_dir: &std::path::Path) -> Server {
    start_with(data_dir, &[])
}

fn start_with(data_dir: &std::path::Path, extra: &[&str]) -> Server {
    Server::spawn(serve_command(data_dir, TOKEN, extra), Stdio::null())
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--admin-token",
        "--no-mdns",
        "--mdns-name",
        "--max-image-size",
        "--allowed-host",
        "--max-connections",
        "--header-timeout",
        "--notify-ca",
        "--blob-url",
        "--blob-cache-mb",
        "--blob-gc-grace",
        "--database-url",
        "--cluster-role",
        "--trusted-proxy",
        "OTAFLEET_ADMIN_TOKEN",
        "8470",
    ] {
        assert!(
            text.contains(flag),
            "serve --help does not mention {flag}:\n{text}"
        );
    }
}

/// In a cluster, watch folders belong to the primary: a worker (the default with
/// --database-url) refuses --watch before it touches anything; --cluster-role needs
/// --database-url, and --trusted-proxy takes networks only.
#[test]
fn cluster_flags_are_checked_when_the_command_line_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(bin())
            .arg("serve")
            .args(["--no-mdns", "--mqtt", "off", "--https-port", "off"])
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must be refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&[
        "--database-url",
        "postgres://otafleet@127.0.0.1:1/none",
        "--watch",
        "/tmp",
    ]);
    assert!(err.contains("--cluster-role primary"), "{err}");
    let err = run(&["--cluster-role", "primary"]);
    assert!(err.contains("--database-url"), "{err}");
    let err = run(&["--trusted-proxy", "nginx.lab"]);
    assert!(err.contains("not a network"), "{err}");
}

/// The help states the offline rule the server applies (and `GET /api/v1/settings` reports as
/// `offline_after_s`), with the figure at the default interval from the same definition.
#[test]
fn help_states_the_offline_rule_the_server_applies() {
    use otafleet_core::settings::{offline_after_s_for, DEFAULT_CHECKIN_INTERVAL_S};
    let out = Command::new(bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    // Help text is wrapped to the terminal: compare with whitespace runs made single spaces.
    let text = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let figure = format!("{} s", offline_after_s_for(DEFAULT_CHECKIN_INTERVAL_S));
    assert!(
        text.contains(&figure),
        "serve --help does not say a device goes offline after {figure}:\n{text}"
    );
    let settings = otafleet_core::Settings::new("/nonexistent");
    assert_eq!(
        settings.offline_after_s(),
        offline_after_s_for(DEFAULT_CHECKIN_INTERVAL_S),
        "the help and the server's rule are one definition"
    );
}

#[tokio::test]
async fn prints_one_listening_line_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let health: serde_json::Value = reqwest::get(format!("{}/api/v1/health", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    signal(&server.child, libc::SIGTERM);
    let status = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "SIGTERM ends otafleet with success: {status:?}"
    );
}

#[tokio::test]
async fn generated_admin_token_is_kept_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-mdns",
            "--https-port",
            "off",
            "--mqtt",
            "off",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("OTAFLEET_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().replace("otafleet listening on ", "");
    let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let c = reqwest::Client::new();
    let ok = c
        .get(format!("{base}/api/v1/devices"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let no = c
        .get(format!("{base}/api/v1/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(no.status(), 401);
    signal(&child, libc::SIGINT);
    assert!(child.wait().unwrap().success());
}

/// Kill -9 the server while an upload is half sent; after a restart nothing of it is listed,
/// downloadable or left on disk.
#[tokio::test]
async fn crash_during_upload_leaves_no_half_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let image = otafleet_image::synth::AppImage::new(otafleet_image::Chip::Esp32)
        .project("blink")
        .version("1.0.0")
        .payload_len(400_000)
        .build();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&image));

    // Send the headers and half the body by hand, so the server is mid-write when it dies.
    let mut sock = TcpStream::connect(&server.addr).unwrap();
    write!(
        sock,
        "POST /api/v1/firmware?filename=blink.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        image.len()
    )
    .unwrap();
    sock.write_all(&image[..image.len() / 2]).unwrap();
    sock.flush().unwrap();
    // Wait until the server has started writing the temporary file: then the crash is mid-write.
    let tmp = dir.path().join("tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let written: u64 = std::fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        if written > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never started writing the upload"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    server.child.wait().unwrap();
    drop(sock);

    let server = start(dir.path());
    let c = reqwest::Client::new();
    let list: serde_json::Value = c
        .get(format!("{}/api/v1/firmware", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "a half upload is listed: {list}"
    );
    let r = c
        .get(format!("{}/api/v1/device/firmware/{sha}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a half upload is downloadable");
    let leftovers = std::fs::read_dir(&tmp).unwrap().count();
    assert_eq!(leftovers, 0, "the restart clears unfinished uploads");
    let blobs = walk(&dir.path().join("blobs"));
    assert_eq!(blobs, 0, "no blob was committed");

    // And the same upload, whole, works after the restart.
    let r = c
        .post(format!(
            "{}/api/v1/firmware?filename=blink.bin",
            server.base
        ))
        .bearer_auth(TOKEN)
        .body(image)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.stop(libc::SIGTERM);
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Run `otafleet serve` expecting it to fail at start: (exit code, the `otafleet:` error lines).
fn failed_start(data_dir: &std::path::Path, listen: &str) -> (Option<i32>, Vec<String>) {
    let out = Command::new(bin())
        .args([
            "serve",
            "--no-mdns",
            "--https-port",
            "off",
            "--mqtt",
            "off",
            "--admin-token",
            TOKEN,
            "--listen",
            listen,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run otafleet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stderr
        .lines()
        .filter(|l| l.starts_with("otafleet:"))
        .map(str::to_owned)
        .collect();
    (out.status.code(), lines)
}

#[test]
fn startup_errors_are_printed_once_with_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    // A data directory that cannot be created (its parent is a file).
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    for (data_dir, listen, cause) in [
        (
            dir.path().join("ok"),
            taken_addr.as_str(),
            "Address already in use",
        ),
        (file.join("sub"), "127.0.0.1:0", "Not a directory"),
    ] {
        assert_one_error_line(&data_dir, listen, cause);
    }
}

/// The SQLite file's own case (with PostgreSQL there is no such file to check).
#[test]
fn sqlite_a_database_that_cannot_be_opened_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    // A database that cannot be opened (a directory in its place): sqlx's error repeated its
    // cause's text three times; the data directory's check now says what is wrong, once.
    let data = dir.path().join("db-is-a-dir");
    std::fs::create_dir_all(data.join("otafleet.db")).unwrap();
    assert_one_error_line(&data, "127.0.0.1:0", "is not a file");
}

fn assert_one_error_line(data_dir: &std::path::Path, listen: &str, cause: &str) {
    let (code, lines) = failed_start(data_dir, listen);
    assert!(
        matches!(code, Some(c) if c != 0),
        "exit code {code:?} for {cause}"
    );
    assert_eq!(lines.len(), 1, "one error line for {cause}: {lines:?}");
    assert_eq!(
        lines[0].matches(cause).count(),
        1,
        "the cause said once: {}",
        lines[0]
    );
}

/// (soft, hard) "Max open files" of a running process, from /proc.
fn open_files_of(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut f = line["Max open files".len()..].split_whitespace();
    (f.next().unwrap().into(), f.next().unwrap().into())
}

#[test]
fn the_open_files_soft_limit_is_raised_to_the_hard_limit_at_start() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve_command(dir.path(), TOKEN, &[]);
    cmd.stderr(Stdio::null());
    // Start it the way a login shell would: soft limit 1024 (below the hard one, if that is
    // higher; else the same).
    unsafe {
        cmd.pre_exec(|| {
            let mut lim: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            lim.rlim_cur = lim.rlim_max.min(1024);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    listening_addr(&mut child);
    let (soft, hard) = open_files_of(child.id());
    signal(&child, libc::SIGTERM);
    child.wait().unwrap();
    assert_eq!(soft, hard, "soft limit raised to the hard limit");
}

#[tokio::test]
async fn running_out_of_descriptors_does_not_lock_devices_out() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    // A cap far above what the descriptors allow: accept itself runs into EMFILE.
    let mut cmd = serve_command(dir.path(), TOKEN, &["--max-connections", "10000"]);
    cmd.stderr(Stdio::null());
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 96,
                rlim_max: 96,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let mut child = Killed(cmd.spawn().unwrap());
    let addr = listening_addr(&mut child.0);
    // More idle connections than the server has descriptors.
    let mut crowd = Vec::new();
    for _ in 0..150 {
        crowd.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let body = serde_json::json!({
        "mac": "24:6F:28:00:EE:01", "chip": "esp32", "project": "blink", "version": "1.0.0",
        "sha256": null, "free_space": 1_310_720, "rssi": -61, "uptime_s": 12
    });
    let checkin = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/device/checkin"))
        .json(&body)
        .send();
    let r = tokio::time::timeout(Duration::from_secs(60), checkin)
        .await
        .expect("no answer to a check-in while descriptors ran out")
        .unwrap();
    assert_eq!(r.status(), 200);
    // Still alive and serving.
    assert!(child.0.try_wait().unwrap().is_none(), "the server exited");
    drop(crowd);
}

/// A child process killed when dropped, also when the test fails half-way.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn header_timeout_and_allowed_host_flags_take_effect() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_with(
        dir.path(),
        &["--header-timeout", "1", "--allowed-host", "ota.lab.example"],
    );
    // A connection that sends nothing is closed by the server (waited for, at most 30 s).
    let mut idle = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buf))
        .await
        .expect("the server never closed a connection that sent nothing");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // The allowed name is answered, another is not.
    let c = reqwest::Client::new();
    for (host, want) in [("ota.lab.example", 200), ("other.example", 421)] {
        let r = c
            .get(format!("{}/api/v1/health", server.base))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "Host {host}");
    }
    signal(&server.child, libc::SIGTERM);
    server.child.wait().unwrap();
}

/// The check-in interval and offline threshold set through the API are kept across a restart
/// and win over `--checkin-interval`, which is back in effect once the admin resets them (null).
#[tokio::test]
async fn admin_checkin_timing_survives_a_restart_and_wins_over_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let settings = |base: &str| {
        let req = c.get(format!("{base}/api/v1/settings")).bearer_auth(TOKEN);
        async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let server = start_with(dir.path(), &["--checkin-interval", "30"]);
    let s = settings(&server.base).await;
    assert_eq!(s["checkin_interval_s"], 30);
    assert_eq!(s["checkin_interval_source"], "start");
    assert_eq!(s["offline_after_s"], 100);
    let r = c
        .patch(format!("{}/api/v1/settings", server.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"checkin_interval_s": 120, "offline_after_s": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop(libc::SIGTERM);

    let server = start_with(dir.path(), &["--checkin-interval", "45"]);
    let s = settings(&server.base).await;
    assert_eq!(s["checkin_interval_s"], 120, "{s}");
    assert_eq!(s["checkin_interval_source"], "admin");
    assert_eq!(s["checkin_interval_default_s"], 45);
    assert_eq!(s["offline_after_s"], 500);
    assert_eq!(s["offline_after_source"], "admin");
    let r = c
        .patch(format!("{}/api/v1/settings", server.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"checkin_interval_s": null, "offline_after_s": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s: serde_json::Value = r.json().await.unwrap();
    assert_eq!(s["checkin_interval_s"], 45, "{s}");
    assert_eq!(s["checkin_interval_source"], "start");
    assert_eq!(s["offline_after_s"], 145);
    assert_eq!(s["offline_after_source"], "start");
    server.stop(libc::SIGTERM);
}

#[test]
fn a_notify_ca_that_is_no_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    for (ca, cause) in [
        (not_pem, "holds no PEM certificate"),
        (dir.path().join("missing.pem"), "cannot read --notify-ca"),
    ] {
        let out = Command::new(bin())
            .args(["serve", "--no-mdns", "--admin-token", TOKEN])
            .args(["--listen", "127.0.0.1:0", "--notify-ca"])
            .arg(&ca)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .output()
            .expect("run otafleet");
        assert_ne!(out.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(cause), "{cause}: {stderr}");
    }
}
