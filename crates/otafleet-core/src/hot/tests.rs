//! The memory of quiet check-ins never answers from a state the database no longer has, and
//! queued heartbeats are shown at once, written in batches, and never lost on a clean close.

use std::sync::Arc;

use otafleet_image::{synth, Chip};

use crate::checkin::{CheckinRequest, CheckinResponse};
use crate::deployments::NewDeployment;
use crate::devices::{self, DevicePatch};
use crate::firmware::{ImportRequest, ImportSource};
use crate::{CoreError, Fleet, Settings};

const MAC: &str = "24:0A:C4:A3:15:3C";

fn report(version: &str, rssi: i64, uptime_s: i64) -> CheckinRequest {
    CheckinRequest {
        mac: MAC.into(),
        chip: "esp32".into(),
        project: "blink".into(),
        version: version.into(),
        sha256: None,
        free_space: Some(1_310_720),
        ip: Some("10.0.0.7".into()),
        rssi: Some(rssi),
        uptime_s: Some(uptime_s),
        name: None,
    }
}

async fn open(dir: &tempfile::TempDir) -> Fleet {
    Fleet::open(Settings::new(dir.path())).await.unwrap()
}

async fn checkin(fleet: &Fleet, token: Option<&str>, req: CheckinRequest) -> CheckinResponse {
    fleet.checkin(req, token, None, false).await.unwrap()
}

/// Enrol the device; return its token.
async fn enrol(fleet: &Fleet) -> String {
    checkin(fleet, None, report("1.0.0", -60, 1))
        .await
        .token
        .expect("first check-in enrols")
}

async fn import_v2(fleet: &Fleet) -> i64 {
    let bytes = synth::AppImage::new(Chip::Esp32)
        .project("blink")
        .version("2.0.0")
        .payload_len(20_000)
        .build();
    let req = ImportRequest {
        filename: "blink.bin".into(),
        project: None,
        version: None,
        source: ImportSource::Upload,
        source_path: None,
        only_project: None,
    };
    fleet.import(req, &bytes[..]).await.unwrap().firmware.id
}

#[tokio::test]
async fn a_repeated_report_is_answered_from_memory_shown_at_once_and_written_later() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    assert!(
        fleet.hot().get(MAC).is_some(),
        "nothing offered, nothing open: the answer is remembered"
    );

    // Holding the writer's lock keeps the background heartbeat writer out while we look; a quiet
    // check-in does not need that lock at all.
    let writer = fleet.quiet_write_lock().await;
    let answer = checkin(&fleet, Some(&token), report("1.0.0", -42, 99)).await;
    assert!(answer.update.is_none() && answer.token.is_none());
    assert!(
        fleet.hot().has_pending(),
        "a quiet check-in queues its heartbeat"
    );
    let stored = devices::get_raw(fleet.db(), MAC).await.unwrap().unwrap();
    assert_eq!(stored.rssi, Some(-60), "not written yet");

    let shown = fleet.device(MAC).await.unwrap();
    assert_eq!((shown.rssi, shown.uptime_s), (Some(-42), Some(99)));
    assert!(shown.online);
    assert!(shown.last_seen >= stored.last_seen);

    drop(writer);
    fleet.flush_heartbeats().await.unwrap();
    assert!(!fleet.hot().has_pending());
    let stored = devices::get_raw(fleet.db(), MAC).await.unwrap().unwrap();
    assert_eq!((stored.rssi, stored.uptime_s), (Some(-42), Some(99)));
    assert_eq!(stored.last_seen, shown.last_seen);
}

