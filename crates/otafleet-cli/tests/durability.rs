//! Nothing acknowledged is lost: the real `otafleet serve` on a real, small tmpfs that fills up
//! while check-ins, deployments and an upload race each other.
//!
//! What it proves (issue: "acknowledged writes are lost after a moment of full disk"):
//! - every request the server answered with 2xx is on disk: present while the disk is still full,
//!   after space is freed, after a clean restart (SIGTERM) and after `kill -9`;
//! - a write the disk could not take fails with 507 `disk_full` and a message that says so (never
//!   a 500, never a silent success), and the upload larger than the free space gets 507;
//! - the admin's corrections race them too: a device's notes and tags, an image's file name and
//!   version (`PATCH`), each either on disk when acknowledged or refused with 507;
//! - so do remote management's writes: a command the admin queues for each device, a change of
//!   its config, and a report each device sends with its token — there when acknowledged, absent
//!   when refused with 507;
//! - once space is freed, new writes succeed without a restart;
//! - every acknowledged admin change has its audit row with outcome `ok` once space is back and
//!   after each restart, no row is left `pending`, and a change refused with 507 had no effect
//!   (no deployment, notes or image beyond those acknowledged).
//!
//! Mounting a tmpfs needs root. Without root the test says SKIPPED and passes, except under CI,
//! where it must run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod support;
use std::sync::Arc;
use support::{serve_command, Server};

use otafleet_image::synth::AppImage;
use otafleet_image::Chip;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

const TOKEN: &str = "durability-token";
const CHECKINS: usize = 500;
const DEPLOYMENTS: usize = 50;
/// Devices enrolled before the disk fills, whose notes the race then edits.
const NOTED: usize = 40;
/// Named API tokens and members made during the race.
const ACCESS: usize = 12;
/// Organisations made during the race (each a directory and a database of its own).
const ORGS: usize = 4;
/// Password sign-ins (each a session) and GitHub sign-ins begun during the race.
const SIGN_INS: usize = 6;
/// The member who signs in with a password, and the password an admin set before the race.
const SIGNER: (&str, &str) = ("signer@lab.test", "durable password 1");

/// A tmpfs of a fixed size, mounted for the test and unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount a {size} tmpfs at {}",
            path.display()
        );
        Self {
            path: path.to_path_buf(),
        }
    }

    fn free_bytes(&self) -> u64 {
        let c = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes()).unwrap();
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
        s.f_bavail as u64 * s.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn start(data_dir: &Path, log: &Path) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Server::spawn(
        serve_command(
            data_dir,
            TOKEN,
            &[
                "--max-image-size",
                "64000000",
                // Sessions and sign-ins under way are written too: a password sign-in opens a
                // session; a GitHub sign-in's start keeps its state before anyone is asked
                // (GitHub itself is never reached here: port 9 on loopback).
                "--local-accounts",
                "--github-client-id",
                "durability",
                "--github-client-secret",
                "durability",
                "--github-url",
                "http://127.0.0.1:9",
                "--github-api-url",
                "http://127.0.0.1:9",
            ],
        ),
        log.into(),
    )
}

fn mac(i: usize) -> String {
    format!("02:00:00:00:{:02X}:{:02X}", i / 256, i % 256)
}

fn image(version: &str) -> Vec<u8> {
    AppImage::new(Chip::Esp32)
        .project("durable")
        .version(version)
        .build()
}

/// What the server acknowledged, to be found again later.
#[derive(Default)]
struct Acked {
    /// (mac, token) of every enrolment answered 2xx.
    devices: Vec<(String, String)>,
    deployments: Vec<i64>,
    firmware: Vec<i64>,
    /// (mac, notes) of every device PATCH answered 2xx.
    notes: Vec<(String, String)>,
    /// (id, file name, version) of every firmware PATCH answered 2xx.
    corrected: Vec<(i64, String, String)>,
    /// (operation id, path) of every admin change answered 2xx, for the audit log.
    admin: Vec<(&'static str, String)>,
    /// Devices whose notes PATCH was refused with 507: their notes stay empty.
    notes_refused: Vec<String>,
    /// (mac, command id) of every command queued with 201; each racing device was sent one, so
    /// a device missing here has none.
    commands: Vec<(String, i64)>,
    /// (mac, subject) of every device report answered 200; refused ones were never stored.
    reports: Vec<(String, String)>,
    reports_refused: Vec<(String, String)>,
    /// (mac, interval_s) of every device config PATCH answered 200; a refused one leaves the
    /// device without a value of its own (the project's default applies).
    config: Vec<(String, i64)>,
    config_refused: Vec<String>,
    /// (name, secret) of every named API token answered 201.
    tokens: Vec<(String, String)>,
    /// The e-mail of every member added with 201.
    members: Vec<String>,
    /// (id, owner token) of every organisation answered 201; refused ids are never listed.
    orgs: Vec<(String, String)>,
    orgs_refused: Vec<String>,
    /// The session cookie of every password sign-in answered 204.
    sessions: Vec<String>,
}

#[derive(Default)]
struct Refused {
    disk_full: usize,
    /// Anything but 2xx or 507: (what, status, body).
    unexpected: Vec<(String, u16, Value)>,
}

/// One request; a transport failure (no answer at all) is status 0, so that the test can say
/// whether the server is still alive instead of panicking in a task.
async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, json!({ "transport_error": e.to_string() })),
    }
}

