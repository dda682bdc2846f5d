//! Per-device config (issue 15): values for the variables of a device's project
//! ([`crate::projects`]), versioned, and what the device confirmed. This module alone writes the
//! `device_config` and `device_config_values` tables (migration 0021).
//!
//! **Effective config** = the project's variable defaults overlaid with the device's own values;
//! a variable with neither is left out. Only variables of the device's current project count.
//!
//! **Versions.** Each device has its own counter. A device of a project with variables starts at
//! version 1 (its project's defaults) without a row; every change of its effective config makes
//! a new version: an admin change of its values ([`patch`]), a change of its project's variables
//! or defaults ([`project_changed`], for every device of the project), a move to another project
//! (noticed at its next check-in, [`checkin_version`], which drops its values: they were for the
//! other project's variables). The check-in answer carries the current version
//! (`config_version`, null when the project has no variables); the device fetches the config
//! when that differs from the version it applied ([`for_device`] records the version given) and
//! confirms it ([`applied`]). `pending_since` is when the device's config first became newer than
//! what it confirmed; it is cleared when it confirms the current version.
//!
//! **Remembered answers.** A change to one device's values takes its device lock, which forgets
//! that device's remembered check-in ([`crate::Fleet::device_write_lock`]); a change to a
//! project's variables takes the writer's lock, which forgets them all. The remembered answer
//! holds the version it was given with, so it is never stale.
//!
//! **Secrets** are stored as given and leave the server only in [`for_device`], to the device
//! itself: every admin read ([`DeviceConfig`], events included) shows `{"set": true}`.

use crate::db::Conn;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::db;
use crate::error::{CoreError, Result};
use crate::projects::{self, StoredVar, VarType};

/// Whether a device runs the config it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConfigState {
    /// The device confirmed the current version.
    Applied,
    /// The current version is newer than what the device confirmed (or it confirmed none).
    Pending,
}

/// One variable of a device's config, as the admin sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConfigEntry {
    pub key: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: VarType,
    /// The project's default (a secret's as `{"set": bool}`); null when none.
    pub default: Option<Value>,
    /// Whether the device has its own value for it.
    pub set: bool,
    /// The device's own value (a secret's as `{"set": true}`); null when not set.
    pub value: Option<Value>,
}

/// A device's config, as the admin sees it (`GET /api/v1/devices/{mac}/config`, the
/// `device_config` event). Secrets are never in it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceConfig {
    pub mac: String,
    pub project: Option<String>,
    /// The current version; null when the device's project has no variables.
    pub version: Option<i64>,
    /// The version the device confirmed; null when none.
    pub applied_version: Option<i64>,
    pub applied_at: Option<String>,
    /// Since when the device has not confirmed its current config (null when applied, or when
    /// it was never given any).
    pub pending_since: Option<String>,
    /// null when there is no config.
    pub state: Option<ConfigState>,
    /// The effective config, secrets masked.
    pub values: Map<String, Value>,
    /// Each variable of the project with its default and the device's value.
    pub variables: Vec<ConfigEntry>,
}

/// What a device reads (`GET /api/v1/device/config`): the only place a secret leaves the server.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceConfigAnswer {
    pub version: i64,
    /// The effective config, typed: string, integer, bool; secrets as strings.
    pub values: Map<String, Value>,
}

/// A change of a device's values (`PATCH /api/v1/devices/{mac}/config`).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct ConfigPatch {
    /// Per key: the new value (of the variable's type), or null for the project's default.
    pub values: Map<String, Value>,
}

/// What a device confirms (`POST /api/v1/device/config`).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct ConfigApplied {
    pub version: i64,
}

#[derive(Debug, Clone, Default, sqlx::FromRow)]
struct Row {
    project: Option<String>,
    version: i64,
    given_version: Option<i64>,
    applied_version: Option<i64>,
    applied_at: Option<String>,
    pending_since: Option<String>,
}

