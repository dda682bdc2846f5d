//! The embedded broker: the MQTT broker library rmqtt run in-process, behind otafleet's rules.
//!
//! # Who may connect, and what each may do
//!
//! There are two listeners:
//!
//! - **The device listener** ([`BrokerOptions::listen`], MQTT over TLS with otafleet's certificate,
//!   or plain MQTT when no TLS configuration is given). Every CONNECT must carry a user name and
//!   password, which [`Authority::authenticate`] checks for the client id; there are no anonymous
//!   logins. A client id that contains `/`, `+`, `#` or NUL, or starts with [`SERVICE_USER`], is
//!   refused before the `Authority` is asked (an empty one is given a random id, which no
//!   `Authority` knows). A refused login gets CONNACK
//!   "bad user name or password" (v3.1.1 return code 4, v5 reason 0x86). A logged-in device —
//!   client id `<id>` — may:
//!   - subscribe to `device/<id>/command/+` or `device/<id>/command/<name>` only. Any other filter
//!     (another device's topics, `#`, `device/+/…`, `$SYS/#`) gets a SUBACK failure (0x80 in
//!     v3.1.1, 0x87 "not authorized" in v5);
//!   - publish to `device/<id>/report/<name>` and `device/<id>/logs/<name>` only (`<name>` one
//!     topic level). Any other publication is dropped: with QoS 1 the PUBACK says "not authorized"
//!     in v5, and is a plain PUBACK in v3.1.1, which has no way to say no;
//!   - set a last will on `device/<id>/report/status` only. A CONNECT with another will topic is
//!     refused ("not authorized"), as the will is published after the device is gone, past the
//!     publish rules.
//!
//!   Every refusal of a logged-in device is passed to [`Authority::refused`] with the device's
//!   real address.
//! - **The service listener** ([`Broker::service_addr`], plain MQTT on 127.0.0.1, a port drawn at
//!   start) is for otafleet's own client. It admits only [`SERVICE_USER`] with the password drawn
//!   at start ([`Broker::service_credentials`]); that user is a superuser, with no topic rules.
//!   Its client ids should start with [`SERVICE_USER`], a prefix no device may use, so no device
//!   can take over the service's session.
//!
//! Retained messages are kept, in memory only (a retained `command/config` reaches a device when
//! it subscribes; a retained `report/status`, the will included, reaches the service).
//!
//! # How it is put together
//!
//! rmqtt listens only on two loopback ports of its own. The listeners clients reach are otafleet's
//! (`front`): they terminate TLS with tokio-rustls (ring) and forward each connection's bytes to
//! rmqtt behind a PROXY protocol line carrying the real peer address. One rmqtt hook handler
//! (`hooks`) applies the rules above.
//!
//! rmqtt's two ports are on 127.0.0.1 and believe the PROXY line they are sent: a program on the
//! same machine that connects to them directly can claim any peer address (for the logs and
//! `Authority`), but not a login — the same credentials are needed, and the service user is
//! admitted only on the service port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::distributions::{Alphanumeric, DistString};
use rmqtt::context::ServerContext;
use rmqtt::hook::Type;
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod front;
mod hooks;
mod retained;
mod rules;

/// What the broker refused a logged-in device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A subscription outside `device/<own id>/command/+`.
    Subscribe { filter: String },
    /// A publication outside `device/<own id>/report/<x>` and `device/<own id>/logs/<x>`.
    Publish { topic: String },
    /// A last-will topic other than `device/<own id>/report/status` (refused at CONNECT).
    Will { topic: String },
}

/// Who may log in, and where refusals are recorded. otafleet implements it over `Fleet`.
#[async_trait::async_trait]
pub trait Authority: Send + Sync + 'static {
    /// `Ok(())` admits the client as device `client_id`; `Err(reason)` refuses the CONNECT
    /// (bad user name or password), the reason is logged.
    async fn authenticate(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        peer: Option<SocketAddr>,
    ) -> Result<(), String>;

    /// A logged-in device `client_id` was refused something; record it.
    async fn refused(&self, client_id: &str, refusal: Refusal, peer: Option<SocketAddr>);
}

/// The user name of otafleet's own client on the service listener, and the prefix its client ids
/// should have (no device may log in with a client id starting with it).
pub const SERVICE_USER: &str = "otafleet-service";

/// The largest MQTT packet accepted (ESP Admin's log lines are a few hundred bytes).
const MAX_PACKET_SIZE: u32 = 256 * 1024;

/// Where and how the broker listens.
#[derive(Clone)]
pub struct BrokerOptions {
    /// Where devices connect (e.g. 0.0.0.0:8883; port 0 = any free port, for tests).
    pub listen: SocketAddr,
    /// TLS for that listener, used as it is (otafleet's server configuration: a live certificate
    /// resolver, ring). `None` = plain MQTT on `listen`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "MQTT port {} on {} is already in use (another broker such as Mosquitto, or another \
         otafleet?): stop it, or give otafleet another MQTT port (--mqtt-port)",
        addr.port(), addr.ip()
    )]
    PortInUse { addr: SocketAddr },
    #[error(
        "not allowed to listen on {addr} (ports below 1024 need privileges): give otafleet an \
         MQTT port above 1023 (--mqtt-port)"
    )]
    PortNeedsPrivilege { addr: SocketAddr },
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the embedded MQTT broker could not start its internal listener: {0}")]
    Internal(String),
}

