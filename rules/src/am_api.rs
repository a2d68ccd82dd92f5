//! Alertmanager 0.25's HTTP API v2 over the [`AlertStore`] and its
//! [`SilenceService`](crate::silences::SilenceService).
//!
//! This module owns the routes `/api/v2/status`, `/api/v2/receivers`,
//! `/api/v2/silences` (GET, POST), `/api/v2/silence/{silenceID}` (GET, DELETE),
//! `/api/v2/alerts` (GET, POST) and `/api/v2/alerts/groups`, their JSON (camelCase,
//! times as RFC 3339 in UTC with milliseconds, as Alertmanager prints them), their query
//! parameters and their error answers: handler errors are a JSON string with status
//! 400/404/500, request-shape errors are `{"code":…,"message":…}` with 400 or 422, as
//! Alertmanager's generated server gives them. It also owns [`AlertmanagerConfig`], the
//! `alertmanager:` section of the configuration (`resolve_timeout`, silence retention,
//! the route, receivers and `inhibit_rules`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use argus_schemas::duration::serde_duration;
use argus_schemas::{Labels, Timestamp};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::RulesError;
use crate::alert_store::{
    AlertSink, AlertStore, AlertView, DEFAULT_RESOLVE_TIMEOUT, PostedAlert, RouteMatch,
    StaticRouting, prepare_posted,
};
use crate::inhibit::{InhibitRuleConfig, Inhibitor};
use crate::silences::{
    DEFAULT_RETENTION, LabelMatcher, MatchType, Silence, SilenceSpec, SilenceState,
};

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// `alertmanager:` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// End given to posted alerts that have none (`global.resolve_timeout`).
    #[serde(with = "serde_duration")]
    pub resolve_timeout: Duration,
    /// How long expired silences are kept (`--data.retention`).
    #[serde(with = "serde_duration")]
    pub silence_retention: Duration,
    /// How often each instance reads silences written by others.
    #[serde(with = "serde_duration")]
    pub silence_sync_interval: Duration,
    /// The route (one receiver and `group_by` until the notifier's route tree).
    pub route: StaticRouting,
    /// `inhibit_rules` in Alertmanager's format.
    pub inhibit_rules: Vec<InhibitRuleConfig>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            silence_retention: DEFAULT_RETENTION,
            silence_sync_interval: Duration::from_secs(1),
            route: StaticRouting::default(),
            inhibit_rules: Vec::new(),
        }
    }
}

impl AlertmanagerConfig {
    /// Checks the values and compiles the inhibition rules.
    pub fn validate(&self) -> Result<Inhibitor, RulesError> {
        if self.resolve_timeout.is_zero() {
            return Err(RulesError::BadRequest(
                "alertmanager.resolve_timeout must be positive".into(),
            ));
        }
        if self.silence_sync_interval.is_zero() {
            return Err(RulesError::BadRequest(
                "alertmanager.silence_sync_interval must be positive".into(),
            ));
        }
        if self.route.receiver.is_empty() {
            return Err(RulesError::BadRequest(
                "alertmanager.route.receiver must not be empty".into(),
            ));
        }
        Inhibitor::from_configs(&self.inhibit_rules)
    }

    /// The configuration in Alertmanager's YAML shape, for `config.original` in
    /// `GET /api/v2/status`.
    pub fn original(&self) -> String {
        #[derive(Serialize)]
        struct Global {
            resolve_timeout: String,
        }
        #[derive(Serialize)]
        struct Route<'a> {
            receiver: &'a str,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            group_by: &'a [String],
        }
        #[derive(Serialize)]
        struct Receiver {
            name: String,
        }
        #[derive(Serialize)]
        struct Original<'a> {
            global: Global,
            route: Route<'a>,
            #[serde(skip_serializing_if = "<[InhibitRuleConfig]>::is_empty")]
            inhibit_rules: &'a [InhibitRuleConfig],
            receivers: Vec<Receiver>,
            templates: [(); 0],
        }
        use crate::alert_store::AlertRouting;
        let o = Original {
            global: Global {
                resolve_timeout: argus_schemas::duration::format_duration(self.resolve_timeout),
            },
            route: Route {
                receiver: &self.route.receiver,
                group_by: &self.route.group_by,
            },
            inhibit_rules: &self.inhibit_rules,
            receivers: self
                .route
                .receivers()
                .into_iter()
                .map(|name| Receiver { name })
                .collect(),
            templates: [],
        };
        serde_yaml_ng::to_string(&o).unwrap_or_default()
    }
}

