//! PromQL functions: the range functions (`rate`, `increase`, `delta`, `irate`,
//! `idelta`, `deriv`, `predict_linear`, `changes`, `resets`, the `*_over_time` family,
//! `absent_over_time`), `histogram_quantile` over classic buckets, label functions,
//! math, clamping, rounding, date functions, `time`, `vector`, `scalar`, `timestamp`,
//! `absent` and sorting. Arithmetic follows Prometheus' Go code step for step so results
//! match to the last bit where the Go and Rust math libraries agree.

use std::cmp::Ordering;

use argus_schemas::Labels;
use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use super::aggr::label_name_valid;
use super::eval::{
    Ev, METRIC_NAME, RSeries, RangeArg, Smp, Val, check_duplicates, drop_name, err, unparen,
};
use super::{Compat, parse_go_float};
use crate::RulesError;

/// Kahan-Babuška summation step as Prometheus writes it; Prometheus 3 resets the
/// compensation when the sum becomes infinite (`legacy` = Prometheus 2 does not).
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64, legacy: bool) -> (f64, f64) {
    let t = sum + inc;
    let mut c = c;
    if !legacy && t.is_infinite() {
        c = 0.0;
    } else if sum.abs() >= inc.abs() {
        c += (sum - t) + inc;
    } else {
        c += (inc - t) + sum;
    }
    (t, c)
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks, NaN sorting
/// first.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Go's `math.Pow`: special cases, then repeated squaring on the mantissa for the integer
/// part of the exponent and `exp(yf*ln x)` for the fraction, so integer powers round as
/// Go rounds them.
pub(crate) fn go_pow(x: f64, y: f64) -> f64 {
    let is_odd_int = |v: f64| {
        if v.abs() >= (1u64 << 53) as f64 {
            return false;
        }
        let (i, f) = (v.trunc(), v.fract());
        f == 0.0 && (i as i64) & 1 == 1
    };
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 {
        if y < 0.0 {
            return if x.is_sign_negative() && is_odd_int(y) {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
        }
        return if x.is_sign_negative() && is_odd_int(y) {
            x
        } else {
            0.0
        };
    }
    if y.is_infinite() {
        if x == -1.0 {
            return 1.0;
        }
        return if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if x.is_infinite() {
        if x < 0.0 {
            return go_pow(1.0 / x, -y);
        }
        return if y < 0.0 { 0.0 } else { f64::INFINITY };
    }
    if y == 0.5 {
        return x.sqrt();
    }
    if y == -0.5 {
        return 1.0 / x.sqrt();
    }
    let ay = y.abs();
    let mut yi = ay.trunc();
    let mut yf = ay - yi;
    if yf != 0.0 && x < 0.0 {
        return f64::NAN;
    }
    if yi >= 9.223372036854776e18 {
        if x == -1.0 {
            return 1.0;
        }
        return if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let mut a1 = 1.0f64;
    let mut ae: i64 = 0;
    if yf != 0.0 {
        if yf > 0.5 {
            yf -= 1.0;
            yi += 1.0;
        }
        a1 = (yf * x.ln()).exp();
    }
    let (mut x1, mut xe) = frexp(x);
    let mut i = yi as i64;
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    if y < 0.0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    ldexp(a1, ae)
}

/// Mantissa in [0.5, 1) and exponent, like C's `frexp`.
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || x.is_nan() || x.is_infinite() {
        return (x, 0);
    }
    let (mut x, mut e) = (x, 0i64);
    if x.abs() < f64::MIN_POSITIVE {
        x *= (1u64 << 52) as f64;
        e = -52;
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    e += exp - 1022;
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, e)
}

/// `frac * 2^exp`, rounding once.
fn ldexp(frac: f64, exp: i64) -> f64 {
    if frac == 0.0 || frac.is_nan() || frac.is_infinite() {
        return frac;
    }
    let (m, e) = frexp(frac);
    let e = e + exp;
    if e > 1024 {
        return if m < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    if e < -1074 - 1 {
        return 0.0f64.copysign(m);
    }
    // m in [0.5, 1): m * 2^e. Apply in two steps when outside the normal range.
    if e >= -1021 {
        m * f64::from_bits(((e + 1022) as u64) << 52) * 2.0
    } else {
        // Subnormal result: scale into range with an exact power, then one rounding.
        let shifted = m * f64::from_bits(((e + 1022 + 100) as u64) << 52);
        shifted * 2.0 * f64::from_bits(((1023 - 100) as u64) << 52)
    }
}

fn arg(c: &Call, i: usize) -> Result<&Expr, RulesError> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| err(format!("missing argument {} of {}", i + 1, c.func.name)))
}

fn simple(ev: &Ev, c: &Call, t: i64, f: impl Fn(f64) -> f64) -> Result<Val, RulesError> {
    let v = ev.eval_vector(arg(c, 0)?, t)?;
    let out: Vec<Smp> = v
        .into_iter()
        .map(|s| Smp {
            labels: drop_name(&s.labels),
            t,
            v: f(s.v),
        })
        .collect();
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

pub(crate) fn eval_call(ev: &Ev, c: &Call, t: i64) -> Result<Val, RulesError> {
    let name = c.func.name;
    match name {
        "time" => Ok(Val::Scalar(t as f64 / 1000.0)),
        "pi" => Ok(Val::Scalar(std::f64::consts::PI)),
        "vector" => {
            let v = ev.eval_scalar(arg(c, 0)?, t)?;
            Ok(Val::Vector(vec![Smp {
                labels: Labels::new(),
                t,
                v,
            }]))
        }
        "scalar" => {
            let v = ev.eval_vector(arg(c, 0)?, t)?;
            Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }))
        }
        "abs" => simple(ev, c, t, f64::abs),
        "ceil" => simple(ev, c, t, f64::ceil),
        "floor" => simple(ev, c, t, f64::floor),
        "exp" => simple(ev, c, t, f64::exp),
        "sqrt" => simple(ev, c, t, f64::sqrt),
        "ln" => simple(ev, c, t, f64::ln),
        "log2" => simple(ev, c, t, f64::log2),
        "log10" => simple(ev, c, t, f64::log10),
        "sin" => simple(ev, c, t, f64::sin),
        "cos" => simple(ev, c, t, f64::cos),
        "tan" => simple(ev, c, t, f64::tan),
        "asin" => simple(ev, c, t, f64::asin),
        "acos" => simple(ev, c, t, f64::acos),
        "atan" => simple(ev, c, t, f64::atan),
        "sinh" => simple(ev, c, t, f64::sinh),
        "cosh" => simple(ev, c, t, f64::cosh),
        "tanh" => simple(ev, c, t, f64::tanh),
        "asinh" => simple(ev, c, t, f64::asinh),
        "acosh" => simple(ev, c, t, f64::acosh),
        "atanh" => simple(ev, c, t, f64::atanh),
        "rad" => simple(ev, c, t, |v| v * std::f64::consts::PI / 180.0),
        "deg" => simple(ev, c, t, |v| v * 180.0 / std::f64::consts::PI),
        "sgn" => simple(ev, c, t, |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "round" => {
            let to_nearest = match c.args.args.get(1) {
                Some(e) => ev.eval_scalar(e, t)?,
                None => 1.0,
            };
            let inv = 1.0 / to_nearest;
            simple(ev, c, t, move |v| (v * inv + 0.5).floor() / inv)
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let (min, max) = match name {
                "clamp" => (
                    ev.eval_scalar(arg(c, 1)?, t)?,
                    ev.eval_scalar(arg(c, 2)?, t)?,
                ),
                "clamp_min" => (ev.eval_scalar(arg(c, 1)?, t)?, f64::INFINITY),
                _ => (f64::NEG_INFINITY, ev.eval_scalar(arg(c, 1)?, t)?),
            };
            if max < min {
                // Still evaluate the vector for its errors.
                ev.eval_vector(arg(c, 0)?, t)?;
                return Ok(Val::Vector(Vec::new()));
            }
            simple(ev, c, t, move |v| go_max(min, go_min(max, v)))
        }
        "timestamp" => {
            let a = unparen(arg(c, 0)?);
            let v = match a {
                Expr::VectorSelector(vs) => ev.select_instant(vs, t)?,
                other => ev
                    .eval_vector(other, t)?
                    .into_iter()
                    .map(|mut s| {
                        s.t = t;
                        s
                    })
                    .collect(),
            };
            let out: Vec<Smp> = v
                .into_iter()
                .map(|s| Smp {
                    labels: drop_name(&s.labels),
                    t,
                    v: s.t as f64 / 1000.0,
                })
                .collect();
            check_duplicates(&out)?;
            Ok(Val::Vector(out))
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(arg(c, 0)?, t)?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => {
                    let o = a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal);
                    if desc { o.reverse() } else { o }
                }
            });
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ev.eval_vector(arg(c, 0)?, t)?;
            let mut names = Vec::new();
            for e in &c.args.args[1..] {
                names.push(ev.eval_string(e, t)?);
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                for n in &names {
                    let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if x != y {
                        let o = natural_cmp(x, y);
                        return if desc { o.reverse() } else { o };
                    }
                }
                let o = a.labels.cmp(&b.labels);
                if desc { o.reverse() } else { o }
            });
            Ok(Val::Vector(v))
        }
        "label_replace" => label_replace(ev, c, t),
        "label_join" => label_join(ev, c, t),
        "absent" => {
            let a = arg(c, 0)?;
            let v = ev.eval_vector(a, t)?;
            if !v.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![Smp {
                labels: absent_labels(a),
                t,
                v: 1.0,
            }]))
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute"
        | "month" | "year" => date_function(ev, c, t),
        "histogram_quantile" => histogram_quantile(ev, c, t),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_fraction"
        | "histogram_stddev" | "histogram_stdvar" => {
            // These read native histograms only; float samples are ignored.
            for e in &c.args.args {
                ev.eval(e, t)?;
            }
            Ok(Val::Vector(Vec::new()))
        }
        _ => range_function(ev, c, t),
    }
}

