//! Every path that refuses a file, with the reason and its code.

use otafleet_image::synth::{self, AppImage, PartitionTable};
use otafleet_image::{inspect, Chip, RejectReason};

fn esp32_family() -> Vec<Chip> {
    Chip::all_known()
        .into_iter()
        .filter(|c| *c != Chip::Esp8266)
        .collect()
}

fn code(bytes: &[u8]) -> &'static str {
    match inspect(bytes) {
        Ok(info) => panic!("accepted: {info:?}"),
        Err(r) => r.code(),
    }
}

#[test]
fn empty_file() {
    assert_eq!(inspect(&[]), Err(RejectReason::Empty));
}

#[test]
fn not_an_esp_image() {
    assert_eq!(inspect(b"hello world"), Err(RejectReason::NotEspImage));
    assert_eq!(inspect(&[0u8; 4096]), Err(RejectReason::NotEspImage));
    // erased flash without an image at 0x1000
    assert_eq!(inspect(&[0xFFu8; 0x3000]), Err(RejectReason::NotEspImage));
    assert_eq!(inspect(&[0xEA]), Err(RejectReason::NotEspImage));
}

#[test]
fn partition_tables() {
    assert_eq!(
        inspect(&PartitionTable::single_app().build()),
        Err(RejectReason::PartitionTable)
    );
    assert_eq!(
        inspect(&PartitionTable::two_ota(0x10000).build()),
        Err(RejectReason::PartitionTable)
    );
    assert_eq!(inspect(&[0xAA, 0x50]), Err(RejectReason::PartitionTable));
}

#[test]
fn otadata() {
    assert_eq!(inspect(&synth::otadata(1)), Err(RejectReason::OtaData));
    assert_eq!(inspect(&vec![0xFFu8; 0x2000]), Err(RejectReason::OtaData));
    // sequence 233: the file starts with 0xE9 and must still be otadata
    let e9 = synth::otadata(0xE9);
    assert_eq!(e9[0], 0xE9);
    assert_eq!(inspect(&e9), Err(RejectReason::OtaData));
    // a damaged CRC is no longer recognisable as otadata
    let mut bad = synth::otadata(1);
    bad[28] ^= 1;
    assert_eq!(inspect(&bad), Err(RejectReason::NotEspImage));
}

#[test]
fn bootloaders_for_every_chip() {
    for chip in esp32_family() {
        assert_eq!(
            inspect(&synth::bootloader(chip)),
            Err(RejectReason::Bootloader),
            "{chip}"
        );
        assert_eq!(
            inspect(&synth::idf5_bootloader(chip, "v5.2.2-dirty")),
            Err(RejectReason::Bootloader),
            "{chip}"
        );
    }
}

#[test]
fn bootloader_is_reported_even_when_damaged() {
    let mut bl = synth::bootloader(Chip::Esp32);
    synth::corrupt_checksum(&mut bl);
    assert_eq!(inspect(&bl), Err(RejectReason::Bootloader));
}

#[test]
fn ram_only_apps_for_every_chip() {
    for chip in esp32_family() {
        let bin = synth::ram_only_app(chip, "hello_world", "05bdc2c-dirty");
        assert_eq!(inspect(&bin), Err(RejectReason::RamOnlyApp), "{chip}");
    }
}

#[test]
fn merged_images_for_every_chip() {
    let app = AppImage::new(Chip::Esp32).build();
    for chip in esp32_family() {
        let app = AppImage::new(chip).build();
        let bin = synth::merged(chip, &app);
        let expect_first = if chip.bootloader_offset() == 0 {
            0xE9
        } else {
            0xFF
        };
        assert_eq!(bin[0], expect_first, "{chip}");
        let err = inspect(&bin).unwrap_err();
        assert_eq!(
            err,
            RejectReason::MergedFlashImage {
                app_offset: Some(0x10000)
            },
            "{chip}"
        );
        assert!(
            err.to_string()
                .contains("it starts at 0x10000 in this file"),
            "{err}"
        );
    }
    // the app cut off: still merged, offset unknown
    let bin = synth::merged(Chip::Esp32, &app);
    assert_eq!(
        inspect(&bin[..0x10000]),
        Err(RejectReason::MergedFlashImage { app_offset: None })
    );
}

