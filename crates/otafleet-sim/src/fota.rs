//! One virtual device running esp32FOTA (chrisjoyce911/esp32FOTA; docs/protocols.md
//! §3), built with `use_device_id`: it polls the manifest
//! `GET /ota/esp32fota.json?id=<ESP.getEfuseMac() as a decimal u64>` with the stock `HTTPClient`
//! (HTTP/1.1), takes the first entry whose `type` is its compiled-in firmware name (the project)
//! and whose version is strictly newer than its own (semver), GETs that entry's `url`, which must
//! be a `200` with a positive `Content-Length`, and flashes it. esp32FOTA checks nothing but the
//! size written (and a signature, when the sketch enables one: not simulated), so neither does
//! this device beyond `Update`'s magic byte. It "reboots" and polls the manifest again; the
//! server takes a poll after a complete download as the sign that the device runs the new image.
//!
//! esp32FOTA cannot resume: a cut download (injected, or by the server going away) is dropped and
//! the next poll starts over. It reports nothing about what it runs, so a failed boot is
//! invisible to the server (the device would just download the image again); the run never
//! injects one here (`Protocol::failed_boot_visible`). It installs only a strictly newer version,
//! so it never takes a rollback, however the server offers one.
//!
//! The server writes the end of a download after the fact (it counts bytes as they go out), so
//! the poll right after the reboot can come before it knows the download was complete; the real
//! device polls again at its interval, and so does this one ([`quiet_poll`]) until the run has
//! read the server's records. This module speaks the protocol ([`check`], [`install`]); the
//! device's life, outcomes and back-off are [`crate::life`]'s.

use std::cmp::Ordering as CmpOrdering;

use serde_json::Value;

use crate::device::DeviceSpec;
use crate::error::DeviceError;
use crate::http::status_error;
use crate::images::Image;
use crate::life::{Dev, Flashed};
use crate::run::Shared;
use crate::stock;

/// `ESP.getEfuseMac()`: the six MAC bytes read little-endian into a `uint64_t`.
pub fn efuse_id(mac: &str) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in mac.split(':').take(6).enumerate() {
        b[i] = u8::from_str_radix(x, 16).unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// esp32FOTA's `semver_parse_version` + `semver_compare`, for the versions it meets here:
/// `major.minor.patch[-pre]`, missing parts 0, an integer `N` as `N.0.0`, anything unparsable as
/// 0.0.0; a pre-release sorts before its release.
pub fn semver_cmp(a: &str, b: &str) -> CmpOrdering {
    fn parse(v: &str) -> ([u64; 3], Option<&str>) {
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (v, None),
        };
        let mut out = [0u64; 3];
        for (i, part) in core.split('.').take(3).enumerate() {
            match part.parse() {
                Ok(n) => out[i] = n,
                Err(_) => return ([0; 3], None),
            }
        }
        (out, pre)
    }
    let (an, ap) = parse(a);
    let (bn, bp) = parse(b);
    an.cmp(&bn).then(match (ap, bp) {
        (None, None) => CmpOrdering::Equal,
        (None, Some(_)) => CmpOrdering::Greater,
        (Some(_), None) => CmpOrdering::Less,
        (Some(x), Some(y)) => x.cmp(y),
    })
}

/// The entry the library would pick: the first of its type with a strictly newer version.
/// Returns (version, url).
pub fn pick(manifest: &Value, firmware_type: &str, running: &str) -> Option<(String, String)> {
    let entries: Vec<&Value> = match manifest {
        Value::Array(list) => list.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => return None,
    };
    entries.into_iter().find_map(|e| {
        if e["type"].as_str() != Some(firmware_type) {
            return None;
        }
        let version = match &e["version"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => format!("{n}.0.0"),
            _ => "0.0.0".into(),
        };
        let url = e["url"].as_str()?.to_string();
        (semver_cmp(&version, running) == CmpOrdering::Greater).then_some((version, url))
    })
}

fn manifest_url(sh: &Shared, spec: &DeviceSpec) -> String {
    sh.http
        .url(&format!("/ota/esp32fota.json?id={}", efuse_id(&spec.mac)))
}

