//! Devices, keyed by normalised MAC address. A device is created by its first check-in (any
//! protocol), by the admin, or by mDNS discovery; every check-in refreshes what it runs and where
//! it is. "Online" is derived, never stored: checked in within the offline threshold in effect ([`crate::settings::Timing`]), or
//! present on the LAN by mDNS (the rule is [`crate::discovered::online`]).
//!
//! What the admin says about a device is the admin's alone: its name (`admin_name`), notes and
//! tags are written only by [`create`] and [`patch`]. A native check-in that names the device
//! writes `reported_name`; the mDNS name is read from the stored announcement. The name shown is
//! the admin's, else the reported one, else the mDNS one ([`Device::finish`]).

use crate::db::{Backend, Conn, Db};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::{CoreError, Result};
use crate::trust::{self, Refusal};
use crate::updates::{self, Update};
use crate::validate;

/// Where the name shown for a device comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    /// Set by the admin (`admin_name`).
    Admin,
    /// Reported by the device at a native check-in (`reported_name`).
    Reported,
    /// Announced over mDNS (TXT `friendly_name`, else the service's instance name).
    Mdns,
}

/// How the server recognises requests for this device, derived from what it checks
/// (`crate::trust::judge` and the routes; docs/security.md). Never guessed from names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceAuth {
    /// It holds a native device token: only native requests carrying that token are answered;
    /// every stock-client route refuses its MAC.
    Token,
    /// An ESP Admin SDK device: its HTTPS requests carry its API key (`Api-Key`) and it logs in
    /// to MQTT with it; only the key's hash is stored, and every other route refuses its
    /// made-up MAC.
    ApiKey,
    /// Expected to speak the legacy "ESP32 OTA Update Server" protocol: its checks must carry
    /// the djb2 of its MAC and the shared secret (forgeable from one sniffed request).
    SharedSecret,
    /// A stock updater (Arduino `HTTPUpdate`, `ESP8266httpUpdate`, esp32FOTA, or any protocol):
    /// recognised by the MAC it sends and nothing else.
    Mac,
    /// Expected to speak the native protocol but holds no token (never enrolled, or its
    /// enrolment was reset): its next native check-in without a token enrols it and is handed
    /// one (trust on first use).
    PendingEnrolment,
    /// No protocol has claimed it yet (added by the admin, or only heard over mDNS): the first
    /// protocol that checks in claims it, as open enrolment allows.
    #[default]
    Unclaimed,
}

