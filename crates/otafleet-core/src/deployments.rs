//! Deployments: the admin's "these devices should run this image". Either an explicit list of
//! devices, or every device of a project and chip (present and future). The newest active
//! deployment that covers a device wins; [`crate::updates::decide`] turns it into an offer.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::error::{CoreError, Result};
use crate::{firmware, validate};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Deployment {
    pub id: i64,
    pub firmware_id: i64,
    /// Set when the deployment covers a whole project (with `chip`).
    pub project: Option<String>,
    pub chip: Option<String>,
    /// Allows installing an older version than the device runs.
    pub rollback: bool,
    pub active: bool,
    pub created_at: String,
    /// Explicit device list (empty for project-wide deployments).
    #[sqlx(skip)]
    pub devices: Vec<String>,
    /// How many known devices it reaches now.
    #[sqlx(skip)]
    pub reach: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    pub firmware_id: i64,
    /// Explicit MAC addresses. When absent, the deployment covers `project` + `chip`.
    pub devices: Option<Vec<String>>,
    /// Defaults to the image's project.
    pub project: Option<String>,
    /// Defaults to the image's chip; must match it.
    pub chip: Option<String>,
    #[serde(default)]
    pub rollback: bool,
    /// Only compute `reach` and validate; store nothing.
    #[serde(default)]
    pub dry_run: bool,
}

pub async fn list(db: &SqlitePool) -> Result<Vec<Deployment>> {
    let rows: Vec<Deployment> = sqlx::query_as("SELECT * FROM deployments ORDER BY id DESC")
        .fetch_all(db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        out.push(fill(db, d).await?);
    }
    Ok(out)
}

pub async fn get(db: &SqlitePool, id: i64) -> Result<Deployment> {
    let d: Deployment = sqlx::query_as("SELECT * FROM deployments WHERE id = ?")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("deployment {id}")))?;
    fill(db, d).await
}

async fn fill(db: &SqlitePool, mut d: Deployment) -> Result<Deployment> {
    d.devices = sqlx::query_scalar(
        "SELECT mac FROM deployment_devices WHERE deployment_id = ? ORDER BY mac",
    )
    .bind(d.id)
    .fetch_all(db)
    .await?;
    d.reach = if d.devices.is_empty() {
        sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE project = ? AND chip = ?")
            .bind(&d.project)
            .bind(&d.chip)
            .fetch_one(db)
            .await?
    } else {
        d.devices.len() as i64
    };
    Ok(d)
}

/// Validate and store a deployment (or, with `dry_run`, only validate and count).
pub async fn create(db: &SqlitePool, new: NewDeployment) -> Result<Deployment> {
    let fw = firmware::get(db, new.firmware_id)
        .await
        .map_err(|e| match e {
            CoreError::NotFound { .. } => CoreError::invalid(
                "unknown_firmware",
                format!("there is no firmware {} in the library", new.firmware_id),
            ),
            other => other,
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
    let (project, chip) = match &new.devices {
        Some(list) => {
            if list.is_empty() {
                return Err(CoreError::invalid(
                    "no_devices",
                    "the device list is empty; name at least one device or leave the list out to deploy to the whole project",
                ));
            }
            for m in list {
                let mac = validate::mac(m)?;
                let chip: Option<Option<String>> =
                    sqlx::query_scalar("SELECT chip FROM devices WHERE mac = ?")
                        .bind(&mac)
                        .fetch_optional(db)
                        .await?;
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
            (None, None)
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
            (Some(project), Some(fw.chip.clone()))
        }
    };
    if new.dry_run {
        let reach = if macs.is_empty() {
            sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE project = ? AND chip = ?")
                .bind(&project)
                .bind(&chip)
                .fetch_one(db)
                .await?
        } else {
            macs.len() as i64
        };
        return Ok(Deployment {
            id: 0,
            firmware_id: fw.id,
            project,
            chip,
            rollback: new.rollback,
            active: false,
            created_at: crate::time::now(),
            devices: macs,
            reach,
        });
    }
    let mut tx = crate::db::begin_write(db).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deployments (firmware_id, project, chip, rollback, active, created_at) \
         VALUES (?,?,?,?,1,?) RETURNING id",
    )
    .bind(fw.id)
    .bind(&project)
    .bind(&chip)
    .bind(new.rollback)
    .bind(crate::time::now())
    .fetch_one(&mut *tx)
    .await?;
    for mac in &macs {
        sqlx::query("INSERT INTO deployment_devices (deployment_id, mac) VALUES (?, ?)")
            .bind(id)
            .bind(mac)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    get(db, id).await
}

/// Stop a deployment: devices it covered are no longer offered its image.
pub async fn stop(db: &SqlitePool, id: i64) -> Result<Deployment> {
    let done = sqlx::query("UPDATE deployments SET active = 0 WHERE id = ?")
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(CoreError::not_found(format!("deployment {id}")));
    }
    get(db, id).await
}
