//! Issue 3, Arduino `HTTPUpdate` (ESP32) and `ESP8266httpUpdate` at `GET /ota/arduino`, replayed
//! byte for byte over a raw socket: HTTP/1.0, `Connection: close`, the libraries' header casing.
//!
//! ESP32 request: espressif/arduino-esp32 `libraries/HTTPUpdate/src/HTTPUpdate.cpp`,
//! `HTTPUpdate::handleUpdate` (stored commit 0596a2a, the block from `http.useHTTP10(true)` to
//! `http.collectHeaders`; newer cores add `x-ESP32-sketch-md5` in the same block), with
//! `HTTPClient`'s own `Host`, `User-Agent`, `Connection: close` lines.
//! ESP8266 request: esp8266/Arduino `libraries/ESP8266httpUpdate/src/ESP8266httpUpdate.cpp`,
//! `ESP8266HTTPUpdate::handleUpdate` (the `http.addHeader(F("x-ESP8266-…"))` block).

use otafleet_image::synth::Esp8266App;
use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;
use crate::field_wire::{md5_hex, send};

const MAC: &str = "24:0A:C4:A3:15:3C";

/// The request `HTTPUpdate::handleUpdate` sends for a running image.
pub fn esp32_request(app: &TestApp, md5: &str, sha_upper: &str, free: u64, mode: &str) -> String {
    format!(
        "GET /ota/arduino HTTP/1.0\r\nHost: {}\r\nUser-Agent: ESP32-http-Update\r\nConnection: close\r\n\
         Cache-Control: no-cache\r\nx-ESP32-STA-MAC: {MAC}\r\nx-ESP32-AP-MAC: 26:0A:C4:A3:15:3C\r\n\
         x-ESP32-free-space: {free}\r\nx-ESP32-sketch-size: 1006448\r\nx-ESP32-sketch-md5: {md5}\r\n\
         x-ESP32-sketch-sha256: {sha_upper}\r\nx-ESP32-chip-size: 4194304\r\nx-ESP32-sdk-version: v4.4.5\r\n\
         x-ESP32-mode: {mode}\r\nx-ESP32-version: 0.0.1",
        app.addr
    )
}

pub async fn device(app: &TestApp, mac: &str) -> Value {
    app.get_json(&format!("/api/v1/devices/{mac}")).await
}

#[tokio::test]
async fn esp32_httpupdate_updates_from_check_to_confirmed() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", 300_000);
    let fw1 = app.upload_ok("blink.bin", v1.clone()).await;
    let fw2 = app.upload_ok("blink.bin", v2.clone()).await;
    let sha1 = fw1["appended_sha256"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    let sha2 = fw2["appended_sha256"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();

    // Nothing deployed: 304, and the device is known by its MAC with chip/project/version from
    // the library image its MD5/SHA names.
    let r = send(
        &app,
        &esp32_request(&app, &md5_hex(&v1), &sha1, 1_310_720, "sketch"),
    )
    .await;
    assert_eq!(
        r.status, 304,
        "nothing deployed → 304 (HTTP_UPDATE_NO_UPDATES)"
    );
    assert!(r.body.is_empty());
    let d = device(&app, MAC).await;
    assert_eq!(d["protocol"], "arduino");
    assert_eq!(d["source"], "checkin");
    assert_eq!(
        d["chip"], "esp32",
        "chip learnt from the running image: {d}"
    );
    assert_eq!(d["project"], "blink");
    assert_eq!(d["version"], "1.0.0");
    assert_eq!(d["sha256"], fw1["sha256"]);
    assert!(d["hold"].is_null());

    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let r = send(
        &app,
        &esp32_request(&app, &md5_hex(&v1), &sha1, 1_310_720, "sketch"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.version, "HTTP/1.0",
        "an HTTP/1.0 request gets an HTTP/1.0 answer"
    );
    assert_eq!(
        r.header("content-length"),
        Some(v2.len().to_string().as_str())
    );
    assert_eq!(r.count("content-length"), 1, "each header once");
    assert!(r.header("transfer-encoding").is_none(), "never chunked");
    assert_eq!(r.header("x-md5"), Some(md5_hex(&v2).as_str()));
    assert_eq!(r.count("x-md5"), 1);
    assert_eq!(r.header("x-sha256"), Some(sha256_hex(&v2).as_str()));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.header("x-version"), Some("2.0.0"));
    assert_eq!(r.body, v2, "the body is the image, first byte 0xE9");
    assert_eq!(r.body[0], 0xE9);

    // Bytes counted as sent: downloading with progress, then installing.
    events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "downloading")
        .await;
    let inst = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "installing")
        .await;
    assert_eq!(inst["update"]["bytes_sent"], v2.len());
    assert_eq!(inst["update"]["progress"], 100);
    assert_eq!(inst["update"]["mac"], MAC);

    // After the reboot the device asks again with the new image's hashes: done, and 304.
    let r = send(
        &app,
        &esp32_request(&app, &md5_hex(&v2), &sha2, 1_310_720, "sketch"),
    )
    .await;
    assert_eq!(r.status, 304);
    let done = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "done")
        .await;
    assert_eq!(done["update"]["sha256"], fw2["sha256"]);
    let d = device(&app, MAC).await;
    assert_eq!(d["version"], "2.0.0");
    assert_eq!(d["update"]["state"], "done");
    app.stop().await;
}

