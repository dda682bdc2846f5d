//! Organisations (the `organisations` table, kept in the default organisation's database only):
//! teams on one server that never see each other. Each organisation other than the default has
//! its own data directory (`orgs/<id>/` in the server's) with its own database and stored
//! images, opened as a [`crate::Fleet`] of its own by [`crate::Fleet::organisation`]: nothing
//! of one organisation is in a table, a blob store or an event bus another can reach.

use serde::{Deserialize, Serialize};

use crate::db::{self, Conn, Db};
use crate::error::{CoreError, Result};

/// What the default organisation is called where an organisation must be named.
pub const DEFAULT_ID: &str = "default";

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Organisation {
    /// Lower-case letters, digits and `-`; names its data directory and prefixes its secrets.
    pub id: String,
    pub name: String,
    /// The secret in its devices' path: they reach the server at `/o/<enrolment_key>/…`.
    pub enrolment_key: String,
    pub created_at: String,
    pub created_by: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    /// 2 to 32 of `a-z`, `0-9` and `-`, starting with a letter; not `default`.
    pub id: String,
    /// What people read, 1 to 64 characters.
    pub name: String,
}

/// The id and name checked: 422 with what to change otherwise.
pub(crate) fn check_new(new: &NewOrganisation) -> Result<(String, String)> {
    let id = new.id.trim().to_owned();
    let ok = (2..=32).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok || id == DEFAULT_ID {
        return Err(CoreError::invalid(
            "invalid_organisation_id",
            format!("'{}' cannot be an organisation's id: give 2 to 32 lower-case letters, digits or '-', starting with a letter (not 'default'), e.g. 'robotics-lab'", new.id),
        ));
    }
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "invalid_name",
            "an organisation's name is 1 to 64 characters without control characters, e.g. 'Robotics lab'",
        ));
    }
    Ok((id, name))
}

/// 409 `organisation_exists`.
pub(crate) fn exists(id: &str) -> CoreError {
    CoreError::Unavailable {
        code: "organisation_exists",
        message: format!("there is already an organisation '{id}': pick another id"),
    }
}

const COLUMNS: &str = "id, name, enrolment_key, created_at, created_by";

pub(crate) async fn create(
    conn: &mut Conn,
    id: &str,
    name: &str,
    by: &str,
) -> Result<Organisation> {
    let taken: Option<String> = db::query_scalar("SELECT id FROM organisations WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    if taken.is_some() {
        return Err(exists(id));
    }
    let org = Organisation {
        id: id.to_owned(),
        name: name.to_owned(),
        enrolment_key: crate::access::random_secret(),
        created_at: crate::time::now(),
        created_by: by.to_owned(),
    };
    db::query(&format!(
        "INSERT INTO organisations ({COLUMNS}) VALUES (?, ?, ?, ?, ?)"
    ))
    .bind(&org.id)
    .bind(&org.name)
    .bind(&org.enrolment_key)
    .bind(&org.created_at)
    .bind(&org.created_by)
    .execute(&mut *conn)
    .await?;
    Ok(org)
}

pub(crate) async fn list(db: &Db) -> Result<Vec<Organisation>> {
    db::query_as(&format!("SELECT {COLUMNS} FROM organisations ORDER BY id"))
        .fetch_all(db)
        .await
}

pub(crate) async fn get(db: &Db, id: &str) -> Result<Option<Organisation>> {
    db::query_as(&format!("SELECT {COLUMNS} FROM organisations WHERE id = ?"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub(crate) async fn by_key(db: &Db, key: &str) -> Result<Option<Organisation>> {
    db::query_as(&format!(
        "SELECT {COLUMNS} FROM organisations WHERE enrolment_key = ?"
    ))
    .bind(key)
    .fetch_optional(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(id: &str) -> NewOrganisation {
        NewOrganisation {
            id: id.into(),
            name: "Lab".into(),
        }
    }

    #[test]
    fn ids_are_short_lower_case_and_never_default() {
        for good in ["ab", "robotics-lab", "lab2"] {
            assert!(check_new(&new(good)).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "default",
            "Lab",
            "2lab",
            "lab.x",
            "lab_x",
            &"a".repeat(33),
            "",
        ] {
            assert!(check_new(&new(bad)).is_err(), "{bad}");
        }
    }
}
