//! TLS certificate material, with zero setup: a local CA of this otafleet's own, and a server
//! certificate it signs for every name and address the server is reached by.
//!
//! On first use [`Material::load_or_create`] generates the CA (ECDSA P-256, 20 years) and a server
//! certificate (ECDSA P-256, one year) and keeps them in the data directory's `tls/` folder:
//! `ca.pem`, `ca.key`, `server.pem`, `server.key`. Keys are written with mode 0600, and every file
//! is written to a temporary file, fsynced and renamed into place, so a crash never leaves half a
//! key. Later starts load them; only the server certificate is issued again — the CA, which
//! devices and browsers have been told to trust, is kept — when the names or addresses wanted
//! differ from the ones it carries, when it is within [`RENEW_BEFORE`] of its end, or when it
//! cannot be read or does not belong to its key or to the CA.
//!
//! The server certificate names every address both as an IP SAN and as a `DNS:<address>` SAN,
//! because mbedTLS 2.x (ESP32's ESP-IDF 4.x and Arduino core 2.x) checks only DNS SANs; see
//! [`san_list`].
//!
//! A certificate and key the admin already has can be used instead ([`Material::load_user`]):
//! then nothing is generated or written, and there is no CA to show.
//!
//! The server's front end calls these functions at start and when the machine's addresses change
//! (they do blocking file I/O and key generation: call them before the runtime or inside
//! `spawn_blocking`) and gives [`Material::server_chain`] and [`Material::server_key`] to rustls.
//! [`snippets`] turns the CA into code a device can paste.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{CoreError, Result};

/// How long the generated CA is valid.
pub const CA_VALIDITY: Duration = Duration::days(20 * 365);
/// How long a generated server certificate is valid.
pub const SERVER_VALIDITY: Duration = Duration::days(365);
/// A server certificate this close to its end is issued again at the next start.
pub const RENEW_BEFORE: Duration = Duration::days(30);
/// Both certificates start a day before they are made, for clocks a little behind.
const BACKDATE: Duration = Duration::days(1);

/// The folder inside the data directory.
pub const DIR: &str = "tls";
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

/// What the server is reached by: its addresses, its host name, and names the admin adds
/// (`--tls-name`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub addresses: Vec<IpAddr>,
    pub host: Option<String>,
    pub extra: Vec<String>,
}

