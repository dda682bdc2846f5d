//! Deployments: the admin's "these devices should run this image". Either an explicit list of
//! devices, or every device of a project and chip (present and future). The newest deployment
//! that covers a device and was not stopped is its target; [`crate::offer::verdict`] says what
//! the device gets from it.
//!
//! Lifecycle ([`DeploymentStatus`]): `active` while some device it targets is offered the image
//! or updating; `completed` once every one is done or given up (held, failed to the attempt
//! limit); back to `active` when a device needs it again (a Retry, a late joiner). A completed
//! deployment still targets its devices, so nothing drifts back to an older deployment. `stopped`
//! (by the admin, or superseded by a newer deployment that covers all its devices) targets
//! nothing, and stopping closes its attempts that had not started as `cancelled`.
//!
//! The dry run ([`plan`]) creates the deployment inside a transaction, asks the verdict of every
//! device it would cover, and rolls back: what it promises is what the same code then does.

use std::collections::{BTreeMap, HashMap};

use crate::db::{Backend, Conn, Db};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::devices::{self, Device};
use crate::error::{CoreError, Result};
use crate::firmware::Firmware;
use crate::offer::{self, Rule, Verdict, VerdictKind};
use crate::rollouts::{self, Preset, Rollout, RolloutPlan};
use crate::updates::{self, Update, UpdateFailure, UpdateState};
use crate::validate;

/// Why a rollout is paused.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum PauseKind {
    /// It paused itself: its error limit was crossed.
    ErrorLimit,
    /// A wave finished and the plan asks for approval before the next (`pause_after_wave`).
    AfterWave,
    /// The admin paused it by hand.
    Admin,
}

/// Where a deployment stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// Some device it targets is offered the image or updating.
    Active,
    /// Every device it targets is done or given up; it goes on targeting them.
    Completed,
    /// A rollout held by its error limit, after a wave for approval, or by the admin: no device
    /// is offered its image until it is resumed ([`crate::rollouts`]). It goes on targeting its
    /// devices.
    Paused,
    /// Stopped by the admin or superseded; it targets nothing.
    Stopped,
}

/// How the devices a deployment covers stand, by the status bar's buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    /// Running the image.
    pub done: i64,
    /// Downloading, verifying, flashing, rebooting or installing it.
    pub in_progress: i64,
    /// Offered (at their next check), or not yet known to take it.
    pub waiting: i64,
    /// Given up after the attempt limit.
    pub failed: i64,
    /// Not offered, for a reason (newer version, other chip or project, too big, ...).
    pub held: i64,
    /// Targeted by a newer deployment now.
    pub superseded: i64,
}

impl Tally {
    fn add(&mut self, v: &Verdict) {
        match v {
            Verdict::AlreadyRunning => self.done += 1,
            Verdict::InProgress { state, .. } if *state != UpdateState::Offered => {
                self.in_progress += 1
            }
            Verdict::Offer
            | Verdict::InProgress { .. }
            | Verdict::Waiting { .. }
            | Verdict::WaitingForWave { .. }
            | Verdict::Paused { .. }
            | Verdict::Queued { .. } => self.waiting += 1,
            Verdict::Failed { .. } => self.failed += 1,
            Verdict::Superseded { .. } => self.superseded += 1,
            _ => self.held += 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Deployment {
    pub id: i64,
    pub firmware_id: i64,
    /// Set when the deployment covers a whole project (with `chip`).
    pub project: Option<String>,
    pub chip: Option<String>,
    /// Allows installing an older version than the device runs.
    pub rollback: bool,
    /// Allows installing the image on devices of another project.
    pub allow_other_project: bool,
    pub status: DeploymentStatus,
    pub created_at: String,
    /// When it was completed or stopped.
    pub ended_at: Option<String>,
    /// Why it was stopped (or completed).
    pub end_reason: Option<String>,
    /// The rollout plan: waves, thresholds, soak time ([`crate::rollouts`]). `None`: every
    /// device at once.
    #[schema(value_type = Option<RolloutPlan>)]
    pub plan: Option<crate::db::Json<RolloutPlan>>,
    /// The newest wave started (1 without a plan).
    pub wave: i64,
    pub wave_started_at: Option<String>,
    pub paused_at: Option<String>,
    /// Why it is paused.
    pub pause_reason: Option<String>,
    /// Why it is paused: by itself at its error limit, after a wave for approval, or by the
    /// admin; null while it is not paused.
    #[sqlx(default)]
    pub pause_kind: Option<PauseKind>,
    /// Explicit device list (empty for project-wide deployments).
    #[sqlx(skip)]
    pub devices: Vec<String>,
    /// How many known devices it covers now.
    #[sqlx(skip)]
    pub reach: i64,
    /// How they stand.
    #[sqlx(skip)]
    pub tally: Tally,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    pub firmware_id: i64,
    /// Explicit MAC addresses. When absent, the deployment covers `project` + `chip`.
    pub devices: Option<Vec<String>>,
    /// Defaults to the image's project.
    pub project: Option<String>,
    /// Defaults to the image's chip; must match it.
    pub chip: Option<String>,
    /// Install an older version than a device runs.
    #[serde(default)]
    pub rollback: bool,
    /// Install the image on devices that run another project (the device then belongs to the
    /// image's project). Without it, a deployment that would do so is refused with
    /// `other_project` (409), naming the devices.
    #[serde(default)]
    pub allow_other_project: bool,
    /// Only plan: the same as `?dry_run=true`.
    #[serde(default)]
    pub dry_run: bool,
    /// Offer the image wave by wave ([`crate::rollouts`]); absent (and no `preset`): every
    /// device at once.
    pub plan: Option<RolloutPlan>,
    /// A named plan instead of `plan`: `canary`, `all_at_once`, `one_at_a_time`.
    pub preset: Option<Preset>,
}

impl NewDeployment {
    /// The plan it asks for, checked: `plan` or `preset` (not both).
    pub fn rollout_plan(&self) -> Result<Option<RolloutPlan>> {
        let plan = match (&self.plan, self.preset) {
            (Some(_), Some(_)) => {
                return Err(CoreError::invalid(
                    "invalid_plan",
                    "give a plan or a preset, not both",
                ))
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(p)) => Some(p.plan()),
            (None, None) => None,
        };
        if let Some(p) = &plan {
            p.validate()?;
        }
        Ok(plan)
    }
}

/// One covered device and what it gets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceVerdict {
    pub mac: String,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub project: Option<String>,
    pub version: Option<String>,
    pub verdict: Verdict,
    /// Why, in a sentence (also for `offer`).
    pub reason: String,
    /// The device's latest attempt in this deployment.
    pub update: Option<Update>,
}

/// Devices that share a verdict.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerdictGroup {
    pub kind: VerdictKind,
    pub count: i64,
    pub devices: Vec<DeviceVerdict>,
}

/// A deployment dry run: what each device it would cover would get.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Plan {
    pub firmware_id: i64,
    pub project: Option<String>,
    pub chip: Option<String>,
    pub rollback: bool,
    pub allow_other_project: bool,
    /// Devices it would cover.
    pub reach: i64,
    /// Devices that would be offered the image (or are already getting it).
    pub offered: i64,
    /// One group per verdict, largest first.
    pub groups: Vec<VerdictGroup>,
    /// Older deployments this one would stop (every device of theirs is covered by it).
    pub supersedes: Vec<i64>,
    /// Live deployments (rollouts among them) that would go on but also cover some of its
    /// devices: those devices follow this one, the newest. Largest overlap first.
    pub overlaps: Vec<Overlap>,
    /// With a plan: the waves it would make, device by device.
    pub rollout: Option<Rollout>,
}