impl DeviceAuth {
    /// What the trust rules check for a device with this token state and expected protocol.
    pub fn of(enrolled: bool, expect_protocol: Option<&str>) -> Self {
        if enrolled {
            return if expect_protocol == Some(crate::fleet::ESP_ADMIN) {
                DeviceAuth::ApiKey
            } else {
                DeviceAuth::Token
            };
        }
        match expect_protocol {
            None => DeviceAuth::Unclaimed,
            Some("native") => DeviceAuth::PendingEnrolment,
            Some("legacy") => DeviceAuth::SharedSecret,
            // arduino, esp8266, esp32fota; `any` lets a stock client in with the MAC alone.
            Some(_) => DeviceAuth::Mac,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Device {
    /// Upper case, colon separated: `24:0A:C4:A3:15:3C`.
    pub mac: String,
    /// The name to show: `admin_name` if set, else `reported_name`, else the name the device
    /// announces over mDNS; `name_source` says which.
    #[sqlx(skip)]
    pub name: Option<String>,
    /// Where `name` comes from; null when there is none.
    #[sqlx(skip)]
    pub name_source: Option<NameSource>,
    /// The name the admin gave the device (`PATCH /api/v1/devices/{mac}`); no check-in or mDNS
    /// announcement ever changes it.
    pub admin_name: Option<String>,
    /// The name the device last reported at a native check-in (stock updaters report none).
    pub reported_name: Option<String>,
    /// The admin's free-form notes; null when empty.
    pub notes: Option<String>,
    /// The admin's short labels (bench, rack, owner, ...), in the order given.
    #[schema(value_type = Vec<String>)]
    pub tags: crate::db::Json<Vec<String>>,
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
    /// True once the device has checked in with the forgeable legacy shared-secret scheme.
    pub weak_auth: bool,
    /// Whether the device's last check-in (native or a stock updater's) came over TLS: `true`
    /// over HTTPS, `false` over plain HTTP, where its token and traffic can be read on the LAN.
    /// Null until it checks in (devices added by the admin or only heard over mDNS).
    #[sqlx(default)]
    pub tls: Option<bool>,
    /// How the device became known: `checkin`, `admin` or `mdns`.
    pub source: String,
    pub created_at: String,
    /// The latest sign of life on any channel: a check-in, or an mDNS announcement.
    pub last_seen: Option<String>,
    /// When its uptime last went back without otafleet having asked (a native device that
    /// restarted: a crash, for a rollout's health gate).
    pub last_reset_at: Option<String>,
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
    pub mdns_txt: Option<crate::db::Json<std::collections::BTreeMap<String, String>>>,
    /// When the service was last announced or resolved.
    pub mdns_seen: Option<String>,
    /// When the service left (goodbye or expiry); null while it is on the LAN.
    pub mdns_gone: Option<String>,
    /// Which protocol may claim and serve this device: `native`, `arduino`, `esp8266`,
    /// `esp32fota`, `legacy` or `any`; null until the first check-in claims it (the trust
    /// rules: docs/security.md).
    #[sqlx(default)]
    pub expect_protocol: Option<String>,
    /// For a device that runs the ESP Admin SDK: the id compiled into its firmware
    /// (`deviceId`), its MQTT client id and the `<id>` of its `device/<id>/…` topics; its MAC
    /// column is then an address otafleet made up (the SDK never reports one). Null otherwise.
    #[sqlx(default)]
    pub mqtt_id: Option<String>,
    /// Since when the device has been connected to the MQTT broker (its retained
    /// `report/status`, or its last will, says); null while it is not, and for devices that do
    /// not speak MQTT. A connected device is online.
    #[sqlx(default)]
    pub mqtt_connected_at: Option<String>,
    /// When its MQTT status last said disconnected (or the broker published its last will); it
    /// is offline from then until it connects again or makes an HTTP request.
    #[sqlx(default)]
    pub mqtt_gone_at: Option<String>,
    /// Derived: see [`crate::discovered::online`].
    #[sqlx(skip)]
    pub online: bool,
    /// Whether the device holds a token (it enrolled through the native protocol).
    #[sqlx(skip)]
    pub enrolled: bool,
    /// How the server recognises requests for it, from what the trust rules check.
    #[sqlx(skip)]
    pub auth: DeviceAuth,
    /// The most recent update attempt, if any.
    #[sqlx(skip)]
    pub update: Option<Update>,
    /// Requests for this device the trust rules refused (the last one, and how many).
    #[sqlx(skip)]
    pub refused: Option<Refusal>,
}

/// Fields the admin may change on a device; an absent field stays as it is.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    /// The admin's name for the device (at most 64 characters, no invisible or text-direction
    /// characters). `null` or `""` clears it: the device's reported name (else its mDNS name)
    /// shows again. Absent: unchanged. No check-in or announcement ever changes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Free-form notes (at most 4000 characters; line breaks and tabs allowed, other control,
    /// invisible or text-direction characters not). `null` or `""` clears them. Absent:
    /// unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// Replaces the tags (`[]` clears them): at most 16, each trimmed, 1 to 32 characters,
    /// without commas or invisible characters; repeats (ignoring case) are dropped. Absent or
    /// null: unchanged.
    pub tags: Option<Vec<String>>,
    pub chip: Option<String>,
    pub project: Option<String>,
    /// Forget the device's token so that its next check-in enrols again (a re-flashed device).
    #[serde(default)]
    pub reset_token: bool,
    /// Which protocol may claim and serve it: `native`, `arduino`, `esp8266`, `esp32fota`,
    /// `legacy` or `any`.
    pub expect_protocol: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    pub mac: String,
    /// The admin's name for it (see [`DevicePatch::name`]).
    pub name: Option<String>,
    /// Free-form notes (see [`DevicePatch::notes`]).
    pub notes: Option<String>,
    /// Short labels (see [`DevicePatch::tags`]).
    pub tags: Option<Vec<String>>,
    pub chip: Option<String>,
    pub project: Option<String>,
    /// Which protocol may claim it: `native`, `arduino`, `esp8266`, `esp32fota`, `legacy` or
    /// `any`. Unset: the first protocol that checks in claims it.
    pub expect_protocol: Option<String>,
}

/// A field that may be absent (outer `None`), `null` (`Some(None)`) or a value.
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl Device {
    /// The name to show and where it comes from: the admin's, else the reported one, else the
    /// one announced over mDNS.
    pub fn shown_name(&self) -> (Option<String>, Option<NameSource>) {
        if let Some(n) = &self.admin_name {
            return (Some(n.clone()), Some(NameSource::Admin));
        }
        if let Some(n) = &self.reported_name {
            return (Some(n.clone()), Some(NameSource::Reported));
        }
        let mdns = self.mdns_instance.as_deref().and_then(|instance| {
            let empty = std::collections::BTreeMap::new();
            let txt = self.mdns_txt.as_ref().map_or(&empty, |t| &t.0);
            crate::discovered::mdns_name(instance, txt)
        });
        match mdns {
            Some(n) => (Some(n), Some(NameSource::Mdns)),
            None => (None, None),
        }
    }

    /// Fill the derived fields.
    pub(crate) fn finish(
        mut self,
        offline_after_s: i64,
        update: Option<Update>,
        refused: Option<Refusal>,
    ) -> Self {
        self.online = crate::discovered::online(
            offline_after_s,
            self.last_seen.as_deref(),
            self.mdns_seen.as_deref(),
            self.mdns_gone.as_deref(),
        );
        self.online = mqtt_online(self.online, &self);
        self.last_seen = crate::discovered::latest(self.last_seen.take(), self.mdns_seen.clone());
        self.enrolled = self.token_hash.is_some();
        self.auth = DeviceAuth::of(self.enrolled, self.expect_protocol.as_deref());
        (self.name, self.name_source) = self.shown_name();
        self.update = update;
        self.refused = refused;
        self
    }
}

pub(crate) async fn get_raw(db: &Db, mac: &str) -> Result<Option<Device>> {
    db::query_as("SELECT * FROM devices WHERE mac = ?")
        .bind(mac)
        .fetch_optional(db)
        .await
}

pub(crate) async fn get(db: &Db, offline_after_s: i64, mac: &str) -> Result<Device> {
    let mac = validate::mac(mac)?;
    let device = get_raw(db, &mac)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("device {mac}")))?;
    let update = updates::latest_for(db, &mac).await?;
    let refused = trust::refusal_for(db, &mac).await?;
    Ok(device.finish(offline_after_s, update, refused))
}

