//! Staged rollouts: a deployment that carries a [`RolloutPlan`] offers its image wave by wave.
//! This module owns the `rollout_members` table and the rollout columns of `deployments`
//! (`plan`, `wave`, `wave_started_at`, `paused_at`, `pause_reason`); docs/rollouts.md says the
//! rules in prose.
//!
//! - **Waves.** When the rollout is created every device it covers is given a wave
//!   ([`assign`]): a tag wave takes the devices with that tag, a count wave the next N devices,
//!   a percent wave the devices up to that share of the rollout (cumulative), and the last wave
//!   every device left. Devices are taken in an order drawn from the rollout id and the MAC, so
//!   a wave is a spread of the fleet, not one vendor prefix. A device that starts to match later
//!   (new on the LAN, re-tagged) joins the wave after the one open when it is first seen.
//! - **The gate** ([`gate`]): a device is offered the image only when its wave has started and
//!   the rollout is not paused, and at most `max_parallel` devices update at once. Every other
//!   device gets the honest answer: "waiting for wave N", "paused: …", "waiting for a free
//!   slot". Attempts already under way go on.
//! - **Outcomes** ([`step`]): a device of a started wave *succeeded* when its update is `done`
//!   and it stayed healthy through the soak time — it kept checking in, its uptime did not go
//!   back (a restart otafleet did not ask for: `devices.last_reset_at`), it sent no error
//!   report, it was not offline beyond the limit; it *failed* when its update failed or its
//!   health broke during the soak time. A device that cannot take the image (another chip, a
//!   newer version, …) is *skipped*: it counts for nothing.
//! - **Automatic pause**: the error limit is checked at every step; crossing it pauses the
//!   rollout at once with the reason. A wave whose share of succeeded devices reaches the
//!   success threshold starts the next one, or pauses for approval when the plan asks for it.
//!
//! [`step`] runs inside the writer's transaction of a failed attempt, so the pause it may cause is
//! part of that change, and every second for the rest (restarts and error reports seen since,
//! soak times ending, devices going quiet).

use std::collections::HashMap;

use crate::db::Conn;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db;
use crate::deployments::PauseKind;
use crate::error::{CoreError, Result};
use crate::offer::Verdict;

/// The default share of a wave that must succeed before the next wave starts.
pub const DEFAULT_SUCCESS_PCT: u8 = 100;
/// The default error limit: the rollout pauses when more than this share of its started devices
/// failed.
pub const DEFAULT_ERROR_PCT: u8 = 10;
/// The default soak time, in seconds.
pub const DEFAULT_SOAK_S: i64 = 60;
/// The default offline limit during the soak time, in seconds.
pub const DEFAULT_OFFLINE_S: i64 = 180;

/// Which devices a wave takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum WaveSpec {
    /// Every device not in an earlier wave that has this tag.
    Tag { tag: String },
    /// The next `count` devices.
    Count { count: i64 },
    /// The devices up to `percent` of the rollout's devices, counted from its first wave.
    Percent { percent: u8 },
}

impl WaveSpec {
    fn label(&self) -> String {
        match self {
            WaveSpec::Tag { tag } => format!("tag {tag}"),
            WaveSpec::Count { count } => format!("{count} device{}", plural(*count)),
            WaveSpec::Percent { percent } => format!("up to {percent} %"),
        }
    }
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// When the rollout pauses by itself: more failed devices than `devices`, or a larger share of
/// its started devices than `percent`. Neither set: it never pauses by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorLimit {
    pub devices: Option<i64>,
    pub percent: Option<u8>,
}

/// How a rollout offers its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutPlan {
    /// The waves, in order (1 to 20). The last one takes every device left, whatever it says.
    pub waves: Vec<WaveSpec>,
    /// The share of a wave's devices (those that can take the image) that must succeed before
    /// the next wave starts, in percent (default 100).
    #[serde(default = "default_success")]
    pub success_pct: u8,
    /// When to pause by itself (default: more than 10 % failed).
    #[serde(default = "default_error_limit")]
    pub error_limit: ErrorLimit,
    /// How long a device must stay healthy on the image before it counts as succeeded, in
    /// seconds (default 60).
    #[serde(default = "default_soak")]
    pub soak_s: i64,
    /// Devices updating at once, at most (none: no limit).
    #[serde(default)]
    pub max_parallel: Option<i64>,
    /// Pause after each wave until someone resumes it.
    #[serde(default)]
    pub pause_after_wave: bool,
    /// A device silent for longer than this during its soak time failed (seconds; default
    /// 180).
    #[serde(default)]
    pub offline_limit_s: Option<i64>,
}

fn default_success() -> u8 {
    DEFAULT_SUCCESS_PCT
}
fn default_error_limit() -> ErrorLimit {
    ErrorLimit {
        devices: None,
        percent: Some(DEFAULT_ERROR_PCT),
    }
}
fn default_soak() -> i64 {
    DEFAULT_SOAK_S
}