/// A live deployment that shares devices with a planned one ([`Plan::overlaps`]).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Overlap {
    pub deployment_id: i64,
    /// It is a staged rollout (it has a plan).
    pub rollout: bool,
    /// How many of the planned deployment's devices it covers too.
    pub devices: i64,
}

/// A deployment and every device it covers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeploymentDetail {
    pub deployment: Deployment,
    pub devices: Vec<DeviceVerdict>,
    /// Its waves and where each device stands in them, for a rollout with a plan.
    pub rollout: Option<Rollout>,
}

/// The coverage rule as SQL over the deployment `d`, for a device given by three SQL
/// expressions: deployments that name the device, or (naming none) cover its project and chip.
/// A device of the project whose chip is not known yet is covered too, so that the deployment
/// can say why it gets nothing. One text for the check-in ([`updates::target_for`]) and the
/// bulk reads here.
pub(crate) fn covers(d: &str, mac: &str, project: &str, chip: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM deployment_devices cd WHERE cd.deployment_id = {d}.id AND cd.mac = {mac}) \
         OR ({d}.project IS NOT NULL AND {d}.project = {project} AND ({chip} IS NULL OR {d}.chip = {chip}) \
             AND NOT EXISTS (SELECT 1 FROM deployment_devices cd WHERE cd.deployment_id = {d}.id)))"
    )
}

pub(crate) async fn list(db: &Db) -> Result<Vec<Deployment>> {
    let mut conn = db.acquire().await?;
    let rows: Vec<Deployment> = db::query_as("SELECT * FROM deployments ORDER BY id DESC")
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        out.push(fill(&mut conn, d).await?.0);
    }
    Ok(out)
}

/// The deployments that are not stopped, newest first, without their tallies (cheap).
pub(crate) async fn live(conn: &mut Conn) -> Result<Vec<Deployment>> {
    let rows: Vec<Deployment> =
        db::query_as("SELECT * FROM deployments WHERE status != 'stopped' ORDER BY id DESC")
            .fetch_all(&mut *conn)
            .await?;
    // Every list in one read (an esp32FOTA manifest asks this, and the legacy API makes a
    // deployment per device): not a statement per deployment.
    let pairs: Vec<(i64, String)> = db::query_as(
        "SELECT dd.deployment_id, dd.mac FROM deployment_devices dd \
         JOIN deployments d ON d.id = dd.deployment_id \
         WHERE d.status != 'stopped' ORDER BY dd.deployment_id, dd.mac",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut lists: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, mac) in pairs {
        lists.entry(id).or_default().push(mac);
    }
    let mut out = Vec::with_capacity(rows.len());
    for mut d in rows {
        d.devices = lists.remove(&d.id).unwrap_or_default();
        out.push(d);
    }
    Ok(out)
}

pub(crate) async fn get(db: &Db, id: i64) -> Result<Deployment> {
    let mut conn = db.acquire().await?;
    let d = row(&mut conn, id).await?;
    Ok(fill(&mut conn, d).await?.0)
}