async fn row(conn: &mut Conn, mac: &str) -> Result<Option<Row>> {
    db::query_as(
        "SELECT project, version, given_version, applied_version, applied_at, pending_since
         FROM device_config WHERE mac = ?",
    )
    .bind(mac)
    .fetch_optional(&mut *conn)
    .await
}

async fn values(conn: &mut Conn, mac: &str) -> Result<Map<String, Value>> {
    let rows: Vec<(String, String)> =
        db::query_as("SELECT key, value FROM device_config_values WHERE mac = ?")
            .bind(mac)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| serde_json::from_str(&v).ok().map(|v| (k, v)))
        .collect())
}

async fn device_project(conn: &mut Conn, mac: &str) -> Result<Option<String>> {
    let p: Option<Option<String>> = db::query_scalar("SELECT project FROM devices WHERE mac = ?")
        .bind(mac)
        .fetch_optional(&mut *conn)
        .await?;
    match p {
        Some(p) => Ok(p),
        None => Err(CoreError::not_found(format!("device {mac}"))),
    }
}

fn effective(vars: &[StoredVar], own: &Map<String, Value>, mask: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for v in vars {
        let value = own.get(&v.key).cloned().or_else(|| v.default_json());
        if let Some(value) = value {
            let shown = if mask && v.kind == VarType::Secret {
                json!({"set": true})
            } else {
                value
            };
            out.insert(v.key.clone(), shown);
        }
    }
    out
}

