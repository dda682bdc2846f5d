//! Who may claim and serve a device (docs/security.md, "Trust model").
//!
//! - A device that holds a native device token is answered only over the native protocol with that
//!   token; the stock-client routes refuse it.
//! - Every other device has an expected protocol (`devices.expect_protocol`): `native`, `arduino`,
//!   `esp8266`, `esp32fota`, `legacy`, or `any`. Unset (NULL) means "not decided": the first
//!   protocol that checks in claims the device and is written there.
//! - "Open enrolment" (a persisted server setting, on by default) decides whether a MAC the server
//!   does not know (or knows only from mDNS, which anyone on the LAN can announce) may enrol at all.
//! - A request without a credential never changes a device's project (see [`project_change`]).
//! - A project may list the protocols its devices may check in with ([`project_protocol`]).
//!
//! A refusal changes nothing of the device; it is logged and counted per device in `refusals`
//! (shown as [`Refusal`] on the device), which this module alone writes. It owns the table
//! `refusals`; the open-enrolment setting is kept by [`crate::settings`].

use std::collections::HashMap;

use crate::db::{Conn, Db};
use serde::Serialize;

use crate::db;
use crate::devices::Device;
use crate::error::{CoreError, Result};

/// The protocols a device can be claimed by, plus `any`.
pub const PROTOCOLS: [&str; 6] = ["native", "arduino", "esp8266", "esp32fota", "legacy", "any"];

/// Validate an expected protocol given by the admin.
pub fn expect_protocol(input: &str) -> Result<String> {
    let p = input.trim().to_ascii_lowercase();
    PROTOCOLS
        .iter()
        .find(|k| **k == p)
        .map(|k| (*k).to_string())
        .ok_or_else(|| {
            CoreError::invalid(
                "invalid_expect_protocol",
                format!(
                    "'{}' is not a protocol otafleet speaks; use one of {}",
                    crate::validate::printable(input, 30),
                    PROTOCOLS.join(", ")
                ),
            )
        })
}

/// The last refused attempt at a device, and how many there were.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Refusal {
    #[serde(skip)]
    pub mac: String,
    /// Refused attempts since the first one.
    pub count: i64,
    pub first_at: String,
    pub last_at: String,
    /// IP address the last refused request came from, when known.
    pub last_from: Option<String>,
    /// The protocol the last refused request spoke.
    pub last_protocol: String,
    /// Stable code of the refusal (`enrolled_native`, `protocol_not_allowed`, ...).
    pub last_code: String,
    pub last_reason: String,
}

/// Refuse with a [`CoreError::Refused`].
pub fn refused(code: &'static str, message: impl Into<String>) -> CoreError {
    CoreError::Refused {
        code,
        message: message.into(),
    }
}

fn closed(mac: &str) -> CoreError {
    refused(
        "enrolment_closed",
        format!(
            "device {mac} is not known and open enrolment is off; add it in otafleet (Devices → Add, or POST /api/v1/devices) or turn open enrolment on in Settings"
        ),
    )
}

/// May `protocol` claim or serve this device, authenticated (a native device token that matched)
/// or not? `device` is `None` for a MAC the server does not know. `Ok(true)`: allowed, and the
/// device's expected protocol is not set yet, so the caller pins it to `protocol`.
pub fn judge(
    mac: &str,
    device: Option<&Device>,
    protocol: &str,
    open_enrolment: bool,
    authenticated: bool,
) -> Result<bool> {
    let Some(d) = device else {
        return if open_enrolment {
            Ok(true)
        } else {
            Err(closed(mac))
        };
    };
    esp_admin_only(d, protocol)?;
    if d.token_hash.is_some() && !authenticated {
        return Err(refused(
            "enrolled_native",
            format!(
                "device {mac} is enrolled with a device token and is answered only over the native protocol with that token; if it now runs a stock updater, reset its enrolment in otafleet"
            ),
        ));
    }
    match d.expect_protocol.as_deref() {
        None => {
            // Known only from mDNS: an announcement is no claim, anyone on the LAN can make it.
            if d.source == "mdns" && !open_enrolment {
                return Err(closed(mac));
            }
            Ok(true)
        }
        Some("any") => Ok(false),
        Some(p) if p == protocol => Ok(false),
        Some(p) => Err(refused(
            "protocol_not_allowed",
            format!(
                "device {mac} is expected to speak {p}, not {protocol}; change its expected protocol in otafleet if it was re-flashed"
            ),
        )),
    }
}

