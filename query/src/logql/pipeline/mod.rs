//! The log pipeline: runs a query's stages (line filters, parsers, label filters,
//! formatters, `drop`/`keep`, `decolorize`) over one line at a time, and extracts
//! unwrapped sample values.
//!
//! Semantics follow Loki 3.x: labels live in three categories (stream, structured
//! metadata, extracted), parsers suffix names that clash with stream labels or
//! structured metadata with `_extracted`, a label extracted once in a line is not
//! overwritten by a later parser (except by `json`/`logfmt` with parameters), and
//! failures set `__error__` / `__error_details__` instead of dropping the line.
//!
//! Submodules: [`line_filter`] (`|=`, `|~`, `|>`, `ip()`), [`pattern`] (Loki's
//! pattern expressions), [`ip`], [`json`] (`json`, `unpack`), [`logfmt`],
//! [`label_filter`] (label filters and Go value conversions) and [`template`] (a
//! Go `text/template` engine with Loki's functions).

pub mod ip;
pub mod json;
pub mod label_filter;
pub mod line_filter;
pub mod logfmt;
pub mod pattern;
pub mod template;

use std::borrow::Cow;
use std::sync::LazyLock;

use argus_schemas::Labels;
use regex::Regex;

use crate::error::{QueryError, Result};
use crate::logql::ast::{LabelFmt, LabelSelect, LineFilter, Parser, Stage, Unwrap, UnwrapConv};
use crate::logql::matcher::Compiled;

use label_filter::{LabelFilter, LabelSource};
use line_filter::CompiledLineFilter;
use template::Template;

/// The error label.
pub const ERROR_LABEL: &str = "__error__";
/// The error details label.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// Loki's marker label that keeps errors through hinted parsers.
pub const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

/// `__error__` values, as Loki names them.
pub const ERR_JSON: &str = "JSONParserErr";
pub const ERR_LOGFMT: &str = "LogfmtParserErr";
pub const ERR_SAMPLE_EXTRACTION: &str = "SampleExtractionErr";
pub const ERR_LABEL_FILTER: &str = "LabelFilterErr";
pub const ERR_TEMPLATE_FORMAT: &str = "TemplateFormatErr";

const DUPLICATE_SUFFIX: &str = "_extracted";

/// A line that came through the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The line after `line_format` / `decolorize` (unchanged otherwise).
    pub line: String,
    /// Stream labels + structured metadata + extracted labels (with `__error__` /
    /// `__error_details__` when a stage failed), after `label_format`/`drop`/`keep`.
    pub labels: Labels,
}

/// A compiled pipeline. Cheap to clone; holds no per-stream state.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Line filters before any other stage: run on the raw line before any work.
    leading: std::sync::Arc<[CompiledLineFilter]>,
    stages: std::sync::Arc<[CStage]>,
}

/// A compiled stage.
#[derive(Debug)]
enum CStage {
    LineFilter(CompiledLineFilter),
    Json(json::JsonParser),
    JsonExpr(json::JsonExprParser),
    Unpack,
    Logfmt(logfmt::LogfmtParser),
    Regexp {
        re: Regex,
        /// (capture group index, sanitized label name)
        names: Vec<(usize, String)>,
    },
    Pattern(pattern::Matcher),
    LabelFilter(LabelFilter),
    LineFormat(LineFormat),
    LabelFormat(Vec<LabelFormatC>),
    Drop(Vec<SelectC>),
    Keep(Vec<SelectC>),
    Decolorize,
}

#[derive(Debug)]
struct LineFormat {
    tmpl: Template,
    /// `{{.name}}` alone: Loki reads the label directly.
    simple_key: Option<String>,
}

#[derive(Debug)]
enum LabelFormatC {
    Rename { dst: String, src: String },
    Template { dst: String, tmpl: Template },
}

#[derive(Debug)]
enum SelectC {
    Name(String),
    Matcher(Compiled),
}

