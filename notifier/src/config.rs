//! The notifier's configuration: Alertmanager 0.25's alertmanager.yml, so an existing
//! file can be pointed at as it is.
//!
//! This module owns [`AlertmanagerFile`] (the whole document: `global`, `route`,
//! `receivers`, `inhibit_rules`, `time_intervals`, `mute_time_intervals`,
//! `templates`), [`GlobalConfig`], [`RouteConfig`] and [`ReceiverConfig`] (whose
//! channel entries are defined by [`crate::channels`]), their parsing
//! ([`AlertmanagerFile::parse`], [`AlertmanagerFile::load`]) and Alertmanager's
//! checks ([`AlertmanagerFile::validate`], with Alertmanager's texts, prefixed with
//! where the problem is: `route.routes[1]`, `receivers[2] ("ops")`, `global.…`).
//!
//! Alertmanager settings for integrations Argus does not have (Slack, PagerDuty,
//! OpsGenie, WeChat, VictorOps, Telegram, Webex, Discord, Pushover, SNS) are accepted
//! so a real file loads, and ignored with a warning. Argus adds `global.wecom_api_url`
//! and the receivers' `sms_configs` and `wecom_configs`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use argus_rules::inhibit::{InhibitRule, InhibitRuleConfig};
use argus_rules::silences::{LabelMatcher, MatchType, is_valid_label_name};
use argus_schemas::duration::{format_duration, parse_duration};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::NotifierError;
use crate::channels::http::HttpClientConfig;
use crate::channels::{
    email::EmailConfig, sms::SmsConfig, webhook::WebhookConfig, wecom::WecomConfig,
};
use crate::timeinterval::NamedTimeInterval;

/// `global.resolve_timeout` when not given (Alertmanager's default).
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// `global.smtp_hello` when not given.
pub const DEFAULT_SMTP_HELLO: &str = "localhost";
/// `global.smtp_require_tls` when not given.
pub const DEFAULT_SMTP_REQUIRE_TLS: bool = true;
/// `global.wecom_api_url` when not given: WeCom's group-robot webhook.
pub const DEFAULT_WECOM_API_URL: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send";

// ---------------------------------------------------------------------------------------
// Serde helpers (Go's yaml.v2 leniency: null is the zero value, scalars read as text)
// ---------------------------------------------------------------------------------------

/// A field written as `key:` (null) takes its default, as in Go.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads any YAML scalar as its text (`code: 500`, `smtp_auth_password: 1234`);
/// null is the empty string.
struct ScalarText;

impl<'de> Visitor<'de> for ScalarText {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(ScalarText)
    }
}

/// A string that may be written as any scalar.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarText).map(Text)
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Text::deserialize(d)?.0)
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
}

fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v: Option<Vec<Text>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|t| t.0).collect())
}

fn opt_text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v: Option<Vec<Text>> = Option::deserialize(d)?;
    Ok(v.map(|l| l.into_iter().map(|t| t.0).collect()))
}

fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let v: Option<BTreeMap<Text, Text>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.0, v.0))
        .collect())
}

/// A duration in Prometheus' notation, parsed while the value is read (so errors
/// carry the value's line); `0` may be written as a number.
struct PromDuration(Duration);

struct PromDurationVisitor;

impl Visitor<'_> for PromDurationVisitor {
    type Value = PromDuration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as 30s, 5m or 1h30m")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PromDuration, E> {
        parse_duration(v).map(PromDuration).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PromDuration, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PromDuration, E> {
        self.visit_str(&v.to_string())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PromDurationVisitor)
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Ok(PromDuration::deserialize(d)?.0)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<PromDuration>::deserialize(d)?.map(|p| p.0))
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------------------------------
// global
// ---------------------------------------------------------------------------------------

