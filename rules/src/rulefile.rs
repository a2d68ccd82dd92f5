//! Rule files in Prometheus' format (`groups:` of recording and alerting rules),
//! plus Argus' per-group `type: metrics|logs` (PromQL or LogQL expressions).
//!
//! Parsing follows `promtool check rules`: unknown fields and wrongly typed values are
//! rejected (and stop the check, as Prometheus' strict YAML decoding does); then
//! every group and rule is validated and every error is returned, each located at
//! the YAML node it is about as `file:line:col: message` (positions from libyaml's
//! event marks, as Go's yaml.v3 reports them).

use std::collections::BTreeMap;
use std::fmt;

use argus_schemas::Labels;

use crate::template::{AlertTemplate, parse_prom_duration};

/// One error of a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    /// 1-based; 0 when the error has no position.
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.msg)
        } else {
            write!(f, "{}: {}", self.file, self.msg)
        }
    }
}

/// Which query language a group's expressions are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupKind {
    /// PromQL over the metric window.
    #[default]
    Metrics,
    /// LogQL metric queries over log streams (and node events, findings).
    Logs,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Metrics => "metrics",
            GroupKind::Logs => "logs",
        }
    }
}

/// A parsed rule expression.
#[derive(Debug, Clone)]
pub enum RuleExpr {
    PromQL {
        text: String,
        expr: Box<promql_parser::parser::Expr>,
    },
    LogQL {
        text: String,
        expr: Box<argus_query::logql::ast::Expr>,
    },
}

impl RuleExpr {
    /// Parses `text` in the language of `kind`; the error is the parser's message.
    /// LogQL rule expressions must be metric queries.
    pub fn parse(kind: GroupKind, text: &str) -> Result<RuleExpr, String> {
        match kind {
            GroupKind::Metrics => promql_parser::parser::parse(text).map(|e| RuleExpr::PromQL {
                text: text.to_string(),
                expr: Box::new(e),
            }),
            GroupKind::Logs => match argus_query::logql::parse(text) {
                Ok(e @ argus_query::logql::ast::Expr::Metric(_)) => Ok(RuleExpr::LogQL {
                    text: text.to_string(),
                    expr: Box::new(e),
                }),
                Ok(_) => Err(
                    "a log query cannot be a rule expression: use a metric query \
                     such as count_over_time({...}[5m])"
                        .into(),
                ),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        match self {
            RuleExpr::PromQL { text, .. } | RuleExpr::LogQL { text, .. } => text,
        }
    }

    pub fn kind(&self) -> GroupKind {
        match self {
            RuleExpr::PromQL { .. } => GroupKind::Metrics,
            RuleExpr::LogQL { .. } => GroupKind::Logs,
        }
    }
}

/// Alerting or recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Alerting,
    Recording,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    /// The `alert` or `record` name.
    pub name: String,
    pub expr: RuleExpr,
    /// `for`, milliseconds.
    pub for_ms: i64,
    /// `keep_firing_for`, milliseconds.
    pub keep_firing_for_ms: i64,
    /// The rule's own labels (group labels are merged in by [`RuleGroup::rule_labels`]).
    pub labels: Labels,
    pub annotations: Labels,
    /// Where the rule starts in the file (1-based).
    pub line: usize,
}

/// A group of rules evaluated in order at one interval.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    pub name: String,
    pub kind: GroupKind,
    /// `interval`, milliseconds; None: the global evaluation interval.
    pub interval_ms: Option<i64>,
    /// `query_offset`, milliseconds; None: the global rule query offset.
    pub query_offset_ms: Option<i64>,
    /// `limit`; 0 is no limit.
    pub limit: usize,
    /// Group labels (Prometheus 3.x), added to every rule; rule labels win.
    pub labels: Labels,
    pub rules: Vec<Rule>,
    pub line: usize,
}

