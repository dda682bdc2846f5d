//! [`Fleet`]: the one handle front ends hold. Cheap to clone; every method validates its input,
//! changes the database in a transaction, and publishes an [`Event`] for what it changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::db::Db;
use tokio::io::AsyncRead;
use tokio::sync::{Mutex, MutexGuard};

use crate::audit::{self, AuditEntry, AuditFilter, NewAuditEntry, Outcome};
use crate::blobs::BlobStore;
use crate::checkin::{self, CheckinRequest, CheckinResponse, ProgressRequest};
use crate::datadir::{self, DataDirLock};
use crate::deployments::{self, Deployment, DeploymentDetail, DeviceTarget, NewDeployment, Plan};
use crate::devices::{self, Device, DevicePatch, NewDevice};
use crate::error::{CoreError, Result};
use crate::events::{Event, EventBus};
use crate::field::{self, Asker, FieldAnswer, FieldCheck};
use crate::firmware::{self, Firmware, FirmwarePatch, ImportOutcome, ImportRequest, ImportSource};
use crate::hot::{self, Hot};
use crate::legacy::{self, Assignment};
use crate::logs::{LogBatch, LogBatchAnswer, LogBatchOut, LogHub, LogLease, LogLine, LogSnapshot};
use crate::notify::{self, Channel, Delivery, DeliveryFilter, NotifyView, TestResult};
use crate::reports::{self, Report, ReportFilter, ReportRequest};
use crate::settings::{self as settings_table, Live, Settings, SettingsChange, Timing};
use crate::updates::{self, Update, UpdateState};
use crate::watch_folders::{self, NewWatchFolder, WatchFolder};
use crate::{db, manifest, validate};

/// Who queues the `log` command that opening a device's logs sends (its command history says so).
pub const LOG_VIEWER: &str = "log viewer";

/// A viewer of one device's logs ([`Fleet::logs_watch`]): hold `lease` while watching.
pub struct LogWatch {
    /// The lines already buffered, oldest first.
    pub backlog: Vec<LogLine>,
    /// Every later batch, in order. `Lagged` means lines were missed: re-read the snapshot.
    pub rx: tokio::sync::broadcast::Receiver<LogBatchOut>,
    pub lease: LogLease,
}
mod access;
mod commands;
mod esp_admin;
pub use esp_admin::{
    valid_id as esp_admin_valid_id, EspAdminCreated, EspAdminCustomReport, EspAdminReported,
    EspAdminTrigger, EspAdminUpdateReport, ESP_ADMIN,
};
mod mqtt;
pub use mqtt::{MqttCommand, MqttDevice, MqttMessage};
pub use organisations::CreatedOrganisation;
pub use rollouts::{LeftDevice, RolledBack};
mod organisations;
mod remote;
mod rollouts;

#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    db: Db,
    blobs: BlobStore,
    events: EventBus,
    settings: Settings,
    /// SQLite has one writer at a time. Taking this lock before a read-then-write transaction
    /// queues writers in the process instead of letting them fail on a lock upgrade.
    write: Mutex<()>,
    /// Quiet check-ins answered from memory, and their queued heartbeats ([`crate::hot`]).
    hot: Hot,
    /// The check-in timing in effect ([`crate::settings::Timing`]), read without the database.
    timing: Live,
    /// This fleet's hold on its data directory ([`crate::datadir`]); released by
    /// [`Fleet::close`] or when the last handle is dropped.
    lock: std::sync::Mutex<Option<DataDirLock>>,
    /// Audit results (row id, HTTP status) whose write failed (a full disk), written as soon as
    /// the disk takes them ([`Fleet::audit_finish`]).
    audit_unwritten: std::sync::Mutex<Vec<(i64, u16)>>,
    /// When each named API token's use was last written (`fleet/access.rs`).
    token_uses: std::sync::Mutex<HashMap<i64, std::time::Instant>>,
    /// Wrong passwords per address (local accounts; `crate::passwords`).
    password_failures: crate::passwords::Throttle,
    /// Live device logs and who watches them ([`crate::logs`]); memory only.
    logs: Arc<LogHub>,
    /// Devices' long polls waiting for a command (`fleet/commands.rs`).
    command_waiters: crate::commands::Waiters,
    /// Image bodies being sent now, by attempt, so a stop can cut them ([`crate::inflight`]).
    inflight: Arc<crate::inflight::InFlight>,
    /// Each deployment's status and started wave as last published: a change of either changes
    /// what devices are told ([`Fleet::publish_deployments`]).
    published: std::sync::Mutex<HashMap<i64, (crate::deployments::DeploymentStatus, i64)>>,
    /// Woken when a delivery is queued ([`crate::notify`]); the dispatcher waits on it.
    notify_wake: Arc<tokio::sync::Notify>,
    /// The client every webhook call uses ([`notify::http_client`]).
    http: reqwest::Client,
    /// With PostgreSQL (`--database-url`): what this instance tells the others
    /// ([`crate::cluster`]).
    cluster: Option<Arc<crate::cluster::Outbox>>,
    /// The other organisations' fleets opened so far (`fleet/organisations.rs`); only the
    /// default organisation's fleet has any.
    organisations: tokio::sync::Mutex<HashMap<String, Fleet>>,
}

/// The writer's lock ([`Fleet::write_lock`]). Released after its holder committed, so that is
/// when what it invalidated may be sent to the other instances ([`crate::cluster`]).
pub struct WriteGuard<'a> {
    _guard: MutexGuard<'a, ()>,
    outbox: Option<&'a crate::cluster::Outbox>,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if let Some(o) = self.outbox {
            o.promote();
        }
    }
}

/// The longest the dispatcher sleeps before it looks again (and notices a closed fleet).
const DISPATCH_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
/// Due deliveries taken per round.
const DISPATCH_BATCH: i64 = 32;

