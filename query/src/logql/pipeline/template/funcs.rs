//! The template functions: Go's builtins (`and`, `or`, `not`, `len`, `index`,
//! `print*`, comparisons, `html`, `js`, `urlquery`, `slice`), Loki's own
//! (`ToUpper`, `Replace`, `regexReplaceAll`, `count`, `bytes`, `duration`,
//! `unixEpochMillis`, `toDateInZone`, `alignLeft`, `b64dec`, `__line__`,
//! `__timestamp__` …) and the Sprig subset Loki enables (`lower`, `title`, `trunc`,
//! `substr`, `default`, `add`, `date`, `toDate`, `fromJson` …).

use std::collections::BTreeMap;
use std::rc::Rc;

use regex::Regex;

use super::exec::{Exec, Value, display, format_float_g, truth};
use super::gotime::{GoTime, zone_offset};
use crate::logql::pipeline::label_filter::{go_parse_duration, go_quote, parse_bytes};

const NAMES: &[&str] = &[
    // Go builtins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    // Loki
    "ToLower",
    "ToUpper",
    "Replace",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "count",
    "urldecode",
    "urlencode",
    "bytes",
    "duration",
    "duration_seconds",
    "unixEpochMillis",
    "unixEpochNanos",
    "toDateInZone",
    "unixToTime",
    "alignLeft",
    "alignRight",
    "b64dec",
    "__line__",
    "__timestamp__",
    // Sprig
    "b64enc",
    "lower",
    "upper",
    "title",
    "trunc",
    "substr",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "indent",
    "nindent",
    "replace",
    "repeat",
    "trim",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "int",
    "float64",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "fromJson",
    "date",
    "toDate",
    "now",
    "unixEpoch",
    "default",
];

/// Whether a function exists.
pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

/// Whether `name` is one of Go's builtin template functions.
pub fn is_builtin(name: &str) -> bool {
    NAMES[..18].contains(&name)
}

type R = Result<Value, String>;

fn want(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args: want {n} got {}", args.len()));
    }
    Ok(())
}

fn want_min(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() < n {
        return Err(format!(
            "wrong number of args: want at least {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// A string argument, with Go's error texts (shared with the notifier's template
/// functions).
pub fn str_arg(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Nil => Err("invalid value; expected string".into()),
        o => Err(format!(
            "wrong type for value; expected string; got {}",
            o.type_name()
        )),
    }
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err("invalid value; expected int".into()),
        o => Err(format!(
            "wrong type for value; expected int; got {}",
            o.type_name()
        )),
    }
}

/// A `time.Time` argument, with Go's error text for anything else (shared with the
/// notifier's template functions).
pub fn time_arg(v: &Value) -> Result<&GoTime, String> {
    match v {
        Value::Time(t) => Ok(t),
        o => Err(format!(
            "wrong type for value; expected time.Time; got {}",
            o.type_name()
        )),
    }
}

fn str_v(x: impl Into<String>) -> R {
    Ok(Value::Str(x.into()))
}

/// Sprig's (cast's) lenient int conversion.
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            let t = s.trim();
            let t = t
                .strip_suffix(".0")
                .or_else(|| {
                    t.split_once('.')
                        .filter(|(_, d)| d.bytes().all(|c| c == b'0'))
                        .map(|(i, _)| i)
                })
                .unwrap_or(t);
            parse_int_base0(t).unwrap_or(0)
        }
        _ => 0,
    }
}

