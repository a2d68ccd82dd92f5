//! Event log configuration: which backend, and topic defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use argus_schemas::duration::serde_duration;
use serde::{Deserialize, Serialize};

/// Default retention of every topic: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// Default partitions of a Kafka topic.
pub const DEFAULT_KAFKA_PARTITIONS: i32 = 6;
/// Default size limit of the embedded log per topic: 8 GiB.
pub const DEFAULT_EMBEDDED_RETENTION_BYTES: u64 = 8 << 30;
/// Default size limit of the Kafka backend's disk spool: 1 GiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;
/// Smallest accepted `bus.kafka.spool.max_bytes`: 64 KiB.
pub const MIN_SPOOL_MAX_BYTES: u64 = 64 << 10;
/// Default time a publish waits for Kafka before its records go to the spool.
pub const DEFAULT_SPOOL_PRODUCE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `Retry-After` a full spool suggests to clients.
pub const DEFAULT_SPOOL_RETRY_AFTER: Duration = Duration::from_secs(10);

/// `bus:` in the config file. With `kafka:` set, Kafka is used; otherwise the embedded log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    #[serde(default)]
    pub embedded: EmbeddedConfig,
    /// Per-topic overrides, by topic name.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicOverride>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port` of one or more brokers.
    pub brokers: Vec<String>,
    #[serde(default = "default_client_id")]
    pub client_id: String,
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    #[serde(default = "default_replication")]
    pub replication_factor: i16,
    #[serde(default = "default_retention", with = "serde_duration")]
    pub retention: Duration,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Extra librdkafka properties, passed to producer and consumers as they are.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The disk spool that holds published records while the brokers are unavailable.
    #[serde(default)]
    pub spool: SpoolConfig,
}

/// `bus.kafka.spool:` — where [`crate::EventLog::publish`] puts records Kafka does not
/// acknowledge in time (see [`crate::spool`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// `false` turns the spool off: publishes fail while the brokers are unavailable.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The spool's folder; the binary sets it to `<data-dir>/spool` when empty
    /// ([`BusConfig::fill_defaults`]). Empty: no spool.
    #[serde(default)]
    pub dir: PathBuf,
    /// Size limit of the spooled records (keys, values, headers and a fixed per-record
    /// overhead); when reached, publishes are refused with [`crate::BusError::Backpressure`].
    #[serde(default = "default_spool_max_bytes")]
    pub max_bytes: u64,
    /// How long a publish waits for Kafka's acknowledgement before it spools the records.
    #[serde(default = "default_spool_produce_timeout", with = "serde_duration")]
    pub produce_timeout: Duration,
    /// What a refused publish tells the client to wait before retrying.
    #[serde(default = "default_spool_retry_after", with = "serde_duration")]
    pub retry_after: Duration,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            enabled: true,
            dir: PathBuf::new(),
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            produce_timeout: DEFAULT_SPOOL_PRODUCE_TIMEOUT,
            retry_after: DEFAULT_SPOOL_RETRY_AFTER,
        }
    }
}

impl SpoolConfig {
    /// Whether records are spooled at all: enabled and with a folder.
    pub fn active(&self) -> bool {
        self.enabled && !self.dir.as_os_str().is_empty()
    }
}

fn default_true() -> bool {
    true
}
fn default_spool_max_bytes() -> u64 {
    DEFAULT_SPOOL_MAX_BYTES
}
fn default_spool_produce_timeout() -> Duration {
    DEFAULT_SPOOL_PRODUCE_TIMEOUT
}
fn default_spool_retry_after() -> Duration {
    DEFAULT_SPOOL_RETRY_AFTER
}

fn default_client_id() -> String {
    "argus".into()
}
fn default_partitions() -> i32 {
    DEFAULT_KAFKA_PARTITIONS
}
fn default_replication() -> i16 {
    1
}
fn default_retention() -> Duration {
    DEFAULT_RETENTION
}
fn default_compression() -> String {
    "lz4".into()
}

/// How hard the embedded log syncs before acknowledging.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync on every commit: an acknowledged record survives a power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a process crash (kill -9), not a power loss.
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The database file's folder; the binary sets it to `<data-dir>/log` when empty.
    #[serde(default)]
    pub dir: PathBuf,
    #[serde(default = "default_retention", with = "serde_duration")]
    pub retention: Duration,
    #[serde(default = "default_embedded_bytes")]
    pub retention_bytes: u64,
    #[serde(default)]
    pub sync: SyncMode,
    #[serde(default = "default_embedded_partitions")]
    pub partitions: i32,
}

