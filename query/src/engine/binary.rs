//! Binary operators: arithmetic, comparisons (filtering, or 0/1 with `bool`) and the
//! set operators, between scalars and vectors, with Prometheus' vector matching
//! (`on`/`ignoring`, `group_left`/`group_right`) as Loki implements it. Division
//! and modulo by zero give NaN, as in Loki.

use std::collections::{HashMap, HashSet};

use argus_schemas::Labels;

use super::step::{Interner, StepVectors, Value};
use crate::error::{QueryError, Result};
use crate::logql::ast::{BinModifier, BinOp, GroupSide, VectorMatching};

fn is_comparison(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Neq | BinOp::Gt | BinOp::Gte | BinOp::Lt | BinOp::Lte
    )
}

/// The arithmetic result, or for comparisons whether it holds (as 1/0).
fn compute(op: BinOp, l: f64, r: f64) -> f64 {
    let b = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => {
            if r == 0.0 {
                f64::NAN
            } else {
                l / r
            }
        }
        BinOp::Mod => {
            if r == 0.0 {
                f64::NAN
            } else {
                l % r
            }
        }
        BinOp::Pow => l.powf(r),
        BinOp::Eq => b(l == r),
        BinOp::Neq => b(l != r),
        BinOp::Gt => b(l > r),
        BinOp::Gte => b(l >= r),
        BinOp::Lt => b(l < r),
        BinOp::Lte => b(l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => f64::NAN,
    }
}

pub fn apply(op: BinOp, m: &BinModifier, lhs: Value, rhs: Value) -> Result<Value> {
    let set_op = matches!(op, BinOp::And | BinOp::Or | BinOp::Unless);
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            if set_op {
                return Err(QueryError::Invalid(format!(
                    "set operator {op:?} not allowed in binary scalar expression"
                )));
            }
            Ok(Value::Scalar(compute(op, l, r)))
        }
        (Value::Scalar(l), Value::Vector(v)) => scalar_vector(op, m, l, v, true),
        (Value::Vector(v), Value::Scalar(r)) => scalar_vector(op, m, r, v, false),
        (Value::Vector(l), Value::Vector(r)) => match op {
            BinOp::And | BinOp::Or | BinOp::Unless => Ok(Value::Vector(set_operation(op, m, l, r))),
            _ => Ok(Value::Vector(vector_vector(op, m, l, r)?)),
        },
    }
}

fn scalar_vector(
    op: BinOp,
    m: &BinModifier,
    scalar: f64,
    v: StepVectors,
    scalar_left: bool,
) -> Result<Value> {
    if matches!(op, BinOp::And | BinOp::Or | BinOp::Unless) {
        return Err(QueryError::Invalid(format!(
            "set operator {op:?} not allowed in binary scalar expression"
        )));
    }
    let filter = is_comparison(op) && !m.return_bool;
    let StepVectors { labels, steps } = v;
    let steps = steps
        .into_iter()
        .map(|vec| {
            vec.into_iter()
                .filter_map(|(id, x)| {
                    let (l, r) = if scalar_left {
                        (scalar, x)
                    } else {
                        (x, scalar)
                    };
                    let res = compute(op, l, r);
                    if filter {
                        // a filtering comparison keeps the vector's own value
                        (res == 1.0).then_some((id, x))
                    } else {
                        Some((id, res))
                    }
                })
                .collect()
        })
        .collect();
    Ok(Value::Vector(StepVectors { labels, steps }))
}

/// The matching signature of a series: its labels reduced by `on`/`ignoring`.
fn signature(l: &Labels, matching: Option<&VectorMatching>) -> Labels {
    match matching {
        None => l.clone(),
        Some(VectorMatching::On(names)) => {
            Labels::from_pairs(l.iter().filter(|(n, _)| names.iter().any(|x| x == n)))
        }
        Some(VectorMatching::Ignoring(names)) => {
            Labels::from_pairs(l.iter().filter(|(n, _)| !names.iter().any(|x| x == n)))
        }
    }
}

fn signatures(labels: &[Labels], matching: Option<&VectorMatching>) -> (Vec<u32>, Interner) {
    let mut sigs = Interner::default();
    let ids = labels
        .iter()
        .map(|l| sigs.id(signature(l, matching)))
        .collect();
    (ids, sigs)
}

