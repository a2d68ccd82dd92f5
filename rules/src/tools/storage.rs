//! The in-memory series store of a unit test: input series loaded up to the current
//! evaluation time, plus what rules record (recording rules, `ALERTS`,
//! `ALERTS_FOR_STATE`, staleness markers), with the append rules of Prometheus'
//! TSDB head (no out-of-order samples; a second value at the same timestamp is
//! rejected, the same value again is ignored).

use std::collections::BTreeMap;

use argus_schemas::Labels;
use promql_parser::label::Matcher;

use crate::promql::Storage;

/// Why an append was refused (Prometheus' storage error texts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    OutOfOrder,
    Duplicate,
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::OutOfOrder => f.write_str("out of order sample"),
            AppendError::Duplicate => f.write_str("duplicate sample for timestamp"),
        }
    }
}

/// Series by label set, samples ascending.
#[derive(Debug, Default, Clone)]
pub struct TestStorage {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl TestStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sample.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        let s = self.series.entry(labels.clone()).or_default();
        if let Some(&(lt, lv)) = s.last() {
            if t < lt {
                return Err(AppendError::OutOfOrder);
            }
            if t == lt {
                return if lv.to_bits() == v.to_bits() {
                    Ok(())
                } else {
                    Err(AppendError::Duplicate)
                };
            }
        }
        s.push((t, v));
        Ok(())
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

impl Storage for TestStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        self.series
            .iter()
            .filter(|(l, _)| {
                matchers
                    .iter()
                    .all(|m| m.is_match(l.get(&m.name).unwrap_or("")))
            })
            .filter_map(|(l, s)| {
                let lo = s.partition_point(|&(t, _)| t < start_ms);
                let hi = s.partition_point(|&(t, _)| t <= end_ms);
                (lo < hi).then(|| (l.clone(), s[lo..hi].to_vec()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::label::MatchOp;

    #[test]
    fn appends_and_selects() {
        let mut st = TestStorage::new();
        let a = Labels::from_pairs([("__name__", "m"), ("k", "a")]);
        let b = Labels::from_pairs([("__name__", "m"), ("k", "b")]);
        st.append(&a, 0, 1.0).unwrap();
        st.append(&a, 60_000, 2.0).unwrap();
        assert_eq!(st.append(&a, 60_000, 2.0), Ok(()));
        assert_eq!(st.append(&a, 60_000, 3.0), Err(AppendError::Duplicate));
        assert_eq!(st.append(&a, 0, 3.0), Err(AppendError::OutOfOrder));
        st.append(&b, 30_000, 5.0).unwrap();
        let m = [Matcher::new(MatchOp::Equal, "__name__", "m")];
        let got = st.select(&m, 1, 60_000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, vec![(60_000, 2.0)]);
        let none = [Matcher::new(MatchOp::Equal, "missing", "")];
        assert_eq!(st.select(&none, 0, 60_000).len(), 2);
    }
}
