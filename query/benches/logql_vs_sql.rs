//! LogQL through Argus against hand-written ClickHouse SQL on the same server and
//! tables, in the same run.
//!
//! Generates `ARGUS_BENCH_LINES` (default 10,000,000) deterministic lines over 24 h
//! and 100 streams (nginx combined access logs, JSON application logs, logfmt worker
//! logs), loads them through `ClickHouseStore::write` into database `argus_bench` of
//! `ARGUS_BENCH_CLICKHOUSE_URL` (default `http://127.0.0.1:18125`; reused when it
//! already holds the same number of lines, `--reload` forces a reload), then runs each
//! query warm `ARGUS_BENCH_REPS` (5) times both ways, checks that the answers agree and
//! prints a markdown table: medians, minimums, the ratio of the medians and the median
//! of the run-by-run ratios (each Argus run against the SQL run after it). Run:
//! `cargo bench -p argus-query --bench logql_vs_sql` (`ARGUS_BENCH_ONLY=json,pattern`
//! runs the queries whose names contain one of those words).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use argus_query::api::response_json;
use argus_query::engine::{Engine, Limits, QueryData, QueryKind, QueryParams};
use argus_query::store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use argus_query::store::{Direction, LogStore, SourcePos, WriteRow};
use argus_schemas::Labels;

const TENANT: &str = "bench";
const SEC: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SEC;
/// 2023-11-14T00:00:00Z: the 24 h fall into one day partition.
const T0: i64 = 1_699_920_000 * SEC;
const END: i64 = T0 + 24 * HOUR;

/// A small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Skewed index in `0..n` (small indexes are frequent).
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        self.below(a + 1)
    }
}

const PATHS: [&str; 24] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/cart",
    "/",
    "/login",
    "/api/v1/search",
    "/static/app.js",
    "/static/app.css",
    "/api/v1/payments",
    "/health",
    "/api/v1/users/me",
    "/api/v1/products",
    "/logout",
    "/api/v2/orders",
    "/favicon.ico",
    "/api/v1/reviews",
    "/admin",
    "/api/v1/inventory",
    "/metrics",
    "/api/v1/shipping",
    "/robots.txt",
    "/api/v1/coupons",
    "/api/v2/users",
    "/sitemap.xml",
];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const STATUSES: [u32; 10] = [200, 200, 200, 200, 201, 304, 400, 404, 500, 503];
const APPS: [&str; 4] = ["api", "auth", "billing", "search"];
const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];
const MSGS: [&str; 6] = [
    "request finished",
    "cache miss",
    "retrying upstream call",
    "upstream timeout",
    "connection reset by peer",
    "job done",
];

/// 100 streams: 20 nginx pods, 4 apps × 10 pods of JSON logs, 10 worker pods × 4
/// levels of logfmt logs.
fn streams() -> Vec<(Labels, u8)> {
    let mut s = Vec::new();
    for p in 0..20 {
        s.push((
            Labels::from_pairs([
                ("env", "prod"),
                ("job", "nginx"),
                ("pod", format!("web-{p}").as_str()),
            ]),
            0,
        ));
    }
    for app in APPS {
        for p in 0..10 {
            s.push((
                Labels::from_pairs([
                    ("env", "prod"),
                    ("app", app),
                    ("pod", format!("{app}-{p}").as_str()),
                ]),
                1,
            ));
        }
    }
    for p in 0..10 {
        for level in LEVELS {
            s.push((
                Labels::from_pairs([
                    ("env", "prod"),
                    ("app", "worker"),
                    ("level", level),
                    ("pod", format!("worker-{p}").as_str()),
                ]),
                2,
            ));
        }
    }
    s
}

fn line(kind: u8, rng: &mut Rng, ts: i64, level: Option<&str>) -> String {
    match kind {
        0 => {
            let path = PATHS[rng.skewed(PATHS.len() as u64) as usize];
            let method = METHODS[rng.below(4) as usize];
            let status = STATUSES[rng.below(10) as usize];
            let secs = ts / SEC;
            format!(
                "10.{}.{}.{} - - [{:02}/Nov/2023:{:02}:{:02}:{:02} +0000] \"{method} {path} HTTP/1.1\" {status} {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
                rng.below(4),
                rng.below(256),
                rng.below(256),
                14,
                (secs / 3600) % 24,
                (secs / 60) % 60,
                secs % 60,
                200 + rng.below(50_000)
            )
        }
        1 => {
            let level = LEVELS[rng.skewed(4) as usize ^ 1];
            let status = STATUSES[rng.below(10) as usize];
            format!(
                r#"{{"level":"{level}","msg":"{}","status":{status},"path":"{}","duration_ms":{},"user":"user{}","trace_id":"{:016x}"}}"#,
                MSGS[rng.below(6) as usize],
                PATHS[rng.skewed(PATHS.len() as u64) as usize],
                rng.below(2000),
                rng.below(5000),
                rng.next()
            )
        }
        _ => format!(
            "level={} msg=\"{}\" duration={}ms job_id={} queue=q{}",
            level.unwrap_or("info"),
            MSGS[rng.below(6) as usize],
            rng.below(3000),
            rng.below(1_000_000),
            rng.below(8)
        ),
    }
}

