//! The check-in baseline: an axum server on the same runtime settings as otafleet's that answers
//! each device check with a constant, with no storage:
//!
//! - `POST /api/v1/device/checkin` reads the JSON body and answers a constant JSON (with an
//!   update offer of otafleet's shape when the body's project is `offerbench`, the check row
//!   whose devices are offered an image);
//! - `GET /ota/arduino` (Arduino `HTTPUpdate`) reads the STA MAC header and answers `304`;
//! - `GET /api/firmware` (the "ESP32 OTA Update Server" check) reads the query and the
//!   `X-Device-Auth` header and answers `{"update_available": false, …}`.
//!
//! The ratio otafleet / this is the cost of what otafleet does per check.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;

const ANSWER: &str =
    r#"{"device_id":"AA:BB:CC:DD:EE:FF","token":null,"update":null,"checkin_interval_s":60}"#;
const OFFER: &str = r#"{"device_id":"AA:BB:CC:DD:EE:FF","token":null,"update":{"id":1234,"version":"2.0.0","url":"http://127.0.0.1:18470/api/v1/device/firmware/429cbd877c87514a95221fad68d3e2b35ca9c7b0681ebf7f9551071557045f6e","size":131104,"sha256":"429cbd877c87514a95221fad68d3e2b35ca9c7b0681ebf7f9551071557045f6e","md5":"0a4ad2de4bd4ac4e2e4a7b3e1c6b8d9f"},"checkin_interval_s":60}"#;
const LEGACY: &str =
    r#"{"update_available":false,"firmware_version":null,"firmware_url":null,"checksum":null}"#;

async fn checkin(body: axum::body::Bytes) -> ([(&'static str, &'static str); 1], &'static str) {
    // Parse the body as otafleet does, so the baseline is not just an echo of bytes.
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let answer = if v["project"] == "offerbench" {
        OFFER
    } else {
        ANSWER
    };
    ([("content-type", "application/json")], answer)
}

async fn arduino(headers: HeaderMap) -> StatusCode {
    if headers.contains_key("x-esp32-sta-mac") || headers.contains_key("x-esp8266-sta-mac") {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn legacy(
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    let ok = q.contains_key("mac") && headers.contains_key("x-device-auth");
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    (status, [("content-type", "application/json")], LEGACY)
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18490".into());
    let app = Router::new()
        .route("/api/v1/device/checkin", post(checkin))
        .route("/ota/arduino", get(arduino))
        .route("/api/firmware", get(legacy));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!(
        "bare-checkin listening on http://{}",
        listener.local_addr().unwrap()
    );
    axum::serve(listener, app).await.expect("serve");
}
