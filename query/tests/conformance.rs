//! The LogQL conformance suite: loads every YAML case file under `tests/conformance/`
//! (format in `tests/conformance/README.md`), writes each file's streams into a fresh
//! store, runs each case through `Engine::query` and compares the answer with Loki's
//! expected JSON. One test per store: the embedded SQLite store always runs; the two
//! ClickHouse stores run when their address is set (`ARGUS_TEST_CLICKHOUSE_URL`,
//! `ARGUS_TEST_CLICKHOUSE_MODERN_URL`) and fail when unset under `ARGUS_REQUIRE_SERVICES`.
//!
//! `CONFORMANCE_FILTER=substring` runs only the cases whose `file/name` contains it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argus_query::engine::{Engine, Limits, QueryKind, QueryParams};
use argus_query::store::{Direction, LogStore, SourcePos, WriteRow};
use argus_schemas::Labels;
use serde::Deserialize;
use serde_json::Value;

// ---------------------------------------------------------------------------------
// Case files
// ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    streams: Vec<StreamDef>,
    /// Keys merged into every case that does not set them (`kind`, `start`, `end`, …).
    #[serde(default)]
    defaults: serde_yaml_ng::Mapping,
    #[serde(deserialize_with = "raw_cases")]
    cases: Vec<serde_yaml_ng::Mapping>,
    #[serde(skip)]
    parsed: Vec<Case>,
}

fn raw_cases<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<serde_yaml_ng::Mapping>, D::Error> {
    Vec::<serde_yaml_ng::Mapping>::deserialize(d)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamDef {
    labels: BTreeMap<String, String>,
    /// `[ts, line]` or `[ts, line, {metadata}]`
    entries: Vec<Vec<serde_yaml_ng::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    query: String,
    kind: Kind,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    step: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    interval: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    skip: Option<String>,
    expect: Expect,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Instant,
    Range,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    result_type: Option<String>,
    #[serde(default)]
    result: Option<serde_json::Value>,
    /// Compare the result array positionally (otherwise as a set of series/streams).
    #[serde(default)]
    ordered: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_contains: Option<String>,
    #[serde(default)]
    status: Option<u16>,
}

struct Loaded {
    file: String,
    def: CaseFile,
    rows: Vec<(Labels, i64, String, Labels)>,
}

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn load_all() -> Vec<Loaded> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(case_dir())
        .expect("tests/conformance exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no case files in {}",
        case_dir().display()
    );
    paths
        .into_iter()
        .map(|p| {
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).expect("read case file");
            let mut def: CaseFile = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("{file}: invalid case file: {e}"));
            def.parsed = def
                .cases
                .iter()
                .enumerate()
                .map(|(i, raw)| {
                    let mut m = raw.clone();
                    for (k, v) in &def.defaults {
                        if !m.contains_key(k) {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                    serde_yaml_ng::from_value::<Case>(serde_yaml_ng::Value::Mapping(m))
                        .unwrap_or_else(|e| panic!("{file}: case #{}: {e}", i + 1))
                })
                .collect();
            let _ = &def.description;
            let rows = stream_rows(&file, &def.streams);
            let mut names = std::collections::HashSet::new();
            for c in &def.parsed {
                assert!(
                    names.insert(&c.name),
                    "{file}: duplicate case name {:?}",
                    c.name
                );
            }
            Loaded { file, def, rows }
        })
        .collect()
}

