//! `otafleet-sim --forever` survives a server restart in the middle of a wave (issue 12 part 6):
//! the real `otafleet serve` (on a fixed free port of 127.0.0.1, mDNS off, a temporary data
//! directory) is stopped while the fleet of all five protocols is updating, stays down for
//! [`DOWNTIME`], and is started again on the same port and data directory. The devices must ride
//! the outage out as real ones do (back off, resume or restart their downloads), the run must end
//! with no unexpected failure, every device on the new image, and the server's records agreeing.
//!
//! Two ways to stop it: SIGTERM (a clean stop: running requests finish) and SIGKILL (everything
//! cut at once). Every wait is for a condition, up to [`DEADLINE`], except the outage itself.
//!
//! The binary: `$OTAFLEET_BIN` (scripts/test sets it), else `cargo build -p otafleet-cli --bin
//! otafleet` in this test's profile (nothing to do once it is built). When neither gives a binary
//! the test says SKIPPED, except under `CI=true`, where that is a failure.

#[path = "support/bin.rs"]
mod bin_support;
use bin_support::otafleet;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use otafleet_sim::config::Protocol;
use otafleet_sim::device::Outcome;
use otafleet_sim::{Args, Config, Summary};
use serde_json::Value;

const TOKEN: &str = "sim-restart-test-admin";
const SECRET: &str = "sim-restart-test-legacy-secret";
const DEVICES: usize = 40;

/// How long the server stays down: the point of the test. Well past the shared client's quick
/// retries (about 1.5 s), which is all a device had before.
const DOWNTIME: Duration = Duration::from_secs(5);

/// The longest wait for any condition (server up, the wave under way, every device done).
const DEADLINE: Duration = Duration::from_secs(120);

/// How often the server's records are read while waiting for a condition.
const POLL: Duration = Duration::from_millis(50);

/// A port of 127.0.0.1 nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `otafleet serve` on a fixed port and data directory; killed when dropped.
struct Serve {
    child: Child,
}

