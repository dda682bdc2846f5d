//! Content-addressed firmware storage: `blobs/sha256/<first two hex>/<rest>` under the data
//! directory.
//!
//! A blob is written exactly once and atomically: bytes stream into `tmp/`, are hashed (SHA-256 and
//! MD5) on the way, fsynced, then renamed into place and the folder fsynced. A crash leaves at most
//! a stray file in `tmp/`, which [`BlobStore::open`] removes at the next start; a blob path that
//! exists always holds the whole image. The database row that makes a blob visible is written only
//! after the rename, so nothing half-written can ever be listed or downloaded.

use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::{CoreError, Result};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

/// A fully written, hashed temporary file that is not yet part of the store.
#[derive(Debug)]
pub struct Staged {
    pub path: PathBuf,
    pub sha256: String,
    pub md5: String,
    pub size: u64,
}

impl Staged {
    /// Drop the temporary file (a rejected upload).
    pub async fn discard(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

impl BlobStore {
    /// Open the store under `data_dir`, creating its folders and clearing leftovers of uploads that
    /// a crash interrupted.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join("blobs").join("sha256");
        let tmp = data_dir.join("tmp");
        tokio::fs::create_dir_all(&root).await?;
        tokio::fs::create_dir_all(&tmp).await?;
        let mut entries = tokio::fs::read_dir(&tmp).await?;
        while let Some(entry) = entries.next_entry().await? {
            tracing::info!(path = %entry.path().display(), "removing an upload a previous run left unfinished");
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
        Ok(Self { root, tmp })
    }

    /// Where the blob with this SHA-256 lives (whether or not it exists).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(&sha256[2..])
    }

    /// Stream `reader` into a temporary file, hashing as it goes. Fails with
    /// [`CoreError::TooLarge`] as soon as more than `limit` bytes arrive, leaving nothing behind.
    pub async fn stage<R: AsyncRead + Unpin>(&self, mut reader: R, limit: u64) -> Result<Staged> {
        let path = self
            .tmp
            .join(format!("upload-{:016x}.part", rand::random::<u64>()));
        let result = async {
            let mut file = tokio::fs::File::create(&path).await?;
            let mut sha = Sha256::new();
            let mut md5 = Md5::new();
            let mut size: u64 = 0;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > limit {
                    return Err(CoreError::TooLarge { limit });
                }
                sha.update(&buf[..n]);
                md5.update(&buf[..n]);
                file.write_all(&buf[..n]).await?;
            }
            file.sync_all().await?;
            Ok(Staged {
                path: path.clone(),
                sha256: hex::encode(sha.finalize()),
                md5: hex::encode(md5.finalize()),
                size,
            })
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        result
    }

    /// Move a staged file into the store under its hash. If that blob already exists the staged
    /// copy is dropped (same bytes, same name).
    pub async fn commit(&self, staged: Staged) -> Result<PathBuf> {
        let dest = self.path(&staged.sha256);
        let dir = dest.parent().expect("blob path has a parent").to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        if tokio::fs::try_exists(&dest).await? {
            staged.discard().await;
            return Ok(dest);
        }
        tokio::fs::rename(&staged.path, &dest).await?;
        // Make the rename itself durable before a database row points at the blob.
        let dir_for_sync = dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir_for_sync)?.sync_all())
            .await
            .map_err(std::io::Error::other)??;
        Ok(dest)
    }

    /// Whether the blob with this SHA-256 is stored.
    pub async fn exists(&self, sha256: &str) -> Result<bool> {
        Ok(tokio::fs::try_exists(self.path(sha256)).await?)
    }

    /// Every stored blob's SHA-256 (walks `blobs/sha256/<2>/<62>`; anything else is skipped).
    pub async fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut dirs = tokio::fs::read_dir(&self.root).await?;
        while let Some(dir) = dirs.next_entry().await? {
            let prefix = dir.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !dir.file_type().await?.is_dir() {
                continue;
            }
            let mut files = tokio::fs::read_dir(dir.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let rest = file.file_name().to_string_lossy().into_owned();
                let sha = format!("{prefix}{rest}");
                if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    out.push(sha);
                }
            }
        }
        Ok(out)
    }

    /// Remove a blob (its row is already gone).
    pub async fn remove(&self, sha256: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(sha256)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