fn record_refusal(refused: &mut Refused, what: String, status: u16, body: Value) {
    if status == 507 {
        assert_eq!(body["error"]["code"], "disk_full", "{what}: {body}");
        let msg = body["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("full"),
            "the message says the disk is full: {msg}"
        );
        refused.disk_full += 1;
    } else {
        refused.unexpected.push((what, status, body));
    }
}

async fn enrol(http: &reqwest::Client, base: &str, i: usize) -> (u16, Value) {
    send(
        http.post(format!("{base}/api/v1/device/checkin"))
            .json(&json!({
                "mac": mac(i), "chip": "esp32", "project": "durable", "version": "1.0.0"
            })),
    )
    .await
}

async fn deploy(http: &reqwest::Client, base: &str, firmware_id: i64) -> (u16, Value) {
    send(
        http.post(format!("{base}/api/v1/deployments"))
            .bearer_auth(TOKEN)
            .json(&json!({ "firmware_id": firmware_id })),
    )
    .await
}

async fn upload(http: &reqwest::Client, base: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    send(
        http.post(format!("{base}/api/v1/firmware"))
            .bearer_auth(TOKEN)
            .query(&[("filename", name)])
            .header("content-type", "application/octet-stream")
            .body(bytes),
    )
    .await
}

async fn note(http: &reqwest::Client, base: &str, mac: &str, notes: &str) -> (u16, Value) {
    send(
        http.patch(format!("{base}/api/v1/devices/{mac}"))
            .bearer_auth(TOKEN)
            .json(&json!({ "notes": notes, "tags": ["bench", "rack-2"] })),
    )
    .await
}

async fn queue_restart(http: &reqwest::Client, base: &str, mac: &str) -> (u16, Value) {
    send(
        http.post(format!("{base}/api/v1/devices/{mac}/commands"))
            .bearer_auth(TOKEN)
            .json(&json!({ "kind": "restart" })),
    )
    .await
}

async fn report(
    http: &reqwest::Client,
    base: &str,
    mac: &str,
    token: &str,
    subject: &str,
) -> (u16, Value) {
    send(
        http.post(format!("{base}/api/v1/device/report"))
            .bearer_auth(token)
            .json(&json!({ "mac": mac, "type": "error", "subject": subject })),
    )
    .await
}

async fn make_token(http: &reqwest::Client, base: &str, name: &str) -> (u16, Value) {
    send(
        http.post(format!("{base}/api/v1/tokens"))
            .bearer_auth(TOKEN)
            .json(&json!({ "name": name, "role": "operator" })),
    )
    .await
}

async fn add_member(http: &reqwest::Client, base: &str, email: &str) -> (u16, Value) {
    send(
        http.post(format!("{base}/api/v1/members"))
            .bearer_auth(TOKEN)
            .json(&json!({ "email": email, "role": "viewer" })),
    )
    .await
}

/// A password sign-in: (status, the session cookie's value when one was set, body).
async fn sign_in(http: &reqwest::Client, base: &str) -> (u16, Option<String>, Value) {
    let r = http
        .post(format!("{base}/api/v1/auth/password"))
        .json(&json!({ "email": SIGNER.0, "password": SIGNER.1 }))
        .send()
        .await;
    let Ok(r) = r else {
        return (0, None, Value::Null);
    };
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next()?.strip_prefix("otafleet_session="))
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    (status, cookie, r.json().await.unwrap_or(Value::Null))
}

/// Begin a GitHub sign-in: (status, where the browser is sent). 302 to GitHub once its state is
/// kept; refused, 303 back to the UI with the reason.
async fn begin_github(base: &str) -> (u16, String) {
    // The answer is a redirect, read as such (not followed).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let Ok(r) = http
        .get(format!("{base}/api/v1/auth/github/login"))
        .send()
        .await
    else {
        return (0, String::new());
    };
    let to = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (r.status().as_u16(), to)
}

