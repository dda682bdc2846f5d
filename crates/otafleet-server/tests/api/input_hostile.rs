//! Hostile names, MACs and file names (issue 11): refused with a 4xx whose message says what to
//! fix, and nothing changed; an odd but harmless file name still gives the right version.

use otafleet_image::{synth, Chip};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const MAC: &str = "24:0A:C4:A3:15:3C";

async fn error_of(r: reqwest::Response, status: u16, code: &str, what: &str) -> String {
    assert_eq!(r.status().as_u16(), status, "{what}: wrong status");
    let body: Value = r.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap().to_string();
    assert!(message.len() > 30, "{what}: say what to fix: {message}");
    message
}

#[tokio::test]
async fn invisible_and_direction_characters_in_names_are_refused() {
    let app = TestApp::start().await;
    let (status, first) = app.checkin(None, checkin_body(MAC, "1.0.0", None)).await;
    assert_eq!(status, 200, "{first}");
    let token = first["token"].as_str().unwrap().to_string();
    let path = format!("/api/v1/devices/{MAC}");
    let before = app.get_json(&path).await;

    for (what, name) in [
        ("right-to-left override", "kitchen\u{202E}nib.exe"),
        ("zero-width space", "porch\u{200B}light"),
        ("first strong isolate", "\u{2068}garage"),
    ] {
        let r = app
            .admin(Method::PATCH, &path)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        let message = error_of(r, 422, "invalid_name", what).await;
        assert!(
            message.contains("U+"),
            "{what}: name the character: {message}"
        );
        // A device naming itself is held to the same rule.
        let mut body = checkin_body(MAC, "1.0.0", None);
        body["name"] = json!(name);
        let (status, answer) = app.checkin(Some(&token), body).await;
        assert_eq!(status, 422, "{what} at check-in: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_name", "{answer}");
    }
    assert_eq!(
        app.get_json(&path).await["name"],
        before["name"],
        "name changed"
    );

    // The same in a firmware file name: refused, nothing stored.
    let image = app_image(Chip::Esp32, "blink", "1.0.0", 20_000);
    let (status, body) = app.upload("blink\u{202E}nib.exe.bin", image).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_filename", "{body}");
    assert_eq!(app.get_json("/api/v1/firmware").await, json!([]));
    assert_eq!(app.blob_count(), 0);
}

#[tokio::test]
async fn broadcast_zero_and_multicast_macs_are_refused_everywhere() {
    let app = TestApp::start().await;
    for mac in [
        "FF:FF:FF:FF:FF:FF",
        "00:00:00:00:00:00",
        "01:00:5E:00:00:FB",
    ] {
        // Native check-in.
        let (status, answer) = app.checkin(None, checkin_body(mac, "1.0.0", None)).await;
        assert_eq!(status, 422, "{mac}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_mac", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("station MAC"),
            "{answer}"
        );
        // The admin adding it by hand.
        let r = app
            .admin(Method::POST, "/api/v1/devices")
            .json(&json!({ "mac": mac, "name": "x" }))
            .send()
            .await
            .unwrap();
        error_of(r, 422, "invalid_mac", mac).await;
        // A stock Arduino updater announcing it.
        let r = app
            .http
            .get(app.url("/ota/arduino"))
            .header("User-Agent", "ESP32-http-Update")
            .header("x-ESP32-STA-MAC", mac)
            .header("x-ESP32-free-space", "1310720")
            .header("x-ESP32-sketch-md5", "0123456789abcdef0123456789abcdef")
            .header("x-ESP32-mode", "sketch")
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error(),
            "{mac} at /ota/arduino: {}",
            r.status()
        );
    }
    assert_eq!(
        app.get_json("/api/v1/devices").await,
        json!([]),
        "a device was created"
    );
}

#[tokio::test]
async fn trailing_dots_and_spaces_do_not_end_up_in_the_version() {
    let app = TestApp::start().await;
    // An image whose descriptor names the Arduino core, so the file name gives project and version.
    let image = |n: usize| {
        synth::AppImage::new(Chip::Esp32)
            .project("arduino-lib-builder")
            .version("9.9.9")
            .payload_len(20_000 + n)
            .build()
    };
    for (i, name) in [
        "blink_v1.0.4.bin. ",
        "blink_v1.0.4.BIN",
        "blink_v1.0.4.bin.bin",
    ]
    .into_iter()
    .enumerate()
    {
        let fw = app.upload_ok(name, image(i)).await;
        assert_eq!(fw["project"], "blink", "{name:?}: {fw}");
        assert_eq!(fw["version"], "1.0.4", "{name:?}: {fw}");
    }
}
