//! `TestApp`: a real server on a free loopback port over a fresh data directory, plus helpers to
//! talk to it as the admin and as a device.

use std::net::SocketAddr;

use futures_util::StreamExt;
use otafleet_core::{Fleet, Settings};
use otafleet_image::synth;
use otafleet_image::Chip;
use otafleet_server::conn::ConnLimits;
use otafleet_server::{AppState, ServerInfo};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const ADMIN: &str = "test-admin-token";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The server's core, for tests that wait for a state the API does not show.
    pub fleet: Fleet,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::start_full(tweak, ServerInfo::default(), ConnLimits::default()).await
    }

    /// A server with the given connection limits (header timeout, connection cap).
    pub async fn start_limited(limits: ConnLimits) -> Self {
        Self::start_full(|_| {}, ServerInfo::default(), limits).await
    }

    /// A server told what its front end would tell it (e.g. `--allowed-host` names).
    pub async fn start_info(info: ServerInfo) -> Self {
        Self::start_full(|_| {}, info, ConnLimits::default()).await
    }

    pub async fn start_full(
        tweak: impl FnOnce(&mut Settings),
        info: ServerInfo,
        limits: ConnLimits,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, tweak, info, limits).await
    }

    /// Stop this server and start a new one on the same data directory (a restart).
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Settings)) -> Self {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        Self::start_in(
            self.dir,
            tweak,
            ServerInfo::default(),
            ConnLimits::default(),
        )
        .await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut Settings),
        info: ServerInfo,
        limits: ConnLimits,
    ) -> Self {
        let mut settings = Settings::new(dir.path());
        tweak(&mut settings);
        let fleet = Fleet::open(settings).await.expect("open fleet");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let state = AppState::new(fleet.clone(), ADMIN).with_info(info);
        let core = fleet.clone();
        let task = tokio::spawn(async move {
            otafleet_server::serve_with(listener, state, limits, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            dir,
            fleet: core,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(ADMIN)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// DELETE an admin resource; returns the status.
    pub async fn admin_delete(&self, path: &str) -> reqwest::StatusCode {
        self.admin(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// GET an image by SHA-256 from the native download route, as a device does.
    pub async fn download(&self, sha256: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/api/v1/device/firmware/{sha256}")))
            .send()
            .await
            .unwrap()
    }

    /// GET a public (unauthenticated) JSON resource.
    pub async fn public_json(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Upload raw bytes; returns (status, body).
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let r = self
            .admin(reqwest::Method::POST, "/api/v1/firmware")
            .query(&[("filename", name)])
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn upload_ok(&self, name: &str, bytes: Vec<u8>) -> Value {
        let (status, body) = self.upload(name, bytes).await;
        assert_eq!(status, 201, "upload of {name} should be accepted: {body}");
        body
    }

    pub async fn deploy(&self, body: Value) -> Value {
        let r = self
            .admin(reqwest::Method::POST, "/api/v1/deployments")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "deployment should be created: {v}");
        v
    }

    pub async fn checkin(&self, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url("/api/v1/device/checkin"))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A device `mac` on 1.0.0, enrolled, with image 2.0.0 (project `blink`) deployed to it and
    /// offered at its second check-in: (its token, the offered update's id).
    pub async fn enrolled_with_offer(&self, mac: &str) -> (String, i64) {
        let fw = self
            .upload_ok(
                "blink.bin",
                app_image(Chip::Esp32, "blink", "2.0.0", 20_000),
            )
            .await;
        let (_, first) = self.checkin(None, checkin_body(mac, "1.0.0", None)).await;
        let token = first["token"].as_str().unwrap().to_string();
        self.deploy(json!({"firmware_id": fw["id"], "devices": [mac]}))
            .await;
        let (_, c) = self
            .checkin(Some(&token), checkin_body(mac, "1.0.0", None))
            .await;
        (token, c["update"]["id"].as_i64().expect("an offer"))
    }

    /// A native progress report with `token`.
    pub async fn progress(&self, token: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/device/progress"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Files in the blob store (to prove that refused uploads stored nothing).
    pub fn blob_count(&self) -> usize {
        walk(&self.dir.path().join("blobs"))
    }

    pub fn tmp_count(&self) -> usize {
        walk(&self.dir.path().join("tmp"))
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A valid synthetic app image.
pub fn app_image(chip: Chip, project: &str, version: &str, payload: usize) -> Vec<u8> {
    synth::AppImage::new(chip)
        .project(project)
        .version(version)
        .payload_len(payload)
        .build()
}

pub fn checkin_body(mac: &str, version: &str, sha256: Option<&str>) -> Value {
    json!({
        "mac": mac, "chip": "esp32", "project": "blink", "version": version,
        "sha256": sha256, "free_space": 1_310_720, "rssi": -61, "uptime_s": 12
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The real firmware corpus, or `None` (with a SKIPPED line) where it is absent. Under CI it must
/// be there: its absence fails the test instead of passing it silently.
pub fn corpus_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("OTAFLEET_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/testdata/firmware")
        });
    if dir.join("PROVENANCE.md").exists() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "the firmware corpus is missing at {} and CI always has it",
            dir.display()
        );
    }
    eprintln!("SKIPPED: corpus not found at {}", dir.display());
    None
}

pub fn synth_bootloader() -> Vec<u8> {
    synth::bootloader(Chip::Esp32)
}

pub fn synth_partition_table() -> Vec<u8> {
    synth::PartitionTable::single_app().build()
}

pub fn synth_ram_only() -> Vec<u8> {
    synth::ram_only_app(Chip::Esp32s3, "hello_world", "1.0.0")
}

pub fn synth_merged() -> Vec<u8> {
    synth::merged(
        Chip::Esp32,
        &app_image(Chip::Esp32, "blink", "1.0.0", 20_000),
    )
}

/// An app whose XOR checksum is wrong (no appended hash, so only the checksum can catch it).
pub fn synth_bad_checksum() -> Vec<u8> {
    let mut img = synth::AppImage::new(Chip::Esp32)
        .project("blink")
        .version("1.0.0")
        .payload_len(20_000)
        .hash_appended(false)
        .build();
    synth::corrupt_checksum(&mut img);
    img
}

/// An app whose appended SHA-256 does not match its bytes.
pub fn synth_bad_hash() -> Vec<u8> {
    let mut img = app_image(Chip::Esp32, "blink", "1.0.0", 20_000);
    let last = img.len() - 1;
    img[last] ^= 0xFF;
    img
}

/// An Arduino-ESP32 build: the descriptor names the core's lib-builder; `n` varies the bytes.
pub fn synth_arduino(n: u8) -> Vec<u8> {
    synth::AppImage::new(Chip::Esp32)
        .project("arduino-lib-builder")
        .version("heads/idf-release/v4.4-0-gd4572")
        .elf_sha256([n; 32])
        .payload_len(30_000)
        .build()
}

/// Send raw bytes on a new connection and read until the server closes it; returns the status
/// code and everything after the head. For requests a client library would not make (a foreign
/// `Host`, none at all, HTTP/1.0).
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tcp.read_to_end(&mut buf),
    )
    .await
    .expect("the server answered and closed within 30 s")
    .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Reads `/api/v1/events` as a browser would and waits for a matching event.
pub struct Events {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Events {
    pub async fn open(app: &TestApp) -> Self {
        let r = app
            .http
            .get(app.url("/api/v1/events"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut ev = Self {
            stream: Box::pin(r.bytes_stream()),
            buf: String::new(),
        };
        ev.wait_for(|name, _| name == "hello").await;
        ev
    }

    /// Read another server-sent-event stream (a 200 `text/event-stream` answer).
    pub fn from_response(r: reqwest::Response) -> Self {
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Self {
            stream: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }

    /// Next event for which `pred(name, data)` holds; fails after 10 s without one.
    pub async fn wait_for(&mut self, pred: impl Fn(&str, &Value) -> bool) -> Value {
        let fut = async {
            loop {
                while let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let mut name = "message".to_string();
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(n) = line.strip_prefix("event:") {
                            name = n.trim().to_string();
                        } else if let Some(d) = line.strip_prefix("data:") {
                            data.push_str(d.trim());
                        }
                    }
                    let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    if pred(&name, &v) {
                        return v;
                    }
                }
                let chunk = self
                    .stream
                    .next()
                    .await
                    .expect("event stream ended")
                    .unwrap();
                self.buf.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), fut)
            .await
            .expect("the expected event did not arrive within 30 s")
    }
}
