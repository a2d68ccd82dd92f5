//! Unit tests of log rules (`input_streams`, `type: logs` groups, `logql_expr_test`)
//! run by `argus rules test`: the corpus in `tests/logrules/` gives the verdict its
//! file names say, failures print promtool's blocks, and the runner notices when an
//! expectation or an input line changes.

use std::path::{Path, PathBuf};

use argus_rules::tools::{Report, TestOptions, test_files, unittest};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logrules")
}

fn corpus(name: &str) -> PathBuf {
    corpus_dir().join(name)
}

fn run_one(p: &Path) -> Report {
    unittest::run(&[p.to_path_buf()], &TestOptions::default())
}

/// Copies a corpus pair into a temporary directory, editing the test file.
fn mutated(stem: &str, edit: impl Fn(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rules = format!("{stem}.rules.yml");
    std::fs::copy(corpus(&rules), dir.path().join(&rules)).unwrap();
    let text = std::fs::read_to_string(corpus(&format!("{stem}.test.yml"))).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit must change the file");
    let test = dir.path().join(format!("{stem}.test.yml"));
    std::fs::write(&test, edited).unwrap();
    (dir, test)
}

fn write_pair(rules: &str, test: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.rules.yml"), rules).unwrap();
    let p = dir.path().join("t.test.yml");
    std::fs::write(&p, test).unwrap();
    (dir, p)
}

#[test]
fn corpus_verdicts_follow_file_names() {
    let mut tests: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    tests.sort();
    assert!(tests.len() >= 10, "{tests:?}");
    let mut wrong = Vec::new();
    for f in &tests {
        let r = run_one(f);
        let expect_fail = f.file_name().unwrap().to_string_lossy().contains("fail");
        assert!(
            r.stdout()
                .starts_with(&format!("Unit Testing:  {}\n", f.display())),
            "{}",
            r.render()
        );
        let verdict_ok = if expect_fail {
            !r.ok() && r.exit_code == 1 && r.stderr().starts_with("  FAILED:\n")
        } else {
            r.ok() && r.render().ends_with("  SUCCESS\n\n") && r.stderr().is_empty()
        };
        if !verdict_ok {
            wrong.push(format!("{}:\n{}", f.display(), r.render()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn wrong_alert_and_wrong_count_print_promtool_blocks() {
    let f = corpus("08_fail_alert_wrong.test.yml");
    let r = run_one(&f);
    assert_eq!(r.exit_code, 1);
    let expected = format!(
        "Unit Testing:  {}\n  FAILED:\n\
         \x20   name: wrong expectations,\n\
         \x20   alertname: PaymentErrors, time: 4m, \n\
         \x20       exp:[\n\
         \x20           0:\n\
         \x20             Labels:{{alertname=\"PaymentErrors\", app=\"payments\", severity=\"ticket\"}}\n\
         \x20             Annotations:{{summary=\"payments: 5 errors\"}}\n\
         \x20           ], \n\
         \x20       got:[\n\
         \x20           0:\n\
         \x20             Labels:{{alertname=\"PaymentErrors\", app=\"payments\", severity=\"page\"}}\n\
         \x20             Annotations:{{summary=\"payments: 5 errors\"}}\n\
         \x20           ]\n\
         \n\
         \x20   expr: \"sum by (app) (count_over_time({{app=\\\"payments\\\"}}[5m]))\", time: 4m,\n\
         \x20       exp: {{app=\"payments\"}} 4E+00\n\
         \x20       got: {{app=\"payments\"}} 5E+00\n\
         \n\n",
        f.display()
    );
    assert_eq!(r.render(), expected);
}

#[test]
fn a_bad_line_notation_is_reported() {
    let r = run_one(&corpus("10_fail_bad_stream.test.yml"));
    assert!(!r.ok());
    assert!(
        r.stderr().contains(
            "stream \"{app=\\\"a\\\"}\": repeat count in \"error: x0\" must be at least 1\n"
        ),
        "{}",
        r.render()
    );
}

#[test]
fn a_changed_annotation_value_fails() {
    let (_d, p) = mutated("01_alert_firing_after_for", |t| {
        t.replacen(
            "payments logged 5 errors in 5m",
            "payments logged 6 errors in 5m",
            1,
        )
    });
    let r = run_one(&p);
    assert!(!r.ok());
    let err = r.stderr();
    assert!(
        err.contains("    alertname: PaymentErrors, time: 5m, \n"),
        "{err}"
    );
    assert!(
        err.contains("Annotations:{summary=\"payments logged 6 errors in 5m\"}"),
        "{err}"
    );
    assert!(
        err.contains("Annotations:{summary=\"payments logged 5 errors in 5m\"}"),
        "{err}"
    );
    // Only the 5m case changed; the 9m case still passes.
    assert!(!err.contains("time: 9m"), "{err}");
}

#[test]
fn a_removed_input_line_changes_the_counts() {
    // Without the line at 30s, checkout-a has 2 errors instead of 3.
    let (_d, p) = mutated("04_count_by_label", |t| {
        t.replacen(
            "    - {at: 30s, line: \"error: stock service unavailable\"}\n",
            "",
            1,
        )
    });
    let r = run_one(&p);
    assert!(!r.ok());
    let err = r.stderr();
    assert!(
        err.contains("Annotations:{summary=\"checkout-a: 2 errors\"}"),
        "{err}"
    );
    assert!(
        err.contains(
            "        exp: {pod=\"checkout-a\"} 3E+00, {pod=\"checkout-b\"} 1E+00\n        got: {pod=\"checkout-a\"} 2E+00, {pod=\"checkout-b\"} 1E+00\n"
        ),
        "{err}"
    );
}

#[test]
fn an_alert_that_should_not_fire_but_does_fails() {
    // Turning every other gap into an error pushes the window over 3 errors.
    let (_d, p) = mutated("02_alert_not_firing", |t| {
        t.replace("    - \"_\"\n", "    - \"error: gateway timeout\"\n")
    });
    let r = run_one(&p);
    assert!(!r.ok());
    let err = r.stderr();
    assert!(
        err.contains("    alertname: PaymentErrors, time: 6m, \n        exp:[], \n        got:[\n"),
        "{err}"
    );
    assert!(
        err.contains("Labels:{alertname=\"PaymentErrors\", app=\"payments\", severity=\"page\"}"),
        "{err}"
    );
}

#[test]
fn several_files_in_one_run() {
    let paths = [
        corpus("06_kernel_deadlock.test.yml"),
        corpus("08_fail_alert_wrong.test.yml"),
        corpus("07_critical_vulnerability.test.yml"),
    ];
    let (out, ok) = test_files(&paths, &TestOptions::default());
    assert!(!ok);
    assert!(
        out.starts_with(&format!(
            "Unit Testing:  {}\n  SUCCESS\n\nUnit Testing:  {}\n  FAILED:\n",
            paths[0].display(),
            paths[1].display()
        )),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "Unit Testing:  {}\n  SUCCESS\n\n",
            paths[2].display()
        )),
        "{out}"
    );
}

#[test]
fn log_groups_without_streams_see_an_empty_store() {
    let (_d, p) = write_pair(
        "groups:\n- name: g\n  type: logs\n  rules:\n  - alert: Any\n    expr: count_over_time({app=\"a\"}[5m]) > 0\n",
        "rule_files: [r.rules.yml]\ntests:\n- interval: 1m\n  alert_rule_test:\n  - eval_time: 3m\n    alertname: Any\n    exp_alerts: []\n  logql_expr_test:\n  - expr: count_over_time({app=\"a\"}[5m])\n    eval_time: 3m\n    exp_samples: []\n",
    );
    let r = run_one(&p);
    assert!(r.ok(), "{}", r.render());
}

#[test]
fn query_errors_and_unknown_fields_are_reported() {
    let (_d, p) = write_pair(
        "groups: []\n",
        "rule_files: [r.rules.yml]\ntests:\n- interval: 1m\n  input_streams:\n  - labels: '{app=\"a\"}'\n    lines: [hello]\n  logql_expr_test:\n  - expr: '{app=\"a\"}'\n    eval_time: 1m\n",
    );
    let r = run_one(&p);
    assert!(!r.ok());
    assert!(
        r.stderr().contains(
            "    expr: \"{app=\\\"a\\\"}\", time: 1m, err: log queries are not supported as an instant query type"
        ),
        "{}",
        r.render()
    );

    let (_d2, p2) = write_pair(
        "groups: []\n",
        "rule_files: [r.rules.yml]\ntests:\n- interval: 1m\n  input_streams:\n  - labels: '{app=\"a\"}'\n    bogus: 1\n",
    );
    let r = run_one(&p2);
    assert!(!r.ok());
    assert!(
        r.stderr()
            .contains("field bogus not found in type main.inputStream"),
        "{}",
        r.render()
    );
}

/// The runner makes its own runtime for the log store; from inside another one
/// (as an async caller would) it must still work.
#[tokio::test]
async fn runs_inside_an_async_runtime() {
    let r = run_one(&corpus("03_alert_resolved.test.yml"));
    assert!(r.ok(), "{}", r.render());
}
