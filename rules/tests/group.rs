//! Group evaluation and the alert state machine, driven by a test clock and a fake
//! query function.

use std::cell::RefCell;
use std::collections::HashMap;

use argus_rules::RulesError;
use argus_rules::group::{
    GroupEvaluator, GroupOptions, QueryFn, Sample, format_float_e, rfc3339_ms,
};
use argus_rules::rulefile::{RuleExpr, parse};
use argus_schemas::{AlertState, AlertTransition, Labels};

const MIN: i64 = 60_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// The answer set for one expression: samples, or an error text.
type Answer = Result<Vec<(Labels, f64)>, String>;

/// Answers each expression with the samples set for it; records what rules write.
#[derive(Default)]
struct Fake {
    results: RefCell<HashMap<String, Answer>>,
    queried_at: RefCell<Vec<(String, i64)>>,
    recorded: RefCell<Vec<Sample>>,
}

impl Fake {
    fn set(&self, expr: &str, v: Vec<(Labels, f64)>) {
        self.results.borrow_mut().insert(expr.to_string(), Ok(v));
    }
    fn fail(&self, expr: &str, e: &str) {
        self.results
            .borrow_mut()
            .insert(expr.to_string(), Err(e.to_string()));
    }
}

impl QueryFn for Fake {
    fn instant(&self, expr: &RuleExpr, t_ms: i64) -> Result<Vec<Sample>, RulesError> {
        self.queried_at
            .borrow_mut()
            .push((expr.text().to_string(), t_ms));
        // A recorded series is visible to later rules, as in Prometheus' storage.
        if let Some(name) = expr.text().strip_prefix("recorded:") {
            return Ok(self
                .recorded
                .borrow()
                .iter()
                .filter(|s| s.labels.get("__name__") == Some(name) && !s.value.is_nan())
                .cloned()
                .collect());
        }
        match self.results.borrow().get(expr.text()) {
            Some(Ok(v)) => Ok(v
                .iter()
                .map(|(l, x)| Sample {
                    labels: l.clone(),
                    t_ms,
                    value: *x,
                })
                .collect()),
            Some(Err(e)) => Err(RulesError::Eval(e.clone())),
            None => Ok(Vec::new()),
        }
    }
    fn record(&self, samples: &[Sample]) {
        self.recorded.borrow_mut().extend_from_slice(samples);
    }
}

fn evaluator(yaml: &str) -> GroupEvaluator {
    evaluator_with(yaml, GroupOptions::default())
}

fn evaluator_with(yaml: &str, opts: GroupOptions) -> GroupEvaluator {
    let f = parse("test.yml", yaml).unwrap_or_else(|e| panic!("{e:?}"));
    GroupEvaluator::new(f.groups.into_iter().next().unwrap(), opts)
}

fn states(ts: &[AlertTransition]) -> Vec<(AlertState, AlertState)> {
    ts.iter().map(|t| (t.from, t.to)).collect()
}

fn is_stale(v: f64) -> bool {
    v.to_bits() == argus_schemas::STALE_NAN_BITS
}

const FOR5: &str = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    labels:\n      severity: page\n    annotations:\n      summary: '{{ $labels.instance }} is down ({{ $value }})'\n";

fn down(inst: &str) -> (Labels, f64) {
    (
        labels(&[("__name__", "up"), ("instance", inst), ("job", "node")]),
        0.0,
    )
}

#[test]
fn recording_rule_writes_record_name_and_labels() {
    let mut g = evaluator(
        "groups:\n- name: g\n  rules:\n  - record: job:x:sum\n    expr: sum by (job) (x)\n    labels:\n      src: rule\n",
    );
    let q = Fake::default();
    q.set("sum by (job) (x)", vec![(labels(&[("job", "a")]), 3.0)]);
    let out = g.eval(&q, 10 * MIN);
    assert!(out.errors.is_empty());
    assert_eq!(
        out.samples,
        vec![Sample {
            labels: labels(&[("__name__", "job:x:sum"), ("job", "a"), ("src", "rule")]),
            t_ms: 10 * MIN,
            value: 3.0
        }]
    );
    assert!(out.transitions.is_empty());
}

