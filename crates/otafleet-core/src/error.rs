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
    /// The request would do something that needs the admin's explicit consent (`other_project`:
    /// another project's image on a device); nothing changed. 409.
    #[error("{message}")]
    NeedsConsent { code: &'static str, message: String },
    /// A device's progress report that would move its update backwards or reopen a finished one
    /// (`update_finished`, `update_moved_on`): refused, nothing changed.
    #[error("{message}")]
    StaleReport { code: &'static str, message: String },
    /// What was asked cannot be done for this thing as it is, and the message says why
    /// (`commands_unsupported`: a stock or mDNS-only device has no command channel;
    /// `command_finished`: cancelling a finished command; `too_many_commands`;
    /// `logs_unsupported`: a stock updater has no log channel; `project_exists`, `project_in_use`,
    /// `config_version_unknown`, `release_not_offered`: an ESP Admin device started an image it is
    /// not offered). 409; nothing changed.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// The caller is known, but its role or its token's scope does not allow this
    /// (`role_insufficient`, `token_scope`). 403; nothing changed.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A device presented no token, or the wrong one.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// The data directory's disk (or quota) is full: nothing of the request was kept. Freeing
    /// space is enough; the server needs no restart.
    #[error("the disk that holds otafleet's data ({what}) is full, so nothing of this request was saved; free some space there and try again")]
    DiskFull { what: &'static str },
    /// The data directory cannot be used as it is (another server holds it, or its database
    /// does not belong to its stored images).
    #[error("{message}")]
    DataDir { code: &'static str, message: String },
    /// The trust rules refuse this request for this device (`crate::trust`): a stock client for a
    /// token-enrolled device, a protocol the device is not expected to speak, enrolment closed.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The S3-compatible blob store (`--blob-url`) failed or refused, and the message says what
    /// to do: `blob_store_unusable` (at start: unreachable, no bucket, credentials refused),
    /// `blob_store_credentials` (none in the environment), `blob_store_failed` (a request
    /// failed), `blob_checksum_refused` (the store's SHA-256 check refused an upload's bytes:
    /// nothing was stored), `blob_missing` (a library image's object is gone),
    /// `blob_corrupt` (the store returned bytes that do not hash to the image's SHA-256: nothing
    /// was served). 502: the store behind otafleet failed, not the request.
    #[error("{message}")]
    BlobStore { code: &'static str, message: String },
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("storage error: {0}")]
    Io(std::io::Error),
}

/// SQLite's primary result code for a full disk or a database at its size limit.
const SQLITE_FULL: i32 = 13;

impl From<sqlx::Error> for CoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            let full = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c & 0xff == SQLITE_FULL);
            if full {
                tracing::warn!(error = %db, "database write refused: disk full");
                return Self::DiskFull { what: "database" };
            }
        }
        if let sqlx::Error::Io(io) = &e {
            if is_disk_full(io) {
                return Self::DiskFull { what: "database" };
            }
        }
        Self::Db(e)
    }
}

/// A migration that could not be written for want of room (a new organisation's database on a
/// full disk) is a full disk, not a broken schema.
impl From<sqlx::migrate::MigrateError> for CoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError;
        match e {
            MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
                match CoreError::from(inner) {
                    full @ CoreError::DiskFull { .. } => full,
                    CoreError::Db(inner) => Self::Migrate(MigrateError::Execute(inner)),
                    other => other,
                }
            }
            other => Self::Migrate(other),
        }
    }
}

impl From<std::io::Error> for CoreError {
    fn from(e: std::io::Error) -> Self {
        if is_disk_full(&e) {
            tracing::warn!(error = %e, "write refused: disk full");
            return Self::DiskFull {
                what: "firmware storage",
            };
        }
        Self::Io(e)
    }
}

/// ENOSPC or EDQUOT: no room left for the write.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28) | Some(122))
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
            Self::Unauthorized { code, .. } | Self::Refused { code, .. } => code,
            Self::Forbidden { code, .. } => code,
            Self::DiskFull { .. } => "disk_full",
            Self::DataDir { code, .. } => code,
            Self::StaleReport { code, .. } | Self::NeedsConsent { code, .. } => code,
            Self::Unavailable { code, .. } => code,
            Self::BlobStore { code, .. } => code,
            Self::Db(_) | Self::Migrate(_) | Self::Io(_) => "internal",
        }
    }

    /// True for failures of the machine (database, disk), not of the request.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Db(_)
                | Self::Migrate(_)
                | Self::Io(_)
                | Self::DiskFull { .. }
                | Self::DataDir { .. }
                | Self::BlobStore { .. }
        )
    }
}
