//! Syslog message parsers: RFC 5424 and RFC 3164 (BSD), including rsyslog's forwarding
//! variant of the latter (an RFC 3339 timestamp in place of `Mmm dd hh:mm:ss`).
//!
//! The format is chosen after the PRI: a version number followed by a space is RFC 5424;
//! a month name or an RFC 3339 date is RFC 3164. Errors name the field and the 1-based
//! byte column where the problem is ([`ParseError`]).
//!
//! Leniency, on purpose: RFC 5424's field length limits (APP-NAME 48, PROCID 128, …)
//! are not enforced, structured-data values may hold any UTF-8, and a backslash before
//! anything other than `"`, `\` or `]` is kept as is (as the RFC asks). Bytes that are not
//! UTF-8 are replaced (U+FFFD). Trailing CR, LF and NUL are removed from MSG: they are
//! framing left-overs of senders that terminate UDP datagrams.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, Offset, TimeZone, Utc};

/// The facility names of PRI / 8, as rsyslog and Promtail spell them.
pub const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// The severity names of PRI % 8.
pub const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Which RFC a message followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rfc5424,
    Rfc3164,
}

/// One structured-data element: `[id name="value" …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    pub id: String,
    pub params: Vec<(String, String)>,
}

/// A parsed message. Absent fields (NILVALUE, or not part of the format) are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogMessage {
    pub format: Format,
    /// 0..=23, see [`FACILITIES`].
    pub facility: u8,
    /// 0..=7, see [`SEVERITIES`].
    pub severity: u8,
    /// Unix nanoseconds.
    pub timestamp: Option<i64>,
    pub hostname: Option<String>,
    /// APP-NAME, or the TAG of an RFC 3164 message.
    pub app_name: Option<String>,
    /// PROCID, or the `[PID]` of an RFC 3164 TAG.
    pub procid: Option<String>,
    pub msgid: Option<String>,
    pub structured_data: Vec<SdElement>,
    pub message: String,
}

impl SyslogMessage {
    pub fn facility_name(&self) -> &'static str {
        FACILITIES
            .get(self.facility as usize)
            .copied()
            .unwrap_or("unknown")
    }
    pub fn severity_name(&self) -> &'static str {
        SEVERITIES
            .get(self.severity as usize)
            .copied()
            .unwrap_or("unknown")
    }
}

/// Why a message did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based byte column.
    pub column: usize,
    /// A short, fixed reason for metrics: `pri`, `version`, `timestamp`, `header`,
    /// `structured_data`.
    pub reason: &'static str,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The time zone RFC 3164 timestamps (which carry none) are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyZone {
    /// The receiving machine's local time zone (rsyslog's behaviour).
    Local,
    Fixed(FixedOffset),
}

impl LegacyZone {
    /// `local`, `UTC` / `Z`, or an offset `+hh:mm` / `-hh:mm`.
    pub fn parse(s: &str) -> Result<LegacyZone, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("local") {
            return Ok(LegacyZone::Local);
        }
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(LegacyZone::Fixed(Utc.fix()));
        }
        let b = t.as_bytes();
        let bad = || format!("time zone {s:?} is not `local`, `UTC` or an offset like `+08:00`");
        if b.len() != 6 || b[3] != b':' || !(b[0] == b'+' || b[0] == b'-') {
            return Err(bad());
        }
        let h: i32 = t[1..3].parse().map_err(|_| bad())?;
        let m: i32 = t[4..6].parse().map_err(|_| bad())?;
        let secs = (h * 3600 + m * 60) * if b[0] == b'-' { -1 } else { 1 };
        FixedOffset::east_opt(secs)
            .map(LegacyZone::Fixed)
            .ok_or_else(bad)
    }
}

