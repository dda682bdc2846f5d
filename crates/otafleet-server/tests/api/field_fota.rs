//! Issue 3, esp32FOTA: the manifest at `/ota/esp32fota.json`, replayed as the library sends it
//! (chrisjoyce911/esp32FOTA `src/esp32FOTA.cpp` @0063972: `execHTTPcheck` appends `?id=` from
//! `getDeviceID()` = `ESP.getEfuseMac()` as `PRIu64`, then `setupHTTP` + `_http.GET()` with the
//! stock HTTPClient, HTTP/1.1; `getHTTPStream` then GETs the entry's `url` and needs a positive
//! Content-Length).

use otafleet_image::Chip;
use serde_json::{json, Value};

use crate::common::*;

const MAC: &str = "24:0A:C4:A3:15:3C";

/// `ESP.getEfuseMac()` of MAC 24:0A:C4:A3:15:3C: the bytes little-endian in a u64.
fn efuse_id() -> String {
    u64::from_le_bytes([0x24, 0x0A, 0xC4, 0xA3, 0x15, 0x3C, 0, 0]).to_string()
}

/// The stock HTTPClient's request for `url` (HTTP/1.1, its User-Agent and Accept-Encoding).
async fn esp_get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("User-Agent", "ESP32HTTPClient")
        .header("Connection", "keep-alive")
        .header("Accept-Encoding", "identity;q=1,chunked;q=0.1,*;q=0")
        .send()
        .await
        .unwrap()
}

async fn manifest(app: &TestApp, query: &str) -> Value {
    let r = esp_get(app, &format!("/ota/esp32fota.json{query}")).await;
    assert_eq!(
        r.status(),
        200,
        "esp32FOTA accepts only 200 (or 301) for the manifest"
    );
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body = r.bytes().await.unwrap();
    assert!(
        body.len() < 2048,
        "esp32FOTA parses into a 2048-byte document"
    );
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn esp32fota_updates_from_manifest_to_confirmed() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", 200_000);
    let other = app_image(Chip::Esp32s3, "meter", "0.3.1", 30_000);
    let fw2 = app.upload_ok("blink.bin", v2.clone()).await;
    let fwo = app.upload_ok("meter.bin", other).await;
    let q = format!("?id={}", efuse_id());

    assert_eq!(manifest(&app, &q).await, json!([]), "nothing deployed yet");
    let d = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(
        d["protocol"], "esp32fota",
        "the ?id= registers the device by its MAC"
    );
    assert!(d["chip"].is_null(), "esp32FOTA says nothing about the chip");

    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    app.deploy(json!({"firmware_id": fwo["id"]})).await;
    let host = app.addr;
    let sha2 = fw2["sha256"].as_str().unwrap();
    let url = format!("http://{host}/ota/firmware/{MAC}/{sha2}");
    assert_eq!(
        manifest(&app, &q).await,
        json!([
            {"type": "blink", "version": "2.0.0", "url": url},
            {"type": "meter", "version": "0.3.1",
             "url": format!("http://{host}/ota/firmware/{MAC}/{}", fwo["sha256"].as_str().unwrap())},
        ])
    );
    // Without ?id= the entries point at the plain download route.
    let anon = manifest(&app, "").await;
    assert_eq!(
        anon[0]["url"],
        format!("http://{host}/api/v1/device/firmware/{sha2}")
    );

    // The device's type is "blink" and 2.0.0 > its 1.0.0: it downloads the entry's url.
    let r = esp_get(&app, &format!("/ota/firmware/{MAC}/{sha2}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], v2.len().to_string().as_str());
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), v2.as_slice());
    let inst = events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "installing")
        .await;
    assert_eq!(inst["update"]["mac"], MAC);
    assert_eq!(inst["update"]["bytes_sent"], v2.len());

    // After its reboot it fetches the manifest again: the attempt is confirmed.
    manifest(&app, &q).await;
    events
        .wait_for(|n, v| n == "update" && v["update"]["state"] == "done")
        .await;
    let d = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(d["version"], "2.0.0");
    assert_eq!(d["chip"], "esp32", "learnt from the image it chose");
    assert_eq!(d["sha256"], fw2["sha256"]);
    app.stop().await;
}

#[tokio::test]
async fn esp32fota_device_specific_deployment_replaces_the_project_entry() {
    let app = TestApp::start().await;
    let q = format!("?id={}", efuse_id());
    manifest(&app, &q).await;
    let v2 = app_image(Chip::Esp32, "blink", "2.0.0", 30_000);
    let v3 = app_image(Chip::Esp32, "blink", "3.0.0-rc1", 30_000);
    let fw2 = app.upload_ok("blink.bin", v2).await;
    let fw3 = app.upload_ok("blink.bin", v3).await;
    app.deploy(json!({"firmware_id": fw3["id"], "devices": [MAC]}))
        .await;
    app.deploy(json!({"firmware_id": fw2["id"]})).await;
    let m = manifest(&app, &q).await;
    assert_eq!(m.as_array().unwrap().len(), 1, "one entry per project: {m}");
    assert_eq!(
        m[0]["version"], "3.0.0-rc1",
        "the device's own deployment wins"
    );
    assert_eq!(manifest(&app, "").await[0]["version"], "2.0.0");

    let r = esp_get(&app, "/ota/esp32fota.json?id=18446744073709551615").await;
    assert_eq!(r.status(), 400, "not a 48-bit efuse MAC");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_device_id");
    app.stop().await;
}

