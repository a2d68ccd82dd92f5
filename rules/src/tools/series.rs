//! promtool's input notation: a metric (`name{label="value", …}`), as
//! `parser.ParseMetric` reads it, and the expanding notation of `input_series`
//! values (`1+2x5`, `1-1x3`, `_`, `_x3`, `stale`, `4x3`, numbers in Go's forms), as
//! `parser.ParseSeriesDesc` reads it in Prometheus 2.42.

use argus_schemas::Labels;

/// Prometheus' staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One position of an expanded sequence: a value, or nothing (`_`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeqValue {
    Value(f64),
    Omitted,
}

/// Parses a metric: an optional name, then an optional `{…}` label set with `=`
/// only. The empty string is the empty label set.
pub fn parse_metric(input: &str) -> Result<Labels, String> {
    let mut p = Cursor::new(input);
    let labels = p.metric()?;
    p.skip_ws();
    if !p.eof() {
        return Err(p.err(&format!("unexpected {:?} after the metric", p.rest())));
    }
    Ok(labels)
}

/// Parses one line of promtool's load command: a metric followed by values.
pub fn parse_series_desc(input: &str) -> Result<(Labels, Vec<SeqValue>), String> {
    let mut p = Cursor::new(input);
    let labels = p.metric()?;
    let values = p.values()?;
    Ok((labels, values))
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Space,
    Add,
    Sub,
    Times,
    Blank,
    Number(String),
    Ident(String),
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, i: 0 }
    }

    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }

    fn err(&self, msg: &str) -> String {
        format!("1:{}: parse error: {msg}", self.i + 1)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.i += 1;
        }
    }

    fn ident(&mut self, allow_colon: bool) -> Option<String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':') => {}
            _ => return None,
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':') {
                self.i += 1;
            } else {
                break;
            }
        }
        Some(self.s[start..self.i].to_string())
    }

    fn metric(&mut self) -> Result<Labels, String> {
        self.skip_ws();
        let mut labels = Labels::new();
        if let Some(name) = self.ident(true) {
            labels.insert("__name__", name);
        }
        self.skip_ws();
        if self.peek() == Some('{') {
            self.i += 1;
            loop {
                self.skip_ws();
                if self.peek() == Some('}') {
                    self.i += 1;
                    break;
                }
                let name = self.ident(false).ok_or_else(|| {
                    self.err("unexpected character in label set, expected label name")
                })?;
                self.skip_ws();
                if self.bump() != Some('=') {
                    return Err(self.err("unexpected character in label matching, expected \"=\""));
                }
                self.skip_ws();
                let value = self.string()?;
                if labels.get(&name).is_some() && name != "__name__" {
                    return Err(self.err(&format!("label {name} is repeated")));
                }
                labels.insert(name, value);
                self.skip_ws();
                match self.bump() {
                    Some(',') => continue,
                    Some('}') => break,
                    _ => {
                        return Err(
                            self.err("unexpected character in label set, expected \",\" or \"}\"")
                        );
                    }
                }
            }
        }
        if labels.is_empty() && !self.eof() && self.peek() != Some(' ') {
            return Err(self.err("unexpected character, expected metric name or label set"));
        }
        Ok(labels)
    }

    /// A PromQL string literal: `"…"` or `'…'` with Go escapes, or a raw `` `…` ``.
    fn string(&mut self) -> Result<String, String> {
        let q = match self.bump() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => return Err(self.err("unexpected character, expected string")),
        };
        let mut out = String::new();
        loop {
            let c = self
                .bump()
                .ok_or_else(|| self.err("unterminated quoted string"))?;
            if c == q {
                return Ok(out);
            }
            if c == '\\' && q != '`' {
                let e = self
                    .bump()
                    .ok_or_else(|| self.err("unterminated quoted string"))?;
                match e {
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\u{b}'),
                    '\\' | '"' | '\'' => out.push(e),
                    'x' => out.push(self.hex_escape(2)?),
                    'u' => out.push(self.hex_escape(4)?),
                    'U' => out.push(self.hex_escape(8)?),
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let d = self
                                .bump()
                                .and_then(|d| d.to_digit(8))
                                .ok_or_else(|| self.err("invalid octal escape"))?;
                            v = v * 8 + d;
                        }
                        out.push(char::from_u32(v).ok_or_else(|| self.err("invalid escape"))?);
                    }
                    _ => return Err(self.err("unknown escape sequence")),
                }
            } else {
                out.push(c);
            }
        }
    }

    fn hex_escape(&mut self, n: usize) -> Result<char, String> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self
                .bump()
                .and_then(|d| d.to_digit(16))
                .ok_or_else(|| self.err("invalid hex escape"))?;
            v = v * 16 + d;
        }
        char::from_u32(v).ok_or_else(|| self.err("invalid unicode code point in escape sequence"))
    }

    fn tokens(&mut self) -> Result<Vec<Tok>, String> {
        let mut toks = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | '\r' => {
                    self.skip_ws();
                    toks.push(Tok::Space);
                }
                '+' => {
                    self.i += 1;
                    toks.push(Tok::Add);
                }
                '-' => {
                    self.i += 1;
                    toks.push(Tok::Sub);
                }
                'x' => {
                    self.i += 1;
                    toks.push(Tok::Times);
                }
                '_' => {
                    self.i += 1;
                    toks.push(Tok::Blank);
                }
                c if c.is_ascii_digit()
                    || (c == '.'
                        && self.s[self.i + 1..].starts_with(|d: char| d.is_ascii_digit())) =>
                {
                    toks.push(Tok::Number(self.number()?));
                }
                c if c.is_ascii_alphabetic() => {
                    let start = self.i;
                    while let Some(c) = self.peek() {
                        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    let w = &self.s[start..self.i];
                    if w.eq_ignore_ascii_case("inf") || w.eq_ignore_ascii_case("nan") {
                        toks.push(Tok::Number(w.to_string()));
                    } else {
                        toks.push(Tok::Ident(w.to_string()));
                    }
                }
                c => {
                    return Err(
                        self.err(&format!("unexpected character in series sequence: {c:?}"))
                    );
                }
            }
        }
        Ok(toks)
    }

    /// Scans a number as the PromQL lexer does in series descriptions (no hex).
    fn number(&mut self) -> Result<String, String> {
        let start = self.i;
        let digits = |c: &mut Self| {
            while matches!(c.peek(), Some('0'..='9')) {
                c.i += 1;
            }
        };
        digits(self);
        if self.peek() == Some('.') {
            self.i += 1;
            digits(self);
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.i += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.i += 1;
            }
            digits(self);
        }
        match self.peek() {
            Some('x') => {}
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                return Err(self.err(&format!(
                    "bad number or duration syntax: {:?}",
                    &self.s[start..=self.i]
                )));
            }
            _ => {}
        }
        Ok(self.s[start..self.i].to_string())
    }

    fn values(&mut self) -> Result<Vec<SeqValue>, String> {
        let toks = self.tokens()?;
        let mut out = Vec::new();
        // Items are separated by spaces; split the token stream on them.
        for item in toks.split(|t| *t == Tok::Space).filter(|i| !i.is_empty()) {
            expand_item(item, &mut out).map_err(|e| format!("1:1: parse error: {e}"))?;
        }
        Ok(out)
    }
}

