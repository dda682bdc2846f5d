//! Projects and per-device config in the core: the migration names every project already in
//! use, a project's variables give its devices a version, the device's values overlay defaults.

use serde_json::json;

use crate::checkin::CheckinRequest;
use crate::config::ConfigPatch;
use crate::projects::ProjectPatch;
use crate::Fleet;

const MAC: &str = "24:6F:28:00:21:01";

fn report(project: &str) -> CheckinRequest {
    CheckinRequest {
        mac: MAC.into(),
        chip: "esp32".into(),
        project: project.into(),
        version: "1.0.0".into(),
        sha256: None,
        free_space: None,
        ip: None,
        rssi: None,
        uptime_s: None,
        name: None,
    }
}

#[tokio::test]
async fn sqlite_the_migration_makes_a_project_of_every_name_devices_and_images_carry() {
    let (_dir, fleet) = crate::db::fleet_migrated_from(
        18,
        "INSERT INTO devices (mac, project, source, created_at) VALUES
             ('24:6F:28:00:00:01', 'x', 'checkin', '2026-01-01T00:00:00.000Z'),
             ('24:6F:28:00:00:02', NULL, 'checkin', '2026-01-01T00:00:00.000Z');
         INSERT INTO firmware (sha256, md5, size, filename, chip, format, project, project_source,
                               version_source, source, uploaded_at) VALUES
             ('aa', 'bb', 10, 'y.bin', 'esp32', 'esp32', 'y', 'descriptor', 'descriptor', 'upload', '2026-01-01T00:00:00.000Z'),
             ('cc', 'dd', 10, 'x.bin', 'esp32', 'esp32', 'x', 'descriptor', 'descriptor', 'upload', '2026-01-01T00:00:00.000Z');",
    )
    .await;
    let names: Vec<(String, i64, i64)> = fleet
        .projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.devices, p.images))
        .collect();
    assert_eq!(names, [("x".into(), 1, 1), ("y".into(), 0, 1)]);
}

async fn enrolled(fleet: &Fleet) -> String {
    let c = fleet
        .checkin(report("blink"), None, None, false)
        .await
        .unwrap();
    c.token.unwrap()
}

#[tokio::test]
async fn variables_give_the_projects_devices_a_version_and_values_overlay_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(crate::Settings::new(dir.path())).await.unwrap();
    let token = enrolled(&fleet).await;
    assert_eq!(
        fleet
            .checkin(report("blink"), Some(&token), None, false)
            .await
            .unwrap()
            .config_version,
        None
    );
    let patch: ProjectPatch = serde_json::from_value(json!({"variables": [
        {"key": "ssid", "type": "string", "default": "lab"},
        {"key": "pass", "type": "secret"},
    ]}))
    .unwrap();
    fleet.project_patch("blink", patch).await.unwrap();
    let v = fleet
        .checkin(report("blink"), Some(&token), None, false)
        .await
        .unwrap()
        .config_version
        .unwrap();
    let c = fleet
        .device_config_patch(
            MAC,
            ConfigPatch {
                values: serde_json::from_value(json!({"pass": "p"})).unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(c.version, Some(v + 1));
    let got = fleet.device_config_read(Some(&token)).await.unwrap();
    assert_eq!(got.version, v + 1);
    assert_eq!(json!(got.values), json!({"ssid": "lab", "pass": "p"}));
}

#[tokio::test]
async fn a_changed_variable_drops_stale_values_and_a_move_to_another_project_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(crate::Settings::new(dir.path())).await.unwrap();
    let token = enrolled(&fleet).await;
    let vars = |t: &str| -> ProjectPatch {
        serde_json::from_value(json!({"variables": [
            {"key": "n", "type": t}, {"key": "s", "type": "string", "default": "d"},
        ]}))
        .unwrap()
    };
    fleet.project_patch("blink", vars("int")).await.unwrap();
    let set = |v: serde_json::Value| ConfigPatch {
        values: serde_json::from_value(v).unwrap(),
    };
    fleet
        .device_config_patch(MAC, set(json!({"n": 5, "s": "mine"})))
        .await
        .unwrap();
    let before = fleet.device_config(MAC).await.unwrap();
    // `n` becomes a bool: its int value no longer fits and is dropped; `s` stays.
    fleet.project_patch("blink", vars("bool")).await.unwrap();
    let after = fleet.device_config(MAC).await.unwrap();
    assert_eq!(after.version, before.version.map(|v| v + 1));
    assert_eq!(json!(after.values), json!({"s": "mine"}));
    // The same variables again change nothing.
    fleet.project_patch("blink", vars("bool")).await.unwrap();
    assert_eq!(
        fleet.device_config(MAC).await.unwrap().version,
        after.version
    );

    // Re-flashed with another project that has variables: a new version, the old values gone.
    let other: ProjectPatch =
        serde_json::from_value(json!({"variables": [{"key": "s", "type": "string"}]})).unwrap();
    fleet
        .checkin(report("other"), Some(&token), None, false)
        .await
        .unwrap();
    fleet.project_patch("other", other).await.unwrap();
    let moved = fleet
        .checkin(report("other"), Some(&token), None, false)
        .await
        .unwrap()
        .config_version
        .unwrap();
    assert!(moved > after.version.unwrap());
    let got = fleet.device_config_read(Some(&token)).await.unwrap();
    assert_eq!(got.version, moved);
    assert_eq!(
        json!(got.values),
        json!({}),
        "values were for the other project"
    );
}
