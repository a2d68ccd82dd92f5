//! Label filters (`name="v"`, `name > 10`, `name > 250ms`, `name > 20MB`,
//! `name = ip("…")`, `and`/`or`) and the Go value conversions they and `unwrap`
//! use: `strconv.ParseFloat`, `time.ParseDuration` and humanize's `ParseBytes`,
//! with Go's error texts (they end up in `__error_details__`).

use super::ip::IpMatcher;
use super::{ERR_LABEL_FILTER, ERROR_LABEL};
use crate::error::Result;
use crate::logql::ast::{CmpOp, LabelFilterExpr};
use crate::logql::matcher::Compiled;

/// What label filters read and write: the pipeline's label state, or finished labels.
pub(crate) trait LabelSource {
    /// A label's value (`None` when absent).
    fn value(&self, name: &str) -> Option<&str>;
    /// The current `__error__` ("" when none).
    fn error(&self) -> &str;
    /// Sets `__error__` and `__error_details__`.
    fn set_error(&mut self, err: &str, details: String);
}

/// A compiled label filter expression.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    String(Compiled),
    Number {
        name: String,
        op: CmpOp,
        value: f64,
    },
    /// Value in nanoseconds (Go's `time.Duration`).
    Duration {
        name: String,
        op: CmpOp,
        value: i64,
    },
    Bytes {
        name: String,
        op: CmpOp,
        value: u64,
    },
    Ip {
        name: String,
        negate: bool,
        matcher: IpMatcher,
    },
}

fn cmp<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Neq => a != b,
        CmpOp::Gt => a > b,
        CmpOp::Gte => a >= b,
        CmpOp::Lt => a < b,
        CmpOp::Lte => a <= b,
    }
}

impl LabelFilter {
    pub fn new(e: &LabelFilterExpr) -> Result<Self> {
        Ok(match e {
            LabelFilterExpr::And(a, b) => {
                LabelFilter::And(Box::new(Self::new(a)?), Box::new(Self::new(b)?))
            }
            LabelFilterExpr::Or(a, b) => {
                LabelFilter::Or(Box::new(Self::new(a)?), Box::new(Self::new(b)?))
            }
            LabelFilterExpr::String(m) => LabelFilter::String(Compiled::new(m)?),
            LabelFilterExpr::Number { name, op, value } => LabelFilter::Number {
                name: name.clone(),
                op: *op,
                value: *value,
            },
            LabelFilterExpr::Duration { name, op, value } => LabelFilter::Duration {
                name: name.clone(),
                op: *op,
                value: (value * 1e9).round() as i64,
            },
            LabelFilterExpr::Bytes { name, op, value } => LabelFilter::Bytes {
                name: name.clone(),
                op: *op,
                value: *value as u64,
            },
            LabelFilterExpr::Ip {
                name,
                negate,
                pattern,
            } => LabelFilter::Ip {
                name: name.clone(),
                negate: *negate,
                matcher: IpMatcher::new(pattern)?,
            },
        })
    }

    /// Whether the line is kept. A value that does not convert sets
    /// `__error__="LabelFilterErr"` (unless an error is already set) and keeps the
    /// line; a missing label drops it (Loki's behaviour).
    pub(crate) fn process(&self, src: &mut dyn LabelSource) -> bool {
        match self {
            LabelFilter::And(a, b) => {
                // Loki evaluates both sides (the right one may set an error).
                let l = a.process(src);
                let r = b.process(src);
                l && r
            }
            LabelFilter::Or(a, b) => a.process(src) || b.process(src),
            LabelFilter::String(m) => {
                let v = if m.name == ERROR_LABEL {
                    src.error()
                } else {
                    src.value(&m.name).unwrap_or("")
                };
                m.matches_value(v)
            }
            LabelFilter::Number { name, op, value } => {
                let Some(v) = src.value(name) else {
                    return false;
                };
                match go_parse_float(v) {
                    Ok(x) => cmp(*op, x, *value),
                    Err(e) => conversion_failed(src, e),
                }
            }
            LabelFilter::Duration { name, op, value } => {
                let Some(v) = src.value(name) else {
                    return false;
                };
                match go_parse_duration(v) {
                    Ok(x) => cmp(*op, x, *value),
                    Err(e) => conversion_failed(src, e),
                }
            }
            LabelFilter::Bytes { name, op, value } => {
                let Some(v) = src.value(name) else {
                    return false;
                };
                match parse_bytes(v) {
                    Ok(x) => cmp(*op, x, *value),
                    Err(e) => conversion_failed(src, e),
                }
            }
            LabelFilter::Ip {
                name,
                negate,
                matcher,
            } => {
                if !src.error().is_empty() {
                    return true;
                }
                let Some(v) = src.value(name) else {
                    return false;
                };
                matcher.matches_text(v) != *negate
            }
        }
    }
}

