//! The LogQL parser: text → [`Expr`], with errors as Loki 3.x gives them.
//!
//! A hand-written recursive-descent parser over the tokens of [`super::lexer`], with
//! precedence climbing for binary operators (Prometheus precedence: `or` <
//! `and`/`unless` < comparisons < `+ -` < `* / %` < `^`, the last right-associative).
//!
//! Errors follow Loki:
//! - syntax errors are `parse error at line L, col C: syntax error: unexpected X`
//!   (`, expecting A or B` when at most four tokens could follow, as Loki's goyacc
//!   parser words it), positioned at the offending token;
//! - lexing errors (`literal not terminated`, bad ranges …) carry their position;
//! - semantic errors Loki raises while parsing without a position (`parse error :
//!   invalid aggregation sum_over_time without unwrap`, bad regexes, the selector
//!   needing a non-empty-compatible matcher …) use line 0, col 0. Like Loki, errors
//!   found while building a node (a bad regex) stop parsing at once, whereas the
//!   checks Loki runs once the query parsed (unwrap use, parameters, binary operand
//!   types, the selector rule) are reported only if the whole query parsed, the
//!   outermost-leftmost one first.
//!
//! Literal-only binary operations are folded (`2 * 3` → `Literal(6)`), as Loki does;
//! comparisons between literals give 0 or 1.
//!
//! Label-filter chains keep Loki's grouping: `and` binds tighter than `or`, while a
//! `,` or a space ("`a="1" b="2"`") joins its left filter with everything that
//! follows (`a, b or c` is `a and (b or c)`).

use super::ast::{
    BinModifier, BinOp, CmpOp, Expr, ExtractParam, FilterValue, GroupSide, Grouping,
    LabelFilterExpr, LabelFmt, LabelMatcher, LabelSelect, LineFilter, LineFilterOp, LogExpr,
    LogRange, MatchOp, MetricExpr, Parser as LineParser, RangeOp, Stage, Unwrap, UnwrapConv,
    VectorMatching, VectorOp,
};
use super::lexer::{Tok, Token, tokenize};
use crate::error::{QueryError, Result};

/// Loki's limit on the length of a query.
const MAX_INPUT_SIZE: usize = 131_072;

/// Loki's text for a selector whose matchers all match the empty string.
pub const ERR_EMPTY_COMPATIBLE: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// Parses a whole query.
pub fn parse(query: &str) -> Result<Expr> {
    if query.len() >= MAX_INPUT_SIZE {
        return Err(QueryError::parse(
            0,
            0,
            format!("input size too long ({} > {MAX_INPUT_SIZE})", query.len()),
        ));
    }
    let mut p = Parser {
        toks: tokenize(query),
        pos: 0,
        stage_err: None,
        depth: 0,
        nodes: 0,
    };
    let (expr, deferred) = p.expr(0)?;
    if !matches!(p.peek(), Tok::Eof) {
        return Err(p.unexpected(&[]));
    }
    if let Some(msg) = deferred {
        return Err(QueryError::parse(0, 0, msg));
    }
    if let Some(e) = p.stage_err {
        return Err(e);
    }
    Ok(match expr {
        Operand::Log(l) => Expr::Log(l),
        Operand::Metric(m) => Expr::Metric(m),
    })
}

/// A semantic error found while parsing, reported only if the whole query parses.
type Deferred = Option<String>;

/// What an expression parsed to: binary operators accept both kinds syntactically
/// and reject log queries afterwards, as Loki does.
enum Operand {
    Log(LogExpr),
    Metric(MetricExpr),
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// an error Loki raises when building the pipeline (after validation)
    stage_err: Option<QueryError>,
    /// current nesting of parentheses and sub-expressions
    depth: usize,
    /// binary nodes built so far
    nodes: usize,
}

/// How deeply expressions may nest (the parser recurses; Loki has no such limit,
/// but a query must not be able to exhaust the stack).
const MAX_DEPTH: usize = 100;

/// How many binary nodes (label-filter `and`/`or`/`,`, binary operators) a query
/// may hold: chains of them make trees as deep, which later passes (and `Drop`)
/// walk recursively.
const MAX_NODES: usize = 2000;

fn semantic(msg: impl Into<String>) -> QueryError {
    QueryError::parse(0, 0, msg)
}

fn range_op(t: &Tok) -> Option<RangeOp> {
    Some(match t {
        Tok::CountOverTime => RangeOp::CountOverTime,
        Tok::Rate => RangeOp::Rate,
        Tok::RateCounter => RangeOp::RateCounter,
        Tok::BytesOverTime => RangeOp::BytesOverTime,
        Tok::BytesRate => RangeOp::BytesRate,
        Tok::AbsentOverTime => RangeOp::AbsentOverTime,
        Tok::SumOverTime => RangeOp::SumOverTime,
        Tok::AvgOverTime => RangeOp::AvgOverTime,
        Tok::MinOverTime => RangeOp::MinOverTime,
        Tok::MaxOverTime => RangeOp::MaxOverTime,
        Tok::StddevOverTime => RangeOp::StddevOverTime,
        Tok::StdvarOverTime => RangeOp::StdvarOverTime,
        Tok::QuantileOverTime => RangeOp::QuantileOverTime,
        Tok::FirstOverTime => RangeOp::FirstOverTime,
        Tok::LastOverTime => RangeOp::LastOverTime,
        _ => return None,
    })
}

/// The operation's name as Loki spells it.
pub fn range_op_name(op: RangeOp) -> &'static str {
    match op {
        RangeOp::CountOverTime => "count_over_time",
        RangeOp::Rate => "rate",
        RangeOp::RateCounter => "rate_counter",
        RangeOp::BytesOverTime => "bytes_over_time",
        RangeOp::BytesRate => "bytes_rate",
        RangeOp::AbsentOverTime => "absent_over_time",
        RangeOp::SumOverTime => "sum_over_time",
        RangeOp::AvgOverTime => "avg_over_time",
        RangeOp::MinOverTime => "min_over_time",
        RangeOp::MaxOverTime => "max_over_time",
        RangeOp::StddevOverTime => "stddev_over_time",
        RangeOp::StdvarOverTime => "stdvar_over_time",
        RangeOp::QuantileOverTime => "quantile_over_time",
        RangeOp::FirstOverTime => "first_over_time",
        RangeOp::LastOverTime => "last_over_time",
    }
}

