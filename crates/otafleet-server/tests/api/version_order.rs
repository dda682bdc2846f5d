//! Version order on the wire (docs/versions.md): the red team's two cases, where a non-semver
//! order offered a downgrade and withheld an upgrade.

use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;

/// Enrols a device running `version` of project blink; returns its token.
async fn enrol(app: &TestApp, mac: &str, version: &str) -> String {
    let (status, first) = app.checkin(None, checkin_body(mac, version, None)).await;
    assert_eq!(status, 200, "{first}");
    first["token"].as_str().expect("a token").to_string()
}

async fn offer(app: &TestApp, mac: &str, token: &str, version: &str) -> Value {
    let (status, answer) = app
        .checkin(Some(token), checkin_body(mac, version, None))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["update"].clone()
}

#[tokio::test]
async fn build_metadata_is_not_a_pre_release_so_no_downgrade_is_offered() {
    let app = TestApp::start().await;
    let built = "24:0A:C4:00:00:01";
    let older = "24:0A:C4:00:00:02";
    let built_token = enrol(&app, built, "1.2.4+build.7").await;
    let older_token = enrol(&app, older, "1.2.4-rc.0").await;
    let rc = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "1.2.4-rc.1", 30_000),
        )
        .await;
    app.deploy(json!({"firmware_id": rc["id"]})).await;

    // 1.2.4+build.7 is the release 1.2.4: its release candidate is older.
    let update = offer(&app, built, &built_token, "1.2.4+build.7").await;
    assert!(update.is_null(), "a downgrade was offered: {update}");
    // The deployment does reach the project's devices: one on an older candidate gets it.
    let update = offer(&app, older, &older_token, "1.2.4-rc.0").await;
    assert_eq!(update["version"], "1.2.4-rc.1", "{update}");
}

#[tokio::test]
async fn numeric_pre_release_identifiers_compare_as_numbers() {
    let app = TestApp::start().await;
    let mac = "24:0A:C4:00:00:03";
    let token = enrol(&app, mac, "1.0.0-rc.9").await;
    let rc10 = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "1.0.0-rc.10", 30_000),
        )
        .await;
    app.deploy(json!({"firmware_id": rc10["id"]})).await;
    let update = offer(&app, mac, &token, "1.0.0-rc.9").await;
    assert_eq!(
        update["version"], "1.0.0-rc.10",
        "rc.10 is newer than rc.9: {update}"
    );
}
