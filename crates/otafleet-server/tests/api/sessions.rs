//! Members and their sessions (docs/access.md), against the real server: the session cookie
//! lets a member in with their role, every change needs the session's CSRF token, signing out
//! and removing the member end the session, and a role change applies at the next request.
//! The sign-in itself (a real OpenID provider in Chromium) is `ui/e2e/sign-in.test.mjs`; here
//! the session is opened by the core as the provider's answer would.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const COOKIE: &str = "otafleet_session";

async fn add_member(app: &TestApp, email: &str, role: &str) -> i64 {
    let r = app
        .admin(Method::POST, "/api/v1/members")
        .json(&json!({"email": email, "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

fn with_session(
    app: &TestApp,
    method: Method,
    path: &str,
    secret: &str,
) -> reqwest::RequestBuilder {
    app.http
        .request(method, app.url(path))
        .header("cookie", format!("{COOKIE}={secret}"))
}

async fn code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn a_session_lets_its_member_in_with_their_role_and_every_change_needs_its_csrf_token() {
    let app = TestApp::start().await;
    let id = add_member(&app, "Alice@Lab.Test", "operator").await;
    let secret = app
        .fleet
        .sign_in_complete("alice@lab.test", Some("Alice"))
        .await
        .unwrap();
    let me: Value = with_session(&app, Method::GET, "/api/v1/me", &secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["actor"], "user:alice@lab.test");
    assert_eq!(me["role"], "operator");
    let csrf = me["csrf"]
        .as_str()
        .expect("a session's CSRF token")
        .to_owned();

    let new_project = |csrf: Option<&str>, name: &str| {
        let mut r = with_session(&app, Method::POST, "/api/v1/projects", &secret)
            .json(&json!({"name": name}));
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    assert_eq!(
        code(new_project(None, "p1").await.unwrap()).await,
        (403, "csrf_failed".into())
    );
    assert_eq!(
        code(new_project(Some("forged"), "p1").await.unwrap()).await,
        (403, "csrf_failed".into())
    );
    assert_eq!(new_project(Some(&csrf), "p1").await.unwrap().status(), 201);
    let projects = app.get_json("/api/v1/projects").await;
    assert_eq!(projects.as_array().unwrap().len(), 1, "{projects}");
    let audit = app.get_json("/api/v1/audit?action=create_project").await;
    assert_eq!(audit[0]["actor"], "user:alice@lab.test");

    // A role change applies at the next request.
    let r = app
        .admin(Method::PATCH, &format!("/api/v1/members/{id}"))
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        code(new_project(Some(&csrf), "p2").await.unwrap()).await,
        (403, "role_insufficient".into())
    );

    // Signing out needs the token too, and ends the session for good.
    let out = |csrf: Option<&str>| {
        let mut r = with_session(&app, Method::POST, "/api/v1/auth/logout", &secret);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    assert_eq!(code(out(None).await.unwrap()).await.0, 403);
    let r = out(Some(&csrf)).await.unwrap();
    assert_eq!(r.status(), 204);
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("otafleet_session=;"), "{cleared}");
    let r = with_session(&app, Method::GET, "/api/v1/me", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (401, "session_ended".into()));
    app.stop().await;
}

#[tokio::test]
async fn removing_a_member_ends_their_sessions_and_refuses_their_next_sign_in() {
    let app = TestApp::start().await;
    let id = add_member(&app, "bob@lab.test", "admin").await;
    let secret = app
        .fleet
        .sign_in_complete("bob@lab.test", None)
        .await
        .unwrap();
    let r = with_session(&app, Method::GET, "/api/v1/devices", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.admin_delete(&format!("/api/v1/members/{id}")).await,
        204
    );
    let r = with_session(&app, Method::GET, "/api/v1/devices", &secret)
        .send()
        .await
        .unwrap();
    // The browser is told to drop the dead cookie.
    let dropped = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        dropped.starts_with("otafleet_session=;") && dropped.contains("Max-Age=0"),
        "{dropped}"
    );
    assert_eq!(code(r).await, (401, "session_ended".into()));
    let e = app
        .fleet
        .sign_in_complete("bob@lab.test", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_a_member");
    app.stop().await;
}

#[tokio::test]
async fn members_are_given_roles_up_to_their_makers_own() {
    let app = TestApp::start().await;
    add_member(&app, "carol@lab.test", "admin").await;
    let carol = app
        .fleet
        .sign_in_complete("carol@lab.test", None)
        .await
        .unwrap();
    let me: Value = with_session(&app, Method::GET, "/api/v1/me", &carol)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = me["csrf"].as_str().unwrap().to_owned();
    let add = |body: Value| {
        with_session(&app, Method::POST, "/api/v1/members", &carol)
            .header("x-csrf-token", csrf.clone())
            .json(&body)
            .send()
    };
    let r = add(json!({"email": "dave@lab.test", "role": "owner"}))
        .await
        .unwrap();
    assert_eq!(code(r).await, (403, "role_insufficient".into()));
    let r = add(json!({"email": "dave@lab.test", "role": "operator"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = add(json!({"email": "DAVE@lab.test", "role": "viewer"}))
        .await
        .unwrap();
    assert_eq!(code(r).await, (409, "member_exists".into()));
    let r = add(json!({"email": "not-an-address", "role": "viewer"}))
        .await
        .unwrap();
    assert_eq!(code(r).await, (422, "invalid_email".into()));
    // The owner (the admin token) is above carol: she cannot remove an owner member.
    let owner_id = add_member(&app, "erin@lab.test", "owner").await;
    let r = with_session(
        &app,
        Method::DELETE,
        &format!("/api/v1/members/{owner_id}"),
        &carol,
    )
    .header("x-csrf-token", csrf.clone())
    .send()
    .await
    .unwrap();
    assert_eq!(code(r).await, (403, "role_insufficient".into()));
    let e = app
        .fleet
        .sign_in_complete("stranger@lab.test", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_a_member");
    app.stop().await;
}

#[tokio::test]
async fn without_sign_in_flags_the_sign_in_routes_say_so_and_change_nothing() {
    let app = TestApp::start().await;
    let providers = app.public_json("/api/v1/auth/providers").await;
    assert_eq!(
        providers,
        json!({"oidc": null, "github": null, "password": false})
    );
    let r = app
        .http
        .get(app.url("/api/v1/auth/oidc/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (404, "sign_in_off".into()));
    // A made-up cookie opens nothing.
    let r = with_session(&app, Method::GET, "/api/v1/devices", "made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (401, "session_ended".into()));
    app.stop().await;
}

async fn local_accounts() -> TestApp {
    TestApp::start_info(otafleet_server::ServerInfo {
        local_accounts: true,
        ..Default::default()
    })
    .await
}

async fn password_sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/password"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_member_with_a_password_signs_in_and_every_miss_looks_the_same() {
    let app = local_accounts().await;
    let id = add_member(&app, "alice@lab.test", "operator").await;
    add_member(&app, "nopass@lab.test", "viewer").await;
    let set = |password: Value| {
        app.admin(Method::PUT, &format!("/api/v1/members/{id}/password"))
            .json(&json!({ "password": password }))
            .send()
    };
    assert_eq!(
        code(set(json!("short")).await.unwrap()).await,
        (422, "weak_password".into())
    );
    let r = set(json!("correct horse battery staple")).await.unwrap();
    assert_eq!(r.status(), 200);
    let member: Value = r.json().await.unwrap();
    assert_eq!(member["has_password"], true);
    assert!(!member.to_string().contains("argon2"), "{member}");

    let r = password_sign_in(&app, "Alice@Lab.Test", "correct horse battery staple").await;
    assert_eq!(r.status(), 204);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let secret = set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("otafleet_session=")
        .to_owned();
    let me: Value = with_session(&app, Method::GET, "/api/v1/me", &secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["actor"], "user:alice@lab.test");

    // Wrong password, unknown address, member without a password: one answer.
    let mut answers = Vec::new();
    for (email, password) in [
        ("alice@lab.test", "wrong horse battery staple"),
        ("nobody@lab.test", "correct horse battery staple"),
        ("nopass@lab.test", "correct horse battery staple"),
    ] {
        let r = password_sign_in(&app, email, password).await;
        assert!(r.headers().get("set-cookie").is_none());
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        answers.push((status, body["error"].clone()));
    }
    assert_eq!(answers[0].0, 401);
    assert_eq!(answers[0].1["code"], "bad_credentials");
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");

    // A form of another site cannot sign a browser in (JSON only).
    let r = app
        .http
        .post(app.url("/api/v1/auth/password"))
        .form(&[
            ("email", "alice@lab.test"),
            ("password", "correct horse battery staple"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // Setting a password ends the member's sessions.
    assert_eq!(
        set(json!("another long passphrase"))
            .await
            .unwrap()
            .status(),
        200
    );
    let r = with_session(&app, Method::GET, "/api/v1/me", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (401, "session_ended".into()));
    app.stop().await;
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_address_and_a_member_changes_their_own() {
    let app = local_accounts().await;
    let id = add_member(&app, "bob@lab.test", "viewer").await;
    let r = app
        .admin(Method::PUT, &format!("/api/v1/members/{id}/password"))
        .json(&json!({"password": "first long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let change = |current: &str, new: &str| {
        app.http
            .post(app.url("/api/v1/auth/password/change"))
            .json(&json!({"email": "bob@lab.test", "current": current, "new": new}))
            .send()
    };
    assert_eq!(
        code(change("first long passphrase", "short").await.unwrap()).await,
        (422, "weak_password".into())
    );
    assert_eq!(
        change("first long passphrase", "second long passphrase")
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        password_sign_in(&app, "bob@lab.test", "first long passphrase")
            .await
            .status(),
        401
    );
    assert_eq!(
        password_sign_in(&app, "bob@lab.test", "second long passphrase")
            .await
            .status(),
        204
    );
    for _ in 0..5 {
        let r = password_sign_in(&app, "bob@lab.test", "a wrong passphrase").await;
        assert_eq!(r.status(), 401);
    }
    // Locked: even the right one is refused now, without a check.
    let r = password_sign_in(&app, "bob@lab.test", "second long passphrase").await;
    assert_eq!(code(r).await, (409, "too_many_attempts".into()));
    app.stop().await;
}

#[tokio::test]
async fn without_local_accounts_no_password_is_taken() {
    let app = TestApp::start().await;
    let r = password_sign_in(&app, "alice@lab.test", "correct horse battery staple").await;
    assert_eq!(code(r).await, (404, "passwords_off".into()));
    assert_eq!(
        app.public_json("/api/v1/auth/providers").await,
        json!({"oidc": null, "github": null, "password": false})
    );
    app.stop().await;
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_sends_the_browser_back_with_the_reason() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let oidc = otafleet_server::oidc::Oidc::new(otafleet_server::oidc::OidcConfig {
        issuer,
        client_id: "otafleet".into(),
        client_secret: Some("s".into()),
        label: "Lab ID".into(),
        redirect_url: None,
    })
    .unwrap();
    let app = TestApp::start_info(otafleet_server::ServerInfo {
        oidc: Some(std::sync::Arc::new(oidc)),
        ..Default::default()
    })
    .await;
    let providers = app.public_json("/api/v1/auth/providers").await;
    assert_eq!(providers["oidc"]["label"], "Lab ID");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(app.url("/api/v1/auth/oidc/login?return_to=/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with("/?signin_error=oidc_provider_failed&signin_message="),
        "{to}"
    );
    assert!(r.headers().get("set-cookie").is_none(), "nothing begun");
    // A made-up answer opens nothing either.
    let r = http
        .get(app.url("/api/v1/auth/oidc/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with("/?signin_error=signin_state_unknown"),
        "{to}"
    );
    assert!(!r.headers().get_all("set-cookie").iter().any(|c| c
        .to_str()
        .unwrap()
        .starts_with("otafleet_session=")
        && !c.to_str().unwrap().starts_with("otafleet_session=;")));
    app.stop().await;
}
