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
