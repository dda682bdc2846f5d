//! [`Fleet`] methods for who may do what (docs/access.md): named API tokens
//! ([`crate::api_tokens`]), members ([`crate::members`]), their sign-ins
//! ([`crate::sign_ins`]) and sessions ([`crate::sessions`]), and resolving a presented secret or
//! cookie to a [`Principal`].

use std::time::{Duration, Instant};

use crate::access::{Principal, Role};
use crate::api_tokens::{self, ApiToken, CreatedApiToken, NewApiToken};
use crate::error::{CoreError, Result};
use crate::members::{self, NewTeamMember, TeamMember, TeamMemberPatch};
use crate::sessions::{self, Session};
use crate::sign_ins::{self, SignIn};
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
            let created = api_tokens::create(
                &mut tx,
                &name,
                new.role,
                scope.as_ref(),
                &by.actor,
                &self.secret_prefix(),
            )
            .await?;
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
        let Some((id, principal)) = api_tokens::lookup(self.db(), secret).await? else {
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
            // Through the one writer like every write (a token's row, no device's: nothing
            // remembered for check-ins changes, so the quiet lock).
            let noted = async {
                let _w = self.quiet_write_lock().await;
                let mut tx = db::begin_write(self.db()).await?;
                api_tokens::touch(&mut tx, id, &crate::time::now()).await?;
                tx.commit().await
            };
            if let Err(e) = noted.await {
                tracing::warn!(token = %principal.actor, error = %e, "could not note the token's last use");
            }
        }
        Ok(Some(principal))
    }

    /// Every member, by e-mail.
    pub async fn members(&self) -> Result<Vec<TeamMember>> {
        members::list(self.db()).await
    }

    /// Add a member (role at most `by`'s). 422 `invalid_email`, 409 `member_exists`.
    pub async fn member_add(&self, new: NewTeamMember, by: &Principal) -> Result<TeamMember> {
        let email = members::clean_email(&new.email)?;
        members::check_grant(by, new.role)?;
        let m = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let m = members::add(&mut tx, &email, new.role, &by.actor).await?;
            tx.commit().await?;
            m
        };
        tracing::info!(member = %m.email, role = %m.role, by = %by.actor, "member added");
        Ok(m)
    }

    /// Change a member's role: neither the member's present role nor the new one may be above
    /// `by`'s. Takes effect on their next request (sessions read the role each time).
    pub async fn member_set_role(
        &self,
        id: i64,
        patch: TeamMemberPatch,
        by: &Principal,
    ) -> Result<TeamMember> {
        members::check_grant(by, patch.role)?;
        let m = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let old = members::get(&mut tx, id).await?;
            check_over(by, &old)?;
            let m = members::set_role(&mut tx, id, patch.role).await?;
            tx.commit().await?;
            m
        };
        tracing::info!(member = %m.email, role = %m.role, by = %by.actor, "member's role changed");
        Ok(m)
    }

    /// Remove a member: their sessions end now, and their next sign-in is refused.
    pub async fn member_remove(&self, id: i64, by: &Principal) -> Result<()> {
        let _w = self.write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        let old = members::get(&mut tx, id).await?;
        check_over(by, &old)?;
        members::remove(&mut tx, id).await?;
        tx.commit().await?;
        tracing::info!(member = %old.email, by = %by.actor, "member removed; their sessions ended");
        Ok(())
    }

    /// Keep a sign-in under way until the provider answers.
    pub async fn sign_in_begin(&self, s: &SignIn) -> Result<()> {
        let _w = self.write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        sign_ins::begin(&mut tx, s).await?;
        tx.commit().await
    }

    /// Take the sign-in of `state`, once.
    pub async fn sign_in_take(&self, state: &str) -> Result<Option<SignIn>> {
        let _w = self.write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        let s = sign_ins::take(&mut tx, state).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// A person the provider vouched for signs in: a session for the member of that e-mail
    /// (the cookie's secret is returned), or 403 `not_a_member`.
    pub async fn sign_in_complete(&self, email: &str, name: Option<&str>) -> Result<String> {
        let Some(member) = members::by_email(self.db(), email).await? else {
            tracing::warn!(%email, "sign-in refused: not a member");
            return Err(CoreError::Forbidden {
                code: "not_a_member",
                message: format!(
                    "{email} signed in at the provider but is not a member of this otafleet: ask an admin to add that address on the Team page"
                ),
            });
        };
        let _w = self.write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        sessions::purge_expired(&mut tx).await?;
        let secret = sessions::create(&mut tx, member.id, &self.secret_prefix()).await?;
        members::signed_in(&mut tx, member.id, name).await?;
        tx.commit().await?;
        tracing::info!(member = %member.email, role = %member.role, "signed in");
        Ok(secret)
    }

    /// The live session of a cookie's secret, with its member's role now.
    pub async fn session(&self, secret: &str) -> Result<Option<Session>> {
        sessions::lookup(self.db(), secret).await
    }

    /// Sign out: end the session of a cookie's secret.
    pub async fn session_end(&self, secret: &str) -> Result<()> {
        let _w = self.write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        sessions::end(&mut tx, secret).await?;
        tx.commit().await
    }

    /// Set a member's password (local accounts), or remove it with `None`. 422 `weak_password`.
    /// Their sessions end: a password set by someone else is usually a reset after a leak.
    pub async fn member_set_password(
        &self,
        id: i64,
        password: Option<String>,
        by: &Principal,
    ) -> Result<TeamMember> {
        if let Some(p) = &password {
            crate::passwords::check_new(p)?;
        }
        let hash = match password {
            Some(p) => Some(crate::passwords::hash(p).await?),
            None => None,
        };
        let m = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let old = members::get(&mut tx, id).await?;
            check_over(by, &old)?;
            members::set_password(&mut tx, id, hash.as_deref()).await?;
            sessions::end_for_member(&mut tx, id).await?;
            let m = members::get(&mut tx, id).await?;
            tx.commit().await?;
            m
        };
        tracing::info!(member = %m.email, set = m.has_password, by = %by.actor, "member's password changed; their sessions ended");
        self.password_failures().succeeded(&m.email);
        Ok(m)
    }

    /// Check an address and password (local accounts): the member, or 401 `bad_credentials` —
    /// the same answer, taking as long, for an unknown address, a member without a password and
    /// a wrong password — or, after 5 wrong ones in 15 minutes, 409 `too_many_attempts`.
    async fn password_member(&self, email: &str, password: &str) -> Result<TeamMember> {
        let email = email.trim().to_lowercase();
        self.password_failures().check(&email)?;
        let found = members::with_password(self.db(), &email).await?;
        let stored = found.as_ref().and_then(|(_, h)| h.clone());
        let ok = crate::passwords::verify(password.to_owned(), stored.clone()).await;
        match found {
            Some((m, Some(_))) if ok => {
                self.password_failures().succeeded(&email);
                Ok(m)
            }
            _ => {
                self.password_failures().failed(&email);
                tracing::warn!(%email, "password sign-in refused");
                Err(CoreError::Unauthorized {
                    code: "bad_credentials",
                    message: "that address and password do not match a member with a password: check both, or ask an admin to set your password".into(),
                })
            }
        }
    }

    /// Sign in with an address and password: a session's secret, as [`Fleet::sign_in_complete`].
    pub async fn password_sign_in(&self, email: &str, password: &str) -> Result<String> {
        let m = self.password_member(email, password).await?;
        self.sign_in_complete(&m.email, None).await
    }

    /// A member changes their own password, proving the current one (same refusals as signing
    /// in; 422 `weak_password` for the new one). Their other sessions stay.
    pub async fn password_change(&self, email: &str, current: &str, new: String) -> Result<()> {
        crate::passwords::check_new(&new)?;
        let m = self.password_member(email, current).await?;
        let hash = crate::passwords::hash(new).await?;
        let _w = self.write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        members::set_password(&mut tx, m.id, Some(&hash)).await?;
        tx.commit().await?;
        tracing::info!(member = %m.email, "member changed their password");
        Ok(())
    }
}

/// Nobody changes or removes a member whose role is above their own.
fn check_over(by: &Principal, member: &TeamMember) -> Result<()> {
    match Role::parse(&member.role) {
        Some(r) if r <= by.role => Ok(()),
        _ => Err(CoreError::Forbidden {
            code: "role_insufficient",
            message: format!(
                "{} is {}, above you ({}): only someone of that role may change them",
                member.email, member.role, by.role
            ),
        }),
    }
}
