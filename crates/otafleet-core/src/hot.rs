//! Repeated check-ins answered from memory, their heartbeats written in batches.
//!
//! Why: almost every check-in of a fleet says what it said last time and gets the answer it got
//! last time ("nothing to do", or during a release the same offer until it starts downloading).
//! Answering that through SQLite costs about nine statements under the one writer lock (each a
//! thread hop through sqlx's worker), which capped check-ins at ~2,400/s and stock clients at
//! ~1,100/s. Here the answer comes from a per-device memory of the last answer the database path
//! gave — native check-ins ([`crate::checkin`]) and stock clients' checks ([`crate::field`]:
//! Arduino HTTPUpdate, ESP8266, the seed-1 check, esp32FOTA's manifest) alike — and the only thing
//! such a check-in changes — `last_seen`, and for native devices `rssi` and `uptime_s` — is queued
//! and written for all devices in one statement every [`FLUSH_EVERY`].
//!
//! Invariants (ARCHITECTURE.md repeats them):
//! - An [`Entry`] is used only while the fleet's *generation* is the one it was recorded at, and
//!   only when the check-in reports exactly what the entry holds (token, chip, project, version,
//!   image hash, free space, name, IP, and whether it came over TLS). Every database writer bumps the generation when it takes
//!   the write lock ([`crate::Fleet::write_lock`]); the only writers that do not are those that
//!   change one device's own rows — its check-in (native or stock), its progress, the bytes a
//!   download sends it — and they drop that device's entry first
//!   ([`crate::Fleet::device_write_lock`]), since no offer rule reads another device's rows. So an
//!   entry can never answer from a state the database no longer has, and one device's check-in
//!   never drops another device's entry.
//! - Entries are recorded after the database path committed, under the lock, and only if the
//!   generation did not move since the path began (it reads images before taking the lock). An
//!   answer is recorded when it is a fixed point: asked again with the same report, the database
//!   path would answer the same and write nothing but the heartbeat. "Nothing to do" and a
//!   standing offer of an open attempt are; an answer given while an attempt is under way and
//!   not offered (the device is downloading or installing it) is not, so each such check-in
//!   takes the database path.
//! - Reads of devices overlay queued heartbeats ([`Hot::overlay`]), so what the API shows is never
//!   older than what a device was told. A killed process loses at most [`FLUSH_EVERY`] of
//!   heartbeats (last-seen times and signal levels, repeated by the next check-in); clean shutdown
//!   flushes them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::Conn;
use foldhash::HashMap;

use crate::devices::Device;
use crate::error::Result;

/// How often queued heartbeats are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// A device that checks in more often than this has its quiet check-ins published as events at
/// most this often (a watcher sees it alive; a chatty device cannot flood the event stream).
pub const EVENT_EVERY: Duration = Duration::from_secs(1);

/// What the database path last answered a device, kept small (a digest of the report, not the
/// report), because every device of a fleet at rest has one.
#[derive(Debug)]
pub(crate) struct Entry {
    pub generation: u64,
    /// SHA-256 of the token (for stock clients: the protocol and how it authenticated) and every
    /// field of the report except the heartbeat (`rssi`, `uptime_s`, the time); the path that
    /// records the entry and the quiet path compute it the same way.
    pub digest: [u8; 32],
    /// When a quiet check-in last published an event ([`Hot::since_start_ms`]).
    pub last_event_ms: AtomicU64,
    /// The answer beyond a native "nothing to do" (`None`, the common case, costs nothing).
    pub answer: Option<Arc<Remembered>>,
    /// The native answer's `config_version` ([`crate::config`]): a change of the device's config
    /// forgets its entry (its device lock), one of its project's variables every entry (the
    /// writer's lock), so this is the current version while the entry is valid.
    pub config_version: Option<i64>,
    /// When the device booted, on this process's monotonic clock (from the uptime it reported),
    /// for native check-ins: a later boot is a restart, which the database path records
    /// (`devices.last_reset_at`), so such a check-in is not answered from memory. Monotonic, so a
    /// step of the wall clock (NTP) is not taken for a restart of every device.
    pub booted: Option<Instant>,
    /// The highest uptime it reported since (`i64::MIN`: none; a native check-in answered from
    /// memory raises it): an uptime below it is a restart too, however long ago the last one
    /// was written.
    pub uptime_s: AtomicI64,
}

/// The moment `uptime_s` seconds before now on the monotonic clock (`None` before it began).
pub(crate) fn booted_at(uptime_s: i64) -> Option<Instant> {
    Instant::now().checked_sub(Duration::from_secs(uptime_s.max(0) as u64))
}

