//! Issue 12: deployments with a lifecycle, retry and rollback that work, the cross-project
//! guard, a device found running its target after a failure, and native downloads counted.
//! Native devices over HTTP against the real server, as in `device_protocol`.

use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;

const MAC: &str = "24:0A:C4:12:00:01";
const MAC2: &str = "24:0A:C4:12:00:02";

/// A native climate device: (its report, its token).
struct Device {
    mac: &'static str,
    project: &'static str,
    version: String,
    sha256: String,
    token: Option<String>,
}

impl Device {
    fn new(mac: &'static str, project: &'static str, image: &[u8], version: &str) -> Self {
        Self {
            mac,
            project,
            version: version.into(),
            sha256: sha256_hex(image),
            token: None,
        }
    }

    /// Check in; the offer, if any.
    async fn checkin(&mut self, app: &TestApp) -> Value {
        let body = json!({"mac": self.mac, "chip": "esp32", "project": self.project,
            "version": self.version, "sha256": self.sha256, "free_space": 1_310_720});
        let (status, answer) = app.checkin(self.token.as_deref(), body).await;
        assert_eq!(status, 200, "{answer}");
        if let Some(t) = answer["token"].as_str() {
            self.token = Some(t.into());
        }
        answer["update"].clone()
    }

    async fn report(&self, app: &TestApp, id: i64, state: &str) {
        let r = app
            .progress(
                self.token.as_deref().unwrap(),
                json!({"update_id": id, "state": state, "progress": 50, "error": "boom"}),
            )
            .await;
        assert_eq!(r.status(), 200, "{state}");
    }

