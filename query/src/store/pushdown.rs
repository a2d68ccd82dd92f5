//! Metric pushdown with a parser: which range aggregations over a parsed pipeline a
//! store may compute itself ([`plan`]), and the request and answer of
//! [`super::LogStore::aggregate`].
//!
//! A plan covers `{selector} [line filters] | json|logfmt|pattern "…" [line filters]
//! [label filters] [| unwrap x]` grouped `by (…)`. The store returns, per stream,
//! time bucket and value of the extracted grouping labels, the count, bytes, sum, min
//! and max of the samples. It must reproduce the engine exactly: a store recognises
//! the rows whose result it cannot prove equal to the engine's (malformed JSON,
//! structured metadata, values that would fail numeric conversion and set
//! `__error__`, …) and returns those rows as they are (up to a limit; past it,
//! `None`: the engine scans), for the engine to run through the exact pipeline.

use argus_schemas::Labels;

use crate::logql::ast::{LabelFilterExpr, LineFilter, LogExpr, Parser, Stage, Unwrap, UnwrapConv};
use crate::logql::pipeline::ERROR_LABEL;

/// The parsers a store may evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum PushParser {
    /// No parser: line filters only (grouping labels come from the streams; rows with
    /// structured metadata, which could add labels, are refused).
    Lines,
    /// `| json` without parameters.
    Json,
    /// `| pattern "…"`.
    Pattern(String),
    /// `| logfmt` without flags or parameters.
    Logfmt,
}

/// A pushed-down pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct AggPlan {
    /// All line filters of the pipeline (they all see the raw line).
    pub filters: Vec<LineFilter>,
    pub parser: PushParser,
    /// The label filters after the parser, joined with `and`.
    pub label_filter: Option<LabelFilterExpr>,
    /// Extracted labels returned per row (the grouping labels no stream has).
    pub keys: Vec<String>,
    /// The unwrapped label (plain float conversion).
    pub unwrap: Option<String>,
    /// Whether line bytes are needed (`bytes_over_time`, `bytes_rate`); set by the
    /// caller, `false` from [`plan`].
    pub bytes: bool,
}

/// What [`super::LogStore::aggregate`] is asked.
#[derive(Debug, Clone)]
pub struct AggRequest<'a> {
    pub tenant: &'a str,
    /// Fingerprints, ascending.
    pub streams: &'a [u64],
    /// A group id per stream (parallel to `streams`; may be empty: one group per
    /// stream): rows of streams with the same id may be merged, their `fingerprint`
    /// is then one of theirs.
    pub groups: &'a [u32],
    pub plan: &'a AggPlan,
    /// Bucket `i` holds samples with `ts` in `(origin + (i-1)*width, origin + i*width]`.
    pub origin: i64,
    pub width: i64,
    pub buckets: i64,
}

/// Samples of one stream, bucket and key tuple.
#[derive(Debug, Clone, PartialEq)]
pub struct AggRow {
    pub fingerprint: u64,
    pub bucket: i64,
    /// Values of [`AggPlan::keys`], in order (`""` when absent).
    pub keys: Vec<String>,
    /// Samples (lines kept, or unwrapped values present).
    pub count: u64,
    /// Bytes of the lines kept.
    pub bytes: u64,
    /// Sum, min and max of the unwrapped values (0 without unwrap).
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// What [`super::LogStore::aggregate`] answers: the samples of the rows the store
/// evaluated, and the rows it could not evaluate exactly (in range, after the line
/// filters), which the engine runs through the pipeline itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggAnswer {
    pub rows: Vec<AggRow>,
    /// `(fingerprint, entry)`, in no particular order.
    pub rest: Vec<(u64, crate::store::Entry)>,
}

/// The label names a label filter reads.
fn filter_names(e: &LabelFilterExpr, out: &mut Vec<String>) -> bool {
    match e {
        LabelFilterExpr::And(a, b) | LabelFilterExpr::Or(a, b) => {
            filter_names(a, out) && filter_names(b, out)
        }
        LabelFilterExpr::String(m) => {
            out.push(m.name.clone());
            true
        }
        LabelFilterExpr::Number { name, value, .. }
        | LabelFilterExpr::Duration { name, value, .. } => {
            out.push(name.clone());
            value.is_finite()
        }
        // Bytes and IPs stay in the engine.
        _ => false,
    }
}

