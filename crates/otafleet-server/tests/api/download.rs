//! Firmware downloads as ESP clients need them: Content-Length on every 200 (also to HTTP/1.0),
//! HEAD, Range → 206, If-Range, ETag / If-None-Match → 304, 416, x-MD5 and x-SHA256.

use otafleet_image::Chip;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

async fn setup() -> (TestApp, Vec<u8>, String) {
    let app = TestApp::start().await;
    let img = app_image(Chip::Esp32, "blink", "1.0.0", 100_000);
    let fw = app.upload_ok("blink.bin", img.clone()).await;
    let url = format!("/api/v1/device/firmware/{}", fw["sha256"].as_str().unwrap());
    (app, img, url)
}

#[tokio::test]
async fn full_get_head_and_hash_headers() {
    let (app, img, url) = setup().await;
    let sha = sha256_hex(&img);
    let md5 = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(&img))
    };
    let r = app.http.get(app.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-length"], img.len().to_string().as_str());
    assert!(h.get("transfer-encoding").is_none(), "never chunked");
    assert_eq!(h["x-md5"], md5.as_str());
    assert_eq!(h["x-sha256"], sha.as_str());
    assert_eq!(h["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().as_ref(), img.as_slice());

    let r = app.http.head(app.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        img.len().to_string().as_str(),
        "HEAD tells the size"
    );
    assert_eq!(r.headers()["x-sha256"], sha.as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    let r = app
        .http
        .get(app.url(&url))
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    app.stop().await;
}

#[tokio::test]
async fn ranges_resume_and_if_range() {
    let (app, img, url) = setup().await;
    let sha = sha256_hex(&img);
    let r = app
        .http
        .get(app.url(&url))
        .header("range", "bytes=0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-0/{}", img.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &img[..1]);

    // A download cut off halfway resumes from where it stopped and the halves make the whole.
    let half = img.len() / 2;
    let r = app
        .http
        .get(app.url(&url))
        .header("range", format!("bytes=0-{}", half - 1))
        .send()
        .await
        .unwrap();
    let mut got = r.bytes().await.unwrap().to_vec();
    let r = app
        .http
        .get(app.url(&url))
        .header("range", format!("bytes={half}-"))
        .header("if-range", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-length"],
        (img.len() - half).to_string().as_str()
    );
    got.extend_from_slice(&r.bytes().await.unwrap());
    assert_eq!(sha256_hex(&got), sha);

    // If-Range for another image: the whole file, not a piece of the wrong one.
    let r = app
        .http
        .get(app.url(&url))
        .header("range", "bytes=10-")
        .header("if-range", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = app
        .http
        .get(app.url(&url))
        .header("range", format!("bytes={}-", img.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{}", img.len()).as_str()
    );
    app.stop().await;
}

#[tokio::test]
async fn http_1_0_request_gets_content_length_and_the_whole_body() {
    let (app, img, url) = setup().await;
    let mut sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let req = format!(
        "GET {url} HTTP/1.0\r\nHost: {}\r\nUser-Agent: ESP32-http-Update\r\nConnection: close\r\n\r\n",
        app.addr
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).await.unwrap(); // the server closes: HTTP/1.0
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.0 200") || head.starts_with("http/1.1 200"),
        "{head}"
    );
    assert!(
        head.contains(&format!("content-length: {}", img.len())),
        "{head}"
    );
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert_eq!(&raw[split..], img.as_slice());
    app.stop().await;
}

#[tokio::test]
async fn unknown_or_malformed_hash_is_refused() {
    let app = TestApp::start().await;
    let r = app
        .http
        .get(app.url(&format!("/api/v1/device/firmware/{}", "ab".repeat(32))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .http
        .get(app.url("/api/v1/device/firmware/..%2F..%2Fetc%2Fpasswd"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    app.stop().await;
}

/// Downloads look firmware rows up in a per-server index (`FirmwareIndex`), not the database: a
/// delete must still be seen by the very next request, on both download routes, every time, and
/// the same bytes imported again must be served again.
#[tokio::test]
async fn a_deleted_image_is_gone_at_once_and_served_again_once_imported_again() {
    let app = TestApp::start().await;
    let img = app_image(Chip::Esp32, "blink", "1.0.0", 100_000);
    let sha = sha256_hex(&img);
    let native = app.url(&format!("/api/v1/device/firmware/{sha}"));
    let per_device = app.url(&format!("/ota/firmware/aa:bb:cc:dd:ee:ff/{sha}"));
    for round in 0..10 {
        let fw = app.upload_ok("blink.bin", img.clone()).await;
        for url in [&native, &per_device, &native] {
            let r = app.http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "round {round}: {url}");
            assert_eq!(r.bytes().await.unwrap().as_ref(), img.as_slice());
        }
        let r = app
            .admin(
                reqwest::Method::DELETE,
                &format!("/api/v1/firmware/{}", fw["id"]),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        for url in [&native, &per_device] {
            let r = app.http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 404, "round {round}: GET {url} after the delete");
            let r = app.http.head(url).send().await.unwrap();
            assert_eq!(
                r.status(),
                404,
                "round {round}: HEAD {url} after the delete"
            );
        }
    }
    // Upper-case spellings are not kept in the index but still answered (and still 404 now).
    let r = app
        .http
        .get(app.url(&format!(
            "/api/v1/device/firmware/{}",
            sha.to_ascii_uppercase()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.upload_ok("blink.bin", img.clone()).await;
    let r = app
        .http
        .get(app.url(&format!(
            "/api/v1/device/firmware/{}",
            sha.to_ascii_uppercase()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), img.as_slice());
    app.stop().await;
}

/// Cached image bytes leave with sendfile(2) (`blob_cache::send`): several images of a few MB,
/// larger than a socket buffer, whole and in ranges, at once, to a fast and a slow reader, must
/// arrive byte for byte.
#[tokio::test]
async fn large_images_and_ranges_arrive_intact_side_by_side() {
    let app = TestApp::start().await;
    let a = app_image(Chip::Esp32, "a", "1.0.0", 3_000_000);
    let b = app_image(Chip::Esp32s3, "b", "2.0.0", 2_000_000);
    let url_a = format!("/api/v1/device/firmware/{}", sha256_hex(&a));
    let url_b = format!("/api/v1/device/firmware/{}", sha256_hex(&b));
    app.upload_ok("a.bin", a.clone()).await;
    app.upload_ok("b.bin", b.clone()).await;
    let sent_before = otafleet_server::blob_cache::send::sendfile_bytes();
    let mut tasks = Vec::new();
    for i in 0..12u32 {
        let (img, url) = if i.is_multiple_of(2) {
            (&a, &url_a)
        } else {
            (&b, &url_b)
        };
        let (range, want) = match i % 3 {
            0 => (None, img.clone()),
            1 => (
                Some("bytes=1000-1500999".to_string()),
                img[1000..1_501_000].to_vec(),
            ),
            _ => (
                Some("bytes=-12345".to_string()),
                img[img.len() - 12345..].to_vec(),
            ),
        };
        let mut req = app.http.get(app.url(url));
        if let Some(range) = range {
            req = req.header("range", range);
        }
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success());
            let got = r.bytes().await.unwrap();
            assert!(got.as_ref() == want.as_slice(), "download {i} differs");
        }));
    }
    // A slow reader with a small receive window: the server sends in many partial writes.
    let slow = {
        let (addr, url, a) = (app.addr, url_a.clone(), a.clone());
        tokio::spawn(async move {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.set_recv_buffer_size(4096).unwrap();
            let mut sock = sock.connect(addr).await.unwrap();
            let req = format!("GET {url} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            sock.write_all(req.as_bytes()).await.unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let mut reads = 0u32;
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                reads += 1;
                if reads.is_multiple_of(64) {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(raw[split..] == a[..], "the slow download differs");
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    slow.await.unwrap();
    if cfg!(target_os = "linux") {
        // At least the slow reader's whole image (other tests may add theirs).
        assert!(
            otafleet_server::blob_cache::send::sendfile_bytes() - sent_before >= a.len() as u64,
            "image bytes went out through sendfile"
        );
    }
    app.stop().await;
}

/// Pipelined requests on one connection: hyper may queue the end of one body, the next head and
/// the next body in one vectored write; each part must still go out in order and complete.
#[tokio::test]
async fn pipelined_requests_on_one_connection_keep_their_framing() {
    let (app, img, url) = setup().await;
    let mut sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let host = app.addr;
    let req = format!(
        "GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n\
         HEAD {url} HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET {url} HTTP/1.1\r\nHost: {host}\r\nRange: bytes=10-19\r\n\r\n\
         GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).await.unwrap();
    let mut rest = raw.as_slice();
    for (status, body) in [
        ("200", Some(&img[..])),
        ("200", None),
        ("206", Some(&img[10..20])),
        ("200", Some(&img[..])),
    ] {
        let split = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        let head = String::from_utf8_lossy(&rest[..split]).to_ascii_lowercase();
        assert!(head.starts_with(&format!("http/1.1 {status}")), "{head}");
        rest = &rest[split..];
        if let Some(body) = body {
            assert!(rest.len() >= body.len(), "a body is cut short");
            assert!(&rest[..body.len()] == body, "a body differs");
            rest = &rest[body.len()..];
        }
    }
    assert!(rest.is_empty(), "{} bytes too many", rest.len());
    app.stop().await;
}
