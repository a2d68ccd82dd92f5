//! The log pipeline against Loki 3.x semantics: line filters, parsers, label
//! filters, formatters, drop/keep, decolorize and unwrap. Stages are built as
//! syntax trees directly.

use argus_query::logql::ast::*;
use argus_query::logql::pipeline::{Pipeline, UnwrapExtractor, leading_line_filters, unwrap_value};
use argus_schemas::Labels;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn stream() -> Labels {
    labels(&[("app", "api"), ("env", "prod")])
}

/// Runs `stages` over `line` with the default stream; `None` when dropped.
fn run(stages: Vec<Stage>, line: &str) -> Option<(String, Labels)> {
    run_with(stages, line, &stream(), &Labels::new())
}

fn run_with(stages: Vec<Stage>, line: &str, s: &Labels, md: &Labels) -> Option<(String, Labels)> {
    let p = Pipeline::new(&stages).expect("pipeline compiles");
    p.process(1_700_000_000_123_456_789, line, s, md)
        .map(|r| (r.line, r.labels))
}

fn get(l: &Labels, n: &str) -> Option<String> {
    l.get(n).map(str::to_string)
}

fn lf(op: LineFilterOp, vals: &[&str]) -> Stage {
    Stage::LineFilter(LineFilter {
        op,
        values: vals
            .iter()
            .map(|v| FilterValue::Literal(v.to_string()))
            .collect(),
    })
}

fn ipf(op: LineFilterOp, pat: &str) -> Stage {
    Stage::LineFilter(LineFilter {
        op,
        values: vec![FilterValue::Ip(pat.to_string())],
    })
}

fn json() -> Stage {
    Stage::Parser(Parser::Json(vec![]))
}

fn json_params(ps: &[(&str, &str)]) -> Stage {
    Stage::Parser(Parser::Json(
        ps.iter()
            .map(|(l, e)| ExtractParam {
                label: l.to_string(),
                expression: e.to_string(),
            })
            .collect(),
    ))
}

fn logfmt() -> Stage {
    logfmt_opts(false, false, &[])
}

fn logfmt_opts(strict: bool, keep_empty: bool, ps: &[(&str, &str)]) -> Stage {
    Stage::Parser(Parser::Logfmt {
        strict,
        keep_empty,
        params: ps
            .iter()
            .map(|(l, e)| ExtractParam {
                label: l.to_string(),
                expression: e.to_string(),
            })
            .collect(),
    })
}

