//! `/api/v1/organisations`: the organisations on this server besides the default one
//! (`otafleet_core::organisations`, docs/access.md). Each has its own data, members and tokens,
//! and its devices reach the server at `/o/<enrolment key>/…` ([`crate::orgs`]). Only the
//! owners of the server's own (default) organisation list or make them; inside another
//! organisation these routes are 403 `organisation_scope`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json as AxumJson};
use otafleet_core::access::Principal;
use otafleet_core::organisations::{NewOrganisation, Organisation};
use otafleet_core::CreatedOrganisation;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Json;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create))
}

/// The other organisations, with the enrolment key in their devices' path. Who: an owner of
/// the default organisation (403 `organisation_scope` elsewhere); changes nothing.
#[utoipa::path(get, operation_id = "list_organisations", path = "/api/v1/organisations", tag = "access",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("owner"))),
    responses((status = 200, body = Vec<Organisation>), (status = 403, body = ErrorBody)))]
async fn list(State(s): State<AppState>) -> ApiResult<AxumJson<Vec<Organisation>>> {
    Ok(AxumJson(s.fleet.organisations().await?))
}

/// Make an organisation: `{id, name}`. 201 with the organisation and its first owner's API
/// token (`otf_<id>.…`, shown this once): with it, that organisation's owner adds members and
/// tokens of their own; nobody of the default organisation can see into it afterwards. Who: an
/// owner of the default organisation (403 `organisation_scope` elsewhere). 422 for a bad id or
/// name, 409 `organisation_exists`, 409 `organisations_unsupported` with `--database-url` or
/// `--blob-url`. Adds the organisation and its data directory.
#[utoipa::path(post, operation_id = "create_organisation", path = "/api/v1/organisations", tag = "access", request_body = NewOrganisation,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("owner"))),
    responses((status = 201, body = CreatedOrganisation), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(new): Json<NewOrganisation>,
) -> ApiResult<(StatusCode, AxumJson<CreatedOrganisation>)> {
    Ok((
        StatusCode::CREATED,
        AxumJson(s.fleet.organisation_create(new, &who).await?),
    ))
}
