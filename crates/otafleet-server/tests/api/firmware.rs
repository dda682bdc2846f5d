//! The firmware library over HTTP: raw and multipart uploads, deduplication, naming rules for
//! Arduino builds, delete rules, and the real image corpus.

use otafleet_image::Chip;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn raw_and_multipart_uploads_and_same_bytes_twice() {
    let app = TestApp::start().await;
    let img = app_image(Chip::Esp32c3, "sensor", "1.4.2", 50_000);
    let fw = app.upload_ok("sensor.bin", img.clone()).await;
    for key in [
        "id",
        "filename",
        "size",
        "sha256",
        "md5",
        "chip",
        "project",
        "version",
        "idf_version",
        "build_date",
        "build_time",
        "uploaded_at",
    ] {
        assert!(fw.get(key).is_some(), "firmware JSON lacks {key}: {fw}");
    }
    assert_eq!(fw["chip"], "esp32c3");
    assert_eq!(fw["project"], "sensor");
    assert_eq!(fw["project_source"], "app_desc");
    assert_eq!(fw["version"], "1.4.2");
    assert_eq!(fw["sha256"], sha256_hex(&img));
    assert_eq!(fw["size"], img.len());
    let blobs = app.blob_count();
    assert_eq!(blobs, 1);

    // Same bytes again, as multipart this time: the existing record, nothing new stored.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(img.clone()).file_name("again.bin"),
    );
    let r = app
        .admin(Method::POST, "/api/v1/firmware")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["id"], fw["id"], "the existing record comes back");
    assert_eq!(app.blob_count(), blobs);
    assert_eq!(
        app.get_json("/api/v1/firmware")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn arduino_builds_take_project_and_version_from_overrides_or_file_name() {
    let app = TestApp::start().await;
    let a = synth_arduino(1);
    let fw = app.upload_ok("blink_v1.2.3.bin", a).await;
    assert_eq!(fw["project"], "blink");
    assert_eq!(fw["project_source"], "filename");
    assert_eq!(fw["version"], "1.2.3");
    assert_eq!(fw["version_source"], "filename");

    let form = reqwest::multipart::Form::new()
        .text("project", "doorbell")
        .text("version", "2.0.0-rc1")
        .part(
            "file",
            reqwest::multipart::Part::bytes(synth_arduino(2)).file_name("firmware.bin"),
        );
    let r = app
        .admin(Method::POST, "/api/v1/firmware")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let fw: Value = r.json().await.unwrap();
    assert_eq!(fw["project"], "doorbell");
    assert_eq!(fw["project_source"], "override");
    assert_eq!(fw["version"], "2.0.0-rc1");
    assert_eq!(fw["version_source"], "override");

    let fw = app.upload_ok("blink-0.3.bin", synth_arduino(3)).await;
    assert_eq!(fw["version"], "0.3");
    app.stop().await;
}

#[tokio::test]
async fn delete_is_refused_while_deployed() {
    let app = TestApp::start().await;
    let fw = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "1.0.0", 10_000),
        )
        .await;
    let dep = app.deploy(json!({"firmware_id": fw["id"]})).await;
    assert_eq!(dep["project"], "blink");
    assert_eq!(dep["chip"], "esp32");
    let path = format!("/api/v1/firmware/{}", fw["id"]);
    let r = app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let r = app
        .admin(
            Method::DELETE,
            &format!("/api/v1/deployments/{}", dep["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.blob_count(), 0, "the blob goes with the record");
    let r = app.admin(Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn deployment_dry_run_counts_reach_without_storing() {
    let app = TestApp::start().await;
    let fw = app
        .upload_ok(
            "blink.bin",
            app_image(Chip::Esp32, "blink", "2.0.0", 10_000),
        )
        .await;
    for i in 0..3 {
        let (s, _) = app
            .checkin(
                None,
                checkin_body(&format!("24:0A:C4:00:00:0{i}"), "1.0.0", None),
            )
            .await;
        assert_eq!(s, 200);
    }
    let r = app
        .admin(Method::POST, "/api/v1/deployments")
        .json(&json!({"firmware_id": fw["id"], "dry_run": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["reach"], 3);
    assert_eq!(
        app.get_json("/api/v1/deployments")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    app.stop().await;
}

/// Every image in ../shared/testdata/firmware, uploaded over HTTP, is accepted or refused as
/// PROVENANCE.md says.
#[tokio::test]
async fn real_corpus_over_http_requires_corpus() {
    let Some(dir) = corpus_dir() else { return };
    let app = TestApp::start().await;
    let expected_accept = [
        ("esp32-arduino-esp32fota-final-stage.bin", "esp32"),
        ("esp32-arduino-esp32fota-https-v2-no-appdesc.bin", "esp32"),
        ("esp32-arduino-esphome-2022.2.0-dev.bin", "esp32"),
        ("esp32-idf-hello_world.bin", "esp32"),
        ("esp32c2-idf-hello_world.bin", "esp32c2"),
        ("esp32c3-idf-hello_world.bin", "esp32c3"),
        ("esp32c6-idf-hello_world.bin", "esp32c6"),
        ("esp32p4-idf-hello_world.bin", "esp32p4"),
        ("esp32s2-idf-blink-v5.0-beta1.bin", "esp32s2"),
        ("esp32s2-idf-hello_world.bin", "esp32s2"),
        ("esp32s3-idf-hello_world.bin", "esp32s3"),
        ("esp8266-arduino-esphome-2022.2.0-dev.bin", "esp8266"),
    ];
    let expected_reject = [
        ("esp32-arduino-esphome-bootloader.bin", "bootloader"),
        ("esp32-arduino-esphome-otadata.bin", ""),
        ("esp32-arduino-esphome-partitions.bin", "partition_table"),
        ("esp32-idf-bootloader-v5.2.2.bin", "bootloader"),
        ("esp32-idf-partition-table.bin", "partition_table"),
        ("esp32s3-idf-ram-only-app.bin", "ram_only_app"),
    ];
    for (name, chip) in expected_accept {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let fw = app.upload_ok(name, bytes).await;
        assert_eq!(fw["chip"], chip, "{name}");
    }
    let hello = app.get_json("/api/v1/firmware").await;
    let hello = hello
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == "esp32-idf-hello_world.bin")
        .unwrap()
        .clone();
    assert_eq!(hello["project"], "hello_world");
    assert_eq!(hello["version"], "v1.4.1-2-g0296947-dirty");
    assert_eq!(hello["idf_version"], "v5.2.2-dirty");
    assert_eq!(hello["build_date"], "Jul 25 2024");
    assert_eq!(hello["build_time"], "16:23:40");
    for (name, code) in expected_reject {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let (status, body) = app.upload(name, bytes).await;
        assert_eq!(status, 422, "{name} must be refused: {body}");
        if !code.is_empty() {
            assert_eq!(body["error"]["code"], code, "{name}");
        }
    }
    app.stop().await;
}

/// A slow upload must not hold up the fleet: devices check in while it is still arriving.
#[tokio::test]
async fn a_slow_upload_does_not_block_checkins() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::start().await;
    let img = app_image(Chip::Esp32, "blink", "1.0.0", 200_000);
    let mut sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/firmware?filename=blink.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        img.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&img[..img.len() / 2]).await.unwrap();
    sock.flush().await.unwrap();
    let checkin = app.checkin(None, checkin_body("24:0A:C4:00:00:09", "1.0.0", None));
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(10), checkin)
        .await
        .expect("a check-in waited on an unfinished upload");
    assert_eq!(status, 200, "check-in during an upload: {body}");
    sock.write_all(&img[img.len() / 2..]).await.unwrap();
    let mut reply = vec![0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut sock, &mut reply)
        .await
        .unwrap();
    assert_eq!(&reply, b"HTTP/1.1 201", "the upload completes afterwards");
    app.stop().await;
}
