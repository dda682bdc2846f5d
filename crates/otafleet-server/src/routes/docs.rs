//! The OpenAPI document and a small self-contained docs page that renders it. The page loads no
//! script from the internet: lab networks often have none.

use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use crate::AppState;

pub fn router(api: utoipa::openapi::OpenApi) -> Router<AppState> {
    let json: Arc<str> = api
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
        .into();
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                }
            }),
        )
        .route("/api/v1/docs", get(|| async { Html(DOCS_PAGE) }))
}

/// The page at `/` when no UI is built (see [`super::ui`]).
pub async fn root() -> impl IntoResponse {
    Html(
        "<!doctype html><title>otafleet</title><h1>otafleet</h1>\
         <p>The OTA server is running. API: <a href=\"/api/v1/docs\">/api/v1/docs</a> \
         (OpenAPI: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>).</p>",
    )
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>otafleet API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h2{margin-top:2em;border-bottom:1px solid #ddd}
.op{margin:1em 0;padding:.6em .9em;border:1px solid #e3e3e3;border-radius:6px}
.m{display:inline-block;min-width:4.5em;font-weight:600;font-family:monospace}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f6f6;padding:.6em;overflow:auto}
@media (prefers-color-scheme:dark){body{background:#16181c;color:#ddd}.op{border-color:#333}pre{background:#22252b}}
</style></head><body>
<h1>otafleet API</h1>
<p>Admin endpoints take <code>Authorization: Bearer &lt;admin token&gt;</code> (or <code>X-Admin-API-Key</code>).
Errors are <code>{"error": {"code": "...", "message": "..."}}</code>. Machine-readable description:
<a href="/api/v1/openapi.json">openapi.json</a>.</p>
<div id="ops">Loading…</div>
<script>
fetch('/api/v1/openapi.json').then(r => r.json()).then(doc => {
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || 'other';
      (byTag[tag] ||= []).push({path, method, op});
    }
  }
  const el = document.getElementById('ops');
  el.textContent = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    const h = document.createElement('h2'); h.textContent = tag; el.appendChild(h);
    for (const {path, method, op} of ops) {
      const d = document.createElement('div'); d.className = 'op';
      const head = document.createElement('div');
      const m = document.createElement('span'); m.className = 'm'; m.textContent = method.toUpperCase();
      const p = document.createElement('code'); p.textContent = path;
      head.append(m, p); d.appendChild(head);
      const s = document.createElement('div'); s.textContent = op.summary || op.description || ''; d.appendChild(s);
      const codes = Object.keys(op.responses || {}).join(', ');
      const r = document.createElement('small'); r.textContent = 'responses: ' + codes; d.appendChild(r);
      el.appendChild(d);
    }
  }
}).catch(e => { document.getElementById('ops').textContent = 'Could not load the API description: ' + e; });
</script></body></html>"#;