/// An uptime below the highest one the entry saw, or a boot later than the entry's: the device
/// restarted.
fn restarted(e: &Entry, uptime: i64) -> bool {
    uptime < e.uptime_s.load(Ordering::Relaxed)
        || match (e.booted, booted_at(uptime)) {
            (Some(before), Some(now)) => {
                now > before + Duration::from_secs(crate::devices::RESET_SLACK_S as u64)
            }
            _ => false,
        }
}

/// A remembered answer other than a native "nothing to do".
#[derive(Debug)]
pub(crate) enum Remembered {
    /// A native check-in's offer: the same open attempt is offered again until the device reports
    /// progress (which forgets the entry) or the attempt is closed (which bumps the generation).
    Offer(crate::checkin::Offer),
    /// A stock client's answer: nothing (and why), the target version, an offer, or an esp32FOTA
    /// manifest ([`crate::field`]).
    Field(crate::field::FieldAnswer),
}

impl Entry {
    /// Whether a quiet check-in now should publish an event (at most once per [`EVENT_EVERY`]).
    pub fn event_due(&self, now_ms: u64) -> bool {
        let last = self.last_event_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= EVENT_EVERY.as_millis() as u64
            && self
                .last_event_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// A quiet check-in's contribution, waiting to be written.
#[derive(Debug, Clone, serde::Serialize)]
struct Beat {
    #[serde(rename = "m")]
    mac: String,
    #[serde(rename = "t")]
    last_seen: String,
    #[serde(rename = "r")]
    rssi: Option<i64>,
    #[serde(rename = "u")]
    uptime_s: Option<i64>,
    /// A stock client's beat: it reports no signal level or uptime, so the stored ones stay.
    #[serde(rename = "k", skip_serializing_if = "std::ops::Not::not")]
    keep_signal: bool,
}

/// What a quiet check-in brings: when it was seen, and its signal level and uptime (`None` for
/// a stock client, which reports neither: the stored values are kept).
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    pub last_seen: String,
    pub signal: Option<(Option<i64>, Option<i64>)>,
}

pub(crate) struct Hot {
    started: Instant,
    generation: AtomicU64,
    /// One lock for both maps: a quiet check-in reads its entry and queues its beat at once.
    maps: Mutex<Maps>,
    /// With several instances ([`crate::cluster`]): what this instance invalidated, for the
    /// others. `None` with SQLite (one instance).
    outbox: Option<Arc<crate::cluster::Outbox>>,
    /// Whether entries may be recorded and answered from. Always with one instance; in a
    /// cluster only while this instance is known to hear the others' invalidations
    /// ([`crate::cluster`]: its own notices come back in time).
    enabled: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Maps {
    entries: HashMap<String, Arc<Entry>>,
    pending: HashMap<String, Beat>,
}

impl Maps {
    fn queue(&mut self, mac: &str, beat: Heartbeat) {
        let keep_signal = beat.signal.is_none();
        let (rssi, uptime_s) = beat.signal.unwrap_or_default();
        match self.pending.get_mut(mac) {
            Some(b) => {
                b.last_seen = beat.last_seen;
                b.rssi = rssi;
                b.uptime_s = uptime_s;
                b.keep_signal = keep_signal;
            }
            None => {
                let mac = mac.to_string();
                self.pending.insert(
                    mac.clone(),
                    Beat {
                        mac,
                        last_seen: beat.last_seen,
                        rssi,
                        uptime_s,
                        keep_signal,
                    },
                );
            }
        }
    }
}

impl Default for Hot {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            generation: AtomicU64::new(0),
            maps: Mutex::default(),
            outbox: None,
            enabled: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

impl Hot {
    /// Milliseconds since this fleet opened (a monotonic clock for event pacing).
    pub fn since_start_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A memory whose invalidations are shared with the other instances through `outbox`, off
    /// until [`Hot::set_enabled`] says this instance hears theirs.
    pub fn shared(outbox: Arc<crate::cluster::Outbox>) -> Self {
        Self {
            outbox: Some(outbox),
            enabled: std::sync::atomic::AtomicBool::new(false),
            ..Self::default()
        }
    }

    /// Something in the database changed that may change any device's answer.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(o) = &self.outbox {
            o.stage_all();
        }
    }

