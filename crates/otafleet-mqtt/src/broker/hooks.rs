//! The rmqtt hook handler that applies otafleet's rules: who may log in (and as what), and what a
//! logged-in device may subscribe and publish.

use std::net::SocketAddr;
use std::sync::Arc;

use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{AuthResult, ConnectInfo, ListenerId, PublishAclResult, SubscribeAclResult};

use super::{rules, Authority, Refusal, SERVICE_USER};

/// rmqtt's id for the internal listener that device connections are forwarded to.
pub(crate) const DEVICE_LISTENER: ListenerId = 1;
/// rmqtt's id for the internal listener that service connections are forwarded to.
pub(crate) const SERVICE_LISTENER: ListenerId = 2;

pub(crate) struct Rules {
    pub(crate) authority: Arc<dyn Authority>,
    pub(crate) service_password: String,
}

/// Compares in constant time, so timing does not tell how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

fn allow(superuser: bool) -> ReturnType {
    (
        false,
        Some(HookResult::AuthResult(AuthResult::Allow(superuser, None))),
    )
}

fn bad_login() -> ReturnType {
    (
        false,
        Some(HookResult::AuthResult(AuthResult::BadUsernameOrPassword)),
    )
}

fn not_authorized() -> ReturnType {
    (
        false,
        Some(HookResult::AuthResult(AuthResult::NotAuthorized)),
    )
}

impl Rules {
    async fn authenticate(&self, ci: &ConnectInfo) -> ReturnType {
        let id = ci.id();
        let client_id: &str = &id.client_id;
        let peer = id.remote_addr;
        let username: &str = ci.username().map(|u| u.as_ref()).unwrap_or("");
        let password = ci.password().map(|p| p.as_ref()).unwrap_or(b"");

        if id.lid == SERVICE_LISTENER {
            // The loopback service listener admits only otafleet's own client.
            if username == SERVICE_USER && same_secret(password, self.service_password.as_bytes()) {
                return allow(true);
            }
            tracing::warn!(
                client_id,
                ?peer,
                "MQTT: refused a login on the service listener"
            );
            return bad_login();
        }
        if id.lid != DEVICE_LISTENER {
            return not_authorized();
        }

        if !rules::valid_device_id(client_id) || client_id.starts_with(SERVICE_USER) {
            tracing::warn!(
                client_id,
                ?peer,
                "MQTT: refused a client id no device can have"
            );
            return not_authorized();
        }
        let Ok(password) = std::str::from_utf8(password) else {
            tracing::warn!(
                client_id,
                ?peer,
                "MQTT: refused a login whose password is not UTF-8"
            );
            return bad_login();
        };
        if let Err(reason) = self
            .authority
            .authenticate(client_id, username, password, peer)
            .await
        {
            tracing::info!(client_id, ?peer, %reason, "MQTT: refused a device login");
            return bad_login();
        }
        // The will is published by the broker on the device's behalf after it is gone, past the
        // publish rules, so its topic is checked here, at CONNECT.
        if let Some(will) = ci.last_will() {
            let topic: &str = match will {
                rmqtt::types::LastWill::V3(w) => &w.topic,
                rmqtt::types::LastWill::V5(w) => &w.topic,
            };
            if topic != rules::will_topic(client_id) {
                self.refused(
                    client_id,
                    Refusal::Will {
                        topic: topic.to_owned(),
                    },
                    peer,
                )
                .await;
                return not_authorized();
            }
        }
        allow(false)
    }

    async fn refused(&self, client_id: &str, refusal: Refusal, peer: Option<SocketAddr>) {
        tracing::warn!(client_id, ?peer, ?refusal, "MQTT: refused a device");
        self.authority.refused(client_id, refusal, peer).await;
    }
}

#[async_trait::async_trait]
impl Handler for Rules {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(ci) => self.authenticate(ci).await,
            // rmqtt lets superusers (the service user) past these two before calling the hook, so
            // whoever reaches them is a device, and its client id is its device id.
            Parameter::ClientSubscribeCheckAcl(s, sub) => {
                let client_id: &str = &s.id.client_id;
                if rules::may_subscribe(client_id, &sub.topic_filter) {
                    return (true, acc);
                }
                let refusal = Refusal::Subscribe {
                    filter: sub.topic_filter.to_string(),
                };
                self.refused(client_id, refusal, s.id.remote_addr).await;
                let failure = SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized);
                (false, Some(HookResult::SubscribeAclResult(failure)))
            }
            Parameter::MessagePublishCheckAcl(s, publish) => {
                let client_id: &str = &s.id.client_id;
                if rules::may_publish(client_id, &publish.topic) {
                    return (true, acc);
                }
                let refusal = Refusal::Publish {
                    topic: publish.topic.to_string(),
                };
                self.refused(client_id, refusal, s.id.remote_addr).await;
                let denied = PublishAclResult::rejected(false, Some("not authorized".into()));
                (false, Some(HookResult::PublishAclResult(denied)))
            }
            _ => (true, acc),
        }
    }
}
