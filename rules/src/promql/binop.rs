//! Binary operators: arithmetic, comparison (filtering or `bool`), `atan2` and the set
//! operators `and`, `or`, `unless`, with `on`/`ignoring` matching and
//! `group_left`/`group_right`, as Prometheus evaluates them (including its error texts).

use std::collections::{HashMap, HashSet};

use argus_schemas::Labels;
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::eval::{Ev, METRIC_NAME, Smp, Val, check_duplicates, err};
use super::functions::go_pow;
use crate::RulesError;

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Operators that change what the result measures, so the metric name goes.
/// (Prometheus 2 keeps the name for `atan2`.)
fn changes_metric_schema(op: TokenId, legacy: bool) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD) || (op == T_ATAN2 && !legacy)
}

fn scalar_binop(op: TokenId, l: f64, r: f64) -> Result<f64, RulesError> {
    let b = |c: bool| if c { 1.0 } else { 0.0 };
    Ok(match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_POW => go_pow(l, r),
        T_MOD => l % r,
        T_EQLC => b(l == r),
        T_NEQ => b(l != r),
        T_GTR => b(l > r),
        T_LSS => b(l < r),
        T_GTE => b(l >= r),
        T_LTE => b(l <= r),
        T_ATAN2 => l.atan2(r),
        _ => return Err(err("operator not allowed for scalar operations")),
    })
}

/// The value and whether the element is kept (comparisons filter).
fn elem_binop(op: TokenId, l: f64, r: f64) -> Result<(f64, bool), RulesError> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (go_pow(l, r), true),
        T_MOD => (l % r, true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        T_ATAN2 => (l.atan2(r), true),
        _ => return Err(err("operator not allowed for operations between vectors")),
    })
}

pub(crate) fn eval_binary(ev: &Ev, b: &BinaryExpr, t: i64) -> Result<Val, RulesError> {
    let op = b.op.id();
    let return_bool = b.return_bool();
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(scalar_binop(op, l, r)?)),
        (Val::Vector(v), Val::Scalar(s)) => {
            vector_scalar(op, v, s, false, return_bool, t, ev.p2()).map(Val::Vector)
        }
        (Val::Scalar(s), Val::Vector(v)) => {
            vector_scalar(op, v, s, true, return_bool, t, ev.p2()).map(Val::Vector)
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let (on, names) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                None => (false, Vec::new()),
            };
            let card = b
                .modifier
                .as_ref()
                .map(|m| m.card.clone())
                .unwrap_or(VectorMatchCardinality::OneToOne);
            let m = Matching { on, names };
            let out = match op {
                T_LAND => vector_and(l, r, &m),
                T_LOR => vector_or(l, r, &m),
                T_LUNLESS => vector_unless(l, r, &m),
                _ => vector_binop(op, l, r, &m, &card, return_bool, ev.p2())?,
            };
            let mut out = out;
            for s in &mut out {
                s.t = t;
            }
            check_duplicates(&out)?;
            Ok(Val::Vector(out))
        }
        (l, r) => Err(err(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            type_name(&l),
            type_name(&r)
        ))),
    }
}

fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Scalar(_) => "scalar",
        Val::Str(_) => "string",
        Val::Vector(_) => "instant vector",
        Val::Matrix(_) => "range vector",
    }
}

fn vector_scalar(
    op: TokenId,
    v: Vec<Smp>,
    s: f64,
    swap: bool,
    return_bool: bool,
    t: i64,
    legacy: bool,
) -> Result<Vec<Smp>, RulesError> {
    let mut out = Vec::with_capacity(v.len());
    for mut smp in v {
        let (mut l, mut r) = (smp.v, s);
        if swap {
            std::mem::swap(&mut l, &mut r);
        }
        let (mut value, mut keep) = elem_binop(op, l, r)?;
        if is_comparison(op) && swap {
            value = r;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            smp.v = value;
            smp.t = t;
            if changes_metric_schema(op, legacy) || return_bool {
                smp.labels.remove(METRIC_NAME);
            }
            out.push(smp);
        }
    }
    check_duplicates(&out)?;
    Ok(out)
}

struct Matching {
    on: bool,
    names: Vec<String>,
}

