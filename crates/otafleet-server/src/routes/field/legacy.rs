//! The legacy "ESP32 OTA Update Server" device API (docs/protocols.md §4; in full,
//! docs/seed1-compat.md §3–4): `GET /api/firmware` and `GET /firmware/{filename}`.
//!
//! Deliberate exception to "errors are mapped once in error.rs": devices and scripts built for
//! that server read its own bodies (`{"error": …}`, FastAPI's `{"detail": …}`), so this module
//! builds them itself, in the evaluation order of docs/seed1-compat.md §3, with the intended
//! status codes (403/400/404) where the original answered 500 by accident. The scheme is off
//! unless a shared secret is configured; devices that use it are marked `weak_auth`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use otafleet_core::field::{self, FieldAnswer, FieldCheck, FieldMode};
use otafleet_core::{legacy, CoreError};
use serde_json::{json, Value};

use super::counted::{counted, Counting};
use crate::conn::Transport;
use crate::routes::download::blob_response;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/firmware", get(check))
        .route("/firmware/{filename}", get(firmware))
}

/// A refusal in the legacy server's `{"error": …}` shape, logged like every refusal.
pub fn error(status: StatusCode, message: &str) -> Response {
    tracing::info!(status = status.as_u16(), %message, "legacy request refused");
    (status, Json(json!({ "error": message }))).into_response()
}

fn missing(fields: &[&str]) -> Response {
    let detail: Vec<Value> = fields
        .iter()
        .map(|f| json!({"loc": ["query", f], "msg": "field required", "type": "value_error.missing"}))
        .collect();
    tracing::info!(?fields, "legacy request without required fields");
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": detail })),
    )
        .into_response()
}

fn mac_shape_ok(mac: &str) -> bool {
    let m = mac.to_uppercase();
    let hex = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (m.len() == 12 && m.bytes().all(|b| b.is_ascii_hexdigit()))
        || (m.len() == 17 && {
            let sep = m.as_bytes()[2];
            (sep == b':' || sep == b'-') && m.split(sep as char).filter(|p| hex(p)).count() == 6
        })
}

fn version_ok(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Percent-encode a file name for a URL path segment.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /api/firmware`: devices holding the legacy shared-secret token for their MAC (weak: one
/// sniffed request forges it). It refreshes a device the admin added (never registers one) and
/// starts its attempt. The trust rules apply (`otafleet_core::trust`): a token-enrolled device or
/// one expected to speak another protocol gets `403` with the reason, recorded, nothing changed.
async fn check(
    State(s): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    transport: Option<Extension<Transport>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(secret) = s.fleet.settings().legacy_device_secret.clone() else {
        return error(StatusCode::NOT_FOUND, "the legacy \"ESP32 OTA Update Server\" device API is off; start otafleet with --legacy-device-secret <the devices' shared secret> (or OTAFLEET_LEGACY_DEVICE_SECRET) to turn it on");
    };
    let Some(mac) = q.get("mac") else {
        return missing(&["mac"]);
    };
    let auth = headers
        .get("x-device-auth")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let Some(auth) = auth else {
        return error(StatusCode::UNAUTHORIZED, "Authentication header required");
    };
    if !mac_shape_ok(mac) {
        return error(StatusCode::BAD_REQUEST, "Invalid MAC address format");
    }
    if !legacy::token_ok(mac, &secret, auth) {
        tracing::warn!(%mac, "legacy device token refused");
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let absent: Vec<&str> = ["device_id", "hardware", "version"]
        .into_iter()
        .filter(|f| !q.contains_key(*f))
        .collect();
    if !absent.is_empty() {
        return missing(&absent);
    }
    let version = &q["version"];
    if q["device_id"].is_empty() || q["hardware"].is_empty() || version.is_empty() {
        return error(StatusCode::BAD_REQUEST, "Missing required parameters");
    }
    if !version_ok(version) {
        return error(StatusCode::BAD_REQUEST, "Invalid version format");
    }
    let Some(base) = super::base_url(&headers, transport.as_ref().is_some_and(|t| t.is_tls()))
        .map(|b| format!("{b}{}", s.device_prefix()))
    else {
        return error(StatusCode::BAD_REQUEST, "Host header required");
    };
    let req = FieldCheck {
        mac: mac.clone(),
        protocol: "legacy",
        mode: FieldMode::App,
        md5: None,
        sha256: None,
        version: Some(version.clone()),
        free_space: None,
        ip: Some(remote.ip().to_canonical().to_string()),
        register: false,
        weak_auth: true,
        tls: transport.is_some_and(|Extension(t)| t.is_tls()),
    };
    match s.fleet.field_check(req).await {
        Ok((mac, FieldAnswer::Offer { firmware, .. })) => {
            let mac12 = mac.replace(':', "");
            Json(json!({
                "update_available": true,
                "firmware_version": firmware.version,
                "firmware_url": format!("{base}/firmware/{}?device={mac12}", encode(&firmware.filename)),
                "checksum": firmware.md5,
            }))
            .into_response()
        }
        Ok(_) => Json(json!({
            "update_available": false, "firmware_version": null, "firmware_url": null, "checksum": null
        }))
        .into_response(),
        Err(CoreError::NotFound { .. }) => error(StatusCode::FORBIDDEN, "Device not authorized"),
        // The trust rules (a token-enrolled device, another expected protocol, enrolment off):
        // the legacy sketch treats 403 as "no update"; the body says why.
        Err(e @ CoreError::Refused { .. }) => error(
            StatusCode::FORBIDDEN,
            &format!("Device not authorized: {e}"),
        ),
        Err(e) if e.is_internal() => {
            tracing::error!(error = %e, "legacy check failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// `GET /firmware/{filename}`: the library image of that name, `200` only (the legacy sketch
/// accepts nothing else), with `Content-Length`, no auth. `?device=` (the URL our check answers
/// hand out) pins the image that device was offered and counts the bytes for it, unless the trust
/// rules do not let a legacy client speak for that device: then the bytes go out uncounted and
/// the refusal is recorded. Anyone may call it; it changes only a pinned device's attempt.
async fn firmware(
    State(s): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if otafleet_core::validate::filename(&name).is_err() {
        return error(StatusCode::BAD_REQUEST, "Invalid filename");
    }
    let mut pinned = None;
    if let Some(mac) = q.get("device") {
        if let Ok(d) = s.fleet.device(mac).await {
            if let Ok(Some(fw)) = s.fleet.legacy_target(&d).await {
                if fw.filename == name {
                    pinned = Some((d.mac, fw));
                }
            }
        }
    }
    let fw = match pinned.as_ref() {
        Some((_, fw)) => fw.clone(),
        None => match s.fleet.legacy_firmware(&name).await {
            Ok(Some(fw)) => fw,
            Ok(None) => return error(StatusCode::NOT_FOUND, "Firmware file not found"),
            Err(e) => {
                tracing::error!(error = %e, "firmware lookup failed");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
            }
        },
    };
    let resp = match blob_response(&s.fleet, &fw, &Method::GET, &HeaderMap::new()).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    // A device the trust rules do not let a legacy client speak for gets the bytes (the image is
    // public by name) but nothing is counted for it; the refusal is recorded by the core.
    let from = remote.ip().to_canonical().to_string();
    let asker = field::Asker {
        protocol: "legacy",
        token: None,
        from: Some(&from),
    };
    let update = match pinned {
        Some((mac, fw)) => s
            .fleet
            .field_download_for(&mac, &fw, asker)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    match update {
        Some(u) => counted(&s.fleet, &Method::GET, resp, &u, &fw, Counting::Stock),
        None => resp,
    }
}
