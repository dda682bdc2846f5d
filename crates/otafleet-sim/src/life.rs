//! A virtual device's life, whatever its protocol: power up, check, take what is offered, boot
//! it (or fail to, as injected), and from what the server answers next decide the device's first
//! outcome ([`Outcome`]); with `--duration` / `--forever`, live on after it.
//!
//! Each protocol module only speaks its protocol: a check (`Client::check`) answers nothing or
//! an [`Offer`], an install (`Client::install`) downloads and verifies it into a [`Flashed`]
//! image (or `None`: a stock client's download broke, the next check starts over). What the
//! device runs is tracked the same way for all: its image (version, SHA-256, MD5, size) and
//! project, replaced by each image it boots, whatever the image is (a retry of the same one, a
//! rollback, a later release). The injected failed boot applies to the first
//! `--failed-boot-times` boots of each image (all of them by default).
//!
//! **The server away.** A check or install that fails transiently (connection refused or cut, a
//! timeout, a `5xx`: [`DeviceError::is_transient`]) is what a server restart looks like to a
//! device; after the shared client's few quick retries ([`crate::http`]) the device backs off as
//! the reference client does ([`Backoff`]: from the interval, doubling, capped, jittered) and
//! tries again, logged at debug level, never counted as a failure. Only `--timeout` gives up on a
//! device, and only on reaching its first outcome: from the start, or with `--duration` /
//! `--forever` from its first offer (a device may wait for a deployment as long as the run
//! lasts). A device given up on that way still lives on.
//!
//! **Living on.** After its first outcome a device keeps checking in at the interval and takes
//! any image offered, counting what it booted ([`Later`]). Anything unexpected then (an offer of
//! the image it runs, a bad image, a refusal) is recorded and the device carries on at its next
//! interval, as a real one would. When the run ends a device stops at its next wait (between
//! checks, in a back-off), never in the middle of a request, so what it last told the server
//! stands; it says whether its records there must be complete ([`DeviceResult::settled`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use tokio::sync::{mpsc, watch};

use crate::arduino::{self, Flavor};
use crate::backoff::Backoff;
use crate::commands::Remote;
use crate::config::Protocol;
use crate::device::{self, give_up, DeviceResult, DeviceSpec, Native, Outcome, MAX_FAILED_BOOTS};
use crate::error::DeviceError;
use crate::esp_admin::{self, EspAdmin};
use crate::images::Image;
use crate::run::Shared;
use crate::{fota, legacy};

/// What a check offers, in its protocol's terms.
pub enum Offer {
    Native(device::Offer),
    Arduino(arduino::Offer),
    Fota(fota::Offer),
    Legacy(legacy::Offer),
    EspAdmin(esp_admin::Offer),
}

impl Offer {
    /// The server's update id (native devices only).
    fn update_id(&self) -> Option<i64> {
        match self {
            Offer::Native(o) => Some(o.id),
            _ => None,
        }
    }

    /// The image's MD5, when the offer says it (all but esp32FOTA).
    fn md5(&self) -> Option<&str> {
        match self {
            Offer::Native(o) => Some(&o.md5),
            Offer::Arduino(o) => Some(o.md5()),
            Offer::Legacy(o) => Some(o.md5()),
            Offer::Fota(_) | Offer::EspAdmin(_) => None,
        }
    }

    /// Is it the image the device runs (which no server should offer)?
    fn is_image(&self, running: &Image) -> bool {
        match self {
            Offer::Native(o) => o.sha256 == running.sha256,
            Offer::Arduino(o) => o.md5() == running.md5,
            Offer::Legacy(o) => o.md5() == running.md5,
            Offer::Fota(o) => o.version() == running.version,
            Offer::EspAdmin(o) => !o.version.is_empty() && o.version == running.version,
        }
    }

