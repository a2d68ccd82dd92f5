//! The one error type of the event log.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("embedded log at {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("embedded log: {0}")]
    Embedded(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("kafka: creating topic {topic}: {message}")]
    CreateTopic { topic: String, message: String },
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error(
        "consumer group {0:?} already has a member in this process (the embedded log has one member per group)"
    )]
    GroupBusy(String),
    #[error("the event log is closed")]
    Closed,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The Kafka backend's disk spool is full: nothing of the publish was acknowledged.
    /// `log_available` is false while the brokers do not acknowledge (HTTP collectors
    /// answer 503), true while they do and the spool is still draining (429).
    #[error(
        "{}: the disk spool holds {spooled_bytes} of {max_bytes} bytes; retry in {}s",
        if *log_available { "the event log is catching up" } else { "the event log is unavailable" },
        retry_after.as_secs()
    )]
    Backpressure {
        spooled_bytes: u64,
        max_bytes: u64,
        log_available: bool,
        retry_after: Duration,
    },
}

impl BusError {
    /// For a refusal that clears by itself, how long a client should wait before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BusError::Backpressure { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether this is [`BusError::Backpressure`].
    pub fn is_backpressure(&self) -> bool {
        matches!(self, BusError::Backpressure { .. })
    }
}