impl RuleGroup {
    /// The labels of rule `i`: the group's labels overridden by the rule's.
    pub fn rule_labels(&self, i: usize) -> Labels {
        let mut l = self.labels.clone();
        for (k, v) in self.rules[i].labels.iter() {
            l.insert(k, v);
        }
        l
    }
}

/// A parsed rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub file: String,
    pub groups: Vec<RuleGroup>,
}

/// Reads and parses a rule file.
pub fn parse_file(path: &str) -> Result<RuleFile, Vec<RuleError>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) => Err(vec![RuleError {
            file: path.to_string(),
            line: 0,
            col: 0,
            msg: e.to_string(),
        }]),
    }
}

/// Parses and validates rule file text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<RuleFile, Vec<RuleError>> {
    let mut cx = Cx {
        file,
        errs: Vec::new(),
    };
    let root = match yaml::parse(text) {
        Ok(r) => r,
        Err(e) => {
            cx.err_at(e.line, e.col, format!("yaml: {}", e.msg));
            return Err(cx.errs);
        }
    };
    let raw = decode_file(&mut cx, root.as_ref());
    if !cx.errs.is_empty() {
        return Err(cx.errs);
    }
    let groups = validate(&mut cx, raw);
    if cx.errs.is_empty() {
        Ok(RuleFile {
            file: file.to_string(),
            groups,
        })
    } else {
        Err(cx.errs)
    }
}

/// Rules with the same name and labels (promtool's duplicate-rule check): each
/// duplicated (name, labels) once, sorted.
pub fn duplicate_rules(f: &RuleFile) -> Vec<(String, Labels)> {
    let mut all: Vec<(String, Labels)> = f
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| (r.name.clone(), r.labels.clone())))
        .collect();
    all.sort();
    let mut dups: Vec<(String, Labels)> = Vec::new();
    for w in all.windows(2) {
        if w[0] == w[1] && dups.last() != Some(&w[1]) {
            dups.push(w[1].clone());
        }
    }
    dups
}

// ---------------------------------------------------------------- decoding

struct Cx<'a> {
    file: &'a str,
    errs: Vec<RuleError>,
}

impl Cx<'_> {
    fn err_at(&mut self, line: usize, col: usize, msg: String) {
        self.errs.push(RuleError {
            file: self.file.to_string(),
            line,
            col,
            msg,
        });
    }
    fn err(&mut self, n: &yaml::Node, msg: String) {
        self.err_at(n.line, n.col, msg);
    }
}

/// A scalar with its position.
#[derive(Debug, Clone, Default)]
struct Pos<T> {
    v: T,
    line: usize,
    col: usize,
    present: bool,
}

#[derive(Debug, Default)]
struct RawRule {
    record: Pos<String>,
    alert: Pos<String>,
    expr: Pos<String>,
    for_ms: i64,
    keep_firing_for_ms: i64,
    labels: Vec<(Pos<String>, Pos<String>)>,
    annotations: Vec<(Pos<String>, Pos<String>)>,
    line: usize,
    col: usize,
}

#[derive(Debug, Default)]
struct RawGroup {
    name: String,
    kind: Pos<String>,
    interval_ms: Option<i64>,
    query_offset_ms: Option<i64>,
    limit: i64,
    labels: Vec<(Pos<String>, Pos<String>)>,
    rules: Vec<RawRule>,
    line: usize,
    col: usize,
}

fn node_desc(n: &yaml::Node) -> String {
    match &n.kind {
        yaml::Kind::Seq(_) => "!!seq".into(),
        yaml::Kind::Map(_) => "!!map".into(),
        yaml::Kind::Scalar { value, plain } => {
            let tag = if !plain {
                "!!str"
            } else if value.parse::<i64>().is_ok() {
                "!!int"
            } else if value.parse::<f64>().is_ok() {
                "!!float"
            } else if matches!(value.as_str(), "true" | "false" | "True" | "False") {
                "!!bool"
            } else {
                "!!str"
            };
            format!("{tag} `{value}`")
        }
    }
}

