//! The simulator's admin side: upload images, deploy them to each family's project, register the
//! legacy devices through the legacy admin API, and at the end ask the server what it recorded
//! for every device ([`check`]; [`check_live`] when the devices lived on).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::config::{Config, Protocol};
use crate::device::{DeviceResult, Outcome};
use crate::error::SimError;
use crate::http::Http;
use crate::images::{Family, Image};

fn admin_err(what: &'static str, detail: impl ToString) -> SimError {
    SimError::Admin {
        what,
        detail: detail.to_string(),
    }
}

async fn json_or_err(what: &'static str, r: reqwest::Response) -> Result<Value, SimError> {
    let status = r.status();
    let body = r.text().await.map_err(|e| admin_err(what, e))?;
    if !status.is_success() {
        return Err(admin_err(what, format!("HTTP {status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|e| admin_err(what, e))
}

/// Upload `bytes` as a raw body under `filename` (project and version are read from it);
/// returns the firmware id (also when the bytes were already there).
pub async fn upload(
    http: &Http,
    token: &str,
    filename: &str,
    bytes: Vec<u8>,
) -> Result<i64, SimError> {
    let r = http
        .client
        .post(http.url("/api/v1/firmware"))
        .bearer_auth(token)
        .query(&[("filename", filename)])
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .map_err(|e| admin_err("upload", e))?;
    let fw = json_or_err("upload", r).await?;
    fw["id"]
        .as_i64()
        .ok_or_else(|| admin_err("upload", format!("no firmware id in {fw}")))
}

/// Upload the new image of `family` and deploy it to that family's project and chip (as a
/// staged rollout with `--rollout`); returns the deployment's id.
pub async fn upload_and_deploy(
    http: &Http,
    token: &str,
    cfg: &Config,
    family: Family,
    version: &str,
    bytes: Vec<u8>,
) -> Result<i64, SimError> {
    let id = upload(http, token, &family.filename(cfg, version), bytes).await?;
    let mut body = json!({
        "firmware_id": id,
        "project": family.project(cfg),
        "chip": family.chip(cfg).to_string(),
    });
    if let (Some(Value::Object(extra)), Value::Object(b)) = (&cfg.rollout, &mut body) {
        b.extend(extra.clone());
    }
    let r = http
        .client
        .post(http.url("/api/v1/deployments"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| admin_err("deploy", e))?;
    let d = json_or_err("deploy", r).await?;
    d["id"]
        .as_i64()
        .ok_or_else(|| admin_err("deploy", format!("no deployment id in {d}")))
}

/// The MACs the server placed in wave `wave` of rollout `deployment`.
pub async fn wave_members(
    http: &Http,
    token: &str,
    deployment: i64,
    wave: u32,
) -> Result<BTreeSet<String>, SimError> {
    let r = http
        .client
        .get(http.url(&format!("/api/v1/deployments/{deployment}")))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| admin_err("rollout waves", e))?;
    let d = json_or_err("rollout waves", r).await?;
    let waves = d["rollout"]["waves"].as_array().ok_or_else(|| {
        admin_err(
            "rollout waves",
            format!("deployment {deployment} is not a rollout"),
        )
    })?;
    let w = waves.get(wave as usize - 1).ok_or_else(|| {
        admin_err(
            "rollout waves",
            format!("the rollout has {} waves, not {wave}", waves.len()),
        )
    })?;
    Ok(w["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["mac"].as_str().map(str::to_string))
        .collect())
}

/// Register legacy devices as their server's admin does, through the legacy admin API
/// (`POST /admin/api/devices`, `X-Admin-API-Key`): the legacy API knows only devices added this
/// way. Each record names the image the device runs now (its `target_version`, `firmware_url`
/// and `checksum`, which must be in the library), so nothing is offered until a deployment made
/// later targets it. A device that is already there (a run repeated with the same seed) is fine.
pub async fn register_legacy(
    http: &Http,
    token: &str,
    cfg: &Config,
    macs: Vec<String>,
    running: &Image,
) -> Result<(), SimError> {
    let url = http.url("/admin/api/devices");
    let firmware_url = http.url(&format!(
        "/firmware/{}",
        Family::Esp32.filename(cfg, &running.version)
    ));
    let results: Vec<Result<(), SimError>> = futures_util::stream::iter(macs)
        .map(|mac| {
            let body = json!({
                "mac_address": mac,
                "device_id": crate::legacy::device_id(&mac),
                "hardware_version": "1.0",
                "target_version": running.version,
                "firmware_url": firmware_url,
                "checksum": running.md5,
            });
            let url = url.clone();
            async move {
                let r = http
                    .client
                    .post(&url)
                    .header("X-Admin-API-Key", token)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| admin_err("legacy device registration", e))?;
                let status = r.status();
                if status.is_success() || status.as_u16() == 409 {
                    return Ok(());
                }
                let text = r.text().await.unwrap_or_default();
                Err(admin_err(
                    "legacy device registration",
                    format!("{mac}: HTTP {status}: {text}"),
                ))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Create `count` ESP Admin devices in the ESP32 family's project, as the admin does ("Add ESP
/// Admin device"): `POST /api/v1/esp-admin/devices`. Each answer carries the device's id, its API
/// key (shown this once) and the MAC the server drew for it.
pub async fn create_esp_admin(
    http: &Http,
    token: &str,
    cfg: &Config,
    count: usize,
) -> Result<Vec<crate::esp_admin::Creds>, SimError> {
    let url = http.url("/api/v1/esp-admin/devices");
    let project = Family::Esp32.project(cfg);
    let results: Vec<Result<crate::esp_admin::Creds, SimError>> =
        futures_util::stream::iter(0..count)
            .map(|i| {
                let body = json!({
                    "name": format!("sim-esp-admin-{i}"),
                    "project": project,
                });
                let url = url.clone();
                async move {
                    let r = http
                        .client
                        .post(&url)
                        .bearer_auth(token)
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| admin_err("ESP Admin device creation", e))?;
                    let v = json_or_err("ESP Admin device creation", r).await?;
                    let field = |v: &Value| v.as_str().map(str::to_owned);
                    match (
                        field(&v["id"]),
                        field(&v["api_key"]),
                        field(&v["device"]["mac"]),
                    ) {
                        (Some(id), Some(key), Some(mac)) => {
                            Ok(crate::esp_admin::Creds { id, key, mac })
                        }
                        _ => Err(admin_err(
                            "ESP Admin device creation",
                            format!("no id, api_key and device.mac in {v}"),
                        )),
                    }
                }
            })
            .buffered(16)
            .collect()
            .await;
    results.into_iter().collect()
}

/// What the server recorded, compared with what the devices did.
#[derive(Debug, Clone, Default)]
pub struct ServerCheck {
    pub checked: usize,
    pub mismatches: Vec<String>,
    /// How long the run waited, after the devices finished, for the records to agree (zero when
    /// they did at once): devices that go on polling can complete them meanwhile.
    pub settled_after: std::time::Duration,
    /// The protocols of the devices whose records disagree.
    pub disagreeing: BTreeSet<Protocol>,
    /// Updated devices whose injected cut the server took for a complete download: it recorded
    /// a failed attempt when the device came back on the old image, before the attempt that
    /// succeeded. Not an error of the run: a server that counts bytes sent cannot see a cut
    /// when the rest of the image fits in the sockets' buffers (several MB on loopback).
    pub cuts_seen_whole: usize,
    /// Devices the end of a run whose devices live on stopped in the middle of an update: the
    /// server's records of them are not compared.
    pub in_flight: usize,
}

impl ServerCheck {
    fn disagree(&mut self, proto: Protocol, what: String) {
        self.mismatches.push(what);
        self.disagreeing.insert(proto);
    }
}

/// Every updated device must be `done` on its family's new image (`targets`, empty when the
/// deployment was made elsewhere), recorded under its protocol; every injected failed boot must
/// be a `failed` attempt in the device's history.
pub async fn check(
    http: &Http,
    token: &str,
    results: &[DeviceResult],
    targets: &BTreeMap<Family, Image>,
) -> ServerCheck {
    let mut out = ServerCheck::default();
    let devices = match all_devices(http, token).await {
        Ok(Value::Array(list)) => list,
        Ok(other) => {
            out.mismatches
                .push(format!("GET /api/v1/devices: not a list: {other}"));
            return out;
        }
        Err(e) => {
            out.mismatches.push(e.to_string());
            return out;
        }
    };
    let by_mac: HashMap<String, &Value> = devices
        .iter()
        .filter_map(|d| Some((d["mac"].as_str()?.to_uppercase(), d)))
        .collect();
    for res in results {
        let (mac, proto) = (&res.mac, res.protocol);
        let Some(d) = by_mac.get(&mac.to_uppercase()) else {
            out.disagree(
                proto,
                format!("{mac} ({}): the server does not list it", proto.name()),
            );
            continue;
        };
        let target = targets.get(&proto.family());
        if !matches!(res.outcome, Outcome::Unexpected(_)) && d["protocol"] != proto.name() {
            out.disagree(
                proto,
                format!(
                    "{mac}: a {} device, but the server records protocol {}",
                    proto.name(),
                    d["protocol"]
                ),
            );
        }
        match &res.outcome {
            Outcome::Updated { update_id, .. } => {
                out.checked += 1;
                if res.cut_injected {
                    let path = format!("/api/v1/devices/{mac}/updates");
                    let failed_before = get(http, token, &path).await.ok().is_some_and(|h| {
                        h.as_array()
                            .is_some_and(|a| a.iter().any(|u| u["state"] == "failed"))
                    });
                    out.cuts_seen_whole += usize::from(failed_before);
                }
                let u = &d["update"];
                let same = update_id.is_none_or(|id| u["id"].as_i64() == Some(id));
                if !same || u["state"] != "done" {
                    out.disagree(
                        proto,
                        format!(
                            "{mac} ({}): updated, but the server's latest update is {} in state {}",
                            proto.name(),
                            u["id"],
                            u["state"]
                        ),
                    );
                }
                if let Some(t) = target {
                    if u["sha256"].as_str() != Some(t.sha256.as_str()) {
                        out.disagree(
                            proto,
                            format!(
                                "{mac} ({}): its latest update installs {}, not the deployed image",
                                proto.name(),
                                u["sha256"]
                            ),
                        );
                    }
                    // Legacy devices report only a version; the others a hash, or (esp32FOTA)
                    // the server infers it from the image it sent.
                    let runs = if proto == Protocol::Legacy {
                        d["version"].as_str() == Some(t.version.as_str())
                    } else {
                        d["sha256"].as_str() == Some(t.sha256.as_str())
                    };
                    if !runs {
                        out.disagree(
                            proto,
                            format!(
                            "{mac} ({}): the server thinks it runs {} / {}, not the deployed image",
                            proto.name(),
                            d["version"],
                            d["sha256"]
                        ),
                        );
                    }
                }
            }
            Outcome::BootFailedAsInjected { update_id } => {
                out.checked += 1;
                let path = format!("/api/v1/devices/{mac}/updates");
                let history = get(http, token, &path).await;
                let recorded = history.as_ref().ok().and_then(|h| {
                    h.as_array()?
                        .iter()
                        .find(|u| match update_id {
                            Some(id) => u["id"].as_i64() == Some(*id),
                            // Stock clients: a failed attempt at the deployed image.
                            None => {
                                u["state"] == "failed"
                                    && target.is_none_or(|t| {
                                        u["sha256"].as_str() == Some(t.sha256.as_str())
                                    })
                            }
                        })
                        .map(|u| u["state"].clone())
                });
                if recorded.as_ref().and_then(Value::as_str) != Some("failed") {
                    out.disagree(proto, format!(
                        "{mac} ({}): its boot of update {update_id:?} failed, but the server recorded {recorded:?}",
                        proto.name()
                    ));
                }
                // The device took every offer and failed each: nothing may be left open.
                if d["update"]["state"] != "failed" {
                    out.disagree(
                        proto,
                        format!(
                        "{mac} ({}): every boot failed, but the server's latest update {} is {}",
                        proto.name(),
                        d["update"]["id"],
                        d["update"]["state"]
                    ),
                    );
                }
            }
            Outcome::Withdrawn => {
                // Back where it was: the server must not think it runs the new image.
                out.checked += 1;
                if let Some(t) = target {
                    let thinks_new = if proto == Protocol::Legacy {
                        d["version"].as_str() == Some(t.version.as_str())
                    } else {
                        d["sha256"].as_str() == Some(t.sha256.as_str())
                    };
                    if thinks_new != (res.runs.sha256 == t.sha256) {
                        out.disagree(
                            proto,
                            format!(
                                "{mac} ({}): withdrawn, running {} / {}, but the server thinks it runs {} / {}",
                                proto.name(),
                                res.runs.version,
                                res.runs.sha256,
                                d["version"],
                                d["sha256"]
                            ),
                        );
                    }
                }
            }
            Outcome::Unexpected(_) => {}
        }
    }
    out
}

/// The check of a run whose devices lived on (`--duration` / `--forever`): the server's records
/// are compared with where each device is at the end, not with its first outcome, which later
/// updates may have moved on from. For every device whose last check was answered "nothing to
/// do" ([`DeviceResult::settled`]): the server lists it under its protocol, thinks it runs the
/// image it runs (by version for legacy devices, which report nothing else), and its latest
/// update is `done` if it installs that image, else `failed` (an attempt it came back from).
/// Every injected failed boot of a first outcome must be a `failed` attempt, as in [`check`].
pub async fn check_live(http: &Http, token: &str, results: &[DeviceResult]) -> ServerCheck {
    let mut out = ServerCheck::default();
    let devices = match all_devices(http, token).await {
        Ok(Value::Array(list)) => list,
        Ok(other) => {
            out.mismatches
                .push(format!("GET /api/v1/devices: not a list: {other}"));
            return out;
        }
        Err(e) => {
            out.mismatches.push(e.to_string());
            return out;
        }
    };
    let by_mac: HashMap<String, &Value> = devices
        .iter()
        .filter_map(|d| Some((d["mac"].as_str()?.to_uppercase(), d)))
        .collect();
    for res in results {
        let (mac, proto) = (&res.mac, res.protocol);
        let Some(d) = by_mac.get(&mac.to_uppercase()) else {
            out.disagree(
                proto,
                format!("{mac} ({}): the server does not list it", proto.name()),
            );
            continue;
        };
        if !matches!(res.outcome, Outcome::Unexpected(_)) && d["protocol"] != proto.name() {
            out.disagree(
                proto,
                format!(
                    "{mac}: a {} device, but the server records protocol {}",
                    proto.name(),
                    d["protocol"]
                ),
            );
        }
        if let Outcome::BootFailedAsInjected { update_id } = &res.outcome {
            let path = format!("/api/v1/devices/{mac}/updates");
            let failed = get(http, token, &path).await.ok().is_some_and(|h| {
                h.as_array().is_some_and(|a| {
                    a.iter().any(|u| {
                        u["state"] == "failed"
                            && update_id.is_none_or(|id| u["id"].as_i64() == Some(id))
                    })
                })
            });
            if !failed {
                out.disagree(
                    proto,
                    format!(
                        "{mac} ({}): its boot of update {update_id:?} failed, but the server has no failed attempt of it",
                        proto.name()
                    ),
                );
            }
        }
        if !res.settled {
            out.in_flight += 1;
            continue;
        }
        out.checked += 1;
        let runs = &res.runs;
        let agrees = if proto == Protocol::Legacy {
            d["version"].as_str() == Some(runs.version.as_str())
        } else {
            d["sha256"].as_str() == Some(runs.sha256.as_str())
        };
        if !agrees {
            out.disagree(
                proto,
                format!(
                    "{mac} ({}): runs {} / {}, but the server thinks it runs {} / {}",
                    proto.name(),
                    runs.version,
                    runs.sha256,
                    d["version"],
                    d["sha256"]
                ),
            );
        }
        let u = &d["update"];
        if !u.is_null() {
            let want = if u["sha256"].as_str() == Some(runs.sha256.as_str()) {
                "done"
            } else {
                "failed"
            };
            if u["state"] != want {
                out.disagree(
                    proto,
                    format!(
                        "{mac} ({}): runs {}, but the server's latest update {} (sha256 {}) is {}, not {want}",
                        proto.name(),
                        runs.version,
                        u["id"],
                        u["sha256"],
                        u["state"]
                    ),
                );
            }
        }
    }
    out
}

async fn get(http: &Http, token: &str, path: &str) -> Result<Value, SimError> {
    let r = http
        .client
        .get(http.url(path))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| admin_err("read back", e))?;
    json_or_err("read back", r).await
}

/// Every row of `GET /api/v1/devices`: the server lists a page at a time and names the next page
/// in a `Link: <…>; rel="next"` header, followed here to the last page.
async fn all_devices(http: &Http, token: &str) -> Result<Value, SimError> {
    let mut rows = Vec::new();
    let mut path = "/api/v1/devices?limit=5000".to_string();
    loop {
        let r = http
            .client
            .get(http.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| admin_err("read back", e))?;
        let next = r
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix('<'))
            .and_then(|v| v.split_once('>'))
            .filter(|(_, rel)| rel.contains("rel=\"next\""))
            .map(|(url, _)| url.to_string());
        match json_or_err("read back", r).await? {
            Value::Array(page) => rows.extend(page),
            other => return Ok(other),
        }
        match next {
            Some(n) if n != path => path = n,
            _ => return Ok(Value::Array(rows)),
        }
    }
}

/// `--esp-admin-created-hook`: write each created device's `<id> <API key>` to a file of its own
/// (mode 0600, removed afterwards) and run `sh -c CMD sh FILE`; an error unless it succeeds.
pub async fn esp_admin_created_hook(
    cmd: &str,
    created: &[crate::esp_admin::Creds],
) -> Result<(), SimError> {
    let fail = |detail: String| SimError::Admin {
        what: "--esp-admin-created-hook",
        detail,
    };
    let dir = std::env::temp_dir().join(format!(
        "otafleet-sim-esp-admin-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let file = dir.join("devices.txt");
    let text: String = created
        .iter()
        .map(|c| format!("{} {}\n", c.id, c.key))
        .collect();
    let written = {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        o.mode(0o600);
        o.open(&file).and_then(|mut f| f.write_all(text.as_bytes()))
    };
    let result = match written {
        Err(e) => Err(fail(format!("{}: {e}", file.display()))),
        Ok(()) => match tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .arg("sh")
            .arg(&file)
            .status()
            .await
        {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(fail(format!("`{cmd}` ended with {s}"))),
            Err(e) => Err(fail(format!("cannot run sh: {e}"))),
        },
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}
