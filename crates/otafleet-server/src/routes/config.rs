//! `/api/v1/devices/{mac}/config`: a device's config as the admin manages it
//! (`otafleet_core::config`): the values of its project's variables, versioned, and whether the
//! device applied the current version. Secrets are never answered here (`{"set": true}`); the
//! device reads them itself (`GET /api/v1/device/config`, `routes/device.rs`).

use axum::extract::State;
use axum::Json as AxumJson;
use otafleet_core::config::{ConfigPatch, DeviceConfig};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_device_config, patch_device_config))
}

/// A device's config: its version, the version it applied and since when it is pending, the
/// effective values (secrets masked), and each variable's default and whether the device has its
/// own value. Who: a viewer or above; changes nothing.
#[utoipa::path(get, operation_id = "get_device_config", path = "/api/v1/devices/{mac}/config", tag = "devices",
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = DeviceConfig), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_device_config(
    State(s): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<AxumJson<DeviceConfig>> {
    Ok(AxumJson(s.fleet.device_config(&mac).await?))
}

/// Change a device's config: `{values: {key: value | null}}` (null = back to the project's
/// default). Who: an operator or above; changes only this device's values. Every key must be a variable of its
/// project (422 `unknown_config_key` naming the others) and every value of that variable's type
/// (422 `invalid_config_value`); then nothing is changed. A change makes a new version, which
/// the device's next check-in answer carries (`config_version`); it is `pending` until the
/// device confirms it.
#[utoipa::path(patch, operation_id = "patch_device_config", path = "/api/v1/devices/{mac}/config", tag = "devices",
    request_body = ConfigPatch,
    params(("mac" = String, Path, description = "MAC address")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = DeviceConfig), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn patch_device_config(
    State(s): State<AppState>,
    Path(mac): Path<String>,
    Json(p): Json<ConfigPatch>,
) -> ApiResult<AxumJson<DeviceConfig>> {
    Ok(AxumJson(s.fleet.device_config_patch(&mac, p).await?))
}
