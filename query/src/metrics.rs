//! The query service's own metrics, all declared here.

use std::sync::LazyLock;

use prometheus::{HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec};

pub static QUERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_query_requests_total",
        "Log API requests answered, by endpoint and HTTP status.",
        &["endpoint", "status"]
    )
    .expect("metric registers")
});

pub static QUERY_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_query_errors_total",
        "Queries refused or failed, by reason (parse, invalid, bad_param, limit, store).",
        &["reason"]
    )
    .expect("metric registers")
});

pub static QUERY_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "argus_query_duration_seconds",
        "Time to answer a query, by query kind (log, metric) and store.",
        &["kind", "store"]
    )
    .expect("metric registers")
});

pub static LINES_PROCESSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_query_lines_processed_total",
        "Log lines read from the store by queries.",
        &["store"]
    )
    .expect("metric registers")
});

pub static WRITER_ROWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_query_writer_rows_total",
        "Rows the log writer stored, by source topic.",
        &["topic"]
    )
    .expect("metric registers")
});

pub static WRITER_SKIPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_query_writer_skipped_total",
        "Records the log writer did not store, by reason (already_stored: redelivered after \
         a crash between write and commit; unsupported: a payload that is not a log stream).",
        &["topic", "reason"]
    )
    .expect("metric registers")
});

pub static WRITER_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_query_writer_errors_total",
        "Failed store writes (retried), by store.",
        &["store"]
    )
    .expect("metric registers")
});

pub static WRITE_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "argus_query_store_write_duration_seconds",
        "Time of one atomic store write, by store.",
        &["store"]
    )
    .expect("metric registers")
});
