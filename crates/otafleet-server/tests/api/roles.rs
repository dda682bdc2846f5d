//! Roles and named API tokens (docs/access.md).
//!
//! The matrix test is generated from the server's own `openapi.json`: every operation is called
//! with no token, with a token of each role and with a scoped token, and each answer must be what
//! the operation's declared least role (`x-min-role`) says. An operation the document adds later
//! is covered without touching this file; one that declares no role fails the test.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const ROLES: [&str; 4] = ["viewer", "operator", "admin", "owner"];

async fn make_token(app: &TestApp, name: &str, role: &str, scope: Option<&str>) -> (i64, String) {
    let r = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": name, "role": role, "scope": scope}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "token {name}");
    let body: Value = r.json().await.unwrap();
    (
        body["token"]["id"].as_i64().unwrap(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

fn rank(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap()
}

/// A request to an operation of the document, its path parameters filled with values that name
/// nothing (so an allowed call answers 404 or 422 and changes nothing).
fn request(app: &TestApp, method: &str, path: &str) -> reqwest::RequestBuilder {
    let path = path
        .replace("{mac}", "02:00:00:00:99:99")
        .replace("{id}", "999999")
        .replace("{name}", "no-such-project")
        .replace("{sha256}", &"0".repeat(64))
        .replace("{update_id}", "999999")
        .replace("{file}", "x.bin");
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let with_body = matches!(method, Method::POST | Method::PATCH | Method::PUT);
    let r = app.http.request(method, app.url(&path));
    if with_body {
        r.json(&json!({}))
    } else {
        r
    }
}

#[tokio::test]
async fn every_operation_answers_each_role_as_its_declared_least_role_says() {
    let app = TestApp::start().await;
    let mut tokens = Vec::new();
    for role in ROLES {
        tokens.push((
            role,
            make_token(&app, &format!("matrix-{role}"), role, None)
                .await
                .1,
        ));
    }
    let (_, scoped) = make_token(&app, "matrix-ci", "operator", Some("upload:blink")).await;
    let doc = app.public_json("/api/v1/openapi.json").await;
    let mut admin_ops = 0;
    let mut other_ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let secured_by_admin = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("admin").is_some()));
            let Some(min) = op["x-min-role"].as_str() else {
                assert!(
                    !secured_by_admin,
                    "{id} ({method} {path}) takes the admin token but declares no x-min-role"
                );
                other_ops.push((id.to_owned(), path.clone()));
                continue;
            };
            assert!(
                secured_by_admin,
                "{id} declares a role but no admin security"
            );
            assert!(ROLES.contains(&min), "{id}: unknown role {min}");
            admin_ops += 1;

            let r = request(&app, method, path).send().await.unwrap();
            assert_eq!(r.status(), 401, "{id} without a token");

            for (role, secret) in &tokens {
                let r = request(&app, method, path)
                    .bearer_auth(secret)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                if rank(role) < rank(min) {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    assert_eq!(status, 403, "{id} ({min}) as {role}: {body}");
                    assert_eq!(body["error"]["code"], "role_insufficient", "{id} as {role}");
                } else {
                    assert!(
                        status != 401 && status != 403,
                        "{id} ({min}) as {role} was refused: {status}"
                    );
                }
            }
            let r = request(&app, method, path)
                .bearer_auth(&scoped)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            if ["upload_firmware", "whoami"].contains(&id) {
                assert!(
                    status != 401 && status != 403,
                    "{id} as the CI token: {status}"
                );
            } else {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert_eq!(status, 403, "{id} as the CI token: {body}");
                assert_eq!(body["error"]["code"], "token_scope", "{id} as the CI token");
            }
        }
    }
    // The document is the whole API: admin operations are most of it, and the rest are the
    // devices' and the public ones, which take no admin token at all.
    assert!(admin_ops >= 50, "only {admin_ops} admin operations found");
    for (id, path) in &other_ops {
        assert!(
            path.starts_with("/api/v1/device/")
                || path.starts_with("/api/device/")
                || path.starts_with("/api/v1/auth/")
                || ["health", "tls", "tls_ca_pem"].contains(&id.as_str()),
            "{id} ({path}) is neither an admin, a device nor a public operation"
        );
    }
    eprintln!(
        "{admin_ops} admin operations checked against {} roles and a scoped token; {} device and public operations",
        ROLES.len(),
        other_ops.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_token_is_shown_once_stored_hashed_listed_with_its_use_and_revocable() {
    let app = TestApp::start().await;
    let (id, secret) = make_token(&app, "grafana", "viewer", None).await;
    assert!(secret.starts_with("otf_"), "{secret}");
    let r = app
        .http
        .get(app.url("/api/v1/me"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        me,
        json!({"actor": "token:grafana", "role": "viewer", "scope": null, "csrf": null,
            "organisation": {"id": "default", "name": "Default", "device_path": null}})
    );

    let list = app.get_json("/api/v1/tokens").await;
    let text = list.to_string();
    assert!(!text.contains(&secret), "the list shows the secret");
    let row = &list.as_array().unwrap()[0];
    assert_eq!(row["name"], "grafana");
    assert_eq!(row["prefix"], secret[..12]);
    assert_eq!(row["created_by"], "admin");
    assert!(row["last_used_at"].is_string(), "last use noted: {row}");

    // Not in the database file either (SQLite: the whole file, with its WAL; the same code
    // writes the same row to PostgreSQL).
    for file in ["otafleet.db", "otafleet.db-wal"] {
        if let Ok(bytes) = std::fs::read(app.dir.path().join(file)) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the secret is stored in {file}"
            );
        }
    }

    let r = app
        .admin(Method::POST, &format!("/api/v1/tokens/{id}/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .get(app.url("/api/v1/devices"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a revoked token still lets in");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "admin_token_invalid");
    // Its name stays taken, so the audit log's `token:grafana` names one token.
    let r = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "grafana", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    app.stop().await;
}

