//! otafleet's HTTP server, built on axum over the GUI-free [`otafleet_core::Fleet`].
//!
//! [`app`] builds the router from a state; [`serve`] runs it on a listener the caller has already
//! bound, until a shutdown future resolves. Keeping the two apart lets the CLI, the desktop shell
//! and the tests each pick their own port (`127.0.0.1:0` in tests) and their own way to stop.
//!
//! Route table (one module per resource under [`routes`]):
//!
//! | who | routes |
//! | --- | --- |
//! | ESP Admin SDK devices (`Api-Key`, [`routes::esp_admin`]) | `GET /api/device/{id}/settings`, `POST /api/device/{id}/report/update`, `POST /api/device/{id}/report/custom`, `GET /api/device/{id}/ota/{update_id}/{secret}.bin` (capability, no key) |
//! | native devices | `POST /api/v1/device/checkin`, `POST /api/v1/device/progress`, `GET|HEAD /api/v1/device/firmware/{sha256}` |
//! | admin (UI, scripts) | `/api/v1/firmware…`, `/api/v1/devices…`, `/api/v1/deployments…`, `/api/v1/watch-folders…`, `/api/v1/events`, `/api/v1/settings`, `/api/v1/audit`, `/api/v1/reports`, `/api/v1/deliveries`, `/api/v1/settings/notify/test` |
//! | field devices (stock updaters, [`routes::field`]) | `GET /ota/arduino`, `GET /ota/esp32fota.json`, `GET|HEAD /ota/firmware/{mac}/{sha256}`, `GET /api/firmware`, `GET /firmware/{filename}` |
//! | legacy admin scripts (`X-Admin-API-Key`) | `/admin/api/devices…`, `/admin/api/firmware…` |
//! | anyone | `/api/v1/health`, `/api/v1/openapi.json`, `/api/v1/docs`, the UI at `/` ([`routes::ui`]) |
//!
//! Errors from the core are turned into HTTP responses in exactly one place, [`error::ApiError`].

pub mod audit;
pub mod auth;
pub mod blob_cache;
pub mod client_addr;
pub mod conn;
pub mod error;
pub mod event_hub;
pub mod extract;
pub mod firmware_index;
pub mod github;
pub mod host;
pub mod oidc;
pub mod orgs;
pub mod routes;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use otafleet_core::Fleet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What every handler can reach: one `Arc`, because axum clones the state for every request and
/// a clone of several `Arc`s is several contended atomic operations on the check-in hot path.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`] (reached through `Deref`: `state.fleet`).
pub struct Shared {
    pub fleet: Fleet,
    /// The admin token, compared in constant time by [`auth`].
    pub admin_token: Arc<str>,
    /// SHA-256 of the admin token: [`auth`] compares digests, so the comparison takes the same
    /// time whatever the length of what was presented.
    pub admin_digest: [u8; 32],
    /// The host names this server answers to ([`host`]).
    pub hosts: Arc<host::HostPolicy>,
    /// Cancelled when the server shuts down, so that endless responses (the event stream) end
    /// and graceful shutdown does not wait for them forever.
    pub shutdown: CancellationToken,
    /// Facts about how this server runs that only its front end knows (listen address, UI
    /// directory, mDNS name); shown by `GET /api/v1/settings`. Empty by default.
    pub info: Arc<ServerInfo>,
    /// Firmware rows for downloads, so that they need not ask the database
    /// ([`firmware_index::FirmwareIndex`] says why and how deletes are seen).
    pub firmwares: Arc<firmware_index::FirmwareIndex>,
    /// The one serializer and fan-out behind every event-stream client ([`event_hub`]).
    pub event_hub: event_hub::EventHub,
    /// `None` in the server's own (default) organisation; in another, which one this state
    /// serves ([`orgs`]): the admin token does not open it, and its devices' absolute URLs
    /// carry its path.
    pub org: Option<Arc<OrgScope>>,
}

/// The organisation a state serves, when it is not the default one ([`orgs`]).
#[derive(Debug, Clone)]
pub struct OrgScope {
    pub id: String,
    pub name: String,
    /// `/o/<enrolment key>`: where its devices reach this server.
    pub device_prefix: String,
}

impl Shared {
    /// Whether `presented` is the server's admin token, which is the owner's of the default
    /// organisation only.
    pub fn is_admin_token(&self, presented: &[u8]) -> bool {
        self.org.is_none() && auth::token_matches(presented, &self.admin_digest)
    }

    /// What devices of this state's organisation put before every path: empty in the default
    /// organisation (its paths are unchanged), `/o/<enrolment key>` in another.
    pub fn device_prefix(&self) -> &str {
        self.org.as_deref().map_or("", |o| o.device_prefix.as_str())
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the front end that started the server (CLI, desktop shell) tells it about itself.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// The address the listener is bound to, once known.
    pub listen: Option<SocketAddr>,
    /// The mDNS instance name the server advertises, if it does.
    pub mdns_name: Option<String>,
    /// A built UI (`ui/dist`) to serve at `/`; without one `/` shows a small placeholder page.
    pub ui_dir: Option<std::path::PathBuf>,
    /// Host names to answer to besides IP literals, `localhost` and this machine's own names
    /// (`otafleet serve --allowed-host`; [`host`]).
    pub allowed_hosts: Vec<String>,
    /// HTTPS on the same port ([`tls`]); `None`: plain HTTP only (`--tls off`).
    pub tls: Option<Arc<tls::Tls>>,
    /// The MQTT broker ESP Admin devices are sent to (`GET /api/device/<id>/settings`); `None`:
    /// no broker yet, and the settings answer empty URIs.
    pub mqtt: Option<MqttEndpoint>,
    /// Load balancers whose `X-Forwarded-For` / `Forwarded` name the client
    /// (`otafleet serve --trusted-proxy CIDR`; [`client_addr`]). Empty: every request's address
    /// is its connection's peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Sign-in through an OpenID Connect provider (`--oidc-issuer`); `None`: no sign-in, tokens
    /// only (the desktop app, and `otafleet serve` without the flags).
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Sign-in with GitHub (`--github-client-id`); `None`: not offered.
    pub github: Option<Arc<github::GitHub>>,
    /// Members may also sign in with a password (`--local-accounts`).
    pub local_accounts: bool,
}

/// Where ESP Admin devices reach the MQTT broker: what `GET /api/device/<id>/settings` answers
/// (the SDK uses `uriTCP`) and the CA a `credentials.h` carries as `mqttCert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttEndpoint {
    /// otafleet's embedded broker on `port` of this machine, over TLS with otafleet's CA when
    /// `tls`: a device is sent to the host it reached otafleet by (its `httpHost`).
    Embedded { port: u16, tls: bool },
    /// The user's broker: the URI devices are given (`mqtts://host:port`), and its CA (PEM) for
    /// `mqttCert`, when known.
    User {
        uri_tcp: String,
        ca_pem: Option<String>,
    },
}

