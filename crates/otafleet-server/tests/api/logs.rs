//! Live device logs (`POST /api/v1/device/logs`, `GET /api/v1/devices/{mac}/logs[/stream]`): a
//! device sends its own lines with its token; the admin watches; watching is the lease that asks
//! the device to send, and ends soon after the last viewer leaves. Anything else is refused and
//! keeps nothing.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{checkin_body, Events, TestApp};

const A: &str = "24:6F:28:00:10:A1";
const B: &str = "24:6F:28:00:10:B2";
const STOCK: &str = "24:6F:28:00:10:C3";

async fn enrol(app: &TestApp, mac: &str) -> String {
    let (status, c) = app.checkin(None, checkin_body(mac, "1.0.0", None)).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["logs"], false, "nobody watches a new device");
    c["token"].as_str().unwrap().to_string()
}

async fn send(app: &TestApp, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = app.http.post(app.url("/api/v1/device/logs")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn lines(texts: &[&str]) -> Value {
    json!({"lines": texts.iter().map(|t| json!({"level": "info", "scope": "app", "text": t})).collect::<Vec<_>>()})
}

async fn watch(app: &TestApp, mac: &str) -> reqwest::Response {
    app.admin(Method::GET, &format!("/api/v1/devices/{mac}/logs/stream"))
        .send()
        .await
        .unwrap()
}

/// Poll `f` every 100 ms until it holds; fails after `limit`.
async fn until<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn watching_asks_the_device_for_lines_which_arrive_live_and_it_is_told_to_stop_after() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    // A line sent while nobody watches is kept, and the device is told to stop.
    let (status, a) = send(&app, Some(&token), lines(&["booted"])).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a, json!({"logs": false, "accepted": 1}));
    // The same report again is answered from memory from now on.
    let (_, c) = app
        .checkin(Some(&token), checkin_body(A, "1.0.0", None))
        .await;
    assert_eq!(c["logs"], false);

    let mut stream = Events::from_response(watch(&app, A).await);
    let backlog = stream.wait_for(|name, _| name == "lines").await;
    assert_eq!(backlog[0]["text"], "booted", "{backlog}");
    assert_eq!(backlog[0]["seq"], 1);

    // Both check-in paths (a remembered answer and a new report) now ask for lines.
    let (_, c) = app
        .checkin(Some(&token), checkin_body(A, "1.0.0", None))
        .await;
    assert_eq!(c["logs"], true, "remembered answer: {c}");
    let mut other = checkin_body(A, "1.0.0", None);
    other["ip"] = json!("10.0.0.7");
    let (_, c) = app.checkin(Some(&token), other).await;
    assert_eq!(c["logs"], true, "database path: {c}");

    let (status, a) = send(&app, Some(&token), lines(&["wifi up", "sensor 21.5 C"])).await;
    assert_eq!(status, 200);
    assert_eq!(a, json!({"logs": true, "accepted": 2}));
    let live = stream.wait_for(|name, _| name == "lines").await;
    let texts: Vec<&str> = live
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["wifi up", "sensor 21.5 C"]);
    assert_eq!(live[1]["seq"], 3);
    assert_eq!(live[0]["level"], "info");
    assert_eq!(live[0]["scope"], "app");

    let snap = app.get_json(&format!("/api/v1/devices/{A}/logs")).await;
    assert_eq!(snap["watched"], true);
    assert_eq!(snap["lines"].as_array().unwrap().len(), 3);
    let snap = app
        .get_json(&format!("/api/v1/devices/{A}/logs?after=2"))
        .await;
    assert_eq!(snap["lines"].as_array().unwrap().len(), 1);

    // The viewer leaves: within the grace the device keeps sending, then it is told to stop, by
    // the answer to its next batch and by its check-in.
    drop(stream);
    until(
        Duration::from_secs(30),
        "the batch answer says stop",
        || async { send(&app, Some(&token), lines(&["tick"])).await.1["logs"] == false },
    )
    .await;
    let (_, c) = app
        .checkin(Some(&token), checkin_body(A, "1.0.0", None))
        .await;
    assert_eq!(c["logs"], false);
    let snap = app.get_json(&format!("/api/v1/devices/{A}/logs")).await;
    assert_eq!(snap["watched"], false);
    app.stop().await;
}