/// `versionInfo` in `GET /api/v2/status`. `version` is the Alertmanager API level
/// served, so that `amtool`'s version check passes; the other fields describe Argus.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub branch: String,
    pub build_date: String,
    pub build_user: String,
    pub go_version: String,
    pub revision: String,
    pub version: String,
}

impl Default for VersionInfo {
    fn default() -> Self {
        VersionInfo {
            branch: "argus".into(),
            build_date: String::new(),
            build_user: "argus".into(),
            go_version: "none (argus, Rust)".into(),
            revision: format!("argus-{}", env!("CARGO_PKG_VERSION")),
            version: "0.25.0".into(),
        }
    }
}

/// What the API serves besides alerts and silences.
#[derive(Debug, Clone)]
pub struct AmApiSettings {
    /// `config.original` in `GET /api/v2/status`.
    pub original_config: String,
    pub version: VersionInfo,
    pub resolve_timeout: Duration,
    /// `uptime` in `GET /api/v2/status` (Alertmanager prints its start time there).
    pub started: Timestamp,
}

impl AmApiSettings {
    pub fn from_config(cfg: &AlertmanagerConfig) -> Self {
        AmApiSettings {
            original_config: cfg.original(),
            version: VersionInfo::default(),
            resolve_timeout: cfg.resolve_timeout,
            started: Timestamp::now(),
        }
    }
}

/// The API's state; build the routes with [`AmApi::router`].
#[derive(Clone)]
pub struct AmApi {
    store: Arc<AlertStore>,
    sink: Option<Arc<dyn AlertSink>>,
    settings: Arc<AmApiSettings>,
}

impl AmApi {
    /// Posted alerts go straight into `store`.
    pub fn new(store: Arc<AlertStore>, settings: AmApiSettings) -> Self {
        AmApi {
            store,
            sink: None,
            settings: Arc::new(settings),
        }
    }

    /// Posted alerts (validated, with Alertmanager's defaults) go to `sink` instead of
    /// the store; the sink is responsible for them reaching the store.
    pub fn with_sink(mut self, sink: Arc<dyn AlertSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    pub fn store(&self) -> &Arc<AlertStore> {
        &self.store
    }

    /// The `/api/v2/...` routes, to merge into the HTTP listener's router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v2/status", get(get_status))
            .route("/api/v2/receivers", get(get_receivers))
            .route("/api/v2/silences", get(get_silences).post(post_silences))
            .route(
                "/api/v2/silence/{id}",
                get(get_silence).delete(delete_silence),
            )
            .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
            .route("/api/v2/alerts/groups", get(get_alert_groups))
            .with_state(self.clone())
    }
}

// ---------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------

/// A time as Alertmanager prints it: RFC 3339, UTC, milliseconds (truncated).
pub fn format_time(t: Timestamp) -> String {
    let dt = Utc.timestamp_nanos(t.0);
    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A parsed request time: `None` is Go's zero time (`0001-01-01T00:00:00Z`, which
/// amtool sends for "not set"); times outside Unix nanoseconds' range are clamped.
fn parse_time(s: &str) -> Result<Option<Timestamp>, String> {
    let dt: DateTime<Utc> = DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").map(|d| d.with_timezone(&Utc))
        })
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|n| n.and_utc()))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|n| n.and_utc()))
        .map_err(|_| format!("parsing time {s:?}: not an RFC 3339 date-time"))?;
    let go_zero = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).single();
    if Some(dt) == go_zero {
        return Ok(None);
    }
    Ok(Some(Timestamp(dt.timestamp_nanos_opt().unwrap_or(
        if dt.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        },
    ))))
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut b = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
    b.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], b).into_response()
}

/// A handler error: a JSON string.
fn err_string(status: StatusCode, msg: impl Into<String>) -> Response {
    json_response(status, &msg.into())
}

