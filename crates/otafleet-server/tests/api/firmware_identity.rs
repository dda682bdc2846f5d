//! Issue 14: an image's identity can be seen and corrected. A generic build-output name
//! (`firmware.bin`) yields no project by guessing; `PATCH /api/v1/firmware/{id}` sets project,
//! version and file name (source `admin`), validated, admin only, and the stock-client devices
//! running the image show the correction.

use otafleet_image::Chip;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::field_wire::{md5_hex, send};

const STOCK: &str = "24:0A:C4:14:10:01";
const NATIVE: &str = "24:0A:C4:14:10:02";

async fn patch_fw(app: &TestApp, id: &Value, body: Value) -> (u16, Value) {
    let r = app
        .admin(Method::PATCH, &format!("/api/v1/firmware/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The Arduino `HTTPUpdate` check of device `STOCK` running `image` (MD5 only, as older cores).
fn arduino_check(app: &TestApp, image: &[u8]) -> String {
    format!(
        "GET /ota/arduino HTTP/1.0\r\nHost: {}\r\nUser-Agent: ESP32-http-Update\r\nConnection: close\r\n\
         x-ESP32-STA-MAC: {STOCK}\r\nx-ESP32-free-space: 1310720\r\nx-ESP32-sketch-size: {}\r\n\
         x-ESP32-sketch-md5: {}\r\nx-ESP32-mode: sketch\r\nx-ESP32-version: 0.0.1",
        app.addr,
        image.len(),
        md5_hex(image)
    )
}

#[tokio::test]
async fn generic_build_output_names_leave_project_and_version_empty() {
    let app = TestApp::start().await;
    // Arduino builds say nothing of their sketch: the file name was all there was.
    for (n, name) in [
        (1, "firmware.bin"),
        (2, "app.bin"),
        (3, "image.bin"),
        (4, "ota.bin"),
        (5, "update.bin"),
        (6, "sketch.ino.bin"),
        (7, "firmware.ota.bin"),
    ] {
        let fw = app.upload_ok(name, synth_arduino(n)).await;
        assert_eq!(
            fw["project"],
            Value::Null,
            "{name}: no project guessed: {fw}"
        );
        assert_eq!(fw["project_source"], "none", "{name}");
        assert_eq!(fw["version"], Value::Null, "{name}");
        assert_eq!(fw["version_source"], "none", "{name}");
    }
    // A version in a generic name is still a version; the project is not guessed.
    let fw = app.upload_ok("firmware_v1.2.3.bin", synth_arduino(8)).await;
    assert_eq!(
        (&fw["project"], &fw["version"]),
        (&Value::Null, &json!("1.2.3"))
    );
    assert_eq!(fw["version_source"], "filename");
    // A name that is the sketch's keeps giving it.
    let fw = app.upload_ok("doorbell.ino.bin", synth_arduino(9)).await;
    assert_eq!(fw["project"], "doorbell");
    // An ESP-IDF image says its own project, whatever the file is called.
    let fw = app
        .upload_ok(
            "firmware.bin",
            app_image(Chip::Esp32, "blink", "1.0.0", 20_000),
        )
        .await;
    assert_eq!(
        (&fw["project"], &fw["project_source"]),
        (&json!("blink"), &json!("app_desc"))
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admins_correction_shows_on_the_stock_devices_running_the_image() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let image = synth_arduino(1);
    let fw = app.upload_ok("firmware.bin", image.clone()).await;
    let r = send(&app, &arduino_check(&app, &image)).await;
    assert_eq!(r.status, 304);
    let d = app.get_json(&format!("/api/v1/devices/{STOCK}")).await;
    assert_eq!(d["sha256"], fw["sha256"], "known to run the image");
    assert_eq!(d["project"], Value::Null);
    assert_eq!(
        d["version"], "0.0.1",
        "only the sketch's own version header"
    );

    let (status, fixed) = patch_fw(
        &app,
        &fw["id"],
        json!({"project": "doorbell", "version": "1.4.0", "filename": "doorbell_v1.4.0.bin"}),
    )
    .await;
    assert_eq!(status, 200, "{fixed}");
    assert_eq!(fixed["project"], "doorbell");
    assert_eq!(fixed["project_source"], "admin");
    assert_eq!(fixed["version"], "1.4.0");
    assert_eq!(fixed["version_source"], "admin");
    assert_eq!(fixed["filename"], "doorbell_v1.4.0.bin");
    assert_eq!(fixed["devices_running"], 1);
    assert_eq!(fixed["sha256"], fw["sha256"], "same bytes, same image");
    let ev = events
        .wait_for(|n, v| n == "firmware" && v["firmware"]["project"] == "doorbell")
        .await;
    assert_eq!(ev["firmware"]["project"], "doorbell", "{ev}");
    events
        .wait_for(|n, v| n == "device" && v["device"]["mac"] == STOCK)
        .await;
    assert_eq!(
        app.get_json(&format!("/api/v1/firmware/{}", fw["id"]))
            .await,
        fixed
    );

    let d = app.get_json(&format!("/api/v1/devices/{STOCK}")).await;
    assert_eq!(
        d["project"], "doorbell",
        "the device runs a doorbell image: {d}"
    );
    assert_eq!(d["version"], "1.4.0");
    // Its next checks are answered as before: no project mismatch with its own image.
    let r = send(&app, &arduino_check(&app, &image)).await;
    assert_eq!(r.status, 304);
    assert!(r.header("x-otafleet-refused").is_none());

    // Corrected again: the device follows again, and is still served.
    let (status, _) = patch_fw(&app, &fw["id"], json!({"project": "chime"})).await;
    assert_eq!(status, 200);
    let r = send(&app, &arduino_check(&app, &image)).await;
    assert_eq!(r.status, 304);
    assert!(r.header("x-otafleet-refused").is_none());
    let d = app.get_json(&format!("/api/v1/devices/{STOCK}")).await;
    assert_eq!(
        (&d["project"], &d["version"]),
        (&json!("chime"), &json!("1.4.0"))
    );
    assert_eq!(d["refused"], Value::Null, "{d}");
    app.stop().await;
}

#[tokio::test]
async fn a_corrected_version_is_what_attempts_and_offers_say() {
    let app = TestApp::start().await;
    let (token, update_id) = app.enrolled_with_offer(NATIVE).await;
    let fw = app.get_json("/api/v1/firmware").await[0].clone();
    let (status, _) = patch_fw(&app, &fw["id"], json!({"version": "2.0.1"})).await;
    assert_eq!(status, 200);
    let history = app
        .get_json(&format!("/api/v1/devices/{NATIVE}/updates"))
        .await;
    assert_eq!(history[0]["id"], update_id);
    assert_eq!(
        history[0]["version"], "2.0.1",
        "the attempt is at the image: {history}"
    );
    // The same report again: the offer is not answered from an older memory.
    let (_, c) = app
        .checkin(Some(&token), checkin_body(NATIVE, "1.0.0", None))
        .await;
    assert_eq!(c["update"]["id"], update_id);
    assert_eq!(c["update"]["version"], "2.0.1", "{c}");
    app.stop().await;
}

#[tokio::test]
async fn bad_corrections_are_refused_with_what_to_fix_and_change_nothing() {
    let app = TestApp::start().await;
    let fw = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "1.0.0", 20_000),
        )
        .await;
    let path = format!("/api/v1/firmware/{}", fw["id"]);
    for (body, status, code) in [
        (json!({"project": "door bell"}), 422, "invalid_project"),
        (json!({"project": ""}), 422, "invalid_project"),
        (json!({"version": "1 0"}), 422, "invalid_version"),
        (json!({"version": "v".repeat(32)}), 422, "invalid_version"),
        (json!({"filename": "../blink.bin"}), 422, "invalid_filename"),
        (
            json!({"filename": "blink\u{202E}nib.exe"}),
            422,
            "invalid_filename",
        ),
        (json!({"colour": "red"}), 422, "invalid_fields"),
        (json!({"project": 7}), 422, "invalid_fields"),
        // One bad field refuses all: the good project is not applied.
        (
            json!({"project": "lamp", "version": "not a version"}),
            422,
            "invalid_version",
        ),
    ] {
        let (got, answer) = patch_fw(&app, &fw["id"], body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.len() > 30, "{body}: say what to fix: {message}");
        assert_eq!(app.get_json(&path).await, fw, "{body} changed the image");
    }
    let (status, answer) = patch_fw(&app, &json!(9999), json!({"project": "x"})).await;
    assert_eq!(status, 404, "{answer}");

    // A project-wide deployment of this image covers project blink: changing the project would
    // change what it covers, so it must be stopped first.
    let dep = app.deploy(json!({"firmware_id": fw["id"]})).await;
    let (status, answer) = patch_fw(&app, &fw["id"], json!({"project": "lamp"})).await;
    assert_eq!(status, 409, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("Stop deployment {}", dep["id"])),
        "{message}"
    );
    assert_eq!(app.get_json(&path).await, fw, "nothing changed");
    // Its version may be corrected while it is deployed.
    let (status, fixed) = patch_fw(&app, &fw["id"], json!({"version": "1.0.1"})).await;
    assert_eq!(status, 200, "{fixed}");
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/deployments/{}/stop", dep["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, fixed) = patch_fw(&app, &fw["id"], json!({"project": "lamp"})).await;
    assert_eq!(status, 200, "{fixed}");
    assert_eq!(fixed["project"], "lamp");
    app.stop().await;
}

