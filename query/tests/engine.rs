//! The LogQL engine against a small in-memory store, with queries built as syntax
//! trees (no parser needed): log queries (limit, direction, grouping, interval),
//! every range aggregation, vector aggregations, binary operators and matching,
//! offsets, instant vs range, limit errors, series merging and the bucket-count
//! fast path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// `(ts ns, line, structured metadata)` of one test entry.
type EntryWithMetadata<'a> = (i64, &'a str, Vec<(&'a str, &'a str)>);

use argus_query::engine::{Engine, Limits, QueryData, QueryKind, QueryParams, Series};
use argus_query::error::Result;
use argus_query::logql::ast::*;
use argus_query::logql::pipeline::Pipeline;
use argus_query::store::{
    BucketCount, Cursor, Direction, Entry, IndexStats, LogStore, ScanRequest, StreamInfo, WriteRow,
};
use argus_schemas::Labels;
use async_trait::async_trait;

// ---------------------------------------------------------------------------------
// In-memory store
// ---------------------------------------------------------------------------------

struct MemStream {
    labels: Labels,
    fp: u64,
    entries: Vec<Entry>,
}

#[derive(Default)]
struct MemStore {
    streams: Mutex<Vec<MemStream>>,
    buckets: bool,
    bucket_calls: AtomicUsize,
    scan_calls: AtomicUsize,
}

impl MemStore {
    fn add(&self, labels: &[(&str, &str)], entries: &[(i64, &str)]) {
        self.add_md(
            labels,
            &entries
                .iter()
                .map(|(t, l)| (*t, *l, vec![]))
                .collect::<Vec<_>>(),
        );
    }

