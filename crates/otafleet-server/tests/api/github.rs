//! Sign-in with GitHub (docs/access.md), over HTTP as a browser goes through it.
//!
//! GitHub itself cannot be reached from the tests, so a server on loopback answers as GitHub's
//! documented OAuth endpoints do (`/login/oauth/authorize`, `/login/oauth/access_token` — which,
//! like GitHub's, answers a refused code with 200 and an `error` field — `/user/emails`,
//! `/user`), and checks what GitHub checks: the client secret, the redirect URI, a code used
//! once, the PKCE verifier against the S256 challenge. What it cannot show is that github.com
//! still answers this way; that is GitHub's published contract.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest;

use crate::common::*;

const CLIENT_ID: &str = "Iv1.otafleet-test";
const CLIENT_SECRET: &str = "github-test-secret";

/// An authorization GitHub handed out: for whom, with which challenge and redirect URI.
struct Grant {
    login: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct Hub {
    /// Who is signed in at "GitHub" in the browser.
    current: Mutex<String>,
    /// Codes not yet traded.
    grants: Mutex<HashMap<String, Grant>>,
    /// Access token → login.
    tokens: Mutex<HashMap<String, String>>,
    /// Login → its e-mail addresses (address, primary, verified).
    emails: HashMap<String, Vec<(String, bool, bool)>>,
}

async fn authorize(
    State(hub): State<Arc<Hub>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["scope"], "user:email");
    assert_eq!(q["code_challenge_method"], "S256");
    let code = format!("code-{}", rand_hex());
    hub.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            login: hub.current.lock().unwrap().clone(),
            challenge: q["code_challenge"].clone(),
            redirect_uri: q["redirect_uri"].clone(),
        },
    );
    let to = format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]);
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn access_token(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Json<Value> {
    // oauth2 sends the client's credentials as HTTP Basic (GitHub takes either form).
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|b| {
            use base64::Engine as _;
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
        });
    let (id, secret) = match &basic {
        Some(b) => {
            let (i, s) = b.split_once(':').unwrap();
            (i.to_owned(), s.to_owned())
        }
        None => (
            f.get("client_id").cloned().unwrap_or_default(),
            f.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return Json(json!({"error": "incorrect_client_credentials"}));
    }
    let Some(grant) = hub.grants.lock().unwrap().remove(&f["code"]) else {
        return Json(json!({"error": "bad_verification_code",
            "error_description": "The code passed is incorrect or expired."}));
    };
    let challenge = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(f["code_verifier"].as_bytes()))
    };
    if challenge != grant.challenge || f.get("redirect_uri") != Some(&grant.redirect_uri) {
        return Json(json!({"error": "bad_verification_code"}));
    }
    let token = format!("gho_{}", rand_hex());
    hub.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), grant.login);
    Json(json!({"access_token": token, "token_type": "bearer", "scope": "user:email"}))
}

fn login_of(hub: &Hub, headers: &HeaderMap) -> Option<String> {
    assert!(
        headers.get(header::USER_AGENT).is_some(),
        "GitHub refuses requests without a User-Agent"
    );
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    hub.tokens.lock().unwrap().get(token).cloned()
}

async fn user_emails(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let Some(login) = login_of(&hub, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let list: Vec<Value> = hub.emails[&login]
        .iter()
        .map(|(e, p, v)| json!({"email": e, "primary": p, "verified": v, "visibility": null}))
        .collect();
    Json(list).into_response()
}

async fn user(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    match login_of(&hub, &headers) {
        Some(login) => Json(json!({"login": login, "name": null})).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

fn rand_hex() -> String {
    hex::encode(sha2::Sha256::digest(format!(
        "{:?}",
        std::time::Instant::now()
    )))[..20]
        .to_owned()
}

async fn start_github() -> (String, Arc<Hub>) {
    let mut emails = HashMap::new();
    emails.insert(
        "octocat".to_owned(),
        vec![
            ("octo-old@lab.test".into(), false, true),
            ("Octo@Lab.Test".into(), true, true),
        ],
    );
    emails.insert(
        "unverified".to_owned(),
        vec![("nobody@lab.test".into(), true, false)],
    );
    emails.insert(
        "stranger".to_owned(),
        vec![("stranger@lab.test".into(), true, true)],
    );
    let hub = Arc::new(Hub {
        current: Mutex::new("octocat".into()),
        emails,
        ..Default::default()
    });
    let app = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/user/emails", get(user_emails))
        .route("/api/user", get(user))
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hub)
}

async fn app_with_github(base: &str) -> TestApp {
    let github = otafleet_server::github::GitHub::new(otafleet_server::github::GitHubConfig {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        url: base.into(),
        api_url: format!("{base}/api"),
        redirect_url: None,
    })
    .unwrap();
    TestApp::start_info(otafleet_server::ServerInfo {
        github: Some(Arc::new(github)),
        ..Default::default()
    })
    .await
}

/// A browser without redirects followed: each step is looked at.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()?
                .strip_prefix(&format!("{name}="))
                .map(str::to_owned)
        })
        .filter(|v| !v.is_empty())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

