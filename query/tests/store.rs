//! The log store contract (`argus_query::store`), run against every implementation:
//! the embedded store (always), ClickHouse 18.16 (`ARGUS_TEST_CLICKHOUSE_URL`) and the
//! current engine (`ARGUS_TEST_CLICKHOUSE_MODERN_URL`). A ClickHouse backend whose
//! variable is unset is skipped with a message, unless `ARGUS_REQUIRE_SERVICES` is set
//! (then the test fails). Every test uses its own database.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use argus_query::logql::ast::{FilterValue, LineFilter, LineFilterOp};
use argus_query::store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use argus_query::store::embedded::EmbeddedStore;
use argus_query::store::plan::DAY_NS;
use argus_query::store::{
    Cursor, Direction, Entry, LogStore, ScanRequest, SourcePos, StreamInfo, WriteRow,
};
use argus_schemas::Labels;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Embedded,
    ClickHouse,
    Modern,
}

struct Store {
    store: Arc<dyn LogStore>,
    ch: Option<Arc<ClickHouseStore>>,
    _dir: Option<tempfile::TempDir>,
}

impl Store {
    /// Drops the test database (ClickHouse); the embedded store goes with its folder.
    async fn cleanup(self) {
        if let Some(ch) = &self.ch {
            ch.drop_database().await.unwrap();
        }
    }
}

fn env_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("ARGUS_REQUIRE_SERVICES").is_err(),
                "ARGUS_REQUIRE_SERVICES is set but {var} is not"
            );
            eprintln!("{var} not set: skipping this ClickHouse backend");
            None
        }
    }
}

fn unique_db(name: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("argus_test_{name}_{}_{n}", std::process::id())
}

async fn open(backend: Backend, name: &str) -> Option<Store> {
    let url = match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            let s = EmbeddedStore::open(dir.path().join("logs.sqlite3"))
                .await
                .unwrap();
            return Some(Store {
                store: Arc::new(s),
                ch: None,
                _dir: Some(dir),
            });
        }
        Backend::ClickHouse => env_url("ARGUS_TEST_CLICKHOUSE_URL")?,
        Backend::Modern => env_url("ARGUS_TEST_CLICKHOUSE_MODERN_URL")?,
    };
    let s = ClickHouseStore::connect(ClickHouseConfig::new(url, unique_db(name)))
        .await
        .unwrap();
    match backend {
        Backend::Modern => assert!(s.features().modern, "{:?}", s.features()),
        _ => assert!(!s.features().modern, "{:?}", s.features()),
    }
    s.ensure_schema().await.unwrap();
    // Twice: creating the schema is idempotent.
    s.ensure_schema().await.unwrap();
    let s = Arc::new(s);
    Some(Store {
        store: s.clone(),
        ch: Some(s),
        _dir: None,
    })
}

/// Runs a contract test on each backend.
macro_rules! contract {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn embedded() {
                let s = open(Backend::Embedded, stringify!($name)).await.unwrap();
                super::$name(s.store.clone()).await;
                s.cleanup().await;
            }
            #[tokio::test]
            async fn clickhouse_18() {
                if let Some(s) = open(Backend::ClickHouse, stringify!($name)).await {
                    super::$name(s.store.clone()).await;
                    s.cleanup().await;
                }
            }
            #[tokio::test]
            async fn clickhouse_modern() {
                if let Some(s) = open(Backend::Modern, stringify!($name)).await {
                    super::$name(s.store.clone()).await;
                    s.cleanup().await;
                }
            }
        }
    };
}

const T0: i64 = 1_700_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn row(tenant: &str, l: &Labels, ts: i64, line: &str, offset: i64) -> WriteRow {
    WriteRow {
        tenant: tenant.into(),
        labels: l.clone(),
        ts,
        line: line.into(),
        metadata: Labels::new(),
        source: SourcePos {
            topic: "argus.logs".into(),
            partition: 0,
            offset,
        },
    }
}

