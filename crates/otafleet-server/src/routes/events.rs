//! `GET /api/v1/events`: server-sent events for everything that changes (devices, firmware,
//! deployments, update progress). Each SSE event's name is the event type and its data the JSON
//! [`otafleet_core::events::Event`]. A watcher that falls behind gets a `lagged` event and should
//! reload its lists. Every client is fed from one shared copy of the stream
//! ([`crate::event_hub`]), so clients cannot slow the devices down.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::event_hub;
use crate::AppState;

/// A comment line sent when nothing else was, so that a dead client is noticed and proxies keep
/// the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Live changes as `text/event-stream`. Who: a viewer or above, with the token in the
/// `Authorization` header as for every admin route (read the stream with `fetch()`); a `?token=`
/// in the URL is refused (401 `admin_token_in_url`). Changes nothing. First a `hello` event
/// (reload now: anything before it was missed), then every change; `lagged` when this client fell
/// so far behind that events were dropped for it (reload again). The stream ends when the server
/// shuts down.
#[utoipa::path(get, operation_id = "event_stream", path = "/api/v1/events", tag = "events",
    security(("admin" = []), ("admin_key" = [])),
    extensions(("x-min-role" = json!("viewer"))),
    responses((status = 200, content_type = "text/event-stream", body = otafleet_core::events::Event)))]
async fn events(State(s): State<AppState>) -> Response {
    let rx = s.event_hub.subscribe(s.fleet.events());
    let hello = futures_util::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b"event: hello\ndata: {}\n\n"))
    });
    let keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let frames = futures_util::stream::unfold(
        (rx, keep_alive),
        |(mut rx, mut keep_alive)| async move {
            let next = tokio::select! {
                r = rx.recv() => match r {
                    Ok(frames) => frames,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::info!(missed = n, "an event-stream client fell behind; told to reload");
                        event_hub::lagged(n)
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = keep_alive.tick() => Bytes::from_static(b":\n\n"),
            };
            Some((Ok::<_, Infallible>(next), (rx, keep_alive)))
        },
    );
    let body = hello
        .chain(frames)
        .take_until(s.shutdown.clone().cancelled_owned());
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
