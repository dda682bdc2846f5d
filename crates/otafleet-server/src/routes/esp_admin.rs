//! ESP Admin SDK devices (docs/esp-admin.md).
//!
//! The admin's route, `POST /api/v1/esp-admin/devices` ([`admin_router`]), creates one: the id and
//! API key to compile into its `credentials.h`; the key is in this one answer and never again
//! (only its hash is stored). It changes nothing but the new device row.
//!
//! The device's routes ([`device_router`]) are the paths the unchanged SDK calls, under
//! `/api/device/<id>/…`, each authenticated by the `Api-Key` header through
//! `Fleet::esp_admin_authenticate` (an unknown id and a wrong key get the same 401
//! `bad_api_key`; a wrong key for a known device is recorded in its refusals). They carry a
//! device key, so plain HTTP from another machine is refused (426) before the key is even read
//! ([`require_tls_for_keys`]); loopback may use plain HTTP. The firmware download is the one
//! exception to `Api-Key`: `esp_https_ota` sends none, so its path is an unguessable capability
//! bound to one open attempt.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{middleware, Extension, Json as AxumJson};
use otafleet_core::devices::{Device, NewEspAdminDevice};
use otafleet_core::{
    EspAdminCreated, EspAdminCustomReport, EspAdminReported, EspAdminUpdateReport, Fleet,
};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::conn::Transport;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::routes::field::counted::{counted, Counting};
use crate::AppState;

pub fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_esp_admin_device))
}

/// The SDK's own routes. Outside the admin guard; each handler authenticates the device itself.
pub fn device_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(settings))
        .routes(routes!(report_update))
        .routes(routes!(report_custom))
        .routes(routes!(ota_download))
        .route_layer(middleware::from_fn(require_tls_for_keys))
}

/// What the admin gets for a new ESP Admin device: its identity and, ready to paste into the
/// firmware, its `credentials.h`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EspAdminDeviceAdded {
    #[serde(flatten)]
    pub created: EspAdminCreated,
    /// A complete `include/credentials.h` for the SDK: this server's host, the device's id and
    /// key, and the server's CA as both `httpCert` and `mqttCert`. Null when HTTPS is off (the
    /// SDK speaks HTTPS only). Holds the key: shown once, like it.
    pub credentials_h: Option<String>,
}

/// Add a device that runs the ESP Admin SDK: `{name?, project?, notes?, tags?}`. Who: an admin or above;
/// creates one device with a fresh id and API key — the key is in this answer only, as is the
/// `credentials.h` that carries it — and changes nothing else. 422 for a bad field (nothing
/// stored).
#[utoipa::path(post, operation_id = "create_esp_admin_device", path = "/api/v1/esp-admin/devices",
    tag = "devices", request_body = NewEspAdminDevice,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 201, body = EspAdminDeviceAdded), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn create_esp_admin_device(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(new): Json<NewEspAdminDevice>,
) -> ApiResult<(StatusCode, AxumJson<EspAdminDeviceAdded>)> {
    let created = s.fleet.esp_admin_create(new).await?;
    let credentials_h = s.info.tls.as_ref().and_then(|tls| {
        let material = tls.material();
        let host = crate::routes::tls::device_host_for(&material, &headers);
        let ca = material.ca_pem()?;
        let mqtt = s.info.mqtt.as_ref();
        Some(otafleet_core::tls::snippets::esp_admin_credentials(
            ca,
            mqtt.and_then(|m| m.ca_pem(ca)),
            mqtt.map(|m| m.uri_tcp(&host)).as_deref(),
            &host,
            &created.id,
            &created.api_key,
        ))
    });
    Ok((
        StatusCode::CREATED,
        AxumJson(EspAdminDeviceAdded {
            created,
            credentials_h,
        }),
    ))
}