fn is_null(n: &yaml::Node) -> bool {
    matches!(&n.kind, yaml::Kind::Scalar { value, plain: true }
        if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
}

/// The entries of a mapping node, checking for duplicate keys; None (with an error)
/// when `n` is not a mapping.
fn map_entries<'n>(
    cx: &mut Cx<'_>,
    n: &'n yaml::Node,
    ty: &str,
) -> Option<Vec<(&'n yaml::Node, &'n str, &'n yaml::Node)>> {
    match &n.kind {
        yaml::Kind::Map(entries) => {
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            let mut out = Vec::new();
            for (k, v) in entries {
                let key = match &k.kind {
                    yaml::Kind::Scalar { value, .. } => value.as_str(),
                    _ => {
                        cx.err(k, format!("cannot unmarshal {} into string", node_desc(k)));
                        continue;
                    }
                };
                if let Some(prev) = seen.insert(key, k.line) {
                    cx.err(
                        k,
                        format!("mapping key \"{key}\" already defined at line {prev}"),
                    );
                    continue;
                }
                out.push((k, key, v));
            }
            Some(out)
        }
        _ if is_null(n) => Some(Vec::new()),
        _ => {
            cx.err(n, format!("cannot unmarshal {} into {ty}", node_desc(n)));
            None
        }
    }
}

fn scalar_string(cx: &mut Cx<'_>, n: &yaml::Node) -> Pos<String> {
    match &n.kind {
        yaml::Kind::Scalar { value, .. } => Pos {
            v: if is_null(n) {
                String::new()
            } else {
                value.clone()
            },
            line: n.line,
            col: n.col,
            present: true,
        },
        _ => {
            cx.err(n, format!("cannot unmarshal {} into string", node_desc(n)));
            Pos::default()
        }
    }
}

fn duration(cx: &mut Cx<'_>, n: &yaml::Node) -> i64 {
    if is_null(n) {
        return 0;
    }
    let s = scalar_string(cx, n);
    if !s.present {
        return 0;
    }
    match parse_prom_duration(&s.v) {
        Ok(ms) => ms,
        Err(e) => {
            cx.err(n, e);
            0
        }
    }
}

fn string_map(cx: &mut Cx<'_>, n: &yaml::Node) -> Vec<(Pos<String>, Pos<String>)> {
    let Some(entries) = map_entries(cx, n, "map[string]string") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, key, v) in entries {
        let val = scalar_string(cx, v);
        out.push((
            Pos {
                v: key.to_string(),
                line: k.line,
                col: k.col,
                present: true,
            },
            val,
        ));
    }
    out
}

fn decode_file(cx: &mut Cx<'_>, root: Option<&yaml::Node>) -> Vec<RawGroup> {
    let Some(root) = root else {
        return Vec::new();
    };
    let Some(entries) = map_entries(cx, root, "rulefmt.RuleGroups") else {
        return Vec::new();
    };
    let mut groups = Vec::new();
    for (k, key, v) in entries {
        if key != "groups" {
            cx.err(
                k,
                format!("field {key} not found in type rulefmt.RuleGroups"),
            );
            continue;
        }
        match &v.kind {
            yaml::Kind::Seq(items) => {
                for g in items {
                    groups.push(decode_group(cx, g));
                }
            }
            _ if is_null(v) => {}
            _ => cx.err(
                v,
                format!("cannot unmarshal {} into []rulefmt.RuleGroup", node_desc(v)),
            ),
        }
    }
    groups
}

