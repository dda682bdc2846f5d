//! Issue 17: staged rollouts over HTTP against the real server — a preset's waves in the dry
//! run and on the deployment, devices of a later wave told why they wait, and pause/resume:
//! the admin's alone (no token, a device's token, a wrong admin token: 401, nothing changed),
//! refused when the state does not allow it (409), a bad reason refused (422).

use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .admin(reqwest::Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_canary_rollout_offers_the_canary_first_and_only_the_admin_pauses_or_resumes_it() {
    let app = TestApp::start().await;
    let fw = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "2.0.0", 20_000),
        )
        .await;
    let mut tokens = Vec::new();
    let macs: Vec<String> = (0..10).map(|i| format!("24:0A:C4:17:00:{i:02X}")).collect();
    for mac in &macs {
        let (status, first) = app.checkin(None, checkin_body(mac, "1.0.0", None)).await;
        assert_eq!(status, 200, "{first}");
        tokens.push(first["token"].as_str().unwrap().to_string());
    }
    let r = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/v1/devices/{}", macs[3]),
        )
        .json(&json!({"tags": ["canary"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The dry run names each wave's devices.
    let body = json!({"firmware_id": fw["id"], "preset": "canary"});
    let (status, dry) = post(&app, "/api/v1/deployments?dry_run=true", body.clone()).await;
    assert_eq!(status, 200, "{dry}");
    let waves = dry["rollout"]["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 4);
    assert_eq!(waves[0]["label"], "tag canary");
    assert_eq!(waves[0]["devices"][0]["mac"], macs[3]);
    let sizes: Vec<usize> = waves
        .iter()
        .map(|w| w["devices"].as_array().unwrap().len())
        .collect();
    // canary 1; up to 10 % of 10 = 1 (the canary already); up to 50 % = 5; the rest.
    assert_eq!(sizes, vec![1, 0, 4, 5]);
    let (status, plan_and_preset) = post(
        &app,
        "/api/v1/deployments",
        json!({"firmware_id": fw["id"], "preset": "canary", "plan": {"waves": [{"by": "percent", "percent": 100}]}}),
    )
    .await;
    assert_eq!(status, 422, "{plan_and_preset}");
    assert_eq!(plan_and_preset["error"]["code"], "invalid_plan");

    let d = app.deploy(body).await;
    let id = d["id"].as_i64().unwrap();
    assert_eq!(d["wave"], 1);
    assert_eq!(d["plan"]["waves"][0]["tag"], "canary");

    // Only the canary is offered; another device hears that it waits for its wave.
    for (i, mac) in macs.iter().enumerate() {
        let (_, c) = app
            .checkin(Some(&tokens[i]), checkin_body(mac, "1.0.0", None))
            .await;
        assert_eq!(c["update"].is_object(), i == 3, "{mac}: {c}");
    }
    let other = &macs[0];
    let target = app
        .get_json(&format!("/api/v1/devices/{other}/target"))
        .await;
    assert_eq!(target["verdict"]["kind"], "waiting_for_wave", "{target}");

    // Pause and resume are the admin's: no token, a device's token, a wrong token — refused,
    // and the rollout is as it was.
    let pause = app.url(&format!("/api/v1/deployments/{id}/pause"));
    let http = reqwest::Client::new();
    for auth in [None, Some(tokens[0].as_str()), Some("not-the-admin-token")] {
        let mut req = http.post(&pause).json(&json!({"reason": "hostile"}));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
    }
    let now = app.get_json(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(now["deployment"]["status"], "active");

    let (status, bad) = post(
        &app,
        &format!("/api/v1/deployments/{id}/pause"),
        json!({"reason": "two\nlines"}),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    let (status, resumed) =
        post(&app, &format!("/api/v1/deployments/{id}/resume"), json!({})).await;
    assert_eq!(status, 409, "not paused: {resumed}");

    let (status, paused) = post(
        &app,
        &format!("/api/v1/deployments/{id}/pause"),
        json!({"reason": "lab power work"}),
    )
    .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["status"], "paused");
    assert_eq!(
        paused["pause_reason"],
        "paused by the admin: lab power work"
    );
    assert_eq!(paused["pause_kind"], "admin");
    // Paused: the canary (not started yet) is told so, not offered.
    let target = app
        .get_json(&format!("/api/v1/devices/{}/target", macs[3]))
        .await;
    assert_eq!(
        target["verdict"]["kind"], "in_progress",
        "an offered attempt stays"
    );
    let (status, again) = post(&app, &format!("/api/v1/deployments/{id}/pause"), json!({})).await;
    assert_eq!(status, 409, "{again}");

    let (status, resumed) = post(
        &app,
        &format!("/api/v1/deployments/{id}/resume"),
        json!({"retry": true}),
    )
    .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["deployment"]["status"], "active");
    assert_eq!(resumed["deployment"]["wave"], 1);
    assert_eq!(resumed["deployment"]["pause_kind"], Value::Null);

    // The admin's pause and resume are in the audit log.
    let audit = app.get_json("/api/v1/audit").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(actions.contains(&"pause_deployment"), "{actions:?}");
    assert!(actions.contains(&"resume_deployment"), "{actions:?}");
    app.stop().await;
}

/// The dry run names the live deployments that share devices with the planned one (the newest
/// wins those devices): a rollout over 4 named devices, then a plan over 2 of them and 2 more
/// names it with the 2 shared; a project-wide plan names both and supersedes neither.
#[tokio::test]
async fn the_dry_run_names_the_rollouts_it_overlaps() {
    let app = TestApp::start().await;
    let fw = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "2.0.0", 20_000),
        )
        .await;
    let macs: Vec<String> = (0..6).map(|i| format!("24:0A:C4:18:00:{i:02X}")).collect();
    for mac in &macs {
        let (status, first) = app.checkin(None, checkin_body(mac, "1.0.0", None)).await;
        assert_eq!(status, 200, "{first}");
    }
    let first = app
        .deploy(json!({"firmware_id": fw["id"], "devices": &macs[0..4], "preset": "one_at_a_time"}))
        .await;
    let (status, dry) = post(
        &app,
        "/api/v1/deployments?dry_run=true",
        json!({"firmware_id": fw["id"], "devices": &macs[2..6]}),
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        dry["overlaps"],
        json!([{"deployment_id": first["id"], "rollout": true, "devices": 2}])
    );
    assert_eq!(dry["supersedes"], json!([]));
    // The dry run changed nothing: the rollout still holds its four devices.
    let d = app
        .get_json(&format!("/api/v1/deployments/{}", first["id"]))
        .await;
    assert_eq!(d["deployment"]["status"], "active");

    // Project-wide: covers all six, and supersedes the rollout (every device of it covered).
    let (_, wide) = post(
        &app,
        "/api/v1/deployments?dry_run=true",
        json!({"firmware_id": fw["id"]}),
    )
    .await;
    assert_eq!(wide["supersedes"], json!([first["id"]]), "{wide}");
    assert_eq!(
        wide["overlaps"],
        json!([]),
        "a superseded one is stopped, not shared"
    );
}
