//! node-problem-detector's monitor configuration files, read as NPD writes them.
//!
//! Two shapes, both JSON:
//!
//! - the **system log monitor** (`plugin` `kmsg`, `filelog` or `journald`): `pluginConfig`
//!   (`source`, `timestamp`, `message`, `timestampFormat`), `logPath`, `lookback`, `delay`,
//!   `bufferSize` (default 10, as NPD), `source`, `metricsReporting` (default true),
//!   `skipList`, `conditions[]` and `rules[]` (`type`, `condition`, `reason`, `pattern`,
//!   `patternGeneratedMessageSuffix`);
//! - the **custom plugin monitor** (`plugin: custom`): `pluginConfig` (`invoke_interval`
//!   30s, `timeout` 5s, `max_output_length` 80, `concurrency` 3,
//!   `enable_message_change_based_condition_update` false, `skip_initial_status` false —
//!   NPD's defaults), `source`, `metricsReporting`, `conditions[]` and `rules[]` (`type`,
//!   `condition`, `reason`, `path`, `args`, `timeout`, `invoke_interval`).
//!
//! Fields this module does not know are tolerated (NPD's format grows), except a field
//! whose name is within two edits of, or differs only in case from, one it reads: that is
//! almost certainly a typo (`pattren`, `bufferSize` spelt `buffersize`) and is an error,
//! since NPD itself would silently ignore it. Every error names the file and the JSON
//! path: `kernel-monitor.json: rules[3].pattern: invalid regex: …`.
//!
//! Checks beyond NPD's own (NPD would start and misbehave): a permanent rule's condition
//! must be one of `conditions[]` (NPD checks this only for custom plugins), `reason` and
//! `source` must not be empty, `filelog` needs its three `pluginConfig` keys.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;
use serde_json::{Map, Value};

/// A configuration file that could not be used; the message names the file and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {path}{sep}{message}", sep = if path.is_empty() { "" } else { ": " })]
pub struct ConfigError {
    /// The file name as given to the parser (e.g. `kernel-monitor.json`).
    pub file: String,
    /// The JSON path of the offending field, e.g. `rules[3].pattern`; empty for the file.
    pub path: String,
    pub message: String,
}

/// Which log watcher a system log monitor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPlugin {
    /// `/dev/kmsg` records.
    Kmsg,
    /// A log file, lines split by `pluginConfig.timestamp` / `message`.
    Filelog,
    /// The systemd journal, filtered by `pluginConfig.source` (the syslog identifier).
    Journald,
}

impl LogPlugin {
    pub fn as_str(self) -> &'static str {
        match self {
            LogPlugin::Kmsg => "kmsg",
            LogPlugin::Filelog => "filelog",
            LogPlugin::Journald => "journald",
        }
    }
}

/// `temporary` (an event per occurrence) or `permanent` (sets a condition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleType {
    Temporary,
    Permanent,
}

/// A default (cleared) condition: NPD's `conditions[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultCondition {
    /// e.g. `KernelDeadlock`.
    pub condition_type: String,
    /// The reason while the condition is False, e.g. `KernelHasNoDeadlock`.
    pub reason: String,
    pub message: String,
}

/// One rule of a system log monitor, its pattern compiled as NPD compiles it.
#[derive(Debug, Clone)]
pub struct LogRule {
    pub rule_type: RuleType,
    /// The condition a permanent rule sets; empty for temporary rules.
    pub condition: String,
    pub reason: String,
    /// The pattern as written.
    pub pattern: String,
    /// `pattern` + `\z`: anchored at the end of the log window only, exactly as NPD does.
    pub(crate) regex: Regex,
    /// Appended to the message as `"{log}; {suffix}"` when not empty.
    pub message_suffix: String,
}

