//! Go's `time.Time` as templates see it: formatting and parsing with Go reference
//! layouts (`2006-01-02T15:04:05Z07:00`), `String()`, and Unix conversions. The
//! local zone is UTC; zones are fixed offsets (named zones other than UTC fall back
//! to UTC, as Loki does when a zone fails to load).

/// An instant with a fixed zone offset.
#[derive(Debug, Clone, PartialEq)]
pub struct GoTime {
    /// Seconds since the Unix epoch (UTC).
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nsec: u32,
    /// Zone offset east of UTC, in seconds.
    pub offset: i32,
    /// Zone abbreviation ("UTC", or "" for a parsed numeric offset).
    pub zone: String,
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil date of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

/// Broken-down local fields.
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    weekday: usize,
    yday: u32,
}

impl GoTime {
    /// `time.Unix(secs, nsec)` in the local zone (UTC).
    pub fn from_unix(secs: i64, nsec: i64) -> GoTime {
        let secs = secs + nsec.div_euclid(1_000_000_000);
        let nsec = nsec.rem_euclid(1_000_000_000) as u32;
        GoTime {
            secs,
            nsec,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    /// `time.Unix(0, ns)`.
    pub fn from_unix_nanos(ns: i64) -> GoTime {
        GoTime::from_unix(0, ns)
    }

    /// Go's zero time (`0001-01-01 00:00:00 UTC`).
    pub fn zero() -> GoTime {
        GoTime {
            secs: -62_135_596_800,
            nsec: 0,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    pub fn now() -> GoTime {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        GoTime::from_unix(d.as_secs() as i64, d.subsec_nanos() as i64)
    }

    pub fn unix(&self) -> i64 {
        self.secs
    }

    pub fn unix_milli(&self) -> i64 {
        self.secs * 1000 + (self.nsec / 1_000_000) as i64
    }

    pub fn unix_micro(&self) -> i64 {
        self.secs * 1_000_000 + (self.nsec / 1000) as i64
    }

    pub fn unix_nano(&self) -> i64 {
        self.secs
            .wrapping_mul(1_000_000_000)
            .wrapping_add(self.nsec as i64)
    }

    /// The same instant in UTC.
    pub fn utc(&self) -> GoTime {
        GoTime {
            offset: 0,
            zone: "UTC".into(),
            ..self.clone()
        }
    }

    fn fields(&self) -> Fields {
        let local = self.secs + self.offset as i64;
        let days = local.div_euclid(86_400);
        let rem = local.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1)) as u32 + 1;
        Fields {
            year,
            month,
            day,
            hour: rem / 3600,
            min: rem / 60 % 60,
            sec: rem % 60,
            weekday: (days + 4).rem_euclid(7) as usize,
            yday,
        }
    }

    pub fn year(&self) -> i64 {
        self.fields().year
    }
    pub fn month(&self) -> u32 {
        self.fields().month
    }
    pub fn day(&self) -> u32 {
        self.fields().day
    }
    pub fn hour(&self) -> u32 {
        self.fields().hour
    }
    pub fn minute(&self) -> u32 {
        self.fields().min
    }
    pub fn second(&self) -> u32 {
        self.fields().sec
    }
    pub fn month_name(&self) -> &'static str {
        MONTHS[self.fields().month as usize - 1]
    }
    pub fn weekday_name(&self) -> &'static str {
        DAYS[self.fields().weekday]
    }
    pub fn year_day(&self) -> u32 {
        self.fields().yday
    }

    fn zone_abbrev(&self) -> String {
        if !self.zone.is_empty() {
            return self.zone.clone();
        }
        // Go prints a numeric offset when the zone has no name.
        let mut s = String::new();
        push_offset(&mut s, self.offset, false, false, false);
        s
    }

