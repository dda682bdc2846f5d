//! Synthetic firmware files for tests (cargo feature `synth`).
//!
//! Everything is built in memory, deterministically, with the same layout
//! rules the parser checks: correct XOR checksum at the 16-byte boundary,
//! appended SHA-256 when flagged, `esp_app_desc_t` at offset 32, segments in
//! the chip's flash-mapped windows. Mutators then break exactly one thing.
//!
//! ```
//! use otafleet_image::{inspect, synth, Chip};
//! let bin = synth::AppImage::new(Chip::Esp32s3)
//!     .project("blink")
//!     .version("1.2.3")
//!     .payload_len(20_000)
//!     .build();
//! let info = inspect(&bin).unwrap();
//! assert_eq!(info.app_desc.unwrap().project_name, "blink");
//! ```

mod esp8266;
mod flash;

pub use esp8266::{Esp8266App, Esp8266Image, Esp8266Layout};
pub use flash::{merged, merged_with, otadata, PartitionTable};

use sha2::{Digest, Sha256};

use crate::app_desc::APP_DESC_MAGIC;
use crate::header::{
    footer_layout, walk_segments, xor_checksum, CHECKSUM_SEED, ESP32_HEADER_LEN,
    ESP8266_HEADER_LEN, HASH_LEN,
};
use crate::Chip;

/// Deterministic filler bytes (xorshift32), never starting with a magic value.
pub fn filler(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    if let Some(b) = out.first_mut() {
        *b = 0x11; // not 0x32 (app desc), 0x50 (bootloader desc) or 0xE9
    }
    out
}

/// Writes `s` into a fixed-size C char array: at most `dst.len() - 1` bytes,
/// then NUL padding — what the IDF build does with over-long strings.
pub fn write_cstr(dst: &mut [u8], s: &str) {
    dst.fill(0);
    let n = s.len().min(dst.len().saturating_sub(1));
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
}

fn pad4(mut v: Vec<u8>) -> Vec<u8> {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

/// Appends zero padding and the XOR checksum so the checksum ends a 16-byte block.
pub(crate) fn push_checksum(out: &mut Vec<u8>, base: usize, checksum: u8) {
    while (out.len() - base) % 16 != 15 {
        out.push(0);
    }
    out.push(checksum);
}

/// Fields of an `esp_app_desc_t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescFields {
    pub secure_version: u32,
    pub version: String,
    pub project_name: String,
    pub time: String,
    pub date: String,
    pub idf_ver: String,
    pub app_elf_sha256: [u8; 32],
}

impl Default for DescFields {
    fn default() -> Self {
        DescFields {
            secure_version: 0,
            version: "1.0.0".into(),
            project_name: "synthetic".into(),
            time: "12:34:56".into(),
            date: "Jan  2 2025".into(),
            idf_ver: "v5.2.2".into(),
            app_elf_sha256: [0xA5; 32],
        }
    }
}

impl DescFields {
    /// The 256-byte descriptor.
    pub fn bytes(&self) -> Vec<u8> {
        let mut d = vec![0u8; 256];
        d[0..4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
        d[4..8].copy_from_slice(&self.secure_version.to_le_bytes());
        write_cstr(&mut d[16..48], &self.version);
        write_cstr(&mut d[48..80], &self.project_name);
        write_cstr(&mut d[80..96], &self.time);
        write_cstr(&mut d[96..112], &self.date);
        write_cstr(&mut d[112..144], &self.idf_ver);
        d[144..176].copy_from_slice(&self.app_elf_sha256);
        d
    }
}

/// A generic ESP32-family image: header fields and segments, assembled with
/// a correct checksum and (if `hash_appended`) digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esp32Image {
    pub chip_id: u16,
    pub spi_mode: u8,
    /// Header byte 3: flash size code in the high nibble, frequency in the low.
    pub flash_byte: u8,
    pub entry: u32,
    pub wp_pin: u8,
    pub min_rev_full: u16,
    pub max_rev_full: u16,
    pub hash_appended: bool,
    pub segments: Vec<(u32, Vec<u8>)>,
    /// Bytes written after the image (e.g. a signature block).
    pub trailing: Vec<u8>,
}

