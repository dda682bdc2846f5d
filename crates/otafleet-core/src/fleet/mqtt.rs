//! [`Fleet`] methods for devices that speak MQTT (issue 16; docs/mqtt.md): what otafleet's own
//! MQTT client (`otafleet-mqtt`'s bridge) hands over from the broker, and what it publishes.
//!
//! The bridge is the only caller. Whoever reaches these methods has already passed the broker:
//! a device may only publish to its own `device/<id>/report/…` and `device/<id>/logs/…` (the
//! embedded broker enforces it; a user's broker by its ACLs, docs/mqtt.md), so the `<id>` of a
//! topic names the device that sent it. The topic scheme is ESP Admin's; ids are the ESP Admin
//! ids otafleet gave ([`Fleet::esp_admin_create`]). A message about an id otafleet does not know
//! is refused with 404 and changes nothing.
//!
//! What HTTP carries stays the truth where both carry the same: the SDK reports an update's
//! start and end over HTTP (`report/update`) and mirrors them on MQTT (`report/update_status`),
//! which is therefore only logged; it sends a custom report over both, and the MQTT copy of a
//! report just stored over HTTP is dropped ([`Fleet::mqtt_report`]).

use serde::Serialize;
use serde_json::Value;

use super::esp_admin::{valid_id, EspAdminCustomReport};
use crate::commands::{self, Command, CommandKind, CommandState};
use crate::error::{CoreError, Result};
use crate::events::Event;
use crate::logs::{LogBatch, LogLineIn};
use crate::reports::Report;
use crate::updates::{self, UpdateState, Why};
use crate::{config, db, deployments, devices, Fleet};

/// How long after a report arrived over HTTP an identical one over MQTT counts as its copy.
pub const REPORT_ECHO_S: i64 = 60;

/// One MQTT message for a device's `device/<id>/command/<name>` topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MqttMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Retained: the broker hands it to the device on every subscribe (config, log switch).
    pub retain: bool,
}

impl MqttMessage {
    fn command(id: &str, name: &str, payload: impl Into<Vec<u8>>, retain: bool) -> Self {
        Self {
            topic: format!("device/{id}/command/{name}"),
            payload: payload.into(),
            retain,
        }
    }
}

/// A queued command as the message that carries it.
#[derive(Debug, Clone)]
pub struct MqttCommand {
    pub command_id: i64,
    pub message: MqttMessage,
}

/// An MQTT device as the bridge keeps it: its id and its MAC (the device table's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttDevice {
    pub id: String,
    pub mac: String,
}

fn unknown(id: &str) -> CoreError {
    CoreError::not_found(format!(
        "MQTT device '{}' (not an id otafleet gave; add the device first)",
        crate::validate::printable(id, 40)
    ))
}

impl Fleet {
    /// Every device with an MQTT id.
    pub async fn mqtt_devices(&self) -> Result<Vec<MqttDevice>> {
        Ok(devices::mqtt_devices(self.db())
            .await?
            .into_iter()
            .map(|(id, mac)| MqttDevice { id, mac })
            .collect())
    }

    /// Another instance's event `name` (several instances on one PostgreSQL database,
    /// `crate::cluster`), its JSON parsed (`Event::remote_json`), as this build's own, re-read
    /// from the database — the bridge runs on one instance and must act on a deployment, command
    /// or config change made through any. What comes back is the record as it is now, which may
    /// be newer than the event; the bridge's reactions (publish the retained config, deliver
    /// queued commands, trigger) only ever look at the current state. `None`: a kind the bridge
    /// does not follow, or a record gone since (a device deleted: its `device_removed` follows).
    pub async fn mqtt_remote_event(&self, name: &str, json: &serde_json::Value) -> Option<Event> {
        match self.read_remote(name, json).await {
            Ok(local) => local,
            Err(CoreError::NotFound { .. }) => None,
            Err(err) => {
                tracing::warn!(event = name, error = %err, "MQTT: cannot read another instance's event back");
                None
            }
        }
    }

