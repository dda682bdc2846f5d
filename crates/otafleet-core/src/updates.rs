//! Updates: one row per attempt to bring one device onto one image, and the rules that decide
//! whether a device is offered an image at all.
//!
//! Rules ([`decide`]): the newest active deployment that names the device (or covers its project
//! and chip) is its target. A device is offered the target only when it runs a different image,
//! the target is for the same chip, and the target is not older than what the device runs unless
//! the deployment is a rollback. After [`MAX_ATTEMPTS`](crate::settings::MAX_ATTEMPTS) failed
//! attempts at one image the device is left alone, so a broken image does not loop forever.
//!
//! States: `offered → downloading → verifying → flashing → rebooting → done`, or `failed` with a
//! reason; clients that report nothing move through `downloading → installing` (bytes counted by
//! the server) or `interrupted`. `done` is set only by [`reconcile`], when the device checks in
//! running the new image.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::Serialize;
use sqlx::{SqliteConnection, SqlitePool};

use crate::devices::Device;
use crate::error::{CoreError, Result};
use crate::firmware::Firmware;
use crate::settings::MAX_ATTEMPTS;
use crate::validate;

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
    /// `offered`, `downloading`, `verifying`, `flashing`, `rebooting`, `installing`, `interrupted`,
    /// `done` or `failed`.
    pub state: String,
    /// 0–100.
    pub progress: i64,
    /// Bytes the server has sent for this update (all clients).
    pub bytes_sent: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl Update {
    pub fn is_finished(&self) -> bool {
        self.state == "done" || self.state == "failed"
    }
}

/// How far along its lifecycle an update in `state` is: `offered` 0, `downloading` (and a stock
/// client's `interrupted` download) 1, `verifying` 2, `flashing` 3, `rebooting` (and a stock
/// client's `installing`) 4, `done`/`failed` 5. A device's report may keep an update where it is
/// or move it on, never back: a late `flashing` must not hide that the device already rebooted.
pub fn stage(state: &str) -> u8 {
    match state {
        "offered" => 0,
        "downloading" | "interrupted" => 1,
        "verifying" => 2,
        "flashing" => 3,
        "rebooting" | "installing" => 4,
        // `done`, `failed`, and anything unknown: nothing comes after it.
        _ => 5,
    }
}

/// States a device may report over the native protocol.
pub const DEVICE_STATES: &[&str] = &[
    "downloading",
    "verifying",
    "flashing",
    "rebooting",
    "done",
    "failed",
];