#[test]
fn recording_rule_duplicate_labelset_and_limit() {
    let mut g =
        evaluator("groups:\n- name: g\n  rules:\n  - record: r\n    expr: x\n    labels: {a: b}\n");
    let q = Fake::default();
    q.set(
        "x",
        vec![
            (labels(&[("__name__", "x")]), 1.0),
            (labels(&[("__name__", "y")]), 2.0),
        ],
    );
    let out = g.eval(&q, MIN);
    assert_eq!(
        out.errors,
        vec![(
            "r".to_string(),
            "vector contains metrics with the same labelset after applying rule labels".to_string()
        )]
    );
    let mut g = evaluator("groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: x\n");
    q.set(
        "x",
        vec![(labels(&[("i", "1")]), 1.0), (labels(&[("i", "2")]), 2.0)],
    );
    let out = g.eval(&q, MIN);
    assert_eq!(out.errors[0].1, "exceeded limit of 1 with 2 series");
    assert!(out.samples.is_empty());
}

#[test]
fn vanished_series_get_staleness_markers() {
    let mut g = evaluator("groups:\n- name: g\n  rules:\n  - record: r\n    expr: x\n");
    let q = Fake::default();
    q.set(
        "x",
        vec![(labels(&[("i", "1")]), 1.0), (labels(&[("i", "2")]), 2.0)],
    );
    g.eval(&q, MIN);
    q.set("x", vec![(labels(&[("i", "1")]), 5.0)]);
    let out = g.eval(&q, 2 * MIN);
    assert_eq!(out.samples.len(), 2);
    assert_eq!(out.samples[0].value, 5.0);
    assert_eq!(
        out.samples[1].labels,
        labels(&[("__name__", "r"), ("i", "2")])
    );
    assert!(is_stale(out.samples[1].value));
    assert_eq!(out.samples[1].t_ms, 2 * MIN);
    // Not marked stale again.
    let out = g.eval(&q, 3 * MIN);
    assert_eq!(out.samples.len(), 1);
    // Stopping the group marks what it last wrote.
    let st = g.stale_markers(4 * MIN);
    assert_eq!(st.len(), 1);
    assert!(is_stale(st[0].value));
}

#[test]
fn query_offset_shifts_query_and_output_time() {
    let mut g =
        evaluator("groups:\n- name: g\n  query_offset: 1m\n  rules:\n  - record: r\n    expr: x\n");
    let q = Fake::default();
    q.set("x", vec![(Labels::new(), 1.0)]);
    let out = g.eval(&q, 10 * MIN);
    assert_eq!(q.queried_at.borrow()[0], ("x".to_string(), 9 * MIN));
    assert_eq!(out.samples[0].t_ms, 9 * MIN);
    // The global default applies when the group sets none.
    let mut g = evaluator_with(
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: x\n",
        GroupOptions {
            default_query_offset_ms: 30_000,
            ..Default::default()
        },
    );
    let out = g.eval(&q, 10 * MIN);
    assert_eq!(out.samples[0].t_ms, 10 * MIN - 30_000);
}

#[test]
fn later_rules_see_earlier_rules_output() {
    let mut g = evaluator(
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: x\n  - record: b\n    expr: 'recorded:a'\n",
    );
    let q = Fake::default();
    q.set("x", vec![(labels(&[("k", "v")]), 7.0)]);
    let out = g.eval(&q, MIN);
    assert_eq!(out.samples.len(), 2);
    assert_eq!(
        out.samples[1].labels,
        labels(&[("__name__", "b"), ("k", "v")])
    );
    assert_eq!(out.samples[1].value, 7.0);
}

#[test]
fn alert_without_for_fires_at_once() {
    let mut g = evaluator("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n");
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    let out = g.eval(&q, 10 * MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Inactive, AlertState::Firing)]
    );
    let t = &out.transitions[0];
    assert_eq!(
        t.labels,
        labels(&[("alertname", "A"), ("instance", "n1"), ("job", "node")])
    );
    assert_eq!(t.fingerprint, t.labels.fingerprint().to_string());
    assert_eq!(t.rule_group, "g");
    assert_eq!(t.rule, "A");
    assert_eq!(t.active_at.unwrap().as_millis(), 10 * MIN);
    assert_eq!(t.fired_at.unwrap().as_millis(), 10 * MIN);
    assert_eq!(t.generator_url, "/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
    assert_eq!(
        out.samples,
        vec![
            Sample {
                labels: labels(&[
                    ("__name__", "ALERTS"),
                    ("alertname", "A"),
                    ("alertstate", "firing"),
                    ("instance", "n1"),
                    ("job", "node")
                ]),
                t_ms: 10 * MIN,
                value: 1.0
            },
            Sample {
                labels: labels(&[
                    ("__name__", "ALERTS_FOR_STATE"),
                    ("alertname", "A"),
                    ("instance", "n1"),
                    ("job", "node")
                ]),
                t_ms: 10 * MIN,
                value: 600.0
            },
        ]
    );
}

