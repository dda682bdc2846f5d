//! A native device's log hook (docs/protocols.md §1, Logs): while the server's answers say
//! `logs: true` the device sends its log lines (`POST /api/v1/device/logs`) at `--log-rate` lines
//! a second, in batches four times a second, and stops — dropping what it had not sent — as soon
//! as an answer says `logs: false`, as the reference client does. At most one sender per device.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

/// Batches a second.
const BATCHES_PER_S: f64 = 4.0;

#[derive(Deserialize)]
struct Answer {
    logs: bool,
}

/// One device's log hook.
#[derive(Debug, Default)]
pub struct LogHook {
    sending: Arc<AtomicBool>,
    /// Set by a `log {"on": false}` command: the sender stops at its next batch.
    stopped: Arc<AtomicBool>,
}

/// Where and how a hook sends.
pub struct Sender {
    pub client: reqwest::Client,
    /// `…/api/v1/device/logs`.
    pub url: String,
    pub token: String,
    pub mac: String,
    /// Lines a second.
    pub rate: f64,
    /// Counts the lines the server accepted.
    pub sent: Arc<AtomicU64>,
    /// The run's stop and end signals: the hook stops with them.
    pub stop: watch::Receiver<bool>,
    pub ending: watch::Receiver<bool>,
}

impl Sender {
    /// A sender for device `mac` of this run, with its token.
    pub fn of(sh: &crate::run::Shared, mac: &str, token: &str) -> Self {
        Sender {
            client: sh.http.client.clone(),
            url: sh.http.url("/api/v1/device/logs"),
            token: token.to_string(),
            mac: mac.to_string(),
            rate: sh.cfg.log_rate,
            sent: sh.stats.log_lines.clone(),
            stop: sh.stop.subscribe(),
            ending: sh.ending.subscribe(),
        }
    }
}

impl LogHook {
    /// The server asked for lines (`logs: true`): start sending unless already sending.
    pub fn wanted(&self, s: Sender) {
        if s.rate <= 0.0 || self.sending.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stopped.store(false, Ordering::Release);
        let sending = self.sending.clone();
        let stopped = self.stopped.clone();
        let Sender {
            client,
            url,
            token,
            mac,
            rate,
            sent,
            mut stop,
            mut ending,
        } = s;
        tokio::spawn(async move {
            let every = Duration::from_secs_f64(1.0 / BATCHES_PER_S);
            let mut due = 0.0f64;
            let mut n: u64 = 0;
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => {}
                    _ = ending.changed() => {}
                }
                if *stop.borrow() || *ending.borrow() || stopped.load(Ordering::Acquire) {
                    break;
                }
                due += rate / BATCHES_PER_S;
                let count = due.floor() as u64;
                if count == 0 {
                    continue;
                }
                due -= count as f64;
                let lines: Vec<_> = (0..count.min(100))
                    .map(|_| {
                        n += 1;
                        let (level, scope, text) = line(n);
                        json!({"level": level, "scope": scope, "text": format!("{text} (#{n})")})
                    })
                    .collect();
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "lines": lines }))
                    .send()
                    .await;
                let keep = match r {
                    Ok(r) if r.status().is_success() => {
                        sent.fetch_add(lines.len() as u64, Ordering::Relaxed);
                        r.json::<Answer>().await.map(|a| a.logs).unwrap_or(false)
                    }
                    Ok(r) => {
                        tracing::debug!(%mac, status = r.status().as_u16(), "log lines refused; the hook stops");
                        false
                    }
                    // The server is away: stop; the next check-in says whether to go on.
                    Err(_) => false,
                };
                if !keep {
                    break;
                }
            }
            sending.store(false, Ordering::Release);
        });
    }
}

impl LogHook {
    /// Stop sending (a `log {"on": false}` command), at the next batch.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }
}

/// What a sensor node's sketch might log, in turn.
fn line(n: u64) -> (&'static str, &'static str, &'static str) {
    match n % 10 {
        0 => ("warn", "wifi", "RSSI dropped below -75 dBm"),
        3 => ("debug", "sensor", "raw sample read"),
        7 => ("info", "mqtt", "published telemetry"),
        9 if n % 50 == 49 => ("error", "sensor", "read timed out, retrying"),
        _ => ("info", "app", "loop tick"),
    }
}
