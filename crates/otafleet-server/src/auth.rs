//! Admin authentication and roles (docs/access.md).
//!
//! Credentials: `Authorization: Bearer <token>` or `X-Admin-API-Key: <token>` (the header
//! scripts for the older "ESP32 OTA Update Server" send). The token is either the server's admin
//! token — the owner's, as the desktop app and every script so far hold it — or a named API token
//! (`otf_…`, made on the Team page) with its own role and scope. Without a token, a signed-in
//! person's session cookie (`routes/sign_in.rs`), whose every change must carry the session's
//! `X-CSRF-Token` (403 `csrf_failed`); a session that ended is 401 `session_ended`. The event stream takes the
//! same headers: the UI reads it with `fetch()`, so the token never travels in a URL (where it
//! would end up in logs and browser history). A token in the URL (`?token=`) is refused with a
//! message that says how to send it.
//!
//! Roles: every admin operation declares the least role it needs in its OpenAPI description
//! (`x-min-role`, [`MIN_ROLE`]); [`Access::from_openapi`] reads them when the router is built and
//! refuses to build one with an undeclared admin operation, so no route is left out. A principal
//! below the route's role gets 403 `role_insufficient`; a scoped token (`upload:<project>`) may
//! call [`SCOPED_OPERATIONS`] only (403 `token_scope`), and the upload checks the project.
//!
//! Comparison of the admin token ([`token_matches`]) is of SHA-256 digests, in constant time:
//! what a wrong guess costs does not depend on how much of it, or how much of its length, was
//! right. Named tokens are found by the SHA-256 of the secret (an index lookup; the secret has
//! 256 random bits, so nothing is learnt from how long a miss takes).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use otafleet_core::access::{Principal, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::extract::bearer;
use crate::AppState;

/// The OpenAPI extension in which an admin operation declares the least role it needs.
pub const MIN_ROLE: &str = "x-min-role";

/// What a token scoped to `upload:<project>` may call: the upload (which checks the project).
pub const SCOPED_OPERATIONS: &[&str] = &["upload_firmware", "whoami"];

/// SHA-256 of a secret, the form in which secrets are compared.
pub fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Whether `presented` is the secret whose digest is `expected`, in time independent of both.
pub fn token_matches(presented: &[u8], expected: &[u8; 32]) -> bool {
    bool::from(digest(presented).ct_eq(expected))
}

/// Each admin operation's id and least role, by method and route.
#[derive(Debug, Default)]
pub struct Access(HashMap<(Method, String), (String, Role)>);

impl Access {
    /// Every operation of the admin router's document, keyed by method and path (axum's matched
    /// path has the same `{param}` form). Panics on an operation without a valid `x-min-role`:
    /// an admin route that does not say who may call it is a bug, caught by every test that
    /// builds a router.
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut map = HashMap::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ] {
                let Some(op) = op else { continue };
                let id = op.operation_id.clone().unwrap_or_else(|| path.clone());
                let role = op
                    .extensions
                    .as_ref()
                    .and_then(|e| e.get(MIN_ROLE))
                    .and_then(|v| v.as_str())
                    .and_then(Role::parse)
                    .unwrap_or_else(|| {
                        panic!("admin operation {id} ({method} {path}) declares no {MIN_ROLE}")
                    });
                map.insert((method, path.clone()), (id, role));
            }
        }
        Self(map)
    }

    /// The operation and least role of a matched route (`HEAD` is checked as `GET`).
    pub fn get(&self, method: &Method, route: &str) -> Option<&(String, Role)> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0.get(&(method.clone(), route.to_owned()))
    }
}

/// The state of the admin check: the app and the role table.
#[derive(Clone)]
pub struct AuthState {
    pub app: AppState,
    pub access: Arc<Access>,
}

