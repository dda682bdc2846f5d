//! Issue 18's queries that had to scale: the device list a page at a time (a range of the
//! primary key), each listed device's latest attempt read for that page only, and an image's
//! running count through two indexes. The plan assertions are SQLite's (`EXPLAIN QUERY PLAN`);
//! on PostgreSQL only the behaviour is checked (bench/plans/explain.sh shows both backends' plans
//! over 100,000 devices).

use std::collections::HashSet;

use crate::checkin::CheckinRequest;
use crate::db::{self, Db};
use crate::devices::{NewDevice, PAGE, PAGE_MAX};
use crate::firmware::{ImportRequest, ImportSource};
use crate::updates::LATEST_PER_DEVICE;
use crate::{Fleet, Settings};
use otafleet_image::{synth, Chip};

async fn fleet() -> (tempfile::TempDir, Fleet) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    (dir, fleet)
}

/// SQLite's plan for `sql` (its `?n` bound to `binds`), one detail per step; `None` on
/// PostgreSQL, whose plans these tests do not assert.
async fn sqlite_plan(fleet: &Fleet, sql: &str, binds: &[&str]) -> Option<String> {
    if !matches!(fleet.db(), Db::Sqlite(_)) {
        return None;
    }
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = db::query_as::<(i64, i64, i64, String)>(&explain);
    for b in binds {
        q = q.bind(b.to_string());
    }
    let rows = q.fetch_all(fleet.db()).await.unwrap();
    Some(rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; "))
}

fn mac(i: u32) -> String {
    format!(
        "24:0A:C4:{:02X}:{:02X}:{:02X}",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

/// 3,000 devices (a third without a reported hash) running 10 images, 3 attempts each, straight
/// into SQLite, then ANALYZE: enough rows for the planner to weigh a scan against an index.
async fn fill_sqlite(fleet: &Fleet) {
    db::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) \
         INSERT INTO firmware (sha256, md5, size, filename, chip, format, project, project_source, \
           version, version_source, source, uploaded_at) \
         SELECT printf('%064x', i), printf('%032x', i), 1000, 'fw.bin', 'esp32', 'esp32', 'blink', \
           'app_desc', '1.0.' || i, 'app_desc', 'upload', '2026-01-01T00:00:00.000Z' FROM n",
    )
    .execute(fleet.db())
    .await
    .unwrap();
    db::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999) \
         INSERT INTO devices (mac, chip, project, version, sha256, source, created_at) \
         SELECT printf('24:0A:C4:00:%02X:%02X', i >> 8, i & 255), 'esp32', 'blink', \
           '1.0.' || (i % 10 + 1), CASE WHEN i % 3 > 0 THEN printf('%064x', i % 10 + 1) END, \
           'checkin', '2026-01-01T00:00:00.000Z' FROM n",
    )
    .execute(fleet.db())
    .await
    .unwrap();
    db::query(
        "INSERT INTO updates (mac, sha256, state, created_at, updated_at) \
         SELECT d.mac, d.sha256, 'done', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' \
         FROM devices d, (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) \
         WHERE d.sha256 IS NOT NULL",
    )
    .execute(fleet.db())
    .await
    .unwrap();
    db::query("ANALYZE").execute(fleet.db()).await.unwrap();
}

#[tokio::test]
async fn the_running_count_searches_two_indexes_instead_of_reading_every_device_per_image() {
    let (_dir, fleet) = fleet().await;
    if !matches!(fleet.db(), Db::Sqlite(_)) {
        return; // a plan test: SQLite's planner only
    }
    fill_sqlite(&fleet).await;
    let plan = sqlite_plan(&fleet, crate::firmware::SELECT, &[])
        .await
        .unwrap();
    assert!(
        plan.contains("USING COVERING INDEX devices_sha256 (sha256=?)")
            && plan.contains("USING INDEX devices_unhashed (project=? AND version=? AND chip=?)")
            && !plan.contains("SCAN d"),
        "an image's running count must search the devices' indexes, not read every device: {plan}"
    );
    // And counts what it did: 200 devices per image by hash, 100 without one.
    let listed = fleet.firmware_list().await.unwrap();
    assert_eq!(listed.len(), 10);
    assert!(
        listed.iter().all(|f| f.devices_running == 300),
        "{listed:?}"
    );
}

#[tokio::test]
async fn the_device_list_reads_one_page_and_one_attempt_per_listed_device() {
    let (_dir, fleet) = fleet().await;
    if !matches!(fleet.db(), Db::Sqlite(_)) {
        return; // a plan test: SQLite's planner only
    }
    fill_sqlite(&fleet).await;
    let page = sqlite_plan(&fleet, PAGE, &["24:0A:C4:00:01:00", "100"])
        .await
        .unwrap();
    assert!(
        page.contains("SEARCH devices USING INDEX sqlite_autoindex_devices_1 (mac>?)")
            && !page.contains("SCAN"),
        "a page starts at its cursor in the primary key: {page}"
    );
    let latest = sqlite_plan(
        &fleet,
        LATEST_PER_DEVICE,
        &["24:0A:C4:00:01:00", "24:0A:C4:00:01:63"],
    )
    .await
    .unwrap();
    assert!(
        latest.contains("SEARCH x USING COVERING INDEX updates_mac (mac=?)")
            && latest.contains("(mac>? AND mac<?)")
            && !latest.contains("SCAN"),
        "the latest attempts are read for the page's devices only, never over every attempt: {latest}"
    );
    // Two thirds of the devices have attempts, and the page shows each one's newest.
    let p = fleet.devices_page(None, 30).await.unwrap();
    assert_eq!(p.devices.len(), 30);
    assert_eq!(p.next.as_deref(), Some(p.devices[29].mac.as_str()));
    for d in &p.devices {
        let newest: Option<i64> = db::query_scalar("SELECT MAX(id) FROM updates WHERE mac = ?")
            .bind(&d.mac)
            .fetch_one(fleet.db())
            .await
            .unwrap();
        assert_eq!(d.update.as_ref().map(|u| u.id), newest, "{}", d.mac);
    }
}

