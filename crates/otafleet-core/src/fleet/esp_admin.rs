//! [`Fleet`] methods for devices that run the ESP Admin SDK (issue 16; docs/esp-admin.md): the
//! identity the admin creates for one — an id and an API key compiled into its `credentials.h` —
//! and the one check every ESP Admin request and MQTT connection of it passes.
//!
//! The API key is a device token: shown once, stored as its SHA-256 in `devices.token_hash`.
//! The SDK never reports a MAC, so the device row is keyed by a locally administered address
//! otafleet draws (`02:…`, never a real vendor's); the id in its HTTP paths and MQTT topics is
//! `devices.mqtt_id`.

use hmac::{Hmac, Mac};
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::checkin::hash_token;
use crate::devices::{self, Device, NewEspAdminDevice};
use crate::error::{CoreError, Result};
use crate::events::Event;
use crate::firmware::Firmware;
use crate::reports::{Report, ReportRequest};
use crate::updates::{self, Decision, Update, UpdateFailure, UpdateState, Why};
use crate::{db, trust, Fleet};

/// The protocol name ESP Admin devices are recorded under (`expect_protocol`, refusals).
pub const ESP_ADMIN: &str = "esp-admin";

/// A new ESP Admin device and the two secrets its firmware needs; the key is never shown again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EspAdminCreated {
    pub device: Device,
    /// `deviceId` of its `credentials.h`: 24 lower-case hex digits, like the ids ESP Admin uses.
    pub id: String,
    /// `apiKey` of its `credentials.h`: 30 letters and digits, as ESP Admin makes them. Only its
    /// hash is stored: lose it and the device needs a new key.
    pub api_key: String,
}

/// Whether `id` has the shape of an id otafleet gives (checked before any lookup, so a path
/// full of junk is refused without touching the database).
pub fn valid_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What `command/update_trigger` carries to an ESP Admin device (published by the MQTT side):
/// the image as ESP Admin calls a release, and where to fetch it. The device fetches
/// `https://<httpHost><downloadPath>` on port 443 and sends no API key, so the path itself is the
/// credential: bound to one attempt of one device, unguessable, and dead once the attempt ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EspAdminTrigger {
    /// The image's id in otafleet's library, as text (the SDK compares it with the release it
    /// installed last and ignores a trigger for that one).
    pub release_id: String,
    /// The image's version ("" when it has none).
    pub version: String,
    /// `/api/device/<id>/ota/<update id>/<secret>.bin`.
    pub download_path: String,
    /// The image's size in bytes (the SDK's progress is a share of it).
    pub download_size: i64,
    /// The attempt it starts (otafleet's own; not sent).
    #[serde(skip)]
    pub update_id: i64,
}

/// The body of `POST /api/device/<id>/report/update`, as the SDK sends it: `{releaseId, status:
/// "started"}` at the start, `{deploymentId, status: "succeded" | "failed"}` at the end (the
/// SDK's spelling).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EspAdminUpdateReport {
    /// `started`, `succeded` (sic, as on the wire) or `failed`.
    pub status: String,
    /// With `started`: the image id of the trigger.
    #[serde(default)]
    pub release_id: Option<String>,
    /// With `succeded` / `failed`: the id the `started` answer gave.
    #[serde(default)]
    pub deployment_id: Option<String>,
}

/// The body of `POST /api/device/<id>/report/custom`: `{type: info|warn|error|success, subject,
/// body}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct EspAdminCustomReport {
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    #[serde(default)]
    pub body: String,
}

/// What an update report did: the attempt's id and row after the report.
#[derive(Debug, Clone)]
pub enum EspAdminReported {
    /// `started`: the attempt's id is the SDK's `deploymentId`.
    Started(Update),
    /// `succeded` or `failed`.
    Finished(Update),
}