#[tokio::test]
async fn the_heartbeat_writer_flushes_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    checkin(&fleet, Some(&token), report("1.0.0", -43, 5)).await;
    // Wait for the background writer (it runs every FLUSH_EVERY), bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stored = devices::get_raw(fleet.db(), MAC).await.unwrap().unwrap();
        if stored.rssi == Some(-43) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "heartbeat never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_deployment_made_after_a_quiet_answer_is_offered_at_the_next_check_in() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    checkin(&fleet, Some(&token), report("1.0.0", -50, 2)).await;
    let id = import_v2(&fleet).await;
    fleet
        .deployment_create(NewDeployment {
            firmware_id: id,
            devices: None,
            ..NewDeployment::default()
        })
        .await
        .unwrap();
    assert!(fleet.hot().get(MAC).is_none(), "any other write forgets");
    let answer = checkin(&fleet, Some(&token), report("1.0.0", -50, 3)).await;
    let offer = answer.update.expect("the new deployment is offered");
    assert_eq!(offer.version.as_deref(), Some("2.0.0"));
    assert!(
        fleet.hot().get(MAC).is_some(),
        "the offer is remembered: the same report gets it again without the database"
    );
    // The device keeps asking before it starts: it keeps getting the same offer, one attempt.
    let again = checkin(&fleet, Some(&token), report("1.0.0", -50, 4)).await;
    assert_eq!(again.update.map(|u| u.id), Some(offer.id));
    assert_eq!(fleet.device_history(MAC).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_remembered_offer_ends_with_the_devices_progress_or_a_stopped_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    let id = import_v2(&fleet).await;
    let deployment = fleet
        .deployment_create(NewDeployment {
            firmware_id: id,
            ..NewDeployment::default()
        })
        .await
        .unwrap();
    let offer = checkin(&fleet, Some(&token), report("1.0.0", -50, 2))
        .await
        .update
        .expect("offered");
    assert!(fleet.hot().get(MAC).is_some());
    // Progress is the device's own write: its memory goes, and the next check-in reads the
    // attempt as it now is.
    fleet
        .progress(
            Some(&token),
            crate::checkin::ProgressRequest {
                update_id: offer.id,
                state: "downloading".into(),
                progress: 10,
                error: None,
            },
        )
        .await
        .unwrap();
    assert!(fleet.hot().get(MAC).is_none(), "progress forgets the offer");
    let again = checkin(&fleet, Some(&token), report("1.0.0", -50, 3)).await;
    assert_eq!(
        again.update.map(|u| u.id),
        Some(offer.id),
        "still the same attempt"
    );
    // Stopping the deployment cancels the attempt: no remembered offer may outlive it.
    fleet.deployment_stop(deployment.id).await.unwrap();
    let after = checkin(&fleet, Some(&token), report("1.0.0", -50, 4)).await;
    assert!(
        after.update.is_none(),
        "a stopped deployment offers nothing"
    );
}

#[tokio::test]
async fn a_stock_clients_repeated_check_is_answered_from_memory_and_forgets_no_other_device() {
    use crate::field::{FieldAnswer, FieldCheck, FieldMode};
    const STOCK: &str = "24:0A:C4:00:00:01";
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let _token = enrol(&fleet).await;
    let native = fleet
        .hot()
        .get(MAC)
        .expect("the native device is remembered");
    let check = |md5: &str| FieldCheck {
        mac: STOCK.to_lowercase(),
        protocol: "arduino",
        mode: FieldMode::App,
        md5: Some(md5.into()),
        sha256: None,
        version: None,
        free_space: Some(1_310_720),
        ip: Some("10.0.0.9".into()),
        register: true,
        weak_auth: false,
        tls: false,
    };
    let md5 = "0123456789abcdef0123456789abcdef";
    let (mac, first) = fleet.field_check(check(md5)).await.unwrap();
    assert_eq!(mac, STOCK, "the MAC as otafleet writes it");
    assert!(matches!(first, FieldAnswer::Nothing { .. }));
    assert!(
        fleet.hot().get(STOCK).is_some(),
        "the stock answer is remembered"
    );
    assert!(
        fleet
            .hot()
            .get(MAC)
            .is_some_and(|e| Arc::ptr_eq(&e, &native)),
        "a stock client's check keeps the native device's memory"
    );
    let remembered = fleet.hot().get(STOCK).unwrap();
    let seen = fleet.device(STOCK).await.unwrap().last_seen;
    let (_, second) = fleet.field_check(check(md5)).await.unwrap();
    assert!(matches!(second, FieldAnswer::Nothing { .. }));
    assert!(
        fleet
            .hot()
            .get(STOCK)
            .is_some_and(|e| Arc::ptr_eq(&e, &remembered)),
        "the repeat was answered from memory, not recorded again"
    );
    // Only the time seen moved, shown at once and written with the heartbeats.
    let shown = fleet.device(STOCK).await.unwrap();
    assert!(shown.last_seen >= seen);
    assert_eq!(shown.protocol.as_deref(), Some("arduino"));
    fleet.flush_heartbeats().await.unwrap();
    // Another image reported: the database path, which records it.
    let (_, _) = fleet
        .field_check(check("fedcba9876543210fedcba9876543210"))
        .await
        .unwrap();
    assert_eq!(
        fleet.device(STOCK).await.unwrap().sha256.as_deref(),
        Some("fedcba9876543210fedcba9876543210")
    );
    // A deployment for the stock device's chip is a write that may change its answer.
    let id = import_v2(&fleet).await;
    assert!(
        fleet.hot().get(STOCK).is_none(),
        "an import forgets every answer"
    );
    fleet
        .deployment_create(NewDeployment {
            firmware_id: id,
            devices: Some(vec![STOCK.into()]),
            allow_other_project: true,
            ..NewDeployment::default()
        })
        .await
        .unwrap();
    let (_, third) = fleet.field_check(check(md5)).await.unwrap();
    assert!(
        !matches!(third, FieldAnswer::Offer { .. }),
        "its chip is still unknown (an HTTPUpdate sketch not in the library): held, not offered"
    );
    assert!(fleet.device(STOCK).await.unwrap().hold.is_some());
}

