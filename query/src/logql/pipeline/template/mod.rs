//! A Go `text/template` engine for `line_format` and `label_format`: actions with
//! trim markers and comments, pipelines (`{{ .a | ToUpper }}`), variables
//! (`$x := …`, `$x = …`, `$`), `if`/`else if`/`else`, `range` (with `break` and
//! `continue`), `with`, parenthesised pipelines and field chains, and the
//! functions Loki documents (see [`funcs`]). Templates are parsed once; unknown
//! functions are rejected at parse time as Go does. The data is the label map;
//! missing labels read as "" (`missingkey=zero`).
//!
//! Embedders (the rule engine, the notifier) parse with [`Template::with_funcs`] and
//! run over their own data with [`Template::execute_with`]; the notifier also parses
//! template sets ([`Template::parse_set`]: `define`, `template`, `block`, whose
//! templates it hands back through [`Funcs::template`]), reaches methods of its data
//! through [`Funcs::method`], and runs HTML templates with html/template's escaping of
//! printed values ([`Template::execute_html`]).

mod exec;
pub mod funcs;
pub mod gotime;

use std::fmt;

use regex::Regex;

pub use exec::Value;

/// A template error (parse or execution), with Go's `template: NAME:…` prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// What a template reads: the labels.
pub trait Data {
    /// A label's value.
    fn get(&self, name: &str) -> Option<&str>;
    /// All labels, sorted by name (for `range .`, `len .` and printing `.`).
    fn entries(&self) -> Vec<(String, String)>;
}

/// Functions an embedder provides in place of Loki's own (the rule engine's
/// Prometheus template functions). Go's builtins (`and`, `or`, `not`, `len`,
/// `index`, `slice`, `print*`, comparisons, `html`, `js`, `urlquery`) stay available.
pub trait Funcs {
    /// Whether `name` is one of these functions (checked at parse time, as Go does).
    fn has(&self, name: &str) -> bool;
    /// Calls `name` with its evaluated arguments.
    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String>;
    /// The value of a key missing from `map` (for `.key` and `index`); Go's
    /// `missingkey=zero` gives the zero value of the map's element type.
    fn missing_key(&self, _map: &std::collections::BTreeMap<String, Value>) -> Value {
        Value::Nil
    }
    /// A method (or computed field) `name` of `recv` with its evaluated arguments
    /// (`.Alerts.Firing`, `.Labels.SortedPairs`, `.StartsAt.Add 3600e9`), consulted
    /// before the engine's own field lookup; `None` when `recv` has no such method.
    fn method(&self, _recv: &Value, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }
    /// The template `{{template "name"}}` runs (templates of a set parsed with
    /// [`Template::parse_set`]); `None`: not defined.
    fn template(&self, _name: &str) -> Option<&Template> {
        None
    }
}

/// How deep `{{template}}` calls may nest (Go allows 100000 on its growable stacks;
/// here a recursive define stops well within a 2 MiB thread stack).
pub const MAX_TEMPLATE_DEPTH: usize = 100;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<Node>,
    /// The text the template was parsed from (a file name) in a set; errors name it.
    parse_name: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Vec<Node>,
    },
    Range {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Vec<Node>,
    },
    With {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Vec<Node>,
    },
    Break,
    Continue,
    /// `{{template "name" pipeline}}` (and the call half of `{{block}}`).
    Template {
        name: String,
        pipe: Option<Pipe>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    /// declared / assigned variables (without `$`)
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub args: Vec<Arg>,
    /// A precompiled regex when the command calls a regex function with a literal.
    pub regex: Option<Regex>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// `.a.b`
    Field(Vec<String>),
    /// `.`
    Dot,
    /// `$x.a` (name without `$`; "" is `$`)
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `(pipeline).a.b`
    Pipe(Box<Pipe>, Vec<String>),
}

impl Arg {
    fn describe(&self) -> String {
        match self {
            Arg::Field(f) => format!(".{}", f.join(".")),
            Arg::Dot => ".".into(),
            Arg::Var(v, f) => {
                let mut s = format!("${v}");
                for x in f {
                    s.push('.');
                    s.push_str(x);
                }
                s
            }
            Arg::Func(n) => n.clone(),
            Arg::Str(s) => format!("{s:?}"),
            Arg::Int(i) => i.to_string(),
            Arg::Float(f) => f.to_string(),
            Arg::Bool(b) => b.to_string(),
            Arg::Nil => "nil".into(),
            Arg::Pipe(..) => "(…)".into(),
        }
    }
}