    fn add_md(&self, labels: &[(&str, &str)], entries: &[EntryWithMetadata<'_>]) {
        let labels = Labels::from_pairs(labels.iter().copied());
        let fp = labels.fingerprint().0;
        let mut streams = self.streams.lock().unwrap();
        let idx = match streams.iter().position(|s| s.fp == fp) {
            Some(i) => i,
            None => {
                streams.push(MemStream {
                    labels,
                    fp,
                    entries: Vec::new(),
                });
                streams.len() - 1
            }
        };
        let s = &mut streams[idx];
        for (ts, line, md) in entries {
            let seq = s.entries.len() as u64;
            s.entries.push(Entry {
                ts: *ts,
                seq,
                line: line.to_string(),
                metadata: Labels::from_pairs(md.iter().copied()),
            });
        }
        s.entries.sort_by_key(|e| (e.ts, e.seq));
    }
}

#[async_trait]
impl LogStore for MemStore {
    fn kind(&self) -> &'static str {
        "memory"
    }
    async fn write(&self, _rows: &[WriteRow]) -> Result<()> {
        Ok(())
    }
    async fn resume_offsets(&self, _topic: &str) -> Result<HashMap<i32, i64>> {
        Ok(HashMap::new())
    }
    async fn streams(&self, tenant: &str, start: i64, end: i64) -> Result<Vec<StreamInfo>> {
        assert_eq!(tenant, "t1");
        Ok(self
            .streams
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.entries.iter().any(|e| e.ts >= start && e.ts < end))
            .map(|s| StreamInfo {
                fingerprint: s.fp,
                labels: s.labels.clone(),
            })
            .collect())
    }
    async fn scan(&self, req: &ScanRequest<'_>) -> Result<Vec<(u64, Entry)>> {
        self.scan_calls.fetch_add(1, Ordering::Relaxed);
        let streams = self.streams.lock().unwrap();
        let mut sorted: Vec<&MemStream> = streams
            .iter()
            .filter(|s| req.streams.contains(&s.fp))
            .collect();
        sorted.sort_by_key(|s| s.fp);
        let backward = req.direction == Direction::Backward;
        let mut out = Vec::new();
        for s in sorted {
            let mut es: Vec<&Entry> = s
                .entries
                .iter()
                .filter(|e| e.ts >= req.start && e.ts < req.end)
                .collect();
            if backward {
                es.reverse();
            }
            for e in es {
                if let Some(Cursor {
                    fingerprint,
                    ts,
                    seq,
                }) = req.after
                {
                    let key = (e.ts, e.seq);
                    let after = if s.fp != fingerprint {
                        s.fp > fingerprint
                    } else if backward {
                        key < (ts, seq)
                    } else {
                        key > (ts, seq)
                    };
                    if !after {
                        continue;
                    }
                }
                out.push((s.fp, e.clone()));
                if out.len() >= req.limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
    async fn bucket_counts(
        &self,
        _tenant: &str,
        streams: &[u64],
        filters: &[LineFilter],
        origin: i64,
        width: i64,
        buckets: i64,
    ) -> Result<Option<Vec<BucketCount>>> {
        if !self.buckets {
            return Ok(None);
        }
        self.bucket_calls.fetch_add(1, Ordering::Relaxed);
        let stages: Vec<Stage> = filters.iter().cloned().map(Stage::LineFilter).collect();
        let p = Pipeline::new(&stages)?;
        let mut acc: HashMap<(u64, i64), (u64, u64)> = HashMap::new();
        for s in self.streams.lock().unwrap().iter() {
            if !streams.contains(&s.fp) {
                continue;
            }
            for e in &s.entries {
                if e.ts <= origin || e.ts > origin + buckets * width {
                    continue;
                }
                if !p.line_passes_filters(&e.line) {
                    continue;
                }
                let b = (e.ts - origin + width - 1) / width;
                let c = acc.entry((s.fp, b)).or_default();
                c.0 += 1;
                c.1 += e.line.len() as u64;
            }
        }
        Ok(Some(
            acc.into_iter()
                .map(|((fingerprint, bucket), (lines, bytes))| BucketCount {
                    fingerprint,
                    bucket,
                    lines,
                    bytes,
                })
                .collect(),
        ))
    }
    async fn index_stats(&self, _: &str, _: &[u64], _: i64, _: i64) -> Result<IndexStats> {
        Ok(IndexStats::default())
    }
    async fn apply_retention(
        &self,
        _: &HashMap<String, std::time::Duration>,
        _: Option<std::time::Duration>,
        _: i64,
    ) -> Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

const S: i64 = 1_000_000_000;
/// A base time (whole seconds) so that ms conversions are exact.
const T0: i64 = 1_700_000_000 * S;

fn t(secs: i64) -> i64 {
    T0 + secs * S
}

fn ms(secs: i64) -> i64 {
    t(secs) / 1_000_000
}

fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
    LabelMatcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    m(name, MatchOp::Eq, value)
}

fn lbl(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn log(selector: Vec<LabelMatcher>, pipeline: Vec<Stage>) -> LogExpr {
    LogExpr { selector, pipeline }
}

fn contains(s: &str) -> Stage {
    Stage::LineFilter(LineFilter {
        op: LineFilterOp::Contains,
        values: vec![FilterValue::Literal(s.into())],
    })
}

fn logfmt() -> Stage {
    Stage::Parser(Parser::Logfmt {
        strict: false,
        keep_empty: false,
        params: vec![],
    })
}

fn drop(names: &[&str]) -> Stage {
    Stage::Drop(
        names
            .iter()
            .map(|n| LabelSelect::Name(n.to_string()))
            .collect(),
    )
}

fn by(names: &[&str]) -> Option<Grouping> {
    Some(Grouping {
        without: false,
        labels: names.iter().map(|s| s.to_string()).collect(),
    })
}

fn without(names: &[&str]) -> Option<Grouping> {
    Some(Grouping {
        without: true,
        labels: names.iter().map(|s| s.to_string()).collect(),
    })
}

struct R {
    op: RangeOp,
    log: LogExpr,
    unwrap: Option<Unwrap>,
    range: i64,
    offset: i64,
    param: Option<f64>,
    grouping: Option<Grouping>,
}

impl R {
    fn new(op: RangeOp, log: LogExpr, range_secs: i64) -> R {
        R {
            op,
            log,
            unwrap: None,
            range: range_secs * S,
            offset: 0,
            param: None,
            grouping: None,
        }
    }
    fn unwrap(mut self, label: &str) -> R {
        self.unwrap = Some(Unwrap {
            label: label.into(),
            conv: UnwrapConv::None,
            post_filters: vec![],
        });
        self
    }
    fn post(mut self, f: LabelFilterExpr) -> R {
        if let Some(u) = &mut self.unwrap {
            u.post_filters.push(f);
        }
        self
    }
    fn offset(mut self, secs: i64) -> R {
        self.offset = secs * S;
        self
    }
    fn param(mut self, p: f64) -> R {
        self.param = Some(p);
        self
    }
    fn group(mut self, g: Option<Grouping>) -> R {
        self.grouping = g;
        self
    }
    fn e(self) -> MetricExpr {
        MetricExpr::RangeAgg {
            op: self.op,
            range: LogRange {
                log: self.log,
                unwrap: self.unwrap,
                range: self.range,
                offset: self.offset,
            },
            param: self.param,
            grouping: self.grouping,
        }
    }
}

fn vagg(op: VectorOp, e: MetricExpr, grouping: Option<Grouping>, param: Option<f64>) -> MetricExpr {
    MetricExpr::VectorAgg {
        op,
        expr: Box::new(e),
        grouping,
        param,
    }
}

fn bin(op: BinOp, l: MetricExpr, r: MetricExpr, modifier: BinModifier) -> MetricExpr {
    MetricExpr::Binary {
        op,
        lhs: Box::new(l),
        rhs: Box::new(r),
        modifier,
    }
}

fn on(names: &[&str]) -> BinModifier {
    BinModifier {
        matching: Some(VectorMatching::On(
            names.iter().map(|s| s.to_string()).collect(),
        )),
        ..Default::default()
    }
}

fn params(kind: QueryKind, start: i64, end: i64, step: i64) -> QueryParams {
    QueryParams {
        tenant: "t1".into(),
        query: String::new(),
        kind,
        start,
        end,
        step,
        interval: 0,
        limit: 100,
        direction: Direction::Backward,
    }
}

fn range_q(start: i64, end: i64, step_secs: i64) -> QueryParams {
    params(QueryKind::Range, t(start), t(end), step_secs * S)
}

fn instant_q(at: i64) -> QueryParams {
    params(QueryKind::Instant, t(at), t(at), 0)
}

fn log_q(start: i64, end: i64, limit: u32, direction: Direction) -> QueryParams {
    QueryParams {
        limit,
        direction,
        ..params(QueryKind::Range, t(start), t(end), S)
    }
}

fn engine(store: MemStore) -> (Engine, Arc<MemStore>) {
    let store = Arc::new(store);
    (Engine::new(store.clone(), Limits::default()), store)
}

async fn run(e: &Engine, expr: Expr, p: &QueryParams) -> QueryData {
    e.query_expr(&expr, p).await.expect("query runs").data
}

async fn run_err(e: &Engine, expr: Expr, p: &QueryParams) -> String {
    match e.query_expr(&expr, p).await {
        Ok(r) => panic!("expected an error, got {:?}", r.data),
        Err(err) => err.to_string(),
    }
}

async fn matrix(e: &Engine, expr: MetricExpr, p: &QueryParams) -> Vec<Series> {
    match run(e, Expr::Metric(expr), p).await {
        QueryData::Matrix(m) => m,
        other => panic!("expected a matrix, got {other:?}"),
    }
}

async fn vector(e: &Engine, expr: MetricExpr, at: i64) -> Vec<(Labels, f64)> {
    match run(e, Expr::Metric(expr), &instant_q(at)).await {
        QueryData::Vector(v) => {
            for s in &v {
                assert_eq!(s.ts, ms(at));
            }
            v.into_iter().map(|s| (s.labels, s.value)).collect()
        }
        other => panic!("expected a vector, got {other:?}"),
    }
}

/// `(labels, [(secs offset from T0, value)])` of a matrix.
fn pts(m: &[Series]) -> Vec<(Labels, Vec<(i64, f64)>)> {
    m.iter()
        .map(|s| {
            (
                s.labels.clone(),
                s.points
                    .iter()
                    .map(|(ts, v)| ((ts - T0 / 1_000_000) / 1000, *v))
                    .collect(),
            )
        })
        .collect()
}

async fn streams(e: &Engine, expr: LogExpr, p: &QueryParams) -> Vec<(Labels, Vec<(i64, String)>)> {
    match run(e, Expr::Log(expr), p).await {
        QueryData::Streams(s) => s
            .into_iter()
            .map(|s| {
                (
                    s.labels,
                    s.entries
                        .into_iter()
                        .map(|(ts, l, _)| ((ts - T0) / S, l))
                        .collect(),
                )
            })
            .collect(),
        other => panic!("expected streams, got {other:?}"),
    }
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 || (a.is_nan() && b.is_nan())
}

/// Two streams of app=a / app=b, one line per second from 1 to 10 (a) and 2, 4 … 10 (b).
fn two_apps() -> MemStore {
    let s = MemStore::default();
    let a: Vec<(i64, String)> = (1..=10).map(|i| (t(i), format!("a line {i}"))).collect();
    let b: Vec<(i64, String)> = (1..=5).map(|i| (t(2 * i), format!("b line {i}"))).collect();
    s.add(
        &[("app", "a"), ("env", "prod")],
        &a.iter().map(|(t, l)| (*t, l.as_str())).collect::<Vec<_>>(),
    );
    s.add(
        &[("app", "b"), ("env", "prod")],
        &b.iter().map(|(t, l)| (*t, l.as_str())).collect::<Vec<_>>(),
    );
    s
}

/// One stream with logfmt lines carrying `v=` values at seconds 1..=6.
fn values_store(values: &[(i64, &str)]) -> MemStore {
    let s = MemStore::default();
    let lines: Vec<(i64, String)> = values
        .iter()
        .map(|(sec, v)| (t(*sec), format!("level=info v={v}")))
        .collect();
    s.add(
        &[("app", "a")],
        &lines
            .iter()
            .map(|(t, l)| (*t, l.as_str()))
            .collect::<Vec<_>>(),
    );
    s
}

fn app(v: &str) -> Vec<LabelMatcher> {
    vec![eq("app", v)]
}

fn any_app() -> Vec<LabelMatcher> {
    vec![m("app", MatchOp::Re, ".+")]
}

// ---------------------------------------------------------------------------------
// Log queries
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn log_backward_returns_the_newest_entries_across_streams() {
    let (e, _) = engine(two_apps());
    let got = streams(
        &e,
        log(any_app(), vec![]),
        &log_q(0, 100, 4, Direction::Backward),
    )
    .await;
    // newest 4 overall: a10, b10 (t=10), a9, a8 ... b at 8 too: t=10 (a,b), t=9 (a), t=8 (a,b)
    let total: usize = got.iter().map(|s| s.1.len()).sum();
    assert_eq!(total, 4);
    let a = &got[0];
    assert_eq!(a.0, lbl(&[("app", "a"), ("env", "prod")]));
    let a_ts: Vec<i64> = a.1.iter().map(|x| x.0).collect();
    let b_ts: Vec<i64> = got[1].1.iter().map(|x| x.0).collect();
    let mut all: Vec<i64> = a_ts.iter().chain(b_ts.iter()).copied().collect();
    all.sort();
    assert_eq!(all[0], 8);
    assert!(
        a_ts.windows(2).all(|w| w[0] > w[1]),
        "backward order: {a_ts:?}"
    );
    assert_eq!(a_ts[0], 10);
    assert_eq!(b_ts[0], 10);
}

#[tokio::test]
async fn log_forward_returns_the_oldest_entries_in_ascending_order() {
    let (e, _) = engine(two_apps());
    let got = streams(
        &e,
        log(any_app(), vec![]),
        &log_q(0, 100, 3, Direction::Forward),
    )
    .await;
    assert_eq!(got.len(), 2);
    let a: Vec<i64> = got[0].1.iter().map(|x| x.0).collect();
    let b: Vec<i64> = got[1].1.iter().map(|x| x.0).collect();
    assert_eq!(a, vec![1, 2]);
    assert_eq!(b, vec![2]);
}

#[tokio::test]
async fn log_range_is_start_inclusive_end_exclusive() {
    let (e, _) = engine(two_apps());
    let got = streams(
        &e,
        log(app("a"), vec![]),
        &log_q(3, 6, 100, Direction::Forward),
    )
    .await;
    let ts: Vec<i64> = got[0].1.iter().map(|x| x.0).collect();
    assert_eq!(ts, vec![3, 4, 5]);
}

#[tokio::test]
async fn log_streams_are_sorted_by_labels() {
    let s = MemStore::default();
    for name in ["zeta", "alpha", "mid"] {
        s.add(&[("app", name)], &[(t(1), "x")]);
    }
    let (e, _) = engine(s);
    let got = streams(
        &e,
        log(any_app(), vec![]),
        &log_q(0, 10, 100, Direction::Backward),
    )
    .await;
    let names: Vec<String> = got
        .iter()
        .map(|s| s.0.get("app").unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["alpha", "mid", "zeta"]);
}

#[tokio::test]
async fn log_selector_matchers_regex_and_negative() {
    let s = two_apps();
    s.add(&[("app", "c"), ("env", "dev")], &[(t(1), "c")]);
    let (e, _) = engine(s);
    let sel = vec![m("app", MatchOp::Re, "a|c"), m("env", MatchOp::Neq, "prod")];
    let got = streams(
        &e,
        log(sel, vec![]),
        &log_q(0, 100, 100, Direction::Backward),
    )
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get("app"), Some("c"));
    let sel = vec![m("app", MatchOp::Nre, "a|c"), eq("env", "prod")];
    let got = streams(
        &e,
        log(sel, vec![]),
        &log_q(0, 100, 100, Direction::Backward),
    )
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get("app"), Some("b"));
}

#[tokio::test]
async fn log_line_filter_applies() {
    let (e, _) = engine(two_apps());
    let got = streams(
        &e,
        log(any_app(), vec![contains("line 1")]),
        &log_q(0, 100, 100, Direction::Forward),
    )
    .await;
    let lines: Vec<&str> = got
        .iter()
        .flat_map(|s| s.1.iter().map(|x| x.1.as_str()))
        .collect();
    assert_eq!(lines, vec!["a line 1", "a line 10", "b line 1"]);
}

#[tokio::test]
async fn log_structured_metadata_splits_result_streams() {
    let s = MemStore::default();
    s.add_md(
        &[("app", "a")],
        &[
            (t(1), "one", vec![("trace", "x")]),
            (t(2), "two", vec![("trace", "y")]),
            (t(3), "three", vec![]),
        ],
    );
    let (e, _) = engine(s);
    let got = streams(
        &e,
        log(app("a"), vec![]),
        &log_q(0, 10, 100, Direction::Forward),
    )
    .await;
    // sorted as Loki sorts label strings: `{app="a", trace="x"}` < `{app="a"}`
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, lbl(&[("app", "a"), ("trace", "x")]));
    assert_eq!(got[1].0, lbl(&[("app", "a"), ("trace", "y")]));
    assert_eq!(got[2].0, lbl(&[("app", "a")]));
    assert_eq!(got[2].1, vec![(3, "three".to_string())]);
}

