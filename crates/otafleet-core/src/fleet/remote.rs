//! [`Fleet`] methods for remote management (issue 15): projects ([`crate::projects`]) and each
//! device's config ([`crate::config`]). Same rules as every other `Fleet` method: validated
//! first, one write transaction under the writer's lock, an event for what changed.

use crate::config::{self, ConfigApplied, ConfigPatch, DeviceConfig, DeviceConfigAnswer};
use crate::error::{CoreError, Result};
use crate::events::Event;
use crate::projects::{self, NewProject, Project, ProjectPatch};
use crate::{checkin, db, devices, validate, Fleet};

impl Fleet {
    /// Every project, by name, with its variables (secret defaults masked), commands and how many
    /// devices and images name it.
    pub async fn projects(&self) -> Result<Vec<Project>> {
        projects::list(self.db()).await
    }

    /// One project; 404 when there is none of that name.
    pub async fn project(&self, name: &str) -> Result<Project> {
        let mut conn = self.db().acquire().await?;
        projects::get(&mut conn, name).await
    }

    /// Create a project (admin). 422 for a bad field (nothing stored), 409 `project_exists`.
    pub async fn project_create(&self, new: NewProject) -> Result<Project> {
        let clean = projects::clean_new(&new)?;
        let p = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            projects::create(&mut tx, &clean).await?;
            let p = projects::get(&mut tx, &clean.name).await?;
            tx.commit().await?;
            p
        };
        tracing::info!(project = %p.name, variables = p.variables.len(), "project created");
        self.events().publish(Event::Project {
            project: Box::new(p.clone()),
        });
        Ok(p)
    }

    /// Change a project (admin): description, enrolment, variables, commands. A change of the
    /// variables that changes the effective config (a key added or removed, a type or default
    /// changed) gives every device of the project a new config version in the same transaction;
    /// the writer's lock forgets every remembered check-in, so each device's next answer carries
    /// it. Publishes the project and each such device's config.
    pub async fn project_patch(&self, name: &str, patch: ProjectPatch) -> Result<Project> {
        let clean = projects::clean_patch(&patch)?;
        let (p, macs) = {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            let changed = projects::patch(&mut tx, name, &clean).await?;
            let macs = if changed.effective {
                config::project_changed(&mut tx, name, &changed.dropped).await?
            } else {
                Vec::new()
            };
            let p = projects::get(&mut tx, name).await?;
            tx.commit().await?;
            (p, macs)
        };
        tracing::info!(project = %p.name, devices = macs.len(), "project changed by the admin");
        self.events().publish(Event::Project {
            project: Box::new(p.clone()),
        });
        for mac in macs {
            self.publish_config(&mac).await;
        }
        Ok(p)
    }

    /// Delete a project (admin): 409 `project_in_use` while a device or image names it.
    pub async fn project_delete(&self, name: &str) -> Result<()> {
        {
            let _w = self.write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            projects::delete(&mut tx, name).await?;
            tx.commit().await?;
        }
        tracing::info!(project = %name, "project deleted");
        self.events().publish(Event::ProjectRemoved {
            name: name.to_string(),
        });
        Ok(())
    }

    /// A device's config as the admin sees it (secrets masked); 404 for an unknown device.
    pub async fn device_config(&self, mac: &str) -> Result<DeviceConfig> {
        let mac = validate::mac(mac)?;
        let mut conn = self.db().acquire().await?;
        config::admin_view(&mut conn, &mac).await
    }

    /// Change a device's config values (admin; null = back to the default). Validated against its
    /// project's variables (422 `unknown_config_key`, `invalid_config_value`, nothing changed);
    /// a change makes a new version and forgets the device's remembered check-in, so its next
    /// check-in answer carries the new `config_version`. Publishes `device_config`.
    pub async fn device_config_patch(&self, mac: &str, patch: ConfigPatch) -> Result<DeviceConfig> {
        let mac = validate::mac(mac)?;
        let (changed, view) = {
            let _w = self.device_write_lock(&mac).await;
            let mut tx = db::begin_write(self.db()).await?;
            let changed = config::patch(&mut tx, &mac, &patch.values).await?;
            let view = config::admin_view(&mut tx, &mac).await?;
            tx.commit().await?;
            (changed, view)
        };
        if changed {
            // Keys only: a value may be a secret.
            let keys: Vec<&String> = patch.values.keys().collect();
            tracing::info!(%mac, version = view.version, ?keys, "device config changed by the admin");
            self.events().publish(Event::DeviceConfig {
                config: Box::new(view.clone()),
            });
        }
        Ok(view)
    }

    /// The device that holds `token`, checked again under the caller's lock
    /// ([`devices::holds_token`]); 401 `token_required` / `token_unknown`.
    async fn config_caller(&self, token: Option<&str>) -> Result<(String, String)> {
        let token = token.ok_or_else(|| CoreError::Unauthorized {
            code: "token_required",
            message: "the config is read with the device token as 'Authorization: Bearer <token>'"
                .into(),
        })?;
        let hash = checkin::hash_token(token);
        match devices::mac_by_token(self.db(), &hash).await? {
            Some(mac) => Ok((mac, hash)),
            None => {
                tracing::warn!("config request with an unknown device token refused");
                Err(token_unknown())
            }
        }
    }

    /// A device reads its own config (`GET /api/v1/device/config`, with its token): the effective
    /// values, secrets included — the one place they leave the server — and the version, which
    /// is recorded as given (published as `device_config`, secrets masked). 404 when its project
    /// defines no variables.
    pub async fn device_config_read(&self, token: Option<&str>) -> Result<DeviceConfigAnswer> {
        let (mac, hash) = self.config_caller(token).await?;
        let answer = {
            let _w = self.device_write_lock(&mac).await;
            let mut tx = db::begin_write(self.db()).await?;
            if !devices::holds_token(&mut tx, &mac, &hash).await? {
                return Err(token_unknown());
            }
            let a = config::for_device(&mut tx, &mac).await?;
            tx.commit().await?;
            a
        };
        tracing::debug!(%mac, version = answer.version, "device read its config");
        self.publish_config(&mac).await;
        Ok(answer)
    }

    /// A device confirms it applied config `version` (`POST /api/v1/device/config`, with its
    /// token). 409 `config_version_unknown` for a version it was never given. Changes no
    /// check-in answer (the answer carries the current version, not the applied one). Publishes
    /// `device_config`.
    pub async fn device_config_applied(
        &self,
        token: Option<&str>,
        req: ConfigApplied,
    ) -> Result<DeviceConfig> {
        let (mac, hash) = self.config_caller(token).await?;
        let view = {
            let _w = self.quiet_write_lock().await;
            let mut tx = db::begin_write(self.db()).await?;
            if !devices::holds_token(&mut tx, &mac, &hash).await? {
                return Err(token_unknown());
            }
            config::applied(&mut tx, &mac, req.version).await?;
            let view = config::admin_view(&mut tx, &mac).await?;
            tx.commit().await?;
            view
        };
        tracing::info!(%mac, version = req.version, "device applied its config");
        self.events().publish(Event::DeviceConfig {
            config: Box::new(view.clone()),
        });
        Ok(view)
    }

    pub(super) async fn publish_config(&self, mac: &str) {
        match self.device_config(mac).await {
            Ok(c) => self.events().publish(Event::DeviceConfig {
                config: Box::new(c),
            }),
            Err(e) => {
                tracing::warn!(%mac, error = %e, "could not load device config for its event")
            }
        }
    }
}

fn token_unknown() -> CoreError {
    CoreError::Unauthorized {
        code: "token_unknown",
        message: "this device token is not known; check in first".into(),
    }
}
