//! Commands, the device's side (docs/protocols.md §1.5): `GET /api/v1/device/commands?wait=N`
//! fetches the device's unfinished commands (long poll), `POST /api/v1/device/commands/{id}`
//! answers one. Both only with the device's own token. The admin's side is `routes/commands.rs`.

use std::time::Duration;

use axum::extract::State;
use axum::Json as AxumJson;
use otafleet_core::commands::{AckRequest, Command, DeviceCommands};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{DeviceToken, Json, Path, Query};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(device_commands))
        .routes(routes!(device_command_ack))
}

/// How long to wait for a command.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to wait for a command when none is waiting: 0 (answer at once, the default) to 25.
    pub wait: Option<u64>,
}

/// Fetch this device's unfinished commands, oldest first. Who: an enrolled device, with its own
/// token (none or an unknown one is 401); it only ever gets its own commands. Answered at once
/// when there are any, else after up to `wait` seconds (0–25) as soon as one is queued, or with
/// an empty list (also at once when the server shuts down, so a waiting device never holds up a
/// restart). What it changes: delivered `queued` commands become `sent`; `sent` ones not yet
/// answered are delivered again.
#[utoipa::path(get, operation_id = "device_commands", path = "/api/v1/device/commands", tag = "device",
    params(WaitQuery),
    security(("device" = [])),
    responses((status = 200, body = DeviceCommands), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn device_commands(
    State(s): State<AppState>,
    DeviceToken(token): DeviceToken,
    Query(q): Query<WaitQuery>,
) -> ApiResult<AxumJson<DeviceCommands>> {
    let wait = q.wait.unwrap_or(0);
    if wait > otafleet_core::commands::MAX_WAIT_S {
        return Err(otafleet_core::CoreError::invalid(
            "invalid_wait",
            format!(
                "wait is 0 to {} seconds, not {wait}",
                otafleet_core::commands::MAX_WAIT_S
            ),
        )
        .into());
    }
    let fetched = s
        .fleet
        .device_commands(token.as_deref(), Duration::from_secs(wait));
    let commands = tokio::select! {
        r = fetched => r?,
        // The wait ends with the server: graceful shutdown waits for requests in progress.
        () = s.shutdown.cancelled() => Vec::new(),
    };
    Ok(AxumJson(DeviceCommands { commands }))
}

/// Answer a command: `{state: done|failed|rejected, result?}`. Who: an enrolled device, with its
/// own token (401 otherwise), about its own command (another device's is 404). What it changes:
/// that command's state, `result` (at most 4 KiB, else 422) and finish time. A command already
/// finished (answered, cancelled by the admin, expired) with another state is 409
/// `command_finished` and nothing changes; the same state again is 200. A `restart` is answered
/// `done` before the device restarts. Published as the `command` event.
#[utoipa::path(post, operation_id = "device_command_ack", path = "/api/v1/device/commands/{id}", tag = "device",
    request_body = AckRequest,
    params(("id" = i64, Path, description = "command id")),
    security(("device" = [])),
    responses((status = 200, body = Command), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn device_command_ack(
    State(s): State<AppState>,
    DeviceToken(token): DeviceToken,
    Path(id): Path<i64>,
    Json(req): Json<AckRequest>,
) -> ApiResult<AxumJson<Command>> {
    Ok(AxumJson(
        s.fleet
            .device_command_ack(token.as_deref(), id, &req)
            .await?,
    ))
}
