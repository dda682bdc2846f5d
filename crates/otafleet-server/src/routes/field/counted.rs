//! Byte counting for clients that report no progress (Arduino `HTTPUpdate`, ESP8266, esp32FOTA,
//! ESP-IDF `esp_https_ota`, legacy devices): [`counted`] wraps the body of a
//! [`file_response`](crate::routes::download::file_response) so that what is sent is recorded as
//! it is sent. The stream only hands chunk sizes to a recorder task over a channel, so sending
//! never waits for the database; the recorder writes every 5 % of the image (at least every
//! 64 KiB) and, when the body is dropped, decides how the pass ended: all bytes through the last
//! byte of the image → `installing`; cut short → `interrupted`. The one wait: the frame that
//! completes the image is held until `installing` is recorded, because a device that has the
//! whole image may reboot and ask again at once, and that request must find the attempt
//! `installing` to confirm (or fail) it.
//!
//! A body stops before its next frame once a stop of its deployment cut it
//! ([`Fleet::download_watch`](otafleet_core::Fleet::download_watch)).
//!
//! Also the per-device download route `GET|HEAD /ota/firmware/{mac}/{sha256}`, the URL that
//! esp32FOTA manifests (with `?id=`) hand out, so their downloads are counted for the right device.

use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use otafleet_core::field;
use otafleet_core::firmware::Firmware;
use otafleet_core::updates::Update;
use otafleet_core::Fleet;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiResult;
use crate::extract::{bearer, Path};
use crate::routes::download::blob_response;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/ota/firmware/{mac}/{sha256}", get(per_device))
}

/// The bytes of an image for one device; counted against that device's attempt when it has one.
/// Anyone may call it for a MAC the server does not know (served uncounted: images are public by
/// hash). For a known device it changes that device's attempt (byte count, `downloading`,
/// `installing`, `interrupted`; and for an esp32FOTA device whose attempt at this image was
/// taken as installed, that attempt becomes `failed` and what the device runs goes back to its
/// previous image, docs/protocols.md §3), so only who may speak for the device may call it: a
/// token-enrolled device's own token (`Authorization: Bearer`, an ESP-IDF app), otherwise a device
/// expected to speak esp32FOTA (or any protocol). Anyone else gets 403, recorded on the device,
/// and nothing of it changes.
async fn per_device(
    State(s): State<AppState>,
    Path((mac, sha256)): Path<(String, String)>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let found = s.firmwares.get(&s.fleet, &sha256).await?;
    let fw = &found.0;
    let from = remote.ip().to_canonical().to_string();
    let asker = field::Asker {
        protocol: "esp32fota",
        token: bearer(&headers),
        from: Some(&from),
    };
    let update = s.fleet.field_download_for(&mac, fw, asker).await?;
    let resp = blob_response(&s.fleet, fw, &method, &headers).await?;
    Ok(match update {
        Some(u) => counted(&s.fleet, &method, resp, &u, fw, Counting::Stock),
        None => resp,
    })
}

/// Who the counted bytes go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// A client that reports nothing: the count also moves the attempt (`downloading`,
    /// `installing`, `interrupted`).
    Stock,
    /// A native device, which reports its own state: only the byte count moves.
    Native,
}