    fn describe(&self) -> String {
        match self {
            Offer::Native(o) => format!(
                "update {} (version {:?}, sha256 {})",
                o.id,
                o.version,
                short(&o.sha256)
            ),
            Offer::Arduino(o) => format!("an image with x-MD5 {}", o.md5()),
            Offer::Legacy(o) => format!("version {:?} (md5 {})", o.version(), o.md5()),
            Offer::Fota(o) => format!("version {}", o.version()),
            Offer::EspAdmin(o) => format!("release {} (version {:?})", o.release_id, o.version),
        }
    }
}

/// An image the device downloaded, verified and flashed, about to boot.
pub struct Flashed {
    pub image: Image,
    /// The project the image's descriptor names (native devices read it, as ESP-IDF does).
    pub project: Option<String>,
    /// The server's update id (native devices only).
    pub update_id: Option<i64>,
    /// The server was told the device is about to reboot (a native device's `done` report
    /// arrived); only then does it close the attempt as failed when the device comes back on the
    /// old image. Stock clients report nothing: always `true`.
    pub announced: bool,
}

/// A device's protocol and what it keeps for it.
pub enum Client {
    Native(Native),
    Arduino(Flavor),
    Fota,
    /// The `X-Device-Auth` value.
    Legacy(String),
    EspAdmin(Box<EspAdmin>),
}

impl Client {
    pub fn new(sh: &Shared, spec: &DeviceSpec) -> Result<Client, DeviceError> {
        Ok(match spec.protocol {
            Protocol::Native => Client::Native(Native::default()),
            Protocol::Arduino => Client::Arduino(Flavor::Esp32),
            Protocol::Esp8266 => Client::Arduino(Flavor::Esp8266),
            Protocol::Esp32Fota => Client::Fota,
            Protocol::Legacy => Client::Legacy(legacy::auth(sh, &spec.mac)?),
            Protocol::EspAdmin => {
                Client::EspAdmin(Box::new(EspAdmin::new(spec.esp_admin.clone())?))
            }
        })
    }

    /// What the device does while it checks (the timeout message names it).
    fn checking(&self) -> &'static str {
        match self {
            Client::Native(_) => "checking in",
            Client::Arduino(_) => "polling /ota/arduino",
            Client::Fota => "polling /ota/esp32fota.json",
            Client::Legacy(_) => "polling /api/firmware",
            Client::EspAdmin(_) => "esp-admin: booting or waiting for a trigger",
        }
    }

    async fn check(&mut self, dev: &mut Dev<'_>) -> Result<Option<Offer>, DeviceError> {
        Ok(match self {
            Client::Native(n) => n.checkin(dev).await?.map(Offer::Native),
            Client::Arduino(f) => arduino::check(dev, *f).await?.map(Offer::Arduino),
            Client::Fota => fota::check(dev).await?.map(Offer::Fota),
            Client::Legacy(auth) => legacy::check(dev, auth).await?.map(Offer::Legacy),
            Client::EspAdmin(e) => e.check(dev).await?.map(Offer::EspAdmin),
        })
    }

    /// After a boot of a flashed image: a native device reports how it went (best effort);
    /// stock clients report nothing.
    async fn boot_report(
        &self,
        dev: &Dev<'_>,
        booted: bool,
        new: &Image,
        old: &Image,
    ) -> Result<(), DeviceError> {
        if let Client::Native(n) = self {
            n.boot_report(dev, booted, new, old).await?;
        }
        Ok(())
    }

    async fn install(
        &mut self,
        dev: &mut Dev<'_>,
        offer: Offer,
    ) -> Result<Option<Flashed>, DeviceError> {
        match (self, offer) {
            (Client::Native(n), Offer::Native(o)) => n.install(dev, &o).await.map(Some),
            (Client::Arduino(f), Offer::Arduino(o)) => arduino::install(dev, *f, o).await,
            (Client::Fota, Offer::Fota(o)) => fota::install(dev, o).await,
            (Client::Legacy(_), Offer::Legacy(o)) => legacy::install(dev, o).await,
            (Client::EspAdmin(e), Offer::EspAdmin(o)) => e.install(dev, o).await,
            _ => Err(DeviceError::Protocol(
                "the simulator mixed up two protocols (a bug)".into(),
            )),
        }
    }
}

