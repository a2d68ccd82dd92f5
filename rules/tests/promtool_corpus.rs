//! The promtool corpus without promtool: every unit-test file whose name contains
//! `fail` fails (with promtool's failure blocks on stderr) and every other one passes,
//! under both arithmetic modes; the check corpus gives the verdict its file name says.

use std::path::{Path, PathBuf};

use argus_rules::promql::Compat;
use argus_rules::tools::{CheckOptions, TestOptions, check, check_files, test_files, unittest};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool")
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_verdicts_follow_file_names() {
    let tests = files(&corpus_dir(), ".test.yml");
    assert!(tests.len() >= 45);
    let mut wrong = Vec::new();
    for compat in [Compat::Prometheus2, Compat::Prometheus3] {
        for f in &tests {
            let r = unittest::run(std::slice::from_ref(f), &TestOptions { compat });
            let expect_fail = f.file_name().unwrap().to_string_lossy().contains("fail")
                || f.ends_with("46_multiple_tests.test.yml");
            let out = r.stdout();
            assert!(
                out.starts_with(&format!("Unit Testing:  {}\n", f.display())),
                "{out}"
            );
            if expect_fail == r.ok() || (expect_fail && !r.stderr().starts_with("  FAILED:\n")) {
                wrong.push(format!("{compat:?} {}:\n{}", f.display(), r.render()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn several_files_in_one_run() {
    let d = corpus_dir();
    let paths = [
        d.join("24_rate_increase.test.yml"),
        d.join("44_fail_nan.test.yml"),
    ];
    let (out, ok) = test_files(&paths, &TestOptions::default());
    assert!(!ok);
    let p0 = paths[0].display().to_string();
    let p1 = paths[1].display().to_string();
    assert!(
        out.starts_with(&format!(
            "Unit Testing:  {p0}\n  SUCCESS\n\nUnit Testing:  {p1}\n  FAILED:\n"
        )),
        "{out}"
    );
    assert!(out.contains("    expr: \"zero / zero\", time: 2m,\n        exp: {k=\"z\"} NaN\n        got: {k=\"z\"} NaN\n\n"), "{out}");
}

#[test]
fn a_missing_test_file_fails() {
    let (out, ok) = test_files(
        &[PathBuf::from("/nonexistent/x.test.yml")],
        &TestOptions::default(),
    );
    assert!(!ok);
    assert!(
        out.contains("open /nonexistent/x.test.yml: no such file or directory"),
        "{out}"
    );
}

#[test]
fn check_corpus_verdicts_follow_file_names() {
    for f in files(&corpus_dir().join("check"), ".yml") {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let r = check::check(std::slice::from_ref(&f), &CheckOptions::default());
        let shown = f.display().to_string();
        if name.starts_with("ok_") {
            assert!(
                r.ok() && r.stdout().contains("  SUCCESS: ") && r.stderr().is_empty(),
                "{name}: {}",
                r.render()
            );
        } else if name.starts_with("lint_") {
            assert!(
                r.ok() && r.stderr().starts_with("  FAILED:\nlint error "),
                "{name}: {}",
                r.render()
            );
            let fatal = check::check(
                std::slice::from_ref(&f),
                &CheckOptions {
                    lint_fatal: true,
                    no_lint: false,
                },
            );
            assert_eq!(fatal.exit_code, 3);
        } else {
            assert_eq!(r.exit_code, 1, "{name}: {}", r.render());
            assert!(
                r.stderr().starts_with("  FAILED:\n"),
                "{name}: {}",
                r.render()
            );
            assert!(
                r.stderr().contains(&format!("{shown}:")),
                "{name}: {}",
                r.render()
            );
        }
    }
    let (out, ok) = check_files(&[corpus_dir().join("check/ok_basic.yml")]);
    assert!(ok);
    assert!(out.ends_with("  SUCCESS: 2 rules found\n\n"), "{out}");
}
