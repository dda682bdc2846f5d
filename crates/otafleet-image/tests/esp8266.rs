//! ESP8266 layouts: Arduino eboot + app, plain app, ESP8266_RTOS_SDK v3.

use otafleet_image::synth::{AppImage, Esp8266App, Esp8266Image};
use otafleet_image::{inspect, Chip, ImageFormat, RejectReason};

#[test]
fn arduino_eboot_plus_app() {
    let bin = Esp8266App::arduino().payload_len(300_000).build();
    assert_eq!(&bin[0x1000..0x1002], &[0xE9, 5]);
    let info = inspect(&bin).unwrap();
    assert_eq!(info.chip, Chip::Esp8266);
    assert_eq!(info.chip.id(), None);
    assert_eq!(info.format, ImageFormat::Esp8266);
    assert!(info.esp8266_eboot);
    assert_eq!(info.app_offset, 0x1000);
    assert_eq!(info.segments.len(), 5, "the app's segments, not eboot's");
    assert_eq!(info.segments[0].file_offset, 0x1010);
    assert!(info.segments[0].flash_mapped);
    assert_eq!(info.entry_addr, 0x4010_00C0);
    assert_eq!((info.spi_mode, info.flash_size.as_str()), (3, "1MB"));
    assert_eq!(
        (info.min_chip_rev_full, info.max_chip_rev_full),
        (None, None)
    );
    assert!(!info.hash_appended);
    assert_eq!(info.appended_sha256, None);
    assert_eq!(info.app_desc, None);
    assert_eq!(info.image_len, bin.len() as u64);
    // Arduino 3.x length word at 0x1010 covers the whole file
    assert_eq!(
        u32::from_le_bytes(bin[0x1010..0x1014].try_into().unwrap()) as usize,
        bin.len()
    );
}

#[test]
fn arduino_layout_of_older_cores_without_crc_words() {
    let bin = Esp8266App::arduino().arduino_crc(false).build();
    assert_eq!(&bin[0x1010..0x1018], &[0u8; 8]);
    assert!(inspect(&bin).unwrap().esp8266_eboot);
}

#[test]
fn arduino_layout_damage() {
    let good = Esp8266App::arduino().build();
    // the CRC word itself
    let mut bin = good.clone();
    bin[0x1014] ^= 1;
    assert_eq!(inspect(&bin), Err(RejectReason::CrcMismatch));
    // a byte of the app covered by the CRC words' fallback: XOR no longer matches
    let mut bin = good.clone();
    bin[0x2000] ^= 1;
    assert_eq!(inspect(&bin).unwrap_err().code(), "checksum_mismatch");
    // a byte of eboot
    let mut bin = good.clone();
    bin[0x20] ^= 1;
    assert_eq!(inspect(&bin).unwrap_err().code(), "checksum_mismatch");
    // the length word pointing past the file
    let mut bin = good.clone();
    bin[0x1013] = 0x7F;
    assert_eq!(inspect(&bin).unwrap_err().code(), "checksum_mismatch");
    // a byte of the 0xAA padding between eboot and the app is covered by the CRC
    let mut bin = good.clone();
    bin[0xFF0] = 0;
    assert_eq!(inspect(&bin), Err(RejectReason::CrcMismatch));
    // cut inside the app
    assert_eq!(inspect(&good[..0x1800]).unwrap_err().code(), "truncated");
}

#[test]
fn arduino_layout_with_signature_after_the_image() {
    let sig = [0x42u8; 260];
    let bin = Esp8266App::arduino().trailing(&sig).build();
    let info = inspect(&bin).unwrap();
    assert_eq!(info.trailing_bytes, 260);
    assert_eq!(info.image_len + 260, bin.len() as u64);
}

