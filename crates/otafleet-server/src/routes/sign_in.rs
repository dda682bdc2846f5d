//! `/api/v1/auth/…`: people signing in and out (docs/access.md). Only with `--oidc-issuer`
//! (without it the routes answer 404 `sign_in_off` and nothing changes).
//!
//! - `GET /api/v1/auth/providers` — anyone: which sign-in the server offers. Changes nothing.
//! - `GET /api/v1/auth/oidc/login` — anyone: keeps a sign-in under way (state, nonce, PKCE
//!   verifier, bound to this browser by a cookie) and sends the browser to the provider.
//! - `GET /api/v1/auth/oidc/callback` — the browser, back from the provider: takes that sign-in
//!   once; with the right browser, a code the provider accepts and an ID token that verifies
//!   for a member's e-mail, opens a session (HttpOnly cookie) and goes back to the UI. Anything
//!   else opens nothing and goes back to the UI with the reason (`?signin_error=`).
//! - `GET /api/v1/auth/github/login`, `GET /api/v1/auth/github/callback` — the same for GitHub
//!   (`--github-client-id`; OAuth2, the person being GitHub's primary verified e-mail).
//! - `POST /api/v1/auth/logout` — the session's browser, with its `X-CSRF-Token`: ends that
//!   session. Changes nothing else.
//! - `POST /api/v1/auth/password` — anyone, with `--local-accounts`: a member's address and
//!   password open a session (401 `bad_credentials` otherwise, the same for every kind of
//!   miss; locked for 15 minutes after 5 wrong ones). JSON only, so no other site's form can
//!   sign a browser in.
//! - `POST /api/v1/auth/password/change` — anyone who knows a member's current password: sets
//!   that member's new one. Changes nothing else.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cookie::{Cookie, SameSite};
use openidconnect::PkceCodeChallenge;
use otafleet_core::sign_ins::SignIn;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::AppState;

/// The session cookie (HttpOnly, SameSite=Lax, Path=/).
pub const SESSION_COOKIE: &str = "otafleet_session";
/// Binds a sign-in under way to the browser that began it.
const SIGN_IN_COOKIE: &str = "otafleet_sign_in";

/// Which provider a sign-in goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Oidc,
    GitHub,
}

impl Via {
    /// Its routes' common path (also the sign-in cookie's path).
    fn base(self) -> &'static str {
        match self {
            Via::Oidc => "/api/v1/auth/oidc",
            Via::GitHub => "/api/v1/auth/github",
        }
    }

    fn configured(self, s: &AppState) -> bool {
        match self {
            Via::Oidc => s.info.oidc.is_some(),
            Via::GitHub => s.info.github.is_some(),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(providers))
        .routes(routes!(login))
        .routes(routes!(callback))
        .routes(routes!(github_login))
        .routes(routes!(github_callback))
        .routes(routes!(logout))
        .routes(routes!(password_sign_in))
        .routes(routes!(password_change))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Providers {
    /// The OpenID Connect provider, if one is configured.
    pub oidc: Option<OidcProvider>,
    /// GitHub, if configured (`--github-client-id`).
    pub github: Option<OidcProvider>,
    /// Whether members may sign in with a password (`POST /api/v1/auth/password`).
    pub password: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OidcProvider {
    /// What the button says: "Sign in with <label>".
    pub label: String,
    /// Where the button goes (add `?return_to=/path`).
    pub login_url: String,
}

/// Which sign-in this server offers. Who: anyone; changes nothing.
#[utoipa::path(get, operation_id = "sign_in_providers", path = "/api/v1/auth/providers", tag = "access",
    params(OrgQuery),
    responses((status = 200, body = Providers), (status = 404, body = ErrorBody)))]
