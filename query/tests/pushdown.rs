//! Metric pushdown against the engine: every query runs with pushdown on and off on
//! each ClickHouse server (`ARGUS_TEST_CLICKHOUSE_URL`, `ARGUS_TEST_CLICKHOUSE_MODERN_URL`;
//! skipped when unset) and must give the same result (or the same error). Clean data
//! must be answered by the store without a scan; rows the SQL cannot evaluate exactly
//! (malformed JSON, escapes, non-decimal numbers, metadata …) must be left to the
//! engine (sent back, or the whole query scanned).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argus_query::Result;
use argus_query::engine::{Engine, Limits, QueryData, QueryKind, QueryParams};
use argus_query::logql::ast::LineFilter;
use argus_query::store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use argus_query::store::pushdown::{AggAnswer, AggRequest};
use argus_query::store::{
    BucketCount, BucketRequest, Direction, Entry, IndexStats, LogStore, ScanRequest, SourcePos,
    StreamInfo, WriteRow,
};
use argus_schemas::Labels;
use async_trait::async_trait;

/// Delegates to a store and counts scans and the rows a pushed-down aggregation left
/// to the engine.
struct Counting {
    inner: Arc<dyn LogStore>,
    scans: AtomicU64,
    rest: AtomicU64,
}

#[async_trait]
impl LogStore for Counting {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn write(&self, rows: &[WriteRow]) -> Result<()> {
        self.inner.write(rows).await
    }
    async fn resume_offsets(&self, topic: &str) -> Result<HashMap<i32, i64>> {
        self.inner.resume_offsets(topic).await
    }
    async fn streams(&self, tenant: &str, start: i64, end: i64) -> Result<Vec<StreamInfo>> {
        self.inner.streams(tenant, start, end).await
    }
    async fn scan(&self, req: &ScanRequest<'_>) -> Result<Vec<(u64, Entry)>> {
        self.scans.fetch_add(1, Ordering::Relaxed);
        self.inner.scan(req).await
    }
    async fn bucket_counts(
        &self,
        tenant: &str,
        streams: &[u64],
        filters: &[LineFilter],
        origin: i64,
        width: i64,
        buckets: i64,
    ) -> Result<Option<Vec<BucketCount>>> {
        self.inner
            .bucket_counts(tenant, streams, filters, origin, width, buckets)
            .await
    }
    #[allow(clippy::too_many_arguments)]
    async fn bucket_counts_with_metadata(
        &self,
        tenant: &str,
        streams: &[u64],
        filters: &[LineFilter],
        origin: i64,
        width: i64,
        buckets: i64,
        with_bytes: bool,
    ) -> Result<Option<(Vec<BucketCount>, Vec<u64>)>> {
        self.inner
            .bucket_counts_with_metadata(
                tenant, streams, filters, origin, width, buckets, with_bytes,
            )
            .await
    }
    async fn bucket_counts_grouped(
        &self,
        req: &BucketRequest<'_>,
    ) -> Result<Option<(Vec<BucketCount>, Vec<u64>)>> {
        self.inner.bucket_counts_grouped(req).await
    }
    async fn aggregate(&self, req: &AggRequest<'_>) -> Result<Option<AggAnswer>> {
        let a = self.inner.aggregate(req).await?;
        if let Some(a) = &a {
            self.rest.fetch_add(a.rest.len() as u64, Ordering::Relaxed);
        }
        Ok(a)
    }
    async fn index_stats(
        &self,
        tenant: &str,
        streams: &[u64],
        start: i64,
        end: i64,
    ) -> Result<IndexStats> {
        self.inner.index_stats(tenant, streams, start, end).await
    }
    async fn apply_retention(
        &self,
        per_tenant: &HashMap<String, std::time::Duration>,
        default: Option<std::time::Duration>,
        now_ns: i64,
    ) -> Result<()> {
        self.inner
            .apply_retention(per_tenant, default, now_ns)
            .await
    }
}

const T0: i64 = 1_700_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

