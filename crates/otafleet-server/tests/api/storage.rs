//! Red-team findings about stored images, each a test: a re-upload of an image whose file went
//! missing must bring the file back (not answer 200 while downloads fail), and deleting an image
//! must end the attempts still open for it.

use serde_json::json;

use crate::common::*;

const MAC: &str = "24:6F:28:AA:00:01";

#[tokio::test]
async fn re_uploading_an_image_whose_file_went_missing_restores_it() {
    let app = TestApp::start().await;
    let bytes = app_image(otafleet_image::Chip::Esp32, "blink", "1.0.0", 4096);
    let sha = sha256_hex(&bytes);
    let first = app.upload_ok("blink_v1.0.0.bin", bytes.clone()).await;
    let blob = app
        .dir
        .path()
        .join("blobs/sha256")
        .join(&sha[..2])
        .join(&sha[2..]);
    std::fs::remove_file(&blob).unwrap();

    let (status, again) = app.upload("blink_v1.0.0.bin", bytes.clone()).await;
    assert!(status == 200 || status == 201, "{status} {again}");
    assert_eq!(again["id"], first["id"], "the same library entry");
    assert!(blob.exists(), "the stored file is back");
    let r = app.download(&sha).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn deleting_an_image_ends_the_attempts_still_open_for_it() {
    let app = TestApp::start().await;
    let old = app_image(otafleet_image::Chip::Esp32, "blink", "1.0.0", 4096);
    let new = app_image(otafleet_image::Chip::Esp32, "blink", "1.1.0", 4096);
    app.upload_ok("blink_v1.0.0.bin", old.clone()).await;
    let fw = app.upload_ok("blink_v1.1.0.bin", new).await;
    let (status, enrol) = app
        .checkin(None, checkin_body(MAC, "1.0.0", Some(&sha256_hex(&old))))
        .await;
    assert_eq!(status, 200, "{enrol}");
    let token = enrol["token"].as_str().unwrap().to_string();
    let dep = app
        .deploy(json!({ "firmware_id": fw["id"], "devices": [MAC] }))
        .await;
    let (status, offer) = app
        .checkin(
            Some(&token),
            checkin_body(MAC, "1.0.0", Some(&sha256_hex(&old))),
        )
        .await;
    assert_eq!(status, 200, "{offer}");
    let update_id = offer["update"]["id"].as_i64().expect("an offer");
    // The device has the image and verifies it: stopping the deployment leaves an attempt past
    // its download alone (unstarted and downloading ones are cancelled).
    let r = app
        .progress(
            &token,
            json!({"update_id": update_id, "state": "verifying", "progress": 100}),
        )
        .await;
    assert_eq!(r.status(), 200);

    // Stop the deployment, then delete the image while the device's attempt is still open.
    let stop = app
        .admin_delete(&format!("/api/v1/deployments/{}", dep["id"]))
        .await;
    assert!(stop.is_success(), "stop: {stop}");
    let delete = app
        .admin_delete(&format!("/api/v1/firmware/{}", fw["id"]))
        .await;
    assert!(delete.is_success(), "delete: {delete}");

    let history = app
        .get_json(&format!("/api/v1/devices/{MAC}/updates"))
        .await;
    let attempt = history
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"].as_i64() == Some(update_id))
        .expect("the attempt is in the history");
    assert_eq!(attempt["state"], "cancelled", "{attempt}");
    assert!(
        attempt["error"].as_str().unwrap_or("").contains("deleted"),
        "{attempt}"
    );
    assert_eq!(attempt["failure"], "image_deleted", "{attempt}");
}

/// Stopping a deployment cancels the attempts downloading too, and cuts their downloads: the
/// device that keeps reading gets a short body (so it never flashes a part of the image), and
/// its next progress report is refused (409) before it could flash what it has.
#[tokio::test]
async fn stopping_a_deployment_cuts_a_download_in_flight() {
    use futures_util::StreamExt;
    let app = TestApp::start().await;
    let old = app_image(otafleet_image::Chip::Esp32, "blink", "1.0.0", 4096);
    // Larger than what the loopback's socket buffers take in, so the cut reaches the reader.
    let new = app_image(
        otafleet_image::Chip::Esp32,
        "blink",
        "1.1.0",
        12 * 1024 * 1024,
    );
    app.upload_ok("blink_v1.0.0.bin", old.clone()).await;
    let fw = app.upload_ok("blink_v1.1.0.bin", new.clone()).await;
    // A device with room for the large image.
    let body = || {
        let mut b = checkin_body(MAC, "1.0.0", Some(&sha256_hex(&old)));
        b["free_space"] = json!(16 * 1024 * 1024);
        b
    };
    let (_, enrol) = app.checkin(None, body()).await;
    let token = enrol["token"].as_str().unwrap().to_string();
    let dep = app
        .deploy(json!({ "firmware_id": fw["id"], "devices": [MAC] }))
        .await;
    let (_, offer) = app.checkin(Some(&token), body()).await;
    let update_id = offer["update"]["id"].as_i64().expect("an offer");
    let r = app
        .progress(
            &token,
            json!({"update_id": update_id, "state": "downloading", "progress": 0}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .get(app.url(&format!("/api/v1/device/firmware/{}", sha256_hex(&new))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut got = body.next().await.expect("a first chunk").unwrap().len();

    let stop = app
        .admin_delete(&format!("/api/v1/deployments/{}", dep["id"]))
        .await;
    assert!(stop.is_success(), "stop: {stop}");
    let mut broke = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got += c.len(),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(
        broke || got < new.len(),
        "the download was not cut: {got} of {} bytes",
        new.len()
    );
    assert!(got < new.len(), "{got} of {} bytes arrived", new.len());

    let history = app
        .get_json(&format!("/api/v1/devices/{MAC}/updates"))
        .await;
    let attempt = history
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"].as_i64() == Some(update_id))
        .expect("the attempt is in the history")
        .clone();
    assert_eq!(attempt["state"], "cancelled", "{attempt}");
    assert_eq!(attempt["failure"], "stopped", "{attempt}");
    assert!(
        attempt["error"]
            .as_str()
            .is_some_and(|e| e.contains("download was cut")),
        "{attempt}"
    );
    let r = app
        .progress(
            &token,
            json!({"update_id": update_id, "state": "verifying", "progress": 100}),
        )
        .await;
    assert_eq!(
        r.status(),
        409,
        "a progress report after the stop is refused"
    );
}
