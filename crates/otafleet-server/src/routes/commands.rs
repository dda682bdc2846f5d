//! Commands, the admin's side (issue 15; `otafleet_core::commands`): queue a command for a
//! device (`restart`, `config`, `log`, `custom`, `update_abort`), list a device's commands,
//! cancel one, and queue one for several devices at once. Reading needs a viewer, queueing and cancelling an operator; every call here that
//! changes something is audited. The device's side — fetch and answer with its token — is
//! `routes/device/commands.rs`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json as AxumJson};
use otafleet_core::commands::{BulkResult, Command, CommandKind, CommandList, NewCommand};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::AppState;
use otafleet_core::access::Principal;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue_command, list_commands))
        .routes(routes!(cancel_command))
        .routes(routes!(queue_commands_bulk))
}

/// Queue a command for a device: `{kind, key?, payload?, expires_in_s?}`. Who: the admin. What
/// it changes: adds one `queued` command (the device fetches it with its token, or is woken if
/// it waits), so its next check-in says `commands_pending`; it expires unanswered after
/// `expires_in_s` (10–86,400, default 600). 201 means it is on disk. 422 for a bad kind, key,
/// payload or expiry; 404 for an unknown device; 409 `commands_unsupported` for a device that
/// has no command channel (stock updaters, mDNS-only, not enrolled — the message says which),
/// 409 `too_many_commands` when 100 are already waiting. Published as the `command` event.
#[utoipa::path(post, operation_id = "queue_command", path = "/api/v1/devices/{mac}/commands", tag = "commands",
    request_body = NewCommand,
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 201, body = Command), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn queue_command(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(mac): Path<String>,
    Json(req): Json<NewCommand>,
) -> ApiResult<(StatusCode, AxumJson<Command>)> {
    let c = s.fleet.command_queue(&mac, &req, &who.actor).await?;
    Ok((StatusCode::CREATED, AxumJson(c)))
}

/// How many commands to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandsQuery {
    /// At most this many, newest first: 100 when absent, at most 500.
    pub limit: Option<i64>,
}

/// A device's commands, newest first (an unfinished one past its expiry is listed `expired`),
/// and `unsupported`: why the device cannot take commands, or null. Who: the admin. Changes
/// nothing. 404 for an unknown device.
#[utoipa::path(get, operation_id = "list_commands", path = "/api/v1/devices/{mac}/commands", tag = "commands",
    params(("mac" = String, Path, description = "MAC address"), CommandsQuery),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = CommandList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_commands(
    State(s): State<AppState>,
    Path(mac): Path<String>,
    Query(q): Query<CommandsQuery>,
) -> ApiResult<AxumJson<CommandList>> {
    Ok(AxumJson(s.fleet.commands(&mac, q.limit).await?))
}

/// Cancel a queued or sent command. Who: the admin. What it changes: that command's state to
/// `cancelled`; a device that already fetched it may still act on it, and its answer is then
/// refused. 409 `command_finished` for a command already answered, cancelled or expired; 404
/// for another device's command or none. Published as the `command` event.
#[utoipa::path(post, operation_id = "cancel_command", path = "/api/v1/devices/{mac}/commands/{id}/cancel", tag = "commands",
    params(("mac" = String, Path, description = "MAC address"), ("id" = i64, Path, description = "command id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Command), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn cancel_command(
    State(s): State<AppState>,
    Path((mac, id)): Path<(String, i64)>,
) -> ApiResult<AxumJson<Command>> {
    Ok(AxumJson(s.fleet.command_cancel(&mac, id).await?))
}

/// The same command for several devices.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BulkCommand {
    /// 1 to 1,000 devices, each named once.
    pub macs: Vec<String>,
    pub kind: CommandKind,
    pub key: Option<String>,
    #[schema(value_type = Option<serde_json::Value>)]
    pub payload: Option<serde_json::Value>,
    pub expires_in_s: Option<i64>,
}

/// Queue the same command for several devices: `{macs, kind, key?, payload?, expires_in_s?}`.
/// Who: the admin. The command is checked once (422 and nothing queued when it is bad, or when
/// a MAC is malformed or named twice); then each device gets its own `queued` command or its
/// own refusal in the list answered — `not_found`, `commands_unsupported` (with the reason),
/// `too_many_commands` — so stock devices do not fail the call. Each queued command is on disk
/// and published as the `command` event.
#[utoipa::path(post, operation_id = "queue_commands_bulk", path = "/api/v1/commands", tag = "commands",
    request_body = BulkCommand,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Vec<BulkResult>), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn queue_commands_bulk(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(req): Json<BulkCommand>,
) -> ApiResult<AxumJson<Vec<BulkResult>>> {
    let new = NewCommand {
        kind: req.kind,
        key: req.key,
        payload: req.payload,
        expires_in_s: req.expires_in_s,
    };
    Ok(AxumJson(
        s.fleet
            .command_queue_bulk(&req.macs, &new, &who.actor)
            .await?,
    ))
}
