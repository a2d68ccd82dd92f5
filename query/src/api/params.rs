//! Request parameters of Loki's HTTP API, parsed as Loki parses them: timestamps as
//! RFC 3339, Unix seconds (with a fraction) or Unix nanoseconds; durations as
//! Prometheus durations or float seconds; Loki's defaults and error texts.

use std::collections::HashMap;

use argus_schemas::duration::parse_duration;

use crate::error::{QueryError, Result};
use crate::store::Direction;

/// Query-string and form parameters; repeated keys (`match[]`) keep every value.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, Vec<String>>);

impl Params {
    /// Parses `a=1&b=2` (URL-encoded) and merges it in.
    pub fn extend_from_urlencoded(&mut self, raw: &str) {
        for (k, v) in form_urlencoded(raw) {
            self.0.entry(k).or_default().push(v);
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn form_urlencoded(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a timestamp as Loki does: empty → `default`; a value with `.` → float Unix
/// seconds (rounded to ms); an integer of at most 10 digits → Unix seconds, longer →
/// Unix nanoseconds; otherwise RFC 3339.
pub fn parse_time(name: &str, value: Option<&str>, default: i64) -> Result<i64> {
    let Some(v) = value else {
        return Ok(default);
    };
    let bad = || {
        QueryError::BadParam(format!(
            "invalid parameter \"{name}\": cannot parse \"{v}\" to a valid timestamp"
        ))
    };
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
    {
        if !f.is_finite() {
            return Err(bad());
        }
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round() / 1000.0;
        return Ok(secs as i64 * 1_000_000_000 + (frac * 1e9) as i64);
    }
    if let Ok(n) = v.parse::<i64>() {
        let digits = v.trim_start_matches('-').len();
        return Ok(if digits <= 10 {
            n.saturating_mul(1_000_000_000)
        } else {
            n
        });
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(bad)
}

/// Parses a duration given as a Prometheus duration (`5m`, `1h30m`) or float seconds.
pub fn parse_duration_param(name: &str, v: &str) -> Result<i64> {
    if let Ok(f) = v.parse::<f64>() {
        if !f.is_finite() || f * 1e9 > i64::MAX as f64 || f * 1e9 < i64::MIN as f64 {
            return Err(QueryError::BadParam(format!(
                "invalid parameter \"{name}\": cannot parse \"{v}\" to a valid duration"
            )));
        }
        return Ok((f * 1e9).round() as i64);
    }
    parse_duration(v).map(|d| d.as_nanos() as i64).map_err(|_| {
        QueryError::BadParam(format!(
            "invalid parameter \"{name}\": cannot parse \"{v}\" to a valid duration"
        ))
    })
}

/// `limit`: default 100, positive.
pub fn parse_limit(p: &Params) -> Result<u32> {
    match p.get("limit") {
        None => Ok(100),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Ok(n.min(u32::MAX as i64) as u32),
            Ok(_) => Err(QueryError::BadParam(
                "limit must be a positive value".into(),
            )),
            Err(_) => Err(QueryError::BadParam(format!(
                "invalid parameter \"limit\": cannot parse \"{v}\" to a valid integer"
            ))),
        },
    }
}

/// `direction`: `backward` (default) or `forward`, case-insensitive.
pub fn parse_direction(p: &Params) -> Result<Direction> {
    match p.get("direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(QueryError::BadParam(format!(
            "invalid parameter \"direction\": invalid direction '{other}'"
        ))),
    }
}

/// Resolved `[start, end]` of range-style endpoints: `end` defaults to now, `start` to
/// `end - since` (`since` defaults to 1h).
pub fn parse_range(p: &Params, now: i64) -> Result<(i64, i64)> {
    let end = parse_time("end", p.get("end"), now)?;
    let since = match p.get("since") {
        Some(v) => parse_duration_param("since", v)?,
        None => 3600 * 1_000_000_000,
    };
    let start = parse_time("start", p.get("start"), end - since)?;
    Ok((start, end))
}

/// Loki's default step: `max(floor((end - start) / 250s), 1s)`.
pub fn default_step(start: i64, end: i64) -> i64 {
    let secs = ((end - start) as f64 / 1e9 / 250.0).floor().max(1.0);
    (secs as i64) * 1_000_000_000
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_form_loki_accepts() {
        assert_eq!(
            parse_time("t", Some("1700000000"), 0).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_time("t", Some("1700000000123456789"), 0).unwrap(),
            1_700_000_000_123_456_789
        );
        assert_eq!(
            parse_time("t", Some("1700000000.5"), 0).unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            parse_time("t", Some("2023-11-14T22:13:20.25Z"), 0).unwrap(),
            1_700_000_000_250_000_000
        );
        assert_eq!(parse_time("t", None, 42).unwrap(), 42);
        let e = parse_time("start", Some("yesterday"), 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter \"start\": cannot parse \"yesterday\" to a valid timestamp"
        );
    }

    #[test]
    fn durations_steps_and_defaults() {
        assert_eq!(parse_duration_param("step", "15").unwrap(), 15_000_000_000);
        assert_eq!(parse_duration_param("step", "0.5").unwrap(), 500_000_000);
        assert_eq!(
            parse_duration_param("step", "1m30s").unwrap(),
            90_000_000_000
        );
        assert!(parse_duration_param("step", "x").is_err());
        assert_eq!(default_step(0, 3600 * 1_000_000_000), 14_000_000_000);
        assert_eq!(default_step(0, 60 * 1_000_000_000), 1_000_000_000);
        let mut p = Params::default();
        p.extend_from_urlencoded("end=1700000000&since=5m");
        assert_eq!(
            parse_range(&p, 0).unwrap(),
            (1_699_999_700_000_000_000, 1_700_000_000_000_000_000)
        );
    }

    #[test]
    fn urlencoded_with_repeats_and_escapes() {
        let mut p = Params::default();
        p.extend_from_urlencoded("match%5B%5D=%7Bapp%3D%22a%22%7D&match[]={b=\"c d\"}&q=a+b");
        assert_eq!(p.all("match[]"), ["{app=\"a\"}", "{b=\"c d\"}"]);
        assert_eq!(p.get("q"), Some("a b"));
        assert_eq!(parse_limit(&p).unwrap(), 100);
        p.extend_from_urlencoded("limit=0");
        assert_eq!(
            parse_limit(&p).unwrap_err().to_string(),
            "limit must be a positive value"
        );
    }
}
