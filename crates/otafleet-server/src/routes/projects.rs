//! `/api/v1/projects`: projects as the admin manages them (`otafleet_core::projects`) — a
//! description, the protocols that may enrol the project's devices, its config variables and its
//! commands. Every project name a device or image carries is listed (with how many use it).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as AxumJson;
use otafleet_core::projects::{NewProject, Project, ProjectPatch};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, patch_project, delete_project))
}

/// Every project, by name, with its variables (a secret's default shown as `{"set": bool}`),
/// commands, enrolment and how many devices and images name it. Who: a viewer or above; changes nothing.
#[utoipa::path(get, operation_id = "list_projects", path = "/api/v1/projects", tag = "projects",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<Project>), (status = 401, body = ErrorBody)))]
async fn list_projects(State(s): State<AppState>) -> ApiResult<AxumJson<Vec<Project>>> {
    Ok(AxumJson(s.fleet.projects().await?))
}

/// Create a project: `{name, description?, enrolment?, variables?, commands?}`. Who: an operator or above; it
/// changes nothing else (devices and images name their project by this name). 409
/// `project_exists` for a name in use (change it with PATCH); 422 for a bad field (key syntax,
/// a default not of its variable's type, an unknown protocol), nothing stored.
#[utoipa::path(post, operation_id = "create_project", path = "/api/v1/projects", tag = "projects", request_body = NewProject,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 201, body = Project), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn create_project(
    State(s): State<AppState>,
    Json(new): Json<NewProject>,
) -> ApiResult<(StatusCode, AxumJson<Project>)> {
    Ok((
        StatusCode::CREATED,
        AxumJson(s.fleet.project_create(new).await?),
    ))
}

/// One project. Who: a viewer or above; changes nothing.
#[utoipa::path(get, operation_id = "get_project", path = "/api/v1/projects/{name}", tag = "projects",
    params(("name" = String, Path, description = "project name")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Project), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_project(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<AxumJson<Project>> {
    Ok(AxumJson(s.fleet.project(&name).await?))
}

/// Change a project: description, enrolment (null = any protocol), variables and commands (each
/// list, when sent, replaces the whole list; a secret variable sent without a default keeps its
/// stored one). Who: an operator or above. A change of the variables that changes the effective config gives
/// every device of the project a new config version (`pending` until each confirms); values of
/// removed variables, or of variables whose type changed, are dropped. 422 for a bad field,
/// nothing changed.
#[utoipa::path(patch, operation_id = "patch_project", path = "/api/v1/projects/{name}", tag = "projects", request_body = ProjectPatch,
    params(("name" = String, Path, description = "project name")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Project), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn patch_project(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Json(p): Json<ProjectPatch>,
) -> ApiResult<AxumJson<Project>> {
    Ok(AxumJson(s.fleet.project_patch(&name, p).await?))
}

/// Delete a project with its variables and commands. Who: an admin or above. Refused with 409
/// `project_in_use` while a device or an image names it (move or delete them first).
#[utoipa::path(delete, operation_id = "delete_project", path = "/api/v1/projects/{name}", tag = "projects",
    params(("name" = String, Path, description = "project name")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn delete_project(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.fleet.project_delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
