//! Image header, segment walk and footer (checksum + appended SHA-256).
//!
//! Layout (`esp_image_header_t`, ESP-IDF `esp_app_format.h`; esptool
//! `bin_image.py`), little-endian:
//!
//! | off | size | field |
//! |----:|-----:|-------|
//! | 0 | 1 | magic 0xE9 |
//! | 1 | 1 | segment count (≤ 16) |
//! | 2 | 1 | SPI mode |
//! | 3 | 1 | flash size (high nibble) / flash frequency (low nibble) |
//! | 4 | 4 | entry address |
//! | 8 | 1 | wp pin — *ESP32 family only from here on* |
//! | 9 | 3 | SPI pin drive settings |
//! | 12 | 2 | chip id |
//! | 14 | 1 | min chip revision (legacy) |
//! | 15 | 2 | min chip revision, full (major·100+minor) |
//! | 17 | 2 | max chip revision, full |
//! | 19 | 4 | reserved |
//! | 23 | 1 | hash_appended |
//!
//! ESP8266 images stop after the first 8 bytes; their segments start at
//! offset 8. Each segment is `{u32 load_addr, u32 data_len}` then the data.
//! After the last segment comes zero padding so that the checksum byte (XOR
//! of all segment data, seeded 0xEF) is the last byte of a 16-byte block,
//! then, when hash_appended is 1, the SHA-256 of everything from the image
//! start through the checksum byte.
//!
//! Everything here is bounds-checked with `u64` arithmetic: no input can make
//! it index out of range or overflow.

use sha2::{Digest, Sha256};

use crate::reject::RejectReason;

/// Magic byte at the start of every V1 image (ESP32 family and ESP8266).
pub const IMAGE_MAGIC: u8 = 0xE9;
/// `ESP_IMAGE_MAX_SEGMENTS`.
pub const MAX_SEGMENTS: u8 = 16;
/// Size of the ESP32-family header (common 8 bytes + 16-byte extended header).
pub const ESP32_HEADER_LEN: u64 = 24;
/// Size of the ESP8266 header.
pub const ESP8266_HEADER_LEN: u64 = 8;
/// Seed of the XOR checksum (`ESP_CHECKSUM_MAGIC`).
pub const CHECKSUM_SEED: u8 = 0xEF;
/// Length of the appended digest.
pub const HASH_LEN: u64 = 32;

pub(crate) fn byte_at(bytes: &[u8], off: u64) -> Option<u8> {
    usize::try_from(off)
        .ok()
        .and_then(|o| bytes.get(o).copied())
}

pub(crate) fn slice(bytes: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = usize::try_from(off.checked_add(len)?).ok()?;
    bytes.get(start..end)
}

pub(crate) fn u32_at(bytes: &[u8], off: u64) -> Option<u32> {
    slice(bytes, off, 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn file_len(bytes: &[u8]) -> u64 {
    bytes.len() as u64
}

fn truncated(expected: u64, bytes: &[u8]) -> RejectReason {
    RejectReason::Truncated {
        expected,
        actual: file_len(bytes),
    }
}

/// The fields of the ESP32-family 24-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Esp32Header {
    pub segment_count: u8,
    pub spi_mode: u8,
    pub flash_byte: u8,
    pub entry: u32,
    pub chip_id: u16,
    pub min_rev_full: u16,
    pub max_rev_full: u16,
    pub hash_appended: bool,
}

/// The fields of the 8-byte header common to both formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommonHeader {
    pub segment_count: u8,
    pub spi_mode: u8,
    pub flash_byte: u8,
    pub entry: u32,
}

pub(crate) fn parse_common_header(bytes: &[u8], base: u64) -> Result<CommonHeader, RejectReason> {
    let h = slice(bytes, base, ESP8266_HEADER_LEN)
        .ok_or_else(|| truncated(base.saturating_add(ESP8266_HEADER_LEN), bytes))?;
    if h[0] != IMAGE_MAGIC {
        return Err(RejectReason::NotEspImage);
    }
    let segment_count = h[1];
    if segment_count > MAX_SEGMENTS {
        return Err(RejectReason::TooManySegments(segment_count));
    }
    if segment_count == 0 {
        return Err(RejectReason::MalformedHeader {
            detail: "the header says the image has 0 segments".into(),
        });
    }
    Ok(CommonHeader {
        segment_count,
        spi_mode: h[2],
        flash_byte: h[3],
        entry: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
    })
}

