//! `bench-tool sse`: hold N event-stream clients on `GET /api/v1/events`, each reading what it is
//! sent (as a browser tab would), until killed. Prints `connected N` once every client got its
//! `hello`; every 5 s it reports on stderr the bytes and `lagged` events received so far.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn run(addr: &str, token: &str, clients: usize) {
    let bytes = Arc::new(AtomicU64::new(0));
    let lagged = Arc::new(AtomicU64::new(0));
    let mut ready = Vec::new();
    for _ in 0..clients {
        let (tx, rx) = tokio::sync::oneshot::channel();
        ready.push(rx);
        let (addr, token, bytes, lagged) = (
            addr.to_string(),
            token.to_string(),
            bytes.clone(),
            lagged.clone(),
        );
        tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            let req = format!(
                "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let mut tx = Some(tx);
            loop {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = &buf[..n];
                if tx.is_some() && contains(chunk, b"hello") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                if contains(chunk, b"event: lagged") || contains(chunk, b"event:lagged") {
                    lagged.fetch_add(1, Ordering::Relaxed);
                }
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            eprintln!("an event stream ended");
        });
    }
    for rx in ready {
        rx.await.expect("a client got its hello");
    }
    println!("connected {clients}");
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        eprintln!(
            "sse: {} bytes received, {} lagged",
            bytes.load(Ordering::Relaxed),
            lagged.load(Ordering::Relaxed)
        );
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
