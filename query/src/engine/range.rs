//! Range aggregations over log streams, evaluated at every step `t` of the grid over
//! the window `(t - range - offset, t - offset]` (Loki's range-vector iterator).
//!
//! Only the union of the windows is read. It is read in time slices; the samples of
//! one slice (all selected streams) are sorted by time and fed to per-series windows,
//! so series fed by several streams (after `drop`, `keep`, `label_format`, a range
//! `by`, …) see their samples in time order. Memory: one slice of samples, one window
//! per series (a running aggregate when windows do not overlap), and the output
//! points (series × steps).
//!
//! `count_over_time`, `rate`, `bytes_over_time` and `bytes_rate` over line filters
//! only, grouped `by` labels, ask the store for per-bucket counts instead (bucket
//! width `gcd(step, range)`, so that each window is a union of buckets; when some
//! stream lacks a grouping label, with a per-stream "has structured metadata" flag,
//! and scan when such a stream has metadata, which could add the label) and scan
//! when the store cannot answer. With a `json`, `logfmt` or `pattern` parser, label filters and `unwrap` (see [`crate::store::pushdown`]),
//! the same is asked of the store's `aggregate`, which answers per bucket and
//! extracted grouping key and returns the rows it cannot evaluate exactly, which run
//! through the pipeline here (a row that ends with `__error__` makes the engine scan,
//! so that errors are reported exactly as without pushdown), or declines. Streams
//! with the same grouping labels may be counted together by the store.

use std::collections::{HashMap, VecDeque};

use argus_schemas::Labels;

use super::Ctx;
use super::step::{Grid, Interner, StepVectors};
use super::util::{LineProc, PAGE, gcd, group_labels, select_streams};
use crate::error::{QueryError, Result};
use crate::logql::ast::{Grouping, LogRange, RangeOp, Stage};
use crate::logql::pipeline::{UnwrapExtractor, leading_line_filters};
use crate::store::pushdown::{self, AggRequest, AggRow};
use crate::store::{BucketRequest, Cursor, Direction, ScanRequest, StreamInfo};

/// Samples gathered per time slice before they are sorted and fed.
const SLICE_TARGET: usize = 200_000;
/// Beyond this many buckets the engine scans rather than asking for counts.
const MAX_BUCKETS: i64 = 2_000_000;

const ERROR_LABEL: &str = "__error__";
const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

pub async fn eval(
    ctx: &mut Ctx<'_>,
    op: RangeOp,
    range: &LogRange,
    param: Option<f64>,
    grouping: Option<&Grouping>,
    grid: &Grid,
) -> Result<StepVectors> {
    if grid.n == 0 {
        return Ok(StepVectors::empty(0));
    }
    if op.needs_unwrap() && range.unwrap.is_none() && op != RangeOp::Rate {
        return Err(QueryError::Invalid(format!(
            "invalid aggregation {} without unwrap",
            op_name(op)
        )));
    }
    if op.forbids_unwrap() && range.unwrap.is_some() {
        return Err(QueryError::Invalid(format!(
            "invalid aggregation {} with unwrap",
            op_name(op)
        )));
    }
    let q = match (op, param) {
        (RangeOp::QuantileOverTime, Some(q)) => q,
        (RangeOp::QuantileOverTime, None) => {
            return Err(QueryError::Invalid(
                "parameter required for operation quantile_over_time".into(),
            ));
        }
        _ => 0.0,
    };
    if range.range <= 0 {
        return Err(QueryError::Invalid("range must be positive".into()));
    }
    let scan_start = grid.start - range.offset - range.range + 1;
    let scan_end = grid.last() - range.offset + 1;
    let streams = select_streams(ctx, &range.log.selector, scan_start, scan_end).await?;
    let counted = if streams.is_empty() {
        StepVectors::empty(grid.n)
    } else if let Some(sv) = try_buckets(ctx, op, range, grouping, grid, &streams).await? {
        sv
    } else if let Some(sv) = try_aggregate(ctx, op, range, grouping, grid, &streams).await? {
        sv
    } else {
        scan(ctx, op, q, range, grouping, grid, &streams).await?
    };
    if op == RangeOp::AbsentOverTime {
        return Ok(absent(counted, &range.log.selector));
    }
    Ok(counted)
}

