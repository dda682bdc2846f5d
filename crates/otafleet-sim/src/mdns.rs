//! `--mdns`: find the server as a device on the bench would, by browsing `_otafleet._tcp` (what
//! `otafleet serve` advertises unless `--no-mdns`) with the project's own
//! [`otafleet_mdns::scan::servers`], instead of being told `--server URL`.
//!
//! A device uses the SRV record alone (host + port, fixed paths), so the base URL is built the same
//! way: `http://<IPv4>:<SRV port>`. A server whose TXT says `tls=1` serves HTTPS on that same port
//! beside plain HTTP; the simulator's devices are stock and native clients that speak plain HTTP,
//! so they keep to it (a server run with `--tls require` answers them 426 and says so). TXT is
//! only checked: a server
//! that announces another protocol version (`v`) or another native API base (`api`) than the ones
//! the simulator speaks is skipped, with the reason, rather than run into 404s. An address is
//! used only if it is IPv4: devices use IPv4, and an IPv6 link-local address would need a scope.
//!
//! Which server, when several answer: the one `--mdns-name` names (its instance name, what
//! `otafleet serve --mdns-name` sets), else the first by instance name, so the same LAN gives the
//! same choice every run; [`Found::report`] lists every server that answered, so the choice is
//! never silent. Without `--mdns-name` the browse goes on for [`SETTLE`] after the first usable
//! answer so that the others are heard; with it, it ends at the named server's answer.

use std::net::Ipv4Addr;
use std::time::Duration;

use otafleet_mdns::scan::Seen;

use crate::error::SimError;

/// How long the browse goes on after the first usable answer, so that every server on the LAN
/// has answered and can be listed (responders answer a query within 120 ms, RFC 6762 §6).
pub const SETTLE: Duration = Duration::from_secs(1);

/// What `--mdns`, `--mdns-timeout` and `--mdns-name` ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Find {
    /// The longest wait for an answer.
    pub timeout: Duration,
    /// Only the server advertised under this instance name (case-insensitive).
    pub name: Option<String>,
}

/// The server chosen, and what else answered.
#[derive(Debug, Clone)]
pub struct Found {
    /// Base URL for the devices: `http://10.0.0.5:8470`.
    pub url: String,
    pub chosen: Seen,
    /// Every server that answered, by instance name (`chosen` among them).
    pub answered: Vec<Seen>,
    /// Servers that answered but cannot be used, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Chosen by `--mdns-name` (rather than as the first of several).
    pub by_name: bool,
}

impl Found {
    /// The lines `otafleet-sim` prints about the choice: which servers answered (when more than
    /// the chosen one), which were skipped and why, and the one used.
    pub fn report(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.answered.len() > 1 {
            let all: Vec<String> = self.answered.iter().map(describe).collect();
            let why = if self.by_name {
                "named by --mdns-name".to_string()
            } else {
                "the first by name; pick another with --mdns-name NAME".to_string()
            };
            out.push(format!(
                "mDNS: {} servers answered: {}; using \"{}\" ({why})",
                self.answered.len(),
                all.join(", "),
                self.chosen.instance
            ));
        }
        for (instance, why) in &self.skipped {
            out.push(format!("mDNS: skipped \"{instance}\": {why}"));
        }
        out.push(format!(
            "using server \"{}\" at {} (found over mDNS: host {}, TXT {})",
            self.chosen.instance,
            self.url,
            self.chosen.host,
            txt(&self.chosen)
        ));
        out
    }
}

/// Browse for servers until one that `find` accepts has answered (and, without a name, until
/// the others have had [`SETTLE`] to answer too) or the timeout passes; then choose.
pub async fn find(find: &Find) -> Result<Found, SimError> {
    let answered =
        otafleet_mdns::scan::servers(find.timeout, |seen| settle(find.name.as_deref(), seen))
            .await
            .map_err(|e| SimError::Mdns(format!("could not browse: {e}")))?;
    choose(find, answered)
}