impl Serve {
    fn start(bin: &Path, data: &Path, port: u16) -> Serve {
        let mut child = Command::new(bin)
            .args(["serve", "--no-mdns", "--admin-token", TOKEN])
            .args(["--https-port", "off", "--mqtt", "off"])
            .args(["--legacy-device-secret", SECRET])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start otafleet serve");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let want = format!("otafleet listening on http://127.0.0.1:{port}");
        let end = Instant::now() + DEADLINE;
        loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with(&want) => break,
                Ok(_) => {}
                Err(_) => {
                    let status = child.try_wait();
                    panic!("otafleet serve never said \"{want}\" (exit: {status:?})");
                }
            }
        }
        Serve { child }
    }

    /// Stop it with `signal` (SIGTERM: it must exit cleanly) and wait for the process to end.
    fn stop(mut self, how: Stop) {
        match how {
            Stop::Term => {
                let status = Command::new("kill")
                    .args(["-TERM", &self.child.id().to_string()])
                    .status()
                    .expect("run kill");
                assert!(status.success(), "kill -TERM");
                let exit = self.child.wait().unwrap();
                assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
            }
            Stop::Kill => {
                self.child.kill().unwrap();
                self.child.wait().unwrap();
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    Term,
    Kill,
}

/// The admin API, as the test reads the server's records.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn devices(&self) -> Option<Vec<Value>> {
        let r = self
            .http
            .get(format!("{}/api/v1/devices", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok()?;
        match r.json::<Value>().await.ok()? {
            Value::Array(list) => Some(list),
            _ => None,
        }
    }

    /// Read the device list until `cond` returns something, up to [`DEADLINE`]; else what the
    /// server said last, one line per device.
    async fn wait_for<T>(
        &self,
        what: &str,
        cond: impl Fn(&[Value]) -> Option<T>,
    ) -> Result<T, String> {
        let end = Instant::now() + DEADLINE;
        let mut last = Vec::new();
        while Instant::now() < end {
            if let Some(list) = self.devices().await {
                if let Some(t) = cond(&list) {
                    return Ok(t);
                }
                last = list;
            }
            tokio::time::sleep(POLL).await;
        }
        let lines: Vec<String> = last
            .iter()
            .map(|d| {
                format!(
                    "  {} {} runs {} / latest update {} {}",
                    d["mac"],
                    d["protocol"],
                    d["version"],
                    d["update"]["version"],
                    state(d)
                )
            })
            .collect();
        Err(format!(
            "waited {DEADLINE:?} for {what}; the server's {} devices:\n{}",
            last.len(),
            lines.join("\n")
        ))
    }
}

/// The latest update's state of a listed device ("" when it has none).
fn state(d: &Value) -> &str {
    d["update"]["state"].as_str().unwrap_or("")
}

fn sim_config(base: &str) -> Config {
    let argv = [
        "otafleet-sim",
        "--server",
        base,
        "--admin-token",
        TOKEN,
        "--legacy-device-secret",
        SECRET,
        "--forever",
        "--devices",
        "40",
        "--protocols",
        "native=1,arduino=1,esp8266=1,esp32fota=1,legacy=1",
        "--interval",
        "1",
        "--reboot-ms",
        "500",
        "--image-size",
        "262144",
        "--no-progress",
        "--seed",
        "12",
    ];
    Config::from_args(Args::parse_from(argv)).expect("valid arguments")
}

async fn restart_in_the_middle_of_a_wave(how: Stop) {
    let Some(bin) = otafleet() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Serve::start(&bin, data.path(), port);
    let api = Api {
        http: reqwest::Client::new(),
        base: base.clone(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim = tokio::spawn(otafleet_sim::run_until(sim_config(&base), async {
        let _ = stop_rx.await;
    }));

    // The wave is under way: a quarter of the fleet has been offered the new image, some
    // devices already run it, and at least a quarter has not finished yet.
    let (offered, done) = api
        .wait_for("the wave under way", |list| {
            let offered = list.iter().filter(|d| !d["update"].is_null()).count();
            let done = list.iter().filter(|d| state(d) == "done").count();
            (list.len() == DEVICES
                && offered >= DEVICES / 4
                && done >= 1
                && DEVICES - done >= DEVICES / 4)
                .then_some((offered, done))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("stopping the server ({how:?}): {offered} devices offered the image, {done} done");
    server.stop(how);
    tokio::time::sleep(DOWNTIME).await;
    let server = Serve::start(&bin, data.path(), port);
    eprintln!("the server is back on port {port}");

    // Every device on a new image, as the server sees it.
    let records = api
        .wait_for("every device done on the new image", |list| {
            (list.len() == DEVICES
                && list
                    .iter()
                    .all(|d| state(d) == "done" && d["version"] != "1.0.0"))
            .then(|| list.to_vec())
        })
        .await;
    let _ = stop_tx.send(());
    let summary: Summary = sim
        .await
        .expect("the sim does not panic")
        .expect("the run completes");
    println!("{summary}");
    let records = records.unwrap_or_else(|e| panic!("{e}\nthe sim's summary:\n{summary}"));

    assert!(
        summary.success(),
        "the fleet rode the restart out:\n{summary}"
    );
    assert_eq!(summary.failed_unexpected, 0, "{summary}");
    assert_eq!(summary.errors(), 0, "{summary}");
    assert_eq!(summary.updated, DEVICES, "{summary}");
    assert!(
        summary.backoffs > 0,
        "the devices met the server away and backed off:\n{summary}"
    );
    assert_eq!(
        summary.per_protocol.keys().copied().collect::<Vec<_>>(),
        Protocol::ALL,
        "{summary}"
    );
    let check = summary
        .server_check
        .as_ref()
        .expect("an admin run reads back");
    assert!(
        check.mismatches.is_empty() && check.checked == DEVICES && check.in_flight == 0,
        "the server's records agree with every device: {check:?}"
    );

    // Each device runs its family's new image, and the server's own list says so.
    let mut images = BTreeSet::new();
    for r in &summary.results {
        assert!(
            matches!(r.outcome, Outcome::Updated { .. }),
            "{} ({}): {:?}",
            r.mac,
            r.protocol.name(),
            r.outcome
        );
        assert_ne!(r.runs.version, "1.0.0", "{}: still on the old image", r.mac);
        assert_eq!(r.later.error_count, 0, "{}: {:?}", r.mac, r.later.errors);
        images.insert(r.runs.sha256.clone());
        let d = records
            .iter()
            .find(|d| d["mac"].as_str() == Some(r.mac.as_str()))
            .unwrap_or_else(|| panic!("the server lists {}", r.mac));
        assert_eq!(d["protocol"], r.protocol.name(), "{}", r.mac);
        assert_eq!(
            d["update"]["sha256"].as_str(),
            Some(r.runs.sha256.as_str()),
            "{}: the server's latest update installs what the device runs",
            r.mac
        );
        if r.protocol == Protocol::Legacy {
            assert_eq!(d["version"].as_str(), Some(r.runs.version.as_str()));
        } else {
            assert_eq!(d["sha256"].as_str(), Some(r.runs.sha256.as_str()));
        }
    }
    assert_eq!(
        images.len(),
        2,
        "one new image per chip family (ESP32, ESP8266): {images:?}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_rides_out_a_clean_server_restart_in_the_middle_of_a_wave() {
    restart_in_the_middle_of_a_wave(Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_rides_out_a_killed_server_in_the_middle_of_a_wave() {
    restart_in_the_middle_of_a_wave(Stop::Kill).await;
}