async fn make_org(http: &reqwest::Client, base: &str, id: &str) -> (u16, Value) {
    send(
        http.post(format!("{base}/api/v1/organisations"))
            .bearer_auth(TOKEN)
            .json(&json!({ "id": id, "name": format!("lab {id}") })),
    )
    .await
}

/// Every acknowledged token still lets its holder in as itself, every acknowledged member is
/// listed, every acknowledged organisation is listed and opens to its owner token, and no
/// refused organisation exists.
async fn verify_access(http: &reqwest::Client, base: &str, acked: &Acked, when: &str) {
    for (name, secret) in &acked.tokens {
        let (status, me) = send(http.get(format!("{base}/api/v1/me")).bearer_auth(secret)).await;
        assert_eq!(status, 200, "{when}: token {name}: {me}");
        assert_eq!(me["actor"], format!("token:{name}").as_str(), "{when}");
    }
    let (status, members) = send(
        http.get(format!("{base}/api/v1/members"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{when}: members: {members}");
    for email in &acked.members {
        assert!(
            members
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["email"] == email.as_str()),
            "{when}: member {email} is gone: {members}"
        );
    }
    let (status, orgs) = send(
        http.get(format!("{base}/api/v1/organisations"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{when}: organisations: {orgs}");
    let listed: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    for (id, owner) in &acked.orgs {
        assert!(
            listed.contains(&id.as_str()),
            "{when}: organisation {id} is gone: {orgs}"
        );
        let (status, me) = send(http.get(format!("{base}/api/v1/me")).bearer_auth(owner)).await;
        assert_eq!(status, 200, "{when}: organisation {id}'s owner token: {me}");
        assert_eq!(me["organisation"]["id"], id.as_str(), "{when}: {me}");
    }
    for id in &acked.orgs_refused {
        assert!(
            !listed.contains(&id.as_str()),
            "{when}: refused organisation {id} is listed"
        );
    }
    for cookie in &acked.sessions {
        let (status, me) = send(
            http.get(format!("{base}/api/v1/me"))
                .header("cookie", format!("otafleet_session={cookie}")),
        )
        .await;
        assert_eq!(status, 200, "{when}: an acknowledged session: {me}");
        assert_eq!(me["actor"], format!("user:{}", SIGNER.0).as_str(), "{when}");
    }
}

async fn set_config(http: &reqwest::Client, base: &str, mac: &str, interval: i64) -> (u16, Value) {
    send(
        http.patch(format!("{base}/api/v1/devices/{mac}/config"))
            .bearer_auth(TOKEN)
            .json(&json!({ "values": { "interval_s": interval } })),
    )
    .await
}

async fn correct(
    http: &reqwest::Client,
    base: &str,
    id: i64,
    filename: &str,
    version: &str,
) -> (u16, Value) {
    send(
        http.patch(format!("{base}/api/v1/firmware/{id}"))
            .bearer_auth(TOKEN)
            .json(&json!({ "filename": filename, "version": version })),
    )
    .await
}

/// Every acknowledged thing is there: devices and deployments listed, images listed, and (when
/// `check_tokens`) every device still answered with the token it was given.
async fn verify(http: &reqwest::Client, base: &str, acked: &Acked, check_tokens: bool, when: &str) {
    let (status, devices) = send(
        http.get(format!("{base}/api/v1/devices"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{when}: list devices: {devices}");
    let listed: std::collections::HashSet<String> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mac"].as_str().unwrap().to_string())
        .collect();
    for (mac, notes) in &acked.notes {
        let d = devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["mac"] == mac.as_str())
            .unwrap_or_else(|| panic!("{when}: noted device {mac} is gone"));
        assert_eq!(
            d["notes"],
            notes.as_str(),
            "{when}: {mac}'s acknowledged notes"
        );
        assert_eq!(
            d["tags"],
            json!(["bench", "rack-2"]),
            "{when}: {mac}'s tags"
        );
    }
    let missing: Vec<&String> = acked
        .devices
        .iter()
        .map(|(m, _)| m)
        .filter(|m| !listed.contains(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "{when}: {} of {} acknowledged enrolments are gone, e.g. {:?}",
        missing.len(),
        acked.devices.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    let (status, deployments) = send(
        http.get(format!("{base}/api/v1/deployments"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{when}: list deployments: {deployments}");
    let ids: std::collections::HashSet<i64> = deployments
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    let lost: Vec<&i64> = acked
        .deployments
        .iter()
        .filter(|i| !ids.contains(i))
        .collect();
    assert!(
        lost.is_empty(),
        "{when}: {} of {} acknowledged deployments are gone: {lost:?}",
        lost.len(),
        acked.deployments.len()
    );
    let (status, firmware) = send(
        http.get(format!("{base}/api/v1/firmware"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{when}: list firmware: {firmware}");
    let fw: std::collections::HashSet<i64> = firmware
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    for id in &acked.firmware {
        assert!(fw.contains(id), "{when}: acknowledged image {id} is gone");
    }
    for (id, filename, version) in &acked.corrected {
        let f = firmware
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == *id)
            .unwrap();
        assert_eq!(
            f["filename"],
            filename.as_str(),
            "{when}: image {id}'s file name"
        );
        assert_eq!(
            f["version"],
            version.as_str(),
            "{when}: image {id}'s version"
        );
        assert_eq!(
            f["version_source"], "admin",
            "{when}: image {id}'s version source"
        );
    }
    // A change refused with 507 had no effect: nothing beyond what was acknowledged.
    assert_eq!(
        ids.len(),
        acked.deployments.len(),
        "{when}: only acknowledged deployments exist"
    );
    assert!(
        !firmware.to_string().contains("huge_v9.9.9"),
        "{when}: the refused upload is not in the library"
    );
    for mac in &acked.notes_refused {
        let d = devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["mac"] == mac.as_str())
            .unwrap();
        assert!(
            d["notes"].is_null(),
            "{when}: {mac}'s refused notes were not written: {d}"
        );
    }
    verify_remote(http, base, acked, when).await;
    verify_access(http, base, acked, when).await;
    if check_tokens {
        verify_audit(http, base, acked, when).await;
    }
    if check_tokens {
        let gate = Arc::new(Semaphore::new(16));
        let mut set = tokio::task::JoinSet::new();
        for (mac, token) in acked.devices.clone() {
            let (http, base, gate) = (http.clone(), base.to_string(), gate.clone());
            set.spawn(async move {
                let _p = gate.acquire().await.unwrap();
                let (status, body) = send(
                    http.post(format!("{base}/api/v1/device/checkin"))
                        .bearer_auth(&token)
                        .json(&json!({
                            "mac": mac, "chip": "esp32", "project": "durable", "version": "1.0.0"
                        })),
                )
                .await;
                (mac, status, body)
            });
        }
        while let Some(r) = set.join_next().await {
            let (mac, status, body) = r.unwrap();
            assert_eq!(
                status, 200,
                "{when}: {mac} is refused with its own token: {body}"
            );
        }
    }
}

/// Every acknowledged admin change has its audit row, finished `ok` with its 2xx status; no row
/// is left `pending`; every other row is a 507 refusal.
/// Every acknowledged command, report and config change is there; a refused one never is.
async fn verify_remote(http: &reqwest::Client, base: &str, acked: &Acked, when: &str) {
    let config_of = |m: String| async move {
        let (status, c) = send(
            http.get(format!("{base}/api/v1/devices/{m}/config"))
                .bearer_auth(TOKEN),
        )
        .await;
        assert_eq!(status, 200, "{when}: config of {m}: {c}");
        let entry = c["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == "interval_s")
            .cloned()
            .unwrap_or(Value::Null);
        (entry["value"].clone(), entry)
    };
    for (m, v) in &acked.config {
        let (value, entry) = config_of(m.clone()).await;
        assert_eq!(
            value,
            json!(v),
            "{when}: {m}'s acknowledged config: {entry}"
        );
    }
    for m in &acked.config_refused {
        let (value, entry) = config_of(m.clone()).await;
        assert!(
            value.is_null(),
            "{when}: {m}'s refused config change was not kept: {entry}"
        );
    }
    let (status, reports) = send(
        http.get(format!("{base}/api/v1/reports?limit=1000"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{when}: reports: {reports}");
    let stored: std::collections::HashSet<(String, String)> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["mac"].as_str().unwrap().to_owned(),
                r["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for r in &acked.reports {
        assert!(
            stored.contains(r),
            "{when}: acknowledged report {r:?} is listed"
        );
    }
    for r in &acked.reports_refused {
        assert!(
            !stored.contains(r),
            "{when}: refused report {r:?} was not stored"
        );
    }
    let macs: std::collections::HashSet<&String> = acked.devices.iter().map(|(m, _)| m).collect();
    for m in macs {
        let (status, list) = send(
            http.get(format!("{base}/api/v1/devices/{m}/commands"))
                .bearer_auth(TOKEN),
        )
        .await;
        assert_eq!(status, 200, "{when}: commands of {m}: {list}");
        let mut listed: Vec<i64> = list["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        let mut want: Vec<i64> = acked
            .commands
            .iter()
            .filter(|(x, _)| x == m)
            .map(|(_, id)| *id)
            .collect();
        listed.sort_unstable();
        want.sort_unstable();
        assert_eq!(
            listed, want,
            "{when}: {m}'s commands are exactly the acknowledged ones"
        );
    }
}

async fn verify_audit(http: &reqwest::Client, base: &str, acked: &Acked, when: &str) {
    let (status, rows) = send(
        http.get(format!("{base}/api/v1/audit?limit=10000"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{when}: audit log: {rows}");
    let rows = rows.as_array().unwrap();
    let mut ok = std::collections::HashMap::<(String, String), usize>::new();
    for r in rows {
        match r["outcome"].as_str().unwrap() {
            "ok" => {
                let s = r["status"].as_i64().unwrap();
                assert!((200..300).contains(&s), "{when}: {r}");
                *ok.entry((
                    r["action"].as_str().unwrap().to_owned(),
                    r["path"].as_str().unwrap().to_owned(),
                ))
                .or_default() += 1;
            }
            "failed" => assert_eq!(r["status"], 507, "{when}: {r}"),
            other => panic!("{when}: audit row {other}: {r}"),
        }
    }
    let mut want = std::collections::HashMap::<(String, String), usize>::new();
    for (action, path) in &acked.admin {
        *want
            .entry(((*action).to_owned(), path.clone()))
            .or_default() += 1;
    }
    assert_eq!(
        ok, want,
        "{when}: one ok audit row per acknowledged admin change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_every_acknowledged_write_survives_a_full_disk_a_restart_and_kill_9() {
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").is_err(),
            "the disk-full test needs root to mount a tmpfs, and CI must run it"
        );
        eprintln!("SKIPPED: the disk-full test needs root to mount a tmpfs");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&scratch.path().join("disk"), "20m");
    let data = disk.path.join("data");
    // Outside the tmpfs and kept after the test, for reading when it fails.
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("durability-server.log");
    let _ = std::fs::remove_file(&log);
    eprintln!("server log: {}", log.display());
    let server = start(&data, &log);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let mut acked = Acked::default();
    let mut refused = Refused::default();

    // Two images to deploy, stored while there is room.
    for v in ["1.0.1", "1.0.2"] {
        let (status, body) = upload(&http, &base, &format!("durable_v{v}.bin"), image(v)).await;
        assert_eq!(status, 201, "{body}");
        acked.firmware.push(body["id"].as_i64().unwrap());
        acked
            .admin
            .push(("upload_firmware", "/api/v1/firmware".into()));
    }

    // Devices whose notes the race edits, enrolled while there is room.
    for i in 0..NOTED {
        let i = CHECKINS + 10 + i;
        let (status, body) = enrol(&http, &base, i).await;
        assert_eq!(status, 200, "{body}");
        acked
            .devices
            .push((mac(i), body["token"].as_str().unwrap().to_string()));
    }

    // The devices' project gets a config variable, so the race can change their config.
    let (status, body) = send(
        http.patch(format!("{base}/api/v1/projects/durable"))
            .bearer_auth(TOKEN)
            .json(&json!({ "variables": [{ "key": "interval_s", "type": "int", "default": 60 }] })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    acked
        .admin
        .push(("patch_project", "/api/v1/projects/durable".into()));

    // The member who signs in during the race, with the password an admin set.
    let (status, body) = add_member(&http, &base, SIGNER.0).await;
    assert_eq!(status, 201, "{body}");
    acked.admin.push(("add_member", "/api/v1/members".into()));
    acked.members.push(SIGNER.0.into());
    let path = format!("/api/v1/members/{}/password", body["id"]);
    let (status, body) = send(
        http.put(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&json!({ "password": SIGNER.1 })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    acked.admin.push(("set_member_password", path));

    // Leave about 1 MB: the 8 MB upload cannot fit, and the database's write-ahead log runs out
    // of room too while 500 enrolments and 50 deployments race it. (With 3 MB the racing writes
    // sometimes all fitted, in the room the refused upload gave back, and the run proved
    // nothing.)
    let filler = disk.path.join("filler");
    let keep = 1024 * 1024;
    let fill = disk.free_bytes().saturating_sub(keep);
    std::fs::write(&filler, vec![0x5a; fill as usize]).unwrap();

    let big = {
        let mut b = image("9.9.9");
        b.resize(8 * 1024 * 1024, 0xff);
        b
    };
    let upload_task = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move { upload(&http, &base, "huge_v9.9.9.bin", big).await })
    };
    let gate = Arc::new(Semaphore::new(16));
    let mut checkins = tokio::task::JoinSet::new();
    for i in 0..CHECKINS {
        let (http, base, gate) = (http.clone(), base.clone(), gate.clone());
        checkins.spawn(async move {
            let _p = gate.acquire().await.unwrap();
            (i, enrol(&http, &base, i).await)
        });
    }
    let mut deploys = tokio::task::JoinSet::new();
    for i in 0..DEPLOYMENTS {
        let (http, base, gate) = (http.clone(), base.clone(), gate.clone());
        let fw = acked.firmware[i % 2];
        deploys.spawn(async move {
            let _p = gate.acquire().await.unwrap();
            deploy(&http, &base, fw).await
        });
    }
    let mut notes = tokio::task::JoinSet::new();
    for i in 0..NOTED {
        let (http, base, gate) = (http.clone(), base.clone(), gate.clone());
        notes.spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let (m, n) = (mac(CHECKINS + 10 + i), format!("on the bench, slot {i}"));
            let r = note(&http, &base, &m, &n).await;
            (m, n, r)
        });
    }
    // Remote management's writes race it too: a command queued by the admin, a report sent by
    // the device with its token.
    let mut remote = tokio::task::JoinSet::new();
    for (m, token) in acked.devices.clone() {
        let (http, base, gate) = (http.clone(), base.clone(), gate.clone());
        remote.spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let subject = format!("sensor bus stuck on {m}");
            let c = queue_restart(&http, &base, &m).await;
            let r = report(&http, &base, &m, &token, &subject).await;
            let k = set_config(&http, &base, &m, 30).await;
            (m, subject, c, r, k)
        });
    }
    let mut corrections = tokio::task::JoinSet::new();
    for (k, id) in acked.firmware.clone().into_iter().enumerate() {
        let (http, base, gate) = (http.clone(), base.clone(), gate.clone());
        corrections.spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let (name, version) = (format!("greenhouse_v2.0.{k}.bin"), format!("2.0.{k}"));
            let r = correct(&http, &base, id, &name, &version).await;
            (id, name, version, r)
        });
    }
    // Who may do what is written too: named tokens, members, organisations.
    let mut access = tokio::task::JoinSet::new();
    for k in 0..ACCESS {
        let (http, base, gate) = (http.clone(), base.clone(), gate.clone());
        access.spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let name = format!("durable-{k}");
            let t = make_token(&http, &base, &name).await;
            let email = format!("member{k}@lab.test");
            let m = add_member(&http, &base, &email).await;
            let o = if k < ORGS {
                let id = format!("lab-{k}");
                Some((id.clone(), make_org(&http, &base, &id).await))
            } else {
                None
            };
            (name, t, email, m, o)
        });
    }
    let mut sign_ins = tokio::task::JoinSet::new();
    for _ in 0..SIGN_INS {
        let (http, base, gate) = (http.clone(), base.clone(), gate.clone());
        sign_ins.spawn(async move {
            let _p = gate.acquire().await.unwrap();
            (sign_in(&http, &base).await, begin_github(&base).await)
        });
    }
    while let Some(r) = notes.join_next().await {
        let (m, n, (status, body)) = r.unwrap();
        if (200..300).contains(&status) {
            acked
                .admin
                .push(("patch_device", format!("/api/v1/devices/{m}")));
            acked.notes.push((m, n));
        } else {
            acked.notes_refused.push(m.clone());
            record_refusal(&mut refused, format!("notes of {m}"), status, body);
        }
    }
    while let Some(r) = remote.join_next().await {
        let (m, subject, (cs, cb), (rs, rb), (ks, kb)) = r.unwrap();
        if ks == 200 {
            acked
                .admin
                .push(("patch_device_config", format!("/api/v1/devices/{m}/config")));
            acked.config.push((m.clone(), 30));
        } else {
            record_refusal(&mut refused, format!("config of {m}"), ks, kb);
            acked.config_refused.push(m.clone());
        }
        if cs == 201 {
            acked
                .admin
                .push(("queue_command", format!("/api/v1/devices/{m}/commands")));
            acked
                .commands
                .push((m.clone(), cb["id"].as_i64().expect("a queued command's id")));
        } else {
            record_refusal(&mut refused, format!("command for {m}"), cs, cb);
        }
        if rs == 200 {
            acked.reports.push((m, subject));
        } else {
            record_refusal(&mut refused, format!("report of {m}"), rs, rb);
            acked.reports_refused.push((m, subject));
        }
    }
    while let Some(r) = access.join_next().await {
        let (name, (ts, tb), email, (ms, mb), org) = r.unwrap();
        if ts == 201 {
            acked.admin.push(("create_token", "/api/v1/tokens".into()));
            acked
                .tokens
                .push((name, tb["secret"].as_str().unwrap().to_owned()));
        } else {
            record_refusal(&mut refused, format!("token {name}"), ts, tb);
        }
        if ms == 201 {
            acked.admin.push(("add_member", "/api/v1/members".into()));
            acked.members.push(email);
        } else {
            record_refusal(&mut refused, format!("member {email}"), ms, mb);
        }
        if let Some((id, (os, ob))) = org {
            if os == 201 {
                acked
                    .admin
                    .push(("create_organisation", "/api/v1/organisations".into()));
                let owner = ob["owner_token"]["secret"].as_str().unwrap().to_owned();
                acked.orgs.push((id, owner));
            } else {
                record_refusal(&mut refused, format!("organisation {id}"), os, ob);
                acked.orgs_refused.push(id);
            }
        }
    }
    let mut github_refused = 0;
    while let Some(r) = sign_ins.join_next().await {
        let ((status, cookie, body), (gs, to)) = r.unwrap();
        match (status, cookie) {
            (204, Some(c)) => acked.sessions.push(c),
            (204, None) => panic!("a password sign-in answered 204 without a session cookie"),
            (status, _) => record_refusal(&mut refused, "password sign-in".into(), status, body),
        }
        // A sign-in that cannot be kept goes back to the UI with the reason, never a 500.
        match gs {
            302 => assert!(
                to.starts_with("http://127.0.0.1:9/login/oauth/authorize"),
                "{to}"
            ),
            303 => {
                assert!(
                    to.contains("signin_error=disk_full"),
                    "a refused GitHub sign-in: {to}"
                );
                github_refused += 1;
            }
            other => panic!("a GitHub sign-in's start answered {other}: {to}"),
        }
    }
    while let Some(r) = corrections.join_next().await {
        let (id, name, version, (status, body)) = r.unwrap();
        if (200..300).contains(&status) {
            acked
                .admin
                .push(("patch_firmware", format!("/api/v1/firmware/{id}")));
            acked.corrected.push((id, name, version));
        } else {
            record_refusal(
                &mut refused,
                format!("correction of image {id}"),
                status,
                body,
            );
        }
    }
    while let Some(r) = checkins.join_next().await {
        let (i, (status, body)) = r.unwrap();
        if (200..300).contains(&status) {
            let token = body["token"]
                .as_str()
                .expect("an enrolment returns a token");
            acked.devices.push((mac(i), token.to_string()));
        } else {
            record_refusal(&mut refused, format!("enrol {}", mac(i)), status, body);
        }
    }
    while let Some(r) = deploys.join_next().await {
        let (status, body) = r.unwrap();
        if (200..300).contains(&status) {
            acked.deployments.push(body["id"].as_i64().unwrap());
            acked
                .admin
                .push(("create_deployment", "/api/v1/deployments".into()));
        } else {
            record_refusal(&mut refused, "deployment".into(), status, body);
        }
    }
    let (status, body) = upload_task.await.unwrap();
    let mut server = server;
    if let Some(exit) = server.child.try_wait().unwrap() {
        panic!(
            "the server died during the race ({exit:?}); its log: {}",
            log.display()
        );
    }
    assert_eq!(status, 507, "the upload larger than the free space: {body}");
    assert_eq!(body["error"]["code"], "disk_full", "{body}");
    assert!(
        refused.unexpected.is_empty(),
        "every refusal is a 507 disk_full: {:?}",
        refused.unexpected
    );
    assert!(
        refused.disk_full > 0,
        "the disk never filled for the racing writes; the test proved nothing (free: {} bytes)",
        disk.free_bytes()
    );
    eprintln!(
        "race: {} enrolments, {} deployments, {} notes, {} image corrections, {} commands, {} reports, {} tokens, {} members, {} organisations and {} sessions acknowledged, {} refused with 507, {} GitHub sign-ins sent back with disk_full",
        acked.devices.len(),
        acked.deployments.len(),
        acked.notes.len(),
        acked.corrected.len(),
        acked.commands.len(),
        acked.reports.len(),
        acked.tokens.len(),
        acked.members.len(),
        acked.orgs.len(),
        acked.sessions.len(),
        refused.disk_full,
        github_refused
    );

    // Still full: what was acknowledged is there, and the server answers.
    verify(&http, &base, &acked, false, "disk still full").await;

    // Space comes back: new writes succeed without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (status, body) = enrol(&http, &base, CHECKINS + 1).await;
    assert_eq!(status, 200, "an enrolment after space returned: {body}");
    acked.devices.push((
        mac(CHECKINS + 1),
        body["token"].as_str().unwrap().to_string(),
    ));
    let (status, body) = deploy(&http, &base, acked.firmware[0]).await;
    assert_eq!(status, 201, "a deployment after space returned: {body}");
    acked.deployments.push(body["id"].as_i64().unwrap());
    acked
        .admin
        .push(("create_deployment", "/api/v1/deployments".into()));
    let (status, body) = upload(&http, &base, "durable_v1.0.3.bin", image("1.0.3")).await;
    assert_eq!(status, 201, "an upload after space returned: {body}");
    acked.firmware.push(body["id"].as_i64().unwrap());
    acked
        .admin
        .push(("upload_firmware", "/api/v1/firmware".into()));
    let m = mac(CHECKINS + 10);
    let (status, body) = note(&http, &base, &m, "after space returned").await;
    assert_eq!(status, 200, "notes after space returned: {body}");
    acked
        .admin
        .push(("patch_device", format!("/api/v1/devices/{m}")));
    acked.notes_refused.retain(|x| *x != m);
    acked.notes.retain(|(x, _)| *x != m);
    acked.notes.push((m.clone(), "after space returned".into()));
    let (status, body) = queue_restart(&http, &base, &m).await;
    assert_eq!(status, 201, "a command after space returned: {body}");
    acked
        .admin
        .push(("queue_command", format!("/api/v1/devices/{m}/commands")));
    acked
        .commands
        .push((m.clone(), body["id"].as_i64().unwrap()));
    let token = acked
        .devices
        .iter()
        .find(|(x, _)| *x == m)
        .map(|(_, t)| t.clone())
        .unwrap();
    let (status, body) = set_config(&http, &base, &m, 15).await;
    assert_eq!(status, 200, "a config change after space returned: {body}");
    acked
        .admin
        .push(("patch_device_config", format!("/api/v1/devices/{m}/config")));
    acked.config.retain(|(x, _)| *x != m);
    acked.config_refused.retain(|x| *x != m);
    acked.config.push((m.clone(), 15));
    let subject = "flash nearly worn out".to_string();
    let (status, body) = report(&http, &base, &m, &token, &subject).await;
    assert_eq!(status, 200, "a report after space returned: {body}");
    acked.reports.push((m.clone(), subject));
    let id = acked.firmware[0];
    let (status, body) = correct(&http, &base, id, "greenhouse_v2.0.9.bin", "2.0.9").await;
    assert_eq!(
        status, 200,
        "an image correction after space returned: {body}"
    );
    acked
        .admin
        .push(("patch_firmware", format!("/api/v1/firmware/{id}")));
    acked.corrected.retain(|(x, _, _)| *x != id);
    acked
        .corrected
        .push((id, "greenhouse_v2.0.9.bin".into(), "2.0.9".into()));
    let (status, cookie, body) = sign_in(&http, &base).await;
    assert_eq!(status, 204, "a sign-in after space returned: {body}");
    acked.sessions.push(cookie.expect("a session cookie"));
    let (status, to) = begin_github(&base).await;
    assert_eq!(
        status, 302,
        "a GitHub sign-in's start after space returned: {to}"
    );
    let (status, body) = make_token(&http, &base, "after-space").await;
    assert_eq!(status, 201, "a token after space returned: {body}");
    acked.admin.push(("create_token", "/api/v1/tokens".into()));
    acked.tokens.push((
        "after-space".into(),
        body["secret"].as_str().unwrap().to_owned(),
    ));
    let (status, body) = add_member(&http, &base, "after-space@lab.test").await;
    assert_eq!(status, 201, "a member after space returned: {body}");
    acked.admin.push(("add_member", "/api/v1/members".into()));
    acked.members.push("after-space@lab.test".into());
    // An organisation refused for want of room is made once there is room again.
    if let Some(id) = acked.orgs_refused.pop() {
        let (status, body) = make_org(&http, &base, &id).await;
        assert_eq!(
            status, 201,
            "organisation {id} after space returned: {body}"
        );
        acked
            .admin
            .push(("create_organisation", "/api/v1/organisations".into()));
        let owner = body["owner_token"]["secret"].as_str().unwrap().to_owned();
        acked.orgs.push((id, owner));
    }
    verify(&http, &base, &acked, true, "after space returned").await;

    // A clean restart, then a kill -9: everything acknowledged is still there.
    server.stop(libc::SIGTERM);
    let server = start(&data, &log);
    verify(&http, &server.base, &acked, true, "after a clean restart").await;
    server.stop(libc::SIGKILL);
    let server = start(&data, &log);
    verify(&http, &server.base, &acked, true, "after kill -9").await;
    server.stop(libc::SIGTERM);
    drop(disk);
}

/// Two servers on one data directory deleted each other's uploads in flight and never saw each
/// other's deployments. The second one now refuses to start and names the first.
#[test]
fn a_second_server_on_the_same_data_dir_refuses_to_start_and_names_the_first() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let log = scratch.path().join("first.log");
    let first = start(&data, &log);
    let out = serve_command(&data, TOKEN, &[])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the second server must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pid {}", first.child.id())),
        "names the process that holds the directory: {stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "it never listened"
    );
    first.stop(libc::SIGTERM);
}
