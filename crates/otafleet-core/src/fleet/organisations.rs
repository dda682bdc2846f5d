//! [`Fleet`] methods for organisations (docs/access.md, [`crate::organisations`]): the default
//! organisation's fleet keeps the list and opens each other organisation as a fleet of its own,
//! on its own data directory, database and stored images. What one organisation's fleet can
//! reach is only its own: there is no query that could cross into another's.

use crate::access::{Principal, Role};
use crate::api_tokens::{CreatedApiToken, NewApiToken};
use crate::error::{CoreError, Result};
use crate::organisations::{self, NewOrganisation, Organisation};
use crate::{db, Fleet};

/// Where the organisations' data directories are, in the default organisation's.
pub const ORGS_DIR: &str = "orgs";

/// A new organisation and the owner token made with it (shown once).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedOrganisation {
    pub organisation: Organisation,
    /// Its first owner's API token: the secret is here and nowhere else. Its owners add
    /// members and more tokens from there.
    pub owner_token: CreatedApiToken,
}

impl Fleet {
    /// This fleet's organisation: `None` for the server's own (default) one.
    pub fn organisation_id(&self) -> Option<&str> {
        self.settings().organisation.as_deref()
    }

    /// What the secrets this fleet hands out (API tokens, session cookies, sign-in states)
    /// start with: nothing in the default organisation, `<id>.` in another, so that the server
    /// can send a request to the one organisation whose database may know the secret.
    pub fn secret_prefix(&self) -> String {
        self.organisation_id()
            .map(|id| format!("{id}."))
            .unwrap_or_default()
    }

    /// Refuse, in another organisation, what only the server's own organisation can do yet:
    /// 409 `organisation_feature` saying `what`.
    pub(crate) fn only_default_may(&self, what: &str) -> Result<()> {
        match self.organisation_id() {
            None => Ok(()),
            Some(id) => Err(CoreError::Unavailable {
                code: "organisation_feature",
                message: format!(
                    "only the server's own organisation can {what}; organisation '{id}' cannot yet: ask whoever runs this server to do it in its own organisation"
                ),
            }),
        }
    }

    fn only_default(&self) -> Result<()> {
        match self.organisation_id() {
            None => Ok(()),
            Some(_) => Err(CoreError::Forbidden {
                code: "organisation_scope",
                message: "organisations are made and listed by the owners of the server's own organisation".into(),
            }),
        }
    }

    /// Every organisation besides the default one.
    pub async fn organisations(&self) -> Result<Vec<Organisation>> {
        self.only_default()?;
        organisations::list(self.db()).await
    }

    /// Make an organisation with its data directory, and its first owner's API token. Refused
    /// (409 `organisations_unsupported`) while the server keeps its state in PostgreSQL or its
    /// images in S3: an organisation's own database and store there are not built yet.
    pub async fn organisation_create(
        &self,
        new: NewOrganisation,
        by: &Principal,
    ) -> Result<CreatedOrganisation> {
        self.only_default()?;
        if self.settings().database_url.is_some() || self.settings().blob_url.is_some() {
            return Err(CoreError::Unavailable {
                code: "organisations_unsupported",
                message: "organisations need the server's own data directory for their databases and images; with --database-url or --blob-url they are not supported yet".into(),
            });
        }
        let (id, name) = organisations::check_new(&new)?;
        let mut open = self.inner.organisations.lock().await;
        if organisations::get(self.db(), &id).await?.is_some() {
            return Err(organisations::exists(&id));
        }
        // The directory and its owner token come first and the row last: until the row is
        // written nothing was acknowledged, and a directory left by a failed attempt (a full
        // disk) is removed by the next one.
        let dir = self.organisation_dir(&id);
        if tokio::fs::try_exists(&dir).await? {
            tracing::warn!(dir = %dir.display(), "removing what an earlier, failed attempt to make this organisation left");
            tokio::fs::remove_dir_all(&dir).await?;
        }
        let made = async {
            let fleet = self.open_organisation(&id).await?;
            let owner_token = fleet
                .api_token_create(
                    NewApiToken {
                        name: "owner".into(),
                        role: Role::Owner,
                        scope: None,
                    },
                    &Principal::owner(&format!("organisation made by {}", by.actor)),
                )
                .await;
            let owner_token = match owner_token {
                Ok(t) => t,
                Err(e) => {
                    fleet.close().await;
                    return Err(e);
                }
            };
            let row = async {
                let _w = self.write_lock().await;
                let mut tx = db::begin_write(self.db()).await?;
                let o = organisations::create(&mut tx, &id, &name, &by.actor).await?;
                tx.commit().await?;
                Ok::<_, CoreError>(o)
            }
            .await;
            match row {
                Ok(o) => Ok((fleet, o, owner_token)),
                Err(e) => {
                    fleet.close().await;
                    Err(e)
                }
            }
        }
        .await;
        let (fleet, organisation, owner_token) = match made {
            Ok(m) => m,
            Err(e) => {
                if let Err(rm) = tokio::fs::remove_dir_all(&dir).await {
                    tracing::warn!(dir = %dir.display(), error = %rm, "could not remove a failed organisation's directory; the next attempt will");
                }
                return Err(e);
            }
        };
        open.insert(organisation.id.clone(), fleet);
        tracing::info!(organisation = %organisation.id, by = %by.actor, "organisation made");
        Ok(CreatedOrganisation {
            organisation,
            owner_token,
        })
    }

