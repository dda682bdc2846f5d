//! Organisations on one server (docs/access.md). Each organisation other than the default one
//! is served by a router of its own over its own [`otafleet_core::Fleet`] (its own database,
//! stored images, firmware index and event stream), built on first use. This module only
//! decides which organisation's router a request goes to, and it never lets a request reach
//! two:
//!
//! | the request | goes to |
//! | --- | --- |
//! | path `/o/<enrolment key>/…` (another organisation's devices) | that organisation, path without the prefix; 404 `organisation_unknown` for a key nobody has |
//! | `Authorization: Bearer otf_<id>.…` (a named token made in organisation `<id>`) | organisation `<id>` |
//! | session cookie `<id>.…` (a member of organisation `<id>` signed in) | organisation `<id>` |
//! | sign-in paths (`/api/v1/auth/…`) with `?org=<id>`, or the provider's answer whose `state` is `<id>.…` | organisation `<id>`; 404 `organisation_unknown` for `?org=` nobody has |
//! | anything else | the default organisation, exactly as before organisations |
//!
//! Which organisation a credential names only picks the database it is checked in: a forged
//! prefix sends the secret to a database that does not know it (401), never into another
//! organisation. The default organisation's paths, tokens and cookies carry no prefix and are
//! answered as they always were.

use std::collections::HashMap;
use std::sync::Arc;

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::Router;
use futures_util::future::{BoxFuture, Either};
use otafleet_core::organisations::DEFAULT_ID;
use tokio::sync::RwLock;
use tower::{Service, ServiceExt};

use crate::error::ApiError;
use crate::{AppState, OrgScope};

/// The path prefix of another organisation's devices: `/o/<enrolment key>/…`.
pub const DEVICE_PATH: &str = "/o/";

struct Dispatch {
    default: Router,
    state: AppState,
    /// Routers of the other organisations opened so far, by id.
    routers: RwLock<HashMap<String, Router>>,
    /// Enrolment key → organisation id, for the keys seen so far.
    keys: RwLock<HashMap<String, String>>,
}

/// The default organisation's router with every other organisation's behind it: what each
/// connection calls. A request of the default organisation (every device of today's paths, the
/// admin token) goes straight to its router — on the check-in hot path this costs only
/// [`target`]'s look at the path and two headers — and any other through the dispatcher.
#[derive(Clone)]
pub struct OrgRouter {
    default: Router,
    dispatch: Arc<Dispatch>,
}

/// [`OrgRouter`]'s answer: the default router's own future, or the dispatcher's.
pub type OrgFuture =
    Either<RouteFuture<Infallible>, BoxFuture<'static, Result<Response, Infallible>>>;

impl OrgRouter {
    pub fn new(state: AppState) -> Self {
        let default = crate::routes::router(state.clone());
        Self {
            default: default.clone(),
            dispatch: Arc::new(Dispatch {
                default,
                state,
                routers: Default::default(),
                keys: Default::default(),
            }),
        }
    }

    /// As one axum [`Router`] (for callers that serve a `Router` themselves).
    pub fn into_router(self) -> Router {
        Router::new().fallback_service(self)
    }
}

impl<B> Service<axum::http::Request<B>> for OrgRouter
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = OrgFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> OrgFuture {
        let req = req.map(axum::body::Body::new);
        match target(&req) {
            Target::Default => Either::Left(self.default.clone().call(req)),
            other => {
                let d = self.dispatch.clone();
                Either::Right(Box::pin(async move { Ok(d.dispatch(other, req).await) }))
            }
        }
    }
}

/// Where a request goes, as its path and credentials say.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Default,
    /// `/o/<key>/<rest>`.
    Key {
        key: String,
        rest: String,
    },
    /// Named by a credential: an unknown id goes to the default organisation, where the
    /// credential is refused as any wrong one is.
    Credential(String),
    /// Named by `?org=` on a sign-in path: an unknown id is 404.
    Named(String),
}

fn target(req: &Request) -> Target {
    let path = req.uri().path();
    if let Some(after) = path.strip_prefix(DEVICE_PATH) {
        let (key, rest) = after.split_once('/').unwrap_or((after, ""));
        return Target::Key {
            key: key.to_owned(),
            rest: format!("/{rest}"),
        };
    }
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(org) = bearer
        .and_then(|t| t.strip_prefix(otafleet_core::api_tokens::SECRET_PREFIX))
        .and_then(org_of)
    {
        return Target::Credential(org.to_owned());
    }
    if bearer.is_none() {
        let cookie =
            crate::routes::sign_in::cookie(headers, crate::routes::sign_in::SESSION_COOKIE);
        if let Some(org) = cookie.as_deref().and_then(org_of) {
            return Target::Credential(org.to_owned());
        }
    }
    if path.starts_with("/api/v1/auth/") {
        for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
            if k == "org" && !v.is_empty() {
                return Target::Named(v.into_owned());
            }
            if k == "state" {
                if let Some(org) = org_of(&v) {
                    return Target::Credential(org.to_owned());
                }
            }
        }
    }
    Target::Default
}

