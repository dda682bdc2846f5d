//! Firmware downloads as every ESP updater needs them (docs/protocols.md §0): `200` with
//! an explicit `Content-Length` (never chunked, so HTTP/1.0 clients work), `HEAD`, a single
//! `Range` → `206` with `Content-Range` (ESP-IDF resumes with it), `If-Range`, `ETag` = the
//! SHA-256 with `If-None-Match` → `304`, and `x-MD5` / `x-SHA256` on every answer.
//!
//! [`blob_response`] (over [`file_response`]) is shared by every route that serves image bytes.

use std::io::SeekFrom;
use std::path::Path as FsPath;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use otafleet_core::firmware::Firmware;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{bearer, Path};
use crate::routes::field::counted::{counted, Counting};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download))
}

/// The bytes of an image, by SHA-256 (the `url` of an update offer points here). No auth: images
/// are addressed by their hash, and stock clients cannot send tokens. A native device that sends
/// its token (`Authorization: Bearer`) has the bytes counted against its open attempt at this
/// image (the count only; nothing else of the device changes, and an unknown token is simply
/// not counted).
#[utoipa::path(get, path = "/api/v1/device/firmware/{sha256}", tag = "device",
    params(("sha256" = String, Path, description = "SHA-256 of the image")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "the requested range"),
        (status = 304, description = "If-None-Match matched"),
        (status = 404, body = ErrorBody), (status = 416, description = "range not satisfiable")))]
async fn download(
    State(s): State<AppState>,
    Path(sha256): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let found = s.firmwares.get(&s.fleet, &sha256).await?;
    let fw = &found.0;
    let resp = blob_response(&s.fleet, fw, &method, &headers).await?;
    let Some(token) = bearer(&headers).filter(|_| method == Method::GET) else {
        return Ok(resp);
    };
    match s.fleet.native_download(token, &fw.sha256).await {
        Ok(Some(u)) => Ok(counted(&s.fleet, &method, resp, &u, fw, Counting::Native)),
        Ok(None) => Ok(resp),
        Err(e) => {
            tracing::warn!(error = %e, "could not look up the download's attempt; serving it uncounted");
            Ok(resp)
        }
    }
}

/// A requested byte range, inclusive.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    Full,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

fn parse_range(value: &str, size: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Full;
    };
    if spec.contains(',') {
        // Several ranges: answering with the whole file is allowed and every ESP client asks for one.
        return Range::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => b.parse::<u64>().ok().map(|n| {
            if n == 0 {
                None
            } else {
                Some((size.saturating_sub(n), size.saturating_sub(1)))
            }
        }),
        (false, _) => a.parse::<u64>().ok().and_then(|start| {
            let end = if b.is_empty() {
                Some(u64::MAX)
            } else {
                b.parse::<u64>().ok()
            };
            end.map(|end| (start <= end).then_some((start, end.min(size.saturating_sub(1)))))
        }),
        (true, true) => None,
    };
    match parsed {
        None => Range::Full, // Malformed: ignore the header, as RFC 9110 allows.
        Some(None) => Range::Unsatisfiable,
        Some(Some((start, end))) if start >= size || size == 0 => {
            let _ = end;
            Range::Unsatisfiable
        }
        Some(Some((start, end))) => Range::Part { start, end },
    }
}

/// Serve image `fw` from the fleet's blob store: [`file_response`] of its local file — the
/// local store's, or the S3 backend's cached copy, fetched and verified first when it is not
/// cached (`BlobStore::local`). The copy cannot be evicted before the file is open.
pub async fn blob_response(
    fleet: &otafleet_core::Fleet,
    fw: &Firmware,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let blob = fleet.blobs().local(&fw.sha256).await?;
    file_response(fw, blob.path(), method, headers).await
}

/// Serve an image file with all the headers ESP clients rely on.
pub async fn file_response(
    fw: &Firmware,
    path: &FsPath,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let size = fw.size as u64;
    let etag = format!("\"{}\"", fw.sha256);
    let common = |b: axum::http::response::Builder| {
        b.header(header::ETAG, &etag)
            .header(header::ACCEPT_RANGES, "bytes")
            .header("x-MD5", &fw.md5)
            .header("x-SHA256", &fw.sha256)
            .header(header::CACHE_CONTROL, "no-cache")
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return Ok(common(Response::builder().status(StatusCode::NOT_MODIFIED))
            .body(Body::empty())
            .expect("valid response"));
    }
    // If-Range: honour Range only when the client's copy is this very image.
    let range_allowed = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if range_allowed => parse_range(v, size),
        _ => Range::Full,
    };
    let (status, start, len) = match range {
        Range::Full => (StatusCode::OK, 0, size),
        Range::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Range::Unsatisfiable => {
            return Ok(
                common(Response::builder().status(StatusCode::RANGE_NOT_SATISFIABLE))
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .header(header::CONTENT_LENGTH, 0)
                    .body(Body::empty())
                    .expect("valid response"),
            );
        }
    };
    let mut builder = common(Response::builder().status(status))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!(
                "attachment; filename=\"{}\"",
                fw.filename.replace('"', "")
            ))
            .unwrap_or(HeaderValue::from_static("attachment")),
        );
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", start, start + len - 1),
        );
    }
    if method == Method::HEAD {
        return Ok(builder.body(Body::empty()).expect("valid response"));
    }
    // Small images come from the shared in-memory copy (see `blob_cache` for why).
    let cached = crate::blob_cache::get(&fw.sha256, path, size)
        .await
        .map_err(|e| {
            tracing::error!(sha256 = %fw.sha256, error = %e, "a library image has no blob");
            ApiError::Core(e.into())
        })?;
    if let Some(bytes) = cached.filter(|b| b.len() as u64 == size) {
        let part = bytes.slice(start as usize..(start + len) as usize);
        // One zero-copy frame: hyper hands it to the socket whole, where it leaves with
        // sendfile(2) (`blob_cache::send`); `counted` splits it where progress is counted.
        let body = Body::from(part);
        return Ok(builder.body(body).expect("valid response").into_response());
    }
    let mut file = tokio::fs::File::open(path).await.map_err(|e| {
        tracing::error!(sha256 = %fw.sha256, error = %e, "a library image has no blob");
        ApiError::Core(e.into())
    })?;
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::Core(e.into()))?;
    }
    let body = Body::from_stream(ReaderStream::with_capacity(file.take(len), 64 * 1024));
    Ok(builder.body(body).expect("valid response").into_response())
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Range};

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-0", 10),
            Range::Part { start: 0, end: 0 }
        );
        assert_eq!(
            parse_range("bytes=5-", 10),
            Range::Part { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range("bytes=-3", 10),
            Range::Part { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range("bytes=2-100", 10),
            Range::Part { start: 2, end: 9 }
        );
        assert_eq!(parse_range("bytes=10-", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,4-5", 10), Range::Full);
        assert_eq!(parse_range("items=0-1", 10), Range::Full);
        assert_eq!(parse_range("bytes=x-y", 10), Range::Full);
    }
}
