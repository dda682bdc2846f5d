//! `/api/v1/firmware`: the firmware library. Uploads stream straight into the core's importer
//! (never into memory whole): multipart with a `file` field (and optional `project` / `version`
//! fields before it), or a raw `application/octet-stream` body with `?filename=`.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use futures_util::TryStreamExt;
use otafleet_core::access::Principal;
use otafleet_core::firmware::{
    Firmware, FirmwarePatch, ImportOutcome, ImportRequest, ImportSource,
};
use serde::Deserialize;
use tokio_util::io::StreamReader;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(get_one, patch, delete))
        // The importer enforces the configured image limit while streaming; this only bounds the
        // multipart framing around it.
        .layer(DefaultBodyLimit::disable())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// File name for a raw body upload (required then), e.g. `blink_v1.2.3.bin`.
    pub filename: Option<String>,
    /// Override the project name read from the image or file name.
    pub project: Option<String>,
    /// Override the version read from the image or file name.
    pub version: Option<String>,
}

/// List the library, newest first.
#[utoipa::path(get, operation_id = "list_firmware", path = "/api/v1/firmware", tag = "firmware",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<Firmware>)))]
async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<Firmware>>> {
    Ok(Json(s.fleet.firmware_list().await?))
}

/// Import an image: multipart (`file`, optional `project`, `version` fields first) or a raw body
/// with `?filename=`. 201 with the new record; 200 with the existing one when the same bytes are
/// already in the library; 422 with the reason when the file is not a flashable app image; 413
/// when a text field (`project`, `version`) is longer than [`MAX_FIELD_BYTES`]; 403 `token_scope`
/// when a token scoped to `upload:<project>` sends another project's image. Who: an operator or
/// above, or a token scoped to the image's project;
/// adds one image to the library (nothing when refused).
#[utoipa::path(post, operation_id = "upload_firmware", path = "/api/v1/firmware", tag = "firmware",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the image (or multipart/form-data with a `file` field)"),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses(
        (status = 201, body = Firmware, description = "imported"),
        (status = 200, body = Firmware, description = "same bytes already in the library: the existing record"),
        (status = 413, body = ErrorBody, description = "a form field other than `file` is too long"),
        (status = 422, body = ErrorBody, description = "not a flashable app image, too large, or bad name")))]
async fn upload(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    let only_project = who.upload_project().map(str::to_owned);
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let outcome = if is_multipart {
        let multipart = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request("bad_multipart", e.body_text()))?;
        upload_multipart(&s, q, multipart, only_project).await?
    } else {
        let filename = q.filename.clone().ok_or_else(|| {
            ApiError::bad_request(
                "filename_required",
                "a raw upload needs its file name: POST /api/v1/firmware?filename=blink_v1.2.3.bin (or send multipart/form-data with a 'file' field)",
            )
        })?;
        let body: Body = req.into_body();
        let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
        s.fleet
            .import(
                ImportRequest {
                    filename,
                    project: q.project,
                    version: q.version,
                    source: ImportSource::Upload,
                    source_path: None,
                    only_project: only_project.clone(),
                },
                reader,
            )
            .await?
    };
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome.firmware)))
}

async fn upload_multipart(
    s: &AppState,
    q: UploadQuery,
    mut multipart: Multipart,
    only_project: Option<String>,
) -> ApiResult<ImportOutcome> {
    let mut project = q.project;
    let mut version = q.version;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(
            "bad_multipart",
            format!("the multipart body is malformed: {}", e.body_text()),
        )
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("project") => project = Some(small_field(field, "project").await?),
            Some("version") => version = Some(small_field(field, "version").await?),
            Some("file") => {
                let filename = field
                    .file_name()
                    .map(str::to_owned)
                    .or(q.filename.clone())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "filename_required",
                            "the 'file' part has no file name",
                        )
                    })?;
                let reader = StreamReader::new(field.map_err(std::io::Error::other));
                let outcome = s
                    .fleet
                    .import(
                        ImportRequest {
                            filename,
                            project: project.clone().filter(|p| !p.trim().is_empty()),
                            version: version.clone().filter(|v| !v.trim().is_empty()),
                            source: ImportSource::Upload,
                            source_path: None,
                            only_project: only_project.clone(),
                        },
                        reader,
                    )
                    .await?;
                return Ok(outcome);
            }
            _ => {} // Unknown parts are ignored, as browsers may add their own.
        }
    }
    Err(ApiError::bad_request(
        "file_required",
        "the form has no 'file' field: send the image as a part named 'file' (project and version fields, if any, before it)",
    ))
}