#[test]
fn merged_image_app_offset_comes_from_the_partition_table() {
    let app = AppImage::new(Chip::Esp32s3).build();
    let table = PartitionTable::new()
        .row("nvs", 1, 2, 0x9000, 0x6000)
        .row("factory", 0, 0, 0x20000, 0x10_0000)
        .build();
    let bin = synth::merged_with(
        0,
        &synth::bootloader(Chip::Esp32s3),
        0x8000,
        &table,
        0x20000,
        &app,
    );
    assert_eq!(
        inspect(&bin),
        Err(RejectReason::MergedFlashImage {
            app_offset: Some(0x20000)
        })
    );

    // partition table moved to 0x9000 (bigger bootloader)
    let bin = synth::merged_with(
        0,
        &synth::bootloader(Chip::Esp32c6),
        0x9000,
        &table,
        0x20000,
        &app,
    );
    assert_eq!(
        inspect(&bin),
        Err(RejectReason::MergedFlashImage {
            app_offset: Some(0x20000)
        })
    );

    // ESP32 layout with only a bootloader at 0x1000
    let mut bin = vec![0xFFu8; 0x1000];
    bin.extend_from_slice(&synth::bootloader(Chip::Esp32));
    assert_eq!(
        inspect(&bin),
        Err(RejectReason::MergedFlashImage { app_offset: None })
    );
}

#[test]
fn bootloader_followed_by_an_app_at_0x10000_without_table() {
    let mut bin = synth::bootloader(Chip::Esp32c3);
    bin.resize(0x10000, 0xFF);
    bin.extend_from_slice(&AppImage::new(Chip::Esp32c3).build());
    assert_eq!(
        inspect(&bin),
        Err(RejectReason::MergedFlashImage {
            app_offset: Some(0x10000)
        })
    );
}

#[test]
fn truncated_images_report_what_is_missing() {
    let bin = AppImage::new(Chip::Esp32).payload_len(1000).build();
    let info = inspect(&bin).unwrap();
    // inside the header
    assert_eq!(
        inspect(&bin[..20]),
        Err(RejectReason::Truncated {
            expected: 24,
            actual: 20
        })
    );
    // inside the first segment's data
    let first_end = 32 + u64::from(info.segments[0].len);
    assert_eq!(
        inspect(&bin[..100]),
        Err(RejectReason::Truncated {
            expected: first_end,
            actual: 100
        })
    );
    // all segments present, footer missing
    let last = info.segments.last().unwrap();
    let seg_end = (last.file_offset + last.len) as usize;
    assert_eq!(
        inspect(&bin[..seg_end]),
        Err(RejectReason::Truncated {
            expected: info.image_len,
            actual: seg_end as u64
        })
    );
    // digest cut short
    assert_eq!(
        inspect(&synth::truncate(&bin, bin.len() - 1)),
        Err(RejectReason::Truncated {
            expected: bin.len() as u64,
            actual: bin.len() as u64 - 1
        })
    );
    let msg = inspect(&bin[..100]).unwrap_err().to_string();
    assert!(
        msg.contains("cut short") && msg.contains("upload the complete .bin"),
        "{msg}"
    );
}

#[test]
fn too_many_segments() {
    for n in [17u8, 100, 255] {
        let mut bin = AppImage::new(Chip::Esp32).build();
        bin[1] = n;
        assert_eq!(inspect(&bin), Err(RejectReason::TooManySegments(n)));
    }
    let mut bin = AppImage::new(Chip::Esp32).build();
    bin[1] = 16; // allowed count, but only 4 are there: the walk runs off the end
    assert_eq!(code(&bin), "truncated");
}

#[test]
fn malformed_headers() {
    let mut bin = AppImage::new(Chip::Esp32).build();
    bin[1] = 0;
    assert_eq!(code(&bin), "malformed_header");
    let mut bin = AppImage::new(Chip::Esp32).build();
    bin[23] = 2;
    let err = inspect(&bin).unwrap_err();
    assert_eq!(err.code(), "malformed_header");
    assert!(err.to_string().contains("hash_appended is 0x02"), "{err}");
}