/// Every device, by MAC, read a page at a time ([`page`]), so no statement reads more than
/// [`PAGE_MAX`] devices and their attempts.
pub(crate) async fn list(db: &Db, offline_after_s: i64) -> Result<Vec<Device>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = page(db, offline_after_s, after.as_deref(), PAGE_MAX).await?;
        all.extend(page.devices);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// Devices listed per page when the caller does not say (`GET /api/v1/devices?limit=`).
pub const PAGE_DEFAULT: usize = 1000;
/// The most devices one page may hold.
pub const PAGE_MAX: usize = 5000;

/// One page of the device list, in MAC order.
#[derive(Debug, Clone)]
pub struct DevicePage {
    pub devices: Vec<Device>,
    /// The cursor of the next page (the MAC of this page's last device), `None` on the last one.
    pub next: Option<String>,
}

/// The statement behind [`page`] (its query plan is tested): the devices after the cursor `?1`
/// (`''` for the first page) in MAC order, one more than `?2` asked for, to know whether there is
/// a next page. A range of the primary key: the cost is the page's, not the fleet's.
pub(crate) const PAGE: &str = "SELECT * FROM devices WHERE mac > ?1 ORDER BY mac LIMIT ?2";

/// Up to `limit` devices (1..=[`PAGE_MAX`]) whose MAC sorts after `after` (a normalised MAC, the
/// previous page's `next`), each with its latest attempt and its refusals, read for this page's
/// devices only. A cursor names a place, not a row: a device inserted or deleted meanwhile moves
/// no other device between pages, so every device that exists throughout is listed exactly once.
pub(crate) async fn page(
    db: &Db,
    offline_after_s: i64,
    after: Option<&str>,
    limit: usize,
) -> Result<DevicePage> {
    let limit = limit.clamp(1, PAGE_MAX);
    let after = after.unwrap_or("");
    let mut devices: Vec<Device> = db::query_as(PAGE)
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(db)
        .await?;
    let more = devices.len() > limit;
    devices.truncate(limit);
    let Some(through) = devices.last().map(|d| d.mac.clone()) else {
        return Ok(DevicePage {
            devices,
            next: None,
        });
    };
    let mut latest = updates::latest_per_device(db, after, &through).await?;
    let mut refused = trust::refusals_between(db, after, &through).await?;
    Ok(DevicePage {
        devices: devices
            .into_iter()
            .map(|d| {
                let u = latest.remove(&d.mac);
                let r = refused.remove(&d.mac);
                d.finish(offline_after_s, u, r)
            })
            .collect(),
        next: more.then_some(through),
    })
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

/// The admin's name: `None` (cleared) for an empty one.
fn admin_name(input: &str) -> Result<Option<String>> {
    Ok(Some(validate::name(input)?).filter(|n| !n.is_empty()))
}

pub(crate) async fn create(db: &Db, offline_after_s: i64, new: NewDevice) -> Result<Device> {
    let mac = validate::mac(&new.mac)?;
    let name = new.name.as_deref().map(admin_name).transpose()?.flatten();
    let notes = new
        .notes
        .as_deref()
        .map(validate::notes)
        .transpose()?
        .flatten();
    let tags = validate::tags(new.tags.as_deref().unwrap_or_default())?;
    let chip = new.chip.as_deref().map(check_chip).transpose()?;
    let project = new.project.as_deref().map(validate::project).transpose()?;
    let expect = new
        .expect_protocol
        .as_deref()
        .map(trust::expect_protocol)
        .transpose()?;
    let done = db::query(
        "INSERT INTO devices (mac, admin_name, notes, tags, chip, project, expect_protocol, source, created_at) \
         VALUES (?,?,?,?,?,?,?,'admin',?) ON CONFLICT (mac) DO NOTHING",
    )
    .bind(&mac)
    .bind(name)
    .bind(notes)
    .bind(crate::db::Json(tags))
    .bind(chip)
    .bind(project)
    .bind(expect)
    .bind(crate::time::now())
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(CoreError::conflict(format!("device {mac} already exists")));
    }
    get(db, offline_after_s, &mac).await
}

