//! The `logfmt` parser: a decoder with go-logfmt's rules and error texts
//! (`logfmt syntax error at pos N : unexpected '='`), lenient by default, stopping
//! with `__error__="LogfmtParserErr"` under `--strict`; `--keep-empty` keeps
//! `key=` and bare keys; parameters (`a="key"`) extract only those keys.

use std::borrow::Cow;

use super::{Builder, ERR_LOGFMT, sanitize_cow};
use crate::error::{QueryError, Result};
use crate::logql::ast::ExtractParam;

/// A logfmt decoder over one line.
pub(crate) struct Decoder<'a> {
    line: &'a [u8],
    src: &'a str,
    pos: usize,
    pub(crate) err: Option<String>,
}

/// One scanned pair.
pub(crate) struct KeyVal<'a> {
    pub key: &'a str,
    pub value: Cow<'a, str>,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Decoder {
            line: src.as_bytes(),
            src,
            pos: 0,
            err: None,
        }
    }

    pub(crate) fn eol(&self) -> bool {
        self.pos >= self.line.len()
    }

    fn unexpected(&mut self, c: u8) {
        let shown = match c {
            b'"' => "'\"'".to_string(),
            b'\'' => "'\\''".to_string(),
            c => format!("'{}'", c as char),
        };
        self.err = Some(format!(
            "logfmt syntax error at pos {} : unexpected {shown}",
            self.pos + 1
        ));
    }

    fn syntax(&mut self, msg: &str) {
        self.err = Some(format!(
            "logfmt syntax error at pos {} : {msg}",
            self.pos + 1
        ));
    }

    fn skip_value(&mut self) {
        while self.pos < self.line.len() {
            if self.line[self.pos] <= b' ' {
                return;
            }
            self.pos += 1;
        }
    }

    /// Scans the next pair: `Ok(Some)` a pair, `Ok(None)` nothing (end or a pair
    /// with an error, see `err`).
    pub(crate) fn scan(&mut self) -> Option<KeyVal<'a>> {
        let line = self.line;
        // skip leading whitespace
        while self.pos < line.len() && line[self.pos] <= b' ' {
            self.pos += 1;
        }
        if self.pos >= line.len() {
            return None;
        }
        // key
        let start = self.pos;
        let key;
        loop {
            if self.pos >= line.len() {
                return Some(KeyVal {
                    key: &self.src[start..],
                    value: Cow::Borrowed(""),
                });
            }
            let c = line[self.pos];
            if c == b'=' {
                if self.pos == start {
                    self.unexpected(c);
                    self.skip_value();
                    return None;
                }
                key = &self.src[start..self.pos];
                break;
            } else if c == b'"' {
                self.unexpected(c);
                self.skip_value();
                return None;
            } else if c <= b' ' {
                return Some(KeyVal {
                    key: &self.src[start..self.pos],
                    value: Cow::Borrowed(""),
                });
            }
            self.pos += 1;
        }
        // equal
        self.pos += 1;
        if self.pos >= line.len() || line[self.pos] <= b' ' {
            return Some(KeyVal {
                key,
                value: Cow::Borrowed(""),
            });
        }
        if line[self.pos] == b'"' {
            return self.quoted(key);
        }
        let vstart = self.pos;
        while self.pos < line.len() {
            let c = line[self.pos];
            if c == b'=' || c == b'"' {
                self.unexpected(c);
                self.skip_value();
                return None;
            }
            if c <= b' ' {
                break;
            }
            self.pos += 1;
        }
        Some(KeyVal {
            key,
            value: Cow::Borrowed(&self.src[vstart..self.pos]),
        })
    }

    fn quoted(&mut self, key: &'a str) -> Option<KeyVal<'a>> {
        let line = self.line;
        let start = self.pos; // at the opening quote
        let mut has_esc = false;
        let mut esc = false;
        let mut i = start + 1;
        while i < line.len() {
            let c = line[i];
            if esc {
                esc = false;
            } else if c == b'\\' {
                has_esc = true;
                esc = true;
            } else if c == b'"' {
                self.pos = i + 1;
                let body = &self.src[start + 1..i];
                if has_esc {
                    match unquote(body) {
                        Some(v) => {
                            return Some(KeyVal {
                                key,
                                value: Cow::Owned(v),
                            });
                        }
                        None => {
                            self.syntax("invalid quoted value");
                            return None;
                        }
                    }
                }
                return Some(KeyVal {
                    key,
                    value: Cow::Borrowed(body),
                });
            }
            i += 1;
        }
        self.pos = line.len();
        self.syntax("unterminated quoted value");
        None
    }
}

