//! The OpenAPI document describes every route, and the docs page and health check are public.

use crate::common::*;

#[tokio::test]
async fn openapi_lists_the_api_and_docs_render() {
    let app = TestApp::start().await;
    let doc = app.public_json("/api/v1/openapi.json").await;
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/api/v1/firmware",
        "/api/v1/firmware/{id}",
        "/api/v1/devices",
        "/api/v1/devices/{mac}",
        "/api/v1/devices/{mac}/updates",
        "/api/v1/deployments",
        "/api/v1/watch-folders",
        "/api/v1/settings",
        "/api/v1/events",
        "/api/v1/device/checkin",
        "/api/v1/device/progress",
        "/api/v1/device/firmware/{sha256}",
        "/api/v1/health",
    ] {
        assert!(paths.contains_key(p), "OpenAPI lacks {p}");
    }
    // Client generators key operations by operationId: each must be there, and only once.
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str();
            let id = id.unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        }
    }
    assert!(doc["components"]["schemas"]["Firmware"].is_object());
    assert!(doc["components"]["schemas"]["Device"].is_object());
    let page = app
        .http
        .get(app.url("/api/v1/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("openapi.json"));
    let health = app.public_json("/api/v1/health").await;
    assert_eq!(health["status"], "ok");
    app.stop().await;
}
