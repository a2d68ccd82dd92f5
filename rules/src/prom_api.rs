//! Prometheus' HTTP API over the metric window and the rule engine's state, so Grafana
//! and `promtool query` work against Argus: `/api/v1/query`, `/query_range`, `/series`,
//! `/labels`, `/label/{name}/values`, `/rules`, `/alerts`, `/status/buildinfo`,
//! `/format_query`, plus the empty answers Grafana asks for (`/metadata`,
//! `/query_exemplars`).
//!
//! As Prometheus: GET with a query string or POST with a form body (form values win),
//! timestamps as RFC 3339 or float Unix seconds (rounded to ms), durations as float
//! seconds or Prometheus durations; the JSON envelope `{status, data}` with values as
//! strings and timestamps as float seconds, `warnings` when results were truncated;
//! failures as `{status: "error", errorType, error}` with 400 (`bad_data`), 422
//! (`execution`), 503 (`timeout`), 404 (`not_found`). Range queries are refused past
//! 11,000 points per series, as Prometheus does.
//!
//! Tenants: `X-Scope-OrgID` picks the tenant (as Mimir and Loki do), `default` when
//! absent; each tenant sees only its own window, rules and alerts.
//!
//! Owned here too: the state the service shares with the API — [`Windows`] (one metric
//! window per tenant) and [`RuleBoard`] (the status of every evaluated group).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use argus_query::api::params::Params;
use argus_schemas::Labels;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::Expr;
use serde_json::{Value as Json, json};

use crate::RulesError;
use crate::group::{ApiGroup, ApiRule};
use crate::promql::{Engine, Value};
use crate::window::{MetricWindow, WindowOptions};

/// Prometheus' limit on points per series of a range query.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// The tenant header.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// One metric window per tenant, created when the tenant's first sample arrives.
pub struct Windows {
    opts: WindowOptions,
    map: RwLock<HashMap<String, Arc<MetricWindow>>>,
}

