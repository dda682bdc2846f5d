//! One virtual device running the ESP Admin SDK (docs/esp-admin.md, docs/mqtt.md): HTTP(S) for
//! its settings, its update reports and the download, MQTT for everything the server tells it.
//!
//! **Before it starts** the admin creates it (`POST /api/v1/esp-admin/devices`, in
//! [`crate::admin::create_esp_admin`]): the server draws its id, API key and MAC ([`Creds`]), and
//! puts it in the ESP32 family's project, so the run's deployment reaches it. Hence `esp-admin`
//! devices need `--admin-token`.
//!
//! **What it replays**, as the SDK does it:
//!
//! 1. At every boot, `GET /api/device/<id>/settings` with `Api-Key: <key>` →
//!    `{uriTCP, username, password}`. This call is also what makes the server mark an update
//!    that was reported `succeded` as `done`.
//! 2. MQTT to `uriTCP` (`mqtts://` trusting only the server's CA, or `mqtt://` when the server's
//!    TLS is off): client id = user name = its id, password = its key, keep-alive 30 s, last will
//!    `device/<id>/report/status` `{"status":"disconnected"}` (QoS 1, retained).
//! 3. After the CONNACK it waits (`--esp-admin-connect-wait-ms`; the SDK's 4 s), subscribes to
//!    `device/<id>/command/+` (QoS 1) and publishes `{"status":"connected"}` (QoS 1, retained).
//! 4. `command/update_trigger` `{releaseId, version, downloadPath, downloadSize}`: ignored when
//!    `releaseId` is the release it installed last; else `POST …/report/update`
//!    `{releaseId, status: "started"}` (the answer is the bare `deploymentId`), `GET` of the
//!    download path with no key (the path is the credential), streamed, with
//!    `report/update_progress` `{releaseId, deploymentId, progress}` (QoS 0) each time the
//!    progress rose 5 points; the bytes are checked (size, the `0xE9` magic byte, the app
//!    descriptor's version against the trigger's and, when this run deployed that version, the
//!    SHA-256 of the image it uploaded), then `POST …/report/update`
//!    `{deploymentId, status: "succeded"}` (sic; `failed` when the download broke or the image is
//!    wrong), `report/status` disconnected, the reset delay (`--esp-admin-reset-ms`; the SDK's
//!    7 s), and the "reboot": MQTT dropped, the release and its version installed, and back to 1.
//! 5. `command/restart`: disconnected, the reset delay, reboot. `command/config` (retained JSON):
//!    kept. `command/log` `on`/`off`: while on, a `[sim] …` line on `device/<id>/logs/info`
//!    (QoS 0) at `--log-rate` per second. `command/custom`: logged. `command/update_abort`
//!    `{releaseId}`: a download of that release in progress stops and is reported `failed`.
//!    These devices take commands whether or not `--commands` is given: the broker pushes them.
//!
//! **HTTPS.** When the server has a CA (`GET /api/v1/tls/ca.pem`, i.e. its TLS is on), every
//! ESP Admin HTTP call goes over HTTPS to the same host and port as `--server` (otafleet serves
//! HTTPS beside HTTP on its port), trusting that CA only — the SDK's `httpCert` — and MQTT uses
//! the same CA. Without one, plain HTTP (the server allows it only from its own machine) and
//! `mqtt://`.
//!
//! 6. Reports, as the SDK's `Report::send` (HTTP, then the same JSON over MQTT): `info` "config
//!    applied" with the config each time `command/config` arrives (an application confirming it),
//!    and with `--esp-admin-error-report` an `error` after every boot (an injected application
//!    error, numbered per boot).
//!
//! **Not replayed.** The SDK's `update_status` mirror on MQTT; MQTT over WebSockets (`uriWS`: the server leaves it empty). The SDK gets no
//! hash of the image: the SHA-256 check above is the simulator's own (an image deployed
//! elsewhere, `--wait-for-deployment`, is checked by size, magic byte and version only). Cut
//! downloads are not injected into these
//! devices, nor failed boots (the SDK reports nothing the server could see one by). A restart or
//! a lost MQTT session during a download is taken up after it.
//!
//! This module speaks the protocol ([`EspAdmin::check`], [`EspAdmin::install`]); the device's
//! life, outcomes and back-off are [`crate::life`]'s. A check here is: boot if the device is not
//! connected (1–3), then wait up to one `--interval` for a trigger (4), doing any restart (5)
//! that comes meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use md5::Md5;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
    TlsConfiguration, Transport,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::error::{DeviceError, SimError};
