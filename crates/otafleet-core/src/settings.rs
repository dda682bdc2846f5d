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

    /// Seconds without a sign of life after which a device is shown offline:
    /// [`offline_after_s_for`] of the check-in interval.
    pub fn offline_after_s(&self) -> i64 {
        offline_after_s_for(self.checkin_interval_s)
    }
}

/// Slack added to three check-in intervals before a device counts as offline (a slow boot, a
/// retry after a Wi-Fi reconnect).
pub const OFFLINE_SLACK_S: i64 = 10;

/// The one offline rule: a device not seen for three check-in intervals plus
/// [`OFFLINE_SLACK_S`] is offline (190 s at the default interval of 60 s). The CLI's help and
/// `GET /api/v1/settings` (`offline_after_s`) state it from here.
pub const fn offline_after_s_for(checkin_interval_s: u32) -> i64 {
    checkin_interval_s as i64 * 3 + OFFLINE_SLACK_S
}
