//! The `json` parser (all keys, nested objects flattened with `_`, arrays skipped;
//! or only the parameters' paths such as `a.b[0]` / `["key with space"]`) and
//! `unpack` (Promtail's packed entries). A small streaming scanner walks the line
//! the way Loki's `jsonparser` does: keys found before a syntax error stay extracted,
//! and the error texts are `jsonparser`'s.

use super::{Builder, ERR_JSON, sanitize_cow};
use crate::error::{QueryError, Result};
use crate::logql::ast::ExtractParam;

pub(crate) const MALFORMED_JSON: &str = "Malformed JSON error";
pub(crate) const MALFORMED_STRING: &str = "Value is string, but can't find closing '\"' symbol";
pub(crate) const MALFORMED_ARRAY: &str = "Value is array, but can't find closing ']' symbol";
pub(crate) const MALFORMED_OBJECT: &str =
    "Value looks like object, but can't find closing '}' symbol";
pub(crate) const UNKNOWN_VALUE_TYPE: &str = "Unknown value type";
pub(crate) const MALFORMED_ESCAPE: &str = "Encountered an invalid escape sequence in a string";

/// A JSON value's type as `jsonparser` classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    Object,
    Array,
    Boolean,
    Null,
}

fn next_token(d: &[u8], mut i: usize) -> Option<usize> {
    while i < d.len() {
        match d[i] {
            b' ' | b'\n' | b'\r' | b'\t' => i += 1,
            _ => return Some(i),
        }
    }
    None
}

/// `i` is just after the opening quote; returns (index after the closing quote,
/// whether the string has escapes).
fn string_end(d: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    while i < d.len() {
        match d[i] {
            b'\\' => {
                escaped = true;
                i += 2;
            }
            b'"' => return Some((i + 1, escaped)),
            _ => i += 1,
        }
    }
    None
}