fn req<'a>(tenant: &'a str, streams: &'a [u64], start: i64, end: i64) -> ScanRequest<'a> {
    ScanRequest {
        tenant,
        streams,
        start,
        end,
        filters: &[],
        direction: Direction::Forward,
        after: None,
        limit: 10_000,
    }
}

fn fps(streams: &[StreamInfo]) -> Vec<u64> {
    streams.iter().map(|s| s.fingerprint).collect()
}

fn lines(v: &[(u64, Entry)]) -> Vec<String> {
    v.iter().map(|(_, e)| e.line.clone()).collect()
}

fn lit(op: LineFilterOp, values: &[&str]) -> LineFilter {
    LineFilter {
        op,
        values: values
            .iter()
            .map(|v| FilterValue::Literal(v.to_string()))
            .collect(),
    }
}

/// The engine's meaning of a line filter (Rust regex, unanchored).
fn keeps(f: &LineFilter, line: &str) -> bool {
    let hit = |v: &FilterValue| match v {
        FilterValue::Literal(s) => match f.op {
            LineFilterOp::Contains | LineFilterOp::NotContains => line.contains(s.as_str()),
            _ => regex::Regex::new(s).unwrap().is_match(line),
        },
        FilterValue::Ip(_) => unreachable!("not used here"),
    };
    match f.op {
        LineFilterOp::Contains | LineFilterOp::Regex => f.values.iter().any(hit),
        _ => !f.values.iter().any(hit),
    }
}

/// Three streams in tenant `a` (one with same-timestamp entries), one in tenant `b`.
async fn fixture(store: &Arc<dyn LogStore>) -> (Vec<Labels>, Vec<WriteRow>) {
    let ls = vec![
        labels(&[("app", "api"), ("env", "prod")]),
        labels(&[("app", "db")]),
        labels(&[("app", "web"), ("level", "info")]),
    ];
    let mut rows = Vec::new();
    let mut off = 0;
    for i in 0..10i64 {
        for (k, l) in ls.iter().enumerate() {
            off += 1;
            // Stream 1 has two entries per timestamp.
            let ts = if k == 1 {
                T0 + (i / 2) * SEC
            } else {
                T0 + i * SEC
            };
            let word = if i % 3 == 0 { "error" } else { "ok" };
            rows.push(row("a", l, ts, &format!("s{k} n{i:02} {word} ünï"), off));
        }
    }
    off += 1;
    rows.push(row("b", &ls[0], T0, "tenant b line", off));
    store.write(&rows).await.unwrap();
    (ls, rows)
}