    async fn read_remote(&self, name: &str, json: &serde_json::Value) -> Result<Option<Event>> {
        let s = |pointer: &str| {
            json.pointer(pointer)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let n = |pointer: &str| json.pointer(pointer).and_then(|v| v.as_i64());
        Ok(Some(match name {
            // Only an MQTT device can matter, and most devices are not.
            "device" => match (s("/device/mqtt_id"), s("/device/mac")) {
                (Some(_), Some(mac)) => Event::Device {
                    device: Box::new(self.device(&mac).await?),
                },
                _ => return Ok(None),
            },
            "device_removed" => match s("/mac") {
                Some(mac) => Event::DeviceRemoved { mac },
                None => return Ok(None),
            },
            "device_config" => match s("/config/mac") {
                Some(mac) => Event::DeviceConfig {
                    config: Box::new(self.device_config(&mac).await?),
                },
                None => return Ok(None),
            },
            "command" => match (s("/command/mac"), n("/command/id")) {
                (Some(mac), Some(id)) => {
                    let mut conn = self.db().acquire().await?;
                    Event::Command {
                        command: Box::new(commands::get(&mut conn, &mac, id).await?),
                    }
                }
                _ => return Ok(None),
            },
            "deployment" => match n("/deployment/id") {
                Some(id) => Event::Deployment {
                    deployment: Box::new(deployments::get(self.db(), id).await?),
                },
                None => return Ok(None),
            },
            "update" => match n("/update/id") {
                Some(id) => {
                    let mut conn = self.db().acquire().await?;
                    Event::Update {
                        update: Box::new(updates::get(&mut conn, id).await?),
                    }
                }
                None => return Ok(None),
            },
            _ => return Ok(None),
        }))
    }

    async fn mqtt_mac(&self, id: &str) -> Result<String> {
        if !valid_id(id) {
            return Err(unknown(id));
        }
        devices::mac_by_mqtt_id(self.db(), id)
            .await?
            .ok_or_else(|| unknown(id))
    }

    /// otafleet's client has (re)connected to the broker: every device's MQTT presence is
    /// forgotten, as the retained statuses that follow are the truth (a device whose session
    /// ended while otafleet was away shows offline, not connected forever).
    pub async fn mqtt_presence_reset(&self) -> Result<()> {
        let macs = {
            let _w = self.quiet_write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let macs = devices::mqtt_presence_reset(&mut tx).await?;
            for mac in &macs {
                self.inner.hot.forget(mac);
            }
            tx.commit().await?;
            macs
        };
        for mac in macs {
            self.publish_device(&mac).await;
        }
        Ok(())
    }

    /// `device/<id>/report/status`: `{"status":"connected"}` (the device subscribed and is
    /// listening) or `{"status":"disconnected"}` (it said so before a reboot, or the broker
    /// published its last will). Connected also counts as seen. Anything else is 422.
    pub async fn mqtt_status(&self, id: &str, payload: &[u8]) -> Result<bool> {
        #[derive(serde::Deserialize)]
        struct Status {
            status: String,
        }
        let status: Status = serde_json::from_slice(payload).map_err(|e| {
            CoreError::invalid(
                "invalid_status",
                format!("report/status must be {{\"status\":\"connected\"|\"disconnected\"}}: {e}"),
            )
        })?;
        let connected = match status.status.as_str() {
            "connected" => true,
            "disconnected" => false,
            other => {
                return Err(CoreError::invalid(
                    "invalid_status",
                    format!(
                        "'{}' is not a status: use connected or disconnected",
                        crate::validate::printable(other, 30)
                    ),
                ))
            }
        };
        if !valid_id(id) {
            return Err(unknown(id));
        }
        let (mac, changed) = {
            let _w = self.quiet_write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let now = crate::time::now();
            let Some(r) = devices::mqtt_presence(&mut tx, id, connected, &now).await? else {
                tx.rollback().await?;
                return Err(unknown(id));
            };
            self.inner.hot.forget(&r.0);
            tx.commit().await?;
            r
        };
        tracing::info!(%mac, %id, connected, "MQTT presence");
        if changed {
            self.publish_device(&mac).await;
        }
        Ok(connected)
    }

    /// `device/<id>/logs/<level>`: one line, `[<scope>] <text>` as the SDK's logger sends it
    /// (`success` is kept as `info`), into the same live buffer as lines sent over HTTP.
    pub async fn mqtt_log(&self, id: &str, level: &str, payload: &[u8]) -> Result<()> {
        let mac = self.mqtt_mac(id).await?;
        let text = String::from_utf8_lossy(payload);
        let (scope, text) = match text.strip_prefix('[').and_then(|r| r.split_once("] ")) {
            Some((scope, rest)) if !scope.is_empty() && scope.len() <= 64 => {
                (Some(scope.to_owned()), rest.to_owned())
            }
            _ => (None, text.into_owned()),
        };
        let level = match level {
            "success" => "info",
            l => l,
        };
        self.inner.logs.append(
            &mac,
            LogBatch {
                lines: vec![LogLineIn {
                    level: level.to_owned(),
                    scope,
                    text,
                    device_time: None,
                }],
            },
        )?;
        Ok(())
    }

    /// `device/<id>/report/custom`: stored like any report (notifications included), unless the
    /// same report of the same device was stored in the last [`REPORT_ECHO_S`] seconds — the
    /// SDK sends every report over HTTP first and then over MQTT. `None`: dropped as that copy.
    pub async fn mqtt_report(&self, id: &str, payload: &[u8]) -> Result<Option<Report>> {
        let mac = self.mqtt_mac(id).await?;
        let report: EspAdminCustomReport = serde_json::from_slice(payload).map_err(|e| {
            CoreError::invalid(
                "invalid_report",
                format!("report/custom must be {{\"type\",\"subject\",\"body\"}}: {e}"),
            )
        })?;
        let clean = crate::reports::clean(&crate::reports::ReportRequest {
            mac: mac.clone(),
            kind: report.kind.clone(),
            subject: report.subject.clone(),
            body: report.body.clone(),
            device_time: None,
        })?;
        let mut conn = self.db().acquire().await?;
        if crate::reports::recent_same(&mut conn, &mac, &clean, REPORT_ECHO_S).await? {
            tracing::debug!(%mac, "MQTT copy of a report already stored over HTTP dropped");
            return Ok(None);
        }
        drop(conn);
        self.store_report(&mac, &clean, None).await.map(Some)
    }

    /// `device/<id>/report/update_progress`: `{deploymentId, progress}` moves that attempt's
    /// progress while it downloads (the SDK sends it every 5 %, QoS 0). Another device's
    /// attempt, or one not downloading, changes nothing.
    pub async fn mqtt_progress(&self, id: &str, payload: &[u8]) -> Result<()> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Progress {
            deployment_id: Value,
            progress: i64,
        }
        let p: Progress = serde_json::from_slice(payload).map_err(|e| {
            CoreError::invalid(
                "invalid_progress",
                format!("report/update_progress must be {{\"deploymentId\",\"progress\"}}: {e}"),
            )
        })?;
        let update_id = match &p.deployment_id {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        let Some(update_id) = update_id else {
            return Ok(());
        };
        let mac = self.mqtt_mac(id).await?;
        let changed = {
            let _w = self.device_write_lock(&mac).await;
            let mut tx = db::begin_write(self.db()).await?;
            // Nothing to move (another attempt, not downloading, no progress): roll back at once,
            // so the connection goes back to the pool clean.
            let open = updates::open_for(&mut tx, &mac).await?;
            let progress = p.progress.clamp(0, 99);
            let Some(open) = open.filter(|o| {
                o.id == update_id && o.state == UpdateState::Downloading && progress > o.progress
            }) else {
                tx.rollback().await?;
                return Ok(());
            };
            let u = updates::set_state(
                &mut tx,
                open.id,
                UpdateState::Downloading,
                progress,
                Why::NONE,
            )
            .await?;
            tx.commit().await?;
            u
        };
        self.publish_updates(vec![changed]).await;
        Ok(())
    }

    /// The device's retained `command/config`: its effective config as `{key: "value"}` (ESP
    /// Admin's shape: every value a string; secrets included — the message goes only to the
    /// device, over the broker's TLS), recorded as given. `None`: its project defines no
    /// variables (the caller clears the retained message).
    pub async fn mqtt_config(&self, id: &str) -> Result<Option<(i64, MqttMessage)>> {
        let mac = self.mqtt_mac(id).await?;
        let answer = {
            let _w = self.device_write_lock(&mac).await;
            let mut tx = db::begin_write(self.db()).await?;
            match config::for_device(&mut tx, &mac).await {
                Ok(a) => {
                    tx.commit().await?;
                    a
                }
                Err(CoreError::NotFound { .. }) => {
                    tx.rollback().await?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        };
        self.publish_config(&mac).await;
        let values: serde_json::Map<String, Value> = answer
            .values
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k, Value::String(s))
            })
            .collect();
        let payload = serde_json::to_vec(&values).expect("a JSON map serialises");
        Ok(Some((
            answer.version,
            MqttMessage::command(id, "config", payload, true),
        )))
    }