fn expand_item(item: &[Tok], out: &mut Vec<SeqValue>) -> Result<(), String> {
    match item {
        [Tok::Blank] => out.push(SeqValue::Omitted),
        [Tok::Blank, Tok::Times, Tok::Number(n)] => {
            for _ in 0..parse_uint(n)? {
                out.push(SeqValue::Omitted);
            }
        }
        _ => {
            let (first, rest) = series_value(item)?;
            match rest {
                [] => out.push(SeqValue::Value(first)),
                [Tok::Times, Tok::Number(n)] => {
                    for _ in 0..=parse_uint(n)? {
                        out.push(SeqValue::Value(first));
                    }
                }
                [
                    sign @ (Tok::Add | Tok::Sub),
                    Tok::Number(step),
                    Tok::Times,
                    Tok::Number(n),
                ] => {
                    let step = go_number(step)?;
                    let step = if *sign == Tok::Sub { -step } else { step };
                    let mut v = first;
                    for _ in 0..=parse_uint(n)? {
                        out.push(SeqValue::Value(v));
                        v += step;
                    }
                }
                _ => return Err("unexpected token in series values".into()),
            }
        }
    }
    Ok(())
}

fn series_value(item: &[Tok]) -> Result<(f64, &[Tok]), String> {
    match item {
        [Tok::Ident(w), rest @ ..] => {
            if w == "stale" {
                Ok((f64::from_bits(STALE_NAN_BITS), rest))
            } else {
                Err(format!(
                    "unexpected identifier {w:?} in series values, expected number or \"stale\""
                ))
            }
        }
        [Tok::Number(n), rest @ ..] => Ok((go_number(n)?, rest)),
        [Tok::Add, Tok::Number(n), rest @ ..] => Ok((go_number(n)?, rest)),
        [Tok::Sub, Tok::Number(n), rest @ ..] => Ok((-go_number(n)?, rest)),
        _ => Err("unexpected token in series values, expected number or \"stale\"".into()),
    }
}

