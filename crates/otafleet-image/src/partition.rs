//! Partition tables and otadata: the two non-image files that most often get
//! uploaded by mistake, and the parts of a merged flash image that locate the app.
//!
//! Partition table (ESP-IDF `esp_partition_info_t`, `gen_esp32part.py`): up to
//! 0xC00 bytes of 32-byte entries `{u16 magic 0x50AA, u8 type, u8 subtype,
//! u32 offset, u32 size, char label[16], u32 flags}`, ended by an MD5 row
//! (0xEBEB) or erased flash (0xFF). Type 0 is an app partition.
//!
//! otadata (`esp_ota_select_entry_t`, two 4 KiB sectors): `{u32 ota_seq,
//! u8 seq_label[20], u32 ota_state, u32 crc}` with `crc =
//! esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)`, the rest of each sector erased.

use crate::header::{slice, u32_at};

/// First two bytes of every partition table entry.
pub const PARTITION_MAGIC: [u8; 2] = [0xAA, 0x50];
/// Where the partition table sits by default in flash (and so in a merged image).
pub const PARTITION_TABLE_OFFSET: u64 = 0x8000;
/// Maximum size of the partition table.
const PARTITION_TABLE_MAX: u64 = 0xC00;
const ENTRY_LEN: u64 = 32;
/// Partition type of application partitions.
const TYPE_APP: u8 = 0;
/// Size of an otadata partition image.
pub const OTADATA_LEN: usize = 0x2000;
const SECTOR: usize = 0x1000;

/// One partition table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionEntry {
    pub ptype: u8,
    pub offset: u32,
}

/// Parses a partition table at absolute offset `off`. Strict, because it is
/// used to recognise a table in the middle of a file: at least one entry, and
/// the entries must be followed by an MD5 row, erased flash, or the end of
/// the table area.
pub(crate) fn parse_table(bytes: &[u8], off: u64) -> Option<Vec<PartitionEntry>> {
    let mut entries = Vec::new();
    let mut pos = off;
    let limit = off.checked_add(PARTITION_TABLE_MAX)?;
    while pos < limit {
        let Some(e) = slice(bytes, pos, ENTRY_LEN) else {
            break;
        };
        match [e[0], e[1]] {
            PARTITION_MAGIC => entries.push(PartitionEntry {
                ptype: e[2],
                offset: u32_at(e, 4).unwrap_or(0),
            }),
            [0xEB, 0xEB] | [0xFF, 0xFF] => break,
            _ => return None,
        }
        pos += ENTRY_LEN;
    }
    (!entries.is_empty()).then_some(entries)
}

/// Offset of the first app partition in the table at `off`.
pub(crate) fn first_app_offset(bytes: &[u8], off: u64) -> Option<u64> {
    parse_table(bytes, off)?
        .iter()
        .find(|e| e.ptype == TYPE_APP)
        .map(|e| u64::from(e.offset))
}

/// Candidate offsets of a partition table in a merged image: the default
/// 0x8000, then the other 4 KiB steps below 0x10000 that
/// `CONFIG_PARTITION_TABLE_OFFSET` is moved to when a bootloader grows.
pub(crate) fn find_table(bytes: &[u8]) -> Option<u64> {
    (PARTITION_TABLE_OFFSET..0x10000)
        .step_by(0x1000)
        .find(|off| parse_table(bytes, *off).is_some())
}

/// CRC-32 as the ESP ROM's `crc32_le(UINT32_MAX, …)` computes it (reflected
/// polynomial 0xEDB88320, internal start value 0, final inversion).
pub(crate) fn crc32_le_rom(data: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// True for an otadata partition image: 8 KiB, each sector an
/// `esp_ota_select_entry_t` followed by erased flash, and at least one entry
/// with a valid CRC (or both sectors blank, the initial state).
pub(crate) fn is_otadata(bytes: &[u8]) -> bool {
    if bytes.len() != OTADATA_LEN {
        return false;
    }
    let mut any_valid = false;
    let mut all_blank = true;
    for sector in bytes.chunks(SECTOR) {
        let (entry, rest) = sector.split_at(32);
        if rest.iter().any(|b| *b != 0xFF) {
            return false;
        }
        let blank = entry.iter().all(|b| *b == 0xFF);
        all_blank &= blank;
        let seq = &entry[0..4];
        let crc = u32::from_le_bytes([entry[28], entry[29], entry[30], entry[31]]);
        any_valid |= !blank && crc32_le_rom(seq) == crc;
    }
    any_valid || all_blank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_rom_for_seq_1() {
        // value seen in a real boot_app0.bin / ota_data_initial.bin
        assert_eq!(crc32_le_rom(&1u32.to_le_bytes()), 0x4743_989A);
    }

    #[test]
    fn table_parsing() {
        let mut t = vec![0xFFu8; 0xC00];
        t[0..2].copy_from_slice(&PARTITION_MAGIC);
        t[2] = 1; // data
        t[32..34].copy_from_slice(&PARTITION_MAGIC);
        t[34] = 0;
        t[36..40].copy_from_slice(&0x10000u32.to_le_bytes());
        assert_eq!(first_app_offset(&t, 0), Some(0x10000));
        t[64] = 0x12; // garbage after the entries
        assert_eq!(parse_table(&t, 0), None);
        t[64] = 0xEB;
        t[65] = 0xEB;
        assert!(parse_table(&t, 0).is_some());
        assert_eq!(parse_table(&t, 32 * 3), None); // starts at the MD5 row
        assert_eq!(parse_table(&t, u64::MAX), None);
    }

    #[test]
    fn otadata_detection() {
        let blank = vec![0xFFu8; OTADATA_LEN];
        assert!(is_otadata(&blank));
        let mut valid = blank.clone();
        valid[0..4].copy_from_slice(&1u32.to_le_bytes());
        valid[28..32].copy_from_slice(&crc32_le_rom(&1u32.to_le_bytes()).to_le_bytes());
        assert!(is_otadata(&valid));
        let mut bad_crc = valid.clone();
        bad_crc[28] ^= 1;
        assert!(!is_otadata(&bad_crc));
        let mut dirty_tail = valid.clone();
        dirty_tail[100] = 0;
        assert!(!is_otadata(&dirty_tail));
        assert!(!is_otadata(&valid[..OTADATA_LEN - 1]));
    }
}