/// One subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(name) => write!(f, "DNS:{name}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// The subject alternative names a server certificate for these names carries, sorted and
/// without repeats:
///
/// - every address given (unspecified and multicast ones are left out; an IPv4-mapped IPv6
///   address counts as its IPv4 address) as an IP SAN **and** as a DNS SAN spelling it
///   (`DNS:192.168.1.10`), since mbedTLS 2.x ignores IP SANs;
/// - the host name and `<host>.local` (mDNS), lower-cased; a host name that is not a valid DNS
///   name is left out (it comes from the OS, not from the admin);
/// - `localhost`, `127.0.0.1` and `::1`;
/// - every extra name: an address literal is treated as an address above, anything else must be
///   a DNS name (a leading `*.` allowed), or the whole list is refused (`tls_name`).
pub fn san_list(addresses: &[IpAddr], host: Option<&str>, extra: &[String]) -> Result<Vec<San>> {
    let mut sans = BTreeSet::new();
    let add_ip = |sans: &mut BTreeSet<San>, ip: IpAddr| {
        let ip = ip.to_canonical();
        if ip.is_unspecified() || ip.is_multicast() {
            return;
        }
        sans.insert(San::Ip(ip));
        sans.insert(San::Dns(ip.to_string()));
    };
    for ip in addresses {
        add_ip(&mut sans, *ip);
    }
    sans.insert(San::Dns("localhost".into()));
    sans.insert(San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    sans.insert(San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    if let Some(host) = host {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let base = host.strip_suffix(".local").unwrap_or(&host);
        if is_dns_name(base, false) {
            sans.insert(San::Dns(base.to_string()));
            sans.insert(San::Dns(format!("{base}.local")));
        }
    }
    for name in extra {
        let trimmed = name.trim().trim_end_matches('.');
        if let Ok(ip) = trimmed.parse::<IpAddr>() {
            add_ip(&mut sans, ip);
            continue;
        }
        let lower = trimmed.to_ascii_lowercase();
        if !is_dns_name(&lower, true) {
            return Err(CoreError::invalid(
                "tls_name",
                format!(
                    "{name:?} is not a host name or an IP address a certificate can name: use \
                     letters, digits and hyphens in dot-separated labels of up to 63 characters \
                     (a leading \"*.\" is allowed), or an IPv4/IPv6 address"
                ),
            ));
        }
        sans.insert(San::Dns(lower));
    }
    Ok(sans.into_iter().collect())
}

/// A DNS name as certificates carry it: ASCII letters, digits and hyphens in labels of 1–63
/// characters, 253 in all; `wildcard` allows a leading `*.` before at least two labels.
fn is_dns_name(name: &str, wildcard: bool) -> bool {
    let rest = match name.strip_prefix("*.") {
        Some(rest) if wildcard => {
            if !rest.contains('.') {
                return false;
            }
            rest
        }
        _ => name,
    };
    !rest.is_empty()
        && name.len() <= 253
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The SHA-256 of a certificate's DER, as browsers and `openssl x509 -fingerprint -sha256` show
/// it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Lower-case hex, 64 characters.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Upper-case hex pairs separated by colons (`AB:CD:…`), 95 characters.
    pub fn colon(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.hex())
    }
}

/// Where the server certificate in use came from, this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The CA and the server certificate were made now.
    Created,
    /// Both were loaded as stored.
    Loaded,
    /// The CA was loaded; the server certificate was issued again (names changed, near its end,
    /// or unreadable).
    Reissued,
    /// The admin's own certificate and key.
    User,
}

/// The certificates and key a TLS server needs.
pub struct Material {
    ca: Option<CertificateDer<'static>>,
    ca_pem: Option<String>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    sans: Vec<San>,
    not_after: OffsetDateTime,
    origin: Origin,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material")
            .field("ca", &self.ca_fingerprint())
            .field("sans", &self.sans)
            .field("not_after", &self.not_after)
            .field("origin", &self.origin)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Material {
    /// Loads the CA and server certificate from `<data_dir>/tls/`, making what is missing and
    /// issuing the server certificate again when `names` ask for other SANs or it is near its end
    /// (module docs).
    pub fn load_or_create(data_dir: &Path, names: &Names) -> Result<Self> {
        Self::load_or_create_at(data_dir, names, OffsetDateTime::now_utc())
    }

    /// [`Self::load_or_create`] as if the time were `now`.
    pub(crate) fn load_or_create_at(
        data_dir: &Path,
        names: &Names,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let wanted = san_list(&names.addresses, names.host.as_deref(), &names.extra)?;
        let dir = data_dir.join(DIR);
        fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        }

        let (ca_key, ca_der, ca_pem, ca_created) =
            load_or_create_ca(&dir, names.host.as_deref(), now)?;
        let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key).map_err(|e| {
            stored_invalid(&dir, CA_CERT, &format!("it cannot sign certificates ({e})"))
        })?;

