//! [`Fleet`] methods for who may do what (docs/access.md): named API tokens
//! ([`crate::api_tokens`]) and resolving a presented secret to a [`Principal`].

use std::time::{Duration, Instant};

use crate::access::Principal;
use crate::api_tokens::{self, ApiToken, CreatedApiToken, NewApiToken};
use crate::error::Result;
use crate::{db, Fleet};

/// A token's `last_used_at` is written at most this often (per instance): using a token must not
/// mean a database write on every request.
const LAST_USE_EVERY: Duration = Duration::from_secs(60);

impl Fleet {
    /// Every named API token, live ones first, newest first. Secrets are never listed.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        api_tokens::list(self.db()).await
    }

    /// Make a named token. `by` may not hand out a role above its own (403
    /// `role_insufficient`); 422 for a bad name or scope, 409 `token_exists`. The secret is in
    /// the answer and nowhere else.
    pub async fn api_token_create(
        &self,
        new: NewApiToken,
        by: &Principal,
    ) -> Result<CreatedApiToken> {
        let (name, scope) = api_tokens::check_new(&new, by)?;
        let created = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let created =
                api_tokens::create(&mut tx, &name, new.role, scope.as_ref(), &by.actor).await?;
            tx.commit().await?;
            created
        };
        tracing::info!(token = %created.token.name, role = %created.token.role, by = %by.actor, "API token made");
        Ok(created)
    }

    /// Revoke a token: from now on it lets nobody in, on every instance (each request looks it
    /// up). 404 when there is none.
    pub async fn api_token_revoke(&self, id: i64) -> Result<ApiToken> {
        let token = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let t = api_tokens::revoke(&mut tx, id).await?;
            tx.commit().await?;
            t
        };
        tracing::info!(token = %token.name, "API token revoked");
        Ok(token)
    }

    /// The principal behind a named token's secret, or `None` when it is no live token's. Notes
    /// the use (at most once a minute per token; a failed note is logged, not fatal: the request
    /// itself changes nothing by being let in).
    pub async fn api_token_principal(&self, secret: &str) -> Result<Option<Principal>> {
        let Some((id, _last, principal)) = api_tokens::lookup(self.db(), secret).await? else {
            return Ok(None);
        };
        let due = {
            let mut used = self.token_uses();
            let now = Instant::now();
            match used.get(&id) {
                Some(at) if now.duration_since(*at) < LAST_USE_EVERY => false,
                _ => {
                    used.insert(id, now);
                    true
                }
            }
        };
        if due {
            if let Err(e) = api_tokens::touch(self.db(), id, &crate::time::now()).await {
                tracing::warn!(token = %principal.actor, error = %e, "could not note the token's last use");
            }
        }
        Ok(Some(principal))
    }
}
