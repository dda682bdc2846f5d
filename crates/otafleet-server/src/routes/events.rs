//! `GET /api/v1/events`: server-sent events for everything that changes (devices, firmware,
//! deployments, update progress). Each SSE event's name is the event type and its data the JSON
//! [`otafleet_core::events::Event`]. A watcher that falls behind gets a `lagged` event and should
//! reload its lists.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Live changes as `text/event-stream`. Admin only; changes nothing. The admin token goes in
/// the `Authorization` header as for every admin route (read the stream with `fetch()`); a
/// `?token=` in the URL is refused (401 `admin_token_in_url`).
#[utoipa::path(get, operation_id = "event_stream", path = "/api/v1/events", tag = "events",
    security(("admin" = []), ("admin_key" = [])),
    responses((status = 200, content_type = "text/event-stream", body = otafleet_core::events::Event)))]
async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = s.fleet.events().subscribe();
    let hello =
        futures_util::stream::once(async { Ok(SseEvent::default().event("hello").data("{}")) });
    let stream = BroadcastStream::new(rx).map(|item| {
        Ok(match item {
            Ok(event) => SseEvent::default()
                .event(event.name())
                .json_data(&event)
                .unwrap_or_else(|_| SseEvent::default().event("error").data("{}")),
            Err(BroadcastStreamRecvError::Lagged(n)) => SseEvent::default()
                .event("lagged")
                .data(format!("{{\"missed\":{n}}}")),
        })
    });
    let stream = stream.take_until(s.shutdown.clone().cancelled_owned());
    Sse::new(hello.chain(stream)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
