//! otafleet's own MQTT client: the one code path for both modes (docs/mqtt.md). With the
//! embedded broker it logs in on the broker's loopback service listener as the broker's
//! superuser; with a broker the user runs it logs in with the credentials it was given, and that
//! broker's ACLs decide (the documented Mosquitto configuration gives it `device/#`).
//!
//! It subscribes to every device's `device/+/report/+` and `device/+/logs/+` and hands each
//! message to `Fleet` (`Fleet::mqtt_*`, which names the device by the topic's `<id>`), and it
//! publishes what the devices are told:
//!
//! - **presence**: `report/status` (connected / disconnected, the latter also the device's last
//!   will) → the device's MQTT presence; every time otafleet's session (re)starts, presence is
//!   forgotten and rebuilt from the retained statuses.
//! - **config**, retained on `command/config`, from the database: at every session start for
//!   every device, and whenever a device's config version changes — so a device gets its config
//!   on every subscribe, after a restart of either side.
//! - **the log switch**, retained `command/log` `on`/`off`: `on` while someone watches the
//!   device's logs (the live-log lease), `off` within [`TICK`] plus the lease's grace after the
//!   last viewer left.
//! - **commands** queued in otafleet (restart, config, log, custom, update_abort): published to
//!   a connected device, at once or when it next connects, then `done` (MQTT devices do not
//!   answer commands).
//! - **update triggers**: when a device connects and when a deployment changes, every connected
//!   device's offer (`Fleet::esp_admin_offer`) is published as `command/update_trigger` —
//!   again at each reconnect until the device reports `started` (ESP Admin loses triggers sent
//!   while a device is offline), and, for a rollout that updates at most `max_parallel`
//!   devices at once, whenever one of its attempts ends (a device held for a free slot is
//!   triggered once one frees).
//!
//! Messages that name an id otafleet does not know, or carry junk, are logged and dropped: the
//! bridge never stops on a device's input.
//!
//! otafleet's events reach the worker through a relay task ([`relay`]) that drains them as fast
//! as they come and passes on only those that may concern an MQTT device: the worker reads the
//! database and publishes, and reading the whole fleet's events itself it would fall behind a
//! busy fleet (on 2 cores in a debug build, 1,000 devices' wave overran it every few seconds).
//! Should events still be missed, every device's retained state is published again and every
//! connected device's offer triggered.
//!
//! **In a cluster** (several instances on one PostgreSQL database, docs/deployment.md) the bridge
//! runs on the primary only, and changes made through the other instances reach it as their
//! events (`Event::Remote`): those that may concern an MQTT device are read back from the
//! database (`Fleet::mqtt_remote_event`) and handled as local ones, so a deployment, command or
//! config change made through any instance reaches the devices. One thing stays per instance:
//! the log switch follows the viewers of the primary's live logs only.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use otafleet_core::deployments::DeploymentStatus;
use otafleet_core::events::Event;
use otafleet_core::{Fleet, MqttMessage};
use rumqttc::{AsyncClient, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How often the log switches are checked against the watchers.
pub const TICK: Duration = Duration::from_secs(2);

/// Why the bridge could not be set up (bad options; a broker that cannot be reached is retried,
/// not an error).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("--mqtt {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("--mqtt-ca {path}: {reason}")]
    Ca { path: String, reason: String },
}

/// Where and how otafleet's client logs in.
#[derive(Clone)]
pub struct BridgeOptions {
    pub host: String,
    pub port: u16,
    /// TLS to the broker (`mqtts://`); `None`: plain MQTT.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub username: String,
    pub password: String,
    pub client_id: String,
}

impl std::fmt::Debug for BridgeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .finish()
    }
}

