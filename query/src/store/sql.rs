//! ClickHouse SQL for pushed-down pipelines ([`super::pushdown::AggPlan`]): the
//! parser's labels extracted on the server, label filters and unwrapped values as SQL,
//! and the "unsafe" predicate marking rows whose result the SQL cannot prove equal to
//! the engine's (the store then declines and the engine scans). Works on ClickHouse
//! 18.16 and the current engine ("modern").
//!
//! Rows whose line was parsed at write ([`super::shape`]: `json` or `logfmt`, the
//! query's parser) are read from their fields: `indexOf(field_keys, k)` finds the
//! label, `field_values`, `field_nums` and `field_durs` hold its text, number and
//! duration exactly as the engine reads them (a NaN number or [`NO_DURATION`] marks a
//! conversion that fails: unsafe). Nothing to prove, and the line is not read. That
//! query also counts the other rows; only when there are some does a second query read
//! them with the proofs below (on 18.16 `logfmt` has none, so there every such row is
//! the engine's).
//!
//! The query computes per-row columns once (named intermediate expressions: on modern
//! servers in layers of subqueries, see [`layered`]), and on modern servers runs with
//! `short_circuit_function_evaluation` off: every expression here is total (no
//! function can throw on any row), and short-circuiting cheap string functions costs
//! more than evaluating them. Rows are grouped by stream group, bucket and extracted
//! keys (a constant group, all streams sharing their grouping labels, or a single
//! bucket is left out of `GROUP BY`). A second query returns the unsafe rows themselves: the
//! engine runs them through its pipeline (see [`super::pushdown::AggAnswer`]).
//!
//! JSON with label filters on modern servers runs in two stages: the first drops the
//! rows that fail the filters both when each label they read has the cheaply found
//! value and when it is absent (the only two things the engine can see there, see
//! below), a conversion that could fail counting as passing; the JSON parse that
//! proves the rest runs on the remaining rows only.
//!
//! - `json` on modern servers: a label `k` is read with `visitParamExtractRaw` (the
//!   first `"k":` in the line, raw text as the engine keeps it) when the line has no
//!   `\u` escape (which could spell a key), the longest alphanumeric run of `k`
//!   occurs in the line exactly as often as in `k` itself (so at most one member can
//!   be named `k` after the engine's sanitising and flattening: any other key
//!   producing `k` would contain that run too), and simdjson finds `k` at the top
//!   level (`JSONHas`, or `has(JSONExtractKeys(line), k)` for several labels), which
//!   also proves the line valid JSON — which the engine then parses without error.
//!   When the run does not occur at all the label is absent; when it occurs once but
//!   not as a top-level `"k":` the engine may or may not see it (unsafe). A row on
//!   which no label was found is not proven valid: it is unsafe when the SQL would
//!   keep it (an invalid line keeps `__error__`), fine when the SQL drops it (the
//!   engine drops it too: the labels it reads are absent either way). A filter on
//!   `__error__` asks for validity on every row (`isValidJSON`). Values: strings
//!   without escapes or U+FFFD (the engine unescapes and replaces it), numbers,
//!   booleans; `null`, objects and arrays set no label.
//! - `json` on 18.16 (rows not parsed at write: written before the fields existed): a
//!   row is safe when its line is a flat, compact JSON object whose keys are label
//!   identifiers and whose values are strings without escapes (and without U+FFFD),
//!   numbers, booleans or null ([`FLAT_JSON`]), and `"k":` occurs once (the engine
//!   skips a `null` and reads a later duplicate); then `visitParamExtractRaw(line,
//!   'k')` finds the same `"k":` and its raw value as the engine.
//! - `logfmt` (modern, without flags or parameters): a line without backslashes, a
//!   key `k` whose longest alphanumeric run occurs as often as in `k` (a unique
//!   candidate), found as `k=` at a pair boundary: at the line start, or after a
//!   whitespace byte when the last `"` before it is not preceded by `=` (so go-logfmt's
//!   decoder is not inside a quoted value there: only a quote right after `=` opens
//!   one, and the next quote closes it). The value is the quoted body (an unterminated
//!   one is a decoder error: no pair), or the bytes up to the next space (with `=` or
//!   `"` in them: unsafe; with a control byte: unsafe where the text matters, numbers
//!   and durations fail their patterns anyway); an empty value sets no label. A key
//!   made only of alphanumerics whose run occurs but never as `k=` is absent. Lines
//!   with a backslash are unsafe. `logfmt` never sets `__error__` (not strict).
//! - `pattern`: on modern servers a chain of `position(line, literal, from)` calls
//!   (one named column per step) follows Loki's matcher byte for byte; on 18.16 (no
//!   `from` argument) captures are extracted with one RE2 regex each, which finds the
//!   same first occurrence of every literal as Loki's matcher (a capture whose next
//!   literal is missing takes the rest of the line, later ones are absent). Where the
//!   literals before a capture are long ones, then single characters, the regex starts
//!   at the last long literal, whose first occurrence `position` checks against the
//!   one before (a row where it comes earlier is unsafe), and reads `[^c]*c` on
//!   ([`Gen::pattern_by_anchor`]); otherwise it is anchored at the start and lazy.
//!   The capture's preceding literal is captured too, so an empty match (absent) and
//!   an empty value (present, `""`) differ.
//! - numbers: a value is compared or summed on the server only when it is plain
//!   decimal text with at most 15 digits (integers on 18.16), which every float parser
//!   rounds the same; another value would fail or might differ, so the row is unsafe.
//!   Durations: one integer of at most 6 digits and a unit among `ns us ms s m h` (or
//!   `0`), exact in nanoseconds ([`Gen::duration`]).
//! - structured metadata on a row makes it unsafe (it joins the labels).

use std::collections::HashMap;
use std::sync::LazyLock;

use super::clickhouse::{bucket_sql, filter_sql, quote};
use super::pushdown::{AggPlan, PushParser};
use super::shape::{NO_DURATION, PARSED_JSON, PARSED_LOGFMT};
use crate::logql::ast::{CmpOp, LabelFilterExpr, MatchOp};
use crate::logql::matcher::Compiled;
use crate::logql::pipeline::ERROR_LABEL;
use crate::store::plan::re2_equivalent;

/// A flat, compact JSON object with identifier keys and escape-free scalar values.
pub(crate) const FLAT_JSON: &str = concat!(
    r#"^\{(?:"[A-Za-z_][A-Za-z0-9_]*":(?:"[^"\\\x00-\x1f\x{FFFD}]*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null)"#,
    r#"(?:,"[A-Za-z_][A-Za-z0-9_]*":(?:"[^"\\\x00-\x1f\x{FFFD}]*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null))*)?\}$"#
);

/// U+FFFD, which the engine's parsers turn into a space in values.
const REPLACEMENT: &str = "\u{FFFD}";

/// Past any line: a capture that starts here is absent (`position` from beyond the
/// end finds nothing).
const BEYOND: u64 = 1 << 40;

