//! Who may do what: the four roles and a token's scope (docs/access.md).
//!
//! Roles are ordered; each admin route declares the least role it needs and any higher role may
//! call it too:
//!
//! | role | may |
//! | --- | --- |
//! | `viewer` | read everything, live (devices, library, deployments, logs, audit, settings) |
//! | `operator` | and upload images, deploy, retry, roll back, run commands, change config, name and tag devices |
//! | `admin` | and delete, enrol devices, change settings and trust, watch folders, API tokens |
//! | `owner` | everything; the server's own admin token (the desktop app holds it) is the owner's |
//!
//! A scope narrows a token further: `upload:<project>` may only upload images of that project,
//! whatever its role (a CI job's token).

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// A role, from least to most: each may do everything the ones before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Refuse (403 `role_insufficient`) unless this role is at least `needed`.
    pub fn require(self, needed: Role, what: &str) -> Result<()> {
        if self >= needed {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                code: "role_insufficient",
                message: format!(
                    "{what} needs the {} role; this token or account is {}: ask an admin of this server",
                    needed.as_str(),
                    self.as_str()
                ),
            })
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token is limited to besides its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Upload images of this project, nothing else.
    Upload(String),
}

impl Scope {
    /// Parse `upload:<project>` (the project name as images and devices carry it).
    pub fn parse(s: &str) -> Result<Scope> {
        match s.trim().split_once(':') {
            Some(("upload", project)) => {
                Ok(Scope::Upload(crate::validate::project(project.trim())?))
            }
            _ => Err(CoreError::invalid(
                "invalid_scope",
                format!(
                    "'{s}' is not a scope otafleet knows; the one scope is 'upload:<project>' (a CI job that uploads that project's images), or none"
                ),
            )),
        }
    }

    pub fn to_text(&self) -> String {
        match self {
            Scope::Upload(p) => format!("upload:{p}"),
        }
    }
}

/// 256 random bits as URL-safe base64 (43 characters): every secret a person or browser is
/// handed — API tokens, session cookies, sign-in states, nonces.
pub fn random_secret() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Who a request comes from once its credentials are checked: recorded in the audit log and
/// checked against each route's least role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What the audit log records: `admin` (the server's admin token), `legacy-admin-key` (the
    /// same token sent as `X-Admin-API-Key`), `token:<name>` (a named API token).
    pub actor: String,
    pub role: Role,
    pub scope: Option<Scope>,
}

impl Principal {
    /// The server's own admin token: the owner, unscoped.
    pub fn owner(actor: &str) -> Self {
        Self {
            actor: actor.to_owned(),
            role: Role::Owner,
            scope: None,
        }
    }

    /// The project an upload by this principal must belong to, if its scope limits it.
    pub fn upload_project(&self) -> Option<&str> {
        match &self.scope {
            Some(Scope::Upload(p)) => Some(p),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_each_includes_the_ones_below() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert!(Role::Admin < Role::Owner);
        assert!(Role::Admin.require(Role::Operator, "x").is_ok());
        let e = Role::Viewer
            .require(Role::Operator, "deploying")
            .unwrap_err();
        assert_eq!(e.code(), "role_insufficient");
        assert!(e.to_string().contains("operator"), "{e}");
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_scope_is_upload_of_one_valid_project() {
        assert_eq!(
            Scope::parse("upload:blink").unwrap(),
            Scope::Upload("blink".into())
        );
        assert_eq!(
            Scope::parse("upload:blink").unwrap().to_text(),
            "upload:blink"
        );
        for bad in ["upload:", "deploy:blink", "blink", "upload:a b"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }
}
