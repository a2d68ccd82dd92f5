//! The LogQL engine: runs a parsed query against a [`LogStore`]. Stream selection,
//! the time range and leading line filters go to the store (and, for metric queries
//! without parsers, line and byte counts per bucket); the rest runs here as a
//! streaming pipeline whose memory is bounded by the query limits.
//!
//! - `log`: log queries (bounded selection of the newest/oldest `limit` entries)
//! - `range`: range aggregations (`count_over_time`, `rate`, … `quantile_over_time`)
//!   evaluated at every step over windows `(t - range - offset, t - offset]`
//! - `vector`: vector aggregations and `label_replace`
//! - `binary`: binary operators with Prometheus' vector matching
//! - `step`: the step grid and the per-step intermediate values
//! - `util`: stream selection, the line processor, Go-style duration texts

mod binary;
mod log;
mod range;
pub mod result;
mod step;
mod util;
mod vector;

use std::sync::Arc;
use std::time::Instant;

use crate::error::{QueryError, Result};
use crate::logql::ast::{Expr, MetricExpr, VectorOp};
use crate::metrics::{LINES_PROCESSED, QUERY_DURATION};
use crate::store::{Direction, LogStore};
pub use result::{QueryData, QueryResponse, QueryStats, Sample, Series, StreamResult};
use step::{Grid, Value};

/// Query limits, named and defaulted as Loki's.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `max_entries_limit_per_query` (5000)
    pub max_entries_limit_per_query: u32,
    /// `max_query_series` (500)
    pub max_query_series: usize,
    /// `max_query_length` in ns (30d1h); 0 = unlimited
    pub max_query_length: i64,
    /// points per series (11000), as Loki's "exceeded maximum resolution"
    pub max_points_per_series: i64,
    /// `max_streams_matchers_per_query` / lines scanned per query; 0 = unlimited
    pub max_lines_scanned: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            max_query_length: (30 * 24 + 1) * 3600 * 1_000_000_000,
            max_points_per_series: 11_000,
            max_lines_scanned: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// `/loki/api/v1/query`: evaluated at `end` (start == end).
    Instant,
    /// `/loki/api/v1/query_range`
    Range,
}

/// One query, with its parameters already resolved to numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParams {
    pub tenant: String,
    pub query: String,
    pub kind: QueryKind,
    /// ns; for instant queries equal to `end`
    pub start: i64,
    /// ns
    pub end: i64,
    /// ns (range metric queries)
    pub step: i64,
    /// ns (`interval` of log range queries; 0 = none)
    pub interval: i64,
    pub limit: u32,
    pub direction: Direction,
}

pub struct Engine {
    store: Arc<dyn LogStore>,
    limits: Limits,
    pushdown: bool,
}

/// What one query run shares with its parts: the store, the limits, the tenant and
/// the work counters.
pub(crate) struct Ctx<'a> {
    pub store: &'a dyn LogStore,
    pub limits: &'a Limits,
    pub tenant: &'a str,
    pub stats: QueryStats,
    /// Whether metric aggregations may be computed by the store (on by default).
    pub pushdown: bool,
}

impl Ctx<'_> {
    /// Counts lines read from the store; fails past `max_lines_scanned`.
    pub fn add_scanned(&mut self, lines: u64, bytes: u64) -> Result<()> {
        self.stats.total_lines_processed += lines;
        self.stats.total_bytes_processed += bytes;
        let max = self.limits.max_lines_scanned;
        if max > 0 && self.stats.total_lines_processed > max {
            return Err(QueryError::Limit(format!(
                "the query would read more than the maximum of {max} log lines"
            )));
        }
        Ok(())
    }
}

/// Loki's message for a log query sent as an instant query.
pub const ERR_INSTANT_LOG_QUERY: &str = "log queries are not supported as an instant query type, please change your query to a range query type";

impl Engine {
    pub fn new(store: Arc<dyn LogStore>, limits: Limits) -> Self {
        Engine {
            store,
            limits,
            pushdown: true,
        }
    }