        let stored = if ca_created {
            None
        } else {
            load_server(&dir, &ca_der)
        };
        let (origin, server_key, cert_der) = match stored {
            Some(StoredServer {
                key,
                cert: Some(cert),
                ..
            }) if cert.usable(&wanted, now) => (Origin::Loaded, key, cert.der),
            stored => {
                // The server key is kept when it is still good; only the certificate changes.
                let key = match stored.and_then(|s| KeyPair::from_pem(&s.key_pem).ok()) {
                    Some(key) => key,
                    None => {
                        let key = new_key()?;
                        write_atomic(&dir.join(SERVER_KEY), key.serialize_pem().as_bytes(), true)?;
                        key
                    }
                };
                let cert = issue_server(&issuer, &key, &wanted, now)?;
                write_atomic(&dir.join(SERVER_CERT), cert.pem().as_bytes(), false)?;
                let origin = if ca_created {
                    Origin::Created
                } else {
                    tracing::info!(sans = ?wanted, "issued a new TLS server certificate");
                    Origin::Reissued
                };
                let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
                (origin, key_der, cert.der().clone())
            }
        };
        let not_after = parse(&cert_der)
            .map(|c| c.validity().not_after.to_datetime())
            .map_err(|e| stored_invalid(&dir, SERVER_CERT, &e))?;
        Ok(Self {
            ca: Some(ca_der),
            ca_pem: Some(ca_pem),
            chain: vec![cert_der],
            key: server_key,
            sans: wanted,
            not_after,
            origin,
        })
    }

    /// The admin's own certificate chain (`cert`: PEM, the server's certificate first, then any
    /// intermediates) and its private key (`key`: PEM, PKCS#8, PKCS#1 or SEC1), used as they are:
    /// nothing is generated or written. Refused (`tls_cert_invalid`, `tls_key_invalid`,
    /// `tls_key_mismatch`) when either cannot be read or the key is not the certificate's.
    pub fn load_user(cert: &Path, key: &Path) -> Result<Self> {
        let cert_bytes = fs::read(cert).map_err(|e| {
            CoreError::invalid(
                "tls_cert_invalid",
                format!("cannot read the TLS certificate {}: {e}", cert.display()),
            )
        })?;
        let chain = CertificateDer::pem_slice_iter(&cert_bytes)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| {
                CoreError::invalid(
                    "tls_cert_invalid",
                    format!(
                        "{} is not a PEM certificate chain ({e}); give the server's certificate \
                         first, then any intermediates, each as -----BEGIN CERTIFICATE-----",
                        cert.display()
                    ),
                )
            })?;
        let Some(leaf) = chain.first() else {
            return Err(CoreError::invalid(
                "tls_cert_invalid",
                format!(
                    "{} holds no -----BEGIN CERTIFICATE----- block; give the server's certificate \
                     in PEM",
                    cert.display()
                ),
            ));
        };
        for (i, der) in chain.iter().enumerate() {
            parse(der).map_err(|e| {
                CoreError::invalid(
                    "tls_cert_invalid",
                    format!(
                        "certificate {} in {} cannot be read: {e}",
                        i + 1,
                        cert.display()
                    ),
                )
            })?;
        }
        let parsed = parse(leaf).expect("parsed above");
        let not_after = parsed.validity().not_after.to_datetime();
        let sans = sans_of(&parsed);
        if not_after < OffsetDateTime::now_utc() {
            tracing::warn!(cert = %cert.display(), %not_after, "the TLS certificate given has expired");
        }

        let key_bytes = fs::read(key).map_err(|e| {
            CoreError::invalid(
                "tls_key_invalid",
                format!("cannot read the TLS key {}: {e}", key.display()),
            )
        })?;
        let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
            CoreError::invalid(
                "tls_key_invalid",
                format!(
                    "{} is not a PEM private key ({e}); give the certificate's key as \
                     -----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or \
                     -----BEGIN EC PRIVATE KEY-----",
                    key.display()
                ),
            )
        })?;
        keys_match(&chain, &key_der).map_err(|e| {
            CoreError::invalid(
                "tls_key_mismatch",
                format!(
                    "the key {} does not match the certificate {} ({e}); give the key the \
                     certificate was issued for",
                    key.display(),
                    cert.display()
                ),
            )
        })?;
        Ok(Self {
            ca: None,
            ca_pem: None,
            chain,
            key: key_der,
            sans,
            not_after,
            origin: Origin::User,
        })
    }

    /// The CA's certificate in PEM, for devices and browsers to trust; `None` for the admin's own
    /// certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The CA's certificate in DER.
    pub fn ca_der(&self) -> Option<&CertificateDer<'static>> {
        self.ca.as_ref()
    }

    /// The SHA-256 fingerprint of the CA's DER.
    pub fn ca_fingerprint(&self) -> Option<Fingerprint> {
        self.ca.as_ref().map(|der| Fingerprint::of(der))
    }

    /// The server's certificate chain, its own certificate first (DER).
    pub fn server_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The server certificate's private key (DER).
    pub fn server_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// The subject alternative names the server certificate carries.
    pub fn sans(&self) -> &[San] {
        &self.sans
    }

    /// When the server certificate ends.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }
}

