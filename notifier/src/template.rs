//! Notification templates: Alertmanager's template data and functions over the query
//! crate's Go `text/template` engine, default templates for every medium, user files.
//!
//! The data is Alertmanager 0.25's `template.Data`: `.Receiver`, `.Status`, `.Alerts`
//! (each with `Status`, `Labels`, `Annotations`, `StartsAt`, `EndsAt`, `GeneratorURL`,
//! `Fingerprint`; the list has the methods `Firing` and `Resolved`), `.GroupLabels`,
//! `.CommonLabels`, `.CommonAnnotations` (key/value sets with `SortedPairs`, `Names`,
//! `Values`, `Remove`) and `.ExternalURL`, plus the string fields a channel adds
//! ([`TemplateData::with_extra`]). Times have `Format`, `Add`, `Sub`, `IsZero`,
//! `Before`, `After`, `Equal`, `Unix`… The functions are Alertmanager's (`toUpper`,
//! `toLower`, `title`, `trimSpace`, `join`, `match`, `safeHtml`, `safeUrl`,
//! `urlUnescape`, `reReplaceAll`, `stringSlice`, `date`, `tz`, `since`,
//! `humanizeDuration`) and Go's builtins (`and`, `or`, `not`, `len`, `index`, `print*`,
//! comparisons, `html`, `js`, `urlquery`, `slice`).
//!
//! [`Templates::load`] parses the built-in files (`templates/*.tmpl`: Alertmanager's
//! helper names `__subject`, `__alertmanagerURL`, `__text_alert_list`…, and
//! `email.default.*`, `wecom.default.*`, `sms.default.message`) and then the user's
//! files in glob order; a later `define` replaces an earlier one of the same name, as
//! Go's template sets do. Channel texts are compiled against that set
//! ([`Templates::compile`], [`Templates::compile_html`] for html/template escaping)
//! and rendered per notification.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, LazyLock};

use argus_query::logql::pipeline::template::funcs::{str_arg, time_arg};
use argus_query::logql::pipeline::template::gotime::GoTime;
use argus_query::logql::pipeline::template::{Funcs, Template, Value};
use argus_schemas::Labels;
use regex::Regex;

use crate::NotifierError;
use crate::notification::{Notification, NotifyAlert};

/// The built-in template files, parsed in this order before the user's.
const DEFAULT_FILES: &[(&str, &str)] = &[
    ("default.tmpl", include_str!("../templates/default.tmpl")),
    ("email.tmpl", include_str!("../templates/email.tmpl")),
    ("wecom.tmpl", include_str!("../templates/wecom.tmpl")),
    ("sms.tmpl", include_str!("../templates/sms.tmpl")),
];

/// How the built-in files are named in errors.
const DEFAULT_PREFIX: &str = "<built-in>/";

/// The functions templates may call besides Go's builtins.
const FUNCS: &[&str] = &[
    "toUpper",
    "toLower",
    "title",
    "trimSpace",
    "join",
    "match",
    "safeHtml",
    "safeUrl",
    "urlUnescape",
    "reReplaceAll",
    "stringSlice",
    "date",
    "tz",
    "since",
    "humanizeDuration",
];

/// Defined templates by name.
type Defs = HashMap<String, Template>;

/// The built-in templates, parsed once.
static DEFAULTS: LazyLock<Result<Arc<Defs>, NotifierError>> = LazyLock::new(|| {
    let mut defs = Defs::new();
    for (file, text) in DEFAULT_FILES {
        add_file(&mut defs, &format!("{DEFAULT_PREFIX}{file}"), file, text)?;
    }
    Ok(Arc::new(defs))
});

/// The default and user-supplied templates, parsed once at start.
#[derive(Clone)]
pub struct Templates {
    defs: Arc<Defs>,
}

