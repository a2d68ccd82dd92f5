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
            // The disk spool is full while Kafka acknowledges again and it drains: the
            // client is sending faster than the log catches up.
            IngestError::Unavailable(argus_bus::BusError::Backpressure {
                log_available: true,
                ..
            }) => StatusCode::TOO_MANY_REQUESTS,
            // Everything else from the log, a full spool while Kafka is unavailable and
            // a full disk under the embedded log included.
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut resp = (
            status,
            [("content-type", "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response();
        if let IngestError::Unavailable(e) = &self
            && let Some(d) = e.retry_after()
        {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn full(log_available: bool) -> Response {
        IngestError::Unavailable(argus_bus::BusError::Backpressure {
            spooled_bytes: 10,
            max_bytes: 10,
            log_available,
            retry_after: Duration::from_millis(2500),
        })
        .into_response()
    }

    #[test]
    fn full_spool_answers_503_or_429_with_retry_after() {
        let r = full(false);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "3");
        let r = full(true);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "3");
        let r = IngestError::Unavailable(argus_bus::BusError::Closed).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().get("retry-after").is_none());
    }
}
