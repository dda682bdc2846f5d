//! Top-level decision: what kind of file this is, and for ESP32-family images
//! whether it is an application, a bootloader, a RAM-only app or the start of
//! a merged flash image.

use crate::app_desc::{desc_at_segment, find_in_segments, has_bootloader_desc};
use crate::chip::Chip;
use crate::esp8266;
use crate::header::{
    byte_at, esp32_flash_size, file_len, footer_layout, parse_common_header, parse_esp32_header,
    slice, verify_appended_hash, verify_checksum, walk_segments, RawSegment, ESP32_HEADER_LEN,
    IMAGE_MAGIC,
};
use crate::partition::{find_table, first_app_offset, is_otadata, PARTITION_MAGIC};
use crate::reject::RejectReason;
use crate::{ImageFormat, ImageInfo, Segment};

/// Where ESP32 and ESP32-S2 put the bootloader in flash (and so in a merged image).
const BOOTLOADER_AT_0X1000: u64 = 0x1000;
/// Default offset of the first app partition.
const DEFAULT_APP_OFFSET: u64 = 0x10000;
/// esp32FOTA's signed format: a 512-byte signature, then the image.
const SIGNATURE_PREFIX: u64 = 512;

/// Inspects a firmware file.
///
/// Returns `Ok` only for an application image that a device can flash over
/// OTA: a well-formed ESP32-family app (checksum and, if flagged, appended
/// SHA-256 verified) or an ESP8266 app (including the Arduino eboot+app
/// layout). Everything else is an `Err` naming what the file is.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, RejectReason> {
    let Some(&first) = bytes.first() else {
        return Err(RejectReason::Empty);
    };
    // otadata's first byte is the low byte of a sequence number, so it can be anything.
    if is_otadata(bytes) {
        return Err(RejectReason::OtaData);
    }
    if bytes.starts_with(&PARTITION_MAGIC) {
        return Err(RejectReason::PartitionTable);
    }
    if first == IMAGE_MAGIC {
        return inspect_e9(bytes);
    }
    if let Some(reason) = foreign_container(bytes) {
        return Err(reason);
    }
    if first == 0xFF && byte_at(bytes, BOOTLOADER_AT_0X1000) == Some(IMAGE_MAGIC) {
        return Err(RejectReason::MergedFlashImage {
            app_offset: app_offset_in_merged(bytes),
        });
    }
    if byte_at(bytes, SIGNATURE_PREFIX) == Some(IMAGE_MAGIC) {
        let rest = slice(bytes, SIGNATURE_PREFIX, file_len(bytes) - SIGNATURE_PREFIX);
        if rest.is_some_and(|r| inspect(r).is_ok()) {
            return Err(RejectReason::SignedContainer {
                image_offset: SIGNATURE_PREFIX,
            });
        }
    }
    Err(RejectReason::NotEspImage)
}

/// Formats that are recognisable by their first bytes and never an image.
fn foreign_container(bytes: &[u8]) -> Option<RejectReason> {
    if bytes.starts_with(&[0x1F, 0x8B]) {
        Some(RejectReason::Gzip)
    } else if bytes.starts_with(b"\x7FELF") {
        Some(RejectReason::Elf)
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(RejectReason::Zip)
    } else if bytes.len() >= 16 && bytes[0] == 0xEA && bytes[1] == 4 {
        Some(RejectReason::Esp8266V2Image)
    } else {
        None
    }
}

/// A file starting with the image magic: ESP8266 or ESP32 family.
fn inspect_e9(bytes: &[u8]) -> Result<ImageInfo, RejectReason> {
    parse_common_header(bytes, 0)?;
    if bytes.len() < 12 {
        // Not enough to tell the two layouts apart.
        return Err(RejectReason::Truncated {
            expected: ESP32_HEADER_LEN,
            actual: file_len(bytes),
        });
    }
    if esp8266::looks_esp8266(bytes, 0) {
        esp8266::inspect(bytes)
    } else {
        inspect_esp32(bytes)
    }
}

fn inspect_esp32(bytes: &[u8]) -> Result<ImageInfo, RejectReason> {
    let hdr = parse_esp32_header(bytes, 0)?;
    let chip = Chip::from_id(hdr.chip_id);
    let walk = walk_segments(bytes, ESP32_HEADER_LEN, hdr.segment_count)?;
    let first = walk.segments[0]; // segment_count ≥ 1, checked by the header parser

    if !walk
        .segments
        .iter()
        .any(|s| chip.is_flash_mapped(s.load_addr))
    {
        return Err(not_an_app(bytes, &first, &walk.segments, walk.end));
    }

    let layout = footer_layout(0, walk.end, hdr.hash_appended);
    verify_checksum(bytes, &walk, layout)?;
    let digest = if hdr.hash_appended {
        Some(verify_appended_hash(bytes, 0, layout.checksum_pos)?)
    } else {
        None
    };

    Ok(ImageInfo {
        chip,
        format: ImageFormat::Esp32App,
        segments: to_segments(chip, &walk.segments),
        spi_mode: hdr.spi_mode,
        flash_size: esp32_flash_size(hdr.flash_byte >> 4),
        entry_addr: hdr.entry,
        min_chip_rev_full: Some(hdr.min_rev_full),
        max_chip_rev_full: Some(hdr.max_rev_full),
        hash_appended: hdr.hash_appended,
        image_len: layout.image_end,
        trailing_bytes: file_len(bytes) - layout.image_end,
        appended_sha256: digest.map(hex::encode),
        app_desc: desc_at_segment(bytes, &first),
        esp8266_eboot: false,
        app_offset: 0,
    })
}

/// An ESP32-family image with no flash-mapped segment: the start of a merged
/// image (chips whose bootloader sits at 0), a bootloader, or a RAM-only app.
/// `end` is where its segments end: in a merged image the bootloader ends
/// before the partition table and the app.
fn not_an_app(bytes: &[u8], first: &RawSegment, segs: &[RawSegment], end: u64) -> RejectReason {
    let table_after = find_table(bytes).is_some_and(|t| t >= end);
    let image_after =
        end <= DEFAULT_APP_OFFSET && byte_at(bytes, DEFAULT_APP_OFFSET) == Some(IMAGE_MAGIC);
    if table_after || image_after {
        return RejectReason::MergedFlashImage {
            app_offset: app_offset_in_merged(bytes),
        };
    }
    if has_bootloader_desc(bytes, first) {
        return RejectReason::Bootloader;
    }
    if find_in_segments(bytes, segs).is_some() {
        return RejectReason::RamOnlyApp;
    }
    RejectReason::Bootloader
}

/// Offset of the app inside a merged image: the first app partition of the
/// partition table if an image starts there, else 0x10000 if one starts there.
fn app_offset_in_merged(bytes: &[u8]) -> Option<u64> {
    let from_table = find_table(bytes).and_then(|t| first_app_offset(bytes, t));
    [from_table, Some(DEFAULT_APP_OFFSET)]
        .into_iter()
        .flatten()
        .find(|off| byte_at(bytes, *off) == Some(IMAGE_MAGIC))
}

pub(crate) fn to_segments(chip: Chip, segs: &[RawSegment]) -> Vec<Segment> {
    segs.iter()
        .map(|s| Segment {
            load_addr: s.load_addr,
            len: s.len,
            file_offset: u32::try_from(s.data_off).unwrap_or(u32::MAX),
            flash_mapped: chip.is_flash_mapped(s.load_addr),
        })
        .collect()
}