/// The secret part of an attempt's download path: HMAC-SHA256 over the device id and the attempt
/// id, with the key kept in the database, cut to 128 bits (32 hex digits).
fn download_secret(key: &[u8; 32], id: &str, update_id: i64) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"otafleet esp-admin ota\0");
    mac.update(id.as_bytes());
    mac.update(b"\0");
    mac.update(&update_id.to_le_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

fn no_download() -> CoreError {
    CoreError::not_found("download: this path names no open update of an ESP Admin device")
}

fn unauthorized(message: impl Into<String>) -> CoreError {
    CoreError::Unauthorized {
        code: "bad_api_key",
        message: message.into(),
    }
}

impl Fleet {
    /// Create an ESP Admin device (admin): a fresh id, a fresh API key and a made-up MAC.
    /// 422 for a bad name, notes, tags or project (nothing stored).
    pub async fn esp_admin_create(&self, new: NewEspAdminDevice) -> Result<EspAdminCreated> {
        // Their MQTT broker logs devices in against the default organisation's database.
        self.only_default_may("add ESP Admin (MQTT) devices")?;
        let api_key = Alphanumeric.sample_string(&mut rand::thread_rng(), 30);
        let key_hash = hash_token(&api_key);
        let created = {
            let _w = self.write_lock().await;
            let mut made = None;
            // A collision of 96 random bits (id) or 40 (MAC) is not expected; draw again anyway.
            for _ in 0..8 {
                let id = hex::encode(rand::random::<[u8; 12]>());
                let mut mac = rand::thread_rng().gen::<[u8; 6]>();
                mac[0] = 0x02; // locally administered, unicast
                let mac = mac
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":");
                let offline = self.timing().offline_after_s();
                if let Some(d) =
                    devices::create_esp_admin(self.db(), offline, &new, &mac, &id, &key_hash)
                        .await?
                {
                    made = Some((d, id));
                    break;
                }
            }
            made.ok_or_else(|| CoreError::conflict("could not draw a free device id; try again"))?
        };
        let (device, id) = created;
        tracing::info!(mac = %device.mac, id = %id, "ESP Admin device created");
        self.events().publish(Event::Device {
            device: Box::new(device.clone()),
        });
        Ok(EspAdminCreated {
            device,
            id,
            api_key,
        })
    }

    /// The device an ESP Admin request or MQTT connection speaks for, if `key` is its API key.
    /// 401 `bad_api_key` otherwise — the same answer for an unknown id and a wrong key, so the
    /// answer does not tell which ids exist; a wrong key for a known device is recorded in its
    /// refusals (with `from`, the peer's address) and changes nothing else.
    pub async fn esp_admin_authenticate(
        &self,
        id: &str,
        key: &str,
        from: Option<&str>,
    ) -> Result<Device> {
        let refuse = || {
            unauthorized("unknown device id or wrong Api-Key: use the deviceId and apiKey otafleet showed when the device was added (Devices → Add ESP Admin device)")
        };
        if !valid_id(id) || key.is_empty() {
            return Err(refuse());
        }
        let Some(d) = devices::by_mqtt_id(self.db(), id).await? else {
            return Err(refuse());
        };
        if d.token_hash.as_deref() == Some(hash_token(key).as_str()) {
            return devices::get(self.db(), self.timing().offline_after_s(), &d.mac).await;
        }
        let e = refuse();
        let _w = self.device_write_lock(&d.mac).await;
        let mut tx = db::begin_write(self.db()).await?;
        trust::record(&mut tx, &d.mac, ESP_ADMIN, from, &e).await?;
        tx.commit().await?;
        Err(e)
    }

    /// `GET /api/device/<id>/settings` from an authenticated ESP Admin device ([`Fleet::esp_admin_authenticate`]):
    /// its sign of life — `last_seen`, its address `from` and whether it came over TLS are
    /// recorded —, and how an update ends: the SDK asks for its settings first thing after every
    /// boot, so an attempt it reported `succeded` (written, rebooting) is `done` now, and the
    /// device is recorded running that image (version, SHA-256, the image's project). The SDK
    /// reports nothing about what it runs, so this is the only confirmation there is.
    pub async fn esp_admin_seen(
        &self,
        device: &Device,
        from: Option<&str>,
        tls: bool,
    ) -> Result<Device> {
        let mac = device.mac.as_str();
        let mut changed = Vec::new();
        let deployments = {
            let _w = self.device_write_lock(mac).await;
            let mut tx = db::begin_write(self.db()).await?;
            let now = crate::time::now();
            devices::record_esp_admin(&mut tx, mac, from, tls, &now).await?;
            if let Some(open) = updates::open_for(&mut tx, mac).await? {
                if open.state == UpdateState::Rebooting {
                    let done =
                        updates::set_state(&mut tx, open.id, UpdateState::Done, 100, Why::NONE)
                            .await?;
                    devices::set_running(&mut tx, mac, &done.sha256, done.version.as_deref())
                        .await?;
                    devices::follow_image_project(&mut tx, mac, &done.sha256).await?;
                    tracing::info!(%mac, update = done.id, "ESP Admin device came back: update done");
                    changed.push(done);
                }
            }
            let deployments = crate::deployments::after_change(&mut tx, &changed, None).await?;
            tx.commit().await?;
            deployments
        };
        if changed.is_empty() {
            self.publish_device(mac).await;
        } else {
            self.publish_updates(changed).await;
        }
        self.publish_deployments(deployments).await;
        self.device(mac).await
    }

    /// `POST /api/device/<id>/report/update` of an authenticated ESP Admin device.
    ///
    /// - `started` with `releaseId` (an image id): the attempt at that image its verdict offers —
    ///   the open one, or one opened now by the same rules every protocol's check follows
    ///   ([`updates::decide`]) — moves to `downloading`; its id is the answer. An image the
    ///   device is not offered is 409, saying what it is offered and why (nothing of the image's
    ///   attempt changes). A device whose chip is not known (the SDK never says) is taken to be
    ///   of its target image's chip when that image is the one it starts.
    /// - `succeded` with `deploymentId`: the image is written and the device reboots into it:
    ///   `rebooting`; `done` only when it comes back ([`Fleet::esp_admin_seen`]).
    /// - `failed`: `failed`, reported by the device.
    ///
    /// Another device's attempt, or an id that names none, is 404; an attempt that already ended
    /// otherwise is 409 `update_finished` (a repeat of its own end is answered as it stands).
    pub async fn esp_admin_update_report(
        &self,
        device: &Device,
        report: &EspAdminUpdateReport,
    ) -> Result<EspAdminReported> {
        let mac = device.mac.as_str();
        let status = report.status.trim();
        let (reported, changed, deployments) = {
            let _w = self.device_write_lock(mac).await;
            let mut tx = db::begin_write(self.db()).await?;
            let mut changed = Vec::new();
            let (reported, applied) = match status {
                "started" => {
                    let release = report.release_id.as_deref().unwrap_or("").trim();
                    let Ok(fw_id) = release.parse::<i64>() else {
                        return Err(CoreError::invalid(
                            "invalid_release_id",
                            "a started report needs releaseId, the image id of the update trigger (a number)",
                        ));
                    };
                    let (u, applied) = start(&mut tx, mac, fw_id, &mut changed).await?;
                    (EspAdminReported::Started(u), applied)
                }
                "succeded" | "succeeded" | "failed" => {
                    let ok = status != "failed";
                    let u = finish(&mut tx, mac, report.deployment_id.as_deref(), ok).await?;
                    if let Some(u) = &u {
                        changed.push(u.clone());
                    }
                    let u = match u {
                        Some(u) => u,
                        None => {
                            let id = report.deployment_id.as_deref().unwrap_or("").trim();
                            updates::get(&mut tx, id.parse().unwrap_or(-1)).await?
                        }
                    };
                    (EspAdminReported::Finished(u), None)
                }
                other => {
                    return Err(CoreError::invalid(
                        "invalid_status",
                        format!(
                            "'{}' is not an update status: use started, succeded or failed",
                            crate::validate::printable(other, 30)
                        ),
                    ))
                }
            };
            let deployments = crate::deployments::after_change(&mut tx, &changed, applied).await?;
            tx.commit().await?;
            (reported, changed, deployments)
        };
        self.publish_updates(changed).await;
        self.publish_deployments(deployments).await;
        Ok(reported)
    }

    /// `POST /api/device/<id>/report/custom` of an authenticated ESP Admin device: stored as one
    /// of its reports ([`crate::reports`]: bounded input, newest 1,000 kept), which queues its
    /// notifications and publishes the `report` event, as a native report does.
    pub async fn esp_admin_custom_report(
        &self,
        device: &Device,
        report: &EspAdminCustomReport,
    ) -> Result<Report> {
        let clean = crate::reports::clean(&ReportRequest {
            mac: device.mac.clone(),
            kind: report.kind.clone(),
            subject: report.subject.clone(),
            body: report.body.clone(),
            device_time: None,
        })?;
        self.store_report(&device.mac, &clean, None).await
    }

    /// The `update_trigger` payload for attempt `update_id` of an ESP Admin device, with the
    /// device's id (its topics are `device/<id>/…`). 404 for an attempt that is not an ESP Admin
    /// device's, 409 for one that already ended. Changes nothing.
    pub async fn esp_admin_trigger(&self, update_id: i64) -> Result<(String, EspAdminTrigger)> {
        let mut conn = self.db().acquire().await?;
        let u = updates::get(&mut conn, update_id).await?;
        if u.is_finished() {
            return Err(CoreError::conflict(format!(
                "update {update_id} is {}: there is nothing to trigger",
                u.state
            )));
        }
        let device = devices::find(&mut conn, &u.mac).await?;
        let Some(id) = device.and_then(|d| d.mqtt_id) else {
            return Err(CoreError::not_found(format!(
                "update {update_id} of an ESP Admin device"
            )));
        };
        let fw: Option<Firmware> = db::query_as(
            "SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware WHERE sha256 = ?",
        )
        .bind(&u.sha256)
        .fetch_optional(&mut *conn)
        .await?;
        let fw =
            fw.ok_or_else(|| CoreError::not_found(format!("the image of update {update_id}")))?;
        let key = crate::settings::esp_admin_ota_key(&mut conn).await?;
        let secret = download_secret(&key, &id, u.id);
        let trigger = EspAdminTrigger {
            release_id: fw.id.to_string(),
            version: fw.version.clone().unwrap_or_default(),
            download_path: format!("/api/device/{id}/ota/{}/{secret}.bin", u.id),
            download_size: fw.size,
            update_id: u.id,
        };
        Ok((id, trigger))
    }

    /// What ESP Admin device `id` should be triggered to install now: its verdict's offer, with
    /// the attempt opened (or the open one reused) as at any protocol's check, as a trigger
    /// payload. `None`: nothing to install (no deployment targets it, it runs the image, a rule
    /// holds it back — the reason is logged —, or the device already started that update). For
    /// the MQTT side: call it when the device
    /// connects and when a deployment may cover it. A device of unknown chip is taken to be of
    /// its target image's chip (its updater checks the chip in the image header and fails
    /// safely otherwise).
    pub async fn esp_admin_offer(&self, id: &str) -> Result<Option<EspAdminTrigger>> {
        if !valid_id(id) {
            return Err(CoreError::not_found(format!("ESP Admin device {id}")));
        }
        let Some(d) = devices::by_mqtt_id(self.db(), id).await? else {
            return Err(CoreError::not_found(format!("ESP Admin device {id}")));
        };
        let mac = d.mac.clone();
        let (offer, changed, deployments) = {
            let _w = self.device_write_lock(&mac).await;
            let mut tx = db::begin_write(self.db()).await?;
            let device = adopt_target_chip(&mut tx, &mac, None).await?;
            let decided = updates::decide(&mut tx, &device).await?;
            let mut changed = decided.closed;
            let (offer, applied) = match decided.decision {
                Decision::Offer { update, .. } => {
                    if decided.created {
                        changed.push((*update).clone());
                    }
                    // Once the device reported `started`, a trigger would only be ignored.
                    let unstarted = update.state.stage() < UpdateState::Downloading.stage();
                    (unstarted.then_some(update.id), None)
                }
                Decision::Nothing { reason, verdict } => {
                    tracing::debug!(%mac, %reason, "ESP Admin device: nothing to trigger");
                    (
                        None,
                        updates::settles(verdict.as_ref(), decided.deployment_id),
                    )
                }
            };
            let deployments = crate::deployments::after_change(&mut tx, &changed, applied).await?;
            tx.commit().await?;
            (offer, changed, deployments)
        };
        self.publish_updates(changed).await;
        self.publish_deployments(deployments).await;
        match offer {
            Some(update_id) => Ok(Some(self.esp_admin_trigger(update_id).await?.1)),
            None => Ok(None),
        }
    }

    /// The attempt a download path names (`/api/device/<id>/ota/<update_id>/<secret>.bin`), if
    /// the secret is the one [`Fleet::esp_admin_trigger`] gave for it and the attempt is still
    /// open. Every other path is the same 404, so a guess learns nothing. Changes nothing.
    pub async fn esp_admin_download(
        &self,
        id: &str,
        update_id: i64,
        secret: &str,
    ) -> Result<Update> {
        if !valid_id(id) || secret.len() != 32 {
            return Err(no_download());
        }
        let mut conn = self.db().acquire().await?;
        let key = crate::settings::esp_admin_ota_key(&mut conn).await?;
        let want = download_secret(&key, id, update_id);
        if !bool::from(want.as_bytes().ct_eq(secret.as_bytes())) {
            return Err(no_download());
        }
        let Some(d) = devices::by_mqtt_id(self.db(), id).await? else {
            return Err(no_download());
        };
        let u = updates::get(&mut conn, update_id)
            .await
            .map_err(|_| no_download())?;
        if u.mac != d.mac || u.is_finished() {
            return Err(no_download());
        }
        Ok(u)
    }

    /// The MQTT broker's check of a connecting device: the client id and user name must both be
    /// its ESP Admin id and the password its API key (what `GET /api/device/<id>/settings` hands
    /// it). Same answers as [`Fleet::esp_admin_authenticate`].
    pub async fn mqtt_authenticate(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        from: Option<&str>,
    ) -> Result<Device> {
        if client_id != username {
            return Err(unauthorized(
                "the MQTT user name must be the device's id, the same as its client id",
            ));
        }
        self.esp_admin_authenticate(client_id, password, from).await
    }

    /// Record what the broker refused device `id` (a subscription or publication outside its own
    /// topics): counted in its refusals like any refused request; nothing else changes.
    pub async fn mqtt_refused(
        &self,
        id: &str,
        code: &'static str,
        message: String,
        from: Option<&str>,
    ) -> Result<()> {
        if !valid_id(id) {
            return Err(CoreError::not_found(format!("ESP Admin device {id}")));
        }
        let Some(device) = devices::by_mqtt_id(self.db(), id).await? else {
            return Err(CoreError::not_found(format!("ESP Admin device {id}")));
        };
        let e = trust::refused(code, message);
        let _w = self.device_write_lock(&device.mac).await;
        let mut tx = db::begin_write(self.db()).await?;
        trust::record(&mut tx, &device.mac, ESP_ADMIN, from, &e).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The device, with its chip taken from its target image when it has none and that image is
/// `only` (or any, for `None`): the SDK never says which chip it runs.
async fn adopt_target_chip(
    tx: &mut crate::db::Conn,
    mac: &str,
    only: Option<i64>,
) -> Result<Device> {
    let device = devices::load(tx, mac).await?;
    if device.chip.is_some() {
        return Ok(device);
    }
    match updates::target_for(tx, &device).await? {
        Some((_, fw)) if only.is_none_or(|id| id == fw.id) => {
            devices::adopt_image(tx, mac, &fw.chip, fw.project.as_deref()).await?;
            devices::load(tx, mac).await
        }
        _ => Ok(device),
    }
}

/// `started` for image `fw_id`: the attempt the verdict offers, if it is at that image, moved to
/// `downloading`. Returns it and the deployment applied when nothing was offered.
async fn start(
    tx: &mut crate::db::Conn,
    mac: &str,
    fw_id: i64,
    changed: &mut Vec<Update>,
) -> Result<(Update, Option<i64>)> {
    let device = adopt_target_chip(tx, mac, Some(fw_id)).await?;
    let offered = match updates::open_for(tx, mac).await? {
        Some(open) if open.firmware_id == Some(fw_id) => Some(open),
        _ => {
            let decided = updates::decide(tx, &device).await?;
            changed.extend(decided.closed);
            match decided.decision {
                Decision::Offer { update, firmware } => {
                    if decided.created {
                        changed.push((*update).clone());
                    }
                    if firmware.id == fw_id {
                        Some(*update)
                    } else {
                        return Err(CoreError::Unavailable { code: "release_not_offered", message: format!(
                            "release {fw_id} is not the image deployed to this device: it is offered release {} (version {}); install that one",
                            firmware.id,
                            firmware.version.as_deref().unwrap_or("?")
                        )});
                    }
                }
                Decision::Nothing { reason, .. } => {
                    return Err(CoreError::Unavailable { code: "release_not_offered", message: format!(
                        "release {fw_id} is not offered to this device: {reason}; deploy it to the device in otafleet first"
                    )});
                }
            }
        }
    };
    let u = offered.expect("an offer or an early return");
    if u.state.stage() >= UpdateState::Downloading.stage() {
        return Ok((u, None));
    }
    let u = updates::set_state(tx, u.id, UpdateState::Downloading, 0, Why::NONE).await?;
    changed.retain(|c| c.id != u.id);
    changed.push(u.clone());
    Ok((u, None))
}

/// `succeded` (`ok`) or `failed` for the attempt the SDK names. `None`: a repeat of the end it
/// already has (nothing written).
async fn finish(
    tx: &mut crate::db::Conn,
    mac: &str,
    deployment_id: Option<&str>,
    ok: bool,
) -> Result<Option<Update>> {
    let raw = deployment_id.unwrap_or("").trim();
    let unknown = || {
        CoreError::not_found(format!(
            "update '{}' of this device (deploymentId must be the id the started report answered)",
            crate::validate::printable(raw, 30)
        ))
    };
    let id: i64 = raw.parse().map_err(|_| unknown())?;
    let u = updates::get(tx, id).await.map_err(|_| unknown())?;
    if u.mac != mac {
        tracing::warn!(%mac, update = id, "ESP Admin report about another device's update refused");
        return Err(unknown());
    }
    let want = if ok {
        UpdateState::Rebooting
    } else {
        UpdateState::Failed
    };
    if u.state == want || (ok && u.state == UpdateState::Done) {
        return Ok(None);
    }
    if u.is_finished() {
        return Err(CoreError::StaleReport {
            code: "update_finished",
            message: format!(
                "update {id} is already {}; it takes no more reports",
                u.state
            ),
        });
    }
    let u = if ok {
        updates::set_state(tx, id, UpdateState::Rebooting, 100, Why::NONE).await?
    } else {
        updates::set_state(
            tx,
            id,
            UpdateState::Failed,
            u.progress,
            Why::failed(
                UpdateFailure::DeviceReported,
                "the ESP Admin SDK reported that the update failed (it gives no reason; its log over MQTT may say why)",
            ),
        )
        .await?
    };
    Ok(Some(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fleet() -> (tempfile::TempDir, Fleet) {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(crate::Settings::new(dir.path())).await.unwrap();
        (dir, fleet)
    }

    #[tokio::test]
    async fn a_created_device_is_known_by_its_id_and_key_only() {
        let (_dir, fleet) = fleet().await;
        let new = NewEspAdminDevice {
            name: Some("greenhouse".into()),
            project: Some("sensor".into()),
            ..Default::default()
        };
        let c = fleet.esp_admin_create(new).await.unwrap();
        assert!(valid_id(&c.id), "{}", c.id);
        assert_eq!(c.api_key.len(), 30);
        assert!(c.api_key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(c.device.mac.starts_with("02:"), "{}", c.device.mac);
        assert_eq!(c.device.mqtt_id.as_deref(), Some(c.id.as_str()));
        assert_eq!(c.device.expect_protocol.as_deref(), Some(ESP_ADMIN));
        assert_eq!(c.device.name.as_deref(), Some("greenhouse"));
        // The key itself is nowhere in the database: only its hash.
        let stored: Option<String> =
            db::query_scalar("SELECT token_hash FROM devices WHERE mac = ?")
                .bind(&c.device.mac)
                .fetch_one(fleet.db())
                .await
                .unwrap();
        assert_eq!(stored.as_deref(), Some(hash_token(&c.api_key).as_str()));

        let d = fleet
            .esp_admin_authenticate(&c.id, &c.api_key, None)
            .await
            .unwrap();
        assert_eq!(d.mac, c.device.mac);
        let d = fleet
            .mqtt_authenticate(&c.id, &c.id, &c.api_key, None)
            .await
            .unwrap();
        assert_eq!(d.mac, c.device.mac);

        // A wrong key is refused and recorded on the device; an unknown id gets the same answer.
        let e = fleet
            .esp_admin_authenticate(&c.id, "not-the-key", Some("10.0.0.66"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "bad_api_key");
        let other = hex::encode([7u8; 12]);
        let e2 = fleet
            .esp_admin_authenticate(&other, &c.api_key, None)
            .await
            .unwrap_err();
        assert_eq!(e2.to_string(), e.to_string());
        let e3 = fleet
            .esp_admin_authenticate("../../etc", &c.api_key, None)
            .await
            .unwrap_err();
        assert_eq!(e3.code(), "bad_api_key");
        // The MQTT user name must be the device's own id.
        let e4 = fleet
            .mqtt_authenticate(&c.id, "someone", &c.api_key, None)
            .await
            .unwrap_err();
        assert_eq!(e4.code(), "bad_api_key");
        let d = fleet.device(&c.device.mac).await.unwrap();
        let r = d.refused.expect("the wrong key is recorded");
        assert_eq!(r.count, 1);
        assert_eq!(r.last_from.as_deref(), Some("10.0.0.66"));
        assert_eq!(r.last_protocol, ESP_ADMIN);

        // Two devices never share an id or a key.
        let c2 = fleet.esp_admin_create(Default::default()).await.unwrap();
        assert_ne!(c2.id, c.id);
        assert_ne!(c2.api_key, c.api_key);
        assert!(fleet
            .esp_admin_authenticate(&c2.id, &c.api_key, None)
            .await
            .is_err());
    }
}
