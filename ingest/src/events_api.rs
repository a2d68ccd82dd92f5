//! `POST /api/v1/events`: records in Argus' own schema, from any producer.
//!
//! The body is a JSON array of events, or one event per line (NDJSON); each event is
//! the object described by `schemas/json/event.schema.json`: `type` and `payload` are
//! required, the header fields default (tenant from `X-Scope-OrgID`, else `default`).
//! The request is all or nothing: if any event is invalid, the answer is 400 naming
//! each bad event by index and what is wrong with it, and nothing is written. A 204
//! means every event is durable on the event log.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Map, Value};

use crate::IngestError;
use crate::metrics::{RECEIVED, REJECTED};

const COLLECTOR: &str = "events-api";
/// At most this many events in one request.
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Errors listed in one 400 answer.
const MAX_LISTED_ERRORS: usize = 10;

pub fn router(log: argus_bus::EventLog) -> Router {
    Router::new()
        .route("/api/v1/events", post(post_events))
        .with_state(log)
}

/// The tenant a request is for: `X-Scope-OrgID`, else the default tenant. An invalid
/// header is counted as a `tenant` rejection of `collector`.
pub fn tenant_of(headers: &HeaderMap, collector: &str) -> Result<String, IngestError> {
    tenant_from_header(headers)
        .inspect_err(|_| REJECTED.with_label_values(&[collector, "tenant"]).inc())
}

fn tenant_from_header(headers: &HeaderMap) -> Result<String, IngestError> {
    match headers.get("x-scope-orgid") {
        None => Ok(argus_schemas::DEFAULT_TENANT.to_string()),
        Some(v) => {
            let t = v
                .to_str()
                .map_err(|_| IngestError::BadRequest("X-Scope-OrgID is not valid text".into()))?;
            argus_schemas::validate_tenant(t)
                .map_err(|m| IngestError::BadRequest(format!("X-Scope-OrgID: {m}")))?;
            Ok(t.to_string())
        }
    }
}

fn reject(reason: &'static str, msg: String) -> IngestError {
    REJECTED.with_label_values(&[COLLECTOR, reason]).inc();
    IngestError::BadRequest(msg)
}

/// One event of a body: its object, or why it is not one.
type ParsedEvent = Result<Map<String, Value>, String>;

/// Splits a body into JSON objects: an array, one object, or NDJSON.
fn parse_body(body: &[u8]) -> Result<Vec<(usize, ParsedEvent)>, IngestError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| reject("encoding", format!("body is not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(reject(
            "empty",
            "body is empty; send a JSON array of events or one event per line".into(),
        ));
    }
    let values: Vec<(usize, Result<Value, String>)> = if trimmed.starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| reject("json", format!("body is not a JSON array of events: {e}")))?;
        v.into_iter().enumerate().map(|(i, v)| (i, Ok(v))).collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                (
                    i,
                    serde_json::from_str(l).map_err(|e| format!("line {}: not JSON: {e}", i + 1)),
                )
            })
            .collect()
    };
    Ok(values
        .into_iter()
        .map(|(i, v)| {
            (
                i,
                v.and_then(|v| match v {
                    Value::Object(m) => Ok(m),
                    other => Err(format!(
                        "an event must be a JSON object, not {}",
                        kind_of(&other)
                    )),
                }),
            )
        })
        .collect())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn post_events(
    State(log): State<argus_bus::EventLog>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, IngestError> {
    let tenant = tenant_of(&headers, COLLECTOR)?;
    let items = parse_body(&body)?;
    if items.len() > MAX_EVENTS_PER_REQUEST {
        return Err(reject(
            "too_many",
            format!(
                "{} events in one request; at most {MAX_EVENTS_PER_REQUEST} are accepted",
                items.len()
            ),
        ));
    }
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items {
        match item.and_then(|m| {
            argus_schemas::decode_external(m, &tenant, COLLECTOR).map_err(|e| e.to_string())
        }) {
            Ok(e) => events.push(e),
            Err(msg) => errors.push(format!("event {i}: {msg}")),
        }
    }
    if !errors.is_empty() {
        let n = errors.len();
        let mut msg = format!(
            "{n} of {} events are invalid; nothing was written:\n",
            n + events.len()
        );
        for e in errors.iter().take(MAX_LISTED_ERRORS) {
            msg.push_str(e);
            msg.push('\n');
        }
        if n > MAX_LISTED_ERRORS {
            msg.push_str(&format!("… and {} more\n", n - MAX_LISTED_ERRORS));
        }
        REJECTED
            .with_label_values(&[COLLECTOR, "invalid_event"])
            .inc_by(n as u64);
        return Err(IngestError::BadRequest(msg.trim_end().to_string()));
    }
    log.publish(&events).await?;
    for e in &events {
        RECEIVED
            .with_label_values(&[COLLECTOR, e.kind().as_str()])
            .inc();
    }
    tracing::debug!(tenant = %tenant, events = events.len(), "events written");
    Ok(StatusCode::NO_CONTENT)
}