fn rows() -> Vec<WriteRow> {
    let mut out = Vec::new();
    let paths = ["/api/users", "/api/orders", "/login", "/static/app.js"];
    let levels = ["info", "warn", "error"];
    let mut push = |labels: Labels, ts: i64, line: String, metadata: Labels| {
        let offset = out.len() as i64;
        out.push(WriteRow {
            tenant: "t".into(),
            labels,
            ts,
            line,
            metadata,
            source: SourcePos {
                topic: "argus.logs".into(),
                partition: 0,
                offset,
            },
        });
    };
    let ts_of = |i: i64| T0 + i * 6 * SEC + (i % 7);
    for i in 0..600i64 {
        let ts = ts_of(i);
        let pod = format!("api-{}", i % 3);
        let api = Labels::from_pairs([("app", "api"), ("pod", pod.as_str())]);
        let status = [200, 201, 404, 500, 503][(i % 5) as usize];
        let line = format!(
            r#"{{"level":"{}","status":{},"path":"{}","duration":{}.{},"user":"u{}","ok":{}}}"#,
            levels[(i % 3) as usize],
            status,
            paths[(i % 4) as usize],
            i % 50,
            i % 10,
            i % 11,
            i % 2 == 0
        );
        push(api, ts, line, Labels::new());
        let nginx = Labels::from_pairs([("job", "nginx"), ("host", "web-1")]);
        let method = ["GET", "POST", "DELETE"][(i % 3) as usize];
        let line = format!(
            r#"10.0.0.{} - - [14/Nov/2023:22:13:20 +0000] "{} {} HTTP/1.1" {} {} "-" "curl/8""#,
            i % 9,
            method,
            paths[(i % 4) as usize],
            status,
            100 + i
        );
        push(nginx, ts + 1, line, Labels::new());
    }
    // lines the pattern matches partly
    let odd = Labels::from_pairs([("job", "nginx"), ("host", "web-2")]);
    for (i, l) in [
        "garbage",
        r#"1.2.3.4 - - [x] "GET /only"#,
        r#"1.2.3.4 - - [x] "GET  HTTP" 500 "#,
        r#"1.2.3.4 - - [x] "GET /a b" 404 12 extra" - - [y]"#,
        "",
        // `] "` before ` - - [`: the server cannot tell the matcher's `] "` (unsafe)
        r#"x] "y 1.2.3.4 - - [x] "GET /z HTTP/1.1" 200 5"#,
        r#"1.2.3.4 - - [x] "GET"#,
        r#"1.2.3.4 - - [x] "GET /p"#,
        r#"1.2.3.4 - -  [x] "GET /q HTTP/1.1" 200 1"#,
        "1.2.3.4 - - [x] \"GET /nl\nx HTTP/1.1\" 200 1",
        r#"1.2.3.4 - - [x] - - [y] "PUT /w HTTP/1.1" 201 7"#,
        // a `] "` inside the brackets: the matcher's (first after ` - - [`) is that one
        r#"1.2.3.4 - - [a] "b] "GET /r HTTP/1.1" 200 1"#,
        // `] "` without ` - - [`: no path
        r#"x] "GET /s HTTP/1.1" 200 1"#,
        // `GET ` leading, ` HTTP/` missing or twice
        r#"GET /t?u=1 HTTP/1.0 HTTP/2"#,
        r#"GET /v"#,
    ]
    .iter()
    .enumerate()
    {
        push(
            odd.clone(),
            T0 + i as i64 * 120 * SEC,
            l.to_string(),
            Labels::new(),
        );
    }
    // rows the SQL cannot evaluate exactly; the engine's answer must be kept
    let dirty = Labels::from_pairs([("app", "dirty")]);
    let dirty_lines = [
        r#"{"status":500,"path":"/a"}"#,
        r#"{"status":"abc","path":"/a"}"#,
        r#"not json at all"#,
        r#"{"status":5e2,"path":"/b"}"#,
        r#"{"status":1.50,"path":"/b"}"#,
        r#"{"status":501,"path":"/c\"x"}"#,
        r#"{"nested":{"status":1},"status":502}"#,
        r#"{ "status" : 503 }"#,
        r#"{"status":"","path":"/d"}"#,
        r#"{"status":null,"path":"/e"}"#,
        r#"{"status":504,"status":200}"#,
        r#"{"status":null,"status":505}"#,
        r#"{"":{"status":506},"path":"/f"}"#,
        r#"{" status":507,"path":"/g"}"#,
        r#"{"a":{"status":508},"path":"/h"}"#,
        r#"{"st\u0061tus":509,"path":"/i"}"#,
        r#"{"status":510,"path":"/j"} trailing"#,
        r#"{"status":"51\u0031","path":"/k"}"#,
        r#"{"path":"/l","msg":"no status here"}"#,
        // flat lines (read directly through their stored shape)
        r#"{"xstatus":1,"status":511,"path":"/n"}"#,
        r#"{"msg":"status","status":512,"path":"/o"}"#,
        r#"{"status":"513","path":"/p"}"#,
        r#"{"status":true,"path":"/q"}"#,
        r#"{"status":-1.5e3,"path":"/r"}"#,
        r#"{"path":"status:","x_status":514}"#,
        "{}",
    ];
    for (i, l) in dirty_lines.iter().enumerate() {
        push(
            dirty.clone(),
            T0 + i as i64 * 60 * SEC,
            l.to_string(),
            Labels::new(),
        );
    }
    // logfmt worker lines: clean ones, then lines the SQL must leave to the engine
    let msgs = ["upstream timeout", "cache miss", "done"];
    for i in 0..300i64 {
        let pod = format!("worker-{}", i % 2);
        let w = Labels::from_pairs([("app", "worker"), ("pod", pod.as_str())]);
        let unit = ["ms", "s", "us", "m"][(i % 4) as usize];
        let amount = match unit {
            "ms" => i * 17 % 4000,
            "s" => i % 5,
            "us" => i * 9973 % 5_000_000,
            _ => i % 2,
        };
        let sep = if i % 10 == 3 { "\t" } else { " " };
        let dur = if i % 9 == 4 {
            format!("duration=\"{amount}{unit}\"")
        } else {
            format!("duration={amount}{unit}")
        };
        let line = format!(
            r#"level={} msg="{}"{sep}{dur} size={} queue=q{}"#,
            levels[(i % 3) as usize],
            msgs[(i % 3) as usize],
            i * 7 % 1000,
            i % 5
        );
        push(w, ts_of(2 * i), line, Labels::new());
    }
    let wd = Labels::from_pairs([("app", "wdirty")]);
    let wdirty_lines = [
        r#"level=error msg="say \"duration=9s\"" duration=1ms"#,
        r#"level=info msg="no duration here at all""#,
        r#"duration=1ms duration=5s"#,
        r#"msg="duration=9s" x=1"#,
        r#"a="x duration=5s""#,
        r#"a="x" duration=3s b="y""#,
        r#"duration= x=1"#,
        r#"duration x=1"#,
        r#"duration="5s"#,
        r#"duration=5s=x"#,
        r#"duration=1.5s"#,
        r#"duration=2500000us level=warn"#,
        r#"duration=0"#,
        "\u{a0}duration=5s",
        r#"duration=5s"x"#,
        r#"{"duration":"7s"}"#,
        "level=warn\tduration=4s",
        "msg=\"\u{fffd}\" duration=6s",
        // simple lines (read directly through their stored shape)
        "xduration=9s duration=1s",
        r#"msg="a duration" duration=8s"#,
        r#"duration="" level=info"#,
        r#"level=info duration="5s""#,
        "duration=7m level=error",
        "level=warn",
    ];
    for (i, l) in wdirty_lines.iter().enumerate() {
        push(
            wd.clone(),
            T0 + i as i64 * 60 * SEC,
            l.to_string(),
            Labels::new(),
        );
    }
    // Not parsed at write (the first token is not `key=`), no conversion error: on
    // the current engine the SQL proofs convert the durations (or leave a row to the
    // engine), with values at the filters' edges.
    let wp = Labels::from_pairs([("app", "wproof")]);
    for (i, l) in [
        "- duration=2500ms",
        "- duration=+3s",
        "- duration=1h30m",
        "- duration=0",
        "- duration=007ms",
        "- duration=2s",
        "- duration=2000ms",
        "- duration=-2s",
        "- duration=999999h",
        "- duration=1999999999ns",
        "1 level=x duration=3s",
    ]
    .iter()
    .enumerate()
    {
        push(
            wp.clone(),
            T0 + i as i64 * 60 * SEC,
            l.to_string(),
            Labels::new(),
        );
    }
    // Durations the engine cannot convert (its `__error__` makes the answer the
    // scan's): the SQL must leave each to the engine, not read it. One per stream, so
    // that no other row's error hides a wrong reading.
    for (app, bad) in [
        ("wproof_unit", "- duration=5"),
        ("wproof_big", "- duration=9999999h"),
    ] {
        let s = Labels::from_pairs([("app", app)]);
        push(s.clone(), T0 + 60 * SEC, bad.to_string(), Labels::new());
        push(
            s,
            T0 + 120 * SEC,
            "- duration=3s".to_string(),
            Labels::new(),
        );
    }
    let wbad = Labels::from_pairs([("app", "wbad")]);
    push(
        wbad.clone(),
        T0 + 10 * SEC,
        "duration=3s".into(),
        Labels::new(),
    );
    push(wbad, T0 + 20 * SEC, "duration=abc".into(), Labels::new());
    let meta = Labels::from_pairs([("app", "meta")]);
    push(
        meta.clone(),
        T0 + 5 * SEC,
        r#"{"status":500,"path":"/m"}"#.into(),
        Labels::from_pairs([("trace", "abc")]),
    );
    push(
        meta,
        T0 + 6 * SEC,
        r#"{"status":404,"path":"/m"}"#.into(),
        Labels::new(),
    );
    out
}

