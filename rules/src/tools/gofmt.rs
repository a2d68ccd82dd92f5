//! Go's text formats that promtool's output is made of: `strconv.Quote`,
//! `strconv.FormatFloat(v, 'E', -1, 64)`, `time.Duration.String`, and Prometheus'
//! `model.Duration` (parsing and printing), plus `labels.Labels.String`.

use argus_schemas::Labels;

/// Go's `strconv.Quote`: a double-quoted string with Go escapes; printable
/// characters (per an approximation of Go's `unicode.IsPrint`) are kept as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: letters, marks, numbers, punctuation,
/// symbols and the ASCII space; not controls, other spaces, format characters,
/// surrogates or private-use characters.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
}

/// Prometheus' `labels.Labels.String()`: `{a="1", b="2"}` with Go quoting.
pub fn labels_string(l: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (n, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(n);
        out.push('=');
        out.push_str(&go_quote(v));
    }
    out.push('}');
    out
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: the shortest mantissa that reads back
/// to `v`, an upper-case `E` and a signed exponent of at least two digits.
pub fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:E}");
    let (mant, exp) = s.split_once('E').unwrap_or((s.as_str(), "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    let sign = if e < 0 { '-' } else { '+' };
    format!("{mant}E{sign}{:02}", e.unsigned_abs())
}

/// Prometheus' `model.Duration.String()` for a duration in milliseconds: years and
/// weeks only when exact, then days, hours, minutes, seconds, milliseconds; `0s` for 0.
pub fn model_duration_string(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut ms = ms;
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    let units: [(&str, i64, bool); 7] = [
        ("y", 1000 * 60 * 60 * 24 * 365, true),
        ("w", 1000 * 60 * 60 * 24 * 7, true),
        ("d", 1000 * 60 * 60 * 24, false),
        ("h", 1000 * 60 * 60, false),
        ("m", 1000 * 60, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in units {
        if exact && ms % mult != 0 {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    }
    out
}

/// Prometheus' `model.ParseDuration`: `0`, or units from `y` down to `ms`, each at most
/// once and in that order. Returns milliseconds, or Prometheus' error text.
pub fn parse_model_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("not a valid duration string: {}", go_quote(s));
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    let units: [(&str, i64); 7] = [
        ("y", 1000 * 60 * 60 * 24 * 365),
        ("w", 1000 * 60 * 60 * 24 * 7),
        ("d", 1000 * 60 * 60 * 24),
        ("h", 1000 * 60 * 60),
        ("m", 1000 * 60),
        ("s", 1000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(invalid());
        }
        let n: i64 = s[start..i].parse().map_err(|_| invalid())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let pos = units[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(invalid)?;
        let (_, mult) = units[next_unit + pos];
        next_unit += pos + 1;
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "duration out of range".to_string())?;
    }
    Ok(total)
}

/// Go's `time.Duration.String()` for a duration in milliseconds (`5m0s`, `1h0m0s`,
/// `1.5s`, `500ms`, `0s`).
pub fn go_duration_string(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if ms < 1000 {
        out.push_str(&format!("{ms}ms"));
        return out;
    }
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let s = (ms / 1000) % 60;
    let frac = ms % 1000;
    if h > 0 {
        out.push_str(&format!("{h}h{m}m"));
    } else if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let f = format!("{frac:03}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(go_quote("Zürich ☃"), "\"Zürich ☃\"");
        assert_eq!(go_quote("\u{1}\u{7f}\u{200b}"), r#""\x01\x7f\u200b""#);
    }

    #[test]
    fn float_e_like_go() {
        assert_eq!(format_float_e(1.0), "1E+00");
        assert_eq!(format_float_e(0.0), "0E+00");
        assert_eq!(format_float_e(-0.0), "-0E+00");
        assert_eq!(
            format_float_e(0.16666666666666666),
            "1.6666666666666666E-01"
        );
        assert_eq!(format_float_e(1e100), "1E+100");
        assert_eq!(format_float_e(-2.5e-7), "-2.5E-07");
        assert_eq!(format_float_e(f64::NAN), "NaN");
        assert_eq!(format_float_e(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float_e(1234567.0), "1.234567E+06");
    }

    #[test]
    fn durations() {
        assert_eq!(model_duration_string(0), "0s");
        assert_eq!(model_duration_string(300_000), "5m");
        assert_eq!(model_duration_string(6_600_000), "1h50m");
        assert_eq!(model_duration_string(599_000), "9m59s");
        assert_eq!(model_duration_string(86_400_000 * 7), "1w");
        assert_eq!(model_duration_string(86_400_000 * 8), "8d");
        assert_eq!(parse_model_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_model_duration("90s").unwrap(), 90_000);
        assert_eq!(parse_model_duration("0").unwrap(), 0);
        assert_eq!(
            parse_model_duration("1m1h").unwrap_err(),
            "not a valid duration string: \"1m1h\""
        );
        assert!(parse_model_duration("5").is_err());
        assert!(parse_model_duration("1.5m").is_err());
        assert_eq!(go_duration_string(300_000), "5m0s");
        assert_eq!(go_duration_string(3_600_000), "1h0m0s");
        assert_eq!(go_duration_string(90_500), "1m30.5s");
        assert_eq!(go_duration_string(0), "0s");
    }
}
