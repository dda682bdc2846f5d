//! `/api/v1/members`: the people who may sign in (`otafleet_core::members`), each with a role.
//! Admins and the owner only; nobody gives a role above their own or changes someone above them.
//! Removing a member ends their sessions at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json as AxumJson};
use otafleet_core::access::Principal;
use otafleet_core::members::{NewTeamMember, TeamMember, TeamMemberPatch};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(patch, remove))
        .routes(routes!(set_password))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// 12 to 256 characters; `null` removes the password (then only the provider signs them in).
    pub password: Option<String>,
}

/// Set (or remove) a member's password for local accounts; their sessions end. Who: an admin
/// or above, for a member not above them (403 `role_insufficient`). 422 `weak_password`, 404.
#[utoipa::path(put, operation_id = "set_member_password", path = "/api/v1/members/{id}/password", tag = "access",
    request_body = SetPassword,
    params(("id" = i64, Path, description = "member id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 200, body = TeamMember), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_password(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    Json(p): Json<SetPassword>,
) -> ApiResult<AxumJson<TeamMember>> {
    Ok(AxumJson(
        s.fleet.member_set_password(id, p.password, &who).await?,
    ))
}

/// The members, by e-mail, with role and last sign-in. Who: an admin or above; changes nothing.
#[utoipa::path(get, operation_id = "list_members", path = "/api/v1/members", tag = "access",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 200, body = Vec<TeamMember>)))]
async fn list(State(s): State<AppState>) -> ApiResult<AxumJson<Vec<TeamMember>>> {
    Ok(AxumJson(s.fleet.members().await?))
}

/// Add a member: `{email, role}`; they may sign in from now on. Who: an admin or above, for a
/// role at most their own (403 `role_insufficient`). 422 `invalid_email`, 409 `member_exists`.
#[utoipa::path(post, operation_id = "add_member", path = "/api/v1/members", tag = "access", request_body = NewTeamMember,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 201, body = TeamMember), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(new): Json<NewTeamMember>,
) -> ApiResult<(StatusCode, AxumJson<TeamMember>)> {
    Ok((
        StatusCode::CREATED,
        AxumJson(s.fleet.member_add(new, &who).await?),
    ))
}

/// Change a member's role (from their next request on). Who: an admin or above, neither the old
/// nor the new role above their own (403 `role_insufficient`). 404 when there is no such member.
#[utoipa::path(patch, operation_id = "patch_member", path = "/api/v1/members/{id}", tag = "access", request_body = TeamMemberPatch,
    params(("id" = i64, Path, description = "member id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 200, body = TeamMember), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn patch(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    Json(p): Json<TeamMemberPatch>,
) -> ApiResult<AxumJson<TeamMember>> {
    Ok(AxumJson(s.fleet.member_set_role(id, p, &who).await?))
}

/// Remove a member: their sessions end now and their next sign-in is refused. Who: an admin or
/// above, for a member not above them. 404 when there is no such member.
#[utoipa::path(delete, operation_id = "remove_member", path = "/api/v1/members/{id}", tag = "access",
    params(("id" = i64, Path, description = "member id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    s.fleet.member_remove(id, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}
