//! ClickHouse SQL for pushed-down pipelines ([`super::pushdown::AggPlan`]): the
//! parser's labels extracted on the server, label filters and unwrapped values as SQL,
//! and the "unsafe" predicate marking rows whose result the SQL cannot prove equal to
//! the engine's. Works on ClickHouse 18.16 and the current engine (functions used:
//! `match`, `extract`, `visitParamExtractRaw`, `toFloat64OrZero`, `countIf`, …).
//!
//! - `json`: a row is safe when its line is a flat, compact JSON object whose keys are
//!   label identifiers and whose values are strings without escapes (and without
//!   U+FFFD, which the engine turns into a space), numbers, booleans or null
//!   ([`FLAT_JSON`]). Then the engine's parser extracts every key unchanged, keeps the
//!   first of duplicate keys, the raw text of numbers, and skips nulls; and
//!   `visitParamExtractRaw(line, 'k')` finds the same first `"k":` and its raw value.
//! - `pattern`: on modern servers a chain of `position(line, literal, from)` calls
//!   follows Loki's matcher byte for byte; on 18.16 (no `from` argument) captures
//!   are extracted with one RE2 regex each, literal-anchored and
//!   lazy, which finds the same first occurrence of every literal as Loki's matcher
//!   (a capture whose next literal is missing takes the rest of the line, later ones
//!   are absent). The capture's preceding literal is captured too, so an empty match
//!   (absent) and an empty value (present, `""`) differ.
//! - numbers: a value is compared or summed on the server only when it is plain
//!   decimal text with at most 15 digits (integers on 18.16), which every float parser
//!   rounds the same; another value would fail or might differ, so the row is unsafe.
//! - structured metadata on a row makes it unsafe (it joins the labels).

use super::clickhouse::{filter_sql, quote};
use super::pushdown::{AggPlan, PushParser};
use crate::logql::ast::{CmpOp, LabelFilterExpr, MatchOp};
use crate::logql::matcher::Compiled;
use crate::logql::pipeline::ERROR_LABEL;
use crate::store::plan::re2_equivalent;

/// A flat, compact JSON object with identifier keys and escape-free scalar values.
pub(crate) const FLAT_JSON: &str = concat!(
    r#"^\{(?:"[A-Za-z_][A-Za-z0-9_]*":(?:"[^"\\\x00-\x1f\x{FFFD}]*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null)"#,
    r#"(?:,"[A-Za-z_][A-Za-z0-9_]*":(?:"[^"\\\x00-\x1f\x{FFFD}]*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null))*)?\}$"#
);

/// Plain decimal text every parser reads the same.
fn safe_number(v: &str, modern: bool) -> String {
    if modern {
        format!(
            "(length({v}) <= 16 AND match({v}, {}))",
            quote(r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$")
        )
    } else {
        format!("match({v}, {})", quote(r"^-?[0-9]{1,15}$"))
    }
}

/// RE2 source matching the literal `s`.
fn re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && !c.is_ascii_alphanumeric() && c != ' ' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Capture(String),
    Literal(String),
}

/// Loki's pattern syntax: `<name>` captures (identifiers), the rest literal.
fn pattern_nodes(p: &str) -> Vec<Node> {
    let mut nodes = Vec::new();
    let b = p.as_bytes();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' {
            let rest = &b[i + 1..];
            let ok_first = rest
                .first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_');
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if ok_first && rest.get(n) == Some(&b'>') {
                if !lit.is_empty() {
                    nodes.push(Node::Literal(std::mem::take(&mut lit)));
                }
                nodes.push(Node::Capture(p[i + 1..i + 1 + n].to_string()));
                i += n + 2;
                continue;
            }
        }
        let c = p[i..].chars().next().expect("in bounds");
        lit.push(c);
        i += c.len_utf8();
    }
    if !lit.is_empty() {
        nodes.push(Node::Literal(lit));
    }
    nodes
}

/// Past any line: a capture that starts here is absent (`position` from beyond the
/// end finds nothing).
const BEYOND: u64 = 1 << 40;

/// Loki's pattern matcher spelled with `position(line, literal, from)` (modern
/// servers; byte offsets, 1-based): the start of the capture at node `at` (at or
/// past [`BEYOND`] when the match stopped before it) and where the literal after it
/// starts (0: not found). Each step refers to the previous one once (through a
/// lambda), so the expression grows linearly (`x + n + intDiv(B, x*B + 1)` is
/// `x + n`, or `B + n` when `x` is 0). Lines longer than 2^20 bytes are refused by the caller.
fn pattern_positions(nodes: &[Node], at: usize) -> (String, Option<String>) {
    let mut i = 0;
    let mut a = match nodes.first() {
        Some(Node::Literal(l)) => {
            i = 1;
            format!(
                "if(startsWith(line, {}), {}, {BEYOND})",
                quote(l),
                l.len() + 1
            )
        }
        _ => format!("if(line != '', 1, {BEYOND})"),
    };
    loop {
        let next = match nodes.get(i + 1) {
            Some(Node::Literal(m)) => Some(m),
            _ => None,
        };
        if i == at {
            let f = next.map(|m| format!("position(line, {}, {a})", quote(m)));
            return (a, f);
        }
        let Some(m) = next else {
            return (BEYOND.to_string(), None);
        };
        let f = format!("position(line, {}, {a})", quote(m));
        a = format!(
            "arrayMap(x -> x + {} + intDiv({BEYOND}, x * {BEYOND} + 1), [{f}])[1]",
            m.len()
        );
        i += 2;
    }
}

