//! The audit log (issue 15): one row per admin change — when, who, which operation, on what, and
//! with what result. This module alone writes and reads the `audit` table (migration 0017).
//!
//! **Append-only.** There is no API to change or delete a row. The one change a row ever sees is
//! its result: a row is written `pending` before the change is made ([`record`]) and given the
//! HTTP status and [`Outcome`] afterwards ([`finish`]), once. SQLite triggers refuse everything
//! else (any `DELETE`, any other `UPDATE`), so not even a bug in this crate can rewrite history.
//! A row that stays `pending` means the result is unknown (the server stopped, or the disk was
//! full when the result was to be written): the change may or may not have been made.

use std::collections::BTreeMap;

use crate::db::Db;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db;
use crate::error::{CoreError, Result};

/// Rows answered when the caller names no limit.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most rows one request answers (the CSV export included).
pub const MAX_LIMIT: i64 = 10_000;

/// What became of an audited request. Stored by name (`audit.outcome`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum Outcome {
    /// Written before the change; no result recorded (yet, or ever: the result is unknown).
    Pending,
    /// Answered 1xx–3xx: the change was made.
    Ok,
    /// Answered 4xx: the request was refused; nothing changed.
    Refused,
    /// Answered 5xx (a full disk included): the change was not made.
    Failed,
}

impl Outcome {
    /// The outcome an HTTP status means.
    pub fn of_status(status: u16) -> Self {
        match status {
            400..=499 => Outcome::Refused,
            500.. => Outcome::Failed,
            _ => Outcome::Ok,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// One audited admin request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// When the request came in (UTC, milliseconds).
    pub at: String,
    /// Who: `admin` (the admin token) or `legacy-admin-key` (the token sent as
    /// `X-Admin-API-Key`, the legacy server's header). Named admin tokens do not exist yet.
    pub actor: String,
    /// The operation: its OpenAPI operation id (`patch_firmware`, `create_deployment`, …), or
    /// `legacy_…` for the legacy admin API.
    pub action: String,
    pub method: String,
    /// The request path, without the query.
    pub path: String,
    /// The path parameters that name what was changed (`mac`, `id`, `filename`), `name=value`
    /// joined by `,`; none for a route without parameters.
    pub target: Option<String>,
    /// The HTTP status answered; none while pending.
    pub status: Option<i64>,
    pub outcome: Outcome,
    /// What was sent, without secrets.
    pub detail: Option<AuditDetail>,
}

/// What an audited request sent, without secrets: names, and the values of harmless fields only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditDetail {
    /// The names of the JSON body's fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The names of the query's parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<String>,
    /// The new value of a few harmless fields (project, version, file name, name, …): a short
    /// string, a number, a boolean or null. Never a token, a secret, notes or tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Value>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: String,
    actor: String,
    action: String,
    method: String,
    path: String,
    target: Option<String>,
    status: Option<i64>,
    outcome: Outcome,
    detail: Option<String>,
}

impl From<Row> for AuditEntry {
    fn from(r: Row) -> Self {
        AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            method: r.method,
            path: r.path,
            target: r.target,
            status: r.status,
            outcome: r.outcome,
            detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

/// A request about to be handled, as recorded before it runs.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor: String,
    pub action: String,
    pub method: String,
    pub path: String,
    pub target: Option<String>,
    pub detail: Option<AuditDetail>,
}

/// Which rows [`list`] answers, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Rows at or after this time (a prefix such as `2026-12-06` works: times compare as text).
    pub since: Option<String>,
    /// Rows strictly before this time.
    pub until: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<Outcome>,
    /// At most this many rows ([`DEFAULT_LIMIT`] when absent; 1 to [`MAX_LIMIT`]).
    pub limit: Option<i64>,
}

/// Write a request's row, `pending`, before the request runs. Returns its id.
pub(crate) async fn record(db: &Db, new: &NewAuditEntry) -> Result<i64> {
    let detail = new
        .detail
        .as_ref()
        .map(|d| serde_json::to_string(d).expect("names and plain values serialize"));
    // In a transaction committed on its own: an autocommit `INSERT … RETURNING` read with
    // `fetch_one` hands back the id at the first row, before SQLite commits, so a commit a full
    // disk refused went unseen — the change then ran with no audit row. Now that refusal is a 507
    // and the change does not run.
    let mut tx = crate::db::begin_write(db).await?;
    let id = db::query_scalar(
        "INSERT INTO audit (at, actor, action, method, path, target, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(crate::time::now())
    .bind(&new.actor)
    .bind(&new.action)
    .bind(&new.method)
    .bind(&new.path)
    .bind(&new.target)
    .bind(detail)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Write a finished row on `conn`, inside the caller's transaction: a change otafleet made by
/// itself (a rollout pausing at its error limit), recorded with the change or not at all.
pub(crate) async fn record_done(
    conn: &mut crate::db::Conn,
    new: &NewAuditEntry,
    status: u16,
) -> Result<()> {
    let detail = new
        .detail
        .as_ref()
        .map(|d| serde_json::to_string(d).expect("names and plain values serialize"));
    db::query(
        "INSERT INTO audit (at, actor, action, method, path, target, detail, status, outcome)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(crate::time::now())
    .bind(&new.actor)
    .bind(&new.action)
    .bind(&new.method)
    .bind(&new.path)
    .bind(&new.target)
    .bind(detail)
    .bind(i64::from(status))
    .bind(Outcome::of_status(status))
    .execute(conn)
    .await?;
    Ok(())
}

/// Give a pending row its result. A row that already has one keeps it (the triggers would refuse
/// the change anyway): a conflict.
pub(crate) async fn finish(db: &Db, id: i64, status: u16) -> Result<Outcome> {
    let outcome = Outcome::of_status(status);
    let done =
        db::query("UPDATE audit SET status = ?, outcome = ? WHERE id = ? AND outcome = 'pending'")
            .bind(i64::from(status))
            .bind(outcome)
            .bind(id)
            .execute(db)
            .await?;
    if done.rows_affected() != 1 {
        return Err(CoreError::conflict(format!(
            "audit row {id} is not pending: its result is written once"
        )));
    }
    Ok(outcome)
}

pub(crate) async fn list(db: &Db, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
    let limit = crate::validate::limit(filter.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let rows: Vec<Row> = db::query_as(
        "SELECT * FROM audit
         WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2)
           AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR target = ?4)
           AND (?5 IS NULL OR outcome = ?5)
         ORDER BY id DESC LIMIT ?6",
    )
    .bind(&filter.since)
    .bind(&filter.until)
    .bind(&filter.action)
    .bind(&filter.target)
    .bind(filter.outcome)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fleet() -> (tempfile::TempDir, crate::Fleet) {
        let dir = tempfile::tempdir().unwrap();
        let fleet = crate::Fleet::open(crate::Settings::new(dir.path()))
            .await
            .unwrap();
        (dir, fleet)
    }

    fn entry(action: &str, target: Option<&str>) -> NewAuditEntry {
        NewAuditEntry {
            actor: "admin".into(),
            action: action.into(),
            method: "PATCH".into(),
            path: "/api/v1/firmware/1".into(),
            target: target.map(str::to_owned),
            detail: Some(AuditDetail {
                fields: vec!["version".into()],
                ..Default::default()
            }),
        }
    }

    #[tokio::test]
    async fn a_row_gets_its_result_once_and_is_never_deleted_or_rewritten() {
        let (_dir, fleet) = fleet().await;
        let id = fleet
            .audit_record(&entry("patch_firmware", Some("id=1")))
            .await
            .unwrap();
        let rows = fleet.audit_list(&AuditFilter::default()).await.unwrap();
        assert_eq!(rows[0].outcome, Outcome::Pending);
        assert_eq!(rows[0].status, None);
        assert_eq!(fleet.audit_finish(id, 422).await.unwrap(), Outcome::Refused);
        assert!(fleet.audit_finish(id, 200).await.is_err(), "only once");
        let db = fleet.db();
        for sql in [
            "DELETE FROM audit",
            "UPDATE audit SET actor = 'someone else'",
            "UPDATE audit SET outcome = 'ok', status = 200",
        ] {
            assert!(db::query(sql).execute(db).await.is_err(), "{sql}");
        }
        let rows = fleet.audit_list(&AuditFilter::default()).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].status, rows[0].outcome),
            (Some(422), Outcome::Refused)
        );
        assert_eq!(rows[0].actor, "admin");
    }

