//! Watch folders: the folders (typically a PlatformIO or Arduino build output) whose `.bin` files
//! otafleet imports by itself. This module keeps the list and each folder's last result; the
//! watching itself runs in the `otafleet-watch` crate, which follows
//! [`Event::WatchFolders`](crate::events::Event::WatchFolders) to pick up changes to the list.

use std::path::Path;

use crate::db::Db;
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::{CoreError, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WatchFolder {
    pub id: i64,
    /// Absolute path of the folder (watched recursively).
    pub path: String,
    /// Deploy each new image to every device of its project and chip.
    pub auto_deploy: bool,
    pub created_at: String,
    /// The last file handled, what happened (`imported`, `duplicate`, `rejected`, `incomplete`,
    /// `error`) and the message for people. For the folder itself (`last_file` is its path):
    /// `missing` when it was deleted or renamed, `watching` when it is back and watched again.
    pub last_file: Option<String>,
    pub last_result: Option<String>,
    pub last_message: Option<String>,
    pub last_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWatchFolder {
    pub path: String,
    #[serde(default)]
    pub auto_deploy: bool,
}

pub(crate) async fn list(db: &Db) -> Result<Vec<WatchFolder>> {
    db::query_as("SELECT * FROM watch_folders ORDER BY id")
        .fetch_all(db)
        .await
}

pub(crate) async fn get(db: &Db, id: i64) -> Result<WatchFolder> {
    db::query_as("SELECT * FROM watch_folders WHERE id = ?")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("watch folder {id}")))
}

/// Add a folder (or update `auto_deploy` of one already watched). It must exist and be a folder.
pub(crate) async fn add(db: &Db, new: NewWatchFolder) -> Result<WatchFolder> {
    let path = Path::new(new.path.trim());
    if !path.is_absolute() {
        return Err(CoreError::invalid(
            "invalid_path",
            format!(
                "'{}' is not an absolute path; give the full path of the build output folder",
                new.path
            ),
        ));
    }
    let canonical = std::fs::canonicalize(path).map_err(|e| {
        CoreError::invalid(
            "invalid_path",
            format!("cannot open the folder {}: {e}", path.display()),
        )
    })?;
    if !canonical.is_dir() {
        return Err(CoreError::invalid(
            "invalid_path",
            format!(
                "{} is a file, not a folder; watch the folder the build writes into",
                canonical.display()
            ),
        ));
    }
    let path = canonical.display().to_string();
    db::query(
        "INSERT INTO watch_folders (path, auto_deploy, created_at) VALUES (?, ?, ?) \
         ON CONFLICT (path) DO UPDATE SET auto_deploy = excluded.auto_deploy",
    )
    .bind(&path)
    .bind(new.auto_deploy)
    .bind(crate::time::now())
    .execute(db)
    .await?;
    db::query_as("SELECT * FROM watch_folders WHERE path = ?")
        .bind(&path)
        .fetch_one(db)
        .await
}

pub(crate) async fn remove(db: &Db, id: i64) -> Result<()> {
    let done = db::query("DELETE FROM watch_folders WHERE id = ?")
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(CoreError::not_found(format!("watch folder {id}")));
    }
    Ok(())
}

/// Record what happened to a file in a folder.
pub(crate) async fn record(
    db: &Db,
    id: i64,
    file: &str,
    result: &str,
    message: &str,
) -> Result<WatchFolder> {
    db::query(
        "UPDATE watch_folders SET last_file = ?, last_result = ?, last_message = ?, last_at = ? WHERE id = ?",
    )
    .bind(file)
    .bind(result)
    .bind(message)
    .bind(crate::time::now())
    .bind(id)
    .execute(db)
    .await?;
    get(db, id).await
}