    /// Take the offer through to the new image (flash, reboot, check in on it).
    async fn install(&mut self, app: &TestApp, offer: &Value, image: &[u8], version: &str) {
        let id = offer["id"].as_i64().unwrap();
        self.report(app, id, "downloading").await;
        self.report(app, id, "done").await;
        self.version = version.into();
        self.sha256 = sha256_hex(image);
        assert!(self.checkin(app).await.is_null(), "nothing more to do");
    }
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .admin(reqwest::Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn deployment(app: &TestApp, id: &Value) -> Value {
    app.get_json(&format!("/api/v1/deployments/{id}")).await
}

#[tokio::test]
async fn a_device_that_failed_three_times_updates_after_retry() {
    let app = TestApp::start().await;
    let v1 = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let v2 = app_image(Chip::Esp32, "climate", "1.1.0", 20_000);
    app.upload_ok("climate.bin", v1.clone()).await;
    let fw2 = app.upload_ok("climate.bin", v2.clone()).await;
    let mut d = Device::new(MAC, "climate", &v1, "1.0.0");
    d.checkin(&app).await;
    let dep = app.deploy(json!({"firmware_id": fw2["id"]})).await;
    for _ in 0..3 {
        let offer = d.checkin(&app).await;
        d.report(&app, offer["id"].as_i64().expect("offered"), "failed")
            .await;
    }
    assert!(d.checkin(&app).await.is_null(), "the attempt limit holds");
    let target = app.get_json(&format!("/api/v1/devices/{MAC}/target")).await;
    assert_eq!(target["verdict"]["kind"], "failed", "{target}");
    assert_eq!(target["verdict"]["attempts"], 3);
    assert!(target["reason"].as_str().unwrap().contains("Retry"));
    let detail = deployment(&app, &dep["id"]).await;
    assert_eq!(
        detail["deployment"]["status"], "completed",
        "given up: {detail}"
    );
    assert_eq!(detail["deployment"]["tally"]["failed"], 1);

    // Retry: a new attempt, marked so, counted afresh; the deployment is active again.
    let (status, retried) = post(&app, &format!("/api/v1/devices/{MAC}/retry"), json!({})).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["retry"], true);
    assert_eq!(retried["state"], "offered");
    assert_eq!(
        deployment(&app, &dep["id"]).await["deployment"]["status"],
        "active"
    );
    let offer = d.checkin(&app).await;
    assert_eq!(offer["id"], retried["id"], "the retry's attempt is offered");
    d.install(&app, &offer, &v2, "1.1.0").await;
    let detail = deployment(&app, &dep["id"]).await;
    assert_eq!(detail["deployment"]["status"], "completed");
    assert_eq!(detail["deployment"]["tally"]["done"], 1);

    // Nothing left to retry: 409 with what the device gets instead.
    let (status, body) = post(&app, &format!("/api/v1/devices/{MAC}/retry"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("runs this image"));
    app.stop().await;
}

#[tokio::test]
async fn a_deployment_completes_and_stopping_one_cancels_only_its_unstarted_attempts() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let v1 = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let v2 = app_image(Chip::Esp32, "climate", "1.1.0", 20_000);
    let other = app_image(Chip::Esp32, "benchlab", "3.0.0", 20_000);
    app.upload_ok("climate.bin", v1.clone()).await;
    let fw2 = app.upload_ok("climate.bin", v2.clone()).await;
    let fw_other = app.upload_ok("benchlab.bin", other.clone()).await;
    let mut a = Device::new(MAC, "climate", &v1, "1.0.0");
    let mut b = Device::new(MAC2, "benchlab", b"an older benchlab build", "2.0.0");
    a.checkin(&app).await;
    b.checkin(&app).await;
    let first = app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let second = app.deploy(json!({"firmware_id": fw_other["id"]})).await;
    assert_eq!(first["status"], "active");

    // a updates: its deployment completes, and says so on the event stream.
    let offer = a.checkin(&app).await;
    a.install(&app, &offer, &v2, "1.1.0").await;
    let ev = events
        .wait_for(|n, v| {
            n == "deployment"
                && v["deployment"]["id"] == first["id"]
                && v["deployment"]["status"] == "completed"
        })
        .await;
    assert_eq!(ev["deployment"]["tally"]["done"], 1);
    assert!(ev["deployment"]["ended_at"].is_string());

    // b is offered benchlab 3.0.0 and has not started: stopping that deployment cancels it,
    // and leaves the first one alone.
    let offer = b.checkin(&app).await;
    let id = offer["id"].as_i64().unwrap();
    let (status, stopped) = post(
        &app,
        &format!("/api/v1/deployments/{}/stop", second["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["end_reason"], "stopped by the admin");
    let history = app
        .get_json(&format!("/api/v1/devices/{MAC2}/updates"))
        .await;
    let attempt = history
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .unwrap();
    assert_eq!(attempt["state"], "cancelled", "{attempt}");
    assert_eq!(attempt["failure"], "stopped", "{attempt}");
    let dev = app.get_json(&format!("/api/v1/devices/{MAC2}")).await;
    assert_eq!(
        dev["update"]["state"], "cancelled",
        "the device no longer shows 'offered'"
    );
    assert!(b.checkin(&app).await.is_null());
    assert_eq!(
        deployment(&app, &first["id"]).await["deployment"]["status"],
        "completed"
    );
    let (status, _) = post(
        &app,
        &format!("/api/v1/deployments/{}/stop", second["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "already stopped");
    app.stop().await;
}

#[tokio::test]
async fn a_newer_deployment_of_the_same_project_supersedes_the_older() {
    let app = TestApp::start().await;
    let v1 = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let v2 = app_image(Chip::Esp32, "climate", "1.1.0", 20_000);
    let v3 = app_image(Chip::Esp32, "climate", "1.2.0", 20_000);
    app.upload_ok("climate.bin", v1.clone()).await;
    let fw2 = app.upload_ok("climate.bin", v2).await;
    let fw3 = app.upload_ok("climate.bin", v3).await;
    let mut a = Device::new(MAC, "climate", &v1, "1.0.0");
    a.checkin(&app).await;
    let old = app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let offered = a.checkin(&app).await;
    let new = app.deploy(json!({"firmware_id": fw3["id"]})).await;
    let old = deployment(&app, &old["id"]).await["deployment"].clone();
    assert_eq!(old["status"], "stopped");
    assert_eq!(
        old["end_reason"],
        format!("superseded by deployment {}", new["id"])
    );
    let offer = a.checkin(&app).await;
    assert_eq!(offer["version"], "1.2.0");
    let history = app
        .get_json(&format!("/api/v1/devices/{MAC}/updates"))
        .await;
    let replaced = history
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == offered["id"])
        .unwrap();
    assert_eq!(replaced["state"], "cancelled");
    assert_eq!(replaced["failure"], "superseded", "{replaced}");
    app.stop().await;
}

#[tokio::test]
async fn another_projects_image_needs_consent_and_the_device_then_belongs_to_it() {
    let app = TestApp::start().await;
    let climate = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let bench = app_image(Chip::Esp32, "benchlab", "0.9.0", 20_000);
    app.upload_ok("climate.bin", climate.clone()).await;
    let fw = app.upload_ok("benchlab.bin", bench.clone()).await;
    let mut d = Device::new(MAC, "climate", &climate, "1.0.0");
    d.checkin(&app).await;
    let body = json!({"firmware_id": fw["id"], "devices": [MAC]});
    let (status, plan) = post(&app, "/api/v1/deployments?dry_run=true", body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(plan["offered"], 0);
    assert_eq!(plan["groups"][0]["kind"], "other_project", "{plan}");
    let (status, refused) = post(&app, "/api/v1/deployments", body).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "other_project");
    assert!(refused["error"]["message"].as_str().unwrap().contains(MAC));
    assert!(
        app.get_json("/api/v1/deployments")
            .await
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing stored"
    );

    let dep = app
        .deploy(json!({"firmware_id": fw["id"], "devices": [MAC], "allow_other_project": true}))
        .await;
    assert_eq!(dep["allow_other_project"], true);
    let offer = d.checkin(&app).await;
    // The device's own build says it is benchlab now (a native device reports its project).
    d.project = "benchlab";
    d.install(&app, &offer, &bench, "0.9.0").await;
    let dev = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(dev["project"], "benchlab");
    assert_eq!(dev["update"]["state"], "done");
    app.stop().await;
}

#[tokio::test]
async fn roll_back_a_device_to_the_image_it_ran_before() {
    let app = TestApp::start().await;
    let v1 = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let v2 = app_image(Chip::Esp32, "climate", "1.1.0", 20_000);
    app.upload_ok("climate.bin", v1.clone()).await;
    let fw2 = app.upload_ok("climate.bin", v2.clone()).await;
    let mut d = Device::new(MAC, "climate", &v1, "1.0.0");
    d.checkin(&app).await;
    let (status, body) = post(&app, &format!("/api/v1/devices/{MAC}/rollback"), json!({})).await;
    assert_eq!(status, 409, "nothing to roll back yet: {body}");

    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let offer = d.checkin(&app).await;
    d.install(&app, &offer, &v2, "1.1.0").await;
    // Deploying 1.0.0 without rollback offers nothing, and the plan says why.
    let fw1 = app
        .get_json("/api/v1/firmware")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["version"] == "1.0.0")
        .unwrap()
        .clone();
    let (_, plan) = post(
        &app,
        "/api/v1/deployments?dry_run=true",
        json!({"firmware_id": fw1["id"]}),
    )
    .await;
    assert_eq!(plan["groups"][0]["kind"], "newer_running", "{plan}");
    assert_eq!(plan["offered"], 0);

    let (status, dep) = post(&app, &format!("/api/v1/devices/{MAC}/rollback"), json!({})).await;
    assert_eq!(status, 201, "{dep}");
    assert_eq!(dep["rollback"], true);
    assert_eq!(dep["devices"], json!([MAC]));
    let offer = d.checkin(&app).await;
    assert_eq!(offer["version"], "1.0.0");
    d.install(&app, &offer, &v1, "1.0.0").await;
    let dev = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(dev["version"], "1.0.0");
    app.stop().await;
}

#[tokio::test]
async fn a_device_found_running_its_target_after_a_failure_is_done() {
    let app = TestApp::start().await;
    let v1 = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let v2 = app_image(Chip::Esp32, "climate", "1.1.0", 20_000);
    app.upload_ok("climate.bin", v1.clone()).await;
    let fw2 = app.upload_ok("climate.bin", v2.clone()).await;
    let mut d = Device::new(MAC, "climate", &v1, "1.0.0");
    d.checkin(&app).await;
    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let offer = d.checkin(&app).await;
    d.report(&app, offer["id"].as_i64().unwrap(), "failed")
        .await;
    // It was flashed by hand (or its "failure" was not one): it runs the target.
    d.version = "1.1.0".into();
    d.sha256 = sha256_hex(&v2);
    assert!(d.checkin(&app).await.is_null());
    let dev = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(dev["update"]["state"], "done", "{dev}");
    assert_eq!(dev["update"]["error"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn native_downloads_are_counted() {
    let app = TestApp::start().await;
    let v1 = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let v2 = app_image(Chip::Esp32, "climate", "1.1.0", 150_000);
    app.upload_ok("climate.bin", v1.clone()).await;
    let fw2 = app.upload_ok("climate.bin", v2.clone()).await;
    let mut d = Device::new(MAC, "climate", &v1, "1.0.0");
    d.checkin(&app).await;
    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let offer = d.checkin(&app).await;
    let mut events = Events::open(&app).await;
    let r = app
        .http
        .get(app.url(offer["url"].as_str().unwrap()))
        .bearer_auth(d.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), v2.len());
    let ev = events
        .wait_for(|n, v| n == "update" && v["update"]["bytes_sent"] == v2.len())
        .await;
    assert_eq!(
        ev["update"]["state"], "offered",
        "the count moves nothing else"
    );
    // Without the token (or with another's) the bytes are served uncounted.
    let r = app.download(&sha256_hex(&v2)).await;
    assert_eq!(r.bytes().await.unwrap().len(), v2.len());
    let r = app
        .http
        .get(app.url(offer["url"].as_str().unwrap()))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let dev = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(dev["update"]["bytes_sent"], v2.len());
    app.stop().await;
}

/// Hostile: every route the OpenAPI document marks as the admin's — the new deployment and
/// device actions among them — refuses a LAN peer without the admin token, with a wrong one, and
/// with a device's own token, and nothing changes.
#[tokio::test]
async fn every_admin_route_refuses_a_peer_without_the_admin_token_and_changes_nothing() {
    let app = TestApp::start().await;
    let v1 = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let v2 = app_image(Chip::Esp32, "climate", "1.1.0", 20_000);
    app.upload_ok("climate.bin", v1.clone()).await;
    let fw2 = app.upload_ok("climate.bin", v2).await;
    let mut d = Device::new(MAC, "climate", &v1, "1.0.0");
    d.checkin(&app).await;
    let dep = app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let offer = d.checkin(&app).await;
    d.report(&app, offer["id"].as_i64().unwrap(), "failed")
        .await;
    let before = (
        app.get_json("/api/v1/deployments").await,
        app.get_json("/api/v1/devices").await,
        app.get_json(&format!("/api/v1/devices/{MAC}/updates"))
            .await,
    );

    let doc = app.public_json("/api/v1/openapi.json").await;
    let mut checked = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let admin = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("admin").is_some()));
            if !admin {
                continue;
            }
            let url = path
                .replace("{id}", &dep["id"].to_string())
                .replace("{mac}", MAC)
                .replace("{sha256}", fw2["sha256"].as_str().unwrap());
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for (who, token) in [
                ("nobody", None),
                ("a wrong token", Some("not-the-admin")),
                ("a device's own token", d.token.as_deref()),
            ] {
                let mut req = app
                    .http
                    .request(method.clone(), app.url(&url))
                    .json(&json!({}));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 401, "{method} {url} by {who}");
            }
            checked.push(format!("{method} {path}"));
        }
    }
    for route in [
        "POST /api/v1/deployments/{id}/stop",
        "POST /api/v1/deployments/{id}/retry",
        "POST /api/v1/deployments/{id}/pause",
        "POST /api/v1/deployments/{id}/resume",
        "POST /api/v1/deployments/{id}/rollback",
        "GET /api/v1/deployments/{id}",
        "POST /api/v1/devices/{mac}/retry",
        "POST /api/v1/devices/{mac}/rollback",
        "GET /api/v1/devices/{mac}/target",
    ] {
        assert!(
            checked.iter().any(|c| c == route),
            "{route} is not an admin route: {checked:?}"
        );
    }
    let after = (
        app.get_json("/api/v1/deployments").await,
        app.get_json("/api/v1/devices").await,
        app.get_json(&format!("/api/v1/devices/{MAC}/updates"))
            .await,
    );
    assert_eq!(before.0, after.0, "no deployment changed");
    assert_eq!(before.2, after.2, "no attempt changed");
    assert_eq!(
        before.1.as_array().unwrap().len(),
        after.1.as_array().unwrap().len()
    );
    app.stop().await;
}