/// What a device did after its first outcome (`--duration` / `--forever`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Later {
    /// Images it booted.
    pub updates: usize,
    /// Boots that failed as injected.
    pub failed_boots: usize,
    /// Unexpected errors, in all.
    pub error_count: usize,
    /// The first few of them.
    pub errors: Vec<String>,
}

/// Unexpected errors a device keeps the text of, after its first outcome.
const KEPT_ERRORS: usize = 3;

impl Later {
    fn error(&mut self, e: String) {
        self.error_count += 1;
        if self.errors.len() < KEPT_ERRORS {
            self.errors.push(e);
        }
    }
}

/// One device's state over its life.
pub struct Dev<'a> {
    pub sh: &'a Shared,
    /// Its identity and what it runs now (image and project).
    pub spec: DeviceSpec,
    /// What it is doing, for the timeout message.
    pub phase: &'static str,
    /// When it last booted (native check-ins report the uptime).
    pub booted: Instant,
    enrolled: bool,
    /// The injected cut is still to come (once per device).
    pub cut_pending: bool,
    /// The injected cut happened (and the device resumed or started over).
    pub after_cut: bool,
    /// Failed boots per image, by MD5 (`--failed-boot-times` counts per image).
    boots_failed: HashMap<String, u32>,
    /// Failed boots in all.
    failed_boots: usize,
    /// Native: attempts whose boot failed after the server knew the device was rebooting: the
    /// server must never offer them again.
    failed_updates: Vec<i64>,
    backoff: Backoff,
    /// The last transient error, while the device rides it out (for the timeout message).
    last_error: Option<String>,
    /// When the `--timeout` clock started.
    clock: watch::Sender<Option<Instant>>,
    later: Later,
    /// Its last check answered "nothing to do".
    settled: bool,
    /// `--commands`, native devices: what the command loop and this life share.
    pub remote: Option<Arc<Remote>>,
}

impl<'a> Dev<'a> {
    pub fn new(sh: &'a Shared, spec: DeviceSpec) -> Self {
        let now = Instant::now();
        let clock = (!sh.cfg.lifetime.lives_on()).then_some(now);
        let remote = (sh.cfg.commands && spec_is_native(&spec)).then(Arc::default);
        Dev {
            sh,
            cut_pending: spec.cut_download,
            spec,
            phase: "starting",
            booted: now,
            enrolled: false,
            after_cut: false,
            boots_failed: HashMap::new(),
            failed_boots: 0,
            failed_updates: Vec::new(),
            backoff: Backoff::new(sh.cfg.interval),
            last_error: None,
            clock: watch::channel(clock).0,
            later: Later::default(),
            settled: false,
            remote,
        }
    }

