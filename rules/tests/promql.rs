//! PromQL engine tests against exact expectations.
//!
//! The tables below (`*_SERIES`, `*_CASES`) hold input series in promtool's expanding
//! notation and expressions with the result Debian's `promtool test rules` (Prometheus
//! 2.42) printed for them. Every case is evaluated twice: with `Compat::Prometheus2`,
//! which must reproduce promtool bit for bit, and with the default Prometheus 3
//! semantics, which must agree except in the cases listed in `P3_OVERRIDES` (where 3.x
//! computes differently; each override is derived by hand in its comment). Evaluation
//! times sit between samples (not on range boundaries) unless a case is about a
//! boundary.

use argus_rules::promql::{Compat, Engine, EngineOptions, Value};
use argus_rules::window::{MetricWindow, WindowOptions};
use argus_schemas::{Labels, STALE_NAN_BITS};

#[derive(Debug)]
enum Expect {
    /// `{labels} value` in promtool's output form.
    Samples(&'static [&'static str]),
    Err(&'static str),
}

#[derive(Debug)]
struct Case {
    expr: &'static str,
    at_ms: i64,
    expect: Expect,
}

/// Parses `name{a="b", ...}` into labels.
fn parse_series_labels(s: &str) -> Labels {
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mut l = Labels::new();
    if !name.is_empty() {
        l.insert("__name__", name);
    }
    let inner = rest.trim_start_matches('{').trim_end_matches('}');
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(c) = chars.peek().copied() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        chars.next(); // '='
        assert_eq!(chars.next(), Some('"'), "label value of {key} in {s}");
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => val.push(chars.next().expect("escape")),
                '"' => break,
                c => val.push(c),
            }
        }
        l.insert(key.trim(), val);
    }
    l
}

fn parse_value(s: &str) -> f64 {
    match s {
        "stale" => f64::from_bits(STALE_NAN_BITS),
        "Inf" | "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s.parse().unwrap_or_else(|_| panic!("bad value {s:?}")),
    }
}

/// promtool's expanding notation: `a`, `_`, `_xN`, `axN`, `a+bxN`, `a-bxN`, `stale`.
fn expand(values: &str) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for item in values.split_whitespace() {
        if item == "_" {
            out.push(None);
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().expect("count");
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if let Some(xi) = item.rfind('x') {
            let (head, n) = (&item[..xi], &item[xi + 1..]);
            let n: usize = n.parse().expect("count");
            // Find the sign that starts the increment (not a leading sign or an exponent's).
            let bytes = head.as_bytes();
            let mut split = None;
            for i in (1..bytes.len()).rev() {
                if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                    split = Some(i);
                    break;
                }
            }
            let (mut v, inc) = match split {
                Some(i) => (parse_value(&head[..i]), parse_value(&head[i..])),
                None => (parse_value(head), 0.0),
            };
            for _ in 0..=n {
                out.push(Some(v));
                v += inc;
            }
            continue;
        }
        out.push(Some(parse_value(item)));
    }
    out
}

fn load(series: &[(&str, &str)], interval_ms: i64) -> MetricWindow {
    let w = MetricWindow::new(WindowOptions {
        retention_ms: 365 * 24 * 3600 * 1000,
        shards: 4,
    });
    for (labels, values) in series {
        let l = parse_series_labels(labels);
        let samples: Vec<(i64, f64)> = expand(values)
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as i64 * interval_ms, v)))
            .collect();
        let out = w.append_samples(&l, samples.clone());
        assert_eq!(out.appended, samples.len(), "{labels}");
    }
    w
}

fn same_float(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits() || (a == b && a != 0.0)
}

/// Runs the cases; returns failure descriptions.
fn run_cases(window: &MetricWindow, cases: &[Case], compat: Compat) -> Vec<String> {
    let engine = Engine::new(EngineOptions {
        compat,
        ..Default::default()
    });
    let mut failures = Vec::new();
    for case in cases {
        if compat == Compat::Prometheus3 && p3_override(case.expr, case.at_ms).is_some() {
            continue;
        }
        let got = engine.instant(window, case.expr, case.at_ms);
        if let Some(f) = compare(case.expr, case.at_ms, &case.expect, got) {
            failures.push(format!("[{compat:?}] {f}"));
        }
    }
    failures
}

fn compare(
    expr: &str,
    at_ms: i64,
    expect: &Expect,
    got: Result<Value, argus_rules::RulesError>,
) -> Option<String> {
    match (expect, got) {
        (Expect::Err(e), Err(g)) => {
            (g.to_string() != *e).then(|| format!("{expr} @{at_ms}: error {g:?}, want {e:?}"))
        }
        (Expect::Err(e), Ok(v)) => Some(format!("{expr} @{at_ms}: got {v:?}, want error {e:?}")),
        (Expect::Samples(_), Err(g)) => Some(format!("{expr} @{at_ms}: error {g}")),
        (Expect::Samples(want), Ok(v)) => {
            let mut got: Vec<(String, f64)> = match v {
                Value::Vector(v) => v
                    .into_iter()
                    .map(|s| (s.labels.to_string(), s.value))
                    .collect(),
                Value::Scalar(_, f) => vec![("{}".to_string(), f)],
                other => return Some(format!("{expr} @{at_ms}: unexpected {other:?}")),
            };
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let mut want: Vec<(String, f64)> = want
                .iter()
                .map(|s| {
                    let i = s.rfind(' ').expect("value");
                    (s[..i].to_string(), parse_value(&s[i + 1..]))
                })
                .collect();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            let ok = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|(g, w)| g.0 == w.0 && same_float(g.1, w.1));
            (!ok).then(|| format!("{expr} @{at_ms}:\n   got  {got:?}\n   want {want:?}"))
        }
    }
}

