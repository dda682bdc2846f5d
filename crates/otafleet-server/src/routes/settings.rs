//! `GET /api/v1/settings`: how this server is set up, for the UI's settings page (and for a person
//! asking "which URL do my devices need?"). Most settings come from the command line (or the
//! desktop shell) at start; `PATCH` changes the ones kept in the database (open enrolment, the
//! check-in interval, the offline threshold), in effect at once.

use axum::extract::State;
use axum::Json as AxumJson;
use otafleet_core::notify::{NotifyPatch, NotifyView};
use otafleet_core::settings::SettingsChange;
use serde::{Deserialize, Deserializer, Serialize};
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
    /// Interval handed to native devices, in seconds (in effect: the admin's value, else the start
    /// default). Changed with `PATCH`.
    pub checkin_interval_s: u32,
    /// Where `checkin_interval_s` comes from.
    pub checkin_interval_source: SettingSource,
    /// The interval the server started with (`otafleet serve --checkin-interval`, 60 s unless
    /// given): in effect while the admin has not set one.
    pub checkin_interval_default_s: u32,
    /// A device not seen for this many seconds is shown offline (in effect).
    pub offline_after_s: i64,
    /// Where `offline_after_s` comes from: `start` means the rule 3 × interval + 10 s.
    pub offline_after_source: SettingSource,
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
    /// False: the settings above other than `open_enrolment`, `checkin_interval_s`,
    /// `offline_after_s` and `notify` are read-only over the API (set them at start).
    pub editable: bool,
    /// Where device reports are sent (webhook, e-mail; docs/notifications.md). Changed with
    /// `PATCH`; secrets are shown only as `{"set": true}`.
    pub notify: NotifyView,
}

/// Where a setting's value in effect comes from.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettingSource {
    /// The server's start settings (a command-line flag, or its default / rule).
    Start,
    /// Set by the admin with `PATCH /api/v1/settings`, kept in the database.
    Admin,
}

fn source(set: bool) -> SettingSource {
    if set {
        SettingSource::Admin
    } else {
        SettingSource::Start
    }
}

/// `null` kept apart from an absent field: absent → `None`, `null` → `Some(None)`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// The settings `PATCH /api/v1/settings` changes; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Let MACs this server does not know enrol (on by default).
    pub open_enrolment: Option<bool>,
    /// Interval handed to native devices, 10..=86400 s; in the very next check-in answer.
    /// `null` returns to the start default (`--checkin-interval`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub checkin_interval_s: Option<Option<i64>>,
    /// Seconds without a sign of life after which a device is shown offline; must be greater
    /// than the check-in interval (at most a week). `null` returns to 3 × interval + 10 s.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub offline_after_s: Option<Option<i64>>,
    /// The notification channels: `webhook` and `smtp`, each changed field by field (absent
    /// fields stay), `null` removes a channel. Secrets are write-only.
    pub notify: Option<NotifyPatch>,
}

/// Settings in effect. Who: a viewer or above; changes nothing.
#[utoipa::path(get, operation_id = "get_settings", path = "/api/v1/settings", tag = "settings",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = ServerSettings)))]
async fn get_settings(State(s): State<AppState>) -> ApiResult<AxumJson<ServerSettings>> {
    current(&s).await
}

/// Change the settings kept in the database: `open_enrolment`, `checkin_interval_s`,
/// `offline_after_s`, `notify` (where device reports are sent). Who: an admin or above (the admin token). Validated as a whole (422 and nothing changed
/// when a value is out of range), written in one transaction (a 2xx means it is on disk; 507 on a
/// full disk), in effect at once without a restart; answers with all settings.
#[utoipa::path(patch, operation_id = "patch_settings", path = "/api/v1/settings", tag = "settings",
    request_body = SettingsPatch,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 200, body = ServerSettings), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 507, body = ErrorBody)))]
async fn patch_settings(
    State(s): State<AppState>,
    Json(p): Json<SettingsPatch>,
) -> ApiResult<AxumJson<ServerSettings>> {
    s.fleet
        .change_settings(SettingsChange {
            open_enrolment: p.open_enrolment,
            checkin_interval_s: p.checkin_interval_s,
            offline_after_s: p.offline_after_s,
            notify: p.notify,
        })
        .await?;
    current(&s).await
}

async fn current(s: &AppState) -> ApiResult<AxumJson<ServerSettings>> {
    let core = s.fleet.settings();
    let open_enrolment = s.fleet.open_enrolment().await?;
    let timing = s.fleet.timing();
    Ok(AxumJson(ServerSettings {
        listen: s.info.listen.map(|a| a.to_string()),
        checkin_path: "/api/v1/device/checkin".into(),
        checkin_interval_s: timing.checkin_interval_s,
        checkin_interval_source: source(timing.interval_set),
        checkin_interval_default_s: core.checkin_interval_s,
        offline_after_s: timing.offline_after_s(),
        offline_after_source: source(timing.offline_override_s.is_some()),
        max_image_size: core.max_image_size,
        legacy_secret_configured: core
            .legacy_device_secret
            .as_deref()
            .is_some_and(|v| !v.is_empty()),
        mdns_name: s.info.mdns_name.clone(),
        data_dir: core.data_dir.display().to_string(),
        open_enrolment,
        editable: false,
        notify: s.fleet.notify_settings().await?,
    }))
}