/// Refuse plain HTTP from another machine on the device routes (they carry a device key or a
/// download capability): 426 `tls_required`, before anything reads the key. Loopback may use
/// plain HTTP (tests, a proxy on this machine).
async fn require_tls_for_keys(req: axum::extract::Request, next: middleware::Next) -> Response {
    let plain = req
        .extensions()
        .get::<Transport>()
        .is_none_or(|t| !t.is_tls());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    if plain && !peer.is_some_and(|ip| ip.is_loopback()) {
        tracing::info!(peer = ?peer, path = %req.uri().path(), "ESP Admin request over plain HTTP refused");
        return ApiError::with_status(
            StatusCode::UPGRADE_REQUIRED,
            "tls_required",
            "ESP Admin devices must use HTTPS: their API key must not cross the network in the \
             clear (the SDK always does; check httpHost and httpCert in credentials.h)",
        )
        .into_response();
    }
    next.run(req).await
}

/// The device an ESP Admin request speaks for: its id in the path, its key in `Api-Key`.
async fn device(
    fleet: &Fleet,
    id: &str,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> ApiResult<Device> {
    let key = headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let from = peer.ip().to_canonical().to_string();
    Ok(fleet.esp_admin_authenticate(id, key, Some(&from)).await?)
}

/// `GET /api/device/<id>/settings`'s answer: where the device's MQTT broker is and how it logs in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EspAdminSettings {
    /// `mqtts://host:port` of the broker (otafleet's own, on the host the device reached
    /// otafleet by, or the user's); "" while there is none (`--mqtt off`).
    #[serde(rename = "uriTCP")]
    pub uri_tcp: String,
    /// Always "": otafleet's broker takes no MQTT over WebSockets (the SDK uses `uriTCP` when
    /// it is set).
    #[serde(rename = "uriWS")]
    pub uri_ws: String,
    /// The device's id: each device logs in as itself.
    pub username: String,
    /// The API key the request presented (never stored in plain; the broker checks the same
    /// hash).
    pub password: String,
}

/// ESP Admin SDK, at every boot: the device's MQTT settings. Who: an ESP Admin device with its
/// own `Api-Key` (401 `bad_api_key` otherwise, recorded on a known device), over HTTPS unless
/// from this machine (426). What it changes: its sign of life (`last_seen`, address, TLS) and,
/// when its last update was written and it was rebooting, that update is `done` and the device
/// runs its image.
#[utoipa::path(get, operation_id = "esp_admin_settings", path = "/api/device/{id}/settings",
    tag = "esp-admin",
    params(("id" = String, Path, description = "the device's ESP Admin id (24 hex digits)"),
        ("Api-Key" = String, Header, description = "the device's API key")),
    responses((status = 200, body = EspAdminSettings), (status = 401, body = ErrorBody),
        (status = 426, body = ErrorBody)))]
async fn settings(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    transport: Option<Extension<Transport>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<AxumJson<EspAdminSettings>> {
    let d = device(&s.fleet, &id, &headers, peer).await?;
    let tls = transport.is_some_and(|Extension(t)| t.is_tls());
    let from = peer.ip().to_canonical().to_string();
    s.fleet.esp_admin_seen(&d, Some(&from), tls).await?;
    let key = headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_string();
    // The broker is named by the host the device reached otafleet by (its httpHost).
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| crate::routes::tls::strip_port(h).to_string())
        .unwrap_or_else(|| peer.ip().to_canonical().to_string());
    let uri_tcp = s
        .info
        .mqtt
        .as_ref()
        .map(|m| m.uri_tcp(&host))
        .unwrap_or_default();
    Ok(AxumJson(EspAdminSettings {
        uri_tcp,
        uri_ws: String::new(),
        username: id,
        password: key,
    }))
}