async fn streams_and_order(store: Arc<dyn LogStore>) {
    let (ls, _) = fixture(&store).await;
    let streams = store.streams("a", T0, T0 + 100 * SEC).await.unwrap();
    let mut want: Vec<u64> = ls.iter().map(|l| l.fingerprint().0).collect();
    want.sort_unstable();
    assert_eq!(fps(&streams), want, "ascending fingerprints");
    for s in &streams {
        assert_eq!(s.fingerprint, s.labels.fingerprint().0);
        assert!(ls.contains(&s.labels));
    }
    // Tenant isolation.
    let b = store.streams("b", T0, T0 + 100 * SEC).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].labels, ls[0]);
    assert!(
        store
            .streams("c", T0, T0 + 100 * SEC)
            .await
            .unwrap()
            .is_empty()
    );
    // Only streams with entries in [start, end): stream 1 ends at T0+4s, the others at +9s.
    let late = store
        .streams("a", T0 + 5 * SEC, T0 + 100 * SEC)
        .await
        .unwrap();
    assert_eq!(late.len(), 2);
    assert!(!fps(&late).contains(&ls[1].fingerprint().0));
    // End is exclusive, start inclusive.
    assert!(store.streams("a", T0 - SEC, T0).await.unwrap().is_empty());
    assert_eq!(store.streams("a", T0, T0 + 1).await.unwrap().len(), 3);

    // Forward: by fingerprint, then (ts, seq) ascending.
    let all = store
        .scan(&req("a", &want, T0, T0 + 100 * SEC))
        .await
        .unwrap();
    assert_eq!(all.len(), 30);
    for w in all.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(a.0 < b.0 || (a.0 == b.0 && (a.1.ts, a.1.seq) < (b.1.ts, b.1.seq)));
    }
    // Same-timestamp entries keep ingest order.
    let s1: Vec<String> = all
        .iter()
        .filter(|(fp, _)| *fp == ls[1].fingerprint().0)
        .map(|(_, e)| e.line.clone())
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("s1 n{i:02} ")).collect();
    for (got, want) in s1.iter().zip(&expected) {
        assert!(got.starts_with(want), "{got} vs {want}");
    }
    // Backward: fingerprints ascending, (ts, seq) descending within a stream.
    let mut r = req("a", &want, T0, T0 + 100 * SEC);
    r.direction = Direction::Backward;
    let back = store.scan(&r).await.unwrap();
    assert_eq!(back.len(), 30);
    for w in back.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(a.0 < b.0 || (a.0 == b.0 && (a.1.ts, a.1.seq) > (b.1.ts, b.1.seq)));
    }
    // Time range of scan: [start, end).
    let part = store
        .scan(&req("a", &want, T0 + 2 * SEC, T0 + 4 * SEC))
        .await
        .unwrap();
    assert!(
        part.iter()
            .all(|(_, e)| e.ts >= T0 + 2 * SEC && e.ts < T0 + 4 * SEC)
    );
    assert_eq!(part.len(), 2 + 2 + 4);
    // Only the streams asked for.
    let one = [ls[2].fingerprint().0];
    let only = store
        .scan(&req("a", &one, T0, T0 + 100 * SEC))
        .await
        .unwrap();
    assert_eq!(only.len(), 10);
    assert!(only.iter().all(|(fp, _)| *fp == one[0]));
    // Tenant b sees only its line.
    let b_fp = [ls[0].fingerprint().0];
    assert_eq!(
        lines(&store.scan(&req("b", &b_fp, T0, T0 + SEC)).await.unwrap()),
        vec!["tenant b line"]
    );
}
contract!(streams_and_order);

async fn keyset_paging(store: Arc<dyn LogStore>) {
    let (ls, _) = fixture(&store).await;
    let mut want: Vec<u64> = ls.iter().map(|l| l.fingerprint().0).collect();
    want.sort_unstable();
    for dir in [Direction::Forward, Direction::Backward] {
        let mut r = req("a", &want, T0, T0 + 100 * SEC);
        r.direction = dir;
        let all = store.scan(&r).await.unwrap();
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let mut p = r.clone();
            p.limit = 4;
            p.after = after;
            let page = store.scan(&p).await.unwrap();
            assert!(page.len() <= 4);
            let Some((fp, last)) = page.last() else { break };
            after = Some(Cursor {
                fingerprint: *fp,
                ts: last.ts,
                seq: last.seq,
            });
            paged.extend(page);
        }
        assert_eq!(paged, all, "{dir:?}");
    }
}
contract!(keyset_paging);