fn stream_rows(file: &str, streams: &[StreamDef]) -> Vec<(Labels, i64, String, Labels)> {
    let mut rows = Vec::new();
    for s in streams {
        let labels = Labels::from_pairs(s.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        for e in &s.entries {
            let bad = || -> ! {
                panic!("{file}: bad entry {e:?} (want [ts, line] or [ts, line, {{md}}])")
            };
            if !(2..=3).contains(&e.len()) {
                bad();
            }
            let ts = match &e[0] {
                serde_yaml_ng::Value::String(s) => {
                    parse_time(s).unwrap_or_else(|m| panic!("{file}: {m}"))
                }
                _ => bad(),
            };
            let line = match &e[1] {
                serde_yaml_ng::Value::String(s) => s.clone(),
                _ => bad(),
            };
            let md = match e.get(2) {
                None => Labels::new(),
                Some(v) => {
                    let m: BTreeMap<String, String> = serde_yaml_ng::from_value(v.clone())
                        .unwrap_or_else(|err| panic!("{file}: bad metadata {v:?}: {err}"));
                    Labels::from_pairs(m)
                }
            };
            rows.push((labels.clone(), ts, line, md));
        }
    }
    rows
}

// ---------------------------------------------------------------------------------
// Times and durations
// ---------------------------------------------------------------------------------

/// Unix ns from an integer string (ns) or RFC 3339 (`2024-01-01T00:00:10.5Z`, `+01:00`).
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ns) = s.parse::<i64>() {
        return Ok(ns);
    }
    let err = || format!("bad timestamp {s:?} (want Unix ns or RFC 3339)");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or_else(err)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[st..i];
        if digits.is_empty() || digits.len() > 9 {
            return Err(err());
        }
        frac_ns = digits.parse::<i64>().map_err(|_| err())? * 10i64.pow(9 - digits.len() as u32);
    }
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(&tz[..1], "+" | "-") && &tz[3..4] == ":" => {
            let oh: i64 = tz[1..3].parse().map_err(|_| err())?;
            let om: i64 = tz[4..6].parse().map_err(|_| err())?;
            let o = oh * 3600 + om * 60;
            if tz.starts_with('-') { -o } else { o }
        }
        _ => return Err(err()),
    };
    // days from civil (Howard Hinnant's algorithm)
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Ok(secs * 1_000_000_000 + frac_ns)
}

/// ns from `10s`, `1m30s`, `500ms` or a number of seconds.
fn parse_duration(v: &serde_yaml_ng::Value) -> Result<i64, String> {
    match v {
        serde_yaml_ng::Value::Number(n) => n
            .as_f64()
            .map(|f| (f * 1e9).round() as i64)
            .ok_or_else(|| format!("bad duration {n:?}")),
        serde_yaml_ng::Value::String(s) => {
            if let Ok(f) = s.parse::<f64>() {
                return Ok((f * 1e9).round() as i64);
            }
            let mut total = 0i64;
            let mut rest = s.as_str();
            if rest.is_empty() {
                return Err("empty duration".into());
            }
            while !rest.is_empty() {
                let n_end = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .ok_or("missing unit")?;
                let n: i64 = rest[..n_end]
                    .parse()
                    .map_err(|_| format!("bad duration {s:?}"))?;
                rest = &rest[n_end..];
                let u_end = rest
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let unit = match &rest[..u_end] {
                    "ns" => 1,
                    "us" | "µs" => 1_000,
                    "ms" => 1_000_000,
                    "s" => 1_000_000_000,
                    "m" => 60_000_000_000,
                    "h" => 3_600_000_000_000,
                    "d" => 86_400_000_000_000,
                    u => return Err(format!("bad unit {u:?} in duration {s:?}")),
                };
                total += n * unit;
                rest = &rest[u_end..];
            }
            Ok(total)
        }
        other => Err(format!("bad duration {other:?}")),
    }
}

fn params(tenant: &str, c: &Case) -> Result<QueryParams, String> {
    let direction = match c.direction.as_deref() {
        None | Some("backward") => Direction::Backward,
        Some("forward") => Direction::Forward,
        Some(d) => return Err(format!("bad direction {d:?}")),
    };
    let limit = c.limit.unwrap_or(100);
    let interval = match &c.interval {
        Some(v) => parse_duration(v)?,
        None => 0,
    };
    match c.kind {
        Kind::Instant => {
            let t = c
                .time
                .as_deref()
                .or(c.end.as_deref())
                .ok_or("an instant case needs `time`")?;
            let t = parse_time(t)?;
            Ok(QueryParams {
                tenant: tenant.into(),
                query: c.query.clone(),
                kind: QueryKind::Instant,
                start: t,
                end: t,
                step: 0,
                interval,
                limit,
                direction,
            })
        }
        Kind::Range => {
            let start = parse_time(c.start.as_deref().ok_or("a range case needs `start`")?)?;
            let end = parse_time(c.end.as_deref().ok_or("a range case needs `end`")?)?;
            let step = match &c.step {
                Some(v) => parse_duration(v)?,
                // Loki's default: max(1s, floor((end - start) / 250 s)).
                None => (((end - start) / 1_000_000_000) / 250).max(1) * 1_000_000_000,
            };
            Ok(QueryParams {
                tenant: tenant.into(),
                query: c.query.clone(),
                kind: QueryKind::Range,
                start,
                end,
                step,
                interval,
                limit,
                direction,
            })
        }
    }
}