const PAT: &str = r#"<ip> - - [<_>] \"<method> <path> <_>\" <status> <size> <_>"#;

/// `(query, clean)`: clean queries must be pushed down on both servers (rows parsed at
/// write are read from their fields on 18.16 too; the rest go to the engine there).
fn queries() -> Vec<(String, bool)> {
    let mut q: Vec<(String, bool)> = [
        r#"sum(count_over_time({app="api"} | json | status >= 500 [10m]))"#,
        r#"sum by (path) (count_over_time({app="api"} | json [10m]))"#,
        r#"sum by (level, path) (rate({app="api"} |= "GET" or "users" | json | level="error" or status=404 [5m]))"#,
        r#"sum by (level, pod) (sum_over_time({app="api"} | json | unwrap duration [10m]))"#,
        r#"max_over_time({app="api"} | json | path=~"/api/[a-z]+" | unwrap duration [10m]) by (path)"#,
        r#"min_over_time({app="api"} | json | __error__="" | unwrap duration [10m]) by (level)"#,
        r#"sum by (ok, user) (bytes_over_time({app="api"} | json | user!="u3" [30m]))"#,
        r#"sum by (status) (count_over_time({app="api"} | json | path="/login" | duration > 20.5 [1h]))"#,
        // streams lacking `pod`, without metadata (or with it only on filtered-out rows)
        r#"sum by (pod) (count_over_time({app=~"api|dirty"} [10m]))"#,
        r#"sum by (pod) (rate({app=~"api|meta"} |= "404" [5m]))"#,
        r#"sum by (pod) (bytes_over_time({app=~"api|dirty"} [10m]))"#,
    ]
    .iter()
    .map(|s| (s.to_string(), true))
    .collect();
    for s in [
        format!(
            r#"topk(2, sum by (path) (count_over_time({{job="nginx"}} | pattern "{PAT}" [1h])))"#
        ),
        format!(
            r#"sum by (method) (bytes_over_time({{job="nginx"}} | pattern "{PAT}" | status >= 400 [10m]))"#
        ),
        format!(
            r#"sum by (status, host) (rate({{job="nginx"}} | pattern "{PAT}" | path=~"/api/(users|orders)" [5m]))"#
        ),
        format!(
            r#"sum by (ip) (sum_over_time({{job="nginx"}} | pattern "{PAT}" | unwrap size [15m]))"#
        ),
        // every capture of the lines the pattern matches partly
        format!(
            r#"sum by (ip, method, path, status) (count_over_time({{job="nginx", host="web-2"}} | pattern "{PAT}" [1h]))"#
        ),
        // a capture between single characters, then a long literal
        r#"sum by (path) (count_over_time({job="nginx"} | pattern `<_> "<method> <path> HTTP/<v>` [1h]))"#.into(),
        // a leading literal
        r#"sum by (path, v) (count_over_time({job="nginx"} | pattern `GET <path> HTTP/<v>` [1h]))"#.into(),
    ] {
        q.push((s, true));
    }
    // logfmt
    for s in [
        r#"sum by (pod) (count_over_time({app="worker"} | logfmt | duration > 2s [10m]))"#,
        r#"sum by (level) (rate({app="worker"} | logfmt | duration <= 500ms or queue="q1" [5m]))"#,
        r#"sum by (queue, msg) (count_over_time({app="worker"} |= "level" | logfmt | queue=~"q[0-3]" [10m]))"#,
        r#"sum by (level) (sum_over_time({app="worker"} | logfmt | level!="info" | unwrap size [10m]))"#,
        r#"max_over_time({app="worker"} | logfmt | unwrap size [10m]) by (pod)"#,
        r#"sum by (pod) (bytes_over_time({app="worker"} | logfmt | duration >= 1m [30m]))"#,
    ] {
        q.push((s.to_string(), true));
    }
    for s in [
        r#"sum(count_over_time({app="wdirty"} | logfmt | duration > 2s [1h]))"#,
        r#"sum by (duration) (count_over_time({app="wdirty"} | logfmt [1h]))"#,
        r#"sum by (level) (count_over_time({app="wdirty"} | logfmt | duration >= 0s [1h]))"#,
        r#"sum(count_over_time({app="wbad"} | logfmt | duration > 2s [1h]))"#,
        r#"sum(count_over_time({app="wbad"} | logfmt | duration > 2s | __error__="" [1h]))"#,
    ] {
        q.push((s.to_string(), false));
    }
    for s in [
        r#"sum(count_over_time({app="wproof"} | logfmt | duration > 2s [1h]))"#,
        r#"sum(count_over_time({app="wproof"} | logfmt | duration <= 2s [1h]))"#,
        r#"sum by (duration) (count_over_time({app="wproof"} | logfmt | duration >= 0s [1h]))"#,
    ] {
        q.push((s.to_string(), true));
    }
    for app in ["wproof_unit", "wproof_big"] {
        q.push((
            format!(r#"sum(count_over_time({{app="{app}"}} | logfmt | duration > 2s [1h]))"#),
            false,
        ));
    }
    for s in [
        r#"sum(count_over_time({app="dirty"} | json | status >= 500 [1h]))"#,
        r#"sum by (path) (count_over_time({app="dirty"} | json | status != "x" [1h]))"#,
        r#"sum by (status) (count_over_time({app="dirty"} | json | path=~"/[a-z]" [1h]))"#,
        r#"sum by (status) (count_over_time({app="dirty"} | json | __error__="" [1h]))"#,
        r#"sum by (path) (count_over_time({app="dirty"} | json | path != "/zz" [1h]))"#,
        r#"sum by (status) (count_over_time({app="meta"} | json [1h]))"#,
        r#"sum by (pod, trace) (count_over_time({app=~"api|meta"} [2h]))"#,
        r#"sum by (status) (count_over_time({app=~"api|dirty"} | json | status > 100 [1h]))"#,
    ] {
        q.push((s.to_string(), false));
    }
    q
}

fn same(a: &QueryData, b: &QueryData) -> bool {
    let close = |x: f64, y: f64| x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs());
    match (a, b) {
        (QueryData::Matrix(x), QueryData::Matrix(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(s, t)| {
                    s.labels == t.labels
                        && s.points.len() == t.points.len()
                        && s.points
                            .iter()
                            .zip(&t.points)
                            .all(|(p, q)| p.0 == q.0 && close(p.1, q.1))
                })
        }
        (QueryData::Vector(x), QueryData::Vector(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(s, t)| s.labels == t.labels && s.ts == t.ts && close(s.value, t.value))
        }
        _ => false,
    }
}

