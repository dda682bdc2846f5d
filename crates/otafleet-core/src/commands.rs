//! Commands (issue 15): what the admin asks a native device to do — `restart`, `config` (fetch
//! its config), `log` (`{"on": bool}`), `custom` (a key and any JSON payload), `update_abort` —
//! and how far each got. This module alone writes and reads the `commands` table (migration
//! 0020); the [`crate::Fleet`] methods that use it are in `fleet/commands.rs`.
//!
//! **Lifecycle.** `queued` (the admin asked) → `sent` (the device fetched it with
//! `GET /api/v1/device/commands`) → `done | failed | rejected` (the device answered), or
//! `cancelled` (the admin, while queued or sent) or `expired` (unfinished at its `expires_at`,
//! ten minutes by default). A listing never shows an unfinished command past its `expires_at` as
//! unfinished: it is shown `expired` ([`Command::as_of`]) until the sweep writes it so.
//!
//! **Who can take commands.** Only a device that holds a native token: stock updaters (Arduino
//! `HTTPUpdate`, `ESP8266httpUpdate`, esp32FOTA, the legacy "ESP32 OTA Update Server" sketch)
//! only ask for images, and a device only heard over mDNS speaks to us not at all
//! ([`unsupported_reason`]).
//!
//! **Bounded.** Input is bounded (key, payload, result, expiry), at most
//! [`MAX_UNFINISHED_PER_DEVICE`] commands of a device are unfinished at once, and each device
//! keeps its newest [`KEEP_FINISHED_PER_DEVICE`] finished commands; older ones are deleted in the
//! write that adds or finishes one.
//!
//! **Waiting.** A device's long poll waits on a per-device [`tokio::sync::Notify`] in
//! [`Waiters`], holding no database connection and no lock; queuing a command wakes it. An entry
//! lives only while someone waits on it.

use std::sync::{Arc, Mutex};

use crate::db::{Conn, Db};
use foldhash::HashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::db;
use crate::devices::Device;
use crate::error::{CoreError, Result};

/// How long a command waits for its device when the admin names no expiry: ten minutes.
pub const DEFAULT_EXPIRES_IN_S: i64 = 600;
/// The shortest expiry the admin may give.
pub const MIN_EXPIRES_IN_S: i64 = 10;
/// The longest expiry the admin may give: a day.
pub const MAX_EXPIRES_IN_S: i64 = 86_400;
/// Finished commands kept per device: the newest this many.
pub const KEEP_FINISHED_PER_DEVICE: i64 = 500;
/// The most commands of one device that may be queued or sent at once.
pub const MAX_UNFINISHED_PER_DEVICE: i64 = 100;
/// The most bytes (UTF-8) of a device's answer.
pub const MAX_RESULT_BYTES: usize = 4 * 1024;
/// The most bytes a payload may have, as compact JSON.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024;
/// The most characters of a custom command's key.
pub const MAX_KEY_CHARS: usize = 64;
/// The longest a device's `GET /api/v1/device/commands?wait=` may wait, in seconds.
pub const MAX_WAIT_S: u64 = 25;
/// Rows a listing answers when the caller names no limit.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most rows one listing answers.
pub const MAX_LIMIT: i64 = 500;
/// The most devices one bulk request may name.
pub const MAX_BULK: usize = 1_000;

/// What a command asks. Stored by name (`commands.kind`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum CommandKind {
    /// Restart; the device answers `done` before it restarts. No payload.
    Restart,
    /// Fetch the device's config (`GET /api/v1/device/config`) and apply it. No payload.
    Config,
    /// Switch remote logging: payload `{"on": bool}`.
    Log,
    /// The application's own command: `key` names it, `payload` is any JSON (or none).
    Custom,
    /// Abort the update being downloaded or installed, if any. No payload.
    UpdateAbort,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Restart => "restart",
            CommandKind::Config => "config",
            CommandKind::Log => "log",
            CommandKind::Custom => "custom",
            CommandKind::UpdateAbort => "update_abort",
        }
    }
}

/// How far a command got. Stored by name (`commands.state`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum CommandState {
    /// The admin asked; the device has not fetched it yet.
    Queued,
    /// The device fetched it and has not answered yet (it is delivered again until it does).
    Sent,
    /// The device did it.
    Done,
    /// The device tried and failed (`result` says why).
    Failed,
    /// The device refused it (unknown key, bad payload, not now).
    Rejected,
    /// Unfinished at its `expires_at`.
    Expired,
    /// The admin cancelled it while it was queued or sent.
    Cancelled,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Queued => "queued",
            CommandState::Sent => "sent",
            CommandState::Done => "done",
            CommandState::Failed => "failed",
            CommandState::Rejected => "rejected",
            CommandState::Expired => "expired",
            CommandState::Cancelled => "cancelled",
        }
    }

    /// Queued or sent: still waiting for the device.
    pub fn unfinished(self) -> bool {
        matches!(self, CommandState::Queued | CommandState::Sent)
    }
}