impl Pipeline {
    /// Compiles stages; errors name the bad regex, pattern, template or CIDR.
    pub fn new(stages: &[Stage]) -> Result<Pipeline> {
        let mut compiled = Vec::with_capacity(stages.len());
        for s in stages {
            compiled.push(compile_stage(s)?);
        }
        let n_leading = compiled
            .iter()
            .take_while(|s| matches!(s, CStage::LineFilter(_)))
            .count();
        let rest = compiled.split_off(n_leading);
        let leading = compiled
            .into_iter()
            .map(|s| match s {
                CStage::LineFilter(f) => f,
                _ => unreachable!("only line filters are taken as leading"),
            })
            .collect::<Vec<_>>();
        Ok(Pipeline {
            leading: leading.into(),
            stages: rest.into(),
        })
    }

    /// Whether the pipeline has no stage at all.
    pub fn is_empty(&self) -> bool {
        self.leading.is_empty() && self.stages.is_empty()
    }

    /// Runs only the leading line filters: whether the raw line passes them.
    pub fn line_passes_filters(&self, line: &str) -> bool {
        self.leading.iter().all(|f| f.matches(line))
    }

    /// Runs one line; `None` when a filter drops it.
    pub fn process(
        &self,
        ts: i64,
        line: &str,
        stream: &Labels,
        metadata: &Labels,
    ) -> Option<Processed> {
        if !self.line_passes_filters(line) {
            return None;
        }
        let mut b = Builder::new(stream);
        b.add_metadata(metadata);
        let mut line: Cow<'_, str> = Cow::Borrowed(line);
        for stage in self.stages.iter() {
            if !run_stage(stage, ts, &mut line, &mut b) {
                return None;
            }
        }
        Some(Processed {
            line: line.into_owned(),
            labels: b.into_labels(),
        })
    }
}

fn compile_stage(s: &Stage) -> Result<CStage> {
    Ok(match s {
        Stage::LineFilter(f) => CStage::LineFilter(CompiledLineFilter::new(f)?),
        Stage::Parser(Parser::Json(params)) if params.is_empty() => CStage::Json(json::JsonParser),
        Stage::Parser(Parser::Json(params)) => CStage::JsonExpr(json::JsonExprParser::new(params)?),
        Stage::Parser(Parser::Unpack) => CStage::Unpack,
        Stage::Parser(Parser::Logfmt {
            strict,
            keep_empty,
            params,
        }) => CStage::Logfmt(logfmt::LogfmtParser::new(*strict, *keep_empty, params)?),
        Stage::Parser(Parser::Regexp(re)) => compile_regexp_parser(re)?,
        Stage::Parser(Parser::Pattern(p)) => CStage::Pattern(pattern::Matcher::new(p)?),
        Stage::LabelFilter(e) => CStage::LabelFilter(LabelFilter::new(e)?),
        Stage::LineFormat(t) => {
            let tmpl = Template::new("line", t)
                .map_err(|e| QueryError::Invalid(format!("invalid line template: {e}")))?;
            let simple_key = tmpl.simple_field().map(str::to_string);
            CStage::LineFormat(LineFormat { tmpl, simple_key })
        }
        Stage::LabelFormat(fmts) => {
            let mut seen: Vec<&str> = Vec::new();
            let mut out = Vec::with_capacity(fmts.len());
            for f in fmts {
                let dst = match f {
                    LabelFmt::Rename { dst, .. } | LabelFmt::Template { dst, .. } => dst,
                };
                if dst == ERROR_LABEL {
                    return Err(QueryError::Invalid(format!(
                        "{ERROR_LABEL} cannot be formatted"
                    )));
                }
                if seen.contains(&dst.as_str()) {
                    return Err(QueryError::Invalid(format!(
                        "multiple label name '{dst}' not allowed in a single format operation"
                    )));
                }
                seen.push(dst);
                out.push(match f {
                    LabelFmt::Rename { dst, src } => LabelFormatC::Rename {
                        dst: dst.clone(),
                        src: src.clone(),
                    },
                    LabelFmt::Template { dst, template } => LabelFormatC::Template {
                        dst: dst.clone(),
                        tmpl: Template::new("label", template).map_err(|e| {
                            QueryError::Invalid(format!("invalid template for label '{dst}': {e}"))
                        })?,
                    },
                });
            }
            CStage::LabelFormat(out)
        }
        Stage::Drop(sel) => CStage::Drop(compile_selects(sel)?),
        Stage::Keep(sel) => CStage::Keep(compile_selects(sel)?),
        Stage::Decolorize => CStage::Decolorize,
    })
}