    /// Open every organisation's fleet (at the server's start), so that their own background
    /// work — rollout steps, queued notifications, the image collector — runs from the start,
    /// not from their first request. One that cannot be opened is logged and skipped (its
    /// requests then answer the reason); the others are opened. Returns how many were opened.
    pub async fn open_organisations(&self) -> Result<usize> {
        let mut opened = 0;
        for o in self.organisations().await? {
            match self.organisation(&o.id).await {
                Ok(_) => opened += 1,
                Err(e) => {
                    tracing::error!(organisation = %o.id, error = %e, "cannot open this organisation's data; its requests will fail until it can")
                }
            }
        }
        Ok(opened)
    }

    /// The organisation whose devices use `key` in their path, if any.
    pub async fn organisation_by_key(&self, key: &str) -> Result<Option<Organisation>> {
        self.only_default()?;
        organisations::by_key(self.db(), key).await
    }

    /// One organisation's row (404 when there is none).
    pub async fn organisation_row(&self, id: &str) -> Result<Organisation> {
        self.only_default()?;
        organisations::get(self.db(), id)
            .await?
            .ok_or_else(|| CoreError::not_found("organisation"))
    }

    /// The fleet of organisation `id`, opened on first use (its data directory `orgs/<id>/`,
    /// with the same start settings but its own database and stored images).
    pub async fn organisation(&self, id: &str) -> Result<Fleet> {
        self.only_default()?;
        let mut open = self.inner.organisations.lock().await;
        if let Some(f) = open.get(id) {
            return Ok(f.clone());
        }
        let row = self.organisation_row(id).await?;
        let fleet = self.open_organisation(&row.id).await?;
        open.insert(row.id, fleet.clone());
        Ok(fleet)
    }

    fn organisation_dir(&self, id: &str) -> std::path::PathBuf {
        self.settings().data_dir.join(ORGS_DIR).join(id)
    }

    async fn open_organisation(&self, id: &str) -> Result<Fleet> {
        let mut settings = self.settings().clone();
        settings.data_dir = self.organisation_dir(id);
        settings.organisation = Some(id.to_owned());
        settings.database_url = None;
        settings.blob_url = None;
        Fleet::open(settings).await
    }
}

#[cfg(test)]
mod tests {
    use crate::access::Principal;
    use crate::organisations::NewOrganisation;
    use crate::{Fleet, Settings};

    /// After a restart every organisation is opened at once (its background work runs from the
    /// start), with its own data: a token made in it still opens it, and nothing of it is in
    /// the default organisation's tables.
    #[tokio::test]
    async fn organisations_are_opened_again_at_the_start_with_their_own_data() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
        assert_eq!(fleet.open_organisations().await.unwrap(), 0);
        let made = fleet
            .organisation_create(
                NewOrganisation {
                    id: "acme".into(),
                    name: "Acme".into(),
                },
                &Principal::owner("admin"),
            )
            .await
            .unwrap();
        fleet.close().await;
        drop(fleet);

        let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
        assert_eq!(fleet.open_organisations().await.unwrap(), 1);
        let acme = fleet.organisation("acme").await.unwrap();
        let who = acme
            .api_token_principal(&made.owner_token.secret)
            .await
            .unwrap();
        assert_eq!(who.map(|p| p.actor), Some("token:owner".to_owned()));
        assert!(fleet
            .api_token_principal(&made.owner_token.secret)
            .await
            .unwrap()
            .is_none());
        // Inside an organisation there are no organisations to open.
        assert!(acme.open_organisations().await.is_err());
    }
}