    /// The retained `command/log` switch: `on` while someone watches the device's logs.
    pub fn mqtt_log_switch(&self, id: &str, on: bool) -> MqttMessage {
        MqttMessage::command(id, "log", if on { "on" } else { "off" }, true)
    }

    /// The device's unfinished commands as the messages that carry them, oldest first. A
    /// command that cannot be said over MQTT is finished `rejected` here with the reason (an
    /// `update_abort` with no update running) and not returned.
    pub async fn mqtt_commands(&self, id: &str) -> Result<Vec<MqttCommand>> {
        let mac = self.mqtt_mac(id).await?;
        let now = crate::time::now();
        let found = {
            let mut conn = self.db().acquire().await?;
            commands::unfinished(&mut conn, &mac, &now).await?
        };
        let mut out = Vec::new();
        for c in found {
            match self.mqtt_command_message(id, &mac, &c).await? {
                Ok(message) => out.push(MqttCommand {
                    command_id: c.id,
                    message,
                }),
                Err(reason) => {
                    self.mqtt_command_finish(&mac, c.id, CommandState::Rejected, &reason)
                        .await?;
                }
            }
        }
        Ok(out)
    }

    async fn mqtt_command_message(
        &self,
        id: &str,
        mac: &str,
        c: &Command,
    ) -> Result<std::result::Result<MqttMessage, String>> {
        let payload = c.payload.as_ref().map(|p| p.0.clone());
        Ok(Ok(match c.kind {
            CommandKind::Restart => MqttMessage::command(id, "restart", "", false),
            CommandKind::Log => {
                let on = payload
                    .as_ref()
                    .and_then(|p| p.get("on"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.mqtt_log_switch(id, on)
            }
            CommandKind::Config => match self.mqtt_config(id).await? {
                Some((_, m)) => m,
                None => {
                    return Ok(Err(
                        "its project defines no variables: there is no config to send".into(),
                    ))
                }
            },
            CommandKind::Custom => {
                // ESP Admin sends the whole project-command entry: {"key", "value"}, the value
                // as JSON text.
                let value = match payload {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s,
                    Some(v) => v.to_string(),
                };
                let body =
                    serde_json::json!({ "key": c.key.clone().unwrap_or_default(), "value": value });
                MqttMessage::command(id, "custom", body.to_string(), false)
            }
            CommandKind::UpdateAbort => {
                let mut conn = self.db().acquire().await?;
                let open = updates::open_for(&mut conn, mac).await?;
                let Some(fw_id) = open.and_then(|u| u.firmware_id) else {
                    return Ok(Err("no update is running on the device".into()));
                };
                let body = serde_json::json!({ "releaseId": fw_id.to_string() });
                MqttMessage::command(id, "update_abort", body.to_string(), false)
            }
        }))
    }

    /// The broker took command `command_id` for the connected device (QoS 1): `done`, with a
    /// result that says what that means — ESP Admin devices never answer a command.
    pub async fn mqtt_command_published(&self, id: &str, command_id: i64) -> Result<()> {
        let mac = self.mqtt_mac(id).await?;
        self.mqtt_command_finish(
            &mac,
            command_id,
            CommandState::Done,
            "delivered over MQTT to the connected device (MQTT devices do not answer commands)",
        )
        .await
    }

    async fn mqtt_command_finish(
        &self,
        mac: &str,
        command_id: i64,
        state: CommandState,
        result: &str,
    ) -> Result<()> {
        let command = {
            let _w = self.device_write_lock(mac).await;
            let mut tx = db::begin_write(self.db()).await?;
            let now = crate::time::now();
            let current = commands::get(&mut tx, mac, command_id).await?.as_of(&now);
            if !current.state.unfinished() {
                tx.rollback().await?;
                return Ok(());
            }
            let c = commands::finish(&mut tx, mac, command_id, state, Some(result)).await?;
            tx.commit().await?;
            c
        };
        tracing::info!(%mac, id = command_id, state = state.as_str(), "MQTT command finished");
        self.inner.events.publish(crate::events::Event::Command {
            command: Box::new(command),
        });
        Ok(())
    }
}
