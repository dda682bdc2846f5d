//! Per-device config with the simulator's native devices, against the real server in-process on
//! 127.0.0.1:0 (as `tests/live.rs`): the admin gives the fleet's project variables and one device
//! its own values; each native device sees the new `config_version` at its next check-in, reads
//! its config and confirms it, so the server goes from `pending` to `applied`. Every wait is for
//! a condition, up to [`DEADLINE`].

use std::time::{Duration, Instant};

mod support;

use clap::Parser;
use otafleet_sim::{Args, Config};
use serde_json::{json, Value};
use support::Served;
use tokio::sync::oneshot;

const ADMIN: &str = "sim-config-test-admin";
const DEADLINE: Duration = Duration::from_secs(60);

async fn admin(
    http: &reqwest::Client,
    base: &str,
    m: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http.request(m, format!("{base}{path}")).bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// Read `path` until `cond` holds.
async fn wait(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + DEADLINE;
    loop {
        let v = admin(http, base, reqwest::Method::GET, path, None).await;
        if cond(&v) {
            return v;
        }
        assert!(
            Instant::now() < end,
            "waited {DEADLINE:?} for {what}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_sim_devices_fetch_and_confirm_their_config_pending_then_applied() {
    let served = Served::start(ADMIN).await;
    let base = served.base.clone();

    let cfg = Config::from_args(Args::parse_from([
        "otafleet-sim",
        "--server",
        &base,
        "--admin-token",
        ADMIN,
        "--interval",
        "0.1",
        "--image-size",
        "65536",
        "--no-progress",
        "--seed",
        "15",
        "--forever",
        "--devices",
        "3",
        "--project",
        "cfgsim",
        "--protocols",
        "native=1",
        "--reboot-ms",
        "100",
    ]))
    .unwrap();
    let (stop_sim, sim_rx) = oneshot::channel::<()>();
    let sim = tokio::spawn(otafleet_sim::run_until(cfg, async {
        let _ = sim_rx.await;
    }));
    let http = reqwest::Client::new();
    let devices = wait(
        &http,
        &base,
        "/api/v1/devices",
        "the sim's first wave: three devices updated",
        |v| {
            v.as_array().is_some_and(|a| {
                a.len() == 3
                    && a.iter()
                        .all(|d| d["enrolled"] == true && d["update"]["state"] == "done")
            })
        },
    )
    .await;
    let mac = devices[0]["mac"].as_str().unwrap().to_string();

    admin(
        &http,
        &base,
        reqwest::Method::PATCH,
        "/api/v1/projects/cfgsim",
        Some(json!({
            "variables": [
                {"key": "ssid", "type": "string", "default": "lab"},
                {"key": "interval_s", "type": "int", "default": 60},
                {"key": "pass", "type": "secret"},
            ]
        })),
    )
    .await;
    let changed = admin(
        &http,
        &base,
        reqwest::Method::PATCH,
        &format!("/api/v1/devices/{mac}/config"),
        Some(json!({"values": {"interval_s": 5, "pass": "sim-secret"}})),
    )
    .await;
    assert_eq!(changed["state"], "pending", "{changed}");
    let version = changed["version"].as_i64().unwrap();

    let applied = wait(
        &http,
        &base,
        &format!("/api/v1/devices/{mac}/config"),
        "the device to apply its config",
        |c| c["state"] == "applied",
    )
    .await;
    assert_eq!(applied["applied_version"], version, "{applied}");
    assert_eq!(applied["pending_since"], Value::Null);
    assert_eq!(applied["values"]["interval_s"], 5);
    // The other devices applied their project's defaults too.
    for d in devices.as_array().unwrap() {
        let m = d["mac"].as_str().unwrap();
        wait(
            &http,
            &base,
            &format!("/api/v1/devices/{m}/config"),
            "every device to apply",
            |c| c["state"] == "applied",
        )
        .await;
    }

    let _ = stop_sim.send(());
    let summary = sim.await.unwrap().expect("the run completes");
    assert_eq!(summary.errors(), 0, "{summary}");
    served.stop().await;
}
