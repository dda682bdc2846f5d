//! One virtual device speaking the native protocol v1 (docs/protocols.md §1), as the reference
//! client does: check in every interval (with jitter), take an offered update, stream the image
//! (hashing as it goes, never holding it whole), verify SHA-256 and MD5, report progress, reboot
//! after a delay and check in on the new image, which is what makes the server call it `done`.
//!
//! Injected failures are decided per device before it starts ([`DeviceSpec`]): a cut download
//! stops reading halfway, drops the connection and resumes with `Range` + `If-Range`; a failed
//! boot reports `done`, "reboots" and comes back on the old image, which the server must record
//! as a failed attempt. Such a device takes the image again whenever it is offered (and fails
//! again), until the server's attempt limit stops the offers: then nothing is left open.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use md5::Md5;
use rand::Rng;
use reqwest::header::{CONTENT_RANGE, IF_RANGE, RANGE};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::arduino::{self, Flavor};
use crate::config::Protocol;
use crate::error::DeviceError;
use crate::http::status_error;
pub use crate::images::Image;
use crate::run::Shared;

/// A device whose boot of the new image fails keeps taking the image, as its client would, until
/// the server stops offering it (after the server's attempt limit, 3 today). Past this many
/// failed boots the server is taken never to stop, which is an error.
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
    /// The project its firmware belongs to (esp32FOTA's compiled-in firmware type).
    pub project: String,
    pub running: Image,
    pub cut_download: bool,
    pub failed_boot: bool,
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
    /// Anything else: a bug in the server, the simulator or the setup.
    Unexpected(String),
}

/// One device's end, as the summary and the server check read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceResult {
    pub mac: String,
    pub protocol: Protocol,
    pub outcome: Outcome,
    /// A failed boot was injected into this device.
    pub failed_boot_injected: bool,
    /// A cut download was injected into this device.
    pub cut_injected: bool,
}

#[derive(Debug, Deserialize)]
struct CheckinResponse {
    token: Option<String>,
    update: Option<Offer>,
}

#[derive(Debug, Clone, Deserialize)]
struct Offer {
    id: i64,
    version: Option<String>,
    url: String,
    size: u64,
    sha256: String,
    md5: String,
}

struct Device<'a> {
    sh: &'a Shared,
    spec: DeviceSpec,
    token: Option<String>,
    booted: Instant,
    /// What the device is doing, for the timeout message.
    phase: &'static str,
    resumed: bool,
}

/// Run one device to its end (or the run's timeout). With the outcome comes, for a device whose
/// success the server records only at a later poll (esp32FOTA), the device to keep polling
/// ([`linger`]) until the run has read the server's records.
pub async fn run(sh: &Shared, spec: DeviceSpec) -> (Outcome, Option<DeviceSpec>) {
    match spec.protocol {
        Protocol::Native => {}
        Protocol::Arduino => return (arduino::run(sh, spec, Flavor::Esp32).await, None),
        Protocol::Esp8266 => return (arduino::run(sh, spec, Flavor::Esp8266).await, None),
        Protocol::Esp32Fota => return crate::fota::run(sh, spec).await,
        Protocol::Legacy => return (crate::legacy::run(sh, spec).await, None),
    }
    let mut dev = Device {
        sh,
        spec,
        token: None,
        booted: Instant::now(),
        phase: "starting",
        resumed: false,
    };
    let result = tokio::time::timeout(sh.cfg.timeout, dev.life()).await;
    let outcome = match result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome::Unexpected(e.to_string()),
        Err(_) => Outcome::Unexpected(DeviceError::Timeout(dev.phase).to_string()),
    };
    (outcome, None)
}

/// A finished device goes on polling at its interval, as the real one does forever, until the run
/// says stop (`Shared::stop`). Only what the poll makes the server record matters here.
pub async fn linger(sh: &Shared, spec: DeviceSpec) {
    let mut stop = sh.stop.subscribe();
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(sh.jittered(sh.cfg.interval)) => {
                if spec.protocol == Protocol::Esp32Fota {
                    crate::fota::quiet_poll(sh, &spec).await;
                }
            }
        }
    }
}