/// A system log monitor's configuration.
#[derive(Debug, Clone)]
pub struct LogMonitorConfig {
    pub plugin: LogPlugin,
    /// `pluginConfig`: NPD's string map (`source`, `timestamp`, `message`, `timestampFormat`).
    pub plugin_config: BTreeMap<String, String>,
    pub log_path: String,
    /// How far back to read at start; NPD's default is `0`.
    pub lookback: Duration,
    /// How long after boot to ignore logs.
    pub delay: Duration,
    /// Lines in the matching window; NPD's default is 10.
    pub buffer_size: usize,
    /// The monitor's name (`kernel-monitor`), reported as [`argus_schemas::NodeEvent::monitor`].
    pub source: String,
    pub metrics_reporting: bool,
    /// Lines containing any of these are not matched at all (NPD's `skipList`).
    pub skip_list: Vec<String>,
    pub conditions: Vec<DefaultCondition>,
    pub rules: Vec<LogRule>,
    /// `pluginConfig.message` compiled, for `filelog`.
    pub(crate) message_regex: Option<Regex>,
}

impl LogMonitorConfig {
    /// A reader of log-file lines for this monitor: a `filelog` configuration's
    /// `pluginConfig.message` regex, when present, extracts the message.
    pub fn line_source<R: std::io::BufRead>(
        &self,
        reader: R,
        clock: super::source::LineClock,
    ) -> super::source::LineSource<R> {
        let src = super::source::LineSource::new(reader, clock);
        match &self.message_regex {
            Some(re) => src.with_message_regex(re.clone()),
            None => src,
        }
    }
}

/// One rule of a custom plugin monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRule {
    pub rule_type: RuleType,
    pub condition: String,
    pub reason: String,
    pub path: String,
    pub args: Vec<String>,
    pub timeout: Option<Duration>,
    pub invoke_interval: Option<Duration>,
}

/// A custom plugin monitor's configuration, NPD's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPluginConfig {
    pub invoke_interval: Duration,
    pub timeout: Duration,
    pub max_output_length: usize,
    pub concurrency: usize,
    pub enable_message_change_based_condition_update: bool,
    pub skip_initial_status: bool,
    pub source: String,
    pub metrics_reporting: bool,
    pub conditions: Vec<DefaultCondition>,
    pub rules: Vec<PluginRule>,
}

impl CustomPluginConfig {
    /// The timeout a rule runs with: its own when shorter than the global one (NPD).
    pub fn rule_timeout(&self, rule: &PluginRule) -> Duration {
        match rule.timeout {
            Some(t) if t < self.timeout => t,
            _ => self.timeout,
        }
    }

    /// How often a rule runs.
    pub fn rule_interval(&self, rule: &PluginRule) -> Duration {
        rule.invoke_interval.unwrap_or(self.invoke_interval)
    }
}

/// Either kind of monitor configuration, by its `plugin`.
#[derive(Debug, Clone)]
pub enum MonitorConfig {
    Log(LogMonitorConfig),
    Custom(CustomPluginConfig),
}

/// Parses a configuration file of either kind, deciding by `plugin`.
pub fn parse_monitor_config(file: &str, json: &str) -> Result<MonitorConfig, ConfigError> {
    let map = root_object(file, json)?;
    match map.get("plugin") {
        Some(Value::String(p)) if p == "custom" => {
            parse_custom_value(file, root(&map)).map(MonitorConfig::Custom)
        }
        _ => parse_log_value(file, root(&map)).map(MonitorConfig::Log),
    }
}

/// Parses a system log monitor configuration (`kernel-monitor.json` and the like).
pub fn parse_log_monitor_config(file: &str, json: &str) -> Result<LogMonitorConfig, ConfigError> {
    parse_log_value(file, root(&root_object(file, json)?))
}

/// Parses a custom plugin monitor configuration.
pub fn parse_custom_plugin_config(
    file: &str,
    json: &str,
) -> Result<CustomPluginConfig, ConfigError> {
    parse_custom_value(file, root(&root_object(file, json)?))
}

const NPD_DEFAULT_BUFFER_SIZE: usize = 10;

