//! Device reports (`POST /api/v1/device/report`, `GET /api/v1/reports`): a device reports about
//! itself with its own token; the admin lists them; anything else is refused and stores nothing.

use otafleet_core::reports::KEEP_PER_DEVICE;
use serde_json::{json, Value};

use crate::common::{checkin_body, Events, TestApp};

const A: &str = "24:6F:28:00:00:A1";
const B: &str = "24:6F:28:00:00:B2";

async fn enrol(app: &TestApp, mac: &str) -> String {
    let (status, c) = app.checkin(None, checkin_body(mac, "1.0.0", None)).await;
    assert_eq!(status, 200, "{c}");
    c["token"].as_str().unwrap().to_string()
}

async fn report(app: &TestApp, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = app.http.post(app.url("/api/v1/device/report")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn listed(app: &TestApp, query: &str) -> Vec<Value> {
    app.get_json(&format!("/api/v1/reports{query}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_device_reports_with_its_token_and_the_admin_lists_it_newest_first() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    let mut events = Events::open(&app).await;
    let (status, first) = report(
        &app,
        Some(&token),
        json!({"mac": A, "type": "warn", "subject": "low heap", "body": "free 12 KiB", "device_time": "2026-12-06T04:00:00Z"}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["type"], "warn");
    assert_eq!(first["mac"], A);
    let ev = events
        .wait_for(|name, v| name == "report" && v["report"]["subject"] == "low heap")
        .await;
    assert_eq!(ev["report"]["mac"], A);
    let (status, _) = report(
        &app,
        Some(&token),
        json!({"mac": A.to_lowercase(), "type": "success", "subject": "booted"}),
    )
    .await;
    assert_eq!(status, 200);

    let all = listed(&app, &format!("?mac={A}")).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["subject"], "booted", "newest first");
    assert_eq!(all[1]["body"], "free 12 KiB");
    assert_eq!(all[1]["device_time"], "2026-12-06T04:00:00Z");
    assert!(all[1]["received_at"].is_string());
    let warns = listed(&app, "?type=warn").await;
    assert_eq!(warns.len(), 1);
    assert_eq!(listed(&app, "?limit=1").await.len(), 1);

    // Admin only.
    let r = app
        .http
        .get(app.url("/api/v1/reports"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn hostile_reporters_are_refused_and_nothing_is_stored() {
    let app = TestApp::start().await;
    let token_a = enrol(&app, A).await;
    let token_b = enrol(&app, B).await;
    let body = |mac: &str| json!({"mac": mac, "type": "error", "subject": "forged"});

    let (status, e) = report(&app, None, body(A)).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("token_required")),
        "{e}"
    );
    let (status, e) = report(&app, Some("not-a-token"), body(A)).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("token_unknown")),
        "{e}"
    );
    let (status, e) = report(&app, Some(&token_b), body(A)).await;
    assert_eq!(status, 404, "another device's token: {e}");
    let (status, e) = report(&app, Some(&token_a), body("24:6F:28:00:00:FF")).await;
    assert_eq!(status, 404, "a MAC not enrolled: {e}");
    let (status, e) = report(&app, None, body("24:6F:28:00:00:FF")).await;
    assert_eq!(status, 401, "{e}");

    assert!(listed(&app, "").await.is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_with_what_to_change_and_nothing_is_stored() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    let cases = [
        (
            json!({"mac": A, "type": "panic", "subject": "x"}),
            "invalid_type",
        ),
        (
            json!({"mac": A, "type": "info", "subject": "   "}),
            "invalid_subject",
        ),
        (
            json!({"mac": A, "type": "info", "subject": "s".repeat(201)}),
            "subject_too_long",
        ),
        (
            json!({"mac": A, "type": "info", "subject": "x", "body": "b".repeat(8 * 1024 + 1)}),
            "body_too_long",
        ),
    ];
    for (body, code) in cases {
        let (status, e) = report(&app, Some(&token), body).await;
        assert_eq!(status, 422, "{e}");
        assert_eq!(e["error"]["code"], code, "{e}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
    }
    // Exactly at the bounds is fine.
    let (status, e) = report(
        &app,
        Some(&token),
        json!({"mac": A, "type": "info", "subject": "é".repeat(200), "body": "b".repeat(8 * 1024)}),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(listed(&app, "").await.len(), 1);
    let r = app
        .admin(reqwest::Method::GET, "/api/v1/reports?limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn each_device_keeps_only_its_newest_reports() {
    let app = TestApp::start().await;
    let token_a = enrol(&app, A).await;
    let token_b = enrol(&app, B).await;
    let (status, _) = report(
        &app,
        Some(&token_b),
        json!({"mac": B, "type": "info", "subject": "b"}),
    )
    .await;
    assert_eq!(status, 200);
    let extra = 3;
    for i in 0..KEEP_PER_DEVICE + extra {
        let (status, e) = report(
            &app,
            Some(&token_a),
            json!({"mac": A, "type": "info", "subject": format!("r{i}")}),
        )
        .await;
        assert_eq!(status, 200, "{e}");
    }
    let kept = listed(&app, &format!("?mac={A}&limit=1000")).await;
    assert_eq!(kept.len() as i64, KEEP_PER_DEVICE);
    assert_eq!(
        kept[0]["subject"],
        format!("r{}", KEEP_PER_DEVICE + extra - 1)
    );
    assert_eq!(kept.last().unwrap()["subject"], format!("r{extra}"));
    assert_eq!(
        listed(&app, &format!("?mac={B}")).await.len(),
        1,
        "another device's reports are untouched"
    );
}
