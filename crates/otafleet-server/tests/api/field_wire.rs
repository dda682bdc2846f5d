//! Raw HTTP over a TCP socket, for replaying field clients byte for byte: Arduino's updaters send
//! `HTTP/1.0` with `Connection: close` and mixed-case header names, which a high-level client
//! would rewrite.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestApp;

#[derive(Debug)]
pub struct RawResponse {
    /// `HTTP/1.0` or `HTTP/1.1`, as the server wrote it.
    pub version: String,
    pub status: u16,
    /// Names lower-cased; each header in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many times a header appears (HTTPClient joins repeats, so each must come once).
    pub fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }
}

/// Send `head` (request line and headers, `\r\n`-separated, without the blank line) and read the
/// whole answer until the server closes the connection.
pub async fn send(app: &TestApp, head: &str) -> RawResponse {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    parse(&raw)
}

pub fn parse(raw: &[u8]) -> RawResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap().to_string();
    let status = parts.next().unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    RawResponse {
        version,
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

/// Read one response from a kept-alive connection: the head, then exactly `Content-Length` bytes.
pub async fn read_one(s: &mut TcpStream) -> RawResponse {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "connection closed inside a response head");
        raw.push(byte[0]);
    }
    let mut r = parse(&raw);
    let len: usize = r
        .header("content-length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    r.body = body;
    r
}
