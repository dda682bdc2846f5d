//! ESP Admin SDK devices (docs/esp-admin.md). `POST /api/v1/esp-admin/devices` (admin only)
//! creates one: the id and API key to compile into its `credentials.h`; the key is in this one
//! answer and never again (only its hash is stored). It changes nothing but the new device row.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as AxumJson;
use otafleet_core::devices::NewEspAdminDevice;
use otafleet_core::EspAdminCreated;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Json;
use crate::AppState;

pub fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_esp_admin_device))
}

/// Add a device that runs the ESP Admin SDK: `{name?, project?, notes?, tags?}`. Admin only;
/// creates one device with a fresh id and API key — the key is in this answer only — and
/// changes nothing else. 422 for a bad field (nothing stored).
#[utoipa::path(post, operation_id = "create_esp_admin_device", path = "/api/v1/esp-admin/devices",
    tag = "devices", request_body = NewEspAdminDevice,
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 201, body = EspAdminCreated), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn create_esp_admin_device(
    State(s): State<AppState>,
    Json(new): Json<NewEspAdminDevice>,
) -> ApiResult<(StatusCode, AxumJson<EspAdminCreated>)> {
    Ok((
        StatusCode::CREATED,
        AxumJson(s.fleet.esp_admin_create(new).await?),
    ))
}