/// The answers a device may give (`POST /api/v1/device/commands/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AckState {
    Done,
    Failed,
    Rejected,
}

impl From<AckState> for CommandState {
    fn from(s: AckState) -> Self {
        match s {
            AckState::Done => CommandState::Done,
            AckState::Failed => CommandState::Failed,
            AckState::Rejected => CommandState::Rejected,
        }
    }
}

/// A stored command, as the admin sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Command {
    pub id: i64,
    /// The device's MAC (upper case, colon separated).
    pub mac: String,
    pub kind: CommandKind,
    /// A custom command's key; null for the other kinds.
    pub key: Option<String>,
    /// Any JSON, or null.
    #[schema(value_type = Option<serde_json::Value>)]
    pub payload: Option<crate::db::Json<Value>>,
    pub state: CommandState,
    /// When the admin queued it (UTC, milliseconds).
    pub created_at: String,
    /// An unfinished command past this time is `expired`.
    pub expires_at: String,
    /// When the device first fetched it.
    pub sent_at: Option<String>,
    /// When it was answered, cancelled or expired.
    pub finished_at: Option<String>,
    /// Who queued it, as the audit log names them (`admin`).
    pub actor: String,
    /// The device's answer (at most 4 KiB), if it gave one.
    pub result: Option<String>,
}

impl Command {
    /// This command as of `now`: an unfinished one past its `expires_at` is `expired` (finished
    /// at its `expires_at`), whether or not the sweep has written it yet.
    pub fn as_of(mut self, now: &str) -> Self {
        if self.state.unfinished() && self.expires_at.as_str() <= now {
            self.state = CommandState::Expired;
            self.finished_at = Some(self.expires_at.clone());
        }
        self
    }

    /// What the device is sent.
    pub fn for_device(&self) -> DeviceCommand {
        DeviceCommand {
            id: self.id,
            kind: self.kind,
            key: self.key.clone(),
            payload: self.payload.as_ref().map(|p| p.0.clone()),
            expires_at: self.expires_at.clone(),
        }
    }
}

/// One device's result in a bulk request: the queued command, or why none was queued.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkResult {
    pub mac: String,
    /// The queued command; null when `error` says why none was.
    pub command: Option<Command>,
    pub error: Option<BulkError>,
}

/// Why a bulk request queued nothing for one device (the same code and message a single
/// request would have answered: `not_found`, `commands_unsupported`, `too_many_commands`, …).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkError {
    pub code: String,
    pub message: String,
}

/// A device's commands as the admin lists them (`GET /api/v1/devices/{mac}/commands`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CommandList {
    /// Newest first.
    pub commands: Vec<Command>,
    /// Why this device cannot take commands (the message a queue would be refused with, 409
    /// `commands_unsupported`); null when it can.
    pub unsupported: Option<String>,
}

/// A command as the device gets it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceCommand {
    pub id: i64,
    pub kind: CommandKind,
    /// A custom command's key; null for the other kinds.
    pub key: Option<String>,
    /// `log`: `{"on": bool}`; `custom`: any JSON; otherwise null.
    #[schema(value_type = Option<serde_json::Value>)]
    pub payload: Option<Value>,
    /// Drop it if it is still not done by then (RFC 3339, UTC).
    pub expires_at: String,
}

/// The answer to `GET /api/v1/device/commands`: every unfinished command, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceCommands {
    pub commands: Vec<DeviceCommand>,
}

/// What the admin asks (`POST /api/v1/devices/{mac}/commands`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewCommand {
    pub kind: CommandKind,
    /// Required for `custom` (1–64 characters: letters, digits, `_ - . :`); absent otherwise.
    pub key: Option<String>,
    /// `log`: `{"on": bool}`; `custom`: any JSON (at most 4 KiB); absent or null otherwise.
    #[schema(value_type = Option<serde_json::Value>)]
    pub payload: Option<Value>,
    /// Seconds the command waits for the device before it expires: 10 to 86,400, 600 when absent.
    pub expires_in_s: Option<i64>,
}

/// A device's answer (`POST /api/v1/device/commands/{id}`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct AckRequest {
    pub state: AckState,
    /// What happened, for the admin (at most 4 KiB).
    pub result: Option<String>,
}