fn parse_uint(n: &str) -> Result<u64, String> {
    n.parse::<u64>().map_err(|_| {
        format!(
            "invalid repetition in series values: strconv.ParseUint: parsing {n:?}: invalid syntax"
        )
    })
}

/// The PromQL parser's `number`: `strconv.ParseInt(s, 0, 64)` (so a leading `0` means
/// octal), else `strconv.ParseFloat`.
fn go_number(s: &str) -> Result<f64, String> {
    let lower = s.to_ascii_lowercase();
    if lower == "inf" {
        return Ok(f64::INFINITY);
    }
    if lower == "nan" {
        return Ok(f64::NAN);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let parsed = if s.len() > 1 && s.starts_with('0') {
            i64::from_str_radix(&s[1..], 8).ok()
        } else {
            s.parse::<i64>().ok()
        };
        if let Some(n) = parsed {
            return Ok(n as f64);
        }
    }
    s.parse::<f64>().map_err(|_| {
        format!("error parsing number: strconv.ParseFloat: parsing {s:?}: invalid syntax")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(s: &str) -> Vec<Option<f64>> {
        let (_, v) = parse_series_desc(&format!("m {s}")).unwrap();
        v.into_iter()
            .map(|v| match v {
                SeqValue::Value(f) => Some(f),
                SeqValue::Omitted => None,
            })
            .collect()
    }

    #[test]
    fn expanding_notation() {
        assert_eq!(
            vals("1+2x3"),
            vec![Some(1.0), Some(3.0), Some(5.0), Some(7.0)]
        );
        assert_eq!(vals("1-1x2"), vec![Some(1.0), Some(0.0), Some(-1.0)]);
        assert_eq!(
            vals("_ 5 _x2 4x1"),
            vec![None, Some(5.0), None, None, Some(4.0), Some(4.0)]
        );
        assert_eq!(
            vals("-4-2x1 +3 .5 5. 1e3 2.5e-2"),
            vec![
                Some(-4.0),
                Some(-6.0),
                Some(3.0),
                Some(0.5),
                Some(5.0),
                Some(1000.0),
                Some(0.025)
            ]
        );
        assert_eq!(vals("010 09"), vec![Some(8.0), Some(9.0)]);
        assert_eq!(
            vals("Inf -inf"),
            vec![Some(f64::INFINITY), Some(f64::NEG_INFINITY)]
        );
        let (_, v) = parse_series_desc("m stale").unwrap();
        assert!(matches!(v[0], SeqValue::Value(f) if f.to_bits() == STALE_NAN_BITS));
        // Repeated addition, not multiplication: float error accumulates as in Go.
        let f = vals("0.1+0.1x2");
        assert_eq!(f[2], Some(0.1 + 0.1 + 0.1));
        assert!(parse_series_desc("m 1x2.5").is_err());
        assert!(parse_series_desc("m foo").is_err());
        assert!(parse_series_desc("m 1a").is_err());
    }

    #[test]
    fn metrics() {
        let l = parse_metric(r#"up{job="a", instance='b\'c', x=`raw\n`,}"#).unwrap();
        assert_eq!(l.get("__name__"), Some("up"));
        assert_eq!(l.get("instance"), Some("b'c"));
        assert_eq!(l.get("x"), Some("raw\\n"));
        assert!(parse_metric("").unwrap().is_empty());
        assert_eq!(parse_metric(r#"{a="\u00fc"}"#).unwrap().get("a"), Some("ü"));
        assert!(parse_metric("up{a=~\"x\"}").is_err());
    }
}