/// Longest text field (`project`, `version`) a multipart upload may carry, in bytes.
pub const MAX_FIELD_BYTES: usize = 1024;

/// A short text part of the form, read chunk by chunk and refused (413) as soon as it grows past
/// [`MAX_FIELD_BYTES`], so a huge field costs no memory (the `file` part alone is streamed).
async fn small_field(
    mut field: axum::extract::multipart::Field<'_>,
    name: &str,
) -> ApiResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| {
        ApiError::bad_request(
            "bad_multipart",
            format!("the multipart body is malformed: {}", e.body_text()),
        )
    })? {
        if buf.len() + chunk.len() > MAX_FIELD_BYTES {
            tracing::warn!(field = name, "upload refused: form field too large");
            return Err(ApiError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "field_too_large",
                format!("the form field '{name}' is longer than {MAX_FIELD_BYTES} bytes; send a short {name} (only the 'file' part may be large)"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| {
        ApiError::bad_request(
            "bad_multipart",
            format!("the form field '{name}' is not UTF-8 text"),
        )
    })
}

/// One image.
#[utoipa::path(get, operation_id = "get_firmware", path = "/api/v1/firmware/{id}", tag = "firmware",
    params(("id" = i64, Path, description = "firmware id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Firmware), (status = 404, body = ErrorBody)))]
async fn get_one(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Firmware>> {
    Ok(Json(s.fleet.firmware(id).await?))
}

/// Correct an image's identity: its `project`, `version` or `filename` (each absent or null field
/// stays as it is; a set `project`/`version` gets source `admin`). Who: an operator or above (the admin
/// token; a device's token is refused). What it changes: that image's record; the project and
/// version of the stock-updater devices running it (theirs come from the image), which changes
/// which project-wide deployments cover them; the version of every attempt at it; and the
/// status of the deployments that reach those devices or deploy this image. Committed before
/// the answer (a 2xx is on disk; a full disk answers 507 and changes nothing); publishes a
/// `firmware` event (and `device`/`deployment` events for what changed). 422 with the reason
/// when a field is invalid, 409 while a project-wide deployment of this image covers its current
/// project (stop it first), 404 for an unknown id; nothing is changed then.
#[utoipa::path(patch, operation_id = "patch_firmware", path = "/api/v1/firmware/{id}", tag = "firmware",
    params(("id" = i64, Path, description = "firmware id")),
    request_body = FirmwarePatch,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("operator"))),
    responses((status = 200, body = Firmware, description = "the corrected record"),
        (status = 400, body = ErrorBody, description = "the body is not valid JSON"),
        (status = 401, body = ErrorBody, description = "no admin token"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a project-wide deployment of this image covers its current project"),
        (status = 422, body = ErrorBody, description = "an unknown field, or an invalid project, version or file name (the message says which and what is accepted)"),
        (status = 507, body = ErrorBody, description = "the disk is full: nothing was changed")))]
async fn patch(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    crate::extract::Json(p): crate::extract::Json<FirmwarePatch>,
) -> ApiResult<Json<Firmware>> {
    Ok(Json(s.fleet.firmware_patch(id, p).await?))
}

/// Delete an image; refused (409) while a deployment uses it.
#[utoipa::path(delete, operation_id = "delete_firmware", path = "/api/v1/firmware/{id}", tag = "firmware",
    params(("id" = i64, Path, description = "firmware id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    s.fleet.firmware_delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