#[tokio::test]
async fn log_drop_merges_streams_into_one_result_stream() {
    let (e, _) = engine(two_apps());
    let got = streams(
        &e,
        log(any_app(), vec![drop(&["app"])]),
        &log_q(0, 100, 5, Direction::Backward),
    )
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, lbl(&[("env", "prod")]));
    let ts: Vec<i64> = got[0].1.iter().map(|x| x.0).collect();
    assert_eq!(ts, vec![10, 10, 9, 8, 8]);
}

#[tokio::test]
async fn log_interval_keeps_one_entry_per_interval_forward() {
    let (e, _) = engine(two_apps());
    let mut p = log_q(0, 100, 100, Direction::Forward);
    p.interval = 3 * S;
    let got = streams(&e, log(app("a"), vec![]), &p).await;
    let ts: Vec<i64> = got[0].1.iter().map(|x| x.0).collect();
    assert_eq!(ts, vec![1, 4, 7, 10]);
}

#[tokio::test]
async fn log_interval_backward_and_across_streams() {
    let (e, _) = engine(two_apps());
    let mut p = log_q(0, 100, 100, Direction::Backward);
    p.interval = 4 * S;
    let got = streams(&e, log(any_app(), vec![]), &p).await;
    let mut ts: Vec<i64> = got.iter().flat_map(|s| s.1.iter().map(|x| x.0)).collect();
    ts.sort();
    assert_eq!(ts, vec![2, 6, 10]);
}

#[tokio::test]
async fn log_interval_respects_limit() {
    let (e, _) = engine(two_apps());
    let mut p = log_q(0, 100, 2, Direction::Forward);
    p.interval = 2 * S;
    let got = streams(&e, log(app("a"), vec![]), &p).await;
    let ts: Vec<i64> = got[0].1.iter().map(|x| x.0).collect();
    assert_eq!(ts, vec![1, 3]);
}

#[tokio::test]
async fn log_limit_bounds_results_over_many_pages() {
    let s = MemStore::default();
    let lines: Vec<(i64, String)> = (0..9000)
        .map(|i| (t(0) + i * 1_000_000, format!("l{i}")))
        .collect();
    s.add(
        &[("app", "a")],
        &lines
            .iter()
            .map(|(t, l)| (*t, l.as_str()))
            .collect::<Vec<_>>(),
    );
    let (e, _) = engine(s);
    let got = streams(
        &e,
        log(app("a"), vec![]),
        &log_q(0, 100, 5000, Direction::Backward),
    )
    .await;
    assert_eq!(got[0].1.len(), 5000);
    assert_eq!(got[0].1[0].1, "l8999");
    assert_eq!(got[0].1[4999].1, "l4000");
}

#[tokio::test]
async fn log_stops_reading_once_limit_is_reached() {
    let s = MemStore::default();
    let lines: Vec<(i64, String)> = (0..1000).map(|i| (t(i * 60), format!("l{i}"))).collect();
    s.add(
        &[("app", "a")],
        &lines
            .iter()
            .map(|(t, l)| (*t, l.as_str()))
            .collect::<Vec<_>>(),
    );
    let (e, store) = engine(s);
    let r = e
        .query_expr(
            &Expr::Log(log(app("a"), vec![])),
            &QueryParams {
                step: 60 * S,
                ..log_q(0, 60_000, 10, Direction::Backward)
            },
        )
        .await
        .unwrap();
    assert!(
        r.stats.total_lines_processed < 1000,
        "read {}",
        r.stats.total_lines_processed
    );
    assert!(store.scan_calls.load(Ordering::Relaxed) >= 1);
    assert_eq!(r.stats.total_entries_returned, 10);
}

