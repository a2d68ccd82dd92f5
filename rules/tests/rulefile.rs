//! Rule file parsing and validation, with `file:line:col: message` errors.

use argus_rules::rulefile::{GroupKind, RuleKind, duplicate_rules, parse, parse_file};

fn errors(text: &str) -> Vec<String> {
    match parse("rules.yml", text) {
        Ok(_) => Vec::new(),
        Err(es) => es.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn valid_file_with_every_field() {
    let text = r#"groups:
  - name: node
    interval: 30s
    query_offset: 1m
    limit: 10
    labels:
      team: infra
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels:
          source: rule
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        keep_firing_for: 2m
        labels:
          severity: page
          instance: '{{ $labels.instance }}'
        annotations:
          summary: 'Instance {{ $labels.instance }} down'
"#;
    let f = parse("rules.yml", text).unwrap();
    assert_eq!(f.groups.len(), 1);
    let g = &f.groups[0];
    assert_eq!(g.name, "node");
    assert_eq!(g.kind, GroupKind::Metrics);
    assert_eq!(g.interval_ms, Some(30_000));
    assert_eq!(g.query_offset_ms, Some(60_000));
    assert_eq!(g.limit, 10);
    assert_eq!(g.labels.get("team"), Some("infra"));
    assert_eq!(g.rules.len(), 2);
    assert_eq!(g.rules[0].kind, RuleKind::Recording);
    assert_eq!(g.rules[0].name, "job:up:sum");
    assert_eq!(g.rules[0].line, 9);
    let a = &g.rules[1];
    assert_eq!(a.kind, RuleKind::Alerting);
    assert_eq!(a.for_ms, 300_000);
    assert_eq!(a.keep_firing_for_ms, 120_000);
    assert_eq!(a.expr.text(), "up == 0");
    assert_eq!(
        a.annotations.get("summary"),
        Some("Instance {{ $labels.instance }} down")
    );
    let merged = g.rule_labels(1);
    assert_eq!(merged.get("team"), Some("infra"));
    assert_eq!(merged.get("severity"), Some("page"));
}

#[test]
fn rule_labels_override_group_labels() {
    let f = parse(
        "f",
        "groups:\n- name: g\n  labels: {a: group, b: group}\n  rules:\n  - alert: A\n    expr: up\n    labels: {b: rule}\n",
    )
    .unwrap();
    let l = f.groups[0].rule_labels(0);
    assert_eq!(l.get("a"), Some("group"));
    assert_eq!(l.get("b"), Some("rule"));
}

#[test]
fn empty_file_and_empty_groups_are_valid() {
    assert_eq!(parse("f", "").unwrap().groups.len(), 0);
    assert_eq!(parse("f", "# only a comment\n").unwrap().groups.len(), 0);
    assert_eq!(parse("f", "groups: []\n").unwrap().groups.len(), 0);
}

#[test]
fn logs_group_takes_logql_metric_queries() {
    let text = r#"groups:
  - name: node-events
    type: logs
    rules:
      - alert: KernelDeadlock
        expr: 'count_over_time({source="node-problem-detector", reason="KernelDeadlock"}[5m]) > 0'
"#;
    let f = parse("f", text).unwrap();
    assert_eq!(f.groups[0].kind, GroupKind::Logs);
    assert_eq!(f.groups[0].rules[0].expr.kind(), GroupKind::Logs);
}

#[test]
fn logs_group_rejects_log_queries() {
    let text = "groups:\n  - name: l\n    type: logs\n    rules:\n      - alert: X\n        expr: '{app=\"a\"} |= \"error\"'\n";
    assert_eq!(
        errors(text),
        vec![
            "rules.yml:6:15: group \"l\", rule 1, \"X\": could not parse expression: a log query cannot be a rule expression: use a metric query such as count_over_time({...}[5m])"
        ]
    );
}

#[test]
fn logs_group_rejects_bad_logql() {
    let text = "groups:\n  - name: l\n    type: logs\n    rules:\n      - alert: X\n        expr: 'count_over_time({app=\"a\"}[5m]'\n";
    let e = errors(text);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "rules.yml:6:15: group \"l\", rule 1, \"X\": could not parse expression: parse error"
        ),
        "{e:?}"
    );
}

