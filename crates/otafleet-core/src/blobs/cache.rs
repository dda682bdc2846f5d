//! The read-through cache of the S3 backend: `cache/sha256/<2>/<62>` under the data directory, so
//! that downloads keep serving a local file (Range/206, Content-Length, ETag, `sendfile(2)`, byte
//! counting stay as they are).
//!
//! - **Verified.** A fill streams the object into `cache/tmp/`, hashing it; only bytes whose
//!   SHA-256 is the blob's name are fsynced and renamed into place. A file found in the cache at
//!   start is hashed again before its first use by this process (a crash, a bad disk or a hand
//!   may have changed it); one that does not match is deleted and fetched again. Every use checks
//!   that the file is still there with its size.
//! - **One fetch per blob at a time.** Concurrent first downloads of a blob wait for one fill.
//! - **Bounded.** Over the bound (`--blob-cache-mb`), the least recently used files that no
//!   download is opening ([`Lease`]) are deleted. A file deleted while a download is sending it
//!   stays readable through that download's open descriptor (Linux unlink semantics), so eviction
//!   never cuts a transfer; a blob larger than the bound is still cached while it is used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::s3::S3Blobs;
use crate::error::{CoreError, Result};

/// What the cache did since it opened (for tests and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Objects fetched from the store.
    pub fetches: u64,
    /// Uses answered by a file already cached.
    pub hits: u64,
    /// Files deleted to stay within the bound.
    pub evictions: u64,
    /// Cached files (or fetched bytes) whose SHA-256 did not match: deleted, never served.
    pub corrupt: u64,
    /// Files held now and their bytes.
    pub files: usize,
    pub bytes: u64,
}

#[derive(Debug)]
struct Entry {
    size: u64,
    /// Recency: the cache's clock at the last use.
    used: u64,
    /// Hashed by this process (filled, or checked before its first use).
    verified: bool,
    /// Downloads that asked for the file and may not have opened it yet.
    leases: usize,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    total: u64,
    clock: u64,
}

#[derive(Debug)]
pub(crate) struct Cache {
    root: PathBuf,
    tmp: PathBuf,
    bound: u64,
    state: Mutex<State>,
    /// One gate per blob being filled or checked, so concurrent first uses fetch once.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fetches: AtomicU64,
    hits: AtomicU64,
    evictions: AtomicU64,
    corrupt: AtomicU64,
}

/// Keeps a cached file from eviction until the download that asked for it has opened it.
#[derive(Debug)]
pub struct Lease {
    cache: Arc<Cache>,
    sha256: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let over = {
            let mut st = self.cache.state.lock().expect("cache lock");
            if let Some(e) = st.entries.get_mut(&self.sha256) {
                e.leases = e.leases.saturating_sub(1);
            }
            st.total > self.cache.bound
        };
        if over {
            self.cache.evict();
        }
    }
}

