//! Input log streams of a unit test (`input_streams`, Argus' addition to promtool's
//! format) and the log store they are written to, so that `type: logs` rule groups
//! and `logql_expr_test` cases run through the query engine as they do in service.
//!
//! The notation of `lines` (documented for rule authors in
//! `rules/tests/logrules/README.md`): a cursor starts at step 0 (time 0) and moves by
//! the test group's `interval`;
//! - `"text"`: the line at the cursor's step, the cursor moves one step;
//! - `"text xN"`: the same line at N consecutive steps (N ≥ 1);
//! - `"_"` / `"_ xN"`: no line for one / N steps;
//! - `{at: 1m30s, line: "text"}`: the line at that time, the cursor does not move;
//!   `{line: "text"}` without `at` takes the cursor's step like a text.
//!
//! Structured metadata of the stream is given to every line, merged with (and
//! overridden by) a line's own. The store is an [`EmbeddedStore`] in a temporary
//! directory, written for the tenant `default`, removed when the [`LogEnv`] drops.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use argus_query::engine::{Engine, Limits};
use argus_query::logql::ast::Expr;
use argus_query::store::embedded::EmbeddedStore;
use argus_query::store::{LogStore, SourcePos, WriteRow};
use argus_schemas::{DEFAULT_TENANT, Labels};

use crate::RulesError;
use crate::group::Sample;

use super::gofmt::go_quote;
use super::series::parse_metric;
use super::testfile::{InputStream, LineEntry};

/// One expanded line: time (ms since the test's start), text, structured metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamLine {
    pub t_ms: i64,
    pub line: String,
    pub metadata: Labels,
}

/// A stream's labels and its lines, by time (lines at the same time in their order).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandedStream {
    pub labels: Labels,
    pub lines: Vec<StreamLine>,
}

/// Splits the `xN` repeat suffix off a text: `("error: declined", 5)`.
fn repeat_suffix(text: &str) -> Result<(&str, u64), String> {
    if let Some((head, tail)) = text.trim_end().rsplit_once([' ', '\t'])
        && let Some(n) = tail.strip_prefix('x')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && !head.trim().is_empty()
    {
        let n: u64 = n
            .parse()
            .map_err(|_| format!("repeat count {} is too large", go_quote(tail)))?;
        if n == 0 {
            return Err(format!(
                "repeat count in {} must be at least 1",
                go_quote(text)
            ));
        }
        return Ok((head.trim_end(), n));
    }
    Ok((text, 1))
}

fn to_labels(m: &BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn merged(base: &Labels, own: &BTreeMap<String, String>) -> Labels {
    let mut l = base.clone();
    for (k, v) in own {
        l.insert(k, v.clone());
    }
    l
}

/// Expands one input stream; `interval_ms` is the step of the cursor.
pub fn expand_stream(s: &InputStream, interval_ms: i64) -> Result<ExpandedStream, String> {
    let labels =
        parse_metric(&s.labels).map_err(|e| format!("labels {}: {e}", go_quote(&s.labels)))?;
    if labels.is_empty() {
        return Err(format!(
            "labels {}: a log stream needs at least one label",
            go_quote(&s.labels)
        ));
    }
    let meta = to_labels(&s.structured_metadata);
    let mut step: i64 = 0;
    let mut lines = Vec::new();
    for e in &s.lines {
        match e {
            LineEntry::Text(text) => {
                let (line, n) = repeat_suffix(text)
                    .map_err(|e| format!("stream {}: {e}", go_quote(&s.labels)))?;
                if n > 100_000 {
                    return Err(format!(
                        "stream {}: repeat count {n} is too large (at most 100000)",
                        go_quote(&s.labels)
                    ));
                }
                for _ in 0..n {
                    if line != "_" {
                        lines.push(StreamLine {
                            t_ms: step.saturating_mul(interval_ms),
                            line: line.to_string(),
                            metadata: meta.clone(),
                        });
                    }
                    step += 1;
                }
            }
            LineEntry::Timed(tl) => {
                let t_ms = match tl.at {
                    Some(at) => at,
                    None => {
                        step += 1;
                        (step - 1).saturating_mul(interval_ms)
                    }
                };
                lines.push(StreamLine {
                    t_ms,
                    line: tl.line.clone(),
                    metadata: merged(&meta, &tl.structured_metadata),
                });
            }
        }
    }
    lines.sort_by_key(|l| l.t_ms);
    Ok(ExpandedStream { labels, lines })
}

/// Expands every input stream of a test group.
pub fn expand_streams(
    streams: &[InputStream],
    interval_ms: i64,
) -> Result<Vec<ExpandedStream>, String> {
    streams
        .iter()
        .map(|s| expand_stream(s, interval_ms))
        .collect()
}

/// A temporary log store holding a test group's input streams, and the query engine
/// over it. Its own single-threaded runtime drives the store and the engine.
pub struct LogEnv {
    rt: Option<tokio::runtime::Runtime>,
    engine: Engine,
    dir: PathBuf,
}

impl LogEnv {
    /// Creates the store and writes the streams (times in ms since the test's start,
    /// stored as Unix time 0 + t).
    pub fn open(streams: &[ExpandedStream]) -> Result<LogEnv, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the log store's runtime: {e}"))?;
        let dir = std::env::temp_dir().join(format!("argus-rules-test-{}", uuid::Uuid::new_v4()));
        let mut rows = Vec::new();
        for s in streams {
            for l in &s.lines {
                rows.push(WriteRow {
                    tenant: DEFAULT_TENANT.to_string(),
                    labels: s.labels.clone(),
                    ts: l.t_ms.saturating_mul(1_000_000),
                    line: l.line.clone(),
                    metadata: l.metadata.clone(),
                    source: SourcePos {
                        topic: "argus.rules.unittest".into(),
                        partition: 0,
                        offset: rows.len() as i64,
                    },
                });
            }
        }
        let path = dir.join("logs.sqlite3");
        let store = block_on(&rt, async move {
            let store = EmbeddedStore::open(path).await?;
            if !rows.is_empty() {
                store.write(&rows).await?;
            }
            Ok::<_, argus_query::QueryError>(store)
        });
        let env = LogEnv {
            engine: Engine::new(
                Arc::new(store.map_err(|e| {
                    let _ = std::fs::remove_dir_all(&dir);
                    format!("cannot create the test log store: {e}")
                })?),
                Limits::default(),
            ),
            rt: Some(rt),
            dir,
        };
        Ok(env)
    }

    /// A LogQL rule expression at `t_ms`, as the rules service evaluates it.
    pub fn instant_expr(
        &self,
        text: &str,
        expr: &Expr,
        t_ms: i64,
    ) -> Result<Vec<Sample>, RulesError> {
        let rt = self.rt.as_ref().expect("runtime present until drop");
        block_on(
            rt,
            crate::service::logql_instant(&self.engine, DEFAULT_TENANT, text, expr, t_ms),
        )
    }

    /// A LogQL query given as text (`logql_expr_test`) at `t_ms`: its samples, or the
    /// parser's or engine's error text.
    pub fn query(&self, text: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let expr = argus_query::logql::parse(text).map_err(|e| e.to_string())?;
        self.instant_expr(text, &expr, t_ms)
            .map(|v| v.into_iter().map(|s| (s.labels, s.value)).collect())
            .map_err(|e| match e {
                // The engine's own text, as promql_expr_test prints the PromQL engine's.
                RulesError::Query(q) => q.to_string(),
                e => e.to_string(),
            })
    }
}

