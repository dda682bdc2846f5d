//! The data directory's own safety checks, made once when a [`crate::Fleet`] opens it:
//!
//! - **One server per data directory.** Two servers on one directory (the desktop app and
//!   `otafleet serve` share the default) would each delete the other's uploads in flight as
//!   leftovers and never see each other's deployments. [`DataDirLock`] holds an exclusive lock on
//!   `otafleet.lock` for the life of the fleet; the operating system drops it when the process
//!   ends, even by `kill -9`. The file says who holds it, so the second one can name the first.
//! - **No silent empty fleet.** A zero-length or foreign `otafleet.db` next to stored images
//!   means the database was lost or replaced, not that this is a new fleet: opening it would
//!   start an empty fleet (every enrolled device refused) and orphan the images. [`check_database`]
//!   refuses that with a message that says what was found and what to do.
//! - **No stray blobs.** A process killed between writing a blob and committing its row leaves a
//!   blob no row points at; [`collect_orphans`] removes those at start (the lock guarantees no
//!   upload is in flight). With the S3 backend other instances may be uploading to the same
//!   bucket, so it removes only objects older than the grace period, and runs again
//!   periodically (`Fleet::open`).

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::db::Db;

use crate::blobs::BlobStore;
use crate::db;
use crate::error::{CoreError, Result};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "otafleet.lock";

/// Held while a fleet uses its data directory; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Take the data directory's lock, or fail naming the process that holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another otafleet process".to_string()
                } else {
                    format!("another otafleet process ({holder})")
                };
                return Err(CoreError::DataDir {
                    code: "data_dir_in_use",
                    message: format!(
                        "{who} is already using the data directory {}; stop it first, or give this \
                         one another --data-dir (two servers on one directory would delete each \
                         other's uploads and miss each other's deployments)",
                        data_dir.display()
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let me = format!(
            "pid {}, {}, since {}",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" "),
            crate::time::now()
        );
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(me.as_bytes())?;
        file.sync_all()?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What is in the data directory before the database is opened.
fn stored_images(data_dir: &Path) -> usize {
    let root = data_dir.join("blobs").join("sha256");
    let Ok(dirs) = std::fs::read_dir(root) else {
        return 0;
    };
    dirs.flatten()
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .map(|files| files.flatten().count())
        .sum()
}

/// Refuse a database that cannot be this directory's: zero-length or missing while images are
/// stored, not SQLite at all, or SQLite without otafleet's schema while it holds other tables.
pub(crate) async fn check_database(data_dir: &Path) -> Result<()> {
    let path = data_dir.join(crate::db::FILE_NAME);
    let images = stored_images(data_dir);
    let refuse = |found: String| CoreError::DataDir {
        code: "database_mismatch",
        message: format!(
            "{found}, but {} holds {images} stored firmware image(s): the database that described \
             them is gone or was replaced. Starting would show an empty fleet, refuse every \
             enrolled device and leave the images orphaned, so otafleet stops here. Put the right \
             otafleet.db back (with its -wal file if there is one), or, to really start a new \
             fleet, move the data directory's blobs/ folder away first.",
            data_dir.display()
        ),
    };
    let len = match std::fs::metadata(&path) {
        Ok(m) if !m.is_file() => {
            return Err(CoreError::DataDir {
                code: "database_mismatch",
                message: format!(
                    "{} is not a file (a folder or something else is in its place); move it away \
                     so that otafleet can keep its database there, or point --data-dir at the \
                     right folder",
                    path.display()
                ),
            })
        }
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if images > 0 {
                return Err(refuse(format!("{} does not exist", path.display())));
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let wal_len = std::fs::metadata(data_dir.join(format!("{}-wal", crate::db::FILE_NAME)))
        .map(|m| m.len())
        .unwrap_or(0);
    if len == 0 && wal_len == 0 {
        if images > 0 {
            return Err(refuse(format!("{} is empty (0 bytes)", path.display())));
        }
        tracing::warn!(path = %path.display(), "the database file is empty: starting a new fleet");
        return Ok(());
    }
    let mut magic = [0u8; 16];
    let read = File::open(&path)?.read(&mut magic)?;
    if len > 0 && (read < 16 || &magic != b"SQLite format 3\0") {
        return Err(CoreError::DataDir {
            code: "database_mismatch",
            message: format!(
                "{} is not an SQLite database; it is not otafleet's. Move it away (and point \
                 --data-dir at the right folder)",
                path.display()
            ),
        });
    }
    // Read-write, not created: a write-ahead log left by a killed process is recovered first.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut conn = sqlx::ConnectOptions::connect(&options).await?;
    let tables: Vec<String> =
        db::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await?;
    sqlx::Connection::close(conn).await?;
    let ours =
        tables.iter().any(|t| t == "_sqlx_migrations") && tables.iter().any(|t| t == "devices");
    let empty = tables.is_empty();
    if !ours && !empty {
        return Err(CoreError::DataDir {
            code: "database_mismatch",
            message: format!(
                "{} is an SQLite database, but not otafleet's (its tables: {}). Move it away, or \
                 point --data-dir at the right folder",
                path.display(),
                tables.join(", ")
            ),
        });
    }
    if empty && images > 0 {
        return Err(refuse(format!("{} holds no tables", path.display())));
    }
    Ok(())
}

/// Remove stored blobs that no firmware row points at, and say which rows lost their blob.
pub(crate) async fn collect_orphans(db: &Db, blobs: &BlobStore) -> Result<usize> {
    let rows: HashSet<String> = db::query_scalar("SELECT sha256 FROM firmware")
        .fetch_all(db)
        .await?
        .into_iter()
        .collect();
    // Listed after the rows are read: an object stored since then is young, and the store's
    // rule (`BlobStore::collect`: the S3 grace period) keeps it.
    let stored = blobs.list_stored().await?;
    let mut removed = 0;
    for blob in stored.iter().filter(|b| !rows.contains(&b.sha256)) {
        // Checked again and deleted inside a write transaction: an import writes its row in one
        // too, and looks for its object after (`BlobStore::ensure_stored`).
        let mut tx = db::begin_write(db).await?;
        let row: Option<String> = db::query_scalar("SELECT sha256 FROM firmware WHERE sha256 = ?")
            .bind(&blob.sha256)
            .fetch_optional(&mut *tx)
            .await?;
        if row.is_none() && blobs.collect(blob).await? {
            tracing::info!(sha256 = %blob.sha256, "removed a stored image no library entry refers to");
            removed += 1;
        }
        tx.commit().await?;
    }
    removed += blobs.sweep_unfinished().await?;
    let stored: HashSet<&String> = stored.iter().map(|b| &b.sha256).collect();
    for sha in rows.iter().filter(|s| !stored.contains(s)) {
        tracing::warn!(sha256 = %sha, "a library image's stored file is missing: upload the same file again to restore it");
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
