//! The audit layer: every admin request that may change something (any method but GET, HEAD and
//! OPTIONS) leaves one row in the audit log (`otafleet_core::audit`).
//!
//! It sits on the admin routers *inside* the admin check (`routes/mod.rs`:
//! `require_admin` → `audit` → handler; the legacy admin API: `require_key` → `audit` → handler).
//! So a request without the admin token is refused before it is audited: it changed nothing, and
//! anyone on the network could otherwise fill the log (and the disk) with made-up requests. Such
//! refusals are logged by tracing (`auth.rs`), not audited.
//!
//! The guarantee, for an authenticated request:
//! 1. **Before** the handler runs, its row is written (`pending`). If that write fails — a full
//!    disk answers 507 `disk_full` through the usual error mapping — the handler is not run:
//!    nothing changes unaudited.
//! 2. **After** the handler, the row gets the HTTP status and outcome (`ok`, `refused`, `failed`),
//!    once. If that write fails a warning is logged and the client still gets the handler's
//!    answer; the row stays `pending` (= result unknown) until the core writes the result, which
//!    it keeps in memory and retries once the disk takes it (`Fleet::audit_finish`).
//!
//! `action` is the route's OpenAPI operation id, looked up by matched route and method in a table
//! built from the OpenAPI document when the router is built ([`Actions::from_openapi`]), so no
//! documented route can be left out; the legacy admin API, which is not in the document, has its
//! own table ([`Actions::legacy`]). `target` is the path parameters; `detail` the names of the
//! JSON body's fields and query parameters, with the values of a few harmless fields only
//! ([`SAFE_VALUES`]) — never a token, a secret, notes or any other value.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use otafleet_core::access::Principal;
use otafleet_core::audit::{AuditDetail, NewAuditEntry};
use otafleet_core::CoreError;
use serde_json::Value;

use crate::error::ApiError;
use crate::AppState;

/// The admin token, sent as `Authorization: Bearer`: the actor recorded for it. (Who was let in
/// travels on the request as an [`otafleet_core::access::Principal`], put there by the admin
/// check; a named API token is recorded as `token:<name>`.)
pub const ADMIN: &str = "admin";
/// The admin token, sent as `X-Admin-API-Key` (the legacy server's header).
pub const LEGACY_KEY: &str = "legacy-admin-key";

/// Fields whose new value is stored in `detail.values` (when a short string, a number or a
/// boolean): names and identities the admin sets, none of them secret. Everything else is stored
/// by name only.
pub const SAFE_VALUES: &[&str] = &[
    "project",
    "version",
    "filename",
    "name",
    "admin_name",
    "chip",
    "expect_protocol",
    "open_enrolment",
    "checkin_interval_s",
    "offline_after_s",
    "auto_deploy",
    "firmware_id",
    "dry_run",
    "mac",
    "target_version",
    "path",
    "kind",
    "expires_in_s",
    "role",
    "scope",
];
/// A JSON body larger than this (or of unknown length) is recorded without field names rather
/// than read into memory.
const DETAIL_BODY_LIMIT: usize = 64 * 1024;
const SAFE_VALUE_CHARS: usize = 100;

/// Operation ids by method and route.
#[derive(Debug, Default)]
pub struct Actions(HashMap<(Method, String), String>);

impl Actions {
    /// Every operation of the document, keyed by its method and path (axum's matched path has the
    /// same `{param}` form).
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut map = HashMap::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
                (Method::TRACE, &item.trace),
            ] {
                if let Some(id) = op.as_ref().and_then(|o| o.operation_id.clone()) {
                    map.insert((method, path.clone()), id);
                }
            }
        }
        Self(map)
    }

    /// The legacy admin API's changes (`routes/field/legacy_admin.rs`, `legacy_firmware.rs`).
    pub fn legacy() -> Self {
        let rows = [
            (Method::POST, "/admin/api/devices", "legacy_create_device"),
            (
                Method::PUT,
                "/admin/api/devices/{mac}",
                "legacy_update_device",
            ),
            (
                Method::DELETE,
                "/admin/api/devices/{mac}",
                "legacy_delete_device",
            ),
            (
                Method::POST,
                "/admin/api/firmware",
                "legacy_upload_firmware",
            ),
            (
                Method::DELETE,
                "/admin/api/firmware/{filename}",
                "legacy_delete_firmware",
            ),
        ];
        Self(
            rows.into_iter()
                .map(|(m, p, a)| ((m, p.to_owned()), a.to_owned()))
                .collect(),
        )
    }

    /// The action of a request; a route missing from the table (which the tests forbid) is still
    /// audited, as `METHOD path`.
    fn action(&self, method: &Method, route: &str) -> String {
        match self.0.get(&(method.clone(), route.to_owned())) {
            Some(a) => a.clone(),
            None => {
                tracing::warn!(%method, route, "admin route without an operation id audited by its path");
                format!("{method} {route}")
            }
        }
    }
}