/// `i` is at the opening bracket; returns the index after the matching close.
fn block_end(d: &[u8], mut i: usize, open: u8, close: u8) -> Option<usize> {
    let mut level = 0i32;
    while i < d.len() {
        match d[i] {
            b'"' => {
                let (e, _) = string_end(d, i + 1)?;
                i = e;
                continue;
            }
            c if c == open => level += 1,
            c if c == close => {
                level -= 1;
                if level == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn token_end(d: &[u8], i: usize) -> usize {
    d[i..]
        .iter()
        .position(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b',' | b'}' | b']'))
        .map_or(d.len(), |p| i + p)
}

/// Reads the value at `i` (after whitespace): (start, end, kind); strings exclude
/// their quotes.
pub(crate) fn get_value(
    d: &[u8],
    i: usize,
) -> std::result::Result<(usize, usize, Kind), &'static str> {
    let i = next_token(d, i).ok_or(MALFORMED_JSON)?;
    match d[i] {
        b'"' => {
            let (e, _) = string_end(d, i + 1).ok_or(MALFORMED_STRING)?;
            Ok((i + 1, e - 1, Kind::String))
        }
        b'[' => {
            let e = block_end(d, i, b'[', b']').ok_or(MALFORMED_ARRAY)?;
            Ok((i, e, Kind::Array))
        }
        b'{' => {
            let e = block_end(d, i, b'{', b'}').ok_or(MALFORMED_OBJECT)?;
            Ok((i, e, Kind::Object))
        }
        c => {
            let e = token_end(d, i);
            let v = &d[i..e];
            let kind = match c {
                b't' | b'f' if v == b"true" || v == b"false" => Kind::Boolean,
                b'n' | b'u' if v == b"null" => Kind::Null,
                b'0'..=b'9' | b'-' => Kind::Number,
                _ => return Err(UNKNOWN_VALUE_TYPE),
            };
            Ok((i, e, kind))
        }
    }
}

/// A callback over object members: (key, value start, value end, kind) → go on.
pub(crate) type MemberFn<'f> = dyn FnMut(&[u8], usize, usize, Kind) -> bool + 'f;

/// Walks the members of the object at `i`, as `jsonparser.ObjectEach`: calls `f`
/// with each raw key (unescaped), the value's range and kind. `f` returns false to
/// stop early.
pub(crate) fn object_each(
    d: &[u8],
    i: usize,
    f: &mut MemberFn<'_>,
) -> std::result::Result<(), &'static str> {
    let mut i = next_token(d, i).ok_or(MALFORMED_OBJECT)?;
    if d[i] != b'{' {
        return Err(MALFORMED_OBJECT);
    }
    i += 1;
    i = next_token(d, i).ok_or(MALFORMED_JSON)?;
    if d[i] == b'}' {
        return Ok(());
    }
    let mut key_buf: Vec<u8> = Vec::new();
    while i < d.len() {
        match d[i] {
            b'"' => i += 1,
            b'}' => return Ok(()),
            _ => return Err(MALFORMED_OBJECT),
        }
        let (e, esc) = string_end(d, i).ok_or(MALFORMED_JSON)?;
        let raw_key = &d[i..e - 1];
        i = e;
        let key: &[u8] = if esc {
            key_buf.clear();
            unescape_into(raw_key, &mut key_buf).ok_or(MALFORMED_ESCAPE)?;
            &key_buf
        } else {
            raw_key
        };
        i = next_token(d, i).ok_or(MALFORMED_JSON)?;
        if d[i] != b':' {
            return Err(MALFORMED_JSON);
        }
        i += 1;
        let (vs, ve, kind) = get_value(d, i)?;
        if !f(key, vs, ve, kind) {
            return Ok(());
        }
        i = if kind == Kind::String { ve + 1 } else { ve };
        i = next_token(d, i).ok_or(MALFORMED_ARRAY)?;
        match d[i] {
            b'}' => return Ok(()),
            b',' => i += 1,
            _ => return Err(MALFORMED_OBJECT),
        }
        i = next_token(d, i).ok_or(MALFORMED_ARRAY)?;
    }
    Err(MALFORMED_OBJECT)
}

/// Unescapes a JSON string body into `out`; `None` on a bad escape.
pub(crate) fn unescape_into(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *s.get(i + 1)?;
        i += 2;
        match e {
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let hex = |b: &[u8]| -> Option<u32> {
                    u32::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
                };
                let cp = hex(s.get(i..i + 4)?)?;
                i += 4;
                let ch = if (0xD800..0xDC00).contains(&cp) {
                    // surrogate pair
                    if s.get(i..i + 2) == Some(b"\\u")
                        && let Some(lo) = s.get(i + 2..i + 6).and_then(hex)
                        && (0xDC00..0xE000).contains(&lo)
                    {
                        i += 6;
                        char::from_u32(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00))
                    } else {
                        Some('\u{FFFD}')
                    }
                } else {
                    char::from_u32(cp).or(Some('\u{FFFD}'))
                };
                let mut b = [0u8; 4];
                out.extend_from_slice(ch?.encode_utf8(&mut b).as_bytes());
            }
            _ => return None,
        }
    }
    Some(())
}

