//! Issue 11, points 2 and 4: one owner per identity. The red-team reproductions (a stock client
//! failing or faking a token-enrolled device's update; a native enrolment taking over a stock
//! device or one the admin added), and the admin's settings: open enrolment, expected protocol.

use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;
use crate::field_arduino::device;
use crate::field_wire::{md5_hex, send, RawResponse};

/// What Arduino-ESP32 `HTTPUpdate` sends for `mac` running an image with this MD5.
fn arduino(app: &TestApp, mac: &str, md5: &str) -> String {
    format!(
        "GET /ota/arduino HTTP/1.0\r\nHost: {}\r\nUser-Agent: ESP32-http-Update\r\nConnection: close\r\n\
         x-ESP32-STA-MAC: {mac}\r\nx-ESP32-free-space: 1310720\r\nx-ESP32-sketch-md5: {md5}\r\n\
         x-ESP32-mode: sketch\r\nx-ESP32-version: 0.0.1",
        app.addr
    )
}

fn body(mac: &str, project: &str, version: &str, sha: &str) -> Value {
    json!({
        "mac": mac, "chip": "esp32", "project": project, "version": version,
        "sha256": sha, "free_space": 1_310_720
    })
}

/// A device enrolled natively on v1 and offered v2: (token, v1, v2, update id).
async fn enrolled_and_offered(app: &TestApp, mac: &str) -> (String, Vec<u8>, Vec<u8>, i64) {
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", 60_000);
    app.upload_ok("blink.bin", v1.clone()).await;
    let fw2 = app.upload_ok("blink.bin", v2.clone()).await;
    let (status, first) = app
        .checkin(None, body(mac, "blink", "1.0.0", &sha256_hex(&v1)))
        .await;
    assert_eq!(status, 200, "{first}");
    let token = first["token"].as_str().unwrap().to_string();
    app.deploy(json!({"firmware_id": fw2["id"], "devices": [mac]}))
        .await;
    let (status, offer) = app
        .checkin(Some(&token), body(mac, "blink", "1.0.0", &sha256_hex(&v1)))
        .await;
    assert_eq!(status, 200, "{offer}");
    let id = offer["update"]["id"].as_i64().expect("v2 is offered");
    (token, v1, v2, id)
}

fn refused_code(r: &RawResponse) -> Option<&str> {
    r.header("x-otafleet-refused")
}

/// Red team: three rounds of a ranged per-device download to the end plus an `/ota/arduino`
/// request with the old MD5 made an enrolled device "failed 3 times", never offered again.
#[tokio::test]
async fn stock_requests_cannot_fail_an_enrolled_devices_update() {
    let app = TestApp::start().await;
    let mac = "30:AE:A4:07:0D:64";
    let (token, v1, v2, id) = enrolled_and_offered(&app, mac).await;
    let sha2 = sha256_hex(&v2);
    let mut answers = Vec::new();
    for _ in 0..3 {
        // Read to the end: the whole range is sent before the stock request goes out.
        let r = app
            .http
            .get(app.url(&format!("/ota/firmware/{mac}/{sha2}")))
            .header("range", format!("bytes={}-", v2.len() - 100))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        let code =
            serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)["error"]["code"].clone();
        let r = send(&app, &arduino(&app, mac, &md5_hex(&v1))).await;
        answers.push((status, code, r.status, refused_code(&r).map(str::to_owned)));
    }
    // The device itself still gets its update, and nothing of it moved.
    let (status, again) = app
        .checkin(Some(&token), body(mac, "blink", "1.0.0", &sha256_hex(&v1)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["update"]["id"], id, "still offered: {again}");
    let history = app
        .get_json(&format!("/api/v1/devices/{mac}/updates"))
        .await;
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    let d = device(&app, mac).await;
    assert_eq!(
        d["update"]["state"], "offered",
        "the attempt did not move: {d}"
    );
    assert_eq!(d["version"], "1.0.0");
    // Each hostile request was refused as such, and counted.
    for a in &answers {
        assert_eq!(
            *a,
            (
                403,
                json!("enrolled_native"),
                304,
                Some("enrolled_native".into())
            )
        );
    }
    assert_eq!(
        d["refused"]["count"], 6,
        "every refused attempt is counted: {d}"
    );
    assert_eq!(d["refused"]["last_protocol"], "arduino");
    app.stop().await;
}