/// Plain decimal text every parser reads the same.
fn safe_number(v: &str, modern: bool) -> String {
    if modern {
        format!(
            "(length({v}) <= 16 AND match({v}, {}))",
            quote(r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$")
        )
    } else {
        format!("match({v}, {})", quote(r"^-?[0-9]{1,15}$"))
    }
}

/// A Go duration the SQL converts exactly: `0`, or up to 6 digits and one unit
/// (18.16; see [`Gen::duration`]).
fn safe_duration(v: &str) -> String {
    format!("match({v}, {})", quote(r"^(0|[0-9]{1,6}(ns|us|ms|s|m|h))$"))
}

/// Nanoseconds of a [`safe_duration`] value.
fn duration_ns(v: &str) -> String {
    format!(
        "(toInt64OrZero(extract({v}, '^([0-9]+)')) * {})",
        unit_ns(&format!("extract({v}, '([a-z]+)$')"))
    )
}

/// Nanoseconds in the Go duration unit `u` (0: not a unit the SQL converts).
fn unit_ns(u: &str) -> String {
    format!(
        "transform({u}, ['ns', 'us', 'ms', 's', 'm', 'h'], [1, 1000, 1000000, 1000000000, 60000000000, 3600000000000], 0)"
    )
}

/// RE2 source matching the literal `s`.
fn re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && !c.is_ascii_alphanumeric() && c != ' ' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Capture(String),
    Literal(String),
}

/// Loki's pattern syntax: `<name>` captures (identifiers), the rest literal.
fn pattern_nodes(p: &str) -> Vec<Node> {
    let mut nodes = Vec::new();
    let b = p.as_bytes();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' {
            let rest = &b[i + 1..];
            let ok_first = rest
                .first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_');
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if ok_first && rest.get(n) == Some(&b'>') {
                if !lit.is_empty() {
                    nodes.push(Node::Literal(std::mem::take(&mut lit)));
                }
                nodes.push(Node::Capture(p[i + 1..i + 1 + n].to_string()));
                i += n + 2;
                continue;
            }
        }
        let c = p[i..].chars().next().expect("in bounds");
        lit.push(c);
        i += c.len_utf8();
    }
    if !lit.is_empty() {
        nodes.push(Node::Literal(lit));
    }
    nodes
}

/// The longest run of ASCII alphanumerics in a label name and how often it occurs
/// (non-overlapping, left to right, as `countSubstrings`) in the name itself; `None`
/// when the name has none.
fn key_run(name: &str) -> Option<(String, usize)> {
    let run = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .max_by_key(|r| r.len())
        .filter(|r| !r.is_empty())?;
    Some((run.to_string(), name.matches(run).count()))
}

/// What the SQL knows about one extracted label on a row.
struct Ext {
    /// The label is set.
    has: String,
    /// Its value (`''` when not set).
    value: String,
    /// The SQL cannot tell (the row is unsafe).
    unsafe_: String,
    /// The SQL cannot tell the exact text (unsafe when the value is used as a string:
    /// a grouping key or a string matcher; numbers and durations are checked by their
    /// own strict patterns, which such values fail).
    unsafe_str: String,
    /// Parsed at write ([`super::shape`]): the label's number and duration columns.
    typed: Option<Typed>,
}

/// A label's number (Go's `ParseFloat`, NaN when it fails) and duration (Go's
/// `ParseDuration` in ns, [`NO_DURATION`] when it fails) as SQL expressions.
struct Typed {
    num: String,
    dur: String,
}

impl Ext {
    /// The label is set to a non-empty value (what `unwrap` reads).
    fn present(&self) -> String {
        format!("({} AND {} != '')", self.has, self.value)
    }

    fn absent() -> Ext {
        Ext {
            has: "0".into(),
            value: "''".into(),
            unsafe_: "0".into(),
            unsafe_str: "0".into(),
            typed: None,
        }
    }

    /// Unsafe as a string.
    fn unsafe_as_str(&self) -> String {
        format!("({} OR {})", self.unsafe_, self.unsafe_str)
    }
}

/// Builds the per-row expressions of one query: named intermediate columns
/// (`defs`), shared by every label that uses them.
struct Gen<'a> {
    parser: &'a PushParser,
    modern: bool,
    /// The cheap first stage (see [`aggregate_sql`]): labels without the proofs that
    /// cost a parse or a scan of the line's prefix; `unsafe_` then means "the engine's
    /// label may be neither absent nor this value".
    cheap: bool,
    /// Rows parsed at write with the query's parser ([`super::shape`]): labels are
    /// read from the fields, nothing to prove.
    fast: bool,
    /// Prefix of the named columns.
    prefix: &'static str,
    defs: Vec<(String, String)>,
    /// JSON (modern): the top-level key test for a label.
    json_top: JsonTop,
    /// JSON (modern): expressions that are true only on valid JSON objects.
    json_valid: Vec<String>,
}

#[derive(Clone, Copy)]
enum JsonTop {
    /// `JSONHas(line, k)` (one label).
    Has,
    /// `has(JSONExtractKeys(line), k)` (several labels: one parse).
    Keys,
}

impl<'a> Gen<'a> {
    /// A named column for `expr` (the same expression gets the same name).
    fn def(&mut self, expr: String) -> String {
        if let Some((n, _)) = self.defs.iter().find(|(_, e)| *e == expr) {
            return n.clone();
        }
        let n = format!("{}{}", self.prefix, self.defs.len());
        self.defs.push((n.clone(), expr));
        n
    }

    /// `(safe, nanoseconds)` of the Go duration in the SQL value `v`: safe when it
    /// is `0`, or at most 6 digits (an optional `+`) and one unit among
    /// `ns us ms s m h`, which the SQL converts exactly. On modern servers the number
    /// is what `trimRight` leaves of the value without unit letters, read with
    /// `toUInt32OrNull` (digits and an optional leading `+` only, as Go's parser
    /// reads them): per row, cheaper than a regex.
    fn duration(&mut self, v: &str) -> (String, String) {
        if !self.modern {
            return (safe_duration(v), duration_ns(v));
        }
        let num = self.def(format!("trimRight({v}, 'nsumh')"));
        let unit = self.def(unit_ns(&format!("substring({v}, length({num}) + 1)")));
        let n = self.def(format!("toUInt32OrNull({num})"));
        let safe = self.def(format!(
            "({v} = '0' OR (length({num}) <= 6 AND {unit} > 0 AND isNotNull({n})))"
        ));
        let ns = self.def(format!("(toInt64(assumeNotNull({n})) * {unit})"));
        (safe, ns)
    }

    /// `(safe, number)` of a label as a number filter or `unwrap` reads it: its parsed
    /// number when read from the fields, else plain decimal text converted here.
    fn number_of(&self, x: &Ext) -> (String, String) {
        match &x.typed {
            Some(t) => (format!("NOT isNaN({})", t.num), t.num.clone()),
            None => (
                safe_number(&x.value, self.modern),
                format!("toFloat64OrZero({})", x.value),
            ),
        }
    }

