//! Alertmanager 0.25's time intervals: the `time_intervals` / `mute_time_intervals`
//! entries of alertmanager.yml that routes name in `mute_time_intervals` and
//! `active_time_intervals`.
//!
//! This module owns:
//! - [`TimeInterval`]: one entry of a named interval's `time_intervals` list — `times`
//!   (`start_time`/`end_time` as `HH:MM`, the end exclusive, `24:00` allowed),
//!   `weekdays` (`monday:friday`, names only), `days_of_month` (1..31, negative days
//!   count from the end of the month, ranges), `months` (names or numbers, ranges),
//!   `years` (ranges) and `location` (an IANA zone, `UTC` or `Local`). Every field that
//!   is given must contain the time; a field that is absent places no constraint, one
//!   given as an empty list contains nothing (as in Alertmanager). The fields are
//!   parsed and checked when the file is read, with Alertmanager's error texts.
//! - [`NamedTimeInterval`]: `name` + `time_intervals`, one entry of either list.
//! - [`TimeIntervals`]: every named interval of a file, asked whether a name is active
//!   at some instant (a name is active when any of its intervals contains the time).
//!
//! One deliberate difference from 0.25: the length of a month (used by negative
//! `days_of_month`) is its number of calendar days, also in months with a daylight
//! saving change, where 0.25 counted one day too few (fixed in later Alertmanagers).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::NotifierError;

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

// ---------------------------------------------------------------------------------------
// Scalars that may be written as strings or numbers
// ---------------------------------------------------------------------------------------

/// Parses a YAML scalar, string or number (Go's yaml.v2 reads `days_of_month: [1, 15]`
/// as text), while the value is read, so errors carry its line.
struct ParseScalar<T>(fn(&str) -> Result<T, String>);

impl<T> Visitor<'_> for ParseScalar<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------

/// `a:b` or `a`, lower-cased, each side through `member`.
fn parse_range(
    text: &str,
    member: impl Fn(&str) -> Result<i32, String>,
) -> Result<(i32, i32), String> {
    let lower = text.to_lowercase();
    if lower.contains(':') {
        let parts: Vec<&str> = lower.split(':').collect();
        if parts.len() != 2 {
            return Err(format!("couldn't parse range {lower}, invalid format"));
        }
        Ok((member(parts[0])?, member(parts[1])?))
    } else {
        let v = member(&lower)?;
        Ok((v, v))
    }
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits.
fn atoi(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn int_member(what: &'static str) -> impl Fn(&str) -> Result<i32, String> {
    move |s| atoi(s).ok_or_else(|| format!("{s:?} is not a valid {what}: not an integer"))
}

/// An inclusive range of weekdays, 0 = Sunday … 6 = Saturday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayRange {
    pub begin: u32,
    pub end: u32,
}

impl WeekdayRange {
    /// Parses `monday`, `monday:friday` (case-insensitive names).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (begin, end) = parse_range(text, |s| {
            WEEKDAYS
                .iter()
                .position(|d| *d == s)
                .map(|i| i as i32)
                .ok_or_else(|| format!("{s} is not a valid weekday"))
        })?;
        if begin > end {
            return Err(format!(
                "start day cannot be after end day: {}",
                text.to_lowercase()
            ));
        }
        Ok(WeekdayRange {
            begin: begin as u32,
            end: end as u32,
        })
    }
}

impl fmt::Display for WeekdayRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let name = |d: u32| WEEKDAYS[d as usize % 7];
        if self.begin == self.end {
            f.write_str(name(self.begin))
        } else {
            write!(f, "{}:{}", name(self.begin), name(self.end))
        }
    }
}

/// An inclusive range of days of the month; negative days count from the end (-1 is
/// the last day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayOfMonthRange {
    pub begin: i32,
    pub end: i32,
}

impl DayOfMonthRange {
    /// Parses `1`, `1:15`, `-1`, `-7:-1`, with Alertmanager's checks.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (begin, end) = parse_range(text, int_member("day of the month"))?;
        for d in [begin, end] {
            if d == 0 || !(-31..=31).contains(&d) {
                return Err(format!("{d} is not a valid day of the month: out of range"));
            }
        }
        if begin < 0 && end > 0 {
            return Err("end day must be negative if start day is negative".into());
        }
        // With negative days the order depends on the month; 28 days (the shortest
        // month) catches the ranges that are always empty.
        let check = |d: i32| if d < 0 { 28 + d } else { d };
        if check(begin) > check(end) {
            return Err(format!("end day {end} is always before start day {begin}"));
        }
        Ok(DayOfMonthRange { begin, end })
    }
}