impl Esp32Image {
    pub fn new(chip_id: u16) -> Self {
        Esp32Image {
            chip_id,
            spi_mode: 2,      // DIO
            flash_byte: 0x2F, // 4MB, 80 MHz
            entry: 0x4008_0400,
            wp_pin: 0xEE,
            min_rev_full: 0,
            max_rev_full: 99,
            hash_appended: true,
            segments: Vec::new(),
            trailing: Vec::new(),
        }
    }

    pub fn segment(mut self, load_addr: u32, data: Vec<u8>) -> Self {
        self.segments.push((load_addr, data));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&[
            0xE9,
            self.segments.len() as u8,
            self.spi_mode,
            self.flash_byte,
        ]);
        out.extend_from_slice(&self.entry.to_le_bytes());
        out.extend_from_slice(&[self.wp_pin, 0, 0, 0]);
        out.extend_from_slice(&self.chip_id.to_le_bytes());
        out.push((self.min_rev_full / 100) as u8);
        out.extend_from_slice(&self.min_rev_full.to_le_bytes());
        out.extend_from_slice(&self.max_rev_full.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, u8::from(self.hash_appended)]);
        let mut checksum = CHECKSUM_SEED;
        for (addr, data) in &self.segments {
            out.extend_from_slice(&addr.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
            checksum = data.iter().fold(checksum, |a, b| a ^ b);
        }
        push_checksum(&mut out, 0, checksum);
        if self.hash_appended {
            let digest = Sha256::digest(&out);
            out.extend_from_slice(&digest);
        }
        out.extend_from_slice(&self.trailing);
        out
    }
}

/// Load addresses (DROM, DRAM, IRAM, IROM) used for a chip's synthetic images.
pub fn chip_addresses(chip: Chip) -> [u32; 4] {
    match chip {
        Chip::Esp32 => [0x3F40_0020, 0x3FFB_0000, 0x4008_0000, 0x400D_0020],
        Chip::Esp32s2 => [0x3F00_0020, 0x3FFB_E000, 0x4002_2000, 0x4008_0020],
        Chip::Esp32p4 => [0x4001_0020, 0x4FF0_0000, 0x4FF1_0000, 0x4000_0020],
        Chip::Esp32c5
        | Chip::Esp32c6
        | Chip::Esp32c61
        | Chip::Esp32h2
        | Chip::Esp32h21
        | Chip::Esp32h4 => [0x4200_8020, 0x4080_0000, 0x4081_0000, 0x4200_0020],
        _ => [0x3C00_0020, 0x3FC8_8000, 0x4038_0000, 0x4200_0020],
    }
}

fn header_chip_id(chip: Chip) -> u16 {
    chip.id().unwrap_or(0xFFFF)
}

/// Builder for a valid application image.
///
/// For ESP32-family chips (and `Chip::Unknown`): header, DROM segment
/// starting with the descriptor, DRAM, IRAM, optional padding segment
/// (load address 0, as esptool inserts), IROM with `payload_len` bytes.
/// For `Chip::Esp8266` it builds an ESP8266_RTOS_SDK-style image when a
/// descriptor is set, else a plain ESP8266 app (see [`Esp8266App`]).
#[derive(Debug, Clone)]
pub struct AppImage {
    chip: Chip,
    desc: Option<DescFields>,
    payload_len: usize,
    padding_segment: bool,
    image: Esp32Image,
}

