//! The envelope around every record, and versioned decoding.
//!
//! On the wire a record is one JSON object:
//!
//! ```json
//! {"type":"log_entry","version":1,"tenant":"team-a","event_time":1700000000000000000,
//!  "ingest_time":1700000000000000100,"source":"loki-push","key":"9f2c...","payload":{...}}
//! ```
//!
//! [`decode`] reads the header first, checks the version against what this build knows
//! ([`RecordKind::current_version`]), upgrades older versions step by step, then decodes
//! and validates the payload. Nothing is dropped silently: every failure is a
//! [`DecodeError`] that the consumer sends to the dead-letter topic.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::payloads::*;
use crate::{DecodeError, Timestamp, validate_tenant};

/// The record types, each with its current schema version and topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    MetricSamples,
    LogEntry,
    NodeEvent,
    SecurityFinding,
    AlertTransition,
    AlertBatch,
    SilenceChange,
    NotificationAttempt,
    Audit,
}

impl RecordKind {
    pub const ALL: [RecordKind; 9] = [
        RecordKind::MetricSamples,
        RecordKind::LogEntry,
        RecordKind::NodeEvent,
        RecordKind::SecurityFinding,
        RecordKind::AlertTransition,
        RecordKind::AlertBatch,
        RecordKind::SilenceChange,
        RecordKind::NotificationAttempt,
        RecordKind::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::MetricSamples => "metric_samples",
            RecordKind::LogEntry => "log_entry",
            RecordKind::NodeEvent => "node_event",
            RecordKind::SecurityFinding => "security_finding",
            RecordKind::AlertTransition => "alert_transition",
            RecordKind::AlertBatch => "alert_batch",
            RecordKind::SilenceChange => "silence_change",
            RecordKind::NotificationAttempt => "notification_attempt",
            RecordKind::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The newest version of this type's payload that this build writes and reads.
    pub fn current_version(self) -> u32 {
        1
    }

    /// The topic records of this type are written to.
    pub fn topic(self) -> &'static str {
        use crate::topics::*;
        match self {
            RecordKind::MetricSamples => METRICS,
            RecordKind::LogEntry => LOGS,
            RecordKind::NodeEvent => NODE_EVENTS,
            RecordKind::SecurityFinding => FINDINGS,
            RecordKind::AlertTransition | RecordKind::AlertBatch => ALERTS,
            RecordKind::SilenceChange => SILENCES,
            RecordKind::NotificationAttempt => NOTIFICATIONS,
            RecordKind::Audit => AUDIT,
        }
    }
}

/// A typed payload; its variant decides the envelope's `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    MetricSamples(MetricSamples),
    LogEntry(LogEntry),
    NodeEvent(NodeEvent),
    SecurityFinding(SecurityFinding),
    AlertTransition(AlertTransition),
    AlertBatch(AlertBatch),
    SilenceChange(SilenceChange),
    NotificationAttempt(NotificationAttempt),
    Audit(AuditRecord),
}

impl Payload {
    pub fn kind(&self) -> RecordKind {
        match self {
            Payload::MetricSamples(_) => RecordKind::MetricSamples,
            Payload::LogEntry(_) => RecordKind::LogEntry,
            Payload::NodeEvent(_) => RecordKind::NodeEvent,
            Payload::SecurityFinding(_) => RecordKind::SecurityFinding,
            Payload::AlertTransition(_) => RecordKind::AlertTransition,
            Payload::AlertBatch(_) => RecordKind::AlertBatch,
            Payload::SilenceChange(_) => RecordKind::SilenceChange,
            Payload::NotificationAttempt(_) => RecordKind::NotificationAttempt,
            Payload::Audit(_) => RecordKind::Audit,
        }
    }

    /// The record key a payload is partitioned by (see ARCHITECTURE's topic table).
    pub fn default_key(&self, tenant: &str) -> String {
        match self {
            Payload::MetricSamples(m) => m.labels.fingerprint().to_string(),
            Payload::LogEntry(e) => e.labels.fingerprint().to_string(),
            Payload::NodeEvent(e) => e.node.clone(),
            Payload::SecurityFinding(f) => crate::fingerprint([
                ("source", source_name(f.source)),
                ("id", f.id.as_str()),
                ("kind", f.resource.kind.as_str()),
                ("image", f.resource.image.as_deref().unwrap_or("")),
                ("container", f.resource.container.as_deref().unwrap_or("")),
                ("pod", f.resource.pod.as_deref().unwrap_or("")),
                ("namespace", f.resource.namespace.as_deref().unwrap_or("")),
                ("node", f.resource.node.as_deref().unwrap_or("")),
            ])
            .to_string(),
            Payload::AlertTransition(a) => a.fingerprint.clone(),
            // One partition per tenant keeps a tenant's posted alerts in order.
            Payload::AlertBatch(_) => tenant.to_string(),
            Payload::SilenceChange(s) => s.id.clone(),
            Payload::NotificationAttempt(n) => n.group_key.clone(),
            Payload::Audit(_) => tenant.to_string(),
        }
    }

