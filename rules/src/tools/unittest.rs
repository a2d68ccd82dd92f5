//! `argus rules test`: runs unit-test files in promtool's format the way
//! `promtool test rules` of Prometheus 2.42 does, and prints what it prints.
//!
//! Per test group: the input series are expanded; rule groups are evaluated at every
//! `evaluation_interval` from 0 to the largest `eval_time` (groups in
//! `group_eval_order`, input samples loaded up to each evaluation time, rule output
//! written back to the store); after the evaluation at `ts`, every alert test with
//! `ts <= eval_time < ts + interval` compares the firing alerts (labels and annotations,
//! as sorted sets) with the expected ones; finally every `promql_expr_test` is
//! evaluated on the store at its `eval_time` and compared exactly (floats with `==`, so
//! NaN never matches). Failure texts are promtool's, byte for byte.
//!
//! Log rules (Argus): a group's `input_streams` are written to a temporary log store
//! ([`super::streams`]) before the first step; `type: logs` rule groups are evaluated
//! on it through the query engine at the same steps as metric groups, their alerts
//! tested by the same `alert_rule_test`; `logql_expr_test` cases run after the
//! `promql_expr_test` ones and fail with the same texts.

use std::path::{Path, PathBuf};

use argus_schemas::Labels;

use crate::promql::{Compat, Engine, EngineOptions, Value};

use super::Report;
use super::gofmt::{
    format_float_e, go_duration_string, go_quote, labels_string, model_duration_string,
};
use super::groups::{RuleGroups, SharedStorage};
use super::series::{SeqValue, parse_metric, parse_series_desc};
use super::storage::TestStorage;
use super::streams::{LogEnv, expand_streams};
use super::testfile::{self, ExpSample, TestGroup, UnitTestFile};

/// Options of a test run.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Which Prometheus version's PromQL arithmetic to use (3.x by default; 2.x to
    /// reproduce Debian's promtool 2.42 bit for bit, see [`Compat`]).
    pub compat: Compat,
}

/// Runs every file, printing as promtool does; exit code 1 if any test failed.
pub fn run(paths: &[PathBuf], opts: &TestOptions) -> Report {
    let mut r = Report::default();
    let mut failed = false;
    for p in paths {
        let errs = run_file(p, opts, &mut r);
        if errs.is_empty() {
            r.out("  SUCCESS\n");
        } else {
            r.err("  FAILED:\n");
            for e in errs {
                r.err(format!("{e}\n"));
                r.out("\n");
            }
            failed = true;
        }
        r.out("\n");
    }
    r.exit_code = if failed { 1 } else { 0 };
    r
}

fn run_file(path: &Path, opts: &TestOptions, r: &mut Report) -> Vec<String> {
    let name = path.display().to_string();
    r.out(format!("Unit Testing:  {name}\n"));
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![go_open_error(&name, &e)],
    };
    let mut f: UnitTestFile = match testfile::parse(&text) {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    f.rule_files = resolve_rule_files(&dir, &f.rule_files, r);
    if f.evaluation_interval == 0 {
        f.evaluation_interval = 60_000;
    }
    let mut order: Vec<String> = Vec::new();
    for g in &f.group_eval_order {
        if order.contains(g) {
            return vec![format!("group name repeated in evaluation order: {g}")];
        }
        order.push(g.clone());
    }
    let mut errs = Vec::new();
    for tg in &f.tests {
        errs.extend(run_group(tg, &f, &order, opts));
    }
    errs
}

/// Go's `*PathError` text for a file that cannot be read.
fn go_open_error(name: &str, e: &std::io::Error) -> String {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("open {name}: {what}")
}

