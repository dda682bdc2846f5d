//! Projects as an entity (issue 15): a project is the name devices and images carry
//! (`devices.project`, `firmware.project`), and now also a description, the protocols that may
//! enrol its devices, its config variables and its commands. This module alone writes the
//! `projects`, `project_variables` and `project_commands` tables (migration 0021), except for the
//! triggers of that migration, which add a bare row for every project name a device or image is
//! first given, so that every name in use is listed.
//!
//! **Variables** are typed (`string`, `int`, `bool`, `secret`) and may have a default; a device's
//! effective config is its project's defaults overlaid with its own values ([`crate::config`]).
//! A secret's default, like every secret value, is stored but never read back by the admin: it
//! is shown as `{"set": true|false}`.
//!
//! **Changing the variables** (a key added or removed, a type or a default changed) changes the
//! effective config of every device of the project: each gets a new config version (and so is
//! `pending` until it confirms), values for removed keys or keys whose type changed are dropped,
//! and — since the change takes the writer's lock ([`crate::Fleet::write_lock`]) — every
//! remembered check-in answer is forgotten, so the next check-in carries the new version.

use crate::db::{Conn, Db};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use crate::db;
use crate::error::{CoreError, Result};

/// The most variables a project may have.
pub const MAX_VARIABLES: usize = 100;
/// The most commands a project may have.
pub const MAX_COMMANDS: usize = 50;
/// The most characters of a description.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// The most bytes of a string or secret value.
pub const MAX_VALUE_BYTES: usize = 1_024;
/// The most bytes of a command's payload, as JSON text.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024;
/// The protocols a project may restrict enrolment to ([`crate::trust::PROTOCOLS`] without `any`).
pub const ENROL_PROTOCOLS: [&str; 5] = ["native", "arduino", "esp8266", "esp32fota", "legacy"];

/// A variable's type. Stored by name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum VarType {
    String,
    Int,
    Bool,
    /// A string that is never shown back to the admin: only the device it belongs to reads it.
    Secret,
}

impl VarType {
    pub fn as_str(self) -> &'static str {
        match self {
            VarType::String => "string",
            VarType::Int => "int",
            VarType::Bool => "bool",
            VarType::Secret => "secret",
        }
    }
}

/// A config variable as the admin reads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Variable {
    pub key: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: VarType,
    /// The default value, typed; null when none. A secret's is `{"set": true|false}`: it is
    /// never read back.
    pub default: Option<Value>,
}

/// A command offered on the project's devices' pages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ProjectCommand {
    /// Sent as the command's `key` (1 to 64 letters, digits, `_`, `.`, `-`).
    pub key: String,
    /// What the button says (1 to 64 characters).
    pub label: String,
    /// The JSON payload sent with the command (at most 4 KiB as text); null for none.
    #[serde(default)]
    pub payload: Option<Value>,
    /// Asked before the command is sent (at most 500 characters); null to send at once.
    #[serde(default)]
    pub confirmation: Option<String>,
}

/// A project.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Project {
    pub name: String,
    pub description: String,
    /// The protocols its devices may enrol and check in with (`native`, `arduino`, `esp8266`,
    /// `esp32fota`, `legacy`); null = any.
    pub enrolment: Option<Vec<String>>,
    pub variables: Vec<Variable>,
    pub commands: Vec<ProjectCommand>,
    /// Devices that name this project.
    pub devices: i64,
    /// Images that name this project.
    pub images: i64,
    pub created_at: String,
    pub changed_at: String,
}

/// A variable as the admin sends it (`POST`/`PATCH /api/v1/projects…`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct VariableInput {
    /// 1 to 64 characters: a letter or `_` first, then letters, digits, `_`, `.`, `-`.
    pub key: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: VarType,
    /// The default, of the variable's type; null for none. For a secret, leaving it out (or
    /// sending `{"set": true}` as read) keeps the stored one.
    #[serde(default, deserialize_with = "present")]
    pub default: Option<Value>,
}

