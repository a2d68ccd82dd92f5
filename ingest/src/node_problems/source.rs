//! Kernel log readers: turn `/dev/kmsg` records or log-file lines into [`LogRecord`]s
//! (timestamp, message), as NPD's `kmsg` and `filelog` watchers do.
//!
//! - [`KmsgSource`] reads the `/dev/kmsg` record format
//!   (`priority,sequence,timestamp_us,flags[,…];message`), followed by optional dictionary
//!   lines that start with a space (` SUBSYSTEM=block`). The timestamp is microseconds
//!   since boot, turned into wall time with the boot time given (as go-kmsg-parser does).
//!   The message is trimmed of surrounding white space and empty messages are dropped,
//!   like NPD. One divergence: NPD (through go-kmsg-parser) keeps the dictionary lines in
//!   the message text, where they stop patterns ending in `.*` from matching; here they are
//!   kept apart in [`KmsgRecord::dictionary`].
//! - [`LineSource`] reads a file of lines: syslog lines (`Nov 25 10:00:00 host kernel:
//!   [12345.678901] message`, or with an RFC 3339 time as rsyslog's high-precision
//!   format writes), and dmesg lines (`[12345.678901] message`, relative to boot). For a
//!   kernel line the message is the text after the `[seconds]` stamp, which is what NPD's
//!   shipped `kernel-monitor-filelog.json` extracts with `kernel: \[.*\] (.*)`; a
//!   `filelog` configuration's own `pluginConfig.message` regex, when given, replaces
//!   that extraction (its last submatch is the message, as NPD).
//!
//! Lines that cannot be parsed are skipped and counted ([`LogSource::skipped`]), as NPD
//! logs and skips them. Both take any `BufRead`; following a growing file is the caller's.

use std::io::BufRead;
use std::sync::LazyLock;

use argus_schemas::Timestamp;
use chrono::{FixedOffset, NaiveDate, TimeZone};
use regex::Regex;

/// One kernel or system log message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub timestamp: Timestamp,
    pub message: String,
}

/// Something that yields log records in order.
pub trait LogSource {
    /// The next record, `Ok(None)` at the end of the input.
    fn next_record(&mut self) -> std::io::Result<Option<LogRecord>>;
    /// How many lines or records were skipped because they could not be parsed.
    fn skipped(&self) -> u64;
}

/// One `/dev/kmsg` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsgRecord {
    /// Syslog priority (the low 3 bits of the first field).
    pub priority: u8,
    /// Syslog facility (the rest of the first field).
    pub facility: u32,
    pub sequence: u64,
    /// Microseconds since boot.
    pub timestamp_us: u64,
    /// `-`, `c` (continuation fragment) or `+`.
    pub flags: String,
    /// The message, un-escaped as the kernel wrote it (`\x0a` stays as is).
    pub message: String,
    /// The dictionary lines after the message, `KEY=value` without the leading space.
    pub dictionary: Vec<String>,
}

/// Parses one `/dev/kmsg` header+message line (without its dictionary lines).
pub fn parse_kmsg_line(line: &str) -> Option<KmsgRecord> {
    let (header, message) = line.split_once(';')?;
    let mut fields = header.split(',');
    let prio: u32 = fields.next()?.trim().parse().ok()?;
    let sequence: u64 = fields.next()?.trim().parse().ok()?;
    let timestamp_us: u64 = fields.next()?.trim().parse().ok()?;
    let flags = fields.next().unwrap_or("-").to_string();
    Some(KmsgRecord {
        priority: (prio & 7) as u8,
        facility: prio >> 3,
        sequence,
        timestamp_us,
        flags,
        message: message.trim_end_matches(['\n', '\r']).to_string(),
        dictionary: Vec::new(),
    })
}

/// Reads `/dev/kmsg`-formatted records from any `BufRead`.
pub struct KmsgSource<R> {
    reader: R,
    boot_time: Timestamp,
    pending: Option<KmsgRecord>,
    line: String,
    skipped: u64,
    done: bool,
}