/// Joins relative rule files to the test file's directory (as Go's `filepath.Join`,
/// which cleans the path) and expands globs; a pattern matching nothing is a warning.
fn resolve_rule_files(dir: &Path, files: &[String], r: &mut Report) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let joined = if !f.is_empty() && !Path::new(f).is_absolute() {
            clean_path(&dir.join(f))
        } else {
            f.clone()
        };
        let matches = glob(&joined);
        if matches.is_empty() {
            r.err(format!("  WARNING: no file match pattern {joined}\n"));
        }
        out.extend(matches);
    }
    out
}

/// Go's `filepath.Clean` for the paths used here.
fn clean_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    let abs = s.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `filepath.Glob` for patterns with `*`, `?` and `[...]` in the last component.
fn glob(pattern: &str) -> Vec<String> {
    if !pattern.contains(['*', '?', '[']) {
        return if std::fs::symlink_metadata(pattern).is_ok() {
            vec![pattern.to_string()]
        } else {
            Vec::new()
        };
    }
    let (dir, base) = match pattern.rfind('/') {
        Some(i) => (&pattern[..i.max(1)], &pattern[i + 1..]),
        None => (".", pattern),
    };
    let Ok(rd) = std::fs::read_dir(if dir.is_empty() { "." } else { dir }) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| wildcard(base.as_bytes(), n.as_bytes()))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            if pattern.contains('/') {
                format!("{dir}/{n}")
            } else {
                n
            }
        })
        .collect()
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| wildcard(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && wildcard(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(end) = p.iter().position(|&c| c == b']') else {
                return false;
            };
            let Some(&c) = s.first() else { return false };
            let (neg, set) = match &p[1..end] {
                [b'^', rest @ ..] => (true, rest),
                set => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != neg && wildcard(&p[end + 1..], &s[1..])
        }
        Some(&c) => s.first() == Some(&c) && wildcard(&p[1..], &s[1..]),
    }
}

/// The input series of a test group, expanded: promtool's `load <interval>` text,
/// read line by line as Prometheus' test loader does (a later definition of the same
/// series replaces an earlier one; an empty line ends the load).
/// An input series: labels and samples (ms, value), ascending.
type LoadedSeries = (Labels, Vec<(i64, f64)>);

fn load_series(tg: &TestGroup) -> Result<Vec<LoadedSeries>, String> {
    let mut text = format!("load {}\n", short_duration(tg.interval));
    for s in &tg.input_series {
        text.push_str(&format!("  {} {}\n", s.series, s.values));
    }
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect();
    let mut out: Vec<LoadedSeries> = Vec::new();
    // lines[0] is the load command.
    for (i, line) in lines.iter().enumerate().skip(1) {
        if line.is_empty() {
            break;
        }
        let (labels, values) = parse_series_desc(line).map_err(|e| relocate_parse_error(&e, i))?;
        let mut samples = Vec::new();
        for (k, v) in values.iter().enumerate() {
            if let SeqValue::Value(f) = v {
                samples.push((k as i64 * tg.interval, *f));
            }
        }
        match out.iter_mut().find(|(l, _)| *l == labels) {
            Some(e) => e.1 = samples,
            None => out.push((labels, samples)),
        }
    }
    Ok(out)
}

/// Puts the line number of the load text into a series parse error (`1:COL:` → `LINE:COL:`).
fn relocate_parse_error(e: &str, line_idx: usize) -> String {
    match e.strip_prefix("1:") {
        Some(rest) => format!("{}:{rest}", line_idx + 1),
        None => e.to_string(),
    }
}

/// promtool's `shortDuration`: `model.Duration` text (used only in the load command).
fn short_duration(ms: i64) -> String {
    model_duration_string(ms)
}

/// The largest `eval_time` of the group's tests.
fn max_eval_time(tg: &TestGroup) -> i64 {
    tg.alert_rule_test
        .iter()
        .map(|a| a.eval_time)
        .chain(tg.promql_expr_test.iter().map(|p| p.eval_time))
        .chain(tg.logql_expr_test.iter().map(|p| p.eval_time))
        .max()
        .unwrap_or(0)
        .max(0)
}

