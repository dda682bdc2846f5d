//! `GET /api/v1/tls` and `GET /api/v1/tls/ca.pem`: how to reach this server over HTTPS and what
//! to trust — the CA in PEM, its SHA-256 fingerprint, the certificate's names and ready-to-paste
//! snippets for each kind of device.
//!
//! **Who may call: anyone, without a token; nothing changes.** Everything here is public by
//! nature: the CA certificate is what every device and browser is told to trust, its fingerprint
//! is advertised over mDNS, and the names are the machine's own addresses. Both routes stay
//! reachable over plain HTTP also under `--tls require`, so a device or a person can fetch the CA
//! (and must then compare its fingerprint with the one the UI or the server log shows).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use otafleet_core::tls::snippets::{self, Snippet};
use otafleet_core::tls::{Origin, San};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::tls::Mode;
use crate::AppState;

/// HTTPS on this server.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TlsInfo {
    /// `off`: plain HTTP only; `auto`: HTTPS and plain HTTP on the same port; `require`: HTTPS
    /// only (plain HTTP answered from this machine alone).
    pub mode: Mode,
    /// HTTPS addresses of this server, one per LAN address, then `<host>.local`; empty when off.
    pub urls: Vec<String>,
    /// The CA's certificate in PEM; null when TLS is off or the admin's own certificate is used.
    pub ca_pem: Option<String>,
    /// SHA-256 of the CA's certificate, upper-case hex pairs joined by colons (as browsers and
    /// `openssl x509 -fingerprint -sha256` show it). The mDNS TXT record carries the same value as
    /// 64 lower-case hex digits without colons (`ca=`).
    pub ca_sha256: Option<String>,
    /// The server certificate in use; null when off.
    pub certificate: Option<ServerCertificate>,
    /// Code to paste into a device so that it trusts the CA (empty unless the CA is ours).
    pub snippets: Vec<Snippet>,
}

/// The server certificate in use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerCertificate {
    /// `generated` (by this server's CA, re-issued when the machine's addresses change) or
    /// `user` (`--tls-cert`).
    pub origin: &'static str,
    /// The names it carries: `DNS:…` and `IP:…`.
    pub names: Vec<String>,
    /// When it ends (RFC 3339).
    pub not_after: String,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tls_info))
        .routes(routes!(ca_pem))
}

/// How to reach this server over HTTPS and what to trust: the CA, its fingerprint, the
/// certificate's names and snippets for Arduino, ESP-IDF, esp32FOTA, ESP Admin and curl.
/// Anyone may read it (module docs); nothing changes.
#[utoipa::path(get, operation_id = "tls", path = "/api/v1/tls", tag = "server",
    responses((status = 200, body = TlsInfo)))]
async fn tls_info(State(state): State<AppState>, headers: HeaderMap) -> Json<TlsInfo> {
    let Some(tls) = state.info.tls.as_ref() else {
        return Json(TlsInfo {
            mode: Mode::Off,
            urls: Vec::new(),
            ca_pem: None,
            ca_sha256: None,
            certificate: None,
            snippets: Vec::new(),
        });
    };
    let material = tls.material();
    let port = state.info.listen.map(|a| a.port()).unwrap_or(443);
    let with_port = |host: &str| {
        if port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{port}")
        }
    };
    let lan = lan_ips(&material);
    let mut urls: Vec<String> = lan
        .iter()
        .map(|ip| match ip {
            std::net::IpAddr::V4(v4) => with_port(&v4.to_string()),
            std::net::IpAddr::V6(v6) => with_port(&format!("[{v6}]")),
        })
        .collect();
    urls.extend(material.sans().iter().filter_map(|s| match s {
        San::Dns(name) if name.ends_with(".local") => Some(with_port(name)),
        _ => None,
    }));
    let host = device_host(&lan, &headers);
    let base = with_port(&if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    });
    let fingerprint = material.ca_fingerprint().map(|f| f.colon());
    let snippets = match (material.ca_pem(), &fingerprint) {
        (Some(pem), Some(fp)) => snippets::all(pem, fp, &base, &host),
        _ => Vec::new(),
    };
    Json(TlsInfo {
        mode: tls.mode(),
        urls,
        ca_pem: material.ca_pem().map(str::to_owned),
        ca_sha256: fingerprint,
        certificate: Some(ServerCertificate {
            origin: if material.origin() == Origin::User {
                "user"
            } else {
                "generated"
            },
            names: material.sans().iter().map(ToString::to_string).collect(),
            not_after: material
                .not_after()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }),
        snippets,
    })
}

/// The CA's certificate as a file (`otafleet-ca.pem`) to import into a browser or a tool.
/// Anyone may read it (module docs). 404 `no_ca` when TLS is off or the admin's own certificate
/// is used.
#[utoipa::path(get, operation_id = "tls_ca_pem", path = "/api/v1/tls/ca.pem", tag = "server",
    responses((status = 200, content_type = "application/x-pem-file", body = String),
              (status = 404, body = crate::error::ErrorBody)))]
async fn ca_pem(State(state): State<AppState>) -> ApiResult<Response> {
    let pem = state
        .info
        .tls
        .as_ref()
        .and_then(|t| t.material().ca_pem().map(str::to_owned))
        .ok_or_else(|| {
            ApiError::with_status(
                StatusCode::NOT_FOUND,
                "no_ca",
                "this server has no CA of its own to give: HTTPS is off (otafleet serve --tls off) \
                 or it serves the certificate given with --tls-cert, whose issuer you already have",
            )
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"otafleet-ca.pem\"",
            ),
        ],
        pem,
    )
        .into_response())
}

/// The host to build devices with: the one this request used when a device could use it too,
/// else the first LAN address of the certificate (`lan`, IPv4 first), else `localhost`.
fn device_host(lan: &[std::net::IpAddr], headers: &HeaderMap) -> String {
    let asked = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| strip_port(h).to_string())
        .filter(|h| !is_local(h));
    asked
        .or_else(|| lan.first().map(|ip| ip.to_string()))
        .unwrap_or_else(|| "localhost".into())
}

/// The certificate's addresses other than loopback, IPv4 first (what ESP devices use).
fn lan_ips(material: &otafleet_core::tls::Material) -> Vec<std::net::IpAddr> {
    let mut lan: Vec<std::net::IpAddr> = material
        .sans()
        .iter()
        .filter_map(|s| match s {
            San::Ip(ip) if !ip.is_loopback() => Some(*ip),
            _ => None,
        })
        .collect();
    lan.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    lan
}

/// [`device_host`] for a server's certificate material.
pub(crate) fn device_host_for(
    material: &otafleet_core::tls::Material,
    headers: &HeaderMap,
) -> String {
    device_host(&lan_ips(material), headers)
}

pub(crate) fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

fn is_local(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_without_port() {
        assert_eq!(strip_port("10.0.0.5:8470"), "10.0.0.5");
        assert_eq!(strip_port("lab.local"), "lab.local");
        assert_eq!(strip_port("[fe80::1]:8470"), "fe80::1");
        assert!(is_local("127.0.0.1"));
        assert!(is_local("LOCALHOST"));
        assert!(!is_local("10.0.0.5"));
    }
}
