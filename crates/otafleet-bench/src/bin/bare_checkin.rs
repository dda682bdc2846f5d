//! The check-in baseline: an axum server on the same runtime settings as otafleet's whose
//! `POST /api/v1/device/checkin` reads the JSON body and answers a constant JSON, with no storage.
//! The ratio otafleet / this is the cost of what otafleet does per check-in.

use axum::routing::post;
use axum::Router;

const ANSWER: &str =
    r#"{"device_id":"AA:BB:CC:DD:EE:FF","token":null,"update":null,"checkin_interval_s":60}"#;

async fn checkin(body: axum::body::Bytes) -> ([(&'static str, &'static str); 1], &'static str) {
    // Parse the body as otafleet does, so the baseline is not just an echo of bytes.
    let _: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    ([("content-type", "application/json")], ANSWER)
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18490".into());
    let app = Router::new().route("/api/v1/device/checkin", post(checkin));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!(
        "bare-checkin listening on http://{}",
        listener.local_addr().unwrap()
    );
    axum::serve(listener, app).await.expect("serve");
}
