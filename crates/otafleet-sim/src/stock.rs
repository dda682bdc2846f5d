//! What the stock device clients (Arduino `HTTPUpdate`, `ESP8266httpUpdate`, esp32FOTA, the
//! legacy "ESP32 OTA Update Server" sketch) have in common: they take an image only as a plain
//! `200` with a positive `Content-Length`, write it to flash as it streams through the `Update`
//! library (which refuses a first byte other than `0xE9`), check it at the end against whatever
//! the protocol gave them, and cannot resume: a download that breaks is dropped and the next check
//! starts over. None of them reports progress; the server counts the bytes it sends.
//!
//! [`stream_image`] is that download, with the injected cut, and [`whole`] what the device keeps
//! of it; what a check answers and how an image is checked stay in each protocol's module, and
//! the outcomes in [`crate::life`].

use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::error::DeviceError;
use crate::life::Dev;
use crate::run::Shared;

/// The stock `HTTPClient`'s headers on an HTTP/1.1 GET (esp32FOTA, the legacy sketch).
pub const HTTPCLIENT_UA: &str = "ESP32HTTPClient";
pub const HTTPCLIENT_ACCEPT_ENCODING: &str = "identity;q=1,chunked;q=0.1,*;q=0";

/// How a download ended.
#[derive(Debug)]
pub enum Streamed {
    /// Every announced byte arrived.
    Whole(Whole),
    /// The injected cut: the device dropped the connection halfway.
    Cut,
    /// The stream broke or ended short of `Content-Length` by itself.
    Short { got: u64, size: u64 },
}

/// An image that arrived whole, as the device's hashers saw it.
#[derive(Debug)]
pub struct Whole {
    pub md5: String,
    pub sha256: String,
    pub size: u64,
    /// The first bytes of the image (up to 16), for the library's header checks.
    pub head: Vec<u8>,
}

/// The image, when it arrived whole. Otherwise the stock clients drop the download and start
/// over at their next poll (none of them resumes; the wait until then is the device's life's,
/// [`crate::life`]). The injected cut happens once per device, and its later update counts as
/// one "after a cut".
pub fn whole(dev: &mut Dev<'_>, streamed: Streamed) -> Option<Whole> {
    match streamed {
        Streamed::Whole(w) => return Some(w),
        Streamed::Cut => {
            dev.cut_pending = false;
            dev.after_cut = true;
        }
        Streamed::Short { got, size } => {
            tracing::debug!(mac = %dev.spec.mac, got, size, "download broke; starting over at the next poll");
        }
    }
    None
}

/// The `Content-Length` a stock client insists on (`-101`, "no content" otherwise).
pub fn content_length(r: &reqwest::Response) -> Result<u64, DeviceError> {
    match r.content_length() {
        Some(n) if n > 0 => Ok(n),
        _ => Err(DeviceError::Protocol(format!(
            "a 200 without a positive Content-Length from {} (stock clients refuse it)",
            r.url().path()
        ))),
    }
}

/// Stream a `200` image response into the hashers, never holding it whole; with `cut`, drop the
/// connection halfway (counted as an injected cut).
pub async fn stream_image(
    sh: &Shared,
    r: reqwest::Response,
    cut: bool,
) -> Result<Streamed, DeviceError> {
    let size = content_length(&r)?;
    sh.stats.downloading.fetch_add(1, Ordering::Relaxed);
    let (mut sha, mut md5, mut got) = (Sha256::new(), Md5::new(), 0u64);
    let mut head = Vec::with_capacity(16);
    let mut body = r.bytes_stream();
    let mut was_cut = false;
    let started = std::time::Instant::now();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        sh.throttle(started, got + chunk.len() as u64).await;
        let mut data = &chunk[..];
        if cut && got + data.len() as u64 >= size / 2 {
            // The connection drops halfway through the image, whatever the chunking.
            data = &data[..(size / 2).saturating_sub(got) as usize];
            was_cut = true;
        }
        if head.len() < 16 {
            head.extend_from_slice(&data[..data.len().min(16 - head.len())]);
        }
        sha.update(data);
        md5.update(data);
        got += data.len() as u64;
        sh.stats
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if was_cut {
            break;
        }
    }
    // Dropping the body mid-stream closes the connection, as when Wi-Fi drops.
    drop(body);
    sh.stats.downloading.fetch_sub(1, Ordering::Relaxed);
    if was_cut {
        sh.stats.cut_downloads.fetch_add(1, Ordering::Relaxed);
        return Ok(Streamed::Cut);
    }
    if got != size {
        sh.http.retried.fetch_add(1, Ordering::Relaxed);
        return Ok(Streamed::Short { got, size });
    }
    Ok(Streamed::Whole(Whole {
        md5: hex::encode(md5.finalize()),
        sha256: hex::encode(sha.finalize()),
        size,
        head,
    }))
}

/// `Update`'s first-byte check (`UPDATE_ERROR_MAGIC_BYTE`, HTTPUpdate's `-106`).
pub fn check_magic(head: &[u8]) -> Result<(), DeviceError> {
    match head.first().copied() {
        Some(0xE9) => Ok(()),
        other => Err(DeviceError::Protocol(format!(
            "the image starts with {other:02X?}, not the 0xE9 magic byte the Update library checks"
        ))),
    }
}