/// What the parser needs besides the bytes: the receive time (for RFC 3164's missing
/// year) and the zone of RFC 3164 timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: DateTime<Utc>,
    pub zone: LegacyZone,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, at: usize, reason: &'static str, message: impl Into<String>) -> ParseError {
        ParseError {
            column: at + 1,
            reason,
            message: message.into(),
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or_default()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }
    /// The bytes up to the next space (or the end), consumed.
    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == b' ' {
                break;
            }
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }
    fn expect_space(&mut self, reason: &'static str, after: &str) -> Result<(), ParseError> {
        match self.peek() {
            Some(b' ') => {
                self.pos += 1;
                Ok(())
            }
            None => Err(self.err(
                self.pos,
                reason,
                format!("message ends after {after} (truncated header)"),
            )),
            Some(c) => Err(self.err(
                self.pos,
                reason,
                format!("expected a space after {after}, found {:?}", c as char),
            )),
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn trim_trailer(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    &b[..end]
}

/// Parses one message of either format.
pub fn parse(raw: &[u8], ctx: &Context) -> Result<SyslogMessage, ParseError> {
    let mut c = Cursor { b: raw, pos: 0 };
    let pri = parse_pri(&mut c)?;
    let (facility, severity) = ((pri / 8) as u8, (pri % 8) as u8);
    let rest = c.rest();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 4 && rest.get(4) == Some(&b'-') {
        return parse_3164(c, facility, severity, ctx);
    }
    if digits > 0 {
        return parse_5424(c, facility, severity);
    }
    if rest.len() >= 3 && month(&rest[..3]).is_some() {
        return parse_3164(c, facility, severity, ctx);
    }
    if c.at_end() {
        return Err(c.err(c.pos, "header", "message ends after PRI (truncated header)"));
    }
    Err(c.err(
        c.pos,
        "header",
        "expected VERSION (RFC 5424) or a timestamp `Mmm dd hh:mm:ss` / RFC 3339 (RFC 3164) after PRI",
    ))
}

fn parse_pri(c: &mut Cursor) -> Result<u16, ParseError> {
    if c.peek() != Some(b'<') {
        return Err(c.err(0, "pri", "expected `<` starting PRI"));
    }
    c.pos += 1;
    let start = c.pos;
    let mut v: u16 = 0;
    while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
        if c.pos - start == 3 {
            return Err(c.err(start, "pri", "PRI has more than 3 digits"));
        }
        v = v * 10 + u16::from(d - b'0');
        c.pos += 1;
    }
    if c.pos == start {
        return Err(c.err(start, "pri", "PRI has no digits"));
    }
    if c.peek() != Some(b'>') {
        return Err(c.err(c.pos, "pri", "expected `>` closing PRI"));
    }
    if v > 191 {
        return Err(c.err(start, "pri", format!("PRI {v} is out of range 0..=191")));
    }
    if c.pos - start > 1 && c.b[start] == b'0' {
        return Err(c.err(start, "pri", "PRI has a leading zero"));
    }
    c.pos += 1;
    Ok(v)
}

fn nil_or(tok: &[u8]) -> Option<String> {
    (tok != b"-").then(|| lossy(tok))
}

fn parse_5424(mut c: Cursor, facility: u8, severity: u8) -> Result<SyslogMessage, ParseError> {
    let vstart = c.pos;
    let version = c.token();
    if version != b"1" {
        return Err(c.err(
            vstart,
            "version",
            format!(
                "unsupported syslog VERSION {:?} (only RFC 5424's 1 is known)",
                lossy(version)
            ),
        ));
    }
    c.expect_space("header", "VERSION")?;
    let tstart = c.pos;
    let ts = c.token();
    let timestamp = if ts == b"-" {
        None
    } else {
        Some(rfc3339(ts).ok_or_else(|| {
            c.err(
                tstart,
                "timestamp",
                format!(
                    "TIMESTAMP {:?} is not an RFC 3339 time with a UTC offset",
                    lossy(ts)
                ),
            )
        })?)
    };
    let mut fields: [Option<String>; 3] = [None, None, None];
    let mut hostname = None;
    c.expect_space("header", "TIMESTAMP")?;
    for (i, name) in ["HOSTNAME", "APP-NAME", "PROCID", "MSGID"]
        .iter()
        .enumerate()
    {
        let start = c.pos;
        let tok = c.token();
        if tok.is_empty() {
            return Err(c.err(start, "header", format!("{name} is missing")));
        }
        if let Some(p) = tok.iter().position(|b| !(33..=126).contains(b)) {
            return Err(c.err(
                start + p,
                "header",
                format!("{name} has a character that is not printable US-ASCII"),
            ));
        }
        let v = nil_or(tok);
        match i {
            0 => hostname = v,
            _ => fields[i - 1] = v,
        }
        c.expect_space("header", name)?;
    }
    let [app_name, procid, msgid] = fields;
    let structured_data = parse_sd(&mut c)?;
    let message = match c.peek() {
        None => String::new(),
        Some(_) if trim_trailer(c.rest()).is_empty() => String::new(),
        Some(b' ') => {
            c.pos += 1;
            let mut m = c.rest();
            m = m.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(m);
            lossy(trim_trailer(m))
        }
        Some(ch) => {
            return Err(c.err(
                c.pos,
                "structured_data",
                format!(
                    "expected a space before MSG after STRUCTURED-DATA, found {:?}",
                    ch as char
                ),
            ));
        }
    };
    Ok(SyslogMessage {
        format: Format::Rfc5424,
        facility,
        severity,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        message,
    })
}

fn rfc3339(tok: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(tok).ok()?;
    DateTime::parse_from_rfc3339(s).ok()?.timestamp_nanos_opt()
}

fn parse_sd(c: &mut Cursor) -> Result<Vec<SdElement>, ParseError> {
    match c.peek() {
        None => {
            return Err(c.err(
                c.pos,
                "header",
                "message ends before STRUCTURED-DATA (truncated header)",
            ));
        }
        Some(b'-') => {
            c.pos += 1;
            return Ok(Vec::new());
        }
        Some(b'[') => {}
        Some(ch) => {
            return Err(c.err(
                c.pos,
                "structured_data",
                format!(
                    "expected `-` or `[` starting STRUCTURED-DATA, found {:?}",
                    ch as char
                ),
            ));
        }
    }
    let mut out = Vec::new();
    while c.peek() == Some(b'[') {
        c.pos += 1;
        let id = sd_name(c, "SD-ID")?;
        let mut params = Vec::new();
        loop {
            match c.peek() {
                Some(b']') => {
                    c.pos += 1;
                    break;
                }
                Some(b' ') => {
                    c.pos += 1;
                    let name = sd_name(c, "PARAM-NAME")?;
                    if c.peek() != Some(b'=') {
                        return Err(c.err(
                            c.pos,
                            "structured_data",
                            format!("expected `=` after PARAM-NAME {name:?}"),
                        ));
                    }
                    c.pos += 1;
                    if c.peek() != Some(b'"') {
                        return Err(c.err(
                            c.pos,
                            "structured_data",
                            format!("expected `\"` opening the value of {name:?}"),
                        ));
                    }
                    c.pos += 1;
                    let value = sd_value(c, &name)?;
                    params.push((name, value));
                }
                None => {
                    return Err(c.err(
                        c.pos,
                        "structured_data",
                        format!("SD-ELEMENT {id:?} is not closed with `]`"),
                    ));
                }
                Some(ch) => {
                    return Err(c.err(
                        c.pos,
                        "structured_data",
                        format!(
                            "expected a space or `]` in SD-ELEMENT {id:?}, found {:?}",
                            ch as char
                        ),
                    ));
                }
            }
        }
        out.push(SdElement { id, params });
    }
    Ok(out)
}

fn sd_name(c: &mut Cursor, what: &str) -> Result<String, ParseError> {
    let start = c.pos;
    while let Some(ch) = c.peek() {
        if !(33..=126).contains(&ch) || matches!(ch, b'=' | b']' | b'"') {
            break;
        }
        c.pos += 1;
    }
    if c.pos == start {
        return Err(c.err(start, "structured_data", format!("{what} is empty")));
    }
    Ok(lossy(&c.b[start..c.pos]))
}

fn sd_value(c: &mut Cursor, name: &str) -> Result<String, ParseError> {
    let start = c.pos;
    let mut v = Vec::new();
    loop {
        match c.peek() {
            None => {
                return Err(c.err(
                    start,
                    "structured_data",
                    format!("the value of {name:?} is not closed with `\"`"),
                ));
            }
            Some(b'"') => {
                c.pos += 1;
                return Ok(lossy(&v));
            }
            Some(b'\\') => {
                match c.b.get(c.pos + 1) {
                    Some(&e @ (b'"' | b'\\' | b']')) => {
                        v.push(e);
                        c.pos += 2;
                    }
                    _ => {
                        v.push(b'\\');
                        c.pos += 1;
                    }
                }
                continue;
            }
            Some(ch) => {
                v.push(ch);
                c.pos += 1;
            }
        }
    }
}

fn month(b: &[u8]) -> Option<u32> {
    const M: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    M.iter()
        .position(|m| m.eq_ignore_ascii_case(b))
        .map(|i| i as u32 + 1)
}

fn two_digits(b: &[u8], at: usize) -> Option<u32> {
    match (b.get(at), b.get(at + 1)) {
        (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
            Some(u32::from(x - b'0') * 10 + u32::from(y - b'0'))
        }
        _ => None,
    }
}

/// `Mmm dd hh:mm:ss` (day space-padded, zero-padded or one digit); returns the time in
/// Unix nanoseconds with the year inferred from `ctx.now`.
fn legacy_timestamp(c: &mut Cursor, ctx: &Context) -> Result<i64, ParseError> {
    let start = c.pos;
    let bad = |c: &Cursor, at: usize, what: &str| {
        c.err(
            at,
            "timestamp",
            format!("RFC 3164 TIMESTAMP: {what} (expected `Mmm dd hh:mm:ss`)"),
        )
    };
    let mon = month(c.b.get(start..start + 3).unwrap_or_default())
        .ok_or_else(|| bad(c, start, "unknown month"))?;
    c.pos += 3;
    if c.peek() != Some(b' ') {
        return Err(bad(c, c.pos, "no space after the month"));
    }
    c.pos += 1;
    if c.peek() == Some(b' ') {
        c.pos += 1;
    }
    let dstart = c.pos;
    let mut day = 0u32;
    while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
        if c.pos - dstart == 2 {
            return Err(bad(c, dstart, "day has more than 2 digits"));
        }
        day = day * 10 + u32::from(d - b'0');
        c.pos += 1;
    }
    if c.pos == dstart || !(1..=31).contains(&day) {
        return Err(bad(c, dstart, "invalid day of month"));
    }
    if c.peek() != Some(b' ') {
        return Err(bad(c, c.pos, "no space after the day"));
    }
    c.pos += 1;
    let t = c.pos;
    let (h, m, s) = match (
        two_digits(c.b, t),
        c.b.get(t + 2),
        two_digits(c.b, t + 3),
        c.b.get(t + 5),
        two_digits(c.b, t + 6),
    ) {
        (Some(h), Some(b':'), Some(m), Some(b':'), Some(s)) if h < 24 && m < 60 && s < 61 => {
            (h, m, s)
        }
        _ => return Err(bad(c, t, "invalid or truncated time of day")),
    };
    c.pos += 8;
    let s = s.min(59);
    // The year is the one that puts the time closest to the receive time: a December
    // message received in January is from last year, a January message received on
    // 31 December (sender's clock ahead) is from next year.
    let year = ctx.now.year();
    let best = (year - 1..=year + 1)
        .filter_map(|y| NaiveDate::from_ymd_opt(y, mon, day)?.and_hms_opt(h, m, s))
        .filter_map(|ndt| match ctx.zone {
            LegacyZone::Fixed(off) => off.from_local_datetime(&ndt).earliest().map(|d| d.to_utc()),
            LegacyZone::Local => Local
                .from_local_datetime(&ndt)
                .earliest()
                .map(|d| d.to_utc()),
        })
        .min_by_key(|d| (*d - ctx.now).num_seconds().unsigned_abs());
    best.and_then(|d| d.timestamp_nanos_opt())
        .ok_or_else(|| bad(c, start, "no such date"))
}

