//! ESP Admin SDK devices over real HTTPS, spoken to by Python's `http.client` verifying against
//! the CA alone, as the unchanged SDK does: settings → started (bare id) → download at the
//! trigger's capability path → succeded → settings again (the reboot) → done. And the refusals.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use otafleet_image::Chip;
use otafleet_server::conn::ConnLimits;
use otafleet_server::tls::{Mode, Source, Tls};
use otafleet_server::ServerInfo;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::*;

fn tls() -> (Option<Arc<Tls>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tls = Tls::start(
        Mode::Auto,
        Source::Generated {
            data_dir: dir.path().to_path_buf(),
            extra: vec![],
        },
    )
    .unwrap();
    (tls, dir)
}

/// One HTTPS request from Python, verified against `ca` only: `(status, body)`; a body of bytes
/// comes back as `<len>:<sha256>`.
const PY: &str = r#"
import hashlib, http.client, ssl, sys
port, ca, method, path, key, body, binary = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx, timeout=20)
headers = {"Content-Type": "application/json"}
if key:
    headers["Api-Key"] = key
c.request(method, path, body=body.encode() if body else None, headers=headers)
r = c.getresponse()
data = r.read()
print(r.status)
if binary == "1":
    sys.stdout.write("%d:%s" % (len(data), hashlib.sha256(data).hexdigest()))
else:
    sys.stdout.write(data.decode())
"#;

async fn py(
    app: &TestApp,
    ca: &std::path::Path,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
    binary: bool,
) -> (u16, String) {
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(PY)
        .arg(app.addr.port().to_string())
        .arg(ca)
        .arg(method)
        .arg(path)
        .arg(key)
        .arg(body)
        .arg(if binary { "1" } else { "0" })
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, body) = text.split_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_string())
}

async fn start() -> (TestApp, tempfile::TempDir, std::path::PathBuf) {
    let (tls, dir) = tls();
    let app = TestApp::start_full(
        |_| {},
        ServerInfo {
            tls,
            ..ServerInfo::default()
        },
        ConnLimits::default(),
    )
    .await;
    let ca = dir.path().join("tls/ca.pem");
    (app, dir, ca)
}