async fn load(store: &ClickHouseStore, lines: u64) {
    let streams = streams();
    let mut rng = Rng(42);
    let batch = 500_000usize;
    let mut rows: Vec<WriteRow> = Vec::with_capacity(batch);
    let started = Instant::now();
    // kind weights: nginx 40 %, JSON 35 %, logfmt 25 %
    let by_kind: Vec<Vec<usize>> = (0..3u8)
        .map(|k| (0..streams.len()).filter(|&i| streams[i].1 == k).collect())
        .collect();
    for i in 0..lines {
        let ts = T0 + 1 + (i as i128 * (24 * HOUR - 2) as i128 / lines as i128) as i64;
        let r = rng.below(100);
        let kind = if r < 40 {
            0
        } else if r < 75 {
            1
        } else {
            2
        };
        let ks = &by_kind[kind];
        let si = ks[rng.below(ks.len() as u64) as usize];
        let (labels, _) = &streams[si];
        let text = line(kind as u8, &mut rng, ts, labels.get("level"));
        rows.push(WriteRow {
            tenant: TENANT.into(),
            labels: labels.clone(),
            ts,
            line: text,
            metadata: Labels::new(),
            source: SourcePos {
                topic: "bench".into(),
                partition: 0,
                offset: i as i64,
            },
        });
        if rows.len() == batch {
            store.write(&rows).await.expect("write");
            rows.clear();
            eprintln!("loaded {} lines ({:.0?})", i + 1, started.elapsed());
        }
    }
    if !rows.is_empty() {
        store.write(&rows).await.expect("write");
    }
    eprintln!("loaded {lines} lines in {:.1?}", started.elapsed());
}

/// An answer reduced to comparable numbers: label key → value (per step for matrices).
type Answer = BTreeMap<String, f64>;

fn from_argus(d: &QueryData) -> Answer {
    let mut a = Answer::new();
    match d {
        QueryData::Vector(v) => {
            for s in v {
                a.insert(s.labels.to_string(), s.value);
            }
        }
        QueryData::Matrix(m) => {
            for s in m {
                for (t, v) in &s.points {
                    a.insert(format!("{} @{t}", s.labels), *v);
                }
            }
        }
        QueryData::Streams(st) => {
            for s in st {
                for e in &s.entries {
                    a.insert(format!("{} {}", e.0, e.1), 1.0);
                }
            }
        }
        QueryData::Scalar(_, v) => {
            a.insert(String::new(), *v);
        }
    }
    a
}

struct Bench {
    name: &'static str,
    logql: String,
    kind: QueryKind,
    step: i64,
    limit: u32,
    sql: String,
    /// TSV of the SQL answer → the same shape as [`from_argus`].
    convert: fn(&str) -> Answer,
}

fn tsv_rows(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(unescape_tsv).collect())
        .collect()
}

