//! Group evaluation over the real PromQL engine and metric window: recorded series
//! feed later rules, alerts follow the data.

use argus_rules::RulesError;
use argus_rules::group::{GroupEvaluator, GroupOptions, QueryFn, Sample};
use argus_rules::promql::{Engine, EngineOptions, Value};
use argus_rules::rulefile::{RuleExpr, parse};
use argus_rules::window::MetricWindow;
use argus_schemas::{AlertState, Labels};

const MIN: i64 = 60_000;

struct Live {
    window: MetricWindow,
    engine: Engine,
}

impl QueryFn for Live {
    fn instant(&self, expr: &RuleExpr, t_ms: i64) -> Result<Vec<Sample>, RulesError> {
        let RuleExpr::PromQL { expr, .. } = expr else {
            return Err(RulesError::Eval("not a PromQL expression".into()));
        };
        match self.engine.instant_expr(&self.window, expr, t_ms)? {
            Value::Vector(v) => Ok(v),
            Value::Scalar(t, v) => Ok(vec![Sample {
                labels: Labels::new(),
                t_ms: t,
                value: v,
            }]),
            other => Err(RulesError::Eval(format!(
                "rule result is a {}",
                other.type_name()
            ))),
        }
    }
    fn record(&self, samples: &[Sample]) {
        for s in samples {
            self.window.append_samples(&s.labels, [(s.t_ms, s.value)]);
        }
    }
}

fn live() -> Live {
    Live {
        window: MetricWindow::default(),
        engine: Engine::new(EngineOptions::default()),
    }
}

fn up(l: &Live, inst: &str, t: i64, v: f64) {
    l.window.append_samples(
        &Labels::from_pairs([("__name__", "up"), ("instance", inst), ("job", "node")]),
        [(t, v)],
    );
}

const RULES: &str = r#"groups:
- name: node
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: JobDegraded
    expr: job:up:sum < 2
    for: 2m
    annotations:
      summary: '{{ $labels.job }} has {{ $value }} instances up'
  - alert: InstanceDown
    expr: up == 0
    labels:
      severity: page
"#;

#[test]
fn rules_follow_live_data() {
    let f = parse("r.yml", RULES).unwrap();
    let mut g = GroupEvaluator::new(f.groups[0].clone(), GroupOptions::default());
    let l = live();
    let mut log = Vec::new();
    for m in 0..=6 {
        let t = m * MIN;
        up(&l, "a", t - 1000, 1.0);
        up(&l, "b", t - 1000, if m >= 2 { 0.0 } else { 1.0 });
        let out = g.eval(&l, t);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let rec: Vec<_> = out
            .samples
            .iter()
            .filter(|s| s.labels.get("__name__") == Some("job:up:sum"))
            .collect();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].value, if m >= 2 { 1.0 } else { 2.0 });
        log.extend(
            out.transitions
                .into_iter()
                .map(|t| (m, t.rule, t.from, t.to)),
        );
    }
    assert_eq!(
        log,
        vec![
            (
                2,
                "JobDegraded".to_string(),
                AlertState::Inactive,
                AlertState::Pending
            ),
            (
                2,
                "InstanceDown".to_string(),
                AlertState::Inactive,
                AlertState::Firing
            ),
            (
                4,
                "JobDegraded".to_string(),
                AlertState::Pending,
                AlertState::Firing
            ),
        ]
    );
    let alerts = g.api_alerts();
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        alerts[0].annotations.get("summary"),
        Some("node has 1 instances up")
    );
    assert_eq!(alerts[1].labels.get("instance"), Some("b"));
    // The ALERTS series written by the group is queryable.
    let v = l
        .engine
        .instant(&l.window, "ALERTS{alertstate=\"firing\"}", 6 * MIN)
        .unwrap();
    let Value::Vector(v) = v else {
        panic!("vector expected")
    };
    assert_eq!(v.len(), 2);
}
