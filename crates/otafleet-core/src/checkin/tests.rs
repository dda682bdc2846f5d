//! Progress reports: the token lookup is indexed and runs outside the writer's lock.

use crate::checkin::{CheckinRequest, ProgressRequest, TOKEN_LOOKUP};
use crate::{Fleet, Settings};

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
        sqlx::query_as(&format!("EXPLAIN QUERY PLAN {TOKEN_LOOKUP}"))
            .bind(crate::checkin::hash_token("some token"))
            .fetch_all(fleet.db())
            .await
            .unwrap();
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
}

#[tokio::test]
async fn token_lookup_searches_the_token_index_instead_of_scanning_devices() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    // Enrolled and never-enrolled devices alike, so the planner has rows to weigh.
    for i in 0..50u8 {
        let r = fleet
            .checkin(report(&format!("24:0A:C4:00:00:{i:02X}")), None, None)
            .await
            .unwrap();
        assert!(r.token.is_some());
    }
    sqlx::query("ANALYZE").execute(fleet.db()).await.unwrap();
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
