//! Admin authentication: `Authorization: Bearer <admin token>` or `X-Admin-API-Key: <token>`
//! (the header scripts for the older "ESP32 OTA Update Server" send). The event stream also takes
//! `?token=` because a browser's `EventSource` cannot set headers. Compared in constant time.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::extract::bearer;
use crate::AppState;

pub async fn require_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = req.headers();
    let query_token = (req.uri().path() == "/api/v1/events")
        .then(|| query_param(req.uri().query().unwrap_or(""), "token"))
        .flatten();
    let presented = bearer(headers)
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("x-admin-api-key")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned())
        })
        .or(query_token);
    match presented {
        None => Err(ApiError::with_status(
            StatusCode::UNAUTHORIZED,
            "admin_token_required",
            "this is an admin endpoint: send 'Authorization: Bearer <admin token>' (the token is in the data directory's admin-token file, or what --admin-token set)",
        )),
        Some(t) if bool::from(t.as_bytes().ct_eq(state.admin_token.as_bytes())) => {
            Ok(next.run(req).await)
        }
        Some(_) => {
            tracing::warn!(path = %req.uri().path(), "admin request with a wrong token refused");
            Err(ApiError::with_status(
                StatusCode::UNAUTHORIZED,
                "admin_token_invalid",
                "the admin token is wrong; use the one in the data directory's admin-token file, or what --admin-token set",
            ))
        }
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}