impl Fleet {
    /// Open the data directory (creating it), migrate the database, clear unfinished uploads.
    pub async fn open(settings: Settings) -> Result<Self> {
        tokio::fs::create_dir_all(&settings.data_dir).await?;
        // Before anything is touched: no other server may be using this directory, and the
        // database must be the one that belongs to the stored images (`datadir` says why).
        let lock = DataDirLock::acquire(&settings.data_dir)?;
        if db::is_sqlite(&settings) {
            datadir::check_database(&settings.data_dir).await?;
        }
        let db = db::open(&settings).await?;
        let blobs = BlobStore::open_with(&settings.data_dir, &settings.blob_config()).await?;
        let stored = {
            let mut conn = db.acquire().await?;
            settings_table::stored_timing(&mut conn).await?
        };
        let timing = Live::new(stored.timing(settings.checkin_interval_s));
        let http = notify::http_client(&settings.notify_extra_roots)?;
        let orphans = datadir::collect_orphans(&db, &blobs).await?;
        if orphans > 0 {
            tracing::info!(
                orphans,
                "removed stored images left without a library entry"
            );
        }
        // Several instances share this database only through `--database-url` (the test suites'
        // per-directory PostgreSQL databases have one instance each).
        let cluster = (settings.database_url.is_some() && db.is_postgres())
            .then(|| Arc::new(crate::cluster::Outbox::new()));
        let (events, hot) = match &cluster {
            Some(o) => (EventBus::shared(o.clone()), Hot::shared(o.clone())),
            None => (EventBus::new(), Hot::default()),
        };
        let fleet = Self {
            inner: Arc::new(Inner {
                db,
                blobs,
                events,
                settings,
                write: Mutex::new(()),
                hot,
                timing,
                lock: std::sync::Mutex::new(Some(lock)),
                audit_unwritten: std::sync::Mutex::new(Vec::new()),
                token_uses: std::sync::Mutex::new(HashMap::new()),
                password_failures: crate::passwords::Throttle::default(),
                logs: Arc::new(LogHub::default()),
                command_waiters: Default::default(),
                inflight: Default::default(),
                published: Default::default(),
                notify_wake: Arc::new(tokio::sync::Notify::new()),
                http,
                cluster: cluster.clone(),
                organisations: Default::default(),
            }),
        };
        if let Some(outbox) = cluster {
            crate::cluster::start(&fleet, outbox).await?;
        }
        fleet.spawn_heartbeat_writer();
        fleet.spawn_blob_collector();
        fleet.spawn_command_sweeper();
        fleet.spawn_rollout_stepper();
        if fleet.settings().send_notifications {
            fleet.spawn_dispatcher();
        }
        Ok(fleet)
    }

