//! Errors of the simulator. [`SimError`] stops a run before or around the fleet (bad usage, no
//! server, an admin call refused); [`DeviceError`] ends one virtual device and is counted as an
//! unexpected failure in the summary.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SimError {
    #[error("{0}")]
    Usage(String),
    #[error("give --server URL, or --mdns to find the server over mDNS")]
    NoServer,
    #[error("--mdns: {0}")]
    Mdns(String),
    #[error("admin request {what} failed: {detail}")]
    Admin { what: &'static str, detail: String },
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("{what}: {source}")]
    Transport {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("download of update {update_id}: {detail}")]
    Download { update_id: i64, detail: String },
    #[error("{0}")]
    Protocol(String),
    #[error("timed out ({0})")]
    Timeout(&'static str),
}
