//! ESP8266 V1 images (esptool `ESP8266ROMFirmwareImage`, and the V3 variant
//! ESP8266_RTOS_SDK writes).
//!
//! Only the first 8 bytes of the header exist; segment headers start at
//! offset 8. Bytes 8..12 are therefore the first segment's load address and
//! bytes 12..14 — where an ESP32-family header has its chip id — are the low
//! half of that segment's length (an RTOS SDK hello-world reads as "chip
//! 14344" there). So the layout is recognised by the first load address being
//! a real ESP8266 address (DRAM 0x3FFE8000.., IRAM 0x40100000.., IROM
//! 0x40200000..); an ESP32-family header has the wp pin and drive settings
//! there (`0xEE 0 0 0`), which is never such an address.
//!
//! Three shapes are accepted:
//! * a plain app (some segment in IROM, the flash-mapped window);
//! * an ESP8266_RTOS_SDK v3 app: `esp_app_desc_t` at the start of a later
//!   segment, and an **unflagged** SHA-256 of the image right after the
//!   checksum (detected by value; if such an image is followed by exactly 32
//!   bytes that are not its digest, the digest was damaged: `HashMismatch`);
//! * the Arduino-ESP8266 / ESPHome layout (`elf2bin.py`): a small RAM-only
//!   `eboot` image, `0xAA` padding to 0x1000, then the sketch's own image.
//!   Arduino-ESP8266 3.x stores the file length and a CRC-32 (MSB-first,
//!   polynomial 0x04C11DB7, start 0xFFFFFFFF, no final inversion, over the
//!   first `length` bytes with both words read as zero) at 0x1010/0x1014 —
//!   the first 8 bytes of the app's IROM segment — *after* computing the
//!   app's XOR checksum with those words still zero. So when the plain XOR
//!   does not match, the checksum is re-checked with those 8 bytes as zero
//!   and the CRC must then match.
//!
//! A RAM-only image without an app at 0x1000 (eboot alone, or the 0x00000
//! part of a split NONOS SDK build) is refused.

use crate::app_desc::find_in_segments;
use crate::chip::{esp8266_plausible, Chip};
use crate::classify::to_segments;
use crate::header::{
    byte_at, esp8266_flash_size, file_len, footer_layout, has_unflagged_hash, parse_common_header,
    slice, u32_at, verify_checksum, walk_segments, CommonHeader, Walk, ESP8266_HEADER_LEN,
    HASH_LEN, IMAGE_MAGIC,
};
use crate::reject::RejectReason;
use crate::{ImageFormat, ImageInfo};

/// Where the Arduino-ESP8266 layout puts the application image.
pub const EBOOT_APP_OFFSET: u64 = 0x1000;
/// Where Arduino-ESP8266 3.x stores the length and CRC of the whole file.
pub const ARDUINO_CRC_OFFSET: u64 = 0x1010;

/// True when an image at `base` has the ESP8266 layout (see module docs).
pub(crate) fn looks_esp8266(bytes: &[u8], base: u64) -> bool {
    byte_at(bytes, base) == Some(IMAGE_MAGIC)
        && u32_at(bytes, base.saturating_add(8)).is_some_and(esp8266_plausible)
}

/// One ESP8266 image, walked but not yet verified.
struct Walked {
    header: CommonHeader,
    base: u64,
    walk: Walk,
}

impl Walked {
    fn new(bytes: &[u8], base: u64) -> Result<Walked, RejectReason> {
        let header = parse_common_header(bytes, base)?;
        let walk = walk_segments(
            bytes,
            base.saturating_add(ESP8266_HEADER_LEN),
            header.segment_count,
        )?;
        Ok(Walked { header, base, walk })
    }

    fn ram_only(&self) -> bool {
        !self
            .walk
            .segments
            .iter()
            .any(|s| Chip::Esp8266.is_flash_mapped(s.load_addr))
    }

    /// Verifies the checksum; returns (image end incl. any unflagged digest, digest).
    fn verify(&self, bytes: &[u8]) -> Result<(u64, Option<[u8; 32]>), RejectReason> {
        let layout = footer_layout(self.base, self.walk.end, false);
        match verify_checksum(bytes, &self.walk, layout) {
            Err(RejectReason::ChecksumMismatch { expected, actual })
                if self.base == EBOOT_APP_OFFSET =>
            {
                verify_arduino_crc(bytes, &self.walk, layout.image_end, expected, actual)?
            }
            other => other?,
        }
        let digest = has_unflagged_hash(bytes, self.base, layout.image_end);
        let end = layout.image_end + if digest.is_some() { HASH_LEN } else { 0 };
        Ok((end, digest))
    }
}