fn conversion_failed(src: &mut dyn LabelSource, details: String) -> bool {
    if src.error().is_empty() {
        src.set_error(ERR_LABEL_FILTER, details);
    }
    true
}

/// Go's `strconv.ParseFloat(s, 64)` (decimal forms, `inf`, `nan`), with its error text.
pub fn go_parse_float(s: &str) -> std::result::Result<f64, String> {
    let ok_chars = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    let lower = s.to_ascii_lowercase();
    let special = matches!(
        lower.trim_start_matches(['+', '-']),
        "inf" | "infinity" | "nan"
    );
    if (ok_chars || special)
        && let Ok(v) = s.parse::<f64>()
    {
        if v.is_infinite() && !special {
            return Err(format!(
                "strconv.ParseFloat: parsing {}: value out of range",
                go_quote(s)
            ));
        }
        return Ok(v);
    }
    Err(format!(
        "strconv.ParseFloat: parsing {}: invalid syntax",
        go_quote(s)
    ))
}

/// Go's `%q`-style quoting (enough for error messages).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn go_parse_duration(orig: &str) -> std::result::Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // leading int
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            v = v
                .checked_mul(10)
                .and_then(|x| x.checked_add((s[i] - b'0') as u64))
                .filter(|x| *x <= 1 << 63)
                .ok_or_else(invalid)?;
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        let mut post = false;
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let mut j = 0;
            let mut overflow = false;
            while j < s.len() && s[j].is_ascii_digit() {
                if !overflow {
                    if f > (1u64 << 63) / 10 {
                        overflow = true;
                    } else {
                        f = f * 10 + (s[j] - b'0') as u64;
                        scale *= 10.0;
                    }
                }
                j += 1;
            }
            post = j > 0;
            s = &s[j..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let mut k = 0;
        while k < s.len() && s[k] != b'.' && !s[k].is_ascii_digit() {
            k += 1;
        }
        if k == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let u = std::str::from_utf8(&s[..k]).unwrap_or("");
        s = &s[k..];
        let unit: u64 = match u {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(u),
                    go_quote(orig)
                ));
            }
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        d += v;
        if d > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > (1u64 << 63) - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// humanize's `ParseBytes`: `42`, `1.5 KB`, `10MiB`, `2gb` … (SI and IEC units,
/// case-insensitive, the `b` optional).
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let mut last = 0;
    let mut has_comma = false;
    for c in s.chars() {
        if !(c.is_ascii_digit() || c == '.' || c == ',') {
            break;
        }
        if c == ',' {
            has_comma = true;
        }
        last += 1;
    }
    let num: String = if has_comma {
        s[..last].replace(',', "")
    } else {
        s[..last].to_string()
    };
    let f = go_parse_float(&num)?;
    let extra = s[last..].trim().to_ascii_lowercase();
    let mult: f64 = match extra.as_str() {
        "b" | "" => 1.0,
        "kib" | "ki" => 1024.0,
        "kb" | "k" => 1e3,
        "mib" | "mi" => 1024f64.powi(2),
        "mb" | "m" => 1e6,
        "gib" | "gi" => 1024f64.powi(3),
        "gb" | "g" => 1e9,
        "tib" | "ti" => 1024f64.powi(4),
        "tb" | "t" => 1e12,
        "pib" | "pi" => 1024f64.powi(5),
        "pb" | "p" => 1e15,
        "eib" | "ei" => 1024f64.powi(6),
        "eb" | "e" => 1e18,
        _ => return Err(format!("unhandled size name: {extra}")),
    };
    let v = f * mult;
    if v >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    Ok(v as u64)
}