#[tokio::test]
async fn log_limit_zero_and_no_match_give_no_streams() {
    let (e, _) = engine(two_apps());
    assert!(
        streams(
            &e,
            log(app("a"), vec![]),
            &log_q(0, 100, 0, Direction::Backward)
        )
        .await
        .is_empty()
    );
    assert!(
        streams(
            &e,
            log(app("zzz"), vec![]),
            &log_q(0, 100, 10, Direction::Backward)
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn log_query_as_instant_query_is_refused() {
    let (e, _) = engine(two_apps());
    let err = run_err(&e, Expr::Log(log(app("a"), vec![])), &instant_q(10)).await;
    assert!(
        err.starts_with("log queries are not supported as an instant query type"),
        "{err}"
    );
}

#[tokio::test]
async fn log_limit_above_max_entries_is_refused_with_lokis_text() {
    let (e, _) = engine(two_apps());
    let err = run_err(
        &e,
        Expr::Log(log(app("a"), vec![])),
        &log_q(0, 100, 5001, Direction::Backward),
    )
    .await;
    assert_eq!(
        err,
        "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)"
    );
}

#[tokio::test]
async fn query_longer_than_max_query_length_is_refused() {
    let (e, _) = engine(two_apps());
    let p = QueryParams {
        start: t(0),
        end: t(0) + 31 * 24 * 3600 * S,
        ..log_q(0, 0, 10, Direction::Backward)
    };
    let err = run_err(&e, Expr::Log(log(app("a"), vec![])), &p).await;
    assert_eq!(
        err,
        "the query time range exceeds the limit (query length: 744h0m0s, limit: 30d1h)"
    );
}

#[tokio::test]
async fn too_many_steps_are_refused() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::CountOverTime, log(app("a"), vec![]), 60).e();
    let err = run_err(&e, Expr::Metric(q), &range_q(0, 11_001, 1)).await;
    assert_eq!(
        err,
        "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter"
    );
}

#[tokio::test]
async fn log_stats_count_lines_and_bytes() {
    let (e, _) = engine(two_apps());
    let r = e
        .query_expr(
            &Expr::Log(log(app("b"), vec![])),
            &log_q(0, 100, 100, Direction::Forward),
        )
        .await
        .unwrap();
    assert_eq!(r.stats.total_lines_processed, 5);
    assert_eq!(r.stats.total_bytes_processed, 5 * "b line 1".len() as u64);
    assert_eq!(r.stats.total_entries_returned, 5);
}

// ---------------------------------------------------------------------------------
// Range aggregations
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn count_over_time_range_query() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 5).e();
    let got = pts(&matrix(&e, q, &range_q(5, 15, 5)).await);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, lbl(&[("app", "a"), ("env", "prod")]));
    // windows (0,5], (5,10], (10,15]
    assert_eq!(got[0].1, vec![(5, 5.0), (10, 5.0)]);
    assert_eq!(got[1].1, vec![(5, 2.0), (10, 3.0)]);
}

#[tokio::test]
async fn count_over_time_instant_query_is_a_vector() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 4).e();
    let got = vector(&e, q, 10).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, 4.0); // a: 7, 8, 9, 10
    assert_eq!(got[1].1, 2.0); // b: 8, 10
}

#[tokio::test]
async fn window_excludes_its_start_and_includes_its_end() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::CountOverTime, log(app("a"), vec![]), 3).e();
    // window (4, 7] holds 5, 6, 7
    assert_eq!(vector(&e, q, 7).await[0].1, 3.0);
}

#[tokio::test]
async fn rate_is_count_per_second_of_range() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::Rate, log(app("a"), vec![]), 4).e();
    assert!(approx(vector(&e, q, 10).await[0].1, 1.0));
    let q = R::new(RangeOp::Rate, log(app("b"), vec![]), 10).e();
    assert!(approx(vector(&e, q, 10).await[0].1, 0.5));
}

#[tokio::test]
async fn rate_with_unwrap_is_sum_per_second() {
    let (e, _) = engine(values_store(&[(1, "2"), (2, "4"), (3, "6")]));
    let q = R::new(RangeOp::Rate, log(app("a"), vec![logfmt()]), 4)
        .unwrap("v")
        .e();
    let got = vector(&e, q, 3).await;
    assert!(approx(got[0].1, 3.0));
    assert_eq!(got[0].0, lbl(&[("app", "a"), ("level", "info")]));
}

#[tokio::test]
async fn bytes_over_time_and_bytes_rate() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::BytesOverTime, log(app("b"), vec![]), 4).e();
    assert_eq!(vector(&e, q, 10).await[0].1, 16.0); // two lines of 8 bytes
    let q = R::new(RangeOp::BytesRate, log(app("b"), vec![]), 4).e();
    assert!(approx(vector(&e, q, 10).await[0].1, 4.0));
}

#[tokio::test]
async fn absent_over_time_without_data_has_selector_labels() {
    let (e, _) = engine(two_apps());
    let sel = vec![
        eq("app", "nope"),
        eq("env", "prod"),
        m("x", MatchOp::Re, ".*"),
    ];
    let q = R::new(RangeOp::AbsentOverTime, log(sel, vec![]), 5).e();
    let got = vector(&e, q, 10).await;
    assert_eq!(got, vec![(lbl(&[("app", "nope"), ("env", "prod")]), 1.0)]);
}

#[tokio::test]
async fn absent_over_time_only_at_steps_without_data() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::AbsentOverTime, log(app("b"), vec![]), 1).e();
    let got = pts(&matrix(&e, q, &range_q(8, 12, 1)).await);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, lbl(&[("app", "b")]));
    assert_eq!(got[0].1, vec![(9, 1.0), (11, 1.0), (12, 1.0)]);
}

#[tokio::test]
async fn sum_avg_min_max_over_time() {
    let store = values_store(&[(1, "3"), (2, "1"), (3, "8"), (4, "4")]);
    let (e, _) = engine(store);
    let mk = |op| {
        R::new(op, log(app("a"), vec![logfmt()]), 10)
            .unwrap("v")
            .e()
    };
    assert_eq!(vector(&e, mk(RangeOp::SumOverTime), 5).await[0].1, 16.0);
    assert_eq!(vector(&e, mk(RangeOp::AvgOverTime), 5).await[0].1, 4.0);
    assert_eq!(vector(&e, mk(RangeOp::MinOverTime), 5).await[0].1, 1.0);
    assert_eq!(vector(&e, mk(RangeOp::MaxOverTime), 5).await[0].1, 8.0);
}

#[tokio::test]
async fn stddev_and_stdvar_over_time() {
    let (e, _) = engine(values_store(&[
        (1, "2"),
        (2, "4"),
        (3, "4"),
        (4, "4"),
        (5, "5"),
        (6, "5"),
        (7, "7"),
        (8, "9"),
    ]));
    let mk = |op| {
        R::new(op, log(app("a"), vec![logfmt()]), 10)
            .unwrap("v")
            .e()
    };
    assert!(approx(
        vector(&e, mk(RangeOp::StdvarOverTime), 9).await[0].1,
        4.0
    ));
    assert!(approx(
        vector(&e, mk(RangeOp::StddevOverTime), 9).await[0].1,
        2.0
    ));
}

