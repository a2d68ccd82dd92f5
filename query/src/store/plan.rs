//! Helpers both stores share: the day a timestamp falls in, splitting a write into
//! per-day runs that keep resume offsets exact, the deterministic `seq` of a row, and
//! which LogQL line filters a store can apply exactly (pushdown).
//!
//! Splitting ([`split_writes`]): rows of one source partition must reach the store in
//! offset order, and every store write must hold, per source partition, one contiguous
//! run that follows the previous write's run. Then a crash between two writes leaves a
//! stored prefix of every partition, and "highest stored offset" is exact: every
//! record at or below it is stored, none above it is.

use std::collections::HashMap;

use crate::logql::ast::{FilterValue, LineFilter, LineFilterOp};
use crate::store::{SourcePos, WriteRow};

/// Nanoseconds per day.
pub const DAY_NS: i64 = 86_400_000_000_000;

/// The day number of a timestamp, rounded toward zero like ClickHouse's `intDiv`
/// (the ClickHouse store partitions by `intDiv(ts, DAY_NS)`).
pub fn day_of(ts: i64) -> i64 {
    ts / DAY_NS
}

/// A deterministic `seq` for a row from its source position: the offset in the high
/// 48 bits (so it increases with ingest order within a partition), then 4 bits of a
/// hash of the topic and 12 bits of the partition. Unique within a stream as long as
/// offsets stay below 2^47 and partitions below 4096.
pub fn seq_of(src: &SourcePos) -> u64 {
    let mut h: u32 = 0x811c_9dc5;
    for b in src.topic.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((src.offset as u64) << 16) | (u64::from(h & 0xF) << 12) | (src.partition as u64 & 0xFFF)
}

/// Splits rows into writes that each fall into one day and hold at most `max_rows`
/// rows, keeping, per source (topic, partition), the given order: writes are returned
/// in the order they must be made, and each holds one contiguous run per source
/// partition (see the module docs). Runs of different partitions on the same day
/// share a write.
pub fn split_writes(rows: Vec<WriteRow>, max_rows: usize) -> Vec<Vec<WriteRow>> {
    let max_rows = max_rows.max(1);
    // Per source partition, in first-seen order: its runs of equal day.
    let mut order: Vec<(String, i32)> = Vec::new();
    let mut runs: HashMap<(String, i32), std::collections::VecDeque<Vec<WriteRow>>> =
        HashMap::new();
    for r in rows {
        let key = (r.source.topic.clone(), r.source.partition);
        let q = runs.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Default::default()
        });
        match q.back_mut() {
            Some(run) if day_of(run[0].ts) == day_of(r.ts) && run.len() < max_rows => run.push(r),
            _ => q.push_back(vec![r]),
        }
    }
    let mut out = Vec::new();
    // The day of the first pending run of the first partition with runs left.
    while let Some(day) = order
        .iter()
        .find_map(|k| runs[k].front().map(|run| day_of(run[0].ts)))
    {
        let mut write: Vec<WriteRow> = Vec::new();
        for k in &order {
            let q = runs.get_mut(k).expect("key present");
            let fits = q
                .front()
                .is_some_and(|run| day_of(run[0].ts) == day && write.len() + run.len() <= max_rows);
            if fits {
                write.extend(q.pop_front().expect("front exists"));
            }
        }
        out.push(write);
    }
    out
}

/// A line filter a store can apply exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Simple {
    /// Keep lines containing at least one of these substrings (`negate`: none of them).
    Substrings { negate: bool, values: Vec<String> },
    /// Keep lines matching at least one of these regexes (`negate`: none). Every
    /// pattern passed [`re2_equivalent`]: RE2 (ClickHouse `match`) and Rust's regex
    /// agree on it.
    Regexes { negate: bool, values: Vec<String> },
}

