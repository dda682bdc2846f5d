//! Why a file is not accepted as a flashable application image.
//!
//! Every message names what the file is and what the user should upload
//! instead, because the people who see them are usually holding the wrong
//! file from a build folder (bootloader.bin, partitions.bin, a merged
//! "factory" image, firmware.elf), not a damaged one.

/// The reason [`crate::inspect`] refused a file.
///
/// Serialises (serde, externally tagged) under the same snake_case name that
/// [`RejectReason::code`] returns: `"empty"`, `{"truncated":{"expected":…,"actual":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    #[error("the file is empty (0 bytes); upload the application .bin your build produced")]
    Empty,

    #[error(
        "not an ESP firmware image (no 0xE9 image header at the start); upload the application \
         .bin your build produced (ESP-IDF: build/<project>.bin, PlatformIO: \
         .pio/build/<env>/firmware.bin, Arduino IDE: Sketch > Export Compiled Binary)"
    )]
    NotEspImage,

    #[error(
        "a partition table (partitions.bin / partition-table.bin, entries with magic 0xAA50), \
         not firmware; upload the application .bin instead — the partition table is written \
         once over serial and is not changed by OTA"
    )]
    PartitionTable,

    #[serde(rename = "otadata")]
    #[error(
        "an otadata partition image (ota_data_initial.bin / boot_app0.bin), not firmware; \
         upload the application .bin instead"
    )]
    OtaData,

    #[error(
        "a second-stage bootloader (bootloader.bin: an ESP image with no segment in flash-mapped \
         memory), not an application; upload the application .bin instead — OTA does not \
         replace the bootloader"
    )]
    Bootloader,

    #[error(
        "a RAM-only application (it has an app descriptor but no segment in flash-mapped \
         memory, e.g. built with CONFIG_APP_BUILD_TYPE_RAM), which can only be loaded over \
         serial and cannot boot from an OTA partition; build a normal flash app and upload \
         that .bin"
    )]
    RamOnlyApp,

    #[error("{}", merged_message(*app_offset))]
    MergedFlashImage {
        /// Where the application image starts inside this file, when found
        /// (from the partition table at 0x8000, else 0x10000 if an image is there).
        app_offset: Option<u64>,
    },

    #[error(
        "an ESP image that is cut short: it needs at least {expected} bytes but the file has \
         {actual}; the upload or download was incomplete — upload the complete .bin again"
    )]
    Truncated { expected: u64, actual: u64 },

    #[error(
        "not a valid ESP image: the header claims {0} segments (at most 16 are allowed), so the \
         file is damaged or not firmware; upload the application .bin your build produced"
    )]
    TooManySegments(u8),

    #[error(
        "not a valid ESP image: {detail}; the file is damaged or not firmware — upload the \
         application .bin your build produced"
    )]
    MalformedHeader { detail: String },

    /// `expected` is the checksum byte stored in the image, `actual` the XOR
    /// (seeded 0xEF) computed over the segment data.
    #[error(
        "a damaged ESP image: its checksum byte is 0x{expected:02x} but the segment data gives \
         0x{actual:02x}; the file was corrupted or edited after the build — upload a fresh copy \
         of the .bin"
    )]
    ChecksumMismatch { expected: u8, actual: u8 },

    #[error(
        "a damaged ESP image: the SHA-256 appended to it does not match its contents, so the \
         bootloader would refuse to boot it; upload a fresh copy of the .bin from the build"
    )]
    HashMismatch,

    #[error(
        "a damaged ESP8266 image: the CRC-32 that the Arduino-ESP8266 build stores at 0x1014 \
         does not match the file; upload a fresh copy of the .bin from the build"
    )]
    CrcMismatch,

    #[error(
        "a gzip-compressed file; upload the uncompressed .bin (the server checks the plain \
         image before it is sent to devices)"
    )]
    Gzip,

    #[error("a ZIP archive; unpack it and upload the application .bin inside")]
    Zip,

    #[error(
        "an ELF file (the linker output, e.g. firmware.elf), not a flashable image; upload the \
         .bin that esptool / idf.py / PlatformIO / Arduino generate from it"
    )]
    Elf,

    #[serde(rename = "esp8266_v2_image")]
    #[error(
        "an ESP8266 V2 image (magic 0xEA: NONOS SDK user1/user2 or rboot format), which this \
         server does not handle; upload a V1 image (0xE9, as Arduino-ESP8266 and \
         ESP8266_RTOS_SDK produce)"
    )]
    Esp8266V2Image,

    #[serde(rename = "esp8266_ram_only")]
    #[error(
        "an ESP8266 image with only RAM segments and no application after it (eboot on its own, \
         or the 0x00000 half of a split NONOS SDK build); upload the single application .bin \
         (for Arduino-ESP8266 the sketch .bin, which starts with eboot and has the app at 0x1000)"
    )]
    Esp8266RamOnly,

    #[error(
        "an ESP image preceded by a {image_offset}-byte block (a signed container such as \
         esp32FOTA's, signature first), not a plain image; upload the unsigned .bin the build \
         produced"
    )]
    SignedContainer { image_offset: u64 },
}