/// The poll of an updated device at its next interval: it only tells the server the device is
/// still there (on the new image); there is nothing newer to take.
pub async fn quiet_poll(sh: &Shared, spec: &DeviceSpec) {
    let url = manifest_url(sh, spec);
    match sh
        .http
        .send("esp32fota manifest", || get(sh, &url).send())
        .await
    {
        Ok((r, _slot)) if r.status().is_success() => {
            let _ = r.bytes().await;
        }
        Ok((r, _slot)) => {
            tracing::warn!(mac = %spec.mac, status = %r.status(), "esp32fota poll refused")
        }
        Err(e) => tracing::warn!(mac = %spec.mac, error = %e, "esp32fota poll failed"),
    }
}

/// The stock `HTTPClient` GET esp32FOTA issues (manifest and firmware alike).
fn get(sh: &Shared, url: &str) -> reqwest::RequestBuilder {
    sh.http
        .client
        .get(url)
        .header("User-Agent", stock::HTTPCLIENT_UA)
        .header("Connection", "keep-alive")
        .header("Accept-Encoding", stock::HTTPCLIENT_ACCEPT_ENCODING)
}

/// The entry the library picked: a newer version of its firmware.
pub struct Offer {
    version: String,
    url: String,
}

impl Offer {
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// One poll of the manifest: the entry the library would install, if any.
pub async fn check(dev: &mut Dev<'_>) -> Result<Option<Offer>, DeviceError> {
    let sh = dev.sh;
    let manifest_url = manifest_url(sh, &dev.spec);
    let (r, slot) = sh
        .http
        .send("esp32fota manifest", || get(sh, &manifest_url).send())
        .await?;
    // The library accepts 200 (and, oddly, 301) for the manifest.
    if r.status().as_u16() != 200 {
        return Err(status_error("esp32fota manifest", r).await);
    }
    let manifest: Value = r.json().await.map_err(|e| DeviceError::Transport {
        what: "esp32fota manifest body",
        source: e,
    })?;
    drop(slot);
    dev.enrolled();
    Ok(
        pick(&manifest, &dev.spec.project, &dev.spec.running.version)
            .map(|(version, url)| Offer { version, url }),
    )
}

/// Download the entry's image (a `200` with a positive `Content-Length`) and check the magic
/// byte, all esp32FOTA checks. `None` when the download broke (the next poll starts over).
pub async fn install(dev: &mut Dev<'_>, o: Offer) -> Result<Option<Flashed>, DeviceError> {
    let sh = dev.sh;
    dev.phase = "downloading";
    let (r, _slot) = sh
        .http
        .send("esp32fota download", || get(sh, &o.url).send())
        .await?;
    if r.status().as_u16() != 200 {
        return Err(status_error("esp32fota download", r).await);
    }
    let streamed = stock::stream_image(sh, r, dev.cut_pending).await?;
    let Some(img) = stock::whole(dev, streamed) else {
        return Ok(None);
    };
    stock::check_magic(&img.head)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn efuse_id_is_the_mac_little_endian() {
        assert_eq!(
            efuse_id("24:0A:C4:A3:15:3C"),
            u64::from_le_bytes([0x24, 0x0A, 0xC4, 0xA3, 0x15, 0x3C, 0, 0])
        );
    }

    #[test]
    fn picks_the_first_newer_entry_of_its_type() {
        let m = json!([
            {"type": "other", "version": "9.0.0", "url": "http://x/other"},
            {"type": "blink", "version": "1.0.0", "url": "http://x/same"},
            {"type": "blink", "version": "1.1717000000.0", "url": "http://x/new"},
        ]);
        assert_eq!(
            pick(&m, "blink", "1.0.0"),
            Some(("1.1717000000.0".into(), "http://x/new".into()))
        );
        assert_eq!(pick(&m, "blink", "1.1717000000.0"), None);
        assert_eq!(
            pick(
                &json!({"type": "blink", "version": 2, "url": "u"}),
                "blink",
                "1.9.9"
            ),
            Some(("2.0.0".into(), "u".into()))
        );
        assert_eq!(semver_cmp("1.0.0-rc1", "1.0.0"), CmpOrdering::Less);
        assert_eq!(semver_cmp("junk", "0.0.0"), CmpOrdering::Equal);
    }
}