/// Red team: one `/ota/arduino` request with the new MD5 marked the update `done` and rewrote
/// the device's version while it still ran the old image.
#[tokio::test]
async fn stock_request_with_the_new_md5_cannot_confirm_an_enrolled_device() {
    let app = TestApp::start().await;
    let mac = "30:AE:A4:07:0D:65";
    let (_token, _v1, v2, id) = enrolled_and_offered(&app, mac).await;
    let r = send(&app, &arduino(&app, mac, &md5_hex(&v2))).await;
    let d = device(&app, mac).await;
    assert_eq!(d["update"]["id"], id);
    assert_eq!(d["update"]["state"], "offered", "not confirmed: {d}");
    assert_eq!(d["version"], "1.0.0", "{d}");
    assert_eq!(d["protocol"], "native");
    assert_eq!(d["sha256"], sha256_hex(&_v1));
    assert_eq!(r.status, 304);
    assert_eq!(refused_code(&r), Some("enrolled_native"));
    assert_eq!(d["refused"]["count"], 1);
    assert_eq!(d["refused"]["last_code"], "enrolled_native");
    assert!(d["refused"]["last_from"].as_str().is_some(), "{d}");
    app.stop().await;
}

/// An ESP-IDF app that checks in natively may still download from its per-device URL, counted,
/// when it sends its own token.
#[tokio::test]
async fn per_device_download_with_the_devices_token_is_counted() {
    let app = TestApp::start().await;
    let mac = "30:AE:A4:07:0D:66";
    let (token, _v1, v2, id) = enrolled_and_offered(&app, mac).await;
    let r = app
        .http
        .get(app.url(&format!("/ota/firmware/{mac}/{}", sha256_hex(&v2))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), v2.len());
    let d = device(&app, mac).await;
    assert_eq!(d["update"]["id"], id);
    assert_eq!(d["update"]["state"], "installing", "{d}");
    assert!(d["refused"].is_null(), "{d}");
    app.stop().await;
}

