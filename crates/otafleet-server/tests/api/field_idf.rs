//! Issue 3, ESP-IDF `esp_https_ota`: resumable and partial downloads, replayed as
//! espressif/esp-idf `components/esp_https_ota/src/esp_https_ota.c` sends them
//! (`esp_https_ota_begin`: with `ota_resumption` the first GET carries `Range: bytes=<offset>-`;
//! with `partial_http_download` a HEAD for the length, then GETs with
//! `Range: bytes=<start>-<end>` of `max_http_request_size` (64 KiB), the last one ending at
//! `image_length`, on one keep-alive connection; `esp_http_client` sends HTTP/1.1 with
//! `User-Agent: ESP32 HTTP Client/1.0`).
//!
//! `esp_https_ota` is only a downloader; the check is the application's. Here the app checks in
//! over the native protocol and downloads from its per-device URL `/ota/firmware/{mac}/{sha256}`,
//! which counts the bytes, so progress shows even for an app that reports none. The device is
//! enrolled with a token, so that URL answers it only with that token (`Authorization: Bearer`,
//! set by the app with `esp_http_client_set_header` in `http_client_init_cb`); without it the
//! request is refused (issue 11, see `trust.rs`).

use otafleet_image::Chip;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::*;
use crate::field_wire::read_one;

const MAC: &str = "30:AE:A4:07:0D:64";
const CHUNK: usize = 64 * 1024;

/// Enrol, deploy `v2`, and get the offer: returns (token, per-device URL path, image).
async fn offered(app: &TestApp, v2_payload: usize) -> (String, String, Vec<u8>, String) {
    let v1 = app_image(Chip::Esp32, "blink", "1.0.0", 40_000);
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", v2_payload);
    let body = |version: &str, sha: &str| {
        let mut b = checkin_body(MAC, version, Some(sha));
        b["free_space"] = json!(16 * 1024 * 1024);
        b
    };
    let (_, first) = app.checkin(None, body("1.0.0", &sha256_hex(&v1))).await;
    let token = first["token"].as_str().unwrap().to_string();
    let fw2 = app.upload_ok("blink.bin", v2.clone()).await;
    app.deploy(json!({"firmware_id": fw2["id"], "devices": [MAC]}))
        .await;
    let (status, offer) = app
        .checkin(Some(&token), body("1.0.0", &sha256_hex(&v1)))
        .await;
    assert_eq!(status, 200);
    let sha = offer["update"]["sha256"].as_str().unwrap().to_string();
    (token, format!("/ota/firmware/{MAC}/{sha}"), v2, sha)
}

async fn confirm(app: &TestApp, events: &mut Events, token: &str, v2: &[u8]) {
    let (status, _) = app
        .checkin(
            Some(token),
            checkin_body(MAC, "2.0.0", Some(&sha256_hex(v2))),
        )
        .await;
    assert_eq!(status, 200);
    events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "done")
        .await;
}

#[tokio::test]
async fn idf_partial_download_updates_from_check_to_confirmed() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let (token, path, v2, sha) = offered(&app, 200_000).await;
    let len = v2.len();
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let req = |method: &str, range: Option<String>| {
        let mut r = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ESP32 HTTP Client/1.0\r\n\
             Authorization: Bearer {token}\r\n",
            app.addr
        );
        if let Some(range) = range {
            r.push_str(&format!("Range: {range}\r\n"));
        }
        r + "\r\n"
    };
    s.write_all(req("HEAD", None).as_bytes()).await.unwrap();
    // A HEAD answer has a Content-Length but no body: read the head only.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let h = crate::field_wire::parse(&head);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some(len.to_string().as_str()));
    assert_eq!(h.header("etag"), Some(format!("\"{sha}\"").as_str()));

    let mut got = Vec::new();
    let mut start = 0usize;
    while start < len {
        // esp_https_ota's last range ends at image_length (one past the end); the server clamps.
        let end = if len > CHUNK + start {
            start + CHUNK - 1
        } else {
            len
        };
        s.write_all(req("GET", Some(format!("bytes={start}-{end}"))).as_bytes())
            .await
            .unwrap();
        let r = read_one(&mut s).await;
        assert_eq!(r.status, 206, "each range is a 206");
        let last = end.min(len - 1);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{last}/{len}").as_str())
        );
        assert_eq!(r.header("x-sha256"), Some(sha.as_str()));
        got.extend_from_slice(&r.body);
        start = last + 1;
    }
    assert_eq!(got, v2, "the ranges make the image");
    // Ranges are counted by separate tasks, so the last count may land just after `installing`.
    let inst = events
        .wait_for(|n, v| {
            n == "update"
                && v["update"]["state"] == "installing"
                && v["update"]["bytes_sent"] == len
        })
        .await;
    assert_eq!(inst["update"]["progress"], 100);
    confirm(&app, &mut events, &token, &v2).await;
    app.stop().await;
}

#[tokio::test]
async fn idf_download_cut_halfway_resumes_with_range() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    // Large enough that the half not read cannot all sit in the server's socket buffer (up to
    // 4 MiB on Linux) and hyper's write queue when the device drops the connection.
    let (token, path, v2, sha) = offered(&app, 14_000_000).await;
    let len = v2.len();
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(app.addr).await.unwrap();
    s.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ESP32 HTTP Client/1.0\r\n\
             Authorization: Bearer {token}\r\nRange: bytes=0-\r\n\r\n",
            app.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let half = len / 2;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while got.len() < half {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = crate::field_wire::parse(&got[..head_end]);
    assert_eq!(
        head.status, 206,
        "ota_resumption's first request is a range"
    );
    let mut body = got[head_end..].to_vec();
    drop(s); // the connection drops mid-body
    let cut = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "interrupted")
        .await;
    assert!(cut["update"]["progress"].as_i64().unwrap() < 100, "{cut}");
    assert_eq!(cut["update"]["failure"], "download_cut", "{cut}");

    let r = app
        .http
        .get(app.url(&path))
        .header("User-Agent", "ESP32 HTTP Client/1.0")
        .bearer_auth(&token)
        .header("Range", format!("bytes={}-", body.len()))
        .header("If-Range", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes {}-{}/{len}", body.len(), len - 1).as_str()
    );
    body.extend_from_slice(&r.bytes().await.unwrap());
    assert_eq!(body, v2, "the two halves make the image");
    let inst = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "installing")
        .await;
    assert_eq!(inst["update"]["progress"], 100);
    confirm(&app, &mut events, &token, &v2).await;
    app.stop().await;
}
