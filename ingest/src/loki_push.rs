//! The Loki push API: `POST /loki/api/v1/push` (and the legacy `/api/prom/push`), as
//! Promtail, Grafana Alloy, Vector, Fluent Bit and Loki's client libraries send it.
//!
//! - `Content-Type: application/json`: `{"streams":[{"stream":{…},"values":[["<ns>",
//!   "<line>", {<structured metadata>}?], …]}]}`, optionally gzip/deflate-compressed
//!   (`Content-Encoding`). Timestamps are Unix nanoseconds as decimal strings.
//! - Anything else: a snappy *raw* block of a protobuf `logproto.PushRequest` (streams
//!   with their labels as a Prometheus label-set string `{app="x"}`, entries with a
//!   `google.protobuf.Timestamp`, a line and structured metadata).
//!
//! Every entry becomes one `log_entry` record keyed by its stream's fingerprint; the
//! answer is 204 once all are durable on the event log. The request is all or nothing:
//! a stream without labels, an invalid or repeated label name, a line over
//! [`MAX_LINE_BYTES`] or an undecodable body is answered 400 with the reason (Loki's
//! wording where Loki has one) and nothing is written. The tenant is `X-Scope-OrgID`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use prost::Message;
use serde::Deserialize;

use argus_schemas::{Envelope, Labels, LogEntry, Payload, Timestamp};

use crate::IngestError;
use crate::body::{content_decoded, snappy_raw};
use crate::events_api::tenant_of;
use crate::metrics::{RECEIVED, REJECTED};

const COLLECTOR: &str = "loki-push";
/// Loki's default `max_line_size`: 256 KiB.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

pub fn router(log: argus_bus::EventLog) -> Router {
    Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/api/prom/push", post(push))
        .with_state(log)
}

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<ProtoTimestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Message)]
pub struct ProtoTimestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    stream: std::collections::BTreeMap<String, String>,
    values: Vec<JsonEntry>,
}

/// `["<ns>", "<line>"]` or `["<ns>", "<line>", {metadata}]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonEntry {
    Plain((String, String)),
    WithMetadata((String, String, std::collections::BTreeMap<String, String>)),
}

fn bad(reason: &'static str, msg: String) -> IngestError {
    REJECTED.with_label_values(&[COLLECTOR, reason]).inc();
    IngestError::BadRequest(msg)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// One decoded stream: labels and `(timestamp, line, metadata)` entries.
type Stream = (Labels, Vec<(Timestamp, String, Labels)>);

fn decode_json(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Stream>, IngestError> {
    let body = content_decoded(headers, body, COLLECTOR)?;
    let push: JsonPush = serde_json::from_slice(&body)
        .map_err(|e| bad("json", format!("body is not a Loki push request: {e}")))?;
    let mut out = Vec::with_capacity(push.streams.len());
    for (i, s) in push.streams.into_iter().enumerate() {
        let labels = checked_labels(s.stream.into_iter(), i)?;
        let mut entries = Vec::with_capacity(s.values.len());
        for (j, v) in s.values.into_iter().enumerate() {
            let (ts, line, md) = match v {
                JsonEntry::Plain((ts, line)) => (ts, line, Labels::new()),
                JsonEntry::WithMetadata((ts, line, md)) => (ts, line, Labels::from_pairs(md)),
            };
            let ts: i64 = ts.parse().map_err(|_| {
                bad(
                    "timestamp",
                    format!("stream {i}, entry {j}: timestamp {ts:?} is not Unix nanoseconds"),
                )
            })?;
            entries.push((Timestamp(ts), line, md));
        }
        out.push((labels, entries));
    }
    Ok(out)
}

fn decode_proto(body: &[u8]) -> Result<Vec<Stream>, IngestError> {
    let raw = snappy_raw(body).inspect_err(|_| {
        REJECTED.with_label_values(&[COLLECTOR, "encoding"]).inc();
    })?;
    let req = PushRequest::decode(raw.as_slice()).map_err(|e| {
        bad(
            "protobuf",
            format!("body is not a Loki push request (snappy-compressed protobuf): {e}"),
        )
    })?;
    let mut out = Vec::with_capacity(req.streams.len());
    for (i, s) in req.streams.into_iter().enumerate() {
        let pairs = parse_label_set(&s.labels)
            .map_err(|e| bad("labels", format!("stream {i}: labels {:?}: {e}", s.labels)))?;
        let labels = checked_labels(pairs.into_iter(), i)?;
        let entries = s
            .entries
            .into_iter()
            .map(|e| {
                let ts = e
                    .timestamp
                    .map(|t| {
                        t.seconds
                            .saturating_mul(1_000_000_000)
                            .saturating_add(t.nanos as i64)
                    })
                    .unwrap_or(0);
                let md = Labels::from_pairs(
                    e.structured_metadata.into_iter().map(|p| (p.name, p.value)),
                );
                (Timestamp(ts), e.line, md)
            })
            .collect();
        out.push((labels, entries));
    }
    Ok(out)
}

fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn checked_labels(
    pairs: impl Iterator<Item = (String, String)>,
    stream: usize,
) -> Result<Labels, IngestError> {
    let mut labels = Labels::new();
    for (n, v) in pairs {
        if !valid_label_name(&n) {
            return Err(bad(
                "labels",
                format!("stream {stream}: invalid label name {n:?}"),
            ));
        }
        if labels.get(&n).is_some() {
            return Err(bad(
                "labels",
                format!("stream {stream}: duplicate label name {n:?}"),
            ));
        }
        labels.insert(n, v);
    }
    if labels.is_empty() {
        return Err(bad(
            "labels",
            format!("stream {stream}: error at least one label pair is required per stream"),
        ));
    }
    Ok(labels)
}

/// Parses a Prometheus label-set string such as `{app="web", msg="a \"b\""}`.
pub fn parse_label_set(s: &str) -> Result<Vec<(String, String)>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or("a label set is written {name=\"value\", …}")?;
    let mut out = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("expected name=\"value\"")?;
        let name = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let body = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("value of {name:?} is not quoted"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, o)) => {
                        value.push('\\');
                        value.push(o);
                    }
                    None => return Err(format!("value of {name:?} is not terminated")),
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("value of {name:?} is not terminated"))?;
        out.push((name, value));
        rest = body[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(format!("expected , or }} after the value, found {rest:?}"));
        }
    }
    Ok(out)
}

