//! Names, notes and tags belong to the admin: migration 0015 sorts existing names the way its
//! comment says, and neither check-ins nor mDNS announcements touch the admin's name.

use super::*;
use crate::checkin::CheckinRequest;
use crate::discovered::Discovery;
use crate::{Fleet, Settings};

const NATIVE: &str = "24:0A:C4:00:15:01";
const STOCK: &str = "24:0A:C4:00:15:02";
const HEARD: &str = "24:0A:C4:00:15:03";
const ADDED: &str = "24:0A:C4:00:15:04";
const RENAMED: &str = "24:0A:C4:00:15:05";

/// A database as migrations 0001–0014 left it, with the rows `fill` writes, then opened by the
/// fleet (which applies 0015 and later).
async fn migrated(fill: &str) -> (tempfile::TempDir, Fleet) {
    crate::db::fleet_migrated_from(14, fill).await
}

#[tokio::test]
async fn sqlite_migration_0015_keeps_names_as_their_author_wrote_them() {
    let (_dir, fleet) = migrated(&format!(
        "INSERT INTO devices (mac, name, protocol, source, created_at) VALUES \
           ('{NATIVE}', 'esp-kitchen', 'native', 'checkin', '2026-01-01T00:00:00.000Z'), \
           ('{STOCK}', 'Relay board', 'arduino', 'checkin', '2026-01-01T00:00:00.000Z'), \
           ('{ADDED}', 'Spare', NULL, 'admin', '2026-01-01T00:00:00.000Z'); \
         INSERT INTO devices (mac, name, source, created_at, mdns_instance, mdns_txt) VALUES \
           ('{HEARD}', 'Kitchen', 'mdns', '2026-01-01T00:00:00.000Z', 'lamp', '{{\"friendly_name\":\"Kitchen\"}}'), \
           ('{RENAMED}', 'Porch', 'mdns', '2026-01-01T00:00:00.000Z', 'porch-light', '{{}}');"
    ))
    .await;
    let d = fleet.device(NATIVE).await.unwrap();
    assert_eq!(
        (d.admin_name.as_deref(), d.reported_name.as_deref()),
        (None, Some("esp-kitchen")),
        "a native device's name may be its own report: kept as reported"
    );
    assert_eq!(d.name_source, Some(NameSource::Reported));
    let d = fleet.device(STOCK).await.unwrap();
    assert_eq!(
        d.admin_name.as_deref(),
        Some("Relay board"),
        "stock updaters report no name: only the admin wrote it"
    );
    assert_eq!(
        (d.name.as_deref(), d.name_source),
        (Some("Relay board"), Some(NameSource::Admin))
    );
    let d = fleet.device(ADDED).await.unwrap();
    assert_eq!(d.admin_name.as_deref(), Some("Spare"));
    let d = fleet.device(HEARD).await.unwrap();
    assert_eq!(
        (d.admin_name.as_deref(), d.reported_name.as_deref()),
        (None, None),
        "the announced name is read from the announcement, not stored"
    );
    assert_eq!(
        (d.name.as_deref(), d.name_source),
        (Some("Kitchen"), Some(NameSource::Mdns)),
        "and still shown"
    );
    let d = fleet.device(RENAMED).await.unwrap();
    assert_eq!(
        d.admin_name.as_deref(),
        Some("Porch"),
        "a name other than the announced one came from the admin"
    );
    for d in fleet.devices().await.unwrap() {
        assert!(d.tags.0.is_empty() && d.notes.is_none(), "{d:?}");
    }
    fleet.close().await;
}

fn announcement(friendly: &str) -> Discovery {
    Discovery {
        service: "_esphomelib._tcp".into(),
        instance: "lamp".into(),
        hostname: "lamp.local".into(),
        ip: Some("10.1.2.3".into()),
        port: 6053,
        txt: [("mac", "240AC4001501"), ("friendly_name", friendly)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[tokio::test]
async fn the_admins_name_survives_check_ins_and_announcements_that_name_the_device_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    fleet.mdns_seen(announcement("Kitchen")).await.unwrap();
    let d = fleet.device(NATIVE).await.unwrap();
    assert_eq!(
        (d.name.as_deref(), d.name_source),
        (Some("Kitchen"), Some(NameSource::Mdns))
    );
    let checkin = |name: &str| -> CheckinRequest {
        serde_json::from_value(serde_json::json!({
            "mac": NATIVE, "chip": "esp32", "project": "lamp", "version": "1.0.0", "name": name
        }))
        .unwrap()
    };
    let token = fleet
        .checkin(checkin("lamp-fw"), None, None, false)
        .await
        .unwrap()
        .token;
    let d = fleet.device(NATIVE).await.unwrap();
    assert_eq!(
        (d.name.as_deref(), d.name_source),
        (Some("lamp-fw"), Some(NameSource::Reported)),
        "the device's own name wins over its announcement"
    );
    fleet
        .device_patch(
            NATIVE,
            serde_json::from_value(serde_json::json!({"name": "Bench 2, left"})).unwrap(),
        )
        .await
        .unwrap();
    fleet
        .checkin(checkin("lamp-fw-2"), token.as_deref(), None, false)
        .await
        .unwrap();
    fleet.mdns_seen(announcement("Living room")).await.unwrap();
    let d = fleet.device(NATIVE).await.unwrap();
    assert_eq!(
        (d.name.as_deref(), d.name_source),
        (Some("Bench 2, left"), Some(NameSource::Admin)),
        "neither a check-in nor an announcement changes the admin's name"
    );
    assert_eq!(d.reported_name.as_deref(), Some("lamp-fw-2"));
    assert_eq!(d.auth, DeviceAuth::Token);
    fleet
        .device_patch(
            NATIVE,
            serde_json::from_value(serde_json::json!({"name": null})).unwrap(),
        )
        .await
        .unwrap();
    let d = fleet.device(NATIVE).await.unwrap();
    assert_eq!(
        (d.name.as_deref(), d.admin_name.as_deref()),
        (Some("lamp-fw-2"), None),
        "cleared: the reported name shows again"
    );
    fleet.close().await;
}

#[test]
fn auth_follows_what_the_trust_rules_check() {
    assert_eq!(DeviceAuth::of(true, Some("native")), DeviceAuth::Token);
    assert_eq!(DeviceAuth::of(true, Some("esp-admin")), DeviceAuth::ApiKey);
    assert_eq!(
        DeviceAuth::of(true, Some("arduino")),
        DeviceAuth::Token,
        "a token-holder is answered only with its token, whatever it is expected to speak"
    );
    assert_eq!(
        DeviceAuth::of(false, Some("native")),
        DeviceAuth::PendingEnrolment
    );
    assert_eq!(
        DeviceAuth::of(false, Some("legacy")),
        DeviceAuth::SharedSecret
    );
    for stock in ["arduino", "esp8266", "esp32fota", "any"] {
        assert_eq!(
            DeviceAuth::of(false, Some(stock)),
            DeviceAuth::Mac,
            "{stock}"
        );
    }
    assert_eq!(DeviceAuth::of(false, None), DeviceAuth::Unclaimed);
}