async fn run(url: &str, name: &str) {
    let db = format!("argus_pushdown_{name}_{}", std::process::id());
    let ch = ClickHouseStore::connect(ClickHouseConfig::new(url, db))
        .await
        .expect("connect");
    ch.drop_database().await.expect("drop");
    ch.ensure_schema().await.expect("schema");
    ch.write(&rows()).await.expect("write");
    let counting = Arc::new(Counting {
        inner: Arc::new(ch),
        scans: AtomicU64::new(0),
        rest: AtomicU64::new(0),
    });
    let on = Engine::new(counting.clone(), Limits::default());
    let off = Engine::new(counting.clone(), Limits::default()).with_pushdown(false);
    let mut pushed = 0;
    for (q, clean) in queries() {
        for kind in [QueryKind::Range, QueryKind::Instant] {
            let p = QueryParams {
                tenant: "t".into(),
                query: q.clone(),
                kind,
                start: if kind == QueryKind::Range {
                    T0
                } else {
                    T0 + 3600 * SEC
                },
                end: T0 + 3600 * SEC,
                step: 300 * SEC,
                interval: 0,
                limit: 100,
                direction: Direction::Forward,
            };
            let before = counting.scans.load(Ordering::Relaxed);
            let rest_before = counting.rest.load(Ordering::Relaxed);
            let a = on.query(&p).await;
            let scanned = counting.scans.load(Ordering::Relaxed) > before;
            let in_engine = counting.rest.load(Ordering::Relaxed) > rest_before;
            let b = off.query(&p).await;
            match (&a, &b) {
                (Ok(x), Ok(y)) => assert!(
                    same(&x.data, &y.data),
                    "[{name}] {q} ({kind:?}) differs:\npushdown: {:?}\nscan:     {:?}",
                    x.data,
                    y.data
                ),
                (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "[{name}] {q}"),
                _ => panic!("[{name}] {q} ({kind:?}): pushdown {a:?} vs scan {b:?}"),
            }
            if clean {
                assert!(!scanned, "[{name}] {q} ({kind:?}) was not pushed down");
                assert!(
                    matches!(&a, Ok(r) if match &r.data {
                        QueryData::Matrix(m) => !m.is_empty(),
                        QueryData::Vector(v) => !v.is_empty(),
                        _ => false,
                    }),
                    "[{name}] {q} ({kind:?}) gave no data"
                );
                pushed += 1;
            } else {
                assert!(
                    scanned || in_engine,
                    "[{name}] {q} ({kind:?}) should have left rows to the engine"
                );
            }
        }
    }
    eprintln!("pushdown [{name}]: {pushed} pushed-down runs equal to the engine's");
}

fn url(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

#[tokio::test]
async fn pushdown_matches_engine_clickhouse_18_16() {
    if let Some(u) = url("ARGUS_TEST_CLICKHOUSE_URL") {
        run(&u, "old").await;
    }
}

#[tokio::test]
async fn pushdown_matches_engine_clickhouse_modern() {
    if let Some(u) = url("ARGUS_TEST_CLICKHOUSE_MODERN_URL") {
        run(&u, "modern").await;
    }
}