/// Go's `math.Max`/`math.Min` (NaN wins; +0 beats -0 for max).
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a > 0.0 || b.is_infinite() && b > 0.0 {
        return f64::INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b { a } else { b }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a < 0.0 || b.is_infinite() && b < 0.0 {
        return f64::NEG_INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

/// Natural order: runs of digits compare by numeric value.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut ai, mut bi) = (a.char_indices().peekable(), b.char_indices().peekable());
    loop {
        match (ai.peek().copied(), bi.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((_, ca)), Some((_, cb))) => {
                if ca.is_ascii_digit() && cb.is_ascii_digit() {
                    let mut na = String::new();
                    while let Some((_, c)) = ai.peek().copied().filter(|(_, c)| c.is_ascii_digit())
                    {
                        na.push(c);
                        ai.next();
                    }
                    let mut nb = String::new();
                    while let Some((_, c)) = bi.peek().copied().filter(|(_, c)| c.is_ascii_digit())
                    {
                        nb.push(c);
                        bi.next();
                    }
                    let ta = na.trim_start_matches('0');
                    let tb = nb.trim_start_matches('0');
                    let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                    if o != Ordering::Equal {
                        return o;
                    }
                } else {
                    if ca != cb {
                        return ca.cmp(&cb);
                    }
                    ai.next();
                    bi.next();
                }
            }
        }
    }
}

