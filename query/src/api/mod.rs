//! Loki's HTTP API over the engine and the store: `/loki/api/v1/query`,
//! `/query_range`, `/labels`, `/label/{name}/values`, `/series`, `/index/stats`,
//! `/tail` (WebSocket) and `/status/buildinfo`, with Loki's parameters, defaults,
//! JSON shapes and error texts (`text/plain`, 400 for bad requests). `X-Scope-OrgID`
//! selects the tenant. The push endpoint lives in the ingest crate.

pub mod params;
mod tail;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use argus_schemas::Labels;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::engine::{Engine, QueryKind, QueryParams, QueryResponse};
use crate::error::{QueryError, Result};
use crate::logql::ast::{Expr, LabelMatcher};
use crate::logql::matcher::{compile_all, matches_all};
use crate::metrics::{QUERIES, QUERY_ERRORS};
use crate::store::{LogStore, StreamInfo};
use params::{
    Params, default_step, now_ns, parse_direction, parse_duration_param, parse_limit, parse_range,
    parse_time,
};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Arc<Engine>,
}

impl ApiState {
    fn store(&self) -> &Arc<dyn LogStore> {
        self.engine.store()
    }
}

/// The Loki API routes, to be merged into the binary's router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/loki/api/v1/query", get(query).post(query))
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label", get(labels).post(labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .route(
            "/loki/api/v1/index/stats",
            get(index_stats).post(index_stats),
        )
        .route("/loki/api/v1/tail", get(tail::tail))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .with_state(state)
}

/// Loki's error answer: the message as `text/plain`.
pub(crate) fn error_response(endpoint: &str, e: &QueryError) -> Response {
    let reason = match e {
        QueryError::Parse { .. } => "parse",
        QueryError::Invalid(_) => "invalid",
        QueryError::BadParam(_) => "bad_param",
        QueryError::Limit(_) => "limit",
        _ => "store",
    };
    QUERY_ERRORS.with_label_values(&[reason]).inc();
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    QUERIES
        .with_label_values(&[endpoint, status.as_str()])
        .inc();
    if status.is_server_error() {
        tracing::warn!(endpoint, error = %e, "query failed");
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{e}\n"),
    )
        .into_response()
}

fn ok_json(endpoint: &str, v: Value) -> Response {
    QUERIES.with_label_values(&[endpoint, "200"]).inc();
    axum::Json(v).into_response()
}

/// The tenant from `X-Scope-OrgID` (default tenant when absent).
pub(crate) fn tenant(headers: &HeaderMap) -> Result<String> {
    match headers.get("x-scope-orgid") {
        None => Ok(argus_schemas::DEFAULT_TENANT.to_string()),
        Some(v) => {
            let t = v
                .to_str()
                .map_err(|_| QueryError::BadParam("X-Scope-OrgID is not valid text".into()))?;
            argus_schemas::validate_tenant(t)
                .map_err(|m| QueryError::BadParam(format!("X-Scope-OrgID: {m}")))?;
            Ok(t.to_string())
        }
    }
}

