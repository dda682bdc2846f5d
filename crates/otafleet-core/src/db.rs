//! Opening the SQLite database: WAL journal (readers never block the writer), a busy timeout so
//! concurrent check-ins queue instead of failing, foreign keys on, and the embedded migrations run
//! before anything else touches it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::error::Result;

/// Open (creating if needed) `otafleet.db` in `data_dir` and bring its schema up to date.
pub async fn open(data_dir: &Path) -> Result<SqlitePool> {
    let path = data_dir.join("otafleet.db");
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
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}
