//! The end-of-run summary: what each device ended as, bytes, time, what the server recorded, and
//! whether that is what the run asked for ([`Summary::success`], the exit code).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::admin::ServerCheck;
use crate::config::Config;
use crate::device::Outcome;
use crate::run::Shared;

#[derive(Debug, Clone)]
pub struct Summary {
    pub devices: usize,
    pub outcomes: Vec<(String, Outcome)>,
    pub updated: usize,
    /// Updated devices whose download was cut and resumed.
    pub updated_after_cut: usize,
    pub failed_injected: usize,
    pub failed_unexpected: usize,
    pub cut_downloads: u64,
    pub expected_failed_boots: usize,
    pub bytes: u64,
    pub requests: u64,
    pub retried: u64,
    pub elapsed: Duration,
    /// Present when the run had an admin token to read the server's records with.
    pub server_check: Option<ServerCheck>,
}

impl Summary {
    pub(crate) fn new(
        cfg: &Config,
        sh: &Shared,
        outcomes: Vec<(String, Outcome)>,
        elapsed: Duration,
    ) -> Self {
        let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
        let n = cfg.devices as usize;
        Summary {
            devices: n,
            updated: count(&|o| matches!(o, Outcome::Updated { .. })),
            updated_after_cut: count(&|o| matches!(o, Outcome::Updated { resumed: true, .. })),
            failed_injected: count(&|o| matches!(o, Outcome::BootFailedAsInjected { .. })),
            failed_unexpected: count(&|o| matches!(o, Outcome::Unexpected(_))),
            cut_downloads: sh.stats.cut_downloads.load(Ordering::Relaxed),
            expected_failed_boots: (n * usize::from(cfg.failed_boots)).div_ceil(100).min(n),
            bytes: sh.stats.bytes.load(Ordering::Relaxed),
            requests: sh.http.requests.load(Ordering::Relaxed),
            retried: sh.http.retried.load(Ordering::Relaxed),
            elapsed,
            outcomes,
            server_check: None,
        }
    }

    /// Every device ended as asked: updated, or failed exactly where a failure was injected, and
    /// the server (when asked) agrees.
    pub fn success(&self) -> bool {
        self.failed_unexpected == 0
            && self.outcomes.len() == self.devices
            && self.failed_injected == self.expected_failed_boots
            && self.updated + self.failed_injected == self.devices
            && self
                .server_check
                .as_ref()
                .is_none_or(|c| c.mismatches.is_empty())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "devices            {}", self.devices)?;
        writeln!(
            f,
            "updated            {} ({} after a cut download resumed)",
            self.updated, self.updated_after_cut
        )?;
        writeln!(
            f,
            "failed, injected   {} failed boots (asked for {})",
            self.failed_injected, self.expected_failed_boots
        )?;
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
        writeln!(f, "time               {secs:.2} s")?;
        match &self.server_check {
            Some(c) if c.mismatches.is_empty() => writeln!(
                f,
                "server records     agree for all {} finished devices",
                c.checked
            )?,
            Some(c) => {
                writeln!(f, "server records     {} disagree:", c.mismatches.len())?;
                for m in c.mismatches.iter().take(10) {
                    writeln!(f, "  {m}")?;
                }
            }
            None => writeln!(f, "server records     not checked (no admin token)")?,
        }
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, o) in &self.outcomes {
            if let Outcome::Unexpected(why) = o {
                *reasons.entry(why.as_str()).or_default() += 1;
            }
        }
        for (why, k) in reasons.iter().take(10) {
            writeln!(f, "  {k} × {why}")?;
        }
        write!(
            f,
            "result             {}",
            if self.success() { "OK" } else { "FAILED" }
        )
    }
}