async fn providers(State(s): State<AppState>) -> Json<Providers> {
    Json(Providers {
        oidc: s.info.oidc.as_ref().map(|o| OidcProvider {
            label: o.config.label.clone(),
            login_url: "/api/v1/auth/oidc/login".into(),
        }),
        github: s.info.github.as_ref().map(|_| OidcProvider {
            label: "GitHub".into(),
            login_url: "/api/v1/auth/github/login".into(),
        }),
        password: s.info.local_accounts,
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LoginQuery {
    /// The UI path to come back to (a path on this server, e.g. `/devices`).
    pub return_to: Option<String>,
    /// Another organisation's id: the sign-in is into that organisation (`crate::orgs` sends
    /// the request there; 404 `organisation_unknown` for an id nobody has). Absent: the
    /// server's own.
    pub org: Option<String>,
}

/// Which organisation a sign-in path is for (see [`LoginQuery::org`]).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    /// Another organisation's id (404 `organisation_unknown` for one nobody has). Absent: the
    /// server's own.
    pub org: Option<String>,
}

/// A path on this server (never another site: `//host` and `\` are refused), else `/`.
fn safe_return(p: Option<&str>) -> String {
    match p {
        Some(p)
            if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && p.len() < 512 =>
        {
            p.to_owned()
        }
        _ => "/".into(),
    }
}

/// How the browser reached us: its headers and whether over TLS.
struct Reached {
    headers: HeaderMap,
    tls: bool,
}

impl Reached {
    fn of(req: &Request) -> Self {
        Self {
            headers: req.headers().clone(),
            tls: req
                .extensions()
                .get::<crate::conn::Transport>()
                .is_some_and(|t| t.is_tls()),
        }
    }
}

/// The redirect URI: the configured one, else the address the browser reached us by.
fn redirect_uri(s: &AppState, req: &Reached, via: Via) -> Result<String, ApiError> {
    let configured = match via {
        Via::Oidc => s
            .info
            .oidc
            .as_ref()
            .ok_or_else(off)?
            .config
            .redirect_url
            .as_ref(),
        Via::GitHub => s
            .info
            .github
            .as_ref()
            .ok_or_else(off)?
            .config
            .redirect_url
            .as_ref(),
    };
    if let Some(u) = configured {
        return Ok(u.clone());
    }
    let host = req
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("host_required", "the request names no Host"))?;
    let scheme = if req.tls { "https" } else { "http" };
    Ok(format!("{scheme}://{host}{}/callback", via.base()))
}

fn off() -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        "sign_in_off",
        "this server has no such sign-in configured (otafleet serve --oidc-issuer … or --github-client-id …); use an admin or API token",
    )
}

/// The value of one cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

fn set_cookie(c: Cookie<'_>) -> (header::HeaderName, HeaderValue) {
    (
        header::SET_COOKIE,
        HeaderValue::from_str(&c.to_string()).expect("cookie values are base64url"),
    )
}

/// A `Set-Cookie` value that makes the browser drop its session cookie.
pub fn clear_session_cookie() -> HeaderValue {
    set_cookie(
        Cookie::build((SESSION_COOKIE, ""))
            .path("/")
            .max_age(cookie::time::Duration::ZERO)
            .build(),
    )
    .1
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// Start a sign-in at the OpenID provider: 302 to its authorization endpoint. Who: anyone;
/// keeps one sign-in under way (10 minutes at most, used once). 404 `sign_in_off` without a
/// provider; when the provider cannot be reached (or too many sign-ins are under way), 303 back
/// to the UI with the reason, as a refused sign-in.
#[utoipa::path(get, operation_id = "sign_in_oidc_login", path = "/api/v1/auth/oidc/login", tag = "access",
    params(LoginQuery),
    responses((status = 302, description = "to the provider"), (status = 303, description = "back to the UI with the reason"),
        (status = 404, body = ErrorBody, description = "no sign-in configured")))]
async fn login(
    State(s): State<AppState>,
    Query(q): Query<LoginQuery>,
    req: Request,
) -> ApiResult<Response> {
    start(&s, q, &Reached::of(&req), Via::Oidc).await
}

/// Start a sign-in with GitHub: 302 to GitHub's authorize page (scope `user:email`, PKCE). Who:
/// anyone; keeps one sign-in under way (10 minutes at most, used once). 404 `sign_in_off`
/// without `--github-client-id`; when too many sign-ins are under way, 303 back to the UI with
/// the reason.
#[utoipa::path(get, operation_id = "sign_in_github_login", path = "/api/v1/auth/github/login", tag = "access",
    params(LoginQuery),
    responses((status = 302, description = "to GitHub"), (status = 303, description = "back to the UI with the reason"),
        (status = 404, body = ErrorBody, description = "no GitHub sign-in configured")))]
async fn github_login(
    State(s): State<AppState>,
    Query(q): Query<LoginQuery>,
    req: Request,
) -> ApiResult<Response> {
    start(&s, q, &Reached::of(&req), Via::GitHub).await
}

async fn start(s: &AppState, q: LoginQuery, req: &Reached, via: Via) -> ApiResult<Response> {
    if !via.configured(s) {
        return Err(off());
    }
    Ok(match begin(s, q, req, via).await {
        Ok(r) => r,
        Err(e) => back_with(&e),
    })
}

