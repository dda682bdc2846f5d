//! The core's one error type. Each variant carries a stable machine code ([`CoreError::code`]) so
//! that the HTTP layer and the UI branch on codes, never on message text, and a message written for
//! the person who has to act on it.

use otafleet_image::RejectReason;

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A named thing (device, firmware, update, deployment) does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// A field of a request failed validation; the message says what is wrong and what is allowed.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The uploaded file is not a flashable application image.
    #[error("{0}")]
    Rejected(#[from] RejectReason),
    /// The uploaded file exceeds the configured size limit.
    #[error("the file is larger than the limit of {limit} bytes; raise --max-image-size if this image is really meant for OTA")]
    TooLarge { limit: u64 },
    /// The request conflicts with the current state (e.g. deleting a deployed image).
    #[error("{message}")]
    Conflict { message: String },
    /// A device's progress report that would move its update backwards or reopen a finished one
    /// (`update_finished`, `update_moved_on`): refused, nothing changed.
    #[error("{message}")]
    StaleReport { code: &'static str, message: String },
    /// A device presented no token, or the wrong one.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
}

impl CoreError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
        }
    }

    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Invalid { code, .. } => code,
            Self::Rejected(reason) => reason.code(),
            Self::TooLarge { .. } => "too_large",
            Self::Conflict { .. } => "conflict",
            Self::Unauthorized { code, .. } => code,
            Self::StaleReport { code, .. } => code,
            Self::Db(_) | Self::Migrate(_) | Self::Io(_) => "internal",
        }
    }

    /// True for failures of the machine (database, disk), not of the request.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Db(_) | Self::Migrate(_) | Self::Io(_))
    }
}