fn matcher(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
    LabelMatcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

fn lstr(name: &str, op: MatchOp, value: &str) -> LabelFilterExpr {
    LabelFilterExpr::String(matcher(name, op, value))
}

fn lnum(name: &str, op: CmpOp, value: f64) -> LabelFilterExpr {
    LabelFilterExpr::Number {
        name: name.into(),
        op,
        value,
    }
}

fn lfilter(e: LabelFilterExpr) -> Stage {
    Stage::LabelFilter(e)
}

fn line_format(t: &str) -> Stage {
    Stage::LineFormat(t.into())
}

fn fmt_line(t: &str, line: &str) -> String {
    run(vec![logfmt(), line_format(t)], line).expect("kept").0
}

fn label_tmpl(dst: &str, t: &str) -> LabelFmt {
    LabelFmt::Template {
        dst: dst.into(),
        template: t.into(),
    }
}

// ------------------------------------------------------------ line filters

#[test]
fn contains_filter_keeps_matching_lines() {
    let f = || vec![lf(LineFilterOp::Contains, &["error"])];
    assert!(run(f(), "an error occurred").is_some());
    assert!(run(f(), "all good").is_none());
    // case-sensitive
    assert!(run(f(), "ERROR").is_none());
}

#[test]
fn not_contains_filter() {
    let f = || vec![lf(LineFilterOp::NotContains, &["debug"])];
    assert!(run(f(), "level=info").is_some());
    assert!(run(f(), "level=debug").is_none());
}

#[test]
fn contains_or_alternatives() {
    let f = || vec![lf(LineFilterOp::Contains, &["error", "warn"])];
    assert!(run(f(), "warn: x").is_some());
    assert!(run(f(), "error: x").is_some());
    assert!(run(f(), "info: x").is_none());
}

#[test]
fn negative_or_requires_none_present() {
    let f = || vec![lf(LineFilterOp::NotContains, &["debug", "trace"])];
    assert!(run(f(), "info").is_some());
    assert!(run(f(), "trace here").is_none());
    assert!(run(f(), "debug here").is_none());
}

#[test]
fn empty_contains_matches_everything() {
    assert!(run(vec![lf(LineFilterOp::Contains, &[""])], "x").is_some());
    assert!(run(vec![lf(LineFilterOp::NotContains, &[""])], "x").is_none());
}

#[test]
fn regex_filter_is_unanchored() {
    let f = || vec![lf(LineFilterOp::Regex, &["err(or)?\\s+\\d+"])];
    assert!(run(f(), "got error 42 today").is_some());
    assert!(run(f(), "err 7").is_some());
    assert!(run(f(), "error x").is_none());
}

#[test]
fn regex_filter_case_insensitive_flag() {
    let f = || vec![lf(LineFilterOp::Regex, &["(?i)timeout"])];
    assert!(run(f(), "TIMEOUT reached").is_some());
}

#[test]
fn not_regex_filter() {
    let f = || vec![lf(LineFilterOp::NotRegex, &["^GET", "^HEAD"])];
    assert!(run(f(), "POST /x").is_some());
    assert!(run(f(), "GET /x").is_none());
    assert!(run(f(), "HEAD /x").is_none());
}

#[test]
fn chained_filters_all_apply() {
    let f = || {
        vec![
            lf(LineFilterOp::Contains, &["api"]),
            lf(LineFilterOp::NotContains, &["health"]),
        ]
    };
    assert!(run(f(), "api call").is_some());
    assert!(run(f(), "api health").is_none());
}

#[test]
fn bad_regex_is_rejected_naming_it() {
    let err = Pipeline::new(&[lf(LineFilterOp::Regex, &["a("])]).unwrap_err();
    assert!(err.to_string().contains("a("), "{err}");
}

#[test]
fn pattern_filter_matches_whole_structure() {
    let f = || vec![lf(LineFilterOp::Pattern, &["<_> level=error <_>"])];
    assert!(run(f(), "ts=1 level=error msg=x").is_some());
    assert!(run(f(), "ts=1 level=info msg=x").is_none());
}

#[test]
fn pattern_filter_literal_end_must_end_line() {
    let f = || vec![lf(LineFilterOp::Pattern, &["<_> done"])];
    assert!(run(f(), "job done").is_some());
    // trailing text after the final literal: no match
    assert!(run(f(), "job done now").is_none());
    // the capture before a literal must not be empty
    assert!(run(f(), " done").is_none());
}

#[test]
fn not_pattern_filter() {
    let f = || vec![lf(LineFilterOp::NotPattern, &["GET <_>"])];
    assert!(run(f(), "POST /a").is_some());
    assert!(run(f(), "GET /a").is_none());
}

#[test]
fn pattern_filter_rejects_named_captures() {
    let err = Pipeline::new(&[lf(LineFilterOp::Pattern, &["<a> x"])]).unwrap_err();
    assert!(err.to_string().contains("named captures"), "{err}");
    let err = Pipeline::new(&[lf(LineFilterOp::Pattern, &["<_><_>"])]).unwrap_err();
    assert!(err.to_string().contains("consecutive"), "{err}");
}

#[test]
fn ip_filter_single_address() {
    let f = || vec![ipf(LineFilterOp::Contains, "192.168.4.5")];
    assert!(run(f(), "client 192.168.4.5 connected").is_some());
    assert!(run(f(), "client 192.168.4.50 connected").is_none());
    assert!(run(f(), "client 10.0.0.1").is_none());
}

#[test]
fn ip_filter_cidr() {
    let f = || vec![ipf(LineFilterOp::Contains, "192.168.4.0/24")];
    assert!(run(f(), "from=192.168.4.77 ok").is_some());
    assert!(run(f(), "from=192.168.5.77 ok").is_none());
}

#[test]
fn ip_filter_range() {
    let f = || vec![ipf(LineFilterOp::Contains, "192.168.4.5-192.168.4.20")];
    assert!(run(f(), "x 192.168.4.10 y").is_some());
    assert!(run(f(), "x 192.168.4.21 y").is_none());
}

#[test]
fn ip_filter_finds_later_address_in_line() {
    let f = || vec![ipf(LineFilterOp::Contains, "10.0.0.0/8")];
    assert!(run(f(), "1.2.3.4 -> 10.1.2.3").is_some());
    assert!(run(f(), "version 1.2 only").is_none());
}

#[test]
fn ip_filter_ipv6() {
    let f = || vec![ipf(LineFilterOp::Contains, "2001:db8::/32")];
    assert!(run(f(), "peer 2001:db8::1 up").is_some());
    assert!(run(f(), "peer 2001:db9::1 up").is_none());
}

#[test]
fn not_ip_filter() {
    let f = || vec![ipf(LineFilterOp::NotContains, "10.0.0.0/8")];
    assert!(run(f(), "from 192.168.0.1").is_some());
    assert!(run(f(), "from 10.0.0.1").is_none());
}

#[test]
fn ip_filter_rejects_bad_pattern() {
    let err = Pipeline::new(&[ipf(LineFilterOp::Contains, "10.0.0.0/33")]).unwrap_err();
    assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
    assert!(Pipeline::new(&[ipf(LineFilterOp::Contains, "not-an-ip")]).is_err());
}

#[test]
fn leading_line_filters_stop_at_first_other_stage() {
    let stages = vec![
        lf(LineFilterOp::Contains, &["a"]),
        lf(LineFilterOp::NotContains, &["b"]),
        json(),
        lf(LineFilterOp::Contains, &["c"]),
    ];
    let lead = leading_line_filters(&stages);
    assert_eq!(lead.len(), 2);
    assert_eq!(lead[1].op, LineFilterOp::NotContains);
}

#[test]
fn line_filter_after_line_format_sees_new_line() {
    let stages = vec![
        logfmt(),
        line_format("{{.msg}}"),
        lf(LineFilterOp::Contains, &["hello"]),
    ];
    assert!(run(stages.clone(), "msg=hello level=x").is_some());
    assert!(run(stages, "msg=bye level=hello").is_none());
}

// ------------------------------------------------------------ json

#[test]
fn json_extracts_and_flattens() {
    let (_, l) = run(
        vec![json()],
        r#"{"level":"info","req":{"method":"GET","status":200,"ok":true},"tags":["a"]}"#,
    )
    .unwrap();
    assert_eq!(get(&l, "level").as_deref(), Some("info"));
    assert_eq!(get(&l, "req_method").as_deref(), Some("GET"));
    assert_eq!(get(&l, "req_status").as_deref(), Some("200"));
    assert_eq!(get(&l, "req_ok").as_deref(), Some("true"));
    // arrays are skipped
    assert_eq!(get(&l, "tags"), None);
    assert_eq!(get(&l, "app").as_deref(), Some("api"));
}

#[test]
fn json_null_is_skipped_and_numbers_kept_verbatim() {
    let (_, l) = run(vec![json()], r#"{"a":null,"b":1.50,"c":-3e2}"#).unwrap();
    assert_eq!(get(&l, "a"), None);
    assert_eq!(get(&l, "b").as_deref(), Some("1.50"));
    assert_eq!(get(&l, "c").as_deref(), Some("-3e2"));
}

#[test]
fn json_sanitizes_keys() {
    let (_, l) = run(
        vec![json()],
        r#"{"my-key":"1","a.b":"2","1st":"3","sp ace":{"in-ner":"4"}}"#,
    )
    .unwrap();
    assert_eq!(get(&l, "my_key").as_deref(), Some("1"));
    assert_eq!(get(&l, "a_b").as_deref(), Some("2"));
    assert_eq!(get(&l, "_1st").as_deref(), Some("3"));
    assert_eq!(get(&l, "sp_ace_in_ner").as_deref(), Some("4"));
}

#[test]
fn json_unescapes_strings() {
    let (_, l) = run(vec![json()], r#"{"msg":"a \"quoted\"\nline \u00e9"}"#).unwrap();
    assert_eq!(get(&l, "msg").as_deref(), Some("a \"quoted\"\nline é"));
}

#[test]
fn json_clash_with_stream_label_gets_suffix() {
    let (_, l) = run(vec![json()], r#"{"app":"other","x":"1"}"#).unwrap();
    assert_eq!(get(&l, "app").as_deref(), Some("api"));
    assert_eq!(get(&l, "app_extracted").as_deref(), Some("other"));
}

#[test]
fn json_nested_clash_suffixes_last_part() {
    let s = labels(&[("a_b", "stream")]);
    let (_, l) = run_with(vec![json()], r#"{"a":{"b":"x"}}"#, &s, &Labels::new()).unwrap();
    assert_eq!(get(&l, "a_b").as_deref(), Some("stream"));
    assert_eq!(get(&l, "a_b_extracted").as_deref(), Some("x"));
}

#[test]
fn json_clash_with_structured_metadata_gets_suffix() {
    let md = labels(&[("trace_id", "abc")]);
    let (_, l) = run_with(vec![json()], r#"{"trace_id":"zzz"}"#, &stream(), &md).unwrap();
    assert_eq!(get(&l, "trace_id").as_deref(), Some("abc"));
    assert_eq!(get(&l, "trace_id_extracted").as_deref(), Some("zzz"));
}

#[test]
fn json_invalid_line_sets_error_and_keeps_line() {
    let (line, l) = run(vec![json()], "not json at all").unwrap();
    assert_eq!(line, "not json at all");
    assert_eq!(get(&l, "__error__").as_deref(), Some("JSONParserErr"));
    assert_eq!(
        get(&l, "__error_details__").as_deref(),
        Some("Value looks like object, but can't find closing '}' symbol")
    );
}

#[test]
fn json_keeps_keys_parsed_before_an_error() {
    let (_, l) = run(vec![json()], r#"{"a":"1","b":}"#).unwrap();
    assert_eq!(get(&l, "a").as_deref(), Some("1"));
    assert_eq!(get(&l, "__error__").as_deref(), Some("JSONParserErr"));
}

#[test]
fn json_duplicate_key_first_wins() {
    let (_, l) = run(vec![json()], r#"{"a":"1","a":"2"}"#).unwrap();
    assert_eq!(get(&l, "a").as_deref(), Some("1"));
}

#[test]
fn second_parser_does_not_overwrite_extracted_label() {
    let (_, l) = run(
        vec![json(), line_format("level=debug other=x"), logfmt()],
        r#"{"level":"info"}"#,
    )
    .unwrap();
    assert_eq!(get(&l, "level").as_deref(), Some("info"));
    assert_eq!(get(&l, "other").as_deref(), Some("x"));
}

#[test]
fn json_with_params() {
    let (_, l) = run(
        vec![json_params(&[
            ("first", "servers[0]"),
            ("method", "request.method"),
            ("ua", r#"headers["User-Agent"]"#),
            ("obj", "request"),
            ("missing", "nope.x"),
        ])],
        r#"{"servers":["a","b"],"request":{"method":"GET"},"headers":{"User-Agent":"curl"}}"#,
    )
    .unwrap();
    assert_eq!(get(&l, "first").as_deref(), Some("a"));
    assert_eq!(get(&l, "method").as_deref(), Some("GET"));
    assert_eq!(get(&l, "ua").as_deref(), Some("curl"));
    assert_eq!(get(&l, "obj").as_deref(), Some(r#"{"method":"GET"}"#));
    // a parameter that does not resolve is still set, empty (Loki)
    assert_eq!(get(&l, "missing").as_deref(), Some(""));
    // no other keys are extracted
    assert_eq!(get(&l, "servers"), None);
}

#[test]
fn json_params_nested_index_path() {
    let (_, l) = run(
        vec![json_params(&[("n", "a.list[1].name")])],
        r#"{"a":{"list":[{"name":"x"},{"name":"y"}]}}"#,
    )
    .unwrap();
    assert_eq!(get(&l, "n").as_deref(), Some("y"));
}

#[test]
fn json_params_on_non_json_line_sets_error() {
    let (_, l) = run(vec![json_params(&[("a", "a")])], "plain").unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("JSONParserErr"));
}

#[test]
fn json_params_bad_expression_rejected() {
    assert!(Pipeline::new(&[json_params(&[("a", "a[1.5]")])]).is_err());
    assert!(Pipeline::new(&[json_params(&[("a", "a..b")])]).is_err());
}

// ------------------------------------------------------------ unpack

#[test]
fn unpack_replaces_line_and_adds_labels() {
    let (line, l) = run(
        vec![Stage::Parser(Parser::Unpack)],
        r#"{"container":"web","pod":"p-1","_entry":"original \"line\""}"#,
    )
    .unwrap();
    assert_eq!(line, "original \"line\"");
    assert_eq!(get(&l, "container").as_deref(), Some("web"));
    assert_eq!(get(&l, "pod").as_deref(), Some("p-1"));
}

#[test]
fn unpack_without_entry_changes_nothing() {
    let (line, l) = run(
        vec![Stage::Parser(Parser::Unpack)],
        r#"{"container":"web"}"#,
    )
    .unwrap();
    assert_eq!(line, r#"{"container":"web"}"#);
    assert_eq!(get(&l, "container"), None);
}

#[test]
fn unpack_non_object_sets_error() {
    let (_, l) = run(vec![Stage::Parser(Parser::Unpack)], "plain text").unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("JSONParserErr"));
    assert_eq!(
        get(&l, "__error_details__").as_deref(),
        Some("expecting json object(6), but it is not")
    );
}

#[test]
fn unpack_clash_with_stream_label() {
    let (_, l) = run(
        vec![Stage::Parser(Parser::Unpack)],
        r#"{"app":"packed","_entry":"x"}"#,
    )
    .unwrap();
    assert_eq!(get(&l, "app").as_deref(), Some("api"));
    assert_eq!(get(&l, "app_extracted").as_deref(), Some("packed"));
}

// ------------------------------------------------------------ logfmt

#[test]
fn logfmt_basic() {
    let (_, l) = run(
        vec![logfmt()],
        r#"level=info msg="hello world" duration=1.5s empty= bare"#,
    )
    .unwrap();
    assert_eq!(get(&l, "level").as_deref(), Some("info"));
    assert_eq!(get(&l, "msg").as_deref(), Some("hello world"));
    assert_eq!(get(&l, "duration").as_deref(), Some("1.5s"));
    assert_eq!(get(&l, "empty"), None);
    assert_eq!(get(&l, "bare"), None);
}

#[test]
fn logfmt_keep_empty() {
    let (_, l) = run(vec![logfmt_opts(false, true, &[])], "a= b c=1").unwrap();
    assert_eq!(get(&l, "a").as_deref(), Some(""));
    assert_eq!(get(&l, "b").as_deref(), Some(""));
    assert_eq!(get(&l, "c").as_deref(), Some("1"));
}

#[test]
fn logfmt_escapes_in_quoted_value() {
    let (_, l) = run(vec![logfmt()], r#"msg="say \"hi\"\tnow""#).unwrap();
    assert_eq!(get(&l, "msg").as_deref(), Some("say \"hi\"\tnow"));
}

#[test]
fn logfmt_lenient_skips_bad_pairs() {
    let (_, l) = run(vec![logfmt()], r#"a=1 =bad b=2 c="x"y d=4"#).unwrap();
    assert_eq!(get(&l, "a").as_deref(), Some("1"));
    assert_eq!(get(&l, "b").as_deref(), Some("2"));
    assert_eq!(get(&l, "d").as_deref(), Some("4"));
    assert_eq!(get(&l, "__error__"), None);
}

#[test]
fn logfmt_strict_stops_with_error() {
    let (_, l) = run(vec![logfmt_opts(true, false, &[])], "a=1 =bad b=2").unwrap();
    assert_eq!(get(&l, "a").as_deref(), Some("1"));
    assert_eq!(get(&l, "b"), None);
    assert_eq!(get(&l, "__error__").as_deref(), Some("LogfmtParserErr"));
    assert_eq!(
        get(&l, "__error_details__").as_deref(),
        Some("logfmt syntax error at pos 5 : unexpected '='")
    );
}

#[test]
fn logfmt_strict_unterminated_quote() {
    let (_, l) = run(vec![logfmt_opts(true, false, &[])], r#"a=1 msg="open"#).unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("LogfmtParserErr"));
    assert_eq!(
        get(&l, "__error_details__").as_deref(),
        Some("logfmt syntax error at pos 14 : unterminated quoted value")
    );
}

#[test]
fn logfmt_sanitizes_and_suffixes() {
    let (_, l) = run(vec![logfmt()], "env=dev http.status=500 1x=y").unwrap();
    assert_eq!(get(&l, "env").as_deref(), Some("prod"));
    assert_eq!(get(&l, "env_extracted").as_deref(), Some("dev"));
    assert_eq!(get(&l, "http_status").as_deref(), Some("500"));
    assert_eq!(get(&l, "_1x").as_deref(), Some("y"));
}

#[test]
fn logfmt_duplicate_key_first_wins() {
    let (_, l) = run(vec![logfmt()], "a=1 a=2").unwrap();
    assert_eq!(get(&l, "a").as_deref(), Some("1"));
}

#[test]
fn logfmt_with_params() {
    let (_, l) = run(
        vec![logfmt_opts(
            false,
            false,
            &[("lvl", "level"), ("user", "user"), ("none", "zzz")],
        )],
        "level=warn user=bob other=1",
    )
    .unwrap();
    assert_eq!(get(&l, "lvl").as_deref(), Some("warn"));
    assert_eq!(get(&l, "user").as_deref(), Some("bob"));
    assert_eq!(get(&l, "none").as_deref(), Some(""));
    assert_eq!(get(&l, "other"), None);
    assert_eq!(get(&l, "level"), None);
}

// ------------------------------------------------------------ regexp / pattern

#[test]
fn regexp_parser_named_captures() {
    let (_, l) = run(
        vec![Stage::Parser(Parser::Regexp(
            r"(?P<method>\w+) (?P<path>\S+) (\d+)".into(),
        ))],
        "GET /api/x 200",
    )
    .unwrap();
    assert_eq!(get(&l, "method").as_deref(), Some("GET"));
    assert_eq!(get(&l, "path").as_deref(), Some("/api/x"));
    assert_eq!(l.len(), 4);
}

#[test]
fn regexp_parser_no_match_keeps_line_without_labels() {
    let (_, l) = run(
        vec![Stage::Parser(Parser::Regexp(r"(?P<n>\d+)".into()))],
        "no digits",
    )
    .unwrap();
    assert_eq!(l, stream());
}

#[test]
fn regexp_parser_requires_named_capture() {
    let err = Pipeline::new(&[Stage::Parser(Parser::Regexp(r"(\d+)".into()))]).unwrap_err();
    assert!(err.to_string().contains("named capture"), "{err}");
    assert!(Pipeline::new(&[Stage::Parser(Parser::Regexp(r"(?P<a>".into()))]).is_err());
}

#[test]
fn regexp_parser_clash_suffix() {
    let (_, l) = run(
        vec![Stage::Parser(Parser::Regexp(r"(?P<app>\w+)".into()))],
        "billing",
    )
    .unwrap();
    assert_eq!(get(&l, "app_extracted").as_deref(), Some("billing"));
}

#[test]
fn pattern_parser_common_log_format() {
    let (_, l) = run(
        vec![Stage::Parser(Parser::Pattern(
            r#"<ip> - <user> [<_>] "<method> <path> <_>" <status> <size>"#.into(),
        ))],
        r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
    )
    .unwrap();
    assert_eq!(get(&l, "ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(get(&l, "user").as_deref(), Some("frank"));
    assert_eq!(get(&l, "method").as_deref(), Some("GET"));
    assert_eq!(get(&l, "path").as_deref(), Some("/apache_pb.gif"));
    assert_eq!(get(&l, "status").as_deref(), Some("200"));
    assert_eq!(get(&l, "size").as_deref(), Some("2326"));
}

#[test]
fn pattern_parser_partial_match_sets_found_captures() {
    let (_, l) = run(
        vec![Stage::Parser(Parser::Pattern("<a> x <b> y <c>".into()))],
        "1 x 2",
    )
    .unwrap();
    assert_eq!(get(&l, "a").as_deref(), Some("1"));
    assert_eq!(get(&l, "b").as_deref(), Some("2"));
    assert_eq!(get(&l, "c"), None);
}

#[test]
fn pattern_parser_leading_literal_must_match() {
    let (_, l) = run(
        vec![Stage::Parser(Parser::Pattern("GET <path>".into()))],
        "POST /a",
    )
    .unwrap();
    assert_eq!(get(&l, "path"), None);
}

#[test]
fn pattern_parser_validation() {
    assert!(Pipeline::new(&[Stage::Parser(Parser::Pattern("<_> x".into()))]).is_err());
    assert!(Pipeline::new(&[Stage::Parser(Parser::Pattern("<a><b>".into()))]).is_err());
    assert!(Pipeline::new(&[Stage::Parser(Parser::Pattern("<a> <a>".into()))]).is_err());
}

// ------------------------------------------------------------ label filters

#[test]
fn string_label_filters() {
    let f = |op, v: &str| vec![logfmt(), lfilter(lstr("level", op, v))];
    assert!(run(f(MatchOp::Eq, "error"), "level=error").is_some());
    assert!(run(f(MatchOp::Eq, "error"), "level=info").is_none());
    assert!(run(f(MatchOp::Neq, "error"), "level=info").is_some());
    assert!(run(f(MatchOp::Re, "err.*"), "level=error").is_some());
    // regex label matchers are anchored
    assert!(run(f(MatchOp::Re, "rr"), "level=error").is_none());
    assert!(run(f(MatchOp::Nre, "info|debug"), "level=warn").is_some());
}

#[test]
fn string_filter_on_missing_label_sees_empty() {
    assert!(run(vec![lfilter(lstr("nope", MatchOp::Eq, ""))], "x").is_some());
    assert!(run(vec![lfilter(lstr("nope", MatchOp::Neq, "a"))], "x").is_some());
}

#[test]
fn numeric_label_filters() {
    let f = |op, v| vec![logfmt(), lfilter(lnum("status", op, v))];
    assert!(run(f(CmpOp::Gte, 500.0), "status=503").is_some());
    assert!(run(f(CmpOp::Gte, 500.0), "status=200").is_none());
    assert!(run(f(CmpOp::Eq, 200.0), "status=200").is_some());
    assert!(run(f(CmpOp::Neq, 200.0), "status=200").is_none());
    assert!(run(f(CmpOp::Lt, 1.5), "status=1.25").is_some());
    assert!(run(f(CmpOp::Lte, 1.0), "status=1").is_some());
    assert!(run(f(CmpOp::Gt, 1e3), "status=1e4").is_some());
}

#[test]
fn numeric_filter_missing_label_drops_line() {
    assert!(
        run(
            vec![logfmt(), lfilter(lnum("status", CmpOp::Gt, 0.0))],
            "a=1"
        )
        .is_none()
    );
}

#[test]
fn numeric_filter_conversion_failure_keeps_line_with_error() {
    let (_, l) = run(
        vec![logfmt(), lfilter(lnum("status", CmpOp::Gt, 100.0))],
        "status=abc",
    )
    .unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("LabelFilterErr"));
    assert_eq!(
        get(&l, "__error_details__").as_deref(),
        Some(r#"strconv.ParseFloat: parsing "abc": invalid syntax"#)
    );
}

#[test]
fn conversion_error_does_not_replace_earlier_error() {
    let (_, l) = run(
        vec![json(), lfilter(lnum("x", CmpOp::Gt, 1.0))],
        r#"{"x":"abc","y":}"#,
    )
    .unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("JSONParserErr"));
}

#[test]
fn error_filter_drops_failed_lines() {
    let f = || vec![json(), lfilter(lstr("__error__", MatchOp::Eq, ""))];
    assert!(run(f(), "oops").is_none());
    assert!(run(f(), r#"{"a":"b"}"#).is_some());
}

#[test]
fn duration_label_filter() {
    let f = |op, secs| {
        vec![
            logfmt(),
            lfilter(LabelFilterExpr::Duration {
                name: "took".into(),
                op,
                value: secs,
            }),
        ]
    };
    assert!(run(f(CmpOp::Gt, 0.25), "took=300ms").is_some());
    assert!(run(f(CmpOp::Gt, 0.25), "took=250ms").is_none());
    assert!(run(f(CmpOp::Gte, 0.25), "took=250ms").is_some());
    assert!(run(f(CmpOp::Lt, 60.0), "took=1m").is_none());
    assert!(run(f(CmpOp::Eq, 5400.0), "took=1h30m").is_some());
    assert!(run(f(CmpOp::Gt, 0.0), "took=1.5us").is_some());
}

#[test]
fn duration_filter_bad_value_sets_error() {
    let (_, l) = run(
        vec![
            logfmt(),
            lfilter(LabelFilterExpr::Duration {
                name: "took".into(),
                op: CmpOp::Gt,
                value: 1.0,
            }),
        ],
        "took=12",
    )
    .unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("LabelFilterErr"));
    assert_eq!(
        get(&l, "__error_details__").as_deref(),
        Some(r#"time: missing unit in duration "12""#)
    );
}

#[test]
fn bytes_label_filter() {
    let f = |op, b| {
        vec![
            logfmt(),
            lfilter(LabelFilterExpr::Bytes {
                name: "size".into(),
                op,
                value: b,
            }),
        ]
    };
    assert!(run(f(CmpOp::Gt, 20e6), "size=21MB").is_some());
    assert!(run(f(CmpOp::Gt, 20e6), "size=19MiB").is_none());
    assert!(run(f(CmpOp::Eq, 1024.0), "size=1KiB").is_some());
    assert!(run(f(CmpOp::Eq, 1500.0), "size=1.5kb").is_some());
    assert!(run(f(CmpOp::Eq, 42.0), "size=42").is_some());
    assert!(run(f(CmpOp::Eq, 2e9), r#"size="2 GB""#).is_some());
}

#[test]
fn bytes_filter_bad_unit_sets_error() {
    let (_, l) = run(
        vec![
            logfmt(),
            lfilter(LabelFilterExpr::Bytes {
                name: "size".into(),
                op: CmpOp::Gt,
                value: 1.0,
            }),
        ],
        "size=12parsecs",
    )
    .unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("LabelFilterErr"));
    assert_eq!(
        get(&l, "__error_details__").as_deref(),
        Some("unhandled size name: parsecs")
    );
}

#[test]
fn and_or_label_filters() {
    let and = || {
        vec![
            logfmt(),
            lfilter(LabelFilterExpr::And(
                Box::new(lstr("level", MatchOp::Eq, "error")),
                Box::new(lnum("status", CmpOp::Gte, 500.0)),
            )),
        ]
    };
    assert!(run(and(), "level=error status=500").is_some());
    assert!(run(and(), "level=error status=400").is_none());
    let or = || {
        vec![
            logfmt(),
            lfilter(LabelFilterExpr::Or(
                Box::new(lstr("level", MatchOp::Eq, "error")),
                Box::new(lnum("status", CmpOp::Gte, 500.0)),
            )),
        ]
    };
    assert!(run(or(), "level=info status=502").is_some());
    assert!(run(or(), "level=error status=200").is_some());
    assert!(run(or(), "level=info status=200").is_none());
}

#[test]
fn and_evaluates_right_side_for_errors() {
    // the left side fails, the right one still records the conversion error
    let stages = vec![
        logfmt(),
        lfilter(LabelFilterExpr::Or(
            Box::new(LabelFilterExpr::And(
                Box::new(lstr("level", MatchOp::Eq, "nope")),
                Box::new(lnum("n", CmpOp::Gt, 1.0)),
            )),
            Box::new(lstr("level", MatchOp::Eq, "info")),
        )),
    ];
    let (_, l) = run(stages, "level=info n=x").unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("LabelFilterErr"));
}

#[test]
fn ip_label_filter() {
    let f = |negate| {
        vec![
            logfmt(),
            lfilter(LabelFilterExpr::Ip {
                name: "addr".into(),
                negate,
                pattern: "10.0.0.0/8".into(),
            }),
        ]
    };
    assert!(run(f(false), "addr=10.2.3.4").is_some());
    assert!(run(f(false), "addr=11.2.3.4").is_none());
    assert!(run(f(true), "addr=11.2.3.4").is_some());
    assert!(run(f(false), "other=1").is_none());
}

#[test]
fn ip_label_filter_passes_lines_with_errors() {
    let stages = vec![
        json(),
        lfilter(LabelFilterExpr::Ip {
            name: "addr".into(),
            negate: false,
            pattern: "10.0.0.0/8".into(),
        }),
    ];
    assert!(run(stages, "not json").is_some());
}

#[test]
fn label_filter_on_stream_and_metadata_labels() {
    let md = labels(&[("trace_id", "t1")]);
    let f = || {
        vec![
            lfilter(lstr("env", MatchOp::Eq, "prod")),
            lfilter(lstr("trace_id", MatchOp::Eq, "t1")),
        ]
    };
    assert!(run_with(f(), "x", &stream(), &md).is_some());
    assert!(run_with(f(), "x", &stream(), &Labels::new()).is_none());
}

// ------------------------------------------------------------ line_format

#[test]
fn line_format_simple_field() {
    assert_eq!(fmt_line("{{.msg}}", "msg=hi a=1"), "hi");
    assert_eq!(fmt_line("{{.missing}}", "msg=hi"), "");
}

#[test]
fn line_format_mixed_text_and_stream_labels() {
    assert_eq!(
        fmt_line(
            "[{{.app}}/{{ .level }}] {{.msg}}",
            r#"level=warn msg="disk full""#
        ),
        "[api/warn] disk full"
    );
}

#[test]
fn line_format_pipelines_and_string_functions() {
    assert_eq!(fmt_line("{{ .a | ToUpper }}", "a=hello"), "HELLO");
    assert_eq!(fmt_line("{{ .a | upper | lower }}", "a=MiXeD"), "mixed");
    assert_eq!(
        fmt_line(r#"{{ Replace .a "-" "_" -1 }}"#, "a=a-b-c"),
        "a_b_c"
    );
    assert_eq!(
        fmt_line(r#"{{ Replace .a "-" "_" 1 }}"#, "a=a-b-c"),
        "a_b-c"
    );
    assert_eq!(fmt_line(r#"{{ .a | replace "-" "+" }}"#, "a=a-b"), "a+b");
    assert_eq!(fmt_line(r#"{{ Trim .a "xy" }}"#, "a=xxhiyy"), "hi");
    assert_eq!(fmt_line(r#"{{ TrimLeft .a "x" }}"#, "a=xxhix"), "hix");
    assert_eq!(fmt_line(r#"{{ TrimRight .a "x" }}"#, "a=xxhix"), "xxhi");
    assert_eq!(fmt_line(r#"{{ TrimPrefix .a "pre_" }}"#, "a=pre_x"), "x");
    assert_eq!(fmt_line(r#"{{ TrimSuffix .a ".log" }}"#, "a=f.log"), "f");
    assert_eq!(fmt_line(r#"{{ TrimSpace .a }}"#, r#"a="  x  ""#), "x");
    assert_eq!(fmt_line(r#"{{ .a | trimPrefix "v" }}"#, "a=v1.2"), "1.2");
    assert_eq!(fmt_line(r#"{{ .a | trimSuffix "s" }}"#, "a=cats"), "cat");
    assert_eq!(fmt_line(r#"{{ .a | trimAll "-" }}"#, "a=--x--"), "x");
    assert_eq!(fmt_line(r#"{{ .a | trim }}"#, r#"a=" y ""#), "y");
    assert_eq!(
        fmt_line(r#"{{ .a | title }}"#, r#"a="hello big world""#),
        "Hello Big World"
    );
}

#[test]
fn line_format_trunc_substr_repeat_indent() {
    assert_eq!(fmt_line("{{ .a | trunc 3 }}", "a=abcdef"), "abc");
    assert_eq!(fmt_line("{{ .a | trunc -2 }}", "a=abcdef"), "ef");
    assert_eq!(fmt_line("{{ .a | substr 1 3 }}", "a=abcdef"), "bc");
    assert_eq!(fmt_line("{{ .a | repeat 3 }}", "a=ab"), "ababab");
    assert_eq!(fmt_line(r#"{{ indent 2 "a\nb" }}"#, "x=1"), "  a\n  b");
    assert_eq!(fmt_line(r#"{{ nindent 2 "a" }}"#, "x=1"), "\n  a");
}

#[test]
fn line_format_regex_functions() {
    assert_eq!(
        fmt_line(
            r#"{{ regexReplaceAll "(\\d+)ms" .d "${1} millis" }}"#,
            "d=25ms"
        ),
        "25 millis"
    );
    assert_eq!(
        fmt_line(r#"{{ regexReplaceAllLiteral "a" .s "$1" }}"#, "s=banana"),
        "b$1n$1n$1"
    );
    assert_eq!(fmt_line(r#"{{ count "a" .s }}"#, "s=banana"), "3");
    // a literal regex that does not compile is an execution error (TemplateFormatErr)
    let (line, l) = run(
        vec![logfmt(), line_format(r#"{{ regexReplaceAll "(" .s "x" }}"#)],
        "s=1",
    )
    .unwrap();
    assert_eq!(line, "s=1");
    assert_eq!(get(&l, "__error__").as_deref(), Some("TemplateFormatErr"));
}

#[test]
fn line_format_conditionals_and_comparisons() {
    let t = r#"{{ if eq .level "error" }}E{{ else if eq .level "warn" }}W{{ else }}-{{ end }}"#;
    assert_eq!(fmt_line(t, "level=error"), "E");
    assert_eq!(fmt_line(t, "level=warn"), "W");
    assert_eq!(fmt_line(t, "level=info"), "-");
    assert_eq!(
        fmt_line(r#"{{ if and .a (not .b) }}yes{{ end }}"#, "a=1"),
        "yes"
    );
    assert_eq!(
        fmt_line(r#"{{ if or .b .a }}{{ .a }}{{ end }}"#, "a=z"),
        "z"
    );
    assert_eq!(fmt_line(r#"{{ if ne .a "x" }}ne{{ end }}"#, "a=y"), "ne");
    assert_eq!(
        fmt_line(r#"{{ if lt (int .n) 10 }}small{{ end }}"#, "n=5"),
        "small"
    );
    assert_eq!(fmt_line(r#"{{ if gt .a "b" }}gt{{ end }}"#, "a=c"), "gt");
    assert_eq!(
        fmt_line(r#"{{ if eq .a "x" "y" }}in{{ end }}"#, "a=y"),
        "in"
    );
}

#[test]
fn line_format_contains_prefix_suffix() {
    assert_eq!(
        fmt_line(r#"{{ if contains "err" .m }}1{{ end }}"#, "m=myerror"),
        "1"
    );
    assert_eq!(
        fmt_line(r#"{{ if hasPrefix "my" .m }}1{{ end }}"#, "m=myerror"),
        "1"
    );
    assert_eq!(
        fmt_line(r#"{{ if hasSuffix "or" .m }}1{{ end }}"#, "m=myerror"),
        "1"
    );
    assert_eq!(
        fmt_line(
            r#"{{ if hasSuffix "x" .m }}1{{ else }}0{{ end }}"#,
            "m=myerror"
        ),
        "0"
    );
}

#[test]
fn line_format_variables_range_with() {
    assert_eq!(fmt_line(r#"{{ $x := .a }}{{ $x }}-{{ $x }}"#, "a=q"), "q-q");
    assert_eq!(
        fmt_line(r#"{{ $x := "1" }}{{ $x = "2" }}{{ $x }}"#, "a=q"),
        "2"
    );
    assert_eq!(
        fmt_line(r#"{{ with .a }}<{{ . }}>{{ else }}none{{ end }}"#, "a=v"),
        "<v>"
    );
    assert_eq!(
        fmt_line(r#"{{ with .zz }}<{{ . }}>{{ else }}none{{ end }}"#, "a=v"),
        "none"
    );
    let (line, _) = run(
        vec![
            logfmt(),
            line_format(r#"{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}"#),
        ],
        "b=2 a=1",
    )
    .unwrap();
    assert_eq!(line, "a=1;app=api;b=2;env=prod;");
}

#[test]
fn line_format_range_over_json_with_break() {
    let t = r#"{{ range $i, $e := (fromJson .j).items }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $e }},{{ end }}"#;
    let (line, _) = run(
        vec![json(), line_format(t)],
        r#"{"j":"{\"items\":[\"a\",\"b\",\"c\"]}"}"#,
    )
    .unwrap();
    assert_eq!(line, "a,b,");
}

#[test]
fn line_format_trim_markers_and_comments() {
    assert_eq!(fmt_line("a  {{- .x -}}  b", "x=1"), "a1b");
    assert_eq!(fmt_line("a{{/* note */}}b", "x=1"), "ab");
    assert_eq!(fmt_line("a {{- /* note */ -}} b", "x=1"), "ab");
}

#[test]
fn line_format_printf_and_default() {
    assert_eq!(
        fmt_line(
            r#"{{ printf "%s-%05d|%-4s|%.2f" .a 42 "x" 3.14159 }}"#,
            "a=z"
        ),
        "z-00042|x   |3.14"
    );
    assert_eq!(
        fmt_line(r#"{{ printf "%q %v %t" .a 1.5 true }}"#, "a=z"),
        r#""z" 1.5 true"#
    );
    assert_eq!(
        fmt_line(r#"{{ .missing | default "none" }}"#, "a=z"),
        "none"
    );
    assert_eq!(fmt_line(r#"{{ .a | default "none" }}"#, "a=z"), "z");
}

#[test]
fn line_format_math_functions() {
    assert_eq!(fmt_line("{{ add .a 2 3 }}", "a=5"), "10");
    assert_eq!(fmt_line("{{ sub .a 2 }}", "a=5"), "3");
    assert_eq!(fmt_line("{{ mul .a 2 }}", "a=5"), "10");
    assert_eq!(fmt_line("{{ div .a 2 }}", "a=5"), "2");
    assert_eq!(fmt_line("{{ mod .a 2 }}", "a=5"), "1");
    assert_eq!(fmt_line("{{ addf .a 0.25 }}", "a=1.5"), "1.75");
    assert_eq!(fmt_line("{{ mulf .a 1000000 }}", "a=1.5"), "1.5e+06");
    assert_eq!(fmt_line("{{ divf .a 4 }}", "a=1"), "0.25");
    assert_eq!(fmt_line("{{ max 1 .a 3 }}", "a=7"), "7");
    assert_eq!(fmt_line("{{ minf 1.5 .a }}", "a=0.5"), "0.5");
    assert_eq!(fmt_line("{{ ceil .a }}", "a=1.2"), "2");
    assert_eq!(fmt_line("{{ floor .a }}", "a=1.8"), "1");
    assert_eq!(fmt_line("{{ round .a 2 }}", "a=3.14159"), "3.14");
    assert_eq!(fmt_line("{{ float64 .a }}", "a=2.5"), "2.5");
    assert_eq!(fmt_line("{{ int .a }}", "a=42"), "42");
}

#[test]
fn line_format_bytes_and_duration_functions() {
    assert_eq!(fmt_line("{{ .s | bytes }}", "s=2KB"), "2000");
    assert_eq!(fmt_line("{{ .d | duration }}", "d=1m30s"), "90");
    assert_eq!(fmt_line("{{ .d | duration_seconds }}", "d=250ms"), "0.25");
}

#[test]
fn line_format_encoding_functions() {
    assert_eq!(fmt_line("{{ .a | b64enc }}", "a=hello"), "aGVsbG8=");
    assert_eq!(fmt_line("{{ .a | b64dec }}", r#"a="aGVsbG8=""#), "hello");
    // b64dec pads missing '='
    assert_eq!(fmt_line("{{ .a | b64dec }}", "a=aGVsbG8"), "hello");
    assert_eq!(
        fmt_line("{{ .a | urlencode }}", r#"a="a b&c=d/é""#),
        "a+b%26c%3Dd%2F%C3%A9"
    );
    assert_eq!(fmt_line("{{ .a | urldecode }}", "a=a+b%26c"), "a b&c");
}

#[test]
fn line_format_align_functions() {
    assert_eq!(fmt_line("[{{ .a | alignLeft 5 }}]", "a=ab"), "[ab   ]");
    assert_eq!(fmt_line("[{{ .a | alignRight 5 }}]", "a=ab"), "[   ab]");
    assert_eq!(fmt_line("[{{ .a | alignLeft 2 }}]", "a=abcd"), "[ab]");
    assert_eq!(fmt_line("[{{ .a | alignRight 2 }}]", "a=abcd"), "[cd]");
}

#[test]
fn line_format_line_and_timestamp() {
    assert_eq!(fmt_line("{{ __line__ | ToUpper }}", "a=b"), "A=B");
    assert_eq!(
        fmt_line("{{ __timestamp__ | unixEpochMillis }}", "a=b"),
        "1700000000123"
    );
    assert_eq!(
        fmt_line("{{ __timestamp__ | unixEpochNanos }}", "a=b"),
        "1700000000123456789"
    );
    assert_eq!(
        fmt_line("{{ __timestamp__ | unixEpoch }}", "a=b"),
        "1700000000"
    );
    assert_eq!(
        fmt_line(
            r#"{{ __timestamp__ | date "2006-01-02T15:04:05.000Z07:00" }}"#,
            "a=b"
        ),
        "2023-11-14T22:13:20.123Z"
    );
    assert_eq!(
        fmt_line("{{ __timestamp__ }}", "a=b"),
        "2023-11-14 22:13:20.123456789 +0000 UTC"
    );
}

#[test]
fn line_format_date_parsing_functions() {
    assert_eq!(
        fmt_line(
            r#"{{ toDate "2006-01-02" .d | unixEpoch }}"#,
            "d=2024-03-01"
        ),
        "1709251200"
    );
    assert_eq!(
        fmt_line(
            r#"{{ (toDateInZone "2006-01-02 15:04" "UTC" .d).Unix }}"#,
            r#"d="2024-03-01 10:30""#
        ),
        "1709289000"
    );
    assert_eq!(
        fmt_line(
            r#"{{ date "Jan 2, 2006 3:04PM" (unixToTime .t) }}"#,
            "t=1700000000"
        ),
        "Nov 14, 2023 10:13PM"
    );
    assert_eq!(
        fmt_line(r#"{{ (unixToTime .t).UnixMilli }}"#, "t=1700000000123"),
        "1700000000123"
    );
    assert_eq!(
        fmt_line(
            r#"{{ toDate "2006-01-02T15:04:05Z07:00" .d | unixEpoch }}"#,
            "d=2024-03-01T02:00:00+02:00"
        ),
        "1709251200"
    );
}

#[test]
fn line_format_from_json() {
    let (line, _) = run(
        vec![
            json(),
            line_format(r#"{{ with fromJson .raw }}{{ .user.name }}/{{ .n }}{{ end }}"#),
        ],
        r#"{"raw":"{\"user\":{\"name\":\"ann\"},\"n\":3}"}"#,
    )
    .unwrap();
    assert_eq!(line, "ann/3");
}

#[test]
fn line_format_error_labels_visible_in_templates() {
    let (line, _) = run(vec![json(), line_format("err={{.__error__}}")], "x").unwrap();
    assert_eq!(line, "err=JSONParserErr");
}

#[test]
fn line_format_execution_error_keeps_line_and_sets_error() {
    let (line, l) = run(vec![logfmt(), line_format("{{ ToUpper 1 }}")], "a=1").unwrap();
    assert_eq!(line, "a=1");
    assert_eq!(get(&l, "__error__").as_deref(), Some("TemplateFormatErr"));
    assert!(get(&l, "__error_details__").unwrap().contains("ToUpper"));
}

#[test]
fn line_format_parse_errors_rejected() {
    for bad in [
        "{{ .a ",
        "{{ if .a }}x",
        "{{ nosuchfunc .a }}",
        "{{ end }}",
        "{{ $undefined }}",
    ] {
        let err = Pipeline::new(&[line_format(bad)]).unwrap_err();
        assert!(
            err.to_string().contains("invalid line template"),
            "{bad}: {err}"
        );
    }
}

// ------------------------------------------------------------ label_format

#[test]
fn label_format_rename_removes_source() {
    let (_, l) = run(
        vec![
            logfmt(),
            Stage::LabelFormat(vec![LabelFmt::Rename {
                dst: "severity".into(),
                src: "level".into(),
            }]),
        ],
        "level=warn",
    )
    .unwrap();
    assert_eq!(get(&l, "severity").as_deref(), Some("warn"));
    assert_eq!(get(&l, "level"), None);
}

#[test]
fn label_format_rename_stream_label() {
    let (_, l) = run(
        vec![Stage::LabelFormat(vec![LabelFmt::Rename {
            dst: "service".into(),
            src: "app".into(),
        }])],
        "x",
    )
    .unwrap();
    assert_eq!(get(&l, "service").as_deref(), Some("api"));
    assert_eq!(get(&l, "app"), None);
}

#[test]
fn label_format_rename_missing_source_is_noop() {
    let (_, l) = run(
        vec![Stage::LabelFormat(vec![LabelFmt::Rename {
            dst: "x".into(),
            src: "nope".into(),
        }])],
        "x",
    )
    .unwrap();
    assert_eq!(l, stream());
}

#[test]
fn label_format_template_overrides_stream_label() {
    let (_, l) = run(
        vec![
            logfmt(),
            Stage::LabelFormat(vec![label_tmpl("env", "{{.env}}-{{.zone}}")]),
        ],
        "zone=eu",
    )
    .unwrap();
    assert_eq!(get(&l, "env").as_deref(), Some("prod-eu"));
}

#[test]
fn label_format_templates_see_labels_before_the_stage() {
    let (_, l) = run(
        vec![
            logfmt(),
            Stage::LabelFormat(vec![
                label_tmpl("a", "{{.a}}{{.a}}"),
                label_tmpl("b", "{{.a}}"),
            ]),
        ],
        "a=x",
    )
    .unwrap();
    assert_eq!(get(&l, "a").as_deref(), Some("xx"));
    assert_eq!(get(&l, "b").as_deref(), Some("x"));
}

#[test]
fn label_format_following_stage_sees_result() {
    let (_, l) = run(
        vec![
            logfmt(),
            Stage::LabelFormat(vec![label_tmpl("a", "{{.a | ToUpper}}")]),
            Stage::LabelFormat(vec![label_tmpl("b", "{{.a}}!")]),
        ],
        "a=x",
    )
    .unwrap();
    assert_eq!(get(&l, "b").as_deref(), Some("X!"));
}

#[test]
fn label_format_validation() {
    let dup = Stage::LabelFormat(vec![label_tmpl("a", "1"), label_tmpl("a", "2")]);
    assert!(
        Pipeline::new(&[dup])
            .unwrap_err()
            .to_string()
            .contains("multiple label name")
    );
    let err = Stage::LabelFormat(vec![label_tmpl("__error__", "1")]);
    assert!(Pipeline::new(&[err]).is_err());
    let bad = Stage::LabelFormat(vec![label_tmpl("a", "{{ .x")]);
    assert!(
        Pipeline::new(&[bad])
            .unwrap_err()
            .to_string()
            .contains("invalid template for label 'a'")
    );
}

#[test]
fn label_format_execution_error_sets_error_and_skips_label() {
    let (_, l) = run(
        vec![
            logfmt(),
            Stage::LabelFormat(vec![label_tmpl("b", "{{ div 1 0 }}")]),
        ],
        "a=1",
    )
    .unwrap();
    assert_eq!(get(&l, "b"), None);
    assert_eq!(get(&l, "__error__").as_deref(), Some("TemplateFormatErr"));
}

// ------------------------------------------------------------ drop / keep

#[test]
fn drop_by_name_and_matcher() {
    let (_, l) = run(
        vec![
            logfmt(),
            Stage::Drop(vec![
                LabelSelect::Name("a".into()),
                LabelSelect::Matcher(matcher("b", MatchOp::Eq, "2")),
                LabelSelect::Matcher(matcher("c", MatchOp::Eq, "nope")),
            ]),
        ],
        "a=1 b=2 c=3",
    )
    .unwrap();
    assert_eq!(get(&l, "a"), None);
    assert_eq!(get(&l, "b"), None);
    assert_eq!(get(&l, "c").as_deref(), Some("3"));
}

#[test]
fn drop_stream_label_and_error_labels() {
    let (_, l) = run(
        vec![
            json(),
            Stage::Drop(vec![
                LabelSelect::Name("env".into()),
                LabelSelect::Name("__error__".into()),
                LabelSelect::Name("__error_details__".into()),
            ]),
        ],
        "not json",
    )
    .unwrap();
    assert_eq!(l, labels(&[("app", "api")]));
}

#[test]
fn drop_error_with_matcher() {
    let f = |v: &str| {
        vec![
            json(),
            Stage::Drop(vec![LabelSelect::Matcher(matcher(
                "__error__",
                MatchOp::Eq,
                v,
            ))]),
        ]
    };
    let (_, l) = run(f("JSONParserErr"), "x").unwrap();
    assert_eq!(get(&l, "__error__"), None);
    let (_, l) = run(f("Other"), "x").unwrap();
    assert_eq!(get(&l, "__error__").as_deref(), Some("JSONParserErr"));
}

#[test]
fn keep_only_named_labels_but_errors_stay() {
    let (_, l) = run(
        vec![
            logfmt(),
            lfilter(lnum("n", CmpOp::Gt, 1.0)),
            Stage::Keep(vec![
                LabelSelect::Name("app".into()),
                LabelSelect::Matcher(matcher("level", MatchOp::Eq, "error")),
            ]),
        ],
        "level=error n=bad other=1",
    )
    .unwrap();
    assert_eq!(get(&l, "app").as_deref(), Some("api"));
    assert_eq!(get(&l, "level").as_deref(), Some("error"));
    assert_eq!(get(&l, "env"), None);
    assert_eq!(get(&l, "other"), None);
    assert_eq!(get(&l, "n"), None);
    assert_eq!(get(&l, "__error__").as_deref(), Some("LabelFilterErr"));
}

#[test]
fn keep_matcher_not_matching_removes_label() {
    let (_, l) = run(
        vec![
            logfmt(),
            Stage::Keep(vec![LabelSelect::Matcher(matcher(
                "level",
                MatchOp::Eq,
                "error",
            ))]),
        ],
        "level=info",
    )
    .unwrap();
    assert!(l.is_empty());
}

// ------------------------------------------------------------ decolorize

#[test]
fn decolorize_strips_ansi() {
    let (line, _) = run(
        vec![Stage::Decolorize],
        "\u{1b}[31mred\u{1b}[0m and \u{1b}[1;32mgreen\u{1b}[0m",
    )
    .unwrap();
    assert_eq!(line, "red and green");
    let (line, _) = run(vec![Stage::Decolorize], "plain").unwrap();
    assert_eq!(line, "plain");
}

// ------------------------------------------------------------ labels in general

#[test]
fn no_stages_passes_labels_and_metadata_through() {
    let md = labels(&[("trace", "t")]);
    let (line, l) = run_with(vec![], "x", &stream(), &md).unwrap();
    assert_eq!(line, "x");
    assert_eq!(
        l,
        labels(&[("app", "api"), ("env", "prod"), ("trace", "t")])
    );
}

#[test]
fn metadata_clashing_with_stream_gets_suffix() {
    let md = labels(&[("app", "meta")]);
    let (_, l) = run_with(vec![], "x", &stream(), &md).unwrap();
    assert_eq!(get(&l, "app").as_deref(), Some("api"));
    assert_eq!(get(&l, "app_extracted").as_deref(), Some("meta"));
}

#[test]
fn processed_labels_are_sorted_union() {
    let md = labels(&[("m", "1")]);
    let (_, l) = run_with(vec![logfmt()], "z=1 b=2", &stream(), &md).unwrap();
    let names: Vec<&str> = l.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["app", "b", "env", "m", "z"]);
}

#[test]
fn filters_after_parsers_drop_before_formatting() {
    let stages = vec![
        logfmt(),
        lfilter(lstr("level", MatchOp::Eq, "error")),
        line_format("{{.msg}}"),
    ];
    assert_eq!(
        run(stages.clone(), "level=error msg=boom").unwrap().0,
        "boom"
    );
    assert!(run(stages, "level=info msg=ok").is_none());
}

// ------------------------------------------------------------ unwrap

fn unwrap_of(label: &str, conv: UnwrapConv, post: Vec<LabelFilterExpr>) -> Unwrap {
    Unwrap {
        label: label.into(),
        conv,
        post_filters: post,
    }
}

#[test]
fn unwrap_plain_float_removes_label() {
    let (_, mut l) = run(vec![logfmt()], "latency=0.25 path=/x").unwrap();
    let v = unwrap_value(&unwrap_of("latency", UnwrapConv::None, vec![]), &mut l);
    assert_eq!(v, Some(Some(0.25)));
    assert_eq!(get(&l, "latency"), None);
    assert_eq!(get(&l, "path").as_deref(), Some("/x"));
}

#[test]
fn unwrap_duration_and_bytes() {
    let mut l = labels(&[("d", "1m30s"), ("b", "1.5KiB")]);
    assert_eq!(
        unwrap_value(&unwrap_of("d", UnwrapConv::Duration, vec![]), &mut l),
        Some(Some(90.0))
    );
    assert_eq!(
        unwrap_value(&unwrap_of("b", UnwrapConv::Bytes, vec![]), &mut l),
        Some(Some(1536.0))
    );
    let mut l = labels(&[("d", "-1.5h")]);
    assert_eq!(
        unwrap_value(&unwrap_of("d", UnwrapConv::Duration, vec![]), &mut l),
        Some(Some(-5400.0))
    );
}

#[test]
fn unwrap_conversion_failure_sets_error() {
    let mut l = labels(&[("x", "abc"), ("a", "1")]);
    let v = unwrap_value(&unwrap_of("x", UnwrapConv::None, vec![]), &mut l);
    assert_eq!(v, Some(None));
    assert_eq!(get(&l, "__error__").as_deref(), Some("SampleExtractionErr"));
    assert_eq!(
        get(&l, "__error_details__").as_deref(),
        Some(r#"strconv.ParseFloat: parsing "abc": invalid syntax"#)
    );
    assert_eq!(get(&l, "x"), None);
}

#[test]
fn unwrap_post_filter_drops_errors() {
    let u = unwrap_of(
        "x",
        UnwrapConv::Duration,
        vec![lstr("__error__", MatchOp::Eq, "")],
    );
    let mut l = labels(&[("x", "12")]);
    assert_eq!(unwrap_value(&u, &mut l), None);
    let mut l = labels(&[("x", "12s")]);
    assert_eq!(unwrap_value(&u, &mut l), Some(Some(12.0)));
}

#[test]
fn unwrap_missing_or_empty_label_drops_sample() {
    let u = unwrap_of("x", UnwrapConv::None, vec![]);
    assert_eq!(unwrap_value(&u, &mut labels(&[("a", "1")])), None);
}

#[test]
fn unwrap_post_filter_on_other_label() {
    let u = unwrap_of("x", UnwrapConv::None, vec![lnum("x", CmpOp::Gt, 10.0)]);
    let ex = UnwrapExtractor::new(&u).unwrap();
    assert_eq!(ex.extract(&mut labels(&[("x", "5")])), None);
    let mut l = labels(&[("x", "50")]);
    assert_eq!(ex.extract(&mut l), Some(Some(50.0)));
    assert_eq!(get(&l, "x"), None);
}

#[test]
fn unwrap_extractor_rejects_bad_post_filter() {
    let u = unwrap_of("x", UnwrapConv::None, vec![lstr("a", MatchOp::Re, "(")]);
    assert!(UnwrapExtractor::new(&u).is_err());
}

// ------------------------------------------------------------ through the parser

fn parsed_pipeline(q: &str) -> Vec<Stage> {
    match argus_query::logql::parse(q).expect("query parses") {
        Expr::Log(l) => l.pipeline,
        other => panic!("not a log query: {other:?}"),
    }
}

#[test]
fn parsed_query_runs_end_to_end() {
    let stages = parsed_pipeline(
        r#"{app="api"} |= "GET" | logfmt | status >= 400 | line_format "{{.method}} {{.status}}""#,
    );
    let p = Pipeline::new(&stages).unwrap();
    let out = p
        .process(0, "method=GET status=404", &stream(), &Labels::new())
        .unwrap();
    assert_eq!(out.line, "GET 404");
    assert!(
        p.process(0, "method=GET status=200", &stream(), &Labels::new())
            .is_none()
    );
    assert!(
        p.process(0, "method=POST status=500", &stream(), &Labels::new())
            .is_none()
    );
}

#[test]
fn parsed_query_with_json_params_and_label_format() {
    let stages = parsed_pipeline(
        r#"{app="api"} | json first="servers[0]", ua="headers[\"User-Agent\"]" | label_format agent=ua | drop first"#,
    );
    let p = Pipeline::new(&stages).unwrap();
    let out = p
        .process(
            0,
            r#"{"servers":["a"],"headers":{"User-Agent":"curl"}}"#,
            &stream(),
            &Labels::new(),
        )
        .unwrap();
    assert_eq!(get(&out.labels, "agent").as_deref(), Some("curl"));
    assert_eq!(get(&out.labels, "ua"), None);
    assert_eq!(get(&out.labels, "first"), None);
}

#[test]
fn parsed_query_duration_filter_and_error_filter() {
    let stages =
        parsed_pipeline(r#"{app="api"} | logfmt | took > 250ms or level="error" | __error__="""#);
    let p = Pipeline::new(&stages).unwrap();
    let run1 = |l: &str| p.process(0, l, &stream(), &Labels::new()).is_some();
    assert!(run1("took=300ms level=info"));
    assert!(run1("took=1ms level=error"));
    assert!(!run1("took=1ms level=info"));
    // conversion error: kept by the filter, then dropped by __error__=""
    assert!(!run1("took=abc level=info"));
}

/// Throughput smoke check (run with `--release -- --ignored`): prints lines/s.
#[test]
#[ignore]
fn throughput_smoke() {
    let stages = vec![
        lf(LineFilterOp::Contains, &["status"]),
        logfmt(),
        lfilter(lnum("status", CmpOp::Gte, 400.0)),
        line_format("{{.method}} {{.path}} {{.status}}"),
    ];
    let p = Pipeline::new(&stages).unwrap();
    let s = stream();
    let md = Labels::new();
    let lines: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "ts=2024 method=GET path=/api/{i} status={} took=12ms",
                200 + (i % 4) * 100
            )
        })
        .collect();
    let start = std::time::Instant::now();
    let mut kept = 0usize;
    for _ in 0..200 {
        for l in &lines {
            kept += usize::from(p.process(0, l, &s, &md).is_some());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(kept, 200 * 500);
    eprintln!("{:.0} lines/s", 200_000.0 / secs);
}
