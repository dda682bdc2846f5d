//! `/api/v1/deployments`: assign an image to devices (explicit list, or a whole project + chip).
//! `dry_run: true` answers how many devices a deployment would reach without storing it, which is
//! what the UI's confirmation shows.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as AxumJson;
use otafleet_core::deployments::{Deployment, NewDeployment};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(stop))
}

/// All deployments, newest first.
#[utoipa::path(get, operation_id = "list_deployments", path = "/api/v1/deployments", tag = "deployments",
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = Vec<Deployment>)))]
async fn list(State(s): State<AppState>) -> ApiResult<AxumJson<Vec<Deployment>>> {
    Ok(AxumJson(s.fleet.deployments().await?))
}

/// Create a deployment (201), or with `dry_run` validate and count its reach (200).
#[utoipa::path(post, operation_id = "create_deployment", path = "/api/v1/deployments", tag = "deployments", request_body = NewDeployment,
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 201, body = Deployment), (status = 200, body = Deployment, description = "dry run"),
        (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Json(new): Json<NewDeployment>,
) -> ApiResult<(StatusCode, AxumJson<Deployment>)> {
    let dry = new.dry_run;
    let d = s.fleet.deployment_create(new).await?;
    let status = if dry {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, AxumJson(d)))
}

/// Stop a deployment: its devices are no longer offered its image.
#[utoipa::path(delete, operation_id = "stop_deployment", path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody)))]
async fn stop(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<AxumJson<Deployment>> {
    Ok(AxumJson(s.fleet.deployment_stop(id).await?))
}
