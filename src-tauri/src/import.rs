//! Importing local files: the one path a native drop, the "Add firmware…" dialog and the
//! `import_paths` command all take. Each file goes through [`otafleet_core::Fleet::import_path`]
//! (which inspects, rejects or stores it); this module only turns outcomes into per-file
//! [`ImportResult`]s and tells the webview about each one.

use std::path::PathBuf;

use otafleet_core::firmware::{Firmware, ImportSource};
use otafleet_core::Fleet;
use serde::Serialize;
use tauri::{Emitter, Manager, Runtime};

use crate::error::{DesktopError, ErrorBody};
use crate::events::IMPORT_RESULT;

/// What happened to one file. On the wire (command replies and [`IMPORT_RESULT`] events):
/// `{path, ok: true, created, firmware}` or `{path, ok: false, error: {code, message}}`, the shape
/// the UI's `NativeImportResult` expects.
#[derive(Debug, Clone)]
pub enum ImportResult {
    /// In the library now; `firmware` carries what was detected (chip, project, version, ...).
    /// `created` is false when the same bytes were already there.
    Accepted {
        path: String,
        created: bool,
        firmware: Box<Firmware>,
    },
    /// Refused; `error.code` is the core's code (`bootloader`, `partition_table`, `too_large`, ...).
    Rejected { path: String, error: ErrorBody },
}

impl Serialize for ImportResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            path: &'a str,
            ok: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            created: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            firmware: Option<&'a Firmware>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<&'a ErrorBody>,
        }
        match self {
            Self::Accepted {
                path,
                created,
                firmware,
            } => Wire {
                path,
                ok: true,
                created: Some(*created),
                firmware: Some(firmware),
                error: None,
            },
            Self::Rejected { path, error } => Wire {
                path,
                ok: false,
                created: None,
                firmware: None,
                error: Some(error),
            },
        }
        .serialize(s)
    }
}

/// Import every path, in order; one result per path, never an early stop.
pub async fn import_paths(fleet: &Fleet, paths: &[PathBuf]) -> Vec<ImportResult> {
    let mut results = Vec::with_capacity(paths.len());
    for path in paths {
        let shown = path.display().to_string();
        results.push(
            match fleet
                .import_path(path, None, None, ImportSource::Path)
                .await
            {
                Ok(out) => ImportResult::Accepted {
                    path: shown,
                    created: out.created,
                    firmware: Box::new(out.firmware),
                },
                Err(e) => ImportResult::Rejected {
                    path: shown,
                    error: ErrorBody::from(&DesktopError::from(e)),
                },
            },
        );
    }
    results
}

/// [`import_paths`] on the app's fleet, emitting one [`IMPORT_RESULT`] event per file so the
/// window shows results however the import started (drop, dialog, command).
pub async fn import_and_report<R: Runtime>(
    app: &tauri::AppHandle<R>,
    paths: &[PathBuf],
) -> Vec<ImportResult> {
    let fleet = app.state::<crate::Desktop>().fleet.clone();
    let results = import_paths(&fleet, paths).await;
    for r in &results {
        if let Err(e) = app.emit(IMPORT_RESULT, r) {
            tracing::warn!(error = %e, "cannot tell the window about an import");
        }
    }
    results
}