/// Back to the UI's sign-in page with a refusal's code and message.
fn back_with(e: &ApiError) -> Response {
    tracing::warn!(code = e.code(), error = %e, "sign-in refused");
    see_other(&format!(
        "/?signin_error={}&signin_message={}",
        e.code(),
        urlencoding(&e.to_string())
    ))
}

async fn begin(s: &AppState, q: LoginQuery, req: &Reached, via: Via) -> Result<Response, ApiError> {
    let redirect = redirect_uri(s, req, via)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    // `<organisation>.` first outside the default organisation: the provider's answer carries
    // the state back, and it says whose database holds this sign-in (`crate::orgs`).
    let state = format!(
        "{}{}",
        s.fleet.secret_prefix(),
        otafleet_core::access::random_secret()
    );
    let nonce = otafleet_core::access::random_secret();
    let browser = otafleet_core::access::random_secret();
    let url = match via {
        Via::Oidc => {
            let oidc = s.info.oidc.clone().ok_or_else(off)?;
            oidc.authorize_url(&redirect, state.clone(), nonce.clone(), challenge)
                .await?
        }
        Via::GitHub => {
            let github = s.info.github.clone().ok_or_else(off)?;
            github.authorize_url(&redirect, state.clone(), challenge)?
        }
    };
    s.fleet
        .sign_in_begin(&SignIn {
            state,
            browser: otafleet_core::checkin::hash_token(&browser),
            nonce,
            pkce_verifier: verifier.secret().clone(),
            return_to: safe_return(q.return_to.as_deref()),
            expires_at: otafleet_core::time::ago(-otafleet_core::sign_ins::LIFETIME_S),
        })
        .await?;
    let bind = Cookie::build((SIGN_IN_COOKIE, browser))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(req.tls)
        .path(via.base())
        .max_age(cookie::time::Duration::seconds(
            otafleet_core::sign_ins::LIFETIME_S,
        ))
        .build();
    Ok((
        StatusCode::FOUND,
        [(header::LOCATION, url)],
        [set_cookie(bind)],
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal (e.g. `access_denied`).
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The provider's answer. 303 to the UI: with a session cookie when the sign-in holds, else
/// with `?signin_error=<code>&signin_message=<what to do>` and no session. Who: the browser that
/// began the sign-in; opens at most one session, for a member.
#[utoipa::path(get, operation_id = "sign_in_oidc_callback", path = "/api/v1/auth/oidc/callback", tag = "access",
    params(CallbackQuery),
    responses((status = 303, description = "back to the UI, signed in or with the reason")))]
async fn callback(
    State(s): State<AppState>,
    Query(q): Query<CallbackQuery>,
    req: Request,
) -> Response {
    answer(&s, q, &Reached::of(&req), Via::Oidc).await
}

/// GitHub's answer. 303 to the UI: with a session cookie when the code is good and GitHub names
/// a verified e-mail of a member, else with `?signin_error=<code>&signin_message=<what to do>`
/// and no session. Who: the browser that began the sign-in; opens at most one session, for a
/// member.
#[utoipa::path(get, operation_id = "sign_in_github_callback", path = "/api/v1/auth/github/callback", tag = "access",
    params(CallbackQuery),
    responses((status = 303, description = "back to the UI, signed in or with the reason")))]
async fn github_callback(
    State(s): State<AppState>,
    Query(q): Query<CallbackQuery>,
    req: Request,
) -> Response {
    answer(&s, q, &Reached::of(&req), Via::GitHub).await
}