    /// `(safe, nanoseconds)` of a label as a duration filter reads it: its parsed
    /// duration when read from the fields, else [`Self::duration`] of its text.
    fn duration_of(&mut self, x: &Ext) -> (String, String) {
        match &x.typed {
            Some(t) => (format!("({} > {})", t.dur, NO_DURATION + 1), t.dur.clone()),
            None => self.duration(&x.value),
        }
    }

    fn extracted(&mut self, name: &str) -> Option<Ext> {
        match self.parser {
            PushParser::Lines => Some(Ext::absent()),
            PushParser::Json | PushParser::Logfmt if self.fast => Some(self.fields(name)),
            PushParser::Json if self.modern => self.json_modern(name),
            PushParser::Json => Some(self.json_flat(name)),
            PushParser::Logfmt => self.logfmt(name),
            PushParser::Pattern(p) => {
                let nodes = pattern_nodes(p);
                let Some(at) = nodes
                    .iter()
                    .position(|n| matches!(n, Node::Capture(c) if c == name && c != "_"))
                else {
                    return Some(Ext::absent());
                };
                Some(if self.modern {
                    self.pattern_by_position(&nodes, at)
                } else {
                    self.pattern_by_anchor(&nodes, at)
                        .unwrap_or_else(|| pattern_by_regex(&nodes, at))
                })
            }
        }
    }

    /// A label of a line parsed at write ([`super::shape`]): read from its fields.
    fn fields(&mut self, name: &str) -> Ext {
        let i = self.def(format!("indexOf(field_keys, {})", quote(name)));
        Ext {
            has: self.def(format!("({i} > 0)")),
            value: self.def(format!("field_values[{i}]")),
            unsafe_: "0".into(),
            unsafe_str: "0".into(),
            typed: Some(Typed {
                num: self.def(format!("field_nums[{i}]")),
                dur: self.def(format!("field_durs[{i}]")),
            }),
        }
    }

    /// A label of a line that passes 18.16's [`FLAT_JSON`] check: `"name":` can only
    /// be a key there. More than one is a duplicate (the engine skips a `null` and
    /// reads the next): unsafe.
    fn json_flat(&mut self, name: &str) -> Ext {
        let raw = self.def(format!("visitParamExtractRaw(line, {})", quote(name)));
        let key = quote(&format!("\"{name}\":"));
        let unsafe_ = format!(
            "(length(line) - length(replaceAll(line, {key}, ''))) > {}",
            name.len() + 3
        );
        Ext {
            has: self.def(format!("({raw} != '' AND {raw} != 'null')")),
            value: self.def(format!(
                "multiIf({raw} = 'null', '', startsWith({raw}, '\"'), substring({raw}, 2, length({raw}) - 2), {raw})"
            )),
            unsafe_,
            unsafe_str: "0".into(),
            typed: None,
        }
    }

    fn json_modern(&mut self, name: &str) -> Option<Ext> {
        let (run, n) = key_run(name)?;
        let c = self.def(format!("countSubstrings(line, {})", quote(&run)));
        let v = self.def(format!("visitParamExtractRaw(line, {})", quote(name)));
        if self.cheap {
            return Some(self.json_value(&c, n, &v, None));
        }
        let top = match self.json_top {
            JsonTop::Has => self.def(format!("JSONHas(line, {})", quote(name))),
            JsonTop::Keys => {
                let keys = self.def("JSONExtractKeys(line)".into());
                self.def(format!("has({keys}, {})", quote(name)))
            }
        };
        self.json_valid.push(top.clone());
        Some(self.json_value(&c, n, &v, Some(&top)))
    }

    /// The label read from `v` (`visitParamExtractRaw`) when the name's run occurs
    /// `n` times (`c`) and, unless cheap, `top` proves a top-level key.
    fn json_value(&mut self, c: &str, n: usize, v: &str, top: Option<&str>) -> Ext {
        let top = top.map(|t| format!(" AND {t}")).unwrap_or_default();
        let found = self.def(format!("({c} = {n}{top} AND {v} != '')"));
        let has = self.def(format!(
            "({found} AND {v} != 'null' AND NOT startsWith({v}, '{{') AND NOT startsWith({v}, '['))"
        ));
        let is_str = format!("startsWith({v}, '\"')");
        let value = format!("if({has}, if({is_str}, substring({v}, 2, length({v}) - 2), {v}), '')");
        let unsafe_str = format!(
            "(({has} AND {is_str} AND (length({v}) < 2 OR NOT endsWith({v}, '\"') OR position({v}, '\\\\') > 0 OR position({v}, {fffd}) > 0)) \
             OR ({has} AND NOT {is_str} AND (position({v}, ' ') > 0 OR position({v}, '\\t') > 0 OR position({v}, '\\n') > 0 OR position({v}, '\\r') > 0)))",
            fffd = quote(REPLACEMENT)
        );
        Ext {
            has,
            value: self.def(value),
            unsafe_: format!("(NOT ({c} = 0 OR {found}))"),
            unsafe_str,
            typed: None,
        }
    }

    fn logfmt(&mut self, name: &str) -> Option<Ext> {
        if !self.modern {
            // no proofs on 18.16: lines not parsed at write go to the engine
            return Some(Ext {
                unsafe_: "1".into(),
                ..Ext::absent()
            });
        }
        let (run, n) = key_run(name)?;
        let alnum = name.bytes().all(|b| b.is_ascii_alphanumeric());
        let c = self.def(format!("countSubstrings(line, {})", quote(&run)));
        let p = self.def(format!("position(line, {})", quote(&format!("{name}="))));
        let sync = if self.cheap {
            String::new()
        } else {
            let pre = self.def(format!("substring(line, 1, {p} - 1)"));
            let last_quote = self.def(format!(
                "(length({pre}) - length(substringIndex({pre}, '\"', -1)))"
            ));
            format!(
                " AND ({p} = 1 OR (substring(line, {p} - 1, 1) <= ' ' AND ({last_quote} = 0 OR substring(line, {last_quote} - 1, 1) != '=')))"
            )
        };
        let found = self.def(format!("({c} = {n} AND {p} > 0{sync})"));
        let s = self.def(format!("({p} + {})", name.len() + 1));
        let quoted = self.def(format!("(substring(line, {s}, 1) = '\"')"));
        let close = self.def(format!("position(line, '\"', {s} + 1)"));
        let space = self.def(format!("position(line, ' ', {s})"));
        let raw = self.def(format!(
            "substring(line, {s}, if({space} = 0, {BEYOND}, {space} - {s}))"
        ));
        let val = self.def(format!(
            "if({quoted}, substring(line, {s} + 1, toInt64({close}) - toInt64({s}) - 1), {raw})"
        ));
        // an unterminated quoted value is a decoder error: no pair
        let has = self.def(format!(
            "({found} AND NOT ({quoted} AND {close} = 0) AND {val} != '')"
        ));
        let absent_ok = if alnum {
            format!("({c} = 0 OR ({c} = {n} AND {p} = 0))")
        } else {
            format!("({c} = 0)")
        };
        // An unquoted value with `=` or `"` is a decoder error (no pair) unless a
        // control byte ends the value before them: unsafe either way. Control bytes
        // end the value early, U+FFFD becomes a space: only the text is unsure.
        let unsafe_ = format!(
            "(NOT ({absent_ok} OR {found}) \
             OR ({found} AND NOT {quoted} AND (position({raw}, '=') > 0 OR position({raw}, '\"') > 0)))"
        );
        let unsafe_str = format!(
            "(({found} AND NOT {quoted} AND match({raw}, '[\\\\x00-\\\\x1f]')) OR ({has} AND position({val}, {fffd}) > 0))",
            fffd = quote(REPLACEMENT)
        );
        Some(Ext {
            has: has.clone(),
            value: self.def(format!("if({has}, {val}, '')")),
            unsafe_,
            unsafe_str,
            typed: None,
        })
    }