/// `(has, value)` of the capture at node `at` on modern servers.
fn pattern_by_position(nodes: &[Node], at: usize) -> (String, String) {
    if matches!(nodes.get(at + 1), Some(Node::Capture(_))) {
        return ("0".into(), "''".into());
    }
    let (a, f) = pattern_positions(nodes, at);
    let has = format!("({a} < {BEYOND})");
    let value = match f {
        None => format!("substring(line, {a})"),
        Some(f) => format!("if({f} = 0, substring(line, {a}), substring(line, {a}, {f} - {a}))"),
    };
    (has, value)
}

/// `(has, value)` SQL of one label a parser may extract.
fn extracted(parser: &PushParser, name: &str, modern: bool) -> (String, String) {
    match parser {
        PushParser::Lines => ("0".into(), "''".into()),
        PushParser::Json => {
            let raw = format!("visitParamExtractRaw(line, {})", quote(name));
            (
                format!("({raw} != '' AND {raw} != 'null')"),
                format!(
                    "multiIf({raw} = 'null', '', startsWith({raw}, '\"'), substring({raw}, 2, length({raw}) - 2), {raw})"
                ),
            )
        }
        PushParser::Pattern(p) => {
            let nodes = pattern_nodes(p);
            let Some(at) = nodes
                .iter()
                .position(|n| matches!(n, Node::Capture(c) if c == name))
            else {
                return ("0".into(), "''".into());
            };
            if modern {
                return pattern_by_position(&nodes, at);
            }
            let mut re = String::from("(?s)^");
            for n in &nodes[..at.saturating_sub(1)] {
                match n {
                    Node::Literal(l) => re.push_str(&re_escape(l)),
                    Node::Capture(_) => re.push_str(".*?"),
                }
            }
            let lead = match at.checked_sub(1).map(|i| &nodes[i]) {
                Some(Node::Literal(l)) => l.as_str(),
                _ => "",
            };
            re.push('(');
            re.push_str(&re_escape(lead));
            match nodes.get(at + 1) {
                None => re.push_str(".*)"),
                Some(Node::Literal(next)) => {
                    re.push_str(".*?)(?:");
                    re.push_str(&re_escape(next));
                    re.push_str("|$)");
                }
                // consecutive captures are refused by the parser; never pushed
                Some(Node::Capture(_)) => return ("0".into(), "''".into()),
            }
            let x = format!("extract(line, {})", quote(&re));
            if lead.is_empty() {
                ("(line != '')".to_string(), x)
            } else {
                (
                    format!("({x} != '')"),
                    format!("substring({x}, {})", lead.len() + 1),
                )
            }
        }
    }
}

/// `(pass, unsafe)` of a label filter.
fn label_filter_sql(
    e: &LabelFilterExpr,
    parser: &PushParser,
    modern: bool,
) -> Option<(String, String)> {
    Some(match e {
        LabelFilterExpr::And(a, b) | LabelFilterExpr::Or(a, b) => {
            let (pa, ua) = label_filter_sql(a, parser, modern)?;
            let (pb, ub) = label_filter_sql(b, parser, modern)?;
            let op = if matches!(e, LabelFilterExpr::And(..)) {
                "AND"
            } else {
                "OR"
            };
            (format!("({pa} {op} {pb})"), format!("({ua} OR {ub})"))
        }
        LabelFilterExpr::String(m) => {
            if m.name == ERROR_LABEL {
                let c = Compiled::new(m).ok()?;
                let v = if c.matches_value("") { "1" } else { "0" };
                return Some((v.into(), "0".into()));
            }
            let (_, v) = extracted(parser, &m.name, modern);
            let pass = match m.op {
                MatchOp::Eq => format!("({v} = {})", quote(&m.value)),
                MatchOp::Neq => format!("({v} != {})", quote(&m.value)),
                MatchOp::Re | MatchOp::Nre => {
                    if !re2_equivalent(&m.value) {
                        return None;
                    }
                    let neg = if m.op == MatchOp::Nre { "NOT " } else { "" };
                    format!(
                        "({neg}match({v}, {}))",
                        quote(&format!("^(?:{})$", m.value))
                    )
                }
            };
            (pass, "0".into())
        }
        LabelFilterExpr::Number { name, op, value } => {
            if !value.is_finite() {
                return None;
            }
            let (h, v) = extracted(parser, name, modern);
            let safe = safe_number(&v, modern);
            let op = match op {
                CmpOp::Eq => "=",
                CmpOp::Neq => "!=",
                CmpOp::Gt => ">",
                CmpOp::Gte => ">=",
                CmpOp::Lt => "<",
                CmpOp::Lte => "<=",
            };
            (
                format!("({h} AND {safe} AND toFloat64OrZero({v}) {op} {value:?})"),
                format!("({h} AND NOT {safe})"),
            )
        }
        _ => return None,
    })
}

