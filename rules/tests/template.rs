//! Prometheus alert templates: variables, functions and error texts.

use argus_rules::template::{
    AlertTemplate, TemplateData, expand, format_prom_duration, graph_link, humanize,
    humanize_duration, humanize1024, parse_prom_duration, table_link,
};
use argus_schemas::Labels;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn run(text: &str, value: f64) -> String {
    let l = labels(&[
        ("__name__", "up"),
        ("instance", "node-1.example.com:9100"),
        ("job", "node"),
    ]);
    let ext = labels(&[("cluster", "eu1")]);
    let data = TemplateData {
        labels: &l,
        external_labels: &ext,
        external_url: "http://prom.example.com:9090/prometheus",
        value,
    };
    expand("Test", text, &data, None).unwrap_or_else(|e| format!("ERR {e}"))
}

#[test]
fn variables_labels_value_external() {
    assert_eq!(
        run(
            "{{ $labels.instance }} of {{ $labels.job }} is {{ $value }}",
            0.5
        ),
        "node-1.example.com:9100 of node is 0.5"
    );
    assert_eq!(run("{{ .Labels.job }}/{{ .Value }}", 3.0), "node/3");
    assert_eq!(run("{{ $externalLabels.cluster }}", 1.0), "eu1");
    assert_eq!(
        run("{{ $externalURL }}", 1.0),
        "http://prom.example.com:9090/prometheus"
    );
}

#[test]
fn missing_label_is_empty_string() {
    // Prometheus uses missingkey=zero: a missing label of map[string]string is "".
    assert_eq!(run("[{{ $labels.nope }}]", 1.0), "[]");
    assert_eq!(run("[{{ index $labels \"nope\" }}]", 1.0), "[]");
}

#[test]
fn value_prints_as_go_float() {
    assert_eq!(run("{{ $value }}", 1_000_000.0), "1e+06");
    assert_eq!(run("{{ $value }}", 123456.0), "123456");
    assert_eq!(run("{{ $value }}", 0.00001), "1e-05");
    assert_eq!(run("{{ $value }}", f64::INFINITY), "+Inf");
}

#[test]
fn no_actions_is_verbatim() {
    assert_eq!(run("plain text: 100%", 1.0), "plain text: 100%");
}

#[test]
fn humanize_prometheus_examples() {
    assert_eq!(humanize(1_234_567.0), "1.235M");
    assert_eq!(humanize(0.0), "0");
    assert_eq!(humanize(999.0), "999");
    assert_eq!(humanize(1000.0), "1k");
    assert_eq!(humanize(-1500.0), "-1.5k");
    assert_eq!(humanize(0.001234), "1.234m");
    assert_eq!(humanize(0.000_000_1), "100n");
    assert_eq!(humanize(f64::NAN), "NaN");
    assert_eq!(humanize(12345.0), "12.35k");
    assert_eq!(run("{{ humanize 1234567 }}", 0.0), "1.235M");
    assert_eq!(run("{{ $value | humanize }}", 2_500_000_000.0), "2.5G");
}

#[test]
fn humanize_accepts_strings() {
    assert_eq!(run("{{ humanize \"2048\" }}", 0.0), "2.048k");
    let out = run("{{ humanize \"abc\" }}", 0.0);
    assert!(
        out.contains("error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax"),
        "{out}"
    );
}

#[test]
fn humanize1024_examples() {
    assert_eq!(humanize1024(1024.0), "1ki");
    assert_eq!(humanize1024(1536.0), "1.5ki");
    assert_eq!(humanize1024(1_048_576.0), "1Mi");
    assert_eq!(humanize1024(1.0), "1");
    assert_eq!(humanize1024(0.5), "0.5");
    assert_eq!(run("{{ humanize1024 1073741824 }}", 0.0), "1Gi");
}

#[test]
fn humanize_duration_examples() {
    assert_eq!(humanize_duration(3661.0), "1h 1m 1s");
    assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
    assert_eq!(humanize_duration(61.0), "1m 1s");
    assert_eq!(humanize_duration(1.5), "1.5s");
    assert_eq!(humanize_duration(0.0), "0s");
    assert_eq!(humanize_duration(0.0015), "1.5ms");
    assert_eq!(humanize_duration(-3661.0), "-1h 1m 1s");
    assert_eq!(humanize_duration(59.99999), "60s");
    assert_eq!(run("{{ humanizeDuration 3661 }}", 0.0), "1h 1m 1s");
}

#[test]
fn humanize_percentage_and_timestamp() {
    assert_eq!(run("{{ humanizePercentage 0.1234 }}", 0.0), "12.34%");
    assert_eq!(run("{{ $value | humanizePercentage }}", 1.0), "100%");
    assert_eq!(
        run("{{ humanizeTimestamp 1435065584.128 }}", 0.0),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        run("{{ humanizeTimestamp 0 }}", 0.0),
        "1970-01-01 00:00:00 +0000 UTC"
    );
}

#[test]
fn printf_and_string_functions() {
    assert_eq!(run("{{ printf \"%.2f\" $value }}", 1.23456), "1.23");
    assert_eq!(run("{{ printf \"%s=%d\" \"a\" 5 }}", 0.0), "a=5");
    assert_eq!(run("{{ toUpper $labels.job }}", 0.0), "NODE");
    assert_eq!(run("{{ toLower \"ABC\" }}", 0.0), "abc");
    assert_eq!(
        run("{{ title \"hello wide-world\" }}", 0.0),
        "Hello Wide-World"
    );
    assert_eq!(run("{{ safeHtml \"<b>x</b>\" }}", 0.0), "<b>x</b>");
}

