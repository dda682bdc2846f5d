//! `/api/v1/deployments`: assign an image to devices (explicit list, or a whole project + chip),
//! at once or as a staged rollout (a `plan` of waves, or a `preset`), plan one first
//! (`?dry_run=true`: what each device would get and which wave it is in, by the same rule
//! check-ins then follow), follow each one's devices, stop one, retry its failed devices, pause
//! and resume a rollout. Reading needs a viewer, every change an operator (docs/access.md). A device can
//! change nothing here: a rollout's pause by its error limit is otafleet's own, from what the
//! devices' updates and health showed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as AxumJson;
use otafleet_core::deployments::{Deployment, DeploymentDetail, NewDeployment, Plan};
use otafleet_core::rollouts::{Preset, RolloutPlan};
use otafleet_core::updates::Update;
use otafleet_core::RolledBack;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, stop))
        .routes(routes!(stop_post))
        .routes(routes!(retry))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(rollback))
}

/// All deployments, newest first, each with how its devices stand (`tally`).
#[utoipa::path(get, operation_id = "list_deployments", path = "/api/v1/deployments", tag = "deployments",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<Deployment>)))]
async fn list(State(s): State<AppState>) -> ApiResult<AxumJson<Vec<Deployment>>> {
    Ok(AxumJson(s.fleet.deployments().await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CreateParams {
    /// Plan only: answer what every device it would cover would get (200, a `Plan`), store
    /// nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Create a deployment (201). With `?dry_run=true` (or `dry_run` in the body) answer its `Plan`
/// (200): the devices it would cover, grouped by what each would get. A deployment that would
/// install another project's image on some device needs `allow_other_project: true` (else 409
/// `other_project`, nothing stored). Creating one stops the older deployments it covers
/// entirely (their unstarted attempts are cancelled).
#[utoipa::path(post, operation_id = "create_deployment", path = "/api/v1/deployments", tag = "deployments", request_body = NewDeployment,
    params(CreateParams),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 201, body = Deployment), (status = 200, body = Plan, description = "dry run"),
        (status = 409, body = ErrorBody, description = "other_project: confirm with allow_other_project"),
        (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Query(p): Query<CreateParams>,
    Json(new): Json<NewDeployment>,
) -> ApiResult<Response> {
    if p.dry_run || new.dry_run {
        let plan = s.fleet.deployment_plan(&new).await?;
        return Ok((StatusCode::OK, AxumJson(plan)).into_response());
    }
    let d = s.fleet.deployment_create(new).await?;
    Ok((StatusCode::CREATED, AxumJson(d)).into_response())
}

/// One deployment and every device it covers, with what each gets from it and its latest
/// attempt in it.
#[utoipa::path(get, operation_id = "get_deployment", path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = DeploymentDetail), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<AxumJson<DeploymentDetail>> {
    Ok(AxumJson(s.fleet.deployment(id).await?))
}

/// Stop (cancel) a deployment: its devices are no longer offered its image; its attempts that
/// had not started and those downloading are closed as `cancelled`, the downloads cut by the
/// server (native and ESP Admin devices are also sent `update_abort`); attempts past their
/// download finish, so every device ends on a complete image. Who: an operator or above. 409 when already
/// stopped.
#[utoipa::path(delete, operation_id = "stop_deployment", path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<AxumJson<Deployment>> {
    Ok(AxumJson(s.fleet.deployment_stop(id).await?))
}

/// The same as `DELETE /api/v1/deployments/{id}`: stop it (the record stays).
#[utoipa::path(post, operation_id = "stop_deployment_post", path = "/api/v1/deployments/{id}/stop", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop_post(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<AxumJson<Deployment>> {
    Ok(AxumJson(s.fleet.deployment_stop(id).await?))
}

/// Retry every device of the deployment that reached the attempt limit: each gets a new
/// attempt (marked `retry`), from which the limit counts afresh. Answers the attempts opened
/// (possibly none). 409 for a stopped deployment.
#[utoipa::path(post, operation_id = "retry_deployment", path = "/api/v1/deployments/{id}/retry", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Vec<Update>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<AxumJson<Vec<Update>>> {
    Ok(AxumJson(s.fleet.deployment_retry(id).await?))
}

/// Why the admin pauses a rollout (optional, at most 200 characters, shown on its page).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Pause a rollout: no device is offered its image until it is resumed; attempts under way
/// finish. Who: the admin. Changes: the deployment's status (`paused`) and reason. 409 unless it
/// is active; 422 for a reason too long or on several lines.
#[utoipa::path(post, operation_id = "pause_deployment", path = "/api/v1/deployments/{id}/pause", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    request_body = PauseRequest,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn pause(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<PauseRequest>,
) -> ApiResult<AxumJson<Deployment>> {
    Ok(AxumJson(
        s.fleet.deployment_pause(id, req.reason.as_deref()).await?,
    ))
}

/// How to resume a rollout.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// Count its failed devices afresh, and give those at the attempt limit a new attempt.
    #[serde(default)]
    pub retry: bool,
}

/// A resumed rollout and the attempts its retry opened.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Resumed {
    pub deployment: Deployment,
    pub opened: Vec<Update>,
}

/// Resume a paused rollout: paused after a wave for approval, the next wave starts; paused by its
/// error limit or by hand, it goes on where it stopped (with `retry`, its failed devices count
/// afresh and get a new attempt). Who: the admin. Changes: the deployment's status, wave and its
/// failed devices' outcomes and attempts. 409 unless it is paused.
#[utoipa::path(post, operation_id = "resume_deployment", path = "/api/v1/deployments/{id}/resume", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    request_body = ResumeRequest,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Resumed), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<ResumeRequest>,
) -> ApiResult<AxumJson<Resumed>> {
    let (deployment, opened) = s.fleet.deployment_resume(id, req.retry).await?;
    Ok(AxumJson(Resumed { deployment, opened }))
}

/// How to roll a deployment back: the plan of the rollbacks (default: all at once).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default)]
    pub plan: Option<RolloutPlan>,
    #[serde(default)]
    pub preset: Option<Preset>,
}

/// Roll a deployment back: stop it, then return each device it updated to the image that
/// device ran before (one new rollback deployment per such image, naming its devices, with the
/// plan or preset given). Devices whose earlier image is unknown or not in the library, or that
/// run another image by now, are left as they are and listed with the reason. Who: the admin.
/// Changes: the deployment (stopped) and new deployments. 409 when it updated no device; 422 for
/// a bad plan.
#[utoipa::path(post, operation_id = "rollback_deployment", path = "/api/v1/deployments/{id}/rollback", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    request_body = RollbackRequest,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = RolledBack), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn rollback(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<RollbackRequest>,
) -> ApiResult<AxumJson<RolledBack>> {
    Ok(AxumJson(
        s.fleet
            .deployment_rollback(id, req.plan, req.preset)
            .await?,
    ))
}
