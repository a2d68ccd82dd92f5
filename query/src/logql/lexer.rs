//! The LogQL lexer: query text → tokens with 1-based line/column positions, as
//! Loki's lexer splits them. It owns Loki's lexical quirks:
//!
//! - keywords are case-insensitive; function names (`rate`, `sum`, `bytes`, `ip`, …)
//!   are keywords only when followed by `(` (or by `by (…` / `without (…`), and plain
//!   identifiers otherwise, so `| unwrap bytes` names a label;
//! - a number directly followed by duration units is a duration (`5m`, `1.5s`,
//!   `1h30m`, Prometheus syntax first, then Go's `time.ParseDuration`), or by byte
//!   units a byte size (`20MiB`, as go-humanize parses it);
//! - `[…]` is one range token whose text must be a Prometheus duration;
//! - `-5m` is a (negative) duration, `--strict` a parser flag;
//! - `#` starts a comment running to the end of the line.
//!
//! Lexing errors are not raised eagerly: the token stream ends with an
//! [`Tok::Error`] token, which the parser reports only when it reaches it (as
//! Loki's parser, which lexes one token at a time, would).

use std::fmt;

/// One token kind, with its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Bytes(u64),
    Ident(String),
    Str(String),
    /// a number, as written
    Number(String),
    /// `--strict`, `--keep-empty`
    Flag(String),
    /// nanoseconds
    Duration(i64),
    /// `[5m]`, nanoseconds
    Range(i64),
    Eq,
    Re,
    Nre,
    Npa,
    LBrace,
    RBrace,
    RBracket,
    Comma,
    Dot,
    PipeMatch,
    PipeExact,
    PipePattern,
    LParen,
    RParen,
    By,
    Without,
    CountOverTime,
    Rate,
    RateCounter,
    Sum,
    Sort,
    SortDesc,
    Avg,
    Max,
    Min,
    Count,
    Stddev,
    Stdvar,
    Bottomk,
    Topk,
    BytesOverTime,
    BytesRate,
    Bool,
    Json,
    Regexp,
    Logfmt,
    Pipe,
    LineFmt,
    LabelFmt,
    Unwrap,
    AvgOverTime,
    SumOverTime,
    MinOverTime,
    MaxOverTime,
    StdvarOverTime,
    StddevOverTime,
    QuantileOverTime,
    BytesConv,
    DurationConv,
    DurationSecondsConv,
    FirstOverTime,
    LastOverTime,
    AbsentOverTime,
    Vector,
    LabelReplace,
    Unpack,
    Offset,
    Pattern,
    Ip,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Decolorize,
    Drop,
    Keep,
    Or,
    And,
    Unless,
    CmpEq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eof,
    /// A lexing error, reported when the parser reaches it.
    Error(String),
}

