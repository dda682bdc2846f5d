//! The legacy admin API's firmware endpoints (docs/protocols.md §4; docs/seed1-compat.md §5):
//! list, info, upload (multipart field `file`), delete, all by file name. Uploads go through our
//! importer, so what is not an app image is refused (422) and nothing is overwritten: the same
//! name uploaded again is a new library image. Deleting an image that is deployed is refused.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use futures_util::TryStreamExt;
use otafleet_core::firmware::{Firmware, ImportRequest, ImportSource};
use serde_json::{json, Value};
use tokio_util::io::StreamReader;

use super::legacy_admin::{core_detail, detail};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/api/firmware",
            get(list).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/admin/api/firmware/{filename}/info", get(info))
        .route("/admin/api/firmware/{filename}", delete(remove))
}

fn item(fw: &Firmware) -> Value {
    json!({"filename": fw.filename, "checksum": fw.md5, "size": fw.size, "uploaded_at": fw.uploaded_at})
}

async fn list(State(s): State<AppState>) -> Response {
    match s.fleet.firmware_list().await {
        Ok(all) => Json(all.iter().map(item).collect::<Vec<_>>()).into_response(),
        Err(e) => core_detail(e),
    }
}

async fn find(s: &AppState, name: &str) -> Result<Firmware, Box<Response>> {
    match s.fleet.legacy_firmware(name).await {
        Ok(Some(fw)) => Ok(fw),
        Ok(None) => Err(Box::new(detail(
            StatusCode::NOT_FOUND,
            "Firmware file not found",
        ))),
        Err(e) => Err(Box::new(core_detail(e))),
    }
}

async fn info(
    State(s): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    match find(&s, &name).await {
        Ok(fw) => Json(item(&fw)).into_response(),
        Err(r) => *r,
    }
}

async fn upload(State(s): State<AppState>, headers: HeaderMap, mut form: Multipart) -> Response {
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return detail(
                    StatusCode::BAD_REQUEST,
                    &format!("malformed form: {}", e.body_text()),
                )
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let Some(filename) = field
            .file_name()
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
        else {
            return detail(StatusCode::BAD_REQUEST, "Invalid filename");
        };
        let reader = StreamReader::new(field.map_err(std::io::Error::other));
        let req = ImportRequest {
            filename,
            project: None,
            version: None,
            source: ImportSource::Upload,
            source_path: None,
            only_project: None,
        };
        return match s.fleet.import(req, reader).await {
            Ok(out) => {
                let fw = out.firmware;
                let base = super::base_url(&headers, false).unwrap_or_default();
                Json(json!({
                    "filename": fw.filename, "checksum": fw.md5, "size": fw.size, "success": true,
                    "url": format!("{base}/firmware/{}", fw.filename),
                }))
                .into_response()
            }
            Err(e) => core_detail(e),
        };
    }
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": [{"loc": ["body", "file"], "msg": "field required", "type": "value_error.missing"}]})),
    )
        .into_response()
}

async fn remove(
    State(s): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let fw = match find(&s, &name).await {
        Ok(fw) => fw,
        Err(r) => return *r,
    };
    match s.fleet.firmware_delete(fw.id).await {
        Ok(_) => Json(json!({"success": true})).into_response(),
        Err(e) => core_detail(e),
    }
}