fn vector_op(t: &Tok) -> Option<VectorOp> {
    Some(match t {
        Tok::Sum => VectorOp::Sum,
        Tok::Avg => VectorOp::Avg,
        Tok::Min => VectorOp::Min,
        Tok::Max => VectorOp::Max,
        Tok::Count => VectorOp::Count,
        Tok::Stddev => VectorOp::Stddev,
        Tok::Stdvar => VectorOp::Stdvar,
        Tok::Topk => VectorOp::Topk,
        Tok::Bottomk => VectorOp::Bottomk,
        Tok::Sort => VectorOp::Sort,
        Tok::SortDesc => VectorOp::SortDesc,
        _ => return None,
    })
}

/// The operation's name as Loki spells it.
pub fn vector_op_name(op: VectorOp) -> &'static str {
    match op {
        VectorOp::Sum => "sum",
        VectorOp::Avg => "avg",
        VectorOp::Min => "min",
        VectorOp::Max => "max",
        VectorOp::Count => "count",
        VectorOp::Stddev => "stddev",
        VectorOp::Stdvar => "stdvar",
        VectorOp::Topk => "topk",
        VectorOp::Bottomk => "bottomk",
        VectorOp::Sort => "sort",
        VectorOp::SortDesc => "sort_desc",
    }
}

/// Binary operator, precedence, right-associativity.
fn binop(t: &Tok) -> Option<(BinOp, u8, bool)> {
    Some(match t {
        Tok::Or => (BinOp::Or, 1, false),
        Tok::And => (BinOp::And, 2, false),
        Tok::Unless => (BinOp::Unless, 2, false),
        Tok::CmpEq => (BinOp::Eq, 3, false),
        Tok::Neq => (BinOp::Neq, 3, false),
        Tok::Gt => (BinOp::Gt, 3, false),
        Tok::Gte => (BinOp::Gte, 3, false),
        Tok::Lt => (BinOp::Lt, 3, false),
        Tok::Lte => (BinOp::Lte, 3, false),
        Tok::Add => (BinOp::Add, 4, false),
        Tok::Sub => (BinOp::Sub, 4, false),
        Tok::Mul => (BinOp::Mul, 5, false),
        Tok::Div => (BinOp::Div, 5, false),
        Tok::Mod => (BinOp::Mod, 5, false),
        Tok::Pow => (BinOp::Pow, 6, true),
        _ => return None,
    })
}

/// The operator as written.
pub fn binop_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Pow => "^",
        BinOp::Eq => "==",
        BinOp::Neq => "!=",
        BinOp::Gt => ">",
        BinOp::Gte => ">=",
        BinOp::Lt => "<",
        BinOp::Lte => "<=",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::Unless => "unless",
    }
}

/// Evaluates a binary operation between two literals, as Loki folds them (division
/// and modulo by zero give NaN; comparisons give 1 or 0).
pub fn fold(op: BinOp, a: f64, b: f64) -> f64 {
    let truth = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div if b == 0.0 => f64::NAN,
        BinOp::Div => a / b,
        BinOp::Mod if b == 0.0 => f64::NAN,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Eq => truth(a == b),
        BinOp::Neq => truth(a != b),
        BinOp::Gt => truth(a > b),
        BinOp::Gte => truth(a >= b),
        BinOp::Lt => truth(a < b),
        BinOp::Lte => truth(a <= b),
        // set operators never get two literals (rejected before folding)
        BinOp::And | BinOp::Or | BinOp::Unless => f64::NAN,
    }
}

/// Go's `%f`.
fn go_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v:.6}")
    }
}

/// Loki's Go type name for a log query used where a metric query is needed.
fn log_type(l: &LogExpr) -> &'static str {
    if l.pipeline.is_empty() {
        "*syntax.MatchersExpr"
    } else {
        "*syntax.PipelineExpr"
    }
}

/// A number literal as Go's `strconv.ParseFloat` reads it.
fn parse_float(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "strconv.ParseFloat: parsing {text:?}: value out of range"
        )),
    }
}

/// Checks a regex as Go's `regexp/syntax` would, returning Go's error text
/// (`error parsing regexp: missing closing ): `(a``) when it does not compile.
pub fn check_regex(re: &str) -> std::result::Result<(), String> {
    use regex_syntax::ast::ErrorKind as K;
    let ast = match regex_syntax::ast::parse::Parser::new().parse(re) {
        Ok(ast) => ast,
        Err(e) => {
            let span = e.span();
            let text = re.get(span.start.offset..span.end.offset).unwrap_or("");
            let from_start = re.get(span.start.offset..).unwrap_or("");
            let (code, expr): (String, &str) = match e.kind() {
                K::GroupUnclosed => ("missing closing )".into(), re),
                K::GroupUnopened => ("unexpected )".into(), re),
                K::ClassUnclosed => ("missing closing ]".into(), from_start),
                K::EscapeUnrecognized | K::UnsupportedBackreference => {
                    ("invalid escape sequence".into(), text)
                }
                K::EscapeUnexpectedEof => ("trailing backslash at end of expression".into(), ""),
                K::RepetitionMissing => {
                    let op = if text.is_empty() {
                        // the operator itself, with a lazy `?` if there is one
                        let n = from_start.chars().next().map_or(0, char::len_utf8);
                        let n = if from_start[n..].starts_with('?') {
                            n + 1
                        } else {
                            n
                        };
                        &from_start[..n]
                    } else {
                        text
                    };
                    ("missing argument to repetition operator".into(), op)
                }
                K::RepetitionCountInvalid | K::DecimalInvalid => {
                    ("invalid repeat count".into(), text)
                }
                K::ClassRangeInvalid => ("invalid character class range".into(), text),
                K::GroupNameInvalid | K::GroupNameEmpty | K::GroupNameUnexpectedEof => {
                    ("invalid named capture".into(), from_start)
                }
                K::UnsupportedLookAround | K::FlagUnrecognized | K::FlagUnexpectedEof => (
                    "invalid or unsupported Perl syntax".into(),
                    from_start.get(..3).unwrap_or(from_start),
                ),
                K::NestLimitExceeded(_) => ("expression nests too deeply".into(), re),
                other => (other.to_string(), text),
            };
            return Err(format!("error parsing regexp: {code}: `{expr}`"));
        }
    };
    if let Err(e) = regex_syntax::hir::translate::Translator::new().translate(re, &ast) {
        return Err(format!("error parsing regexp: {}", e.kind()));
    }
    Ok(())
}