fn compile_selects(sel: &[LabelSelect]) -> Result<Vec<SelectC>> {
    sel.iter()
        .map(|s| {
            Ok(match s {
                LabelSelect::Name(n) => SelectC::Name(n.clone()),
                LabelSelect::Matcher(m) => SelectC::Matcher(Compiled::new(m)?),
            })
        })
        .collect()
}

fn compile_regexp_parser(re: &str) -> Result<CStage> {
    let regex = Regex::new(re).map_err(|e| {
        QueryError::Invalid(format!("invalid regexp parser expression {re:?}: {e}"))
    })?;
    let mut names = Vec::new();
    for (i, n) in regex.capture_names().enumerate() {
        if let Some(n) = n {
            let s = sanitize_label_key(n, true);
            if !s.is_empty() {
                names.push((i, s));
            }
        }
    }
    if names.is_empty() {
        return Err(QueryError::Invalid(format!(
            "invalid regexp parser expression {re:?}: at least one named capture must be supplied"
        )));
    }
    Ok(CStage::Regexp { re: regex, names })
}

/// Runs one stage; false when the line is dropped.
fn run_stage(stage: &CStage, ts: i64, line: &mut Cow<'_, str>, b: &mut Builder<'_>) -> bool {
    match stage {
        CStage::LineFilter(f) => f.matches(line),
        CStage::Json(p) => {
            p.process(line, b);
            true
        }
        CStage::JsonExpr(p) => {
            p.process(line, b);
            true
        }
        CStage::Unpack => {
            if let Some(entry) = json::unpack(line, b) {
                *line = Cow::Owned(entry);
            }
            true
        }
        CStage::Logfmt(p) => {
            p.process(line, b);
            true
        }
        CStage::Regexp { re, names } => {
            if let Some(caps) = re.captures(line) {
                for (i, name) in names {
                    let key = b.parser_key(name);
                    if b.extracted(&key) {
                        continue;
                    }
                    let v = caps.get(*i).map_or("", |m| m.as_str());
                    b.set_parsed(key.into_owned(), v.to_string());
                }
            }
            true
        }
        CStage::Pattern(m) => {
            let names = m.names();
            let mut caps: Vec<(usize, usize)> = Vec::with_capacity(names.len());
            m.matches(line, &mut caps);
            for (i, (s, e)) in caps.into_iter().enumerate() {
                let key = b.parser_key(&names[i]);
                if b.extracted(&key) {
                    continue;
                }
                let v = line[s..e].to_string();
                b.set_parsed(key.into_owned(), v);
            }
            true
        }
        CStage::LabelFilter(f) => f.process(b),
        CStage::LineFormat(lf) => {
            if let Some(k) = &lf.simple_key {
                let v = b.get(k).unwrap_or("").to_string();
                *line = Cow::Owned(v);
                return true;
            }
            let data = BuilderData(b);
            match lf.tmpl.execute(&data, line, ts) {
                Ok(out) => *line = Cow::Owned(out),
                Err(e) => b.set_err(ERR_TEMPLATE_FORMAT, Some(e.to_string())),
            }
            true
        }
        CStage::LabelFormat(fmts) => {
            label_format(fmts, ts, line, b);
            true
        }
        CStage::Drop(sel) => {
            drop_labels(sel, b);
            true
        }
        CStage::Keep(sel) => {
            keep_labels(sel, b);
            true
        }
        CStage::Decolorize => {
            if line.contains(['\u{1b}', '\u{9b}']) {
                let out = ANSI.replace_all(line, "").into_owned();
                *line = Cow::Owned(out);
            }
            true
        }
    }
}

static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        "[\u{001B}\u{009B}][\\[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u{0007})|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))",
    )
    .expect("ANSI regex compiles")
});

