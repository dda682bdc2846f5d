//! HTTPS on the same port as HTTP.
//!
//! **One port, two protocols.** A TLS connection always opens with a handshake record, whose first
//! byte is `0x16`; an HTTP/1 request opens with a method name (an ASCII letter). So [`crate::conn`]
//! peeks at the first byte of every new connection (within the header-read timeout) and either
//! runs the TLS handshake or serves plain HTTP as before. Devices and browsers keep the one
//! address and port they know (`http://host:8470` or `https://host:8470`), mDNS keeps advertising
//! one port (with `tls=1` and the CA's fingerprint), and a firewall rule stays one rule. Every
//! request carries how it came ([`crate::conn::Transport`]), so check-ins record which devices
//! still talk in the clear and [`Mode::Require`] can refuse them.
//!
//! **Below TLS, no sendfile.** Plain HTTP downloads of cached images go out with `sendfile(2)`
//! ([`crate::blob_cache::send`]); over TLS the bytes must be encrypted in user space, so they are
//! written through rustls like any other body. Same bytes, same ranges, same counting.
//!
//! **Certificates.** [`otafleet_core::tls::Material`] makes and keeps them (a local CA and a server
//! certificate naming every address of this machine, also as `DNS:<address>` for mbedTLS 2.x), or
//! takes the admin's own pair. The certificate in use sits behind a resolver, so a new one is
//! served from the next handshake on without a restart: [`Tls::spawn_refresher`] looks at the
//! machine's addresses every [`REFRESH_EVERY`] and has the certificate issued again (same CA) when
//! an address appears or goes.
//!
//! Only HTTP/1.1 is offered (ALPN `http/1.1`), as over plain HTTP. TLS 1.2 stays on: ESP32's
//! mbedTLS 2.x speaks nothing newer.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use otafleet_core::tls::{Material, Names, Origin};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// How often the machine's addresses are compared with the certificate's names.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// `--tls`: whether HTTPS is served and whether plain HTTP still is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plain HTTP only.
    Off,
    /// HTTPS and plain HTTP on the same port (the default): stock updaters that cannot do TLS
    /// keep working, and the device table says which devices still talk in the clear.
    #[default]
    Auto,
    /// HTTPS only: plain HTTP requests get `426 tls_required`, except from this machine itself
    /// (loopback: the desktop window and local scripts, whose traffic never crosses the LAN).
    Require,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Mode::Off),
            "auto" => Ok(Mode::Auto),
            "require" => Ok(Mode::Require),
            other => Err(format!(
                "'{other}' is not a TLS mode: use auto (HTTPS beside plain HTTP), off or require"
            )),
        }
    }
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Made and kept in `<data_dir>/tls/`, naming this machine's addresses, its host name and the
    /// extra names (`--tls-name`).
    Generated {
        data_dir: PathBuf,
        extra: Vec<String>,
    },
    /// The admin's own certificate chain and key (`--tls-cert`, `--tls-key`), used as they are.
    User { cert: PathBuf, key: PathBuf },
}

/// Errors setting TLS up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Core(#[from] otafleet_core::CoreError),
    #[error("the TLS key cannot sign ({0}); use an ECDSA P-256/P-384, Ed25519 or RSA key")]
    Key(rustls::Error),
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The TLS side of a server: mode, the certificate in use, and the rustls acceptor that serves it.
pub struct Tls {
    mode: Mode,
    source: Source,
    material: RwLock<Arc<Material>>,
    resolver: Arc<Resolver>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("material", &*self.material())
            .finish()
    }
}

/// Hands every handshake the certificate in use at that moment.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().expect("tls resolver").clone())
    }
}

/// ring, as everywhere else in otafleet (the certificates, reqwest, lettre): aws-lc-rs would add a
/// second crypto library and a cmake build. rustls marks ring's provider deprecated because it
/// lacks post-quantum key exchange, which no ESP32 client offers anyway.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified(material: &Material) -> Result<Arc<CertifiedKey>, TlsError> {
    let key = provider()
        .key_provider
        .load_private_key(material.server_key())
        .map_err(TlsError::Key)?;
    Ok(Arc::new(CertifiedKey::new(
        material.server_chain().to_vec(),
        key,
    )))
}

/// The names a generated certificate must carry now: every address of every interface, the
/// host name, and the extra names.
pub fn current_names(extra: &[String]) -> Names {
    let mut addresses: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| ifs.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list this machine's addresses; the TLS certificate names only localhost and --tls-name");
            Vec::new()
        });
    // Link-local IPv6 addresses need a zone to be reached and are no use in a certificate.
    addresses.retain(|ip| match ip {
        IpAddr::V6(v6) => !v6.is_unicast_link_local(),
        IpAddr::V4(_) => true,
    });
    addresses.sort();
    addresses.dedup();
    Names {
        addresses,
        host: Some(gethostname::gethostname().to_string_lossy().into_owned()),
        extra: extra.to_vec(),
    }
}