fn parse_log_value(file: &str, root: Obj<'_>) -> Result<LogMonitorConfig, ConfigError> {
    let e = Err_ { file };
    root.check_keys(
        &e,
        &[
            "plugin",
            "pluginConfig",
            "skipList",
            "logPath",
            "lookback",
            "delay",
            "bufferSize",
            "source",
            "conditions",
            "rules",
            "metricsReporting",
        ],
    )?;
    let plugin = match root.req_str(&e, "plugin")? {
        "kmsg" => LogPlugin::Kmsg,
        "filelog" => LogPlugin::Filelog,
        "journald" => LogPlugin::Journald,
        other => {
            return Err(e.at(
                "plugin",
                format!("unknown log plugin {other:?} (expected kmsg, filelog or journald; custom plugin monitors use \"custom\")"),
            ));
        }
    };
    let mut plugin_config = BTreeMap::new();
    if let Some(pc) = root.opt_obj(&e, "pluginConfig")? {
        pc.check_keys(&e, &["source", "timestamp", "message", "timestampFormat"])?;
        for (k, v) in pc.map {
            match v {
                Value::String(s) => {
                    plugin_config.insert(k.clone(), s.clone());
                }
                _ => return Err(e.at(&pc.child(k), "must be a string")),
            }
        }
    }
    let mut message_regex = None;
    if plugin == LogPlugin::Filelog {
        for key in ["timestamp", "message", "timestampFormat"] {
            if plugin_config.get(key).is_none_or(|s| s.is_empty()) {
                return Err(e.at(
                    &format!("pluginConfig.{key}"),
                    "required by the filelog plugin",
                ));
            }
        }
        for key in ["timestamp", "message"] {
            let expr = plugin_config.get(key).map(String::as_str).unwrap_or("");
            let re = Regex::new(expr).map_err(|err| {
                e.at(
                    &format!("pluginConfig.{key}"),
                    format!("invalid regex: {}", one_line(&err.to_string())),
                )
            })?;
            if key == "message" {
                message_regex = Some(re);
            }
        }
    }
    let log_path = root.opt_str(&e, "logPath")?.unwrap_or("").to_string();
    let lookback = match root.opt_str(&e, "lookback")? {
        None | Some("") => Duration::ZERO,
        Some(s) => parse_go_duration(s).map_err(|m| e.at("lookback", m))?,
    };
    let delay = match root.opt_str(&e, "delay")? {
        None | Some("") => Duration::ZERO,
        Some(s) => parse_go_duration(s).map_err(|m| e.at("delay", m))?,
    };
    let buffer_size = match root.opt_u64(&e, "bufferSize")? {
        None | Some(0) => NPD_DEFAULT_BUFFER_SIZE,
        Some(n) if n > 10_000 => {
            return Err(e.at("bufferSize", format!("{n} lines is more than 10000")));
        }
        Some(n) => n as usize,
    };
    let source = root.req_nonempty_str(&e, "source")?.to_string();
    let metrics_reporting = root.opt_bool(&e, "metricsReporting")?.unwrap_or(true);
    let skip_list = root.opt_str_array(&e, "skipList")?;
    let conditions = parse_conditions(&e, &root)?;

    let mut rules = Vec::new();
    for r in root.opt_array_of_objects(&e, "rules")? {
        r.check_keys(
            &e,
            &[
                "type",
                "condition",
                "reason",
                "pattern",
                "patternGeneratedMessageSuffix",
            ],
        )?;
        let (rule_type, condition, reason) = parse_rule_head(&e, &r, &conditions)?;
        let pattern = r.req_str(&e, "pattern")?.to_string();
        let regex = compile_npd_pattern(&pattern)
            .map_err(|m| e.at(&r.child("pattern"), format!("invalid regex: {m}")))?;
        let message_suffix = r
            .opt_str(&e, "patternGeneratedMessageSuffix")?
            .unwrap_or("")
            .to_string();
        rules.push(LogRule {
            rule_type,
            condition,
            reason,
            pattern,
            regex,
            message_suffix,
        });
    }
    Ok(LogMonitorConfig {
        plugin,
        plugin_config,
        log_path,
        lookback,
        delay,
        buffer_size,
        source,
        metrics_reporting,
        skip_list,
        conditions,
        rules,
        message_regex,
    })
}

