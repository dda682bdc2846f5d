//! `--mqtt`: where devices that speak MQTT (ESP Admin SDK devices) are managed (docs/mqtt.md).
//! Both modes end in the same bridge — otafleet is an MQTT client of the broker either way:
//!
//! - `embedded` (default): otafleet runs a broker on `--mqtt-port` of the `--listen` address
//!   (TLS with otafleet's certificate while HTTPS is on), and its bridge logs in on the broker's
//!   loopback service listener. If the port cannot be bound, the reason and the fix are logged
//!   and otafleet serves without MQTT.
//! - a URL (`mqtt://user@host:1883`, `mqtts://user@host:8883`): the user's broker; the password
//!   from `OTAFLEET_MQTT_PASSWORD` (or the URL), its CA from `--mqtt-ca`.
//! - `off`: no MQTT.
//!
//! A worker of a cluster (`--cluster-role worker`, docs/deployment.md) runs neither broker nor
//! bridge — the primary does — but still tells ESP Admin devices where the broker is
//! ([`for_worker`]): the user's broker from the same `--mqtt URL`, or, for the primary's
//! embedded broker, `--mqtt-device-uri`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use otafleet_core::Fleet;
use otafleet_mqtt::authority::FleetAuthority;
use otafleet_mqtt::bridge::{Bridge, BridgeOptions};
use otafleet_mqtt::broker::{Broker, BrokerOptions};
use otafleet_server::MqttEndpoint;

/// `--mqtt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttMode {
    Embedded,
    Off,
    Url(String),
}

pub fn parse_mqtt_mode(s: &str) -> Result<MqttMode, String> {
    match s.trim() {
        "embedded" => Ok(MqttMode::Embedded),
        "off" => Ok(MqttMode::Off),
        u if u.contains("://") => Ok(MqttMode::Url(u.to_owned())),
        other => Err(format!(
            "'{other}' is not an MQTT mode: use embedded, off, or your broker's URL (mqtts://user@host:8883)"
        )),
    }
}

/// What serving MQTT needs from the flags.
#[derive(Debug, Clone)]
pub struct MqttArgs {
    pub mode: MqttMode,
    pub port: u16,
    pub ca: Option<PathBuf>,
    pub device_uri: Option<String>,
}

/// The MQTT side while it runs.
pub struct Mqtt {
    pub endpoint: MqttEndpoint,
    /// Where the embedded broker listens for devices.
    pub broker_addr: Option<SocketAddr>,
    broker: Option<Broker>,
    /// None on a cluster's worker: it only names the broker.
    bridge: Option<Bridge>,
}

impl Mqtt {
    /// Whether this instance runs otafleet's MQTT client (and so owns MQTT presence).
    pub fn runs_bridge(&self) -> bool {
        self.bridge.is_some()
    }

    /// Stop the bridge, then the broker.
    pub async fn stop(self) {
        if let Some(b) = self.bridge {
            b.stop().await;
        }
        if let Some(b) = self.broker {
            b.stop().await;
        }
    }
}

/// A cluster's worker: no broker, no bridge, only what its ESP Admin devices are told. With a
/// URL `--mqtt` (the user's broker, which the primary's bridge uses too), that broker as
/// [`start`] would name it; otherwise `--mqtt-device-uri` (the primary's embedded broker, as the
/// devices reach it) with `--mqtt-ca`. `Ok(None)` (logged): neither, so the worker's ESP Admin
/// devices are told of no broker.
pub fn for_worker(args: MqttArgs) -> anyhow::Result<Option<Mqtt>> {
    let ca = read_ca(args.ca.as_deref())?;
    let uri_tcp = match (args.device_uri, &args.mode) {
        (Some(u), _) => u,
        (None, MqttMode::Url(url)) => {
            let opts = BridgeOptions::from_url(url, None, None)?;
            device_uri(
                &opts.host,
                opts.port,
                url.starts_with("mqtts") || url.starts_with("ssl"),
            )
        }
        (None, MqttMode::Off) => return Ok(None),
        (None, MqttMode::Embedded) => {
            tracing::warn!("this worker tells ESP Admin devices of no MQTT broker: give it --mqtt-device-uri (the primary's broker, as devices reach it) or the user's broker as --mqtt URL");
            return Ok(None);
        }
    };
    tracing::info!(devices_use = %uri_tcp, "MQTT runs on the primary; this worker names its broker to ESP Admin devices");
    Ok(Some(user_broker(uri_tcp, ca, None)))
}