    /// Go's `Time.String()`.
    pub fn go_string(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    /// Go's `Time.Format(layout)`.
    pub fn format(&self, layout: &str) -> String {
        let f = self.fields();
        let mut out = String::with_capacity(layout.len() + 10);
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, chunk, suffix) = next_chunk(rest);
            out.push_str(prefix);
            let Some(chunk) = chunk else { break };
            rest = suffix;
            match chunk {
                Chunk::LongMonth => out.push_str(MONTHS[f.month as usize - 1]),
                Chunk::Month => out.push_str(&MONTHS[f.month as usize - 1][..3]),
                Chunk::NumMonth => out.push_str(&f.month.to_string()),
                Chunk::ZeroMonth => out.push_str(&format!("{:02}", f.month)),
                Chunk::LongWeekDay => out.push_str(DAYS[f.weekday]),
                Chunk::WeekDay => out.push_str(&DAYS[f.weekday][..3]),
                Chunk::Day => out.push_str(&f.day.to_string()),
                Chunk::UnderDay => out.push_str(&format!("{:>2}", f.day)),
                Chunk::ZeroDay => out.push_str(&format!("{:02}", f.day)),
                Chunk::UnderYearDay => out.push_str(&format!("{:>3}", f.yday)),
                Chunk::ZeroYearDay => out.push_str(&format!("{:03}", f.yday)),
                Chunk::Hour => out.push_str(&format!("{:02}", f.hour)),
                Chunk::Hour12 => {
                    let h = f.hour % 12;
                    out.push_str(&(if h == 0 { 12 } else { h }).to_string())
                }
                Chunk::ZeroHour12 => {
                    let h = f.hour % 12;
                    out.push_str(&format!("{:02}", if h == 0 { 12 } else { h }))
                }
                Chunk::Minute => out.push_str(&f.min.to_string()),
                Chunk::ZeroMinute => out.push_str(&format!("{:02}", f.min)),
                Chunk::Second => out.push_str(&f.sec.to_string()),
                Chunk::ZeroSecond => out.push_str(&format!("{:02}", f.sec)),
                Chunk::LongYear => {
                    if f.year < 0 {
                        out.push_str(&format!("-{:04}", -f.year))
                    } else {
                        out.push_str(&format!("{:04}", f.year))
                    }
                }
                Chunk::Year => out.push_str(&format!("{:02}", f.year.rem_euclid(100))),
                Chunk::PM => out.push_str(if f.hour >= 12 { "PM" } else { "AM" }),
                Chunk::Pm => out.push_str(if f.hour >= 12 { "pm" } else { "am" }),
                Chunk::TZ => out.push_str(&self.zone_abbrev()),
                Chunk::Offset {
                    z,
                    colon,
                    secs,
                    hours_only,
                } => {
                    if z && self.offset == 0 {
                        out.push('Z');
                    } else {
                        push_offset(&mut out, self.offset, colon, secs, hours_only);
                    }
                }
                Chunk::Frac { sep, digits, trim } => {
                    let s = format!("{:09}", self.nsec);
                    let mut d = &s[..digits.min(9)];
                    if trim {
                        d = d.trim_end_matches('0');
                        if d.is_empty() {
                            continue;
                        }
                    }
                    out.push(sep);
                    out.push_str(d);
                }
            }
        }
        out
    }

    /// Go's `time.Parse(layout, value)` with a default zone offset of 0 (UTC).
    pub fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
        let err = || format!("parsing time {:?} as {:?}: cannot parse", value, layout);
        let mut year: i64 = 1;
        let mut month: u32 = 1;
        let mut day: u32 = 1;
        let mut hour: u32 = 0;
        let mut min: u32 = 0;
        let mut sec: u32 = 0;
        let mut nsec: u32 = 0;
        let mut pm: Option<bool> = None;
        let mut offset: Option<i32> = None;
        let mut zone = String::new();
        let mut yday: Option<u32> = None;
        let mut rest = layout;
        let mut v = value;
        loop {
            let (prefix, chunk, suffix) = next_chunk(rest);
            v = v.strip_prefix(prefix).ok_or_else(err)?;
            let Some(chunk) = chunk else {
                if !v.is_empty() {
                    return Err(format!("parsing time {value:?}: extra text: {v:?}"));
                }
                break;
            };
            rest = suffix;
            match chunk {
                Chunk::LongYear => {
                    let (n, r) = take_digits(v, 4, 4).ok_or_else(err)?;
                    year = n as i64;
                    v = r;
                }
                Chunk::Year => {
                    let (n, r) = take_digits(v, 2, 2).ok_or_else(err)?;
                    year = if n >= 69 {
                        1900 + n as i64
                    } else {
                        2000 + n as i64
                    };
                    v = r;
                }
                Chunk::LongMonth | Chunk::Month => {
                    let long = matches!(chunk, Chunk::LongMonth);
                    let i = MONTHS
                        .iter()
                        .position(|m| {
                            let m = if long { *m } else { &m[..3] };
                            v.len() >= m.len() && v[..m.len()].eq_ignore_ascii_case(m)
                        })
                        .ok_or_else(err)?;
                    let l = if long { MONTHS[i].len() } else { 3 };
                    month = i as u32 + 1;
                    v = &v[l..];
                }
                Chunk::LongWeekDay | Chunk::WeekDay => {
                    let long = matches!(chunk, Chunk::LongWeekDay);
                    let i = DAYS
                        .iter()
                        .position(|m| {
                            let m = if long { *m } else { &m[..3] };
                            v.len() >= m.len() && v[..m.len()].eq_ignore_ascii_case(m)
                        })
                        .ok_or_else(err)?;
                    v = &v[if long { DAYS[i].len() } else { 3 }..];
                }
                Chunk::NumMonth | Chunk::ZeroMonth => {
                    let fixed = matches!(chunk, Chunk::ZeroMonth);
                    let (n, r) = take_digits(v, if fixed { 2 } else { 1 }, 2).ok_or_else(err)?;
                    if !(1..=12).contains(&n) {
                        return Err(format!("parsing time {value:?}: month out of range"));
                    }
                    month = n;
                    v = r;
                }
                Chunk::Day | Chunk::ZeroDay | Chunk::UnderDay => {
                    if matches!(chunk, Chunk::UnderDay) && v.starts_with(' ') {
                        v = &v[1..];
                    }
                    let fixed = matches!(chunk, Chunk::ZeroDay);
                    let (n, r) = take_digits(v, if fixed { 2 } else { 1 }, 2).ok_or_else(err)?;
                    day = n;
                    v = r;
                }
                Chunk::ZeroYearDay | Chunk::UnderYearDay => {
                    let t = v.trim_start_matches(' ');
                    let (n, r) = take_digits(t, 1, 3).ok_or_else(err)?;
                    yday = Some(n);
                    v = r;
                }
                Chunk::Hour => {
                    let (n, r) = take_digits(v, 1, 2).ok_or_else(err)?;
                    if n > 23 {
                        return Err(format!("parsing time {value:?}: hour out of range"));
                    }
                    hour = n;
                    v = r;
                }
                Chunk::Hour12 | Chunk::ZeroHour12 => {
                    let fixed = matches!(chunk, Chunk::ZeroHour12);
                    let (n, r) = take_digits(v, if fixed { 2 } else { 1 }, 2).ok_or_else(err)?;
                    if n > 12 {
                        return Err(format!("parsing time {value:?}: hour out of range"));
                    }
                    hour = n;
                    v = r;
                }
                Chunk::Minute | Chunk::ZeroMinute => {
                    let fixed = matches!(chunk, Chunk::ZeroMinute);
                    let (n, r) = take_digits(v, if fixed { 2 } else { 1 }, 2).ok_or_else(err)?;
                    if n > 59 {
                        return Err(format!("parsing time {value:?}: minute out of range"));
                    }
                    min = n;
                    v = r;
                }
                Chunk::Second | Chunk::ZeroSecond => {
                    let fixed = matches!(chunk, Chunk::ZeroSecond);
                    let (n, r) = take_digits(v, if fixed { 2 } else { 1 }, 2).ok_or_else(err)?;
                    if n > 59 {
                        return Err(format!("parsing time {value:?}: second out of range"));
                    }
                    sec = n;
                    v = r;
                    // Go accepts a fractional second here even when the layout has none.
                    let next_is_frac = matches!(next_chunk(rest).1, Some(Chunk::Frac { .. }))
                        && next_chunk(rest).0.is_empty();
                    if !next_is_frac
                        && v.len() >= 2
                        && (v.starts_with('.') || v.starts_with(','))
                        && v.as_bytes()[1].is_ascii_digit()
                    {
                        let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                        nsec = frac_nanos(&v[1..1 + n]);
                        v = &v[1 + n..];
                    }
                }
                Chunk::Frac { digits, trim, .. } => {
                    if !(v.starts_with('.') || v.starts_with(',')) {
                        if trim {
                            continue;
                        }
                        return Err(err());
                    }
                    let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                    if !trim && n != digits {
                        return Err(err());
                    }
                    nsec = frac_nanos(&v[1..1 + n]);
                    v = &v[1 + n..];
                }
                Chunk::PM | Chunk::Pm => {
                    let p = v.get(..2).ok_or_else(err)?;
                    pm = Some(match p.to_ascii_uppercase().as_str() {
                        "PM" => true,
                        "AM" => false,
                        _ => return Err(err()),
                    });
                    v = &v[2..];
                }
                Chunk::TZ => {
                    if let Some(r) = v.strip_prefix("UTC") {
                        offset = Some(0);
                        zone = "UTC".into();
                        v = r;
                    } else {
                        let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                        if n < 3 {
                            return Err(err());
                        }
                        zone = v[..n].to_string();
                        offset = Some(0);
                        v = &v[n..];
                    }
                }
                Chunk::Offset {
                    z,
                    colon,
                    secs,
                    hours_only,
                } => {
                    if z && v.starts_with('Z') {
                        offset = Some(0);
                        zone = "UTC".into();
                        v = &v[1..];
                        continue;
                    }
                    let sign = match v.as_bytes().first() {
                        Some(b'+') => 1,
                        Some(b'-') => -1,
                        _ => return Err(err()),
                    };
                    v = &v[1..];
                    let (h, r) = take_digits(v, 2, 2).ok_or_else(err)?;
                    v = r;
                    let mut m = 0;
                    let mut s = 0;
                    if !hours_only {
                        if colon {
                            v = v.strip_prefix(':').ok_or_else(err)?;
                        }
                        let (n, r) = take_digits(v, 2, 2).ok_or_else(err)?;
                        m = n;
                        v = r;
                        if secs {
                            if colon {
                                v = v.strip_prefix(':').ok_or_else(err)?;
                            }
                            let (n, r) = take_digits(v, 2, 2).ok_or_else(err)?;
                            s = n;
                            v = r;
                        }
                    }
                    let off = sign * (h * 3600 + m * 60 + s) as i32;
                    offset = Some(off);
                    zone = if off == 0 {
                        "UTC".into()
                    } else {
                        String::new()
                    };
                }
            }
        }
        if let Some(p) = pm {
            if p && hour < 12 {
                hour += 12;
            } else if !p && hour == 12 {
                hour = 0;
            }
        }
        if let Some(yd) = yday {
            let max = if is_leap(year) { 366 } else { 365 };
            if yd < 1 || yd > max {
                return Err(format!("parsing time {value:?}: day-of-year out of range"));
            }
            let (_, m, d) = civil_from_days(days_from_civil(year, 1, 1) + yd as i64 - 1);
            month = m;
            day = d;
        }
        let mdays = [
            31,
            if is_leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if day < 1 || day > mdays[month as usize - 1] {
            return Err(format!("parsing time {value:?}: day out of range"));
        }
        let days = days_from_civil(year, month, day);
        let local = days * 86_400 + (hour * 3600 + min * 60 + sec) as i64;
        let off = offset.unwrap_or(0);
        Ok(GoTime {
            secs: local - off as i64,
            nsec,
            offset: off,
            zone: if offset.is_none() { "UTC".into() } else { zone },
        })
    }
}