fn op_name(op: RangeOp) -> &'static str {
    match op {
        RangeOp::CountOverTime => "count_over_time",
        RangeOp::Rate => "rate",
        RangeOp::RateCounter => "rate_counter",
        RangeOp::BytesOverTime => "bytes_over_time",
        RangeOp::BytesRate => "bytes_rate",
        RangeOp::AbsentOverTime => "absent_over_time",
        RangeOp::SumOverTime => "sum_over_time",
        RangeOp::AvgOverTime => "avg_over_time",
        RangeOp::MinOverTime => "min_over_time",
        RangeOp::MaxOverTime => "max_over_time",
        RangeOp::StddevOverTime => "stddev_over_time",
        RangeOp::StdvarOverTime => "stdvar_over_time",
        RangeOp::QuantileOverTime => "quantile_over_time",
        RangeOp::FirstOverTime => "first_over_time",
        RangeOp::LastOverTime => "last_over_time",
    }
}

/// `absent_over_time`: 1 at the steps where no series has data, labelled with the
/// selector's equality matchers (names matched more than once or otherwise dropped).
fn absent(counted: StepVectors, selector: &[crate::logql::ast::LabelMatcher]) -> StepVectors {
    use crate::logql::ast::MatchOp;
    let mut labels = Labels::new();
    let mut dropped = Vec::new();
    for m in selector {
        if m.op == MatchOp::Eq && labels.get(&m.name).is_none() {
            labels.insert(m.name.as_str(), m.value.as_str());
        } else {
            dropped.push(m.name.as_str());
        }
    }
    for n in dropped {
        labels.remove(n);
    }
    let steps = counted
        .steps
        .iter()
        .map(|v| {
            if v.is_empty() {
                vec![(0, 1.0)]
            } else {
                Vec::new()
            }
        })
        .collect();
    StepVectors {
        labels: vec![labels],
        steps,
    }
}

