//! Hostile input: every case gets a 4xx with a JSON error a person can act on, and changes
//! nothing — no firmware listed, no blob or temp file left, no device created.

use otafleet_image::Chip;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const MAC: &str = "24:0A:C4:A3:15:3C";

/// Asserts an error answer: the status, the code, a message, and that nothing was stored.
async fn refused(
    app: &TestApp,
    what: &str,
    r: reqwest::Response,
    status: u16,
    code: &str,
) -> String {
    assert_eq!(r.status().as_u16(), status, "{what}: wrong status");
    let body: Value = r
        .json()
        .await
        .unwrap_or_else(|_| panic!("{what}: error body is not JSON"));
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.len() > 15,
        "{what}: the message must say what to do: {message:?}"
    );
    let firmware = app.get_json("/api/v1/firmware").await;
    assert_eq!(
        firmware.as_array().unwrap().len(),
        0,
        "{what}: firmware was stored"
    );
    assert_eq!(app.blob_count(), 0, "{what}: a blob was stored");
    assert_eq!(app.tmp_count(), 0, "{what}: a temp file was left behind");
    message
}

async fn raw_upload(app: &TestApp, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    app.admin(Method::POST, "/api/v1/firmware")
        .query(&[("filename", name)])
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn hostile_uploads_are_refused_and_store_nothing() {
    let app = TestApp::start_with(|s| s.max_image_size = 256 * 1024).await;
    let good = app_image(Chip::Esp32, "blink", "1.0.0", 30_000);
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "traversal name",
            "../../etc/passwd.bin",
            good.clone(),
            "invalid_filename",
        ),
        (
            "windows traversal name",
            "..\\..\\boot.bin",
            good.clone(),
            "invalid_filename",
        ),
        ("dot-dot name", "..", good.clone(), "invalid_filename"),
        (
            "control characters in name",
            "a\u{1}b.bin",
            good.clone(),
            "invalid_filename",
        ),
        ("empty file", "empty.bin", vec![], "empty"),
        (
            "garbage",
            "garbage.bin",
            (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "not_esp_image",
        ),
        (
            "bootloader",
            "bootloader.bin",
            synth_bootloader(),
            "bootloader",
        ),
        (
            "partition table",
            "partitions.bin",
            synth_partition_table(),
            "partition_table",
        ),
        (
            "truncated app",
            "blink.bin",
            good[..good.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "checksum mismatch",
            "blink.bin",
            synth_bad_checksum(),
            "checksum_mismatch",
        ),
        (
            "hash mismatch",
            "blink.bin",
            synth_bad_hash(),
            "hash_mismatch",
        ),
        (
            "over the size limit",
            "big.bin",
            app_image(Chip::Esp32, "big", "1.0.0", 300_000),
            "too_large",
        ),
        ("RAM-only app", "ram.bin", synth_ram_only(), "ram_only_app"),
    ];
    for (what, name, bytes, code) in cases {
        let r = raw_upload(&app, name, bytes).await;
        refused(&app, what, r, 422, code).await;
    }
    let r = raw_upload(&app, "factory.bin", synth_merged()).await;
    let msg = refused(&app, "merged flash image", r, 422, "merged_flash_image").await;
    assert!(
        msg.contains("0x10000"),
        "the message says where the app starts: {msg}"
    );

    let r = app
        .admin(Method::POST, "/api/v1/firmware")
        .query(&[("filename", "blink.bin"), ("version", "1 2 3")])
        .body(good.clone())
        .send()
        .await
        .unwrap();
    refused(&app, "bad version override", r, 422, "invalid_version").await;
    let r = app
        .admin(Method::POST, "/api/v1/firmware")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    refused(
        &app,
        "raw upload without a name",
        r,
        400,
        "filename_required",
    )
    .await;
    let form = reqwest::multipart::Form::new().text("project", "blink");
    let r = app
        .admin(Method::POST, "/api/v1/firmware")
        .multipart(form)
        .send()
        .await
        .unwrap();
    refused(&app, "form without a file", r, 400, "file_required").await;

    let r = app
        .http
        .post(app.url("/api/v1/firmware?filename=a.bin"))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    refused(&app, "no admin token", r, 401, "admin_token_required").await;
    let r = app
        .http
        .post(app.url("/api/v1/firmware?filename=a.bin"))
        .bearer_auth("guess")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    refused(&app, "wrong admin token", r, 401, "admin_token_invalid").await;
    let r = app
        .http
        .get(app.url("/api/v1/devices"))
        .header("x-admin-api-key", "guess")
        .send()
        .await
        .unwrap();
    refused(&app, "wrong X-Admin-API-Key", r, 401, "admin_token_invalid").await;
    app.stop().await;
}

async fn device_count(app: &TestApp) -> usize {
    app.get_json("/api/v1/devices")
        .await
        .as_array()
        .unwrap()
        .len()
}

async fn checkin_refused(
    app: &TestApp,
    what: &str,
    token: Option<&str>,
    body: Value,
    status: u16,
    code: &str,
) {
    let before = device_count(app).await;
    let (got, answer) = app.checkin(token, body).await;
    assert_eq!(got, status, "{what}: {answer}");
    assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
    assert_eq!(device_count(app).await, before, "{what}: devices changed");
}

#[tokio::test]
async fn hostile_device_requests_are_refused_and_change_nothing() {
    let app = TestApp::start().await;
    let mut bad_mac = checkin_body(MAC, "1.0.0", None);
    bad_mac["mac"] = json!("24:0A:C4:A3:15:ZZ");
    checkin_refused(&app, "bad MAC", None, bad_mac, 422, "invalid_mac").await;
    let mut bad_version = checkin_body(MAC, "1.0.0", None);
    bad_version["version"] = json!("1.0 beta");
    checkin_refused(
        &app,
        "bad version",
        None,
        bad_version,
        422,
        "invalid_version",
    )
    .await;
    let mut bad_chip = checkin_body(MAC, "1.0.0", None);
    bad_chip["chip"] = json!("esp64");
    checkin_refused(&app, "unknown chip", None, bad_chip, 422, "invalid_chip").await;
    let mut bad_sha = checkin_body(MAC, "1.0.0", None);
    bad_sha["sha256"] = json!("not-a-hash");
    checkin_refused(&app, "bad sha256", None, bad_sha, 422, "invalid_sha256").await;
    let mut wrong_type = checkin_body(MAC, "1.0.0", None);
    wrong_type["free_space"] = json!("lots");
    checkin_refused(
        &app,
        "wrong JSON type",
        None,
        wrong_type,
        422,
        "invalid_fields",
    )
    .await;

    let r = app
        .http
        .post(app.url("/api/v1/device/checkin"))
        .header("content-type", "application/json")
        .body("{\"mac\": \"24:0A")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "malformed JSON");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "malformed_json");
    assert_eq!(device_count(&app).await, 0);
    let r = app
        .http
        .post(app.url("/api/v1/device/checkin"))
        .body("mac=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "JSON without a JSON content type");

    // Enrol one device, then try to impersonate it.
    let (_, first) = app.checkin(None, checkin_body(MAC, "1.0.0", None)).await;
    let token = first["token"].as_str().unwrap().to_string();
    checkin_refused(
        &app,
        "second MAC claiming a device's token",
        Some(&token),
        checkin_body("24:0A:C4:00:00:01", "1.0.0", None),
        401,
        "token_unknown",
    )
    .await;
    checkin_refused(
        &app,
        "enrolled device without its token",
        None,
        checkin_body(MAC, "6.6.6", None),
        401,
        "token_required",
    )
    .await;
    checkin_refused(
        &app,
        "enrolled device with a wrong token",
        Some("0123456789"),
        checkin_body(MAC, "6.6.6", None),
        401,
        "token_mismatch",
    )
    .await;
    let device = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(
        device["version"], "1.0.0",
        "a refused check-in changed the device"
    );

    let r = app
        .http
        .post(app.url("/api/v1/device/progress"))
        .bearer_auth("forged")
        .json(&json!({"update_id": 1, "state": "downloading", "progress": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "progress with a forged token");
    let r = app
        .http
        .post(app.url("/api/v1/device/progress"))
        .bearer_auth(&token)
        .json(&json!({"update_id": 1, "state": "exploded", "progress": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "unknown state");

    let r = app
        .admin(Method::POST, "/api/v1/deployments")
        .json(&json!({"firmware_id": 999}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "deploying an unknown image");
    assert_eq!(
        app.get_json("/api/v1/deployments")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let r = app
        .admin(Method::GET, "/api/v1/devices/not-a-mac")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "bad MAC in a path");
    app.stop().await;
}