fn unescape_tsv(f: &str) -> String {
    let mut out = String::with_capacity(f.len());
    let mut it = f.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some('\'') => out.push('\''),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn single(s: &str) -> Answer {
    let v: f64 = s.trim().parse().unwrap_or(f64::NAN);
    let mut a = Answer::new();
    if v != 0.0 {
        a.insert("{}".into(), v);
    }
    a
}

fn by_label(name: &'static str) -> impl Fn(&str) -> Answer {
    move |s: &str| {
        let mut a = Answer::new();
        for r in tsv_rows(s) {
            let key = if r[0].is_empty() {
                "{}".to_string()
            } else {
                format!("{{{name}=\"{}\"}}", r[0])
            };
            a.insert(key, r[1].parse().unwrap_or(f64::NAN));
        }
        a
    }
}

fn level_steps(s: &str) -> Answer {
    let mut a = Answer::new();
    for r in tsv_rows(s) {
        let key = if r[0].is_empty() {
            "{}".to_string()
        } else {
            format!("{{level=\"{}\"}}", r[0])
        };
        let k: i64 = r[1].parse().unwrap_or(0);
        let t = (T0 + k * 300 * SEC) / 1_000_000;
        a.insert(format!("{key} @{t}"), r[2].parse().unwrap_or(f64::NAN));
    }
    a
}

fn log_lines(s: &str) -> Answer {
    let mut a = Answer::new();
    for r in tsv_rows(s) {
        a.insert(format!("{} {}", r[0], r[1]), 1.0);
    }
    a
}

fn benches(modern: bool) -> Vec<Bench> {
    let sel = |cond: &str| {
        format!(
            "fingerprint IN (SELECT fingerprint FROM series WHERE tenant = '{TENANT}' AND {cond})"
        )
    };
    let nginx = sel("visitParamExtractString(labels, 'job') = 'nginx'");
    let api = sel("visitParamExtractString(labels, 'app') = 'api'");
    let range = format!("tenant = '{TENANT}' AND ts > {T0} AND ts <= {END}");
    let json_status = if modern {
        "JSONExtractUInt(line, 'status')"
    } else {
        "visitParamExtractUInt(line, 'status')"
    };
    let json_duration = if modern {
        "JSONExtractUInt(line, 'duration_ms')"
    } else {
        "visitParamExtractUInt(line, 'duration_ms')"
    };
    let json_level = if modern {
        "JSONExtractString(line, 'level')"
    } else {
        "visitParamExtractString(line, 'level')"
    };
    let pattern = r#"<_> - - [<_>] \"<method> <path> <_>\" <status> <_>"#;
    vec![
        Bench {
            name: "substring filter count",
            logql: r#"sum(count_over_time({job="nginx"} |= "POST /api/v1/orders" [24h]))"#.into(),
            kind: QueryKind::Instant,
            step: 0,
            limit: 0,
            sql: format!(
                "SELECT count() FROM entries WHERE {range} AND {nginx} AND position(line, 'POST /api/v1/orders') > 0"
            ),
            convert: single,
        },
        Bench {
            name: "regex filter count",
            logql: r#"sum(count_over_time({job="nginx"} |~ `HTTP/1\.1" 50[0-9] ` [24h]))"#.into(),
            kind: QueryKind::Instant,
            step: 0,
            limit: 0,
            sql: format!(
                "SELECT count() FROM entries WHERE {range} AND {nginx} AND match(line, 'HTTP/1\\\\.1\" 50[0-9] ')"
            ),
            convert: single,
        },
        Bench {
            name: "log query, substring, limit 100 backward",
            logql: r#"{app="api"} |= "upstream timeout""#.into(),
            kind: QueryKind::Range,
            step: 0,
            limit: 100,
            sql: format!(
                "SELECT ts, line FROM entries WHERE {range} AND {api} AND position(line, 'upstream timeout') > 0 ORDER BY ts DESC LIMIT 100"
            ),
            convert: log_lines,
        },
        Bench {
            name: "json parse + label filter",
            logql: r#"sum(count_over_time({app="api"} | json | status >= 500 [24h]))"#.into(),
            kind: QueryKind::Instant,
            step: 0,
            limit: 0,
            sql: format!(
                "SELECT count() FROM entries WHERE {range} AND {api} AND {json_status} >= 500"
            ),
            convert: single,
        },
        Bench {
            name: "json unwrap sum by level",
            logql: r#"sum by (level) (sum_over_time({app="api"} | json | unwrap duration_ms [24h]))"#.into(),
            kind: QueryKind::Instant,
            step: 0,
            limit: 0,
            sql: format!(
                "SELECT {json_level} AS level, sum({json_duration}) FROM entries WHERE {range} AND {api} GROUP BY level"
            ),
            convert: |s| by_label("level")(s),
        },
        Bench {
            name: "count_over_time by level (5m steps)",
            logql: r#"sum by (level) (count_over_time({env="prod"}[5m]))"#.into(),
            kind: QueryKind::Range,
            step: 300 * SEC,
            limit: 0,
            sql: format!(
                "SELECT level, k, sum(c) FROM (
                     SELECT fingerprint, intDiv(ts - {T0} - 1, {w}) + 1 AS k, count() AS c
                     FROM entries WHERE {range} AND {prod} GROUP BY fingerprint, k
                 ) AS e ANY LEFT JOIN (
                     SELECT fingerprint, any(visitParamExtractString(labels, 'level')) AS level
                     FROM series WHERE tenant = '{TENANT}' GROUP BY fingerprint
                 ) AS s USING fingerprint
                 GROUP BY level, k",
                prod = sel("visitParamExtractString(labels, 'env') = 'prod'"),
                w = 300 * SEC
            ),
            convert: level_steps,
        },
        Bench {
            name: "topk by path (pattern)",
            logql: format!(
                r#"topk(10, sum by (path) (count_over_time({{job="nginx"}} | pattern "{pattern}" [24h])))"#
            ),
            kind: QueryKind::Instant,
            step: 0,
            limit: 0,
            sql: format!(
                "SELECT extract(line, '\"[A-Z]+ ([^ ]*) ') AS path, count() AS c FROM entries
                 WHERE {range} AND {nginx} GROUP BY path ORDER BY c DESC LIMIT 10"
            ),
            convert: |s| by_label("path")(s),
        },
        Bench {
            name: "logfmt + duration filter (error streams)",
            logql: r#"sum(count_over_time({app="worker", level="error"} | logfmt | duration > 2s [24h]))"#.into(),
            kind: QueryKind::Instant,
            step: 0,
            limit: 0,
            sql: format!(
                "SELECT count() FROM entries WHERE {range} AND {} AND toUInt32OrZero(extract(line, ' duration=([0-9]+)ms')) > 2000",
                sel("visitParamExtractString(labels, 'app') = 'worker' AND visitParamExtractString(labels, 'level') = 'error'")
            ),
            convert: single,
        },
    ]
}