/// One template text (a channel's `html`, `message`, header value…) parsed against the
/// [`Templates`] so it may call `{{ template "name" . }}`.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    what: String,
    /// `None`: the text is empty (renders to "", as Alertmanager's empty texts do).
    main: Option<Arc<Template>>,
    defs: Arc<Defs>,
    html: bool,
}

/// What a template reads: Alertmanager's `template.Data` for one notification, plus
/// any extra top-level string fields a channel adds (e.g. `.Phone` for an SMS gateway).
#[derive(Debug, Clone)]
pub struct TemplateData<'a> {
    pub notification: &'a Notification,
    pub extra: Vec<(String, String)>,
}

impl<'a> TemplateData<'a> {
    pub fn new(n: &'a Notification) -> Self {
        TemplateData {
            notification: n,
            extra: Vec::new(),
        }
    }

    /// Adds a top-level string field (`.Name`).
    pub fn with_extra(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_string(), value.to_string()));
        self
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.names())
            .finish()
    }
}

impl Default for Templates {
    /// The built-in templates alone.
    fn default() -> Self {
        Templates {
            defs: DEFAULTS.as_ref().map(Arc::clone).unwrap_or_default(),
        }
    }
}

impl Templates {
    /// The built-in defaults plus the files matching `globs` (Alertmanager's
    /// `templates:`), relative to `base_dir` when given.
    pub fn load(globs: &[String], base_dir: Option<&Path>) -> Result<Self, NotifierError> {
        let defaults = match &*DEFAULTS {
            Ok(d) => Arc::clone(d),
            Err(e) => {
                return Err(NotifierError::Template {
                    name: "built-in templates".into(),
                    message: e.to_string(),
                });
            }
        };
        if globs.is_empty() {
            return Ok(Templates { defs: defaults });
        }
        let mut defs = (*defaults).clone();
        for g in globs {
            for path in expand_glob(g, base_dir)? {
                let text = std::fs::read_to_string(&path).map_err(|e| NotifierError::Template {
                    name: path.display().to_string(),
                    message: format!("cannot read template file: {e}"),
                })?;
                let base = path
                    .file_name()
                    .map(|b| b.to_string_lossy().into_owned())
                    .unwrap_or_default();
                add_file(&mut defs, &path.display().to_string(), &base, &text)?;
                tracing::debug!(file = %path.display(), "template file loaded");
            }
        }
        Ok(Templates {
            defs: Arc::new(defs),
        })
    }

    /// Parses `text`; `what` names it in errors (e.g. `receiver "ops": wecom_configs[0].message`).
    pub fn compile(&self, what: &str, text: &str) -> Result<CompiledTemplate, NotifierError> {
        self.compile_as(what, text, false)
    }

    /// As [`Templates::compile`] for an HTML text (an email's `html`): what actions
    /// print is escaped as Go's `html/template` escapes HTML text, except the output
    /// of `safeHtml`.
    pub fn compile_html(&self, what: &str, text: &str) -> Result<CompiledTemplate, NotifierError> {
        self.compile_as(what, text, true)
    }

    fn compile_as(
        &self,
        what: &str,
        text: &str,
        html: bool,
    ) -> Result<CompiledTemplate, NotifierError> {
        let main = if text.is_empty() {
            None
        } else {
            let (main, defines) = Template::parse_set(what, text, &AmFuncs::parse_only())
                .map_err(|e| template_error(what, &e.0))?;
            if !defines.is_empty() {
                // Alertmanager parses the text into a clone of the set: its defines
                // are seen by this text alone.
                let mut defs = (*self.defs).clone();
                for t in defines {
                    if !(t.is_empty() && defs.contains_key(t.name())) {
                        defs.insert(t.name().to_string(), t);
                    }
                }
                return Ok(CompiledTemplate {
                    what: what.to_string(),
                    main: Some(Arc::new(main)),
                    defs: Arc::new(defs),
                    html,
                });
            }
            Some(Arc::new(main))
        };
        Ok(CompiledTemplate {
            what: what.to_string(),
            main,
            defs: Arc::clone(&self.defs),
            html,
        })
    }

