//! Evaluating one rule group at a given time, as Prometheus' rule manager does:
//! rules in order; recording rules write their result under the record name with
//! the rule's labels; alerting rules template their labels and annotations per
//! sample and drive the [`crate::alert`] state machine, writing the `ALERTS` and
//! `ALERTS_FOR_STATE` series; series that a rule stopped returning get staleness
//! markers; `limit` and `query_offset` apply. The caller passes the evaluation time
//! (a scheduler's tick or a unit test's clock) and a [`QueryFn`]; the evaluator
//! returns what was written and the alert transitions, and can rebuild its alert
//! state from the transitions log ([`GroupEvaluator::restore`]).

use std::collections::BTreeSet;
use std::time::Instant;

use argus_schemas::{AlertState, AlertTransition, Labels, STALE_NAN_BITS, Timestamp};
use serde::Serialize;

use crate::RulesError;
use crate::alert::{AlertSet, Candidate, OutgoingAlert};
pub use crate::promql::Sample;
use crate::rulefile::{GroupKind, RuleExpr, RuleGroup, RuleKind};
use crate::template::{AlertTemplate, TemplateData, table_link};

/// Prometheus' default resend delay towards Alertmanager.
pub const DEFAULT_RESEND_DELAY_MS: i64 = 60_000;

/// Runs a rule's query at one time.
pub trait QueryFn {
    /// The instant vector of `expr` at `t_ms` (a scalar result as one sample with
    /// no labels, as Prometheus' rule query function returns it).
    fn instant(&self, expr: &RuleExpr, t_ms: i64) -> Result<Vec<Sample>, RulesError>;

    /// A query given as text (the template function `query`), in the group's language.
    fn query_text(
        &self,
        kind: GroupKind,
        query: &str,
        t_ms: i64,
    ) -> Result<Vec<Sample>, RulesError> {
        let expr = RuleExpr::parse(kind, query).map_err(RulesError::Parse)?;
        self.instant(&expr, t_ms)
    }

    /// Receives what a rule wrote (recorded series, `ALERTS`, staleness markers)
    /// right after the rule ran, so that later rules of the group see it as they do
    /// in Prometheus' storage. The default does nothing.
    fn record(&self, _samples: &[Sample]) {}
}

/// Settings from the rule engine's configuration.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// The file the group came from (for the API and rule identity).
    pub file: String,
    /// The global `evaluation_interval`, for groups without `interval`.
    pub default_interval_ms: i64,
    /// The global `rule_query_offset`, for groups without `query_offset`.
    pub default_query_offset_ms: i64,
    pub external_labels: Labels,
    pub external_url: String,
    /// Prometheus' `--rules.alert.resend-delay`.
    pub resend_delay_ms: i64,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            file: String::new(),
            default_interval_ms: 60_000,
            default_query_offset_ms: 0,
            external_labels: Labels::new(),
            external_url: String::new(),
            resend_delay_ms: DEFAULT_RESEND_DELAY_MS,
        }
    }
}

/// Rule health as Prometheus reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

/// What one evaluation produced.
#[derive(Debug, Clone, Default)]
pub struct EvalOutput {
    /// Recorded series, `ALERTS`/`ALERTS_FOR_STATE` and staleness markers, in rule
    /// order, to publish to the metrics topic.
    pub samples: Vec<Sample>,
    /// The alert transitions of this evaluation, to publish to the alerts topic.
    pub transitions: Vec<AlertTransition>,
    /// Rules that failed: (rule name, error).
    pub errors: Vec<(String, String)>,
}

struct RuleState {
    /// Group labels merged with the rule's.
    labels: Labels,
    /// Alerting rules: the label and annotation templates.
    label_tmpls: Vec<(String, AlertTemplate)>,
    annotation_tmpls: Vec<(String, AlertTemplate)>,
    alerts: AlertSet,
    /// Series written by the last successful evaluation.
    prev_series: BTreeSet<Labels>,
    health: Health,
    last_error: Option<String>,
    last_eval_ms: Option<i64>,
    eval_seconds: f64,
}

