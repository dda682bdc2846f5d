//! Devices, keyed by normalised MAC address. A device is created by its first check-in (any
//! protocol), by the admin, or by mDNS discovery; every check-in refreshes what it runs and where
//! it is. "Online" is derived, never stored: checked in within [`Settings::offline_after_s`], or
//! present on the LAN by mDNS (the rule is [`crate::discovered::online`]).

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::error::{CoreError, Result};
use crate::settings::Settings;
use crate::trust::{self, Refusal};
use crate::updates::{self, Update};
use crate::validate;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Device {
    /// Upper case, colon separated: `24:0A:C4:A3:15:3C`.
    pub mac: String,
    pub name: Option<String>,
    pub chip: Option<String>,
    pub project: Option<String>,
    /// The version the device last reported running.
    pub version: Option<String>,
    /// SHA-256 of the image the device last reported running.
    pub sha256: Option<String>,
    pub ip: Option<String>,
    pub rssi: Option<i64>,
    pub free_space: Option<i64>,
    pub uptime_s: Option<i64>,
    #[serde(skip)]
    pub token_hash: Option<String>,
    /// The protocol of the last check-in: `native`, `arduino`, `esp8266`, `esp32fota`, `legacy`.
    pub protocol: Option<String>,
    /// True when the device authenticates with the forgeable legacy shared-secret scheme.
    pub weak_auth: bool,
    /// How the device became known: `checkin`, `admin` or `mdns`.
    pub source: String,
    pub created_at: String,
    /// The latest sign of life on any channel: a check-in, or an mDNS announcement.
    pub last_seen: Option<String>,
    /// Why the device's last request for an update got nothing although it may need one (free
    /// space too small, filesystem image asked for, chip unknown); `None` once an image is offered.
    #[sqlx(default)]
    pub hold: Option<String>,
    /// mDNS host name (`esp32-kitchen.local`), when the device was discovered on the LAN.
    pub hostname: Option<String>,
    /// The mDNS service it was discovered by: `_arduino._tcp` or `_esphomelib._tcp`.
    pub mdns_service: Option<String>,
    pub mdns_instance: Option<String>,
    /// Port of that service (ArduinoOTA's UDP port, ESPHome's native API port), not an OTA URL.
    pub mdns_port: Option<i64>,
    /// The service's TXT record as an object (board, version, mac, platform, ...).
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub mdns_txt: Option<sqlx::types::Json<std::collections::BTreeMap<String, String>>>,
    /// When the service was last announced or resolved.
    pub mdns_seen: Option<String>,
    /// When the service left (goodbye or expiry); null while it is on the LAN.
    pub mdns_gone: Option<String>,
    /// Which protocol may claim and serve this device: `native`, `arduino`, `esp8266`,
    /// `esp32fota`, `legacy` or `any`; null until the first check-in claims it (the trust
    /// rules: docs/security.md).
    #[sqlx(default)]
    pub expect_protocol: Option<String>,
    /// Derived: see [`crate::discovered::online`].
    #[sqlx(skip)]
    pub online: bool,
    /// Whether the device holds a token (it enrolled through the native protocol).
    #[sqlx(skip)]
    pub enrolled: bool,
    /// The most recent update attempt, if any.
    #[sqlx(skip)]
    pub update: Option<Update>,
    /// Requests for this device the trust rules refused (the last one, and how many).
    #[sqlx(skip)]
    pub refused: Option<Refusal>,
}

/// Fields the admin may set when creating or editing a device.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    pub name: Option<String>,
    pub chip: Option<String>,
    pub project: Option<String>,
    /// Forget the device's token so that its next check-in enrols again (a re-flashed device).
    #[serde(default)]
    pub reset_token: bool,
    /// Which protocol may claim and serve it: `native`, `arduino`, `esp8266`, `esp32fota`,
    /// `legacy` or `any`.
    pub expect_protocol: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    pub mac: String,
    pub name: Option<String>,
    pub chip: Option<String>,
    pub project: Option<String>,
    /// Which protocol may claim it: `native`, `arduino`, `esp8266`, `esp32fota`, `legacy` or
    /// `any`. Unset: the first protocol that checks in claims it.
    pub expect_protocol: Option<String>,
}

impl Device {
    /// Fill the derived fields.
    pub(crate) fn finish(
        mut self,
        settings: &Settings,
        update: Option<Update>,
        refused: Option<Refusal>,
    ) -> Self {
        self.online = crate::discovered::online(
            settings,
            self.last_seen.as_deref(),
            self.mdns_seen.as_deref(),
            self.mdns_gone.as_deref(),
        );
        self.last_seen = crate::discovered::latest(self.last_seen.take(), self.mdns_seen.clone());
        self.enrolled = self.token_hash.is_some();
        self.update = update;
        self.refused = refused;
        self
    }
}

