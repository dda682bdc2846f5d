//! A one-off look at the LAN, for `otafleet discover`: browse our service type and the device
//! types for a while and report what is there at the end (a service that said goodbye during the
//! scan is dropped). For a person debugging their network, so it reports raw facts: instance,
//! host, every address, port, TXT. [`servers`] is the same look at servers only, for a client
//! that wants one and need not wait out the whole timeout once it has it.

use std::collections::BTreeMap;
use std::time::Duration;

use mdns_sd::{ResolvedService, ServiceDaemon, ServiceEvent};
use serde::Serialize;

use crate::browse::{instance_name, txt_map};
use crate::{Result, DEVICE_SERVICES, SERVER_SERVICE};

/// One service instance seen during a scan.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Seen {
    /// `server` for `_otafleet._tcp`, `device` for the device types.
    pub kind: &'static str,
    /// Service type without the domain: `_otafleet._tcp`.
    pub service: String,
    pub instance: String,
    /// SRV target without the trailing dot: `lab-pc.local`.
    pub host: String,
    /// Every address announced, IPv4 first.
    pub addresses: Vec<String>,
    pub port: u16,
    pub txt: BTreeMap<String, String>,
}

/// Browse for `duration`, then return what is on the LAN, servers first.
pub async fn scan(duration: Duration) -> Result<Vec<Seen>> {
    let types: Vec<&str> = std::iter::once(SERVER_SERVICE)
        .chain(DEVICE_SERVICES)
        .collect();
    let mut out = browse_for(&types, duration, |_| None).await?;
    out.sort_by(|a, b| {
        (a.kind != "server", &a.service, &a.instance).cmp(&(
            b.kind != "server",
            &b.service,
            &b.instance,
        ))
    });
    Ok(out)
}

/// Browse for otafleet servers only, for a client that wants one (the simulator's `--mdns`):
/// like [`scan`] but it can end as soon as it has what it needs. After every change `settle` gets
/// the servers seen so far, in the order they first answered, and may return how much longer to
/// listen (`Some(Duration::ZERO)`: stop now); a later answer can only shorten that, and the
/// browse never outlasts `timeout`. Returns the servers in the order they first answered.
pub async fn servers(
    timeout: Duration,
    settle: impl FnMut(&[Seen]) -> Option<Duration>,
) -> Result<Vec<Seen>> {
    browse_for(&[SERVER_SERVICE], timeout, settle).await
}

/// Browse `types` until `timeout`, or earlier as `settle` asks (see [`servers`]); what is there
/// then, in the order it first answered (a service that said goodbye is dropped).
async fn browse_for(
    types: &[&str],
    timeout: Duration,
    mut settle: impl FnMut(&[Seen]) -> Option<Duration>,
) -> Result<Vec<Seen>> {
    let daemon = ServiceDaemon::new()?;
    // (full name, what it announced), in the order of first answers.
    let mut seen: Vec<(String, Seen)> = Vec::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for ty in types {
        let events = daemon.browse(ty)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(e) = events.recv_async().await {
                if tx.send(e).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match event {
            ServiceEvent::ServiceResolved(s) => {
                let entry = seen_from(&s);
                match seen.iter_mut().find(|(name, _)| *name == s.fullname) {
                    Some((_, old)) => *old = entry,
                    None => seen.push((s.fullname.clone(), entry)),
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                seen.retain(|(name, _)| *name != fullname);
            }
            _ => continue,
        }
        let now: Vec<Seen> = seen.iter().map(|(_, s)| s.clone()).collect();
        if let Some(more) = settle(&now) {
            deadline = deadline.min(tokio::time::Instant::now() + more);
        }
    }
    for ty in types {
        let _ = daemon.stop_browse(ty);
    }
    if let Ok(rx) = daemon.shutdown() {
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.recv_async()).await;
    }
    Ok(seen.into_iter().map(|(_, s)| s).collect())
}

/// What a resolved service announced, addresses IPv4 first.
fn seen_from(s: &ResolvedService) -> Seen {
    let mut ips: Vec<std::net::IpAddr> = s.addresses.iter().map(|a| a.to_ip_addr()).collect();
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    Seen {
        kind: if s.ty_domain == SERVER_SERVICE {
            "server"
        } else {
            "device"
        },
        service: s
            .ty_domain
            .trim_end_matches('.')
            .trim_end_matches(".local")
            .into(),
        instance: instance_name(&s.fullname, &s.ty_domain),
        host: s.host.trim_end_matches('.').into(),
        addresses: ips.iter().map(ToString::to_string).collect(),
        port: s.port,
        txt: txt_map(s),
    }
}

/// A plain-text table for people: one line per service, TXT as `k=v` pairs.
pub fn table(seen: &[Seen]) -> String {
    let rows: Vec<[String; 6]> = seen
        .iter()
        .map(|s| {
            let txt: Vec<String> = s.txt.iter().map(|(k, v)| format!("{k}={v}")).collect();
            [
                s.kind.to_string(),
                format!("{}.{}", s.instance, s.service),
                s.host.clone(),
                s.addresses.join(","),
                s.port.to_string(),
                txt.join(" "),
            ]
        })
        .collect();
    let header = ["KIND", "INSTANCE", "HOST", "ADDRESSES", "PORT", "TXT"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_lists_txt() {
        let s = Seen {
            kind: "server",
            service: "_otafleet._tcp".into(),
            instance: "lab".into(),
            host: "lab.local".into(),
            addresses: vec!["10.0.0.1".into()],
            port: 8470,
            txt: [("v".to_string(), "1".to_string())].into(),
        };
        let t = table(&[s]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("KIND    INSTANCE"));
        assert!(lines[1].contains("lab._otafleet._tcp") && lines[1].ends_with("v=1"));
    }
}