/// MQTT through a broker otafleet does not run (the user's, or a worker's primary's).
fn user_broker(uri_tcp: String, ca: Option<Vec<u8>>, bridge: Option<Bridge>) -> Mqtt {
    Mqtt {
        endpoint: MqttEndpoint::User {
            uri_tcp,
            ca_pem: ca.map(|c| String::from_utf8_lossy(&c).into_owned()),
        },
        broker_addr: None,
        broker: None,
        bridge,
    }
}

fn read_ca(ca: Option<&std::path::Path>) -> anyhow::Result<Option<Vec<u8>>> {
    match ca {
        Some(path) => {
            Ok(Some(std::fs::read(path).with_context(|| {
                format!("cannot read --mqtt-ca {}", path.display())
            })?))
        }
        None => Ok(None),
    }
}

/// `mqtt(s)://host:port`, an IPv6 host in brackets.
fn device_uri(host: &str, port: u16, tls: bool) -> String {
    let scheme = if tls { "mqtts" } else { "mqtt" };
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

/// Start MQTT as `args` say. `Ok(None)`: off, or the embedded broker could not bind (logged with
/// the fix). A bad URL or CA file stops the start with the reason.
pub async fn start(
    args: MqttArgs,
    fleet: &Fleet,
    listen: SocketAddr,
    tls: Option<&otafleet_server::tls::Tls>,
) -> anyhow::Result<Option<Mqtt>> {
    match args.mode {
        MqttMode::Off => {
            tracing::info!("MQTT off (--mqtt off): ESP Admin devices get no broker");
            Ok(None)
        }
        MqttMode::Embedded => {
            let tls_config = match tls {
                Some(t) => Some(
                    t.server_config_without_alpn()
                        .context("cannot set up TLS for the MQTT broker")?,
                ),
                None => {
                    tracing::warn!("HTTPS is off: the embedded MQTT broker speaks plain MQTT, in the clear (ESP Admin devices need mqtts: run with --tls auto)");
                    None
                }
            };
            let opts = BrokerOptions {
                listen: SocketAddr::new(listen.ip(), args.port),
                tls: tls_config.clone(),
            };
            let broker = match Broker::start(opts, Arc::new(FleetAuthority(fleet.clone()))).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "the embedded MQTT broker could not start: serving without MQTT");
                    return Ok(None);
                }
            };
            let (user, password) = broker.service_credentials();
            let service = broker.service_addr();
            let bridge = Bridge::start(
                fleet.clone(),
                BridgeOptions {
                    host: service.ip().to_string(),
                    port: service.port(),
                    tls: None,
                    username: user,
                    password,
                    client_id: otafleet_mqtt::bridge::client_id(
                        otafleet_mqtt::broker::SERVICE_USER,
                    ),
                },
            );
            let addr = broker.listen_addr();
            Ok(Some(Mqtt {
                endpoint: MqttEndpoint::Embedded {
                    port: addr.port(),
                    tls: tls_config.is_some(),
                },
                broker_addr: Some(addr),
                broker: Some(broker),
                bridge: Some(bridge),
            }))
        }
        MqttMode::Url(url) => {
            let ca = read_ca(args.ca.as_deref())?;
            let password = std::env::var("OTAFLEET_MQTT_PASSWORD").ok();
            let path = args.ca.as_ref().map(|p| p.display().to_string());
            let opts = BridgeOptions::from_url(
                &url,
                password,
                match (&path, &ca) {
                    (Some(p), Some(c)) => Some((p.as_str(), c.as_slice())),
                    _ => None,
                },
            )?;
            let uri_tcp = match args.device_uri {
                Some(u) => u,
                None => device_uri(&opts.host, opts.port, opts.tls.is_some()),
            };
            tracing::info!(broker = %otafleet_mqtt::bridge::redact(&url), devices_use = %uri_tcp, "MQTT through your broker");
            let bridge = Bridge::start(fleet.clone(), opts);
            Ok(Some(user_broker(uri_tcp, ca, Some(bridge))))
        }
    }
}
