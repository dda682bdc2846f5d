//! The commands the UI may `invoke`. Each is a one-line adapter; the work is in [`crate::import`]
//! and in the core.

use std::path::PathBuf;

use tauri::{AppHandle, Runtime, State};
use tauri_plugin_dialog::DialogExt;

use crate::error::DesktopError;
use crate::import::{import_and_report, ImportResult};
use crate::{Connection, Desktop};

/// `invoke('import_paths', {paths})`: import local files by path (what a native drop does).
#[tauri::command]
pub async fn import_paths<R: Runtime>(
    app: AppHandle<R>,
    paths: Vec<PathBuf>,
) -> Result<Vec<ImportResult>, DesktopError> {
    Ok(import_and_report(&app, &paths).await)
}

/// `invoke('pick_firmware')`: the "Add firmware…" button. Opens the native file dialog
/// (`.bin` filter, several files allowed) and imports the chosen files; cancelling gives `[]`.
#[tauri::command]
pub async fn pick_firmware<R: Runtime>(
    app: AppHandle<R>,
) -> Result<Vec<ImportResult>, DesktopError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title("Add firmware")
        .add_filter("ESP firmware image", &["bin"])
        .pick_files(move |files| {
            let _ = tx.send(files);
        });
    let chosen = rx.await.map_err(|e| DesktopError::Dialog(e.to_string()))?;
    let paths = chosen
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            f.into_path()
                .map_err(|e| DesktopError::Dialog(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(import_and_report(&app, &paths).await)
}

/// `invoke('connection')`: the embedded server's URL and admin token (also injected as
/// `window.__OTAFLEET__`).
#[tauri::command]
pub fn connection(desktop: State<'_, Desktop>) -> Connection {
    desktop.connection.clone()
}