impl MqttEndpoint {
    /// The `uriTCP` for a device that reached otafleet by `host`.
    pub fn uri_tcp(&self, host: &str) -> String {
        match self {
            MqttEndpoint::Embedded { port, tls } => {
                let scheme = if *tls { "mqtts" } else { "mqtt" };
                if host.contains(':') {
                    format!("{scheme}://[{host}]:{port}")
                } else {
                    format!("{scheme}://{host}:{port}")
                }
            }
            MqttEndpoint::User { uri_tcp, .. } => uri_tcp.clone(),
        }
    }

    /// The broker's CA for `mqttCert`: otafleet's own (`ours`) for the embedded broker.
    pub fn ca_pem<'a>(&'a self, ours: &'a str) -> Option<&'a str> {
        match self {
            MqttEndpoint::Embedded { .. } => Some(ours),
            MqttEndpoint::User { ca_pem, .. } => ca_pem.as_deref(),
        }
    }
}

impl AppState {
    pub fn new(fleet: Fleet, admin_token: impl Into<Arc<str>>) -> Self {
        let admin_token: Arc<str> = admin_token.into();
        let info = ServerInfo::default();
        Self(Arc::new(Shared {
            fleet,
            admin_digest: auth::digest(admin_token.as_bytes()),
            admin_token,
            shutdown: CancellationToken::new(),
            hosts: Arc::new(host::HostPolicy::new(&info)),
            info: Arc::new(info),
            firmwares: Default::default(),
            event_hub: Default::default(),
            org: None,
        }))
    }

    /// The state of another organisation's router ([`orgs`]): its own fleet, firmware index
    /// and event hub; the same host policy, server facts and shutdown as this one; no admin
    /// token.
    pub fn for_organisation(&self, fleet: Fleet, org: OrgScope) -> Self {
        let s = &*self.0;
        Self(Arc::new(Shared {
            fleet,
            admin_token: s.admin_token.clone(),
            admin_digest: s.admin_digest,
            shutdown: s.shutdown.clone(),
            hosts: s.hosts.clone(),
            info: s.info.clone(),
            firmwares: Default::default(),
            event_hub: Default::default(),
            org: Some(Arc::new(org)),
        }))
    }

    /// Attach what the front end knows about how the server runs.
    pub fn with_info(self, info: ServerInfo) -> Self {
        let s = &*self.0;
        Self(Arc::new(Shared {
            fleet: s.fleet.clone(),
            admin_token: s.admin_token.clone(),
            admin_digest: s.admin_digest,
            shutdown: s.shutdown.clone(),
            hosts: Arc::new(host::HostPolicy::new(&info)),
            info: Arc::new(info),
            firmwares: s.firmwares.clone(),
            event_hub: s.event_hub.clone(),
            org: s.org.clone(),
        }))
    }
}

/// The whole router (without binding anything): the default organisation's, with every other
/// organisation's behind it ([`orgs`]).
pub fn app(state: AppState) -> Router {
    orgs::OrgRouter::new(state).into_router()
}

/// Serve `app(state)` on an already bound listener until `shutdown` resolves; then stop taking
/// connections, let running requests finish, and close the database. Connections are limited
/// as [`conn::ConnLimits::default`] says.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, conn::ConnLimits::default(), shutdown).await
}

/// [`serve`] with explicit connection limits (header-read timeout, connection cap; [`conn`]).
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    limits: conn::ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_many(vec![listener], state, limits, shutdown).await
}

/// [`serve_with`] on several listeners at once (`otafleet serve --https-port`: port 443 for ESP
/// Admin devices beside the main port): one app, the same connection handling (first-byte
/// sniff, TLS) on each; the connection cap applies per listener. Shuts down as one.
pub async fn serve_many(
    listeners: Vec<TcpListener>,
    state: AppState,
    limits: conn::ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let fleet = state.fleet.clone();
    let stopping = state.shutdown.clone();
    let tls = state.info.tls.clone();
    if let Some(tls) = &tls {
        tls.spawn_refresher(stopping.clone());
    }
    let router = orgs::OrgRouter::new(state);
    tokio::spawn({
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            stopping.cancel();
        }
    });
    // Connections are wrapped for sendfile(2) (`blob_cache::send` says why and how).
    let runs = listeners.into_iter().map(|listener| {
        conn::run(
            listener,
            router.clone(),
            limits.clone(),
            tls.clone(),
            stopping.clone(),
        )
    });
    futures_util::future::join_all(runs).await;
    fleet.close().await;
    Ok(())
}
