//! The offer rules, as one pure function: [`verdict`] takes a device, the deployment that
//! targets it, the deployed image and the device's update history, and says what the device
//! gets and, when it gets nothing, why. Every path that offers an image asks it — the native
//! check-in, the stock updaters' checks (Arduino `HTTPUpdate`, `ESP8266httpUpdate`, esp32FOTA,
//! the legacy sketch), the esp32FOTA manifest, a per-device download — and so do the deployment
//! dry run and the Deployments page, so what the UI promises is what devices then get.
//! docs/deployments.md says the rules in prose.
//!
//! No I/O, no clock, no database: the table-driven tests below cover every verdict for every
//! protocol.

use std::cmp::Ordering;

use serde::Serialize;

use crate::devices::Device;
use crate::firmware::Firmware;
use crate::settings::MAX_ATTEMPTS;
use crate::updates::{Update, UpdateState};
use crate::validate::compare_versions;

/// The deployment's side of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The deployment whose attempts count towards the attempt limit.
    pub deployment_id: i64,
    /// An older version than the device runs may be installed.
    pub rollback: bool,
    /// An image of another project than the device's may be installed.
    pub allow_other_project: bool,
}

/// What a device gets from a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// The image is offered at the device's next check (or now, at this one).
    Offer,
    /// An attempt at this image is under way.
    InProgress { state: UpdateState, progress: i64 },
    /// The device runs the image already.
    AlreadyRunning,
    /// The device runs a newer version; only a rollback installs the older one.
    NewerRunning { running: String, target: String },
    /// The image is built for another chip.
    OtherChip { device: String, image: String },
    /// The device runs another project; installing needs the admin's explicit consent.
    OtherProject {
        device: String,
        image: Option<String>,
    },
    /// The device reported less free space than the image needs.
    TooBig { size: i64, free: i64 },
    /// The attempt limit is reached: this many attempts at this image failed in this deployment
    /// since the last Retry.
    Failed { attempts: i64 },
    /// Nothing says which chip the device is, so no image can be offered safely.
    ChipUnknown { why: String },
    /// The device's updater cannot install it (the legacy sketch and esp32FOTA take only newer
    /// versions; esp32FOTA needs a version).
    Unsupported { why: String },
    /// The device may take it, but nothing the server knows says so yet (an esp32FOTA device
    /// that never said which project it runs, a device that has never checked in).
    Waiting { why: String },
    /// A newer deployment targets the device.
    Superseded { by: i64 },
    /// The device's wave of the rollout has not started ([`crate::rollouts`]).
    WaitingForWave { wave: i64, current: i64 },
    /// The rollout is paused, for this reason.
    Paused { reason: String },
    /// The rollout's limit of devices updating at once is reached.
    Queued { max: i64 },
}

/// The verdicts by name, for counts (`VerdictKind` keys in a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Offer,
    InProgress,
    AlreadyRunning,
    NewerRunning,
    OtherChip,
    OtherProject,
    TooBig,
    Failed,
    ChipUnknown,
    Unsupported,
    Waiting,
    Superseded,
    WaitingForWave,
    Paused,
    Queued,
}