fn run_group(
    tg: &TestGroup,
    f: &UnitTestFile,
    order: &[String],
    opts: &TestOptions,
) -> Vec<String> {
    let series = match load_series(tg) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let engine = Engine::new(EngineOptions {
        default_subquery_step_ms: f.evaluation_interval,
        compat: opts.compat,
        ..EngineOptions::default()
    });
    let mut groups = match RuleGroups::load(&f.rule_files, tg, order) {
        Ok(g) => g,
        Err(errs) => return errs,
    };
    let eval_interval = f.evaluation_interval;
    let maxt = max_eval_time(tg);
    // Log lines step by the group's interval, or the evaluation interval without one.
    let stream_step = if tg.interval > 0 {
        tg.interval
    } else {
        eval_interval
    };
    let streams = match expand_streams(&tg.input_streams, stream_step) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let logs = if !streams.is_empty() || !tg.logql_expr_test.is_empty() || groups.has_log_groups() {
        match LogEnv::open(&streams) {
            Ok(env) => Some(env),
            Err(e) => return vec![e],
        }
    } else {
        None
    };

    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                model_duration_string(a.eval_time)
            )];
        }
    }
    let mut alert_times: Vec<i64> = tg.alert_rule_test.iter().map(|a| a.eval_time).collect();
    alert_times.sort_unstable();
    alert_times.dedup();
    let mut curr = 0;

    let st = SharedStorage(std::sync::RwLock::new(TestStorage::new()));
    let mut loaded = vec![0usize; series.len()];
    let mut errs: Vec<String> = Vec::new();
    let mut ts = 0i64;
    while ts <= maxt {
        for (i, (labels, samples)) in series.iter().enumerate() {
            while loaded[i] < samples.len() && samples[loaded[i]].0 <= ts {
                let (t, v) = samples[loaded[i]];
                if let Err(e) = st.write().append(labels, t, v) {
                    errs.push(e.to_string());
                }
                loaded[i] += 1;
            }
        }
        let eval_errs: Vec<String> = groups
            .eval(&engine, &st, logs.as_ref(), ts)
            .into_iter()
            .map(|(rule, err)| {
                format!(
                    "    rule: {rule}, time: {}, err: {err}",
                    go_duration_string(ts)
                )
            })
            .collect();
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while curr < alert_times.len()
            && ts <= alert_times[curr]
            && alert_times[curr] < ts + eval_interval
        {
            let t = alert_times[curr];
            for tc in tg.alert_rule_test.iter().filter(|a| a.eval_time == t) {
                let mut got = groups.firing(&tc.alertname);
                let mut exp: Vec<(Labels, Labels)> = tc
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = Labels::from_pairs(
                            a.exp_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        );
                        l.insert("alertname", tc.alertname.clone());
                        let ann = Labels::from_pairs(
                            a.exp_annotations
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str())),
                        );
                        (l, ann)
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    let test_name = if tg.name.is_empty() {
                        String::new()
                    } else {
                        format!("    name: {},\n", tg.name)
                    };
                    errs.push(format!(
                        "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        tc.alertname,
                        model_duration_string(tc.eval_time),
                        indent_lines(&alerts_string(&exp), "            "),
                        indent_lines(&alerts_string(&got), "            "),
                    ));
                }
            }
            curr += 1;
        }
        ts += eval_interval;
    }

    for tc in &tg.promql_expr_test {
        let got = query(&engine, &st, &tc.expr, tc.eval_time);
        errs.extend(compare_samples(
            &tc.expr,
            tc.eval_time,
            got,
            &tc.exp_samples,
        ));
    }
    if let Some(env) = &logs {
        for tc in &tg.logql_expr_test {
            let got = env.query(&tc.expr, tc.eval_time);
            errs.extend(compare_samples(
                &tc.expr,
                tc.eval_time,
                got,
                &tc.exp_samples,
            ));
        }
    }
    errs
}

