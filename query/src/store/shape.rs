//! The shape of a log line, classified once when it is written to ClickHouse (the
//! `shape` column of `entries`), and the labels the engine's parser extracts from it
//! (the `field_*` columns), so that a pushed-down `json` or `logfmt` stage reads those
//! rows' labels, numbers and durations from columns instead of parsing the line, and
//! still answers exactly as the engine (the fields *are* the engine's answer). `0`
//! (also the value of rows written before the column existed) means "not parsed at
//! write": the SQL then proves each row's result the expensive way (see
//! [`super::sql`]). `1` was a flat-JSON class without fields (rows written before the
//! fields existed): read as `0`.
//!
//! - [`PARSED_JSON`]: a flat, compact JSON object ([`flat_json`]: identifier keys, each
//!   once, scalar values without escapes) that the engine's `json` stage parses without
//!   error. (Only flat lines: a nested line's flattened keys would make the fields
//!   wide, and such lines are rarer.)
//! - [`PARSED_LOGFMT`]: a line that starts with `key=` (a label identifier); the
//!   engine's `logfmt` stage (without flags) never fails, so its labels are stored
//!   whatever the rest of the line holds.
//!
//! Lines with more than [`MAX_KEYS`] labels are not parsed at write (wide fields; the
//! uniqueness check is quadratic). Per label the fields hold its value, its number as
//! `| label > N` reads it (Go's `ParseFloat`; NaN when that fails) and its duration as
//! `| label > 1s` reads it (Go's `ParseDuration`, in nanoseconds; [`NO_DURATION`] when
//! that fails). Stream labels play no part: the plan leaves every name a selected
//! stream has (and `…_extracted` names) to the engine.

use std::sync::LazyLock;

use argus_schemas::Labels;

use crate::logql::ast::{Parser, Stage};
use crate::logql::pipeline::label_filter::{go_parse_duration, go_parse_float};
use crate::logql::pipeline::{ERROR_LABEL, Pipeline};

/// The engine's `json` stage parsed the line (see the module docs).
pub const PARSED_JSON: u8 = 2;
/// The engine's `logfmt` stage parsed the line (see the module docs).
pub const PARSED_LOGFMT: u8 = 3;

/// The duration field of a value Go's `ParseDuration` rejects.
pub const NO_DURATION: i64 = i64::MIN;

/// A line's shape and the labels the engine's parser for that shape extracts.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    pub shape: u8,
    pub keys: Vec<String>,
    pub values: Vec<String>,
    /// Go's `ParseFloat` of each value; NaN when it fails.
    pub nums: Vec<f64>,
    /// Go's `ParseDuration` of each value in nanoseconds; [`NO_DURATION`] when it fails.
    pub durs: Vec<i64>,
}

fn pipeline(p: Parser) -> Pipeline {
    Pipeline::new(&[Stage::Parser(p)]).expect("a parser without parameters compiles")
}

static JSON: LazyLock<Pipeline> = LazyLock::new(|| pipeline(Parser::Json(Vec::new())));
static LOGFMT: LazyLock<Pipeline> = LazyLock::new(|| {
    pipeline(Parser::Logfmt {
        strict: false,
        keep_empty: false,
        params: Vec::new(),
    })
});

/// The shape of `line` and its parsed labels (shape 0: none).
pub fn classify(line: &str) -> Parsed {
    let b = line.as_bytes();
    let (shape, pipeline) = match b.first() {
        Some(b'{') if !line.contains('\u{FFFD}') && flat_json(b) => (PARSED_JSON, &*JSON),
        Some(_) if ident(b, 0).is_some_and(|e| b.get(e) == Some(&b'=')) => {
            (PARSED_LOGFMT, &*LOGFMT)
        }
        _ => return Parsed::default(),
    };
    let empty = Labels::default();
    let Some(out) = pipeline.process(0, line, &empty, &empty) else {
        return Parsed::default();
    };
    if out.labels.get(ERROR_LABEL).is_some() || out.labels.len() > MAX_KEYS {
        return Parsed::default();
    }
    let mut p = Parsed {
        shape,
        ..Parsed::default()
    };
    for (k, v) in out.labels.iter() {
        p.keys.push(k.to_string());
        p.values.push(v.to_string());
        p.nums.push(go_parse_float(v).unwrap_or(f64::NAN));
        p.durs.push(go_parse_duration(v).unwrap_or(NO_DURATION));
    }
    p
}

/// `[A-Za-z_][A-Za-z0-9_]*` starting at `i`; returns its end.
fn ident(b: &[u8], i: usize) -> Option<usize> {
    let first = *b.get(i)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let n = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    Some(i + n)
}

/// At most this many keys on a classified line: the uniqueness check is quadratic, and
/// it runs for every line written. A wider line reads 0 (the proving branch).
const MAX_KEYS: usize = 64;

/// Keys seen so far on one line; a repeat (or more than [`MAX_KEYS`]) makes the line
/// not simple.
#[derive(Default)]
struct Keys<'a>(Vec<&'a [u8]>);

impl<'a> Keys<'a> {
    fn first_time(&mut self, k: &'a [u8]) -> bool {
        if self.0.len() >= MAX_KEYS || self.0.contains(&k) {
            return false;
        }
        self.0.push(k);
        true
    }
}

