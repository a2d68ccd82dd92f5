//! LogQL parser tests: valid queries → the expected syntax tree, invalid ones → Loki's
//! error text (position included). The syntax-error texts were checked against Loki's
//! own goyacc parser tables (token names, the "expecting" lists of at most four
//! tokens, 1-based line/column of the offending token).

use argus_query::QueryError;
use argus_query::logql::ast::*;
use argus_query::logql::parse;

const S: i64 = 1_000_000_000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

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

fn log(selector: Vec<LabelMatcher>, pipeline: Vec<Stage>) -> LogExpr {
    LogExpr { selector, pipeline }
}

fn parse_log(q: &str) -> LogExpr {
    match parse(q) {
        Ok(Expr::Log(l)) => l,
        other => panic!("{q}: expected a log query, got {other:?}"),
    }
}

fn parse_metric(q: &str) -> MetricExpr {
    match parse(q) {
        Ok(Expr::Metric(m)) => m,
        other => panic!("{q}: expected a metric query, got {other:?}"),
    }
}

fn stages(q: &str) -> Vec<Stage> {
    parse_log(q).pipeline
}

fn one_filter(q: &str) -> LabelFilterExpr {
    match stages(q).as_slice() {
        [Stage::LabelFilter(f)] => f.clone(),
        other => panic!("{q}: expected one label filter, got {other:?}"),
    }
}

fn err(q: &str) -> String {
    match parse(q) {
        Ok(e) => panic!("{q}: expected an error, parsed {e:?}"),
        Err(e) => e.to_string(),
    }
}

fn contains(s: &str) -> Stage {
    Stage::LineFilter(LineFilter {
        op: LineFilterOp::Contains,
        values: vec![FilterValue::Literal(s.into())],
    })
}

fn sfilter(name: &str, op: MatchOp, value: &str) -> LabelFilterExpr {
    LabelFilterExpr::String(m(name, op, value))
}

fn num(name: &str, op: CmpOp, value: f64) -> LabelFilterExpr {
    LabelFilterExpr::Number {
        name: name.into(),
        op,
        value,
    }
}

fn and(a: LabelFilterExpr, b: LabelFilterExpr) -> LabelFilterExpr {
    LabelFilterExpr::And(Box::new(a), Box::new(b))
}

fn or(a: LabelFilterExpr, b: LabelFilterExpr) -> LabelFilterExpr {
    LabelFilterExpr::Or(Box::new(a), Box::new(b))
}

fn range(selector: Vec<LabelMatcher>, pipeline: Vec<Stage>, range: i64) -> LogRange {
    LogRange {
        log: log(selector, pipeline),
        unwrap: None,
        range,
        offset: 0,
    }
}

fn count(q_range: LogRange) -> MetricExpr {
    MetricExpr::RangeAgg {
        op: RangeOp::CountOverTime,
        range: q_range,
        param: None,
        grouping: None,
    }
}

fn rate_ab() -> MetricExpr {
    MetricExpr::RangeAgg {
        op: RangeOp::Rate,
        range: range(vec![eq("a", "b")], vec![], 5 * M),
        param: None,
        grouping: None,
    }
}

fn bin(op: BinOp, lhs: MetricExpr, rhs: MetricExpr) -> MetricExpr {
    MetricExpr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        modifier: BinModifier::default(),
    }
}

fn unwrap(label: &str, conv: UnwrapConv) -> Option<Unwrap> {
    Some(Unwrap {
        label: label.into(),
        conv,
        post_filters: vec![],
    })
}

// ---------------------------------------------------------------- selectors

