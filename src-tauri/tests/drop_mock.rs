//! The shell on Tauri's mock runtime (no display, no WebKit): the whole `run_app` setup starts the
//! embedded server, and a drop of two files (one app image, one bootloader) yields one accepted
//! and one rejected result, both through the native drop handler and through the `import_paths`
//! command the UI invokes, after which the library lists the image.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Parser;
use otafleet_desktop::events::{DROP_OVERLAY, IMPORT_RESULT};
use otafleet_desktop::{Desktop, DesktopArgs};
use otafleet_image::{synth, Chip};
use serde_json::{json, Value};
use tauri::test::{
    get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY,
};
use tauri::{DragDropEvent, Listener, Manager, PhysicalPosition};

fn start(data_dir: &Path) -> tauri::App<MockRuntime> {
    let args = DesktopArgs::try_parse_from([
        "otafleet-desktop".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--no-mdns".as_ref(),
        "--https-port".as_ref(),
        "off".as_ref(),
        "--mqtt".as_ref(),
        "off".as_ref(),
        "--admin-token".as_ref(),
        "mock-token".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ])
    .expect("the desktop takes the same flags as `otafleet serve`");
    let mut app = otafleet_desktop::run_app(mock_builder(), args.serve)
        .build(mock_context(noop_assets()))
        .expect("the app builds on the mock runtime");
    // `setup` (server start, window) runs with the first turn of the event loop.
    #[allow(deprecated)]
    app.run_iteration(|_, _| {});
    assert!(
        app.try_state::<Desktop>().is_some(),
        "setup started the embedded server"
    );
    app
}

/// One valid ESP32-S3 app image and one bootloader, written next to each other.
fn two_files(dir: &Path) -> (PathBuf, PathBuf) {
    let app = dir.join("blink.bin");
    let boot = dir.join("bootloader.bin");
    std::fs::write(
        &app,
        synth::AppImage::new(Chip::Esp32s3)
            .project("blink")
            .version("1.2.3")
            .payload_len(20_000)
            .build(),
    )
    .unwrap();
    std::fs::write(&boot, synth::bootloader(Chip::Esp32s3)).unwrap();
    (app, boot)
}

fn check_results(results: &Value) {
    let results = results.as_array().expect("one result per file");
    assert_eq!(
        results.len(),
        2,
        "one result per dropped file: {results:#?}"
    );
    let ok = &results[0];
    assert_eq!(ok["ok"], true, "the app image is accepted: {ok:#}");
    assert_eq!(ok["created"], true);
    assert_eq!(ok["firmware"]["chip"], "esp32s3");
    assert_eq!(ok["firmware"]["project"], "blink");
    assert_eq!(ok["firmware"]["version"], "1.2.3");
    let bad = &results[1];
    assert_eq!(bad["ok"], false, "a bootloader is refused: {bad:#}");
    assert_eq!(
        bad["error"]["code"], "bootloader",
        "the UI branches on the code"
    );
    assert!(
        bad.get("firmware").is_none(),
        "a rejection carries no firmware"
    );
    assert!(!bad["error"]["message"].as_str().unwrap().is_empty());
}

fn library(app: &tauri::App<MockRuntime>) -> Vec<(Option<String>, Option<String>)> {
    let fleet = app.state::<Desktop>().fleet.clone();
    tauri::async_runtime::block_on(fleet.firmware_list())
        .unwrap()
        .into_iter()
        .map(|f| (f.project, f.version))
        .collect()
}

#[test]
fn native_drop_of_an_app_and_a_bootloader_imports_only_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(&dir.path().join("data"));
    let (image, boot) = two_files(dir.path());

    let seen = Arc::new(Mutex::new(Vec::<(String, Value)>::new()));
    for name in [DROP_OVERLAY, IMPORT_RESULT] {
        let seen = seen.clone();
        app.listen_any(name, move |e| {
            seen.lock()
                .unwrap()
                .push((name.to_string(), serde_json::from_str(e.payload()).unwrap()));
        });
    }
    let at = PhysicalPosition::new(10.0, 10.0);
    let handle = app.handle();
    otafleet_desktop::drop::on_drag_drop(
        handle,
        &DragDropEvent::Enter {
            paths: vec![image.clone(), boot.clone()],
            position: at,
        },
    );
    let task = otafleet_desktop::drop::on_drag_drop(
        handle,
        &DragDropEvent::Drop {
            paths: vec![image, boot],
            position: at,
        },
    )
    .expect("a drop with paths starts an import");
    let results = tauri::async_runtime::block_on(task).unwrap();
    check_results(&serde_json::to_value(&results).unwrap());

    let seen = seen.lock().unwrap().clone();
    let overlay: Vec<_> = seen.iter().filter(|(n, _)| n == DROP_OVERLAY).collect();
    assert_eq!(
        overlay.len(),
        2,
        "enter and drop move the overlay: {seen:#?}"
    );
    assert_eq!(overlay[0].1["active"], true);
    assert_eq!(overlay[1].1["active"], false, "the overlay hides on drop");
    let per_file: Vec<_> = seen.iter().filter(|(n, _)| n == IMPORT_RESULT).collect();
    assert_eq!(
        per_file.len(),
        2,
        "one import-result event per file: {seen:#?}"
    );

    assert_eq!(
        library(&app),
        vec![(Some("blink".into()), Some("1.2.3".into()))],
        "the library lists the accepted image and nothing else"
    );
    app.state::<Desktop>().shutdown();
}

#[test]
fn import_paths_command_gives_per_file_results_and_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(&dir.path().join("data"));
    let (image, boot) = two_files(dir.path());
    let webview = app
        .get_webview_window("main")
        .expect("setup opens the main window");

    let reply = get_ipc_response(
        &webview,
        tauri::webview::InvokeRequest {
            cmd: "import_paths".into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            // The origin the webview has on Linux and macOS (local: app commands allowed).
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(json!({ "paths": [image, boot] })),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .expect("import_paths never fails as a whole; rejections are per file");
    check_results(&reply.deserialize::<Value>().unwrap());
    assert_eq!(library(&app).len(), 1);

    // The embedded server is the real one, reachable on the injected base URL.
    let base = app.state::<Desktop>().connection.base_url.clone();
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).expect("the embedded server listens");
    write!(s, "GET /api/v1/health HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.") && answer[..12].ends_with(" 200"),
        "health: {answer}"
    );
    app.state::<Desktop>().shutdown();
}