/// A new project (`POST /api/v1/projects`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewProject {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enrolment: Option<Vec<String>>,
    #[serde(default)]
    pub variables: Option<Vec<VariableInput>>,
    #[serde(default)]
    pub commands: Option<Vec<ProjectCommand>>,
}

/// A change to a project (`PATCH /api/v1/projects/{name}`): each field left out stays; lists
/// sent replace the whole list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct ProjectPatch {
    #[serde(default)]
    pub description: Option<String>,
    /// The protocols allowed to enrol; null = any.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub enrolment: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub variables: Option<Vec<VariableInput>>,
    #[serde(default)]
    pub commands: Option<Vec<ProjectCommand>>,
}

/// `Some(value)` for a field that is present, null included; `None` (by `default`) when absent.
fn present<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A variable checked and ready to store; `default` is the JSON text, `keep_secret` asks to keep
/// the stored secret default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CleanVar {
    pub key: String,
    pub description: String,
    pub kind: VarType,
    pub default: Option<String>,
    pub keep_secret: bool,
}

/// The key syntax of variables and commands.
pub fn key(input: &str, what: &str) -> Result<String> {
    let ok = !input.is_empty()
        && input.len() <= 64
        && input
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        return Err(CoreError::invalid(
            "invalid_key",
            format!(
                "{what} key '{}' is not usable: 1 to 64 characters, a letter or '_' first, then letters, digits, '_', '.' or '-'",
                crate::validate::printable(input, 40)
            ),
        ));
    }
    Ok(input.to_string())
}

/// Check `value` against a variable's type: the typed value, or 422 `invalid_config_value`
/// saying what `key` needs. Never echoes a secret.
pub fn typed(key: &str, kind: VarType, value: &Value) -> Result<Value> {
    let bad = |need: &str| {
        CoreError::invalid(
            "invalid_config_value",
            format!(
                "{key} is a {} variable: its value must be {need}",
                kind.as_str()
            ),
        )
    };
    match kind {
        VarType::Int => match value {
            Value::Number(n) if n.is_i64() => Ok(value.clone()),
            _ => Err(bad("a whole number (JSON integer, not text)")),
        },
        VarType::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(bad("true or false (JSON, not text)")),
        },
        VarType::String | VarType::Secret => match value {
            Value::String(s) if s.len() <= MAX_VALUE_BYTES && !s.contains('\0') => {
                Ok(value.clone())
            }
            Value::String(_) => Err(bad(&format!(
                "text of at most {MAX_VALUE_BYTES} bytes, without NUL"
            ))),
            _ => Err(bad("text (a JSON string)")),
        },
    }
}

fn description(d: Option<&str>) -> Result<String> {
    let d = d.unwrap_or("").trim();
    if d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(CoreError::invalid(
            "invalid_description",
            format!("a description is at most {MAX_DESCRIPTION_CHARS} characters of text"),
        ));
    }
    Ok(d.to_string())
}

fn enrolment(list: Option<&[String]>) -> Result<Option<String>> {
    let Some(list) = list else { return Ok(None) };
    let mut clean: Vec<&str> = Vec::new();
    for p in list {
        let p = p.trim();
        let Some(k) = ENROL_PROTOCOLS.iter().find(|k| **k == p) else {
            return Err(CoreError::invalid(
                "invalid_enrolment",
                format!(
                    "'{}' is not a protocol devices can enrol with; use some of {} (or null for any)",
                    crate::validate::printable(p, 30),
                    ENROL_PROTOCOLS.join(", ")
                ),
            ));
        };
        if !clean.contains(k) {
            clean.push(k);
        }
    }
    if clean.is_empty() {
        return Err(CoreError::invalid(
            "invalid_enrolment",
            "an empty list would refuse every device of the project; name at least one protocol, or send null for any",
        ));
    }
    Ok(Some(json!(clean).to_string()))
}