fn label_format(fmts: &[LabelFormatC], ts: i64, line: &str, b: &mut Builder<'_>) {
    // Loki evaluates the templates against one snapshot of the labels, taken when the
    // first template runs (renames before it are visible; the stage's other results
    // are not). An empty snapshot is taken again, as Loki does.
    let mut snapshot: Option<Vec<(String, String)>> = None;
    for f in fmts {
        match f {
            LabelFormatC::Rename { dst, src } => {
                if let Some(v) = b.get(src).map(str::to_string) {
                    b.set_parsed(dst.clone(), v);
                    b.del(src);
                }
            }
            LabelFormatC::Template { dst, tmpl } => {
                if snapshot.as_ref().is_none_or(|s| s.is_empty()) {
                    snapshot = Some(b.snapshot());
                }
                let snap = SnapshotData(snapshot.as_deref().unwrap_or(&[]));
                match tmpl.execute(&snap, line, ts) {
                    Ok(v) => b.set_parsed(dst.clone(), v),
                    Err(e) => b.set_err(ERR_TEMPLATE_FORMAT, Some(e.to_string())),
                }
            }
        }
    }
}

fn drop_labels(sel: &[SelectC], b: &mut Builder<'_>) {
    for s in sel {
        match s {
            SelectC::Name(n) => match n.as_str() {
                ERROR_LABEL => b.err.clear(),
                ERROR_DETAILS_LABEL => b.err_details.clear(),
                _ => {
                    if b.get(n).is_some() {
                        b.del(n);
                    }
                }
            },
            SelectC::Matcher(m) => match m.name.as_str() {
                ERROR_LABEL => {
                    if m.matches_value(&b.err) {
                        b.err.clear();
                    }
                }
                ERROR_DETAILS_LABEL => {
                    if m.matches_value(&b.err_details) {
                        b.err_details.clear();
                    }
                }
                _ => {
                    if m.matches_value(b.get(&m.name).unwrap_or("")) {
                        b.del(&m.name);
                    }
                }
            },
        }
    }
}

fn keep_labels(sel: &[SelectC], b: &mut Builder<'_>) {
    if sel.is_empty() {
        return;
    }
    let current = b.snapshot();
    for (name, value) in &current {
        if matches!(
            name.as_str(),
            ERROR_LABEL | ERROR_DETAILS_LABEL | PRESERVE_ERROR_LABEL
        ) {
            continue;
        }
        let keep = sel.iter().any(|s| match s {
            SelectC::Name(n) => n == name,
            SelectC::Matcher(m) => &m.name == name && m.matches_value(value),
        });
        if !keep {
            b.del(name);
        }
    }
}

/// Replaces every character that is not `[a-zA-Z0-9_]` by `_` (after trimming
/// spaces), and prefixes `_` to a leading digit when `is_prefix`: Loki's
/// `sanitizeLabelKey`.
pub fn sanitize_label_key(key: &str, is_prefix: bool) -> String {
    let key = key.trim();
    let mut out = String::with_capacity(key.len() + 1);
    if key.is_empty() {
        return out;
    }
    if is_prefix && key.as_bytes()[0].is_ascii_digit() {
        out.push('_');
    }
    for c in key.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

/// Whether a name is already a sanitized label name (no allocation needed).
fn is_clean_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Sanitizes `key` (see [`sanitize_label_key`]) borrowing when it already is clean.
pub(crate) fn sanitize_cow(key: &str) -> Cow<'_, str> {
    if is_clean_key(key) {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(sanitize_label_key(key, true))
    }
}