/// An inclusive range of months, 1 = January.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRange {
    pub begin: i32,
    pub end: i32,
}

impl MonthRange {
    /// Parses `may`, `1:3`, `january:march`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (begin, end) = parse_range(text, |s| match MONTHS.iter().position(|m| *m == s) {
            Some(i) => Ok(i as i32 + 1),
            None => atoi(s).ok_or_else(|| format!("{s} is not a valid month")),
        })?;
        if begin > end {
            let name = |m: i32| {
                usize::try_from(m - 1)
                    .ok()
                    .and_then(|i| MONTHS.get(i))
                    .map_or_else(|| m.to_string(), |n| n.to_string())
            };
            return Err(format!(
                "end month {} is before start month {}",
                name(end),
                name(begin)
            ));
        }
        Ok(MonthRange { begin, end })
    }
}

/// An inclusive range of years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearRange {
    pub begin: i32,
    pub end: i32,
}

impl YearRange {
    /// Parses `2024`, `2020:2022`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (begin, end) = parse_range(text, int_member("year"))?;
        if begin > end {
            return Err(format!("end year {end} is before start year {begin}"));
        }
        Ok(YearRange { begin, end })
    }
}

fn write_int_range(f: &mut fmt::Formatter, begin: i32, end: i32) -> fmt::Result {
    if begin == end {
        write!(f, "{begin}")
    } else {
        write!(f, "{begin}:{end}")
    }
}

impl fmt::Display for DayOfMonthRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_int_range(f, self.begin, self.end)
    }
}
impl fmt::Display for MonthRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_int_range(f, self.begin, self.end)
    }
}
impl fmt::Display for YearRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_int_range(f, self.begin, self.end)
    }
}

/// Serde as the range's text form (`monday:friday`, `-7:-1`).
macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(ParseScalar(<$t>::parse))
            }
        }
    };
}

text_serde!(WeekdayRange);
text_serde!(DayOfMonthRange);
text_serde!(MonthRange);
text_serde!(YearRange);

// ---------------------------------------------------------------------------------------
// Times of day
// ---------------------------------------------------------------------------------------

/// A range of minutes in the day, `[start_minute, end_minute)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

/// `HH:MM` from `00:00` to `23:59`, or `24:00`.
fn parse_time(s: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    let b = s.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !s
            .bytes()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return Err(bad());
    }
    let hours: u32 = s[..2].parse().map_err(|_| bad())?;
    let minutes: u32 = s[3..].parse().map_err(|_| bad())?;
    if (hours < 24 && minutes < 60) || (hours == 24 && minutes == 0) {
        Ok(hours * 60 + minutes)
    } else {
        Err(bad())
    }
}

impl TimeRange {
    /// From `start_time` and `end_time` (`HH:MM`); the end must be after the start.
    pub fn parse(start: &str, end: &str) -> Result<Self, String> {
        if start.is_empty() || end.is_empty() {
            return Err("both start and end times must be provided".into());
        }
        let (start_minute, end_minute) = (parse_time(start)?, parse_time(end)?);
        if start_minute >= end_minute {
            return Err("start time cannot be equal or greater than end time".into());
        }
        Ok(TimeRange {
            start_minute,
            end_minute,
        })
    }

    fn contains(&self, minute_of_day: u32) -> bool {
        minute_of_day >= self.start_minute && minute_of_day < self.end_minute
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeRangeText {
    #[serde(default)]
    start_time: String,
    #[serde(default)]
    end_time: String,
}

fn hhmm(m: u32) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl Serialize for TimeRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TimeRangeText {
            start_time: hhmm(self.start_minute),
            end_time: hhmm(self.end_minute),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = TimeRangeText::deserialize(d)?;
        TimeRange::parse(&t.start_time, &t.end_time).map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------

/// The zone a time interval is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Utc,
    /// The zone of the machine (`Local`).
    Local,
    Zone(chrono_tz::Tz),
}

impl Location {
    /// Go's `time.LoadLocation`: `""` and `UTC` are UTC, `Local` the machine's zone,
    /// anything else an IANA zone name.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "" | "UTC" => Ok(Location::Utc),
            "Local" => Ok(Location::Local),
            other => other
                .parse::<chrono_tz::Tz>()
                .map(Location::Zone)
                .map_err(|_| format!("unknown time zone {other}")),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Location::Utc => "UTC",
            Location::Local => "Local",
            Location::Zone(tz) => tz.name(),
        }
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParseScalar(Location::parse))
    }
}

