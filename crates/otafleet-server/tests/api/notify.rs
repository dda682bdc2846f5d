//! Notifications: device reports fanned out by webhook and e-mail, against real receivers started
//! here — an HTTP server on 127.0.0.1:0 that checks every delivery's signature, and an SMTP
//! server (Python's aiosmtpd, as a subprocess) that writes each mail it takes to a directory,
//! plain, with STARTTLS required, or over TLS, with a certificate from a private CA (rcgen).
//! Retries run on a shortened back-off (`Settings::notify_retry_base`), never on sleeps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use otafleet_core::notify::{signature, DELIVERY_HEADER, SIGNATURE_HEADER};
use serde_json::{json, Value};

use crate::common::{checkin_body, Events, TestApp};

const A: &str = "24:6F:28:00:00:C1";
const B: &str = "24:6F:28:00:00:C2";
const SECRET: &str = "whsec-test-3f9a1c";
const SMTP_PASSWORD: &str = "smtp-pass-77e1b0";

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Hit {
    body: Value,
    signature_ok: bool,
}

#[derive(Clone)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Answer 500 to this many requests first, then 200.
    fail_first: usize,
}

/// A webhook receiver on 127.0.0.1:0 that checks the HMAC of every request with [`SECRET`].
async fn webhook_receiver(fail_first: usize) -> (SocketAddr, Arc<Mutex<Vec<Hit>>>) {
    async fn take(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let sent = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let signature_ok = sent == signature(SECRET, &body);
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(
            headers.get(DELIVERY_HEADER).and_then(|v| v.to_str().ok()),
            Some(body["delivery_id"].to_string().as_str())
        );
        let mut hits = r.hits.lock().unwrap();
        hits.push(Hit { body, signature_ok });
        if hits.len() <= r.fail_first {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }
    let hits = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(take))
        .with_state(Receiver {
            hits: hits.clone(),
            fail_first,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

fn fast(s: &mut otafleet_core::Settings) {
    s.notify_retry_base = Duration::from_millis(20);
}

async fn enrol(app: &TestApp, mac: &str) -> String {
    let (status, c) = app.checkin(None, checkin_body(mac, "1.0.0", None)).await;
    assert_eq!(status, 200, "{c}");
    c["token"].as_str().unwrap().to_string()
}

async fn report(app: &TestApp, token: &str, mac: &str, kind: &str, subject: &str) -> Value {
    let r = app
        .http
        .post(app.url("/api/v1/device/report"))
        .bearer_auth(token)
        .json(&json!({"mac": mac, "type": kind, "subject": subject,
            "body": format!("details of {subject}"), "device_time": "2026-12-06T05:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn patch_settings(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .admin(reqwest::Method::PATCH, "/api/v1/settings")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    app.get_json(&format!("/api/v1/deliveries{query}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Poll the delivery log until `done` holds (the dispatcher runs on its own; nothing to sleep on).
async fn wait_deliveries(
    app: &TestApp,
    query: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = deliveries(app, query).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries {query} never got there: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn webhook_settings(addr: SocketAddr) -> Value {
    json!({"notify": {"webhook": {"url": format!("http://{addr}/hook"), "secret": SECRET}}})
}

#[tokio::test]
async fn notify_webhook_is_retried_with_backoff_and_every_attempt_is_signed() {
    let (addr, hits) = webhook_receiver(2).await;
    let app = TestApp::start_with(fast).await;
    let (status, s) = patch_settings(&app, webhook_settings(addr)).await;
    assert_eq!(status, 200, "{s}");
    let w = &s["notify"]["webhook"];
    assert_eq!(
        w["types"],
        json!(["warn", "error"]),
        "default: errors and warnings"
    );
    assert_eq!(w["secret"], json!({"set": true}));
    assert_eq!(w["enabled"], true);

    let token = enrol(&app, A).await;
    // An info report is not among the webhook's types: nothing is queued for it.
    let info = report(&app, &token, A, "info", "booted").await;
    let err = report(&app, &token, A, "error", "sensor bus stuck").await;
    let q = format!("?report_id={}", err["id"]);
    let rows = wait_deliveries(&app, &q, |r| r.len() == 1 && r[0]["state"] == "delivered").await;
    let d = &rows[0];
    assert_eq!(d["channel"], "webhook");
    assert_eq!(d["attempts"], 3, "two 500s, then 200: {d}");
    assert_eq!(d["last_status"], 200);
    assert_eq!(d["recipient"], format!("http://{addr}/hook"));
    assert!(deliveries(&app, &format!("?report_id={}", info["id"]))
        .await
        .is_empty());

    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 3, "{hits:#?}");
    for (i, h) in hits.iter().enumerate() {
        assert!(
            h.signature_ok,
            "attempt {} carries a valid signature",
            i + 1
        );
        assert_eq!(h.body["attempt"], i as i64 + 1);
        assert_eq!(h.body["delivery_id"], d["id"]);
        assert_eq!(h.body["test"], false);
        let r = &h.body["report"];
        assert_eq!(r["report_id"], err["id"]);
        assert_eq!(r["mac"], A);
        assert_eq!(r["type"], "error");
        assert_eq!(r["subject"], "sensor bus stuck");
        assert_eq!(r["body"], "details of sensor bus stuck");
        assert_eq!(r["device_time"], "2026-12-06T05:00:00Z");
        assert_eq!(r["received_at"], err["received_at"]);
    }
    app.stop().await;
}

#[tokio::test]
async fn notify_webhook_gives_up_after_the_last_attempt() {
    let (addr, hits) = webhook_receiver(usize::MAX).await;
    let app = TestApp::start_with(|s| s.notify_retry_base = Duration::from_millis(1)).await;
    assert_eq!(patch_settings(&app, webhook_settings(addr)).await.0, 200);
    let token = enrol(&app, A).await;
    let err = report(&app, &token, A, "warn", "low heap").await;
    let rows = wait_deliveries(&app, &format!("?report_id={}", err["id"]), |r| {
        r.len() == 1 && r[0]["state"] == "failed"
    })
    .await;
    let max = otafleet_core::notify::MAX_ATTEMPTS;
    assert_eq!(rows[0]["attempts"], max);
    assert_eq!(rows[0]["last_status"], 500);
    assert_eq!(hits.lock().unwrap().len() as i64, max);
    assert_eq!(deliveries(&app, "?state=failed").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn notify_a_queued_delivery_survives_a_restart() {
    let (addr, hits) = webhook_receiver(0).await;
    // This server queues but does not send: the delivery is on disk, pending, when it stops.
    let app = TestApp::start_with(|s| s.send_notifications = false).await;
    assert_eq!(patch_settings(&app, webhook_settings(addr)).await.0, 200);
    let token = enrol(&app, A).await;
    let err = report(&app, &token, A, "error", "watchdog reset").await;
    let q = format!("?report_id={}", err["id"]);
    let rows = deliveries(&app, &q).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "pending");
    assert_eq!(rows[0]["attempts"], 0);

    let app = app.restart_with(fast).await;
    let rows = wait_deliveries(&app, &q, |r| r[0]["state"] == "delivered").await;
    assert_eq!(rows[0]["attempts"], 1);
    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].signature_ok);
    assert_eq!(hits[0].body["report"]["subject"], "watchdog reset");
    app.stop().await;
}

#[tokio::test]
async fn notify_a_pending_delivery_goes_only_where_the_settings_still_say() {
    let (addr, hits) = webhook_receiver(0).await;
    let app = TestApp::start_with(|s| s.send_notifications = false).await;
    assert_eq!(patch_settings(&app, webhook_settings(addr)).await.0, 200);
    let token = enrol(&app, A).await;
    let first = report(&app, &token, A, "error", "queued for the old URL").await;
    // The URL changes while the delivery waits: the old URL gets nothing.
    let moved = json!({"notify": {"webhook": {"url": format!("http://{addr}/hook?v=2")}}});
    assert_eq!(patch_settings(&app, moved).await.0, 200);
    let second = report(&app, &token, A, "error", "queued for the new URL").await;
    let app = app.restart_with(fast).await;
    let rows = wait_deliveries(&app, "", |r| {
        r.len() == 2 && r.iter().all(|d| d["state"] != "pending")
    })
    .await;
    assert_eq!(rows[0]["report_id"], second["id"]);
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(rows[1]["report_id"], first["id"]);
    assert_eq!(rows[1]["state"], "failed");
    assert!(rows[1]["last_error"]
        .as_str()
        .unwrap()
        .contains("URL changed"));
    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].body["report"]["subject"], "queued for the new URL");
    app.stop().await;
}

#[tokio::test]
async fn notify_settings_are_validated_as_a_whole() {
    let app = TestApp::start().await;
    for (body, code) in [
        (
            json!({"notify": {"webhook": {"url": "ftp://x/y", "secret": "s"}}}),
            "invalid_webhook_url",
        ),
        (
            json!({"notify": {"webhook": {"url": "https://h.example/x"}}}),
            "invalid_notify_secret",
        ),
        (
            json!({"notify": {"webhook": {"url": "https://h.example/x", "secret": "s", "types": []}}}),
            "invalid_notify_types",
        ),
        (
            json!({"notify": {"smtp": {"host": "smtp.example.com", "from": "a@example.com", "to": ["not-an-address"]}}}),
            "invalid_email_address",
        ),
        (
            json!({"notify": {"smtp": {"host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"], "max_per_hour": 0}}}),
            "invalid_smtp",
        ),
        // One bad part refuses the whole change, the good part too.
        (
            json!({"open_enrolment": false, "notify": {"webhook": {"url": "https://h.example/x", "secret": "s"}, "smtp": {"host": "smtp.example.com"}}}),
            "invalid_smtp",
        ),
    ] {
        let (status, v) = patch_settings(&app, body.clone()).await;
        assert_eq!(status, 422, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    let s = app.get_json("/api/v1/settings").await;
    assert_eq!(s["notify"], json!({"webhook": null, "smtp": null}));
    assert_eq!(s["open_enrolment"], true);
    // A channel removed with null.
    let (status, _) = patch_settings(
        &app,
        json!({"notify": {"webhook": {"url": "https://h.example/x", "secret": "s"}}}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, s) = patch_settings(&app, json!({"notify": {"webhook": null}})).await;
    assert_eq!(status, 200);
    assert_eq!(s["notify"]["webhook"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn notify_hostile_callers_are_refused_and_secrets_never_leave() {
    let (addr, _hits) = webhook_receiver(0).await;
    let app = TestApp::start_with(fast).await;
    let token = enrol(&app, A).await;
    let (status, _) = patch_settings(
        &app,
        json!({"notify": {
            "webhook": {"url": format!("http://{addr}/hook"), "secret": SECRET},
            "smtp": {"host": "127.0.0.1", "port": 9, "security": "none", "username": "ota",
                     "password": SMTP_PASSWORD, "from": "ota@example.com", "to": ["ops@example.com"],
                     "enabled": false}}}),
    )
    .await;
    assert_eq!(status, 200);
    let before = app.get_json("/api/v1/settings").await;

    // No token, a device token: refused before anything runs, nothing changed.
    for auth in [None, Some(token.as_str())] {
        let with = |r: reqwest::RequestBuilder| match auth {
            Some(t) => r.bearer_auth(t),
            None => r,
        };
        let r = with(app.http.get(app.url("/api/v1/deliveries")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = with(app.http.post(app.url("/api/v1/settings/notify/test")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = with(app.http.patch(app.url("/api/v1/settings")))
            .json(&json!({"notify": {"webhook": null, "smtp": null}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(app.get_json("/api/v1/settings").await, before);

    report(&app, &token, A, "error", "flash write failed").await;
    wait_deliveries(&app, "", |r| r.len() == 1 && r[0]["state"] == "delivered").await;
    // The test send answers per target; the SMTP one (port 9, nothing there) fails and says so.
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/settings/notify/test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let results = t["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{t}");
    assert_eq!(results[0]["channel"], "webhook");
    assert_eq!(results[0]["delivered"], true, "{t}");
    assert_eq!(results[1]["channel"], "email");
    assert_eq!(results[1]["delivered"], false, "{t}");
    assert!(results[1]["error"].as_str().is_some_and(|e| !e.is_empty()));

    // Nowhere the secrets were entered do they come back.
    let shown = [
        app.get_json("/api/v1/settings").await,
        app.get_json("/api/v1/audit").await,
        Value::Array(deliveries(&app, "").await),
        t,
    ];
    for v in &shown {
        let text = v.to_string();
        assert!(!text.contains(SECRET), "webhook secret leaked: {text}");
        assert!(
            !text.contains(SMTP_PASSWORD),
            "SMTP password leaked: {text}"
        );
    }
    assert_eq!(shown[0]["notify"]["smtp"]["password"], json!({"set": true}));
    let csv = app
        .admin(reqwest::Method::GET, "/api/v1/audit?format=csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!csv.contains(SECRET) && !csv.contains(SMTP_PASSWORD));
    app.stop().await;
}

// --- e-mail -------------------------------------------------------------------------------------

/// An SMTP server (aiosmtpd) on a free loopback port that writes each mail it takes to `dir` as
/// JSON `{from, to, data}`; it ends with the test (its stdin closes, and it is killed on drop).
/// Arguments: the directory, then `plain`, or `starttls`/`tls` with a certificate and key file
/// (`starttls`: the server refuses mail before STARTTLS; `tls`: TLS from the first byte).
const SMTP_SINK: &str = r#"
import asyncio, itertools, json, os, ssl, sys, threading
from aiosmtpd.smtp import SMTP
out, mode = sys.argv[1], sys.argv[2]
ctx = None
if mode != "plain":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
seq = itertools.count()
class Sink:
    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(out, "%04d.json" % next(seq))
        with open(path + ".tmp", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "data": envelope.content.decode("utf-8", "replace")}, f)
        os.rename(path + ".tmp", path)
        return "250 OK"
def watch_stdin():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=watch_stdin, daemon=True).start()
async def main():
    loop = asyncio.get_running_loop()
    if mode == "starttls":
        factory = lambda: SMTP(Sink(), hostname="localhost", tls_context=ctx, require_starttls=True)
    else:
        factory = lambda: SMTP(Sink(), hostname="localhost")
    srv = await loop.create_server(factory, "127.0.0.1", 0, ssl=ctx if mode == "tls" else None)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"#;

struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpSink {
    fn mails(&self) -> Vec<Value> {
        mails(self.dir.path())
    }
}

fn mails(dir: &Path) -> Vec<Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// The Python that has aiosmtpd: Debian's, else the first `python3`; `None` when neither has it.
fn python_with_aiosmtpd() -> Option<String> {
    ["/usr/bin/python3", "python3"].into_iter().find_map(|py| {
        std::process::Command::new(py)
            .args(["-c", "import aiosmtpd"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| py.to_string())
    })
}

/// Start the SMTP sink, or say SKIPPED (never under CI, which installs aiosmtpd:
/// scripts/setup-deps).
async fn smtp_sink(test: &str) -> Option<SmtpSink> {
    smtp_sink_with(test, &[]).await
}

/// [`smtp_sink`] with the sink's mode arguments after the directory (`plain` when empty).
async fn smtp_sink_with(test: &str, mode: &[&std::ffi::OsStr]) -> Option<SmtpSink> {
    let Some(py) = python_with_aiosmtpd() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI must run the e-mail tests, but no python3 has aiosmtpd (scripts/setup-deps installs python3-aiosmtpd)"
        );
        eprintln!("SKIPPED {test}: no python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
        return None;
    };
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(py)
        .args(["-c", SMTP_SINK])
        .arg(dir.path())
        .args(if mode.is_empty() {
            vec![std::ffi::OsStr::new("plain")]
        } else {
            mode.to_vec()
        })
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start aiosmtpd");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("aiosmtpd says its port")
    .unwrap();
    let port = line.trim().parse().expect("a port number");
    Some(SmtpSink {
        port,
        dir,
        _child: child,
    })
}

fn smtp_settings(port: u16, max_per_hour: u32) -> Value {
    // security none: the sink speaks plain SMTP (STARTTLS is not exercised by these tests).
    json!({"notify": {"smtp": {"host": "127.0.0.1", "port": port, "security": "none",
        "from": "otafleet <ota@example.com>", "to": ["ops@example.com"], "types": ["error"],
        "max_per_hour": max_per_hour}}})
}

#[tokio::test]
async fn notify_email_an_error_report_arrives_as_a_mail() {
    let test = "notify_email_an_error_report_arrives_as_a_mail";
    let Some(sink) = smtp_sink(test).await else {
        return;
    };
    let app = TestApp::start_with(fast).await;
    let (status, s) = patch_settings(&app, smtp_settings(sink.port, 10)).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["notify"]["smtp"]["password"], json!({"set": false}));
    let token = enrol(&app, A).await;
    let mut events = Events::open(&app).await;
    report(
        &app,
        &token,
        A,
        "warn",
        "not mailed: warn is not among the types",
    )
    .await;
    let err = report(&app, &token, A, "error", "OTA partition corrupt").await;
    // The UI follows each delivery live: queued, then delivered.
    let ev = events
        .wait_for(|name, v| name == "delivery" && v["delivery"]["state"] == "delivered")
        .await;
    assert_eq!(ev["delivery"]["report_id"], err["id"]);
    let rows = wait_deliveries(&app, &format!("?report_id={}", err["id"]), |r| {
        r.len() == 1 && r[0]["state"] == "delivered"
    })
    .await;
    assert_eq!(rows[0]["channel"], "email");
    assert_eq!(rows[0]["recipient"], "ops@example.com");
    assert_eq!(rows[0]["attempts"], 1);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let m = &mails[0];
    assert_eq!(m["to"], json!(["ops@example.com"]));
    assert_eq!(m["from"], "ota@example.com");
    let data = m["data"].as_str().unwrap();
    assert!(
        data.contains(&format!(
            "Subject: [otafleet] error from {A}: OTA partition corrupt"
        )),
        "{data}"
    );
    assert!(data.contains("details of OTA partition corrupt"), "{data}");
    assert_eq!(
        deliveries(&app, "").await.len(),
        1,
        "the warn was not queued"
    );
    app.stop().await;
}

#[tokio::test]
async fn notify_email_rate_limit_per_recipient() {
    let test = "notify_email_rate_limit_per_recipient";
    let Some(sink) = smtp_sink(test).await else {
        return;
    };
    let app = TestApp::start_with(fast).await;
    assert_eq!(
        patch_settings(&app, smtp_settings(sink.port, 2)).await.0,
        200
    );
    let a = enrol(&app, A).await;
    let b = enrol(&app, B).await;
    report(&app, &a, A, "error", "one").await;
    report(&app, &b, B, "error", "two").await;
    let third = report(&app, &a, A, "error", "three").await;
    let rows = wait_deliveries(&app, "", |r| {
        r.len() == 3 && r.iter().all(|d| d["state"] != "pending")
    })
    .await;
    let states: Vec<&str> = rows.iter().map(|d| d["state"].as_str().unwrap()).collect();
    assert_eq!(
        states,
        ["rate_limited", "delivered", "delivered"],
        "newest first"
    );
    assert_eq!(rows[0]["report_id"], third["id"]);
    assert_eq!(rows[0]["attempts"], 0, "never sent");
    assert!(rows[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("rate limit"));
    assert_eq!(deliveries(&app, "?state=rate_limited").await.len(), 1);
    let mails = sink.mails();
    assert_eq!(mails.len(), 2, "the third mail was held back: {mails:#?}");
    app.stop().await;
}

/// A private CA and a certificate it signed for 127.0.0.1: (CA PEM, certificate PEM, key PEM).
fn private_ca() -> (String, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "otafleet test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn notify_email_over_starttls_and_tls_with_a_private_ca() {
    let test = "notify_email_over_starttls_and_tls_with_a_private_ca";
    let (ca, cert, key) = private_ca();
    let files = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    for security in ["starttls", "tls"] {
        let Some(sink) = smtp_sink_with(
            test,
            &[
                security.as_ref(),
                cert_file.as_os_str(),
                key_file.as_os_str(),
            ],
        )
        .await
        else {
            return;
        };
        let smtp = |port: u16| {
            json!({"notify": {"smtp": {"host": "127.0.0.1", "port": port, "security": security,
                "from": "ota@example.com", "to": ["ops@example.com"], "types": ["error"]}}})
        };
        // A server that does not trust the CA sends nothing: the test send says why.
        let untrusting = TestApp::start_with(fast).await;
        assert_eq!(patch_settings(&untrusting, smtp(sink.port)).await.0, 200);
        let r: Value = untrusting
            .admin(reqwest::Method::POST, "/api/v1/settings/notify/test")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["results"][0]["delivered"], false, "{security}: {r}");
        let why = r["results"][0]["error"].as_str().unwrap().to_lowercase();
        assert!(
            why.contains("certificate") || why.contains("issuer"),
            "{security}: {why}"
        );
        assert!(
            sink.mails().is_empty(),
            "{security}: nothing went out in the clear"
        );
        untrusting.stop().await;

        let ca = ca.clone();
        let app = TestApp::start_with(move |s| {
            fast(s);
            s.notify_extra_roots = vec![ca];
        })
        .await;
        assert_eq!(patch_settings(&app, smtp(sink.port)).await.0, 200);
        let token = enrol(&app, A).await;
        let err = report(&app, &token, A, "error", "secure mail").await;
        wait_deliveries(&app, &format!("?report_id={}", err["id"]), |r| {
            r.len() == 1 && r[0]["state"] == "delivered"
        })
        .await;
        let mails = sink.mails();
        assert_eq!(mails.len(), 1, "{security}");
        assert!(mails[0]["data"].as_str().unwrap().contains("secure mail"));
        app.stop().await;
    }
}

#[tokio::test]
async fn notify_starttls_is_required_never_skipped() {
    let test = "notify_starttls_is_required_never_skipped";
    // A plain server that offers no STARTTLS: a channel set to starttls sends it nothing.
    let Some(sink) = smtp_sink(test).await else {
        return;
    };
    let app = TestApp::start().await;
    let (status, _) = patch_settings(
        &app,
        json!({"notify": {"smtp": {"host": "127.0.0.1", "port": sink.port, "security": "starttls",
            "from": "ota@example.com", "to": ["ops@example.com"]}}}),
    )
    .await;
    assert_eq!(status, 200);
    let r: Value = app
        .admin(reqwest::Method::POST, "/api/v1/settings/notify/test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["results"][0]["delivered"], false, "{r}");
    assert!(sink.mails().is_empty());
    app.stop().await;
}
