//! The configuration file (YAML), its defaults, and its validated form.
//!
//! Every section rejects unknown keys. An error names the file, line and column and
//! the key; the process exits non-zero. See README's "Configuration reference".

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use argus_bus::BusConfig;
use serde::{Deserialize, Serialize};

/// Default HTTP listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9099";
/// Default data directory of the embedded deployment.
pub const DEFAULT_DATA_DIR: &str = "data";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded log and store live.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// `host:port` of the HTTP listener (port 0 picks a free one).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub bus: BusConfig,
    /// Collectors that listen on their own sockets.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// The log store's ClickHouse server; without it, the embedded store is used.
    #[serde(default)]
    pub clickhouse: Option<ClickHouseConfig>,
    /// The query service: log writer, query limits, retention.
    #[serde(default)]
    pub query: argus_query::config::QueryConfig,
    /// The rule engine: rule files, evaluation, the metric window.
    #[serde(default)]
    pub rules: argus_rules::config::RulesConfig,
    /// Alertmanager-compatible silences, inhibition and alert API.
    #[serde(default)]
    pub alertmanager: argus_rules::am_api::AlertmanagerConfig,
    /// The notifier: the Alertmanager-format routing file, retries, instance name.
    #[serde(default)]
    pub notifier: argus_notifier::service::NotifierConfig,
}

/// `ingest:` in the config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// The syslog receiver (RFC 5424 / 3164 over UDP and TCP); off unless set.
    #[serde(default)]
    pub syslog: Option<argus_ingest::syslog::SyslogConfig>,
    /// File tailing (globs, rotation, checkpointed positions); off unless set.
    #[serde(default)]
    pub tail: Option<argus_ingest::tail::TailConfig>,
    /// The Prometheus scraper (`scrape_configs` as Prometheus has them); off unless set.
    #[serde(default)]
    pub scrape: Option<argus_ingest::scrape::ScrapeConfig>,
    /// node-problem-detector's monitors (kernel log, plugins, health checks); off unless set.
    #[serde(default)]
    pub node_problems: Option<argus_ingest::node_problems::NodeProblemsConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,argus_bus=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: default_level(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub use argus_query::store::clickhouse::ClickHouseConfig;

/// The validated, resolved configuration a process runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub log: LogConfig,
    pub bus: BusConfig,
    pub ingest: IngestConfig,
    pub clickhouse: Option<ClickHouseConfig>,
    pub query: argus_query::config::QueryConfig,
    pub rules: argus_rules::config::RulesConfig,
    pub alertmanager: argus_rules::am_api::AlertmanagerConfig,
    pub notifier: argus_notifier::service::NotifierConfig,
}

