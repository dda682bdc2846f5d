//! Image bytes kept in memory for downloads, shared by every response that sends them.
//!
//! Why: a fleet update is hundreds of devices downloading the *same* image at once. Streamed from
//! the file, each response had its own 64 KiB read buffer plus tokio's file buffer (about 144 KiB
//! resident per download in flight, so 1,000 slow devices cost ~145 MB), and every chunk was a
//! blocking-pool file read. Held once as [`Bytes`], a response is a list of zero-copy slices of
//! one allocation: memory no longer grows with downloads in flight. On Linux the copy also
//! remembers the file it was read from, and the socket sends its bytes from that file with
//! `sendfile(2)` instead of copying them ([`send`]). Blobs are content-addressed and immutable,
//! so an entry never goes stale; deleted images are refused by the firmware lookup before the
//! cache is asked (`firmware_index::FirmwareIndex`, `Fleet::firmware_file`).
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
    let bytes = cell.get_or_try_init(|| load(path.to_path_buf())).await;
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

/// Read a blob into memory, keeping the file open: on Linux the bytes of the copy are sent from
/// the file with `sendfile(2)` (see [`send`]), so the copy must stay tied to the very file it was
/// read from. Blobs are written once and renamed into place, never changed, so the two agree.
async fn load(path: std::path::PathBuf) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut buf = Vec::with_capacity(file.metadata()?.len() as usize);
        file.read_to_end(&mut buf)?;
        Ok(Held::into_bytes(buf.into_boxed_slice(), file))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The owner of a cached copy. On Linux, [`send`] knows the copy's address range and its file
/// from creation until this is dropped (with the last `Bytes` that refers to it).
struct Held {
    buf: Box<[u8]>,
}

impl Held {
    fn into_bytes(buf: Box<[u8]>, file: std::fs::File) -> Bytes {
        let (start, len) = (buf.as_ptr() as usize, buf.len());
        let bytes = Bytes::from_owner(Held { buf });
        #[cfg(target_os = "linux")]
        send::register(start, len, Arc::new(file));
        #[cfg(not(target_os = "linux"))]
        let _ = (start, len, file);
        bytes
    }
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Forget the region before its memory is freed (and possibly reused for other data).
        #[cfg(target_os = "linux")]
        send::unregister(self.buf.as_ptr() as usize);
    }
}

pub mod send;
