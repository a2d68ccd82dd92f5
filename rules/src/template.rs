//! Prometheus' alert templates: Go `text/template` (the query crate's engine, with
//! Go's builtins) over the data Prometheus gives alert labels and annotations
//! (`.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value` and the variables
//! `$labels`, `$externalLabels`, `$externalURL`, `$value`), Prometheus' template
//! functions (`humanize*`, `title`, `toUpper`, `reReplaceAll`, `match`, `stripPort`,
//! `query`/`first`/`label`/`value`/`sortByLabel`, …) and its error texts.

use std::collections::BTreeMap;
use std::rc::Rc;

use argus_query::logql::pipeline::template::funcs::sprintf;
use argus_query::logql::pipeline::template::gotime::GoTime;
use argus_query::logql::pipeline::template::{Funcs, Template, Value};
use argus_schemas::Labels;

/// The variables Prometheus defines before every alert template.
pub const ALERT_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Prometheus' template functions (besides Go's builtins).
const NAMES: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
];

/// Runs a PromQL (or, in `logs` groups, LogQL) query for the `query` function at
/// the evaluation time; returns the samples' labels and values.
pub type QueryCallback<'a> = &'a dyn Fn(&str) -> Result<Vec<(Labels, f64)>, String>;

/// What an alert template reads.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    /// The alert's labels as the query returned them (`$labels`).
    pub labels: &'a Labels,
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    /// The sample value (`$value`).
    pub value: f64,
}

/// A parsed alert template (label or annotation value) of one alerting rule.
#[derive(Debug, Clone)]
pub struct AlertTemplate {
    name: String,
    text: String,
    /// None when the text has no action: it expands to itself.
    tmpl: Option<Template>,
}

struct PromFuncs<'a> {
    query: Option<QueryCallback<'a>>,
    external_url: &'a str,
}

impl AlertTemplate {
    /// Parses `text` as Prometheus does for alert `alert_name` (template name
    /// `__alert_NAME`, the variable definitions prepended). The error is Go's
    /// `template: __alert_NAME:1: …`.
    pub fn parse(alert_name: &str, text: &str) -> Result<AlertTemplate, String> {
        let name = format!("__alert_{alert_name}");
        if !text.contains("{{") {
            return Ok(AlertTemplate {
                name,
                text: text.to_string(),
                tmpl: None,
            });
        }
        let funcs = PromFuncs {
            query: None,
            external_url: "",
        };
        let full = format!("{ALERT_DEFS}{text}");
        let tmpl = Template::with_funcs(&name, &full, &funcs).map_err(|e| e.0)?;
        Ok(AlertTemplate {
            name,
            text: text.to_string(),
            tmpl: Some(tmpl),
        })
    }

    /// A template that expands to `text` as is.
    pub fn literal(alert_name: &str, text: &str) -> AlertTemplate {
        AlertTemplate {
            name: format!("__alert_{alert_name}"),
            text: text.to_string(),
            tmpl: None,
        }
    }

    /// The template text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Expands the template; the error is Prometheus' `error executing template
    /// __alert_NAME: …`.
    pub fn expand(
        &self,
        data: &TemplateData<'_>,
        query: Option<QueryCallback<'_>>,
    ) -> Result<String, String> {
        let Some(tmpl) = &self.tmpl else {
            return Ok(self.text.clone());
        };
        let funcs = PromFuncs {
            query,
            external_url: data.external_url,
        };
        let mut root = BTreeMap::new();
        root.insert("Labels".to_string(), labels_value(data.labels));
        root.insert(
            "ExternalLabels".to_string(),
            labels_value(data.external_labels),
        );
        root.insert(
            "ExternalURL".to_string(),
            Value::Str(data.external_url.to_string()),
        );
        root.insert("Value".to_string(), Value::Float(data.value));
        tmpl.execute_with(Value::Map(Rc::new(root)), &funcs)
            .map_err(|e| format!("error executing template {}: {}", self.name, e.0))
    }