impl Tok {
    /// The name Loki's parser gives the token in `unexpected X, expecting Y`.
    pub fn name(&self) -> &'static str {
        match self {
            Tok::Bytes(_) => "BYTES",
            Tok::Ident(_) => "IDENTIFIER",
            Tok::Str(_) => "STRING",
            Tok::Number(_) => "NUMBER",
            Tok::Flag(_) => "FUNCTION_FLAG",
            Tok::Duration(_) => "DURATION",
            Tok::Range(_) => "RANGE",
            Tok::Eq => "=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::Npa => "!>",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::PipeMatch => "|~",
            Tok::PipeExact => "|=",
            Tok::PipePattern => "|>",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::By => "by",
            Tok::Without => "without",
            Tok::CountOverTime => "COUNT_OVER_TIME",
            Tok::Rate => "RATE",
            Tok::RateCounter => "RATE_COUNTER",
            Tok::Sum => "SUM",
            Tok::Sort => "SORT",
            Tok::SortDesc => "SORT_DESC",
            Tok::Avg => "AVG",
            Tok::Max => "MAX",
            Tok::Min => "MIN",
            Tok::Count => "COUNT",
            Tok::Stddev => "STDDEV",
            Tok::Stdvar => "STDVAR",
            Tok::Bottomk => "BOTTOMK",
            Tok::Topk => "TOPK",
            Tok::BytesOverTime => "BYTES_OVER_TIME",
            Tok::BytesRate => "BYTES_RATE",
            Tok::Bool => "bool",
            Tok::Json => "json",
            Tok::Regexp => "regexp",
            Tok::Logfmt => "logfmt",
            Tok::Pipe => "|",
            Tok::LineFmt => "line_format",
            Tok::LabelFmt => "label_format",
            Tok::Unwrap => "unwrap",
            Tok::AvgOverTime => "AVG_OVER_TIME",
            Tok::SumOverTime => "SUM_OVER_TIME",
            Tok::MinOverTime => "MIN_OVER_TIME",
            Tok::MaxOverTime => "MAX_OVER_TIME",
            Tok::StdvarOverTime => "STDVAR_OVER_TIME",
            Tok::StddevOverTime => "STDDEV_OVER_TIME",
            Tok::QuantileOverTime => "QUANTILE_OVER_TIME",
            Tok::BytesConv => "BYTES_CONV",
            Tok::DurationConv => "DURATION_CONV",
            Tok::DurationSecondsConv => "DURATION_SECONDS_CONV",
            Tok::FirstOverTime => "FIRST_OVER_TIME",
            Tok::LastOverTime => "LAST_OVER_TIME",
            Tok::AbsentOverTime => "ABSENT_OVER_TIME",
            Tok::Vector => "VECTOR",
            Tok::LabelReplace => "label_replace",
            Tok::Unpack => "unpack",
            Tok::Offset => "offset",
            Tok::Pattern => "pattern",
            Tok::Ip => "ip",
            Tok::On => "on",
            Tok::Ignoring => "ignoring",
            Tok::GroupLeft => "group_left",
            Tok::GroupRight => "group_right",
            Tok::Decolorize => "decolorize",
            Tok::Drop => "drop",
            Tok::Keep => "keep",
            Tok::Or => "or",
            Tok::And => "and",
            Tok::Unless => "unless",
            Tok::CmpEq => "==",
            Tok::Neq => "!=",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            Tok::Eof => "$end",
            Tok::Error(_) => "error",
        }
    }
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A token and where it starts (1-based line and column, columns counted in
/// characters).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

/// Keywords that are keywords only when used as a function (followed by `(`, or by
/// `by (` / `without (`).
fn function_token(lower: &str) -> Option<Tok> {
    Some(match lower {
        "rate" => Tok::Rate,
        "rate_counter" => Tok::RateCounter,
        "count_over_time" => Tok::CountOverTime,
        "bytes_rate" => Tok::BytesRate,
        "bytes_over_time" => Tok::BytesOverTime,
        "avg_over_time" => Tok::AvgOverTime,
        "sum_over_time" => Tok::SumOverTime,
        "min_over_time" => Tok::MinOverTime,
        "max_over_time" => Tok::MaxOverTime,
        "stdvar_over_time" => Tok::StdvarOverTime,
        "stddev_over_time" => Tok::StddevOverTime,
        "quantile_over_time" => Tok::QuantileOverTime,
        "first_over_time" => Tok::FirstOverTime,
        "last_over_time" => Tok::LastOverTime,
        "absent_over_time" => Tok::AbsentOverTime,
        "vector" => Tok::Vector,
        "sum" => Tok::Sum,
        "avg" => Tok::Avg,
        "max" => Tok::Max,
        "min" => Tok::Min,
        "count" => Tok::Count,
        "stddev" => Tok::Stddev,
        "stdvar" => Tok::Stdvar,
        "bottomk" => Tok::Bottomk,
        "topk" => Tok::Topk,
        "sort" => Tok::Sort,
        "sort_desc" => Tok::SortDesc,
        "label_replace" => Tok::LabelReplace,
        "bytes" => Tok::BytesConv,
        "duration" => Tok::DurationConv,
        "duration_seconds" => Tok::DurationSecondsConv,
        "ip" => Tok::Ip,
        _ => return None,
    })
}

/// Keywords that are always keywords.
fn keyword(lower: &str) -> Option<Tok> {
    Some(match lower {
        "by" => Tok::By,
        "without" => Tok::Without,
        "bool" => Tok::Bool,
        "offset" => Tok::Offset,
        "on" => Tok::On,
        "ignoring" => Tok::Ignoring,
        "group_left" => Tok::GroupLeft,
        "group_right" => Tok::GroupRight,
        "or" => Tok::Or,
        "and" => Tok::And,
        "unless" => Tok::Unless,
        "json" => Tok::Json,
        "regexp" => Tok::Regexp,
        "logfmt" => Tok::Logfmt,
        "unpack" => Tok::Unpack,
        "pattern" => Tok::Pattern,
        "label_format" => Tok::LabelFmt,
        "line_format" => Tok::LineFmt,
        "decolorize" => Tok::Decolorize,
        "drop" => Tok::Drop,
        "keep" => Tok::Keep,
        "unwrap" => Tok::Unwrap,
        _ => return None,
    })
}

/// Operators of two characters, then of one.
fn operator(two: &str) -> Option<Tok> {
    Some(match two {
        "!=" => Tok::Neq,
        "=~" => Tok::Re,
        "!~" => Tok::Nre,
        "!>" => Tok::Npa,
        "|=" => Tok::PipeExact,
        "|~" => Tok::PipeMatch,
        "|>" => Tok::PipePattern,
        "==" => Tok::CmpEq,
        ">=" => Tok::Gte,
        "<=" => Tok::Lte,
        "," => Tok::Comma,
        "." => Tok::Dot,
        "{" => Tok::LBrace,
        "}" => Tok::RBrace,
        "=" => Tok::Eq,
        "|" => Tok::Pipe,
        "(" => Tok::LParen,
        ")" => Tok::RParen,
        "]" => Tok::RBracket,
        "+" => Tok::Add,
        "-" => Tok::Sub,
        "*" => Tok::Mul,
        "/" => Tok::Div,
        "%" => Tok::Mod,
        "^" => Tok::Pow,
        ">" => Tok::Gt,
        "<" => Tok::Lt,
        _ => return None,
    })
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
    _src: &'a str,
}

/// Splits a query into tokens. The last token is [`Tok::Eof`], or [`Tok::Error`]
/// where the text cannot be lexed.
pub fn tokenize(src: &str) -> Vec<Token> {
    let mut lx = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        col: 1,
        _src: src,
    };
    let mut out = Vec::with_capacity(src.len() / 3 + 2);
    loop {
        let t = lx.next_token();
        let stop = matches!(t.tok, Tok::Eof | Tok::Error(_));
        out.push(t);
        if stop {
            return out;
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_rune(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn is_duration_rune(c: char) -> bool {
    matches!(c, 'n' | 'u' | 'µ' | 'm' | 's' | 'h' | 'd' | 'w' | 'y')
}

fn is_bytes_rune(c: char) -> bool {
    matches!(c, 'B' | 'i' | 'k' | 'K' | 'M' | 'G' | 'T' | 'P')
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if matches!(c, ' ' | '\t' | '\n' | '\r') {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn next_token(&mut self) -> Token {
        loop {
            self.skip_space();
            if self.peek() == Some('#') {
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
                continue;
            }
            break;
        }
        let (line, col) = (self.line, self.col);
        let tok = self.scan();
        Token { tok, line, col }
    }

    fn scan(&mut self) -> Tok {
        let Some(c) = self.peek() else {
            return Tok::Eof;
        };
        if is_ident_start(c) {
            return self.ident();
        }
        if c.is_ascii_digit() || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) {
            return self.number();
        }
        match c {
            '"' => return self.string(),
            '`' => return self.raw_string(),
            '\'' => return self.char_literal(),
            '[' => return self.range(),
            '-' => {
                if self.peek_at(1) == Some('-')
                    && let Some(flag) = self.flag()
                {
                    return Tok::Flag(flag);
                }
                self.bump();
                if let Some(d) = self.try_duration("-") {
                    return Tok::Duration(d);
                }
                return Tok::Sub;
            }
            _ => {}
        }
        self.bump();
        if let Some(n) = self.peek() {
            let two: String = [c, n].iter().collect();
            if let Some(t) = operator(&two) {
                self.bump();
                return t;
            }
        }
        match operator(c.encode_utf8(&mut [0; 4])) {
            Some(t) => t,
            // An unknown character is an identifier to Loki's lexer.
            None => Tok::Ident(c.to_string()),
        }
    }

    fn ident(&mut self) -> Tok {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_rune) {
            self.bump();
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let lower = text.to_lowercase();
        if let Some(t) = function_token(&lower) {
            return if self.is_function() {
                t
            } else {
                Tok::Ident(text)
            };
        }
        keyword(&lower).unwrap_or(Tok::Ident(text))
    }

    /// Whether what follows is `(`, or `by (` / `without (` (spaces allowed).
    fn is_function(&self) -> bool {
        let mut i = self.pos;
        let skip = |mut i: usize| {
            while self
                .chars
                .get(i)
                .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
            {
                i += 1;
            }
            i
        };
        i = skip(i);
        if self.chars.get(i) == Some(&'(') {
            return true;
        }
        for kw in ["by", "without"] {
            let n = kw.len();
            if i + n <= self.chars.len() {
                let word: String = self.chars[i..i + n].iter().collect();
                if word.eq_ignore_ascii_case(kw) {
                    let j = skip(i + n);
                    return self.chars.get(j) == Some(&'(');
                }
            }
        }
        false
    }

    fn number(&mut self) -> Tok {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') {
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = matches!(self.peek_at(1), Some('+' | '-'));
            let digit_at = if sign { 2 } else { 1 };
            if self.peek_at(digit_at).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
                if sign {
                    self.bump();
                }
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if let Some(d) = self.try_duration(&text) {
            return Tok::Duration(d);
        }
        if let Some(b) = self.try_bytes(&text) {
            return Tok::Bytes(b);
        }
        Tok::Number(text)
    }

    /// Collects the characters after `prefix` that may continue it (up to a space or
    /// another character), returning how many.
    fn collect(&self, accept: fn(char) -> bool) -> usize {
        let mut n = 0;
        while let Some(c) = self.peek_at(n) {
            if c.is_whitespace() || !(c.is_numeric() || c == '.' || accept(c)) {
                break;
            }
            n += 1;
        }
        n
    }

    fn try_duration(&mut self, prefix: &str) -> Option<i64> {
        let n = self.collect(is_duration_rune);
        if n == 0 {
            return None;
        }
        let mut s = prefix.to_string();
        s.extend(&self.chars[self.pos..self.pos + n]);
        let d = parse_duration(&s)?;
        for _ in 0..n {
            self.bump();
        }
        Some(d)
    }

    fn try_bytes(&mut self, prefix: &str) -> Option<u64> {
        let n = self.collect(is_bytes_rune);
        if n == 0 {
            return None;
        }
        let mut s = prefix.to_string();
        s.extend(&self.chars[self.pos..self.pos + n]);
        let b = parse_bytes(&s)?;
        for _ in 0..n {
            self.bump();
        }
        Some(b)
    }

    /// `--strict` / `--keep-empty`; consumes nothing unless one of them is there.
    fn flag(&mut self) -> Option<String> {
        let mut n = 1;
        while self
            .peek_at(n)
            .is_some_and(|c| c.is_alphabetic() || c == '-')
        {
            n += 1;
        }
        let text: String = self.chars[self.pos..self.pos + n].iter().collect();
        if text == "--strict" || text == "--keep-empty" {
            for _ in 0..n {
                self.bump();
            }
            Some(text)
        } else {
            None
        }
    }

    fn string(&mut self) -> Tok {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return Tok::Error("literal not terminated".into()),
                Some('"') => return Tok::Str(out),
                Some('\\') => match self.escape('"') {
                    Ok(Some(c)) => out.push(c),
                    Ok(None) => {}
                    Err(e) => return Tok::Error(e),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// One escape sequence after `\`, as Go unquotes it.
    fn escape(&mut self, quote: char) -> Result<Option<char>, String> {
        let c = self
            .bump()
            .ok_or_else(|| "literal not terminated".to_string())?;
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            c if c == quote => Some(c),
            _ => None,
        };
        if let Some(s) = simple {
            return Ok(Some(s));
        }
        let (digits, radix) = match c {
            '0'..='7' => (2, 8),
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            _ => return Err("invalid char escape".into()),
        };
        let mut v: u32 = if radix == 8 {
            c.to_digit(8).unwrap_or(0)
        } else {
            0
        };
        for _ in 0..digits {
            let d = self
                .peek()
                .and_then(|d| d.to_digit(radix))
                .ok_or_else(|| "invalid char escape".to_string())?;
            self.bump();
            v = v * radix + d;
        }
        if radix == 8 && v > 255 {
            return Err("invalid char escape".into());
        }
        match char::from_u32(v) {
            Some(ch) => Ok(Some(ch)),
            None => Err("invalid syntax".into()),
        }
    }

    fn raw_string(&mut self) -> Tok {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Tok::Error("literal not terminated".into()),
                Some('`') => return Tok::Str(out.replace('\r', "")),
                Some(c) => out.push(c),
            }
        }
    }

    /// `'x'`: Loki's scanner takes a one-character literal as an identifier and
    /// rejects longer ones.
    fn char_literal(&mut self) -> Tok {
        let start = self.pos;
        self.bump();
        let mut n = 0;
        loop {
            match self.bump() {
                None | Some('\n') => return Tok::Error("literal not terminated".into()),
                Some('\'') => break,
                Some('\\') => {
                    if let Err(e) = self.escape('\'') {
                        return Tok::Error(e);
                    }
                }
                Some(_) => {}
            }
            n += 1;
        }
        if n != 1 {
            return Tok::Error("illegal char literal".into());
        }
        Tok::Ident(self.chars[start..self.pos].iter().collect())
    }

    fn range(&mut self) -> Tok {
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Tok::Error("missing closing ']' in duration".into()),
                Some(']') => break,
                Some(c) => text.push(c),
            }
        }
        match parse_prom_duration(&text) {
            Ok(d) => Tok::Range(d),
            Err(e) => Tok::Error(e),
        }
    }
}

/// A duration as Loki's lexer reads one: Prometheus syntax (`1h30m`, `2d`, `1y`),
/// else Go's `time.ParseDuration` (`1.5s`, `-5m`, `250µs`). Nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    parse_prom_duration(s).ok().or_else(|| parse_go_duration(s))
}