    /// Loki's pattern matcher spelled with `position(line, literal, from)` (modern
    /// servers; byte offsets, 1-based), one named column per step: where each capture
    /// starts (at or past [`BEYOND`] when the match stopped before it) and where the
    /// literal after it starts (0: not found).
    fn pattern_by_position(&mut self, nodes: &[Node], at: usize) -> Ext {
        if matches!(nodes.get(at + 1), Some(Node::Capture(_))) {
            return Ext::absent();
        }
        let mut i = 0;
        let mut a = match nodes.first() {
            Some(Node::Literal(l)) => {
                i = 1;
                self.def(format!(
                    "toUInt64(if(startsWith(line, {}), {}, {BEYOND}))",
                    quote(l),
                    l.len() + 1
                ))
            }
            // the line's first capture is present on a non-empty line
            _ if at == 0 => self.def(format!("toUInt64(if(line != '', 1, {BEYOND}))")),
            // a later one needs a literal, which an empty line lacks: a constant start
            // (cheaper to search from)
            _ => "toUInt64(1)".to_string(),
        };
        let f = loop {
            let next = match nodes.get(i + 1) {
                Some(Node::Literal(m)) => Some(m),
                _ => None,
            };
            if i == at {
                break next.map(|m| self.def(format!("position(line, {}, {a})", quote(m))));
            }
            let Some(m) = next else {
                return Ext::absent();
            };
            let f = self.def(format!("position(line, {}, {a})", quote(m)));
            a = self.def(format!("({f} + {} + ({f} = 0) * {BEYOND})", m.len()));
            i += 2;
        };
        let has = format!("({a} < {BEYOND})");
        // no `if(has, …, '')` around it: a start at or past [`BEYOND`] is past every
        // line's end, where `substring` gives '' by itself
        let value = match f {
            None => format!("substring(line, {a})"),
            Some(f) => format!("substring(line, {a}, if({f} = 0, {BEYOND}, {f} - {a}))"),
        };
        Ext {
            has,
            value: self.def(value),
            unsafe_: "0".into(),
            unsafe_str: "0".into(),
            typed: None,
        }
    }
}

/// `s` with a backslash before each character of `special`.
fn backslashed(s: &str, special: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RE2 source matching the literal `s`, escaping only what RE2 needs outside a class
/// (the server takes a required substring from such a regex; `\]` or `\"` would
/// end it there).
fn re_literal(s: &str) -> String {
    backslashed(s, "\\|()^$.[?*+{")
}

/// A literal of one character, which [`re_until`] reads up to.
fn one_char(s: &str) -> bool {
    s.chars().count() == 1
}

/// `[^c]*`: the text up to the first `c` (one character).
fn re_until(c: &str) -> String {
    format!("[^{}]*", backslashed(c, "\\]^-["))
}

impl Gen<'_> {
    /// The capture at node `at` on 18.16, when the literals after the last one of
    /// several characters before it are single characters: that last long literal's
    /// first occurrence in the line, and each long one before it, found by
    /// `position(line, literal)` (no `from` argument there). Such a first occurrence
    /// is Loki's when it starts at or past the end of the previous literal; a row
    /// where it starts before is unsafe. From that literal one RE2 regex reads on
    /// with `[^c]*c` for the single characters (Loki's next occurrence of `c`), which
    /// is fast where the lazy [`pattern_by_regex`] is not. `None`: not this form.
    fn pattern_by_anchor(&mut self, nodes: &[Node], at: usize) -> Option<Ext> {
        let Some(Node::Literal(lead)) = at.checked_sub(1).map(|i| &nodes[i]) else {
            return None;
        };
        let leading = match nodes.first() {
            Some(Node::Literal(l)) => Some(l),
            _ => None,
        };
        let first = usize::from(leading.is_some());
        let anchor = (first..at)
            .rev()
            .find(|&i| matches!(&nodes[i], Node::Literal(l) if !one_char(l)));
        // the literals up to the anchor, each checked where it first occurs: long
        // ones only (a single character's first occurrence is seldom Loki's)
        let (mut ok, mut end) = match leading {
            Some(l) => (
                format!("startsWith(line, {})", quote(l)),
                (l.len() + 1).to_string(),
            ),
            None => ("1".to_string(), "1".to_string()),
        };
        let mut unsafe_ = Vec::new();
        for node in &nodes[first..anchor.map_or(first, |a| a + 1)] {
            let Node::Literal(l) = node else {
                continue;
            };
            if one_char(l) {
                return None;
            }
            let p = self.def(format!("position(line, {})", quote(l)));
            if end != "1" {
                unsafe_.push(format!("({ok} AND {p} > 0 AND {p} < {end})"));
            }
            ok = self.def(format!("({ok} AND {p} >= {end})"));
            end = format!("({p} + {})", l.len());
        }
        let mut re = String::from(if anchor.is_some() { "(?s)" } else { "(?s)^" });
        for k in anchor.unwrap_or(0)..at - 1 {
            match &nodes[k] {
                Node::Literal(l) => re.push_str(&re_literal(l)),
                Node::Capture(_) => match nodes.get(k + 1) {
                    Some(Node::Literal(c)) if one_char(c) => re.push_str(&re_until(c)),
                    _ => return None,
                },
            }
        }
        re.push('(');
        re.push_str(&re_literal(lead));
        match nodes.get(at + 1) {
            None => re.push_str(".*)"),
            Some(Node::Literal(c)) if one_char(c) => {
                re.push_str(&re_until(c));
                re.push(')');
            }
            Some(Node::Literal(next)) => {
                re.push_str(".*?)(?:");
                re.push_str(&re_literal(next));
                re.push_str("|$)");
            }
            Some(Node::Capture(_)) => return None,
        }
        let x = self.def(format!("extract(line, {})", quote(&re)));
        let value = format!("substring({x}, {})", lead.len() + 1);
        Some(Ext {
            has: format!("({ok} AND {x} != '')"),
            value: if anchor.is_some() {
                self.def(format!("if({ok}, {value}, '')"))
            } else {
                value
            },
            unsafe_: if unsafe_.is_empty() {
                "0".into()
            } else {
                format!("({})", unsafe_.join(" OR "))
            },
            unsafe_str: "0".into(),
            typed: None,
        })
    }
}

