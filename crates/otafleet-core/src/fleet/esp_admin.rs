//! [`Fleet`] methods for devices that run the ESP Admin SDK (issue 16; docs/esp-admin.md): the
//! identity the admin creates for one — an id and an API key compiled into its `credentials.h` —
//! and the one check every ESP Admin request and MQTT connection of it passes.
//!
//! The API key is a device token: shown once, stored as its SHA-256 in `devices.token_hash`.
//! The SDK never reports a MAC, so the device row is keyed by a locally administered address
//! otafleet draws (`02:…`, never a real vendor's); the id in its HTTP paths and MQTT topics is
//! `devices.mqtt_id`.

use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use serde::Serialize;

use crate::checkin::hash_token;
use crate::devices::{self, Device, NewEspAdminDevice};
use crate::error::{CoreError, Result};
use crate::events::Event;
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

    /// Record what the broker refused a device (a subscription or publication outside its own
    /// topics): counted in its refusals like any refused request; nothing else changes.
    pub async fn mqtt_refused(
        &self,
        device: &Device,
        code: &'static str,
        message: String,
        from: Option<&str>,
    ) -> Result<()> {
        let e = trust::refused(code, message);
        let _w = self.device_write_lock(&device.mac).await;
        let mut tx = db::begin_write(self.db()).await?;
        trust::record(&mut tx, &device.mac, ESP_ADMIN, from, &e).await?;
        tx.commit().await?;
        Ok(())
    }
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
            sqlx::query_scalar("SELECT token_hash FROM devices WHERE mac = ?")
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