/// One group's rules and their state.
pub struct GroupEvaluator {
    group: RuleGroup,
    opts: GroupOptions,
    rules: Vec<RuleState>,
    last_eval_ms: Option<i64>,
    eval_seconds: f64,
}

/// A firing or pending alert as `/api/v1/alerts` and `/api/v1/rules` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiAlert {
    pub labels: Labels,
    pub annotations: Labels,
    pub state: &'static str,
    pub active_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_firing_since: Option<String>,
    pub value: String,
}

/// A rule as `/api/v1/rules` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ApiRule {
    Alerting(ApiAlertingRule),
    Recording(ApiRecordingRule),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiAlertingRule {
    pub state: &'static str,
    pub name: String,
    pub query: String,
    pub duration: f64,
    pub keep_firing_for: f64,
    pub labels: Labels,
    pub annotations: Labels,
    pub alerts: Vec<ApiAlert>,
    pub health: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub evaluation_time: f64,
    pub last_evaluation: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRecordingRule {
    pub name: String,
    pub query: String,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    pub health: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub evaluation_time: f64,
    pub last_evaluation: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A group as `/api/v1/rules` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroup {
    pub name: String,
    pub file: String,
    pub rules: Vec<ApiRule>,
    pub interval: f64,
    pub limit: usize,
    pub evaluation_time: f64,
    pub last_evaluation: String,
}

fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Go's `time.Time` JSON form (RFC 3339 with nanoseconds, trailing zeros trimmed);
/// None is Go's zero time.
pub fn rfc3339_ms(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "0001-01-01T00:00:00Z".into();
    };
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return "0001-01-01T00:00:00Z".into();
    };
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000);
    if frac != 0 {
        let f = format!("{frac:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` (the `value` of API alerts).
pub fn format_float_e(v: f64) -> String {
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
    let s = format!("{v:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn state_str(s: AlertState) -> &'static str {
    match s {
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
        AlertState::Inactive | AlertState::Resolved => "inactive",
    }
}

impl GroupEvaluator {
    /// Prepares `group`: templates are parsed once here (the rule file was
    /// validated, so they parse; one that does not expands to Prometheus' error text).
    pub fn new(group: RuleGroup, opts: GroupOptions) -> Self {
        let mut rules = Vec::with_capacity(group.rules.len());
        for (i, r) in group.rules.iter().enumerate() {
            let labels = group.rule_labels(i);
            let (mut label_tmpls, mut annotation_tmpls) = (Vec::new(), Vec::new());
            if r.kind == RuleKind::Alerting {
                for (k, v) in labels.iter() {
                    label_tmpls.push((k.to_string(), compile(&r.name, v)));
                }
                for (k, v) in r.annotations.iter() {
                    annotation_tmpls.push((k.to_string(), compile(&r.name, v)));
                }
            }
            rules.push(RuleState {
                labels,
                label_tmpls,
                annotation_tmpls,
                alerts: AlertSet::new(r.for_ms, r.keep_firing_for_ms),
                prev_series: BTreeSet::new(),
                health: Health::Unknown,
                last_error: None,
                last_eval_ms: None,
                eval_seconds: 0.0,
            });
        }
        GroupEvaluator {
            group,
            opts,
            rules,
            last_eval_ms: None,
            eval_seconds: 0.0,
        }
    }

    pub fn group(&self) -> &RuleGroup {
        &self.group
    }

    pub fn options(&self) -> &GroupOptions {
        &self.opts
    }

    /// The group's evaluation interval.
    pub fn interval_ms(&self) -> i64 {
        self.group
            .interval_ms
            .unwrap_or(self.opts.default_interval_ms)
    }

    /// The group's query offset.
    pub fn query_offset_ms(&self) -> i64 {
        self.group
            .query_offset_ms
            .unwrap_or(self.opts.default_query_offset_ms)
    }

    /// Evaluates every rule at `ts_ms` (queries run at `ts_ms - query_offset`).
    pub fn eval(&mut self, q: &dyn QueryFn, ts_ms: i64) -> EvalOutput {
        let started = Instant::now();
        let mut out = EvalOutput::default();
        let offset = self.query_offset_ms();
        let qt = ts_ms - offset;
        for i in 0..self.rules.len() {
            let rule_started = Instant::now();
            let res = match self.group.rules[i].kind {
                RuleKind::Recording => self.eval_recording(i, q, qt),
                RuleKind::Alerting => self.eval_alerting(i, q, ts_ms, qt, &mut out.transitions),
            };
            let st = &mut self.rules[i];
            st.last_eval_ms = Some(ts_ms);
            st.eval_seconds = rule_started.elapsed().as_secs_f64();
            match res {
                Ok(mut written) => {
                    st.health = Health::Ok;
                    st.last_error = None;
                    let now: BTreeSet<Labels> = written.iter().map(|s| s.labels.clone()).collect();
                    for gone in st.prev_series.difference(&now) {
                        written.push(Sample {
                            labels: gone.clone(),
                            t_ms: qt,
                            value: stale_nan(),
                        });
                    }
                    st.prev_series = now;
                    q.record(&written);
                    out.samples.extend(written);
                }
                Err(e) => {
                    st.health = Health::Err;
                    st.last_error = Some(e.clone());
                    out.errors.push((self.group.rules[i].name.clone(), e));
                }
            }
        }
        self.last_eval_ms = Some(ts_ms);
        self.eval_seconds = started.elapsed().as_secs_f64();
        out
    }

    fn eval_recording(&self, i: usize, q: &dyn QueryFn, qt: i64) -> Result<Vec<Sample>, String> {
        let rule = &self.group.rules[i];
        let st = &self.rules[i];
        let res = q.instant(&rule.expr, qt).map_err(|e| e.to_string())?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(res.len());
        for s in res {
            let mut l = s.labels;
            l.insert("__name__", rule.name.clone());
            for (k, v) in st.labels.iter() {
                l.insert(k, v);
            }
            if !seen.insert(l.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
            out.push(Sample {
                labels: l,
                t_ms: qt,
                value: s.value,
            });
        }
        let limit = self.group.limit;
        if limit > 0 && out.len() > limit {
            return Err(format!(
                "exceeded limit of {limit} with {} series",
                out.len()
            ));
        }
        Ok(out)
    }

    fn eval_alerting(
        &mut self,
        i: usize,
        q: &dyn QueryFn,
        ts: i64,
        qt: i64,
        transitions: &mut Vec<AlertTransition>,
    ) -> Result<Vec<Sample>, String> {
        let rule = &self.group.rules[i];
        let kind = self.group.kind;
        let res = q.instant(&rule.expr, qt).map_err(|e| e.to_string())?;
        let st = &self.rules[i];
        let query = |text: &str| -> Result<Vec<(Labels, f64)>, String> {
            q.query_text(kind, text, ts)
                .map(|v| v.into_iter().map(|s| (s.labels, s.value)).collect())
                .map_err(|e| e.to_string())
        };
        let mut cands = Vec::with_capacity(res.len());
        for s in &res {
            let data = TemplateData {
                labels: &s.labels,
                external_labels: &self.opts.external_labels,
                external_url: &self.opts.external_url,
                value: s.value,
            };
            let mut l = s.labels.clone();
            l.remove("__name__");
            for (k, t) in &st.label_tmpls {
                l.insert(k.clone(), t.expand_alert(&data, Some(&query)));
            }
            l.insert("alertname", rule.name.clone());
            let mut ann = Labels::new();
            for (k, t) in &st.annotation_tmpls {
                ann.insert(k.clone(), t.expand_alert(&data, Some(&query)));
            }
            cands.push(Candidate {
                labels: l,
                annotations: ann,
                value: s.value,
            });
        }
        let generator_url = self.generator_url(i);
        let group_name = self.group.name.clone();
        let rule_name = rule.name.clone();
        let to_transition = |c: crate::alert::Change| {
            let a = c.alert;
            AlertTransition {
                fingerprint: a.labels.fingerprint().to_string(),
                labels: a.labels,
                annotations: a.annotations,
                from: c.from,
                to: c.to,
                rule_group: group_name.clone(),
                rule: rule_name.clone(),
                value: Some(a.value),
                active_at: Some(Timestamp::from_millis(a.active_at_ms)),
                fired_at: a.fired_at_ms.map(Timestamp::from_millis),
                resolved_at: a.resolved_at_ms.map(Timestamp::from_millis),
                generator_url: generator_url.clone(),
            }
        };
        let limit = self.group.limit;
        let st = &mut self.rules[i];
        match st.alerts.update(cands, ts, limit) {
            Ok(u) => {
                transitions.extend(u.changes.into_iter().map(to_transition));
                let mut out = Vec::with_capacity(u.active.len() * 2);
                for a in &u.active {
                    let mut l = st.labels.clone();
                    for (k, v) in a.labels.iter() {
                        l.insert(k, v);
                    }
                    l.insert("alertname", rule_name.clone());
                    let mut alerts = l.clone();
                    alerts.insert("__name__", "ALERTS");
                    alerts.insert("alertstate", state_str(a.state));
                    out.push(Sample {
                        labels: alerts,
                        t_ms: qt,
                        value: 1.0,
                    });
                    l.insert("__name__", "ALERTS_FOR_STATE");
                    out.push(Sample {
                        labels: l,
                        t_ms: qt,
                        value: a.active_at_ms.div_euclid(1000) as f64,
                    });
                }
                Ok(out)
            }
            Err((e, changes)) => {
                transitions.extend(changes.into_iter().map(to_transition));
                Err(e)
            }
        }
    }

    /// The alert's generator URL: the external URL and the expression's table link.
    fn generator_url(&self, i: usize) -> String {
        format!(
            "{}{}",
            self.opts.external_url.trim_end_matches('/'),
            table_link(self.group.rules[i].expr.text())
        )
    }

    /// Rebuilds alert state (pending timers included) from the alerts log: the
    /// transitions of this group's rules, oldest first; the last one of each alert
    /// wins. Transitions of other groups are ignored.
    pub fn restore(&mut self, transitions: &[AlertTransition]) {
        for t in transitions {
            if t.rule_group != self.group.name {
                continue;
            }
            let candidates: Vec<usize> = self
                .group
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.kind == RuleKind::Alerting && r.name == t.rule)
                .map(|(i, _)| i)
                .collect();
            // Several rules may share an alert name (e.g. one per severity): pick the
            // one whose static labels the alert carries.
            let pick = candidates
                .iter()
                .copied()
                .find(|&i| {
                    self.rules[i]
                        .labels
                        .iter()
                        .filter(|(_, v)| !v.contains("{{"))
                        .all(|(k, v)| t.labels.get(k) == Some(v))
                })
                .or(candidates.first().copied());
            if let Some(i) = pick {
                self.rules[i].alerts.restore(t);
            }
        }
    }

    /// The alerts due to be sent to an Alertmanager at `ts_ms` (Prometheus' resend
    /// logic; call after each evaluation). External labels are added where the alert
    /// has no label of that name, as Prometheus' notifier does.
    pub fn alerts_to_send(&mut self, ts_ms: i64) -> Vec<OutgoingAlert> {
        let interval = self.interval_ms();
        let resend = self.opts.resend_delay_ms;
        let mut out = Vec::new();
        for i in 0..self.rules.len() {
            if self.group.rules[i].kind != RuleKind::Alerting {
                continue;
            }
            let url = self.generator_url(i);
            let mut sent = self.rules[i].alerts.to_send(ts_ms, resend, interval, &url);
            for a in &mut sent {
                for (k, v) in self.opts.external_labels.iter() {
                    if a.labels.get(k).is_none() {
                        a.labels.insert(k, v);
                    }
                }
            }
            out.extend(sent);
        }
        out
    }

    /// Pending and firing alerts of every rule, with the rule's name.
    pub fn active_alerts(&self) -> Vec<(&str, &crate::alert::Alert)> {
        let mut out = Vec::new();
        for (i, st) in self.rules.iter().enumerate() {
            for a in st.alerts.active() {
                out.push((self.group.rules[i].name.as_str(), a));
            }
        }
        out
    }

    /// Pending and firing alerts as `/api/v1/alerts` lists them.
    pub fn api_alerts(&self) -> Vec<ApiAlert> {
        self.active_alerts()
            .into_iter()
            .map(|(_, a)| api_alert(a))
            .collect()
    }

    /// Staleness markers at `ts_ms` for every series the group last wrote (when the
    /// group is removed or the engine stops, as Prometheus writes them).
    pub fn stale_markers(&self, ts_ms: i64) -> Vec<Sample> {
        let t = ts_ms - self.query_offset_ms();
        self.rules
            .iter()
            .flat_map(|st| st.prev_series.iter())
            .map(|l| Sample {
                labels: l.clone(),
                t_ms: t,
                value: stale_nan(),
            })
            .collect()
    }

    /// The group as `/api/v1/rules` shows it.
    pub fn api_group(&self) -> ApiGroup {
        let mut rules = Vec::new();
        for (i, r) in self.group.rules.iter().enumerate() {
            let st = &self.rules[i];
            match r.kind {
                RuleKind::Alerting => {
                    let alerts: Vec<ApiAlert> = st.alerts.active().map(api_alert).collect();
                    let state = if st.alerts.active().any(|a| a.state == AlertState::Firing) {
                        "firing"
                    } else if alerts.is_empty() {
                        "inactive"
                    } else {
                        "pending"
                    };
                    rules.push(ApiRule::Alerting(ApiAlertingRule {
                        state,
                        name: r.name.clone(),
                        query: r.expr.text().to_string(),
                        duration: r.for_ms as f64 / 1000.0,
                        keep_firing_for: r.keep_firing_for_ms as f64 / 1000.0,
                        labels: st.labels.clone(),
                        annotations: r.annotations.clone(),
                        alerts,
                        health: st.health,
                        last_error: st.last_error.clone(),
                        evaluation_time: st.eval_seconds,
                        last_evaluation: rfc3339_ms(st.last_eval_ms),
                        kind: "alerting",
                    }));
                }
                RuleKind::Recording => rules.push(ApiRule::Recording(ApiRecordingRule {
                    name: r.name.clone(),
                    query: r.expr.text().to_string(),
                    labels: st.labels.clone(),
                    health: st.health,
                    last_error: st.last_error.clone(),
                    evaluation_time: st.eval_seconds,
                    last_evaluation: rfc3339_ms(st.last_eval_ms),
                    kind: "recording",
                })),
            }
        }
        ApiGroup {
            name: self.group.name.clone(),
            file: self.opts.file.clone(),
            rules,
            interval: self.interval_ms() as f64 / 1000.0,
            limit: self.group.limit,
            evaluation_time: self.eval_seconds,
            last_evaluation: rfc3339_ms(self.last_eval_ms),
        }
    }
}

fn compile(alert: &str, text: &str) -> AlertTemplate {
    // Validated files parse; otherwise expand to the error, as Prometheus does.
    AlertTemplate::parse(alert, text).unwrap_or_else(|e| {
        AlertTemplate::literal(
            alert,
            &format!("<error expanding template: error parsing template __alert_{alert}: {e}>"),
        )
    })
}

fn api_alert(a: &crate::alert::Alert) -> ApiAlert {
    ApiAlert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        state: state_str(a.state),
        active_at: rfc3339_ms(Some(a.active_at_ms)),
        keep_firing_since: a.keep_firing_since_ms.map(|t| rfc3339_ms(Some(t))),
        value: format_float_e(a.value),
    }
}