/// How much longer to listen, given what has answered so far.
fn settle(name: Option<&str>, seen: &[Seen]) -> Option<Duration> {
    let mut usable = seen.iter().filter(|s| usable(s).is_ok());
    match name {
        Some(name) => usable.any(|s| named(s, name)).then_some(Duration::ZERO),
        None => usable.next().map(|_| SETTLE),
    }
}

fn named(s: &Seen, name: &str) -> bool {
    s.instance.eq_ignore_ascii_case(name.trim())
}

/// The address and scheme to reach `s` at, or why the simulator cannot use it.
fn usable(s: &Seen) -> Result<(Ipv4Addr, &'static str), String> {
    if let Some(v) = s.txt.get("v").filter(|v| *v != "1") {
        return Err(format!(
            "it speaks device protocol v={v}, the simulator v=1"
        ));
    }
    if let Some(api) = s.txt.get("api").filter(|a| *a != "/api/v1") {
        return Err(format!(
            "its native API is at {api}, the simulator's devices use /api/v1"
        ));
    }
    let ip = s
        .addresses
        .iter()
        .find_map(|a| a.parse::<Ipv4Addr>().ok())
        .ok_or_else(|| {
            format!(
                "no IPv4 address announced (only {})",
                if s.addresses.is_empty() {
                    "none".to_string()
                } else {
                    s.addresses.join(", ")
                }
            )
        })?;
    // Plain HTTP even when `tls=1`: HTTPS is served on the same port beside it (module doc).
    Ok((ip, "http"))
}

/// Pick the server from what answered (see the module doc), or say why none will do.
pub fn choose(find: &Find, mut answered: Vec<Seen>) -> Result<Found, SimError> {
    answered.sort_by(|a, b| {
        (a.instance.to_lowercase(), &a.instance).cmp(&(b.instance.to_lowercase(), &b.instance))
    });
    let waited = format!("{:.1} s", find.timeout.as_secs_f64());
    if answered.is_empty() {
        return Err(SimError::Mdns(format!(
            "no otafleet server answered (_otafleet._tcp) within {waited}: is `otafleet serve` \
             running on this LAN without --no-mdns, and does multicast reach this host? Or give \
             --server URL"
        )));
    }
    let candidates: Vec<&Seen> = answered
        .iter()
        .filter(|s| find.name.as_deref().is_none_or(|n| named(s, n)))
        .collect();
    if candidates.is_empty() {
        let all: Vec<String> = answered.iter().map(describe).collect();
        return Err(SimError::Mdns(format!(
            "no server named \"{}\" answered within {waited}; these did: {}",
            find.name.as_deref().unwrap_or_default(),
            all.join(", ")
        )));
    }
    let mut skipped = Vec::new();
    for s in candidates {
        match usable(s) {
            Ok((ip, scheme)) => {
                return Ok(Found {
                    url: format!("{scheme}://{ip}:{}", s.port),
                    chosen: s.clone(),
                    skipped,
                    by_name: find.name.is_some(),
                    answered,
                })
            }
            Err(why) => skipped.push((s.instance.clone(), why)),
        }
    }
    let why: Vec<String> = skipped
        .iter()
        .map(|(i, why)| format!("\"{i}\": {why}"))
        .collect();
    Err(SimError::Mdns(format!(
        "no server the simulator can use answered within {waited}: {}",
        why.join("; ")
    )))
}

/// `"lab" (lab-pc.local, 10.0.0.5:8470)`
fn describe(s: &Seen) -> String {
    format!(
        "\"{}\" ({}, {}:{})",
        s.instance,
        s.host,
        s.addresses.first().map_or("no address", String::as_str),
        s.port
    )
}