impl Cache {
    /// Open the cache under `data_dir/cache`, clearing unfinished fills and indexing the files
    /// kept from earlier runs (oldest modification first; each is hashed before its first use).
    pub(crate) async fn open(data_dir: &Path, bound: u64) -> Result<Arc<Self>> {
        let root = data_dir.join("cache").join("sha256");
        let tmp = data_dir.join("cache").join("tmp");
        tokio::fs::create_dir_all(&root).await?;
        tokio::fs::create_dir_all(&tmp).await?;
        let (root2, tmp2) = (root.clone(), tmp.clone());
        let found = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<_>> {
            for e in std::fs::read_dir(&tmp2)?.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
            let mut found = Vec::new();
            for dir in std::fs::read_dir(&root2)?.flatten() {
                let prefix = dir.file_name().to_string_lossy().into_owned();
                if prefix.len() != 2 || !dir.file_type()?.is_dir() {
                    continue;
                }
                for f in std::fs::read_dir(dir.path())?.flatten() {
                    let sha = format!("{prefix}{}", f.file_name().to_string_lossy());
                    let meta = f.metadata()?;
                    if super::is_sha256(&sha) && meta.is_file() {
                        found.push((sha, meta.len(), meta.modified().ok()));
                    } else {
                        let _ = std::fs::remove_file(f.path());
                    }
                }
            }
            found.sort_by_key(|(_, _, modified)| *modified);
            Ok(found)
        })
        .await
        .map_err(std::io::Error::other)??;
        let mut state = State::default();
        for (sha, size, _) in found {
            state.clock += 1;
            state.total += size;
            state.entries.insert(
                sha,
                Entry {
                    size,
                    used: state.clock,
                    verified: false,
                    leases: 0,
                },
            );
        }
        let cache = Arc::new(Self {
            root,
            tmp,
            bound,
            state: Mutex::new(state),
            gates: Default::default(),
            fetches: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
        });
        cache.evict();
        Ok(cache)
    }

    pub(crate) fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(&sha256[2..])
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let st = self.state.lock().expect("cache lock");
        CacheStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
            files: st.entries.len(),
            bytes: st.total,
        }
    }

    /// The local file of blob `sha256`, fetched from `store` when it is not cached (or its cached
    /// copy is damaged), with a lease that keeps it until the caller has opened it.
    pub(crate) async fn local(
        self: &Arc<Self>,
        sha256: &str,
        store: &S3Blobs,
    ) -> Result<(PathBuf, Lease)> {
        if let Some(lease) = self.lease_verified(sha256) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((self.path(sha256), lease));
        }
        let gate = self
            .gates
            .lock()
            .expect("cache lock")
            .entry(sha256.to_string())
            .or_default()
            .clone();
        let result = {
            let _held = gate.lock().await;
            self.check_or_fill(sha256, store).await
        };
        {
            let mut gates = self.gates.lock().expect("cache lock");
            // The map's reference and ours: nobody else waits at this gate.
            if Arc::strong_count(&gate) == 2 {
                gates.remove(sha256);
            }
        }
        result.map(|lease| (self.path(sha256), lease))
    }

    async fn check_or_fill(self: &Arc<Self>, sha256: &str, store: &S3Blobs) -> Result<Lease> {
        if let Some(lease) = self.lease_verified(sha256) {
            // Filled while this one waited at the gate.
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(lease);
        }
        let unverified = {
            let st = self.state.lock().expect("cache lock");
            st.entries.get(sha256).is_some_and(|e| !e.verified)
        };
        if unverified {
            let path = self.path(sha256);
            let sha = sha256.to_string();
            let good = tokio::task::spawn_blocking(move || hash_file(&path).map(|h| h == sha))
                .await
                .map_err(std::io::Error::other)?
                .unwrap_or(false);
            if good {
                let leased = {
                    let mut st = self.state.lock().expect("cache lock");
                    st.clock += 1;
                    let clock = st.clock;
                    st.entries.get_mut(sha256).map(|e| {
                        e.verified = true;
                        e.used = clock;
                        e.leases += 1;
                    })
                };
                if leased.is_some() {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(self.lease(sha256));
                }
            } else {
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(sha256, path = %self.path(sha256).display(), "a cached image does not match its SHA-256: deleted, fetching it again");
                self.forget(sha256);
            }
        }
        self.fill(sha256, store).await
    }

    /// A lease on a verified entry whose file is still there with its size.
    fn lease_verified(self: &Arc<Self>, sha256: &str) -> Option<Lease> {
        let size = {
            let mut st = self.state.lock().expect("cache lock");
            st.clock += 1;
            let clock = st.clock;
            let e = st.entries.get_mut(sha256).filter(|e| e.verified)?;
            e.used = clock;
            e.leases += 1;
            e.size
        };
        let lease = self.lease(sha256);
        match std::fs::metadata(self.path(sha256)) {
            Ok(m) if m.len() == size => Some(lease),
            _ => {
                tracing::warn!(
                    sha256,
                    "a cached image vanished or changed size: fetching it again"
                );
                drop(lease);
                self.forget(sha256);
                None
            }
        }
    }

    fn lease(self: &Arc<Self>, sha256: &str) -> Lease {
        Lease {
            cache: self.clone(),
            sha256: sha256.to_string(),
        }
    }

    /// Fetch the object into `cache/tmp/`, hashing; rename into place only if it matches.
    async fn fill(self: &Arc<Self>, sha256: &str, store: &S3Blobs) -> Result<Lease> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let part = self
            .tmp
            .join(format!("fill-{:016x}.part", rand::random::<u64>()));
        let written = async {
            let (_, mut stream) = store.get(sha256).await?;
            let mut file = tokio::fs::File::create(&part).await?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(|e| store.failed("download", sha256, e))?
            {
                hasher.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            let got = hex::encode(hasher.finalize());
            if got != sha256 {
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                return Err(CoreError::BlobStore {
                    code: "blob_corrupt",
                    message: format!(
                        "the blob store {} returned bytes for image {sha256} whose SHA-256 is \
                         {got}: nothing of them was served. The stored object is damaged; upload \
                         the same file again to replace it",
                        store.location.describe()
                    ),
                });
            }
            file.sync_all().await?;
            Ok(size)
        }
        .await;
        let size = match written {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        let dest = self.path(sha256);
        let placed = async {
            tokio::fs::create_dir_all(dest.parent().expect("cache path has a parent")).await?;
            tokio::fs::rename(&part, &dest).await
        }
        .await;
        if let Err(e) = placed {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e.into());
        }
        self.insert(sha256, size, true, 1);
        let lease = self.lease(sha256);
        self.evict();
        Ok(lease)
    }

    /// Take `file` (an upload the store just accepted) as the cached copy of `sha256`. It is
    /// hashed again before its first use, like a file found at start.
    pub(crate) async fn adopt(self: &Arc<Self>, file: &Path, sha256: &str, size: u64) {
        let dest = self.path(sha256);
        let moved = async {
            tokio::fs::create_dir_all(dest.parent().expect("cache path has a parent")).await?;
            tokio::fs::rename(file, &dest).await
        }
        .await;
        match moved {
            Ok(()) => {
                self.insert(sha256, size, false, 0);
                self.evict();
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not keep an upload as its cached copy");
                let _ = tokio::fs::remove_file(file).await;
            }
        }
    }

    fn insert(&self, sha256: &str, size: u64, verified: bool, leases: usize) {
        let mut st = self.state.lock().expect("cache lock");
        st.clock += 1;
        let used = st.clock;
        if let Some(old) = st.entries.insert(
            sha256.to_string(),
            Entry {
                size,
                used,
                verified,
                leases,
            },
        ) {
            st.total -= old.size;
        }
        st.total += size;
    }

    /// Drop the cached copy of `sha256` (deleted image, damaged copy).
    pub(crate) fn forget(&self, sha256: &str) {
        let mut st = self.state.lock().expect("cache lock");
        if let Some(e) = st.entries.remove(sha256) {
            st.total -= e.size;
        }
        drop(st);
        let _ = std::fs::remove_file(self.path(sha256));
    }

    /// Delete least recently used files nobody is opening until the cache is within its bound.
    fn evict(&self) {
        let mut victims = Vec::new();
        {
            let mut st = self.state.lock().expect("cache lock");
            while st.total > self.bound {
                let Some(oldest) = st
                    .entries
                    .iter()
                    .filter(|(_, e)| e.leases == 0)
                    .min_by_key(|(_, e)| e.used)
                    .map(|(sha, _)| sha.clone())
                else {
                    break;
                };
                let e = st.entries.remove(&oldest).expect("entry just found");
                st.total -= e.size;
                victims.push(oldest);
            }
        }
        for sha in victims {
            tracing::debug!(sha256 = %sha, "evicted from the blob cache");
            let _ = std::fs::remove_file(self.path(&sha));
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
