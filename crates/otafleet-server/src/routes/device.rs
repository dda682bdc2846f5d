//! Native device protocol v1 (docs/protocols.md §1): `POST /api/v1/device/checkin`,
//! `POST /api/v1/device/progress`, `POST /api/v1/device/report`, `POST /api/v1/device/logs`, and
//! the device's own config (`GET`/`POST /api/v1/device/config`). The device token travels as
//! `Authorization: Bearer`. Commands (fetch and answer) are in the `commands` sub-module.

mod commands;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::{Extension, Json as AxumJson};
use otafleet_core::checkin::{CheckinRequest, CheckinResponse, ProgressRequest};
use otafleet_core::config::{ConfigApplied, DeviceConfig, DeviceConfigAnswer};
use otafleet_core::logs::{LogBatch, LogBatchAnswer};
use otafleet_core::reports::{Report, ReportRequest};
use otafleet_core::updates::Update;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::conn::Transport;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{DeviceToken, Json};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkin))
        .routes(routes!(progress))
        .routes(routes!(report))
        .routes(routes!(logs))
        .merge(commands::router())
        .routes(routes!(read_config, config_applied))
}

/// Check in: report what the device runs; get a token on first contact and an update offer when
/// one is deployed for it.
#[utoipa::path(post, operation_id = "device_checkin", path = "/api/v1/device/checkin", tag = "device", request_body = CheckinRequest,
    security((), ("device" = [])),
    responses((status = 200, body = CheckinResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn checkin(
    State(s): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    transport: Option<Extension<Transport>>,
    DeviceToken(token): DeviceToken,
    Json(req): Json<CheckinRequest>,
) -> ApiResult<AxumJson<CheckinResponse>> {
    let remote = Some(remote.ip().to_canonical().to_string());
    // Recorded on the device (`tls`): the admin sees which devices still talk in the clear.
    let tls = transport.is_some_and(|Extension(t)| t.is_tls());
    Ok(AxumJson(
        s.fleet.checkin(req, token.as_deref(), remote, tls).await?,
    ))
}

/// Report progress of an offered update. Who: an enrolled device, with its own token, about an
/// update offered to it (another device's update is 404). What it changes: that update's state,
/// progress and error, and the device's `last_seen` — forward only: a report that would move the
/// update back (a late `flashing` after `rebooting`) is 409 `update_moved_on`, one for a finished
/// update 409 `update_finished` (a repeat of its final state is 200); both are logged and change
/// nothing.
#[utoipa::path(post, operation_id = "device_progress", path = "/api/v1/device/progress", tag = "device", request_body = ProgressRequest,
    security(("device" = [])),
    responses((status = 200, body = Update), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn progress(
    State(s): State<AppState>,
    DeviceToken(token): DeviceToken,
    Json(req): Json<ProgressRequest>,
) -> ApiResult<AxumJson<Update>> {
    Ok(AxumJson(s.fleet.progress(token.as_deref(), req).await?))
}

/// Send a report: `{mac, type: info|warn|error|success, subject, body, device_time?}`. Who: an
/// enrolled device, with its own token, about itself — no token or an unknown one is 401 (as for
/// progress), another device's MAC or one not enrolled is 404. What it changes: adds one report
/// (subject ≤ 200 characters, body ≤ 8 KiB, else 422 saying what to shorten) and deletes the
/// device's reports beyond its newest 1,000; nothing else. 200 means it is on disk (a full disk
/// is 507). Published as the `report` event.
#[utoipa::path(post, operation_id = "device_report", path = "/api/v1/device/report", tag = "device", request_body = ReportRequest,
    security(("device" = [])),
    responses((status = 200, body = Report), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn report(
    State(s): State<AppState>,
    DeviceToken(token): DeviceToken,
    Json(req): Json<ReportRequest>,
) -> ApiResult<AxumJson<Report>> {
    let mac = req.mac.clone();
    Ok(AxumJson(
        s.fleet.report_add(&mac, token.as_deref(), &req).await?,
    ))
}

/// Send log lines: `{lines: [{level, scope?, text, device_time?}]}`, 1 to 100 lines of at most
/// 1 KiB each. Who: an enrolled device, with its own token — the token names the device, so a
/// device sends only its own lines; no token or an unknown one is 401. What it changes: adds the
/// lines to that device's in-memory buffer (its newest 1,000 are kept; nothing is written to
/// disk) and hands them to whoever watches. A bad batch is 422 saying which line and what to
/// change, and nothing is kept. The answer's `logs` is `false` when nobody watches any more: the
/// device stops sending until a check-in answer says `logs: true` again.
#[utoipa::path(post, operation_id = "device_logs_add", path = "/api/v1/device/logs", tag = "device", request_body = LogBatch,
    security(("device" = [])),
    responses((status = 200, body = LogBatchAnswer), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn logs(
    State(s): State<AppState>,
    DeviceToken(token): DeviceToken,
    Json(batch): Json<LogBatch>,
) -> ApiResult<AxumJson<LogBatchAnswer>> {
    Ok(AxumJson(s.fleet.logs_add(token.as_deref(), batch).await?))
}

/// Read the device's own config: `{version, values}`, the effective values typed (string,
/// integer, bool; secrets as strings — the only route that answers a secret). Who: an enrolled
/// device, with its own token; the token picks the device (no token or an unknown one is 401).
/// What it changes: records `version` as given to the device (so it may confirm it). 404 when
/// its project defines no variables (its check-in's `config_version` is null).
#[utoipa::path(get, operation_id = "device_config_read", path = "/api/v1/device/config", tag = "device",
    security(("device" = [])),
    responses((status = 200, body = DeviceConfigAnswer), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 507, body = ErrorBody)))]
async fn read_config(
    State(s): State<AppState>,
    DeviceToken(token): DeviceToken,
) -> ApiResult<AxumJson<DeviceConfigAnswer>> {
    Ok(AxumJson(
        s.fleet.device_config_read(token.as_deref()).await?,
    ))
}

/// Confirm the device applied config `{version}`. Who: an enrolled device, with its own token,
/// about itself (401 without or with an unknown token). What it changes: the version its config
/// is applied at (no longer `pending` once that is the current one); a version it was never
/// given is 409 `config_version_unknown`, nothing changed. Answers the config as the admin sees
/// it (secrets masked) and publishes `device_config`.
#[utoipa::path(post, operation_id = "device_config_applied", path = "/api/v1/device/config", tag = "device",
    request_body = ConfigApplied,
    security(("device" = [])),
    responses((status = 200, body = DeviceConfig), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn config_applied(
    State(s): State<AppState>,
    DeviceToken(token): DeviceToken,
    Json(req): Json<ConfigApplied>,
) -> ApiResult<AxumJson<DeviceConfig>> {
    Ok(AxumJson(
        s.fleet.device_config_applied(token.as_deref(), req).await?,
    ))
}
