//! Progress reports: the token lookup is indexed and runs outside the writer's lock.

use crate::checkin::{device_of, hash_token, record_progress, CheckinRequest, ProgressRequest};
use crate::db;
use crate::deployments::NewDeployment;
use crate::devices::DevicePatch;
use crate::devices::TOKEN_LOOKUP;
use crate::firmware::{ImportRequest, ImportSource};
use crate::{Fleet, Settings};
use otafleet_image::{synth, Chip};

fn report(mac: &str) -> CheckinRequest {
    CheckinRequest {
        mac: mac.into(),
        chip: "esp32".into(),
        project: "blink".into(),
        version: "1.0.0".into(),
        sha256: None,
        free_space: None,
        ip: None,
        rssi: None,
        uptime_s: None,
        name: None,
    }
}

/// The plan SQLite chooses for the token lookup, on the real database the fleet opened.
async fn plan(fleet: &Fleet) -> String {
    let rows: Vec<(i64, i64, i64, String)> =
        db::query_as(&format!("EXPLAIN QUERY PLAN {TOKEN_LOOKUP}"))
            .bind(crate::checkin::hash_token("some token"))
            .fetch_all(fleet.db())
            .await
            .unwrap();
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
}

#[tokio::test]
async fn sqlite_token_lookup_searches_the_token_index_instead_of_scanning_devices() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    // Enrolled and never-enrolled devices alike, so the planner has rows to weigh.
    for i in 0..50u8 {
        let r = fleet
            .checkin(
                report(&format!("24:0A:C4:00:00:{i:02X}")),
                None,
                None,
                false,
            )
            .await
            .unwrap();
        assert!(r.token.is_some());
    }
    db::query("ANALYZE").execute(fleet.db()).await.unwrap();
    let plan = plan(&fleet).await;
    assert!(
        plan.contains("USING INDEX devices_token_hash") && !plan.contains("SCAN"),
        "the token lookup must search the token index, not read every device: {plan}"
    );
    fleet.close().await;
}

#[tokio::test]
async fn unknown_token_is_refused_while_a_writer_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    let writer = fleet.write_lock().await;
    // The lookup needs no lock, so the refusal comes while the writer still holds it. Bounded
    // only so that a regression fails instead of hanging; nothing here measures speed.
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        fleet.progress(
            Some("not a token of ours"),
            ProgressRequest {
                update_id: 1,
                state: "downloading".into(),
                progress: 0,
                error: None,
            },
        ),
    )
    .await
    .expect("the token lookup waited for the writer's lock")
    .unwrap_err();
    assert_eq!(refused.code(), "token_unknown");
    drop(writer);
    fleet.close().await;
}

#[tokio::test]
async fn a_token_reset_between_lookup_and_write_refuses_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    let mac = "24:0A:C4:00:00:01";
    let token = fleet
        .checkin(report(mac), None, None, false)
        .await
        .unwrap()
        .token
        .unwrap();
    // An open update the report would move.
    let image = synth::AppImage::new(Chip::Esp32)
        .project("blink")
        .version("2.0.0")
        .payload_len(20_000)
        .build();
    let fw = fleet
        .import(
            ImportRequest {
                filename: "blink.bin".into(),
                project: None,
                version: None,
                source: ImportSource::Upload,
                source_path: None,
                only_project: None,
            },
            &image[..],
        )
        .await
        .unwrap()
        .firmware;
    fleet
        .deployment_create(NewDeployment {
            firmware_id: fw.id,
            devices: Some(vec![mac.into()]),
            ..NewDeployment::default()
        })
        .await
        .unwrap();
    let offer = fleet
        .checkin(report(mac), Some(&token), None, false)
        .await
        .unwrap()
        .update
        .expect("an offer");
    let token_hash = hash_token(&token);
    // The lookup (outside the lock) finds the device ...
    assert_eq!(device_of(&fleet, &token_hash).await.unwrap(), mac);
    // ... then, before the report takes the lock, the admin resets the device's enrolment.
    fleet
        .device_patch(
            mac,
            DevicePatch {
                reset_token: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let refused = record_progress(
        &fleet,
        mac,
        &token_hash,
        crate::updates::UpdateState::Downloading,
        ProgressRequest {
            update_id: offer.id,
            state: "downloading".into(),
            progress: 10,
            error: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), "token_unknown");
    let history = fleet.device_history(mac).await.unwrap();
    assert_eq!(history[0].state, "offered", "nothing was written");
    fleet.close().await;
}
