//! `GET /api/v1/settings`: how this server is set up, read-only, for the UI's settings page (and
//! for a person asking "which URL do my devices need?"). Changing settings from the UI is not built
//! yet; they come from the command line (or the desktop shell) at start.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings))
}

/// The server's settings as they are in effect.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerSettings {
    /// `ip:port` the server listens on, when the program that started it said so.
    pub listen: Option<String>,
    /// Path native devices check in at (relative to the server's base URL).
    pub checkin_path: String,
    /// Interval handed to native devices, in seconds.
    pub checkin_interval_s: u32,
    /// A device not seen for this many seconds is shown offline.
    pub offline_after_s: i64,
    /// Largest firmware image accepted, in bytes.
    pub max_image_size: u64,
    /// Whether the legacy "ESP32 OTA Update Server" shared secret is set (the scheme is off
    /// otherwise). The secret itself is never returned.
    pub legacy_secret_configured: bool,
    /// mDNS instance name advertised as `_otafleet._tcp`, when mDNS runs.
    pub mdns_name: Option<String>,
    /// Where the database and firmware blobs live.
    pub data_dir: String,
    /// False: settings are read-only over the API for now (set them at start).
    pub editable: bool,
}

/// Settings in effect (read-only).
#[utoipa::path(get, operation_id = "get_settings", path = "/api/v1/settings", tag = "settings",
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = ServerSettings)))]
async fn get_settings(State(s): State<AppState>) -> ApiResult<Json<ServerSettings>> {
    let core = s.fleet.settings();
    Ok(Json(ServerSettings {
        listen: s.info.listen.map(|a| a.to_string()),
        checkin_path: "/api/v1/device/checkin".into(),
        checkin_interval_s: core.checkin_interval_s,
        offline_after_s: core.offline_after_s(),
        max_image_size: core.max_image_size,
        legacy_secret_configured: core
            .legacy_device_secret
            .as_deref()
            .is_some_and(|v| !v.is_empty()),
        mdns_name: s.info.mdns_name.clone(),
        data_dir: core.data_dir.display().to_string(),
        editable: false,
    }))
}
