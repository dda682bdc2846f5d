//! Named API tokens (the `api_tokens` table): each has a name, a role ([`crate::access::Role`]),
//! an optional scope, and a secret that is shown once, when it is made, and kept only as its
//! SHA-256. Listed with when each was last used; revoked tokens stay listed (and keep their
//! name) so the audit log's `token:<name>` always names a row.

use serde::{Deserialize, Serialize};

use crate::access::{Principal, Role, Scope};
use crate::db::{self, Conn, Db};
use crate::error::{CoreError, Result};

/// What a secret starts with, so that a leaked one is recognisable (secret scanners, logs).
pub const SECRET_PREFIX: &str = "otf_";
/// How many characters of the secret are kept to tell tokens apart (`otf_` and 8 more).
const SHOWN_CHARS: usize = 12;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// `viewer`, `operator`, `admin` or `owner`.
    pub role: String,
    /// `upload:<project>`, or none.
    pub scope: Option<String>,
    /// The secret's first characters (the secret itself is never stored).
    pub prefix: String,
    pub created_at: String,
    /// Who made it (as the audit log names people and tokens).
    pub created_by: String,
    /// When it was last let in (updated at most once a minute).
    pub last_used_at: Option<String>,
    /// When it was revoked; a revoked token lets nobody in.
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// 1 to 64 characters, unique (e.g. `ci-blink`, `grafana`).
    pub name: String,
    /// At most the role of whoever makes it.
    pub role: Role,
    /// `upload:<project>`: the token may only upload images of that project.
    #[serde(default)]
    pub scope: Option<String>,
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedApiToken {
    pub token: ApiToken,
    /// Send as `Authorization: Bearer <secret>`. Not shown again: copy it now.
    pub secret: String,
}

/// A checked-in secret's token, as [`lookup`] finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Found {
    id: i64,
    name: String,
    role: String,
    scope: Option<String>,
}

pub(crate) fn digest(secret: &str) -> String {
    crate::checkin::hash_token(secret)
}

/// `otf_<secret>` in the default organisation, `otf_<organisation>.<secret>` in another: the
/// server sends a request to the organisation its credential names (and only that
/// organisation's database can know the secret).
fn new_secret(org_prefix: &str) -> String {
    format!(
        "{SECRET_PREFIX}{org_prefix}{}",
        crate::access::random_secret()
    )
}

