//! The route table. Each resource has its own module with its handlers and a `router()`; this file
//! merges them, puts the admin ones behind [`crate::auth::require_admin`], and collects their
//! OpenAPI descriptions (utoipa) into the document served at `/api/v1/openapi.json`.

pub mod deployments;
pub mod device;
pub mod devices;
pub mod docs;
pub mod download;
pub mod events;
pub mod firmware;
pub mod health;

use axum::middleware;
use axum::Router;
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
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_admin,
        ));
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(admin)
        .merge(device::router())
        .merge(download::router())
        .merge(health::router())
        .split_for_parts();
    router
        .merge(docs::router(api))
        .layer(desktop_cors())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The desktop window loads the UI from the Tauri origin (`tauri://localhost` on Linux and macOS,
/// `http(s)://tauri.localhost` on Windows) and calls this server on `http://127.0.0.1:<port>`:
/// a cross-origin request that the webview only sends once the server allows that origin. Only
/// those origins are allowed; browsers get the UI from this server itself (same origin).
fn desktop_cors() -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderValue, Method};
    tower_http::cors::CorsLayer::new()
        .allow_origin([
            HeaderValue::from_static("tauri://localhost"),
            HeaderValue::from_static("http://tauri.localhost"),
            HeaderValue::from_static("https://tauri.localhost"),
        ])
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}
