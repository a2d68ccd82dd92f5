//! Differential tests against Debian's promtool 2.42 (`ARGUS_TEST_PROMTOOL`, e.g.
//! `/usr/bin/promtool`; skipped when unset unless `ARGUS_REQUIRE_SERVICES` is set).
//!
//! `test rules`: for every unit-test file of the corpus (`tests/promtool/*.test.yml`),
//! promtool and Argus must exit alike and print the same standard output and standard
//! error, byte for byte (no normalisation: exact float values, Go quoting and the
//! failure layout included). Argus runs with the Prometheus 2 arithmetic
//! (`Compat::Prometheus2`) for the byte-for-byte comparison, and once more with its
//! default (Prometheus 3) semantics, which the corpus is written to agree with too
//! (samples kept off range and lookback boundaries).
//!
//! `check rules`: for the files of `tests/promtool/check/`, the same exit status and
//! the same SUCCESS/FAILED verdict per file; Argus' errors carry `file:line:col:`
//! where promtool gives a position.

use std::path::{Path, PathBuf};
use std::process::Command;

use argus_rules::promql::Compat;
use argus_rules::tools::{CheckOptions, TestOptions, check, unittest};

fn promtool() -> Option<String> {
    match std::env::var("ARGUS_TEST_PROMTOOL") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var_os("ARGUS_REQUIRE_SERVICES").is_none(),
                "ARGUS_REQUIRE_SERVICES is set but ARGUS_TEST_PROMTOOL is not"
            );
            eprintln!("skipping: ARGUS_TEST_PROMTOOL is not set");
            None
        }
    }
}

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

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_promtool(bin: &str, args: &[&str], file: &Path) -> Run {
    let out = Command::new(bin)
        .args(args)
        .arg(file)
        .output()
        .expect("run promtool");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn diff_corpus(compat: Compat) {
    let Some(bin) = promtool() else { return };
    let tests = files(&corpus_dir(), ".test.yml");
    assert!(tests.len() >= 40, "corpus has {} test files", tests.len());
    let mut mismatches = Vec::new();
    let mut failing = 0;
    for f in &tests {
        let want = run_promtool(&bin, &["test", "rules"], f);
        let got = unittest::run(std::slice::from_ref(f), &TestOptions { compat });
        if want.code != 0 {
            failing += 1;
        }
        if want.code != got.exit_code || want.stdout != got.stdout() || want.stderr != got.stderr()
        {
            mismatches.push(format!(
                "== {} (exit promtool {} argus {})\n-- promtool stderr:\n{}\n-- argus stderr:\n{}\n-- promtool stdout:\n{}\n-- argus stdout:\n{}",
                f.display(),
                want.code,
                got.exit_code,
                want.stderr,
                got.stderr(),
                want.stdout,
                got.stdout()
            ));
        }
    }
    assert!(
        failing >= 8,
        "the corpus must keep its deliberately failing files ({failing})"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} files differ from promtool ({compat:?}):\n{}",
        mismatches.len(),
        tests.len(),
        mismatches.join("\n")
    );
}

#[test]
fn unit_tests_match_promtool_with_prometheus2_arithmetic() {
    diff_corpus(Compat::Prometheus2);
}

#[test]
fn unit_tests_match_promtool_with_default_semantics() {
    diff_corpus(Compat::Prometheus3);
}

#[test]
fn check_rules_matches_promtool_verdicts() {
    let Some(bin) = promtool() else { return };
    let rules = files(&corpus_dir().join("check"), ".yml");
    assert!(rules.len() >= 10);
    let mut mismatches = Vec::new();
    for f in &rules {
        let want = run_promtool(&bin, &["check", "rules"], f);
        let got = check::check(std::slice::from_ref(f), &CheckOptions::default());
        let (gs, ge) = (got.stdout(), got.stderr());
        let same_verdict = want.code == got.exit_code
            && want.stdout.contains("SUCCESS") == gs.contains("SUCCESS")
            && want.stderr.contains("FAILED") == ge.contains("FAILED");
        // When promtool locates the error, Argus must too, as file:line:col.
        let name = f.display().to_string();
        let located = !want.stderr.contains(&format!("{name}: ")) || want.code == 0 || {
            let loc =
                regex::Regex::new(&format!(r"(?m)^{}:\d+:\d+: ", regex::escape(&name))).unwrap();
            loc.is_match(&ge)
        };
        // Duplicate-rule lint output is promtool's text exactly.
        let lint_same = !want.stderr.contains("lint error") || want.stderr == ge;
        if !(same_verdict && lint_same && (located || !want.stderr.contains(":"))) {
            mismatches.push(format!(
                "== {name}: promtool exit {}\n{}{}\n-- argus exit {}\n{gs}{ge}",
                want.code, want.stdout, want.stderr, got.exit_code
            ));
        }
        // Argus' positioned errors always have the file:line:col form.
        if got.exit_code == 1 {
            let loc =
                regex::Regex::new(&format!(r"(?m)^{}:\d+:\d+: \S", regex::escape(&name))).unwrap();
            if !loc.is_match(&ge) {
                mismatches.push(format!(
                    "== {name}: argus error without file:line:col:\n{ge}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