/// The per-bucket fast path; `None` when it does not apply or the store declines.
async fn try_buckets(
    ctx: &mut Ctx<'_>,
    op: RangeOp,
    range: &LogRange,
    grouping: Option<&Grouping>,
    grid: &Grid,
    streams: &[StreamInfo],
) -> Result<Option<StepVectors>> {
    if !ctx.pushdown {
        return Ok(None);
    }
    if !matches!(
        op,
        RangeOp::CountOverTime | RangeOp::Rate | RangeOp::BytesOverTime | RangeOp::BytesRate
    ) || range.unwrap.is_some()
        || !range
            .log
            .pipeline
            .iter()
            .all(|s| matches!(s, Stage::LineFilter(_)))
    {
        return Ok(None);
    }
    // Structured metadata joins the series labels unless a `by` keeps only stream
    // labels every selected stream has (metadata never overrides a stream label).
    let Some(g) = grouping.filter(|g| !g.without) else {
        return Ok(None);
    };
    // Streams lacking a grouping label: metadata on their counted rows could add it,
    // so the store also reports which streams have such rows, and the engine falls
    // back when any of those lacks a label.
    let lacking: std::collections::HashSet<u64> = streams
        .iter()
        .filter(|s| {
            !g.labels
                .iter()
                .all(|n| s.labels.get(n).is_some_and(|v| !v.is_empty()))
        })
        .map(|s| s.fingerprint)
        .collect();
    let width = if grid.n > 1 {
        gcd(grid.step, range.range)
    } else {
        range.range
    };
    let origin = grid.start - range.offset - range.range;
    let span = (grid.n as i64 - 1) * grid.step + range.range;
    let buckets = span / width;
    if buckets > MAX_BUCKETS {
        return Ok(None);
    }
    let fps: Vec<u64> = streams.iter().map(|s| s.fingerprint).collect();
    let filters = leading_line_filters(&range.log.pipeline);
    // Streams of one output series may be counted together by the store (a stream
    // lacking a grouping label never shares a series with one that has them all, so
    // the metadata check below still sees lacking streams only).
    let mut groups = Interner::default();
    let ids: Vec<u32> = streams
        .iter()
        .map(|s| groups.id(group_labels(&s.labels, g)))
        .collect();
    let group_of: HashMap<u64, u32> = fps.iter().copied().zip(ids.iter().copied()).collect();
    let bytes_needed = matches!(op, RangeOp::BytesOverTime | RangeOp::BytesRate);
    let req = BucketRequest {
        tenant: ctx.tenant,
        streams: &fps,
        groups: &ids,
        filters: &filters,
        origin,
        width,
        buckets,
        with_bytes: bytes_needed,
        with_metadata: !lacking.is_empty(),
    };
    let Some((counts, with_meta)) = ctx.store.bucket_counts_grouped(&req).await? else {
        return Ok(None);
    };
    if with_meta.iter().any(|fp| lacking.contains(fp)) {
        return Ok(None);
    }
    let mut per_group: Vec<Vec<(i64, u64, u64)>> = vec![Vec::new(); groups.labels.len()];
    let (mut lines, mut bytes) = (0u64, 0u64);
    for c in counts {
        if c.bucket < 1 || c.bucket > buckets {
            continue;
        }
        if let Some(&gid) = group_of.get(&c.fingerprint) {
            per_group[gid as usize].push((c.bucket, c.lines, c.bytes));
            lines += c.lines;
            bytes += c.bytes;
        }
    }
    ctx.add_scanned(lines, bytes)?;
    let secs = range.range as f64 / 1e9;
    let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); grid.n];
    for (gid, mut b) in per_group.into_iter().enumerate() {
        if b.is_empty() {
            continue;
        }
        b.sort_by_key(|x| x.0);
        // prefix sums over the sorted buckets
        let mut pl = Vec::with_capacity(b.len() + 1);
        let mut pb = Vec::with_capacity(b.len() + 1);
        pl.push(0u64);
        pb.push(0u64);
        for x in &b {
            pl.push(pl.last().copied().unwrap_or(0) + x.1);
            pb.push(pb.last().copied().unwrap_or(0) + x.2);
        }
        for (k, step) in steps.iter_mut().enumerate() {
            let lo = k as i64 * grid.step / width + 1;
            let hi = (k as i64 * grid.step + range.range) / width;
            let i = b.partition_point(|x| x.0 < lo);
            let j = b.partition_point(|x| x.0 <= hi);
            let n = pl[j] - pl[i];
            if n == 0 {
                continue;
            }
            let by = (pb[j] - pb[i]) as f64;
            let v = match op {
                RangeOp::CountOverTime => n as f64,
                RangeOp::Rate => n as f64 / secs,
                RangeOp::BytesOverTime => by,
                _ => by / secs,
            };
            step.push((gid as u32, v));
        }
    }
    Ok(Some(StepVectors {
        labels: groups.labels,
        steps,
    }))
}

/// The bucket layout of a grid: `(origin, width, buckets)` such that every window is
/// a union of buckets (`None` when there would be too many).
fn bucket_layout(range: &LogRange, grid: &Grid) -> Option<(i64, i64, i64)> {
    let width = if grid.n > 1 {
        gcd(grid.step, range.range)
    } else {
        range.range
    };
    let origin = grid.start - range.offset - range.range;
    let span = (grid.n as i64 - 1) * grid.step + range.range;
    let buckets = span / width;
    (buckets <= MAX_BUCKETS).then_some((origin, width, buckets))
}

