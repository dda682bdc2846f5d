//! The simulator against the real server, in-process on 127.0.0.1:0 (as the server's own API
//! tests do): 20 native devices through one update, with one injected cut download and one
//! injected failed boot, which the server must record as a failed attempt. Behaviour only: the
//! run's timings are small so the test is quick, but nothing asserts on time.

use clap::Parser;
use otafleet_core::{Fleet, Settings};
use otafleet_server::AppState;
use otafleet_sim::config::Protocol;
use otafleet_sim::device::Outcome;
use otafleet_sim::{Args, Config};
use tokio::sync::oneshot;

const ADMIN: &str = "sim-test-admin";

struct Server {
    base: String,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = Fleet::open(Settings::new(dir.path()))
        .await
        .expect("open fleet");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        otafleet_server::serve(listener, AppState::new(fleet, ADMIN), async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    Server {
        base,
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
    ];
    argv.extend_from_slice(extra);
    Config::from_args(Args::parse_from(argv)).expect("valid arguments")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_native_devices_update_with_one_cut_download_and_one_failed_boot() {
    let server = start_server().await;
    let cfg = config(
        &server.base,
        &["--cut-downloads", "5", "--failed-boots", "5"],
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
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::BootFailedAsInjected { .. }))
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

#[tokio::test]
async fn protocols_the_server_cannot_speak_yet_are_refused_not_faked() {
    let err = Config::from_args(Args::parse_from([
        "otafleet-sim",
        "--server",
        "http://127.0.0.1:1",
        "--admin-token",
        "x",
        "--protocols",
        "native=60,esp32fota=40",
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("esp32fota") && err.contains("not simulated yet"),
        "{err}"
    );
    let cfg = config("http://127.0.0.1:1", &["--protocols", "native=1"]);
    assert_eq!(
        cfg.protocols.keys().copied().collect::<Vec<_>>(),
        vec![Protocol::Native]
    );
}

#[tokio::test]
async fn mdns_discovery_says_it_is_not_available_yet() {
    let err = Config::from_args(Args::parse_from([
        "otafleet-sim",
        "--mdns",
        "--admin-token",
        "x",
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("not available yet"), "{err}");
}
