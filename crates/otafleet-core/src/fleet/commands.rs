//! [`Fleet`]'s command methods (issue 15): the admin queues, lists and cancels; a device fetches
//! (long poll) and answers with its token. The table's SQL is [`crate::commands`]'.
//!
//! Locks: queuing, cancelling, answering and expiring change a device's `commands_pending`, so
//! they take [`Fleet::device_write_lock`], which forgets that device's remembered check-in
//! answer (`hot.rs`); delivering (`queued → sent`) changes no count and takes the quiet lock. A
//! waiting device holds neither a lock nor a connection: it waits on its [`Notify`] in
//! [`crate::commands::Waiters`].
//!
//! [`Notify`]: tokio::sync::Notify

use std::time::Duration;

use super::Fleet;
use crate::checkin::hash_token;
use crate::commands::{
    self, AckRequest, BulkError, BulkResult, Command, CommandList, CommandState, DeviceCommand,
    NewCommand, MAX_BULK, MAX_UNFINISHED_PER_DEVICE, MAX_WAIT_S,
};
use crate::error::{CoreError, Result};
use crate::events::Event;
use crate::{db, devices, validate};

/// How often unfinished commands past their expiry are written `expired`.
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);

fn unauthorized(code: &'static str, message: &str) -> CoreError {
    CoreError::Unauthorized {
        code,
        message: message.into(),
    }
}

fn token_unknown() -> CoreError {
    unauthorized(
        "token_unknown",
        "this device token is not known; check in first",
    )
}

impl Fleet {
    /// Write `expired` every [`SWEEP_EVERY`] until the fleet is dropped or closed.
    pub(super) fn spawn_command_sweeper(&self) {
        self.spawn_periodic(SWEEP_EVERY, |fleet| async move {
            if let Err(e) = fleet.expire_commands().await {
                tracing::warn!(error = %e, "could not expire commands; retrying");
            }
        });
    }

    /// Write `expired` for every unfinished command past its expiry and publish each
    /// (`command`). Listings show them expired before this runs ([`Command::as_of`]).
    pub async fn expire_commands(&self) -> Result<usize> {
        let now = crate::time::now();
        if !commands::any_due(self.db(), &now).await? {
            return Ok(0);
        }
        let _w = self.quiet_write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        let expired = commands::expire_due(&mut tx, &now).await?;
        for c in &expired {
            self.inner.hot.forget(&c.mac);
        }
        tx.commit().await?;
        drop(_w);
        for c in &expired {
            tracing::info!(mac = %c.mac, id = c.id, kind = c.kind.as_str(), "command expired");
        }
        let n = expired.len();
        self.publish_commands(expired);
        Ok(n)
    }

    fn publish_commands(&self, commands: Vec<Command>) {
        for command in commands {
            self.inner.events.publish(Event::Command {
                command: Box::new(command),
            });
        }
    }

    /// Queue a command for device `mac` (`POST /api/v1/devices/{mac}/commands`). Who: the admin
    /// (`actor` as the audit log names them). Bad input is 422, an unknown device 404, a device
    /// that cannot take commands 409 `commands_unsupported` (the message says why), one with
    /// [`MAX_UNFINISHED_PER_DEVICE`] unfinished commands 409 `too_many_commands`. Ok means it
    /// is on disk; the device's long poll is woken and its remembered check-in forgotten, so its
    /// next check-in counts it in `commands_pending`.
    pub async fn command_queue(&self, mac: &str, req: &NewCommand, actor: &str) -> Result<Command> {
        let clean = commands::clean(req)?;
        let mac = validate::mac(mac)?;
        self.queue_clean(&mac, &clean, actor).await
    }

    async fn queue_clean(
        &self,
        mac: &str,
        clean: &commands::Clean,
        actor: &str,
    ) -> Result<Command> {
        let w = self.device_write_lock(mac).await;
        let mut tx = db::begin_write(self.db()).await?;
        let device = devices::load(&mut tx, mac).await?;
        if let Some(reason) = commands::unsupported_reason(&device) {
            return Err(CoreError::Unavailable {
                code: "commands_unsupported",
                message: reason,
            });
        }
        let now = crate::time::now();
        if commands::pending(&mut tx, mac, &now).await? >= MAX_UNFINISHED_PER_DEVICE {
            return Err(CoreError::Unavailable {
                code: "too_many_commands",
                message: format!("device {mac} already has {MAX_UNFINISHED_PER_DEVICE} commands waiting; cancel some or wait until it fetches them"),
            });
        }
        let command = commands::queue(&mut tx, mac, clean, actor).await?;
        tx.commit().await?;
        drop(w);
        tracing::info!(%mac, id = command.id, kind = command.kind.as_str(), "command queued");
        self.inner.command_waiters.wake(mac);
        self.publish_commands(vec![command.clone()]);
        Ok(command)
    }

