//! Runs every real firmware file in the shared test-data folder against the
//! expectations in that folder's PROVENANCE.md (both tables are parsed from
//! the Markdown, so a folder with more files and rows works unchanged).
//!
//! Folder: `$OTAFLEET_TESTDATA`, else `<manifest>/../../../shared/testdata/firmware`.
//! When it is missing the test prints `SKIPPED: corpus not found at …` on
//! stderr and returns — its name ends in `_requires_corpus` so the runner's
//! list shows what it was — except under `CI=true`, where it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use otafleet_image::{inspect, Chip, ImageInfo, RejectReason};
use sha2::{Digest, Sha256};

/// Exact reject codes for files whose Markdown description allows more than one.
const EXACT_CODES: &[(&str, &str)] = &[
    ("esp32-arduino-esphome-otadata.bin", "otadata"),
    ("esp32-arduino-esphome-partitions.bin", "partition_table"),
    ("esp32-idf-partition-table.bin", "partition_table"),
    ("esp32-arduino-esphome-bootloader.bin", "bootloader"),
    ("esp32-idf-bootloader-v5.2.2.bin", "bootloader"),
    ("esp32s3-idf-ram-only-app.bin", "ram_only_app"),
    (
        "esp32-arduino-esphome-2022.3.0-factory-merged.bin",
        "merged_flash_image",
    ),
];

fn corpus_dir() -> PathBuf {
    match std::env::var_os("OTAFLEET_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/firmware"),
    }
}

/// A row of the "What inspect.py found" table.
#[derive(Debug)]
struct Expected {
    accept: bool,
    chip: Option<(Chip, Option<u16>)>,
    found: String,
    version: Option<String>,
    project: Option<String>,
    idf_ver: Option<String>,
    date_time: Option<String>,
    hash_appended: Option<bool>,
}

fn cell(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s == "—" || s == "-" {
        return None;
    }
    Some(s.trim_matches('`').to_string())
}

fn parse_chip(s: &str) -> Option<(Chip, Option<u16>)> {
    let s = cell(s)?;
    let (name, id) = match s.split_once(" (") {
        Some((name, rest)) => (name, rest.trim_end_matches(')').parse::<u16>().ok()),
        None => (s.as_str(), None),
    };
    let chip = Chip::from_name(name).unwrap_or_else(|| panic!("unknown chip name {name:?}"));
    Some((chip, id))
}

/// (expectations by file, (size, sha256) by file) from PROVENANCE.md.
#[allow(clippy::type_complexity)]
fn parse_provenance(md: &str) -> (BTreeMap<String, Expected>, BTreeMap<String, (u64, String)>) {
    let mut expected = BTreeMap::new();
    let mut sums = BTreeMap::new();
    for line in md.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let file = cells[0].trim_matches('`').to_string();
        match cells.len() {
            9 => {
                let e = Expected {
                    accept: cells[1].starts_with("accept"),
                    chip: parse_chip(cells[2]),
                    found: cells[3].to_string(),
                    version: cell(cells[4]),
                    project: cell(cells[5]),
                    idf_ver: cell(cells[6]),
                    date_time: cell(cells[7]),
                    hash_appended: match cells[8] {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    },
                };
                assert!(
                    e.accept || cells[1].starts_with("REJECT"),
                    "row {file}: Expected column {:?} is neither accept nor REJECT",
                    cells[1]
                );
                expected.insert(file, e);
            }
            7 => {
                let size = cells[5].parse::<u64>().expect("size column");
                sums.insert(file, (size, cells[6].trim_matches('`').to_string()));
            }
            n => panic!("unexpected table row with {n} cells: {line}"),
        }
    }
    (expected, sums)
}

fn check_accepted(name: &str, bytes: &[u8], e: &Expected, info: &ImageInfo) {
    if let Some((chip, id)) = e.chip {
        assert_eq!(info.chip, chip, "{name}: chip");
        if id.is_some() {
            assert_eq!(info.chip.id(), id, "{name}: chip id");
        }
    }
    let described = [&e.version, &e.project, &e.idf_ver, &e.date_time]
        .iter()
        .any(|v| v.is_some());
    match (&info.app_desc, described) {
        (None, false) => {}
        (None, true) => panic!("{name}: expected an app descriptor, found none"),
        (Some(d), false) => panic!("{name}: expected no app descriptor, found {d:?}"),
        (Some(d), true) => {
            assert_eq!(Some(&d.version), e.version.as_ref(), "{name}: version");
            assert_eq!(
                Some(&d.project_name),
                e.project.as_ref(),
                "{name}: project_name"
            );
            assert_eq!(Some(&d.idf_ver), e.idf_ver.as_ref(), "{name}: idf_ver");
            let dt = format!("{} {}", d.date, d.time);
            assert_eq!(Some(&dt), e.date_time.as_ref(), "{name}: date time");
            if e.found.contains("at offset 32") {
                assert_eq!(d.file_offset, 32, "{name}: descriptor offset");
            }
        }
    }
    if let Some(h) = e.hash_appended {
        assert_eq!(info.hash_appended, h, "{name}: hash_appended");
    }
    let len = bytes.len() as u64;
    assert_eq!(
        info.image_len + info.trailing_bytes,
        len,
        "{name}: image_len + trailing"
    );
    if info.hash_appended {
        let end = info.image_len as usize;
        let tail = hex::encode(&bytes[end - 32..end]);
        assert_eq!(
            info.appended_sha256.as_deref(),
            Some(tail.as_str()),
            "{name}: digest"
        );
    } else {
        assert_eq!(info.appended_sha256, None, "{name}");
    }
    if e.found.contains("eboot") {
        assert!(info.esp8266_eboot, "{name}: eboot layout");
        assert_eq!(info.app_offset, 0x1000, "{name}: app offset");
    }
    for s in &info.segments {
        assert!(
            u64::from(s.file_offset) + u64::from(s.len) <= info.image_len,
            "{name}: {s:?}"
        );
    }
    assert!(
        info.segments.iter().any(|s| s.flash_mapped),
        "{name}: no flash-mapped segment"
    );
    check_damage_is_detected(name, bytes, info);
}