#[tokio::test]
async fn nobody_makes_a_token_above_their_role_and_changes_are_audited_by_token() {
    let app = TestApp::start().await;
    let (_, admin) = make_token(&app, "lab-admin", "admin", None).await;
    let r = app
        .http
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "sneaky", "role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "role_insufficient");
    let r = app
        .http
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "deployer", "role": "operator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for bad in [
        json!({"name": "", "role": "viewer"}),
        json!({"name": "x", "role": "root"}),
        json!({"name": "x", "role": "viewer", "scope": "deploy:blink"}),
    ] {
        let r = app
            .admin(Method::POST, "/api/v1/tokens")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{bad}");
    }
    let audit = app.get_json("/api/v1/audit?action=create_token").await;
    let actors: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(actors.contains(&"token:lab-admin"), "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn an_operator_renames_a_device_but_only_an_admin_resets_its_trust() {
    let app = TestApp::start().await;
    let (_, operator) = make_token(&app, "op", "operator", None).await;
    let (status, _) = app
        .checkin(None, checkin_body("02:00:00:00:00:01", "1.0.0", None))
        .await;
    assert_eq!(status, 200);
    let patch = |body: Value| {
        app.http
            .patch(app.url("/api/v1/devices/02:00:00:00:00:01"))
            .bearer_auth(&operator)
            .json(&body)
            .send()
    };
    assert_eq!(patch(json!({"name": "bench"})).await.unwrap().status(), 200);
    for body in [
        json!({"reset_token": true}),
        json!({"expect_protocol": "any"}),
    ] {
        let r = patch(body.clone()).await.unwrap();
        assert_eq!(r.status(), 403, "{body}");
    }
    let d = app.get_json("/api/v1/devices/02:00:00:00:00:01").await;
    assert_eq!(d["name"], "bench");
    assert_eq!(d["enrolled"], true, "the refused reset went through: {d}");
    app.stop().await;
}

#[tokio::test]
async fn a_ci_token_uploads_its_own_project_only() {
    let app = TestApp::start().await;
    let (_, ci) = make_token(&app, "ci-blink", "operator", Some("upload:blink")).await;
    let upload = |name: &str, bytes: Vec<u8>| {
        app.http
            .post(app.url("/api/v1/firmware"))
            .query(&[("filename", name)])
            .bearer_auth(&ci)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
    };
    let other = app_image(otafleet_image::Chip::Esp32, "sensor", "1.0.0", 2048);
    let r = upload("sensor.bin", other.clone()).await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "token_scope");
    assert_eq!(app.blob_count(), 0, "a refused upload left its bytes");
    assert_eq!(app.tmp_count(), 0);
    // The same image, once someone else imported it, is still not the CI token's.
    app.upload_ok("sensor.bin", other.clone()).await;
    assert_eq!(upload("sensor.bin", other).await.unwrap().status(), 403);

    let own = app_image(otafleet_image::Chip::Esp32, "blink", "1.0.0", 2048);
    let r = upload("blink.bin", own).await.unwrap();
    assert_eq!(r.status(), 201);
    let fw: Value = r.json().await.unwrap();
    assert_eq!(fw["project"], "blink");
    // Nothing else: not even reading the library.
    let r = app
        .http
        .get(app.url("/api/v1/firmware"))
        .bearer_auth(&ci)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.stop().await;
}
