//! Several instances, one truth: what one `otafleet serve` changes in a shared PostgreSQL
//! database reaches the memory of the others.
//!
//! Each instance keeps two things in memory that the database alone does not tell the others:
//! the quiet-check-in memory ([`crate::hot`]: remembered answers, dropped per device by
//! [`crate::hot::Hot::forget`] or all at once by a generation bump) and the [`EventBus`] that
//! event-stream clients follow. With `--database-url` (PostgreSQL), this module carries both
//! between instances through PostgreSQL's LISTEN/NOTIFY:
//!
//! - **What is sent.** Every [`BATCH_EVERY`] an instance gathers what it invalidated (the MACs it
//!   forgot, whether it bumped the generation — any change that may move any device's answer,
//!   deployments included —, whether the check-in timing changed) and the events it published,
//!   writes them as one row of `cluster_notices` (an UNLOGGED table, created at start, rows
//!   older than [`KEEP`] deleted) and sends `NOTIFY otafleet_cluster, '<instance>:<row id>'`. The
//!   row is needed because a NOTIFY payload holds at most 8,000 bytes; the NOTIFY names its row,
//!   so ids committed out of order lose nothing.
//! - **Only after commit, never in a device's transaction.** Invalidations are *staged* when a
//!   writer takes the lock or forgets a device, and become sendable only once that writer has
//!   released the fleet's write lock (its commit is done) — or, for those staged outside any
//!   writer, when the batcher finds the lock free. The NOTIFY is its own statement outside every
//!   device transaction: a NOTIFY serialises commits, which would cap check-ins.
//! - **Applied by the others, ignored by the sender.** A listener on a connection of its own
//!   (`PgListener`) reads each named row from another instance and applies it: forgets those
//!   devices, bumps the generation, re-reads the timing, and republishes the events on the local
//!   bus ([`Event::Remote`]), so event-stream clients, the firmware index, the watch folders and
//!   command long polls see them as if they were local.
//! - **Deaf means no memory.** An instance answers from memory only while it hears its own
//!   notices come back: each instance sends at least one every [`ECHO_EVERY`] (an empty
//!   `'<instance>:0'`). When its own notice does not come back within [`DEAF_AFTER`], or the
//!   listener's connection is lost, it drops its whole memory and stops remembering
//!   ([`crate::hot::Hot::set_enabled`]) until it hears itself again — it may have missed
//!   others' notices — and tells its event-stream clients `lagged` (they reload).
//!
//! Staleness bound (ARCHITECTURE.md): another instance answers from stale memory for at most
//! [`BATCH_EVERY`] plus the notice's delivery (a row insert, the NOTIFY and one row read: a few
//! milliseconds on a LAN) after the writer committed; with its listener cut off, for at most
//! [`DEAF_AFTER`] plus one [`ECHO_EVERY`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::events::Event;

/// How often an instance sends what it invalidated and published.
pub const BATCH_EVERY: Duration = Duration::from_millis(50);
/// How often an instance sends a notice even when it has nothing to say (its liveness echo).
pub const ECHO_EVERY: Duration = Duration::from_millis(500);
/// An instance that has not heard its own notice for this long stops answering from memory.
pub const DEAF_AFTER: Duration = Duration::from_secs(2);
/// How long a notice's row is kept (a listener reads it within milliseconds).
pub const KEEP: Duration = Duration::from_secs(300);
/// The LISTEN/NOTIFY channel.
pub const CHANNEL: &str = "otafleet_cluster";

#[derive(Default)]
struct Pending {
    all: bool,
    timing: bool,
    forget: HashSet<String>,
    /// Events as their JSON (the event stream's `data`).
    events: Vec<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.all && !self.timing && self.forget.is_empty() && self.events.is_empty()
    }

    fn absorb(&mut self, other: Pending) {
        self.all |= other.all;
        self.timing |= other.timing;
        self.forget.extend(other.forget);
        self.events.extend(other.events);
    }

    /// The row's body: `{"all":…,"timing":…,"forget":[…],"events":[…]}`.
    fn body(&self) -> String {
        let mut s =
            String::with_capacity(64 + self.events.iter().map(|e| e.len() + 1).sum::<usize>());
        s.push_str("{\"all\":");
        s.push_str(if self.all { "true" } else { "false" });
        s.push_str(",\"timing\":");
        s.push_str(if self.timing { "true" } else { "false" });
        s.push_str(",\"forget\":");
        s.push_str(&serde_json::to_string(&self.forget).expect("macs serialize"));
        s.push_str(",\"events\":[");
        for (i, e) in self.events.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(e);
        }
        s.push_str("]}");
        s
    }
}

/// What this instance invalidated and published, waiting to be sent to the others.
pub(crate) struct Outbox {
    /// This instance's name on the channel (random per start).
    id: String,
    /// Invalidations whose writer may not have committed yet.
    staged: Mutex<Pending>,
    /// Ready to send: committed (or published after commit).
    ready: Mutex<Pending>,
}