pub(crate) fn clean_variables(vars: &[VariableInput]) -> Result<Vec<CleanVar>> {
    if vars.len() > MAX_VARIABLES {
        return Err(CoreError::invalid(
            "too_many_variables",
            format!("a project has at most {MAX_VARIABLES} variables"),
        ));
    }
    let mut out: Vec<CleanVar> = Vec::with_capacity(vars.len());
    for v in vars {
        let k = key(&v.key, "variable")?;
        if out.iter().any(|o| o.key == k) {
            return Err(CoreError::invalid(
                "duplicate_key",
                format!("variable {k} is listed twice"),
            ));
        }
        let set_marker = matches!(&v.default, Some(Value::Object(o)) if o.contains_key("set"));
        let (default, keep_secret) = match &v.default {
            None if v.kind == VarType::Secret => (None, true),
            Some(_) if v.kind == VarType::Secret && set_marker => (None, true),
            None | Some(Value::Null) => (None, false),
            Some(d) => (Some(typed(&k, v.kind, d)?.to_string()), false),
        };
        out.push(CleanVar {
            description: description(v.description.as_deref())?,
            key: k,
            kind: v.kind,
            default,
            keep_secret,
        });
    }
    Ok(out)
}

pub(crate) fn clean_commands(cmds: &[ProjectCommand]) -> Result<Vec<ProjectCommand>> {
    if cmds.len() > MAX_COMMANDS {
        return Err(CoreError::invalid(
            "too_many_commands",
            format!("a project has at most {MAX_COMMANDS} commands"),
        ));
    }
    let mut out: Vec<ProjectCommand> = Vec::with_capacity(cmds.len());
    for c in cmds {
        let k = key(&c.key, "command")?;
        if out.iter().any(|o| o.key == k) {
            return Err(CoreError::invalid(
                "duplicate_key",
                format!("command {k} is listed twice"),
            ));
        }
        let label = c.label.trim();
        if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "invalid_label",
                format!("command {k} needs a label of 1 to 64 characters"),
            ));
        }
        let payload = c.payload.clone().filter(|p| !p.is_null());
        if payload
            .as_ref()
            .is_some_and(|p| p.to_string().len() > MAX_PAYLOAD_BYTES)
        {
            return Err(CoreError::invalid(
                "payload_too_large",
                format!("command {k}'s payload is over {MAX_PAYLOAD_BYTES} bytes as JSON"),
            ));
        }
        let confirmation = c
            .confirmation
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if confirmation.is_some_and(|s| s.chars().count() > 500) {
            return Err(CoreError::invalid(
                "invalid_confirmation",
                format!("command {k}'s confirmation text is over 500 characters"),
            ));
        }
        out.push(ProjectCommand {
            key: k,
            label: label.to_string(),
            payload,
            confirmation: confirmation.map(str::to_string),
        });
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    name: String,
    description: String,
    enrolment: Option<String>,
    devices: i64,
    images: i64,
    created_at: String,
    changed_at: String,
}

/// A stored variable, as the config module reads it (with its real default).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct StoredVar {
    pub key: String,
    pub description: String,
    #[sqlx(rename = "type")]
    pub kind: VarType,
    pub default_value: Option<String>,
}

impl StoredVar {
    pub fn default_json(&self) -> Option<Value> {
        self.default_value
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
    }

    /// As the admin sees it: a secret's default masked.
    pub fn shown(&self) -> Variable {
        let default = if self.kind == VarType::Secret {
            Some(json!({"set": self.default_value.is_some()}))
        } else {
            self.default_json()
        };
        Variable {
            key: self.key.clone(),
            description: self.description.clone(),
            kind: self.kind,
            default,
        }
    }
}

const PROJECT_SELECT: &str =
    "SELECT p.name, p.description, p.enrolment, p.created_at, p.changed_at,
        (SELECT COUNT(*) FROM devices d WHERE d.project = p.name) AS devices,
        (SELECT COUNT(*) FROM firmware f WHERE f.project = p.name) AS images
     FROM projects p";

/// A project's variables, in order.
pub(crate) async fn variables(conn: &mut Conn, project: &str) -> Result<Vec<StoredVar>> {
    db::query_as(
        "SELECT key, description, type, default_value FROM project_variables
         WHERE project = ? ORDER BY position",
    )
    .bind(project)
    .fetch_all(&mut *conn)
    .await
}

