//! Device reports (issue 15): a device tells the admin something — `info`, `warn`, `error` or
//! `success`, a subject and a body — over `POST /api/v1/device/report` with its own token. This
//! module alone writes and reads the `reports` table (migration 0018).
//!
//! **Bounded.** The input is bounded (subject ≤ [`MAX_SUBJECT_CHARS`] characters, body ≤
//! [`MAX_BODY_BYTES`] bytes, the type one of four) and so is the table: each device keeps its
//! newest [`KEEP_PER_DEVICE`] reports; older ones are deleted in the transaction that adds a new
//! one, so a chatty device costs at most that many rows.

use crate::db::{Conn, Db};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::{CoreError, Result};

/// The most characters a subject may have.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The most bytes (UTF-8) a body may have.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// The most characters a device time may have.
pub const MAX_DEVICE_TIME_CHARS: usize = 64;
/// Reports kept per device: the newest this many.
pub const KEEP_PER_DEVICE: i64 = 1_000;
/// Rows answered when the caller names no limit.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most rows one request answers.
pub const MAX_LIMIT: i64 = 1_000;

/// What kind of report. Stored by name (`reports.type`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum ReportType {
    Info,
    Warn,
    Error,
    Success,
}

impl ReportType {
    pub const ALL: [ReportType; 4] = [
        ReportType::Info,
        ReportType::Warn,
        ReportType::Error,
        ReportType::Success,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportType::Info => "info",
            ReportType::Warn => "warn",
            ReportType::Error => "error",
            ReportType::Success => "success",
        }
    }

    /// The type of this name; an unknown name is 422 `invalid_type`, naming the four.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                CoreError::invalid(
                    "invalid_type",
                    format!(
                        "type must be one of info, warn, error, success, not '{}'",
                        crate::validate::printable(s, 20)
                    ),
                )
            })
    }
}

/// What a device sends (`POST /api/v1/device/report`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ReportRequest {
    /// The reporting device's MAC: it must be the device the token belongs to.
    pub mac: String,
    /// `info`, `warn`, `error` or `success`.
    #[serde(rename = "type")]
    pub kind: String,
    /// One line, at most 200 characters.
    pub subject: String,
    /// At most 8 KiB (UTF-8); may be empty.
    #[serde(default)]
    pub body: String,
    /// The device's own clock when it wrote the report, if it has one (kept as sent, at most 64
    /// characters; not trusted for ordering).
    pub device_time: Option<String>,
}

/// A stored report.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Report {
    pub id: i64,
    pub mac: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: ReportType,
    pub subject: String,
    pub body: String,
    /// The device's clock, as it sent it.
    pub device_time: Option<String>,
    /// When the server stored it (UTC, milliseconds).
    pub received_at: String,
}

/// Which reports [`list`] answers, newest first.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub mac: Option<String>,
    pub kind: Option<ReportType>,
    /// At most this many rows ([`DEFAULT_LIMIT`] when absent; 1 to [`MAX_LIMIT`]).
    pub limit: Option<i64>,
}

/// A report checked against the bounds, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct Clean {
    pub kind: ReportType,
    pub subject: String,
    pub body: String,
    pub device_time: Option<String>,
}

/// Check a report's fields; every refusal is 422 and says what to change.
pub(crate) fn clean(req: &ReportRequest) -> Result<Clean> {
    let kind = ReportType::parse(&req.kind)?;
    let subject = req.subject.trim();
    if subject.is_empty() {
        return Err(CoreError::invalid(
            "invalid_subject",
            "subject is required: one line saying what happened",
        ));
    }
    let n = subject.chars().count();
    if n > MAX_SUBJECT_CHARS {
        return Err(CoreError::invalid(
            "subject_too_long",
            format!("subject has {n} characters; at most {MAX_SUBJECT_CHARS} are kept — put the rest in body"),
        ));
    }
    if req.body.len() > MAX_BODY_BYTES {
        return Err(CoreError::invalid(
            "body_too_long",
            format!(
                "body has {} bytes; at most {MAX_BODY_BYTES} (8 KiB) are kept — shorten it or send several reports",
                req.body.len()
            ),
        ));
    }
    let device_time = match req.device_time.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) if t.chars().count() > MAX_DEVICE_TIME_CHARS => {
            return Err(CoreError::invalid(
                "invalid_device_time",
                format!("device_time has more than {MAX_DEVICE_TIME_CHARS} characters; send an RFC 3339 time"),
            ))
        }
        Some(t) => Some(t.to_owned()),
    };
    Ok(Clean {
        kind,
        subject: subject.to_owned(),
        body: req.body.clone(),
        device_time,
    })
}

/// Whether device `mac` has a report like `report` (type, subject, body) received in the last
/// `within_s` seconds (the same report sent over a second channel).
pub(crate) async fn recent_same(
    conn: &mut Conn,
    mac: &str,
    report: &Clean,
    within_s: i64,
) -> Result<bool> {
    let since = crate::time::ago(within_s);
    Ok(db::query_scalar::<i64>(
        "SELECT COUNT(*) FROM reports WHERE mac = ? AND type = ? AND subject = ? AND body = ?
         AND received_at >= ?",
    )
    .bind(mac)
    .bind(report.kind)
    .bind(&report.subject)
    .bind(&report.body)
    .bind(since)
    .fetch_one(conn)
    .await?
        > 0)
}

/// Store a report of device `mac` and delete its reports beyond the newest `keep`, on `conn`
/// (inside the caller's write transaction).
pub(crate) async fn add(conn: &mut Conn, mac: &str, report: &Clean, keep: i64) -> Result<Report> {
    let row: Report = db::query_as(
        "INSERT INTO reports (mac, type, subject, body, device_time, received_at)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(mac)
    .bind(report.kind)
    .bind(&report.subject)
    .bind(&report.body)
    .bind(&report.device_time)
    .bind(crate::time::now())
    .fetch_one(&mut *conn)
    .await?;
    db::query(
        "DELETE FROM reports WHERE mac = ?1 AND id <= (
             SELECT id FROM reports WHERE mac = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .bind(mac)
    .bind(keep)
    .execute(&mut *conn)
    .await?;
    Ok(row)
}

pub(crate) async fn list(db: &Db, filter: &ReportFilter) -> Result<Vec<Report>> {
    let limit = crate::validate::limit(filter.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    db::query_as(
        "SELECT * FROM reports
         WHERE (?1 IS NULL OR mac = ?1) AND (?2 IS NULL OR type = ?2)
         ORDER BY id DESC LIMIT ?3",
    )
    .bind(&filter.mac)
    .bind(filter.kind)
    .bind(limit)
    .fetch_all(db)
    .await
}