fn frac_nanos(digits: &str) -> u32 {
    let mut n: u32 = 0;
    for (i, c) in digits.bytes().take(9).enumerate() {
        n += (c - b'0') as u32 * 10u32.pow(8 - i as u32);
    }
    n
}

fn take_digits(v: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

fn push_offset(out: &mut String, offset: i32, colon: bool, secs: bool, hours_only: bool) {
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.unsigned_abs();
    out.push(sign);
    out.push_str(&format!("{:02}", o / 3600));
    if hours_only {
        return;
    }
    if colon {
        out.push(':');
    }
    out.push_str(&format!("{:02}", o / 60 % 60));
    if secs {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", o % 60));
    }
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    Offset {
        z: bool,
        colon: bool,
        secs: bool,
        hours_only: bool,
    },
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

/// Go's `nextStdChunk`: (text before, the chunk, text after).
fn next_chunk(layout: &str) -> (&str, Option<Chunk>, &str) {
    let b = layout.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &layout[i..];
        let found: Option<(Chunk, usize)> = match b[i] {
            b'J' => {
                if rest.starts_with("January") {
                    Some((Chunk::LongMonth, 7))
                } else if rest.starts_with("Jan") {
                    Some((Chunk::Month, 3))
                } else {
                    None
                }
            }
            b'M' => {
                if rest.starts_with("Monday") {
                    Some((Chunk::LongWeekDay, 6))
                } else if rest.starts_with("Mon") {
                    Some((Chunk::WeekDay, 3))
                } else if rest.starts_with("MST") {
                    Some((Chunk::TZ, 3))
                } else {
                    None
                }
            }
            b'0' => match b.get(i + 1) {
                Some(c @ b'1'..=b'6') => Some((
                    match c {
                        b'1' => Chunk::ZeroMonth,
                        b'2' => Chunk::ZeroDay,
                        b'3' => Chunk::ZeroHour12,
                        b'4' => Chunk::ZeroMinute,
                        b'5' => Chunk::ZeroSecond,
                        _ => Chunk::Year,
                    },
                    2,
                )),
                Some(b'0') if b.get(i + 2) == Some(&b'2') => Some((Chunk::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' => {
                if b.get(i + 1) == Some(&b'5') {
                    Some((Chunk::Hour, 2))
                } else {
                    Some((Chunk::NumMonth, 1))
                }
            }
            b'2' => {
                if rest.starts_with("2006") {
                    Some((Chunk::LongYear, 4))
                } else {
                    Some((Chunk::Day, 1))
                }
            }
            b'_' => {
                if b.get(i + 1) == Some(&b'2') {
                    if rest.starts_with("_2006") {
                        // "_" is literal, the year follows
                        return (&layout[..i + 1], Some(Chunk::LongYear), &layout[i + 5..]);
                    }
                    Some((Chunk::UnderDay, 2))
                } else if rest.starts_with("__2") {
                    Some((Chunk::UnderYearDay, 3))
                } else {
                    None
                }
            }
            b'3' => Some((Chunk::Hour12, 1)),
            b'4' => Some((Chunk::Minute, 1)),
            b'5' => Some((Chunk::Second, 1)),
            b'P' if b.get(i + 1) == Some(&b'M') => Some((Chunk::PM, 2)),
            b'p' if b.get(i + 1) == Some(&b'm') => Some((Chunk::Pm, 2)),
            b'-' | b'Z' => {
                let z = b[i] == b'Z';
                let r = &rest[1..];
                if r.starts_with("07:00:00") {
                    Some((
                        Chunk::Offset {
                            z,
                            colon: true,
                            secs: true,
                            hours_only: false,
                        },
                        9,
                    ))
                } else if r.starts_with("070000") {
                    Some((
                        Chunk::Offset {
                            z,
                            colon: false,
                            secs: true,
                            hours_only: false,
                        },
                        7,
                    ))
                } else if r.starts_with("07:00") {
                    Some((
                        Chunk::Offset {
                            z,
                            colon: true,
                            secs: false,
                            hours_only: false,
                        },
                        6,
                    ))
                } else if r.starts_with("0700") {
                    Some((
                        Chunk::Offset {
                            z,
                            colon: false,
                            secs: false,
                            hours_only: false,
                        },
                        5,
                    ))
                } else if r.starts_with("07") {
                    Some((
                        Chunk::Offset {
                            z,
                            colon: false,
                            secs: false,
                            hours_only: true,
                        },
                        3,
                    ))
                } else {
                    None
                }
            }
            c @ (b'.' | b',') => {
                if let Some(&d @ (b'0' | b'9')) = b.get(i + 1) {
                    let n = b[i + 1..].iter().take_while(|x| **x == d).count();
                    if !b.get(i + 1 + n).is_some_and(u8::is_ascii_digit) {
                        Some((
                            Chunk::Frac {
                                sep: c as char,
                                digits: n,
                                trim: d == b'9',
                            },
                            1 + n,
                        ))
                    } else {
                        None
                    }
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some((c, len)) = found {
            return (&layout[..i], Some(c), &layout[i + len..]);
        }
        i += layout[i..].chars().next().map_or(1, char::len_utf8);
    }
    (layout, None, "")
}

/// A zone by name: `UTC`, `Local` and "" are UTC; anything else is unknown.
pub fn zone_offset(name: &str) -> Option<(i32, String)> {
    match name {
        "" | "UTC" | "Local" | "Etc/UTC" | "GMT" | "Etc/GMT" => Some((0, "UTC".into())),
        _ => None,
    }
}