/// A device that asks again the moment it has the last byte (no reboot delay at all) still finds
/// its attempt `installing` and is confirmed: the end of a counted download is recorded before
/// the last bytes are handed to the socket.
#[tokio::test]
async fn a_device_asking_right_after_the_last_byte_is_confirmed() {
    let app = TestApp::start().await;
    let mut events = Events::open(&app).await;
    let q = format!("?id={}", efuse_id());
    for round in 0..5 {
        let version = format!("2.0.{round}");
        let image = app_image(Chip::Esp32, "blink", &version, 150_000);
        let fw = app.upload_ok("blink.bin", image.clone()).await;
        app.deploy(json!({"firmware_id": fw["id"]})).await;
        let m = manifest(&app, &q).await;
        assert_eq!(m[0]["version"], version.as_str());
        let url = m[0]["url"].as_str().unwrap().to_string();
        let path = url.split_once(&app.addr.to_string()).unwrap().1.to_string();
        let r = esp_get(&app, &path).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), image.as_slice());
        // No wait for the `installing` event: straight back to the manifest.
        manifest(&app, &q).await;
        let history = app
            .get_json(&format!("/api/v1/devices/{MAC}/updates"))
            .await;
        let latest = &history.as_array().unwrap()[0];
        assert_eq!(latest["version"], version.as_str(), "{history}");
        assert_eq!(
            latest["state"], "done",
            "round {round}: the immediate request confirms: {latest}"
        );
        events
            .wait_for(|n, v| n == "update" && v["update"]["state"] == "done")
            .await;
    }
    app.stop().await;
}

/// esp32FOTA reports nothing: an attempt is taken as installed when the device asks again after
/// the whole image was sent. If the last bytes never reached it (the connection or the server died
/// after they were handed to the socket), it is still on its old image: the manifest keeps listing
/// the image (the library ignores an entry that is not newer than what it runs), and fetching it
/// again turns the inferred `done` into `failed` (`not_installed`), puts back what the device ran,
/// and opens a new attempt, which the next manifest confirms.
#[tokio::test]
async fn a_device_that_fetches_its_installed_image_again_did_not_install_it() {
    let app = TestApp::start().await;
    let q = format!("?id={}", efuse_id());
    manifest(&app, &q).await;
    let image = app_image(Chip::Esp32, "blink", "2.0.0", 120_000);
    let fw = app.upload_ok("blink.bin", image.clone()).await;
    let dep = app.deploy(json!({"firmware_id": fw["id"]})).await;
    let sha = fw["sha256"].as_str().unwrap();
    let path = format!("/ota/firmware/{MAC}/{sha}");

    let r = esp_get(&app, &path).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), image.as_slice());
    // It asks again: taken as rebooted into 2.0.0. The entry stays listed.
    let m = manifest(&app, &q).await;
    assert_eq!(m[0]["version"], "2.0.0", "{m}");
    let d = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(d["sha256"], sha);
    let history = app
        .get_json(&format!("/api/v1/devices/{MAC}/updates"))
        .await;
    assert_eq!(history[0]["state"], "done", "{history}");
    let first = history[0]["id"].clone();

    // But it never got the image whole: it fetches it again.
    let r = esp_get(&app, &path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), image.as_slice());
    let history = app
        .get_json(&format!("/api/v1/devices/{MAC}/updates"))
        .await;
    let list = history.as_array().unwrap();
    assert_eq!(list.len(), 2, "{history}");
    assert_eq!(list[1]["id"], first);
    assert_eq!(list[1]["state"], "failed", "{history}");
    assert_eq!(list[1]["failure"], "not_installed", "{history}");
    assert_eq!(list[0]["state"], "installing", "{history}");
    assert_eq!(list[0]["sha256"], sha);

    manifest(&app, &q).await;
    let history = app
        .get_json(&format!("/api/v1/devices/{MAC}/updates"))
        .await;
    assert_eq!(history[0]["state"], "done", "{history}");
    let d = app.get_json(&format!("/api/v1/devices/{MAC}")).await;
    assert_eq!(d["sha256"], sha);
    assert_eq!(d["version"], "2.0.0");
    let dep = app
        .get_json(&format!("/api/v1/deployments/{}", dep["id"]))
        .await;
    assert_eq!(dep["deployment"]["tally"]["done"], 1, "{dep}");
    assert_eq!(dep["deployment"]["tally"]["failed"], 0, "{dep}");
    app.stop().await;
}