/// What a store can do with a filter: `None` when it is not a plain substring or an
/// RE2-equivalent regex filter (IP filters, patterns, regexes with `.`, `\d`, flags …).
pub fn classify(f: &LineFilter) -> Option<Simple> {
    let lits: Option<Vec<&str>> = f
        .values
        .iter()
        .map(|v| match v {
            FilterValue::Literal(s) => Some(s.as_str()),
            FilterValue::Ip(_) => None,
        })
        .collect();
    let lits = lits?;
    match f.op {
        LineFilterOp::Contains | LineFilterOp::NotContains => Some(Simple::Substrings {
            negate: f.op == LineFilterOp::NotContains,
            values: lits.iter().map(|s| s.to_string()).collect(),
        }),
        LineFilterOp::Regex | LineFilterOp::NotRegex => {
            let negate = f.op == LineFilterOp::NotRegex;
            let mut subs = Vec::new();
            for re in &lits {
                match literal_alternatives(re) {
                    Some(alts) => subs.extend(alts),
                    None => {
                        return lits
                            .iter()
                            .all(|re| re2_equivalent(re))
                            .then(|| Simple::Regexes {
                                negate,
                                values: lits.iter().map(|s| s.to_string()).collect(),
                            });
                    }
                }
            }
            Some(Simple::Substrings {
                negate,
                values: subs,
            })
        }
        LineFilterOp::Pattern | LineFilterOp::NotPattern => None,
    }
}

const META: &str = "\\.+*?()|[]{}^$";

/// When a regex is an alternation of plain literals (`error|warn`, `a\.b`), the
/// literals: an unanchored match is then "contains one of them".
pub fn literal_alternatives(re: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut it = re.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                let e = it.next()?;
                if META.contains(e) {
                    out.last_mut().expect("non-empty").push(e);
                } else {
                    return None;
                }
            }
            '|' => out.push(String::new()),
            c if META.contains(c) => return None,
            c => out.last_mut().expect("non-empty").push(c),
        }
    }
    Some(out)
}

/// Whether RE2 (as ClickHouse's `match` runs it: bytes, `.` matching newline) and
/// Rust's `regex` crate give the same unanchored match for `re`. Deliberately narrow:
/// ASCII only; literals, escaped metacharacters, non-negated ASCII classes without
/// escapes, groups `(…)`/`(?:…)`, alternation, `^`/`$`, and quantifiers (`{n,m}` up to
/// 100) on an atom. No `.`, no `\d\w\s\b`, no flags.
pub fn re2_equivalent(re: &str) -> bool {
    let b = re.as_bytes();
    if !b.iter().all(|c| (0x20..0x7f).contains(c)) {
        return false;
    }
    let mut i = 0;
    let mut depth = 0usize;
    // Whether the previous token can take a quantifier, and whether it was one.
    let mut atom = false;
    let mut quantified = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => {
                let Some(&e) = b.get(i + 1) else { return false };
                if !META.as_bytes().contains(&e) {
                    return false;
                }
                i += 2;
                atom = true;
                quantified = false;
                continue;
            }
            b'.' => return false,
            b'(' => {
                if b.get(i + 1) == Some(&b'?') {
                    if b.get(i + 2) != Some(&b':') {
                        return false;
                    }
                    i += 2;
                }
                depth += 1;
                atom = false;
                quantified = false;
            }
            b')' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                atom = true;
                quantified = false;
            }
            b'|' => {
                atom = false;
                quantified = false;
            }
            b'^' | b'$' => {
                atom = false;
                quantified = false;
            }
            b'[' => {
                let mut j = i + 1;
                if matches!(b.get(j), Some(b'^') | Some(b']') | None) {
                    return false;
                }
                while j < b.len() && b[j] != b']' {
                    if b[j] == b'\\' || b[j] == b'[' {
                        return false;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return false;
                }
                i = j + 1;
                atom = true;
                quantified = false;
                continue;
            }
            b'*' | b'+' | b'?' => {
                if quantified && c == b'?' {
                    // lazy modifier
                    quantified = false;
                    atom = false;
                } else if !atom {
                    return false;
                } else {
                    quantified = true;
                    atom = false;
                }
            }
            b'{' => {
                if !atom {
                    return false;
                }
                let Some(end) = b[i..].iter().position(|&x| x == b'}') else {
                    return false;
                };
                let body = &re[i + 1..i + end];
                let ok = match body.split_once(',') {
                    None => small(body),
                    Some((n, "")) => small(n),
                    Some((n, m)) => {
                        small(n) && small(m) && n.parse::<u32>().ok() <= m.parse::<u32>().ok()
                    }
                };
                if !ok {
                    return false;
                }
                i += end + 1;
                quantified = true;
                atom = false;
                continue;
            }
            b'}' | b']' => return false,
            _ => {
                atom = true;
                quantified = false;
            }
        }
        i += 1;
    }
    depth == 0
}

