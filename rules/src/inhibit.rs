//! Inhibition rules in Alertmanager 0.25's configuration format and their evaluation.
//!
//! This module owns [`InhibitRuleConfig`] (`source_matchers`, `target_matchers`,
//! `equal`, and the deprecated `source_match`, `source_match_re`, `target_match`,
//! `target_match_re`), [`InhibitRule`] and [`Inhibitor`]. As in Alertmanager, an alert
//! is inhibited when it matches a rule's target matchers and some unresolved alert that
//! matches the rule's source matchers has the same values for every `equal` label (a
//! label missing on both sides counts as equal); an alert that matches both sides of a
//! rule cannot inhibit another alert that matches both sides of the same rule. Silenced
//! source alerts still inhibit.

use std::collections::BTreeMap;

use argus_schemas::Labels;
use serde::{Deserialize, Serialize};

use crate::RulesError;
use crate::silences::{LabelMatcher, MatchType, is_valid_label_name, matches_all};

/// One entry of `inhibit_rules`, as Alertmanager's configuration writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    /// Deprecated: label values the source must have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match: BTreeMap<String, String>,
    /// Deprecated: regexes (anchored) the source's labels must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match_re: BTreeMap<String, String>,
    /// Matchers in Alertmanager's syntax, e.g. `severity="critical"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_matchers: Vec<String>,
    /// Labels whose values must be equal on the source and the target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

/// A compiled inhibition rule.
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    pub source: Vec<LabelMatcher>,
    pub target: Vec<LabelMatcher>,
    pub equal: Vec<String>,
}

fn side(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    matchers: &[String],
) -> Result<Vec<LabelMatcher>, String> {
    let mut out = Vec::new();
    for (n, v) in eq {
        if !is_valid_label_name(n) {
            return Err(format!("invalid label name {n:?}"));
        }
        out.push(LabelMatcher::new(MatchType::Equal, n, v)?);
    }
    for (n, v) in re {
        if !is_valid_label_name(n) {
            return Err(format!("invalid label name {n:?}"));
        }
        out.push(LabelMatcher::new(MatchType::Regex, n, v)?);
    }
    let mut new_style = Vec::new();
    for line in matchers {
        new_style.extend(LabelMatcher::parse_list(line)?);
    }
    // Alertmanager sorts the parsed `*_matchers` (by name, value, type).
    new_style.sort_by(|a, b| (&a.name, &a.value, a.kind).cmp(&(&b.name, &b.value, b.kind)));
    out.extend(new_style);
    Ok(out)
}

impl InhibitRule {
    /// Compiles one configured rule; errors carry Alertmanager's texts.
    pub fn from_config(c: &InhibitRuleConfig) -> Result<Self, RulesError> {
        let bad = |e: String| RulesError::BadRequest(format!("inhibit_rules: {e}"));
        let source = side(&c.source_match, &c.source_match_re, &c.source_matchers).map_err(bad)?;
        let target = side(&c.target_match, &c.target_match_re, &c.target_matchers).map_err(bad)?;
        for n in &c.equal {
            if !is_valid_label_name(n) {
                return Err(bad(format!("invalid label name {n:?}")));
            }
        }
        let mut equal = c.equal.clone();
        equal.sort();
        equal.dedup();
        Ok(InhibitRule {
            source,
            target,
            equal,
        })
    }

    fn equal_labels(&self, a: &Labels, b: &Labels) -> bool {
        self.equal
            .iter()
            .all(|n| a.get(n).unwrap_or("") == b.get(n).unwrap_or(""))
    }
}

/// A candidate source alert: its fingerprint and labels. Only unresolved alerts may be
/// given.
#[derive(Debug, Clone, Copy)]
pub struct SourceAlert<'a> {
    pub fingerprint: u64,
    pub labels: &'a Labels,
}

/// The configured inhibition rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>) -> Self {
        Inhibitor { rules }
    }

    pub fn from_configs(cfgs: &[InhibitRuleConfig]) -> Result<Self, RulesError> {
        Ok(Inhibitor::new(
            cfgs.iter()
                .map(InhibitRule::from_config)
                .collect::<Result<_, _>>()?,
        ))
    }

    pub fn rules(&self) -> &[InhibitRule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The fingerprint of an alert that inhibits `labels`, if any (the lowest one when
    /// several do; Alertmanager names one of them). `alerts` are the unresolved alerts.
    pub fn inhibited_by<'a>(
        &self,
        labels: &Labels,
        alerts: impl IntoIterator<Item = SourceAlert<'a>> + Clone,
    ) -> Option<u64> {
        for r in &self.rules {
            if !matches_all(&r.target, labels) {
                continue;
            }
            let exclude_two_sided = matches_all(&r.source, labels);
            let found = alerts
                .clone()
                .into_iter()
                .filter(|a| matches_all(&r.source, a.labels))
                .filter(|a| r.equal_labels(a.labels, labels))
                .filter(|a| !(exclude_two_sided && matches_all(&r.target, a.labels)))
                .map(|a| a.fingerprint)
                .min();
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_forms_compile_to_the_same_rule() {
        let new: InhibitRuleConfig = serde_yaml_ng::from_str(
            "source_matchers: ['severity=\"critical\"']\ntarget_matchers: ['severity=~\"warn.*\"']\nequal: [cluster]\n",
        )
        .unwrap();
        let old: InhibitRuleConfig = serde_yaml_ng::from_str(
            "source_match: {severity: critical}\ntarget_match_re: {severity: 'warn.*'}\nequal: [cluster]\n",
        )
        .unwrap();
        assert_eq!(
            InhibitRule::from_config(&new).unwrap(),
            InhibitRule::from_config(&old).unwrap()
        );
        let bad: InhibitRuleConfig = serde_yaml_ng::from_str("source_match: {a-b: x}\n").unwrap();
        assert_eq!(
            InhibitRule::from_config(&bad).unwrap_err().to_string(),
            "inhibit_rules: invalid label name \"a-b\""
        );
        assert!(serde_yaml_ng::from_str::<InhibitRuleConfig>("sourc_matchers: []\n").is_err());
    }
}