    fn validate(&self) -> Result<(), DecodeError> {
        match self {
            Payload::MetricSamples(m) => {
                if m.labels.get("__name__").is_none_or(str::is_empty) {
                    return Err(DecodeError::invalid(
                        "payload.labels",
                        "a metric series needs a __name__ label",
                    ));
                }
                if m.samples.is_empty() {
                    return Err(DecodeError::invalid("payload.samples", "no samples"));
                }
            }
            Payload::LogEntry(e) => {
                if e.labels.is_empty() {
                    return Err(DecodeError::invalid(
                        "payload.labels",
                        "a log stream needs at least one label",
                    ));
                }
            }
            Payload::NodeEvent(e) => {
                if e.node.is_empty() {
                    return Err(DecodeError::invalid("payload.node", "empty"));
                }
                if e.reason.is_empty() {
                    return Err(DecodeError::invalid("payload.reason", "empty"));
                }
            }
            Payload::SecurityFinding(f) => {
                if f.id.is_empty() {
                    return Err(DecodeError::invalid("payload.id", "empty"));
                }
            }
            Payload::AlertTransition(a) => {
                if a.labels.is_empty() {
                    return Err(DecodeError::invalid(
                        "payload.labels",
                        "an alert needs labels",
                    ));
                }
            }
            Payload::AlertBatch(b) => {
                if b.alerts.is_empty() {
                    return Err(DecodeError::invalid("payload.alerts", "no alerts"));
                }
                if let Some(i) = b.alerts.iter().position(|a| a.labels.is_empty()) {
                    return Err(DecodeError::invalid(
                        format!("payload.alerts[{i}].labels"),
                        "an alert needs labels",
                    ));
                }
            }
            Payload::SilenceChange(s) => {
                if s.id.is_empty() {
                    return Err(DecodeError::invalid("payload.id", "empty"));
                }
            }
            Payload::NotificationAttempt(_) | Payload::Audit(_) => {}
        }
        Ok(())
    }
}

fn source_name(s: FindingSource) -> &'static str {
    match s {
        FindingSource::Falco => "falco",
        FindingSource::Trivy => "trivy",
        FindingSource::Clair => "clair",
        FindingSource::Other => "other",
    }
}

/// A record on the log: header and typed payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The schema version the record was written with (after decoding: the version it
    /// was read as, before upgrading).
    pub version: u32,
    /// The project that owns the record.
    pub tenant: String,
    /// When it happened (for a log line: its timestamp).
    pub event_time: Timestamp,
    /// When Argus received it.
    pub ingest_time: Timestamp,
    /// What produced it: a collector (`loki-push`, `scrape`), a component, an API.
    pub source: String,
    /// The partitioning key.
    pub key: String,
    pub payload: Payload,
}

impl Envelope {
    /// A new record of the current version, keyed by the payload's default key, with
    /// `ingest_time` now.
    pub fn new(
        tenant: impl Into<String>,
        source: impl Into<String>,
        event_time: Timestamp,
        payload: Payload,
    ) -> Self {
        let tenant = tenant.into();
        let key = payload.default_key(&tenant);
        Envelope {
            version: payload.kind().current_version(),
            tenant,
            event_time,
            ingest_time: Timestamp::now(),
            source: source.into(),
            key,
            payload,
        }
    }

