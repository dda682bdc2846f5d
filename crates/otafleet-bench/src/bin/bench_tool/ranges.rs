//! `bench-tool ranges`: an ESP-IDF partial download (`esp_https_ota` with
//! `partial_http_download`) as a benchmark: ONE kept-alive TCP connection, successive
//! `Range: bytes=a-b` requests of `--piece` bytes (64 KiB), wrapping to the start at the image's
//! end, for `--seconds`. Every answer is checked: `206`, the right `Content-Range`, exactly the
//! image's bytes, and the connection never closed. Prints the time per range (p50, p99, max,
//! mean) and how many took over 30 ms; exits non-zero on any wrong answer.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Args {
    pub name: String,
    pub addr: String,
    pub path: String,
    pub file: String,
    pub piece: usize,
    pub seconds: f64,
}

/// Run it; `Err` says what was wrong with an answer.
pub async fn run(a: Args) -> Result<(), String> {
    let img = std::fs::read(&a.file).map_err(|e| format!("{}: {e}", a.file))?;
    let size = img.len();
    let mut tcp = TcpStream::connect(&a.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", a.addr))?;
    tcp.set_nodelay(true).ok();
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut times = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(a.seconds);
    let mut at = 0usize;
    while Instant::now() < end {
        let (lo, hi) = (at, (at + a.piece).min(size) - 1);
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ESP32 HTTP Client/1.0\r\nRange: bytes={lo}-{hi}\r\n\r\n",
            a.path, a.addr
        );
        let t = Instant::now();
        tcp.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("range {lo}-{hi}: write: {e}"))?;
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            read_more(&mut tcp, &mut buf, &mut chunk, lo, hi).await?;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        buf.drain(..head_end);
        if !head.starts_with("http/1.1 206") {
            return Err(format!(
                "range {lo}-{hi}: {}",
                head.lines().next().unwrap_or("")
            ));
        }
        let want_range = format!("content-range: bytes {lo}-{hi}/{size}");
        if !head.lines().any(|l| l.trim() == want_range) {
            return Err(format!("range {lo}-{hi}: no `{want_range}` in:\n{head}"));
        }
        if head.lines().any(|l| l.trim() == "connection: close") {
            return Err(format!("range {lo}-{hi}: the server closes the connection"));
        }
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("range {lo}-{hi}: no content-length"))?;
        if len != hi - lo + 1 {
            return Err(format!("range {lo}-{hi}: content-length {len}"));
        }
        while buf.len() < len {
            read_more(&mut tcp, &mut buf, &mut chunk, lo, hi).await?;
        }
        times.push(t.elapsed());
        if buf[..len] != img[lo..=hi] {
            return Err(format!("range {lo}-{hi}: the bytes differ from the image"));
        }
        buf.drain(..len);
        at = if hi + 1 >= size { 0 } else { hi + 1 };
    }
    if times.is_empty() {
        return Err("no range completed".into());
    }
    let n = times.len();
    let mean = times.iter().sum::<Duration>() / n as u32;
    let slow = times
        .iter()
        .filter(|t| **t > Duration::from_millis(30))
        .count();
    times.sort();
    let q = |p: f64| times[((n as f64 * p).ceil() as usize).clamp(1, n) - 1];
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
    println!(
        "ranges {}: {n} ranges of {} bytes on one connection, every one checked; per range p50 {} ms p99 {} ms max {} ms mean {} ms; over 30 ms: {slow}",
        a.name,
        a.piece,
        ms(q(0.5)),
        ms(q(0.99)),
        ms(times[n - 1]),
        ms(mean)
    );
    Ok(())
}

async fn read_more(
    tcp: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
    lo: usize,
    hi: usize,
) -> Result<(), String> {
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(chunk))
        .await
        .map_err(|_| format!("range {lo}-{hi}: no answer within 10 s"))?
        .map_err(|e| format!("range {lo}-{hi}: read: {e}"))?;
    if n == 0 {
        return Err(format!("range {lo}-{hi}: the server closed the connection"));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}
