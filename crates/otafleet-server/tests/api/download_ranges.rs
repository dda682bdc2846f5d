//! An ESP-IDF partial download (`esp_https_ota` with `partial_http_download`): one kept-alive
//! TCP connection, the image read in 64 KiB pieces with `Range: bytes=a-b`, each answered `206`
//! with its `Content-Range`. Every piece must be byte-exact and all of them must come over the
//! same connection. Over that connection the server's socket must have `TCP_NODELAY` and no
//! `TCP_CORK` left on once a response has arrived: without the first, Nagle held each response's
//! last segment until the client's delayed ACK (~40 ms per piece; BENCHMARKS.md, "Downloads over
//! kept-alive connections"); a cork left on would hold it up to 200 ms.

use std::net::SocketAddr;

use otafleet_image::Chip;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// The piece size ESP-IDF examples use for `max_http_request_size`.
const PIECE: usize = 64 * 1024;

/// One HTTP/1.1 response read off a kept-alive connection: status, headers (names lower-case)
/// and exactly `Content-Length` bytes of body; bytes already read past it stay in `buf`.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_response(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Response {
    let mut chunk = vec![0u8; 16 * 1024];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "the server closed the connection before a response head"
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("an ASCII head");
    buf.drain(..head_end);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("a header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    while buf.len() < len {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.drain(..len).collect();
    Response {
        status,
        headers,
        body,
    }
}

/// An `int` TCP option of the socket `fd`.
fn tcp_option(fd: libc::c_int, option: libc::c_int) -> libc::c_int {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid, exclusively borrowed; a closed fd only makes it fail.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            option,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt({option}) on fd {fd}");
    v
}

fn sockaddr(fd: libc::c_int, peer: bool) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is valid; the kernel writes at most `len` bytes.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast();
    // SAFETY: as above; a descriptor that is not a socket only makes the call fail.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if r != 0 || ss.ss_family != libc::AF_INET as libc::sa_family_t {
        return None;
    }
    // SAFETY: the family says this is a sockaddr_in.
    let sin: libc::sockaddr_in = unsafe { *(p as *const libc::sockaddr_in) };
    Some(SocketAddr::from((
        u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
        u16::from_be(sin.sin_port),
    )))
}

/// The server's end of the connection from `client` (the test runs the server in-process, so its
/// accepted socket is one of this process's descriptors): every such descriptor found.
fn server_sockets(server: SocketAddr, client: SocketAddr) -> Vec<libc::c_int> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::c_int>().ok())
        .filter(|&fd| sockaddr(fd, false) == Some(server) && sockaddr(fd, true) == Some(client))
        .collect()
}

#[tokio::test]
async fn esp_idf_partial_download_reads_every_piece_over_one_kept_alive_connection() {
    let app = TestApp::start().await;
    let img = app_image(Chip::Esp32, "blink", "1.0.0", 1_500_000);
    let size = img.len();
    assert!(size > 20 * PIECE, "a ~1.5 MB image: {size}");
    let fw = app.upload_ok("blink.bin", img.clone()).await;
    let path = format!("/api/v1/device/firmware/{}", fw["sha256"].as_str().unwrap());

    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let client = tcp.local_addr().unwrap();
    let mut buf = Vec::new();
    let mut got = Vec::with_capacity(size);
    let mut pieces = 0;
    while got.len() < size {
        let (a, b) = (got.len(), (got.len() + PIECE).min(size) - 1);
        // What esp_http_client sends for each piece (HTTP/1.1, keep-alive by default).
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ESP32 HTTP Client/1.0\r\n\
             Range: bytes={a}-{b}\r\n\r\n",
            app.addr
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let r = read_response(&mut tcp, &mut buf).await;
        assert_eq!(r.status, 206, "piece {pieces} ({a}-{b})");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {a}-{b}/{size}").as_str()),
            "piece {pieces}"
        );
        assert_ne!(r.header("connection"), Some("close"), "piece {pieces}");
        assert_eq!(r.body.len(), b - a + 1, "piece {pieces}");
        assert!(r.body == img[a..=b], "piece {pieces} ({a}-{b}) differs");
        got.extend_from_slice(&r.body);
        pieces += 1;

        // Still the one connection, as the server sees it, with the options that keep it
        // from stalling.
        let server = server_sockets(app.addr, client);
        assert_eq!(
            server.len(),
            1,
            "piece {pieces}: the server still holds the one connection from {client}"
        );
        assert_eq!(
            tcp_option(server[0], libc::TCP_NODELAY),
            1,
            "the accepted socket has TCP_NODELAY"
        );
        assert_eq!(
            tcp_option(server[0], libc::TCP_CORK),
            0,
            "no cork is left on once a response has arrived"
        );
    }
    assert_eq!(pieces, size.div_ceil(PIECE));
    assert!(
        buf.is_empty(),
        "{} bytes beyond the last response",
        buf.len()
    );
    assert_eq!(sha256_hex(&got), sha256_hex(&img));
    app.stop().await;
}
