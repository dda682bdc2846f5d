//! `esp_app_desc_t` (application descriptor) and `esp_bootloader_desc_t`.
//!
//! `esp_app_desc_t` (ESP-IDF ≥ 3.3, `esp_app_desc.h`), 256 bytes, magic
//! 0xABCD5432. In an ESP32-family app it is the start of the first segment's
//! data, i.e. file offset 32; in a RAM-only app and in ESP8266_RTOS_SDK v3
//! images it starts a later segment.
//!
//! | off | field |
//! |----:|-------|
//! | 0 | magic u32 0xABCD5432 |
//! | 4 | secure_version u32 |
//! | 16 | version\[32\] |
//! | 48 | project_name\[32\] |
//! | 80 | time\[16\] |
//! | 96 | date\[16\] |
//! | 112 | idf_ver\[32\] |
//! | 144 | app_elf_sha256\[32\] |
//!
//! The char arrays are NUL-terminated and silently cut at 31 characters
//! (`v5.0-beta1-427-g4532e6e0b2-dirt`), so they are decoded up to the first
//! NUL, lossily, and trimmed; nothing tries to "repair" a cut string.
//!
//! `esp_bootloader_desc_t` (ESP-IDF ≥ 5.x bootloaders) starts the first
//! segment of a bootloader: magic byte 0x50 at file offset 32, version u32 at
//! 36, idf_ver\[32\] at 40, date_time\[24\] at 72.

use crate::header::{slice, RawSegment};

/// `ESP_APP_DESC_MAGIC_WORD`.
pub const APP_DESC_MAGIC: u32 = 0xABCD_5432;
/// Size of `esp_app_desc_t`.
pub const APP_DESC_LEN: u64 = 256;
/// `ESP_BOOTLOADER_DESC_MAGIC_BYTE`.
pub const BOOTLOADER_DESC_MAGIC: u8 = 0x50;
/// Size of `esp_bootloader_desc_t`.
pub const BOOTLOADER_DESC_LEN: u64 = 80;

/// Project names of the precompiled Arduino-ESP32 core descriptors.
const ARDUINO_PROJECTS: [&str; 2] = ["arduino-lib-builder", "esp32-arduino-lib-builder"];

/// The application descriptor of an image.
///
/// On Arduino-ESP32 builds this describes the precompiled core, not the
/// sketch (see [`AppDesc::is_arduino`]): `version`, `date` and `time` are the
/// core's, and `app_elf_sha256` may be all zeros.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppDesc {
    pub secure_version: u32,
    pub version: String,
    pub project_name: String,
    pub time: String,
    pub date: String,
    pub idf_ver: String,
    /// Lowercase hex of the 32-byte field.
    pub app_elf_sha256: String,
    /// Absolute file offset where the descriptor was found (32 for a normal app).
    pub file_offset: u64,
}

impl AppDesc {
    /// True when the descriptor is the Arduino-ESP32 core's
    /// (`arduino-lib-builder` for core 2.x/3.x, `esp32-arduino-lib-builder`
    /// for core 1.0.x). Such descriptors cannot tell sketches or their
    /// versions apart; the release version must come from elsewhere.
    pub fn is_arduino(&self) -> bool {
        ARDUINO_PROJECTS.contains(&self.project_name.as_str())
    }
}

/// Decodes a fixed-size, NUL-terminated char array: up to the first NUL (or
/// the whole array if there is none), invalid UTF-8 replaced, whitespace trimmed.
pub(crate) fn cstr(raw: &[u8]) -> String {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).trim().to_string()
}

/// Parses an `esp_app_desc_t` at absolute offset `off`, if the magic is there
/// and all 256 bytes are in the file.
pub(crate) fn parse_app_desc(bytes: &[u8], off: u64) -> Option<AppDesc> {
    let d = slice(bytes, off, APP_DESC_LEN)?;
    if u32::from_le_bytes([d[0], d[1], d[2], d[3]]) != APP_DESC_MAGIC {
        return None;
    }
    Some(AppDesc {
        secure_version: u32::from_le_bytes([d[4], d[5], d[6], d[7]]),
        version: cstr(&d[16..48]),
        project_name: cstr(&d[48..80]),
        time: cstr(&d[80..96]),
        date: cstr(&d[96..112]),
        idf_ver: cstr(&d[112..144]),
        app_elf_sha256: hex::encode(&d[144..176]),
        file_offset: off,
    })
}

/// The descriptor at the start of `seg`, if the segment is large enough to hold one.
pub(crate) fn desc_at_segment(bytes: &[u8], seg: &RawSegment) -> Option<AppDesc> {
    if u64::from(seg.len) < APP_DESC_LEN {
        return None;
    }
    parse_app_desc(bytes, seg.data_off)
}

/// The first descriptor that starts any segment (RAM-only apps, ESP8266_RTOS_SDK).
pub(crate) fn find_in_segments(bytes: &[u8], segs: &[RawSegment]) -> Option<AppDesc> {
    segs.iter().find_map(|s| desc_at_segment(bytes, s))
}

/// True when the first segment starts with an `esp_bootloader_desc_t`:
/// magic byte 0x50 and a printable first character of `idf_ver`.
pub(crate) fn has_bootloader_desc(bytes: &[u8], first: &RawSegment) -> bool {
    if u64::from(first.len) < BOOTLOADER_DESC_LEN {
        return false;
    }
    let Some(d) = slice(bytes, first.data_off, BOOTLOADER_DESC_LEN) else {
        return false;
    };
    d[0] == BOOTLOADER_DESC_MAGIC && (0x21..0x7F).contains(&d[8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cstr_cases() {
        assert_eq!(cstr(b"hello\0world\0\0\0"), "hello");
        assert_eq!(cstr(b"  padded \0"), "padded");
        assert_eq!(cstr(b"no-nul-at-all"), "no-nul-at-all");
        assert_eq!(cstr(b"\0garbage"), "");
        assert_eq!(cstr(b"bad\xffutf8\0"), "bad\u{fffd}utf8");
        // 31 characters + NUL: kept exactly as cut
        let mut raw = [0u8; 32];
        raw[..31].copy_from_slice(b"v5.0-beta1-427-g4532e6e0b2-dirt");
        assert_eq!(cstr(&raw), "v5.0-beta1-427-g4532e6e0b2-dirt");
    }

    #[test]
    fn desc_needs_all_256_bytes() {
        let mut b = vec![0u8; 255];
        b[..4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
        assert!(parse_app_desc(&b, 0).is_none());
        b.push(0);
        assert!(parse_app_desc(&b, 0).is_some());
        assert!(parse_app_desc(&b, u64::MAX).is_none());
    }

    #[test]
    fn arduino_detection() {
        let mut d = AppDesc {
            secure_version: 0,
            version: String::new(),
            project_name: "arduino-lib-builder".into(),
            time: String::new(),
            date: String::new(),
            idf_ver: String::new(),
            app_elf_sha256: String::new(),
            file_offset: 32,
        };
        assert!(d.is_arduino());
        d.project_name = "esp32-arduino-lib-builder".into();
        assert!(d.is_arduino());
        d.project_name = "hello_world".into();
        assert!(!d.is_arduino());
    }
}
