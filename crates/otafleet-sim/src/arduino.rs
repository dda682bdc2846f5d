//! One virtual device running a stock Arduino HTTP updater: `HTTPUpdate` of Arduino-ESP32
//! (docs/protocols.md §2) or `ESP8266httpUpdate` of the ESP8266 core
//! (same section), which is the same design under other header names ([`Flavor`]).
//!
//! The device polls `GET /ota/arduino` over HTTP/1.0 with `Connection: close` (`useHTTP10(true)`),
//! sending the `x-ESP32-*` / `x-ESP8266-*` headers its library sends (STA and AP MAC, free space,
//! sketch size and MD5, chip size, SDK version, mode, version; ESP8266 adds its chip id). It gets
//! `304` or the image; it refuses an image without `Content-Length`, larger than its free space,
//! not starting with the magic byte (ESP8266 also accepts gzip's `0x1F`, and refuses an image
//! built for a bigger flash than its own), then checks the MD5 announced in `x-MD5` over what it
//! wrote, "reboots" and polls again on the new image, which is what makes the server call the
//! attempt `done`. It reports nothing: the server counts the bytes it sends.
//!
//! These libraries cannot resume: a cut download (injected, or by the server going away) is
//! dropped and the next poll starts over. An injected failed boot comes back with the old sketch
//! MD5, which the server must record as a failed attempt; the device takes the image again while
//! it is offered, until the server's attempt limit answers `304`. This module speaks the protocol
//! ([`check`], [`install`]); the device's life, outcomes and back-off are [`crate::life`]'s.

use tokio::sync::OwnedSemaphorePermit;

use crate::device::DeviceSpec;
use crate::error::DeviceError;
use crate::http::status_error;
use crate::images::Image;
use crate::life::{Dev, Flashed};
use crate::run::Shared;
use crate::stock;

/// Which of the two libraries the device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Arduino-ESP32 `HTTPUpdate`.
    Esp32,
    /// ESP8266 core `ESP8266httpUpdate`.
    Esp8266,
}

impl Flavor {
    fn what(self) -> &'static str {
        match self {
            Flavor::Esp32 => "arduino poll",
            Flavor::Esp8266 => "esp8266 poll",
        }
    }
}

/// Real flash size of every simulated board (`ESP.getFlashChipSize()` / `getFlashChipRealSize()`).
const CHIP_SIZE: u64 = 4 * 1024 * 1024;

/// The flash size an ESP8266 image header asks for (high nibble of byte 3), in bytes.
fn esp8266_flash_bytes(code: u8) -> Option<u64> {
    const K: u64 = 1024;
    Some(match code {
        0 => 512 * K,
        1 => 256 * K,
        2 => 1024 * K,
        3 | 5 => 2048 * K,
        4 | 6 => 4096 * K,
        8 => 8192 * K,
        9 => 16384 * K,
        _ => return None,
    })
}

/// The soft-AP MAC: the station MAC with its last byte plus one, as the ESP cores derive it.
fn ap_mac(sta: &str) -> String {
    let (head, last) = sta.rsplit_once(':').unwrap_or(("", "00"));
    let b = u8::from_str_radix(last, 16).unwrap_or(0).wrapping_add(1);
    format!("{head}:{b:02X}")
}

/// `ESP.getChipId()` of an ESP8266: the last three MAC bytes as a number.
fn chip_id(mac: &str) -> u32 {
    mac.split(':')
        .skip(3)
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .fold(0, |acc, b| (acc << 8) | u32::from(b))
}

/// The request its library sends for the running image.
fn poll(sh: &Shared, spec: &DeviceSpec, flavor: Flavor, free: u64) -> reqwest::RequestBuilder {
    let running = &spec.running;
    let b = sh
        .http
        .client
        .get(sh.http.url("/ota/arduino"))
        .version(reqwest::Version::HTTP_10)
        .header("Connection", "close");
    match flavor {
        Flavor::Esp32 => b
            .header("User-Agent", "ESP32-http-Update")
            .header("Cache-Control", "no-cache")
            .header("x-ESP32-STA-MAC", &spec.mac)
            .header("x-ESP32-AP-MAC", ap_mac(&spec.mac))
            .header("x-ESP32-free-space", free)
            .header("x-ESP32-sketch-size", running.size)
            .header("x-ESP32-sketch-md5", &running.md5)
            .header("x-ESP32-chip-size", CHIP_SIZE)
            .header("x-ESP32-sdk-version", "v4.4.7")
            .header("x-ESP32-mode", "sketch")
            .header("x-ESP32-version", &running.version),
        Flavor::Esp8266 => b
            .header("User-Agent", "ESP8266-http-Update")
            .header("x-ESP8266-Chip-ID", chip_id(&spec.mac))
            .header("x-ESP8266-STA-MAC", &spec.mac)
            .header("x-ESP8266-AP-MAC", ap_mac(&spec.mac))
            .header("x-ESP8266-free-space", free)
            .header("x-ESP8266-sketch-size", running.size)
            .header("x-ESP8266-sketch-md5", &running.md5)
            .header("x-ESP8266-chip-size", CHIP_SIZE)
            .header("x-ESP8266-sdk-version", "2.2.2-dev(38a443e)")
            .header("x-ESP8266-mode", "sketch")
            .header("x-ESP8266-version", &running.version),
    }
}