/// `global:`: defaults for the channels, and the resolve timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalConfig {
    /// An alert posted without an end is resolved this long after its last update.
    #[serde(deserialize_with = "duration", serialize_with = "ser_duration")]
    pub resolve_timeout: Duration,
    /// The HTTP client settings of every HTTP channel without its own `http_config`.
    #[serde(deserialize_with = "null_default")]
    pub http_config: HttpClientConfig,
    #[serde(deserialize_with = "text")]
    pub smtp_from: String,
    #[serde(deserialize_with = "text")]
    pub smtp_hello: String,
    /// `host:port`; empty when not set.
    #[serde(deserialize_with = "text")]
    pub smtp_smarthost: String,
    #[serde(deserialize_with = "text")]
    pub smtp_auth_username: String,
    #[serde(deserialize_with = "text")]
    pub smtp_auth_password: String,
    #[serde(deserialize_with = "text")]
    pub smtp_auth_password_file: String,
    #[serde(deserialize_with = "text")]
    pub smtp_auth_identity: String,
    #[serde(deserialize_with = "text")]
    pub smtp_auth_secret: String,
    pub smtp_require_tls: bool,
    /// Argus: the WeCom group-robot endpoint `wecom_configs` post to by default.
    #[serde(deserialize_with = "text")]
    pub wecom_api_url: String,

    // Alertmanager's settings for integrations Argus does not have: accepted, checked
    // as Alertmanager checks them, ignored with a warning.
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub slack_api_url: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub slack_api_url_file: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub pagerduty_url: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_url: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key_file: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub wechat_api_url: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub wechat_api_secret: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub wechat_api_corp_id: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub victorops_api_url: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub victorops_api_key: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub victorops_api_key_file: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub telegram_api_url: Option<String>,
    #[serde(deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub webex_api_url: Option<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            http_config: HttpClientConfig::default(),
            smtp_from: String::new(),
            smtp_hello: DEFAULT_SMTP_HELLO.to_string(),
            smtp_smarthost: String::new(),
            smtp_auth_username: String::new(),
            smtp_auth_password: String::new(),
            smtp_auth_password_file: String::new(),
            smtp_auth_identity: String::new(),
            smtp_auth_secret: String::new(),
            smtp_require_tls: DEFAULT_SMTP_REQUIRE_TLS,
            wecom_api_url: DEFAULT_WECOM_API_URL.to_string(),
            slack_api_url: None,
            slack_api_url_file: None,
            pagerduty_url: None,
            opsgenie_api_url: None,
            opsgenie_api_key: None,
            opsgenie_api_key_file: None,
            wechat_api_url: None,
            wechat_api_secret: None,
            wechat_api_corp_id: None,
            victorops_api_url: None,
            victorops_api_key: None,
            victorops_api_key_file: None,
            telegram_api_url: None,
            webex_api_url: None,
        }
    }
}

impl GlobalConfig {
    /// The Alertmanager settings that are set and that Argus ignores.
    pub fn ignored_settings(&self) -> Vec<&'static str> {
        [
            ("slack_api_url", &self.slack_api_url),
            ("slack_api_url_file", &self.slack_api_url_file),
            ("pagerduty_url", &self.pagerduty_url),
            ("opsgenie_api_url", &self.opsgenie_api_url),
            ("opsgenie_api_key", &self.opsgenie_api_key),
            ("opsgenie_api_key_file", &self.opsgenie_api_key_file),
            ("wechat_api_url", &self.wechat_api_url),
            ("wechat_api_secret", &self.wechat_api_secret),
            ("wechat_api_corp_id", &self.wechat_api_corp_id),
            ("victorops_api_url", &self.victorops_api_url),
            ("victorops_api_key", &self.victorops_api_key),
            ("victorops_api_key_file", &self.victorops_api_key_file),
            ("telegram_api_url", &self.telegram_api_url),
            ("webex_api_url", &self.webex_api_url),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect()
    }