/// Compares an expression's result with the expected samples (as sets, floats with
/// `==`); promtool's failure text when they differ or the query failed.
fn compare_samples(
    expr: &str,
    eval_time: i64,
    got: Result<Vec<(Labels, f64)>, String>,
    exp_samples: &[ExpSample],
) -> Option<String> {
    let time = model_duration_string(eval_time);
    let mut got = match got {
        Ok(v) => v,
        Err(e) => {
            return Some(format!(
                "    expr: {}, time: {time}, err: {e}",
                go_quote(expr)
            ));
        }
    };
    let mut exp: Vec<(Labels, f64)> = Vec::new();
    for s in exp_samples {
        match parse_metric(&s.labels) {
            Ok(l) => exp.push((l, s.value)),
            Err(e) => {
                return Some(format!(
                    "    expr: {}, time: {time}, err: labels {}: {e}",
                    go_quote(expr),
                    go_quote(&s.labels)
                ));
            }
        }
    }
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let equal =
        exp.len() == got.len() && exp.iter().zip(&got).all(|(e, g)| e.0 == g.0 && e.1 == g.1);
    (!equal).then(|| {
        format!(
            "    expr: {}, time: {time},\n        exp: {}\n        got: {}",
            go_quote(expr),
            samples_string(&exp),
            samples_string(&got)
        )
    })
}

/// Evaluates an expression as promtool's `query` does: a vector, or a scalar as one
/// sample without labels; anything else is an error.
pub(crate) fn query(
    engine: &Engine,
    st: &SharedStorage,
    expr: &str,
    t: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    match engine.instant(st, expr, t).map_err(|e| e.to_string())? {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.value)).collect()),
        Value::Scalar(_, v) => Ok(vec![(Labels::new(), v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{} {}", labels_string(l), format_float_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// promtool's `labelsAndAnnotations.String()`.
fn alerts_string(a: &[(Labels, Labels)]) -> String {
    if a.is_empty() {
        return "[]".into();
    }
    let one = |(l, ann): &(Labels, Labels)| {
        format!(
            "Labels:{}\nAnnotations:{}",
            labels_string(l),
            labels_string(ann)
        )
    };
    let mut s = format!("[\n0:{}", indent_lines(&format!("\n{}", one(&a[0])), "  "));
    for (i, x) in a.iter().enumerate().skip(1) {
        s.push_str(&format!(
            ",\n{i}:{}",
            indent_lines(&format!("\n{}", one(x)), "  ")
        ));
    }
    s.push_str("\n]");
    s
}

/// promtool's `indentLines`: every line but the first gets `indent`.
fn indent_lines(lines: &str, indent: &str) -> String {
    let parts: Vec<&str> = lines.split('\n').collect();
    let mut out = String::new();
    for (i, l) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(indent);
        }
        out.push_str(l);
        if i != parts.len() - 1 {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_globs() {
        assert_eq!(clean_path(Path::new("a/./b/../c.yml")), "a/c.yml");
        assert_eq!(clean_path(Path::new("/x/y/../r.yml")), "/x/r.yml");
        assert_eq!(clean_path(Path::new("r.yml")), "r.yml");
        assert!(wildcard(b"*.rules.yml", b"01_a.rules.yml"));
        assert!(wildcard(b"0[1-3]_?.yml", b"02_x.yml"));
        assert!(!wildcard(b"0[^1-3]_?.yml", b"02_x.yml"));
    }

    #[test]
    fn alert_list_text() {
        let a = (
            Labels::from_pairs([("alertname", "A"), ("job", "x")]),
            Labels::new(),
        );
        let s = alerts_string(&[a.clone(), a]);
        assert_eq!(
            s,
            "[\n0:\n  Labels:{alertname=\"A\", job=\"x\"}\n  Annotations:{},\n1:\n  Labels:{alertname=\"A\", job=\"x\"}\n  Annotations:{}\n]"
        );
        assert_eq!(indent_lines("a\nb", "  "), "a\n  b");
    }
}