impl<R: BufRead> KmsgSource<R> {
    /// `boot_time` turns the records' since-boot microseconds into wall time.
    pub fn new(reader: R, boot_time: Timestamp) -> Self {
        KmsgSource {
            reader,
            boot_time,
            pending: None,
            line: String::new(),
            skipped: 0,
            done: false,
        }
    }

    /// The next full record (header, message and dictionary lines).
    pub fn next_kmsg(&mut self) -> std::io::Result<Option<KmsgRecord>> {
        loop {
            if self.done {
                return Ok(self.pending.take());
            }
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                self.done = true;
                continue;
            }
            let line = self.line.trim_end_matches(['\n', '\r']);
            if let Some(dict) = line.strip_prefix(' ') {
                match self.pending.as_mut() {
                    Some(p) => p.dictionary.push(dict.to_string()),
                    None => self.skipped += 1,
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            match parse_kmsg_line(line) {
                Some(rec) => {
                    if let Some(prev) = self.pending.replace(rec) {
                        return Ok(Some(prev));
                    }
                }
                None => self.skipped += 1,
            }
        }
    }
}

impl<R: BufRead> LogSource for KmsgSource<R> {
    fn next_record(&mut self) -> std::io::Result<Option<LogRecord>> {
        while let Some(rec) = self.next_kmsg()? {
            let message = rec.message.trim();
            if message.is_empty() {
                continue;
            }
            let offset = i64::try_from(rec.timestamp_us)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000);
            return Ok(Some(LogRecord {
                timestamp: Timestamp(self.boot_time.0.saturating_add(offset)),
                message: message.to_string(),
            }));
        }
        Ok(None)
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// What a [`LineSource`] needs to turn the times of a log file into wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineClock {
    /// For dmesg-style `[seconds.micros]` stamps, which count from boot.
    pub boot_time: Timestamp,
    /// Syslog's `Nov 25 10:00:00` has no year: this one is used (NPD uses the current one).
    pub year: i32,
    /// …and no zone: this offset is used (NPD uses the local zone).
    pub utc_offset: FixedOffset,
}

impl LineClock {
    /// The current year and local zone offset, as NPD reads syslog times.
    pub fn local(boot_time: Timestamp) -> Self {
        use chrono::Datelike;
        let now = chrono::Local::now();
        LineClock {
            boot_time,
            year: now.year(),
            utc_offset: *now.offset(),
        }
    }
}

static SYSLOG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))? \S+ (?P<ident>[^:\[\s]+)(?:\[\d+\])?: ?(?P<msg>.*)$",
    )
    .expect("static regex compiles")
});

static RFC3339_SYSLOG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<ts>\d{4}-\d{2}-\d{2}T\S+) \S+ (?P<ident>[^:\[\s]+)(?:\[\d+\])?: ?(?P<msg>.*)$",
    )
    .expect("static regex compiles")
});

static DMESG_STAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[\s*(?P<sec>\d+)\.(?P<frac>\d{1,9})\] ?(?P<msg>.*)$")
        .expect("static regex compiles")
});

/// Reads a log file of syslog or dmesg lines from any `BufRead`.
pub struct LineSource<R> {
    reader: R,
    clock: LineClock,
    message_regex: Option<Regex>,
    line: String,
    skipped: u64,
}

impl<R: BufRead> LineSource<R> {
    pub fn new(reader: R, clock: LineClock) -> Self {
        LineSource {
            reader,
            clock,
            message_regex: None,
            line: String::new(),
            skipped: 0,
        }
    }

    /// Extracts messages with a `filelog` configuration's `pluginConfig.message` regex
    /// (last submatch, as NPD) instead of the built-in kernel-stamp stripping.
    pub fn with_message_regex(mut self, re: Regex) -> Self {
        self.message_regex = Some(re);
        self
    }