#[test]
fn selector_matchers() {
    assert_eq!(
        parse_log(r#"{app="foo", env!="dev", pod=~"api-.+", ns!~"kube.*"}"#),
        log(
            vec![
                eq("app", "foo"),
                m("env", MatchOp::Neq, "dev"),
                m("pod", MatchOp::Re, "api-.+"),
                m("ns", MatchOp::Nre, "kube.*"),
            ],
            vec![]
        )
    );
    assert_eq!(
        parse_log(r#"{ app = "foo" }"#),
        log(vec![eq("app", "foo")], vec![])
    );
}

#[test]
fn selector_strings_unescape() {
    assert_eq!(
        parse_log(r#"{a="x\"y\\z\n\t\u00e9\101"}"#).selector,
        vec![eq("a", "x\"y\\z\n\t\u{e9}A")]
    );
    assert_eq!(
        parse_log(r#"{a=`raw\d+"`}"#).selector,
        vec![eq("a", "raw\\d+\"")]
    );
    assert_eq!(
        parse_log("{a=\"é\", b=`multi\nline`}").selector,
        vec![eq("a", "é"), eq("b", "multi\nline")]
    );
}

#[test]
fn keywords_are_case_insensitive_and_functions_can_be_label_names() {
    assert_eq!(
        parse_log(r#"{sum="1", rate="2", bytes="3"}"#).selector,
        vec![eq("sum", "1"), eq("rate", "2"), eq("bytes", "3")]
    );
    assert_eq!(
        stages(r#"{a="b"} | JSON | LOGFMT"#),
        vec![
            Stage::Parser(Parser::Json(vec![])),
            Stage::Parser(Parser::Logfmt {
                strict: false,
                keep_empty: false,
                params: vec![]
            })
        ]
    );
    assert_eq!(
        parse_metric(r#"SUM BY (a) (RATE({a="b"}[5m]))"#),
        MetricExpr::VectorAgg {
            op: VectorOp::Sum,
            expr: Box::new(rate_ab()),
            grouping: Some(Grouping {
                without: false,
                labels: vec!["a".into()]
            }),
            param: None,
        }
    );
}

#[test]
fn comments_and_whitespace() {
    assert_eq!(
        parse_log("# leading comment\n{a=\"b\"} # trailing\n  |= \"x\" # another\n"),
        log(vec![eq("a", "b")], vec![contains("x")])
    );
    assert_eq!(
        parse_log("{a=\"b\"}\t|=\r\n\"x\""),
        log(vec![eq("a", "b")], vec![contains("x")])
    );
}

// ---------------------------------------------------------------- line filters

#[test]
fn line_filters_all_operators() {
    let got = stages(r#"{a="b"} |= "a" != "b" |~ "c" !~ "d" |> "<_> e" !> "f""#);
    let ops: Vec<LineFilterOp> = got
        .iter()
        .map(|s| match s {
            Stage::LineFilter(f) => f.op,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            LineFilterOp::Contains,
            LineFilterOp::NotContains,
            LineFilterOp::Regex,
            LineFilterOp::NotRegex,
            LineFilterOp::Pattern,
            LineFilterOp::NotPattern
        ]
    );
    assert_eq!(
        got[4],
        Stage::LineFilter(LineFilter {
            op: LineFilterOp::Pattern,
            values: vec![FilterValue::Literal("<_> e".into())]
        })
    );
}

#[test]
fn line_filter_or_alternatives_and_ip() {
    assert_eq!(
        stages(r#"{a="b"} |= "x" or "y" or ip("10.0.0.0/8") != ip("::1") or `z`"#),
        vec![
            Stage::LineFilter(LineFilter {
                op: LineFilterOp::Contains,
                values: vec![
                    FilterValue::Literal("x".into()),
                    FilterValue::Literal("y".into()),
                    FilterValue::Ip("10.0.0.0/8".into()),
                ]
            }),
            Stage::LineFilter(LineFilter {
                op: LineFilterOp::NotContains,
                values: vec![
                    FilterValue::Ip("::1".into()),
                    FilterValue::Literal("z".into())
                ]
            }),
        ]
    );
}

#[test]
fn line_filter_ip_needs_equality_operators() {
    let e = parse(r#"{a="b"} |~ ip("1.2.3.4")"#).unwrap_err();
    assert!(matches!(e, QueryError::Invalid(_)), "{e:?}");
    assert_eq!(e.to_string(), "ip: invalid operation");
}

// ---------------------------------------------------------------- parsers

#[test]
fn parser_stages() {
    assert_eq!(
        stages(
            r#"{a="b"} | json | json first="a.b[0]", second | logfmt --strict --keep-empty x="y", z | logfmt --keep-empty | regexp "(?P<ip>\\S+) (?P<rest>.*)" | pattern "<ip> - <_>" | unpack"#
        ),
        vec![
            Stage::Parser(Parser::Json(vec![])),
            Stage::Parser(Parser::Json(vec![
                ExtractParam {
                    label: "first".into(),
                    expression: "a.b[0]".into()
                },
                ExtractParam {
                    label: "second".into(),
                    expression: "second".into()
                },
            ])),
            Stage::Parser(Parser::Logfmt {
                strict: true,
                keep_empty: true,
                params: vec![
                    ExtractParam {
                        label: "x".into(),
                        expression: "y".into()
                    },
                    ExtractParam {
                        label: "z".into(),
                        expression: "z".into()
                    },
                ]
            }),
            Stage::Parser(Parser::Logfmt {
                strict: false,
                keep_empty: true,
                params: vec![]
            }),
            Stage::Parser(Parser::Regexp(r"(?P<ip>\S+) (?P<rest>.*)".into())),
            Stage::Parser(Parser::Pattern("<ip> - <_>".into())),
            Stage::Parser(Parser::Unpack),
        ]
    );
}

#[test]
fn format_drop_keep_decolorize() {
    assert_eq!(
        stages(
            r#"{a="b"} | line_format "{{.msg}}" | label_format dst=src, t="{{.a}}-{{.b}}" | drop x, y="1", z=~"a.*" | keep w, v!="2" | decolorize"#
        ),
        vec![
            Stage::LineFormat("{{.msg}}".into()),
            Stage::LabelFormat(vec![
                LabelFmt::Rename {
                    dst: "dst".into(),
                    src: "src".into()
                },
                LabelFmt::Template {
                    dst: "t".into(),
                    template: "{{.a}}-{{.b}}".into()
                },
            ]),
            Stage::Drop(vec![
                LabelSelect::Name("x".into()),
                LabelSelect::Matcher(eq("y", "1")),
                LabelSelect::Matcher(m("z", MatchOp::Re, "a.*")),
            ]),
            Stage::Keep(vec![
                LabelSelect::Name("w".into()),
                LabelSelect::Matcher(m("v", MatchOp::Neq, "2")),
            ]),
            Stage::Decolorize,
        ]
    );
}

// ---------------------------------------------------------------- label filters

#[test]
fn label_filter_string_and_number() {
    assert_eq!(
        one_filter(r#"{a="b"} | level="error""#),
        sfilter("level", MatchOp::Eq, "error")
    );
    assert_eq!(
        one_filter(r#"{a="b"} | level=~"err|warn""#),
        sfilter("level", MatchOp::Re, "err|warn")
    );
    assert_eq!(
        one_filter(r#"{a="b"} | level!~"debug""#),
        sfilter("level", MatchOp::Nre, "debug")
    );
    assert_eq!(
        one_filter(r#"{a="b"} | status >= 500"#),
        num("status", CmpOp::Gte, 500.0)
    );
    assert_eq!(
        one_filter(r#"{a="b"} | x == 2.5"#),
        num("x", CmpOp::Eq, 2.5)
    );
    assert_eq!(one_filter(r#"{a="b"} | x = 3"#), num("x", CmpOp::Eq, 3.0));
    assert_eq!(
        one_filter(r#"{a="b"} | x != -1"#),
        num("x", CmpOp::Neq, -1.0)
    );
    assert_eq!(
        one_filter(r#"{a="b"} | x < 1e3"#),
        num("x", CmpOp::Lt, 1000.0)
    );
    assert_eq!(
        one_filter(r#"{a="b"} | x <= .5"#),
        num("x", CmpOp::Lte, 0.5)
    );
    assert_eq!(one_filter(r#"{a="b"} | x > +2"#), num("x", CmpOp::Gt, 2.0));
    assert_eq!(
        one_filter(r#"{a="b"} | x > 1.5E-2"#),
        num("x", CmpOp::Gt, 0.015)
    );
}

#[test]
fn label_filter_durations() {
    let d = |op: CmpOp, value: f64| LabelFilterExpr::Duration {
        name: "d".into(),
        op,
        value,
    };
    assert_eq!(one_filter(r#"{a="b"} | d > 1s"#), d(CmpOp::Gt, 1.0));
    assert_eq!(one_filter(r#"{a="b"} | d >= 250ms"#), d(CmpOp::Gte, 0.25));
    assert_eq!(one_filter(r#"{a="b"} | d < 1.5s"#), d(CmpOp::Lt, 1.5));
    assert_eq!(one_filter(r#"{a="b"} | d <= 1h2m"#), d(CmpOp::Lte, 3720.0));
    assert_eq!(one_filter(r#"{a="b"} | d == 10us"#), d(CmpOp::Eq, 10e-6));
    assert_eq!(one_filter(r#"{a="b"} | d = 5µs"#), d(CmpOp::Eq, 5e-6));
    assert_eq!(one_filter(r#"{a="b"} | d != 100ns"#), d(CmpOp::Neq, 100e-9));
    assert_eq!(one_filter(r#"{a="b"} | d > 1d"#), d(CmpOp::Gt, 86400.0));
    assert_eq!(one_filter(r#"{a="b"} | d > -5m"#), d(CmpOp::Gt, -300.0));
}

#[test]
fn label_filter_bytes() {
    let b = |op: CmpOp, value: f64| LabelFilterExpr::Bytes {
        name: "size".into(),
        op,
        value,
    };
    assert_eq!(one_filter(r#"{a="b"} | size > 1KB"#), b(CmpOp::Gt, 1000.0));
    assert_eq!(one_filter(r#"{a="b"} | size > 1kB"#), b(CmpOp::Gt, 1000.0));
    assert_eq!(
        one_filter(r#"{a="b"} | size >= 20MiB"#),
        b(CmpOp::Gte, 20.0 * 1024.0 * 1024.0)
    );
    assert_eq!(one_filter(r#"{a="b"} | size < 1.5GB"#), b(CmpOp::Lt, 1.5e9));
    assert_eq!(one_filter(r#"{a="b"} | size == 5B"#), b(CmpOp::Eq, 5.0));
    assert_eq!(one_filter(r#"{a="b"} | size = 2Ki"#), b(CmpOp::Eq, 2048.0));
    assert_eq!(one_filter(r#"{a="b"} | size != 3TB"#), b(CmpOp::Neq, 3e12));
}

#[test]
fn label_filter_ip() {
    assert_eq!(
        one_filter(r#"{a="b"} | addr = ip("192.168.0.0/16")"#),
        LabelFilterExpr::Ip {
            name: "addr".into(),
            negate: false,
            pattern: "192.168.0.0/16".into()
        }
    );
    assert_eq!(
        one_filter(r#"{a="b"} | addr != ip("10.0.0.1-10.0.0.9")"#),
        LabelFilterExpr::Ip {
            name: "addr".into(),
            negate: true,
            pattern: "10.0.0.1-10.0.0.9".into()
        }
    );
}

#[test]
fn label_filter_precedence() {
    let a = || sfilter("a", MatchOp::Eq, "1");
    let b = || sfilter("b", MatchOp::Eq, "2");
    let c = || sfilter("c", MatchOp::Eq, "3");
    // and binds tighter than or
    assert_eq!(
        one_filter(r#"{x="y"} | a="1" or b="2" and c="3""#),
        or(a(), and(b(), c()))
    );
    assert_eq!(
        one_filter(r#"{x="y"} | a="1" and b="2" or c="3""#),
        or(and(a(), b()), c())
    );
    // parentheses
    assert_eq!(
        one_filter(r#"{x="y"} | (a="1" or b="2") and c="3""#),
        and(or(a(), b()), c())
    );
    // or is left-associative
    assert_eq!(
        one_filter(r#"{x="y"} | a="1" or b="2" or c="3""#),
        or(or(a(), b()), c())
    );
    // a comma or a space joins with everything after it
    assert_eq!(
        one_filter(r#"{x="y"} | a="1", b="2" or c="3""#),
        and(a(), or(b(), c()))
    );
    assert_eq!(
        one_filter(r#"{x="y"} | a="1" b="2" or c="3""#),
        and(a(), or(b(), c()))
    );
    assert_eq!(
        one_filter(r#"{x="y"} | a="1" or b="2", c="3""#),
        or(a(), and(b(), c()))
    );
    assert_eq!(
        one_filter(r#"{x="y"} | a="1" , b="2" , c="3""#),
        and(a(), and(b(), c()))
    );
}

#[test]
fn label_filter_mixed_kinds() {
    assert_eq!(
        one_filter(r#"{x="y"} | duration >= 20ms or method="GET" and size <= 20KB"#),
        or(
            LabelFilterExpr::Duration {
                name: "duration".into(),
                op: CmpOp::Gte,
                value: 0.02
            },
            and(
                sfilter("method", MatchOp::Eq, "GET"),
                LabelFilterExpr::Bytes {
                    name: "size".into(),
                    op: CmpOp::Lte,
                    value: 20000.0
                }
            )
        )
    );
}

#[test]
fn long_label_filter_chains() {
    let chain = |n: usize| format!("{{a=\"b\"}} | {}", vec!["x=\"v\""; n].join(", "));
    let f = one_filter(&chain(1000));
    let mut depth = 0;
    let mut cur = &f;
    while let LabelFilterExpr::And(l, r) = cur {
        assert_eq!(**l, sfilter("x", MatchOp::Eq, "v"));
        depth += 1;
        cur = r;
    }
    assert_eq!(depth, 999);
    // longer chains would nest the tree too deeply for later passes
    let e = err(&chain(5000));
    assert!(
        e.ends_with("syntax error: expression nests too deeply"),
        "{e}"
    );
    let ors = format!("{{a=\"b\"}} | {}", vec!["x=\"v\""; 5000].join(" or "));
    assert!(err(&ors).ends_with("nests too deeply"));
    let sum = vec![r#"rate({a="b"}[1m])"#; 3000].join(" + ");
    assert!(err(&sum).ends_with("nests too deeply"));
}

// ---------------------------------------------------------------- range aggregations

#[test]
fn range_after_selector_or_after_pipeline() {
    let want = count(range(vec![eq("a", "b")], vec![contains("x")], 5 * M));
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"} |= "x" [5m])"#),
        want
    );
    assert_eq!(parse_metric(r#"count_over_time({a="b"}[5m] |= "x")"#), want);
    assert_eq!(
        parse_metric(r#"count_over_time(({a="b"} |= "x")[5m])"#),
        want
    );
    assert_eq!(
        parse_metric(r#"count_over_time(({a="b"}[5m] |= "x"))"#),
        want
    );
}

#[test]
fn range_durations_and_offset() {
    let with = |r: i64, offset: i64| {
        count(LogRange {
            offset,
            ..range(vec![eq("a", "b")], vec![], r)
        })
    };
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"}[1h30m])"#),
        with(90 * M, 0)
    );
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"}[250ms])"#),
        with(250_000_000, 0)
    );
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"}[2d])"#),
        with(48 * H, 0)
    );
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"}[1w])"#),
        with(7 * 24 * H, 0)
    );
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"}[1y])"#),
        with(365 * 24 * H, 0)
    );
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"}[5m] offset 1h)"#),
        with(5 * M, H)
    );
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"}[5m] offset -30s)"#),
        with(5 * M, -30 * S)
    );
    assert_eq!(
        parse_metric(r#"count_over_time({a="b"} | json [5m] offset 1.5h)"#),
        count(LogRange {
            offset: 90 * M,
            ..range(
                vec![eq("a", "b")],
                vec![Stage::Parser(Parser::Json(vec![]))],
                5 * M
            )
        })
    );
}

#[test]
fn all_range_operations() {
    let plain = [
        ("count_over_time", RangeOp::CountOverTime),
        ("rate", RangeOp::Rate),
        ("bytes_over_time", RangeOp::BytesOverTime),
        ("bytes_rate", RangeOp::BytesRate),
        ("absent_over_time", RangeOp::AbsentOverTime),
    ];
    for (name, op) in plain {
        let q = format!(r#"{name}({{a="b"}}[1m])"#);
        match parse_metric(&q) {
            MetricExpr::RangeAgg { op: got, .. } => assert_eq!(got, op, "{q}"),
            other => panic!("{q}: {other:?}"),
        }
    }
    let unwrapped = [
        ("rate", RangeOp::Rate),
        ("rate_counter", RangeOp::RateCounter),
        ("sum_over_time", RangeOp::SumOverTime),
        ("avg_over_time", RangeOp::AvgOverTime),
        ("min_over_time", RangeOp::MinOverTime),
        ("max_over_time", RangeOp::MaxOverTime),
        ("stddev_over_time", RangeOp::StddevOverTime),
        ("stdvar_over_time", RangeOp::StdvarOverTime),
        ("first_over_time", RangeOp::FirstOverTime),
        ("last_over_time", RangeOp::LastOverTime),
        ("absent_over_time", RangeOp::AbsentOverTime),
    ];
    for (name, op) in unwrapped {
        let q = format!(r#"{name}({{a="b"}} | unwrap latency [1m])"#);
        match parse_metric(&q) {
            MetricExpr::RangeAgg { op: got, range, .. } => {
                assert_eq!(got, op, "{q}");
                assert_eq!(range.unwrap, unwrap("latency", UnwrapConv::None), "{q}");
            }
            other => panic!("{q}: {other:?}"),
        }
    }
}

#[test]
fn unwrap_conversions_and_post_filters() {
    let q = r#"sum_over_time({a="b"} | logfmt | unwrap bytes(size) | __error__="" [5m])"#;
    match parse_metric(q) {
        MetricExpr::RangeAgg { range, .. } => {
            assert_eq!(
                range.log.pipeline,
                vec![Stage::Parser(Parser::Logfmt {
                    strict: false,
                    keep_empty: false,
                    params: vec![]
                })]
            );
            assert_eq!(
                range.unwrap,
                Some(Unwrap {
                    label: "size".into(),
                    conv: UnwrapConv::Bytes,
                    post_filters: vec![sfilter("__error__", MatchOp::Eq, "")]
                })
            );
        }
        other => panic!("{other:?}"),
    }
    for (q, conv) in [
        (
            r#"avg_over_time({a="b"} | unwrap duration(d) [1m])"#,
            UnwrapConv::Duration,
        ),
        (
            r#"avg_over_time({a="b"} | unwrap duration_seconds(d) [1m])"#,
            UnwrapConv::Duration,
        ),
        (
            r#"avg_over_time({a="b"} | unwrap d [1m])"#,
            UnwrapConv::None,
        ),
        (r#"avg_over_time({a="b"}[1m] | unwrap d)"#, UnwrapConv::None),
    ] {
        match parse_metric(q) {
            MetricExpr::RangeAgg { range, .. } => {
                assert_eq!(range.unwrap, unwrap("d", conv), "{q}")
            }
            other => panic!("{q}: {other:?}"),
        }
    }
    // `bytes` without parentheses is a label name
    match parse_metric(r#"sum_over_time({a="b"} | unwrap bytes [1m])"#) {
        MetricExpr::RangeAgg { range, .. } => {
            assert_eq!(range.unwrap, unwrap("bytes", UnwrapConv::None))
        }
        other => panic!("{other:?}"),
    }
    // two post filters, and a range before the pipeline with an offset
    match parse_metric(r#"max_over_time({a="b"}[5m] offset 1m | json | unwrap x | x > 1 | y="z")"#)
    {
        MetricExpr::RangeAgg { range, .. } => {
            assert_eq!(range.offset, M);
            let u = range.unwrap.unwrap();
            assert_eq!(
                u.post_filters,
                vec![num("x", CmpOp::Gt, 1.0), sfilter("y", MatchOp::Eq, "z")]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn quantile_and_range_grouping() {
    assert_eq!(
        parse_metric(r#"quantile_over_time(0.99, {a="b"} | unwrap latency [5m]) by (path, code)"#),
        MetricExpr::RangeAgg {
            op: RangeOp::QuantileOverTime,
            range: LogRange {
                unwrap: unwrap("latency", UnwrapConv::None),
                ..range(vec![eq("a", "b")], vec![], 5 * M)
            },
            param: Some(0.99),
            grouping: Some(Grouping {
                without: false,
                labels: vec!["path".into(), "code".into()]
            }),
        }
    );
    match parse_metric(r#"avg_over_time({a="b"} | unwrap x [5m]) without (pod)"#) {
        MetricExpr::RangeAgg { grouping, .. } => assert_eq!(
            grouping,
            Some(Grouping {
                without: true,
                labels: vec!["pod".into()]
            })
        ),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- vector aggregations

#[test]
fn vector_aggregations_grouping_before_or_after() {
    let by_a = Some(Grouping {
        without: false,
        labels: vec!["a".into()],
    });
    let want = MetricExpr::VectorAgg {
        op: VectorOp::Sum,
        expr: Box::new(rate_ab()),
        grouping: by_a.clone(),
        param: None,
    };
    assert_eq!(parse_metric(r#"sum by (a) (rate({a="b"}[5m]))"#), want);
    assert_eq!(parse_metric(r#"sum(rate({a="b"}[5m])) by (a)"#), want);
    assert_eq!(
        parse_metric(r#"sum without () (rate({a="b"}[5m]))"#),
        MetricExpr::VectorAgg {
            op: VectorOp::Sum,
            expr: Box::new(rate_ab()),
            grouping: Some(Grouping {
                without: true,
                labels: vec![]
            }),
            param: None,
        }
    );
    for (name, op) in [
        ("avg", VectorOp::Avg),
        ("min", VectorOp::Min),
        ("max", VectorOp::Max),
        ("count", VectorOp::Count),
        ("stddev", VectorOp::Stddev),
        ("stdvar", VectorOp::Stdvar),
        ("sort", VectorOp::Sort),
        ("sort_desc", VectorOp::SortDesc),
    ] {
        let q = format!(r#"{name}(rate({{a="b"}}[5m]))"#);
        assert_eq!(
            parse_metric(&q),
            MetricExpr::VectorAgg {
                op,
                expr: Box::new(rate_ab()),
                grouping: None,
                param: None
            },
            "{q}"
        );
    }
}

#[test]
fn topk_bottomk() {
    assert_eq!(
        parse_metric(r#"topk(3, rate({a="b"}[5m]))"#),
        MetricExpr::VectorAgg {
            op: VectorOp::Topk,
            expr: Box::new(rate_ab()),
            grouping: None,
            param: Some(3.0)
        }
    );
    assert_eq!(
        parse_metric(r#"bottomk by (a) (10, rate({a="b"}[5m]))"#),
        MetricExpr::VectorAgg {
            op: VectorOp::Bottomk,
            expr: Box::new(rate_ab()),
            grouping: Some(Grouping {
                without: false,
                labels: vec!["a".into()]
            }),
            param: Some(10.0)
        }
    );
}

#[test]
fn nested_aggregations() {
    assert_eq!(
        parse_metric(r#"max(sum by (a) (count_over_time({a="b"}[1m])))"#),
        MetricExpr::VectorAgg {
            op: VectorOp::Max,
            expr: Box::new(MetricExpr::VectorAgg {
                op: VectorOp::Sum,
                expr: Box::new(count(range(vec![eq("a", "b")], vec![], M))),
                grouping: Some(Grouping {
                    without: false,
                    labels: vec!["a".into()]
                }),
                param: None
            }),
            grouping: None,
            param: None
        }
    );
}

// ---------------------------------------------------------------- binary operators

#[test]
fn binary_precedence() {
    // a + b * c  →  a + (b * c)
    assert_eq!(
        parse_metric(r#"rate({a="b"}[5m]) + rate({a="b"}[5m]) * 2"#),
        bin(
            BinOp::Add,
            rate_ab(),
            bin(BinOp::Mul, rate_ab(), MetricExpr::Literal(2.0))
        )
    );
    // a - b - c  →  (a - b) - c
    assert_eq!(
        parse_metric(r#"rate({a="b"}[5m]) - 1 - rate({a="b"}[5m])"#),
        bin(
            BinOp::Sub,
            bin(BinOp::Sub, rate_ab(), MetricExpr::Literal(1.0)),
            rate_ab()
        )
    );
    // ^ is right-associative
    assert_eq!(
        parse_metric(r#"rate({a="b"}[5m]) ^ 2 ^ rate({a="b"}[5m])"#),
        bin(
            BinOp::Pow,
            rate_ab(),
            bin(BinOp::Pow, MetricExpr::Literal(2.0), rate_ab())
        )
    );
    // comparison below arithmetic, and below comparison, or lowest
    assert_eq!(
        parse_metric(
            r#"rate({a="b"}[5m]) > 1 + 1 and rate({a="b"}[5m]) or rate({a="b"}[5m]) unless rate({a="b"}[5m])"#
        ),
        bin(
            BinOp::Or,
            bin(
                BinOp::And,
                bin(BinOp::Gt, rate_ab(), MetricExpr::Literal(2.0)),
                rate_ab()
            ),
            bin(BinOp::Unless, rate_ab(), rate_ab())
        )
    );
    // parentheses
    assert_eq!(
        parse_metric(r#"(rate({a="b"}[5m]) + 1) % 3"#),
        bin(
            BinOp::Mod,
            bin(BinOp::Add, rate_ab(), MetricExpr::Literal(1.0)),
            MetricExpr::Literal(3.0)
        )
    );
}

#[test]
fn binary_operator_kinds() {
    for (sym, op) in [
        ("+", BinOp::Add),
        ("-", BinOp::Sub),
        ("*", BinOp::Mul),
        ("/", BinOp::Div),
        ("%", BinOp::Mod),
        ("^", BinOp::Pow),
        ("==", BinOp::Eq),
        ("!=", BinOp::Neq),
        (">", BinOp::Gt),
        (">=", BinOp::Gte),
        ("<", BinOp::Lt),
        ("<=", BinOp::Lte),
        ("and", BinOp::And),
        ("or", BinOp::Or),
        ("unless", BinOp::Unless),
    ] {
        let q = format!(r#"rate({{a="b"}}[5m]) {sym} rate({{a="b"}}[5m])"#);
        assert_eq!(parse_metric(&q), bin(op, rate_ab(), rate_ab()), "{q}");
    }
}

#[test]
fn binary_modifiers() {
    let with = |op: BinOp, modifier: BinModifier| MetricExpr::Binary {
        op,
        lhs: Box::new(rate_ab()),
        rhs: Box::new(rate_ab()),
        modifier,
    };
    assert_eq!(
        parse_metric(r#"rate({a="b"}[5m]) > bool rate({a="b"}[5m])"#),
        with(
            BinOp::Gt,
            BinModifier {
                return_bool: true,
                ..Default::default()
            }
        )
    );
    assert_eq!(
        parse_metric(r#"rate({a="b"}[5m]) / on(a, b) rate({a="b"}[5m])"#),
        with(
            BinOp::Div,
            BinModifier {
                matching: Some(VectorMatching::On(vec!["a".into(), "b".into()])),
                ..Default::default()
            }
        )
    );
    assert_eq!(
        parse_metric(r#"rate({a="b"}[5m]) * ignoring(c) group_left(d) rate({a="b"}[5m])"#),
        with(
            BinOp::Mul,
            BinModifier {
                return_bool: false,
                matching: Some(VectorMatching::Ignoring(vec!["c".into()])),
                group: Some(GroupSide::Left(vec!["d".into()])),
            }
        )
    );
    assert_eq!(
        parse_metric(r#"rate({a="b"}[5m]) == bool on() group_right rate({a="b"}[5m])"#),
        with(
            BinOp::Eq,
            BinModifier {
                return_bool: true,
                matching: Some(VectorMatching::On(vec![])),
                group: Some(GroupSide::Right(vec![])),
            }
        )
    );
}

#[test]
fn literals_fold() {
    assert_eq!(parse_metric("1"), MetricExpr::Literal(1.0));
    assert_eq!(parse_metric("-2.5"), MetricExpr::Literal(-2.5));
    assert_eq!(parse_metric("+3"), MetricExpr::Literal(3.0));
    assert_eq!(parse_metric("1e3"), MetricExpr::Literal(1000.0));
    assert_eq!(parse_metric("1 + 2 * 3"), MetricExpr::Literal(7.0));
    assert_eq!(parse_metric("2 ^ 3 ^ 2"), MetricExpr::Literal(512.0));
    assert_eq!(parse_metric("(1 - -1) / 4"), MetricExpr::Literal(0.5));
    assert_eq!(parse_metric("7 % 4"), MetricExpr::Literal(3.0));
    assert_eq!(parse_metric("2 > 1"), MetricExpr::Literal(1.0));
    assert_eq!(parse_metric("2 < bool 1"), MetricExpr::Literal(0.0));
    match parse_metric("1 / 0") {
        MetricExpr::Literal(v) => assert!(v.is_nan()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_metric(r#"rate({a="b"}[5m]) * -1"#),
        bin(BinOp::Mul, rate_ab(), MetricExpr::Literal(-1.0))
    );
}

#[test]
fn vector_and_label_replace() {
    assert_eq!(parse_metric("vector(1)"), MetricExpr::Vector(1.0));
    assert_eq!(
        parse_metric(r#"sum(count_over_time({a="b"}[1m])) or vector(0)"#),
        bin(
            BinOp::Or,
            MetricExpr::VectorAgg {
                op: VectorOp::Sum,
                expr: Box::new(count(range(vec![eq("a", "b")], vec![], M))),
                grouping: None,
                param: None
            },
            MetricExpr::Vector(0.0)
        )
    );
    assert_eq!(
        parse_metric(r#"label_replace(rate({a="b"}[5m]), "dst", "$1", "src", "(.*)-x")"#),
        MetricExpr::LabelReplace {
            expr: Box::new(rate_ab()),
            dst: "dst".into(),
            replacement: "$1".into(),
            src: "src".into(),
            regex: "(.*)-x".into()
        }
    );
}

#[test]
fn parenthesised_log_query() {
    assert_eq!(
        parse_log(r#"(({a="b"} |= "x"))"#),
        log(vec![eq("a", "b")], vec![contains("x")])
    );
}

#[test]
fn multiline_query() {
    let q = "sum by (level) (\n  count_over_time(\n    {app=\"api\"}\n      | json\n      | level=~\"err.*\"\n    [5m]\n  )\n)";
    match parse_metric(q) {
        MetricExpr::VectorAgg { expr, .. } => match *expr {
            MetricExpr::RangeAgg { range, .. } => {
                assert_eq!(range.range, 5 * M);
                assert_eq!(range.log.pipeline.len(), 2);
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- errors

/// Syntax errors, with the text and position Loki's parser gives.
const SYNTAX_ERRORS: &[(&str, &str)] = &[
    (
        r#"{foo="bar""#,
        r#"parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,"#,
    ),
    (
        r#"{foo="bar"} |~"#,
        r#"parse error at line 1, col 15: syntax error: unexpected $end, expecting STRING or ip"#,
    ),
    (
        r#"{foo="bar"} "foo""#,
        r#"parse error at line 1, col 13: syntax error: unexpected STRING"#,
    ),
    (
        r#"{foo="bar"} foo"#,
        r#"parse error at line 1, col 13: syntax error: unexpected IDENTIFIER"#,
    ),
    (
        r#"{app=foo}"#,
        r#"parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING"#,
    ),
    (
        r#"{app="foo", x=bar}"#,
        r#"parse error at line 1, col 15: syntax error: unexpected IDENTIFIER, expecting STRING"#,
    ),
    (
        r#"{app="foo",}"#,
        r#"parse error at line 1, col 12: syntax error: unexpected }, expecting IDENTIFIER"#,
    ),
    (
        r#"{="foo"}"#,
        r#"parse error at line 1, col 2: syntax error: unexpected =, expecting IDENTIFIER or }"#,
    ),
    (
        r#"{app}"#,
        r#"parse error at line 1, col 5: syntax error: unexpected }, expecting = or =~ or !~ or !="#,
    ),
    (
        r#"{app=="foo"}"#,
        r#"parse error at line 1, col 5: syntax error: unexpected ==, expecting = or =~ or !~ or !="#,
    ),
    (
        r#"{app="foo"} |= "x" or"#,
        r#"parse error at line 1, col 22: syntax error: unexpected $end, expecting STRING or ip"#,
    ),
    (
        r#"{app="foo"} |= "x" or foo"#,
        r#"parse error at line 1, col 23: syntax error: unexpected IDENTIFIER, expecting STRING or ip"#,
    ),
    (
        r#"{app="foo"} |= ip "x""#,
        r#"parse error at line 1, col 16: syntax error: unexpected IDENTIFIER, expecting STRING or ip"#,
    ),
    (
        r#"{app="foo"} |= ip("x""#,
        r#"parse error at line 1, col 22: syntax error: unexpected $end, expecting )"#,
    ),
    (
        r#"{app="foo"} |"#,
        r#"parse error at line 1, col 14: syntax error: unexpected $end"#,
    ),
    (
        r#"{app="foo"} | json a=b"#,
        r#"parse error at line 1, col 22: syntax error: unexpected IDENTIFIER, expecting STRING"#,
    ),
    (
        r#"{app="foo"} | json a,"#,
        r#"parse error at line 1, col 22: syntax error: unexpected $end, expecting IDENTIFIER"#,
    ),
    (
        r#"{app="foo"} | regexp"#,
        r#"parse error at line 1, col 21: syntax error: unexpected $end, expecting STRING"#,
    ),
    (
        r#"{app="foo"} | pattern 5"#,
        r#"parse error at line 1, col 23: syntax error: unexpected NUMBER, expecting STRING"#,
    ),
    (
        r#"{app="foo"} | line_format"#,
        r#"parse error at line 1, col 26: syntax error: unexpected $end, expecting STRING"#,
    ),
    (
        r#"{app="foo"} | label_format a"#,
        r#"parse error at line 1, col 29: syntax error: unexpected $end, expecting ="#,
    ),
    (
        r#"{app="foo"} | label_format a="#,
        r#"parse error at line 1, col 30: syntax error: unexpected $end, expecting IDENTIFIER or STRING"#,
    ),
    (
        r#"{app="foo"} | drop"#,
        r#"parse error at line 1, col 19: syntax error: unexpected $end, expecting IDENTIFIER"#,
    ),
    (
        r#"{app="foo"} | drop a="#,
        r#"parse error at line 1, col 22: syntax error: unexpected $end, expecting STRING"#,
    ),
    (
        r#"{app="foo"} | x"#,
        r#"parse error at line 1, col 16: syntax error: unexpected $end"#,
    ),
    (
        r#"{app="foo"} | x ="#,
        r#"parse error at line 1, col 18: syntax error: unexpected $end"#,
    ),
    (
        r#"{app="foo"} | x > "a""#,
        r#"parse error at line 1, col 19: syntax error: unexpected STRING"#,
    ),
    (
        r#"{app="foo"} | x =~ 5"#,
        r#"parse error at line 1, col 20: syntax error: unexpected NUMBER, expecting STRING"#,
    ),
    (
        r#"{app="foo"} | x > 5 and"#,
        r#"parse error at line 1, col 24: syntax error: unexpected $end, expecting IDENTIFIER or ("#,
    ),
    (
        r#"{app="foo"} | x > 5,"#,
        r#"parse error at line 1, col 21: syntax error: unexpected $end, expecting IDENTIFIER or ("#,
    ),
    (
        r#"{app="foo"} | (x > 5"#,
        r#"parse error at line 1, col 21: syntax error: unexpected $end"#,
    ),
    (
        r#"{app="foo"} | x > -"#,
        r#"parse error at line 1, col 20: syntax error: unexpected $end, expecting NUMBER"#,
    ),
    (
        r#"{app="foo"} | x = ip(5)"#,
        r#"parse error at line 1, col 22: syntax error: unexpected NUMBER, expecting STRING"#,
    ),
    (
        r#"{app="foo"} | unwrap x"#,
        r#"parse error at line 1, col 15: syntax error: unexpected unwrap"#,
    ),
    (
        r#"{ foo = "bar" }|logfmt|addr>=ip("1.2.3.4")"#,
        r#"parse error at line 1, col 30: syntax error: unexpected ip"#,
    ),
    (
        r#"count_over_time({app="foo"} | unwrap x)"#,
        r#"parse error at line 1, col 39: syntax error: unexpected ), expecting RANGE or |"#,
    ),
    (
        r#"sum_over_time({app="foo"} | unwrap [5m])"#,
        r#"parse error at line 1, col 36: syntax error: unexpected RANGE, expecting IDENTIFIER or BYTES_CONV or DURATION_CONV or DURATION_SECONDS_CONV"#,
    ),
    (
        r#"sum_over_time({app="foo"} | unwrap bytes(x [5m])"#,
        r#"parse error at line 1, col 44: syntax error: unexpected RANGE, expecting )"#,
    ),
    (
        r#"sum_over_time({app="foo"} | unwrap bytes(x) | json [5m])"#,
        r#"parse error at line 1, col 47: syntax error: unexpected json, expecting IDENTIFIER or ("#,
    ),
    (
        r#"sum_over_time({app="foo"} | unwrap bytes(x) )"#,
        r#"parse error at line 1, col 45: syntax error: unexpected ), expecting RANGE or |"#,
    ),
    (
        r#"sum_over_time({app="foo"} | json )"#,
        r#"parse error at line 1, col 34: syntax error: unexpected )"#,
    ),
    (
        r#"sum_over_time({app="foo"} [5m] offset)"#,
        r#"parse error at line 1, col 38: syntax error: unexpected ), expecting DURATION"#,
    ),
    (
        r#"sum_over_time({app="foo"} [5m] offset 5)"#,
        r#"parse error at line 1, col 39: syntax error: unexpected NUMBER, expecting DURATION"#,
    ),
    (
        r#"sum_over_time({app="foo"} [5m] | json | unwrap x [5m])"#,
        r#"parse error at line 1, col 50: syntax error: unexpected RANGE, expecting )"#,
    ),
    (
        r#"sum_over_time(({app="foo"}) [5m] | json)"#,
        r#"parse error at line 1, col 36: syntax error: unexpected json, expecting unwrap"#,
    ),
    (
        r#"sum_over_time(({app="foo"} [5m]) | json)"#,
        r#"parse error at line 1, col 34: syntax error: unexpected |, expecting )"#,
    ),
    (
        r#"sum_over_time(x)"#,
        r#"parse error at line 1, col 15: syntax error: unexpected IDENTIFIER, expecting NUMBER or { or ("#,
    ),
    (
        r#"quantile_over_time(foo,{namespace="tns"} | unwrap latency [5m])"#,
        r#"parse error at line 1, col 20: syntax error: unexpected IDENTIFIER, expecting NUMBER or { or ("#,
    ),
    (
        r#"rate("#,
        r#"parse error at line 1, col 6: syntax error: unexpected $end, expecting NUMBER or { or ("#,
    ),
    (
        r#"rate(5)"#,
        r#"parse error at line 1, col 7: syntax error: unexpected ), expecting ,"#,
    ),
    (
        r#"rate({a="b"}[5m]) by"#,
        r#"parse error at line 1, col 21: syntax error: unexpected $end, expecting ("#,
    ),
    (
        r#"rate({a="b"}[5m]) by (a"#,
        r#"parse error at line 1, col 24: syntax error: unexpected $end, expecting , or )"#,
    ),
    (
        r#"rate({a="b"}[5m]) by (a,)"#,
        r#"parse error at line 1, col 25: syntax error: unexpected ), expecting IDENTIFIER"#,
    ),
    (
        r#"rate({a="b"}[5m] foo)"#,
        r#"parse error at line 1, col 18: syntax error: unexpected IDENTIFIER, expecting )"#,
    ),
    (
        r#"min({ foo = "bar" }[5m])"#,
        r#"parse error at line 1, col 20: syntax error: unexpected RANGE"#,
    ),
    (
        r#"stddev({ foo = "bar" })"#,
        r#"parse error at line 1, col 23: syntax error: unexpected )"#,
    ),
    (
        r#"sum(rate({a="b"}[5m])"#,
        r#"parse error at line 1, col 22: syntax error: unexpected $end"#,
    ),
    (
        r#"sum by (a) (rate({a="b"}[5m])) by (b)"#,
        r#"parse error at line 1, col 32: syntax error: unexpected by"#,
    ),
    (
        r#"sum by (a) rate({a="b"}[5m])"#,
        r#"parse error at line 1, col 12: syntax error: unexpected RATE, expecting ("#,
    ),
    (
        r#"count without (rate({namespace="apps"}[15s]))"#,
        r#"parse error at line 1, col 16: syntax error: unexpected RATE, expecting IDENTIFIER or )"#,
    ),
    (
        r#"topk(5 rate({a="b"}[5m]))"#,
        r#"parse error at line 1, col 8: syntax error: unexpected RATE"#,
    ),
    (
        r#"topk(-5, rate({a="b"}[5m]))"#,
        r#"parse error at line 1, col 8: syntax error: unexpected ,"#,
    ),
    (
        r#"bottomk(he,count_over_time({ foo = "bar" }[5h]))"#,
        r#"parse error at line 1, col 9: syntax error: unexpected IDENTIFIER"#,
    ),
    (
        r#"vector(abc)"#,
        r#"parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting NUMBER"#,
    ),
    (
        r#"vector(1"#,
        r#"parse error at line 1, col 9: syntax error: unexpected $end, expecting )"#,
    ),
    (
        r#"label_replace(rate({a="b"}[5m]), "a""#,
        r#"parse error at line 1, col 37: syntax error: unexpected $end, expecting ,"#,
    ),
    (
        r#"label_replace(rate({a="b"}[5m]), "a", "b", "c", d)"#,
        r#"parse error at line 1, col 49: syntax error: unexpected IDENTIFIER, expecting STRING"#,
    ),
    (
        r#"rate({a="b"}[5m]) +"#,
        r#"parse error at line 1, col 20: syntax error: unexpected $end"#,
    ),
    (
        r#"rate({a="b"}[5m]) + on"#,
        r#"parse error at line 1, col 23: syntax error: unexpected $end, expecting ("#,
    ),
    (
        r#"rate({a="b"}[5m]) + on(a"#,
        r#"parse error at line 1, col 25: syntax error: unexpected $end, expecting , or )"#,
    ),
    (
        r#"rate({a="b"}[5m]) + group_left rate({a="b"}[5m])"#,
        r#"parse error at line 1, col 21: syntax error: unexpected group_left"#,
    ),
    (
        r#"rate({a="b"}[5m]) )"#,
        r#"parse error at line 1, col 19: syntax error: unexpected )"#,
    ),
    (
        r#"bool 1 > 1 > bool 1"#,
        r#"parse error at line 1, col 1: syntax error: unexpected bool"#,
    ),
    (
        r#"-rate({a="b"}[5m])"#,
        r#"parse error at line 1, col 2: syntax error: unexpected RATE, expecting NUMBER"#,
    ),
    (
        r#"({a="b"})[5m]"#,
        r#"parse error at line 1, col 10: syntax error: unexpected RANGE"#,
    ),
    (
        r#"count_over_time({a="b"}[5m]) by (a) by (b)"#,
        r#"parse error at line 1, col 37: syntax error: unexpected by"#,
    ),
    (
        r#"sum(count_over_time({a="b"}[5m])) offset 5m"#,
        r#"parse error at line 1, col 35: syntax error: unexpected offset"#,
    ),
    (
        r#"{a="b"} | json | ()"#,
        r#"parse error at line 1, col 19: syntax error: unexpected ), expecting IDENTIFIER or ("#,
    ),
    (
        r#"#{app="foo"} | json"#,
        r#"parse error at line 1, col 20: syntax error: unexpected $end"#,
    ),
    (
        r#"{a="é"} | x="ü" y"#,
        r#"parse error at line 1, col 18: syntax error: unexpected $end"#,
    ),
];

#[test]
fn syntax_errors_match_loki() {
    let mut failures = Vec::new();
    for (q, want) in SYNTAX_ERRORS {
        let got = match parse(q) {
            Ok(e) => format!("parsed: {e:?}"),
            Err(e) => e.to_string(),
        };
        if got != *want {
            failures.push(format!("{q}\n  want: {want}\n  got:  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(SYNTAX_ERRORS.len() >= 70);
}

#[test]
fn error_positions_across_lines() {
    assert_eq!(
        err("{a=\"b\"}\n  | json\n  | x="),
        "parse error at line 3, col 7: syntax error: unexpected $end"
    );
    assert_eq!(
        err("{a=\"b\"}\n  | json\n  | x= )"),
        "parse error at line 3, col 8: syntax error: unexpected )"
    );
    // columns count characters, not bytes
    assert_eq!(
        err(r#"{a="éé"} | x="ü" )"#),
        "parse error at line 1, col 18: syntax error: unexpected )"
    );
    let e = parse("{a=\"b\"} |= \n\n 5").unwrap_err();
    match e {
        QueryError::Parse { line, col, .. } => assert_eq!((line, col), (3, 2)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lexical_errors() {
    assert_eq!(
        err(r#"{foo="bar}"#),
        "parse error at line 1, col 6: literal not terminated"
    );
    assert_eq!(
        err("{foo=`bar}"),
        "parse error at line 1, col 6: literal not terminated"
    );
    assert_eq!(
        err(r#"{foo="b\qr"}"#),
        "parse error at line 1, col 6: invalid char escape"
    );
    assert_eq!(
        err(r#"rate({ foo = "bar" }[5)"#),
        "parse error at line 1, col 21: missing closing ']' in duration"
    );
    assert_eq!(
        err(r#"rate({ foo = "bar" }[1.5m])"#),
        r#"parse error at line 1, col 21: unknown unit "." in duration "1.5m""#
    );
    assert_eq!(
        err(r#"rate({ foo = "bar" }[5m1h])"#),
        r#"parse error at line 1, col 21: not a valid duration string: "5m1h""#
    );
    assert_eq!(
        err(r#"rate({ foo = "bar" }[])"#),
        "parse error at line 1, col 21: empty duration string"
    );
    assert_eq!(
        err(r#"rate({ foo = "bar" }[5x])"#),
        r#"parse error at line 1, col 21: unknown unit "x" in duration "5x""#
    );
    // a syntax error before a lexing error wins, as Loki lexes lazily
    assert_eq!(
        err(r#"{foo=bar} |= "unterminated"#),
        "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING"
    );
}

/// Semantic errors Loki raises while parsing, without a position.
const SEMANTIC_ERRORS: &[(&str, &str)] = &[
    (
        r#"{app=~".*"}"#,
        r#"queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#,
    ),
    (
        r#"{app="", b!="x", c!~".+"} |= "x""#,
        r#"queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#,
    ),
    (
        r#"{}"#,
        r#"queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#,
    ),
    (
        r#"sum(count_over_time({a=~".*"}[5m]))"#,
        r#"queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#,
    ),
    (
        r#"sum_over_time({a="b"}[5m])"#,
        "invalid aggregation sum_over_time without unwrap",
    ),
    (
        r#"rate_counter({a="b"}[5m])"#,
        "invalid aggregation rate_counter without unwrap",
    ),
    (
        r#"count_over_time({app="foo"} |= "foo" | json | unwrap foo [5m])"#,
        "invalid aggregation count_over_time with unwrap",
    ),
    (
        r#"bytes_rate({app="foo"} | unwrap foo [5m])"#,
        "invalid aggregation bytes_rate with unwrap",
    ),
    (
        r#"quantile_over_time({a="b"} | unwrap latency [5m])"#,
        "parameter required for operation quantile_over_time",
    ),
    (
        r#"sum_over_time(50, {a="b"} | unwrap latency [5m])"#,
        "parameter 50 not supported for operation sum_over_time",
    ),
    (
        r#"sum_over_time({a="b"} | unwrap latency [5m]) by (foo)"#,
        "grouping not allowed for sum_over_time aggregation",
    ),
    (
        r#"absent_over_time({ foo = "bar" }[5h]) by (foo)"#,
        "grouping not allowed for absent_over_time aggregation",
    ),
    (
        r#"topk(count_over_time({ foo = "bar" }[5h]))"#,
        "parameter required for operation topk",
    ),
    (
        r#"bottomk(1.2,count_over_time({ foo = "bar" }[5h]))"#,
        "invalid parameter bottomk(1.2,",
    ),
    (
        r#"topk(0,count_over_time({ foo = "bar" }[5h]))"#,
        "invalid parameter (must be greater than 0) topk(0",
    ),
    (
        r#"sum(3 ,count_over_time({ foo = "bar" }[5h]))"#,
        "unsupported parameter for operation sum(3,",
    ),
    (
        r#"sort by (a) (count_over_time({ foo = "bar" }[5h]))"#,
        "sort and sort_desc doesn't allow grouping by ",
    ),
    (
        r#"count_over_time({ foo = "bar" }[12m]) > { foo = "bar" }"#,
        "unexpected type for right leg of binary operation (>): *syntax.MatchersExpr",
    ),
    (
        r#"{ foo = "bar" } | json + 1"#,
        "unexpected type for left leg of binary operation (+): *syntax.PipelineExpr",
    ),
    (
        r#"count_over_time({ foo = "bar" }[12m]) or 0"#,
        "unexpected literal for right leg of logical/set binary operation (or): 0.000000",
    ),
    (
        r#"1.5 and count_over_time({ foo = "bar" }[12m])"#,
        "unexpected literal for left leg of logical/set binary operation (and): 1.500000",
    ),
    (
        r#"label_replace(rate({ foo = "bar" }[5m]),"foo","$1","bar","^^^^x43\\q")"#,
        "invalid regex in label_replace: error parsing regexp: invalid escape sequence: `\\q`",
    ),
    (
        r#"{app=~"(foo"}"#,
        "error parsing regexp: missing closing ): `(foo`",
    ),
    (
        r#"{app="x"} | level=~"[a-""#,
        "error parsing regexp: missing closing ]: `[a-`",
    ),
    (
        r#"{app="x"} | drop level=~"*a""#,
        "error parsing regexp: missing argument to repetition operator: `*`",
    ),
    (
        r#"{app="x"} | regexp "(.*)""#,
        "invalid regexp parser: at least one named capture must be supplied",
    ),
    (
        r#"{app="x"} | regexp "(?P<a>.*""#,
        "invalid regexp parser: error parsing regexp: missing closing ): `(?P<a>.*`",
    ),
];

#[test]
fn semantic_errors_match_loki() {
    let mut failures = Vec::new();
    for (q, want) in SEMANTIC_ERRORS {
        match parse(q) {
            Err(QueryError::Parse {
                line: 0,
                col: 0,
                msg,
            }) if msg == *want => {}
            other => failures.push(format!("{q}\n  want: {want}\n  got:  {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let e = parse(r#"{app=~".*"}"#).unwrap_err();
    assert!(
        e.to_string().starts_with("parse error : queries require"),
        "{e}"
    );
    assert_eq!(e.status(), 400);
}

#[test]
fn semantic_error_order_follows_loki() {
    // a syntax error anywhere beats the checks Loki runs after parsing
    assert_eq!(
        err(r#"sum_over_time({a="b"}[5m]) +"#),
        "parse error at line 1, col 29: syntax error: unexpected $end"
    );
    // a bad regex is reported while parsing, before a later syntax error
    assert_eq!(
        err(r#"{a=~"("} |= )"#),
        "parse error : error parsing regexp: missing closing ): `(`"
    );
    // the outer node's error is reported before its operands'
    assert_eq!(
        err(r#"sum(3, sum_over_time({a="b"}[5m]))"#),
        "parse error : unsupported parameter for operation sum(3,"
    );
    // left operand before right operand
    assert_eq!(
        err(r#"sum_over_time({a="b"}[5m]) + count_over_time({a="b"} | unwrap x [5m])"#),
        "parse error : invalid aggregation sum_over_time without unwrap"
    );
    // the aggregation's own error before the selector check
    assert_eq!(
        err(r#"sum_over_time({a=~".*"}[5m])"#),
        "parse error : invalid aggregation sum_over_time without unwrap"
    );
}

#[test]
fn matchers_with_non_empty_values_are_accepted() {
    for q in [
        r#"{app=~".+"}"#,
        r#"{app=~".*", env="prod"}"#,
        r#"{app!~"", x=~"a|b"}"#,
        r#"{app!=""}"#,
        r#"{app=~"a*b"}"#,
    ] {
        assert!(parse(q).is_ok(), "{q}: {:?}", parse(q));
    }
}

#[test]
fn query_size_limit() {
    let q = format!("{{a=\"{}\"}}", "x".repeat(131_072));
    assert_eq!(
        err(&q),
        format!("parse error : input size too long ({} > 131072)", q.len())
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let q = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let e = err(&q);
    assert!(e.contains("nests too deeply"), "{e}");
    let q = format!(
        r#"{{a="b"}} | {}x="1"{}"#,
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert!(err(&q).contains("nests too deeply"));
    // moderate nesting is fine
    let q = format!("{}1{}", "(".repeat(50), ")".repeat(50));
    assert_eq!(parse_metric(&q), MetricExpr::Literal(1.0));
}

#[test]
fn parsing_is_fast() {
    let q = r#"sum by (level) (count_over_time({app="api", env=~"prod|staging"} |= "error" != "debug" | json | level=~"err.*" and duration > 250ms or size >= 1KB | line_format "{{.msg}}" [5m])) / on(level) group_left sum by (level) (rate({app="api"}[5m]))"#;
    let start = std::time::Instant::now();
    for _ in 0..2000 {
        parse(q).unwrap();
    }
    // 2000 parses of a realistic query well under a second even unoptimised
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