impl AppImage {
    pub fn new(chip: Chip) -> Self {
        AppImage {
            chip,
            desc: Some(DescFields::default()),
            payload_len: 4096,
            padding_segment: false,
            image: Esp32Image::new(header_chip_id(chip)),
        }
    }
    fn desc_mut(&mut self) -> &mut DescFields {
        self.desc.get_or_insert_with(DescFields::default)
    }
    pub fn project(mut self, s: &str) -> Self {
        self.desc_mut().project_name = s.into();
        self
    }
    pub fn version(mut self, s: &str) -> Self {
        self.desc_mut().version = s.into();
        self
    }
    pub fn idf_ver(mut self, s: &str) -> Self {
        self.desc_mut().idf_ver = s.into();
        self
    }
    pub fn date(mut self, s: &str) -> Self {
        self.desc_mut().date = s.into();
        self
    }
    pub fn time(mut self, s: &str) -> Self {
        self.desc_mut().time = s.into();
        self
    }
    pub fn secure_version(mut self, v: u32) -> Self {
        self.desc_mut().secure_version = v;
        self
    }
    pub fn elf_sha256(mut self, v: [u8; 32]) -> Self {
        self.desc_mut().app_elf_sha256 = v;
        self
    }
    /// Drop the descriptor (an Arduino-ESP32 1.0.4 / pre-IDF-3.3 style app).
    pub fn no_app_desc(mut self) -> Self {
        self.desc = None;
        self
    }
    /// Size of the flash-mapped code segment.
    pub fn payload_len(mut self, n: usize) -> Self {
        self.payload_len = n;
        self
    }
    pub fn hash_appended(mut self, yes: bool) -> Self {
        self.image.hash_appended = yes;
        self
    }
    /// Bytes after the image, like a secure-boot v1 signature block.
    pub fn trailing(mut self, bytes: &[u8]) -> Self {
        self.image.trailing = bytes.to_vec();
        self
    }
    /// Add an esptool padding segment (load address 0).
    pub fn padding_segment(mut self) -> Self {
        self.padding_segment = true;
        self
    }
    /// Override the header chip id (e.g. an id this crate does not know).
    pub fn chip_id(mut self, id: u16) -> Self {
        self.image.chip_id = id;
        self
    }
    pub fn spi_mode(mut self, mode: u8) -> Self {
        self.image.spi_mode = mode;
        self
    }
    /// Flash size code (high nibble of header byte 3).
    pub fn flash_size_code(mut self, code: u8) -> Self {
        self.image.flash_byte = (code << 4) | (self.image.flash_byte & 0x0F);
        self
    }
    pub fn chip_revs(mut self, min_full: u16, max_full: u16) -> Self {
        self.image.min_rev_full = min_full;
        self.image.max_rev_full = max_full;
        self
    }

    /// The image description before assembly (ESP32 family only).
    pub fn to_image(&self) -> Esp32Image {
        let [drom, dram, iram, irom] = chip_addresses(self.chip);
        let mut rodata = self
            .desc
            .as_ref()
            .map(DescFields::bytes)
            .unwrap_or_default();
        let filler_rodata = filler(512, 1);
        rodata.extend_from_slice(&filler_rodata);
        let mut img = self.image.clone();
        img.entry = iram + 0x400;
        img.segments = vec![
            (drom, rodata),
            (dram, filler(64, 2)),
            (iram, filler(128, 3)),
        ];
        if self.padding_segment {
            img.segments.push((0, vec![0; 64]));
        }
        img.segments.push((irom, pad4(filler(self.payload_len, 4))));
        img
    }

    pub fn build(&self) -> Vec<u8> {
        if self.chip == Chip::Esp8266 {
            let app = match &self.desc {
                Some(d) => Esp8266App::rtos_sdk_with(d.clone()),
                None => Esp8266App::plain(),
            };
            return app.payload_len(self.payload_len).build();
        }
        self.to_image().build()
    }
}

/// An old-style bootloader (no descriptor): RAM segments only.
pub fn bootloader(chip: Chip) -> Vec<u8> {
    let [_, dram, iram, _] = chip_addresses(chip);
    Esp32Image::new(header_chip_id(chip))
        .segment(dram + 0x4_0000, filler(1044, 10))
        .segment(iram - 0x8000, filler(2048, 11))
        .segment(iram + 0x400, filler(1024, 12))
        .build()
}