#[test]
fn for_duration_pending_then_firing() {
    let mut g = evaluator(FOR5);
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    let out = g.eval(&q, 0);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Inactive, AlertState::Pending)]
    );
    assert_eq!(out.samples[0].labels.get("alertstate"), Some("pending"));
    for m in 1..5 {
        let out = g.eval(&q, m * MIN);
        assert!(out.transitions.is_empty(), "minute {m}");
    }
    let out = g.eval(&q, 5 * MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Pending, AlertState::Firing)]
    );
    let t = &out.transitions[0];
    assert_eq!(t.active_at.unwrap().as_millis(), 0);
    assert_eq!(t.fired_at.unwrap().as_millis(), 5 * MIN);
    // ALERTS{alertstate="firing"} written, the pending series marked stale.
    let firing: Vec<_> = out
        .samples
        .iter()
        .filter(|s| s.labels.get("alertstate") == Some("firing"))
        .collect();
    assert_eq!(firing.len(), 1);
    let pending: Vec<_> = out
        .samples
        .iter()
        .filter(|s| s.labels.get("alertstate") == Some("pending"))
        .collect();
    assert_eq!(pending.len(), 1);
    assert!(is_stale(pending[0].value));
}

#[test]
fn labels_and_annotations_are_templated() {
    let mut g = evaluator(
        "groups:\n- name: g\n  labels:\n    team: infra\n  rules:\n  - alert: High\n    expr: load > 1\n    labels:\n      severity: '{{ if gt $value 5.0 }}critical{{ else }}warning{{ end }}'\n    annotations:\n      summary: '{{ $labels.instance }} load {{ $value | humanize }}'\n      ext: '{{ $externalLabels.dc }}'\n",
    );
    let q = Fake::default();
    q.set(
        "load > 1",
        vec![(labels(&[("__name__", "load"), ("instance", "h1")]), 7.5)],
    );
    let mut g2 = evaluator_with(
        "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: load > 1\n    annotations:\n      ext: '{{ $externalLabels.dc }}'\n",
        GroupOptions {
            external_labels: labels(&[("dc", "fra")]),
            ..Default::default()
        },
    );
    let out = g.eval(&q, MIN);
    let t = &out.transitions[0];
    assert_eq!(
        t.labels,
        labels(&[
            ("alertname", "High"),
            ("instance", "h1"),
            ("severity", "critical"),
            ("team", "infra")
        ])
    );
    assert_eq!(t.annotations.get("summary"), Some("h1 load 7.5"));
    assert_eq!(t.annotations.get("ext"), Some(""));
    let out2 = g2.eval(&q, MIN);
    assert_eq!(out2.transitions[0].annotations.get("ext"), Some("fra"));
}

#[test]
fn annotations_follow_value_without_transition() {
    let mut g = evaluator(FOR5);
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 0);
    let mut d = down("n1");
    d.1 = 2.0;
    q.set("up == 0", vec![d]);
    let out = g.eval(&q, MIN);
    assert!(out.transitions.is_empty());
    let alerts = g.active_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].1.value, 2.0);
    assert_eq!(
        alerts[0].1.annotations.get("summary"),
        Some("n1 is down (2)")
    );
}

#[test]
fn pending_alert_that_disappears_goes_inactive() {
    let mut g = evaluator(FOR5);
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 0);
    q.set("up == 0", vec![]);
    let out = g.eval(&q, MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Pending, AlertState::Inactive)]
    );
    assert!(g.active_alerts().is_empty());
    // It starts over when it comes back.
    q.set("up == 0", vec![down("n1")]);
    let out = g.eval(&q, 2 * MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Inactive, AlertState::Pending)]
    );
    assert_eq!(out.transitions[0].active_at.unwrap().as_millis(), 2 * MIN);
}