    /// Parses one line; `None` when it is neither a syslog nor a dmesg line.
    pub fn parse_line(&self, line: &str) -> Option<LogRecord> {
        let (timestamp, rest) = if let Some(c) = SYSLOG.captures(line) {
            let month = month_number(c.name("mon")?.as_str())?;
            let day: u32 = c.name("day")?.as_str().parse().ok()?;
            let (h, m, s): (u32, u32, u32) = (
                c.name("h")?.as_str().parse().ok()?,
                c.name("m")?.as_str().parse().ok()?,
                c.name("s")?.as_str().parse().ok()?,
            );
            let nanos = c.name("frac").map(|f| frac_nanos(f.as_str())).unwrap_or(0);
            let naive = NaiveDate::from_ymd_opt(self.clock.year, month, day)?
                .and_hms_nano_opt(h, m, s, nanos)?;
            let t = self
                .clock
                .utc_offset
                .from_local_datetime(&naive)
                .single()?
                .timestamp_nanos_opt()?;
            (Timestamp(t), c.name("msg")?.as_str())
        } else if let Some(c) = RFC3339_SYSLOG.captures(line) {
            let t = chrono::DateTime::parse_from_rfc3339(c.name("ts")?.as_str())
                .ok()?
                .timestamp_nanos_opt()?;
            (Timestamp(t), c.name("msg")?.as_str())
        } else if let Some(c) = DMESG_STAMP.captures(line) {
            let sec: i64 = c.name("sec")?.as_str().parse().ok()?;
            let nanos = i64::from(frac_nanos(c.name("frac")?.as_str()));
            let since_boot = sec.checked_mul(1_000_000_000)?.checked_add(nanos)?;
            (
                Timestamp(self.clock.boot_time.0.checked_add(since_boot)?),
                c.name("msg")?.as_str(),
            )
        } else {
            return None;
        };
        let message = match &self.message_regex {
            Some(re) => {
                let caps = re.captures(line)?;
                caps.iter()
                    .flatten()
                    .last()
                    .map(|m| m.as_str())
                    .unwrap_or("")
                    .to_string()
            }
            None => strip_kernel_stamp(rest).trim().to_string(),
        };
        Some(LogRecord { timestamp, message })
    }
}

impl<R: BufRead> LogSource for LineSource<R> {
    fn next_record(&mut self) -> std::io::Result<Option<LogRecord>> {
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Ok(None);
            }
            let line = self.line.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                continue;
            }
            match self.parse_line(line) {
                Some(rec) => return Ok(Some(rec)),
                None => self.skipped += 1,
            }
        }
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// `[12345.678901] text` → `text`; anything else unchanged.
fn strip_kernel_stamp(s: &str) -> &str {
    match DMESG_STAMP.captures(s).and_then(|c| c.name("msg")) {
        Some(m) => m.as_str(),
        None => s,
    }
}

fn frac_nanos(frac: &str) -> u32 {
    let digits: String = frac.chars().take(9).collect();
    let scale = 10u32.pow(9u32.saturating_sub(digits.len() as u32));
    digits.parse::<u32>().unwrap_or(0).saturating_mul(scale)
}

fn month_number(m: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|x| *x == m).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmsg_header() {
        let r = parse_kmsg_line("6,339,5140900,-;NET: Registered protocol family 10").unwrap();
        assert_eq!((r.priority, r.facility, r.sequence), (6, 0, 339));
        assert_eq!(r.timestamp_us, 5_140_900);
        assert_eq!(r.flags, "-");
        assert_eq!(r.message, "NET: Registered protocol family 10");
        // Newer kernels add fields after the flags (caller id).
        let r = parse_kmsg_line("30,1200,99,-,caller=T1;systemd[1]: Started").unwrap();
        assert_eq!((r.priority, r.facility), (6, 3));
        assert_eq!(r.message, "systemd[1]: Started");
        assert!(parse_kmsg_line("no header here").is_none());
        assert!(parse_kmsg_line("x,1,2,-;msg").is_none());
    }

    #[test]
    fn fractions() {
        assert_eq!(frac_nanos("5"), 500_000_000);
        assert_eq!(frac_nanos("678901"), 678_901_000);
        assert_eq!(frac_nanos("123456789"), 123_456_789);
    }
}