#[tokio::test]
async fn an_image_counts_devices_by_hash_and_unhashed_ones_by_project_version_and_chip() {
    let (_dir, fleet) = fleet().await;
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
    let report = |mac: &str, version: &str, sha256: Option<String>| CheckinRequest {
        mac: mac.into(),
        chip: "esp32".into(),
        project: "blink".into(),
        version: version.into(),
        sha256,
        free_space: None,
        ip: None,
        rssi: None,
        uptime_s: None,
        name: None,
    };
    for r in [
        report("24:0A:C4:00:18:01", "2.0.0", Some(fw.sha256.clone())),
        report("24:0A:C4:00:18:02", "2.0.0", None),
        report("24:0A:C4:00:18:03", "1.0.0", None),
        report("24:0A:C4:00:18:04", "2.0.0", Some("ab".repeat(32))),
    ] {
        fleet.checkin(r, None, None, false).await.unwrap();
    }
    let listed = fleet.firmware_list().await.unwrap();
    assert_eq!(
        listed[0].devices_running, 2,
        "the device that reported the image's hash and the one that reported its version without a hash"
    );
    assert_eq!(fleet.firmware(fw.id).await.unwrap().devices_running, 2);
}

/// Every device that exists throughout is listed exactly once across the pages, in MAC order,
/// while another task adds devices between and around them; the pages after it finished hold
/// every device once.
#[tokio::test]
async fn paging_lists_every_device_exactly_once_while_devices_are_added() {
    let (_dir, fleet) = fleet().await;
    let add = {
        let fleet = fleet.clone();
        move |i: u32| {
            let fleet = fleet.clone();
            async move {
                fleet
                    .device_create(NewDevice {
                        mac: mac(i),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
        }
    };
    // Even numbers first, odd ones (which sort between them) while the pages are read.
    for i in (0..240).step_by(2) {
        add(i).await;
    }
    for i in (0..240).step_by(8) {
        // Attempts for some devices: each page must show its devices' newest one.
        for state in ["failed", "done"] {
            db::query(
                "INSERT INTO updates (mac, sha256, state, created_at, updated_at) \
                 VALUES (?, ?, ?, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
            )
            .bind(mac(i))
            .bind("cd".repeat(32))
            .bind(state)
            .execute(fleet.db())
            .await
            .unwrap();
        }
    }
    let adder = tokio::spawn({
        let add = add.clone();
        async move {
            for i in (1..240).step_by(2).rev() {
                add(i).await;
                tokio::task::yield_now().await;
            }
        }
    });
    let read = |fleet: Fleet| async move {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = fleet.devices_page(after.as_deref(), 7).await.unwrap();
            assert!(page.devices.len() <= 7);
            pages += 1;
            seen.extend(page.devices);
            match page.next {
                Some(n) => after = Some(n),
                None => return (seen, pages),
            }
        }
    };
    let (during, pages) = read(fleet.clone()).await;
    adder.await.unwrap();
    let macs: Vec<&str> = during.iter().map(|d| d.mac.as_str()).collect();
    assert!(
        macs.windows(2).all(|w| w[0] < w[1]),
        "in MAC order, none twice: {macs:?}"
    );
    for i in (0..240).step_by(2) {
        assert!(macs.contains(&mac(i).as_str()), "{} missing", mac(i));
    }
    assert!(pages >= 120 / 7, "{pages} pages");
    for d in &during {
        let i = u32::from_str_radix(&d.mac[15..], 16).unwrap();
        if i % 8 == 0 {
            let u = d.update.as_ref().expect("the device's newest attempt");
            assert_eq!(u.state.as_str(), "done", "{}", d.mac);
        } else {
            assert!(d.update.is_none(), "{}", d.mac);
        }
    }
    let (after, _) = read(fleet.clone()).await;
    let all: HashSet<&str> = after.iter().map(|d| d.mac.as_str()).collect();
    assert_eq!((after.len(), all.len()), (240, 240));
    assert_eq!(fleet.devices().await.unwrap().len(), 240);
    // A limit out of range is clamped by the core (the route refuses it first).
    let one = fleet.devices_page(None, 0).await.unwrap();
    assert_eq!(one.devices.len(), 1);
    let max = fleet.devices_page(None, PAGE_MAX * 10).await.unwrap();
    assert_eq!((max.devices.len(), max.next), (240, None));
}
