//! `GET /api/v1/settings`: how this server is set up, for the UI's settings page (and for a person
//! asking "which URL do my devices need?"). Most settings come from the command line (or the
//! desktop shell) at start; `PATCH` changes the ones kept in the database (open enrolment).

use axum::extract::State;
use axum::Json as AxumJson;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Json;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, patch_settings))
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
    /// Whether MACs this server does not know may enrol (trust on first use, every protocol).
    /// Off: an unknown device is refused until the admin adds it. Changed with `PATCH`.
    pub open_enrolment: bool,
    /// False: the settings above other than `open_enrolment` are read-only over the API (set
    /// them at start).
    pub editable: bool,
}

/// The settings `PATCH /api/v1/settings` changes; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Let MACs this server does not know enrol (on by default).
    pub open_enrolment: Option<bool>,
}

/// Settings in effect. Admin only; changes nothing.
#[utoipa::path(get, operation_id = "get_settings", path = "/api/v1/settings", tag = "settings",
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = ServerSettings)))]
async fn get_settings(State(s): State<AppState>) -> ApiResult<AxumJson<ServerSettings>> {
    current(&s).await
}

/// Change the settings kept in the database: `open_enrolment`. Admin only (the admin token); it
/// changes only those settings, persisted across restarts, and answers with all settings.
#[utoipa::path(patch, operation_id = "patch_settings", path = "/api/v1/settings", tag = "settings",
    request_body = SettingsPatch,
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = ServerSettings), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn patch_settings(
    State(s): State<AppState>,
    Json(p): Json<SettingsPatch>,
) -> ApiResult<AxumJson<ServerSettings>> {
    if let Some(open) = p.open_enrolment {
        s.fleet.set_open_enrolment(open).await?;
    }
    current(&s).await
}

async fn current(s: &AppState) -> ApiResult<AxumJson<ServerSettings>> {
    let core = s.fleet.settings();
    let open_enrolment = s.fleet.open_enrolment().await?;
    Ok(AxumJson(ServerSettings {
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
        open_enrolment,
        editable: false,
    }))
}
