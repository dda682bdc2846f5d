//! [`Fleet`]'s rollout methods (issue 17): the admin pauses and resumes a rollout; every
//! [`STEP_EVERY`] the rollouts that are under way decide their devices' outcomes, pause at their
//! error limit and start their next wave ([`crate::rollouts`] owns the rules and the SQL).
//!
//! Locks: a step first asks, reading only, whether anything would change; only then does it take
//! the writer's lock (without invalidating remembered answers) and step for real, and
//! [`Fleet::publish_deployments`] invalidates them all when a rollout changed (a paused rollout
//! or a new wave changes what its devices are told).

use std::time::Duration;

use std::collections::BTreeMap;

use serde::Serialize;

use super::Fleet;
use crate::deployments::{self, Deployment, NewDeployment};
use crate::error::{CoreError, Result};
use crate::rollouts::{self, Preset, RolloutPlan};
use crate::{db, firmware, updates, updates::Update};

/// What rolling a deployment back did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RolledBack {
    /// The deployment rolled back, stopped first (no further device is offered its image).
    pub stopped: Deployment,
    /// One new deployment per image the devices ran before, naming those devices, as rollbacks.
    pub created: Vec<Deployment>,
    /// Devices it updated that are left as they are, and why.
    pub left: Vec<LeftDevice>,
}

/// A device a rollback leaves as it is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LeftDevice {
    pub mac: String,
    pub reason: String,
}

/// How often rollouts under way are looked at (soak times ending, devices going quiet, error
/// reports and restarts seen at check-ins).
pub const STEP_EVERY: Duration = Duration::from_secs(1);

impl Fleet {
    /// Step the rollouts under way every [`STEP_EVERY`] until the fleet is dropped or closed.
    pub(super) fn spawn_rollout_stepper(&self) {
        self.spawn_periodic(STEP_EVERY, |fleet| async move {
            if let Err(e) = fleet.step_rollouts().await {
                if !fleet.db().is_closed() {
                    tracing::warn!(error = %e, "could not step the rollouts; retrying");
                }
            }
        });
    }

    /// One step of every rollout under way; returns the deployments that changed.
    pub async fn step_rollouts(&self) -> Result<Vec<Deployment>> {
        let ids = {
            let mut conn = self.db().acquire().await?;
            rollouts::active(&mut conn).await?
        };
        // Asked first without the writer: in the common second nothing changes, and a step
        // then takes no lock at all (check-ins that write are never held up by it).
        let mut due = Vec::new();
        {
            let mut conn = self.db().acquire().await?;
            for id in ids {
                if deployments::rollout_would_step(&mut conn, id).await? {
                    due.push(id);
                }
            }
        }
        let ids = due;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let changed = {
            let _w = self.quiet_write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let mut changed = Vec::new();
            for id in ids {
                changed.extend(deployments::step_rollout(&mut tx, id).await?);
            }
            tx.commit().await?;
            changed
        };
        self.publish_deployments(changed.clone()).await;
        Ok(changed)
    }

    /// Pause rollout `id` by hand: no device is offered its image until it is resumed; attempts
    /// under way go on. 409 unless it is active.
    pub async fn deployment_pause(&self, id: i64, reason: Option<&str>) -> Result<Deployment> {
        let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) if r.chars().count() > 200 || r.chars().any(char::is_control) => {
                return Err(crate::error::CoreError::invalid(
                    "invalid_reason",
                    "the reason is at most 200 characters on one line",
                ))
            }
            Some(r) => format!("paused by the admin: {r}"),
            None => "paused by the admin".to_string(),
        };
        {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            rollouts::pause_by_admin(&mut tx, id, &reason).await?;
            tx.commit().await?;
        }
        tracing::info!(id, %reason, "deployment paused");
        let d = deployments::get(self.db(), id).await?;
        self.publish_deployments(vec![d.clone()]).await;
        Ok(d)
    }

    /// Resume paused rollout `id` (after a wave for approval: the next wave starts). With
    /// `retry`, its failed devices count afresh and those at the attempt limit get a new
    /// attempt. Returns it and the attempts opened.
    pub async fn deployment_resume(
        &self,
        id: i64,
        retry: bool,
    ) -> Result<(Deployment, Vec<Update>)> {
        let cleared = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let cleared = rollouts::resume(&mut tx, id, retry).await?;
            tx.commit().await?;
            cleared
        };
        let opened = if retry {
            let (opened, changed) = {
                let _w = self.write_lock().await;
                deployments::retry(self.db(), id, None).await?
            };
            self.publish_deployments(changed.into_iter().collect())
                .await;
            opened
        } else {
            Vec::new()
        };
        tracing::info!(
            id,
            retry,
            cleared = cleared.len(),
            opened = opened.len(),
            "deployment resumed"
        );
        self.publish_updates(opened.clone()).await;
        let d = deployments::get(self.db(), id).await?;
        self.publish_deployments(vec![d.clone()]).await;
        Ok((d, opened))
    }

    /// Roll deployment `id` back: stop it, then return each device it updated to the image that
    /// device ran before — one new deployment (a rollback, of another project if need be) per
    /// such image, naming its devices, with `plan` or `preset` (default: all at once). A device
    /// whose earlier image is not known or not in the library, or that runs another image by
    /// now, is left as it is (`left`, with the reason). 409 when it updated no device.
    pub async fn deployment_rollback(
        &self,
        id: i64,
        plan: Option<RolloutPlan>,
        preset: Option<Preset>,
    ) -> Result<RolledBack> {
        let d = deployments::get(self.db(), id).await?;
        let done = updates::done_in_deployment(self.db(), id).await?;
        if done.is_empty() {
            return Err(CoreError::conflict(format!(
                "deployment {id} updated no device: there is nothing to roll back"
            )));
        }
        let mut groups: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut left = Vec::new();
        for u in done {
            let device = self.device(&u.mac).await?;
            if device.sha256.as_deref().is_some_and(|s| s != u.sha256)
                || (device.sha256.is_none() && device.version != u.version)
            {
                left.push(LeftDevice {
                    mac: u.mac,
                    reason: "it runs another image than this deployment's by now".into(),
                });
                continue;
            }
            let previous = match u.from_sha256.as_deref() {
                Some(h) => firmware::by_any_hash(self.db(), h).await?,
                None => None,
            };
            match previous {
                Some(fw) => groups.entry(fw.id).or_default().push(u.mac),
                None => left.push(LeftDevice {
                    reason: match (&u.from_sha256, &u.from_version) {
                        (None, _) => "otafleet does not know which image it ran before (it did not report a hash); deploy that image to it as a rollback".into(),
                        (Some(_), v) => format!(
                            "the image it ran before ({}) is not in the library; add it, then roll back again",
                            v.as_deref().unwrap_or("of unknown version")
                        ),
                    },
                    mac: u.mac,
                }),
            }
        }
        let stopped = if d.status == deployments::DeploymentStatus::Stopped {
            d
        } else {
            self.deployment_stop(id).await?
        };
        let mut created = Vec::new();
        for (firmware_id, macs) in groups {
            created.push(
                self.deployment_create(NewDeployment {
                    firmware_id,
                    devices: Some(macs),
                    rollback: true,
                    allow_other_project: true,
                    plan: plan.clone(),
                    preset,
                    ..NewDeployment::default()
                })
                .await?,
            );
        }
        tracing::info!(
            id,
            created = created.len(),
            left = left.len(),
            "deployment rolled back"
        );
        Ok(RolledBack {
            stopped,
            created,
            left,
        })
    }
}
