//! Sign-in through an OpenID Connect provider (docs/access.md): the authorization code flow with
//! PKCE, the `state` kept server-side and bound to the browser, the ID token's signature, issuer,
//! audience, expiry and nonce checked by the `openidconnect` crate. The provider's metadata and
//! keys are fetched on the first sign-in and kept; an ID token signed with a key they do not
//! have (the provider rotated its keys) makes them fetched again, once, before it is refused.
//!
//! Which person signed in is the provider's verified e-mail address (from the ID token, else
//! from its userinfo endpoint); whether they may is the `members` table's business (the core).

use axum::http::StatusCode;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use tokio::sync::RwLock;

use crate::error::ApiError;

/// What `--oidc-*` configured.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL (its `/.well-known/openid-configuration` is read from there).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// What the sign-in button says: "Sign in with <label>".
    pub label: String,
    /// The redirect URI registered at the provider; by default the address the browser used,
    /// `<scheme>://<host>/api/v1/auth/oidc/callback`.
    pub redirect_url: Option<String>,
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub email: String,
    pub name: Option<String>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("config", &self.config)
            .finish()
    }
}

pub struct Oidc {
    pub config: OidcConfig,
    http: openidconnect::reqwest::Client,
    metadata: RwLock<Option<CoreProviderMetadata>>,
}

fn refused(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::with_status(StatusCode::UNAUTHORIZED, code, message)
}

fn provider_failed(message: String) -> ApiError {
    tracing::warn!(%message, "OpenID provider failed");
    ApiError::with_status(StatusCode::BAD_GATEWAY, "oidc_provider_failed", message)
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Self, String> {
        IssuerUrl::new(config.issuer.clone())
            .map_err(|e| format!("--oidc-issuer '{}' is not a URL: {e}", config.issuer))?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let a provider's answer point otafleet anywhere (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| format!("cannot make the HTTP client for sign-in: {e}"))?;
        Ok(Self {
            config,
            http,
            metadata: RwLock::new(None),
        })
    }

    /// The provider's metadata and keys: kept from the last fetch unless `fresh`.
    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, ApiError> {
        if !fresh {
            if let Some(m) = self.metadata.read().await.as_ref() {
                return Ok(m.clone());
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| provider_failed(format!("bad issuer URL: {e}")))?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                provider_failed(format!(
                    "could not read the sign-in provider's configuration at {} ({e}); check --oidc-issuer and that the provider is up",
                    self.config.issuer
                ))
            })?;
        tracing::info!(issuer = %self.config.issuer, refetched = fresh, "OpenID provider metadata and keys fetched");
        *self.metadata.write().await = Some(m.clone());
        Ok(m)
    }

    fn client(
        &self,
        m: CoreProviderMetadata,
        redirect: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ApiError,
    > {
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| provider_failed(format!("bad redirect URL {redirect}: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            m,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser to sign in.
    pub async fn authorize_url(
        &self,
        redirect: &str,
        state: String,
        nonce: String,
        challenge: PkceCodeChallenge,
    ) -> Result<String, ApiError> {
        let client = self.client(self.metadata(false).await?, redirect)?;
        let (url, _, _) = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(url.to_string())
    }

    /// Trade the provider's code for tokens and say who signed in: 401 when the provider refuses
    /// the code (used already, expired, wrong PKCE verifier), when the ID token does not verify
    /// or carries another nonce, or when no verified e-mail address comes with it.
    pub async fn identify(
        &self,
        redirect: &str,
        code: String,
        verifier: String,
        nonce: &str,
    ) -> Result<Identity, ApiError> {
        let client = self.client(self.metadata(false).await?, redirect)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| provider_failed(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the provider refused the sign-in's code");
                refused(
                    "oidc_code_refused",
                    "the sign-in provider refused this sign-in (its code was used already or has expired): sign in again",
                )
            })?;
        let id_token = token.id_token().ok_or_else(|| {
            refused(
                "oidc_no_id_token",
                "the provider answered without an ID token; is it an OpenID Connect provider?",
            )
        })?;
        let nonce = Nonce::new(nonce.to_owned());
        let verified = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // Signed with a key we do not have: the provider may have rotated its keys.
                let fresh = self.client(self.metadata(true).await?, redirect)?;
                let verifier = fresh.id_token_verifier();
                let claims = id_token.claims(&verifier, &nonce).cloned();
                claims
            }
            other => other.cloned(),
        };
        let claims = verified.map_err(|e| match e {
            ClaimsVerificationError::InvalidNonce(_) => {
                tracing::warn!(error = %e, "ID token with another nonce refused");
                refused(
                    "oidc_nonce",
                    "the sign-in's ID token was not issued for this sign-in (wrong nonce): sign in again",
                )
            }
            e => {
                tracing::warn!(error = %e, "ID token refused");
                refused(
                    "oidc_id_token_invalid",
                    format!("the provider's ID token did not verify ({e}): sign in again"),
                )
            }
        })?;
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned());
        if let (Some(email), verified) = (claims.email(), claims.email_verified()) {
            if verified != Some(false) {
                return Ok(Identity {
                    email: email.as_str().to_owned(),
                    name,
                });
            }
        }
        // Many providers send the address from the userinfo endpoint only.
        let info: CoreUserInfoClaims = client
            .user_info(token.access_token().clone(), Some(claims.subject().clone()))
            .map_err(|_| {
                refused(
                    "oidc_no_email",
                    "the provider gave no e-mail address and has no userinfo endpoint; allow the 'email' scope for otafleet at the provider",
                )
            })?
            .request_async(&self.http)
            .await
            .map_err(|e| provider_failed(format!("the provider's userinfo endpoint failed: {e}")))?;
        match (info.email(), info.email_verified()) {
            (Some(email), v) if v != Some(false) => Ok(Identity {
                email: email.as_str().to_owned(),
                name: name.or_else(|| {
                    info.name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_owned())
                }),
            }),
            (Some(_), _) => Err(refused(
                "oidc_email_unverified",
                "the provider says this e-mail address is not verified; verify it there first",
            )),
            (None, _) => Err(refused(
                "oidc_no_email",
                "the provider gave no e-mail address; allow the 'email' scope for otafleet at the provider",
            )),
        }
    }
}
