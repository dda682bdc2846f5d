//! The one HTTP client every virtual device shares, with a bound on requests in flight.
//!
//! reqwest pools connections per host but does not cap them, so a 10,000-device fleet would open
//! 10,000 sockets. A semaphore with `connections` permits is taken for every request (and held
//! for a whole download), which caps open connections at the same number and keeps the pool warm.
//! Transient failures (connection errors, 5xx, 429) are retried a few times at once, with a
//! short backoff, and counted: enough for a blip. A longer outage (a server restart) is the
//! device's to ride out, at its own pace ([`crate::life`], [`crate::backoff`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::DeviceError;

/// Tries of one request before it fails (and the device backs off, if the failure is transient).
const ATTEMPTS: u32 = 6;

#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    pub base: Arc<str>,
    slots: Arc<Semaphore>,
    /// Transient failures that a retry got past (reported in the summary).
    pub retried: Arc<AtomicU64>,
    /// Requests sent, retries included.
    pub requests: Arc<AtomicU64>,
    /// Time from sending each request to its response head, in microseconds, by what the
    /// request was for (the summary reports the check requests'; failed tries not counted).
    pub latencies: Arc<Mutex<BTreeMap<&'static str, Vec<u32>>>>,
}

impl Http {
    pub fn new(base: &str, connections: u32) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections as usize)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .tcp_nodelay(true)
            .build()?;
        Ok(Http {
            client,
            base: base.into(),
            slots: Arc::new(Semaphore::new(connections as usize)),
            retried: Arc::default(),
            requests: Arc::default(),
            latencies: Arc::default(),
        })
    }

    /// The same bounds and retries over a client of the caller's (esp-admin devices': HTTPS
    /// trusting only the server's CA) and another base URL.
    pub fn with_client(client: reqwest::Client, base: &str, connections: u32) -> Self {
        Http {
            client,
            base: base.into(),
            slots: Arc::new(Semaphore::new(connections as usize)),
            retried: Arc::default(),
            requests: Arc::default(),
            latencies: Arc::default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    /// A connection slot; hold it while a response body is being read.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Send the request `make` builds, retrying transient failures. Returns the response (status
    /// not checked beyond 5xx/429) and the slot it holds.
    pub async fn send<F, Fut>(
        &self,
        what: &'static str,
        make: F,
    ) -> Result<(reqwest::Response, Option<OwnedSemaphorePermit>), DeviceError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = reqwest::Result<reqwest::Response>>,
    {
        self.send_inner(what, make, true).await
    }

    /// Like [`Http::send`], but for a device that already holds a slot (a progress report sent
    /// while its download streams). Taking a second slot there could deadlock a full pool: every
    /// downloader waiting for a slot to report progress. So connections in flight are bounded by
    /// `connections` plus one short progress request per running download.
    pub async fn send_in_slot<F, Fut>(
        &self,
        what: &'static str,
        make: F,
    ) -> Result<reqwest::Response, DeviceError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = reqwest::Result<reqwest::Response>>,
    {
        Ok(self.send_inner(what, make, false).await?.0)
    }

    async fn send_inner<F, Fut>(
        &self,
        what: &'static str,
        make: F,
        take_slot: bool,
    ) -> Result<(reqwest::Response, Option<OwnedSemaphorePermit>), DeviceError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = reqwest::Result<reqwest::Response>>,
    {
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=ATTEMPTS {
            let slot = if take_slot {
                Some(self.slot().await)
            } else {
                None
            };
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let answer = make().await;
            if answer.is_ok() {
                let us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                self.latencies
                    .lock()
                    .expect("latencies lock")
                    .entry(what)
                    .or_default()
                    .push(us);
            }
            let transient = match answer {
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                    if attempt == ATTEMPTS {
                        return Err(status_error(what, r).await);
                    }
                    format!("HTTP {}", r.status())
                }
                Ok(r) => return Ok((r, slot)),
                Err(e) if attempt == ATTEMPTS => {
                    return Err(DeviceError::Transport { what, source: e })
                }
                Err(e) => e.to_string(),
            };
            drop(slot);
            self.retried.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(what, attempt, %transient, "retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        unreachable!("the loop returns on its last attempt")
    }
}

/// Turn a non-success response into an error carrying the server's message.
pub async fn status_error(what: &'static str, r: reqwest::Response) -> DeviceError {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    DeviceError::Status {
        what,
        status,
        body: body.chars().take(300).collect(),
    }
}
