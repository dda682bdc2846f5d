//! Content-addressed firmware storage, in one of two backends chosen at start:
//!
//! - **Local** (the default): `blobs/sha256/<first two hex>/<rest>` under the data directory.
//! - **S3** (`--blob-url s3://…`, [`s3`]): the same key layout in an S3-compatible bucket, with a
//!   verified, size-bounded local read-through cache under `cache/` ([`cache`]) that downloads are
//!   served from.
//!
//! Either way an upload is staged the same: bytes stream into `tmp/`, are hashed (SHA-256 and
//! MD5) on the way and fsynced. [`BlobStore::commit`] then makes them part of the store — renamed
//! into place and the folder fsynced, or stored in the bucket with their SHA-256 for the store to
//! check — and only after that is the database row that makes a blob visible written, so nothing
//! half-written can ever be listed or downloaded. A crash leaves at most a stray file in `tmp/`,
//! which [`BlobStore::open`] removes at the next start, or an object no row refers to, which the
//! collector removes ([`BlobStore::collect`], `datadir::collect_orphans`).

mod cache;
mod s3;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::{CoreError, Result};

pub use cache::{CacheStats, Lease};
pub use s3::S3Location;

/// Default bound of the S3 backend's local cache (`--blob-cache-mb`): 1 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 1024 * 1024 * 1024;
/// Default grace period of the S3 backend's collector (`--blob-gc-grace`): an object no firmware
/// row refers to is deleted only once it was last modified longer ago than this.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// Which backend, and its knobs (from [`crate::Settings`]).
#[derive(Debug, Clone)]
pub struct BlobConfig {
    /// `None`: the local store. `Some("s3://…")`: an S3-compatible bucket.
    pub url: Option<String>,
    /// Bound of the S3 backend's local cache, in bytes.
    pub cache_bytes: u64,
    /// The S3 collector's grace period.
    pub grace: Duration,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            url: None,
            cache_bytes: DEFAULT_CACHE_BYTES,
            grace: DEFAULT_GRACE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Local,
    S3 {
        store: Arc<s3::S3Blobs>,
        cache: Arc<cache::Cache>,
        grace: Duration,
    },
}

/// A stored blob as the collector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    /// The object's last-modified time (S3); `None` for the local store, whose orphans are
    /// collected at once (the data directory's lock means no upload is in flight).
    pub modified: Option<SystemTime>,
}

/// A blob as a file on this machine, for a download to open. Holding it keeps a cached copy
/// from eviction; once the file is open, dropping it is safe.
#[derive(Debug)]
pub struct LocalBlob {
    path: PathBuf,
    _lease: Option<Lease>,
}