async fn answer(s: &AppState, q: CallbackQuery, req: &Reached, via: Via) -> Response {
    let tls = req.tls;
    let clear_bind = Cookie::build((SIGN_IN_COOKIE, ""))
        .path(via.base())
        .max_age(cookie::time::Duration::ZERO)
        .build();
    match finish(s, q, req, via).await {
        Ok((secret, return_to)) => {
            let session = session_cookie(secret, tls);
            let mut r = see_other(&return_to);
            for c in [session, clear_bind] {
                let (k, v) = set_cookie(c);
                r.headers_mut().append(k, v);
            }
            r
        }
        Err(e) => {
            let mut r = back_with(&e);
            let (k, v) = set_cookie(clear_bind);
            r.headers_mut().append(k, v);
            r
        }
    }
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn finish(
    s: &AppState,
    q: CallbackQuery,
    req: &Reached,
    via: Via,
) -> Result<(String, String), ApiError> {
    if !via.configured(s) {
        return Err(off());
    }
    if let Some(error) = q.error {
        return Err(ApiError::with_status(
            StatusCode::UNAUTHORIZED,
            "oidc_provider_refused",
            format!(
                "the sign-in provider did not sign you in ({error}{}): try again",
                q.error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(ApiError::bad_request(
            "oidc_answer_incomplete",
            "the provider's answer has no code or no state: sign in again",
        ));
    };
    let Some(sign_in) = s.fleet.sign_in_take(&state).await? else {
        return Err(ApiError::with_status(
            StatusCode::UNAUTHORIZED,
            "signin_state_unknown",
            "this sign-in is unknown, was used already or has expired (10 minutes): sign in again",
        ));
    };
    let browser =
        cookie(&req.headers, SIGN_IN_COOKIE).map(|b| otafleet_core::checkin::hash_token(&b));
    if browser.as_deref() != Some(sign_in.browser.as_str()) {
        return Err(ApiError::with_status(
            StatusCode::UNAUTHORIZED,
            "signin_other_browser",
            "this sign-in was begun in another browser (or its cookie was lost): sign in again from this one",
        ));
    }
    let redirect = redirect_uri(s, req, via)?;
    let who = match via {
        Via::Oidc => {
            let oidc = s.info.oidc.clone().ok_or_else(off)?;
            oidc.identify(&redirect, code, sign_in.pkce_verifier, &sign_in.nonce)
                .await?
        }
        Via::GitHub => {
            let github = s.info.github.clone().ok_or_else(off)?;
            github
                .identify(&redirect, code, sign_in.pkce_verifier)
                .await?
        }
    };
    let secret = s
        .fleet
        .sign_in_complete(&who.email, who.name.as_deref())
        .await?;
    Ok((secret, sign_in.return_to))
}

/// Sign out: ends this browser's session and clears its cookie. 204. Who: the session's
/// browser, with its `X-CSRF-Token` (403 `csrf_failed` without); changes nothing else.
#[utoipa::path(post, operation_id = "sign_out", path = "/api/v1/auth/logout", tag = "access",
    responses((status = 204), (status = 403, body = ErrorBody)))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        if let Some(session) = s.fleet.session(&secret).await? {
            crate::auth::check_csrf(&headers, &session.csrf)?;
            s.fleet.session_end(&secret).await?;
            tracing::info!(who = %session.principal.actor, "signed out");
        }
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_session_cookie())],
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordSignIn {
    pub email: String,
    pub password: String,
}

fn session_cookie(secret: String, tls: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, secret))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(tls)
        .path("/")
        .max_age(cookie::time::Duration::seconds(
            otafleet_core::sessions::LIFETIME_S,
        ))
        .build()
}

fn passwords_off() -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        "passwords_off",
        "this server takes no passwords (otafleet serve --local-accounts turns them on); sign in with the provider or use a token",
    )
}

/// Sign in with a member's address and password: 204 with the session cookie. Who: anyone, with
/// `--local-accounts`; opens one session for that member. 401 `bad_credentials`, 409
/// `too_many_attempts` after 5 wrong passwords for the address in 15 minutes.
#[utoipa::path(post, operation_id = "sign_in_password", path = "/api/v1/auth/password", tag = "access",
    request_body = PasswordSignIn, params(OrgQuery),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn password_sign_in(State(s): State<AppState>, req: Request) -> ApiResult<Response> {
    if !s.info.local_accounts {
        return Err(passwords_off());
    }
    let reached = Reached::of(&req);
    let crate::extract::Json(body) =
        <crate::extract::Json<PasswordSignIn> as axum::extract::FromRequest<()>>::from_request(
            req,
            &(),
        )
        .await?;
    let secret = s
        .fleet
        .password_sign_in(&body.email, &body.password)
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [set_cookie(session_cookie(secret, reached.tls))],
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub email: String,
    pub current: String,
    /// 12 to 256 characters.
    pub new: String,
}

/// Change one's own password, proving the current one. 204. Who: anyone who knows the member's
/// current password, with `--local-accounts`; changes that password only. Refusals as for signing
/// in; 422 `weak_password`.
#[utoipa::path(post, operation_id = "change_password", path = "/api/v1/auth/password/change", tag = "access",
    request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn password_change(
    State(s): State<AppState>,
    crate::extract::Json(body): crate::extract::Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    if !s.info.local_accounts {
        return Err(passwords_off());
    }
    s.fleet
        .password_change(&body.email, &body.current, body.new)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_server_are_returned_to() {
        assert_eq!(safe_return(Some("/devices/x")), "/devices/x");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "devices",
        ] {
            assert_eq!(safe_return(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return(None), "/");
    }
}