/// Range aggregations over a parsed pipeline (`| json`, `| pattern`, label filters,
/// `unwrap`) grouped `by (…)`, computed by the store per bucket and key when it can
/// ([`crate::store::pushdown`]); windows are then sums (or min/max) of buckets.
async fn try_aggregate(
    ctx: &mut Ctx<'_>,
    op: RangeOp,
    range: &LogRange,
    grouping: Option<&Grouping>,
    grid: &Grid,
    streams: &[StreamInfo],
) -> Result<Option<StepVectors>> {
    if !ctx.pushdown
        || !matches!(
            op,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::SumOverTime
                | RangeOp::MinOverTime
                | RangeOp::MaxOverTime
        )
    {
        return Ok(None);
    }
    let Some(g) = grouping.filter(|g| !g.without) else {
        return Ok(None);
    };
    let labels: Vec<&Labels> = streams.iter().map(|s| &s.labels).collect();
    let Some(mut plan) = pushdown::plan(&range.log, range.unwrap.as_ref(), &g.labels, &labels)
    else {
        return Ok(None);
    };
    plan.bytes = matches!(op, RangeOp::BytesOverTime | RangeOp::BytesRate);
    let Some((origin, width, buckets)) = bucket_layout(range, grid) else {
        return Ok(None);
    };
    let fps: Vec<u64> = streams.iter().map(|s| s.fingerprint).collect();
    // streams with the same grouping labels may be aggregated together
    let mut stream_groups = Interner::default();
    let ids: Vec<u32> = streams
        .iter()
        .map(|s| stream_groups.id(group_labels(&s.labels, g)))
        .collect();
    let req = AggRequest {
        tenant: ctx.tenant,
        streams: &fps,
        groups: &ids,
        plan: &plan,
        origin,
        width,
        buckets,
    };
    let Some(answer) = ctx.store.aggregate(&req).await? else {
        return Ok(None);
    };
    // series labels: the grouping labels of the stream, plus the extracted keys
    let mut groups = Interner::default();
    let mut per_group: Vec<Vec<AggRow>> = Vec::new();
    let (mut lines, mut bytes) = (0u64, 0u64);
    // The rows the store could not evaluate run through the pipeline here, each a
    // one-sample row of its bucket. One that ends with an error label falls back to
    // the scan, which reports it exactly as without pushdown.
    let rows = answer.rows;
    if !answer.rest.is_empty() {
        let proc = LineProc::new(&range.log.pipeline)?;
        let unwrap = range
            .unwrap
            .as_ref()
            .map(UnwrapExtractor::new)
            .transpose()?;
        for (fp, e) in &answer.rest {
            ctx.add_scanned(1, e.line.len() as u64)?;
            let Ok(i) = streams.binary_search_by_key(fp, |s| s.fingerprint) else {
                continue;
            };
            let Some(p) = proc.process(e.ts, &e.line, &streams[i].labels, &e.metadata) else {
                continue;
            };
            let mut labels = p.labels;
            let value = match &unwrap {
                Some(u) => match u.extract(&mut labels) {
                    None => continue,
                    Some(v) => v.unwrap_or(0.0),
                },
                None => 1.0,
            };
            if labels.get(ERROR_LABEL).is_some() {
                return Ok(None);
            }
            let l = group_labels(&labels, g);
            let gid = groups.id(l) as usize;
            if per_group.len() <= gid {
                per_group.resize_with(gid + 1, Vec::new);
            }
            per_group[gid].push(AggRow {
                fingerprint: *fp,
                bucket: (e.ts - origin - 1).div_euclid(width) + 1,
                keys: Vec::new(),
                count: 1,
                bytes: p.line.len() as u64,
                sum: value,
                min: value,
                max: value,
            });
        }
    }
    for r in rows {
        if r.bucket < 1 || r.bucket > buckets || r.count == 0 {
            continue;
        }
        let Ok(i) = streams.binary_search_by_key(&r.fingerprint, |s| s.fingerprint) else {
            continue;
        };
        let mut l = group_labels(&streams[i].labels, g);
        for (k, v) in plan.keys.iter().zip(&r.keys) {
            if !v.is_empty() {
                l.insert(k.as_str(), v.as_str());
            }
        }
        let gid = groups.id(l) as usize;
        if per_group.len() <= gid {
            per_group.resize_with(gid + 1, Vec::new);
        }
        lines += r.count;
        bytes += r.bytes;
        per_group[gid].push(r);
    }
    ctx.add_scanned(lines, bytes)?;
    let secs = range.range as f64 / 1e9;
    let unwrap = range.unwrap.is_some();
    let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); grid.n];
    for (gid, mut b) in per_group.into_iter().enumerate() {
        b.sort_by_key(|x| x.bucket);
        for (k, step) in steps.iter_mut().enumerate() {
            let lo = k as i64 * grid.step / width + 1;
            let hi = (k as i64 * grid.step + range.range) / width;
            let i = b.partition_point(|x| x.bucket < lo);
            let j = b.partition_point(|x| x.bucket <= hi);
            if i >= j {
                continue;
            }
            let w = &b[i..j];
            let n: u64 = w.iter().map(|x| x.count).sum();
            let by: u64 = w.iter().map(|x| x.bytes).sum();
            let sum: f64 = w.iter().map(|x| x.sum).sum();
            let v = match op {
                RangeOp::CountOverTime => n as f64,
                RangeOp::Rate if unwrap => sum / secs,
                RangeOp::Rate => n as f64 / secs,
                RangeOp::BytesOverTime => by as f64,
                RangeOp::BytesRate => by as f64 / secs,
                RangeOp::SumOverTime => sum,
                RangeOp::MinOverTime => w.iter().map(|x| x.min).fold(f64::INFINITY, f64::min),
                _ => w.iter().map(|x| x.max).fold(f64::NEG_INFINITY, f64::max),
            };
            step.push((gid as u32, v));
        }
    }
    Ok(Some(StepVectors {
        labels: groups.labels,
        steps,
    }))
}

