//! One virtual device speaking the native protocol v1 (docs/protocols.md §1), as the reference
//! client does: check in every interval (with jitter), take an offered update, stream the image
//! (hashing as it goes, never holding it whole), verify SHA-256 and MD5, report progress, reboot
//! after a delay and check in on the new image, which is what makes the server call it `done`.
//! What it runs next is read from the image as ESP-IDF does: the offer's version, and the
//! project in the image's `esp_app_desc_t`.
//!
//! Injected failures are decided per device before it starts ([`DeviceSpec`]): a cut download
//! stops reading halfway, drops the connection and resumes with `Range` + `If-Range`; a failed
//! boot reports `done`, "reboots" and comes back on the old image, which the server must record
//! as a failed attempt. Such a device takes the image again whenever it is offered (and fails
//! again, or with `--failed-boot-times` boots it at last), until the server's attempt limit stops
//! the offers: then nothing is left open.
//!
//! After each boot of a flashed image the device reports how it went (`success` "updated to
//! <version>", or `error` "boot of <version> failed, back on <old version>").
//!
//! When the server goes away (a restart), progress and boot reports are best effort, as the reference
//! client's are: one that cannot be delivered is dropped (the server only keeps or advances an
//! update's stage, so nothing is lost that a later report or check-in does not bring). A download
//! cut by it keeps what arrived, and the device resumes it with `Range` when the server offers the
//! same image again at a later check-in. The back-off between those check-ins is the device's
//! life's ([`crate::life`]); this module only speaks the protocol.
//!
//! The types every protocol shares ([`DeviceSpec`], [`Outcome`], [`DeviceResult`]) are here too.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use md5::Md5;
use rand::Rng;
use reqwest::header::{CONTENT_RANGE, IF_RANGE, RANGE};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::Protocol;
use crate::error::DeviceError;
use crate::http::status_error;
pub use crate::images::Image;
use crate::images::{descriptor, DESCRIPTOR_END};
use crate::life::{Dev, Flashed, Later};
use crate::run::Shared;

/// A device whose boot of the new image fails keeps taking the image, as its client would, until
/// the server stops offering it (after the server's attempt limit, 3 today). Past this many
/// failed boots of one image the server is taken never to stop, which is an error.
pub const MAX_FAILED_BOOTS: usize = 10;

/// The error of a device the server offers an image it failed to boot too many times.
pub fn give_up(failures: usize) -> DeviceError {
    DeviceError::Protocol(format!(
        "the server still offers the image after {failures} failed boots (its attempt limit should have stopped it)"
    ))
}

/// Everything fixed about a device before it starts.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub mac: String,
    pub protocol: Protocol,
    /// The project its firmware belongs to (esp32FOTA's compiled-in firmware type). A native
    /// device takes the one of each image it boots from the image's descriptor.
    pub project: String,
    /// The image it runs at the start (and, as the device lives, the one it runs now).
    pub running: Image,
    pub cut_download: bool,
    pub failed_boot: bool,
    /// `--crash-loop`: a new image it boots restarts every [`CRASH_AFTER`] (native devices).
    pub crash_loop: bool,
    /// An esp-admin device's identity, as the admin created it (its MAC is the server's).
    pub esp_admin: Option<std::sync::Arc<crate::esp_admin::Creds>>,
}

/// How a device's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Runs the new image and the server confirmed it (no new offer at the check-in on it).
    /// `update_id` is known to native devices only; stock clients are never told theirs.
    Updated {
        update_id: Option<i64>,
        resumed: bool,
    },
    /// The injected failed boot happened (at every attempt the server offered) and the device is
    /// back on the old image. `update_id`: the first failed attempt (native devices only).
    BootFailedAsInjected { update_id: Option<i64> },
    /// Offered the image, then no longer while it took it (its deployment was stopped: the
    /// download cut, aborted, or a progress report refused): it stays on the image it ran.
    Withdrawn,
    /// Anything else: a bug in the server, the simulator or the setup.
    Unexpected(String),
}

