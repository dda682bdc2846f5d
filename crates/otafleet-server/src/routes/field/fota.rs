//! `GET /ota/esp32fota.json[?id=<efuse MAC, decimal>]`: the esp32FOTA manifest (docs/protocols.md
//! §3; chrisjoyce911/esp32FOTA `src/esp32FOTA.cpp`, `execHTTPcheck` and
//! `checkJSONManifest`). An array of `{type, version, url}`; `url` is absolute, built from the
//! request's `Host`. With `?id=` the device is registered by its MAC and its entries point at the
//! per-device download route, so the bytes it fetches are counted for it; a device that asks
//! again after a complete download is taken to run the new image (esp32FOTA reports nothing).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Extension, Json, Router};
use otafleet_core::field::{FieldAnswer, FieldCheck, FieldMode};
use serde::{Deserialize, Serialize};

use crate::conn::Transport;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/ota/esp32fota.json", get(fota))
}

#[derive(Deserialize)]
struct Params {
    id: Option<String>,
}

#[derive(Serialize)]
struct Entry {
    r#type: String,
    version: String,
    url: String,
}

/// `ESP.getEfuseMac()` is the six MAC bytes read little-endian into a `uint64_t`, so the first
/// MAC byte is the least significant; the top two bytes are zero.
pub fn efuse_id_to_mac(id: &str) -> Option<String> {
    let n: u64 = id.trim().parse().ok()?;
    if n >> 48 != 0 {
        return None;
    }
    let b = n.to_le_bytes();
    Some(
        b[..6]
            .iter()
            .map(|x| format!("{x:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Anyone on the LAN may call it. Without `id` it changes nothing (the manifest of every
/// deployed project). With `id` it registers or refreshes that device like a check-in
/// (`otafleet_core::field::check`), so the trust rules apply: a device esp32FOTA may not speak for
/// (token-enrolled, another expected protocol, unknown with enrolment off) gets `403` with the
/// reason (esp32FOTA then updates nothing), recorded on the device, nothing else changed.
async fn fota(
    State(s): State<AppState>,
    Query(p): Query<Params>,
    transport: Option<Extension<Transport>>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Entry>>> {
    let base = super::base_url(&headers, transport.as_ref().is_some_and(|t| t.is_tls()))
        .map(|b| format!("{b}{}", s.device_prefix()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "host_required",
                "send a Host header: manifest URLs are built from it",
            )
        })?;
    let mac = match p.id.as_deref() {
        None => None,
        Some(id) => Some(efuse_id_to_mac(id).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_device_id",
                "id must be the device's ESP.getEfuseMac() printed as a decimal number (esp32FOTA's use_device_id)",
            )
        })?),
    };
    let entries = match &mac {
        Some(mac) => {
            let (_, answer) = s
                .fleet
                .field_check(FieldCheck {
                    mac: mac.clone(),
                    protocol: "esp32fota",
                    mode: FieldMode::Manifest,
                    md5: None,
                    sha256: None,
                    version: None,
                    free_space: None,
                    ip: None,
                    register: true,
                    weak_auth: false,
                    tls: transport.is_some_and(|Extension(t)| t.is_tls()),
                })
                .await?;
            match answer {
                FieldAnswer::Manifest { entries } => entries,
                other => {
                    return Err(ApiError::with_status(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal_error",
                        format!("the esp32FOTA check answered {other:?} instead of a manifest"),
                    ))
                }
            }
        }
        None => s.fleet.fota_manifest().await?,
    };
    Ok(Json(
        entries
            .into_iter()
            .map(|(project, fw)| Entry {
                r#type: project,
                version: fw.version.clone().unwrap_or_default(),
                url: match &mac {
                    Some(m) => format!("{base}/ota/firmware/{m}/{}", fw.sha256),
                    None => format!("{base}/api/v1/device/firmware/{}", fw.sha256),
                },
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn efuse_ids() {
        assert_eq!(
            super::efuse_id_to_mac(&0x3C15_A3C4_0A24u64.to_string()).as_deref(),
            Some("24:0A:C4:A3:15:3C")
        );
        assert_eq!(super::efuse_id_to_mac(&(1u64 << 48).to_string()), None);
        assert_eq!(super::efuse_id_to_mac("-1"), None);
        assert_eq!(super::efuse_id_to_mac("abc"), None);
    }
}
