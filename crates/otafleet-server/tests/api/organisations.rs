//! Organisations (docs/access.md): two on one server, each with a device of the same MAC and
//! the same image, and neither sees, downloads, deploys to or hears the events of the other.
//! The default organisation's paths are the ones every other test uses, unchanged.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const MAC: &str = "02:0A:0B:0C:0D:01";

/// An organisation made by the admin token: (its owner token, its device path `/o/<key>`).
async fn make_org(app: &TestApp, id: &str) -> (String, String) {
    let r = app
        .admin(Method::POST, "/api/v1/organisations")
        .json(&json!({"id": id, "name": format!("{id} lab")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let token = body["owner_token"]["secret"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("otf_{id}.")), "{token}");
    let key = body["organisation"]["enrolment_key"].as_str().unwrap();
    (token, format!("/o/{key}"))
}

/// A request with `token` (an organisation's own).
fn with(app: &TestApp, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.http.request(method, app.url(path)).bearer_auth(token)
}

async fn json_ok(r: reqwest::RequestBuilder) -> Value {
    let r = r.send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status} {body}");
    body
}

async fn checkin_at(app: &TestApp, prefix: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(&format!("{prefix}/api/v1/device/checkin")))
        .json(&checkin_body(MAC, "1.0.0", None));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn download_at(app: &TestApp, prefix: &str, sha: &str) -> (u16, Vec<u8>) {
    let r = app
        .http
        .get(app.url(&format!("{prefix}/api/v1/device/firmware/{sha}")))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

async fn error_code(r: reqwest::RequestBuilder) -> (u16, String) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn two_organisations_with_the_same_mac_and_image_never_meet() {
    let app = TestApp::start().await;
    let (acme, acme_path) = make_org(&app, "acme").await;

    // The same image in both: the same hash, two library entries that know nothing of each
    // other.
    let image = app_image(otafleet_image::Chip::Esp32, "blink", "2.0.0", 30_000);
    let sha = sha256_hex(&image);
    let ours = app.upload_ok("blink.bin", image.clone()).await;
    let theirs = json_ok(
        with(&app, &acme, Method::POST, "/api/v1/firmware")
            .query(&[("filename", "blink.bin")])
            .header("content-type", "application/octet-stream")
            .body(image.clone()),
    )
    .await;
    assert_eq!(ours["sha256"], theirs["sha256"]);
    // An image only one of them has is not found at the other's download path.
    let only_acme = app_image(otafleet_image::Chip::Esp32, "blink", "3.0.0", 30_000);
    let only_acme_sha = sha256_hex(&only_acme);
    json_ok(
        with(&app, &acme, Method::POST, "/api/v1/firmware")
            .query(&[("filename", "blink-3.bin")])
            .header("content-type", "application/octet-stream")
            .body(only_acme),
    )
    .await;
    assert_eq!(download_at(&app, "", &only_acme_sha).await.0, 404);
    assert_eq!(download_at(&app, &acme_path, &only_acme_sha).await.0, 200);
    let ours_only = app_image(otafleet_image::Chip::Esp32, "blink", "4.0.0", 30_000);
    let ours_only_sha = sha256_hex(&ours_only);
    app.upload_ok("blink-4.bin", ours_only).await;
    assert_eq!(download_at(&app, &acme_path, &ours_only_sha).await.0, 404);

    // One device of the same MAC in each, each enrolled with its own token.
    let (s, ours_first) = checkin_at(&app, "", None).await;
    assert_eq!(s, 200, "{ours_first}");
    let ours_token = ours_first["token"].as_str().unwrap().to_owned();
    let (s, theirs_first) = checkin_at(&app, &acme_path, None).await;
    assert_eq!(s, 200, "{theirs_first}");
    let theirs_token = theirs_first["token"].as_str().unwrap().to_owned();
    assert_ne!(ours_token, theirs_token);
    // A device's token opens nothing in the other organisation.
    assert_eq!(checkin_at(&app, "", Some(&theirs_token)).await.0, 401);
    assert_eq!(checkin_at(&app, &acme_path, Some(&ours_token)).await.0, 401);

    // Each names its device; each list shows its own device and image only.
    for (token, name) in [(ADMIN, "porch (ours)"), (acme.as_str(), "porch (acme)")] {
        json_ok(
            with(
                &app,
                token,
                Method::PATCH,
                &format!("/api/v1/devices/{MAC}"),
            )
            .json(&json!({"name": name})),
        )
        .await;
    }
    let ours_list = app.get_json("/api/v1/devices").await.to_string();
    let theirs_list = json_ok(with(&app, &acme, Method::GET, "/api/v1/devices"))
        .await
        .to_string();
    assert!(
        ours_list.contains("porch (ours)") && !ours_list.contains("acme"),
        "{ours_list}"
    );
    assert!(
        theirs_list.contains("porch (acme)") && !theirs_list.contains("ours"),
        "{theirs_list}"
    );
    let theirs_fw = json_ok(with(&app, &acme, Method::GET, "/api/v1/firmware")).await;
    let versions: Vec<&str> = theirs_fw
        .as_array()
        .or_else(|| theirs_fw["items"].as_array())
        .expect("a list of images")
        .iter()
        .filter_map(|f| f["version"].as_str())
        .collect();
    assert!(!versions.contains(&"4.0.0"), "{theirs_fw}");

    // Each event stream hears only its own organisation: acme deploys, and the default
    // organisation's stream hears its own next change first, never acme's deployment.
    let mut ours_events = Events::open(&app).await;
    let mut theirs_events = Events::from_response(
        with(&app, &acme, Method::GET, "/api/v1/events")
            .send()
            .await
            .unwrap(),
    );
    theirs_events.wait_for(|name, _| name == "hello").await;
    let deployment = json_ok(
        with(&app, &acme, Method::POST, "/api/v1/deployments")
            .json(&json!({"firmware_id": theirs["id"], "devices": [MAC]})),
    )
    .await;
    theirs_events.wait_for(|name, _| name == "deployment").await;
    json_ok(
        app.admin(Method::PATCH, &format!("/api/v1/devices/{MAC}"))
            .json(&json!({"notes": "marker"})),
    )
    .await;
    let first = ours_events
        .wait_for(|name, _| !matches!(name, "hello" | "seen"))
        .await;
    assert!(
        first.to_string().contains("marker"),
        "the default organisation heard {first}"
    );

    // The deployment reaches acme's device and not ours, though both have the MAC and the image.
    let (_, theirs_next) = checkin_at(&app, &acme_path, Some(&theirs_token)).await;
    assert_eq!(
        theirs_next["update"]["sha256"],
        sha.as_str(),
        "{theirs_next}"
    );
    // The offer's path is relative to the base its device was given (…/o/<key>).
    assert_eq!(
        theirs_next["update"]["url"],
        format!("/api/v1/device/firmware/{sha}").as_str()
    );
    let (_, ours_next) = checkin_at(&app, "", Some(&ours_token)).await;
    assert!(ours_next["update"].is_null(), "{ours_next}");
    // Nor can the default organisation stop or see acme's deployment.
    let (status, _) = error_code(app.admin(
        Method::GET,
        &format!("/api/v1/deployments/{}", deployment["id"]),
    ))
    .await;
    assert_eq!(status, 404);

    // Deleting the image in the default organisation leaves acme's copy whole.
    assert_eq!(
        app.admin_delete(&format!("/api/v1/firmware/{}", ours["id"]))
            .await,
        reqwest::StatusCode::NO_CONTENT
    );
    assert_eq!(download_at(&app, "", &sha).await.0, 404);
    let (status, bytes) = download_at(&app, &acme_path, &sha).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, image);

    // The admin token is the default organisation's owner only; acme's token is not ours.
    assert_eq!(
        error_code(app.admin(Method::GET, &format!("{acme_path}/api/v1/devices"))).await,
        (401, "admin_token_invalid".into())
    );
    let (status, _) = error_code(with(
        &app,
        &acme,
        Method::GET,
        &format!("{acme_path}/api/v1/organisations"),
    ))
    .await;
    assert_eq!(status, 403);
    // A token whose organisation prefix is changed goes to that organisation, which does not
    // know it.
    let (_beta, _) = make_org(&app, "beta").await;
    let forged = acme.replacen("otf_acme.", "otf_beta.", 1);
    assert_eq!(
        error_code(with(&app, &forged, Method::GET, "/api/v1/devices")).await,
        (401, "admin_token_invalid".into())
    );
    // A key nobody has is refused, not sent to the default organisation.
    assert_eq!(
        checkin_at(&app, "/o/not-a-key", None).await.0,
        404,
        "an unknown organisation's device path"
    );
    // What needs the server's own disk or broker stays the default organisation's.
    let (status, code) = error_code(
        with(&app, &acme, Method::POST, "/api/v1/watch-folders")
            .json(&json!({"path": app.dir.path().display().to_string()})),
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "organisation_feature"));
}

#[tokio::test]
async fn only_the_default_organisations_owner_makes_organisations() {
    let app = TestApp::start().await;
    let r = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "ops", "role": "admin"}))
        .send()
        .await
        .unwrap();
    let admin_token = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, code) = error_code(
        with(&app, &admin_token, Method::POST, "/api/v1/organisations")
            .json(&json!({"id": "acme", "name": "Acme"})),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "role_insufficient"));
    for bad in ["default", "A", "x", "acme lab"] {
        let (status, code) = error_code(
            app.admin(Method::POST, "/api/v1/organisations")
                .json(&json!({"id": bad, "name": "Lab"})),
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (422, "invalid_organisation_id"),
            "{bad}"
        );
    }
    make_org(&app, "acme").await;
    let (status, code) = error_code(
        app.admin(Method::POST, "/api/v1/organisations")
            .json(&json!({"id": "acme", "name": "Again"})),
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "organisation_exists"));
    let list = app.get_json("/api/v1/organisations").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(
        app.dir.path().join("orgs/acme").is_dir(),
        "the organisation's own data directory"
    );
    // Nothing of acme's is in the default organisation's data: its images and database are in
    // its own directory.
    assert_eq!(app.blob_count(), 0);
}
