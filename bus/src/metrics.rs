//! The event log's own metrics, all declared here, registered in the default registry.

use std::sync::LazyLock;

use prometheus::{
    IntCounterVec, IntGauge, IntGaugeVec, register_int_counter_vec, register_int_gauge,
    register_int_gauge_vec,
};

pub static PRODUCED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_records_produced_total",
        "Records written to the event log.",
        &["backend", "topic"]
    )
    .expect("metric registers")
});

pub static PRODUCE_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_produce_errors_total",
        "Records the event log refused or failed to make durable.",
        &["backend", "topic"]
    )
    .expect("metric registers")
});

pub static CONSUMED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_records_consumed_total",
        "Records delivered to consumer groups.",
        &["backend", "topic", "group"]
    )
    .expect("metric registers")
});

pub static COMMITS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_commits_total",
        "Offset commits by outcome.",
        &["backend", "group", "outcome"]
    )
    .expect("metric registers")
});

pub static CONSUMER_LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "argus_bus_consumer_lag_records",
        "Records written but not yet committed by a consumer group.",
        &["backend", "group"]
    )
    .expect("metric registers")
});

pub static DEAD_LETTERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_dead_letter_records_total",
        "Records a consumer could not decode, sent to the dead-letter topic, by reason code.",
        &["topic", "group", "reason"]
    )
    .expect("metric registers")
});

pub static RETENTION_DELETED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_retention_deleted_records_total",
        "Records the embedded log removed under its retention limits.",
        &["topic"]
    )
    .expect("metric registers")
});

pub static SPOOL_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "argus_bus_spool_bytes",
        "Bytes of records in the Kafka backend's disk spool (as counted against max_bytes)."
    )
    .expect("metric registers")
});

pub static SPOOL_RECORDS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "argus_bus_spool_records",
        "Records in the Kafka backend's disk spool, waiting for the brokers."
    )
    .expect("metric registers")
});

pub static SPOOLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_spooled_records_total",
        "Published records written to the disk spool instead of Kafka.",
        &["topic"]
    )
    .expect("metric registers")
});

pub static DRAINED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_spool_drained_records_total",
        "Spooled records Kafka acknowledged and the spool removed.",
        &["topic"]
    )
    .expect("metric registers")
});

pub static SPOOL_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_spool_refused_records_total",
        "Published records refused because the disk spool was full.",
        &["topic"]
    )
    .expect("metric registers")
});

pub static SPOOL_DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_bus_spool_dropped_records_total",
        "Spooled records Kafka rejected for good (e.g. too large), removed with an error log.",
        &["topic", "reason"]
    )
    .expect("metric registers")
});