/// Prometheus' `model.ParseDuration`: integer amounts with units y w d h m s ms, from
/// the largest to the smallest, each at most once; `0` alone is allowed.
pub fn parse_prom_duration(s: &str) -> Result<i64, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000_000_000),
        ("w", 7 * 24 * 3_600_000_000_000),
        ("d", 24 * 3_600_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {s:?}");
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_pos: Option<usize> = None;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(invalid());
        }
        let v: u64 = s[start..i].parse().map_err(|_| invalid())?;
        let ustart = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ustart {
            return Err(invalid());
        }
        let unit = &s[ustart..i];
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit {unit:?} in duration {s:?}"));
        };
        if last_pos.is_some_and(|p| pos <= p) {
            return Err(invalid());
        }
        last_pos = Some(pos);
        let mult = UNITS[pos].1;
        if v > (1u64 << 63) / mult {
            return Err("duration out of range".into());
        }
        total += v * mult;
        if total > i64::MAX as u64 {
            return Err("duration out of range".into());
        }
    }
    Ok(total as i64)
}

/// Go's `time.ParseDuration`: `[-+]` then one or more `<decimal><unit>` with units
/// ns us µs μs ms s m h.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let v: f64 = num.parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult: f64 = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += v * mult;
        if total > i64::MAX as f64 {
            return None;
        }
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// go-humanize's `ParseBytes`: a decimal number (commas allowed) and an optional
/// SI or IEC unit, case-insensitive (`1.5GB`, `20MiB`, `10k`).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(s.len());
    let num = s[..num_end].replace(',', "");
    let v: f64 = num.parse().ok()?;
    let unit = s[num_end..].trim().to_lowercase();
    let k: f64 = 1000.0;
    let ki: f64 = 1024.0;
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => k,
        "ki" | "kib" => ki,
        "m" | "mb" => k.powi(2),
        "mi" | "mib" => ki.powi(2),
        "g" | "gb" => k.powi(3),
        "gi" | "gib" => ki.powi(3),
        "t" | "tb" => k.powi(4),
        "ti" | "tib" => ki.powi(4),
        "p" | "pb" => k.powi(5),
        "pi" | "pib" => ki.powi(5),
        "e" | "eb" => k.powi(6),
        "ei" | "eib" => ki.powi(6),
        _ => return None,
    };
    let b = v * mult;
    if b >= u64::MAX as f64 {
        return None;
    }
    Some(b as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn durations_and_bytes() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("250µs"), Some(250_000));
        assert_eq!(parse_duration("-5m"), Some(-300_000_000_000));
        assert_eq!(parse_duration("1d"), Some(86_400_000_000_000));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_bytes("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_bytes("20MiB"), Some(20 * 1024 * 1024));
        assert_eq!(parse_bytes("1KB"), Some(1000));
        assert_eq!(parse_bytes("3X"), None);
        assert_eq!(
            parse_prom_duration("1.5m"),
            Err("unknown unit \".\" in duration \"1.5m\"".into())
        );
        assert_eq!(
            parse_prom_duration("5m1h"),
            Err("not a valid duration string: \"5m1h\"".into())
        );
        assert_eq!(
            parse_prom_duration("5x"),
            Err("unknown unit \"x\" in duration \"5x\"".into())
        );
    }

    #[test]
    fn tokens_and_positions() {
        let t = tokenize("{a=\"b\"}\n  |= `x` # c\n[5m]");
        let got: Vec<(Tok, usize, usize)> = t.into_iter().map(|t| (t.tok, t.line, t.col)).collect();
        assert_eq!(
            got,
            vec![
                (Tok::LBrace, 1, 1),
                (Tok::Ident("a".into()), 1, 2),
                (Tok::Eq, 1, 3),
                (Tok::Str("b".into()), 1, 4),
                (Tok::RBrace, 1, 7),
                (Tok::PipeExact, 2, 3),
                (Tok::Str("x".into()), 2, 6),
                (Tok::Range(300_000_000_000), 3, 1),
                (Tok::Eof, 3, 5),
            ]
        );
    }

    #[test]
    fn functions_are_keywords_only_before_parens() {
        assert_eq!(
            kinds("sum by (a) (bytes)"),
            vec![
                Tok::Sum,
                Tok::By,
                Tok::LParen,
                Tok::Ident("a".into()),
                Tok::RParen,
                Tok::LParen,
                Tok::Ident("bytes".into()),
                Tok::RParen,
                Tok::Eof
            ]
        );
        assert_eq!(
            kinds("--strict -5m - 5 1e3 10KB"),
            vec![
                Tok::Flag("--strict".into()),
                Tok::Duration(-300_000_000_000),
                Tok::Sub,
                Tok::Number("5".into()),
                Tok::Number("1e3".into()),
                Tok::Bytes(10_000),
                Tok::Eof
            ]
        );
        assert_eq!(
            kinds("\"a\\tb\\u00e9\""),
            vec![Tok::Str("a\tb\u{e9}".into()), Tok::Eof]
        );
    }
}
