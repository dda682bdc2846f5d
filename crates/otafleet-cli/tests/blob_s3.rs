//! `otafleet serve --blob-url s3://…` against a real S3 server (`s3s-fs`, started here; without
//! it these print SKIPPED, and fail under `CI=true`): the round trip devices see (download,
//! Range → 206, ETag, through the local cache), and a `kill -9` between the blob being stored
//! and its row being written — nothing is listed after the restart, and the orphan object is
//! collected once past the grace period, not before.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

mod support;
use support::{serve_command, Server};

#[path = "../../otafleet-core/tests/support/s3s.rs"]
mod s3s;

const TOKEN: &str = "cli-blob-s3-token";

fn image(payload: usize) -> (Vec<u8>, String) {
    let image = otafleet_image::synth::AppImage::new(otafleet_image::Chip::Esp32)
        .project("blink")
        .version("1.0.0")
        .payload_len(payload)
        .build();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&image));
    (image, sha)
}

/// `otafleet serve` on `dir` with its images in `s3`'s bucket.
fn s3_serve(dir: &std::path::Path, s3: &s3s::S3Server, extra: &[&str]) -> Command {
    let url = s3.url();
    let mut args = vec!["--blob-url", &url];
    args.extend_from_slice(extra);
    let mut cmd = serve_command(dir, TOKEN, &args);
    cmd.env("AWS_ACCESS_KEY_ID", s3s::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", s3s::SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("OTAFLEET_FAILPOINT");
    cmd
}

async fn firmware_list(c: &reqwest::Client, base: &str) -> serde_json::Value {
    c.get(format!("{base}/api/v1/firmware"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Wait (up to `secs`) until `cond` holds.
fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// Two workers: the upload runs while this test blocks on the server's log lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_store_and_row_lists_nothing_and_the_orphan_is_collected_after_the_grace_period(
) {
    let Some(s3) = s3s::start("kill_9_between_store_and_row") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, sha) = image(300_000);

    // A debug build's fail point stops the import right after the store confirmed the object,
    // before the row: the process is killed there.
    let mut cmd = s3_serve(dir.path(), &s3, &[]);
    cmd.env("OTAFLEET_FAILPOINT", "blob-stored");
    let mut server = Server::spawn(cmd, Stdio::piped());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = server.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let c = reqwest::Client::new();
    let upload = tokio::spawn({
        let (c, base, image) = (c.clone(), server.base.clone(), image.clone());
        async move {
            c.post(format!("{base}/api/v1/firmware?filename=blink.bin"))
                .bearer_auth(TOKEN)
                .body(image)
                .send()
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!(
                "the import never reached the fail point (is this a debug build?); its log:\n{}",
                seen.join("\n")
            );
        };
        seen.push(line.clone());
        if line.contains("failpoint blob-stored") {
            assert!(line.contains(&sha), "{line}");
            break;
        }
    }
    let object = s3.object_file(&sha);
    let stored_at = std::fs::metadata(&object)
        .and_then(|m| m.modified())
        .expect("the object is in the bucket when the process dies");
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(server);
    let answer = upload.await.unwrap();
    assert!(
        answer.as_ref().map_or(true, |r| !r.status().is_success()),
        "no 2xx for an import whose row was never written: {answer:?}"
    );

    // Restart with a short grace period: nothing is listed or served...
    let grace = 3;
    let server = Server::spawn(
        s3_serve(dir.path(), &s3, &["--blob-gc-grace", &grace.to_string()]),
        Stdio::null(),
    );
    let list = firmware_list(&c, &server.base).await;
    assert_eq!(list, serde_json::json!([]), "nothing listed after the kill");
    let r = c
        .get(format!("{}/api/v1/device/firmware/{sha}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // ...and the orphan object goes once it is older than the grace period, not before.
    wait_until(60, "the orphan object collected", || !object.exists());
    let age = SystemTime::now().duration_since(stored_at).unwrap();
    assert!(
        age >= Duration::from_secs(grace) - Duration::from_secs(1),
        "collected {age:?} after it was stored, inside the grace period of {grace} s"
    );
    assert!(s3.object_files().is_empty(), "{:?}", s3.object_files());

    // The same upload, whole, works after all that.
    let r = c
        .post(format!(
            "{}/api/v1/firmware?filename=blink.bin",
            server.base
        ))
        .bearer_auth(TOKEN)
        .body(image)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(object.exists(), "stored in the bucket");
    server.stop(libc::SIGTERM);
}

#[tokio::test]
async fn devices_download_through_the_cache_with_ranges_and_a_delete_waits_for_the_collector() {
    let Some(s3) = s3s::start("download_through_the_cache") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, sha) = image(250_000);
    let server = Server::spawn(s3_serve(dir.path(), &s3, &[]), Stdio::null());
    let c = reqwest::Client::new();
    let r = c
        .post(format!(
            "{}/api/v1/firmware?filename=blink.bin",
            server.base
        ))
        .bearer_auth(TOKEN)
        .body(image.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(s3.object_file(&sha).exists(), "stored in the bucket");
    assert!(
        !dir.path().join("blobs/sha256").join(&sha[..2]).exists(),
        "not in the local store"
    );
    server.stop(libc::SIGTERM);

    // A restart with an empty cache: the first download fills it from the bucket.
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let server = Server::spawn(s3_serve(dir.path(), &s3, &[]), Stdio::null());
    let url = format!("{}/api/v1/device/firmware/{sha}", server.base);
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        image.len().to_string()
    );
    assert_eq!(r.headers()["etag"].to_str().unwrap(), format!("\"{sha}\""));
    assert_eq!(r.bytes().await.unwrap(), image);
    assert!(dir
        .path()
        .join("cache/sha256")
        .join(&sha[..2])
        .join(&sha[2..])
        .exists());
    let r = c
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 1000-1999/{}", image.len())
    );
    assert_eq!(r.bytes().await.unwrap(), image[1000..2000]);
    let r = c
        .get(&url)
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // Deleting the image: gone from the library and from downloads at once; the object stays
    // for the collector (grace period one hour by default).
    let r = c
        .delete(format!("{}/api/v1/firmware/{id}", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(c.get(&url).send().await.unwrap().status(), 404);
    assert!(s3.object_file(&sha).exists(), "kept until the grace period");
    server.stop(libc::SIGTERM);
}

#[test]
fn a_bad_blob_url_or_missing_credentials_stop_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_command(
        dir.path(),
        TOKEN,
        &["--blob-url", "s3://b?endpont=http://x"],
    )
    .stderr(Stdio::piped())
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown parameter \"endpont\""), "{err}");

    let out = serve_command(
        dir.path(),
        TOKEN,
        &["--blob-url", "s3://firmware?endpoint=http://127.0.0.1:9"],
    )
    .env_remove("AWS_ACCESS_KEY_ID")
    .env_remove("AWS_SECRET_ACCESS_KEY")
    .stderr(Stdio::piped())
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}
