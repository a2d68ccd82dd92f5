//! PromQL engine behaviour beyond the promtool tables: Prometheus 3 vs 2 arithmetic,
//! range queries, `@ start()/end()`, errors, the metric window's bookkeeping, and speed
//! over many series.

use std::time::Instant;

use argus_rules::promql::{Compat, Engine, EngineOptions, Value, format_value};
use argus_rules::window::{MetricWindow, WindowOptions};
use argus_schemas::{Labels, MetricSamples, STALE_NAN_BITS, Sample as RawSample};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn window() -> MetricWindow {
    MetricWindow::new(WindowOptions {
        retention_ms: 24 * 3600 * 1000,
        shards: 4,
    })
}

fn p2() -> Engine {
    Engine::new(EngineOptions {
        compat: Compat::Prometheus2,
        ..Default::default()
    })
}

fn p3() -> Engine {
    Engine::new(EngineOptions::default())
}

/// The values of an instant-vector result, sorted by labels.
fn vector(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> = v
                .into_iter()
                .map(|s| (s.labels.to_string(), s.value))
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("not a vector: {other:?}"),
    }
}

fn single(v: Value) -> f64 {
    let v = vector(v);
    assert_eq!(v.len(), 1, "{v:?}");
    v[0].1
}

#[test]
fn sum_uses_kahan_summation_in_prometheus_3_only() {
    let w = window();
    for (i, v) in [0.1, 0.2, 0.3].iter().enumerate() {
        w.append_samples(
            &labels(&[("__name__", "x"), ("i", &i.to_string())]),
            [(0, *v)],
        );
    }
    assert_eq!(single(p3().instant(&w, "sum(x)", 1000).unwrap()), 0.6);
    assert_eq!(
        single(p2().instant(&w, "sum(x)", 1000).unwrap()),
        0.1 + 0.2 + 0.3
    );
    assert_ne!(0.1 + 0.2 + 0.3, 0.6);
}

#[test]
fn avg_is_sum_over_count_in_3_and_incremental_mean_in_2() {
    let w = window();
    for (i, v) in [1.0, 2.0, 4.0].iter().enumerate() {
        w.append_samples(
            &labels(&[("__name__", "x"), ("i", &i.to_string())]),
            [(0, *v)],
        );
    }
    assert_eq!(single(p3().instant(&w, "avg(x)", 1000).unwrap()), 7.0 / 3.0);
    // 2.x: mean = 1; 1 + 2/2 - 1/2 = 1.5; 1.5 + 4/3 - 1.5/3.
    let m2 = 1.5 + (4.0 / 3.0 - 1.5 / 3.0);
    assert_eq!(single(p2().instant(&w, "avg(x)", 1000).unwrap()), m2);
    assert_ne!(m2, 7.0 / 3.0);
}

#[test]
fn avg_survives_overflow_by_switching_to_incremental_mean() {
    let w = window();
    for (i, v) in [f64::MAX, f64::MAX, -f64::MAX].iter().enumerate() {
        w.append_samples(
            &labels(&[("__name__", "x"), ("i", &i.to_string())]),
            [(0, *v)],
        );
    }
    let got = single(p3().instant(&w, "avg(x)", 1000).unwrap());
    assert!(got.is_finite(), "{got}");
    assert!(
        (got - f64::MAX / 3.0).abs() / (f64::MAX / 3.0) < 1e-12,
        "{got}"
    );
}

#[test]
fn rate_zero_point_is_applied_after_the_threshold_in_3() {
    // Samples at 60s..300s (1m apart) of 10, 20, ..., 50 in the window (-270s, 330s]:
    // the first sample is 330s after the window start, well over 1.1 * 60s.
    let w = window();
    let l = labels(&[("__name__", "c_total")]);
    w.append_samples(&l, (1..=5).map(|i| (i * 60_000, i as f64 * 10.0)));
    // 3.x: start gap capped to avg/2 = 30s first, then zero point (60s * 10/40 * ... =
    // sampled 240s * 10 / 40 = 60s) is not shorter: extrapolate 30s + 240s + 30s (end gap
    // 30s < 66s) = 300s. increase = 40 * 300 / 240 = 50.
    assert_eq!(
        single(p3().instant(&w, "increase(c_total[10m])", 330_000).unwrap()),
        50.0
    );
    // 2.x: zero point first (60s < 330s), then 60s < 66s so it extrapolates by 60s:
    // 40 * (240 + 60 + 30) / 240 = 55.
    assert_eq!(
        single(p2().instant(&w, "increase(c_total[10m])", 330_000).unwrap()),
        55.0
    );
}

