//! Native drag-and-drop: files dragged from the file manager onto the window. Tauri reports the
//! drag as window events with real paths; this adapter shows/hides the drop overlay and hands
//! dropped paths to [`crate::import::import_and_report`], the same code the commands use.

use std::path::PathBuf;

use tauri::{DragDropEvent, Emitter, Manager, Runtime, Window, WindowEvent};

use crate::events::{DropOverlay, DROP_OVERLAY};

/// Registered with `Builder::on_window_event`.
pub fn on_window_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if let WindowEvent::DragDrop(drag) = event {
        on_drag_drop(window.app_handle(), drag);
    }
}

/// The drag-and-drop handler proper, callable with any app handle (tests use the mock runtime).
/// Returns the import task for a drop so callers may wait for it.
pub fn on_drag_drop<R: Runtime>(
    app: &tauri::AppHandle<R>,
    drag: &DragDropEvent,
) -> Option<tauri::async_runtime::JoinHandle<Vec<crate::import::ImportResult>>> {
    let (active, kind, paths): (bool, &'static str, &[PathBuf]) = match drag {
        DragDropEvent::Enter { paths, .. } => (true, "enter", paths),
        DragDropEvent::Over { .. } => (true, "over", &[]),
        DragDropEvent::Drop { paths, .. } => (false, "drop", paths),
        DragDropEvent::Leave => (false, "leave", &[]),
        _ => return None,
    };
    let overlay = DropOverlay {
        active,
        kind,
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
    };
    if let Err(e) = app.emit(DROP_OVERLAY, overlay) {
        tracing::warn!(error = %e, "cannot update the drop overlay");
    }
    if kind != "drop" || paths.is_empty() {
        return None;
    }
    let app = app.clone();
    let paths = paths.to_vec();
    Some(tauri::async_runtime::spawn(async move {
        crate::import::import_and_report(&app, &paths).await
    }))
}
