//! The event log's own metrics, all declared here, registered in the default registry.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGaugeVec, register_int_counter_vec, register_int_gauge_vec};

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
