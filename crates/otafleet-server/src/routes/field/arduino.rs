//! `GET /ota/arduino`: stock Arduino `HTTPUpdate` (ESP32) and `ESP8266httpUpdate` (docs/protocols.md
//! §2).
//!
//! The device is its STA MAC header (`x-ESP32-STA-MAC` / `x-ESP8266-STA-MAC`; header names are
//! case-insensitive), the running image its sketch MD5 or SHA-256. Answers: `304` when there is
//! nothing to do (also when the image would not fit the declared free space, and for filesystem
//! mode; the reason lands in the device's `hold`), `200` with the image, `Content-Length`,
//! `x-MD5`, `x-SHA256` (and `x-version`) otherwise, its bytes counted for the attempt. ESP8266
//! `mode: version` gets `200` with `x-version` and `x-MD5` and no body. These clients speak
//! HTTP/1.0 with `Connection: close`; hyper answers them in kind with the explicit length.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use otafleet_core::field::{FieldAnswer, FieldCheck, FieldMode};
use otafleet_core::CoreError;

use super::counted::{counted, Counting};
use crate::conn::Transport;
use crate::error::{ApiError, ApiResult};
use crate::routes::download::blob_response;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/ota/arduino", get(arduino))
}

/// The header family of the asking device: `x-ESP32-…` or `x-ESP8266-…`.
struct Family {
    prefix: &'static str,
    protocol: &'static str,
}

const FAMILIES: [Family; 2] = [
    Family {
        prefix: "x-esp32-",
        protocol: "arduino",
    },
    Family {
        prefix: "x-esp8266-",
        protocol: "esp8266",
    },
];

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Anyone on the LAN may call it (a stock client cannot authenticate; the MAC header is its only
/// identity). It registers an unknown MAC (when open enrolment is on), refreshes a device this
/// protocol may speak for, starts and confirms its attempts. A MAC it may not speak for
/// (`otafleet_core::trust`: a token-enrolled device, a device expected to speak another protocol,
/// an unknown MAC with enrolment off, a running image of another project) gets `304` ("no update"
/// to HTTPUpdate) with the refusal code in `x-otafleet-refused`; the refusal is logged and
/// recorded on the device, and nothing else of it changes.
async fn arduino(
    State(s): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    transport: Option<Extension<Transport>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some((fam, mac)) = FAMILIES
        .iter()
        .find_map(|f| text(&headers, &format!("{}sta-mac", f.prefix)).map(|m| (f, m.to_string())))
    else {
        return Err(ApiError::bad_request(
            "sta_mac_required",
            "this endpoint serves Arduino HTTPUpdate / ESP8266httpUpdate: the request needs the x-ESP32-STA-MAC or x-ESP8266-STA-MAC header those libraries send",
        ));
    };
    let h = |name: &str| text(&headers, &format!("{}{name}", fam.prefix)).map(str::to_owned);
    let free_space = match h("free-space") {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            ApiError::with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_free_space",
                format!("{}free-space must be a number of bytes", fam.prefix),
            )
        })?),
    };
    let mode = match h("mode").as_deref() {
        None | Some("sketch") => FieldMode::App,
        Some("version") if fam.protocol == "esp8266" => FieldMode::VersionOnly,
        Some(_) => FieldMode::Filesystem,
    };
    let check = FieldCheck {
        mac,
        protocol: fam.protocol,
        mode,
        md5: h("sketch-md5"),
        sha256: h("sketch-sha256"),
        version: h("version"),
        free_space,
        ip: Some(remote.ip().to_canonical().to_string()),
        register: true,
        weak_auth: false,
        tls: transport.is_some_and(|Extension(t)| t.is_tls()),
    };
    let (mac, answer) = match s.fleet.field_check(check).await {
        Err(e @ CoreError::Refused { .. }) => {
            return Ok(Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header("x-otafleet-refused", e.code())
                .body(Body::empty())
                .expect("valid response"));
        }
        other => other?,
    };
    match answer {
        FieldAnswer::Nothing { reason } => {
            tracing::debug!(%mac, %reason, "arduino: nothing to do");
            Ok(Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .expect("valid response"))
        }
        FieldAnswer::Target { firmware } => Ok(Response::builder()
            .status(StatusCode::OK)
            .header("x-version", firmware.version.as_deref().unwrap_or(""))
            .header("x-MD5", &firmware.md5)
            .header(header::CONTENT_LENGTH, 0)
            .body(Body::empty())
            .expect("valid response")),
        FieldAnswer::Manifest { .. } => Err(ApiError::with_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an HTTPUpdate check was answered with an esp32FOTA manifest",
        )),
        FieldAnswer::Offer { update, firmware } => {
            let (fw, _) = s.fleet.firmware_file(&firmware.sha256).await?;
            // A plain 200 whatever the request carried: these clients accept nothing else.
            let mut resp = blob_response(&s.fleet, &fw, &Method::GET, &HeaderMap::new()).await?;
            if let Some(v) = fw.version.as_deref().and_then(|v| v.parse().ok()) {
                resp.headers_mut().insert("x-version", v);
            }
            tracing::info!(%mac, update = update.id, sha256 = %fw.sha256, "arduino: sending image");
            Ok(counted(
                &s.fleet,
                &Method::GET,
                resp,
                &update,
                &fw,
                Counting::Stock,
            ))
        }
    }
}
