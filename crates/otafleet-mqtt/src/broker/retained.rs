//! Retained messages, in memory. rmqtt's own storage type keeps them but, as a trait object, says
//! it is disabled (its crate leaves retaining to a plugin); this one turns it on. Nothing is
//! written to disk: otafleet's database is the truth, and otafleet republishes what devices need
//! (their `command/config` and `command/log`) when it starts.

use std::time::Duration;

use rmqtt::retain::{DefaultRetainStorage, RetainStorage};
use rmqtt::types::{Retain, TopicFilter, TopicName};

#[derive(Default)]
pub(crate) struct InMemory(DefaultRetainStorage);

#[async_trait::async_trait]
impl RetainStorage for InMemory {
    fn enable(&self) -> bool {
        true
    }

    fn need_sync(&self) -> bool {
        false
    }

    async fn set(
        &self,
        topic: &TopicName,
        retain: Retain,
        expiry_interval: Option<Duration>,
    ) -> rmqtt::Result<()> {
        // The listeners' default message expiry is zero, which here means "never"; only an expiry
        // the publisher asked for (MQTT v5) is kept.
        let expiry = expiry_interval.filter(|d| !d.is_zero());
        self.0.set_with_timeout(topic, retain, expiry).await
    }

    async fn get(&self, filter: &TopicFilter) -> rmqtt::Result<Vec<(TopicName, Retain)>> {
        self.0.get_message(filter).await
    }

    async fn count(&self) -> isize {
        self.0.count().await
    }

    async fn max(&self) -> isize {
        self.0.max().await
    }
}