    pub fn kind(&self) -> RecordKind {
        self.payload.kind()
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u32,
    tenant: &'a str,
    event_time: Timestamp,
    ingest_time: Timestamp,
    source: &'a str,
    key: &'a str,
    payload: &'a Payload,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn<'a> {
    #[serde(rename = "type")]
    kind: String,
    version: u32,
    tenant: String,
    event_time: Timestamp,
    ingest_time: Timestamp,
    source: String,
    key: String,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// The JSON bytes of a record.
pub fn encode(e: &Envelope) -> Vec<u8> {
    let w = WireOut {
        kind: e.kind().as_str(),
        version: e.version,
        tenant: &e.tenant,
        event_time: e.event_time,
        ingest_time: e.ingest_time,
        source: &e.source,
        key: &e.key,
        payload: &e.payload,
    };
    serde_json::to_vec(&w).expect("payloads always serialize")
}

/// Decodes and validates a record of any version up to the current one.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let w: WireIn = serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    let kind =
        RecordKind::parse(&w.kind).ok_or_else(|| DecodeError::UnknownType(w.kind.clone()))?;
    let current = kind.current_version();
    if w.version == 0 {
        return Err(DecodeError::BadVersion {
            kind: kind.as_str(),
            version: 0,
        });
    }
    if w.version > current {
        return Err(DecodeError::NewerVersion {
            kind: kind.as_str(),
            version: w.version,
            current,
        });
    }
    validate_tenant(&w.tenant).map_err(|m| DecodeError::invalid("tenant", m))?;
    if w.key.is_empty() {
        return Err(DecodeError::invalid("key", "empty"));
    }
    let raw = upgrade(kind, w.version, w.payload.get())?;
    let payload = decode_payload(kind, &raw)?;
    payload.validate()?;
    Ok(Envelope {
        version: w.version,
        tenant: w.tenant,
        event_time: w.event_time,
        ingest_time: w.ingest_time,
        source: w.source,
        key: w.key,
        payload,
    })
}

/// Brings a payload written as `version` up to the current version of `kind`. Every
/// type is at version 1 today, so there is no step yet; a version 2 of a type adds an
/// arm `(kind, 1) => upgrade(kind, 2, &v1_to_v2(raw)?)` here and keeps the v1 golden
/// fixtures passing.
fn upgrade(
    kind: RecordKind,
    version: u32,
    raw: &str,
) -> Result<std::borrow::Cow<'_, str>, DecodeError> {
    match version {
        v if v == kind.current_version() => Ok(std::borrow::Cow::Borrowed(raw)),
        v => Err(DecodeError::BadVersion {
            kind: kind.as_str(),
            version: v,
        }),
    }
}

/// Decodes an event sent by an external producer (`POST /api/v1/events`): the wire
/// form with every header field but `type` and `payload` optional. Missing fields get
/// defaults: the current version, `default_tenant`, `event_time` and `ingest_time` now,
/// `source`, and the payload's default key.
pub fn decode_external(
    mut obj: serde_json::Map<String, serde_json::Value>,
    default_tenant: &str,
    source: &str,
) -> Result<Envelope, DecodeError> {
    use serde_json::Value;
    let kind_name = match obj.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(DecodeError::invalid("type", "must be a string")),
        None => return Err(DecodeError::invalid("type", "missing")),
    };
    let kind = RecordKind::parse(&kind_name).ok_or(DecodeError::UnknownType(kind_name))?;
    let now = Timestamp::now().0;
    obj.entry("version")
        .or_insert_with(|| kind.current_version().into());
    obj.entry("tenant").or_insert_with(|| default_tenant.into());
    obj.entry("event_time").or_insert_with(|| now.into());
    obj.insert("ingest_time".into(), now.into());
    obj.entry("source").or_insert_with(|| source.into());
    let keyed = obj.contains_key("key");
    if !keyed {
        obj.insert("key".into(), "-".into());
    }
    let bytes =
        serde_json::to_vec(&Value::Object(obj)).map_err(|e| DecodeError::Json(e.to_string()))?;
    let mut env = decode(&bytes)?;
    if !keyed {
        env.key = env.payload.default_key(&env.tenant);
    }
    Ok(env)
}

fn decode_payload(kind: RecordKind, raw: &str) -> Result<Payload, DecodeError> {
    fn p<T: serde::de::DeserializeOwned>(kind: RecordKind, raw: &str) -> Result<T, DecodeError> {
        serde_json::from_str(raw).map_err(|e| DecodeError::Payload {
            kind: kind.as_str(),
            message: e.to_string(),
        })
    }
    Ok(match kind {
        RecordKind::MetricSamples => Payload::MetricSamples(p(kind, raw)?),
        RecordKind::LogEntry => Payload::LogEntry(p(kind, raw)?),
        RecordKind::NodeEvent => Payload::NodeEvent(p(kind, raw)?),
        RecordKind::SecurityFinding => Payload::SecurityFinding(p(kind, raw)?),
        RecordKind::AlertTransition => Payload::AlertTransition(p(kind, raw)?),
        RecordKind::AlertBatch => Payload::AlertBatch(p(kind, raw)?),
        RecordKind::SilenceChange => Payload::SilenceChange(p(kind, raw)?),
        RecordKind::NotificationAttempt => Payload::NotificationAttempt(p(kind, raw)?),
        RecordKind::Audit => Payload::Audit(p(kind, raw)?),
    })
}
