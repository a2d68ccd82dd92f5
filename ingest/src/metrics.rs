//! The collectors' own metrics, all declared here.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGaugeVec, register_int_counter_vec, register_int_gauge_vec};

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

pub static FINDINGS_DUPLICATES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_findings_duplicates_total",
        "Security findings a receiver did not re-publish because it had published the \
         identical finding within its re-report window (per process).",
        &["collector"]
    )
    .expect("metric registers")
});

pub static NODE_PROBLEMS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_node_problems_total",
        "Node problem events a node-problem monitor emitted (temporary events and condition \
         changes), by monitor and reason; node-problem-detector's problem_counter.",
        &["monitor", "reason"]
    )
    .expect("metric registers")
});

pub static NODE_PROBLEM_CONDITION: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "argus_ingest_node_problem_condition",
        "1 while a node condition holds with this reason, else 0; node-problem-detector's \
         problem_gauge.",
        &["monitor", "type", "reason"]
    )
    .expect("metric registers")
});

pub static NODE_LOG_RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_node_log_records_total",
        "Kernel and system log records a node-problem log monitor matched its rules against.",
        &["monitor"]
    )
    .expect("metric registers")
});

pub static SYSLOG_MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_syslog_messages_total",
        "Syslog messages received, by transport (udp, tcp) and format (rfc5424, rfc3164, \
         malformed); malformed ones are kept as entries too.",
        &["transport", "format"]
    )
    .expect("metric registers")
});

pub static SYSLOG_DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_syslog_dropped_total",
        "Syslog messages received but not written to the event log: queue_full (UDP while \
         the queue to an unavailable event log is full), shutdown (still unpublished when \
         the shutdown grace period ended).",
        &["reason"]
    )
    .expect("metric registers")
});

pub static SYSLOG_TRUNCATED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_syslog_truncated_total",
        "Syslog messages longer than max_message_bytes, kept truncated.",
        &["transport"]
    )
    .expect("metric registers")
});

pub static SYSLOG_PUBLISH_FAILURES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_ingest_syslog_publish_failures_total",
        "Failed attempts to publish a batch of syslog entries (the batch is kept and retried)."
    )
    .expect("metric registers")
});

pub static SYSLOG_CONNECTIONS: LazyLock<prometheus::IntGauge> = LazyLock::new(|| {
    prometheus::register_int_gauge!(
        "argus_ingest_syslog_connections",
        "Open syslog TCP connections."
    )
    .expect("metric registers")
});

pub static TAIL_LINES_READ: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_ingest_tail_lines_read_total",
        "Lines read from tailed files (before multiline joining)."
    )
    .expect("metric registers")
});

pub static TAIL_BYTES_READ: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_ingest_tail_bytes_read_total",
        "Bytes read from tailed files."
    )
    .expect("metric registers")
});

pub static TAIL_FILES_WATCHED: LazyLock<prometheus::IntGauge> = LazyLock::new(|| {
    prometheus::register_int_gauge!(
        "argus_ingest_tail_files_watched",
        "Files the tailer follows, including rotated or deleted ones it is finishing."
    )
    .expect("metric registers")
});

pub static TAIL_ROTATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_tail_rotations_total",
        "Rotations (a path now names another file: rotation) and truncations \
         (copytruncate: a file shorter than what was read) the tailer detected.",
        &["kind"]
    )
    .expect("metric registers")
});

pub static TAIL_TRUNCATED_LINES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_ingest_tail_truncated_lines_total",
        "Lines (or multiline entries) longer than max_line_bytes, kept truncated."
    )
    .expect("metric registers")
});

pub static TAIL_PUBLISH_FAILURES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_ingest_tail_publish_failures_total",
        "Failed attempts to publish a batch of tailed lines (the batch is kept and retried)."
    )
    .expect("metric registers")
});

pub static TAIL_CHECKPOINT_FAILURES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_ingest_tail_checkpoint_failures_total",
        "Failed writes of the tail positions file (retried at the next checkpoint; a \
         restart meanwhile repeats lines, never loses them)."
    )
    .expect("metric registers")
});

pub static SCRAPE_TARGETS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "argus_ingest_scrape_targets",
        "Targets the scraper scrapes now, by job (after relabeling).",
        &["job"]
    )
    .expect("metric registers")
});

pub static SCRAPES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_scrapes_total",
        "Scrapes by job and result: ok, or why the scrape failed (http_status, connect, \
         timeout, body_size_limit, encoding, parse, sample_limit, missing_name).",
        &["job", "result"]
    )
    .expect("metric registers")
});

pub static SCRAPE_INVALID_TARGETS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_scrape_invalid_targets_total",
        "Discovered targets refused after relabeling (no address, bad interval, \
         unsupported scheme), counted each time discovery changes.",
        &["job"]
    )
    .expect("metric registers")
});

pub static SCRAPE_SD_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_scrape_sd_failures_total",
        "Files of file_sd_configs that could not be read or parsed (their previous targets \
         are kept).",
        &["job"]
    )
    .expect("metric registers")
});

pub static SCRAPE_DROPPED_SAMPLES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_scrape_dropped_samples_total",
        "Scraped samples not written: duplicate (the same series twice in one scrape), \
         publish (the event log refused them until the next scrape was due).",
        &["reason"]
    )
    .expect("metric registers")
});

pub static SCRAPE_PUBLISH_FAILURES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_ingest_scrape_publish_failures_total",
        "Failed attempts to publish a scrape's samples (retried until the next scrape is due)."
    )
    .expect("metric registers")
});

pub static NODE_SOURCE_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_node_problem_source_errors_total",
        "Times a node-problem log source became unreadable (open or read failed: \
         open_failed, read_failed), lost records (kmsg_overrun), or was not run \
         (unsupported_plugin); counted once per episode, not per retry.",
        &["source", "reason"]
    )
    .expect("metric registers")
});

pub static NODE_SOURCE_READABLE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "argus_ingest_node_problem_source_readable",
        "1 while a node-problem log source (kernel log, filelog path) is open and read, \
         0 while it cannot be read and is retried.",
        &["source"]
    )
    .expect("metric registers")
});

pub static NODE_SOURCE_SKIPPED_LINES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_node_problem_skipped_lines_total",
        "Lines of a node-problem log source that no log format parses (not matched).",
        &["source"]
    )
    .expect("metric registers")
});

pub static NODE_SOURCE_ROTATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_node_problem_source_rotations_total",
        "Rotations (the path names another file) and truncations of a followed \
         node-problem log file.",
        &["source", "kind"]
    )
    .expect("metric registers")
});

pub static NODE_HEALTH_CHECKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_ingest_node_health_checks_total",
        "Node health check runs (kubelet, container_runtime, ntp) by result (healthy, \
         unhealthy).",
        &["check", "result"]
    )
    .expect("metric registers")
});

pub static NODE_PUBLISH_FAILURES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_ingest_node_problem_publish_failures_total",
        "Failed attempts to publish node events (the events are kept and retried)."
    )
    .expect("metric registers")
});
