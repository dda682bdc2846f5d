//! Settings the core needs, filled by whichever front end starts it (CLI flags, the desktop app),
//! and the ones the admin changes at run time (open enrolment, the check-in timing), kept in the
//! `server_settings` table, which this module owns.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::Conn;

use crate::db;
use crate::error::{CoreError, Result};

/// Default upper bound for one firmware image: the largest OTA partition ESP32 layouts use.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 16 * 1024 * 1024;
/// Default interval the server asks native devices to check in at.
pub const DEFAULT_CHECKIN_INTERVAL_S: u32 = 60;
/// How many failed attempts at one image a device gets before the server stops offering it.
pub const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Holds `otafleet.db`, `blobs/` (or, with [`Settings::blob_url`], the blob cache `cache/`)
    /// and `tmp/`.
    pub data_dir: PathBuf,
    /// Where firmware bytes are kept: `None`, `blobs/` in the data directory; `s3://BUCKET?…`,
    /// an S3-compatible bucket (`--blob-url`, [`crate::blobs::S3Location`]; docs/storage.md).
    pub blob_url: Option<String>,
    /// Bound of the S3 backend's local read-through cache, in bytes (`--blob-cache-mb`).
    pub blob_cache_bytes: u64,
    /// How old an S3 object no firmware row refers to must be before the collector deletes it
    /// (`--blob-gc-grace`).
    pub blob_grace: std::time::Duration,
    /// Largest firmware accepted, in bytes.
    pub max_image_size: u64,
    /// Check-in interval handed to native devices until the admin sets one
    /// ([`Timing`]: the admin's value, kept in the database, wins).
    pub checkin_interval_s: u32,
    /// Shared secret of the legacy "ESP32 OTA Update Server" scheme; `None` turns that scheme off.
    pub legacy_device_secret: Option<String>,
    /// The first retry delay of a failed notification; each further one doubles
    /// ([`crate::notify::backoff`]). 1 s unless a test shortens it.
    pub notify_retry_base: std::time::Duration,
    /// Whether this fleet sends notifications (the dispatcher runs). Off, deliveries are still
    /// queued and wait for a fleet that sends them.
    pub send_notifications: bool,
    /// Certificate authorities (PEM) trusted for notifications besides the Mozilla roots: a
    /// private CA that signed the SMTP server's or the webhook's certificate. Empty by default.
    pub notify_extra_roots: Vec<String>,
    /// A PostgreSQL database (`postgres://…`) to keep the fleet's state in instead of
    /// `otafleet.db` in the data directory.
    pub database_url: Option<String>,
    /// The organisation this fleet belongs to: `None` for the server's own (default)
    /// organisation, `Some(id)` for one opened by [`crate::Fleet::organisation`] (its own data
    /// directory and database; docs/access.md).
    pub organisation: Option<String>,
}

impl Settings {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            blob_url: None,
            blob_cache_bytes: crate::blobs::DEFAULT_CACHE_BYTES,
            blob_grace: crate::blobs::DEFAULT_GRACE,
            max_image_size: DEFAULT_MAX_IMAGE_SIZE,
            checkin_interval_s: DEFAULT_CHECKIN_INTERVAL_S,
            legacy_device_secret: None,
            notify_retry_base: crate::notify::DEFAULT_RETRY_BASE,
            send_notifications: true,
            notify_extra_roots: Vec::new(),
            database_url: None,
            organisation: None,
        }
    }

    /// The blob store these settings name.
    pub fn blob_config(&self) -> crate::blobs::BlobConfig {
        crate::blobs::BlobConfig {
            url: self.blob_url.clone(),
            cache_bytes: self.blob_cache_bytes,
            grace: self.blob_grace,
        }
    }

    /// Seconds without a sign of life after which a device is shown offline at the start
    /// interval: [`offline_after_s_for`] of it (the admin may override it: [`Timing`]).
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