#[test]
fn firing_alert_resolves_and_is_kept_15_minutes() {
    let mut g = evaluator("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n");
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 0);
    q.set("up == 0", vec![]);
    let out = g.eval(&q, MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Firing, AlertState::Resolved)]
    );
    assert_eq!(out.transitions[0].resolved_at.unwrap().as_millis(), MIN);
    assert!(g.active_alerts().is_empty());
    // ALERTS series goes stale.
    assert!(out.samples.iter().all(|s| is_stale(s.value)));
    assert_eq!(out.samples.len(), 2);
    // Resolved alert is still sent (once, then per resend delay) until retention ends.
    let sent = g.alerts_to_send(MIN);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ends_at_ms, MIN);
    // Back within the retention: a new alert (Resolved -> Firing).
    q.set("up == 0", vec![down("n1")]);
    let out = g.eval(&q, 5 * MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Resolved, AlertState::Firing)]
    );
    assert_eq!(out.transitions[0].active_at.unwrap().as_millis(), 5 * MIN);
}

#[test]
fn resolved_alert_dropped_after_retention() {
    let mut g = evaluator("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n");
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 0);
    q.set("up == 0", vec![]);
    g.eval(&q, MIN);
    g.eval(&q, 16 * MIN);
    assert_eq!(
        g.alerts_to_send(16 * MIN).len(),
        1,
        "still kept at exactly 15m"
    );
    g.eval(&q, 16 * MIN + 1);
    assert!(g.alerts_to_send(30 * MIN).is_empty());
}

#[test]
fn keep_firing_for_holds_then_resolves() {
    let mut g = evaluator(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    keep_firing_for: 3m\n",
    );
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 0);
    q.set("up == 0", vec![]);
    for m in 1..=3 {
        let out = g.eval(&q, m * MIN);
        assert!(out.transitions.is_empty(), "minute {m}");
        assert_eq!(g.active_alerts().len(), 1);
        assert_eq!(
            g.active_alerts()[0].1.keep_firing_since_ms,
            Some(MIN),
            "minute {m}"
        );
    }
    let out = g.eval(&q, 4 * MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Firing, AlertState::Resolved)]
    );
}

#[test]
fn keep_firing_for_resets_when_alert_returns() {
    let mut g = evaluator(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    keep_firing_for: 2m\n",
    );
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 0);
    q.set("up == 0", vec![]);
    g.eval(&q, MIN);
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 2 * MIN);
    assert_eq!(g.active_alerts()[0].1.keep_firing_since_ms, None);
    q.set("up == 0", vec![]);
    for m in 3..=4 {
        assert!(g.eval(&q, m * MIN).transitions.is_empty());
    }
    let out = g.eval(&q, 5 * MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Firing, AlertState::Resolved)]
    );
}

#[test]
fn alert_limit_exceeded_drops_alerts() {
    let mut g =
        evaluator("groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: A\n    expr: up == 0\n");
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    let out = g.eval(&q, 0);
    assert!(out.errors.is_empty());
    q.set("up == 0", vec![down("n1"), down("n2")]);
    let out = g.eval(&q, MIN);
    assert_eq!(
        out.errors,
        vec![(
            "A".to_string(),
            "exceeded limit of 1 with 2 alerts".to_string()
        )]
    );
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Firing, AlertState::Inactive)]
    );
    assert!(g.active_alerts().is_empty());
    assert!(out.samples.is_empty());
}

#[test]
fn same_labelset_after_alert_labels_is_an_error() {
    let mut g = evaluator(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    labels:\n      instance: fixed\n",
    );
    let q = Fake::default();
    q.set(
        "x",
        vec![
            (labels(&[("instance", "a")]), 1.0),
            (labels(&[("instance", "b")]), 1.0),
        ],
    );
    let out = g.eval(&q, 0);
    assert_eq!(
        out.errors[0].1,
        "vector contains metrics with the same labelset after applying alert labels"
    );
    assert!(out.transitions.is_empty());
}

#[test]
fn query_error_marks_rule_unhealthy_and_keeps_state() {
    let mut g = evaluator(&format!("{FOR5}  - record: r\n    expr: y\n"));
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    q.set("y", vec![(Labels::new(), 1.0)]);
    g.eval(&q, 0);
    q.fail("up == 0", "boom");
    let out = g.eval(&q, 6 * MIN);
    assert_eq!(out.errors, vec![("Down".to_string(), "boom".to_string())]);
    assert!(out.transitions.is_empty());
    // The recording rule after it still ran.
    assert_eq!(out.samples.len(), 1);
    let api = serde_json::to_value(g.api_group()).unwrap();
    assert_eq!(api["rules"][0]["health"], "err");
    assert_eq!(api["rules"][0]["lastError"], "boom");
    assert_eq!(api["rules"][1]["health"], "ok");
    // Still pending, with its original active time.
    assert_eq!(g.active_alerts()[0].1.active_at_ms, 0);
}