impl Cmd {
    pub(crate) fn describe(&self) -> String {
        self.args
            .iter()
            .map(Arg::describe)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Template {
    /// Parses `text`; `name` is Go's template name ("line" or "label").
    pub fn new(name: &str, text: &str) -> Result<Template, TemplateError> {
        Template::parse(name, text, None)
    }

    /// Parses `text` with Go's builtins and `funcs` (instead of Loki's functions).
    pub fn with_funcs(
        name: &str,
        text: &str,
        funcs: &dyn Funcs,
    ) -> Result<Template, TemplateError> {
        Template::parse(name, text, Some(funcs))
    }

    fn parse(name: &str, text: &str, funcs: Option<&dyn Funcs>) -> Result<Template, TemplateError> {
        let (items, _) = lex(name, text)?;
        let mut p = Parser {
            name,
            items,
            lines: Vec::new(),
            pos: 0,
            vars: vec![vec![String::new()]],
            loop_depth: 0,
            funcs,
            set: None,
        };
        let (nodes, end) = p.parse_list()?;
        if let Some(end) = end {
            return Err(p.err(&format!("unexpected {{{{{end}}}}}")));
        }
        Ok(Template {
            name: name.to_string(),
            nodes,
            parse_name: None,
        })
    }

    /// Parses a template set as Go's `Template.Parse` does: `text` (named `name`, a
    /// file name or a description) may `{{define}}` templates, call them with
    /// `{{template "x" .}}` and `{{block}}`. Returns the top-level template and the
    /// defined ones (in order; a later one of the same name replaces an earlier one
    /// as Go does — that is the caller's map). Functions are Go's builtins and
    /// `funcs`; errors carry the line: `template: NAME:LINE: …`, and the define.
    pub fn parse_set(
        name: &str,
        text: &str,
        funcs: &dyn Funcs,
    ) -> Result<(Template, Vec<Template>), TemplateError> {
        let (items, lines) = lex(name, text)?;
        let mut p = Parser {
            name,
            items,
            lines,
            pos: 0,
            vars: vec![vec![String::new()]],
            loop_depth: 0,
            funcs: Some(funcs),
            set: Some(SetState::default()),
        };
        let (nodes, end) = p.parse_list()?;
        if let Some(end) = end {
            return Err(p.err(&format!("unexpected {{{{{end}}}}}")));
        }
        let defines = p.set.take().map(|s| s.defines).unwrap_or_default();
        Ok((
            Template {
                name: name.to_string(),
                nodes,
                parse_name: Some(name.to_string()),
            },
            defines,
        ))
    }

    /// The template's name (a define's name in a set).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the template has only white space (Go's `IsEmptyTree`: such a
    /// definition does not replace an existing one of the same name).
    pub fn is_empty(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
    }

    /// The label name when the template is exactly `{{.name}}` (Loki reads it
    /// directly then).
    pub fn simple_field(&self) -> Option<&str> {
        match self.nodes.as_slice() {
            [Node::Action(p)] if p.decl.is_empty() && p.cmds.len() == 1 => {
                match p.cmds[0].args.as_slice() {
                    [Arg::Field(f)] if f.len() == 1 => Some(&f[0]),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Runs the template over `data`; `line` and `ts` (ns) serve `__line__` and
    /// `__timestamp__`.
    pub fn execute(&self, data: &dyn Data, line: &str, ts: i64) -> Result<String, TemplateError> {
        exec::execute(self, data, line, ts)
    }

    /// Runs a template parsed with [`Template::with_funcs`] over `root` (the value of
    /// `.` and `$`), calling `funcs` for the non-builtin functions.
    pub fn execute_with(&self, root: Value, funcs: &dyn Funcs) -> Result<String, TemplateError> {
        exec::execute_with(self, root, funcs, false)
    }

    /// As [`Template::execute_with`], escaping what actions print as Go's
    /// `html/template` does in HTML text (`<`, `>`, `&`, `'`, `"`, `+`, NUL; nil
    /// prints nothing). The output of an action ending in `safeHtml` (or `html`)
    /// is printed as is. Contexts (attributes, URLs, scripts) are not told apart:
    /// everything is escaped as text, which is safe in quoted attributes too.
    pub fn execute_html(&self, root: Value, funcs: &dyn Funcs) -> Result<String, TemplateError> {
        exec::execute_with(self, root, funcs, true)
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    /// `.a.b` right after `)`
    Chain(Vec<String>),
    Dot,
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Char(i64),
    Number(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug)]
enum Item {
    Text(String),
    Action(Vec<Tok>),
}

/// The items of `text` and the line each starts on.
fn lex(name: &str, text: &str) -> Result<(Vec<Item>, Vec<usize>), TemplateError> {
    let err = |m: String| TemplateError(format!("template: {name}:1: {m}"));
    let mut items = Vec::new();
    let mut lines = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    let line_at = |rest: &str, off: usize| -> usize {
        let pos = text.len() - rest.len() + off;
        1 + text.as_bytes()[..pos]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
    };
    loop {
        let Some(open) = rest.find("{{") else {
            let mut t = rest;
            if trim_next {
                t = t.trim_start();
            }
            if !t.is_empty() {
                items.push(Item::Text(t.to_string()));
                lines.push(line_at(rest, 0));
            }
            break;
        };
        let mut t = &rest[..open];
        if trim_next {
            t = t.trim_start();
        }
        let mut after = &rest[open + 2..];
        let trim_left = after.len() >= 2
            && after.starts_with('-')
            && after[1..].starts_with([' ', '\t', '\n', '\r']);
        if trim_left {
            t = t.trim_end();
            after = &after[1..];
        }
        if !t.is_empty() {
            items.push(Item::Text(t.to_string()));
            lines.push(line_at(rest, 0));
        }
        // comment
        let trimmed = after.trim_start();
        if trimmed.starts_with("/*") && (trim_left || trimmed.len() == after.len()) {
            let Some(end) = trimmed.find("*/") else {
                return Err(err("unclosed comment".into()));
            };
            let tail = &trimmed[end + 2..];
            let (tail, tr) = if let Some(t) = tail.strip_prefix(" -}}") {
                (t, true)
            } else if let Some(t) = tail.trim_start().strip_prefix("-}}") {
                (t, true)
            } else if let Some(t) = tail.strip_prefix("}}") {
                (t, false)
            } else {
                return Err(err("comment ends before closing delimiter".into()));
            };
            trim_next = tr;
            rest = tail;
            continue;
        }
        let (toks, consumed, tr) = lex_action(after).map_err(err)?;
        items.push(Item::Action(toks));
        lines.push(line_at(rest, open));
        trim_next = tr;
        rest = &after[consumed..];
    }
    Ok((items, lines))
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Lexes one action's tokens up to `}}`: (tokens, bytes consumed, trim right).
fn lex_action(s: &str) -> Result<(Vec<Tok>, usize, bool), String> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut prev_space = true;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
            // right trim marker " -}}"
            if s[i..].trim_start().starts_with("-}}") {
                let j = i + (s[i..].len() - s[i..].trim_start().len());
                return Ok((toks, j + 3, true));
            }
            i += 1;
            prev_space = true;
            continue;
        }
        if s[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        let after_close = !prev_space && matches!(toks.last(), Some(Tok::RParen));
        prev_space = false;
        match c {
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'"' => {
                let (v, n) = lex_quoted(&s[i..])?;
                toks.push(Tok::Str(v));
                i += n;
            }
            b'`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or("unterminated raw quoted string")?;
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'\'' => {
                let (v, n) = lex_char(&s[i..])?;
                toks.push(Tok::Char(v));
                i += n;
            }
            b'.' if !b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                let (fields, n) = lex_fields(&s[i..]);
                i += n;
                if fields.is_empty() {
                    toks.push(Tok::Dot);
                    i += 1;
                } else if after_close {
                    toks.push(Tok::Chain(fields));
                } else {
                    toks.push(Tok::Field(fields));
                }
            }
            b'$' => {
                let n = s[i + 1..]
                    .chars()
                    .take_while(|c| is_ident_char(*c))
                    .map(char::len_utf8)
                    .sum::<usize>();
                let name = s[i + 1..i + 1 + n].to_string();
                i += 1 + n;
                let (fields, m) = lex_fields(&s[i..]);
                i += m;
                toks.push(Tok::Var(name, fields));
            }
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                let n = s[i..]
                    .char_indices()
                    .take_while(|(k, ch)| {
                        ch.is_ascii_alphanumeric()
                            || *ch == '.'
                            || *ch == '_'
                            || (*k == 0 && (*ch == '+' || *ch == '-'))
                            || ((*ch == '+' || *ch == '-')
                                && s[i..][..*k].ends_with(['e', 'E', 'p', 'P']))
                    })
                    .map(|(_, ch)| ch.len_utf8())
                    .sum::<usize>();
                if n == 0 || (n == 1 && (c == b'+' || c == b'-')) {
                    return Err(format!("unexpected {:?} in command", c as char));
                }
                toks.push(Tok::Number(s[i..i + n].to_string()));
                i += n;
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or(' ');
                if ch.is_alphabetic() || ch == '_' {
                    let n = s[i..]
                        .chars()
                        .take_while(|c| is_ident_char(*c))
                        .map(char::len_utf8)
                        .sum::<usize>();
                    toks.push(Tok::Ident(s[i..i + n].to_string()));
                    i += n;
                } else {
                    return Err(format!("unexpected {ch:?} in command"));
                }
            }
        }
    }
    Err("unclosed action".into())
}

/// `.a.b` at the start of `s`: (names, bytes consumed); no names for a bare `.`.
fn lex_fields(s: &str) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while s[i..].starts_with('.') {
        let n = s[i + 1..]
            .chars()
            .take_while(|c| is_ident_char(*c))
            .map(char::len_utf8)
            .sum::<usize>();
        if n == 0 {
            break;
        }
        out.push(s[i + 1..i + 1 + n].to_string());
        i += 1 + n;
    }
    (out, i)
}

fn lex_quoted(s: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut it = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => return Err("unterminated quoted string".into()),
            '\\' => {
                let (_, e) = it.next().ok_or("unterminated quoted string")?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut h = String::new();
                        for _ in 0..n {
                            h.push(it.next().ok_or("bad escape")?.1);
                        }
                        let v = u32::from_str_radix(&h, 16).map_err(|_| "invalid syntax")?;
                        out.push(char::from_u32(v).ok_or("invalid syntax")?);
                    }
                    '0'..='7' => {
                        let mut h = String::from(e);
                        for _ in 0..2 {
                            h.push(it.next().ok_or("bad escape")?.1);
                        }
                        let v = u32::from_str_radix(&h, 8).map_err(|_| "invalid syntax")?;
                        out.push(char::from_u32(v).ok_or("invalid syntax")?);
                    }
                    _ => return Err("invalid syntax".into()),
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

fn lex_char(s: &str) -> Result<(i64, usize), String> {
    let end = s[1..].find('\'').ok_or("unterminated character constant")? + 1;
    let body = &s[1..end];
    let v = if let Some(e) = body.strip_prefix('\\') {
        match e {
            "n" => '\n',
            "t" => '\t',
            "r" => '\r',
            "\\" => '\\',
            "'" => '\'',
            "0" => '\0',
            _ => return Err("invalid character constant".into()),
        }
    } else {
        let mut cs = body.chars();
        let c = cs.next().ok_or("empty character constant")?;
        if cs.next().is_some() {
            return Err("invalid character constant".into());
        }
        c
    };
    Ok((v as i64, end + 1))
}

// ---------------------------------------------------------------- parser

struct Parser<'n> {
    name: &'n str,
    items: Vec<Item>,
    /// the line of each item (template sets only; errors say line 1 otherwise)
    lines: Vec<usize>,
    pos: usize,
    /// declared variables per scope
    vars: Vec<Vec<String>>,
    loop_depth: usize,
    funcs: Option<&'n dyn Funcs>,
    /// `Some` when parsing a template set (`define`, `template`, `block` allowed)
    set: Option<SetState>,
}

#[derive(Default)]
struct SetState {
    defines: Vec<Template>,
    /// the define being parsed (for errors)
    current: Option<String>,
}

impl Parser<'_> {
    fn err(&self, m: &str) -> TemplateError {
        let Some(set) = &self.set else {
            return TemplateError(format!("template: {}:1: {m}", self.name));
        };
        let line = self
            .lines
            .get(self.pos.saturating_sub(1))
            .copied()
            .unwrap_or(1);
        match &set.current {
            Some(d) => TemplateError(format!(
                "template: {}:{line}: in {{{{define {d:?}}}}}: {m}",
                self.name
            )),
            None => TemplateError(format!("template: {}:{line}: {m}", self.name)),
        }
    }

    /// `{{define "name"}}` at the top level, `{{block "name" pipeline}}` anywhere:
    /// parses the body up to its `{{end}}` as a template of its own.
    fn parse_define(&mut self, kind: &str, toks: &[Tok]) -> Result<Option<Node>, TemplateError> {
        let name = match toks.first() {
            Some(Tok::Str(n)) => n.clone(),
            Some(t) => return Err(self.err(&format!("unexpected {t:?} in {kind} clause"))),
            None => return Err(self.err(&format!("missing name in {kind} clause"))),
        };
        let pipe = if kind == "block" {
            let p = self.parse_pipe(&toks[1..], false)?;
            if p.cmds.is_empty() {
                return Err(self.err("missing value for block clause"));
            }
            Some(p)
        } else {
            if toks.len() > 1 {
                return Err(self.err("unexpected tokens after name in define clause"));
            }
            None
        };
        // the body is a template of its own: only `$` is declared, no loop is open
        let vars = std::mem::replace(&mut self.vars, vec![vec![String::new()]]);
        let loop_depth = std::mem::replace(&mut self.loop_depth, 0);
        let outer = self
            .set
            .as_mut()
            .and_then(|s| s.current.replace(name.clone()));
        let body = self.parse_list();
        let body = match body {
            Ok((nodes, Some(e))) if e == "end" => Ok(nodes),
            Ok((_, Some(e))) => Err(self.err(&format!("unexpected {{{{{e}}}}}"))),
            Ok((_, None)) => Err(self.err(&format!("unexpected EOF in {kind} clause"))),
            Err(e) => Err(e),
        };
        if let Some(s) = self.set.as_mut() {
            s.current = outer;
        }
        self.vars = vars;
        self.loop_depth = loop_depth;
        let nodes = body?;
        if let Some(s) = self.set.as_mut() {
            s.defines.push(Template {
                name: name.clone(),
                nodes,
                parse_name: Some(self.name.to_string()),
            });
        }
        Ok(pipe.map(|p| Node::Template {
            name,
            pipe: Some(p),
        }))
    }

    /// Parses nodes until `{{end}}` / `{{else …}}` (returned as the terminator's
    /// text: "end" or "else").
    fn parse_list(&mut self) -> Result<(Vec<Node>, Option<String>), TemplateError> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let idx = self.pos;
            self.pos += 1;
            let toks = match &self.items[idx] {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action(t) => t.clone(),
            };
            match toks.first() {
                Some(Tok::Ident(k)) if k == "end" => {
                    if toks.len() > 1 {
                        return Err(self.err("unexpected token in end"));
                    }
                    return Ok((nodes, Some("end".into())));
                }
                Some(Tok::Ident(k)) if k == "else" => {
                    // keep the rest (e.g. `if …`) for the caller
                    self.items[idx] = Item::Action(toks[1..].to_vec());
                    return Ok((nodes, Some("else".into())));
                }
                Some(Tok::Ident(k)) if k == "if" || k == "range" || k == "with" => {
                    let k = k.clone();
                    nodes.push(self.parse_control(&k, &toks[1..])?);
                }
                Some(Tok::Ident(k)) if k == "break" || k == "continue" => {
                    if self.loop_depth == 0 {
                        return Err(self.err(&format!("{{{{{k}}}}} outside {{{{range}}}}")));
                    }
                    nodes.push(if k == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                Some(Tok::Ident(k)) if k == "define" && self.set.is_some() => {
                    let top = self.vars.len() == 1
                        && self.set.as_ref().is_some_and(|s| s.current.is_none());
                    if !top {
                        return Err(self.err("unexpected <define> in command"));
                    }
                    self.parse_define("define", &toks[1..])?;
                }
                Some(Tok::Ident(k)) if k == "block" && self.set.is_some() => {
                    if let Some(n) = self.parse_define("block", &toks[1..])? {
                        nodes.push(n);
                    }
                }
                Some(Tok::Ident(k)) if k == "template" && self.set.is_some() => {
                    let name = match toks.get(1) {
                        Some(Tok::Str(n)) => n.clone(),
                        Some(t) => {
                            return Err(self.err(&format!("unexpected {t:?} in template clause")));
                        }
                        None => return Err(self.err("missing name in template clause")),
                    };
                    let pipe = if toks.len() > 2 {
                        self.vars.push(Vec::new());
                        let p = self.parse_pipe(&toks[2..], false);
                        self.vars.pop();
                        Some(p?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template { name, pipe });
                }
                Some(Tok::Ident(k)) if k == "define" || k == "template" || k == "block" => {
                    return Err(self.err(&format!("{{{{{k}}}}} is not supported")));
                }
                None => return Err(self.err("missing value for command")),
                _ => {
                    let pipe = self.parse_pipe(&toks, false)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
        Ok((nodes, None))
    }

    fn parse_control(&mut self, kind: &str, toks: &[Tok]) -> Result<Node, TemplateError> {
        self.vars.push(Vec::new());
        let pipe = self.parse_pipe(toks, kind == "range")?;
        if pipe.cmds.is_empty() {
            return Err(self.err(&format!("missing value for {kind}")));
        }
        if kind == "range" {
            self.loop_depth += 1;
        }
        let (list, end) = self.parse_list()?;
        if kind == "range" {
            self.loop_depth -= 1;
        }
        let else_list = match end.as_deref() {
            Some("end") => Vec::new(),
            Some("else") => {
                // `{{else if …}}` / `{{else with …}}`: a nested control that owns the end
                let rest = match &self.items[self.pos - 1] {
                    Item::Action(t) => t.clone(),
                    Item::Text(_) => Vec::new(),
                };
                match rest.first() {
                    Some(Tok::Ident(k))
                        if (k == "if" && kind == "if") || (k == "with" && kind == "with") =>
                    {
                        let k = k.clone();
                        vec![self.parse_control(&k, &rest[1..])?]
                    }
                    None => {
                        let (l, e) = self.parse_list()?;
                        if e.as_deref() != Some("end") {
                            self.vars.pop();
                            return Err(self.err(&format!("expected end; found {e:?}")));
                        }
                        l
                    }
                    _ => return Err(self.err("unexpected tokens after else")),
                }
            }
            _ => return Err(self.err(&format!("unexpected EOF in {kind}"))),
        };
        self.vars.pop();
        Ok(match kind {
            "if" => Node::If {
                pipe,
                list,
                else_list,
            },
            "range" => Node::Range {
                pipe,
                list,
                else_list,
            },
            _ => Node::With {
                pipe,
                list,
                else_list,
            },
        })
    }

    fn var_declared(&self, name: &str) -> bool {
        self.vars.iter().any(|s| s.iter().any(|v| v == name))
    }

    fn parse_pipe(&mut self, toks: &[Tok], allow_two: bool) -> Result<Pipe, TemplateError> {
        let mut decl = Vec::new();
        let mut is_assign = false;
        let mut i = 0;
        // declarations: `$x :=`, `$x =`, `$i, $e :=`
        if let Some(Tok::Var(v, f)) = toks.first()
            && f.is_empty()
        {
            match toks.get(1) {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    is_assign = toks[1] == Tok::Assign;
                    decl.push(v.clone());
                    i = 2;
                }
                Some(Tok::Comma) if allow_two => {
                    if let (Some(Tok::Var(v2, f2)), Some(t)) = (toks.get(2), toks.get(3))
                        && f2.is_empty()
                        && (*t == Tok::Declare || *t == Tok::Assign)
                    {
                        is_assign = *t == Tok::Assign;
                        decl.push(v.clone());
                        decl.push(v2.clone());
                        i = 4;
                    } else {
                        return Err(self.err("too many declarations in command"));
                    }
                }
                _ => {}
            }
        }
        for v in &decl {
            if is_assign {
                if !self.var_declared(v) {
                    return Err(self.err(&format!("undefined variable \"${v}\"")));
                }
            } else if let Some(scope) = self.vars.last_mut() {
                scope.push(v.clone());
            }
        }
        let mut cmds = Vec::new();
        let (c, n) = self.parse_cmds(&toks[i..], &mut cmds)?;
        let _ = c;
        if i + n != toks.len() {
            return Err(self.err("unexpected \")\" in command"));
        }
        if cmds.is_empty() && !decl.is_empty() {
            return Err(self.err("missing value for command"));
        }
        Ok(Pipe {
            decl,
            is_assign,
            cmds,
        })
    }

    /// Parses `cmd | cmd …` until the end or a `)`; returns (closed by paren, consumed).
    fn parse_cmds(
        &mut self,
        toks: &[Tok],
        cmds: &mut Vec<Cmd>,
    ) -> Result<(bool, usize), TemplateError> {
        let mut i = 0;
        let mut args: Vec<Arg> = Vec::new();
        loop {
            match toks.get(i) {
                None | Some(Tok::RParen) => {
                    let closed = toks.get(i).is_some();
                    if args.is_empty() {
                        if !cmds.is_empty() {
                            return Err(self.err("missing command"));
                        }
                    } else {
                        cmds.push(self.finish_cmd(std::mem::take(&mut args))?);
                    }
                    return Ok((closed, i));
                }
                Some(Tok::Pipe) => {
                    if args.is_empty() {
                        return Err(self.err("missing command"));
                    }
                    cmds.push(self.finish_cmd(std::mem::take(&mut args))?);
                    i += 1;
                }
                Some(Tok::LParen) => {
                    let mut inner = Vec::new();
                    let (closed, n) = self.parse_cmds(&toks[i + 1..], &mut inner)?;
                    if !closed {
                        return Err(self.err("unclosed left paren"));
                    }
                    if inner.is_empty() {
                        return Err(self.err("missing value for parenthesized pipeline"));
                    }
                    i += n + 2;
                    let chain = match toks.get(i) {
                        Some(Tok::Chain(f)) => {
                            i += 1;
                            f.clone()
                        }
                        _ => Vec::new(),
                    };
                    args.push(Arg::Pipe(
                        Box::new(Pipe {
                            decl: Vec::new(),
                            is_assign: false,
                            cmds: inner,
                        }),
                        chain,
                    ));
                }
                Some(t) => {
                    args.push(self.term(t)?);
                    i += 1;
                }
            }
        }
    }

    fn term(&self, t: &Tok) -> Result<Arg, TemplateError> {
        Ok(match t {
            Tok::Field(f) => Arg::Field(f.clone()),
            Tok::Dot => Arg::Dot,
            Tok::Var(v, f) => {
                if !self.var_declared(v) {
                    return Err(self.err(&format!("undefined variable \"${v}\"")));
                }
                Arg::Var(v.clone(), f.clone())
            }
            Tok::Str(s) => Arg::Str(s.clone()),
            Tok::Char(c) => Arg::Int(*c),
            Tok::Number(n) => {
                parse_number(n).ok_or_else(|| self.err(&format!("bad number syntax: \"{n}\"")))?
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => {
                    let known = match self.funcs {
                        Some(f) => funcs::is_builtin(id) || f.has(id),
                        None => funcs::exists(id),
                    };
                    if !known {
                        return Err(self.err(&format!("function \"{id}\" not defined")));
                    }
                    Arg::Func(id.clone())
                }
            },
            Tok::Chain(_) => return Err(self.err("unexpected . after term")),
            _ => return Err(self.err(&format!("unexpected {t:?} in operand"))),
        })
    }

    fn finish_cmd(&self, args: Vec<Arg>) -> Result<Cmd, TemplateError> {
        if args.len() > 1
            && !matches!(
                args[0],
                Arg::Func(_) | Arg::Field(_) | Arg::Var(..) | Arg::Pipe(..)
            )
        {
            return Err(self.err(&format!(
                "can't give argument to non-function {}",
                args[0].describe()
            )));
        }
        let regex = match (args.first(), args.get(1)) {
            (Some(Arg::Func(f)), Some(Arg::Str(re)))
                if matches!(
                    f.as_str(),
                    "regexReplaceAll" | "regexReplaceAllLiteral" | "count"
                ) =>
            {
                Regex::new(re).ok()
            }
            _ => None,
        };
        Ok(Cmd { args, regex })
    }
}

fn parse_number(n: &str) -> Option<Arg> {
    let clean = n.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(b, 2).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Arg::Int(if neg { -i } else { i }));
    }
    let f: f64 = body.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    Some(Arg::Float(if neg { -f } else { f }))
}