pub(crate) async fn patch(
    db: &Db,
    offline_after_s: i64,
    mac: &str,
    patch: DevicePatch,
) -> Result<Device> {
    let mac = validate::mac(mac)?;
    // Outer `Some`: change it (to the inner value, `None` clearing it).
    let name = match &patch.name {
        None => None,
        Some(None) => Some(None),
        Some(Some(n)) => Some(admin_name(n)?),
    };
    let notes = match &patch.notes {
        None => None,
        Some(None) => Some(None),
        Some(Some(n)) => Some(validate::notes(n)?),
    };
    let tags = patch.tags.as_deref().map(validate::tags).transpose()?;
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
    let exists: Option<(String, Option<String>)> =
        db::query_as("SELECT mac, mqtt_id FROM devices WHERE mac = ?")
            .bind(&mac)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((_, mqtt_id)) = exists else {
        return Err(CoreError::not_found(format!("device {mac}")));
    };
    if mqtt_id.is_some() && (patch.reset_token || expect.is_some()) {
        return Err(CoreError::Unavailable {
            code: "esp_admin_device",
            message: format!(
                "device {mac} runs the ESP Admin SDK: its API key is compiled into its firmware and cannot be reset, and its protocol is fixed; for a new key, forget the device and add it again"
            ),
        });
    }
    db::query(
        "UPDATE devices SET admin_name = CASE WHEN ? THEN ? ELSE admin_name END, \
         notes = CASE WHEN ? THEN ? ELSE notes END, tags = COALESCE(?, tags), \
         chip = COALESCE(?, chip), \
         project = COALESCE(?, project), expect_protocol = COALESCE(?, expect_protocol), \
         token_hash = CASE WHEN ? THEN NULL ELSE token_hash END WHERE mac = ?",
    )
    .bind(name.is_some())
    .bind(name.flatten())
    .bind(notes.is_some())
    .bind(notes.flatten())
    .bind(tags.map(crate::db::Json))
    .bind(chip)
    .bind(project)
    .bind(expect)
    .bind(patch.reset_token)
    .bind(&mac)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get(db, offline_after_s, &mac).await
}

pub(crate) async fn delete(db: &Db, mac: &str) -> Result<String> {
    let mac = validate::mac(mac)?;
    let done = db::query("DELETE FROM devices WHERE mac = ?")
        .bind(&mac)
        .execute(db)
        .await?;
    db::query("DELETE FROM deployment_devices WHERE mac = ?")
        .bind(&mac)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(CoreError::not_found(format!("device {mac}")));
    }
    Ok(mac)
}

// --- The device rows as the other modules change them. This module alone holds the `devices`
// table's SQL; each function below runs on the caller's connection, inside its transaction.

/// One device by (normalised) MAC.
pub(crate) async fn find(conn: &mut Conn, mac: &str) -> Result<Option<Device>> {
    db::query_as("SELECT * FROM devices WHERE mac = ?")
        .bind(mac)
        .fetch_optional(conn)
        .await
}

/// One device that must exist.
pub(crate) async fn load(conn: &mut Conn, mac: &str) -> Result<Device> {
    find(conn, mac)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("device {mac}")))
}

/// Just the chip of a device: `None` for an unknown MAC, `Some(None)` for an unknown chip.
pub(crate) async fn chip_of(conn: &mut Conn, mac: &str) -> Result<Option<Option<String>>> {
    db::query_scalar("SELECT chip FROM devices WHERE mac = ?")
        .bind(mac)
        .fetch_optional(conn)
        .await
}

/// What a native check-in reports (docs/protocols.md §1), validated.
pub(crate) struct NativeReport<'a> {
    pub mac: &'a str,
    pub name: Option<&'a str>,
    pub chip: &'a str,
    pub project: &'a str,
    pub version: &'a str,
    pub sha256: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub rssi: Option<i64>,
    pub free_space: Option<i64>,
    pub uptime_s: Option<i64>,
    /// Set on enrolment: the hash of the token just issued.
    pub token_hash: Option<String>,
    /// The check-in came over TLS.
    pub tls: bool,
    /// Memory saw its uptime go back ([`crate::hot::Hot::restarted`]).
    pub restarted: bool,
    pub now: &'a str,
}

/// Record a native check-in: create the device or refresh everything it reports. A name it
/// reports is its `reported_name`; the admin's name, notes and tags are never touched. An
/// uptime below the stored one, or a restart memory saw (`restarted`), stamps `last_reset_at`.
pub(crate) async fn record_native(conn: &mut Conn, r: &NativeReport<'_>) -> Result<()> {
    db::query(
        "INSERT INTO devices (mac, reported_name, chip, project, version, sha256, ip, rssi, free_space, uptime_s, \
           token_hash, protocol, expect_protocol, source, created_at, last_seen, tls) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,'native','native','checkin',?12,?12,?13) \
         ON CONFLICT (mac) DO UPDATE SET reported_name = COALESCE(?2, devices.reported_name), chip = ?3, \
           project = ?4, version = ?5, sha256 = ?6, ip = ?7, rssi = ?8, free_space = ?9, uptime_s = ?10, \
           token_hash = COALESCE(?11, devices.token_hash), protocol = 'native', \
           expect_protocol = COALESCE(devices.expect_protocol, 'native'), last_seen = ?12, tls = ?13, \
           last_reset_at = CASE WHEN ?14 OR (?10 IS NOT NULL AND devices.uptime_s IS NOT NULL \
               AND ?10 < devices.uptime_s) \
             THEN ?12 ELSE devices.last_reset_at END",
    )
    .bind(r.mac)
    .bind(r.name)
    .bind(r.chip)
    .bind(r.project)
    .bind(r.version)
    .bind(r.sha256)
    .bind(r.ip)
    .bind(r.rssi)
    .bind(r.free_space)
    .bind(r.uptime_s)
    .bind(&r.token_hash)
    .bind(r.now)
    .bind(r.tls)
    .bind(r.restarted)
    .execute(conn)
    .await?;
    Ok(())
}

