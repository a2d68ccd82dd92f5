//! The one error type of this crate: why a record could not be decoded.

/// Why a record was rejected. Every variant names what is wrong and where; the
/// [`DecodeError::code`] is a short, stable label for metrics and dead-letter headers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("record is not valid JSON: {0}")]
    Json(String),
    #[error("unknown record type {0:?}")]
    UnknownType(String),
    #[error("{kind} version {version} is newer than this build reads (up to {current})")]
    NewerVersion {
        kind: &'static str,
        version: u32,
        current: u32,
    },
    #[error("{kind} version {version} does not exist (versions start at 1)")]
    BadVersion { kind: &'static str, version: u32 },
    #[error("{kind} payload: {message}")]
    Payload { kind: &'static str, message: String },
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
}

impl DecodeError {
    /// A short stable label (`json`, `unknown_type`, `newer_version`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Json(_) => "json",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::NewerVersion { .. } => "newer_version",
            DecodeError::BadVersion { .. } => "bad_version",
            DecodeError::Payload { .. } => "payload",
            DecodeError::Invalid { .. } => "invalid",
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
