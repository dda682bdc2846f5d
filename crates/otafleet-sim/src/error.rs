//! Errors of the simulator. [`SimError`] stops a run before or around the fleet (bad usage, no
//! server, an admin call refused); a [`DeviceError`] is counted as an unexpected failure of one
//! virtual device in the summary, except a transient one ([`DeviceError::is_transient`]: the
//! server unreachable, a timeout, a 5xx), which the device rides out with back-off as a real one
//! does, and [`DeviceError::Stopped`], which only says the run has ended.

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
    #[error(
        "timed out ({phase}{})",
        last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
    )]
    Timeout {
        /// What the device was doing.
        phase: &'static str,
        /// The last transient error it was riding out, if any.
        last_error: Option<String>,
    },
    /// An `update_abort` command stopped the download of this update (reported `failed` to the
    /// server); the device checks again later. Not a failure of the run.
    #[error("download of update {update_id} aborted by an update_abort command")]
    Aborted { update_id: i64 },
    /// The server closed this update while the device was taking it (a progress report
    /// answered 409: its deployment was stopped); the device stops, keeps the image it runs and
    /// checks again later. Not a failure of the run.
    #[error("update {update_id} was closed by the server while the device took it")]
    Withdrawn { update_id: i64 },
    /// The MQTT broker could not be reached, or the session broke (esp-admin devices): ridden
    /// out like the server away.
    #[error("MQTT: {0}")]
    Mqtt(String),
    /// The run ended (`--duration` / `--forever`) while the device waited: not a failure.
    #[error("the run ended")]
    Stopped,
}

impl DeviceError {
    /// A failure a real device rides out by trying again later: the server unreachable or gone
    /// mid-answer (a restart), a timeout, a `5xx` or `429`. Anything else (a `4xx`, a wrong
    /// answer, a bad image) is an error of the server, the simulator or the setup.
    pub fn is_transient(&self) -> bool {
        match self {
            DeviceError::Transport { .. } | DeviceError::Mqtt(_) => true,
            DeviceError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