pub(crate) fn parse_esp32_header(bytes: &[u8], base: u64) -> Result<Esp32Header, RejectReason> {
    let common = parse_common_header(bytes, base)?;
    let h = slice(bytes, base, ESP32_HEADER_LEN)
        .ok_or_else(|| truncated(base.saturating_add(ESP32_HEADER_LEN), bytes))?;
    let hash_appended = match h[23] {
        0 => false,
        1 => true,
        other => {
            return Err(RejectReason::MalformedHeader {
                detail: format!("hash_appended is 0x{other:02x} (only 0 or 1 are valid)"),
            })
        }
    };
    Ok(Esp32Header {
        segment_count: common.segment_count,
        spi_mode: common.spi_mode,
        flash_byte: common.flash_byte,
        entry: common.entry,
        chip_id: u16::from_le_bytes([h[12], h[13]]),
        min_rev_full: u16::from_le_bytes([h[15], h[16]]),
        max_rev_full: u16::from_le_bytes([h[17], h[18]]),
        hash_appended,
    })
}

/// One segment as found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawSegment {
    pub load_addr: u32,
    pub len: u32,
    /// Absolute file offset of the segment's data (after its 8-byte header).
    pub data_off: u64,
}

/// The result of walking all segments of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Walk {
    pub segments: Vec<RawSegment>,
    /// Absolute offset just past the last segment's data.
    pub end: u64,
}

/// Walks `count` segments starting at absolute offset `first`. Every segment
/// header and all its data must lie inside the file.
pub(crate) fn walk_segments(bytes: &[u8], first: u64, count: u8) -> Result<Walk, RejectReason> {
    let mut segments = Vec::with_capacity(usize::from(count));
    let mut off = first;
    for _ in 0..count {
        let header_end = off.saturating_add(8);
        let (Some(load_addr), Some(len)) =
            (u32_at(bytes, off), u32_at(bytes, off.saturating_add(4)))
        else {
            return Err(truncated(header_end, bytes));
        };
        let data_end = header_end.saturating_add(u64::from(len));
        if data_end > file_len(bytes) {
            return Err(truncated(data_end, bytes));
        }
        segments.push(RawSegment {
            load_addr,
            len,
            data_off: header_end,
        });
        off = data_end;
    }
    Ok(Walk { segments, end: off })
}

/// Where the footer of an image ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FooterLayout {
    /// Absolute offset of the checksum byte.
    pub checksum_pos: u64,
    /// Absolute offset just past the image (checksum, plus digest if any).
    pub image_end: u64,
}

/// Computes the footer position for an image at `base` whose segments end at `end`.
pub(crate) fn footer_layout(base: u64, end: u64, hash_appended: bool) -> FooterLayout {
    let rel = end.saturating_sub(base).saturating_add(1);
    let padded = base.saturating_add(rel.div_ceil(16).saturating_mul(16));
    FooterLayout {
        checksum_pos: padded.saturating_sub(1),
        image_end: padded.saturating_add(if hash_appended { HASH_LEN } else { 0 }),
    }
}

/// XOR of all segment data, seeded with 0xEF.
pub(crate) fn xor_checksum(bytes: &[u8], walk: &Walk) -> u8 {
    walk.segments
        .iter()
        .filter_map(|s| slice(bytes, s.data_off, u64::from(s.len)))
        .flat_map(|data| data.iter())
        .fold(CHECKSUM_SEED, |acc, b| acc ^ b)
}

/// Checks that the whole footer is present, then the checksum.
pub(crate) fn verify_checksum(
    bytes: &[u8],
    walk: &Walk,
    layout: FooterLayout,
) -> Result<(), RejectReason> {
    if layout.image_end > file_len(bytes) {
        return Err(truncated(layout.image_end, bytes));
    }
    let stored =
        byte_at(bytes, layout.checksum_pos).ok_or_else(|| truncated(layout.image_end, bytes))?;
    let computed = xor_checksum(bytes, walk);
    if stored != computed {
        return Err(RejectReason::ChecksumMismatch {
            expected: stored,
            actual: computed,
        });
    }
    Ok(())
}