/// The per-line label state: Loki's `LabelsBuilder`.
pub(crate) struct Builder<'a> {
    stream: &'a Labels,
    /// Structured metadata (names already suffixed on clashes with stream labels).
    meta: Vec<(String, String)>,
    /// Extracted labels, in order of extraction.
    parsed: Vec<(String, String)>,
    /// Deleted names (hide stream labels).
    deleted: Vec<String>,
    /// Names extracted by a parser on this line (never overwritten by later parsers).
    extracted: Vec<String>,
    pub(crate) err: String,
    pub(crate) err_details: String,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(stream: &'a Labels) -> Self {
        Builder {
            stream,
            meta: Vec::new(),
            parsed: Vec::new(),
            deleted: Vec::new(),
            extracted: Vec::new(),
            err: String::new(),
            err_details: String::new(),
        }
    }

    fn add_metadata(&mut self, md: &Labels) {
        for (n, v) in md.iter() {
            let name = if self.stream.get(n).is_some() {
                format!("{n}{DUPLICATE_SUFFIX}")
            } else {
                n.to_string()
            };
            match name.as_str() {
                ERROR_LABEL => self.err = v.to_string(),
                ERROR_DETAILS_LABEL => self.err_details = v.to_string(),
                _ => {
                    if self.parsed.iter().any(|(k, _)| *k == name) {
                        continue;
                    }
                    if let Some(e) = self.meta.iter_mut().find(|(k, _)| *k == name) {
                        e.1 = v.to_string();
                    } else {
                        self.meta.push((name, v.to_string()));
                    }
                }
            }
        }
    }

    /// Whether the stream labels have `name`.
    pub(crate) fn base_has(&self, name: &str) -> bool {
        self.stream.get(name).is_some()
    }

    pub(crate) fn meta_has(&self, name: &str) -> bool {
        self.meta.iter().any(|(k, _)| k == name)
    }

    /// The name a parser uses for `key`: suffixed with `_extracted` when a stream
    /// label or structured metadata has it.
    pub(crate) fn parser_key<'k>(&self, key: &'k str) -> Cow<'k, str> {
        if self.base_has(key) || self.meta_has(key) {
            Cow::Owned(format!("{key}{DUPLICATE_SUFFIX}"))
        } else {
            Cow::Borrowed(key)
        }
    }

    /// Whether a parser already extracted `key` on this line.
    pub(crate) fn extracted(&self, key: &str) -> bool {
        self.extracted.iter().any(|k| k == key)
    }

    /// A label's value: extracted, then structured metadata, then the stream's
    /// (unless deleted). Error labels are not seen here (as in Loki).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.meta.iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        if let Some((_, v)) = self.parsed.iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        if self.deleted.iter().any(|d| d == name) {
            return None;
        }
        self.stream.get(name).filter(|v| !v.is_empty())
    }

    /// Sets an extracted label (it hides structured metadata and stream labels of
    /// the same name).
    pub(crate) fn set_parsed(&mut self, name: String, value: String) {
        self.meta.retain(|(k, _)| *k != name);
        if let Some(e) = self.parsed.iter_mut().find(|(k, _)| *k == name) {
            e.1 = value;
            return;
        }
        if !self.extracted(&name) {
            self.extracted.push(name.clone());
        }
        self.parsed.push((name, value));
    }

    pub(crate) fn del(&mut self, name: &str) {
        self.meta.retain(|(k, _)| k != name);
        self.parsed.retain(|(k, _)| k != name);
        self.deleted.push(name.to_string());
    }

    /// Sets `__error__` (and `__error_details__` when given).
    pub(crate) fn set_err(&mut self, err: &str, details: Option<String>) {
        self.err.clear();
        self.err.push_str(err);
        if let Some(d) = details {
            self.err_details = d;
        }
    }

    /// All current labels, errors included, unsorted.
    fn for_each_label<'s>(&'s self, mut f: impl FnMut(&'s str, &'s str)) {
        for (n, v) in self.stream.iter() {
            if self.deleted.iter().any(|d| d == n)
                || self.meta.iter().any(|(k, _)| k == n)
                || self.parsed.iter().any(|(k, _)| k == n)
            {
                continue;
            }
            f(n, v);
        }
        for (n, v) in &self.meta {
            if !self.parsed.iter().any(|(k, _)| k == n) {
                f(n, v);
            }
        }
        for (n, v) in &self.parsed {
            f(n, v);
        }
        if !self.err.is_empty() {
            f(ERROR_LABEL, &self.err);
        }
        if !self.err_details.is_empty() {
            f(ERROR_DETAILS_LABEL, &self.err_details);
        }
    }

    /// All current labels sorted by name (errors included).
    fn snapshot(&self) -> Vec<(String, String)> {
        let mut v = Vec::with_capacity(self.stream.len() + self.meta.len() + self.parsed.len());
        self.for_each_label(|n, val| v.push((n.to_string(), val.to_string())));
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        v
    }

    fn into_labels(self) -> Labels {
        if self.meta.is_empty()
            && self.parsed.is_empty()
            && self.deleted.is_empty()
            && self.err.is_empty()
            && self.err_details.is_empty()
        {
            return self.stream.clone();
        }
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        self.for_each_label(|n, v| pairs.push((n, v)));
        Labels::from_pairs(pairs)
    }
}

