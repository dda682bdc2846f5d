//! Staged rollouts (issue 17) with `otafleet-sim` against the real `otafleet serve` (TLS on, its
//! embedded MQTT broker, the legacy device API on; mDNS off, everything on 127.0.0.1):
//!
//! - 200 devices of every protocol (native, Arduino, ESP8266, esp32FOTA, legacy, ESP Admin),
//!   each family's image deployed as a rollout of three waves (up to 10 %, up to 40 %, the rest),
//!   with failed boots injected into half of wave 2's devices (`--failed-boots-wave 2`, each
//!   failing only its first boot). Each rollout pauses at the failed attempt that crosses its
//!   error limit — the pause is audited at most 2 s after that attempt failed (here in the same
//!   transaction) — and no device of wave 3 is ever offered the image while it is paused.
//!   Resumed with retry (again while devices picked for a failed boot meet the image only after
//!   a resume and pause it anew), each finishes: every device runs its new image, the simulator
//!   saw no unexpected failure, and the server's records agree.
//! - Native devices whose new image crash-loops (`--crash-loop`) count as failed: done, but
//!   their uptime went back during the soak time.
//! - A rollout stopped while its wave 2 downloads (native, Arduino, ESP Admin devices on a slow
//!   link): the server cuts every download, no device flashes part of an image, each ends on a
//!   complete one (old or new), and the simulator's devices and the server's records agree.
//!
//! Every wait is for a condition, up to [`DEADLINE`]; nothing asserts on speed.
//!
//! The binary: `$OTAFLEET_BIN`, else `cargo build -p otafleet-cli --bin otafleet` in this test's
//! profile; without one the test says SKIPPED, except under `CI=true`, where that is a failure.

#[path = "support/bin.rs"]
mod bin_support;
#[path = "support/serve.rs"]
mod serve_support;
use bin_support::otafleet;
use serve_support::Serve;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clap::Parser;
use otafleet_sim::{Args, Config};
use serde_json::{json, Value};

const TOKEN: &str = "sim-rollout-test-admin";
const SECRET: &str = "sim-rollout-legacy-secret";

