//! `/api/v1/devices`: the fleet, for the admin. Devices appear by themselves when they check in;
//! the admin can also add one ahead of time, name it, keep notes and tags on it, reset its
//! enrolment or remove it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json as AxumJson};
use otafleet_core::access::{Principal, Role};
use otafleet_core::deployments::{Deployment, DeviceTarget};
use otafleet_core::devices::{self, Device, DevicePatch, NewDevice};
use otafleet_core::discovered::ListedDevice;
use otafleet_core::updates::Update;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
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

/// Which page of the device list (`GET /api/v1/devices`).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DevicesQuery {
    /// At most this many devices: 1000 when absent, from 1 to 5000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    pub limit: Option<String>,
    /// The cursor: list the devices whose MAC sorts after this one — the MAC of the last device
    /// of the previous page, as the `Link` header's `next` URL gives it. Absent: from the start.
    pub after: Option<String>,
}

/// The `Link` header of a page that has a next one.
pub const NEXT_LINK: &str = "link";

/// Every device with its current update, in MAC order, a page at a time, then the services found
/// by mDNS that did not tell their MAC (with the last page). Each item is a `Device` (`mac` a
/// string) or a `DiscoveredHost` (`mac` null, `key` = `<service>/<instance>`): test `mac === null`
/// to tell them apart. A page holds at most `limit` devices (1000 by default, 5000 at most); when
/// more follow, the answer has a header `Link: </api/v1/devices?limit=N&after=MAC>; rel="next"`
/// — fetch that URL for the next page; no `Link` header means this was the last page. A device
/// added or removed while pages are fetched moves no other device: every device that exists
/// throughout is listed exactly once. A `limit` that is not a number from 1 to 5000, or an
/// `after` that is not a MAC, is 400 with what is accepted. Who: a viewer or above. What it
/// changes: nothing.
#[utoipa::path(get, operation_id = "list_devices", path = "/api/v1/devices", tag = "devices",
    params(DevicesQuery),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<ListedDevice>,
        description = "devices (`Device`), then, on the last page, MAC-less mDNS hosts (`DiscoveredHost`, `mac` null)",
        headers(("link" = String, description = "`</api/v1/devices?limit=N&after=MAC>; rel=\"next\"` when more devices follow; absent on the last page"))),
        (status = 400, body = ErrorBody, description = "`limit` or `after` not accepted (`invalid_limit`, `invalid_cursor`)"),
        (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Query(q): Query<DevicesQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let limit = match q.limit.as_deref().map(str::trim) {
        None => devices::PAGE_DEFAULT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=devices::PAGE_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!(
                        "limit must be a whole number from 1 to {} (devices per page; {} when absent), not '{}'",
                        devices::PAGE_MAX,
                        devices::PAGE_DEFAULT,
                        otafleet_core::validate::printable(l, 30)
                    ),
                )
            })?,
    };
    let after = q
        .after
        .as_deref()
        .map(|a| {
            otafleet_core::validate::mac(a).map_err(|_| {
                ApiError::bad_request(
                    "invalid_cursor",
                    format!(
                        "after must be a MAC address such as 24:0A:C4:00:00:01 — the last device of the previous page, as in the Link header's next URL — not '{}'; leave it out for the first page",
                        otafleet_core::validate::printable(a, 40)
                    ),
                )
            })
        })
        .transpose()?;
    let (listed, next) = s
        .fleet
        .devices_and_hosts_page(after.as_deref(), limit)
        .await?;
    let mut resp = AxumJson(listed).into_response();
    if let Some(next) = next {
        let link = format!("</api/v1/devices?limit={limit}&after={next}>; rel=\"next\"");
        if let Ok(v) = axum::http::HeaderValue::from_str(&link) {
            resp.headers_mut().insert(NEXT_LINK, v);
        }
    }
    Ok(resp)
}

/// Add a device before it checks in.
#[utoipa::path(post, operation_id = "create_device", path = "/api/v1/devices", tag = "devices", request_body = NewDevice,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
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
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<AxumJson<Device>> {
    Ok(AxumJson(s.fleet.device(&mac).await?))
}

/// Change what the admin says about a device: its name (`null` or `""` clears the admin's name,
/// so the device's reported name, else its mDNS name, shows again), notes, tags, chip, project,
/// expected protocol, or reset its enrolment. Absent fields stay as they are. An operator's,
/// except `reset_token` and `expect_protocol`, which are an admin's (403 `role_insufficient`,
/// nothing changed); no check-in or mDNS announcement ever changes the name, notes or tags set here. 422 with the
/// field and what is accepted when a value is invalid; nothing is changed then.
#[utoipa::path(patch, operation_id = "patch_device", path = "/api/v1/devices/{mac}", tag = "devices", request_body = DevicePatch,
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn patch(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(mac): Path<String>,
    Json(p): Json<DevicePatch>,
) -> ApiResult<AxumJson<Device>> {
    // Name, notes, tags, chip and project are an operator's; who the device is trusted as is an
    // admin's (docs/access.md).
    if p.reset_token || p.expect_protocol.is_some() {
        who.role.require(
            Role::Admin,
            "resetting a device's token or changing its expected protocol",
        )?;
    }
    Ok(AxumJson(s.fleet.device_patch(&mac, p).await?))
}

/// Forget a device (it enrols again at its next check-in).
#[utoipa::path(delete, operation_id = "delete_device", path = "/api/v1/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete(State(s): State<AppState>, Path(mac): Path<String>) -> ApiResult<StatusCode> {
    s.fleet.device_delete(&mac).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A device's update history, newest first.
#[utoipa::path(get, operation_id = "device_history", path = "/api/v1/devices/{mac}/updates", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<Update>), (status = 404, body = ErrorBody)))]
async fn history(
    State(s): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<AxumJson<Vec<Update>>> {
    Ok(AxumJson(s.fleet.device_history(&mac).await?))
}

/// Retry a device that reached the attempt limit in the deployment that targets it: a new
/// attempt (marked `retry`), from which the limit counts afresh. Who: an operator or above. 409 when that
/// deployment has nothing to retry for it (with what it gets instead).
#[utoipa::path(post, operation_id = "retry_device", path = "/api/v1/devices/{mac}/retry", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Update), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry(State(s): State<AppState>, Path(mac): Path<String>) -> ApiResult<AxumJson<Update>> {
    Ok(AxumJson(s.fleet.device_retry(&mac).await?))
}

/// Roll a device back to the image it ran before its last completed update: a new deployment
/// to that device alone, as a rollback (201). Who: an operator or above. 409 when there is no completed update,
/// or the previous image is unknown or no longer in the library (the message says which).
#[utoipa::path(post, operation_id = "rollback_device", path = "/api/v1/devices/{mac}/rollback", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
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
/// its check-ins follow), or `null` when no deployment covers it. Who: a viewer or above; changes nothing.
#[utoipa::path(get, operation_id = "device_target", path = "/api/v1/devices/{mac}/target", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Option<DeviceTarget>), (status = 404, body = ErrorBody)))]
async fn target(
    State(s): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<AxumJson<Option<DeviceTarget>>> {
    Ok(AxumJson(s.fleet.device_target(&mac).await?))
}