impl Device<'_> {
    async fn life(&mut self) -> Result<Outcome, DeviceError> {
        // Devices power up spread over one interval, like a fleet does.
        let first = self
            .sh
            .cfg
            .interval
            .mul_f64(rand::thread_rng().gen::<f64>());
        tokio::time::sleep(first).await;
        let mut booted_update: Option<i64> = None;
        let mut failed_updates: Vec<i64> = Vec::new();
        loop {
            self.phase = "checking in";
            let offer = self.checkin().await?;
            if let Some(first) = failed_updates.first().copied() {
                // The check-in on the old image closed the attempt as failed; the server may
                // offer a new attempt (up to its limit), but never a failed one again.
                match offer {
                    Some(o) if failed_updates.contains(&o.id) => {
                        return Err(DeviceError::Protocol(format!(
                            "the server still offers update {} after the device came back on the old image",
                            o.id
                        )))
                    }
                    Some(_) if failed_updates.len() >= MAX_FAILED_BOOTS => {
                        return Err(give_up(failed_updates.len()))
                    }
                    Some(o) => {
                        self.install(&o).await?;
                        failed_updates.push(o.id);
                        self.booted = Instant::now();
                        continue;
                    }
                    None => {
                        return Ok(Outcome::BootFailedAsInjected {
                            update_id: Some(first),
                        })
                    }
                }
            }
            match (offer, booted_update) {
                (None, Some(id)) => {
                    return Ok(Outcome::Updated {
                        update_id: Some(id),
                        resumed: self.resumed,
                    })
                }
                (Some(o), Some(id)) => {
                    return Err(DeviceError::Protocol(format!(
                        "the server offered update {} although the device runs update {id}'s image",
                        o.id
                    )))
                }
                (Some(o), None) => {
                    self.install(&o).await?;
                    if self.spec.failed_boot {
                        failed_updates.push(o.id);
                        self.sh.stats.boot_failures.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.spec.running = Image {
                            version: o.version.clone().unwrap_or_default(),
                            sha256: o.sha256.clone(),
                            md5: o.md5.clone(),
                            size: o.size,
                        };
                        booted_update = Some(o.id);
                    }
                    self.booted = Instant::now();
                    // A rebooted device checks in at once.
                }
                (None, None) => {
                    self.phase = "waiting for an update";
                    tokio::time::sleep(self.sh.jittered(self.sh.cfg.interval)).await;
                }
            }
        }
    }

    async fn checkin(&mut self) -> Result<Option<Offer>, DeviceError> {
        let cfg = &self.sh.cfg;
        let body = json!({
            "mac": self.spec.mac,
            "chip": cfg.chip.to_string(),
            "project": self.spec.project,
            "version": self.spec.running.version,
            "sha256": self.spec.running.sha256,
            // A 1.875 MB OTA slot, or room for the image when the run uses bigger ones.
            "free_space": (0x1E_0000u64).max(cfg.image_size as u64 * 2),
            "rssi": -40 - (self.spec.mac.len() as i64 % 40),
            "uptime_s": self.booted.elapsed().as_secs(),
        });
        let http = &self.sh.http;
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
        if let Some(t) = resp.token {
            if self.token.is_some() {
                return Err(DeviceError::Protocol(
                    "the server issued a second token to an enrolled device".into(),
                ));
            }
            self.token = Some(t);
            self.sh.stats.enrolled.fetch_add(1, Ordering::Relaxed);
        }
        if self.token.is_none() {
            return Err(DeviceError::Protocol(
                "the server issued no device token".into(),
            ));
        }
        Ok(resp.update)
    }

    /// Report progress. `in_slot`: the device holds a connection slot already (mid-download).
    async fn progress(
        &self,
        o: &Offer,
        state: &str,
        pct: u64,
        error: Option<&str>,
        in_slot: bool,
    ) -> Result<(), DeviceError> {
        let http = &self.sh.http;
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

    async fn install(&mut self, o: &Offer) -> Result<(), DeviceError> {
        self.phase = "downloading";
        self.progress(o, "downloading", 0, None, false).await?;
        self.sh.stats.downloading.fetch_add(1, Ordering::Relaxed);
        let digest = self.download(o).await;
        self.sh.stats.downloading.fetch_sub(1, Ordering::Relaxed);
        let (sha, md5) = digest?;
        self.phase = "verifying";
        self.progress(o, "verifying", 100, None, false).await?;
        if sha != o.sha256 || md5 != o.md5 {
            let why = format!(
                "image hashes differ from the offer: sha256 {sha} (want {}), md5 {md5} (want {})",
                o.sha256, o.md5
            );
            self.progress(o, "failed", 100, Some(&why), false).await?;
            return Err(DeviceError::Download {
                update_id: o.id,
                detail: why,
            });
        }
        self.phase = "flashing";
        self.progress(o, "flashing", 100, None, false).await?;
        self.progress(o, "done", 100, None, false).await?;
        self.phase = "rebooting";
        tokio::time::sleep(self.sh.jittered(self.sh.cfg.reboot)).await;
        Ok(())
    }

    /// Stream the image into the hashers; returns (sha256, md5) in lowercase hex.
    async fn download(&mut self, o: &Offer) -> Result<(String, String), DeviceError> {
        let http = &self.sh.http;
        let url = http.url(&o.url);
        let fail = |detail: String| DeviceError::Download {
            update_id: o.id,
            detail,
        };
        let mut sha = Sha256::new();
        let mut md5 = Md5::new();
        let mut got: u64 = 0;
        let mut cut_at = self.spec.cut_download.then_some(o.size / 2);
        let step = u64::from(self.sh.cfg.progress_step);
        let mut next_report = step;
        let mut broken_streams = 0;
        while got < o.size || o.size == 0 {
            let from = got;
            let (r, _slot) = http
                .send("download", || {
                    let mut b = http.client.get(&url);
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
                    (sha, md5, got) = (Sha256::new(), Md5::new(), 0);
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
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        broken_streams += 1;
                        if broken_streams > 5 {
                            return Err(fail(format!(
                                "the stream broke {broken_streams} times: {e}"
                            )));
                        }
                        self.sh.http.retried.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                };
                let mut data = &chunk[..];
                if let Some(at) = cut_at {
                    if got + data.len() as u64 >= at {
                        data = &data[..(at - got) as usize];
                        cut = true;
                    }
                }
                if got + data.len() as u64 > o.size {
                    return Err(fail(format!(
                        "the server sent more than the offered {} bytes",
                        o.size
                    )));
                }
                sha.update(data);
                md5.update(data);
                got += data.len() as u64;
                self.sh
                    .stats
                    .bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                let pct = got * 100 / o.size.max(1);
                if pct >= next_report && pct < 100 {
                    next_report = (pct / step + 1) * step;
                    self.progress(o, "downloading", pct, None, true).await?;
                }
                if cut {
                    break;
                }
            }
            if cut {
                // Drop the response mid-body: the connection closes, as when Wi-Fi drops. Once
                // per device: a later attempt (after a failed boot) is not cut again.
                cut_at = None;
                self.spec.cut_download = false;
                self.resumed = true;
                self.sh.stats.cut_downloads.fetch_add(1, Ordering::Relaxed);
            }
            if o.size == 0 {
                break;
            }
        }
        Ok((hex::encode(sha.finalize()), hex::encode(md5.finalize())))
    }
}

impl Shared {
    /// `d` ± the configured jitter.
    pub fn jittered(&self, d: Duration) -> Duration {
        let j = self.cfg.jitter;
        let f = 1.0 + j * (rand::thread_rng().gen::<f64>() * 2.0 - 1.0);
        d.mul_f64(f.max(0.0))
    }
}