fn looks_like_tag(tok: &[u8]) -> bool {
    tok.ends_with(b":") || (tok.contains(&b'[') && tok.ends_with(b"]"))
}

fn parse_3164(
    mut c: Cursor,
    facility: u8,
    severity: u8,
    ctx: &Context,
) -> Result<SyslogMessage, ParseError> {
    let start = c.pos;
    let timestamp = if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        let tok = c.token();
        rfc3339(tok).ok_or_else(|| {
            c.err(
                start,
                "timestamp",
                format!(
                    "TIMESTAMP {:?} is not an RFC 3339 time with a UTC offset",
                    lossy(tok)
                ),
            )
        })?
    } else {
        legacy_timestamp(&mut c, ctx)?
    };
    let mut hostname = None;
    let mut app_name = None;
    let mut procid = None;
    let rest = match c.peek() {
        None => &[][..],
        Some(b' ') => {
            c.pos += 1;
            let save = c.pos;
            let tok = c.token();
            if tok.is_empty() || looks_like_tag(tok) {
                c.pos = save;
            } else {
                hostname = Some(lossy(tok));
                if c.peek() == Some(b' ') {
                    c.pos += 1;
                }
            }
            let save = c.pos;
            let tok = c.token();
            if looks_like_tag(tok) {
                let t = tok.strip_suffix(b":").unwrap_or(tok);
                let (name, pid) = match t.iter().position(|b| *b == b'[') {
                    Some(i) if t.ends_with(b"]") => (&t[..i], Some(&t[i + 1..t.len() - 1])),
                    _ => (t, None),
                };
                if !name.is_empty() {
                    app_name = Some(lossy(name));
                }
                procid = pid.filter(|p| !p.is_empty()).map(lossy);
                if c.peek() == Some(b' ') {
                    c.pos += 1;
                }
            } else {
                c.pos = save;
            }
            c.rest()
        }
        Some(ch) => {
            return Err(c.err(
                c.pos,
                "timestamp",
                format!(
                    "expected a space after the TIMESTAMP, found {:?}",
                    ch as char
                ),
            ));
        }
    };
    Ok(SyslogMessage {
        format: Format::Rfc3164,
        facility,
        severity,
        timestamp: Some(timestamp),
        hostname,
        app_name,
        procid,
        msgid: None,
        structured_data: Vec::new(),
        message: lossy(trim_trailer(rest)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(now: &str) -> Context {
        Context {
            now: DateTime::parse_from_rfc3339(now).unwrap().to_utc(),
            zone: LegacyZone::Fixed(FixedOffset::east_opt(0).unwrap()),
        }
    }

    fn ns(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    fn p(s: &str) -> SyslogMessage {
        parse(s.as_bytes(), &ctx("2024-06-15T12:00:00Z")).unwrap()
    }

    fn e(s: &[u8]) -> ParseError {
        parse(s, &ctx("2024-06-15T12:00:00Z")).unwrap_err()
    }

    #[test]
    fn rfc5424_full_message_with_bom_and_fraction() {
        let m = parse(
            b"<165>1 2023-08-24T05:14:15.000003-07:00 gw01.example.net billing 4711 INV17 - \xEF\xBB\xBFinvoice run started",
            &ctx("2024-06-15T12:00:00Z"),
        )
        .unwrap();
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!(m.facility_name(), "local4");
        assert_eq!(m.severity_name(), "notice");
        assert_eq!(m.timestamp, Some(ns("2023-08-24T12:14:15.000003Z")));
        assert_eq!(m.hostname.as_deref(), Some("gw01.example.net"));
        assert_eq!(m.app_name.as_deref(), Some("billing"));
        assert_eq!(m.procid.as_deref(), Some("4711"));
        assert_eq!(m.msgid.as_deref(), Some("INV17"));
        assert!(m.structured_data.is_empty());
        assert_eq!(m.message, "invoice run started");
    }

    #[test]
    fn rfc5424_nilvalues_everywhere_and_no_msg() {
        let m = p("<13>1 - - - - - -");
        assert_eq!((m.facility_name(), m.severity_name()), ("user", "notice"));
        assert_eq!(m.timestamp, None);
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name, None);
        assert_eq!(m.procid, None);
        assert_eq!(m.msgid, None);
        assert_eq!(m.message, "");
    }

    #[test]
    fn rfc5424_structured_data_with_escapes_and_several_elements() {
        let m = p(
            r#"<86>1 2024-02-29T23:59:60.5Z vault-2 sshd - AUTH [origin@32473 ip="10.1.2.3" note="say \"hi\" \\ then \]" odd="a\b"][meta sequenceId="42"] Accepted key"#,
        );
        assert_eq!((m.facility_name(), m.severity_name()), ("authpriv", "info"));
        assert_eq!(m.procid, None);
        assert_eq!(m.msgid.as_deref(), Some("AUTH"));
        assert_eq!(
            m.structured_data,
            vec![
                SdElement {
                    id: "origin@32473".into(),
                    params: vec![
                        ("ip".into(), "10.1.2.3".into()),
                        ("note".into(), r#"say "hi" \ then ]"#.into()),
                        ("odd".into(), r"a\b".into()),
                    ],
                },
                SdElement {
                    id: "meta".into(),
                    params: vec![("sequenceId".into(), "42".into())],
                },
            ]
        );
        assert_eq!(m.message, "Accepted key");
    }

    #[test]
    fn rfc5424_sd_without_msg_and_trailing_newline() {
        let m = p("<14>1 2024-01-01T00:00:00+01:00 h app 1 - [x@1 a=\"b\"]\n");
        assert_eq!(m.timestamp, Some(ns("2023-12-31T23:00:00Z")));
        assert_eq!(m.structured_data.len(), 1);
        assert_eq!(m.message, "");
        let m = p("<14>1 - h app - - - line\r\n");
        assert_eq!(m.message, "line");
    }

    #[test]
    fn rfc3164_rsyslog_forwarded_line() {
        let m = p(
            "<38>Jun 15 11:58:02 bastion sshd[20851]: Accepted publickey for deploy from 192.0.2.44 port 50122 ssh2",
        );
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!((m.facility_name(), m.severity_name()), ("auth", "info"));
        assert_eq!(m.timestamp, Some(ns("2024-06-15T11:58:02Z")));
        assert_eq!(m.hostname.as_deref(), Some("bastion"));
        assert_eq!(m.app_name.as_deref(), Some("sshd"));
        assert_eq!(m.procid.as_deref(), Some("20851"));
        assert_eq!(
            m.message,
            "Accepted publickey for deploy from 192.0.2.44 port 50122 ssh2"
        );
    }

    #[test]
    fn rfc3164_rsyslog_forward_format_with_rfc3339_timestamp() {
        let m = p("<30>2024-06-15T13:58:02.123456+02:00 node7 systemd[1]: Started cron.service.");
        assert_eq!(m.timestamp, Some(ns("2024-06-15T11:58:02.123456Z")));
        assert_eq!(m.hostname.as_deref(), Some("node7"));
        assert_eq!(m.app_name.as_deref(), Some("systemd"));
        assert_eq!(m.procid.as_deref(), Some("1"));
        assert_eq!(m.message, "Started cron.service.");
    }

    #[test]
    fn rfc3164_padded_day_no_pid_and_missing_hostname() {
        let m = p("<0>Jun  5 01:02:03 kernel: Oops");
        assert_eq!((m.facility_name(), m.severity_name()), ("kern", "emerg"));
        assert_eq!(m.timestamp, Some(ns("2024-06-05T01:02:03Z")));
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name.as_deref(), Some("kernel"));
        assert_eq!(m.procid, None);
        assert_eq!(m.message, "Oops");
        // No tag at all: the whole rest is MSG.
        let m = p("<191>Jun 5 01:02:03 web1 plain words here");
        assert_eq!((m.facility_name(), m.severity_name()), ("local7", "debug"));
        assert_eq!(m.hostname.as_deref(), Some("web1"));
        assert_eq!(m.app_name, None);
        assert_eq!(m.message, "plain words here");
    }

    #[test]
    fn rfc3164_year_rollover() {
        let c = ctx("2025-01-01T00:05:00Z");
        let m = parse(b"<13>Dec 31 23:59:58 h a: late", &c).unwrap();
        assert_eq!(m.timestamp, Some(ns("2024-12-31T23:59:58Z")));
        let c = ctx("2024-12-31T23:59:00Z");
        let m = parse(b"<13>Jan  1 00:00:30 h a: early", &c).unwrap();
        assert_eq!(m.timestamp, Some(ns("2025-01-01T00:00:30Z")));
        // 29 February only exists in leap years.
        let c = ctx("2025-03-01T00:00:00Z");
        let m = parse(b"<13>Feb 29 10:00:00 h a: leap", &c).unwrap();
        assert_eq!(m.timestamp, Some(ns("2024-02-29T10:00:00Z")));
    }

    #[test]
    fn rfc3164_fixed_zone() {
        let c = Context {
            zone: LegacyZone::parse("+08:00").unwrap(),
            ..ctx("2024-06-15T12:00:00Z")
        };
        let m = parse(b"<13>Jun 15 18:00:00 h a: x", &c).unwrap();
        assert_eq!(m.timestamp, Some(ns("2024-06-15T10:00:00Z")));
        assert!(LegacyZone::parse("Mars/Olympus").is_err());
        assert_eq!(LegacyZone::parse("local"), Ok(LegacyZone::Local));
    }

    #[test]
    fn bad_pri() {
        let x = e(b"Jun 15 11:58:02 host a: x");
        assert_eq!((x.reason, x.column), ("pri", 1));
        let x = e(b"<192>1 - - - - - -");
        assert_eq!((x.reason, x.column), ("pri", 2));
        assert!(x.message.contains("192"), "{x}");
        let x = e(b"<1a>1 - - - - - -");
        assert_eq!((x.reason, x.column), ("pri", 3));
        let x = e(b"<>1 - - - - - -");
        assert_eq!((x.reason, x.column), ("pri", 2));
        let x = e(b"<1234>1 - - - - - -");
        assert_eq!(x.reason, "pri");
        let x = e(b"<013>1 - - - - - -");
        assert_eq!(x.reason, "pri");
    }

    #[test]
    fn truncated_headers() {
        let x = e(b"<34>1 2003-10-11T22:14:15.003Z mymachine");
        assert_eq!((x.reason, x.column), ("header", 41));
        assert!(x.to_string().contains("HOSTNAME"), "{x}");
        assert!(x.to_string().starts_with("column 41: "), "{x}");
        let x = e(b"<34>1 - h a p m");
        assert_eq!(x.reason, "header");
        assert!(x.message.contains("MSGID"), "{x}");
        let x = e(b"<34>1 - h a p m ");
        assert!(x.message.contains("STRUCTURED-DATA"), "{x}");
        let x = e(b"<13>Jun 15 11:5");
        assert_eq!((x.reason, x.column), ("timestamp", 12));
        let x = e(b"<13>");
        assert_eq!((x.reason, x.column), ("header", 5));
    }

    #[test]
    fn other_errors_name_the_field_and_column() {
        let x = e(b"<13>2 - - - - - - x");
        assert_eq!((x.reason, x.column), ("version", 5));
        let x = e(b"<13>1 2024-13-01T00:00:00Z h a - - - x");
        assert_eq!((x.reason, x.column), ("timestamp", 7));
        let x = e(b"<13>1 2024-01-01T00:00:00 h a - - - x");
        assert_eq!(x.reason, "timestamp");
        let x = e(b"<13>1 - h a - - [id a=\"b] x");
        assert_eq!((x.reason, x.column), ("structured_data", 24));
        let x = e(b"<13>1 - h a - - [id a=b] x");
        assert_eq!((x.reason, x.column), ("structured_data", 23));
        let x = e(b"<13>1 - h a - - [id a=\"b\"]x");
        assert_eq!((x.reason, x.column), ("structured_data", 27));
        let x = e(b"<13>1 - h a - - x");
        assert_eq!((x.reason, x.column), ("structured_data", 17));
        let x = e(b"<13>Foo 15 11:58:02 h a: x");
        assert_eq!((x.reason, x.column), ("header", 5));
        let x = e(b"<13>Jun 32 11:58:02 h a: x");
        assert_eq!((x.reason, x.column), ("timestamp", 9));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let m = parse(b"<13>1 - h a - - - caf\xE9", &ctx("2024-06-15T12:00:00Z")).unwrap();
        assert_eq!(m.message, "caf\u{FFFD}");
    }
}