pub async fn get_raw(db: &SqlitePool, mac: &str) -> Result<Option<Device>> {
    Ok(sqlx::query_as("SELECT * FROM devices WHERE mac = ?")
        .bind(mac)
        .fetch_optional(db)
        .await?)
}

pub async fn get(db: &SqlitePool, settings: &Settings, mac: &str) -> Result<Device> {
    let mac = validate::mac(mac)?;
    let device = get_raw(db, &mac)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("device {mac}")))?;
    let update = updates::latest_for(db, &mac).await?;
    let refused = trust::refusal_for(db, &mac).await?;
    Ok(device.finish(settings, update, refused))
}

pub async fn list(db: &SqlitePool, settings: &Settings) -> Result<Vec<Device>> {
    let devices: Vec<Device> = sqlx::query_as("SELECT * FROM devices ORDER BY mac")
        .fetch_all(db)
        .await?;
    let mut latest = updates::latest_per_device(db).await?;
    let mut refused = trust::all_refusals(db).await?;
    Ok(devices
        .into_iter()
        .map(|d| {
            let u = latest.remove(&d.mac);
            let r = refused.remove(&d.mac);
            d.finish(settings, u, r)
        })
        .collect())
}

fn check_chip(chip: &str) -> Result<String> {
    let lower = chip.trim().to_ascii_lowercase();
    match otafleet_image::Chip::from_name(&lower) {
        Some(c) => Ok(c.name()),
        None => Err(CoreError::invalid(
            "invalid_chip",
            format!(
                "'{}' is not a chip otafleet knows; use esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c5, esp32c6, esp32c61, esp32h2, esp32p4 or esp8266",
                validate::printable(chip, 30)
            ),
        )),
    }
}

/// Validate and normalise a chip name reported by a device or the admin.
pub fn chip(chip: &str) -> Result<String> {
    check_chip(chip)
}

pub async fn create(db: &SqlitePool, settings: &Settings, new: NewDevice) -> Result<Device> {
    let mac = validate::mac(&new.mac)?;
    let name = new.name.as_deref().map(validate::name).transpose()?;
    let chip = new.chip.as_deref().map(check_chip).transpose()?;
    let project = new.project.as_deref().map(validate::project).transpose()?;
    let expect = new
        .expect_protocol
        .as_deref()
        .map(trust::expect_protocol)
        .transpose()?;
    let done = sqlx::query(
        "INSERT INTO devices (mac, name, chip, project, expect_protocol, source, created_at) \
         VALUES (?,?,?,?,?,'admin',?) ON CONFLICT (mac) DO NOTHING",
    )
    .bind(&mac)
    .bind(name)
    .bind(chip)
    .bind(project)
    .bind(expect)
    .bind(crate::time::now())
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(CoreError::conflict(format!("device {mac} already exists")));
    }
    get(db, settings, &mac).await
}

pub async fn patch(
    db: &SqlitePool,
    settings: &Settings,
    mac: &str,
    patch: DevicePatch,
) -> Result<Device> {
    let mac = validate::mac(mac)?;
    let name = patch.name.as_deref().map(validate::name).transpose()?;
    let chip = patch.chip.as_deref().map(check_chip).transpose()?;
    let project = patch
        .project
        .as_deref()
        .map(validate::project)
        .transpose()?;
    let expect = patch
        .expect_protocol
        .as_deref()
        .map(trust::expect_protocol)
        .transpose()?;
    let mut tx = crate::db::begin_write(db).await?;
    let exists: Option<String> = sqlx::query_scalar("SELECT mac FROM devices WHERE mac = ?")
        .bind(&mac)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(CoreError::not_found(format!("device {mac}")));
    }
    sqlx::query(
        "UPDATE devices SET name = COALESCE(?, name), chip = COALESCE(?, chip), \
         project = COALESCE(?, project), expect_protocol = COALESCE(?, expect_protocol), \
         token_hash = CASE WHEN ? THEN NULL ELSE token_hash END WHERE mac = ?",
    )
    .bind(name)
    .bind(chip)
    .bind(project)
    .bind(expect)
    .bind(patch.reset_token)
    .bind(&mac)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get(db, settings, &mac).await
}

pub async fn delete(db: &SqlitePool, mac: &str) -> Result<String> {
    let mac = validate::mac(mac)?;
    let done = sqlx::query("DELETE FROM devices WHERE mac = ?")
        .bind(&mac)
        .execute(db)
        .await?;
    sqlx::query("DELETE FROM deployment_devices WHERE mac = ?")
        .bind(&mac)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(CoreError::not_found(format!("device {mac}")));
    }
    Ok(mac)
}
