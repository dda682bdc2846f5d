//! Valid ESP32-family application images built in memory: what `inspect` reports.

use otafleet_image::synth::{self, AppImage};
use otafleet_image::{inspect, Chip, ImageFormat};
use sha2::{Digest, Sha256};

fn esp32_family() -> Vec<Chip> {
    Chip::all_known()
        .into_iter()
        .filter(|c| *c != Chip::Esp8266)
        .collect()
}

#[test]
fn every_known_chip_app_is_accepted_with_its_descriptor() {
    for chip in esp32_family() {
        let bin = AppImage::new(chip)
            .project("blink")
            .version("1.2.3")
            .idf_ver("v5.3.1")
            .date("Mar  5 2025")
            .time("01:02:03")
            .payload_len(200_000)
            .build();
        let info = inspect(&bin).unwrap_or_else(|e| panic!("{chip}: {e}"));
        assert_eq!(info.chip, chip);
        assert_eq!(info.chip.id(), chip.id());
        assert_eq!(info.format, ImageFormat::Esp32App);
        let d = info.app_desc.as_ref().expect("descriptor");
        assert_eq!(
            (
                d.project_name.as_str(),
                d.version.as_str(),
                d.idf_ver.as_str()
            ),
            ("blink", "1.2.3", "v5.3.1")
        );
        assert_eq!(
            (d.date.as_str(), d.time.as_str()),
            ("Mar  5 2025", "01:02:03")
        );
        assert_eq!(d.file_offset, 32);
        assert!(!d.is_arduino() && !info.is_arduino());
        assert_eq!(info.segments.len(), 4);
        let mapped: Vec<bool> = info.segments.iter().map(|s| s.flash_mapped).collect();
        assert_eq!(
            mapped,
            [true, false, false, true],
            "{chip}: DROM, DRAM, IRAM, IROM"
        );
        assert_eq!(info.segments[0].file_offset, 32);
        assert_eq!(info.segments[3].len, 200_000);
        assert!(info.hash_appended);
        assert_eq!(info.image_len, bin.len() as u64);
        assert_eq!(info.trailing_bytes, 0);
        assert_eq!((info.spi_mode, info.flash_size.as_str()), (2, "4MB"));
        assert_eq!(info.min_chip_rev_full, Some(0));
        assert_eq!(info.max_chip_rev_full, Some(99));
        assert!(!info.esp8266_eboot);
        assert_eq!(info.app_offset, 0);
    }
}

#[test]
fn appended_sha256_is_the_digest_of_everything_before_it() {
    let bin = AppImage::new(Chip::Esp32c3).payload_len(10_000).build();
    let info = inspect(&bin).unwrap();
    let body = &bin[..bin.len() - 32];
    assert_eq!(
        info.appended_sha256,
        Some(hex::encode(Sha256::digest(body)))
    );
    assert_eq!(
        info.appended_sha256,
        Some(hex::encode(&bin[bin.len() - 32..]))
    );
}

#[test]
fn unknown_chip_ids_are_reported_not_refused() {
    for id in [0x0001u16, 0x001F, 0x0020, 0x3808, 0xFFFF] {
        let bin = AppImage::new(Chip::Unknown(id)).project("next-gen").build();
        let info = inspect(&bin).unwrap_or_else(|e| panic!("id {id:#x}: {e}"));
        assert_eq!(info.chip, Chip::Unknown(id));
        assert_eq!(info.chip.id(), Some(id));
        assert_eq!(info.chip.name(), format!("unknown-0x{id:04x}"));
        assert_eq!(info.app_desc.unwrap().project_name, "next-gen");
    }
}

#[test]
fn unknown_chip_uses_default_flash_windows() {
    // An unknown chip whose only "code" segment is in the ESP32 window is not an app
    // under the default windows (0x3C00_0000.., 0x4200_0000..).
    let mut img = AppImage::new(Chip::Esp32).to_image();
    img.chip_id = 0x0042;
    let err = inspect(&img.build()).unwrap_err();
    assert_eq!(err.code(), "ram_only_app");
}

#[test]
fn descriptor_less_app_is_a_valid_app() {
    // Arduino-ESP32 1.0.4 / ESP-IDF < 3.3: offset 32 holds ordinary rodata.
    let bin = AppImage::new(Chip::Esp32)
        .no_app_desc()
        .payload_len(50_000)
        .build();
    let info = inspect(&bin).unwrap();
    assert_eq!(info.chip, Chip::Esp32);
    assert_eq!(info.app_desc, None);
    assert!(!info.is_arduino());
    assert!(info.hash_appended);
}

#[test]
fn image_without_appended_hash() {
    let bin = AppImage::new(Chip::Esp32s2).hash_appended(false).build();
    assert_eq!(bin[23], 0);
    let info = inspect(&bin).unwrap();
    assert!(!info.hash_appended);
    assert_eq!(info.appended_sha256, None);
    assert_eq!(info.image_len, bin.len() as u64);
    assert_eq!(info.image_len % 16, 0);
}