#[test]
fn checksum_mismatch() {
    let good = AppImage::new(Chip::Esp32c6).build();
    let info = inspect(&good).unwrap();
    let pos = synth::footer_pos(&good, 0, false).unwrap().checksum;
    assert_eq!(pos as u64, info.image_len - 33);
    let stored = good[pos];

    let mut bin = good.clone();
    synth::corrupt_checksum(&mut bin);
    assert_eq!(
        inspect(&bin),
        Err(RejectReason::ChecksumMismatch {
            expected: stored ^ 1,
            actual: stored
        })
    );
    for seg in 0..4 {
        let mut bin = good.clone();
        synth::corrupt_segment_data(&mut bin, seg);
        assert_eq!(
            inspect(&bin),
            Err(RejectReason::ChecksumMismatch {
                expected: stored,
                actual: stored ^ 0x40
            }),
            "segment {seg}"
        );
    }
}

#[test]
fn hash_mismatch() {
    let good = AppImage::new(Chip::Esp32p4).build();
    let mut bin = good.clone();
    synth::corrupt_hash(&mut bin);
    assert_eq!(inspect(&bin), Err(RejectReason::HashMismatch));
    // header bytes are covered by the digest but not by the checksum
    let mut bin = good.clone();
    bin[2] = 0; // SPI mode
    assert_eq!(inspect(&bin), Err(RejectReason::HashMismatch));
    synth::reseal(&mut bin);
    assert_eq!(inspect(&bin).unwrap().spi_mode, 0);
}

#[test]
fn foreign_containers() {
    assert_eq!(inspect(&[0x1F, 0x8B, 8, 0, 0, 0]), Err(RejectReason::Gzip));
    assert_eq!(inspect(b"\x7FELF\x01\x01\x01\0"), Err(RejectReason::Elf));
    assert_eq!(inspect(b"PK\x03\x04rest"), Err(RejectReason::Zip));
    let mut v2 = vec![0xEA, 4, 0, 0x20];
    v2.extend_from_slice(&[0u8; 60]);
    assert_eq!(inspect(&v2), Err(RejectReason::Esp8266V2Image));
}

#[test]
fn signature_first_container() {
    let app = AppImage::new(Chip::Esp32).build();
    let mut bin: Vec<u8> = (0..512).map(|i| (i * 7 + 3) as u8).collect();
    bin[0] = 0x30; // not a magic of anything
    bin.extend_from_slice(&app);
    assert_eq!(
        inspect(&bin),
        Err(RejectReason::SignedContainer { image_offset: 512 })
    );
    // 0xE9 at 512 but no valid image there
    let mut junk = vec![0u8; 600];
    junk[512] = 0xE9;
    assert_eq!(inspect(&junk), Err(RejectReason::NotEspImage));
}

#[test]
fn every_reason_has_a_stable_code_and_advice() {
    let expected = [
        "empty",
        "not_esp_image",
        "partition_table",
        "otadata",
        "bootloader",
        "ram_only_app",
        "merged_flash_image",
        "merged_flash_image",
        "truncated",
        "too_many_segments",
        "malformed_header",
        "checksum_mismatch",
        "hash_mismatch",
        "crc_mismatch",
        "gzip",
        "zip",
        "elf",
        "esp8266_v2_image",
        "esp8266_ram_only",
        "signed_container",
    ];
    let got: Vec<&str> = RejectReason::examples()
        .iter()
        .map(RejectReason::code)
        .collect();
    assert_eq!(got, expected);
    for r in RejectReason::examples() {
        assert!(r.to_string().contains("upload"), "{r:?}");
    }
}

#[test]
fn descriptor_at_offset_32_does_not_make_a_ram_image_an_app() {
    // App vs. bootloader is decided by the segments, not by the descriptor.
    for chip in [Chip::Esp32, Chip::Esp32s3, Chip::Esp32c6] {
        let [_, dram, iram, _] = synth::chip_addresses(chip);
        let mut first = synth::DescFields::default().bytes();
        first.extend_from_slice(&[0u8; 64]);
        let bin = synth::Esp32Image::new(chip.id().unwrap())
            .segment(dram, first)
            .segment(iram, vec![0x11; 256])
            .build();
        assert_eq!(inspect(&bin), Err(RejectReason::RamOnlyApp), "{chip}");
    }
}
