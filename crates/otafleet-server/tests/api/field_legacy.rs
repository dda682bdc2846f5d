//! Issue 3, devices and scripts built for the legacy "ESP32 OTA Update Server": the requests are
//! those of that server's devices (docs/protocols.md §4; docs/seed1-compat.md §1, its sketch's
//! check: stock HTTPClient GET, HTTP/1.1, `X-Device-Auth` only, `hardware` url-encoded with `+`,
//! `mac` not encoded; its download: plain GET of `firmware_url`, needs 200 + Content-Length),
//! docs/seed1-compat.md §3 (evaluation order table) and §5 (admin API shapes).

use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;
use crate::field_wire::{md5_hex, send};

const SECRET: &str = "bench-secret";
const MAC: &str = "24:6F:28:AA:BB:CC";
/// djb2 seed 0 over "246F28AABBCC" + secret, as the deployed firmware prints it
/// (docs/seed1-compat.md §3).
const TOKEN: &str = "fa4c71ab";

async fn legacy_app() -> TestApp {
    TestApp::start_with(|s| s.legacy_device_secret = Some(SECRET.into())).await
}

async fn check(app: &TestApp, query: &str, auth: Option<&str>) -> (u16, Value) {
    let mut req = app
        .http
        .get(format!("{}/api/firmware?{query}", app.base))
        .header("User-Agent", "ESP32HTTPClient");
    if let Some(a) = auth {
        req = req.header("X-Device-Auth", a);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn q(version: &str) -> String {
    format!("device_id=PanicAlarm_BBCC&hardware=FireBeetle+2+ESP32-E&version={version}&mac={MAC}")
}

async fn upload(app: &TestApp, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    let r = app
        .http
        .post(app.url("/admin/api/firmware"))
        .header("X-Admin-API-Key", ADMIN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .header("X-Admin-API-Key", ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn legacy_device_updates_from_check_to_confirmed() {
    let app = legacy_app().await;
    let mut events = Events::open(&app).await;
    let img = app_image(Chip::Esp32, "PanicButton", "1.3.8", 120_000);
    let (status, up) = upload(&app, "PanicButton_v1.3.8.bin", img.clone()).await;
    assert_eq!(status, 200, "{up}");
    let base = app.base.clone();
    assert_eq!(
        up,
        json!({"filename": "PanicButton_v1.3.8.bin", "checksum": md5_hex(&img), "size": img.len(),
               "success": true, "url": format!("{base}/firmware/PanicButton_v1.3.8.bin")})
    );
    let (status, created) = admin(&app, reqwest::Method::POST, "/admin/api/devices", Some(json!({
        "mac_address": "24:6f:28:aa:bb:cc", "device_id": "PanicAlarm_BBCC", "hardware_version": "1.0",
        "target_version": "1.3.8", "firmware_url": up["url"], "checksum": up["checksum"]}))).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["success"], true);
    assert_eq!(created["mac_address"], MAC);
    assert_eq!(created["device"]["target_version"], "1.3.8");
    assert_eq!(created["device"]["checksum"], md5_hex(&img));

    let (status, body) = check(&app, &q("1.3.7"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    let url = format!("{base}/firmware/PanicButton_v1.3.8.bin?device=246F28AABBCC");
    assert_eq!(
        body,
        json!({"update_available": true, "firmware_version": "1.3.8", "firmware_url": url,
               "checksum": md5_hex(&img)}),
        "exactly the legacy keys; checksum is 32 lowercase hex"
    );
    let d = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(d["weak_auth"], true, "the forgeable scheme is marked");
    assert_eq!(d["protocol"], "legacy");
    assert_eq!(d["version"], "1.3.7");

    // The download: no auth header, 200 only, Content-Length.
    let r = app
        .http
        .get(&url)
        .header("User-Agent", "ESP32HTTPClient")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        img.len().to_string().as_str()
    );
    assert_eq!(r.headers()["x-md5"], md5_hex(&img).as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), img.as_slice());
    let inst = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "installing")
        .await;
    assert_eq!(inst["update"]["bytes_sent"], img.len());

    let (status, body) = check(&app, &q("1.3.8"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"update_available": false, "firmware_version": null, "firmware_url": null, "checksum": null})
    );
    events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "done")
        .await;
    // The documented token form (seed 5381, %08X) is accepted too.
    assert_eq!(check(&app, &q("1.3.8"), Some("559525B0")).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn legacy_check_follows_the_evaluation_order_and_changes_nothing() {
    let app = legacy_app().await;
    let cases: Vec<(&str, Option<&str>, u16, Value)> = vec![
        (
            "device_id=a&hardware=b&version=1",
            Some(TOKEN),
            422,
            json!({"detail": [{"loc": ["query", "mac"], "msg": "field required", "type": "value_error.missing"}]}),
        ),
        (
            "mac=zz",
            None,
            401,
            json!({"error": "Authentication header required"}),
        ),
        (
            "mac=zz",
            Some(TOKEN),
            400,
            json!({"error": "Invalid MAC address format"}),
        ),
    ];
    for (query, auth, status, body) in cases {
        assert_eq!(check(&app, query, auth).await, (status, body), "{query}");
    }
    let wrong = check(&app, &q("1.3.7"), Some("deadbeef")).await;
    assert_eq!(wrong, (401, json!({"error": "Authentication failed"})));
    let padded = check(&app, &q("1.3.7"), Some("0fa4c71ab")).await;
    assert_eq!(
        padded.0, 401,
        "a zero-padded seed-0 token is refused, as by the original"
    );
    let (status, body) = check(&app, &format!("mac={MAC}&version=1"), Some(TOKEN)).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"].as_array().unwrap().len(),
        2,
        "device_id and hardware: {body}"
    );
    let empty = format!("device_id=&hardware=x&version=1&mac={MAC}");
    assert_eq!(check(&app, &empty, Some(TOKEN)).await.0, 400);
    assert_eq!(
        check(&app, &q("1.3.7-beta"), Some(TOKEN)).await,
        (400, json!({"error": "Invalid version format"}))
    );
    assert_eq!(
        check(&app, &q("1.3.7"), Some(TOKEN)).await,
        (403, json!({"error": "Device not authorized"})),
        "a valid token for a MAC nobody added: no auto-registration"
    );
    assert_eq!(
        app.get_json("/api/v1/devices").await,
        json!([]),
        "nothing was registered"
    );
    app.stop().await;
}

#[tokio::test]
async fn legacy_api_is_off_without_a_secret() {
    let app = TestApp::start().await;
    let (status, body) = check(&app, &q("1.3.7"), Some(TOKEN)).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--legacy-device-secret"),
        "{body}"
    );
    assert_eq!(app.get_json("/api/v1/devices").await, json!([]));
    app.stop().await;
}

#[tokio::test]
async fn legacy_firmware_route_refuses_traversal_and_unknown_names() {
    let app = legacy_app().await;
    let img = app_image(Chip::Esp32, "PanicButton", "1.3.8", 20_000);
    upload(&app, "PanicButton_v1.3.8.bin", img).await;
    for path in [
        "/firmware/%2E%2E",
        "/firmware/..%2Fotafleet.db",
        "/firmware/%2E%2E%5Cadmin-token",
    ] {
        let r = send(&app, &format!("GET {path} HTTP/1.0\r\nHost: {}", app.addr)).await;
        assert_eq!(r.status, 400, "{path}");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, json!({"error": "Invalid filename"}));
    }
    let r = app
        .http
        .get(app.url("/firmware/nope.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "Firmware file not found"})
    );
    app.stop().await;
}

#[tokio::test]
async fn legacy_admin_refusals() {
    let app = legacy_app().await;
    let r = app
        .http
        .get(app.url("/admin/api/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "APIKey");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "API key is required"})
    );
    let r = app
        .http
        .get(app.url("/admin/api/devices"))
        .header("X-Admin-API-Key", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Invalid API key"})
    );

    let (status, body) = upload(&app, "notes.bin", b"hello, not an image".to_vec()).await;
    assert_eq!(
        status, 422,
        "non-images are refused by the importer: {body}"
    );
    assert!(body["detail"].as_str().is_some());
    assert_eq!(
        admin(&app, reqwest::Method::GET, "/admin/api/firmware", None).await,
        (200, json!([]))
    );

    let img = app_image(Chip::Esp32, "PanicButton", "1.3.8", 20_000);
    let (_, up) = upload(&app, "PanicButton_v1.3.8.bin", img).await;
    let dev = |mac: &str, checksum: &str| {
        json!({"mac_address": mac, "device_id": "x",
        "target_version": "1.3.8", "firmware_url": "http://elsewhere/fw.bin", "checksum": checksum})
    };
    let (status, body) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/api/devices",
        Some(dev(MAC, &"0".repeat(32))),
    )
    .await;
    assert_eq!(
        status, 422,
        "an assignment must name a library image: {body}"
    );
    let (status, _) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/api/devices",
        Some(dev(MAC, up["checksum"].as_str().unwrap())),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/api/devices",
        Some(dev(MAC, up["checksum"].as_str().unwrap())),
    )
    .await;
    assert_eq!(
        (status, body),
        (409, json!({"detail": "Device already exists"}))
    );
    let (status, body) = admin(
        &app,
        reqwest::Method::DELETE,
        "/admin/api/firmware/PanicButton_v1.3.8.bin",
        None,
    )
    .await;
    assert_eq!(status, 409, "a deployed image is not deleted: {body}");
    let (status, body) = admin(
        &app,
        reqwest::Method::GET,
        "/admin/api/firmware/PanicButton_v1.3.8.bin/info",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["checksum"], up["checksum"]);
    let (status, body) = admin(&app, reqwest::Method::GET, "/admin/api/devices/zz", None).await;
    assert_eq!(
        (status, body),
        (400, json!({"detail": "Invalid MAC address format"}))
    );
    let (status, list) = admin(&app, reqwest::Method::GET, "/admin/api/devices", None).await;
    assert_eq!(status, 200);
    assert_eq!(list[MAC]["target_version"], "1.3.8");
    assert_eq!(
        admin(
            &app,
            reqwest::Method::DELETE,
            &format!("/admin/api/devices/{MAC}"),
            None
        )
        .await,
        (200, json!({"success": true}))
    );
    app.stop().await;
}