#[tokio::test]
async fn a_changed_report_takes_the_database_path() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    checkin(&fleet, Some(&token), report("1.0.1", -50, 2)).await;
    let stored = devices::get_raw(fleet.db(), MAC).await.unwrap().unwrap();
    assert_eq!(stored.version.as_deref(), Some("1.0.1"), "written at once");
    let mut moved = report("1.0.1", -50, 3);
    moved.ip = Some("10.0.0.8".into());
    checkin(&fleet, Some(&token), moved).await;
    let stored = devices::get_raw(fleet.db(), MAC).await.unwrap().unwrap();
    assert_eq!(stored.ip.as_deref(), Some("10.0.0.8"));
    assert!(
        fleet.hot().get(MAC).is_some(),
        "the new report is remembered"
    );
    let mut again = report("1.0.1", -51, 4);
    again.ip = Some("10.0.0.8".into());
    let writer = fleet.quiet_write_lock().await;
    checkin(&fleet, Some(&token), again).await;
    assert!(
        fleet.hot().has_pending(),
        "and its repeat is answered from memory"
    );
    drop(writer);
}

#[tokio::test]
async fn a_device_moving_between_plain_http_and_tls_is_recorded_after_a_remembered_answer() {
    async fn over(fleet: &Fleet, token: &str, uptime_s: i64, tls: bool) {
        let req = report("1.0.0", -60, uptime_s);
        fleet.checkin(req, Some(token), None, tls).await.unwrap();
    }
    async fn stored_tls(fleet: &Fleet) -> Option<bool> {
        devices::get_raw(fleet.db(), MAC)
            .await
            .unwrap()
            .unwrap()
            .tls
    }
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    assert_eq!(
        stored_tls(&fleet).await,
        Some(false),
        "enrolled over plain HTTP"
    );
    // The same report over plain HTTP again: answered from memory.
    let remembered = fleet.hot().get(MAC).expect("remembered");
    over(&fleet, &token, 2, false).await;
    assert!(
        fleet
            .hot()
            .get(MAC)
            .is_some_and(|e| Arc::ptr_eq(&e, &remembered)),
        "the repeat was answered from memory"
    );
    // The same report over TLS is not the remembered one: the database path records it.
    over(&fleet, &token, 3, true).await;
    assert_eq!(stored_tls(&fleet).await, Some(true), "written at once");
    assert_eq!(fleet.device(MAC).await.unwrap().tls, Some(true));
    let remembered = fleet.hot().get(MAC).expect("the TLS report is remembered");
    over(&fleet, &token, 4, true).await;
    assert!(
        fleet
            .hot()
            .get(MAC)
            .is_some_and(|e| Arc::ptr_eq(&e, &remembered)),
        "and its repeat is answered from memory"
    );
    // Back to plain HTTP (say, re-flashed with an older image): recorded too.
    over(&fleet, &token, 5, false).await;
    assert_eq!(stored_tls(&fleet).await, Some(false));
}