fn decode_group(cx: &mut Cx<'_>, n: &yaml::Node) -> RawGroup {
    let mut g = RawGroup {
        line: n.line,
        col: n.col,
        ..Default::default()
    };
    let Some(entries) = map_entries(cx, n, "rulefmt.RuleGroup") else {
        return g;
    };
    for (k, key, v) in entries {
        match key {
            "name" => g.name = scalar_string(cx, v).v,
            "type" => g.kind = scalar_string(cx, v),
            "interval" => g.interval_ms = Some(duration(cx, v)),
            "query_offset" => g.query_offset_ms = Some(duration(cx, v)),
            "limit" => {
                if !is_null(v) {
                    let s = scalar_string(cx, v);
                    match s.v.parse::<i64>() {
                        Ok(l) => g.limit = l,
                        Err(_) if s.present => {
                            cx.err(v, format!("cannot unmarshal {} into int", node_desc(v)))
                        }
                        Err(_) => {}
                    }
                }
            }
            "labels" => g.labels = string_map(cx, v),
            "rules" => match &v.kind {
                yaml::Kind::Seq(items) => {
                    for r in items {
                        g.rules.push(decode_rule(cx, r));
                    }
                }
                _ if is_null(v) => {}
                _ => cx.err(
                    v,
                    format!("cannot unmarshal {} into []rulefmt.Rule", node_desc(v)),
                ),
            },
            _ => cx.err(
                k,
                format!("field {key} not found in type rulefmt.RuleGroup"),
            ),
        }
    }
    g
}

fn decode_rule(cx: &mut Cx<'_>, n: &yaml::Node) -> RawRule {
    let mut r = RawRule {
        line: n.line,
        col: n.col,
        ..Default::default()
    };
    let Some(entries) = map_entries(cx, n, "rulefmt.Rule") else {
        return r;
    };
    for (k, key, v) in entries {
        match key {
            "record" => r.record = scalar_string(cx, v),
            "alert" => r.alert = scalar_string(cx, v),
            "expr" => r.expr = scalar_string(cx, v),
            "for" => r.for_ms = duration(cx, v),
            "keep_firing_for" => r.keep_firing_for_ms = duration(cx, v),
            "labels" => r.labels = string_map(cx, v),
            "annotations" => r.annotations = string_map(cx, v),
            _ => cx.err(k, format!("field {key} not found in type rulefmt.Rule")),
        }
    }
    r
}

// ---------------------------------------------------------------- validation

/// Prometheus' legacy metric name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Prometheus' legacy label name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn validate(cx: &mut Cx<'_>, raw: Vec<RawGroup>) -> Vec<RuleGroup> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for g in raw {
        if g.name.is_empty() {
            cx.err_at(g.line, g.col, "Groupname must not be empty".into());
        }
        if seen.contains(&g.name) {
            cx.err_at(
                g.line,
                g.col,
                format!("groupname: \"{}\" is repeated in the same file", g.name),
            );
        }
        seen.push(g.name.clone());
        let mut labels = Labels::new();
        for (k, v) in &g.labels {
            if !is_valid_label_name(&k.v) || k.v == "__name__" {
                cx.err_at(k.line, k.col, format!("invalid label name: {}", k.v));
            }
            labels.insert(k.v.clone(), v.v.clone());
        }
        let kind = match g.kind.v.as_str() {
            "" | "metrics" => GroupKind::Metrics,
            "logs" => GroupKind::Logs,
            other => {
                cx.err_at(
                    g.kind.line,
                    g.kind.col,
                    format!(
                        "group \"{}\": invalid type \"{other}\": must be metrics or logs",
                        g.name
                    ),
                );
                GroupKind::Metrics
            }
        };
        if g.limit < 0 {
            cx.err_at(
                g.line,
                g.col,
                format!("group \"{}\": limit must not be negative", g.name),
            );
        }
        let mut rules = Vec::new();
        for (i, r) in g.rules.into_iter().enumerate() {
            if let Some(rule) = validate_rule(cx, &g.name, i + 1, kind, r) {
                rules.push(rule);
            }
        }
        out.push(RuleGroup {
            name: g.name,
            kind,
            interval_ms: g.interval_ms.filter(|&i| i > 0),
            query_offset_ms: g.query_offset_ms,
            limit: g.limit.max(0) as usize,
            labels,
            rules,
            line: g.line,
        });
    }
    out
}

