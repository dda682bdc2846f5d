//! The blob-store contract: the same cases against the local store and the S3 backend on a real
//! S3 server (`s3s-fs`, started here; without it the S3 cases print SKIPPED, and fail under
//! `CI=true`). A case that cannot apply to the local store says so and why.
//!
//! Run: `cargo test -p otafleet-core --test blob_contract`

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, SystemTime};

use otafleet_core::blobs::{BlobConfig, BlobStore, StoredBlob};
use sha2::{Digest, Sha256};

#[path = "support/s3s.rs"]
mod s3s;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Local,
    S3,
}

/// A store under test: its data directory, its S3 server (S3 only), the store.
struct Rig {
    kind: Kind,
    data: tempfile::TempDir,
    s3: Option<s3s::S3Server>,
    store: BlobStore,
}

impl Rig {
    /// Another instance on the same bucket (S3) or directory (local), with a fresh cache.
    async fn another(&self, cache_bytes: u64, grace: Duration) -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = match &self.s3 {
            Some(s3) => open(dir.path(), Some(s3.url()), cache_bytes, grace).await,
            None => BlobStore::open(self.data.path()).await.unwrap(),
        };
        (dir, store)
    }
}

async fn open(
    dir: &std::path::Path,
    url: Option<String>,
    cache_bytes: u64,
    grace: Duration,
) -> BlobStore {
    s3s::set_credentials();
    BlobStore::open_with(
        dir,
        &BlobConfig {
            url,
            cache_bytes,
            grace,
        },
    )
    .await
    .expect("open the blob store")
}

/// A rig of `kind`, or `None` when S3 is not available here (SKIPPED printed).
async fn rig(kind: Kind, what: &str, cache_bytes: u64, grace: Duration) -> Option<Rig> {
    let data = tempfile::tempdir().unwrap();
    let s3 = match kind {
        Kind::Local => None,
        Kind::S3 => Some(s3s::start(what)?),
    };
    let store = open(
        data.path(),
        s3.as_ref().map(|s| s.url()),
        cache_bytes,
        grace,
    )
    .await;
    Some(Rig {
        kind,
        data,
        s3,
        store,
    })
}

const BIG_CACHE: u64 = 64 * 1024 * 1024;
const LONG_GRACE: Duration = Duration::from_secs(3600);

/// Both kinds, default knobs.
async fn rigs(what: &str) -> Vec<Rig> {
    let mut out = Vec::new();
    for kind in [Kind::Local, Kind::S3] {
        if let Some(r) = rig(kind, what, BIG_CACHE, LONG_GRACE).await {
            out.push(r);
        }
    }
    out
}

/// `len` bytes that differ for each `seed`.
fn bytes(seed: u8, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed).wrapping_mul(0x85eb_ca6b);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Stage and commit `b`; its SHA-256.
async fn put(store: &BlobStore, b: &[u8]) -> String {
    let staged = store.stage(b, u64::MAX).await.unwrap();
    let sha256 = staged.sha256.clone();
    store.commit(staged).await.expect("commit");
    sha256
}

/// The whole blob as a download reads it.
async fn read(store: &BlobStore, sha256: &str) -> Vec<u8> {
    let blob = store.local(sha256).await.expect("local file of the blob");
    std::fs::read(blob.path()).unwrap()
}

fn not_applicable(kind: Kind, case: &str, why: &str) -> bool {
    if kind == Kind::Local {
        eprintln!("{case}: not applicable to the local store: {why}");
        return true;
    }
    false
}

#[tokio::test]
async fn stores_and_reads_back() {
    for r in rigs("stores_and_reads_back").await {
        let b = bytes(1, 300_000);
        let sha256 = put(&r.store, &b).await;
        assert_eq!(sha256, sha(&b), "{:?}", r.kind);
        assert_eq!(read(&r.store, &sha256).await, b, "{:?}: read back", r.kind);
        // Storing the same bytes again is harmless and changes nothing.
        assert_eq!(put(&r.store, &b).await, sha256);
        assert_eq!(r.store.list().await.unwrap(), vec![sha256.clone()]);
        // Another instance (a restart, or another server on the bucket) reads the same bytes.
        let (_dir, other) = r.another(BIG_CACHE, LONG_GRACE).await;
        assert_eq!(
            read(&other, &sha256).await,
            b,
            "{:?}: another instance",
            r.kind
        );
        if r.kind == Kind::S3 {
            assert_eq!(
                other.cache_stats().unwrap().fetches,
                1,
                "fetched from S3 once"
            );
        }
    }
}