async fn line_filters(store: Arc<dyn LogStore>) {
    let tricky = labels(&[("app", "tricky")]);
    let trick_lines = [
        "it's a ? question",
        r"back\slash and 'quotes'",
        "tab\there",
        "percent 100% _under_",
        "ERROR upper",
    ];
    let rows: Vec<WriteRow> = trick_lines
        .iter()
        .enumerate()
        .map(|(i, l)| row("a", &tricky, T0 + i as i64, l, 1000 + i as i64))
        .collect();
    store.write(&rows).await.unwrap();
    let (ls, _) = fixture(&store).await;
    let mut all_fps: Vec<u64> = ls.iter().map(|l| l.fingerprint().0).collect();
    all_fps.push(tricky.fingerprint().0);
    all_fps.sort_unstable();
    let everything = store
        .scan(&req("a", &all_fps, T0, T0 + 100 * SEC))
        .await
        .unwrap();
    assert_eq!(everything.len(), 35);

    let cases = vec![
        // (filters, must the store apply them exactly?)
        (vec![lit(LineFilterOp::Contains, &["error"])], true),
        (vec![lit(LineFilterOp::Contains, &["n01", "n02"])], true),
        (vec![lit(LineFilterOp::NotContains, &["error", "s0"])], true),
        (
            vec![
                lit(LineFilterOp::Contains, &["ok"]),
                lit(LineFilterOp::NotContains, &["s2"]),
            ],
            true,
        ),
        (vec![lit(LineFilterOp::Contains, &["ünï"])], true),
        (vec![lit(LineFilterOp::Contains, &["?"])], true),
        (vec![lit(LineFilterOp::Contains, &["'quotes'"])], true),
        (vec![lit(LineFilterOp::Contains, &[r"back\slash"])], true),
        (vec![lit(LineFilterOp::Contains, &["100%"])], true),
        (vec![lit(LineFilterOp::Contains, &["\there"])], true),
        (vec![lit(LineFilterOp::Contains, &[""])], true),
        (vec![lit(LineFilterOp::NotContains, &[""])], true),
        (vec![lit(LineFilterOp::Regex, &["n03|n04"])], true),
        (vec![lit(LineFilterOp::NotRegex, &[r"error|\?"])], true),
        (
            vec![lit(LineFilterOp::Regex, &["n0[1-3] (ok|error)$"])],
            false,
        ),
        (vec![lit(LineFilterOp::NotRegex, &["^s[01]"])], false),
        (vec![lit(LineFilterOp::Regex, &["(?i)error"])], false),
        (vec![lit(LineFilterOp::Regex, &["n0. err.r"])], false),
        (vec![lit(LineFilterOp::Regex, &[r"\d\d ok"])], false),
        (vec![lit(LineFilterOp::Pattern, &["<_> ok <_>"])], false),
    ];
    for (filters, exact) in cases {
        let mut r = req("a", &all_fps, T0, T0 + 100 * SEC);
        r.filters = &filters;
        let got = store.scan(&r).await.unwrap();
        let want: Vec<String> = everything
            .iter()
            .filter(|(_, e)| {
                filters
                    .iter()
                    .all(|f| f.op == LineFilterOp::Pattern || keeps(f, &e.line))
            })
            .map(|(_, e)| e.line.clone())
            .collect();
        // Whatever the store applied, it dropped no line the engine keeps, and kept
        // the documented order.
        let refiltered: Vec<String> = got
            .iter()
            .filter(|(_, e)| {
                filters
                    .iter()
                    .all(|f| f.op == LineFilterOp::Pattern || keeps(f, &e.line))
            })
            .map(|(_, e)| e.line.clone())
            .collect();
        assert_eq!(refiltered, want, "{filters:?}");
        if exact {
            assert_eq!(
                lines(&got),
                want,
                "{filters:?} must be applied by the store"
            );
        }
    }
}
contract!(line_filters);