fn validate_rule(
    cx: &mut Cx<'_>,
    group: &str,
    idx: usize,
    kind: GroupKind,
    r: RawRule,
) -> Option<Rule> {
    let name = if r.alert.v.is_empty() {
        r.record.v.clone()
    } else {
        r.alert.v.clone()
    };
    let before = cx.errs.len();
    let prefix = format!("group {group:?}, rule {idx}, {name:?}");
    let (rl, rc) = (r.line, r.col);
    let at = |p: &Pos<String>| {
        if p.present { (p.line, p.col) } else { (rl, rc) }
    };
    let mut e = |(line, col): (usize, usize), msg: String| {
        cx.errs.push(RuleError {
            file: cx.file.to_string(),
            line,
            col,
            msg: format!("{prefix}: {msg}"),
        });
    };
    let record_pos = at(&r.record);
    let record_or_alert = if r.record.present {
        record_pos
    } else {
        at(&r.alert)
    };
    if !r.record.v.is_empty() && !r.alert.v.is_empty() {
        e(
            record_pos,
            "only one of 'record' and 'alert' must be set".into(),
        );
    }
    if r.record.v.is_empty() && r.alert.v.is_empty() {
        e(
            record_or_alert,
            "one of 'record' or 'alert' must be set".into(),
        );
    }
    let mut expr = None;
    if r.expr.v.is_empty() {
        e(at(&r.expr), "field 'expr' must be set in rule".into());
    } else {
        match RuleExpr::parse(kind, &r.expr.v) {
            Ok(x) => expr = Some(x),
            Err(msg) => e(at(&r.expr), format!("could not parse expression: {msg}")),
        }
    }
    if !r.record.v.is_empty() {
        if !r.annotations.is_empty() {
            e(
                record_pos,
                "invalid field 'annotations' in recording rule".into(),
            );
        }
        if r.for_ms != 0 {
            e(record_pos, "invalid field 'for' in recording rule".into());
        }
        if r.keep_firing_for_ms != 0 {
            e(
                record_pos,
                "invalid field 'keep_firing_for' in recording rule".into(),
            );
        }
        if !is_valid_metric_name(&r.record.v) {
            e(
                record_pos,
                format!("invalid recording rule name: {}", r.record.v),
            );
        }
    }
    let mut labels = Labels::new();
    for (k, v) in &r.labels {
        if !is_valid_label_name(&k.v) || k.v == "__name__" {
            e((k.line, k.col), format!("invalid label name: {}", k.v));
        }
        labels.insert(k.v.clone(), v.v.clone());
    }
    let mut annotations = Labels::new();
    for (k, v) in &r.annotations {
        if !is_valid_label_name(&k.v) {
            e((k.line, k.col), format!("invalid annotation name: {}", k.v));
        }
        annotations.insert(k.v.clone(), v.v.clone());
    }
    if !r.alert.v.is_empty() {
        for (what, list) in [("label", &r.labels), ("annotation", &r.annotations)] {
            for (k, v) in list {
                if let Err(msg) = AlertTemplate::parse(&r.alert.v, &v.v) {
                    e(at(v), format!("{what} {:?}: {msg}", k.v));
                }
            }
        }
    }
    if cx.errs.len() > before {
        return None;
    }
    Some(Rule {
        kind: if r.alert.v.is_empty() {
            RuleKind::Recording
        } else {
            RuleKind::Alerting
        },
        name,
        expr: expr?,
        for_ms: r.for_ms,
        keep_firing_for_ms: r.keep_firing_for_ms,
        labels,
        annotations,
        line: r.line,
    })
}

// ---------------------------------------------------------------- YAML nodes

/// A YAML document as a tree of nodes with their positions, read from libyaml's
/// events (the parser Go's yaml.v3 ports, so lines and columns match promtool's).
mod yaml {
    use std::collections::HashMap;
    use std::mem::MaybeUninit;
    use std::ptr::addr_of_mut;

