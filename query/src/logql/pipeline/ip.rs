//! `ip("…")` matching for line and label filters: a single address, a CIDR prefix or
//! a range `a-b`, matched against every IPv4/IPv6 address found in the text the way
//! Loki scans for them.

use std::net::IpAddr;

use crate::error::{QueryError, Result};

#[derive(Debug, Clone, PartialEq)]
enum Pattern {
    Addr(IpAddr),
    Prefix(IpAddr, u8),
    Range(IpAddr, IpAddr),
}

/// A compiled `ip("…")` pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct IpMatcher {
    pattern: Pattern,
}

fn parse_addr(s: &str) -> Option<IpAddr> {
    // Go's netip rejects zones here too (our charset excludes '%').
    s.parse::<IpAddr>().ok()
}

impl IpMatcher {
    pub fn new(pattern: &str) -> Result<Self> {
        let p = if let Some(a) = parse_addr(pattern) {
            Pattern::Addr(a)
        } else if let Some(p) = parse_prefix(pattern) {
            p
        } else if let Some(r) = parse_range(pattern) {
            r
        } else {
            return Err(QueryError::Invalid(format!(
                "ip: invalid pattern: {pattern:?}"
            )));
        };
        Ok(IpMatcher { pattern: p })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match &self.pattern {
            Pattern::Addr(a) => *a == ip,
            Pattern::Range(from, to) => same_family(*from, ip) && *from <= ip && ip <= *to,
            Pattern::Prefix(net, bits) => match (net, ip) {
                (IpAddr::V4(n), IpAddr::V4(i)) => {
                    let mask = if *bits == 0 {
                        0
                    } else {
                        u32::MAX << (32 - bits)
                    };
                    (u32::from(*n) & mask) == (u32::from(i) & mask)
                }
                (IpAddr::V6(n), IpAddr::V6(i)) => {
                    let mask = if *bits == 0 {
                        0
                    } else {
                        u128::MAX << (128 - bits)
                    };
                    (u128::from(*n) & mask) == (u128::from(i) & mask)
                }
                _ => false,
            },
        }
    }

    /// Whether any address found in `text` matches (Loki's scan: IPv4 candidates
    /// start with a digit and have a dot within the next three bytes; IPv6
    /// candidates are hex digits followed by a colon, or `::` and a hex digit).
    pub fn matches_text(&self, text: &str) -> bool {
        let line = text.as_bytes();
        let n = line.len();
        if n == 0 {
            return false;
        }
        let at = |i: usize| if i < n { line[i] } else { 0 };
        let mut i = 0usize;
        while i < n {
            if i + 3 < n
                && line[i].is_ascii_digit()
                && (line[i + 1] == b'.' || line[i + 2] == b'.' || line[i + 3] == b'.')
            {
                let (ok, len) = self.try_at(line, i, IPV4_CHARS);
                if ok {
                    return true;
                }
                i += len + 1;
                continue;
            }
            let p = [at(i), at(i + 1), at(i + 2), at(i + 3), at(i + 4)];
            if ipv6_hint(p) {
                let (ok, len) = self.try_at(line, i, IPV6_CHARS);
                if ok {
                    return true;
                }
                i += len + 1;
                continue;
            }
            i += 1;
        }
        false
    }

    fn try_at(&self, line: &[u8], start: usize, charset: &[u8]) -> (bool, usize) {
        let len = line[start..]
            .iter()
            .take_while(|c| charset.contains(c))
            .count();
        // The span is ASCII, so it is valid UTF-8.
        let s = std::str::from_utf8(&line[start..start + len]).unwrap_or("");
        if let Some(ip) = parse_addr(s)
            && self.contains(ip)
        {
            return (true, 0);
        }
        (false, len)
    }
}

const IPV4_CHARS: &[u8] = b"0123456789.";
const IPV6_CHARS: &[u8] = b"0123456789abcdefABCDEF:.";

fn ipv6_hint(p: [u8; 5]) -> bool {
    let h = |c: u8| c.is_ascii_hexdigit();
    (p[0] == b':' && p[1] == b':' && h(p[2]))
        || (h(p[0]) && p[1] == b':')
        || (h(p[0]) && h(p[1]) && p[2] == b':')
        || (h(p[0]) && h(p[1]) && h(p[2]) && p[3] == b':')
        || (h(p[0]) && h(p[1]) && h(p[2]) && h(p[3]) && p[4] == b':')
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn parse_prefix(s: &str) -> Option<Pattern> {
    let (a, bits) = s.split_once('/')?;
    let addr = parse_addr(a)?;
    if bits.is_empty()
        || !bits.bytes().all(|c| c.is_ascii_digit())
        || (bits.len() > 1 && bits.starts_with('0'))
    {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Pattern::Prefix(addr, bits))
}

fn parse_range(s: &str) -> Option<Pattern> {
    let (a, b) = s.split_once('-')?;
    let (from, to) = (parse_addr(a)?, parse_addr(b)?);
    (same_family(from, to) && from <= to).then_some(Pattern::Range(from, to))
}