#[test]
fn regex_functions() {
    assert_eq!(
        run(
            "{{ reReplaceAll \"(.*):(.*)\" \"$1\" $labels.instance }}",
            0.0
        ),
        "node-1.example.com"
    );
    assert_eq!(
        run(
            "{{ if match \"^node-\" $labels.instance }}yes{{ else }}no{{ end }}",
            0.0
        ),
        "yes"
    );
}

#[test]
fn strip_port_and_domain() {
    assert_eq!(
        run("{{ stripPort $labels.instance }}", 0.0),
        "node-1.example.com"
    );
    assert_eq!(run("{{ stripPort \"[::1]:9090\" }}", 0.0), "::1");
    assert_eq!(run("{{ stripPort \"host\" }}", 0.0), "host");
    assert_eq!(
        run("{{ stripDomain $labels.instance }}", 0.0),
        "node-1:9100"
    );
    assert_eq!(
        run("{{ stripDomain \"10.0.0.1:9100\" }}", 0.0),
        "10.0.0.1:9100"
    );
    assert_eq!(run("{{ stripDomain \"a.b.c\" }}", 0.0), "a");
}

#[test]
fn links_and_urls() {
    assert_eq!(
        graph_link("rate(x[5m]) > 0"),
        "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0&g0.tab=0"
    );
    assert_eq!(table_link("up"), "/graph?g0.expr=up&g0.tab=1");
    assert_eq!(run("{{ pathPrefix }}", 0.0), "/prometheus");
    assert_eq!(
        run("{{ externalURL }}", 0.0),
        "http://prom.example.com:9090/prometheus"
    );
}

#[test]
fn range_over_labels_and_conditionals() {
    assert_eq!(
        run(
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            0.0
        ),
        "__name__=up;instance=node-1.example.com:9100;job=node;"
    );
    assert_eq!(
        run("{{ if gt $value 80.0 }}high{{ else }}low{{ end }}", 90.0),
        "high"
    );
    assert_eq!(run("{{- \" trimmed \" -}}", 0.0), " trimmed ");
}

#[test]
fn query_function_with_callback() {
    let l = labels(&[("job", "node")]);
    let ext = Labels::new();
    let data = TemplateData {
        labels: &l,
        external_labels: &ext,
        external_url: "",
        value: 1.0,
    };
    let q = |text: &str| -> Result<Vec<(Labels, f64)>, String> {
        assert_eq!(text, "up");
        Ok(vec![
            (labels(&[("instance", "b")]), 0.0),
            (labels(&[("instance", "a")]), 1.0),
        ])
    };
    let t = AlertTemplate::parse(
        "X",
        "{{ with query \"up\" }}{{ . | first | value }}{{ end }}",
    )
    .unwrap();
    assert_eq!(t.expand(&data, Some(&q)).unwrap(), "0");
    let t = AlertTemplate::parse(
        "X",
        "{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}:{{ .Value }} {{ end }}",
    )
    .unwrap();
    assert_eq!(t.expand(&data, Some(&q)).unwrap(), "a:1 b:0 ");
    let t = AlertTemplate::parse("X", "{{ query \"up\" | first | label \"instance\" }}").unwrap();
    assert_eq!(t.expand(&data, Some(&q)).unwrap(), "b");
    let empty = |_: &str| -> Result<Vec<(Labels, f64)>, String> { Ok(vec![]) };
    let err = t.expand(&data, Some(&empty)).unwrap_err();
    assert!(
        err.contains("first() called on vector with no elements"),
        "{err}"
    );
}

#[test]
fn parse_errors_are_go_like() {
    let e = AlertTemplate::parse("HighLoad", "{{ nosuchfunc 1 }}").unwrap_err();
    assert_eq!(
        e,
        "template: __alert_HighLoad:1: function \"nosuchfunc\" not defined"
    );
    assert!(AlertTemplate::parse("X", "{{ if }}").is_err());
    assert!(AlertTemplate::parse("X", "{{ $undefined }}").is_err());
    // Loki's own functions are not Prometheus template functions.
    assert!(AlertTemplate::parse("X", "{{ ToUpper \"a\" }}").is_err());
}

#[test]
fn expand_alert_error_text() {
    let t = AlertTemplate::parse("X", "{{ humanize \"abc\" }}").unwrap();
    let l = Labels::new();
    let data = TemplateData {
        labels: &l,
        external_labels: &l,
        external_url: "",
        value: 0.0,
    };
    let out = t.expand_alert(&data, None);
    assert!(
        out.starts_with(
            "<error expanding template: error executing template __alert_X: template: __alert_X:"
        ),
        "{out}"
    );
    assert!(out.ends_with("invalid syntax>"), "{out}");
}

#[test]
fn query_without_callback_errors() {
    let out = run("{{ query \"up\" }}", 0.0);
    assert!(out.starts_with("ERR error executing template"), "{out}");
}

#[test]
fn parse_duration_and_to_time() {
    assert_eq!(run("{{ parseDuration \"1h30m\" }}", 0.0), "5400");
    assert_eq!(run("{{ (toTime 60).Unix }}", 0.0), "60");
    assert_eq!(parse_prom_duration("1h30m").unwrap(), 5_400_000);
    assert_eq!(parse_prom_duration("90s").unwrap(), 90_000);
    assert_eq!(parse_prom_duration("1d").unwrap(), 86_400_000);
    assert_eq!(parse_prom_duration("250ms").unwrap(), 250);
    assert_eq!(parse_prom_duration("0").unwrap(), 0);
    assert_eq!(
        parse_prom_duration("5x").unwrap_err(),
        "not a valid duration string: \"5x\""
    );
    assert!(parse_prom_duration("30m1h").is_err());
    assert!(parse_prom_duration("1.5h").is_err());
    assert_eq!(format_prom_duration(5_400_000), "1h30m");
    assert_eq!(format_prom_duration(0), "0s");
}
