//! The legacy server's admin API under `/admin/api/` (docs/protocols.md §4; in full,
//! docs/seed1-compat.md §5), so scripts written for it keep working: `X-Admin-API-Key` (= our
//! admin token), devices keyed by MAC with `target_version` / `firmware_url` / `checksum` mapped
//! onto deployments (see `otafleet_core::legacy`), and the firmware library by file name
//! ([`super::legacy_firmware`]).
//!
//! Like [`super::legacy`], it answers in the legacy body shape (`{"detail": …}`) on purpose.
//! Unlike the original: no mass assignment (only the documented fields are read), no
//! auto-downgrade, and an assignment must name an image that is in the library.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use otafleet_core::devices::Device;
use otafleet_core::firmware::Firmware;
use otafleet_core::legacy::Assignment;
use otafleet_core::CoreError;
use serde_json::{json, Map, Value};

use crate::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/api/devices", get(list).post(create))
        .route(
            "/admin/api/devices/{mac}",
            get(get_one).put(update).delete(remove),
        )
        .merge(super::legacy_firmware::router())
        // Inside the key check: every change an admin key makes is audited (crate::audit).
        .route_layer(middleware::from_fn_with_state(
            crate::audit::AuditState {
                app: state.clone(),
                actions: std::sync::Arc::new(crate::audit::Actions::legacy()),
                legacy: true,
            },
            crate::audit::audit,
        ))
        .route_layer(middleware::from_fn_with_state(state, require_key))
}

/// `{"detail": message}` with a status, logged.
pub fn detail(status: StatusCode, message: &str) -> Response {
    tracing::info!(status = status.as_u16(), %message, "legacy admin request refused");
    (status, Json(json!({ "detail": message }))).into_response()
}

/// A core refusal in the legacy shape; machine failures stay generic.
pub fn core_detail(e: CoreError) -> Response {
    let status = match &e {
        CoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        CoreError::Conflict { .. } | CoreError::NeedsConsent { .. } => StatusCode::CONFLICT,
        CoreError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
        e if e.is_internal() => {
            tracing::error!(error = %e, "legacy admin request failed");
            return detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    detail(status, &e.to_string())
}

async fn require_key(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get("x-admin-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match key {
        None => {
            let mut r = detail(StatusCode::UNAUTHORIZED, "API key is required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "APIKey".parse().expect("valid"));
            r
        }
        Some(k) if s.is_admin_token(k.as_bytes()) => {
            req.extensions_mut()
                .insert(otafleet_core::access::Principal::owner(
                    crate::audit::LEGACY_KEY,
                ));
            next.run(req).await
        }
        Some(_) => {
            tracing::warn!(path = %req.uri().path(), "legacy admin request with a wrong key");
            detail(StatusCode::FORBIDDEN, "Invalid API key")
        }
    }
}

/// The legacy record of one device.
async fn record(s: &AppState, base: &str, d: &Device) -> Result<Value, CoreError> {
    let target: Option<Firmware> = s.fleet.legacy_target(d).await?;
    Ok(json!({
        "device_id": d.name.clone().unwrap_or_else(|| d.mac.clone()),
        "hardware_version": "1.0",
        "target_version": target.as_ref().and_then(|f| f.version.clone()),
        "firmware_url": target.as_ref().map(|f| format!("{base}/firmware/{}", f.filename)),
        "checksum": target.as_ref().map(|f| f.md5.clone()),
        "last_check": d.last_seen,
        "current_version": d.version,
        "ip_address": d.ip,
        "status": d.update.as_ref().map_or("unknown", |u| u.state.as_str()),
        "weak_auth": d.weak_auth,
    }))
}

fn base(headers: &HeaderMap) -> String {
    super::base_url(headers, false).unwrap_or_default()
}

/// The normalised MAC, or the legacy refusal (boxed: a response is large).
fn valid_mac(mac: &str) -> Result<String, Box<Response>> {
    otafleet_core::validate::mac(mac).map_err(|_| {
        Box::new(detail(
            StatusCode::BAD_REQUEST,
            "Invalid MAC address format",
        ))
    })
}

async fn list(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let devices = match s.fleet.devices().await {
        Ok(d) => d,
        Err(e) => return core_detail(e),
    };
    let mut out = Map::new();
    for d in &devices {
        match record(&s, &base(&headers), d).await {
            Ok(r) => {
                out.insert(d.mac.clone(), r);
            }
            Err(e) => return core_detail(e),
        }
    }
    Json(Value::Object(out)).into_response()
}

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn version_ok(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let missing: Vec<Value> = [
        "mac_address",
        "device_id",
        "target_version",
        "firmware_url",
        "checksum",
    ]
    .into_iter()
    .filter(|k| text(&body, k).is_none())
    .map(|k| json!({"loc": ["body", k], "msg": "field required", "type": "value_error.missing"}))
    .collect();
    if !missing.is_empty() {
        tracing::info!("legacy device create without required fields");
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "detail": missing })),
        )
            .into_response();
    }
    let mac = match valid_mac(&text(&body, "mac_address").unwrap_or_default()) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let target_version = text(&body, "target_version").unwrap_or_default();
    if !version_ok(&target_version) {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid target version format",
        );
    }
    if s.fleet.device(&mac).await.is_ok() {
        return detail(StatusCode::CONFLICT, "Device already exists");
    }
    let a = Assignment {
        name: text(&body, "device_id"),
        target_version: Some(target_version),
        firmware_url: text(&body, "firmware_url"),
        checksum: text(&body, "checksum"),
    };
    match s.fleet.legacy_assign(&mac, a, true).await {
        Ok((d, _)) => match record(&s, &base(&headers), &d).await {
            Ok(r) => {
                Json(json!({"success": true, "mac_address": mac, "device": r})).into_response()
            }
            Err(e) => core_detail(e),
        },
        Err(e) => core_detail(e),
    }
}

