//! Settings the core needs, filled by whichever front end starts it (CLI flags, the desktop app).

use std::path::PathBuf;

/// Default upper bound for one firmware image: the largest OTA partition ESP32 layouts use.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 16 * 1024 * 1024;
/// Default interval the server asks native devices to check in at.
pub const DEFAULT_CHECKIN_INTERVAL_S: u32 = 60;
/// How many failed attempts at one image a device gets before the server stops offering it.
pub const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Holds `otafleet.db`, `blobs/` and `tmp/`.
    pub data_dir: PathBuf,
    /// Largest firmware accepted, in bytes.
    pub max_image_size: u64,
    /// Check-in interval handed to native devices; a device is "online" while it was seen within
    /// [`Settings::offline_after_s`].
    pub checkin_interval_s: u32,
    /// Shared secret of the legacy "ESP32 OTA Update Server" scheme; `None` turns that scheme off.
    pub legacy_device_secret: Option<String>,
}

impl Settings {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            max_image_size: DEFAULT_MAX_IMAGE_SIZE,
            checkin_interval_s: DEFAULT_CHECKIN_INTERVAL_S,
            legacy_device_secret: None,
        }
    }

    /// Three missed check-ins (plus a little slack for a slow boot) make a device offline.
    pub fn offline_after_s(&self) -> i64 {
        i64::from(self.checkin_interval_s) * 3 + 10
    }
}
