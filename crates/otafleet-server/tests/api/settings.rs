//! The check-in timing the admin changes at run time (`PATCH /api/v1/settings`): the next
//! check-in answer carries the new interval (a remembered quiet answer included), the offline
//! threshold decides a device's online flag at once, invalid values change nothing, and only the
//! admin may change them. Kept across a restart: crates/otafleet-cli/tests/serve.rs.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{checkin_body, TestApp};

const MAC: &str = "24:0A:C4:00:16:01";

async fn patch(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .admin(Method::PATCH, "/api/v1/settings")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn online(app: &TestApp) -> bool {
    let devices = app.get_json("/api/v1/devices").await;
    let d = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["mac"] == MAC)
        .expect("the device is listed")
        .clone();
    d["online"].as_bool().unwrap()
}

#[tokio::test]
async fn a_new_interval_is_in_the_very_next_checkin_answer() {
    let app = TestApp::start().await;
    let (_, first) = app.checkin(None, checkin_body(MAC, "1.0.0", None)).await;
    let token = first["token"].as_str().unwrap().to_string();
    assert_eq!(first["checkin_interval_s"], 60);
    // The same report again: answered from memory from now on.
    for _ in 0..2 {
        let (status, quiet) = app
            .checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
            .await;
        assert_eq!(status, 200, "{quiet}");
        assert_eq!(quiet["checkin_interval_s"], 60);
    }
    let s = app.get_json("/api/v1/settings").await;
    assert_eq!(s["checkin_interval_source"], "start");
    assert_eq!(s["checkin_interval_default_s"], 60);

    let (status, s) = patch(&app, json!({"checkin_interval_s": 15})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["checkin_interval_s"], 15);
    assert_eq!(s["checkin_interval_source"], "admin");
    assert_eq!(s["offline_after_s"], 55, "3 × 15 + 10");
    assert_eq!(s["offline_after_source"], "start");
    for _ in 0..2 {
        let (_, next) = app
            .checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
            .await;
        assert_eq!(next["checkin_interval_s"], 15, "{next}");
    }
    // Back to the start default.
    let (status, s) = patch(&app, json!({"checkin_interval_s": null})).await;
    assert_eq!(status, 200);
    assert_eq!(s["checkin_interval_s"], 60);
    assert_eq!(s["checkin_interval_source"], "start");
    let (_, next) = app
        .checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
        .await;
    assert_eq!(next["checkin_interval_s"], 60);
    app.stop().await;
}

/// Start interval 1 s (the flag allows it) so the smallest override, 2 s, ages a device out in
/// a few seconds; a large override brings it back at once.
#[tokio::test]
async fn the_offline_threshold_decides_the_online_flag_at_once() {
    let app = TestApp::start_with(|s| s.checkin_interval_s = 1).await;
    let (status, _) = app.checkin(None, checkin_body(MAC, "1.0.0", None)).await;
    assert_eq!(status, 200);
    assert!(online(&app).await, "checked in just now");
    let (status, s) = patch(&app, json!({"offline_after_s": 2})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["offline_after_s"], 2);
    assert_eq!(s["offline_after_source"], "admin");
    let deadline = Instant::now() + Duration::from_secs(20);
    while online(&app).await {
        assert!(
            Instant::now() < deadline,
            "still online 20 s after its check-in"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = patch(&app, json!({"offline_after_s": 3600})).await;
    assert_eq!(status, 200);
    assert!(
        online(&app).await,
        "within an hour: online again, no restart"
    );
    let (status, s) = patch(&app, json!({"offline_after_s": null})).await;
    assert_eq!(status, 200);
    assert_eq!(s["offline_after_s"], 13, "3 × 1 + 10");
    assert_eq!(s["offline_after_source"], "start");
    app.stop().await;
}

#[tokio::test]
async fn invalid_timing_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    let (status, s) = patch(&app, json!({"offline_after_s": 300})).await;
    assert_eq!(status, 200, "{s}");
    let before = app.get_json("/api/v1/settings").await;
    for (body, code) in [
        (json!({"checkin_interval_s": 5}), "invalid_checkin_interval"),
        (
            json!({"checkin_interval_s": 86_401}),
            "invalid_checkin_interval",
        ),
        (
            json!({"checkin_interval_s": -60}),
            "invalid_checkin_interval",
        ),
        (json!({"offline_after_s": 60}), "invalid_offline_after"),
        (json!({"offline_after_s": 0}), "invalid_offline_after"),
        // The interval would pass the admin's threshold: refused as a whole, open enrolment too.
        (
            json!({"checkin_interval_s": 300, "open_enrolment": false}),
            "invalid_offline_after",
        ),
    ] {
        let (status, e) = patch(&app, body.clone()).await;
        assert_eq!(status, 422, "{body} → {e}");
        assert_eq!(e["error"]["code"], code, "{body} → {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("seconds")
                || e["error"]["message"].as_str().unwrap().contains("greater"),
            "an actionable message: {e}"
        );
        assert_eq!(app.get_json("/api/v1/settings").await, before, "{body}");
    }
    let r = app
        .admin(Method::PATCH, "/api/v1/settings")
        .json(&json!({"checkin_interval_s": "fast"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(app.get_json("/api/v1/settings").await, before);
    app.stop().await;
}

#[tokio::test]
async fn only_the_admin_changes_the_timing() {
    let app = TestApp::start().await;
    let (_, first) = app.checkin(None, checkin_body(MAC, "1.0.0", None)).await;
    let device_token = first["token"].as_str().unwrap().to_string();
    let before = app.get_json("/api/v1/settings").await;
    let body = json!({"checkin_interval_s": 30});
    let none = app
        .http
        .patch(app.url("/api/v1/settings"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let device = app
        .http
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&device_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(device.status(), 401);
    assert_eq!(app.get_json("/api/v1/settings").await, before);
    app.stop().await;
}
