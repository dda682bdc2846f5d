//! Opening the SQLite database: WAL journal (readers never block the writer), a busy timeout so
//! concurrent check-ins queue instead of failing, foreign keys on, and the embedded migrations run
//! before anything else touches it.
//!
//! ## Why a connection is checked each time it goes back to the pool
//!
//! When a write fails because the disk is full (`SQLITE_FULL`, also `SQLITE_IOERR`), SQLite may
//! roll the whole transaction back by itself. sqlx does not see that: its `COMMIT` failed, the
//! `ROLLBACK` it sends when the transaction is dropped then fails too ("no transaction is
//! active"), and sqlx keeps counting that connection as one transaction deep. The next
//! `begin()` on that pooled connection therefore sends `SAVEPOINT` instead of `BEGIN`, and the
//! first transaction after that which is dropped on an error sends `ROLLBACK TO SAVEPOINT`, which
//! leaves SQLite's transaction open for good. From then on every "committed" write on that
//! connection is only a released savepoint inside a transaction that never commits: the server
//! answers 200, other connections never see the rows, every other writer waits for the lock and
//! gets "database is locked", and a restart loses all of it.
//!
//! So a connection returns to the pool only when sqlx and SQLite agree that no transaction is
//! open ([`state`]); otherwise it is closed (which makes SQLite roll back whatever it held) and
//! the pool opens a fresh one. Writers also start with `BEGIN IMMEDIATE` ([`begin_write`]), which
//! sqlx refuses to nest, so a write can never silently become a savepoint.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::error::Result;

/// The database's file name inside the data directory.
pub const FILE_NAME: &str = "otafleet.db";

/// Open (creating if needed) `otafleet.db` in `data_dir` and bring its schema up to date.
pub(crate) async fn open(data_dir: &Path) -> Result<SqlitePool> {
    open_with(data_dir, 8).await
}

async fn open_with(data_dir: &Path, max_connections: u32) -> Result<SqlitePool> {
    let path = data_dir.join(FILE_NAME);
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL in WAL mode: never corrupt, a process kill loses nothing committed; a power cut may
        // roll back the last check-ins, which the devices repeat anyway. Blobs are fsynced separately.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .after_release(|conn, _meta| {
            Box::pin(async move {
                let state = state(conn).await;
                if state != ConnState::Clean {
                    tracing::warn!(
                        ?state,
                        "closing a database connection left inside a failed transaction \
                         (the pool opens a fresh one)"
                    );
                }
                Ok(state == ConnState::Clean)
            })
        })
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// What a connection's transaction state is, as sqlx counts it and as SQLite has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// No transaction, by both counts: the connection may serve another caller.
    Clean,
    /// SQLite still holds a transaction open (sqlx may or may not know).
    OpenInSqlite { sqlx_depth_nonzero: bool },
    /// sqlx counts a transaction that SQLite no longer has (SQLite rolled it back by itself).
    OpenOnlyInSqlx,
    /// The connection did not answer.
    Broken,
}

/// Whether a connection may serve another caller: sqlx counts no open transaction and SQLite is
/// in autocommit mode. Anything else means the connection must be closed.
pub(crate) async fn state(conn: &mut SqliteConnection) -> ConnState {
    let sqlx_open = conn.is_in_transaction();
    let autocommit = match conn.lock_handle().await {
        Ok(mut handle) => {
            let raw = handle.as_raw_handle();
            // SAFETY: the handle is locked for the duration of the call, and
            // sqlite3_get_autocommit only reads the connection's state.
            unsafe { libsqlite3_sys::sqlite3_get_autocommit(raw.as_ptr()) != 0 }
        }
        Err(_) => return ConnState::Broken,
    };
    match (sqlx_open, autocommit) {
        (false, true) => ConnState::Clean,
        (true, true) => ConnState::OpenOnlyInSqlx,
        (nonzero, false) => ConnState::OpenInSqlite {
            sqlx_depth_nonzero: nonzero,
        },
    }
}

/// Start a write transaction: `BEGIN IMMEDIATE` takes SQLite's write lock at once (a writer never
/// has to upgrade a read lock, which WAL can refuse), and sqlx refuses it on a connection that is
/// already inside a transaction instead of turning it into a savepoint.
pub(crate) async fn begin_write(db: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
    Ok(db.begin_with("BEGIN IMMEDIATE").await?)
}

