//! What the server advertises: `_otafleet._tcp` on its HTTP port, with a TXT record that only
//! confirms fixed facts. A device that reads nothing but the SRV record (host + port) uses the
//! fixed paths below; nothing in TXT may be required.
//!
//! | TXT | meaning |
//! | --- | --- |
//! | `v=1` | device protocol version: the paths below |
//! | `api=/api/v1` | base of the native API (`POST /api/v1/device/checkin`, ...) |
//! | `tls=0` / `tls=1` | `1`: the same port also speaks HTTPS (a connection's first byte decides) |
//! | `ca=<64 hex>` | with `tls=1` and a CA of the server's own: the SHA-256 of the CA certificate, lower-case hex; a device that has no CA configured may trust the one `GET /api/v1/tls/ca.pem` gives when its hash matches (trust on first use) |
//!
//! Fixed paths on `http(s)://<SRV host>:<SRV port>`: `/api/v1/device/checkin`,
//! `/api/v1/device/progress`, `/api/v1/device/firmware/<sha256>` (native), `/ota/arduino`
//! (Arduino `HTTPUpdate`), `/ota/esp32fota.json` (esp32FOTA), `/api/firmware` (legacy).

use std::net::{IpAddr, SocketAddr};

use mdns_sd::ServiceInfo;

use crate::{Result, SERVER_SERVICE};

/// What the TXT record says about HTTPS when the server serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsTxt {
    /// SHA-256 of the server's own CA, lower-case hex; `None` for the admin's own certificate.
    pub ca_sha256: Option<String>,
}

/// What to advertise and under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// Instance name people see in a browser: `--mdns-name`, default the host name.
    pub instance: String,
    /// DNS label for the SRV target (`<host>.local.`), derived from the machine's host name.
    pub host_label: String,
    /// The HTTP port the server listens on (the real one, after binding port 0).
    pub port: u16,
    /// Whether that port speaks HTTPS.
    pub tls: bool,
    /// SHA-256 of the server's own CA certificate, lower-case hex (with `tls`).
    pub ca_sha256: Option<String>,
    /// `None`: follow every non-loopback interface's addresses as they change (addr_auto).
    /// `Some(ip)`: the server listens on that address only, so advertise only it.
    pub only_ip: Option<IpAddr>,
}

impl Advertisement {
    /// The advertisement for a server bound to `listen`, or `None` when it listens on loopback
    /// only: devices could not reach the address, so announcing it would only mislead them.
    pub fn for_listener(listen: SocketAddr, instance: Option<String>) -> Option<Self> {
        let ip = listen.ip();
        if ip.is_loopback() {
            return None;
        }
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let instance = instance
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| host.clone());
        Some(Self {
            instance,
            host_label: host_label(&host),
            port: listen.port(),
            tls: false,
            ca_sha256: None,
            only_ip: (!ip.is_unspecified()).then_some(ip),
        })
    }

    /// The TXT record, in a fixed order.
    pub fn txt(&self) -> Vec<(&'static str, &str)> {
        let mut txt = vec![
            ("v", "1"),
            ("api", "/api/v1"),
            ("tls", if self.tls { "1" } else { "0" }),
        ];
        if let (true, Some(ca)) = (self.tls, self.ca_sha256.as_deref()) {
            txt.push(("ca", ca));
        }
        txt
    }

    /// The mdns-sd service description.
    pub fn service_info(&self) -> Result<ServiceInfo> {
        let host = format!("{}.local.", self.host_label);
        let txt = self.txt();
        let info = match self.only_ip {
            Some(ip) => ServiceInfo::new(
                SERVER_SERVICE,
                &self.instance,
                &host,
                ip,
                self.port,
                &txt[..],
            )?,
            None => ServiceInfo::new(
                SERVER_SERVICE,
                &self.instance,
                &host,
                (),
                self.port,
                &txt[..],
            )?
            .enable_addr_auto(),
        };
        Ok(info)
    }
}

/// A valid DNS label from a host name: first label, lower case, only `a-z0-9-`, at most 63
/// characters; `otafleet` when nothing usable is left.
pub fn host_label(host: &str) -> String {
    let first = host
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mapped: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed.is_empty() {
        "otafleet".into()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_is_v1_api_tls() {
        let a = Advertisement::for_listener("0.0.0.0:8470".parse().unwrap(), Some("Bench".into()))
            .unwrap();
        assert_eq!(a.txt(), [("v", "1"), ("api", "/api/v1"), ("tls", "0")]);
        let mut tls = a.clone();
        tls.tls = true;
        tls.ca_sha256 = Some("ab".repeat(32));
        let ca = "ab".repeat(32);
        assert_eq!(
            tls.txt(),
            [
                ("v", "1"),
                ("api", "/api/v1"),
                ("tls", "1"),
                ("ca", ca.as_str())
            ]
        );
        let info = tls.service_info().unwrap();
        assert_eq!(info.get_property_val_str("tls"), Some("1"));
        assert_eq!(info.get_property_val_str("ca"), Some(ca.as_str()));
        assert_eq!(a.instance, "Bench");
        assert_eq!(a.port, 8470);
        assert_eq!(a.only_ip, None, "0.0.0.0 follows every interface");
        let info = a.service_info().unwrap();
        assert_eq!(info.get_fullname(), "Bench._otafleet._tcp.local.");
        assert_eq!(info.get_property_val_str("api"), Some("/api/v1"));
        assert!(info.is_addr_auto());
    }

    #[test]
    fn loopback_listener_is_not_advertised_and_specific_ip_is_kept() {
        assert!(Advertisement::for_listener("127.0.0.1:0".parse().unwrap(), None).is_none());
        let a =
            Advertisement::for_listener("10.0.0.5:80".parse().unwrap(), Some(" ".into())).unwrap();
        assert_eq!(a.only_ip, Some("10.0.0.5".parse().unwrap()));
        assert!(
            !a.instance.trim().is_empty(),
            "blank name falls back to the host name"
        );
    }

    #[test]
    fn host_labels_are_dns_safe() {
        assert_eq!(host_label("Lab_PC.example.com"), "lab-pc");
        assert_eq!(host_label("---"), "otafleet");
        assert_eq!(host_label(""), "otafleet");
        assert_eq!(host_label(&"x".repeat(100)).len(), 63);
    }
}