    /// Whether a template of this name is defined.
    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    /// The names of the defined templates, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.defs.keys().cloned().collect();
        v.sort();
        v
    }
}

impl CompiledTemplate {
    /// Executes the template for one notification.
    pub fn render(&self, data: &TemplateData<'_>) -> Result<String, NotifierError> {
        let Some(main) = &self.main else {
            return Ok(String::new());
        };
        let funcs = AmFuncs {
            defs: Some(&self.defs),
            now: data.notification.now.0,
        };
        let root = data_value(data);
        let r = if self.html {
            main.execute_html(root, &funcs)
        } else {
            main.execute_with(root, &funcs)
        };
        r.map_err(|e| template_error(&self.what, &e.0))
    }

    /// Whether the text was empty (it renders to "").
    pub fn is_empty(&self) -> bool {
        self.main.is_none()
    }
}

/// Parses one file into `defs`: its defines (a later one replaces an earlier one,
/// unless it is empty, as Go does) and its top-level text under the file's base name.
fn add_file(defs: &mut Defs, path: &str, base: &str, text: &str) -> Result<(), NotifierError> {
    let (main, defines) = Template::parse_set(path, text, &AmFuncs::parse_only()).map_err(|e| {
        NotifierError::Template {
            name: path.to_string(),
            message: strip_go_prefix(path, &e.0),
        }
    })?;
    for t in defines.into_iter().chain(std::iter::once(main)) {
        let name = if t.name() == path {
            base.to_string()
        } else {
            t.name().to_string()
        };
        if t.is_empty() && defs.contains_key(&name) {
            continue;
        }
        defs.insert(name, t);
    }
    Ok(())
}

/// The files matching one `templates:` glob, in order; none is no error (as
/// Alertmanager: the files may appear later).
fn expand_glob(pattern: &str, base_dir: Option<&Path>) -> Result<Vec<PathBuf>, NotifierError> {
    let full = match base_dir {
        Some(b) if !Path::new(pattern).is_absolute() => b.join(pattern),
        _ => PathBuf::from(pattern),
    };
    let full_s = full.to_string_lossy().into_owned();
    let paths = glob::glob(&full_s)
        .map_err(|e| NotifierError::Config(format!("templates: bad pattern {pattern:?}: {e}")))?;
    let mut out = Vec::new();
    for p in paths {
        let p = p.map_err(|e| NotifierError::Template {
            name: e.path().display().to_string(),
            message: format!("cannot read template file: {}", e.error()),
        })?;
        if p.is_file() {
            out.push(p);
        }
    }
    Ok(out)
}

/// An engine error as the notifier reports it for `what`.
fn template_error(what: &str, msg: &str) -> NotifierError {
    NotifierError::Template {
        name: what.to_string(),
        message: strip_go_prefix(what, msg),
    }
}

/// Drops Go's `template: NAME:` prefix when NAME is the name already reported:
/// `template: X:3: msg` → `line 3: msg`; `template: X: executing "X" at <…>: msg` →
/// `at <…>: msg`. Errors from other templates (a file's define) keep their file and
/// template name.
fn strip_go_prefix(name: &str, msg: &str) -> String {
    let Some(rest) = msg.strip_prefix(&format!("template: {name}:")) else {
        return msg.strip_prefix("template: ").unwrap_or(msg).to_string();
    };
    if let Some(r) = rest.strip_prefix(&format!(" executing \"{name}\" ")) {
        return r.to_string();
    }
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && rest[digits..].starts_with(": ") {
        return format!("line {}: {}", &rest[..digits], &rest[digits + 2..]);
    }
    rest.trim_start().to_string()
}

// ---------------------------------------------------------------- data

fn kv(l: &Labels) -> Value {
    Value::Map(Rc::new(
        l.iter()
            .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
            .collect(),
    ))
}