impl Outbox {
    pub fn new() -> Self {
        let id = hex::encode(rand::random::<[u8; 8]>());
        Self {
            id,
            staged: Mutex::default(),
            ready: Mutex::default(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.staged.lock().expect("cluster staged lock")
    }

    fn ready(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.ready.lock().expect("cluster ready lock")
    }

    pub fn stage_all(&self) {
        self.staged().all = true;
    }

    pub fn stage_forget(&self, mac: &str) {
        let mut s = self.staged();
        if !s.all {
            s.forget.insert(mac.to_string());
        }
    }

    pub fn stage_timing(&self) {
        self.staged().timing = true;
    }

    /// The staged invalidations' writers are done (the caller releases, or holds while free,
    /// the fleet's write lock): make them sendable.
    pub fn promote(&self) {
        let staged = std::mem::take(&mut *self.staged());
        if !staged.is_empty() {
            self.ready().absorb(staged);
        }
    }

    /// An event published on this instance's bus (after its change committed).
    pub fn event(&self, json: String) {
        self.ready().events.push(json);
    }

    /// Everything ready, as one body; `None` when there is nothing.
    fn take(&self) -> Option<String> {
        let mut ready = std::mem::take(&mut *self.ready());
        if ready.is_empty() {
            return None;
        }
        if ready.all {
            ready.forget.clear();
        }
        Some(ready.body())
    }

    /// A notice could not be sent: the others must drop everything (events are lost; their
    /// event-stream clients are told nothing more than by any lost event).
    fn failed(&self) {
        self.ready().all = true;
    }
}

/// A notice as read from another instance's row.
#[derive(serde::Deserialize, Default)]
struct Received {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    timing: bool,
    #[serde(default)]
    forget: Vec<String>,
    #[serde(default)]
    events: Vec<serde_json::Value>,
}

/// Create the notices' table (idempotent, under the writer's lock so that instances starting
/// together do not race on it) and start the batcher and the listener.
pub(crate) async fn start(fleet: &crate::Fleet, outbox: Arc<Outbox>) -> Result<()> {
    {
        let mut tx = crate::db::begin_write(fleet.db()).await?;
        crate::db::query(
            "CREATE UNLOGGED TABLE IF NOT EXISTS cluster_notices (\
             id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             origin TEXT NOT NULL, body TEXT NOT NULL, \
             at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
    }
    // Listening before anything is remembered: the memory is off until the first echo.
    let listener = fleet.db().listener(CHANNEL).await?;
    let weak = fleet.weak();
    tokio::spawn(listen(weak.clone(), listener, outbox.id().to_string()));
    tokio::spawn(batch(weak, outbox));
    Ok(())
}

/// Every [`BATCH_EVERY`]: send what is ready (or the echo), and now and then delete old rows.
async fn batch(weak: Weak<crate::fleet::Inner>, outbox: Arc<Outbox>) {
    let mut tick = tokio::time::interval(BATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sent = Instant::now() - ECHO_EVERY;
    let mut last_prune = Instant::now();
    loop {
        tick.tick().await;
        let Some(fleet) = crate::Fleet::upgrade(&weak) else {
            break;
        };
        if fleet.db().is_closed() {
            break;
        }
        if let Some(_free) = fleet.try_write_lock() {
            // No writer of this instance is between its staging and its commit.
            outbox.promote();
        }
        let body = outbox.take();
        if body.is_none() && last_sent.elapsed() < ECHO_EVERY {
            continue;
        }
        match send(&fleet, outbox.id(), body.as_deref()).await {
            Ok(()) => last_sent = Instant::now(),
            Err(e) => {
                if fleet.db().is_closed() {
                    break;
                }
                if body.is_some() {
                    outbox.failed();
                }
                tracing::warn!(error = %e, "could not tell the other instances what changed; retrying");
            }
        }
        if last_prune.elapsed() >= Duration::from_secs(30) {
            last_prune = Instant::now();
            let r = crate::db::query(
                "DELETE FROM cluster_notices WHERE at < now() - make_interval(secs => $1)",
            )
            .bind(KEEP.as_secs_f64())
            .execute(fleet.db())
            .await;
            if let Err(e) = r {
                tracing::debug!(error = %e, "could not delete old cluster notices");
            }
        }
    }
}

/// One notice: the row (if there is something to say) and its NOTIFY, in one statement (its
/// own transaction, never a device's).
async fn send(fleet: &crate::Fleet, origin: &str, body: Option<&str>) -> Result<()> {
    match body {
        Some(body) => {
            crate::db::query(
                "WITH n AS (INSERT INTO cluster_notices (origin, body) VALUES ($1, $2) RETURNING id) \
                 SELECT pg_notify($3, $1 || ':' || CAST(n.id AS TEXT)) FROM n",
            )
            .bind(origin.to_string())
            .bind(body.to_string())
            .bind(CHANNEL)
            .execute(fleet.db())
            .await?;
        }
        None => {
            crate::db::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(format!("{origin}:0"))
                .execute(fleet.db())
                .await?;
        }
    }
    Ok(())
}

/// Follow the channel: apply the others' notices, watch for this instance's own echo.
async fn listen(
    weak: Weak<crate::fleet::Inner>,
    mut listener: sqlx::postgres::PgListener,
    me: String,
) {
    let mut live = false;
    let mut heard = Instant::now();
    loop {
        let deaf_at = tokio::time::Instant::from_std(heard + DEAF_AFTER);
        let next = tokio::select! {
            n = listener.try_recv() => Some(n),
            _ = tokio::time::sleep_until(deaf_at), if live => None,
        };
        let Some(fleet) = crate::Fleet::upgrade(&weak) else {
            break;
        };
        match next {
            None => {
                tracing::warn!(
                    "this instance has not heard its own cluster notice for {DEAF_AFTER:?}: \
                     answering every check-in from the database until it does"
                );
                live = false;
                deaf(&fleet);
            }
            Some(Ok(Some(n))) => {
                let (origin, id) = n.payload().split_once(':').unwrap_or(("", "0"));
                if origin == me {
                    heard = Instant::now();
                    if !live {
                        live = true;
                        fleet.hot().set_enabled(true);
                        tracing::info!(
                            "hearing the other instances: check-ins answered from memory again"
                        );
                    }
                } else if let Ok(id) = id.parse::<i64>() {
                    if id > 0 {
                        if let Err(e) = apply(&fleet, id).await {
                            tracing::warn!(error = %e, "could not read another instance's notice: dropping all remembered answers");
                            fleet.hot().bump_remote();
                        }
                    }
                }
            }
            Some(Ok(None)) => {
                // The connection was lost; the next try_recv reconnects and listens again.
                tracing::warn!(
                    "lost the cluster listener's connection: dropping all remembered answers"
                );
                live = false;
                deaf(&fleet);
            }
            Some(Err(e)) => {
                if fleet.db().is_closed() {
                    break;
                }
                tracing::warn!(error = %e, "cluster listener failed; retrying");
                if live {
                    live = false;
                    deaf(&fleet);
                }
                drop(fleet);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Missed notices may exist: nothing remembered is trusted, and event-stream clients reload.
fn deaf(fleet: &crate::Fleet) {
    fleet.hot().set_enabled(false);
    fleet
        .events()
        .publish_remote("lagged", Arc::from("{\"missed\":0}"));
}

async fn apply(fleet: &crate::Fleet, id: i64) -> Result<()> {
    let body: Option<String> =
        crate::db::query_scalar("SELECT body FROM cluster_notices WHERE id = $1")
            .bind(id)
            .fetch_optional(fleet.db())
            .await?;
    let notice: Received = match body.as_deref().map(serde_json::from_str) {
        Some(Ok(n)) => n,
        // Gone (pruned) or unreadable: assume the worst.
        _ => Received {
            all: true,
            ..Received::default()
        },
    };
    if notice.all {
        fleet.hot().bump_remote();
    }
    for mac in &notice.forget {
        fleet.hot().forget_remote(mac);
    }
    if notice.timing {
        fleet.reload_timing().await?;
    }
    for event in notice.events {
        let Some(name) = event
            .get("type")
            .and_then(|t| t.as_str())
            .and_then(Event::static_name)
        else {
            continue;
        };
        if name == "command" {
            // A command queued elsewhere for a device whose long poll waits here.
            let c = &event["command"];
            if c["state"] == "queued" {
                if let Some(mac) = c["mac"].as_str() {
                    fleet.wake_command_waiter(mac);
                }
            }
        }
        fleet
            .events()
            .publish_remote(name, Arc::from(event.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(o: &Outbox) -> Option<serde_json::Value> {
        o.take()
            .map(|b| serde_json::from_str(&b).expect("a JSON body"))
    }

    #[test]
    fn invalidations_wait_for_their_writer_and_events_do_not() {
        let o = Outbox::new();
        // A writer forgot a device and has not committed yet: nothing to send.
        o.stage_forget("24:6F:28:00:00:01");
        assert!(body(&o).is_none());
        // An event is published after its commit: sendable at once, alone.
        o.event(r#"{"type":"seen","mac":"x"}"#.to_string());
        let b = body(&o).unwrap();
        assert_eq!(b["forget"], serde_json::json!([]));
        assert_eq!(b["events"][0]["type"], "seen");
        // The writer released the lock: its invalidation goes.
        o.promote();
        let b = body(&o).unwrap();
        assert_eq!(b["forget"], serde_json::json!(["24:6F:28:00:00:01"]));
        assert_eq!(b["all"], false);
        assert!(body(&o).is_none(), "sent once");
    }

    #[test]
    fn a_bump_covers_every_forget_and_a_failed_send_makes_the_next_drop_everything() {
        let o = Outbox::new();
        o.stage_forget("24:6F:28:00:00:01");
        o.stage_all();
        o.stage_forget("24:6F:28:00:00:02");
        o.stage_timing();
        o.promote();
        let b = body(&o).unwrap();
        assert_eq!(b["all"], true);
        assert_eq!(b["timing"], true);
        assert_eq!(b["forget"], serde_json::json!([]));
        o.failed();
        assert_eq!(body(&o).unwrap()["all"], true);
    }
}
