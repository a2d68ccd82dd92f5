//! Parsing of scraped metrics: the Prometheus text exposition format (0.0.4) and the
//! OpenMetrics 1.0 text format, into [`Family`]s of [`Sample`]s.
//!
//! This module owns the grammar of both formats and nothing else: it does not fetch,
//! relabel, apply limits or write to the event log (the scraper does). A malformed line
//! fails the whole parse with a [`ParseError`] naming its line, column and what is wrong,
//! as Prometheus does.
//!
//! Decisions, each matching Prometheus 3.x' parsers (`model/textparse`) unless said:
//!
//! - **Label values** unescape `\\`, `\"` and `\n`; any other backslash sequence is kept
//!   as written (`\t` stays a backslash and a `t`). A raw line break inside a quoted
//!   value is an error (Prometheus' text lexer would accept one).
//! - **HELP** unescapes `\\` and `\n` in the text format (`\"` is kept as written), and
//!   `\\`, `\"`, `\n` in OpenMetrics. In the text format exactly one blank after the
//!   metric name is the separator; the rest of the line is the help text.
//! - **Values** follow Go's `strconv.ParseFloat` as Prometheus calls it: decimal
//!   notation with optional exponent, `Inf`/`Infinity`/`NaN` in any case, with an
//!   optional sign before `Inf` only. Hex floats (`0x1F`, `0x1p3`) and `_` are refused
//!   (Go needs a `p` exponent for hex and Prometheus refuses `p` and `_`). A decimal
//!   that overflows `f64` is refused, as Go reports a range error.
//! - **Timestamps**: text format, integer milliseconds with an optional sign (the spec
//!   says Go's `ParseInt`; Prometheus' lexer refuses a sign, we accept negative values).
//!   OpenMetrics: seconds as a float, converted exactly from the decimal digits to
//!   milliseconds, truncating toward zero below a millisecond (Prometheus computes
//!   `int64(ts*1000)` in floating point, which truncates the same way but can lose a
//!   millisecond to rounding). A sample without a timestamp gets the caller's
//!   `default_timestamp_ms` and [`Sample::timestamp_explicit`] `false`.
//! - **`le` / `quantile`** values of histogram / summary families are rewritten to
//!   Prometheus 3's float formatting (`FormatOpenMetricsFloat`): `1` → `1.0`,
//!   `0.5` stays, `+Inf` stays, `1e6`/`1000000` → `1e+06`, `0.00001` → `1e-05`
//!   (Go's `%g` shortest form, `.0` appended when there is no `.` or `e`). Values that
//!   are not numbers are kept. Like Prometheus, gauge histograms are not rewritten.
//!   Prometheus parses these with plain `ParseFloat`, so it would also rewrite a hex
//!   float such as `0x1p0`; we keep those as written.
//! - **Whitespace**: the text format allows spaces and tabs between tokens (also inside
//!   braces), leading and trailing. OpenMetrics requires exactly one space where the
//!   grammar has one and none elsewhere. Both accept `\r\n` line ends.
//! - **Families**: a `# HELP`/`# TYPE` (and `# UNIT`) line opens a family; a sample joins
//!   the current family when its name is the family name plus a suffix the type allows
//!   (text: histogram `_bucket`/`_sum`/`_count`, summary ``/`_sum`/`_count`, others
//!   exact; OpenMetrics additionally counter `_total`/`_created`, `_created` for histograms
//!   and summaries, gauge histogram `_gsum`/`_gcount`, info `_info`). Otherwise it opens
//!   an untyped (`unknown`) family of its own name. An OpenMetrics counter family is
//!   named without `_total`; a text-format counter family is named as its `# TYPE`
//!   line says (usually with `_total`). Text format: a sample that belongs to an earlier
//!   family (an exposition that interleaves families, which Prometheus tolerates) is
//!   added to that family. OpenMetrics refuses interleaved families, repeated metadata
//!   lines, a sample named exactly like a counter/histogram/info family (it needs a
//!   suffix), blank lines, other comments, and anything after `# EOF`, which is required.
//! - **Labels** are sorted, include `__name__`, keep empty values (the caller decides
//!   whether `a=""` means absent), and a repeated name is an error. Label pairs must be
//!   separated by commas (Prometheus' text parser also accepts blanks); a trailing comma
//!   is allowed. Prometheus 3's quoted names are accepted: `{"my.metric", "a.b"="x"}`
//!   and `# TYPE "my.metric" gauge`.
//! - **Exemplars** (OpenMetrics only): `# {labels} value [timestamp]`; their label values
//!   are unescaped like any other (Prometheus keeps them raw).
//!
//! Not checked (Prometheus does not either): bucket sets being complete or monotonic,
//! exemplars only on counters and buckets, the 128-character exemplar label limit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use argus_schemas::Labels;

/// Which grammar to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