#[tokio::test]
async fn quantile_over_time_interpolates() {
    let (e, _) = engine(values_store(&[(1, "1"), (2, "2"), (3, "3"), (4, "4")]));
    let mk = |q| {
        R::new(RangeOp::QuantileOverTime, log(app("a"), vec![logfmt()]), 10)
            .unwrap("v")
            .param(q)
            .e()
    };
    assert!(approx(vector(&e, mk(0.5), 5).await[0].1, 2.5));
    assert!(approx(vector(&e, mk(0.9), 5).await[0].1, 3.7));
    assert_eq!(vector(&e, mk(0.0), 5).await[0].1, 1.0);
    assert_eq!(vector(&e, mk(1.5), 5).await[0].1, f64::INFINITY);
}

#[tokio::test]
async fn first_and_last_over_time() {
    let (e, _) = engine(values_store(&[(1, "7"), (2, "3"), (3, "9")]));
    let mk = |op| {
        R::new(op, log(app("a"), vec![logfmt()]), 10)
            .unwrap("v")
            .e()
    };
    assert_eq!(vector(&e, mk(RangeOp::FirstOverTime), 5).await[0].1, 7.0);
    assert_eq!(vector(&e, mk(RangeOp::LastOverTime), 5).await[0].1, 9.0);
}

#[tokio::test]
async fn rate_counter_handles_resets() {
    // 10, 20, 30, 5 (reset), 15 at 1 s spacing in a 10 s window ending at 10
    let (e, _) = engine(values_store(&[
        (6, "10"),
        (7, "20"),
        (8, "30"),
        (9, "5"),
        (10, "15"),
    ]));
    let q = R::new(RangeOp::RateCounter, log(app("a"), vec![logfmt()]), 10)
        .unwrap("v")
        .e();
    let got = vector(&e, q, 10).await[0].1;
    // increase 35 over 4 s sampled; extrapolated to the start by 0.5 s (avg/2, but the
    // zero point is 10/35*4 s ≈ 1.14 s away) and 0 s at the end: 35 * 4.5 / 4 / 10
    assert!(approx(got, 35.0 * 4.5 / 4.0 / 10.0), "{got}");
}

#[tokio::test]
async fn rate_counter_single_sample_is_zero() {
    let (e, _) = engine(values_store(&[(5, "10")]));
    let q = R::new(RangeOp::RateCounter, log(app("a"), vec![logfmt()]), 10)
        .unwrap("v")
        .e();
    assert_eq!(vector(&e, q, 10).await[0].1, 0.0);
}

#[tokio::test]
async fn offset_shifts_the_window_but_not_the_timestamp() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::CountOverTime, log(app("a"), vec![]), 2)
        .offset(5)
        .e();
    // at t=10 the window is (3, 5]
    assert_eq!(vector(&e, q, 10).await[0].1, 2.0);
    let q = R::new(RangeOp::CountOverTime, log(app("a"), vec![]), 2)
        .offset(5)
        .e();
    let got = pts(&matrix(&e, q, &range_q(10, 16, 2)).await);
    assert_eq!(got[0].1, vec![(10, 2.0), (12, 2.0), (14, 2.0), (16, 1.0)]);
}

#[tokio::test]
async fn series_have_points_only_at_steps_with_data() {
    let s = MemStore::default();
    s.add(&[("app", "a")], &[(t(1), "x"), (t(20), "y")]);
    let (e, _) = engine(s);
    let q = R::new(RangeOp::CountOverTime, log(app("a"), vec![]), 2).e();
    let got = pts(&matrix(&e, q, &range_q(0, 30, 1)).await);
    assert_eq!(got[0].1, vec![(1, 1.0), (2, 1.0), (20, 1.0), (21, 1.0)]);
}

#[tokio::test]
async fn range_aggregation_by_merges_streams() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 10)
        .group(by(&["env"]))
        .e();
    let got = vector(&e, q, 10).await;
    assert_eq!(got, vec![(lbl(&[("env", "prod")]), 15.0)]);
}

#[tokio::test]
async fn range_aggregation_without_drops_labels() {
    let (e, _) = engine(two_apps());
    let q = R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 10)
        .group(without(&["app"]))
        .e();
    assert_eq!(
        vector(&e, q, 10).await,
        vec![(lbl(&[("env", "prod")]), 15.0)]
    );
}

#[tokio::test]
async fn last_over_time_over_merged_streams_follows_time() {
    let s = MemStore::default();
    s.add(
        &[("app", "a"), ("pod", "1")],
        &[(t(1), "v=1"), (t(4), "v=4")],
    );
    s.add(
        &[("app", "a"), ("pod", "2")],
        &[(t(2), "v=2"), (t(3), "v=3")],
    );
    let (e, _) = engine(s);
    let mk = |op| {
        R::new(op, log(app("a"), vec![logfmt()]), 10)
            .unwrap("v")
            .group(by(&["app"]))
            .e()
    };
    assert_eq!(vector(&e, mk(RangeOp::LastOverTime), 5).await[0].1, 4.0);
    assert_eq!(vector(&e, mk(RangeOp::FirstOverTime), 5).await[0].1, 1.0);
    let q = R::new(RangeOp::QuantileOverTime, log(app("a"), vec![logfmt()]), 10)
        .unwrap("v")
        .param(0.5)
        .group(by(&["app"]))
        .e();
    assert_eq!(vector(&e, q, 5).await, vec![(lbl(&[("app", "a")]), 2.5)]);
}

#[tokio::test]
async fn unwrap_conversion_error_fails_the_query() {
    let (e, _) = engine(values_store(&[(1, "3"), (2, "abc")]));
    let q = R::new(RangeOp::SumOverTime, log(app("a"), vec![logfmt()]), 10)
        .unwrap("v")
        .e();
    let err = run_err(&e, Expr::Metric(q), &instant_q(5)).await;
    assert!(
        err.starts_with("pipeline error: 'SampleExtractionErr' for series: '{"),
        "{err}"
    );
    assert!(
        err.contains("Use a label filter to intentionally skip this error."),
        "{err}"
    );
}

#[tokio::test]
async fn unwrap_errors_filtered_after_unwrap_are_skipped() {
    let (e, _) = engine(values_store(&[(1, "3"), (2, "abc"), (3, "4")]));
    let no_error = LabelFilterExpr::String(eq("__error__", ""));
    let q = R::new(RangeOp::SumOverTime, log(app("a"), vec![logfmt()]), 10)
        .unwrap("v")
        .post(no_error)
        .e();
    assert_eq!(vector(&e, q, 5).await[0].1, 7.0);
}

#[tokio::test]
async fn unwrap_removes_the_unwrapped_label() {
    let (e, _) = engine(values_store(&[(1, "3")]));
    let q = R::new(RangeOp::MaxOverTime, log(app("a"), vec![logfmt()]), 10)
        .unwrap("v")
        .e();
    assert_eq!(
        vector(&e, q, 5).await,
        vec![(lbl(&[("app", "a"), ("level", "info")]), 3.0)]
    );
}

#[tokio::test]
async fn drop_in_pipeline_merges_series_of_a_range_aggregation() {
    let (e, _) = engine(two_apps());
    let q = R::new(
        RangeOp::CountOverTime,
        log(any_app(), vec![drop(&["app"])]),
        10,
    )
    .e();
    let got = pts(&matrix(&e, q, &range_q(5, 10, 5)).await);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, lbl(&[("env", "prod")]));
    assert_eq!(got[0].1, vec![(5, 7.0), (10, 15.0)]);
}

