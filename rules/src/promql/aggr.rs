//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`) with `by`/`without`, using
//! Prometheus' summation (Kahan in 3.x), Welford's variance and its `topk` heap.

use std::collections::HashMap;

use argus_schemas::Labels;
use promql_parser::parser::AggregateExpr;
use promql_parser::parser::LabelModifier;
use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};

use super::eval::{Ev, METRIC_NAME, Smp, Val, err};
use super::format_value;
use super::functions::{kahan_inc, quantile};
use super::{Compat, format_go_g};
use crate::RulesError;

struct Grouping {
    without: bool,
    names: Vec<String>,
}

impl Grouping {
    fn key(&self, labels: &Labels) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        for (n, v) in labels.iter() {
            let take = if self.without {
                n != METRIC_NAME && !self.names.iter().any(|x| x == n)
            } else {
                self.names.iter().any(|x| x == n)
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

    fn labels(&self, labels: &Labels) -> Labels {
        if !self.without && self.names.is_empty() {
            return Labels::new();
        }
        Labels::from_pairs(labels.iter().filter(|(n, _)| {
            if self.without {
                *n != METRIC_NAME && !self.names.iter().any(|x| x == n)
            } else {
                self.names.iter().any(|x| x == n)
            }
        }))
    }
}

#[derive(Default)]
struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
}

fn convertible_to_i64(v: f64) -> bool {
    v <= i64::MAX as f64 && v >= i64::MIN as f64
}

pub(crate) fn eval_aggregate(ev: &Ev, a: &AggregateExpr, t: i64) -> Result<Val, RulesError> {
    let op = a.op.id();
    let grouping = match &a.modifier {
        Some(LabelModifier::Include(ls)) => Grouping {
            without: false,
            names: ls.labels.clone(),
        },
        Some(LabelModifier::Exclude(ls)) => Grouping {
            without: true,
            names: ls.labels.clone(),
        },
        None => Grouping {
            without: false,
            names: Vec::new(),
        },
    };
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, t)?),
        None => None,
    };
    let input = ev.eval_vector(&a.expr, t)?;
    let out = match op {
        T_TOPK | T_BOTTOMK => {
            let k = match param {
                Some(Val::Scalar(k)) => k,
                _ => return Err(err("expected scalar parameter for topk/bottomk")),
            };
            if !convertible_to_i64(k) {
                return Err(err(format!(
                    "Scalar value {} overflows int64",
                    format_go_g(k)
                )));
            }
            top_bottom_k(ev, op == T_TOPK, k as i64, input, &grouping)
        }
        T_COUNT_VALUES => {
            let label = match param {
                Some(Val::Str(s)) => s,
                _ => return Err(err("expected string parameter for count_values")),
            };
            if !label_name_valid(&label, ev.opts.compat) {
                return Err(err(if ev.p2() {
                    format!("invalid label name {label:?}")
                } else {
                    format!("invalid label name {label}")
                }));
            }
            count_values(&label, input, grouping)
        }
        _ => {
            let q = match (op, param) {
                (T_QUANTILE, Some(Val::Scalar(q))) => q,
                (T_QUANTILE, _) => return Err(err("expected scalar parameter for quantile")),
                _ => 0.0,
            };
            simple_aggregate(ev, op, q, input, &grouping)?
        }
    };
    Ok(Val::Vector(
        out.into_iter()
            .map(|mut s| {
                s.t = t;
                s
            })
            .collect(),
    ))
}

