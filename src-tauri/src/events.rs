//! The only place that knows Tauri event names, and the only place where core events become
//! shell events. The UI gets domain changes over the server's event stream (HTTP, the same in a
//! browser); the shell adds what only a desktop can do: drop feedback, import results, and
//! desktop notifications when an update finishes or fails.
//!
//! | event | payload |
//! | --- | --- |
//! | [`DROP_OVERLAY`] | [`DropOverlay`]: `{active, kind: enter/over/leave/drop, paths}` |
//! | [`IMPORT_RESULT`] | one [`crate::import::ImportResult`] per file |
//! | [`NOTICE`] | [`Notice`]: `{title, body, level}` (also shown as a desktop notification) |

use otafleet_core::deployments::{DeploymentStatus, PauseKind};
use otafleet_core::events::Event;
use otafleet_core::reports::ReportType;
use otafleet_core::updates::UpdateState;
use otafleet_core::Fleet;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::broadcast::error::RecvError;

pub const DROP_OVERLAY: &str = "otafleet://drop-overlay";
pub const IMPORT_RESULT: &str = "otafleet://import-result";
pub const NOTICE: &str = "otafleet://notice";

/// Files are being dragged over the window (`active`), or the drag ended.
#[derive(Debug, Clone, Serialize)]
pub struct DropOverlay {
    pub active: bool,
    /// `enter`, `over`, `leave` or `drop`.
    pub kind: &'static str,
    /// The dragged paths (empty for `over` and `leave`, which do not carry them).
    pub paths: Vec<String>,
}

/// Something the user should hear about even when the window is in the background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub title: String,
    pub body: String,
    /// `info` or `error`.
    pub level: &'static str,
}

/// Which core events deserve a notification: an update that finished or failed, a device's
/// error report (other reports wait on the Activity page), and a rollout that paused by itself
/// (its error limit crossed, or a wave finished that waits for approval; a pause by hand is the
/// user's own doing, [`PauseKind`]).
pub fn notice_for(event: &Event) -> Option<Notice> {
    if let Event::Deployment { deployment: d } = event {
        if d.status != DeploymentStatus::Paused {
            return None;
        }
        let reason = || d.pause_reason.clone().unwrap_or_default();
        return match d.pause_kind? {
            PauseKind::ErrorLimit => Some(Notice {
                title: format!("Rollout {} paused: too many failures", d.id),
                body: reason(),
                level: "error",
            }),
            PauseKind::AfterWave => Some(Notice {
                title: format!("Rollout {} waits for your approval", d.id),
                body: reason(),
                level: "info",
            }),
            PauseKind::Admin => None,
        };
    }
    if let Event::Report { report } = event {
        return (report.kind == ReportType::Error).then(|| Notice {
            title: format!("Error reported by {}", report.mac),
            body: report.subject.clone(),
            level: "error",
        });
    }
    let Event::Update { update } = event else {
        return None;
    };
    let version = update.version.as_deref().unwrap_or("the new image");
    match update.state {
        UpdateState::Done => Some(Notice {
            title: "Update finished".into(),
            body: format!("{} now runs {version}", update.mac),
            level: "info",
        }),
        UpdateState::Failed => Some(Notice {
            title: "Update failed".into(),
            body: format!(
                "{} could not install {version}: {}",
                update.mac,
                update.error.as_deref().unwrap_or("no reason given")
            ),
            level: "error",
        }),
        _ => None,
    }
}

/// A pause is told once: a paused rollout's deployment event comes again whenever one of its
/// devices' outcomes is decided. `Some(key)` for an event whose notice is told once per key.
pub fn once_key(event: &Event) -> Option<String> {
    match event {
        Event::Deployment { deployment: d } => Some(format!(
            "pause {} {}",
            d.id,
            d.paused_at.as_deref().unwrap_or("")
        )),
        _ => None,
    }
}

/// Watch the core's event bus for the app's lifetime and turn events into [`NOTICE`]s and
/// desktop notifications (when the notification plugin is registered).
pub fn forward_core_events<R: Runtime>(app: AppHandle<R>, fleet: &Fleet) {
    let mut rx = fleet.events().subscribe();
    tauri::async_runtime::spawn(async move {
        let mut told = std::collections::HashSet::new();
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if let Some(notice) = notice_for(&event) {
                        if once_key(&event).is_none_or(|k| told.insert(k)) {
                            show(&app, &notice);
                        }
                    }
                }
                // Missed events are only missed notifications; the UI reloads over HTTP.
                Err(RecvError::Lagged(n)) => tracing::debug!(n, "notification watcher lagged"),
                Err(RecvError::Closed) => break,
            }
        }
    });
}