/// Flipping a byte of segment data must give a checksum error, and editing
/// the header (covered only by the digest) a hash error.
fn check_damage_is_detected(name: &str, bytes: &[u8], info: &ImageInfo) {
    let seg = info
        .segments
        .iter()
        .find(|s| s.len > 0)
        .expect("a non-empty segment");
    let mut damaged = bytes.to_vec();
    damaged[seg.file_offset as usize + seg.len as usize / 2] ^= 0x10;
    assert_eq!(
        inspect(&damaged).unwrap_err().code(),
        "checksum_mismatch",
        "{name}: flipped data byte"
    );
    if info.hash_appended && info.format == otafleet_image::ImageFormat::Esp32App {
        let mut damaged = bytes.to_vec();
        damaged[2] ^= 0x01; // SPI mode: in the digest, not in the checksum
        assert_eq!(
            inspect(&damaged),
            Err(RejectReason::HashMismatch),
            "{name}: header edit"
        );
    }
    // Every strict prefix of the image is refused (sampled; all lengths in tests/hostile.rs).
    let image_len = info.image_len as usize;
    for cut in (0..image_len)
        .step_by(7919)
        .chain(image_len.saturating_sub(40)..image_len)
    {
        let r = inspect(&bytes[..cut]);
        assert!(r.is_err(), "{name}: prefix of {cut} bytes accepted");
    }
}

fn check_rejected(name: &str, bytes: &[u8], e: &Expected, reason: &RejectReason) {
    let found = &e.found;
    let allowed: Vec<&str> = if let Some((_, code)) = EXACT_CODES.iter().find(|(f, _)| *f == name) {
        vec![code]
    } else if found.contains("PARTITION TABLE") {
        vec!["partition_table"]
    } else if found.contains("MERGED") {
        vec!["merged_flash_image"]
    } else if found.contains("esp_bootloader_desc_t") {
        vec!["bootloader"]
    } else if found.contains("RAM-only") {
        if e.version.is_some() || e.project.is_some() {
            vec!["ram_only_app"]
        } else {
            vec!["bootloader"]
        }
    } else if found.contains("not an ESP image") {
        vec!["not_esp_image", "otadata"]
    } else {
        vec![]
    };
    if !allowed.is_empty() {
        assert!(
            allowed.contains(&reason.code()),
            "{name}: rejected as {:?}, expected one of {allowed:?}",
            reason.code()
        );
    }
    if let RejectReason::MergedFlashImage { app_offset } = reason {
        if bytes.get(0x10000) == Some(&0xE9) {
            assert_eq!(
                *app_offset,
                Some(0x10000),
                "{name}: app offset in merged image"
            );
        }
    }
    assert!(
        reason.to_string().contains("upload"),
        "{name}: message without advice"
    );
}

#[test]
fn corpus_matches_provenance_requires_corpus() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "corpus not found at {} and CI=true: CI always has it (set OTAFLEET_TESTDATA?)",
                dir.display()
            );
        }
        eprintln!("SKIPPED: corpus not found at {}", dir.display());
        return;
    }
    let md = std::fs::read_to_string(dir.join("PROVENANCE.md")).expect("PROVENANCE.md in corpus");
    let (expected, sums) = parse_provenance(&md);
    assert!(
        !expected.is_empty() && !sums.is_empty(),
        "no table rows parsed"
    );
    for file in expected.keys().chain(sums.keys()) {
        assert!(
            dir.join(file).is_file(),
            "{file} is listed in PROVENANCE.md but missing"
        );
    }

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("readable corpus")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .bin files in {}", dir.display());

    let (mut accepted, mut rejected) = (0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(path).expect("readable file");
        let (size, sha) = sums
            .get(&name)
            .unwrap_or_else(|| panic!("{name}: no SHA-256 row"));
        assert_eq!(bytes.len() as u64, *size, "{name}: size");
        assert_eq!(&hex::encode(Sha256::digest(&bytes)), sha, "{name}: SHA-256");
        let e = expected
            .get(&name)
            .unwrap_or_else(|| panic!("{name}: no expectation row"));
        match (inspect(&bytes), e.accept) {
            (Ok(info), true) => {
                check_accepted(&name, &bytes, e, &info);
                accepted += 1;
            }
            (Err(reason), false) => {
                check_rejected(&name, &bytes, e, &reason);
                rejected += 1;
            }
            (Ok(info), false) => panic!("{name}: must be rejected, was accepted as {info:?}"),
            (Err(reason), true) => panic!("{name}: must be accepted, was rejected: {reason}"),
        }
    }
    eprintln!(
        "corpus: {accepted} accepted, {rejected} rejected, from {}",
        dir.display()
    );
}
