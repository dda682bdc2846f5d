//! The web UI at `/`, the read-only settings endpoint, and CORS for the desktop window. Driven
//! in-process (`tower::ServiceExt::oneshot`): none of it needs a socket.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use otafleet_core::{Fleet, Settings};
use otafleet_server::{app, AppState, ServerInfo};
use tower::ServiceExt;

async fn router(info: ServerInfo) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(dir.path().join("data"));
    settings.legacy_device_secret = Some("s3cret".into());
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let fleet = Fleet::open(settings).await.unwrap();
    (
        app(AppState::new(fleet, super::common::ADMIN).with_info(info)),
        dir,
    )
}

async fn cache_control(r: &axum::Router, path: &str) -> String {
    let res = r
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    res.headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn get(r: &axum::Router, path: &str, auth: bool) -> (StatusCode, String, String) {
    let mut req = Request::get(path);
    if auth {
        req = req.header("authorization", format!("Bearer {}", super::common::ADMIN));
    }
    let res = r
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn without_a_ui_the_root_is_a_placeholder() {
    let (r, _d) = router(ServerInfo::default()).await;
    let (status, ct, body) = get(&r, "/", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/html"));
    assert!(body.contains("/api/v1/docs"));
}

#[tokio::test]
async fn a_built_ui_is_served_with_index_fallback_but_api_typos_stay_json() {
    let ui = tempfile::tempdir().unwrap();
    std::fs::write(
        ui.path().join("index.html"),
        "<!doctype html><div id=app>UI</div>",
    )
    .unwrap();
    std::fs::create_dir(ui.path().join("assets")).unwrap();
    std::fs::write(ui.path().join("assets/app.js"), "console.log(1)").unwrap();
    let (r, _d) = router(ServerInfo {
        ui_dir: Some(ui.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let (s, _, body) = get(&r, "/", false).await;
    assert_eq!((s, body.contains("UI")), (StatusCode::OK, true));
    let (s, ct, _) = get(&r, "/assets/app.js", false).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.contains("javascript"), "{ct}");
    // A client-side route survives a reload.
    let (s, _, body) = get(&r, "/devices/24:0A:C4:00:00:01", false).await;
    assert_eq!((s, body.contains("UI")), (StatusCode::OK, true));
    let (s, ct, body) = get(&r, "/api/v1/nope", true).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(ct.starts_with("application/json"));
    assert!(body.contains("\"code\":\"not_found\""), "{body}");
    assert_eq!(cache_control(&r, "/").await, "no-cache");
    assert!(cache_control(&r, "/assets/app.js")
        .await
        .contains("immutable"));
    // Real API routes still win over the UI.
    let (s, _, body) = get(&r, "/api/v1/health", false).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn settings_are_admin_only_and_never_reveal_the_legacy_secret() {
    let (r, _d) = router(ServerInfo {
        listen: Some("127.0.0.1:8470".parse().unwrap()),
        ..Default::default()
    })
    .await;
    let (s, _, _) = get(&r, "/api/v1/settings", false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, body) = get(&r, "/api/v1/settings", true).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["listen"], "127.0.0.1:8470");
    assert_eq!(v["legacy_secret_configured"], true);
    assert_eq!(v["checkin_path"], "/api/v1/device/checkin");
    assert_eq!(v["editable"], false);
    assert!(!body.contains("s3cret"));
}

#[tokio::test]
async fn cors_allows_the_tauri_origins_only() {
    let (r, _d) = router(ServerInfo::default()).await;
    for (origin, allowed) in [
        ("tauri://localhost", true),
        ("http://tauri.localhost", true),
        ("http://evil.example", false),
    ] {
        let req = Request::builder()
            .method("OPTIONS")
            .uri("/api/v1/devices")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap();
        let res = r.clone().oneshot(req).await.unwrap();
        let got = res
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(got.as_deref() == Some(origin), allowed, "{origin}: {got:?}");
    }
}
