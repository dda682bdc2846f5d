use super::*;
use crate::db;
use crate::{Fleet, Settings};

async fn open(dir: &Path) -> Result<Fleet> {
    Fleet::open(Settings::new(dir)).await
}

fn fake_blob(dir: &Path, sha: &str) -> PathBuf {
    let path = dir
        .join("blobs")
        .join("sha256")
        .join(&sha[..2])
        .join(&sha[2..]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"bytes").unwrap();
    path
}

const SHA: &str = "ab00000000000000000000000000000000000000000000000000000000000001";

#[tokio::test]
async fn a_second_fleet_on_the_same_directory_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await.unwrap();
    let err = open(dir.path()).await.err().expect("second open refused");
    assert_eq!(err.code(), "data_dir_in_use");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "names the holder: {msg}"
    );
    assert!(msg.contains("--data-dir"), "says what to do: {msg}");
    first.close().await;
    // Closed: the directory is free again.
    let again = open(dir.path()).await.unwrap();
    again.close().await;
}

#[tokio::test]
async fn sqlite_a_zero_length_database_next_to_stored_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fake_blob(dir.path(), SHA);
    std::fs::write(dir.path().join("otafleet.db"), b"").unwrap();
    let err = open(dir.path()).await.err().expect("refused");
    assert_eq!(err.code(), "database_mismatch");
    assert!(err.to_string().contains("0 bytes"), "{err}");
    // Nothing was changed: the file is still empty and the image still there.
    assert_eq!(
        std::fs::metadata(dir.path().join("otafleet.db"))
            .unwrap()
            .len(),
        0
    );
    assert!(fake_blob_exists(dir.path()));
}

fn fake_blob_exists(dir: &Path) -> bool {
    dir.join("blobs/sha256")
        .join(&SHA[..2])
        .join(&SHA[2..])
        .exists()
}

#[tokio::test]
async fn sqlite_a_missing_database_next_to_stored_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fake_blob(dir.path(), SHA);
    let err = open(dir.path()).await.err().expect("refused");
    assert_eq!(err.code(), "database_mismatch");
    assert!(fake_blob_exists(dir.path()));
}

#[tokio::test]
async fn a_zero_length_database_with_no_images_starts_a_new_fleet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("otafleet.db"), b"").unwrap();
    let fleet = open(dir.path()).await.unwrap();
    assert!(fleet.devices().await.unwrap().is_empty());
    fleet.close().await;
}

#[tokio::test]
async fn sqlite_a_foreign_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("otafleet.db"))
            .create_if_missing(true);
        let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
        db::query("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let err = open(dir.path()).await.err().expect("refused");
    assert_eq!(err.code(), "database_mismatch");
    assert!(err.to_string().contains("invoices"), "{err}");

    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("otafleet.db"),
        b"not a database at all, but long",
    )
    .unwrap();
    let err = open(other.path()).await.err().expect("refused");
    assert_eq!(err.code(), "database_mismatch");
}

#[tokio::test]
async fn a_blob_no_row_points_at_is_collected_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = open(dir.path()).await.unwrap();
    fleet.close().await;
    drop(fleet);
    // What a kill between the blob's rename and its row's commit leaves behind.
    let orphan = fake_blob(dir.path(), SHA);
    let fleet = open(dir.path()).await.unwrap();
    assert!(!orphan.exists(), "the orphan blob is removed");
    fleet.close().await;
}