/// Query string plus, for form POSTs, the body's parameters.
pub(crate) fn collect_params(raw: Option<String>, headers: &HeaderMap, body: &Bytes) -> Params {
    let mut p = Params::default();
    if let Some(q) = raw {
        p.extend_from_urlencoded(&q);
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form && let Ok(s) = std::str::from_utf8(body) {
        p.extend_from_urlencoded(s);
    }
    p
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str> {
    p.get(name)
        .ok_or_else(|| QueryError::BadParam(format!("missing {name} parameter")))
}

/// The JSON answer of `/query` and `/query_range`.
pub fn response_json(resp: &QueryResponse) -> Value {
    let s = &resp.stats;
    let exec = s.exec_time_secs.max(1e-9);
    let summary = json!({
        "bytesProcessedPerSecond": (s.total_bytes_processed as f64 / exec) as u64,
        "linesProcessedPerSecond": (s.total_lines_processed as f64 / exec) as u64,
        "totalBytesProcessed": s.total_bytes_processed,
        "totalLinesProcessed": s.total_lines_processed,
        "execTime": s.exec_time_secs,
        "queueTime": s.queue_time_secs,
        "subqueries": s.subqueries,
        "totalEntriesReturned": s.total_entries_returned,
        "splits": 0,
        "shards": 0,
        "totalPostFilterLines": s.total_entries_returned,
        "totalStructuredMetadataBytesProcessed": 0,
    });
    json!({
        "status": "success",
        "data": {
            "resultType": resp.data.result_type(),
            "result": resp.data.result_json(),
            "stats": {
                "summary": summary,
                "querier": {"store": {
                    "totalChunksRef": 0,
                    "totalChunksDownloaded": 0,
                    "chunksDownloadTime": 0,
                    "queryReferencedStructuredMetadata": false,
                    "chunk": {
                        "headChunkBytes": 0,
                        "headChunkLines": 0,
                        "decompressedBytes": s.total_bytes_processed,
                        "decompressedLines": s.total_lines_processed,
                        "compressedBytes": 0,
                        "totalDuplicates": 0,
                        "postFilterLines": s.total_entries_returned,
                        "headChunkStructuredMetadataBytes": 0,
                        "decompressedStructuredMetadataBytes": 0
                    }
                }},
                "ingester": {
                    "totalReached": 0,
                    "totalChunksMatched": 0,
                    "totalBatches": 0,
                    "totalLinesSent": 0,
                    "store": {"chunk": {}}
                }
            }
        }
    })
}

async fn query(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = collect_params(raw, &headers, &body);
    match instant_query(&st, &headers, &p).await {
        Ok(v) => ok_json("query", v),
        Err(e) => error_response("query", &e),
    }
}

async fn instant_query(st: &ApiState, headers: &HeaderMap, p: &Params) -> Result<Value> {
    let tenant = tenant(headers)?;
    let q = required(p, "query")?;
    let t = parse_time("time", p.get("time"), now_ns())?;
    let params = QueryParams {
        tenant,
        query: q.to_string(),
        kind: QueryKind::Instant,
        start: t,
        end: t,
        step: 0,
        interval: 0,
        limit: parse_limit(p)?,
        direction: parse_direction(p)?,
    };
    let started = Instant::now();
    let resp = st.engine.query(&params).await?;
    tracing::debug!(
        query = q,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "instant query"
    );
    Ok(response_json(&resp))
}

async fn query_range(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = collect_params(raw, &headers, &body);
    match range_query(&st, &headers, &p).await {
        Ok(v) => ok_json("query_range", v),
        Err(e) => error_response("query_range", &e),
    }
}

async fn range_query(st: &ApiState, headers: &HeaderMap, p: &Params) -> Result<Value> {
    let tenant = tenant(headers)?;
    let q = required(p, "query")?;
    let (start, end) = parse_range(p, now_ns())?;
    if end < start {
        return Err(QueryError::BadParam(
            "end timestamp must not be before or equal to start time".into(),
        ));
    }
    let step = match p.get("step") {
        Some(v) => parse_duration_param("step", v)?,
        None => default_step(start, end),
    };
    if step <= 0 {
        return Err(QueryError::BadParam(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    let interval = match p.get("interval") {
        Some(v) => parse_duration_param("interval", v)?,
        None => 0,
    };
    if interval < 0 {
        return Err(QueryError::BadParam(
            "negative query interval widths are not accepted".into(),
        ));
    }
    let params = QueryParams {
        tenant,
        query: q.to_string(),
        kind: QueryKind::Range,
        start,
        end,
        step,
        interval,
        limit: parse_limit(p)?,
        direction: parse_direction(p)?,
    };
    let resp = st.engine.query(&params).await?;
    Ok(response_json(&resp))
}

/// Streams of the tenant in the range, optionally restricted by selectors (any of them).
async fn matching_streams(
    st: &ApiState,
    tenant: &str,
    start: i64,
    end: i64,
    selectors: &[String],
) -> Result<Vec<StreamInfo>> {
    let mut compiled = Vec::with_capacity(selectors.len());
    for s in selectors {
        compiled.push(compile_all(&parse_selector(s)?)?);
    }
    let streams = st.store().streams(tenant, start, end).await?;
    Ok(streams
        .into_iter()
        .filter(|s| compiled.is_empty() || compiled.iter().any(|c| matches_all(c, &s.labels)))
        .collect())
}

/// Parses a `match[]` / `query` argument, which must be a stream selector (a pipeline
/// is allowed and ignored, as Loki does for `/series`).
fn parse_selector(s: &str) -> Result<Vec<LabelMatcher>> {
    match crate::logql::parse(s)? {
        Expr::Log(l) => Ok(l.selector),
        Expr::Metric(_) => Err(QueryError::BadParam(format!(
            "only stream selectors are allowed here, got the metric query {s:?}"
        ))),
    }
}

/// The metadata endpoints: they select streams and describe them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    Labels,
    LabelValues,
    Series,
    IndexStats,
}

impl Meta {
    fn endpoint(self) -> &'static str {
        match self {
            Meta::Labels => "labels",
            Meta::LabelValues => "label_values",
            Meta::Series => "series",
            Meta::IndexStats => "index_stats",
        }
    }
}

async fn labels(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    meta(&st, Meta::Labels, "", &headers, raw, &body).await
}

async fn label_values(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    meta(&st, Meta::LabelValues, &name, &headers, raw, &body).await
}

async fn series(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    meta(&st, Meta::Series, "", &headers, raw, &body).await
}

async fn index_stats(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    meta(&st, Meta::IndexStats, "", &headers, raw, &body).await
}

async fn meta(
    st: &ApiState,
    kind: Meta,
    label: &str,
    headers: &HeaderMap,
    raw: Option<String>,
    body: &Bytes,
) -> Response {
    let p = collect_params(raw, headers, body);
    match meta_answer(st, kind, label, headers, &p).await {
        Ok(v) => ok_json(kind.endpoint(), v),
        Err(e) => error_response(kind.endpoint(), &e),
    }
}

async fn meta_answer(
    st: &ApiState,
    kind: Meta,
    label: &str,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Value> {
    let tenant = tenant(headers)?;
    let (start, end) = parse_range(p, now_ns())?;
    let selectors: Vec<String> = match kind {
        // `match[]` (Loki also takes `match`), at least one.
        Meta::Series => {
            let mut s: Vec<String> = p.all("match[]").to_vec();
            s.extend(p.all("match").iter().cloned());
            s.retain(|s| !s.is_empty());
            if s.is_empty() {
                return Err(QueryError::BadParam(
                    "0 matcher groups supplied, at least one required".into(),
                ));
            }
            s
        }
        Meta::IndexStats => vec![required(p, "query")?.to_string()],
        // An optional `query` narrows the label browser.
        Meta::Labels | Meta::LabelValues => {
            p.get("query").map(str::to_string).into_iter().collect()
        }
    };
    let streams = matching_streams(st, &tenant, start, end, &selectors).await?;
    Ok(match kind {
        Meta::Labels => {
            let names: BTreeSet<&str> = streams
                .iter()
                .flat_map(|s| s.labels.iter().map(|(n, _)| n))
                .collect();
            json!({"status": "success", "data": names})
        }
        Meta::LabelValues => {
            let values: BTreeSet<&str> =
                streams.iter().filter_map(|s| s.labels.get(label)).collect();
            json!({"status": "success", "data": values})
        }
        Meta::Series => {
            let mut sets: Vec<&Labels> = streams.iter().map(|s| &s.labels).collect();
            sets.sort_by_key(|l| l.to_string());
            sets.dedup();
            json!({"status": "success", "data": sets})
        }
        Meta::IndexStats => {
            let mut fps: Vec<u64> = streams.iter().map(|s| s.fingerprint).collect();
            fps.sort_unstable();
            let s = st.store().index_stats(&tenant, &fps, start, end).await?;
            json!({
                "streams": s.streams,
                "chunks": s.chunks,
                "entries": s.entries,
                "bytes": s.bytes,
            })
        }
    })
}

/// Grafana reads the version to pick features; Argus speaks Loki's 3.x API.
async fn buildinfo() -> Response {
    ok_json(
        "buildinfo",
        json!({
            "version": "3.4.0",
            "revision": "argus",
            "branch": "argus",
            "buildUser": "argus",
            "buildDate": "",
            "goVersion": "",
            "argusVersion": env!("CARGO_PKG_VERSION"),
        }),
    )
}
