//! The shape of a log line, classified once when it is written to ClickHouse (the
//! `shape` column of `entries`), so that a pushed-down `json` stage can read labels
//! from simple lines with cheap string functions and still answer exactly as the
//! engine's parser (see [`super::sql`]). `0` (also the value of rows written before
//! the column existed) means "not known to be simple": the SQL then proves each row's
//! result the expensive way. (A simple-logfmt shape was measured too: reading such
//! lines directly was no faster than the logfmt proofs, so there is none.)
//!
//! - [`FLAT_JSON`]: a compact JSON object (no whitespace) whose keys are label
//!   identifiers (`[A-Za-z_][A-Za-z0-9_]*`), each once, and whose values are strings
//!   without `"`, `\`, control characters or U+FFFD, JSON numbers, `true`, `false` or
//!   `null`. On such a line `"k":` occurs only as the key `k` (a value cannot hold a
//!   quote), so `visitParamExtractRaw(line, 'k')` finds exactly the member the engine's
//!   `json` stage turns into label `k`, and the line parses without error.

/// A flat, compact JSON object (see the module docs).
pub const FLAT_JSON: u8 = 1;

/// The shape of `line`: [`FLAT_JSON`] or 0.
pub fn classify(line: &str) -> u8 {
    let b = line.as_bytes();
    if b.first() == Some(&b'{') && !line.contains('\u{FFFD}') && flat_json(b) {
        FLAT_JSON
    } else {
        0
    }
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

    #[test]
    fn flat_json_lines() {
        for l in [
            "{}",
            r#"{"a":1}"#,
            r#"{"level":"error","status":500,"ok":true,"x":null,"f":-0.5e+3,"msg":"日志 a=b"}"#,
            r#"{"_k9":"","b":false}"#,
        ] {
            assert_eq!(classify(l), FLAT_JSON, "{l}");
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
            r#"{"a":"�"}"#,
            r#"{"a":"unterminated}"#,
        ] {
            assert_eq!(classify(l), 0, "{l}");
        }
    }

    #[test]
    fn wide_lines_are_left_to_the_proofs() {
        let wide = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", members.join(","))
        };
        assert_eq!(classify(&wide(MAX_KEYS)), FLAT_JSON);
        assert_eq!(classify(&wide(MAX_KEYS + 1)), 0);
    }
}