/// A configuration error, already phrased for people: `file:line:col: key: message`.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and parses a file; errors carry its name, line and column.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse_at(&text, &path.display().to_string(), path.parent())
    }

    #[cfg(test)]
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        Self::parse_at(text, name, None)
    }

    /// Parses a config whose relative file references (`notifier.config_file`) are
    /// relative to `base_dir`.
    fn parse_at(text: &str, name: &str, base_dir: Option<&Path>) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut cfg: Config = serde_yaml_ng::from_str(text).map_err(|e| {
            let msg = e.to_string();
            match e.location() {
                // serde_yaml appends " at line L column C"; keep the message, lead with the place.
                Some(l) => {
                    let msg = msg.split(" at line ").next().unwrap_or(&msg);
                    ConfigError(format!("{name}:{}:{}: {msg}", l.line(), l.column()))
                }
                None => ConfigError(format!("{name}: {msg}")),
            }
        })?;
        if let (Some(base), Some(f)) = (base_dir, cfg.notifier.config_file.as_mut())
            && f.is_relative()
        {
            *f = base.join(&*f);
        }
        cfg.validate(text, name)?;
        Ok(cfg)
    }

    fn validate(&self, text: &str, name: &str) -> Result<(), ConfigError> {
        let at = |key: &str, msg: &str| match locate(text, key) {
            Some(line) => ConfigError(format!("{name}:{line}: {key}: {msg}")),
            None => ConfigError(format!("{name}: {key}: {msg}")),
        };
        if let Err((key, msg)) = self.bus.validate() {
            return Err(at(&key, &msg));
        }
        if let Some(ch) = &self.clickhouse {
            if !(ch.url.starts_with("http://") || ch.url.starts_with("https://")) {
                return Err(at(
                    "clickhouse.url",
                    &format!("{:?} is not an http:// or https:// URL", ch.url),
                ));
            }
            if ch.database.is_empty()
                || !ch
                    .database
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(at(
                    "clickhouse.database",
                    "must be a plain identifier (letters, digits, _)",
                ));
            }
        }
        if let Some(np) = &self.ingest.node_problems
            && let Err(e) = np.validate()
        {
            return Err(at("ingest.node_problems", &e.to_string()));
        }
        if let Err((key, msg)) = self.query.validate() {
            return Err(at(&key, &msg));
        }
        if let Err((key, msg)) = self.rules.validate() {
            return Err(at(&key, &msg));
        }
        if let Err(e) = self.alertmanager.validate() {
            return Err(at("alertmanager", &e.to_string()));
        }
        match self.notifier.validate(None) {
            Err(e) => return Err(at("notifier", &e.to_string())),
            Ok(n)
                if !n.file.inhibit_rules.is_empty()
                    && !self.alertmanager.inhibit_rules.is_empty() =>
            {
                return Err(at(
                    "alertmanager.inhibit_rules",
                    "inhibit_rules are given both here and in the notifier's routing file; keep one",
                ));
            }
            Ok(_) => {}
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(at(
                "log.level",
                &format!("{:?} is not a log filter: {e}", self.log.level),
            ));
        }
        Ok(())
    }

    /// Applies command-line overrides and defaults.
    pub fn settings(mut self, data_dir: Option<PathBuf>, listen: Option<SocketAddr>) -> Settings {
        let data_dir = data_dir
            .or(self.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        self.bus.fill_defaults(&data_dir);
        if let Some(t) = &mut self.ingest.tail {
            t.fill_positions_file(&data_dir);
        }
        Settings {
            data_dir,
            listen: listen
                .or(self.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            log: self.log,
            bus: self.bus,
            ingest: self.ingest,
            clickhouse: self.clickhouse,
            query: self.query,
            rules: self.rules,
            alertmanager: self.alertmanager,
            notifier: self.notifier,
        }
    }
}

/// The 1-based line of a dotted key path (`bus.kafka.brokers[1]`) in block-style YAML.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let mut parts: Vec<(String, Option<usize>)> = Vec::new();
    for seg in path.split('.') {
        match seg.split_once('[') {
            Some((k, idx)) => parts.push((k.to_string(), idx.trim_end_matches(']').parse().ok())),
            None => parts.push((seg.to_string(), None)),
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut min_indent: i64 = -1;
    let mut found = None;
    for (key, idx) in parts {
        let mut hit = None;
        for (i, l) in lines.iter().enumerate().skip(from) {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let indent = (l.len() - t.len()) as i64;
            if indent <= min_indent && found.is_some() {
                break;
            }
            let t = t.trim_start_matches("- ");
            if t.strip_prefix(key.as_str())
                .is_some_and(|r| r.trim_start().starts_with(':'))
            {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        found = Some(i + 1);
        from = i + 1;
        min_indent = indent;
        if let Some(n) = idx {
            let mut count = 0;
            let mut item = None;
            for (j, l) in lines.iter().enumerate().skip(from) {
                let t = l.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                if ((l.len() - t.len()) as i64) < indent {
                    break;
                }
                if t.starts_with("- ") || t == "-" {
                    if count == n {
                        item = Some(j);
                        break;
                    }
                    count += 1;
                }
            }
            if let Some(j) = item {
                found = Some(j + 1);
                from = j;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_and_items() {
        let y = "listen: 1.2.3.4:5\nbus:\n  # comment\n  kafka:\n    brokers:\n      - a:1\n      - b\n  embedded:\n    partitions: 0\n";
        assert_eq!(locate(y, "bus"), Some(2));
        assert_eq!(locate(y, "bus.kafka.brokers"), Some(5));
        assert_eq!(locate(y, "bus.kafka.brokers[1]"), Some(7));
        assert_eq!(locate(y, "bus.embedded.partitions"), Some(9));
        assert_eq!(locate(y, "bus.nothing"), None);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = Config::parse(
            "listen: 127.0.0.1:1\nbus:\n  kafka:\n    brokerz: [a]\n",
            "c.yaml",
        )
        .unwrap_err();
        assert!(
            e.0.starts_with("c.yaml:4:5: bus.kafka: unknown field `brokerz`"),
            "{e}"
        );
        let e = Config::parse(
            "bus:\n  kafka:\n    brokers:\n      - a:1\n      - nohost\n",
            "c.yaml",
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            "c.yaml:5: bus.kafka.brokers[1]: \"nohost\" is not host:port"
        );
        let e = Config::parse("listen: nowhere\n", "c.yaml").unwrap_err();
        assert!(
            e.0.starts_with("c.yaml:1:9: listen: invalid socket address syntax"),
            "{e}"
        );
        let e = Config::parse("bus:\n  embedded:\n    retention: 5 days\n", "c.yaml").unwrap_err();
        assert!(
            e.0.starts_with("c.yaml:3:") && e.0.contains("\"5 days\" is not a duration"),
            "{e}"
        );
        let e = Config::parse("clickhouse:\n  url: localhost:8123\n", "c.yaml").unwrap_err();
        assert_eq!(
            e.0,
            "c.yaml:2: clickhouse.url: \"localhost:8123\" is not an http:// or https:// URL"
        );
    }

    #[test]
    fn empty_config_is_the_embedded_default() {
        let s = Config::parse("", "x").unwrap().settings(None, None);
        assert!(s.bus.kafka.is_none());
        assert_eq!(s.bus.embedded.dir, PathBuf::from("data/log"));
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
    }
}
