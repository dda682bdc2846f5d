//! Sign-ins under way (the `login_states` table): what a sign-in needs between sending the
//! browser to the provider and the provider sending it back — the `state` it is found by, the
//! SHA-256 of the browser-binding cookie, the nonce the ID token must carry, the PKCE verifier and
//! where to go afterwards. Each is taken once ([`take`] deletes it), so a replayed answer finds
//! nothing; unused ones end after [`LIFETIME_S`].

use crate::db::{self, Conn};
use crate::error::Result;

/// How long a person has to sign in at the provider.
pub const LIFETIME_S: i64 = 600;
/// At most this many sign-ins under way at once: beginning one is open to anyone, so without a
/// bound a peer could fill the disk with them.
pub const MAX_UNDER_WAY: i64 = 10_000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignIn {
    pub state: String,
    pub browser: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    pub expires_at: String,
}

pub(crate) async fn begin(conn: &mut Conn, s: &SignIn) -> Result<()> {
    // Old ones first: nothing else removes a sign-in nobody finished.
    db::query("DELETE FROM login_states WHERE expires_at <= ?")
        .bind(crate::time::now())
        .execute(&mut *conn)
        .await?;
    let under_way: i64 = db::query_scalar("SELECT COUNT(*) FROM login_states")
        .fetch_one(&mut *conn)
        .await?;
    if under_way >= MAX_UNDER_WAY {
        tracing::warn!(under_way, "sign-in refused: too many under way");
        return Err(crate::CoreError::Unavailable {
            code: "too_many_sign_ins",
            message: format!(
                "{under_way} sign-ins are under way (each lasts 10 minutes): try again in a few minutes"
            ),
        });
    }
    db::query(
        "INSERT INTO login_states (state, browser, nonce, pkce_verifier, return_to, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.state)
    .bind(&s.browser)
    .bind(&s.nonce)
    .bind(&s.pkce_verifier)
    .bind(&s.return_to)
    .bind(crate::time::now())
    .bind(&s.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Take the sign-in of `state` (deleting it, so it is used at most once); `None` when there is
/// none or it has expired.
pub(crate) async fn take(conn: &mut Conn, state: &str) -> Result<Option<SignIn>> {
    let found: Option<SignIn> = db::query_as(
        "DELETE FROM login_states WHERE state = ? \
         RETURNING state, browser, nonce, pkce_verifier, return_to, expires_at",
    )
    .bind(state)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.filter(|s| s.expires_at > crate::time::now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Fleet, Settings};

    fn sign_in(state: &str) -> SignIn {
        SignIn {
            state: state.into(),
            browser: "b".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            expires_at: crate::time::ago(-LIFETIME_S),
        }
    }

    /// Beginning a sign-in is open to anyone: at the bound the next one is refused and nothing
    /// is stored, and once the old ones have expired sign-ins begin again.
    #[tokio::test]
    async fn at_most_ten_thousand_sign_ins_are_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
        // MAX_UNDER_WAY - 1 rows in one statement, then the last one through the real path.
        db::query(
            "INSERT INTO login_states (state, browser, nonce, pkce_verifier, return_to, created_at, expires_at) \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
             SELECT 'filler-' || i, 'b', 'n', 'v', '/', ?, ? FROM n",
        )
        .bind(MAX_UNDER_WAY - 1)
        .bind(crate::time::now())
        .bind(crate::time::ago(-LIFETIME_S))
        .execute(fleet.db())
        .await
        .unwrap();
        fleet.sign_in_begin(&sign_in("last")).await.unwrap();
        let refused = fleet.sign_in_begin(&sign_in("one-too-many")).await;
        assert!(
            matches!(
                &refused,
                Err(crate::CoreError::Unavailable {
                    code: "too_many_sign_ins",
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(fleet.sign_in_take("one-too-many").await.unwrap().is_none());
        let count = || async {
            db::query_scalar::<i64>("SELECT COUNT(*) FROM login_states")
                .fetch_one(fleet.db())
                .await
                .unwrap()
        };
        assert_eq!(count().await, MAX_UNDER_WAY);
        // Ten minutes later the unfinished ones are gone at the next begin.
        db::query("UPDATE login_states SET expires_at = ?")
            .bind(crate::time::ago(1))
            .execute(fleet.db())
            .await
            .unwrap();
        fleet.sign_in_begin(&sign_in("later")).await.unwrap();
        assert_eq!(count().await, 1);
        assert!(fleet.sign_in_take("later").await.unwrap().is_some());
    }
}
