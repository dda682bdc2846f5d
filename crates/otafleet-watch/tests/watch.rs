//! Watch folders with a real inotify watcher, a real core over SQLite in a temp dir, and a writer
//! that writes an image slowly, in pieces, the way a build does.

use std::io::Write;
use std::time::Duration;

use otafleet_core::events::Event;
use otafleet_core::watch_folders::NewWatchFolder;
use otafleet_core::{Fleet, Settings};
use otafleet_image::{synth, Chip};
use otafleet_watch::WatchOptions;
use tokio::sync::broadcast::Receiver;

const QUIET: Duration = Duration::from_millis(250);

async fn setup(
    auto_deploy: bool,
) -> (Fleet, tempfile::TempDir, tempfile::TempDir, Receiver<Event>) {
    let data = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(data.path())).await.unwrap();
    let events = fleet.events().subscribe();
    fleet
        .watch_folder_add(NewWatchFolder {
            path: watched.path().display().to_string(),
            auto_deploy,
        })
        .await
        .unwrap();
    otafleet_watch::spawn(fleet.clone(), WatchOptions { quiet: QUIET }).unwrap();
    (fleet, data, watched, events)
}

/// The next watch result for a file whose name ends with `name`; fails after 30 s.
async fn next_result(events: &mut Receiver<Event>, name: &str) -> (String, String) {
    let wait = async {
        loop {
            if let Ok(Event::Watch { folder }) = events.recv().await {
                if folder
                    .last_file
                    .as_deref()
                    .is_some_and(|f| f.ends_with(name))
                {
                    return (folder.last_result.unwrap(), folder.last_message.unwrap());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("no watch result within 30 s")
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

#[tokio::test]
async fn an_image_written_slowly_in_pieces_is_imported_once_and_whole() {
    let (fleet, _data, watched, mut events) = setup(false).await;
    let image = synth::AppImage::new(Chip::Esp32)
        .project("blink")
        .version("1.2.3")
        .payload_len(120_000)
        .build();
    let build = watched.path().join(".pio/build/esp32dev");
    std::fs::create_dir_all(&build).unwrap();
    let path = build.join("firmware.bin");
    let writer = {
        let image = image.clone();
        let path = path.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::create(&path).unwrap();
            // Pauses longer than the quiet period: the watcher looks at every half-written state.
            for chunk in image.chunks(image.len() / 5 + 1) {
                f.write_all(chunk).unwrap();
                f.sync_all().unwrap();
                std::thread::sleep(QUIET * 3);
            }
        })
    };
    let mut seen = Vec::new();
    loop {
        let (result, message) = next_result(&mut events, "firmware.bin").await;
        seen.push(result.clone());
        match result.as_str() {
            "incomplete" => continue,
            "imported" => {
                assert!(message.contains("blink 1.2.3"), "{message}");
                break;
            }
            other => panic!("a half-written file must never be {other}: {message}"),
        }
    }
    writer.join().unwrap();
    let library = fleet.firmware_list().await.unwrap();
    assert_eq!(
        library.len(),
        1,
        "imported exactly once (results: {seen:?})"
    );
    assert_eq!(library[0].sha256, sha(&image), "imported whole");
    assert_eq!(library[0].source, "watch");
    assert_eq!(
        library[0].source_path.as_deref(),
        Some(path.display().to_string().as_str())
    );

    // Rewriting the same bytes is a duplicate, not a second record.
    std::fs::write(&path, &image).unwrap();
    let (result, _) = next_result(&mut events, "firmware.bin").await;
    assert_eq!(result, "duplicate");
    assert_eq!(fleet.firmware_list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_rejected_file_is_reported_once_not_retried() {
    let (fleet, _data, watched, mut events) = setup(false).await;
    std::fs::write(
        watched.path().join("bootloader.bin"),
        synth::bootloader(Chip::Esp32),
    )
    .unwrap();
    let (result, message) = next_result(&mut events, "bootloader.bin").await;
    assert_eq!(result, "rejected");
    assert!(message.contains("bootloader"), "{message}");
    // Let the watcher run on: a good file written afterwards is imported, and by then the
    // rejected one has not been reported again.
    let good = synth::AppImage::new(Chip::Esp32c3)
        .project("sensor")
        .version("2.0.0")
        .build();
    std::fs::write(watched.path().join("sensor.bin"), &good).unwrap();
    let mut bootloader_reports = 0;
    loop {
        let Ok(Event::Watch { folder }) = events.recv().await else {
            continue;
        };
        let file = folder.last_file.unwrap_or_default();
        if file.ends_with("bootloader.bin") {
            bootloader_reports += 1;
        }
        if file.ends_with("sensor.bin") && folder.last_result.as_deref() == Some("imported") {
            break;
        }
    }
    assert_eq!(bootloader_reports, 0, "the rejected file was retried");
    assert_eq!(fleet.firmware_list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn auto_deploy_rolls_a_new_image_out_to_its_project() {
    let (fleet, _data, watched, mut events) = setup(true).await;
    let image = synth::AppImage::new(Chip::Esp32s3)
        .project("doorbell")
        .version("3.1.0")
        .build();
    std::fs::write(watched.path().join("doorbell.bin"), &image).unwrap();
    let (result, message) = next_result(&mut events, "doorbell.bin").await;
    assert_eq!(result, "imported");
    assert!(message.contains("deployed"), "{message}");
    let deployments = fleet.deployments().await.unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].project.as_deref(), Some("doorbell"));
    assert_eq!(deployments[0].chip.as_deref(), Some("esp32s3"));
}

#[tokio::test]
async fn a_folder_that_does_not_exist_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(data.path())).await.unwrap();
    let err = fleet
        .watch_folder_add(NewWatchFolder {
            path: "/nonexistent/build".into(),
            auto_deploy: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_path");
    let err = fleet
        .watch_folder_add(NewWatchFolder {
            path: "relative/build".into(),
            auto_deploy: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_path");
}

/// Red team: a build that deletes its output while the watcher imports a batch made the watcher
/// panic ("a ready file exists") and stop for good.
#[tokio::test]
async fn files_deleted_while_a_batch_is_imported_do_not_stop_the_watcher() {
    let (fleet, _data, watched, mut events) = setup(false).await;
    // Many different images written at once: they turn ready together and are imported one after
    // the other, so most are still waiting their turn when they are deleted.
    let batch: Vec<_> = (0..60)
        .map(|i| watched.path().join(format!("batch_{i}.bin")))
        .collect();
    for (i, path) in batch.iter().enumerate() {
        let image = synth::AppImage::new(Chip::Esp32)
            .project("batch")
            .version(&format!("1.0.{i}"))
            .payload_len(150_000)
            .build();
        std::fs::write(path, image).unwrap();
    }
    let (result, message) = next_result(&mut events, ".bin").await;
    assert_eq!(result, "imported", "{message}");
    for path in &batch {
        let _ = std::fs::remove_file(path);
    }
    // The watcher is still there: a file written afterwards is imported.
    let after = synth::AppImage::new(Chip::Esp32)
        .project("after")
        .version("2.0.0")
        .build();
    std::fs::write(watched.path().join("after.bin"), &after).unwrap();
    let (result, message) = next_result(&mut events, "after.bin").await;
    assert_eq!(result, "imported", "{message}");
    let library = fleet.firmware_list().await.unwrap();
    assert!(library.iter().any(|f| f.sha256 == sha(&after)));
}

/// Red team: a clean build (`rm -rf .pio/build/env && mkdir …`) left the folder unwatched.
#[tokio::test]
async fn a_folder_deleted_and_made_again_is_watched_again() {
    let data = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let build = project.path().join(".pio/build/env");
    std::fs::create_dir_all(&build).unwrap();
    let fleet = Fleet::open(Settings::new(data.path())).await.unwrap();
    let mut events = fleet.events().subscribe();
    let folder = fleet
        .watch_folder_add(NewWatchFolder {
            path: build.display().to_string(),
            auto_deploy: false,
        })
        .await
        .unwrap();
    otafleet_watch::spawn(fleet.clone(), WatchOptions { quiet: QUIET }).unwrap();
    let image = |version: &str| {
        synth::AppImage::new(Chip::Esp32)
            .project("clean")
            .version(version)
            .build()
    };
    std::fs::write(build.join("firmware.bin"), image("1.0.0")).unwrap();
    let (result, message) = next_result(&mut events, "firmware.bin").await;
    assert_eq!(result, "imported", "{message}");

    // Deleted and made again at once, as a clean build does: the new image is imported.
    std::fs::remove_dir_all(&build).unwrap();
    std::fs::create_dir_all(&build).unwrap();
    std::fs::write(build.join("firmware.bin"), image("1.0.1")).unwrap();
    let (result, message) = next_result(&mut events, "firmware.bin").await;
    assert_eq!(result, "imported", "{message}");
    assert!(message.contains("clean 1.0.1"), "{message}");

    // Deleted for a while: the folder's record says it is missing, then that it is back.
    std::fs::remove_dir_all(&build).unwrap();
    let (result, message) = next_result(&mut events, &folder.path).await;
    assert_eq!(result, "missing", "{message}");
    let stored = fleet.watch_folders().await.unwrap();
    assert_eq!(stored[0].last_result.as_deref(), Some("missing"));
    std::fs::create_dir_all(&build).unwrap();
    let (result, message) = next_result(&mut events, &folder.path).await;
    assert_eq!(result, "watching", "{message}");
    std::fs::write(build.join("firmware.bin"), image("1.0.2")).unwrap();
    let (result, message) = next_result(&mut events, "firmware.bin").await;
    assert_eq!(result, "imported", "{message}");
    assert!(message.contains("clean 1.0.2"), "{message}");
    assert_eq!(fleet.firmware_list().await.unwrap().len(), 3);
}
