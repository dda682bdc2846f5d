//! The simulator against the real server, in-process on 127.0.0.1:0 (as the server's own API
//! tests do): native devices through one update with an injected cut download and failed boot;
//! native and Arduino side by side; and a fleet mixing all five protocols (native, Arduino
//! HTTPUpdate, ESP8266httpUpdate, esp32FOTA, legacy) with and without injected failures, checked
//! against the summary and against the server's own records, read from its `Fleet` directly.
//! Behaviour only: the run's timings are small so the test is quick, but nothing asserts on time.

use std::collections::BTreeMap;

use clap::Parser;
use otafleet_core::{Fleet, Settings};
use otafleet_server::AppState;
use otafleet_sim::config::Protocol;
use otafleet_sim::device::Outcome;
use otafleet_sim::{Args, Config, Summary};
use tokio::sync::oneshot;

const ADMIN: &str = "sim-test-admin";
const SECRET: &str = "sim-test-legacy-secret";

struct Server {
    base: String,
    fleet: Fleet,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::new(dir.path());
    // As `otafleet serve --legacy-device-secret` does: the legacy device API is on.
    settings.legacy_device_secret = Some(SECRET.into());
    let fleet = Fleet::open(settings).await.expect("open fleet");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let served = fleet.clone();
    let task = tokio::spawn(async move {
        otafleet_server::serve(listener, AppState::new(served, ADMIN), async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    Server {
        base,
        fleet,
        _dir: dir,
        stop: Some(tx),
        task,
    }
}

impl Server {
    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.task.await;
    }

    /// The server's own account of every simulated device, straight from its database (not
    /// through the simulator's check): protocol, and the state of each attempt, oldest first.
    async fn records(&self, summary: &Summary) -> BTreeMap<String, (String, Vec<String>)> {
        let mut out = BTreeMap::new();
        for r in &summary.results {
            let d = self
                .fleet
                .device(&r.mac)
                .await
                .expect("the server knows it");
            let mut history = self.fleet.device_history(&r.mac).await.unwrap();
            history.sort_by_key(|u| u.id);
            let states = history.into_iter().map(|u| u.state.to_string()).collect();
            out.insert(r.mac.clone(), (d.protocol.unwrap_or_default(), states));
        }
        out
    }
}

fn config(base: &str, extra: &[&str]) -> Config {
    let mut argv = vec![
        "otafleet-sim",
        "--server",
        base,
        "--admin-token",
        ADMIN,
        "--devices",
        "20",
        "--interval",
        "0.05",
        "--reboot-ms",
        "5",
        "--image-size",
        "65536",
        "--no-progress",
        "--seed",
        "7",
        "--legacy-device-secret",
        SECRET,
    ];
    argv.extend_from_slice(extra);
    Config::from_args(Args::parse_from(argv)).expect("valid arguments")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_native_devices_update_with_one_cut_download_and_one_failed_boot() {
    let server = start_server().await;
    let cfg = config(
        &server.base,
        &[
            "--protocols",
            "native=100",
            "--cut-downloads",
            "5",
            "--failed-boots",
            "5",
        ],
    );
    let summary = otafleet_sim::run(cfg).await.expect("the run completes");
    assert!(
        summary.success(),
        "every device should end as asked:\n{summary}"
    );
    assert_eq!(
        summary.updated, 19,
        "all but the failed boot update:\n{summary}"
    );
    assert_eq!(
        summary.failed_injected, 1,
        "5% of 20 boots fail:\n{summary}"
    );
    assert_eq!(summary.failed_unexpected, 0, "{summary}");
    assert_eq!(
        summary.cut_downloads, 1,
        "5% of 20 downloads are cut:\n{summary}"
    );
    let failed = summary
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::BootFailedAsInjected { .. }))
        .count();
    assert_eq!(failed, 1);
    let check = summary
        .server_check
        .as_ref()
        .expect("an admin run reads the server back");
    assert!(
        check.mismatches.is_empty() && check.checked == 20,
        "the server must record 19 done and 1 failed attempt: {check:?}"
    );
    // Every check-in's time to its answer is in the summary (each device checks in at least
    // twice: the offer, then on the image it booted or failed to).
    let lat = &summary.check_latency;
    assert_eq!(lat.len(), 1, "native devices only make check-ins: {lat:?}");
    assert_eq!(lat[0].what, "check-in");
    assert!(lat[0].count >= 40, "{lat:?}");
    assert!(
        lat[0].p50 <= lat[0].p99 && lat[0].p99 <= lat[0].max,
        "{lat:?}"
    );
    assert!(summary.to_string().contains("check latency"), "{summary}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_arduino_devices_update_side_by_side_with_injected_failures() {
    let server = start_server().await;
    let cfg = config(
        &server.base,
        &[
            "--protocols",
            "native=50,arduino=50",
            // A realistic reboot, not a 5 ms one: the server records the end of a stock client's
            // download asynchronously (byte counting), and a device back within a few ms on the
            // old image can poll before that record exists (reported to the lead).
            "--reboot-ms",
            "300",
            "--cut-downloads",
            "10",
            "--failed-boots",
            "10",
        ],
    );
    let summary = otafleet_sim::run(cfg).await.expect("the run completes");
    assert!(
        summary.success(),
        "every device should end as asked:\n{summary}"
    );
    assert_eq!(summary.updated, 18, "{summary}");
    assert_eq!(summary.failed_injected, 2, "{summary}");
    assert_eq!(summary.cut_downloads, 2, "{summary}");
    let check = summary
        .server_check
        .as_ref()
        .expect("an admin run reads the server back");
    assert!(
        check.mismatches.is_empty() && check.checked == 20,
        "the server must record every Arduino device as done or failed too: {check:?}"
    );
    server.stop().await;
}

/// Runs a fleet with all five protocols and checks the summary and the server's records: every
/// device of every protocol updated, except the injected failed boots, which the server must
/// record as failed attempts.
async fn mixed_fleet(devices: u32, cut: u8, failed: u8) {
    let server = start_server().await;
    let n = devices.to_string();
    let (cut_s, failed_s) = (cut.to_string(), failed.to_string());
    let cfg = config(
        &server.base,
        &[
            "--devices",
            &n,
            "--protocols",
            "native=1,arduino=1,esp8266=1,esp32fota=1,legacy=1",
            // A real image size (1 MiB). Whether the server sees a stock client's cut depends
            // on how much of the rest the sockets' buffers take in (on loopback, up to several
            // MB): a cut taken for a complete download is recorded as a failed attempt before
            // the one that succeeds, so only the last attempt's state is asserted below.
            "--image-size",
            "1048576",
            // A realistic reboot: see native_and_arduino_devices_update_side_by_side...
            "--reboot-ms",
            "300",
            "--cut-downloads",
            &cut_s,
            "--failed-boots",
            &failed_s,
        ],
    );
    let summary = otafleet_sim::run(cfg).await.expect("the run completes");
    println!("{summary}");
    assert!(
        summary.success(),
        "every device should end as asked:\n{summary}"
    );
    assert_eq!(summary.failed_unexpected, 0, "{summary}");
    assert_eq!(summary.errors(), 0, "{summary}");
    let per = &summary.per_protocol;
    assert_eq!(
        per.keys().copied().collect::<Vec<_>>(),
        Protocol::ALL,
        "the summary breaks the run down by all five protocols:\n{summary}"
    );
    for (p, t) in per {
        assert_eq!(t.devices, devices as usize / 5, "{p:?}:\n{summary}");
        assert_eq!(t.errors, 0, "{p:?}:\n{summary}");
        assert_eq!(
            t.updated + t.failed_injected,
            t.devices,
            "{p:?}:\n{summary}"
        );
        assert_eq!(t.failed_injected, t.failed_boots_asked, "{p:?}:\n{summary}");
    }
    assert_eq!(
        per[&Protocol::Esp32Fota].failed_boots_asked,
        0,
        "esp32FOTA reports nothing the server could see a failed boot by"
    );
    // Injected failures: percentages of each protocol's devices, rounded up; no failed boots
    // for esp32FOTA.
    let per_protocol = |pct: u8| (devices as usize / 5 * pct as usize).div_ceil(100);
    assert_eq!(
        summary.cut_downloads as usize,
        5 * per_protocol(cut),
        "{summary}"
    );
    for (p, t) in per {
        let asked = if *p == Protocol::Esp32Fota {
            0
        } else {
            per_protocol(failed)
        };
        assert_eq!(t.failed_boots_asked, asked, "{p:?}:\n{summary}");
        assert_eq!(t.cuts_asked, per_protocol(cut), "{p:?}:\n{summary}");
    }
    assert_eq!(
        summary.failed_injected,
        4 * per_protocol(failed),
        "{summary}"
    );
    let check = summary
        .server_check
        .as_ref()
        .expect("an admin run reads back");
    assert!(
        check.mismatches.is_empty() && check.checked == devices as usize,
        "the simulator's own check agrees: {check:?}"
    );

    // The server's records, read from its database.
    let records = server.records(&summary).await;
    for r in &summary.results {
        let (protocol, states) = &records[&r.mac];
        assert_eq!(protocol, r.protocol.name(), "{}: {states:?}", r.mac);
        let last = states.last().map(String::as_str);
        match r.outcome {
            Outcome::Updated { .. } => assert_eq!(
                last,
                Some("done"),
                "{} ({}) updated: {states:?}",
                r.mac,
                r.protocol.name()
            ),
            // It took the image at every offer and failed each boot, until the server's attempt
            // limit stopped the offers: all failed, nothing open, never done.
            Outcome::BootFailedAsInjected { .. } => assert!(
                !states.is_empty() && states.iter().all(|s| s == "failed"),
                "{} ({}) failed its boots: the server must record every attempt failed: {states:?}",
                r.mac,
                r.protocol.name()
            ),
            // Only a stopped deployment withdraws an offer, and none is stopped here.
            Outcome::Withdrawn => panic!("{}: the offer was withdrawn", r.mac),
            Outcome::Unexpected(ref why) => panic!("{}: {why}", r.mac),
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_five_protocols_update_one_fleet() {
    mixed_fleet(20, 0, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_five_protocols_report_injected_failures_as_injected() {
    mixed_fleet(25, 10, 10).await;
}

/// esp32FOTA says nothing about what it runs: the server takes a poll after a complete download
/// as the sign of the new image, but it writes the end of a download after the fact. Devices that
/// come back at once (no reboot delay) can poll before that; they are confirmed at a later poll,
/// which the run waits for, as a real device polls again at its interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esp32fota_devices_back_at_once_are_confirmed_at_a_later_poll() {
    let server = start_server().await;
    let cfg = config(
        &server.base,
        &[
            "--protocols",
            "esp32fota=1",
            "--image-size",
            "1048576",
            "--reboot-ms",
            "0",
        ],
    );
    let summary = otafleet_sim::run(cfg).await.expect("the run completes");
    println!("{summary}");
    assert!(summary.success(), "{summary}");
    assert_eq!(summary.updated, 20, "{summary}");
    let records = server.records(&summary).await;
    for (mac, (protocol, states)) in &records {
        assert_eq!(protocol, "esp32fota");
        assert_eq!(
            states.last().map(String::as_str),
            Some("done"),
            "{mac}: {states:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_default_mix_follows_the_admin_token_and_the_legacy_secret() {
    let parse = |extra: &[&str]| {
        let mut argv = vec!["otafleet-sim", "--server", "http://127.0.0.1:1"];
        argv.extend_from_slice(extra);
        Config::from_args(Args::parse_from(argv))
            .map(|c| c.protocols.keys().copied().collect::<Vec<_>>())
    };
    assert_eq!(
        parse(&["--admin-token", "x", "--legacy-device-secret", "s"]).unwrap(),
        Protocol::ALL
    );
    assert_eq!(
        parse(&["--admin-token", "x"]).unwrap(),
        vec![
            Protocol::Native,
            Protocol::Arduino,
            Protocol::Esp8266,
            Protocol::Esp32Fota
        ]
    );
    assert_eq!(
        parse(&["--wait-for-deployment"]).unwrap(),
        vec![Protocol::Native]
    );
    let err = parse(&["--admin-token", "x", "--protocols", "native=1,legacy=1"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--legacy-device-secret"), "{err}");
    let err = parse(&["--wait-for-deployment", "--protocols", "esp8266=1"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--admin-token"), "{err}");
}

#[test]
fn mdns_flags_are_checked_before_anything_browses() {
    let parse = |argv: &[&str]| {
        let argv = ["otafleet-sim", "--admin-token", "x"].iter().chain(argv);
        Args::try_parse_from(argv)
            .map_err(|e| e.to_string())
            .and_then(|a| Config::from_args(a).map_err(|e| e.to_string()))
    };
    let cfg = parse(&["--mdns", "--mdns-timeout", "2.5", "--mdns-name", "lab"]).unwrap();
    let find = cfg.mdns.expect("the server is still to be found");
    assert_eq!(find.timeout, std::time::Duration::from_millis(2500));
    assert_eq!(find.name.as_deref(), Some("lab"));
    assert!(cfg.server.is_empty(), "no URL before the browse");
    assert!(parse(&["--server", "http://127.0.0.1:1"])
        .unwrap()
        .mdns
        .is_none());
    // Nothing is guessed: the simulator uploads and deploys to whatever it finds.
    let err = parse(&[]).unwrap_err();
    assert!(err.contains("--server URL, or --mdns"), "{err}");
    let err = parse(&["--mdns", "--server", "http://127.0.0.1:1"]).unwrap_err();
    assert!(err.contains("cannot be used with"), "{err}");
    let err = parse(&["--mdns-name", "lab", "--server", "http://127.0.0.1:1"]).unwrap_err();
    assert!(err.contains("--mdns"), "--mdns-name needs --mdns: {err}");
    let err = parse(&["--mdns", "--mdns-timeout", "0"]).unwrap_err();
    assert!(err.contains("--mdns-timeout"), "{err}");
}
