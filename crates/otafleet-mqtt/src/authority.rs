//! The embedded broker's [`Authority`] over `Fleet`: a device logs in with its ESP Admin id (as
//! client id and user name) and its API key (checked against the stored hash, a wrong key
//! recorded on the device), and what the broker refuses it is counted in its refusals.

use std::net::SocketAddr;

use otafleet_core::Fleet;

use crate::broker::{Authority, Refusal};

pub struct FleetAuthority(pub Fleet);

#[async_trait::async_trait]
impl Authority for FleetAuthority {
    async fn authenticate(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        peer: Option<SocketAddr>,
    ) -> Result<(), String> {
        let from = peer.map(|p| p.ip().to_canonical().to_string());
        self.0
            .mqtt_authenticate(client_id, username, password, from.as_deref())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn refused(&self, client_id: &str, refusal: Refusal, peer: Option<SocketAddr>) {
        let from = peer.map(|p| p.ip().to_canonical().to_string());
        let (code, message) = match refusal {
            Refusal::Subscribe { filter } => (
                "mqtt_subscribe_refused",
                format!("subscribing to '{filter}': a device may only subscribe to its own device/<id>/command/+"),
            ),
            Refusal::Publish { topic } => (
                "mqtt_publish_refused",
                format!("publishing to '{topic}': a device may only publish to its own device/<id>/report/… and device/<id>/logs/…"),
            ),
            Refusal::Will { topic } => (
                "mqtt_will_refused",
                format!("a last will on '{topic}': it must be the device's own device/<id>/report/status"),
            ),
        };
        if let Err(e) = self
            .0
            .mqtt_refused(client_id, code, message, from.as_deref())
            .await
        {
            tracing::warn!(%client_id, error = %e, "MQTT: could not record a refusal");
        }
    }
}