async fn bucket_counts(store: Arc<dyn LogStore>) {
    let (ls, rows) = fixture(&store).await;
    let mut want_fps: Vec<u64> = ls.iter().map(|l| l.fingerprint().0).collect();
    want_fps.sort_unstable();
    // Buckets of 3s from T0 - 1s: bucket i holds (origin + (i-1)w, origin + iw].
    let origin = T0 - SEC;
    let width = 3 * SEC;
    let n = 3;
    let check = |filters: Vec<LineFilter>, got: Vec<argus_query::store::BucketCount>| {
        let mut want: HashMap<(u64, i64), (u64, u64)> = HashMap::new();
        for r in rows.iter().filter(|r| r.tenant == "a") {
            if r.ts <= origin || r.ts > origin + n * width {
                continue;
            }
            if !filters.iter().all(|f| keeps(f, &r.line)) {
                continue;
            }
            let b = (r.ts - origin + width - 1) / width;
            let e = want.entry((r.labels.fingerprint().0, b)).or_default();
            e.0 += 1;
            e.1 += r.line.len() as u64;
        }
        let got: HashMap<(u64, i64), (u64, u64)> = got
            .iter()
            .map(|c| ((c.fingerprint, c.bucket), (c.lines, c.bytes)))
            .collect();
        assert_eq!(got, want, "{filters:?}");
    };
    let got = store
        .bucket_counts("a", &want_fps, &[], origin, width, n)
        .await
        .unwrap()
        .expect("no filters: counted by the store");
    assert!(got.iter().all(|c| c.bucket >= 1 && c.bucket <= n));
    check(vec![], got);
    for filters in [
        vec![lit(LineFilterOp::Contains, &["error"])],
        vec![lit(LineFilterOp::NotContains, &["error", "n02"])],
        vec![lit(LineFilterOp::Regex, &["error|n01"])],
    ] {
        let got = store
            .bucket_counts("a", &want_fps, &filters, origin, width, n)
            .await
            .unwrap()
            .expect("substring filters are applied exactly");
        check(filters, got);
    }
    // A filter no store can apply exactly: the engine scans instead.
    let ip = vec![LineFilter {
        op: LineFilterOp::Contains,
        values: vec![FilterValue::Ip("10.0.0.0/8".into())],
    }];
    assert!(
        store
            .bucket_counts("a", &want_fps, &ip, origin, width, n)
            .await
            .unwrap()
            .is_none()
    );
    let pattern = vec![lit(LineFilterOp::Pattern, &["<_> ok"])];
    assert!(
        store
            .bucket_counts("a", &want_fps, &pattern, origin, width, n)
            .await
            .unwrap()
            .is_none()
    );
}
contract!(bucket_counts);

async fn index_stats(store: Arc<dyn LogStore>) {
    let (ls, rows) = fixture(&store).await;
    let all: Vec<u64> = ls.iter().map(|l| l.fingerprint().0).collect();
    let s = store
        .index_stats("a", &all, T0, T0 + 100 * SEC)
        .await
        .unwrap();
    assert_eq!(s.streams, 3);
    assert_eq!(s.entries, 30);
    let bytes: usize = rows
        .iter()
        .filter(|r| r.tenant == "a")
        .map(|r| r.line.len())
        .sum();
    assert_eq!(s.bytes, bytes as u64);
    assert!(s.chunks >= 3);
    let one = store
        .index_stats("a", &all[..1], T0, T0 + 2 * SEC)
        .await
        .unwrap();
    assert_eq!((one.streams, one.entries), (1, 2));
    let none = store
        .index_stats("a", &all, T0 + 1000 * SEC, T0 + 2000 * SEC)
        .await
        .unwrap();
    assert_eq!((none.streams, none.entries, none.bytes), (0, 0, 0));
}
contract!(index_stats);

async fn resume_offsets_and_metadata(store: Arc<dyn LogStore>) {
    assert!(store.resume_offsets("argus.logs").await.unwrap().is_empty());
    let l = labels(&[("job", "x")]);
    let mut rows = Vec::new();
    for (p, o) in [(0, 5), (0, 7), (1, 3), (2, 10), (2, 11)] {
        let mut r = row("a", &l, T0 + o, &format!("p{p} o{o}"), o);
        r.source.partition = p;
        rows.push(r);
    }
    rows[0].metadata = labels(&[("trace_id", "abc"), ("user", "ü")]);
    let mut other = row("a", &l, T0 + 100, "other topic", 99);
    other.source.topic = "argus.findings".into();
    rows.push(other);
    store.write(&rows).await.unwrap();
    let got = store.resume_offsets("argus.logs").await.unwrap();
    assert_eq!(got, HashMap::from([(0, 7), (1, 3), (2, 11)]));
    assert_eq!(
        store.resume_offsets("argus.findings").await.unwrap(),
        HashMap::from([(0, 99)])
    );
    // A later write moves them on.
    let mut more = row("a", &l, T0 + 200, "later", 12);
    more.source.partition = 2;
    store.write(&[more]).await.unwrap();
    assert_eq!(store.resume_offsets("argus.logs").await.unwrap()[&2], 12);
    // Structured metadata comes back per entry.
    let fp = [l.fingerprint().0];
    let got = store.scan(&req("a", &fp, T0, T0 + SEC)).await.unwrap();
    let first = got.iter().find(|(_, e)| e.line == "p0 o5").unwrap();
    assert_eq!(
        first.1.metadata,
        labels(&[("trace_id", "abc"), ("user", "ü")])
    );
    assert!(
        got.iter()
            .filter(|(_, e)| e.line != "p0 o5")
            .all(|(_, e)| e.metadata.is_empty())
    );
    // An empty write is fine.
    store.write(&[]).await.unwrap();
}
contract!(resume_offsets_and_metadata);