/// A native device restarted when its uptime is below the one it reported last, or (seen in memory,
/// on the monotonic clock: [`crate::hot`]) more than this many seconds below what it would be had
/// it kept running since then (clocks and whole-second uptimes differ a little):
/// `devices.last_reset_at`, the rollouts' crash signal. The wall clock is never used for it, so a
/// step of the server's clock is not a restart of every device.
pub const RESET_SLACK_S: i64 = 3;

/// What a stock updater's check says about the device (docs/protocols.md §2–4); each `None`
/// keeps what is known.
pub(crate) struct FieldReport<'a> {
    pub mac: &'a str,
    pub chip: Option<&'a str>,
    pub project: Option<&'a str>,
    pub version: Option<&'a str>,
    pub sha256: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub free_space: Option<i64>,
    pub protocol: &'a str,
    pub weak_auth: bool,
    /// The check came over TLS.
    pub tls: bool,
    pub now: &'a str,
}

/// Record a stock updater's check: create the device or refresh what the check said.
pub(crate) async fn record_field(conn: &mut Conn, r: &FieldReport<'_>) -> Result<()> {
    db::query(
        "INSERT INTO devices (mac, chip, project, version, sha256, ip, free_space, protocol, weak_auth, \
           expect_protocol, source, created_at, last_seen, tls) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?8,'checkin',?10,?10,?11) \
         ON CONFLICT (mac) DO UPDATE SET chip = COALESCE(?2, devices.chip), \
           project = COALESCE(?3, devices.project), version = COALESCE(?4, devices.version), \
           sha256 = COALESCE(?5, devices.sha256), ip = COALESCE(?6, devices.ip), \
           free_space = COALESCE(?7, devices.free_space), protocol = ?8, \
           weak_auth = (devices.weak_auth OR ?9), \
           expect_protocol = COALESCE(devices.expect_protocol, ?8), last_seen = ?10, tls = ?11",
    )
    .bind(r.mac)
    .bind(r.chip)
    .bind(r.project)
    .bind(r.version)
    .bind(r.sha256)
    .bind(r.ip)
    .bind(r.free_space)
    .bind(r.protocol)
    .bind(r.weak_auth)
    .bind(r.now)
    .bind(r.tls)
    .execute(conn)
    .await?;
    Ok(())
}

/// The device runs this image now (inferred: esp32FOTA reports nothing).
pub(crate) async fn set_running(
    conn: &mut Conn,
    mac: &str,
    sha256: &str,
    version: Option<&str>,
) -> Result<()> {
    db::query("UPDATE devices SET sha256 = ?, version = COALESCE(?, version) WHERE mac = ?")
        .bind(sha256)
        .bind(version)
        .bind(mac)
        .execute(conn)
        .await?;
    Ok(())
}

/// What the device runs is again what it ran before an attempt that turned out not installed
/// (`sha256`/`version` as that attempt recorded them, null where it did not know).
pub(crate) async fn restore_running(
    conn: &mut Conn,
    mac: &str,
    sha256: Option<&str>,
    version: Option<&str>,
) -> Result<()> {
    db::query("UPDATE devices SET sha256 = ?, version = ? WHERE mac = ?")
        .bind(sha256)
        .bind(version)
        .bind(mac)
        .execute(conn)
        .await?;
    Ok(())
}

/// Why the device's last request got nothing although it may need an image (`None` clears it).
pub(crate) async fn set_hold(conn: &mut Conn, mac: &str, hold: Option<&str>) -> Result<()> {
    db::query("UPDATE devices SET hold = ? WHERE mac = ?")
        .bind(hold)
        .bind(mac)
        .execute(conn)
        .await?;
    Ok(())
}

/// A device of unknown chip fetched an image by itself: it is of that image's chip (and, if it
/// had none, project).
pub(crate) async fn adopt_image(
    conn: &mut Conn,
    mac: &str,
    chip: &str,
    project: Option<&str>,
) -> Result<()> {
    db::query("UPDATE devices SET chip = ?, project = COALESCE(project, ?) WHERE mac = ?")
        .bind(chip)
        .bind(project)
        .bind(mac)
        .execute(conn)
        .await?;
    Ok(())
}