    /// Expands the template as Prometheus does for alerts: a failure becomes
    /// `<error expanding template: …>`.
    pub fn expand_alert(
        &self,
        data: &TemplateData<'_>,
        query: Option<QueryCallback<'_>>,
    ) -> String {
        match self.expand(data, query) {
            Ok(s) => s,
            Err(e) => format!("<error expanding template: {e}>"),
        }
    }
}

/// Parses and expands `text` once (for tests and tools).
pub fn expand(
    alert_name: &str,
    text: &str,
    data: &TemplateData<'_>,
    query: Option<QueryCallback<'_>>,
) -> Result<String, String> {
    AlertTemplate::parse(alert_name, text)
        .map_err(|e| format!("error parsing template __alert_{alert_name}: {e}"))?
        .expand(data, query)
}

fn labels_value(l: &Labels) -> Value {
    Value::Map(Rc::new(
        l.iter()
            .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
            .collect(),
    ))
}

fn sample_value(labels: &Labels, v: f64) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Labels".to_string(), labels_value(labels));
    m.insert("Value".to_string(), Value::Float(v));
    Value::Map(Rc::new(m))
}

/// Go's `%T` of a value, for conversion errors.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::Map(m) if m.values().all(|x| matches!(x, Value::Str(_))) => "map[string]string",
        o => o.type_name(),
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn str_arg(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Nil => Err("invalid value; expected string".into()),
        o => Err(format!(
            "wrong type for value; expected string; got {}",
            o.type_name()
        )),
    }
}

/// Prometheus' `ConvertToFloat`.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s)
            .ok_or_else(|| format!("strconv.ParseFloat: parsing {}: invalid syntax", go_q(s))),
        o => Err(format!("can't convert {} to float", go_type(o))),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input (and Inf/NaN spellings).
fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.parse().ok();
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

/// Go's `%q` of a string.
fn go_q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    sprintf("%.4g", &[Value::Float(v)])
}

/// `humanize`: SI prefixes.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

/// `humanize1024`: binary prefixes.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s`, or with SI prefixes below 1s.
pub fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// `humanizePercentage`: a ratio as a percentage.
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// Unix seconds as Go's `time.Time`, truncated to milliseconds as Prometheus'
/// `model.Time` does.
fn float_to_time(v: f64) -> Result<GoTime, String> {
    if v.is_nan() || v.is_infinite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            sprintf("%v", &[Value::Float(v)])
        ));
    }
    let ms = (ns as i64) / 1_000_000;
    Ok(GoTime::from_unix(
        ms.div_euclid(1000),
        ms.rem_euclid(1000) * 1_000_000,
    ))
}

/// `humanizeTimestamp`: Unix seconds as Go prints a UTC time.
pub fn humanize_timestamp(v: f64) -> Result<String, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(g4(v));
    }
    Ok(float_to_time(v)?.go_string())
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Prometheus' `GraphLinkForExpression`.
pub fn graph_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=0", query_escape(expr))
}

/// Prometheus' `TableLinkForExpression` (the alert's generator URL path).
pub fn table_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=1", query_escape(expr))
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hp: &str) -> Option<(String, String)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let port = rest[end + 1..].strip_prefix(':')?;
        if port.contains(':') || host.contains('[') || host.contains(']') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let i = hp.rfind(':')?;
    let (host, port) = (&hp[..i], &hp[i + 1..]);
    if host.contains(':') || hp.contains('[') || hp.contains(']') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

/// Go's `strings.Title`.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        };
    }
    out
}

