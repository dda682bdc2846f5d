//! Notifications (`otafleet_core::notify`, docs/notifications.md): the delivery log
//! (`GET /api/v1/deliveries`) and a test send to the configured channels
//! (`POST /api/v1/settings/notify/test`). The channels themselves are set with
//! `PATCH /api/v1/settings` (field `notify`, `routes/settings.rs`).

use axum::extract::State;
use axum::Json as AxumJson;
use otafleet_core::notify::{Delivery, DeliveryFilter, DeliveryState, TestResult};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Query;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(test_notify))
}

/// Which deliveries: all filters are optional and combine (AND); newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only the deliveries of this report.
    pub report_id: Option<i64>,
    /// Only deliveries in this state.
    pub state: Option<DeliveryState>,
    /// At most this many rows: 100 when absent, at most 1000.
    pub limit: Option<i64>,
}

/// The delivery log: each report's webhook call and mails, how many attempts, where each stands
/// (`pending`, `delivered`, `failed`, `rate_limited`) and the last error. Who: a viewer or above; changes
/// nothing. No secret appears in it.
#[utoipa::path(get, operation_id = "list_deliveries", path = "/api/v1/deliveries", tag = "notifications",
    params(DeliveriesQuery),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<Delivery>), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "bad state or limit")))]
async fn list_deliveries(
    State(s): State<AppState>,
    Query(q): Query<DeliveriesQuery>,
) -> ApiResult<AxumJson<Vec<Delivery>>> {
    let filter = DeliveryFilter {
        report_id: q.report_id,
        state: q.state,
        limit: q.limit,
    };
    Ok(AxumJson(s.fleet.deliveries(&filter).await?))
}

/// What a test send came to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotifyTestResult {
    /// One entry per target: the webhook, each e-mail recipient. Empty when no channel is set.
    pub results: Vec<TestResult>,
}

/// Send a test notification now to each configured channel (the webhook, every e-mail
/// recipient; also a channel turned off) and answer what happened. Who: an admin or above. Changes nothing
/// on the server (no delivery row); it does send the test to the receivers.
#[utoipa::path(post, operation_id = "test_notify", path = "/api/v1/settings/notify/test", tag = "notifications",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 200, body = NotifyTestResult), (status = 401, body = ErrorBody)))]
async fn test_notify(State(s): State<AppState>) -> ApiResult<AxumJson<NotifyTestResult>> {
    Ok(AxumJson(NotifyTestResult {
        results: s.fleet.notify_test().await?,
    }))
}