#[test]
fn invalid_group_type() {
    let text = "groups:\n  - name: g\n    type: traces\n    rules: []\n";
    assert_eq!(
        errors(text),
        vec!["rules.yml:3:11: group \"g\": invalid type \"traces\": must be metrics or logs"]
    );
}

#[test]
fn unknown_fields_at_each_level() {
    let text = "groups:\n  - name: a\n    foo: 1\n    rules:\n      - alert: X\n        expr: up\n        bar: 2\nextra: true\n";
    assert_eq!(
        errors(text),
        vec![
            "rules.yml:3:5: field foo not found in type rulefmt.RuleGroup",
            "rules.yml:7:9: field bar not found in type rulefmt.Rule",
            "rules.yml:8:1: field extra not found in type rulefmt.RuleGroups",
        ]
    );
}

#[test]
fn yaml_syntax_error_has_position() {
    let text =
        "groups:\n  - name: a\n    rules:\n    - alert: X\n      expr: up\n     bad: indent\n";
    assert_eq!(
        errors(text),
        vec!["rules.yml:6:6: yaml: did not find expected key"]
    );
}

#[test]
fn wrong_types() {
    let text = "groups:\n  - name: [a]\n    limit: lots\n    rules: {}\n";
    assert_eq!(
        errors(text),
        vec![
            "rules.yml:2:11: cannot unmarshal !!seq into string",
            "rules.yml:3:12: cannot unmarshal !!str `lots` into int",
            "rules.yml:4:12: cannot unmarshal !!map into []rulefmt.Rule",
        ]
    );
    assert_eq!(
        errors("- a\n- b\n"),
        vec!["rules.yml:1:1: cannot unmarshal !!seq into rulefmt.RuleGroups"]
    );
}

#[test]
fn bad_durations() {
    let text = "groups:\n  - name: a\n    interval: 5x\n    rules:\n      - alert: X\n        expr: up\n        for: 1.5m\n";
    assert_eq!(
        errors(text),
        vec![
            "rules.yml:3:15: not a valid duration string: \"5x\"",
            "rules.yml:7:14: not a valid duration string: \"1.5m\"",
        ]
    );
}

#[test]
fn duplicate_mapping_key() {
    let text = "groups:\n  - name: a\n    name: b\n    rules: []\n";
    assert_eq!(
        errors(text),
        vec!["rules.yml:3:5: mapping key \"name\" already defined at line 2"]
    );
}

#[test]
fn group_name_errors() {
    let text = "groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n  - name: ''\n    rules: []\n";
    assert_eq!(
        errors(text),
        vec![
            "rules.yml:4:5: groupname: \"a\" is repeated in the same file",
            "rules.yml:6:5: Groupname must not be empty",
        ]
    );
}

#[test]
fn record_and_alert_together_or_neither() {
    let text =
        "groups:\n- name: g\n  rules:\n  - alert: X\n    record: y\n    expr: up\n  - expr: up\n";
    assert_eq!(
        errors(text),
        vec![
            "rules.yml:5:13: group \"g\", rule 1, \"X\": only one of 'record' and 'alert' must be set",
            "rules.yml:7:5: group \"g\", rule 2, \"\": one of 'record' or 'alert' must be set",
        ]
    );
}

