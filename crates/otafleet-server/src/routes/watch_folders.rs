//! `/api/v1/watch-folders`: build output folders whose new images are imported by themselves
//! (and, per folder, deployed). The watcher (crate `otafleet-watch`) follows changes to this list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as AxumJson;
use otafleet_core::watch_folders::{NewWatchFolder, WatchFolder};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
}

/// The watched folders, each with its last result.
#[utoipa::path(get, operation_id = "list_watch_folders", path = "/api/v1/watch-folders", tag = "watch folders",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = Vec<WatchFolder>)))]
async fn list(State(s): State<AppState>) -> ApiResult<AxumJson<Vec<WatchFolder>>> {
    Ok(AxumJson(s.fleet.watch_folders().await?))
}

/// Watch a folder (an absolute path on the machine otafleet runs on).
#[utoipa::path(post, operation_id = "add_watch_folder", path = "/api/v1/watch-folders", tag = "watch folders", request_body = NewWatchFolder,
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 201, body = WatchFolder), (status = 422, body = ErrorBody)))]
async fn add(
    State(s): State<AppState>,
    Json(new): Json<NewWatchFolder>,
) -> ApiResult<(StatusCode, AxumJson<WatchFolder>)> {
    Ok((
        StatusCode::CREATED,
        AxumJson(s.fleet.watch_folder_add(new).await?),
    ))
}

/// Stop watching a folder.
#[utoipa::path(delete, operation_id = "remove_watch_folder", path = "/api/v1/watch-folders/{id}", tag = "watch folders",
    params(("id" = i64, Path, description = "watch folder id")),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("admin"))),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    s.fleet.watch_folder_remove(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