impl Windows {
    pub fn new(opts: WindowOptions) -> Self {
        Windows {
            opts,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// The tenant's window, if it has one.
    pub fn get(&self, tenant: &str) -> Option<Arc<MetricWindow>> {
        self.map.read().expect("windows lock").get(tenant).cloned()
    }

    /// The tenant's window, created empty if it has none.
    pub fn get_or_create(&self, tenant: &str) -> Arc<MetricWindow> {
        if let Some(w) = self.get(tenant) {
            return w;
        }
        self.map
            .write()
            .expect("windows lock")
            .entry(tenant.to_string())
            .or_insert_with(|| Arc::new(MetricWindow::new(self.opts.clone())))
            .clone()
    }

    /// Tenants with a window, sorted.
    pub fn tenants(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .map
            .read()
            .expect("windows lock")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// One tenant's groups by (file, name).
type TenantGroups = BTreeMap<(String, String), ApiGroup>;

/// The status of every group, per tenant, ordered by file then name (as Prometheus
/// lists them).
#[derive(Default)]
pub struct RuleBoard {
    tenants: RwLock<HashMap<String, TenantGroups>>,
}

impl RuleBoard {
    pub fn new() -> Self {
        RuleBoard::default()
    }

    /// Replaces one group's status.
    pub fn set(&self, tenant: &str, status: ApiGroup) {
        self.tenants
            .write()
            .expect("rule board lock")
            .entry(tenant.to_string())
            .or_default()
            .insert((status.file.clone(), status.name.clone()), status);
    }

    /// Keeps only the groups `keep` accepts, given tenant, file and group name (after
    /// a reload).
    pub fn retain(&self, keep: impl Fn(&str, &str, &str) -> bool) {
        let mut t = self.tenants.write().expect("rule board lock");
        for (tenant, groups) in t.iter_mut() {
            groups.retain(|(file, name), _| keep(tenant, file, name));
        }
    }

    /// The tenant's groups, ordered by file then name.
    pub fn groups(&self, tenant: &str) -> Vec<ApiGroup> {
        self.tenants
            .read()
            .expect("rule board lock")
            .get(tenant)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct PromApiState {
    pub windows: Arc<Windows>,
    pub engine: Arc<Engine>,
    pub rules: Arc<RuleBoard>,
    /// Longest a query may run (the `timeout` parameter can only shorten it).
    pub query_timeout: Duration,
}

/// The routes, to be merged into the binary's router.
pub fn router(state: PromApiState) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/metadata", get(metadata))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .with_state(state)
}

/// An API failure: Prometheus' error type and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadData,
    Execution,
    Timeout,
    Internal,
    NotFound,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
            ErrorKind::NotFound => "not_found",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadData => StatusCode::BAD_REQUEST,
            ErrorKind::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorKind::BadData,
            message: message.into(),
        }
    }

    /// Prometheus' `invalid parameter "name": …`.
    fn param(name: &str, message: impl std::fmt::Display) -> Self {
        ApiError::bad(format!("invalid parameter {name:?}: {message}"))
    }

    fn exec(e: RulesError) -> Self {
        let kind = match e {
            RulesError::BadRequest(_) | RulesError::Parse(_) => ErrorKind::BadData,
            RulesError::NotFound(_) => ErrorKind::NotFound,
            RulesError::Bus(_) | RulesError::Query(_) => ErrorKind::Internal,
            _ => ErrorKind::Execution,
        };
        ApiError {
            kind,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "error",
            "errorType": self.kind.as_str(),
            "error": self.message,
        });
        (
            self.kind.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// A success answer from already rendered `data` JSON.
fn success_raw(data: &str, warnings: &[String]) -> Response {
    let mut s = String::with_capacity(data.len() + 40);
    s.push_str("{\"status\":\"success\",\"data\":");
    s.push_str(data);
    if !warnings.is_empty() {
        s.push_str(",\"warnings\":");
        s.push_str(&Json::from(warnings.to_vec()).to_string());
    }
    s.push('}');
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        s,
    )
        .into_response()
}

fn success(data: Json) -> Response {
    success_raw(&data.to_string(), &[])
}

/// Query-string and form parameters; form values come first, as Go's `FormValue`.
fn params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Params {
    let mut p = Params::default();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        p.extend_from_urlencoded(&String::from_utf8_lossy(body));
    }
    if let Some(q) = query {
        p.extend_from_urlencoded(&q);
    }
    p
}

/// The request's tenant.
fn tenant(headers: &HeaderMap) -> Result<String, ApiError> {
    match headers.get(TENANT_HEADER).and_then(|v| v.to_str().ok()) {
        None | Some("") => Ok(argus_schemas::DEFAULT_TENANT.to_string()),
        Some(t) => {
            argus_schemas::validate_tenant(t).map_err(ApiError::bad)?;
            Ok(t.to_string())
        }
    }
}

fn now_ms() -> i64 {
    argus_schemas::Timestamp::now().as_millis()
}

/// Prometheus' `parseTime`: float Unix seconds (fraction rounded to ms) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(bad());
        }
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round();
        let ms = secs * 1000.0 + frac;
        if ms.abs() > 9.2e18 {
            return Err(bad());
        }
        return Ok(ms as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| bad())
}

/// Prometheus' `parseDuration`: float seconds or a Prometheus duration; ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ns = f * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok((ns / 1e6) as i64);
    }
    argus_schemas::duration::parse_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// An optional time parameter (`parseTimeParam`).
fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None => Ok(default),
        Some(v) => parse_time(v)
            .map_err(|e| ApiError::param(name, format!("invalid time value for '{name}': {e}"))),
    }
}

