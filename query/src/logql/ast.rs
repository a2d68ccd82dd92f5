//! The LogQL syntax tree, as Loki 3.x documents the language. The parser
//! (`parser.rs`) produces it; the pipeline (`pipeline/`) and the metric evaluator
//! (`eval/`) consume it. Durations are nanoseconds (`i64`), as in Loki.

use std::fmt;

/// A whole query: either a log query (streams of lines) or a metric query (samples).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// `{selector} | stage | stage …`
#[derive(Debug, Clone, PartialEq)]
pub struct LogExpr {
    pub selector: Vec<LabelMatcher>,
    pub pipeline: Vec<Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~` (fully anchored RE2)
    Re,
    /// `!~`
    Nre,
}

/// One `name op "value"` matcher, used by stream selectors, string label filters and
/// `drop`/`keep` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

/// A pipeline stage, in the order written.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `|= "a" or "b"`, `!~ "re"`, `|> "<_> pattern"`, `|= ip("10.0.0.0/8")` …
    LineFilter(LineFilter),
    /// `| json`, `| logfmt`, `| regexp "…"`, `| pattern "…"`, `| unpack`
    Parser(Parser),
    /// `| level="error" and duration > 1s`
    LabelFilter(LabelFilterExpr),
    /// `| line_format "{{.a}}"`
    LineFormat(String),
    /// `| label_format a=b, c="{{.d}}"`
    LabelFormat(Vec<LabelFmt>),
    /// `| drop a, b="x"`
    Drop(Vec<LabelSelect>),
    /// `| keep a, b="x"`
    Keep(Vec<LabelSelect>),
    /// `| decolorize`
    Decolorize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Regex,
    /// `!~`
    NotRegex,
    /// `|>`
    Pattern,
    /// `!>`
    NotPattern,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// A string literal (double-quoted or backtick), unescaped.
    Literal(String),
    /// `ip("192.168.0.0/16")` (only with `|=` / `!=`)
    Ip(String),
}

/// One line filter with its `or` alternatives: `op v0 or v1 or v2`. For the
/// negative operators the alternatives all have to be absent (Loki's semantics).
#[derive(Debug, Clone, PartialEq)]
pub struct LineFilter {
    pub op: LineFilterOp,
    pub values: Vec<FilterValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Parser {
    /// `json` or `json a="path.to[0]", b`
    Json(Vec<ExtractParam>),
    /// `logfmt [--strict] [--keep-empty] [a="key", b]`
    Logfmt {
        strict: bool,
        keep_empty: bool,
        params: Vec<ExtractParam>,
    },
    /// `regexp "(?P<name>…)"`
    Regexp(String),
    /// `pattern "<ip> - <_>"`
    Pattern(String),
    /// `unpack`
    Unpack,
}

/// `label="expression"` (or bare `label`, whose expression is the label name).
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractParam {
    pub label: String,
    pub expression: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilterExpr {
    And(Box<LabelFilterExpr>, Box<LabelFilterExpr>),
    Or(Box<LabelFilterExpr>, Box<LabelFilterExpr>),
    /// `name = "v"`, `name =~ "re"` …
    String(LabelMatcher),
    /// `name > 10`, `name == 2.5`
    Number {
        name: String,
        op: CmpOp,
        value: f64,
    },
    /// `name > 250ms` (value in seconds)
    Duration {
        name: String,
        op: CmpOp,
        value: f64,
    },
    /// `name > 20MB` (value in bytes)
    Bytes {
        name: String,
        op: CmpOp,
        value: f64,
    },
    /// `name = ip("10.0.0.0/8")` (only `=` / `!=`)
    Ip {
        name: String,
        negate: bool,
        pattern: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabelFmt {
    /// `dst=src`
    Rename { dst: String, src: String },
    /// `dst="{{ template }}"`
    Template { dst: String, template: String },
}

/// An argument of `drop` / `keep`: a bare name, or a matcher on name and value.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelSelect {
    Name(String),
    Matcher(LabelMatcher),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrapConv {
    /// plain `unwrap x`: the value is parsed as a float
    None,
    /// `unwrap duration(x)` / `duration_seconds(x)`: Go duration → seconds
    Duration,
    /// `unwrap bytes(x)`: humanized bytes → bytes
    Bytes,
}

/// `| unwrap [conv(]label[)]` followed by optional label filters (`| __error__=""`).
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrap {
    pub label: String,
    pub conv: UnwrapConv,
    pub post_filters: Vec<LabelFilterExpr>,
}

/// The log-range part of a range aggregation: `{…} | … [5m] offset 1h`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRange {
    pub log: LogExpr,
    pub unwrap: Option<Unwrap>,
    /// range in nanoseconds
    pub range: i64,
    /// offset in nanoseconds (may be negative)
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    CountOverTime,
    Rate,
    RateCounter,
    BytesOverTime,
    BytesRate,
    AbsentOverTime,
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
}

impl RangeOp {
    /// Whether the operation needs `| unwrap`.
    /// `rate` works both ways (lines per second, or the unwrapped sum per second).
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }

    /// Whether the operation refuses `| unwrap`.
    pub fn forbids_unwrap(self) -> bool {
        matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// `without (…)` when true, `by (…)` when false
    pub without: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    And,
    Or,
    Unless,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VectorMatching {
    On(Vec<String>),
    Ignoring(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum GroupSide {
    /// `group_left(extra labels)`
    Left(Vec<String>),
    /// `group_right(extra labels)`
    Right(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BinModifier {
    pub return_bool: bool,
    pub matching: Option<VectorMatching>,
    pub group: Option<GroupSide>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricExpr {
    /// `count_over_time({…}[5m])`, `quantile_over_time(0.99, {…} | unwrap x [5m]) by (a)`
    RangeAgg {
        op: RangeOp,
        range: LogRange,
        /// the quantile for `quantile_over_time`
        param: Option<f64>,
        grouping: Option<Grouping>,
    },
    /// `sum by (a) (…)`, `topk(3, …)`
    VectorAgg {
        op: VectorOp,
        expr: Box<MetricExpr>,
        grouping: Option<Grouping>,
        /// k for `topk` / `bottomk`
        param: Option<f64>,
    },
    Binary {
        op: BinOp,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
        modifier: BinModifier,
    },
    /// A number literal (a scalar)
    Literal(f64),
    /// `vector(1)`
    Vector(f64),
    /// `label_replace(expr, "dst", "replacement", "src", "regex")`
    LabelReplace {
        expr: Box<MetricExpr>,
        dst: String,
        replacement: String,
        src: String,
        regex: String,
    },
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        })
    }
}
