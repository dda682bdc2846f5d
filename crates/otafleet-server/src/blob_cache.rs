//! Image bytes kept in memory for downloads, shared by every response that sends them.
//!
//! Why: a fleet update is hundreds of devices downloading the *same* image at once. Streamed from
//! the file, each response had its own 64 KiB read buffer plus tokio's file buffer (about 144 KiB
//! resident per download in flight, so 1,000 slow devices cost ~145 MB), and every chunk was a
//! blocking-pool file read. Held once as [`Bytes`], a response is a list of zero-copy slices of
//! one allocation: memory no longer grows with downloads in flight, and sending is a memcpy into
//! the socket. Blobs are content-addressed and immutable, so an entry never goes stale; deleted
//! images are refused before the cache is asked (`Fleet::firmware_file`).
//!
//! Bounded: images above [`MAX_ENTRY`] are streamed from disk as before, and the oldest entries
//! are dropped once the cache holds more than [`BUDGET`] bytes. Concurrent first requests for an
//! image share one read of the file.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::OnceCell;

/// Largest image kept in memory.
pub const MAX_ENTRY: u64 = 16 * 1024 * 1024;
/// Total bytes kept (a handful of images: one fleet update needs one).
pub const BUDGET: u64 = 64 * 1024 * 1024;

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Arc<OnceCell<Bytes>>>,
    /// Insertion order with sizes, for eviction (sizes are known only once loaded).
    order: VecDeque<(String, u64)>,
    held: u64,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The bytes of the blob `sha256` at `path`, or `None` when it is too big to keep.
pub async fn get(sha256: &str, path: &Path, size: u64) -> std::io::Result<Option<Bytes>> {
    if size > MAX_ENTRY {
        return Ok(None);
    }
    let cell = {
        let mut c = cache().lock().expect("cache lock");
        if let Some(cell) = c.entries.get(sha256) {
            cell.clone()
        } else {
            while c.held + size > BUDGET {
                let Some((old, old_size)) = c.order.pop_front() else {
                    break;
                };
                c.entries.remove(&old);
                c.held -= old_size;
            }
            let cell = Arc::new(OnceCell::new());
            c.entries.insert(sha256.to_string(), cell.clone());
            c.order.push_back((sha256.to_string(), size));
            c.held += size;
            cell
        }
    };
    let bytes = cell
        .get_or_try_init(|| async { tokio::fs::read(path).await.map(Bytes::from) })
        .await;
    match bytes {
        Ok(b) => Ok(Some(b.clone())),
        Err(e) => {
            // Do not keep a failed load; the next request tries again.
            let mut c = cache().lock().expect("cache lock");
            if c.entries.remove(sha256).is_some() {
                c.order.retain(|(s, _)| s != sha256);
                c.held = c.held.saturating_sub(size);
            }
            Err(e)
        }
    }
}