/// The plans the UI and `?rollout=` offer by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// The devices tagged `canary`, then 10 %, 50 %, 100 %.
    Canary,
    /// Every device at once (what a deployment without a plan does).
    AllAtOnce,
    /// Every device, one at a time.
    OneAtATime,
}

impl Preset {
    pub fn plan(self) -> RolloutPlan {
        let base = RolloutPlan {
            waves: vec![WaveSpec::Percent { percent: 100 }],
            success_pct: DEFAULT_SUCCESS_PCT,
            error_limit: default_error_limit(),
            soak_s: DEFAULT_SOAK_S,
            max_parallel: None,
            pause_after_wave: false,
            offline_limit_s: None,
        };
        match self {
            Preset::Canary => RolloutPlan {
                waves: vec![
                    WaveSpec::Tag {
                        tag: "canary".into(),
                    },
                    WaveSpec::Percent { percent: 10 },
                    WaveSpec::Percent { percent: 50 },
                    WaveSpec::Percent { percent: 100 },
                ],
                ..base
            },
            Preset::AllAtOnce => RolloutPlan { soak_s: 0, ..base },
            Preset::OneAtATime => RolloutPlan {
                max_parallel: Some(1),
                ..base
            },
        }
    }
}

impl RolloutPlan {
    /// Checked: 1 to 20 waves, shares within 1–100 and rising, counts ≥ 1, tags valid.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(CoreError::invalid("invalid_plan", m));
        if self.waves.is_empty() || self.waves.len() > 20 {
            return bad(format!(
                "a plan has 1 to 20 waves, this one {}",
                self.waves.len()
            ));
        }
        let mut last_pct = 0;
        for (i, w) in self.waves.iter().enumerate() {
            match w {
                WaveSpec::Tag { tag } => {
                    crate::validate::tags(std::slice::from_ref(tag))?;
                }
                WaveSpec::Count { count } if *count < 1 => {
                    return bad(format!("wave {} takes {count} devices; take at least 1", i + 1))
                }
                WaveSpec::Percent { percent } if *percent == 0 || *percent > 100 => {
                    return bad(format!(
                        "wave {} takes up to {percent} %; give 1 to 100",
                        i + 1
                    ))
                }
                WaveSpec::Percent { percent } if *percent <= last_pct => {
                    return bad(format!(
                        "wave {} takes up to {percent} %, no more than wave before it ({last_pct} %); shares count from the first wave, so each must be larger",
                        i + 1
                    ))
                }
                WaveSpec::Percent { percent } => last_pct = *percent,
                WaveSpec::Count { .. } => {}
            }
        }
        if self.success_pct > 100 {
            return bad(format!(
                "success_pct is {}; give 0 to 100",
                self.success_pct
            ));
        }
        if self.error_limit.percent.is_some_and(|p| p > 100)
            || self.error_limit.devices.is_some_and(|d| d < 0)
        {
            return bad("error_limit: devices ≥ 0, percent 0 to 100".into());
        }
        if self.soak_s < 0 || self.soak_s > 7 * 86_400 {
            return bad(format!(
                "soak_s is {}; give 0 to 604800 (a week)",
                self.soak_s
            ));
        }
        if self.max_parallel.is_some_and(|m| m < 1) {
            return bad("max_parallel must be at least 1 (or left out: no limit)".into());
        }
        if self.offline_limit_s.is_some_and(|o| o < 1) {
            return bad("offline_limit_s must be at least 1".into());
        }
        Ok(())
    }

    pub fn wave_count(&self) -> i64 {
        self.waves.len() as i64
    }
}

/// A device to place in a wave: its MAC and tags.
pub struct Candidate<'a> {
    pub mac: &'a str,
    pub tags: &'a [String],
}

/// Place each device in a wave (1-based), as the module says. Pure: the dry run and the
/// rollout place devices the same way.
pub fn assign(
    plan: &RolloutPlan,
    rollout_id: i64,
    devices: &[Candidate<'_>],
) -> Vec<(String, i64)> {
    let mut order: Vec<(&Candidate<'_>, [u8; 32])> = devices
        .iter()
        .map(|d| {
            let mut h = Sha256::new();
            h.update(rollout_id.to_le_bytes());
            h.update(d.mac.as_bytes());
            (d, h.finalize().into())
        })
        .collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.mac.cmp(b.0.mac)));
    let total = order.len();
    let mut placed: HashMap<&str, i64> = HashMap::new();
    let last = plan.waves.len();
    for (i, w) in plan.waves.iter().enumerate() {
        let wave = i as i64 + 1;
        if i + 1 == last {
            for (d, _) in &order {
                placed.entry(d.mac).or_insert(wave);
            }
            break;
        }
        match w {
            WaveSpec::Tag { tag } => {
                for (d, _) in &order {
                    if d.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                        placed.entry(d.mac).or_insert(wave);
                    }
                }
            }
            WaveSpec::Count { count } => {
                let mut n = 0;
                for (d, _) in &order {
                    if n >= *count {
                        break;
                    }
                    if !placed.contains_key(d.mac) {
                        placed.insert(d.mac, wave);
                        n += 1;
                    }
                }
            }
            WaveSpec::Percent { percent } => {
                // Cumulative: the waves so far hold this share of the rollout's devices.
                let upto = (total * *percent as usize).div_ceil(100);
                for (d, _) in &order {
                    if placed.len() >= upto {
                        break;
                    }
                    placed.entry(d.mac).or_insert(wave);
                }
            }
        }
    }
    let mut out: Vec<(String, i64)> = placed
        .into_iter()
        .map(|(m, w)| (m.to_string(), w))
        .collect();
    out.sort();
    out
}

