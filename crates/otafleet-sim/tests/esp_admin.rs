//! `otafleet-sim --protocols native=..,esp-admin=..` against the real `otafleet serve` with its
//! embedded MQTT broker and TLS on (`--tls auto`; mDNS off, everything on 127.0.0.1, the broker
//! on a free port): the esp-admin devices are created by the admin, fetch their settings over
//! HTTPS trusting only otafleet's CA, connect to the broker over TLS with the same CA and show
//! online; the run's deployment reaches them as MQTT triggers, and each reports started,
//! downloads, reports succeded, reboots and is `done` on the new image at its next settings
//! call. Then, for every one of the 50 devices: a log session (lines over MQTT), a restart command
//! queued in otafleet that goes out over MQTT (the device comes back on a new connection), a
//! config change the device reports applying, and the error report each device sends at every
//! boot over HTTP and MQTT, kept once. The same day runs on the embedded broker and through a
//! Mosquitto of the test's own with the documented ACLs. Every wait is for a condition, up to
//! [`DEADLINE`].
//!
//! The binary: `$OTAFLEET_BIN`, else `cargo build -p otafleet-cli --bin otafleet` in this test's
//! profile (nothing to do once it is built); without one the test says SKIPPED, except under
//! `CI=true`, where that is a failure.

#[path = "support/bin.rs"]
mod bin_support;
#[path = "support/serve.rs"]
mod serve_support;
use bin_support::otafleet;
use serve_support::Serve;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use otafleet_sim::config::Protocol;
use otafleet_sim::{Args, Config};
use serde_json::{json, Value};

const TOKEN: &str = "sim-esp-admin-test-admin";
const ESP_ADMIN: usize = 50;
const NATIVE: usize = 1;

/// The longest wait for any condition.
const DEADLINE: Duration = Duration::from_secs(180);

