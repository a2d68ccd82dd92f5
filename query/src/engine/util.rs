//! Helpers shared by the log and metric paths: stream selection, the line processor
//! (the pipeline, skipped when a query has no stages), label grouping and the
//! Go-style duration texts of Loki's error messages.

use argus_schemas::Labels;

use super::Ctx;
use crate::error::Result;
use crate::logql::ast::{Grouping, LabelMatcher, Stage};
use crate::logql::matcher;
use crate::logql::pipeline::{Pipeline, Processed};
use crate::store::StreamInfo;

/// Rows per store page.
pub const PAGE: usize = 4096;

/// The streams of the tenant matching `selector` that may have entries in
/// `[start, end)` (the store's candidates), ascending by fingerprint.
pub async fn select_streams(
    ctx: &mut Ctx<'_>,
    selector: &[LabelMatcher],
    start: i64,
    end: i64,
) -> Result<Vec<StreamInfo>> {
    let compiled = matcher::compile_all(selector)?;
    let mut streams: Vec<StreamInfo> = ctx
        .store
        .candidate_streams(ctx.tenant, start, end)
        .await?
        .into_iter()
        .filter(|s| matcher::matches_all(&compiled, &s.labels))
        .collect();
    streams.sort_by_key(|s| s.fingerprint);
    streams.dedup_by_key(|s| s.fingerprint);
    ctx.stats.streams_selected += streams.len() as u64;
    Ok(streams)
}

/// Runs a query's stages over one line. A query without stages skips the pipeline:
/// its labels are the stream's plus the structured metadata (a metadata name already
/// in the stream gets Loki's `_extracted` suffix).
pub struct LineProc {
    pipeline: Option<Pipeline>,
}

impl LineProc {
    pub fn new(stages: &[Stage]) -> Result<Self> {
        let pipeline = if stages.is_empty() {
            None
        } else {
            Some(Pipeline::new(stages)?)
        };
        Ok(LineProc { pipeline })
    }

    pub fn process(
        &self,
        ts: i64,
        line: &str,
        stream: &Labels,
        metadata: &Labels,
    ) -> Option<Processed> {
        match &self.pipeline {
            Some(p) => p.process(ts, line, stream, metadata),
            None => Some(Processed {
                line: line.to_string(),
                labels: with_metadata(stream, metadata),
            }),
        }
    }
}

/// Stream labels plus structured metadata, as Loki's label builder adds them.
pub fn with_metadata(stream: &Labels, metadata: &Labels) -> Labels {
    if metadata.is_empty() {
        return stream.clone();
    }
    let mut out = stream.clone();
    for (n, v) in metadata.iter() {
        if stream.get(n).is_some() {
            out.insert(format!("{n}_extracted"), v);
        } else {
            out.insert(n, v);
        }
    }
    out
}

/// `by (…)` keeps the listed labels that have a value; `without (…)` drops them.
pub fn group_labels(labels: &Labels, g: &Grouping) -> Labels {
    if g.without {
        let mut out = labels.clone();
        for n in &g.labels {
            out.remove(n);
        }
        out
    } else {
        Labels::from_pairs(
            labels
                .iter()
                .filter(|(n, v)| !v.is_empty() && g.labels.iter().any(|l| l == n)),
        )
    }
}

/// Go's `time.Duration.String()` (`721h0m0s`, `1.5s`, `300ms`).
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut s = String::new();
    if u < 1_000_000_000 {
        // sub-second: ns, µs or ms with a fraction
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        s.push_str(&frac(u, div));
        s.push_str(unit);
    } else {
        let secs_total = u / 1_000_000_000;
        let h = secs_total / 3600;
        let m = (secs_total / 60) % 60;
        let rem_ns = u - (h * 3600 + m * 60) * 1_000_000_000;
        if h > 0 {
            s.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            s.push_str(&format!("{m}m"));
        }
        s.push_str(&frac(rem_ns, 1_000_000_000));
        s.push('s');
    }
    if neg { format!("-{s}") } else { s }
}

fn frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let rest = v % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Prometheus' `model.Duration.String()` (`30d1h`, `1w`, `90d`, `1m30s`).
pub fn model_duration(ns: i64) -> String {
    let mut ms = ns / 1_000_000;
    if ms == 0 {
        return "0s".into();
    }
    let mut r = String::new();
    let units: [(&str, i64, bool); 7] = [
        ("y", 1000 * 60 * 60 * 24 * 365, true),
        ("w", 1000 * 60 * 60 * 24 * 7, true),
        ("d", 1000 * 60 * 60 * 24, false),
        ("h", 1000 * 60 * 60, false),
        ("m", 1000 * 60, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in units {
        if exact && ms % mult != 0 {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            r.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    }
    r
}

/// `11000` → `11,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

pub fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_and_prometheus_print_them() {
        let h = 3_600_000_000_000i64;
        assert_eq!(go_duration(721 * h), "721h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(300_000_000), "300ms");
        assert_eq!(model_duration(721 * h), "30d1h");
        assert_eq!(model_duration(7 * 24 * h), "1w");
        assert_eq!(model_duration(90 * 1_000_000_000), "1m30s");
        assert_eq!(thousands(11000), "11,000");
        assert_eq!(thousands(500), "500");
        assert_eq!(gcd(60, 45), 15);
    }
}
