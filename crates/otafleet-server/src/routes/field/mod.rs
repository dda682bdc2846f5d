//! Routes for devices already in the field, which keep their stock updaters (docs/protocols.md
//! §2–4): Arduino `HTTPUpdate` / `ESP8266httpUpdate` ([`arduino`]), esp32FOTA manifests ([`fota`]),
//! the legacy "ESP32 OTA Update Server" API ([`legacy`], [`legacy_admin`], [`legacy_firmware`]), and byte counting for
//! all of them ([`counted`]). The rules themselves live in `otafleet_core::field`.
//!
//! These routes are not in the OpenAPI document: their shapes are fixed by firmware we do not
//! control, and the legacy ones deliberately answer in the legacy server's error shapes.

pub mod arduino;
pub mod counted;
pub mod fota;
pub mod legacy;
pub mod legacy_admin;
pub mod legacy_firmware;

use axum::http::HeaderMap;
use axum::Router;

use crate::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(arduino::router())
        .merge(counted::router())
        .merge(fota::router())
        .merge(legacy::router())
        .merge(legacy_admin::router(state))
}

/// `http://<Host>` of the request (`https://` when it came over TLS, so a device that fetched its
/// answer over HTTPS downloads over HTTPS too), for absolute URLs handed to devices; `None` when
/// the Host header is missing or not a plain host[:port] (every HTTP client the devices use
/// sends one).
pub fn base_url(headers: &HeaderMap, tls: bool) -> Option<String> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        });
    let scheme = if tls { "https" } else { "http" };
    host.map(|h| format!("{scheme}://{h}"))
}
