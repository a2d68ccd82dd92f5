//! Topic names, and the defaults each is created with.

pub const METRICS: &str = "argus.metrics";
pub const LOGS: &str = "argus.logs";
pub const NODE_EVENTS: &str = "argus.node-events";
pub const FINDINGS: &str = "argus.findings";
pub const ALERTS: &str = "argus.alerts";
pub const SILENCES: &str = "argus.silences";
pub const NOTIFICATIONS: &str = "argus.notifications";
pub const AUDIT: &str = "argus.audit";
pub const DEAD_LETTER: &str = "argus.dead-letter";

/// Every topic Argus uses.
pub const ALL: [&str; 9] = [
    METRICS,
    LOGS,
    NODE_EVENTS,
    FINDINGS,
    ALERTS,
    SILENCES,
    NOTIFICATIONS,
    AUDIT,
    DEAD_LETTER,
];

/// Whether a topic keeps only the newest record per key (Kafka's `cleanup.policy=compact`).
pub fn is_compacted(topic: &str) -> bool {
    topic == SILENCES
}

/// Record headers Argus sets on dead-letter records.
pub mod headers {
    /// The topic the record was read from.
    pub const SOURCE_TOPIC: &str = "argus-source-topic";
    pub const SOURCE_PARTITION: &str = "argus-source-partition";
    pub const SOURCE_OFFSET: &str = "argus-source-offset";
    /// The consumer group that rejected it.
    pub const GROUP: &str = "argus-group";
    /// [`crate::DecodeError::code`] or another short code.
    pub const REASON_CODE: &str = "argus-reason-code";
    /// The full reason, for people.
    pub const REASON: &str = "argus-reason";
}
