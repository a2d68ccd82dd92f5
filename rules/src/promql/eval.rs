//! The evaluator: walks the AST at one evaluation time, selects from [`Storage`] (with a
//! per-query cache so range queries select each series once), and dispatches to the
//! function, aggregation and operator modules.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argus_schemas::{Labels, STALE_NAN_BITS};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};

use super::{Compat, Sample, Series, Storage, Value, aggr, binop, functions};
use crate::RulesError;

pub(crate) const METRIC_NAME: &str = "__name__";

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus' default: 5m).
    pub lookback_ms: i64,
    /// The step of a subquery written without one (Prometheus uses the global
    /// evaluation interval, 1m by default).
    pub default_subquery_step_ms: i64,
    /// Which Prometheus version's arithmetic to reproduce (see [`Compat`]).
    pub compat: Compat,
    /// Evaluation steps a range query may have (Prometheus refuses more than 11,000).
    pub max_range_steps: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60 * 1000,
            compat: Compat::Prometheus3,
            max_range_steps: 11_000,
        }
    }
}

/// A sample during evaluation; `t` is the sample's own timestamp for a plain selector
/// (what `timestamp()` reports) and the evaluation time otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Smp {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// A series of a range vector during evaluation.
#[derive(Debug, Clone)]
pub(crate) struct RSeries {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// A value during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Smp>),
    Matrix(Vec<RSeries>),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// The argument of a range function: the series with their points inside
/// `(ref_ms - range_ms, ref_ms]`.
pub(crate) struct RangeArg {
    pub series: Vec<RSeries>,
    pub range_ms: i64,
    pub ref_ms: i64,
}

type Selected = Rc<Vec<(Labels, Vec<(i64, f64)>)>>;

struct Cached {
    lo: i64,
    hi: i64,
    data: Selected,
}

pub(crate) struct Ev<'a> {
    pub opts: &'a EngineOptions,
    st: &'a dyn Storage,
    /// The query's start and end, for `@ start()` and `@ end()`.
    start: i64,
    end: i64,
    cache: RefCell<HashMap<usize, Cached>>,
}

pub(crate) fn err(msg: impl Into<String>) -> RulesError {
    RulesError::Eval(msg.into())
}

pub(crate) fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

pub(crate) fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn duration_ms(d: &Duration) -> i64 {
    d.as_millis() as i64
}

fn systime_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

pub(crate) fn instant(
    opts: &EngineOptions,
    st: &dyn Storage,
    expr: &Expr,
    t: i64,
) -> Result<Value, RulesError> {
    let ev = Ev::new(opts, st, t, t);
    Ok(match ev.eval(expr, t)? {
        Val::Scalar(v) => Value::Scalar(t, v),
        Val::Str(s) => Value::String(t, s),
        Val::Vector(v) => Value::Vector(
            v.into_iter()
                .map(|s| Sample {
                    labels: s.labels,
                    t_ms: t,
                    value: s.v,
                })
                .collect(),
        ),
        Val::Matrix(m) => Value::Matrix(
            m.into_iter()
                .map(|s| Series {
                    labels: s.labels,
                    points: s.points,
                })
                .collect(),
        ),
    })
}