/// Loads the CA, or makes one when there is none. A `ca.key` without `ca.pem` is what a crash
/// while making the CA leaves (the key is written first), so a new CA is made; a `ca.pem` without
/// its key, or a pair that cannot be read, is refused: devices may trust that CA.
fn load_or_create_ca(
    dir: &Path,
    host: Option<&str>,
    now: OffsetDateTime,
) -> Result<(KeyPair, CertificateDer<'static>, String, bool)> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    if cert_path.exists() {
        if !key_path.exists() {
            return Err(CoreError::DataDir {
                code: "tls_ca_key_missing",
                message: format!(
                    "{} is there but its key {} is not: put the key back, or remove {} to make \
                     a new CA (devices and browsers that trust the old one will then need the \
                     new one)",
                    cert_path.display(),
                    key_path.display(),
                    cert_path.display()
                ),
            });
        }
        tighten(&key_path)?;
        let cert_pem = fs::read(&cert_path)?;
        let key_pem = fs::read_to_string(&key_path)?;
        let der = CertificateDer::from_pem_slice(&cert_pem)
            .map_err(|e| e.to_string())
            .and_then(|der| match parse(&der) {
                Ok(_) => Ok(der),
                Err(e) => Err(e),
            })
            .map_err(|e| stored_invalid(dir, CA_CERT, &e))?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| stored_invalid(dir, CA_KEY, &e.to_string()))?;
        keys_match(std::slice::from_ref(&der), &key_der).map_err(|e| {
            stored_invalid(
                dir,
                CA_KEY,
                &format!("it is not the key of {CA_CERT} ({e})"),
            )
        })?;
        let key =
            KeyPair::from_pem(&key_pem).map_err(|e| stored_invalid(dir, CA_KEY, &e.to_string()))?;
        let pem = String::from_utf8_lossy(&cert_pem).into_owned();
        return Ok((key, der, pem, false));
    }

    let key = new_key()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let id = hex::encode(rand::random::<[u8; 4]>());
    let cn = match host.map(|h| h.trim().to_ascii_lowercase()) {
        Some(h) if is_dns_name(&h, false) => format!("otafleet LAN CA on {h} ({id})"),
        _ => format!("otafleet LAN CA ({id})"),
    };
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "otafleet");
    dn.push(
        DnType::OrganizationalUnitName,
        "local CA for this otafleet server's LAN",
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params.serial_number = Some(serial());
    let cert = params
        .self_signed(&key)
        .map_err(|e| CoreError::invalid("tls_generate", format!("cannot make the CA: {e}")))?;
    write_atomic(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_atomic(&cert_path, cert.pem().as_bytes(), false)?;
    tracing::info!(
        fingerprint = %Fingerprint::of(cert.der()).colon(),
        "made a local TLS CA"
    );
    Ok((key, cert.der().clone(), cert.pem(), true))
}

/// A stored server key, and its certificate when that can be used with it.
struct StoredServer {
    key: PrivateKeyDer<'static>,
    key_pem: String,
    cert: Option<StoredCert>,
}

struct StoredCert {
    der: CertificateDer<'static>,
    sans: Vec<San>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl StoredCert {
    fn usable(&self, wanted: &[San], now: OffsetDateTime) -> bool {
        self.sans == wanted && self.not_before <= now && now + RENEW_BEFORE < self.not_after
    }
}

/// The stored server key when it can be read, with its certificate when that can be read, is
/// the key's and was signed by this CA; `None` when there is no usable key.
fn load_server(dir: &Path, ca_der: &CertificateDer<'_>) -> Option<StoredServer> {
    let key_path = dir.join(SERVER_KEY);
    let key_pem = fs::read_to_string(&key_path).ok()?;
    tighten(&key_path).ok()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).ok()?;
    let cert = fs::read(dir.join(SERVER_CERT))
        .ok()
        .and_then(|pem| CertificateDer::from_pem_slice(&pem).ok())
        .and_then(|der| {
            let parsed = parse(&der).ok()?;
            let ca = parse(ca_der).ok()?;
            parsed.verify_signature(Some(ca.public_key())).ok()?;
            keys_match(std::slice::from_ref(&der), &key).ok()?;
            Some(StoredCert {
                sans: sans_of(&parsed),
                not_before: parsed.validity().not_before.to_datetime(),
                not_after: parsed.validity().not_after.to_datetime(),
                der: der.clone(),
            })
        });
    Some(StoredServer { key, key_pem, cert })
}

fn issue_server(
    issuer: &Issuer<'_, KeyPair>,
    key: &KeyPair,
    sans: &[San],
    now: OffsetDateTime,
) -> Result<rcgen::Certificate> {
    let failed = |e: rcgen::Error| {
        CoreError::invalid(
            "tls_generate",
            format!("cannot make the server certificate: {e}"),
        )
    };
    let mut params = CertificateParams::default();
    let cn = sans
        .iter()
        .find_map(|s| match s {
            San::Dns(name)
                if name != "localhost"
                    && !name.starts_with('*')
                    && name.parse::<IpAddr>().is_err() =>
            {
                Some(name.as_str())
            }
            _ => None,
        })
        .unwrap_or("localhost");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "otafleet");
    params.distinguished_name = dn;
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s {
            San::Dns(name) => name.clone().try_into().map(SanType::DnsName),
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(failed)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + SERVER_VALIDITY;
    params.serial_number = Some(serial());
    params.signed_by(key, issuer).map_err(failed)
}

fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CoreError::invalid("tls_generate", format!("cannot make a key: {e}")))
}