/// Make a new version for `mac` (row created at version 2 if it had none: version 1 is the
/// implicit one), pending since now unless already pending.
async fn bump(conn: &mut Conn, mac: &str, project: &str, now: &str) -> Result<()> {
    db::query(
        "INSERT INTO device_config (mac, project, version, pending_since, changed_at)
         VALUES (?1, ?2, 2, ?3, ?3)
         ON CONFLICT (mac) DO UPDATE SET version = device_config.version + 1, project = ?2,
            changed_at = ?3, pending_since = COALESCE(device_config.pending_since, ?3)",
    )
    .bind(mac)
    .bind(project)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The admin's view of a device's config; 404 for an unknown device.
pub(crate) async fn admin_view(conn: &mut Conn, mac: &str) -> Result<DeviceConfig> {
    let project = device_project(conn, mac).await?;
    let vars = match &project {
        Some(p) => projects::variables(conn, p).await?,
        None => Vec::new(),
    };
    let own = values(conn, mac).await?;
    let row = row(conn, mac).await?;
    // A device that moved to another project gets its next version at its next check-in
    // ([`checkin_version`]); it is shown with that version already.
    let version = (!vars.is_empty()).then(|| match &row {
        Some(r) if r.project == project => r.version,
        Some(r) => r.version + 1,
        None => 1,
    });
    let r = row.unwrap_or_default();
    let state = version.map(|v| {
        if r.applied_version == Some(v) {
            ConfigState::Applied
        } else {
            ConfigState::Pending
        }
    });
    let variables = vars
        .iter()
        .map(|v| {
            let mine = own.get(&v.key);
            let shown = v.shown();
            ConfigEntry {
                key: v.key.clone(),
                description: v.description.clone(),
                kind: v.kind,
                default: shown.default,
                set: mine.is_some(),
                value: mine.map(|m| {
                    if v.kind == VarType::Secret {
                        json!({"set": true})
                    } else {
                        m.clone()
                    }
                }),
            }
        })
        .collect();
    Ok(DeviceConfig {
        mac: mac.to_string(),
        values: effective(&vars, &own, true),
        variables,
        version,
        applied_version: r.applied_version.filter(|_| version.is_some()),
        applied_at: r.applied_at.filter(|_| version.is_some()),
        pending_since: r
            .pending_since
            .filter(|_| state == Some(ConfigState::Pending)),
        state,
        project,
    })
}

/// Change a device's values (in the caller's write transaction): each key must be a variable of
/// its project (422 `unknown_config_key` naming the others), each value of the variable's type
/// (422 `invalid_config_value`), null returns it to the default. A change makes a new version;
/// the same values again change nothing. Returns whether anything changed.
pub(crate) async fn patch(conn: &mut Conn, mac: &str, change: &Map<String, Value>) -> Result<bool> {
    let project = device_project(conn, mac).await?;
    let Some(project) = project else {
        return Err(CoreError::invalid(
            "no_config_variables",
            format!("device {mac} has no project, so it has no config; set its project first"),
        ));
    };
    let vars = projects::variables(conn, &project).await?;
    let unknown: Vec<&str> = change
        .keys()
        .filter(|k| !vars.iter().any(|v| &v.key == *k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let printable: Vec<String> = unknown
            .iter()
            .map(|k| crate::validate::printable(k, 40))
            .collect();
        return Err(CoreError::invalid(
            "unknown_config_key",
            format!(
                "project {project} has no variable {}; add it to the project first (Projects page), or leave it out",
                printable.join(", ")
            ),
        ));
    }
    let mut typed = Vec::with_capacity(change.len());
    for (k, v) in change {
        let var = vars.iter().find(|x| &x.key == k).expect("checked above");
        let t = match v {
            Value::Null => None,
            v => Some(projects::typed(k, var.kind, v)?.to_string()),
        };
        typed.push((k, t));
    }
    // A move to another project is settled first, so the version and values start from it.
    follow_project(conn, mac, &project).await?;
    let own = values(conn, mac).await?;
    let mut changed = false;
    for (k, t) in typed {
        let before = own.get(k.as_str()).map(Value::to_string);
        if before == t {
            continue;
        }
        changed = true;
        match t {
            Some(t) => {
                db::query(
                    "INSERT INTO device_config_values (mac, key, value) VALUES (?, ?, ?)
                     ON CONFLICT (mac, key) DO UPDATE SET value = excluded.value",
                )
                .bind(mac)
                .bind(k)
                .bind(t)
                .execute(&mut *conn)
                .await?;
            }
            None => {
                db::query("DELETE FROM device_config_values WHERE mac = ? AND key = ?")
                    .bind(mac)
                    .bind(k)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    if changed {
        bump(conn, mac, &project, &crate::time::now()).await?;
    }
    Ok(changed)
}

/// A device whose config row was made for another project has moved: drop its values (they were
/// for the other project's variables) and make a new version. Returns whether it moved.
async fn follow_project(conn: &mut Conn, mac: &str, project: &str) -> Result<bool> {
    let Some(r) = row(conn, mac).await? else {
        return Ok(false);
    };
    if r.project.as_deref() == Some(project) {
        return Ok(false);
    }
    db::query("DELETE FROM device_config_values WHERE mac = ?")
        .bind(mac)
        .execute(&mut *conn)
        .await?;
    bump(conn, mac, project, &crate::time::now()).await?;
    Ok(true)
}

/// The config version a check-in answers (`config_version`), in the check-in's write
/// transaction: null when the device's project has no variables; a device that moved to another
/// project since its config was made gets a new version first.
pub(crate) async fn checkin_version(
    conn: &mut Conn,
    mac: &str,
    project: Option<&str>,
) -> Result<Option<i64>> {
    let Some(project) = project else {
        return Ok(None);
    };
    let has_vars: Option<i64> = db::query_scalar(
        "SELECT CAST(1 AS BIGINT) FROM project_variables WHERE project = ? LIMIT 1",
    )
    .bind(project)
    .fetch_optional(&mut *conn)
    .await?;
    if has_vars.is_none() {
        return Ok(None);
    }
    follow_project(conn, mac, project).await?;
    Ok(Some(row(conn, mac).await?.map_or(1, |r| r.version)))
}

/// The project's variables changed ([`projects::patch`]): drop values of `dropped` keys (and all
/// values of devices whose config was made for another project) and make a new version for every
/// device of the project — set-based, a few statements whatever the project's size. Returns the
/// devices.
pub(crate) async fn project_changed(
    conn: &mut Conn,
    project: &str,
    dropped: &[String],
) -> Result<Vec<String>> {
    let macs: Vec<String> = db::query_scalar("SELECT mac FROM devices WHERE project = ?")
        .bind(project)
        .fetch_all(&mut *conn)
        .await?;
    db::query(&format!(
        "DELETE FROM device_config_values
         WHERE key IN (SELECT value FROM {})
           AND mac IN (SELECT mac FROM devices WHERE project = ?1)",
        conn.backend().text_elements("?2", "k")
    ))
    .bind(project)
    .bind(json!(dropped).to_string())
    .execute(&mut *conn)
    .await?;
    db::query(
        "DELETE FROM device_config_values WHERE mac IN (
             SELECT c.mac FROM device_config c JOIN devices d ON d.mac = c.mac
             WHERE d.project = ?1 AND c.project IS DISTINCT FROM ?1)",
    )
    .bind(project)
    .execute(&mut *conn)
    .await?;
    db::query(
        "INSERT INTO device_config (mac, project, version, pending_since, changed_at)
         SELECT mac, ?1, 2, ?2, ?2 FROM devices WHERE project = ?1
         ON CONFLICT (mac) DO UPDATE SET version = device_config.version + 1,
            project = excluded.project, changed_at = excluded.changed_at,
            pending_since = COALESCE(device_config.pending_since, excluded.pending_since)",
    )
    .bind(project)
    .bind(crate::time::now())
    .execute(&mut *conn)
    .await?;
    Ok(macs)
}

/// A device reads its config (in the caller's write transaction): its effective config with
/// secrets, and the version, recorded as given. 404 `no_config` when its project has no
/// variables.
pub(crate) async fn for_device(conn: &mut Conn, mac: &str) -> Result<DeviceConfigAnswer> {
    let project = device_project(conn, mac).await?;
    let Some(version) = checkin_version(conn, mac, project.as_deref()).await? else {
        return Err(CoreError::NotFound {
            what: format!(
                "config of device {mac}: its project defines no variables (config_version is null)"
            ),
        });
    };
    let project = project.expect("a version needs a project");
    let vars = projects::variables(conn, &project).await?;
    let own = values(conn, mac).await?;
    let now = crate::time::now();
    db::query(
        "INSERT INTO device_config (mac, project, version, given_version, pending_since, changed_at)
         VALUES (?1, ?2, ?3, ?3, ?4, ?4)
         ON CONFLICT (mac) DO UPDATE SET given_version =
              CASE WHEN COALESCE(device_config.given_version, 0) > ?3
                   THEN device_config.given_version ELSE ?3 END,
            pending_since = CASE WHEN COALESCE(device_config.applied_version, 0) < device_config.version
                                 THEN COALESCE(device_config.pending_since, ?4) END",
    )
    .bind(mac)
    .bind(&project)
    .bind(version)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    Ok(DeviceConfigAnswer {
        version,
        values: effective(&vars, &own, false),
    })
}

/// A device confirms it applied `version` (in the caller's write transaction). 409
/// `config_version_unknown` for a version it was never given.
pub(crate) async fn applied(conn: &mut Conn, mac: &str, version: i64) -> Result<()> {
    let r = row(conn, mac).await?;
    let given = r.as_ref().and_then(|r| r.given_version).unwrap_or(0);
    if version < 1 || version > given {
        return Err(CoreError::Unavailable {
            code: "config_version_unknown",
            message: format!(
                "device {mac} was never given config version {version} (the newest it was given is {given}); GET /api/v1/device/config, apply it, then confirm its version"
            ),
        });
    }
    db::query(
        "UPDATE device_config SET applied_version =
              CASE WHEN COALESCE(applied_version, 0) > ?1 THEN applied_version ELSE ?1 END,
            applied_at = ?2,
            pending_since = CASE WHEN COALESCE(applied_version, 0) >= version OR ?1 >= version
                                 THEN NULL ELSE pending_since END
         WHERE mac = ?3",
    )
    .bind(version)
    .bind(crate::time::now())
    .bind(mac)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
