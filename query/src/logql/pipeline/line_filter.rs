//! Line filters: `|=` / `!=` (substring), `|~` / `!~` (unanchored RE2 regex),
//! `|>` / `!>` (Loki pattern) and `ip("…")`, each with `or` alternatives. A positive
//! filter keeps a line matching any alternative; a negative one keeps a line
//! matching none of them.

use memchr::memmem::Finder;
use regex::Regex;

use super::ip::IpMatcher;
use super::pattern::Matcher as PatternMatcher;
use crate::error::{QueryError, Result};
use crate::logql::ast::{FilterValue, LineFilter, LineFilterOp};

#[derive(Debug, Clone)]
enum Alt {
    /// Always true (`|= ""`).
    True,
    Contains(Box<Finder<'static>>),
    Regex(Regex),
    Pattern(PatternMatcher),
    Ip(IpMatcher),
}

impl Alt {
    fn matches(&self, line: &str) -> bool {
        match self {
            Alt::True => true,
            Alt::Contains(f) => f.find(line.as_bytes()).is_some(),
            Alt::Regex(r) => r.is_match(line),
            Alt::Pattern(p) => p.test(line),
            Alt::Ip(ip) => ip.matches_text(line),
        }
    }
}

/// A compiled line filter.
#[derive(Debug, Clone)]
pub struct CompiledLineFilter {
    negate: bool,
    alts: Vec<Alt>,
}

impl CompiledLineFilter {
    pub fn new(f: &LineFilter) -> Result<Self> {
        let negate = matches!(
            f.op,
            LineFilterOp::NotContains | LineFilterOp::NotRegex | LineFilterOp::NotPattern
        );
        let mut alts = Vec::with_capacity(f.values.len());
        for v in &f.values {
            alts.push(match (f.op, v) {
                (LineFilterOp::Contains | LineFilterOp::NotContains, FilterValue::Ip(p)) => {
                    Alt::Ip(IpMatcher::new(p)?)
                }
                (_, FilterValue::Ip(_)) => {
                    return Err(QueryError::Invalid(
                        "ip: invalid operation: ip() works only with |= and !=".into(),
                    ));
                }
                (LineFilterOp::Contains | LineFilterOp::NotContains, FilterValue::Literal(s)) => {
                    if s.is_empty() {
                        Alt::True
                    } else {
                        Alt::Contains(Box::new(Finder::new(s.as_bytes()).into_owned()))
                    }
                }
                (LineFilterOp::Regex | LineFilterOp::NotRegex, FilterValue::Literal(s)) => {
                    // Loki reports Go's regexp error text; `check_regex` words it so.
                    crate::logql::parser::check_regex(s).map_err(QueryError::Invalid)?;
                    Alt::Regex(
                        Regex::new(s).map_err(|e| {
                            QueryError::Invalid(format!("error parsing regexp: {e}"))
                        })?,
                    )
                }
                (LineFilterOp::Pattern | LineFilterOp::NotPattern, FilterValue::Literal(s)) => {
                    Alt::Pattern(PatternMatcher::new_line_filter(s)?)
                }
            });
        }
        Ok(CompiledLineFilter { negate, alts })
    }

    /// Whether the line passes.
    #[inline]
    pub fn matches(&self, line: &str) -> bool {
        let any = self.alts.iter().any(|a| a.matches(line));
        any != self.negate
    }
}
