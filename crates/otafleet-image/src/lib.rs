//! Inspection of ESP32-family and ESP8266 firmware files, for an OTA server
//! that must accept **only flashable application images** and tell a user
//! who uploaded anything else what they uploaded and what to upload instead.
//!
//! [`inspect`] takes a file's bytes and returns either an [`ImageInfo`] (chip,
//! segments, header fields, appended SHA-256, application descriptor) or a
//! [`RejectReason`] with a stable [`RejectReason::code`]. It does no I/O, no
//! allocation proportional to header-claimed sizes, and never panics: every
//! offset is bounds-checked (see the hostile-input tests).
//!
//! # Formats recognised
//!
//! * **ESP32-family app image** (`0xE9`, 24-byte header, ≤ 16 segments,
//!   16-byte-aligned XOR checksum seeded 0xEF, optional appended SHA-256 when
//!   `hash_appended` = 1), with or without an `esp_app_desc_t` at offset 32.
//!   Unknown chip ids are reported as [`Chip::Unknown`], not refused.
//! * **ESP8266 V1 image** (`0xE9`, 8-byte header, segments from offset 8):
//!   plain apps, ESP8266_RTOS_SDK v3 apps (descriptor at the start of a later
//!   segment, *unflagged* SHA-256 after the checksum), and the Arduino-ESP8266
//!   layout (RAM-only `eboot` image, then the app image at 0x1000).
//! * Files that are refused with a specific reason: partition tables, otadata,
//!   bootloaders (with or without the IDF 5 `esp_bootloader_desc_t`), RAM-only
//!   apps, merged full-flash ("factory") images — with the offset of the app
//!   inside them —, truncated or corrupted images, gzip, ZIP, ELF, ESP8266 V2
//!   (`0xEA`) images and signature-first containers.
//!
//! # Rules, and why
//!
//! * **App vs. bootloader is decided by the segments**, not the descriptor:
//!   an app has at least one segment in a flash-mapped address window of its
//!   chip (`chip.rs`); bootloaders and RAM-only apps have none. Arduino-ESP32
//!   apps built before ESP-IDF 3.3 have no descriptor at all and are valid.
//! * **ESP32 vs. ESP8266 is decided by the first segment's load address**
//!   (bytes 8..12 of an ESP8266 image), never by reading a "chip id" at byte
//!   12, which in an ESP8266 image is segment data.
//! * **The file may be longer than the image** (`trailing_bytes`): a
//!   secure-boot v1 signature block, or signing data, follows the image.
//! * Kind is decided before integrity: a corrupted bootloader is reported as
//!   a bootloader, because "upload the app instead" is the useful answer.
//! * Descriptor strings are fixed-size NUL-terminated arrays, often cut at 31
//!   characters; they are decoded lossily and trimmed, never repaired. On
//!   Arduino builds they describe the core, not the sketch
//!   ([`AppDesc::is_arduino`]).
//!
//! # Where the layouts come from
//!
//! ESP-IDF `esp_app_format.h`, `esp_app_desc.h`, `esp_image_format.h`,
//! `esp_bootloader_desc.h`, `esp_partition.h`/`gen_esp32part.py` and
//! `esp_ota_ops`; esptool `bin_image.py` (including the ESP8266 V1/V3
//! writers); Arduino-ESP8266 `elf2bin.py`. The rules were checked against a
//! corpus of real images (`tests/corpus.rs`, which reads it when present). The
//! contract, in the project's words: docs/images.md.
//!
//! # Test support
//!
//! With the cargo feature `synth`, [`synth`] builds valid and deliberately
//! broken images in memory, for tests here and in other crates.

mod app_desc;
mod chip;
mod classify;
mod esp8266;
mod header;
mod partition;
mod reject;

#[cfg(any(test, feature = "synth"))]
pub mod synth;

pub use app_desc::{AppDesc, APP_DESC_MAGIC};
pub use chip::Chip;
pub use classify::inspect;
pub use header::{IMAGE_MAGIC, MAX_SEGMENTS};
pub use reject::RejectReason;

/// Which of the two image layouts the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    /// ESP32-family image with the 24-byte header (serialised `"esp32_app"`).
    Esp32App,
    /// ESP8266 V1 image with the 8-byte header (serialised `"esp8266"`).
    Esp8266,
}

/// One segment of the (application) image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    pub load_addr: u32,
    pub len: u32,
    /// Absolute file offset of the segment's data (just after its 8-byte header).
    pub file_offset: u32,
    /// True when `load_addr` is in a flash-mapped window of the chip.
    pub flash_mapped: bool,
}

/// What [`inspect`] found in an accepted application image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageInfo {
    pub chip: Chip,
    pub format: ImageFormat,
    /// Segments of the application image (for the Arduino-ESP8266 layout, of
    /// the app at 0x1000, not of `eboot`).
    pub segments: Vec<Segment>,
    /// Header byte 2 (0 QIO, 1 QOUT, 2 DIO, 3 DOUT, 4 FAST_READ, 5 SLOW_READ),
    /// from the header at file offset 0 (what ESP8266httpUpdate checks).
    pub spi_mode: u8,
    /// Flash size from the high nibble of header byte 3 at file offset 0,
    /// e.g. `"4MB"` (ESP8266 codes for ESP8266 images, e.g. `"4MB-c1"`).
    pub flash_size: String,
    /// Entry point of the application image.
    pub entry_addr: u32,
    /// `min_chip_rev_full` (major·100 + minor); `None` for ESP8266.
    pub min_chip_rev_full: Option<u16>,
    /// `max_chip_rev_full`; `None` for ESP8266.
    pub max_chip_rev_full: Option<u16>,
    /// A verified SHA-256 follows the checksum (flagged by header byte 23 on
    /// the ESP32 family; detected by value on ESP8266).
    pub hash_appended: bool,
    /// Absolute offset of the end of the image: segments, checksum padding and
    /// checksum, plus the appended hash. For ESP8266 sketches this is what
    /// `ESP.getSketchSize()` reports.
    pub image_len: u64,
    /// Bytes in the file after `image_len` (e.g. a secure-boot signature block).
    pub trailing_bytes: u64,
    /// Lowercase hex of the appended SHA-256 when `hash_appended` (what
    /// Arduino-ESP32 HTTPUpdate sends as `x-ESP32-sketch-sha256`).
    pub appended_sha256: Option<String>,
    /// `esp_app_desc_t`, when the image has one.
    pub app_desc: Option<AppDesc>,
    /// Arduino-ESP8266 layout: `eboot` at 0, application image at 0x1000.
    pub esp8266_eboot: bool,
    /// File offset of the application image header (0, or 0x1000 with eboot).
    pub app_offset: u64,
}

impl ImageInfo {
    /// True when the descriptor says this is an Arduino-ESP32 build.
    pub fn is_arduino(&self) -> bool {
        self.app_desc.as_ref().is_some_and(AppDesc::is_arduino)
    }
}