fn small(n: &str) -> bool {
    !n.is_empty()
        && n.bytes().all(|c| c.is_ascii_digit())
        && n.parse::<u32>().is_ok_and(|v| v <= 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_schemas::Labels;

    fn row(partition: i32, offset: i64, ts: i64) -> WriteRow {
        WriteRow {
            tenant: "t".into(),
            labels: Labels::from_pairs([("a", "b")]),
            ts,
            line: format!("{partition}/{offset}"),
            metadata: Labels::new(),
            source: SourcePos {
                topic: "x".into(),
                partition,
                offset,
            },
        }
    }

    #[test]
    fn split_keeps_partition_prefixes_and_days() {
        let d = DAY_NS;
        let rows = vec![
            row(0, 1, 10),
            row(1, 1, 20),
            row(0, 2, d + 1),
            row(1, 2, 30),
            row(0, 3, 40),
            row(1, 3, d + 5),
        ];
        let w = split_writes(rows, 100);
        let got: Vec<Vec<String>> = w
            .iter()
            .map(|w| w.iter().map(|r| r.line.clone()).collect())
            .collect();
        assert_eq!(
            got,
            vec![vec!["0/1", "1/1", "1/2"], vec!["0/2", "1/3"], vec!["0/3"],]
        );
        for w in &w {
            assert!(w.iter().all(|r| day_of(r.ts) == day_of(w[0].ts)));
        }
    }

    #[test]
    fn split_caps_rows() {
        let rows: Vec<WriteRow> = (0..10).map(|o| row(0, o, o)).collect();
        let w = split_writes(rows, 3);
        assert_eq!(w.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
        assert_eq!(w[1][0].source.offset, 3);
    }

    #[test]
    fn literal_and_re2_classification() {
        assert_eq!(
            literal_alternatives(r"error|warn\.x"),
            Some(vec!["error".into(), "warn.x".into()])
        );
        assert_eq!(literal_alternatives("a.b"), None);
        assert_eq!(literal_alternatives(r"\d"), None);
        assert!(re2_equivalent("^err(or)?[0-9]{2,3}$"));
        assert!(re2_equivalent("a+?b"));
        assert!(!re2_equivalent("a.b"));
        assert!(!re2_equivalent(r"\d+"));
        assert!(!re2_equivalent("(?i)err"));
        assert!(!re2_equivalent("[^a]"));
        assert!(!re2_equivalent("é+"));
        assert!(!re2_equivalent("a**"));
        assert!(!re2_equivalent("a{1000}"));
        assert!(!re2_equivalent("(a"));
    }

    #[test]
    fn seq_orders_by_offset() {
        let a = SourcePos {
            topic: "t".into(),
            partition: 5,
            offset: 7,
        };
        let b = SourcePos {
            offset: 8,
            ..a.clone()
        };
        assert!(seq_of(&a) < seq_of(&b));
        assert_ne!(
            seq_of(&a),
            seq_of(&SourcePos {
                partition: 6,
                ..a.clone()
            })
        );
    }
}