/// Shortest check-in interval the admin may set: shorter only loads the server and the Wi-Fi.
pub const MIN_CHECKIN_INTERVAL_S: u32 = 10;
/// Longest check-in interval the admin may set (a day).
pub const MAX_CHECKIN_INTERVAL_S: u32 = 86_400;
/// Longest offline threshold the admin may set (a week).
pub const MAX_OFFLINE_AFTER_S: u32 = 7 * 86_400;

/// The check-in timing in effect: the interval handed to native devices and when a device counts
/// as offline. Start values come from [`Settings::checkin_interval_s`]; the admin's values
/// (`PATCH /api/v1/settings`) are kept in `server_settings` and win over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Interval handed to native devices, in seconds.
    pub checkin_interval_s: u32,
    /// Whether the interval was set by the admin (otherwise it is the start default).
    pub interval_set: bool,
    /// The admin's offline threshold; `None`: [`offline_after_s_for`] of the interval.
    pub offline_override_s: Option<u32>,
}

impl Timing {
    /// Seconds without a sign of life after which a device is shown offline.
    pub fn offline_after_s(&self) -> i64 {
        self.offline_override_s
            .map(i64::from)
            .unwrap_or_else(|| offline_after_s_for(self.checkin_interval_s))
    }
}

/// What the admin stored: each `None` falls back to the start default / the offline rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stored {
    pub checkin_interval_s: Option<u32>,
    pub offline_after_s: Option<u32>,
}

impl Stored {
    pub fn timing(self, default_interval_s: u32) -> Timing {
        Timing {
            checkin_interval_s: self.checkin_interval_s.unwrap_or(default_interval_s),
            interval_set: self.checkin_interval_s.is_some(),
            offline_override_s: self.offline_after_s,
        }
    }
}

/// A change of the settings kept in the database (`PATCH /api/v1/settings`). For the timing
/// fields, `None` leaves the value as it is and `Some(None)` returns to the default.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub open_enrolment: Option<bool>,
    pub checkin_interval_s: Option<Option<i64>>,
    pub offline_after_s: Option<Option<i64>>,
    /// The notification channels ([`crate::notify::NotifyPatch`]); `None` leaves them.
    pub notify: Option<crate::notify::NotifyPatch>,
}

impl SettingsChange {
    /// The stored timing after this change, validated as a whole (the interval against its range,
    /// the offline threshold against the interval that will be in effect).
    pub(crate) fn apply(&self, stored: Stored, default_interval_s: u32) -> Result<Stored> {
        let mut next = stored;
        if let Some(v) = self.checkin_interval_s {
            next.checkin_interval_s = v
                .map(|s| {
                    u32::try_from(s)
                        .ok()
                        .filter(|s| (MIN_CHECKIN_INTERVAL_S..=MAX_CHECKIN_INTERVAL_S).contains(s))
                        .ok_or_else(|| {
                            CoreError::invalid(
                                "invalid_checkin_interval",
                                format!(
                                    "checkin_interval_s must be between {MIN_CHECKIN_INTERVAL_S} and {MAX_CHECKIN_INTERVAL_S} seconds, not {s}; null returns to the server's start default"
                                ),
                            )
                        })
                })
                .transpose()?;
        }
        if let Some(v) = self.offline_after_s {
            next.offline_after_s = v
                .map(|s| {
                    u32::try_from(s)
                        .ok()
                        .filter(|s| (1..=MAX_OFFLINE_AFTER_S).contains(s))
                        .ok_or_else(|| {
                            CoreError::invalid(
                                "invalid_offline_after",
                                format!(
                                    "offline_after_s must be between 1 and {MAX_OFFLINE_AFTER_S} seconds, not {s}; null returns to 3 × the check-in interval + {OFFLINE_SLACK_S} s"
                                ),
                            )
                        })
                })
                .transpose()?;
        }
        let t = next.timing(default_interval_s);
        if let Some(off) = t.offline_override_s {
            if off <= t.checkin_interval_s {
                return Err(CoreError::invalid(
                    "invalid_offline_after",
                    format!(
                        "offline_after_s ({off} s) must be greater than the check-in interval ({} s), or every device would flicker offline between check-ins; raise it, or set it to null for 3 × the interval + {OFFLINE_SLACK_S} s",
                        t.checkin_interval_s
                    ),
                ));
            }
        }
        Ok(next)
    }
}