fn parse_custom_value(file: &str, root: Obj<'_>) -> Result<CustomPluginConfig, ConfigError> {
    let e = Err_ { file };
    root.check_keys(
        &e,
        &[
            "plugin",
            "pluginConfig",
            "source",
            "conditions",
            "rules",
            "metricsReporting",
        ],
    )?;
    match root.req_str(&e, "plugin")? {
        "custom" => {}
        other => {
            return Err(e.at(
                "plugin",
                format!("{other:?} is not a custom plugin monitor (expected \"custom\")"),
            ));
        }
    }
    let mut cfg = CustomPluginConfig {
        invoke_interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        max_output_length: 80,
        concurrency: 3,
        enable_message_change_based_condition_update: false,
        skip_initial_status: false,
        source: String::new(),
        metrics_reporting: true,
        conditions: Vec::new(),
        rules: Vec::new(),
    };
    if let Some(pc) = root.opt_obj(&e, "pluginConfig")? {
        pc.check_keys(
            &e,
            &[
                "invoke_interval",
                "timeout",
                "max_output_length",
                "concurrency",
                "enable_message_change_based_condition_update",
                "skip_initial_status",
            ],
        )?;
        if let Some(s) = pc.opt_str(&e, "invoke_interval")? {
            cfg.invoke_interval =
                parse_go_duration(s).map_err(|m| e.at(&pc.child("invoke_interval"), m))?;
        }
        if let Some(s) = pc.opt_str(&e, "timeout")? {
            cfg.timeout = parse_go_duration(s).map_err(|m| e.at(&pc.child("timeout"), m))?;
        }
        if let Some(n) = pc.opt_u64(&e, "max_output_length")? {
            cfg.max_output_length = n as usize;
        }
        if let Some(n) = pc.opt_u64(&e, "concurrency")? {
            if n == 0 {
                return Err(e.at(&pc.child("concurrency"), "must be at least 1"));
            }
            cfg.concurrency = n as usize;
        }
        if let Some(b) = pc.opt_bool(&e, "enable_message_change_based_condition_update")? {
            cfg.enable_message_change_based_condition_update = b;
        }
        if let Some(b) = pc.opt_bool(&e, "skip_initial_status")? {
            cfg.skip_initial_status = b;
        }
    }
    if cfg.invoke_interval.is_zero() {
        return Err(e.at("pluginConfig.invoke_interval", "must be greater than zero"));
    }
    cfg.source = root.req_nonempty_str(&e, "source")?.to_string();
    cfg.metrics_reporting = root.opt_bool(&e, "metricsReporting")?.unwrap_or(true);
    cfg.conditions = parse_conditions(&e, &root)?;
    for r in root.opt_array_of_objects(&e, "rules")? {
        r.check_keys(
            &e,
            &[
                "type",
                "condition",
                "reason",
                "path",
                "args",
                "timeout",
                "invoke_interval",
            ],
        )?;
        let (rule_type, condition, reason) = parse_rule_head(&e, &r, &cfg.conditions)?;
        let path = r.req_nonempty_str(&e, "path")?.to_string();
        let args = r.opt_str_array(&e, "args")?;
        let timeout = match r.opt_str(&e, "timeout")? {
            Some(s) => {
                let t = parse_go_duration(s).map_err(|m| e.at(&r.child("timeout"), m))?;
                if t > cfg.timeout {
                    return Err(e.at(
                        &r.child("timeout"),
                        format!("{s} is longer than the global timeout {:?}", cfg.timeout),
                    ));
                }
                Some(t)
            }
            None => None,
        };
        let invoke_interval = match r.opt_str(&e, "invoke_interval")? {
            Some(s) => {
                let t = parse_go_duration(s).map_err(|m| e.at(&r.child("invoke_interval"), m))?;
                if t.is_zero() {
                    return Err(e.at(&r.child("invoke_interval"), "must be greater than zero"));
                }
                Some(t)
            }
            None => None,
        };
        cfg.rules.push(PluginRule {
            rule_type,
            condition,
            reason,
            path,
            args,
            timeout,
            invoke_interval,
        });
    }
    Ok(cfg)
}