#[test]
fn restore_keeps_pending_timer_across_restart() {
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    let mut log = Vec::new();
    let mut g = evaluator(FOR5);
    for m in 0..=3 {
        log.extend(g.eval(&q, m * MIN).transitions);
    }
    assert_eq!(log.len(), 1);
    // Restart at minute 3: a new evaluator rebuilt from the log.
    let mut g = evaluator(FOR5);
    g.restore(&log);
    assert_eq!(g.active_alerts().len(), 1);
    let out = g.eval(&q, 4 * MIN);
    assert!(out.transitions.is_empty());
    let out = g.eval(&q, 5 * MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Pending, AlertState::Firing)]
    );
    assert_eq!(out.transitions[0].active_at.unwrap().as_millis(), 0);
}

#[test]
fn restore_of_firing_alert_does_not_fire_again() {
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    let mut log = Vec::new();
    let mut g = evaluator(FOR5);
    for m in 0..=6 {
        log.extend(g.eval(&q, m * MIN).transitions);
    }
    assert_eq!(
        states(&log).last(),
        Some(&(AlertState::Pending, AlertState::Firing))
    );
    let mut g = evaluator(FOR5);
    g.restore(&log);
    let out = g.eval(&q, 7 * MIN);
    assert!(out.transitions.is_empty());
    assert_eq!(g.active_alerts()[0].1.state, AlertState::Firing);
    assert_eq!(g.active_alerts()[0].1.fired_at_ms, Some(5 * MIN));
    // And it resolves normally afterwards.
    q.set("up == 0", vec![]);
    let out = g.eval(&q, 8 * MIN);
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Firing, AlertState::Resolved)]
    );
}

#[test]
fn restore_drops_inactive_and_ignores_other_groups() {
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    let mut g = evaluator(FOR5);
    let mut log = g.eval(&q, 0).transitions;
    q.set("up == 0", vec![]);
    log.extend(g.eval(&q, MIN).transitions);
    let mut other = log[0].clone();
    other.rule_group = "elsewhere".into();
    log.push(other);
    let mut g = evaluator(FOR5);
    g.restore(&log);
    assert!(g.active_alerts().is_empty());
}

#[test]
fn restore_picks_rule_by_static_labels() {
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Disk\n    expr: a\n    for: 10m\n    labels: {severity: warning}\n  - alert: Disk\n    expr: b\n    for: 1m\n    labels: {severity: critical}\n";
    let q = Fake::default();
    q.set("b", vec![(labels(&[("dev", "sda")]), 1.0)]);
    let mut g = evaluator(yaml);
    let log = g.eval(&q, 0).transitions;
    assert_eq!(log[0].labels.get("severity"), Some("critical"));
    let mut g = evaluator(yaml);
    g.restore(&log);
    let out = g.eval(&q, MIN);
    // Restored into the critical rule (for: 1m), so it fires now.
    assert_eq!(
        states(&out.transitions),
        vec![(AlertState::Pending, AlertState::Firing)]
    );
}

#[test]
fn alerts_to_send_resend_schedule() {
    let mut g = evaluator_with(
        "groups:\n- name: g\n  interval: 30s\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 1m\n",
        GroupOptions {
            external_labels: labels(&[("cluster", "c1"), ("job", "ext")]),
            external_url: "http://argus:9099".into(),
            ..Default::default()
        },
    );
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 0);
    assert!(
        g.alerts_to_send(0).is_empty(),
        "pending alerts are not sent"
    );
    g.eval(&q, MIN);
    let sent = g.alerts_to_send(MIN);
    assert_eq!(sent.len(), 1);
    let a = &sent[0];
    assert_eq!(a.starts_at_ms, MIN);
    // endsAt = now + 4 * max(interval 30s, resend 1m).
    assert_eq!(a.ends_at_ms, MIN + 4 * MIN);
    assert_eq!(a.labels.get("cluster"), Some("c1"));
    assert_eq!(a.labels.get("job"), Some("node"), "alert labels win");
    assert_eq!(
        a.generator_url,
        "http://argus:9099/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    );
    assert!(g.alerts_to_send(MIN + 30_000).is_empty());
    assert!(
        g.alerts_to_send(2 * MIN).is_empty(),
        "not before resend delay has passed"
    );
    assert_eq!(g.alerts_to_send(2 * MIN + 1).len(), 1);
    q.set("up == 0", vec![]);
    g.eval(&q, 2 * MIN + 30_000);
    let sent = g.alerts_to_send(2 * MIN + 30_000);
    assert_eq!(sent.len(), 1, "resolved alerts are sent at once");
    assert_eq!(sent[0].ends_at_ms, 2 * MIN + 30_000);
}

