//! Migration 0016 gives the attempts closed before it their failure kind, read once from the
//! texts the code wrote then.

use std::collections::BTreeMap;

use super::UpdateFailure;

const NATIVE: &str = "24:0A:C4:00:16:01";
const STOCK: &str = "24:0A:C4:00:16:02";

#[tokio::test]
async fn sqlite_migration_0016_gives_closed_attempts_their_kind() {
    let at = "2026-01-01T00:00:00.000Z";
    let (_dir, fleet) = crate::db::fleet_migrated_from(
        15,
        &format!(
            "INSERT INTO devices (mac, protocol, source, created_at) VALUES \
               ('{NATIVE}', 'native', 'checkin', '{at}'), ('{STOCK}', 'arduino', 'checkin', '{at}'); \
             INSERT INTO firmware (id, sha256, md5, size, filename, chip, format, project_source, \
               version_source, source, uploaded_at) \
               VALUES (1, '{sha}', '{md5}', 1, 'a.bin', 'esp32', 'esp32_app', 'none', 'none', 'upload', '{at}'); \
             INSERT INTO deployments (id, firmware_id, status, end_reason, created_at) VALUES \
               (1, 1, 'stopped', 'superseded by deployment 2', '{at}'), \
               (2, 1, 'stopped', 'stopped by the admin', '{at}'); \
             INSERT INTO updates (id, mac, deployment_id, sha256, state, error, created_at, updated_at) VALUES \
               (1, '{NATIVE}', NULL, '{sha}', 'failed', 'device still runs the previous image', '{at}', '{at}'), \
               (2, '{STOCK}', NULL, '{sha}', 'failed', 'device still runs the previous image', '{at}', '{at}'), \
               (3, '{NATIVE}', NULL, '{sha}', 'failed', 'sha256 mismatch', '{at}', '{at}'), \
               (4, '{STOCK}', NULL, '{sha}', 'interrupted', 'the connection closed before the whole image was sent', '{at}', '{at}'), \
               (5, '{STOCK}', NULL, '{sha}', 'cancelled', 'the image was deleted from the library', '{at}', '{at}'), \
               (6, '{STOCK}', NULL, '{sha}', 'cancelled', 'replaced by deployment 9 before it finished', '{at}', '{at}'), \
               (7, '{STOCK}', 1, '{sha}', 'cancelled', 'deployment 1 was stopped before it started', '{at}', '{at}'), \
               (8, '{STOCK}', 2, '{sha}', 'cancelled', 'deployment 2 was stopped before it started', '{at}', '{at}'), \
               (9, '{NATIVE}', NULL, '{sha}', 'done', NULL, '{at}', '{at}');",
            sha = "a".repeat(64),
            md5 = "b".repeat(32),
        ),
    )
    .await;
    let mut kinds: BTreeMap<i64, Option<UpdateFailure>> = BTreeMap::new();
    for mac in [NATIVE, STOCK] {
        for u in fleet.device_history(mac).await.unwrap() {
            kinds.insert(u.id, u.failure);
        }
    }
    use UpdateFailure::*;
    assert_eq!(
        kinds.into_values().collect::<Vec<_>>(),
        [
            Some(RolledBack),
            Some(NotInstalled),
            Some(DeviceReported),
            Some(DownloadCut),
            Some(ImageDeleted),
            Some(Superseded),
            Some(Superseded),
            Some(Stopped),
            None,
        ]
    );
    fleet.close().await;
}