/// The format of a scrape response by its `Content-Type`: OpenMetrics for
/// `application/openmetrics-text` (any version or parameters), otherwise the text
/// format, which is also what Prometheus assumes for a missing or unknown type.
pub fn format_from_content_type(ct: &str) -> Format {
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// The type of a metric family. The text format's `untyped` is [`MetricType::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The OpenMetrics spelling (`unknown` for the text format's `untyped`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn parse(s: &str, format: Format) -> Option<MetricType> {
        Some(match (s, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) => MetricType::Unknown,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The sample-name suffixes a family of this type contains.
    fn suffixes(self, format: Format) -> &'static [&'static str] {
        match (format, self) {
            (Format::Text, MetricType::Histogram) => &["_bucket", "_sum", "_count"],
            (Format::Text, MetricType::Summary) => &["", "_sum", "_count"],
            (Format::Text, _) => &[""],
            (Format::OpenMetrics, MetricType::Counter) => &["_total", "_created"],
            (Format::OpenMetrics, MetricType::Histogram) => {
                &["_bucket", "_sum", "_count", "_created"]
            }
            (Format::OpenMetrics, MetricType::GaugeHistogram) => &["_bucket", "_gsum", "_gcount"],
            (Format::OpenMetrics, MetricType::Summary) => &["", "_sum", "_count", "_created"],
            (Format::OpenMetrics, MetricType::Info) => &["_info"],
            (Format::OpenMetrics, _) => &[""],
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric family: its metadata and samples, in the order of the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// As in `# TYPE`, or the sample name for a family without metadata.
    pub name: String,
    pub metric_type: MetricType,
    /// Unescaped; `None` without a `# HELP` line.
    pub help: Option<String>,
    /// OpenMetrics `# UNIT`; `None` when absent or empty.
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full metric name, e.g. `http_request_duration_seconds_bucket`.
    pub name: String,
    /// Sorted, including `__name__`.
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch: the sample's own, else the caller's default.
    pub timestamp_ms: i64,
    /// Whether the exposition gave the timestamp (Prometheus' `honor_timestamps`
    /// and staleness handling depend on it).
    pub timestamp_explicit: bool,
    pub exemplar: Option<Exemplar>,
}

/// An OpenMetrics exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// Why an exposition could not be parsed. Lines and columns count from 1; columns
/// count characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses a whole exposition. `default_timestamp_ms` is used for samples without
/// their own timestamp (normally the scrape time).
pub fn parse(
    text: &str,
    format: Format,
    default_timestamp_ms: i64,
) -> Result<Vec<Family>, ParseError> {
    let mut p = Parser {
        format,
        default_ts: default_timestamp_ms,
        families: Vec::new(),
        index: HashMap::new(),
        current: None,
        labels: Vec::new(),
    };
    let mut rest = text;
    let mut line_no = 0usize;
    let mut seen_eof = false;
    while !rest.is_empty() {
        line_no += 1;
        let (raw, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let at = |(pos, message): (usize, String)| ParseError {
            line: line_no,
            column: line.get(..pos).map_or(pos, |s| s.chars().count()) + 1,
            message,
        };
        if seen_eof {
            return Err(at((0, "content after \"# EOF\"".into())));
        }
        match format {
            Format::Text => p.text_line(line).map_err(at)?,
            Format::OpenMetrics => seen_eof = p.om_line(line).map_err(at)?,
        }
    }
    if format == Format::OpenMetrics && !seen_eof {
        return Err(ParseError {
            line: line_no + 1,
            column: 1,
            message: "missing \"# EOF\" at the end of the exposition".into(),
        });
    }
    Ok(p.families)
}

/// An error at a byte offset of the current line.
type LineError = (usize, String);
type LResult<T> = Result<T, LineError>;

struct RawLabel<'a> {
    name: Cow<'a, str>,
    value: Cow<'a, str>,
    pos: usize,
}

struct Parser<'a> {
    format: Format,
    default_ts: i64,
    families: Vec<Family>,
    /// Family name → index of its first family in `families`.
    index: HashMap<String, usize>,
    current: Option<usize>,
    /// The labels of the line being parsed (reused across lines).
    labels: Vec<RawLabel<'a>>,
}

/// The part of a sample line after the labels.
struct Tail {
    value: f64,
    ts: Option<i64>,
    exemplar: Option<Exemplar>,
}

/// What a metadata line sets.
enum Meta<'a> {
    Help(Cow<'a, str>),
    Type(MetricType),
    Unit(&'a str),
}

impl<'a> Parser<'a> {
    fn text_line(&mut self, line: &'a str) -> LResult<()> {
        let mut c = Cursor::new(line);
        c.skip_blanks();
        match c.peek() {
            None => Ok(()),
            Some(b'#') => self.text_comment(c),
            Some(_) => self.sample_line(c),
        }
    }

    /// `# HELP name text`, `# TYPE name type`; any other comment is ignored.
    fn text_comment(&mut self, mut c: Cursor<'a>) -> LResult<()> {
        c.pos += 1;
        if !c.skip_blanks() {
            return Ok(());
        }
        let rest = c.rest();
        let is_help = rest.starts_with("HELP");
        if !(is_help || rest.starts_with("TYPE")) {
            return Ok(());
        }
        c.pos += 4;
        if !c.skip_blanks() {
            // `# HELPER ...` or a bare `# HELP`: an ordinary comment, as in Prometheus.
            return Ok(());
        }
        let name_at = c.pos;
        let name = c.meta_name()?;
        let text_at = match c.peek() {
            None => c.pos,
            Some(b' ' | b'\t') => c.pos + 1,
            Some(_) => return Err((name_at, invalid_metric_name(c.token_from(name_at)))),
        };
        let text = &c.s[text_at..];
        let meta = if is_help {
            Meta::Help(unescape(text, false))
        } else {
            let t = text.trim_matches([' ', '\t']);
            match MetricType::parse(t, Format::Text) {
                Some(t) => Meta::Type(t),
                None => return Err((text_at, format!("invalid metric type {t:?}"))),
            }
        };
        self.meta(name, name_at, meta)
    }

    /// One OpenMetrics line; `true` for `# EOF`.
    fn om_line(&mut self, line: &'a str) -> LResult<bool> {
        let mut c = Cursor::new(line);
        match c.peek() {
            None => Err((0, "empty line (not allowed in OpenMetrics)".into())),
            Some(b' ' | b'\t') => Err((0, "unexpected whitespace at start of line".into())),
            Some(b'#') => {
                let rest = c.rest();
                if rest == "# EOF" {
                    return Ok(true);
                }
                let (is_help, is_type) = (rest.starts_with("# HELP "), rest.starts_with("# TYPE "));
                if !(is_help || is_type || rest.starts_with("# UNIT ")) {
                    return Err((
                        0,
                        "unexpected comment (OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF)"
                            .into(),
                    ));
                }
                c.pos += 7;
                let name_at = c.pos;
                let name = c.meta_name()?;
                let text_at = match c.peek() {
                    None => c.pos,
                    Some(b' ') => c.pos + 1,
                    Some(_) => return Err((name_at, invalid_metric_name(c.token_from(name_at)))),
                };
                let text = &line[text_at..];
                let meta = if is_help {
                    Meta::Help(unescape(text, true))
                } else if is_type {
                    match MetricType::parse(text, Format::OpenMetrics) {
                        Some(t) => Meta::Type(t),
                        None => return Err((text_at, format!("invalid metric type {text:?}"))),
                    }
                } else {
                    if !text.is_empty() {
                        let fits = name
                            .strip_suffix(text)
                            .is_some_and(|s| s.len() > 1 && s.ends_with('_'));
                        if !fits {
                            return Err((
                                text_at,
                                format!("unit {text:?} is not a suffix of metric name {name:?}"),
                            ));
                        }
                    }
                    Meta::Unit(text)
                };
                self.meta(name, name_at, meta)?;
                Ok(false)
            }
            Some(_) => {
                self.sample_line(c)?;
                Ok(false)
            }
        }
    }

    /// Applies a metadata line: to the current family when it has this name, no samples
    /// and not this field yet; otherwise to a new family.
    fn meta(&mut self, name: Cow<'a, str>, name_at: usize, meta: Meta<'a>) -> LResult<()> {
        let om = self.format == Format::OpenMetrics;
        let kind = match meta {
            Meta::Help(_) => "HELP",
            Meta::Type(_) => "TYPE",
            Meta::Unit(_) => "UNIT",
        };
        let reuse = self.current.and_then(|i| {
            let f = &self.families[i];
            (f.name == name && f.samples.is_empty()).then_some(i)
        });
        let idx = match reuse {
            Some(i) => {
                let f = &self.families[i];
                let set = match meta {
                    Meta::Help(_) => f.help.is_some(),
                    Meta::Type(_) => f.metric_type != MetricType::Unknown,
                    Meta::Unit(_) => f.unit.is_some(),
                };
                if !set {
                    Some(i)
                } else if om {
                    return Err((
                        name_at,
                        format!("second {kind} line for metric family {name:?}"),
                    ));
                } else {
                    None
                }
            }
            None => {
                if om && self.index.contains_key(name.as_ref()) {
                    return Err((
                        name_at,
                        format!("metric family {name:?} appears again after other families"),
                    ));
                }
                None
            }
        };
        let idx = match idx {
            Some(i) => i,
            None => self.new_family(name.into_owned(), MetricType::Unknown),
        };
        let f = &mut self.families[idx];
        match meta {
            Meta::Help(h) => f.help = Some(h.into_owned()),
            Meta::Type(t) => f.metric_type = t,
            Meta::Unit(u) => f.unit = (!u.is_empty()).then(|| u.to_string()),
        }
        Ok(())
    }

    fn new_family(&mut self, name: String, metric_type: MetricType) -> usize {
        let i = self.families.len();
        // The first family of a name keeps it, so a typed family is not hidden by a
        // later untyped one of the same name.
        self.index.entry(name.clone()).or_insert(i);
        self.families.push(Family {
            name,
            metric_type,
            help: None,
            unit: None,
            samples: Vec::new(),
        });
        self.current = Some(i);
        i
    }

    fn fits(&self, i: usize, sample_name: &str) -> bool {
        let f = &self.families[i];
        sample_name
            .strip_prefix(f.name.as_str())
            .is_some_and(|suffix| f.metric_type.suffixes(self.format).contains(&suffix))
    }

    /// An earlier family `sample_name` belongs to, if any.
    fn earlier_family(&self, sample_name: &str) -> Option<usize> {
        const SUFFIXES: [&str; 9] = [
            "", "_total", "_created", "_bucket", "_sum", "_count", "_gsum", "_gcount", "_info",
        ];
        SUFFIXES.iter().find_map(|s| {
            let base = sample_name.strip_suffix(s)?;
            let i = *self.index.get(base)?;
            self.fits(i, sample_name).then_some(i)
        })
    }

    /// The family a sample named `name` joins, opening one if needed.
    fn family_for(&mut self, name: &str, name_at: usize) -> LResult<usize> {
        if let Some(i) = self.current {
            if self.fits(i, name) {
                return Ok(i);
            }
            let f = &self.families[i];
            if self.format == Format::OpenMetrics && f.name == name {
                let expected: Vec<String> = f
                    .metric_type
                    .suffixes(self.format)
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect();
                return Err((
                    name_at,
                    format!(
                        "sample {name:?} does not belong to {} family {:?} (expected {})",
                        f.metric_type,
                        f.name,
                        expected.join(" or ")
                    ),
                ));
            }
        }
        match self.earlier_family(name) {
            Some(i) if self.format == Format::OpenMetrics => Err((
                name_at,
                format!(
                    "sample {name:?} belongs to metric family {:?}, which appeared before other families",
                    self.families[i].name
                ),
            )),
            Some(i) => {
                self.current = Some(i);
                Ok(i)
            }
            None => Ok(self.new_family(name.to_string(), MetricType::Unknown)),
        }
    }

    fn sample_line(&mut self, mut c: Cursor<'a>) -> LResult<()> {
        let om = self.format == Format::OpenMetrics;
        self.labels.clear();
        let mut name: Option<(Cow<'a, str>, usize)> = None;
        if c.peek() != Some(b'{') {
            let at = c.pos;
            let n = c.plain_metric_name();
            match c.peek() {
                None | Some(b' ' | b'{') => {}
                Some(b'\t') if !om => {}
                Some(b'\t') => {
                    return Err((
                        c.pos,
                        "tab (OpenMetrics separates tokens by one space)".into(),
                    ));
                }
                Some(_) => return Err((at, invalid_metric_name(c.token_from(at)))),
            }
            if n.is_empty() {
                return Err((at, invalid_metric_name(c.token_from(at))));
            }
            name = Some((Cow::Borrowed(n), at));
            if !om {
                c.skip_blanks();
            }
        }
        if c.peek() == Some(b'{') {
            let brace = c.pos;
            c.pos += 1;
            c.label_set(om, &mut self.labels, Some(&mut name))?;
            if name.is_none() {
                return Err((brace, "metric name missing".into()));
            }
        }
        let Some((name, name_at)) = name else {
            return Err((c.pos, "metric name missing".into()));
        };
        let tail = if om { c.om_tail()? } else { c.text_tail()? };

        let fi = self.family_for(&name, name_at)?;
        let metric_type = self.families[fi].metric_type;
        let mut labels = Labels::new();
        for l in self.labels.drain(..) {
            if l.name == "__name__" || labels.get(&l.name).is_some() {
                return Err((l.pos, format!("duplicate label name {:?}", l.name)));
            }
            let value = match (metric_type, l.name.as_ref()) {
                (MetricType::Histogram, "le") | (MetricType::Summary, "quantile") => {
                    match parse_float(&l.value) {
                        Ok(v) => Cow::Owned(format_om_float(v)),
                        Err(_) => l.value,
                    }
                }
                _ => l.value,
            };
            labels.insert(l.name, value);
        }
        let name = name.into_owned();
        labels.insert("__name__", name.clone());
        self.families[fi].samples.push(Sample {
            name,
            labels,
            value: tail.value,
            timestamp_ms: tail.ts.unwrap_or(self.default_ts),
            timestamp_explicit: tail.ts.is_some(),
            exemplar: tail.exemplar,
        });
        Ok(())
    }
}

fn invalid_metric_name(token: &str) -> String {
    format!("invalid metric name {token:?}")
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// A position in one line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// Skips spaces and tabs; whether there were any.
    fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// From `start` to the next blank, brace, `=`, `,` or `"` (for error messages).
    fn token_from(&self, start: usize) -> &'a str {
        let rest = &self.s[start..];
        let end = rest
            .find([' ', '\t', '{', '}', '=', ',', '"'])
            .unwrap_or(rest.len());
        &rest[..end.max(rest.chars().next().map_or(0, char::len_utf8))]
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, or "" when there is none here.
    fn plain_metric_name(&mut self) -> &'a str {
        let start = self.pos;
        if matches!(self.peek(), Some(b) if is_name_byte(b) && !b.is_ascii_digit()) {
            while matches!(self.peek(), Some(b) if is_name_byte(b)) {
                self.pos += 1;
            }
        }
        &self.s[start..self.pos]
    }

    /// The metric name of a metadata line, plain or quoted.
    fn meta_name(&mut self) -> LResult<Cow<'a, str>> {
        let at = self.pos;
        if self.peek() == Some(b'"') {
            let n = self.quoted("metric name")?;
            if n.is_empty() {
                return Err((at, "empty metric name".into()));
            }
            return Ok(n);
        }
        let n = self.plain_metric_name();
        if n.is_empty() {
            return Err((at, invalid_metric_name(self.token_from(at))));
        }
        Ok(Cow::Borrowed(n))
    }

    /// A `"..."` string at the cursor, unescaped.
    fn quoted(&mut self, what: &str) -> LResult<Cow<'a, str>> {
        let open = self.pos;
        let b = self.s.as_bytes();
        let mut i = open + 1;
        let mut escaped = false;
        loop {
            match b.get(i) {
                None => return Err((open, format!("unterminated {what}"))),
                Some(b'"') => break,
                Some(b'\\') => {
                    if i + 1 >= b.len() {
                        return Err((open, format!("unterminated {what}")));
                    }
                    escaped = true;
                    i += 2;
                }
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        let raw = &self.s[open + 1..i];
        Ok(if escaped {
            unescape(raw, true)
        } else {
            Cow::Borrowed(raw)
        })
    }

    /// After `{`: label pairs up to and including `}`. `name` is `Some` for a sample,
    /// where a lone quoted string is the metric name; `None` for an exemplar.
    fn label_set(
        &mut self,
        om: bool,
        out: &mut Vec<RawLabel<'a>>,
        mut name: Option<&mut Option<(Cow<'a, str>, usize)>>,
    ) -> LResult<()> {
        let blanks = |c: &mut Cursor<'a>| {
            if !om {
                c.skip_blanks();
            }
        };
        blanks(self);
        loop {
            let at = self.pos;
            let label_name = match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                None => return Err((at, "unterminated label set (missing '}')".into())),
                Some(b'"') => {
                    let n = self.quoted("label name")?;
                    blanks(self);
                    if let (Some(slot), Some(b',' | b'}')) = (name.as_deref_mut(), self.peek()) {
                        if slot.is_some() {
                            return Err((at, "metric name given twice".into()));
                        }
                        if n.is_empty() {
                            return Err((at, "empty metric name".into()));
                        }
                        *slot = Some((n, at));
                        self.after_label(om)?;
                        continue;
                    }
                    if n.is_empty() {
                        return Err((at, "empty label name".into()));
                    }
                    n
                }
                Some(b) => {
                    let mut end = at;
                    let bytes = self.s.as_bytes();
                    if b.is_ascii_alphabetic() || b == b'_' {
                        while end < bytes.len()
                            && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                        {
                            end += 1;
                        }
                    }
                    self.pos = end;
                    let token = self.token_from(at);
                    if end == at || token.len() != end - at {
                        return Err((at, format!("invalid label name {token:?}")));
                    }
                    blanks(self);
                    Cow::Borrowed(&self.s[at..end])
                }
            };
            if self.peek() != Some(b'=') {
                return Err((
                    self.pos,
                    format!("expected '=' after label name {label_name:?}"),
                ));
            }
            self.pos += 1;
            blanks(self);
            if self.peek() != Some(b'"') {
                return Err((
                    self.pos,
                    format!("expected a quoted value for label {label_name:?}"),
                ));
            }
            let value = self.quoted("label value")?;
            out.push(RawLabel {
                name: label_name,
                value,
                pos: at,
            });
            blanks(self);
            self.after_label(om)?;
        }
    }

    /// After a label pair: `,` (then optional blanks) or at `}`.
    fn after_label(&mut self, om: bool) -> LResult<()> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                if !om {
                    self.skip_blanks();
                }
                if self.peek() == Some(b',') {
                    return Err((self.pos, "expected label name after ','".into()));
                }
                Ok(())
            }
            Some(b'}') => Ok(()),
            None => Err((self.pos, "unterminated label set (missing '}')".into())),
            Some(_) => Err((self.pos, "expected ',' or '}' after label".into())),
        }
    }

    /// The next run of non-blank characters.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while matches!(self.peek(), Some(b) if b != b' ' && b != b'\t') {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// Text format: value, optional integer timestamp, optional blanks.
    fn text_tail(&mut self) -> LResult<Tail> {
        self.skip_blanks();
        let at = self.pos;
        let v = self.word();
        if v.is_empty() {
            return Err((at, "missing value".into()));
        }
        let value = parse_float(v).map_err(|m| (at, format!("invalid value {v:?}: {m}")))?;
        self.skip_blanks();
        let mut ts = None;
        if self.peek().is_some() {
            let at = self.pos;
            let t = self.word();
            ts = Some(t.parse::<i64>().map_err(|_| {
                (
                    at,
                    format!("invalid timestamp {t:?} (expected integer milliseconds)"),
                )
            })?);
            self.skip_blanks();
            if self.peek().is_some() {
                return Err((
                    self.pos,
                    format!("unexpected text after timestamp: {:?}", self.rest()),
                ));
            }
        }
        Ok(Tail {
            value,
            ts,
            exemplar: None,
        })
    }

    /// OpenMetrics: ` value[ timestamp][ # {labels} value[ timestamp]]`.
    fn om_tail(&mut self) -> LResult<Tail> {
        let (value, ts) = self.om_value_ts("value")?;
        let mut exemplar = None;
        if self.peek().is_some() {
            let at = self.pos;
            if !self.rest().starts_with(" # {") {
                return Err((
                    at,
                    format!("unexpected text after sample: {:?}", self.rest()),
                ));
            }
            self.pos += 4;
            let mut labels = Vec::new();
            self.label_set(true, &mut labels, None)?;
            let mut set = Labels::new();
            for l in labels {
                if set.get(&l.name).is_some() {
                    return Err((l.pos, format!("duplicate exemplar label name {:?}", l.name)));
                }
                set.insert(l.name, l.value);
            }
            let (value, timestamp_ms) = self.om_value_ts("exemplar value")?;
            if self.peek().is_some() {
                return Err((
                    self.pos,
                    format!("unexpected text after exemplar: {:?}", self.rest()),
                ));
            }
            exemplar = Some(Exemplar {
                labels: set,
                value,
                timestamp_ms,
            });
        }
        Ok(Tail {
            value,
            ts,
            exemplar,
        })
    }

    /// ` value[ timestamp]`, stopping before ` #` or at the end.
    fn om_value_ts(&mut self, what: &str) -> LResult<(f64, Option<i64>)> {
        if self.peek() != Some(b' ') {
            return Err((
                self.pos,
                format!("expected a single space before the {what}"),
            ));
        }
        self.pos += 1;
        let at = self.pos;
        let v = self.word();
        if v.is_empty() {
            return Err((at, format!("missing {what} (exactly one space allowed)")));
        }
        let value = parse_float(v).map_err(|m| (at, format!("invalid {what} {v:?}: {m}")))?;
        let mut ts = None;
        if self.peek() == Some(b' ') && !self.rest().starts_with(" #") {
            self.pos += 1;
            let at = self.pos;
            let t = self.word();
            if t.is_empty() {
                return Err((
                    at,
                    "extra whitespace (OpenMetrics allows one space between tokens, none at the end)"
                        .into(),
                ));
            }
            ts = Some(seconds_to_ms(t).map_err(|m| (at, format!("invalid timestamp {t:?}: {m}")))?);
        }
        if self.peek() == Some(b'\t') {
            return Err((
                self.pos,
                "tab (OpenMetrics separates tokens by one space)".into(),
            ));
        }
        Ok((value, ts))
    }
}

