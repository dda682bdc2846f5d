//! Issue 12: the deployment dry run against reality. 200 devices of the five protocols — native,
//! Arduino `HTTPUpdate`, `ESP8266httpUpdate`, esp32FOTA, the legacy sketch — of mixed projects,
//! chips and versions, some with a failed attempt in an earlier deployment, each speaking its own
//! wire format to the real server. Two project-wide deployments are planned (`?dry_run=true`),
//! then created, then every device asks once: the plan's per-verdict counts must equal what the
//! devices got, device by device, and every device the plans do not cover must get nothing.

use std::collections::{BTreeMap, BTreeSet};

use otafleet_image::synth::Esp8266App;
use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;
use crate::field_wire::{md5_hex, send};

const SECRET: &str = "bench-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Native,
    Arduino,
    Esp8266,
    Fota,
    Legacy,
}

/// One simulated device: what it runs and how it asks.
#[derive(Debug, Clone)]
struct Dev {
    mac: String,
    proto: Proto,
    /// The project compiled into it (esp32FOTA picks the manifest entry of this name).
    project: &'static str,
    chip: &'static str,
    version: &'static str,
    /// MD5 and SHA-256 of the running image (random for a sketch the library does not have).
    md5: String,
    sha256: String,
    appended_sha256: String,
    free: u64,
    token: Option<String>,
}

fn mac(proto: u8, i: usize) -> String {
    format!("24:0A:C4:{proto:02X}:{:02X}:{:02X}", i / 256, i % 256)
}

fn efuse_id(mac: &str) -> String {
    let mut b = [0u8; 8];
    for (i, p) in mac.split(':').enumerate() {
        b[i] = u8::from_str_radix(p, 16).unwrap();
    }
    u64::from_le_bytes(b).to_string()
}

fn legacy_token(mac: &str) -> String {
    let input = format!("{}{SECRET}", mac.replace(':', ""));
    let h = input
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(33).wrapping_add(u32::from(b)));
    format!("{h:x}")
}

fn arduino_request(app: &TestApp, d: &Dev) -> String {
    format!(
        "GET /ota/arduino HTTP/1.0\r\nHost: {}\r\nUser-Agent: ESP32-http-Update\r\nConnection: close\r\n\
         Cache-Control: no-cache\r\nx-ESP32-STA-MAC: {}\r\nx-ESP32-AP-MAC: 26:0A:C4:A3:15:3C\r\n\
         x-ESP32-free-space: {}\r\nx-ESP32-sketch-size: 1006448\r\nx-ESP32-sketch-md5: {}\r\n\
         x-ESP32-sketch-sha256: {}\r\nx-ESP32-chip-size: 4194304\r\nx-ESP32-sdk-version: v4.4.5\r\n\
         x-ESP32-mode: sketch\r\nx-ESP32-version: {}",
        app.addr,
        d.mac,
        d.free,
        d.md5,
        d.appended_sha256.to_ascii_uppercase(),
        d.version
    )
}

fn esp8266_request(app: &TestApp, d: &Dev) -> String {
    format!(
        "GET /ota/arduino HTTP/1.0\r\nHost: {}\r\nUser-Agent: ESP8266-http-Update\r\nConnection: close\r\n\
         x-ESP8266-Chip-ID: 1458415\r\nx-ESP8266-STA-MAC: {}\r\nx-ESP8266-AP-MAC: CE:50:E3:17:C4:11\r\n\
         x-ESP8266-free-space: {}\r\nx-ESP8266-sketch-size: 296800\r\nx-ESP8266-sketch-md5: {}\r\n\
         x-ESP8266-chip-size: 4194304\r\nx-ESP8266-sdk-version: 2.2.2-dev(38a443e)\r\n\
         x-ESP8266-mode: sketch\r\nx-ESP8266-version: {}",
        app.addr, d.mac, d.free, d.md5, d.version
    )
}

/// Does a newer `offered` than `running` exist by esp32FOTA's own comparison (semver)?
fn fota_newer(offered: &str, running: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(offered) > parse(running)
}

