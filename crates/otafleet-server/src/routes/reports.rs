//! `/api/v1/reports`: what devices reported (`POST /api/v1/device/report`, kept by
//! `otafleet_core::reports`). Read-only for the admin: reports are written by devices alone.

use axum::extract::State;
use axum::Json as AxumJson;
use otafleet_core::reports::{Report, ReportFilter, ReportType};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Query;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_reports))
}

/// Which reports: all filters are optional and combine (AND); newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Only this device's reports (the MAC as listed, `AA:BB:CC:DD:EE:FF`).
    pub mac: Option<String>,
    /// Only reports of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<ReportType>,
    /// At most this many rows: 100 when absent, at most 1000.
    pub limit: Option<i64>,
}

/// Device reports, newest first, of one device (`mac`) or all, of one type or all. Who: a viewer or above;
/// changes nothing (devices write reports; each keeps its newest 1,000).
#[utoipa::path(get, operation_id = "list_reports", path = "/api/v1/reports", tag = "reports",
    params(ReportsQuery),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<Report>), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "bad MAC, type or limit")))]
async fn list_reports(
    State(s): State<AppState>,
    Query(q): Query<ReportsQuery>,
) -> ApiResult<AxumJson<Vec<Report>>> {
    let mac = q
        .mac
        .as_deref()
        .map(otafleet_core::validate::mac)
        .transpose()?;
    let filter = ReportFilter {
        mac,
        kind: q.kind,
        limit: q.limit,
    };
    Ok(AxumJson(s.fleet.reports(&filter).await?))
}