fn default_embedded_bytes() -> u64 {
    DEFAULT_EMBEDDED_RETENTION_BYTES
}
fn default_embedded_partitions() -> i32 {
    1
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            dir: PathBuf::new(),
            retention: DEFAULT_RETENTION,
            retention_bytes: DEFAULT_EMBEDDED_RETENTION_BYTES,
            sync: SyncMode::Full,
            partitions: 1,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicOverride {
    #[serde(default)]
    pub partitions: Option<i32>,
    #[serde(default, with = "opt_duration")]
    pub retention: Option<Duration>,
    #[serde(default)]
    pub retention_bytes: Option<u64>,
}

mod opt_duration {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&argus_schemas::duration::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| argus_schemas::duration::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A topic as the backend creates it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub retention: Duration,
    /// Per partition on Kafka (`retention.bytes`), per topic on the embedded log.
    pub retention_bytes: Option<u64>,
    /// Keep only the newest record per key.
    pub compacted: bool,
}

impl BusConfig {
    /// The embedded log in `dir`, every other setting at its default.
    pub fn embedded_at(dir: impl Into<PathBuf>) -> BusConfig {
        BusConfig {
            embedded: EmbeddedConfig {
                dir: dir.into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Fills the folders left empty with their places under `data_dir`: the embedded
    /// log in `<data_dir>/log`, the Kafka spool in `<data_dir>/spool` (when enabled).
    pub fn fill_defaults(&mut self, data_dir: &std::path::Path) {
        if self.embedded.dir.as_os_str().is_empty() {
            self.embedded.dir = data_dir.join("log");
        }
        if let Some(k) = &mut self.kafka
            && k.spool.enabled
            && k.spool.dir.as_os_str().is_empty()
        {
            k.spool.dir = data_dir.join("spool");
        }
    }

    /// Specs of every Argus topic, defaults with this config's overrides applied.
    pub fn topic_specs(&self) -> Vec<TopicSpec> {
        argus_schemas::topics::ALL
            .iter()
            .map(|t| self.topic_spec(t))
            .collect()
    }

    pub fn topic_spec(&self, name: &str) -> TopicSpec {
        let (partitions, retention, bytes) = match &self.kafka {
            Some(k) => (k.partitions, k.retention, None),
            None => (
                self.embedded.partitions,
                self.embedded.retention,
                Some(self.embedded.retention_bytes),
            ),
        };
        let o = self.topics.get(name).cloned().unwrap_or_default();
        TopicSpec {
            name: name.to_string(),
            partitions: o.partitions.unwrap_or(partitions),
            retention: o.retention.unwrap_or(retention),
            retention_bytes: o.retention_bytes.or(bytes),
            compacted: argus_schemas::topics::is_compacted(name),
        }
    }

    /// Checks values serde cannot: returns `(key path, message)` of the first problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(k) = &self.kafka {
            if k.brokers.is_empty() {
                return Err((
                    "bus.kafka.brokers".into(),
                    "at least one broker is needed".into(),
                ));
            }
            for (i, b) in k.brokers.iter().enumerate() {
                let ok = b
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !ok {
                    return Err((
                        format!("bus.kafka.brokers[{i}]"),
                        format!("{b:?} is not host:port"),
                    ));
                }
            }
            if k.partitions < 1 {
                return Err(("bus.kafka.partitions".into(), "must be at least 1".into()));
            }
            if k.replication_factor < 1 {
                return Err((
                    "bus.kafka.replication_factor".into(),
                    "must be at least 1".into(),
                ));
            }
            if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&k.compression.as_str()) {
                return Err((
                    "bus.kafka.compression".into(),
                    format!(
                        "{:?} is not one of none, gzip, snappy, lz4, zstd",
                        k.compression
                    ),
                ));
            }
            if k.spool.max_bytes < MIN_SPOOL_MAX_BYTES {
                return Err((
                    "bus.kafka.spool.max_bytes".into(),
                    format!("must be at least {MIN_SPOOL_MAX_BYTES}"),
                ));
            }
            if k.spool.produce_timeout < Duration::from_millis(100) {
                return Err((
                    "bus.kafka.spool.produce_timeout".into(),
                    "must be at least 100ms".into(),
                ));
            }
            if k.spool.retry_after < Duration::from_secs(1) {
                return Err((
                    "bus.kafka.spool.retry_after".into(),
                    "must be at least 1s".into(),
                ));
            }
        }
        if self.embedded.partitions < 1 {
            return Err((
                "bus.embedded.partitions".into(),
                "must be at least 1".into(),
            ));
        }
        for (t, o) in &self.topics {
            if !argus_schemas::topics::ALL.contains(&t.as_str()) {
                return Err((
                    format!("bus.topics.{t}"),
                    format!(
                        "unknown topic; known are {}",
                        argus_schemas::topics::ALL.join(", ")
                    ),
                ));
            }
            if o.partitions.is_some_and(|p| p < 1) {
                return Err((
                    format!("bus.topics.{t}.partitions"),
                    "must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }
}