/// The timing in effect, read by every check-in and device listing without the database: one
/// atomic word (interval in the low 32 bits, the offline override in bits 32..63 with 0 for none,
/// bit 63 set when the interval is the admin's).
#[derive(Debug)]
pub(crate) struct Live(AtomicU64);

const SET_BIT: u64 = 1 << 63;

impl Live {
    pub fn new(t: Timing) -> Self {
        let live = Self(AtomicU64::new(0));
        live.set(t);
        live
    }

    pub fn get(&self) -> Timing {
        let w = self.0.load(Ordering::Acquire);
        let off = ((w & !SET_BIT) >> 32) as u32;
        Timing {
            checkin_interval_s: w as u32,
            interval_set: w & SET_BIT != 0,
            offline_override_s: (off != 0).then_some(off),
        }
    }

    pub fn set(&self, t: Timing) {
        let off = u64::from(t.offline_override_s.unwrap_or(0).min(u32::MAX >> 1));
        let w = u64::from(t.checkin_interval_s)
            | (off << 32)
            | if t.interval_set { SET_BIT } else { 0 };
        self.0.store(w, Ordering::Release);
    }
}

// --- the `server_settings` table (this module alone writes it) -----------------------------------

async fn value(conn: &mut Conn, key: &str) -> Result<Option<String>> {
    db::query_scalar("SELECT value FROM server_settings WHERE key = ?")
        .bind(key)
        .fetch_optional(conn)
        .await
}