use crate::http::{status_error, Http};
use crate::images::{descriptor, Image, DESCRIPTOR_END};
use crate::life::{Dev, Flashed};
use crate::run::Shared;

/// The longest wait for the broker's CONNACK.
const CONNACK_TIMEOUT: Duration = Duration::from_secs(10);

/// An ESP Admin device's identity, as the admin's creation answered it.
#[derive(Clone)]
pub struct Creds {
    /// The SDK's `deviceId` (24 hex digits): its MQTT client id and user name.
    pub id: String,
    /// The SDK's `apiKey`: the `Api-Key` header and the MQTT password.
    pub key: String,
    /// The locally administered MAC the server drew for its row.
    pub mac: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("id", &self.id)
            .field("mac", &self.mac)
            .finish_non_exhaustive()
    }
}

/// How esp-admin devices reach the server: shared by all of them.
pub struct Env {
    /// HTTPS with the server's CA as the only root, or plain HTTP when the server has no CA.
    pub http: Http,
    /// The same CA for `mqtts://`.
    tls: Option<Arc<rustls::ClientConfig>>,
}

#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Env {
    /// Fetch the server's CA (`GET /api/v1/tls/ca.pem`) and build the clients that trust only
    /// it; without one (TLS off), plain HTTP and MQTT.
    pub async fn prepare(cfg: &Config, http: &Http) -> Result<Env, SimError> {
        let bad = |detail: String| SimError::Admin {
            what: "the server's CA for esp-admin devices",
            detail,
        };
        let r = http
            .client
            .get(http.url("/api/v1/tls/ca.pem"))
            .send()
            .await?;
        if !r.status().is_success() {
            tracing::info!(status = %r.status(), "the server has no CA (TLS off?): esp-admin devices use plain HTTP and mqtt://");
            return Ok(Env {
                http: Http::with_client(http.client.clone(), &http.base, cfg.connections),
                tls: None,
            });
        }
        let pem = r.bytes().await?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
            .pool_max_idle_per_host(cfg.connections as usize)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .tcp_nodelay(true)
            .build()?;
        // otafleet serves HTTPS beside HTTP on the same port.
        let base = match http.base.strip_prefix("http://") {
            Some(rest) => format!("https://{rest}"),
            None => http.base.to_string(),
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad("no PEM certificate in /api/v1/tls/ca.pem".into()));
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tracing::info!(%base, "esp-admin devices use HTTPS and mqtts:// trusting only the server's CA");
        Ok(Env {
            http: Http::with_client(client, &base, cfg.connections),
            tls: Some(Arc::new(tls)),
        })
    }
}

fn env(sh: &Shared) -> Result<&Env, DeviceError> {
    sh.esp_admin.as_ref().ok_or_else(|| {
        DeviceError::Protocol("an esp-admin device in a run that prepared none (a bug)".into())
    })
}

/// `command/update_trigger`: what the server offers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub release_id: String,
    #[serde(default)]
    pub version: String,
    pub download_path: String,
    pub download_size: u64,
}

/// What the MQTT session hands the device's life.
enum Cmd {
    Trigger(Offer),
    Restart,
    Abort(String),
    /// `command/config` arrived (retained: at every subscribe, and on every change).
    Config(Value),
    /// The session broke (the broker or the network away).
    Lost(String),
}

