//! One virtual device built for the legacy "ESP32 OTA Update Server" (docs/protocols.md §4;
//! docs/seed1-compat.md §1, what that server's device sketch does).
//!
//! Check: `GET /api/firmware?device_id=PanicAlarm_XXXX&hardware=…&version=…&mac=AA:BB:…` with the
//! stock `HTTPClient` (HTTP/1.1), `hardware` url-encoded with `+`, the MAC not encoded, and
//! `X-Device-Auth`: djb2 with seed 0 over the MAC without colons (upper case) followed by the
//! shared secret, printed as lower-case hex without padding (`String(h, HEX)`), which is what the
//! deployed firmware sends. The answer is JSON; only `update_available`, `firmware_url`,
//! `checksum` and `firmware_version` are read. Download: a plain GET of `firmware_url` without
//! auth that must be a `200` with a positive `Content-Length`; `Update.setMD5(checksum)` (only
//! when it is 32 characters) and the magic byte are checked; then it restarts and checks again
//! with its new version, which is what makes the server call the attempt `done`.
//!
//! The legacy server knows only devices its admin added (no auto-enrolment): the run registers
//! them through the legacy admin API first (`admin::register_legacy`). These devices report
//! nothing and cannot resume (a download cut, injected or by the server going away, starts over
//! at the next check); a failed boot comes back with the old version, which the server must
//! record as a failed attempt, and takes the image again while it is offered, until the server's
//! attempt limit answers `update_available: false`. This module speaks the protocol ([`check`],
//! [`install`]); the device's life, outcomes and back-off are [`crate::life`]'s.

use serde::Deserialize;

use crate::error::DeviceError;
use crate::http::status_error;
use crate::images::Image;
use crate::life::{Dev, Flashed};
use crate::run::Shared;
use crate::stock;

/// The board name the sketch sends (one of the four it knows), url-encoded as its `urlEncode`.
const HARDWARE: &str = "ESP32+Dev+Module";

/// djb2 as the deployed firmware computes it: seed 0, `h = h * 33 + byte` mod 2^32.
pub fn djb2(input: &str) -> u32 {
    input
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(33).wrapping_add(u32::from(b)))
}

/// The `X-Device-Auth` value the firmware sends for `mac` (`AA:BB:CC:DD:EE:FF`).
pub fn token(mac: &str, secret: &str) -> String {
    format!(
        "{:x}",
        djb2(&format!("{}{secret}", mac.replace(':', "").to_uppercase()))
    )
}

/// The sketch's `configSSID`: `PanicAlarm_` and the last two MAC bytes.
pub fn device_id(mac: &str) -> String {
    let tail: String = mac.split(':').skip(4).collect();
    format!("PanicAlarm_{}", tail.to_uppercase())
}

#[derive(Debug, Deserialize)]
struct CheckAnswer {
    update_available: bool,
    firmware_version: Option<String>,
    firmware_url: Option<String>,
    checksum: Option<String>,
}

fn get(sh: &Shared, url: &str) -> reqwest::RequestBuilder {
    sh.http
        .client
        .get(url)
        .header("User-Agent", stock::HTTPCLIENT_UA)
        .header("Connection", "keep-alive")
        .header("Accept-Encoding", stock::HTTPCLIENT_ACCEPT_ENCODING)
}

/// The `X-Device-Auth` this device sends, from the run's `--legacy-device-secret`.
pub fn auth(sh: &Shared, mac: &str) -> Result<String, DeviceError> {
    let secret = sh.cfg.legacy_device_secret.as_deref().ok_or_else(|| {
        DeviceError::Protocol("a legacy device without --legacy-device-secret".into())
    })?;
    Ok(token(mac, secret))
}

/// An update the check announced.
pub struct Offer {
    version: Option<String>,
    url: String,
    md5: String,
}

impl Offer {
    pub fn md5(&self) -> &str {
        &self.md5
    }

    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

/// One check for the version the device runs.
pub async fn check(dev: &mut Dev<'_>, auth: &str) -> Result<Option<Offer>, DeviceError> {
    let sh = dev.sh;
    let url = sh.http.url(&format!(
        "/api/firmware?device_id={}&hardware={HARDWARE}&version={}&mac={}",
        device_id(&dev.spec.mac),
        dev.spec.running.version,
        dev.spec.mac
    ));
    let (r, slot) = sh
        .http
        .send("legacy check", || {
            get(sh, &url).header("X-Device-Auth", auth).send()
        })
        .await?;
    // The sketch takes any other status as "no update"; here it means the server or the run's
    // setup is wrong (the devices were registered before they started).
    if r.status().as_u16() != 200 {
        return Err(status_error("legacy check", r).await);
    }
    let answer: CheckAnswer = r.json().await.map_err(|e| DeviceError::Transport {
        what: "legacy check body",
        source: e,
    })?;
    drop(slot);
    dev.enrolled();
    if !answer.update_available {
        return Ok(None);
    }
    let url = answer
        .firmware_url
        .clone()
        .ok_or_else(|| DeviceError::Protocol("update_available without firmware_url".into()))?;
    // Update.setMD5() ignores anything that is not 32 characters: then there is no integrity
    // check at all, which the run counts as an error.
    let md5 = answer
        .checksum
        .clone()
        .filter(|c| c.len() == 32)
        .ok_or_else(|| {
            DeviceError::Protocol(format!(
                "checksum {:?} is not a 32-character MD5: the device would flash unchecked",
                answer.checksum
            ))
        })?;
    Ok(Some(Offer {
        version: answer.firmware_version,
        url,
        md5: md5.to_lowercase(),
    }))
}

/// Download the announced image, check the magic byte and the MD5. `None` when the download broke
/// (the next check starts over).
pub async fn install(dev: &mut Dev<'_>, o: Offer) -> Result<Option<Flashed>, DeviceError> {
    let sh = dev.sh;
    dev.phase = "downloading";
    let (r, _slot) = sh
        .http
        .send("legacy download", || get(sh, &o.url).send())
        .await?;
    // `httpCode == 200` only: the sketch follows no redirect and takes no 206.
    if r.status().as_u16() != 200 {
        return Err(status_error("legacy download", r).await);
    }
    let streamed = stock::stream_image(sh, r, dev.cut_pending).await?;
    let Some(img) = stock::whole(dev, streamed) else {
        return Ok(None);
    };
    stock::check_magic(&img.head)?;
    if img.md5 != o.md5 {
        return Err(DeviceError::Protocol(format!(
            "the image's MD5 {} is not the checksum {} (UPDATE_ERROR_MD5)",
            img.md5, o.md5
        )));
    }
    Ok(Some(Flashed {
        image: Image {
            version: o.version.unwrap_or_else(|| "unknown".into()),
            sha256: img.sha256,
            md5: img.md5,
            size: img.size,
        },
        project: None,
        update_id: None,
        announced: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_and_device_id_match_the_compat_doc() {
        // A worked example of the scheme (docs/protocols.md §4).
        assert_eq!(token("24:6F:28:AA:BB:CC", "bench-secret"), "fa4c71ab");
        assert_eq!(device_id("24:6F:28:AA:BB:CC"), "PanicAlarm_BBCC");
    }
}
