//! HTTPS on the same port as HTTP: a connection's first byte picks the protocol, both answer the
//! same routes, requests say how they came (a device's check-in records it), image downloads over
//! TLS carry the same bytes without sendfile, and connections that stall before or inside the
//! handshake are closed like idle plain ones. `GET /api/v1/tls` gives the CA the handshake
//! verifies against.

use std::sync::Arc;
use std::time::Duration;

use otafleet_image::Chip;
use otafleet_server::conn::ConnLimits;
use otafleet_server::tls::{Mode, Source, Tls};
use otafleet_server::ServerInfo;
use serde_json::Value;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

fn tls(mode: Mode) -> (Option<Arc<Tls>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tls = Tls::start(
        mode,
        Source::Generated {
            data_dir: dir.path().to_path_buf(),
            extra: vec!["ota.bench.lan".into()],
        },
    )
    .unwrap();
    (tls, dir)
}

async fn start(mode: Mode, limits: ConnLimits) -> (TestApp, reqwest::Client, tempfile::TempDir) {
    let (tls, dir) = tls(mode);
    let app = TestApp::start_full(
        |_| {},
        ServerInfo {
            listen: None,
            tls,
            ..ServerInfo::default()
        },
        limits,
    )
    .await;
    let ca = std::fs::read(dir.path().join("tls/ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    (app, client, dir)
}

fn https(app: &TestApp, path: &str) -> String {
    format!("https://localhost:{}{path}", app.addr.port())
}

#[tokio::test]
async fn one_port_answers_http_and_https_and_a_checkin_records_which() {
    let (app, client, dir) = start(Mode::Auto, ConnLimits::default()).await;
    // By name and by address, verified against the CA alone.
    for url in [
        https(&app, "/api/v1/health"),
        format!("https://127.0.0.1:{}/api/v1/health", app.addr.port()),
    ] {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
    }
    assert_eq!(
        app.http
            .get(app.url("/api/v1/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "plain HTTP still answers on the same port"
    );
    // A client that does not trust the CA is refused by its own verification.
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(stranger
        .get(https(&app, "/api/v1/health"))
        .send()
        .await
        .is_err());

    // The same device checks in over HTTPS, then over plain HTTP: the device says which.
    let mac = "24:6F:28:00:AA:01";
    let r: Value = client
        .post(https(&app, "/api/v1/device/checkin"))
        .json(&checkin_body(mac, "1.0.0", None))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["token"].as_str().unwrap().to_string();
    let d = app.get_json(&format!("/api/v1/devices/{mac}")).await;
    assert_eq!(d["tls"], true, "{d}");
    let (status, _) = app
        .checkin(Some(&token), checkin_body(mac, "1.0.0", None))
        .await;
    assert_eq!(status, 200);
    let d = app.get_json(&format!("/api/v1/devices/{mac}")).await;
    assert_eq!(d["tls"], false, "{d}");

    // What GET /api/v1/tls says is what the handshake presented.
    let info: Value = client
        .get(https(&app, "/api/v1/tls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["mode"], "auto");
    let pem = std::fs::read_to_string(dir.path().join("tls/ca.pem")).unwrap();
    assert_eq!(info["ca_pem"], pem.as_str());
    let der = rustls_der(&pem);
    let want: Vec<String> = sha2::Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(info["ca_sha256"], want.join(":").as_str());
    let names: Vec<&str> = info["certificate"]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for n in [
        "DNS:localhost",
        "IP:127.0.0.1",
        "DNS:127.0.0.1",
        "DNS:ota.bench.lan",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let snippets = info["snippets"].as_array().unwrap();
    let ids: Vec<&str> = snippets.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "pem",
            "arduino",
            "esp_idf",
            "esp32fota",
            "esp_admin",
            "curl"
        ]
    );
    let second_line = pem.lines().nth(1).unwrap();
    assert!(snippets[1]["text"]
        .as_str()
        .unwrap()
        .contains(&format!("\"{second_line}\\n\"")));
    let r = app
        .http
        .get(app.url("/api/v1/tls/ca.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), pem);
    app.stop().await;
}

fn rustls_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn an_image_over_tls_is_the_same_bytes_and_ranges_without_sendfile() {
    let (app, client, _dir) = start(Mode::Auto, ConnLimits::default()).await;
    let img = app_image(Chip::Esp32, "blink", "1.0.0", 300_000);
    let fw = app.upload_ok("blink.bin", img.clone()).await;
    let path = format!("/api/v1/device/firmware/{}", fw["sha256"].as_str().unwrap());
    let before = otafleet_server::blob_cache::send::sendfile_bytes();
    for _ in 0..2 {
        let r = client.get(https(&app, &path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-length"],
            img.len().to_string().as_str()
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), img.as_slice());
    }
    let r = client
        .get(https(&app, &path))
        .header("range", "bytes=1000-65535")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &img[1000..65536]);
    assert_eq!(
        otafleet_server::blob_cache::send::sendfile_bytes(),
        before,
        "TLS bytes are encrypted in user space: sendfile must not touch them"
    );
    // Plain HTTP keeps its fast path (the image is cached by now).
    let r = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), img.as_slice());
    assert!(otafleet_server::blob_cache::send::sendfile_bytes() > before);
    app.stop().await;
}

/// Resolves when the server closes `tcp`.
async fn closed(mut tcp: tokio::net::TcpStream, what: &str) {
    let wait = async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("the server never closed {what}"));
}

#[tokio::test]
async fn silent_and_stalled_handshakes_are_closed_and_crowds_evicted() {
    let limits = ConnLimits {
        header_timeout: Duration::from_millis(500),
        max_connections: 64,
    };
    let (app, client, _dir) = start(Mode::Auto, limits).await;
    // Sends nothing: closed when the first byte does not come in time.
    let silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    closed(silent, "a silent connection").await;
    // Sends half a ClientHello and stalls: closed when the handshake does not finish in time.
    let mut stalled = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    closed(stalled, "a stalled handshake").await;
    // Garbage that looks like neither: plain HTTP parsing refuses it and closes.
    let mut junk = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    junk.write_all(b"\x00\x01\x02\r\n\r\n").await.unwrap();
    closed(junk, "a junk connection").await;
    assert_eq!(
        client
            .get(https(&app, "/api/v1/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.stop().await;

    // A crowd of idle sockets over the cap: evicted while they wait for their first byte, and an
    // HTTPS check-in still gets through.
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(600),
        max_connections: 4,
    };
    let (app, client, _dir) = start(Mode::Auto, limits).await;
    let mut held = Vec::new();
    for _ in 0..12 {
        held.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    let r = client
        .post(https(&app, "/api/v1/device/checkin"))
        .json(&checkin_body("24:6F:28:00:AA:02", "1.0.0", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = held.remove(0);
    closed(first, "the oldest idle connection").await;
    app.stop().await;
}

#[tokio::test]
async fn tls_info_when_off() {
    let app = TestApp::start().await;
    let info = app.public_json("/api/v1/tls").await;
    assert_eq!(info["mode"], "off");
    assert!(info["ca_pem"].is_null());
    assert!(info["snippets"].as_array().unwrap().is_empty());
    let r = app
        .http
        .get(app.url("/api/v1/tls/ca.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_ca");
    // Nothing but plain HTTP answers: a handshake gets an HTTP error back, not a certificate.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert!(client
        .get(format!(
            "https://127.0.0.1:{}/api/v1/health",
            app.addr.port()
        ))
        .send()
        .await
        .is_err());
    app.stop().await;
}

#[tokio::test]
async fn require_refuses_plain_http_from_the_lan_but_not_from_this_machine() {
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;
    let (tls, _dir) = tls(Mode::Require);
    let dir = tempfile::tempdir().unwrap();
    let fleet = otafleet_core::Fleet::open(otafleet_core::Settings::new(dir.path()))
        .await
        .unwrap();
    let state = otafleet_server::AppState::new(fleet, ADMIN).with_info(ServerInfo {
        tls,
        ..ServerInfo::default()
    });
    let app = otafleet_server::app(state);
    let call = |path: &str, peer: &str, transport: Option<otafleet_server::conn::Transport>| {
        let mut req = axum::http::Request::get(path)
            .header("host", "10.0.0.1:8470")
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(axum::body::Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<std::net::SocketAddr>().unwrap()));
        if let Some(t) = transport {
            req.extensions_mut().insert(t);
        }
        app.clone().oneshot(req)
    };
    use otafleet_server::conn::Transport;
    let r = call("/api/v1/devices", "10.0.0.9:5000", Some(Transport::Plain))
        .await
        .unwrap();
    assert_eq!(r.status(), 426);
    let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "tls_required");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("https://"));
    let r = call("/api/v1/device/checkin", "10.0.0.9:5000", None)
        .await
        .unwrap();
    assert_eq!(r.status(), 426, "the device routes too");
    for (path, peer, t) in [
        ("/api/v1/devices", "10.0.0.9:5000", Some(Transport::Tls)),
        ("/api/v1/devices", "127.0.0.1:5000", Some(Transport::Plain)),
        ("/api/v1/tls", "10.0.0.9:5000", Some(Transport::Plain)),
        (
            "/api/v1/tls/ca.pem",
            "10.0.0.9:5000",
            Some(Transport::Plain),
        ),
    ] {
        let r = call(path, peer, t).await.unwrap();
        assert_eq!(r.status(), 200, "{path} from {peer} over {t:?}");
    }
}