/// One device's end, as the summary and the server check read it. `outcome` is its first
/// outcome; with `--duration`/`--forever` the rest of its life is in `later`, and `runs`,
/// `project` and `settled` say where it was when the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceResult {
    pub mac: String,
    pub protocol: Protocol,
    pub outcome: Outcome,
    /// A failed boot was injected into this device.
    pub failed_boot_injected: bool,
    /// A cut download was injected into this device.
    pub cut_injected: bool,
    /// Boots that failed (as injected) before the first outcome: with `--failed-boot-times`, an
    /// updated device may have failed some first.
    pub boots_failed: usize,
    /// What happened after the first outcome (`--duration` / `--forever`).
    pub later: Later,
    /// The image it runs at the end.
    pub runs: Image,
    /// The project of that image.
    pub project: String,
    /// Its last check was answered "nothing to do" for the image it runs, so the server's records
    /// of it must be complete. A device the end of the run stopped in the middle of an update is
    /// not compared with them.
    pub settled: bool,
}

#[derive(Debug, Deserialize)]
struct CheckinResponse {
    token: Option<String>,
    update: Option<Offer>,
    /// Someone watches this device's logs ([`crate::logs`]).
    #[serde(default)]
    logs: bool,
    /// The device's current config version; null when its project defines no variables.
    #[serde(default)]
    config_version: Option<i64>,
}

/// What `GET /api/v1/device/config` answers.
#[derive(Debug, Deserialize)]
struct ConfigAnswer {
    version: i64,
    values: serde_json::Map<String, serde_json::Value>,
}

/// An update the server offers, as the check-in answer carries it.
#[derive(Debug, Clone, Deserialize)]
pub struct Offer {
    pub id: i64,
    pub version: Option<String>,
    pub url: String,
    pub size: u64,
    pub sha256: String,
    pub md5: String,
}

/// The protocol state of a native device: its token, and what arrived of a download the server's
/// going away cut.
#[derive(Default)]
pub struct Native {
    token: Option<String>,
    partial: Option<Box<Partial>>,
    logs: crate::logs::LogHook,
    /// The config version it applied last, and the values (as the reference client keeps them
    /// in NVS).
    config_applied: Option<i64>,
    config: serde_json::Map<String, serde_json::Value>,
}

/// A download in progress: the bytes so far, as the hashers saw them.
struct Partial {
    sha256: String,
    got: u64,
    sha: Sha256,
    md5: Md5,
    /// The first bytes, for the app descriptor.
    head: Vec<u8>,
}

impl Partial {
    fn new(sha256: &str) -> Self {
        Partial {
            sha256: sha256.to_string(),
            got: 0,
            sha: Sha256::new(),
            md5: Md5::new(),
            head: Vec::with_capacity(DESCRIPTOR_END),
        }
    }

    fn restart(&mut self) {
        *self = Partial::new(&self.sha256);
    }

    fn take(&mut self, data: &[u8]) {
        if self.head.len() < DESCRIPTOR_END {
            let n = data.len().min(DESCRIPTOR_END - self.head.len());
            self.head.extend_from_slice(&data[..n]);
        }
        self.sha.update(data);
        self.md5.update(data);
        self.got += data.len() as u64;
    }
}

/// A finished device goes on polling at its interval, as the real one does forever, until the run
/// says stop (`Shared::stop`). Only what the poll makes the server record matters here.
pub async fn linger(sh: &Shared, spec: &DeviceSpec) {
    let mut stop = sh.stop.subscribe();
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(sh.jittered(sh.cfg.interval)) => {
                if spec.protocol == Protocol::Esp32Fota {
                    crate::fota::quiet_poll(sh, spec).await;
                }
            }
        }
    }
}