impl LabelSource for Builder<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
    fn error(&self) -> &str {
        &self.err
    }
    fn set_error(&mut self, err: &str, details: String) {
        self.set_err(err, Some(details));
    }
}

/// Template data over the live builder (for `line_format`).
struct BuilderData<'b, 'a>(&'b Builder<'a>);

impl template::Data for BuilderData<'_, '_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            ERROR_LABEL if !self.0.err.is_empty() => Some(&self.0.err),
            ERROR_DETAILS_LABEL if !self.0.err_details.is_empty() => Some(&self.0.err_details),
            _ => self.0.get(name),
        }
    }
    fn entries(&self) -> Vec<(String, String)> {
        self.0.snapshot()
    }
}

/// Template data over a sorted snapshot (for `label_format`).
struct SnapshotData<'s>(&'s [(String, String)]);

impl template::Data for SnapshotData<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }
    fn entries(&self) -> Vec<(String, String)> {
        self.0.to_vec()
    }
}

/// The leading line filters of a pipeline (before any other stage): what a store may
/// apply itself.
pub fn leading_line_filters(stages: &[Stage]) -> Vec<LineFilter> {
    stages
        .iter()
        .map_while(|s| match s {
            Stage::LineFilter(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// An `unwrap` compiled once: use it instead of [`unwrap_value`] in loops.
#[derive(Debug, Clone)]
pub struct UnwrapExtractor {
    label: String,
    conv: UnwrapConv,
    post: std::sync::Arc<[LabelFilter]>,
}

impl UnwrapExtractor {
    pub fn new(unwrap: &Unwrap) -> Result<Self> {
        let post = unwrap
            .post_filters
            .iter()
            .map(LabelFilter::new)
            .collect::<Result<Vec<_>>>()?;
        Ok(UnwrapExtractor {
            label: unwrap.label.clone(),
            conv: unwrap.conv,
            post: post.into(),
        })
    }

    /// See [`unwrap_value`].
    pub fn extract(&self, labels: &mut Labels) -> Option<Option<f64>> {
        let raw = labels.get(&self.label).unwrap_or("");
        if raw.is_empty() {
            // Loki drops samples whose unwrapped label is absent or empty.
            return None;
        }
        let conv = match self.conv {
            UnwrapConv::None => label_filter::go_parse_float(raw),
            UnwrapConv::Duration => label_filter::go_parse_duration(raw).map(|ns| ns as f64 / 1e9),
            UnwrapConv::Bytes => label_filter::parse_bytes(raw).map(|b| b as f64),
        };
        let value = match conv {
            Ok(v) => Some(v),
            Err(e) => {
                labels.insert(ERROR_LABEL, ERR_SAMPLE_EXTRACTION);
                labels.insert(ERROR_DETAILS_LABEL, e);
                None
            }
        };
        if !self.post.is_empty() {
            let mut src = LabelsSource(labels);
            if !self.post.iter().all(|f| f.process(&mut src)) {
                return None;
            }
        }
        labels.remove(&self.label);
        Some(value)
    }
}

/// Label filters over finished labels (the unwrap's post filters).
struct LabelsSource<'l>(&'l mut Labels);

impl LabelSource for LabelsSource<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.0.get(name).filter(|v| !v.is_empty())
    }
    fn error(&self) -> &str {
        self.0.get(ERROR_LABEL).unwrap_or("")
    }
    fn set_error(&mut self, err: &str, details: String) {
        self.0.insert(ERROR_LABEL, err);
        self.0.insert(ERROR_DETAILS_LABEL, details);
    }
}

/// Extracts the unwrapped value from processed labels, removing the unwrapped label
/// as Loki does, then applies the unwrap's post filters. On a conversion failure the
/// labels get `__error__="SampleExtractionErr"` and the value is `None`; returns
/// `None` in the outer option when a post filter drops the sample (or, as in Loki,
/// when the label is absent or empty). Compiles the post filters on every call
/// (a post filter that does not compile drops the sample): prefer
/// [`UnwrapExtractor`] in loops.
pub fn unwrap_value(unwrap: &Unwrap, labels: &mut Labels) -> Option<Option<f64>> {
    UnwrapExtractor::new(unwrap).ok()?.extract(labels)
}
