//! `/api/v1/audit`: the audit log — one row per admin change (`crate::audit` writes them,
//! `otafleet_core::audit` keeps them) — as JSON, and `/api/v1/audit.csv` as CSV for a
//! spreadsheet. Read-only: the log has no route that changes or deletes a row.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json as AxumJson;
use otafleet_core::audit::{AuditEntry, AuditFilter, Outcome};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(export_audit_csv))
}

/// Which rows: all filters are optional and combine (AND); newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Rows at or after this time, in the stored form (`2026-12-06T03:45:18.000Z`; a prefix such
    /// as `2026-12-06` works: times compare as text).
    pub since: Option<String>,
    /// Rows strictly before this time (same form).
    pub until: Option<String>,
    /// Only this action (an operation id such as `patch_firmware`).
    pub action: Option<String>,
    /// Only this target, exactly as listed (`mac=aa:bb:cc:dd:ee:ff`, `id=3`).
    pub target: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// At most this many rows: 100 when absent, at most 10000.
    pub limit: Option<i64>,
}

impl From<AuditQuery> for AuditFilter {
    fn from(q: AuditQuery) -> Self {
        AuditFilter {
            since: q.since,
            until: q.until,
            action: q.action,
            target: q.target,
            outcome: q.outcome,
            limit: q.limit,
        }
    }
}

/// The audit log: every admin change (any admin request but GET), newest first, with who made it
/// (`admin`, or `legacy-admin-key` for the token sent as `X-Admin-API-Key`), the operation, its
/// target, the HTTP status and the outcome (`pending` = result unknown, `ok`, `refused`,
/// `failed`). Who: a viewer or above; changes nothing (no route changes or deletes a row).
#[utoipa::path(get, operation_id = "list_audit", path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<AuditEntry>), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "limit out of range")))]
async fn list_audit(
    State(s): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<AxumJson<Vec<AuditEntry>>> {
    Ok(AxumJson(s.fleet.audit_list(&q.into()).await?))
}

/// The columns of the CSV export, in order.
pub const CSV_HEADER: [&str; 10] = [
    "id", "at", "actor", "action", "method", "path", "target", "status", "outcome", "detail",
];

/// The same rows as `GET /api/v1/audit` with the same filters, as CSV (RFC 4180, a header row;
/// `detail` as its JSON text). Who: a viewer or above; changes nothing.
#[utoipa::path(get, operation_id = "export_audit_csv", path = "/api/v1/audit.csv", tag = "audit",
    params(AuditQuery),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, content_type = "text/csv", body = String), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "limit out of range")))]
async fn export_audit_csv(
    State(s): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    let rows = s.fleet.audit_list(&q.into()).await?;
    let csv = to_csv(&rows).map_err(|e| {
        tracing::error!(error = %e, "could not write the audit CSV");
        ApiError::with_status(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "could not write the CSV",
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"otafleet-audit.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

fn to_csv(rows: &[AuditEntry]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for r in rows {
        w.write_record([
            r.id.to_string(),
            r.at.clone(),
            r.actor.clone(),
            r.action.clone(),
            r.method.clone(),
            r.path.clone(),
            r.target.clone().unwrap_or_default(),
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            r.outcome.as_str().to_owned(),
            r.detail
                .as_ref()
                .map(|d| serde_json::to_string(d).unwrap_or_default())
                .unwrap_or_default(),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