/// One sample on its way from a slice to the windows.
struct Pending {
    ts: i64,
    fp: u64,
    seq: u64,
    series: u32,
    value: f64,
}

#[allow(clippy::too_many_arguments)]
async fn scan(
    ctx: &mut Ctx<'_>,
    op: RangeOp,
    q: f64,
    range: &LogRange,
    grouping: Option<&Grouping>,
    grid: &Grid,
    streams: &[StreamInfo],
) -> Result<StepVectors> {
    let proc = LineProc::new(&range.log.pipeline)?;
    let unwrap = range
        .unwrap
        .as_ref()
        .map(UnwrapExtractor::new)
        .transpose()?;
    let filters = leading_line_filters(&range.log.pipeline);
    let fps: Vec<u64> = streams.iter().map(|s| s.fingerprint).collect();
    let overlap = grid.n > 1 && range.range >= grid.step;
    let mut win = Windows::new(op, q, range, grid, overlap);
    let no_labels = op == RangeOp::AbsentOverTime;
    // The union of the windows, as store ranges [a, b).
    let mut segments: Vec<(i64, i64)> = Vec::new();
    for t in grid.times() {
        let (a, b) = (t - range.offset - range.range + 1, t - range.offset + 1);
        match segments.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => segments.push((a, b)),
        }
    }
    let mut width = range.range.max(grid.step).max(1);
    let mut buf: Vec<Pending> = Vec::new();
    for (seg_a, seg_b) in segments {
        let mut a = seg_a;
        while a < seg_b {
            let b = seg_b.min(a.saturating_add(width));
            let mut after: Option<Cursor> = None;
            loop {
                let req = ScanRequest {
                    tenant: ctx.tenant,
                    streams: &fps,
                    start: a,
                    end: b,
                    filters: &filters,
                    direction: Direction::Forward,
                    after,
                    limit: PAGE,
                };
                let rows = ctx.store.scan(&req).await?;
                let n = rows.len();
                let bytes: u64 = rows.iter().map(|(_, e)| e.line.len() as u64).sum();
                ctx.add_scanned(n as u64, bytes)?;
                if let Some((fp, e)) = rows.last() {
                    after = Some(Cursor {
                        fingerprint: *fp,
                        ts: e.ts,
                        seq: e.seq,
                    });
                }
                for (fp, e) in rows {
                    if e.ts < a || e.ts >= b {
                        continue;
                    }
                    let Ok(i) = streams.binary_search_by_key(&fp, |s| s.fingerprint) else {
                        continue;
                    };
                    let Some(p) = proc.process(e.ts, &e.line, &streams[i].labels, &e.metadata)
                    else {
                        continue;
                    };
                    let mut labels = p.labels;
                    let value = match &unwrap {
                        Some(u) => match u.extract(&mut labels) {
                            None => continue,
                            Some(v) => v.unwrap_or(0.0),
                        },
                        None => match op {
                            RangeOp::BytesOverTime | RangeOp::BytesRate => p.line.len() as f64,
                            _ => 1.0,
                        },
                    };
                    let labels = if labels.get(ERROR_LABEL).is_some() {
                        labels
                    } else if no_labels {
                        Labels::new()
                    } else if let Some(g) = grouping {
                        group_labels(&labels, g)
                    } else {
                        labels
                    };
                    let series = win.series.id(labels);
                    buf.push(Pending {
                        ts: e.ts,
                        fp,
                        seq: e.seq,
                        series,
                        value,
                    });
                }
                if n < PAGE {
                    break;
                }
            }
            buf.sort_by_key(|x| (x.ts, x.fp, x.seq));
            let gathered = buf.len();
            for s in buf.drain(..) {
                win.feed(s.ts, s.series, s.value)?;
            }
            if gathered < SLICE_TARGET / 4 {
                width = width.saturating_mul(2);
            } else if gathered > SLICE_TARGET {
                width = (width / 2).max(1);
            }
            a = b;
        }
    }
    win.finish();
    Ok(win.into_vectors())
}

