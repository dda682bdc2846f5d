//! `/api/v1/me`: who the presented token or session stands for, so that the UI can show it and
//! hide what its role cannot do.

use axum::{Extension, Json};
use otafleet_core::access::{Principal, Role};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(whoami))
}

/// Who is calling, as the server sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// As the audit log records it: `admin` (the server's admin token), `legacy-admin-key`, or
    /// `token:<name>`.
    pub actor: String,
    pub role: Role,
    /// `upload:<project>` for a scoped token.
    pub scope: Option<String>,
    /// For a signed-in person (session cookie): what every change must send as `X-CSRF-Token`.
    pub csrf: Option<String>,
}

/// The caller's identity and role. Who: anyone with a valid token (a viewer or above, also a
/// scoped token); changes nothing.
#[utoipa::path(get, operation_id = "whoami", path = "/api/v1/me", tag = "access",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Me)))]
async fn whoami(
    Extension(who): Extension<Principal>,
    csrf: Option<Extension<crate::auth::SessionCsrf>>,
) -> Json<Me> {
    Json(Me {
        actor: who.actor.clone(),
        role: who.role,
        scope: who.scope.as_ref().map(|s| s.to_text()),
        csrf: csrf.map(|c| c.0 .0),
    })
}