fn set_operation(op: BinOp, m: &BinModifier, l: StepVectors, r: StepVectors) -> StepVectors {
    // Both sides' signatures in one table so that ids compare.
    let mut sigs = Interner::default();
    let matching = m.matching.as_ref();
    let lsig: Vec<u32> = l
        .labels
        .iter()
        .map(|x| sigs.id(signature(x, matching)))
        .collect();
    let rsig: Vec<u32> = r
        .labels
        .iter()
        .map(|x| sigs.id(signature(x, matching)))
        .collect();
    let mut out = Interner::default();
    let lmap: Vec<u32> = l.labels.iter().map(|x| out.id(x.clone())).collect();
    let rmap: Vec<u32> = r.labels.iter().map(|x| out.id(x.clone())).collect();
    let steps = l
        .steps
        .into_iter()
        .zip(r.steps)
        .map(|(lv, rv)| {
            let mut res = Vec::new();
            match op {
                BinOp::And => {
                    if lv.is_empty() || rv.is_empty() {
                        return res;
                    }
                    let rs: HashSet<u32> = rv.iter().map(|(id, _)| rsig[*id as usize]).collect();
                    for (id, v) in lv {
                        if rs.contains(&lsig[id as usize]) {
                            res.push((lmap[id as usize], v));
                        }
                    }
                }
                BinOp::Or => {
                    let ls: HashSet<u32> = lv.iter().map(|(id, _)| lsig[*id as usize]).collect();
                    for (id, v) in lv {
                        res.push((lmap[id as usize], v));
                    }
                    for (id, v) in rv {
                        if !ls.contains(&rsig[id as usize]) {
                            res.push((rmap[id as usize], v));
                        }
                    }
                }
                _ => {
                    let rs: HashSet<u32> = rv.iter().map(|(id, _)| rsig[*id as usize]).collect();
                    for (id, v) in lv {
                        if !rs.contains(&lsig[id as usize]) {
                            res.push((lmap[id as usize], v));
                        }
                    }
                }
            }
            res
        })
        .collect();
    StepVectors {
        labels: out.labels,
        steps,
    }
}

/// The result labels (Prometheus' `resultMetric`): one-to-one matching keeps only
/// the `on` labels / drops the `ignoring` ones; `group_x(extra)` copies `extra`
/// from the "one" side.
fn result_labels(many: &Labels, one: &Labels, m: &BinModifier) -> Labels {
    let mut out = many.clone();
    match (&m.group, &m.matching) {
        (None, Some(VectorMatching::On(names))) => {
            out = Labels::from_pairs(many.iter().filter(|(n, _)| names.iter().any(|x| x == n)));
        }
        (None, Some(VectorMatching::Ignoring(names))) => {
            for n in names {
                out.remove(n);
            }
        }
        _ => {}
    }
    let include = match &m.group {
        Some(GroupSide::Left(v)) | Some(GroupSide::Right(v)) => v.as_slice(),
        None => &[],
    };
    for n in include {
        match one.get(n) {
            Some(v) if !v.is_empty() => out.insert(n.as_str(), v),
            _ => {
                out.remove(n);
            }
        }
    }
    out
}

fn vector_vector(
    op: BinOp,
    m: &BinModifier,
    l: StepVectors,
    r: StepVectors,
) -> Result<StepVectors> {
    let one_to_many = matches!(m.group, Some(GroupSide::Right(_)));
    let one_to_one = m.group.is_none();
    let filter = is_comparison(op) && !m.return_bool;
    let matching = m.matching.as_ref();
    // "many" side first: lhs normally, rhs for group_right.
    let (many, one) = if one_to_many { (r, l) } else { (l, r) };
    let (many_sig, mut sig_table) = signatures(&many.labels, matching);
    let one_sig: Vec<u32> = one
        .labels
        .iter()
        .map(|x| sig_table.id(signature(x, matching)))
        .collect();
    let mut out = Interner::default();
    let mut pair_ids: HashMap<(u32, u32), u32> = HashMap::new();
    let mut steps = Vec::with_capacity(many.steps.len());
    for (mv, ov) in many.steps.into_iter().zip(one.steps) {
        let mut one_by_sig: HashMap<u32, (u32, f64)> = HashMap::with_capacity(ov.len());
        for (id, v) in ov {
            if one_by_sig.insert(one_sig[id as usize], (id, v)).is_some() {
                let side = if one_to_many { "left" } else { "right" };
                return Err(QueryError::Invalid(format!(
                    "found duplicate series on the {side} hand-side;many-to-many matching not allowed: matching labels must be unique on one side"
                )));
            }
        }
        let mut matched: HashMap<u32, HashSet<u32>> = HashMap::new();
        let mut res = Vec::new();
        for (mid, mval) in mv {
            let sig = many_sig[mid as usize];
            let Some(&(oid, oval)) = one_by_sig.get(&sig) else {
                continue;
            };
            let rid = match pair_ids.get(&(mid, oid)) {
                Some(&x) => x,
                None => {
                    let x = out.id(result_labels(
                        &many.labels[mid as usize],
                        &one.labels[oid as usize],
                        m,
                    ));
                    pair_ids.insert((mid, oid), x);
                    x
                }
            };
            let seen = matched.entry(sig).or_default();
            if one_to_one {
                if !seen.is_empty() {
                    return Err(QueryError::Invalid(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
                seen.insert(rid);
            } else if !seen.insert(rid) {
                return Err(QueryError::Invalid(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            let (lv, rv) = if one_to_many {
                (oval, mval)
            } else {
                (mval, oval)
            };
            let v = compute(op, lv, rv);
            if filter {
                if v == 1.0 {
                    res.push((rid, lv));
                }
            } else {
                res.push((rid, v));
            }
        }
        steps.push(res);
    }
    Ok(StepVectors {
        labels: out.labels,
        steps,
    })
}
