//! Commands for native devices (`--commands`; docs/protocols.md §1, Commands): once enrolled, a
//! native device long-polls `GET /api/v1/device/commands?wait=25` with its token and answers
//! each command it gets with `POST /api/v1/device/commands/{id}`, as the reference client would:
//!
//! - `restart`: answers `done`, then reboots — at its next wait, since a real device finishes
//!   the request it is in — its uptime starting again, and checks in at once ([`Remote`]'s
//!   `restart` is what [`crate::life`] waits on);
//! - `log` `{"on": bool}`: `done`; on starts its log hook ([`crate::logs`]) at once, which sends
//!   until the server's answer says nobody watches; off stops it at its next batch;
//! - `custom`: `done`, the result naming the key;
//! - `update_abort`: `done`; a download in progress stops, is reported `failed` and the device
//!   checks again later (the server may offer the image again);
//! - `config`: `done` through [`apply_config`], the hook where the config fetch
//!   (`GET /api/v1/device/config`) goes once the simulator speaks it.
//!
//! The long poll is sent outside the shared client's `--connections` bound (it would hold a slot
//! for 25 s), so `--commands` costs one connection per native device. A server that goes away is
//! ridden out with the reference client's back-off, as check-ins are.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::backoff::Backoff;
use crate::error::DeviceError;
use crate::http::status_error;
use crate::run::Shared;

/// How long one long poll waits for a command (the server's most).
pub const WAIT_S: u64 = 25;

/// What the command loop and the device's life share.
#[derive(Debug)]
pub struct Remote {
    /// The device's token, once it enrolled (set by the check-in).
    pub token: watch::Sender<Option<String>>,
    /// A restart was asked: the life reboots at its next wait.
    pub restart: Notify,
    /// A download is in progress (an `update_abort` has something to abort).
    pub downloading: AtomicBool,
    /// Abort the download in progress.
    pub abort: AtomicBool,
    /// Remote logging is on (`log` commands).
    pub log_on: AtomicBool,
    /// The device's log hook (started by a `log` command or a check-in answer's `logs: true`).
    pub logs: crate::logs::LogHook,
}

impl Default for Remote {
    fn default() -> Self {
        Remote {
            token: watch::channel(None).0,
            restart: Notify::new(),
            downloading: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            log_on: AtomicBool::new(false),
            logs: crate::logs::LogHook::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Fetched {
    commands: Vec<Command>,
}

/// A command as the device gets it.
#[derive(Debug, Deserialize)]
pub struct Command {
    pub id: i64,
    pub kind: String,
    pub key: Option<String>,
    pub payload: Option<Value>,
}

/// The config command's hook: fetch the device's config and apply it. The simulator does not
/// fetch configs yet (`GET /api/v1/device/config`): this is where that goes, returning the
/// result text for the answer.
pub async fn apply_config(_sh: &Shared, _token: &str) -> Result<String, String> {
    Ok("config noted (the simulator does not fetch configs yet)".into())
}

/// The device's command loop, until the run ends (`--duration`/`--forever`) or stops.
pub async fn serve(sh: &Shared, mac: &str, remote: Arc<Remote>) {
    let mut token_rx = remote.token.subscribe();
    let mut ending = sh.ending.subscribe();
    let mut stop = sh.stop.subscribe();
    let token = loop {
        if let Some(t) = token_rx.borrow_and_update().clone() {
            break t;
        }
        tokio::select! {
            changed = token_rx.changed() => if changed.is_err() { return },
            _ = ending.wait_for(|e| *e) => return,
            _ = stop.wait_for(|s| *s) => return,
        }
    };
    let mut backoff = Backoff::new(sh.cfg.interval);
    loop {
        let polled = tokio::select! {
            r = fetch(sh, &token) => r,
            _ = ending.wait_for(|e| *e) => return,
            _ = stop.wait_for(|s| *s) => return,
        };
        let wait = match polled {
            Ok(commands) => {
                backoff.reset();
                for c in commands {
                    if let Err(e) = handle(sh, mac, &token, &remote, &c).await {
                        tracing::debug!(%mac, id = c.id, error = %e, "command answer not delivered");
                    }
                }
                continue;
            }
            Err(e) if e.is_transient() => backoff.next_wait(),
            Err(e) => {
                tracing::warn!(%mac, error = %e, "command fetch refused");
                sh.cfg.interval.max(Duration::from_secs(1))
            }
        };
        if sh.pause(wait).await.is_err() {
            return;
        }
    }
}

/// One long poll.
async fn fetch(sh: &Shared, token: &str) -> Result<Vec<Command>, DeviceError> {
    let url = sh
        .http
        .url(&format!("/api/v1/device/commands?wait={WAIT_S}"));
    let r = sh
        .http
        .client
        .get(url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(WAIT_S + 30))
        .send()
        .await
        .map_err(|e| DeviceError::Transport {
            what: "command fetch",
            source: e,
        })?;
    if !r.status().is_success() {
        return Err(status_error("command fetch", r).await);
    }
    let f: Fetched = r.json().await.map_err(|e| DeviceError::Transport {
        what: "command fetch body",
        source: e,
    })?;
    Ok(f.commands)
}

/// Do a command and answer it (a restart is answered before it happens).
async fn handle(
    sh: &Shared,
    mac: &str,
    token: &str,
    remote: &Remote,
    c: &Command,
) -> Result<(), DeviceError> {
    let (state, result) = match c.kind.as_str() {
        "restart" => {
            answer(sh, token, c.id, "done", "restarting").await?;
            remote.restart.notify_one();
            return Ok(());
        }
        "log" => match c.payload.as_ref().and_then(|p| p["on"].as_bool()) {
            Some(on) => {
                remote.log_on.store(on, Ordering::Relaxed);
                if on {
                    remote.logs.wanted(crate::logs::Sender::of(sh, mac, token));
                } else {
                    remote.logs.stop();
                }
                ("done", format!("logging {}", if on { "on" } else { "off" }))
            }
            None => ("rejected", "a log command needs {\"on\": bool}".into()),
        },
        "custom" => (
            "done",
            format!("custom {}", c.key.as_deref().unwrap_or_default()),
        ),
        "update_abort" => {
            if remote.downloading.load(Ordering::Relaxed) {
                remote.abort.store(true, Ordering::Relaxed);
                ("done", "aborting the download in progress".into())
            } else {
                ("done", "no update in progress".into())
            }
        }
        "config" => match apply_config(sh, token).await {
            Ok(r) => ("done", r),
            Err(r) => ("failed", r),
        },
        other => ("rejected", format!("unknown command kind {other}")),
    };
    answer(sh, token, c.id, state, &result).await
}

async fn answer(
    sh: &Shared,
    token: &str,
    id: i64,
    state: &str,
    result: &str,
) -> Result<(), DeviceError> {
    let url = sh.http.url(&format!("/api/v1/device/commands/{id}"));
    let body = json!({"state": state, "result": result});
    let (r, _slot) = sh
        .http
        .send("command answer", || {
            sh.http
                .client
                .post(&url)
                .bearer_auth(token)
                .json(&body)
                .send()
        })
        .await?;
    // 409: cancelled or expired meanwhile; nothing to do about it.
    if !r.status().is_success() && r.status().as_u16() != 409 {
        return Err(status_error("command answer", r).await);
    }
    Ok(())
}