/// The labels `absent`/`absent_over_time` report: the selector's equality matchers
/// (a name matched twice, or by another matcher type, is left out).
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unparen(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut out = Labels::new();
    let mut has: std::collections::HashSet<&str> = Default::default();
    let all = vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten());
    for m in all {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !has.contains(m.name.as_str()) {
            if m.value.is_empty() {
                out.remove(&m.name);
            } else {
                out.insert(m.name.clone(), m.value.clone());
            }
            has.insert(m.name.as_str());
        } else {
            out.remove(&m.name);
        }
    }
    out
}

fn label_replace(ev: &Ev, c: &Call, t: i64) -> Result<Val, RulesError> {
    let dst = ev.eval_string(arg(c, 1)?, t)?;
    let repl = ev.eval_string(arg(c, 2)?, t)?;
    let src = ev.eval_string(arg(c, 3)?, t)?;
    let re_str = ev.eval_string(arg(c, 4)?, t)?;
    let wrapped = if ev.p2() {
        format!("^(?:{re_str})$")
    } else {
        format!("^(?s:{re_str})$")
    };
    let re = regex::Regex::new(&wrapped).map_err(|_| {
        err(format!(
            "invalid regular expression in label_replace(): {re_str}"
        ))
    })?;
    if !label_name_valid(&dst, ev.opts.compat) {
        return Err(err(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut v = ev.eval_vector(arg(c, 0)?, t)?;
    for s in &mut v {
        let src_val = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&src_val) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            if res.is_empty() {
                s.labels.remove(&dst);
            } else {
                s.labels.insert(dst.clone(), res);
            }
        }
        s.t = t;
    }
    check_duplicates(&v)?;
    Ok(Val::Vector(v))
}

fn label_join(ev: &Ev, c: &Call, t: i64) -> Result<Val, RulesError> {
    let dst = ev.eval_string(arg(c, 1)?, t)?;
    let sep = ev.eval_string(arg(c, 2)?, t)?;
    let mut srcs = Vec::new();
    for e in &c.args.args[3.min(c.args.args.len())..] {
        let s = ev.eval_string(e, t)?;
        if !label_name_valid(&s, ev.opts.compat) {
            return Err(err(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !label_name_valid(&dst, ev.opts.compat) {
        return Err(err(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut v = ev.eval_vector(arg(c, 0)?, t)?;
    for s in &mut v {
        let joined = srcs
            .iter()
            .map(|n| s.labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        if joined.is_empty() {
            s.labels.remove(&dst);
        } else {
            s.labels.insert(dst.clone(), joined);
        }
        s.t = t;
    }
    check_duplicates(&v)?;
    Ok(Val::Vector(v))
}

fn date_function(ev: &Ev, c: &Call, t: i64) -> Result<Val, RulesError> {
    let f = |secs: i64| -> f64 {
        let Some(dt) = DateTime::from_timestamp(secs, 0) else {
            return f64::NAN;
        };
        match c.func.name {
            "days_in_month" => {
                let (y, m) = (dt.year(), dt.month());
                let next = if m == 12 {
                    NaiveDate::from_ymd_opt(y + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(y, m + 1, 1)
                };
                let this = NaiveDate::from_ymd_opt(y, m, 1);
                match (this, next) {
                    (Some(a), Some(b)) => (b - a).num_days() as f64,
                    _ => f64::NAN,
                }
            }
            "day_of_month" => dt.day() as f64,
            "day_of_week" => dt.weekday().num_days_from_sunday() as f64,
            "day_of_year" => dt.ordinal() as f64,
            "hour" => dt.hour() as f64,
            "minute" => dt.minute() as f64,
            "month" => dt.month() as f64,
            _ => dt.year() as f64,
        }
    };
    if c.args.args.is_empty() {
        return Ok(Val::Vector(vec![Smp {
            labels: Labels::new(),
            t,
            v: f(t.div_euclid(1000)),
        }]));
    }
    let v = ev.eval_vector(arg(c, 0)?, t)?;
    let out: Vec<Smp> = v
        .into_iter()
        .map(|s| Smp {
            labels: drop_name(&s.labels),
            t,
            v: f(go_f64_to_i64(s.v)),
        })
        .collect();
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

/// Go's `int64(f)` on amd64: truncation; NaN and out-of-range give i64::MIN.
fn go_f64_to_i64(f: f64) -> i64 {
    if f.is_nan() || !(-9.223372036854776e18..9.223372036854776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

fn histogram_quantile(ev: &Ev, c: &Call, t: i64) -> Result<Val, RulesError> {
    let q = ev.eval_scalar(arg(c, 0)?, t)?;
    let v = ev.eval_vector(arg(c, 1)?, t)?;
    let mut index: std::collections::HashMap<Labels, usize> = Default::default();
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    for s in v {
        let Some(ub) = s.labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        let mut key = s.labels.clone();
        key.remove("le");
        let i = match index.get(&key) {
            Some(i) => *i,
            None => {
                let mut out_labels = key.clone();
                out_labels.remove(METRIC_NAME);
                index.insert(key, groups.len());
                groups.push((out_labels, Vec::new()));
                groups.len() - 1
            }
        };
        groups[i].1.push((ub, s.v));
    }
    let legacy = ev.opts.compat == Compat::Prometheus2;
    let out: Vec<Smp> = groups
        .into_iter()
        .map(|(labels, mut buckets)| Smp {
            labels,
            t,
            v: bucket_quantile(q, &mut buckets, legacy),
        })
        .collect();
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

/// Go's `almost.Equal` (relative tolerance, with a floor near zero).
fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::MIN_POSITIVE;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < eps * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// Prometheus' classic-histogram quantile over `(upper bound, cumulative count)` pairs.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)], legacy: bool) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce equal upper bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, cnt) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += cnt,
            _ => merged.push((ub, cnt)),
        }
    }
    let mut b = merged;
    // Monotonicity.
    if legacy {
        let mut max = b[0].1;
        for x in b.iter_mut().skip(1) {
            if x.1 > max {
                max = x.1;
            } else if x.1 < max {
                x.1 = max;
            }
        }
    } else {
        let mut prev = b[0].1;
        for x in b.iter_mut().skip(1) {
            let curr = x.1;
            if curr == prev {
                continue;
            }
            if almost_equal(prev, curr, 1e-12) {
                x.1 = prev;
                continue;
            }
            if curr < prev {
                x.1 = prev;
                continue;
            }
            prev = curr;
        }
    }
    if b.len() < 2 {
        return f64::NAN;
    }
    let observations = b[b.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // First bucket (among all but the last) whose count reaches the rank.
    let n = b.len() - 1;
    let idx = b[..n].partition_point(|x| x.1 < rank);
    if idx == n {
        return b[n - 1].0;
    }
    if idx == 0 && b[0].0 <= 0.0 {
        return b[0].0;
    }
    let mut start = 0.0;
    let end = b[idx].0;
    let mut count = b[idx].1;
    if idx > 0 {
        start = b[idx - 1].0;
        count -= b[idx - 1].1;
        rank -= b[idx - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Functions over a range vector.
fn range_function(ev: &Ev, c: &Call, t: i64) -> Result<Val, RulesError> {
    let name = c.func.name;
    // Position of the range argument and the scalars before/after it.
    let (range_idx, scalars): (usize, Vec<f64>) = match name {
        "quantile_over_time" => (1, vec![ev.eval_scalar(arg(c, 0)?, t)?]),
        "predict_linear" => (0, vec![ev.eval_scalar(arg(c, 1)?, t)?]),
        "holt_winters" | "double_exponential_smoothing" => (
            0,
            vec![
                ev.eval_scalar(arg(c, 1)?, t)?,
                ev.eval_scalar(arg(c, 2)?, t)?,
            ],
        ),
        "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "deriv"
        | "changes"
        | "resets"
        | "avg_over_time"
        | "min_over_time"
        | "max_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "last_over_time"
        | "first_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "present_over_time"
        | "absent_over_time"
        | "mad_over_time"
        | "ts_of_max_over_time"
        | "ts_of_min_over_time"
        | "ts_of_last_over_time" => (0, vec![]),
        other => return Err(err(format!("function {other:?} is not supported"))),
    };
    let range_expr = arg(c, range_idx)?;
    let ra = ev.eval_range_arg(range_expr, t)?;
    if name == "absent_over_time" {
        if ra.series.iter().any(|s| !s.points.is_empty()) {
            return Ok(Val::Vector(Vec::new()));
        }
        return Ok(Val::Vector(vec![Smp {
            labels: absent_labels(range_expr),
            t,
            v: 1.0,
        }]));
    }
    if let "holt_winters" | "double_exponential_smoothing" = name {
        let (sf, tf) = (scalars[0], scalars[1]);
        if sf <= 0.0 || sf >= 1.0 {
            return Err(err(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
            )));
        }
        if tf <= 0.0 || tf >= 1.0 {
            return Err(err(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
            )));
        }
    }
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let legacy = ev.p2();
    let mut out = Vec::with_capacity(ra.series.len());
    for s in &ra.series {
        if s.points.is_empty() {
            continue;
        }
        let v = match name {
            "rate" => extrapolated_rate(&ra, s, true, true, legacy),
            "increase" => extrapolated_rate(&ra, s, true, false, legacy),
            "delta" => extrapolated_rate(&ra, s, false, false, legacy),
            "irate" => instant_value(&s.points, true),
            "idelta" => instant_value(&s.points, false),
            "deriv" => {
                if s.points.len() < 2 {
                    None
                } else {
                    Some(linear_regression(&s.points, s.points[0].0, legacy).0)
                }
            }
            "predict_linear" => {
                if s.points.len() < 2 {
                    None
                } else {
                    let (slope, intercept) = linear_regression(&s.points, t, legacy);
                    Some(slope * scalars[0] + intercept)
                }
            }
            "changes" => {
                let mut n = 0.0;
                for w in s.points.windows(2) {
                    let (p, c) = (w[0].1, w[1].1);
                    if c != p && !(c.is_nan() && p.is_nan()) {
                        n += 1.0;
                    }
                }
                Some(n)
            }
            "resets" => {
                let mut n = 0.0;
                for w in s.points.windows(2) {
                    if w[1].1 < w[0].1 {
                        n += 1.0;
                    }
                }
                Some(n)
            }
            "avg_over_time" => Some(avg_over_time(&s.points, legacy)),
            "sum_over_time" => {
                let (mut sum, mut cc) = (0.0, 0.0);
                for p in &s.points {
                    (sum, cc) = kahan_inc(p.1, sum, cc, legacy);
                }
                Some(if sum.is_infinite() { sum } else { sum + cc })
            }
            "min_over_time" | "max_over_time" => {
                let max = name == "max_over_time";
                let mut m = s.points[0].1;
                for p in &s.points {
                    let better = if max { p.1 > m } else { p.1 < m };
                    if better || m.is_nan() {
                        m = p.1;
                    }
                }
                Some(m)
            }
            "ts_of_max_over_time" | "ts_of_min_over_time" => {
                let max = name == "ts_of_max_over_time";
                let mut m = s.points[0].1;
                let mut ts = s.points[0].0;
                for p in &s.points {
                    let better = if max { p.1 >= m } else { p.1 <= m };
                    if better || m.is_nan() {
                        m = p.1;
                        ts = p.0;
                    }
                }
                Some(ts as f64 / 1000.0)
            }
            "ts_of_last_over_time" => Some(s.points[s.points.len() - 1].0 as f64 / 1000.0),
            "count_over_time" => Some(s.points.len() as f64),
            "last_over_time" => Some(s.points[s.points.len() - 1].1),
            "first_over_time" => Some(s.points[0].1),
            "present_over_time" => Some(1.0),
            "quantile_over_time" => {
                let mut vals: Vec<f64> = s.points.iter().map(|p| p.1).collect();
                Some(quantile(scalars[0], &mut vals))
            }
            "mad_over_time" => {
                let mut vals: Vec<f64> = s.points.iter().map(|p| p.1).collect();
                let median = quantile(0.5, &mut vals);
                let mut dev: Vec<f64> = s.points.iter().map(|p| (p.1 - median).abs()).collect();
                Some(quantile(0.5, &mut dev))
            }
            "stddev_over_time" | "stdvar_over_time" => {
                let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) =
                    (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
                for p in &s.points {
                    count += 1.0;
                    let delta = p.1 - (mean + c_mean);
                    (mean, c_mean) = kahan_inc(delta / count, mean, c_mean, legacy);
                    (aux, c_aux) = kahan_inc(delta * (p.1 - (mean + c_mean)), aux, c_aux, legacy);
                }
                let var = (aux + c_aux) / count;
                Some(if name == "stddev_over_time" {
                    var.sqrt()
                } else {
                    var
                })
            }
            "holt_winters" | "double_exponential_smoothing" => {
                double_exponential_smoothing(&s.points, scalars[0], scalars[1])
            }
            _ => None,
        };
        if let Some(v) = v {
            out.push(Smp {
                labels: if keep_name {
                    s.labels.clone()
                } else {
                    drop_name(&s.labels)
                },
                t,
                v,
            });
        }
    }
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

/// Prometheus' `extrapolatedRate` for `rate`, `increase` and `delta`.
fn extrapolated_rate(
    ra: &RangeArg,
    s: &RSeries,
    is_counter: bool,
    is_rate: bool,
    legacy: bool,
) -> Option<f64> {
    let pts = &s.points;
    if pts.len() < 2 {
        return None;
    }
    let range_start = ra.ref_ms - ra.range_ms;
    let range_end = ra.ref_ms;
    let first = pts[0];
    let last = pts[pts.len() - 1];
    let mut result = last.1 - first.1;
    if is_counter {
        let mut prev = first.1;
        for p in &pts[1..] {
            if p.1 < prev {
                result += prev;
            }
            prev = p.1;
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg = sampled / (pts.len() - 1) as f64;
    let threshold = avg * 1.1;
    let mut interval = sampled;
    if legacy {
        if is_counter && result > 0.0 && first.1 >= 0.0 {
            let to_zero = sampled * (first.1 / result);
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
        interval += if to_start < threshold {
            to_start
        } else {
            avg / 2.0
        };
        interval += if to_end < threshold {
            to_end
        } else {
            avg / 2.0
        };
    } else {
        if to_start >= threshold {
            to_start = avg / 2.0;
        }
        if is_counter && result > 0.0 && first.1 >= 0.0 {
            let to_zero = sampled * (first.1 / result);
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
        interval += to_start;
        if to_end >= threshold {
            to_end = avg / 2.0;
        }
        interval += to_end;
    }
    let mut factor = interval / sampled;
    if is_rate {
        factor /= ra.range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` / `idelta`: the last two samples.
fn instant_value(pts: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (p0, p1) = (pts[pts.len() - 2], pts[pts.len() - 1]);
    let interval = p1.0 - p0.0;
    if interval == 0 {
        return None;
    }
    // A counter reset (only a real decrease, never NaN) leaves the last value as is.
    let reset = is_rate && p1.1 < p0.1;
    let mut v = if reset { p1.1 } else { p1.1 - p0.1 };
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares slope and intercept (at `intercept_t`), with Kahan sums.
fn linear_regression(pts: &[(i64, f64)], intercept_t: i64, legacy: bool) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].1;
    let mut const_y = true;
    for (i, p) in pts.iter().enumerate() {
        if const_y && i > 0 && p.1 != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.0 - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx, legacy);
        (sy, cy) = kahan_inc(p.1, sy, cy, legacy);
        (sxy, cxy) = kahan_inc(x * p.1, sxy, cxy, legacy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2, legacy);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

fn avg_over_time(pts: &[(i64, f64)], legacy: bool) -> f64 {
    if legacy {
        let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
        for p in pts {
            let v = p.1;
            count += 1.0;
            if mean.is_infinite() {
                if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                    continue;
                }
                if !v.is_infinite() && !v.is_nan() {
                    continue;
                }
            }
            (mean, c) = kahan_inc(v / count - mean / count, mean, c, true);
        }
        if mean.is_infinite() {
            return mean;
        }
        return mean + c;
    }
    let (mut sum, mut count) = (pts[0].1, 1.0f64);
    let (mut mean, mut c) = (0.0f64, 0.0f64);
    let mut incremental = false;
    for (i, p) in pts[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.1, sum, c, false);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.1 / count, q * mean, q * c, false);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn double_exponential_smoothing(pts: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    let l = pts.len();
    if l < 2 {
        return None;
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| {
        if i == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        }
    };
    let (mut s0, mut s1) = (0.0f64, pts[0].1);
    let mut b = pts[1].1 - pts[0].1;
    for (i, p) in pts.iter().enumerate().skip(1) {
        let x = sf * p.1;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_pow_integer_powers_and_specials() {
        assert_eq!(go_pow(2.0, 10.0), 1024.0);
        assert_eq!(go_pow(2.0, -2.0), 0.25);
        assert!(go_pow(-8.0, 1.0 / 3.0).is_nan());
        assert_eq!(go_pow(9.0, 0.5), 3.0);
        assert_eq!(go_pow(0.0, -1.0), f64::INFINITY);
        assert_eq!(go_pow(-0.0, -1.0), f64::NEG_INFINITY);
        assert_eq!(go_pow(f64::NAN, 0.0), 1.0);
        assert_eq!(go_pow(10.0, 3.0), 1000.0);
        assert_eq!(go_pow(1.5, 2.0), 2.25);
        assert!((go_pow(2.0, 0.75) - 2f64.powf(0.75)).abs() < 1e-15);
    }

    #[test]
    fn frexp_ldexp_roundtrip() {
        for x in [1.0, 0.75, 3.0, 1e-310, 1e300, -5.5] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m.abs()), "{x}: {m}");
            assert_eq!(ldexp(m, e), x);
        }
    }

    #[test]
    fn bucket_quantile_interpolates() {
        let mut b = vec![(0.1, 10.0), (0.5, 20.0), (1.0, 30.0), (f64::INFINITY, 40.0)];
        assert_eq!(bucket_quantile(0.5, &mut b, false), 0.5);
        let mut b = vec![(1.0, 5.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.9, &mut b, false), 1.0);
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), Ordering::Greater);
    }
}
