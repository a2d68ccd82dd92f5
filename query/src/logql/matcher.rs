//! Label matchers compiled for evaluation: `=`, `!=`, and fully anchored RE2 regexes
//! (`=~`, `!~`), as Prometheus and Loki define them.

use argus_schemas::Labels;
use regex::Regex;

use super::ast::{LabelMatcher, MatchOp};
use crate::error::{QueryError, Result};

/// A [`LabelMatcher`] with its regex compiled (anchored at both ends).
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl Compiled {
    pub fn new(m: &LabelMatcher) -> Result<Self> {
        let regex = match m.op {
            MatchOp::Re | MatchOp::Nre => Some(anchored(&m.value)?),
            _ => None,
        };
        Ok(Compiled {
            name: m.name.clone(),
            op: m.op,
            value: m.value.clone(),
            regex,
        })
    }

    /// Whether a label value (empty when the label is absent) matches.
    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Neq => v != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::Nre => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether the matcher matches the empty string (a selector needs at least one
    /// that does not).
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

/// Compiles `re` anchored at both ends, as `^(?:re)$`.
pub fn anchored(re: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{re})$"))
        .map_err(|e| QueryError::Invalid(format!("invalid regex {re:?}: {e}")))
}

/// Compiles a selector.
pub fn compile_all(ms: &[LabelMatcher]) -> Result<Vec<Compiled>> {
    ms.iter().map(Compiled::new).collect()
}

/// Whether all matchers match.
pub fn matches_all(ms: &[Compiled], labels: &Labels) -> bool {
    ms.iter().all(|m| m.matches(labels))
}