/// The capture at node `at` on 18.16: one lazy RE2 regex (see the module docs).
fn pattern_by_regex(nodes: &[Node], at: usize) -> Ext {
    let mut re = String::from("(?s)^");
    for n in &nodes[..at.saturating_sub(1)] {
        match n {
            Node::Literal(l) => re.push_str(&re_escape(l)),
            Node::Capture(_) => re.push_str(".*?"),
        }
    }
    let lead = match at.checked_sub(1).map(|i| &nodes[i]) {
        Some(Node::Literal(l)) => l.as_str(),
        _ => "",
    };
    re.push('(');
    re.push_str(&re_escape(lead));
    match nodes.get(at + 1) {
        None => re.push_str(".*)"),
        Some(Node::Literal(next)) => {
            re.push_str(".*?)(?:");
            re.push_str(&re_escape(next));
            re.push_str("|$)");
        }
        // consecutive captures are refused by the parser; never pushed
        Some(Node::Capture(_)) => return Ext::absent(),
    }
    let x = format!("extract(line, {})", quote(&re));
    if lead.is_empty() {
        Ext {
            has: "(line != '')".into(),
            value: x,
            unsafe_: "0".into(),
            unsafe_str: "0".into(),
            typed: None,
        }
    } else {
        Ext {
            has: format!("({x} != '')"),
            value: format!("substring({x}, {})", lead.len() + 1),
            unsafe_: "0".into(),
            unsafe_str: "0".into(),
            typed: None,
        }
    }
}

fn cmp_sql(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Neq => "!=",
        CmpOp::Gt => ">",
        CmpOp::Gte => ">=",
        CmpOp::Lt => "<",
        CmpOp::Lte => "<=",
    }
}

/// `(pass, unsafe)` of a label filter.
/// A string label matcher on the SQL value `v` (regexes fully anchored, as LogQL's);
/// `None` when the regex is not one RE2 reads the same.
fn string_match_sql(v: &str, m: &crate::logql::ast::LabelMatcher) -> Option<String> {
    Some(match m.op {
        MatchOp::Eq => format!("({v} = {})", quote(&m.value)),
        MatchOp::Neq => format!("({v} != {})", quote(&m.value)),
        MatchOp::Re | MatchOp::Nre => {
            if !re2_equivalent(&m.value) {
                return None;
            }
            let neg = if m.op == MatchOp::Nre { "NOT " } else { "" };
            format!(
                "({neg}match({v}, {}))",
                quote(&format!("^(?:{})$", m.value))
            )
        }
    })
}

fn label_filter_sql(e: &LabelFilterExpr, g: &mut Gen<'_>) -> Option<(String, String)> {
    Some(match e {
        LabelFilterExpr::And(a, b) | LabelFilterExpr::Or(a, b) => {
            let (pa, ua) = label_filter_sql(a, g)?;
            let (pb, ub) = label_filter_sql(b, g)?;
            let op = if matches!(e, LabelFilterExpr::And(..)) {
                "AND"
            } else {
                "OR"
            };
            (format!("({pa} {op} {pb})"), format!("({ua} OR {ub})"))
        }
        LabelFilterExpr::String(m) => {
            if m.name == ERROR_LABEL {
                let c = Compiled::new(m).ok()?;
                let v = if c.matches_value("") { "1" } else { "0" };
                return Some((v.into(), "0".into()));
            }
            let x = g.extracted(&m.name)?;
            let pass = string_match_sql(&x.value, m)?;
            (pass, x.unsafe_as_str())
        }
        LabelFilterExpr::Number { name, op, value } => {
            if !value.is_finite() {
                return None;
            }
            let x = g.extracted(name)?;
            let (safe, num) = g.number_of(&x);
            let h = &x.has;
            (
                format!("({h} AND {safe} AND {num} {} {value:?})", cmp_sql(*op)),
                format!("({} OR ({h} AND NOT {safe}))", x.unsafe_),
            )
        }
        LabelFilterExpr::Duration { name, op, value } => {
            if !value.is_finite() {
                return None;
            }
            let ns = (value * 1e9).round() as i64;
            let x = g.extracted(name)?;
            let (safe, dur) = g.duration_of(&x);
            let h = &x.has;
            (
                format!("({h} AND {safe} AND {dur} {} {ns})", cmp_sql(*op)),
                format!("({} OR ({h} AND NOT {safe}))", x.unsafe_),
            )
        }
        _ => return None,
    })
}

/// Whether a row may pass a label filter (first stage, cheap [`Gen`]): false only
/// when it fails whether each label it reads is absent or has the cheap value (the
/// only two things the engine can see), and no conversion could fail.
fn label_filter_maybe(e: &LabelFilterExpr, g: &mut Gen<'_>) -> Option<String> {
    Some(match e {
        LabelFilterExpr::And(a, b) | LabelFilterExpr::Or(a, b) => {
            let a = label_filter_maybe(a, g)?;
            let b = label_filter_maybe(b, g)?;
            let op = if matches!(e, LabelFilterExpr::And(..)) {
                "AND"
            } else {
                "OR"
            };
            format!("({a} {op} {b})")
        }
        // the line may not parse: either value
        LabelFilterExpr::String(m) if m.name == ERROR_LABEL => "1".into(),
        LabelFilterExpr::String(m) => {
            let absent = if Compiled::new(m).ok()?.matches_value("") {
                "1"
            } else {
                "0"
            };
            let x = g.extracted(&m.name)?;
            let pass = string_match_sql(&x.value, m)?;
            format!("({} OR {absent} OR {pass})", x.unsafe_as_str())
        }
        LabelFilterExpr::Number { name, op, value } => {
            let x = g.extracted(name)?;
            let (safe, num) = g.number_of(&x);
            format!(
                "({} OR ({} AND (NOT {safe} OR {num} {} {value:?})))",
                x.unsafe_,
                x.has,
                cmp_sql(*op)
            )
        }
        LabelFilterExpr::Duration { name, op, value } => {
            let ns = (value * 1e9).round() as i64;
            let x = g.extracted(name)?;
            let (safe, dur) = g.duration_of(&x);
            format!(
                "({} OR ({} AND (NOT {safe} OR {dur} {} {ns})))",
                x.unsafe_,
                x.has,
                cmp_sql(*op)
            )
        }
        _ => return None,
    })
}

/// Lines a parser's SQL cannot read at all (escapes that may spell keys or values).
fn unsafe_line(parser: &PushParser) -> &'static str {
    match parser {
        PushParser::Json => "position(line, '\\\\u') > 0",
        PushParser::Logfmt => "position(line, '\\\\') > 0",
        PushParser::Pattern(_) | PushParser::Lines => "0",
    }
}

