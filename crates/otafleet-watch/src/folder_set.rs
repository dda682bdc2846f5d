//! Which folders are watched, which folder a changed file belongs to, and following a folder that
//! disappears and comes back.
//!
//! inotify watches an inode, not a path: when a build deletes its output folder and makes it anew
//! (`rm -rf .pio/build/env && mkdir …`) the watch is gone with the old inode. So each folder's
//! identity (device, inode) is remembered when it is watched and checked on every tick (one
//! `stat` per folder) and whenever an event names the folder itself: a folder that is missing is
//! reported once and watched again as soon as it exists, a folder replaced by another is watched
//! again at once. Every re-watch rescans the folder, so files written before the watch was back
//! are not missed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use otafleet_core::watch_folders::WatchFolder;

/// Where one folder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Watched; the folder's (device, inode) when the watch was set.
    Watching(u64, u64),
    /// Not there (or not a folder): reported, waiting for it to come back.
    Missing,
    /// There, but the watch could not be set: reported, retried when the folder changes identity.
    Failed(u64, u64),
    /// Not looked at yet, or to be looked at again whatever it seems to be.
    Unknown,
}

struct Entry {
    folder: WatchFolder,
    state: State,
}

/// What a look at one folder changed, for the caller to report and to scan.
#[derive(Debug)]
pub(crate) enum Change {
    /// Now watched: scan it. `back` when it had been missing.
    Watching { back: bool },
    /// Just found missing.
    Missing,
    /// Present but cannot be watched.
    Failed(String),
}

pub(crate) struct FolderSet {
    watcher: RecommendedWatcher,
    entries: Vec<Entry>,
}

impl FolderSet {
    pub(crate) fn new(watcher: RecommendedWatcher) -> Self {
        Self {
            watcher,
            entries: Vec::new(),
        }
    }

    /// Make the watched set equal `wanted`, and look at every folder that is new.
    pub(crate) fn sync(&mut self, wanted: Vec<WatchFolder>) -> Vec<(WatchFolder, Change)> {
        let old = std::mem::take(&mut self.entries);
        let (kept, gone): (Vec<Entry>, Vec<Entry>) = old
            .into_iter()
            .partition(|e| wanted.iter().any(|w| w.path == e.folder.path));
        for e in gone {
            let _ = self.watcher.unwatch(Path::new(&e.folder.path));
            tracing::info!(path = %e.folder.path, "no longer watching");
        }
        self.entries = wanted
            .into_iter()
            .map(|folder| {
                let state = kept
                    .iter()
                    .find(|e| e.folder.path == folder.path)
                    .map_or(State::Unknown, |e| e.state);
                Entry { folder, state }
            })
            .collect();
        self.check(|_| false)
    }

    /// Take a fresh look at the folders `path` names (all of them for `None`: events were lost),
    /// even where nothing seems to have changed: an event named the folder itself (deleted,
    /// moved), so notify may have dropped its watch although the same folder is there.
    pub(crate) fn recheck(&mut self, path: Option<&Path>) -> Vec<(WatchFolder, Change)> {
        for e in &mut self.entries {
            if path.is_none_or(|p| Path::new(&e.folder.path) == p) {
                e.state = match e.state {
                    State::Missing => State::Missing,
                    _ => State::Unknown,
                };
            }
        }
        self.check(|_| false)
    }

    /// Look at every folder (one `stat` each); returns what changed.
    pub(crate) fn check_all(&mut self) -> Vec<(WatchFolder, Change)> {
        self.check(|_| true)
    }

    fn check(&mut self, known_too: impl Fn(&State) -> bool) -> Vec<(WatchFolder, Change)> {
        let mut changes = Vec::new();
        for e in &mut self.entries {
            if e.state != State::Unknown && !known_too(&e.state) {
                continue;
            }
            let path = Path::new(&e.folder.path);
            let identity = std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_dir())
                .map(|m| (m.dev(), m.ino()));
            let change = match (e.state, identity) {
                (State::Watching(d, i), Some(id)) if (d, i) == id => None,
                (State::Failed(d, i), Some(id)) if (d, i) == id => None,
                (State::Missing, None) => None,
                (_, None) => {
                    let _ = self.watcher.unwatch(path);
                    e.state = State::Missing;
                    Some(Change::Missing)
                }
                (previous, Some((dev, ino))) => {
                    // A watch left from an old inode (or one notify already dropped) goes first.
                    let _ = self.watcher.unwatch(path);
                    match self.watcher.watch(path, RecursiveMode::Recursive) {
                        Ok(()) => {
                            e.state = State::Watching(dev, ino);
                            Some(Change::Watching {
                                back: matches!(previous, State::Missing | State::Failed(..)),
                            })
                        }
                        Err(err) => {
                            e.state = State::Failed(dev, ino);
                            Some(Change::Failed(format!(
                                "cannot watch {}: {err}",
                                e.folder.path
                            )))
                        }
                    }
                }
            };
            if let Some(change) = change {
                changes.push((e.folder.clone(), change));
            }
        }
        changes
    }

    /// Is this path one of the watched folders itself?
    pub(crate) fn is_root(&self, path: &Path) -> bool {
        self.entries
            .iter()
            .any(|e| Path::new(&e.folder.path) == path)
    }

    /// The folder a path lies in (the deepest one, when folders nest).
    pub(crate) fn owner(&self, path: &Path) -> Option<&WatchFolder> {
        self.entries
            .iter()
            .map(|e| &e.folder)
            .filter(|f| path.starts_with(&f.path))
            .max_by_key(|f| f.path.len())
    }
}

/// Every candidate file below a folder (for the scan when a folder is watched). A folder that
/// vanishes or cannot be read while it is walked is skipped.
pub(crate) fn scan(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() && crate::is_candidate(&p) => out.push(p),
                _ => {}
            }
        }
    }
    out
}
