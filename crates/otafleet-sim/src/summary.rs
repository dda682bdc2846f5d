//! The end-of-run summary: what each device ended as, per protocol and in total, bytes, time, what
//! the server recorded, and whether that is what the run asked for ([`Summary::success`], the
//! exit code). Injected failures (cut downloads, failed boots) are counted apart from errors.
//!
//! A device's first outcome is what the counts are made of, as in a run whose devices stop there.
//! With `--duration` / `--forever` each device's result also says how many images it booted
//! after it and what it runs at the end ([`DeviceResult::later`], [`DeviceResult::runs`]); an
//! unexpected error after the first outcome counts as an error of that device too. Native
//! devices' boot reports the server stored are counted by type. Waits for an
//! unreachable server (a restart) are counted, never as errors.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::admin::ServerCheck;
use crate::config::{Config, Lifetime, Protocol};
use crate::device::{DeviceResult, Outcome};
use crate::life::short;
use crate::run::Shared;

/// Up to this many devices, the printed summary of a run whose devices live on lists each.
pub const LISTED_DEVICES: usize = 50;

/// How the devices of one protocol ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub devices: usize,
    pub updated: usize,
    /// Updated devices whose download was cut (resumed by native devices, restarted by the rest).
    pub updated_after_cut: usize,
    /// Failed boots that happened where they were injected.
    pub failed_injected: usize,
    /// Devices whose offer was withdrawn while they took it (a stopped deployment).
    pub withdrawn: usize,
    /// Failed boots injected into this protocol's devices.
    pub failed_boots_asked: usize,
    /// Cut downloads injected into this protocol's devices.
    pub cuts_asked: usize,
    /// Devices with an injected failed boot that updated after failing their first boots
    /// (`--failed-boot-times`).
    pub updated_after_failed_boots: usize,
    /// Images booted after the first outcome (`--duration` / `--forever`).
    pub later_updates: usize,
    /// Errors: devices that ended, or later met, anything not asked for.
    pub errors: usize,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub devices: usize,
    pub results: Vec<DeviceResult>,
    pub per_protocol: BTreeMap<Protocol, Tally>,
    pub updated: usize,
    /// Updated devices whose download was cut and resumed or restarted.
    pub updated_after_cut: usize,
    pub failed_injected: usize,
    /// Devices whose offer was withdrawn while they took it (a stopped deployment): on the
    /// image they ran.
    pub withdrawn: usize,
    /// Errors: devices that ended in a way the run did not ask for.
    pub failed_unexpected: usize,
    pub cut_downloads: u64,
    pub expected_failed_boots: usize,
    pub bytes: u64,
    pub requests: u64,
    pub retried: u64,
    pub elapsed: Duration,
    /// Present when the run had an admin token to read the server's records with.
    pub server_check: Option<ServerCheck>,
    /// How long the devices lived.
    pub lifetime: Lifetime,
    /// `--failed-boot-times`.
    pub failed_boot_times: Option<u32>,
    /// Devices with an injected failed boot that updated after failing their first boots.
    pub updated_after_failed_boots: usize,
    /// Images booted after the first outcome, by all devices.
    pub later_updates: usize,
    /// Boots that failed (as injected) after the first outcome.
    pub later_failed_boots: usize,
    /// Waits of devices that found the server unreachable (ridden out, not errors).
    pub backoffs: u64,
    /// Log lines the server accepted from watched native devices (`--log-rate`).
    pub log_lines: u64,
    /// Boot reports the server stored from native devices: `success` ("updated to ...") and
    /// `error` ("boot of ... failed, back on ...").
    pub reports_success: u64,
    pub reports_error: u64,
    /// Restarts esp-admin devices did on a restart command over MQTT.
    pub mqtt_restarts: u64,
    /// Check requests (what a device asks to learn whether there is an update: native
    /// check-ins, stock clients' polls and manifests, legacy checks, esp-admin devices'
    /// settings at boot): kind, count, p50, p99 and
    /// max time to the response head.
    pub check_latency: Vec<Latency>,
}

/// Request latencies of one kind (time from sending to the response head).
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    pub what: String,
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// What `Http::send` is told for the requests that are checks (not downloads or progress).
pub const CHECK_REQUESTS: [&str; 6] = [
    "check-in",
    "arduino poll",
    "esp8266 poll",
    "esp32fota manifest",
    "legacy check",
    // An ESP Admin device's boot (it learns of updates over MQTT).
    "esp-admin settings",
];