#[tokio::test]
async fn esp32_back_on_old_image_after_full_download_is_failed() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", 50_000);
    let fw1 = app.upload_ok("blink.bin", v1.clone()).await;
    let fw2 = app.upload_ok("blink.bin", v2.clone()).await;
    let sha1 = fw1["appended_sha256"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let req = esp32_request(&app, &md5_hex(&v1), &sha1, 1_310_720, "sketch");
    let r = send(&app, &req).await;
    assert_eq!(
        r.status, 200,
        "a new device running a known image gets the deployed one"
    );
    events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "installing")
        .await;
    // It comes back still running v1: the flash did not take.
    let r = send(&app, &req).await;
    let failed = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "failed")
        .await;
    assert_eq!(
        failed["update"]["error"],
        "device still runs the previous image"
    );
    assert_eq!(
        failed["update"]["failure"], "not_installed",
        "a stock client that got the whole image but still runs the old one: {failed}"
    );
    assert_eq!(
        r.status, 200,
        "a failed attempt is retried (up to the attempt limit)"
    );
    app.stop().await;
}

/// `ESP8266HTTPUpdate::handleUpdate`'s request; `mode` is `sketch` or `version`.
fn esp8266_request(app: &TestApp, mac: &str, md5: &str, mode: &str) -> String {
    format!(
        "GET /ota/arduino HTTP/1.0\r\nHost: {}\r\nUser-Agent: ESP8266-http-Update\r\nConnection: close\r\n\
         x-ESP8266-Chip-ID: 1458415\r\nx-ESP8266-STA-MAC: {mac}\r\nx-ESP8266-AP-MAC: CE:50:E3:17:C4:11\r\n\
         x-ESP8266-free-space: 1695744\r\nx-ESP8266-sketch-size: 296800\r\nx-ESP8266-sketch-md5: {md5}\r\n\
         x-ESP8266-chip-size: 4194304\r\nx-ESP8266-sdk-version: 2.2.2-dev(38a443e)\r\n\
         x-ESP8266-mode: {mode}\r\nx-ESP8266-version: 1.0.0",
        app.addr
    )
}

#[tokio::test]
async fn esp8266_httpupdate_updates_from_check_to_confirmed() {
    const MAC8266: &str = "CC:50:E3:17:C4:11";
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let v1 = Esp8266App::arduino().payload_len(30_000).build();
    let v2 = Esp8266App::arduino().payload_len(90_000).build();
    let fw1 = app.upload_ok("thermo_v1.0.0.bin", v1.clone()).await;
    let fw2 = app.upload_ok("thermo_v1.1.0.bin", v2.clone()).await;
    assert_eq!(fw1["chip"], "esp8266");

    let r = send(
        &app,
        &esp8266_request(&app, MAC8266, &md5_hex(&v1), "version"),
    )
    .await;
    assert_eq!(r.status, 304, "no target yet");
    let d = crate::field_arduino::device(&app, MAC8266).await;
    assert_eq!(d["protocol"], "esp8266");
    assert_eq!(d["chip"], "esp8266");
    assert_eq!(d["project"], "thermo");
    assert_eq!(d["version"], "1.0.0");

    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    // mode: version → 200, x-version and x-MD5, no body, nothing recorded.
    let r = send(
        &app,
        &esp8266_request(&app, MAC8266, &md5_hex(&v1), "version"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-version"), Some("1.1.0"));
    assert_eq!(r.header("x-md5"), Some(md5_hex(&v2).as_str()));
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());
    assert!(crate::field_arduino::device(&app, MAC8266).await["update"].is_null());

    let r = send(
        &app,
        &esp8266_request(&app, MAC8266, &md5_hex(&v1), "sketch"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.version, "HTTP/1.0");
    assert_eq!(
        r.header("content-length"),
        Some(v2.len().to_string().as_str())
    );
    assert_eq!(r.header("x-md5"), Some(md5_hex(&v2).as_str()));
    assert_eq!(r.header("x-sha256"), Some(sha256_hex(&v2).as_str()));
    assert_eq!(r.header("x-version"), Some("1.1.0"));
    assert_eq!(r.body, v2);
    let inst = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "installing")
        .await;
    assert_eq!(inst["update"]["bytes_sent"], v2.len());

    let r = send(
        &app,
        &esp8266_request(&app, MAC8266, &md5_hex(&v2), "sketch"),
    )
    .await;
    assert_eq!(r.status, 304);
    events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "done")
        .await;
    let d = crate::field_arduino::device(&app, MAC8266).await;
    assert_eq!(d["version"], "1.1.0");
    assert_eq!(d["sha256"], fw2["sha256"]);
    app.stop().await;
}

/// An ESP8266httpUpdate device whose running sketch is not in the library: its headers name the
/// ESP8266 family (there is only one), so its chip is known and an image deployed to it by MAC is
/// offered. Before, it was held for good with "the device's chip is not known yet".
#[tokio::test]
async fn esp8266_running_an_unknown_sketch_is_known_to_be_an_esp8266() {
    const MAC8266: &str = "CC:50:E3:17:C4:22";
    let app = TestApp::start().await;
    let v2 = Esp8266App::arduino().payload_len(90_000).build();
    let fw2 = app.upload_ok("thermo_v1.1.0.bin", v2.clone()).await;
    let unknown_md5 = "0123456789abcdef0123456789abcdef";
    let r = send(&app, &esp8266_request(&app, MAC8266, unknown_md5, "sketch")).await;
    assert_eq!(r.status, 304, "nothing deployed yet");
    let d = crate::field_arduino::device(&app, MAC8266).await;
    assert_eq!(d["chip"], "esp8266");

    app.deploy(json!({"firmware_id": fw2["id"], "devices": [MAC8266]}))
        .await;
    let r = send(&app, &esp8266_request(&app, MAC8266, unknown_md5, "sketch")).await;
    assert_eq!(r.status, 200, "the deployed image is offered");
    assert_eq!(r.header("x-md5"), Some(md5_hex(&v2).as_str()));
    assert_eq!(r.body, v2);
    app.stop().await;
}