#[test]
fn api_alerts_and_rules_json() {
    let mut g = evaluator_with(
        FOR5,
        GroupOptions {
            file: "test.yml".into(),
            ..Default::default()
        },
    );
    let q = Fake::default();
    q.set("up == 0", vec![down("n1")]);
    g.eval(&q, 1_700_000_000_000);
    let alerts = serde_json::to_value(g.api_alerts()).unwrap();
    assert_eq!(
        alerts,
        serde_json::json!([{
            "labels": {"alertname": "Down", "instance": "n1", "job": "node", "severity": "page"},
            "annotations": {"summary": "n1 is down (0)"},
            "state": "pending",
            "activeAt": "2023-11-14T22:13:20Z",
            "value": "0e+00"
        }])
    );
    let grp = serde_json::to_value(g.api_group()).unwrap();
    assert_eq!(grp["name"], "g");
    assert_eq!(grp["file"], "test.yml");
    assert_eq!(grp["interval"], 60.0);
    assert_eq!(grp["limit"], 0);
    assert_eq!(grp["lastEvaluation"], "2023-11-14T22:13:20Z");
    let r = &grp["rules"][0];
    assert_eq!(r["type"], "alerting");
    assert_eq!(r["state"], "pending");
    assert_eq!(r["name"], "Down");
    assert_eq!(r["query"], "up == 0");
    assert_eq!(r["duration"], 300.0);
    assert_eq!(r["keepFiringFor"], 0.0);
    assert_eq!(r["labels"], serde_json::json!({"severity": "page"}));
    assert_eq!(r["health"], "ok");
    assert!(r.get("lastError").is_none());
    assert_eq!(r["alerts"].as_array().unwrap().len(), 1);
}

#[test]
fn template_query_function_goes_through_query_fn() {
    let mut g = evaluator(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    annotations:\n      total: '{{ query \"sum(x)\" | first | value }}'\n",
    );
    let q = Fake::default();
    q.set("x > 0", vec![(labels(&[("i", "1")]), 1.0)]);
    q.set("sum(x)", vec![(Labels::new(), 42.0)]);
    let out = g.eval(&q, 3 * MIN);
    assert_eq!(out.transitions[0].annotations.get("total"), Some("42"));
    // The template query runs at the evaluation time.
    assert!(
        q.queried_at
            .borrow()
            .contains(&("sum(x)".to_string(), 3 * MIN))
    );
}

#[test]
fn failing_template_expands_to_error_text() {
    let mut g = evaluator(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    annotations:\n      d: '{{ humanize $labels.i }}'\n",
    );
    let q = Fake::default();
    q.set("x > 0", vec![(labels(&[("i", "abc")]), 1.0)]);
    let out = g.eval(&q, 0);
    let d = out.transitions[0].annotations.get("d").unwrap();
    assert!(
        d.starts_with("<error expanding template: error executing template __alert_A:"),
        "{d}"
    );
}

#[test]
fn api_helpers_format_like_go() {
    assert_eq!(format_float_e(1.0), "1e+00");
    assert_eq!(format_float_e(0.5), "5e-01");
    assert_eq!(format_float_e(1234.5), "1.2345e+03");
    assert_eq!(format_float_e(f64::NAN), "NaN");
    assert_eq!(rfc3339_ms(Some(1_500)), "1970-01-01T00:00:01.5Z");
    assert_eq!(rfc3339_ms(None), "0001-01-01T00:00:00Z");
}

#[test]
fn evaluator_can_move_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GroupEvaluator>();
    let mut g = evaluator(FOR5);
    let h = std::thread::spawn(move || {
        let q = Fake::default();
        q.set("up == 0", vec![down("n1")]);
        g.eval(&q, 0).transitions.len()
    });
    assert_eq!(h.join().unwrap(), 1);
}