/// `<id>` of a secret `<id>.<random>` (the random part never holds a dot).
fn org_of(secret: &str) -> Option<&str> {
    secret.split_once('.').map(|(org, _)| org).filter(|o| {
        !o.is_empty()
            && o.len() <= 32
            && o.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

impl Dispatch {
    async fn dispatch(&self, target: Target, mut req: Request) -> Response {
        let d = self;
        let id = match target {
            Target::Default => return run(&d.default, req).await,
            Target::Key { key, rest } => {
                let id = match d.id_for_key(&key).await {
                    Ok(Some(id)) => id,
                    Ok(None) => {
                        tracing::warn!(path = %req.uri().path(), "request for an unknown organisation's device path refused");
                        return unknown("no organisation has this enrolment key: use the device URL its Team page shows (http://<server>/o/<key>)");
                    }
                    Err(e) => return e.into_response(),
                };
                let pq = match req.uri().query() {
                    Some(q) => format!("{rest}?{q}"),
                    None => rest,
                };
                match Uri::try_from(pq) {
                    Ok(uri) => *req.uri_mut() = uri,
                    Err(_) => {
                        return ApiError::bad_request(
                            "bad_path",
                            "the path is not a valid URI path",
                        )
                        .into_response()
                    }
                }
                id
            }
            Target::Credential(id) if id == DEFAULT_ID => return run(&d.default, req).await,
            Target::Credential(id) => match d.router_for(&id).await {
                Ok(Some(r)) => return run(&r, req).await,
                Ok(None) => return run(&d.default, req).await,
                Err(e) => return e.into_response(),
            },
            Target::Named(id) if id == DEFAULT_ID => return run(&d.default, req).await,
            Target::Named(id) => id,
        };
        match d.router_for(&id).await {
        Ok(Some(r)) => run(&r, req).await,
        Ok(None) => unknown(&format!(
            "there is no organisation '{id}': check the organisation's id with whoever runs this server"
        )),
        Err(e) => e.into_response(),
    }
    }
}

async fn run(router: &Router, req: Request) -> Response {
    match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

fn unknown(message: &str) -> Response {
    ApiError::with_status(StatusCode::NOT_FOUND, "organisation_unknown", message).into_response()
}

impl Dispatch {
    async fn id_for_key(&self, key: &str) -> Result<Option<String>, ApiError> {
        if let Some(id) = self.keys.read().await.get(key) {
            return Ok(Some(id.clone()));
        }
        let Some(org) = self.state.fleet.organisation_by_key(key).await? else {
            return Ok(None);
        };
        self.keys
            .write()
            .await
            .insert(key.to_owned(), org.id.clone());
        Ok(Some(org.id))
    }

    /// Organisation `id`'s router, built on first use; `None` when there is no such
    /// organisation.
    async fn router_for(&self, id: &str) -> Result<Option<Router>, ApiError> {
        if let Some(r) = self.routers.read().await.get(id) {
            return Ok(Some(r.clone()));
        }
        let mut routers = self.routers.write().await;
        if let Some(r) = routers.get(id) {
            return Ok(Some(r.clone()));
        }
        let row = match self.state.fleet.organisation_row(id).await {
            Ok(row) => row,
            Err(otafleet_core::CoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let fleet = self.state.fleet.organisation(id).await?;
        let state = self.state.for_organisation(
            fleet,
            OrgScope {
                id: row.id.clone(),
                name: row.name,
                device_prefix: format!("/o/{}", row.enrolment_key),
            },
        );
        let router = crate::routes::router(state);
        routers.insert(row.id, router.clone());
        Ok(Some(router))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = axum::http::Request::builder().uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn each_request_names_at_most_one_organisation() {
        assert_eq!(target(&req("/api/v1/devices", &[])), Target::Default);
        assert_eq!(
            target(&req("/o/KEY/api/v1/device/checkin?x=1", &[])),
            Target::Key {
                key: "KEY".into(),
                rest: "/api/v1/device/checkin".into()
            }
        );
        assert_eq!(
            target(&req(
                "/api/v1/devices",
                &[("authorization", "Bearer otf_acme.abc")]
            )),
            Target::Credential("acme".into())
        );
        // The default organisation's tokens and the admin token carry no organisation.
        assert_eq!(
            target(&req(
                "/api/v1/devices",
                &[("authorization", "Bearer otf_abc")]
            )),
            Target::Default
        );
        assert_eq!(
            target(&req("/api/v1/devices", &[("authorization", "Bearer a.b")])),
            Target::Default
        );
        assert_eq!(
            target(&req(
                "/api/v1/me",
                &[("cookie", "x=1; otafleet_session=acme.s3cret")]
            )),
            Target::Credential("acme".into())
        );
        // A token wins over a cookie, as in the admin check.
        assert_eq!(
            target(&req(
                "/api/v1/me",
                &[
                    ("authorization", "Bearer otf_abc"),
                    ("cookie", "otafleet_session=acme.s3cret")
                ]
            )),
            Target::Default
        );
        assert_eq!(
            target(&req("/api/v1/auth/password?org=acme", &[])),
            Target::Named("acme".into())
        );
        assert_eq!(
            target(&req(
                "/api/v1/auth/oidc/callback?code=c&state=acme.xyz",
                &[]
            )),
            Target::Credential("acme".into())
        );
        // `?org=` means nothing outside the sign-in paths.
        assert_eq!(
            target(&req("/api/v1/devices?org=acme", &[])),
            Target::Default
        );
        assert_eq!(
            target(&req(
                "/api/v1/devices",
                &[("cookie", "otafleet_session=Bad.x")]
            )),
            Target::Default
        );
    }
}
