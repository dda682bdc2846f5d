//! The `Host` check, a guard against DNS rebinding: a web page on another site that makes its
//! own host name resolve to this server's address would otherwise reach the admin API and the
//! device routes from a browser on the LAN. Such requests carry the attacker's host name in
//! `Host`, so only names that mean this server are answered:
//!
//! - IP literals (IPv4, `[IPv6]`), with or without a port: what devices configured with the
//!   server's address send (Arduino `HTTPUpdate` sends the host it was given, esp32FOTA the
//!   host of its manifest URL), and what the desktop window uses;
//! - `localhost`, this machine's host name and `<host name>.local`, the advertised mDNS name
//!   `<name>.local`;
//! - every name given with `otafleet serve --allowed-host NAME` (a DNS name devices or browsers
//!   use for this server).
//!
//! Requests without `Host` (HTTP/1.0 devices) are answered. Everything else gets 421 with a
//! message naming `--allowed-host`, and is logged.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::{AppState, ServerInfo};

/// The host names this server answers to, besides IP literals (module docs).
#[derive(Debug, Clone)]
pub struct HostPolicy {
    names: HashSet<String>,
}

impl HostPolicy {
    /// `localhost`, this machine's host name (and `.local`), the mDNS name (`.local`) and the
    /// names the front end was told to allow.
    pub fn new(info: &ServerInfo) -> Self {
        let mut names = HashSet::new();
        names.insert("localhost".to_string());
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let host = normalise(&host);
        if !host.is_empty() {
            // A fully qualified host name also stands for its first label.
            let label = host.split('.').next().unwrap_or(&host).to_string();
            names.insert(format!("{label}.local"));
            names.insert(label);
            names.insert(host);
        }
        if let Some(mdns) = &info.mdns_name {
            // An instance name or a full service name: its first label, as a `.local` host.
            let label = normalise(mdns.split('.').next().unwrap_or(mdns));
            if !label.is_empty() {
                names.insert(format!("{label}.local"));
            }
        }
        for name in &info.allowed_hosts {
            let name = normalise(name);
            if !name.is_empty() {
                names.insert(name);
            }
        }
        Self { names }
    }

    /// Whether a `Host` header value names this server.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim();
        if host.is_empty() {
            // No name at all is no rebinding: browsers always send the name they resolved.
            return true;
        }
        if let Some(rest) = host.strip_prefix('[') {
            // `[IPv6]` or `[IPv6]:port`
            return rest
                .split_once(']')
                .is_some_and(|(ip, port)| ip.parse::<Ipv6Addr>().is_ok() && is_port(port));
        }
        if host.parse::<Ipv6Addr>().is_ok() {
            return true;
        }
        let name = match host.rsplit_once(':') {
            Some((name, port)) if is_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        };
        if name.parse::<Ipv4Addr>().is_ok() {
            return true;
        }
        self.names.contains(&normalise(name))
    }
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Empty, or `:` and digits.
fn is_port(s: &str) -> bool {
    s.is_empty()
        || s.strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Every route, devices' and admins' alike: refuse a `Host` that does not name this server.
/// Changes nothing; a refused request never reaches a handler.
pub async fn require_known_host(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let host = match req.headers().get(header::HOST) {
        None => return next.run(req).await,
        Some(v) => v.to_str().unwrap_or(""),
    };
    if state.hosts.allows(host) {
        return next.run(req).await;
    }
    let shown: String = host.chars().take(100).collect();
    tracing::warn!(host = %shown, path = %req.uri().path(), "request for a host name this server does not answer to refused (DNS rebinding guard)");
    ApiError::with_status(
        StatusCode::MISDIRECTED_REQUEST,
        "host_not_allowed",
        format!(
            "this server does not answer to the host name {shown:?}: only its IP addresses, localhost and its own host name are allowed (a guard against DNS rebinding); if devices or browsers reach it by that name, start it with --allowed-host NAME"
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_own_names_and_allowed_names_pass_others_do_not() {
        let p = HostPolicy::new(&ServerInfo {
            mdns_name: Some("lab-server".into()),
            allowed_hosts: vec!["OTA.Example.lan.".into()],
            ..Default::default()
        });
        for ok in [
            "192.168.1.20",
            "192.168.1.20:8470",
            "[::1]",
            "[fe80::1]:8470",
            "::1",
            "localhost",
            "LOCALHOST:8470",
            "lab-server.local",
            "lab-server.local.:8470",
            "ota.example.lan",
            "ota.example.lan:80",
        ] {
            assert!(p.allows(ok), "{ok} should be allowed");
        }
        for bad in [
            "evil.example.com",
            "evil.example.com:8470",
            "192.168.1.20.evil.com",
            "localhost.evil.com",
            "[::1",
            "[::1]x",
            "192.168.1.20:80x",
            "lab-server",
        ] {
            assert!(!p.allows(bad), "{bad} should be refused");
        }
    }
}
