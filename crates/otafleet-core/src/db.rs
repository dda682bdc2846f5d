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

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::error::Result;

mod query;
pub(crate) use query::{query, query_as, query_scalar, Json};

/// The database's file name inside the data directory.
pub const FILE_NAME: &str = "otafleet.db";

/// Which database the fleet's state lives in. Statements are written once where one text serves
/// both ([`query`]); [`Db::backend`] picks the text where they must differ.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The two SQL dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A connection that statements run on: a pooled connection, a transaction, or a bare
/// connection of either backend. Functions that run inside the caller's transaction take
/// `&mut Conn`.
pub(crate) trait Exec: Send {
    fn raw(&mut self) -> Raw<'_>;
}

/// A connection of one backend or the other.
pub(crate) enum Raw<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// What functions that run inside the caller's transaction (or on a held connection) take.
pub(crate) type Conn = dyn Exec;

impl Exec for SqliteConnection {
    fn raw(&mut self) -> Raw<'_> {
        Raw::Sqlite(self)
    }
}
impl Exec for PgConnection {
    fn raw(&mut self) -> Raw<'_> {
        Raw::Postgres(self)
    }
}

impl Backend {
    /// A `FROM` item over the JSON array of text bound at `param` (`?2`): its elements as the
    /// column `value` of `alias`.
    pub(crate) fn text_elements(self, param: &str, alias: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_each({param}) AS {alias}"),
            Backend::Postgres => {
                format!("json_array_elements_text(CAST({param} AS json)) AS {alias}(value)")
            }
        }
    }

    /// A `FROM` item over the JSON array bound at `param`: its elements, as JSON, in the column
    /// `value` of `alias` (read them with [`Backend::json_index`]).
    pub(crate) fn json_elements(self, param: &str, alias: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_each({param}) AS {alias}"),
            Backend::Postgres => {
                format!("json_array_elements(CAST({param} AS json)) AS {alias}(value)")
            }
        }
    }

    /// Member `key` of the JSON object `expr` (a text column or expression), as text.
    pub(crate) fn json_text(self, expr: &str, key: &str) -> String {
        match self {
            Backend::Sqlite => format!("({expr} ->> '$.{key}')"),
            Backend::Postgres => format!("(CAST({expr} AS json) ->> '{key}')"),
        }
    }

    /// Element `i` of the JSON array `expr`, as text.
    pub(crate) fn json_index(self, expr: &str, i: usize) -> String {
        match self {
            Backend::Sqlite => format!("({expr} ->> '$[{i}]')"),
            Backend::Postgres => format!("(CAST({expr} AS json) ->> {i})"),
        }
    }

    /// Seconds from the stored time `b` to the stored time `a` (both timestamp text), real.
    pub(crate) fn seconds_between(self, a: &str, b: &str) -> String {
        match self {
            Backend::Sqlite => format!("((julianday({a}) - julianday({b})) * 86400.0)"),
            Backend::Postgres => {
                format!("EXTRACT(EPOCH FROM (CAST({a} AS timestamptz) - CAST({b} AS timestamptz)))")
            }
        }
    }
}

impl dyn Exec {
    /// Which dialect this connection speaks.
    pub(crate) fn backend(&mut self) -> Backend {
        match self.raw() {
            Raw::Sqlite(_) => Backend::Sqlite,
            Raw::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A transaction on either backend; commits only by [`Tx::commit`], rolls back when dropped.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Exec for Tx {
    fn raw(&mut self) -> Raw<'_> {
        match self {
            Tx::Sqlite(t) => Raw::Sqlite(t),
            Tx::Postgres(t) => Raw::Postgres(t),
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            Tx::Sqlite(t) => {
                let c: &SqliteConnection = t;
                c
            }
            Tx::Postgres(t) => {
                let c: &PgConnection = t;
                c
            }
        }
    }
}
impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            Tx::Sqlite(t) => {
                let c: &mut SqliteConnection = t;
                c
            }
            Tx::Postgres(t) => {
                let c: &mut PgConnection = t;
                c
            }
        }
    }
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// A connection taken from the pool for several statements; back to the pool when dropped.
pub(crate) enum PoolConn {
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

impl Exec for PoolConn {
    fn raw(&mut self) -> Raw<'_> {
        match self {
            PoolConn::Sqlite(c) => Raw::Sqlite(c),
            PoolConn::Postgres(c) => Raw::Postgres(c),
        }
    }
}

impl std::ops::Deref for PoolConn {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            PoolConn::Sqlite(c) => {
                let c: &SqliteConnection = c;
                c
            }
            PoolConn::Postgres(c) => {
                let c: &PgConnection = c;
                c
            }
        }
    }
}
impl std::ops::DerefMut for PoolConn {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            PoolConn::Sqlite(c) => {
                let c: &mut SqliteConnection = c;
                c
            }
            PoolConn::Postgres(c) => {
                let c: &mut PgConnection = c;
                c
            }
        }
    }
}

impl Db {
    pub(crate) async fn acquire(&self) -> Result<PoolConn> {
        Ok(match self {
            Db::Sqlite(p) => PoolConn::Sqlite(p.acquire().await?),
            Db::Postgres(p) => PoolConn::Postgres(p.acquire().await?),
        })
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// A listener on `channel` over a connection of its own (PostgreSQL only).
    pub(crate) async fn listener(&self, channel: &str) -> Result<sqlx::postgres::PgListener> {
        let Db::Postgres(p) = self else {
            return Err(crate::error::CoreError::Db(sqlx::Error::Configuration(
                "LISTEN needs PostgreSQL".into(),
            )));
        };
        let mut l = sqlx::postgres::PgListener::connect_with(p).await?;
        // A notice in flight is applied in full before the next is read; nothing is buffered
        // beyond the socket.
        l.ignore_pool_close_event(false);
        l.listen(channel).await?;
        Ok(l)
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Db::Sqlite(p) => p.is_closed(),
            Db::Postgres(p) => p.is_closed(),
        }
    }

