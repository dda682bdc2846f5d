//! [`FirmwareIndex`]: firmware rows by SHA-256 for the download routes, so that a download does
//! not ask the database (the why, and how deletes are seen, is on the type).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use otafleet_core::events::Event;
use otafleet_core::firmware::Firmware;
use otafleet_core::Fleet;
use tokio::sync::broadcast::{self, error::TryRecvError};

use crate::error::ApiResult;

/// Firmware rows by SHA-256 for downloads, kept per server so that a download does not ask the
/// database.
///
/// Why: under `wrk -c64` on one 1.5 MB image, the lookup (`Fleet::firmware_file`, a query that
/// also counts the devices running the image, so it grows with the fleet) was ~14 % of the
/// server's CPU in sqlx's worker thread, plus the thread wake-ups to get there and back. A row's
/// bytes never change once imported; its identity (project, version, file name) may be corrected
/// by the admin, and it may go away, so an entry stays valid until its image is changed or
/// deleted.
///
/// Changes and deletes: [`Fleet::firmware_patch`] publishes [`Event::Firmware`] and
/// [`Fleet::firmware_delete`] [`Event::FirmwareRemoved`] before they return, and every lookup
/// first applies the events published so far (`try_recv`, no waiting), dropping the entry of the
/// image they name, so a download that starts after a change or delete returned never sees the
/// old row, whoever made it (HTTP, legacy admin API, desktop shell). A lookup that races one
/// does not store what it read (the removal count moved). If the receiver ever falls behind the
/// bus, the index forgets everything.
///
/// Cost elsewhere: the index listens to the bus only while downloads happen. A task applies the
/// pending events every [`TICK`] (so that the bus does not hold them for this receiver) and,
/// after [`IDLE`] without a lookup, forgets everything and unsubscribes; the next download
/// subscribes again.
#[derive(Default)]
pub struct FirmwareIndex {
    inner: Mutex<Index>,
}

/// How often the index takes pending events while it listens.
const TICK: std::time::Duration = std::time::Duration::from_millis(250);
/// How long without a download before the index stops listening.
const IDLE: std::time::Duration = std::time::Duration::from_secs(10);

type Found = Arc<(Firmware, PathBuf)>;

#[derive(Default)]
struct Index {
    by_sha256: HashMap<String, Found>,
    /// Listening while `Some` (from the first lookup until [`IDLE`]).
    events: Option<broadcast::Receiver<Event>>,
    /// Bumped by every removal and every time the index forgets everything.
    removals: u64,
    last_lookup: Option<std::time::Instant>,
}

impl Index {
    /// Apply the events published so far.
    fn catch_up(&mut self) {
        loop {
            let Some(rx) = self.events.as_mut() else {
                return;
            };
            match rx.try_recv() {
                Ok(Event::FirmwareRemoved { id }) => self.drop_image(id),
                // An import (nothing held yet) or the admin's correction of a row held here.
                Ok(Event::Firmware { firmware }) => self.drop_image(firmware.id),
                // The same from another instance (several on one database).
                Ok(
                    e @ Event::Remote {
                        name: "firmware", ..
                    },
                ) => match e.remote_i64(&["firmware", "id"]) {
                    Some(id) => self.drop_image(id),
                    None => self.forget(),
                },
                Ok(
                    e @ Event::Remote {
                        name: "firmware_removed",
                        ..
                    },
                ) => match e.remote_i64(&["id"]) {
                    Some(id) => self.drop_image(id),
                    None => self.forget(),
                },
                Ok(Event::Remote { name: "lagged", .. }) => self.forget(),
                Ok(_) => {}
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Lagged(_)) => self.forget(),
                Err(TryRecvError::Closed) => {
                    self.forget();
                    self.events = None;
                    return;
                }
            }
        }
    }

    /// Drop image `id`'s entry (deleted or changed): the next lookup reads it again.
    fn drop_image(&mut self, id: i64) {
        self.by_sha256.retain(|_, f| f.0.id != id);
        self.removals += 1;
    }

    fn forget(&mut self) {
        self.by_sha256.clear();
        self.removals += 1;
    }
}

impl FirmwareIndex {
    /// The image with this SHA-256 and the path of its blob, as `Fleet::firmware_file` answers.
    pub async fn get(self: &Arc<Self>, fleet: &Fleet, sha256: &str) -> ApiResult<Found> {
        // Only the canonical spelling is looked up here; anything else asks the fleet, which
        // validates it (so odd spellings cannot grow the index).
        let canonical = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !canonical {
            return Ok(Arc::new(fleet.firmware_file(sha256).await?));
        }
        let removals = {
            let mut ix = self.inner.lock().expect("firmware index lock");
            ix.last_lookup = Some(std::time::Instant::now());
            if ix.events.is_none() {
                // Subscribe before reading, so that no removal after the read goes unseen.
                ix.events = Some(fleet.events().subscribe());
                self.spawn_ticker();
            }
            ix.catch_up();
            if let Some(found) = ix.by_sha256.get(sha256) {
                return Ok(found.clone());
            }
            ix.removals
        };
        let found = Arc::new(fleet.firmware_file(sha256).await?);
        let mut ix = self.inner.lock().expect("firmware index lock");
        ix.catch_up();
        if ix.removals == removals && ix.events.is_some() {
            ix.by_sha256.insert(found.0.sha256.clone(), found.clone());
        }
        Ok(found)
    }

    /// While listening: apply pending events every [`TICK`]; stop listening after [`IDLE`].
    fn spawn_ticker(self: &Arc<Self>) {
        let index = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(index) = index.upgrade() else {
                    return;
                };
                let mut ix = index.inner.lock().expect("firmware index lock");
                ix.catch_up();
                let idle = ix.last_lookup.is_none_or(|t| t.elapsed() >= IDLE);
                if idle || ix.events.is_none() {
                    ix.forget();
                    ix.events = None;
                    return;
                }
            }
        });
    }
}