#[test]
fn range_selectors_are_left_open_in_3_and_closed_in_2() {
    let w = window();
    let l = labels(&[("__name__", "g")]);
    w.append_samples(&l, (0..=10).map(|i| (i * 60_000, 1.0)));
    assert_eq!(
        single(p3().instant(&w, "count_over_time(g[5m])", 600_000).unwrap()),
        5.0
    );
    assert_eq!(
        single(p2().instant(&w, "count_over_time(g[5m])", 600_000).unwrap()),
        6.0
    );
}

#[test]
fn atan2_drops_the_metric_name_in_3_only() {
    let w = window();
    w.append_samples(&labels(&[("__name__", "g"), ("a", "b")]), [(0, 0.0)]);
    let v3 = vector(p3().instant(&w, "g atan2 1", 1000).unwrap());
    assert_eq!(v3, vec![(r#"{a="b"}"#.to_string(), 0.0)]);
    let v2 = vector(p2().instant(&w, "g atan2 1", 1000).unwrap());
    assert_eq!(v2, vec![(r#"{__name__="g", a="b"}"#.to_string(), 0.0)]);
}

#[test]
fn histogram_quantile_ignores_tiny_non_monotonic_deltas_in_3() {
    let w = window();
    let b = |le: &str, v: f64| {
        w.append_samples(&labels(&[("__name__", "h_bucket"), ("le", le)]), [(0, v)]);
    };
    b("1", 10.0);
    b("2", 10.000000000000002); // float noise above the first bucket
    b("3", 20.0);
    b("+Inf", 20.0);
    let q = "histogram_quantile(0.5, h_bucket)";
    // The noise is treated as equal, so rank 10 lands in the first bucket: 0 + 1 * 10/10.
    assert_eq!(single(p3().instant(&w, q, 1000).unwrap()), 1.0);
    assert_eq!(single(p2().instant(&w, q, 1000).unwrap()), 1.0);
    let q = "histogram_quantile(0.75, h_bucket)";
    // Rank 15 in bucket (2, 3]: 2 + (3 - 2) * (15 - c2) / (20 - c2).
    let c2_3 = 10.0f64;
    let c2_2 = 10.000000000000002f64;
    assert_eq!(
        single(p3().instant(&w, q, 1000).unwrap()),
        2.0 + (3.0 - 2.0) * ((15.0 - c2_3) / (20.0 - c2_3))
    );
    assert_eq!(
        single(p2().instant(&w, q, 1000).unwrap()),
        2.0 + (3.0 - 2.0) * ((15.0 - c2_2) / (20.0 - c2_2))
    );
}

#[test]
fn histogram_quantile_treats_le_1_and_1_0_as_one_bucket() {
    let w = window();
    let b = |le: &str, v: f64| {
        w.append_samples(&labels(&[("__name__", "h_bucket"), ("le", le)]), [(0, v)]);
    };
    b("1", 2.0);
    b("1.0", 2.0); // coalesced: same upper bound
    b("+Inf", 8.0);
    assert_eq!(
        single(
            p3().instant(&w, "histogram_quantile(0.25, h_bucket)", 1000)
                .unwrap()
        ),
        0.5
    );
}

#[test]
fn range_query_returns_sorted_matrix_per_step() {
    let w = window();
    w.append_samples(
        &labels(&[("__name__", "m"), ("x", "b")]),
        (0..10).map(|i| (i * 15_000, i as f64)),
    );
    w.append_samples(
        &labels(&[("__name__", "m"), ("x", "a")]),
        (0..10).map(|i| (i * 15_000, 100.0 + i as f64)),
    );
    let v = p3().range(&w, "m * 2", 30_000, 90_000, 30_000).unwrap();
    let Value::Matrix(m) = v else { panic!() };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].labels.to_string(), r#"{x="a"}"#);
    assert_eq!(
        m[0].points,
        vec![(30_000, 204.0), (60_000, 208.0), (90_000, 212.0)]
    );
    assert_eq!(
        m[1].points,
        vec![(30_000, 4.0), (60_000, 8.0), (90_000, 12.0)]
    );
    // A scalar range query gives one series without labels.
    let Value::Matrix(m) = p3().range(&w, "time()", 0, 60_000, 30_000).unwrap() else {
        panic!()
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points, vec![(0, 0.0), (30_000, 30.0), (60_000, 60.0)]);
}

#[test]
fn at_start_and_end_refer_to_the_range_query_bounds() {
    let w = window();
    w.append_samples(
        &labels(&[("__name__", "m")]),
        (0..20).map(|i| (i * 10_000, i as f64)),
    );
    let Value::Matrix(m) = p3()
        .range(&w, "m @ start() + m @ end()", 50_000, 150_000, 50_000)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        m[0].points,
        vec![(50_000, 20.0), (100_000, 20.0), (150_000, 20.0)]
    );
}

#[test]
fn range_query_refuses_range_vectors_and_bad_steps() {
    let w = window();
    assert!(
        p3().range(&w, "m[5m]", 0, 10, 1)
            .unwrap_err()
            .to_string()
            .contains("invalid expression type \"range vector\" for range query")
    );
    assert!(p3().range(&w, "m", 0, 10, 0).is_err());
    assert!(p3().range(&w, "m", 10, 0, 1).is_err());
}

#[test]
fn instant_matrix_and_scalar_and_string_results() {
    let w = window();
    w.append_samples(
        &labels(&[("__name__", "m")]),
        [
            (0, 1.0),
            (30_000, 2.0),
            (60_000, f64::from_bits(STALE_NAN_BITS)),
            (90_000, 3.0),
        ],
    );
    let Value::Matrix(m) = p3().instant(&w, "m[2m]", 100_000).unwrap() else {
        panic!()
    };
    // (-20s, 100s], the staleness marker left out.
    assert_eq!(m[0].points, vec![(0, 1.0), (30_000, 2.0), (90_000, 3.0)]);
    assert_eq!(
        p3().instant(&w, "1 + 1", 5000).unwrap(),
        Value::Scalar(5000, 2.0)
    );
    assert_eq!(
        p3().instant(&w, "\"hi\"", 5000).unwrap(),
        Value::String(5000, "hi".into())
    );
    // Subquery at top level: steps of 30s in (40s, 100s].
    let Value::Matrix(m) = p3().instant(&w, "m[1m:30s]", 100_000).unwrap() else {
        panic!()
    };
    assert_eq!(m[0].points, vec![(90_000, 3.0)]);
}

#[test]
fn staleness_marker_ends_a_series_until_the_next_sample() {
    let w = window();
    w.append_samples(
        &labels(&[("__name__", "m")]),
        [
            (0, 1.0),
            (60_000, f64::from_bits(STALE_NAN_BITS)),
            (120_000, 5.0),
        ],
    );
    assert_eq!(vector(p3().instant(&w, "m", 30_000).unwrap()).len(), 1);
    assert!(vector(p3().instant(&w, "m", 90_000).unwrap()).is_empty());
    assert_eq!(single(p3().instant(&w, "m", 121_000).unwrap()), 5.0);
    // A plain NaN is a value, not a marker.
    w.append_samples(&labels(&[("__name__", "n")]), [(0, f64::NAN)]);
    assert!(single(p3().instant(&w, "n", 1000).unwrap()).is_nan());
}

#[test]
fn errors_have_prometheus_texts() {
    let w = window();
    w.append_samples(&labels(&[("__name__", "a"), ("x", "1")]), [(0, 1.0)]);
    w.append_samples(&labels(&[("__name__", "b"), ("x", "1")]), [(0, 1.0)]);
    let e = |q: &str| p3().instant(&w, q, 1000).unwrap_err().to_string();
    assert_eq!(
        e("{__name__=~\"a|b\"} * 2"),
        "vector cannot contain metrics with the same labelset"
    );
    assert_eq!(
        e("abs({__name__=~\"a|b\"})"),
        "vector cannot contain metrics with the same labelset"
    );
    assert_eq!(
        e("label_replace(a, \"y\", \"$1\", \"x\", \"(\")"),
        "invalid regular expression in label_replace(): ("
    );
    assert_eq!(e("topk(1e100, a)"), "Scalar value 1e+100 overflows int64");
    assert!(matches!(
        p3().instant(&w, "sum(", 0),
        Err(argus_rules::RulesError::Parse(_))
    ));
    // label_replace may set a name 3.x accepts but 2.x does not.
    assert!(
        p3().instant(&w, "label_replace(a, \"1y\", \"v\", \"x\", \".*\")", 1000)
            .is_ok()
    );
    assert_eq!(
        p2().instant(&w, "label_replace(a, \"1y\", \"v\", \"x\", \".*\")", 1000)
            .unwrap_err()
            .to_string(),
        "invalid destination label name in label_replace(): 1y"
    );
}

#[test]
fn subquery_steps_are_aligned_to_absolute_multiples() {
    let w = window();
    w.append_samples(
        &labels(&[("__name__", "m")]),
        (0..100).map(|i| (i * 1000, i as f64)),
    );
    // At 47s, [20s:7s]: multiples of 7s in (27s, 47s] are 28, 35, 42.
    let Value::Matrix(m) = p3().instant(&w, "m[20s:7s]", 47_000).unwrap() else {
        panic!()
    };
    assert_eq!(
        m[0].points,
        vec![(28_000, 28.0), (35_000, 35.0), (42_000, 42.0)]
    );
    // Without a step the default (1m) applies; offset moves the window.
    let Value::Matrix(m) = p3().instant(&w, "m[2m:] offset 10s", 99_000).unwrap() else {
        panic!()
    };
    // Reference time 89s, steps of 60s in (-31s, 89s]: 0s and 60s.
    assert_eq!(m[0].points, vec![(0, 0.0), (60_000, 60.0)]);
}

#[test]
fn or_matchers_select_the_union() {
    let w = window();
    w.append_samples(&labels(&[("__name__", "a"), ("x", "1")]), [(0, 1.0)]);
    w.append_samples(&labels(&[("__name__", "a"), ("x", "2")]), [(0, 2.0)]);
    w.append_samples(&labels(&[("__name__", "a"), ("x", "3")]), [(0, 3.0)]);
    let v = vector(p3().instant(&w, r#"a{x="1" or x="3"}"#, 1000).unwrap());
    assert_eq!(v.len(), 2);
    assert_eq!(v[1].1, 3.0);
}

#[test]
fn window_refuses_out_of_order_duplicate_and_too_old_samples() {
    let w = MetricWindow::new(WindowOptions {
        retention_ms: 60_000,
        shards: 2,
    });
    let l = labels(&[("__name__", "m")]);
    let out = w.append_samples(&l, [(100_000, 1.0), (110_000, 2.0)]);
    assert_eq!(out.appended, 2);
    let out = w.append_samples(&l, [(105_000, 9.0), (110_000, 2.0), (110_000, 3.0)]);
    assert_eq!(out.out_of_order, 1);
    assert_eq!(
        out.duplicate, 1,
        "same value at the same time is ignored silently"
    );
    assert_eq!(out.appended, 0);
    let out = w.append_samples(&l, [(200_000, 4.0)]);
    assert_eq!(out.appended, 1);
    // Retention is 60s behind the newest sample (200s): 100s and 110s are gone.
    assert_eq!(w.sample_count(), 1);
    let out = w.append(&MetricSamples {
        labels: labels(&[("__name__", "m"), ("y", "1")]),
        samples: vec![RawSample {
            timestamp_ms: 120_000,
            value: 1.0,
        }],
    });
    assert_eq!(out.too_old, 1);
    assert_eq!(w.series_count(), 1);
    // Another series stops getting samples and is dropped by gc.
    w.append_samples(&labels(&[("__name__", "z")]), [(150_000, 1.0)]);
    assert_eq!(w.series_count(), 2);
    w.append_samples(&l, [(300_000, 5.0)]);
    w.gc();
    assert_eq!(w.series_count(), 1);
    assert_eq!(w.sample_count(), 1);
    let rejected = argus_rules::metrics::WINDOW_SAMPLES_REJECTED
        .with_label_values(&["out_of_order"])
        .get();
    assert!(rejected >= 1);
}

#[test]
fn window_series_and_label_lookups() {
    let w = window();
    w.append_samples(&labels(&[("__name__", "a"), ("job", "x")]), [(1000, 1.0)]);
    w.append_samples(&labels(&[("__name__", "a"), ("job", "y")]), [(5000, 1.0)]);
    w.append_samples(&labels(&[("__name__", "b"), ("env", "p")]), [(1000, 1.0)]);
    let sel = |q: &str| {
        let Ok(promql_parser::parser::Expr::VectorSelector(vs)) = promql_parser::parser::parse(q)
        else {
            panic!()
        };
        let mut m = vs.matchers.matchers.clone();
        if let Some(n) = vs.name {
            m.push(promql_parser::label::Matcher::new(
                promql_parser::label::MatchOp::Equal,
                "__name__",
                &n,
            ));
        }
        m
    };
    let s = w.series(&[sel("a")], 0, 2000);
    assert_eq!(s, vec![labels(&[("__name__", "a"), ("job", "x")])]);
    assert_eq!(
        w.label_names(&[], 0, 10_000),
        vec!["__name__", "env", "job"]
    );
    assert_eq!(w.label_values("job", &[], 0, 10_000), vec!["x", "y"]);
    assert_eq!(
        w.label_values("job", &[sel("{job=~\"y|z\"}")], 0, 10_000),
        vec!["y"]
    );
    assert_eq!(
        w.label_values("__name__", &[sel("{job!=\"\"}")], 0, 10_000),
        vec!["a"]
    );
}

#[test]
fn window_reads_concurrently_with_appends() {
    let w = std::sync::Arc::new(window());
    let writer = {
        let w = w.clone();
        std::thread::spawn(move || {
            for i in 0..2000i64 {
                w.append_samples(
                    &labels(&[("__name__", "c"), ("i", &(i % 50).to_string())]),
                    [(i * 1000, i as f64)],
                );
            }
        })
    };
    let engine = p3();
    for _ in 0..50 {
        let v = engine.instant(&*w, "count(c)", 2_000_000).unwrap();
        let Value::Vector(v) = v else { panic!() };
        assert!(v.len() <= 1);
    }
    writer.join().unwrap();
    assert_eq!(
        single(engine.instant(&*w, "count(c)", 2_000_000).unwrap()),
        50.0
    );
}

#[test]
fn ten_thousand_series_evaluate_quickly() {
    let w = window();
    for i in 0..10_000 {
        let l = labels(&[
            ("__name__", "req_total"),
            ("instance", &format!("i{i}")),
            ("job", &format!("j{}", i % 10)),
        ]);
        w.append_samples(&l, (0..20).map(|k| (k * 15_000, (k * (i % 7 + 1)) as f64)));
    }
    let engine = p3();
    let start = Instant::now();
    let v = engine
        .instant(
            &w,
            "sum by (job) (rate(req_total[5m])) / on(job) group_left count by (job) (req_total)",
            290_000,
        )
        .unwrap();
    let joined = engine
        .instant(&w, "req_total / on(instance, job) req_total", 290_000)
        .unwrap();
    let took = start.elapsed();
    assert_eq!(vector(v).len(), 10);
    assert_eq!(vector(joined).len(), 10_000);
    assert!(took.as_secs_f64() < 5.0, "took {took:?}");
}

#[test]
fn format_value_is_prometheus_json_text() {
    assert_eq!(format_value(0.1 + 0.2), "0.30000000000000004");
    assert_eq!(format_value(1e-3), "0.001");
    assert_eq!(format_value(123456789.0), "123456789");
    assert_eq!(format_value(f64::from_bits(STALE_NAN_BITS)), "NaN");
}
