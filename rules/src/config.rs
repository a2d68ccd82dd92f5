//! `rules:` in the config file: which rule files run, how often, over how much of the
//! metric stream, for which tenants, with named defaults, unknown keys refused, and a
//! validated form ([`RulesConfig::validate`]).
//!
//! Tenants: every record carries a tenant (project). The rule service keeps one metric
//! window per tenant and evaluates every rule group once per tenant, against that
//! tenant's metrics (PromQL) or log streams (LogQL); the alerts and recorded series a
//! group produces carry that tenant. The tenants evaluated are `tenants` (by default
//! `default`) plus, with `discover_tenants` (on by default), every tenant seen on
//! `argus.metrics`. One tenant's rules never see another tenant's data.
//!
//! Not taken over from Prometheus: `--rules.alert.for-outage-tolerance` and
//! `--rules.alert.for-grace-period`. The alert state, `for` timers included, is
//! rebuilt from the alerts topic after any restart, so an alert pending since minute 0
//! fires at minute `for` whether or not the service was down in between.

use std::collections::BTreeMap;
use std::time::Duration;

use argus_schemas::duration::serde_duration;
use serde::{Deserialize, Serialize};

/// The consumer group the rule service reads `argus.metrics` as.
pub const DEFAULT_GROUP: &str = "argus-rules";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Globs of rule files (Prometheus' format), as `rule_files` in prometheus.yml.
    pub rule_files: Vec<String>,
    /// Interval of groups that set none (`global.evaluation_interval`).
    #[serde(with = "serde_duration")]
    pub evaluation_interval: Duration,
    /// Added to every alert and recorded series unless the series has the label
    /// (`global.external_labels`).
    pub external_labels: BTreeMap<String, String>,
    /// Base of alerts' generator URLs (`--web.external-url`); empty: none.
    pub external_url: String,
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`).
    #[serde(with = "serde_duration")]
    pub lookback_delta: Duration,
    /// Longest time a query through the HTTP API may run (`--query.timeout`).
    #[serde(with = "serde_duration")]
    pub query_timeout: Duration,
    /// How much of the metric stream the window keeps: at least the longest range a
    /// rule or a dashboard selects, plus `lookback_delta`.
    #[serde(with = "serde_duration")]
    pub retention: Duration,
    /// How often a firing alert is sent again (`--rules.alert.resend-delay`).
    #[serde(with = "serde_duration")]
    pub resend_delay: Duration,
    /// How far back rule queries look by default (`global.rule_query_offset`); a
    /// group's `query_offset` overrides it.
    #[serde(with = "serde_duration")]
    pub rule_query_offset: Duration,
    /// Tenants whose rules always run.
    pub tenants: Vec<String>,
    /// Also run the rules for every tenant seen on `argus.metrics`.
    pub discover_tenants: bool,
    /// Consumer group for `argus.metrics`. Each rule instance needs every series, so
    /// instances that run side by side on Kafka need distinct groups.
    pub group: String,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            rule_files: Vec::new(),
            evaluation_interval: Duration::from_secs(60),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            lookback_delta: Duration::from_secs(300),
            query_timeout: Duration::from_secs(120),
            retention: Duration::from_secs(3600),
            resend_delay: Duration::from_secs(60),
            rule_query_offset: Duration::ZERO,
            tenants: vec![argus_schemas::DEFAULT_TENANT.to_string()],
            discover_tenants: true,
            group: DEFAULT_GROUP.to_string(),
        }
    }
}

impl RulesConfig {
    /// Checks values; the error is `(key, message)` for the config loader to locate.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let positive = [
            ("rules.evaluation_interval", self.evaluation_interval),
            ("rules.lookback_delta", self.lookback_delta),
            ("rules.query_timeout", self.query_timeout),
            ("rules.retention", self.retention),
            ("rules.resend_delay", self.resend_delay),
        ];
        for (key, d) in positive {
            if d.is_zero() {
                return Err((key.into(), "must be positive".into()));
            }
        }
        if self.retention < self.lookback_delta {
            return Err((
                "rules.retention".into(),
                format!(
                    "must be at least rules.lookback_delta ({})",
                    argus_schemas::duration::format_duration(self.lookback_delta)
                ),
            ));
        }
        for (i, g) in self.rule_files.iter().enumerate() {
            if let Err(e) = glob::Pattern::new(g) {
                return Err((format!("rules.rule_files[{i}]"), format!("{g:?}: {e}")));
            }
        }
        for name in self.external_labels.keys() {
            if !valid_label_name(name) {
                return Err((
                    "rules.external_labels".into(),
                    format!("{name:?} is not a valid label name"),
                ));
            }
        }
        let url = &self.external_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err((
                "rules.external_url".into(),
                "must start with http:// or https://".into(),
            ));
        }
        if self.tenants.is_empty() && !self.discover_tenants {
            return Err((
                "rules.tenants".into(),
                "must not be empty when rules.discover_tenants is false".into(),
            ));
        }
        for t in &self.tenants {
            argus_schemas::validate_tenant(t).map_err(|m| ("rules.tenants".to_string(), m))?;
        }
        if self.group.is_empty() {
            return Err(("rules.group".into(), "must not be empty".into()));
        }
        Ok(())
    }

    /// The rule files the globs name today, sorted, each once. A glob that matches
    /// nothing is not an error (Prometheus' behaviour); an unreadable directory is.
    pub fn resolve_rule_files(&self) -> Result<Vec<std::path::PathBuf>, crate::RulesError> {
        let mut out = Vec::new();
        for g in &self.rule_files {
            let paths = glob::glob(g)
                .map_err(|e| crate::RulesError::Config(format!("rule_files {g:?}: {e}")))?;
            for p in paths {
                let p =
                    p.map_err(|e| crate::RulesError::Config(format!("rule_files {g:?}: {e}")))?;
                if p.is_file() {
                    out.push(p);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// Prometheus' legacy label name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_checks() {
        let c: RulesConfig = serde_yaml_ng::from_str(
            "rule_files: [\"/etc/argus/rules/*.yml\"]\nevaluation_interval: 30s\nexternal_labels: {cluster: eu1}\ntenants: [team-a]\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.evaluation_interval, Duration::from_secs(30));
        assert_eq!(c.lookback_delta, Duration::from_secs(300));
        assert_eq!(c.resend_delay, Duration::from_secs(60));
        assert_eq!(c.tenants, vec!["team-a".to_string()]);
        assert_eq!(c.group, DEFAULT_GROUP);

        let e = serde_yaml_ng::from_str::<RulesConfig>("evaluation_intervall: 1m\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown field `evaluation_intervall`"),
            "{e}"
        );

        let bad: RulesConfig = serde_yaml_ng::from_str("evaluation_interval: 0s\n").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "rules.evaluation_interval");
        let bad: RulesConfig = serde_yaml_ng::from_str("external_labels: {\"1x\": a}\n").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "rules.external_labels");
        let bad: RulesConfig = serde_yaml_ng::from_str("retention: 1m\n").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "rules.retention");
        let bad: RulesConfig = serde_yaml_ng::from_str("tenants: [\"a b\"]\n").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "rules.tenants");
        let bad: RulesConfig = serde_yaml_ng::from_str("rule_files: [\"a/[\"]\n").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "rules.rule_files[0]");
    }

    #[test]
    fn globs_resolve_sorted_and_once() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.yml", "a.yml", "c.txt"] {
            std::fs::write(dir.path().join(f), "groups: []\n").unwrap();
        }
        let c = RulesConfig {
            rule_files: vec![
                format!("{}/*.yml", dir.path().display()),
                format!("{}/a.yml", dir.path().display()),
                format!("{}/none/*.yml", dir.path().display()),
            ],
            ..RulesConfig::default()
        };
        let files = c.resolve_rule_files().unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.yml", "b.yml"]);
    }
}