/// What the library got in answer to its poll: the image, streaming.
pub struct Offer {
    r: reqwest::Response,
    /// The connection slot the response holds while its body streams.
    _slot: Option<OwnedSemaphorePermit>,
    md5: String,
    version: String,
}

impl Offer {
    /// The MD5 the server announced (`x-MD5`), lower case.
    pub fn md5(&self) -> &str {
        &self.md5
    }
}

/// The next OTA slot: room for the image (a 1.875 MB slot, or more when the run's images are
/// bigger).
fn free_space(sh: &Shared) -> u64 {
    (0x1E_0000u64).max(sh.cfg.image_size as u64 * 2)
}

/// One poll for the image the device runs: `304` is nothing to do, `200` the image, which the
/// library checks the headers of before it takes a byte.
pub async fn check(dev: &mut Dev<'_>, flavor: Flavor) -> Result<Option<Offer>, DeviceError> {
    let sh = dev.sh;
    let free = free_space(sh);
    let spec = &dev.spec;
    let (r, slot) = sh
        .http
        .send(flavor.what(), || poll(sh, spec, flavor, free).send())
        .await?;
    dev.enrolled();
    match r.status().as_u16() {
        304 => Ok(None),
        200 => {
            let header = |n: &str| {
                r.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            // HTTPUpdate passes x-MD5 to Update.setMD5(); it must be there for the check the
            // run asks for (a malformed one is -105).
            let want_md5 = header("x-MD5").ok_or_else(|| {
                DeviceError::Protocol("an image without x-MD5 (HTTPUpdate needs it)".into())
            })?;
            if want_md5.len() != 32 || !want_md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(DeviceError::Protocol(format!(
                    "x-MD5 '{want_md5}' is not 32 hex characters (HTTP_UE_SERVER_FAULTY_MD5)"
                )));
            }
            let version = header("x-version").unwrap_or_default();
            let size = stock::content_length(&r)?;
            if size > free {
                return Err(DeviceError::Protocol(format!(
                    "an image of {size} bytes for a free space of {free} (HTTP_UE_TOO_LESS_SPACE)"
                )));
            }
            Ok(Some(Offer {
                r,
                _slot: slot,
                md5: want_md5.to_lowercase(),
                version,
            }))
        }
        _ => Err(status_error(flavor.what(), r).await),
    }
}

/// Take the image of a `200`: stream it into flash, check the header and the announced MD5.
/// `None` when the download broke (the next poll starts over).
pub async fn install(
    dev: &mut Dev<'_>,
    flavor: Flavor,
    o: Offer,
) -> Result<Option<Flashed>, DeviceError> {
    dev.phase = "downloading";
    let streamed = stock::stream_image(dev.sh, o.r, dev.cut_pending).await?;
    let Some(img) = stock::whole(dev, streamed) else {
        return Ok(None);
    };
    check_header(flavor, &img.head)?;
    if img.md5 != o.md5 {
        return Err(DeviceError::Protocol(format!(
            "the image's MD5 {} is not the announced {} (UPDATE_ERROR_MD5)",
            img.md5, o.md5
        )));
    }
    Ok(Some(Flashed {
        image: Image {
            version: o.version,
            sha256: img.sha256,
            md5: img.md5,
            size: img.size,
        },
        project: None,
        update_id: None,
        announced: true,
    }))
}

/// The library's look at the first bytes. ESP32: the magic byte. ESP8266: magic or gzip, and
/// (built without `FLASH_MAP_SUPPORT`) no image for a bigger flash than the chip's.
fn check_header(flavor: Flavor, head: &[u8]) -> Result<(), DeviceError> {
    match (flavor, head.first().copied()) {
        (Flavor::Esp32, _) => stock::check_magic(head),
        (Flavor::Esp8266, Some(0x1F)) => Ok(()),
        (Flavor::Esp8266, Some(0xE9)) => {
            let code = head.get(3).map(|b| b >> 4).unwrap_or(0xF);
            match esp8266_flash_bytes(code) {
                Some(n) if n <= CHIP_SIZE => Ok(()),
                _ => Err(DeviceError::Protocol(format!(
                    "the image is built for flash size code {code}, more than this {CHIP_SIZE}-byte chip (HTTP_UE_BIN_FOR_WRONG_FLASH)"
                ))),
            }
        }
        (Flavor::Esp8266, other) => Err(DeviceError::Protocol(format!(
            "the image starts with {other:02X?}, neither 0xE9 nor gzip (HTTP_UE_BIN_VERIFY_HEADER_FAILED)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_identities() {
        assert_eq!(ap_mac("CC:50:E3:17:C4:11"), "CC:50:E3:17:C4:12");
        assert_eq!(ap_mac("CC:50:E3:17:C4:FF"), "CC:50:E3:17:C4:00");
        assert_eq!(chip_id("CC:50:E3:17:C4:11"), 0x17C411);
        assert_eq!(esp8266_flash_bytes(4), Some(4 * 1024 * 1024));
        assert_eq!(esp8266_flash_bytes(7), None);
    }
}
