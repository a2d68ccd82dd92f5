//! `argus rules check`: `promtool check rules` — every file parsed and validated
//! (YAML, PromQL/LogQL, templates, names, durations), errors as
//! `file:line:col: message`, then the duplicate-rule lint (same name and labels),
//! reported as promtool reports it.

use std::path::PathBuf;

use crate::rulefile;

use super::Report;

/// Options of the check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// promtool's `--lint-fatal`: duplicate rules make the exit status 3.
    pub lint_fatal: bool,
    /// promtool's `--lint=none`: skip the duplicate-rule lint.
    pub no_lint: bool,
}

/// Checks every file, printing as promtool does.
pub fn check(paths: &[PathBuf], opts: &CheckOptions) -> Report {
    let mut r = Report::default();
    let (mut failed, mut lint_failed) = (false, false);
    for p in paths {
        let name = p.display().to_string();
        r.out(format!("Checking {name}\n"));
        match rulefile::parse_file(&name) {
            Err(errs) => {
                r.err("  FAILED:\n");
                for e in errs {
                    r.err(format!("{e}\n"));
                }
                failed = true;
            }
            Ok(f) => {
                let dups = if opts.no_lint {
                    Vec::new()
                } else {
                    rulefile::duplicate_rules(&f)
                };
                if dups.is_empty() {
                    let n: usize = f.groups.iter().map(|g| g.rules.len()).sum();
                    r.out(format!("  SUCCESS: {n} rules found\n"));
                } else {
                    let mut msg = format!("lint error {} duplicate rule(s) found.\n", dups.len());
                    for (metric, labels) in &dups {
                        msg.push_str(&format!("Metric: {metric}\nLabel(s):\n"));
                        for (k, v) in labels.iter() {
                            msg.push_str(&format!("\t{k}: {v}\n"));
                        }
                    }
                    msg.push_str("Might cause inconsistency while recording expressions\n");
                    r.err("  FAILED:\n");
                    r.err(msg);
                    lint_failed = true;
                }
            }
        }
        r.out("\n");
    }
    r.exit_code = if failed {
        1
    } else if lint_failed && opts.lint_fatal {
        3
    } else {
        0
    };
    r
}