fn check(series: &[(&str, &str)], cases: &[Case]) {
    let w = load(series, 60_000);
    let mut failures = run_cases(&w, cases, Compat::Prometheus2);
    failures.extend(run_cases(&w, cases, Compat::Prometheus3));
    // Prometheus 3 expectations where 3.x differs from 2.42.
    let engine = Engine::new(EngineOptions::default());
    for case in cases {
        if let Some(expect) = p3_override(case.expr, case.at_ms) {
            let got = engine.instant(&w, case.expr, case.at_ms);
            if let Some(f) = compare(case.expr, case.at_ms, &expect, got) {
                failures.push(format!("[P3 override] {f}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Where Prometheus 3 gives a different answer than promtool 2.42 for a table case.
fn p3_override(expr: &str, at_ms: i64) -> Option<Expect> {
    Some(match (expr, at_ms) {
        // `@ 600` puts the range end on a sample: 3.x's (5m, 10m] drops the sample at 5m.
        // api1: 5 samples 60..100, sampled 240s, 60s to the start (< 1.1 * 60s, so
        // extrapolated), 0s to the end: 40 * (300 / 240) / 300.
        ("rate(http_requests_total[5m] @ 600)", 1_170_000) => Expect::Samples(&[
            r#"{instance="1", job="api"} 0.16666666666666666"#,
            r#"{instance="1", job="web"} 0.04666666666666667"#,
            r#"{instance="2", job="api"} 0.11666666666666667"#,
            r#"{instance="2", job="web"} 0.08333333333333333"#,
        ]),
        // Subquery steps must be > 11m - 5m in 3.x: 8m and 10m only (2.x adds 6m).
        ("avg_over_time(errors_total[5m:2m])", 660_000) => Expect::Samples(&[
            r#"{instance="1", job="api"} 9"#,
            r#"{instance="1", job="web"} 4.5"#,
        ]),
        // Steps 4m..12m (2.x adds 2m): host a 21 20 19 17 15, b 34 36 38 40 42, c constant.
        ("stddev_over_time(temp[10m:2m])", 720_000) => Expect::Samples(&[
            r#"{dc="x", host="a"} 2.1540659228538015"#,
            r#"{dc="x", host="b"} 2.8284271247461903"#,
            r#"{dc="y", host="c"} 0"#,
        ]),
        // The lookback is (1m, 6m] in 3.x: job b's sample at 1m is out.
        ("up", 360_000) => Expect::Samples(&[r#"{__name__="up", job="c"} 0"#]),
        // gone's last sample (2m) is exactly 5m before 7m: out in 3.x.
        ("gone", 420_000) => Expect::Samples(&[]),
        _ => return None,
    })
}

#[test]
fn counters() {
    check(COUNTERS_SERIES, COUNTERS_CASES);
}

#[test]
fn gauges() {
    check(GAUGES_SERIES, GAUGES_CASES);
}

#[test]
fn histograms() {
    check(HISTOGRAMS_SERIES, HISTOGRAMS_CASES);
}

#[test]
fn staleness() {
    check(STALENESS_SERIES, STALENESS_CASES);
}

#[test]
fn vector_matching() {
    check(MATCHING_SERIES, MATCHING_CASES);
}

#[test]
fn case_tables_are_large_enough() {
    let n = COUNTERS_CASES.len()
        + GAUGES_CASES.len()
        + HISTOGRAMS_CASES.len()
        + STALENESS_CASES.len()
        + MATCHING_CASES.len();
    assert!(n >= 120, "{n} cases");
}

// ---- Tables generated with promtool 2.42 (see the module docs). ----

const COUNTERS_SERIES: &[(&str, &str)] = &[
    (
        r#"http_requests_total{job="api",instance="1"}"#,
        r#"0+10x20"#,
    ),
    (
        r#"http_requests_total{job="api",instance="2"}"#,
        r#"0+7x20"#,
    ),
    (
        r#"http_requests_total{job="web",instance="1"}"#,
        r#"5+3x5 2+3x14"#,
    ),
    (
        r#"http_requests_total{job="web",instance="2"}"#,
        r#"100 _ 110 _ 130+5x16"#,
    ),
    (r#"errors_total{job="api",instance="1"}"#, r#"0+1x20"#),
    (
        r#"errors_total{job="web",instance="1"}"#,
        r#"0 0 1 1 2 2 3 3 4 4 5 5 6 6 7 7 8 8 9 9 10"#,
    ),
];
const COUNTERS_CASES: &[Case] = &[
    Case {
        expr: r#"rate(http_requests_total[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="1", job="web"} 5E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"rate(http_requests_total[3m])"#,
        at_ms: 440000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="1", job="web"} 4.1666666666666664E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"rate(http_requests_total[90s])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="1", job="web"} 5E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"increase(http_requests_total[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 5E+01"#,
            r#"{instance="1", job="web"} 1.5E+01"#,
            r#"{instance="2", job="api"} 3.5E+01"#,
            r#"{instance="2", job="web"} 2.5E+01"#,
        ]),
    },
    Case {
        expr: r#"increase(http_requests_total[10m])"#,
        at_ms: 945000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E+02"#,
            r#"{instance="1", job="web"} 3E+01"#,
            r#"{instance="2", job="api"} 7E+01"#,
            r#"{instance="2", job="web"} 5E+01"#,
        ]),
    },
    Case {
        expr: r#"increase(http_requests_total{job="web"}[4m])"#,
        at_ms: 450000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="web"} 1.0666666666666666E+01"#,
            r#"{instance="2", job="web"} 2E+01"#,
        ]),
    },
    Case {
        expr: r#"irate(http_requests_total[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="1", job="web"} 5E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"irate(http_requests_total{job="web"}[5m])"#,
        at_ms: 390000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="web"} 3.333333333333333E-02"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"idelta(http_requests_total[5m])"#,
        at_ms: 390000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E+01"#,
            r#"{instance="1", job="web"} -1.8E+01"#,
            r#"{instance="2", job="api"} 7E+00"#,
            r#"{instance="2", job="web"} 5E+00"#,
        ]),
    },
    Case {
        expr: r#"delta(http_requests_total[5m])"#,
        at_ms: 390000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 5E+01"#,
            r#"{instance="1", job="web"} -1.125E+01"#,
            r#"{instance="2", job="api"} 3.5E+01"#,
            r#"{instance="2", job="web"} 3.75E+01"#,
        ]),
    },
    Case {
        expr: r#"resets(http_requests_total[10m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 0E+00"#,
            r#"{instance="1", job="web"} 1E+00"#,
            r#"{instance="2", job="api"} 0E+00"#,
            r#"{instance="2", job="web"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"changes(errors_total[10m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 9E+00"#,
            r#"{instance="1", job="web"} 5E+00"#,
        ]),
    },
    Case {
        expr: r#"sum(rate(http_requests_total[5m]))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{} 4.1666666666666663E-01"#]),
    },
    Case {
        expr: r#"sum by (job) (rate(http_requests_total[5m]))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{job="api"} 2.833333333333333E-01"#,
            r#"{job="web"} 1.3333333333333333E-01"#,
        ]),
    },
    Case {
        expr: r#"sum without (instance) (increase(http_requests_total[5m]))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="api"} 8.5E+01"#, r#"{job="web"} 4E+01"#]),
    },
    Case {
        expr: r#"rate(http_requests_total[5m] offset 3m)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="1", job="web"} 4.583333333333333E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 6.666666666666667E-02"#,
        ]),
    },
    Case {
        expr: r#"rate(http_requests_total[5m] @ 600)"#,
        at_ms: 1170000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666669E-01"#,
            r#"{instance="1", job="web"} 4.666666666666667E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 8.333333333333334E-02"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total @ 300"#,
        at_ms: 1170000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="api"} 5E+01"#,
            r#"{__name__="http_requests_total", instance="1", job="web"} 2E+01"#,
            r#"{__name__="http_requests_total", instance="2", job="api"} 3.5E+01"#,
            r#"{__name__="http_requests_total", instance="2", job="web"} 1.35E+02"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total offset 2m"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="api"} 8E+01"#,
            r#"{__name__="http_requests_total", instance="1", job="web"} 8E+00"#,
            r#"{__name__="http_requests_total", instance="2", job="api"} 5.6E+01"#,
            r#"{__name__="http_requests_total", instance="2", job="web"} 1.5E+02"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total offset -2m"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="api"} 1.2E+02"#,
            r#"{__name__="http_requests_total", instance="1", job="web"} 2E+01"#,
            r#"{__name__="http_requests_total", instance="2", job="api"} 8.4E+01"#,
            r#"{__name__="http_requests_total", instance="2", job="web"} 1.7E+02"#,
        ]),
    },
    Case {
        expr: r#"rate(errors_total[5m]) / rate(http_requests_total[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E-01"#,
            r#"{instance="1", job="web"} 1.6666666666666666E-01"#,
        ]),
    },
    Case {
        expr: r#"rate(errors_total[5m]) / ignoring(job) rate(http_requests_total{job="api"}[5m])"#,
        at_ms: 630000,
        expect: Expect::Err(
            r#"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"#,
        ),
    },
    Case {
        expr: r#"rate(errors_total[5m]) / on(job, instance) rate(http_requests_total[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E-01"#,
            r#"{instance="1", job="web"} 1.6666666666666666E-01"#,
        ]),
    },
    Case {
        expr: r#"errors_total / on(job) group_left http_requests_total{instance="1"}"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E-01"#,
            r#"{instance="1", job="web"} 3.5714285714285715E-01"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total / on(job) group_left errors_total"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E+01"#,
            r#"{instance="1", job="web"} 2.8E+00"#,
            r#"{instance="2", job="api"} 7E+00"#,
            r#"{instance="2", job="web"} 3.2E+01"#,
        ]),
    },
    Case {
        expr: r#"errors_total * on(job) group_right http_requests_total"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E+03"#,
            r#"{instance="1", job="web"} 7E+01"#,
            r#"{instance="2", job="api"} 7E+02"#,
            r#"{instance="2", job="web"} 8E+02"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total > 100"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="2", job="web"} 1.6E+02"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total > bool 100"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 0E+00"#,
            r#"{instance="1", job="web"} 0E+00"#,
            r#"{instance="2", job="api"} 0E+00"#,
            r#"{instance="2", job="web"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"100 < http_requests_total"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="2", job="web"} 1.6E+02"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total and errors_total"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="api"} 1E+02"#,
            r#"{__name__="http_requests_total", instance="1", job="web"} 1.4E+01"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total and on(job, instance) errors_total"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="api"} 1E+02"#,
            r#"{__name__="http_requests_total", instance="1", job="web"} 1.4E+01"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total unless on(job, instance) errors_total"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="2", job="api"} 7E+01"#,
            r#"{__name__="http_requests_total", instance="2", job="web"} 1.6E+02"#,
        ]),
    },
    Case {
        expr: r#"errors_total or on(job, instance) http_requests_total"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="errors_total", instance="1", job="api"} 1E+01"#,
            r#"{__name__="errors_total", instance="1", job="web"} 5E+00"#,
            r#"{__name__="http_requests_total", instance="2", job="api"} 7E+01"#,
            r#"{__name__="http_requests_total", instance="2", job="web"} 1.6E+02"#,
        ]),
    },
    Case {
        expr: r#"topk(2, http_requests_total)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="api"} 1E+02"#,
            r#"{__name__="http_requests_total", instance="2", job="web"} 1.6E+02"#,
        ]),
    },
    Case {
        expr: r#"bottomk(1, http_requests_total) by (job)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="web"} 1.4E+01"#,
            r#"{__name__="http_requests_total", instance="2", job="api"} 7E+01"#,
        ]),
    },
    Case {
        expr: r#"topk by (job) (1, rate(http_requests_total[5m]))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"count(http_requests_total) by (job)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="api"} 2E+00"#, r#"{job="web"} 2E+00"#]),
    },
    Case {
        expr: r#"count_values("value", errors_total)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{value="10"} 1E+00"#, r#"{value="5"} 1E+00"#]),
    },
    Case {
        expr: r#"max by (instance) (http_requests_total)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{instance="1"} 1E+02"#, r#"{instance="2"} 1.6E+02"#]),
    },
    Case {
        expr: r#"min without (instance) (http_requests_total)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="api"} 7E+01"#, r#"{job="web"} 1.4E+01"#]),
    },
    Case {
        expr: r#"group by (job) (http_requests_total)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="api"} 1E+00"#, r#"{job="web"} 1E+00"#]),
    },
    Case {
        expr: r#"quantile(0.5, http_requests_total)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{} 8.5E+01"#]),
    },
    Case {
        expr: r#"quantile by (job) (0.9, http_requests_total)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="api"} 9.7E+01"#, r#"{job="web"} 1.454E+02"#]),
    },
    Case {
        expr: r#"rate(http_requests_total[5m:1m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="1", job="web"} 5E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"max_over_time(rate(http_requests_total[2m])[6m:1m])"#,
        at_ms: 750000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="1", job="web"} 5E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"sum_over_time(errors_total[5m:30s])"#,
        at_ms: 640000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 8E+01"#,
            r#"{instance="1", job="web"} 3.8E+01"#,
        ]),
    },
    Case {
        expr: r#"avg_over_time(errors_total[5m:2m])"#,
        at_ms: 660000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 8E+00"#,
            r#"{instance="1", job="web"} 4E+00"#,
        ]),
    },
    Case {
        expr: r#"deriv(http_requests_total[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1.6666666666666666E-01"#,
            r#"{instance="1", job="web"} 5E-02"#,
            r#"{instance="2", job="api"} 1.1666666666666667E-01"#,
            r#"{instance="2", job="web"} 8.333333333333333E-02"#,
        ]),
    },
    Case {
        expr: r#"predict_linear(http_requests_total[5m], 600)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 2.05E+02"#,
            r#"{instance="1", job="web"} 4.55E+01"#,
            r#"{instance="2", job="api"} 1.435E+02"#,
            r#"{instance="2", job="web"} 2.125E+02"#,
        ]),
    },
    Case {
        expr: r#"timestamp(http_requests_total)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 6E+02"#,
            r#"{instance="1", job="web"} 6E+02"#,
            r#"{instance="2", job="api"} 6E+02"#,
            r#"{instance="2", job="web"} 6E+02"#,
        ]),
    },
    Case {
        expr: r#"timestamp(rate(http_requests_total[5m]))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 6.3E+02"#,
            r#"{instance="1", job="web"} 6.3E+02"#,
            r#"{instance="2", job="api"} 6.3E+02"#,
            r#"{instance="2", job="web"} 6.3E+02"#,
        ]),
    },
    Case {
        expr: r#"absent(http_requests_total{job="db"})"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="db"} 1E+00"#]),
    },
    Case {
        expr: r#"absent(http_requests_total{job="api"})"#,
        at_ms: 630000,
        expect: Expect::Samples(&[]),
    },
    Case {
        expr: r#"absent(nonexistent{job="db",instance=~"x.*"})"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="db"} 1E+00"#]),
    },
    Case {
        expr: r#"absent_over_time(http_requests_total{job="db"}[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="db"} 1E+00"#]),
    },
    Case {
        expr: r#"present_over_time(http_requests_total{job="api"}[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E+00"#,
            r#"{instance="2", job="api"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"increase(http_requests_total[5m]) > bool on(job, instance) increase(errors_total[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} 1E+00"#,
            r#"{instance="1", job="web"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"-http_requests_total{instance="1"}"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{instance="1", job="api"} -1E+02"#,
            r#"{instance="1", job="web"} -1.4E+01"#,
        ]),
    },
    Case {
        expr: r#"+http_requests_total{instance="1"}"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="api"} 1E+02"#,
            r#"{__name__="http_requests_total", instance="1", job="web"} 1.4E+01"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total{job=~"a.*"}"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="api"} 1E+02"#,
            r#"{__name__="http_requests_total", instance="2", job="api"} 7E+01"#,
        ]),
    },
    Case {
        expr: r#"http_requests_total{job!~"a.*",instance!="2"}"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="http_requests_total", instance="1", job="web"} 1.4E+01"#,
        ]),
    },
    Case {
        expr: r#"{__name__=~"errors_total|http_requests_total",job="api",instance="1"}"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="errors_total", instance="1", job="api"} 1E+01"#,
            r#"{__name__="http_requests_total", instance="1", job="api"} 1E+02"#,
        ]),
    },
    Case {
        expr: r#"sum({__name__=~".+_total"}) by (__name__)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{__name__="errors_total"} 1.5E+01"#,
            r#"{__name__="http_requests_total"} 3.44E+02"#,
        ]),
    },
];

