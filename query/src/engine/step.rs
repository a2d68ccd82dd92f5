//! The step grid of a metric query and the values flowing between the operators:
//! a scalar (the same at every step) or, per step, an instant vector over a shared
//! table of series labels. Memory is series × steps.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use argus_schemas::Labels;

use super::result::{Sample, Series};
use super::{Ctx, binary, range, vector};
use crate::error::Result;
use crate::logql::ast::{Grouping, MetricExpr, RangeOp, VectorOp};

/// Evaluation times: `start, start + step, … ≤ end` (one point, `end`, for instant
/// queries).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Grid {
    pub fn instant(t: i64) -> Grid {
        Grid {
            start: t,
            step: 1,
            n: 1,
        }
    }

    pub fn range(start: i64, end: i64, step: i64) -> Grid {
        let step = step.max(1);
        let n = if end < start {
            0
        } else {
            ((end - start) / step) as usize + 1
        };
        Grid { start, step, n }
    }

    pub fn at(&self, k: usize) -> i64 {
        self.start + k as i64 * self.step
    }

    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.n).map(|k| self.at(k))
    }

    pub fn last(&self) -> i64 {
        self.at(self.n.saturating_sub(1))
    }
}

/// ns → ms as Loki truncates.
pub fn ts_ms(t: i64) -> i64 {
    t / 1_000_000
}

/// Per step, the samples `(series index, value)` of an instant vector.
#[derive(Debug, Clone, Default)]
pub struct StepVectors {
    pub labels: Vec<Labels>,
    pub steps: Vec<Vec<(u32, f64)>>,
}

impl StepVectors {
    pub fn empty(n: usize) -> Self {
        StepVectors {
            labels: Vec::new(),
            steps: vec![Vec::new(); n],
        }
    }

    /// The one vector of an instant query, timestamped `ts_ms`.
    pub fn into_instant(self, ts_ms: i64) -> Vec<Sample> {
        let StepVectors { labels, steps } = self;
        steps
            .into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|(id, value)| Sample {
                labels: labels[id as usize].clone(),
                ts: ts_ms,
                value,
            })
            .collect()
    }

    /// A matrix: series with points only at steps where they have a sample, series
    /// with the same labels merged, sorted by labels.
    pub fn into_matrix(self, grid: &Grid) -> Vec<Series> {
        let StepVectors { labels, steps } = self;
        let mut index: HashMap<&Labels, usize> = HashMap::new();
        let mut out: Vec<Series> = Vec::new();
        let mut slot: Vec<Option<usize>> = vec![None; labels.len()];
        for (k, vec) in steps.iter().enumerate() {
            let t = ts_ms(grid.at(k));
            for &(id, v) in vec {
                let i = match slot[id as usize] {
                    Some(i) => i,
                    None => {
                        let l = &labels[id as usize];
                        let i = *index.entry(l).or_insert_with(|| {
                            out.push(Series {
                                labels: l.clone(),
                                points: Vec::new(),
                            });
                            out.len() - 1
                        });
                        slot[id as usize] = Some(i);
                        i
                    }
                };
                out[i].points.push((t, v));
            }
        }
        for s in &mut out {
            s.points.sort_by_key(|p| p.0);
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// Interns label sets into a series table.
#[derive(Default)]
pub struct Interner {
    pub labels: Vec<Labels>,
    index: HashMap<Labels, u32>,
}

impl Interner {
    pub fn id(&mut self, l: Labels) -> u32 {
        if let Some(&id) = self.index.get(&l) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.labels.push(l.clone());
        self.index.insert(l, id);
        id
    }
}

/// The value of a metric (sub)expression.
#[derive(Debug, Clone)]
pub enum Value {
    Scalar(f64),
    Vector(StepVectors),
}

type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>>;

/// Evaluates a metric expression over the grid.
pub fn eval<'a, 'c: 'a>(ctx: &'a mut Ctx<'c>, expr: &'a MetricExpr, grid: &'a Grid) -> BoxFut<'a> {
    Box::pin(async move {
        match expr {
            MetricExpr::Literal(v) => Ok(Value::Scalar(*v)),
            MetricExpr::Vector(v) => Ok(Value::Vector(StepVectors {
                labels: vec![Labels::new()],
                steps: vec![vec![(0, *v)]; grid.n],
            })),
            MetricExpr::RangeAgg {
                op,
                range,
                param,
                grouping,
            } => {
                let sv = range::eval(ctx, *op, range, *param, grouping.as_ref(), grid).await?;
                Ok(Value::Vector(sv))
            }
            MetricExpr::VectorAgg {
                op,
                expr: inner,
                grouping,
                param,
            } => {
                let by_nothing = Grouping {
                    without: false,
                    labels: Vec::new(),
                };
                let g = grouping.as_ref().unwrap_or(&by_nothing);
                let input = match (op, inner.as_ref()) {
                    // Loki pushes a `sum`'s grouping down into the extraction of an
                    // ungrouped range aggregation whose values add up.
                    (
                        VectorOp::Sum,
                        MetricExpr::RangeAgg {
                            op: rop,
                            range: r,
                            param: p,
                            grouping: None,
                        },
                    ) if matches!(
                        rop,
                        RangeOp::BytesOverTime
                            | RangeOp::BytesRate
                            | RangeOp::SumOverTime
                            | RangeOp::Rate
                            | RangeOp::CountOverTime
                    ) =>
                    {
                        Value::Vector(range::eval(ctx, *rop, r, *p, Some(g), grid).await?)
                    }
                    _ => eval(ctx, inner, grid).await?,
                };
                match input {
                    Value::Vector(sv) => Ok(Value::Vector(vector::aggregate(*op, g, *param, sv)?)),
                    Value::Scalar(_) => Err(crate::QueryError::Invalid(
                        "vector aggregation over a scalar is not supported".into(),
                    )),
                }
            }
            MetricExpr::Binary {
                op,
                lhs,
                rhs,
                modifier,
            } => {
                let l = eval(ctx, lhs, grid).await?;
                let r = eval(ctx, rhs, grid).await?;
                binary::apply(*op, modifier, l, r)
            }
            MetricExpr::LabelReplace {
                expr: inner,
                dst,
                replacement,
                src,
                regex,
            } => match eval(ctx, inner, grid).await? {
                Value::Vector(sv) => Ok(Value::Vector(vector::label_replace(
                    sv,
                    dst,
                    replacement,
                    src,
                    regex,
                )?)),
                Value::Scalar(_) => Err(crate::QueryError::Invalid(
                    "label_replace over a scalar is not supported".into(),
                )),
            },
        }
    })
}