/// A random positive 16-byte serial number.
fn serial() -> SerialNumber {
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> std::result::Result<X509Certificate<'a>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing bytes after the certificate".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The DNS and IP SANs a certificate carries, sorted like [`san_list`].
fn sans_of(cert: &X509Certificate<'_>) -> Vec<San> {
    let mut sans = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    sans.insert(San::Dns(dns.to_ascii_lowercase()));
                }
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).expect("4 bytes")),
                        16 => IpAddr::from(<[u8; 16]>::try_from(*bytes).expect("16 bytes")),
                        _ => continue,
                    };
                    sans.insert(San::Ip(ip));
                }
                _ => {}
            }
        }
    }
    sans.into_iter().collect()
}

/// Whether `key` is the private key of the first certificate of `chain` (their public keys
/// compared).
fn keys_match(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'_>,
) -> std::result::Result<(), rustls::Error> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key)?;
    rustls::sign::CertifiedKey::new(chain.to_vec(), Arc::clone(&signing)).keys_match()
}

fn stored_invalid(dir: &Path, file: &str, why: &str) -> CoreError {
    CoreError::DataDir {
        code: "tls_stored_invalid",
        message: format!(
            "{} cannot be used: {why}. Restore tls/ from a backup, or remove {} and {} to make a \
             new CA (devices and browsers that trust the old one will then need the new one)",
            dir.join(file).display(),
            dir.join(CA_CERT).display(),
            dir.join(CA_KEY).display()
        ),
    }
}

/// Keys stay readable by their owner only, even if someone loosened them.
fn tighten(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder: written, fsynced,
/// renamed into place, the folder fsynced. `secret` files are created with mode 0600.
fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let dir = path.parent().expect("a file in a folder");
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

pub mod snippets;

#[cfg(test)]
mod tests;
