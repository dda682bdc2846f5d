//! `/api/v1/devices`: the fleet, for the admin. Devices appear by themselves when they check in;
//! the admin can also add one ahead of time, name it, keep notes and tags on it, reset its
//! enrolment or remove it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as AxumJson;
use otafleet_core::deployments::{Deployment, DeviceTarget};
use otafleet_core::devices::{Device, DevicePatch, NewDevice};
use otafleet_core::discovered::ListedDevice;
use otafleet_core::updates::Update;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, patch, delete))
        .routes(routes!(history))
        .routes(routes!(target))
        .routes(routes!(retry))
        .routes(routes!(rollback))
}

/// Every device with its current update, then the services found by mDNS that did not tell
/// their MAC. Each item is a `Device` (`mac` a string) or a `DiscoveredHost` (`mac` null, `key` =
/// `<service>/<instance>`): test `mac === null` to tell them apart. Admin only; changes nothing.
#[utoipa::path(get, operation_id = "list_devices", path = "/api/v1/devices", tag = "devices",
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = Vec<ListedDevice>,
        description = "devices (`Device`), then MAC-less mDNS hosts (`DiscoveredHost`, `mac` null)")))]
async fn list(State(s): State<AppState>) -> ApiResult<AxumJson<Vec<ListedDevice>>> {
    Ok(AxumJson(s.fleet.devices_and_hosts().await?))
}

/// Add a device before it checks in.
#[utoipa::path(post, operation_id = "create_device", path = "/api/v1/devices", tag = "devices", request_body = NewDevice,
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 201, body = Device), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Json(new): Json<NewDevice>,
) -> ApiResult<(StatusCode, AxumJson<Device>)> {
    Ok((
        StatusCode::CREATED,
        AxumJson(s.fleet.device_create(new).await?),
    ))
}

/// One device.
#[utoipa::path(get, operation_id = "get_device", path = "/api/v1/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "MAC address, any common notation")),
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<AxumJson<Device>> {
    Ok(AxumJson(s.fleet.device(&mac).await?))
}

/// Change what the admin says about a device: its name (`null` or `""` clears the admin's name,
/// so the device's reported name, else its mDNS name, shows again), notes, tags, chip, project,
/// expected protocol, or reset its enrolment. Absent fields stay as they are. Admin only; no
/// check-in or mDNS announcement ever changes the name, notes or tags set here. 422 with the
/// field and what is accepted when a value is invalid; nothing is changed then.
#[utoipa::path(patch, operation_id = "patch_device", path = "/api/v1/devices/{mac}", tag = "devices", request_body = DevicePatch,
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn patch(
    State(s): State<AppState>,
    Path(mac): Path<String>,
    Json(p): Json<DevicePatch>,
) -> ApiResult<AxumJson<Device>> {
    Ok(AxumJson(s.fleet.device_patch(&mac, p).await?))
}

/// Forget a device (it enrols again at its next check-in).
#[utoipa::path(delete, operation_id = "delete_device", path = "/api/v1/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete(State(s): State<AppState>, Path(mac): Path<String>) -> ApiResult<StatusCode> {
    s.fleet.device_delete(&mac).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A device's update history, newest first.
#[utoipa::path(get, operation_id = "device_history", path = "/api/v1/devices/{mac}/updates", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = Vec<Update>), (status = 404, body = ErrorBody)))]
async fn history(
    State(s): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<AxumJson<Vec<Update>>> {
    Ok(AxumJson(s.fleet.device_history(&mac).await?))
}

/// Retry a device that reached the attempt limit in the deployment that targets it: a new
/// attempt (marked `retry`), from which the limit counts afresh. Admin only. 409 when that
/// deployment has nothing to retry for it (with what it gets instead).
#[utoipa::path(post, operation_id = "retry_device", path = "/api/v1/devices/{mac}/retry", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = Update), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry(State(s): State<AppState>, Path(mac): Path<String>) -> ApiResult<AxumJson<Update>> {
    Ok(AxumJson(s.fleet.device_retry(&mac).await?))
}

/// Roll a device back to the image it ran before its last completed update: a new deployment
/// to that device alone, as a rollback (201). Admin only. 409 when there is no completed update,
/// or the previous image is unknown or no longer in the library (the message says which).
#[utoipa::path(post, operation_id = "rollback_device", path = "/api/v1/devices/{mac}/rollback", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 201, body = Deployment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rollback(
    State(s): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<(StatusCode, AxumJson<Deployment>)> {
    Ok((
        StatusCode::CREATED,
        AxumJson(s.fleet.device_rollback(&mac).await?),
    ))
}

/// The deployment that targets the device now and what the device gets from it (the same rule
/// its check-ins follow), or `null` when no deployment covers it. Admin only; changes nothing.
#[utoipa::path(get, operation_id = "device_target", path = "/api/v1/devices/{mac}/target", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = Option<DeviceTarget>), (status = 404, body = ErrorBody)))]
async fn target(
    State(s): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<AxumJson<Option<DeviceTarget>>> {
    Ok(AxumJson(s.fleet.device_target(&mac).await?))
}