/// One request of the device's protocol. `true`: it was given an image to install.
async fn ask(app: &TestApp, d: &mut Dev) -> bool {
    match d.proto {
        Proto::Native => {
            let body = json!({
                "mac": d.mac, "chip": d.chip, "project": d.project, "version": d.version,
                "sha256": d.sha256, "free_space": d.free,
            });
            let (status, answer) = app.checkin(d.token.as_deref(), body).await;
            assert_eq!(status, 200, "{} check-in: {answer}", d.mac);
            if let Some(t) = answer["token"].as_str() {
                d.token = Some(t.to_string());
            }
            !answer["update"].is_null()
        }
        Proto::Arduino => {
            let r = send(app, &arduino_request(app, d)).await;
            assert!(matches!(r.status, 200 | 304), "{}: {}", d.mac, r.status);
            r.status == 200
        }
        Proto::Esp8266 => {
            let r = send(app, &esp8266_request(app, d)).await;
            assert!(matches!(r.status, 200 | 304), "{}: {}", d.mac, r.status);
            r.status == 200
        }
        Proto::Fota => {
            let r = app
                .http
                .get(app.url(&format!("/ota/esp32fota.json?id={}", efuse_id(&d.mac))))
                .header("User-Agent", "ESP32HTTPClient")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let entries: Value = r.json().await.unwrap();
            // esp32FOTA's rule: the entry of its own type, if its version is newer.
            entries.as_array().unwrap().iter().any(|e| {
                e["type"] == d.project && fota_newer(e["version"].as_str().unwrap(), d.version)
            })
        }
        Proto::Legacy => {
            let r = app
                .http
                .get(app.url(&format!(
                    "/api/firmware?device_id=Alarm&hardware=ESP32&version={}&mac={}",
                    d.version, d.mac
                )))
                .header("X-Device-Auth", legacy_token(&d.mac))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", d.mac);
            let v: Value = r.json().await.unwrap();
            v["update_available"] == true
        }
    }
}

struct Image {
    id: i64,
    md5: String,
    sha256: String,
    appended: String,
}

async fn upload(app: &TestApp, name: &str, bytes: Vec<u8>) -> Image {
    let fw = app.upload_ok(name, bytes).await;
    Image {
        id: fw["id"].as_i64().unwrap(),
        md5: fw["md5"].as_str().unwrap().into(),
        sha256: fw["sha256"].as_str().unwrap().into(),
        appended: fw["appended_sha256"].as_str().unwrap_or("").into(),
    }
}

fn random_hex(n: usize, seed: usize) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(format!("unknown-{seed}").as_bytes()));
    h[..n].to_string()
}

