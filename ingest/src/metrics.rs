//! The collectors' own metrics, all declared here.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, register_int_counter_vec};

pub static RECEIVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_records_received_total",
        "Records accepted by a collector and written to the event log.",
        &["collector", "type"]
    )
    .expect("metric registers")
});

pub static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_rejected_total",
        "Requests or records a collector refused, by reason.",
        &["collector", "reason"]
    )
    .expect("metric registers")
});

pub static SAMPLES_RECEIVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_samples_received_total",
        "Metric samples accepted by a collector and written to the event log (a record of \
         type metric_samples carries one or more).",
        &["collector"]
    )
    .expect("metric registers")
});
