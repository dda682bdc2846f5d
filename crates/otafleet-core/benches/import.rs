//! Import speed of a 4 MB image (BENCHMARKS.md): the pure part (SHA-256 + MD5 + inspection, in
//! memory) and the whole `Fleet::import` (staged to a temp file while hashing, fsynced, read back
//! and inspected; the bytes are already in the library after the first round, so later rounds
//! stop at the dedup lookup and measure import minus the INSERT).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use md5::Md5;
use otafleet_core::firmware::{ImportRequest, ImportSource};
use otafleet_core::{Fleet, Settings};
use otafleet_image::{inspect, synth, Chip};
use sha2::{Digest, Sha256};

fn image() -> Vec<u8> {
    synth::AppImage::new(Chip::Esp32s3)
        .project("bench")
        .version("1.0.0")
        .payload_len(4 * 1024 * 1024 - 4096)
        .build()
}

fn hash_and_inspect(c: &mut Criterion) {
    let bytes = image();
    let mut g = c.benchmark_group("import_4mb");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("hash_and_inspect", |b| {
        b.iter(|| {
            let sha = Sha256::digest(&bytes);
            let md5 = Md5::digest(&bytes);
            let info = inspect(&bytes).expect("a valid image");
            (sha, md5, info)
        })
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fleet = rt.block_on(Fleet::open(Settings::new(dir.path()))).unwrap();
    g.bench_function("fleet_import", |b| {
        b.iter(|| {
            let req = ImportRequest {
                filename: "bench-1.0.0.bin".into(),
                project: None,
                version: None,
                source: ImportSource::Upload,
                source_path: None,
                only_project: None,
            };
            rt.block_on(fleet.import(req, &bytes[..])).expect("import")
        })
    });
    g.finish();
}

criterion_group!(benches, hash_and_inspect);
criterion_main!(benches);