    /// The first check the server answered (counted once per device).
    pub fn enrolled(&mut self) {
        if !self.enrolled {
            self.enrolled = true;
            self.sh.stats.enrolled.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn pause(&self, d: std::time::Duration) -> Result<(), DeviceError> {
        self.sh.pause(d).await
    }

    async fn wait_interval(&mut self) -> Result<(), DeviceError> {
        self.phase = "waiting for an update";
        let d = self.sh.jittered(self.sh.cfg.interval);
        let Some(remote) = self.remote.clone() else {
            return self.pause(d).await;
        };
        // A restart asked by a command (answered `done` already) happens here, at a wait, as a
        // real device finishes the request it is in first; then it checks in at once.
        tokio::select! {
            r = self.sh.pause(d) => return r,
            () = remote.restart.notified() => {}
        }
        self.phase = "restarting";
        self.pause(self.sh.jittered(self.sh.cfg.reboot)).await?;
        self.booted = Instant::now();
        tracing::debug!(mac = %self.spec.mac, "restarted by a command");
        Ok(())
    }

    /// The server is away: back off, then let the caller try again.
    async fn ride_out(&mut self, e: DeviceError) -> Result<(), DeviceError> {
        let wait = self.backoff.next_wait();
        tracing::debug!(
            mac = %self.spec.mac,
            phase = self.phase,
            error = %e,
            failures = self.backoff.failures(),
            wait_s = wait.as_secs_f64(),
            "the server is unreachable; backing off"
        );
        self.sh.stats.backoffs.fetch_add(1, Ordering::Relaxed);
        self.last_error = Some(e.to_string());
        self.pause(wait).await
    }

    /// One check, tried until the server answers.
    async fn check(&mut self, cl: &mut Client) -> Result<Option<Offer>, DeviceError> {
        loop {
            self.phase = cl.checking();
            match cl.check(self).await {
                Ok(offer) => {
                    self.backoff.reset();
                    self.last_error = None;
                    self.settled = offer.is_none();
                    return Ok(offer);
                }
                Err(e) if e.is_transient() => self.ride_out(e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Download and flash an offer. `None`: not this time (the download broke, or the server went
    /// away); the device has waited and checks again.
    async fn take(
        &mut self,
        cl: &mut Client,
        offer: Offer,
    ) -> Result<Option<Flashed>, DeviceError> {
        self.settled = false;
        match cl.install(self, offer).await {
            Ok(Some(f)) => Ok(Some(f)),
            Ok(None) => {
                self.wait_interval().await?;
                Ok(None)
            }
            Err(e) if e.is_transient() => {
                self.ride_out(e).await?;
                Ok(None)
            }
            Err(DeviceError::Aborted { update_id } | DeviceError::Withdrawn { update_id }) => {
                tracing::debug!(mac = %self.spec.mac, update_id, "update aborted or closed by the server");
                self.wait_interval().await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Reboot onto a flashed image; `true` when it boots. A device picked for failed boots fails
    /// the first `--failed-boot-times` boots of each image (every one by default) and comes back
    /// on what it ran. Either way a native device then reports how the boot went.
    async fn boot(&mut self, cl: &Client, f: Flashed) -> Result<bool, DeviceError> {
        self.phase = "rebooting";
        tokio::time::sleep(self.sh.jittered(self.sh.cfg.reboot)).await;
        self.booted = Instant::now();
        let tries = self.boots_failed.entry(f.image.md5.clone()).or_default();
        let fails = self.sh.fails_boots(&self.spec)
            && self
                .sh
                .cfg
                .failed_boot_times
                .is_none_or(|limit| *tries < limit);
        if !fails {
            let old = std::mem::replace(&mut self.spec.running, f.image);
            if let Some(p) = f.project {
                self.spec.project = p;
            }
            let new = self.spec.running.clone();
            cl.boot_report(self, true, &new, &old).await?;
            return Ok(true);
        }
        *tries += 1;
        if self.failed_boots == 0 {
            self.sh.stats.boot_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.failed_boots += 1;
        if let (Some(id), true) = (f.update_id, f.announced) {
            self.failed_updates.push(id);
        }
        let old = self.spec.running.clone();
        cl.boot_report(self, false, &f.image, &old).await?;
        Ok(false)
    }

    /// A native attempt the device came back from on the old image, offered again.
    fn refuse_failed(&self, o: &Offer) -> Result<(), DeviceError> {
        match o.update_id() {
            Some(id) if self.failed_updates.contains(&id) => Err(DeviceError::Protocol(format!(
                "the server still offers update {id} after the device came back on the old image"
            ))),
            _ => Ok(()),
        }
    }

    /// From power-up to the first outcome, within `--timeout`. With it, when the device lives on,
    /// an offer that came at the check which gave the outcome.
    pub async fn first_outcome(&mut self, cl: &mut Client) -> (Outcome, Option<Offer>) {
        let timeout = self.sh.cfg.timeout;
        let mut clock = self.clock.subscribe();
        let deadline = async move {
            let start = clock.wait_for(Option::is_some).await.ok().and_then(|s| *s);
            match start {
                Some(start) => tokio::time::sleep_until((start + timeout).into()).await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            r = self.until_outcome(cl) => Some(r),
            () = deadline => None,
        };
        match ended {
            Some(Ok(reached)) => reached,
            Some(Err(DeviceError::Stopped)) => (
                Outcome::Unexpected(format!(
                    "the run ended before the device's first outcome ({}{})",
                    self.phase,
                    self.last_error
                        .as_ref()
                        .map(|e| format!("; last error: {e}"))
                        .unwrap_or_default()
                )),
                None,
            ),
            Some(Err(e)) => (Outcome::Unexpected(e.to_string()), None),
            None => {
                let e = DeviceError::Timeout {
                    phase: self.phase,
                    last_error: self.last_error.clone(),
                };
                (Outcome::Unexpected(e.to_string()), None)
            }
        }
    }

    async fn until_outcome(
        &mut self,
        cl: &mut Client,
    ) -> Result<(Outcome, Option<Offer>), DeviceError> {
        // Devices power up spread over one interval, like a fleet does.
        let first = self
            .sh
            .cfg
            .interval
            .mul_f64(rand::thread_rng().gen::<f64>());
        self.pause(first).await?;
        // The update it booted (`Some(None)`: a stock client's, whose id it is never told).
        let mut booted: Option<Option<i64>> = None;
        // The attempts whose boot failed.
        let mut failed: Vec<Option<i64>> = Vec::new();
        // The last offer taken ended without an image (cut, aborted, closed by the server).
        let mut broke = false;
        loop {
            let Some(o) = self.check(cl).await? else {
                if broke && booted.is_none() && failed.is_empty() {
                    // Taking it broke off and the server offers it no more: withdrawn (a
                    // stopped deployment). A broken download is otherwise offered again.
                    return Ok((Outcome::Withdrawn, None));
                }
                if let Some(update_id) = booted {
                    let outcome = Outcome::Updated {
                        update_id,
                        resumed: self.after_cut,
                    };
                    return Ok((outcome, None));
                }
                // Back on the old image, the server stopped offering the image after its attempt
                // limit: every attempt is on record as failed.
                if let Some(first) = failed.first() {
                    let outcome = Outcome::BootFailedAsInjected { update_id: *first };
                    return Ok((outcome, None));
                }
                self.wait_interval().await?;
                continue;
            };
            if let Some(update_id) = booted {
                // The check on the new image confirmed it, and already offers another: only a
                // deployment made meanwhile may, and only a device that lives on takes it.
                if self.sh.cfg.lifetime.lives_on() && !o.is_image(&self.spec.running) {
                    let outcome = Outcome::Updated {
                        update_id,
                        resumed: self.after_cut,
                    };
                    return Ok((outcome, Some(o)));
                }
                return Err(DeviceError::Protocol(format!(
                    "the server offers {} to a device that runs the image it was just updated to (version {})",
                    o.describe(),
                    self.spec.running.version
                )));
            }
            self.refuse_failed(&o)?;
            if failed.len() >= MAX_FAILED_BOOTS {
                return Err(give_up(failed.len()));
            }
            // The --timeout clock of a device that lives on starts at its first offer.
            self.clock.send_if_modified(|c| {
                let unset = c.is_none();
                c.get_or_insert_with(Instant::now);
                unset
            });
            let Some(f) = self.take(cl, o).await? else {
                broke = true;
                continue;
            };
            broke = false;
            let id = f.update_id;
            if self.boot(cl, f).await? {
                booted = Some(id);
            } else {
                failed.push(id);
            }
            // A rebooted device checks at once.
        }
    }

    /// After the first outcome, until the run ends: check at the interval and take whatever is
    /// offered. `pending`: an offer the first outcome's check brought.
    pub async fn live_on(&mut self, cl: &mut Client, mut pending: Option<Offer>) {
        loop {
            match self.live_step(cl, pending.take()).await {
                Ok(()) => {}
                Err(DeviceError::Stopped) => return,
                Err(e) => {
                    self.settled = false;
                    tracing::debug!(mac = %self.spec.mac, error = %e, "unexpected, after the first outcome");
                    self.later.error(e.to_string());
                    if self.wait_interval().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn live_step(
        &mut self,
        cl: &mut Client,
        pending: Option<Offer>,
    ) -> Result<(), DeviceError> {
        let offer = match pending {
            Some(o) => Some(o),
            None => self.check(cl).await?,
        };
        let Some(o) = offer else {
            return self.wait_interval().await;
        };
        self.settled = false;
        if o.is_image(&self.spec.running) {
            return Err(DeviceError::Protocol(format!(
                "the server offers {}, the image the device runs",
                o.describe()
            )));
        }
        self.refuse_failed(&o)?;
        if let Some(&n) = o.md5().and_then(|m| self.boots_failed.get(m)) {
            if n as usize >= MAX_FAILED_BOOTS {
                return Err(give_up(n as usize));
            }
        }
        let Some(f) = self.take(cl, o).await? else {
            return Ok(());
        };
        if self.boot(cl, f).await? {
            self.later.updates += 1;
            self.sh.stats.later_updates.fetch_add(1, Ordering::Relaxed);
        } else {
            self.later.failed_boots += 1;
        }
        Ok(())
    }

    fn result(&self, outcome: Outcome, boots_failed: usize) -> DeviceResult {
        DeviceResult {
            mac: self.spec.mac.clone(),
            protocol: self.spec.protocol,
            outcome,
            failed_boot_injected: self.sh.fails_boots(&self.spec),
            cut_injected: self.spec.cut_download,
            boots_failed,
            later: self.later.clone(),
            runs: self.spec.running.clone(),
            project: self.spec.project.clone(),
            settled: self.settled,
        }
    }
}

/// A device from power-up to the end of the run: its result goes to `done` at its first outcome,
/// or, when it lives on, when the run ends. An esp32FOTA device then goes on polling quietly
/// until the run has read the server's records ([`device::linger`]).
pub async fn run(sh: &Shared, spec: DeviceSpec, done: &mpsc::UnboundedSender<DeviceResult>) {
    let mac = spec.mac.clone();
    let dev = Dev::new(sh, spec);
    let Some(remote) = dev.remote.clone() else {
        return life(sh, dev, done).await;
    };
    // `--commands`: the command loop runs beside the life until the run ends; the life then
    // finishes as it would.
    let life = life(sh, dev, done);
    tokio::pin!(life);
    tokio::select! {
        () = &mut life => {}
        () = crate::commands::serve(sh, &mac, remote) => life.await,
    }
}

fn spec_is_native(spec: &DeviceSpec) -> bool {
    spec.protocol == Protocol::Native
}

async fn life(sh: &Shared, mut dev: Dev<'_>, done: &mpsc::UnboundedSender<DeviceResult>) {
    let lives_on = sh.cfg.lifetime.lives_on();
    let (mut client, outcome, pending) = match Client::new(sh, &dev.spec) {
        Ok(mut cl) => {
            let (outcome, pending) = dev.first_outcome(&mut cl).await;
            (Some(cl), outcome, pending)
        }
        Err(e) => (None, Outcome::Unexpected(e.to_string()), None),
    };
    sh.stats.finished.fetch_add(1, Ordering::Relaxed);
    let boots_failed = dev.failed_boots;
    let polls_on = dev.spec.protocol == Protocol::Esp32Fota
        && (lives_on || matches!(outcome, Outcome::Updated { .. }));
    if lives_on && !*sh.ending.borrow() {
        if let Some(cl) = client.as_mut() {
            dev.live_on(cl, pending).await;
        }
    }
    let _ = done.send(dev.result(outcome, boots_failed));
    if polls_on {
        device::linger(sh, &dev.spec).await;
    }
}

/// The first 12 hex digits of a hash, as the summary shows it.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