/// An ESP-IDF 5 bootloader: first segment starts with `esp_bootloader_desc_t`.
pub fn idf5_bootloader(chip: Chip, idf_ver: &str) -> Vec<u8> {
    let [_, dram, iram, _] = chip_addresses(chip);
    let mut desc = vec![0u8; 80];
    desc[0] = 0x50;
    desc[4..8].copy_from_slice(&1u32.to_le_bytes());
    write_cstr(&mut desc[8..40], idf_ver);
    write_cstr(&mut desc[40..64], "Jul 25 2024 16:23:50");
    desc.extend_from_slice(&filler(1024, 13));
    Esp32Image::new(header_chip_id(chip))
        .segment(dram + 0x4_0000, desc)
        .segment(iram - 0x8000, filler(2048, 14))
        .segment(iram + 0x400, filler(1024, 15))
        .build()
}

/// A RAM-only app: descriptor at the start of the second segment, nothing flash-mapped.
pub fn ram_only_app(chip: Chip, project: &str, version: &str) -> Vec<u8> {
    let [_, dram, iram, _] = chip_addresses(chip);
    let desc = DescFields {
        project_name: project.into(),
        version: version.into(),
        ..DescFields::default()
    };
    let mut second = desc.bytes();
    second.extend_from_slice(&filler(240, 21));
    Esp32Image::new(header_chip_id(chip))
        .segment(dram, filler(1024, 20))
        .segment(dram + 0x1000, second)
        .segment(iram, filler(2048, 22))
        .build()
}

/// Where the checksum byte and (if any) digest of an image at `base` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FooterPos {
    pub checksum: usize,
    pub hash: Option<usize>,
}

/// Finds the footer of the image at `base` (ESP32 family, or ESP8266 if
/// `esp8266`). ESP8266 digests are unflagged, so `hash` is where one would be.
pub fn footer_pos(bytes: &[u8], base: usize, esp8266: bool) -> Option<FooterPos> {
    let count = *bytes.get(base + 1)?;
    let hdr = if esp8266 {
        ESP8266_HEADER_LEN
    } else {
        ESP32_HEADER_LEN
    };
    let walk = walk_segments(bytes, base as u64 + hdr, count).ok()?;
    let hashed = esp8266 || bytes.get(base + 23) == Some(&1);
    let layout = footer_layout(base as u64, walk.end, false);
    let checksum = usize::try_from(layout.checksum_pos).ok()?;
    Some(FooterPos {
        checksum,
        hash: hashed.then_some(checksum + 1),
    })
}

/// Flips the checksum byte of the ESP32-family image at 0.
pub fn corrupt_checksum(bytes: &mut [u8]) {
    let pos = footer_pos(bytes, 0, false)
        .expect("an ESP32-family image")
        .checksum;
    bytes[pos] ^= 0x01;
}

/// Flips one byte of the appended digest of the ESP32-family image at 0.
pub fn corrupt_hash(bytes: &mut [u8]) {
    let pos = footer_pos(bytes, 0, false)
        .and_then(|f| f.hash)
        .expect("an image with hash_appended");
    bytes[pos] ^= 0x01;
}

/// Flips one data byte of segment `index` (so the checksum no longer matches).
pub fn corrupt_segment_data(bytes: &mut [u8], index: usize) {
    let walk = walk_segments(bytes, ESP32_HEADER_LEN, bytes[1]).expect("walkable image");
    let off = walk.segments[index].data_off as usize;
    bytes[off] ^= 0x40;
}

/// Recomputes checksum and appended digest of the ESP32-family image at 0
/// after its header or data were edited.
pub fn reseal(bytes: &mut [u8]) {
    let walk = walk_segments(bytes, ESP32_HEADER_LEN, bytes[1]).expect("walkable image");
    let pos = footer_pos(bytes, 0, false).expect("footer");
    bytes[pos.checksum] = xor_checksum(bytes, &walk);
    if let Some(h) = pos.hash {
        let digest = Sha256::digest(&bytes[..=pos.checksum]);
        bytes[h..h + HASH_LEN as usize].copy_from_slice(&digest);
    }
}

/// Sets the header chip id and reseals.
pub fn set_chip_id(bytes: &mut [u8], id: u16) {
    bytes[12..14].copy_from_slice(&id.to_le_bytes());
    reseal(bytes);
}

/// The first `len` bytes (a cut-off upload).
pub fn truncate(bytes: &[u8], len: usize) -> Vec<u8> {
    bytes[..len.min(bytes.len())].to_vec()
}