fn flat_json(b: &[u8]) -> bool {
    let mut keys = Keys::default();
    let mut i = 1;
    if b.get(i) == Some(&b'}') {
        return i + 1 == b.len();
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return false;
        }
        let Some(end) = ident(b, i + 1) else {
            return false;
        };
        if b.get(end) != Some(&b'"') || b.get(end + 1) != Some(&b':') {
            return false;
        }
        if !keys.first_time(&b[i + 1..end]) {
            return false;
        }
        i = end + 2;
        let Some(next) = json_scalar(b, i) else {
            return false;
        };
        i = next;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return i + 1 == b.len(),
            _ => return false,
        }
    }
}

/// A string without quotes, backslashes or control characters, a JSON number,
/// `true`, `false` or `null` at `i`; returns its end.
fn json_scalar(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => {
            let n = b[i + 1..]
                .iter()
                .take_while(|c| **c != b'"' && **c != b'\\' && **c >= 0x20)
                .count();
            (b.get(i + 1 + n) == Some(&b'"')).then_some(i + n + 2)
        }
        b't' => b[i..].starts_with(b"true").then_some(i + 4),
        b'f' => b[i..].starts_with(b"false").then_some(i + 5),
        b'n' => b[i..].starts_with(b"null").then_some(i + 4),
        _ => json_number(b, i),
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?` at `i`; returns its end.
fn json_number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], i: usize| {
        b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => i += digits(b, i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let n = digits(b, i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(b, i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(p: &Pipeline, line: &str) -> Vec<(String, String)> {
        let out = p
            .process(0, line, &Labels::default(), &Labels::default())
            .expect("a parser keeps the line");
        out.labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fields(p: &Parsed) -> Vec<(String, String)> {
        p.keys
            .iter()
            .cloned()
            .zip(p.values.iter().cloned())
            .collect()
    }

    #[test]
    fn flat_json_lines() {
        for l in [
            "{}",
            r#"{"a":1}"#,
            r#"{"level":"error","status":500,"ok":true,"x":null,"f":-0.5e+3,"msg":"日志 a=b"}"#,
            r#"{"_k9":"","b":false}"#,
        ] {
            let p = classify(l);
            assert_eq!(p.shape, PARSED_JSON, "{l}");
            assert_eq!(fields(&p), engine(&JSON, l), "{l}");
        }
        for l in [
            "{",
            "{}x",
            r#"{"a":1,}"#,
            r#"{"a": 1}"#,
            r#" {"a":1}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a.b":1}"#,
            r#"{"9a":1}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a":"x\ny"}"#,
            "{\"a\":\"x\ty\"}",
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":tru}"#,
            "{\"a\":\"\u{FFFD}\"}",
            r#"{"a":"unterminated}"#,
        ] {
            assert_eq!(classify(l), Parsed::default(), "{l}");
        }
    }

    /// The fields hold the numbers and durations the engine's label filters read.
    #[test]
    fn numbers_and_durations_as_the_label_filters_read_them() {
        let p = classify(r#"{"level":"error","status":500,"took":"1.5s","x":null,"e":""}"#);
        let at = |k: &str| p.keys.iter().position(|x| x == k).expect(k);
        assert_eq!(p.values[at("level")], "error");
        assert_eq!(p.nums[at("status")], 500.0);
        assert_eq!(p.durs[at("status")], NO_DURATION);
        assert!(p.nums[at("took")].is_nan());
        assert_eq!(p.durs[at("took")], 1_500_000_000);
        assert!(p.nums[at("level")].is_nan());
        assert_eq!(p.durs[at("level")], NO_DURATION);
    }

    #[test]
    fn logfmt_lines_keep_what_the_engine_reads() {
        let line =
            r#"level=warn msg="a=b \"quoted\"" duration=250ms n=1e3 empty= dup=1 dup=2 9x=1"#;
        let p = classify(line);
        assert_eq!(p.shape, PARSED_LOGFMT);
        assert_eq!(fields(&p), engine(&LOGFMT, line));
        let at = |k: &str| p.keys.iter().position(|x| x == k).expect(k);
        assert_eq!(p.values[at("msg")], r#"a=b "quoted""#);
        assert_eq!(p.durs[at("duration")], 250_000_000);
        assert_eq!(p.nums[at("n")], 1000.0);
        assert!(
            !p.keys.iter().any(|k| k == "empty"),
            "an empty value sets no label"
        );
        // not parsed at write: the first token is not `key=`
        for l in [
            "",
            "GET /a?b=c",
            r#"1.2.3.4 - - [x] "GET / HTTP/1.1" 200"#,
            " a=1",
            "=1",
            "9a=1",
        ] {
            assert_eq!(classify(l), Parsed::default(), "{l}");
        }
    }

    #[test]
    fn wide_lines_are_left_to_the_proofs() {
        let wide = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", members.join(","))
        };
        assert_eq!(classify(&wide(MAX_KEYS)).shape, PARSED_JSON);
        assert_eq!(classify(&wide(MAX_KEYS + 1)), Parsed::default());
        let wide_logfmt: Vec<String> = (0..=MAX_KEYS).map(|i| format!("k{i}={i}")).collect();
        assert_eq!(classify(&wide_logfmt.join(" ")), Parsed::default());
    }
}
