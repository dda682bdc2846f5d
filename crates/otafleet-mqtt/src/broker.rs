//! The embedded broker. (Being built.)

use std::net::SocketAddr;

/// What the broker refused a logged-in device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A subscription outside `device/<own id>/command/+`.
    Subscribe { filter: String },
    /// A publication outside `device/<own id>/report/<x>` and `device/<own id>/logs/<x>`.
    Publish { topic: String },
    /// A last-will topic other than `device/<own id>/report/status` (refused at CONNECT).
    Will { topic: String },
}

/// Who may log in, and where refusals are recorded. otafleet implements it over `Fleet`.
#[async_trait::async_trait]
pub trait Authority: Send + Sync + 'static {
    /// `Ok(())` admits the client as device `client_id`; `Err(reason)` refuses the CONNECT
    /// (bad user name or password), the reason is logged.
    async fn authenticate(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        peer: Option<SocketAddr>,
    ) -> Result<(), String>;

    /// A logged-in device `client_id` was refused something; record it.
    async fn refused(&self, client_id: &str, refusal: Refusal, peer: Option<SocketAddr>);
}