/// Unquotes a logfmt quoted value body (JSON escapes, plus `\'`).
fn unquote(body: &str) -> Option<String> {
    let mut out = Vec::with_capacity(body.len());
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\'') {
            out.push(b'\'');
            i += 2;
            continue;
        }
        let next = b[i..]
            .iter()
            .position(|c| *c == b'\\')
            .map_or(b.len(), |p| i + p);
        if next > i {
            out.extend_from_slice(&b[i..next]);
            i = next;
            continue;
        }
        // an escape that is not \' : decode one with the JSON rules
        let end = (i + 12).min(b.len());
        let mut tmp = Vec::new();
        // find the escape length
        let len = match b.get(i + 1)? {
            b'u' => {
                if b.get(i + 6..i + 8) == Some(b"\\u") {
                    12
                } else {
                    6
                }
            }
            _ => 2,
        }
        .min(end - i);
        super::json::unescape_into(&b[i..i + len], &mut tmp)?;
        out.extend_from_slice(&tmp);
        i += len;
    }
    String::from_utf8(out).ok()
}

/// The compiled `logfmt` stage.
#[derive(Debug, Clone)]
pub(crate) struct LogfmtParser {
    strict: bool,
    keep_empty: bool,
    /// (label, key) parameters; empty: all keys.
    params: Vec<(String, String)>,
}

impl LogfmtParser {
    pub(crate) fn new(strict: bool, keep_empty: bool, params: &[ExtractParam]) -> Result<Self> {
        let mut out = Vec::with_capacity(params.len());
        for p in params {
            if p.label.is_empty() || p.expression.is_empty() {
                return Err(QueryError::Invalid(format!(
                    "cannot parse expression [{}]: invalid logfmt parameter",
                    p.expression
                )));
            }
            out.push((p.label.clone(), p.expression.clone()));
        }
        Ok(LogfmtParser {
            strict,
            keep_empty,
            params: out,
        })
    }

    pub(crate) fn process(&self, line: &str, b: &mut Builder<'_>) {
        if !self.params.is_empty() {
            self.process_params(line, b);
            return;
        }
        let mut dec = Decoder::new(line);
        while !dec.eol() {
            let Some(kv) = dec.scan() else {
                if self.strict && dec.err.is_some() {
                    break;
                }
                continue;
            };
            let key = sanitize_cow(kv.key);
            if key.is_empty() {
                continue;
            }
            let key = b.parser_key(&key).into_owned();
            if b.extracted(&key) {
                continue;
            }
            let mut val = kv.value;
            if val.contains('\u{FFFD}') {
                val = Cow::Owned(val.replace('\u{FFFD}', " "));
            }
            if !self.keep_empty && val.is_empty() {
                continue;
            }
            b.set_parsed(key, val.into_owned());
        }
        if self.strict
            && let Some(e) = dec.err
        {
            b.set_err(ERR_LOGFMT, Some(e));
        }
    }

    fn process_params(&self, line: &str, b: &mut Builder<'_>) {
        for (id, _) in &self.params {
            if !b.base_has(id) && !b.meta_has(id) {
                b.set_parsed(id.clone(), String::new());
            }
        }
        let mut dec = Decoder::new(line);
        while !dec.eol() {
            let Some(kv) = dec.scan() else {
                if self.strict && dec.err.is_some() {
                    break;
                }
                continue;
            };
            let key = sanitize_cow(kv.key);
            if key.is_empty() {
                continue;
            }
            for (id, expr) in &self.params {
                if *expr == *key || expr == kv.key {
                    let name = b.parser_key(id).into_owned();
                    let v = if kv.value.contains('\u{FFFD}') {
                        String::new()
                    } else {
                        kv.value.to_string()
                    };
                    b.set_parsed(name, v);
                }
            }
        }
        if self.strict
            && let Some(e) = dec.err
        {
            b.set_err(ERR_LOGFMT, Some(e));
        }
    }
}