/// The device's project follows the image it was seen running (by its SHA-256).
pub(crate) async fn follow_image_project(conn: &mut Conn, mac: &str, sha256: &str) -> Result<()> {
    db::query(
        "UPDATE devices SET project = COALESCE((SELECT project FROM firmware WHERE sha256 = ?), project) \
         WHERE mac = ?",
    )
    .bind(sha256)
    .bind(mac)
    .execute(conn)
    .await?;
    Ok(())
}

/// The admin corrected the project and/or version of an image: devices of stock updaters that
/// run it (by any of its hashes: whole-file SHA-256, appended SHA-256, MD5) take them, since
/// their project and version are the image's. Native devices report their own and keep them.
/// Returns the MACs of the devices changed.
pub(crate) async fn follow_image_identity(
    conn: &mut Conn,
    image: &crate::firmware::Firmware,
    project: Option<&str>,
    version: Option<&str>,
) -> Result<Vec<String>> {
    if project.is_none() && version.is_none() {
        return Ok(Vec::new());
    }
    db::query_scalar(
        "UPDATE devices SET project = COALESCE(?4, project), version = COALESCE(?5, version) \
         WHERE protocol IS DISTINCT FROM 'native' AND sha256 IN (?1, ?2, ?3) RETURNING mac",
    )
    .bind(&image.sha256)
    .bind(&image.appended_sha256)
    .bind(&image.md5)
    .bind(project)
    .bind(version)
    .fetch_all(conn)
    .await
}

/// A sign of life that changes nothing else (a progress report).
pub(crate) async fn touch(conn: &mut Conn, mac: &str, now: &str) -> Result<()> {
    db::query("UPDATE devices SET last_seen = ? WHERE mac = ?")
        .bind(now)
        .bind(mac)
        .execute(conn)
        .await?;
    Ok(())
}

/// The statement behind [`mac_by_token`] (its query plan is tested). An ESP Admin device's API
/// key is stored in `token_hash` too, but it is no native device token: the native routes that
/// find their device by token never find one.
pub(crate) const TOKEN_LOOKUP: &str =
    "SELECT mac FROM devices WHERE token_hash = ? AND expect_protocol IS DISTINCT FROM 'esp-admin'";

/// The device a native token belongs to, by the token's SHA-256 hex (through the
/// `devices_token_hash` index, so it costs the same at any fleet size).
pub(crate) async fn mac_by_token(db: &Db, token_hash: &str) -> Result<Option<String>> {
    db::query_scalar(TOKEN_LOOKUP)
        .bind(token_hash)
        .fetch_optional(db)
        .await
}

/// An ESP Admin device asked for its settings (its sign of life): when and from where, over
/// which transport. Nothing it could claim about itself is written (it reports nothing).
pub(crate) async fn record_esp_admin(
    conn: &mut Conn,
    mac: &str,
    ip: Option<&str>,
    tls: bool,
    now: &str,
) -> Result<()> {
    db::query(
        "UPDATE devices SET last_seen = ?, ip = COALESCE(?, ip), tls = ?, protocol = 'esp-admin' \
         WHERE mac = ?",
    )
    .bind(now)
    .bind(ip)
    .bind(tls)
    .bind(mac)
    .execute(conn)
    .await?;
    Ok(())
}

/// Does device `mac` still hold the token of this hash?
pub(crate) async fn holds_token(conn: &mut Conn, mac: &str, token_hash: &str) -> Result<bool> {
    let found: Option<i64> =
        db::query_scalar("SELECT CAST(1 AS BIGINT) FROM devices WHERE mac = ? AND token_hash = ?")
            .bind(mac)
            .bind(token_hash)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Write queued heartbeats (`[{m, t, r, u}]` as JSON: MAC, last seen, RSSI, uptime) in one
/// statement. A row the database path wrote later than the beat keeps its values: `last_seen` is
/// fixed-width UTC text, so text order is time order.
pub(crate) async fn write_heartbeats(conn: &mut Conn, beats_json: String) -> Result<()> {
    let sql = match conn.backend() {
        Backend::Sqlite => {
            "UPDATE devices SET last_seen = b.value ->> '$.t', \
               rssi = CASE WHEN b.value ->> '$.k' THEN devices.rssi ELSE b.value ->> '$.r' END, \
               uptime_s = CASE WHEN b.value ->> '$.k' THEN devices.uptime_s ELSE b.value ->> '$.u' END \
             FROM json_each(?1) AS b \
             WHERE devices.mac = b.value ->> '$.m' \
               AND (devices.last_seen IS NULL OR devices.last_seen < b.value ->> '$.t')"
        }
        Backend::Postgres => {
            "UPDATE devices SET last_seen = b.t, \
               rssi = CASE WHEN b.k THEN devices.rssi ELSE b.r END, \
               uptime_s = CASE WHEN b.k THEN devices.uptime_s ELSE b.u END \
             FROM jsonb_to_recordset(CAST($1 AS jsonb)) AS b(m text, t text, r bigint, u bigint, k boolean) \
             WHERE devices.mac = b.m AND (devices.last_seen IS NULL OR devices.last_seen < b.t)"
        }
    };
    db::query(sql).bind(beats_json).execute(conn).await?;
    Ok(())
}

/// An mDNS service that named its MAC was resolved: create the device or refresh its mDNS facts
/// (never what it reported at check-in, never a name: the mDNS name is read from the stored
/// announcement), and mark it present.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn mdns_seen(
    conn: &mut Conn,
    mac: &str,
    ip: Option<&str>,
    hostname: &str,
    service: &str,
    instance: &str,
    port: i64,
    txt: &crate::db::Json<std::collections::BTreeMap<String, String>>,
    now: &str,
) -> Result<()> {
    db::query(
        "INSERT INTO devices (mac, ip, source, created_at, hostname, mdns_service, \
           mdns_instance, mdns_port, mdns_txt, mdns_seen, mdns_gone) \
         VALUES (?1, ?2, 'mdns', ?3, ?4, ?5, ?6, ?7, ?8, ?3, NULL) \
         ON CONFLICT (mac) DO UPDATE SET \
           ip = COALESCE(excluded.ip, devices.ip), hostname = excluded.hostname, \
           mdns_service = excluded.mdns_service, mdns_instance = excluded.mdns_instance, \
           mdns_port = excluded.mdns_port, mdns_txt = excluded.mdns_txt, \
           mdns_seen = excluded.mdns_seen, mdns_gone = NULL",
    )
    .bind(mac)
    .bind(ip)
    .bind(now)
    .bind(hostname)
    .bind(service)
    .bind(instance)
    .bind(port)
    .bind(txt)
    .execute(conn)
    .await?;
    Ok(())
}

