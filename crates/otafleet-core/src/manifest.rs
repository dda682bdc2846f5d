//! What an esp32FOTA manifest lists (docs/protocols.md §3): one entry per project that has a
//! project-wide deployment, plus, for a device that identifies itself (`?id=`), the image
//! deployed to it by name, which replaces its project's project-wide entry. esp32FOTA picks the
//! entry whose `type` equals its compiled-in name, so `type` is the project name; images without
//! a version are left out (esp32FOTA would read them as 0.0.0 and never install them).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::firmware::{self, Firmware};
use crate::{deployments, Fleet};

/// esp32FOTA parses the manifest into a 2 KiB JSON document: a handful of entries at most.
pub const MAX_ENTRIES: usize = 8;

/// `(project, image)` pairs, newest deployment first within a project, at most [`MAX_ENTRIES`].
pub async fn entries(fleet: &Fleet, mac: Option<&str>) -> Result<Vec<(String, Firmware)>> {
    let mut by_project: BTreeMap<String, (bool, i64, Firmware)> = BTreeMap::new();
    // Newest first, so the first entry seen for a project wins unless a device-specific one comes.
    for d in deployments::list(fleet.db()).await? {
        if !d.active {
            continue;
        }
        let for_device = match mac {
            Some(m) => d.devices.iter().any(|x| x == m),
            None => false,
        };
        if !d.devices.is_empty() && !for_device {
            continue;
        }
        let fw = firmware::get(fleet.db(), d.firmware_id).await?;
        let (Some(project), Some(_)) = (fw.project.clone(), fw.version.as_ref()) else {
            continue;
        };
        let replace = match by_project.get(&project) {
            None => true,
            Some((specific, _, _)) => for_device && !specific,
        };
        if replace {
            by_project.insert(project, (for_device, d.id, fw));
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
        .map(|(p, (_, _, fw))| (p, fw))
        .collect())
}