/// Undoes `\\`, `\n` and (when `quote`) `\"`; other backslashes stay as written.
fn unescape(raw: &str, quote: bool) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => {
                out.push('\\');
                chars.next();
            }
            Some('n') => {
                out.push('\n');
                chars.next();
            }
            Some('"') if quote => {
                out.push('"');
                chars.next();
            }
            _ => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// A float as Prometheus' `parseFloat` reads it (see the module docs).
fn parse_float(s: &str) -> Result<f64, &'static str> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = unsigned.as_bytes();
    match b.first() {
        None => return Err("not a number"),
        Some(b'n' | b'N') if unsigned.len() < s.len() => return Err("NaN cannot have a sign"),
        Some(b'n' | b'N' | b'i' | b'I') => {
            let is = |word: &str| unsigned.eq_ignore_ascii_case(word);
            return if is("nan") {
                Ok(f64::NAN)
            } else if !(is("inf") || is("infinity")) {
                Err("not a number")
            } else if s.starts_with('-') {
                Ok(f64::NEG_INFINITY)
            } else {
                Ok(f64::INFINITY)
            };
        }
        Some(_) => {}
    }
    // Decimal only: digits, one '.', an exponent. Rust's parser accepts the same
    // decimal forms as Go's (`1.`, `.5`, `1E+3`) and nothing hexadecimal.
    if !b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err("not a decimal number");
    }
    let v: f64 = s.parse().map_err(|_| "not a number")?;
    if v.is_infinite() {
        return Err("out of range");
    }
    Ok(v)
}