/// Every admin route: lets the request through when its token stands for a principal whose role
/// (and scope) allow the route; 401 without a valid token, 403 when the role or scope falls
/// short. Changes nothing itself (a named token's last use is noted at most once a minute); a
/// refused request is logged here, never audited (`crate::audit`).
pub async fn require_admin(
    State(auth): State<AuthState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let state = &auth.app;
    let headers = req.headers();
    // Who is let in, for the audit log (crate::audit).
    let actor = if bearer(headers).is_some() {
        crate::audit::ADMIN
    } else {
        crate::audit::LEGACY_KEY
    };
    let presented = bearer(headers).map(str::to_owned).or_else(|| {
        headers
            .get("x-admin-api-key")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_owned())
    });
    let cookie = session_cookie(&req);
    let principal = match (presented, cookie) {
        // A signed-in person's browser: its session cookie, and on every change the session's
        // anti-CSRF token (a form or script on another site can send the cookie, never that
        // header).
        (None, Some(secret)) => {
            match state.fleet.session(&secret).await? {
                Some(session) => {
                    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
                        check_csrf(req.headers(), &session.csrf)?;
                    }
                    req.extensions_mut().insert(SessionCsrf(session.csrf));
                    session.principal
                }
                None => {
                    // The browser is told to drop the dead cookie too.
                    let mut refused = ApiError::with_status(
                        StatusCode::UNAUTHORIZED,
                        "session_ended",
                        "your session has ended (signed out, expired, or your membership was removed): sign in again",
                    )
                    .into_response();
                    refused.headers_mut().append(
                        axum::http::header::SET_COOKIE,
                        crate::routes::sign_in::clear_session_cookie(),
                    );
                    return Ok(refused);
                }
            }
        }
        (None, None) if has_query_token(&req) => {
            tracing::warn!(path = %req.uri().path(), "admin token in the URL refused (it would be kept in logs and history)");
            return Err(ApiError::with_status(
                StatusCode::UNAUTHORIZED,
                "admin_token_in_url",
                "the admin token must not travel in the URL (?token=): send it as 'Authorization: Bearer <admin token>', also for the event stream (read it with fetch(), not EventSource)",
            ));
        }
        (None, None) => {
            return Err(ApiError::with_status(
                StatusCode::UNAUTHORIZED,
                "admin_token_required",
                "this is an admin endpoint: send 'Authorization: Bearer <admin token>' (the token is in the data directory's admin-token file, or what --admin-token set), or a named API token",
            ))
        }
        (Some(t), _) if state.is_admin_token(t.as_bytes()) => Principal::owner(actor),
        (Some(t), _) => match state.fleet.api_token_principal(&t).await? {
            Some(p) => p,
            None => {
                tracing::warn!(path = %req.uri().path(), "admin request with a wrong token refused");
                return Err(ApiError::with_status(
                    StatusCode::UNAUTHORIZED,
                    "admin_token_invalid",
                    "the token is wrong or revoked; use the one in the data directory's admin-token file, what --admin-token set, or a live API token",
                ));
            }
        },
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let Some((operation, role)) = route.and_then(|r| auth.access.get(req.method(), &r)) else {
        // A route of the admin router that its document does not list: only the owner.
        if principal.role < Role::Owner {
            return Err(forbidden(
                "role_insufficient",
                "this admin endpoint is for the owner only".into(),
            ));
        }
        req.extensions_mut().insert(principal);
        return Ok(next.run(req).await);
    };
    if principal.scope.is_some() && !SCOPED_OPERATIONS.contains(&operation.as_str()) {
        tracing::warn!(actor = %principal.actor, %operation, "scoped token refused");
        return Err(forbidden(
            "token_scope",
            format!(
                "this token is scoped to '{}' and may only upload that project's images; {operation} needs an unscoped token",
                principal.scope.as_ref().map(|s| s.to_text()).unwrap_or_default()
            ),
        ));
    }
    if let Err(e) = principal.role.require(*role, operation) {
        tracing::warn!(actor = %principal.actor, %operation, needs = %role, has = %principal.role, "role too low: refused");
        return Err(e.into());
    }
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// The anti-CSRF token of the session a request came with (for `GET /api/v1/me`).
#[derive(Debug, Clone)]
pub struct SessionCsrf(pub String);

fn session_cookie(req: &Request) -> Option<String> {
    crate::routes::sign_in::cookie(req.headers(), crate::routes::sign_in::SESSION_COOKIE)
        .filter(|c| !c.is_empty())
}

/// A change made with a session cookie must carry the session's token in `X-CSRF-Token`.
pub fn check_csrf(headers: &axum::http::HeaderMap, expected: &str) -> Result<(), ApiError> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) && !expected.is_empty() {
        Ok(())
    } else {
        tracing::warn!("change with a session cookie but without its CSRF token refused");
        Err(forbidden(
            "csrf_failed",
            "this change came with your session's cookie but not its X-CSRF-Token header (a page of another site may have sent it): reload otafleet and try again".into(),
        ))
    }
}

fn forbidden(code: &'static str, message: String) -> ApiError {
    ApiError::with_status(StatusCode::FORBIDDEN, code, message)
}

fn has_query_token(req: &Request) -> bool {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.split_once('=').map_or(pair, |(k, _)| k) == "token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_only_the_same_secret_whatever_the_length() {
        let expected = digest(b"s3cret-admin-token");
        assert!(token_matches(b"s3cret-admin-token", &expected));
        for wrong in [
            &b""[..],
            b"s",
            b"s3cret-admin-toke",
            b"s3cret-admin-token!",
            b"S3cret-admin-token",
        ] {
            assert!(!token_matches(wrong, &expected));
        }
    }
}
