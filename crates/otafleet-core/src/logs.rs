//! Live device logs (issue 15): a device streams log lines while someone watches, the admin
//! watches them live. Nothing here touches the database: log lines are kept in memory only
//! (bounded), never in SQLite, and are lost with the process — they are a live view, not a record
//! (reports are the record: [`crate::reports`]).
//!
//! **Watching is a lease.** Whoever watches a device's logs holds a [`LogLease`] (the server's
//! log stream holds one while its connection is open); while at least one is held, or for
//! [`GRACE`] after the last one was dropped (a page reload keeps the stream going), the device
//! is *wanted*: its check-in answer says `logs: true`, and so does the answer to every batch it
//! posts. Once it is no longer wanted, the answer to its next batch says `logs: false` and the
//! device stops sending; a device that sends nothing is not streaming anyway, and its next
//! check-in says `logs: false` too. So a device is told to stop at its next batch or check-in
//! after the grace, well within a minute of the last viewer leaving.
//!
//! **Bounded.** A batch holds at most [`MAX_LINES_PER_BATCH`] lines of at most
//! [`MAX_TEXT_BYTES`] bytes (longer text is refused, not cut: the device's line would be a lie);
//! each device keeps its newest [`KEEP_LINES`] lines, and all devices together at most
//! [`TOTAL_BYTES`] — beyond that the buffers of devices nobody watches are dropped, the least
//! recently active first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{CoreError, Result};

/// Lines kept per device (the newest).
pub const KEEP_LINES: usize = 1_000;
/// The most lines one batch may carry.
pub const MAX_LINES_PER_BATCH: usize = 100;
/// The most bytes (UTF-8) one line's text may have.
pub const MAX_TEXT_BYTES: usize = 1024;
/// The most characters a scope may have.
pub const MAX_SCOPE_CHARS: usize = 64;
/// The most characters a device time may have.
pub const MAX_DEVICE_TIME_CHARS: usize = 64;
/// All devices' buffered lines together, in bytes (text and scope), at most.
pub const TOTAL_BYTES: usize = 32 * 1024 * 1024;
/// How long a device stays wanted after its last viewer left (a reload, a second tab opening).
pub const GRACE: Duration = Duration::from_secs(10);
/// Batches a slow viewer may fall behind before it is told it missed lines.
const VIEWER_BACKLOG: usize = 256;
/// What one line costs beyond its text and scope (for the byte budget).
const LINE_OVERHEAD: usize = 96;

/// How severe a line is. Stored and sent by name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Verbose,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Verbose,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "verbose",
        }
    }

    fn parse(s: &str, index: usize) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| {
                CoreError::invalid(
                    "invalid_level",
                    format!(
                        "line {index}: level must be one of error, warn, info, debug, verbose, not '{}'",
                        crate::validate::printable(s, 20)
                    ),
                )
            })
    }
}

/// One line as a device sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct LogLineIn {
    /// `error`, `warn`, `info`, `debug` or `verbose`.
    pub level: String,
    /// Where on the device it came from (an ESP-IDF log tag, a module name); optional.
    pub scope: Option<String>,
    pub text: String,
    /// The device's own clock, if it has one (kept as sent, not trusted).
    pub device_time: Option<String>,
}

/// A batch of lines (`POST /api/v1/device/logs`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct LogBatch {
    pub lines: Vec<LogLineIn>,
}

/// The answer to a batch: whether the device should keep sending.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogBatchAnswer {
    /// `false`: nobody watches; stop sending (drop what is buffered) until told again.
    pub logs: bool,
    /// Lines kept from this batch (all of them: a batch is taken whole or refused).
    pub accepted: usize,
}

/// One stored line.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    /// Per device, increasing from 1 for the life of the process: a viewer that reconnects asks
    /// for the lines after the last one it has.
    pub seq: u64,
    /// When the server received it (UTC, RFC 3339).
    pub received_at: String,
    pub level: LogLevel,
    pub scope: Option<String>,
    pub text: String,
    pub device_time: Option<String>,
}

