//! Boot reports with the simulator's native devices, against the real server in-process on
//! 127.0.0.1:0 (as `tests/live.rs`): a device whose boots of the new image fail reports `error`
//! "boot of <version> failed, back on <old version>" after each failed boot, and one that updated
//! reports `success` "updated to <version>"; the server stores them, and the summary counts them.

mod support;

use clap::Parser;
use otafleet_sim::{Args, Config};
use serde_json::Value;
use support::Served;

const ADMIN: &str = "sim-reports-test-admin";

async fn reports(http: &reqwest::Client, base: &str, query: &str) -> Vec<Value> {
    let r = http
        .get(format!("{base}/api/v1/reports?{query}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{query}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_boot_is_reported_as_an_error_and_an_update_as_a_success() {
    let served = Served::start(ADMIN).await;
    let base = served.base.clone();

    // Two native devices, one with failed boots (50 % rounded up): the run uploads, deploys and
    // ends when each has its first outcome (updated; its failed boots on record).
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
        "--devices",
        "2",
        "--protocols",
        "native=1",
        "--failed-boots",
        "50",
        "--reboot-ms",
        "50",
        "--timeout",
        "60",
    ]))
    .unwrap();
    let summary = otafleet_sim::run(cfg).await.expect("the run completes");
    assert!(summary.success(), "{summary}");
    assert_eq!(summary.errors(), 0, "{summary}");

    let http = reqwest::Client::new();
    let failed = summary
        .results
        .iter()
        .find(|r| r.failed_boot_injected)
        .expect("one device with failed boots");
    let updated = summary
        .results
        .iter()
        .find(|r| !r.failed_boot_injected)
        .expect("one device that updates");
    assert!(failed.boots_failed > 0, "{summary}");

    // Every failed boot: an error report, stored for that device, naming the image it is back on.
    let errors = reports(&http, &base, &format!("mac={}&type=error", failed.mac)).await;
    assert_eq!(errors.len(), failed.boots_failed, "{errors:#?}");
    let back_on = format!(" failed, back on {}", failed.runs.version);
    for e in &errors {
        let subject = e["subject"].as_str().unwrap();
        assert!(
            subject.starts_with("boot of ") && subject.ends_with(&back_on),
            "{e:#}"
        );
        assert!(
            e["body"].as_str().unwrap().contains(&failed.runs.sha256),
            "the body names the image it rolled back to: {e:#}"
        );
    }
    let all = reports(&http, &base, &format!("mac={}", failed.mac)).await;
    assert_eq!(all.len(), errors.len(), "no success for it: {all:#?}");

    // The device that updated: one success report naming what it runs now.
    let ok = reports(&http, &base, &format!("mac={}", updated.mac)).await;
    assert_eq!(ok.len(), 1, "{ok:#?}");
    assert_eq!(ok[0]["type"], "success");
    assert_eq!(
        ok[0]["subject"],
        format!("updated to {}", updated.runs.version)
    );

    // The summary counts what the server stored.
    assert_eq!(summary.reports_error, errors.len() as u64, "{summary}");
    assert_eq!(summary.reports_success, 1, "{summary}");
    assert!(
        summary
            .to_string()
            .contains("boot reports       1 success, "),
        "{summary}"
    );

    served.stop().await;
}