/// The wave a device that starts to match after the rollout began joins: the one after the
/// wave open now (the last wave when that is open).
pub fn late_wave(current: i64, waves: i64) -> i64 {
    (current + 1).min(waves.max(1))
}

/// Where a rollout stands, as its gate needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The newest wave started.
    pub current: i64,
    pub waves: i64,
    /// Why it is paused, when it is.
    pub paused: Option<String>,
    pub max_parallel: Option<i64>,
}

/// A rollout's gate over a device's verdict: an offer becomes a wait when the device's wave has
/// not started, when the rollout is paused, or when `updating` devices (other than this one)
/// already fill `max_parallel`. Attempts under way and every other verdict pass unchanged.
pub fn gate(verdict: Verdict, stage: &Stage, wave: i64, updating: i64) -> Verdict {
    if verdict != Verdict::Offer {
        return verdict;
    }
    if let Some(reason) = &stage.paused {
        return Verdict::Paused {
            reason: reason.clone(),
        };
    }
    if wave > stage.current {
        return Verdict::WaitingForWave {
            wave,
            current: stage.current,
        };
    }
    if let Some(max) = stage.max_parallel {
        if updating >= max {
            return Verdict::Queued { max };
        }
    }
    Verdict::Offer
}

/// `verdict` of `mac` under deployment `id`, through the rollout's gate when it has a plan. A
/// device not placed in a wave yet joins late: written when `join` (the paths that offer),
/// only computed otherwise.
pub(crate) async fn gated(
    conn: &mut Conn,
    id: i64,
    mac: &str,
    verdict: Verdict,
    join: bool,
) -> Result<Verdict> {
    if verdict != Verdict::Offer {
        return Ok(verdict);
    }
    let Some(r) = row(conn, id).await? else {
        return Ok(verdict);
    };
    let Some(stage) = r.stage() else {
        // No plan: one wave, every device at once; a pause still holds every offer.
        return Ok(match r.paused() {
            Some(reason) => Verdict::Paused { reason },
            None => verdict,
        });
    };
    let wave = wave_of(conn, id, &stage, mac, join).await?;
    let busy = match stage.max_parallel {
        Some(_) => updating(conn, id, mac).await?,
        None => 0,
    };
    Ok(gate(verdict, &stage, wave, busy))
}

/// A rollout's columns of a deployment.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub(crate) struct RolloutRow {
    pub plan: Option<crate::db::Json<RolloutPlan>>,
    pub wave: i64,
    pub wave_started_at: Option<String>,
    pub paused_at: Option<String>,
    pub pause_reason: Option<String>,
    pub status: String,
    /// Failures accepted by a resume without retry: the error limit counts only later ones.
    pub failures_accepted: i64,
}