/// A request-shape error of the generated server: `{"code":…,"message":…}`.
fn err_code(status: StatusCode, code: u16, msg: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct E {
        code: u16,
        message: String,
    }
    json_response(
        status,
        &E {
            code,
            message: msg.into(),
        },
    )
}

fn unprocessable_required(field: &str) -> Response {
    err_code(
        StatusCode::UNPROCESSABLE_ENTITY,
        602,
        format!("{field} in body is required"),
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MatcherOut<'a> {
    is_equal: bool,
    is_regex: bool,
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct SilenceStatusOut {
    state: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SilenceOut<'a> {
    id: &'a str,
    status: SilenceStatusOut,
    updated_at: String,
    comment: &'a str,
    created_by: &'a str,
    ends_at: String,
    matchers: Vec<MatcherOut<'a>>,
    starts_at: String,
}

fn silence_out(s: &Silence, now: Timestamp) -> SilenceOut<'_> {
    SilenceOut {
        id: &s.id,
        status: SilenceStatusOut {
            state: s.state(now).as_str(),
        },
        updated_at: format_time(s.updated_at),
        comment: &s.comment,
        created_by: &s.created_by,
        ends_at: format_time(s.ends_at),
        matchers: s
            .matchers
            .iter()
            .map(|m| MatcherOut {
                is_equal: m.kind.is_equal(),
                is_regex: m.kind.is_regex(),
                name: &m.name,
                value: &m.value,
            })
            .collect(),
        starts_at: format_time(s.starts_at),
    }
}

#[derive(Serialize)]
struct ReceiverOut {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertStatusOut {
    inhibited_by: Vec<String>,
    silenced_by: Vec<String>,
    state: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertOut {
    annotations: Labels,
    ends_at: String,
    fingerprint: String,
    receivers: Vec<ReceiverOut>,
    starts_at: String,
    status: AlertStatusOut,
    updated_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    generator_url: String,
    labels: Labels,
}

fn alert_out(v: &AlertView, receivers: Vec<String>, api: &AmApi, now: Timestamp) -> AlertOut {
    let a = &v.alert;
    // An alert of this rule engine has no announced end: show the end a sender that
    // keeps re-sending it would announce.
    let ends_at = a.ends_at.unwrap_or(Timestamp(
        now.0
            .saturating_add(api.settings.resolve_timeout.as_nanos() as i64),
    ));
    AlertOut {
        annotations: a.annotations.clone(),
        ends_at: format_time(ends_at),
        fingerprint: format!("{:016x}", v.fingerprint),
        receivers: receivers
            .into_iter()
            .map(|name| ReceiverOut { name })
            .collect(),
        starts_at: format_time(a.starts_at),
        status: AlertStatusOut {
            inhibited_by: v.status.inhibited_by.clone(),
            silenced_by: v.status.silenced_by.clone(),
            state: match v.status.state {
                crate::alert_store::AlertStatusState::Unprocessed => "unprocessed",
                crate::alert_store::AlertStatusState::Active => "active",
                crate::alert_store::AlertStatusState::Suppressed => "suppressed",
            },
        },
        updated_at: format_time(a.updated_at),
        generator_url: a.generator_url.clone(),
        labels: a.labels.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Query strings
// ---------------------------------------------------------------------------------------

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// go-openapi's `ConvertBool`: these words are true, anything else false.
fn convert_bool(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "ok" | "y" | "on" | "selected" | "checked" | "t" | "enabled"
    )
}

struct AlertQuery {
    matchers: Vec<LabelMatcher>,
    receiver: Option<regex::Regex>,
    active: bool,
    silenced: bool,
    inhibited: bool,
}

/// Errors are the 400 answer's text.
fn parse_alert_query(q: &Option<String>) -> Result<AlertQuery, String> {
    let mut out = AlertQuery {
        matchers: Vec::new(),
        receiver: None,
        active: true,
        silenced: true,
        inhibited: true,
    };
    let mut receiver = None;
    for (k, v) in query_pairs(q) {
        match k.as_str() {
            "filter" => out.matchers.push(LabelMatcher::parse(&v)?),
            "receiver" => receiver = Some(v),
            "active" => out.active = convert_bool(&v),
            "silenced" => out.silenced = convert_bool(&v),
            "inhibited" => out.inhibited = convert_bool(&v),
            // Accepted and, as in Alertmanager 0.25, not used: alerts are processed
            // before they are listed.
            "unprocessed" => {}
            _ => {}
        }
    }
    if let Some(r) = receiver {
        out.receiver = Some(
            crate::silences::compile_regex(&format!("^(?:{r})$"))
                .map_err(|e| format!("failed to parse receiver param: {e}"))?,
        );
    }
    Ok(out)
}

/// Alertmanager's `matchFilterLabels`: an empty value on `=`/`=~` also accepts a missing
/// label, on `!=`/`!~` any present one.
fn match_filter_labels(matchers: &[LabelMatcher], labels: &Labels) -> bool {
    for m in matchers {
        let v = labels.get(&m.name);
        match m.kind {
            MatchType::NotEqual | MatchType::NotRegex => {
                if m.value.is_empty() && v.is_some() {
                    continue;
                }
            }
            _ => {
                if m.value.is_empty() && v.is_none() {
                    continue;
                }
            }
        }
        if !m.matches(v.unwrap_or("")) {
            return false;
        }
    }
    true
}

/// Alertmanager's `alertFilter` (the resolved ones are already left out).
fn alert_filter(q: &AlertQuery, v: &AlertView) -> bool {
    use crate::alert_store::AlertStatusState;
    if !q.active && v.status.state == AlertStatusState::Active {
        return false;
    }
    if !q.silenced && !v.status.silenced_by.is_empty() {
        return false;
    }
    if !q.inhibited && !v.status.inhibited_by.is_empty() {
        return false;
    }
    match_filter_labels(&q.matchers, &v.alert.labels)
}

/// Prometheus' `LabelSet.Before`.
fn labels_before(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&str> = a
        .iter()
        .map(|(n, _)| n)
        .chain(b.iter().map(|(n, _)| n))
        .collect();
    names.sort();
    for n in names {
        let Some(x) = a.get(n) else { return Less };
        let Some(y) = b.get(n) else { return Greater };
        match x.cmp(y) {
            Equal => {}
            o => return o,
        }
    }
    Equal
}

/// Alertmanager's `AlertSlice.Less`: by `job`, then `instance`, then the label sets.
fn alert_order(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Greater,
            (Some(_), None) => return Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    labels_before(a, b)
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

async fn get_status(State(api): State<AmApi>) -> Response {
    #[derive(Serialize)]
    struct Cluster {
        peers: [(); 0],
        status: &'static str,
    }
    #[derive(Serialize)]
    struct Config<'a> {
        original: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status<'a> {
        cluster: Cluster,
        config: Config<'a>,
        uptime: String,
        version_info: &'a VersionInfo,
    }
    json_response(
        StatusCode::OK,
        &Status {
            cluster: Cluster {
                peers: [],
                status: "disabled",
            },
            config: Config {
                original: &api.settings.original_config,
            },
            uptime: format_time(api.settings.started),
            version_info: &api.settings.version,
        },
    )
}

async fn get_receivers(State(api): State<AmApi>) -> Response {
    let r: Vec<ReceiverOut> = api
        .store
        .routing()
        .receivers()
        .into_iter()
        .map(|name| ReceiverOut { name })
        .collect();
    json_response(StatusCode::OK, &r)
}

fn silence_order(a: &Silence, b: &Silence, now: Timestamp) -> std::cmp::Ordering {
    let rank = |s: &Silence| match s.state(now) {
        SilenceState::Active => 1,
        SilenceState::Pending => 2,
        SilenceState::Expired => 3,
    };
    let (ra, rb) = (rank(a), rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    let o = match a.state(now) {
        SilenceState::Active => a.ends_at.cmp(&b.ends_at),
        SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
        SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
    };
    o.then_with(|| a.id.cmp(&b.id))
}

async fn get_silences(State(api): State<AmApi>, RawQuery(q): RawQuery) -> Response {
    let mut filter = Vec::new();
    for (k, v) in query_pairs(&q) {
        if k == "filter" {
            match LabelMatcher::parse(&v) {
                Ok(m) => filter.push(m),
                Err(e) => return err_string(StatusCode::BAD_REQUEST, e),
            }
        }
    }
    let now = api.store.now();
    let mut sils: Vec<Silence> = api
        .store
        .silences()
        .list()
        .into_iter()
        // Alertmanager's `CheckSilenceMatchesFilterLabels`: each filter matcher must
        // be one of the silence's matchers.
        .filter(|s| filter.iter().all(|f| s.matchers.contains(f)))
        .collect();
    sils.sort_by(|a, b| silence_order(a, b, now));
    let out: Vec<SilenceOut> = sils.iter().map(|s| silence_out(s, now)).collect();
    json_response(StatusCode::OK, &out)
}

/// go-openapi's `uuid` format.
fn is_uuid(s: &str) -> bool {
    let hex = |p: &str| p.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [one] => one.len() == 32 && hex(one),
        [a, b, c, d, e] => {
            [a.len(), b.len(), c.len(), d.len(), e.len()] == [8, 4, 4, 4, 12]
                && parts.iter().all(|p| hex(p))
        }
        _ => false,
    }
}

fn bad_uuid(id: &str) -> Response {
    err_code(
        StatusCode::UNPROCESSABLE_ENTITY,
        601,
        format!("silenceID in path must be of type uuid: {id:?}"),
    )
}

async fn get_silence(State(api): State<AmApi>, Path(id): Path<String>) -> Response {
    if !is_uuid(&id) {
        return bad_uuid(&id);
    }
    match api.store.silences().get(&id) {
        Some(s) => json_response(StatusCode::OK, &silence_out(&s, api.store.now())),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(State(api): State<AmApi>, Path(id): Path<String>) -> Response {
    if !is_uuid(&id) {
        return bad_uuid(&id);
    }
    match api.store.silences().expire(&id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => err_string(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatcherIn {
    name: Option<String>,
    value: Option<String>,
    is_regex: Option<bool>,
    is_equal: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilenceIn {
    id: Option<String>,
    matchers: Option<Vec<MatcherIn>>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    created_by: Option<String>,
    comment: Option<String>,
}

fn body_error(what: &str, e: impl std::fmt::Display) -> Response {
    err_code(
        StatusCode::BAD_REQUEST,
        400,
        format!("parsing {what} body from \"\" failed, because {e}"),
    )
}

async fn post_silences(State(api): State<AmApi>, body: Bytes) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        return unprocessable_required("silence");
    }
    let p: PostableSilenceIn = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return body_error("silence", e),
    };
    let time = |s: &Option<String>| s.as_deref().map(parse_time).transpose();
    let starts = match time(&p.starts_at) {
        Ok(t) => t,
        Err(e) => return body_error("silence", e),
    };
    let ends = match time(&p.ends_at) {
        Ok(t) => t,
        Err(e) => return body_error("silence", e),
    };
    // Required fields, in the order the generated validator checks them.
    let Some(comment) = p.comment else {
        return unprocessable_required("comment");
    };
    let Some(created_by) = p.created_by else {
        return unprocessable_required("createdBy");
    };
    let Some(ends) = ends else {
        return unprocessable_required("endsAt");
    };
    let Some(matchers_in) = p.matchers else {
        return unprocessable_required("matchers");
    };
    if matchers_in.is_empty() {
        return err_code(
            StatusCode::UNPROCESSABLE_ENTITY,
            612,
            "matchers in body should have at least 1 items",
        );
    }
    let mut matchers = Vec::new();
    for (i, m) in matchers_in.into_iter().enumerate() {
        let Some(is_regex) = m.is_regex else {
            return unprocessable_required(&format!("matchers.{i}.isRegex"));
        };
        let Some(name) = m.name else {
            return unprocessable_required(&format!("matchers.{i}.name"));
        };
        let Some(value) = m.value else {
            return unprocessable_required(&format!("matchers.{i}.value"));
        };
        let kind = MatchType::from_flags(m.is_equal.unwrap_or(true), is_regex);
        matchers.push(LabelMatcher::lenient(kind, name, value));
    }
    let Some(starts) = starts else {
        return unprocessable_required("startsAt");
    };
    // Go's zero time: before everything.
    let starts_at = starts.unwrap_or(Timestamp(i64::MIN));
    let ends_at = ends.unwrap_or(Timestamp(i64::MIN));
    if starts_at >= ends_at {
        return err_string(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        );
    }
    if ends_at < api.store.now() {
        return err_string(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: end time can't be in the past",
        );
    }
    let spec = SilenceSpec {
        id: p.id.filter(|i| !i.is_empty()),
        matchers,
        starts_at,
        ends_at,
        created_by,
        comment,
    };
    match api.store.silences().set(spec).await {
        Ok(id) => {
            #[derive(Serialize)]
            struct Ok {
                #[serde(rename = "silenceID")]
                silence_id: String,
            }
            json_response(StatusCode::OK, &Ok { silence_id: id })
        }
        Err(RulesError::NotFound(m)) => err_string(StatusCode::NOT_FOUND, m),
        Err(RulesError::BadRequest(m)) => err_string(StatusCode::BAD_REQUEST, m),
        Err(e) => err_string(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Routes of a view that pass the receiver filter.
fn routes_passing<'a>(v: &'a AlertView, q: &AlertQuery) -> impl Iterator<Item = &'a RouteMatch> {
    let re = q.receiver.clone();
    v.routes
        .iter()
        .filter(move |r| re.as_ref().is_none_or(|re| re.is_match(&r.receiver)))
}

async fn get_alerts(State(api): State<AmApi>, RawQuery(q): RawQuery) -> Response {
    let q = match parse_alert_query(&q) {
        Ok(q) => q,
        Err(e) => return err_string(StatusCode::BAD_REQUEST, e),
    };
    let now = api.store.now();
    let out: Vec<AlertOut> = api
        .store
        .views()
        .iter()
        .filter(|v| q.receiver.is_none() || routes_passing(v, &q).next().is_some())
        .filter(|v| alert_filter(&q, v))
        .map(|v| {
            let receivers = v.routes.iter().map(|r| r.receiver.clone()).collect();
            alert_out(v, receivers, &api, now)
        })
        .collect();
    json_response(StatusCode::OK, &out)
}

async fn get_alert_groups(State(api): State<AmApi>, RawQuery(q): RawQuery) -> Response {
    let q = match parse_alert_query(&q) {
        Ok(q) => q,
        Err(e) => return err_string(StatusCode::BAD_REQUEST, e),
    };
    let now = api.store.now();
    let views = api.store.views();
    // (receiver, group labels) -> alerts; fingerprint -> receivers.
    let mut groups: Vec<(String, Labels, Vec<usize>)> = Vec::new();
    let mut receivers: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (i, v) in views.iter().enumerate() {
        if !alert_filter(&q, v) {
            continue;
        }
        for r in routes_passing(v, &q) {
            receivers
                .entry(v.fingerprint)
                .or_default()
                .push(r.receiver.clone());
            match groups
                .iter_mut()
                .find(|(rc, l, _)| *rc == r.receiver && *l == r.group_labels)
            {
                Some((_, _, idx)) => idx.push(i),
                None => groups.push((r.receiver.clone(), r.group_labels.clone(), vec![i])),
            }
        }
    }
    for r in receivers.values_mut() {
        r.sort();
    }
    groups.sort_by(|a, b| {
        if a.1 == b.1 {
            a.0.cmp(&b.0)
        } else {
            labels_before(&a.1, &b.1)
        }
    });
    #[derive(Serialize)]
    struct Group {
        alerts: Vec<AlertOut>,
        labels: Labels,
        receiver: ReceiverOut,
    }
    let out: Vec<Group> = groups
        .into_iter()
        .map(|(receiver, labels, mut idx)| {
            idx.sort_by(|&a, &b| alert_order(&views[a].alert.labels, &views[b].alert.labels));
            Group {
                alerts: idx
                    .into_iter()
                    .map(|i| {
                        let v = &views[i];
                        let rs = receivers.get(&v.fingerprint).cloned().unwrap_or_default();
                        alert_out(v, rs, &api, now)
                    })
                    .collect(),
                labels,
                receiver: ReceiverOut { name: receiver },
            }
        })
        .collect();
    json_response(StatusCode::OK, &out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlertIn {
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
}

/// go-openapi's `uri` format, as far as it matters: an absolute URI or an absolute path,
/// without spaces.
fn is_uri(s: &str) -> bool {
    if s.chars().any(char::is_whitespace) {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    match s.split_once(':') {
        Some((scheme, _)) => {
            let mut c = scheme.chars();
            c.next().is_some_and(|f| f.is_ascii_alphabetic())
                && c.all(|x| x.is_ascii_alphanumeric() || "+-.".contains(x))
        }
        None => false,
    }
}

/// A `POST /api/v2/alerts` body through a generic JSON value; when it is not a list of
/// alerts, the reason as Alertmanager words it.
fn posted_body_generic(body: &[u8]) -> Result<Vec<PostableAlertIn>, String> {
    let raw: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if !raw.is_array() {
        let kind = match raw {
            serde_json::Value::Object(_) => "object",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Number(_) => "number",
            serde_json::Value::Bool(_) => "bool",
            _ => "null",
        };
        return Err(format!(
            "json: cannot unmarshal {kind} into Go value of type models.PostableAlerts"
        ));
    }
    serde_json::from_value(raw).map_err(|e| e.to_string())
}

async fn post_alerts(State(api): State<AmApi>, body: Bytes) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        return unprocessable_required("alerts");
    }
    // The common case in one pass; a body that does not fit (or repeats a key, which
    // Go's decoder takes the last of) is parsed again generically, which also words the
    // error as Alertmanager does.
    let items: Vec<PostableAlertIn> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => match posted_body_generic(&body) {
            Ok(v) => v,
            Err(e) => return body_error("alerts", e),
        },
    };
    let mut posted = Vec::with_capacity(items.len());
    for (i, a) in items.into_iter().enumerate() {
        let starts_at = match a.starts_at.as_deref().map(parse_time).transpose() {
            Ok(t) => t.flatten(),
            Err(e) => return body_error("alerts", e),
        };
        let ends_at = match a.ends_at.as_deref().map(parse_time).transpose() {
            Ok(t) => t.flatten(),
            Err(e) => return body_error("alerts", e),
        };
        let generator_url = a.generator_url.unwrap_or_default();
        if !generator_url.is_empty() && !is_uri(&generator_url) {
            return err_code(
                StatusCode::UNPROCESSABLE_ENTITY,
                601,
                format!("{i}.generatorURL in body must be of type uri: {generator_url:?}"),
            );
        }
        let Some(labels) = a.labels else {
            return unprocessable_required(&format!("{i}.labels"));
        };
        posted.push(PostedAlert {
            labels,
            annotations: a.annotations.unwrap_or_default(),
            starts_at,
            ends_at,
            generator_url,
        });
    }
    let (valid, errs) = prepare_posted(posted, api.store.now(), api.settings.resolve_timeout);
    match &api.sink {
        Some(sink) => {
            if let Err(e) = sink.put(valid).await {
                return err_string(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
        }
        None => api.store.put(valid),
    }
    if !errs.is_empty() {
        return err_string(StatusCode::BAD_REQUEST, errs.join("; "));
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_like_alertmanager() {
        let t = parse_time("2026-11-26T03:00:00.123456+02:00")
            .unwrap()
            .unwrap();
        assert_eq!(format_time(t), "2026-11-26T01:00:00.123Z");
        assert_eq!(parse_time("0001-01-01T00:00:00.000Z").unwrap(), None);
        assert!(parse_time("notatime").is_err());
    }

    #[test]
    fn query_strings() {
        let q = Some("filter=alertname%3D%22a+b%22&active=false&x".to_string());
        assert_eq!(
            query_pairs(&q),
            vec![
                ("filter".to_string(), "alertname=\"a b\"".to_string()),
                ("active".to_string(), "false".to_string()),
                ("x".to_string(), String::new())
            ]
        );
        assert!(convert_bool("TRUE") && convert_bool("1") && !convert_bool("maybe"));
        assert!(is_uuid("4c9cd8e1-a5ba-4ecc-bd06-df06c42722f3") && !is_uuid("abc"));
    }
}