#[tokio::test]
async fn exists_and_lists_exactly_what_was_stored() {
    for r in rigs("exists_and_lists").await {
        assert!(r.store.list().await.unwrap().is_empty());
        let a = put(&r.store, &bytes(2, 1000)).await;
        let b = put(&r.store, &bytes(3, 70_000)).await;
        let mut listed = r.store.list().await.unwrap();
        listed.sort();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(listed, want, "{:?}", r.kind);
        assert!(r.store.exists(&a).await.unwrap());
        assert!(!r.store.exists(&sha(b"never stored")).await.unwrap());
        // A staged upload that was discarded leaves nothing.
        let staged = r.store.stage(&bytes(4, 10)[..], u64::MAX).await.unwrap();
        staged.discard().await;
        assert_eq!(r.store.list().await.unwrap().len(), 2, "{:?}", r.kind);
    }
}

#[tokio::test]
async fn range_reads_come_through_the_cache_and_concurrent_fills_fetch_once() {
    for r in rigs("range_reads").await {
        let b = bytes(5, 500_000);
        let sha256 = put(&r.store, &b).await;
        let (_dir, fresh) = r.another(BIG_CACHE, LONG_GRACE).await;
        // Eight downloads of a blob not yet cached, at once.
        let paths = futures_join(&fresh, &sha256, 8).await;
        if r.kind == Kind::S3 {
            let stats = fresh.cache_stats().unwrap();
            assert_eq!(
                stats.fetches, 1,
                "one fetch for eight concurrent first reads"
            );
            assert_eq!(stats.hits, 7);
        }
        // A range as a 206 reads it: seek and read from the local file.
        let mut f = std::fs::File::open(&paths[0]).unwrap();
        f.seek(SeekFrom::Start(123_456)).unwrap();
        let mut part = vec![0u8; 4096];
        f.read_exact(&mut part).unwrap();
        assert_eq!(part, b[123_456..123_456 + 4096], "{:?}", r.kind);
        // A suffix range (the last 100 bytes).
        let mut f = std::fs::File::open(&paths[3]).unwrap();
        f.seek(SeekFrom::End(-100)).unwrap();
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, b[b.len() - 100..]);
        if r.kind == Kind::S3 {
            assert_eq!(
                fresh.cache_stats().unwrap().fetches,
                1,
                "later reads hit the cache"
            );
        }
    }
}