#[tokio::test]
async fn a_device_sends_only_its_own_lines_and_bad_or_unauthenticated_batches_keep_nothing() {
    let app = TestApp::start().await;
    let token_a = enrol(&app, A).await;
    let token_b = enrol(&app, B).await;

    for (token, why) in [
        (None, "no token"),
        (Some("not-a-token"), "unknown token"),
        (
            Some(super::common::ADMIN),
            "the admin token is no device token",
        ),
    ] {
        let (status, body) = send(&app, token, lines(&["forged"])).await;
        assert_eq!(status, 401, "{why}: {body}");
    }
    // B's token puts lines in B's buffer, whatever it claims.
    let (status, _) = send(&app, Some(&token_b), lines(&["from b"])).await;
    assert_eq!(status, 200);

    for (body, code) in [
        (json!({"lines": []}), "no_lines"),
        (
            json!({"lines": [{"level": "loud", "text": "x"}]}),
            "invalid_level",
        ),
        (
            json!({"lines": [{"level": "info", "text": "x".repeat(1025)}]}),
            "text_too_long",
        ),
        (
            json!({"lines": (0..101).map(|_| json!({"level": "info", "text": "x"})).collect::<Vec<_>>()}),
            "too_many_lines",
        ),
    ] {
        let (status, err) = send(&app, Some(&token_a), body).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["code"], code, "{err}");
    }
    let a = app.get_json(&format!("/api/v1/devices/{A}/logs")).await;
    assert_eq!(a["lines"], json!([]), "nothing kept for A: {a}");
    let b = app.get_json(&format!("/api/v1/devices/{B}/logs")).await;
    assert_eq!(b["lines"][0]["text"], "from b");

    // The admin routes refuse devices and strangers.
    for path in [
        format!("/api/v1/devices/{A}/logs"),
        format!("/api/v1/devices/{A}/logs/stream"),
    ] {
        for token in [None, Some(token_a.as_str())] {
            let mut req = app.http.get(app.url(&path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            assert_eq!(req.send().await.unwrap().status(), 401, "{path}");
        }
    }
    // A device's token watching did not ask it to send.
    let (_, c) = app
        .checkin(Some(&token_a), checkin_body(A, "1.0.0", None))
        .await;
    assert_eq!(c["logs"], false);
    app.stop().await;
}

#[tokio::test]
async fn a_device_that_cannot_send_logs_is_refused_with_the_reason_and_unknown_ones_are_404() {
    let app = TestApp::start().await;
    let r = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({"mac": STOCK}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = watch(&app, STOCK).await;
    assert_eq!(r.status(), 409);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "logs_unsupported");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stock updaters"),
        "{err}"
    );
    let r = watch(&app, "24:6F:28:00:10:FF").await;
    assert_eq!(r.status(), 404);
    let r = app
        .admin(Method::GET, "/api/v1/devices/24:6F:28:00:10:FF/logs")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_device_waiting_for_commands_is_asked_for_its_lines_at_once_when_someone_watches() {
    let app = TestApp::start().await;
    let token = enrol(&app, A).await;
    // The device waits for a command (a long poll) before anyone watches.
    let poll = {
        let req = app
            .http
            .get(app.url("/api/v1/device/commands?wait=20"))
            .bearer_auth(&token);
        tokio::spawn(async move { req.send().await.unwrap().json::<Value>().await.unwrap() })
    };
    let _stream = Events::from_response(watch(&app, A).await);
    let got = poll.await.unwrap();
    let c = &got["commands"][0];
    assert_eq!(c["kind"], "log", "{got}");
    assert_eq!(c["payload"], json!({"on": true}));
    // A second viewer asks nothing more.
    let _second = Events::from_response(watch(&app, A).await);
    let list = app.get_json(&format!("/api/v1/devices/{A}/commands")).await;
    let logs = list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "log")
        .count();
    assert_eq!(logs, 1, "{list}");
    assert_eq!(list["commands"][0]["actor"], "log viewer");
    app.stop().await;
}