    /// Turns store-side aggregation (`bucket_counts`, `aggregate`) on or off; off,
    /// every metric query scans and runs the pipeline here (tests compare both).
    pub fn with_pushdown(mut self, on: bool) -> Self {
        self.pushdown = on;
        self
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses and runs a query.
    pub async fn query(&self, params: &QueryParams) -> Result<QueryResponse> {
        let expr = crate::logql::parse(&params.query)?;
        self.query_expr(&expr, params).await
    }

    /// Runs an already parsed query (`params.query` is not looked at).
    pub async fn query_expr(&self, expr: &Expr, params: &QueryParams) -> Result<QueryResponse> {
        let started = Instant::now();
        self.check_params(expr, params)?;
        let mut ctx = Ctx {
            store: self.store.as_ref(),
            limits: &self.limits,
            tenant: &params.tenant,
            stats: QueryStats {
                subqueries: 1,
                ..QueryStats::default()
            },
            pushdown: self.pushdown,
        };
        let (kind, data) = match expr {
            Expr::Log(log) => {
                let streams = log::run(&mut ctx, log, params).await?;
                ctx.stats.total_entries_returned =
                    streams.iter().map(|s| s.entries.len() as u64).sum();
                ("log", QueryData::Streams(streams))
            }
            Expr::Metric(m) => {
                let data = self.run_metric(&mut ctx, m, params).await?;
                ctx.stats.total_entries_returned = match &data {
                    QueryData::Matrix(series) => series.iter().map(|s| s.points.len() as u64).sum(),
                    QueryData::Vector(v) => v.len() as u64,
                    _ => 0,
                };
                ("metric", data)
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        ctx.stats.exec_time_secs = elapsed;
        let store_kind = self.store.kind();
        QUERY_DURATION
            .with_label_values(&[kind, store_kind])
            .observe(elapsed);
        LINES_PROCESSED
            .with_label_values(&[store_kind])
            .inc_by(ctx.stats.total_lines_processed);
        Ok(QueryResponse {
            data,
            stats: ctx.stats,
        })
    }

    /// The request checks Loki makes before running a query, with its texts.
    fn check_params(&self, expr: &Expr, p: &QueryParams) -> Result<()> {
        let is_log = matches!(expr, Expr::Log(_));
        if is_log && p.kind == QueryKind::Instant {
            return Err(QueryError::BadParam(ERR_INSTANT_LOG_QUERY.into()));
        }
        if p.end < p.start {
            return Err(QueryError::BadParam(
                "end timestamp must not be before or equal to start time".into(),
            ));
        }
        let max_entries = self.limits.max_entries_limit_per_query;
        if is_log && max_entries != 0 && p.limit > max_entries {
            return Err(QueryError::Limit(format!(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {})",
                p.limit, max_entries
            )));
        }
        let max_len = self.limits.max_query_length;
        if max_len > 0 {
            // Loki measures the length on millisecond timestamps.
            let len = (p.end.div_euclid(1_000_000) - p.start.div_euclid(1_000_000)) * 1_000_000;
            if len > max_len {
                return Err(QueryError::Limit(format!(
                    "the query time range exceeds the limit (query length: {}, limit: {})",
                    util::go_duration(len),
                    util::model_duration(max_len)
                )));
            }
        }
        if p.kind == QueryKind::Range {
            if !is_log && p.step <= 0 {
                return Err(QueryError::BadParam(
                    "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
                ));
            }
            let max_points = self.limits.max_points_per_series;
            if p.step > 0 && max_points > 0 && (p.end - p.start) / p.step > max_points {
                return Err(QueryError::BadParam(format!(
                    "exceeded maximum resolution of {} points per time series. Try increasing the value of the step parameter",
                    util::thousands(max_points)
                )));
            }
        }
        Ok(())
    }

    async fn run_metric(
        &self,
        ctx: &mut Ctx<'_>,
        expr: &MetricExpr,
        p: &QueryParams,
    ) -> Result<QueryData> {
        let grid = match p.kind {
            QueryKind::Instant => Grid::instant(p.end),
            QueryKind::Range => Grid::range(p.start, p.end, p.step),
        };
        let value = step::eval(ctx, expr, &grid).await?;
        let max_series = self.limits.max_query_series;
        let series_err = || {
            QueryError::Limit(format!(
                "maximum of series ({max_series}) reached for a single query"
            ))
        };
        match (p.kind, value) {
            (QueryKind::Instant, Value::Scalar(v)) => Ok(QueryData::Scalar(step::ts_ms(p.end), v)),
            (QueryKind::Range, Value::Scalar(v)) => Ok(QueryData::Matrix(vec![Series {
                labels: Default::default(),
                points: grid.times().map(|t| (step::ts_ms(t), v)).collect(),
            }])),
            (QueryKind::Instant, Value::Vector(sv)) => {
                let mut samples = sv.into_instant(step::ts_ms(p.end));
                if samples.len() > max_series {
                    return Err(series_err());
                }
                if !has_sort(expr) {
                    samples.sort_by(|a, b| a.labels.cmp(&b.labels));
                }
                Ok(QueryData::Vector(samples))
            }
            (QueryKind::Range, Value::Vector(sv)) => {
                let series = sv.into_matrix(&grid);
                if series.len() > max_series {
                    return Err(series_err());
                }
                Ok(QueryData::Matrix(series))
            }
        }
    }
}

/// Whether the query sorts its result by value (`sort`/`sort_desc`), in which case an
/// instant vector keeps that order instead of being sorted by labels (Loki's `Sortable`).
fn has_sort(e: &MetricExpr) -> bool {
    match e {
        MetricExpr::VectorAgg { op, expr, .. } => {
            matches!(op, VectorOp::Sort | VectorOp::SortDesc) || has_sort(expr)
        }
        MetricExpr::Binary { lhs, rhs, .. } => has_sort(lhs) || has_sort(rhs),
        MetricExpr::LabelReplace { expr, .. } => has_sort(expr),
        MetricExpr::RangeAgg { .. } | MetricExpr::Literal(_) | MetricExpr::Vector(_) => false,
    }
}