/// A string value as Loki reads it: unescaped ("" on a bad escape), invalid
/// characters replaced by spaces.
pub(crate) fn string_value(raw: &[u8]) -> String {
    let s = if raw.contains(&b'\\') {
        let mut out = Vec::with_capacity(raw.len());
        if unescape_into(raw, &mut out).is_none() {
            return String::new();
        }
        String::from_utf8_lossy(&out).into_owned()
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    if s.contains('\u{FFFD}') {
        s.replace('\u{FFFD}', " ")
    } else {
        s
    }
}

fn read_value(d: &[u8], s: usize, e: usize, kind: Kind) -> String {
    match kind {
        Kind::String => string_value(&d[s..e]),
        Kind::Number => String::from_utf8_lossy(&d[s..e]).into_owned(),
        Kind::Boolean => if &d[s..e] == b"true" { "true" } else { "false" }.to_string(),
        _ => String::new(),
    }
}

/// `| json` without parameters.
#[derive(Debug, Clone)]
pub(crate) struct JsonParser;

impl JsonParser {
    pub(crate) fn process(&self, line: &str, b: &mut Builder<'_>) {
        let d = line.as_bytes();
        let mut prefix: Vec<String> = Vec::new();
        if let Err(e) = walk(d, 0, &mut prefix, b) {
            b.set_err(ERR_JSON, Some(e.to_string()));
        }
    }
}

fn walk(
    d: &[u8],
    at: usize,
    prefix: &mut Vec<String>,
    b: &mut Builder<'_>,
) -> std::result::Result<(), &'static str> {
    let mut nested_err: Option<&'static str> = None;
    object_each(d, at, &mut |key, s, e, kind| match kind {
        Kind::String | Kind::Number | Kind::Boolean => {
            let key = String::from_utf8_lossy(key);
            let name = if prefix.is_empty() {
                let k = sanitize_cow(&key);
                if k.is_empty() {
                    return true;
                }
                b.parser_key(&k).into_owned()
            } else {
                let full = join_prefix(prefix, &key);
                if b.base_has(&full) || b.meta_has(&full) {
                    let mut key2 = key.into_owned();
                    key2.push_str(super::DUPLICATE_SUFFIX);
                    join_prefix(prefix, &key2)
                } else {
                    full
                }
            };
            if b.extracted(&name) {
                return true;
            }
            let v = read_value(d, s, e, kind);
            b.set_parsed(name, v);
            true
        }
        Kind::Object => {
            prefix.push(String::from_utf8_lossy(key).into_owned());
            let r = walk(d, s, prefix, b);
            prefix.pop();
            match r {
                Ok(()) => true,
                Err(err) => {
                    nested_err = Some(err);
                    false
                }
            }
        }
        _ => true,
    })?;
    match nested_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Joins sanitized prefix parts and `key` with `_`, skipping blank parts (Loki's
/// `buildSanitizedPrefixFromBuffer`).
fn join_prefix(prefix: &[String], key: &str) -> String {
    let mut out = String::new();
    for part in prefix
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(key))
    {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('_');
        }
        if out.is_empty() && part.as_bytes()[0].is_ascii_digit() {
            out.push('_');
        }
        for c in part.chars() {
            out.push(if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            });
        }
    }
    out
}

/// One step of a parameter path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathPart {
    Key(String),
    Index(usize),
}

/// Parses a `json` parameter expression: `a.b[0]`, `["key with space"].c`.
pub fn parse_path(expr: &str) -> Result<Vec<PathPart>> {
    let bad = |m: &str| QueryError::Invalid(format!("cannot parse expression [{expr}]: {m}"));
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut need_sep = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'.' {
            if !need_sep {
                return Err(bad("syntax error: unexpected DOT"));
            }
            i += 1;
            // a field must follow
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() || !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
                return Err(bad("syntax error: expecting FIELD"));
            }
            need_sep = false;
            continue;
        }
        if c == b'[' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && b[i] == b'"' {
                i += 1;
                let st = i;
                while i < b.len() && b[i] != b'"' && b[i] != b']' {
                    i += 1;
                }
                out.push(PathPart::Key(expr[st..i].to_string()));
                if i < b.len() && b[i] == b'"' {
                    i += 1;
                }
            } else if i < b.len() && b[i].is_ascii_digit() {
                let st = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i < b.len() && b[i] == b'.' {
                    return Err(bad("cannot use float as array index"));
                }
                out.push(PathPart::Index(
                    expr[st..i].parse().map_err(|_| bad("bad index"))?,
                ));
            } else {
                return Err(bad("syntax error: unexpected character in brackets"));
            }
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() || b[i] != b']' {
                return Err(bad("syntax error: expecting RSB"));
            }
            i += 1;
            need_sep = true;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            if need_sep {
                return Err(bad("syntax error: unexpected FIELD"));
            }
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(PathPart::Key(expr[st..i].to_string()));
            need_sep = true;
            continue;
        }
        return Err(bad(&format!("unexpected char {}", c as char)));
    }
    if out.is_empty() {
        return Err(bad("syntax error: empty expression"));
    }
    Ok(out)
}

