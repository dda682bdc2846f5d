//! Sign-in with GitHub (docs/access.md). GitHub speaks OAuth2, not OpenID Connect: there is no
//! ID token to verify, so who signed in is what GitHub's API says with the access token the
//! code was traded for — the account's primary, **verified** e-mail address
//! (`GET /user/emails`, scope `user:email`). The flow is the authorization code with PKCE
//! (S256) through the `oauth2` crate; the state is kept server-side and bound to the browser
//! exactly as for OpenID Connect (`routes/sign_in.rs`). Whether the person may sign in is the
//! `members` table's business, as for every sign-in.
//!
//! `--github-url` and `--github-api-url` point at a GitHub Enterprise Server (or, in the tests,
//! at a server on loopback that answers as GitHub's documented endpoints do).

use axum::http::StatusCode;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use crate::error::ApiError;
use crate::oidc::Identity;

/// What `--github-*` configured.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    pub client_id: String,
    pub client_secret: String,
    /// `https://github.com`, or a GitHub Enterprise Server's address.
    pub url: String,
    /// `https://api.github.com`, or a GitHub Enterprise Server's `<address>/api/v3`.
    pub api_url: String,
    /// The callback URL registered with the OAuth app; by default the address the browser used,
    /// `<scheme>://<host>/api/v1/auth/github/callback`.
    pub redirect_url: Option<String>,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct GitHub {
    pub config: GitHubConfig,
    client: Client,
    http: oauth2::reqwest::Client,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("url", &self.config.url)
            .field("api_url", &self.config.api_url)
            .field("client_id", &self.config.client_id)
            .finish()
    }
}

fn refused(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::with_status(StatusCode::UNAUTHORIZED, code, message)
}

fn failed(message: String) -> ApiError {
    tracing::warn!(%message, "GitHub sign-in failed");
    ApiError::with_status(StatusCode::BAD_GATEWAY, "github_failed", message)
}

#[derive(Debug, Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
    name: Option<String>,
}

impl GitHub {
    pub fn new(config: GitHubConfig) -> Result<Self, String> {
        let base = config.url.trim_end_matches('/');
        let auth = AuthUrl::new(format!("{base}/login/oauth/authorize"))
            .map_err(|e| format!("--github-url '{}' is not a URL: {e}", config.url))?;
        let token = TokenUrl::new(format!("{base}/login/oauth/access_token"))
            .map_err(|e| format!("--github-url '{}' is not a URL: {e}", config.url))?;
        url::Url::parse(&config.api_url)
            .map_err(|e| format!("--github-api-url '{}' is not a URL: {e}", config.api_url))?;
        let client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(config.client_secret.clone()))
            .set_auth_uri(auth)
            .set_token_uri(token);
        let http = oauth2::reqwest::Client::builder()
            // Following redirects would let an answer point otafleet anywhere (SSRF).
            .redirect(oauth2::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            // GitHub's API refuses requests without a User-Agent.
            .user_agent(concat!("otafleet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the HTTP client for GitHub sign-in: {e}"))?;
        Ok(Self {
            config,
            client,
            http,
        })
    }

    /// Where to send the browser: GitHub's authorize page with our state, the PKCE challenge and
    /// the `user:email` scope.
    pub fn authorize_url(
        &self,
        redirect: &str,
        state: String,
        challenge: PkceCodeChallenge,
    ) -> Result<String, ApiError> {
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| failed(format!("the callback URL is not a URL: {e}")))?;
        let (url, _) = self
            .client
            .clone()
            .set_redirect_uri(redirect)
            .authorize_url(move || CsrfToken::new(state))
            .add_scope(Scope::new("user:email".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(url.to_string())
    }

    /// Trade the code for an access token, then ask GitHub for the account's primary verified
    /// e-mail. 401 `github_code_refused` when GitHub refuses the code (used already, expired,
    /// wrong verifier), 401 `github_no_verified_email` without a verified address; 502 when
    /// GitHub cannot be reached.
    pub async fn identify(
        &self,
        redirect: &str,
        code: String,
        verifier: String,
    ) -> Result<Identity, ApiError> {
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| failed(format!("the callback URL is not a URL: {e}")))?;
        let token = self
            .client
            .clone()
            .set_redirect_uri(redirect)
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "GitHub refused the sign-in's code");
                refused(
                    "github_code_refused",
                    "GitHub refused this sign-in (its code was used already or has expired): sign in again",
                )
            })?;
        let access = token.access_token().secret();
        let api = self.config.api_url.trim_end_matches('/');
        let emails: Vec<Email> = self.get(&format!("{api}/user/emails"), access).await?;
        let email = emails
            .iter()
            .find(|e| e.primary && e.verified)
            .or_else(|| emails.iter().find(|e| e.verified))
            .map(|e| e.email.clone())
            .ok_or_else(|| {
                refused(
                    "github_no_verified_email",
                    "your GitHub account has no verified e-mail address: verify one at GitHub (Settings → Emails) and sign in again",
                )
            })?;
        let name = match self.get::<User>(&format!("{api}/user"), access).await {
            Ok(u) => Some(u.name.unwrap_or(u.login)),
            Err(_) => None,
        };
        Ok(Identity { email, name })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        access: &str,
    ) -> Result<T, ApiError> {
        let r = self
            .http
            .get(url)
            .bearer_auth(access)
            .header(
                oauth2::reqwest::header::ACCEPT,
                "application/vnd.github+json",
            )
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| failed(format!("GitHub's API cannot be reached ({url}): {e}")))?;
        if !r.status().is_success() {
            return Err(failed(format!(
                "GitHub's API answered {} for {url}",
                r.status()
            )));
        }
        let body = r
            .bytes()
            .await
            .map_err(|e| failed(format!("GitHub's API answer was cut ({url}): {e}")))?;
        serde_json::from_slice(&body).map_err(|e| {
            failed(format!(
                "GitHub's API answered something unexpected for {url}: {e}"
            ))
        })
    }
}