async fn put(conn: &mut Conn, key: &str, v: Option<String>) -> Result<()> {
    match v {
        Some(v) => {
            db::query(
                "INSERT INTO server_settings (key, value) VALUES (?, ?) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(v)
            .execute(conn)
            .await?
        }
        None => {
            db::query("DELETE FROM server_settings WHERE key = ?")
                .bind(key)
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// The key ESP Admin download paths are derived with (HMAC-SHA256; `fleet/esp_admin.rs`): 32
/// random bytes drawn at first use and kept, so a path handed to a device stays valid across
/// restarts. Never shown through any route.
pub(crate) async fn esp_admin_ota_key(conn: &mut Conn) -> Result<[u8; 32]> {
    const KEY: &str = "esp_admin_ota_key";
    let parse = |v: Option<String>| -> Option<[u8; 32]> {
        let bytes = hex::decode(v?).ok()?;
        bytes.try_into().ok()
    };
    if let Some(k) = parse(value(conn, KEY).await?) {
        return Ok(k);
    }
    // Two first uses at once: the first insert wins and both read it back.
    db::query(
        "INSERT INTO server_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
    )
    .bind(KEY)
    .bind(hex::encode(rand::random::<[u8; 32]>()))
    .execute(&mut *conn)
    .await?;
    parse(value(conn, KEY).await?)
        .ok_or_else(|| CoreError::conflict("the stored ESP Admin download key is unreadable"))
}

/// Whether unknown MACs may enrol (on unless the admin turned it off; [`crate::trust`]).
pub(crate) async fn open_enrolment(conn: &mut Conn) -> Result<bool> {
    Ok(value(conn, "open_enrolment").await?.as_deref() != Some("0"))
}

pub(crate) async fn set_open_enrolment(conn: &mut Conn, open: bool) -> Result<()> {
    put(
        conn,
        "open_enrolment",
        Some(if open { "1" } else { "0" }.into()),
    )
    .await
}

/// The admin's timing. A value that does not parse (edited by hand) is ignored, with a warning.
pub(crate) async fn stored_timing(conn: &mut Conn) -> Result<Stored> {
    let parse = |key: &str, v: Option<String>| {
        v.and_then(|v| {
            let n = v.parse::<u32>().ok();
            if n.is_none() {
                tracing::warn!(key, value = %v, "ignoring a stored setting that is not a number");
            }
            n
        })
    };
    let interval = value(conn, "checkin_interval_s").await?;
    let offline = value(conn, "offline_after_s").await?;
    Ok(Stored {
        checkin_interval_s: parse("checkin_interval_s", interval),
        offline_after_s: parse("offline_after_s", offline),
    })
}

pub(crate) async fn store_timing(conn: &mut Conn, s: Stored) -> Result<()> {
    put(
        conn,
        "checkin_interval_s",
        s.checkin_interval_s.map(|v| v.to_string()),
    )
    .await?;
    put(
        conn,
        "offline_after_s",
        s.offline_after_s.map(|v| v.to_string()),
    )
    .await
}

/// The notification channels ([`crate::notify`]). A value that does not parse (edited by hand)
/// is ignored, with a warning that names the key only (it may hold a secret).
pub(crate) async fn stored_notify(conn: &mut Conn) -> Result<crate::notify::NotifyConfig> {
    fn parse<T: serde::de::DeserializeOwned>(key: &str, v: Option<String>) -> Option<T> {
        v.and_then(|v| {
            let t = serde_json::from_str(&v).ok();
            if t.is_none() {
                tracing::warn!(
                    key,
                    "ignoring a stored notification setting that does not parse"
                );
            }
            t
        })
    }
    let webhook = value(conn, "notify_webhook").await?;
    let smtp = value(conn, "notify_smtp").await?;
    Ok(crate::notify::NotifyConfig {
        webhook: parse("notify_webhook", webhook),
        smtp: parse("notify_smtp", smtp),
    })
}

pub(crate) async fn store_notify(conn: &mut Conn, cfg: &crate::notify::NotifyConfig) -> Result<()> {
    let json = |v: serde_json::Result<String>| Some(v.expect("settings serialize"));
    put(
        conn,
        "notify_webhook",
        cfg.webhook
            .as_ref()
            .and_then(|w| json(serde_json::to_string(w))),
    )
    .await?;
    put(
        conn,
        "notify_smtp",
        cfg.smtp
            .as_ref()
            .and_then(|s| json(serde_json::to_string(s))),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(interval: Option<Option<i64>>, offline: Option<Option<i64>>) -> SettingsChange {
        SettingsChange {
            open_enrolment: None,
            checkin_interval_s: interval,
            offline_after_s: offline,
            notify: None,
        }
    }

    #[test]
    fn timing_rules() {
        let none = Stored::default();
        assert_eq!(none.timing(60).offline_after_s(), 190);
        let s = change(Some(Some(30)), None).apply(none, 60).unwrap();
        assert_eq!(s.timing(60).checkin_interval_s, 30);
        assert!(s.timing(60).interval_set);
        assert_eq!(s.timing(60).offline_after_s(), 100);
        for bad in [9, 86_401, -1] {
            let e = change(Some(Some(bad)), None).apply(none, 60).unwrap_err();
            assert_eq!(e.code(), "invalid_checkin_interval");
        }
        let e = change(None, Some(Some(60))).apply(none, 60).unwrap_err();
        assert_eq!(e.code(), "invalid_offline_after");
        let s = change(None, Some(Some(61))).apply(none, 60).unwrap();
        assert_eq!(s.timing(60).offline_after_s(), 61);
        // Raising the interval past the override is refused as a whole.
        assert!(change(Some(Some(61)), None).apply(s, 60).is_err());
        let back = change(Some(None), Some(None)).apply(s, 60).unwrap();
        assert_eq!(back, Stored::default());
    }

    #[test]
    fn live_round_trips() {
        for t in [
            Timing {
                checkin_interval_s: 60,
                interval_set: false,
                offline_override_s: None,
            },
            Timing {
                checkin_interval_s: 86_400,
                interval_set: true,
                offline_override_s: Some(MAX_OFFLINE_AFTER_S),
            },
        ] {
            assert_eq!(Live::new(t).get(), t);
        }
    }
}
