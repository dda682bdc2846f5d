//! Downloads being sent now, by attempt, so that stopping a deployment can cut them (issue 17:
//! a cancel aborts what is in flight where the protocol allows).
//!
//! The server registers each counted image body ([`Fleet::download_watch`]) and checks its
//! [`DownloadWatch`] before every frame it hands to the socket; [`InFlight::cut`] marks every body
//! of the attempts a stop closed, and the server ends them: the device gets a short body, which
//! no updater flashes (every one checks the length or a hash first), so it stays on the image it
//! runs. Bytes already in the kernel's socket buffers still arrive; a device that has the whole
//! image by then installs it, which is as complete as staying.
//!
//! Memory only: a restart ends every download anyway.
//!
//! [`Fleet::download_watch`]: crate::Fleet::download_watch

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The bodies being sent, per attempt id.
#[derive(Default)]
pub(crate) struct InFlight {
    bodies: Mutex<HashMap<i64, Vec<Arc<AtomicBool>>>>,
}

impl InFlight {
    /// Register a body being sent for attempt `update_id`.
    pub(crate) fn watch(self: &Arc<Self>, update_id: i64) -> DownloadWatch {
        let flag = Arc::new(AtomicBool::new(false));
        self.bodies
            .lock()
            .expect("in-flight map")
            .entry(update_id)
            .or_default()
            .push(flag.clone());
        DownloadWatch {
            owner: self.clone(),
            update_id,
            flag,
        }
    }

    /// Mark every body of these attempts to be cut; returns how many were being sent.
    pub(crate) fn cut(&self, update_ids: impl IntoIterator<Item = i64>) -> usize {
        let bodies = self.bodies.lock().expect("in-flight map");
        let mut n = 0;
        for id in update_ids {
            for flag in bodies.get(&id).into_iter().flatten() {
                flag.store(true, Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }

    fn forget(&self, update_id: i64, flag: &Arc<AtomicBool>) {
        let mut bodies = self.bodies.lock().expect("in-flight map");
        if let Some(list) = bodies.get_mut(&update_id) {
            list.retain(|f| !Arc::ptr_eq(f, flag));
            if list.is_empty() {
                bodies.remove(&update_id);
            }
        }
    }
}

/// One body being sent; unregisters itself when dropped.
pub struct DownloadWatch {
    owner: Arc<InFlight>,
    update_id: i64,
    flag: Arc<AtomicBool>,
}

impl DownloadWatch {
    /// The attempt was closed by a stop since: send no more.
    pub fn is_cut(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

impl Drop for DownloadWatch {
    fn drop(&mut self) {
        self.owner.forget(self.update_id, &self.flag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_reaches_every_body_of_the_attempt_and_only_those() {
        let f = Arc::new(InFlight::default());
        let a1 = f.watch(1);
        let a2 = f.watch(1);
        let b = f.watch(2);
        assert_eq!(f.cut([1, 3]), 2);
        assert!(a1.is_cut() && a2.is_cut());
        assert!(!b.is_cut());
        drop(a1);
        drop(a2);
        assert_eq!(f.cut([1]), 0, "dropped bodies are forgotten");
        drop(b);
        assert!(f.bodies.lock().unwrap().is_empty());
    }
}