/// Prometheus 3 accepts any non-empty UTF-8 label name; Prometheus 2 the legacy charset.
pub(crate) fn label_name_valid(name: &str, compat: Compat) -> bool {
    match compat {
        Compat::Prometheus3 => !name.is_empty(),
        Compat::Prometheus2 => {
            let mut chars = name.chars();
            match chars.next() {
                Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
                _ => return false,
            }
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
    }
}

fn simple_aggregate(
    ev: &Ev,
    op: u8,
    q: f64,
    input: Vec<Smp>,
    grouping: &Grouping,
) -> Result<Vec<Smp>, RulesError> {
    let p2 = ev.p2();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for s in input {
        let key = grouping.key(&s.labels);
        let f = s.v;
        let gi = match index.get(&key) {
            Some(i) => *i,
            None => {
                let mut g = Group {
                    labels: grouping.labels(&s.labels),
                    value: f,
                    mean: f,
                    count: 1.0,
                    ..Default::default()
                };
                match op {
                    T_STDDEV | T_STDVAR => {
                        g.value = if !p2 && (f.is_nan() || f.is_infinite()) {
                            f64::NAN
                        } else {
                            0.0
                        };
                    }
                    T_QUANTILE => g.values.push(f),
                    T_GROUP => g.value = 1.0,
                    _ => {}
                }
                index.insert(key, groups.len());
                groups.push(g);
                continue;
            }
        };
        let g = &mut groups[gi];
        match op {
            T_SUM => {
                if p2 {
                    g.value += f;
                } else {
                    let (v, c) = kahan_inc(f, g.value, g.kahan_c, false);
                    g.value = v;
                    g.kahan_c = c;
                }
            }
            T_AVG => {
                g.count += 1.0;
                if p2 {
                    if g.mean.is_infinite() {
                        if f.is_infinite() && (g.mean > 0.0) == (f > 0.0) {
                            continue;
                        }
                        if !f.is_infinite() && !f.is_nan() {
                            continue;
                        }
                    }
                    g.mean += f / g.count - g.mean / g.count;
                } else {
                    if !g.incremental_mean {
                        let (v, c) = kahan_inc(f, g.value, g.kahan_c, false);
                        if !v.is_infinite() {
                            g.value = v;
                            g.kahan_c = c;
                            continue;
                        }
                        g.incremental_mean = true;
                        g.mean = g.value / (g.count - 1.0);
                        g.kahan_c /= g.count - 1.0;
                    }
                    let qq = (g.count - 1.0) / g.count;
                    let (m, c) = kahan_inc(f / g.count, qq * g.mean, qq * g.kahan_c, false);
                    g.mean = m;
                    g.kahan_c = c;
                }
            }
            T_GROUP => {}
            T_MAX => {
                if g.value < f || g.value.is_nan() {
                    g.value = f;
                }
            }
            T_MIN => {
                if g.value > f || g.value.is_nan() {
                    g.value = f;
                }
            }
            T_COUNT => g.count += 1.0,
            T_STDDEV | T_STDVAR => {
                g.count += 1.0;
                let delta = f - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (f - g.mean);
            }
            T_QUANTILE => g.values.push(f),
            _ => return Err(err(format!("aggregation operator {op} is not supported"))),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let v = match op {
            T_AVG => {
                if p2 {
                    g.mean
                } else if g.incremental_mean {
                    g.mean + g.kahan_c
                } else {
                    g.value / g.count + g.kahan_c / g.count
                }
            }
            T_COUNT => g.count,
            T_STDVAR => g.value / g.count,
            T_STDDEV => (g.value / g.count).sqrt(),
            T_QUANTILE => quantile(q, &mut g.values),
            T_SUM => {
                if p2 {
                    g.value
                } else {
                    g.value + g.kahan_c
                }
            }
            _ => g.value,
        };
        out.push(Smp {
            labels: g.labels,
            t: 0,
            v,
        });
    }
    Ok(out)
}

/// Go's `container/heap` over samples, with Prometheus' orderings (NaN sorts lowest).
struct Heap {
    items: Vec<Smp>,
    /// true: min-heap by value (topk keeps the k largest); false: max-heap (bottomk).
    top: bool,
}

impl Heap {
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.items[i].v, self.items[j].v);
        if a.is_nan() {
            return true;
        }
        if self.top { a < b } else { a > b }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize) -> bool {
        let n = self.items.len();
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && self.less(j2, j1) {
                j = j2;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
        i > i0
    }

    fn push(&mut self, s: Smp) {
        self.items.push(s);
        let n = self.items.len() - 1;
        self.up(n);
    }

    fn fix0(&mut self) {
        if !self.down(0) {
            self.up(0);
        }
    }
}

fn top_bottom_k(ev: &Ev, top: bool, k: i64, input: Vec<Smp>, grouping: &Grouping) -> Vec<Smp> {
    let k = k.min(input.len() as i64);
    if k < 1 {
        return Vec::new();
    }
    let k = k as usize;
    let p2 = ev.p2();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut heaps: Vec<Heap> = Vec::new();
    for s in input {
        let key = grouping.key(&s.labels);
        let gi = match index.get(&key) {
            Some(i) => *i,
            None => {
                index.insert(key, heaps.len());
                let mut h = Heap {
                    items: Vec::with_capacity(k),
                    top,
                };
                h.push(s);
                heaps.push(h);
                continue;
            }
        };
        let h = &mut heaps[gi];
        if h.items.len() < k {
            h.push(s);
            continue;
        }
        let head = h.items[0].v;
        let better = if top { head < s.v } else { head > s.v };
        let replace = if p2 {
            better || head.is_nan()
        } else {
            better || (head.is_nan() && !s.v.is_nan())
        };
        if replace {
            h.items[0] = s;
            if k > 1 {
                h.fix0();
            }
        }
    }
    let mut out = Vec::new();
    for h in heaps {
        let mut items = h.items;
        // Best first, NaN last.
        items.sort_by(|a, b| {
            let key = |x: f64| if x.is_nan() { f64::NEG_INFINITY } else { x };
            if a.v.is_nan() != b.v.is_nan() {
                return a.v.is_nan().cmp(&b.v.is_nan());
            }
            if top {
                key(b.v).total_cmp(&key(a.v))
            } else {
                key(a.v).total_cmp(&key(b.v))
            }
        });
        out.extend(items);
    }
    out
}

fn count_values(label: &str, input: Vec<Smp>, grouping: Grouping) -> Vec<Smp> {
    let grouping = if grouping.without {
        grouping
    } else {
        let mut names = grouping.names;
        names.push(label.to_string());
        Grouping {
            without: false,
            names,
        }
    };
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut groups: Vec<(Labels, f64)> = Vec::new();
    for s in input {
        let mut metric = s.labels;
        metric.insert(label, format_value(s.v));
        let key = grouping.key(&metric);
        match index.get(&key) {
            Some(i) => groups[*i].1 += 1.0,
            None => {
                index.insert(key, groups.len());
                groups.push((grouping.labels(&metric), 1.0));
            }
        }
    }
    groups
        .into_iter()
        .map(|(labels, v)| Smp { labels, t: 0, v })
        .collect()
}
