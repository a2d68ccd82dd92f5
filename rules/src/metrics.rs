//! The rule engine's own metrics, all declared here.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGauge, register_int_counter_vec, register_int_gauge};

/// Samples the metric window refused, by reason (out_of_order, duplicate, too_old).
pub static WINDOW_SAMPLES_REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_rules_window_samples_rejected_total",
        "Samples the metric window refused, by reason (out_of_order: older than the series' \
         newest sample; duplicate: same timestamp, different value; too_old: outside retention).",
        &["reason"]
    )
    .expect("metric registers")
});

/// Series held by the metric window.
pub static WINDOW_SERIES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "argus_rules_window_series",
        "Series held by the metric window."
    )
    .expect("metric registers")
});

/// Samples held by the metric window.
pub static WINDOW_SAMPLES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "argus_rules_window_samples",
        "Samples held by the metric window."
    )
    .expect("metric registers")
});

/// Rule group evaluations, by outcome (`ok`: every rule succeeded; `error`: a rule
/// failed).
pub static GROUP_EVALUATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_rules_group_evaluations_total",
        "Rule group evaluations (one per group, tenant and tick), by outcome.",
        &["outcome"]
    )
    .expect("metric registers")
});

/// Time one group evaluation took (all tenants of one tick), seconds.
pub static GROUP_EVALUATION_SECONDS: LazyLock<prometheus::Histogram> = LazyLock::new(|| {
    prometheus::register_histogram!(
        "argus_rules_group_evaluation_seconds",
        "Time one rule group evaluation took, seconds.",
        prometheus::exponential_buckets(0.0005, 4.0, 10).expect("buckets")
    )
    .expect("metric registers")
});

/// Ticks skipped because an evaluation ran longer than the group's interval
/// (Prometheus' `prometheus_rule_group_iterations_missed_total`).
pub static GROUP_ITERATIONS_MISSED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_rules_group_iterations_missed_total",
        "Rule group ticks skipped because an evaluation was too slow."
    )
    .expect("metric registers")
});

/// Alert transitions published to the alerts topic, by the state entered.
pub static ALERT_TRANSITIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_rules_alert_transitions_total",
        "Alert transitions published to argus.alerts, by the state entered.",
        &["to"]
    )
    .expect("metric registers")
});

/// Recorded samples (recording rules, ALERTS, ALERTS_FOR_STATE, staleness markers)
/// published to the metrics topic.
pub static RECORDED_SAMPLES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_rules_recorded_samples_total",
        "Samples written by rules and published to argus.metrics."
    )
    .expect("metric registers")
});

/// Publishing an evaluation's output failed and is being retried.
pub static PUBLISH_RETRIES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "argus_rules_publish_retries_total",
        "Retries of publishing a rule evaluation's output to the event log."
    )
    .expect("metric registers")
});