/// The aggregation query over `fps` (a comma-separated list) for buckets of `width`
/// from `origin` up to `hi`; `None` when a part has no SQL form. Columns:
/// fingerprint, bucket, keys, count, bytes, sum, min, max, bad (unsafe rows).
pub(crate) fn aggregate_sql(
    plan: &AggPlan,
    modern: bool,
    fps: &str,
    origin: i64,
    width: i64,
    hi: i64,
) -> Option<String> {
    let (lines, exact) = filter_sql(&plan.filters, modern);
    if !exact {
        return None;
    }
    let safe_line = match plan.parser {
        PushParser::Json => format!("match(line, {})", quote(FLAT_JSON)),
        PushParser::Pattern(_) | PushParser::Lines => "1".to_string(),
    };
    let (pass, unsafe_filter) = match &plan.label_filter {
        Some(e) => label_filter_sql(e, &plan.parser, modern)?,
        None => ("1".into(), "0".into()),
    };
    let (present, value, unsafe_unwrap) = match &plan.unwrap {
        Some(u) => {
            let (h, v) = extracted(&plan.parser, u, modern);
            let present = format!("({h} AND {v} != '')");
            let safe = safe_number(&v, modern);
            (
                present.clone(),
                format!("toFloat64OrZero({v})"),
                format!("({present} AND NOT {safe})"),
            )
        }
        None => ("1".into(), "toFloat64(0)".into(), "0".into()),
    };
    let keys: Vec<String> = plan
        .keys
        .iter()
        .map(|k| extracted(&plan.parser, k, modern).1)
        .collect();
    let src = format!(
        "SELECT fingerprint, ts, line, metadata FROM entries
         WHERE tenant = ? AND fingerprint IN ({fps}) AND ts > {origin} AND ts <= {hi}{lines}"
    );
    let safe_line = match &plan.parser {
        PushParser::Pattern(_) if modern => format!("({safe_line} AND length(line) <= 1048576)"),
        _ => safe_line,
    };
    let unsafe_row =
        format!("(metadata != '' OR NOT {safe_line} OR {unsafe_filter} OR {unsafe_unwrap})");
    Some(format!(
        "SELECT fingerprint,
                toInt64(intDiv(ts - toInt64({origin}) - 1, toInt64({width})) + 1) AS bucket,
                {keys} AS keys,
                toUInt64(countIf(NOT bad_row)) AS count,
                {bytes} AS bytes,
                toFloat64(sumIf(value, NOT bad_row)) AS sum,
                toFloat64(minIf(value, NOT bad_row)) AS min,
                toFloat64(maxIf(value, NOT bad_row)) AS max,
                toUInt64(countIf(bad_row)) AS bad
         FROM (SELECT fingerprint, ts, line, {unsafe_row} AS bad_row, {value} AS value FROM ({src}))
         WHERE bad_row OR ({pass} AND {present})
         GROUP BY fingerprint, bucket, keys",
        bytes = if plan.bytes {
            "toUInt64(sumIf(length(line), NOT bad_row))"
        } else {
            "toUInt64(0)"
        },
        keys = if keys.is_empty() {
            "emptyArrayString()".to_string()
        } else {
            format!("if(bad_row, emptyArrayString(), [{}])", keys.join(", "))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_regexes() {
        let p = PushParser::Pattern(r#"<ip> - [<_>] "<method> <path> <_>" <status>"#.into());
        let (h, v) = extracted(&p, "ip", false);
        assert_eq!(h, "(line != '')");
        assert!(v.contains(r"(??s)^(.*??)(??: \\- \\[|$)"), "{v}");
        let (h, v) = extracted(&p, "path", false);
        assert!(h.contains("!= ''"));
        assert!(v.starts_with("substring(extract(line, '(??s)^.*??"), "{v}");
        assert!(v.ends_with(", 2)"), "{v}");
        let (_, v) = extracted(&p, "status", false);
        assert!(v.contains(r#"(\\" .*)"#), "{v}");
        assert_eq!(extracted(&p, "nope", false).0, "0");
    }

    #[test]
    fn nodes() {
        assert_eq!(
            pattern_nodes("a<b>c<_>"),
            vec![
                Node::Literal("a".into()),
                Node::Capture("b".into()),
                Node::Literal("c".into()),
                Node::Capture("_".into())
            ]
        );
        assert_eq!(pattern_nodes("<1x>"), vec![Node::Literal("<1x>".into())]);
    }
}