/// The device's mDNS service left the LAN.
pub(crate) async fn mdns_gone(conn: &mut Conn, mac: &str, now: &str) -> Result<()> {
    db::query("UPDATE devices SET mdns_gone = ? WHERE mac = ? AND mdns_gone IS NULL")
        .bind(now)
        .bind(mac)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every device present by mDNS counts as gone since its last sighting (server start).
pub(crate) async fn mdns_forget_presence(conn: &mut Conn) -> Result<()> {
    db::query(
        "UPDATE devices SET mdns_gone = mdns_seen WHERE mdns_seen IS NOT NULL AND mdns_gone IS NULL",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Every device present by mDNS was seen now.
pub(crate) async fn mdns_touch_present(conn: &mut Conn, now: &str) -> Result<()> {
    db::query("UPDATE devices SET mdns_seen = ? WHERE mdns_seen IS NOT NULL AND mdns_gone IS NULL")
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The devices deployment `deployment_id` covers (`covers`: its coverage rule over `d`), each
/// with the deployment that targets it now (`target`: the same rule over `t`). An esp32FOTA
/// device that never said its project is listed under a project-wide deployment. `only`: just
/// these of them (a rollout's step weighs only its undecided members).
pub(crate) async fn covered_by(
    conn: &mut Conn,
    deployment_id: i64,
    explicit: bool,
    covers: &str,
    target: &str,
    only: Option<&[String]>,
) -> Result<Vec<(Device, Option<i64>)>> {
    // A deployment with a device list covers exactly those devices: read them through the list
    // (its primary key) instead of weighing every device of the fleet, which made settling the
    // legacy API's one-device deployments cost O(fleet) each.
    let only_sql = conn.backend().text_elements("?2", "o");
    let only_from = only_sql.as_str();
    let sql = if explicit {
        format!(
            "SELECT dev.*, (SELECT t.id FROM deployments t WHERE t.status != 'stopped' AND {target} \
                 ORDER BY t.id DESC LIMIT 1) AS target \
             FROM deployment_devices dd JOIN devices dev ON dev.mac = dd.mac \
             WHERE dd.deployment_id = ?1 \
             AND (?2 IS NULL OR dev.mac IN (SELECT value FROM {only_from})) \
             ORDER BY dev.mac"
        )
    } else {
        format!(
            "SELECT dev.*, (SELECT t.id FROM deployments t WHERE t.status != 'stopped' AND {target} \
                 ORDER BY t.id DESC LIMIT 1) AS target \
             FROM devices dev JOIN deployments d ON d.id = ?1 \
             WHERE ({covers} OR (d.project IS NOT NULL AND dev.protocol = 'esp32fota' AND dev.project IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM deployment_devices dd WHERE dd.deployment_id = d.id))) \
             AND (?2 IS NULL OR dev.mac IN (SELECT value FROM {only_from})) \
             ORDER BY dev.mac"
        )
    };
    #[derive(sqlx::FromRow)]
    struct Covered {
        #[sqlx(flatten)]
        device: Device,
        target: Option<i64>,
    }
    let rows: Vec<Covered> = db::query_as(&sql)
        .bind(deployment_id)
        .bind(only.map(crate::db::Json))
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.device, r.target)).collect())
}

#[cfg(test)]
mod tests;

/// What the admin gives to add a device that runs the ESP Admin SDK ([`crate::Fleet::esp_admin_create`]).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct NewEspAdminDevice {
    /// The admin's name for it (see [`DevicePatch::name`]).
    pub name: Option<String>,
    /// Free-form notes.
    pub notes: Option<String>,
    /// Short labels.
    pub tags: Option<Vec<String>>,
    pub project: Option<String>,
}