/// What the session task keeps for the device, across sessions.
#[derive(Default)]
pub struct Side {
    /// `command/log` said `on`.
    log_on: AtomicBool,
    /// The last `command/config` (None: none, or cleared).
    pub config: Mutex<Option<Value>>,
}

struct Session {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An ESP Admin device's protocol state.
pub struct EspAdmin {
    creds: Arc<Creds>,
    /// The SDK's stored release: the one it installed last.
    installed: Option<String>,
    session: Option<Session>,
    pub side: Arc<Side>,
    /// Boots so far (numbers the injected error reports).
    boots: u64,
    /// A config that came during a download, to report at the next check.
    config_to_report: Option<Value>,
}

fn topic(id: &str, rest: &str) -> String {
    format!("device/{id}/{rest}")
}

const CONNECTED: &str = r#"{"status":"connected"}"#;
const DISCONNECTED: &str = r#"{"status":"disconnected"}"#;

impl EspAdmin {
    pub fn new(creds: Option<Arc<Creds>>) -> Result<Self, DeviceError> {
        let creds = creds.ok_or_else(|| {
            DeviceError::Protocol("an esp-admin device the admin did not create (a bug)".into())
        })?;
        Ok(EspAdmin {
            creds,
            installed: None,
            session: None,
            side: Arc::default(),
            boots: 0,
            config_to_report: None,
        })
    }