/// A command checked against the rules, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct Clean {
    pub kind: CommandKind,
    pub key: Option<String>,
    pub payload: Option<Value>,
    pub expires_in_s: i64,
}

/// Check an admin's command; every refusal is 422 and says what to change.
pub(crate) fn clean(req: &NewCommand) -> Result<Clean> {
    let payload = req.payload.clone().filter(|p| !p.is_null());
    let key = req.key.as_deref().map(str::trim).filter(|k| !k.is_empty());
    let expires_in_s = req.expires_in_s.unwrap_or(DEFAULT_EXPIRES_IN_S);
    if !(MIN_EXPIRES_IN_S..=MAX_EXPIRES_IN_S).contains(&expires_in_s) {
        return Err(CoreError::invalid(
            "invalid_expires_in",
            format!("expires_in_s must be between {MIN_EXPIRES_IN_S} and {MAX_EXPIRES_IN_S} seconds (a day), not {expires_in_s}"),
        ));
    }
    let kind = req.kind;
    match kind {
        CommandKind::Custom => {
            let Some(k) = key else {
                return Err(CoreError::invalid(
                    "key_required",
                    "a custom command needs a key naming what the device should do",
                ));
            };
            let ok = k.chars().count() <= MAX_KEY_CHARS
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
            if !ok {
                return Err(CoreError::invalid(
                    "invalid_key",
                    format!("key must be 1 to {MAX_KEY_CHARS} characters of letters, digits, '_', '-', '.' and ':', not '{}'", crate::validate::printable(k, 40)),
                ));
            }
        }
        _ if key.is_some() => {
            return Err(CoreError::invalid(
                "key_not_allowed",
                format!(
                    "only custom commands have a key; drop it from this {} command",
                    kind.as_str()
                ),
            ));
        }
        _ => {}
    }
    match (kind, &payload) {
        (CommandKind::Log, Some(p))
            if p.get("on").is_some_and(Value::is_boolean)
                && p.as_object().is_some_and(|o| o.len() == 1) => {}
        (CommandKind::Log, _) => {
            return Err(CoreError::invalid(
                "invalid_payload",
                r#"a log command's payload is {"on": true} or {"on": false}"#,
            ))
        }
        (CommandKind::Custom, _) | (_, None) => {}
        (_, Some(_)) => {
            return Err(CoreError::invalid(
                "payload_not_allowed",
                format!(
                "a {} command takes no payload; drop it (only log and custom commands carry one)",
                kind.as_str()
            ),
            ))
        }
    }
    if let Some(p) = &payload {
        let n = p.to_string().len();
        if n > MAX_PAYLOAD_BYTES {
            return Err(CoreError::invalid(
                "payload_too_large",
                format!("payload is {n} bytes as JSON; at most {MAX_PAYLOAD_BYTES} (4 KiB) are sent to a device"),
            ));
        }
    }
    Ok(Clean {
        kind,
        key: key.map(str::to_owned),
        payload,
        expires_in_s,
    })
}