/// Finds the value at `path` starting at the value at `at`.
fn find_path(
    d: &[u8],
    at: usize,
    path: &[PathPart],
) -> std::result::Result<Option<(usize, usize, Kind)>, &'static str> {
    let (s, e, kind) = get_value(d, at)?;
    let Some((first, rest)) = path.split_first() else {
        return Ok(Some((s, e, kind)));
    };
    match (first, kind) {
        (PathPart::Key(k), Kind::Object) => {
            let mut found: Option<usize> = None;
            let mut key_start = 0;
            object_each(d, s, &mut |key, vs, _ve, vk| {
                if key == k.as_bytes() {
                    // value start (strings: back up to the quote)
                    key_start = if vk == Kind::String { vs - 1 } else { vs };
                    found = Some(key_start);
                    return false;
                }
                true
            })?;
            match found {
                Some(v) => find_path(d, v, rest),
                None => Ok(None),
            }
        }
        (PathPart::Index(n), Kind::Array) => {
            let mut i = s + 1;
            let mut idx = 0usize;
            loop {
                let j = next_token(d, i).ok_or(MALFORMED_ARRAY)?;
                if d[j] == b']' {
                    return Ok(None);
                }
                let (vs, ve, vk) = get_value(d, j)?;
                if idx == *n {
                    return find_path(d, j, rest);
                }
                let end = if vk == Kind::String { ve + 1 } else { ve };
                let _ = vs;
                let k = next_token(d, end).ok_or(MALFORMED_ARRAY)?;
                match d[k] {
                    b',' => i = k + 1,
                    b']' => return Ok(None),
                    _ => return Err(MALFORMED_ARRAY),
                }
                idx += 1;
            }
        }
        _ => Ok(None),
    }
}

/// `| json a="path", b`.
#[derive(Debug, Clone)]
pub(crate) struct JsonExprParser {
    params: Vec<(String, Vec<PathPart>)>,
}

impl JsonExprParser {
    pub(crate) fn new(params: &[ExtractParam]) -> Result<Self> {
        let mut out = Vec::with_capacity(params.len());
        for p in params {
            if p.label.is_empty() {
                return Err(QueryError::Invalid(format!(
                    "invalid extracted label name '{}'",
                    p.label
                )));
            }
            out.push((p.label.clone(), parse_path(&p.expression)?));
        }
        Ok(JsonExprParser { params: out })
    }

    pub(crate) fn process(&self, line: &str, b: &mut Builder<'_>) {
        let d = line.as_bytes();
        if d.is_empty() {
            return;
        }
        if !matches!(d[0], b'"' | b'{' | b'[') {
            b.set_err(ERR_JSON, None);
            return;
        }
        for (id, path) in &self.params {
            match find_path(d, 0, path) {
                Ok(Some((s, e, kind))) => {
                    let key = b.parser_key(id).into_owned();
                    let v = match kind {
                        Kind::Null => String::new(),
                        Kind::String => string_value(&d[s..e]),
                        _ => string_value(&d[s..e]),
                    };
                    b.set_parsed(key, v);
                }
                Ok(None) => {}
                Err(err) => b.set_err(ERR_JSON, Some(err.to_string())),
            }
        }
        // Loki ensures a label for every parameter.
        for (id, _) in &self.params {
            if b.get(id).is_none() {
                b.set_parsed(id.clone(), String::new());
            }
        }
    }
}

/// `| unpack`: when the line is a JSON object with a string `_entry`, its other
/// string members become labels and `_entry` the new line (returned).
pub(crate) fn unpack(line: &str, b: &mut Builder<'_>) -> Option<String> {
    let d = line.as_bytes();
    if d.is_empty() {
        return None;
    }
    if d[0] != b'{' {
        b.set_err(
            ERR_JSON,
            Some("expecting json object(6), but it is not".to_string()),
        );
        return None;
    }
    let mut entry: Option<String> = None;
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut bad_entry = false;
    let r = object_each(d, 0, &mut |key, s, e, kind| {
        if kind != Kind::String {
            return true;
        }
        if key == b"_entry" {
            let mut out = Vec::with_capacity(e - s);
            if unescape_into(&d[s..e], &mut out).is_none() {
                bad_entry = true;
                return false;
            }
            entry = Some(String::from_utf8_lossy(&out).into_owned());
            return true;
        }
        let key = String::from_utf8_lossy(key);
        let key = b.parser_key(&key).into_owned();
        if b.extracted(&key) {
            return true;
        }
        pending.push((
            super::sanitize_label_key(&key, true),
            string_value(&d[s..e]),
        ));
        true
    });
    if bad_entry {
        b.set_err(ERR_JSON, Some(MALFORMED_ESCAPE.to_string()));
        return None;
    }
    if let Err(e) = r {
        b.set_err(ERR_JSON, Some(e.to_string()));
        return None;
    }
    let entry = entry?;
    for (k, v) in pending {
        b.set_parsed(k, v);
    }
    Some(entry)
}