fn parse_int_base0(t: &str) -> Option<i64> {
    let (neg, b) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = b.strip_prefix("0x").or_else(|| b.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = b.strip_prefix("0o").or_else(|| b.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(x) = b.strip_prefix("0b").or_else(|| b.strip_prefix("0B")) {
        i64::from_str_radix(x, 2).ok()?
    } else if b.len() > 1 && b.starts_with('0') {
        i64::from_str_radix(&b[1..], 8).ok()?
    } else {
        b.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Sprig's (cast's) lenient float conversion.
fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`.
fn empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::Str(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Time(_) | Value::Root => false,
    }
}

fn regex_for(pre: Option<&Regex>, re: &str) -> Result<Regex, String> {
    match pre {
        Some(r) if r.as_str() == re => Ok(r.clone()),
        _ => Regex::new(re).map_err(|e| format!("error parsing regexp: {e}")),
    }
}

/// Calls `name` with evaluated `args`.
pub(crate) fn call(ex: &mut Exec<'_>, name: &str, args: Vec<Value>, pre: Option<&Regex>) -> R {
    let a = &args;
    match name {
        "not" => {
            want(a, 1)?;
            Ok(Value::Bool(!truth(&a[0], ex.data)))
        }
        "len" => {
            want(a, 1)?;
            Ok(Value::Int(match &a[0] {
                Value::Str(s) => s.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Map(m) => m.len() as i64,
                Value::Root => ex.data.entries().len() as i64,
                o => return Err(format!("len of type {}", o.type_name())),
            }))
        }
        "index" => {
            want_min(a, 1)?;
            let mut v = a[0].clone();
            for k in &a[1..] {
                v = match (&v, k) {
                    (Value::Root, Value::Str(k)) => {
                        Value::Str(ex.data.get(k).unwrap_or("").to_string())
                    }
                    (Value::Map(m), Value::Str(k)) => {
                        m.get(k.as_str())
                            .cloned()
                            .unwrap_or_else(|| match ex.funcs {
                                Some(f) => f.missing_key(m),
                                None => Value::Nil,
                            })
                    }
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (Value::Str(s), Value::Int(i)) => Value::Int(
                        *s.as_bytes()
                            .get(
                                usize::try_from(*i)
                                    .map_err(|_| format!("index out of range: {i}"))?,
                            )
                            .ok_or_else(|| format!("index out of range: {i}"))?
                            as i64,
                    ),
                    (Value::Nil, _) => return Err("index of untyped nil".into()),
                    (o, _) => return Err(format!("can't index item of type {}", o.type_name())),
                };
            }
            Ok(v)
        }
        "slice" => {
            want_min(a, 1)?;
            let st = str_arg(&a[0])?;
            let from = a.get(1).map(int).transpose()?.unwrap_or(0) as usize;
            let to = a
                .get(2)
                .map(int)
                .transpose()?
                .map_or(st.len(), |x| x as usize);
            st.get(from..to)
                .map(|x| Value::Str(x.to_string()))
                .ok_or_else(|| format!("index out of range: {to}"))
        }
        "print" => {
            let mut out = String::new();
            for (i, v) in a.iter().enumerate() {
                let is_str = matches!(v, Value::Str(_));
                if i > 0 && !is_str && !matches!(a[i - 1], Value::Str(_)) {
                    out.push(' ');
                }
                out.push_str(&display(v));
            }
            str_v(out)
        }
        "println" => {
            let out: Vec<String> = a.iter().map(display).collect();
            str_v(out.join(" ") + "\n")
        }
        "printf" => {
            want_min(a, 1)?;
            str_v(sprintf(str_arg(&a[0])?, &a[1..]))
        }
        "eq" => {
            want_min(a, 2)?;
            for b in &a[1..] {
                if compare(&a[0], b)? == Some(std::cmp::Ordering::Equal) {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(a, 2)?;
            Ok(Value::Bool(
                compare(&a[0], &a[1])? != Some(std::cmp::Ordering::Equal),
            ))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(a, 2)?;
            if matches!(a[0], Value::Bool(_)) || matches!(a[1], Value::Bool(_)) {
                return Err("invalid type for comparison".into());
            }
            let o = compare(&a[0], &a[1])?.ok_or("invalid type for comparison")?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "html" => str_v(
            a.iter()
                .map(display)
                .collect::<String>()
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        ),
        "js" => {
            let src: String = a.iter().map(display).collect();
            let mut out = String::new();
            for c in src.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '<' => out.push_str("\\u003C"),
                    '>' => out.push_str("\\u003E"),
                    '&' => out.push_str("\\u0026"),
                    '=' => out.push_str("\\u003D"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c => out.push(c),
                }
            }
            str_v(out)
        }
        "urlquery" => str_v(query_escape(&a.iter().map(display).collect::<String>())),
        // ---- Loki
        "ToLower" | "lower" => {
            want(a, 1)?;
            str_v(str_arg(&a[0])?.to_lowercase())
        }
        "ToUpper" | "upper" => {
            want(a, 1)?;
            str_v(str_arg(&a[0])?.to_uppercase())
        }
        "Replace" => {
            want(a, 4)?;
            let (src, old, new, n) = (
                str_arg(&a[0])?,
                str_arg(&a[1])?,
                str_arg(&a[2])?,
                int(&a[3])?,
            );
            str_v(if n < 0 {
                go_replace_all(src, old, new)
            } else {
                go_replacen(src, old, new, n as usize)
            })
        }
        "Trim" => {
            want(a, 2)?;
            let cut = str_arg(&a[1])?;
            str_v(str_arg(&a[0])?.trim_matches(|c| cut.contains(c)))
        }
        "TrimLeft" => {
            want(a, 2)?;
            let cut = str_arg(&a[1])?;
            str_v(str_arg(&a[0])?.trim_start_matches(|c| cut.contains(c)))
        }
        "TrimRight" => {
            want(a, 2)?;
            let cut = str_arg(&a[1])?;
            str_v(str_arg(&a[0])?.trim_end_matches(|c| cut.contains(c)))
        }
        "TrimPrefix" => {
            want(a, 2)?;
            let (x, p) = (str_arg(&a[0])?, str_arg(&a[1])?);
            str_v(x.strip_prefix(p).unwrap_or(x))
        }
        "TrimSuffix" => {
            want(a, 2)?;
            let (x, p) = (str_arg(&a[0])?, str_arg(&a[1])?);
            str_v(x.strip_suffix(p).unwrap_or(x))
        }
        "TrimSpace" | "trim" => {
            want(a, 1)?;
            str_v(str_arg(&a[0])?.trim())
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            want(a, 3)?;
            let re = regex_for(pre, str_arg(&a[0])?)?;
            let (src, repl) = (str_arg(&a[1])?, str_arg(&a[2])?);
            str_v(if name == "regexReplaceAll" {
                re.replace_all(src, repl).into_owned()
            } else {
                re.replace_all(src, regex::NoExpand(repl)).into_owned()
            })
        }
        "count" => {
            want(a, 2)?;
            let re = regex_for(pre, str_arg(&a[0])?)?;
            Ok(Value::Int(re.find_iter(str_arg(&a[1])?).count() as i64))
        }
        "urlencode" => {
            want(a, 1)?;
            str_v(query_escape(str_arg(&a[0])?))
        }
        "urldecode" => {
            want(a, 1)?;
            Ok(Value::Str(query_unescape(str_arg(&a[0])?)?))
        }
        "bytes" => {
            want(a, 1)?;
            Ok(Value::Float(parse_bytes(str_arg(&a[0])?)? as f64))
        }
        "duration" | "duration_seconds" => {
            want(a, 1)?;
            Ok(Value::Float(
                go_parse_duration(str_arg(&a[0])?)? as f64 / 1e9,
            ))
        }
        "unixEpoch" => {
            want(a, 1)?;
            str_v(time_arg(&a[0])?.unix().to_string())
        }
        "unixEpochMillis" => {
            want(a, 1)?;
            str_v(time_arg(&a[0])?.unix_milli().to_string())
        }
        "unixEpochNanos" => {
            want(a, 1)?;
            str_v(time_arg(&a[0])?.unix_nano().to_string())
        }
        "toDate" => {
            want(a, 2)?;
            Ok(Value::Time(
                GoTime::parse(str_arg(&a[0])?, str_arg(&a[1])?).unwrap_or_else(|_| GoTime::zero()),
            ))
        }
        "toDateInZone" => {
            want(a, 3)?;
            let (layout, zone, v) = (str_arg(&a[0])?, str_arg(&a[1])?, str_arg(&a[2])?);
            let (off, zname) = zone_offset(zone).unwrap_or((0, "UTC".into()));
            let t = parse_in_zone(layout, v, off, &zname);
            Ok(Value::Time(t))
        }
        "unixToTime" => {
            want(a, 1)?;
            let e = str_arg(&a[0])?;
            let i: i64 = e.parse().map_err(|_| {
                format!(
                    "unable to parse time '{e}': strconv.ParseInt: parsing {}: invalid syntax",
                    go_quote(e)
                )
            })?;
            Ok(Value::Time(match e.len() {
                5 => GoTime::from_unix(i * 86_400, 0),
                10 => GoTime::from_unix(i, 0),
                13 => GoTime::from_unix_nanos(i * 1_000_000),
                16 => GoTime::from_unix_nanos(i * 1000),
                19 => GoTime::from_unix_nanos(i),
                _ => return Err(format!("unable to parse time '{e}': %!w(<nil>)")),
            }))
        }
        "date" => {
            want(a, 2)?;
            let layout = str_arg(&a[0])?;
            let t = match &a[1] {
                Value::Time(t) => t.clone(),
                Value::Int(i) => GoTime::from_unix(*i, 0),
                _ => GoTime::now(),
            };
            str_v(t.format(layout))
        }
        "now" => {
            want(a, 0)?;
            Ok(Value::Time(GoTime::now()))
        }
        "alignLeft" | "alignRight" => {
            want(a, 2)?;
            let (count, src) = (int(&a[0])?, str_arg(&a[1])?);
            let n = src.chars().count() as i64;
            if count < 0 || count == n {
                return str_v(src);
            }
            if count > n {
                let pad = " ".repeat((count - n) as usize);
                return str_v(if name == "alignLeft" {
                    format!("{src}{pad}")
                } else {
                    format!("{pad}{src}")
                });
            }
            str_v(if name == "alignLeft" {
                src.chars().take(count as usize).collect::<String>()
            } else {
                src.chars().skip((n - count) as usize).collect::<String>()
            })
        }
        "b64enc" => {
            want(a, 1)?;
            str_v(b64_encode(str_arg(&a[0])?.as_bytes()))
        }
        "b64dec" => {
            want(a, 1)?;
            let mut v = str_arg(&a[0])?.to_string();
            let rem = v.len() % 4;
            if rem != 0 && rem != 1 {
                v.push_str(&"=".repeat(4 - rem));
            }
            str_v(match b64_decode(&v) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(pos) => format!("illegal base64 data at input byte {pos}"),
            })
        }
        "__line__" => {
            want(a, 0)?;
            str_v(ex.line)
        }
        "__timestamp__" => {
            want(a, 0)?;
            Ok(Value::Time(GoTime::from_unix_nanos(ex.ts)))
        }
        // ---- Sprig
        "title" => {
            want(a, 1)?;
            let mut out = String::new();
            let mut prev_letter = false;
            for c in str_arg(&a[0])?.chars() {
                let is_word = c.is_alphanumeric() || c == '_' || c == '\'';
                if is_word && !prev_letter {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                prev_letter = is_word;
            }
            str_v(out)
        }
        "trunc" => {
            want(a, 2)?;
            let (c, x) = (int(&a[0])?, str_arg(&a[1])?);
            let chars: Vec<char> = x.chars().collect();
            let l = chars.len() as i64;
            str_v(if c < 0 && l + c > 0 {
                chars[(l + c) as usize..].iter().collect::<String>()
            } else if c >= 0 && l > c {
                chars[..c as usize].iter().collect::<String>()
            } else {
                x.to_string()
            })
        }
        "substr" => {
            want(a, 3)?;
            let (start, end, x) = (int(&a[0])?, int(&a[1])?, str_arg(&a[2])?);
            let chars: Vec<char> = x.chars().collect();
            let l = chars.len() as i64;
            let end = end.min(l);
            let start = start.min(l);
            str_v(if start < 0 {
                if end < 0 {
                    String::new()
                } else {
                    chars[..end as usize].iter().collect()
                }
            } else if end < 0 {
                chars[start as usize..].iter().collect()
            } else if start > end {
                String::new()
            } else {
                chars[start as usize..end as usize].iter().collect()
            })
        }
        "contains" => {
            want(a, 2)?;
            Ok(Value::Bool(str_arg(&a[1])?.contains(str_arg(&a[0])?)))
        }
        "hasPrefix" => {
            want(a, 2)?;
            Ok(Value::Bool(str_arg(&a[1])?.starts_with(str_arg(&a[0])?)))
        }
        "hasSuffix" => {
            want(a, 2)?;
            Ok(Value::Bool(str_arg(&a[1])?.ends_with(str_arg(&a[0])?)))
        }
        "indent" | "nindent" => {
            want(a, 2)?;
            let pad = " ".repeat(int(&a[0])?.max(0) as usize);
            let body = format!(
                "{pad}{}",
                str_arg(&a[1])?.replace('\n', &format!("\n{pad}"))
            );
            str_v(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "replace" => {
            want(a, 3)?;
            str_v(go_replace_all(
                str_arg(&a[2])?,
                str_arg(&a[0])?,
                str_arg(&a[1])?,
            ))
        }
        "repeat" => {
            want(a, 2)?;
            let n = int(&a[0])?;
            if n < 0 {
                return Err("strings: negative Repeat count".into());
            }
            str_v(str_arg(&a[1])?.repeat(n as usize))
        }
        "trimAll" => {
            want(a, 2)?;
            let cut = str_arg(&a[0])?;
            str_v(str_arg(&a[1])?.trim_matches(|c| cut.contains(c)))
        }
        "trimSuffix" => {
            want(a, 2)?;
            let (p, x) = (str_arg(&a[0])?, str_arg(&a[1])?);
            str_v(x.strip_suffix(p).unwrap_or(x))
        }
        "trimPrefix" => {
            want(a, 2)?;
            let (p, x) = (str_arg(&a[0])?, str_arg(&a[1])?);
            str_v(x.strip_prefix(p).unwrap_or(x))
        }
        "int" => {
            want(a, 1)?;
            Ok(Value::Int(to_i64(&a[0])))
        }
        "float64" => {
            want(a, 1)?;
            Ok(Value::Float(to_f64(&a[0])))
        }
        "add" => Ok(Value::Int(
            a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        )),
        "mul" => Ok(Value::Int(
            a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
        )),
        "sub" => {
            want(a, 2)?;
            Ok(Value::Int(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
        }
        "div" | "mod" => {
            want(a, 2)?;
            let (x, y) = (to_i64(&a[0]), to_i64(&a[1]));
            if y == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            Ok(Value::Int(if name == "div" {
                x.wrapping_div(y)
            } else {
                x.wrapping_rem(y)
            }))
        }
        "addf" => Ok(Value::Float(a.iter().map(to_f64).sum())),
        "mulf" => Ok(Value::Float(a.iter().map(to_f64).product())),
        "subf" | "divf" => {
            want_min(a, 1)?;
            let mut acc = to_f64(&a[0]);
            for v in &a[1..] {
                let x = to_f64(v);
                if name == "subf" {
                    acc -= x;
                } else {
                    if x == 0.0 {
                        return Err("division by zero".into());
                    }
                    acc /= x;
                }
            }
            Ok(Value::Float(acc))
        }
        "max" | "min" => {
            want_min(a, 1)?;
            let it = a.iter().map(to_i64);
            Ok(Value::Int(
                if name == "max" { it.max() } else { it.min() }.unwrap_or(0),
            ))
        }
        "maxf" | "minf" => {
            want_min(a, 1)?;
            let mut acc = to_f64(&a[0]);
            for v in &a[1..] {
                let x = to_f64(v);
                acc = if name == "maxf" {
                    acc.max(x)
                } else {
                    acc.min(x)
                };
            }
            Ok(Value::Float(acc))
        }
        "ceil" => {
            want(a, 1)?;
            Ok(Value::Float(to_f64(&a[0]).ceil()))
        }
        "floor" => {
            want(a, 1)?;
            Ok(Value::Float(to_f64(&a[0]).floor()))
        }
        "round" => {
            want_min(a, 2)?;
            let val = to_f64(&a[0]);
            let places = int(&a[1])? as f64;
            let round_on = a.get(2).map_or(0.5, to_f64);
            let pow = 10f64.powf(places);
            let digit = pow * val;
            let div = digit.fract();
            let r = if div >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(Value::Float(r / pow))
        }
        "default" => {
            want_min(a, 1)?;
            match a.get(1) {
                Some(g) if !empty(g) => Ok(g.clone()),
                _ => Ok(a[0].clone()),
            }
        }
        "fromJson" => {
            want(a, 1)?;
            Ok(
                match serde_json::from_str::<serde_json::Value>(str_arg(&a[0])?) {
                    Ok(v) => from_json(v),
                    Err(_) => Value::Nil,
                },
            )
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

fn parse_in_zone(layout: &str, v: &str, off: i32, zname: &str) -> GoTime {
    match GoTime::parse(layout, v) {
        Ok(mut t) => {
            // a layout without a zone reads the value in the given zone
            let has_zone =
                layout.contains("Z07") || layout.contains("-07") || layout.contains("MST");
            if !has_zone {
                t.secs -= off as i64;
                t.offset = off;
                t.zone = zname.to_string();
            }
            t
        }
        Err(_) => GoTime::zero(),
    }
}

fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::Str(s),
        serde_json::Value::Array(a) => Value::List(Rc::new(a.into_iter().map(from_json).collect())),
        serde_json::Value::Object(o) => Value::Map(Rc::new(
            o.into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect::<BTreeMap<_, _>>(),
        )),
    }
}

/// Go's comparison for `eq`/`lt`…: `None` when the values are not ordered
/// (nil against something), an error for incompatible kinds.
fn compare(a: &Value, b: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Nil, Value::Nil) => Some(std::cmp::Ordering::Equal),
        (Value::Nil, _) | (_, Value::Nil) => None,
        (Value::Time(x), Value::Time(y)) if x == y => Some(std::cmp::Ordering::Equal),
        _ => return Err("incompatible types for comparison".into()),
    })
}

/// Methods of `time.Time` reachable as fields.
pub(crate) fn time_method(t: &GoTime, name: &str, args: &[Value]) -> Result<Value, String> {
    let no_args = |v: Value| -> Result<Value, String> {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!(
                "wrong number of args for {name}: want 0 got {}",
                args.len()
            ))
        }
    };
    match name {
        "Unix" => no_args(Value::Int(t.unix())),
        "UnixMilli" => no_args(Value::Int(t.unix_milli())),
        "UnixMicro" => no_args(Value::Int(t.unix_micro())),
        "UnixNano" => no_args(Value::Int(t.unix_nano())),
        "Year" => no_args(Value::Int(t.year())),
        "Month" => no_args(Value::Str(t.month_name().into())),
        "Day" => no_args(Value::Int(t.day() as i64)),
        "Hour" => no_args(Value::Int(t.hour() as i64)),
        "Minute" => no_args(Value::Int(t.minute() as i64)),
        "Second" => no_args(Value::Int(t.second() as i64)),
        "Nanosecond" => no_args(Value::Int(t.nsec as i64)),
        "YearDay" => no_args(Value::Int(t.year_day() as i64)),
        "Weekday" => no_args(Value::Str(t.weekday_name().into())),
        "UTC" | "Local" => no_args(Value::Time(t.utc())),
        "String" => no_args(Value::Str(t.go_string())),
        "Format" => {
            if args.len() != 1 {
                return Err(format!(
                    "wrong number of args for Format: want 1 got {}",
                    args.len()
                ));
            }
            Ok(Value::Str(t.format(str_arg(&args[0])?)))
        }
        _ => Err(format!("can't evaluate field {name} in type time.Time")),
    }
}

fn go_replace_all(src: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        // Go inserts `new` around every rune
        let mut out = String::from(new);
        for c in src.chars() {
            out.push(c);
            out.push_str(new);
        }
        return out;
    }
    src.replace(old, new)
}

fn go_replacen(src: &str, old: &str, new: &str, n: usize) -> String {
    if old.is_empty() {
        let mut out = String::new();
        let mut k = 0;
        if k < n {
            out.push_str(new);
            k += 1;
        }
        for c in src.chars() {
            out.push(c);
            if k < n {
                out.push_str(new);
                k += 1;
            }
        }
        return out;
    }
    src.replacen(old, new, n)
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let Some(h) = h else {
                    let bad = &s[i..(i + 3).min(s.len())];
                    return Err(format!("invalid URL escape {}", go_quote(bad)));
                };
                out.push(
                    u8::from_str_radix(std::str::from_utf8(h).unwrap_or("0"), 16).unwrap_or(0),
                );
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= n {
                out.push(B64[(v >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding; `Err(byte offset)` like Go's CorruptInputError.
fn b64_decode(s: &str) -> Result<Vec<u8>, usize> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return Err(b.len() / 4 * 4);
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (ci, chunk) in b.chunks(4).enumerate() {
        let mut v: u32 = 0;
        let mut pad = 0;
        for (k, &c) in chunk.iter().enumerate() {
            let d = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' if k >= 2 && (ci + 1) * 4 == b.len() => {
                    pad += 1;
                    0
                }
                _ => return Err(ci * 4 + k),
            };
            if pad > 0 && c != b'=' {
                return Err(ci * 4 + k);
            }
            v = (v << 6) | u32::from(d);
        }
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

/// Go's `fmt.Sprintf` for the common verbs (`%v %s %d %f %e %g %q %x %X %t %c %o
/// %b %%`, flags `-+ 0#`, width and precision).
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut argi = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space, mut sharp) =
            (false, false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut width: Option<usize> = None;
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width = Some(width.unwrap_or(0) * 10 + d.to_digit(10).unwrap_or(0) as usize);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            prec = Some(0);
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                prec = Some(prec.unwrap_or(0) * 10 + d.to_digit(10).unwrap_or(0) as usize);
                chars.next();
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let bad = || format!("%!{verb}({}={})", arg.type_name(), display(arg));
        let body: String = match (verb, arg) {
            ('v', _) => display(arg),
            ('s', Value::Str(x)) => match prec {
                Some(p) => x.chars().take(p).collect(),
                None => x.clone(),
            },
            ('s', Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Nil) => bad(),
            ('s', _) => display(arg),
            ('q', Value::Str(x)) => go_quote(x),
            ('t', Value::Bool(b)) => b.to_string(),
            ('d', Value::Int(i)) => sign(i.to_string(), plus, space),
            ('c', Value::Int(i)) => {
                char::from_u32(*i as u32).map_or_else(|| "\u{FFFD}".into(), String::from)
            }
            ('x', Value::Int(i)) => sign(hex_i(*i, false, sharp), plus, space),
            ('X', Value::Int(i)) => sign(hex_i(*i, true, sharp), plus, space),
            ('x', Value::Str(x)) => x.bytes().map(|b| format!("{b:02x}")).collect(),
            ('X', Value::Str(x)) => x.bytes().map(|b| format!("{b:02X}")).collect(),
            ('o', Value::Int(i)) => {
                format!("{}{:o}", if *i < 0 { "-" } else { "" }, i.unsigned_abs())
            }
            ('b', Value::Int(i)) => {
                format!("{}{:b}", if *i < 0 { "-" } else { "" }, i.unsigned_abs())
            }
            ('f' | 'F', Value::Float(_) | Value::Int(_)) if matches!(arg, Value::Float(_)) => {
                let f = to_f64(arg);
                sign(format!("{:.*}", prec.unwrap_or(6), f), plus, space)
            }
            ('e' | 'E', Value::Float(f)) => {
                let s = go_exp(*f, prec.unwrap_or(6));
                sign(if verb == 'E' { s.to_uppercase() } else { s }, plus, space)
            }
            ('g' | 'G', Value::Float(f)) => sign(format_float_g(*f, prec), plus, space),
            _ => bad(),
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if minus {
                    out.push_str(&body);
                    out.push_str(&" ".repeat(pad));
                } else if zero && !matches!(arg, Value::Str(_)) {
                    let (sgn, digits) = match body.strip_prefix(['-', '+']) {
                        Some(d) => (&body[..1], d),
                        None => ("", body.as_str()),
                    };
                    out.push_str(sgn);
                    out.push_str(&"0".repeat(pad));
                    out.push_str(digits);
                } else {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), display(a)))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn sign(s: String, plus: bool, space: bool) -> String {
    if s.starts_with('-') {
        s
    } else if plus {
        format!("+{s}")
    } else if space {
        format!(" {s}")
    } else {
        s
    }
}

fn hex_i(i: i64, upper: bool, sharp: bool) -> String {
    let neg = i < 0;
    let mut h = if upper {
        format!("{:X}", i.unsigned_abs())
    } else {
        format!("{:x}", i.unsigned_abs())
    };
    if sharp {
        h = format!("{}{h}", if upper { "0X" } else { "0x" });
    }
    if neg { format!("-{h}") } else { h }
}

fn go_exp(f: f64, prec: usize) -> String {
    let s = format!("{:.*e}", prec, f);
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}