impl LocalBlob {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
    /// Open the local store under `data_dir`, creating its folders and clearing leftovers of
    /// uploads that a crash interrupted.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Self::open_with(data_dir, &BlobConfig::default()).await
    }

    /// Open the store `config` names: the local one, or an S3 bucket (checked to answer) with
    /// its cache under `data_dir/cache`. Uploads are staged in `data_dir/tmp` either way.
    pub async fn open_with(data_dir: &Path, config: &BlobConfig) -> Result<Self> {
        let root = data_dir.join("blobs").join("sha256");
        let tmp = data_dir.join("tmp");
        let backend = match &config.url {
            None => {
                tokio::fs::create_dir_all(&root).await?;
                Backend::Local
            }
            Some(url) => {
                let location = S3Location::parse(url)?;
                let store = Arc::new(s3::S3Blobs::open(location).await?);
                let cache = cache::Cache::open(data_dir, config.cache_bytes).await?;
                Backend::S3 {
                    store,
                    cache,
                    grace: config.grace,
                }
            }
        };
        tokio::fs::create_dir_all(&tmp).await?;
        let mut entries = tokio::fs::read_dir(&tmp).await?;
        while let Some(entry) = entries.next_entry().await? {
            tracing::info!(path = %entry.path().display(), "removing an upload a previous run left unfinished");
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
        Ok(Self { root, tmp, backend })
    }

    /// Where the blobs are, for logs: a folder, or `s3://bucket at endpoint`.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local => self.root.display().to_string(),
            Backend::S3 { store, .. } => store.location.describe(),
        }
    }

    /// Whether this is the S3 backend.
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::S3 { .. })
    }

    /// How often the S3 collector runs (`None` for the local store, collected at start only):
    /// half the grace period, between 1 s and 15 min.
    pub fn collect_every(&self) -> Option<Duration> {
        match &self.backend {
            Backend::Local => None,
            Backend::S3 { grace, .. } => {
                Some((*grace / 2).clamp(Duration::from_secs(1), Duration::from_secs(15 * 60)))
            }
        }
    }

    /// Where the blob with this SHA-256 lives locally (whether or not it exists): its file in
    /// `blobs/`, or with S3 its place in the cache. Downloads use [`BlobStore::local`], which
    /// also fills the cache.
    pub fn path(&self, sha256: &str) -> PathBuf {
        match &self.backend {
            Backend::Local => self.root.join(&sha256[..2]).join(&sha256[2..]),
            Backend::S3 { cache, .. } => cache.path(sha256),
        }
    }

    /// The blob as a local file for a download: the local store's file as it is (no I/O), or
    /// the S3 backend's cached copy, fetched and verified first when it is not cached. Keep the
    /// returned value until the file is open.
    pub async fn local(&self, sha256: &str) -> Result<LocalBlob> {
        match &self.backend {
            Backend::Local => Ok(LocalBlob {
                path: self.path(sha256),
                _lease: None,
            }),
            Backend::S3 { store, cache, .. } => {
                let (path, lease) = cache.local(sha256, store).await?;
                Ok(LocalBlob {
                    path,
                    _lease: Some(lease),
                })
            }
        }
    }

    /// What the S3 backend's cache did so far (`None` for the local store).
    pub fn cache_stats(&self) -> Option<CacheStats> {
        match &self.backend {
            Backend::Local => None,
            Backend::S3 { cache, .. } => Some(cache.stats()),
        }
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

    /// Make a staged file part of the store under its hash; `Ok` means it is durable there (the
    /// caller writes the row after this). Local: renamed into place, the folder fsynced; if that
    /// blob already exists the staged copy is dropped (same bytes, same name). S3: stored with
    /// its SHA-256 for the store to check (every time, even when the object exists, so its
    /// last-modified time protects it from the collector until the row is written), then kept
    /// as the cached copy.
    pub async fn commit(&self, staged: Staged) -> Result<PathBuf> {
        let sha256 = staged.sha256.clone();
        let dest = match &self.backend {
            Backend::Local => self.commit_local(staged).await?,
            Backend::S3 { store, cache, .. } => {
                if let Err(e) = store.put(&staged.path, &staged.sha256).await {
                    staged.discard().await;
                    return Err(e);
                }
                cache.adopt(&staged.path, &staged.sha256, staged.size).await;
                cache.path(&sha256)
            }
        };
        failpoint_blob_stored(&sha256).await;
        Ok(dest)
    }

    async fn commit_local(&self, staged: Staged) -> Result<PathBuf> {
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

    /// Called once the row of an image is written: make sure its object is still in the store,
    /// storing it again from the cached copy if not. The collector deletes an object only inside
    /// a write transaction in which it found no row referring to it (`collect_orphans`), and an
    /// import writes its row in a write transaction too; write transactions run one at a time. So
    /// a collector that deleted the object this import had just stored (an older object of the
    /// same bytes looked old enough to it, and the PUT landed between its check and its DELETE)
    /// finished before this row was written, and this check, made after it, finds the object
    /// gone. A collector after the row sees the row and keeps the object. Local store: nothing to
    /// do (its collector runs only at start, under the data directory's lock).
    pub async fn ensure_stored(&self, sha256: &str) -> Result<()> {
        let Backend::S3 { store, cache, .. } = &self.backend else {
            return Ok(());
        };
        if store.exists(sha256).await? {
            return Ok(());
        }
        let cached = cache.path(sha256);
        if !tokio::fs::try_exists(&cached).await? {
            return Err(std::io::Error::other(format!(
                "the stored image {sha256} was deleted by the collector while it was imported, and no copy is left here: upload the same file again"
            ))
            .into());
        }
        tracing::warn!(%sha256, "the collector deleted an image's object while it was imported; stored again from the cached copy");
        store.put(&cached, sha256).await
    }

    /// Whether the blob with this SHA-256 is stored.
    pub async fn exists(&self, sha256: &str) -> Result<bool> {
        match &self.backend {
            Backend::Local => Ok(tokio::fs::try_exists(self.path(sha256)).await?),
            Backend::S3 { store, .. } => store.exists(sha256).await,
        }
    }

    /// Every stored blob's SHA-256 (walks `blobs/sha256/<2>/<62>`, or lists the bucket's
    /// `sha256/` keys; anything else is skipped).
    pub async fn list(&self) -> Result<Vec<String>> {
        Ok(self
            .list_stored()
            .await?
            .into_iter()
            .map(|b| b.sha256)
            .collect())
    }

    /// Every stored blob with what the collector needs to know of it.
    pub async fn list_stored(&self) -> Result<Vec<StoredBlob>> {
        let store = match &self.backend {
            Backend::Local => {
                return Ok(self
                    .list_local()
                    .await?
                    .into_iter()
                    .map(|sha256| StoredBlob {
                        sha256,
                        modified: None,
                    })
                    .collect())
            }
            Backend::S3 { store, .. } => store,
        };
        Ok(store
            .list()
            .await?
            .into_iter()
            .map(|(sha256, modified)| StoredBlob {
                sha256,
                modified: Some(modified),
            })
            .collect())
    }

    async fn list_local(&self) -> Result<Vec<String>> {
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

    /// Remove `blob`, which no firmware row refers to, if the backend's rule allows it now;
    /// `true` if it went. Local: at once (called at start, when the data directory's lock rules
    /// out an upload in flight). S3: only when it was last modified longer ago than the grace
    /// period — asked again of the store just before deleting —, so that an import of the same
    /// bytes elsewhere, which stores the object before writing its row, is not raced.
    pub async fn collect(&self, blob: &StoredBlob) -> Result<bool> {
        let (store, grace) = match &self.backend {
            Backend::Local => {
                self.remove(&blob.sha256).await?;
                return Ok(true);
            }
            Backend::S3 { store, grace, .. } => (store, *grace),
        };
        let old_enough = |t: SystemTime| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|age| age >= grace)
        };
        if !blob.modified.is_some_and(old_enough) {
            return Ok(false);
        }
        // Stored again since the listing (an import of the same bytes): keep it.
        match store.modified(&blob.sha256).await? {
            Some(t) if old_enough(t) => {}
            _ => return Ok(false),
        }
        store.delete(&blob.sha256).await?;
        // The cached copy stays: nothing is served without a row, and an import of the same
        // bytes on this instance that raced this DELETE stores the object again from it
        // (`ensure_stored`); the cache's bound evicts it otherwise.
        Ok(true)
    }

    /// Remove what unfinished uploads left in the store (S3 `incoming/` objects older than the
    /// grace period; nothing for the local store, whose `tmp/` is emptied at open).
    pub async fn sweep_unfinished(&self) -> Result<usize> {
        match &self.backend {
            Backend::Local => Ok(0),
            Backend::S3 { store, grace, .. } => {
                store.sweep_incoming(SystemTime::now() - *grace).await
            }
        }
    }

    /// Remove a blob (its row is already gone). Local: the file goes at once. S3: only the
    /// cached copy goes; the object stays until the collector finds it unreferenced past the
    /// grace period (another instance may be importing the same bytes right now).
    pub async fn remove(&self, sha256: &str) -> Result<()> {
        match &self.backend {
            Backend::Local => match tokio::fs::remove_file(self.path(sha256)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            },
            Backend::S3 { cache, .. } => {
                cache.forget(sha256);
                Ok(())
            }
        }
    }
}

/// A test hook of debug builds only: with `OTAFLEET_FAILPOINT=blob-stored`, an import stops for
/// good right after its blob is stored and before its row is written, having said so on standard
/// error, so that a test can kill the process (`kill -9`) exactly there. Release builds have no
/// such hook.
async fn failpoint_blob_stored(sha256: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("OTAFLEET_FAILPOINT").as_deref() == Ok("blob-stored") {
        eprintln!("otafleet failpoint blob-stored: {sha256} is stored, its row is not written; waiting to be killed");
        std::future::pending::<()>().await;
    }
    #[cfg(not(debug_assertions))]
    let _ = sha256;
}
