//! Vector aggregations (`sum`, `avg`, `min`, `max`, `count`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `sort`, `sort_desc`) with `by`/`without`, and `label_replace`,
//! applied step by step as Loki's vector evaluator does.

use std::cmp::Ordering;
use std::collections::HashMap;

use argus_schemas::Labels;

use super::step::{Interner, StepVectors};
use super::util::group_labels;
use crate::error::Result;
use crate::logql::ast::{Grouping, VectorOp};
use crate::logql::matcher::anchored;

/// Running state of one group at one step.
#[derive(Clone, Copy)]
struct Group {
    value: f64,
    mean: f64,
    count: f64,
}

pub fn aggregate(
    op: VectorOp,
    g: &Grouping,
    param: Option<f64>,
    input: StepVectors,
) -> Result<StepVectors> {
    let StepVectors { labels, steps } = input;
    match op {
        VectorOp::Topk | VectorOp::Bottomk | VectorOp::Sort | VectorOp::SortDesc => {
            return Ok(select(op, g, param, labels, steps));
        }
        _ => {}
    }
    // The group of each input series, computed once.
    let mut groups = Interner::default();
    let group_of: Vec<u32> = labels
        .iter()
        .map(|l| groups.id(group_labels(l, g)))
        .collect();
    let mut out_steps = Vec::with_capacity(steps.len());
    let mut state: HashMap<u32, Group> = HashMap::new();
    for vec in steps {
        state.clear();
        for (id, v) in vec {
            let gid = group_of[id as usize];
            match state.get_mut(&gid) {
                None => {
                    state.insert(
                        gid,
                        Group {
                            value: match op {
                                VectorOp::Stddev | VectorOp::Stdvar => 0.0,
                                _ => v,
                            },
                            mean: v,
                            count: 1.0,
                        },
                    );
                }
                Some(s) => add(op, s, v),
            }
        }
        let mut step: Vec<(u32, f64)> = state
            .iter()
            .map(|(&gid, s)| {
                let v = match op {
                    VectorOp::Avg => s.mean,
                    VectorOp::Count => s.count,
                    VectorOp::Stddev => (s.value / s.count).sqrt(),
                    VectorOp::Stdvar => s.value / s.count,
                    _ => s.value,
                };
                (gid, v)
            })
            .collect();
        step.sort_by(|a, b| groups.labels[a.0 as usize].cmp(&groups.labels[b.0 as usize]));
        out_steps.push(step);
    }
    Ok(StepVectors {
        labels: groups.labels,
        steps: out_steps,
    })
}

fn add(op: VectorOp, s: &mut Group, v: f64) {
    match op {
        VectorOp::Sum => s.value += v,
        VectorOp::Avg => {
            s.count += 1.0;
            if s.mean.is_infinite() {
                if v.is_infinite() && (s.mean > 0.0) == (v > 0.0) {
                    return;
                }
                if !v.is_infinite() && !v.is_nan() {
                    return;
                }
            }
            s.mean += (v - s.mean) / s.count;
        }
        VectorOp::Max => {
            if s.value < v || s.value.is_nan() {
                s.value = v;
            }
        }
        VectorOp::Min => {
            if s.value > v || s.value.is_nan() {
                s.value = v;
            }
        }
        VectorOp::Count => s.count += 1.0,
        VectorOp::Stddev | VectorOp::Stdvar => {
            s.count += 1.0;
            let delta = v - s.mean;
            s.mean += delta / s.count;
            s.value += delta * (v - s.mean);
        }
        VectorOp::Topk | VectorOp::Bottomk | VectorOp::Sort | VectorOp::SortDesc => {}
    }
}

/// Orders values descending with NaN last (Loki's value heap, reversed).
fn desc(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

/// Orders values ascending with NaN last.
fn asc(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// `topk`, `bottomk`, `sort`, `sort_desc`: keep the input series (labels unchanged),
/// per group, in value order.
fn select(
    op: VectorOp,
    g: &Grouping,
    param: Option<f64>,
    labels: Vec<Labels>,
    steps: Vec<Vec<(u32, f64)>>,
) -> StepVectors {
    let k = match op {
        VectorOp::Topk | VectorOp::Bottomk => param.unwrap_or(0.0).floor(),
        _ => f64::INFINITY,
    };
    let mut groups = Interner::default();
    let group_of: Vec<u32> = labels
        .iter()
        .map(|l| groups.id(group_labels(l, g)))
        .collect();
    let descending = matches!(op, VectorOp::Topk | VectorOp::SortDesc);
    let mut out_steps = Vec::with_capacity(steps.len());
    for vec in steps {
        if k < 1.0 {
            out_steps.push(Vec::new());
            continue;
        }
        let mut by_group: HashMap<u32, Vec<(u32, f64)>> = HashMap::new();
        for (id, v) in vec {
            by_group
                .entry(group_of[id as usize])
                .or_default()
                .push((id, v));
        }
        let mut gids: Vec<u32> = by_group.keys().copied().collect();
        gids.sort_by(|a, b| groups.labels[*a as usize].cmp(&groups.labels[*b as usize]));
        let mut step = Vec::new();
        for gid in gids {
            let mut members = by_group.remove(&gid).unwrap_or_default();
            members.sort_by(|a, b| {
                let o = if descending {
                    desc(a.1, b.1)
                } else {
                    asc(a.1, b.1)
                };
                o.then_with(|| labels[a.0 as usize].cmp(&labels[b.0 as usize]))
            });
            if k.is_finite() && (members.len() as f64) > k {
                members.truncate(k as usize);
            }
            step.extend(members);
        }
        out_steps.push(step);
    }
    StepVectors {
        labels,
        steps: out_steps,
    }
}

/// `label_replace(v, dst, replacement, src, regex)`: where the anchored regex
/// matches the value of `src`, `dst` is set to the expanded replacement (removed when
/// the expansion is empty); other series are unchanged.
pub fn label_replace(
    input: StepVectors,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<StepVectors> {
    let re = anchored(regex)?;
    let labels = input
        .labels
        .into_iter()
        .map(|l| {
            let value = l.get(src).unwrap_or("").to_string();
            match re.captures(&value) {
                None => l,
                Some(caps) => {
                    let mut res = String::new();
                    caps.expand(replacement, &mut res);
                    let mut out = l;
                    out.remove(dst);
                    if !res.is_empty() {
                        out.insert(dst, res);
                    }
                    out
                }
            }
        })
        .collect();
    Ok(StepVectors {
        labels,
        steps: input.steps,
    })
}
