//! One virtual device running stock Arduino-ESP32 `HTTPUpdate` (DESIGN.md contract 2,
//! device-protocols.md §1.1): it polls `GET /ota/arduino` with the `x-ESP32-*` headers the library
//! sends (STA MAC, free space, sketch size and MD5, version, mode), gets `304` or the image,
//! checks the MD5 the server announced in `x-MD5` while streaming, "reboots" and polls again on
//! the new image, which is what makes the server call the attempt `done`. It reports nothing:
//! the server counts the bytes it sends.
//!
//! Unlike native devices, `HTTPUpdate` cannot resume: a cut download is dropped and the next poll
//! starts over. An injected failed boot comes back with the old sketch MD5, which the server must
//! record as a failed attempt.

use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use md5::Md5;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::device::{DeviceSpec, Image, Outcome};
use crate::error::DeviceError;
use crate::http::status_error;
use crate::run::Shared;

/// Run one Arduino device to its end (or the run's timeout).
pub async fn run(sh: &Shared, spec: DeviceSpec) -> Outcome {
    match tokio::time::timeout(sh.cfg.timeout, life(sh, spec)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Unexpected(e.to_string()),
        Err(_) => Outcome::Unexpected(DeviceError::Timeout("polling /ota/arduino").to_string()),
    }
}

async fn life(sh: &Shared, mut spec: DeviceSpec) -> Result<Outcome, DeviceError> {
    let first = sh.cfg.interval.mul_f64(rand::thread_rng().gen::<f64>());
    tokio::time::sleep(first).await;
    let (mut enrolled, mut booted, mut boot_failed, mut resumed) = (false, false, false, false);
    let mut cut_pending = spec.cut_download;
    let url = sh.http.url("/ota/arduino");
    loop {
        let running = spec.running.clone();
        let free = (0x1E_0000u64).max(sh.cfg.image_size as u64 * 2).to_string();
        let (r, _slot) = sh
            .http
            .send("arduino poll", || {
                sh.http
                    .client
                    .get(&url)
                    .header("User-Agent", "ESP32-http-Update")
                    .header("x-ESP32-STA-MAC", &spec.mac)
                    .header("x-ESP32-AP-MAC", &spec.mac)
                    .header("x-ESP32-free-space", &free)
                    .header("x-ESP32-sketch-size", sh.cfg.image_size.to_string())
                    .header("x-ESP32-sketch-md5", &running.md5)
                    .header("x-ESP32-chip-size", "4194304")
                    .header("x-ESP32-sdk-version", "v4.4.7")
                    .header("x-ESP32-mode", "sketch")
                    .header("x-ESP32-version", &running.version)
                    .send()
            })
            .await?;
        if !enrolled {
            enrolled = true;
            sh.stats.enrolled.fetch_add(1, Ordering::Relaxed);
        }
        match r.status().as_u16() {
            304 if booted => {
                return Ok(Outcome::Updated {
                    update_id: None,
                    resumed,
                })
            }
            304 if boot_failed => return Ok(Outcome::BootFailedAsInjected { update_id: None }),
            304 => tokio::time::sleep(sh.jittered(sh.cfg.interval)).await,
            // Back on the old image the server closed the attempt and offers a new one: the
            // injected failure is on record; this device stops here.
            200 if boot_failed => return Ok(Outcome::BootFailedAsInjected { update_id: None }),
            200 if booted => {
                return Err(DeviceError::Protocol(
                    "the server sent the image again to a device that runs it".into(),
                ))
            }
            200 => {
                let header = |n: &str| {
                    r.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let want_md5 = header("x-MD5").ok_or_else(|| {
                    DeviceError::Protocol("an image without x-MD5 (HTTPUpdate needs it)".into())
                })?;
                let version = header("x-version").unwrap_or_default();
                let size = r.content_length().ok_or_else(|| {
                    DeviceError::Protocol("an image without Content-Length".into())
                })?;
                sh.stats.downloading.fetch_add(1, Ordering::Relaxed);
                let (mut sha, mut md5, mut got) = (Sha256::new(), Md5::new(), 0u64);
                let mut body = r.bytes_stream();
                let mut cut = false;
                while let Some(chunk) = body.next().await {
                    let chunk = match chunk {
                        Ok(c) => c,
                        Err(_) => break,
                    };
                    sha.update(&chunk);
                    md5.update(&chunk);
                    got += chunk.len() as u64;
                    sh.stats
                        .bytes
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if cut_pending && got >= size / 2 {
                        cut = true;
                        break;
                    }
                }
                drop(body);
                sh.stats.downloading.fetch_sub(1, Ordering::Relaxed);
                if cut || got != size {
                    // HTTPUpdate gives up on a short read; the next poll starts over.
                    if cut {
                        cut_pending = false;
                        resumed = true;
                        sh.stats.cut_downloads.fetch_add(1, Ordering::Relaxed);
                    } else {
                        sh.http.retried.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(sh.jittered(sh.cfg.interval)).await;
                    continue;
                }
                let (sha, md5) = (hex::encode(sha.finalize()), hex::encode(md5.finalize()));
                if md5 != want_md5.to_lowercase() {
                    return Err(DeviceError::Protocol(format!(
                        "the image's MD5 {md5} is not the announced {want_md5}"
                    )));
                }
                tokio::time::sleep(sh.jittered(sh.cfg.reboot)).await;
                if spec.failed_boot {
                    boot_failed = true;
                    sh.stats.boot_failures.fetch_add(1, Ordering::Relaxed);
                } else {
                    spec.running = Image {
                        version,
                        sha256: sha,
                        md5,
                    };
                    booted = true;
                }
            }
            _ => return Err(status_error("arduino poll", r).await),
        }
    }
}