#[tokio::test]
async fn only_the_admin_may_correct_an_image() {
    let app = TestApp::start().await;
    let (_, first) = app.checkin(None, checkin_body(NATIVE, "0.9.0", None)).await;
    let device_token = first["token"].as_str().unwrap().to_string();
    let fw = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "1.0.0", 20_000),
        )
        .await;
    let url = app.url(&format!("/api/v1/firmware/{}", fw["id"]));
    let body = json!({"project": "evil", "version": "9.9.9", "filename": "evil.bin"});
    for (who, req) in [
        ("nobody", app.http.patch(&url)),
        (
            "a wrong token",
            app.http.patch(&url).bearer_auth("not-the-admin"),
        ),
        (
            "a device's own token",
            app.http.patch(&url).bearer_auth(&device_token),
        ),
        (
            "a wrong X-Admin-API-Key",
            app.http.patch(&url).header("X-Admin-API-Key", "nope"),
        ),
        (
            "the admin token in the URL",
            app.http.patch(format!("{url}?token={ADMIN}")),
        ),
    ] {
        let r = req.json(&body).send().await.unwrap();
        assert_eq!(r.status(), 401, "{who}");
    }
    assert_eq!(
        app.get_json(&format!("/api/v1/firmware/{}", fw["id"]))
            .await,
        fw,
        "nothing changed"
    );
    // The admin's key header is the admin.
    let r = app
        .http
        .patch(&url)
        .header("X-Admin-API-Key", ADMIN)
        .json(&json!({"version": "1.0.1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}
