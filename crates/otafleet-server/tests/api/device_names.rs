//! Issue 14: a device's name, notes and tags belong to the admin. A check-in that reports another
//! name (native) or none (a stock client) leaves them as the admin set them; `null` or `""` clears
//! the admin's name; notes and tags round-trip and are validated. Every device says how the server
//! recognises it (`auth`), from what the trust rules check.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::field_wire::{md5_hex, send};

const NATIVE: &str = "24:0A:C4:14:00:01";
const STOCK: &str = "24:0A:C4:14:00:02";

async fn patch(app: &TestApp, mac: &str, body: Value) -> (u16, Value) {
    let r = app
        .admin(Method::PATCH, &format!("/api/v1/devices/{mac}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn device(app: &TestApp, mac: &str) -> Value {
    app.get_json(&format!("/api/v1/devices/{mac}")).await
}

fn named(mac: &str, name: &str) -> Value {
    let mut body = checkin_body(mac, "1.0.0", None);
    body["name"] = json!(name);
    body
}

/// The Arduino `HTTPUpdate` check of a device running `image`, for MAC `mac`.
fn arduino_check(app: &TestApp, mac: &str, image: &[u8]) -> String {
    format!(
        "GET /ota/arduino HTTP/1.0\r\nHost: {}\r\nUser-Agent: ESP32-http-Update\r\nConnection: close\r\n\
         x-ESP32-STA-MAC: {mac}\r\nx-ESP32-free-space: 1310720\r\nx-ESP32-sketch-size: {}\r\n\
         x-ESP32-sketch-md5: {}\r\nx-ESP32-mode: sketch\r\nx-ESP32-version: 0.0.1",
        app.addr,
        image.len(),
        md5_hex(image)
    )
}

#[tokio::test]
async fn the_admins_name_survives_a_native_check_in_that_reports_another() {
    let app = TestApp::start().await;
    let (status, first) = app.checkin(None, named(NATIVE, "esp-lamp")).await;
    assert_eq!(status, 200, "{first}");
    let token = first["token"].as_str().unwrap().to_string();
    let d = device(&app, NATIVE).await;
    assert_eq!(d["name"], "esp-lamp");
    assert_eq!(d["name_source"], "reported");
    assert_eq!(d["reported_name"], "esp-lamp");
    assert_eq!(d["admin_name"], Value::Null);
    assert_eq!(d["auth"], "token", "a native device holding its token");

    let (status, d) = patch(&app, NATIVE, json!({"name": "  Bench 2 · left  "})).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["name"], "Bench 2 · left", "trimmed");
    assert_eq!(d["admin_name"], "Bench 2 · left");
    assert_eq!(d["name_source"], "admin");

    // The device goes on reporting its own name (another one now): that is its reported name.
    let (status, answer) = app.checkin(Some(&token), named(NATIVE, "esp-lamp-2")).await;
    assert_eq!(status, 200, "{answer}");
    let d = device(&app, NATIVE).await;
    assert_eq!(
        d["name"], "Bench 2 · left",
        "the check-in did not rename it"
    );
    assert_eq!(d["name_source"], "admin");
    assert_eq!(d["reported_name"], "esp-lamp-2");
    // A check-in without a name keeps the reported one.
    app.checkin(Some(&token), checkin_body(NATIVE, "1.0.0", None))
        .await;
    assert_eq!(device(&app, NATIVE).await["reported_name"], "esp-lamp-2");

    // `null` clears the admin's name: the reported one shows again. So does "".
    let (_, d) = patch(&app, NATIVE, json!({"name": null})).await;
    assert_eq!(
        (&d["name"], &d["admin_name"]),
        (&json!("esp-lamp-2"), &Value::Null)
    );
    assert_eq!(d["name_source"], "reported");
    patch(&app, NATIVE, json!({"name": "Lamp"})).await;
    let (_, d) = patch(&app, NATIVE, json!({"name": "  "})).await;
    assert_eq!(d["admin_name"], Value::Null, "a blank name clears it: {d}");
    assert_eq!(d["name"], "esp-lamp-2");
    // An absent name is left alone.
    patch(&app, NATIVE, json!({"name": "Lamp"})).await;
    let (_, d) = patch(&app, NATIVE, json!({"notes": "x"})).await;
    assert_eq!(d["admin_name"], "Lamp");
    app.stop().await;
}

#[tokio::test]
async fn the_admins_name_notes_and_tags_survive_a_stock_clients_checks() {
    let app = TestApp::start().await;
    let image = synth_arduino(1);
    app.upload_ok("relay_v1.0.0.bin", image.clone()).await;
    let r = send(&app, &arduino_check(&app, STOCK, &image)).await;
    assert_eq!(r.status, 304);
    let d = device(&app, STOCK).await;
    assert_eq!(d["protocol"], "arduino");
    assert_eq!(d["name"], Value::Null, "a stock updater reports no name");
    assert_eq!(
        d["auth"], "mac",
        "a stock client is recognised by its MAC alone, never a device token"
    );
    assert_eq!(d["enrolled"], false);

    let (status, d) = patch(
        &app,
        STOCK,
        json!({"name": "Relay board", "notes": "USB hub port 3\nreflashed 2026-11-02",
               "tags": [" bench-2 ", "owner: ana", "BENCH-2", "rack 4"]}),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(
        d["tags"],
        json!(["bench-2", "owner: ana", "rack 4"]),
        "trimmed, repeats dropped"
    );
    assert_eq!(d["notes"], "USB hub port 3\nreflashed 2026-11-02");
    for _ in 0..2 {
        let r = send(&app, &arduino_check(&app, STOCK, &image)).await;
        assert_eq!(r.status, 304);
    }
    let d = device(&app, STOCK).await;
    assert_eq!(d["name"], "Relay board");
    assert_eq!(d["name_source"], "admin");
    assert_eq!(d["tags"], json!(["bench-2", "owner: ana", "rack 4"]));
    assert_eq!(d["notes"], "USB hub port 3\nreflashed 2026-11-02");
    // The list shows the same.
    let listed = app.get_json("/api/v1/devices").await;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mac"] == STOCK)
        .unwrap();
    assert_eq!(row["tags"], d["tags"]);

    // Fields left out stay; `[]` and null clear.
    let (_, d) = patch(&app, STOCK, json!({"project": "relay"})).await;
    assert_eq!(d["tags"].as_array().unwrap().len(), 3);
    let (_, d) = patch(&app, STOCK, json!({"tags": [], "notes": null})).await;
    assert_eq!(d["tags"], json!([]));
    assert_eq!(d["notes"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn bad_notes_and_tags_are_refused_with_what_to_fix_and_change_nothing() {
    let app = TestApp::start().await;
    let (status, _) = app.checkin(None, checkin_body(NATIVE, "1.0.0", None)).await;
    assert_eq!(status, 200);
    patch(
        &app,
        NATIVE,
        json!({"name": "Lamp", "tags": ["bench"], "notes": "ok"}),
    )
    .await;
    let before = device(&app, NATIVE).await;
    let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
    for (body, code, says) in [
        (json!({"tags": ["a,b"]}), "invalid_tags", "comma"),
        (json!({"tags": ["ok", ""]}), "invalid_tags", "tag 2"),
        (
            json!({"tags": ["x".repeat(33)]}),
            "invalid_tags",
            "32 characters",
        ),
        (json!({"tags": ["rack\u{202E}4"]}), "invalid_tags", "U+202E"),
        (json!({"tags": many}), "invalid_tags", "at most 16"),
        (json!({"notes": "n".repeat(4001)}), "invalid_notes", "4000"),
        (json!({"notes": "a\u{200B}b"}), "invalid_notes", "U+200B"),
        (
            json!({"name": "kitchen\u{202E}nib.exe"}),
            "invalid_name",
            "U+202E",
        ),
        (json!({"tags": "bench"}), "invalid_fields", "tags"),
        // One bad field refuses the whole request: the good one is not applied either.
        (
            json!({"name": "New name", "tags": ["a,b"]}),
            "invalid_tags",
            "comma",
        ),
    ] {
        let (status, answer) = patch(&app, NATIVE, body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: say what to fix: {message}");
    }
    let after = device(&app, NATIVE).await;
    for field in ["name", "admin_name", "notes", "tags"] {
        assert_eq!(after[field], before[field], "{field} changed");
    }
    app.stop().await;
}

#[tokio::test]
async fn auth_says_what_the_server_checks_for_each_kind_of_device() {
    let app = TestApp::start().await;
    for (mac, expect, auth) in [
        ("24:0A:C4:14:01:01", Some("native"), "pending_enrolment"),
        ("24:0A:C4:14:01:02", Some("legacy"), "shared_secret"),
        ("24:0A:C4:14:01:03", Some("esp32fota"), "mac"),
        ("24:0A:C4:14:01:04", Some("any"), "mac"),
        ("24:0A:C4:14:01:05", None, "unclaimed"),
    ] {
        let r = app
            .admin(Method::POST, "/api/v1/devices")
            .json(&json!({"mac": mac, "expect_protocol": expect, "tags": ["new"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let d: Value = r.json().await.unwrap();
        assert_eq!(d["auth"], auth, "{d}");
        assert_eq!(d["tags"], json!(["new"]));
    }
    // A native device that enrols holds a token; its enrolment reset, it waits to enrol again.
    let (_, first) = app.checkin(None, checkin_body(NATIVE, "1.0.0", None)).await;
    assert!(first["token"].is_string());
    assert_eq!(device(&app, NATIVE).await["auth"], "token");
    let (_, d) = patch(&app, NATIVE, json!({"reset_token": true})).await;
    assert_eq!(d["auth"], "pending_enrolment", "{d}");
    app.stop().await;
}