    fn check(&self) -> Result<(), String> {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        let both =
            |a: &str, b: &str| format!("global: at most one of {a} & {b} must be configured");
        if set(&self.slack_api_url) && set(&self.slack_api_url_file) {
            return Err(both("slack_api_url", "slack_api_url_file"));
        }
        if set(&self.opsgenie_api_key) && set(&self.opsgenie_api_key_file) {
            return Err(both("opsgenie_api_key", "opsgenie_api_key_file"));
        }
        if set(&self.victorops_api_key) && set(&self.victorops_api_key_file) {
            return Err(both("victorops_api_key", "victorops_api_key_file"));
        }
        if !self.smtp_auth_password.is_empty() && !self.smtp_auth_password_file.is_empty() {
            return Err(both("smtp_auth_password", "smtp_auth_password_file"));
        }
        if !self.smtp_smarthost.is_empty() {
            check_host_port(&self.smtp_smarthost)
                .map_err(|e| format!("global.smtp_smarthost: {e}"))?;
        }
        let urls = [
            ("wecom_api_url", Some(&self.wecom_api_url)),
            ("slack_api_url", self.slack_api_url.as_ref()),
            ("pagerduty_url", self.pagerduty_url.as_ref()),
            ("opsgenie_api_url", self.opsgenie_api_url.as_ref()),
            ("wechat_api_url", self.wechat_api_url.as_ref()),
            ("victorops_api_url", self.victorops_api_url.as_ref()),
            ("telegram_api_url", self.telegram_api_url.as_ref()),
            ("webex_api_url", self.webex_api_url.as_ref()),
        ];
        for (field, url) in urls {
            if let Some(u) = url {
                check_url(u).map_err(|e| format!("global.{field}: {e}"))?;
            }
        }
        Ok(())
    }
}

/// Alertmanager's URL check: an `http` or `https` scheme and a host.
pub fn check_url(s: &str) -> Result<(), String> {
    let (scheme, rest) = match s.split_once(':') {
        Some((sc, rest))
            if !sc.is_empty()
                && sc.starts_with(|c: char| c.is_ascii_alphabetic())
                && sc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            (sc.to_ascii_lowercase(), rest)
        }
        _ => (String::new(), s),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme:?} for URL"));
    }
    let host = rest
        .strip_prefix("//")
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or(""))
        .map(|authority| authority.rsplit_once('@').map_or(authority, |(_, h)| h))
        .unwrap_or("");
    if host.is_empty() {
        return Err("missing host for URL".into());
    }
    Ok(())
}

