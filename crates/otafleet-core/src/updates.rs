//! Updates: one row per attempt to bring one device onto one image.
//!
//! Whether a device is offered an image is [`crate::offer::verdict`]'s rule; [`decide`] applies
//! it to the device's target ([`target_for`]: the newest deployment that covers it and was not
//! stopped) and opens or reuses the attempt.
//!
//! States ([`UpdateState`]): `offered → downloading → verifying → flashing → rebooting → done`,
//! or `failed` with a reason; clients that report nothing move through `downloading →
//! installing` (bytes counted by the server) or `interrupted`; `cancelled` closes an attempt
//! whose deployment was stopped or replaced before it started. `done` is set only by
//! [`reconcile`], when the device checks in running the new image.
//!
//! Every attempt that becomes `failed` or `cancelled` (and a stock client's `interrupted` pass)
//! carries an [`UpdateFailure`] next to its human `error` text, written by the same call that
//! sets the state ([`set_state`]), so nobody reads the kind out of the text.

use std::collections::HashMap;

use crate::db::{Conn, Db};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::devices::Device;
use crate::error::{CoreError, Result};
use crate::firmware::Firmware;
use crate::offer::{self, Rule, Verdict};

/// Where one attempt stands. Stored as its lowercase name (`updates.state`); the UI gets these
/// variants through the OpenAPI document.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum UpdateState {
    /// Offered at a check-in; the device has not started (or, a stock client, not asked) yet.
    Offered,
    Downloading,
    Verifying,
    Flashing,
    /// The device flashed the image and is restarting; its next check-in confirms.
    Rebooting,
    /// A stock client received the whole image (counted by the server) and is installing it.
    Installing,
    /// A stock client's download was cut; it starts over at its next check.
    Interrupted,
    /// The device checked in running the image.
    Done,
    Failed,
    /// Closed without an outcome: its deployment was stopped or replaced before it started.
    Cancelled,
}

impl UpdateState {
    pub const ALL: [UpdateState; 10] = [
        UpdateState::Offered,
        UpdateState::Downloading,
        UpdateState::Verifying,
        UpdateState::Flashing,
        UpdateState::Rebooting,
        UpdateState::Installing,
        UpdateState::Interrupted,
        UpdateState::Done,
        UpdateState::Failed,
        UpdateState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Offered => "offered",
            UpdateState::Downloading => "downloading",
            UpdateState::Verifying => "verifying",
            UpdateState::Flashing => "flashing",
            UpdateState::Rebooting => "rebooting",
            UpdateState::Installing => "installing",
            UpdateState::Interrupted => "interrupted",
            UpdateState::Done => "done",
            UpdateState::Failed => "failed",
            UpdateState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Nothing more happens to an attempt in this state.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            UpdateState::Done | UpdateState::Failed | UpdateState::Cancelled
        )
    }

    /// How far along its lifecycle an attempt is: `offered` 0, `downloading` (and a stock
    /// client's `interrupted` download) 1, `verifying` 2, `flashing` 3, `rebooting` (and a stock
    /// client's `installing`) 4, finished 5. A device's report may keep an update where it is or
    /// move it on, never back: a late `flashing` must not hide that the device already rebooted.
    pub fn stage(self) -> u8 {
        match self {
            UpdateState::Offered => 0,
            UpdateState::Downloading | UpdateState::Interrupted => 1,
            UpdateState::Verifying => 2,
            UpdateState::Flashing => 3,
            UpdateState::Rebooting | UpdateState::Installing => 4,
            UpdateState::Done | UpdateState::Failed | UpdateState::Cancelled => 5,
        }
    }
}

impl std::fmt::Display for UpdateState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for UpdateState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why an attempt failed, was cancelled, or (a stock client's) download was cut: a stable kind
/// for clients to branch on (the UI maps each to a hint), next to the human `error` text.
/// Stored by name (`updates.failure`, migration 0016).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum UpdateFailure {
    /// `failed`: the device reported the failure itself (native progress `failed`); `error`
    /// holds its words.
    DeviceReported,
    /// `failed`: a native device reported `rebooting` (or `done`) and then checked in still
    /// running the previous image: the new image did not boot, or the bootloader rolled back.
    RolledBack,
    /// `failed`: a stock client received the whole image but asked again still running the
    /// previous one: its updater refused the image (MD5 check, flash write) or it did not boot.
    NotInstalled,
    /// `interrupted`: a stock client's download was cut before the whole image was sent; it
    /// starts over at its next check (cleared when it does).
    DownloadCut,
    /// `cancelled`: another deployment's image replaced it before it finished (a newer
    /// deployment superseded its deployment, or now targets the device).
    Superseded,
    /// `cancelled`: the admin stopped its deployment before the device started, or while it
    /// downloaded (the download was cut; the device keeps the image it runs).
    Stopped,
    /// `cancelled`: its image was deleted from the library.
    ImageDeleted,
}