/// `limit`: empty or 0 means none.
fn limit_param(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None => Ok(0),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => Err(ApiError::param("limit", "limit must be non-negative")),
            Ok(n) => Ok(n as usize),
            Err(_) => Err(ApiError::param(
                "limit",
                format!("strconv.Atoi: parsing {v:?}: invalid syntax"),
            )),
        },
    }
}

/// Prometheus' MinTime and MaxTime, in ms.
const MIN_TIME_MS: i64 = -9_223_309_901_257_974;
const MAX_TIME_MS: i64 = 9_223_309_901_257_974;

/// The query timeout: the configured one, shortened by a `timeout` parameter.
fn timeout_param(state: &PromApiState, p: &Params) -> Result<Duration, ApiError> {
    let mut t = state.query_timeout;
    if let Some(v) = p.get("timeout") {
        let ms = parse_duration(v).map_err(|e| ApiError::param("timeout", e))?;
        if ms > 0 {
            t = t.min(Duration::from_millis(ms as u64));
        }
    }
    Ok(t)
}

/// Runs a query off the async threads, within `timeout`.
async fn run_query(
    timeout: Duration,
    f: impl FnOnce() -> Result<Value, RulesError> + Send + 'static,
) -> Result<Value, ApiError> {
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(f)).await {
        Err(_) => Err(ApiError {
            kind: ErrorKind::Timeout,
            message: "query timed out in expression evaluation".into(),
        }),
        Ok(Err(e)) => Err(ApiError {
            kind: ErrorKind::Internal,
            message: format!("query failed: {e}"),
        }),
        Ok(Ok(r)) => r.map_err(ApiError::exec),
    }
}

fn window_of(state: &PromApiState, tenant: &str) -> Arc<MetricWindow> {
    static EMPTY: LazyLock<Arc<MetricWindow>> =
        LazyLock::new(|| Arc::new(MetricWindow::new(WindowOptions::default())));
    state.windows.get(tenant).unwrap_or_else(|| EMPTY.clone())
}

fn parse_expr(q: Option<&str>) -> Result<Expr, ApiError> {
    Engine::parse(q.unwrap_or("")).map_err(|e| ApiError::param("query", e))
}