/// OpenMetrics timestamp seconds → milliseconds, exactly, truncated toward zero.
fn seconds_to_ms(s: &str) -> Result<i64, &'static str> {
    let v = parse_float(s)?;
    if !v.is_finite() {
        return Err("not a finite number");
    }
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match unsigned.find(['e', 'E']) {
        Some(i) => {
            let e = &unsigned[i + 1..];
            let e = e.strip_prefix('+').unwrap_or(e);
            // Saturate: an exponent this large has already been range-checked above.
            let exp = e.parse::<i64>().unwrap_or(if e.starts_with('-') {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            });
            (&unsigned[..i], exp)
        }
        None => (unsigned, 0),
    };
    let int_len = mantissa.find('.').unwrap_or(mantissa.len()) as i64;
    // Number of mantissa digits left of the decimal point of the millisecond value.
    let point = int_len.saturating_add(exp).saturating_add(3);
    let mut digits = mantissa.bytes().filter(u8::is_ascii_digit);
    let mut ms: i64 = 0;
    let mut i = 0i64;
    while i < point {
        let d = match digits.next() {
            Some(d) => i64::from(d - b'0'),
            None if ms == 0 => break,
            None => 0,
        };
        ms = ms
            .checked_mul(10)
            .and_then(|m| m.checked_add(d))
            .ok_or("out of range")?;
        i += 1;
    }
    Ok(if negative { -ms } else { ms })
}

