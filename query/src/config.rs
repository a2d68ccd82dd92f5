//! `query:` in the config file: the writer, the query limits and log retention, with
//! named defaults, unknown keys refused, and a validated form.

use std::collections::BTreeMap;
use std::time::Duration;

use argus_schemas::duration::serde_duration;
use serde::{Deserialize, Serialize};

use crate::engine::Limits;
use crate::writer::WriterConfig;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    #[serde(default)]
    pub writer: WriterConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// `query.limits`, named as Loki's `limits_config`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_entries_limit_per_query: u32,
    pub max_query_series: usize,
    /// 0s = unlimited
    #[serde(with = "serde_duration")]
    pub max_query_length: Duration,
    pub max_points_per_series: i64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = Limits::default();
        LimitsConfig {
            max_entries_limit_per_query: d.max_entries_limit_per_query,
            max_query_series: d.max_query_series,
            max_query_length: Duration::from_nanos(d.max_query_length as u64),
            max_points_per_series: d.max_points_per_series,
        }
    }
}

impl LimitsConfig {
    pub fn to_limits(&self) -> Limits {
        Limits {
            max_entries_limit_per_query: self.max_entries_limit_per_query,
            max_query_series: self.max_query_series,
            max_query_length: i64::try_from(self.max_query_length.as_nanos()).unwrap_or(i64::MAX),
            max_points_per_series: self.max_points_per_series,
            ..Limits::default()
        }
    }
}

/// `query.retention`: how long log lines are kept, per tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// For tenants not listed in `tenants`; absent = keep forever.
    #[serde(with = "opt_duration")]
    pub default: Option<Duration>,
    /// Per tenant (project).
    #[serde(with = "map_duration")]
    pub tenants: BTreeMap<String, Duration>,
    /// How often expired lines are deleted.
    #[serde(with = "serde_duration")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            default: None,
            tenants: BTreeMap::new(),
            interval: Duration::from_secs(600),
        }
    }
}

impl QueryConfig {
    /// Checks values; the error is `(key, message)` for the config loader to locate.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let w = &self.writer;
        if w.max_batch_rows == 0 || w.max_batch_rows > 1_000_000 {
            return Err((
                "query.writer.max_batch_rows".into(),
                "must be between 1 and 1000000".into(),
            ));
        }
        if w.topics.is_empty() {
            return Err(("query.writer.topics".into(), "must not be empty".into()));
        }
        if self.limits.max_entries_limit_per_query == 0 {
            return Err((
                "query.limits.max_entries_limit_per_query".into(),
                "must be positive".into(),
            ));
        }
        if self.limits.max_points_per_series <= 0 {
            return Err((
                "query.limits.max_points_per_series".into(),
                "must be positive".into(),
            ));
        }
        if self.retention.interval.is_zero() {
            return Err(("query.retention.interval".into(), "must be positive".into()));
        }
        for (tenant, d) in &self.retention.tenants {
            argus_schemas::validate_tenant(tenant)
                .map_err(|m| ("query.retention.tenants".to_string(), m))?;
            if d.is_zero() {
                return Err((
                    format!("query.retention.tenants.{tenant}"),
                    "must be positive".into(),
                ));
            }
        }
        Ok(())
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&argus_schemas::duration::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| argus_schemas::duration::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod map_duration {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            map.serialize_entry(k, &argus_schemas::duration::format_duration(*v))?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                argus_schemas::duration::parse_duration(&v)
                    .map(|d| (k, d))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: QueryConfig = serde_yaml_ng::from_str(
            "limits:\n  max_query_series: 10\nretention:\n  default: 7d\n  tenants: {team-a: 30d}\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.limits.to_limits().max_query_series, 10);
        assert_eq!(c.limits.to_limits().max_entries_limit_per_query, 5000);
        assert_eq!(c.retention.default, Some(Duration::from_secs(7 * 86400)));
        assert_eq!(
            c.retention.tenants["team-a"],
            Duration::from_secs(30 * 86400)
        );
        let e = serde_yaml_ng::from_str::<QueryConfig>("limits:\n  max_series: 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `max_series`"), "{e}");
        let bad: QueryConfig =
            serde_yaml_ng::from_str("retention:\n  tenants: {\"..\": 1d}\n").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "query.retention.tenants");
    }
}