async fn query(
    State(state): State<PromApiState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    match query_inner(&state, &headers, q, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn query_inner(
    state: &PromApiState,
    headers: &HeaderMap,
    q: Option<String>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let p = params(q, headers, body);
    let tenant = tenant(headers)?;
    let limit = limit_param(&p)?;
    let t = time_param(&p, "time", now_ms())?;
    let timeout = timeout_param(state, &p)?;
    let expr = parse_expr(p.get("query"))?;
    let (engine, window) = (state.engine.clone(), window_of(state, &tenant));
    let value = run_query(timeout, move || engine.instant_expr(&*window, &expr, t)).await?;
    Ok(render_value(value, limit))
}

async fn query_range(
    State(state): State<PromApiState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    match query_range_inner(&state, &headers, q, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn query_range_inner(
    state: &PromApiState,
    headers: &HeaderMap,
    q: Option<String>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let p = params(q, headers, body);
    let tenant = tenant(headers)?;
    let limit = limit_param(&p)?;
    let start =
        parse_time(p.get("start").unwrap_or("")).map_err(|e| ApiError::param("start", e))?;
    let end = parse_time(p.get("end").unwrap_or("")).map_err(|e| ApiError::param("end", e))?;
    if end < start {
        return Err(ApiError::param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step =
        parse_duration(p.get("step").unwrap_or("")).map_err(|e| ApiError::param("step", e))?;
    if step <= 0 {
        return Err(ApiError::param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = timeout_param(state, &p)?;
    let expr = parse_expr(p.get("query"))?;
    let (engine, window) = (state.engine.clone(), window_of(state, &tenant));
    let value = run_query(timeout, move || {
        engine.range_expr(&*window, &expr, start, end, step)
    })
    .await?;
    Ok(render_value(value, limit))
}

/// `{"resultType":…,"result":…}`, truncated to `limit` series when non-zero.
fn render_value(value: Value, limit: usize) -> Response {
    let mut warnings = Vec::new();
    let mut out = String::new();
    out.push_str("{\"resultType\":\"");
    out.push_str(value.type_name());
    out.push_str("\",\"result\":");
    match value {
        Value::Scalar(t, v) => {
            out.push('[');
            push_timestamp(&mut out, t);
            out.push(',');
            push_string(&mut out, &format_float(v));
            out.push(']');
        }
        Value::String(t, s) => {
            out.push('[');
            push_timestamp(&mut out, t);
            out.push(',');
            push_string(&mut out, &s);
            out.push(']');
        }
        Value::Vector(mut v) => {
            if limit > 0 && v.len() > limit {
                v.truncate(limit);
                warnings.push("results truncated due to limit".to_string());
            }
            out.push('[');
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.labels);
                out.push_str(",\"value\":[");
                push_timestamp(&mut out, s.t_ms);
                out.push(',');
                push_string(&mut out, &format_float(s.value));
                out.push_str("]}");
            }
            out.push(']');
        }
        Value::Matrix(mut m) => {
            if limit > 0 && m.len() > limit {
                m.truncate(limit);
                warnings.push("results truncated due to limit".to_string());
            }
            out.push('[');
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.labels);
                if !s.points.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, (t, v)) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        out.push('[');
                        push_timestamp(&mut out, *t);
                        out.push(',');
                        push_string(&mut out, &format_float(*v));
                        out.push(']');
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('}');
    success_raw(&out, &warnings)
}

fn push_string(out: &mut String, s: &str) {
    out.push_str(&Json::from(s).to_string());
}

fn push_labels(out: &mut String, l: &Labels) {
    out.push_str(&serde_json::to_string(l).expect("labels serialize"));
}

/// A timestamp in ms as Prometheus writes it: seconds, and `.` with three digits when
/// there is a fraction (`1435781451.781`, `1435781451.080`, `1435781451`).
pub fn format_timestamp(t: i64) -> String {
    let mut s = String::new();
    push_timestamp(&mut s, t);
    s
}

fn push_timestamp(out: &mut String, t: i64) {
    let neg = t < 0;
    let a = t.unsigned_abs();
    if neg {
        out.push('-');
    }
    out.push_str(&(a / 1000).to_string());
    let frac = a % 1000;
    if frac != 0 {
        out.push_str(&format!(".{frac:03}"));
    }
}

/// A sample value as Prometheus writes it in JSON: Go's `strconv.FormatFloat` with
/// `'f'` and the shortest precision, or `'e'` below 1e-6 and from 1e21 on; `NaN`,
/// `+Inf`, `-Inf`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        crate::group::format_float_e(v)
    } else {
        format!("{v}")
    }
}

/// Matchers of one `match[]` selector (`up{job="x"}`, `{__name__=~"a.*"}`); an `or`
/// inside the braces gives several sets.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = promql_parser::parser::parse(s)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "1:1: parse error: unexpected expression {s:?}: a series selector is expected"
        ));
    };
    let name = vs
        .name
        .as_ref()
        .map(|n| Matcher::new(MatchOp::Equal, "__name__", n));
    let with_name = |mut ms: Vec<Matcher>| {
        if let Some(n) = &name
            && !ms.iter().any(|m| m.name == "__name__")
        {
            ms.push(n.clone());
        }
        ms
    };
    let mut sets = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        sets.push(with_name(vs.matchers.matchers.clone()));
    } else {
        for set in &vs.matchers.or_matchers {
            sets.push(with_name(set.clone()));
        }
    }
    Ok(sets)
}

/// Every `match[]` parameter; each set needs a matcher that does not match "".
fn matcher_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, String> {
    let mut out = Vec::new();
    for s in p.all("match[]") {
        for set in parse_selector(s)? {
            if set.iter().all(|m| m.is_match("")) {
                return Err("match[] must contain at least one non-empty matcher".into());
            }
            out.push(set);
        }
    }
    Ok(out)
}