/// The audit layer's state: the server's, the action table, and which error shape to answer in.
#[derive(Clone)]
pub struct AuditState {
    pub app: AppState,
    pub actions: Arc<Actions>,
    /// Answer a failed audit write in the legacy admin API's shape (`{"detail": …}`).
    pub legacy: bool,
}

/// The middleware (module docs).
pub async fn audit(State(s): State<AuditState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path().to_owned(), |m| m.as_str().to_owned());
    let action = s.actions.action(&method, &route);
    let actor = parts
        .extensions
        .get::<Principal>()
        .map_or_else(|| "unknown".to_owned(), |p| p.actor.clone());
    let target = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .map(|p| {
            p.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|t| !t.is_empty());
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    let small = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= DETAIL_BODY_LIMIT);
    // Only a small JSON body is read here (and handed on unchanged); uploads stream past.
    let (body, sent) = if is_json && small {
        match axum::body::to_bytes(body, DETAIL_BODY_LIMIT).await {
            Ok(bytes) => {
                let sent = serde_json::from_slice::<Value>(&bytes).ok();
                (Body::from(bytes), sent)
            }
            Err(_) => {
                return ApiError::bad_request(
                    "body_unreadable",
                    "the request body could not be read",
                )
                .into_response()
            }
        }
    } else {
        (body, None)
    };
    let detail = detail(parts.uri.query(), sent.as_ref());
    let entry = NewAuditEntry {
        actor,
        action,
        method: method.to_string(),
        path: parts.uri.path().to_owned(),
        target,
        detail,
    };
    let id = match s.app.fleet.audit_record(&entry).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(action = %entry.action, path = %entry.path, error = %e, "admin request not run: its audit row could not be written");
            return refuse(e, s.legacy);
        }
    };
    let resp = next.run(Request::from_parts(parts, body)).await;
    let status = resp.status().as_u16();
    if let Err(e) = s.app.fleet.audit_finish(id, status).await {
        tracing::warn!(audit_id = id, action = %entry.action, status, error = %e, "the result of an admin request could not be written: its audit row stays pending until the disk takes it");
    }
    resp
}

fn refuse(e: CoreError, legacy: bool) -> Response {
    if legacy {
        crate::routes::field::legacy_admin::core_detail(e)
    } else {
        ApiError::from(e).into_response()
    }
}

/// The names sent in the body and the query, and the values of [`SAFE_VALUES`] only; `None` when
/// nothing was sent.
fn detail(query: Option<&str>, body: Option<&Value>) -> Option<AuditDetail> {
    let mut d = AuditDetail::default();
    if let Some(Value::Object(o)) = body {
        for (k, v) in o {
            d.fields.push(k.clone());
            if let Some(v) = safe(k, v) {
                d.values.insert(k.clone(), v);
            }
        }
    }
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if let Some(v) = safe(&k, &Value::String(v.into_owned())) {
            d.values.insert(k.to_string(), v);
        }
        d.query.push(k.into_owned());
    }
    (d != AuditDetail::default()).then_some(d)
}

fn safe(key: &str, v: &Value) -> Option<Value> {
    if !SAFE_VALUES.contains(&key) {
        return None;
    }
    match v {
        Value::String(s) if s.chars().count() <= SAFE_VALUE_CHARS => Some(v.clone()),
        Value::Bool(_) | Value::Number(_) | Value::Null => Some(v.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn detail_names_fields_and_keeps_only_harmless_values() {
        let body = json!({"version": "1.2.3", "notes": "the door code is 1234", "token": "s3cret",
            "tags": ["a"], "name": "x".repeat(500)});
        let d = detail(Some("dry_run=true&token=abc"), Some(&body)).unwrap();
        assert_eq!(
            json!(d.values),
            json!({"version": "1.2.3", "dry_run": "true"})
        );
        assert_eq!(d.query, ["dry_run", "token"]);
        assert_eq!(d.fields.len(), 5);
        let text = serde_json::to_string(&d).unwrap();
        for secret in ["s3cret", "abc", "1234"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(detail(None, None), None);
    }
}
