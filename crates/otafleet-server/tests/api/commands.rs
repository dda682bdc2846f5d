//! Commands (issue 15): the admin queues, lists and cancels; a native device fetches (long poll)
//! and answers with its own token; stock devices are refused with the reason; everything else is
//! refused and changes nothing.

use std::time::Duration;

use otafleet_server::conn::ConnLimits;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{checkin_body, Events, TestApp};

const A: &str = "24:6F:28:00:00:C1";
const B: &str = "24:6F:28:00:00:C2";
const STOCK: &str = "24:0A:C4:A3:15:C3";

async fn enrol(app: &TestApp, mac: &str) -> String {
    let (status, c) = app.checkin(None, checkin_body(mac, "1.0.0", None)).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["commands_pending"], 0, "{c}");
    c["token"].as_str().unwrap().to_string()
}

async fn queue(app: &TestApp, mac: &str, body: Value) -> (u16, Value) {
    let r = app
        .admin(Method::POST, &format!("/api/v1/devices/{mac}/commands"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn queued(app: &TestApp, mac: &str, body: Value) -> Value {
    let (status, c) = queue(app, mac, body).await;
    assert_eq!(status, 201, "{c}");
    c
}

async fn fetch(app: &TestApp, token: Option<&str>, wait: u64) -> (u16, Value) {
    let mut req = app
        .http
        .get(app.url(&format!("/api/v1/device/commands?wait={wait}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn ack(app: &TestApp, token: Option<&str>, id: &Value, body: Value) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(&format!("/api/v1/device/commands/{id}")))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn listed(app: &TestApp, mac: &str) -> Value {
    app.get_json(&format!("/api/v1/devices/{mac}/commands"))
        .await
}

async fn state_of(app: &TestApp, mac: &str, id: &Value) -> String {
    listed(app, mac).await["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| &c["id"] == id)
        .map(|c| c["state"].as_str().unwrap().to_string())
        .expect("listed")
}

#[tokio::test]
async fn a_restart_goes_queued_sent_done_with_events_and_history() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    let mut events = Events::open(&app).await;
    let c = queued(&app, A, json!({"kind": "restart"})).await;
    assert_eq!(c["state"], "queued");
    assert_eq!(c["mac"], A);
    assert_eq!(c["actor"], "admin");
    assert!(c["payload"].is_null() && c["key"].is_null());
    let id = c["id"].clone();
    events
        .wait_for(|n, v| {
            n == "command" && v["command"]["id"] == id && v["command"]["state"] == "queued"
        })
        .await;

    // The check-in tells the device.
    let (_, ci) = app
        .checkin(Some(&token), checkin_body(A, "1.0.0", None))
        .await;
    assert_eq!(ci["commands_pending"], 1, "{ci}");

    let (status, got) = fetch(&app, Some(&token), 0).await;
    assert_eq!(status, 200, "{got}");
    let cmds = got["commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0]["id"], id);
    assert_eq!(cmds[0]["kind"], "restart");
    assert!(cmds[0]["expires_at"].as_str().unwrap().ends_with('Z'));
    events
        .wait_for(|n, v| {
            n == "command" && v["command"]["id"] == id && v["command"]["state"] == "sent"
        })
        .await;
    assert_eq!(state_of(&app, A, &id).await, "sent");
    // Sent but not answered: delivered again.
    let (_, again) = fetch(&app, Some(&token), 0).await;
    assert_eq!(again["commands"][0]["id"], id);

    let (status, done) = ack(
        &app,
        Some(&token),
        &id,
        json!({"state": "done", "result": "rebooting"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "done");
    assert_eq!(done["result"], "rebooting");
    assert!(done["sent_at"].is_string() && done["finished_at"].is_string());
    events
        .wait_for(|n, v| {
            n == "command" && v["command"]["id"] == id && v["command"]["state"] == "done"
        })
        .await;
    // The same answer again is fine; another is refused.
    let (status, _) = ack(&app, Some(&token), &id, json!({"state": "done"})).await;
    assert_eq!(status, 200);
    let (status, e) = ack(&app, Some(&token), &id, json!({"state": "failed"})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("command_finished")),
        "{e}"
    );
    assert_eq!(state_of(&app, A, &id).await, "done");

    let (_, ci) = app
        .checkin(Some(&token), checkin_body(A, "1.0.0", None))
        .await;
    assert_eq!(ci["commands_pending"], 0, "{ci}");
    let (_, empty) = fetch(&app, Some(&token), 0).await;
    assert_eq!(empty, json!({"commands": []}));
}

#[tokio::test]
async fn failed_and_rejected_answers_and_every_kind_are_kept_newest_first() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    let log = queued(&app, A, json!({"kind": "log", "payload": {"on": true}})).await;
    let custom = queued(
        &app,
        A,
        json!({"kind": "custom", "key": "blink", "payload": {"times": 3}, "expires_in_s": 60}),
    )
    .await;
    queued(&app, A, json!({"kind": "config"})).await;
    queued(&app, A, json!({"kind": "update_abort"})).await;
    let (_, got) = fetch(&app, Some(&token), 0).await;
    let cmds = got["commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 4, "oldest first: {got}");
    assert_eq!(cmds[0]["payload"], json!({"on": true}));
    assert_eq!(cmds[1]["key"], "blink");
    assert_eq!(cmds[1]["payload"], json!({"times": 3}));
    assert_eq!(cmds[3]["kind"], "update_abort");

    let (status, f) = ack(
        &app,
        Some(&token),
        &log["id"],
        json!({"state": "failed", "result": "no log sink"}),
    )
    .await;
    assert_eq!((status, f["state"].as_str()), (200, Some("failed")), "{f}");
    let (status, r) = ack(
        &app,
        Some(&token),
        &custom["id"],
        json!({"state": "rejected", "result": "unknown key blink"}),
    )
    .await;
    assert_eq!(
        (status, r["state"].as_str()),
        (200, Some("rejected")),
        "{r}"
    );

    let list = listed(&app, A).await;
    assert!(list["unsupported"].is_null(), "{list}");
    let states: Vec<&str> = list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["sent", "sent", "rejected", "failed"],
        "newest first"
    );
    let (status, _) = ack(&app, Some(&token), &log["id"], json!({"state": "done"})).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn the_admin_cancels_queued_or_sent_commands_only() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    let c = queued(&app, A, json!({"kind": "restart"})).await;
    let cancel = |id: Value| {
        let app = &app;
        async move {
            let r = app
                .admin(
                    Method::POST,
                    &format!("/api/v1/devices/{A}/commands/{id}/cancel"),
                )
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = cancel(c["id"].clone()).await;
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    let (_, got) = fetch(&app, Some(&token), 0).await;
    assert_eq!(
        got["commands"],
        json!([]),
        "a cancelled command is not delivered"
    );
    let (status, e) = cancel(c["id"].clone()).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("command_finished")),
        "{e}"
    );

    // Sent, then cancelled: the device's late answer is refused.
    let s = queued(&app, A, json!({"kind": "config"})).await;
    fetch(&app, Some(&token), 0).await;
    let (status, _) = cancel(s["id"].clone()).await;
    assert_eq!(status, 200);
    let (status, e) = ack(&app, Some(&token), &s["id"], json!({"state": "done"})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("command_finished")),
        "{e}"
    );
    assert_eq!(state_of(&app, A, &s["id"]).await, "cancelled");

    let (status, _) = cancel(json!(99_999)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_unanswered_command_expires_and_is_never_listed_as_queued_after() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    let mut events = Events::open(&app).await;
    let c = queued(&app, A, json!({"kind": "restart", "expires_in_s": 10})).await;
    let id = c["id"].clone();
    let expires_at = c["expires_at"].as_str().unwrap().to_string();
    // Listed `queued` until it is due, `expired` from then on (before the sweep writes it, too).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = state_of(&app, A, &id).await;
        if state == "expired" {
            break;
        }
        assert_eq!(state, "queued");
        assert!(
            tokio::time::Instant::now() < deadline,
            "not expired after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The sweep writes it and publishes it.
    let v = events
        .wait_for(|n, v| {
            n == "command" && v["command"]["id"] == id && v["command"]["state"] == "expired"
        })
        .await;
    assert_eq!(v["command"]["finished_at"], expires_at.as_str());
    assert_eq!(state_of(&app, A, &id).await, "expired");
    let (_, got) = fetch(&app, Some(&token), 0).await;
    assert_eq!(got["commands"], json!([]));
    let (status, e) = ack(&app, Some(&token), &id, json!({"state": "done"})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("command_finished"))
    );
    let (_, ci) = app
        .checkin(Some(&token), checkin_body(A, "1.0.0", None))
        .await;
    assert_eq!(ci["commands_pending"], 0);
}

#[tokio::test]
async fn stock_and_unknown_devices_are_refused_with_the_reason() {
    let app = TestApp::start().await;
    // An Arduino HTTPUpdate device checks in (as tests/api/field_arduino.rs does).
    let r = app
        .http
        .get(app.url("/ota/arduino"))
        .header("User-Agent", "ESP32-http-Update")
        .header("x-ESP32-STA-MAC", STOCK)
        .header("x-ESP32-free-space", "1310720")
        .header("x-ESP32-sketch-size", "1006448")
        .header("x-ESP32-sketch-md5", "0123456789abcdef0123456789abcdef")
        .header("x-ESP32-chip-size", "4194304")
        .header("x-ESP32-mode", "sketch")
        .header("x-ESP32-version", "0.0.1")
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() < 500, "{}", r.status());
    let d = app.get_json(&format!("/api/v1/devices/{STOCK}")).await;
    assert_eq!(d["protocol"], "arduino", "{d}");

    let (status, e) = queue(&app, STOCK, json!({"kind": "restart"})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("commands_unsupported")),
        "{e}"
    );
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("HTTPUpdate") && msg.contains("no command channel"),
        "{msg}"
    );
    let list = listed(&app, STOCK).await;
    assert_eq!(list["unsupported"].as_str(), Some(msg));
    assert_eq!(list["commands"], json!([]));

    // A device the admin added, never seen.
    let r = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({"mac": B}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (status, e) = queue(&app, B, json!({"kind": "restart"})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("commands_unsupported")),
        "{e}"
    );
    let (status, _) = queue(&app, "24:6F:28:00:00:FF", json!({"kind": "restart"})).await;
    assert_eq!(status, 404);

    // Bulk: each device gets its own result; the stock one says why.
    let token = enrol(&app, A).await;
    let r = app
        .admin(Method::POST, "/api/v1/commands")
        .json(&json!({"macs": [A, STOCK, "24:6f:28:00:00:ff"], "kind": "custom", "key": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let res: Value = r.json().await.unwrap();
    let res = res.as_array().unwrap();
    assert_eq!(res.len(), 3);
    assert_eq!(res[0]["mac"], A);
    assert_eq!(res[0]["command"]["state"], "queued");
    assert!(res[0]["error"].is_null());
    assert_eq!(res[1]["error"]["code"], "commands_unsupported");
    assert_eq!(res[1]["error"]["message"], msg);
    assert_eq!(res[2]["error"]["code"], "not_found");
    let (_, got) = fetch(&app, Some(&token), 0).await;
    assert_eq!(got["commands"][0]["key"], "ping");
    // A bad command fails the whole call, and nothing is queued.
    let r = app
        .admin(Method::POST, "/api/v1/commands")
        .json(&json!({"macs": [A], "kind": "log"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        listed(&app, A).await["commands"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn bad_commands_are_refused_with_what_to_change_and_nothing_is_queued() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    for (body, code) in [
        (json!({"kind": "reboot"}), "invalid_fields"),
        (json!({"kind": "custom"}), "key_required"),
        (json!({"kind": "custom", "key": "a b"}), "invalid_key"),
        (json!({"kind": "restart", "key": "x"}), "key_not_allowed"),
        (
            json!({"kind": "restart", "payload": {"x": 1}}),
            "payload_not_allowed",
        ),
        (
            json!({"kind": "log", "payload": {"on": "yes"}}),
            "invalid_payload",
        ),
        (
            json!({"kind": "restart", "expires_in_s": 5}),
            "invalid_expires_in",
        ),
        (
            json!({"kind": "restart", "expires_in_s": 86_401}),
            "invalid_expires_in",
        ),
    ] {
        let (status, e) = queue(&app, A, body.clone()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (422, Some(code)),
            "{body}: {e}"
        );
    }
    assert_eq!(listed(&app, A).await["commands"], json!([]));
    let c = queued(&app, A, json!({"kind": "restart"})).await;
    let (status, e) = ack(
        &app,
        Some(&token),
        &c["id"],
        json!({"state": "done", "result": "x".repeat(4097)}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("result_too_long"))
    );
    let (status, _) = ack(&app, Some(&token), &c["id"], json!({"state": "sent"})).await;
    assert_eq!(status, 422);
    let (status, e) = fetch(&app, Some(&token), 26).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_wait"))
    );
    assert_eq!(state_of(&app, A, &c["id"]).await, "queued");
}

#[tokio::test]
async fn hostile_callers_are_refused_and_change_nothing() {
    let app = TestApp::start().await;
    let token_a = enrol(&app, A).await;
    let token_b = enrol(&app, B).await;
    let c = queued(&app, A, json!({"kind": "restart"})).await;
    let id = c["id"].clone();

    // Device routes: no token, a wrong one.
    let (status, e) = fetch(&app, None, 0).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("token_required"))
    );
    let (status, e) = fetch(&app, Some("not-a-token"), 0).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("token_unknown"))
    );
    let (status, _) = ack(&app, None, &id, json!({"state": "done"})).await;
    assert_eq!(status, 401);
    let (status, _) = ack(&app, Some("not-a-token"), &id, json!({"state": "done"})).await;
    assert_eq!(status, 401);
    // The admin token is no device token.
    let (status, _) = fetch(&app, Some(crate::common::ADMIN), 0).await;
    assert_eq!(status, 401);
    // Another device's token: it never sees A's command, and cannot answer it.
    let (status, got) = fetch(&app, Some(&token_b), 0).await;
    assert_eq!((status, got["commands"].clone()), (200, json!([])));
    let (status, e) = ack(&app, Some(&token_b), &id, json!({"state": "done"})).await;
    assert_eq!(status, 404, "another device's command: {e}");
    assert_eq!(state_of(&app, A, &id).await, "queued");

    // A device token on the admin routes.
    for (m, path, body) in [
        (
            Method::POST,
            format!("/api/v1/devices/{A}/commands"),
            Some(json!({"kind": "restart"})),
        ),
        (Method::GET, format!("/api/v1/devices/{A}/commands"), None),
        (
            Method::POST,
            format!("/api/v1/devices/{A}/commands/{id}/cancel"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/commands".to_string(),
            Some(json!({"macs": [A], "kind": "restart"})),
        ),
    ] {
        for t in [Some(token_a.as_str()), None] {
            let mut req = app.http.request(m.clone(), app.url(&path));
            if let Some(t) = t {
                req = req.bearer_auth(t);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{m} {path} with {t:?}");
        }
    }
    // Cancel through another device's path: 404.
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/devices/{B}/commands/{id}/cancel"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(state_of(&app, A, &id).await, "queued");
    assert_eq!(
        listed(&app, A).await["commands"].as_array().unwrap().len(),
        1
    );
    let (_, got) = fetch(&app, Some(&token_a), 0).await;
    assert_eq!(got["commands"][0]["id"], id);
}

#[tokio::test]
async fn a_long_poll_is_answered_when_a_command_is_queued_and_empty_when_none_is() {
    // A header timeout shorter than the wait: the long poll is a request in progress, never cut.
    let app = TestApp::start_limited(ConnLimits {
        header_timeout: Duration::from_secs(1),
        ..ConnLimits::default()
    })
    .await;
    let token = enrol(&app, A).await;
    let (status, empty) = fetch(&app, Some(&token), 2).await;
    assert_eq!((status, empty), (200, json!({"commands": []})));

    let mut events = Events::open(&app).await;
    let poll = {
        let http = app.http.clone();
        let url = app.url("/api/v1/device/commands?wait=25");
        let token = token.clone();
        tokio::spawn(async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    // Queue while it waits: wait for the condition first (the core says who is waiting).
    wait_for_waiters(&app, 1).await;
    let c = queued(&app, A, json!({"kind": "custom", "key": "wake"})).await;
    let (status, got) = tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .expect("answered once the command was queued")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(got["commands"][0]["id"], c["id"]);
    events
        .wait_for(|n, v| {
            n == "command" && v["command"]["id"] == c["id"] && v["command"]["state"] == "sent"
        })
        .await;
}

/// Wait until `n` devices have a long poll waiting.
async fn wait_for_waiters(app: &TestApp, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.fleet.commands_waiting() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no long poll waiting"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_waiting_long_poll_is_answered_empty_when_the_server_shuts_down() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    let poll = {
        let http = app.http.clone();
        let url = app.url("/api/v1/device/commands?wait=25");
        tokio::spawn(async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    wait_for_waiters(&app, 1).await;
    // Graceful shutdown waits for requests in progress: the poll must not hold it for 25 s.
    tokio::time::timeout(Duration::from_secs(15), app.stop())
        .await
        .expect("the server stops without waiting out the long poll");
    let (status, got) = poll.await.unwrap();
    assert_eq!((status, got), (200, json!({"commands": []})));
}

#[tokio::test]
async fn a_remembered_check_in_answer_learns_of_a_new_command() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    // The same report again and again: answered from memory (hot.rs) after the first.
    for _ in 0..3 {
        let (_, ci) = app
            .checkin(Some(&token), checkin_body(A, "1.0.0", None))
            .await;
        assert_eq!(ci["commands_pending"], 0);
    }
    queued(&app, A, json!({"kind": "restart"})).await;
    queued(&app, A, json!({"kind": "config"})).await;
    for _ in 0..3 {
        let (_, ci) = app
            .checkin(Some(&token), checkin_body(A, "1.0.0", None))
            .await;
        assert_eq!(ci["commands_pending"], 2, "{ci}");
    }
    let (_, got) = fetch(&app, Some(&token), 0).await;
    for c in got["commands"].as_array().unwrap() {
        let (status, _) = ack(&app, Some(&token), &c["id"], json!({"state": "done"})).await;
        assert_eq!(status, 200);
    }
    for _ in 0..3 {
        let (_, ci) = app
            .checkin(Some(&token), checkin_body(A, "1.0.0", None))
            .await;
        assert_eq!(ci["commands_pending"], 0, "{ci}");
    }
    // And again after a quiet spell.
    queued(&app, A, json!({"kind": "update_abort"})).await;
    let (_, ci) = app
        .checkin(Some(&token), checkin_body(A, "1.0.0", None))
        .await;
    assert_eq!(ci["commands_pending"], 1, "{ci}");
}

#[tokio::test]
async fn the_audit_log_names_the_command_kind_but_never_its_key_or_payload() {
    let app = TestApp::start().await;
    enrol(&app, A).await;
    queued(
        &app,
        A,
        json!({"kind": "custom", "key": "secret-door", "payload": {"pin": "4711"}}),
    )
    .await;
    let rows = app.get_json("/api/v1/audit?action=queue_command").await;
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["target"], format!("mac={A}"));
    assert_eq!(row["detail"]["values"]["kind"], "custom", "{row}");
    let text = row.to_string();
    assert!(
        !text.contains("4711") && !text.contains("secret-door"),
        "{text}"
    );
}