async fn series(
    State(state): State<PromApiState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let p = params(q, &headers, &body);
        let tenant = tenant(&headers)?;
        if p.all("match[]").is_empty() {
            return Err(ApiError::bad("no match[] parameter provided"));
        }
        let limit = limit_param(&p)?;
        let start = time_param(&p, "start", MIN_TIME_MS)?;
        let end = time_param(&p, "end", MAX_TIME_MS)?;
        let sets = matcher_sets(&p).map_err(|e| ApiError::param("match[]", e))?;
        let mut found = window_of(&state, &tenant).series(&sets, start, end);
        let mut warnings = Vec::new();
        if limit > 0 && found.len() > limit {
            found.truncate(limit);
            warnings.push("results truncated due to limit".to_string());
        }
        let data = serde_json::to_string(&found).expect("labels serialize");
        Ok(success_raw(&data, &warnings))
    })();
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn labels(
    State(state): State<PromApiState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let p = params(q, &headers, &body);
        let tenant = tenant(&headers)?;
        let limit = limit_param(&p)?;
        let start = time_param(&p, "start", MIN_TIME_MS)?;
        let end = time_param(&p, "end", MAX_TIME_MS)?;
        let sets = matcher_sets(&p).map_err(ApiError::bad)?;
        let names = window_of(&state, &tenant).label_names(&sets, start, end);
        Ok(strings_answer(names, limit))
    })();
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn label_values(
    State(state): State<PromApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let p = params(q, &headers, &Bytes::new());
        let tenant = tenant(&headers)?;
        if name.is_empty() {
            return Err(ApiError::bad(format!("invalid label name: {name:?}")));
        }
        let limit = limit_param(&p)?;
        let start = time_param(&p, "start", MIN_TIME_MS)?;
        let end = time_param(&p, "end", MAX_TIME_MS)?;
        let sets = matcher_sets(&p).map_err(ApiError::bad)?;
        let values = window_of(&state, &tenant).label_values(&name, &sets, start, end);
        Ok(strings_answer(values, limit))
    })();
    r.unwrap_or_else(IntoResponse::into_response)
}

fn strings_answer(mut v: Vec<String>, limit: usize) -> Response {
    let mut warnings = Vec::new();
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        warnings.push("results truncated due to limit".to_string());
    }
    success_raw(&Json::from(v).to_string(), &warnings)
}

