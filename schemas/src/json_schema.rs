//! JSON Schema documents for what external producers send to `POST /api/v1/events`.
//!
//! Generated from the Rust types; the checked-in copies under `schemas/json/` are
//! compared with these by a test, so they cannot drift. Regenerate them with
//! `ARGUS_UPDATE_SCHEMAS=1 cargo test -p argus-schemas --test json_schema`.

use schemars::{JsonSchema, schema_for};
use serde_json::{Value, json};

use crate::RecordKind;
use crate::payloads::*;

fn payload_schema(kind: RecordKind) -> Value {
    fn s<T: JsonSchema>() -> Value {
        serde_json::to_value(schema_for!(T)).expect("schema serializes")
    }
    match kind {
        RecordKind::MetricSamples => s::<MetricSamples>(),
        RecordKind::LogEntry => s::<LogEntry>(),
        RecordKind::NodeEvent => s::<NodeEvent>(),
        RecordKind::SecurityFinding => s::<SecurityFinding>(),
        RecordKind::AlertTransition => s::<AlertTransition>(),
        RecordKind::AlertBatch => s::<AlertBatch>(),
        RecordKind::SilenceChange => s::<SilenceChange>(),
        RecordKind::NotificationAttempt => s::<NotificationAttempt>(),
        RecordKind::Audit => s::<AuditRecord>(),
    }
}

/// `(file name, pretty JSON)` for every document: one per payload type and version,
/// and `event.schema.json`, the envelope an external producer sends.
pub fn documents() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut variants = Vec::new();
    for kind in RecordKind::ALL {
        let file = format!("{}.v{}.schema.json", kind.as_str(), kind.current_version());
        let mut doc = payload_schema(kind);
        if let Value::Object(m) = &mut doc {
            m.insert(
                "$id".into(),
                json!(format!("https://argus.dev/schemas/{file}")),
            );
        }
        out.push((file.clone(), pretty(&doc)));
        variants.push(json!({
            "properties": {
                "type": {"const": kind.as_str()},
                "version": {"type": "integer", "minimum": 1, "maximum": kind.current_version()},
                "payload": {"$ref": file}
            }
        }));
    }
    let event = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://argus.dev/schemas/event.schema.json",
        "title": "Event",
        "description": "One record sent to POST /api/v1/events (a JSON array of these, or one per line). Only type and payload are required; the rest default to: the current version, the X-Scope-OrgID tenant, now, the endpoint's source, and the payload's default key.",
        "type": "object",
        "required": ["type", "payload"],
        "additionalProperties": false,
        "properties": {
            "type": {"enum": RecordKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()},
            "version": {"type": "integer", "minimum": 1},
            "tenant": {"type": "string", "pattern": "^[A-Za-z0-9!_.*'()-]{1,150}$"},
            "event_time": {"$ref": "#/$defs/Timestamp"},
            "source": {"type": "string"},
            "key": {"type": "string", "minLength": 1},
            "payload": {"type": "object"}
        },
        "oneOf": variants,
        "$defs": {"Timestamp": serde_json::to_value(schema_for!(crate::Timestamp)).expect("schema serializes")}
    });
    out.push(("event.schema.json".into(), pretty(&event)));
    out
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("json");
    s.push('\n');
    s
}