/// The name, trimmed: 1 to 64 characters, no control or invisible characters.
fn clean_name(name: &str) -> Result<String> {
    let name = name.trim();
    let bad = |why: &str| {
        CoreError::invalid(
            "invalid_name",
            format!("the token's name {why}: give 1 to 64 letters, digits, spaces, '.', '_' or '-', e.g. 'ci-blink'"),
        )
    };
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if name.chars().count() > 64 {
        return Err(bad("is longer than 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'))
    {
        return Err(bad(&format!("'{name}' has other characters")));
    }
    Ok(name.to_owned())
}

pub(crate) async fn list(db: &Db) -> Result<Vec<ApiToken>> {
    db::query_as(
        "SELECT id, name, role, scope, prefix, created_at, created_by, last_used_at, revoked_at \
         FROM api_tokens ORDER BY revoked_at IS NOT NULL, id DESC",
    )
    .fetch_all(db)
    .await
}

async fn get(conn: &mut Conn, id: i64) -> Result<ApiToken> {
    db::query_as(
        "SELECT id, name, role, scope, prefix, created_at, created_by, last_used_at, revoked_at \
         FROM api_tokens WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| CoreError::not_found(format!("API token {id}")))
}

/// Check a new token before anything is written: its name, its scope, and that `by` may hand
/// out its role (nobody makes a token above their own role).
pub(crate) fn check_new(new: &NewApiToken, by: &Principal) -> Result<(String, Option<Scope>)> {
    let name = clean_name(&new.name)?;
    let scope = new
        .scope
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(Scope::parse)
        .transpose()?;
    if new.role > by.role {
        return Err(CoreError::Forbidden {
            code: "role_insufficient",
            message: format!(
                "a {} cannot make a token with the {} role: pick {} or a lower role",
                by.role, new.role, by.role
            ),
        });
    }
    if by.scope.is_some() {
        return Err(CoreError::Forbidden {
            code: "token_scope",
            message: "a scoped token cannot make tokens".into(),
        });
    }
    Ok((name, scope))
}

pub(crate) async fn create(
    conn: &mut Conn,
    name: &str,
    role: Role,
    scope: Option<&Scope>,
    by: &str,
    org_prefix: &str,
) -> Result<CreatedApiToken> {
    let taken: Option<i64> = db::query_scalar("SELECT id FROM api_tokens WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    if taken.is_some() {
        return Err(CoreError::Unavailable {
            code: "token_exists",
            message: format!(
                "there is already a token named '{name}' (revoked tokens keep their names, so the audit log stays readable): pick another name"
            ),
        });
    }
    let secret = new_secret(org_prefix);
    let id: i64 = db::query_scalar(
        "INSERT INTO api_tokens (name, role, scope, digest, prefix, created_at, created_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(scope.map(Scope::to_text))
    .bind(digest(&secret))
    .bind(secret[..SHOWN_CHARS].to_owned())
    .bind(crate::time::now())
    .bind(by)
    .fetch_one(&mut *conn)
    .await?;
    let token = get(conn, id).await?;
    Ok(CreatedApiToken { token, secret })
}

/// Revoke a token (again is fine: the first time stays recorded).
pub(crate) async fn revoke(conn: &mut Conn, id: i64) -> Result<ApiToken> {
    db::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(crate::time::now())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get(conn, id).await
}

/// The principal a secret stands for, if it is a live token's, with the token's id.
pub(crate) async fn lookup(db: &Db, secret: &str) -> Result<Option<(i64, Principal)>> {
    if !secret.starts_with(SECRET_PREFIX) {
        return Ok(None);
    }
    let found: Option<Found> = db::query_as(
        "SELECT id, name, role, scope FROM api_tokens \
         WHERE digest = ? AND revoked_at IS NULL",
    )
    .bind(digest(secret))
    .fetch_optional(db)
    .await?;
    let Some(f) = found else { return Ok(None) };
    let Some(role) = Role::parse(&f.role) else {
        tracing::warn!(token = %f.name, role = %f.role, "API token with an unknown role refused");
        return Ok(None);
    };
    let scope = match f.scope.as_deref().map(Scope::parse).transpose() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(token = %f.name, error = %e, "API token with an unknown scope refused");
            return Ok(None);
        }
    };
    Ok(Some((
        f.id,
        Principal {
            actor: format!("token:{}", f.name),
            role,
            scope,
        },
    )))
}

pub(crate) async fn touch(conn: &mut Conn, id: i64, at: &str) -> Result<()> {
    db::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(clean_name("  ci-blink ").unwrap(), "ci-blink");
        assert_eq!(clean_name("Grafana 2").unwrap(), "Grafana 2");
        for bad in ["", "   ", "a\u{202e}b", "x/y", &"n".repeat(65)] {
            assert_eq!(
                clean_name(bad).unwrap_err().code(),
                "invalid_name",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn secrets_are_long_random_and_recognisable() {
        let (a, b) = (new_secret(""), new_secret(""));
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == 4 + 43, "{a}");
    }

    #[test]
    fn nobody_hands_out_more_than_their_own_role() {
        let admin = Principal {
            actor: "token:a".into(),
            role: Role::Admin,
            scope: None,
        };
        let new = |role| NewApiToken {
            name: "x".into(),
            role,
            scope: None,
        };
        assert!(check_new(&new(Role::Admin), &admin).is_ok());
        assert_eq!(
            check_new(&new(Role::Owner), &admin).unwrap_err().code(),
            "role_insufficient"
        );
        assert!(check_new(&new(Role::Owner), &Principal::owner("admin")).is_ok());
        let scoped = NewApiToken {
            scope: Some("upload:blink".into()),
            ..new(Role::Operator)
        };
        assert_eq!(
            check_new(&scoped, &admin).unwrap().1,
            Some(Scope::Upload("blink".into()))
        );
    }
}