fn show<R: Runtime>(app: &AppHandle<R>, notice: &Notice) {
    let _ = app.emit(NOTICE, notice);
    if app
        .try_state::<tauri_plugin_notification::Notification<R>>()
        .is_some()
    {
        use tauri_plugin_notification::NotificationExt;
        // No notification daemon (a bare Xvfb, a server) is not an error worth more than a log.
        if let Err(e) = app
            .notification()
            .builder()
            .title(&notice.title)
            .body(&notice.body)
            .show()
        {
            tracing::debug!(error = %e, "desktop notification not shown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otafleet_core::updates::Update;

    fn update(state: &str, error: Option<&str>) -> Event {
        Event::Update {
            update: Box::new(Update {
                id: 1,
                mac: "24:6F:28:AA:BB:01".into(),
                firmware_id: Some(1),
                deployment_id: None,
                sha256: "00".repeat(32),
                version: Some("2.0.0".into()),
                from_version: Some("1.0.0".into()),
                from_sha256: None,
                state: UpdateState::parse(state).expect("a state"),
                progress: 100,
                bytes_sent: 0,
                error: error.map(Into::into),
                failure: None,
                retry: false,
                created_at: String::new(),
                updated_at: String::new(),
                finished_at: None,
            }),
        }
    }

    #[test]
    fn only_finished_and_failed_updates_notify() {
        let done = notice_for(&update("done", None)).expect("a finished update notifies");
        assert_eq!(done.level, "info");
        assert!(done.body.contains("24:6F:28:AA:BB:01") && done.body.contains("2.0.0"));
        let failed = notice_for(&update("failed", Some("checksum mismatch"))).unwrap();
        assert_eq!(failed.level, "error");
        assert!(
            failed.body.contains("checksum mismatch"),
            "the reason is shown"
        );
        for busy in [
            "offered",
            "downloading",
            "flashing",
            "rebooting",
            "cancelled",
        ] {
            assert_eq!(notice_for(&update(busy, None)), None, "{busy} is not news");
        }
        assert_eq!(notice_for(&Event::DeviceRemoved { mac: "x".into() }), None);
    }

    #[test]
    fn a_device_error_report_notifies_and_other_reports_do_not() {
        let report = |kind| Event::Report {
            report: Box::new(otafleet_core::reports::Report {
                id: 1,
                mac: "24:6F:28:AA:BB:01".into(),
                kind,
                subject: "sensor bus stuck".into(),
                body: String::new(),
                device_time: None,
                received_at: String::new(),
            }),
        };
        let n = notice_for(&report(ReportType::Error)).expect("an error report notifies");
        assert_eq!(n.level, "error");
        assert!(n.title.contains("24:6F:28:AA:BB:01") && n.body == "sensor bus stuck");
        for kind in [ReportType::Info, ReportType::Warn, ReportType::Success] {
            assert_eq!(
                notice_for(&report(kind)),
                None,
                "{kind:?} waits on the Activity page"
            );
        }
    }

    fn deployment(status: DeploymentStatus, kind: Option<PauseKind>, at: &str) -> Event {
        Event::Deployment {
            deployment: Box::new(otafleet_core::deployments::Deployment {
                id: 7,
                firmware_id: 1,
                project: Some("blink".into()),
                chip: Some("esp32".into()),
                rollback: false,
                allow_other_project: false,
                status,
                created_at: String::new(),
                ended_at: None,
                end_reason: None,
                plan: None,
                wave: 2,
                wave_started_at: None,
                paused_at: kind.map(|_| at.to_string()),
                pause_reason: kind
                    .map(|_| "error limit crossed: 3 of 10 devices failed".to_string()),
                pause_kind: kind,
                devices: Vec::new(),
                reach: 10,
                tally: Default::default(),
            }),
        }
    }

    #[test]
    fn a_rollout_that_paused_by_itself_notifies_once_and_a_pause_by_hand_does_not() {
        let paused = deployment(DeploymentStatus::Paused, Some(PauseKind::ErrorLimit), "t1");
        let n = notice_for(&paused).expect("a pause at the error limit notifies");
        assert_eq!(n.title, "Rollout 7 paused: too many failures");
        assert_eq!(n.level, "error");
        assert!(n.body.starts_with("error limit crossed"), "{n:?}");
        let approval = deployment(DeploymentStatus::Paused, Some(PauseKind::AfterWave), "t1");
        let n = notice_for(&approval).expect("a wave that waits for approval notifies");
        assert_eq!(
            (n.title.as_str(), n.level),
            ("Rollout 7 waits for your approval", "info")
        );
        let by_hand = deployment(DeploymentStatus::Paused, Some(PauseKind::Admin), "t1");
        assert_eq!(notice_for(&by_hand), None, "the admin paused it: no news");
        assert_eq!(
            notice_for(&deployment(DeploymentStatus::Active, None, "")),
            None
        );
        // The same pause comes again with every decided outcome: one key; a later pause: another.
        let again = deployment(DeploymentStatus::Paused, Some(PauseKind::ErrorLimit), "t1");
        let later = deployment(DeploymentStatus::Paused, Some(PauseKind::ErrorLimit), "t2");
        assert_eq!(once_key(&paused), once_key(&again));
        assert_ne!(once_key(&paused), once_key(&later));
        assert_eq!(
            once_key(&update("done", None)),
            None,
            "updates are told each time"
        );
    }
}