fn txt(s: &Seen) -> String {
    if s.txt.is_empty() {
        return "none".into();
    }
    let pairs: Vec<String> = s.txt.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(instance: &str, addresses: &[&str], txt: &[(&str, &str)]) -> Seen {
        Seen {
            kind: "server",
            service: "_otafleet._tcp".into(),
            instance: instance.into(),
            host: format!("{}.local", instance.to_lowercase()),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            port: 8470,
            txt: txt
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const V1: &[(&str, &str)] = &[("v", "1"), ("api", "/api/v1"), ("tls", "0")];

    fn find(name: Option<&str>) -> Find {
        Find {
            timeout: Duration::from_secs(3),
            name: name.map(String::from),
        }
    }

    #[test]
    fn one_server_gives_an_ipv4_url_on_its_srv_port() {
        let s = server("lab", &["10.0.0.5", "fe80::1"], V1);
        let f = choose(&find(None), vec![s]).unwrap();
        assert_eq!(f.url, "http://10.0.0.5:8470");
        let report = f.report();
        assert_eq!(report.len(), 1, "one server: no list, {report:?}");
        assert!(
            report[0].contains("\"lab\" at http://10.0.0.5:8470"),
            "{report:?}"
        );
    }

    #[test]
    fn of_several_the_first_by_name_is_used_and_all_are_listed() {
        let answered = vec![
            server("bench", &["10.0.0.7"], V1),
            server("Attic", &["10.0.0.9"], V1),
        ];
        let f = choose(&find(None), answered).unwrap();
        assert_eq!(f.chosen.instance, "Attic");
        assert_eq!(f.url, "http://10.0.0.9:8470");
        let list = &f.report()[0];
        assert!(
            list.contains("2 servers answered")
                && list.contains("\"bench\" (bench.local, 10.0.0.7:8470)")
                && list.contains("--mdns-name"),
            "{list}"
        );
    }

    #[test]
    fn mdns_name_picks_its_server_case_insensitively() {
        let answered = vec![
            server("attic", &["10.0.0.9"], V1),
            server("Bench", &["10.0.0.7"], V1),
        ];
        let f = choose(&find(Some("bench")), answered.clone()).unwrap();
        assert_eq!(f.url, "http://10.0.0.7:8470");
        assert!(f.report()[0].contains("named by --mdns-name"));
        let err = choose(&find(Some("cellar")), answered)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no server named \"cellar\"") && err.contains("\"attic\""),
            "{err}"
        );
    }

    #[test]
    fn servers_it_cannot_use_are_skipped_with_the_reason() {
        let answered = vec![
            server("a-v6-only", &["fe80::1"], V1),
            server("b-v2", &["10.0.0.2"], &[("v", "2")]),
            server("c-tls", &["10.0.0.3"], &[("v", "1"), ("tls", "1")]),
        ];
        let f = choose(&find(None), answered.clone()).unwrap();
        assert_eq!(
            f.url, "http://10.0.0.3:8470",
            "tls=1: HTTPS beside plain HTTP on the same port; the sim's devices speak plain HTTP"
        );
        let report = f.report().join("\n");
        assert!(
            report.contains("skipped \"a-v6-only\": no IPv4"),
            "{report}"
        );
        assert!(report.contains("skipped \"b-v2\": it speaks device protocol v=2"));
        let err = choose(&find(None), answered[..2].to_vec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no server the simulator can use"), "{err}");
        let bare = server("srv-only", &["10.0.0.4"], &[]);
        assert_eq!(
            choose(&find(None), vec![bare]).unwrap().url,
            "http://10.0.0.4:8470",
            "TXT is optional: devices use the SRV record alone"
        );
    }

    #[test]
    fn nothing_answering_is_a_clear_error() {
        let err = choose(&find(None), vec![]).unwrap_err().to_string();
        assert!(
            err.contains("no otafleet server answered") && err.contains("3.0 s"),
            "{err}"
        );
    }

    #[test]
    fn the_browse_ends_at_the_named_server_or_settles_after_the_first_usable_one() {
        let v6 = server("v6", &["fe80::1"], V1);
        let lab = server("lab", &["10.0.0.5"], V1);
        assert_eq!(settle(None, std::slice::from_ref(&v6)), None);
        assert_eq!(settle(None, &[v6.clone(), lab.clone()]), Some(SETTLE));
        assert_eq!(
            settle(Some("LAB"), std::slice::from_ref(&lab)),
            Some(Duration::ZERO)
        );
        assert_eq!(settle(Some("other"), &[lab]), None);
    }
}