    use unsafe_libyaml as unsafe_sys;

    #[derive(Debug, Clone)]
    pub enum Kind {
        Scalar { value: String, plain: bool },
        Seq(Vec<Node>),
        Map(Vec<(Node, Node)>),
    }

    #[derive(Debug, Clone)]
    pub struct Node {
        pub kind: Kind,
        /// 1-based.
        pub line: usize,
        pub col: usize,
    }

    #[derive(Debug)]
    pub struct SyntaxError {
        pub line: usize,
        pub col: usize,
        pub msg: String,
    }

    enum Ev {
        StreamStart,
        StreamEnd,
        DocStart,
        DocEnd,
        Alias(String),
        Scalar {
            anchor: Option<String>,
            value: String,
            plain: bool,
        },
        SeqStart(Option<String>),
        SeqEnd,
        MapStart(Option<String>),
        MapEnd,
    }

    /// Owns a libyaml parser reading from a borrowed string.
    struct Parser<'a> {
        p: Box<MaybeUninit<unsafe_sys::yaml_parser_t>>,
        _input: &'a [u8],
        done: bool,
    }

    fn cstr(p: *const u8) -> Option<String> {
        if p.is_null() {
            return None;
        }
        // SAFETY: libyaml's strings are NUL-terminated and live as long as the event.
        let s = unsafe { std::ffi::CStr::from_ptr(p.cast()) };
        Some(s.to_string_lossy().into_owned())
    }

    impl<'a> Parser<'a> {
        fn new(input: &'a str) -> Result<Parser<'a>, SyntaxError> {
            let mut p = Box::new(MaybeUninit::<unsafe_sys::yaml_parser_t>::uninit());
            // SAFETY: initialize writes the whole struct; the input outlives the
            // parser (borrowed for 'a) and the box keeps the parser at one address.
            unsafe {
                let ptr = p.as_mut_ptr();
                if unsafe_sys::yaml_parser_initialize(ptr).fail {
                    return Err(SyntaxError {
                        line: 0,
                        col: 0,
                        msg: "cannot initialise the YAML parser".into(),
                    });
                }
                unsafe_sys::yaml_parser_set_encoding(ptr, unsafe_sys::YAML_UTF8_ENCODING);
                unsafe_sys::yaml_parser_set_input_string(ptr, input.as_ptr(), input.len() as u64);
            }
            Ok(Parser {
                p,
                _input: input.as_bytes(),
                done: false,
            })
        }

        fn next(&mut self) -> Result<(Ev, usize, usize), SyntaxError> {
            let mut event = MaybeUninit::<unsafe_sys::yaml_event_t>::uninit();
            // SAFETY: the parser is initialised; the event is read only after a
            // successful parse and deleted once converted.
            unsafe {
                let parser = self.p.as_mut_ptr();
                if self.done || unsafe_sys::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                    self.done = true;
                    let pr = &*parser;
                    let msg = cstr(pr.problem.cast())
                        .unwrap_or_else(|| "unknown problem parsing YAML content".into());
                    let mark = pr.problem_mark;
                    return Err(SyntaxError {
                        line: mark.line as usize + 1,
                        col: mark.column as usize + 1,
                        msg,
                    });
                }
                let ev = addr_of_mut!(*event.as_mut_ptr());
                let mark = (*ev).start_mark;
                let out = match (*ev).type_ {
                    unsafe_sys::YAML_STREAM_START_EVENT => Ev::StreamStart,
                    unsafe_sys::YAML_STREAM_END_EVENT => Ev::StreamEnd,
                    unsafe_sys::YAML_DOCUMENT_START_EVENT => Ev::DocStart,
                    unsafe_sys::YAML_DOCUMENT_END_EVENT => Ev::DocEnd,
                    unsafe_sys::YAML_ALIAS_EVENT => {
                        Ev::Alias(cstr((*ev).data.alias.anchor).unwrap_or_default())
                    }
                    unsafe_sys::YAML_SCALAR_EVENT => {
                        let s = (*ev).data.scalar;
                        let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                        Ev::Scalar {
                            anchor: cstr(s.anchor),
                            value: String::from_utf8_lossy(bytes).into_owned(),
                            plain: s.style == unsafe_sys::YAML_PLAIN_SCALAR_STYLE
                                && s.tag.is_null(),
                        }
                    }
                    unsafe_sys::YAML_SEQUENCE_START_EVENT => {
                        Ev::SeqStart(cstr((*ev).data.sequence_start.anchor))
                    }
                    unsafe_sys::YAML_SEQUENCE_END_EVENT => Ev::SeqEnd,
                    unsafe_sys::YAML_MAPPING_START_EVENT => {
                        Ev::MapStart(cstr((*ev).data.mapping_start.anchor))
                    }
                    unsafe_sys::YAML_MAPPING_END_EVENT => Ev::MapEnd,
                    _ => Ev::StreamEnd,
                };
                unsafe_sys::yaml_event_delete(ev);
                Ok((out, mark.line as usize + 1, mark.column as usize + 1))
            }
        }
    }

    impl Drop for Parser<'_> {
        fn drop(&mut self) {
            // SAFETY: the parser was initialised in `new`.
            unsafe { unsafe_sys::yaml_parser_delete(self.p.as_mut_ptr()) }
        }
    }

    enum Frame {
        Seq(Vec<Node>, usize, usize, Option<String>),
        Map(
            Vec<(Node, Node)>,
            Option<Node>,
            usize,
            usize,
            Option<String>,
        ),
    }

    /// Parses the first document of `text`; None when it is empty.
    pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
        let mut p = Parser::new(text)?;
        let mut anchors: HashMap<String, Node> = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut root: Option<Node> = None;
        loop {
            let (ev, line, col) = p.next()?;
            let node = match ev {
                Ev::StreamStart | Ev::DocStart => continue,
                Ev::StreamEnd | Ev::DocEnd => return Ok(root),
                Ev::Alias(a) => match anchors.get(&a) {
                    Some(n) => n.clone(),
                    None => {
                        return Err(SyntaxError {
                            line,
                            col,
                            msg: format!("unknown anchor '{a}' referenced"),
                        });
                    }
                },
                Ev::Scalar {
                    anchor,
                    value,
                    plain,
                } => {
                    let n = Node {
                        kind: Kind::Scalar { value, plain },
                        line,
                        col,
                    };
                    if let Some(a) = anchor {
                        anchors.insert(a, n.clone());
                    }
                    n
                }
                Ev::SeqStart(anchor) => {
                    stack.push(Frame::Seq(Vec::new(), line, col, anchor));
                    continue;
                }
                Ev::MapStart(anchor) => {
                    stack.push(Frame::Map(Vec::new(), None, line, col, anchor));
                    continue;
                }
                Ev::SeqEnd | Ev::MapEnd => {
                    let (n, anchor) = match stack.pop() {
                        Some(Frame::Seq(items, l, c, a)) => (
                            Node {
                                kind: Kind::Seq(items),
                                line: l,
                                col: c,
                            },
                            a,
                        ),
                        Some(Frame::Map(entries, _, l, c, a)) => (
                            Node {
                                kind: Kind::Map(entries),
                                line: l,
                                col: c,
                            },
                            a,
                        ),
                        None => continue,
                    };
                    if let Some(a) = anchor {
                        anchors.insert(a, n.clone());
                    }
                    n
                }
            };
            match stack.last_mut() {
                None => {
                    if root.is_none() {
                        root = Some(node);
                    }
                }
                Some(Frame::Seq(items, ..)) => items.push(node),
                Some(Frame::Map(entries, key, ..)) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
            }
        }
    }
}
