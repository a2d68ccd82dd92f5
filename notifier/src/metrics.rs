//! The notifier's own metrics, all declared here (names follow Alertmanager's where it
//! has the same thing: `alertmanager_notifications_total` → `argus_notifier_notifications_total`).

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, register_histogram,
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
};

/// Alerts the dispatcher received from the alert store.
pub static ALERTS_RECEIVED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "argus_notifier_alerts_received_total",
        "Alert updates the dispatcher received (each routed to its groups)."
    )
    .expect("metric registers")
});

/// Aggregation groups that exist now.
pub static GROUPS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "argus_notifier_aggregation_groups",
        "Aggregation groups that exist now."
    )
    .expect("metric registers")
});

/// Delivery attempts by channel kind and outcome (sent, transient_failure,
/// permanent_failure).
pub static ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_notifier_notification_attempts_total",
        "Delivery attempts, by channel kind and outcome.",
        &["kind", "outcome"]
    )
    .expect("metric registers")
});

/// Notifications delivered, by channel kind.
pub static NOTIFICATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_notifier_notifications_total",
        "Notifications delivered, by channel kind.",
        &["kind"]
    )
    .expect("metric registers")
});

/// Notifications given up (permanent failure, or retries out of time), by channel kind.
pub static NOTIFICATIONS_FAILED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_notifier_notifications_failed_total",
        "Notifications given up (permanent failure or out of retry time), by channel kind.",
        &["kind"]
    )
    .expect("metric registers")
});

/// Flushes that sent nothing for a channel, by reason (dedup: nothing new since the
/// last notification; claimed: another instance sends it; muted: silenced, inhibited or
/// outside the route's time intervals).
pub static SKIPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "argus_notifier_notifications_skipped_total",
        "Flushes that sent nothing, by reason (dedup, claimed, muted).",
        &["reason"]
    )
    .expect("metric registers")
});

/// Time one delivery attempt took, seconds, by channel kind.
pub static ATTEMPT_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "argus_notifier_notification_latency_seconds",
        "Time one delivery attempt took, seconds, by channel kind.",
        &["kind"],
        prometheus::exponential_buckets(0.001, 4.0, 9).expect("buckets")
    )
    .expect("metric registers")
});

/// Time from an alert's arrival to its first delivery, seconds.
pub static FLUSH_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "argus_notifier_flush_seconds",
        "Time one aggregation group flush took (all channels), seconds.",
        prometheus::exponential_buckets(0.001, 4.0, 9).expect("buckets")
    )
    .expect("metric registers")
});

/// Records on `argus.notifications` that could not be used.
pub static BAD_RECORDS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "argus_notifier_bad_records_total",
        "Records on argus.notifications that could not be decoded or were of another kind."
    )
    .expect("metric registers")
});