impl Tls {
    /// Loads or makes the certificate and builds the acceptor. Blocking (file I/O, key
    /// generation): call it before the runtime starts or inside `spawn_blocking`. `None` for
    /// [`Mode::Off`].
    pub fn start(mode: Mode, source: Source) -> Result<Option<Arc<Self>>, TlsError> {
        if mode == Mode::Off {
            return Ok(None);
        }
        let material = load(&source)?;
        let resolver = Arc::new(Resolver(RwLock::new(certified(&material)?)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        match material.ca_fingerprint() {
            Some(fp) => tracing::info!(
                ca_sha256 = %fp.colon(),
                sans = ?material.sans().iter().map(ToString::to_string).collect::<Vec<_>>(),
                origin = ?material.origin(),
                "HTTPS on (same port as HTTP); devices pin this CA fingerprint"
            ),
            None => tracing::info!("HTTPS on (same port as HTTP) with the given certificate"),
        }
        Ok(Some(Arc::new(Self {
            mode,
            source,
            material: RwLock::new(Arc::new(material)),
            resolver,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })))
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A rustls server config for another protocol on the same certificate (the embedded MQTT
    /// broker): the same live resolver — a re-issued certificate is served at once — and no
    /// ALPN (MQTT clients send none).
    pub fn server_config_without_alpn(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        Ok(Arc::new(config))
    }

    /// The certificate in use.
    pub fn material(&self) -> Arc<Material> {
        self.material.read().expect("tls material").clone()
    }

    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Issue the certificate again when the machine's names changed (generated certificates
    /// only); true when a new one is now served. Blocking: run it in `spawn_blocking`.
    pub fn refresh(&self) -> Result<bool, TlsError> {
        let Source::Generated { data_dir, extra } = &self.source else {
            return Ok(false);
        };
        let names = current_names(extra);
        let wanted =
            otafleet_core::tls::san_list(&names.addresses, names.host.as_deref(), &names.extra)?;
        if wanted == self.material().sans() {
            return Ok(false);
        }
        let material = Material::load_or_create(data_dir, &names)?;
        self.install(material)?;
        Ok(true)
    }

    fn install(&self, material: Material) -> Result<(), TlsError> {
        let key = certified(&material)?;
        tracing::info!(
            sans = ?material.sans().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "TLS certificate issued again for the machine's new names; served from the next handshake"
        );
        *self.resolver.0.write().expect("tls resolver") = key;
        *self.material.write().expect("tls material") = Arc::new(material);
        Ok(())
    }

    /// Look at the machine's addresses every [`REFRESH_EVERY`] until `stop`, and serve a new
    /// certificate when they changed (generated certificates only).
    pub fn spawn_refresher(self: &Arc<Self>, stop: CancellationToken) {
        if !matches!(self.source, Source::Generated { .. }) {
            return;
        }
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => return,
                }
                let t = tls.clone();
                match tokio::task::spawn_blocking(move || t.refresh()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not issue the TLS certificate again; the old one is still served")
                    }
                    Err(e) => tracing::warn!(error = %e, "TLS refresh task failed"),
                }
            }
        });
    }
}

fn load(source: &Source) -> Result<Material, TlsError> {
    Ok(match source {
        Source::Generated { data_dir, extra } => {
            let m = Material::load_or_create(data_dir, &current_names(extra))?;
            if m.origin() == Origin::Created {
                tracing::info!(dir = %data_dir.join(otafleet_core::tls::DIR).display(), "made a local certificate authority for HTTPS");
            }
            m
        }
        Source::User { cert, key } => Material::load_user(cert, key)?,
    })
}

/// `--tls require`: a plain HTTP request from another machine gets `426 tls_required` and
/// reaches no handler. Loopback stays plain (the desktop window, local scripts: nothing crosses
/// the LAN), and so do the two routes that hand out the CA (`GET /api/v1/tls`,
/// `GET /api/v1/tls/ca.pem`), which a device or person needs before it can speak HTTPS at all.
pub(crate) async fn require_tls(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let plain = req
        .extensions()
        .get::<crate::conn::Transport>()
        .is_none_or(|t| !t.is_tls());
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let open_path = matches!(req.uri().path(), "/api/v1/tls" | "/api/v1/tls/ca.pem");
    if plain && !open_path && !peer.is_some_and(|ip| ip.to_canonical().is_loopback()) {
        tracing::info!(peer = ?peer, path = %req.uri().path(), "plain HTTP refused (--tls require)");
        return crate::error::ApiError::with_status(
            axum::http::StatusCode::UPGRADE_REQUIRED,
            "tls_required",
            "this server takes HTTPS only (otafleet serve --tls require): use https:// with the \
             same host and port, trusting the CA from GET /api/v1/tls/ca.pem (compare its SHA-256 \
             fingerprint with the one otafleet shows)",
        )
        .into_response();
    }
    next.run(req).await
}