/// Wrap a firmware response so its bytes count for `update`. Responses without image bytes
/// (HEAD, 304, 416) pass through untouched.
pub fn counted(
    fleet: &Fleet,
    method: &Method,
    resp: Response,
    update: &Update,
    fw: &Firmware,
    mode: Counting,
) -> Response {
    let status = resp.status();
    if method != Method::GET || (status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT)
    {
        return resp;
    }
    let size = fw.size.max(0) as u64;
    let len: u64 = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len == 0 {
        return resp;
    }
    let start = resp
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let (parts, body) = resp.into_parts();
    let (tx, rx) = mpsc::unbounded_channel::<Sent>();
    match mode {
        Counting::Stock => {
            tokio::spawn(record(fleet.clone(), update.id, size, start, len, rx));
        }
        Counting::Native => {
            tokio::spawn(record_native(
                fleet.clone(),
                update.clone(),
                size,
                start,
                rx,
            ));
        }
    }
    let reaches_end = start + len >= size;
    let mut taken = 0u64;
    // A stop of the deployment cuts the body before its next frame (`otafleet_core::inflight`):
    // the device gets a short image, flashes nothing and keeps the one it runs.
    let watch = fleet.download_watch(update.id);
    let update_id = update.id;
    // Counted in frames of at most 32 KiB (zero-copy slices), so that progress moves in steps
    // however the body was framed; what is counted is what hyper has taken to send.
    let stream = body
        .into_data_stream()
        .flat_map(|chunk| futures_util::stream::iter(frames(chunk)))
        .then(move |chunk| {
            let mut recorded = None;
            let chunk = match chunk {
                Ok(_) if watch.is_cut() => {
                    tracing::info!(
                        update_id,
                        sent = taken,
                        "download cut: its deployment was stopped"
                    );
                    Err(axum::Error::new(std::io::Error::other(
                        "the deployment was stopped: download cut",
                    )))
                }
                other => other,
            };
            if let Ok(bytes) = &chunk {
                taken += bytes.len() as u64;
                if reaches_end && taken >= len {
                    let (ack, acked) = oneshot::channel();
                    let _ = tx.send(Sent::Last(bytes.len(), ack));
                    recorded = Some(acked);
                } else {
                    let _ = tx.send(Sent::Frame(bytes.len()));
                }
            }
            async move {
                if let Some(acked) = recorded {
                    // Bounded: a stuck database must not hold a download forever.
                    let _ = tokio::time::timeout(LAST_FRAME_WAIT, acked).await;
                }
                chunk
            }
        });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// What the body tells its recorder.
enum Sent {
    Frame(usize),
    /// The frame that completes the image: record `installing`, then say so.
    Last(usize, oneshot::Sender<()>),
}

/// Longest the last frame waits for `installing` to be recorded.
const LAST_FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A chunk of a body as frames of at most [`FRAME`] bytes (an error stays one item).
fn frames(chunk: Result<Bytes, axum::Error>) -> Vec<Result<Bytes, axum::Error>> {
    match chunk {
        Ok(b) if b.len() > FRAME => (0..b.len())
            .step_by(FRAME)
            .map(|at| Ok(b.slice(at..b.len().min(at + FRAME))))
            .collect(),
        other => vec![other],
    }
}

/// Largest frame counted at once.
const FRAME: usize = 32 * 1024;

/// Writes the count as it grows and the outcome when the body is gone (sender dropped).
async fn record(
    fleet: Fleet,
    update_id: i64,
    size: u64,
    start: u64,
    len: u64,
    mut rx: mpsc::UnboundedReceiver<Sent>,
) {
    let step = (size / 20).max(64 * 1024);
    if let Err(e) = fleet.field_download_started(update_id, start).await {
        tracing::warn!(update_id, error = %e, "could not mark the download started");
    }
    let (mut sent, mut unflushed, mut recorded_end) = (0u64, 0u64, false);
    while let Some(msg) = rx.recv().await {
        let n = match &msg {
            Sent::Frame(n) | Sent::Last(n, _) => *n as u64,
        };
        sent += n;
        unflushed += n;
        match msg {
            Sent::Last(_, ack) => {
                flush(&fleet, update_id, &mut unflushed, size).await;
                ended(&fleet, update_id, sent, len, start + len >= size).await;
                recorded_end = true;
                let _ = ack.send(());
            }
            Sent::Frame(_) if unflushed >= step => {
                flush(&fleet, update_id, &mut unflushed, size).await;
            }
            Sent::Frame(_) => {}
        }
    }
    flush(&fleet, update_id, &mut unflushed, size).await;
    tracing::info!(update_id, sent, len, "firmware response ended");
    if !recorded_end {
        ended(&fleet, update_id, sent, len, start + len >= size).await;
    }
}

/// The byte count of a native device's download, written every 5 % of the image (at least
/// every 64 KiB) and when the body is gone. A pass from byte 0 starts the count afresh.
async fn record_native(
    fleet: Fleet,
    update: Update,
    size: u64,
    start: u64,
    mut rx: mpsc::UnboundedReceiver<Sent>,
) {
    let step = (size / 20).max(64 * 1024);
    let (mut unflushed, mut restart, mut sent) = (0u64, start == 0, 0u64);
    let write = |n: u64, restart: bool| {
        let fleet = fleet.clone();
        let update = update.clone();
        async move {
            if let Err(e) = fleet.native_download_sent(&update, n as i64, restart).await {
                tracing::warn!(update_id = update.id, error = %e, "could not record bytes sent");
            }
        }
    };
    while let Some(msg) = rx.recv().await {
        let n = match msg {
            Sent::Frame(n) => n as u64,
            Sent::Last(n, ack) => {
                let _ = ack.send(());
                n as u64
            }
        };
        sent += n;
        unflushed += n;
        if unflushed >= step {
            write(std::mem::take(&mut unflushed), restart).await;
            restart = false;
        }
    }
    if unflushed > 0 || restart {
        write(unflushed, restart).await;
    }
    tracing::debug!(
        update_id = update.id,
        sent,
        "native firmware response ended"
    );
}

/// Record how a pass ended (idempotent: a finished attempt is left alone).
async fn ended(fleet: &Fleet, update_id: i64, sent: u64, len: u64, reached_end: bool) {
    let complete = sent >= len;
    if let Err(e) = fleet
        .field_download_ended(update_id, complete, reached_end)
        .await
    {
        tracing::warn!(update_id, error = %e, "could not record the end of a download");
    }
}

async fn flush(fleet: &Fleet, update_id: i64, unflushed: &mut u64, size: u64) {
    if *unflushed == 0 {
        return;
    }
    let n = std::mem::take(unflushed);
    if let Err(e) = fleet
        .field_download_bytes(update_id, n as i64, size as i64)
        .await
    {
        tracing::warn!(update_id, error = %e, "could not record bytes sent");
    }
}