fn go_time(ns: i64) -> GoTime {
    GoTime::from_unix_nanos(ns)
}

fn alert_value(a: &NotifyAlert) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Status".into(), Value::Str(a.status().into()));
    m.insert("Labels".into(), kv(&a.labels));
    m.insert("Annotations".into(), kv(&a.annotations));
    m.insert("StartsAt".into(), Value::Time(go_time(a.starts_at.0)));
    m.insert(
        "EndsAt".into(),
        Value::Time(a.ends_at.map_or_else(GoTime::zero, |t| go_time(t.0))),
    );
    m.insert("GeneratorURL".into(), Value::Str(a.generator_url.clone()));
    m.insert(
        "Fingerprint".into(),
        Value::Str(format!("{:016x}", a.fingerprint)),
    );
    Value::Map(Rc::new(m))
}

/// Alertmanager's `template.Data` of a notification (the receiver name is
/// regexp-quoted, as Alertmanager does).
fn data_value(d: &TemplateData<'_>) -> Value {
    let n = d.notification;
    let mut m = BTreeMap::new();
    for (k, v) in &d.extra {
        m.insert(k.clone(), Value::Str(v.clone()));
    }
    m.insert("Receiver".into(), Value::Str(regex::escape(&n.receiver)));
    m.insert("Status".into(), Value::Str(n.status().into()));
    m.insert(
        "Alerts".into(),
        Value::List(Rc::new(n.alerts.iter().map(alert_value).collect())),
    );
    m.insert("GroupLabels".into(), kv(&n.group_labels));
    m.insert("CommonLabels".into(), kv(&n.common_labels()));
    m.insert("CommonAnnotations".into(), kv(&n.common_annotations()));
    m.insert("ExternalURL".into(), Value::Str(n.external_url.clone()));
    Value::Map(Rc::new(m))
}

// ---------------------------------------------------------------- functions and methods

/// Alertmanager's functions, the methods of its data types, and the template set.
struct AmFuncs<'a> {
    defs: Option<&'a Defs>,
    /// The notification's time (ns) for `since`.
    now: i64,
}

impl AmFuncs<'_> {
    fn parse_only() -> AmFuncs<'static> {
        AmFuncs { defs: None, now: 0 }
    }
}

/// A key/value set (`template.KV`): a map of strings.
fn is_kv(m: &BTreeMap<String, Value>) -> bool {
    m.values().all(|v| matches!(v, Value::Str(_)))
}

/// Go's type name of a struct-like map, for "can't evaluate field" errors.
fn struct_type(m: &BTreeMap<String, Value>) -> Option<&'static str> {
    if m.contains_key("Alerts") && m.contains_key("Receiver") {
        Some("*template.Data")
    } else if m.contains_key("Fingerprint") && m.contains_key("StartsAt") {
        Some("template.Alert")
    } else {
        None
    }
}

/// `KV.SortedPairs`: by name, `alertname` first.
fn sorted_pairs(m: &BTreeMap<String, Value>) -> Vec<(&str, &Value)> {
    let mut v: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
    v.sort_by_key(|(k, _)| (*k != "alertname", *k));
    v
}

fn pair(name: &str, value: &Value) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Name".to_string(), Value::Str(name.to_string()));
    m.insert("Value".to_string(), value.clone());
    Value::Map(Rc::new(m))
}

fn list(v: Vec<Value>) -> Value {
    Value::List(Rc::new(v))
}

fn is_pair(v: &Value) -> bool {
    matches!(v, Value::Map(m) if m.len() == 2 && m.contains_key("Name") && m.contains_key("Value"))
}

fn is_alert(v: &Value) -> bool {
    matches!(v, Value::Map(m) if struct_type(m) == Some("template.Alert"))
}

fn no_args(name: &str, args: &[Value]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want 0 got {}",
            args.len()
        ))
    }
}

