//! Native protocol v1, end to end: enrolment, offer, download, progress on the event stream,
//! confirmation — and the rules about chips, older versions and tokens.

use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;

const MAC: &str = "24:0A:C4:A3:15:3C";

#[tokio::test]
async fn simulated_device_updates_from_checkin_to_confirmed() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", 60_000);
    let v1_sha = sha256_hex(&v1);
    let fw2 = app.upload_ok("blink.bin", v2.clone()).await;
    assert_eq!(fw2["version"], "2.0.0");
    assert_eq!(fw2["project"], "blink");

    // First contact: a token, nothing to install yet.
    let (status, first) = app
        .checkin(None, checkin_body(MAC, "1.0.0", Some(&v1_sha)))
        .await;
    assert_eq!(status, 200, "{first}");
    let token = first["token"]
        .as_str()
        .expect("first check-in hands out a token")
        .to_string();
    assert_eq!(first["device_id"], MAC);
    assert!(first["update"].is_null());
    assert_eq!(first["checkin_interval_s"], 60);
    events
        .wait_for(|n, v| n == "device" && v["device"]["mac"] == MAC)
        .await;

    app.deploy(json!({"firmware_id": fw2["id"]})).await;

    let (status, offer) = app
        .checkin(Some(&token), checkin_body(MAC, "1.0.0", Some(&v1_sha)))
        .await;
    assert_eq!(status, 200, "{offer}");
    assert!(offer["token"].is_null(), "a token is handed out once");
    let update = &offer["update"];
    assert_eq!(update["version"], "2.0.0");
    assert_eq!(update["sha256"], fw2["sha256"]);
    assert_eq!(update["md5"], fw2["md5"]);
    assert_eq!(update["size"], v2.len());
    let update_id = update["id"].as_i64().unwrap();
    events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "offered")
        .await;

    let r = app
        .http
        .get(app.url(update["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], v2.len().to_string().as_str());
    let body = r.bytes().await.unwrap();
    assert_eq!(
        sha256_hex(&body),
        fw2["sha256"].as_str().unwrap(),
        "downloaded bytes match the offer"
    );

    for (state, progress) in [
        ("downloading", 50),
        ("downloading", 100),
        ("verifying", 100),
        ("flashing", 100),
        ("rebooting", 100),
    ] {
        let r = app
            .http
            .post(app.url("/api/v1/device/progress"))
            .bearer_auth(&token)
            .json(&json!({"update_id": update_id, "state": state, "progress": progress}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "progress {state} {progress}");
        events
            .wait_for(|n, v| {
                n == "update"
                    && v["update"]["state"] == state
                    && v["update"]["progress"] == progress
            })
            .await;
    }

    // The device reboots into the new image and checks in: done.
    let (status, after) = app
        .checkin(
            Some(&token),
            checkin_body(MAC, "2.0.0", fw2["sha256"].as_str()),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        after["update"].is_null(),
        "nothing more to install: {after}"
    );
    let done = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "done")
        .await;
    assert_eq!(done["update"]["progress"], 100);
    let device = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(device["version"], "2.0.0");
    assert_eq!(device["update"]["state"], "done");
    assert_eq!(device["online"], true);
    assert_eq!(device["enrolled"], true);
    let history = app
        .get_json(&format!("/api/v1/devices/{MAC}/updates"))
        .await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn never_another_chip_never_older_unless_rollback() {
    let app = TestApp::start().await;
    let s3 = app
        .upload_ok(
            "blink_v3.0.0.bin",
            app_image(Chip::Esp32s3, "blink", "3.0.0", 20_000),
        )
        .await;
    let old = app
        .upload_ok(
            "blink_v0.9.0.bin",
            app_image(Chip::Esp32, "blink", "0.9.0", 20_000),
        )
        .await;
    let (_, first) = app.checkin(None, checkin_body(MAC, "1.0.0", None)).await;
    let token = first["token"].as_str().unwrap().to_string();

    // An esp32s3 image is never offered to an esp32, even when named explicitly... (refused up front)
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/deployments")
        .json(&json!({"firmware_id": s3["id"], "devices": [MAC]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "chip_mismatch");
    // ...and a project-wide deployment for esp32s3 does not cover an esp32.
    app.deploy(json!({"firmware_id": s3["id"]})).await;
    let (_, c) = app
        .checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
        .await;
    assert!(c["update"].is_null(), "wrong chip offered: {c}");

    // An older version is not offered...
    app.deploy(json!({"firmware_id": old["id"], "devices": [MAC]}))
        .await;
    let (_, c) = app
        .checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
        .await;
    assert!(
        c["update"].is_null(),
        "older version offered without rollback: {c}"
    );
    // ...unless the deployment is a rollback.
    app.deploy(json!({"firmware_id": old["id"], "devices": [MAC], "rollback": true}))
        .await;
    let (_, c) = app
        .checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
        .await;
    assert_eq!(c["update"]["version"], "0.9.0");
    app.stop().await;
}

#[tokio::test]
async fn device_that_returns_on_the_old_image_is_failed_and_retried_three_times_at_most() {
    let app = TestApp::start().await;
    let fw = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "2.0.0", 20_000),
        )
        .await;
    let (_, first) = app.checkin(None, checkin_body(MAC, "1.0.0", None)).await;
    let token = first["token"].as_str().unwrap().to_string();
    app.deploy(json!({"firmware_id": fw["id"]})).await;
    for attempt in 1..=3 {
        let (_, c) = app
            .checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
            .await;
        let id = c["update"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("attempt {attempt} offered: {c}"));
        let r = app
            .http
            .post(app.url("/api/v1/device/progress"))
            .bearer_auth(&token)
            .json(&json!({"update_id": id, "state": "rebooting", "progress": 100}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (_, c) = app
        .checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
        .await;
    assert!(
        c["update"].is_null(),
        "a fourth attempt must not be offered: {c}"
    );
    let device = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(device["update"]["state"], "failed");
    assert_eq!(
        device["update"]["error"],
        "device still runs the previous image"
    );
    assert_eq!(
        device["update"]["failure"], "rolled_back",
        "a native device back on its old image after rebooting: {device}"
    );
    app.stop().await;
}

#[tokio::test]
async fn device_reported_failure_is_recorded_with_its_reason() {
    let app = TestApp::start().await;
    let (token, id) = app.enrolled_with_offer(MAC).await;
    let r = app
        .progress(
            &token,
            json!({"update_id": id, "state": "failed", "progress": 40, "error": "sha256 mismatch"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let device = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(device["update"]["state"], "failed");
    assert_eq!(device["update"]["error"], "sha256 mismatch");
    assert_eq!(
        device["update"]["failure"], "device_reported",
        "the kind is the device's report, never read from its words"
    );
    // A finished update takes no more progress.
    let r = app
        .progress(
            &token,
            json!({"update_id": id, "state": "downloading", "progress": 50}),
        )
        .await;
    assert_eq!(r.status(), 409);
    app.stop().await;
}

/// Red-team finding: a late progress report moved an update back from `rebooting`, so the failed
/// boot that followed was never recorded. An update's state only moves forward; a late report is
/// refused with `update_moved_on`, one for a finished update with `update_finished`.
#[tokio::test]
async fn late_progress_report_cannot_move_an_update_back_from_rebooting() {
    let app = TestApp::start().await;
    let (token, id) = app.enrolled_with_offer(MAC).await;
    let report = |state: &'static str, progress: i64| {
        app.progress(
            &token,
            json!({"update_id": id, "state": state, "progress": progress}),
        )
    };
    for (state, progress) in [
        ("downloading", 10),
        ("downloading", 100),
        ("verifying", 100),
        ("flashing", 100),
        ("done", 100),
    ] {
        assert_eq!(report(state, progress).await.status(), 200, "{state}");
    }
    // The late one: a "flashing" that arrives after the device said it reboots.
    let r = report("flashing", 100).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "update_moved_on", "{body}");
    let device = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(device["update"]["state"], "rebooting");
    // Saying "done" again keeps it where it is.
    assert_eq!(report("done", 100).await.status(), 200);
    // The boot fails: the device is back on 1.0.0, and that is seen (a new attempt is offered).
    app.checkin(Some(&token), checkin_body(MAC, "1.0.0", None))
        .await;
    let attempt = |history: Value| {
        history
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .cloned()
            .unwrap()
    };
    let first_attempt = attempt(
        app.get_json(&format!("/api/v1/devices/{MAC}/updates"))
            .await,
    );
    assert_eq!(first_attempt["state"], "failed", "{first_attempt}");
    assert_eq!(
        first_attempt["error"],
        "device still runs the previous image"
    );
    assert_eq!(first_attempt["failure"], "rolled_back", "{first_attempt}");
    // Anything but a repeat of the final state is refused for a finished update.
    let r = report("rebooting", 100).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "update_finished", "{body}");
    assert_eq!(report("failed", 100).await.status(), 200);
    let first_attempt = attempt(
        app.get_json(&format!("/api/v1/devices/{MAC}/updates"))
            .await,
    );
    assert_eq!(first_attempt["state"], "failed", "{first_attempt}");
    app.stop().await;
}
