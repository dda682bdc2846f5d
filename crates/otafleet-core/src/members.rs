//! Members (the `members` table): the people who may sign in, each by the e-mail address their
//! sign-in provider vouches for, with a role ([`crate::access::Role`]). Removing a member ends
//! their sessions (the `sessions` rows go with the member) and refuses their next sign-in.

use serde::{Deserialize, Serialize};

use crate::access::{Principal, Role};
use crate::db::{self, Conn, Db};
use crate::error::{CoreError, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TeamMember {
    pub id: i64,
    /// Lower-cased.
    pub email: String,
    /// `viewer`, `operator`, `admin` or `owner`.
    pub role: String,
    /// The name the provider gave at the last sign-in.
    pub name: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub last_login_at: Option<String>,
    /// Whether a password is set (local accounts); the hash itself is never answered.
    pub has_password: bool,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeamMember {
    /// The address the person's sign-in provider answers (matched without regard to case).
    pub email: String,
    /// At most the role of whoever adds them.
    pub role: Role,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamMemberPatch {
    pub role: Role,
}

/// An e-mail address, trimmed and lower-cased: one `@`, something on each side, no spaces or
/// control characters, at most 254 characters.
pub(crate) fn clean_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(CoreError::invalid(
            "invalid_email",
            format!("'{email}' is not an e-mail address; give the one the person signs in with, e.g. alice@lab.example"),
        ))
    }
}

/// Nobody gives a role above their own, nor changes a member whose role is above their own.
pub(crate) fn check_grant(by: &Principal, role: Role) -> Result<()> {
    if role > by.role {
        return Err(CoreError::Forbidden {
            code: "role_insufficient",
            message: format!(
                "a {} cannot give the {} role: pick {} or a lower role",
                by.role, role, by.role
            ),
        });
    }
    Ok(())
}

/// 404 when a write touched no member.
fn found(rows: u64, id: i64) -> Result<()> {
    if rows == 0 {
        Err(CoreError::not_found(format!("member {id}")))
    } else {
        Ok(())
    }
}

const COLUMNS: &str = "id, email, role, name, created_at, created_by, last_login_at, \
    (password_hash IS NOT NULL) AS has_password";

pub(crate) async fn list(db: &Db) -> Result<Vec<TeamMember>> {
    db::query_as(&format!("SELECT {COLUMNS} FROM members ORDER BY email"))
        .fetch_all(db)
        .await
}

pub(crate) async fn get(conn: &mut Conn, id: i64) -> Result<TeamMember> {
    db::query_as(&format!("SELECT {COLUMNS} FROM members WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("member {id}")))
}

pub(crate) async fn by_email(db: &Db, email: &str) -> Result<Option<TeamMember>> {
    db::query_as(&format!("SELECT {COLUMNS} FROM members WHERE email = ?"))
        .bind(email.trim().to_lowercase())
        .fetch_optional(db)
        .await
}

pub(crate) async fn add(conn: &mut Conn, email: &str, role: Role, by: &str) -> Result<TeamMember> {
    let taken: Option<i64> = db::query_scalar("SELECT id FROM members WHERE email = ?")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
    if taken.is_some() {
        return Err(CoreError::Unavailable {
            code: "member_exists",
            message: format!("{email} is a member already; change their role instead"),
        });
    }
    let id: i64 = db::query_scalar(
        "INSERT INTO members (email, role, created_at, created_by) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(email)
    .bind(role.as_str())
    .bind(crate::time::now())
    .bind(by)
    .fetch_one(&mut *conn)
    .await?;
    get(conn, id).await
}

pub(crate) async fn set_role(conn: &mut Conn, id: i64, role: Role) -> Result<TeamMember> {
    let done = db::query("UPDATE members SET role = ? WHERE id = ?")
        .bind(role.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(done.rows_affected(), id)?;
    get(conn, id).await
}

/// Remove a member; their sessions go with them (foreign key, `ON DELETE CASCADE`).
pub(crate) async fn remove(conn: &mut Conn, id: i64) -> Result<()> {
    // Explicitly too, not only through the foreign key.
    crate::sessions::end_for_member(conn, id).await?;
    let done = db::query("DELETE FROM members WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(done.rows_affected(), id)
}

/// A member and their password hash, by e-mail.
pub(crate) async fn with_password(
    db: &Db,
    email: &str,
) -> Result<Option<(TeamMember, Option<String>)>> {
    let Some(m) = by_email(db, email).await? else {
        return Ok(None);
    };
    let hash: Option<String> = db::query_scalar("SELECT password_hash FROM members WHERE id = ?")
        .bind(m.id)
        .fetch_one(db)
        .await?;
    Ok(Some((m, hash)))
}

/// Set (or with `None`, remove) a member's password hash.
pub(crate) async fn set_password(conn: &mut Conn, id: i64, hash: Option<&str>) -> Result<()> {
    let done = db::query("UPDATE members SET password_hash = ? WHERE id = ?")
        .bind(hash)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(done.rows_affected(), id)
}

pub(crate) async fn signed_in(conn: &mut Conn, id: i64, name: Option<&str>) -> Result<()> {
    db::query("UPDATE members SET last_login_at = ?, name = COALESCE(?, name) WHERE id = ?")
        .bind(crate::time::now())
        .bind(name.map(|n| n.chars().take(100).collect::<String>()))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(clean_email(" Alice@Lab.Test ").unwrap(), "alice@lab.test");
        for bad in ["", "alice", "@lab", "alice@", "a b@lab", "a@b@c"] {
            assert_eq!(
                clean_email(bad).unwrap_err().code(),
                "invalid_email",
                "{bad}"
            );
        }
    }
}
