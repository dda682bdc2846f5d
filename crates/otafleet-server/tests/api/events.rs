//! The event stream (`GET /api/v1/events`) cannot slow the devices down: a client that stops
//! reading holds up neither publishing nor check-ins nor the other clients, what is kept for it
//! is bounded in bytes, and when it reads again it is told to reload (`lagged`).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use otafleet_core::events::Event;
use otafleet_core::watch_folders::WatchFolder;
use otafleet_core::{Fleet, Settings};
use otafleet_server::AppState;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::ADMIN;

/// A server whose fleet the test holds too, to publish events directly.
struct Server {
    addr: SocketAddr,
    fleet: Fleet,
    _dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(fleet.clone(), ADMIN);
    let task = tokio::spawn(async move {
        otafleet_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    Server {
        addr,
        fleet,
        _dir: dir,
        stop,
        task,
    }
}

/// Bounds a wait so that a regression fails instead of hanging; nothing here measures speed.
async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 60 s"))
}

/// Reads `stream` until `needle` has been seen; keeps only a short tail between chunks.
async fn read_until<S, E>(stream: &mut S, tail: &mut String, needle: &str)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Debug,
{
    while !tail.contains(needle) {
        let chunk = stream.next().await.expect("stream open").expect("read");
        tail.push_str(&String::from_utf8_lossy(&chunk));
        if tail.len() > 4096 && !tail.contains(needle) {
            let cut = tail.len() - 1024;
            let cut = (cut..tail.len())
                .find(|&i| tail.is_char_boundary(i))
                .unwrap();
            tail.drain(..cut);
        }
    }
    let at = tail.find(needle).unwrap() + needle.len();
    tail.drain(..at);
}

/// A raw client that reads the response head and the `hello`, then reads nothing more, with a
/// 4 KiB receive buffer: from the server's side, a browser tab that hangs.
async fn stalled_client(addr: SocketAddr) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let req = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("event: hello") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream closed before hello");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_event_stream_client_holds_up_nothing_and_is_told_to_reload() {
    let s = start().await;
    let base = format!("http://{}", s.addr);
    let http = reqwest::Client::new();
    let mut stalled = stalled_client(s.addr).await;
    let healthy = http
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200);
    let mut healthy = healthy.bytes_stream();
    let mut healthy_tail = String::new();
    bounded(
        "the healthy client's hello",
        read_until(&mut healthy, &mut healthy_tail, "event: hello"),
    )
    .await;

    // About 45 MB of events: far more than the stalled client's socket and the server's bounded
    // backlog hold, far fewer events than the core's bus keeps (4,096).
    let big = "x".repeat(30_000);
    for i in 0..1500 {
        s.fleet.events().publish(Event::Watch {
            folder: Box::new(WatchFolder {
                id: i,
                path: "/flood".into(),
                auto_deploy: false,
                created_at: "2026-01-01T00:00:00.000Z".into(),
                last_file: None,
                last_result: None,
                last_message: Some(big.clone()),
                last_at: None,
            }),
        });
        tokio::task::yield_now().await;
    }

    // Devices are still answered, and the healthy client still sees what happens.
    let mac = "24:0A:C4:5E:1A:ED";
    let r = bounded(
        "a check-in while a client is stalled",
        http.post(format!("{base}/api/v1/device/checkin"))
            .json(&json!({"mac": mac, "chip": "esp32", "project": "blink", "version": "1.0.0"}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    bounded(
        "the healthy client seeing the check-in",
        read_until(&mut healthy, &mut healthy_tail, mac),
    )
    .await;

    // The stalled client reads again: it is told it missed events (the UI reloads on that),
    // then gets what happened after.
    let mut stalled_stream = Box::pin(futures_util::stream::unfold(
        (&mut stalled, vec![0u8; 64 * 1024]),
        |(sock, mut buf)| async move {
            match sock.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(&buf[..n])),
                    (sock, buf),
                )),
                Err(e) => Some((Err(e), (sock, buf))),
            }
        },
    ));
    let mut tail = String::new();
    bounded(
        "a lagged event for the stalled client",
        read_until(&mut stalled_stream, &mut tail, "event: lagged"),
    )
    .await;
    bounded(
        "the check-in's event for the stalled client",
        read_until(&mut stalled_stream, &mut tail, mac),
    )
    .await;
    drop(stalled_stream);

    let _ = s.stop.send(());
    s.task.await.unwrap();
    s.fleet.close().await;
}
