//! Hostile input: every prefix of valid images, random bytes and random
//! mutations from a fixed-seed generator. `inspect` must return (never panic,
//! never overflow), and whatever it accepts must be self-consistent.

use otafleet_image::synth::{self, AppImage, Esp8266App};
use otafleet_image::{inspect, Chip, ImageInfo, RejectReason};

/// xorshift64*: small, deterministic, good enough to scatter bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}

/// Invariants of any accepted result.
fn check_consistent(bytes: &[u8], info: &ImageInfo) {
    let len = bytes.len() as u64;
    assert_eq!(info.image_len + info.trailing_bytes, len);
    assert!(!info.segments.is_empty() && info.segments.len() <= 16);
    for s in &info.segments {
        assert!(u64::from(s.file_offset) + u64::from(s.len) <= info.image_len);
    }
    assert!(info.segments.iter().any(|s| s.flash_mapped));
    assert_eq!(info.hash_appended, info.appended_sha256.is_some());
}

fn run(bytes: &[u8]) -> Result<ImageInfo, RejectReason> {
    let r = inspect(bytes);
    if let Ok(info) = &r {
        check_consistent(bytes, info);
    }
    r
}

#[test]
fn every_prefix_of_an_esp32_app_is_truncated() {
    for chip in [Chip::Esp32, Chip::Esp32c6, Chip::Unknown(0x1F)] {
        let bin = AppImage::new(chip)
            .payload_len(700)
            .padding_segment()
            .build();
        assert!(run(&bin).is_ok());
        assert_eq!(run(&bin[..0]), Err(RejectReason::Empty));
        for cut in 1..bin.len() {
            match run(&bin[..cut]) {
                Err(RejectReason::Truncated { expected, actual }) => {
                    assert_eq!(actual, cut as u64);
                    assert!(expected > actual, "cut {cut}: expected {expected}");
                }
                other => panic!("{chip}: prefix of {cut} bytes gave {other:?}"),
            }
        }
    }
}

#[test]
fn every_prefix_of_esp8266_files_is_refused() {
    let arduino = Esp8266App::arduino().payload_len(500).build();
    let plain = Esp8266App::plain().payload_len(500).build();
    for bin in [&arduino, &plain] {
        assert!(run(bin).is_ok());
        for cut in 0..bin.len() {
            assert!(run(&bin[..cut]).is_err(), "prefix of {cut} bytes accepted");
        }
    }
    // RTOS SDK: a prefix without the (unflagged) digest is a valid image in
    // its own right; only check that nothing panics.
    let rtos = Esp8266App::rtos_sdk("p", "v").payload_len(500).build();
    for cut in 0..rtos.len() {
        let _ = run(&rtos[..cut]);
    }
}

#[test]
fn every_prefix_of_non_app_files_is_refused() {
    let files = [
        synth::bootloader(Chip::Esp32s3),
        synth::idf5_bootloader(Chip::Esp32, "v5.2.2"),
        synth::ram_only_app(Chip::Esp32s3, "p", "v"),
        synth::otadata(1),
        synth::PartitionTable::single_app().build(),
    ];
    for f in &files {
        for cut in 0..=f.len() {
            assert!(run(&f[..cut]).is_err());
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for i in 0..4000 {
        let len = rng.below(3000);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if len > 24 && i % 2 == 0 {
            // make it look like an image header with a small segment count
            buf[0] = 0xE9;
            buf[1] = (rng.below(18)) as u8;
            if i % 4 == 0 {
                buf[8..12].copy_from_slice(&[0xEE, 0, 0, 0]);
                buf[23] = (i % 3) as u8;
            }
        }
        if run(&buf).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted < 10, "{accepted} random buffers accepted");
}

#[test]
fn random_segment_headers_with_extreme_lengths() {
    let mut rng = Rng(42);
    let extremes = [
        0u32,
        1,
        3,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFF0,
        0xFFFF_FFF8,
        u32::MAX,
    ];
    for _ in 0..2000 {
        let mut buf = vec![0u8; 24 + rng.below(200)];
        buf[0] = 0xE9;
        buf[1] = 1 + rng.below(16) as u8;
        buf[8] = 0xEE;
        let mut off = 24;
        while off + 8 <= buf.len() {
            let addr = (rng.next() >> 32) as u32;
            let len = if rng.below(2) == 0 {
                extremes[rng.below(extremes.len())]
            } else {
                rng.below(64) as u32
            };
            buf[off..off + 4].copy_from_slice(&addr.to_le_bytes());
            buf[off + 4..off + 8].copy_from_slice(&len.to_le_bytes());
            off += 8 + rng.below(32);
        }
        let _ = run(&buf);
        // the same as an ESP8266 layout
        buf[8..12].copy_from_slice(&0x4020_1010u32.to_le_bytes());
        let _ = run(&buf);
    }
}

#[test]
fn random_mutations_of_valid_files() {
    let bases = [
        AppImage::new(Chip::Esp32).payload_len(2000).build(),
        AppImage::new(Chip::Esp32s3)
            .no_app_desc()
            .payload_len(2000)
            .build(),
        Esp8266App::arduino().payload_len(2000).build(),
        Esp8266App::rtos_sdk("p", "v").payload_len(2000).build(),
        synth::merged(
            Chip::Esp32c3,
            &AppImage::new(Chip::Esp32c3).payload_len(100).build(),
        ),
    ];
    let mut rng = Rng(7);
    for base in &bases {
        for _ in 0..400 {
            let mut bin = base.clone();
            for _ in 0..1 + rng.below(4) {
                // bias towards the headers, where the interesting fields are
                let at = if rng.below(2) == 0 {
                    rng.below(64.min(bin.len()))
                } else {
                    rng.below(bin.len())
                };
                if rng.below(3) == 0 && at + 4 <= bin.len() {
                    let v = [u32::MAX, 0x8000_0000, 0, (rng.next() >> 32) as u32][rng.below(4)];
                    bin[at..at + 4].copy_from_slice(&v.to_le_bytes());
                } else {
                    bin[at] ^= 1 << rng.below(8);
                }
            }
            let _ = run(&bin);
        }
    }
}