    /// Queue the same command for several devices (`POST /api/v1/commands`). Who: the admin.
    /// The command is checked once (bad input is 422 and nothing is queued); then each device
    /// gets its own command or its own refusal (unknown, unsupported, too many), so one stock
    /// device does not fail the call. At most [`MAX_BULK`] devices, each named once.
    pub async fn command_queue_bulk(
        &self,
        macs: &[String],
        req: &NewCommand,
        actor: &str,
    ) -> Result<Vec<BulkResult>> {
        let clean = commands::clean(req)?;
        if macs.is_empty() || macs.len() > MAX_BULK {
            return Err(CoreError::invalid(
                "invalid_macs",
                format!("macs must name 1 to {MAX_BULK} devices, not {}", macs.len()),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut parsed = Vec::with_capacity(macs.len());
        for m in macs {
            let mac = validate::mac(m)?;
            if !seen.insert(mac.clone()) {
                return Err(CoreError::invalid(
                    "duplicate_mac",
                    format!("device {mac} is named twice in macs; name each device once"),
                ));
            }
            parsed.push(mac);
        }
        let mut out = Vec::with_capacity(parsed.len());
        for mac in parsed {
            match self.queue_clean(&mac, &clean, actor).await {
                Ok(c) => out.push(BulkResult {
                    mac,
                    command: Some(c),
                    error: None,
                }),
                Err(e) if e.is_internal() => return Err(e),
                Err(e) => out.push(BulkResult {
                    mac,
                    command: None,
                    error: Some(BulkError {
                        code: e.code().to_owned(),
                        message: e.to_string(),
                    }),
                }),
            }
        }
        Ok(out)
    }

    /// Device `mac`'s commands, newest first (at most `limit`: 100 when absent, at most 500),
    /// and why it cannot take commands, if it cannot; an unfinished command past its expiry is
    /// listed `expired`. An unknown device is 404.
    pub async fn commands(&self, mac: &str, limit: Option<i64>) -> Result<CommandList> {
        let mac = validate::mac(mac)?;
        let unsupported = {
            let mut conn = self.db().acquire().await?;
            commands::unsupported_reason(&devices::load(&mut conn, &mac).await?)
        };
        Ok(CommandList {
            commands: commands::list(self.db(), &mac, limit).await?,
            unsupported,
        })
    }

    /// Cancel command `id` of device `mac` (`POST /api/v1/devices/{mac}/commands/{id}/cancel`).
    /// Who: the admin. Only a queued or sent command can be cancelled (else 409
    /// `command_finished`); another device's command, or none, is 404. A device that already
    /// fetched it may still act on it; its answer is then refused (409 `command_finished`).
    pub async fn command_cancel(&self, mac: &str, id: i64) -> Result<Command> {
        let mac = validate::mac(mac)?;
        let w = self.device_write_lock(&mac).await;
        let mut tx = db::begin_write(self.db()).await?;
        let now = crate::time::now();
        let current = commands::get(&mut tx, &mac, id).await?.as_of(&now);
        if !current.state.unfinished() {
            return Err(CoreError::Unavailable {
                code: "command_finished",
                message: format!(
                    "command {id} is already {}; only queued or sent commands can be cancelled",
                    current.state.as_str()
                ),
            });
        }
        let command = commands::finish(&mut tx, &mac, id, CommandState::Cancelled, None).await?;
        tx.commit().await?;
        drop(w);
        tracing::info!(%mac, id, "command cancelled");
        self.publish_commands(vec![command.clone()]);
        Ok(command)
    }

    /// A device's unfinished commands, oldest first (`GET /api/v1/device/commands?wait=`).
    /// Who: an enrolled device, with its own token (none or an unknown one is 401). Returned at
    /// once if there are any, else after waiting up to `wait` (at most [`MAX_WAIT_S`]) for one
    /// to be queued — holding no lock and no database connection while it waits — or empty.
    /// Delivered queued commands become `sent` (published); sent ones are delivered again until
    /// answered.
    pub async fn device_commands(
        &self,
        token: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<DeviceCommand>> {
        let token = token.ok_or_else(|| {
            unauthorized(
                "token_required",
                "commands need the device token as 'Authorization: Bearer <token>'",
            )
        })?;
        let token_hash = hash_token(token);
        let Some(mac) = devices::mac_by_token(self.db(), &token_hash).await? else {
            tracing::warn!("command fetch with an unknown device token refused");
            return Err(token_unknown());
        };
        let deadline = tokio::time::Instant::now() + wait.min(Duration::from_secs(MAX_WAIT_S));
        loop {
            // Created before the database is asked, so a command queued in between wakes it.
            let waiting = self.inner.command_waiters.wait(&mac);
            let notified = waiting.notify.notified();
            let found = self.deliver(&mac, &token_hash).await?;
            if !found.is_empty() {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    /// How many devices have a long poll waiting now (each device counted once).
    pub fn commands_waiting(&self) -> usize {
        self.inner.command_waiters.len()
    }

    /// The device's unfinished commands now, queued ones marked `sent`.
    async fn deliver(&self, mac: &str, token_hash: &str) -> Result<Vec<DeviceCommand>> {
        let now = crate::time::now();
        let found = {
            let mut conn = self.db().acquire().await?;
            if !devices::holds_token(&mut conn, mac, token_hash).await? {
                return Err(token_unknown());
            }
            commands::unfinished(&mut conn, mac, &now).await?
        };
        if !found.iter().any(|c| c.state == CommandState::Queued) {
            return Ok(found.iter().map(Command::for_device).collect());
        }
        // `queued → sent` changes no device's answer (the pending count stays): the quiet lock.
        let w = self.quiet_write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        if !devices::holds_token(&mut tx, mac, token_hash).await? {
            return Err(token_unknown());
        }
        let sent = commands::mark_sent(&mut tx, mac, &now).await?;
        let found = commands::unfinished(&mut tx, mac, &now).await?;
        tx.commit().await?;
        drop(w);
        self.publish_commands(sent);
        Ok(found.iter().map(Command::for_device).collect())
    }

    /// A device's answer to its command `id` (`POST /api/v1/device/commands/{id}`). Who: an
    /// enrolled device, with its own token (401 otherwise), about its own command (another
    /// device's, or none, is 404). What it changes: that command's state (`done`, `failed` or
    /// `rejected`), `result` (at most 4 KiB, else 422) and `finished_at`. A finished command
    /// answered with another state — or one cancelled or expired meanwhile — is 409
    /// `command_finished` and nothing changes; the same state again is 200 (a retried answer).
    pub async fn device_command_ack(
        &self,
        token: Option<&str>,
        id: i64,
        req: &AckRequest,
    ) -> Result<Command> {
        let token = token.ok_or_else(|| {
            unauthorized(
                "token_required",
                "command answers need the device token as 'Authorization: Bearer <token>'",
            )
        })?;
        commands::check_result(req.result.as_deref())?;
        let token_hash = hash_token(token);
        let Some(mac) = devices::mac_by_token(self.db(), &token_hash).await? else {
            tracing::warn!("command answer with an unknown device token refused");
            return Err(token_unknown());
        };
        let state = CommandState::from(req.state);
        let w = self.device_write_lock(&mac).await;
        let mut tx = db::begin_write(self.db()).await?;
        if !devices::holds_token(&mut tx, &mac, &token_hash).await? {
            return Err(token_unknown());
        }
        let now = crate::time::now();
        let current = commands::get(&mut tx, &mac, id).await?.as_of(&now);
        if !current.state.unfinished() {
            if current.state == state {
                return Ok(current);
            }
            tracing::info!(%mac, id, was = current.state.as_str(), answer = state.as_str(), "answer to a finished command refused");
            return Err(CoreError::StaleReport {
                code: "command_finished",
                message: format!(
                    "command {id} is already {}; the answer '{}' was not kept",
                    current.state.as_str(),
                    state.as_str()
                ),
            });
        }
        let command = commands::finish(&mut tx, &mac, id, state, req.result.as_deref()).await?;
        tx.commit().await?;
        drop(w);
        tracing::info!(%mac, id, state = state.as_str(), "command answered");
        self.publish_commands(vec![command.clone()]);
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::checkin::CheckinRequest;
    use crate::commands::{CommandKind, NewCommand};
    use crate::{Fleet, Settings};

    const MAC: &str = "24:0A:C4:A3:15:3C";

    fn report() -> CheckinRequest {
        CheckinRequest {
            mac: MAC.into(),
            chip: "esp32".into(),
            project: "blink".into(),
            version: "1.0.0".into(),
            sha256: None,
            free_space: None,
            ip: None,
            rssi: None,
            uptime_s: None,
            name: None,
        }
    }

    /// A waiting device holds no database connection; queuing wakes it at once, and its entry is
    /// gone when it leaves.
    #[tokio::test]
    async fn a_waiting_device_is_woken_by_a_queued_command_and_holds_no_connection() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
        let token = fleet
            .checkin(report(), None, None, false)
            .await
            .unwrap()
            .token
            .unwrap();
        let waiter = {
            let fleet = fleet.clone();
            let token = token.clone();
            tokio::spawn(async move {
                fleet
                    .device_commands(Some(&token), Duration::from_secs(25))
                    .await
            })
        };
        // Wait for the condition: the device is waiting.
        while fleet.inner.command_waiters.len() == 0 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Every pooled connection is idle while it waits.
        let pool = fleet.db();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while {
            let (size, idle) = pool.size_and_idle();
            size as usize != idle
        } {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a connection is held"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let new = NewCommand {
            kind: CommandKind::Restart,
            key: None,
            payload: None,
            expires_in_s: None,
        };
        let c = fleet.command_queue(MAC, &new, "admin").await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken, not timed out")
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, c.id);
        assert_eq!(fleet.inner.command_waiters.len(), 0, "no waiter, no entry");
    }

    fn restart() -> NewCommand {
        NewCommand {
            kind: CommandKind::Restart,
            key: None,
            payload: None,
            expires_in_s: None,
        }
    }

    /// Each device keeps its newest finished commands only; unfinished ones are bounded too.
    #[tokio::test]
    async fn a_devices_history_is_bounded() {
        use crate::commands::{KEEP_FINISHED_PER_DEVICE, MAX_UNFINISHED_PER_DEVICE};
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
        fleet.checkin(report(), None, None, false).await.unwrap();
        let mut first = None;
        for _ in 0..KEEP_FINISHED_PER_DEVICE + 5 {
            let c = fleet.command_queue(MAC, &restart(), "admin").await.unwrap();
            first.get_or_insert(c.id);
            fleet.command_cancel(MAC, c.id).await.unwrap();
        }
        let kept: i64 = crate::db::query_scalar("SELECT COUNT(*) FROM commands WHERE mac = ?")
            .bind(MAC)
            .fetch_one(fleet.db())
            .await
            .unwrap();
        assert_eq!(kept, KEEP_FINISHED_PER_DEVICE);
        let oldest: i64 = crate::db::query_scalar("SELECT MIN(id) FROM commands")
            .fetch_one(fleet.db())
            .await
            .unwrap();
        assert_eq!(oldest, first.unwrap() + 5, "the oldest went first");

        for _ in 0..MAX_UNFINISHED_PER_DEVICE {
            fleet.command_queue(MAC, &restart(), "admin").await.unwrap();
        }
        let err = fleet
            .command_queue(MAC, &restart(), "admin")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "too_many_commands");
    }

    /// The sweep writes `expired` for overdue commands and publishes them; the check-in stops
    /// counting them.
    #[tokio::test]
    async fn the_sweep_expires_overdue_commands_and_publishes_them() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
        let token = fleet
            .checkin(report(), None, None, false)
            .await
            .unwrap()
            .token;
        let c = fleet.command_queue(MAC, &restart(), "admin").await.unwrap();
        let pending = fleet
            .checkin(report(), token.as_deref(), None, false)
            .await
            .unwrap()
            .commands_pending;
        assert_eq!(pending, 1);
        let mut events = fleet.events().subscribe();
        crate::db::query("UPDATE commands SET expires_at = '2000-01-01T00:00:00.000Z'")
            .execute(fleet.db())
            .await
            .unwrap();
        // The background sweep may get there first: either way one event, once.
        fleet.expire_commands().await.unwrap();
        match events.recv().await.unwrap() {
            crate::events::Event::Command { command } => {
                assert_eq!(command.id, c.id);
                assert_eq!(command.state, crate::commands::CommandState::Expired);
                assert_eq!(
                    command.finished_at.as_deref(),
                    Some("2000-01-01T00:00:00.000Z")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fleet.expire_commands().await.unwrap(), 0, "once");
        let pending = fleet
            .checkin(report(), token.as_deref(), None, false)
            .await
            .unwrap()
            .commands_pending;
        assert_eq!(pending, 0);
    }
}