#[tokio::test]
async fn structured_metadata_splits_metric_series() {
    let s = MemStore::default();
    s.add_md(
        &[("app", "a")],
        &[
            (t(1), "x", vec![("k", "1")]),
            (t(2), "y", vec![("k", "2")]),
            (t(3), "z", vec![("k", "1")]),
        ],
    );
    let (e, _) = engine(s);
    let q = R::new(RangeOp::CountOverTime, log(app("a"), vec![]), 10).e();
    let got = vector(&e, q, 5).await;
    assert_eq!(
        got,
        vec![
            (lbl(&[("app", "a"), ("k", "1")]), 2.0),
            (lbl(&[("app", "a"), ("k", "2")]), 1.0)
        ]
    );
}

// ---------------------------------------------------------------------------------
// Vector aggregations
// ---------------------------------------------------------------------------------

/// Three streams: app a/b/c, env prod/prod/dev, with 3, 2 and 1 lines in (0, 10].
fn three_apps() -> MemStore {
    let s = MemStore::default();
    s.add(
        &[("app", "a"), ("env", "prod")],
        &[(t(1), "a"), (t(2), "a"), (t(3), "a")],
    );
    s.add(
        &[("app", "b"), ("env", "prod")],
        &[(t(1), "b"), (t(2), "b")],
    );
    s.add(&[("app", "c"), ("env", "dev")], &[(t(1), "c")]);
    s
}

fn counts() -> MetricExpr {
    R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 10).e()
}

#[tokio::test]
async fn sum_by_groups() {
    let (e, _) = engine(three_apps());
    let got = vector(&e, vagg(VectorOp::Sum, counts(), by(&["env"]), None), 10).await;
    assert_eq!(
        got,
        vec![
            (lbl(&[("env", "dev")]), 1.0),
            (lbl(&[("env", "prod")]), 5.0)
        ]
    );
}

#[tokio::test]
async fn sum_without_groups() {
    let (e, _) = engine(three_apps());
    let got = vector(
        &e,
        vagg(VectorOp::Sum, counts(), without(&["app"]), None),
        10,
    )
    .await;
    assert_eq!(
        got,
        vec![
            (lbl(&[("env", "dev")]), 1.0),
            (lbl(&[("env", "prod")]), 5.0)
        ]
    );
}

#[tokio::test]
async fn sum_without_grouping_is_one_series() {
    let (e, _) = engine(three_apps());
    let got = vector(&e, vagg(VectorOp::Sum, counts(), None, None), 10).await;
    assert_eq!(got, vec![(Labels::new(), 6.0)]);
}

#[tokio::test]
async fn avg_min_max_count() {
    let (e, _) = engine(three_apps());
    assert_eq!(
        vector(&e, vagg(VectorOp::Avg, counts(), None, None), 10).await[0].1,
        2.0
    );
    assert_eq!(
        vector(&e, vagg(VectorOp::Min, counts(), None, None), 10).await[0].1,
        1.0
    );
    assert_eq!(
        vector(&e, vagg(VectorOp::Max, counts(), None, None), 10).await[0].1,
        3.0
    );
    let got = vector(&e, vagg(VectorOp::Count, counts(), by(&["env"]), None), 10).await;
    assert_eq!(
        got,
        vec![
            (lbl(&[("env", "dev")]), 1.0),
            (lbl(&[("env", "prod")]), 2.0)
        ]
    );
}

#[tokio::test]
async fn stddev_and_stdvar_across_series() {
    let (e, _) = engine(three_apps());
    let var = vector(&e, vagg(VectorOp::Stdvar, counts(), None, None), 10).await[0].1;
    assert!(approx(var, 2.0 / 3.0), "{var}");
    let sd = vector(&e, vagg(VectorOp::Stddev, counts(), None, None), 10).await[0].1;
    assert!(approx(sd, (2.0f64 / 3.0).sqrt()));
}

#[tokio::test]
async fn topk_keeps_the_largest_series_with_their_labels() {
    let (e, _) = engine(three_apps());
    let got = vector(&e, vagg(VectorOp::Topk, counts(), None, Some(2.0)), 10).await;
    // instant results are sorted by labels
    assert_eq!(
        got,
        vec![
            (lbl(&[("app", "a"), ("env", "prod")]), 3.0),
            (lbl(&[("app", "b"), ("env", "prod")]), 2.0)
        ]
    );
}

#[tokio::test]
async fn topk_by_group_and_bottomk() {
    let (e, _) = engine(three_apps());
    let got = vector(
        &e,
        vagg(VectorOp::Topk, counts(), by(&["env"]), Some(1.0)),
        10,
    )
    .await;
    let apps: Vec<&str> = got.iter().map(|x| x.0.get("app").unwrap()).collect();
    assert_eq!(apps, vec!["a", "c"]);
    let got = vector(&e, vagg(VectorOp::Bottomk, counts(), None, Some(1.0)), 10).await;
    assert_eq!(got, vec![(lbl(&[("app", "c"), ("env", "dev")]), 1.0)]);
    assert!(
        vector(&e, vagg(VectorOp::Topk, counts(), None, Some(0.0)), 10)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn topk_over_a_range_query_selects_per_step() {
    let s = MemStore::default();
    s.add(&[("app", "a")], &[(t(1), "x"), (t(2), "x"), (t(6), "x")]);
    s.add(&[("app", "b")], &[(t(1), "x"), (t(6), "x"), (t(7), "x")]);
    let (e, _) = engine(s);
    let q = vagg(
        VectorOp::Topk,
        R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 5).e(),
        None,
        Some(1.0),
    );
    let got = pts(&matrix(&e, q, &range_q(5, 10, 5)).await);
    assert_eq!(got[0].0, lbl(&[("app", "a")]));
    assert_eq!(got[0].1, vec![(5, 2.0)]);
    assert_eq!(got[1].0, lbl(&[("app", "b")]));
    assert_eq!(got[1].1, vec![(10, 2.0)]);
}

#[tokio::test]
async fn sort_and_sort_desc_order_instant_vectors_by_value() {
    let (e, _) = engine(three_apps());
    let got = vector(&e, vagg(VectorOp::Sort, counts(), None, None), 10).await;
    let v: Vec<f64> = got.iter().map(|x| x.1).collect();
    assert_eq!(v, vec![1.0, 2.0, 3.0]);
    let got = vector(&e, vagg(VectorOp::SortDesc, counts(), None, None), 10).await;
    let v: Vec<f64> = got.iter().map(|x| x.1).collect();
    assert_eq!(v, vec![3.0, 2.0, 1.0]);
}

#[tokio::test]
async fn sum_pushdown_matches_plain_sum() {
    let (e, _) = engine(three_apps());
    let inner = R::new(RangeOp::Rate, log(any_app(), vec![]), 10).e();
    let got = vector(&e, vagg(VectorOp::Sum, inner, by(&["env"]), None), 10).await;
    assert_eq!(
        got,
        vec![
            (lbl(&[("env", "dev")]), 0.1),
            (lbl(&[("env", "prod")]), 0.5)
        ]
    );
}

// ---------------------------------------------------------------------------------
// Binary operators
// ---------------------------------------------------------------------------------

fn count_of(a: &str) -> MetricExpr {
    R::new(RangeOp::CountOverTime, log(app(a), vec![]), 10).e()
}

#[tokio::test]
async fn scalar_arithmetic_on_vectors() {
    let (e, _) = engine(three_apps());
    let got = vector(
        &e,
        bin(
            BinOp::Mul,
            count_of("a"),
            MetricExpr::Literal(2.0),
            Default::default(),
        ),
        10,
    )
    .await;
    assert_eq!(got, vec![(lbl(&[("app", "a"), ("env", "prod")]), 6.0)]);
    let got = vector(
        &e,
        bin(
            BinOp::Sub,
            MetricExpr::Literal(10.0),
            count_of("a"),
            Default::default(),
        ),
        10,
    )
    .await;
    assert_eq!(got[0].1, 7.0);
    let got = vector(
        &e,
        bin(
            BinOp::Pow,
            count_of("a"),
            MetricExpr::Literal(2.0),
            Default::default(),
        ),
        10,
    )
    .await;
    assert_eq!(got[0].1, 9.0);
    let got = vector(
        &e,
        bin(
            BinOp::Mod,
            count_of("a"),
            MetricExpr::Literal(2.0),
            Default::default(),
        ),
        10,
    )
    .await;
    assert_eq!(got[0].1, 1.0);
}

#[tokio::test]
async fn comparison_filters_and_keeps_the_vector_value() {
    let (e, _) = engine(three_apps());
    let got = vector(
        &e,
        bin(
            BinOp::Gt,
            counts(),
            MetricExpr::Literal(1.0),
            Default::default(),
        ),
        10,
    )
    .await;
    let v: Vec<f64> = got.iter().map(|x| x.1).collect();
    assert_eq!(v, vec![3.0, 2.0]);
    // literal on the left: 2 < x keeps x
    let got = vector(
        &e,
        bin(
            BinOp::Lt,
            MetricExpr::Literal(2.0),
            counts(),
            Default::default(),
        ),
        10,
    )
    .await;
    assert_eq!(got.iter().map(|x| x.1).collect::<Vec<_>>(), vec![3.0]);
}

#[tokio::test]
async fn comparison_with_bool_gives_zero_or_one() {
    let (e, _) = engine(three_apps());
    let m = BinModifier {
        return_bool: true,
        ..Default::default()
    };
    let got = vector(
        &e,
        bin(BinOp::Gte, counts(), MetricExpr::Literal(2.0), m),
        10,
    )
    .await;
    assert_eq!(
        got.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![1.0, 1.0, 0.0]
    );
}

#[tokio::test]
async fn vector_vector_one_to_one_matches_identical_labels() {
    let (e, _) = engine(three_apps());
    let rate = R::new(RangeOp::Rate, log(any_app(), vec![]), 10).e();
    let got = vector(&e, bin(BinOp::Div, counts(), rate, Default::default()), 10).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|x| approx(x.1, 10.0)));
    assert_eq!(got[0].0, lbl(&[("app", "a"), ("env", "prod")]));
}