/// ESP Admin SDK: an update starts or ends. Who: an ESP Admin device with its own `Api-Key`
/// (401), about its own attempts (another device's is 404), over HTTPS unless from this machine
/// (426). `{releaseId, status: "started"}` → 200 with the attempt's id as the bare body (the SDK
/// reads it raw as `deploymentId`); the attempt must be the one its verdict offers, else 409
/// `release_not_offered` and nothing changes. `{deploymentId, status: "succeded"}` → the
/// attempt is `rebooting` (done when the device next asks for its settings), `"failed"` →
/// `failed`; the answer is the attempt's id; 409 `update_finished` for an attempt that already
/// ended otherwise. Changes only that attempt (and its deployment's status).
#[utoipa::path(post, operation_id = "esp_admin_report_update", path = "/api/device/{id}/report/update",
    tag = "esp-admin", request_body = EspAdminUpdateReport,
    params(("id" = String, Path, description = "the device's ESP Admin id"),
        ("Api-Key" = String, Header, description = "the device's API key")),
    responses((status = 200, content_type = "text/plain", body = String, description = "the attempt's id"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 426, body = ErrorBody)))]
async fn report_update(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(report): Json<EspAdminUpdateReport>,
) -> ApiResult<Response> {
    let d = device(&s.fleet, &id, &headers, peer).await?;
    let u = match s.fleet.esp_admin_update_report(&d, &report).await? {
        EspAdminReported::Started(u) | EspAdminReported::Finished(u) => u,
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        u.id.to_string(),
    )
        .into_response())
}

/// `POST /api/device/<id>/report/custom`'s answer, as the SDK expects it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EspAdminOk {
    /// Always `ok`.
    pub status: &'static str,
}

/// ESP Admin SDK: a report `{type: info|warn|error|success, subject, body}`. Who: an ESP Admin
/// device with its own `Api-Key` (401), over HTTPS unless from this machine (426). What it
/// changes: adds one report of that device (bounded as native reports are, 422 otherwise),
/// which queues its notifications and publishes the `report` event; nothing else.
#[utoipa::path(post, operation_id = "esp_admin_report_custom", path = "/api/device/{id}/report/custom",
    tag = "esp-admin", request_body = EspAdminCustomReport,
    params(("id" = String, Path, description = "the device's ESP Admin id"),
        ("Api-Key" = String, Header, description = "the device's API key")),
    responses((status = 200, body = EspAdminOk), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 426, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn report_custom(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(report): Json<EspAdminCustomReport>,
) -> ApiResult<AxumJson<EspAdminOk>> {
    let d = device(&s.fleet, &id, &headers, peer).await?;
    s.fleet.esp_admin_custom_report(&d, &report).await?;
    Ok(AxumJson(EspAdminOk { status: "ok" }))
}

/// ESP Admin SDK (`esp_https_ota`): the image of one open attempt, at the `downloadPath` of its
/// update trigger. Who: anyone holding that path — it is the credential (the SDK sends no key):
/// 128 secret bits bound to this device and attempt, dead once the attempt ends; every other
/// path is the same 404. Over HTTPS unless from this machine (426). Changes nothing but the
/// attempt's byte count. Ranges, HEAD and `ETag` as every download.
#[utoipa::path(get, operation_id = "esp_admin_download", path = "/api/device/{id}/ota/{update_id}/{file}",
    tag = "esp-admin",
    params(("id" = String, Path, description = "the device's ESP Admin id"),
        ("update_id" = i64, Path, description = "the attempt"),
        ("file" = String, Path, description = "<secret>.bin")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "the requested range"),
        (status = 404, body = ErrorBody), (status = 426, body = ErrorBody)))]
async fn ota_download(
    State(s): State<AppState>,
    Path((id, update_id, file)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let not_found = || -> ApiError {
        otafleet_core::CoreError::not_found(
            "download: this path names no open update of an ESP Admin device",
        )
        .into()
    };
    let secret = file.strip_suffix(".bin").ok_or_else(not_found)?;
    let update_id: i64 = update_id.parse().map_err(|_| not_found())?;
    let u = s.fleet.esp_admin_download(&id, update_id, secret).await?;
    let found = s.firmwares.get(&s.fleet, &u.sha256).await?;
    let fw = &found.0;
    let resp = crate::routes::download::blob_response(&s.fleet, fw, &method, &headers).await?;
    Ok(counted(&s.fleet, &method, resp, &u, fw, Counting::Native))
}