const GAUGES_SERIES: &[(&str, &str)] = &[
    (
        r#"mem_bytes{host="a"}"#,
        r#"10 12 9 15 14 13 20 18 17 16 15 14 13"#,
    ),
    (
        r#"mem_bytes{host="b"}"#,
        r#"0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 1.1 1.2 1.3"#,
    ),
    (
        r#"mem_bytes{host="c"}"#,
        r#"-5 -4.5 -4 3 7.25 1e3 2 2 2 2 2 2 2"#,
    ),
    (
        r#"temp{host="a",dc="x"}"#,
        r#"21.5 22.25 23 22 21 20.5 20 19.75 19 18 17 16 15"#,
    ),
    (
        r#"temp{host="b",dc="x"}"#,
        r#"30 31 32 33 34 35 36 37 38 39 40 41 42"#,
    ),
    (r#"temp{host="c",dc="y"}"#, r#"1 1 1 1 1 1 1 1 1 1 1 1 1"#),
];
const GAUGES_CASES: &[Case] = &[
    Case {
        expr: r#"mem_bytes"#,
        at_ms: 720000,
        expect: Expect::Samples(&[
            r#"{__name__="mem_bytes", host="a"} 1.3E+01"#,
            r#"{__name__="mem_bytes", host="b"} 1.3E+00"#,
            r#"{__name__="mem_bytes", host="c"} 2E+00"#,
        ]),
    },
    Case {
        expr: r#"avg_over_time(mem_bytes[5m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1.5E+01"#,
            r#"{host="b"} 1.1E+00"#,
            r#"{host="c"} 2E+00"#,
        ]),
    },
    Case {
        expr: r#"min_over_time(mem_bytes[5m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1.3E+01"#,
            r#"{host="b"} 9E-01"#,
            r#"{host="c"} 2E+00"#,
        ]),
    },
    Case {
        expr: r#"max_over_time(mem_bytes[5m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1.7E+01"#,
            r#"{host="b"} 1.3E+00"#,
            r#"{host="c"} 2E+00"#,
        ]),
    },
    Case {
        expr: r#"sum_over_time(mem_bytes[5m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 7.5E+01"#,
            r#"{host="b"} 5.5E+00"#,
            r#"{host="c"} 1E+01"#,
        ]),
    },
    Case {
        expr: r#"count_over_time(mem_bytes[5m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 5E+00"#,
            r#"{host="b"} 5E+00"#,
            r#"{host="c"} 5E+00"#,
        ]),
    },
    Case {
        expr: r#"last_over_time(mem_bytes[5m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{__name__="mem_bytes", host="a"} 1.3E+01"#,
            r#"{__name__="mem_bytes", host="b"} 1.3E+00"#,
            r#"{__name__="mem_bytes", host="c"} 2E+00"#,
        ]),
    },
    Case {
        expr: r#"stddev_over_time(mem_bytes[5m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1.4142135623730951E+00"#,
            r#"{host="b"} 1.414213562373095E-01"#,
            r#"{host="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"stdvar_over_time(mem_bytes[5m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 2E+00"#,
            r#"{host="b"} 1.9999999999999997E-02"#,
            r#"{host="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"quantile_over_time(0.75, mem_bytes[10m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1.675E+01"#,
            r#"{host="b"} 1.0750000000000002E+00"#,
            r#"{host="c"} 2.75E+00"#,
        ]),
    },
    Case {
        expr: r#"quantile_over_time(0, mem_bytes[10m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1.3E+01"#,
            r#"{host="b"} 4E-01"#,
            r#"{host="c"} 2E+00"#,
        ]),
    },
    Case {
        expr: r#"quantile_over_time(1.5, mem_bytes[10m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} +Inf"#,
            r#"{host="b"} +Inf"#,
            r#"{host="c"} +Inf"#,
        ]),
    },
    Case {
        expr: r#"changes(mem_bytes[10m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 9E+00"#,
            r#"{host="b"} 9E+00"#,
            r#"{host="c"} 3E+00"#,
        ]),
    },
    Case {
        expr: r#"resets(mem_bytes[10m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{host="a"} 8E+00"#,
            r#"{host="b"} 0E+00"#,
            r#"{host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"delta(temp[4m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} -4E+00"#,
            r#"{dc="x", host="b"} 4E+00"#,
            r#"{dc="y", host="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"idelta(temp[4m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} -1E+00"#,
            r#"{dc="x", host="b"} 1E+00"#,
            r#"{dc="y", host="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"deriv(temp[6m])"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} -1.607142857142857E-02"#,
            r#"{dc="x", host="b"} 1.6666666666666666E-02"#,
            r#"{dc="y", host="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"predict_linear(temp[6m], 3600)"#,
        at_ms: 730000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} -4.2970238095238095E+01"#,
            r#"{dc="x", host="b"} 1.0216666666666666E+02"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"abs(mem_bytes)"#,
        at_ms: 240000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1.4E+01"#,
            r#"{host="b"} 5E-01"#,
            r#"{host="c"} 7.25E+00"#,
        ]),
    },
    Case {
        expr: r#"ceil(temp)"#,
        at_ms: 180000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.2E+01"#,
            r#"{dc="x", host="b"} 3.3E+01"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"floor(temp)"#,
        at_ms: 180000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.2E+01"#,
            r#"{dc="x", host="b"} 3.3E+01"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"round(temp)"#,
        at_ms: 180000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.2E+01"#,
            r#"{dc="x", host="b"} 3.3E+01"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"round(temp, 0.5)"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.25E+01"#,
            r#"{dc="x", host="b"} 3.1E+01"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"round(mem_bytes, 10)"#,
        at_ms: 240000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1E+01"#,
            r#"{host="b"} 0E+00"#,
            r#"{host="c"} 1E+01"#,
        ]),
    },
    Case {
        expr: r#"sqrt(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 4.527692569068709E+00"#,
            r#"{dc="x", host="b"} 5.916079783099616E+00"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"exp(temp{host="c"})"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{dc="y", host="c"} 2.718281828459045E+00"#]),
    },
    Case {
        expr: r#"ln(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 3.0204248861443626E+00"#,
            r#"{dc="x", host="b"} 3.5553480614894135E+00"#,
            r#"{dc="y", host="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"log2(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 4.357552004618084E+00"#,
            r#"{dc="x", host="b"} 5.129283016944966E+00"#,
            r#"{dc="y", host="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"log10(mem_bytes{host="c"})"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{host="c"} 3E+00"#]),
    },
    Case {
        expr: r#"sgn(mem_bytes)"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{host="a"} 1E+00"#,
            r#"{host="b"} 1E+00"#,
            r#"{host="c"} -1E+00"#,
        ]),
    },
    Case {
        expr: r#"clamp(temp, 20, 35)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.05E+01"#,
            r#"{dc="x", host="b"} 3.5E+01"#,
            r#"{dc="y", host="c"} 2E+01"#,
        ]),
    },
    Case {
        expr: r#"clamp_min(temp, 25)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.5E+01"#,
            r#"{dc="x", host="b"} 3.5E+01"#,
            r#"{dc="y", host="c"} 2.5E+01"#,
        ]),
    },
    Case {
        expr: r#"clamp_max(temp, 25)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.05E+01"#,
            r#"{dc="x", host="b"} 2.5E+01"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"clamp(temp, 35, 20)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[]),
    },
    Case {
        expr: r#"sum(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 5.65E+01"#]),
    },
    Case {
        expr: r#"sum by (dc) (temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{dc="x"} 5.55E+01"#, r#"{dc="y"} 1E+00"#]),
    },
    Case {
        expr: r#"avg by (dc) (temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{dc="x"} 2.775E+01"#, r#"{dc="y"} 1E+00"#]),
    },
    Case {
        expr: r#"avg(temp)"#,
        at_ms: 420000,
        expect: Expect::Samples(&[r#"{} 1.925E+01"#]),
    },
    Case {
        expr: r#"stddev(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 1.3930382462644577E+01"#]),
    },
    Case {
        expr: r#"stdvar by (dc) (temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{dc="x"} 5.25625E+01"#, r#"{dc="y"} 0E+00"#]),
    },
    Case {
        expr: r#"max(temp) - min(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 3.4E+01"#]),
    },
    Case {
        expr: r#"temp - on(host) mem_bytes"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{host="a"} 7.5E+00"#,
            r#"{host="b"} 3.44E+01"#,
            r#"{host="c"} -9.99E+02"#,
        ]),
    },
    Case {
        expr: r#"temp % 7"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 6.5E+00"#,
            r#"{dc="x", host="b"} 0E+00"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"temp ^ 2"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 4.2025E+02"#,
            r#"{dc="x", host="b"} 1.225E+03"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"2 ^ temp{host="c"}"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{dc="y", host="c"} 2E+00"#]),
    },
    Case {
        expr: r#"temp / 0"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} +Inf"#,
            r#"{dc="x", host="b"} +Inf"#,
            r#"{dc="y", host="c"} +Inf"#,
        ]),
    },
    Case {
        expr: r#"-temp / 0"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} -Inf"#,
            r#"{dc="x", host="b"} -Inf"#,
            r#"{dc="y", host="c"} -Inf"#,
        ]),
    },
    Case {
        expr: r#"temp{host="c"} * 0 / 0"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{dc="y", host="c"} NaN"#]),
    },
    Case {
        expr: r#"temp == 20.5"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{__name__="temp", dc="x", host="a"} 2.05E+01"#]),
    },
    Case {
        expr: r#"temp != bool 20.5"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 0E+00"#,
            r#"{dc="x", host="b"} 1E+00"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"temp >= 34"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#]),
    },
    Case {
        expr: r#"temp <= bool 34"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 1E+00"#,
            r#"{dc="x", host="b"} 0E+00"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"scalar(temp{host="c"}) * 3"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 3E+00"#]),
    },
    Case {
        expr: r#"scalar(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} NaN"#]),
    },
    Case {
        expr: r#"vector(time())"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 3E+02"#]),
    },
    Case {
        expr: r#"time()"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 3E+02"#]),
    },
    Case {
        expr: r#"1 + 2 * 3 ^ 2 % 5"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 4E+00"#]),
    },
    Case {
        expr: r#"2 > bool 1"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 1E+00"#]),
    },
    Case {
        expr: r#"vector(1) + vector(2)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 3E+00"#]),
    },
    Case {
        expr: r#"sort(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x", host="a"} 2.05E+01"#,
            r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#,
            r#"{__name__="temp", dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"sort_desc(temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x", host="a"} 2.05E+01"#,
            r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#,
            r#"{__name__="temp", dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"label_replace(temp, "dst", "prefix-$1", "host", "(.*)")"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x", dst="prefix-a", host="a"} 2.05E+01"#,
            r#"{__name__="temp", dc="x", dst="prefix-b", host="b"} 3.5E+01"#,
            r#"{__name__="temp", dc="y", dst="prefix-c", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"label_replace(temp, "host", "", "host", "a")"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x"} 2.05E+01"#,
            r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#,
            r#"{__name__="temp", dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"label_replace(temp, "dc", "z", "nomatch", "x")"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x", host="a"} 2.05E+01"#,
            r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#,
            r#"{__name__="temp", dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"label_replace(temp, "dst", "$1-${2}", "host", "(a)(.*)")"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x", dst="a-", host="a"} 2.05E+01"#,
            r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#,
            r#"{__name__="temp", dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"label_join(temp, "joined", "/", "dc", "host")"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x", host="a", joined="x/a"} 2.05E+01"#,
            r#"{__name__="temp", dc="x", host="b", joined="x/b"} 3.5E+01"#,
            r#"{__name__="temp", dc="y", host="c", joined="y/c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"label_join(temp, "dc", "")"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", host="a"} 2.05E+01"#,
            r#"{__name__="temp", host="b"} 3.5E+01"#,
            r#"{__name__="temp", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"temp > 30 or mem_bytes"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="mem_bytes", host="a"} 1.3E+01"#,
            r#"{__name__="mem_bytes", host="b"} 6E-01"#,
            r#"{__name__="mem_bytes", host="c"} 1E+03"#,
            r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#,
        ]),
    },
    Case {
        expr: r#"topk(1, temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#]),
    },
    Case {
        expr: r#"topk(10, temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x", host="a"} 2.05E+01"#,
            r#"{__name__="temp", dc="x", host="b"} 3.5E+01"#,
            r#"{__name__="temp", dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"bottomk(2, temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[
            r#"{__name__="temp", dc="x", host="a"} 2.05E+01"#,
            r#"{__name__="temp", dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"topk(0, temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[]),
    },
    Case {
        expr: r#"count_values("v", temp)"#,
        at_ms: 720000,
        expect: Expect::Samples(&[r#"{v="1"} 1E+00"#, r#"{v="15"} 1E+00"#, r#"{v="42"} 1E+00"#]),
    },
    Case {
        expr: r#"count_values by (dc) ("v", round(temp / 10))"#,
        at_ms: 720000,
        expect: Expect::Samples(&[
            r#"{dc="x", v="2"} 1E+00"#,
            r#"{dc="x", v="4"} 1E+00"#,
            r#"{dc="y", v="0"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"quantile(0.25, temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 1.075E+01"#]),
    },
    Case {
        expr: r#"quantile(2, temp)"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} +Inf"#]),
    },
    Case {
        expr: r#"stddev_over_time(temp[10m:2m])"#,
        at_ms: 720000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.608745973749755E+00"#,
            r#"{dc="x", host="b"} 3.415650255319866E+00"#,
            r#"{dc="y", host="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"avg_over_time(temp[10m:2m] offset 1m)"#,
        at_ms: 720000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2E+01"#,
            r#"{dc="x", host="b"} 3.6E+01"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"max_over_time(temp[5m] @ 300)"#,
        at_ms: 720000,
        expect: Expect::Samples(&[
            r#"{dc="x", host="a"} 2.3E+01"#,
            r#"{dc="x", host="b"} 3.5E+01"#,
            r#"{dc="y", host="c"} 1E+00"#,
        ]),
    },
    Case {
        expr: r#"hour(vector(86400 + 3600 * 5 + 60 * 7))"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 5E+00"#]),
    },
    Case {
        expr: r#"minute(vector(86400 + 3600 * 5 + 60 * 7))"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 7E+00"#]),
    },
    Case {
        expr: r#"day_of_week(vector(86400 * 3))"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 0E+00"#]),
    },
    Case {
        expr: r#"day_of_month(vector(86400 * 40))"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 1E+01"#]),
    },
    Case {
        expr: r#"day_of_year(vector(86400 * 40))"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 4.1E+01"#]),
    },
    Case {
        expr: r#"days_in_month(vector(86400 * 40))"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 2.8E+01"#]),
    },
    Case {
        expr: r#"month(vector(86400 * 40))"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 2E+00"#]),
    },
    Case {
        expr: r#"year(vector(86400 * 400))"#,
        at_ms: 300000,
        expect: Expect::Samples(&[r#"{} 1.971E+03"#]),
    },
    Case {
        expr: r#"hour()"#,
        at_ms: 11100000,
        expect: Expect::Samples(&[r#"{} 3E+00"#]),
    },
    Case {
        expr: r#"minute()"#,
        at_ms: 11100000,
        expect: Expect::Samples(&[r#"{} 5E+00"#]),
    },
    Case {
        expr: r#"year()"#,
        at_ms: 11100000,
        expect: Expect::Samples(&[r#"{} 1.97E+03"#]),
    },
];

const HISTOGRAMS_SERIES: &[(&str, &str)] = &[
    (r#"req_seconds_bucket{job="a",le="0.1"}"#, r#"0+1x20"#),
    (r#"req_seconds_bucket{job="a",le="0.5"}"#, r#"0+3x20"#),
    (r#"req_seconds_bucket{job="a",le="1"}"#, r#"0+4x20"#),
    (r#"req_seconds_bucket{job="a",le="+Inf"}"#, r#"0+5x20"#),
    (r#"req_seconds_bucket{job="b",le="0.25"}"#, r#"0+2x20"#),
    (r#"req_seconds_bucket{job="b",le="1"}"#, r#"0+2x20"#),
    (r#"req_seconds_bucket{job="b",le="+Inf"}"#, r#"0+10x20"#),
    (r#"req_seconds_bucket{job="c",le="1"}"#, r#"0+5x20"#),
    (r#"req_seconds_bucket{job="c",le="2"}"#, r#"0+4x20"#),
    (r#"req_seconds_bucket{job="c",le="+Inf"}"#, r#"0+6x20"#),
    (r#"req_seconds_bucket{job="d",le="1"}"#, r#"0+5x20"#),
    (r#"req_seconds_bucket{job="d",le="2"}"#, r#"0+6x20"#),
    (r#"req_seconds_count{job="a"}"#, r#"0+5x20"#),
    (r#"req_seconds_sum{job="a"}"#, r#"0+1.5x20"#),
];
const HISTOGRAMS_CASES: &[Case] = &[
    Case {
        expr: r#"histogram_quantile(0.5, rate(req_seconds_bucket[5m]))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{job="a"} 3.999999999999999E-01"#,
            r#"{job="b"} 1E+00"#,
            r#"{job="c"} 6.000000000000001E-01"#,
            r#"{job="d"} NaN"#,
        ]),
    },
    Case {
        expr: r#"histogram_quantile(0.9, rate(req_seconds_bucket[5m]))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{job="a"} 1E+00"#,
            r#"{job="b"} 1E+00"#,
            r#"{job="c"} 2E+00"#,
            r#"{job="d"} NaN"#,
        ]),
    },
    Case {
        expr: r#"histogram_quantile(0.99, sum by (le) (rate(req_seconds_bucket[5m])))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{} 2E+00"#]),
    },
    Case {
        expr: r#"histogram_quantile(0.1, req_seconds_bucket)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{job="a"} 5E-02"#,
            r#"{job="b"} 1.25E-01"#,
            r#"{job="c"} 1.2E-01"#,
            r#"{job="d"} NaN"#,
        ]),
    },
    Case {
        expr: r#"histogram_quantile(0, req_seconds_bucket)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{job="a"} 0E+00"#,
            r#"{job="b"} 0E+00"#,
            r#"{job="c"} 0E+00"#,
            r#"{job="d"} NaN"#,
        ]),
    },
    Case {
        expr: r#"histogram_quantile(1, req_seconds_bucket)"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{job="a"} 1E+00"#,
            r#"{job="b"} 1E+00"#,
            r#"{job="c"} 2E+00"#,
            r#"{job="d"} NaN"#,
        ]),
    },
    Case {
        expr: r#"histogram_quantile(-1, req_seconds_bucket{job="a"})"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="a"} -Inf"#]),
    },
    Case {
        expr: r#"histogram_quantile(2, req_seconds_bucket{job="a"})"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="a"} +Inf"#]),
    },
    Case {
        expr: r#"histogram_quantile(0.5, req_seconds_bucket)"#,
        at_ms: 0,
        expect: Expect::Samples(&[
            r#"{job="a"} NaN"#,
            r#"{job="b"} NaN"#,
            r#"{job="c"} NaN"#,
            r#"{job="d"} NaN"#,
        ]),
    },
    Case {
        expr: r#"histogram_quantile(0.75, sum without (job) (req_seconds_bucket))"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{} 9.903846153846154E-01"#]),
    },
    Case {
        expr: r#"rate(req_seconds_sum[5m]) / rate(req_seconds_count[5m])"#,
        at_ms: 630000,
        expect: Expect::Samples(&[r#"{job="a"} 3.0000000000000004E-01"#]),
    },
    Case {
        expr: r#"sum by (job) (req_seconds_bucket{le="+Inf"})"#,
        at_ms: 630000,
        expect: Expect::Samples(&[
            r#"{job="a"} 5E+01"#,
            r#"{job="b"} 1E+02"#,
            r#"{job="c"} 6E+01"#,
        ]),
    },
];

const STALENESS_SERIES: &[(&str, &str)] = &[
    (r#"up{job="a"}"#, r#"1 1 1 stale"#),
    (r#"up{job="b"}"#, r#"1 1 _ _ _ _ _ _ 1"#),
    (r#"up{job="c"}"#, r#"0 0 0 0 0 0 0 0 0 0"#),
    (r#"gone{job="a"}"#, r#"5 6 7"#),
];
const STALENESS_CASES: &[Case] = &[
    Case {
        expr: r#"up"#,
        at_ms: 150000,
        expect: Expect::Samples(&[
            r#"{__name__="up", job="a"} 1E+00"#,
            r#"{__name__="up", job="b"} 1E+00"#,
            r#"{__name__="up", job="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"up"#,
        at_ms: 210000,
        expect: Expect::Samples(&[
            r#"{__name__="up", job="b"} 1E+00"#,
            r#"{__name__="up", job="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"up"#,
        at_ms: 360000,
        expect: Expect::Samples(&[
            r#"{__name__="up", job="b"} 1E+00"#,
            r#"{__name__="up", job="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"up"#,
        at_ms: 390000,
        expect: Expect::Samples(&[r#"{__name__="up", job="c"} 0E+00"#]),
    },
    Case {
        expr: r#"up"#,
        at_ms: 450000,
        expect: Expect::Samples(&[r#"{__name__="up", job="c"} 0E+00"#]),
    },
    Case {
        expr: r#"up"#,
        at_ms: 510000,
        expect: Expect::Samples(&[
            r#"{__name__="up", job="b"} 1E+00"#,
            r#"{__name__="up", job="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"gone"#,
        at_ms: 420000,
        expect: Expect::Samples(&[r#"{__name__="gone", job="a"} 7E+00"#]),
    },
    Case {
        expr: r#"gone"#,
        at_ms: 419000,
        expect: Expect::Samples(&[r#"{__name__="gone", job="a"} 7E+00"#]),
    },
    Case {
        expr: r#"count_over_time(up[10m])"#,
        at_ms: 570000,
        expect: Expect::Samples(&[
            r#"{job="a"} 3E+00"#,
            r#"{job="b"} 3E+00"#,
            r#"{job="c"} 1E+01"#,
        ]),
    },
    Case {
        expr: r#"last_over_time(up[10m])"#,
        at_ms: 570000,
        expect: Expect::Samples(&[
            r#"{__name__="up", job="a"} 1E+00"#,
            r#"{__name__="up", job="b"} 1E+00"#,
            r#"{__name__="up", job="c"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"absent(up{job="a"})"#,
        at_ms: 240000,
        expect: Expect::Samples(&[r#"{job="a"} 1E+00"#]),
    },
    Case {
        expr: r#"absent_over_time(up{job="a"}[2m])"#,
        at_ms: 330000,
        expect: Expect::Samples(&[r#"{job="a"} 1E+00"#]),
    },
    Case {
        expr: r#"absent_over_time(up{job="a"}[2m])"#,
        at_ms: 270000,
        expect: Expect::Samples(&[r#"{job="a"} 1E+00"#]),
    },
    Case {
        expr: r#"sum(up)"#,
        at_ms: 330000,
        expect: Expect::Samples(&[r#"{} 1E+00"#]),
    },
    Case {
        expr: r#"up == 0"#,
        at_ms: 270000,
        expect: Expect::Samples(&[r#"{__name__="up", job="c"} 0E+00"#]),
    },
    Case {
        expr: r#"timestamp(gone)"#,
        at_ms: 390000,
        expect: Expect::Samples(&[r#"{job="a"} 1.2E+02"#]),
    },
    Case {
        expr: r#"timestamp(up)"#,
        at_ms: 570000,
        expect: Expect::Samples(&[r#"{job="b"} 4.8E+02"#, r#"{job="c"} 5.4E+02"#]),
    },
    Case {
        expr: r#"max_over_time(up[3m:1m])"#,
        at_ms: 330000,
        expect: Expect::Samples(&[r#"{job="b"} 1E+00"#, r#"{job="c"} 0E+00"#]),
    },
    Case {
        expr: r#"rate(up[20m:1m])"#,
        at_ms: 690000,
        expect: Expect::Samples(&[
            r#"{job="a"} 0E+00"#,
            r#"{job="b"} 0E+00"#,
            r#"{job="c"} 0E+00"#,
        ]),
    },
];

const MATCHING_SERIES: &[(&str, &str)] = &[
    (
        r#"method_code:http_errors:rate5m{method="get", code="500"}"#,
        r#"24"#,
    ),
    (
        r#"method_code:http_errors:rate5m{method="get", code="404"}"#,
        r#"30"#,
    ),
    (
        r#"method_code:http_errors:rate5m{method="put", code="501"}"#,
        r#"3"#,
    ),
    (
        r#"method_code:http_errors:rate5m{method="post", code="500"}"#,
        r#"6"#,
    ),
    (
        r#"method_code:http_errors:rate5m{method="post", code="404"}"#,
        r#"21"#,
    ),
    (r#"method:http_requests:rate5m{method="get"}"#, r#"600"#),
    (r#"method:http_requests:rate5m{method="del"}"#, r#"34"#),
    (r#"method:http_requests:rate5m{method="post"}"#, r#"120"#),
    (r#"info{method="get", team="x"}"#, r#"1"#),
    (r#"info{method="post", team="y"}"#, r#"1"#),
];
const MATCHING_CASES: &[Case] = &[
    Case {
        expr: r#"method_code:http_errors:rate5m{code="500"} / ignoring(code) method:http_requests:rate5m"#,
        at_ms: 60000,
        expect: Expect::Samples(&[r#"{method="get"} 4E-02"#, r#"{method="post"} 5E-02"#]),
    },
    Case {
        expr: r#"method_code:http_errors:rate5m / ignoring(code) group_left method:http_requests:rate5m"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{code="404", method="get"} 5E-02"#,
            r#"{code="404", method="post"} 1.75E-01"#,
            r#"{code="500", method="get"} 4E-02"#,
            r#"{code="500", method="post"} 5E-02"#,
        ]),
    },
    Case {
        expr: r#"method:http_requests:rate5m * on(method) group_left(team) info"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{method="get", team="x"} 6E+02"#,
            r#"{method="post", team="y"} 1.2E+02"#,
        ]),
    },
    Case {
        expr: r#"method_code:http_errors:rate5m * on(method) group_left(team) info"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{code="404", method="get", team="x"} 3E+01"#,
            r#"{code="404", method="post", team="y"} 2.1E+01"#,
            r#"{code="500", method="get", team="x"} 2.4E+01"#,
            r#"{code="500", method="post", team="y"} 6E+00"#,
        ]),
    },
    Case {
        expr: r#"info * on(method) group_right(team) method_code:http_errors:rate5m"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{code="404", method="get", team="x"} 3E+01"#,
            r#"{code="404", method="post", team="y"} 2.1E+01"#,
            r#"{code="500", method="get", team="x"} 2.4E+01"#,
            r#"{code="500", method="post", team="y"} 6E+00"#,
        ]),
    },
    Case {
        expr: r#"method_code:http_errors:rate5m > on(method) group_left method:http_requests:rate5m / 20"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{__name__="method_code:http_errors:rate5m", code="404", method="post"} 2.1E+01"#,
        ]),
    },
    Case {
        expr: r#"method_code:http_errors:rate5m and on(method) info"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{__name__="method_code:http_errors:rate5m", code="404", method="get"} 3E+01"#,
            r#"{__name__="method_code:http_errors:rate5m", code="404", method="post"} 2.1E+01"#,
            r#"{__name__="method_code:http_errors:rate5m", code="500", method="get"} 2.4E+01"#,
            r#"{__name__="method_code:http_errors:rate5m", code="500", method="post"} 6E+00"#,
        ]),
    },
    Case {
        expr: r#"method:http_requests:rate5m unless on(method) info"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{__name__="method:http_requests:rate5m", method="del"} 3.4E+01"#,
        ]),
    },
    Case {
        expr: r#"sum by (method) (method_code:http_errors:rate5m) / on(method) method:http_requests:rate5m"#,
        at_ms: 60000,
        expect: Expect::Samples(&[r#"{method="get"} 9E-02"#, r#"{method="post"} 2.25E-01"#]),
    },
    Case {
        expr: r#"method_code:http_errors:rate5m / on() group_left sum(method:http_requests:rate5m)"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{code="404", method="get"} 3.978779840848806E-02"#,
            r#"{code="404", method="post"} 2.7851458885941646E-02"#,
            r#"{code="500", method="get"} 3.183023872679045E-02"#,
            r#"{code="500", method="post"} 7.957559681697613E-03"#,
            r#"{code="501", method="put"} 3.978779840848806E-03"#,
        ]),
    },
    Case {
        expr: r#"method:http_requests:rate5m + on(method) method_code:http_errors:rate5m"#,
        at_ms: 60000,
        expect: Expect::Err(
            r#"found duplicate series for the match group {method="get"} on the right hand-side of the operation: [{__name__="method_code:http_errors:rate5m", code="404", method="get"}, {__name__="method_code:http_errors:rate5m", code="500", method="get"}];many-to-many matching not allowed: matching labels must be unique on one side"#,
        ),
    },
    Case {
        expr: r#"method_code:http_errors:rate5m / ignoring(code) method:http_requests:rate5m"#,
        at_ms: 60000,
        expect: Expect::Err(
            r#"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"#,
        ),
    },
    Case {
        expr: r#"method_code:http_errors:rate5m * on(method) group_left info * 0"#,
        at_ms: 60000,
        expect: Expect::Samples(&[
            r#"{code="404", method="get"} 0E+00"#,
            r#"{code="404", method="post"} 0E+00"#,
            r#"{code="500", method="get"} 0E+00"#,
            r#"{code="500", method="post"} 0E+00"#,
        ]),
    },
    Case {
        expr: r#"count by (method) (method_code:http_errors:rate5m) == bool on(method) group_left count by (method) (info)"#,
        at_ms: 60000,
        expect: Expect::Samples(&[r#"{method="get"} 0E+00"#, r#"{method="post"} 0E+00"#]),
    },
];