impl Verdict {
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::Offer => VerdictKind::Offer,
            Verdict::InProgress { .. } => VerdictKind::InProgress,
            Verdict::AlreadyRunning => VerdictKind::AlreadyRunning,
            Verdict::NewerRunning { .. } => VerdictKind::NewerRunning,
            Verdict::OtherChip { .. } => VerdictKind::OtherChip,
            Verdict::OtherProject { .. } => VerdictKind::OtherProject,
            Verdict::TooBig { .. } => VerdictKind::TooBig,
            Verdict::Failed { .. } => VerdictKind::Failed,
            Verdict::ChipUnknown { .. } => VerdictKind::ChipUnknown,
            Verdict::Unsupported { .. } => VerdictKind::Unsupported,
            Verdict::Waiting { .. } => VerdictKind::Waiting,
            Verdict::Superseded { .. } => VerdictKind::Superseded,
            Verdict::WaitingForWave { .. } => VerdictKind::WaitingForWave,
            Verdict::Paused { .. } => VerdictKind::Paused,
            Verdict::Queued { .. } => VerdictKind::Queued,
        }
    }

    /// The device gets (or is getting) the image.
    pub fn offers(&self) -> bool {
        matches!(self, Verdict::Offer | Verdict::InProgress { .. })
    }

    /// The deployment still has work to do for this device. An esp32FOTA device of unknown
    /// project is not counted: it may never be one of the deployment's. A device a rollout
    /// holds back (its wave, a pause, a free slot) is.
    pub fn pending(&self) -> bool {
        self.offers()
            || matches!(
                self,
                Verdict::WaitingForWave { .. } | Verdict::Paused { .. } | Verdict::Queued { .. }
            )
    }

    /// Why nothing is offered, in a sentence for logs, the device's hold and the UI.
    pub fn reason(&self) -> String {
        match self {
            Verdict::Offer => "the image is offered".into(),
            Verdict::InProgress { state, .. } => format!("an attempt is under way ({state})"),
            Verdict::AlreadyRunning => "the device runs this image already".into(),
            Verdict::NewerRunning { running, target } => format!(
                "the deployed version {target} is older than the running {running}; deploy it as a rollback to install it"
            ),
            Verdict::OtherChip { device, image } => {
                format!("the deployed image is for {image}, the device is {device}")
            }
            Verdict::OtherProject { device, image } => format!(
                "the device runs project {device}, the image is {}; deploy it with 'allow another project' to install it",
                image.as_deref().map_or("of no project".to_string(), |p| format!("project {p}"))
            ),
            Verdict::TooBig { size, free } => format!(
                "the image ({size} bytes) does not fit the device's free space ({free} bytes)"
            ),
            Verdict::Failed { attempts } => format!(
                "{attempts} attempts at this image failed; press Retry to try again, or fix the device"
            ),
            Verdict::ChipUnknown { why } => format!("the device's chip is not known: {why}"),
            Verdict::Unsupported { why } => why.clone(),
            Verdict::Waiting { why } => why.clone(),
            Verdict::Superseded { by } => format!("deployment {by} targets this device now"),
            Verdict::WaitingForWave { wave, current } => format!(
                "waiting for wave {wave} of the rollout (wave {current} is under way)"
            ),
            Verdict::Paused { reason } => format!("the rollout is paused: {reason}"),
            Verdict::Queued { max } => format!(
                "waiting for a free slot: the rollout updates at most {max} device{} at once",
                if *max == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Failed attempts at `image` in deployment `rule`, newest first, back to and including the
/// newest attempt an admin's Retry started.
pub fn failures(rule: &Rule, image: &Firmware, history: &[Update]) -> i64 {
    let mut newest_first: Vec<&Update> = history
        .iter()
        .filter(|u| u.deployment_id == Some(rule.deployment_id) && u.sha256 == image.sha256)
        .collect();
    newest_first.sort_by_key(|u| std::cmp::Reverse(u.id));
    let mut n = 0;
    for u in newest_first {
        if u.state == UpdateState::Failed {
            n += 1;
        }
        if u.retry {
            break;
        }
    }
    n
}

/// Does the device run this image? By hash when the device reports one, else by version.
pub fn runs(device: &Device, image: &Firmware) -> bool {
    match device.sha256.as_deref() {
        Some(sha) => {
            sha == image.sha256 || Some(sha) == image.appended_sha256.as_deref() || sha == image.md5
        }
        None => device.version.is_some() && device.version == image.version,
    }
}

/// The rules, in order: what the device runs, an attempt under way, the chip, the project, the
/// version order, what the device's updater can install, free space, the attempt limit.
pub fn verdict(device: &Device, rule: &Rule, image: &Firmware, history: &[Update]) -> Verdict {
    if runs(device, image) {
        return Verdict::AlreadyRunning;
    }
    let protocol = device.protocol.as_deref();
    if let Some(open) = history
        .iter()
        .filter(|u| !u.is_finished() && u.sha256 == image.sha256)
        .max_by_key(|u| u.id)
    {
        return Verdict::InProgress {
            state: open.state,
            progress: open.progress,
        };
    }
    if protocol == Some("esp32fota") && device.project.is_none() {
        // esp32FOTA says nothing about itself: it picks the manifest entry named after the
        // project it was built for, so whether it takes this image is only known once it does.
        return Verdict::Waiting {
            why: format!(
                "esp32FOTA does not say which project it runs; it takes the image if it was built as '{}'",
                image.project.as_deref().unwrap_or("?")
            ),
        };
    }
    let chip = match device.chip.as_deref() {
        Some(c) => c,
        None if protocol.is_none() => {
            return Verdict::Waiting {
                why: "the device has not checked in yet; it is offered the image when it does (if its chip matches)".into(),
            }
        }
        None => {
            return Verdict::ChipUnknown {
                why: match protocol {
                    Some("arduino") => "Arduino HTTPUpdate does not send the chip, and the image it runs is not in the library; add that image or set the device's chip".into(),
                    Some("legacy") => "the legacy sketch does not send the chip; set the device's chip".into(),
                    _ => "set the device's chip".into(),
                },
            }
        }
    };
    if chip != image.chip {
        return Verdict::OtherChip {
            device: chip.to_string(),
            image: image.chip.clone(),
        };
    }
    if let Some(p) = device.project.as_deref() {
        if image.project.as_deref() != Some(p) && !rule.allow_other_project {
            return Verdict::OtherProject {
                device: p.to_string(),
                image: image.project.clone(),
            };
        }
    }
    let order = match (device.version.as_deref(), image.version.as_deref()) {
        (Some(running), Some(target)) => compare_versions(target, running),
        _ => None,
    };
    // Versions of two projects say nothing about each other: moving a device to another project
    // (with consent) is not a downgrade, whatever the numbers.
    let same_line = device.project.is_none() || device.project == image.project;
    if order == Some(Ordering::Less) && !rule.rollback && same_line {
        return Verdict::NewerRunning {
            running: device.version.clone().unwrap_or_default(),
            target: image.version.clone().unwrap_or_default(),
        };
    }
    match protocol {
        Some("legacy") => {
            // The legacy server offered only strictly newer versions, and its sketch expects that.
            let why = match (device.version.as_deref(), image.version.as_deref(), order) {
                (_, None, _) => Some("the image has no version; legacy devices take only newer versions".to_string()),
                (Some(running), Some(target), o) if o != Some(Ordering::Greater) => Some(format!(
                    "legacy devices take only newer versions: {target} is not newer than the running {running}"
                )),
                _ => None,
            };
            if let Some(why) = why {
                return Verdict::Unsupported { why };
            }
        }
        Some("esp32fota") => {
            // esp32FOTA installs a manifest entry only when its version is newer than its own.
            let why = match (device.version.as_deref(), image.version.as_deref(), order) {
                (_, None, _) => Some("the image has no version; esp32FOTA installs only versioned, newer images".to_string()),
                (Some(running), Some(target), o) if o != Some(Ordering::Greater) => Some(format!(
                    "esp32FOTA installs only newer versions: {target} is not newer than the running {running}"
                )),
                _ => None,
            };
            if let Some(why) = why {
                return Verdict::Unsupported { why };
            }
        }
        _ => {}
    }
    if let Some(free) = device.free_space {
        if free < image.size {
            return Verdict::TooBig {
                size: image.size,
                free,
            };
        }
    }
    let attempts = failures(rule, image, history);
    if attempts >= MAX_ATTEMPTS {
        return Verdict::Failed { attempts };
    }
    Verdict::Offer
}

#[cfg(test)]
mod tests;