#[tokio::test]
async fn a_stock_client_moving_to_tls_is_recorded_after_a_remembered_answer() {
    use crate::field::{FieldCheck, FieldMode};
    const STOCK: &str = "24:0A:C4:00:00:01";
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let check = |tls: bool| FieldCheck {
        mac: STOCK.into(),
        protocol: "arduino",
        mode: FieldMode::App,
        md5: Some("0123456789abcdef0123456789abcdef".into()),
        sha256: None,
        version: None,
        free_space: Some(1_310_720),
        ip: Some("10.0.0.9".into()),
        register: true,
        weak_auth: false,
        tls,
    };
    fleet.field_check(check(false)).await.unwrap();
    let remembered = fleet.hot().get(STOCK).expect("remembered");
    fleet.field_check(check(false)).await.unwrap();
    assert!(fleet
        .hot()
        .get(STOCK)
        .is_some_and(|e| Arc::ptr_eq(&e, &remembered)));
    let stored = devices::get_raw(fleet.db(), STOCK).await.unwrap().unwrap();
    assert_eq!(stored.tls, Some(false));
    fleet.field_check(check(true)).await.unwrap();
    let stored = devices::get_raw(fleet.db(), STOCK).await.unwrap().unwrap();
    assert_eq!(stored.tls, Some(true), "the switch took the database path");
}

#[tokio::test]
async fn a_quiet_check_in_publishes_a_seen_event() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    let mut events = fleet.events().subscribe();
    // Right after the database path's own device event a quiet check-in publishes nothing; keep
    // checking in (bounded) until the pacing lets one through.
    let deadline = std::time::Instant::now() + super::EVENT_EVERY * 10;
    let mut uptime = 9;
    let seen = loop {
        checkin(&fleet, Some(&token), report("1.0.0", -41, uptime)).await;
        match events.try_recv() {
            Ok(e) => break e,
            Err(_) => {
                assert!(std::time::Instant::now() < deadline, "no seen event");
                uptime += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    match seen {
        crate::events::Event::Seen {
            mac,
            rssi,
            uptime_s,
            ..
        } => {
            assert_eq!(
                (mac.as_str(), rssi, uptime_s),
                (MAC, Some(-41), Some(uptime))
            );
        }
        other => panic!("expected a seen event, got {other:?}"),
    }
    checkin(&fleet, Some(&token), report("1.0.0", -40, uptime + 1)).await;
    assert!(
        events.try_recv().is_err(),
        "at most one a second per device"
    );
}

#[tokio::test]
async fn a_wrong_token_is_refused_even_for_a_remembered_device() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    enrol(&fleet).await;
    let err = fleet
        .checkin(report("1.0.0", -50, 2), Some("not-the-token"), None, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Unauthorized {
                code: "token_mismatch",
                ..
            }
        ),
        "{err}"
    );
    fleet.flush_heartbeats().await.unwrap();
    let stored = devices::get_raw(fleet.db(), MAC).await.unwrap().unwrap();
    assert_eq!(stored.rssi, Some(-60), "a refused check-in changes nothing");
}

#[tokio::test]
async fn reset_and_delete_by_the_admin_end_the_remembered_token() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    fleet
        .device_patch(
            MAC,
            DevicePatch {
                reset_token: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = fleet
        .checkin(report("1.0.0", -50, 2), Some(&token), None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::Unauthorized { .. }), "{err}");

    let token = enrol(&fleet).await;
    checkin(&fleet, Some(&token), report("1.0.0", -50, 3)).await;
    fleet.device_delete(MAC).await.unwrap();
    let err = fleet
        .checkin(report("1.0.0", -50, 4), Some(&token), None, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Unauthorized {
                code: "token_unknown",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_older_heartbeat_never_overwrites_a_newer_check_in() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    enrol(&fleet).await;
    fleet
        .hot()
        .queue(MAC, "2000-01-01T00:00:00.000Z".into(), Some(-99), Some(7));
    let shown = fleet.device(MAC).await.unwrap();
    assert_eq!(shown.rssi, Some(-60), "the stored check-in is newer");
    fleet.flush_heartbeats().await.unwrap();
    let stored = devices::get_raw(fleet.db(), MAC).await.unwrap().unwrap();
    assert_eq!(stored.rssi, Some(-60));
    assert_ne!(
        stored.last_seen.as_deref(),
        Some("2000-01-01T00:00:00.000Z")
    );
}

#[tokio::test]
async fn a_clean_close_writes_queued_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(&dir).await;
    let token = enrol(&fleet).await;
    checkin(&fleet, Some(&token), report("1.0.0", -44, 77)).await;
    fleet.close().await;
    drop(fleet);
    let fleet = open(&dir).await;
    let d = fleet.device(MAC).await.unwrap();
    assert_eq!((d.rssi, d.uptime_s), (Some(-44), Some(77)));
    // The token survived too: the device's next check-in is accepted.
    checkin(&fleet, Some(&token), report("1.0.0", -44, 78)).await;
}
