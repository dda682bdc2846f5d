//! Sessions (the `sessions` table): a signed-in member's browser holds a random secret in an
//! HttpOnly cookie; the table keeps only its SHA-256, the member, an anti-CSRF token and when it
//! ends. In the database, so every instance of a cluster serves every session.

use crate::access::{Principal, Role};
use crate::db::{self, Conn, Db};
use crate::error::Result;

/// How long a session lasts from its sign-in.
pub const LIFETIME_S: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: i64,
    member_id: i64,
    csrf: String,
    expires_at: String,
}

/// A session as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub principal: Principal,
    /// What `X-CSRF-Token` must say on a change.
    pub csrf: String,
}

/// Open a session for a member: the cookie's secret (returned, never stored), after
/// `org_prefix` (`<organisation>.` outside the default organisation, so that the server knows
/// whose database to look in).
pub(crate) async fn create(conn: &mut Conn, member_id: i64, org_prefix: &str) -> Result<String> {
    let secret = format!("{org_prefix}{}", crate::access::random_secret());
    db::query(
        "INSERT INTO sessions (digest, member_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(crate::checkin::hash_token(&secret))
    .bind(member_id)
    .bind(crate::access::random_secret())
    .bind(crate::time::now())
    .bind(crate::time::ago(-LIFETIME_S))
    .execute(&mut *conn)
    .await?;
    Ok(secret)
}

/// The live session a cookie's secret opens, with its member's current role; `None` for an
/// unknown, ended or expired session, or one whose member is gone.
pub(crate) async fn lookup(db: &Db, secret: &str) -> Result<Option<Session>> {
    let row: Option<Row> =
        db::query_as("SELECT id, member_id, csrf, expires_at FROM sessions WHERE digest = ?")
            .bind(crate::checkin::hash_token(secret))
            .fetch_optional(db)
            .await?;
    let Some(row) = row else { return Ok(None) };
    if row.expires_at <= crate::time::now() {
        return Ok(None);
    }
    let mut conn = db.acquire().await?;
    let member = match crate::members::get(&mut conn, row.member_id).await {
        Ok(m) => m,
        Err(crate::CoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(role) = Role::parse(&member.role) else {
        return Ok(None);
    };
    Ok(Some(Session {
        id: row.id,
        principal: Principal {
            actor: format!("user:{}", member.email),
            role,
            scope: None,
        },
        csrf: row.csrf,
    }))
}

/// End the session a cookie's secret opens (signing out). Ending one already gone is fine.
pub(crate) async fn end(conn: &mut Conn, secret: &str) -> Result<()> {
    db::query("DELETE FROM sessions WHERE digest = ?")
        .bind(crate::checkin::hash_token(secret))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn end_for_member(conn: &mut Conn, member_id: i64) -> Result<()> {
    db::query("DELETE FROM sessions WHERE member_id = ?")
        .bind(member_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forget sessions that have ended by themselves.
pub(crate) async fn purge_expired(conn: &mut Conn) -> Result<u64> {
    Ok(db::query("DELETE FROM sessions WHERE expires_at <= ?")
        .bind(crate::time::now())
        .execute(&mut *conn)
        .await?
        .rows_affected())
}
