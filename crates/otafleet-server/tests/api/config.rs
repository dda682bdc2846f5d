//! Per-device config (`/api/v1/devices/{mac}/config`, `/api/v1/device/config`): the admin
//! changes a device's values, the check-in answer's `config_version` moves (also for a device
//! answered from memory), the device reads its config — secrets included, the only place they
//! leave the server — and confirms it; the admin then sees it applied. Secrets never appear in
//! an admin read, the audit log or the event stream; bad values are 422 with nothing changed;
//! the device routes answer only the token's own device.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{checkin_body, Events, TestApp};
use crate::projects::every_type;

const A: &str = "24:6F:28:00:22:A1";
const B: &str = "24:6F:28:00:22:B2";
const SECRET: &str = "s3cret-of-device-a";

async fn enrol(app: &TestApp, mac: &str) -> String {
    let (status, c) = app.checkin(None, checkin_body(mac, "1.0.0", None)).await;
    assert_eq!(status, 200, "{c}");
    c["token"].as_str().unwrap().to_string()
}

async fn config_version(app: &TestApp, mac: &str, token: &str) -> Value {
    let (status, c) = app
        .checkin(Some(token), checkin_body(mac, "1.0.0", None))
        .await;
    assert_eq!(status, 200, "{c}");
    c["config_version"].clone()
}