/// Whether `re`, anchored at both ends, matches the empty string.
fn regex_matches_empty(re: &str) -> bool {
    regex::Regex::new(&format!("^(?s:{re})$")).is_ok_and(|r| r.is_match(""))
}

fn matches_empty(m: &LabelMatcher) -> bool {
    match m.op {
        MatchOp::Eq => m.value.is_empty(),
        MatchOp::Neq => !m.value.is_empty(),
        MatchOp::Re => regex_matches_empty(&m.value),
        MatchOp::Nre => !regex_matches_empty(&m.value),
    }
}

/// Loki's check that a selector selects something specific.
fn selector_error(ms: &[LabelMatcher]) -> Deferred {
    if ms.iter().all(matches_empty) {
        Some(ERR_EMPTY_COMPATIBLE.to_string())
    } else {
        None
    }
}

/// Builds a matcher, rejecting a regex that does not compile (at once, as Loki).
fn new_matcher(name: String, op: MatchOp, value: String) -> Result<LabelMatcher> {
    if matches!(op, MatchOp::Re | MatchOp::Nre) {
        check_regex(&value).map_err(semantic)?;
    }
    Ok(LabelMatcher { name, op, value })
}

fn match_op(t: &Tok) -> Option<MatchOp> {
    Some(match t {
        Tok::Eq => MatchOp::Eq,
        Tok::Neq => MatchOp::Neq,
        Tok::Re => MatchOp::Re,
        Tok::Nre => MatchOp::Nre,
        _ => return None,
    })
}

impl Parser {
    fn token(&self) -> &Token {
        &self.toks[self.pos]
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let last = self.toks.len() - 1;
        &self.toks[(self.pos + n).min(last)].tok
    }

    fn advance(&mut self) {
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
    }

    /// The error for the current token: a lexing error as such, else Loki's
    /// `syntax error: unexpected X[, expecting A or B]`.
    fn unexpected(&self, expecting: &[&str]) -> QueryError {
        let t = self.token();
        if let Tok::Error(msg) = &t.tok {
            return QueryError::parse(t.line, t.col, msg.clone());
        }
        let mut msg = format!("syntax error: unexpected {}", t.tok.name());
        if !expecting.is_empty() && expecting.len() <= 4 {
            msg.push_str(", expecting ");
            msg.push_str(&expecting.join(" or "));
        }
        QueryError::parse(t.line, t.col, msg)
    }