// ---------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------

/// Numbers become f64 so `60` equals `60.0`; everything else is kept.
fn normalise(v: &Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(a.iter().map(normalise).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalise(v))).collect())
        }
        other => other.clone(),
    }
}

/// Checks the expected result has Loki's shape, so a typo in a case file (an unquoted
/// value, a number for a timestamp string) is reported as such.
fn check_shape(result_type: &str, result: &Value) -> Result<(), String> {
    let labels_ok = |v: Option<&Value>| {
        v.and_then(Value::as_object)
            .is_some_and(|o| o.values().all(Value::is_string))
    };
    let point_ok = |p: &Value| {
        p.as_array()
            .is_some_and(|a| a.len() == 2 && a[0].is_number() && a[1].is_string())
    };
    let arr = |v: &Value| {
        v.as_array()
            .cloned()
            .ok_or("result must be an array".to_string())
    };
    match result_type {
        "streams" => {
            for s in arr(result)? {
                let ok = labels_ok(s.get("stream"))
                    && s.get("values").and_then(Value::as_array).is_some_and(|vs| {
                        vs.iter().all(|e| {
                            e.as_array().is_some_and(|a| {
                                (2..=3).contains(&a.len())
                                    && a[0].as_str().is_some_and(|t| t.parse::<i64>().is_ok())
                                    && a[1].is_string()
                                    && (a.len() == 2 || labels_ok(a.get(2)))
                            })
                        })
                    });
                if !ok {
                    return Err(format!("malformed stream {s}"));
                }
            }
        }
        "matrix" => {
            for s in arr(result)? {
                let ok = labels_ok(s.get("metric"))
                    && s.get("values")
                        .and_then(Value::as_array)
                        .is_some_and(|vs| vs.iter().all(point_ok));
                if !ok {
                    return Err(format!("malformed series {s}"));
                }
            }
        }
        "vector" => {
            for s in arr(result)? {
                if !(labels_ok(s.get("metric")) && s.get("value").is_some_and(point_ok)) {
                    return Err(format!("malformed sample {s}"));
                }
            }
        }
        "scalar" => {
            if !point_ok(result) {
                return Err(format!("malformed scalar {result}"));
            }
        }
        t => return Err(format!("unknown result_type {t:?}")),
    }
    Ok(())
}

fn sort_key(v: &Value) -> String {
    let labels = v.get("stream").or_else(|| v.get("metric"));
    let mut s = labels.map(|l| l.to_string()).unwrap_or_default();
    s.push('\u{1}');
    s.push_str(&v.to_string());
    s
}

fn canonical(v: &Value, ordered: bool) -> Value {
    let v = normalise(v);
    match v {
        Value::Array(mut a) if !ordered => {
            a.sort_by_key(sort_key);
            Value::Array(a)
        }
        other => other,
    }
}

/// A line diff of two pretty-printed JSON documents (`-` expected, `+` actual).
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    if a.len() * b.len() > 4_000_000 {
        return format!("--- expected\n{expected}\n+++ actual\n{actual}");
    }
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out += &format!("    {}\n", a[i]);
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out += &format!("  + {}\n", b[j]);
            j += 1;
        } else {
            out += &format!("  - {}\n", a[i]);
            i += 1;
        }
    }
    out
}

