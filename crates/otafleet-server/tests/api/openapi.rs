//! The OpenAPI document describes every route, and the docs page and health check are public.

use serde_json::json;

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
    assert!(
        paths["/api/v1/firmware/{id}"]["patch"].is_object(),
        "the admin's correction of an image is documented"
    );
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

/// What generated clients are typed from says what the server sends (issue 14): the device list
/// is an array of `Device | DiscoveredHost` told apart by `mac` (a string, or null), every event
/// the stream sends is in the `Event` union, and the new enums are closed sets.
#[tokio::test]
async fn openapi_types_the_device_list_and_events_as_sent() {
    let app = TestApp::start().await;
    let doc = app.public_json("/api/v1/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    let list = &doc["paths"]["/api/v1/devices"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(list["type"], "array", "{list}");
    let item = list["items"]["$ref"].as_str().expect("items by reference");
    let union = &schemas[item.rsplit('/').next().unwrap()];
    let refs: Vec<&str> = union["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("a oneOf: {union}"))
        .iter()
        .map(|s| s["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            "#/components/schemas/Device",
            "#/components/schemas/DiscoveredHost"
        ]
    );
    let host = &schemas["DiscoveredHost"];
    assert_eq!(host["properties"]["mac"]["type"], "null", "{host}");
    assert!(host["required"].as_array().unwrap().contains(&json!("mac")));
    let device = &schemas["Device"];
    assert_eq!(device["properties"]["mac"]["type"], "string");
    for field in [
        "name",
        "name_source",
        "admin_name",
        "reported_name",
        "notes",
        "tags",
        "auth",
    ] {
        assert!(
            device["properties"][field].is_object(),
            "Device lacks {field}"
        );
    }
    for required in ["mac", "tags", "auth"] {
        assert!(
            device["required"]
                .as_array()
                .unwrap()
                .contains(&json!(required)),
            "Device.{required} is always sent"
        );
    }

    let events: Vec<&str> = schemas["Event"]["oneOf"]
        .as_array()
        .expect("Event is a oneOf")
        .iter()
        .flat_map(|v| v["properties"]["type"]["enum"].as_array().unwrap())
        .map(|t| t.as_str().unwrap())
        .collect();
    for name in [
        "device",
        "seen",
        "device_removed",
        "mdns_host",
        "firmware",
        "firmware_removed",
        "deployment",
        "update",
        "report",
        "command",
        "delivery",
        "project",
        "project_removed",
        "device_config",
        "watch_folders",
        "watch",
    ] {
        assert!(
            events.contains(&name),
            "the Event union lacks {name}: {events:?}"
        );
    }
    assert_eq!(
        events.len(),
        16,
        "a new event type is added here and to the UI: {events:?}"
    );

    let values = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is an enum: {}", schemas[name]))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(values("Outcome"), ["pending", "ok", "refused", "failed"]);
    assert_eq!(
        values("UpdateFailure"),
        [
            "device_reported",
            "rolled_back",
            "not_installed",
            "download_cut",
            "superseded",
            "stopped",
            "image_deleted"
        ]
    );
    assert_eq!(
        values("DeviceAuth"),
        [
            "token",
            "api_key",
            "shared_secret",
            "mac",
            "pending_enrolment",
            "unclaimed"
        ]
    );
    assert_eq!(values("NameSource"), ["admin", "reported", "mdns"]);
    assert_eq!(
        values("DeploymentStatus"),
        ["active", "completed", "paused", "stopped"]
    );
    assert_eq!(
        values("MemberState"),
        [
            "waiting",
            "updating",
            "soaking",
            "succeeded",
            "failed",
            "skipped"
        ]
    );
    assert_eq!(values("Preset"), ["canary", "all_at_once", "one_at_a_time"]);
    assert_eq!(
        values("CommandKind"),
        ["restart", "config", "log", "custom", "update_abort"]
    );
    assert_eq!(
        values("CommandState"),
        [
            "queued",
            "sent",
            "done",
            "failed",
            "rejected",
            "expired",
            "cancelled"
        ]
    );
    assert_eq!(
        values("IdentitySource"),
        ["override", "app_desc", "filename", "admin", "none"]
    );
    let update = &schemas["Update"]["properties"]["failure"];
    assert!(update.to_string().contains("UpdateFailure"), "{update}");
    app.stop().await;
}
