//! Which devices still talk in the clear: every check-in records on the device whether it came
//! over TLS (`tls`), from the `Transport` the connection put on the request. Driven in-process
//! (`tower::ServiceExt::oneshot`) with the extension set as the connection would set it; a
//! request without it (a test calling the router directly) counts as plain HTTP.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use otafleet_core::{Fleet, Settings};
use otafleet_server::conn::Transport;
use otafleet_server::{app, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::common::{checkin_body, TestApp, ADMIN};

const A: &str = "24:0A:C4:00:00:0A";
const B: &str = "24:0A:C4:00:00:0B";
const STOCK: &str = "24:0A:C4:00:00:0C";
const ADDED: &str = "24:0A:C4:00:00:0D";

async fn router() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    (app(AppState::new(fleet, ADMIN)), dir)
}

/// Send `req` as a connection would: from a LAN address, with `transport` when given.
async fn send(
    r: &axum::Router,
    mut req: Request<Body>,
    transport: Option<Transport>,
) -> (StatusCode, Value) {
    let peer: SocketAddr = "192.168.1.50:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    if let Some(t) = transport {
        req.extensions_mut().insert(t);
    }
    let res = r.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn checkin(
    r: &axum::Router,
    mac: &str,
    token: Option<&str>,
    transport: Option<Transport>,
) -> Value {
    let mut req =
        Request::post("/api/v1/device/checkin").header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = Body::from(checkin_body(mac, "1.0.0", None).to_string());
    let (status, answer) = send(r, req.body(body).unwrap(), transport).await;
    assert_eq!(status, StatusCode::OK, "check-in of {mac}: {answer}");
    answer
}

/// The device's `tls` as `GET /api/v1/devices/{mac}` shows it.
async fn tls_of(r: &axum::Router, mac: &str) -> Value {
    let req = Request::get(format!("/api/v1/devices/{mac}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (status, device) = send(r, req, None).await;
    assert_eq!(status, StatusCode::OK, "{device}");
    device["tls"].clone()
}

#[tokio::test]
async fn a_native_check_in_records_whether_it_came_over_tls() {
    let (r, _dir) = router().await;
    let token = checkin(&r, A, None, Some(Transport::Tls)).await["token"]
        .as_str()
        .expect("enrolled")
        .to_owned();
    assert_eq!(tls_of(&r, A).await, json!(true));
    checkin(&r, B, None, None).await;
    assert_eq!(
        tls_of(&r, B).await,
        json!(false),
        "no extension: plain HTTP"
    );

    // A remembered answer does not hide a move: the same report over plain HTTP is recorded.
    checkin(&r, A, Some(&token), Some(Transport::Tls)).await;
    checkin(&r, A, Some(&token), Some(Transport::Plain)).await;
    assert_eq!(tls_of(&r, A).await, json!(false));
    checkin(&r, A, Some(&token), Some(Transport::Tls)).await;
    assert_eq!(tls_of(&r, A).await, json!(true));
}

#[tokio::test]
async fn a_stock_updaters_check_records_it_too_and_an_added_device_is_not_known_yet() {
    let (r, _dir) = router().await;
    let arduino = |transport| {
        let req = Request::get("/ota/arduino")
            .header("x-ESP32-STA-MAC", STOCK)
            .header("x-ESP32-free-space", "1310720")
            .header("x-ESP32-sketch-md5", "0123456789abcdef0123456789abcdef")
            .body(Body::empty())
            .unwrap();
        let r = r.clone();
        async move { send(&r, req, transport).await.0 }
    };
    assert_eq!(
        arduino(Some(Transport::Tls)).await,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(tls_of(&r, STOCK).await, json!(true));
    assert_eq!(arduino(None).await, StatusCode::NOT_MODIFIED);
    assert_eq!(tls_of(&r, STOCK).await, json!(false));

    let req = Request::post("/api/v1/devices")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({ "mac": ADDED }).to_string()))
        .unwrap();
    let (status, added) = send(&r, req, None).await;
    assert!(status.is_success(), "{status}: {added}");
    assert_eq!(
        tls_of(&r, ADDED).await,
        Value::Null,
        "not known until it checks in"
    );
}

#[tokio::test]
async fn a_check_in_over_a_plain_connection_is_recorded_as_plain() {
    let app = TestApp::start().await;
    let (status, _) = app.checkin(None, checkin_body(A, "1.0.0", None)).await;
    assert_eq!(status, 200);
    let device = app.get_json(&format!("/api/v1/devices/{A}")).await;
    assert_eq!(device["tls"], json!(false));
    app.stop().await;
}