pub(crate) async fn row(conn: &mut Conn, id: i64) -> Result<Option<RolloutRow>> {
    db::query_as(
        "SELECT plan, wave, wave_started_at, paused_at, pause_reason, status, failures_accepted \
         FROM deployments WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

impl RolloutRow {
    /// The gate's view of a deployment with a plan; `None` without one.
    pub fn stage(&self) -> Option<Stage> {
        let plan = self.plan.as_ref()?;
        Some(Stage {
            current: self.wave,
            waves: plan.wave_count(),
            paused: self.paused(),
            max_parallel: plan.max_parallel,
        })
    }

    /// Why it is paused, when it is (with a plan or without).
    pub fn paused(&self) -> Option<String> {
        (self.status == "paused").then(|| {
            self.pause_reason
                .clone()
                .unwrap_or_else(|| "paused".to_string())
        })
    }
}

/// Store the plan and the members of a new rollout `id` (its covered devices, placed).
pub(crate) async fn start(
    conn: &mut Conn,
    id: i64,
    plan: &RolloutPlan,
    covered: &[Candidate<'_>],
) -> Result<()> {
    let now = crate::time::now();
    db::query("UPDATE deployments SET plan = ?, wave = 1, wave_started_at = ? WHERE id = ?")
        .bind(crate::db::Json(plan))
        .bind(&now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let placed = assign(plan, id, covered);
    // One statement for every member: a rollout over the whole fleet is one write.
    let json: Vec<(&str, i64)> = placed.iter().map(|(m, w)| (m.as_str(), *w)).collect();
    let backend = conn.backend();
    db::query(&format!(
        "INSERT INTO rollout_members (deployment_id, mac, wave, joined_at) \
         SELECT ?1, {}, CAST({} AS BIGINT), ?2 FROM {}",
        backend.json_index("e.value", 0),
        backend.json_index("e.value", 1),
        backend.json_elements("?3", "e")
    ))
    .bind(id)
    .bind(&now)
    .bind(crate::db::Json(json))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The wave of `mac` in rollout `id`; a device not placed yet joins late ([`late_wave`]) —
/// written when `join`, only computed otherwise (a dry run, a listing).
pub(crate) async fn wave_of(
    conn: &mut Conn,
    id: i64,
    stage: &Stage,
    mac: &str,
    join: bool,
) -> Result<i64> {
    let wave: Option<i64> =
        db::query_scalar("SELECT wave FROM rollout_members WHERE deployment_id = ? AND mac = ?")
            .bind(id)
            .bind(mac)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(w) = wave {
        return Ok(w);
    }
    let w = late_wave(stage.current, stage.waves);
    if join {
        db::query(
            "INSERT INTO rollout_members (deployment_id, mac, wave, joined_at, late) VALUES (?,?,?,?,TRUE) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(mac)
        .bind(w)
        .bind(crate::time::now())
        .execute(&mut *conn)
        .await?;
        tracing::info!(rollout = id, %mac, wave = w, "a device joined the rollout late");
    }
    Ok(w)
}

/// Every member's wave of rollout `id`.
pub(crate) async fn waves_of(conn: &mut Conn, id: i64) -> Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        db::query_as("SELECT mac, wave FROM rollout_members WHERE deployment_id = ?")
            .bind(id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Devices of rollout `id` updating now (an attempt open and started, or offered), other than
/// `mac`.
pub(crate) async fn updating(conn: &mut Conn, id: i64, mac: &str) -> Result<i64> {
    db::query_scalar(
        "SELECT COUNT(*) FROM updates INDEXED BY updates_open_by_deployment \
         WHERE deployment_id = ? AND state NOT IN ('done', 'failed', 'cancelled') AND mac != ?",
    )
    .bind(id)
    .bind(mac)
    .fetch_one(conn)
    .await
}

/// One device's standing in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Its wave has not started.
    Waiting,
    /// Offered, or updating.
    Updating,
    /// Done, and within its soak time.
    Soaking,
    /// Done and healthy through the soak time (or ran the image already).
    Succeeded,
    /// The update failed, or the device was not healthy during its soak time.
    Failed,
    /// It cannot take the image (another chip, a newer version, …): it counts for nothing.
    Skipped,
}

/// A device of a wave.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub mac: String,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub state: MemberState,
    /// Why it failed, is skipped or waits.
    pub reason: Option<String>,
    /// It joined after the rollout began.
    pub late: bool,
}

/// A wave and its devices.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Wave {
    /// 1-based.
    pub number: i64,
    /// What it takes ("tag canary", "up to 10 %", "5 devices").
    pub label: String,
    pub started: bool,
    pub devices: Vec<Member>,
    pub succeeded: i64,
    pub failed: i64,
    pub soaking: i64,
    pub updating: i64,
    pub waiting: i64,
    pub skipped: i64,
}

/// A rollout's plan and where it stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rollout {
    pub plan: RolloutPlan,
    /// The newest wave started.
    pub current_wave: i64,
    pub wave_started_at: Option<String>,
    pub paused_at: Option<String>,
    pub pause_reason: Option<String>,
    pub waves: Vec<Wave>,
}

/// What [`step`] decided for one member whose outcome was still open.
struct Judged {
    mac: String,
    outcome: &'static str,
    reason: String,
}

/// The health facts of an undecided member, read in one statement. Each member's attempts are found through
/// its own (`updates_mac`), never by reading the rollout's: that made a step O(members²).
#[derive(sqlx::FromRow)]
struct Facts {
    mac: String,
    wave: i64,
    state: Option<String>,
    finished_at: Option<String>,
    last_seen: Option<String>,
    last_reset_at: Option<String>,
    mqtt_connected_at: Option<String>,
    mqtt_gone_at: Option<String>,
    last_error_report: Option<String>,
    last_restart_asked: Option<String>,
    /// Why its newest failed attempt in this rollout failed (of the attempts made since a
    /// resume with retry, if any: one under way before it belongs to the time before): a failed
    /// attempt counts even when the device was offered the image again at once.
    failed_error: Option<String>,
    failed_any: bool,
}

const FACTS: &str = "SELECT m.mac, m.wave, u.state, u.finished_at, \
       dev.last_seen, dev.last_reset_at, dev.mqtt_connected_at, dev.mqtt_gone_at, \
       (SELECT MAX(r.received_at) FROM reports r WHERE r.mac = m.mac AND r.type = 'error') AS last_error_report, \
       (SELECT MAX(c.created_at) FROM commands c WHERE c.mac = m.mac AND c.kind = 'restart') AS last_restart_asked, \
       (SELECT f.error FROM updates f INDEXED BY updates_mac WHERE f.mac = m.mac AND f.deployment_id = m.deployment_id AND f.state = 'failed' \
           AND (m.cleared_at IS NULL OR f.created_at >= m.cleared_at) ORDER BY f.id DESC LIMIT 1) AS failed_error, \
       EXISTS (SELECT 1 FROM updates f INDEXED BY updates_mac WHERE f.mac = m.mac AND f.deployment_id = m.deployment_id AND f.state = 'failed' \
           AND (m.cleared_at IS NULL OR f.created_at >= m.cleared_at)) AS failed_any \
     FROM rollout_members m JOIN devices dev ON dev.mac = m.mac \
     LEFT JOIN updates u ON u.id = (SELECT MAX(x.id) FROM updates x INDEXED BY updates_mac WHERE x.mac = m.mac AND x.deployment_id = m.deployment_id) \
     WHERE m.deployment_id = ?1 AND m.wave <= ?2 AND m.outcome IS NULL";

/// The outcome of a member whose update is `done` at `done_at`, or `None` while it soaks.
fn health(
    f: &Facts,
    done_at: &str,
    plan: &RolloutPlan,
    now_s: i64,
    offline_s: i64,
) -> Option<Judged> {
    let failed = |reason: String| {
        Some(Judged {
            mac: f.mac.clone(),
            outcome: "failed",
            reason,
        })
    };
    if let Some(reset) = f.last_reset_at.as_deref() {
        // A restart otafleet asked for after the update is not a crash.
        let asked = f
            .last_restart_asked
            .as_deref()
            .is_some_and(|a| a >= done_at && a <= reset);
        if reset > done_at && !asked {
            return failed(format!(
                "its uptime went back at {reset}, after the update was done at {done_at}: it restarted without being asked (a crash?)"
            ));
        }
    }
    if let Some(at) = f.last_error_report.as_deref() {
        if at > done_at {
            return failed(format!(
                "it sent an error report at {at}, after the update was done"
            ));
        }
    }
    let secs = |t: &str| crate::time::parse(t).map(|t| t.unix_timestamp());
    let done_s = secs(done_at)?;
    // Connected over MQTT now: present, whatever its last HTTP request.
    let connected = match (f.mqtt_connected_at.as_deref(), f.mqtt_gone_at.as_deref()) {
        (Some(c), Some(g)) => c > g,
        (Some(_), None) => true,
        _ => false,
    };
    let seen_s = if connected {
        Some(now_s)
    } else {
        f.last_seen.as_deref().and_then(secs)
    };
    let seen_s = seen_s.unwrap_or(done_s);
    if now_s - seen_s > offline_s {
        return failed(format!(
            "it has not been heard from for {} s during its soak time (limit {offline_s} s)",
            now_s - seen_s
        ));
    }
    if now_s >= done_s + plan.soak_s && seen_s >= done_s + plan.soak_s.min(offline_s) {
        return Some(Judged {
            mac: f.mac.clone(),
            outcome: "succeeded",
            reason: if plan.soak_s > 0 {
                format!("healthy for {} s on the image", plan.soak_s)
            } else {
                "done".into()
            },
        });
    }
    None
}

/// What changed at a [`step`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Stepped {
    /// The rollout paused, with this reason.
    pub paused: Option<String>,
    /// The waves it started.
    pub started: Vec<i64>,
    /// Members whose outcome was decided.
    pub decided: usize,
}

impl Stepped {
    pub fn changed(&self) -> bool {
        self.paused.is_some() || !self.started.is_empty() || self.decided > 0
    }
}

/// Decide the open outcomes of rollout `id`'s started waves, pause it when the error limit is
/// crossed, and start the next wave when the open one succeeded. Only undecided members are
/// weighed (their facts and verdicts); decided ones are counted by their stored outcome, so a
/// step costs what is still open, not the rollout's size. A member whose verdict says it cannot
/// take the image (another chip, a newer version, …) counts for nothing while undecided.
///
/// Without `apply` nothing is written: the answer says what a step would do (the periodic step
/// asks so without the writer's lock, and steps for real only when something would change).
pub(crate) async fn step(conn: &mut Conn, id: i64, apply: bool) -> Result<Stepped> {
    let mut out = Stepped::default();
    let Some(r) = row(conn, id).await? else {
        return Ok(out);
    };
    let Some(plan) = r.plan.as_ref().map(|p| p.0.clone()) else {
        return Ok(out);
    };
    if r.status == "stopped" {
        return Ok(out);
    }
    let now = crate::time::now();
    let now_s = crate::time::parse(&now).map_or(0, |t| t.unix_timestamp());
    let offline_s = plan.offline_limit_s.unwrap_or(DEFAULT_OFFLINE_S);
    let mut current = r.wave;
    let mut paused = r.status == "paused";
    loop {
        let open: Vec<Facts> = db::query_as(FACTS)
            .bind(id)
            .bind(current)
            .fetch_all(&mut *conn)
            .await?;
        let macs: Vec<String> = open.iter().map(|f| f.mac.clone()).collect();
        let verdicts = crate::deployments::member_verdicts(conn, id, &macs).await?;
        let mut judged = Vec::new();
        for f in &open {
            let j = match (f.state.as_deref(), f.finished_at.as_deref()) {
                _ if f.failed_any => Some(Judged {
                    mac: f.mac.clone(),
                    outcome: "failed",
                    reason: format!(
                        "the update failed: {}",
                        f.failed_error.as_deref().unwrap_or("no reason given")
                    ),
                }),
                (Some("done"), Some(done_at)) => health(f, done_at, &plan, now_s, offline_s),
                _ => match verdicts.get(&f.mac) {
                    // It ran the image before the rollout reached it.
                    Some(Verdict::AlreadyRunning) if f.state.is_none() => Some(Judged {
                        mac: f.mac.clone(),
                        outcome: "succeeded",
                        reason: "it ran the image already".into(),
                    }),
                    _ => None,
                },
            };
            judged.extend(j);
        }
        // The members decided before this step, per wave and outcome (read before the new
        // outcomes are written, so the two never overlap).
        let decided: Vec<(i64, String, i64)> = db::query_as(
            "SELECT wave, outcome, COUNT(*) FROM rollout_members \
             WHERE deployment_id = ? AND wave <= ? AND outcome IS NOT NULL GROUP BY wave, outcome",
        )
        .bind(id)
        .bind(current)
        .fetch_all(&mut *conn)
        .await?;
        if apply {
            for j in &judged {
                db::query(
                    "UPDATE rollout_members SET outcome = ?, reason = ?, decided_at = ? \
                     WHERE deployment_id = ? AND mac = ? AND outcome IS NULL",
                )
                .bind(j.outcome)
                .bind(&j.reason)
                .bind(&now)
                .bind(id)
                .bind(&j.mac)
                .execute(&mut *conn)
                .await?;
                tracing::info!(rollout = id, mac = %j.mac, outcome = j.outcome, reason = %j.reason, "rollout device decided");
            }
        }
        out.decided += judged.len();
        // Tally: decided members by their outcome; undecided ones by this step's judgement,
        // those that cannot take the image left out.
        let mut counted = 0i64;
        let mut failed = 0i64;
        let (mut wave_counted, mut wave_succeeded) = (0usize, 0usize);
        for (wave, outcome, n) in &decided {
            counted += n;
            if outcome == "failed" {
                failed += n;
            }
            if *wave == current {
                wave_counted += *n as usize;
                if outcome == "succeeded" {
                    wave_succeeded += *n as usize;
                }
            }
        }
        for f in &open {
            let outcome = judged.iter().find(|j| j.mac == f.mac).map(|j| j.outcome);
            if outcome.is_none() && verdicts.get(&f.mac).is_none_or(is_skipped) {
                continue;
            }
            counted += 1;
            if outcome == Some("failed") {
                failed += 1;
            }
            if f.wave == current {
                wave_counted += 1;
                if outcome == Some("succeeded") {
                    wave_succeeded += 1;
                }
            }
        }
        if !paused {
            let new_failures = failed - r.failures_accepted;
            if let Some(why) = crossed(&plan.error_limit, new_failures, counted) {
                // The first failures named: this step's, then the newest decided before.
                let mut examples: Vec<String> = judged
                    .iter()
                    .filter(|j| j.outcome == "failed")
                    .map(|j| format!("{}: {}", j.mac, j.reason))
                    .take(3)
                    .collect();
                if examples.len() < 3 {
                    let earlier: Vec<(String, Option<String>)> = db::query_as(
                        "SELECT mac, reason FROM rollout_members WHERE deployment_id = ? \
                         AND wave <= ? AND outcome = 'failed' ORDER BY decided_at DESC, mac LIMIT 3",
                    )
                    .bind(id)
                    .bind(current)
                    .fetch_all(&mut *conn)
                    .await?;
                    examples.extend(
                        earlier
                            .into_iter()
                            .filter(|(m, _)| !judged.iter().any(|j| &j.mac == m))
                            .map(|(m, reason)| format!("{m}: {}", reason.unwrap_or_default()))
                            .take(3 - examples.len()),
                    );
                }
                let reason = format!(
                    "error limit crossed: {failed} of {counted} device{} in wave{} 1–{current} failed ({why}); first: {}",
                    plural(counted),
                    if current == 1 { "" } else { "s" },
                    examples.join("; ")
                )
                .replace("wave 1–1", "wave 1");
                if apply {
                    pause_by_itself(conn, id, &reason, PauseKind::ErrorLimit).await?;
                    tracing::warn!(rollout = id, %reason, "rollout paused by its error limit");
                }
                out.paused = Some(reason);
                paused = true;
            }
        }
        if paused || current >= plan.wave_count() {
            break;
        }
        let need = (wave_counted * plan.success_pct as usize).div_ceil(100);
        if wave_succeeded < need {
            break;
        }
        if plan.pause_after_wave {
            let reason = format!(
                "wave {current} finished ({wave_succeeded} of {wave_counted} succeeded); resume to start wave {}",
                current + 1
            );
            if apply {
                pause_by_itself(conn, id, &reason, PauseKind::AfterWave).await?;
            }
            out.paused = Some(reason);
            break;
        }
        current += 1;
        if !apply {
            // Whether it goes further is the real step's to find out.
            out.started.push(current);
            break;
        }
        db::query("UPDATE deployments SET wave = ?, wave_started_at = ? WHERE id = ?")
            .bind(current)
            .bind(&now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        tracing::info!(rollout = id, wave = current, "rollout started a wave");
        out.started.push(current);
    }
    Ok(out)
}

/// Which limit `failed` of `started` devices crosses, in words; `None`: within the limit.
fn crossed(limit: &ErrorLimit, failed: i64, started: i64) -> Option<String> {
    if let Some(d) = limit.devices {
        if failed > d {
            return Some(format!("limit {d} device{}", plural(d)));
        }
    }
    if let Some(p) = limit.percent {
        if started > 0 && failed * 100 > i64::from(p) * started {
            return Some(format!("limit {p} %"));
        }
    }
    None
}

/// A verdict under which a device cannot take the image, or nothing says yet that it can (an
/// esp32FOTA device that never said its project, a device never seen): it counts for nothing.
fn is_skipped(v: &Verdict) -> bool {
    matches!(
        v,
        Verdict::Waiting { .. }
            | Verdict::NewerRunning { .. }
            | Verdict::OtherChip { .. }
            | Verdict::OtherProject { .. }
            | Verdict::TooBig { .. }
            | Verdict::ChipUnknown { .. }
            | Verdict::Unsupported { .. }
            | Verdict::Superseded { .. }
    )
}

/// Pause rollout `id` with `reason`, and audit it: otafleet is the actor when it paused by
/// itself (the admin's own pause is audited by the route).
async fn pause(conn: &mut Conn, id: i64, reason: &str, kind: PauseKind) -> Result<()> {
    db::query(
        "UPDATE deployments SET status = 'paused', paused_at = ?, pause_reason = ?, pause_kind = ? \
         WHERE id = ?",
    )
    .bind(crate::time::now())
    .bind(reason)
    .bind(kind)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn pause_by_itself(conn: &mut Conn, id: i64, reason: &str, kind: PauseKind) -> Result<()> {
    pause(conn, id, reason, kind).await?;
    let mut detail = crate::audit::AuditDetail::default();
    detail
        .values
        .insert("reason".into(), serde_json::Value::String(reason.into()));
    crate::audit::record_done(
        conn,
        &crate::audit::NewAuditEntry {
            actor: "otafleet".into(),
            action: "rollout_paused".into(),
            method: "-".into(),
            path: format!("/api/v1/deployments/{id}"),
            target: Some(format!("deployment {id}")),
            detail: Some(detail),
        },
        200,
    )
    .await
}

/// Pause rollout `id` by hand. Refused (409) when it is not active.
pub(crate) async fn pause_by_admin(conn: &mut Conn, id: i64, reason: &str) -> Result<()> {
    let Some(r) = row(conn, id).await? else {
        return Err(CoreError::not_found(format!("deployment {id}")));
    };
    if r.status != "active" {
        return Err(CoreError::conflict(format!(
            "deployment {id} is {}; only an active one can be paused",
            r.status
        )));
    }
    pause(conn, id, reason, PauseKind::Admin).await
}

/// Resume paused rollout `id`: paused after a wave for approval, the next wave starts; paused by
/// the error limit, it goes on where it was. With `retry`, every failed device of its started
/// waves counts afresh (its outcome is cleared; the caller opens new attempts). Returns the
/// MACs whose outcome was cleared.
pub(crate) async fn resume(conn: &mut Conn, id: i64, retry: bool) -> Result<Vec<String>> {
    let Some(r) = row(conn, id).await? else {
        return Err(CoreError::not_found(format!("deployment {id}")));
    };
    if r.status != "paused" {
        return Err(CoreError::conflict(format!(
            "deployment {id} is {}, not paused",
            r.status
        )));
    }
    let now = crate::time::now();
    let approval = r
        .pause_reason
        .as_deref()
        .is_some_and(|p| p.contains("resume to start wave"));
    let waves = r.plan.as_ref().map_or(1, |p| p.wave_count());
    let next = if approval {
        (r.wave + 1).min(waves)
    } else {
        r.wave
    };
    db::query(
        "UPDATE deployments SET status = 'active', paused_at = NULL, pause_reason = NULL, pause_kind = NULL, \
         wave = ?, wave_started_at = CASE WHEN ? != wave THEN ? ELSE wave_started_at END WHERE id = ?",
    )
    .bind(next)
    .bind(next)
    .bind(&now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if !retry {
        // The failures so far are accepted: the error limit counts only new ones.
        db::query(
            "UPDATE deployments SET failures_accepted = \
             (SELECT COUNT(*) FROM rollout_members WHERE deployment_id = ?1 AND outcome = 'failed') \
             WHERE id = ?1",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        return Ok(Vec::new());
    }
    // Counted afresh: only attempts made from now on can fail these devices — the failed ones,
    // and the undecided ones (an attempt under way when it paused may fail yet).
    db::query("UPDATE deployments SET failures_accepted = 0 WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    db::query(
        "UPDATE rollout_members SET cleared_at = ? WHERE deployment_id = ? AND outcome IS NULL",
    )
    .bind(&now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    db::query_scalar(
        "UPDATE rollout_members SET outcome = NULL, reason = NULL, decided_at = NULL, cleared_at = ? \
         WHERE deployment_id = ? AND outcome = 'failed' RETURNING mac",
    )
    .bind(&now)
    .bind(id)
    .fetch_all(conn)
    .await
}

/// The rollouts that may have something to decide: those with a plan that are active or paused
/// (a paused one still decides the outcomes of attempts that were under way), and those
/// completed within their soak time (plus a margin), whose last devices still soak.
pub(crate) async fn active(conn: &mut Conn) -> Result<Vec<i64>> {
    let backend = conn.backend();
    db::query_scalar(&format!(
        "SELECT id FROM deployments WHERE plan IS NOT NULL AND (status IN ('active', 'paused') \
           OR (status = 'completed' AND ended_at IS NOT NULL \
               AND {} <= COALESCE(CAST({} AS DOUBLE PRECISION), 60) + ?2)) \
         ORDER BY id",
        backend.seconds_between("?1", "ended_at"),
        backend.json_text("plan", "soak_s")
    ))
    .bind(crate::time::now())
    .bind(SOAK_MARGIN_S)
    .fetch_all(conn)
    .await
}

/// How long after a rollout completed its last devices' soak times are still followed, beyond
/// the soak time itself.
const SOAK_MARGIN_S: i64 = 10;

/// A member's row: MAC, wave, late, outcome, reason.
type MemberRow = (String, i64, bool, Option<String>, Option<String>);

/// The rollout view of deployment `id`: its plan and every wave with its devices, from the
/// devices' `verdicts` (by MAC, with name and protocol). `None` for a deployment without a plan.
pub(crate) async fn view(
    conn: &mut Conn,
    id: i64,
    verdicts: &[crate::deployments::DeviceVerdict],
) -> Result<Option<Rollout>> {
    let Some(r) = row(conn, id).await? else {
        return Ok(None);
    };
    let Some(plan) = r.plan.as_ref().map(|p| p.0.clone()) else {
        return Ok(None);
    };
    let stage = r.stage().expect("a plan");
    let rows: Vec<MemberRow> = db::query_as(
        "SELECT mac, wave, late, outcome, reason FROM rollout_members WHERE deployment_id = ?",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let members: HashMap<String, (i64, bool, Option<String>, Option<String>)> = rows
        .into_iter()
        .map(|(m, w, l, o, re)| (m, (w, l, o, re)))
        .collect();
    let mut waves: Vec<Wave> = plan
        .waves
        .iter()
        .enumerate()
        .map(|(i, w)| Wave {
            number: i as i64 + 1,
            label: if i + 1 == plan.waves.len() {
                "the rest".into()
            } else {
                w.label()
            },
            started: (i as i64 + 1) <= stage.current,
            devices: Vec::new(),
            succeeded: 0,
            failed: 0,
            soaking: 0,
            updating: 0,
            waiting: 0,
            skipped: 0,
        })
        .collect();
    for v in verdicts {
        let (wave, late, outcome, reason) = members.get(&v.mac).cloned().unwrap_or((
            late_wave(stage.current, stage.waves),
            true,
            None,
            None,
        ));
        let (state, reason) = match outcome.as_deref() {
            Some("succeeded") => (MemberState::Succeeded, reason),
            Some("failed") => (MemberState::Failed, reason),
            _ if is_skipped(&v.verdict) => (MemberState::Skipped, Some(v.reason.clone())),
            _ => match &v.verdict {
                Verdict::AlreadyRunning => (MemberState::Soaking, None),
                Verdict::InProgress { .. } | Verdict::Offer => (MemberState::Updating, None),
                other => (MemberState::Waiting, Some(other.reason())),
            },
        };
        let Some(w) = waves.get_mut((wave - 1).max(0) as usize) else {
            continue;
        };
        match state {
            MemberState::Succeeded => w.succeeded += 1,
            MemberState::Failed => w.failed += 1,
            MemberState::Soaking => w.soaking += 1,
            MemberState::Updating => w.updating += 1,
            MemberState::Waiting => w.waiting += 1,
            MemberState::Skipped => w.skipped += 1,
        }
        w.devices.push(Member {
            mac: v.mac.clone(),
            name: v.name.clone(),
            protocol: v.protocol.clone(),
            state,
            reason,
            late,
        });
    }
    Ok(Some(Rollout {
        plan,
        current_wave: r.wave,
        wave_started_at: r.wave_started_at,
        paused_at: r.paused_at,
        pause_reason: r.pause_reason,
        waves,
    }))
}

#[cfg(test)]
mod tests;