/// Go's `net.SplitHostPort` plus Alertmanager's non-empty port.
pub fn check_host_port(s: &str) -> Result<(), String> {
    let port = if let Some(rest) = s.strip_prefix('[') {
        let (_, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {s}: missing ']' in address"))?;
        after
            .strip_prefix(':')
            .ok_or_else(|| format!("address {s}: missing port in address"))?
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("address {s}: missing port in address"))?;
        if host.contains(':') {
            return Err(format!("address {s}: too many colons in address"));
        }
        port
    };
    if port.is_empty() {
        return Err(format!("address {s:?}: port cannot be empty"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// route
// ---------------------------------------------------------------------------------------

/// One node of `route:` as written. [`crate::route::RouteTree`] compiles it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Empty: the parent's receiver.
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "String::is_empty"
    )]
    pub receiver: String,
    /// Labels to group by; `...` groups by every label. When absent, or when it names
    /// no label, the parent's labels (see [`crate::route`]).
    #[serde(
        default,
        deserialize_with = "opt_text_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_by: Option<Vec<String>>,
    /// Whether the following siblings are tried after this route matched.
    #[serde(default)]
    pub r#continue: bool,
    /// Deprecated: label values the alert must have.
    #[serde(
        default,
        deserialize_with = "text_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub r#match: BTreeMap<String, String>,
    /// Deprecated: regexes (anchored) the alert's labels must match.
    #[serde(
        default,
        deserialize_with = "text_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_re: BTreeMap<String, String>,
    /// Matchers in Alertmanager's syntax, each line one or more (`a="b", c=~"d|e"`).
    #[serde(
        default,
        deserialize_with = "text_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub matchers: Vec<String>,
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_wait: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_interval: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub repeat_interval: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "text_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mute_time_intervals: Vec<String>,
    #[serde(
        default,
        deserialize_with = "text_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub active_time_intervals: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub routes: Vec<RouteConfig>,
}

/// `group_by` as Alertmanager reads it: the named labels and whether `...` was given.
pub(crate) fn split_group_by(group_by: &[String]) -> (Vec<String>, bool) {
    let all = group_by.iter().any(|l| l == "...");
    let names = group_by.iter().filter(|l| *l != "...").cloned().collect();
    (names, all)
}

impl RouteConfig {
    /// The node's matchers, Alertmanager's way: `match` as `=`, `match_re` as `=~`
    /// with the anchored pattern `^(?:re)$` as its value (so the route key shows it),
    /// then `matchers`; sorted by name, value and type.
    pub fn compiled_matchers(&self) -> Result<Vec<LabelMatcher>, String> {
        let mut out = Vec::new();
        for (n, v) in &self.r#match {
            if !is_valid_label_name(n) {
                return Err(format!("match: invalid label name {n:?}"));
            }
            out.push(LabelMatcher::new(MatchType::Equal, n, v)?);
        }
        for (n, v) in &self.match_re {
            if !is_valid_label_name(n) {
                return Err(format!("match_re: invalid label name {n:?}"));
            }
            let anchored = format!("^(?:{v})$");
            out.push(
                LabelMatcher::new(MatchType::Regex, n, anchored)
                    .map_err(|e| format!("match_re: {n}: {e}"))?,
            );
        }
        for line in &self.matchers {
            out.extend(LabelMatcher::parse_list(line).map_err(|e| format!("matchers: {e}"))?);
        }
        out.sort_by(|a, b| (&a.name, &a.value, a.kind).cmp(&(&b.name, &b.value, b.kind)));
        Ok(out)
    }

    /// The checks Alertmanager makes when it reads one route node.
    fn check_node(&self) -> Result<(), String> {
        self.compiled_matchers()?;
        let (names, all) = split_group_by(self.group_by.as_deref().unwrap_or_default());
        for n in &names {
            if !is_valid_label_name(n) {
                return Err(format!("invalid label name {n:?} in group_by list"));
            }
        }
        if all && !names.is_empty() {
            return Err(
                "cannot have wildcard group_by (`...`) and other labels at the same time".into(),
            );
        }
        let mut seen = HashSet::new();
        for n in &names {
            if !seen.insert(n) {
                return Err(format!("duplicated label {n:?} in group_by"));
            }
        }
        if self.group_interval == Some(Duration::ZERO) {
            return Err("group_interval cannot be zero".into());
        }
        if self.repeat_interval == Some(Duration::ZERO) {
            return Err("repeat_interval cannot be zero".into());
        }
        Ok(())
    }

    /// Visits this node and its descendants depth-first with their paths
    /// (`route`, `route.routes[0]`, …).
    pub fn walk<'a>(&'a self, path: &str, visit: &mut dyn FnMut(&str, &'a RouteConfig)) {
        visit(path, self);
        for (i, r) in self.routes.iter().enumerate() {
            r.walk(&format!("{path}.routes[{i}]"), visit);
        }
    }

    fn try_walk(
        &self,
        path: &str,
        check: &mut dyn FnMut(&str, &RouteConfig) -> Result<(), String>,
    ) -> Result<(), String> {
        check(path, self)?;
        for (i, r) in self.routes.iter().enumerate() {
            r.try_walk(&format!("{path}.routes[{i}]"), check)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// receivers
// ---------------------------------------------------------------------------------------

/// One entry of `receivers:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub email_configs: Vec<EmailConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub sms_configs: Vec<SmsConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub wecom_configs: Vec<WecomConfig>,

    // Alertmanager's integrations that Argus does not have: accepted, ignored with a
    // warning.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub discord_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pagerduty_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub slack_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub opsgenie_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub wechat_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pushover_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub victorops_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sns_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub telegram_configs: Vec<serde_yaml_ng::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub webex_configs: Vec<serde_yaml_ng::Value>,
}

impl ReceiverConfig {
    /// The Alertmanager integrations this receiver configures that Argus ignores, with
    /// how many entries each has.
    pub fn ignored_integrations(&self) -> Vec<(&'static str, usize)> {
        [
            ("discord_configs", self.discord_configs.len()),
            ("pagerduty_configs", self.pagerduty_configs.len()),
            ("slack_configs", self.slack_configs.len()),
            ("opsgenie_configs", self.opsgenie_configs.len()),
            ("wechat_configs", self.wechat_configs.len()),
            ("pushover_configs", self.pushover_configs.len()),
            ("victorops_configs", self.victorops_configs.len()),
            ("sns_configs", self.sns_configs.len()),
            ("telegram_configs", self.telegram_configs.len()),
            ("webex_configs", self.webex_configs.len()),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// Whether a channel entry leaves the Alertmanager setting `key` unset: absent from
/// its serialized form, null or empty. (The entry types belong to the channels; this
/// reads them by Alertmanager's field names only.)
fn leaves_unset<T: Serialize>(entry: &T, key: &str) -> bool {
    match serde_json::to_value(entry) {
        Ok(serde_json::Value::Object(map)) => map
            .get(key)
            .is_none_or(|v| v.is_null() || v.as_str() == Some("")),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------------

/// An alertmanager.yml document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerFile {
    #[serde(default, deserialize_with = "null_default")]
    pub global: GlobalConfig,
    /// Required ([`AlertmanagerFile::validate`] rejects a file without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub time_intervals: Vec<NamedTimeInterval>,
    /// Deprecated form of `time_intervals` (same entries).
    #[serde(default, deserialize_with = "null_default")]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    /// Template file globs; [`AlertmanagerFile::load`] makes relative ones relative to
    /// the file's directory.
    #[serde(default, deserialize_with = "text_list")]
    pub templates: Vec<String>,
}

impl AlertmanagerFile {
    /// Parses and validates a document; `origin` (a file name) starts every error.
    /// Settings Argus ignores are logged as warnings.
    pub fn parse(yaml: &str, origin: &str) -> Result<Self, NotifierError> {
        let file: AlertmanagerFile = serde_yaml_ng::from_str::<Option<AlertmanagerFile>>(yaml)
            .map_err(|e| NotifierError::Config(format!("{origin}: {e}")))?
            .unwrap_or_default();
        file.validate().map_err(|e| match e {
            NotifierError::Config(m) => NotifierError::Config(format!("{origin}: {m}")),
            other => other,
        })?;
        file.warn_ignored(origin);
        Ok(file)
    }

    /// Reads, parses and validates a file; relative `templates` globs are taken
    /// relative to the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, NotifierError> {
        let path = path.as_ref();
        let yaml = std::fs::read_to_string(path)
            .map_err(|e| NotifierError::Config(format!("{}: {e}", path.display())))?;
        let mut file = AlertmanagerFile::parse(&yaml, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for t in &mut file.templates {
            if !t.is_empty() && Path::new(t.as_str()).is_relative() {
                *t = dir.join(t.as_str()).display().to_string();
            }
        }
        Ok(file)
    }

    /// The root route ([`RouteConfig::default`] when there is none; a validated file
    /// has one).
    pub fn root_route(&self) -> RouteConfig {
        self.route.clone().unwrap_or_default()
    }

    /// Every receiver name, in file order.
    pub fn receiver_names(&self) -> Vec<String> {
        self.receivers.iter().map(|r| r.name.clone()).collect()
    }

    fn warn_ignored(&self, origin: &str) {
        for setting in self.global.ignored_settings() {
            tracing::warn!(
                file = origin,
                setting,
                "global setting for an integration Argus does not have; ignored"
            );
        }
        for r in &self.receivers {
            for (integration, entries) in r.ignored_integrations() {
                tracing::warn!(
                    file = origin,
                    receiver = %r.name,
                    integration,
                    entries,
                    "receiver integration Argus does not have; ignored"
                );
            }
        }
    }

    /// Alertmanager 0.25's checks of a configuration, each error naming where it is.
    pub fn validate(&self) -> Result<(), NotifierError> {
        self.check().map_err(NotifierError::Config)
    }

    fn check(&self) -> Result<(), String> {
        let Some(root) = &self.route else {
            return Err("no route provided in config".into());
        };

        // What Alertmanager checks while reading each part.
        root.try_walk("route", &mut |path, r| {
            r.check_node().map_err(|e| format!("{path}: {e}"))
        })?;
        for (i, rule) in self.inhibit_rules.iter().enumerate() {
            InhibitRule::from_config(rule).map_err(|e| {
                let msg = e.to_string();
                let msg = msg
                    .strip_prefix("inhibit_rules: ")
                    .unwrap_or(&msg)
                    .to_string();
                format!("inhibit_rules[{i}]: {msg}")
            })?;
        }
        for (i, t) in self.mute_time_intervals.iter().enumerate() {
            if t.name.is_empty() {
                return Err(format!(
                    "mute_time_intervals[{i}]: missing name in mute time interval"
                ));
            }
        }
        for (i, t) in self.time_intervals.iter().enumerate() {
            if t.name.is_empty() {
                return Err(format!(
                    "time_intervals[{i}]: missing name in time interval"
                ));
            }
        }
        for (i, r) in self.receivers.iter().enumerate() {
            if r.name.is_empty() {
                return Err(format!("receivers[{i}]: missing name in receiver"));
            }
        }

        // Then the document as a whole.
        self.global.check()?;
        let mut names = HashSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let at = format!("receivers[{i}] ({:?})", r.name);
            if !names.insert(r.name.as_str()) {
                return Err(format!(
                    "{at}: notification config name {:?} is not unique",
                    r.name
                ));
            }
            for (j, e) in r.email_configs.iter().enumerate() {
                if leaves_unset(e, "smarthost") && self.global.smtp_smarthost.is_empty() {
                    return Err(format!(
                        "{at}: email_configs[{j}]: no global SMTP smarthost set"
                    ));
                }
                if leaves_unset(e, "from") && self.global.smtp_from.is_empty() {
                    return Err(format!("{at}: email_configs[{j}]: no global SMTP from set"));
                }
            }
        }

        if root.receiver.is_empty() {
            return Err("route: root route must specify a default receiver".into());
        }
        if !root.r#match.is_empty() || !root.match_re.is_empty() || !root.matchers.is_empty() {
            return Err("route: root route must not have any matchers".into());
        }
        if !root.mute_time_intervals.is_empty() {
            return Err("route: root route must not have any mute time intervals".into());
        }
        if !root.active_time_intervals.is_empty() {
            return Err("route: root route must not have any active time intervals".into());
        }
        if root.r#continue {
            return Err("route: cannot have continue in root route".into());
        }
        root.try_walk("route", &mut |path, r| {
            if !r.receiver.is_empty() && !names.contains(r.receiver.as_str()) {
                return Err(format!(
                    "{path}: undefined receiver {:?} used in route",
                    r.receiver
                ));
            }
            Ok(())
        })?;

        let mut intervals = HashSet::new();
        for (i, t) in self.mute_time_intervals.iter().enumerate() {
            if !intervals.insert(t.name.as_str()) {
                return Err(format!(
                    "mute_time_intervals[{i}]: mute time interval {:?} is not unique",
                    t.name
                ));
            }
        }
        for (i, t) in self.time_intervals.iter().enumerate() {
            if !intervals.insert(t.name.as_str()) {
                return Err(format!(
                    "time_intervals[{i}]: time interval {:?} is not unique",
                    t.name
                ));
            }
        }
        root.try_walk("route", &mut |path, r| {
            for n in r.active_time_intervals.iter().chain(&r.mute_time_intervals) {
                if !intervals.contains(n.as_str()) {
                    return Err(format!(
                        "{path}: undefined time interval {n:?} used in route"
                    ));
                }
            }
            Ok(())
        })
    }
}

/// Parses a YAML fragment into any config type (for tests and tools that hold one
/// section); errors name `origin`.
pub fn parse_section<T: DeserializeOwned>(yaml: &str, origin: &str) -> Result<T, NotifierError> {
    serde_yaml_ng::from_str(yaml).map_err(|e| NotifierError::Config(format!("{origin}: {e}")))
}
