//! Durations in Prometheus' notation (`90s`, `5m`, `1h30m`, `7d`, `2w`, `1y`, `250ms`),
//! used in every config and rule file.

use std::time::Duration;

/// Units from largest to smallest, in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a Prometheus duration: one or more `<integer><unit>` with units in
/// decreasing order, from `y w d h m s ms`. `0` alone is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("{s:?} is not a duration (e.g. 30s, 5m, 1h30m, 7d)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // "ms" must be tried before "m".
        let (idx, len) = if rest.starts_with("ms") {
            (6, 2)
        } else {
            let i = UNITS
                .iter()
                .position(|(u, _)| u.len() == 1 && rest.starts_with(u))
                .ok_or_else(bad)?;
            (i, 1)
        };
        if last_unit != usize::MAX && idx <= last_unit {
            return Err(bad());
        }
        last_unit = idx;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{s:?} is too long a duration"))?;
        rest = &rest[len..];
    }
    Ok(Duration::from_millis(total))
}

/// Writes a duration the way Prometheus does (`1h30m`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (u, n) in UNITS {
        if ms >= n {
            out.push_str(&format!("{}{u}", ms / n));
            ms %= n;
        }
    }
    out
}

/// Serde for `Duration` fields written in Prometheus' notation.
pub mod serde_duration {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        for (s, ms) in [
            ("0", 0),
            ("250ms", 250),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1m30s500ms", 90_500),
            ("7d", 604_800_000),
            ("2w", 1_209_600_000),
            ("1y", 31_536_000_000),
        ] {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
            if ms > 0 {
                assert_eq!(
                    parse_duration(&format_duration(Duration::from_millis(ms)))
                        .unwrap()
                        .as_millis(),
                    ms as u128
                );
            }
        }
        for s in ["", "5", "m", "5x", "1m1h", "1s1s", "-5m", "1.5h", " 5m"] {
            assert!(parse_duration(s).is_err(), "{s:?} accepted");
        }
        assert_eq!(format_duration(Duration::from_millis(5_400_000)), "1h30m");
    }
}
