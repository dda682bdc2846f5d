//! Partition tables, otadata and merged full-flash images.

use super::bootloader;
use crate::partition::crc32_le_rom;
use crate::Chip;

/// One row of a partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    pub label: String,
    pub ptype: u8,
    pub subtype: u8,
    pub offset: u32,
    pub size: u32,
}

/// Builder for a binary partition table (0xC00 bytes, no MD5 row, as
/// `gen_esp32part.py --disable-md5sum` writes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionTable {
    pub rows: Vec<PartitionRow>,
}

impl PartitionTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn row(mut self, label: &str, ptype: u8, subtype: u8, offset: u32, size: u32) -> Self {
        self.rows.push(PartitionRow {
            label: label.into(),
            ptype,
            subtype,
            offset,
            size,
        });
        self
    }

    /// nvs, phy_init, factory app at 0x10000.
    pub fn single_app() -> Self {
        Self::new()
            .row("nvs", 1, 2, 0x9000, 0x6000)
            .row("phy_init", 1, 1, 0xF000, 0x1000)
            .row("factory", 0, 0, 0x10000, 0x10_0000)
    }

    /// nvs, otadata, two OTA app slots starting at `app0`.
    pub fn two_ota(app0: u32) -> Self {
        Self::new()
            .row("nvs", 1, 2, 0x9000, 0x5000)
            .row("otadata", 1, 0, 0xE000, 0x2000)
            .row("app0", 0, 0x10, app0, 0x14_0000)
            .row("app1", 0, 0x11, app0 + 0x14_0000, 0x14_0000)
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = vec![0xFFu8; 0xC00];
        for (i, r) in self.rows.iter().enumerate().take(0xC00 / 32) {
            let e = &mut out[i * 32..(i + 1) * 32];
            e[0] = 0xAA;
            e[1] = 0x50;
            e[2] = r.ptype;
            e[3] = r.subtype;
            e[4..8].copy_from_slice(&r.offset.to_le_bytes());
            e[8..12].copy_from_slice(&r.size.to_le_bytes());
            super::write_cstr(&mut e[12..28], &r.label);
            e[28..32].copy_from_slice(&0u32.to_le_bytes());
        }
        out
    }
}

/// An otadata image (8 KiB) whose first sector selects OTA sequence `seq`.
pub fn otadata(seq: u32) -> Vec<u8> {
    let mut out = vec![0xFFu8; 0x2000];
    out[0..4].copy_from_slice(&seq.to_le_bytes());
    out[28..32].copy_from_slice(&crc32_le_rom(&seq.to_le_bytes()).to_le_bytes());
    out
}

/// A merged full-flash image as `esptool merge_bin` makes it: 0xFF fill,
/// bootloader at `bootloader_offset`, `table` at `table_offset`, otadata at
/// 0xE000, `app` at `app_offset`.
pub fn merged_with(
    bootloader_offset: usize,
    boot: &[u8],
    table_offset: usize,
    table: &[u8],
    app_offset: usize,
    app: &[u8],
) -> Vec<u8> {
    let mut out = vec![0xFFu8; app_offset + app.len()];
    out[bootloader_offset..bootloader_offset + boot.len()].copy_from_slice(boot);
    out[table_offset..table_offset + table.len()].copy_from_slice(table);
    if table_offset + table.len() <= 0xE000 && 0x10000 <= app_offset {
        out[0xE000..0x10000].copy_from_slice(&otadata(1));
    }
    out[app_offset..].copy_from_slice(app);
    out
}

/// A merged image for `chip` with `app` at 0x10000: the bootloader at 0x1000
/// on ESP32/ESP32-S2 (so the file starts with 0xFF) and at 0 on later chips
/// (so it starts with a bootloader's 0xE9 header).
pub fn merged(chip: Chip, app: &[u8]) -> Vec<u8> {
    merged_with(
        chip.bootloader_offset() as usize,
        &bootloader(chip),
        0x8000,
        &PartitionTable::two_ota(0x10000).build(),
        0x10000,
        app,
    )
}