async fn commands(conn: &mut Conn, project: &str) -> Result<Vec<ProjectCommand>> {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = db::query_as(
        "SELECT key, label, payload, confirmation FROM project_commands
         WHERE project = ? ORDER BY position",
    )
    .bind(project)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, label, payload, confirmation)| ProjectCommand {
            key,
            label,
            payload: payload.and_then(|p| serde_json::from_str(&p).ok()),
            confirmation,
        })
        .collect())
}

async fn assemble(conn: &mut Conn, row: ProjectRow) -> Result<Project> {
    let variables = variables(conn, &row.name)
        .await?
        .iter()
        .map(StoredVar::shown)
        .collect();
    let commands = commands(conn, &row.name).await?;
    Ok(Project {
        enrolment: row
            .enrolment
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok()),
        name: row.name,
        description: row.description,
        variables,
        commands,
        devices: row.devices,
        images: row.images,
        created_at: row.created_at,
        changed_at: row.changed_at,
    })
}

/// Every project, by name.
pub(crate) async fn list(db: &Db) -> Result<Vec<Project>> {
    let mut conn = db.acquire().await?;
    let rows: Vec<ProjectRow> = db::query_as(&format!("{PROJECT_SELECT} ORDER BY p.name"))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(assemble(&mut conn, r).await?);
    }
    Ok(out)
}