/// For tests of a migration: a fleet over a database that the migrations up to version `upto`
/// made and `fill` (SQL) wrote rows into, as an older otafleet would have left it; opening the
/// fleet applies the later migrations.
#[cfg(test)]
pub(crate) async fn fleet_migrated_from(
    upto: i64,
    fill: &str,
) -> (tempfile::TempDir, crate::Fleet) {
    let dir = tempfile::tempdir().unwrap();
    {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join(FILE_NAME))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let mut older = sqlx::migrate!("./migrations");
        older.migrations = older
            .migrations
            .iter()
            .filter(|m| m.version <= upto)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        older.run(&pool).await.unwrap();
        sqlx::raw_sql(fill).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let fleet = crate::Fleet::open(crate::Settings::new(dir.path()))
        .await
        .unwrap();
    (dir, fleet)
}

#[cfg(test)]
mod tests {
    use sqlx::{ConnectOptions, Connection};

    use super::*;

    async fn rows_seen_by_another_connection(dir: &Path) -> i64 {
        let mut other = SqliteConnectOptions::new()
            .filename(dir.join(FILE_NAME))
            .connect()
            .await
            .unwrap();
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM watch_folders")
            .fetch_one(&mut other)
            .await
            .unwrap();
        other.close().await.unwrap();
        n
    }

    async fn insert(conn: &mut SqliteConnection, path: &str) {
        sqlx::query(
            "INSERT INTO watch_folders (path, auto_deploy, created_at) VALUES (?, 0, '2026-01-01')",
        )
        .bind(path)
        .execute(conn)
        .await
        .unwrap();
    }

    /// A full disk, made small: every pooled connection may grow the file by no page, and a write
    /// too large for the page cache must spill, so SQLite fails it with SQLITE_FULL and rolls the
    /// whole transaction back by itself. sqlx's own ROLLBACK then fails and it goes on counting
    /// the connection as one transaction deep; before the check in `after_release`, the next
    /// transactions on it became savepoints of a transaction that never committed: acknowledged,
    /// invisible to every other connection, and lost at restart.
    #[tokio::test]
    async fn a_transaction_sqlite_ended_by_itself_does_not_poison_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        // One connection, so the next transactions surely run on the one the full disk hit.
        let pool = open_with(dir.path(), 1).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("PRAGMA cache_size = 10")
            .execute(&mut *conn)
            .await
            .unwrap();
        {
            let mut tx = conn.begin().await.unwrap();
            let full = sqlx::query(
                "INSERT INTO watch_folders (path, auto_deploy, created_at) \
                 VALUES (hex(randomblob(2000000)), 0, '2026-01-01')",
            )
            .execute(&mut *tx)
            .await;
            let err = crate::CoreError::from(full.expect_err("the disk is full"));
            assert_eq!(err.code(), "disk_full", "{err}");
        }
        assert_eq!(state(&mut conn).await, ConnState::OpenOnlyInSqlx);
        sqlx::query("PRAGMA max_page_count = 1073741823")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        for i in 0..3 {
            {
                // A request that fails half-way (its transaction is dropped, not committed).
                let mut tx = pool.begin().await.unwrap();
                insert(&mut tx, &format!("/dropped/{i}")).await;
            }
            let mut tx = pool.begin().await.unwrap();
            insert(&mut tx, &format!("/kept/{i}")).await;
            tx.commit().await.unwrap();
        }
        assert_eq!(
            rows_seen_by_another_connection(dir.path()).await,
            3,
            "every committed write is visible to other connections"
        );
        pool.close().await;
        let pool = open(dir.path()).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM watch_folders")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 3, "and survives a restart");
    }

    #[tokio::test]
    async fn a_write_transaction_is_never_nested() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(dir.path()).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let mut outer = conn.begin().await.unwrap();
        let nested = outer.begin_with("BEGIN IMMEDIATE").await;
        assert!(
            nested.is_err(),
            "BEGIN IMMEDIATE inside a transaction is refused"
        );
    }

    #[tokio::test]
    async fn a_connection_left_in_a_transaction_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(dir.path()).await.unwrap();
        {
            let mut conn = pool.acquire().await.unwrap();
            // A raw BEGIN that sqlx does not know about.
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .unwrap();
            insert(&mut conn, "/never-committed").await;
        }
        // The pool must not hand that connection out again: a write on any connection commits.
        let mut tx = begin_write(&pool).await.unwrap();
        insert(&mut tx, "/committed").await;
        tx.commit().await.unwrap();
        assert_eq!(rows_seen_by_another_connection(dir.path()).await, 1);
    }
}