async fn days_and_retention(store: Arc<dyn LogStore>) {
    // Real time: on modern servers retention is also a TTL, which uses the clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    // Mid-day rows, ten days back, so no row sits at a cutoff.
    let base = now - 10 * DAY_NS;
    let l = labels(&[("app", "r")]);
    let mut rows = Vec::new();
    // One row per day for 10 days, in tenants a and b, in offset order; one write that
    // spans days (the ClickHouse store splits it by day).
    for d in 0..10i64 {
        for (i, t) in ["a", "b", "c"].iter().enumerate() {
            let off = d * 3 + i as i64;
            rows.push(row(
                t,
                &l,
                base + d * DAY_NS + DAY_NS / 2,
                &format!("{t} day {d}"),
                off,
            ));
        }
    }
    store.write(&rows).await.unwrap();
    assert_eq!(store.resume_offsets("argus.logs").await.unwrap()[&0], 29);
    let fp = [l.fingerprint().0];
    for t in ["a", "b", "c"] {
        let got = store.scan(&req(t, &fp, base, now)).await.unwrap();
        assert_eq!(got.len(), 10, "{t}");
    }
    // a keeps 3 days, c keeps everything (not listed and no default), b: 5 days default.
    let per = HashMap::from([("a".to_string(), Duration::from_secs(3 * 86_400))]);
    store.apply_retention(&per, None, now).await.unwrap();
    let days = |v: Vec<(u64, Entry)>| -> BTreeSet<i64> {
        v.iter().map(|(_, e)| (e.ts - base) / DAY_NS).collect()
    };
    let a = store.scan(&req("a", &fp, base, now)).await.unwrap();
    assert_eq!(days(a), (7..10).collect());
    assert_eq!(
        store.scan(&req("c", &fp, base, now)).await.unwrap().len(),
        10
    );
    store
        .apply_retention(&per, Some(Duration::from_secs(5 * 86_400)), now)
        .await
        .unwrap();
    assert_eq!(
        days(store.scan(&req("b", &fp, base, now)).await.unwrap()),
        (5..10).collect()
    );
    assert_eq!(
        days(store.scan(&req("a", &fp, base, now)).await.unwrap()),
        (7..10).collect()
    );
    // streams() follows: nothing of a is left before day 7.
    assert!(
        store
            .streams("a", base, base + 7 * DAY_NS)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.streams("a", base, now).await.unwrap().len(), 1);
    // Everything older than a minute: one partition drop per old day on ClickHouse.
    store
        .apply_retention(&HashMap::new(), Some(Duration::from_secs(60)), now)
        .await
        .unwrap();
    for t in ["a", "b", "c"] {
        assert!(
            store
                .scan(&req(t, &fp, base, now))
                .await
                .unwrap()
                .is_empty(),
            "{t}"
        );
    }
    // The store keeps working after retention.
    store
        .write(&[row("a", &l, now - SEC, "fresh", 30)])
        .await
        .unwrap();
    assert_eq!(
        lines(&store.scan(&req("a", &fp, base, now)).await.unwrap()),
        vec!["fresh"]
    );
}
contract!(days_and_retention);