    /// Consumes a token without a value (compared by kind).
    fn expect(&mut self, want: &Tok, expecting: &[&str]) -> Result<()> {
        if std::mem::discriminant(self.peek()) == std::mem::discriminant(want) {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(expecting))
        }
    }

    fn expect_string(&mut self, expecting: &[&str]) -> Result<String> {
        if let Tok::Str(s) = self.peek() {
            let s = s.clone();
            self.advance();
            Ok(s)
        } else {
            Err(self.unexpected(expecting))
        }
    }

    fn expect_ident(&mut self, expecting: &[&str]) -> Result<String> {
        if let Tok::Ident(s) = self.peek() {
            let s = s.clone();
            self.advance();
            Ok(s)
        } else {
            Err(self.unexpected(expecting))
        }
    }

    // ---- expressions ----

    /// Enters one nesting level.
    fn nest(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.token();
            return Err(QueryError::parse(
                t.line,
                t.col,
                "syntax error: expression nests too deeply",
            ));
        }
        Ok(())
    }

    /// Counts one binary node.
    fn count_node(&mut self) -> Result<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            let t = self.token();
            return Err(QueryError::parse(
                t.line,
                t.col,
                "syntax error: expression nests too deeply",
            ));
        }
        Ok(())
    }

    fn expr(&mut self, min_prec: u8) -> Result<(Operand, Deferred)> {
        self.nest()?;
        let r = self.expr_inner(min_prec);
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, min_prec: u8) -> Result<(Operand, Deferred)> {
        let (mut lhs, mut deferred) = self.primary()?;
        while let Some((op, prec, right)) = binop(self.peek()) {
            if prec < min_prec {
                break;
            }
            self.count_node()?;
            self.advance();
            let modifier = self.bin_modifier()?;
            let (rhs, rd) = self.expr(if right { prec } else { prec + 1 })?;
            (lhs, deferred) = make_binop(op, modifier, lhs, deferred, rhs, rd);
        }
        Ok((lhs, deferred))
    }

    fn primary(&mut self) -> Result<(Operand, Deferred)> {
        let tok = self.peek().clone();
        if let Some(op) = range_op(&tok) {
            let (m, d) = self.range_agg(op)?;
            return Ok((Operand::Metric(m), d));
        }
        if let Some(op) = vector_op(&tok) {
            let (m, d) = self.vector_agg(op)?;
            return Ok((Operand::Metric(m), d));
        }
        match tok {
            Tok::LBrace => {
                let selector = self.selector()?;
                let pipeline = self.pipeline(false)?;
                let d = selector_error(&selector);
                Ok((Operand::Log(LogExpr { selector, pipeline }), d))
            }
            Tok::LParen => {
                self.advance();
                let inner = self.expr(0)?;
                self.expect(&Tok::RParen, &[])?;
                Ok(inner)
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => {
                let (v, d) = self.literal()?;
                Ok((Operand::Metric(MetricExpr::Literal(v)), d))
            }
            Tok::Vector => {
                self.advance();
                self.expect(&Tok::LParen, &["("])?;
                let Tok::Number(n) = self.peek().clone() else {
                    return Err(self.unexpected(&["NUMBER"]));
                };
                self.advance();
                self.expect(&Tok::RParen, &[")"])?;
                let (v, d) = match parse_float(&n) {
                    Ok(v) => (v, None),
                    Err(e) => (
                        0.0,
                        Some(format!("unable to parse vectorExpr as a float: {e}")),
                    ),
                };
                Ok((Operand::Metric(MetricExpr::Vector(v)), d))
            }
            Tok::LabelReplace => {
                let (m, d) = self.label_replace()?;
                Ok((Operand::Metric(m), d))
            }
            _ => Err(self.unexpected(&[])),
        }
    }

    /// `NUMBER`, `+NUMBER`, `-NUMBER`.
    fn literal(&mut self) -> Result<(f64, Deferred)> {
        let neg = match self.peek() {
            Tok::Add => {
                self.advance();
                false
            }
            Tok::Sub => {
                self.advance();
                true
            }
            _ => false,
        };
        let Tok::Number(n) = self.peek().clone() else {
            return Err(self.unexpected(&["NUMBER"]));
        };
        self.advance();
        Ok(match parse_float(&n) {
            Ok(v) => (if neg { -v } else { v }, None),
            Err(e) => (
                0.0,
                Some(format!("unable to parse literal as a float: {e}")),
            ),
        })
    }

    /// The metric expression inside `sum(…)`, `label_replace(…)`: a log query there
    /// is a syntax error at the token after it.
    fn metric_arg(&mut self) -> Result<(MetricExpr, Deferred)> {
        match self.expr(0)? {
            (Operand::Metric(m), d) => Ok((m, d)),
            (Operand::Log(_), _) => Err(self.unexpected(&[])),
        }
    }

    fn bin_modifier(&mut self) -> Result<BinModifier> {
        let mut m = BinModifier::default();
        if matches!(self.peek(), Tok::Bool) {
            self.advance();
            m.return_bool = true;
        }
        let on = match self.peek() {
            Tok::On => true,
            Tok::Ignoring => false,
            _ => return Ok(m),
        };
        self.advance();
        self.expect(&Tok::LParen, &["("])?;
        let labels = self.label_list()?;
        m.matching = Some(if on {
            VectorMatching::On(labels)
        } else {
            VectorMatching::Ignoring(labels)
        });
        let left = match self.peek() {
            Tok::GroupLeft => true,
            Tok::GroupRight => false,
            _ => return Ok(m),
        };
        self.advance();
        let mut extra = Vec::new();
        if matches!(self.peek(), Tok::LParen) {
            self.advance();
            extra = self.label_list()?;
        }
        m.group = Some(if left {
            GroupSide::Left(extra)
        } else {
            GroupSide::Right(extra)
        });
        Ok(m)
    }

    /// `a, b, c)` after an opening parenthesis (possibly empty).
    fn label_list(&mut self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if matches!(self.peek(), Tok::RParen) {
            self.advance();
            return Ok(out);
        }
        out.push(self.expect_ident(&["IDENTIFIER", ")"])?);
        loop {
            match self.peek() {
                Tok::Comma => {
                    self.advance();
                    out.push(self.expect_ident(&["IDENTIFIER"])?);
                }
                Tok::RParen => {
                    self.advance();
                    return Ok(out);
                }
                _ => return Err(self.unexpected(&[",", ")"])),
            }
        }
    }

    fn grouping_opt(&mut self) -> Result<Option<Grouping>> {
        let without = match self.peek() {
            Tok::By => false,
            Tok::Without => true,
            _ => return Ok(None),
        };
        self.advance();
        self.expect(&Tok::LParen, &["("])?;
        let labels = self.label_list()?;
        Ok(Some(Grouping { without, labels }))
    }

    fn range_agg(&mut self, op: RangeOp) -> Result<(MetricExpr, Deferred)> {
        self.advance();
        self.expect(&Tok::LParen, &["("])?;
        let mut param_text = None;
        if let Tok::Number(n) = self.peek() {
            param_text = Some(n.clone());
            self.advance();
            self.expect(&Tok::Comma, &[","])?;
        }
        let start: &[&str] = if param_text.is_some() {
            &["{", "("]
        } else {
            &["NUMBER", "{", "("]
        };
        let range = self.log_range(start)?;
        self.expect(&Tok::RParen, &[")"])?;
        let grouping = self.grouping_opt()?;

        let name = range_op_name(op);
        let mut param = None;
        let own: Deferred = (|| {
            match &param_text {
                Some(t) if op != RangeOp::QuantileOverTime => {
                    return Some(format!("parameter {t} not supported for operation {name}"));
                }
                Some(t) => match parse_float(t) {
                    Ok(v) => param = Some(v),
                    Err(e) => return Some(format!("invalid parameter for operation {name}: {e}")),
                },
                None if op == RangeOp::QuantileOverTime => {
                    return Some(format!("parameter required for operation {name}"));
                }
                None => {}
            }
            if grouping.is_some()
                && !matches!(
                    op,
                    RangeOp::AvgOverTime
                        | RangeOp::StddevOverTime
                        | RangeOp::StdvarOverTime
                        | RangeOp::QuantileOverTime
                        | RangeOp::MaxOverTime
                        | RangeOp::MinOverTime
                        | RangeOp::FirstOverTime
                        | RangeOp::LastOverTime
                )
            {
                return Some(format!("grouping not allowed for {name} aggregation"));
            }
            if range.unwrap.is_some() {
                if matches!(
                    op,
                    RangeOp::CountOverTime | RangeOp::BytesOverTime | RangeOp::BytesRate
                ) {
                    return Some(format!("invalid aggregation {name} with unwrap"));
                }
            } else if !matches!(
                op,
                RangeOp::CountOverTime
                    | RangeOp::Rate
                    | RangeOp::BytesOverTime
                    | RangeOp::BytesRate
                    | RangeOp::AbsentOverTime
            ) {
                return Some(format!("invalid aggregation {name} without unwrap"));
            }
            None
        })();
        let deferred = own.or_else(|| selector_error(&range.log.selector));
        Ok((
            MetricExpr::RangeAgg {
                op,
                range,
                param,
                grouping,
            },
            deferred,
        ))
    }

    /// The argument of a range aggregation, in any of Loki's forms:
    /// `{…} [5m] [offset 1h] [| stages] [| unwrap x]`,
    /// `{…} [| stages] [| unwrap x] [5m] [offset 1h]`, and parenthesised variants.
    fn log_range(&mut self, start: &[&str]) -> Result<LogRange> {
        match self.peek() {
            Tok::LBrace => {
                let selector = self.selector()?;
                if let Tok::Range(r) = *self.peek() {
                    self.advance();
                    return self.after_range(selector, r);
                }
                let pipeline = self.pipeline(true)?;
                let unwrap = self.unwrap_opt()?;
                let range = self.expect_range(&unwrap)?;
                let offset = self.offset_opt()?;
                Ok(LogRange {
                    log: LogExpr { selector, pipeline },
                    unwrap,
                    range,
                    offset,
                })
            }
            Tok::LParen => {
                self.advance();
                match self.peek() {
                    Tok::LBrace => {}
                    Tok::LParen => {
                        self.nest()?;
                        let inner = self.log_range(&["{", "("]);
                        self.depth -= 1;
                        let inner = inner?;
                        self.expect(&Tok::RParen, &[")"])?;
                        return Ok(inner);
                    }
                    _ => return Err(self.unexpected(&["{", "("])),
                }
                let selector = self.selector()?;
                if let Tok::Range(r) = *self.peek() {
                    self.advance();
                    let inner = self.after_range(selector, r)?;
                    self.expect(&Tok::RParen, &[")"])?;
                    return Ok(inner);
                }
                let pipeline = self.pipeline(true)?;
                let mut unwrap = self.unwrap_opt()?;
                self.expect(&Tok::RParen, &[])?;
                let range = self.expect_range(&None)?;
                let offset = self.offset_opt()?;
                if pipeline.is_empty() && unwrap.is_none() {
                    // only `| unwrap …` may follow `({…}) [range]`
                    if matches!(self.peek(), Tok::Pipe) && !matches!(self.peek_at(1), Tok::Unwrap) {
                        self.advance();
                        return Err(self.unexpected(&["unwrap"]));
                    }
                    unwrap = self.unwrap_opt()?;
                }
                Ok(LogRange {
                    log: LogExpr { selector, pipeline },
                    unwrap,
                    range,
                    offset,
                })
            }
            _ => Err(self.unexpected(start)),
        }
    }

    /// `[offset d] [| stages] [| unwrap x]` after `{…}[range]`.
    fn after_range(&mut self, selector: Vec<LabelMatcher>, range: i64) -> Result<LogRange> {
        let offset = self.offset_opt()?;
        let pipeline = self.pipeline(true)?;
        let unwrap = self.unwrap_opt()?;
        Ok(LogRange {
            log: LogExpr { selector, pipeline },
            unwrap,
            range,
            offset,
        })
    }

    fn expect_range(&mut self, unwrap: &Option<Unwrap>) -> Result<i64> {
        if let Tok::Range(r) = *self.peek() {
            self.advance();
            return Ok(r);
        }
        let expecting: &[&str] = if unwrap.is_some() {
            &["RANGE", "|"]
        } else {
            &[]
        };
        Err(self.unexpected(expecting))
    }

    fn offset_opt(&mut self) -> Result<i64> {
        if !matches!(self.peek(), Tok::Offset) {
            return Ok(0);
        }
        self.advance();
        match *self.peek() {
            Tok::Duration(d) => {
                self.advance();
                Ok(d)
            }
            _ => Err(self.unexpected(&["DURATION"])),
        }
    }

    fn unwrap_opt(&mut self) -> Result<Option<Unwrap>> {
        if !(matches!(self.peek(), Tok::Pipe) && matches!(self.peek_at(1), Tok::Unwrap)) {
            return Ok(None);
        }
        self.advance();
        self.advance();
        let (label, conv) = match self.peek().clone() {
            Tok::Ident(l) => {
                self.advance();
                (l, UnwrapConv::None)
            }
            t @ (Tok::BytesConv | Tok::DurationConv | Tok::DurationSecondsConv) => {
                self.advance();
                self.expect(&Tok::LParen, &["("])?;
                let l = self.expect_ident(&["IDENTIFIER"])?;
                self.expect(&Tok::RParen, &[")"])?;
                let conv = if t == Tok::BytesConv {
                    UnwrapConv::Bytes
                } else {
                    UnwrapConv::Duration
                };
                (l, conv)
            }
            _ => {
                return Err(self.unexpected(&[
                    "IDENTIFIER",
                    "BYTES_CONV",
                    "DURATION_CONV",
                    "DURATION_SECONDS_CONV",
                ]));
            }
        };
        let mut post_filters = Vec::new();
        while matches!(self.peek(), Tok::Pipe) {
            self.advance();
            post_filters.push(self.lf_or(true)?);
        }
        Ok(Some(Unwrap {
            label,
            conv,
            post_filters,
        }))
    }

    fn vector_agg(&mut self, op: VectorOp) -> Result<(MetricExpr, Deferred)> {
        self.advance();
        let before = self.grouping_opt()?;
        let had_before = before.is_some();
        self.expect(
            &Tok::LParen,
            if had_before {
                &["("]
            } else {
                &["(", "by", "without"]
            },
        )?;
        let mut param_text = None;
        if let (Tok::Number(n), Tok::Comma) = (self.peek(), self.peek_at(1)) {
            param_text = Some(n.clone());
            self.advance();
            self.advance();
        }
        let (inner, inner_err) = self.metric_arg()?;
        self.expect(&Tok::RParen, &[])?;
        let grouping = if had_before {
            before
        } else {
            self.grouping_opt()?
        };

        let name = vector_op_name(op);
        let mut param = None;
        let own: Deferred = match (op, &param_text) {
            (VectorOp::Topk | VectorOp::Bottomk, None) => {
                Some(format!("parameter required for operation {name}"))
            }
            (VectorOp::Topk | VectorOp::Bottomk, Some(t)) => match t.parse::<i64>() {
                Err(_) => Some(format!("invalid parameter {name}({t},")),
                Ok(k) if k <= 0 => Some(format!(
                    "invalid parameter (must be greater than 0) {name}({t}"
                )),
                Ok(k) => {
                    param = Some(k as f64);
                    None
                }
            },
            (_, Some(t)) => Some(format!("unsupported parameter for operation {name}({t},")),
            (_, None) => None,
        };
        let sort_err = (matches!(op, VectorOp::Sort | VectorOp::SortDesc)
            && grouping.as_ref().is_some_and(|g| !g.labels.is_empty()))
        .then(|| "sort and sort_desc doesn't allow grouping by ".to_string());
        let deferred = own.or(sort_err).or(inner_err);
        Ok((
            MetricExpr::VectorAgg {
                op,
                expr: Box::new(inner),
                grouping,
                param,
            },
            deferred,
        ))
    }

    fn label_replace(&mut self) -> Result<(MetricExpr, Deferred)> {
        self.advance();
        self.expect(&Tok::LParen, &["("])?;
        let (inner, inner_err) = self.metric_arg()?;
        self.expect(&Tok::Comma, &[])?;
        let dst = self.expect_string(&["STRING"])?;
        self.expect(&Tok::Comma, &[","])?;
        let replacement = self.expect_string(&["STRING"])?;
        self.expect(&Tok::Comma, &[","])?;
        let src = self.expect_string(&["STRING"])?;
        self.expect(&Tok::Comma, &[","])?;
        let regex = self.expect_string(&["STRING"])?;
        self.expect(&Tok::RParen, &[")"])?;
        let own = check_regex(&format!("^(?:{regex})$"))
            .err()
            .map(|e| format!("invalid regex in label_replace: {e}"));
        Ok((
            MetricExpr::LabelReplace {
                expr: Box::new(inner),
                dst,
                replacement,
                src,
                regex,
            },
            own.or(inner_err),
        ))
    }

    // ---- log queries ----

    fn selector(&mut self) -> Result<Vec<LabelMatcher>> {
        self.expect(&Tok::LBrace, &["{"])?;
        let mut ms = Vec::new();
        if matches!(self.peek(), Tok::RBrace) {
            self.advance();
            return Ok(ms);
        }
        loop {
            let name = self.expect_ident(if ms.is_empty() {
                &["IDENTIFIER", "}"]
            } else {
                &["IDENTIFIER"]
            })?;
            let Some(op) = match_op(self.peek()) else {
                return Err(self.unexpected(&["=", "=~", "!~", "!="]));
            };
            self.advance();
            let value = self.expect_string(&["STRING"])?;
            ms.push(new_matcher(name, op, value)?);
            match self.peek() {
                Tok::Comma => self.advance(),
                Tok::RBrace => {
                    self.advance();
                    return Ok(ms);
                }
                _ => return Err(self.unexpected(&["}", ","])),
            }
        }
    }

    /// Pipeline stages after a selector. Inside a range aggregation (`in_range`) it
    /// stops before `| unwrap`; elsewhere `unwrap` is a syntax error.
    fn pipeline(&mut self, in_range: bool) -> Result<Vec<Stage>> {
        let mut stages = Vec::new();
        loop {
            match self.peek() {
                Tok::PipeExact
                | Tok::PipeMatch
                | Tok::PipePattern
                | Tok::Neq
                | Tok::Nre
                | Tok::Npa => stages.push(Stage::LineFilter(self.line_filter()?)),
                Tok::Pipe => {
                    if matches!(self.peek_at(1), Tok::Unwrap) {
                        if in_range {
                            break;
                        }
                        self.advance();
                        return Err(self.unexpected(&[]));
                    }
                    self.advance();
                    stages.push(self.stage()?);
                }
                _ => break,
            }
        }
        Ok(stages)
    }

    fn line_filter(&mut self) -> Result<LineFilter> {
        let op = match self.peek() {
            Tok::PipeExact => LineFilterOp::Contains,
            Tok::Neq => LineFilterOp::NotContains,
            Tok::PipeMatch => LineFilterOp::Regex,
            Tok::Nre => LineFilterOp::NotRegex,
            Tok::PipePattern => LineFilterOp::Pattern,
            _ => LineFilterOp::NotPattern,
        };
        self.advance();
        let mut values = vec![self.filter_value()?];
        while matches!(self.peek(), Tok::Or) {
            self.advance();
            values.push(self.filter_value()?);
        }
        let ip = values.iter().any(|v| matches!(v, FilterValue::Ip(_)));
        if ip
            && !matches!(op, LineFilterOp::Contains | LineFilterOp::NotContains)
            && self.stage_err.is_none()
        {
            self.stage_err = Some(QueryError::Invalid("ip: invalid operation".into()));
        }
        Ok(LineFilter { op, values })
    }

    fn filter_value(&mut self) -> Result<FilterValue> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.advance();
                Ok(FilterValue::Literal(s))
            }
            Tok::Ip => Ok(FilterValue::Ip(self.ip_call()?)),
            _ => Err(self.unexpected(&["STRING", "ip"])),
        }
    }

    /// `ip("…")`, at the `ip` token.
    fn ip_call(&mut self) -> Result<String> {
        self.advance();
        self.expect(&Tok::LParen, &["("])?;
        let s = self.expect_string(&["STRING"])?;
        self.expect(&Tok::RParen, &[")"])?;
        Ok(s)
    }

    /// One stage after `|`.
    fn stage(&mut self) -> Result<Stage> {
        match self.peek() {
            Tok::Json => {
                self.advance();
                Ok(Stage::Parser(LineParser::Json(self.extraction_list()?)))
            }
            Tok::Logfmt => {
                self.advance();
                let (mut strict, mut keep_empty) = (false, false);
                while let Tok::Flag(f) = self.peek() {
                    if f == "--strict" {
                        strict = true;
                    } else {
                        keep_empty = true;
                    }
                    self.advance();
                }
                let params = self.extraction_list()?;
                Ok(Stage::Parser(LineParser::Logfmt {
                    strict,
                    keep_empty,
                    params,
                }))
            }
            Tok::Regexp => {
                self.advance();
                let re = self.expect_string(&["STRING"])?;
                check_regexp_parser(&re).map_err(semantic)?;
                Ok(Stage::Parser(LineParser::Regexp(re)))
            }
            Tok::Pattern => {
                self.advance();
                Ok(Stage::Parser(LineParser::Pattern(
                    self.expect_string(&["STRING"])?,
                )))
            }
            Tok::Unpack => {
                self.advance();
                Ok(Stage::Parser(LineParser::Unpack))
            }
            Tok::LineFmt => {
                self.advance();
                Ok(Stage::LineFormat(self.expect_string(&["STRING"])?))
            }
            Tok::Decolorize => {
                self.advance();
                Ok(Stage::Decolorize)
            }
            Tok::LabelFmt => {
                self.advance();
                let mut out = Vec::new();
                loop {
                    let dst = self.expect_ident(&["IDENTIFIER"])?;
                    self.expect(&Tok::Eq, &["="])?;
                    match self.peek().clone() {
                        Tok::Ident(src) => out.push(LabelFmt::Rename { dst, src }),
                        Tok::Str(template) => out.push(LabelFmt::Template { dst, template }),
                        _ => return Err(self.unexpected(&["IDENTIFIER", "STRING"])),
                    }
                    self.advance();
                    if !matches!(self.peek(), Tok::Comma) {
                        return Ok(Stage::LabelFormat(out));
                    }
                    self.advance();
                }
            }
            Tok::Drop | Tok::Keep => {
                let drop = matches!(self.peek(), Tok::Drop);
                self.advance();
                let mut out = Vec::new();
                loop {
                    let name = self.expect_ident(&["IDENTIFIER"])?;
                    if let Some(op) = match_op(self.peek()) {
                        self.advance();
                        let value = self.expect_string(&["STRING"])?;
                        out.push(LabelSelect::Matcher(new_matcher(name, op, value)?));
                    } else {
                        out.push(LabelSelect::Name(name));
                    }
                    if !matches!(self.peek(), Tok::Comma) {
                        break;
                    }
                    self.advance();
                }
                Ok(if drop {
                    Stage::Drop(out)
                } else {
                    Stage::Keep(out)
                })
            }
            Tok::Ident(_) | Tok::LParen => Ok(Stage::LabelFilter(self.lf_or(false)?)),
            _ => Err(self.unexpected(&[])),
        }
    }

    /// `a, b="path"` after `json` / `logfmt` (possibly empty).
    fn extraction_list(&mut self) -> Result<Vec<ExtractParam>> {
        let mut out = Vec::new();
        if !matches!(self.peek(), Tok::Ident(_)) {
            return Ok(out);
        }
        loop {
            let label = self.expect_ident(&["IDENTIFIER"])?;
            let expression = if matches!(self.peek(), Tok::Eq) {
                self.advance();
                self.expect_string(&["STRING"])?
            } else {
                label.clone()
            };
            out.push(ExtractParam { label, expression });
            if !matches!(self.peek(), Tok::Comma) {
                return Ok(out);
            }
            self.advance();
        }
    }

    // ---- label filters ----

    /// A label-filter chain. `list` says whether an error at the first token names
    /// what was expected (`IDENTIFIER or (`).
    ///
    /// `or` joins `and`-chains; a `,` or a juxtaposed filter takes everything after
    /// it as its right operand (`a, b or c` = `a and (b or c)`), as Loki's grammar
    /// resolves it. Built without recursion per `,`; at most [`MAX_NODES`] nodes.
    fn lf_or(&mut self, list: bool) -> Result<LabelFilterExpr> {
        // (the `or` chain before, the `and` chain) waiting for the rest
        let mut pending: Vec<(Option<LabelFilterExpr>, LabelFilterExpr)> = Vec::new();
        let mut first_list = list;
        let result = loop {
            let mut or_acc: Option<LabelFilterExpr> = None;
            let mut chain = self.lf_and(first_list)?;
            first_list = true;
            let rest_follows = loop {
                match self.peek() {
                    Tok::Or => {
                        self.count_node()?;
                        self.advance();
                        let left = match or_acc.take() {
                            Some(acc) => LabelFilterExpr::Or(Box::new(acc), Box::new(chain)),
                            None => chain,
                        };
                        or_acc = Some(left);
                        chain = self.lf_and(true)?;
                    }
                    Tok::Comma => {
                        self.advance();
                        break true;
                    }
                    Tok::Ident(_) | Tok::LParen => break true,
                    _ => break false,
                }
            };
            if rest_follows {
                self.count_node()?;
                pending.push((or_acc, chain));
                continue;
            }
            break match or_acc {
                Some(acc) => LabelFilterExpr::Or(Box::new(acc), Box::new(chain)),
                None => chain,
            };
        };
        let mut r = result;
        while let Some((or_acc, chain)) = pending.pop() {
            let joined = LabelFilterExpr::And(Box::new(chain), Box::new(r));
            r = match or_acc {
                Some(acc) => LabelFilterExpr::Or(Box::new(acc), Box::new(joined)),
                None => joined,
            };
        }
        Ok(r)
    }

    /// `x and y and z` (the keyword only).
    fn lf_and(&mut self, list: bool) -> Result<LabelFilterExpr> {
        let mut l = self.lf_primary(list)?;
        while matches!(self.peek(), Tok::And) {
            self.count_node()?;
            self.advance();
            let r = self.lf_primary(true)?;
            l = LabelFilterExpr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn lf_primary(&mut self, list: bool) -> Result<LabelFilterExpr> {
        match self.peek().clone() {
            Tok::LParen => {
                self.advance();
                self.nest()?;
                let e = self.lf_or(true);
                self.depth -= 1;
                let e = e?;
                self.expect(&Tok::RParen, &[])?;
                Ok(e)
            }
            Tok::Ident(name) => {
                self.advance();
                self.lf_after_name(name)
            }
            _ => Err(self.unexpected(if list { &["IDENTIFIER", "("] } else { &[] })),
        }
    }

    fn lf_after_name(&mut self, name: String) -> Result<LabelFilterExpr> {
        let tok = self.peek().clone();
        let op = match tok {
            Tok::Re | Tok::Nre => {
                self.advance();
                let value = self.expect_string(&["STRING"])?;
                let op = if tok == Tok::Re {
                    MatchOp::Re
                } else {
                    MatchOp::Nre
                };
                return Ok(LabelFilterExpr::String(new_matcher(name, op, value)?));
            }
            Tok::Eq | Tok::CmpEq => CmpOp::Eq,
            Tok::Neq => CmpOp::Neq,
            Tok::Gt => CmpOp::Gt,
            Tok::Gte => CmpOp::Gte,
            Tok::Lt => CmpOp::Lt,
            Tok::Lte => CmpOp::Lte,
            _ => return Err(self.unexpected(&[])),
        };
        self.advance();
        let single_eq = matches!(tok, Tok::Eq | Tok::Neq);
        match self.peek().clone() {
            Tok::Str(value) if single_eq => {
                self.advance();
                let op = if tok == Tok::Eq {
                    MatchOp::Eq
                } else {
                    MatchOp::Neq
                };
                Ok(LabelFilterExpr::String(LabelMatcher { name, op, value }))
            }
            Tok::Ip if single_eq => Ok(LabelFilterExpr::Ip {
                name,
                negate: tok == Tok::Neq,
                pattern: self.ip_call()?,
            }),
            Tok::Duration(d) => {
                self.advance();
                Ok(LabelFilterExpr::Duration {
                    name,
                    op,
                    value: d as f64 / 1e9,
                })
            }
            Tok::Bytes(b) => {
                self.advance();
                Ok(LabelFilterExpr::Bytes {
                    name,
                    op,
                    value: b as f64,
                })
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => {
                let (value, err) = self.literal()?;
                if let Some(e) = err {
                    return Err(semantic(e));
                }
                Ok(LabelFilterExpr::Number { name, op, value })
            }
            _ => Err(self.unexpected(&[])),
        }
    }
}

/// Loki's checks on `| regexp "…"`: it compiles and has a named capture.
fn check_regexp_parser(re: &str) -> std::result::Result<(), String> {
    check_regex(re).map_err(|e| format!("invalid regexp parser: {e}"))?;
    let named = regex::Regex::new(re)
        .map(|r| r.capture_names().flatten().count())
        .map_err(|e| format!("invalid regexp parser: {e}"))?;
    if named == 0 {
        return Err("invalid regexp parser: at least one named capture must be supplied".into());
    }
    Ok(())
}

/// Builds `lhs op rhs` with Loki's checks and literal folding.
fn make_binop(
    op: BinOp,
    modifier: BinModifier,
    lhs: Operand,
    ld: Deferred,
    rhs: Operand,
    rd: Deferred,
) -> (Operand, Deferred) {
    let name = binop_name(op);
    // A node that failed: nothing below it is looked at, and it is no literal.
    let failed = |msg: String| (Operand::Metric(MetricExpr::Vector(0.0)), Some(msg));
    let lhs = match lhs {
        Operand::Metric(m) => m,
        Operand::Log(l) => {
            return failed(format!(
                "unexpected type for left leg of binary operation ({name}): {}",
                log_type(&l)
            ));
        }
    };
    let rhs = match rhs {
        Operand::Metric(m) => m,
        Operand::Log(l) => {
            return failed(format!(
                "unexpected type for right leg of binary operation ({name}): {}",
                log_type(&l)
            ));
        }
    };
    let lit = |m: &MetricExpr| match m {
        MetricExpr::Literal(v) => Some(*v),
        _ => None,
    };
    let (ll, rl) = (lit(&lhs), lit(&rhs));
    if matches!(op, BinOp::And | BinOp::Or | BinOp::Unless) {
        if let Some(v) = ll {
            return failed(format!(
                "unexpected literal for left leg of logical/set binary operation ({name}): {}",
                go_f(v)
            ));
        }
        if let Some(v) = rl {
            return failed(format!(
                "unexpected literal for right leg of logical/set binary operation ({name}): {}",
                go_f(v)
            ));
        }
    }
    let deferred = ld.or(rd);
    if let (Some(a), Some(b)) = (ll, rl) {
        return (
            Operand::Metric(MetricExpr::Literal(fold(op, a, b))),
            deferred,
        );
    }
    (
        Operand::Metric(MetricExpr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            modifier,
        }),
        deferred,
    )
}
