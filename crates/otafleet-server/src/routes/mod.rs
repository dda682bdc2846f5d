//! The route table. Each resource has its own module with its handlers and a `router()`; this file
//! merges them, puts the admin ones behind [`crate::auth::require_admin`] (which checks each
//! operation's declared least role, `x-min-role`) and, inside it, the audit
//! layer [`crate::audit::audit`], and collects their
//! OpenAPI descriptions (utoipa) into the document served at `/api/v1/openapi.json`.

pub mod audit;
pub mod commands;
pub mod config;
pub mod deployments;
pub mod device;
pub mod devices;
pub mod docs;
pub mod download;
pub mod esp_admin;
pub mod events;
pub mod field;
pub mod firmware;
pub mod health;
pub mod logs;
pub mod me;
pub mod members;
pub mod notify;
pub mod organisations;
pub mod projects;
pub mod reports;
pub mod settings;
pub mod sign_in;
pub mod tls;
pub mod tokens;
pub mod ui;
pub mod watch_folders;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "otafleet API",
        description = "Admin API (Bearer admin token, or X-Admin-API-Key) and native device protocol v1 of otafleet, a fleet manager for ESP32-family devices."
    ),
    components(schemas(crate::error::ErrorBody, otafleet_core::events::Event)),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Admin-API-Key"))),
        );
        components.add_security_scheme(
            "device",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Build the whole router.
pub fn router(state: AppState) -> Router {
    let admin = OpenApiRouter::new()
        .merge(firmware::router())
        .merge(devices::router())
        .merge(deployments::router())
        .merge(events::router())
        .merge(watch_folders::router())
        .merge(settings::router())
        .merge(audit::router())
        .merge(reports::router())
        .merge(logs::router())
        .merge(commands::router())
        .merge(notify::router())
        .merge(projects::router())
        .merge(config::router())
        .merge(esp_admin::admin_router())
        .merge(tokens::router())
        .merge(members::router())
        .merge(organisations::router())
        .merge(me::router());
    // Every change an admin route makes is audited; its action is the operation id, looked up in
    // this router's own OpenAPI document, so no documented admin route is left out. Order (the
    // last layer runs first): require_admin → audit → handler.
    let actions = std::sync::Arc::new(crate::audit::Actions::from_openapi(admin.get_openapi()));
    // Each operation's least role, from the same document (`x-min-role`): building the router
    // fails on an admin operation that declares none.
    let access = std::sync::Arc::new(crate::auth::Access::from_openapi(admin.get_openapi()));
    let admin = admin
        .route_layer(middleware::from_fn_with_state(
            crate::audit::AuditState {
                app: state.clone(),
                actions,
                legacy: false,
            },
            crate::audit::audit,
        ))
        .route_layer(middleware::from_fn_with_state(
            crate::auth::AuthState {
                app: state.clone(),
                access,
            },
            crate::auth::require_admin,
        ));
    // Check-in and progress are the hot path (every device, every interval) and are never
    // called by a browser: they skip the CORS and per-request trace layers, which cost about as
    // much as the check-in itself (BENCHMARKS.md). Their handlers log what matters themselves.
    let (device_router, device_api) = OpenApiRouter::new()
        .merge(device::router())
        .split_for_parts();
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(admin)
        .merge(download::router())
        .merge(health::router())
        .merge(tls::router())
        .merge(sign_in::router())
        .merge(esp_admin::device_router())
        .split_for_parts();
    api.merge(device_api);
    let ui_dir = state.info.ui_dir.clone();
    let router = router
        .merge(docs::router(api))
        .merge(field::router(state.clone()))
        .merge(ui::router(ui_dir))
        // No page of ours may be framed by another site (clickjacking the UI), and no response
        // is sniffed into another type than it says.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(ui::cors())
        .layer(TraceLayer::new_for_http())
        .merge(device_router)
        // Outermost, for every route: a Host that does not name this server (DNS rebinding)
        // never reaches a handler.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::host::require_known_host,
        ));
    // `--tls require`: plain HTTP from another machine is refused before anything else runs.
    let router = if state.info.tls.as_ref().map(|t| t.mode()) == Some(crate::tls::Mode::Require) {
        router.layer(middleware::from_fn(crate::tls::require_tls))
    } else {
        router
    };
    // Outermost of all: behind a trusted load balancer every layer and handler sees the
    // device's own address (`--trusted-proxy`).
    let router = if state.info.trusted_proxies.is_empty() {
        router
    } else {
        router.layer(middleware::from_fn_with_state(
            state.clone(),
            crate::client_addr::resolve,
        ))
    };
    router.with_state(state)
}