/// How long a crash-looping image (`--crash-loop`) runs before it restarts again: its uptime,
/// whole seconds in the check-in, visibly goes back.
pub const CRASH_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl Native {
    /// One check-in for the image the device runs; the offer, if any.
    pub async fn checkin(&mut self, dev: &mut Dev<'_>) -> Result<Option<Offer>, DeviceError> {
        if dev.spec.crash_loop
            && dev.spec.running.version != crate::run::RUNNING_VERSION
            && dev.booted.elapsed() >= CRASH_AFTER
        {
            tracing::debug!(mac = %dev.spec.mac, "crash loop: the new image restarts");
            dev.booted = std::time::Instant::now();
        }
        let cfg = &dev.sh.cfg;
        let body = json!({
            "mac": dev.spec.mac,
            "chip": cfg.chip.to_string(),
            "project": dev.spec.project,
            "version": dev.spec.running.version,
            "sha256": dev.spec.running.sha256,
            // A 1.875 MB OTA slot, or room for the image when the run uses bigger ones.
            "free_space": (0x1E_0000u64).max(cfg.image_size as u64 * 2),
            "rssi": -40 - (dev.spec.mac.len() as i64 % 40),
            "uptime_s": dev.booted.elapsed().as_secs(),
        });
        let http = &dev.sh.http;
        let url = http.url("/api/v1/device/checkin");
        let token = self.token.clone();
        let (r, _slot) = http
            .send("check-in", || {
                let mut b = http.client.post(&url).json(&body);
                if let Some(t) = &token {
                    b = b.bearer_auth(t);
                }
                b.send()
            })
            .await?;
        if !r.status().is_success() {
            return Err(status_error("check-in", r).await);
        }
        let resp: CheckinResponse = r.json().await.map_err(|e| DeviceError::Transport {
            what: "check-in body",
            source: e,
        })?;
        // The config requests below take a slot of their own.
        drop(_slot);
        if let Some(t) = resp.token {
            if self.token.is_some() {
                return Err(DeviceError::Protocol(
                    "the server issued a second token to an enrolled device".into(),
                ));
            }
            if let Some(remote) = &dev.remote {
                remote.token.send_replace(Some(t.clone()));
            }
            self.token = Some(t);
            dev.enrolled();
        }
        let Some(token) = &self.token else {
            return Err(DeviceError::Protocol(
                "the server issued no device token".into(),
            ));
        };
        if resp.logs {
            // One hook per device: the command loop's (a `log` command starts it too) when the
            // device takes commands.
            let hook = dev.remote.as_ref().map_or(&self.logs, |r| &r.logs);
            hook.wanted(crate::logs::Sender::of(dev.sh, &dev.spec.mac, token));
        }
        if let Some(v) = resp.config_version {
            if self.config_applied != Some(v) {
                // Best effort, as the reference client's: a config that cannot be fetched now is
                // fetched at a later check-in (the answer keeps carrying the version).
                match self.apply_config(dev).await {
                    Ok(()) => {}
                    Err(e) if e.is_transient() => {
                        tracing::debug!(mac = %dev.spec.mac, error = %e, "config not fetched now");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(resp.update)
    }

    /// Fetch the device's config (`GET /api/v1/device/config`), keep it, and confirm its version
    /// (`POST /api/v1/device/config`), as the reference client does when the check-in's
    /// `config_version` differs from the one it applied (docs/protocols.md §1, Config).
    async fn apply_config(&mut self, dev: &Dev<'_>) -> Result<(), DeviceError> {
        let http = &dev.sh.http;
        let url = http.url("/api/v1/device/config");
        let token = self.token.clone().unwrap_or_default();
        let (r, _slot) = http
            .send("config", || {
                http.client.get(&url).bearer_auth(&token).send()
            })
            .await?;
        if !r.status().is_success() {
            return Err(status_error("config", r).await);
        }
        let got: ConfigAnswer = r.json().await.map_err(|e| DeviceError::Transport {
            what: "config body",
            source: e,
        })?;
        drop(_slot);
        let body = json!({"version": got.version});
        let (r, _slot) = http
            .send("config", || {
                http.client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
            })
            .await?;
        if !r.status().is_success() {
            return Err(status_error("config applied", r).await);
        }
        tracing::debug!(mac = %dev.spec.mac, version = got.version, keys = got.values.len(), "config applied");
        self.config = got.values;
        self.config_applied = Some(got.version);
        Ok(())
    }

    /// The config it applied last: (version, values).
    pub fn config(&self) -> (Option<i64>, &serde_json::Map<String, serde_json::Value>) {
        (self.config_applied, &self.config)
    }

    /// Report progress. `in_slot`: the device holds a connection slot already (mid-download).
    async fn progress(
        &self,
        dev: &Dev<'_>,
        o: &Offer,
        state: &str,
        pct: u64,
        error: Option<&str>,
        in_slot: bool,
    ) -> Result<(), DeviceError> {
        let http = &dev.sh.http;
        let url = http.url("/api/v1/device/progress");
        let token = self.token.clone().unwrap_or_default();
        let body = json!({"update_id": o.id, "state": state, "progress": pct, "error": error});
        let make = || {
            http.client
                .post(&url)
                .bearer_auth(&token)
                .json(&body)
                .send()
        };
        let r = if in_slot {
            http.send_in_slot("progress", make).await?
        } else {
            http.send("progress", make).await?.0
        };
        if !r.status().is_success() {
            return Err(status_error("progress", r).await);
        }
        Ok(())
    }

    /// A progress report, best effort as the reference client's: `false` when the server could
    /// not be reached (the report is dropped); a refusal is an error.
    async fn report(
        &self,
        dev: &Dev<'_>,
        o: &Offer,
        state: &str,
        pct: u64,
        error: Option<&str>,
        in_slot: bool,
    ) -> Result<bool, DeviceError> {
        match self.progress(dev, o, state, pct, error, in_slot).await {
            Ok(()) => Ok(true),
            // The server closed the attempt (409 `update_finished`: its deployment was
            // stopped): stop taking it. Any other refusal stays an error.
            Err(DeviceError::Status {
                status: 409,
                ref body,
                ..
            }) if body.contains("\"update_finished\"") => {
                Err(DeviceError::Withdrawn { update_id: o.id })
            }
            Err(e) if e.is_transient() => {
                tracing::debug!(mac = %dev.spec.mac, update = o.id, state, error = %e, "progress report dropped");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Say how the boot of a flashed image went (`POST /api/v1/device/report`), as an application
    /// on the reference client does: `success` "updated to <version>", or `error` "boot of
    /// <version> failed, back on <old version>" with a line of detail. Best effort like progress
    /// reports: `false` when the server could not be reached (the report is dropped); a refusal
    /// is an error.
    pub async fn boot_report(
        &self,
        dev: &Dev<'_>,
        booted: bool,
        new: &Image,
        old: &Image,
    ) -> Result<bool, DeviceError> {
        let body = if booted {
            json!({"mac": dev.spec.mac, "type": "success", "subject": format!("updated to {}", new.version)})
        } else {
            json!({
                "mac": dev.spec.mac,
                "type": "error",
                "subject": format!("boot of {} failed, back on {}", new.version, old.version),
                "body": format!(
                    "The image {} (sha256 {}) did not boot; the bootloader rolled back to {} (sha256 {}).",
                    new.version, new.sha256, old.version, old.sha256
                ),
            })
        };
        let http = &dev.sh.http;
        let url = http.url("/api/v1/device/report");
        let token = self.token.clone().unwrap_or_default();
        let sent = http
            .send("report", || {
                http.client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
            })
            .await;
        let r = match sent {
            Ok((r, _slot)) if r.status().is_success() => Ok(()),
            Ok((r, _slot)) => Err(status_error("report", r).await),
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => {
                let n = if booted {
                    &dev.sh.stats.reports_success
                } else {
                    &dev.sh.stats.reports_error
                };
                n.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(e) if e.is_transient() => {
                tracing::debug!(mac = %dev.spec.mac, error = %e, "boot report dropped");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Download, verify and flash an offered image, reporting progress; the reboot is the
    /// caller's. A download the server's going away cut is kept for the next offer of the image.
    pub async fn install(&mut self, dev: &mut Dev<'_>, o: &Offer) -> Result<Flashed, DeviceError> {
        dev.phase = "downloading";
        let so_far = self
            .partial
            .as_ref()
            .filter(|p| p.sha256 == o.sha256)
            .map_or(0, |p| p.got * 100 / o.size.max(1));
        self.report(dev, o, "downloading", so_far, None, false)
            .await?;
        dev.sh.stats.downloading.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = &dev.remote {
            r.abort.store(false, Ordering::Relaxed);
            r.downloading.store(true, Ordering::Relaxed);
        }
        let got = self.download(dev, o).await;
        if let Some(r) = &dev.remote {
            r.downloading.store(false, Ordering::Relaxed);
        }
        dev.sh.stats.downloading.fetch_sub(1, Ordering::Relaxed);
        if let Err(DeviceError::Aborted { .. }) = &got {
            self.partial = None;
            self.report(
                dev,
                o,
                "failed",
                0,
                Some("aborted by an update_abort command"),
                false,
            )
            .await?;
        }
        let (sha, md5, head) = got?;
        dev.phase = "verifying";
        self.report(dev, o, "verifying", 100, None, false).await?;
        if sha != o.sha256 || md5 != o.md5 {
            let why = format!(
                "image hashes differ from the offer: sha256 {sha} (want {}), md5 {md5} (want {})",
                o.sha256, o.md5
            );
            self.report(dev, o, "failed", 100, Some(&why), false)
                .await?;
            return Err(DeviceError::Download {
                update_id: o.id,
                detail: why,
            });
        }
        dev.phase = "flashing";
        self.report(dev, o, "flashing", 100, None, false).await?;
        // `done` means "about to reboot": the server now knows to fail the attempt if the device
        // comes back on the old image.
        let announced = self.report(dev, o, "done", 100, None, false).await?;
        let desc = descriptor(&head);
        Ok(Flashed {
            image: Image {
                version: o
                    .version
                    .clone()
                    .or_else(|| desc.as_ref().map(|d| d.version.clone()))
                    .unwrap_or_default(),
                sha256: o.sha256.clone(),
                md5: o.md5.clone(),
                size: o.size,
            },
            project: desc.map(|d| d.project),
            update_id: Some(o.id),
            announced,
        })
    }

    /// Stream the image into the hashers, from where an earlier try of the same image stopped;
    /// returns (sha256, md5) in lowercase hex and the image's first bytes.
    async fn download(
        &mut self,
        dev: &mut Dev<'_>,
        o: &Offer,
    ) -> Result<(String, String, Vec<u8>), DeviceError> {
        let mut p = match self.partial.take() {
            Some(p) if p.sha256 == o.sha256 && p.got <= o.size => p,
            _ => Box::new(Partial::new(&o.sha256)),
        };
        match self.fetch(dev, o, &mut p).await {
            Ok(()) => Ok((
                hex::encode(p.sha.finalize()),
                hex::encode(p.md5.finalize()),
                p.head,
            )),
            Err(e) => {
                if e.is_transient() && p.got > 0 {
                    self.partial = Some(p);
                }
                Err(e)
            }
        }
    }

    async fn fetch(
        &self,
        dev: &mut Dev<'_>,
        o: &Offer,
        p: &mut Partial,
    ) -> Result<(), DeviceError> {
        let sh = dev.sh;
        let http = &sh.http;
        let url = http.url(&o.url);
        let fail = |detail: String| DeviceError::Download {
            update_id: o.id,
            detail,
        };
        // The injected cut, halfway through the image, unless this try starts past it.
        let mut cut_at = dev
            .cut_pending
            .then_some(o.size / 2)
            .filter(|at| *at > p.got);
        let step = u64::from(sh.cfg.progress_step);
        let mut next_report = (p.got * 100 / o.size.max(1) / step + 1) * step;
        let mut broken_streams = 0;
        // The token makes the server count this download's bytes against the device's attempt.
        let token = self.token.clone();
        while p.got < o.size || o.size == 0 {
            let from = p.got;
            let (r, _slot) = http
                .send("download", || {
                    let mut b = http.client.get(&url);
                    if let Some(t) = &token {
                        b = b.bearer_auth(t);
                    }
                    if from > 0 {
                        b = b
                            .header(RANGE, format!("bytes={from}-"))
                            .header(IF_RANGE, format!("\"{}\"", o.sha256));
                    }
                    b.send()
                })
                .await?;
            match r.status().as_u16() {
                200 if from > 0 => {
                    // The server ignored the range: start over, as a device would.
                    p.restart();
                }
                200 => {}
                206 if from > 0 => {
                    let range = r.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok());
                    let want = format!("bytes {from}-");
                    if !range.is_some_and(|v| v.starts_with(&want)) {
                        return Err(fail(format!(
                            "resume from {from} got Content-Range {range:?}"
                        )));
                    }
                }
                _ => return Err(status_error("download", r).await),
            }
            if let Some(x) = r.headers().get("x-SHA256").and_then(|v| v.to_str().ok()) {
                if x != o.sha256 {
                    return Err(fail(format!(
                        "x-SHA256 {x} is not the offered {}",
                        o.sha256
                    )));
                }
            }
            let mut body = r.bytes_stream();
            let mut cut = false;
            let started = std::time::Instant::now();
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(c) => {
                        sh.throttle(started, p.got + c.len() as u64 - from).await;
                        c
                    }
                    Err(e) => {
                        broken_streams += 1;
                        if broken_streams > 5 {
                            return Err(fail(format!(
                                "the stream broke {broken_streams} times: {e}"
                            )));
                        }
                        http.retried.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                };
                let mut data = &chunk[..];
                if let Some(at) = cut_at {
                    if p.got + data.len() as u64 >= at {
                        data = &data[..(at - p.got) as usize];
                        cut = true;
                    }
                }
                if p.got + data.len() as u64 > o.size {
                    return Err(fail(format!(
                        "the server sent more than the offered {} bytes",
                        o.size
                    )));
                }
                if dev
                    .remote
                    .as_ref()
                    .is_some_and(|r| r.abort.swap(false, Ordering::Relaxed))
                {
                    return Err(DeviceError::Aborted { update_id: o.id });
                }
                p.take(data);
                sh.stats
                    .bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                let pct = p.got * 100 / o.size.max(1);
                if pct >= next_report && pct < 100 {
                    next_report = (pct / step + 1) * step;
                    self.report(dev, o, "downloading", pct, None, true).await?;
                }
                if cut {
                    break;
                }
            }
            if cut {
                // Drop the response mid-body: the connection closes, as when Wi-Fi drops. Once
                // per device: a later attempt (after a failed boot) is not cut again.
                cut_at = None;
                dev.cut_pending = false;
                dev.after_cut = true;
                sh.stats.cut_downloads.fetch_add(1, Ordering::Relaxed);
            }
            if o.size == 0 {
                break;
            }
        }
        Ok(())
    }
}

impl Shared {
    /// `d` ± the configured jitter.
    pub fn jittered(&self, d: Duration) -> Duration {
        let j = self.cfg.jitter;
        let f = 1.0 + j * (rand::thread_rng().gen::<f64>() * 2.0 - 1.0);
        d.mul_f64(f.max(0.0))
    }

    /// Wait `d`, unless the run ends first (`--duration` / `--forever`): then
    /// [`DeviceError::Stopped`]. A device stops only at such waits (between check-ins, in a
    /// back-off), never in the middle of a request, so what it last told the server holds.
    pub async fn pause(&self, d: Duration) -> Result<(), DeviceError> {
        let mut ending = self.ending.subscribe();
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            _ = ending.wait_for(|e| *e) => Err(DeviceError::Stopped),
        }
    }
}