async fn run_case(engine: &Engine, tenant: &str, c: &Case) -> Result<(), String> {
    let p = params(tenant, c).map_err(|e| format!("bad case: {e}"))?;
    let ex = &c.expect;
    let wants_error = ex.error.is_some() || ex.error_contains.is_some();
    if wants_error == ex.result_type.is_some() {
        return Err(
            "bad case: expect needs either result_type+result or error/error_contains".into(),
        );
    }
    let got = engine.query(&p).await;
    if wants_error {
        return match got {
            Ok(resp) => Err(format!(
                "expected an error, got {} {}",
                resp.data.result_type(),
                serde_json::to_string_pretty(&resp.data.result_json()).unwrap_or_default()
            )),
            Err(e) => {
                let text = e.to_string();
                let mut problems = Vec::new();
                if let Some(want) = &ex.error
                    && &text != want
                {
                    problems.push(format!(
                        "error text differs\n  expected: {want}\n  actual:   {text}"
                    ));
                }
                if let Some(want) = &ex.error_contains
                    && !text.contains(want.as_str())
                {
                    problems.push(format!("error text lacks {want:?}\n  actual: {text}"));
                }
                let want_status = ex.status.unwrap_or(400);
                if e.status() != want_status {
                    problems.push(format!(
                        "status {} (expected {want_status}) for: {text}",
                        e.status()
                    ));
                }
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("\n"))
                }
            }
        };
    }
    let want_type = ex.result_type.as_deref().unwrap_or_default();
    let want_result = ex.result.clone().unwrap_or(Value::Array(vec![]));
    check_shape(want_type, &want_result).map_err(|e| format!("bad case: {e}"))?;
    let resp = got.map_err(|e| format!("query failed (status {}): {e}", e.status()))?;
    let got_type = resp.data.result_type();
    let got_result = resp.data.result_json();
    let want = canonical(&want_result, ex.ordered);
    let actual = canonical(&got_result, ex.ordered);
    if got_type != want_type || want != actual {
        let we = serde_json::to_string_pretty(&want).unwrap_or_default();
        let ac = serde_json::to_string_pretty(&actual).unwrap_or_default();
        return Err(format!(
            "result_type: expected {want_type}, actual {got_type}\n{}",
            diff(&we, &ac)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Stores and the driver
// ---------------------------------------------------------------------------------

type OpenStore = Box<dyn Fn(&str) -> futures::future::BoxFuture<'static, Arc<dyn LogStore>>>;

async fn run_suite(store_name: &str, open: OpenStore) {
    let files = load_all();
    let filter = std::env::var("CONFORMANCE_FILTER").ok();
    let (mut run, mut passed, mut skipped) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    for f in &files {
        let selected: Vec<&Case> = f
            .def
            .parsed
            .iter()
            .filter(|c| {
                filter
                    .as_deref()
                    .is_none_or(|flt| format!("{}/{}", f.file, c.name).contains(flt))
            })
            .collect();
        if selected.is_empty() {
            continue;
        }
        let stem = f.file.trim_end_matches(".yaml").trim_end_matches(".yml");
        // A fresh store per file; the tenant also isolates runs sharing a server.
        let tenant = format!("conf-{stem}-{unique}");
        let store = open(stem).await;
        let rows: Vec<WriteRow> = f
            .rows
            .iter()
            .enumerate()
            .map(|(i, (labels, ts, line, md))| WriteRow {
                tenant: tenant.clone(),
                labels: labels.clone(),
                ts: *ts,
                line: line.clone(),
                metadata: md.clone(),
                source: SourcePos {
                    topic: "argus.logs".into(),
                    partition: 0,
                    offset: i as i64,
                },
            })
            .collect();
        if !rows.is_empty() {
            store
                .write(&rows)
                .await
                .unwrap_or_else(|e| panic!("{store_name}: writing {}: {e}", f.file));
        }
        let engine = Engine::new(store, Limits::default());
        for c in selected {
            if let Some(reason) = &c.skip {
                skipped += 1;
                eprintln!("SKIP [{store_name}] {}/{}: {reason}", f.file, c.name);
                continue;
            }
            run += 1;
            match run_case(&engine, &tenant, c).await {
                Ok(()) => passed += 1,
                Err(msg) => failures.push(format!(
                    "FAIL [{store_name}] {}/{}\n  query: {}\n{}\n",
                    f.file,
                    c.name,
                    c.query,
                    msg.lines()
                        .map(|l| format!("  {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )),
            }
        }
    }
    for fl in &failures {
        eprintln!("{fl}");
    }
    eprintln!(
        "conformance [{store_name}]: {run} cases run, {passed} passed, {} failed, {skipped} skipped",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {run} conformance cases failed on {store_name}",
        failures.len()
    );
    assert!(run > 0 || filter.is_some(), "no case ran");
}

fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var_os("ARGUS_REQUIRE_SERVICES").is_none(),
                "{var} is unset but ARGUS_REQUIRE_SERVICES is set"
            );
            eprintln!("skipping: {var} is unset");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_embedded() {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let open: OpenStore = Box::new(move |stem| {
        let path = dir.path().join(format!("{stem}.db"));
        Box::pin(async move { open_embedded(&path).await })
    });
    run_suite("embedded", open).await;
}

async fn open_embedded(path: &Path) -> Arc<dyn LogStore> {
    let store = argus_query::store::embedded::EmbeddedStore::open(path)
        .await
        .unwrap_or_else(|e| panic!("open embedded store at {}: {e}", path.display()));
    Arc::new(store)
}

/// A fresh database per case file (`argus_conf_<file>_<pid>`), dropped first.
async fn open_clickhouse(url: &str, stem: &str) -> Arc<dyn LogStore> {
    use argus_query::store::clickhouse::{ClickHouseConfig, ClickHouseStore};
    let db = format!(
        "argus_conf_{}_{}",
        stem.replace('-', "_"),
        std::process::id()
    );
    let store = ClickHouseStore::connect(ClickHouseConfig::new(url, db))
        .await
        .unwrap_or_else(|e| panic!("connect to ClickHouse at {url}: {e}"));
    store
        .drop_database()
        .await
        .unwrap_or_else(|e| panic!("drop database: {e}"));
    store
        .ensure_schema()
        .await
        .unwrap_or_else(|e| panic!("create schema: {e}"));
    Arc::new(store)
}

async fn clickhouse_suite(name: &'static str, var: &str) {
    let Some(url) = service_url(var) else { return };
    let open: OpenStore = Box::new(move |stem| {
        let url = url.clone();
        let stem = stem.to_string();
        Box::pin(async move { open_clickhouse(&url, &stem).await })
    });
    run_suite(name, open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_clickhouse_18_16() {
    clickhouse_suite("clickhouse-18.16", "ARGUS_TEST_CLICKHOUSE_URL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_clickhouse_modern() {
    clickhouse_suite("clickhouse-modern", "ARGUS_TEST_CLICKHOUSE_MODERN_URL").await;
}

#[test]
fn time_parsing() {
    assert_eq!(
        parse_time("2024-01-01T00:00:10Z"),
        Ok(1_704_067_210_000_000_000)
    );
    assert_eq!(
        parse_time("2024-01-01T01:00:10.5+01:00"),
        Ok(1_704_067_210_500_000_000)
    );
    assert_eq!(
        parse_time("1704067210000000001"),
        Ok(1_704_067_210_000_000_001)
    );
    assert!(parse_time("yesterday").is_err());
    let d = |s: &str| parse_duration(&serde_yaml_ng::Value::String(s.into()));
    assert_eq!(d("1m30s"), Ok(90_000_000_000));
    assert_eq!(d("500ms"), Ok(500_000_000));
}

#[test]
fn case_files_are_well_formed() {
    let files = load_all();
    let mut total = 0;
    for f in &files {
        for c in &f.def.parsed {
            params("t", c).unwrap_or_else(|e| panic!("{}/{}: {e}", f.file, c.name));
            let ex = &c.expect;
            if let (Some(t), Some(r)) = (&ex.result_type, &ex.result) {
                check_shape(t, r).unwrap_or_else(|e| panic!("{}/{}: {e}", f.file, c.name));
            }
            let has_err = ex.error.is_some() || ex.error_contains.is_some();
            assert!(
                has_err != ex.result_type.is_some(),
                "{}/{}: expect needs a result or an error",
                f.file,
                c.name
            );
            total += 1;
        }
    }
    eprintln!("{} files, {total} cases", files.len());
}