fn one_arg<'v>(name: &str, args: &'v [Value]) -> Result<&'v Value, String> {
    match args {
        [a] => Ok(a),
        _ => Err(format!(
            "wrong number of args for {name}: want 1 got {}",
            args.len()
        )),
    }
}

/// A `[]string` argument (`join`, `KV.Remove`).
fn strings_arg(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::List(l) => l.iter().map(|x| str_arg(x).map(str::to_string)).collect(),
        Value::Nil => Ok(Vec::new()),
        o => Err(format!(
            "wrong type for value; expected []string; got {}",
            o.type_name()
        )),
    }
}

/// A `time.Duration` argument in nanoseconds (`28800e9` parses as a float constant).
fn duration_arg(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
        o => Err(format!(
            "wrong type for value; expected time.Duration; got {}",
            o.type_name()
        )),
    }
}

fn time_ns(t: &GoTime) -> i128 {
    i128::from(t.secs) * 1_000_000_000 + i128::from(t.nsec)
}

fn add_ns(t: &GoTime, d: i64) -> GoTime {
    let total = time_ns(t) + i128::from(d);
    GoTime {
        secs: total.div_euclid(1_000_000_000) as i64,
        nsec: total.rem_euclid(1_000_000_000) as u32,
        offset: t.offset,
        zone: t.zone.clone(),
    }
}

fn sub_ns(a: &GoTime, b: &GoTime) -> i64 {
    (time_ns(a) - time_ns(b)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Go's `time.Duration.String()`: `1h2m3s`, `1.5s`, `300ms`, `0s`.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let frac = |v: u64, div: u64| -> String {
        let whole = v / div;
        let rest = v % div;
        if rest == 0 {
            return whole.to_string();
        }
        let width = div.ilog10() as usize;
        let digits = format!("{rest:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    };
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if u < 1_000 {
        s.push_str(&format!("{u}ns"));
    } else if u < 1_000_000 {
        s.push_str(&frac(u, 1_000));
        s.push_str("µs");
    } else if u < 1_000_000_000 {
        s.push_str(&frac(u, 1_000_000));
        s.push_str("ms");
    } else {
        let secs = u / 1_000_000_000;
        let (h, m) = (secs / 3600, secs / 60 % 60);
        let rest_ns = u - (h * 3600 + m * 60) * 1_000_000_000;
        if h > 0 {
            s.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            s.push_str(&format!("{m}m"));
        }
        s.push_str(&frac(rest_ns, 1_000_000_000));
        s.push('s');
    }
    s
}

/// `golang.org/x/text/cases.Title`: the first letter of each word upper case, the
/// rest lower case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        if c.is_alphanumeric() || (in_word && (c == '\'' || c == '’')) {
            if in_word {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
        } else {
            out.push(c);
            in_word = false;
        }
    }
    out
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                let Some(h) = hex else {
                    let end = (i + 3).min(s.len());
                    return Err(format!(
                        "invalid URL escape {:?}",
                        s.get(i..end).unwrap_or("%")
                    ));
                };
                out.push(u8::from_str_radix(h, 16).map_err(|e| e.to_string())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 after unescaping".to_string())
}

/// Go's `time.LoadLocation(name)` applied to `t` (the IANA database).
fn in_zone(name: &str, t: &GoTime) -> Result<GoTime, String> {
    use chrono::{Offset, TimeZone};
    if matches!(name, "" | "UTC" | "Local") {
        return Ok(GoTime {
            offset: 0,
            zone: "UTC".into(),
            ..t.clone()
        });
    }
    let tz: chrono_tz::Tz = name
        .parse()
        .map_err(|_| format!("unknown time zone {name}"))?;
    let utc = chrono::DateTime::from_timestamp(t.secs, t.nsec)
        .ok_or_else(|| format!("time out of range for zone {name}"))?
        .naive_utc();
    let off = tz.offset_from_utc_datetime(&utc);
    let abbr = chrono_tz::OffsetName::abbreviation(&off)
        .map(str::to_string)
        .unwrap_or_default();
    Ok(GoTime {
        secs: t.secs,
        nsec: t.nsec,
        offset: off.fix().local_minus_utc(),
        zone: abbr,
    })
}

/// A number of seconds, or a Go duration (`since`'s result), for `humanizeDuration`.
fn seconds_of(v: &Value) -> Result<f64, String> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Str(s) => s.trim().parse::<f64>().or_else(|_| {
            argus_query::logql::pipeline::label_filter::go_parse_duration(s.trim())
                .map(|ns| ns as f64 / 1e9)
                .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
        }),
        o => Err(format!("can't convert {} to float", o.type_name())),
    }
}