/// The Arduino-ESP8266 3.x CRC words (see module docs). Called when the app's
/// plain XOR checksum failed: `stored` is the checksum byte, `computed` the XOR.
fn verify_arduino_crc(
    bytes: &[u8],
    walk: &Walk,
    image_end: u64,
    stored: u8,
    computed: u8,
) -> Result<(), RejectReason> {
    let mismatch = RejectReason::ChecksumMismatch {
        expected: stored,
        actual: computed,
    };
    let first = walk.segments.first().ok_or(mismatch.clone())?;
    let words = slice(bytes, ARDUINO_CRC_OFFSET, 8).ok_or(mismatch.clone())?;
    if first.data_off != ARDUINO_CRC_OFFSET || first.len < 8 {
        return Err(mismatch);
    }
    let without_words = words.iter().fold(computed, |acc, b| acc ^ b);
    if without_words != stored {
        return Err(mismatch);
    }
    let len = u64::from(u32::from_le_bytes([words[0], words[1], words[2], words[3]]));
    let crc = u32::from_le_bytes([words[4], words[5], words[6], words[7]]);
    if len < image_end || len > file_len(bytes) {
        return Err(mismatch);
    }
    let covered = slice(bytes, 0, len).ok_or(mismatch)?;
    if crc32_msb_zeroed(covered, ARDUINO_CRC_OFFSET as usize) != crc {
        return Err(RejectReason::CrcMismatch);
    }
    Ok(())
}

/// eboot's CRC-32 (MSB-first, poly 0x04C11DB7, init 0xFFFFFFFF, no final
/// XOR) over `data`, with the 8 bytes at `zero_at` read as zero.
pub(crate) fn crc32_msb_zeroed(data: &[u8], zero_at: usize) -> u32 {
    let mut crc: u32 = 0xFFFF_FFFF;
    for (i, b) in data.iter().enumerate() {
        let b = if (zero_at..zero_at + 8).contains(&i) {
            0
        } else {
            *b
        };
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

pub(crate) fn inspect(bytes: &[u8]) -> Result<ImageInfo, RejectReason> {
    let outer = Walked::new(bytes, 0)?;
    let has_desc = find_in_segments(bytes, &outer.walk.segments).is_some();
    if has_desc || !outer.ram_only() {
        return info(bytes, &outer.header, &outer, false);
    }
    // RAM-only: only acceptable as eboot followed by the app at 0x1000.
    let eboot_end = footer_layout(0, outer.walk.end, false).image_end;
    if eboot_end > EBOOT_APP_OFFSET || !looks_esp8266(bytes, EBOOT_APP_OFFSET) {
        return Err(RejectReason::Esp8266RamOnly);
    }
    let app = Walked::new(bytes, EBOOT_APP_OFFSET)?;
    if app.ram_only() && find_in_segments(bytes, &app.walk.segments).is_none() {
        return Err(RejectReason::Esp8266RamOnly);
    }
    outer.verify(bytes)?;
    info(bytes, &outer.header, &app, true)
}

/// Builds the result for application image `app`; `file_header` is the
/// header at offset 0 (spi mode and flash size are read from there).
fn info(
    bytes: &[u8],
    file_header: &CommonHeader,
    app: &Walked,
    eboot: bool,
) -> Result<ImageInfo, RejectReason> {
    let (image_len, digest) = app.verify(bytes)?;
    let app_desc = find_in_segments(bytes, &app.walk.segments);
    // An RTOS SDK image (it has a descriptor) followed by exactly a digest's
    // worth of bytes that are not its digest: the digest was damaged.
    if app_desc.is_some() && digest.is_none() && file_len(bytes) - image_len == HASH_LEN {
        return Err(RejectReason::HashMismatch);
    }
    Ok(ImageInfo {
        chip: Chip::Esp8266,
        format: ImageFormat::Esp8266,
        segments: to_segments(Chip::Esp8266, &app.walk.segments),
        spi_mode: file_header.spi_mode,
        flash_size: esp8266_flash_size(file_header.flash_byte >> 4),
        entry_addr: app.header.entry,
        min_chip_rev_full: None,
        max_chip_rev_full: None,
        hash_appended: digest.is_some(),
        image_len,
        trailing_bytes: file_len(bytes) - image_len,
        appended_sha256: digest.map(hex::encode),
        app_desc,
        esp8266_eboot: eboot,
        app_offset: app.base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_crc32_mpeg2() {
        // CRC-32/MPEG-2 check value
        assert_eq!(crc32_msb_zeroed(b"123456789", 100), 0x0376_E6E7);
        // the zeroed window really reads as zero
        assert_eq!(
            crc32_msb_zeroed(b"12345678\xff\xff\xff\xff\xff\xff\xff\xff9", 8),
            crc32_msb_zeroed(b"12345678\0\0\0\0\0\0\0\x009", 100)
        );
    }

    #[test]
    fn layout_detection_uses_first_load_address() {
        let mut b = vec![0u8; 16];
        b[0] = IMAGE_MAGIC;
        b[8..12].copy_from_slice(&0x4020_1010u32.to_le_bytes());
        assert!(looks_esp8266(&b, 0));
        b[8..12].copy_from_slice(&[0xEE, 0, 0, 0]); // ESP32 wp pin + drive settings
        assert!(!looks_esp8266(&b, 0));
        assert!(!looks_esp8266(&b[..11], 0));
        assert!(!looks_esp8266(&b, u64::MAX));
    }
}