/// Begin at otafleet (`query` after the login path), go through "GitHub", and come back:
/// (GitHub's answer URL, the browser's sign-in cookie).
async fn begin(app: &TestApp, http: &reqwest::Client, query: &str) -> (String, String) {
    let r = http
        .get(app.url(&format!("/api/v1/auth/github/login{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{:?}", r.text().await);
    let bind = set_cookie(&r, "otafleet_sign_in").expect("the browser-binding cookie");
    let at_github = location(&r);
    let r = http.get(&at_github).send().await.unwrap();
    assert_eq!(r.status(), 302);
    (location(&r), bind)
}

/// Come back to otafleet's callback: (the session cookie, if one was opened; where the browser
/// was sent).
async fn finish(http: &reqwest::Client, answer: &str, bind: &str) -> (Option<String>, String) {
    let r = http
        .get(answer)
        .header(header::COOKIE, format!("otafleet_sign_in={bind}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    (set_cookie(&r, "otafleet_session"), location(&r))
}

#[tokio::test]
async fn a_member_signs_in_with_github_and_every_forgery_is_refused() {
    let (github, hub) = start_github().await;
    let app = app_with_github(&github).await;
    let providers = app.public_json("/api/v1/auth/providers").await;
    assert_eq!(
        providers["github"],
        json!({"label": "GitHub", "login_url": "/api/v1/auth/github/login"})
    );
    let r = app
        .admin(Method::POST, "/api/v1/members")
        .json(&json!({"email": "octo@lab.test", "role": "operator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let http = browser();

    // The primary verified address is the person; they come back where they started.
    let (answer, bind) = begin(&app, &http, "?return_to=/devices").await;
    assert!(
        answer.contains("/api/v1/auth/github/callback?code="),
        "{answer}"
    );
    let (session, to) = finish(&http, &answer, &bind).await;
    let session = session.unwrap_or_else(|| panic!("no session; sent to {to}"));
    assert_eq!(to, "/devices");
    let me: Value = http
        .get(app.url("/api/v1/me"))
        .header(header::COOKIE, format!("otafleet_session={session}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["actor"], "user:octo@lab.test");
    assert_eq!(me["role"], "operator");

    // The same answer again: its sign-in was taken.
    let (none, to) = finish(&http, &answer, &bind).await;
    assert!(none.is_none());
    assert!(to.contains("signin_error=signin_state_unknown"), "{to}");

    // The old code with a fresh sign-in's state: GitHub refuses a code used once.
    let (fresh, fresh_bind) = begin(&app, &http, "").await;
    let state = fresh.split("state=").nth(1).unwrap();
    let old_code = answer
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let replay = format!(
        "{}?code={old_code}&state={state}",
        fresh.split('?').next().unwrap()
    );
    let (none, to) = finish(&http, &replay, &fresh_bind).await;
    assert!(none.is_none());
    assert!(to.contains("signin_error=github_code_refused"), "{to}");

    // Finished in another browser: refused before GitHub is asked.
    let (answer, _) = begin(&app, &http, "").await;
    let (none, to) = finish(&http, &answer, "another-browser").await;
    assert!(none.is_none());
    assert!(to.contains("signin_error=signin_other_browser"), "{to}");

    // An account without a verified address, and one who is not a member.
    *hub.current.lock().unwrap() = "unverified".into();
    let (answer, bind) = begin(&app, &http, "").await;
    let (none, to) = finish(&http, &answer, &bind).await;
    assert!(none.is_none());
    assert!(to.contains("signin_error=github_no_verified_email"), "{to}");
    *hub.current.lock().unwrap() = "stranger".into();
    let (answer, bind) = begin(&app, &http, "").await;
    let (none, to) = finish(&http, &answer, &bind).await;
    assert!(none.is_none());
    assert!(to.contains("signin_error=not_a_member"), "{to}");

    // GitHub's refusal on its own page comes back as a refusal, not a session.
    let (answer, bind) = begin(&app, &http, "").await;
    let denied = answer.replacen("code=", "error=access_denied&code=", 1);
    let (none, to) = finish(&http, &denied, &bind).await;
    assert!(none.is_none());
    assert!(to.contains("signin_error=oidc_provider_refused"), "{to}");
}

#[tokio::test]
async fn a_member_of_another_organisation_signs_in_with_github_into_it() {
    let (github, _hub) = start_github().await;
    let app = app_with_github(&github).await;
    let made: Value = app
        .admin(Method::POST, "/api/v1/organisations")
        .json(&json!({"id": "acme", "name": "Acme lab"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = made["owner_token"]["secret"].as_str().unwrap();
    let r = app
        .http
        .post(app.url("/api/v1/members"))
        .bearer_auth(owner)
        .json(&json!({"email": "octo@lab.test", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let http = browser();
    // Without naming the organisation, the default one does not know them.
    let (answer, bind) = begin(&app, &http, "").await;
    let (none, to) = finish(&http, &answer, &bind).await;
    assert!(none.is_none());
    assert!(to.contains("signin_error=not_a_member"), "{to}");
    // Naming it: the state carries it through GitHub and back, and the session is acme's.
    let (answer, bind) = begin(&app, &http, "?org=acme").await;
    assert!(answer.contains("state=acme."), "{answer}");
    let (session, _) = finish(&http, &answer, &bind).await;
    let session = session.expect("a session in acme");
    assert!(session.starts_with("acme."), "{session}");
    let me: Value = http
        .get(app.url("/api/v1/me"))
        .header(header::COOKIE, format!("otafleet_session={session}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["organisation"]["id"], "acme", "{me}");
    assert_eq!(me["role"], "viewer");
}