/// The running broker. Dropping it stops it too, without waiting.
pub struct Broker {
    listen_addr: SocketAddr,
    service_addr: SocketAddr,
    service_password: String,
    tasks: Vec<JoinHandle<()>>,
}

fn bind_error(addr: SocketAddr, e: io::Error) -> BrokerError {
    match e.kind() {
        io::ErrorKind::AddrInUse => BrokerError::PortInUse { addr },
        io::ErrorKind::PermissionDenied => BrokerError::PortNeedsPrivilege { addr },
        _ => BrokerError::Listen { addr, source: e },
    }
}

/// One of rmqtt's internal listeners: loopback, any port, PROXY protocol, otafleet's limits.
fn internal_listener(name: &str) -> Result<rmqtt::net::Listener, BrokerError> {
    Builder::new()
        .name(name)
        .laddr((Ipv4Addr::LOCALHOST, 0).into())
        .nodelay(true)
        .proxy_protocol(true)
        .allow_anonymous(false)
        .max_packet_size(MAX_PACKET_SIZE)
        .max_clientid_len(256)
        .handshake_timeout(Duration::from_secs(15))
        // Zero: queued and retained messages do not expire unless the publisher says so (v5).
        .message_expiry_interval(Duration::ZERO)
        .bind()
        .and_then(|l| l.tcp())
        .map_err(|e| BrokerError::Internal(format!("{e:#}")))
}

fn local_addr(l: &rmqtt::net::Listener) -> Result<SocketAddr, BrokerError> {
    l.local_addr()
        .map_err(|e| BrokerError::Internal(format!("{e:#}")))
}

impl Broker {
    /// Starts the broker: binds the device listener on `opts.listen` and the service listener on
    /// 127.0.0.1, and returns once both accept connections.
    pub async fn start(
        opts: BrokerOptions,
        authority: Arc<dyn Authority>,
    ) -> Result<Broker, BrokerError> {
        // Bind what the user chose first, so a taken port is reported before anything starts.
        let device_listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|e| bind_error(opts.listen, e))?;
        let listen_addr = device_listener
            .local_addr()
            .map_err(|e| bind_error(opts.listen, e))?;
        let loopback: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let service_listener = TcpListener::bind(loopback)
            .await
            .map_err(|e| bind_error(loopback, e))?;
        let service_addr = service_listener
            .local_addr()
            .map_err(|e| bind_error(loopback, e))?;

        let internal_devices = internal_listener("devices")?;
        let internal_service = internal_listener("service")?;
        let internal_devices_addr = local_addr(&internal_devices)?;
        let internal_service_addr = local_addr(&internal_service)?;

        // No busy checks: a loaded machine (a build, two cores) must not turn devices away.
        let scx = ServerContext::new().busy_check_enable(false).build().await;
        *scx.extends.retain_mut().await = Box::new(retained::InMemory::default());
        let service_password = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        let register = scx.extends.hook_mgr().register();
        for typ in [
            Type::ClientAuthenticate,
            Type::ClientSubscribeCheckAcl,
            Type::MessagePublishCheckAcl,
        ] {
            let rules = hooks::Rules {
                authority: authority.clone(),
                service_password: service_password.clone(),
            };
            register.add(typ, Box::new(rules)).await;
        }
        register.start().await;

        let server = MqttServer::new(scx)
            .listener_by_id(internal_devices, hooks::DEVICE_LISTENER)
            .listener_by_id(internal_service, hooks::SERVICE_LISTENER)
            .build();
        let rmqtt_task = tokio::spawn(async move {
            if let Err(e) = server.run().await {
                tracing::error!("the embedded MQTT broker stopped: {e:#}");
            }
        });

        let tls = opts.tls.map(tokio_rustls::TlsAcceptor::from);
        let devices_task = tokio::spawn(front::serve(
            "devices",
            device_listener,
            tls,
            internal_devices_addr,
        ));
        let service_task = tokio::spawn(front::serve(
            "service",
            service_listener,
            None,
            internal_service_addr,
        ));
        tracing::info!(%listen_addr, %service_addr, "embedded MQTT broker listening");

        Ok(Broker {
            listen_addr,
            service_addr,
            service_password,
            tasks: vec![devices_task, service_task, rmqtt_task],
        })
    }

    /// The bound device listener (the port drawn, if `listen` had port 0).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// The loopback listener for otafleet's own client: plain MQTT, on 127.0.0.1.
    pub fn service_addr(&self) -> SocketAddr {
        self.service_addr
    }

    /// The service user's name ([`SERVICE_USER`]) and the password drawn at start. A superuser:
    /// no topic rules apply to it.
    pub fn service_credentials(&self) -> (String, String) {
        (SERVICE_USER.to_owned(), self.service_password.clone())
    }

    /// Stops listening and drops every connection (devices' wills are published as they go);
    /// returns once the listening sockets are closed, so the port can be bound again.
    pub async fn stop(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
