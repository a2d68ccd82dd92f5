//! Tools for rule authors, promtool-compatible: `argus rules check FILE…`
//! ([`check_files`], like `promtool check rules`) and `argus rules test FILE…`
//! ([`test_files`], unit tests in promtool's format, like `promtool test rules` of
//! Prometheus 2.42, with the same output on the same streams and the same exit codes).
//!
//! Owned here: the unit-test file format ([`testfile`]), the expanding notation of
//! input series ([`series`]), the input log streams of log rules and their store
//! ([`streams`]), the test store ([`storage`]), the runner
//! ([`unittest`]), the checker ([`check`]) and Go's text formats that the output is
//! made of ([`gofmt`]).

pub mod check;
pub mod gofmt;
pub mod groups;
pub mod series;
pub mod storage;
pub mod streams;
pub mod testfile;
pub mod unittest;

use std::io::Write;
use std::path::PathBuf;

pub use check::CheckOptions;
pub use unittest::TestOptions;

/// Which stream a piece of output goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a tool printed, in order, and its exit code (0 success, 1 failure, 3 lint
/// failure with `lint_fatal`), as promtool prints and exits.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub chunks: Vec<(Stream, String)>,
    pub exit_code: i32,
}

impl Report {
    pub(crate) fn out(&mut self, s: impl Into<String>) {
        self.chunks.push((Stream::Stdout, s.into()));
    }

    pub(crate) fn err(&mut self, s: impl Into<String>) {
        self.chunks.push((Stream::Stderr, s.into()));
    }

    /// Everything, interleaved as a terminal shows it (`2>&1`).
    pub fn render(&self) -> String {
        self.chunks.iter().map(|(_, s)| s.as_str()).collect()
    }

    /// What went to standard output.
    pub fn stdout(&self) -> String {
        self.stream(Stream::Stdout)
    }

    /// What went to standard error.
    pub fn stderr(&self) -> String {
        self.stream(Stream::Stderr)
    }

    fn stream(&self, which: Stream) -> String {
        self.chunks
            .iter()
            .filter(|(s, _)| *s == which)
            .map(|(_, s)| s.as_str())
            .collect()
    }

    pub fn ok(&self) -> bool {
        self.exit_code == 0
    }

    /// Writes the output to the process' stdout and stderr, in order.
    pub fn write_to_std(&self) -> std::io::Result<()> {
        let (mut o, mut e) = (std::io::stdout().lock(), std::io::stderr().lock());
        for (s, text) in &self.chunks {
            match s {
                Stream::Stdout => {
                    o.write_all(text.as_bytes())?;
                    o.flush()?;
                }
                Stream::Stderr => {
                    e.write_all(text.as_bytes())?;
                    e.flush()?;
                }
            }
        }
        Ok(())
    }
}

/// `argus rules check FILE…` with promtool's defaults: the rendered output and
/// whether the exit status is 0.
pub fn check_files(paths: &[PathBuf]) -> (String, bool) {
    let r = check::check(paths, &CheckOptions::default());
    (r.render(), r.ok())
}

/// `argus rules test FILE…`: the rendered output and whether every test passed.
pub fn test_files(paths: &[PathBuf], opts: &TestOptions) -> (String, bool) {
    let r = unittest::run(paths, opts);
    (r.render(), r.ok())
}
