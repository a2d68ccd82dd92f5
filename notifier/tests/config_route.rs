//! alertmanager.yml parsing and validation, route matching, route and group keys, and
//! time intervals — with differential tests against Alertmanager 0.25 (Debian's
//! prometheus-alertmanager): `amtool config routes test`, `amtool check-config`, and
//! the `groupKey` a running alertmanager puts in webhook payloads.
//!
//! The differential tests need `amtool` (env ARGUS_TEST_AMTOOL, else on PATH) and
//! `prometheus-alertmanager` (env ARGUS_TEST_ALERTMANAGER, else
//! /usr/bin/prometheus-alertmanager or `alertmanager` on PATH); they fail, saying how to
//! install them, when those are missing.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use argus_notifier::config::{AlertmanagerFile, DEFAULT_RESOLVE_TIMEOUT, DEFAULT_WECOM_API_URL};
use argus_notifier::route::{
    DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL, Route, RouteTree,
};
use argus_notifier::timeinterval::{Location, TimeInterval, TimeIntervals};
use argus_rules::alert_store::AlertRouting;
use argus_schemas::Labels;
use chrono::{DateTime, TimeZone, Utc};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

fn load(rel: &str) -> AlertmanagerFile {
    let p = fixtures().join(rel);
    AlertmanagerFile::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn tree(rel: &str) -> RouteTree {
    RouteTree::new(&load(rel)).expect("route tree")
}

/// Label pairs of one alert.
type LabelPairs = Vec<(&'static str, &'static str)>;
/// Labels and the receivers they route to.
type RouteCase = (
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn receivers(t: &RouteTree, l: &Labels) -> Vec<String> {
    t.route(l).into_iter().map(|r| r.receiver.clone()).collect()
}

fn parse_err(yaml: &str) -> String {
    match AlertmanagerFile::parse(yaml, "test.yml") {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} does not contain {p:?}");
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// The named route (by path) of a tree.
fn at<'a>(t: &'a RouteTree, path: &str) -> &'a Route {
    t.walk()
        .into_iter()
        .find(|r| r.path() == path)
        .unwrap_or_else(|| panic!("no route {path}"))
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

#[test]
fn parses_the_full_fixture() {
    let f = load("full.yml");
    let g = &f.global;
    assert_eq!(g.resolve_timeout, Duration::from_secs(120));
    assert_eq!(g.smtp_from, "Argus <alerts@example.com>");
    assert_eq!(g.smtp_hello, "argus.example.com");
    assert_eq!(g.smtp_smarthost, "smtp.example.com:587");
    assert_eq!(g.smtp_auth_username, "alerts");
    assert_eq!(g.smtp_auth_password, "hunter2");
    assert_eq!(g.smtp_auth_identity, "alerts@example.com");
    assert!(!g.smtp_require_tls);
    assert_eq!(
        g.wecom_api_url,
        "https://wecom.example.com/cgi-bin/webhook/send"
    );
    assert_eq!(
        g.ignored_settings(),
        vec!["slack_api_url", "pagerduty_url", "opsgenie_api_key"]
    );

    // Relative template globs are relative to the file.
    assert_eq!(
        f.templates,
        vec![
            fixtures().join("templates/*.tmpl").display().to_string(),
            "/etc/argus/templates/extra.tmpl".to_string()
        ]
    );

    let names: Vec<&str> = f.receivers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["ops", "db", "db-pager", "web", "blackhole"]);
    assert_eq!(f.receivers[0].webhook_configs.len(), 1);
    assert_eq!(
        f.receivers[2].ignored_integrations(),
        vec![("pagerduty_configs", 1)]
    );
    assert_eq!(
        f.receivers[3].ignored_integrations(),
        vec![("slack_configs", 1)]
    );
    assert!(f.receivers[4].webhook_configs.is_empty());

    let root = f.route.as_ref().expect("route");
    assert_eq!(root.receiver, "ops");
    assert_eq!(
        root.group_by.as_deref(),
        Some(&["alertname".to_string(), "cluster".into()][..])
    );
    assert_eq!(root.group_wait, Some(Duration::from_secs(45)));
    assert_eq!(root.group_interval, Some(Duration::from_secs(600)));
    assert_eq!(root.repeat_interval, Some(Duration::from_secs(3 * 3600)));
    assert_eq!(root.routes.len(), 3);
    assert_eq!(root.routes[0].matchers, vec!["team=\"db\"".to_string()]);
    assert!(root.routes[0].routes[0].r#continue);
    assert_eq!(
        root.routes[0].routes[1].match_re["service"],
        "postgres|mysql"
    );
    assert_eq!(root.routes[1].r#match["team"], "web");
    assert_eq!(
        root.routes[1].mute_time_intervals,
        vec!["weekends".to_string()]
    );
    assert_eq!(
        root.routes[1].active_time_intervals,
        vec!["office-hours".to_string()]
    );
    assert_eq!(root.routes[2].group_by.as_deref(), Some(&[][..]));

    assert_eq!(f.inhibit_rules.len(), 2);
    assert_eq!(
        f.inhibit_rules[0].equal,
        vec!["alertname".to_string(), "cluster".into()]
    );
    assert_eq!(f.inhibit_rules[1].source_match["alertname"], "NodeDown");

    assert_eq!(f.time_intervals.len(), 2);
    let office = &f.time_intervals[0].time_intervals[0];
    assert_eq!(office.times.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        office.location,
        Some(Location::Zone(chrono_tz::Asia::Shanghai))
    );
    assert_eq!(f.mute_time_intervals[0].name, "year-end");
    assert_eq!(f.mute_time_intervals[0].time_intervals.len(), 2);

    // The compiled tree and the time intervals of the file work together.
    let t = RouteTree::new(&f).unwrap();
    let web = &t.route(&labels(&[("team", "web")]))[0];
    let ti = TimeIntervals::from_file(&f);
    // Saturday 2024-06-15 12:00 UTC: muted (weekend) and outside office hours.
    let sat = utc("2024-06-15T12:00:00Z");
    assert!(ti.any_active(&web.mute_time_intervals, sat).unwrap());
    assert!(!ti.any_active(&web.active_time_intervals, sat).unwrap());
    // Monday 2024-06-17 02:00 UTC = 10:00 in Shanghai: office hours.
    let mon = utc("2024-06-17T02:00:00Z");
    assert!(!ti.any_active(&web.mute_time_intervals, mon).unwrap());
    assert!(ti.any_active(&web.active_time_intervals, mon).unwrap());
    assert!(
        ti.is_active("year-end", utc("2024-12-28T00:00:00Z"))
            .unwrap()
    );
    assert!(
        !ti.is_active("year-end", utc("2024-12-20T00:00:00Z"))
            .unwrap()
    );
    assert!(
        ti.is_active("year-end", utc("2025-01-01T10:00:00Z"))
            .unwrap()
    );
    assert!(
        !ti.is_active("year-end", utc("2031-01-01T10:00:00Z"))
            .unwrap()
    );
    let unknown = ti.is_active("nope", sat).unwrap_err().to_string();
    assert_contains(&unknown, &["nope"]);
}

#[test]
fn defaults_apply_when_unset() {
    let f = AlertmanagerFile::parse(
        "route:\n  receiver: a\nreceivers:\n  - name: a\n",
        "min.yml",
    )
    .unwrap();
    assert_eq!(f.global.resolve_timeout, DEFAULT_RESOLVE_TIMEOUT);
    assert_eq!(f.global.resolve_timeout, Duration::from_secs(300));
    assert_eq!(f.global.smtp_hello, "localhost");
    assert!(f.global.smtp_require_tls);
    assert_eq!(f.global.wecom_api_url, DEFAULT_WECOM_API_URL);
    assert!(f.global.ignored_settings().is_empty());
    let t = RouteTree::new(&f).unwrap();
    let root = t.root();
    assert_eq!(root.group_wait, DEFAULT_GROUP_WAIT);
    assert_eq!(root.group_wait, Duration::from_secs(30));
    assert_eq!(root.group_interval, DEFAULT_GROUP_INTERVAL);
    assert_eq!(root.group_interval, Duration::from_secs(300));
    assert_eq!(root.repeat_interval, DEFAULT_REPEAT_INTERVAL);
    assert_eq!(root.repeat_interval, Duration::from_secs(4 * 3600));
    assert!(root.group_by.is_empty() && !root.group_by_all);
    // An empty `global:` block and null lists are the defaults too (as in Go).
    let f = AlertmanagerFile::parse(
        "global:\nroute:\n  receiver: a\n  routes:\nreceivers:\n  - name: a\ninhibit_rules:\n",
        "nulls.yml",
    )
    .unwrap();
    assert_eq!(f.global.smtp_hello, "localhost");
}

#[test]
fn yaml_errors_name_file_line_and_field() {
    let msg =
        parse_err("route:\n  receiver: a\n  routes:\n    - recevier: b\nreceivers:\n  - name: a\n");
    assert_contains(&msg, &["test.yml", "recevier", "line 4", "route.routes[0]"]);
    let msg = parse_err("route:\n  receiver: a\n  group_wait: 5 minutes\n");
    assert_contains(&msg, &["test.yml", "group_wait", "5 minutes", "line 3"]);
    let msg = parse_err(
        "route:\n  receiver: a\nreceivers:\n  - name: a\ntime_intervals:\n  - name: t\n    time_intervals:\n      - weekdays: [mon]\n",
    );
    assert_contains(
        &msg,
        &[
            "test.yml",
            "mon is not a valid weekday",
            "line 8",
            "weekdays",
        ],
    );
    let msg = parse_err("route: [\n");
    assert_contains(&msg, &["test.yml", "line"]);
    let missing = AlertmanagerFile::load(fixtures().join("nope.yml"))
        .unwrap_err()
        .to_string();
    assert_contains(&missing, &["nope.yml"]);
}

#[test]
fn validation_errors_name_the_thing() {
    let r = "receivers:\n  - name: a\n  - name: b\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("receivers: []\n".into(), vec!["no route provided"]),
        (
            format!("route:\n  group_by: [x]\n{r}"),
            vec!["route:", "root route must specify a default receiver"],
        ),
        (
            format!("route:\n  receiver: a\n  matchers: ['x=\"y\"']\n{r}"),
            vec!["root route must not have any matchers"],
        ),
        (
            format!("route:\n  receiver: a\n  match_re: {{x: y}}\n{r}"),
            vec!["root route must not have any matchers"],
        ),
        (
            format!("route:\n  receiver: a\n  continue: true\n{r}"),
            vec!["cannot have continue in root route"],
        ),
        (
            format!(
                "route:\n  receiver: a\n  mute_time_intervals: [w]\n{r}time_intervals:\n  - name: w\n    time_intervals: []\n"
            ),
            vec!["root route must not have any mute time intervals"],
        ),
        (
            format!(
                "route:\n  receiver: a\n  active_time_intervals: [w]\n{r}time_intervals:\n  - name: w\n    time_intervals: []\n"
            ),
            vec!["root route must not have any active time intervals"],
        ),
        (
            format!(
                "route:\n  receiver: a\n  routes:\n    - receiver: b\n    - routes:\n        - receiver: ghost\n{r}"
            ),
            vec![
                "route.routes[1].routes[0]",
                "undefined receiver \"ghost\" used in route",
            ],
        ),
        (
            format!("route:\n  receiver: a\n{r}  - name: a\n"),
            vec![
                "receivers[2]",
                "notification config name \"a\" is not unique",
            ],
        ),
        (
            format!("route:\n  receiver: a\n{r}  - {{}}\n"),
            vec!["receivers[2]", "missing name in receiver"],
        ),
        (
            format!("route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [holidays]\n{r}"),
            vec![
                "route.routes[0]",
                "undefined time interval \"holidays\" used in route",
            ],
        ),
        (
            format!("route:\n  receiver: a\n  routes:\n    - active_time_intervals: [night]\n{r}"),
            vec!["route.routes[0]", "undefined time interval \"night\""],
        ),
        (
            format!(
                "route:\n  receiver: a\n{r}mute_time_intervals:\n  - name: w\n    time_intervals: []\ntime_intervals:\n  - name: w\n    time_intervals: []\n"
            ),
            vec!["time_intervals[0]", "time interval \"w\" is not unique"],
        ),
        (
            format!("route:\n  receiver: a\n{r}time_intervals:\n  - time_intervals: []\n"),
            vec!["time_intervals[0]", "missing name in time interval"],
        ),
        (
            format!("route:\n  receiver: a\n  routes:\n    - group_by: ['...', alertname]\n{r}"),
            vec!["route.routes[0]", "wildcard group_by (`...`)"],
        ),
        (
            format!("route:\n  receiver: a\n  group_by: [ok, not-ok]\n{r}"),
            vec!["route:", "invalid label name \"not-ok\" in group_by list"],
        ),
        (
            format!("route:\n  receiver: a\n  group_by: [x, y, x]\n{r}"),
            vec!["duplicated label \"x\" in group_by"],
        ),
        (
            format!("route:\n  receiver: a\n  routes:\n    - group_interval: 0s\n{r}"),
            vec!["route.routes[0]", "group_interval cannot be zero"],
        ),
        (
            format!("route:\n  receiver: a\n  repeat_interval: 0\n{r}"),
            vec!["route:", "repeat_interval cannot be zero"],
        ),
        (
            format!("route:\n  receiver: a\n  routes:\n    - match: {{bad-name: x}}\n{r}"),
            vec!["route.routes[0]", "invalid label name \"bad-name\""],
        ),
        (
            format!("route:\n  receiver: a\n  routes:\n    - match_re: {{x: '(oops'}}\n{r}"),
            vec!["route.routes[0]", "match_re", "error parsing regexp"],
        ),
        (
            format!("route:\n  receiver: a\n  routes:\n    - {{}}\n    - matchers: ['x~y']\n{r}"),
            vec!["route.routes[1]", "bad matcher format: x~y"],
        ),
        (
            format!(
                "route:\n  receiver: a\n{r}inhibit_rules:\n  - {{}}\n  - source_matchers: ['=x']\n"
            ),
            vec!["inhibit_rules[1]", "bad matcher format: =x"],
        ),
        (
            format!("route:\n  receiver: a\n{r}inhibit_rules:\n  - equal: [a-b]\n"),
            vec!["inhibit_rules[0]", "\"a-b\""],
        ),
        (
            format!("global:\n  smtp_smarthost: mailhost\nroute:\n  receiver: a\n{r}"),
            vec!["global.smtp_smarthost", "missing port"],
        ),
        (
            format!("global:\n  smtp_smarthost: 'mailhost:'\nroute:\n  receiver: a\n{r}"),
            vec!["global.smtp_smarthost", "port cannot be empty"],
        ),
        (
            format!("global:\n  slack_api_url: 'ftp://x'\nroute:\n  receiver: a\n{r}"),
            vec!["global.slack_api_url", "unsupported scheme \"ftp\""],
        ),
        (
            format!("global:\n  wecom_api_url: 'https:///path'\nroute:\n  receiver: a\n{r}"),
            vec!["global.wecom_api_url", "missing host"],
        ),
        (
            format!(
                "global:\n  smtp_auth_password: a\n  smtp_auth_password_file: b\nroute:\n  receiver: a\n{r}"
            ),
            vec!["smtp_auth_password & smtp_auth_password_file"],
        ),
    ];
    for (yaml, parts) in cases {
        let msg = parse_err(&yaml);
        assert!(msg.starts_with("test.yml: "), "{msg}");
        assert_contains(&msg, &parts);
    }
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

#[test]
fn routes_depth_first_with_continue() {
    let t = tree("routing/nested.yml");
    let cases: &[RouteCase] = &[
        // Nothing matches but `severity=""` (a missing label is empty).
        (&[], &["no-severity"]),
        (&[("severity", "x")], &["default"]),
        // db-pager continues to its sibling; db-mail stops.
        (
            &[("team", "db"), ("severity", "critical")],
            &["db-pager", "db-mail"],
        ),
        (&[("team", "db"), ("severity", "warning")], &["db-mail"]),
        // No child matched: the parent itself.
        (&[("team", "db"), ("severity", "info")], &["db"]),
        // A child without a receiver takes its parent's.
        (
            &[("team", "db"), ("severity", "info"), ("env", "staging")],
            &["db"],
        ),
        // continue on siblings at the top level, then prod (whose children fail).
        (
            &[
                ("team", "web"),
                ("env", "prod"),
                ("severity", "critical"),
                ("service", "api"),
            ],
            &["web", "api", "prod"],
        ),
        (
            &[("team", "web"), ("env", "dev"), ("severity", "x")],
            &["default"],
        ),
        (
            &[
                ("env", "prod"),
                ("region", "eu-west"),
                ("severity", "critical"),
            ],
            &["eu-oncall"],
        ),
        (
            &[("env", "prod"), ("region", "eu-west"), ("severity", "info")],
            &["prod"],
        ),
        // match_re is anchored: `api|frontend` does not match `frontend-x`.
        (&[("service", "frontend")], &["api", "no-severity"]),
        (
            &[("service", "frontend-x"), ("severity", "x")],
            &["default"],
        ),
        // A route without receiver (us-east) that continues: its child, or itself.
        (
            &[
                ("env", "prod"),
                ("region", "us-east"),
                ("severity", "critical"),
            ],
            &["us-pager"],
        ),
        (
            &[
                ("env", "prod"),
                ("region", "us-east"),
                ("severity", "warning"),
            ],
            &["prod"],
        ),
    ];
    for (l, want) in cases {
        assert_eq!(receivers(&t, &labels(l)), *want, "{l:?}");
    }
    let t = tree("routing/continue.yml");
    let cases: &[RouteCase] = &[
        (&[], &["all-1", "all-2", "not-a1"]),
        (&[("a", "1")], &["all-1", "a1", "a12"]),
        // b=1 route has no receiver (a1's) and continues into b12, which continues into
        // c1; c1 stops before d1.
        (
            &[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")],
            &["all-1", "a1", "b12", "c1", "a12"],
        ),
        (&[("a", "1"), ("d", "1")], &["all-1", "d1", "a12"]),
        (&[("a", "2")], &["all-1", "a12"]),
        (&[("a", "3")], &["all-1", "a3", "all-2", "not-a1"]),
    ];
    for (l, want) in cases {
        assert_eq!(receivers(&t, &labels(l)), *want, "{l:?}");
    }
}

#[test]
fn options_are_inherited() {
    let t = tree("full.yml");
    let root = t.root();
    assert_eq!(
        (root.group_wait, root.group_interval),
        (Duration::from_secs(45), Duration::from_secs(600))
    );
    assert_eq!(
        root.group_by,
        vec!["alertname".to_string(), "cluster".into()]
    );

    let db = at(&t, "route.routes[0]");
    assert_eq!(db.receiver, "db");
    assert!(db.group_by_all);
    assert_eq!(db.repeat_interval, Duration::from_secs(3 * 3600));

    let pager = at(&t, "route.routes[0].routes[0]");
    assert_eq!(pager.receiver, "db-pager");
    assert_eq!(pager.group_wait, Duration::from_secs(10));
    assert_eq!(pager.group_interval, Duration::from_secs(600));
    assert!(pager.group_by_all, "`...` is inherited");
    assert!(pager.continue_matching);

    let svc = at(&t, "route.routes[0].routes[1]");
    assert_eq!(svc.receiver, "db", "no receiver: the parent's");
    assert_eq!(svc.group_by, vec!["service".to_string()]);
    assert!(!svc.group_by_all, "naming labels turns `...` off");
    assert_eq!(svc.repeat_interval, Duration::from_secs(1800));
    assert_eq!(svc.group_wait, Duration::from_secs(45));

    let web = at(&t, "route.routes[1]");
    assert_eq!(web.mute_time_intervals, vec!["weekends".to_string()]);
    assert_eq!(web.active_time_intervals, vec!["office-hours".to_string()]);

    // `group_by: []` names no label: the parent's grouping stays.
    let bh = at(&t, "route.routes[2]");
    assert_eq!(bh.group_by, vec!["alertname".to_string(), "cluster".into()]);
    assert!(!bh.group_by_all);

    // Time intervals are not inherited.
    let f = AlertmanagerFile::parse(
        "route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [w]\n      routes:\n        - matchers: [x=y]\nreceivers: [{name: a}]\ntime_intervals: [{name: w, time_intervals: []}]\n",
        "t.yml",
    )
    .unwrap();
    let t = RouteTree::new(&f).unwrap();
    assert_eq!(
        at(&t, "route.routes[0]").mute_time_intervals,
        vec!["w".to_string()]
    );
    assert!(
        at(&t, "route.routes[0].routes[0]")
            .mute_time_intervals
            .is_empty()
    );

    // walk() lists every route, depth-first.
    let t = tree("full.yml");
    let paths: Vec<&str> = t.walk().into_iter().map(|r| r.path()).collect();
    assert_eq!(
        paths,
        [
            "route",
            "route.routes[0]",
            "route.routes[0].routes[0]",
            "route.routes[0].routes[1]",
            "route.routes[1]",
            "route.routes[2]"
        ]
    );
}

#[test]
fn route_keys_and_ids() {
    let t = tree("full.yml");
    let keys: Vec<(&str, &str)> = t.walk().into_iter().map(|r| (r.key(), r.id())).collect();
    assert_eq!(
        keys,
        [
            ("{}", "{}"),
            ("{}/{team=\"db\"}", "{}/{team=\"db\"}/0"),
            (
                "{}/{team=\"db\"}/{env=~\"prod|staging\",severity=\"critical\"}",
                "{}/{team=\"db\"}/0/{env=~\"prod|staging\",severity=\"critical\"}/0"
            ),
            // match_re values show anchored, as in Alertmanager.
            (
                "{}/{team=\"db\"}/{service=~\"^(?:postgres|mysql)$\"}",
                "{}/{team=\"db\"}/0/{service=~\"^(?:postgres|mysql)$\"}/1"
            ),
            ("{}/{team=\"web\"}", "{}/{team=\"web\"}/1"),
            (
                "{}/{env!=\"prod\",severity=\"info\"}",
                "{}/{env!=\"prod\",severity=\"info\"}/2"
            ),
        ]
    );
    for r in t.walk() {
        assert_eq!(t.find(r.id()).map(|x| x.path()), Some(r.path()));
    }
    // Matchers are sorted by name, then value, then type; escapes as OpenMetrics.
    let f = AlertmanagerFile::parse(
        "route:\n  receiver: a\n  routes:\n    - matchers: ['b=\"1\"', 'a!~\"x\"', 'a=~\"x\"', 'a=\"y\\\\\\\"z\"']\n      match: {c: d}\nreceivers: [{name: a}]\n",
        "t.yml",
    )
    .unwrap();
    let t = RouteTree::new(&f).unwrap();
    assert_eq!(
        t.root().routes[0].key(),
        r#"{}/{a=~"x",a!~"x",a="y\\\"z",b="1",c="d"}"#
    );
}

#[test]
fn group_labels_and_keys() {
    let t = tree("full.yml");
    let l = labels(&[
        ("alertname", "DiskFull"),
        ("cluster", "c1"),
        ("team", "db"),
        ("severity", "critical"),
        ("env", "prod"),
        ("instance", "db-1"),
    ]);
    let routes = t.route(&l);
    assert_eq!(
        routes.len(),
        1,
        "pager continues, but the service route does not match"
    );
    let pager = routes[0];
    // `...`: every label.
    assert_eq!(pager.group_labels(&l), l);
    assert_eq!(
        pager.group_key(&pager.group_labels(&l)),
        "{}/{team=\"db\"}/{env=~\"prod|staging\",severity=\"critical\"}:{alertname=\"DiskFull\", cluster=\"c1\", env=\"prod\", instance=\"db-1\", severity=\"critical\", team=\"db\"}"
    );
    let l2 = labels(&[("alertname", "X"), ("cluster", "c2"), ("other", "y")]);
    let root = t.route(&l2)[0];
    assert_eq!(root.path(), "route");
    assert_eq!(
        root.group_labels(&l2),
        labels(&[("alertname", "X"), ("cluster", "c2")])
    );
    assert_eq!(
        root.group_key(&root.group_labels(&l2)),
        "{}:{alertname=\"X\", cluster=\"c2\"}"
    );
    // A group-by label the alert lacks is left out.
    let l3 = labels(&[("alertname", "Y")]);
    assert_eq!(
        t.route(&l3)[0].group_key(&t.route(&l3)[0].group_labels(&l3)),
        "{}:{alertname=\"Y\"}"
    );
}

#[test]
fn implements_alert_routing() {
    let t = tree("routing/nested.yml");
    let routing: &dyn AlertRouting = &t;
    assert_eq!(
        routing.receivers(),
        [
            "default",
            "db",
            "db-pager",
            "db-mail",
            "web",
            "api",
            "prod",
            "eu-oncall",
            "us-pager",
            "no-severity"
        ]
    );
    let l = labels(&[
        ("alertname", "A"),
        ("team", "db"),
        ("severity", "critical"),
        ("x", "y"),
    ]);
    let m = routing.route(&l);
    let got: Vec<(&str, Labels)> = m
        .iter()
        .map(|m| (m.receiver.as_str(), m.group_labels.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("db-pager", labels(&[("alertname", "A")])),
            ("db-mail", labels(&[("alertname", "A")]))
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Time intervals (cases from Alertmanager's documentation of time_intervals)
// ---------------------------------------------------------------------------------------

fn interval(yaml: &str) -> TimeInterval {
    argus_notifier::config::parse_section(yaml, "interval").unwrap()
}

#[test]
fn time_intervals_contain_what_the_docs_say() {
    // times: end exclusive.
    let ti = interval("times: [{start_time: '09:00', end_time: '17:00'}]");
    assert!(!ti.contains(utc("2024-01-10T08:59:59Z")));
    assert!(ti.contains(utc("2024-01-10T09:00:00Z")));
    assert!(ti.contains(utc("2024-01-10T16:59:59Z")));
    assert!(!ti.contains(utc("2024-01-10T17:00:00Z")));
    // 24:00 ends at midnight.
    let ti = interval("times: [{start_time: '17:00', end_time: '24:00'}]");
    assert!(ti.contains(utc("2024-01-10T23:59:00Z")));
    assert!(!ti.contains(utc("2024-01-11T00:00:00Z")));
    // weekdays: inclusive ranges, several entries, names in any case.
    let ti = interval("weekdays: ['Monday:friday']");
    assert!(ti.contains(utc("2024-01-05T12:00:00Z"))); // Friday
    assert!(!ti.contains(utc("2024-01-06T12:00:00Z"))); // Saturday
    assert!(!ti.contains(utc("2024-01-07T12:00:00Z"))); // Sunday
    assert!(ti.contains(utc("2024-01-08T00:00:00Z"))); // Monday
    let ti = interval("weekdays: [saturday, sunday]");
    assert!(ti.contains(utc("2024-01-07T12:00:00Z")));
    assert!(!ti.contains(utc("2024-01-08T12:00:00Z")));
    // days_of_month: the first five and the last three days.
    let ti = interval("days_of_month: ['1:5', '-3:-1']");
    for (d, want) in [
        ("2024-01-01", true),
        ("2024-01-05", true),
        ("2024-01-06", false),
        ("2024-01-28", false),
        ("2024-01-29", true),
        ("2024-01-31", true),
        ("2024-02-26", false),
        ("2024-02-27", true), // leap year: 29 days
        ("2023-02-26", true), // 28 days
        ("2023-02-25", false),
        ("2024-04-28", true), // 30 days
        ("2024-04-27", false),
    ] {
        assert_eq!(ti.contains(utc(&format!("{d}T12:00:00Z"))), want, "{d}");
    }
    // The last day; a day past the month's end never matches; ranges stop at the end.
    let last = interval("days_of_month: ['-1']");
    assert!(last.contains(utc("2024-02-29T00:00:00Z")));
    assert!(last.contains(utc("2023-02-28T00:00:00Z")));
    assert!(!last.contains(utc("2024-04-29T00:00:00Z")));
    let d31 = interval("days_of_month: [31]");
    assert!(!d31.contains(utc("2024-04-30T00:00:00Z")));
    assert!(d31.contains(utc("2024-05-31T00:00:00Z")));
    let late = interval("days_of_month: ['25:31']");
    assert!(late.contains(utc("2023-02-28T00:00:00Z")));
    assert!(!late.contains(utc("2023-03-01T00:00:00Z")));
    // months: numbers, names, ranges.
    let ti = interval("months: ['1:3', 'may:august', 'december']");
    for (m, want) in [
        (1, true),
        (2, true),
        (3, true),
        (4, false),
        (6, true),
        (9, false),
        (11, false),
        (12, true),
    ] {
        assert_eq!(
            ti.contains(Utc.with_ymd_and_hms(2024, m, 15, 0, 0, 0).unwrap()),
            want,
            "month {m}"
        );
    }
    // years.
    let ti = interval("years: ['2020:2022', '2030']");
    for (y, want) in [
        (2019, false),
        (2020, true),
        (2022, true),
        (2023, false),
        (2030, true),
    ] {
        assert_eq!(
            ti.contains(Utc.with_ymd_and_hms(y, 6, 1, 0, 0, 0).unwrap()),
            want,
            "year {y}"
        );
    }
    // location: every field is read in the zone, weekdays too.
    let ti = interval(
        "times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']\nlocation: Australia/Sydney",
    );
    assert!(ti.contains(utc("2024-01-15T00:00:00Z"))); // Mon 11:00 AEDT
    assert!(!ti.contains(utc("2024-01-15T07:00:00Z"))); // Mon 18:00
    assert!(ti.contains(utc("2024-01-14T22:00:00Z"))); // Sun UTC, Mon 09:00 Sydney
    assert!(!ti.contains(utc("2024-01-12T22:00:00Z"))); // Fri UTC, Sat 09:00 Sydney
    // A month with a daylight saving change still has 31 days.
    let ny = interval("days_of_month: ['-1']\nlocation: America/New_York");
    assert!(ny.contains(utc("2024-03-31T16:00:00Z")));
    assert!(!ny.contains(utc("2024-03-30T16:00:00Z")));
    // All fields must hold.
    let ti = interval(
        "times: [{start_time: '20:00', end_time: '23:00'}]\nweekdays: ['monday:wednesday', saturday, sunday]\ndays_of_month: ['1:5', '-3:-1']\nmonths: ['may:august']\nyears: ['2020:2022']",
    );
    assert!(ti.contains(utc("2021-05-01T21:00:00Z"))); // Saturday
    assert!(!ti.contains(utc("2021-05-01T19:00:00Z"))); // too early
    assert!(!ti.contains(utc("2021-05-10T21:00:00Z"))); // day 10
    assert!(!ti.contains(utc("2021-09-01T21:00:00Z"))); // September
    assert!(!ti.contains(utc("2023-05-01T21:00:00Z"))); // 2023
    // No field: always; an empty list: never.
    assert!(interval("{}").contains(utc("2024-01-01T00:00:00Z")));
    assert!(!interval("times: []").contains(utc("2024-01-01T00:00:00Z")));
    // UTC and Local parse.
    assert_eq!(interval("location: UTC").location, Some(Location::Utc));
    assert_eq!(interval("location: Local").location, Some(Location::Local));
}

#[test]
fn time_interval_errors_are_named() {
    let err = |y: &str| {
        argus_notifier::config::parse_section::<TimeInterval>(y, "interval")
            .unwrap_err()
            .to_string()
    };
    assert_contains(
        &err("times: [{start_time: '17:00', end_time: '09:00'}]"),
        &["start time cannot be equal or greater than end time"],
    );
    assert_contains(
        &err("times: [{start_time: '25:00', end_time: '26:00'}]"),
        &["25:00"],
    );
    assert_contains(
        &err("times: [{start_time: '09:00'}]"),
        &["both start and end times must be provided"],
    );
    assert_contains(&err("weekdays: [mon]"), &["mon is not a valid weekday"]);
    assert_contains(&err("weekdays: ['friday:monday']"), &["friday:monday"]);
    assert_contains(
        &err("days_of_month: [0]"),
        &["0 is not a valid day of the month"],
    );
    assert_contains(
        &err("days_of_month: ['1:32']"),
        &["32 is not a valid day of the month"],
    );
    assert_contains(
        &err("days_of_month: ['-1:5']"),
        &["end day must be negative if start day is negative"],
    );
    assert_contains(
        &err("days_of_month: ['10:2']"),
        &["end day 2 is always before start day 10"],
    );
    assert_contains(&err("days_of_month: ['x']"), &["\"x\""]);
    assert_contains(
        &err("months: ['may:january']"),
        &["end month january is before start month may"],
    );
    assert_contains(&err("months: [maybe]"), &["maybe is not a valid month"]);
    assert_contains(
        &err("years: ['2022:2020']"),
        &["end year 2020 is before start year 2022"],
    );
    assert_contains(&err("years: ['1:2:3']"), &["couldn't parse range 1:2:3"]);
    assert_contains(
        &err("location: Mars/Olympus"),
        &["unknown time zone Mars/Olympus"],
    );
    assert_contains(&err("weekday: [monday]"), &["weekday"]);
}

// ---------------------------------------------------------------------------------------
// Differential tests against Alertmanager 0.25
// ---------------------------------------------------------------------------------------

const INSTALL: &str = "install Debian's Alertmanager 0.25 tools: `sudo apt-get install -y prometheus-alertmanager` (or deploy/install-prometheus-tools.sh)";

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn amtool() -> PathBuf {
    if let Some(p) = std::env::var_os("ARGUS_TEST_AMTOOL") {
        return PathBuf::from(p);
    }
    on_path("amtool").unwrap_or_else(|| {
        panic!("amtool not found (ARGUS_TEST_AMTOOL unset, not on PATH): {INSTALL}")
    })
}

fn alertmanager_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ARGUS_TEST_ALERTMANAGER") {
        return PathBuf::from(p);
    }
    let deb = PathBuf::from("/usr/bin/prometheus-alertmanager");
    if deb.is_file() {
        return deb;
    }
    on_path("alertmanager").unwrap_or_else(|| {
        panic!("alertmanager not found (ARGUS_TEST_ALERTMANAGER unset, no /usr/bin/prometheus-alertmanager): {INSTALL}")
    })
}

/// A label as amtool reads it on its command line (`name="value"`, escaped).
fn amtool_label(n: &str, v: &str) -> String {
    let v = v
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("{n}=\"{v}\"")
}

#[test]
fn amtool_routes_test_agrees() {
    let amtool = amtool();
    let sets: Vec<(&str, Vec<LabelPairs>)> = vec![
        (
            "routing/nested.yml",
            vec![
                vec![],
                vec![("severity", "x")],
                vec![("team", "db"), ("severity", "critical")],
                vec![("team", "db"), ("severity", "warning")],
                vec![("team", "db"), ("severity", "info")],
                vec![("team", "db"), ("severity", "info"), ("env", "staging")],
                vec![("team", "db")],
                vec![
                    ("team", "web"),
                    ("env", "prod"),
                    ("severity", "critical"),
                    ("service", "api"),
                ],
                vec![("team", "web"), ("env", "dev"), ("severity", "x")],
                vec![("team", "web"), ("severity", "x")],
                vec![
                    ("env", "prod"),
                    ("region", "eu-west"),
                    ("severity", "critical"),
                ],
                vec![("env", "prod"), ("region", "eu-west"), ("severity", "info")],
                vec![("env", "prod"), ("region", "eu"), ("severity", "page")],
                vec![("service", "frontend")],
                vec![("service", "frontend-x"), ("severity", "x")],
                vec![("service", "API"), ("severity", "x")],
                vec![
                    ("env", "prod"),
                    ("region", "us-east"),
                    ("severity", "critical"),
                ],
                vec![
                    ("env", "prod"),
                    ("region", "us-east"),
                    ("severity", "warning"),
                ],
                vec![("env", "prod"), ("region", "us-east")],
            ],
        ),
        (
            "routing/continue.yml",
            vec![
                vec![],
                vec![("a", "1")],
                vec![("a", "1"), ("b", "1")],
                vec![("a", "1"), ("b", "2"), ("c", "1")],
                vec![("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")],
                vec![("a", "1"), ("d", "1")],
                vec![("a", "2")],
                vec![("a", "2"), ("x", "never")],
                vec![("a", "3")],
                vec![("a", "4"), ("b", "1")],
            ],
        ),
        (
            "routing/matchers.yml",
            vec![
                vec![],
                vec![("msg", "a,b")],
                vec![("msg", "a")],
                vec![("path", "C:\\dir")],
                vec![("job", "node-exporter"), ("instance", "h:9100")],
                vec![("job", "node-exporter")],
                vec![("job", "xnode"), ("instance", "h")],
                vec![("quote", "say \"hi\"")],
                vec![("kind", "empty-ok")],
                vec![("kind", "empty-ok"), ("opt", "anything")],
                vec![("kind", "x")],
                vec![("kind", "z")],
                vec![("code", "503"), ("method", "GET")],
                vec![("code", "5031"), ("method", "GET")],
                vec![("code", "503"), ("method", "GETX")],
                vec![("host", "web")],
                vec![("host", "web-1")],
                vec![("unicode", "é中")],
            ],
        ),
        (
            "full.yml",
            // Not an Alertmanager file (wecom_api_url): only ours; skipped below.
            vec![],
        ),
    ];
    let mut compared = 0;
    for (rel, label_sets) in sets {
        if label_sets.is_empty() {
            continue;
        }
        let path = fixtures().join(rel);
        let t = tree(rel);
        for set in label_sets {
            let l = labels(&set);
            let ours = receivers(&t, &l).join(",");
            let out = Command::new(&amtool)
                .arg("config")
                .arg("routes")
                .arg("test")
                .arg(format!("--config.file={}", path.display()))
                .args(set.iter().map(|(n, v)| amtool_label(n, v)))
                .output()
                .expect("run amtool");
            assert!(
                out.status.success(),
                "amtool failed on {rel} {set:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert_eq!(ours, theirs, "{rel} {set:?}: ours vs amtool");
            compared += 1;
        }
    }
    assert!(compared >= 40, "compared {compared}");
}

#[test]
fn amtool_check_config_agrees() {
    let amtool = amtool();
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join("check"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    for r in [
        "routing/nested.yml",
        "routing/continue.yml",
        "routing/matchers.yml",
    ] {
        files.push(fixtures().join(r));
    }
    files.sort();
    assert!(files.len() > 40);
    let mut mismatches = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let out = Command::new(&amtool)
            .arg("check-config")
            .arg(f)
            .output()
            .expect("run amtool");
        let theirs = out.status.success();
        let ours = AlertmanagerFile::load(f);
        let expected = !name.starts_with("bad_");
        if theirs != ours.is_ok() || theirs != expected {
            mismatches.push(format!(
                "{name}: expected {}, amtool {} ({}), ours {}",
                if expected { "accept" } else { "reject" },
                if theirs { "accepts" } else { "rejects" },
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .find(|l| l.contains("FAILED"))
                    .unwrap_or("")
                    .trim(),
                match &ours {
                    Ok(_) => "accepts".to_string(),
                    Err(e) => format!("rejects ({e})"),
                }
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "check-config disagreements:\n{}",
        mismatches.join("\n")
    );
}

/// Kills the child process when dropped.
struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A one-request-per-connection HTTP server that sends each request body on.
fn webhook_server() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_ok() {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                if tx
                    .send(String::from_utf8_lossy(&body).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    (url, rx)
}

/// A minimal HTTP/1.1 request; returns the status code and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn alertmanager_group_keys_agree() {
    let bin = alertmanager_bin();
    let (hook, rx) = webhook_server();
    let dir = tempfile::tempdir().unwrap();
    let yaml = std::fs::read_to_string(fixtures().join("groupkeys.yml"))
        .unwrap()
        .replace("WEBHOOK_URL", &hook);
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(&cfg, &yaml).unwrap();
    let file = AlertmanagerFile::parse(&yaml, "groupkeys.yml").unwrap();
    let t = RouteTree::new(&file).unwrap();

    let port = free_port();
    let log = std::fs::File::create(dir.path().join("am.log")).unwrap();
    let _am = Killer(
        Command::new(&bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display())),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http(port, "GET", "/-/ready", "") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alertmanager not ready: {}",
            std::fs::read_to_string(dir.path().join("am.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let alerts: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("alertname", "A"),
            ("team", "db"),
            ("severity", "critical"),
            ("cluster", "c1"),
            ("service", "pg-main"),
        ],
        vec![("alertname", "B"), ("team", "db"), ("cluster", "c2")],
        vec![
            ("alertname", "B2"),
            ("team", "db"),
            ("severity", "page"),
            ("env", "dev"),
            ("service", "redis"),
        ],
        vec![("alertname", "C"), ("env", "prod"), ("team", "web")],
        vec![
            ("alertname", "D"),
            ("quote", "a\"b"),
            ("a", "1"),
            ("a0", "2"),
            ("zz", "é\u{7}\\\u{a0}😀\n"),
        ],
        vec![("alertname", "E")],
        vec![
            ("alertname", "F"),
            ("env", "prod"),
            ("quote", "a\"b"),
            ("a", "x y"),
        ],
    ];
    // What we expect: (receiver, group key, group labels) for every route of every alert.
    let mut want = BTreeSet::new();
    for a in &alerts {
        let l = labels(a);
        for r in t.route(&l) {
            let g = r.group_labels(&l);
            want.insert((r.receiver.clone(), r.group_key(&g), g.to_string()));
        }
    }
    let body = serde_json::Value::Array(
        alerts
            .iter()
            .map(|a| {
                let m: serde_json::Map<String, serde_json::Value> = a
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                    .collect();
                serde_json::json!({ "labels": m })
            })
            .collect(),
    );
    let (status, resp) = http(port, "POST", "/api/v2/alerts", &body.to_string()).unwrap();
    assert_eq!(status, 200, "post alerts: {resp}");

    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !want.is_subset(&got) && Instant::now() < deadline {
        let Ok(payload) = rx.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&payload).expect("webhook JSON");
        let group_labels = Labels::from_pairs(
            v["groupLabels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
        );
        got.insert((
            v["receiver"].as_str().unwrap().to_string(),
            v["groupKey"].as_str().unwrap().to_string(),
            group_labels.to_string(),
        ));
    }
    // Anything else already sent arrives with the rest (group_wait 0s).
    while let Ok(payload) = rx.recv_timeout(Duration::from_millis(300)) {
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
        let group_labels = Labels::from_pairs(
            v["groupLabels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
        );
        got.insert((
            v["receiver"].as_str().unwrap().to_string(),
            v["groupKey"].as_str().unwrap().to_string(),
            group_labels.to_string(),
        ));
    }
    assert_eq!(want.len(), 9, "the alerts make nine groups: {want:#?}");
    assert_eq!(
        got, want,
        "alertmanager's (receiver, groupKey, groupLabels) vs ours"
    );
}
