//! `/api/v1/me`: who the presented token or session stands for, so that the UI can show it and
//! hide what its role cannot do.

use axum::extract::State;
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
    /// The organisation the caller belongs to (and sees: only its own devices and images).
    pub organisation: MeOrganisation,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeOrganisation {
    /// `default` for the server's own organisation.
    pub id: String,
    pub name: String,
    /// Where this organisation's devices reach the server: empty for the default organisation
    /// (its paths are `/api/v1/device/…`, `/ota/…`), `/o/<enrolment key>` for another. Shown to
    /// admins and owners only (null below), as the key lets a device into the organisation.
    pub device_path: Option<String>,
}

/// The caller's identity and role. Who: anyone with a valid token (a viewer or above, also a
/// scoped token); changes nothing.
#[utoipa::path(get, operation_id = "whoami", path = "/api/v1/me", tag = "access",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Me)))]
async fn whoami(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    csrf: Option<Extension<crate::auth::SessionCsrf>>,
) -> Json<Me> {
    Json(Me {
        actor: who.actor.clone(),
        role: who.role,
        scope: who.scope.as_ref().map(|s| s.to_text()),
        csrf: csrf.map(|c| c.0 .0),
        organisation: MeOrganisation {
            id: s
                .org
                .as_ref()
                .map_or(otafleet_core::organisations::DEFAULT_ID.to_owned(), |o| {
                    o.id.clone()
                }),
            name: s
                .org
                .as_ref()
                .map_or("Default".to_owned(), |o| o.name.clone()),
            device_path: (who.role >= Role::Admin).then(|| s.device_prefix().to_owned()),
        },
    })
}
