//! Metric pushdown against the engine: every query runs with pushdown on and off on
//! each ClickHouse server (`ARGUS_TEST_CLICKHOUSE_URL`, `ARGUS_TEST_CLICKHOUSE_MODERN_URL`;
//! skipped when unset) and must give the same result (or the same error). Clean data
//! must be answered by the store without a scan; data the SQL cannot evaluate exactly
//! (malformed JSON, escapes, non-decimal numbers, metadata …) must fall back to a scan.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argus_query::Result;
use argus_query::engine::{Engine, Limits, QueryData, QueryKind, QueryParams};
use argus_query::logql::ast::LineFilter;
use argus_query::store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use argus_query::store::pushdown::{AggRequest, AggRow};
use argus_query::store::{
    BucketCount, Direction, Entry, IndexStats, LogStore, ScanRequest, SourcePos, StreamInfo,
    WriteRow,
};
use argus_schemas::Labels;
use async_trait::async_trait;

/// Delegates to a store and counts scans.
struct Counting {
    inner: Arc<dyn LogStore>,
    scans: AtomicU64,
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
    async fn aggregate(&self, req: &AggRequest<'_>) -> Result<Option<Vec<AggRow>>> {
        self.inner.aggregate(req).await
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
    for i in 0..600i64 {
        let ts = T0 + i * 6 * SEC + (i % 7);
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
    ];
    for (i, l) in dirty_lines.iter().enumerate() {
        push(
            dirty.clone(),
            T0 + i as i64 * 60 * SEC,
            l.to_string(),
            Labels::new(),
        );
    }
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

/// `(query, clean)`: clean queries must be pushed down (on 18.16 only those without
/// decimal numbers: it compares and sums integers only).
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
    ] {
        q.push((s, true));
    }
    for s in [
        r#"sum(count_over_time({app="dirty"} | json | status >= 500 [1h]))"#,
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

fn decimal(q: &str) -> bool {
    q.contains("duration")
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
            let a = on.query(&p).await;
            let scanned = counting.scans.load(Ordering::Relaxed) > before;
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
            let clean = clean && (name == "modern" || !decimal(&q));
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
            } else if !decimal(&q) {
                assert!(scanned, "[{name}] {q} ({kind:?}) should have fallen back");
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
