//! The rule groups of a unit test: loaded from the test's rule files, ordered by
//! `group_eval_order` (groups not named there first, as promtool's partial order
//! puts them), and evaluated with [`crate::group::GroupEvaluator`] at each test step,
//! their output written into the test store right after each rule, as Prometheus'
//! rule manager appends it. `type: logs` groups query the test's log store
//! ([`LogEnv`]) through the query engine, as the rules service does.

use std::sync::RwLock;

use argus_schemas::{AlertState, Labels};
use promql_parser::label::Matcher;

use crate::RulesError;
use crate::group::{GroupEvaluator, GroupOptions, QueryFn, Sample};
use crate::promql::{Engine, Storage, Value};
use crate::rulefile::{self, GroupKind, RuleExpr};

use super::storage::TestStorage;
use super::streams::LogEnv;
use super::testfile::TestGroup;

/// The loaded groups, in evaluation order.
pub struct RuleGroups {
    groups: Vec<GroupEvaluator>,
}

/// The test store behind a lock, so that the evaluator can read it through a query
/// and write rule output to it through [`QueryFn::record`].
pub struct SharedStorage(pub RwLock<TestStorage>);

impl Storage for SharedStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        match self.0.read() {
            Ok(st) => st.select(matchers, start_ms, end_ms),
            Err(p) => p.into_inner().select(matchers, start_ms, end_ms),
        }
    }
}

impl SharedStorage {
    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, TestStorage> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

struct TestQuery<'a> {
    engine: &'a Engine,
    st: &'a SharedStorage,
    logs: Option<&'a LogEnv>,
}

impl QueryFn for TestQuery<'_> {
    fn instant(&self, expr: &RuleExpr, t_ms: i64) -> Result<Vec<Sample>, RulesError> {
        match expr {
            RuleExpr::PromQL { expr, .. } => match self.engine.instant_expr(self.st, expr, t_ms)? {
                Value::Vector(v) => Ok(v),
                Value::Scalar(t, v) => Ok(vec![Sample {
                    labels: Labels::new(),
                    t_ms: t,
                    value: v,
                }]),
                _ => Err(RulesError::Eval(
                    "rule result is not a vector or scalar".into(),
                )),
            },
            RuleExpr::LogQL { text, expr } => match self.logs {
                Some(env) => env.instant_expr(text, expr, t_ms),
                None => Err(RulesError::Eval(
                    "log rules need a test log store, which was not opened".into(),
                )),
            },
        }
    }

    fn record(&self, samples: &[Sample]) {
        // Samples the store refuses (out of order, duplicates) are dropped, as
        // Prometheus' rule manager drops them.
        let mut st = self.st.write();
        for s in samples {
            let _ = st.append(&s.labels, s.t_ms, s.value);
        }
    }
}

impl RuleGroups {
    /// Loads every rule file; rule file errors are returned as promtool prints them.
    pub fn load(files: &[String], tg: &TestGroup, order: &[String]) -> Result<Self, Vec<String>> {
        let mut groups = Vec::new();
        let external_labels = Labels::from_pairs(
            tg.external_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        for f in files {
            match rulefile::parse_file(f) {
                Ok(rf) => {
                    for g in rf.groups {
                        let opts = GroupOptions {
                            file: f.clone(),
                            default_interval_ms: tg.interval,
                            external_labels: external_labels.clone(),
                            external_url: tg.external_url.clone(),
                            ..GroupOptions::default()
                        };
                        groups.push(GroupEvaluator::new(g, opts));
                    }
                }
                Err(errs) => return Err(errs.iter().map(|e| e.to_string()).collect()),
            }
        }
        let pos = |g: &GroupEvaluator| order.iter().position(|n| *n == g.group().name).unwrap_or(0);
        groups.sort_by_key(pos);
        Ok(RuleGroups { groups })
    }

    /// Whether some group is a `type: logs` group (it needs a [`LogEnv`]).
    pub fn has_log_groups(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g.group().kind == GroupKind::Logs)
    }

    /// Evaluates every group at `ts`, in order; returns (rule name, error) for the
    /// rules that failed. LogQL rules read `logs`.
    pub fn eval(
        &mut self,
        engine: &Engine,
        st: &SharedStorage,
        logs: Option<&LogEnv>,
        ts: i64,
    ) -> Vec<(String, String)> {
        let q = TestQuery { engine, st, logs };
        let mut errs = Vec::new();
        for g in &mut self.groups {
            errs.extend(g.eval(&q, ts).errors);
        }
        errs
    }

    /// The firing alerts (labels, annotations) of every alerting rule named `name`.
    pub fn firing(&self, name: &str) -> Vec<(Labels, Labels)> {
        self.groups
            .iter()
            .flat_map(|g| g.active_alerts())
            .filter(|(rule, a)| *rule == name && a.state == AlertState::Firing)
            .map(|(_, a)| (a.labels.clone(), a.annotations.clone()))
            .collect()
    }
}