#[tokio::test]
async fn vector_vector_comparison_filters_lhs() {
    let (e, _) = engine(three_apps());
    let two = bin(
        BinOp::Add,
        vagg(VectorOp::Sum, counts(), by(&["app", "env"]), None),
        MetricExpr::Literal(0.0),
        Default::default(),
    );
    let got = vector(&e, bin(BinOp::Eq, counts(), two, Default::default()), 10).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].1, 1.0);
}

#[tokio::test]
async fn on_matching_keeps_only_the_on_labels() {
    let (e, _) = engine(three_apps());
    let per_env = vagg(VectorOp::Sum, counts(), by(&["env"]), None);
    let a = count_of("a");
    let got = vector(&e, bin(BinOp::Div, a, per_env, on(&["env"])), 10).await;
    assert_eq!(got, vec![(lbl(&[("env", "prod")]), 0.6)]);
}

#[tokio::test]
async fn ignoring_matching_drops_the_ignored_labels() {
    let (e, _) = engine(three_apps());
    let m = BinModifier {
        matching: Some(VectorMatching::Ignoring(vec!["app".into()])),
        ..Default::default()
    };
    let per_env = vagg(VectorOp::Sum, counts(), by(&["env"]), None);
    let got = vector(&e, bin(BinOp::Sub, count_of("c"), per_env, m), 10).await;
    assert_eq!(got, vec![(lbl(&[("env", "dev")]), 0.0)]);
}

#[tokio::test]
async fn group_left_keeps_many_side_labels_and_includes_extra() {
    let s = three_apps();
    s.add(
        &[("app", "info"), ("env", "prod"), ("team", "x")],
        &[(t(5), "i")],
    );
    let (e, _) = engine(s);
    let info = R::new(RangeOp::CountOverTime, log(app("info"), vec![]), 10).e();
    let info = vagg(VectorOp::Sum, info, by(&["env", "team"]), None);
    let many = R::new(
        RangeOp::CountOverTime,
        log(vec![m("app", MatchOp::Re, "a|b")], vec![]),
        10,
    )
    .e();
    let m = BinModifier {
        matching: Some(VectorMatching::On(vec!["env".into()])),
        group: Some(GroupSide::Left(vec!["team".into()])),
        return_bool: false,
    };
    let got = vector(&e, bin(BinOp::Mul, many, info, m), 10).await;
    assert_eq!(
        got,
        vec![
            (lbl(&[("app", "a"), ("env", "prod"), ("team", "x")]), 3.0),
            (lbl(&[("app", "b"), ("env", "prod"), ("team", "x")]), 2.0)
        ]
    );
}

#[tokio::test]
async fn group_right_takes_labels_from_the_right() {
    let (e, _) = engine(three_apps());
    let per_env = vagg(VectorOp::Sum, counts(), by(&["env"]), None);
    let m = BinModifier {
        matching: Some(VectorMatching::On(vec!["env".into()])),
        group: Some(GroupSide::Right(vec![])),
        return_bool: false,
    };
    let got = vector(&e, bin(BinOp::Sub, per_env, counts(), m), 10).await;
    assert_eq!(
        got,
        vec![
            (lbl(&[("app", "a"), ("env", "prod")]), 2.0),
            (lbl(&[("app", "b"), ("env", "prod")]), 3.0),
            (lbl(&[("app", "c"), ("env", "dev")]), 0.0)
        ]
    );
}