pub async fn get(conn: &mut SqliteConnection, id: i64) -> Result<Update> {
    sqlx::query_as("SELECT * FROM updates WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("update {id}")))
}

pub async fn latest_for(db: &SqlitePool, mac: &str) -> Result<Option<Update>> {
    Ok(
        sqlx::query_as("SELECT * FROM updates WHERE mac = ? ORDER BY id DESC LIMIT 1")
            .bind(mac)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn history(db: &SqlitePool, mac: &str) -> Result<Vec<Update>> {
    Ok(
        sqlx::query_as("SELECT * FROM updates WHERE mac = ? ORDER BY id DESC LIMIT 200")
            .bind(mac)
            .fetch_all(db)
            .await?,
    )
}

pub async fn latest_per_device(db: &SqlitePool) -> Result<HashMap<String, Update>> {
    let rows: Vec<Update> = sqlx::query_as(
        "SELECT u.* FROM updates u JOIN (SELECT MAX(id) AS id FROM updates GROUP BY mac) m ON u.id = m.id",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|u| (u.mac.clone(), u)).collect())
}

/// The unfinished attempt of a device, if any.
pub async fn open_for(conn: &mut SqliteConnection, mac: &str) -> Result<Option<Update>> {
    Ok(sqlx::query_as(
        "SELECT * FROM updates WHERE mac = ? AND state NOT IN ('done','failed') ORDER BY id DESC LIMIT 1",
    )
    .bind(mac)
    .fetch_optional(conn)
    .await?)
}

/// Move an update to a new state. Finishing states stamp `finished_at`.
pub async fn set_state(
    conn: &mut SqliteConnection,
    id: i64,
    state: &str,
    progress: i64,
    error: Option<&str>,
) -> Result<Update> {
    let now = crate::time::now();
    let finished = (state == "done" || state == "failed").then_some(now.clone());
    sqlx::query(
        "UPDATE updates SET state = ?, progress = ?, error = ?, updated_at = ?, \
         finished_at = COALESCE(?, finished_at) WHERE id = ?",
    )
    .bind(state)
    .bind(progress.clamp(0, 100))
    .bind(error)
    .bind(&now)
    .bind(finished)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    get(conn, id).await
}

/// Count bytes a server response delivered for an update (clients that report nothing).
pub async fn add_bytes(
    conn: &mut SqliteConnection,
    id: i64,
    bytes: i64,
    size: i64,
) -> Result<Update> {
    sqlx::query(
        "UPDATE updates SET bytes_sent = bytes_sent + ?, \
         progress = MIN(100, ((bytes_sent + ?) * 100) / MAX(?, 1)), updated_at = ? WHERE id = ?",
    )
    .bind(bytes)
    .bind(bytes)
    .bind(size)
    .bind(crate::time::now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    get(conn, id).await
}

/// The image a device should run, from the newest active deployment that covers it.
pub async fn target_for(
    conn: &mut SqliteConnection,
    device: &Device,
) -> Result<Option<(i64, bool, Firmware)>> {
    let row: Option<(i64, bool, i64)> = sqlx::query_as(
        "SELECT d.id, d.rollback, d.firmware_id FROM deployments d WHERE d.active = 1 AND ( \
            EXISTS (SELECT 1 FROM deployment_devices dd WHERE dd.deployment_id = d.id AND dd.mac = ?1) \
            OR (d.project IS NOT NULL AND d.project = ?2 AND d.chip = ?3 \
                AND NOT EXISTS (SELECT 1 FROM deployment_devices dd WHERE dd.deployment_id = d.id))) \
         ORDER BY d.id DESC LIMIT 1",
    )
    .bind(&device.mac)
    .bind(&device.project)
    .bind(&device.chip)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((deployment_id, rollback, firmware_id)) = row else {
        return Ok(None);
    };
    let fw: Option<Firmware> =
        sqlx::query_as("SELECT *, 0 AS devices_running FROM firmware WHERE id = ?")
            .bind(firmware_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(fw.map(|fw| (deployment_id, rollback, fw)))
}

/// Did this server ever offer this image to this device (an update row for it)?
pub async fn was_sent(conn: &mut SqliteConnection, mac: &str, sha256: &str) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM updates WHERE mac = ? AND sha256 = ? LIMIT 1")
            .bind(mac)
            .bind(sha256)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Does the device run this image? By hash when the device reports one, else by version.
pub fn runs(device: &Device, fw: &Firmware) -> bool {
    match device.sha256.as_deref() {
        Some(sha) => {
            sha == fw.sha256 || Some(sha) == fw.appended_sha256.as_deref() || sha == fw.md5
        }
        None => device.version.is_some() && device.version == fw.version,
    }
}

/// What to tell a device that asks for an update.
#[derive(Debug)]
pub enum Decision {
    /// Install this image; the update row tracks the attempt.
    Offer {
        update: Box<Update>,
        firmware: Box<Firmware>,
    },
    /// Nothing to do, and why (for logs and the UI).
    Nothing { reason: String },
}

/// Decide whether to offer the device its target image, creating (or reusing) the update row.
/// `free_space`, when the device reports it, must hold the image.
pub async fn decide(conn: &mut SqliteConnection, device: &Device) -> Result<(Decision, bool)> {
    let nothing = |reason: String| Ok((Decision::Nothing { reason }, false));
    let Some((deployment_id, rollback, fw)) = target_for(conn, device).await? else {
        return nothing("no deployment covers this device".into());
    };
    if runs(device, &fw) {
        return nothing(format!("already runs {}", fw.sha256));
    }
    match device.chip.as_deref() {
        None => return nothing("the device's chip is not known yet; refusing to guess".into()),
        Some(chip) if chip != fw.chip => {
            return nothing(format!(
                "the deployed image is for {}, the device is {chip}",
                fw.chip
            ))
        }
        _ => {}
    }
    if !rollback {
        if let (Some(running), Some(target)) = (device.version.as_deref(), fw.version.as_deref()) {
            if validate::compare_versions(target, running) == Some(Ordering::Less) {
                return nothing(format!(
                    "the deployed version {target} is older than the running {running}; deploy it as a rollback to install it"
                ));
            }
        }
    }
    if let Some(free) = device.free_space {
        if free < fw.size {
            return nothing(format!(
                "the image ({} bytes) does not fit the device's free space ({free} bytes)",
                fw.size
            ));
        }
    }
    if let Some(open) = open_for(conn, &device.mac).await? {
        if open.sha256 == fw.sha256 {
            return Ok((
                Decision::Offer {
                    update: Box::new(open),
                    firmware: Box::new(fw),
                },
                false,
            ));
        }
        // The target changed under an unfinished attempt: that attempt is over.
        set_state(
            conn,
            open.id,
            "failed",
            open.progress,
            Some("superseded by a newer deployment"),
        )
        .await?;
    }
    let failures: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM updates WHERE mac = ? AND sha256 = ? AND state = 'failed'",
    )
    .bind(&device.mac)
    .bind(&fw.sha256)
    .fetch_one(&mut *conn)
    .await?;
    if failures >= MAX_ATTEMPTS {
        return nothing(format!(
            "{failures} attempts at this image failed; deploy it again or fix the device"
        ));
    }
    let now = crate::time::now();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO updates (mac, firmware_id, deployment_id, sha256, version, from_version, from_sha256, \
         state, progress, created_at, updated_at) VALUES (?,?,?,?,?,?,?,'offered',0,?,?) RETURNING id",
    )
    .bind(&device.mac)
    .bind(fw.id)
    .bind(deployment_id)
    .bind(&fw.sha256)
    .bind(&fw.version)
    .bind(&device.version)
    .bind(&device.sha256)
    .bind(&now)
    .bind(&now)
    .fetch_one(&mut *conn)
    .await?;
    let update = get(conn, id).await?;
    Ok((
        Decision::Offer {
            update: Box::new(update),
            firmware: Box::new(fw),
        },
        true,
    ))
}

/// A device reported what it runs: finish its open attempt. Running the attempt's image → `done`.
/// Back on the old image after it had everything it needed to install → `failed`.
pub async fn reconcile(conn: &mut SqliteConnection, device: &Device) -> Result<Option<Update>> {
    let Some(open) = open_for(conn, &device.mac).await? else {
        return Ok(None);
    };
    let on_new = match device.sha256.as_deref() {
        Some(sha) => {
            sha == open.sha256 || {
                let fw: Option<(Option<String>, String)> =
                    sqlx::query_as("SELECT appended_sha256, md5 FROM firmware WHERE sha256 = ?")
                        .bind(&open.sha256)
                        .fetch_optional(&mut *conn)
                        .await?;
                fw.is_some_and(|(app, md5)| Some(sha) == app.as_deref() || sha == md5)
            }
        }
        None => device.version.is_some() && device.version == open.version,
    };
    if on_new {
        return Ok(Some(set_state(conn, open.id, "done", 100, None).await?));
    }
    if matches!(open.state.as_str(), "rebooting" | "installing") {
        return Ok(Some(
            set_state(
                conn,
                open.id,
                "failed",
                open.progress,
                Some("device still runs the previous image"),
            )
            .await?,
        ));
    }
    Ok(None)
}