async fn rules(
    State(state): State<PromApiState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let p = params(q, &headers, &Bytes::new());
        let tenant = tenant(&headers)?;
        let typ = p.get("type").unwrap_or("").to_ascii_lowercase();
        if !typ.is_empty() && typ != "alert" && typ != "record" {
            return Err(ApiError::param(
                "type",
                format!("not supported value {typ:?}"),
            ));
        }
        let exclude_alerts = match p.get("exclude_alerts").map(str::to_ascii_lowercase) {
            None => false,
            Some(v) => parse_go_bool(&v).ok_or_else(|| {
                ApiError::param(
                    "exclude_alerts",
                    format!(
                        "error converting exclude_alerts: strconv.ParseBool: parsing {v:?}: invalid syntax"
                    ),
                )
            })?,
        };
        let sets = matcher_sets(&p).map_err(ApiError::bad)?;
        let names = p.all("rule_name[]");
        let group_names = p.all("rule_group[]");
        let files = p.all("file[]");
        let mut groups = Vec::new();
        for mut g in state.rules.groups(&tenant) {
            if !group_names.is_empty() && !group_names.contains(&g.name) {
                continue;
            }
            if !files.is_empty() && !files.contains(&g.file) {
                continue;
            }
            let rules = std::mem::take(&mut g.rules);
            let mut kept = Vec::new();
            for r in rules {
                let (name, is_alert) = match &r {
                    ApiRule::Alerting(a) => (&a.name, true),
                    ApiRule::Recording(x) => (&x.name, false),
                };
                if (typ == "alert" && !is_alert) || (typ == "record" && is_alert) {
                    continue;
                }
                if !names.is_empty() && !names.contains(name) {
                    continue;
                }
                if !sets.is_empty() && !sets.iter().any(|set| rule_matches(&r, set)) {
                    continue;
                }
                let mut o = serde_json::to_value(&r).expect("rule serializes");
                if exclude_alerts && is_alert {
                    o["alerts"] = Json::Null;
                }
                kept.push(o);
            }
            if kept.is_empty() {
                continue;
            }
            let mut o = serde_json::to_value(&g).expect("group serializes");
            o["rules"] = Json::Array(kept);
            groups.push(o);
        }
        Ok(success(json!({ "groups": groups })))
    })();
    r.unwrap_or_else(IntoResponse::into_response)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A rule matches a matcher set when its labels (plus `alertname` for alerting rules,
/// `__name__` for recording rules) satisfy every matcher.
fn rule_matches(r: &ApiRule, set: &[Matcher]) -> bool {
    let mut l = match r {
        ApiRule::Alerting(a) => {
            let mut l = a.labels.clone();
            l.insert("alertname", a.name.clone());
            l
        }
        ApiRule::Recording(x) => {
            let mut l = x.labels.clone();
            l.insert("__name__", x.name.clone());
            l
        }
    };
    l.remove("");
    set.iter().all(|m| m.is_match(l.get(&m.name).unwrap_or("")))
}

async fn alerts(State(state): State<PromApiState>, headers: HeaderMap) -> Response {
    let tenant = match tenant(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    for g in state.rules.groups(&tenant) {
        for r in g.rules {
            if let ApiRule::Alerting(a) = r {
                out.extend(a.alerts);
            }
        }
    }
    success(json!({ "alerts": out }))
}

async fn buildinfo() -> Response {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

async fn format_query(headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = params(q, &headers, &body);
    match parse_expr(p.get("query")) {
        Ok(e) => success(Json::from(e.prettify())),
        Err(e) => e.into_response(),
    }
}

async fn metadata() -> Response {
    success(json!({}))
}

async fn query_exemplars() -> Response {
    success(json!([]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_times_as_prometheus_writes_them() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.25), "0.25");
        assert_eq!(format_float(1e-7), "1e-07");
        assert_eq!(format_float(1e21), "1e+21");
        assert_eq!(format_float(123456789.0), "123456789");
        assert_eq!(format_float(-0.000001), "-0.000001");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_timestamp(1_435_781_451_781), "1435781451.781");
        assert_eq!(format_timestamp(1_435_781_451_080), "1435781451.080");
        assert_eq!(format_timestamp(1_435_781_451_000), "1435781451");
        assert_eq!(format_timestamp(-1_500), "-1.500");
    }

    #[test]
    fn params_parse_as_prometheus() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("1435781451").unwrap(), 1_435_781_451_000);
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(
            parse_time("abc").unwrap_err(),
            "cannot parse \"abc\" to a valid timestamp"
        );
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000);
        assert_eq!(
            parse_duration("x").unwrap_err(),
            "cannot parse \"x\" to a valid duration"
        );
    }

    #[test]
    fn selectors_give_matcher_sets() {
        let sets = parse_selector("up{job=\"a\"}").unwrap();
        assert_eq!(sets.len(), 1);
        let names: Vec<_> = sets[0].iter().map(|m| m.name.as_str()).collect();
        assert!(
            names.contains(&"__name__") && names.contains(&"job"),
            "{names:?}"
        );
        assert!(parse_selector("sum(up)").is_err());
        let sets = parse_selector("{a=\"1\" or b=\"2\"}").unwrap();
        assert_eq!(sets.len(), 2);
    }
}
