//! The audit log (issue 15): every admin change leaves exactly one row, with its result; the log
//! is admin-only; a request refused for want of the admin token leaves none; the CSV export is
//! the same rows.

use otafleet_image::Chip;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{app_image, checkin_body, TestApp, ADMIN};

const MAC: &str = "24:6f:28:00:15:01";
const MAC_GONE: &str = "24:6f:28:00:15:02";
const MAC_NEW: &str = "24:6f:28:00:15:03";

/// Every audit row, newest first.
async fn rows(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/v1/audit?limit=10000")
        .await
        .as_array()
        .unwrap()
        .clone()
}

fn max_id(rows: &[Value]) -> i64 {
    rows.iter()
        .map(|r| r["id"].as_i64().unwrap())
        .max()
        .unwrap_or(0)
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

#[tokio::test]
async fn every_admin_change_in_openapi_leaves_exactly_one_audit_row_with_its_result() {
    let app = TestApp::start().await;
    let fw = app
        .upload_ok(
            "climate.bin",
            app_image(Chip::Esp32, "climate", "1.0.0", 20_000),
        )
        .await;
    let fw_gone = app
        .upload_ok(
            "other.bin",
            app_image(Chip::Esp32, "other", "1.0.0", 20_000),
        )
        .await;
    let (_, first) = app.checkin(None, checkin_body(MAC, "0.9.0", None)).await;
    assert!(first["token"].is_string(), "{first}");
    for mac in [MAC_GONE] {
        let r = app
            .admin(Method::POST, "/api/v1/devices")
            .json(&json!({"mac": mac}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let dep = app
        .deploy(json!({"firmware_id": fw["id"], "devices": [MAC], "allow_other_project": true}))
        .await;
    let folder = tempfile::tempdir().unwrap();
    let wf: Value = app
        .admin(Method::POST, "/api/v1/watch-folders")
        .json(&json!({"path": folder.path().display().to_string()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let image = app_image(Chip::Esp32, "climate", "1.2.0", 20_000);
    let command: Value = app
        .admin(Method::POST, &format!("/api/v1/devices/{MAC}/commands"))
        .json(&json!({"kind": "restart"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A project nobody uses (to change and delete), and variables on the device's project (to
    // change its config, with a secret that must not reach the log).
    for body in [json!({"name": "gone"})] {
        let r = app
            .admin(Method::POST, "/api/v1/projects")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = app
        .admin(Method::PATCH, "/api/v1/projects/blink")
        .json(&json!({"variables": [{"key": "wifi_pass", "type": "secret"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let token: Value = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "to revoke", "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let member: Value = app
        .admin(Method::POST, "/api/v1/members")
        .json(&json!({"email": "walked@lab.test", "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let doc = app.public_json("/api/v1/openapi.json").await;
    let mut walked = Vec::new();
    let mut seen = max_id(&rows(&app).await);
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let admin = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("admin").is_some()));
            if !admin || method == "get" || method == "head" || method == "options" {
                continue;
            }
            let op_id = op["operationId"].as_str().unwrap();
            // The body (and the `{id}`) each operation is called with. An operation missing here
            // fails the test: add it, so that no admin route goes unchecked.
            let (id, body) = match op_id {
                "create_deployment" => (None, Body::Json(json!({"firmware_id": fw["id"]}))),
                "stop_deployment" | "stop_deployment_post" | "retry_deployment" => {
                    (Some(&dep["id"]), Body::None)
                }
                "pause_deployment" => (Some(&dep["id"]), Body::Json(json!({"reason": "audited"}))),
                "resume_deployment" => (Some(&dep["id"]), Body::Json(json!({"retry": false}))),
                "rollback_deployment" => (Some(&dep["id"]), Body::Json(json!({}))),
                "create_device" => (None, Body::Json(json!({"mac": MAC_NEW, "name": "porch"}))),
                "patch_device" => (None, Body::Json(json!({"notes": "behind the boiler"}))),
                "delete_device" | "retry_device" | "rollback_device" => (None, Body::None),
                "upload_firmware" => (None, Body::Raw("climate-1.2.0.bin", image.clone())),
                "patch_firmware" => (Some(&fw["id"]), Body::Json(json!({"version": "1.0.1"}))),
                "delete_firmware" => (Some(&fw_gone["id"]), Body::None),
                "patch_settings" => (None, Body::Json(json!({"open_enrolment": true}))),
                "add_watch_folder" => (
                    None,
                    Body::Json(json!({"path": folder.path().display().to_string()})),
                ),
                "remove_watch_folder" => (Some(&wf["id"]), Body::None),
                "queue_command" => (None, Body::Json(json!({"kind": "restart"}))),
                "cancel_command" => (Some(&command["id"]), Body::None),
                "queue_commands_bulk" => (
                    None,
                    Body::Json(json!({"macs": [MAC, MAC_GONE], "kind": "restart"})),
                ),
                // No channel is configured here: the test send sends nothing and answers so.
                "test_notify" => (None, Body::None),
                "create_project" => (None, Body::Json(json!({"name": "audited"}))),
                // Delete walks the same path as patch: "gone" is unused, so it is deleted
                // after it was changed (paths are walked in order, methods too).
                "patch_project" => (None, Body::Json(json!({"description": "walked"}))),
                "delete_project" => (None, Body::None),
                "patch_device_config" => (
                    None,
                    Body::Json(json!({"values": {"wifi_pass": "audit-secret-value"}})),
                ),
                "create_esp_admin_device" => {
                    (None, Body::Json(json!({"name": "esp admin audited"})))
                }
                "create_token" => (
                    None,
                    Body::Json(json!({"name": "audited", "role": "operator"})),
                ),
                "revoke_token" => (Some(&token["token"]["id"]), Body::None),
                "add_member" => (
                    None,
                    Body::Json(json!({"email": "audited@lab.test", "role": "viewer"})),
                ),
                "patch_member" => (Some(&member["id"]), Body::Json(json!({"role": "operator"}))),
                "remove_member" => (Some(&member["id"]), Body::None),
                "set_member_password" => (
                    Some(&member["id"]),
                    Body::Json(json!({"password": "audit-secret-value long"})),
                ),
                "create_organisation" => (
                    None,
                    Body::Json(json!({"id": "audited", "name": "Audited lab"})),
                ),
                other => panic!("add a body for {other} ({method} {path}) to this test's table"),
            };
            let mac = if op_id == "delete_device" {
                MAC_GONE
            } else {
                MAC
            };
            let url = path
                .replace("{id}", &id.map(Value::to_string).unwrap_or_default())
                .replace("{mac}", mac)
                .replace("{name}", "gone");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = app.admin(m.clone(), &url);
            req = match body {
                Body::None => req,
                Body::Json(v) => req.json(&v),
                Body::Raw(name, bytes) => req
                    .query(&[("filename", name)])
                    .header("content-type", "application/octet-stream")
                    .body(bytes),
            };
            let status = req.send().await.unwrap().status().as_u16();

            let all = rows(&app).await;
            let new: Vec<&Value> = all
                .iter()
                .filter(|r| r["id"].as_i64().unwrap() > seen)
                .collect();
            assert_eq!(
                new.len(),
                1,
                "{op_id} ({m} {url}): exactly one row: {new:?}"
            );
            let row = new[0];
            assert_eq!(row["action"], op_id, "{row}");
            assert_eq!(row["method"], m.as_str());
            assert_eq!(row["path"], url.as_str());
            assert_eq!(row["actor"], "admin");
            assert_eq!(row["status"], status, "{op_id}: {row}");
            let outcome = match status {
                200..=399 => "ok",
                400..=499 => "refused",
                _ => "failed",
            };
            assert_eq!(row["outcome"], outcome, "{op_id}: {row}");
            if url.contains(mac) {
                let target = row["target"].as_str().unwrap_or_default();
                assert!(
                    target.split(',').any(|t| t == format!("mac={mac}")),
                    "{op_id}: {row}"
                );
            }
            let text = row.to_string();
            assert!(!text.contains(ADMIN), "no token in the log: {text}");
            assert!(
                !text.contains("audit-secret-value"),
                "no secret in the log: {text}"
            );
            assert!(
                !text.contains("behind the boiler"),
                "notes stored by name only: {text}"
            );
            seen = max_id(&all);
            walked.push(op_id.to_owned());
        }
    }
    for op in [
        "upload_firmware",
        "patch_firmware",
        "delete_firmware",
        "create_deployment",
        "stop_deployment",
        "patch_device",
        "patch_settings",
        "queue_command",
        "cancel_command",
        "queue_commands_bulk",
    ] {
        assert!(
            walked.iter().any(|w| w == op),
            "{op} was not walked: {walked:?}"
        );
    }
    // What a row says about the body: field names, and the value of harmless fields only.
    let all = rows(&app).await;
    let find = |action: &str| all.iter().find(|r| r["action"] == action).unwrap().clone();
    assert_eq!(
        find("patch_firmware")["detail"]["values"]["version"],
        "1.0.1"
    );
    assert_eq!(find("patch_device")["detail"]["fields"], json!(["notes"]));
    assert!(find("patch_device")["detail"].get("values").is_none());
    assert_eq!(
        find("upload_firmware")["detail"]["values"]["filename"],
        "climate-1.2.0.bin"
    );
    // Reading the log, and every other GET, is not audited.
    assert_eq!(max_id(&rows(&app).await), seen);
    app.stop().await;
}

#[tokio::test]
async fn the_log_is_admin_only_and_refused_requests_leave_no_row() {
    let app = TestApp::start().await;
    let (_, first) = app.checkin(None, checkin_body(MAC, "1.0.0", None)).await;
    let device_token = first["token"].as_str().unwrap().to_owned();
    let before = rows(&app).await;
    for path in ["/api/v1/audit", "/api/v1/audit.csv"] {
        for (who, token) in [
            ("nobody", None),
            ("a wrong token", Some("not-the-admin")),
            ("a device's token", Some(device_token.as_str())),
        ] {
            let mut req = app.http.get(app.url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            assert_eq!(req.send().await.unwrap().status(), 401, "{path} by {who}");
        }
        let r = app
            .http
            .get(app.url(path))
            .header("x-admin-api-key", "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong X-Admin-API-Key");
    }
    for token in [None, Some("not-the-admin"), Some(device_token.as_str())] {
        let mut req = app
            .http
            .post(app.url("/api/v1/devices"))
            .json(&json!({"mac": MAC_NEW}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }
    let legacy = app
        .http
        .delete(app.url(&format!("/admin/api/devices/{MAC}")))
        .header("x-admin-api-key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 403);
    assert_eq!(rows(&app).await, before, "refused for auth: no row");
    app.stop().await;
}

#[tokio::test]
async fn the_legacy_admin_api_and_its_header_are_audited_as_the_legacy_key() {
    let app = TestApp::start().await;
    let key = |m: Method, path: &str| {
        app.http
            .request(m, app.url(path))
            .header("x-admin-api-key", ADMIN)
    };
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(app_image(Chip::Esp32, "blink", "1.0.0", 20_000))
            .file_name("blink.bin"),
    );
    let r = key(Method::POST, "/admin/api/firmware")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let uploaded = r.status().as_u16();
    assert!((200..300).contains(&uploaded), "{uploaded}");
    // Missing the legacy API's required fields: refused, and audited as refused.
    let r = key(Method::POST, "/admin/api/devices")
        .json(&json!({"mac_address": MAC}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = key(Method::DELETE, "/admin/api/firmware/nothing.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = key(Method::PATCH, "/api/v1/settings")
        .json(&json!({"open_enrolment": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let all = rows(&app).await;
    let got: Vec<(&str, &str, i64, &str)> = all
        .iter()
        .rev()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["actor"].as_str().unwrap(),
                r["status"].as_i64().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "legacy_upload_firmware",
                "legacy-admin-key",
                uploaded as i64,
                "ok"
            ),
            ("legacy_create_device", "legacy-admin-key", 422, "refused"),
            ("legacy_delete_firmware", "legacy-admin-key", 404, "refused"),
            ("patch_settings", "legacy-admin-key", 200, "ok"),
        ]
    );
    assert_eq!(all[1]["target"], "filename=nothing.bin");
    assert_eq!(all[2]["detail"]["fields"], json!(["mac_address"]));
    app.stop().await;
}

#[tokio::test]
async fn the_csv_export_parses_back_to_the_same_rows_and_filters_apply() {
    let app = TestApp::start().await;
    for (i, name) in ["plain", "with, comma", "with \"quotes\" too"]
        .iter()
        .enumerate()
    {
        let r = app
            .admin(Method::POST, "/api/v1/devices")
            .json(&json!({"mac": format!("24:6f:28:00:16:0{i}"), "name": name}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let r = app
        .admin(Method::PATCH, "/api/v1/devices/24:6f:28:00:16:09")
        .json(&json!({"notes": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let json_rows = rows(&app).await;
    assert_eq!(json_rows.len(), 4);

    let r = app
        .admin(Method::GET, "/api/v1/audit.csv?limit=10000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "id", "at", "actor", "action", "method", "path", "target", "status", "outcome",
            "detail"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), json_rows.len());
    for (rec, row) in records.iter().zip(&json_rows) {
        let text_of = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (i, col) in header.iter().enumerate() {
            if col == "detail" {
                let d: Value = serde_json::from_str(&rec[i]).unwrap();
                assert_eq!(d, row["detail"]);
            } else {
                assert_eq!(rec[i], text_of(&row[col.as_str()]), "{col} of {row}");
            }
        }
    }
    // The awkward name survives the quoting.
    assert!(records
        .iter()
        .any(|r| r[9].contains("with \\\"quotes\\\" too")));

    let refused = app.get_json("/api/v1/audit?outcome=refused").await;
    assert_eq!(refused.as_array().unwrap().len(), 1);
    assert_eq!(refused[0]["action"], "patch_device");
    let created = app
        .get_json("/api/v1/audit?action=create_device&limit=2")
        .await;
    assert_eq!(created.as_array().unwrap().len(), 2);
    let csv_filtered = app
        .admin(Method::GET, "/api/v1/audit.csv?outcome=refused")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv::Reader::from_reader(csv_filtered.as_bytes())
            .records()
            .count(),
        1
    );
    let r = app
        .admin(Method::GET, "/api/v1/audit?limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = app
        .admin(Method::GET, "/api/v1/audit?outcome=maybe")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.stop().await;
}