/// Red team: anyone could enrol a stock Arduino device's MAC natively, get a token and set its
/// project.
#[tokio::test]
async fn native_enrolment_cannot_take_over_a_stock_device() {
    let app = TestApp::start().await;
    let mac = "24:0A:C4:A3:15:40";
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    app.upload_ok("blink.bin", v1.clone()).await;
    let r = send(&app, &arduino(&app, mac, &md5_hex(&v1))).await;
    assert_eq!(r.status, 304);
    assert_eq!(refused_code(&r), None);

    let (status, e) = app
        .checkin(None, body(mac, "other", "9.0.0", &"ab".repeat(32)))
        .await;
    assert_eq!(status, 403, "no takeover: {e}");
    assert_eq!(e["error"]["code"], "protocol_not_allowed");
    assert!(e["error"]["message"].as_str().unwrap().contains("arduino"));
    let d = device(&app, mac).await;
    assert_eq!(d["enrolled"], false, "no token was issued: {d}");
    assert_eq!(d["project"], "blink");
    assert_eq!(d["version"], "1.0.0");
    assert_eq!(d["protocol"], "arduino");
    assert_eq!(
        d["expect_protocol"], "arduino",
        "the first protocol claimed it"
    );
    assert_eq!(d["refused"]["last_protocol"], "native");
    assert_eq!(d["refused"]["last_code"], "protocol_not_allowed");

    // The admin lets it move to the native protocol: then it enrols.
    let r = app
        .admin(reqwest::Method::PATCH, &format!("/api/v1/devices/{mac}"))
        .json(&json!({"expect_protocol": "native", "project": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, ok) = app
        .checkin(None, body(mac, "other", "9.0.0", &"ab".repeat(32)))
        .await;
    assert_eq!(status, 200, "{ok}");
    assert!(ok["token"].is_string());
    app.stop().await;
}

/// A device the admin added for one protocol is not claimed by another; unset, the first
/// protocol claims it; a bad value is refused with the list of protocols.
#[tokio::test]
async fn device_added_in_advance_is_claimed_only_by_its_expected_protocol() {
    let app = TestApp::start().await;
    let mac = "24:0A:C4:A3:15:41";
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/devices")
        .json(
            &json!({"mac": mac, "chip": "esp32", "project": "blink", "expect_protocol": "arduino"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["expect_protocol"], "arduino");

    let (status, e) = app
        .checkin(None, body(mac, "blink", "1.0.0", &"ab".repeat(32)))
        .await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(e["error"]["code"], "protocol_not_allowed");
    assert_eq!(device(&app, mac).await["enrolled"], false);

    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    app.upload_ok("blink.bin", v1.clone()).await;
    let r = send(&app, &arduino(&app, mac, &md5_hex(&v1))).await;
    assert_eq!(r.status, 304);
    assert_eq!(refused_code(&r), None);
    assert_eq!(device(&app, mac).await["protocol"], "arduino");

    let r = app
        .admin(reqwest::Method::POST, "/api/v1/devices")
        .json(&json!({"mac": "24:0A:C4:A3:15:42", "expect_protocol": "mqtt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_expect_protocol");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("esp32fota"));
    app.stop().await;
}

/// Red team: a device the admin added in advance (with its project) was claimed by the first
/// caller, whatever project it said.
#[tokio::test]
async fn device_added_with_a_project_is_not_enrolled_under_another() {
    let app = TestApp::start().await;
    let mac = "24:0A:C4:A3:15:43";
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/devices")
        .json(&json!({"mac": mac, "chip": "esp32", "project": "blink"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, e) = app
        .checkin(None, body(mac, "other", "1.0.0", &"ab".repeat(32)))
        .await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(e["error"]["code"], "project_mismatch");
    let d = device(&app, mac).await;
    assert_eq!(d["project"], "blink");
    assert_eq!(d["enrolled"], false);
    assert!(d["expect_protocol"].is_null(), "still unclaimed: {d}");

    let (status, ok) = app
        .checkin(None, body(mac, "blink", "1.0.0", &"ab".repeat(32)))
        .await;
    assert_eq!(status, 200, "{ok}");
    let d = device(&app, mac).await;
    assert_eq!(d["expect_protocol"], "native");
    assert_eq!(d["enrolled"], true);
    app.stop().await;
}

/// A stock client cannot move a device to another project by claiming to run one of its images.
#[tokio::test]
async fn stock_client_reporting_another_projects_image_does_not_move_the_device() {
    let app = TestApp::start().await;
    let mac = "24:0A:C4:A3:15:44";
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    let other = app_image(Chip::Esp32, "other", "5.0.0", 40_000);
    app.upload_ok("blink.bin", v1.clone()).await;
    app.upload_ok("other.bin", other.clone()).await;
    assert_eq!(
        send(&app, &arduino(&app, mac, &md5_hex(&v1))).await.status,
        304
    );
    let r = send(&app, &arduino(&app, mac, &md5_hex(&other))).await;
    let d = device(&app, mac).await;
    assert_eq!(d["project"], "blink", "{d}");
    assert_eq!(d["version"], "1.0.0");
    assert_eq!(r.status, 304);
    assert_eq!(refused_code(&r), Some("project_mismatch"));
    assert_eq!(d["refused"]["last_code"], "project_mismatch");
    app.stop().await;
}

/// Open enrolment off: unknown MACs are refused on every protocol until the admin adds them.
#[tokio::test]
async fn closed_enrolment_refuses_unknown_macs_on_every_protocol() {
    let app = TestApp::start().await;
    assert_eq!(
        app.get_json("/api/v1/settings").await["open_enrolment"],
        true
    );
    // Hostile: without the admin token the setting does not change.
    let r = app
        .http
        .patch(app.url("/api/v1/settings"))
        .json(&json!({"open_enrolment": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        app.get_json("/api/v1/settings").await["open_enrolment"],
        true
    );
    let r = app
        .admin(reqwest::Method::PATCH, "/api/v1/settings")
        .json(&json!({"open_enrolment": "no"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = app
        .admin(reqwest::Method::PATCH, "/api/v1/settings")
        .json(&json!({"open_enrolment": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["open_enrolment"], false);
    assert_eq!(
        app.get_json("/api/v1/settings").await["open_enrolment"],
        false
    );

    let mac = "24:0A:C4:A3:15:45";
    let (status, e) = app
        .checkin(None, body(mac, "blink", "1.0.0", &"ab".repeat(32)))
        .await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(e["error"]["code"], "enrolment_closed");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("open enrolment"));
    let r = send(&app, &arduino(&app, mac, &"ab".repeat(16))).await;
    assert_eq!(r.status, 304);
    assert_eq!(refused_code(&r), Some("enrolment_closed"));
    let r = app
        .http
        .get(app.url("/ota/esp32fota.json"))
        .query(&[("id", 0x3C15_A3C4_0A24u64.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.get_json("/api/v1/devices").await,
        json!([]),
        "nothing was registered"
    );

    // Added by the admin: it may enrol.
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/devices")
        .json(&json!({"mac": mac}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, ok) = app
        .checkin(None, body(mac, "blink", "1.0.0", &"ab".repeat(32)))
        .await;
    assert_eq!(status, 200, "{ok}");
    app.stop().await;
}

/// The legacy device API and the esp32FOTA manifest cannot speak for a token-enrolled device
/// either: with the MAC's (forgeable) legacy token, or its efuse id, the device stays as it was.
#[tokio::test]
async fn legacy_and_esp32fota_requests_cannot_touch_an_enrolled_device() {
    let app = TestApp::start_with(|s| s.legacy_device_secret = Some("bench-secret".into())).await;
    // The worked example of docs/seed1-compat.md §3: this MAC's djb2 token under "bench-secret".
    let mac = "24:6F:28:AA:BB:CC";
    let (_token, _v1, _v2, id) = enrolled_and_offered(&app, mac).await;
    let legacy = app
        .http
        .get(app.url("/api/firmware"))
        .query(&[
            ("device_id", "x"),
            ("hardware", "esp32"),
            ("version", "9.9.9"),
            ("mac", mac),
        ])
        .header("X-Device-Auth", "fa4c71ab")
        .send()
        .await
        .unwrap();
    let legacy_status = legacy.status().as_u16();
    let legacy_body: Value = legacy.json().await.unwrap_or(Value::Null);
    // ESP.getEfuseMac() of 24:6F:28:AA:BB:CC, little-endian.
    let efuse = u64::from_le_bytes([0x24, 0x6F, 0x28, 0xAA, 0xBB, 0xCC, 0, 0]);
    let fota = app
        .http
        .get(app.url("/ota/esp32fota.json"))
        .query(&[("id", efuse.to_string())])
        .send()
        .await
        .unwrap();
    let fota_status = fota.status().as_u16();
    let fota_body: Value = fota.json().await.unwrap_or(Value::Null);

    let d = device(&app, mac).await;
    assert_eq!(d["protocol"], "native", "{d}");
    assert_eq!(d["weak_auth"], false, "{d}");
    assert_eq!(d["version"], "1.0.0");
    assert_eq!(d["update"]["id"], id);
    assert_eq!(d["update"]["state"], "offered");
    assert_eq!(legacy_status, 403, "{legacy_body}");
    assert!(
        legacy_body["error"].as_str().unwrap().contains("native"),
        "{legacy_body}"
    );
    assert_eq!(fota_status, 403, "{fota_body}");
    assert_eq!(fota_body["error"]["code"], "enrolled_native");
    assert_eq!(d["refused"]["count"], 2, "{d}");
    app.stop().await;
}

/// A project that lists the protocols its devices may enrol with refuses the others
/// (`project_protocol_not_allowed`), natively and for stock clients, and changes nothing.
#[tokio::test]
async fn a_projects_enrolment_policy_refuses_other_protocols() {
    let app = TestApp::start().await;
    let stock = "24:0A:C4:A3:15:51";
    let native = "24:0A:C4:A3:15:52";
    let v1 = app_image(Chip::Esp32, "locked", "1.0.0", 40_000);
    app.upload_ok("locked.bin", v1.clone()).await;
    let r = app
        .admin(reqwest::Method::PATCH, "/api/v1/projects/locked")
        .json(&json!({"enrolment": ["native"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A stock client running the project's image: refused, with the reason, and not recorded.
    let r = send(&app, &arduino(&app, stock, &md5_hex(&v1))).await;
    assert_eq!(r.status, 304);
    assert_eq!(refused_code(&r), Some("project_protocol_not_allowed"));
    // Natively: allowed.
    let (status, ok) = app
        .checkin(None, body(native, "locked", "1.0.0", &sha256_hex(&v1)))
        .await;
    assert_eq!(status, 200, "{ok}");

    // Only esp32fota now: the native device is refused at its next check-in.
    let r = app
        .admin(reqwest::Method::PATCH, "/api/v1/projects/locked")
        .json(&json!({"enrolment": ["esp32fota"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, e) = app
        .checkin(
            ok["token"].as_str(),
            body(native, "locked", "1.0.0", &sha256_hex(&v1)),
        )
        .await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(e["error"]["code"], "project_protocol_not_allowed");
    let d = device(&app, native).await;
    assert_eq!(d["refused"]["last_code"], "project_protocol_not_allowed");
    app.stop().await;
}
