//! The one HTTP listener of a process: health, readiness, metrics, the event-log
//! inspection API, and every component's routes merged in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct AppState {
    pub log: argus_bus::EventLog,
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/ready", get(ready))
        .route("/-/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/topics", get(topics))
        .route("/api/v1/topics/{topic}/records", get(records))
        .with_state(state)
}

async fn ready(State(s): State<AppState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics() -> Response {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    let enc = prometheus::TextEncoder::new();
    if let Err(e) = enc.encode(&prometheus::gather(), &mut buf) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    ([("content-type", enc.format_type().to_string())], buf).into_response()
}

fn bad(status: StatusCode, msg: String) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

/// Every topic with its partitions' watermarks.
async fn topics(State(s): State<AppState>) -> Response {
    let mut out = Vec::new();
    for t in argus_schemas::topics::ALL {
        let n = match s.log.partitions(t).await {
            Ok(n) => n,
            Err(e) => return bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let mut parts = Vec::new();
        for p in 0..n {
            match s.log.watermarks(t, p).await {
                Ok((low, high)) => parts.push(json!({"partition": p, "low": low, "high": high})),
                Err(e) => return bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            }
        }
        out.push(json!({"name": t, "partitions": parts}));
    }
    Json(json!({"backend": s.log.backend(), "topics": out})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsQuery {
    #[serde(default)]
    partition: i32,
    #[serde(default)]
    offset: i64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// Records of one partition from an offset on; values that are JSON are shown as JSON.
async fn records(
    State(s): State<AppState>,
    Path(topic): Path<String>,
    q: Result<Query<RecordsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !argus_schemas::topics::ALL.contains(&topic.as_str()) {
        return bad(StatusCode::NOT_FOUND, format!("unknown topic {topic:?}"));
    }
    if q.limit == 0 || q.limit > 10_000 {
        return bad(
            StatusCode::BAD_REQUEST,
            "limit must be between 1 and 10000".into(),
        );
    }
    let recs = match s.log.read(&topic, q.partition, q.offset, q.limit).await {
        Ok(r) => r,
        Err(e) => return bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let next = recs.last().map(|r| r.offset + 1).unwrap_or(q.offset);
    let recs: Vec<Value> = recs
        .into_iter()
        .map(|r| {
            let value = serde_json::from_slice::<Value>(&r.value)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.value).into_owned()));
            let headers: serde_json::Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Value::String(String::from_utf8_lossy(v).into_owned()),
                    )
                })
                .collect();
            json!({
                "partition": r.partition, "offset": r.offset, "timestamp_ms": r.timestamp_ms,
                "key": String::from_utf8_lossy(&r.key), "headers": headers, "value": value
            })
        })
        .collect();
    Json(json!({"topic": topic, "partition": q.partition, "next_offset": next, "records": recs}))
        .into_response()
}