/// The label names a filter reads, and whether it reads `__error__`.
fn names(e: &LabelFilterExpr, out: &mut Vec<String>) -> bool {
    match e {
        LabelFilterExpr::And(a, b) | LabelFilterExpr::Or(a, b) => {
            let x = names(a, out);
            names(b, out) || x
        }
        LabelFilterExpr::String(m) if m.name == ERROR_LABEL => true,
        LabelFilterExpr::String(m) => {
            out.push(m.name.clone());
            false
        }
        LabelFilterExpr::Number { name, .. }
        | LabelFilterExpr::Duration { name, .. }
        | LabelFilterExpr::Bytes { name, .. }
        | LabelFilterExpr::Ip { name, .. } => {
            out.push(name.clone());
            name == ERROR_LABEL
        }
    }
}

/// The rows an aggregation query reads and how it groups them.
pub(crate) struct Span<'a> {
    /// Fingerprints, comma-separated.
    pub fps: &'a str,
    /// The stream-group expression (see [`super::clickhouse::group_expr`]); `None`:
    /// group by fingerprint.
    pub group: Option<String>,
    pub origin: i64,
    pub width: i64,
    pub buckets: i64,
    /// `origin + width * buckets`.
    pub hi: i64,
}

/// The aggregation queries over a [`Span`]; `None` when a part has no SQL form.
///
/// For `json` and `logfmt` the rows parsed at write with that parser
/// ([`super::shape`]) are read from their fields, and the first query also counts the
/// other rows (`other`); only when there are some does [`AggSql::others`] (the
/// proofs) run. The proofs are large expressions the current engine takes tens of
/// milliseconds to plan, so a query over parsed rows only does not carry them.
pub(crate) fn aggregate_sql(plan: &AggPlan, modern: bool, span: &Span<'_>) -> Option<AggSql> {
    let (lines, exact) = filter_sql(&plan.filters, modern);
    if !exact {
        return None;
    }
    let simple = match plan.parser {
        PushParser::Json => Some(PARSED_JSON),
        PushParser::Logfmt => Some(PARSED_LOGFMT),
        _ => None,
    };
    Some(match simple {
        Some(shape) => AggSql {
            first: agg_query(
                plan,
                span,
                branch(plan, modern, span, &lines, Some((shape, true)))?,
                true,
            ),
            others: Some(agg_query(
                plan,
                span,
                branch(plan, modern, span, &lines, Some((shape, false)))?,
                false,
            )),
        },
        None => AggSql {
            first: agg_query(plan, span, branch(plan, modern, span, &lines, None)?, false),
            others: None,
        },
    })
}

/// The aggregate and the unsafe rows of one [`branch`]; `others`: it counts the rows
/// not parsed at write (the parsed rows' branch).
fn agg_query(plan: &AggPlan, span: &Span<'_>, branch: String, others: bool) -> AggQuery {
    let nkeys = plan.keys.len();
    let key_cols: Vec<String> = (0..nkeys).map(|i| format!("_k{i}")).collect();
    let unwrap = plan.unwrap.is_some();
    let fp_col = if span.group.is_some() {
        "any(fingerprint)"
    } else {
        "_g"
    };
    // Constant group and bucket columns are not grouped by: a constant among the
    // keys makes the server hash every key together, noticeably slower than the one
    // string key of a single-bucket `by (label)` query.
    let mut group_by: Vec<&str> = Vec::new();
    if span.group.is_none() {
        group_by.push("_g");
    }
    let bucket = if span.buckets == 1 {
        bucket_sql(span.origin, span.width, span.buckets)
    } else {
        group_by.push("_bucket");
        "_bucket".into()
    };
    group_by.extend(key_cols.iter().map(String::as_str));
    let group_by = if group_by.is_empty() {
        String::new()
    } else {
        format!("GROUP BY {}", group_by.join(", "))
    };
    let agg = format!(
        "SELECT {fp_col} AS _fp, {bucket} AS _bucket, {keys} AS keys,
                toUInt64(countIf(_ok)) AS count,
                {bytes} AS bytes,
                {sum} AS sum,
                {min} AS min,
                {max} AS max,
                toUInt64(countIf(_bad)) AS bad,
                {other} AS other
         FROM ({branch})
         {group_by}
         HAVING count > 0 OR bad > 0 OR other > 0",
        other = if others {
            "toUInt64(countIf(NOT _parsed))"
        } else {
            "toUInt64(0)"
        },
        keys = if key_cols.is_empty() {
            "emptyArrayString()".to_string()
        } else {
            format!("[{}]", key_cols.join(", "))
        },
        bytes = if plan.bytes {
            "toUInt64(sumIf(_len, _ok))"
        } else {
            "toUInt64(0)"
        },
        sum = if unwrap {
            "toFloat64(sumIf(_v, _ok))"
        } else {
            "toFloat64(0)"
        },
        min = if unwrap {
            "toFloat64(minIf(_v, _ok))"
        } else {
            "toFloat64(0)"
        },
        max = if unwrap {
            "toFloat64(maxIf(_v, _ok))"
        } else {
            "toFloat64(0)"
        },
    );
    AggQuery {
        agg,
        rest: format!("SELECT fingerprint, ts, seq, line, metadata FROM ({branch}) WHERE _bad"),
    }
}

