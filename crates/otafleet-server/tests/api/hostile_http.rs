//! Hostile requests at the HTTP layer: DNS rebinding (a foreign `Host`), framing the UI, the
//! admin token in a URL, a huge form field. Each is refused with an actionable message and
//! changes nothing.

use otafleet_image::Chip;
use otafleet_server::ServerInfo;
use serde_json::Value;

use crate::common::*;

fn checkin_request(host: Option<&str>, n: u8) -> Vec<u8> {
    let body = checkin_body(&format!("24:6F:28:AA:00:{n:02X}"), "1.0.0", None).to_string();
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    format!(
        "POST /api/v1/device/checkin HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn admin_get(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn a_foreign_host_is_refused_on_device_and_admin_routes_and_changes_nothing() {
    let app = TestApp::start().await;
    let port = app.addr.port();
    for host in [
        format!("rebind.attacker.example:{port}"),
        "rebind.attacker.example".to_string(),
        format!("127.0.0.1.attacker.example:{port}"),
    ] {
        let (status, body) = raw_request(app.addr, &checkin_request(Some(&host), 1)).await;
        assert_eq!(status, 421, "check-in with Host {host}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "host_not_allowed");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--allowed-host"),
            "{v}"
        );
        let (status, _) = raw_request(app.addr, &admin_get("/api/v1/devices", &host)).await;
        assert_eq!(status, 421, "admin API with Host {host}");
        let (status, _) = raw_request(app.addr, &admin_get("/", &host)).await;
        assert_eq!(status, 421, "UI with Host {host}");
    }
    assert_eq!(
        app.get_json("/api/v1/devices").await,
        serde_json::json!([]),
        "a refused check-in enrolled nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn ip_literals_localhost_no_host_and_allowed_names_are_answered() {
    let app = TestApp::start_info(ServerInfo {
        allowed_hosts: vec!["ota.lab.example".into()],
        ..Default::default()
    })
    .await;
    let port = app.addr.port();
    for (n, host) in [
        Some(format!("127.0.0.1:{port}")),
        Some("192.168.4.1".to_string()),
        Some(format!("[::1]:{port}")),
        Some(format!("localhost:{port}")),
        Some(format!("OTA.lab.example:{port}")),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) =
            raw_request(app.addr, &checkin_request(host.as_deref(), n as u8)).await;
        assert_eq!(status, 200, "check-in with Host {host:?}: {body}");
    }
    // An HTTP/1.0 device sends no Host at all.
    let (status, _) = raw_request(app.addr, b"GET /api/v1/health HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn ui_and_api_responses_forbid_framing_and_sniffing() {
    let app = TestApp::start().await;
    for (path, admin) in [
        ("/", false),
        ("/api/v1/health", false),
        ("/api/v1/devices", true),
    ] {
        let req = if admin {
            app.admin(reqwest::Method::GET, path)
        } else {
            app.http.get(app.url(path))
        };
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_admin_token_in_the_event_stream_url_is_refused() {
    let app = TestApp::start().await;
    let r = app
        .http
        .get(app.url("/api/v1/events"))
        .query(&[("token", ADMIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "admin_token_in_url");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));
    // The header works (Events::open sends it).
    let _events = Events::open(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn tokens_that_differ_only_in_length_are_refused() {
    let app = TestApp::start().await;
    for wrong in [
        String::new(),
        ADMIN[..ADMIN.len() - 1].to_string(),
        format!("{ADMIN}x"),
        format!("{ADMIN}{ADMIN}"),
    ] {
        let r = app
            .http
            .get(app.url("/api/v1/devices"))
            .header("x-admin-api-key", &wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "token {wrong:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_huge_form_field_is_refused_and_stores_nothing() {
    let app = TestApp::start().await;
    let image = app_image(Chip::Esp32, "blink", "1.0.0", 20_000);
    let form = reqwest::multipart::Form::new()
        .text("project", "p".repeat(2 * 1024 * 1024))
        .part(
            "file",
            reqwest::multipart::Part::bytes(image.clone()).file_name("blink.bin"),
        );
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/firmware")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "field_too_large");
    assert!(v["error"]["message"].as_str().unwrap().contains("project"));
    assert_eq!(app.blob_count(), 0);
    assert_eq!(
        app.get_json("/api/v1/firmware").await,
        serde_json::json!([])
    );
    // A short field and the file still go through.
    let form = reqwest::multipart::Form::new()
        .text("project", "blink")
        .part(
            "file",
            reqwest::multipart::Part::bytes(image).file_name("blink.bin"),
        );
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/firmware")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    app.stop().await;
}

/// A check-in sent with `X-Forwarded-For: claimed` (or none) from this test's own loopback
/// connection; the address the server then records for the device.
async fn recorded_ip(app: &TestApp, mac: &str, header: Option<(&str, &str)>) -> Value {
    let mut body = checkin_body(mac, "1.0.0", None);
    // A device that names no address of its own is recorded with its request's.
    body.as_object_mut().unwrap().remove("ip");
    let mut req = app.http.post(app.url("/api/v1/device/checkin")).json(&body);
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list = app.get_json("/api/v1/devices").await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["mac"] == mac)
        .unwrap_or_else(|| panic!("{mac} listed: {list}"))["ip"]
        .clone()
}

#[tokio::test]
async fn forwarded_headers_are_believed_only_from_a_trusted_proxy() {
    // The trusted proxy is elsewhere: this test's connection (127.0.0.1) is a device like any
    // other, and what it claims to forward for is ignored.
    let app = TestApp::start_info(ServerInfo {
        trusted_proxies: vec!["10.9.0.0/16".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let ip = recorded_ip(
        &app,
        "24:6F:28:AA:10:01",
        Some(("x-forwarded-for", "192.0.2.66")),
    )
    .await;
    assert_eq!(
        ip, "127.0.0.1",
        "an untrusted peer is recorded with its own address"
    );
    let ip = recorded_ip(
        &app,
        "24:6F:28:AA:10:02",
        Some(("forwarded", "for=192.0.2.67")),
    )
    .await;
    assert_eq!(ip, "127.0.0.1", "Forwarded too");
    app.stop().await;

    // This connection is the trusted proxy: the device is the address it names (the right-most
    // one that is not itself a trusted proxy; what the client wrote before it is its own claim).
    let app = TestApp::start_info(ServerInfo {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let ip = recorded_ip(
        &app,
        "24:6F:28:AA:10:03",
        Some(("x-forwarded-for", "203.0.113.9, 192.0.2.68")),
    )
    .await;
    assert_eq!(ip, "192.0.2.68");
    let ip = recorded_ip(&app, "24:6F:28:AA:10:04", None).await;
    assert_eq!(ip, "127.0.0.1", "no header: the proxy's own address");
    app.stop().await;
}