#[test]
fn eboot_alone_or_without_app_is_refused() {
    let eboot = Esp8266App::eboot(0x20);
    assert_eq!(inspect(&eboot), Err(RejectReason::Esp8266RamOnly));
    let mut padded = eboot.clone();
    padded.resize(0x1000, 0xAA);
    assert_eq!(inspect(&padded), Err(RejectReason::Esp8266RamOnly));
    // eboot followed by a RAM-only image at 0x1000
    let mut two = padded.clone();
    two.extend_from_slice(&eboot);
    assert_eq!(inspect(&two), Err(RejectReason::Esp8266RamOnly));
    // a split NONOS SDK 0x00000.bin: RAM segments only
    let nonos = Esp8266Image::new(0x4010_0004)
        .segment(0x4010_0000, vec![1; 64])
        .segment(0x3FFE_8000, vec![2; 32])
        .build();
    assert_eq!(inspect(&nonos).unwrap_err().code(), "esp8266_ram_only");
}

#[test]
fn plain_app() {
    let bin = Esp8266App::plain().flash_size_code(4).build();
    let info = inspect(&bin).unwrap();
    assert_eq!(info.chip, Chip::Esp8266);
    assert!(!info.esp8266_eboot);
    assert_eq!(info.app_offset, 0);
    assert_eq!(info.flash_size, "4MB");
    assert!(!info.hash_appended);
    assert_eq!(info.segments[0].file_offset, 16);

    let c1 = Esp8266App::plain().flash_size_code(6).build();
    assert_eq!(inspect(&c1).unwrap().flash_size, "4MB-c1");
}

#[test]
fn rtos_sdk_app_with_descriptor_and_unflagged_digest() {
    // Choose the IROM length so bytes 12..14 read like ESP32-C2's chip id (12):
    // the parser must not trust them.
    let bin = Esp8266App::rtos_sdk("hello_world", "v3.4-dirty")
        .payload_len(0x1_000C)
        .build();
    assert_eq!(&bin[12..14], &[0x0C, 0x00]);
    let info = inspect(&bin).unwrap();
    assert_eq!(info.chip, Chip::Esp8266);
    assert_eq!(info.format, ImageFormat::Esp8266);
    let d = info.app_desc.as_ref().unwrap();
    assert_eq!(
        (d.project_name.as_str(), d.version.as_str()),
        ("hello_world", "v3.4-dirty")
    );
    assert_eq!(d.file_offset, 8 + 8 + 0x1_000C + 8);
    assert!(info.hash_appended);
    assert_eq!(
        info.appended_sha256,
        Some(hex::encode(&bin[bin.len() - 32..]))
    );
    assert_eq!(info.image_len, bin.len() as u64);
}

#[test]
fn rtos_sdk_damaged_digest_is_a_hash_mismatch() {
    let mut bin = Esp8266App::rtos_sdk("hello_world", "1").build();
    let n = bin.len();
    bin[n - 5] ^= 1;
    assert_eq!(inspect(&bin), Err(RejectReason::HashMismatch));
    // without the digest at all it is still a valid image
    let info = inspect(&bin[..n - 32]).unwrap();
    assert!(!info.hash_appended);
}

#[test]
fn app_image_builder_for_esp8266() {
    let info = inspect(
        &AppImage::new(Chip::Esp8266)
            .project("x")
            .version("2")
            .build(),
    )
    .unwrap();
    assert_eq!(info.chip, Chip::Esp8266);
    assert_eq!(info.app_desc.unwrap().project_name, "x");
    let info = inspect(&AppImage::new(Chip::Esp8266).no_app_desc().build()).unwrap();
    assert_eq!(info.app_desc, None);
}

#[test]
fn esp8266_checksum_and_truncation() {
    let mut bin = Esp8266App::plain().build();
    let n = bin.len();
    bin[n - 1] ^= 0xFF;
    assert_eq!(inspect(&bin).unwrap_err().code(), "checksum_mismatch");
    let bin = Esp8266App::plain().build();
    assert_eq!(
        inspect(&bin[..13]),
        Err(RejectReason::Truncated {
            expected: 16,
            actual: 13
        })
    );
}
