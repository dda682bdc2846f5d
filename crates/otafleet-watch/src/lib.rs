//! Watch folders: every new or rewritten `.bin` in a watched folder (recursively) is imported into
//! the library once it is completely written, and — when the folder asks for it — deployed to its
//! project's devices.
//!
//! "Completely written" is decided twice over: a file is looked at only after it has been quiet
//! (no change events, same size and modification time) for [`WatchOptions::quiet`], and an image
//! the inspector finds truncated is treated as still being written (`incomplete`), not as a
//! rejection. Each file's (size, mtime) fingerprint is remembered once handled, so a rejected file
//! is reported once and not retried until it changes; the same bytes again are a `duplicate`.
//!
//! The list of folders lives in the core (`otafleet_core::watch_folders`); the running
//! [`spawn`]ed task follows `Event::WatchFolders` to start and stop watching as it changes.

mod folder_set;
mod service;

use std::time::Duration;

pub use service::spawn;

/// Tuning of the watcher.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How long a file must stay unchanged before it is imported.
    pub quiet: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            quiet: Duration::from_millis(1500),
        }
    }
}

/// Is this path a firmware image candidate (`*.bin`, any case, not hidden)?
pub fn is_candidate(path: &std::path::Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.')
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn only_bin_files_are_candidates() {
        assert!(super::is_candidate(Path::new(
            "/b/.pio/build/esp32/firmware.bin"
        )));
        assert!(super::is_candidate(Path::new("/b/FIRMWARE.BIN")));
        assert!(!super::is_candidate(Path::new("/b/firmware.elf")));
        assert!(!super::is_candidate(Path::new("/b/.firmware.bin")));
        assert!(!super::is_candidate(Path::new("/b/bin")));
    }
}