/// Check a device's answer text: at most [`MAX_RESULT_BYTES`], else 422.
pub(crate) fn check_result(result: Option<&str>) -> Result<()> {
    if let Some(r) = result {
        if r.len() > MAX_RESULT_BYTES {
            return Err(CoreError::invalid(
                "result_too_long",
                format!(
                    "result has {} bytes; at most {MAX_RESULT_BYTES} (4 KiB) are kept — shorten it, or send the rest as a report",
                    r.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Why device `d` cannot take commands (`None`: it can — it holds a native token).
pub fn unsupported_reason(d: &Device) -> Option<String> {
    if d.token_hash.is_some() {
        return None;
    }
    let mac = &d.mac;
    let only_native =
        "only devices running the otafleet native client, enrolled with a token, take commands";
    let protocol = d.expect_protocol.as_deref().or(d.protocol.as_deref());
    Some(match protocol {
        Some("native") => format!("device {mac} has not enrolled yet (or its enrolment was reset): it takes commands once it checks in with the native protocol and is given its token"),
        Some("arduino") => format!("device {mac} updates with the stock Arduino HTTPUpdate client, which only asks for images and has no command channel; {only_native}"),
        Some("esp8266") => format!("device {mac} updates with the stock ESP8266httpUpdate client, which only asks for images and has no command channel; {only_native}"),
        Some("esp32fota") => format!("device {mac} updates with esp32FOTA, which only reads a manifest and has no command channel; {only_native}"),
        Some("legacy") => format!("device {mac} speaks the legacy \"ESP32 OTA Update Server\" protocol, which has no command channel; {only_native}"),
        Some(other) => format!("device {mac} updates with a stock updater ({other}), which has no command channel; {only_native}"),
        None if d.source == "mdns" => format!("device {mac} is only known from its mDNS announcements and has never checked in, so nothing can reach it; {only_native}"),
        None => format!("device {mac} has never checked in, so nothing can reach it; {only_native}"),
    })
}

/// The device's command `id`, if it is that device's (read on the caller's connection).
pub(crate) async fn get(conn: &mut Conn, mac: &str, id: i64) -> Result<Command> {
    let row: Option<Command> = db::query_as("SELECT * FROM commands WHERE id = ? AND mac = ?")
        .bind(id)
        .bind(mac)
        .fetch_optional(conn)
        .await?;
    row.ok_or_else(|| CoreError::not_found(format!("command {id} of device {mac}")))
}

/// How many commands of `mac` are queued or sent and not past their expiry at `now`.
pub(crate) async fn pending(conn: &mut Conn, mac: &str, now: &str) -> Result<i64> {
    db::query_scalar(
        "SELECT COUNT(*) FROM commands
         WHERE mac = ? AND state IN ('queued', 'sent') AND expires_at > ?",
    )
    .bind(mac)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Store a queued command of `mac` and trim its finished history (inside the caller's write
/// transaction).
pub(crate) async fn queue(conn: &mut Conn, mac: &str, c: &Clean, actor: &str) -> Result<Command> {
    let now_t = time::OffsetDateTime::now_utc();
    let now = crate::time::format(now_t);
    let expires = crate::time::format(now_t + time::Duration::seconds(c.expires_in_s));
    let row: Command = db::query_as(
        "INSERT INTO commands (mac, kind, key, payload, state, created_at, expires_at, actor)
         VALUES (?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING *",
    )
    .bind(mac)
    .bind(c.kind)
    .bind(&c.key)
    .bind(c.payload.as_ref().map(Value::to_string))
    .bind(&now)
    .bind(&expires)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    trim(conn, mac).await?;
    Ok(row)
}

/// Delete `mac`'s finished commands beyond the newest [`KEEP_FINISHED_PER_DEVICE`].
async fn trim(conn: &mut Conn, mac: &str) -> Result<()> {
    db::query(
        "DELETE FROM commands WHERE mac = ?1 AND state NOT IN ('queued', 'sent') AND id <= (
             SELECT id FROM commands WHERE mac = ?1 AND state NOT IN ('queued', 'sent')
             ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .bind(mac)
    .bind(KEEP_FINISHED_PER_DEVICE)
    .execute(conn)
    .await?;
    Ok(())
}

/// `mac`'s commands, newest first, as of now ([`Command::as_of`]).
pub(crate) async fn list(db: &Db, mac: &str, limit: Option<i64>) -> Result<Vec<Command>> {
    let limit = crate::validate::limit(limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let now = crate::time::now();
    let rows: Vec<Command> =
        db::query_as("SELECT * FROM commands WHERE mac = ? ORDER BY id DESC LIMIT ?")
            .bind(mac)
            .bind(limit)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().map(|c| c.as_of(&now)).collect())
}

/// `mac`'s unfinished commands not past their expiry, oldest first.
pub(crate) async fn unfinished(conn: &mut Conn, mac: &str, now: &str) -> Result<Vec<Command>> {
    db::query_as(
        "SELECT * FROM commands WHERE mac = ? AND state IN ('queued', 'sent') AND expires_at > ?
         ORDER BY id",
    )
    .bind(mac)
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Mark `mac`'s queued (unexpired) commands `sent`; returns those it moved.
pub(crate) async fn mark_sent(conn: &mut Conn, mac: &str, now: &str) -> Result<Vec<Command>> {
    db::query_as(
        "UPDATE commands SET state = 'sent', sent_at = ?2
         WHERE mac = ?1 AND state = 'queued' AND expires_at > ?2 RETURNING *",
    )
    .bind(mac)
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Finish command `id` with `state` (and the device's `result`), then trim the device's history.
pub(crate) async fn finish(
    conn: &mut Conn,
    mac: &str,
    id: i64,
    state: CommandState,
    result: Option<&str>,
) -> Result<Command> {
    let row: Command = db::query_as(
        "UPDATE commands SET state = ?, result = COALESCE(?, result), finished_at = ?
         WHERE id = ? AND mac = ? RETURNING *",
    )
    .bind(state)
    .bind(result)
    .bind(crate::time::now())
    .bind(id)
    .bind(mac)
    .fetch_one(&mut *conn)
    .await?;
    trim(conn, mac).await?;
    Ok(row)
}

/// Whether any unfinished command is past its expiry (a read, asked before taking the lock).
pub(crate) async fn any_due(db: &Db, now: &str) -> Result<bool> {
    db::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM commands
         WHERE state IN ('queued', 'sent') AND expires_at <= ?)",
    )
    .bind(now)
    .fetch_one(db)
    .await
}

/// Write `expired` for every unfinished command past its expiry (finished at its `expires_at`).
pub(crate) async fn expire_due(conn: &mut Conn, now: &str) -> Result<Vec<Command>> {
    db::query_as(
        "UPDATE commands SET state = 'expired', finished_at = expires_at
         WHERE state IN ('queued', 'sent') AND expires_at <= ? RETURNING *",
    )
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Devices' long polls waiting for a command: one [`Notify`] per device while someone waits,
/// removed when the last waiter leaves, so memory follows the waiters, not the fleet.
#[derive(Default)]
pub(crate) struct Waiters {
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

/// One waiter's hold on its device's [`Notify`]; dropping it removes the entry when it was the
/// last one.
pub(crate) struct Waiting<'a> {
    waiters: &'a Waiters,
    mac: String,
    pub notify: Arc<Notify>,
}

impl Waiters {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.map.lock().expect("command waiters lock")
    }

    /// Wait for `mac`: take the [`Notify`] and create its `notified()` future *before* asking
    /// the database, so a command queued in between is not missed.
    pub fn wait(&self, mac: &str) -> Waiting<'_> {
        let notify = self.map().entry(mac.to_owned()).or_default().clone();
        Waiting {
            waiters: self,
            mac: mac.to_owned(),
            notify,
        }
    }

    /// A command for `mac` was queued: wake whoever waits for it.
    pub fn wake(&self, mac: &str) {
        if let Some(n) = self.map().get(mac) {
            n.notify_waiters();
        }
    }

    /// Devices with someone waiting.
    pub fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.map();
        // Under the map's lock nobody else can take a new handle: the map's and ours are the last.
        if Arc::strong_count(&self.notify) == 2 {
            map.remove(&self.mac);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(kind: CommandKind, key: Option<&str>, payload: Option<Value>) -> NewCommand {
        NewCommand {
            kind,
            key: key.map(str::to_owned),
            payload,
            expires_in_s: None,
        }
    }

    #[test]
    fn commands_are_checked_with_what_to_change() {
        use serde_json::json;
        let code = |n: NewCommand| clean(&n).err().map(|e| e.code());
        assert_eq!(code(new(CommandKind::Restart, None, None)), None);
        assert_eq!(
            code(new(CommandKind::Log, None, Some(json!({"on": true})))),
            None
        );
        assert_eq!(
            code(new(CommandKind::Log, None, Some(json!({"on": 1})))),
            Some("invalid_payload")
        );
        assert_eq!(
            code(new(CommandKind::Log, None, None)),
            Some("invalid_payload")
        );
        assert_eq!(
            code(new(CommandKind::Custom, None, None)),
            Some("key_required")
        );
        assert_eq!(
            code(new(CommandKind::Custom, Some("blink led"), None)),
            Some("invalid_key")
        );
        assert_eq!(
            code(new(CommandKind::Custom, Some("blink"), Some(json!([1, 2])))),
            None
        );
        assert_eq!(
            code(new(CommandKind::Restart, Some("x"), None)),
            Some("key_not_allowed")
        );
        assert_eq!(
            code(new(CommandKind::Restart, None, Some(json!({"now": true})))),
            Some("payload_not_allowed")
        );
        assert_eq!(
            code(new(
                CommandKind::Custom,
                Some("big"),
                Some(json!("x".repeat(5000)))
            )),
            Some("payload_too_large")
        );
        for bad in [9, 86_401, -1] {
            let mut n = new(CommandKind::Restart, None, None);
            n.expires_in_s = Some(bad);
            assert_eq!(code(n), Some("invalid_expires_in"));
        }
    }

    #[tokio::test]
    async fn waiters_are_woken_and_leave_nothing_behind() {
        let w = Waiters::default();
        {
            let a = w.wait("A");
            let b = w.wait("A");
            let notified = a.notify.notified();
            assert_eq!(w.len(), 1);
            w.wake("A");
            notified.await;
            drop(b);
            assert_eq!(w.len(), 1, "a is still waiting");
        }
        assert_eq!(w.len(), 0, "no waiter, no entry");
        w.wake("B");
        assert_eq!(w.len(), 0, "waking nobody adds nothing");
    }
}