    /// Run `work` every `every` until the fleet is dropped or closed. The task holds the fleet
    /// only while `work` runs, so it never keeps a dropped fleet alive.
    pub(crate) fn spawn_periodic<F, Fut>(&self, every: std::time::Duration, work: F)
    where
        F: Fn(Fleet) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let fleet = Fleet { inner };
                if fleet.db().is_closed() {
                    break;
                }
                work(fleet).await;
            }
        });
    }

    /// Write queued heartbeats every [`hot::FLUSH_EVERY`] until the fleet is dropped or closed.
    fn spawn_heartbeat_writer(&self) {
        self.spawn_periodic(hot::FLUSH_EVERY, |fleet| async move {
            if let Err(e) = fleet.flush_heartbeats().await {
                tracing::warn!(error = %e, "could not write queued heartbeats; retrying");
            }
            fleet.audit_flush().await;
        });
    }

    /// With the S3 backend, run the orphan collection of the start again every
    /// [`BlobStore::collect_every`]: objects no firmware row refers to go once older than the
    /// grace period (several instances may share the bucket, so the start alone is not enough).
    fn spawn_blob_collector(&self) {
        let Some(every) = self.blobs().collect_every() else {
            return;
        };
        self.spawn_periodic(every, |fleet| async move {
            match datadir::collect_orphans(fleet.db(), fleet.blobs()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "collected stored images no library entry refers to"),
                Err(e) => tracing::warn!(error = %e, "could not collect unreferenced stored images; trying again later"),
            }
        });
    }

    /// Send due notifications ([`crate::notify`]) until the fleet is dropped or closed: at once
    /// when one is queued, else when the next retry is due (looking at least every
    /// [`DISPATCH_IDLE`]). Queued deliveries of an earlier run are sent as soon as it starts.
    fn spawn_dispatcher(&self) {
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.notify_wake.clone();
        tokio::spawn(async move {
            loop {
                let wait = {
                    let Some(inner) = weak.upgrade() else { break };
                    let fleet = Fleet { inner };
                    if fleet.db().is_closed() {
                        break;
                    }
                    match fleet.dispatch_round().await {
                        Ok(w) => w.min(DISPATCH_IDLE),
                        Err(e) => {
                            if !fleet.db().is_closed() {
                                tracing::warn!(error = %e, "could not send notifications; retrying");
                            }
                            DISPATCH_IDLE
                        }
                    }
                };
                if !wait.is_zero() {
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        });
    }

    /// Send the deliveries due now, one at a time, recording each attempt; answers how long
    /// until the next one is due.
    async fn dispatch_round(&self) -> Result<std::time::Duration> {
        let due = notify::due(self.db(), &crate::time::now(), DISPATCH_BATCH).await?;
        if !due.is_empty() {
            let cfg = {
                let mut conn = self.db().acquire().await?;
                settings_table::stored_notify(&mut conn).await?
            };
            let base = self.settings().notify_retry_base;
            let roots = &self.settings().notify_extra_roots;
            for d in due {
                let attempt = d.attempts + 1;
                let a = match d.channel {
                    // A delivery goes only to a target still configured: a recipient removed or a
                    // URL changed since it was queued gets nothing.
                    Channel::Webhook => match cfg.webhook.as_ref().filter(|w| w.enabled) {
                        Some(w) if w.url != d.recipient => {
                            notify::Attempt::gone("the webhook URL changed since this was queued")
                        }
                        Some(w) => {
                            notify::send_webhook(
                                &self.inner.http,
                                &d.recipient,
                                &w.secret,
                                d.id,
                                attempt,
                                false,
                                &d.report,
                            )
                            .await
                        }
                        None => notify::Attempt::gone("the webhook was removed or turned off"),
                    },
                    Channel::Email => match cfg.smtp.as_ref().filter(|s| s.enabled) {
                        Some(s) if !s.to.contains(&d.recipient) => notify::Attempt::gone(
                            "this recipient was removed since this was queued",
                        ),
                        Some(s) => {
                            notify::send_email(s, roots, &d.recipient, false, &d.report).await
                        }
                        None => notify::Attempt::gone("e-mail was removed or turned off"),
                    },
                };
                if !a.ok {
                    tracing::info!(
                        delivery = d.id,
                        attempt,
                        channel = ?d.channel,
                        error = a.error.as_deref().unwrap_or(""),
                        "notification not delivered"
                    );
                }
                // The delivery log changes no device's answer.
                let _w = self.quiet_write_lock().await;
                let mut tx = db::begin_write(self.db()).await?;
                let row = notify::record(&mut tx, d.id, d.attempts, &a, base).await?;
                tx.commit().await?;
                if let Some(row) = row {
                    self.inner.events.publish(Event::Delivery {
                        delivery: Box::new(row),
                    });
                }
            }
            return Ok(std::time::Duration::ZERO);
        }
        let next = notify::next_due(self.db()).await?;
        Ok(next
            .and_then(|t| crate::time::parse(&t))
            .map(|t| {
                let left = t - time::OffsetDateTime::now_utc();
                std::time::Duration::try_from(left).unwrap_or_default()
            })
            .unwrap_or(DISPATCH_IDLE))
    }

    /// Write the heartbeats of quiet check-ins now (they are also shown before they are written).
    pub async fn flush_heartbeats(&self) -> Result<()> {
        if !self.inner.hot.has_pending() {
            return Ok(());
        }
        // Heartbeats change no device's answer: no generation bump.
        let _w = self.quiet_write_lock().await;
        let mut conn = self.db().acquire().await?;
        self.inner.hot.flush(&mut conn).await?;
        Ok(())
    }

    /// Register an image body being sent for attempt `update_id`: the server checks the watch
    /// before each frame and ends the body once a stop cut it ([`crate::inflight`]).
    pub fn download_watch(&self, update_id: i64) -> crate::inflight::DownloadWatch {
        self.inner.inflight.watch(update_id)
    }

    pub(crate) fn hot(&self) -> &Hot {
        &self.inner.hot
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The check-in interval and offline threshold in effect: the admin's, else the start
    /// settings'. One atomic read: check-ins and device listings call it every time.
    pub fn timing(&self) -> Timing {
        self.inner.timing.get()
    }

    /// The one writer's lock. Whoever takes it may change any device's answer, so every quiet
    /// check-in remembered in memory is invalidated ([`crate::hot`]).
    pub async fn write_lock(&self) -> WriteGuard<'_> {
        let guard = self.quiet_write_lock().await;
        self.inner.hot.bump();
        guard
    }

    /// The writer's lock for a change to one device's own rows (its check-in or progress), which
    /// changes no other device's answer: only that device's memory is dropped.
    pub(crate) async fn device_write_lock(&self, mac: &str) -> WriteGuard<'_> {
        let guard = self.quiet_write_lock().await;
        self.inner.hot.forget(mac);
        guard
    }

    /// The writer's lock without invalidating anything: the holder must
    /// [`Hot::forget`] every device whose rows it writes before it commits.
    pub(crate) async fn quiet_write_lock(&self) -> WriteGuard<'_> {
        WriteGuard {
            _guard: self.inner.write.lock().await,
            outbox: self.inner.cluster.as_deref(),
        }
    }

    /// The writer's lock if nobody holds it now (the cluster batcher: no writer of this instance
    /// is between staging an invalidation and committing).
    pub(crate) fn try_write_lock(&self) -> Option<MutexGuard<'_, ()>> {
        self.inner.write.try_lock().ok()
    }

    pub(crate) fn weak(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Self> {
        weak.upgrade().map(|inner| Fleet { inner })
    }

    /// Another instance changed the check-in timing: read it again.
    pub(crate) async fn reload_timing(&self) -> Result<()> {
        let stored = {
            let mut conn = self.db().acquire().await?;
            settings_table::stored_timing(&mut conn).await?
        };
        self.inner
            .timing
            .set(stored.timing(self.inner.settings.checkin_interval_s));
        Ok(())
    }

    /// A command was queued for `mac` on another instance: wake its long poll here.
    pub(crate) fn wake_command_waiter(&self, mac: &str) {
        self.inner.command_waiters.wake(mac);
    }

    /// Whether this fleet shares its database with other instances ([`crate::cluster`]).
    pub fn clustered(&self) -> bool {
        self.inner.cluster.is_some()
    }

    /// Write queued heartbeats, then close the database cleanly (checkpoints the WAL).
    pub async fn close(&self) {
        let others: Vec<Fleet> = self
            .inner
            .organisations
            .lock()
            .await
            .drain()
            .map(|(_, f)| f)
            .collect();
        for other in others {
            Box::pin(other.close()).await;
        }
        if let Err(e) = self.flush_heartbeats().await {
            tracing::warn!(error = %e, "could not write queued heartbeats at shutdown");
        }
        self.audit_flush().await;
        self.inner.db.close().await;
        // The directory is free for the next server once the database is closed.
        drop(self.inner.lock.lock().map(|mut l| l.take()));
    }

    // --- firmware -------------------------------------------------------------------------

    /// Import an image from a stream (HTTP upload).
    pub async fn import<R: AsyncRead + Unpin>(
        &self,
        req: ImportRequest,
        reader: R,
    ) -> Result<ImportOutcome> {
        let filename = req.filename.clone();
        let limit = self.settings().max_image_size;
        // Streaming and inspecting take as long as the upload does: no lock for that part.
        let result = match firmware::prepare(self.blobs(), limit, req, reader).await {
            Ok(prepared) => {
                let _w = self.write_lock().await;
                firmware::store(self.db(), self.blobs(), prepared).await
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(out) if out.created => {
                tracing::info!(id = out.firmware.id, %filename, chip = %out.firmware.chip, "firmware imported");
                self.events().publish(Event::Firmware {
                    firmware: Box::new(out.firmware.clone()),
                });
            }
            Ok(out) => {
                tracing::info!(id = out.firmware.id, %filename, "same bytes already in the library")
            }
            Err(e) => tracing::warn!(%filename, code = e.code(), error = %e, "firmware refused"),
        }
        result
    }

    /// Import an image from a local file (desktop drop, file dialog, watch folder).
    pub async fn import_path(
        &self,
        path: &Path,
        project: Option<String>,
        version: Option<String>,
        source: ImportSource,
    ) -> Result<ImportOutcome> {
        let filename = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                CoreError::invalid(
                    "invalid_filename",
                    format!("{} has no usable file name", path.display()),
                )
            })?
            .to_string();
        let file = tokio::fs::File::open(path).await.map_err(|e| {
            CoreError::invalid(
                "unreadable_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.import(
            ImportRequest {
                filename,
                project,
                version,
                source,
                source_path: Some(path.display().to_string()),
                only_project: None,
            },
            file,
        )
        .await
    }

    pub async fn firmware_list(&self) -> Result<Vec<Firmware>> {
        firmware::list(self.db()).await
    }

    pub async fn firmware(&self, id: i64) -> Result<Firmware> {
        firmware::get(self.db(), id).await
    }

    /// The admin corrects an image's project, version or file name ([`FirmwarePatch`]; sources
    /// become `admin`). One transaction, committed before it returns: devices of stock updaters
    /// running the image take its project and version, every attempt at it its version, and the
    /// deployments whose verdicts that changes are settled again. Refused with nothing changed
    /// when a field is invalid (422) or when a project-wide deployment of this image covers its
    /// current project (409: stop it first, or the correction would change what it covers).
    /// Publishes the image, and the devices and deployments that changed.
    pub async fn firmware_patch(&self, id: i64, patch: FirmwarePatch) -> Result<Firmware> {
        let clean = patch.clean()?;
        let (macs, deployments) = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let before = firmware::load(&mut tx, id).await?;
            let project = clean
                .project
                .as_deref()
                .filter(|p| Some(*p) != before.project.as_deref());
            let version = clean
                .version
                .as_deref()
                .filter(|v| Some(*v) != before.version.as_deref());
            if let (Some(new), Some(old)) = (project, before.project.as_deref()) {
                if let Some(dep) = deployments::following_image_project(&mut tx, id, old).await? {
                    return Err(CoreError::conflict(format!(
                        "firmware {id} ({}) is deployed to every device of project {old} by deployment {dep}; \
                         making it project {new} would change which devices that deployment covers. \
                         Stop deployment {dep} first, then change the project and deploy the image again",
                        before.filename
                    )));
                }
            }
            firmware::set_identity(&mut tx, id, &clean).await?;
            let mut macs =
                devices::follow_image_identity(&mut tx, &before, project, version).await?;
            if let Some(v) = version {
                macs.extend(updates::set_image_version(&mut tx, id, v).await?);
            }
            let projects: Vec<String> = match project {
                Some(new) => before
                    .project
                    .iter()
                    .cloned()
                    .chain([new.to_string()])
                    .collect(),
                None => Vec::new(),
            };
            let changed = deployments::after_identity_change(&mut tx, id, &projects).await?;
            tx.commit().await?;
            macs.sort();
            macs.dedup();
            (macs, changed)
        };
        let fw = firmware::get(self.db(), id).await?;
        tracing::info!(id, project = ?fw.project, version = ?fw.version, filename = %fw.filename,
            devices = macs.len(), "firmware identity corrected by the admin");
        self.events().publish(Event::Firmware {
            firmware: Box::new(fw.clone()),
        });
        for mac in macs {
            self.publish_device(&mac).await;
        }
        self.publish_deployments(deployments).await;
        Ok(fw)
    }

    pub async fn firmware_delete(&self, id: i64) -> Result<Firmware> {
        let (fw, ended) = {
            let _w = self.write_lock().await;
            firmware::delete(self.db(), self.blobs(), id).await?
        };
        self.events().publish(Event::FirmwareRemoved { id });
        for update in ended {
            tracing::info!(update = update.id, mac = %update.mac, "open attempt ended: its image was deleted");
            let mac = update.mac.clone();
            self.events().publish(Event::Update {
                update: Box::new(update),
            });
            self.publish_device(&mac).await;
        }
        Ok(fw)
    }

    /// The image and its file for a download by SHA-256.
    pub async fn firmware_file(&self, sha256: &str) -> Result<(Firmware, PathBuf)> {
        let sha = validate::sha256(sha256)?;
        let fw = firmware::by_sha256(self.db(), &sha)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("firmware {sha}")))?;
        let path = self.blobs().path(&fw.sha256);
        Ok((fw, path))
    }

    // --- devices --------------------------------------------------------------------------

    pub async fn devices(&self) -> Result<Vec<Device>> {
        let offline = self.timing().offline_after_s();
        let mut all = devices::list(self.db(), offline).await?;
        for d in &mut all {
            self.inner.hot.overlay(d, offline);
        }
        Ok(all)
    }

    /// One page of the device list ([`devices::page`]): up to `limit` devices after the cursor
    /// `after` (the previous page's `next`), in MAC order.
    pub async fn devices_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<devices::DevicePage> {
        let offline = self.timing().offline_after_s();
        let mut page = devices::page(self.db(), offline, after, limit).await?;
        for d in &mut page.devices {
            self.inner.hot.overlay(d, offline);
        }
        Ok(page)
    }

    pub async fn device(&self, mac: &str) -> Result<Device> {
        let offline = self.timing().offline_after_s();
        let mut d = devices::get(self.db(), offline, mac).await?;
        self.inner.hot.overlay(&mut d, offline);
        Ok(d)
    }

    pub async fn device_history(&self, mac: &str) -> Result<Vec<Update>> {
        let d = self.device(mac).await?;
        updates::history(self.db(), &d.mac).await
    }

    pub async fn device_create(&self, new: NewDevice) -> Result<Device> {
        let d = {
            let _w = self.write_lock().await;
            devices::create(self.db(), self.timing().offline_after_s(), new).await?
        };
        self.events().publish(Event::Device {
            device: Box::new(d.clone()),
        });
        Ok(d)
    }

    pub async fn device_patch(&self, mac: &str, patch: DevicePatch) -> Result<Device> {
        let d = {
            let _w = self.write_lock().await;
            devices::patch(self.db(), self.timing().offline_after_s(), mac, patch).await?
        };
        self.events().publish(Event::Device {
            device: Box::new(d.clone()),
        });
        Ok(d)
    }

    pub async fn device_delete(&self, mac: &str) -> Result<()> {
        let mac = {
            let _w = self.write_lock().await;
            devices::delete(self.db(), mac).await?
        };
        self.inner.logs.forget(&mac);
        self.events().publish(Event::DeviceRemoved { mac });
        Ok(())
    }

    /// Publish the current state of one device (after a check-in or progress).
    pub async fn publish_device(&self, mac: &str) {
        match self.device(mac).await {
            Ok(d) => self.events().publish(Event::Device {
                device: Box::new(d),
            }),
            Err(e) => tracing::warn!(%mac, error = %e, "could not load device for its event"),
        }
    }

    // --- deployments ----------------------------------------------------------------------

    pub async fn deployments(&self) -> Result<Vec<Deployment>> {
        deployments::list(self.db()).await
    }

    /// A deployment and every device it covers, with what each gets from it.
    pub async fn deployment(&self, id: i64) -> Result<DeploymentDetail> {
        deployments::detail(self.db(), id).await
    }

    /// What a deployment would do, device by device; nothing is stored.
    pub async fn deployment_plan(&self, new: &NewDeployment) -> Result<Plan> {
        let _w = self.quiet_write_lock().await;
        deployments::plan(self.db(), new).await
    }

    pub async fn deployment_create(&self, new: NewDeployment) -> Result<Deployment> {
        let (d, superseded, closed) = {
            let _w = self.write_lock().await;
            deployments::create(self.db(), &new).await?
        };
        tracing::info!(
            id = d.id,
            firmware = d.firmware_id,
            reach = d.reach,
            rollback = d.rollback,
            allow_other_project = d.allow_other_project,
            ?superseded,
            "deployment created"
        );
        for id in superseded {
            if let Ok(old) = deployments::get(self.db(), id).await {
                self.events().publish(Event::Deployment {
                    deployment: Box::new(old),
                });
            }
        }
        self.publish_updates(closed).await;
        self.events().publish(Event::Deployment {
            deployment: Box::new(d.clone()),
        });
        Ok(d)
    }

    /// Stop (cancel) a deployment: no device is offered its image any more; its attempts that
    /// had not started, and those downloading, are closed as `cancelled`. Downloads in flight
    /// are cut ([`crate::inflight`]): whatever the protocol, the device gets a short image,
    /// which it never flashes, and stays on the image it runs. Devices that can be told
    /// (native devices that take commands, ESP Admin devices over MQTT) also get an
    /// `update_abort`. Attempts past their download (verifying, flashing, rebooting,
    /// installing) go on to their outcome: stopping a flash halfway is what must never happen.
    pub async fn deployment_stop(&self, id: i64) -> Result<Deployment> {
        let (d, closed) = {
            let _w = self.write_lock().await;
            deployments::stop(self.db(), id).await?
        };
        let downloading: Vec<&Update> = closed.iter().filter(|(_, d)| *d).map(|(u, _)| u).collect();
        let cut = self.inner.inflight.cut(downloading.iter().map(|u| u.id));
        for u in &downloading {
            // Only where the protocol has a way to say it (the cut reaches the rest).
            let takes_commands = self
                .device(&u.mac)
                .await
                .is_ok_and(|d| crate::commands::unsupported_reason(&d).is_none());
            if !takes_commands {
                continue;
            }
            let abort = crate::commands::NewCommand {
                kind: crate::commands::CommandKind::UpdateAbort,
                key: None,
                payload: None,
                expires_in_s: Some(60),
            };
            if let Err(e) = self.command_queue(&u.mac, &abort, "otafleet").await {
                tracing::warn!(mac = %u.mac, error = %e, "could not queue update_abort after a stop");
            }
        }
        tracing::info!(
            id,
            cancelled = closed.len(),
            downloading = downloading.len(),
            cut,
            "deployment stopped"
        );
        let closed = closed.into_iter().map(|(u, _)| u).collect();
        self.publish_updates(closed).await;
        self.events().publish(Event::Deployment {
            deployment: Box::new(d.clone()),
        });
        Ok(d)
    }

    /// The deployment that targets a device now and what it gives the device.
    pub async fn device_target(&self, mac: &str) -> Result<Option<DeviceTarget>> {
        let device = self.device(mac).await?;
        deployments::target_verdict(self.db(), &device).await
    }

    /// Retry every device of deployment `id` that reached the attempt limit: each gets a new
    /// attempt, and the limit counts afresh from it.
    pub async fn deployment_retry(&self, id: i64) -> Result<Vec<Update>> {
        self.retry(id, None).await
    }

    /// Retry one device that reached the attempt limit in the deployment that targets it.
    pub async fn device_retry(&self, mac: &str) -> Result<Update> {
        let device = self.device(mac).await?;
        let id = deployments::target_of(self.db(), &device)
            .await?
            .ok_or_else(|| {
                CoreError::conflict(format!(
                    "no deployment targets device {}; deploy an image to it instead",
                    device.mac
                ))
            })?;
        let mut opened = self.retry(id, Some(&device.mac)).await?;
        Ok(opened.remove(0))
    }

    async fn retry(&self, id: i64, mac: Option<&str>) -> Result<Vec<Update>> {
        let (opened, changed) = {
            let _w = self.write_lock().await;
            deployments::retry(self.db(), id, mac).await?
        };
        tracing::info!(deployment = id, devices = opened.len(), "retry");
        self.publish_updates(opened.clone()).await;
        self.publish_deployments(changed.into_iter().collect())
            .await;
        Ok(opened)
    }

    /// Roll one device back to the image it ran before its last completed update: a new
    /// deployment to that device alone, as a rollback (and of another project if that image
    /// was).
    pub async fn device_rollback(&self, mac: &str) -> Result<Deployment> {
        let device = self.device(mac).await?;
        let last: Option<Update> = self
            .device_history(&device.mac)
            .await?
            .into_iter()
            .find(|u| u.state == UpdateState::Done);
        let Some(last) = last else {
            return Err(CoreError::conflict(format!(
                "device {} has no completed update to roll back",
                device.mac
            )));
        };
        let Some(previous) = last.from_sha256.as_deref() else {
            return Err(CoreError::conflict(format!(
                "otafleet does not know which image device {} ran before update {} (it did not report a hash); deploy that image to it as a rollback",
                device.mac, last.id
            )));
        };
        let fw = firmware::by_any_hash(self.db(), previous)
            .await?
            .ok_or_else(|| {
                CoreError::conflict(format!(
                    "the image device {} ran before ({}) is not in the library; add it, then deploy it as a rollback",
                    device.mac,
                    last.from_version.as_deref().unwrap_or(previous)
                ))
            })?;
        self.deployment_create(NewDeployment {
            firmware_id: fw.id,
            devices: Some(vec![device.mac.clone()]),
            rollback: true,
            allow_other_project: true,
            ..NewDeployment::default()
        })
        .await
    }

    pub(crate) async fn publish_updates(&self, updates: Vec<Update>) {
        let mut macs: Vec<String> = updates.iter().map(|u| u.mac.clone()).collect();
        for u in updates {
            self.events().publish(Event::Update {
                update: Box::new(u),
            });
        }
        macs.sort();
        macs.dedup();
        for mac in macs {
            self.publish_device(&mac).await;
        }
    }

    /// Publish deployments whose status changed.
    pub(crate) async fn publish_deployments(&self, changed: Vec<Deployment>) {
        // A rollout that paused, resumed or started a wave changes what its devices are told:
        // every remembered answer goes. Its other events (outcomes decided, tallies) change no
        // answer and keep them: a rollout publishes one nearly every second while it runs.
        let moved = {
            let mut seen = self.inner.published.lock().expect("published lock");
            changed.iter().fold(false, |moved, d| {
                let now = (d.status, d.wave);
                moved | (seen.insert(d.id, now) != Some(now))
            })
        };
        if moved {
            self.hot().bump();
        }
        for d in changed {
            self.events().publish(Event::Deployment {
                deployment: Box::new(d),
            });
        }
    }

    // --- native device protocol -------------------------------------------------------------

    /// A native check-in (docs/protocols.md §1). `remote_ip`: the peer's address, used when the
    /// report names none; `tls`: it came over HTTPS (recorded as the device's `tls`).
    pub async fn checkin(
        &self,
        req: CheckinRequest,
        token: Option<&str>,
        remote_ip: Option<String>,
        tls: bool,
    ) -> Result<CheckinResponse> {
        checkin::checkin(self, req, token, remote_ip, tls).await
    }

    pub async fn progress(&self, token: Option<&str>, req: ProgressRequest) -> Result<Update> {
        let u = checkin::progress(self, token, req).await?;
        self.publish_device(&u.mac).await;
        Ok(u)
    }

    /// Store a device's report (`POST /api/v1/device/report`) and publish it (`report`). Who: an
    /// enrolled device, with its own token (`token`), about itself (`mac` must be the token's
    /// device). No token or an unknown one is 401 as for progress; another device's MAC (or one
    /// not enrolled) is 404 and nothing is stored. Bounded input ([`reports`]); the device's
    /// reports beyond the newest [`reports::KEEP_PER_DEVICE`] are deleted in the same
    /// transaction. Ok means it is on disk.
    pub async fn report_add(
        &self,
        mac: &str,
        token: Option<&str>,
        req: &ReportRequest,
    ) -> Result<Report> {
        let token = token.ok_or_else(|| CoreError::Unauthorized {
            code: "token_required",
            message: "reports need the device token as 'Authorization: Bearer <token>'".into(),
        })?;
        let token_hash = checkin::hash_token(token);
        let Some(owner) = devices::mac_by_token(self.db(), &token_hash).await? else {
            tracing::warn!("report with an unknown device token refused");
            return Err(CoreError::Unauthorized {
                code: "token_unknown",
                message: "this device token is not known; check in first".into(),
            });
        };
        let mac = validate::mac(mac)?;
        if owner != mac {
            tracing::warn!(%owner, %mac, "report for another device refused");
            return Err(CoreError::not_found(format!(
                "device {mac} for this token: a device reports only for itself"
            )));
        }
        let clean = reports::clean(req)?;
        self.store_report(&mac, &clean, Some(&token_hash)).await
    }

    /// Store a cleaned report of device `mac` with its notifications and publish both. With
    /// `token_hash`, the device must still hold that token when the report is written.
    pub(crate) async fn store_report(
        &self,
        mac: &str,
        clean: &reports::Clean,
        token_hash: Option<&str>,
    ) -> Result<Report> {
        // A report changes no device's answer: remembered check-ins stay valid.
        let _w = self.quiet_write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        if let Some(token_hash) = token_hash {
            if !devices::holds_token(&mut tx, mac, token_hash).await? {
                return Err(CoreError::Unauthorized {
                    code: "token_unknown",
                    message: "this device token is not known; check in first".into(),
                });
            }
        }
        let report = reports::add(&mut tx, mac, clean, reports::KEEP_PER_DEVICE).await?;
        // Its notifications are queued with it: a report acknowledged is never left unsent.
        let cfg = settings_table::stored_notify(&mut tx).await?;
        let queued = notify::queue(&mut tx, &report, &cfg).await?;
        tx.commit().await?;
        self.inner.events.publish(Event::Report {
            report: Box::new(report.clone()),
        });
        if !queued.is_empty() {
            self.inner.notify_wake.notify_one();
        }
        for d in queued {
            self.inner.events.publish(Event::Delivery {
                delivery: Box::new(d),
            });
        }
        Ok(report)
    }

    // --- live logs ([`crate::logs`]) ------------------------------------------------------

    /// Whether someone watches `mac`'s logs now: its check-in answer says `logs: true`.
    pub fn logs_wanted(&self, mac: &str) -> bool {
        self.inner.logs.wanted(mac)
    }

    /// Keep a batch of log lines a device sent (`POST /api/v1/device/logs`). Who: an enrolled
    /// device with its own token; the lines are its own (the token names the device). No token
    /// or an unknown one is 401; a bad batch 422 and nothing kept. Lines are kept in memory only
    /// (never on disk): the answer's `logs` says whether anyone still watches.
    pub async fn logs_add(&self, token: Option<&str>, batch: LogBatch) -> Result<LogBatchAnswer> {
        let token = token.ok_or_else(|| CoreError::Unauthorized {
            code: "token_required",
            message: "log lines need the device token as 'Authorization: Bearer <token>'".into(),
        })?;
        let Some(mac) = devices::mac_by_token(self.db(), &checkin::hash_token(token)).await? else {
            tracing::warn!("log lines with an unknown device token refused");
            return Err(CoreError::Unauthorized {
                code: "token_unknown",
                message: "this device token is not known; check in first".into(),
            });
        };
        self.inner.logs.append(&mac, batch)
    }

    /// `mac`'s buffered log lines after `after` (0: all), at most `limit` (the newest), and
    /// whether it is watched. 404 for an unknown device. Changes nothing.
    pub async fn logs_snapshot(&self, mac: &str, after: u64, limit: usize) -> Result<LogSnapshot> {
        let mac = validate::mac(mac)?;
        let mut conn = self.db().acquire().await?;
        devices::load(&mut conn, &mac).await?;
        drop(conn);
        Ok(self.inner.logs.snapshot(&mac, after, limit))
    }

    /// Start watching `mac`'s logs: the lines buffered after `after`, every later batch, and the
    /// lease that keeps the device sending until it is dropped ([`crate::logs`]). Only a device
    /// that speaks the native protocol with a token can send logs: any other is 409
    /// `logs_unsupported`, saying why; an unknown one 404.
    pub async fn logs_watch(&self, mac: &str, after: u64) -> Result<LogWatch> {
        let mac = validate::mac(mac)?;
        let device = {
            let mut conn = self.db().acquire().await?;
            devices::load(&mut conn, &mac).await?
        };
        if device.token_hash.is_none() {
            return Err(CoreError::Unavailable {
                code: "logs_unsupported",
                message: format!(
                    "device {mac} cannot send logs: only devices that speak otafleet's own protocol (the reference client, with a device token) stream logs; stock updaters (Arduino HTTPUpdate, ESP8266, esp32FOTA, the legacy OTA server's devices) have no log channel"
                ),
            });
        }
        let (backlog, rx, lease, first) = self.inner.logs.watch(&mac, after);
        if first {
            // The first viewer: a device waiting for commands learns at once (a `log` command),
            // any other at its next check-in (`logs: true`). Best effort: the lease holds anyway.
            let on = crate::commands::NewCommand {
                kind: crate::commands::CommandKind::Log,
                key: None,
                payload: Some(serde_json::json!({"on": true})),
                expires_in_s: Some(60),
            };
            if let Err(e) = self.command_queue(&mac, &on, LOG_VIEWER).await {
                tracing::debug!(%mac, code = e.code(), "logs: no log command queued");
            }
        }
        Ok(LogWatch { backlog, rx, lease })
    }

    /// Reports, newest first ([`ReportFilter`]: per device, per type, limit).
    pub async fn reports(&self, filter: &ReportFilter) -> Result<Vec<Report>> {
        reports::list(self.db(), filter).await
    }

    /// The notification settings as shown: secrets only as `{"set": true}`.
    pub async fn notify_settings(&self) -> Result<NotifyView> {
        let mut conn = self.db().acquire().await?;
        Ok(settings_table::stored_notify(&mut conn).await?.view())
    }

    /// The delivery log, newest first ([`DeliveryFilter`]).
    pub async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>> {
        notify::list(self.db(), filter).await
    }

    /// Send a test notification to each configured channel target (even one turned off), now,
    /// and answer what happened. Writes nothing.
    pub async fn notify_test(&self) -> Result<Vec<TestResult>> {
        let cfg = {
            let mut conn = self.db().acquire().await?;
            settings_table::stored_notify(&mut conn).await?
        };
        let report = notify::test_payload();
        let mut out = Vec::new();
        if let Some(w) = &cfg.webhook {
            let a = notify::send_webhook(&self.inner.http, &w.url, &w.secret, 0, 1, true, &report)
                .await;
            out.push(TestResult {
                channel: Channel::Webhook,
                recipient: w.url.clone(),
                delivered: a.ok,
                status: a.status,
                error: a.error,
            });
        }
        if let Some(s) = &cfg.smtp {
            for to in &s.to {
                let a =
                    notify::send_email(s, &self.settings().notify_extra_roots, to, true, &report)
                        .await;
                out.push(TestResult {
                    channel: Channel::Email,
                    recipient: to.clone(),
                    delivered: a.ok,
                    status: a.status,
                    error: a.error,
                });
            }
        }
        Ok(out)
    }

    /// The open attempt a native device's download belongs to (by its token), for counting.
    pub async fn native_download(&self, token: &str, sha256: &str) -> Result<Option<Update>> {
        checkin::download_attempt(self, token, sha256).await
    }

    /// Count bytes sent for a native device's download ([`Fleet::native_download`]).
    pub async fn native_download_sent(
        &self,
        update: &Update,
        bytes: i64,
        restart: bool,
    ) -> Result<Update> {
        checkin::download_sent(self, update, bytes, restart).await
    }

    // --- stock updaters (docs/protocols.md §2–4) ------------------------------------------

    /// A stock updater's check ([`field::check`]): the device's MAC as otafleet writes it, and
    /// the answer.
    pub async fn field_check(&self, req: FieldCheck) -> Result<(String, FieldAnswer)> {
        field::check(self, req).await
    }

    /// The attempt a per-device download belongs to ([`field::download_for`]).
    pub async fn field_download_for(
        &self,
        mac: &str,
        fw: &Firmware,
        asker: Asker<'_>,
    ) -> Result<Option<Update>> {
        field::download_for(self, mac, fw, asker).await
    }

    /// A counted download of a stock client starts ([`field::download_started`]).
    pub async fn field_download_started(&self, update_id: i64, start: u64) -> Result<Update> {
        field::download_started(self, update_id, start).await
    }

    /// Bytes sent on a counted download of a stock client ([`field::download_bytes`]).
    pub async fn field_download_bytes(&self, update_id: i64, bytes: i64, size: i64) -> Result<()> {
        field::download_bytes(self, update_id, bytes, size).await
    }

    /// A counted download of a stock client ended ([`field::download_ended`]).
    pub async fn field_download_ended(
        &self,
        update_id: i64,
        complete: bool,
        reached_end: bool,
    ) -> Result<()> {
        field::download_ended(self, update_id, complete, reached_end).await
    }

    /// The esp32FOTA manifest's `(type, image)` entries for a request that names no device
    /// ([`manifest::entries`]); a device that names itself asks through [`Self::field_check`]
    /// with [`FieldMode::Manifest`](crate::field::FieldMode::Manifest).
    pub async fn fota_manifest(&self) -> Result<Vec<(String, Firmware)>> {
        manifest::entries(self).await
    }

    /// The image a legacy device's deployment gives it ([`legacy::target`]).
    pub async fn legacy_target(&self, device: &Device) -> Result<Option<Firmware>> {
        legacy::target(self, device).await
    }

    /// A legacy admin's assignment ([`legacy::assign`]).
    pub async fn legacy_assign(
        &self,
        mac: &str,
        a: Assignment,
        create: bool,
    ) -> Result<(Device, Firmware)> {
        legacy::assign(self, mac, a, create).await
    }

    /// The newest image uploaded under `name` (the legacy `/firmware/<name>` route).
    pub async fn legacy_firmware(&self, name: &str) -> Result<Option<Firmware>> {
        legacy::by_filename(self.db(), name).await
    }

    // --- trust settings -------------------------------------------------------------------

    /// Whether MACs the server does not know may enrol ([`crate::trust`]); on by default.
    pub async fn open_enrolment(&self) -> Result<bool> {
        let mut conn = self.db().acquire().await?;
        settings_table::open_enrolment(&mut conn).await
    }

    /// Turn open enrolment on or off (persisted). Returns the new value.
    pub async fn set_open_enrolment(&self, open: bool) -> Result<bool> {
        self.change_settings(SettingsChange {
            open_enrolment: Some(open),
            ..Default::default()
        })
        .await?;
        Ok(open)
    }

    /// Change the settings kept in the database, validated as a whole and written in one
    /// transaction: on `Ok` they are on disk, and the timing is in effect for the next check-in
    /// and device listing (no restart). On `Err` nothing changed.
    pub async fn change_settings(&self, change: SettingsChange) -> Result<Timing> {
        let _w = self.write_lock().await;
        let mut tx = db::begin_write(self.db()).await?;
        let before = settings_table::stored_timing(&mut tx).await?;
        let default = self.inner.settings.checkin_interval_s;
        let after = change.apply(before, default)?;
        if after != before {
            settings_table::store_timing(&mut tx, after).await?;
        }
        if let Some(open) = change.open_enrolment {
            settings_table::set_open_enrolment(&mut tx, open).await?;
        }
        if let Some(p) = &change.notify {
            let before = settings_table::stored_notify(&mut tx).await?;
            let after = p.apply(&before)?;
            if after != before {
                settings_table::store_notify(&mut tx, &after).await?;
                // Named, never shown: the settings hold secrets.
                tracing::info!(
                    webhook = after.webhook.is_some(),
                    email = after.smtp.is_some(),
                    "notification settings changed"
                );
            }
        }
        tx.commit().await?;
        let timing = after.timing(default);
        self.inner.timing.set(timing);
        if let Some(o) = &self.inner.cluster {
            o.stage_timing();
        }
        if let Some(open) = change.open_enrolment {
            tracing::info!(open, "open enrolment changed");
        }
        if after != before {
            tracing::info!(
                checkin_interval_s = timing.checkin_interval_s,
                offline_after_s = timing.offline_after_s(),
                "check-in timing changed"
            );
        }
        Ok(timing)
    }

    // --- watch folders --------------------------------------------------------------------

    pub async fn watch_folders(&self) -> Result<Vec<WatchFolder>> {
        watch_folders::list(self.db()).await
    }

    pub async fn watch_folder_add(&self, new: NewWatchFolder) -> Result<WatchFolder> {
        // A folder on the server's disk is the server's own, not another organisation's to read.
        self.only_default_may("watch a folder on the server's disk")?;
        let f = {
            let _w = self.write_lock().await;
            watch_folders::add(self.db(), new).await?
        };
        tracing::info!(path = %f.path, auto_deploy = f.auto_deploy, "watching a folder");
        self.events().publish(Event::WatchFolders);
        Ok(f)
    }

    pub async fn watch_folder_remove(&self, id: i64) -> Result<()> {
        {
            let _w = self.write_lock().await;
            watch_folders::remove(self.db(), id).await?;
        }
        self.events().publish(Event::WatchFolders);
        Ok(())
    }

    /// Record and publish what happened to a file in a watch folder.
    pub async fn watch_record(
        &self,
        id: i64,
        file: &str,
        result: &str,
        message: &str,
    ) -> Result<()> {
        let folder = {
            let _w = self.write_lock().await;
            watch_folders::record(self.db(), id, file, result, message).await?
        };
        self.events().publish(Event::Watch {
            folder: Box::new(folder),
        });
        Ok(())
    }

    // --- audit log ------------------------------------------------------------------------

    /// Write an admin request's audit row, `pending`, before the request is handled
    /// ([`crate::audit`]). If this fails (a full disk: [`CoreError::DiskFull`]), the request must
    /// not be handled. Returns the row's id for [`Fleet::audit_finish`].
    pub async fn audit_record(&self, entry: &NewAuditEntry) -> Result<i64> {
        self.audit_flush().await;
        // The log changes no device's answer: remembered check-ins stay valid.
        let _w = self.quiet_write_lock().await;
        audit::record(self.db(), entry).await
    }

    /// Record the HTTP status a request was answered with on its pending row — the one change an
    /// audit row ever sees, once. If the write fails for want of space, the result is kept in
    /// memory and written as soon as the disk takes it (by the next audit write, every 500 ms,
    /// and at [`Fleet::close`]); the error is still returned, to be logged. Only a server that
    /// dies before then leaves the row `pending`.
    pub async fn audit_finish(&self, id: i64, status: u16) -> Result<Outcome> {
        self.audit_flush().await;
        let _w = self.quiet_write_lock().await;
        let r = audit::finish(self.db(), id, status).await;
        if let Err(CoreError::DiskFull { .. }) = &r {
            self.audit_unwritten().push((id, status));
        }
        r
    }

    pub(crate) fn password_failures(&self) -> &crate::passwords::Throttle {
        &self.inner.password_failures
    }

    fn token_uses(&self) -> std::sync::MutexGuard<'_, HashMap<i64, std::time::Instant>> {
        self.inner
            .token_uses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn audit_unwritten(&self) -> std::sync::MutexGuard<'_, Vec<(i64, u16)>> {
        self.inner
            .audit_unwritten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Write the audit results a full disk refused earlier; those it still refuses stay queued.
    async fn audit_flush(&self) {
        let queued = std::mem::take(&mut *self.audit_unwritten());
        if queued.is_empty() {
            return;
        }
        let _w = self.quiet_write_lock().await;
        let mut left = Vec::new();
        for (id, status) in queued {
            match audit::finish(self.db(), id, status).await {
                Ok(_) => tracing::info!(audit_id = id, status, "audit result written late"),
                Err(CoreError::DiskFull { .. }) => left.push((id, status)),
                Err(e) => {
                    tracing::warn!(audit_id = id, status, error = %e, "audit result dropped: the row stays pending")
                }
            }
        }
        self.audit_unwritten().extend(left);
    }

    /// Audit rows, newest first ([`AuditFilter`]). There is no API to change or delete them.
    pub async fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        audit::list(self.db(), filter).await
    }
}
