//! One copy of the event stream for every event-stream client (`GET /api/v1/events`).
//!
//! Why: with every client subscribed to the core's event bus, each event woke every client from
//! the publishing task (a device's check-in or progress report) and was turned into JSON and
//! written once per client: with 550 clients a 200-device wave took 3.4× as long
//! (BENCHMARKS.md). Here one task follows the core's bus for all clients: it serializes each
//! event once into its server-sent-event frame, gathers the frames of up to [`COALESCE`] into
//! one shared buffer, and hands that buffer (a reference-counted `Bytes`, never copied) to every
//! client at once. A publisher wakes only this task; clients wake at most once per [`COALESCE`]
//! however many events there are.
//!
//! Slow clients cannot hold anyone up and cannot make memory grow: the hub keeps the last
//! [`BACKLOG`] buffers, shared by all clients; a client that falls further behind (or stops
//! reading) misses the oldest and is sent a `lagged` event when it reads again, after which it
//! reloads its state (the UI does). Nothing waits for a client, ever: a stalled client holds at
//! most its socket's and hyper's buffers of shared frames.
//!
//! The task runs only while someone listens: the first subscriber starts it, and it ends when it
//! finds no subscriber left (so a server without event-stream clients publishes to nobody, and
//! quiet check-ins skip building `seen` events).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use otafleet_core::events::{Event, EventBus};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// How long the hub gathers events into one buffer after the first one arrives.
pub const COALESCE: Duration = Duration::from_millis(50);
/// Buffers kept for clients that read late (each up to [`BATCH_BYTES`], usually far less).
pub const BACKLOG: usize = 256;
/// A buffer is handed out early when it reaches this size.
pub const BATCH_BYTES: usize = 64 * 1024;

/// The hub: hands out receivers of shared frame buffers.
#[derive(Clone, Default)]
pub struct EventHub {
    /// The sender clients subscribe to while the fan-out task runs.
    out: Arc<Mutex<Option<broadcast::Sender<Bytes>>>>,
}

impl EventHub {
    /// A receiver of every event published from now on, as SSE frames.
    pub fn subscribe(&self, events: &EventBus) -> broadcast::Receiver<Bytes> {
        let mut out = self.out.lock().expect("event hub lock");
        if let Some(tx) = out.as_ref() {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(BACKLOG);
        // Subscribed before this returns, so nothing published after it is missed.
        let source = events.subscribe();
        *out = Some(tx.clone());
        tokio::spawn(fan_out(source, tx, self.out.clone()));
        rx
    }
}

/// One SSE frame: `event: <name>` and the JSON of the event as its data.
pub fn frame(buf: &mut BytesMut, event: &Event) {
    buf.put_slice(b"event: ");
    buf.put_slice(event.name().as_bytes());
    buf.put_slice(b"\ndata: ");
    if let Event::Remote { json, .. } = event {
        // Another instance's event, serialized there (one line, like ours).
        buf.put_slice(json.as_bytes());
    } else if serde_json::to_writer((&mut *buf).writer(), event).is_err() {
        // serde_json writes no newline inside a value, so the data is one line.
        buf.put_slice(b"{}");
    }
    buf.put_slice(b"\n\n");
}

/// The frame that tells a client it missed `missed` events (or buffers): reload.
pub fn lagged(missed: u64) -> Bytes {
    Bytes::from(format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n"))
}

async fn fan_out(
    mut source: broadcast::Receiver<Event>,
    tx: broadcast::Sender<Bytes>,
    slot: Arc<Mutex<Option<broadcast::Sender<Bytes>>>>,
) {
    loop {
        let mut buf = BytesMut::new();
        match source.recv().await {
            Ok(event) => frame(&mut buf, &event),
            Err(RecvError::Lagged(n)) => buf.put_slice(&lagged(n)),
            Err(RecvError::Closed) => break,
        }
        // Gather what else arrives within COALESCE into the same buffer.
        let deadline = tokio::time::Instant::now() + COALESCE;
        let mut closed = false;
        while buf.len() < BATCH_BYTES {
            match source.try_recv() {
                Ok(event) => frame(&mut buf, &event),
                Err(TryRecvError::Lagged(n)) => buf.put_slice(&lagged(n)),
                Err(TryRecvError::Closed) => {
                    closed = true;
                    break;
                }
                Err(TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, source.recv()).await {
                        Ok(Ok(event)) => frame(&mut buf, &event),
                        Ok(Err(RecvError::Lagged(n))) => buf.put_slice(&lagged(n)),
                        Ok(Err(RecvError::Closed)) => {
                            closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        if tx.send(buf.freeze()).is_err() {
            // Nobody listens. Stop, unless someone subscribed meanwhile (under the same lock
            // `subscribe` takes, so no subscriber is left with a hub that stopped).
            let mut out = slot.lock().expect("event hub lock");
            if tx.receiver_count() == 0 {
                *out = None;
                return;
            }
        }
        if closed {
            break;
        }
    }
    // The fleet is gone: drop the sender so every client's stream ends.
    slot.lock().expect("event hub lock").take();
}