/// Prometheus' `model.ParseDuration`, in milliseconds.
pub fn parse_prom_duration(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    if s == "0" {
        return Ok(0);
    }
    let bad = || format!("not a valid duration string: {}", go_q(s));
    let units: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = if rest.starts_with("ms") {
            2
        } else {
            rest.chars().next().map_or(0, char::len_utf8)
        };
        let unit = &rest[..unit_len];
        let idx = units[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(bad)?
            + next_unit;
        total = n
            .checked_mul(units[idx].1)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| "duration out of range".to_string())?;
        next_unit = idx + 1;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Prometheus' `model.Duration` string form (e.g. `1h30m`, `5m`, `0s`).
pub fn format_prom_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (u, n) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= n {
            out.push_str(&format!("{}{u}", rest / n));
            rest %= n;
        }
    }
    out
}

impl Funcs for PromFuncs<'_> {
    fn has(&self, name: &str) -> bool {
        NAMES.contains(&name)
    }

    fn missing_key(&self, map: &BTreeMap<String, Value>) -> Value {
        // Label maps are map[string]string: a missing key reads as "".
        if map.values().all(|v| matches!(v, Value::Str(_))) {
            Value::Str(String::new())
        } else {
            Value::Nil
        }
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let a = &args;
        match name {
            "query" => {
                want(name, a, 1)?;
                let q = str_arg(&a[0])?;
                let Some(f) = self.query else {
                    return Err(format!(
                        "cannot execute query {}: query is not available here",
                        go_q(q)
                    ));
                };
                let res = f(q)?;
                Ok(Value::List(Rc::new(
                    res.iter().map(|(l, v)| sample_value(l, *v)).collect(),
                )))
            }
            "first" => {
                want(name, a, 1)?;
                match &a[0] {
                    Value::List(l) => l
                        .first()
                        .cloned()
                        .ok_or_else(|| "first() called on vector with no elements".to_string()),
                    o => Err(format!(
                        "wrong type for value; expected template.queryResult; got {}",
                        o.type_name()
                    )),
                }
            }
            "label" => {
                want(name, a, 2)?;
                let l = str_arg(&a[0])?;
                Ok(sample_field(&a[1], "Labels")?
                    .and_then(|m| match m {
                        Value::Map(m) => m.get(l).cloned(),
                        _ => None,
                    })
                    .unwrap_or(Value::Str(String::new())))
            }
            "value" => {
                want(name, a, 1)?;
                Ok(sample_field(&a[0], "Value")?.unwrap_or(Value::Float(0.0)))
            }
            "strvalue" => {
                want(name, a, 1)?;
                Ok(sample_field(&a[0], "Labels")?
                    .and_then(|m| match m {
                        Value::Map(m) => m.get("__value__").cloned(),
                        _ => None,
                    })
                    .unwrap_or(Value::Str(String::new())))
            }
            "args" => Ok(Value::Map(Rc::new(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("arg{i}"), v.clone()))
                    .collect(),
            ))),
            "reReplaceAll" => {
                want(name, a, 3)?;
                let (pat, repl, text) = (str_arg(&a[0])?, str_arg(&a[1])?, str_arg(&a[2])?);
                let re = regex::Regex::new(pat)
                    .map_err(|e| format!("regexp: Compile({}): {e}", go_q(pat)))?;
                Ok(Value::Str(re.replace_all(text, repl).into_owned()))
            }
            "match" => {
                want(name, a, 2)?;
                let (pat, s) = (str_arg(&a[0])?, str_arg(&a[1])?);
                let re =
                    regex::Regex::new(pat).map_err(|e| format!("error parsing regexp: {e}"))?;
                Ok(Value::Bool(re.is_match(s)))
            }
            "safeHtml" => {
                want(name, a, 1)?;
                Ok(Value::Str(str_arg(&a[0])?.to_string()))
            }
            "title" => {
                want(name, a, 1)?;
                Ok(Value::Str(title(str_arg(&a[0])?)))
            }
            "toUpper" => {
                want(name, a, 1)?;
                Ok(Value::Str(str_arg(&a[0])?.to_uppercase()))
            }
            "toLower" => {
                want(name, a, 1)?;
                Ok(Value::Str(str_arg(&a[0])?.to_lowercase()))
            }
            "graphLink" => {
                want(name, a, 1)?;
                Ok(Value::Str(graph_link(str_arg(&a[0])?)))
            }
            "tableLink" => {
                want(name, a, 1)?;
                Ok(Value::Str(table_link(str_arg(&a[0])?)))
            }
            "sortByLabel" => {
                want(name, a, 2)?;
                let l = str_arg(&a[0])?.to_string();
                let Value::List(list) = &a[1] else {
                    return Err(format!(
                        "wrong type for value; expected template.queryResult; got {}",
                        a[1].type_name()
                    ));
                };
                let mut v: Vec<Value> = list.as_ref().clone();
                let key = |s: &Value| -> String {
                    match sample_field(s, "Labels") {
                        Ok(Some(Value::Map(m))) => match m.get(&l) {
                            Some(Value::Str(x)) => x.clone(),
                            _ => String::new(),
                        },
                        _ => String::new(),
                    }
                };
                v.sort_by_key(|s| key(s));
                Ok(Value::List(Rc::new(v)))
            }
            "stripPort" => {
                want(name, a, 1)?;
                let hp = str_arg(&a[0])?;
                Ok(Value::Str(
                    split_host_port(hp).map_or_else(|| hp.to_string(), |(h, _)| h),
                ))
            }
            "stripDomain" => {
                want(name, a, 1)?;
                let hp = str_arg(&a[0])?;
                let (host, port) =
                    split_host_port(hp).unwrap_or_else(|| (hp.to_string(), String::new()));
                if host.parse::<std::net::IpAddr>().is_ok() {
                    return Ok(Value::Str(hp.to_string()));
                }
                let host = host.split('.').next().unwrap_or("").to_string();
                Ok(Value::Str(if port.is_empty() {
                    host
                } else if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }))
            }
            "humanize" => {
                want(name, a, 1)?;
                Ok(Value::Str(humanize(to_float(&a[0])?)))
            }
            "humanize1024" => {
                want(name, a, 1)?;
                Ok(Value::Str(humanize1024(to_float(&a[0])?)))
            }
            "humanizeDuration" => {
                want(name, a, 1)?;
                Ok(Value::Str(humanize_duration(to_float(&a[0])?)))
            }
            "humanizePercentage" => {
                want(name, a, 1)?;
                Ok(Value::Str(humanize_percentage(to_float(&a[0])?)))
            }
            "humanizeTimestamp" => {
                want(name, a, 1)?;
                Ok(Value::Str(humanize_timestamp(to_float(&a[0])?)?))
            }
            "toTime" => {
                want(name, a, 1)?;
                Ok(Value::Time(float_to_time(to_float(&a[0])?)?))
            }
            "pathPrefix" => {
                want(name, a, 0)?;
                Ok(Value::Str(url_path(self.external_url)))
            }
            "externalURL" => {
                want(name, a, 0)?;
                Ok(Value::Str(self.external_url.to_string()))
            }
            "parseDuration" => {
                want(name, a, 1)?;
                let ms = parse_prom_duration(str_arg(&a[0])?)?;
                Ok(Value::Float(ms as f64 / 1000.0))
            }
            _ => Err(format!("function {} not defined", go_q(name))),
        }
    }
}

/// A field of a query-result sample (a map with `Labels` and `Value`).
fn sample_field(s: &Value, field: &str) -> Result<Option<Value>, String> {
    match s {
        Value::Map(m) => Ok(m.get(field).cloned()),
        Value::Nil => Err("invalid value; expected *template.sample".into()),
        o => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            o.type_name()
        )),
    }
}

/// The path of a URL (`http://host:9090/prom/` → `/prom/`).
fn url_path(u: &str) -> String {
    let after_scheme = u.split_once("://").map_or(u, |(_, r)| r);
    match after_scheme.find('/') {
        Some(i) => {
            let p = &after_scheme[i..];
            p.split(['?', '#']).next().unwrap_or("").to_string()
        }
        None => String::new(),
    }
}