impl Drop for LogEnv {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` on `rt`; from inside another runtime (where `block_on` would panic) on a
/// helper thread.
fn block_on<F>(rt: &tokio::runtime::Runtime, f: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(f))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        rt.block_on(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(labels: &str, lines: &[LineEntry]) -> InputStream {
        InputStream {
            labels: labels.into(),
            lines: lines.to_vec(),
            structured_metadata: BTreeMap::new(),
        }
    }

    fn text(s: &str) -> LineEntry {
        LineEntry::Text(s.into())
    }

    #[test]
    fn expands_texts_repeats_gaps_and_times() {
        let s = stream(
            r#"{app="a"}"#,
            &[
                text("start"),
                text("_ x2"),
                text("error: declined x3"),
                LineEntry::Timed(super::super::testfile::TimedLine {
                    at: Some(90_000),
                    line: "late x2".into(),
                    structured_metadata: BTreeMap::from([("trace".into(), "t1".into())]),
                }),
                text("_"),
                text("end"),
            ],
        );
        let e = expand_stream(&s, 60_000).unwrap();
        assert_eq!(e.labels, Labels::from_pairs([("app", "a")]));
        let got: Vec<(i64, &str)> = e.lines.iter().map(|l| (l.t_ms, l.line.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (0, "start"),
                (90_000, "late x2"),
                (180_000, "error: declined"),
                (240_000, "error: declined"),
                (300_000, "error: declined"),
                (420_000, "end"),
            ]
        );
        assert_eq!(e.lines[1].metadata.get("trace"), Some("t1"));
    }

    #[test]
    fn suffix_rules() {
        assert_eq!(repeat_suffix("a x5").unwrap(), ("a", 5));
        assert_eq!(repeat_suffix("ax5").unwrap(), ("ax5", 1));
        assert_eq!(repeat_suffix("a x5y").unwrap(), ("a x5y", 1));
        assert_eq!(repeat_suffix("x5").unwrap(), ("x5", 1));
        assert!(repeat_suffix("a x0").is_err());
        assert!(expand_stream(&stream("{}", &[]), 1).is_err());
        assert!(expand_stream(&stream("{app=", &[]), 1).is_err());
    }

    #[test]
    fn lines_are_queryable() {
        let s = stream(r#"{app="a", level="error"}"#, &[text("boom x3")]);
        let env = LogEnv::open(&[expand_stream(&s, 60_000).unwrap()]).unwrap();
        let dir = env.dir.clone();
        let got = env
            .query(
                r#"sum by (app) (count_over_time({app="a"} |= "boom" [5m]))"#,
                120_000,
            )
            .unwrap();
        assert_eq!(got, vec![(Labels::from_pairs([("app", "a")]), 3.0)]);
        let early = env.query(r#"count_over_time({app="a"}[1m])"#, 0).unwrap();
        assert_eq!(early.len(), 1);
        assert_eq!(early[0].1, 1.0);
        assert!(env.query("{app=\"a\"}", 0).is_err());
        drop(env);
        assert!(!dir.exists());
    }
}
