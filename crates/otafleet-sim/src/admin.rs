//! The simulator's admin side: upload the new image, deploy it to the project, and at the end ask
//! the server what it recorded for every device ([`check`]).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::config::Config;
use crate::device::{Image, Outcome};
use crate::error::SimError;
use crate::http::Http;

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

/// Upload `bytes` as a raw body; returns the firmware id (also when the bytes were already there).
pub async fn upload(
    http: &Http,
    token: &str,
    cfg: &Config,
    version: &str,
    bytes: Vec<u8>,
) -> Result<i64, SimError> {
    let name = format!("{}-{version}.bin", cfg.project);
    let r = http
        .client
        .post(http.url("/api/v1/firmware"))
        .bearer_auth(token)
        .query(&[("filename", name.as_str())])
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

/// Upload `bytes` and deploy it to the run's project and chip.
pub async fn upload_and_deploy(
    http: &Http,
    token: &str,
    cfg: &Config,
    version: &str,
    bytes: Vec<u8>,
) -> Result<(), SimError> {
    let id = upload(http, token, cfg, version, bytes).await?;
    let r = http
        .client
        .post(http.url("/api/v1/deployments"))
        .bearer_auth(token)
        .json(&json!({"firmware_id": id, "project": cfg.project, "chip": cfg.chip.to_string()}))
        .send()
        .await
        .map_err(|e| admin_err("deploy", e))?;
    json_or_err("deploy", r).await?;
    Ok(())
}

/// What the server recorded, compared with what the devices did.
#[derive(Debug, Clone, Default)]
pub struct ServerCheck {
    pub checked: usize,
    pub mismatches: Vec<String>,
}

/// Every updated device must be `done` on `target`; every injected failed boot must be a
/// `failed` attempt in the device's history.
pub async fn check(
    http: &Http,
    token: &str,
    outcomes: &[(String, Outcome)],
    target: Option<&Image>,
) -> ServerCheck {
    let mut out = ServerCheck::default();
    let devices = match get(http, token, "/api/v1/devices").await {
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
    for (mac, outcome) in outcomes {
        let Some(d) = by_mac.get(&mac.to_uppercase()) else {
            out.mismatches
                .push(format!("{mac}: the server does not list it"));
            continue;
        };
        match outcome {
            Outcome::Updated { update_id, .. } => {
                out.checked += 1;
                let u = &d["update"];
                let same = update_id.is_none_or(|id| u["id"].as_i64() == Some(id));
                if !same || u["state"] != "done" {
                    out.mismatches.push(format!(
                        "{mac}: updated, but the server's latest update is {} in state {}",
                        u["id"], u["state"]
                    ));
                }
                if let Some(t) = target {
                    if d["sha256"].as_str() != Some(t.sha256.as_str()) {
                        out.mismatches.push(format!(
                            "{mac}: the server thinks it runs {}, not the deployed image",
                            d["sha256"]
                        ));
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
                            // Stock clients: the attempt that failed on the old image.
                            None => u["state"] == "failed",
                        })
                        .map(|u| u["state"].clone())
                });
                if recorded.as_ref().and_then(Value::as_str) != Some("failed") {
                    out.mismatches.push(format!(
                        "{mac}: its boot of update {update_id:?} failed, but the server recorded {recorded:?}"
                    ));
                }
            }
            Outcome::Unexpected(_) => {}
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