/// How often the server's records are read while waiting for a condition.
const POLL: Duration = Duration::from_millis(50);

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok()?;
        r.json::<Value>().await.ok()
    }

    async fn esp_admin_devices(&self) -> Option<Vec<Value>> {
        match self.get("/api/v1/devices").await? {
            Value::Array(list) => Some(
                list.into_iter()
                    .filter(|d| d["mqtt_id"].is_string() || d["protocol"] == "esp-admin")
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Poll until `cond` gives something, up to [`DEADLINE`]; else panic with the last list.
    async fn until<T>(&self, what: &str, cond: impl Fn(&[Value]) -> Option<T>) -> T {
        let end = Instant::now() + DEADLINE;
        let mut last = Vec::new();
        while Instant::now() < end {
            if let Some(list) = self.esp_admin_devices().await {
                if let Some(t) = cond(&list) {
                    return t;
                }
                last = list;
            }
            tokio::time::sleep(POLL).await;
        }
        let lines: Vec<String> = last
            .iter()
            .map(|d| {
                format!(
                    "  {} {} online {} mqtt_connected_at {} runs {} / latest update {} {}",
                    d["mac"],
                    d["protocol"],
                    d["online"],
                    d["mqtt_connected_at"],
                    d["version"],
                    d["update"]["version"],
                    d["update"]["state"]
                )
            })
            .collect();
        panic!(
            "waited {DEADLINE:?} for {what}; the server's {} ESP Admin devices:\n{}",
            last.len(),
            lines.join("\n")
        );
    }
}

fn sim_config(base: &str, extra: &[&str]) -> Config {
    let devices = (ESP_ADMIN + NATIVE).to_string();
    let mix = format!("native={NATIVE},esp-admin={ESP_ADMIN}");
    let mut argv = vec![
        "otafleet-sim",
        "--server",
        base,
        "--admin-token",
        TOKEN,
        "--forever",
        "--devices",
        &devices,
        "--protocols",
        &mix,
        "--interval",
        "0.3",
        "--reboot-ms",
        "50",
        "--esp-admin-connect-wait-ms",
        "100",
        // Long enough that a restart's reconnection is a later second on the server's clock.
        "--esp-admin-reset-ms",
        "1200",
        // Every boot reports an application error, over HTTP and then MQTT, as the SDK does.
        "--esp-admin-error-report",
        "--image-size",
        "65536",
        "--timeout",
        "180",
        "--no-progress",
        "--seed",
        "16",
    ];
    argv.extend_from_slice(extra);
    Config::from_args(Args::parse_from(argv)).expect("valid arguments")
}

fn done_on_its_image(d: &Value) -> bool {
    d["update"]["state"] == "done"
        && d["update"]["sha256"].is_string()
        && d["sha256"] == d["update"]["sha256"]
}

/// The whole day of [`ESP_ADMIN`] ESP Admin devices (and [`NATIVE`] native ones) against a
/// running `otafleet serve` at `base`, whichever broker it uses (`extra`: more simulator flags):
/// an update wave, a log session on every device, a restart of every device, a config change on
/// every device, and the error report each sends at every boot — then the run's summary: no
/// error, every device updated, every device restarted over MQTT, the server's records agree.
async fn a_day_of_esp_admin_devices(base: &str, extra: &[&str]) {
    let api = Api {
        http: reqwest::Client::new(),
        base: base.to_string(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim = tokio::spawn(otafleet_sim::run_until(sim_config(base, extra), async {
        let _ = stop_rx.await;
    }));

    // The admin created them, they connected to the broker and show online.
    api.until("every esp-admin device online over MQTT", |list| {
        (list.len() == ESP_ADMIN
            && list
                .iter()
                .all(|d| d["online"] == true && d["mqtt_connected_at"].is_string()))
        .then_some(())
    })
    .await;

    // The sim deployed once the fleet enrolled: every esp-admin device is done on the image.
    let devices = api
        .until(
            "every esp-admin device done on the deployed image",
            |list| {
                (list.len() == ESP_ADMIN
                    && list
                        .iter()
                        .all(|d| done_on_its_image(d) && d["protocol"] == "esp-admin"))
                .then(|| list.to_vec())
            },
        )
        .await;
    // Their HTTP calls came over HTTPS (the sim trusts only otafleet's CA).
    assert!(
        devices.iter().all(|d| d["tls"] == true),
        "esp-admin devices speak HTTPS: {devices:?}"
    );
    let target = devices[0]["update"]["sha256"].clone();
    assert!(
        devices.iter().all(|d| d["update"]["sha256"] == target),
        "one image for all: {devices:?}"
    );
    let macs: Vec<String> = devices
        .iter()
        .map(|d| d["mac"].as_str().unwrap().to_string())
        .collect();

    // Someone watches every device's logs: otafleet switches each one's `command/log` on over
    // MQTT and its `[sim] …` lines arrive on `logs/info`.
    let mut streams = Vec::new();
    for mac in &macs {
        let stream = api
            .http
            .get(format!("{}/api/v1/devices/{mac}/logs/stream", api.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        streams.push(stream);
    }
    let mut silent: Vec<&String> = macs.iter().collect();
    let end = Instant::now() + DEADLINE;
    while !silent.is_empty() {
        let mut still = Vec::new();
        for mac in silent {
            let logs = api.get(&format!("/api/v1/devices/{mac}/logs")).await;
            // The server keeps `[sim]` as the line's scope.
            if !logs.is_some_and(|l| l.to_string().contains("of a virtual ESP Admin device")) {
                still.push(mac);
            }
        }
        silent = still;
        assert!(
            silent.is_empty() || Instant::now() < end,
            "no log line over MQTT within {DEADLINE:?} from {silent:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    drop(streams);

    // A restart of every device, queued in otafleet in one call, goes out over MQTT; each
    // device drops its session and connects again.
    let before: std::collections::HashMap<String, Value> = api
        .until("every device online after its update", |list| {
            (list.len() == ESP_ADMIN && list.iter().all(|d| d["online"] == true)).then(|| {
                list.iter()
                    .map(|d| {
                        (
                            d["mac"].as_str().unwrap().to_string(),
                            d["mqtt_connected_at"].clone(),
                        )
                    })
                    .collect()
            })
        })
        .await;
    let r = api
        .http
        .post(format!("{}/api/v1/commands", api.base))
        .bearer_auth(TOKEN)
        .json(&json!({"macs": macs, "kind": "restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let queued: Vec<Value> = r.json().await.unwrap();
    assert_eq!(queued.len(), ESP_ADMIN, "{queued:?}");
    assert!(
        queued.iter().all(|q| q["command"].is_object()),
        "every restart queued: {queued:?}"
    );
    api.until("every restarted device back on MQTT", |list| {
        (list.len() == ESP_ADMIN
            && list.iter().all(|d| {
                d["online"] == true
                    && d["mqtt_connected_at"].is_string()
                    && d["mqtt_connected_at"] != before[d["mac"].as_str().unwrap()]
            }))
        .then_some(())
    })
    .await;

    // A config change: the project gets a variable, the admin sets each device's own value; the
    // retained `command/config` reaches each device over MQTT and its application reports it.
    let project = devices[0]["project"].as_str().unwrap().to_string();
    let vars = json!([{"key": "threshold", "type": "int", "default": 40}]);
    let r = api
        .http
        .patch(format!("{}/api/v1/projects/{project}", api.base))
        .bearer_auth(TOKEN)
        .json(&json!({ "variables": vars }))
        .send()
        .await
        .unwrap();
    if r.status() == 404 {
        let r = api
            .http
            .post(format!("{}/api/v1/projects", api.base))
            .bearer_auth(TOKEN)
            .json(&json!({ "name": project, "variables": vars }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    } else {
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
    // Device i gets 100 + i, so a device applying another's value would show.
    let wanted = |i: usize| format!(r#""threshold":"{}""#, 100 + i);
    for (i, mac) in macs.iter().enumerate() {
        let r = api
            .http
            .patch(format!("{}/api/v1/devices/{mac}/config", api.base))
            .bearer_auth(TOKEN)
            .json(&json!({"values": {"threshold": 100 + i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
    let reports = |mac: String| {
        let api = &api;
        async move {
            api.get(&format!("/api/v1/reports?mac={mac}"))
                .await
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
        }
    };
    let mut pending: Vec<usize> = (0..macs.len()).collect();
    let end = Instant::now() + DEADLINE;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for i in pending {
            let applied = reports(macs[i].clone()).await.iter().any(|r| {
                r["subject"] == "config applied"
                    && r["body"].as_str().is_some_and(|b| b.contains(&wanted(i)))
            });
            if !applied {
                still.push(i);
            }
        }
        pending = still;
        assert!(
            pending.is_empty() || Instant::now() < end,
            "no 'config applied' report with its new value within {DEADLINE:?} from {:?}",
            pending.iter().map(|&i| &macs[i]).collect::<Vec<_>>()
        );
        tokio::time::sleep(POLL).await;
    }

    // Error reports: each device reported its injected error at every boot (at least two by
    // now: the update and the restart), over HTTP and then MQTT; otafleet kept each report once
    // (the MQTT copy of one just sent over HTTP is dropped).
    let mut pending: Vec<&String> = macs.iter().collect();
    let end = Instant::now() + DEADLINE;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for mac in pending {
            let errors: Vec<String> = reports(mac.clone())
                .await
                .iter()
                .filter(|r| {
                    r["type"] == "error" && r["subject"] == "sim: injected application error"
                })
                .map(|r| r["body"].as_str().unwrap_or_default().to_string())
                .collect();
            let mut unique = errors.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                errors.len(),
                "{mac}: a report kept twice: {errors:?}"
            );
            if errors.len() < 2 {
                still.push(mac);
            }
        }
        pending = still;
        assert!(
            pending.is_empty() || Instant::now() < end,
            "fewer than two error reports within {DEADLINE:?} from {pending:?}"
        );
        tokio::time::sleep(POLL).await;
    }

    stop_tx.send(()).unwrap();
    let summary = sim.await.unwrap().expect("the run");
    println!("{summary}");
    assert!(summary.success(), "{summary}");
    assert_eq!(summary.errors(), 0, "{summary}");
    let per = &summary.per_protocol;
    let esp = &per[&Protocol::EspAdmin];
    assert_eq!(esp.devices, ESP_ADMIN, "{summary}");
    assert_eq!(esp.updated, ESP_ADMIN, "{summary}");
    assert_eq!(per[&Protocol::Native].updated, NATIVE, "{summary}");
    assert!(summary.mqtt_restarts >= ESP_ADMIN as u64, "{summary}");
    let check = summary
        .server_check
        .as_ref()
        .expect("the server's records read");
    assert!(check.mismatches.is_empty(), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esp_admin_devices_live_a_day_on_the_embedded_broker() {
    let Some(bin) = otafleet() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let server = Serve::start(&bin, data.path(), TOKEN, &[]);
    a_day_of_esp_admin_devices(&server.base, &[]).await;
    drop(server);
}

/// A run of 4 esp-admin devices to their first outcome (`extra`: more flags), checked: every
/// device updated, and the server's records agree.
async fn first_outcome_run(base: &str, seed: &str, extra: &[&str]) -> otafleet_sim::Summary {
    let mut argv = vec![
        "otafleet-sim",
        "--server",
        base,
        "--admin-token",
        TOKEN,
        "--devices",
        "4",
        "--protocols",
        "esp-admin=1",
        "--interval",
        "0.3",
        "--reboot-ms",
        "50",
        "--esp-admin-connect-wait-ms",
        "100",
        "--esp-admin-reset-ms",
        "100",
        "--image-size",
        "65536",
        "--timeout",
        "90",
        "--no-progress",
        "--seed",
        seed,
    ];
    argv.extend_from_slice(extra);
    let cfg = Config::from_args(Args::parse_from(argv)).expect("valid arguments");
    let summary = otafleet_sim::run(cfg).await.expect("the run");
    println!("{summary}");
    assert!(summary.success(), "{summary}");
    assert_eq!(summary.updated, 4, "{summary}");
    let check = summary
        .server_check
        .as_ref()
        .expect("the server's records read");
    assert_eq!(check.checked, 4, "{summary}");
    assert!(check.mismatches.is_empty(), "{summary}");
    summary
}

/// Without `--forever` the run ends at every device's first outcome and checks the server's
/// records against it (each device's attempt, by the `deploymentId` it was given, `done` on the
/// deployed image).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_esp_admin_fleet_run_ends_at_the_first_outcome_with_the_records_agreeing() {
    let Some(bin) = otafleet() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let server = Serve::start(&bin, data.path(), TOKEN, &[]);
    let summary = first_outcome_run(&server.base, "17", &[]).await;
    for r in &summary.results {
        assert!(
            matches!(
                r.outcome,
                otafleet_sim::device::Outcome::Updated {
                    update_id: Some(_),
                    ..
                }
            ),
            "every device was given its attempt's id as the deploymentId: {summary}"
        );
    }
}

/// A Mosquitto of this test's own, as docs/mqtt.md configures it: passwords, the documented
/// pattern ACLs (the repository's file), client id = user name. Killed when dropped.
struct Mosquitto {
    child: Child,
    port: u16,
    passwd: std::path::PathBuf,
}

impl Mosquitto {
    fn start(dir: &Path, otafleet_password: &str) -> Option<Mosquitto> {
        let have = |tool: &str| {
            Command::new("sh")
                .args([
                    "-c",
                    &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
                ])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !have("mosquitto") || !have("mosquitto_passwd") {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "mosquitto is not installed under CI (scripts/setup-deps installs it)"
            );
            eprintln!("SKIPPED: mosquitto is not installed (apt-get install mosquitto)");
            return None;
        }
        let passwd = dir.join("passwd");
        std::fs::write(&passwd, "").unwrap();
        let st = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&passwd)
            .args(["otafleet", otafleet_password])
            .status()
            .unwrap();
        assert!(st.success());
        let acl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/mqtt/mosquitto.acl");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\nuse_username_as_clientid true\npersistence false\n",
                passwd.display(),
                acl.display()
            ),
        )
        .unwrap();
        let bin = if Path::new("/usr/sbin/mosquitto").exists() {
            "/usr/sbin/mosquitto"
        } else {
            "mosquitto"
        };
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let end = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "mosquitto never listened on {port}");
            std::thread::sleep(POLL);
        }
        Some(Mosquitto {
            child,
            port,
            passwd,
        })
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The external-broker mode: otafleet is a client of the user's Mosquitto (passwords and the
/// documented ACLs). The simulator's devices are created by the admin as before; the admin then
/// gives each its broker login (`--esp-admin-created-hook`: `mosquitto_passwd`, then SIGHUP, which
/// makes Mosquitto read its password file again) before any connects. They live the same day as
/// on the embedded broker: update, log session, restart, config change, error reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esp_admin_devices_live_a_day_through_the_users_mosquitto() {
    let Some(bin) = otafleet() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mosq) = Mosquitto::start(dir.path(), "otafleet-secret") else {
        return;
    };
    let url = format!("mqtt://otafleet@127.0.0.1:{}", mosq.port);
    let server = Serve::start_with(
        &bin,
        &dir.path().join("data"),
        TOKEN,
        &["--mqtt", &url],
        Some("otafleet-secret"),
    );
    let hook = format!(
        "while read id key; do mosquitto_passwd -b {} \"$id\" \"$key\" || exit 1; done < \"$1\" && kill -HUP {}",
        mosq.passwd.display(),
        mosq.child.id()
    );
    a_day_of_esp_admin_devices(&server.base, &["--esp-admin-created-hook", &hook]).await;
    drop(server);
}