/// A device's buffered lines and whether it is being watched (`GET /api/v1/devices/{mac}/logs`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogSnapshot {
    pub mac: String,
    /// Oldest first.
    pub lines: Vec<LogLine>,
    /// Someone watches this device's logs now (or did within the grace period).
    pub watched: bool,
    /// When the newest line arrived (RFC 3339), if any since the server started.
    pub last_line_at: Option<String>,
    /// Lines dropped for this device because its buffer or the global budget was full.
    pub dropped: u64,
}

/// A validated line: level, scope, text, device time.
type CleanLine = (LogLevel, Option<String>, String, Option<String>);

/// Validate a batch: every line, or none.
fn clean(batch: LogBatch) -> Result<Vec<CleanLine>> {
    if batch.lines.is_empty() {
        return Err(CoreError::invalid(
            "no_lines",
            "a batch needs at least one line in 'lines'",
        ));
    }
    if batch.lines.len() > MAX_LINES_PER_BATCH {
        return Err(CoreError::invalid(
            "too_many_lines",
            format!(
                "a batch may carry at most {MAX_LINES_PER_BATCH} lines, not {}; send them in several batches",
                batch.lines.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(batch.lines.len());
    for (i, l) in batch.lines.into_iter().enumerate() {
        let level = LogLevel::parse(&l.level, i)?;
        if l.text.len() > MAX_TEXT_BYTES {
            return Err(CoreError::invalid(
                "text_too_long",
                format!(
                    "line {i}: text is {} bytes; at most {MAX_TEXT_BYTES} are kept per line — split it",
                    l.text.len()
                ),
            ));
        }
        let scope = match l.scope {
            Some(s) if s.chars().count() > MAX_SCOPE_CHARS || s.chars().any(char::is_control) => {
                return Err(CoreError::invalid(
                    "invalid_scope",
                    format!(
                        "line {i}: scope must be one line of at most {MAX_SCOPE_CHARS} characters"
                    ),
                ))
            }
            Some(s) if s.is_empty() => None,
            other => other,
        };
        let device_time = match l.device_time {
            Some(t)
                if t.chars().count() > MAX_DEVICE_TIME_CHARS || t.chars().any(char::is_control) =>
            {
                return Err(CoreError::invalid(
                    "invalid_device_time",
                    format!(
                        "line {i}: device_time must be one line of at most {MAX_DEVICE_TIME_CHARS} characters"
                    ),
                ))
            }
            other => other,
        };
        out.push((level, scope, l.text, device_time));
    }
    Ok(out)
}

/// What a viewer receives: new lines, in order, per batch.
pub type LogBatchOut = Arc<Vec<Arc<LogLine>>>;

struct DeviceLog {
    lines: VecDeque<Arc<LogLine>>,
    bytes: usize,
    next_seq: u64,
    viewers: usize,
    /// When the last viewer left, while within the grace.
    left_at: Option<Instant>,
    last_line: Option<(Instant, String)>,
    dropped: u64,
    tx: broadcast::Sender<LogBatchOut>,
}

impl DeviceLog {
    fn new() -> Self {
        Self {
            lines: VecDeque::new(),
            bytes: 0,
            next_seq: 1,
            viewers: 0,
            left_at: None,
            last_line: None,
            dropped: 0,
            tx: broadcast::channel(VIEWER_BACKLOG).0,
        }
    }

    fn wanted(&self, now: Instant, grace: Duration) -> bool {
        self.viewers > 0 || self.left_at.is_some_and(|t| now.duration_since(t) < grace)
    }

    fn drop_oldest(&mut self) -> usize {
        match self.lines.pop_front() {
            Some(l) => {
                let b = line_bytes(&l);
                self.bytes -= b;
                self.dropped += 1;
                b
            }
            None => 0,
        }
    }
}

fn line_bytes(l: &LogLine) -> usize {
    l.text.len() + l.scope.as_ref().map_or(0, String::len) + LINE_OVERHEAD
}

#[derive(Default)]
struct State {
    devices: HashMap<String, DeviceLog>,
    bytes: usize,
}

/// Every device's buffered lines and leases. One per [`crate::Fleet`].
pub struct LogHub {
    state: Mutex<State>,
    /// Devices with a viewer or within the grace: while 0, [`LogHub::wanted`] answers without
    /// taking the lock (the check-in path asks it every time).
    leased: AtomicUsize,
    grace: Duration,
}

impl Default for LogHub {
    fn default() -> Self {
        Self::with_grace(GRACE)
    }
}

impl LogHub {
    /// A hub whose devices stay wanted for `grace` after their last viewer left ([`GRACE`] in
    /// the server; tests shorten it).
    pub fn with_grace(grace: Duration) -> Self {
        Self {
            state: Mutex::default(),
            leased: AtomicUsize::new(0),
            grace,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `mac`'s logs are watched now (its check-in and batch answers say so).
    pub fn wanted(&self, mac: &str) -> bool {
        if self.leased.load(Ordering::Acquire) == 0 {
            return false;
        }
        let now = Instant::now();
        let mut st = self.lock();
        let Some(d) = st.devices.get_mut(mac) else {
            return false;
        };
        if d.wanted(now, self.grace) {
            return true;
        }
        if d.left_at.take().is_some() {
            // The grace ran out: this device no longer counts as leased.
            self.leased.fetch_sub(1, Ordering::AcqRel);
        }
        false
    }

    /// Keep a validated batch from `mac` (already authenticated) and hand it to its viewers.
    pub(crate) fn append(&self, mac: &str, batch: LogBatch) -> Result<LogBatchAnswer> {
        let lines = clean(batch)?;
        let accepted = lines.len();
        let now = Instant::now();
        let received_at = crate::time::now();
        let mut st = self.lock();
        let st = &mut *st;
        let d = st
            .devices
            .entry(mac.to_owned())
            .or_insert_with(DeviceLog::new);
        let mut out = Vec::with_capacity(accepted);
        let mut added = 0usize;
        for (level, scope, text, device_time) in lines {
            let line = Arc::new(LogLine {
                seq: d.next_seq,
                received_at: received_at.clone(),
                level,
                scope,
                text,
                device_time,
            });
            d.next_seq += 1;
            let b = line_bytes(&line);
            d.bytes += b;
            added += b;
            d.lines.push_back(line.clone());
            out.push(line);
        }
        let mut removed = 0usize;
        while d.lines.len() > KEEP_LINES {
            removed += d.drop_oldest();
        }
        d.last_line = Some((now, received_at));
        let wanted = d.wanted(now, self.grace);
        if d.tx.receiver_count() > 0 {
            let _ = d.tx.send(Arc::new(out));
        }
        st.bytes = st.bytes + added - removed;
        if st.bytes > TOTAL_BYTES {
            self.shed(st, mac);
        }
        Ok(LogBatchAnswer {
            logs: wanted,
            accepted,
        })
    }

    /// Over budget: drop the buffers of unwatched devices, least recently active first (never
    /// `keep`'s, which just sent); then, if still over, the oldest lines of the rest.
    fn shed(&self, st: &mut State, keep: &str) {
        let now = Instant::now();
        let mut idle: Vec<(Instant, String)> = st
            .devices
            .iter()
            .filter(|(m, d)| {
                m.as_str() != keep && !d.wanted(now, self.grace) && !d.lines.is_empty()
            })
            .map(|(m, d)| (d.last_line.as_ref().map_or(now, |l| l.0), m.clone()))
            .collect();
        idle.sort();
        for (_, m) in idle {
            if st.bytes <= TOTAL_BYTES {
                return;
            }
            if let Some(d) = st.devices.get_mut(&m) {
                d.dropped += d.lines.len() as u64;
                st.bytes -= d.bytes;
                d.lines.clear();
                d.bytes = 0;
            }
        }
        // Everyone left is watched (or is `keep`): trim their oldest lines, round robin.
        let macs: Vec<String> = st.devices.keys().cloned().collect();
        while st.bytes > TOTAL_BYTES {
            let mut freed = 0;
            for m in &macs {
                if let Some(d) = st.devices.get_mut(m) {
                    let b = d.drop_oldest();
                    st.bytes -= b;
                    freed += b;
                }
            }
            if freed == 0 {
                break;
            }
        }
    }

    /// The buffered lines of `mac` after `after` (0: all), at most `limit`, newest kept.
    pub fn snapshot(&self, mac: &str, after: u64, limit: usize) -> LogSnapshot {
        let now = Instant::now();
        let st = self.lock();
        match st.devices.get(mac) {
            None => LogSnapshot {
                mac: mac.to_owned(),
                lines: Vec::new(),
                watched: false,
                last_line_at: None,
                dropped: 0,
            },
            Some(d) => {
                let newer: Vec<&Arc<LogLine>> = d.lines.iter().filter(|l| l.seq > after).collect();
                let skip = newer.len().saturating_sub(limit);
                LogSnapshot {
                    mac: mac.to_owned(),
                    lines: newer[skip..].iter().map(|l| (***l).clone()).collect(),
                    watched: d.wanted(now, self.grace),
                    last_line_at: d.last_line.as_ref().map(|l| l.1.clone()),
                    dropped: d.dropped,
                }
            }
        }
    }

    /// Start watching `mac`: its lines so far (after `after`), a receiver of every later batch,
    /// and the lease that keeps the device sending until it is dropped. `first`: no one else was
    /// watching (the device may need telling).
    pub(crate) fn watch(
        self: &Arc<Self>,
        mac: &str,
        after: u64,
    ) -> (
        Vec<LogLine>,
        broadcast::Receiver<LogBatchOut>,
        LogLease,
        bool,
    ) {
        let now = Instant::now();
        let mut st = self.lock();
        let d = st
            .devices
            .entry(mac.to_owned())
            .or_insert_with(DeviceLog::new);
        let first = !d.wanted(now, self.grace);
        if d.viewers == 0 && d.left_at.take().is_none() {
            self.leased.fetch_add(1, Ordering::AcqRel);
        }
        d.viewers += 1;
        let rx = d.tx.subscribe();
        let lines = d
            .lines
            .iter()
            .filter(|l| l.seq > after)
            .map(|l| (**l).clone())
            .collect();
        drop(st);
        (
            lines,
            rx,
            LogLease {
                hub: self.clone(),
                mac: mac.to_owned(),
            },
            first,
        )
    }

    fn release(&self, mac: &str) {
        let mut st = self.lock();
        if let Some(d) = st.devices.get_mut(mac) {
            d.viewers = d.viewers.saturating_sub(1);
            if d.viewers == 0 {
                // Still counted in `leased` until the grace runs out (`wanted`).
                d.left_at = Some(Instant::now());
            }
        }
    }

    /// Forget a deleted device's lines and leases.
    pub(crate) fn forget(&self, mac: &str) {
        let mut st = self.lock();
        if let Some(d) = st.devices.remove(mac) {
            st.bytes -= d.bytes;
            if d.viewers > 0 || d.left_at.is_some() {
                self.leased.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Bytes buffered for all devices (for tests and the benchmark).
    pub fn buffered_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Held while someone watches a device's logs; dropping it ends that viewer's lease.
pub struct LogLease {
    hub: Arc<LogHub>,
    mac: String,
}

impl Drop for LogLease {
    fn drop(&mut self) {
        self.hub.release(&self.mac);
    }
}

#[cfg(test)]
mod tests;