// ---------------------------------------------------------------------------------------
// Time intervals
// ---------------------------------------------------------------------------------------

/// One entry of a named interval's `time_intervals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<TimeRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekdays: Option<Vec<WeekdayRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_of_month: Option<Vec<DayOfMonthRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub months: Option<Vec<MonthRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<Vec<YearRange>>,
    /// UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// The calendar fields of an instant in some zone.
struct CivilTime {
    year: i32,
    month: u32,
    day: u32,
    weekday: u32,
    minute_of_day: u32,
    days_in_month: u32,
}

fn civil<Tz: TimeZone>(t: DateTime<Tz>) -> CivilTime {
    let (year, month) = (t.year(), t.month());
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    let days_in_month = match (first, next) {
        (Some(a), Some(b)) => (b - a).num_days() as u32,
        _ => 31,
    };
    CivilTime {
        year,
        month,
        day: t.day(),
        weekday: t.weekday().num_days_from_sunday(),
        minute_of_day: t.hour() * 60 + t.minute(),
        days_in_month,
    }
}

fn any_or_unset<T>(ranges: &Option<Vec<T>>, f: impl Fn(&T) -> bool) -> bool {
    ranges.as_ref().is_none_or(|r| r.iter().any(f))
}

impl TimeInterval {
    /// Whether `t` lies in the interval (Alertmanager's `ContainsTime`).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let c = match self.location {
            None | Some(Location::Utc) => civil(t),
            Some(Location::Local) => civil(t.with_timezone(&chrono::Local)),
            Some(Location::Zone(tz)) => civil(t.with_timezone(&tz)),
        };
        any_or_unset(&self.times, |r| r.contains(c.minute_of_day))
            && any_or_unset(&self.days_of_month, |r| {
                let n = c.days_in_month as i32;
                let resolve = |d: i32| if d < 0 { n + d + 1 } else { d };
                let (begin, end) = (resolve(r.begin), resolve(r.end));
                // A range that starts after the month's end does not wrap into the
                // next month; one that ends after it stops at the last day.
                begin <= n && (begin.clamp(-n, n)..=end.clamp(-n, n)).contains(&(c.day as i32))
            })
            && any_or_unset(&self.months, |r| {
                (c.month as i32) >= r.begin && (c.month as i32) <= r.end
            })
            && any_or_unset(&self.weekdays, |r| {
                c.weekday >= r.begin && c.weekday <= r.end
            })
            && any_or_unset(&self.years, |r| c.year >= r.begin && c.year <= r.end)
    }
}

/// One entry of `time_intervals` or `mute_time_intervals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "crate::config::null_default")]
    pub time_intervals: Vec<TimeInterval>,
}

/// Every named time interval of a configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeIntervals {
    by_name: HashMap<String, Vec<TimeInterval>>,
}

impl TimeIntervals {
    /// From named intervals (`mute_time_intervals` and `time_intervals` of a validated
    /// file: names are unique); a later duplicate name replaces an earlier one.
    pub fn new<'a>(named: impl IntoIterator<Item = &'a NamedTimeInterval>) -> Self {
        TimeIntervals {
            by_name: named
                .into_iter()
                .map(|n| (n.name.clone(), n.time_intervals.clone()))
                .collect(),
        }
    }

    /// Both lists of a file.
    pub fn from_file(file: &crate::config::AlertmanagerFile) -> Self {
        TimeIntervals::new(file.mute_time_intervals.iter().chain(&file.time_intervals))
    }

    pub fn contains_name(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Whether any interval of `name` contains `t`; an unknown name is an error (with
    /// Alertmanager's text).
    pub fn is_active(&self, name: &str, t: DateTime<Utc>) -> Result<bool, NotifierError> {
        match self.by_name.get(name) {
            Some(list) => Ok(list.iter().any(|ti| ti.contains(t))),
            None => Err(NotifierError::Config(format!(
                "time interval {name} doesn't exist in config"
            ))),
        }
    }

    /// Whether any of `names` is active at `t` (a route's `mute_time_intervals` mute it
    /// then; its `active_time_intervals`, when given, mute it when none is).
    pub fn any_active(&self, names: &[String], t: DateTime<Utc>) -> Result<bool, NotifierError> {
        for n in names {
            if self.is_active(n, t)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_of_day() {
        assert_eq!(parse_time("00:00"), Ok(0));
        assert_eq!(parse_time("09:30"), Ok(570));
        assert_eq!(parse_time("24:00"), Ok(1440));
        for bad in ["24:01", "9:30", "25:00", "12:60", "12-30", "1230", " 12:30"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
