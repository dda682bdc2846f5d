//! Browsing for devices: one task per service type turns mdns-sd events into core calls.
//! `ServiceResolved` → [`Fleet::mdns_seen`]; `ServiceRemoved` (a goodbye, or the records
//! expired) → [`Fleet::mdns_gone`] for the entry that name was stored under.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use mdns_sd::{ResolvedService, ServiceDaemon, ServiceEvent};
use otafleet_core::discovered::{Discovery, DiscoveryKey};
use otafleet_core::Fleet;
use tokio::task::JoinHandle;

use crate::Result;

/// Start browsing `service_type` (e.g. `_arduino._tcp.local.`) and feed the fleet until the
/// daemon stops the browse (at shutdown).
pub fn spawn(daemon: &ServiceDaemon, service_type: &str, fleet: Fleet) -> Result<JoinHandle<()>> {
    let events = daemon.browse(service_type)?;
    let service_type = service_type.to_string();
    Ok(tokio::spawn(async move {
        // Removal events carry only the full name: remember where each name was stored.
        let mut keys: HashMap<String, DiscoveryKey> = HashMap::new();
        while let Ok(event) = events.recv_async().await {
            match event {
                ServiceEvent::ServiceResolved(service) => {
                    let d = discovery(&service);
                    tracing::info!(service = %d.service, instance = %d.instance, ip = ?d.ip, port = d.port, "device discovered");
                    match fleet.mdns_seen(d).await {
                        Ok(key) => {
                            keys.insert(service.fullname.clone(), key);
                        }
                        Err(e) => {
                            tracing::warn!(fullname = %service.fullname, error = %e, "could not store discovered device")
                        }
                    }
                }
                ServiceEvent::ServiceRemoved(_, fullname) => {
                    if let Some(key) = keys.remove(&fullname) {
                        tracing::info!(%fullname, "device left the LAN");
                        if let Err(e) = fleet.mdns_gone(&key).await {
                            tracing::warn!(%fullname, error = %e, "could not mark device gone");
                        }
                    }
                }
                ServiceEvent::SearchStopped(_) => break,
                _ => {}
            }
        }
        tracing::debug!(%service_type, "browse ended");
    }))
}

/// The core's view of a resolved service.
pub fn discovery(s: &ResolvedService) -> Discovery {
    Discovery {
        service: s
            .ty_domain
            .trim_end_matches('.')
            .trim_end_matches(".local")
            .to_string(),
        instance: instance_name(&s.fullname, &s.ty_domain),
        hostname: s.host.trim_end_matches('.').to_string(),
        ip: preferred_ip(s.addresses.iter().map(|a| a.to_ip_addr())).map(|ip| ip.to_string()),
        port: s.port,
        txt: txt_map(s),
    }
}

/// The TXT record as a map; values that are not UTF-8 are decoded lossily, key-only entries
/// become empty strings.
pub fn txt_map(s: &ResolvedService) -> BTreeMap<String, String> {
    s.txt_properties
        .iter()
        .map(|p| {
            let val = p.val().map(String::from_utf8_lossy).unwrap_or_default();
            (p.key().to_string(), val.into_owned())
        })
        .collect()
}

/// `My\.Lamp._arduino._tcp.local.` → `My.Lamp` (DNS-SD escapes dots and backslashes).
pub fn instance_name(fullname: &str, ty_domain: &str) -> String {
    let escaped = fullname
        .strip_suffix(ty_domain)
        .map(|s| s.trim_end_matches('.'))
        .unwrap_or(fullname);
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// IPv4 first (what an ESP32 on the bench uses), then IPv6; lowest address for a stable choice.
pub fn preferred_ip(addrs: impl Iterator<Item = IpAddr>) -> Option<IpAddr> {
    addrs.min_by_key(|ip| (ip.is_ipv6(), *ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_unescaped() {
        let ty = "_arduino._tcp.local.";
        assert_eq!(
            instance_name("esp32-kitchen._arduino._tcp.local.", ty),
            "esp32-kitchen"
        );
        assert_eq!(
            instance_name("My\\.Lamp._arduino._tcp.local.", ty),
            "My.Lamp"
        );
        assert_eq!(instance_name("odd", ty), "odd");
    }

    #[test]
    fn ipv4_is_preferred() {
        let ips: Vec<IpAddr> = vec![
            "fe80::1".parse().unwrap(),
            "10.0.0.9".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        ];
        assert_eq!(
            preferred_ip(ips.into_iter()),
            Some("10.0.0.3".parse().unwrap())
        );
        assert_eq!(preferred_ip(std::iter::empty()), None);
    }
}
