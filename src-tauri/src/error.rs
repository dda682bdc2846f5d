//! The shell's one error type. Every command fails with it, and it serializes as
//! `{"code": "...", "message": "..."}` so the UI branches on `code` and shows `message`, never
//! matching text. Core errors keep the core's own codes (`bootloader`, `too_large`, ...).

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    #[error(transparent)]
    Core(#[from] otafleet_core::CoreError),
    #[error(transparent)]
    Tauri(#[from] tauri::Error),
    /// The native file dialog could not be shown or returned something that is not a path.
    #[error("the file dialog failed: {0}")]
    Dialog(String),
}

impl DesktopError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Core(e) => e.code(),
            Self::Tauri(_) => "shell",
            Self::Dialog(_) => "dialog",
        }
    }
}

/// The wire form of an error: what commands reply and what import-result events carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl From<&DesktopError> for ErrorBody {
    fn from(e: &DesktopError) -> Self {
        Self {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

impl Serialize for DesktopError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ErrorBody::from(self).serialize(s)
    }
}