/// The per-row query of one branch: `ts, seq, line, metadata, fingerprint, _g,
/// _bucket`, the named expressions, `_unsafe, _pass, _bad, _ok, _v`, `_len` (bytes)
/// and `_k0…` (keys). `shape`: `(simple shape, whether this branch reads the rows that
/// have it)`; `None` reads every row the proving way.
fn branch(
    plan: &AggPlan,
    modern: bool,
    span: &Span<'_>,
    lines: &str,
    shape: Option<(u8, bool)>,
) -> Option<String> {
    let Span {
        fps,
        origin,
        width,
        buckets,
        hi,
        ..
    } = *span;
    let fast = shape.is_some_and(|(_, f)| f);
    let mut used = Vec::new();
    let reads_error = plan
        .label_filter
        .as_ref()
        .is_some_and(|e| names(e, &mut used));
    used.extend(plan.unwrap.iter().cloned());
    used.extend(plan.keys.iter().cloned());
    used.sort();
    used.dedup();
    let new_gen = |cheap: bool, prefix: &'static str, json_top: JsonTop| Gen {
        parser: &plan.parser,
        modern,
        cheap,
        fast,
        prefix,
        defs: Vec::new(),
        json_top,
        json_valid: Vec::new(),
    };
    let mut g = new_gen(
        false,
        "_d",
        if used.len() > 1 {
            JsonTop::Keys
        } else {
            JsonTop::Has
        },
    );
    let (pass, unsafe_filter) = match &plan.label_filter {
        Some(e) => label_filter_sql(e, &mut g)?,
        None => ("1".into(), "0".into()),
    };
    let (present, value, unsafe_unwrap) = match &plan.unwrap {
        Some(u) => {
            let x = g.extracted(u)?;
            let present = x.present();
            let (safe, num) = g.number_of(&x);
            (
                present.clone(),
                num,
                format!("({} OR ({present} AND NOT {safe}))", x.unsafe_),
            )
        }
        None => ("1".into(), "toFloat64(0)".into(), "0".into()),
    };
    let mut keys = Vec::new();
    let mut unsafe_keys = Vec::new();
    for k in &plan.keys {
        let x = g.extracted(k)?;
        unsafe_keys.push(x.unsafe_as_str());
        keys.push(x.value);
    }
    // Per parser: rows the SQL cannot read at all, and rows it keeps only when they
    // are proven to parse without error. Simple lines parse and hold no escapes.
    let (line_unsafe, unproven) = match &plan.parser {
        _ if fast => ("0".to_string(), "0".to_string()),
        PushParser::Json if modern => {
            if reads_error || g.json_valid.is_empty() {
                g.json_valid
                    .push("(startsWith(line, '{') AND isValidJSON(line))".into());
            }
            let valid = g.json_valid.join(" OR ");
            (
                unsafe_line(&plan.parser).to_string(),
                format!("NOT ({valid})"),
            )
        }
        PushParser::Json => (format!("NOT match(line, {})", quote(FLAT_JSON)), "0".into()),
        p => (unsafe_line(p).to_string(), "0".into()),
    };
    let unsafe_keys = if unsafe_keys.is_empty() {
        "0".to_string()
    } else {
        unsafe_keys.join(" OR ")
    };
    let group = match &span.group {
        Some(g) => g.clone(),
        None => "fingerprint".to_string(),
    };
    // The parsed rows' branch reads every row and counts the others (`_parsed`).
    let (shape_cond, parsed) = match shape {
        Some((s, true)) => (String::new(), format!("(shape = {s})")),
        Some((s, false)) => (format!(" AND shape != {s}"), "1".to_string()),
        None => (String::new(), "1".to_string()),
    };
    let range = format!(
        "WHERE tenant = ? AND fingerprint IN ({fps}) AND ts > {origin} AND ts <= {hi}{lines}{shape_cond}"
    );
    // JSON with label filters on modern servers: a first stage drops the rows that
    // fail the filters whatever the proofs would say, so the JSON parse runs on the
    // rest only. (Where most rows pass, or for logfmt, whose proof is cheaper than the
    // extra stage, one stage is faster; simple lines need no proof.)
    let two_stage =
        !fast && modern && plan.parser == PushParser::Json && plan.label_filter.is_some();
    let mut reuse: HashMap<String, String> = HashMap::new();
    let from = if two_stage {
        let mut c = new_gen(true, "_c", JsonTop::Has);
        let filter = match &plan.label_filter {
            Some(e) => label_filter_maybe(e, &mut c)?,
            None => "1".into(),
        };
        let present = match &plan.unwrap {
            Some(u) => {
                let x = c.extracted(u)?;
                format!("({} OR {})", x.unsafe_, x.present())
            }
            None => "1".into(),
        };
        let defs: String = c
            .defs
            .iter()
            .map(|(n, e)| format!(", {e} AS {n}"))
            .collect();
        // The second stage reads what the first computed instead of computing it again.
        reuse = c.defs.iter().map(|(n, e)| (e.clone(), n.clone())).collect();
        format!(
            "FROM (SELECT fingerprint, ts, seq, line, metadata{defs} FROM entries {range}
                     AND (metadata != '' OR {} OR ({filter} AND {present})))",
            unsafe_line(&plan.parser)
        )
    } else {
        format!("FROM entries {range}")
    };
    let mut cols: Vec<(String, String)> = g
        .defs
        .iter()
        .map(|(n, e)| (n.clone(), reuse.get(e).unwrap_or(e).clone()))
        .collect();
    let mut col = |n: &str, e: String| cols.push((n.to_string(), e));
    col("_g", group);
    col("_bucket", bucket_sql(origin, width, buckets));
    col("_parsed", parsed);
    col(
        "_unsafe",
        format!(
            "(_parsed AND (metadata != '' OR {line_unsafe} OR {unsafe_filter} OR {unsafe_unwrap} OR {unsafe_keys}))"
        ),
    );
    col("_pass", format!("(_parsed AND {pass} AND {present})"));
    col("_bad", format!("(_unsafe OR (_pass AND {unproven}))"));
    col("_ok", "(_pass AND NOT _bad)".into());
    col("_v", value);
    let mut out = vec![
        "ts",
        "seq",
        "line",
        "metadata",
        "fingerprint",
        "_g",
        "_bucket",
        "_parsed",
        "_unsafe",
        "_pass",
        "_bad",
        "_ok",
        "_v",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if plan.bytes {
        col("_len", "length(line)".into());
        out.push("_len".into());
    }
    // Keys of rows that do not count read '' (fewer groups) where rows can fail a
    // filter; otherwise such a row (an unsafe one) keeps its key with a count of 0.
    let may_fail = plan.label_filter.is_some() || plan.unwrap.is_some();
    for (i, k) in keys.iter().enumerate() {
        let k = if may_fail {
            format!("if(_ok, {k}, '')")
        } else {
            k.clone()
        };
        col(&format!("_k{i}"), k);
        out.push(format!("_k{i}"));
    }
    let base_cols = if two_stage {
        // the first stage's columns, its named ones included
        "*"
    } else if fast {
        "ts, seq, line, metadata, fingerprint, shape, field_keys, field_values, field_nums, field_durs"
    } else {
        "ts, seq, line, metadata, fingerprint"
    };
    let rows = if modern {
        layered(&cols, format!("SELECT {base_cols} {from}"))
    } else {
        // 18.16 plans these small expressions quickly, and reads every column a
        // `SELECT *` layer names
        let cols: Vec<String> = cols.iter().map(|(n, e)| format!("{e} AS {n}")).collect();
        format!(
            "SELECT {base_cols}, {} {from}",
            cols.join(",\n                ")
        )
    };
    Some(format!("SELECT {} FROM ({rows})", out.join(", ")))
}

/// `base` (a `SELECT`) with the named columns `cols` added in layers of subqueries:
/// each layer's expressions read only columns of the layers below (a name is used
/// only after the column that defines it). With all of them in one `SELECT` the
/// current engine's analyzer expands every alias into each use: planning a logfmt
/// proof of twenty columns took about 100 ms that way, against a few per layer.
fn layered(cols: &[(String, String)], base: String) -> String {
    static IDENT: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").expect("valid"));
    let mut level: HashMap<&str, usize> = HashMap::new();
    let mut layers: Vec<Vec<String>> = Vec::new();
    for (n, e) in cols {
        // a name inside a string literal only lifts the column a layer: harmless
        let l = IDENT
            .find_iter(e)
            .filter_map(|m| level.get(m.as_str()))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        level.insert(n, l);
        if layers.len() <= l {
            layers.resize(l + 1, Vec::new());
        }
        layers[l].push(format!("{e} AS {n}"));
    }
    layers.into_iter().fold(base, |below, cols| {
        format!(
            "SELECT *, {} FROM ({below})",
            cols.join(",\n                ")
        )
    })
}

