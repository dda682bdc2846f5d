//! Projects (`/api/v1/projects`): every project name in use is listed; the admin creates and
//! changes projects with typed variables, commands and enrolment; bad input is 422 with nothing
//! changed; a project in use cannot be deleted; secrets are never read back.

use otafleet_image::Chip;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{app_image, checkin_body, TestApp};

const A: &str = "24:6F:28:00:21:A1";

async fn send(app: &TestApp, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.admin(m, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub fn every_type() -> Value {
    json!([
        {"key": "ssid", "type": "string", "description": "Wi-Fi network", "default": "lab"},
        {"key": "interval_s", "type": "int", "default": 60},
        {"key": "led", "type": "bool", "default": true},
        {"key": "wifi_pass", "type": "secret", "default": "hunter2-default"},
    ])
}

#[tokio::test]
async fn project_with_every_variable_type_is_created_listed_changed_and_deleted() {
    let app = TestApp::start().await;
    let (status, p) = send(
        &app,
        Method::POST,
        "/api/v1/projects",
        Some(json!({
            "name": "climate", "description": "greenhouse sensors",
            "enrolment": ["native"],
            "variables": every_type(),
            "commands": [{"key": "blink", "label": "Blink LED", "payload": {"times": 3},
                          "confirmation": "Blink the LED?"}]
        })),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["name"], "climate");
    assert_eq!(p["enrolment"], json!(["native"]));
    let vars = p["variables"].as_array().unwrap();
    assert_eq!(vars.len(), 4);
    assert_eq!(vars[0]["default"], "lab");
    assert_eq!(vars[1]["type"], "int");
    assert_eq!(vars[1]["default"], 60);
    assert_eq!(vars[2]["default"], true);
    assert_eq!(
        vars[3]["default"],
        json!({"set": true}),
        "a secret is never read back"
    );
    assert_eq!(p["commands"][0]["payload"], json!({"times": 3}));
    assert_eq!(p["commands"][0]["confirmation"], "Blink the LED?");
    assert_eq!(p["devices"], 0);

    let (status, _) = send(
        &app,
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "climate"})),
    )
    .await;
    assert_eq!(status, 409);

    // PATCH: a secret sent back as read keeps its stored value; lists replace.
    let mut vars = every_type();
    vars[3]["default"] = json!({"set": true});
    let (status, p) = send(
        &app,
        Method::PATCH,
        "/api/v1/projects/climate",
        Some(json!({"description": "v2", "enrolment": null, "variables": vars, "commands": []})),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["description"], "v2");
    assert_eq!(p["enrolment"], Value::Null);
    assert_eq!(p["commands"], json!([]));
    assert_eq!(p["variables"][3]["default"], json!({"set": true}));

    let listed = app.get_json("/api/v1/projects").await;
    let text = listed.to_string();
    assert!(text.contains("climate"));
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!app
        .get_json("/api/v1/projects/climate")
        .await
        .to_string()
        .contains("hunter2"));

    let (status, _) = send(&app, Method::DELETE, "/api/v1/projects/climate", None).await;
    assert_eq!(status, 204);
    let (status, _) = send(&app, Method::GET, "/api/v1/projects/climate", None).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn bad_project_input_is_422_and_changes_nothing() {
    let app = TestApp::start().await;
    let (status, _) = send(
        &app,
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "p"})),
    )
    .await;
    assert_eq!(status, 201);
    for (body, code) in [
        (
            json!({"variables": [{"key": "9bad", "type": "string"}]}),
            "invalid_key",
        ),
        (
            json!({"variables": [{"key": "n", "type": "int", "default": "5"}]}),
            "invalid_config_value",
        ),
        (
            json!({"variables": [{"key": "b", "type": "bool", "default": 1}]}),
            "invalid_config_value",
        ),
        (
            json!({"variables": [{"key": "a", "type": "int"}, {"key": "a", "type": "bool"}]}),
            "duplicate_key",
        ),
        (
            json!({"enrolment": ["carrier-pigeon"]}),
            "invalid_enrolment",
        ),
        (json!({"enrolment": []}), "invalid_enrolment"),
        (
            json!({"commands": [{"key": "x", "label": ""}]}),
            "invalid_label",
        ),
    ] {
        let (status, e) = send(
            &app,
            Method::PATCH,
            "/api/v1/projects/p",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {e}");
        assert_eq!(e["error"]["code"], code, "{body}: {e}");
    }
    let (status, e) = send(
        &app,
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "no spaces"})),
    )
    .await;
    assert_eq!(status, 422, "{e}");
    let p = app.get_json("/api/v1/projects/p").await;
    assert_eq!(p["variables"], json!([]));
    assert_eq!(p["enrolment"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn projects_named_by_devices_and_images_are_listed_and_cannot_be_deleted_while_used() {
    let app = TestApp::start().await;
    app.upload_ok("x.bin", app_image(Chip::Esp32, "x", "1.0.0", 20_000))
        .await;
    let mut body = checkin_body(A, "1.0.0", None);
    body["project"] = json!("x");
    let (status, _) = app.checkin(None, body).await;
    assert_eq!(status, 200);
    let p = app.get_json("/api/v1/projects/x").await;
    assert_eq!(p["devices"], 1, "{p}");
    assert_eq!(p["images"], 1, "{p}");
    let (status, e) = send(&app, Method::DELETE, "/api/v1/projects/x", None).await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["error"]["code"], "project_in_use");
    assert_eq!(app.get_json("/api/v1/projects/x").await["name"], "x");
    app.stop().await;
}

#[tokio::test]
async fn project_routes_refuse_a_device_token() {
    let app = TestApp::start().await;
    let (_, c) = app.checkin(None, checkin_body(A, "1.0.0", None)).await;
    let token = c["token"].as_str().unwrap();
    for (m, path) in [
        (Method::GET, "/api/v1/projects"),
        (Method::POST, "/api/v1/projects"),
        (Method::PATCH, "/api/v1/projects/blink"),
        (Method::DELETE, "/api/v1/projects/blink"),
    ] {
        let r = app
            .http
            .request(m.clone(), app.url(path))
            .bearer_auth(token)
            .json(&json!({"name": "evil", "description": "evil"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m} {path}");
    }
    let p = app.get_json("/api/v1/projects/blink").await;
    assert_eq!(p["description"], "");
    let (status, _) = send(&app, Method::GET, "/api/v1/projects/evil", None).await;
    assert_eq!(status, 404);
    app.stop().await;
}