/// `n` concurrent `local()` calls; the paths they gave.
async fn futures_join(store: &BlobStore, sha256: &str, n: usize) -> Vec<std::path::PathBuf> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let store = store.clone();
        let sha256 = sha256.to_string();
        tasks.push(tokio::spawn(async move {
            store.local(&sha256).await.unwrap().path().to_path_buf()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_cache_bound_evicts_least_recently_used_but_never_a_file_being_opened() {
    for kind in [Kind::Local, Kind::S3] {
        if not_applicable(
            kind,
            "cache bound",
            "it has no cache; its blobs are the files",
        ) {
            continue;
        }
        let Some(r) = rig(kind, "cache_bound", BIG_CACHE, LONG_GRACE).await else {
            continue;
        };
        let blobs: Vec<Vec<u8>> = (10..14).map(|s| bytes(s, 100_000)).collect();
        let mut shas = Vec::new();
        for b in &blobs {
            shas.push(put(&r.store, b).await);
        }
        // Room for two and a half blobs.
        let (_dir, small) = r.another(250_000, LONG_GRACE).await;
        let a = small.local(&shas[0]).await.unwrap();
        let a_path = a.path().to_path_buf();
        let mut a_open = std::fs::File::open(&a_path).unwrap();
        assert_eq!(read(&small, &shas[1]).await, blobs[1]);
        // Over the bound now, but `a` is held (a download has not opened it yet): b goes, not a.
        assert_eq!(read(&small, &shas[2]).await, blobs[2]);
        assert!(a_path.exists(), "a held file is not evicted");
        assert!(
            !small.path(&shas[1]).exists(),
            "the least recently used free file went"
        );
        drop(a);
        // Released: the next fill evicts it, the least recently used; its open descriptor
        // still reads the whole image (a download in flight is not cut).
        assert_eq!(read(&small, &shas[3]).await, blobs[3]);
        assert!(
            !a_path.exists(),
            "a released file is evicted when over the bound"
        );
        let mut rest = Vec::new();
        a_open.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, blobs[0], "an evicted file being sent stays readable");
        let stats = small.cache_stats().unwrap();
        assert!(stats.bytes <= 250_000, "within the bound: {stats:?}");
        assert_eq!(stats.evictions, 2, "{stats:?}");
        // An evicted blob is fetched again.
        assert_eq!(read(&small, &shas[0]).await, blobs[0]);
        assert_eq!(small.cache_stats().unwrap().fetches, 5);
    }
}

#[tokio::test]
async fn a_corrupted_cached_file_is_detected_and_fetched_again() {
    for kind in [Kind::Local, Kind::S3] {
        if not_applicable(
            kind,
            "corrupted cache",
            "it has no cache; the file it stores is the only copy",
        ) {
            continue;
        }
        let Some(r) = rig(kind, "corrupted_cache", BIG_CACHE, LONG_GRACE).await else {
            continue;
        };
        let b = bytes(20, 200_000);
        let sha256 = put(&r.store, &b).await;
        let data = tempfile::tempdir().unwrap();
        let url = r.s3.as_ref().unwrap().url();
        let first = open(data.path(), Some(url.clone()), BIG_CACHE, LONG_GRACE).await;
        assert_eq!(read(&first, &sha256).await, b);
        let cached = first.path(&sha256);
        drop(first);
        // Same size, one byte flipped: only the hash can tell.
        let mut damaged = std::fs::read(&cached).unwrap();
        damaged[1000] ^= 0x40;
        std::fs::write(&cached, &damaged).unwrap();
        // The next process on this data directory hashes the file before its first use.
        let second = open(data.path(), Some(url.clone()), BIG_CACHE, LONG_GRACE).await;
        assert_eq!(
            read(&second, &sha256).await,
            b,
            "the damaged copy is never served"
        );
        let stats = second.cache_stats().unwrap();
        assert_eq!((stats.corrupt, stats.fetches), (1, 1), "{stats:?}");
        // Cut short while running: the size check on every use catches it.
        std::fs::write(&cached, &b[..1000]).unwrap();
        assert_eq!(read(&second, &sha256).await, b);
        assert_eq!(second.cache_stats().unwrap().fetches, 2);
        // Damaged in the store itself: refused, nothing served or cached.
        let object = r.s3.as_ref().unwrap().object_file(&sha256);
        let mut bad = std::fs::read(&object).unwrap();
        bad[5] ^= 1;
        std::fs::write(&object, &bad).unwrap();
        let (_dir, third) = r.another(BIG_CACHE, LONG_GRACE).await;
        let err = third
            .local(&sha256)
            .await
            .expect_err("damaged object refused");
        assert_eq!(err.code(), "blob_corrupt", "{err}");
        assert!(!third.path(&sha256).exists(), "nothing cached");
    }
}

#[tokio::test]
async fn a_wrong_checksum_is_refused_by_the_store_and_nothing_is_listed() {
    for kind in [Kind::Local, Kind::S3] {
        if not_applicable(
            kind,
            "wrong checksum",
            "nothing leaves the machine between hashing and the rename, so there is no store \
             to check a checksum",
        ) {
            continue;
        }
        let Some(r) = rig(kind, "wrong_checksum", BIG_CACHE, LONG_GRACE).await else {
            continue;
        };
        let b = bytes(30, 150_000);
        let staged = r.store.stage(&b[..], u64::MAX).await.unwrap();
        let staged_sha = staged.sha256.clone();
        // The staged file changes after it was hashed (a bad disk, a bug): the checksum sent is
        // the one computed while staging, so the store must refuse what it receives.
        let mut changed = std::fs::read(&staged.path).unwrap();
        changed[77_777] ^= 0x01;
        std::fs::write(&staged.path, &changed).unwrap();
        let staged_path = staged.path.clone();
        let err = r.store.commit(staged).await.expect_err("refused");
        assert_eq!(err.code(), "blob_checksum_refused", "{err}");
        eprintln!("refused as it must be: {err}");
        assert!(err.to_string().contains(&staged_sha), "{err}");
        assert!(!staged_path.exists(), "the staged file is dropped");
        assert!(r.store.list().await.unwrap().is_empty(), "nothing listed");
        assert!(!r.store.exists(&staged_sha).await.unwrap());
        let s3 = r.s3.as_ref().unwrap();
        assert_eq!(
            s3.object_files(),
            Vec::<std::path::PathBuf>::new(),
            "nothing left in the bucket, not even the refused upload's incoming object"
        );
        // The right bytes are accepted afterwards.
        assert_eq!(put(&r.store, &b).await, staged_sha);
        assert_eq!(r.store.list().await.unwrap(), vec![staged_sha]);
    }
}

#[tokio::test]
async fn deletion_waits_for_the_grace_period() {
    for r in rigs("deletion_grace").await {
        let b = bytes(40, 50_000);
        let sha256 = put(&r.store, &b).await;
        let listed = r.store.list_stored().await.unwrap();
        assert_eq!(listed.len(), 1);
        match r.kind {
            Kind::Local => {
                // At start, under the data directory's lock: an orphan goes at once.
                assert!(r.store.collect(&listed[0]).await.unwrap());
                assert!(r.store.list().await.unwrap().is_empty());
            }
            Kind::S3 => {
                // A deleted image: the object stays, only the cached copy goes.
                r.store.remove(&sha256).await.unwrap();
                assert!(!r.store.path(&sha256).exists());
                assert_eq!(r.store.list().await.unwrap(), vec![sha256.clone()]);
                // Younger than the grace period (an hour): kept.
                assert!(!r.store.collect(&listed[0]).await.unwrap());
                assert_eq!(r.store.list().await.unwrap(), vec![sha256.clone()]);
                // A listing that says "old" is checked again with the store first: the object
                // was stored again since (another instance importing the same bytes) — kept.
                let (_d, no_grace) = r.another(BIG_CACHE, Duration::ZERO).await;
                let (_d2, hour) = r.another(BIG_CACHE, Duration::from_secs(60)).await;
                let stale = StoredBlob {
                    sha256: sha256.clone(),
                    modified: Some(SystemTime::UNIX_EPOCH),
                };
                assert!(
                    !hour.collect(&stale).await.unwrap(),
                    "re-checked: still young"
                );
                assert_eq!(r.store.list().await.unwrap(), vec![sha256.clone()]);
                // Past the grace period (here zero): deleted.
                let now = no_grace.list_stored().await.unwrap();
                assert!(no_grace.collect(&now[0]).await.unwrap());
                assert!(r.store.list().await.unwrap().is_empty());
                assert!(r.s3.as_ref().unwrap().object_files().is_empty());
            }
        }
    }
}

/// The narrow race the grace period leaves: an older object of the same bytes looks old enough
/// to another instance's collector, this instance's import stores the bytes again, and the
/// collector's DELETE lands after that PUT. The import looks for its object once its row is
/// written (`ensure_stored`) and stores it again from its cached copy.
#[tokio::test]
async fn an_object_deleted_between_store_and_row_is_stored_again() {
    for r in rigs("deleted_between_store_and_row").await {
        if not_applicable(
            r.kind,
            "deleted_between_store_and_row",
            "its collector runs only at start, under the data directory's lock, so no import runs beside it",
        ) {
            r.store.ensure_stored(&sha(&bytes(50, 10))).await.unwrap();
            continue;
        }
        let b = bytes(50, 70_000);
        let sha256 = put(&r.store, &b).await;
        // Another instance's collector, with nothing to keep it (grace zero), deletes it.
        let (_d, collector) = r.another(BIG_CACHE, Duration::ZERO).await;
        let listed = collector.list_stored().await.unwrap();
        assert!(collector.collect(&listed[0]).await.unwrap());
        assert!(r.s3.as_ref().unwrap().object_files().is_empty());
        // The importing instance checks after writing its row: stored again, the same bytes.
        r.store.ensure_stored(&sha256).await.unwrap();
        assert_eq!(r.store.list().await.unwrap(), vec![sha256.clone()]);
        let (_d2, fresh) = r.another(BIG_CACHE, LONG_GRACE).await;
        assert_eq!(read(&fresh, &sha256).await, b, "read back from the store");
        // Nothing to do when the object is there.
        r.store.ensure_stored(&sha256).await.unwrap();
        // With the cached copy gone too, it says what to do.
        collector
            .collect(&collector.list_stored().await.unwrap()[0])
            .await
            .unwrap();
        r.store.remove(&sha256).await.unwrap();
        let e = r.store.ensure_stored(&sha256).await.unwrap_err();
        assert!(e.to_string().contains("upload the same file again"), "{e}");
    }
}

#[tokio::test]
async fn an_unreachable_or_misconfigured_store_fails_with_what_to_do() {
    let Some(s3) = s3s::start("unreachable_store") else {
        return;
    };
    let url = s3.url();
    let addr = s3.addr;
    let dir = tempfile::tempdir().unwrap();
    s3s::set_credentials();
    // A bucket that does not exist: refused at open, naming the bucket.
    let err = BlobStore::open_with(
        dir.path(),
        &BlobConfig {
            url: Some(url.replace(s3s::BUCKET, "no-such-bucket")),
            ..BlobConfig::default()
        },
    )
    .await
    .expect_err("no bucket");
    assert_eq!(err.code(), "blob_store_unusable", "{err}");
    assert!(err.to_string().contains("no-such-bucket"), "{err}");
    // The store goes away after start: an upload fails with the store named, nothing listed.
    let store = open(dir.path(), Some(url), BIG_CACHE, LONG_GRACE).await;
    drop(s3);
    let staged = store.stage(&bytes(50, 1000)[..], u64::MAX).await.unwrap();
    let err = store.commit(staged).await.expect_err("store down");
    assert_eq!(err.code(), "blob_store_failed", "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    // A URL that is not one.
    let err = otafleet_core::blobs::S3Location::parse("s3://b?endpont=http://x").unwrap_err();
    assert!(err.to_string().contains("endpont"), "{err}");
}