async fn add_device(app: &TestApp, name: &str) -> Value {
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/esp-admin/devices")
        .json(&json!({"name": name, "project": "blink"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn update(app: &TestApp, mac: &str, id: &str) -> Value {
    let history = app
        .get_json(&format!("/api/v1/devices/{mac}/updates"))
        .await;
    history
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"].as_i64().unwrap().to_string() == id)
        .cloned()
        .unwrap_or_else(|| panic!("update {id} in {history}"))
}

#[tokio::test]
async fn the_sdk_sequence_over_https_installs_an_image_and_confirms_it_at_the_next_boot() {
    let (app, _tls_dir, ca) = start().await;
    let img = app_image(Chip::Esp32, "blink", "1.4.0", 200_000);
    let fw = app.upload_ok("blink.bin", img.clone()).await;
    let added = add_device(&app, "greenhouse").await;
    let (id, key) = (
        added["id"].as_str().unwrap().to_string(),
        added["api_key"].as_str().unwrap().to_string(),
    );
    let mac = added["device"]["mac"].as_str().unwrap().to_string();
    // The admin got a ready credentials.h with the id, key and CA.
    let creds = added["credentials_h"].as_str().unwrap();
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    assert!(creds.contains(&format!("deviceId = \"{id}\"")), "{creds}");
    assert!(creds.contains(&format!("apiKey = \"{key}\"")), "{creds}");
    let second = ca_pem.lines().nth(1).unwrap();
    assert_eq!(creds.matches(second).count(), 2, "httpCert and mqttCert");

    // Boot: settings (no broker configured yet: empty URIs).
    let base = format!("/api/device/{id}");
    let (s, body) = py(
        &app,
        &ca,
        "GET",
        &format!("{base}/settings"),
        &key,
        "",
        false,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let settings: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        settings,
        json!({"uriTCP": "", "uriWS": "", "username": id, "password": key})
    );
    let d = app.get_json(&format!("/api/v1/devices/{mac}")).await;
    assert_eq!(d["tls"], true);
    assert!(d["last_seen"].is_string());

    // A release deployed to it; the trigger the MQTT side will publish.
    app.deploy(json!({"firmware_id": fw["id"], "devices": [mac]}))
        .await;
    let trigger = app
        .fleet
        .esp_admin_offer(&id)
        .await
        .unwrap()
        .expect("offered");
    assert_eq!(trigger.release_id, fw["id"].as_i64().unwrap().to_string());
    assert_eq!(trigger.version, "1.4.0");
    assert_eq!(trigger.download_size, img.len() as i64);

    // started → the bare attempt id.
    let started = json!({"releaseId": trigger.release_id, "status": "started"}).to_string();
    let (s, deployment_id) = py(
        &app,
        &ca,
        "POST",
        &format!("{base}/report/update"),
        &key,
        &started,
        false,
    )
    .await;
    assert_eq!(s, 200, "{deployment_id}");
    assert!(
        deployment_id.parse::<i64>().is_ok(),
        "bare id: {deployment_id:?}"
    );
    assert_eq!(
        update(&app, &mac, &deployment_id).await["state"],
        "downloading"
    );

    // The download at the capability path: the same bytes, counted.
    let (s, got) = py(&app, &ca, "GET", &trigger.download_path, "", "", true).await;
    assert_eq!(s, 200);
    assert_eq!(got, format!("{}:{}", img.len(), sha256_hex(&img)));

    // succeded: written, rebooting — not done yet.
    let done = json!({"status": "succeded", "deploymentId": deployment_id}).to_string();
    let (s, body) = py(
        &app,
        &ca,
        "POST",
        &format!("{base}/report/update"),
        &key,
        &done,
        false,
    )
    .await;
    assert_eq!((s, body.as_str()), (200, deployment_id.as_str()));
    let u = update(&app, &mac, &deployment_id).await;
    assert_eq!(u["state"], "rebooting");
    assert_eq!(u["bytes_sent"], img.len() as i64);

    // The reboot: settings again → done, and the device runs the image.
    let (s, _) = py(
        &app,
        &ca,
        "GET",
        &format!("{base}/settings"),
        &key,
        "",
        false,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(update(&app, &mac, &deployment_id).await["state"], "done");
    let d = app.get_json(&format!("/api/v1/devices/{mac}")).await;
    assert_eq!(d["version"], "1.4.0");
    assert_eq!(d["sha256"], sha256_hex(&img));
    // Nothing more to trigger; the dead capability path is gone.
    assert!(app.fleet.esp_admin_offer(&id).await.unwrap().is_none());
    let (s, _) = py(&app, &ca, "GET", &trigger.download_path, "", "", true).await;
    assert_eq!(s, 404);

    // A custom report is stored like any device report.
    let report = json!({"type": "error", "subject": "sensor", "body": "no reading"}).to_string();
    let (s, body) = py(
        &app,
        &ca,
        "POST",
        &format!("{base}/report/custom"),
        &key,
        &report,
        false,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "ok"})
    );
    let reports = app.get_json(&format!("/api/v1/reports?mac={mac}")).await;
    assert!(reports.to_string().contains("no reading"), "{reports}");
    app.stop().await;
}

#[tokio::test]
async fn wrong_keys_other_devices_and_guessed_paths_are_refused() {
    let (app, _tls_dir, ca) = start().await;
    let img = app_image(Chip::Esp32, "blink", "2.0.0", 50_000);
    let fw = app.upload_ok("blink.bin", img).await;
    let a = add_device(&app, "a").await;
    let b = add_device(&app, "b").await;
    let (id_a, key_a, mac_a) = (
        a["id"].as_str().unwrap(),
        a["api_key"].as_str().unwrap(),
        a["device"]["mac"].as_str().unwrap(),
    );
    let (id_b, key_b, mac_b) = (
        b["id"].as_str().unwrap(),
        b["api_key"].as_str().unwrap(),
        b["device"]["mac"].as_str().unwrap(),
    );
    // A wrong key: 401 bad_api_key, recorded on the device.
    let (s, body) = py(
        &app,
        &ca,
        "GET",
        &format!("/api/device/{id_a}/settings"),
        "wrong",
        "",
        false,
    )
    .await;
    assert_eq!(s, 401);
    assert!(body.contains("bad_api_key"), "{body}");
    let d = app.get_json(&format!("/api/v1/devices/{mac_a}")).await;
    assert_eq!(d["refused"]["count"], 1);
    assert_eq!(d["refused"]["last_protocol"], "esp-admin");
    assert_eq!(d["auth"], "api_key");
    // The admin cannot reset an ESP Admin device's key (it is compiled into the firmware) nor
    // change its protocol: 409, and the key still works.
    for body in [
        json!({"reset_token": true}),
        json!({"expect_protocol": "native"}),
    ] {
        let res = app
            .admin(reqwest::Method::PATCH, &format!("/api/v1/devices/{mac_a}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 409);
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["error"]["code"], "esp_admin_device", "{e}");
    }
    let d = app.get_json(&format!("/api/v1/devices/{mac_a}")).await;
    assert_eq!(d["enrolled"], true);
    assert_eq!(d["expect_protocol"], "esp-admin");
    // Another device's id with my key.
    let (s, _) = py(
        &app,
        &ca,
        "GET",
        &format!("/api/device/{id_b}/settings"),
        key_a,
        "",
        false,
    )
    .await;
    assert_eq!(s, 401);

    // B's attempt, reported by A: 404, and B's attempt is untouched.
    app.deploy(json!({"firmware_id": fw["id"], "devices": [mac_a, mac_b]}))
        .await;
    let tb = app.fleet.esp_admin_offer(id_b).await.unwrap().unwrap();
    let started = json!({"releaseId": tb.release_id, "status": "started"}).to_string();
    let (s, b_attempt) = py(
        &app,
        &ca,
        "POST",
        &format!("/api/device/{id_b}/report/update"),
        key_b,
        &started,
        false,
    )
    .await;
    assert_eq!(s, 200);
    let fail = json!({"status": "failed", "deploymentId": b_attempt}).to_string();
    let (s, _) = py(
        &app,
        &ca,
        "POST",
        &format!("/api/device/{id_a}/report/update"),
        key_a,
        &fail,
        false,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        update(&app, mac_b, &b_attempt).await["state"],
        "downloading"
    );
    // A release the device is not offered: 409 with what it is offered.
    let other = json!({"releaseId": "999", "status": "started"}).to_string();
    let (s, body) = py(
        &app,
        &ca,
        "POST",
        &format!("/api/device/{id_a}/report/update"),
        key_a,
        &other,
        false,
    )
    .await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("release_not_offered"), "{body}");

    // Guessed download paths: all the same 404.
    let real = tb.download_path.clone();
    let guessed = [
        real.replace(".bin", "0.bin"),
        format!("/api/device/{id_b}/ota/{b_attempt}/{}.bin", "0".repeat(32)),
        real.replace(id_b, id_a),
        format!("/api/device/{id_b}/ota/{b_attempt}/x"),
    ];
    for path in guessed {
        let (s, _) = py(&app, &ca, "GET", &path, "", "", true).await;
        assert_eq!(s, 404, "{path}");
    }
    let (s, _) = py(&app, &ca, "GET", &real, "", "", true).await;
    assert_eq!(s, 200);

    // A native check-in claiming the made-up MAC, with or without the API key as a token:
    // refused and recorded. So is a stock updater's check.
    let (s, body) = app
        .checkin(Some(key_a), checkin_body(mac_a, "1.0.0", None))
        .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "esp_admin_device");
    let (s, body) = app.checkin(None, checkin_body(mac_a, "1.0.0", None)).await;
    assert_eq!(s, 403, "{body}");
    let r = app
        .http
        .get(app.url("/ota/arduino"))
        .header("User-Agent", "ESP32-http-Update")
        .header("x-ESP32-STA-MAC", mac_a)
        .header("x-ESP32-mode", "sketch")
        .header("x-ESP32-version", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200);
    let d = app.get_json(&format!("/api/v1/devices/{mac_a}")).await;
    assert_eq!(d["refused"]["last_code"], "esp_admin_device", "{d}");
    assert_eq!(d["refused"]["count"], 4);
    // Nor does the key work as a native token on the native routes.
    let r = app
        .http
        .post(app.url("/api/v1/device/report"))
        .bearer_auth(key_a)
        .json(&json!({"mac": mac_a, "type": "info", "subject": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn plain_http_from_another_machine_is_refused_before_the_key_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = otafleet_core::Fleet::open(otafleet_core::Settings::new(dir.path()))
        .await
        .unwrap();
    let created = fleet.esp_admin_create(Default::default()).await.unwrap();
    let app = otafleet_server::app(otafleet_server::AppState::new(fleet.clone(), ADMIN));
    let call = |peer: &str, transport: otafleet_server::conn::Transport| {
        let mut req = Request::get(format!("/api/device/{}/settings", created.id))
            .header("api-key", "wrong")
            .header("host", "127.0.0.1")
            .body(Body::empty())
            .unwrap();
        let addr: std::net::SocketAddr = peer.parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(addr));
        req.extensions_mut().insert(transport);
        app.clone().oneshot(req)
    };
    use otafleet_server::conn::Transport;
    let r = call("192.168.1.50:40000", Transport::Plain).await.unwrap();
    assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
    // The key was not even checked: nothing recorded.
    assert!(fleet
        .device(&created.device.mac)
        .await
        .unwrap()
        .refused
        .is_none());
    // Over TLS from there, or plain from this machine, the key is checked (and wrong).
    let r = call("192.168.1.50:40000", Transport::Tls).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = call("127.0.0.1:40000", Transport::Plain).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
