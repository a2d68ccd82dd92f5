//! The PromQL engine: evaluates expressions parsed by the `promql-parser` crate over a
//! [`Storage`] (the live [`crate::window::MetricWindow`], or test data).
//!
//! Semantics follow Prometheus 3.x by default ([`Compat::Prometheus3`]); the few places
//! where Prometheus 2.x computes differently are switchable with [`Compat::Prometheus2`]
//! (see [`Compat`] for the list), so results can be compared bit for bit with an older
//! `promtool`.
//!
//! Owned here: selection with staleness and the lookback window, `offset`, `@`, range
//! vectors, subqueries, every function and aggregation the rule engine supports, binary
//! operators with vector matching, and [`format_value`] (Prometheus' JSON float text).

mod aggr;
mod binop;
mod eval;
mod functions;

use argus_schemas::Labels;
use promql_parser::label::Matcher;
use promql_parser::parser::Expr;

use crate::RulesError;

pub use eval::EngineOptions;

/// Where samples come from.
pub trait Storage: Send + Sync {
    /// Every series whose labels (including `__name__`) satisfy all `matchers`, with its
    /// samples in `[start_ms, end_ms]`, ascending; staleness markers are included as
    /// stored (the engine handles them). Series without samples in the range may be left out.
    /// Series come in the order the store first saw them (Prometheus' head returns
    /// unsorted selects in that order, and it decides the order of summation).
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)>;
}

/// Which Prometheus major version's arithmetic to reproduce where they differ.
///
/// | | Prometheus 3 | Prometheus 2 |
/// |---|---|---|
/// | range selectors, lookback | left-open `(t-r, t]` | closed `[t-r, t]` |
/// | subquery first step | first multiple of the step `> t-r` | `>= t-r` |
/// | `sum` | Kahan summation | plain summation |
/// | `avg`, `avg_over_time` | Kahan sum / count (incremental mean on overflow) | incremental mean |
/// | `rate`/`increase` | zero-point limit after the 1.1× threshold | before it |
/// | `histogram_quantile` | bucket counts within 1e-12 (relative) treated as equal | plain monotonicity fix |
/// | `label_replace` regex | `^(?s:re)$` | `^(?:re)$` |
/// | `stddev`/`stdvar` of ±Inf/NaN | NaN | arithmetic result |
/// | `atan2` | drops the metric name | keeps it |
/// | label names (`label_replace`, `count_values`, …) | any non-empty UTF-8 | `[a-zA-Z_][a-zA-Z0-9_]*` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    #[default]
    Prometheus3,
    Prometheus2,
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t_ms: i64,
    pub value: f64,
}

/// One series of a range vector (matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(i64, f64),
    String(i64, String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Value {
    /// The name Prometheus' API uses for this result type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(..) => "scalar",
            Value::String(..) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// The PromQL engine. Stateless apart from its options; share it freely.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Parses a query, with the parser's error text.
    pub fn parse(query: &str) -> Result<Expr, RulesError> {
        promql_parser::parser::parse(query).map_err(RulesError::Parse)
    }

    /// Evaluates `query` at `t_ms`.
    pub fn instant(&self, st: &dyn Storage, query: &str, t_ms: i64) -> Result<Value, RulesError> {
        let expr = Self::parse(query)?;
        self.instant_expr(st, &expr, t_ms)
    }

    /// Evaluates a parsed expression at `t_ms`.
    pub fn instant_expr(
        &self,
        st: &dyn Storage,
        expr: &Expr,
        t_ms: i64,
    ) -> Result<Value, RulesError> {
        eval::instant(&self.opts, st, expr, t_ms)
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms`; the result is a matrix
    /// sorted by labels.
    pub fn range(
        &self,
        st: &dyn Storage,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, RulesError> {
        let expr = Self::parse(query)?;
        self.range_expr(st, &expr, start_ms, end_ms, step_ms)
    }

    /// [`Engine::range`] over a parsed expression.
    pub fn range_expr(
        &self,
        st: &dyn Storage,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, RulesError> {
        eval::range(&self.opts, st, expr, start_ms, end_ms, step_ms)
    }
}

/// A float as Prometheus writes it in JSON: Go's `strconv.FormatFloat(v, 'f', -1, 64)`
/// (shortest text that reads back to the same float, never an exponent), with `+Inf`,
/// `-Inf` and `NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// Prometheus 3's form of a float in `le`/`quantile` label values (OpenMetrics: Go's
/// shortest `'g'` formatting, with `.0` added when there is neither `.` nor `e`). Values
/// that are not floats are returned unchanged.
pub fn normalize_float_label_value(v: &str) -> String {
    let f: f64 = match parse_go_float(v) {
        Some(f) => f,
        None => return v.to_string(),
    };
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format_go_g(f);
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Parses a float the way Go's `strconv.ParseFloat` accepts the common forms
/// (including `+Inf`, `-Inf`, `Inf`, `NaN`, case-insensitive).
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return if s.len() == t.len() {
            Some(f64::NAN)
        } else {
            None
        };
    }
    if lower.starts_with("0x") {
        return None;
    }
    let cleaned: String = s.chars().filter(|c| *c != '_').collect();
    cleaned.parse::<f64>().ok()
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, exponent form (at least
/// two exponent digits) when the decimal exponent is < -4 or >= 6.
pub(crate) fn format_go_g(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Shortest round-trip digits and decimal exponent from Rust's `{:e}`.
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let ndigits = digits.len() as i32;
    // Go's %g with the shortest precision switches to the exponent form when the
    // decimal exponent is < -4 or >= 6.
    let eprec = 6;
    let x = exp; // decimal exponent of the first digit
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if x < -4 || x >= eprec {
        out.push_str(&digits[..1]);
        if ndigits > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        if x < 0 {
            out.push('-');
        } else {
            out.push('+');
        }
        let ax = x.abs();
        if ax < 10 {
            out.push('0');
        }
        out.push_str(&ax.to_string());
    } else if x < 0 {
        out.push_str("0.");
        for _ in 0..(-x - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if x + 1 >= ndigits {
        out.push_str(&digits);
        for _ in 0..(x + 1 - ndigits) {
            out.push('0');
        }
    } else {
        let split = (x + 1) as usize;
        out.push_str(&digits[..split]);
        out.push('.');
        out.push_str(&digits[split..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_value_matches_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(-0.0), "-0");
        assert_eq!(format_value(0.30000000000000004), "0.30000000000000004");
    }

    #[test]
    fn label_floats_normalised_like_prometheus_3() {
        assert_eq!(normalize_float_label_value("1"), "1.0");
        assert_eq!(normalize_float_label_value("0"), "0.0");
        assert_eq!(normalize_float_label_value("0.25"), "0.25");
        assert_eq!(normalize_float_label_value("+Inf"), "+Inf");
        assert_eq!(normalize_float_label_value("1e3"), "1000.0");
        assert_eq!(normalize_float_label_value("1e21"), "1e+21");
        assert_eq!(normalize_float_label_value("1e6"), "1e+06");
        assert_eq!(normalize_float_label_value("123456.5"), "123456.5");
        assert_eq!(normalize_float_label_value("0.00001"), "1e-05");
        assert_eq!(normalize_float_label_value("abc"), "abc");
    }
}