/// The queries of a pushed-down aggregation.
pub(crate) struct AggSql {
    /// Over the rows parsed at write with the query's parser (when it has one: their
    /// `other` counts the rest), or over every row.
    pub first: AggQuery,
    /// Over the rows not parsed at write, with the proofs: to run when `first` counted
    /// `other` rows.
    pub others: Option<AggQuery>,
}

/// One branch's queries; each binds the tenant once (`?`).
pub(crate) struct AggQuery {
    /// Per group, bucket and keys: fingerprint (one of the group's), bucket, keys,
    /// count, bytes, sum, min, max, bad (unsafe rows), other (rows left to
    /// [`AggSql::others`]).
    pub agg: String,
    /// The unsafe rows: fingerprint, ts, seq, line, metadata.
    pub rest: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_for(p: &PushParser, modern: bool) -> Gen<'_> {
        Gen {
            parser: p,
            modern,
            cheap: false,
            fast: false,
            prefix: "_d",
            defs: Vec::new(),
            json_top: JsonTop::Has,
            json_valid: Vec::new(),
        }
    }

    #[test]
    fn pattern_regexes() {
        let p = PushParser::Pattern(r#"<ip> - [<_>] "<method> <path> <_>" <status>"#.into());
        let mut g = gen_for(&p, false);
        let x = g.extracted("ip").expect("pattern");
        assert_eq!(x.has, "(line != '')");
        assert!(
            x.value.contains(r"(??s)^(.*??)(??: \\- \\[|$)"),
            "{}",
            x.value
        );
        // after the long literals, single spaces: one regex from the last long one,
        // whose first occurrence is checked against the one before
        let x = g.extracted("path").expect("pattern");
        assert!(x.has.contains("!= ''"), "{}", x.has);
        let d = exprs(&g);
        assert!(
            d.contains(&r#"extract(line, '(??s)] "[^ ]*( [^ ]*)')"#),
            "{d:?}"
        );
        assert!(d.contains(&"position(line, ' - [')"), "{d:?}");
        assert!(d.contains(&r#"position(line, '] "')"#), "{d:?}");
        assert!(x.unsafe_.contains(" < "), "{}", x.unsafe_);
        // a single character before a long literal: the lazy regex
        let x = g.extracted("status").expect("pattern");
        assert!(x.value.contains(r#"(\\" .*)"#), "{}", x.value);
        assert_eq!(g.extracted("nope").expect("absent").has, "0");
        assert_eq!(g.extracted("_").expect("absent").has, "0");
    }

    /// The named expressions generated so far.
    fn exprs<'g>(g: &'g Gen<'_>) -> Vec<&'g str> {
        g.defs.iter().map(|(_, e)| e.as_str()).collect()
    }

    #[test]
    fn pattern_anchor_forms() {
        let p = PushParser::Pattern(r#"GET <path>?<query> HTTP/<v>"#.into());
        let mut g = gen_for(&p, false);
        // the leading literal anchors the regex; `?` escaped, up to the next `?`
        let x = g.extracted("path").expect("pattern");
        assert_eq!(x.unsafe_, "0");
        assert!(x.has.starts_with("(startsWith(line, 'GET ')"), "{}", x.has);
        let e = exprs(&g);
        assert!(e.contains(&"extract(line, '(??s)^(GET [^??]*)')"), "{e:?}");
        // a long literal after the capture: lazy up to it or the end
        let x = g.extracted("query").expect("pattern");
        assert_eq!(x.unsafe_, "0");
        let e = exprs(&g);
        assert!(
            e.contains(&"extract(line, '(??s)^GET [^??]*(\\\\??.*??)(??: HTTP/|$)')"),
            "{e:?}"
        );
        // a single character before a long literal: the lazy regex
        let x = g.extracted("v").expect("pattern");
        assert!(x.value.contains("'(??s)^GET .*??"), "{}", x.value);
        // a long literal after a capture: checked where it first occurs, then read on
        let p = PushParser::Pattern("<_> took <d> ms, <n> rows".into());
        let mut g = gen_for(&p, false);
        let x = g.extracted("n").expect("pattern");
        let e = exprs(&g);
        assert_eq!(&e[..2], ["position(line, ' took ')", "(1 AND _d0 >= 1)"]);
        assert_eq!(x.unsafe_, "((_d1 AND _d2 > 0 AND _d2 < (_d0 + 6)))");
        assert!(
            e.contains(&"extract(line, '(??s)( ms, .*??)(??: rows|$)')"),
            "{e:?}"
        );
    }

    #[test]
    fn pattern_positions_share_steps() {
        let p = PushParser::Pattern(r#"<ip> - [<_>] "<method> <path> <_>""#.into());
        let mut g = gen_for(&p, true);
        g.extracted("method").expect("pattern");
        let n = g.defs.len();
        // `path` continues the chain of `method`: one more search and its value
        g.extracted("path").expect("pattern");
        assert_eq!(g.defs.len(), n + 3, "{:?}", g.defs);
    }

    #[test]
    fn key_runs() {
        assert_eq!(key_run("duration_ms"), Some(("duration".into(), 1)));
        assert_eq!(key_run("status"), Some(("status".into(), 1)));
        assert_eq!(key_run("ab_ab"), Some(("ab".into(), 2)));
        assert_eq!(key_run("_"), None);
    }

    #[test]
    fn logfmt_proofs_only_on_modern_servers() {
        let p = PushParser::Logfmt;
        // 18.16: a line not parsed at write is always the engine's
        let old = gen_for(&p, false).extracted("duration").expect("logfmt");
        assert_eq!((old.unsafe_.as_str(), old.has.as_str()), ("1", "0"));
        let mut g = gen_for(&p, true);
        g.extracted("duration").expect("logfmt");
        assert!(
            g.defs
                .iter()
                .any(|(_, e)| e.starts_with("countSubstrings(line"))
        );
        assert!(gen_for(&p, true).extracted("_").is_none());
        // parsed at write: the fields, on either server
        for m in [false, true] {
            let mut g = gen_for(&p, m);
            g.fast = true;
            let x = g.extracted("duration").expect("fields");
            assert_eq!(x.unsafe_, "0");
            let t = x.typed.expect("typed");
            assert!(
                g.defs
                    .iter()
                    .any(|(n, e)| *n == t.dur && e.starts_with("field_durs["))
            );
        }
    }

    #[test]
    fn nodes() {
        assert_eq!(
            pattern_nodes("a<b>c<_>"),
            vec![
                Node::Literal("a".into()),
                Node::Capture("b".into()),
                Node::Literal("c".into()),
                Node::Capture("_".into())
            ]
        );
        assert_eq!(pattern_nodes("<1x>"), vec![Node::Literal("<1x>".into())]);
    }
}