/// Prometheus' `FormatOpenMetricsFloat`: Go's shortest `%g`, with `.0` added to a
/// plain integer.
fn format_om_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return "0.0".into();
    }
    // `{:e}` gives the shortest round-trip digits, e.g. `1.5e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.unsigned_abs());
    }
    let mut s = format!("{f}");
    if !s.contains('.') {
        s.push_str(".0");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: i64 = 1_700_000_000_000;

    fn text(s: &str) -> Vec<Family> {
        match parse(s, Format::Text, TS) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    fn om(s: &str) -> Vec<Family> {
        match parse(s, Format::OpenMetrics, TS) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    fn text_err(s: &str) -> String {
        parse(s, Format::Text, TS).unwrap_err().to_string()
    }

    fn om_err(s: &str) -> String {
        parse(s, Format::OpenMetrics, TS).unwrap_err().to_string()
    }

    fn one(fams: &[Family]) -> &Sample {
        assert_eq!(fams.len(), 1, "{fams:#?}");
        assert_eq!(fams[0].samples.len(), 1, "{fams:#?}");
        &fams[0].samples[0]
    }

    fn value(line: &str) -> f64 {
        one(&text(line)).value
    }

    #[test]
    fn content_types() {
        assert_eq!(
            format_from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(
            format_from_content_type("Application/OpenMetrics-Text"),
            Format::OpenMetrics
        );
        assert_eq!(
            format_from_content_type("text/plain; version=0.0.4"),
            Format::Text
        );
        assert_eq!(format_from_content_type(""), Format::Text);
    }

    #[test]
    fn label_values_with_separators_and_escapes() {
        let f = text(
            r#"m{a="x,y",b="k=v",c="}{",d="say \"hi\"",e="C:\\dir",f="two\nlines",g="tab\t"} 1"#,
        );
        let l = &one(&f).labels;
        assert_eq!(l.get("a"), Some("x,y"));
        assert_eq!(l.get("b"), Some("k=v"));
        assert_eq!(l.get("c"), Some("}{"));
        assert_eq!(l.get("d"), Some("say \"hi\""));
        assert_eq!(l.get("e"), Some("C:\\dir"));
        assert_eq!(l.get("f"), Some("two\nlines"));
        // Unknown escapes stay as written, as in Prometheus.
        assert_eq!(l.get("g"), Some("tab\\t"));
        assert_eq!(l.get("__name__"), Some("m"));
        assert_eq!(l.len(), 8);
        // `\\n` is a backslash and an `n`, not a line break.
        let f = text(r#"m{a="\\n"} 1"#);
        assert_eq!(one(&f).labels.get("a"), Some("\\n"));
    }

    #[test]
    fn metric_names_with_colons() {
        let f = text("job:http_requests:rate5m{job=\"api\"} 3\n:leading 1\n");
        assert_eq!(f[0].name, "job:http_requests:rate5m");
        assert_eq!(
            f[0].samples[0].labels.get("__name__"),
            Some("job:http_requests:rate5m")
        );
        assert_eq!(f[1].name, ":leading");
    }

    #[test]
    fn invalid_names() {
        assert_eq!(
            text_err("ok 1\n9abc 1\n"),
            "line 2, column 1: invalid metric name \"9abc\""
        );
        assert_eq!(
            text_err("foo.bar 1"),
            "line 1, column 1: invalid metric name \"foo.bar\""
        );
        assert_eq!(
            text_err("m{a:b=\"x\"} 1"),
            "line 1, column 3: invalid label name \"a:b\""
        );
        assert_eq!(
            text_err("m{9a=\"x\"} 1"),
            "line 1, column 3: invalid label name \"9a\""
        );
        assert_eq!(
            text_err("m{a-b=\"x\"} 1"),
            "line 1, column 3: invalid label name \"a-b\""
        );
    }

    #[test]
    fn help_escaping() {
        let f = text(
            "# HELP m Path C:\\\\x, a \\\"quote\\\" and\\nnewline \\t.\n# TYPE m gauge\nm 1\n",
        );
        assert_eq!(
            f[0].help.as_deref(),
            Some("Path C:\\x, a \\\"quote\\\" and\nnewline \\t.")
        );
        assert_eq!(f[0].metric_type, MetricType::Gauge);
        // OpenMetrics also unescapes \".
        let f = om("# HELP m a \\\"b\\\" \\\\ \\n\nm 1\n# EOF\n");
        assert_eq!(f[0].help.as_deref(), Some("a \"b\" \\ \n"));
        // Only one blank separates name and text; an empty HELP is empty.
        let f = text("# HELP m  two\n# HELP n\n");
        assert_eq!(f[0].help.as_deref(), Some(" two"));
        assert_eq!(f[1].help.as_deref(), Some(""));
        let f = text("# HELP n \n");
        assert_eq!(f[0].help.as_deref(), Some(""));
    }

    #[test]
    fn special_and_odd_values() {
        assert!(value("m NaN").is_nan());
        assert!(value("m nan").is_nan());
        assert_eq!(value("m +Inf"), f64::INFINITY);
        assert_eq!(value("m -Inf"), f64::NEG_INFINITY);
        assert_eq!(value("m Inf"), f64::INFINITY);
        assert_eq!(value("m infinity"), f64::INFINITY);
        assert_eq!(value("m 1e3"), 1000.0);
        assert_eq!(value("m 1E-3"), 0.001);
        assert_eq!(value("m .5"), 0.5);
        assert_eq!(value("m 5."), 5.0);
        let z = value("m -0");
        assert!(z == 0.0 && z.is_sign_negative());
        assert_eq!(value("m 1.7976931348623157e308"), f64::MAX);
        for bad in [
            "0x1F", "0x1p3", "1_000", "+NaN", "1e999", "abc", "1,5", "--1", "Inff",
        ] {
            let e = text_err(&format!("m {bad}"));
            assert!(
                e.starts_with(&format!("line 1, column 3: invalid value {bad:?}")),
                "{e}"
            );
        }
    }

    #[test]
    fn timestamps() {
        let f = text("a 1 1700000000123\nb 1 -1000\nc 1\nd 1 +5\n");
        assert_eq!(f[0].samples[0].timestamp_ms, 1_700_000_000_123);
        assert!(f[0].samples[0].timestamp_explicit);
        assert_eq!(f[1].samples[0].timestamp_ms, -1000);
        assert_eq!(f[2].samples[0].timestamp_ms, TS);
        assert!(!f[2].samples[0].timestamp_explicit);
        assert_eq!(f[3].samples[0].timestamp_ms, 5);
        assert_eq!(
            text_err("a 1 1.5"),
            "line 1, column 5: invalid timestamp \"1.5\" (expected integer milliseconds)"
        );
        assert_eq!(
            text_err("a 1 2 3"),
            "line 1, column 7: unexpected text after timestamp: \"3\""
        );
        // OpenMetrics: float seconds, converted exactly and truncated toward zero.
        let f = om("a 1 1520879607.789\nb 1 -1.5\nc 1 1e3\nd 1 0.0009\ne 1 -0.0019\nf 1\n# EOF\n");
        let ts: Vec<i64> = f.iter().map(|f| f.samples[0].timestamp_ms).collect();
        assert_eq!(ts, [1_520_879_607_789, -1500, 1_000_000, 0, -1, TS]);
        assert!(om_err("a 1 NaN\n# EOF\n").contains("invalid timestamp \"NaN\""));
        assert_eq!(seconds_to_ms("123456789012345678"), Err("out of range"));
        assert_eq!(seconds_to_ms("0e999999999"), Ok(0));
        assert_eq!(seconds_to_ms("1.23456e2"), Ok(123_456));
        assert_eq!(seconds_to_ms(".5"), Ok(500));
        assert_eq!(seconds_to_ms("12e-4"), Ok(1));
    }

    #[test]
    fn histogram_and_summary_with_le_and_quantile_normalised() {
        let f = text(concat!(
            "# TYPE h histogram\n",
            "h_bucket{le=\"0.05\"} 1\n",
            "h_bucket{le=\"1\"} 2\n",
            "h_bucket{le=\"1000000\"} 3\n",
            "h_bucket{le=\"0.00001\"} 3\n",
            "h_bucket{le=\"-0\"} 3\n",
            "h_bucket{le=\"+Inf\"} 4\n",
            "h_bucket{le=\"inf\"} 4\n",
            "h_bucket{le=\"weird\"} 4\n",
            "h_sum 7.5\n",
            "h_count 4\n",
            "# TYPE s summary\n",
            "s{quantile=\"0.5\"} 1\n",
            "s{quantile=\"1\"} 1\n",
            "s_sum 2\n",
            "s_count 2\n",
            "# TYPE g gauge\n",
            "g{le=\"1\",quantile=\"1\"} 1\n",
        ));
        assert_eq!(f.len(), 3);
        let les: Vec<&str> = f[0].samples[..8]
            .iter()
            .map(|s| s.labels.get("le").unwrap_or("-"))
            .collect();
        assert_eq!(
            les,
            [
                "0.05", "1.0", "1e+06", "1e-05", "0.0", "+Inf", "+Inf", "weird"
            ]
        );
        assert_eq!(f[0].samples.len(), 10);
        assert_eq!(f[0].samples[9].name, "h_count");
        let qs: Vec<&str> = f[1].samples[..2]
            .iter()
            .map(|s| s.labels.get("quantile").unwrap_or("-"))
            .collect();
        assert_eq!(qs, ["0.5", "1.0"]);
        assert_eq!(f[1].samples.len(), 4);
        // Other types keep their labels as written.
        assert_eq!(f[2].samples[0].labels.get("le"), Some("1"));
        assert_eq!(f[2].samples[0].labels.get("quantile"), Some("1"));
    }

    #[test]
    fn om_float_formatting_matches_go() {
        let cases = [
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.25, "0.25"),
            (100.0, "100.0"),
            (999_999.0, "999999.0"),
            (1_000_000.0, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.000_012_5, "1.25e-05"),
            (1e100, "1e+100"),
            (-2.5e-7, "-2.5e-07"),
            (0.1, "0.1"),
        ];
        for (f, s) in cases {
            assert_eq!(format_om_float(f), s, "{f}");
        }
    }

    #[test]
    fn exemplars() {
        let f = om(concat!(
            "# TYPE foo histogram\n",
            "foo_bucket{le=\"0.1\"} 8 # {} 0.054\n",
            "foo_bucket{le=\"+Inf\"} 17 1520879607.000 # {trace_id=\"abc\",q=\"a\\\"b\"} 0.67 1520879607.789\n",
            "foo_count 17\n",
            "foo_sum 324789.3\n",
            "foo_created 1520430000.123\n",
            "# EOF\n",
        ));
        let s = &f[0].samples;
        assert_eq!(s.len(), 5);
        let e0 = s[0].exemplar.as_ref().unwrap();
        assert!(e0.labels.is_empty());
        assert_eq!((e0.value, e0.timestamp_ms), (0.054, None));
        let e1 = s[1].exemplar.as_ref().unwrap();
        assert_eq!(e1.labels.get("trace_id"), Some("abc"));
        assert_eq!(e1.labels.get("q"), Some("a\"b"));
        assert_eq!(e1.value, 0.67);
        assert_eq!(e1.timestamp_ms, Some(1_520_879_607_789));
        assert_eq!(s[1].timestamp_ms, 1_520_879_607_000);
        assert!(s[2].exemplar.is_none());
        assert_eq!(s[4].name, "foo_created");
        assert_eq!(s[4].value, 1520430000.123);
        // Text format has no exemplars.
        assert!(text_err("m 1 # {a=\"b\"} 1").starts_with("line 1, column 5: invalid timestamp"));
        assert!(
            om_err("m 1 # {a=\"b\"}\n# EOF\n")
                .contains("expected a single space before the exemplar value")
        );
        assert!(
            om_err("m 1 # {a=\"b\",a=\"c\"} 1\n# EOF\n").contains("duplicate exemplar label name")
        );
    }

    #[test]
    fn om_eof() {
        assert_eq!(
            om_err("m 1\n"),
            "line 2, column 1: missing \"# EOF\" at the end of the exposition"
        );
        assert_eq!(
            om_err(""),
            "line 1, column 1: missing \"# EOF\" at the end of the exposition"
        );
        assert_eq!(
            om_err("m 1\n# EOF\nm 2\n"),
            "line 3, column 1: content after \"# EOF\""
        );
        assert_eq!(
            om_err("# EOF\n\n"),
            "line 2, column 1: content after \"# EOF\""
        );
        assert!(om("# EOF").is_empty());
        assert_eq!(om("m 1\r\n# EOF\r\n").len(), 1);
        // Text format: an empty body and "# EOF" (just a comment) are fine.
        assert!(text("").is_empty());
        assert!(text("# EOF\n").is_empty());
    }

    #[test]
    fn om_counters_total_and_created() {
        let f = om(concat!(
            "# TYPE requests counter\n",
            "# UNIT requests \n",
            "# HELP requests Requests served.\n",
            "requests_total{path=\"/\"} 10\n",
            "requests_created{path=\"/\"} 1700000000.5\n",
            "# TYPE latency_seconds summary\n",
            "# UNIT latency_seconds seconds\n",
            "latency_seconds{quantile=\"0.99\"} 0.3\n",
            "latency_seconds_sum 4\n",
            "latency_seconds_count 20\n",
            "# EOF\n",
        ));
        assert_eq!(f[0].name, "requests");
        assert_eq!(f[0].metric_type, MetricType::Counter);
        assert_eq!(f[0].unit, None);
        assert_eq!(f[0].help.as_deref(), Some("Requests served."));
        assert_eq!(f[0].samples[0].name, "requests_total");
        assert_eq!(f[0].samples[1].name, "requests_created");
        assert_eq!(f[1].unit.as_deref(), Some("seconds"));
        assert_eq!(f[1].samples.len(), 3);
        assert_eq!(
            om_err("# TYPE requests counter\nrequests 1\n# EOF\n"),
            "line 2, column 1: sample \"requests\" does not belong to counter family \"requests\" (expected requests_total or requests_created)"
        );
        assert!(om_err("# UNIT foo seconds\n# EOF\n").contains("unit \"seconds\" is not a suffix"));
        // Text format: the counter family is named as its TYPE line says.
        let f = text("# TYPE requests_total counter\nrequests_total 3\n");
        assert_eq!(f[0].name, "requests_total");
        assert_eq!(f[0].samples.len(), 1);
    }

    #[test]
    fn comments_and_blank_lines() {
        let f = text(concat!(
            "\n",
            "# just a comment\n",
            "#HELP not_meta because no blank\n",
            "# HELPER not meta\n",
            "   \t\n",
            "  # HELP m indented\n",
            "# TYPE m counter\n",
            "m 1\n",
        ));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].help.as_deref(), Some("indented"));
        assert_eq!(f[0].metric_type, MetricType::Counter);
        assert_eq!(
            om_err("# EOF is last\n"),
            "line 1, column 1: unexpected comment (OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF)"
        );
        assert_eq!(
            om_err("m 1\n\n# EOF\n"),
            "line 2, column 1: empty line (not allowed in OpenMetrics)"
        );
    }

    #[test]
    fn duplicate_label_names() {
        assert_eq!(
            text_err("m{a=\"1\",a=\"2\"} 1"),
            "line 1, column 9: duplicate label name \"a\""
        );
        assert_eq!(
            text_err("m{__name__=\"x\"} 1"),
            "line 1, column 3: duplicate label name \"__name__\""
        );
        assert!(om_err("m{a=\"1\",a=\"1\"} 1\n# EOF\n").contains("duplicate label name \"a\""));
    }

    #[test]
    fn untyped_without_type() {
        let f = text("# HELP x only help\nx 1\ny{a=\"b\"} 2\n");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].metric_type, MetricType::Unknown);
        assert_eq!(f[0].help.as_deref(), Some("only help"));
        assert_eq!(
            (f[1].name.as_str(), f[1].metric_type),
            ("y", MetricType::Unknown)
        );
        assert_eq!(f[1].help, None);
        let f = text("# TYPE u untyped\nu 1\n");
        assert_eq!(f[0].metric_type, MetricType::Unknown);
        let f = om("u 1\n# EOF\n");
        assert_eq!(f[0].metric_type, MetricType::Unknown);
    }

    #[test]
    fn whitespace_in_text_format() {
        let f = text("m\t{ a = \"1\" ,\tb=\"2\", }\t 1 \t 1000 \t\r\nn   2\t\n");
        let s = &f[0].samples[0];
        assert_eq!(
            (s.labels.get("a"), s.labels.get("b")),
            (Some("1"), Some("2"))
        );
        assert_eq!((s.value, s.timestamp_ms), (1.0, 1000));
        assert_eq!(f[1].samples[0].value, 2.0);
        // CRLF everywhere, including after HELP text and TYPE.
        let f = text("# HELP m h\r\n# TYPE m gauge \r\nm 1\r\n");
        assert_eq!(f[0].help.as_deref(), Some("h"));
        assert_eq!(f[0].metric_type, MetricType::Gauge);
        // OpenMetrics is strict.
        assert!(om_err("m  1\n# EOF\n").contains("missing value"));
        assert!(om_err("m 1 \n# EOF\n").starts_with("line 1, column 5: extra whitespace"));
        assert!(om_err("m 1  2\n# EOF\n").starts_with("line 1, column 5: extra whitespace"));
        assert_eq!(
            om_err("m{a=\"1\", b=\"2\"} 1\n# EOF\n"),
            "line 1, column 9: invalid label name \" \""
        );
        assert_eq!(
            om_err("m\t1\n# EOF\n"),
            "line 1, column 2: tab (OpenMetrics separates tokens by one space)"
        );
        assert!(om_err(" m 1\n# EOF\n").contains("unexpected whitespace at start of line"));
    }

    #[test]
    fn label_syntax_errors() {
        assert_eq!(
            text_err("m 1\nm{a=\"x} 1\n"),
            "line 2, column 5: unterminated label value"
        );
        assert_eq!(
            text_err("m{a=\"x\" 1"),
            "line 1, column 9: expected ',' or '}' after label"
        );
        assert_eq!(
            text_err("m{a} 1"),
            "line 1, column 4: expected '=' after label name \"a\""
        );
        assert_eq!(
            text_err("m{a=x} 1"),
            "line 1, column 5: expected a quoted value for label \"a\""
        );
        assert_eq!(
            text_err("m{a=\"x\""),
            "line 1, column 8: unterminated label set (missing '}')"
        );
        assert_eq!(
            text_err("m{,} 1"),
            "line 1, column 3: invalid label name \",\""
        );
        assert_eq!(
            text_err("m{a=\"1\",,} 1"),
            "line 1, column 9: expected label name after ','"
        );
        assert_eq!(text_err("m{a=\"1\"}"), "line 1, column 9: missing value");
        assert_eq!(
            text_err("{a=\"1\"} 1"),
            "line 1, column 1: metric name missing"
        );
        // A trailing comma is fine, and so is an empty set.
        let f = text("m{a=\"1\",} 1\nn{} 2\n");
        assert_eq!(f[0].samples[0].labels.len(), 2);
        assert_eq!(f[1].samples[0].labels.len(), 1);
        // Multi-byte text before the error: columns count characters.
        assert_eq!(
            text_err("m{a=\"żółw\",b=x} 1"),
            "line 1, column 14: expected a quoted value for label \"b\""
        );
    }

    #[test]
    fn type_errors() {
        assert_eq!(
            text_err("# TYPE m gaugehistogram\n"),
            "line 1, column 10: invalid metric type \"gaugehistogram\""
        );
        assert_eq!(
            text_err("# TYPE m\n"),
            "line 1, column 9: invalid metric type \"\""
        );
        assert_eq!(
            text_err("# TYPE 9m gauge\n"),
            "line 1, column 8: invalid metric name \"9m\""
        );
        assert_eq!(
            om_err("# TYPE m untyped\n# EOF\n"),
            "line 1, column 10: invalid metric type \"untyped\""
        );
        assert_eq!(
            om_err("# TYPE m gauge\n# TYPE m counter\n# EOF\n"),
            "line 2, column 8: second TYPE line for metric family \"m\""
        );
    }

    #[test]
    fn quoted_utf8_names() {
        let f = text(concat!(
            "# HELP \"my.metric\" dotted\n",
            "# TYPE \"my.metric\" gauge\n",
            "{\"my.metric\", \"label.x\"=\"y\", z=\"1\"} 1\n",
            "{z=\"2\",\"my.metric\"} 2\n",
        ));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "my.metric");
        assert_eq!(f[0].metric_type, MetricType::Gauge);
        assert_eq!(f[0].samples.len(), 2);
        let l = &f[0].samples[0].labels;
        assert_eq!(l.get("__name__"), Some("my.metric"));
        assert_eq!(l.get("label.x"), Some("y"));
        let f = om("{\"a.b\"} 1\n# EOF\n");
        assert_eq!(f[0].samples[0].name, "a.b");
        assert_eq!(
            text_err("m{\"n\"} 1"),
            "line 1, column 3: metric name given twice"
        );
        assert_eq!(text_err("{\"\"} 1"), "line 1, column 2: empty metric name");
    }

    #[test]
    fn interleaved_families() {
        // Text format: tolerated, samples rejoin their family.
        let f = text(
            "# TYPE a gauge\na 1\nb 2\na{x=\"y\"} 3\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nc 1\nh_count 1\n",
        );
        let names: Vec<(&str, usize)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.samples.len()))
            .collect();
        assert_eq!(names, [("a", 2), ("b", 1), ("h", 2), ("c", 1)]);
        // OpenMetrics: refused.
        assert_eq!(
            om_err("a 1\nb 2\na 3\n# EOF\n"),
            "line 3, column 1: sample \"a\" belongs to metric family \"a\", which appeared before other families"
        );
        assert_eq!(
            om_err("# TYPE a gauge\na 1\nb 2\n# HELP a again\n# EOF\n"),
            "line 4, column 8: metric family \"a\" appears again after other families"
        );
    }

    #[test]
    fn other_om_types() {
        let f = om(concat!(
            "# TYPE build info\n",
            "build_info{version=\"1.2\"} 1\n",
            "# TYPE state stateset\n",
            "state{state=\"a\"} 1\n",
            "state{state=\"b\"} 0\n",
            "# TYPE queue gaugehistogram\n",
            "queue_bucket{le=\"1\"} 2\n",
            "queue_bucket{le=\"+Inf\"} 3\n",
            "queue_gcount 3\n",
            "queue_gsum 2.5\n",
            "# EOF\n",
        ));
        let t: Vec<(MetricType, usize)> =
            f.iter().map(|f| (f.metric_type, f.samples.len())).collect();
        assert_eq!(
            t,
            [
                (MetricType::Info, 1),
                (MetricType::StateSet, 2),
                (MetricType::GaugeHistogram, 4)
            ]
        );
        // Gauge histograms are not normalised (as in Prometheus).
        assert_eq!(f[2].samples[0].labels.get("le"), Some("1"));
    }
}