fn parse_conditions(e: &Err_<'_>, root: &Obj<'_>) -> Result<Vec<DefaultCondition>, ConfigError> {
    let mut out: Vec<DefaultCondition> = Vec::new();
    for c in root.opt_array_of_objects(e, "conditions")? {
        c.check_keys(e, &["type", "reason", "message"])?;
        let condition_type = c.req_nonempty_str(e, "type")?.to_string();
        if out.iter().any(|d| d.condition_type == condition_type) {
            return Err(e.at(
                &c.child("type"),
                format!("condition {condition_type:?} is declared twice"),
            ));
        }
        out.push(DefaultCondition {
            condition_type,
            reason: c.req_nonempty_str(e, "reason")?.to_string(),
            message: c.opt_str(e, "message")?.unwrap_or("").to_string(),
        });
    }
    Ok(out)
}

fn parse_rule_head(
    e: &Err_<'_>,
    r: &Obj<'_>,
    conditions: &[DefaultCondition],
) -> Result<(RuleType, String, String), ConfigError> {
    let rule_type = match r.req_str(e, "type")? {
        "temporary" => RuleType::Temporary,
        "permanent" => RuleType::Permanent,
        other => {
            return Err(e.at(
                &r.child("type"),
                format!("{other:?} is neither \"temporary\" nor \"permanent\""),
            ));
        }
    };
    let condition = r.opt_str(e, "condition")?.unwrap_or("").to_string();
    if rule_type == RuleType::Permanent {
        if condition.is_empty() {
            return Err(e.at(&r.child("condition"), "a permanent rule needs a condition"));
        }
        if !conditions.iter().any(|c| c.condition_type == condition) {
            return Err(e.at(
                &r.child("condition"),
                format!("{condition:?} is not one of conditions[] (a permanent rule sets a declared condition)"),
            ));
        }
    }
    let reason = r.req_nonempty_str(e, "reason")?.to_string();
    Ok((rule_type, condition, reason))
}

/// Compiles a rule pattern exactly as NPD does: the expression followed by `\z`, so it
/// must match up to the end of the log window but may start anywhere in it. Like NPD
/// (which appends `\z` without grouping), a top-level alternation `a|b` anchors only its
/// last branch.
///
/// Go's RE2 and Rust's `regex` share syntax and linear-time semantics; one difference is
/// that `\d`, `\w`, `\s` and `\b` are Unicode-aware here and ASCII in Go, which changes
/// nothing for kernel messages.
pub fn compile_npd_pattern(expr: &str) -> Result<Regex, String> {
    Regex::new(expr).map_err(|e| one_line(&e.to_string()))?;
    Regex::new(&format!("{expr}\\z")).map_err(|e| one_line(&e.to_string()))
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses a Go `time.Duration` string: `0`, or a sequence of decimal numbers each with a
/// unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `5m`, `1h30m`, `1.5s`. Negative
/// durations are refused.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 30s, 5m, 1h30m)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    let mut chars = rest;
    while !chars.is_empty() {
        let num_len = chars
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(chars.len());
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = chars[..num_len].parse().map_err(|_| bad())?;
        chars = &chars[num_len..];
        let unit_len = chars
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(chars.len());
        let nanos_per = match &chars[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        chars = &chars[unit_len..];
        total += n * nanos_per;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

// ---- a small JSON walker that keeps the path for error messages ----

struct Err_<'a> {
    file: &'a str,
}

impl Err_<'_> {
    fn at(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }
}

struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

fn root_object(file: &str, json: &str) -> Result<Map<String, Value>, ConfigError> {
    let v: Value = serde_json::from_str(json).map_err(|err| ConfigError {
        file: file.to_string(),
        path: String::new(),
        message: format!("not valid JSON: {err}"),
    })?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ConfigError {
            file: file.to_string(),
            path: String::new(),
            message: "the configuration must be a JSON object".into(),
        }),
    }
}