    /// Steps 1–3: settings over HTTP(S), MQTT connect, the wait, subscribe, "connected".
    async fn boot(&mut self, dev: &mut Dev<'_>) -> Result<(), DeviceError> {
        self.session = None;
        let sh = dev.sh;
        let env = env(sh)?;
        let (id, key) = (&self.creds.id, &self.creds.key);
        dev.phase = "esp-admin: GET settings";
        let url = env.http.url(&format!("/api/device/{id}/settings"));
        let (r, slot) = env
            .http
            .send("esp-admin settings", || {
                env.http.client.get(&url).header("Api-Key", key).send()
            })
            .await?;
        if !r.status().is_success() {
            return Err(status_error("esp-admin settings", r).await);
        }
        let settings: Value = r.json().await.map_err(|e| DeviceError::Transport {
            what: "esp-admin settings body",
            source: e,
        })?;
        drop(slot);
        dev.enrolled();
        let uri = settings["uriTCP"].as_str().unwrap_or_default();
        let (tls, rest) = if let Some(rest) = uri.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = uri.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(DeviceError::Protocol(format!(
                "the settings name no MQTT broker the SDK could use (uriTCP {uri:?}; is the \
                 server's --mqtt off?)"
            )));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') => (
                h,
                p.parse::<u16>().map_err(|_| {
                    DeviceError::Protocol(format!("uriTCP {uri:?}: not a port number"))
                })?,
            ),
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let user = settings["username"].as_str().unwrap_or_default();
        let pass = settings["password"].as_str().unwrap_or_default();
        let mut o = MqttOptions::new(id.clone(), host, port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(true);
        o.set_credentials(user, pass);
        o.set_last_will(LastWill::new(
            topic(id, "report/status"),
            DISCONNECTED,
            QoS::AtLeastOnce,
            true,
        ));
        if tls {
            let Some(config) = env.tls.clone() else {
                return Err(DeviceError::Protocol(format!(
                    "the broker is {uri} but the server gave no CA to trust it by"
                )));
            };
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
        }
        let (client, mut el) = AsyncClient::new(o, 64);
        dev.phase = "esp-admin: MQTT connect";
        let acked = tokio::time::timeout(CONNACK_TIMEOUT, async {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match acked {
            Ok(Ok(())) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => {
                return Err(DeviceError::Protocol(format!(
                    "the broker at {uri} refused the device's CONNECT: {code:?}"
                )))
            }
            Ok(Err(e)) => return Err(DeviceError::Mqtt(format!("{uri}: {e}"))),
            Err(_) => {
                return Err(DeviceError::Mqtt(format!(
                    "{uri}: no CONNACK within {} s",
                    CONNACK_TIMEOUT.as_secs()
                )))
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let log_every =
            (sh.cfg.log_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / sh.cfg.log_rate));
        let task = tokio::spawn(session(
            el,
            client.clone(),
            id.clone(),
            tx,
            self.side.clone(),
            log_every,
        ));
        let s = Session { client, rx, task };
        dev.phase = "esp-admin: waiting after CONNACK";
        tokio::time::sleep(sh.cfg.esp_admin_connect_wait).await;
        let lost = |e: rumqttc::ClientError| DeviceError::Mqtt(e.to_string());
        s.client
            .subscribe(topic(id, "command/+"), QoS::AtLeastOnce)
            .await
            .map_err(lost)?;
        s.client
            .publish(
                topic(id, "report/status"),
                QoS::AtLeastOnce,
                true,
                CONNECTED,
            )
            .await
            .map_err(lost)?;
        self.session = Some(s);
        tracing::debug!(mac = %self.creds.mac, %id, %uri, "esp-admin device connected");
        if sh.cfg.esp_admin_error_report {
            self.boots += 1;
            let body = format!("boot {} of {}", self.boots, self.creds.id);
            self.report(sh, "error", "sim: injected application error", &body)
                .await?;
        }
        Ok(())
    }

    /// The SDK's `Report::send`: `POST /api/device/<id>/report/custom` `{type, subject, body}`
    /// over HTTP(S), then the same JSON on `device/<id>/report/custom` (QoS 1). otafleet keeps
    /// the HTTP one and drops the MQTT copy.
    async fn report(
        &self,
        sh: &Shared,
        kind: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), DeviceError> {
        let id = &self.creds.id;
        let report = json!({ "type": kind, "subject": subject, "body": body });
        self.post(sh, "esp-admin report/custom", "report/custom", &report)
            .await?;
        if let Some(s) = &self.session {
            s.client
                .publish(
                    topic(id, "report/custom"),
                    QoS::AtLeastOnce,
                    false,
                    report.to_string(),
                )
                .await
                .map_err(|e| DeviceError::Mqtt(e.to_string()))?;
        }
        Ok(())
    }

    /// "disconnected", the reset delay, then the reboot drops MQTT (a clean DISCONNECT, so the
    /// broker does not publish the will after the device is back).
    async fn reset(&mut self, sh: &Shared) {
        let Some(mut s) = self.session.take() else {
            return;
        };
        let id = &self.creds.id;
        let _ = s
            .client
            .publish(
                topic(id, "report/status"),
                QoS::AtLeastOnce,
                true,
                DISCONNECTED,
            )
            .await;
        tokio::time::sleep(sh.cfg.esp_admin_reset).await;
        let _ = s.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut s.task).await;
    }

    /// Boot if not connected, then wait up to one interval for a trigger of another release;
    /// a restart that comes meanwhile is done, and the device boots again at once.
    pub async fn check(&mut self, dev: &mut Dev<'_>) -> Result<Option<Offer>, DeviceError> {
        if self.session.is_none() {
            self.boot(dev).await?;
        }
        if let Some(c) = self.config_to_report.take() {
            self.report(dev.sh, "info", "config applied", &c.to_string())
                .await?;
        }
        dev.phase = "esp-admin: waiting for an update trigger";
        let wait = tokio::time::sleep(dev.sh.jittered(dev.sh.cfg.interval));
        tokio::pin!(wait);
        loop {
            let Some(s) = self.session.as_mut() else {
                return Err(DeviceError::Mqtt("no session (a bug)".into()));
            };
            let cmd = tokio::select! {
                c = s.rx.recv() => c,
                () = &mut wait => return Ok(None),
            };
            match cmd {
                Some(Cmd::Trigger(t)) if self.installed.as_deref() == Some(&t.release_id) => {
                    tracing::debug!(mac = %self.creds.mac, release = %t.release_id, "trigger of the installed release ignored");
                }
                Some(Cmd::Trigger(t)) => return Ok(Some(t)),
                Some(Cmd::Restart) => {
                    self.restart(dev).await;
                    self.boot(dev).await?;
                }
                Some(Cmd::Abort(release)) => {
                    tracing::debug!(mac = %self.creds.mac, %release, "update_abort with no download running");
                }
                Some(Cmd::Config(c)) => {
                    // The application applies it and says so, as an app using the SDK's
                    // `Command::onConfig` and `Report::send` would.
                    self.report(dev.sh, "info", "config applied", &c.to_string())
                        .await?;
                }
                Some(Cmd::Lost(e)) => {
                    self.session = None;
                    return Err(DeviceError::Mqtt(e));
                }
                None => {
                    self.session = None;
                    return Err(DeviceError::Mqtt("the session ended".into()));
                }
            }
        }
    }

    async fn restart(&mut self, dev: &mut Dev<'_>) {
        dev.phase = "esp-admin: restarting";
        tracing::debug!(mac = %self.creds.mac, "restart command");
        self.reset(dev.sh).await;
        tokio::time::sleep(dev.sh.jittered(dev.sh.cfg.reboot)).await;
        dev.booted = std::time::Instant::now();
        dev.sh.stats.mqtt_restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// `POST …/report/update` `{deploymentId, status}` at the end of an attempt.
    async fn report_end(
        &self,
        sh: &Shared,
        deployment: &str,
        status: &'static str,
    ) -> Result<(), DeviceError> {
        let body = json!({ "deploymentId": deployment, "status": status });
        match self
            .post(sh, "esp-admin report/update", "report/update", &body)
            .await
        {
            // A failure of an attempt the server closed already (its deployment was stopped
            // and the download cut): nothing left to say, as the SDK ignores the answer.
            Err(DeviceError::Status {
                status: 409,
                ref body,
                ..
            }) if status == "failed" && body.contains("\"update_finished\"") => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// `POST /api/device/<id>/<path>` with `Api-Key` and a JSON body, over HTTP(S); an error
    /// unless 2xx. Returns the answer and its connection slot.
    async fn post(
        &self,
        sh: &Shared,
        what: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<(reqwest::Response, Option<tokio::sync::OwnedSemaphorePermit>), DeviceError> {
        let env = env(sh)?;
        let url = env
            .http
            .url(&format!("/api/device/{}/{path}", self.creds.id));
        let (r, slot) = env
            .http
            .send(what, || {
                env.http
                    .client
                    .post(&url)
                    .header("Api-Key", &self.creds.key)
                    .json(body)
                    .send()
            })
            .await?;
        if !r.status().is_success() {
            return Err(status_error(what, r).await);
        }
        Ok((r, slot))
    }

    /// Step 4: started, the download with progress over MQTT, the checks, succeded (or failed),
    /// then the reset and the reboot's MQTT drop. `None`: the download broke (reported failed);
    /// the device checks again later.
    pub async fn install(
        &mut self,
        dev: &mut Dev<'_>,
        o: Offer,
    ) -> Result<Option<Flashed>, DeviceError> {
        let sh = dev.sh;
        let env = env(sh)?;
        dev.phase = "esp-admin: reporting started";
        let body = json!({ "releaseId": o.release_id, "status": "started" });
        let (r, slot) = match self
            .post(
                sh,
                "esp-admin report/update started",
                "report/update",
                &body,
            )
            .await
        {
            // The release is offered no more (its deployment was stopped since the trigger).
            Err(DeviceError::Status {
                status: 409,
                ref body,
                ..
            }) if body.contains("\"release_not_offered\"") => {
                return Err(DeviceError::Withdrawn { update_id: 0 })
            }
            r => r?,
        };
        let deployment = r
            .text()
            .await
            .map_err(|e| DeviceError::Transport {
                what: "esp-admin report/update started body",
                source: e,
            })?
            .trim()
            .to_string();
        drop(slot);
        let update_id = deployment.parse::<i64>().ok();

        dev.phase = "downloading";
        let url = env.http.url(&o.download_path);
        let (r, slot) = env
            .http
            .send("esp-admin download", || env.http.client.get(&url).send())
            .await?;
        if !r.status().is_success() {
            let e = status_error("esp-admin download", r).await;
            let _ = self.report_end(sh, &deployment, "failed").await;
            return Err(e);
        }
        sh.stats.downloading.fetch_add(1, Ordering::Relaxed);
        let (mut sha, mut md5, mut got) = (Sha256::new(), Md5::new(), 0u64);
        let mut head = Vec::with_capacity(DESCRIPTOR_END);
        let mut last_progress = 0u64;
        let mut aborted = false;
        let mut restart_after = false;
        let mut lost = None;
        let mut body = r.bytes_stream();
        let started = std::time::Instant::now();
        let progress_topic = topic(&self.creds.id, "report/update_progress");
        // A session is there: the check that gave the trigger just booted.
        while let Some(s) = self.session.as_mut() {
            tokio::select! {
                chunk = body.next() => {
                    let Some(Ok(chunk)) = chunk else { break };
                    sh.throttle(started, got + chunk.len() as u64).await;
                    if head.len() < DESCRIPTOR_END {
                        let take = chunk.len().min(DESCRIPTOR_END - head.len());
                        head.extend_from_slice(&chunk[..take]);
                    }
                    sha.update(&chunk);
                    md5.update(&chunk);
                    got += chunk.len() as u64;
                    sh.stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    let progress = (got * 100).checked_div(o.download_size).unwrap_or(0).min(100);
                    if progress >= last_progress + 5 && lost.is_none() {
                        last_progress = progress;
                        let p = json!({
                            "releaseId": o.release_id,
                            "deploymentId": deployment,
                            "progress": progress,
                        });
                        let _ = s.client.try_publish(
                            progress_topic.clone(),
                            QoS::AtMostOnce,
                            false,
                            p.to_string(),
                        );
                    }
                }
                cmd = s.rx.recv(), if lost.is_none() => match cmd {
                    Some(Cmd::Abort(release)) if release == o.release_id => {
                        aborted = true;
                        break;
                    }
                    Some(Cmd::Abort(_)) | Some(Cmd::Trigger(_)) => {}
                    Some(Cmd::Restart) => restart_after = true,
                    // Reported once the download is over (the next check).
                    Some(Cmd::Config(c)) => self.config_to_report = Some(c),
                    Some(Cmd::Lost(e)) => lost = Some(e),
                    None => lost = Some("the session ended".into()),
                },
            }
        }
        drop(body);
        drop(slot);
        sh.stats.downloading.fetch_sub(1, Ordering::Relaxed);
        if lost.is_some() {
            // Taken up after the download: the next check boots again.
            self.session = None;
        }
        if aborted {
            self.report_end(sh, &deployment, "failed").await?;
            return Err(DeviceError::Aborted {
                update_id: update_id.unwrap_or_default(),
            });
        }
        if got != o.download_size {
            tracing::debug!(mac = %self.creds.mac, got, size = o.download_size, "download broke; reported failed");
            self.report_end(sh, &deployment, "failed").await?;
            if restart_after {
                self.restart(dev).await;
            }
            return Ok(None);
        }
        let desc = descriptor(&head);
        let wrong = if head.first() != Some(&0xE9) {
            Some("the image does not start with the 0xE9 magic byte".to_string())
        } else {
            match &desc {
                Some(d) if !o.version.is_empty() && d.version != o.version => Some(format!(
                    "the trigger says version {:?}, the image's descriptor {:?}",
                    o.version, d.version
                )),
                _ => None,
            }
        };
        let sha256 = hex::encode(sha.finalize());
        // The SDK is given no hash; the image this run deployed under that version is known.
        let known = sh
            .deployed
            .lock()
            .expect("deployed lock")
            .iter()
            .find(|i| !o.version.is_empty() && i.version == o.version)
            .cloned();
        let wrong = wrong.or_else(|| {
            known.filter(|k| k.sha256 != sha256).map(|k| {
                format!(
                    "SHA-256 {sha256}, not {} of the image deployed as version {}",
                    k.sha256, k.version
                )
            })
        });
        if let Some(why) = wrong {
            let _ = self.report_end(sh, &deployment, "failed").await;
            return Err(DeviceError::Download {
                update_id: update_id.unwrap_or_default(),
                detail: why,
            });
        }
        dev.phase = "esp-admin: reporting succeded";
        self.report_end(sh, &deployment, "succeded").await?;
        dev.phase = "esp-admin: resetting";
        self.reset(sh).await;
        self.installed = Some(o.release_id.clone());
        let version = if o.version.is_empty() {
            desc.as_ref().map(|d| d.version.clone()).unwrap_or_default()
        } else {
            o.version.clone()
        };
        Ok(Some(Flashed {
            image: Image {
                version,
                sha256,
                md5: hex::encode(md5.finalize()),
                size: got,
            },
            project: desc.map(|d| d.project),
            update_id,
            announced: true,
        }))
    }
}

/// The MQTT session: polls the event loop, hands triggers, restarts and aborts to the device's
/// life, keeps the config and the log switch, and sends log lines while the switch is on.
async fn session(
    mut el: EventLoop,
    client: AsyncClient,
    id: String,
    tx: mpsc::UnboundedSender<Cmd>,
    side: Arc<Side>,
    log_every: Option<Duration>,
) {
    let prefix = format!("device/{id}/command/");
    let logs = topic(&id, "logs/info");
    let mut tick = tokio::time::interval(log_every.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lines = 0u64;
    loop {
        tokio::select! {
            ev = el.poll() => match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Some(name) = p.topic.strip_prefix(&prefix) else { continue };
                    match name {
                        "update_trigger" => match serde_json::from_slice::<Offer>(&p.payload) {
                            Ok(t) => { let _ = tx.send(Cmd::Trigger(t)); }
                            Err(e) => tracing::warn!(%id, error = %e, "esp-admin: an update_trigger the SDK could not read"),
                        },
                        "restart" => { let _ = tx.send(Cmd::Restart); }
                        "update_abort" => {
                            let release = serde_json::from_slice::<Value>(&p.payload)
                                .ok()
                                .and_then(|v| match &v["releaseId"] {
                                    Value::String(s) => Some(s.clone()),
                                    Value::Number(n) => Some(n.to_string()),
                                    _ => None,
                                })
                                .unwrap_or_default();
                            let _ = tx.send(Cmd::Abort(release));
                        }
                        "config" => {
                            let config = serde_json::from_slice::<Value>(&p.payload).ok();
                            tracing::debug!(%id, ?config, "esp-admin: config");
                            if let Some(c) = &config {
                                let _ = tx.send(Cmd::Config(c.clone()));
                            }
                            *side.config.lock().expect("config lock") = config;
                        }
                        "log" => {
                            let on = &p.payload[..] == b"on";
                            tracing::debug!(%id, on, "esp-admin: log switch");
                            side.log_on.store(on, Ordering::Relaxed);
                        }
                        "custom" => {
                            tracing::info!(%id, payload = %String::from_utf8_lossy(&p.payload), "esp-admin: custom command");
                        }
                        other => tracing::debug!(%id, command = other, "esp-admin: unknown command ignored"),
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Cmd::Lost(e.to_string()));
                    return;
                }
            },
            _ = tick.tick(), if log_every.is_some() => {
                if side.log_on.load(Ordering::Relaxed) {
                    lines += 1;
                    let _ = client.try_publish(
                        logs.clone(),
                        QoS::AtMostOnce,
                        false,
                        format!("[sim] line {lines} of a virtual ESP Admin device"),
                    );
                }
            }
        }
    }
}
