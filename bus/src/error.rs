//! The one error type of the event log.

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
}