fn root(map: &Map<String, Value>) -> Obj<'_> {
    Obj {
        path: String::new(),
        map,
    }
}

impl<'a> Obj<'a> {
    fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Unknown keys are tolerated, but one that looks like a misspelt known key is refused.
    fn check_keys(&self, e: &Err_<'_>, known: &[&str]) -> Result<(), ConfigError> {
        for key in self.map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            if let Some(k) = known.iter().find(|k| looks_like(key, k)) {
                return Err(e.at(
                    &self.child(key),
                    format!("unknown field {key:?}; did you mean {k:?}?"),
                ));
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_str(&self, e: &Err_<'_>, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(e.at(&self.child(key), "must be a string")),
        }
    }

    fn req_str(&self, e: &Err_<'_>, key: &str) -> Result<&'a str, ConfigError> {
        self.opt_str(e, key)?
            .ok_or_else(|| e.at(&self.child(key), "missing"))
    }

    fn req_nonempty_str(&self, e: &Err_<'_>, key: &str) -> Result<&'a str, ConfigError> {
        let s = self.req_str(e, key)?;
        if s.is_empty() {
            return Err(e.at(&self.child(key), "empty"));
        }
        Ok(s)
    }

    fn opt_u64(&self, e: &Err_<'_>, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| e.at(&self.child(key), "must be a non-negative integer")),
            Some(_) => Err(e.at(&self.child(key), "must be a number")),
        }
    }

    fn opt_bool(&self, e: &Err_<'_>, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(e.at(&self.child(key), "must be true or false")),
        }
    }

    fn opt_obj(&self, e: &Err_<'_>, key: &str) -> Result<Option<Obj<'a>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj {
                path: self.child(key),
                map: m,
            })),
            Some(_) => Err(e.at(&self.child(key), "must be an object")),
        }
    }

    fn opt_array_of_objects(&self, e: &Err_<'_>, key: &str) -> Result<Vec<Obj<'a>>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let path = format!("{}[{i}]", self.child(key));
                    match v {
                        Value::Object(m) => Ok(Obj { path, map: m }),
                        _ => Err(e.at(&path, "must be an object")),
                    }
                })
                .collect(),
            Some(_) => Err(e.at(&self.child(key), "must be an array")),
        }
    }

    fn opt_str_array(&self, e: &Err_<'_>, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(e.at(&format!("{}[{i}]", self.child(key)), "must be a string")),
                })
                .collect(),
            Some(_) => Err(e.at(&self.child(key), "must be an array of strings")),
        }
    }
}

/// True when `got` is probably a misspelling of `want`: equal ignoring case and `_`, or
/// within two edits (one for names of four letters or fewer).
fn looks_like(got: &str, want: &str) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    if norm(got) == norm(want) {
        return true;
    }
    let limit = if want.len() <= 4 { 1 } else { 2 };
    edit_distance(&got.to_ascii_lowercase(), &want.to_ascii_lowercase()) <= limit
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("-5s").is_err());
        assert!(parse_go_duration("5 minutes").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn typo_detection() {
        assert!(looks_like("pattren", "pattern"));
        assert!(looks_like("buffersize", "bufferSize"));
        assert!(looks_like("log_path", "logPath"));
        assert!(!looks_like("skipList", "source"));
        assert!(!looks_like("newFieldFromNpd", "pattern"));
        assert!(!looks_like("tipe", "delay"));
    }
}