fn agree(a: &Answer, b: &Answer) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb && ((va - vb).abs() <= 1e-9 * va.abs().max(vb.abs()) || va == vb)
        })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("ARGUS_BENCH_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18125".into());
    let lines: u64 = std::env::var("ARGUS_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let reps: usize = std::env::var("ARGUS_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let reload = std::env::args().any(|a| a == "--reload");
    let mut cfg = ClickHouseConfig::new(url.clone(), "argus_bench");
    cfg.max_insert_rows = 500_000;
    let store = ClickHouseStore::connect(cfg).await.expect("connect");
    let modern = store.features().modern;
    // without validation: 18.16 has no RowBinaryWithNamesAndTypes
    let client = clickhouse::Client::default()
        .with_url(&url)
        .with_database("argus_bench")
        .with_validation(false);
    store.ensure_schema().await.expect("schema");
    let have: u64 = client
        .query("SELECT count() FROM entries")
        .fetch_one()
        .await
        .expect("count");
    if have != lines || reload {
        store.drop_database().await.expect("drop");
        store.ensure_schema().await.expect("schema");
        load(&store, lines).await;
        client
            .query("OPTIMIZE TABLE entries FINAL")
            .execute()
            .await
            .expect("optimize");
    } else {
        eprintln!("reusing {have} lines in argus_bench");
    }
    let store: Arc<dyn LogStore> = Arc::new(store);
    let engine = Engine::new(store, Limits::default());
    println!(
        "\n{} lines, server {url} ({}), {reps} warm runs each\n",
        lines,
        if modern { "current" } else { "18.16" }
    );
    println!(
        "| query | Argus median ms | Argus min ms | SQL median ms | SQL min ms | ratio | paired ratio | agree |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let only = std::env::var("ARGUS_BENCH_ONLY").unwrap_or_default();
    for b in benches(modern) {
        if !only.is_empty() && !only.split(',').any(|o| b.name.contains(o)) {
            continue;
        }
        let p = QueryParams {
            tenant: TENANT.into(),
            query: b.logql.clone(),
            kind: b.kind,
            start: if b.kind == QueryKind::Instant {
                END
            } else {
                T0
            },
            end: END,
            step: b.step,
            interval: 0,
            limit: b.limit,
            direction: Direction::Backward,
        };
        let run_argus = || async {
            let t = Instant::now();
            let r = engine.query(&p).await.expect("argus query");
            let body = serde_json::to_vec(&response_json(&r)).expect("json");
            (t.elapsed().as_secs_f64() * 1e3, r, body.len())
        };
        let run_sql = || async {
            let t = Instant::now();
            let bytes = client
                .query(&b.sql)
                .fetch_bytes("TSV")
                .expect("sql")
                .collect()
                .await
                .expect("sql");
            (
                t.elapsed().as_secs_f64() * 1e3,
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        };
        // warm-up
        let (_, r, _) = run_argus().await;
        let (_, text) = run_sql().await;
        let ok = agree(&from_argus(&r.data), &(b.convert)(&text));
        if !ok {
            eprintln!(
                "DISAGREE {}: argus {:?}\nsql {:?}",
                b.name,
                from_argus(&r.data).iter().take(5).collect::<Vec<_>>(),
                (b.convert)(&text).iter().take(5).collect::<Vec<_>>()
            );
        }
        let (mut ta, mut ts) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            ta.push(run_argus().await.0);
            ts.push(run_sql().await.0);
        }
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let (amin, smin) = (min(&ta), min(&ts));
        // each Argus run against the SQL run right after it: a slow spell of the
        // machine slows both, so the median of these ratios moves less between runs
        let mut paired: Vec<f64> = ta.iter().zip(&ts).map(|(a, s)| a / s).collect();
        let pr = median(&mut paired);
        let (am, sm) = (median(&mut ta), median(&mut ts));
        println!(
            "| {} | {am:.0} | {amin:.0} | {sm:.0} | {smin:.0} | {:.2} | {pr:.2} | {} |",
            b.name,
            am / sm,
            if ok { "yes" } else { "NO" }
        );
    }
}
