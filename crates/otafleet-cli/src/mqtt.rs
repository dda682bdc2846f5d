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
    bridge: Bridge,
}

impl Mqtt {
    /// Stop the bridge, then the broker.
    pub async fn stop(self) {
        self.bridge.stop().await;
        if let Some(b) = self.broker {
            b.stop().await;
        }
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
                bridge,
            }))
        }
        MqttMode::Url(url) => {
            let ca = match &args.ca {
                Some(path) => Some(
                    std::fs::read(path)
                        .with_context(|| format!("cannot read --mqtt-ca {}", path.display()))?,
                ),
                None => None,
            };
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
                None => {
                    let scheme = if opts.tls.is_some() { "mqtts" } else { "mqtt" };
                    if opts.host.contains(':') {
                        format!("{scheme}://[{}]:{}", opts.host, opts.port)
                    } else {
                        format!("{scheme}://{}:{}", opts.host, opts.port)
                    }
                }
            };
            tracing::info!(broker = %otafleet_mqtt::bridge::redact(&url), devices_use = %uri_tcp, "MQTT through your broker");
            let bridge = Bridge::start(fleet.clone(), opts);
            Ok(Some(Mqtt {
                endpoint: MqttEndpoint::User {
                    uri_tcp,
                    ca_pem: ca.map(|c| String::from_utf8_lossy(&c).into_owned()),
                },
                broker_addr: None,
                broker: None,
                bridge,
            }))
        }
    }
}