#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl BridgeOptions {
    /// A broker the user runs: `mqtt://[user[:password]@]host[:port]` or `mqtts://…` (ports
    /// 1883 and 8883 by default). `password` (e.g. from `OTAFLEET_MQTT_PASSWORD`) wins over the
    /// URL's. For `mqtts://` the broker's certificate is checked against `ca_pem` when given,
    /// else against the system's trusted roots.
    pub fn from_url(
        url: &str,
        password: Option<String>,
        ca_pem: Option<(&str, &[u8])>,
    ) -> Result<Self, BridgeError> {
        let bad = |reason: &str| BridgeError::Url {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let tls = match parsed.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(bad("use mqtt://host:1883 or mqtts://host:8883")),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed.port().unwrap_or(if tls { 8883 } else { 1883 });
        let username = percent_decode(parsed.username());
        let password = password
            .or_else(|| parsed.password().map(percent_decode))
            .unwrap_or_default();
        let tls = if tls {
            let mut roots = rustls::RootCertStore::empty();
            match ca_pem {
                Some((path, pem)) => {
                    let ca = |reason: String| BridgeError::Ca {
                        path: path.to_owned(),
                        reason,
                    };
                    let mut n = 0;
                    for cert in rustls_pemfile::certs(&mut &pem[..]) {
                        let cert = cert.map_err(|e| ca(e.to_string()))?;
                        roots.add(cert).map_err(|e| ca(e.to_string()))?;
                        n += 1;
                    }
                    if n == 0 {
                        return Err(ca("no PEM certificate in the file".into()));
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    for cert in found.certs {
                        let _ = roots.add(cert);
                    }
                    if roots.is_empty() {
                        return Err(bad(
                            "no trusted roots on this system: give the broker's CA with --mqtt-ca FILE",
                        ));
                    }
                }
            }
            let config = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| bad(&e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            tls,
            username,
            password,
            client_id: client_id("otafleet"),
        })
    }
}

/// A client id of its own per process (`<prefix>-<8 hex>`), so two otafleet instances never take
/// over each other's session. On the embedded broker the prefix is its service user, a prefix no
/// device may log in with.
pub fn client_id(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The running bridge.
pub struct Bridge {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    connected: watch::Receiver<bool>,
}

impl Bridge {
    /// Start the client; it connects in the background and reconnects until stopped.
    pub fn start(fleet: Fleet, opts: BridgeOptions) -> Bridge {
        let stop = CancellationToken::new();
        let (tx, connected) = watch::channel(false);
        let task = tokio::spawn(run(fleet, opts, stop.clone(), tx));
        Bridge {
            stop,
            task,
            connected,
        }
    }

    /// Whether otafleet's session with the broker is up now.
    pub fn connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Follow the session's state.
    pub fn watch_connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

enum Incoming {
    Session,
    Message { topic: String, payload: Vec<u8> },
    Down,
}

async fn run(
    fleet: Fleet,
    opts: BridgeOptions,
    stop: CancellationToken,
    connected: watch::Sender<bool>,
) {
    let mut o = MqttOptions::new(opts.client_id.clone(), opts.host.clone(), opts.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    o.set_max_packet_size(256 * 1024, 256 * 1024);
    if !opts.username.is_empty() || !opts.password.is_empty() {
        o.set_credentials(opts.username.clone(), opts.password.clone());
    }
    if let Some(tls) = &opts.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    let (client, eventloop) = AsyncClient::new(o, 4096);
    // Unbounded: the event loop must never wait on the worker while the worker waits on the
    // client's request queue, which only the event loop drains.
    let (tx, rx) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll(eventloop, tx, stop.clone(), opts.clone()));
    // Subscribed before the session starts, so nothing after it is missed.
    let (relayed_tx, relayed) = mpsc::unbounded_channel();
    let relay_task = tokio::spawn(relay(fleet.events().subscribe(), relayed_tx, stop.clone()));
    let mut worker = Worker {
        fleet,
        client,
        connected,
        ids: HashMap::new(),
        online: HashSet::new(),
        log_on: HashSet::new(),
        config_version: HashMap::new(),
        triggered: HashMap::new(),
        deployments: HashMap::new(),
        slotted: HashMap::new(),
    };
    worker.run(rx, relayed, stop).await;
    let _ = worker.client.disconnect().await;
    let _ = poller.await;
    let _ = relay_task.await;
}

/// What [`relay`] passes on to the worker.
enum Relayed {
    Event(Event),
    /// Another instance's event, its JSON parsed once here.
    Remote {
        name: &'static str,
        json: serde_json::Value,
    },
    /// Events were missed: every device's retained state and trigger is published again.
    Missed,
}

/// Drains otafleet's events as fast as they come and passes on only those that may concern an
/// MQTT device, judged without any I/O. The worker reads the database and publishes for what it
/// gets, which takes time: were it to read the broadcast itself, the events of a busy fleet (every
/// HTTP device's check-in and progress, and in a cluster every other instance's) would overrun it
/// while it does, and each overrun's full republish would make the next one likelier. What passes:
/// MQTT devices' records, removals, config changes and commands (an admin's, few); a deployment
/// only when its status or wave is new (its events repeat with every device's progress); an
/// attempt only when offered or finished (a trigger, or a rollout's freed slot).
async fn relay(
    mut events: tokio::sync::broadcast::Receiver<Event>,
    tx: mpsc::UnboundedSender<Relayed>,
    stop: CancellationToken,
) {
    use otafleet_core::updates::UpdateState;
    use tokio::sync::broadcast::error::RecvError;
    // Each deployment's status and wave as last passed on.
    let mut seen: HashMap<i64, (String, i64)> = HashMap::new();
    let mut fresh = |id: i64, status: String, wave: i64| {
        seen.insert(id, (status.clone(), wave)) != Some((status, wave))
    };
    loop {
        let e = tokio::select! {
            _ = stop.cancelled() => return,
            e = events.recv() => e,
        };
        let pass = match e {
            Ok(e) => {
                let wanted = match &e {
                    Event::Device { device } => device.mqtt_id.is_some(),
                    Event::DeviceRemoved { .. }
                    | Event::DeviceConfig { .. }
                    | Event::Command { .. } => true,
                    Event::Deployment { deployment } => {
                        let status = serde_json::to_value(deployment.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        fresh(deployment.id, status, deployment.wave)
                    }
                    Event::Update { update } => {
                        update.state == UpdateState::Offered || update.is_finished()
                    }
                    Event::Remote { name: "lagged", .. } => {
                        tracing::warn!("MQTT: another instance's events may have been missed; republishing every device's config and triggers");
                        if tx.send(Relayed::Missed).is_err() {
                            return;
                        }
                        false
                    }
                    Event::Remote { name, .. } => {
                        let Some(json) = e.remote_json() else {
                            continue;
                        };
                        let s = |p: &str| json.pointer(p).and_then(|v| v.as_str());
                        let n = |p: &str| json.pointer(p).and_then(|v| v.as_i64());
                        let wanted = match *name {
                            "device" => s("/device/mqtt_id").is_some(),
                            "device_removed" | "device_config" | "command" => true,
                            "deployment" => match (n("/deployment/id"), s("/deployment/status")) {
                                (Some(id), Some(status)) => {
                                    fresh(id, status.to_owned(), n("/deployment/wave").unwrap_or(0))
                                }
                                _ => false,
                            },
                            "update" => s("/update/state").is_some_and(|s| {
                                matches!(s, "offered" | "done" | "failed" | "cancelled")
                            }),
                            _ => false,
                        };
                        if wanted && tx.send(Relayed::Remote { name, json }).is_err() {
                            return;
                        }
                        false
                    }
                    _ => false,
                };
                wanted.then_some(Relayed::Event(e))
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "MQTT: fell behind otafleet's events; republishing every device's config and triggers");
                Some(Relayed::Missed)
            }
            Err(RecvError::Closed) => return,
        };
        if let Some(r) = pass {
            if tx.send(r).is_err() {
                return;
            }
        }
    }
}

async fn poll(
    mut eventloop: EventLoop,
    tx: mpsc::UnboundedSender<Incoming>,
    stop: CancellationToken,
    opts: BridgeOptions,
) {
    let mut backoff = Duration::from_millis(250);
    let mut was_up = false;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(ack))) => {
                if ack.code == rumqttc::ConnectReturnCode::Success {
                    backoff = Duration::from_millis(250);
                    was_up = true;
                    tracing::info!(host = %opts.host, port = opts.port, "MQTT: otafleet's session with the broker is up");
                    let _ = tx.send(Incoming::Session);
                }
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                let _ = tx.send(Incoming::Message {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                });
            }
            Ok(_) => {}
            Err(e) => {
                let why = e.to_string();
                if was_up {
                    tracing::warn!(error = %why, "MQTT: lost the broker; reconnecting");
                } else {
                    tracing::warn!(host = %opts.host, port = opts.port, user = %opts.username, error = %why, "MQTT: cannot reach or log in to the broker; retrying");
                }
                was_up = false;
                let _ = tx.send(Incoming::Down);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

struct Worker {
    fleet: Fleet,
    client: AsyncClient,
    connected: watch::Sender<bool>,
    /// MAC → MQTT id of every MQTT device.
    ids: HashMap<String, String>,
    /// Ids of devices connected now (their last status said so).
    online: HashSet<String>,
    /// Ids whose retained log switch is `on`.
    log_on: HashSet<String>,
    /// Id → the config version last published (None: no config, the retained message cleared).
    config_version: HashMap<String, Option<i64>>,
    /// Id → the attempt last triggered in the device's current connection.
    triggered: HashMap<String, i64>,
    /// Each deployment's status and started wave as last seen (its events repeat with every
    /// device's progress).
    deployments: HashMap<i64, (DeploymentStatus, i64)>,
    /// Rollouts (not stopped or paused) that update at most `max_parallel` devices at once → the devices they
    /// name (empty: project-wide). A device held for a free slot gets no trigger, so when one
    /// of their attempts ends the waiting devices are triggered again.
    slotted: HashMap<i64, Vec<String>>,
}

impl Worker {
    async fn run(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Incoming>,
        mut events: mpsc::UnboundedReceiver<Relayed>,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                m = rx.recv() => match m {
                    None => return,
                    Some(Incoming::Session) => self.session().await,
                    Some(Incoming::Down) => {
                        self.connected.send_replace(false);
                    }
                    Some(Incoming::Message { topic, payload }) => self.message(&topic, &payload).await,
                },
                e = events.recv() => match e {
                    Some(Relayed::Missed) => {
                        if *self.connected.borrow() {
                            self.republish_all().await;
                        }
                    }
                    Some(Relayed::Remote { name, json }) => {
                        if self.follows_remote(name, &json) {
                            if let Some(local) = self.fleet.mqtt_remote_event(name, &json).await {
                                self.event(local).await;
                            }
                        }
                    }
                    Some(Relayed::Event(e)) => self.event(e).await,
                    None => return,
                },
                _ = tick.tick() => self.tick().await,
            }
        }
    }

    async fn publish(&self, m: MqttMessage) -> bool {
        match self
            .client
            .publish(m.topic.clone(), QoS::AtLeastOnce, m.retain, m.payload)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(topic = %m.topic, error = %e, "MQTT: could not publish");
                false
            }
        }
    }

    async fn load_ids(&mut self) {
        match self.fleet.mqtt_devices().await {
            Ok(list) => self.ids = list.into_iter().map(|d| (d.mac, d.id)).collect(),
            Err(e) => tracing::warn!(error = %e, "MQTT: cannot list the MQTT devices"),
        }
    }

    /// otafleet's session (re)started: subscribe, rebuild presence, republish retained state.
    async fn session(&mut self) {
        for filter in ["device/+/report/+", "device/+/logs/+"] {
            if let Err(e) = self.client.subscribe(filter, QoS::AtLeastOnce).await {
                tracing::warn!(%filter, error = %e, "MQTT: cannot subscribe");
            }
        }
        if let Err(e) = self.fleet.mqtt_presence_reset().await {
            tracing::warn!(error = %e, "MQTT: cannot reset presence");
        }
        self.online.clear();
        self.triggered.clear();
        self.log_on.clear();
        self.config_version.clear();
        self.load_ids().await;
        self.republish_all().await;
        self.connected.send_replace(true);
    }

    async fn republish_all(&mut self) {
        let ids: Vec<(String, String)> = self
            .ids
            .iter()
            .map(|(m, i)| (m.clone(), i.clone()))
            .collect();
        for (mac, id) in ids {
            self.config(&id, true).await;
            let on = self.fleet.logs_wanted(&mac);
            self.log_switch(&id, on).await;
            if self.online.contains(&id) {
                self.deliver(&id).await;
                // An offer whose event was missed (an attempt already triggered is not again).
                self.trigger(&id).await;
            }
        }
    }

    async fn log_switch(&mut self, id: &str, on: bool) {
        if self.publish(self.fleet.mqtt_log_switch(id, on)).await {
            if on {
                self.log_on.insert(id.to_owned());
            } else {
                self.log_on.remove(id);
            }
        }
    }

    /// Publish the device's config if its version changed since the last time (or `force`).
    async fn config(&mut self, id: &str, force: bool) {
        match self.fleet.mqtt_config(id).await {
            Ok(found) => {
                let version = found.as_ref().map(|(v, _)| *v);
                if !force && self.config_version.get(id) == Some(&version) {
                    return;
                }
                let message = match found {
                    Some((_, m)) => m,
                    // An empty retained message clears the broker's copy.
                    None => MqttMessage {
                        topic: format!("device/{id}/command/config"),
                        payload: Vec::new(),
                        retain: true,
                    },
                };
                if self.publish(message).await {
                    self.config_version.insert(id.to_owned(), version);
                }
            }
            Err(e) => tracing::warn!(%id, error = %e, "MQTT: cannot read a device's config"),
        }
    }

    /// A connected device: its pending commands and, if it has one, its update trigger.
    async fn deliver(&mut self, id: &str) {
        match self.fleet.mqtt_commands(id).await {
            Ok(commands) => {
                for c in commands {
                    let switch = c
                        .message
                        .topic
                        .ends_with("/command/log")
                        .then(|| c.message.payload == b"on");
                    if self.publish(c.message).await {
                        match switch {
                            Some(true) => {
                                self.log_on.insert(id.to_owned());
                            }
                            Some(false) => {
                                self.log_on.remove(id);
                            }
                            None => {}
                        }
                        if let Err(e) = self.fleet.mqtt_command_published(id, c.command_id).await {
                            tracing::warn!(%id, command = c.command_id, error = %e, "MQTT: cannot record a command as delivered");
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(%id, error = %e, "MQTT: cannot read a device's commands"),
        }
        self.trigger(id).await;
    }

    async fn trigger(&mut self, id: &str) {
        match self.fleet.esp_admin_offer(id).await {
            Ok(Some(t)) => {
                let update = t.update_id;
                if self.triggered.get(id) == Some(&update) {
                    return;
                }
                let payload = serde_json::to_vec(&t).expect("a trigger serialises");
                let m = MqttMessage {
                    topic: format!("device/{id}/command/update_trigger"),
                    payload,
                    retain: false,
                };
                if self.publish(m).await {
                    tracing::info!(%id, release = %t.release_id, update, "MQTT: update triggered");
                    self.triggered.insert(id.to_owned(), update);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%id, error = %e, "MQTT: cannot decide a device's update"),
        }
    }

    async fn message(&mut self, topic: &str, payload: &[u8]) {
        let mut parts = topic.split('/');
        let (Some("device"), Some(id), Some(kind), Some(name), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            tracing::debug!(%topic, "MQTT: not a device topic; ignored");
            return;
        };
        let result = match (kind, name) {
            ("report", "status") => {
                if payload.is_empty() {
                    // A cleared retained status (someone removed it): nothing to say.
                    return;
                }
                match self.fleet.mqtt_status(id, payload).await {
                    Ok(true) => {
                        self.online.insert(id.to_owned());
                        self.triggered.remove(id);
                        self.deliver(id).await;
                        Ok(())
                    }
                    Ok(false) => {
                        self.online.remove(id);
                        self.triggered.remove(id);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            ("report", "custom") => self.fleet.mqtt_report(id, payload).await.map(|_| ()),
            ("report", "update_progress") => self.fleet.mqtt_progress(id, payload).await,
            ("report", "update_status") => {
                // HTTP's report/update is the truth; this mirror is only logged.
                tracing::debug!(%id, payload = %String::from_utf8_lossy(payload), "MQTT: update status");
                Ok(())
            }
            ("logs", level) => self.fleet.mqtt_log(id, level, payload).await,
            _ => {
                tracing::debug!(%topic, "MQTT: unknown device topic; ignored");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(%topic, error = %e, "MQTT: a device's message was refused");
        }
    }

    /// Whether another instance's event (passed on by [`relay`]) concerns an MQTT device this
    /// bridge knows, judged from its JSON before the record is read back from the database.
    fn follows_remote(&self, name: &str, json: &serde_json::Value) -> bool {
        if !*self.connected.borrow() {
            return false;
        }
        let ours = |p: &str| {
            json.pointer(p)
                .and_then(|v| v.as_str())
                .is_some_and(|mac| self.ids.contains_key(mac))
        };
        match name {
            "device" | "deployment" => true,
            "device_removed" => ours("/mac"),
            "device_config" => ours("/config/mac"),
            "command" => ours("/command/mac"),
            "update" => {
                ours("/update/mac")
                    || json
                        .pointer("/update/deployment_id")
                        .and_then(|v| v.as_i64())
                        .is_some_and(|d| self.slotted.contains_key(&d))
            }
            _ => false,
        }
    }

    async fn event(&mut self, e: Event) {
        if !*self.connected.borrow() {
            return;
        }
        match e {
            Event::Device { device } => {
                if let Some(id) = device.mqtt_id.clone() {
                    if self.ids.insert(device.mac.clone(), id.clone()).is_none() {
                        // A new MQTT device: its retained state exists from the start.
                        self.config(&id, true).await;
                        self.log_switch(&id, false).await;
                    }
                }
            }
            Event::DeviceRemoved { mac } => {
                if let Some(id) = self.ids.remove(&mac) {
                    self.online.remove(&id);
                    self.config_version.remove(&id);
                    self.log_on.remove(&id);
                }
            }
            Event::DeviceConfig { config } => {
                if let Some(id) = self.ids.get(&config.mac).cloned() {
                    if self.config_version.get(&id) != Some(&config.version) {
                        self.config(&id, false).await;
                    }
                }
            }
            Event::Command { command }
                if command.state == otafleet_core::commands::CommandState::Queued =>
            {
                if let Some(id) = self.ids.get(&command.mac).cloned() {
                    if self.online.contains(&id) {
                        self.deliver(&id).await;
                    }
                }
            }
            Event::Deployment { deployment } => {
                // Only a new deployment (which may already count as completed: devices of unknown
                // chip, as ESP Admin devices are, get no verdict until offered), one that becomes
                // active again (a resumed rollout too) or a rollout that started its next wave
                // can offer something new; its progress events, one per device update, must not
                // cost an offer per device.
                let (status, wave) = (deployment.status, deployment.wave);
                let slots = deployment
                    .plan
                    .as_ref()
                    .is_some_and(|p| p.max_parallel.is_some());
                // Completed counts too: a deployment of ESP Admin devices may be created
                // completed (their chip is unknown until one is offered) and go on later.
                if slots && !matches!(status, DeploymentStatus::Stopped | DeploymentStatus::Paused)
                {
                    self.slotted
                        .insert(deployment.id, deployment.devices.clone());
                } else {
                    self.slotted.remove(&deployment.id);
                }
                let new_or_again = match self.deployments.insert(deployment.id, (status, wave)) {
                    None => !matches!(status, DeploymentStatus::Stopped | DeploymentStatus::Paused),
                    Some((before, before_wave)) => {
                        status == DeploymentStatus::Active
                            && (before != status || wave > before_wave)
                    }
                };
                if !new_or_again {
                    return;
                }
                for id in self.online_of(&deployment.devices) {
                    self.trigger(&id).await;
                }
            }
            // A slot of a rollout with `max_parallel` freed: its waiting devices may go now.
            Event::Update { update } if update.is_finished() => {
                let devices = update
                    .deployment_id
                    .and_then(|d| self.slotted.get(&d))
                    .cloned();
                if let Some(devices) = devices {
                    // The devices that waited first: the freed slot is not handed straight
                    // back to the device whose attempt just ended (a failed one is offered
                    // the image again).
                    let own = self.ids.get(&update.mac).cloned();
                    let mut ids = self.online_of(&devices);
                    ids.sort_by_key(|id| Some(id) == own.as_ref());
                    for id in ids {
                        self.trigger(&id).await;
                    }
                }
            }
            Event::Update { update }
                if update.state == otafleet_core::updates::UpdateState::Offered =>
            {
                if let Some(id) = self.ids.get(&update.mac).cloned() {
                    if self.online.contains(&id) {
                        self.trigger(&id).await;
                    }
                }
            }
            _ => {}
        }
    }

    /// The connected devices among `macs` (empty: every connected device).
    fn online_of(&self, macs: &[String]) -> Vec<String> {
        if macs.is_empty() {
            self.online.iter().cloned().collect()
        } else {
            macs.iter()
                .filter_map(|mac| self.ids.get(mac))
                .filter(|id| self.online.contains(*id))
                .cloned()
                .collect()
        }
    }

    /// Keep every retained log switch in step with the watchers.
    async fn tick(&mut self) {
        if !*self.connected.borrow() {
            return;
        }
        let ids: Vec<(String, String)> = self
            .ids
            .iter()
            .map(|(m, i)| (m.clone(), i.clone()))
            .collect();
        for (mac, id) in ids {
            let wanted = self.fleet.logs_wanted(&mac);
            if wanted != self.log_on.contains(&id) {
                tracing::info!(%id, on = wanted, "MQTT: log switch");
                self.log_switch(&id, wanted).await;
            }
        }
    }
}
