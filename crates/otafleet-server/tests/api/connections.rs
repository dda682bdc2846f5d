//! Connections cannot starve the server: idle sockets are timed out and capped, while downloads
//! and the event stream in progress are never cut. Timeouts here are short configured values;
//! the tests wait for the closes they cause (bounded, so the old server fails instead of hanging)
//! and never assert how long anything took.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use otafleet_image::Chip;
use otafleet_server::conn::ConnLimits;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Resolves when the server closes `tcp` (EOF or reset); anything it sends first is read and
/// dropped.
async fn closed_by_server(mut tcp: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Wait (at most 30 s, so a server that never closes fails the test) for the server to close it.
async fn expect_closed(tcp: TcpStream, what: &str) {
    tokio::time::timeout(Duration::from_secs(30), closed_by_server(tcp))
        .await
        .unwrap_or_else(|_| panic!("the server never closed {what}"));
}

async fn idle(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

fn limits(header_timeout: Duration, max_connections: usize) -> ConnLimits {
    ConnLimits {
        header_timeout,
        max_connections,
    }
}

#[tokio::test]
async fn idle_connections_beyond_the_cap_are_closed_while_a_checkin_still_answers() {
    // A long header timeout: every close seen here is the cap's doing.
    let app = TestApp::start_limited(limits(Duration::from_secs(600), 4)).await;
    let mut held = Vec::new();
    for _ in 0..12 {
        held.push(idle(app.addr).await);
    }
    // A device arriving while the crowd holds every slot still gets its answer.
    let (status, body) = app
        .checkin(None, checkin_body("24:6F:28:00:00:01", "1.0.0", None))
        .await;
    assert_eq!(
        status, 200,
        "check-in refused behind idle connections: {body}"
    );
    assert!(body["token"].is_string());
    // At most 4 connections stay open (the check-in's own is one of them), so at least 9 of the
    // 12 idle ones are closed; the oldest go first.
    let mut closes = futures_util::stream::FuturesUnordered::new();
    for tcp in held {
        closes.push(tokio::time::timeout(
            Duration::from_secs(30),
            closed_by_server(tcp),
        ));
    }
    let mut closed = 0;
    while let Some(r) = closes.next().await {
        if r.is_ok() {
            closed += 1;
            if closed >= 9 {
                break;
            }
        }
    }
    assert!(
        closed >= 9,
        "only {closed} of 12 idle connections were closed with a cap of 4"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_connection_over_the_cap_gets_503_at_once_when_every_connection_is_busy() {
    let app = TestApp::start_limited(limits(Duration::from_secs(600), 2)).await;
    // Two event streams: busy for as long as they last.
    let a = Events::open(&app).await;
    let b = Events::open(&app).await;
    let (status, body) = raw_request(
        app.addr,
        b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "too_many_connections");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--max-connections"));
    drop((a, b));
    // Once the streams end, there is room again.
    let room = async {
        loop {
            let (status, _) = raw_request(
                app.addr,
                b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )
            .await;
            if status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), room)
        .await
        .expect("no room after the event streams closed");
    app.stop().await;
}

#[tokio::test]
async fn a_connection_that_sends_no_header_is_closed_after_the_header_timeout() {
    let app = TestApp::start_limited(limits(Duration::from_millis(500), 1000)).await;
    expect_closed(idle(app.addr).await, "a connection that sent nothing").await;
    // Half a request head, then silence (slowloris).
    let mut slow = idle(app.addr).await;
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    expect_closed(slow, "a connection that sent half a header").await;
    // The server still answers.
    assert_eq!(app.public_json("/api/v1/health").await["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let app = TestApp::start_limited(limits(Duration::from_millis(500), 1000)).await;
    let mut tcp = idle(app.addr).await;
    tcp.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    expect_closed(tcp, "an idle keep-alive connection").await;
    app.stop().await;
}

#[tokio::test]
async fn a_slow_download_and_the_event_stream_are_not_cut_by_the_header_timeout() {
    let app = TestApp::start_limited(limits(Duration::from_millis(300), 1000)).await;
    let image = app_image(Chip::Esp32, "blink", "1.0.0", 6 * 1024 * 1024);
    let sha = sha256_hex(&image);
    app.upload_ok("blink.bin", image.clone()).await;
    let mut events = Events::open(&app).await;
    let r = app
        .http
        .get(app.url(&format!("/api/v1/device/firmware/{sha}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut got = body.next().await.unwrap().unwrap().to_vec();
    assert!(
        got.len() < image.len(),
        "the download should still be under way"
    );
    // The device stops reading for longer than the header timeout: proven by a connection
    // opened now being closed by it, not by a sleep.
    expect_closed(idle(app.addr).await, "an idle probe").await;
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.expect("the download was cut"));
    }
    assert_eq!(sha256_hex(&got), sha, "the slow download arrived whole");
    // The event stream, quiet all this time, still delivers.
    app.checkin(None, checkin_body("24:6F:28:00:00:02", "1.0.0", None))
        .await;
    events
        .wait_for(|name, v| name == "device" && v["device"]["mac"] == "24:6F:28:00:00:02")
        .await;
    app.stop().await;
}