/// SHA-256 of `bytes[base ..= checksum_pos]`, compared with the 32 bytes that
/// follow. Returns the digest on success.
pub(crate) fn verify_appended_hash(
    bytes: &[u8],
    base: u64,
    checksum_pos: u64,
) -> Result<[u8; 32], RejectReason> {
    let end = checksum_pos.saturating_add(1);
    let (Some(covered), Some(stored)) = (
        slice(bytes, base, end.saturating_sub(base)),
        slice(bytes, end, HASH_LEN),
    ) else {
        return Err(truncated(end.saturating_add(HASH_LEN), bytes));
    };
    let digest: [u8; 32] = Sha256::digest(covered).into();
    if digest.as_slice() != stored {
        return Err(RejectReason::HashMismatch);
    }
    Ok(digest)
}

/// True when the 32 bytes at `end` are the SHA-256 of `bytes[base..end]`
/// (the unflagged digest ESP8266_RTOS_SDK appends).
pub(crate) fn has_unflagged_hash(bytes: &[u8], base: u64, end: u64) -> Option<[u8; 32]> {
    let covered = slice(bytes, base, end.checked_sub(base)?)?;
    let stored = slice(bytes, end, HASH_LEN)?;
    let digest: [u8; 32] = Sha256::digest(covered).into();
    (digest.as_slice() == stored).then_some(digest)
}

/// ESP32-family flash size code (high nibble of header byte 3).
pub(crate) fn esp32_flash_size(code: u8) -> String {
    match code {
        0 => "1MB".into(),
        1 => "2MB".into(),
        2 => "4MB".into(),
        3 => "8MB".into(),
        4 => "16MB".into(),
        5 => "32MB".into(),
        6 => "64MB".into(),
        7 => "128MB".into(),
        other => format!("unknown-0x{other:x}"),
    }
}

/// ESP8266 flash size code (high nibble of header byte 3).
pub(crate) fn esp8266_flash_size(code: u8) -> String {
    match code {
        0 => "512KB".into(),
        1 => "256KB".into(),
        2 => "1MB".into(),
        3 => "2MB".into(),
        4 => "4MB".into(),
        5 => "2MB-c1".into(),
        6 => "4MB-c1".into(),
        8 => "8MB".into(),
        9 => "16MB".into(),
        other => format!("unknown-0x{other:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_is_16_aligned_with_checksum_last() {
        // end at 0x20 + 7 data bytes = 0x27 → checksum at 0x2F, image end 0x30.
        let l = footer_layout(0, 0x27, false);
        assert_eq!((l.checksum_pos, l.image_end), (0x2F, 0x30));
        // end exactly on a boundary: a whole block of padding follows.
        let l = footer_layout(0, 0x30, true);
        assert_eq!((l.checksum_pos, l.image_end), (0x3F, 0x60));
        // end one before the boundary: checksum fills it.
        let l = footer_layout(0x1000, 0x102F, false);
        assert_eq!((l.checksum_pos, l.image_end), (0x102F, 0x1030));
    }

    #[test]
    fn walk_reports_truncation_without_overflow() {
        // one segment header claiming 4 GiB of data
        let mut b = vec![0u8; 16];
        b[8..12].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = walk_segments(&b, 8, 16).unwrap_err();
        assert_eq!(
            err,
            RejectReason::Truncated {
                expected: 16 + u64::from(u32::MAX),
                actual: 16
            }
        );
        let err = walk_segments(&b, 12, 1).unwrap_err();
        assert_eq!(
            err,
            RejectReason::Truncated {
                expected: 20,
                actual: 16
            }
        );
        assert!(walk_segments(&b, u64::MAX - 4, 1).is_err());
    }

    #[test]
    fn flash_size_names() {
        assert_eq!(esp32_flash_size(2), "4MB");
        assert_eq!(esp32_flash_size(0xA), "unknown-0xa");
        assert_eq!(esp8266_flash_size(2), "1MB");
        assert_eq!(esp8266_flash_size(7), "unknown-0x7");
    }
}