fn latency(what: &str, us: &mut [u32]) -> Option<Latency> {
    if us.is_empty() {
        return None;
    }
    us.sort_unstable();
    let at = |q: f64| {
        let i = ((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1;
        Duration::from_micros(u64::from(us[i]))
    };
    Some(Latency {
        what: what.to_string(),
        count: us.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: Duration::from_micros(u64::from(us[us.len() - 1])),
    })
}

/// The check requests' latencies, by kind and then all together.
fn check_latency(sh: &Shared) -> Vec<Latency> {
    let mut by_kind = sh.http.latencies.lock().expect("latencies lock").clone();
    // esp-admin devices speak HTTPS over a client of their own.
    if let Some(e) = &sh.esp_admin {
        for (what, us) in e.http.latencies.lock().expect("latencies lock").iter() {
            by_kind.entry(what).or_default().extend_from_slice(us);
        }
    }
    let mut out = Vec::new();
    let mut all = Vec::new();
    for what in CHECK_REQUESTS {
        if let Some(us) = by_kind.get(what) {
            all.extend_from_slice(us);
            out.extend(latency(what, &mut us.clone()));
        }
    }
    if out.len() > 1 {
        out.extend(latency("all checks", &mut all));
    }
    out
}

impl Summary {
    pub(crate) fn new(
        cfg: &Config,
        sh: &Shared,
        results: Vec<DeviceResult>,
        expected_failed_boots: usize,
        elapsed: Duration,
    ) -> Self {
        let mut per_protocol: BTreeMap<Protocol, Tally> = cfg
            .protocols
            .keys()
            .map(|p| (*p, Tally::default()))
            .collect();
        for r in &results {
            let t = per_protocol.entry(r.protocol).or_default();
            t.devices += 1;
            t.failed_boots_asked += usize::from(r.failed_boot_injected);
            t.cuts_asked += usize::from(r.cut_injected);
            let later_errors = usize::from(r.later.error_count > 0);
            t.later_updates += r.later.updates;
            match &r.outcome {
                Outcome::Updated { resumed, .. } => {
                    t.updated += 1;
                    t.updated_after_cut += usize::from(*resumed);
                    t.updated_after_failed_boots +=
                        usize::from(r.failed_boot_injected && r.boots_failed > 0);
                    t.errors += later_errors;
                }
                // A failed boot where none was injected would be a bug: counted as an error.
                Outcome::BootFailedAsInjected { .. } if r.failed_boot_injected => {
                    t.failed_injected += 1;
                    t.errors += later_errors;
                }
                Outcome::Withdrawn => {
                    t.withdrawn += 1;
                    t.errors += later_errors;
                }
                Outcome::BootFailedAsInjected { .. } | Outcome::Unexpected(_) => t.errors += 1,
            }
        }
        let sum = |f: fn(&Tally) -> usize| per_protocol.values().map(f).sum::<usize>();
        Summary {
            devices: cfg.devices as usize,
            updated: sum(|t| t.updated),
            updated_after_cut: sum(|t| t.updated_after_cut),
            failed_injected: sum(|t| t.failed_injected),
            withdrawn: sum(|t| t.withdrawn),
            failed_unexpected: sum(|t| t.errors),
            cut_downloads: sh.stats.cut_downloads.load(Ordering::Relaxed),
            expected_failed_boots,
            bytes: sh.stats.bytes.load(Ordering::Relaxed),
            // esp-admin devices speak HTTPS over a client of their own.
            requests: sh.http.requests.load(Ordering::Relaxed)
                + sh.esp_admin
                    .as_ref()
                    .map_or(0, |e| e.http.requests.load(Ordering::Relaxed)),
            retried: sh.http.retried.load(Ordering::Relaxed)
                + sh.esp_admin
                    .as_ref()
                    .map_or(0, |e| e.http.retried.load(Ordering::Relaxed)),
            elapsed,
            lifetime: cfg.lifetime,
            failed_boot_times: cfg.failed_boot_times,
            updated_after_failed_boots: sum(|t| t.updated_after_failed_boots),
            later_updates: sum(|t| t.later_updates),
            per_protocol,
            later_failed_boots: results.iter().map(|r| r.later.failed_boots).sum(),
            backoffs: sh.stats.backoffs.load(Ordering::Relaxed),
            log_lines: sh.stats.log_lines.load(Ordering::Relaxed),
            reports_success: sh.stats.reports_success.load(Ordering::Relaxed),
            reports_error: sh.stats.reports_error.load(Ordering::Relaxed),
            mqtt_restarts: sh.stats.mqtt_restarts.load(Ordering::Relaxed),
            check_latency: check_latency(sh),
            results,
            server_check: None,
        }
    }

    /// Every device ended as asked: updated, or failed exactly where a failure was injected (or,
    /// with `--failed-boot-times`, updated after its failed boots), nothing unexpected happened
    /// after, and the server (when asked) agrees.
    pub fn success(&self) -> bool {
        self.failed_unexpected == 0
            && self.results.len() == self.devices
            && self.failed_injected + self.updated_after_failed_boots == self.expected_failed_boots
            // A withdrawn offer is the server's doing (a stopped deployment), not a failure.
            && self.updated + self.failed_injected + self.withdrawn == self.devices
            && self
                .server_check
                .as_ref()
                .is_none_or(|c| c.mismatches.is_empty())
    }

    /// Errors in total: devices that ended unasked-for plus server records that disagree.
    pub fn errors(&self) -> usize {
        self.failed_unexpected + self.server_check.as_ref().map_or(0, |c| c.mismatches.len())
    }
}

impl Summary {
    /// The part of the printed summary about the devices' lives after their first outcome.
    fn fmt_later(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let took: usize = self.results.iter().filter(|r| r.later.updates > 0).count();
        writeln!(
            f,
            "later updates      {} images booted after the first outcome, by {took} devices ({} failed boots, injected)",
            self.later_updates, self.later_failed_boots
        )?;
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        let mut images: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
        for r in &self.results {
            *counts.entry(r.later.updates).or_default() += 1;
            *images
                .entry((
                    r.project.as_str(),
                    r.runs.version.as_str(),
                    short(&r.runs.sha256),
                ))
                .or_default() += 1;
        }
        let counts: Vec<String> = counts
            .iter()
            .map(|(later, k)| format!("{k} × {later}"))
            .collect();
        writeln!(
            f,
            "  per device       {} (devices × later updates)",
            counts.join(", ")
        )?;
        for ((project, version, sha), k) in &images {
            writeln!(
                f,
                "  at the end       {k} run {project} {version} (sha256 {sha})"
            )?;
        }
        if self.results.len() <= LISTED_DEVICES {
            for r in &self.results {
                writeln!(
                    f,
                    "  {}  {:<9} {} later{}  runs {} {} ({}){}",
                    r.mac,
                    r.protocol.name(),
                    r.later.updates,
                    if r.later.failed_boots > 0 {
                        format!(" ({} failed boots)", r.later.failed_boots)
                    } else {
                        String::new()
                    },
                    r.project,
                    r.runs.version,
                    short(&r.runs.sha256),
                    if r.later.error_count > 0 {
                        format!("  {} errors", r.later.error_count)
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "devices            {}", self.devices)?;
        writeln!(
            f,
            "updated            {} ({} after a cut download)",
            self.updated, self.updated_after_cut
        )?;
        if self.withdrawn > 0 {
            writeln!(
                f,
                "withdrawn          {} (offered, then their deployment was stopped: on the image they ran)",
                self.withdrawn
            )?;
        }
        writeln!(
            f,
            "failed, injected   {} failed boots (asked for {})",
            self.failed_injected, self.expected_failed_boots
        )?;
        if self.failed_boot_times.is_some() || self.updated_after_failed_boots > 0 {
            writeln!(
                f,
                "  of the updated   {} after their injected failed boots (--failed-boot-times {})",
                self.updated_after_failed_boots,
                self.failed_boot_times
                    .map_or_else(|| "not given".to_string(), |n| n.to_string())
            )?;
        }
        writeln!(f, "failed, unexpected {}", self.failed_unexpected)?;
        writeln!(f, "downloads cut      {} (injected)", self.cut_downloads)?;
        writeln!(
            f,
            "bytes downloaded   {} ({:.1} MB/s)",
            self.bytes,
            self.bytes as f64 / 1e6 / secs.max(1e-9)
        )?;
        writeln!(
            f,
            "requests           {} ({} transient errors retried)",
            self.requests, self.retried
        )?;
        if self.backoffs > 0 {
            writeln!(
                f,
                "server unreachable {} back-offs of devices that rode it out",
                self.backoffs
            )?;
        }
        if self.log_lines > 0 {
            writeln!(
                f,
                "log lines          {} sent while watched",
                self.log_lines
            )?;
        }
        if self.reports_success + self.reports_error > 0 {
            writeln!(
                f,
                "boot reports       {} success, {} error (native devices)",
                self.reports_success, self.reports_error
            )?;
        }
        if self.mqtt_restarts > 0 {
            writeln!(
                f,
                "MQTT restarts      {} (esp-admin devices, on a restart command)",
                self.mqtt_restarts
            )?;
        }
        writeln!(f, "time               {secs:.2} s")?;
        if !self.check_latency.is_empty() {
            writeln!(
                f,
                "check latency      to the response head: count, p50, p99, max"
            )?;
            let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
            for l in &self.check_latency {
                writeln!(
                    f,
                    "  {:<18} {:>7}  {:>10}  {:>10}  {:>10}",
                    l.what,
                    l.count,
                    ms(l.p50),
                    ms(l.p99),
                    ms(l.max)
                )?;
            }
        }
        writeln!(
            f,
            "per protocol       devices  updated  (after a cut)  cuts asked  failed boots (asked)  errors"
        )?;
        for (p, t) in &self.per_protocol {
            writeln!(
                f,
                "  {:<16} {:>7}  {:>7}  {:>13}  {:>10}  {:>20}  {:>6}",
                p.name(),
                t.devices,
                t.updated,
                format!("({})", t.updated_after_cut),
                t.cuts_asked,
                format!("{} ({})", t.failed_injected, t.failed_boots_asked),
                t.errors
            )?;
        }
        if self.lifetime.lives_on() {
            self.fmt_later(f)?;
        }
        let settled = match self.server_check.as_ref().map_or(0, |c| c.in_flight) {
            0 if self.lifetime.lives_on() => " devices at the end".to_string(),
            0 => " finished devices".to_string(),
            k => format!(
                " devices at the end ({k} stopped in the middle of an update, not compared)"
            ),
        };
        match &self.server_check {
            Some(c) if c.mismatches.is_empty() => writeln!(
                f,
                "server records     agree for all {}{settled}{}",
                c.checked,
                if !c.settled_after.is_zero() {
                    format!(
                        " (after waiting {:.2} s for esp32fota devices' next polls)",
                        c.settled_after.as_secs_f64()
                    )
                } else {
                    String::new()
                }
            )?,
            Some(c) => {
                writeln!(f, "server records     {} disagree:", c.mismatches.len())?;
                for m in c.mismatches.iter().take(10) {
                    writeln!(f, "  {m}")?;
                }
            }
            None => writeln!(f, "server records     not checked (no admin token)")?,
        }
        if let Some(c) = self.server_check.as_ref().filter(|c| c.cuts_seen_whole > 0) {
            writeln!(
                f,
                "  note: {} cut downloads looked complete to the server (the rest of the image fit \
                 in the sockets' buffers): it recorded a failed attempt, then the device's next one",
                c.cuts_seen_whole
            )?;
        }
        let mut reasons: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for r in &self.results {
            if let Outcome::Unexpected(why) = &r.outcome {
                *reasons
                    .entry((r.protocol.name(), why.as_str()))
                    .or_default() += 1;
            }
            for why in &r.later.errors {
                *reasons
                    .entry((r.protocol.name(), why.as_str()))
                    .or_default() += 1;
            }
        }
        for ((proto, why), k) in reasons.iter().take(10) {
            writeln!(f, "  {k} × {proto}: {why}")?;
        }
        writeln!(f, "errors             {}", self.errors())?;
        write!(
            f,
            "result             {}",
            if self.success() { "OK" } else { "FAILED" }
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let mut us: Vec<u32> = (1..=200).rev().collect();
        let l = super::latency("check-in", &mut us).unwrap();
        assert_eq!(l.count, 200);
        assert_eq!(l.p50, Duration::from_micros(100));
        assert_eq!(l.p99, Duration::from_micros(198));
        assert_eq!(l.max, Duration::from_micros(200));
        let one = super::latency("x", &mut [7]).unwrap();
        assert_eq!(
            (one.p50, one.p99, one.max),
            (
                Duration::from_micros(7),
                Duration::from_micros(7),
                Duration::from_micros(7)
            )
        );
        assert!(super::latency("x", &mut []).is_none());
    }
}