/// One project; 404 when there is none of that name.
pub(crate) async fn get(conn: &mut Conn, name: &str) -> Result<Project> {
    let row: Option<ProjectRow> = db::query_as(&format!("{PROJECT_SELECT} WHERE p.name = ?"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => assemble(conn, r).await,
        None => Err(CoreError::not_found(format!("project {name}"))),
    }
}

/// The protocols a project lets enrol (`None`: any, or no such project).
pub(crate) async fn enrolment_of(conn: &mut Conn, project: &str) -> Result<Option<Vec<String>>> {
    let e: Option<Option<String>> =
        db::query_scalar("SELECT enrolment FROM projects WHERE name = ?")
            .bind(project)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(e.flatten().and_then(|e| serde_json::from_str(&e).ok()))
}

/// A checked project creation.
pub(crate) struct CleanNew {
    pub name: String,
    description: String,
    enrolment: Option<String>,
    variables: Vec<CleanVar>,
    commands: Vec<ProjectCommand>,
}

pub(crate) fn clean_new(p: &NewProject) -> Result<CleanNew> {
    Ok(CleanNew {
        name: crate::validate::project(&p.name)?,
        description: description(p.description.as_deref())?,
        enrolment: enrolment(p.enrolment.as_deref())?,
        variables: clean_variables(p.variables.as_deref().unwrap_or_default())?,
        commands: clean_commands(p.commands.as_deref().unwrap_or_default())?,
    })
}

/// Create a project (in the caller's write transaction); 409 `project_exists` when the name is
/// taken (also by a project only named by devices or images so far: change it instead).
pub(crate) async fn create(conn: &mut Conn, p: &CleanNew) -> Result<()> {
    let now = crate::time::now();
    let done = db::query(
        "INSERT INTO projects (name, description, enrolment, created_at, changed_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.enrolment)
    .bind(&now)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(CoreError::Unavailable {
            code: "project_exists",
            message: format!(
                "project {} exists already; change it with PATCH /api/v1/projects/{}",
                p.name, p.name
            ),
        });
    }
    write_variables(conn, &p.name, &p.variables, &[]).await?;
    write_commands(conn, &p.name, &p.commands).await?;
    Ok(())
}

/// A checked project change.
pub(crate) struct CleanPatch {
    description: Option<String>,
    enrolment: Option<Option<String>>,
    variables: Option<Vec<CleanVar>>,
    commands: Option<Vec<ProjectCommand>>,
}

pub(crate) fn clean_patch(p: &ProjectPatch) -> Result<CleanPatch> {
    Ok(CleanPatch {
        description: p
            .description
            .as_deref()
            .map(|d| description(Some(d)))
            .transpose()?,
        enrolment: p
            .enrolment
            .as_ref()
            .map(|e| enrolment(e.as_deref()))
            .transpose()?,
        variables: p.variables.as_deref().map(clean_variables).transpose()?,
        commands: p.commands.as_deref().map(clean_commands).transpose()?,
    })
}

/// What a change did to the project's variables.
#[derive(Debug, Default)]
pub(crate) struct VariablesChanged {
    /// Whether any device's effective config changed (a key added or removed, a type or a
    /// default changed).
    pub effective: bool,
    /// Keys whose per-device values no longer fit (removed, or of another type now).
    pub dropped: Vec<String>,
}

/// Change a project (in the caller's write transaction); 404 when there is none.
pub(crate) async fn patch(conn: &mut Conn, name: &str, p: &CleanPatch) -> Result<VariablesChanged> {
    let exists: Option<i64> =
        db::query_scalar("SELECT CAST(1 AS BIGINT) FROM projects WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    if exists.is_none() {
        return Err(CoreError::not_found(format!("project {name}")));
    }
    let now = crate::time::now();
    db::query(
        "UPDATE projects SET description = COALESCE(?, description),
            enrolment = CASE WHEN ? THEN ? ELSE enrolment END, changed_at = ?
         WHERE name = ?",
    )
    .bind(&p.description)
    .bind(p.enrolment.is_some())
    .bind(p.enrolment.clone().flatten())
    .bind(&now)
    .bind(name)
    .execute(&mut *conn)
    .await?;
    let mut changed = VariablesChanged::default();
    if let Some(vars) = &p.variables {
        let before = variables(conn, name).await?;
        for old in &before {
            match vars.iter().find(|v| v.key == old.key) {
                None => changed.dropped.push(old.key.clone()),
                Some(v) if v.kind != old.kind => changed.dropped.push(old.key.clone()),
                Some(v) => {
                    if !v.keep_secret && v.default != old.default_value {
                        changed.effective = true;
                    }
                }
            }
        }
        if !changed.dropped.is_empty()
            || vars.iter().any(|v| !before.iter().any(|o| o.key == v.key))
        {
            changed.effective = true;
        }
        write_variables(conn, name, vars, &before).await?;
    }
    if let Some(cmds) = &p.commands {
        write_commands(conn, name, cmds).await?;
    }
    Ok(changed)
}

async fn write_variables(
    conn: &mut Conn,
    project: &str,
    vars: &[CleanVar],
    before: &[StoredVar],
) -> Result<()> {
    db::query("DELETE FROM project_variables WHERE project = ?")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    for (i, v) in vars.iter().enumerate() {
        let default = if v.keep_secret {
            before
                .iter()
                .find(|o| o.key == v.key && o.kind == VarType::Secret)
                .and_then(|o| o.default_value.clone())
        } else {
            v.default.clone()
        };
        db::query(
            "INSERT INTO project_variables (project, key, description, type, default_value, position)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(project)
        .bind(&v.key)
        .bind(&v.description)
        .bind(v.kind)
        .bind(default)
        .bind(i as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn write_commands(conn: &mut Conn, project: &str, cmds: &[ProjectCommand]) -> Result<()> {
    db::query("DELETE FROM project_commands WHERE project = ?")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    for (i, c) in cmds.iter().enumerate() {
        db::query(
            "INSERT INTO project_commands (project, key, label, payload, confirmation, position)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(project)
        .bind(&c.key)
        .bind(&c.label)
        .bind(c.payload.as_ref().map(Value::to_string))
        .bind(&c.confirmation)
        .bind(i as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Delete a project (in the caller's write transaction): 404 when there is none, 409
/// `project_in_use` while a device or an image names it.
pub(crate) async fn delete(conn: &mut Conn, name: &str) -> Result<()> {
    let p = get(conn, name).await?;
    if p.devices > 0 || p.images > 0 {
        return Err(CoreError::Unavailable {
            code: "project_in_use",
            message: format!(
                "project {name} is used by {} device(s) and {} image(s); move or delete them first",
                p.devices, p.images
            ),
        });
    }
    db::query("DELETE FROM projects WHERE name = ?")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
