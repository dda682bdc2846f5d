//! The legacy "ESP32 OTA Update Server" model mapped onto ours (docs/protocols.md
//! §4; docs/seed1-compat.md §3 and §5). Its devices carry one assignment each (`target_version`,
//! `firmware_url`, `checksum`); here an assignment is a deployment naming the device, whose image
//! is found in the library by its MD5 (`checksum`) or file name (last part of `firmware_url`).
//!
//! Its device token is djb2 over the MAC (colons removed, upper case) followed by the shared
//! secret. The deployed firmware seeds the hash with 0 and prints unpadded hex; the README shows
//! seed 5381 and `%08X`. Both are accepted, case-insensitively ([`token_ok`]). The scheme is
//! forgeable from one sniffed request, which is why it is off unless a secret is configured and
//! why devices using it are marked `weak_auth`.

use crate::db::Db;

use crate::db;
use crate::deployments::NewDeployment;
use crate::devices::{Device, DevicePatch, NewDevice};
use crate::error::{CoreError, Result};
use crate::firmware::Firmware;
use crate::{updates, validate, Fleet};
use subtle::ConstantTimeEq;

fn djb2(seed: u32, s: &str) -> u32 {
    s.bytes()
        .fold(seed, |h, b| h.wrapping_mul(33).wrapping_add(u32::from(b)))
}

/// Does `presented` authenticate `mac` (as the device sent it) under `secret`?
pub fn token_ok(mac: &str, secret: &str, presented: &str) -> bool {
    let input = format!("{}{secret}", mac.replace(':', "").to_uppercase());
    let presented = presented.trim().to_ascii_uppercase();
    let deployed = format!("{:X}", djb2(0, &input));
    let documented = format!("{:08X}", djb2(5381, &input));
    // Digests of equal length compared in constant time: the time taken says nothing about how
    // much of the expected token (or its length) a guess got right.
    let p = digest(&presented);
    let a = bool::from(p.ct_eq(&digest(&deployed)));
    let b = bool::from(p.ct_eq(&digest(&documented)));
    a | b
}

fn digest(s: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).into()
}

const FW_SELECT: &str = "SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware";

/// The newest library image with this file name.
pub(crate) async fn by_filename(db: &Db, name: &str) -> Result<Option<Firmware>> {
    db::query_as(&format!(
        "{FW_SELECT} WHERE filename = ? ORDER BY id DESC LIMIT 1"
    ))
    .bind(name)
    .fetch_optional(db)
    .await
}

/// The image a device is deployed to run (its legacy "assignment"), if any.
pub(crate) async fn target(fleet: &Fleet, device: &Device) -> Result<Option<Firmware>> {
    let mut conn = fleet.db().acquire().await?;
    Ok(updates::target_for(&mut conn, device)
        .await?
        .map(|(_, fw)| fw))
}

/// What the legacy admin API sends to create or change a device.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    pub name: Option<String>,
    pub target_version: Option<String>,
    pub firmware_url: Option<String>,
    pub checksum: Option<String>,
}

async fn find_image(fleet: &Fleet, a: &Assignment) -> Result<Firmware> {
    let by_md5: Option<Firmware> = match a.checksum.as_deref() {
        Some(c) => {
            db::query_as(&format!(
                "{FW_SELECT} WHERE md5 = ? ORDER BY id DESC LIMIT 1"
            ))
            .bind(c.trim().to_ascii_lowercase())
            .fetch_optional(fleet.db())
            .await?
        }
        None => None,
    };
    let name = a
        .firmware_url
        .as_deref()
        .and_then(|u| u.split('?').next())
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty());
    let fw = match (by_md5, name) {
        (Some(fw), _) => Some(fw),
        (None, Some(n)) => by_filename(fleet.db(), n).await?,
        (None, None) => None,
    };
    let fw = fw.ok_or_else(|| {
        CoreError::invalid(
            "unknown_firmware",
            format!(
                "no image in the library has checksum '{}' or file name '{}'; upload it with POST /admin/api/firmware first",
                validate::printable(a.checksum.as_deref().unwrap_or(""), 40),
                validate::printable(name.unwrap_or(""), 60)
            ),
        )
    })?;
    if let Some(v) = a.target_version.as_deref() {
        if fw.version.as_deref() != Some(v.trim()) {
            return Err(CoreError::invalid(
                "version_mismatch",
                format!(
                    "target_version {} does not match the image {} (version {})",
                    validate::printable(v, 32),
                    fw.filename,
                    fw.version.as_deref().unwrap_or("unknown")
                ),
            ));
        }
    }
    Ok(fw)
}

/// Create (`create`) or re-target a device: it takes the image's chip and project, and a
/// deployment naming it makes the image its target.
pub(crate) async fn assign(
    fleet: &Fleet,
    mac: &str,
    a: Assignment,
    create: bool,
) -> Result<(Device, Firmware)> {
    let mac = validate::mac(mac)?;
    let retarget = a.checksum.is_some() || a.firmware_url.is_some() || a.target_version.is_some();
    let fw = if create || retarget {
        Some(find_image(fleet, &a).await?)
    } else {
        None
    };
    if create {
        fleet
            .device_create(NewDevice {
                mac: mac.clone(),
                name: a.name.clone(),
                notes: None,
                tags: None,
                chip: fw.as_ref().map(|f| f.chip.clone()),
                project: fw.as_ref().and_then(|f| f.project.clone()),
                // Made through the legacy admin API: a legacy device, which nothing else may claim.
                expect_protocol: Some("legacy".into()),
            })
            .await?;
    } else {
        fleet
            .device_patch(
                &mac,
                DevicePatch {
                    // The legacy admin API's `device_id` is the admin's name for the device.
                    name: a.name.clone().map(Some),
                    notes: None,
                    tags: None,
                    chip: fw.as_ref().map(|f| f.chip.clone()),
                    project: fw.as_ref().and_then(|f| f.project.clone()),
                    reset_token: false,
                    expect_protocol: None,
                },
            )
            .await?;
    }
    if let Some(fw) = &fw {
        fleet
            .deployment_create(NewDeployment {
                firmware_id: fw.id,
                devices: Some(vec![mac.clone()]),
                project: None,
                chip: None,
                ..NewDeployment::default()
            })
            .await?;
    }
    let device = fleet.device(&mac).await?;
    let target = match fw {
        Some(fw) => fw,
        None => target(fleet, &device)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("an image deployed to device {mac}")))?,
    };
    Ok((device, target))
}

#[cfg(test)]
mod tests {
    use super::token_ok;

    #[test]
    fn both_token_forms_from_the_compat_doc() {
        // The worked example of docs/seed1-compat.md §3: secret bench-secret, MAC 24:6F:28:AA:BB:CC.
        assert!(token_ok("24:6F:28:AA:BB:CC", "bench-secret", "fa4c71ab"));
        assert!(token_ok("24:6F:28:AA:BB:CC", "bench-secret", "FA4C71AB"));
        assert!(token_ok("24:6F:28:AA:BB:CC", "bench-secret", "559525B0"));
        assert!(!token_ok("24:6F:28:AA:BB:CC", "bench-secret", "0FA4C71AB"));
        assert!(!token_ok("24:6F:28:AA:BB:CD", "bench-secret", "fa4c71ab"));
        assert!(!token_ok("24:6F:28:AA:BB:CC", "other", "fa4c71ab"));
    }
}