/// Running aggregate of one window, computed as Loki's range aggregators do.
#[derive(Debug, Clone)]
struct Acc {
    count: f64,
    sum: f64,
    mean: f64,
    aux: f64,
    min: f64,
    max: f64,
    first: Option<f64>,
    last: f64,
    samples: Vec<(i64, f64)>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            count: 0.0,
            sum: 0.0,
            mean: 0.0,
            aux: 0.0,
            min: f64::NAN,
            max: f64::NAN,
            first: None,
            last: 0.0,
            samples: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0.0
    }

    fn push(&mut self, op: RangeOp, ts: i64, v: f64) {
        self.count += 1.0;
        match op {
            RangeOp::CountOverTime | RangeOp::AbsentOverTime => {}
            RangeOp::Rate | RangeOp::BytesOverTime | RangeOp::BytesRate | RangeOp::SumOverTime => {
                self.sum += v
            }
            RangeOp::AvgOverTime => {
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                self.mean += v / self.count - self.mean / self.count;
            }
            RangeOp::MinOverTime => {
                if v < self.min || self.min.is_nan() {
                    self.min = v;
                }
            }
            RangeOp::MaxOverTime => {
                if v > self.max || self.max.is_nan() {
                    self.max = v;
                }
            }
            RangeOp::StddevOverTime | RangeOp::StdvarOverTime => {
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.aux += delta * (v - self.mean);
            }
            RangeOp::FirstOverTime => {
                if self.first.is_none() {
                    self.first = Some(v);
                }
            }
            RangeOp::LastOverTime => self.last = v,
            RangeOp::QuantileOverTime | RangeOp::RateCounter => self.samples.push((ts, v)),
        }
    }

    fn value(&mut self, op: RangeOp, q: f64, unwrap: bool, range: i64, range_end: i64) -> f64 {
        let secs = range as f64 / 1e9;
        match op {
            RangeOp::CountOverTime => self.count,
            RangeOp::Rate if unwrap => self.sum / secs,
            RangeOp::Rate => self.count / secs,
            RangeOp::BytesOverTime | RangeOp::SumOverTime => self.sum,
            RangeOp::BytesRate => self.sum / secs,
            RangeOp::AvgOverTime => self.mean,
            RangeOp::MinOverTime => self.min,
            RangeOp::MaxOverTime => self.max,
            RangeOp::StddevOverTime => (self.aux / self.count).sqrt(),
            RangeOp::StdvarOverTime => self.aux / self.count,
            RangeOp::FirstOverTime => self.first.unwrap_or(f64::NAN),
            RangeOp::LastOverTime => self.last,
            RangeOp::AbsentOverTime => 1.0,
            RangeOp::QuantileOverTime => {
                let mut values: Vec<f64> = self.samples.iter().map(|s| s.1).collect();
                quantile(q, &mut values)
            }
            RangeOp::RateCounter => extrapolated_rate(&self.samples, range, range_end),
        }
    }
}

