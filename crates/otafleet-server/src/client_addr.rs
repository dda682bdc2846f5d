//! A request's client address behind a load balancer (`otafleet serve --trusted-proxy CIDR`).
//!
//! Every handler that records or checks a device's address reads `ConnectInfo<SocketAddr>` (the
//! connection's peer, put on each request by `conn.rs`). Behind nginx or HAProxy that peer is
//! the proxy, so this layer, outermost, replaces it with the client's address once — [`client`]
//! is the one function that decides it — and every route (check-ins of all protocols, the
//! legacy API, ESP Admin devices, the TLS checks) sees the device's own address.
//!
//! Only a peer inside one of the trusted networks is believed: from any other peer the
//! `X-Forwarded-For` and `Forwarded` headers are ignored, so a device cannot claim another's
//! address. The client is the right-most address of the chain that is not itself a trusted
//! proxy (a proxy appends the peer it saw; what a client wrote in front of that is its own
//! claim). `Forwarded` (RFC 7239) wins over `X-Forwarded-For` when both are present; an
//! unreadable header leaves the peer's address. A forwarded address has no port (0 unless
//! `Forwarded` gives one).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::AppState;

/// The connection's own peer (the proxy), kept on a request whose `ConnectInfo` was replaced.
#[derive(Debug, Clone, Copy)]
pub struct ProxyPeer(pub SocketAddr);

/// Whether `ip` is inside one of `trusted`.
fn trusted_ip(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client's address: `peer` itself unless `peer` is a trusted proxy that says whom it
/// forwards for.
pub fn client(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> SocketAddr {
    if trusted.is_empty() || !trusted_ip(peer.ip(), trusted) {
        return peer;
    }
    let chain = forwarded_chain(headers).or_else(|| x_forwarded_for_chain(headers));
    let Some(chain) = chain else {
        return peer;
    };
    // Right to left: skip the trusted proxies the request passed through.
    for addr in chain.iter().rev() {
        if !trusted_ip(addr.ip(), trusted) {
            return *addr;
        }
    }
    // Every hop is trusted: the left-most is the farthest known.
    chain.first().copied().unwrap_or(peer)
}

/// `X-Forwarded-For: a, b, c` (every such header, in order); `None` when absent or any element
/// is not an address.
fn x_forwarded_for_chain(headers: &HeaderMap) -> Option<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        for part in v.to_str().ok()?.split(',') {
            let ip: IpAddr = part.trim().parse().ok()?;
            out.push(SocketAddr::new(ip, 0));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `Forwarded: for=a;proto=http, for="[2001:db8::1]:4711"` (RFC 7239), the `for` of each
/// element; `None` when absent or a `for` is not an address (`unknown`, an obfuscated name).
fn forwarded_chain(headers: &HeaderMap) -> Option<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for v in headers.get_all("forwarded") {
        for element in v.to_str().ok()?.split(',') {
            let Some(value) = element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            }) else {
                continue;
            };
            out.push(forwarded_node(value.trim_matches('"'))?);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A `for=` node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn forwarded_node(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let ip = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    Some(SocketAddr::new(ip.parse().ok()?, 0))
}

/// The layer: replace `ConnectInfo` with [`client`]'s answer (installed only when
/// `--trusted-proxy` names any network).
pub(crate) async fn resolve(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let trusted = &state.info.trusted_proxies;
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let addr = client(peer, req.headers(), trusted);
        if addr != peer {
            req.extensions_mut().insert(ProxyPeer(peer));
            req.extensions_mut().insert(ConnectInfo(addr));
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const PROXY: &str = "10.0.0.2:50000";

    #[test]
    fn an_untrusted_peer_is_itself_whatever_it_claims() {
        let peer: SocketAddr = "192.168.1.50:4000".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "192.168.1.99"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        assert_eq!(client(peer, &h, &nets(&["10.0.0.0/24"])), peer);
        assert_eq!(client(peer, &h, &[]), peer);
    }

    #[test]
    fn a_trusted_proxy_names_the_right_most_untrusted_hop() {
        let peer: SocketAddr = PROXY.parse().unwrap();
        let trusted = nets(&["10.0.0.0/24"]);
        // The client wrote 6.6.6.6 itself; the proxy appended the address it saw.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 192.168.1.50")]);
        assert_eq!(
            client(peer, &h, &trusted),
            "192.168.1.50:0".parse().unwrap()
        );
        // Two proxies: the inner one is trusted too.
        let h = headers(&[("x-forwarded-for", "192.168.1.50, 10.0.0.7")]);
        assert_eq!(
            client(peer, &h, &trusted),
            "192.168.1.50:0".parse().unwrap()
        );
        // No header: the proxy itself.
        assert_eq!(client(peer, &HeaderMap::new(), &trusted), peer);
        // Garbage: the proxy itself.
        let h = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client(peer, &h, &trusted), peer);
    }

    #[test]
    fn forwarded_wins_and_keeps_ports_and_ipv6() {
        let peer: SocketAddr = PROXY.parse().unwrap();
        let trusted = nets(&["10.0.0.0/24"]);
        let h = headers(&[
            ("x-forwarded-for", "192.168.1.1"),
            (
                "forwarded",
                "for=\"[2001:db8::1]:4711\";proto=http, for=10.0.0.9",
            ),
        ]);
        assert_eq!(
            client(peer, &h, &trusted),
            "[2001:db8::1]:4711".parse().unwrap()
        );
        let h = headers(&[("forwarded", "proto=http;for=192.168.1.7")]);
        assert_eq!(client(peer, &h, &trusted), "192.168.1.7:0".parse().unwrap());
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_an_ipv4_network() {
        let peer: SocketAddr = "[::ffff:10.0.0.2]:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "192.168.1.50")]);
        assert_eq!(
            client(peer, &h, &nets(&["10.0.0.0/8"])),
            "192.168.1.50:0".parse().unwrap()
        );
    }
}