async fn patch(app: &TestApp, mac: &str, body: Value) {
    let r = app
        .admin(reqwest::Method::PATCH, &format!("/api/v1/devices/{mac}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "patch {mac}: {}", r.status());
}

async fn plan(app: &TestApp, body: Value) -> Value {
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/deployments?dry_run=true")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// kind → devices, from a plan.
fn groups(plan: &Value) -> BTreeMap<String, BTreeSet<String>> {
    plan["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let macs: BTreeSet<String> = g["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["mac"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(g["count"].as_u64().unwrap() as usize, macs.len());
            (g["kind"].as_str().unwrap().to_string(), macs)
        })
        .collect()
}

#[tokio::test]
async fn the_dry_run_promises_what_200_devices_of_five_protocols_then_get() {
    let app = TestApp::start_with(|s| s.legacy_device_secret = Some(SECRET.into())).await;
    let climate_100 = app_image(Chip::Esp32, "climate", "1.0.0", 20_000);
    let climate_105 = app_image(Chip::Esp32, "climate", "1.0.5", 20_500);
    let climate_110 = app_image(Chip::Esp32, "climate", "1.1.0", 21_000);
    let climate_200 = app_image(Chip::Esp32, "climate", "2.0.0", 21_500);
    let c100 = upload(&app, "climate.bin", climate_100).await;
    let c105 = upload(&app, "climate.bin", climate_105).await;
    let c110 = upload(&app, "climate.bin", climate_110).await;
    let c200 = sha256_hex(&climate_200);
    let thermo_100 = Esp8266App::arduino().payload_len(30_000).build();
    let thermo_110 = Esp8266App::arduino().payload_len(31_000).build();
    let t100 = upload(&app, "thermo_v1.0.0.bin", thermo_100).await;
    let t110 = upload(&app, "thermo_v1.1.0.bin", thermo_110).await;

    let mut devs: Vec<Dev> = Vec::new();
    let mut add = |proto: Proto,
                   project: &'static str,
                   chip: &'static str,
                   version: &'static str,
                   img: Option<&Image>,
                   free: u64,
                   n: usize| {
        for _ in 0..n {
            let i = devs.len();
            let (md5, sha256, appended) = match img {
                Some(img) => (img.md5.clone(), img.sha256.clone(), img.appended.clone()),
                None => (
                    random_hex(32, i),
                    random_hex(64, i),
                    random_hex(64, i + 1000),
                ),
            };
            devs.push(Dev {
                mac: mac(proto as u8 + 1, i),
                proto,
                project,
                chip,
                version,
                md5,
                sha256,
                appended_sha256: appended,
                free,
                token: None,
            });
        }
    };
    const ROOM: u64 = 1_310_720;
    const TIGHT: u64 = 4_000;
    // Native, 65: climate on 1.0.0, on the target, on a newer version, short of space; benchlab
    // devices and climate devices on another chip, which the deployment does not cover.
    add(
        Proto::Native,
        "climate",
        "esp32",
        "1.0.0",
        Some(&c100),
        ROOM,
        35,
    );
    add(
        Proto::Native,
        "climate",
        "esp32",
        "1.1.0",
        Some(&c110),
        ROOM,
        5,
    );
    let newer = Image {
        id: 0,
        md5: String::new(),
        sha256: c200.clone(),
        appended: String::new(),
    };
    add(
        Proto::Native,
        "climate",
        "esp32",
        "2.0.0",
        Some(&newer),
        ROOM,
        4,
    );
    add(
        Proto::Native,
        "climate",
        "esp32",
        "1.0.0",
        Some(&c100),
        TIGHT,
        3,
    );
    add(Proto::Native, "benchlab", "esp32", "1.0.0", None, ROOM, 10);
    add(Proto::Native, "climate", "esp32c3", "1.0.0", None, ROOM, 8);
    // Arduino HTTPUpdate, 40: recognised by the library's hashes; 3 run sketches the library
    // does not have (project set by the admin, chip unknown).
    add(
        Proto::Arduino,
        "climate",
        "esp32",
        "1.0.0",
        Some(&c100),
        ROOM,
        30,
    );
    add(
        Proto::Arduino,
        "climate",
        "esp32",
        "1.1.0",
        Some(&c110),
        ROOM,
        4,
    );
    add(
        Proto::Arduino,
        "climate",
        "esp32",
        "1.0.0",
        Some(&c100),
        TIGHT,
        3,
    );
    add(Proto::Arduino, "climate", "esp32", "1.0.0", None, ROOM, 3);
    // ESP8266httpUpdate, 30: thermo 1.0.0, on the target, and 4 unknown sketches whose project
    // the admin set (the chip comes from the ESP8266 headers).
    add(
        Proto::Esp8266,
        "thermo",
        "esp8266",
        "1.0.0",
        Some(&t100),
        ROOM,
        22,
    );
    add(
        Proto::Esp8266,
        "thermo",
        "esp8266",
        "1.1.0",
        Some(&t110),
        ROOM,
        4,
    );
    add(Proto::Esp8266, "thermo", "esp8266", "1.0.0", None, ROOM, 4);
    // esp32FOTA, 35: project and chip set by the admin, project never said, another project.
    add(Proto::Fota, "climate", "esp32", "1.0.0", None, ROOM, 25);
    add(Proto::Fota, "climate", "esp32", "1.0.0", None, ROOM, 5);
    add(Proto::Fota, "benchlab", "esp32", "1.0.0", None, ROOM, 5);
    // Legacy sketch, 30: by version only, and only ever to a newer one.
    add(Proto::Legacy, "climate", "esp32", "1.0.0", None, ROOM, 20);
    add(Proto::Legacy, "climate", "esp32", "1.1.0", None, ROOM, 5);
    add(Proto::Legacy, "climate", "esp32", "1.2.0", None, ROOM, 5);
    assert_eq!(devs.len(), 200);

    // Every device becomes known the way it would: legacy devices are added by the admin, the
    // others ask once with nothing deployed.
    for d in devs.iter().filter(|d| d.proto == Proto::Legacy) {
        let r = app
            .admin(reqwest::Method::POST, "/api/v1/devices")
            .json(&json!({"mac": d.mac, "chip": d.chip, "project": d.project}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    for d in devs.iter_mut() {
        assert!(
            !ask(&app, d).await,
            "{} got an image with nothing deployed",
            d.mac
        );
    }
    // The admin tells otafleet what the stock clients could not.
    let fota_known: Vec<String> = devs
        .iter()
        .filter(|d| d.proto == Proto::Fota)
        .enumerate()
        .filter(|(i, _)| *i < 25 || *i >= 30)
        .map(|(_, d)| d.mac.clone())
        .collect();
    for d in devs.iter() {
        let unknown_sketch =
            d.md5.len() == 32 && ![&c100.md5, &c110.md5, &t100.md5, &t110.md5].contains(&&d.md5);
        if fota_known.contains(&d.mac) {
            patch(&app, &d.mac, json!({"project": d.project, "chip": d.chip})).await;
        } else if unknown_sketch && matches!(d.proto, Proto::Arduino | Proto::Esp8266) {
            patch(&app, &d.mac, json!({"project": d.project})).await;
        }
    }

    // A prior failed attempt: 3 climate devices were offered 1.0.5 in an earlier deployment,
    // and failed it.
    let failed_before: Vec<usize> = (0..3).collect();
    let earlier = app
        .deploy(json!({"firmware_id": c105.id,
            "devices": failed_before.iter().map(|&i| devs[i].mac.clone()).collect::<Vec<_>>()}))
        .await;
    for &i in &failed_before {
        let d = &mut devs[i];
        let body = json!({"mac": d.mac, "chip": d.chip, "project": d.project,
            "version": d.version, "sha256": d.sha256, "free_space": d.free});
        let (_, answer) = app.checkin(d.token.as_deref(), body).await;
        let id = answer["update"]["id"].as_i64().expect("offered 1.0.5");
        let r = app
            .progress(
                d.token.as_deref().unwrap(),
                json!({"update_id": id, "state": "failed", "progress": 30, "error": "flash write failed"}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }

    // The plans.
    let climate = json!({"firmware_id": c110.id});
    let thermo = json!({"firmware_id": t110.id});
    let climate_plan = plan(&app, climate.clone()).await;
    let thermo_plan = plan(&app, thermo.clone()).await;
    assert_eq!(climate_plan["supersedes"], json!([earlier["id"]]));
    let mut planned = groups(&climate_plan);
    for (kind, macs) in groups(&thermo_plan) {
        planned.entry(kind).or_default().extend(macs);
    }
    let counts: BTreeMap<&str, usize> =
        planned.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    // What the fleet above must give, so that this test cannot pass on an empty plan.
    let expected: BTreeMap<&str, usize> = [
        // native 35 (3 of them failed 1.0.5 before), arduino 30, esp8266 22 + 4, fota 25,
        // legacy 20
        ("offer", 35 + 30 + 26 + 25 + 20),
        ("already_running", 5 + 4 + 4 + 5),
        ("newer_running", 4 + 5),
        ("too_big", 3 + 3),
        ("chip_unknown", 3),
        ("waiting", 5),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected, "the plans' verdicts");
    assert_eq!(
        climate_plan["offered"].as_u64().unwrap() + thermo_plan["offered"].as_u64().unwrap(),
        136
    );

    // Reality: deploy as planned, then every device asks once.
    app.deploy(climate).await;
    app.deploy(thermo).await;
    let mut got = BTreeSet::new();
    for d in devs.iter_mut() {
        if ask(&app, d).await {
            got.insert(d.mac.clone());
        }
    }
    let offered: BTreeSet<String> = planned.get("offer").cloned().unwrap_or_default();
    let waiting: BTreeSet<String> = planned.get("waiting").cloned().unwrap_or_default();
    // Everyone promised an image got one; of the rest, only the esp32FOTA devices of unknown
    // project that the plan listed as "waiting" (they took it because they were built as
    // climate), and nobody else: not one device the plans did not cover.
    let surprises: Vec<&String> = got
        .iter()
        .filter(|m| !offered.contains(*m) && !waiting.contains(*m))
        .collect();
    let missed: Vec<&String> = offered.iter().filter(|m| !got.contains(*m)).collect();
    assert!(
        surprises.is_empty(),
        "got an image the plan did not promise: {surprises:?}"
    );
    assert!(missed.is_empty(), "promised, not offered: {missed:?}");
    assert_eq!(got.len(), 136 + 5);
    app.stop().await;
}

#[tokio::test]
async fn an_esp8266_running_an_unknown_sketch_is_offered_its_projects_image() {
    let app = TestApp::start().await;
    let v2 = Esp8266App::arduino().payload_len(90_000).build();
    let fw = upload(&app, "thermo_v1.1.0.bin", v2.clone()).await;
    let d = Dev {
        mac: "CC:50:E3:17:C4:22".into(),
        proto: Proto::Esp8266,
        project: "thermo",
        chip: "esp8266",
        version: "1.0.0",
        md5: "0123456789abcdef0123456789abcdef".into(),
        sha256: String::new(),
        appended_sha256: String::new(),
        free: 1_695_744,
        token: None,
    };
    let r = send(&app, &esp8266_request(&app, &d)).await;
    assert_eq!(r.status, 304, "nothing deployed yet");
    // The engineer says which project it is; a project-wide deployment then reaches it.
    patch(&app, &d.mac, json!({"project": "thermo"})).await;
    let p = plan(&app, json!({"firmware_id": fw.id})).await;
    assert_eq!(p["offered"], 1, "{p}");
    app.deploy(json!({"firmware_id": fw.id})).await;
    let r = send(&app, &esp8266_request(&app, &d)).await;
    assert_eq!(r.status, 200, "the project's image is offered");
    assert_eq!(r.header("x-md5"), Some(md5_hex(&v2).as_str()));
    assert_eq!(r.body, v2);
    app.stop().await;
}
