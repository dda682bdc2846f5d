//! `/api/v1/tokens`: named API tokens (`otafleet_core::api_tokens`), each with a role and an
//! optional scope, for scripts, CI jobs and dashboards. The secret is in the answer to the
//! create call and nowhere else. Admins and the owner only; nobody makes a token above their own
//! role.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json as AxumJson};
use otafleet_core::access::Principal;
use otafleet_core::api_tokens::{ApiToken, CreatedApiToken, NewApiToken};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// The named API tokens, live ones first, with their role, scope, maker and last use (never the
/// secret). Who: an admin or above; changes nothing.
#[utoipa::path(get, operation_id = "list_tokens", path = "/api/v1/tokens", tag = "access",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 200, body = Vec<ApiToken>)))]
async fn list(State(s): State<AppState>) -> ApiResult<AxumJson<Vec<ApiToken>>> {
    Ok(AxumJson(s.fleet.api_tokens().await?))
}

/// Make a token: `{name, role, scope?}` (scope `upload:<project>`). 201 with the secret, shown
/// this once. Who: an admin or above, for a role at most their own (403
/// `role_insufficient`); 422 for a bad name or scope, 409 `token_exists`. Adds one token.
#[utoipa::path(post, operation_id = "create_token", path = "/api/v1/tokens", tag = "access", request_body = NewApiToken,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 201, body = CreatedApiToken), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(new): Json<NewApiToken>,
) -> ApiResult<(StatusCode, AxumJson<CreatedApiToken>)> {
    Ok((
        StatusCode::CREATED,
        AxumJson(s.fleet.api_token_create(new, &who).await?),
    ))
}

/// Revoke a token: from the next request on it lets nobody in, on every instance. It stays
/// listed (and keeps its name, which the audit log shows). Who: an admin or above. 404 when
/// there is no such token.
#[utoipa::path(post, operation_id = "revoke_token", path = "/api/v1/tokens/{id}/revoke", tag = "access",
    params(("id" = i64, Path, description = "token id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
async fn revoke(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<AxumJson<ApiToken>> {
    Ok(AxumJson(s.fleet.api_token_revoke(id).await?))
}