async fn admin(app: &TestApp, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.admin(m, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn device(
    app: &TestApp,
    m: Method,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(m, app.url("/api/v1/device/config"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Project `blink` (the check-in body's) with a variable of every type.
async fn with_variables(app: &TestApp) {
    let (status, p) = admin(
        app,
        Method::PATCH,
        "/api/v1/projects/blink",
        Some(json!({"variables": every_type()})),
    )
    .await;
    assert_eq!(status, 200, "{p}");
}

#[tokio::test]
async fn config_change_moves_the_checkin_version_device_reads_and_applies_it_secret_stays_hidden() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    assert_eq!(
        config_version(&app, A, &token).await,
        Value::Null,
        "no variables, no config"
    );
    // Everything published from here on, to check no secret is in it.
    let seen = Arc::new(Mutex::new(String::new()));
    let mut events = Events::open(&app).await;

    with_variables(&app).await;
    let v1 = config_version(&app, A, &token).await;
    assert!(v1.is_i64(), "variables now: {v1}");
    // Asked again with the same report: answered from memory, same version.
    assert_eq!(config_version(&app, A, &token).await, v1);

    let (status, c) = admin(
        &app,
        Method::PATCH,
        &format!("/api/v1/devices/{A}/config"),
        Some(json!({"values": {"ssid": "home", "interval_s": 30, "led": false, "wifi_pass": SECRET}})),
    )
    .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["state"], "pending");
    assert!(c["pending_since"].is_string(), "{c}");
    assert_eq!(c["values"]["ssid"], "home");
    assert_eq!(c["values"]["wifi_pass"], json!({"set": true}));
    let v2 = config_version(&app, A, &token).await;
    assert!(
        v2.as_i64() > v1.as_i64(),
        "the remembered answer was forgotten: {v1} -> {v2}"
    );
    assert_eq!(c["version"], v2);

    // The device reads its own config, secret included, and confirms it.
    let (status, got) = device(&app, Method::GET, Some(&token), None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["version"], v2);
    assert_eq!(
        got["values"],
        json!({"ssid": "home", "interval_s": 30, "led": false, "wifi_pass": SECRET})
    );
    let (status, _) = device(
        &app,
        Method::POST,
        Some(&token),
        Some(json!({"version": v2})),
    )
    .await;
    assert_eq!(status, 200);
    let applied = events
        .wait_for(|name, v| {
            seen.lock().unwrap().push_str(&v.to_string());
            name == "device_config" && v["config"]["state"] == "applied"
        })
        .await;
    assert_eq!(applied["config"]["applied_version"], v2);
    let (_, c) = admin(
        &app,
        Method::GET,
        &format!("/api/v1/devices/{A}/config"),
        None,
    )
    .await;
    assert_eq!(c["state"], "applied");
    assert_eq!(c["applied_version"], v2);
    assert_eq!(c["pending_since"], Value::Null);
    let pass = c["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "wifi_pass")
        .unwrap()
        .clone();
    assert_eq!(pass["set"], true);
    assert_eq!(pass["value"], json!({"set": true}));

    // null: back to the default; a new version.
    let (status, c) = admin(
        &app,
        Method::PATCH,
        &format!("/api/v1/devices/{A}/config"),
        Some(json!({"values": {"ssid": null}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(c["values"]["ssid"], "lab");
    assert_eq!(c["state"], "pending");
    assert!(c["version"].as_i64() > v2.as_i64());

    // A version the device was never given.
    let (status, e) = device(
        &app,
        Method::POST,
        Some(&token),
        Some(json!({"version": 999})),
    )
    .await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["error"]["code"], "config_version_unknown");

    // Nowhere in what the admin reads.
    let mut admin_reads = String::new();
    for path in [
        format!("/api/v1/devices/{A}/config"),
        format!("/api/v1/devices/{A}"),
        "/api/v1/devices".to_string(),
        "/api/v1/projects".to_string(),
        "/api/v1/projects/blink".to_string(),
        "/api/v1/audit?limit=10000".to_string(),
    ] {
        admin_reads.push_str(&app.get_json(&path).await.to_string());
    }
    let csv = app
        .admin(Method::GET, "/api/v1/audit.csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    admin_reads.push_str(&csv);
    assert!(
        admin_reads.contains("patch_device_config"),
        "the change is audited"
    );
    for secret in [SECRET, "hunter2-default"] {
        assert!(!admin_reads.contains(secret), "secret in an admin read");
        assert!(!seen.lock().unwrap().contains(secret), "secret in an event");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_config_values_are_422_and_change_nothing() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    with_variables(&app).await;
    let before = config_version(&app, A, &token).await;
    let path = format!("/api/v1/devices/{A}/config");
    for (values, code) in [
        (json!({"interval_s": "30"}), "invalid_config_value"),
        (json!({"interval_s": 1.5}), "invalid_config_value"),
        (json!({"led": "yes"}), "invalid_config_value"),
        (json!({"ssid": 5}), "invalid_config_value"),
        (json!({"wifi_pass": false}), "invalid_config_value"),
        (
            json!({"ssid": "ok", "no_such_key": 1}),
            "unknown_config_key",
        ),
    ] {
        let (status, e) = admin(
            &app,
            Method::PATCH,
            &path,
            Some(json!({ "values": values })),
        )
        .await;
        assert_eq!(status, 422, "{values}: {e}");
        assert_eq!(e["error"]["code"], code, "{values}: {e}");
        if code == "unknown_config_key" {
            assert!(
                e["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("no_such_key"),
                "{e}"
            );
        }
    }
    let (_, c) = admin(&app, Method::GET, &path, None).await;
    assert_eq!(c["values"]["ssid"], "lab", "nothing changed: {c}");
    assert!(c["variables"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["set"] == false));
    assert_eq!(config_version(&app, A, &token).await, before);
    app.stop().await;
}

#[tokio::test]
async fn device_config_routes_answer_only_the_tokens_own_device() {
    let app = TestApp::start().await;
    let a = enrol(&app, A).await;
    let b = enrol(&app, B).await;
    with_variables(&app).await;
    let (status, _) = admin(
        &app,
        Method::PATCH,
        &format!("/api/v1/devices/{A}/config"),
        Some(json!({"values": {"wifi_pass": SECRET}})),
    )
    .await;
    assert_eq!(status, 200);

    for (token, code) in [
        (None, "token_required"),
        (Some("not-a-token"), "token_unknown"),
    ] {
        let (status, e) = device(&app, Method::GET, token, None).await;
        assert_eq!(status, 401, "{e}");
        assert_eq!(e["error"]["code"], code);
        let (status, e) = device(&app, Method::POST, token, Some(json!({"version": 1}))).await;
        assert_eq!(status, 401, "{e}");
    }
    // B's token reads B's config: the default secret, never A's.
    let (status, got) = device(&app, Method::GET, Some(&b), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["values"]["wifi_pass"], "hunter2-default");
    assert!(!got.to_string().contains(SECRET));
    // B confirming a version it was given changes only B.
    let (status, _) = device(
        &app,
        Method::POST,
        Some(&b),
        Some(json!({"version": got["version"]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, ca) = admin(
        &app,
        Method::GET,
        &format!("/api/v1/devices/{A}/config"),
        None,
    )
    .await;
    assert_eq!(ca["state"], "pending");
    assert_eq!(ca["applied_version"], Value::Null);

    // A device token on the admin config routes.
    for m in [Method::GET, Method::PATCH] {
        let r = app
            .http
            .request(m.clone(), app.url(&format!("/api/v1/devices/{A}/config")))
            .bearer_auth(&a)
            .json(&json!({"values": {"ssid": "evil"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m}");
    }
    let (_, ca) = admin(
        &app,
        Method::GET,
        &format!("/api/v1/devices/{A}/config"),
        None,
    )
    .await;
    assert_eq!(ca["values"]["ssid"], "lab");
    app.stop().await;
}

#[tokio::test]
async fn a_device_whose_project_has_no_variables_has_no_config() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    let (status, e) = device(&app, Method::GET, Some(&token), None).await;
    assert_eq!(status, 404, "{e}");
    let (_, c) = admin(
        &app,
        Method::GET,
        &format!("/api/v1/devices/{A}/config"),
        None,
    )
    .await;
    assert_eq!(c["version"], Value::Null);
    assert_eq!(c["state"], Value::Null);
    let (status, e) = admin(
        &app,
        Method::PATCH,
        &format!("/api/v1/devices/{A}/config"),
        Some(json!({"values": {"x": 1}})),
    )
    .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "unknown_config_key");
    app.stop().await;
}
