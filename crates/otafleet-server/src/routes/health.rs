//! `GET /api/v1/health`: is the server up, and which version is it. No auth: monitoring and the
//! desktop shell poll it.

use axum::Json;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Liveness and version.
#[utoipa::path(get, operation_id = "health", path = "/api/v1/health", tag = "server", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}