pub(crate) fn range(
    opts: &EngineOptions,
    st: &dyn Storage,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Value, RulesError> {
    if step <= 0 {
        return Err(RulesError::BadRequest(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    if end < start {
        return Err(RulesError::BadRequest(
            "end timestamp must not be before start time".into(),
        ));
    }
    if (end - start) / step >= opts.max_range_steps {
        return Err(RulesError::BadRequest(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    match expr.value_type() {
        promql_parser::parser::value::ValueType::Vector
        | promql_parser::parser::value::ValueType::Scalar => {}
        other => {
            let name = match other {
                promql_parser::parser::value::ValueType::Matrix => "range vector",
                _ => "string",
            };
            return Err(err(format!(
                "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
            )));
        }
    }
    let ev = Ev::new(opts, st, start, end);
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    let mut t = start;
    while t <= end {
        match ev.eval(expr, t)? {
            Val::Scalar(v) => {
                let i = *index.entry(Labels::new()).or_insert_with(|| {
                    out.push(Series {
                        labels: Labels::new(),
                        points: Vec::new(),
                    });
                    out.len() - 1
                });
                out[i].points.push((t, v));
            }
            Val::Vector(vec) => {
                for s in vec {
                    let i = match index.get(&s.labels) {
                        Some(i) => *i,
                        None => {
                            index.insert(s.labels.clone(), out.len());
                            out.push(Series {
                                labels: s.labels,
                                points: Vec::new(),
                            });
                            out.len() - 1
                        }
                    };
                    out[i].points.push((t, s.v));
                }
            }
            other => {
                return Err(err(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    other.type_name()
                )));
            }
        }
        t += step;
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Value::Matrix(out))
}

impl<'a> Ev<'a> {
    fn new(opts: &'a EngineOptions, st: &'a dyn Storage, start: i64, end: i64) -> Self {
        Ev {
            opts,
            st,
            start,
            end,
            cache: RefCell::new(HashMap::new()),
        }
    }

    pub fn p2(&self) -> bool {
        self.opts.compat == Compat::Prometheus2
    }

    pub fn eval(&self, e: &Expr, t: i64) -> Result<Val, RulesError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(mut v) => {
                    for s in &mut v {
                        s.v = -s.v;
                        s.labels.remove(METRIC_NAME);
                        s.t = t;
                    }
                    check_duplicates(&v)?;
                    Ok(Val::Vector(v))
                }
                other => Err(err(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got \"{}\"",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.select_instant(vs, t)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let ra = self.eval_range_arg(e, t)?;
                Ok(Val::Matrix(ra.series))
            }
            Expr::Aggregate(a) => aggr::eval_aggregate(self, a, t),
            Expr::Binary(b) => binop::eval_binary(self, b, t),
            Expr::Call(c) => functions::eval_call(self, c, t),
            Expr::Extension(_) => Err(err("extension expressions are not supported")),
        }
    }

    /// Evaluates `e` and requires an instant vector.
    pub fn eval_vector(&self, e: &Expr, t: i64) -> Result<Vec<Smp>, RulesError> {
        match self.eval(e, t)? {
            Val::Vector(v) => Ok(v),
            other => Err(err(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `e` and requires a scalar.
    pub fn eval_scalar(&self, e: &Expr, t: i64) -> Result<f64, RulesError> {
        match self.eval(e, t)? {
            Val::Scalar(v) => Ok(v),
            other => Err(err(format!("expected scalar, got {}", other.type_name()))),
        }
    }

    /// Evaluates `e` and requires a string.
    pub fn eval_string(&self, e: &Expr, t: i64) -> Result<String, RulesError> {
        match self.eval(e, t)? {
            Val::Str(s) => Ok(s),
            other => Err(err(format!("expected string, got {}", other.type_name()))),
        }
    }

    fn at_ms(&self, at: &Option<AtModifier>, t: i64) -> i64 {
        match at {
            None => t,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(st)) => systime_ms(st),
        }
    }

    /// The matcher sets of a selector (more than one for `{a="1" or b="2"}`).
    fn matcher_sets(vs: &VectorSelector) -> Vec<Vec<Matcher>> {
        let name = vs
            .name
            .as_ref()
            .map(|n| Matcher::new(MatchOp::Equal, METRIC_NAME, n));
        let with_name = |ms: &[Matcher]| {
            let mut v: Vec<Matcher> = Vec::with_capacity(ms.len() + 1);
            if let Some(n) = &name {
                v.push(n.clone());
            }
            v.extend(ms.iter().cloned());
            v
        };
        if vs.matchers.or_matchers.is_empty() {
            vec![with_name(&vs.matchers.matchers)]
        } else {
            let mut sets: Vec<Vec<Matcher>> = vs
                .matchers
                .or_matchers
                .iter()
                .map(|ms| with_name(ms))
                .collect();
            if !vs.matchers.matchers.is_empty() {
                sets.push(with_name(&vs.matchers.matchers));
            }
            sets
        }
    }

    /// The series of `vs` with their samples in `[lo, hi]` (possibly more), cached per
    /// selector for the whole query.
    fn fetch(&self, vs: &VectorSelector, lo: i64, hi: i64, t: i64) -> Selected {
        let key = vs as *const VectorSelector as usize;
        if let Some(c) = self.cache.borrow().get(&key)
            && c.lo <= lo
            && hi <= c.hi
        {
            return c.data.clone();
        }
        // Later steps of a range query need the same window shifted forward: fetch up to
        // the query's end at once.
        let hi_ext = hi.saturating_add((self.end - t).max(0));
        let sets = Self::matcher_sets(vs);
        let data: Vec<(Labels, Vec<(i64, f64)>)> = if sets.len() == 1 {
            self.st.select(&sets[0], lo, hi_ext)
        } else {
            let mut order: Vec<Labels> = Vec::new();
            let mut seen: HashSet<Labels> = HashSet::new();
            let mut merged_pts: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
            for set in &sets {
                for (l, pts) in self.st.select(set, lo, hi_ext) {
                    if seen.insert(l.clone()) {
                        order.push(l.clone());
                        merged_pts.insert(l, pts);
                    }
                }
            }
            order
                .into_iter()
                .map(|l| {
                    let pts = merged_pts.remove(&l).unwrap_or_default();
                    (l, pts)
                })
                .collect()
        };
        let data = Rc::new(data);
        self.cache.borrow_mut().insert(
            key,
            Cached {
                lo,
                hi: hi_ext,
                data: data.clone(),
            },
        );
        data
    }

    /// An instant selector at `t`: per series, the newest sample in the lookback window
    /// unless it is a staleness marker.
    pub fn select_instant(&self, vs: &VectorSelector, t: i64) -> Result<Vec<Smp>, RulesError> {
        let reft = self.at_ms(&vs.at, t) - offset_ms(&vs.offset);
        let lookback = self.opts.lookback_ms;
        let data = self.fetch(vs, reft - lookback, reft, t);
        let p2 = self.p2();
        let mut out = Vec::new();
        for (labels, pts) in data.iter() {
            let idx = pts.partition_point(|p| p.0 <= reft);
            if idx == 0 {
                continue;
            }
            let (st, v) = pts[idx - 1];
            let too_old = if p2 {
                st < reft - lookback
            } else {
                st <= reft - lookback
            };
            if too_old || is_stale(v) {
                continue;
            }
            out.push(Smp {
                labels: labels.clone(),
                t: st,
                v,
            });
        }
        Ok(out)
    }

    /// Points of a range: `(reft - range, reft]` (Prometheus 3) or `[reft - range, reft]`
    /// (Prometheus 2), without staleness markers.
    fn slice_range(&self, pts: &[(i64, f64)], reft: i64, range: i64) -> Vec<(i64, f64)> {
        let mint = reft - range;
        let lo = if self.p2() {
            pts.partition_point(|p| p.0 < mint)
        } else {
            pts.partition_point(|p| p.0 <= mint)
        };
        let hi = pts.partition_point(|p| p.0 <= reft);
        if lo >= hi {
            return Vec::new();
        }
        pts[lo..hi]
            .iter()
            .filter(|p| !is_stale(p.1))
            .copied()
            .collect()
    }

    /// Evaluates a range-vector argument: a matrix selector or a subquery.
    pub fn eval_range_arg(&self, e: &Expr, t: i64) -> Result<RangeArg, RulesError> {
        match unparen(e) {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vs;
                let reft = self.at_ms(&vs.at, t) - offset_ms(&vs.offset);
                let range = duration_ms(&ms.range);
                let data = self.fetch(vs, reft - range, reft, t);
                let mut series = Vec::with_capacity(data.len());
                for (labels, pts) in data.iter() {
                    let points = self.slice_range(pts, reft, range);
                    if !points.is_empty() {
                        series.push(RSeries {
                            labels: labels.clone(),
                            points,
                        });
                    }
                }
                Ok(RangeArg {
                    series,
                    range_ms: range,
                    ref_ms: reft,
                })
            }
            Expr::Subquery(sq) => self.eval_subquery(sq, t),
            other => Err(err(format!(
                "expected range vector, got {}",
                other.value_type()
            ))),
        }
    }

    fn eval_subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<RangeArg, RulesError> {
        let reft = self.at_ms(&sq.at, t) - offset_ms(&sq.offset);
        let range = duration_ms(&sq.range);
        let step = match &sq.step {
            Some(s) if !s.is_zero() => duration_ms(s),
            _ => self.opts.default_subquery_step_ms,
        };
        if step <= 0 {
            return Err(err("subquery step must be positive"));
        }
        let mint = reft - range;
        let mut first = step * (mint / step);
        if self.p2() {
            if first < mint {
                first += step;
            }
        } else if first <= mint {
            first += step;
        }
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut series: Vec<RSeries> = Vec::new();
        let mut ti = first;
        while ti <= reft {
            match self.eval(&sq.expr, ti)? {
                Val::Vector(v) => {
                    for s in v {
                        let i = match index.get(&s.labels) {
                            Some(i) => *i,
                            None => {
                                index.insert(s.labels.clone(), series.len());
                                series.push(RSeries {
                                    labels: s.labels,
                                    points: Vec::new(),
                                });
                                series.len() - 1
                            }
                        };
                        series[i].points.push((ti, s.v));
                    }
                }
                Val::Scalar(v) => {
                    let i = *index.entry(Labels::new()).or_insert_with(|| {
                        series.push(RSeries {
                            labels: Labels::new(),
                            points: Vec::new(),
                        });
                        series.len() - 1
                    });
                    series[i].points.push((ti, v));
                }
                other => {
                    return Err(err(format!(
                        "subquery is only allowed on instant vector, got {}",
                        other.type_name()
                    )));
                }
            }
            ti += step;
        }
        Ok(RangeArg {
            series,
            range_ms: range,
            ref_ms: reft,
        })
    }
}

/// Prometheus' "vector cannot contain metrics with the same labelset".
pub(crate) fn check_duplicates(v: &[Smp]) -> Result<(), RulesError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen: HashSet<&Labels> = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&s.labels) {
            return Err(err("vector cannot contain metrics with the same labelset"));
        }
    }
    Ok(())
}

/// `labels` without `__name__`.
pub(crate) fn drop_name(labels: &Labels) -> Labels {
    if labels.get(METRIC_NAME).is_none() {
        return labels.clone();
    }
    let mut l = labels.clone();
    l.remove(METRIC_NAME);
    l
}