/// The longest wait for any condition.
const DEADLINE: Duration = Duration::from_secs(240);
const POLL: Duration = Duration::from_millis(100);

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    /// The live rollouts (deployments with a plan, not stopped).
    async fn rollouts(&self) -> Vec<Value> {
        self.get("/api/v1/deployments")
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["plan"].is_object() && d["status"] != "stopped")
            .cloned()
            .collect()
    }

    /// Poll until `cond` gives something, up to [`DEADLINE`].
    async fn until<T>(&self, what: &str, cond: impl AsyncFn(&Api) -> Option<T>) -> T {
        match self.try_until(cond).await {
            Some(t) => t,
            None => panic!("waited {DEADLINE:?} for {what}"),
        }
    }

    /// Poll until `cond` gives something, up to [`DEADLINE`]; `None` when it never did.
    async fn try_until<T>(&self, cond: impl AsyncFn(&Api) -> Option<T>) -> Option<T> {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(t) = cond(self).await {
                return Some(t);
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn config(base: &str, devices: usize, mix: &str, extra: &[&str]) -> Config {
    let devices = devices.to_string();
    let mut argv = vec![
        "otafleet-sim",
        "--server",
        base,
        "--admin-token",
        TOKEN,
        "--legacy-device-secret",
        SECRET,
        "--forever",
        "--devices",
        &devices,
        "--protocols",
        mix,
        "--interval",
        "0.5",
        "--reboot-ms",
        "50",
        "--esp-admin-connect-wait-ms",
        "100",
        "--esp-admin-reset-ms",
        "200",
        "--image-size",
        "32768",
        "--timeout",
        "240",
        "--no-progress",
        "--seed",
        "17",
    ];
    argv.extend_from_slice(extra);
    Config::from_args(Args::parse_from(argv)).expect("valid arguments")
}

/// Seconds since the Unix epoch of a stored time (`2026-12-06T23:40:08.123Z`, UTC).
fn secs(t: &str) -> f64 {
    let n = |r: std::ops::Range<usize>| -> i64 {
        t.get(r)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a stored time: {t}"))
    };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let s = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    s as f64 + n(20..23) as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_of_200_devices_pauses_at_its_error_limit_in_wave_2_and_finishes_after_a_retry() {
    let Some(bin) = otafleet() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let server = Serve::start(
        &bin,
        data.path(),
        TOKEN,
        &["--legacy-device-secret", SECRET],
    );
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let plan = json!({
        "waves": [{"by": "percent", "percent": 10}, {"by": "percent", "percent": 40},
                  {"by": "percent", "percent": 100}],
        "soak_s": 1,
        "success_pct": 100,
        "error_limit": {"percent": 10},
    })
    .to_string();
    let cfg = config(
        &server.base,
        200,
        "native=4,arduino=1,esp8266=1,esp32fota=1,legacy=1,esp-admin=2",
        &[
            "--rollout",
            &plan,
            "--failed-boots",
            "50",
            "--failed-boots-wave",
            "2",
            // The injection is off after each device's first failed boot: a retry finishes.
            "--failed-boot-times",
            "1",
        ],
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim = tokio::spawn(otafleet_sim::run_until(cfg, async {
        let _ = stop_rx.await;
    }));

    // Each family's rollout (ESP32 and ESP8266) pauses by its error limit.
    let paused = api
        .until(
            "every rollout paused by its error limit",
            async |api: &Api| {
                let list = api.rollouts().await;
                (list.len() == 2
                    && list.iter().all(|d| {
                        d["status"] == "paused"
                            && d["pause_reason"]
                                .as_str()
                                .is_some_and(|r| r.starts_with("error limit crossed"))
                    }))
                .then_some(list)
            },
        )
        .await;

    let audit = api.get("/api/v1/audit?action=rollout_paused").await;
    let mut wave3: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for d in &paused {
        let id = d["id"].as_i64().unwrap();
        assert_eq!(d["wave"], 2, "paused in wave 2: {d}");
        assert_eq!(d["pause_kind"], "error_limit", "paused by itself: {d}");
        let detail = api.get(&format!("/api/v1/deployments/{id}")).await;
        let waves = detail["rollout"]["waves"].as_array().unwrap().clone();
        let members = |w: usize| -> Vec<Value> { waves[w]["devices"].as_array().unwrap().clone() };
        // The failure that crossed the limit: the first failed attempt after which the failed
        // devices of waves 1–2 exceed 10 % of those that can take the image.
        let counted = members(0)
            .iter()
            .chain(members(1).iter())
            .filter(|m| m["state"] != "skipped")
            .count();
        let mut failures: Vec<f64> = Vec::new();
        for m in members(1) {
            let mac = m["mac"].as_str().unwrap();
            let history = api.get(&format!("/api/v1/devices/{mac}/updates")).await;
            failures.extend(
                history
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|u| u["deployment_id"] == id && u["state"] == "failed")
                    .filter_map(|u| u["finished_at"].as_str().map(secs)),
            );
        }
        failures.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let k = counted * 10 / 100 + 1;
        assert!(
            failures.len() >= k,
            "rollout {id}: {} failures, the limit is crossed at {k} of {counted}",
            failures.len()
        );
        let crossed = failures[k - 1];
        let row = audit
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["target"] == format!("deployment {id}"))
            .unwrap_or_else(|| panic!("no rollout_paused audit row for {id}: {audit}"));
        let paused_at = secs(row["at"].as_str().unwrap());
        println!(
            "rollout {id}: limit crossed at failure {k} of {counted} devices; paused {:.3} s after it",
            paused_at - crossed
        );
        assert!(
            paused_at - crossed <= 2.0 && paused_at >= crossed - 0.001,
            "rollout {id}: paused {:.3} s after the limit was crossed",
            paused_at - crossed
        );
        wave3.insert(
            id,
            members(2)
                .iter()
                .map(|m| m["mac"].as_str().unwrap().to_string())
                .collect(),
        );
    }

    // While paused, no device of wave 3 was offered the image: no attempt of these rollouts.
    let no_attempt_in_wave_3 = async || {
        for (id, macs) in &wave3 {
            for mac in macs {
                let history = api.get(&format!("/api/v1/devices/{mac}/updates")).await;
                let offered = history
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u["deployment_id"] == *id);
                assert!(
                    !offered,
                    "{mac} of wave 3 of rollout {id} was offered the image"
                );
            }
        }
    };
    no_attempt_in_wave_3().await;
    // A little later, still none (the devices kept checking in meanwhile).
    let seen = api.get("/api/v1/devices").await;
    let later = |d: &Value| d["last_seen"].as_str().map(secs).unwrap_or(0.0);
    let before: f64 = seen
        .as_array()
        .unwrap()
        .iter()
        .map(later)
        .fold(0.0, f64::max);
    api.until("every device checked in again", async |api: &Api| {
        let now = api.get("/api/v1/devices").await;
        let min = now
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["protocol"] != "esp-admin" && d["protocol"] != "esp32fota")
            .map(later)
            .fold(f64::INFINITY, f64::min);
        (min > before).then_some(())
    })
    .await;
    no_attempt_in_wave_3().await;

    // Resume with retry: every rollout finishes, every device on its new image. A device picked
    // for a failed boot that was not offered the image before the pause fails its first boot
    // after the resume, and pauses its rollout again: resumed again, until every picked device
    // had its one failed boot (the injection is then off) and each rollout completes.
    let mut resumes = 0;
    let completed = loop {
        for d in api.rollouts().await {
            if d["status"] == "paused" {
                let id = d["id"].as_i64().unwrap();
                let r = api
                    .post(
                        &format!("/api/v1/deployments/{id}/resume"),
                        json!({"retry": true}),
                    )
                    .await;
                assert_eq!(r["deployment"]["status"], "active", "{r}");
                resumes += 1;
            }
        }
        assert!(resumes <= 40, "resumed {resumes} times and it still pauses");
        let state = api
            .try_until(async |api: &Api| {
                let list = api.rollouts().await;
                if list.len() == 2 && list.iter().all(|d| d["status"] == "completed") {
                    return Some(true);
                }
                list.iter()
                    .any(|d| d["status"] == "paused")
                    .then_some(false)
            })
            .await;
        match state {
            Some(true) => break Some(()),
            Some(false) => continue,
            None => break None,
        }
    };
    println!("resumed {resumes} times in all");
    if completed.is_none() {
        // Say where each rollout stands and which devices hold it up.
        let mut lines = Vec::new();
        for d in api.rollouts().await {
            let id = d["id"].as_i64().unwrap();
            lines.push(format!(
                "rollout {id}: {} wave {} tally {} {}",
                d["status"], d["wave"], d["tally"], d["pause_reason"]
            ));
            let detail = api.get(&format!("/api/v1/deployments/{id}")).await;
            for v in detail["devices"].as_array().unwrap() {
                if v["verdict"]["kind"] != "already_running" {
                    lines.push(format!(
                        "  {} {} {} — {}",
                        v["mac"], v["protocol"], v["verdict"], v["reason"]
                    ));
                }
            }
        }
        panic!(
            "waited {DEADLINE:?} for every rollout completed:\n{}",
            lines.join("\n")
        );
    }

    stop_tx.send(()).unwrap();
    let summary = sim.await.unwrap().expect("the run");
    println!("{summary}");
    assert_eq!(summary.devices, 200);
    assert_eq!(summary.errors(), 0, "{summary}");
    assert!(summary.success(), "{summary}");
    assert!(summary.expected_failed_boots > 0, "{summary}");
    let check = summary
        .server_check
        .as_ref()
        .expect("the server's records read");
    assert!(check.mismatches.is_empty(), "{summary}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_new_image_crash_loops_counts_as_failed() {
    let Some(bin) = otafleet() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let server = Serve::start_with(&bin, data.path(), TOKEN, &["--mqtt", "off"], None);
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    // One wave, a soak time long enough to see a restart, an error limit that never pauses.
    let plan = json!({
        "waves": [{"by": "percent", "percent": 100}],
        "soak_s": 6,
        "error_limit": {"devices": 10},
    })
    .to_string();
    let cfg = config(
        &server.base,
        10,
        "native=1",
        &["--rollout", &plan, "--crash-loop", "20"],
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim = tokio::spawn(otafleet_sim::run_until(cfg, async {
        let _ = stop_rx.await;
    }));
    let wave = api
        .until("every device decided", async |api: &Api| {
            let list = api.rollouts().await;
            let id = list.first()?["id"].as_i64()?;
            let d = api.get(&format!("/api/v1/deployments/{id}")).await;
            let w = d["rollout"]["waves"][0].clone();
            (w["succeeded"].as_i64()? + w["failed"].as_i64()? == 10).then_some(w)
        })
        .await;
    stop_tx.send(()).unwrap();
    let summary = sim.await.unwrap().expect("the run");
    println!("{summary}");
    let failed: Vec<&Value> = wave["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 2, "20 % of 10 crash-loop: {wave}");
    for m in &failed {
        let why = m["reason"].as_str().unwrap_or_default();
        assert!(why.contains("uptime went back"), "{m}");
    }
    assert_eq!(wave["succeeded"], 8, "{wave}");
    drop(server);
}

/// Cancel (stop) a rollout while its wave 2 downloads, on native, Arduino and ESP Admin devices
/// reading at a slow link's pace: every download under way is cut by the server (and native and
/// ESP Admin devices are also told `update_abort`), so no device flashes a part of the image;
/// each device ends on a complete image — the new one for wave 1, its old one for wave 2 — and
/// the server's records say the same. No attempt is opened after the stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_rollout_in_wave_2_leaves_every_device_on_a_complete_image() {
    let Some(bin) = otafleet() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let server = Serve::start(&bin, data.path(), TOKEN, &[]);
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let plan = json!({
        "waves": [{"by": "count", "count": 3}, {"by": "percent", "percent": 100}],
        "soak_s": 0,
        "success_pct": 100,
        "error_limit": {"devices": 100},
    })
    .to_string();
    // 15 MiB images read at 1 MiB/s: a download lasts about 15 s and outgrows what the
    // loopback's socket buffers take in (some 4 MiB for a slow reader), so a cut reaches a
    // device before its last byte (a real device's window is a few KiB).
    // Not --forever: the run ends when every device has its first outcome.
    let mut cfg = config(
        &server.base,
        12,
        "native=1,arduino=1,esp-admin=1",
        &[
            "--rollout",
            &plan,
            "--commands",
            "--download-rate",
            "1024",
            "--image-size",
            "15728640",
        ],
    );
    cfg.lifetime = otafleet_sim::config::Lifetime::FirstOutcome;
    let sim = tokio::spawn(otafleet_sim::run(cfg));

    // Wave 2 under way: every one of its 9 devices downloading (at 1 MiB/s), bytes sent.
    let (id, firmware_id) = api
        .until("every device of wave 2 downloading", async |api: &Api| {
            let list = api.rollouts().await;
            let d = list.first()?;
            if d["wave"] != 2 {
                return None;
            }
            let id = d["id"].as_i64()?;
            let devices = api.get("/api/v1/devices").await;
            let downloading = devices
                .as_array()?
                .iter()
                .filter(|dev| {
                    let u = &dev["update"];
                    u["deployment_id"] == id
                        && u["state"] == "downloading"
                        && u["bytes_sent"].as_i64().is_some_and(|b| b > 0)
                })
                .count();
            (downloading == 9).then_some((id, d["firmware_id"].as_i64()?))
        })
        .await;
    let stopped = api
        .post(&format!("/api/v1/deployments/{id}/stop"), json!({}))
        .await;
    assert_eq!(stopped["status"], "stopped", "{stopped}");
    let stopped_at = secs(stopped["ended_at"].as_str().expect("ended_at"));

    // Every device of the rollout has its last word in: no attempt open, and a check-in after
    // its attempt ended (the sim device has seen that nothing is offered any more).
    // The run ends by itself once every device has its first outcome: updated (wave 1), or
    // withdrawn (wave 2: offered, then its download cut or aborted, and offered nothing since).
    let summary = sim.await.unwrap().expect("the run");
    println!("{summary}");
    assert_eq!(summary.failed_unexpected, 0, "{summary}");
    let check = summary
        .server_check
        .as_ref()
        .expect("the server's records read");
    assert!(check.mismatches.is_empty(), "{summary}");
    assert!(summary.success(), "{summary}");
    let devices = api.get("/api/v1/devices").await.as_array().unwrap().clone();
    assert_eq!(devices.len(), 12);

    let fw = api.get(&format!("/api/v1/firmware/{firmware_id}")).await;
    let new_sha = fw["sha256"].as_str().unwrap().to_string();
    let (mut updated, mut kept, mut cut_by_protocol) = (0, 0, BTreeMap::<String, usize>::new());
    for dev in &devices {
        let mac = dev["mac"].as_str().unwrap();
        let history = api.get(&format!("/api/v1/devices/{mac}/updates")).await;
        let attempts: Vec<&Value> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["deployment_id"] == id)
            .collect();
        assert!(
            attempts
                .iter()
                .all(|u| secs(u["created_at"].as_str().unwrap()) <= stopped_at),
            "{mac}: an attempt opened after the stop: {attempts:?}"
        );
        let last = attempts.iter().max_by_key(|u| u["id"].as_i64()).unwrap();
        let runs_new = dev["sha256"].as_str() == Some(new_sha.as_str());
        match last["state"].as_str().unwrap() {
            "done" => {
                assert!(runs_new, "{mac}: done but runs {}", dev["sha256"]);
                updated += 1;
            }
            "cancelled" => {
                assert!(!runs_new, "{mac}: cancelled yet runs the new image");
                assert_eq!(last["failure"], "stopped", "{last}");
                kept += 1;
                if last["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("download was cut"))
                {
                    *cut_by_protocol
                        .entry(dev["protocol"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
            }
            other => panic!("{mac}: its last attempt is {other}: {last}"),
        }
    }
    println!(
        "updated {updated}, kept their image {kept}, downloads cut by protocol {cut_by_protocol:?}"
    );
    assert!(updated >= 3, "wave 1 finished before wave 2 began");
    assert_eq!(kept, 9, "every download of wave 2 was stopped");
    assert_eq!(summary.withdrawn, kept, "{summary}");
    for p in ["native", "arduino", "esp-admin"] {
        assert!(
            cut_by_protocol.get(p).copied().unwrap_or(0) > 0
                || !devices.iter().any(|d| d["protocol"] == p),
            "no {p} download was cut: {cut_by_protocol:?}"
        );
    }
    drop(server);
}