fn regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("error parsing regexp: {e}"))
}

impl Funcs for AmFuncs<'_> {
    fn has(&self, name: &str) -> bool {
        FUNCS.contains(&name)
    }

    fn missing_key(&self, map: &BTreeMap<String, Value>) -> Value {
        // KV is map[string]string: a missing key reads as "" (missingkey=zero).
        if is_kv(map) {
            Value::Str(String::new())
        } else {
            Value::Nil
        }
    }

    fn template(&self, name: &str) -> Option<&Template> {
        self.defs.and_then(|d| d.get(name))
    }

    fn method(&self, recv: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match recv {
            Value::Map(m) if is_kv(m) => {
                let r = match name {
                    "SortedPairs" => no_args(name, args).map(|_| {
                        list(
                            sorted_pairs(m)
                                .into_iter()
                                .map(|(k, v)| pair(k, v))
                                .collect(),
                        )
                    }),
                    "Names" => no_args(name, args).map(|_| {
                        list(
                            sorted_pairs(m)
                                .into_iter()
                                .map(|(k, _)| Value::Str(k.to_string()))
                                .collect(),
                        )
                    }),
                    "Values" => no_args(name, args).map(|_| {
                        list(
                            sorted_pairs(m)
                                .into_iter()
                                .map(|(_, v)| v.clone())
                                .collect(),
                        )
                    }),
                    "Remove" => one_arg(name, args).and_then(strings_arg).map(|keys| {
                        let mut out = (**m).clone();
                        for k in keys {
                            out.remove(&k);
                        }
                        Value::Map(Rc::new(out))
                    }),
                    "String" if !is_pair(recv) => no_args(name, args).map(|_| {
                        Value::Str(
                            sorted_pairs(m)
                                .into_iter()
                                .map(|(k, v)| format!("{k}={}", display(v)))
                                .collect::<Vec<_>>()
                                .join(", "),
                        )
                    }),
                    _ => return None,
                };
                Some(r)
            }
            Value::Map(m) => {
                let ty = struct_type(m)?;
                if m.contains_key(name) {
                    None
                } else {
                    Some(Err(format!("can't evaluate field {name} in type {ty}")))
                }
            }
            Value::List(l) => {
                let r = match name {
                    "Firing" | "Resolved" if l.iter().all(is_alert) => {
                        no_args(name, args).map(|_| {
                            let want = if name == "Firing" { "firing" } else { "resolved" };
                            list(
                                l.iter()
                                    .filter(|a| match a {
                                        Value::Map(m) => {
                                            matches!(m.get("Status"), Some(Value::Str(s)) if s == want)
                                        }
                                        _ => false,
                                    })
                                    .cloned()
                                    .collect(),
                            )
                        })
                    }
                    "Names" | "Values" if l.iter().all(is_pair) => no_args(name, args).map(|_| {
                        let key = if name == "Names" { "Name" } else { "Value" };
                        list(
                            l.iter()
                                .filter_map(|p| match p {
                                    Value::Map(m) => m.get(key).cloned(),
                                    _ => None,
                                })
                                .collect(),
                        )
                    }),
                    "String" if !l.is_empty() && l.iter().all(is_pair) => {
                        no_args(name, args).map(|_| {
                            Value::Str(
                                l.iter()
                                    .filter_map(|p| match p {
                                        Value::Map(m) => Some(format!(
                                            "{}={}",
                                            display(m.get("Name")?),
                                            display(m.get("Value")?)
                                        )),
                                        _ => None,
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            )
                        })
                    }
                    _ => return None,
                };
                Some(r)
            }
            Value::Time(t) => {
                let r = match name {
                    "Add" => one_arg(name, args)
                        .and_then(duration_arg)
                        .map(|d| Value::Time(add_ns(t, d))),
                    "Sub" => one_arg(name, args)
                        .and_then(time_arg)
                        .map(|u| Value::Str(go_duration(sub_ns(t, u)))),
                    "IsZero" => no_args(name, args).map(|_| Value::Bool(*t == GoTime::zero())),
                    "Before" | "After" | "Equal" => {
                        one_arg(name, args).and_then(time_arg).map(|u| {
                            let o = time_ns(t).cmp(&time_ns(u));
                            Value::Bool(match name {
                                "Before" => o.is_lt(),
                                "After" => o.is_gt(),
                                _ => o.is_eq(),
                            })
                        })
                    }
                    _ => return None,
                };
                Some(r)
            }
            _ => None,
        }
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let want = |n: usize| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    args.len()
                ))
            }
        };
        let s = |i: usize| str_arg(&args[i]);
        match name {
            "toUpper" => {
                want(1)?;
                Ok(Value::Str(s(0)?.to_uppercase()))
            }
            "toLower" => {
                want(1)?;
                Ok(Value::Str(s(0)?.to_lowercase()))
            }
            "title" => {
                want(1)?;
                Ok(Value::Str(title(s(0)?)))
            }
            "trimSpace" => {
                want(1)?;
                Ok(Value::Str(s(0)?.trim().to_string()))
            }
            "join" => {
                want(2)?;
                let sep = s(0)?;
                Ok(Value::Str(strings_arg(&args[1])?.join(sep)))
            }
            "match" => {
                want(2)?;
                Ok(Value::Bool(regex(s(0)?)?.is_match(s(1)?)))
            }
            "safeHtml" | "safeUrl" => {
                want(1)?;
                Ok(Value::Str(s(0)?.to_string()))
            }
            "urlUnescape" => {
                want(1)?;
                Ok(Value::Str(query_unescape(s(0)?)?))
            }
            "reReplaceAll" => {
                want(3)?;
                let re = regex(s(0)?)?;
                Ok(Value::Str(re.replace_all(s(2)?, s(1)?).into_owned()))
            }
            "stringSlice" => {
                let v: Result<Vec<Value>, String> = args
                    .iter()
                    .map(|a| str_arg(a).map(|x| Value::Str(x.to_string())))
                    .collect();
                Ok(list(v?))
            }
            "date" => {
                want(2)?;
                Ok(Value::Str(time_arg(&args[1])?.format(s(0)?)))
            }
            "tz" => {
                want(2)?;
                Ok(Value::Time(in_zone(s(0)?, time_arg(&args[1])?)?))
            }
            "since" => {
                want(1)?;
                let t = time_arg(&args[0])?;
                Ok(Value::Str(go_duration(sub_ns(&go_time(self.now), t))))
            }
            "humanizeDuration" => {
                want(1)?;
                Ok(Value::Str(argus_rules::template::humanize_duration(
                    seconds_of(&args[0])?,
                )))
            }
            _ => Err(format!("function {name:?} not defined")),
        }
    }
}

/// `%v` of a value, for `String()` of pairs.
fn display(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Nil => String::new(),
        o => argus_query::logql::pipeline::template::funcs::sprintf("%v", std::slice::from_ref(o)),
    }
}