    /// Connections the pool holds and how many of them are idle (tests wait for a quiet pool).
    #[cfg(test)]
    pub(crate) fn size_and_idle(&self) -> (u32, usize) {
        match self {
            Db::Sqlite(p) => (p.size(), p.num_idle()),
            Db::Postgres(p) => (p.size(), p.num_idle()),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// Open the fleet's database and bring its schema up to date: PostgreSQL when
/// `settings.database_url` names one, otherwise `otafleet.db` in the data directory (created if
/// needed).
///
/// The test suites run against PostgreSQL too: with `OTAFLEET_TEST_DATABASE_SERVER` set to a
/// database's URL (and no `database_url`), each data directory gets its own schema in that
/// database, named after the directory, so a test's fleet (and a restarted one) is as isolated
/// as with its own SQLite file.
pub(crate) async fn open(settings: &crate::Settings) -> Result<Db> {
    if let Some(url) = &settings.database_url {
        return open_postgres(url).await;
    }
    if let Some(server) = std::env::var(TEST_SERVER_ENV)
        .ok()
        .filter(|s| !s.is_empty())
    {
        return open_postgres_for(&server, &settings.data_dir).await;
    }
    Ok(Db::Sqlite(open_with(&settings.data_dir, 8).await?))
}

/// Whether [`open`] would open the SQLite file in the data directory (the checks of that file in
/// `datadir` apply only then).
pub(crate) fn is_sqlite(settings: &crate::Settings) -> bool {
    settings.database_url.is_none() && std::env::var(TEST_SERVER_ENV).map_or(true, |s| s.is_empty())
}

/// See [`open`].
pub const TEST_SERVER_ENV: &str = "OTAFLEET_TEST_DATABASE_SERVER";

/// The key of the advisory lock every PostgreSQL write transaction takes ([`begin_write`]):
/// 0x6f7461666c656574 is "otafleet".
const WRITER_LOCK: i64 = 0x6f74_6166_6c65_6574;

async fn open_postgres(url: &str) -> Result<Db> {
    let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations_pg").run(&pool).await?;
    Ok(Db::Postgres(pool))
}

/// A schema of its own in the database `server` names, for the data directory `data_dir`
/// (created if missing; a schema costs a few kilobytes where a database costs megabytes, and a
/// test run makes hundreds).
async fn open_postgres_for(server: &str, data_dir: &Path) -> Result<Db> {
    use sha2::Digest;
    let path = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = sha2::Sha256::digest(path.to_string_lossy().as_bytes());
    let schema = format!("t_{}", &hex::encode(digest)[..24]);
    let options = sqlx::postgres::PgConnectOptions::from_str(server)?;
    let mut admin = sqlx::postgres::PgConnection::connect_with(&options).await?;
    // Two fleets opening the same new directory at once: IF NOT EXISTS can still race in the
    // catalogue; the loser's duplicate is fine.
    if let Err(e) = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&mut admin)
        .await
    {
        let duplicate = matches!(&e, sqlx::Error::Database(d)
            if matches!(d.code().as_deref(), Some("42P06") | Some("23505")));
        if !duplicate {
            return Err(e.into());
        }
    }
    admin.close().await?;
    let options = options.options([("search_path", schema.as_str())]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations_pg").run(&pool).await?;
    Ok(Db::Postgres(pool))
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
pub(crate) async fn begin_write(db: &Db) -> Result<Tx> {
    match db {
        Db::Sqlite(p) => Ok(Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?)),
        Db::Postgres(p) => {
            // PostgreSQL lets writers run side by side; otafleet's read-then-write transactions
            // were written for SQLite's one writer at a time, so every write transaction of
            // every instance takes the same transaction-scoped advisory lock first (released by
            // its commit or rollback). Readers never wait for it.
            let mut tx = p.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITER_LOCK)
                .execute(&mut *tx)
                .await?;
            Ok(Tx::Postgres(tx))
        }
    }
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

    async fn insert(conn: &mut Conn, path: &str) {
        query(
            "INSERT INTO watch_folders (path, auto_deploy, created_at) VALUES (?, FALSE, '2026-01-01')",
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
                insert(&mut *tx, &format!("/dropped/{i}")).await;
            }
            let mut tx = pool.begin().await.unwrap();
            insert(&mut *tx, &format!("/kept/{i}")).await;
            tx.commit().await.unwrap();
        }
        assert_eq!(
            rows_seen_by_another_connection(dir.path()).await,
            3,
            "every committed write is visible to other connections"
        );
        pool.close().await;
        let pool = open_with(dir.path(), 8).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM watch_folders")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 3, "and survives a restart");
    }

    #[tokio::test]
    async fn a_write_transaction_is_never_nested() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open_with(dir.path(), 8).await.unwrap();
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
        let pool = open_with(dir.path(), 8).await.unwrap();
        {
            let mut conn = pool.acquire().await.unwrap();
            // A raw BEGIN that sqlx does not know about.
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .unwrap();
            insert(&mut *conn, "/never-committed").await;
        }
        // The pool must not hand that connection out again: a write on any connection commits.
        let mut tx = begin_write(&Db::Sqlite(pool.clone())).await.unwrap();
        insert(&mut tx, "/committed").await;
        tx.commit().await.unwrap();
        assert_eq!(rows_seen_by_another_connection(dir.path()).await, 1);
    }
}