/// A plan for `log` (with `unwrap`) grouped by `group`, or `None` when the pipeline
/// has a shape a store does not evaluate. `streams` are the selected streams' labels:
/// a name a stream already has would be renamed `…_extracted` by the parser, so
/// filtering or unwrapping such a name stays in the engine; grouping by it is fine
/// when every stream has it (the stream's value wins) and it is then not a key.
pub fn plan(
    log: &LogExpr,
    unwrap: Option<&Unwrap>,
    group: &[String],
    streams: &[&Labels],
) -> Option<AggPlan> {
    let mut filters = Vec::new();
    let mut parser = None;
    let mut label_filter: Option<LabelFilterExpr> = None;
    for s in &log.pipeline {
        match s {
            Stage::LineFilter(f) => filters.push(f.clone()),
            Stage::Parser(p) if parser.is_none() => {
                parser = Some(match p {
                    Parser::Json(params) if params.is_empty() => PushParser::Json,
                    Parser::Pattern(p) => PushParser::Pattern(p.clone()),
                    Parser::Logfmt {
                        strict: false,
                        keep_empty: false,
                        params,
                    } if params.is_empty() => PushParser::Logfmt,
                    _ => return None,
                })
            }
            Stage::LabelFilter(e) if parser.is_some() => {
                label_filter = Some(match label_filter.take() {
                    None => e.clone(),
                    Some(prev) => LabelFilterExpr::And(Box::new(prev), Box::new(e.clone())),
                })
            }
            _ => return None,
        }
    }
    let parser = match parser {
        Some(p) => p,
        None if unwrap.is_none() => PushParser::Lines,
        None => return None,
    };
    let mut filtered = Vec::new();
    if let Some(e) = &label_filter
        && !filter_names(e, &mut filtered)
    {
        return None;
    }
    let unwrap_name = match unwrap {
        None => None,
        Some(u) if u.conv == UnwrapConv::None && u.post_filters.is_empty() => Some(u.label.clone()),
        Some(_) => return None,
    };
    let special = |n: &str| n.starts_with("__") || n.ends_with("_extracted");
    let in_any = |n: &str| streams.iter().any(|l| l.get(n).is_some());
    for n in filtered.iter().chain(unwrap_name.iter()) {
        if n == ERROR_LABEL {
            // rows the store answers have no error: `__error__` reads "" (a number
            // filter on it fails conversion and is refused above)
            continue;
        }
        if special(n) || in_any(n) {
            return None;
        }
    }
    if let Some(u) = &unwrap_name
        && group.contains(u)
    {
        return None;
    }
    if label_filter
        .as_ref()
        .is_some_and(|e| has_number_on(e, ERROR_LABEL))
    {
        return None;
    }
    let mut keys = Vec::new();
    for n in group {
        if special(n) {
            return None;
        }
        let with = streams
            .iter()
            .filter(|l| l.get(n).is_some_and(|v| !v.is_empty()))
            .count();
        if with == streams.len() || parser == PushParser::Lines {
            continue;
        }
        if in_any(n) {
            return None;
        }
        if !keys.contains(n) {
            keys.push(n.clone());
        }
    }
    Some(AggPlan {
        filters,
        parser,
        label_filter,
        keys,
        unwrap: unwrap_name,
        bytes: false,
    })
}

fn has_number_on(e: &LabelFilterExpr, name: &str) -> bool {
    match e {
        LabelFilterExpr::And(a, b) | LabelFilterExpr::Or(a, b) => {
            has_number_on(a, name) || has_number_on(b, name)
        }
        LabelFilterExpr::Number { name: n, .. } => n == name,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::ast::{Expr, MetricExpr};

    fn log_range(q: &str) -> (LogExpr, Option<Unwrap>) {
        match crate::logql::parse(q).expect("parses") {
            Expr::Metric(MetricExpr::RangeAgg { range, .. }) => (range.log, range.unwrap),
            other => panic!("not a range aggregation: {other:?}"),
        }
    }

    #[test]
    fn plans_json_with_filters_and_keys() {
        let (log, u) =
            log_range(r#"count_over_time({app="a"} |= "x" | json | status >= 500 [5m])"#);
        let stream = Labels::from_pairs([("app", "a")]);
        let p =
            plan(&log, u.as_ref(), &["path".into(), "app".into()], &[&stream]).expect("pushable");
        assert_eq!(p.parser, PushParser::Json);
        assert_eq!(p.filters.len(), 1);
        assert_eq!(p.keys, vec!["path".to_string()]);
        assert!(p.label_filter.is_some());
    }

    #[test]
    fn refuses_what_the_store_cannot_match() {
        let stream = Labels::from_pairs([("app", "a"), ("status", "1")]);
        for q in [
            r#"count_over_time({app="a"} | json | status >= 500 [5m])"#,
            r#"count_over_time({app="a"} | logfmt --strict [5m])"#,
            r#"count_over_time({app="a"} | logfmt a="b" [5m])"#,
            r#"count_over_time({app="a"} | json | d > 1KB [5m])"#,
            r#"count_over_time({app="a"} | json | line_format "x" [5m])"#,
            r#"count_over_time({app="a"} | json a="b" [5m])"#,
            r#"sum_over_time({app="a"} | json | unwrap duration(d) [5m])"#,
            r#"sum_over_time({app="a"} |= "x" | unwrap x [5m])"#,
        ] {
            let (log, u) = log_range(q);
            assert!(plan(&log, u.as_ref(), &[], &[&stream]).is_none(), "{q}");
        }
        // a grouping label only some streams have
        let (log, u) = log_range(r#"count_over_time({app="a"} | json [5m])"#);
        let other = Labels::from_pairs([("app", "b")]);
        assert!(plan(&log, u.as_ref(), &["status".into()], &[&stream, &other]).is_none());
    }
}
