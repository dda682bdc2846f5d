//! Which folders are watched, and which folder a changed file belongs to.

use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use otafleet_core::watch_folders::WatchFolder;

pub(crate) struct FolderSet {
    watcher: RecommendedWatcher,
    folders: Vec<WatchFolder>,
}

impl FolderSet {
    pub(crate) fn new(watcher: RecommendedWatcher) -> Self {
        Self {
            watcher,
            folders: Vec::new(),
        }
    }

    /// Make the watched set equal `wanted`; returns the folders that are new (to scan them).
    pub(crate) fn sync(
        &mut self,
        wanted: Vec<WatchFolder>,
    ) -> Vec<(WatchFolder, Result<(), String>)> {
        for old in &self.folders {
            if !wanted.iter().any(|w| w.path == old.path) {
                let _ = self.watcher.unwatch(Path::new(&old.path));
                tracing::info!(path = %old.path, "no longer watching");
            }
        }
        let mut added = Vec::new();
        for w in &wanted {
            if !self.folders.iter().any(|f| f.path == w.path) {
                let result = self
                    .watcher
                    .watch(Path::new(&w.path), RecursiveMode::Recursive)
                    .map_err(|e| format!("cannot watch {}: {e}", w.path));
                added.push((w.clone(), result));
            }
        }
        self.folders = wanted;
        added
    }

    /// The folder a path lies in (the deepest one, when folders nest).
    pub(crate) fn owner(&self, path: &Path) -> Option<&WatchFolder> {
        self.folders
            .iter()
            .filter(|f| path.starts_with(&f.path))
            .max_by_key(|f| f.path.len())
    }
}

/// Every candidate file below a folder (for the scan when a folder is added).
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
