//! The web UI at `/` and CORS for the desktop window.
//!
//! With a built UI directory (`ui/dist`, see `otafleet serve --ui-dir`) every path that is not an
//! API route is served from it, and unknown paths get `index.html` so that client-side routes
//! (`/firmware`, `/devices/<mac>`) survive a reload. Hashed assets are cached for good,
//! `index.html` is revalidated. Unknown `/api/…` paths stay JSON 404s: a script with a typo must
//! not get an HTML page back. Without a UI, `/` shows a placeholder.
//!
//! The desktop shell shows the same UI from `tauri://localhost` (or `http://tauri.localhost`) and
//! calls this server cross-origin. Admin auth is by header, never by cookie, so allowing exactly
//! those origins lets nothing else in.

use std::path::PathBuf;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;
use crate::AppState;

/// Origins of the Tauri webview (Linux/macOS, and Windows/Android).
pub const TAURI_ORIGINS: [&str; 3] = [
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

pub fn router(ui_dir: Option<PathBuf>) -> Router<AppState> {
    let Some(dir) = ui_dir.filter(|d| d.join("index.html").is_file()) else {
        return Router::new().route("/", get(super::docs::root));
    };
    let files = ServeDir::new(&dir).fallback(ServeFile::new(dir.join("index.html")));
    Router::new().fallback(move |req: Request| {
        let files = files.clone();
        async move {
            if req.uri().path().starts_with("/api/") {
                return ApiError::with_status(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!(
                        "there is no API endpoint {} (see /api/v1/docs)",
                        req.uri().path()
                    ),
                )
                .into_response();
            }
            let hashed = req.uri().path().starts_with("/assets/");
            let mut res = match files.oneshot(req).await {
                Ok(res) => res.map(axum::body::Body::new),
                Err(never) => match never {},
            };
            // Vite puts a content hash in every asset name, so those never change; index.html
            // names the current ones and must be revalidated, or an upgraded server would keep
            // serving a browser the old UI.
            let policy = if hashed && res.status().is_success() {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
            res
        }
    })
}

/// Cross-origin access for the desktop window only.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            TAURI_ORIGINS.map(HeaderValue::from_static),
        ))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-admin-api-key"),
        ])
}
