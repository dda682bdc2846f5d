//! The mDNS crate's error type: the daemon refused something, or the core did.

pub type Result<T, E = MdnsError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum MdnsError {
    /// The mDNS daemon could not start, register or browse (no usable interface, socket error).
    #[error("mDNS: {0}")]
    Daemon(#[from] mdns_sd::Error),
    /// Writing a discovered device failed.
    #[error(transparent)]
    Core(#[from] otafleet_core::CoreError),
}