async fn many_streams(store: Arc<dyn LogStore>) {
    // More streams than one query's fingerprint list holds.
    let mut rows = Vec::new();
    for i in 0..2500i64 {
        let l = labels(&[("i", &i.to_string())]);
        rows.push(row("a", &l, T0 + i, &format!("line {i}"), i));
    }
    store.write(&rows).await.unwrap();
    let streams = store.streams("a", T0, T0 + SEC).await.unwrap();
    assert_eq!(streams.len(), 2500);
    let all = fps(&streams);
    let mut r = req("a", &all, T0, T0 + SEC);
    r.limit = 3000;
    let got = store.scan(&r).await.unwrap();
    assert_eq!(got.len(), 2500);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    let s = store.index_stats("a", &all, T0, T0 + SEC).await.unwrap();
    assert_eq!((s.streams, s.entries), (2500, 2500));
    let b = store
        .bucket_counts("a", &all, &[], T0 - 1, SEC, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.iter().map(|c| c.lines).sum::<u64>(), 2500);
}
contract!(many_streams);

/// Counts over windows on whole minutes (which the current engine answers from its
/// per-minute projection) and over other windows agree with the timestamps, at the
/// edges of minutes too, and rows deleted by retention leave the counts.
async fn minute_windows(store: Arc<dyn LogStore>) {
    const MIN: i64 = 60 * SEC;
    let base = T0 / MIN * MIN;
    let l = labels(&[("app", "m")]);
    let fp = [l.fingerprint().0];
    let mut rows = Vec::new();
    let mut stamps = Vec::new();
    for k in 0..12i64 {
        for d in [-1, 0, 1, 30 * SEC] {
            let ts = base + k * MIN + d;
            for t in ["keep", "drop"] {
                rows.push(row(
                    t,
                    &l,
                    ts,
                    &format!("{t} line {k} {d}"),
                    rows.len() as i64,
                ));
            }
            stamps.push(ts);
        }
    }
    store.write(&rows).await.unwrap();
    let want = |origin: i64, width: i64, buckets: i64| -> Vec<(i64, u64)> {
        (1..=buckets)
            .map(|i| {
                let lo = origin + (i - 1) * width;
                let n = stamps
                    .iter()
                    .filter(|&&t| t > lo && t <= lo + width)
                    .count() as u64;
                (i, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    let got = |t: &'static str, origin: i64, width: i64, buckets: i64| {
        let store = store.clone();
        async move {
            let counts = store
                .bucket_counts(t, &fp, &[], origin, width, buckets)
                .await
                .unwrap()?;
            let mut v: Vec<(i64, u64)> = counts
                .iter()
                .filter(|c| c.lines > 0)
                .map(|c| (c.bucket, c.lines))
                .collect();
            v.sort();
            Some(v)
        }
    };
    for (origin, width, buckets) in [
        (base, MIN, 12),
        (base, 5 * MIN, 3),
        (base + MIN, 2 * MIN, 5),
        (base, 12 * MIN, 1),
        (base + 30 * SEC, 90 * SEC, 7),
    ] {
        if let Some(v) = got("keep", origin, width, buckets).await {
            assert_eq!(
                v,
                want(origin, width, buckets),
                "{origin} {width} {buckets}"
            );
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let per = HashMap::from([("drop".to_string(), Duration::from_secs(86_400))]);
    store.apply_retention(&per, None, now).await.unwrap();
    for (origin, width, buckets) in [(base, MIN, 12), (base, 12 * MIN, 1)] {
        if let Some(v) = got("drop", origin, width, buckets).await {
            assert!(v.is_empty(), "expired rows still counted: {v:?}");
        }
        if let Some(v) = got("keep", origin, width, buckets).await {
            assert_eq!(v, want(origin, width, buckets));
        }
    }
}
contract!(minute_windows);

/// A database made before the `shape` column, then given it by the previous version
/// (which wrote shape 1, "flat JSON", without fields): `ensure_schema` adds the field
/// columns, old rows read as not parsed (0 and 1 alike: no fields to read), new rows
/// get their shape and fields, and queries see all three.
async fn adds_shape_to_old_tables(url: String, name: &str) {
    let db = unique_db(name);
    let client = clickhouse::Client::default()
        .with_url(&url)
        .with_validation(false);
    client
        .query(&format!("CREATE DATABASE {db}"))
        .execute()
        .await
        .unwrap();
    client
        .query(&format!(
            "CREATE TABLE {db}.entries (tenant String, fingerprint UInt64, ts Int64, seq UInt64,
                 line String, metadata String, topic String, partition Int32, offset Int64)
             ENGINE = MergeTree() PARTITION BY intDiv(ts, toInt64({DAY_NS}))
             ORDER BY (tenant, fingerprint, ts, seq)"
        ))
        .execute()
        .await
        .unwrap();
    let app = labels(&[("app", "a")]);
    let fp = app.fingerprint().0;
    client
        .query(&format!(
            "INSERT INTO {db}.entries VALUES ('t', {fp}, {T0}, 0, '{{\"a\":1}}', '', 'argus.logs', 0, 0)"
        ))
        .execute()
        .await
        .unwrap();
    client
        .query(&format!(
            "ALTER TABLE {db}.entries ADD COLUMN shape UInt8 DEFAULT 0 AFTER metadata"
        ))
        .execute()
        .await
        .unwrap();
    client
        .query(&format!(
            "INSERT INTO {db}.entries VALUES ('t', {fp}, {}, 0, '{{\"a\":2}}', '', 1, 'argus.logs', 0, 1)",
            T0 + SEC
        ))
        .execute()
        .await
        .unwrap();
    let s = ClickHouseStore::connect(ClickHouseConfig::new(url, db.clone()))
        .await
        .unwrap();
    s.ensure_schema().await.unwrap();
    s.ensure_schema().await.unwrap();
    s.write(&[WriteRow {
        tenant: "t".into(),
        labels: app.clone(),
        ts: T0 + 2 * SEC,
        line: r#"{"a":4}"#.into(),
        metadata: Labels::new(),
        source: SourcePos {
            topic: "argus.logs".into(),
            partition: 0,
            offset: 2,
        },
    }])
    .await
    .unwrap();
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct R {
        line: String,
        shape: u8,
        field_keys: Vec<String>,
        field_nums: Vec<f64>,
    }
    let rows: Vec<R> = client
        .query(&format!(
            "SELECT line, shape, field_keys, field_nums FROM {db}.entries ORDER BY ts"
        ))
        .fetch_all()
        .await
        .unwrap();
    let got: Vec<(String, u8, Vec<String>, Vec<f64>)> = rows
        .into_iter()
        .map(|r| (r.line, r.shape, r.field_keys, r.field_nums))
        .collect();
    assert_eq!(
        got,
        [
            (r#"{"a":1}"#.to_string(), 0, vec![], vec![]),
            (r#"{"a":2}"#.to_string(), 1, vec![], vec![]),
            (
                r#"{"a":4}"#.to_string(),
                2,
                vec!["a".to_string()],
                vec![4.0]
            ),
        ]
    );
    let engine =
        argus_query::engine::Engine::new(Arc::new(s), argus_query::engine::Limits::default());
    let p = argus_query::engine::QueryParams {
        tenant: "t".into(),
        query: r#"sum(sum_over_time({app="a"} | json | unwrap a [1m]))"#.into(),
        kind: argus_query::engine::QueryKind::Instant,
        start: T0 + 30 * SEC,
        end: T0 + 30 * SEC,
        step: SEC,
        interval: 0,
        limit: 100,
        direction: Direction::Forward,
    };
    let r = engine.query(&p).await.unwrap();
    let v = argus_query::api::response_json(&r);
    assert_eq!(v["data"]["result"][0]["value"][1], "7", "{v}");
    client
        .query(&format!("DROP DATABASE {db}"))
        .execute()
        .await
        .unwrap();
}

#[tokio::test]
async fn shape_column_added_on_clickhouse_18() {
    if let Some(url) = env_url("ARGUS_TEST_CLICKHOUSE_URL") {
        adds_shape_to_old_tables(url, "shape_old").await;
    }
}

#[tokio::test]
async fn shape_column_added_on_clickhouse_modern() {
    if let Some(url) = env_url("ARGUS_TEST_CLICKHOUSE_MODERN_URL") {
        adds_shape_to_old_tables(url, "shape_modern").await;
    }
}
