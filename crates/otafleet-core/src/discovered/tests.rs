//! TXT facts → MAC key, the online rule, and merging discoveries with checked-in devices.

use std::collections::BTreeMap;

use super::*;
use crate::checkin::CheckinRequest;
use crate::db;
use crate::Fleet;

fn disc(service: &str, instance: &str, txt: &[(&str, &str)]) -> Discovery {
    Discovery {
        service: service.into(),
        instance: instance.into(),
        hostname: format!("{instance}.local"),
        ip: Some("10.1.2.3".into()),
        port: 3232,
        txt: txt
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn esphome_txt_mac_is_the_key() {
    let d = disc(
        "_esphomelib._tcp",
        "kitchen",
        &[("mac", "240ac4a3153c"), ("friendly_name", "Kitchen")],
    );
    assert_eq!(d.mac().as_deref(), Some("24:0A:C4:A3:15:3C"));
    assert_eq!(d.display_name().as_deref(), Some("Kitchen"));
}

#[test]
fn arduino_default_esp32_host_name_carries_the_mac() {
    let d = disc("_arduino._tcp", "esp32-240ac4a3153c", &[("board", "esp32")]);
    assert_eq!(d.mac().as_deref(), Some("24:0A:C4:A3:15:3C"));
}

#[test]
fn custom_names_bad_macs_and_esp8266_chip_ids_give_no_mac() {
    for d in [
        disc("_arduino._tcp", "bench-relay", &[("board", "esp32")]),
        disc("_arduino._tcp", "esp8266-a3153c", &[]),
        disc("_arduino._tcp", "esp32-nothexnothex", &[]),
        disc("_esphomelib._tcp", "x", &[("mac", "not-a-mac")]),
    ] {
        assert_eq!(d.mac(), None, "{d:?} must not invent a MAC");
        assert!(matches!(d.key(), DiscoveryKey::Host { .. }));
    }
}

#[test]
fn online_rule_latest_news_wins() {
    let s = crate::Settings::new("/nonexistent").offline_after_s();
    let now = crate::time::now();
    let old = "2000-01-01T00:00:00.000Z";
    assert!(
        online(s, None, Some(old), None),
        "present on mDNS, never checked in"
    );
    assert!(!online(s, None, Some(old), Some(&now)), "left");
    assert!(online(s, Some(&now), None, None), "checked in just now");
    assert!(!online(s, Some(old), None, None), "checked in long ago");
    assert!(
        !online(s, Some(old), Some(old), Some(&now)),
        "left after its last check-in"
    );
    assert!(
        online(s, Some(&now), Some(old), Some(old)),
        "checked in after it left"
    );
}

/// Move one timestamp column of every device `secs` into the past.
async fn backdate(fleet: &Fleet, column: &str, secs: i64) {
    let t = crate::time::format(time::OffsetDateTime::now_utc() - time::Duration::seconds(secs));
    db::query(&format!("UPDATE devices SET {column} = ?"))
        .bind(t)
        .execute(fleet.db())
        .await
        .unwrap();
}

async fn fleet() -> (tempfile::TempDir, Fleet) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(crate::Settings::new(dir.path())).await.unwrap();
    (dir, fleet)
}

#[tokio::test]
async fn discovery_with_mac_merges_with_a_checked_in_device() {
    let (_dir, fleet) = fleet().await;
    let req: CheckinRequest = serde_json::from_value(serde_json::json!({
        "mac": "24:0A:C4:A3:15:3C", "chip": "esp32", "project": "lamp", "version": "1.0.0"
    }))
    .unwrap();
    fleet
        .checkin(req, None, Some("10.9.9.9".into()), false)
        .await
        .unwrap();
    // Timestamps have millisecond precision: put the check-in clearly before the goodbye.
    backdate(&fleet, "last_seen", 5).await;
    let key = fleet
        .mdns_seen(disc(
            "_esphomelib._tcp",
            "lamp",
            &[("mac", "240AC4A3153C"), ("board", "esp32dev")],
        ))
        .await
        .unwrap();
    assert_eq!(key, DiscoveryKey::Mac("24:0A:C4:A3:15:3C".into()));
    let all = fleet.devices().await.unwrap();
    assert_eq!(
        all.len(),
        1,
        "one device, not a checked-in one and a discovered one"
    );
    let d = &all[0];
    assert_eq!(d.source, "checkin", "how it became known does not change");
    assert_eq!(d.project.as_deref(), Some("lamp"));
    assert_eq!(d.hostname.as_deref(), Some("lamp.local"));
    assert_eq!(
        d.ip.as_deref(),
        Some("10.1.2.3"),
        "the address it announces now"
    );
    assert_eq!(d.mdns_txt.as_ref().unwrap().0["board"], "esp32dev");
    assert!(d.online);

    fleet.mdns_gone(&key).await.unwrap();
    let d = fleet.device("24:0A:C4:A3:15:3C").await.unwrap();
    assert!(
        !d.online,
        "a goodbye after the last check-in makes it offline"
    );
    assert!(d.mdns_gone.is_some());
}

#[tokio::test]
async fn discovery_without_mac_is_listed_with_null_mac_and_goes_offline() {
    let (_dir, fleet) = fleet().await;
    let mut events = fleet.events().subscribe();
    let key = fleet
        .mdns_seen(disc("_arduino._tcp", "bench-relay", &[("board", "esp32")]))
        .await
        .unwrap();
    assert!(matches!(
        events.recv().await.unwrap(),
        crate::events::Event::MdnsHost { .. }
    ));
    let listed = serde_json::to_value(fleet.devices_and_hosts().await.unwrap()).unwrap();
    assert_eq!(listed[0]["mac"], serde_json::Value::Null);
    assert_eq!(listed[0]["key"], "_arduino._tcp/bench-relay");
    assert_eq!(listed[0]["source"], "mdns");
    assert_eq!(listed[0]["online"], true);
    assert_eq!(listed[0]["mdns_txt"]["board"], "esp32");

    db::query("UPDATE mdns_hosts SET mdns_seen = '2000-01-01T00:00:00.000Z'")
        .execute(fleet.db())
        .await
        .unwrap();
    fleet.mdns_touch_present().await.unwrap();
    let touched = fleet.mdns_hosts().await.unwrap()[0]
        .mdns_seen
        .clone()
        .unwrap();
    assert!(
        touched.as_str() > "2001",
        "still present, so seen now: {touched}"
    );

    fleet.mdns_gone(&key).await.unwrap();
    assert!(!fleet.mdns_hosts().await.unwrap()[0].online);
    fleet
        .mdns_seen(disc("_arduino._tcp", "bench-relay", &[]))
        .await
        .unwrap();
    assert!(
        fleet.mdns_hosts().await.unwrap()[0].online,
        "back on the LAN"
    );
    fleet.mdns_forget_presence().await.unwrap();
    assert!(
        !fleet.mdns_hosts().await.unwrap()[0].online,
        "a restart forgets presence"
    );
}

#[tokio::test]
async fn a_restart_keeps_devices_that_checked_in_since_their_last_sighting_online() {
    let (_dir, fleet) = fleet().await;
    fleet
        .mdns_seen(disc("_esphomelib._tcp", "lamp", &[("mac", "240AC4A3153C")]))
        .await
        .unwrap();
    let req: CheckinRequest = serde_json::from_value(serde_json::json!({
        "mac": "24:0A:C4:A3:15:3C", "chip": "esp32", "project": "lamp", "version": "1.0.0"
    }))
    .unwrap();
    fleet.checkin(req, None, None, false).await.unwrap();
    backdate(&fleet, "mdns_seen", 5).await;
    fleet.mdns_forget_presence().await.unwrap();
    let d = fleet.device("24:0A:C4:A3:15:3C").await.unwrap();
    assert!(d.mdns_gone.is_some(), "presence forgotten");
    assert!(
        d.online,
        "its check-in came after the last sighting, so it is still online"
    );
}
