//! The synthetic images a run needs, one pair (running, new) per chip family.
//!
//! A fleet that mixes ESP8266 devices with ESP32-family ones needs two projects: an ESP8266 sketch
//! is not an ESP32 one, and the server deploys by project and chip (its esp32FOTA manifest even
//! lists one entry per project, whatever the chip). So the ESP32-family devices (native, Arduino
//! `HTTPUpdate`, esp32FOTA, legacy) run `<project>` on `--chip`, and the ESP8266 devices run
//! `<project>-8266` on an ESP8266.
//!
//! Every image embeds its project and version, so two runs on one server never upload the same
//! bytes (the server would hand back the first run's record, with the first run's project).

use md5::Md5;
use otafleet_image::synth::{AppImage, Esp8266App};
use otafleet_image::Chip;
use sha2::{Digest, Sha256};

use crate::config::Config;

/// An image a device runs, identified as the server identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub version: String,
    pub sha256: String,
    pub md5: String,
    pub size: u64,
}

impl Image {
    pub fn of(version: &str, bytes: &[u8]) -> Self {
        Image {
            version: version.to_string(),
            sha256: hex::encode(Sha256::digest(bytes)),
            md5: hex::encode(Md5::digest(bytes)),
            size: bytes.len() as u64,
        }
    }
}

/// Where an ESP32-family app's `esp_app_desc_t` starts (the first segment's data) and how far a
/// device must have read to know the image's version and project (both 32-byte fields, at 16 and
/// 48 into it).
const DESCRIPTOR_AT: usize = 32;
pub const DESCRIPTOR_END: usize = DESCRIPTOR_AT + 80;
const DESCRIPTOR_MAGIC: u32 = 0xABCD_5432;

/// What an ESP32-family app says about itself in its `esp_app_desc_t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub version: String,
    pub project: String,
}

/// The descriptor in the first [`DESCRIPTOR_END`] bytes of an image, as ESP-IDF reads the one of
/// the image it runs; `None` when there is none (ESP8266 images, apps built before ESP-IDF 3.3).
pub fn descriptor(head: &[u8]) -> Option<Descriptor> {
    let d = head.get(DESCRIPTOR_AT..DESCRIPTOR_END)?;
    if u32::from_le_bytes(d[..4].try_into().ok()?) != DESCRIPTOR_MAGIC {
        return None;
    }
    let text = |raw: &[u8]| {
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).trim().to_string()
    };
    Some(Descriptor {
        version: text(&d[16..48]),
        project: text(&d[48..80]),
    })
}

/// Which image line a device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `--chip` (an ESP32-family chip), project `<project>`.
    Esp32,
    /// ESP8266, project `<project>-8266`.
    Esp8266,
}

impl Family {
    pub fn chip(self, cfg: &Config) -> Chip {
        match self {
            Family::Esp32 => cfg.chip,
            Family::Esp8266 => Chip::Esp8266,
        }
    }

    pub fn project(self, cfg: &Config) -> String {
        match self {
            Family::Esp32 => cfg.project.clone(),
            Family::Esp8266 => format!("{}-8266", cfg.project),
        }
    }

    /// The library file name: project and version are read from it (`<project>-<version>.bin`).
    pub fn filename(self, cfg: &Config, version: &str) -> String {
        format!("{}-{version}.bin", self.project(cfg))
    }

    /// A synthetic image of this family, about `--image-size` bytes. `seed` varies the length so
    /// that the running and the new image of a run never share a size either.
    pub fn build(self, cfg: &Config, version: &str, seed: u32) -> (Vec<u8>, Image) {
        let payload = cfg
            .image_size
            .saturating_sub(1024 + seed as usize * 16)
            .max(1024);
        let bytes = match self {
            Family::Esp32 => AppImage::new(cfg.chip)
                .project(&cfg.project)
                .version(version)
                .elf_sha256([seed as u8; 32])
                .payload_len(payload)
                .build(),
            Family::Esp8266 => esp8266_arduino(&self.project(cfg), version, payload),
        };
        let image = Image::of(version, &bytes);
        (bytes, image)
    }
}

/// An Arduino-ESP8266 3.x file as `elf2bin.py` lays it out: eboot, `0xAA` padding to 0x1000, the
/// sketch image, and the file length and CRC-32 in the first 8 bytes of the sketch's IROM segment
/// (written after the XOR checksum, which covers those bytes as zero). The sketch's IROM carries
/// its project and version as a string, as real sketches carry theirs.
pub fn esp8266_arduino(project: &str, version: &str, payload: usize) -> Vec<u8> {
    Esp8266App::arduino()
        .flash_size_code(4) // 4 MB
        .irom_text(&format!("otafleet-sim {project} {version}\0"))
        .payload_len(payload)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_reads_version_and_project_from_the_descriptor() {
        let bytes = AppImage::new(Chip::Esp32)
            .project("sim-1234")
            .version("1.2.3")
            .payload_len(2048)
            .build();
        assert_eq!(
            descriptor(&bytes[..DESCRIPTOR_END]),
            Some(Descriptor {
                version: "1.2.3".into(),
                project: "sim-1234".into()
            })
        );
        assert_eq!(descriptor(&bytes[..DESCRIPTOR_END - 1]), None);
        assert_eq!(descriptor(&esp8266_arduino("p", "1.0.0", 2048)), None);
    }

    #[test]
    fn esp8266_images_are_valid_arduino_files_and_differ_by_project_and_version() {
        let a = esp8266_arduino("sim-1234-8266", "1.0.0", 20_000);
        let b = esp8266_arduino("sim-1234-8266", "1.1.0", 20_000);
        let c = esp8266_arduino("sim-9999-8266", "1.0.0", 20_000);
        for bin in [&a, &b, &c] {
            let info = otafleet_image::inspect(bin).expect("the importer accepts it");
            assert_eq!(info.chip, Chip::Esp8266);
        }
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