async fn push(
    State(log): State<argus_bus::EventLog>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, IngestError> {
    let tenant = tenant_of(&headers, COLLECTOR)?;
    let streams = if is_json(&headers) {
        decode_json(&headers, &body)?
    } else {
        decode_proto(&body)?
    };
    let mut events = Vec::new();
    for (i, (labels, entries)) in streams.into_iter().enumerate() {
        for (ts, line, md) in entries {
            if line.len() > MAX_LINE_BYTES {
                return Err(bad(
                    "line_too_long",
                    format!(
                        "stream {i} {labels}: Max entry size '{MAX_LINE_BYTES}' bytes exceeded for stream (line of {} bytes)",
                        line.len()
                    ),
                ));
            }
            events.push(Envelope::new(
                tenant.clone(),
                COLLECTOR,
                ts,
                Payload::LogEntry(LogEntry {
                    labels: labels.clone(),
                    timestamp: ts,
                    line,
                    structured_metadata: md,
                }),
            ));
        }
    }
    log.publish(&events).await?;
    RECEIVED
        .with_label_values(&[COLLECTOR, "log_entry"])
        .inc_by(events.len() as u64);
    tracing::debug!(tenant = %tenant, entries = events.len(), "loki push written");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets() {
        assert_eq!(
            parse_label_set(r#"{app="web", msg="a \"b\" \\ c\nd", x="{,=}"}"#).unwrap(),
            vec![
                ("app".to_string(), "web".to_string()),
                ("msg".to_string(), "a \"b\" \\ c\nd".to_string()),
                ("x".to_string(), "{,=}".to_string())
            ]
        );
        assert_eq!(parse_label_set("{}").unwrap(), vec![]);
        assert!(parse_label_set("app=\"x\"").is_err());
        assert!(
            parse_label_set("{app=x}")
                .unwrap_err()
                .contains("not quoted")
        );
        assert!(
            parse_label_set("{app=\"x}")
                .unwrap_err()
                .contains("not terminated")
        );
        assert!(
            parse_label_set("{a=\"1\" b=\"2\"}")
                .unwrap_err()
                .contains("expected ,")
        );
    }

    #[test]
    fn label_names() {
        assert!(valid_label_name("_a1"));
        assert!(!valid_label_name("1a"));
        assert!(!valid_label_name("a-b"));
        assert!(!valid_label_name(""));
    }
}
