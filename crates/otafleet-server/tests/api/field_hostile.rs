//! Issue 3, hostile and refused field requests: each gets a 4xx or 304 with a message a person
//! can act on, and changes nothing it should not.

use otafleet_image::Chip;
use serde_json::json;

use crate::common::*;
use crate::field_arduino::{device, esp32_request};
use crate::field_wire::{md5_hex, send};

#[tokio::test]
async fn arduino_bad_or_missing_mac_is_refused_and_registers_nothing() {
    let app = TestApp::start().await;
    let r = send(
        &app,
        &format!(
            "GET /ota/arduino HTTP/1.0\r\nHost: {}\r\nx-ESP32-STA-MAC: 24:0A:C4:ZZ:15:3C\r\nx-ESP32-mode: sketch",
            app.addr
        ),
    )
    .await;
    assert_eq!(r.status, 422);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"]["code"], "invalid_mac");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("AA:BB:CC:DD:EE:FF"));

    let r = send(
        &app,
        &format!("GET /ota/arduino HTTP/1.0\r\nHost: {}", app.addr),
    )
    .await;
    assert_eq!(r.status, 400);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"]["code"], "sta_mac_required");
    assert_eq!(app.get_json("/api/v1/devices").await, json!([]));
    app.stop().await;
}

#[tokio::test]
async fn arduino_image_larger_than_free_space_is_not_sent() {
    let app = TestApp::start().await;
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", 200_000);
    let fw1 = app.upload_ok("blink.bin", v1.clone()).await;
    let fw2 = app.upload_ok("blink.bin", v2.clone()).await;
    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let sha1 = fw1["appended_sha256"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    let r = send(
        &app,
        &esp32_request(&app, &md5_hex(&v1), &sha1, 100_000, "sketch"),
    )
    .await;
    assert_eq!(
        r.status, 304,
        "HTTPUpdate would fail with -100 TOO_LESS_SPACE; say nothing instead"
    );
    assert!(r.body.is_empty());
    let d = device(&app, "24:0A:C4:A3:15:3C").await;
    let hold = d["hold"].as_str().expect("the reason is kept for the UI");
    assert!(hold.contains("free space"), "{hold}");
    assert!(d["update"].is_null(), "no attempt was started");
    app.stop().await;
}

#[tokio::test]
async fn arduino_filesystem_mode_gets_304_and_says_why() {
    let app = TestApp::start().await;
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    let fw1 = app.upload_ok("blink.bin", v1.clone()).await;
    let sha1 = fw1["appended_sha256"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    let r = send(
        &app,
        &esp32_request(&app, &md5_hex(&v1), &sha1, 1_310_720, "spiffs"),
    )
    .await;
    assert_eq!(r.status, 304);
    let d = device(&app, "24:0A:C4:A3:15:3C").await;
    assert!(d["hold"].as_str().unwrap().contains("filesystem"), "{d}");
    app.stop().await;
}

#[tokio::test]
async fn arduino_device_of_unknown_chip_is_offered_nothing() {
    let app = TestApp::start().await;
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", 40_000);
    let fw2 = app.upload_ok("blink.bin", v2).await;
    let mac = "24:0A:C4:A3:15:3C";
    // A running image the library does not know: no chip.
    let req = esp32_request(
        &app,
        &"ab".repeat(16),
        &"CD".repeat(32),
        1_310_720,
        "sketch",
    );
    assert_eq!(send(&app, &req).await.status, 304);
    app.deploy(json!({"firmware_id": fw2["id"], "devices": [mac]}))
        .await;
    assert_eq!(
        send(&app, &req).await.status,
        304,
        "chip unknown → never offered"
    );
    let d = device(&app, mac).await;
    assert!(d["chip"].is_null());
    assert!(d["hold"].as_str().unwrap().contains("chip"), "{d}");
    // The admin says what it is; then it gets the image.
    let r = app
        .admin(reqwest::Method::PATCH, &format!("/api/v1/devices/{mac}"))
        .json(&json!({"chip": "esp32", "project": "blink"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(send(&app, &req).await.status, 200);
    app.stop().await;
}