#[test]
fn missing_and_unparsable_expr() {
    let text = "groups:\n- name: g\n  rules:\n  - alert: NoExpr\n  - record: r\n    expr: sum(up\n";
    let e = errors(text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(
        e[0],
        "rules.yml:4:5: group \"g\", rule 1, \"NoExpr\": field 'expr' must be set in rule"
    );
    assert!(
        e[1].starts_with(
            "rules.yml:6:11: group \"g\", rule 2, \"r\": could not parse expression: "
        ),
        "{e:?}"
    );
}

#[test]
fn recording_rule_restrictions() {
    let text = "groups:\n- name: g\n  rules:\n  - record: 'bad name'\n    expr: up\n    for: 1m\n    keep_firing_for: 1m\n    annotations:\n      a: b\n";
    assert_eq!(
        errors(text),
        vec![
            "rules.yml:4:13: group \"g\", rule 1, \"bad name\": invalid field 'annotations' in recording rule",
            "rules.yml:4:13: group \"g\", rule 1, \"bad name\": invalid field 'for' in recording rule",
            "rules.yml:4:13: group \"g\", rule 1, \"bad name\": invalid field 'keep_firing_for' in recording rule",
            "rules.yml:4:13: group \"g\", rule 1, \"bad name\": invalid recording rule name: bad name",
        ]
    );
}

#[test]
fn recording_name_with_braces() {
    let e = errors("groups:\n- name: g\n  rules:\n  - record: 'up{a=\"b\"}'\n    expr: up\n");
    assert_eq!(
        e,
        vec![
            "rules.yml:4:13: group \"g\", rule 1, \"up{a=\\\"b\\\"}\": invalid recording rule name: up{a=\"b\"}"
        ]
    );
}

#[test]
fn invalid_label_and_annotation_names() {
    let text = "groups:\n- name: g\n  labels:\n    9x: y\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      __name__: foo\n      ok-not: x\n    annotations:\n      'a b': c\n";
    assert_eq!(
        errors(text),
        vec![
            "rules.yml:4:5: invalid label name: 9x",
            "rules.yml:9:7: group \"g\", rule 1, \"A\": invalid label name: __name__",
            "rules.yml:10:7: group \"g\", rule 1, \"A\": invalid label name: ok-not",
            "rules.yml:12:7: group \"g\", rule 1, \"A\": invalid annotation name: a b",
        ]
    );
}

#[test]
fn template_errors_in_labels_and_annotations() {
    let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      sev: '{{ if }}'\n    annotations:\n      summary: '{{ nofunc $value }}'\n";
    let e = errors(text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with(
            "rules.yml:7:12: group \"g\", rule 1, \"A\": label \"sev\": template: __alert_A:1:"
        ),
        "{e:?}"
    );
    assert_eq!(
        e[1],
        "rules.yml:9:16: group \"g\", rule 1, \"A\": annotation \"summary\": template: __alert_A:1: function \"nofunc\" not defined"
    );
}

#[test]
fn recording_rule_labels_are_not_templates() {
    // Only alerting rules' labels are templates; a recording rule's are literal.
    let f = parse(
        "f",
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    labels:\n      x: '{{ nofunc }}'\n",
    )
    .unwrap();
    assert_eq!(f.groups[0].rules[0].labels.get("x"), Some("{{ nofunc }}"));
}

#[test]
fn all_errors_are_returned_across_groups() {
    let text = "groups:\n- name: a\n  rules:\n  - alert: A\n  - alert: B\n- name: b\n  rules:\n  - record: 1bad\n    expr: up\n";
    assert_eq!(errors(text).len(), 3);
}

#[test]
fn anchors_and_aliases() {
    let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels: &l\n      severity: page\n  - alert: B\n    expr: up == 1\n    labels: *l\n";
    let f = parse("f", text).unwrap();
    assert_eq!(f.groups[0].rules[1].labels.get("severity"), Some("page"));
}

#[test]
fn scalar_label_values_are_strings() {
    let f = parse(
        "f",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      prio: 1\n      flag: true\n      none:\n",
    )
    .unwrap();
    let l = &f.groups[0].rules[0].labels;
    assert_eq!(l.get("prio"), Some("1"));
    assert_eq!(l.get("flag"), Some("true"));
    assert_eq!(l.get("none"), Some(""));
}

#[test]
fn duplicate_rules_are_listed_once() {
    let text = "groups:\n- name: a\n  rules:\n  - record: r\n    expr: up\n  - record: r\n    expr: up * 2\n  - record: r\n    expr: up * 3\n- name: b\n  rules:\n  - alert: r\n    expr: up\n    labels: {x: y}\n";
    let f = parse("f", text).unwrap();
    let d = duplicate_rules(&f);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, "r");
    assert!(d[0].1.is_empty());
}

#[test]
fn parse_file_reads_and_reports_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.yml");
    std::fs::write(
        &p,
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n",
    )
    .unwrap();
    let f = parse_file(p.to_str().unwrap()).unwrap();
    assert_eq!(f.file, p.to_str().unwrap());
    let missing = dir.path().join("nope.yml");
    let e = parse_file(missing.to_str().unwrap()).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].to_string().starts_with(missing.to_str().unwrap()));
}
