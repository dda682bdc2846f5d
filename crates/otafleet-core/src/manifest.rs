//! What an esp32FOTA manifest lists (docs/protocols.md §3). esp32FOTA picks the entry whose
//! `type` equals the project name compiled into it, and installs it only when its version is
//! newer than its own; images without a version are never listed (esp32FOTA would read them as
//! 0.0.0 and never install them).
//!
//! - A device that identifies itself (`?id=`) and whose project is known gets at most one entry:
//!   its target image, named after its project, exactly when [`crate::offer::verdict`] offers it
//!   (so the dry run and the manifest agree).
//! - A device whose project is not known yet (esp32FOTA says nothing about itself), or a request
//!   without `?id=`, gets one entry per project with a project-wide deployment, plus the image
//!   deployed to that device by name, which replaces its project's entry.

use std::collections::BTreeMap;

use crate::db::Conn;

use crate::db;
use crate::devices::Device;
use crate::error::Result;
use crate::firmware::Firmware;
use crate::offer;
use crate::{deployments, updates, Fleet};

/// esp32FOTA parses the manifest into a 2 KiB JSON document: a handful of entries at most.
pub const MAX_ENTRIES: usize = 8;

/// `(type, image)` pairs, at most [`MAX_ENTRIES`].
/// For a request without `?id=` (no device).
pub(crate) async fn entries(fleet: &Fleet) -> Result<Vec<(String, Firmware)>> {
    let mut conn = fleet.db().acquire().await?;
    entries_on(&mut conn, None).await
}

/// For `device` (as just recorded by its check, [`crate::field`]), or for no device.
pub(crate) async fn entries_on(
    conn: &mut Conn,
    device: Option<&Device>,
) -> Result<Vec<(String, Firmware)>> {
    let mac = device.map(|d| d.mac.as_str());
    if let Some(device) = device.filter(|d| d.project.is_some()) {
        let Some((rule, fw)) = updates::target_for(conn, device).await? else {
            return Ok(Vec::new());
        };
        let history = updates::recent(conn, &device.mac).await?;
        let verdict = offer::verdict(device, &rule, &fw, &history);
        // That the device runs the image is inferred (esp32FOTA reports nothing): the entry stays
        // listed, so a device that never got the image whole takes it again (esp32FOTA installs
        // only a strictly newer version, so one that runs it does nothing).
        if verdict == offer::Verdict::AlreadyRunning {
            let project = device.project.clone().unwrap_or_default();
            return Ok(vec![(project, fw)]);
        }
        let verdict =
            crate::rollouts::gated(conn, rule.deployment_id, &device.mac, verdict, false).await?;
        if !verdict.offers() {
            tracing::debug!(mac = %device.mac, reason = %verdict.reason(), "esp32FOTA manifest lists nothing");
            return Ok(Vec::new());
        }
        let project = device.project.clone().unwrap_or_default();
        return Ok(vec![(project, fw)]);
    }
    let mut by_project: BTreeMap<String, (bool, Firmware)> = BTreeMap::new();
    // Newest first, so the first entry seen for a project wins unless a device-specific one comes.
    for d in deployments::live(conn).await? {
        let for_device = mac.is_some_and(|m| d.devices.iter().any(|x| x == m));
        if !d.devices.is_empty() && !for_device {
            continue;
        }
        // A client that does not say who it is cannot be placed in a wave: a rollout's image is
        // listed for it only once the last wave is open and the rollout is not paused.
        if let Some(plan) = &d.plan {
            if d.status == crate::deployments::DeploymentStatus::Paused
                || d.wave < plan.wave_count()
            {
                continue;
            }
        }
        let fw: Option<Firmware> = db::query_as(
            "SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware WHERE id = ?",
        )
        .bind(d.firmware_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(fw) = fw else { continue };
        let (Some(project), Some(_)) = (fw.project.clone(), fw.version.as_ref()) else {
            continue;
        };
        let replace = match by_project.get(&project) {
            None => true,
            Some((specific, _)) => for_device && !specific,
        };
        if replace {
            by_project.insert(project, (for_device, fw));
        }
    }
    if by_project.len() > MAX_ENTRIES {
        tracing::warn!(
            projects = by_project.len(),
            "esp32FOTA manifest cut to {MAX_ENTRIES} entries (the device parses 2 KiB)"
        );
    }
    Ok(by_project
        .into_iter()
        .take(MAX_ENTRIES)
        .map(|(p, (_, fw))| (p, fw))
        .collect())
}
