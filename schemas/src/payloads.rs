//! The typed payloads carried by [`crate::Envelope`], one per record type.
//!
//! Field names are part of the wire format (golden fixtures under `schemas/tests/golden`
//! pin them). Adding an optional field is compatible; anything else needs a new version
//! of the type and an upgrade step in `envelope.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Labels, Timestamp};

/// Prometheus' staleness marker: a NaN with this exact bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One sample of a metric series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Unix milliseconds.
    pub timestamp_ms: i64,
    /// The value; NaN, +Inf, -Inf and the staleness marker are written as the strings
    /// `"NaN"`, `"+Inf"`, `"-Inf"` and `"StaleNaN"`.
    #[serde(with = "float_value")]
    #[schemars(with = "float_value::Schema")]
    pub value: f64,
}

/// Samples of one metric series. `labels` includes `__name__`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// One log line of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    /// The stream's labels.
    pub labels: Labels,
    /// Unix nanoseconds.
    pub timestamp: Timestamp,
    pub line: String,
    /// Loki's structured metadata: labels of this entry only, not of the stream.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub structured_metadata: Labels,
}

/// Severity of a node event, as node-problem-detector reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeEventSeverity {
    Info,
    Warn,
    Error,
}

/// Whether a node problem is a passing event or a condition that holds until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProblemKind {
    Temporary,
    Permanent,
}

/// Status of a node condition (Kubernetes' `ConditionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// A condition change carried by a permanent node problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeCondition {
    /// Condition type, e.g. `KernelDeadlock`, `ReadonlyFilesystem`.
    #[serde(rename = "type")]
    pub condition_type: String,
    pub status: ConditionStatus,
    pub transition: Timestamp,
}

/// A node problem, as node-problem-detector detects them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeEvent {
    pub node: String,
    /// The monitor that saw it, e.g. `kernel-monitor`, `docker-monitor`, `ntp`.
    pub monitor: String,
    /// A CamelCase reason, e.g. `TaskHung`, `OOMKilling`, `KernelDeadlock`.
    pub reason: String,
    pub message: String,
    pub severity: NodeEventSeverity,
    pub kind: ProblemKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<NodeCondition>,
}

/// Where a finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FindingSource {
    Falco,
    Trivy,
    Clair,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    Vulnerability,
    Runtime,
    Misconfiguration,
    Secret,
}

/// Normalised severity, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

/// What a finding is about. Fields that do not apply are left out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// `image`, `container`, `pod` or `node`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A security finding from a scanner or runtime detector, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityFinding {
    pub source: FindingSource,
    pub kind: FindingKind,
    pub severity: Severity,
    pub resource: Resource,
    /// A CVE id, a rule name or a check id.
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
}

/// Alert states as Prometheus has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

/// One transition of one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertTransition {
    /// Fingerprint of `labels`, 16 hex digits.
    pub fingerprint: String,
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    pub from: AlertState,
    pub to: AlertState,
    /// The rule group and rule, or empty for alerts posted through the API.
    #[serde(default)]
    pub rule_group: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default, with = "opt_float_value")]
    #[schemars(with = "Option<float_value::Schema>")]
    pub value: Option<f64>,
    pub active_at: Option<Timestamp>,
    #[serde(default)]
    pub fired_at: Option<Timestamp>,
    #[serde(default)]
    pub resolved_at: Option<Timestamp>,
    #[serde(default)]
    pub generator_url: String,
}

/// Alerts posted through the Alertmanager API in one request, as one record: each
/// alert's transition (no rule group; `firing → firing` for an update of a firing
/// alert, `firing → resolved` for a resolved one), in the order posted. Readers apply
/// them as if each were an `alert_transition` record of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertBatch {
    pub alerts: Vec<AlertTransition>,
}

/// A silence matcher, as Alertmanager has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "default_true")]
    pub is_equal: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SilenceAction {
    Create,
    Update,
    Expire,
}

/// A silence as it stands after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceChange {
    pub id: String,
    pub action: SilenceAction,
    pub matchers: Vec<Matcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationOutcome {
    /// An instance is about to send (its claim: with several notifier instances the
    /// first claim in log order sends; an attempt with no outcome after it was in
    /// flight when the instance stopped).
    Started,
    Sent,
    TransientFailure,
    PermanentFailure,
}

/// One attempt to deliver one notification through one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationAttempt {
    pub group_key: String,
    pub receiver: String,
    /// `email`, `sms`, `webhook` or `wecom`, with its index in the receiver: `webhook/0`.
    pub channel: String,
    /// Fingerprints of the firing alerts in the notification.
    pub firing: Vec<String>,
    /// Fingerprints of the resolved alerts in the notification.
    #[serde(default)]
    pub resolved: Vec<String>,
    pub attempt: u32,
    pub outcome: NotificationOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    /// The notifier instance that made the attempt.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// On `started`: the time of the last `sent` record of this group, receiver and
    /// channel the instance knew when it decided to send (none: it knew of none). A
    /// claim made on an outdated view does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Timestamp>,
}

/// Who did what, when, from where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub actor: String,
    /// E.g. `silence.create`, `alerts.post`.
    pub action: String,
    pub resource: String,
    /// Remote address of the caller.
    pub remote_addr: String,
    pub success: bool,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// Serde for f64 values that may be NaN or infinite, as Prometheus writes them.
pub mod float_value {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::STALE_NAN_BITS;

    /// The JSON Schema of such a value.
    #[derive(schemars::JsonSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub enum Schema {
        Number(f64),
        Special(Special),
    }

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    pub enum Special {
        NaN,
        #[serde(rename = "+Inf")]
        PosInf,
        #[serde(rename = "-Inf")]
        NegInf,
        StaleNaN,
    }

    pub fn to_str(v: f64) -> Option<&'static str> {
        if v.to_bits() == STALE_NAN_BITS {
            Some("StaleNaN")
        } else if v.is_nan() {
            Some("NaN")
        } else if v == f64::INFINITY {
            Some("+Inf")
        } else if v == f64::NEG_INFINITY {
            Some("-Inf")
        } else {
            None
        }
    }

    pub fn from_str(s: &str) -> Option<f64> {
        match s {
            "NaN" => Some(f64::NAN),
            "StaleNaN" => Some(f64::from_bits(STALE_NAN_BITS)),
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            _ => s.parse().ok(),
        }
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match to_str(*v) {
            Some(t) => s.serialize_str(t),
            None => s.serialize_f64(*v),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => from_str(&s).ok_or_else(|| {
                serde::de::Error::custom(format!("{s:?} is not a number, NaN, +Inf or -Inf"))
            }),
        }
    }
}

mod opt_float_value {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::float_value::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::float_value")] f64);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}