/// Insert an ESP Admin device under the made-up `mac`, with its `mqtt_id` and the hash of its API
/// key; `Ok(None)` when the MAC or the id is already taken (the caller draws again).
pub(crate) async fn create_esp_admin(
    db: &Db,
    offline_after_s: i64,
    new: &NewEspAdminDevice,
    mac: &str,
    mqtt_id: &str,
    key_hash: &str,
) -> Result<Option<Device>> {
    let name = new.name.as_deref().map(admin_name).transpose()?.flatten();
    let notes = new
        .notes
        .as_deref()
        .map(validate::notes)
        .transpose()?
        .flatten();
    let tags = validate::tags(new.tags.as_deref().unwrap_or_default())?;
    let project = new.project.as_deref().map(validate::project).transpose()?;
    let done = db::query(
        "INSERT INTO devices (mac, admin_name, notes, tags, project, expect_protocol, token_hash, mqtt_id, source, created_at) \
         VALUES (?,?,?,?,?,'esp-admin',?,?,'admin',?) ON CONFLICT DO NOTHING",
    )
    .bind(mac)
    .bind(name)
    .bind(notes)
    .bind(crate::db::Json(tags))
    .bind(project)
    .bind(key_hash)
    .bind(mqtt_id)
    .bind(crate::time::now())
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    get(db, offline_after_s, mac).await.map(Some)
}

/// A device's `online` once its MQTT presence is counted: connected is online; having left
/// MQTT after its last HTTP request is offline; otherwise `by_others` (check-ins, mDNS).
pub(crate) fn mqtt_online(by_others: bool, d: &Device) -> bool {
    if d.mqtt_connected_at.is_some() {
        return true;
    }
    match (&d.mqtt_gone_at, &d.last_seen) {
        (Some(gone), Some(seen)) if gone >= seen => false,
        (Some(_), None) => false,
        _ => by_others,
    }
}

/// Record what a device's MQTT `report/status` says: connected (since `now`, and seen now) or
/// not. Returns whether the device's row changed; `None` when no device has that id.
pub(crate) async fn mqtt_presence(
    conn: &mut Conn,
    mqtt_id: &str,
    connected: bool,
    now: &str,
) -> Result<Option<(String, bool)>> {
    let row: Option<(String, Option<String>)> =
        db::query_as("SELECT mac, mqtt_connected_at FROM devices WHERE mqtt_id = ?")
            .bind(mqtt_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((mac, was)) = row else {
        return Ok(None);
    };
    if connected {
        db::query(
            "UPDATE devices SET mqtt_connected_at = COALESCE(mqtt_connected_at, ?1), \
             mqtt_gone_at = NULL, last_seen = ?1 WHERE mac = ?2",
        )
        .bind(now)
        .bind(&mac)
        .execute(&mut *conn)
        .await?;
        Ok(Some((mac, true)))
    } else {
        db::query("UPDATE devices SET mqtt_connected_at = NULL, mqtt_gone_at = ? WHERE mac = ?")
            .bind(now)
            .bind(&mac)
            .execute(&mut *conn)
            .await?;
        Ok(Some((mac, was.is_some())))
    }
}

/// Forget every device's MQTT presence (otafleet's own client has just (re)connected to the
/// broker: the retained statuses it is about to receive are the truth). Returns the MACs whose
/// row changed.
pub(crate) async fn mqtt_presence_reset(conn: &mut Conn) -> Result<Vec<String>> {
    db::query_scalar(
        "UPDATE devices SET mqtt_connected_at = NULL, mqtt_gone_at = ? \
         WHERE mqtt_connected_at IS NOT NULL RETURNING mac",
    )
    .bind(crate::time::now())
    .fetch_all(conn)
    .await
}

/// Every ESP Admin device: (id, MAC), by id.
pub(crate) async fn mqtt_devices(db: &Db) -> Result<Vec<(String, String)>> {
    db::query_as("SELECT mqtt_id, mac FROM devices WHERE mqtt_id IS NOT NULL ORDER BY mqtt_id")
        .fetch_all(db)
        .await
}

/// The MAC of the device an ESP Admin id names (one indexed lookup: every MQTT message asks it).
pub(crate) async fn mac_by_mqtt_id(db: &Db, mqtt_id: &str) -> Result<Option<String>> {
    db::query_scalar("SELECT mac FROM devices WHERE mqtt_id = ?")
        .bind(mqtt_id)
        .fetch_optional(db)
        .await
}

/// The device an ESP Admin id names, as stored (no derived fields).
pub(crate) async fn by_mqtt_id(db: &Db, mqtt_id: &str) -> Result<Option<Device>> {
    db::query_as("SELECT * FROM devices WHERE mqtt_id = ?")
        .bind(mqtt_id)
        .fetch_optional(db)
        .await
}