impl UpdateFailure {
    pub const ALL: [UpdateFailure; 7] = [
        UpdateFailure::DeviceReported,
        UpdateFailure::RolledBack,
        UpdateFailure::NotInstalled,
        UpdateFailure::DownloadCut,
        UpdateFailure::Superseded,
        UpdateFailure::Stopped,
        UpdateFailure::ImageDeleted,
    ];
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Update {
    pub id: i64,
    pub mac: String,
    pub firmware_id: Option<i64>,
    pub deployment_id: Option<i64>,
    /// SHA-256 of the image being installed.
    pub sha256: String,
    /// Version of the image being installed.
    pub version: Option<String>,
    pub from_version: Option<String>,
    pub from_sha256: Option<String>,
    pub state: UpdateState,
    /// 0–100.
    pub progress: i64,
    /// Bytes the server has sent for this update (all clients).
    pub bytes_sent: i64,
    /// What went wrong, for a person (the device's own words when it reported the failure).
    pub error: Option<String>,
    /// Why it failed, was cancelled or (a stock client's pass) was cut, as a stable kind; null
    /// while it is under way or once it is done.
    #[sqlx(default)]
    pub failure: Option<UpdateFailure>,
    /// Started by an admin's Retry: the attempt limit counts failures from this attempt on.
    #[sqlx(default)]
    pub retry: bool,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl Update {
    pub fn is_finished(&self) -> bool {
        self.state.is_finished()
    }
}

/// States a device may report over the native protocol.
pub const DEVICE_STATES: &[UpdateState] = &[
    UpdateState::Downloading,
    UpdateState::Verifying,
    UpdateState::Flashing,
    UpdateState::Rebooting,
    UpdateState::Done,
    UpdateState::Failed,
];

pub(crate) async fn get(conn: &mut Conn, id: i64) -> Result<Update> {
    db::query_as("SELECT * FROM updates WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("update {id}")))
}

pub(crate) async fn latest_for(db: &Db, mac: &str) -> Result<Option<Update>> {
    db::query_as("SELECT * FROM updates WHERE mac = ? ORDER BY id DESC LIMIT 1")
        .bind(mac)
        .fetch_optional(db)
        .await
}

pub(crate) async fn history(db: &Db, mac: &str) -> Result<Vec<Update>> {
    db::query_as("SELECT * FROM updates WHERE mac = ? ORDER BY id DESC LIMIT 200")
        .bind(mac)
        .fetch_all(db)
        .await
}

/// The statement behind [`latest_per_device`] (its query plan is tested): for each device whose
/// MAC is in `(?1, ?2]` — a range of the devices' primary key —, its newest attempt, found
/// through `updates_mac (mac, id)` from its end. It reads one attempt per device listed, never
/// the attempts of the whole fleet's history.
pub(crate) const LATEST_PER_DEVICE: &str = "SELECT u.* FROM devices d \
     JOIN updates u ON u.id = (SELECT x.id FROM updates x WHERE x.mac = d.mac ORDER BY x.id DESC LIMIT 1) \
     WHERE d.mac > ?1 AND d.mac <= ?2";

/// The latest attempt of each device whose MAC sorts after `after` and up to `through` (one
/// page of the device list), by MAC.
pub(crate) async fn latest_per_device(
    db: &Db,
    after: &str,
    through: &str,
) -> Result<HashMap<String, Update>> {
    let rows: Vec<Update> = db::query_as(LATEST_PER_DEVICE)
        .bind(after)
        .bind(through)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|u| (u.mac.clone(), u)).collect())
}

/// The newest `done` attempt of each device in deployment `id` (what a rollback undoes).
pub(crate) async fn done_in_deployment(db: &crate::db::Db, id: i64) -> Result<Vec<Update>> {
    db::query_as(
        "SELECT u.* FROM updates u WHERE u.deployment_id = ?1 AND u.state = 'done' \
         AND u.id = (SELECT MAX(x.id) FROM updates x WHERE x.deployment_id = ?1 AND x.mac = u.mac \
             AND x.state = 'done') ORDER BY u.mac",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// The unfinished attempt of a device, if any.
pub(crate) async fn open_for(conn: &mut Conn, mac: &str) -> Result<Option<Update>> {
    db::query_as(
        "SELECT * FROM updates WHERE mac = ? AND state NOT IN ('done','failed','cancelled') ORDER BY id DESC LIMIT 1",
    )
    .bind(mac)
    .fetch_optional(conn)
    .await
}

/// Why an attempt is moved to a state: its kind and text, for `failed`, `cancelled` and
/// `interrupted`; nothing for the others.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Why<'a> {
    pub failure: Option<UpdateFailure>,
    pub error: Option<&'a str>,
}

impl Why<'static> {
    /// No failure (a state on the way, or `done`): clears the kind and the text.
    pub const NONE: Self = Why {
        failure: None,
        error: None,
    };
}

impl<'a> Why<'a> {
    pub fn failed(failure: UpdateFailure, error: &'a str) -> Self {
        Why {
            failure: Some(failure),
            error: Some(error),
        }
    }
}

/// Move an update to a new state, with its failure kind and text (both cleared by
/// [`Why::NONE`]). Finishing states stamp `finished_at`.
pub(crate) async fn set_state(
    conn: &mut Conn,
    id: i64,
    state: UpdateState,
    progress: i64,
    why: Why<'_>,
) -> Result<Update> {
    debug_assert!(
        why.failure.is_some()
            == matches!(
                state,
                UpdateState::Failed | UpdateState::Cancelled | UpdateState::Interrupted
            ),
        "a failed, cancelled or interrupted attempt carries its kind, and only those do"
    );
    let now = crate::time::now();
    let finished = state.is_finished().then_some(now.clone());
    db::query(
        "UPDATE updates SET state = ?, progress = ?, error = ?, failure = ?, updated_at = ?, \
         finished_at = COALESCE(?, finished_at) WHERE id = ?",
    )
    .bind(state)
    .bind(progress.clamp(0, 100))
    .bind(why.error)
    .bind(why.failure)
    .bind(&now)
    .bind(finished)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    get(conn, id).await
}

/// The admin corrected the version of image `firmware_id`: every attempt at it takes it (an
/// attempt's `version` is its image's). Returns the devices whose attempts changed, once each.
pub(crate) async fn set_image_version(
    conn: &mut Conn,
    firmware_id: i64,
    version: &str,
) -> Result<Vec<String>> {
    let mut macs: Vec<String> = db::query_scalar(
        "UPDATE updates SET version = ?1 WHERE firmware_id = ?2 AND version IS DISTINCT FROM ?1 RETURNING mac",
    )
    .bind(version)
    .bind(firmware_id)
    .fetch_all(conn)
    .await?;
    macs.sort();
    macs.dedup();
    Ok(macs)
}

/// Count bytes a server response delivered for an update (clients that report nothing).
pub(crate) async fn add_bytes(conn: &mut Conn, id: i64, bytes: i64, size: i64) -> Result<Update> {
    db::query(
        "UPDATE updates SET bytes_sent = bytes_sent + ?1, \
         progress = CASE WHEN bytes_sent + ?1 >= (CASE WHEN ?2 > 1 THEN ?2 ELSE 1 END) THEN 100 \
                         ELSE ((bytes_sent + ?1) * 100) / (CASE WHEN ?2 > 1 THEN ?2 ELSE 1 END) END, \
         updated_at = ?3 WHERE id = ?4",
    )
    .bind(bytes)
    .bind(size)
    .bind(crate::time::now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    get(conn, id).await
}

/// The image a device should run: the newest deployment that covers it and was not stopped
/// (a completed one still does: it says its devices are done, not that they may drift).
pub(crate) async fn target_for(
    conn: &mut Conn,
    device: &Device,
) -> Result<Option<(Rule, Firmware)>> {
    let row: Option<(i64, bool, bool, i64)> = db::query_as(&format!(
        "SELECT d.id, d.rollback, d.allow_other_project, d.firmware_id FROM deployments d \
         WHERE d.status != 'stopped' AND {} ORDER BY d.id DESC LIMIT 1",
        crate::deployments::covers("d", "?1", "?2", "?3")
    ))
    .bind(&device.mac)
    .bind(&device.project)
    .bind(&device.chip)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((deployment_id, rollback, allow_other_project, firmware_id)) = row else {
        return Ok(None);
    };
    let fw: Option<Firmware> =
        db::query_as("SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware WHERE id = ?")
            .bind(firmware_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(fw.map(|fw| {
        (
            Rule {
                deployment_id,
                rollback,
                allow_other_project,
            },
            fw,
        )
    }))
}

/// The device's recent attempts, newest first: what [`offer::verdict`] reads.
pub(crate) async fn recent(conn: &mut Conn, mac: &str) -> Result<Vec<Update>> {
    db::query_as("SELECT * FROM updates WHERE mac = ? ORDER BY id DESC LIMIT 200")
        .bind(mac)
        .fetch_all(conn)
        .await
}

/// Did this server ever offer this image to this device (an update row for it)?
pub(crate) async fn was_sent(conn: &mut Conn, mac: &str, sha256: &str) -> Result<bool> {
    let found: Option<i64> =
        db::query_scalar("SELECT id FROM updates WHERE mac = ? AND sha256 = ? LIMIT 1")
            .bind(mac)
            .bind(sha256)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Does the device run this image? ([`offer::runs`].)
pub fn runs(device: &Device, fw: &Firmware) -> bool {
    offer::runs(device, fw)
}

/// What to tell a device that asks for an update.
#[derive(Debug)]
pub enum Decision {
    /// Install this image; the update row tracks the attempt.
    Offer {
        update: Box<Update>,
        firmware: Box<Firmware>,
    },
    /// Nothing to do, and why (for logs and the UI). `verdict` is `None` when no deployment
    /// covers the device.
    Nothing {
        reason: String,
        verdict: Option<Verdict>,
    },
}

/// What [`decide`] did: the decision, whether it opened a new attempt, attempts it closed, and
/// the deployment it applied.
#[derive(Debug)]
pub struct Decided {
    pub decision: Decision,
    pub created: bool,
    pub closed: Vec<Update>,
    pub deployment_id: Option<i64>,
}

/// The deployment a "nothing" decision may have settled (moved from active to completed), for
/// [`crate::deployments::after_change`]: `deployment_id` unless the device is still pending
/// under it (waiting for its wave, paused, queued). A pending device keeps its deployment active
/// whatever the others' verdicts, so weighing every device again is skipped — done at each
/// check-in of a rollout's waiting devices it cost O(rollout) per check-in (10,000 devices with 5
/// rollouts fell from ~50,000 to ~25 check-ins a second).
pub(crate) fn settles(verdict: Option<&offer::Verdict>, deployment_id: Option<i64>) -> Option<i64> {
    match verdict {
        Some(v) if v.pending() => None,
        _ => deployment_id,
    }
}

/// Decide whether to offer the device its target image ([`offer::verdict`]), opening (or
/// reusing) the attempt. An unfinished attempt at another image is closed as `cancelled` when
/// the new one opens.
pub(crate) async fn decide(conn: &mut Conn, device: &Device) -> Result<Decided> {
    let Some((rule, fw)) = target_for(conn, device).await? else {
        return Ok(Decided {
            decision: Decision::Nothing {
                reason: "no deployment covers this device".into(),
                verdict: None,
            },
            created: false,
            closed: Vec::new(),
            deployment_id: None,
        });
    };
    let history = recent(conn, &device.mac).await?;
    let verdict = offer::verdict(device, &rule, &fw, &history);
    let verdict =
        crate::rollouts::gated(conn, rule.deployment_id, &device.mac, verdict, true).await?;
    let mut decided = Decided {
        decision: Decision::Nothing {
            reason: verdict.reason(),
            verdict: Some(verdict.clone()),
        },
        created: false,
        closed: Vec::new(),
        deployment_id: Some(rule.deployment_id),
    };
    match verdict {
        Verdict::InProgress { .. } => {
            let open = open_for(conn, &device.mac)
                .await?
                .filter(|u| u.sha256 == fw.sha256);
            if let Some(open) = open {
                decided.decision = Decision::Offer {
                    update: Box::new(open),
                    firmware: Box::new(fw),
                };
            }
        }
        Verdict::Offer => {
            if let Some(open) = open_for(conn, &device.mac).await? {
                // The target changed under an unfinished attempt: that attempt is over.
                let closed = set_state(
                    conn,
                    open.id,
                    UpdateState::Cancelled,
                    open.progress,
                    Why::failed(
                        UpdateFailure::Superseded,
                        &format!(
                            "replaced by deployment {} before it finished",
                            rule.deployment_id
                        ),
                    ),
                )
                .await?;
                decided.closed.push(closed);
            }
            let update = open_attempt(conn, device, &fw, rule.deployment_id, false).await?;
            decided.created = true;
            decided.decision = Decision::Offer {
                update: Box::new(update),
                firmware: Box::new(fw),
            };
        }
        _ => {}
    }
    Ok(decided)
}

/// Open a new attempt at `fw` for `device` in deployment `deployment_id`.
pub(crate) async fn open_attempt(
    conn: &mut Conn,
    device: &Device,
    fw: &Firmware,
    deployment_id: i64,
    retry: bool,
) -> Result<Update> {
    let now = crate::time::now();
    let id: i64 = db::query_scalar(
        "INSERT INTO updates (mac, firmware_id, deployment_id, sha256, version, from_version, from_sha256, \
         state, progress, retry, created_at, updated_at) VALUES (?,?,?,?,?,?,?,'offered',0,?,?,?) RETURNING id",
    )
    .bind(&device.mac)
    .bind(fw.id)
    .bind(deployment_id)
    .bind(&fw.sha256)
    .bind(&fw.version)
    .bind(&device.version)
    .bind(&device.sha256)
    .bind(retry)
    .bind(&now)
    .bind(&now)
    .fetch_one(&mut *conn)
    .await?;
    get(conn, id).await
}

/// Does `device` run the image of update `u`? By hash (whole file, appended digest or MD5) when
/// it reports one, else by version.
async fn runs_update_image(conn: &mut Conn, device: &Device, u: &Update) -> Result<bool> {
    Ok(match device.sha256.as_deref() {
        Some(sha) => {
            sha == u.sha256 || {
                let fw: Option<(Option<String>, String)> =
                    db::query_as("SELECT appended_sha256, md5 FROM firmware WHERE sha256 = ?")
                        .bind(&u.sha256)
                        .fetch_optional(&mut *conn)
                        .await?;
                fw.is_some_and(|(app, md5)| Some(sha) == app.as_deref() || sha == md5)
            }
        }
        None => device.version.is_some() && device.version == u.version,
    })
}

/// An esp32FOTA device fetched again image `sha256`, which its latest attempt was taken to have
/// installed (`done` inferred from its asking again after the whole image was sent: it reports
/// nothing itself): that attempt becomes `failed` (`not_installed`). Returns it; `None` when the
/// latest attempt is not a `done` one at that image.
pub(crate) async fn unconfirm_inferred(
    conn: &mut Conn,
    mac: &str,
    sha256: &str,
) -> Result<Option<Update>> {
    let Some(latest) = recent(conn, mac).await?.into_iter().next() else {
        return Ok(None);
    };
    if latest.state != UpdateState::Done || latest.sha256 != sha256 {
        return Ok(None);
    }
    Ok(Some(
        set_state(
            conn,
            latest.id,
            UpdateState::Failed,
            latest.progress,
            Why::failed(
                UpdateFailure::NotInstalled,
                "the device fetched the image again, so it did not install it: the last bytes sent did not reach it, or its updater refused the image",
            ),
        )
        .await?,
    ))
}

/// A device reported what it runs: finish its open attempt. Running the attempt's image → `done`
/// (and the device's project follows the image). Back on the old image after it had everything
/// it needed to install → `failed`. With no attempt open, a device found running the image of
/// its latest attempt, which had failed or was cancelled, is `done` too: what it runs is the
/// truth, whatever happened before.
pub(crate) async fn reconcile(conn: &mut Conn, device: &Device) -> Result<Option<Update>> {
    let Some(latest) = recent(conn, &device.mac).await?.into_iter().next() else {
        return Ok(None);
    };
    let open = !latest.is_finished();
    if !open && latest.state == UpdateState::Done {
        return Ok(None);
    }
    if runs_update_image(conn, device, &latest).await? {
        let done = set_state(conn, latest.id, UpdateState::Done, 100, Why::NONE).await?;
        crate::devices::follow_image_project(conn, &device.mac, &done.sha256).await?;
        return Ok(Some(done));
    }
    // A native device said it was rebooting into the image; a stock client received all of it.
    let failure = match latest.state {
        _ if !open => None,
        UpdateState::Rebooting => Some(UpdateFailure::RolledBack),
        UpdateState::Installing => Some(UpdateFailure::NotInstalled),
        _ => None,
    };
    if let Some(failure) = failure {
        return Ok(Some(
            set_state(
                conn,
                latest.id,
                UpdateState::Failed,
                latest.progress,
                Why::failed(failure, "device still runs the previous image"),
            )
            .await?,
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