    /// Another instance changed something that may change any device's answer.
    pub fn bump_remote(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Another instance wrote this device's rows: its entry is stale (its queued beat, taken
    /// here, is not).
    pub fn forget_remote(&self, mac: &str) {
        self.maps().entries.remove(mac);
    }

    /// Turn answering from memory on or off; either way everything remembered goes (turned off:
    /// invalidations may have been missed; turned on: entries were not kept meanwhile).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.maps().entries.clear();
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The entry for `mac`, if it is still valid.
    #[cfg(test)]
    pub fn get(&self, mac: &str) -> Option<Arc<Entry>> {
        let generation = self.generation();
        let maps = self.maps();
        let entries = &maps.entries;
        entries
            .get(mac)
            .filter(|e| e.generation == generation)
            .cloned()
    }

    pub fn record(&self, mac: &str, entry: Entry) {
        if !self.enabled() {
            return;
        }
        let mut maps = self.maps();
        let entries = &mut maps.entries;
        // Entries of a past generation are dead weight; drop them when the map grows.
        if entries.len() >= 1024 && entries.len().is_power_of_two() {
            let generation = self.generation();
            entries.retain(|_, e| e.generation == generation);
        }
        entries.insert(mac.to_string(), Arc::new(entry));
    }

    /// The database path is about to write this device: its entry and queued beat are stale.
    pub fn forget(&self, mac: &str) {
        {
            let mut maps = self.maps();
            maps.entries.remove(mac);
            maps.pending.remove(mac);
        }
        if let Some(o) = &self.outbox {
            o.stage_forget(mac);
        }
    }

    #[cfg(test)]
    pub fn queue(&self, mac: &str, last_seen: String, rssi: Option<i64>, uptime_s: Option<i64>) {
        self.maps().queue(
            mac,
            Heartbeat {
                last_seen,
                signal: Some((rssi, uptime_s)),
            },
        );
    }

    /// A quiet check-in: if `mac` has a valid entry with this `digest`, queue its beat and return
    /// whether an event is due and the remembered answer; `None` when the database path must
    /// answer.
    pub fn answer(
        &self,
        mac: &str,
        digest: &[u8; 32],
        beat: Heartbeat,
    ) -> Option<(bool, Option<Arc<Remembered>>, Option<i64>)> {
        if !self.enabled() {
            return None;
        }
        let generation = self.generation();
        let mut maps = self.maps();
        let e = maps
            .entries
            .get(mac)
            .filter(|e| e.generation == generation && &e.digest == digest)?;
        if let Some((_, Some(uptime))) = beat.signal {
            if restarted(e, uptime) {
                return None;
            }
            e.uptime_s.fetch_max(uptime, Ordering::Relaxed);
        }
        let due = e.event_due(self.since_start_ms());
        let answer = e.answer.clone();
        let config_version = e.config_version;
        maps.queue(mac, beat);
        Some((due, answer, config_version))
    }

    /// Did the device restart since what is remembered of it: an `uptime` below its entry's or
    /// its last queued beat's, or a boot later than the entry's? Asked by the database path
    /// before it takes the device's lock (which forgets both): the stored uptime may be older
    /// than the last beat, and only the beat shows a restart within a second of the last one.
    pub fn restarted(&self, mac: &str, uptime: i64) -> bool {
        let maps = self.maps();
        let pending = maps.pending.get(mac);
        pending.and_then(|b| b.uptime_s).is_some_and(|b| uptime < b)
            || maps.entries.get(mac).is_some_and(|e| restarted(e, uptime))
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().expect("hot maps lock")
    }

    pub fn has_pending(&self) -> bool {
        !self.maps().pending.is_empty()
    }

    /// Show a device as of its latest heartbeat, written or not.
    pub fn overlay(&self, device: &mut Device, offline_after_s: i64) {
        let maps = self.maps();
        let pending = &maps.pending;
        let Some(beat) = pending.get(&device.mac) else {
            return;
        };
        if device
            .last_seen
            .as_deref()
            .is_some_and(|seen| seen > beat.last_seen.as_str())
        {
            return;
        }
        device.last_seen = Some(beat.last_seen.clone());
        if !beat.keep_signal {
            device.rssi = beat.rssi;
            device.uptime_s = beat.uptime_s;
        }
        device.online = crate::discovered::online(
            offline_after_s,
            device.last_seen.as_deref(),
            device.mdns_seen.as_deref(),
            device.mdns_gone.as_deref(),
        );
        device.online = crate::devices::mqtt_online(device.online, device);
    }

    /// Write every queued beat in one statement. The caller holds the write lock.
    pub async fn flush(&self, conn: &mut Conn) -> Result<usize> {
        let beats: Vec<Beat> = {
            let mut maps = self.maps();
            let pending = &mut maps.pending;
            if pending.is_empty() {
                return Ok(0);
            }
            pending.drain().map(|(_, b)| b).collect()
        };
        let json = serde_json::to_string(&beats).expect("beats serialize");
        // A row the database path wrote later than the beat (same device, newer check-in) keeps
        // its values (`devices::write_heartbeats`).
        let result = crate::devices::write_heartbeats(conn, json).await;
        if let Err(e) = result {
            // Keep them for the next flush (unless a newer beat arrived meanwhile).
            let mut maps = self.maps();
            let pending = &mut maps.pending;
            for b in beats {
                pending.entry(b.mac.clone()).or_insert(b);
            }
            return Err(e);
        }
        Ok(beats.len())
    }
}

#[cfg(test)]
mod tests;
