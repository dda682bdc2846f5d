//! The one place where errors become HTTP responses: `{"error": {"code", "message"}}` with a status
//! that fits. Internal failures are logged in full and answered with a generic 500, so no database
//! detail leaks to a client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use otafleet_core::CoreError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A request the HTTP layer itself refuses (malformed JSON, bad multipart, missing parameter).
    #[error("{message}")]
    BadRequest {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { status, .. } => *status,
            ApiError::Core(e) => match e {
                CoreError::NotFound { .. } => StatusCode::NOT_FOUND,
                CoreError::Invalid { .. } | CoreError::Rejected(_) | CoreError::TooLarge { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                CoreError::Conflict { .. }
                | CoreError::StaleReport { .. }
                | CoreError::NeedsConsent { .. }
                | CoreError::Unavailable { .. } => StatusCode::CONFLICT,
                CoreError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
                CoreError::Refused { .. } | CoreError::Forbidden { .. } => StatusCode::FORBIDDEN,
                CoreError::DiskFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
                CoreError::BlobStore { .. } => StatusCode::BAD_GATEWAY,
                CoreError::Db(_)
                | CoreError::Migrate(_)
                | CoreError::Io(_)
                | CoreError::DataDir { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Core(e) => e.code(),
        }
    }
}

/// The error body, as documented in the OpenAPI description.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (e.g. `invalid_mac`, `bootloader`, `token_mismatch`).
    pub code: String,
    /// What went wrong and what to do, for a person.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A full disk and a failing blob store are told as they are: nothing secret is in them
        // (no credentials), and the person must know what to do.
        let disk_full = matches!(
            self,
            ApiError::Core(CoreError::DiskFull { .. } | CoreError::BlobStore { .. })
        );
        let message = if status.is_server_error() && !disk_full {
            tracing::error!(error = %self, "request failed");
            "otafleet hit an internal error; the server log has the details".to_string()
        } else if disk_full {
            tracing::error!(error = %self, "request failed: storage");
            self.to_string()
        } else {
            tracing::info!(status = status.as_u16(), code = self.code(), message = %self, "request refused");
            self.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message,
            },
        };
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