/// An ESP Admin device (issue 16) is answered only on its own routes, by its id and API key: its
/// MAC is one otafleet made up, so a native check-in or a stock updater that claims it is
/// refused (`esp_admin_device`), whatever credential it shows.
pub fn esp_admin_only(device: &Device, protocol: &str) -> Result<()> {
    const ESP_ADMIN: &str = crate::fleet::ESP_ADMIN;
    if device.expect_protocol.as_deref() == Some(ESP_ADMIN) && protocol != ESP_ADMIN {
        return Err(refused(
            "esp_admin_device",
            format!(
                "device {} is an ESP Admin device: otafleet made up this MAC for it, and it is answered only on /api/device/<id>/… with its API key, never over {protocol}",
                device.mac
            ),
        ));
    }
    Ok(())
}

/// A project's enrolment policy ([`crate::projects`]): a device of `project` speaking `protocol`
/// is refused (`project_protocol_not_allowed`) when the project lists the protocols that may
/// enrol its devices (`allowed`) and this is not one of them. `None`: any protocol.
pub fn project_protocol(
    mac: &str,
    project: Option<&str>,
    allowed: Option<&[String]>,
    protocol: &str,
) -> Result<()> {
    match (project, allowed) {
        (Some(p), Some(list)) if !list.iter().any(|a| a == protocol) => Err(refused(
            "project_protocol_not_allowed",
            format!(
                "devices of project '{p}' may check in only over {}, not {protocol} (device {mac}); change the project's enrolment in otafleet (Projects page) if this device is meant to",
                list.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// A request that is not authenticated by a device token reports running `reported` while the
/// device is set to `current`: refused, so that nobody can move a device to another project's
/// images by claiming it runs one. A device holding a token changes project by itself (re-flashed
/// by whoever holds its token), which the caller logs.
pub fn project_change(mac: &str, current: Option<&str>, reported: Option<&str>) -> Result<()> {
    match (current, reported) {
        (Some(c), Some(r)) if c != r => Err(refused(
            "project_mismatch",
            format!(
                "device {mac} is set to project '{c}' but reported project '{r}'; if it was re-flashed with another project, change its project in otafleet first"
            ),
        )),
        _ => Ok(()),
    }
}

/// Count a refused attempt at a known device (nothing is recorded for unknown MACs: a flood of
/// made-up MACs must not grow the database). Runs in the caller's transaction.
pub(crate) async fn record(
    conn: &mut Conn,
    mac: &str,
    protocol: &str,
    from: Option<&str>,
    e: &CoreError,
) -> Result<()> {
    let now = crate::time::now();
    let reason = e.to_string();
    tracing::warn!(%mac, protocol, from, code = e.code(), %reason, "device request refused");
    db::query(
        "INSERT INTO refusals (mac, count, first_at, last_at, last_from, last_protocol, last_code, last_reason) \
         SELECT ?1, 1, ?2, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM devices WHERE mac = ?1) \
         ON CONFLICT (mac) DO UPDATE SET count = refusals.count + 1, last_at = ?2, last_from = ?3, \
           last_protocol = ?4, last_code = ?5, last_reason = ?6",
    )
    .bind(mac)
    .bind(&now)
    .bind(from)
    .bind(protocol)
    .bind(e.code())
    .bind(&reason)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn refusal_for(db: &Db, mac: &str) -> Result<Option<Refusal>> {
    db::query_as("SELECT * FROM refusals WHERE mac = ?")
        .bind(mac)
        .fetch_optional(db)
        .await
}

/// The refusals of the devices whose MAC sorts after `after` and up to `through` (one page of the
/// device list), by MAC: a range of the primary key.
pub(crate) async fn refusals_between(
    db: &Db,
    after: &str,
    through: &str,
) -> Result<HashMap<String, Refusal>> {
    let rows: Vec<Refusal> = db::query_as("SELECT * FROM refusals WHERE mac > ?1 AND mac <= ?2")
        .bind(after)
        .bind(through)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.mac.clone(), r)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(token: bool, expect: Option<&str>, source: &str) -> Device {
        Device {
            mac: "24:0A:C4:00:00:01".into(),
            name: None,
            name_source: None,
            admin_name: None,
            reported_name: None,
            notes: None,
            tags: Default::default(),
            chip: None,
            project: None,
            version: None,
            sha256: None,
            ip: None,
            rssi: None,
            free_space: None,
            uptime_s: None,
            token_hash: token.then(|| "x".into()),
            protocol: None,
            weak_auth: false,
            tls: None,
            source: source.into(),
            created_at: String::new(),
            last_seen: None,
            last_reset_at: None,
            hold: None,
            hostname: None,
            mdns_service: None,
            mdns_instance: None,
            mdns_port: None,
            mdns_txt: None,
            mdns_seen: None,
            mdns_gone: None,
            expect_protocol: expect.map(str::to_owned),
            mqtt_id: None,
            mqtt_connected_at: None,
            mqtt_gone_at: None,
            online: false,
            enrolled: token,
            auth: Default::default(),
            update: None,
            refused: None,
        }
    }

    #[test]
    fn rules() {
        let m = "24:0A:C4:00:00:01";
        assert!(judge(m, None, "native", true, false).unwrap());
        assert_eq!(
            judge(m, None, "arduino", false, false).unwrap_err().code(),
            "enrolment_closed"
        );
        let native = device(true, Some("native"), "checkin");
        assert_eq!(
            judge(m, Some(&native), "arduino", true, false)
                .unwrap_err()
                .code(),
            "enrolled_native"
        );
        assert!(!judge(m, Some(&native), "native", true, true).unwrap());
        let stock = device(false, Some("arduino"), "checkin");
        assert_eq!(
            judge(m, Some(&stock), "native", true, false)
                .unwrap_err()
                .code(),
            "protocol_not_allowed"
        );
        assert!(!judge(m, Some(&stock), "arduino", false, false).unwrap());
        let any = device(false, Some("any"), "admin");
        assert!(!judge(m, Some(&any), "esp32fota", false, false).unwrap());
        let pre = device(false, None, "admin");
        assert!(judge(m, Some(&pre), "legacy", false, false).unwrap());
        let heard = device(false, None, "mdns");
        assert_eq!(
            judge(m, Some(&heard), "native", false, false)
                .unwrap_err()
                .code(),
            "enrolment_closed"
        );
        assert!(judge(m, Some(&heard), "native", true, false).unwrap());
        assert!(project_change(m, Some("blink"), Some("other")).is_err());
        assert!(project_change(m, Some("blink"), Some("blink")).is_ok());
        assert!(project_change(m, None, Some("other")).is_ok());
        assert!(project_change(m, Some("blink"), None).is_ok());
        assert_eq!(expect_protocol(" Arduino ").unwrap(), "arduino");
        assert!(expect_protocol("mqtt").is_err());
    }

    #[tokio::test]
    async fn open_enrolment_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = crate::Fleet::open(crate::Settings::new(dir.path()))
            .await
            .unwrap();
        assert!(fleet.open_enrolment().await.unwrap(), "on by default");
        fleet.set_open_enrolment(false).await.unwrap();
        fleet.close().await;
        drop(fleet);
        let fleet = crate::Fleet::open(crate::Settings::new(dir.path()))
            .await
            .unwrap();
        assert!(!fleet.open_enrolment().await.unwrap());
        fleet.close().await;
    }
}