impl Matching {
    /// The match key of a label set: the `on` labels, or all but the `ignoring` labels and
    /// the metric name.
    fn signature(&self, labels: &Labels) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        for (n, v) in labels.iter() {
            let take = if self.on {
                self.names.iter().any(|x| x == n)
            } else {
                n != METRIC_NAME && !self.names.iter().any(|x| x == n)
            };
            if take {
                out.extend_from_slice(n.as_bytes());
                out.push(0xff);
                out.extend_from_slice(v.as_bytes());
                out.push(0xff);
            }
        }
        out
    }

    /// The labels the signature is made of, for error messages.
    fn match_labels(&self, labels: &Labels) -> Labels {
        Labels::from_pairs(labels.iter().filter(|(n, _)| {
            if self.on {
                self.names.iter().any(|x| x == n)
            } else {
                *n != METRIC_NAME && !self.names.iter().any(|x| x == n)
            }
        }))
    }
}

fn vector_and(l: Vec<Smp>, r: Vec<Smp>, m: &Matching) -> Vec<Smp> {
    if l.is_empty() || r.is_empty() {
        return Vec::new();
    }
    let right: HashSet<Vec<u8>> = r.iter().map(|s| m.signature(&s.labels)).collect();
    l.into_iter()
        .filter(|s| right.contains(&m.signature(&s.labels)))
        .collect()
}

fn vector_or(l: Vec<Smp>, r: Vec<Smp>, m: &Matching) -> Vec<Smp> {
    if l.is_empty() {
        return r;
    }
    if r.is_empty() {
        return l;
    }
    let left: HashSet<Vec<u8>> = l.iter().map(|s| m.signature(&s.labels)).collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|s| !left.contains(&m.signature(&s.labels))),
    );
    out
}

fn vector_unless(l: Vec<Smp>, r: Vec<Smp>, m: &Matching) -> Vec<Smp> {
    if l.is_empty() || r.is_empty() {
        return l;
    }
    let right: HashSet<Vec<u8>> = r.iter().map(|s| m.signature(&s.labels)).collect();
    l.into_iter()
        .filter(|s| !right.contains(&m.signature(&s.labels)))
        .collect()
}

fn vector_binop(
    op: TokenId,
    lhs: Vec<Smp>,
    rhs: Vec<Smp>,
    m: &Matching,
    card: &VectorMatchCardinality,
    return_bool: bool,
    legacy: bool,
) -> Result<Vec<Smp>, RulesError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let include: Vec<String> = card.labels().map(|l| l.labels.clone()).unwrap_or_default();
    let (lhs, rhs) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };

    // The "one" side, by signature.
    let mut right: HashMap<Vec<u8>, usize> = HashMap::with_capacity(rhs.len());
    for (i, rs) in rhs.iter().enumerate() {
        let sig = m.signature(&rs.labels);
        if let Some(&j) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            return Err(err(format!(
                "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                m.match_labels(&rs.labels),
                side,
                rs.labels,
                rhs[j].labels
            )));
        }
        right.insert(sig, i);
    }

    let mut matched: HashMap<Vec<u8>, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ls in lhs {
        let sig = m.signature(&ls.labels);
        let Some(&ri) = right.get(&sig) else {
            continue;
        };
        let rs = &rhs[ri];
        let (fl, fr) = if one_to_many {
            (rs.v, ls.v)
        } else {
            (ls.v, rs.v)
        };
        let (mut value, keep) = elem_binop(op, fl, fr)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.labels, &rs.labels, op, m, one_to_one, &include, legacy);
        if return_bool {
            metric.remove(METRIC_NAME);
        }
        if one_to_one {
            if matched.contains_key(&sig) {
                return Err(err(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
            matched.insert(sig, HashSet::new());
        } else {
            let set = matched.entry(sig).or_default();
            if !set.insert(metric.clone()) {
                return Err(err(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
        }
        out.push(Smp {
            labels: metric,
            t: ls.t,
            v: value,
        });
    }
    Ok(out)
}

fn result_metric(
    lhs: &Labels,
    rhs: &Labels,
    op: TokenId,
    m: &Matching,
    one_to_one: bool,
    include: &[String],
    legacy: bool,
) -> Labels {
    let mut out = lhs.clone();
    if changes_metric_schema(op, legacy) {
        out.remove(METRIC_NAME);
    }
    if one_to_one {
        if m.on {
            let keep: Vec<(String, String)> = out
                .iter()
                .filter(|(n, _)| m.names.iter().any(|x| x == n))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            out = Labels::from_pairs(keep);
        } else {
            for n in &m.names {
                out.remove(n);
            }
        }
    }
    for n in include {
        match rhs.get(n) {
            Some(v) if !v.is_empty() => out.insert(n.clone(), v.to_string()),
            _ => {
                out.remove(n);
            }
        }
    }
    out
}