#[test]
fn trailing_bytes_after_the_image_are_allowed() {
    // Secure boot v1: a zero version word then signature bytes, 80 in all.
    let mut sig = vec![0u8; 4];
    sig.extend((0..76).map(|i| i as u8 ^ 0x5A));
    for hashed in [true, false] {
        let bin = AppImage::new(Chip::Esp32)
            .hash_appended(hashed)
            .trailing(&sig)
            .padding_segment()
            .build();
        let info = inspect(&bin).unwrap();
        assert_eq!(info.trailing_bytes, 80);
        assert_eq!(info.image_len + 80, bin.len() as u64);
        assert_eq!(info.hash_appended, hashed);
    }
}

#[test]
fn padding_segments_at_address_zero_are_walked() {
    let bin = AppImage::new(Chip::Esp32s3).padding_segment().build();
    let info = inspect(&bin).unwrap();
    assert_eq!(info.segments.len(), 5);
    assert_eq!(info.segments[3].load_addr, 0);
    assert!(!info.segments[3].flash_mapped);
}

#[test]
fn strings_cut_at_31_characters_are_kept_as_cut() {
    let bin = AppImage::new(Chip::Esp32s2)
        .version("qa-test-v5.0-20220830-4-g4532e6e0b2")
        .idf_ver("v5.0-beta1-427-g4532e6e0b2-dirty")
        .project("a-project-name-that-is-far-too-long-for-32")
        .build();
    let d = inspect(&bin).unwrap().app_desc.unwrap();
    assert_eq!(d.version, "qa-test-v5.0-20220830-4-g4532e6");
    assert_eq!(d.idf_ver, "v5.0-beta1-427-g4532e6e0b2-dirt");
    assert_eq!(d.project_name.len(), 31);
}

#[test]
fn strings_without_nul_whitespace_and_bad_utf8() {
    let mut bin = AppImage::new(Chip::Esp32).build();
    bin[0x30..0x50].copy_from_slice(&[b'x'; 32]); // version: 32 chars, no NUL
    bin[0x50..0x58].copy_from_slice(b"  pad \0\0"); // project_name
    bin[0x90..0x95].copy_from_slice(b"v\xff5\0\0"); // idf_ver
    synth::reseal(&mut bin);
    let d = inspect(&bin).unwrap().app_desc.unwrap();
    assert_eq!(d.version, "x".repeat(32));
    assert_eq!(d.project_name, "pad");
    assert_eq!(d.idf_ver, "v\u{fffd}5");
}

#[test]
fn arduino_descriptors_are_recognised() {
    for (project, arduino) in [
        ("arduino-lib-builder", true),
        ("esp32-arduino-lib-builder", true),
        ("arduino-lib-builder-x", false),
        ("blink", false),
    ] {
        let bin = AppImage::new(Chip::Esp32).project(project).build();
        let info = inspect(&bin).unwrap();
        assert_eq!(
            info.app_desc.as_ref().unwrap().is_arduino(),
            arduino,
            "{project}"
        );
        assert_eq!(info.is_arduino(), arduino, "{project}");
    }
}

#[test]
fn header_and_descriptor_fields_are_reported() {
    let bin = AppImage::new(Chip::Esp32c3)
        .spi_mode(3)
        .flash_size_code(4)
        .chip_revs(3, 199)
        .secure_version(7)
        .elf_sha256([0xAB; 32])
        .build();
    let info = inspect(&bin).unwrap();
    assert_eq!(info.spi_mode, 3);
    assert_eq!(info.flash_size, "16MB");
    assert_eq!(info.min_chip_rev_full, Some(3));
    assert_eq!(info.max_chip_rev_full, Some(199));
    assert_eq!(
        info.entry_addr,
        u32::from_le_bytes([bin[4], bin[5], bin[6], bin[7]])
    );
    let d = info.app_desc.unwrap();
    assert_eq!(d.secure_version, 7);
    assert_eq!(d.app_elf_sha256, "ab".repeat(32));

    let odd = AppImage::new(Chip::Esp32).flash_size_code(0xA).build();
    assert_eq!(inspect(&odd).unwrap().flash_size, "unknown-0xa");
}

#[test]
fn set_chip_id_mutator_changes_the_reported_chip() {
    let mut bin = AppImage::new(Chip::Esp32s3).build();
    synth::set_chip_id(&mut bin, 0x0009);
    assert_eq!(inspect(&bin).unwrap().chip, Chip::Esp32s3);
    synth::set_chip_id(&mut bin, 0x0005); // same windows (default set): C3
    assert_eq!(inspect(&bin).unwrap().chip, Chip::Esp32c3);
}

#[test]
fn json_shape_for_the_lead() {
    let bin = AppImage::new(Chip::Esp32s3)
        .project("blink")
        .version("1.2.3")
        .build();
    let v = serde_json::to_value(inspect(&bin).unwrap()).unwrap();
    assert_eq!(v["chip"], "esp32s3");
    assert_eq!(v["format"], "esp32_app");
    assert_eq!(v["flash_size"], "4MB");
    assert_eq!(v["app_desc"]["project_name"], "blink");
    assert_eq!(v["segments"][0]["file_offset"], 32);
    assert!(v["segments"][0]["load_addr"].is_u64());
    assert_eq!(v["esp8266_eboot"], false);
    assert_eq!(v["appended_sha256"].as_str().unwrap().len(), 64);
    let back: otafleet_image::ImageInfo = serde_json::from_value(v).unwrap();
    assert_eq!(back, inspect(&bin).unwrap());
}