async fn get_one(
    State(s): State<AppState>,
    axum::extract::Path(mac): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let mac = match valid_mac(&mac) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    match s.fleet.device(&mac).await {
        Ok(d) => match record(&s, &base(&headers), &d).await {
            Ok(r) => Json(r).into_response(),
            Err(e) => core_detail(e),
        },
        Err(CoreError::NotFound { .. }) => detail(StatusCode::NOT_FOUND, "Device not found"),
        Err(e) => core_detail(e),
    }
}

async fn update(
    State(s): State<AppState>,
    axum::extract::Path(mac): axum::extract::Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mac = match valid_mac(&mac) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    if !body.is_object() {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a JSON object",
        );
    }
    if s.fleet.device(&mac).await.is_err() {
        return detail(StatusCode::NOT_FOUND, "Device not found");
    }
    let target_version = text(&body, "target_version");
    if target_version.as_deref().is_some_and(|v| !version_ok(v)) {
        return detail(StatusCode::BAD_REQUEST, "Invalid target version format");
    }
    let a = Assignment {
        name: text(&body, "device_id"),
        target_version,
        firmware_url: text(&body, "firmware_url"),
        checksum: text(&body, "checksum"),
    };
    match s.fleet.legacy_assign(&mac, a, false).await {
        Ok((d, _)) => match record(&s, &base(&headers), &d).await {
            Ok(r) => Json(json!({"success": true, "device": r})).into_response(),
            Err(e) => core_detail(e),
        },
        Err(e) => core_detail(e),
    }
}

async fn remove(
    State(s): State<AppState>,
    axum::extract::Path(mac): axum::extract::Path<String>,
) -> Response {
    let mac = match valid_mac(&mac) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    match s.fleet.device_delete(&mac).await {
        Ok(()) => Json(json!({"success": true})).into_response(),
        Err(CoreError::NotFound { .. }) => detail(
            StatusCode::NOT_FOUND,
            "Device not found or could not be deleted",
        ),
        Err(e) => core_detail(e),
    }
}