    #[tokio::test]
    async fn filters_and_limits_newest_first() {
        let (_dir, fleet) = fleet().await;
        for (i, a) in ["a", "b", "a"].iter().enumerate() {
            let id = fleet
                .audit_record(&entry(a, Some(&format!("id={i}"))))
                .await
                .unwrap();
            fleet.audit_finish(id, 200 + 100 * i as u16).await.unwrap();
        }
        let all = fleet.audit_list(&AuditFilter::default()).await.unwrap();
        assert_eq!(
            all.iter()
                .map(|r| r.target.clone().unwrap())
                .collect::<Vec<_>>(),
            ["id=2", "id=1", "id=0"]
        );
        let only = |f: AuditFilter| {
            let fleet = fleet.clone();
            async move { fleet.audit_list(&f).await.unwrap().len() }
        };
        let f = AuditFilter::default;
        assert_eq!(
            only(AuditFilter {
                action: Some("a".into()),
                ..f()
            })
            .await,
            2
        );
        assert_eq!(
            only(AuditFilter {
                target: Some("id=1".into()),
                ..f()
            })
            .await,
            1
        );
        assert_eq!(
            only(AuditFilter {
                outcome: Some(Outcome::Refused),
                ..f()
            })
            .await,
            1
        );
        assert_eq!(
            only(AuditFilter {
                outcome: Some(Outcome::Ok),
                ..f()
            })
            .await,
            2
        );
        assert_eq!(
            only(AuditFilter {
                limit: Some(2),
                ..f()
            })
            .await,
            2
        );
        assert_eq!(
            only(AuditFilter {
                since: Some("2000".into()),
                ..f()
            })
            .await,
            3
        );
        assert_eq!(
            only(AuditFilter {
                until: Some("2000".into()),
                ..f()
            })
            .await,
            0
        );
        for bad in [0, MAX_LIMIT + 1] {
            let e = fleet
                .audit_list(&AuditFilter {
                    limit: Some(bad),
                    ..f()
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), "invalid_limit");
        }
    }
}
