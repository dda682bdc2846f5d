//! Devices found on the LAN by mDNS: what the browser in `otafleet-mdns` saw ([`Discovery`]), how
//! it is keyed ([`DiscoveryKey`]), and the rule that makes check-ins and mDNS presence agree on
//! whether a device is online ([`online`]).
//!
//! Devices are keyed by MAC. A discovered service gives one when its TXT record has `mac` (ESPHome,
//! WLED) or when its instance is ArduinoOTA's default ESP32 host name `esp32-<12 hex>`; then it
//! becomes (or merges into) a row of `devices` with `source = 'mdns'`, and a later check-in from
//! the same MAC lands on the same row. Without a MAC (an ArduinoOTA sketch with a custom host
//! name, an ESP8266 whose default name carries only half the MAC) the service is kept in
//! `mdns_hosts` under its service type + instance name and listed as a [`DiscoveredHost`] with
//! `mac: null`: a lab engineer sees every board on the bench, but nothing can be deployed to it by
//! MAC until it checks in. The database side lives in [`store`].

pub mod store;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::devices::Device;
use crate::validate;

/// One resolved mDNS service instance, as the browser hands it to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Service type without the domain: `_arduino._tcp`, `_esphomelib._tcp`.
    pub service: String,
    /// Instance name, unescaped: `esp32-kitchen`, `living-room-sensor`.
    pub instance: String,
    /// Host name without the trailing dot: `esp32-kitchen.local`.
    pub hostname: String,
    /// The address to show (the browser prefers IPv4).
    pub ip: Option<String>,
    pub port: u16,
    /// TXT record; keys as sent, values as UTF-8 (lossy).
    pub txt: BTreeMap<String, String>,
}

/// Where a discovery was stored, so that its removal finds the same entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DiscoveryKey {
    Mac(String),
    Host { service: String, instance: String },
}

impl Discovery {
    /// The device's MAC, when the service tells it: TXT `mac` (12 hex digits or colon form),
    /// else ArduinoOTA's default ESP32 instance name `esp32-<12 hex digits>`.
    pub fn mac(&self) -> Option<String> {
        let from_txt = self
            .txt
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("mac"))
            .and_then(|(_, v)| validate::mac(v).ok());
        from_txt.or_else(|| {
            let rest = self.instance.strip_prefix("esp32-")?;
            (rest.len() == 12).then(|| validate::mac(rest).ok())?
        })
    }

    /// A name for people: ESPHome's `friendly_name`, else the instance name ([`mdns_name`]).
    pub fn display_name(&self) -> Option<String> {
        mdns_name(&self.instance, &self.txt)
    }

    pub fn key(&self) -> DiscoveryKey {
        match self.mac() {
            Some(mac) => DiscoveryKey::Mac(mac),
            None => DiscoveryKey::Host {
                service: self.service.clone(),
                instance: self.instance.clone(),
            },
        }
    }
}

/// The name a service announces for people: ESPHome's TXT `friendly_name`, else the instance
/// name; `None` when that is not a usable name ([`validate::name`]). A device's mDNS name is read
/// from its stored announcement with this each time, never stored as its name (migration 0015).
pub fn mdns_name(instance: &str, txt: &BTreeMap<String, String>) -> Option<String> {
    let friendly = txt.get("friendly_name").filter(|s| !s.trim().is_empty());
    validate::name(friendly.map_or(instance, String::as_str))
        .ok()
        .filter(|n| !n.is_empty())
}

/// Whether a device is online, from its last check-in and its mDNS presence.
///
/// Present on mDNS → online. Otherwise a check-in within `offline_after_s` (the threshold in effect,
/// [`crate::settings::Timing::offline_after_s`]) makes it
/// online, unless its mDNS service left *after* that check-in: the latest news wins, so a device
/// that says goodbye goes offline at once instead of lingering for three check-in intervals.
pub fn online(
    offline_after_s: i64,
    last_checkin: Option<&str>,
    mdns_seen: Option<&str>,
    mdns_gone: Option<&str>,
) -> bool {
    let present = mdns_seen.is_some() && mdns_gone.is_none();
    let checked_in_recently = last_checkin
        .and_then(crate::time::age_seconds)
        .is_some_and(|age| age <= offline_after_s);
    let left_since = match (mdns_gone, last_checkin) {
        (Some(gone), Some(checkin)) => gone >= checkin,
        (Some(_), None) => true,
        (None, _) => false,
    };
    present || (checked_in_recently && !left_since)
}

/// The later of two stored timestamps (fixed width, so text order is time order).
pub fn latest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a >= b { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A discovered service with no MAC, listed next to the devices. Same field names as
/// [`Device`] where they mean the same thing; `mac` is always null and `key` identifies it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiscoveredHost {
    /// `<service>/<instance>`, e.g. `_arduino._tcp/bench-relay`.
    pub key: String,
    /// Always null: the service did not tell its MAC. (Typed `null` in the OpenAPI document, so
    /// a client tells a host from a [`Device`], whose `mac` is a string, by `mac === null`.)
    #[schema(schema_with = always_null, required = true)]
    pub mac: Option<String>,
    pub name: Option<String>,
    pub hostname: String,
    pub ip: Option<String>,
    /// Always `mdns`.
    pub source: String,
    pub online: bool,
    pub last_seen: Option<String>,
    pub created_at: String,
    pub mdns_service: String,
    pub mdns_instance: String,
    pub mdns_port: i64,
    pub mdns_txt: BTreeMap<String, String>,
    pub mdns_seen: Option<String>,
    pub mdns_gone: Option<String>,
}

/// The schema of a field that is always `null`.
fn always_null() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Null)
        .description(Some(
            "Always null: the service did not tell its MAC (a Device's `mac` is a string).",
        ))
        .build()
}

/// One row of `GET /api/v1/devices`: a device (keyed by MAC, `mac` a string) or a MAC-less
/// discovered host (`mac` null, `key` set). In the OpenAPI document a `oneOf` of the two.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ListedDevice {
    Device(Box<Device>),
    Host(Box<DiscoveredHost>),
}

#[cfg(test)]
mod tests;
