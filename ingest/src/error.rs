//! The one error type of the collectors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request is malformed: nothing of it was written.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than a collector accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The event log refused or failed: nothing was acknowledged; the caller may retry.
    #[error("event log unavailable: {0}")]
    Unavailable(#[from] argus_bus::BusError),
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = match &self {
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (
            status,
            [("content-type", "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response()
    }
}