pub(crate) async fn detail(db: &Db, id: i64) -> Result<DeploymentDetail> {
    let mut conn = db.acquire().await?;
    let d = row(&mut conn, id).await?;
    let (deployment, devices) = fill(&mut conn, d).await?;
    let rollout = rollouts::view(&mut conn, id, &devices).await?;
    Ok(DeploymentDetail {
        deployment,
        devices,
        rollout,
    })
}

async fn row(conn: &mut Conn, id: i64) -> Result<Deployment> {
    db::query_as("SELECT * FROM deployments WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("deployment {id}")))
}

async fn explicit_devices(conn: &mut Conn, id: i64) -> Result<Vec<String>> {
    db::query_scalar("SELECT mac FROM deployment_devices WHERE deployment_id = ? ORDER BY mac")
        .bind(id)
        .fetch_all(&mut *conn)
        .await
}

/// Fill the derived fields, and the verdict of every device it covers.
async fn fill(conn: &mut Conn, mut d: Deployment) -> Result<(Deployment, Vec<DeviceVerdict>)> {
    d.devices = explicit_devices(conn, d.id).await?;
    let verdicts = evaluate(conn, &d, None).await?;
    d.reach = verdicts.len() as i64;
    d.tally = Tally::default();
    for v in &verdicts {
        d.tally.add(&v.verdict);
    }
    Ok((d, verdicts))
}

/// The attempts a project-wide deployment's verdicts read: its own, and every open one (through
/// the partial index of open attempts). A project-wide deployment covers most of the fleet, so
/// the open attempts of devices outside it are few to read and cheaper than naming the devices.
pub(crate) const OPEN_ATTEMPTS_PROJECT_WIDE: &str =
    "SELECT * FROM updates WHERE deployment_id = ?1 \
     UNION ALL \
     SELECT * FROM updates INDEXED BY updates_open_by_deployment \
         WHERE state NOT IN ('done', 'failed', 'cancelled') \
         AND deployment_id IS DISTINCT FROM ?1 \
     ORDER BY id DESC";

/// The attempts the verdicts of a deployment that names its devices read: its own, and the open
/// ones of the devices it names, each found through that device's attempts (`updates_mac`). Not
/// every open attempt of the fleet: the legacy admin API makes a deployment per device, and a
/// release that supersedes a thousand of them reads each one's verdicts while every other device
/// has an attempt open, so reading the whole fleet's here made that release O(deployments ×
/// fleet).
pub(crate) const OPEN_ATTEMPTS_OF_NAMED_DEVICES: &str =
    "SELECT * FROM updates WHERE deployment_id = ?1 \
     UNION ALL \
     SELECT u.* FROM deployment_devices dd JOIN updates u INDEXED BY updates_mac ON u.mac = dd.mac \
         WHERE dd.deployment_id = ?1 \
         AND u.state NOT IN ('done', 'failed', 'cancelled') \
         AND u.deployment_id IS DISTINCT FROM ?1 \
     ORDER BY id DESC";

/// The attempts the verdicts of a few devices (`?2`, a JSON array of MACs) read: each one's own
/// in this deployment and its open ones, through its attempts (`updates_mac`).
fn attempts_of_these_devices(backend: Backend) -> String {
    format!(
        "SELECT u.* FROM {} JOIN updates u INDEXED BY updates_mac ON u.mac = j.value \
         WHERE u.deployment_id = ?1 OR u.state NOT IN ('done', 'failed', 'cancelled') \
         ORDER BY u.id DESC",
        backend.text_elements("?2", "j")
    )
}

/// The devices deployment `d` covers, each with the deployment that targets it now, and what it
/// gets from `d`. An esp32FOTA device that never said its project is listed under a
/// project-wide deployment: the manifest offers it the project's entry. `only`: just these
/// devices (those of them it does not cover are left out) — a rollout's step weighs only its
/// undecided members.
async fn evaluate(
    conn: &mut Conn,
    d: &Deployment,
    only: Option<&[String]>,
) -> Result<Vec<DeviceVerdict>> {
    let fw: Option<Firmware> =
        db::query_as("SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware WHERE id = ?")
            .bind(d.firmware_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(fw) = fw else {
        return Ok(Vec::new());
    };
    // Whether it names its devices, asked of the list itself: `d.devices` is not filled yet for
    // a step's few devices.
    let explicit: bool = db::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM deployment_devices WHERE deployment_id = ?)",
    )
    .bind(d.id)
    .fetch_one(&mut *conn)
    .await?;
    let rows = devices::covered_by(
        conn,
        d.id,
        explicit,
        &covers("d", "dev.mac", "dev.project", "dev.chip"),
        &covers("t", "dev.mac", "dev.project", "dev.chip"),
        only,
    )
    .await?;
    // Every attempt these devices' verdicts read: this deployment's, and any unfinished one of
    // a device it covers. Two indexed reads rather than an OR that reads every attempt ever made.
    let attempts: Vec<Update> = match only {
        Some(macs) => {
            db::query_as(&attempts_of_these_devices(conn.backend()))
                .bind(d.id)
                .bind(crate::db::Json(macs))
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            db::query_as(if !explicit {
                OPEN_ATTEMPTS_PROJECT_WIDE
            } else {
                OPEN_ATTEMPTS_OF_NAMED_DEVICES
            })
            .bind(d.id)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut by_mac: HashMap<&str, Vec<Update>> = HashMap::new();
    for u in &attempts {
        by_mac.entry(u.mac.as_str()).or_default().push(u.clone());
    }
    let rule = Rule {
        deployment_id: d.id,
        rollback: d.rollback,
        allow_other_project: d.allow_other_project,
    };
    // A rollout's gate: each device's wave, and how many devices update now.
    let rollout = rollouts::row(conn, d.id).await?;
    let stage = rollout.as_ref().and_then(|r| r.stage());
    let paused_without_plan = rollout
        .as_ref()
        .filter(|r| r.plan.is_none())
        .and_then(|r| r.paused());
    let (waves, updating) = match &stage {
        Some(_) => (
            rollouts::waves_of(conn, d.id).await?,
            rollouts::updating(conn, d.id, "").await?,
        ),
        None => Default::default(),
    };
    let mut out = Vec::with_capacity(rows.len());
    for (dev, target) in rows {
        let history = by_mac.remove(dev.mac.as_str()).unwrap_or_default();
        let verdict = match target {
            Some(t) if t > d.id && d.status != DeploymentStatus::Stopped => {
                Verdict::Superseded { by: t }
            }
            _ => {
                let v = offer::verdict(&dev, &rule, &fw, &history);
                match &stage {
                    Some(stage) => {
                        let wave = waves
                            .get(&dev.mac)
                            .copied()
                            .unwrap_or_else(|| rollouts::late_wave(stage.current, stage.waves));
                        rollouts::gate(v, stage, wave, updating)
                    }
                    None => match &paused_without_plan {
                        Some(reason) if v == Verdict::Offer => Verdict::Paused {
                            reason: reason.clone(),
                        },
                        _ => v,
                    },
                }
            }
        };
        let update = history
            .iter()
            .filter(|u| u.deployment_id == Some(d.id))
            .max_by_key(|u| u.id)
            .cloned();
        out.push(DeviceVerdict {
            reason: verdict.reason(),
            name: dev.shown_name().0,
            mac: dev.mac,
            protocol: dev.protocol,
            project: dev.project,
            version: dev.version,
            verdict,
            update,
        });
    }
    Ok(out)
}

/// The image, project and chip of a new deployment, and its explicit devices, checked.
async fn check(
    conn: &mut Conn,
    new: &NewDeployment,
) -> Result<(Firmware, Option<String>, Option<String>, Vec<String>)> {
    let fw: Firmware =
        db::query_as("SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware WHERE id = ?")
            .bind(new.firmware_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| {
                CoreError::invalid(
                    "unknown_firmware",
                    format!("there is no firmware {} in the library", new.firmware_id),
                )
            })?;
    if let Some(chip) = new.chip.as_deref() {
        let chip = crate::devices::chip(chip)?;
        if chip != fw.chip {
            return Err(CoreError::invalid(
                "chip_mismatch",
                format!("firmware {} is built for {}, not {chip}", fw.id, fw.chip),
            ));
        }
    }
    let mut macs = Vec::new();
    match &new.devices {
        Some(list) => {
            if list.is_empty() {
                return Err(CoreError::invalid(
                    "no_devices",
                    "the device list is empty; name at least one device or leave the list out to deploy to the whole project",
                ));
            }
            for m in list {
                let mac = validate::mac(m)?;
                let chip = devices::chip_of(conn, &mac).await?;
                match chip {
                    None => {
                        return Err(CoreError::invalid(
                            "unknown_device",
                            format!("there is no device {mac}; add it or let it check in first"),
                        ))
                    }
                    Some(Some(c)) if c != fw.chip => {
                        return Err(CoreError::invalid(
                            "chip_mismatch",
                            format!(
                                "device {mac} is an {c}; firmware {} is built for {}",
                                fw.id, fw.chip
                            ),
                        ))
                    }
                    _ => {}
                }
                if !macs.contains(&mac) {
                    macs.push(mac);
                }
            }
            Ok((fw, None, None, macs))
        }
        None => {
            let project = match new.project.as_deref() {
                Some(p) => validate::project(p)?,
                None => fw.project.clone().ok_or_else(|| {
                    CoreError::invalid(
                        "no_project",
                        format!(
                            "firmware {} has no project name; name the devices, or give a project",
                            fw.id
                        ),
                    )
                })?,
            };
            let chip = Some(fw.chip.clone());
            Ok((fw, Some(project), chip, macs))
        }
    }
}

/// Insert the deployment and stop the older ones it covers entirely. Returns its id, the ids it
/// superseded and the attempts their stopping closed.
async fn insert(
    conn: &mut Conn,
    new: &NewDeployment,
    fw: &Firmware,
    project: &Option<String>,
    chip: &Option<String>,
    macs: &[String],
) -> Result<(i64, Vec<i64>, Vec<Update>)> {
    let now = crate::time::now();
    let id: i64 = db::query_scalar(
        "INSERT INTO deployments (firmware_id, project, chip, rollback, allow_other_project, status, created_at) \
         VALUES (?,?,?,?,?,'active',?) RETURNING id",
    )
    .bind(fw.id)
    .bind(project)
    .bind(chip)
    .bind(new.rollback)
    .bind(new.allow_other_project)
    .bind(&now)
    .fetch_one(&mut *conn)
    .await?;
    for mac in macs {
        db::query("INSERT INTO deployment_devices (deployment_id, mac) VALUES (?, ?)")
            .bind(id)
            .bind(mac)
            .execute(&mut *conn)
            .await?;
    }
    // An older deployment is superseded when the new one covers everything it could cover: the
    // same project and chip (project-wide), or every device it names.
    let older: Vec<i64> = db::query_scalar(
        "SELECT o.id FROM deployments o WHERE o.id != ?1 AND o.status != 'stopped' AND ( \
           (?2 IS NOT NULL AND o.project = ?2 AND o.chip = ?3) \
           OR (EXISTS (SELECT 1 FROM deployment_devices od WHERE od.deployment_id = o.id) \
               AND NOT EXISTS (SELECT 1 FROM deployment_devices od JOIN devices dev ON dev.mac = od.mac \
                   WHERE od.deployment_id = o.id AND NOT ( \
                     EXISTS (SELECT 1 FROM deployment_devices nd WHERE nd.deployment_id = ?1 AND nd.mac = od.mac) \
                     OR COALESCE(?2 IS NOT NULL AND dev.project = ?2 AND (dev.chip IS NULL OR dev.chip = ?3), FALSE)))))",
    )
    .bind(id)
    .bind(project)
    .bind(chip)
    .fetch_all(&mut *conn)
    .await?;
    if let Some(plan) = new.rollout_plan()? {
        let rows = devices::covered_by(
            conn,
            id,
            !macs.is_empty(),
            &covers("d", "dev.mac", "dev.project", "dev.chip"),
            &covers("t", "dev.mac", "dev.project", "dev.chip"),
            None,
        )
        .await?;
        let candidates: Vec<rollouts::Candidate<'_>> = rows
            .iter()
            .map(|(dev, _)| rollouts::Candidate {
                mac: &dev.mac,
                tags: &dev.tags.0,
            })
            .collect();
        rollouts::start(conn, id, &plan, &candidates).await?;
    }
    let mut closed = Vec::new();
    for o in &older {
        closed.extend(
            end(
                conn,
                *o,
                DeploymentStatus::Stopped,
                &format!("superseded by deployment {id}"),
                UpdateFailure::Superseded,
            )
            .await?,
        );
    }
    Ok((id, older, closed))
}

/// End a deployment as `status`; stopping closes its attempts that had not started, as
/// `cancelled` with `why` (stopped by the admin, or superseded) and `reason` in their text.
async fn end(
    conn: &mut Conn,
    id: i64,
    status: DeploymentStatus,
    reason: &str,
    why: UpdateFailure,
) -> Result<Vec<Update>> {
    Ok(end_cutting(conn, id, status, reason, why, false)
        .await?
        .into_iter()
        .map(|(u, _)| u)
        .collect())
}

/// [`end`], and with `downloads` also close the attempts downloading (the caller cuts their
/// bodies): each closed attempt with whether it was downloading.
async fn end_cutting(
    conn: &mut Conn,
    id: i64,
    status: DeploymentStatus,
    reason: &str,
    why: UpdateFailure,
    downloads: bool,
) -> Result<Vec<(Update, bool)>> {
    db::query("UPDATE deployments SET status = ?, ended_at = ?, end_reason = ? WHERE id = ?")
        .bind(status)
        .bind(crate::time::now())
        .bind(reason)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if status != DeploymentStatus::Stopped {
        return Ok(Vec::new());
    }
    let open: Vec<(i64, bool)> = db::query_as(
        "SELECT id, state = 'downloading' FROM updates WHERE deployment_id = ? \
         AND (state IN ('offered','interrupted') OR (? AND state = 'downloading'))",
    )
    .bind(id)
    .bind(downloads)
    .fetch_all(&mut *conn)
    .await?;
    // "deployment 4 was stopped by the admin before …", "… was superseded by deployment 7 …".
    let before = format!("deployment {id} was {reason} before this attempt started");
    let during = format!(
        "deployment {id} was {reason} while this attempt downloaded: the download was cut, and the device keeps the image it runs"
    );
    let mut closed = Vec::with_capacity(open.len());
    for (u, downloading) in open {
        let text = if downloading { &during } else { &before };
        closed.push((
            updates::set_state(
                conn,
                u,
                UpdateState::Cancelled,
                0,
                updates::Why::failed(why, text),
            )
            .await?,
            downloading,
        ));
    }
    Ok(closed)
}

fn group(verdicts: Vec<DeviceVerdict>) -> Vec<VerdictGroup> {
    let mut by: BTreeMap<VerdictKind, Vec<DeviceVerdict>> = BTreeMap::new();
    for v in verdicts {
        by.entry(v.verdict.kind()).or_default().push(v);
    }
    let mut groups: Vec<VerdictGroup> = by
        .into_iter()
        .map(|(kind, devices)| VerdictGroup {
            kind,
            count: devices.len() as i64,
            devices,
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
    groups
}

/// What a deployment would do, device by device, without storing anything.
pub(crate) async fn plan(db: &Db, new: &NewDeployment) -> Result<Plan> {
    let mut tx = crate::db::begin_write(db).await?;
    let (fw, project, chip, macs) = check(&mut tx, new).await?;
    let (id, supersedes, _) = insert(&mut tx, new, &fw, &project, &chip, &macs).await?;
    let d = row(&mut tx, id).await?;
    let verdicts = evaluate(&mut tx, &d, None).await?;
    let rollout = rollouts::view(&mut tx, id, &verdicts).await?;
    // Inside the transaction: the deployments it supersedes are stopped here already.
    let macs: Vec<&str> = verdicts.iter().map(|v| v.mac.as_str()).collect();
    let overlaps: Vec<Overlap> = db::query_as(&format!(
        "SELECT o.id AS deployment_id, o.plan IS NOT NULL AS rollout, COUNT(*) AS devices \
         FROM {} JOIN devices dev ON dev.mac = j.value \
         JOIN deployments o ON o.id != ?2 AND o.status != 'stopped' \
         WHERE {} GROUP BY o.id ORDER BY devices DESC, o.id DESC",
        tx.backend().text_elements("?1", "j"),
        covers("o", "dev.mac", "dev.project", "dev.chip")
    ))
    .bind(crate::db::Json(&macs))
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    tx.rollback().await?;
    let offered = verdicts.iter().filter(|v| v.verdict.offers()).count() as i64;
    Ok(Plan {
        firmware_id: fw.id,
        project,
        chip,
        rollback: new.rollback,
        allow_other_project: new.allow_other_project,
        reach: verdicts.len() as i64,
        offered,
        groups: group(verdicts),
        supersedes,
        overlaps,
        rollout,
    })
}

/// Store a deployment. Refused with `other_project` (409) when it would install another
/// project's image on some device and `allow_other_project` is not set. Returns it, the
/// deployments it superseded, and the attempts their stopping closed.
pub(crate) async fn create(
    db: &Db,
    new: &NewDeployment,
) -> Result<(Deployment, Vec<i64>, Vec<Update>)> {
    let mut tx = crate::db::begin_write(db).await?;
    let (fw, project, chip, macs) = check(&mut tx, new).await?;
    let (id, supersedes, closed) = insert(&mut tx, new, &fw, &project, &chip, &macs).await?;
    let d = row(&mut tx, id).await?;
    let (d, verdicts) = fill(&mut tx, d).await?;
    let other: Vec<&DeviceVerdict> = verdicts
        .iter()
        .filter(|v| v.verdict.kind() == VerdictKind::OtherProject)
        .collect();
    if !other.is_empty() {
        let names: Vec<String> = other
            .iter()
            .take(5)
            .map(|v| format!("{} ({})", v.mac, v.project.as_deref().unwrap_or("?")))
            .collect();
        return Err(CoreError::NeedsConsent {
            code: "other_project",
            message: format!(
                "{} run{} another project than the image ({}): {}{}. Installing it on {} needs your consent: tick \"install on devices of another project\" (in the API, allow_other_project: true). Nothing was deployed.",
                if other.len() == 1 { "1 device".to_string() } else { format!("{} devices", other.len()) },
                if other.len() == 1 { "s" } else { "" },
                fw.project.as_deref().unwrap_or("no project"),
                names.join(", "),
                if other.len() > 5 { ", …" } else { "" },
                if other.len() == 1 { "it" } else { "them" },
            ),
        });
    }
    let d = settle_status(&mut tx, d, &verdicts).await?;
    tx.commit().await?;
    Ok((d, supersedes, closed))
}

/// Stop a deployment: devices it covered are no longer offered its image; its unstarted
/// attempts are closed as `cancelled`.
pub(crate) async fn stop(db: &Db, id: i64) -> Result<(Deployment, Vec<(Update, bool)>)> {
    let mut tx = crate::db::begin_write(db).await?;
    let d = row(&mut tx, id).await?;
    if d.status == DeploymentStatus::Stopped {
        return Err(CoreError::conflict(format!(
            "deployment {id} is already stopped"
        )));
    }
    let closed = end_cutting(
        &mut tx,
        id,
        DeploymentStatus::Stopped,
        "stopped by the admin",
        UpdateFailure::Stopped,
        true,
    )
    .await?;
    tx.commit().await?;
    Ok((get(db, id).await?, closed))
}

/// Move `d` between `active` and `completed` as its devices' verdicts say.
async fn settle_status(
    conn: &mut Conn,
    mut d: Deployment,
    verdicts: &[DeviceVerdict],
) -> Result<Deployment> {
    if matches!(
        d.status,
        DeploymentStatus::Stopped | DeploymentStatus::Paused
    ) {
        return Ok(d);
    }
    let pending = verdicts.iter().any(|v| v.verdict.pending());
    let next = if pending {
        DeploymentStatus::Active
    } else {
        DeploymentStatus::Completed
    };
    if next != d.status {
        let (ended, reason) = match next {
            DeploymentStatus::Completed => (
                Some(crate::time::now()),
                Some(format!(
                    "{} done, {} failed, {} held",
                    d.tally.done, d.tally.failed, d.tally.held
                )),
            ),
            _ => (None, None),
        };
        db::query("UPDATE deployments SET status = ?, ended_at = ?, end_reason = ? WHERE id = ?")
            .bind(next)
            .bind(&ended)
            .bind(&reason)
            .bind(d.id)
            .execute(&mut *conn)
            .await?;
        tracing::info!(deployment = d.id, status = ?next, "deployment status changed");
        d.status = next;
        d.ended_at = ended;
        d.end_reason = reason;
    }
    Ok(d)
}

/// Re-read deployment `id` and move it between `active` and `completed`. `Some` when its status
/// changed (for the event).
pub(crate) async fn refresh(conn: &mut Conn, id: i64) -> Result<Option<Deployment>> {
    let Some(d): Option<Deployment> = db::query_as("SELECT * FROM deployments WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    if d.status == DeploymentStatus::Stopped {
        return Ok(None);
    }
    let before = d.status;
    let (d, verdicts) = fill(conn, d).await?;
    let d = settle_status(conn, d, &verdicts).await?;
    Ok((d.status != before).then_some(d))
}

/// The live (not stopped) project-wide deployment of image `firmware_id` that covers `project`,
/// if any: changing the image's project away from `project` would change what it covers.
pub(crate) async fn following_image_project(
    conn: &mut Conn,
    firmware_id: i64,
    project: &str,
) -> Result<Option<i64>> {
    db::query_scalar(
        "SELECT id FROM deployments WHERE firmware_id = ? AND status != 'stopped' AND project = ? \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(firmware_id)
    .bind(project)
    .fetch_optional(conn)
    .await
}

/// After the admin corrected image `firmware_id`'s identity: move the live deployments whose
/// verdicts may have changed between `active` and `completed` — those of the image (its version
/// orders it against what devices run), and those of `projects` (the projects devices running
/// it left and joined). Returns the deployments whose status changed.
pub(crate) async fn after_identity_change(
    conn: &mut Conn,
    firmware_id: i64,
    projects: &[String],
) -> Result<Vec<Deployment>> {
    let ids: Vec<i64> = db::query_scalar(&format!(
        "SELECT id FROM deployments WHERE status != 'stopped' \
         AND (firmware_id = ?1 OR project IN (SELECT value FROM {})) ORDER BY id",
        conn.backend().text_elements("?2", "p")
    ))
    .bind(firmware_id)
    .bind(crate::db::Json(projects))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for id in ids {
        out.extend(refresh(conn, id).await?);
    }
    Ok(out)
}

/// A new attempt for every device of deployment `id` that reached the attempt limit (or only
/// `mac`): the limit counts afresh from it. Returns the attempts opened.
pub(crate) async fn retry(
    db: &Db,
    id: i64,
    mac: Option<&str>,
) -> Result<(Vec<Update>, Option<Deployment>)> {
    let mut tx = crate::db::begin_write(db).await?;
    let d = row(&mut tx, id).await?;
    if d.status == DeploymentStatus::Stopped {
        return Err(CoreError::conflict(format!(
            "deployment {id} is stopped; deploy the image again instead"
        )));
    }
    let fw: Firmware =
        db::query_as("SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware WHERE id = ?")
            .bind(d.firmware_id)
            .fetch_one(&mut *tx)
            .await?;
    let (d, verdicts) = fill(&mut tx, d).await?;
    let mut opened = Vec::new();
    for v in &verdicts {
        if mac.is_some_and(|m| m != v.mac) {
            continue;
        }
        match &v.verdict {
            Verdict::Failed { .. } => {}
            other if mac.is_some() => {
                return Err(CoreError::conflict(format!(
                    "device {} has nothing to retry in deployment {id}: {}",
                    v.mac,
                    other.reason()
                )))
            }
            _ => continue,
        }
        let device = devices::load(&mut tx, &v.mac).await?;
        opened.push(updates::open_attempt(&mut tx, &device, &fw, id, true).await?);
    }
    if let (Some(m), true) = (mac, opened.is_empty()) {
        return Err(CoreError::not_found(format!(
            "device {m} in deployment {id}"
        )));
    }
    let changed = refresh(&mut tx, d.id).await?;
    tx.commit().await?;
    Ok((opened, changed))
}

/// The deployment that targets `mac` now (the newest that covers it and was not stopped).
pub(crate) async fn target_of(db: &Db, device: &Device) -> Result<Option<i64>> {
    let mut conn = db.acquire().await?;
    Ok(updates::target_for(&mut conn, device)
        .await?
        .map(|(rule, _)| rule.deployment_id))
}

/// After a check-in, progress report or download changed attempts: move the deployments they
/// belong to between `active` and `completed`. `applied` is the deployment the device's verdict
/// came from, when it offered nothing (a device found done or given up may complete it).
/// Returns the deployments whose status changed.
pub(crate) async fn after_change(
    conn: &mut Conn,
    changed: &[Update],
    applied: Option<i64>,
) -> Result<Vec<Deployment>> {
    let mut ids: Vec<i64> = changed
        .iter()
        .filter(|u| u.is_finished())
        .filter_map(|u| u.deployment_id)
        .collect();
    if let Some(id) = applied {
        let active: Option<i64> =
            db::query_scalar("SELECT id FROM deployments WHERE id = ? AND status = 'active'")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        ids.extend(active);
    }
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    // A failed attempt of a rollout may cross its error limit: decided now, in this
    // transaction, so the pause is part of the change that caused it.
    let mut failed: Vec<i64> = changed
        .iter()
        .filter(|u| u.state == UpdateState::Failed)
        .filter_map(|u| u.deployment_id)
        .collect();
    failed.sort_unstable();
    failed.dedup();
    for id in failed {
        if let Some(d) = step_rollout(conn, id).await? {
            ids.retain(|i| *i != id);
            out.push(d);
        }
    }
    for id in ids {
        // An active deployment with an attempt under way stays active (that device's verdict is
        // pending), so the whole evaluation — every device it covers, O(fleet) — is skipped: in a
        // release most finished attempts have others still open, and evaluating after each of
        // them made a 10,000-device wave quadratic. The attempt that closes last settles it.
        if stays_active(conn, id).await? {
            continue;
        }
        out.extend(refresh(conn, id).await?);
    }
    Ok(out)
}

/// Let rollout `id` decide its devices' outcomes, pause at its error limit and start its next
/// wave ([`rollouts::step`]). `Some`: the deployment, when anything changed (for the event).
pub(crate) async fn step_rollout(conn: &mut Conn, id: i64) -> Result<Option<Deployment>> {
    if !steps(conn, id).await? {
        return Ok(None);
    }
    let stepped = rollouts::step(conn, id, true).await?;
    if !stepped.changed() {
        return Ok(None);
    }
    let d = row(conn, id).await?;
    let (d, verdicts) = fill(conn, d).await?;
    Ok(Some(settle_status(conn, d, &verdicts).await?))
}

/// Would [`step_rollout`] change anything now? Reads only, so it needs no writer: the periodic
/// step asks this first and takes the writer's lock only when the answer is yes.
pub(crate) async fn rollout_would_step(conn: &mut Conn, id: i64) -> Result<bool> {
    Ok(steps(conn, id).await? && rollouts::step(conn, id, false).await?.changed())
}

/// Rollout `id` may have outcomes to decide: it has a plan and is active, paused (attempts
/// under way may finish) or completed (its last devices may still soak).
async fn steps(conn: &mut Conn, id: i64) -> Result<bool> {
    Ok(rollouts::row(conn, id).await?.is_some_and(|r| {
        r.plan.is_some() && matches!(r.status.as_str(), "active" | "completed" | "paused")
    }))
}

/// The verdicts of a few devices (`macs`) under deployment `id`, by MAC: a rollout's step weighs
/// only its undecided members, not every device the deployment covers.
pub(crate) async fn member_verdicts(
    conn: &mut Conn,
    id: i64,
    macs: &[String],
) -> Result<HashMap<String, Verdict>> {
    if macs.is_empty() {
        return Ok(HashMap::new());
    }
    let d = row(conn, id).await?;
    Ok(evaluate(conn, &d, Some(macs))
        .await?
        .into_iter()
        .map(|v| (v.mac, v.verdict))
        .collect())
}

/// Deployment `id` is active and has an attempt under way (through the partial index of open
/// attempts, whatever the number of finished ones).
async fn stays_active(conn: &mut Conn, id: i64) -> Result<bool> {
    db::query_scalar(STAYS_ACTIVE)
        .bind(id)
        .fetch_one(conn)
        .await
}

const STAYS_ACTIVE: &str =
    "SELECT EXISTS (SELECT 1 FROM deployments WHERE id = ?1 AND status = 'active') \
    AND EXISTS (SELECT 1 FROM updates WHERE deployment_id = ?1 \
        AND state NOT IN ('done', 'failed', 'cancelled'))";

/// What the deployment that targets a device now gives it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceTarget {
    pub deployment_id: i64,
    pub firmware_id: i64,
    pub version: Option<String>,
    pub verdict: Verdict,
    /// Why, in a sentence.
    pub reason: String,
}

/// The deployment that targets `device` now and its verdict; `None` when none covers it.
pub(crate) async fn target_verdict(db: &Db, device: &Device) -> Result<Option<DeviceTarget>> {
    let mut conn = db.acquire().await?;
    let Some((rule, fw)) = updates::target_for(&mut conn, device).await? else {
        return Ok(None);
    };
    let history = updates::recent(&mut conn, &device.mac).await?;
    let verdict = offer::verdict(device, &rule, &fw, &history);
    let verdict =
        rollouts::gated(&mut conn, rule.deployment_id, &device.mac, verdict, false).await?;
    Ok(Some(DeviceTarget {
        deployment_id: rule.deployment_id,
        firmware_id: fw.id,
        version: fw.version,
        reason: verdict.reason(),
        verdict,
    }))
}

#[cfg(test)]
mod tests {
    use crate::{Fleet, Settings};

    /// SQLite's query plan for `sql` (its one parameter bound to 1) over a freshly migrated
    /// database, one step per `; `.
    async fn plan_of(sql: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
        let rows: Vec<(i64, i64, i64, String)> =
            crate::db::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind(1_i64)
                .fetch_all(fleet.db())
                .await
                .unwrap();
        fleet.close().await;
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
    }

    #[tokio::test]
    async fn sqlite_whether_a_deployment_has_an_attempt_under_way_reads_only_open_attempts() {
        let plan = plan_of(super::STAYS_ACTIVE).await;
        assert!(
            plan.contains("updates_open_by_deployment"),
            "the open-attempt check must search the index of open attempts, not read every finished one: {plan}"
        );
    }

    #[tokio::test]
    async fn sqlite_a_deployment_that_names_its_devices_reads_only_their_attempts() {
        let plan = plan_of(super::OPEN_ATTEMPTS_OF_NAMED_DEVICES).await;
        // A release that supersedes a thousand one-device deployments (the legacy admin API makes
        // one per device) reads each one's verdicts while the rest of the fleet has attempts open:
        // reading the fleet's open attempts each time made it deployments × fleet.
        assert!(
            plan.contains("updates_mac") && !plan.contains("updates_open_by_deployment"),
            "the open attempts of a deployment's named devices must be found through each device's attempts, not by reading every open attempt: {plan}"
        );
        assert!(
            !plan.contains("SCAN u") && !plan.contains("SCAN updates"),
            "no attempt table scan: {plan}"
        );
    }
}