#[tokio::test]
async fn many_to_one_without_group_modifier_is_an_error() {
    let (e, _) = engine(three_apps());
    let per_env = vagg(VectorOp::Sum, counts(), by(&["env"]), None);
    let err = run_err(
        &e,
        Expr::Metric(bin(BinOp::Add, counts(), per_env, on(&["env"]))),
        &instant_q(10),
    )
    .await;
    assert_eq!(
        err,
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
}

#[tokio::test]
async fn duplicate_series_on_the_one_side_is_an_error() {
    let (e, _) = engine(three_apps());
    let m = BinModifier {
        matching: Some(VectorMatching::On(vec!["env".into()])),
        group: Some(GroupSide::Left(vec![])),
        return_bool: false,
    };
    let err = run_err(
        &e,
        Expr::Metric(bin(BinOp::Add, counts(), counts(), m)),
        &instant_q(10),
    )
    .await;
    assert!(
        err.starts_with("found duplicate series on the right hand-side"),
        "{err}"
    );
}

#[tokio::test]
async fn and_or_unless() {
    let (e, _) = engine(three_apps());
    let prod = R::new(
        RangeOp::CountOverTime,
        log(vec![eq("env", "prod")], vec![]),
        10,
    )
    .e();
    let got = vector(
        &e,
        bin(BinOp::And, counts(), prod.clone(), Default::default()),
        10,
    )
    .await;
    assert_eq!(got.len(), 2);
    let got = vector(
        &e,
        bin(BinOp::Unless, counts(), prod.clone(), Default::default()),
        10,
    )
    .await;
    assert_eq!(got, vec![(lbl(&[("app", "c"), ("env", "dev")]), 1.0)]);
    let got = vector(
        &e,
        bin(BinOp::Or, count_of("c"), prod, Default::default()),
        10,
    )
    .await;
    assert_eq!(got.len(), 3);
    let got = vector(
        &e,
        bin(BinOp::And, counts(), count_of("zzz"), Default::default()),
        10,
    )
    .await;
    assert!(got.is_empty());
}

#[tokio::test]
async fn and_with_on_matches_by_the_listed_labels() {
    let (e, _) = engine(three_apps());
    let dev = vagg(VectorOp::Sum, count_of("c"), by(&["env"]), None);
    let got = vector(&e, bin(BinOp::And, counts(), dev, on(&["env"])), 10).await;
    assert_eq!(got, vec![(lbl(&[("app", "c"), ("env", "dev")]), 1.0)]);
}

#[tokio::test]
async fn division_by_zero_is_nan() {
    let (e, _) = engine(three_apps());
    let got = vector(
        &e,
        bin(
            BinOp::Div,
            count_of("a"),
            MetricExpr::Literal(0.0),
            Default::default(),
        ),
        10,
    )
    .await;
    assert!(got[0].1.is_nan());
}

#[tokio::test]
async fn binary_ops_over_a_range_query_match_per_step() {
    let s = MemStore::default();
    s.add(&[("app", "a")], &[(t(1), "x"), (t(6), "x"), (t(7), "x")]);
    let (e, _) = engine(s);
    let c = || R::new(RangeOp::CountOverTime, log(app("a"), vec![]), 5).e();
    let got = pts(&matrix(
        &e,
        bin(BinOp::Add, c(), c(), Default::default()),
        &range_q(5, 10, 5),
    )
    .await);
    assert_eq!(got[0].1, vec![(5, 2.0), (10, 4.0)]);
}

// ---------------------------------------------------------------------------------
// Literals, vector(), label_replace, result shapes
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn literal_is_a_scalar_for_instant_and_a_matrix_for_range() {
    let (e, _) = engine(three_apps());
    let got = run(&e, Expr::Metric(MetricExpr::Literal(2.5)), &instant_q(10)).await;
    assert_eq!(got, QueryData::Scalar(ms(10), 2.5));
    let got = pts(&matrix(&e, MetricExpr::Literal(2.5), &range_q(0, 4, 2)).await);
    assert_eq!(
        got,
        vec![(Labels::new(), vec![(0, 2.5), (2, 2.5), (4, 2.5)])]
    );
    let folded = bin(
        BinOp::Add,
        MetricExpr::Literal(1.0),
        MetricExpr::Literal(2.0),
        Default::default(),
    );
    assert_eq!(
        run(&e, Expr::Metric(folded), &instant_q(10)).await,
        QueryData::Scalar(ms(10), 3.0)
    );
}

#[tokio::test]
async fn vector_function_gives_one_unlabelled_series() {
    let (e, _) = engine(three_apps());
    assert_eq!(
        vector(&e, MetricExpr::Vector(3.0), 10).await,
        vec![(Labels::new(), 3.0)]
    );
    let got = pts(&matrix(&e, MetricExpr::Vector(1.0), &range_q(0, 2, 1)).await);
    assert_eq!(
        got,
        vec![(Labels::new(), vec![(0, 1.0), (1, 1.0), (2, 1.0)])]
    );
}

#[tokio::test]
async fn label_replace_sets_and_keeps_labels() {
    let (e, _) = engine(three_apps());
    let q = MetricExpr::LabelReplace {
        expr: Box::new(counts()),
        dst: "short".into(),
        replacement: "x-$1".into(),
        src: "env".into(),
        regex: "pr(.*)".into(),
    };
    let got = vector(&e, q, 10).await;
    assert_eq!(
        got[0].0,
        lbl(&[("app", "a"), ("env", "prod"), ("short", "x-od")])
    );
    assert_eq!(got[2].0, lbl(&[("app", "c"), ("env", "dev")]));
}

#[tokio::test]
async fn matrix_series_are_sorted_by_labels() {
    let s = MemStore::default();
    for name in ["b", "c", "a"] {
        s.add(&[("app", name)], &[(t(1), "x")]);
    }
    let (e, _) = engine(s);
    let got = matrix(&e, counts(), &range_q(1, 2, 1)).await;
    let names: Vec<&str> = got.iter().map(|s| s.labels.get("app").unwrap()).collect();
    assert_eq!(names, vec!["a", "b", "c"]);
}

#[tokio::test]
async fn too_many_series_is_an_error() {
    let s = MemStore::default();
    for i in 0..501 {
        s.add(&[("app", &format!("a{i}"))], &[(t(1), "x")]);
    }
    let (e, _) = engine(s);
    let err = run_err(&e, Expr::Metric(counts()), &instant_q(5)).await;
    assert_eq!(err, "maximum of series (500) reached for a single query");
    // aggregated, it is fine
    let got = vector(&e, vagg(VectorOp::Sum, counts(), None, None), 5).await;
    assert_eq!(got[0].1, 501.0);
}

#[tokio::test]
async fn zero_step_range_metric_query_is_refused() {
    let (e, _) = engine(three_apps());
    let err = run_err(&e, Expr::Metric(counts()), &range_q(0, 10, 0)).await;
    assert!(
        err.starts_with("zero or negative query resolution step"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// Bucket counts
// ---------------------------------------------------------------------------------

fn bucket_store() -> MemStore {
    let s = MemStore {
        buckets: true,
        ..Default::default()
    };
    for (name, n) in [("a", 40), ("b", 25)] {
        let lines: Vec<(i64, String)> = (0..n)
            .map(|i| (t(i * 7 % 60 + 1), format!("{name} msg {i}")))
            .collect();
        s.add(
            &[("app", name), ("env", "prod")],
            &lines
                .iter()
                .map(|(t, l)| (*t, l.as_str()))
                .collect::<Vec<_>>(),
        );
    }
    s
}

fn plain_store() -> MemStore {
    let b = bucket_store();
    MemStore {
        streams: Mutex::new(std::mem::take(&mut *b.streams.lock().unwrap())),
        ..Default::default()
    }
}

#[tokio::test]
async fn bucket_counts_match_scanning() {
    let (fast, fast_store) = engine(bucket_store());
    let (slow, _) = engine(plain_store());
    for op in [
        RangeOp::CountOverTime,
        RangeOp::Rate,
        RangeOp::BytesOverTime,
        RangeOp::BytesRate,
    ] {
        for (range, step) in [(10, 5), (4, 6), (15, 10)] {
            let mk = || {
                vagg(
                    VectorOp::Sum,
                    R::new(op, log(any_app(), vec![contains("msg 1")]), range).e(),
                    by(&["app"]),
                    None,
                )
            };
            let p = range_q(0, 60, step);
            let a = matrix(&fast, mk(), &p).await;
            let b = matrix(&slow, mk(), &p).await;
            assert_eq!(a, b, "{op:?} range {range} step {step}");
            assert!(!a.is_empty());
        }
    }
    assert!(fast_store.bucket_calls.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn bucket_counts_are_not_used_when_metadata_could_split_series() {
    let (e, store) = engine(bucket_store());
    let q = R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 10).e();
    let got = matrix(&e, q, &range_q(0, 60, 10)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(store.bucket_calls.load(Ordering::Relaxed), 0);
    let q = R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 10)
        .group(by(&["app"]))
        .e();
    let _ = matrix(&e, q, &range_q(0, 60, 10)).await;
    assert_eq!(store.bucket_calls.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn bucket_counts_for_an_instant_query() {
    let (fast, _) = engine(bucket_store());
    let (slow, _) = engine(plain_store());
    let mk = || {
        R::new(RangeOp::CountOverTime, log(any_app(), vec![]), 30)
            .offset(5)
            .group(by(&["env"]))
            .e()
    };
    let a = vector(&fast, mk(), 50).await;
    let b = vector(&slow, mk(), 50).await;
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
}