fn merged_message(app_offset: Option<u64>) -> String {
    let what = "a merged full-flash image (bootloader, partition table and app)";
    match app_offset {
        Some(off) => format!("{what}; upload the app alone — it starts at 0x{off:x} in this file"),
        None => format!(
            "{what}; upload the app alone (the <project>.bin / firmware.bin next to it in the \
             build folder), not the merged/factory image"
        ),
    }
}

impl RejectReason {
    /// Stable machine-readable code, identical to the serde tag.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::NotEspImage => "not_esp_image",
            RejectReason::PartitionTable => "partition_table",
            RejectReason::OtaData => "otadata",
            RejectReason::Bootloader => "bootloader",
            RejectReason::RamOnlyApp => "ram_only_app",
            RejectReason::MergedFlashImage { .. } => "merged_flash_image",
            RejectReason::Truncated { .. } => "truncated",
            RejectReason::TooManySegments(_) => "too_many_segments",
            RejectReason::MalformedHeader { .. } => "malformed_header",
            RejectReason::ChecksumMismatch { .. } => "checksum_mismatch",
            RejectReason::HashMismatch => "hash_mismatch",
            RejectReason::CrcMismatch => "crc_mismatch",
            RejectReason::Gzip => "gzip",
            RejectReason::Zip => "zip",
            RejectReason::Elf => "elf",
            RejectReason::Esp8266V2Image => "esp8266_v2_image",
            RejectReason::Esp8266RamOnly => "esp8266_ram_only",
            RejectReason::SignedContainer { .. } => "signed_container",
        }
    }

    /// One value of every variant (with placeholder fields), for tests and docs.
    pub fn examples() -> Vec<RejectReason> {
        vec![
            RejectReason::Empty,
            RejectReason::NotEspImage,
            RejectReason::PartitionTable,
            RejectReason::OtaData,
            RejectReason::Bootloader,
            RejectReason::RamOnlyApp,
            RejectReason::MergedFlashImage {
                app_offset: Some(0x10000),
            },
            RejectReason::MergedFlashImage { app_offset: None },
            RejectReason::Truncated {
                expected: 100,
                actual: 10,
            },
            RejectReason::TooManySegments(17),
            RejectReason::MalformedHeader {
                detail: "segment count is 0".into(),
            },
            RejectReason::ChecksumMismatch {
                expected: 1,
                actual: 2,
            },
            RejectReason::HashMismatch,
            RejectReason::CrcMismatch,
            RejectReason::Gzip,
            RejectReason::Zip,
            RejectReason::Elf,
            RejectReason::Esp8266V2Image,
            RejectReason::Esp8266RamOnly,
            RejectReason::SignedContainer { image_offset: 512 },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_tag_equals_code() {
        for r in RejectReason::examples() {
            let v = serde_json::to_value(&r).unwrap();
            let tag = match &v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(m) => m.keys().next().unwrap().clone(),
                other => panic!("unexpected {other}"),
            };
            assert_eq!(tag, r.code(), "{r:?}");
            let back: RejectReason = serde_json::from_value(v).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn every_message_says_what_and_what_to_do() {
        for r in RejectReason::examples() {
            let msg = r.to_string();
            assert!(
                msg.starts_with("a ")
                    || msg.starts_with("an ")
                    || msg.starts_with("not ")
                    || msg.starts_with("the "),
                "{msg}"
            );
            assert!(msg.contains("upload"), "no advice in: {msg}");
        }
    }

    #[test]
    fn merged_message_as_specified() {
        let r = RejectReason::MergedFlashImage {
            app_offset: Some(0x10000),
        };
        assert_eq!(
            r.to_string(),
            "a merged full-flash image (bootloader, partition table and app); upload the app \
             alone — it starts at 0x10000 in this file"
        );
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<_> = RejectReason::examples().iter().map(|r| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), RejectReason::examples().len() - 1); // merged listed twice
    }
}