/// Prometheus' quantile: linear interpolation between the closest ranks.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `rate_counter`: Prometheus' counter rate (resets add the value before the reset),
/// extrapolated towards the window's edges, per second. Fewer than two samples give
/// 0, as in Loki.
fn extrapolated_rate(samples: &[(i64, f64)], range: i64, range_end: i64) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let range_start = range_end - range;
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let mut result = last.1 - first.1;
    let mut prev = 0.0;
    for &(_, v) in samples {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    let mut to_start = (first.0 - range_start) as f64 / 1e9;
    let mut to_end = (range_end - last.0) as f64 / 1e9;
    let sampled = (last.0 - first.0) as f64 / 1e9;
    let avg = sampled / (samples.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    let mut to_zero = to_start;
    if result > 0.0 && first.1 >= 0.0 {
        to_zero = sampled * (first.1 / result);
    }
    if to_zero < to_start {
        to_start = to_zero;
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let extrapolated = sampled + to_start + to_end;
    result *= extrapolated / sampled;
    result / (range as f64 / 1e9)
}

enum SeriesWin {
    /// overlapping windows: the samples of the current window
    Deque(VecDeque<(i64, f64)>),
    /// disjoint windows: a running aggregate
    Acc(Acc),
}

/// The per-series windows sliding over the step grid.
struct Windows<'a> {
    op: RangeOp,
    q: f64,
    unwrap: bool,
    range: i64,
    offset: i64,
    grid: &'a Grid,
    overlap: bool,
    series: Interner,
    state: Vec<SeriesWin>,
    next: usize,
    out: Vec<Vec<(u32, f64)>>,
}

impl<'a> Windows<'a> {
    fn new(op: RangeOp, q: f64, range: &LogRange, grid: &'a Grid, overlap: bool) -> Self {
        Windows {
            op,
            q,
            unwrap: range.unwrap.is_some(),
            range: range.range,
            offset: range.offset,
            grid,
            overlap,
            series: Interner::default(),
            state: Vec::new(),
            next: 0,
            out: vec![Vec::new(); grid.n],
        }
    }

    fn window_end(&self, k: usize) -> i64 {
        self.grid.at(k) - self.offset
    }

    /// Feeds one sample; samples arrive in time order.
    fn feed(&mut self, ts: i64, series: u32, v: f64) -> Result<()> {
        while self.next < self.grid.n && self.window_end(self.next) < ts {
            self.emit(self.next);
            self.next += 1;
        }
        if self.next >= self.grid.n || ts <= self.window_end(self.next) - self.range {
            return Ok(()); // in no window
        }
        let labels = &self.series.labels[series as usize];
        if labels.get(ERROR_LABEL).is_some() && labels.get(PRESERVE_ERROR_LABEL) != Some("true") {
            return Err(pipeline_error(labels));
        }
        while self.state.len() <= series as usize {
            self.state.push(if self.overlap {
                SeriesWin::Deque(VecDeque::new())
            } else {
                SeriesWin::Acc(Acc::new())
            });
        }
        match &mut self.state[series as usize] {
            SeriesWin::Deque(d) => d.push_back((ts, v)),
            SeriesWin::Acc(a) => a.push(self.op, ts, v),
        }
        Ok(())
    }

    fn emit(&mut self, k: usize) {
        let end = self.window_end(k);
        let start = end - self.range;
        let (op, q, unwrap, range) = (self.op, self.q, self.unwrap, self.range);
        let out = &mut self.out[k];
        for (id, st) in self.state.iter_mut().enumerate() {
            match st {
                SeriesWin::Deque(d) => {
                    while d.front().is_some_and(|s| s.0 <= start) {
                        d.pop_front();
                    }
                    if d.is_empty() {
                        continue;
                    }
                    let mut acc = Acc::new();
                    for &(t, v) in d.iter() {
                        acc.push(op, t, v);
                    }
                    out.push((id as u32, acc.value(op, q, unwrap, range, end)));
                }
                SeriesWin::Acc(a) => {
                    if a.is_empty() {
                        continue;
                    }
                    out.push((id as u32, a.value(op, q, unwrap, range, end)));
                    *a = Acc::new();
                }
            }
        }
    }

    fn finish(&mut self) {
        while self.next < self.grid.n {
            self.emit(self.next);
            self.next += 1;
        }
    }

    fn into_vectors(self) -> StepVectors {
        StepVectors {
            labels: self.series.labels,
            steps: self.out,
        }
    }
}

/// Loki's error for a sample that kept `__error__` (not filtered out).
pub fn pipeline_error(labels: &Labels) -> QueryError {
    let err = labels.get(ERROR_LABEL).unwrap_or("");
    QueryError::Invalid(format!(
        "pipeline error: '{err}' for series: '{labels}'.\n\
         Use a label filter to intentionally skip this error. (e.g | __error__!=\"{err}\").\n\
         To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n\
         The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"
    ))
}
