//! ESP8266 V1 images: plain, ESP8266_RTOS_SDK v3 style, Arduino eboot + app.

use sha2::{Digest, Sha256};

use super::{filler, pad4, push_checksum, DescFields};
use crate::header::CHECKSUM_SEED;

/// A generic ESP8266 V1 image (8-byte header, segments from offset 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esp8266Image {
    pub spi_mode: u8,
    /// Header byte 3: ESP8266 flash size code (high nibble) / frequency.
    pub flash_byte: u8,
    pub entry: u32,
    pub segments: Vec<(u32, Vec<u8>)>,
    /// Append the SHA-256 of the image after the checksum without any flag
    /// (ESP8266_RTOS_SDK v3).
    pub unflagged_sha256: bool,
}

impl Esp8266Image {
    pub fn new(entry: u32) -> Self {
        Esp8266Image {
            spi_mode: 3,      // DOUT
            flash_byte: 0x20, // 1MB, 40 MHz
            entry,
            segments: Vec::new(),
            unflagged_sha256: false,
        }
    }

    pub fn segment(mut self, load_addr: u32, data: Vec<u8>) -> Self {
        self.segments.push((load_addr, data));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = vec![
            0xE9,
            self.segments.len() as u8,
            self.spi_mode,
            self.flash_byte,
        ];
        out.extend_from_slice(&self.entry.to_le_bytes());
        let mut checksum = CHECKSUM_SEED;
        for (addr, data) in &self.segments {
            out.extend_from_slice(&addr.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
            checksum = data.iter().fold(checksum, |a, b| a ^ b);
        }
        push_checksum(&mut out, 0, checksum);
        if self.unflagged_sha256 {
            let digest = Sha256::digest(&out);
            out.extend_from_slice(&digest);
        }
        out
    }
}

/// Which ESP8266 file shape to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Esp8266Layout {
    /// One app image at offset 0 (IROM segment first).
    Plain,
    /// Arduino-ESP8266: eboot (RAM only) at 0, 0xAA padding, app at 0x1000.
    ArduinoEboot,
    /// ESP8266_RTOS_SDK v3: descriptor starts the second segment, unflagged SHA-256.
    RtosSdk,
}

/// Builder for ESP8266 application files.
#[derive(Debug, Clone)]
pub struct Esp8266App {
    layout: Esp8266Layout,
    desc: Option<DescFields>,
    payload_len: usize,
    flash_byte: u8,
    trailing: Vec<u8>,
    arduino_crc: bool,
    irom_text: Vec<u8>,
}

impl Esp8266App {
    fn with(layout: Esp8266Layout, desc: Option<DescFields>) -> Self {
        Esp8266App {
            layout,
            desc,
            payload_len: 4096,
            flash_byte: 0x20,
            trailing: Vec::new(),
            arduino_crc: true,
            irom_text: Vec::new(),
        }
    }
    pub fn plain() -> Self {
        Self::with(Esp8266Layout::Plain, None)
    }
    pub fn arduino() -> Self {
        Self::with(Esp8266Layout::ArduinoEboot, None)
    }
    pub fn rtos_sdk(project: &str, version: &str) -> Self {
        Self::rtos_sdk_with(DescFields {
            project_name: project.into(),
            version: version.into(),
            idf_ver: "v3.4-dirty".into(),
            ..DescFields::default()
        })
    }
    pub fn rtos_sdk_with(desc: DescFields) -> Self {
        Self::with(Esp8266Layout::RtosSdk, Some(desc))
    }
    pub fn payload_len(mut self, n: usize) -> Self {
        self.payload_len = n;
        self
    }
    /// ESP8266 flash size code (high nibble of header byte 3).
    pub fn flash_size_code(mut self, code: u8) -> Self {
        self.flash_byte = (code << 4) | (self.flash_byte & 0x0F);
        self
    }
    /// Arduino layout only: write the Arduino-ESP8266 3.x length and CRC
    /// words at 0x1010 (default), or leave them zero as older cores did.
    pub fn arduino_crc(mut self, yes: bool) -> Self {
        self.arduino_crc = yes;
        self
    }
    /// Text at the start of the IROM payload, as a sketch carries its own strings: Arduino and
    /// plain images have no descriptor, so this is what makes two builds' bytes differ.
    pub fn irom_text(mut self, text: &str) -> Self {
        self.irom_text = text.as_bytes().to_vec();
        self
    }
    /// Bytes after the image (e.g. an Arduino signature + length).
    pub fn trailing(mut self, bytes: &[u8]) -> Self {
        self.trailing = bytes.to_vec();
        self
    }

    /// The eboot loader image alone (RAM segments only), with header byte 3
    /// = `flash_byte` (elf2bin writes the same flash settings into both headers).
    pub fn eboot(flash_byte: u8) -> Vec<u8> {
        let mut e = Esp8266Image::new(0x4010_F494)
            .segment(0x4010_F000, filler(3460, 30))
            .segment(0x3FFF_20B8, filler(40, 31));
        e.flash_byte = flash_byte;
        e.build()
    }

    /// The application image (no eboot) for this layout.
    pub fn app_image(&self) -> Esp8266Image {
        let mut img = Esp8266Image::new(0x4010_00C0);
        img.flash_byte = self.flash_byte;
        let mut irom = self.irom_text.clone();
        irom.extend_from_slice(&filler(self.payload_len, 32));
        let irom = pad4(irom);
        match (&self.layout, &self.desc) {
            (Esp8266Layout::RtosSdk, desc) => {
                let mut rodata = desc.clone().unwrap_or_default().bytes();
                rodata.extend_from_slice(&filler(256, 33));
                img = img
                    .segment(0x4020_0010, irom)
                    .segment(0x4024_0010, rodata)
                    .segment(0x4010_0000, filler(512, 34))
                    .segment(0x3FFE_8000, filler(128, 35));
                img.unflagged_sha256 = true;
            }
            _ => {
                // Arduino: the first 8 IROM bytes are the CRC placeholders.
                let mut irom_with_words = vec![0u8; 8];
                irom_with_words.extend_from_slice(&irom);
                img = img
                    .segment(0x4020_1010, irom_with_words)
                    .segment(0x4010_0000, filler(512, 34))
                    .segment(0x4010_0200, filler(256, 36))
                    .segment(0x3FFE_8000, filler(128, 35))
                    .segment(0x3FFE_8080, filler(64, 37));
            }
        }
        img
    }

    pub fn build(&self) -> Vec<u8> {
        let app = self.app_image().build();
        let mut out = match self.layout {
            Esp8266Layout::ArduinoEboot => {
                let mut out = Self::eboot(self.flash_byte);
                out.resize(0x1000, 0xAA);
                out.extend_from_slice(&app);
                if self.arduino_crc {
                    let len = out.len() as u32;
                    let crc = crate::esp8266::crc32_msb_zeroed(&out, 0x1010);
                    out[0x1010..0x1014].copy_from_slice(&len.to_le_bytes());
                    out[0x1014..0x1018].copy_from_slice(&crc.to_le_bytes());
                }
                out
            }
            _ => app,
        };
        out.extend_from_slice(&self.trailing);
        out
    }
}
