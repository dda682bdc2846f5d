//! `/api/v1/devices/{mac}/logs`: a device's live log lines (sent by the device with
//! `POST /api/v1/device/logs`, kept in memory by `otafleet_core::logs`). Viewers and above. Reading the
//! buffer changes nothing; holding the stream open is the log lease — the device is asked to send
//! its lines while it is open, and told to stop soon after the last viewer closed it.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json as AxumJson;
use bytes::Bytes;
use futures_util::StreamExt;
use otafleet_core::logs::{LogLine, LogSnapshot, KEEP_LINES};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Query;
use crate::AppState;

/// A comment line when nothing else was sent, so a dead viewer is noticed (and its lease ends).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(device_logs))
        .routes(routes!(device_log_stream))
}

/// Which lines.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Only lines with a `seq` above this one (a viewer that reconnects sends the last it has).
    pub after: Option<u64>,
    /// At most this many (the newest): all buffered lines (at most 1,000) when absent.
    pub limit: Option<usize>,
}

/// A device's buffered log lines, oldest first, and whether anyone watches it. Who: a viewer or above;
/// changes nothing (it does not ask the device to send: the stream does). 404 for an unknown
/// device. Lines live in memory only: a restarted server has none.
#[utoipa::path(get, operation_id = "device_logs", path = "/api/v1/devices/{mac}/logs", tag = "logs",
    params(("mac" = String, Path, description = "the device's MAC"), LogsQuery),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, body = LogSnapshot), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn device_logs(
    State(s): State<AppState>,
    Path(mac): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<AxumJson<LogSnapshot>> {
    let limit = q.limit.unwrap_or(KEEP_LINES).min(KEEP_LINES);
    Ok(AxumJson(
        s.fleet
            .logs_snapshot(&mac, q.after.unwrap_or(0), limit)
            .await?,
    ))
}

/// Watch a device's logs live, as `text/event-stream`. Who: a viewer or above (the token in the
/// `Authorization` header; read the stream with `fetch()`). What it changes: while the stream is
/// open the device is asked to send its log lines (its check-in and batch answers say
/// `logs: true`); 10 s after the last viewer's stream closed, the next answer tells it to stop.
/// Nothing is written to disk. Events: `lines` (data: an array of `LogLine`, first the buffered
/// ones after `?after=`, then each batch as it arrives) and `lagged` (this viewer fell behind and
/// missed lines: re-read `GET …/logs?after=`). 404 for an unknown device; 409 `logs_unsupported`
/// for one that cannot send logs (a stock updater), saying why.
#[utoipa::path(get, operation_id = "device_log_stream", path = "/api/v1/devices/{mac}/logs/stream", tag = "logs",
    params(("mac" = String, Path, description = "the device's MAC"), LogsQuery),
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, content_type = "text/event-stream", body = Vec<LogLine>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn device_log_stream(
    State(s): State<AppState>,
    Path(mac): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let watch = s.fleet.logs_watch(&mac, q.after.unwrap_or(0)).await?;
    let first = lines_frame(&watch.backlog);
    let keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    // The lease lives in the stream's state: it ends when the body is dropped (the viewer left,
    // or the server shut down).
    let frames = futures_util::stream::unfold(
        (watch.rx, keep_alive, watch.lease),
        |(mut rx, mut keep_alive, lease)| async move {
            let next = tokio::select! {
                r = rx.recv() => match r {
                    Ok(batch) => {
                        let lines: Vec<&LogLine> = batch.iter().map(|l| &**l).collect();
                        lines_frame(&lines)
                    }
                    Err(RecvError::Lagged(n)) => {
                        Bytes::from(format!("event: lagged\ndata: {{\"missed\":{n}}}\n\n"))
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = keep_alive.tick() => Bytes::from_static(b":\n\n"),
            };
            Some((Ok::<_, Infallible>(next), (rx, keep_alive, lease)))
        },
    );
    let body = futures_util::stream::once(async move { Ok::<_, Infallible>(first) })
        .chain(frames)
        .take_until(s.shutdown.clone().cancelled_owned());
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

fn lines_frame<L: serde::Serialize>(lines: &[L]) -> Bytes {
    let json = serde_json::to_string(lines).unwrap_or_else(|_| "[]".into());
    Bytes::from(format!("event: lines\ndata: {json}\n\n"))
}
