//! Admin authentication: `Authorization: Bearer <admin token>` or `X-Admin-API-Key: <token>`
//! (the header scripts for the older "ESP32 OTA Update Server" send). The event stream takes the
//! same headers: the UI reads it with `fetch()`, so the token never travels in a URL (where it
//! would end up in logs and browser history). A token in the URL (`?token=`) is refused with a
//! message that says how to send it.
//!
//! Comparison ([`token_matches`]) is of SHA-256 digests, in constant time: what a wrong guess
//! costs does not depend on how much of it, or how much of its length, was right.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::extract::bearer;
use crate::AppState;

/// SHA-256 of a secret, the form in which secrets are compared.
pub fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Whether `presented` is the secret whose digest is `expected`, in time independent of both.
pub fn token_matches(presented: &[u8], expected: &[u8; 32]) -> bool {
    bool::from(digest(presented).ct_eq(expected))
}

/// Every admin route: lets the request through with the admin token, refuses it (401) without.
/// Changes nothing itself; a refused request is logged here, never audited (`crate::audit`).
pub async fn require_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
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
    match presented {
        None if has_query_token(&req) => {
            tracing::warn!(path = %req.uri().path(), "admin token in the URL refused (it would be kept in logs and history)");
            Err(ApiError::with_status(
                StatusCode::UNAUTHORIZED,
                "admin_token_in_url",
                "the admin token must not travel in the URL (?token=): send it as 'Authorization: Bearer <admin token>', also for the event stream (read it with fetch(), not EventSource)",
            ))
        }
        None => Err(ApiError::with_status(
            StatusCode::UNAUTHORIZED,
            "admin_token_required",
            "this is an admin endpoint: send 'Authorization: Bearer <admin token>' (the token is in the data directory's admin-token file, or what --admin-token set)",
        )),
        Some(t) if token_matches(t.as_bytes(), &state.admin_digest) => {
            req.extensions_mut().insert(actor);
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
