//! Template execution: Go's evaluation rules (pipelines pass the previous result as
//! the last argument, `and`/`or` short-circuit, truthiness, printing with `%v`).

use std::collections::BTreeMap;
use std::rc::Rc;

use super::gotime::GoTime;
use super::{Arg, Cmd, Data, Funcs, Node, Pipe, Template, TemplateError, funcs};

/// A template value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Time(GoTime),
    List(Rc<Vec<Value>>),
    Map(Rc<BTreeMap<String, Value>>),
    /// The label map (the template's data).
    Root,
}

impl Value {
    /// Go's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Time(_) => "time.Time",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Root => "map[string]string",
        }
    }
}

/// The running state of one execution.
pub(crate) struct Exec<'a> {
    pub data: &'a dyn Data,
    pub line: &'a str,
    pub ts: i64,
    name: &'a str,
    /// the set's text the running template was parsed from (errors name it)
    parse_name: Option<&'a str>,
    vars: Vec<(String, Value)>,
    out: String,
    pub funcs: Option<&'a dyn Funcs>,
    /// escape printed values as html/template does in HTML text
    html: bool,
    /// nesting of `{{template}}` calls
    depth: usize,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) fn execute(
    t: &Template,
    data: &dyn Data,
    line: &str,
    ts: i64,
) -> Result<String, TemplateError> {
    let mut ex = Exec {
        data,
        line,
        ts,
        name: &t.name,
        parse_name: t.parse_name.as_deref(),
        vars: vec![(String::new(), Value::Root)],
        out: String::new(),
        funcs: None,
        html: false,
        depth: 0,
    };
    ex.walk_list(&t.nodes, &Value::Root)?;
    Ok(ex.out)
}

/// No labels: the data of templates run over an explicit root value.
struct NoData;

impl Data for NoData {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
    fn entries(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

pub(crate) fn execute_with(
    t: &Template,
    root: Value,
    funcs: &dyn Funcs,
    html: bool,
) -> Result<String, TemplateError> {
    let mut ex = Exec {
        data: &NoData,
        line: "",
        ts: 0,
        name: &t.name,
        parse_name: t.parse_name.as_deref(),
        vars: vec![(String::new(), root.clone())],
        out: String::new(),
        funcs: Some(funcs),
        html,
        depth: 0,
    };
    ex.walk_list(&t.nodes, &root)?;
    Ok(ex.out)
}

impl<'a> Exec<'a> {
    pub(crate) fn err(&self, at: &str, msg: &str) -> TemplateError {
        match self.parse_name {
            Some(p) => TemplateError(format!(
                "template: {p}: executing \"{}\" at <{at}>: {msg}",
                self.name
            )),
            None => TemplateError(format!(
                "template: {}:1: executing \"{}\" at <{}>: {}",
                self.name, self.name, at, msg
            )),
        }
    }

    /// `{{template "name" pipe}}`: runs the named template of the set with the
    /// pipeline's value as `.` and `$`, and variables of its own.
    fn call_template(
        &mut self,
        name: &str,
        pipe: Option<&Pipe>,
        dot: &Value,
    ) -> Result<(), TemplateError> {
        let at = format!("{{{{template {name:?}}}}}");
        let data = match pipe {
            Some(p) => self.eval_pipe_nodecl(p, dot)?,
            None => Value::Nil,
        };
        let Some(t) = self.funcs.and_then(|f| f.template(name)) else {
            return Err(self.err(&at, &format!("template {name:?} not defined")));
        };
        if self.depth >= super::MAX_TEMPLATE_DEPTH {
            return Err(self.err(
                &at,
                &format!(
                    "exceeded maximum template depth ({})",
                    super::MAX_TEMPLATE_DEPTH
                ),
            ));
        }
        let saved_vars = std::mem::replace(&mut self.vars, vec![(String::new(), data.clone())]);
        let saved_name = std::mem::replace(&mut self.name, &t.name);
        let saved_parse = std::mem::replace(&mut self.parse_name, t.parse_name.as_deref());
        self.depth += 1;
        let r = self.walk_list(&t.nodes, &data);
        self.depth -= 1;
        self.vars = saved_vars;
        self.name = saved_name;
        self.parse_name = saved_parse;
        r.map(|_| ())
    }

    fn walk_list(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        for n in nodes {
            match self.walk(n, dot)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, n: &Node, dot: &Value) -> Result<Flow, TemplateError> {
        match n {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(p) => {
                let v = self.eval_pipe(p, dot)?;
                if p.decl.is_empty() {
                    if self.html && !ends_safe(p) {
                        if !matches!(v, Value::Nil) {
                            html_escape_into(&mut self.out, &display(&v));
                        }
                    } else {
                        print_value(&mut self.out, &v);
                    }
                }
            }
            Node::Template { name, pipe } => self.call_template(name, pipe.as_ref(), dot)?,
            Node::If {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipe(pipe, dot)?;
                let r = if truth(&v, self.data) {
                    self.walk_list(list, dot)
                } else {
                    self.walk_list(else_list, dot)
                };
                self.vars.truncate(mark);
                return r;
            }
            Node::With {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipe(pipe, dot)?;
                let r = if truth(&v, self.data) {
                    self.walk_list(list, &v)
                } else {
                    self.walk_list(else_list, dot)
                };
                self.vars.truncate(mark);
                return r;
            }
            Node::Range {
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipe_nodecl(pipe, dot)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::List(l) => l
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                        .collect(),
                    Value::Map(m) => m
                        .iter()
                        .map(|(k, x)| (Value::Str(k.clone()), x.clone()))
                        .collect(),
                    Value::Root => self
                        .data
                        .entries()
                        .into_iter()
                        .map(|(k, x)| (Value::Str(k), Value::Str(x)))
                        .collect(),
                    Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                    Value::Nil => Vec::new(),
                    other => {
                        return Err(self.err(
                            "range",
                            &format!("range can't iterate over {}", display(other)),
                        ));
                    }
                };
                if items.is_empty() {
                    let r = self.walk_list(else_list, dot);
                    self.vars.truncate(mark);
                    return r;
                }
                for (k, x) in items {
                    let inner = self.vars.len();
                    match pipe.decl.len() {
                        1 => self.set_var(&pipe.decl[0], x.clone(), pipe.is_assign),
                        2 => {
                            self.set_var(&pipe.decl[0], k, pipe.is_assign);
                            self.set_var(&pipe.decl[1], x.clone(), pipe.is_assign);
                        }
                        _ => {}
                    }
                    let f = self.walk_list(list, &x)?;
                    self.vars.truncate(
                        inner.max(mark + if pipe.is_assign { 0 } else { pipe.decl.len() }),
                    );
                    if let Flow::Break = f {
                        break;
                    }
                }
                self.vars.truncate(mark);
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, v: Value, assign: bool) {
        if assign && let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
            return;
        }
        self.vars.push((name.to_string(), v));
    }

    fn eval_pipe_nodecl(&mut self, p: &Pipe, dot: &Value) -> Result<Value, TemplateError> {
        let mut v: Option<Value> = None;
        for c in &p.cmds {
            v = Some(self.eval_cmd(c, dot, v)?);
        }
        Ok(v.unwrap_or(Value::Nil))
    }

    fn eval_pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, TemplateError> {
        let v = self.eval_pipe_nodecl(p, dot)?;
        for d in &p.decl {
            self.set_var(d, v.clone(), p.is_assign);
        }
        Ok(v)
    }

    fn eval_cmd(
        &mut self,
        c: &Cmd,
        dot: &Value,
        fin: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let first = &c.args[0];
        match first {
            Arg::Func(name) => self.call(name, c, dot, fin),
            Arg::Field(path) => {
                let (v, rest) = (dot.clone(), path.as_slice());
                self.eval_fields(v, rest, c, dot, fin)
            }
            Arg::Var(name, path) => {
                let v = self.lookup_var(name, &c.describe())?;
                self.eval_fields(v, path, c, dot, fin)
            }
            Arg::Pipe(p, path) => {
                let v = self.eval_pipe_nodecl(p, dot)?;
                self.eval_fields(v, path, c, dot, fin)
            }
            _ => {
                if fin.is_some() {
                    return Err(self.err(
                        &c.describe(),
                        &format!("can't give argument to non-function {}", first.describe()),
                    ));
                }
                self.eval_arg(first, dot)
            }
        }
    }

    fn lookup_var(&self, name: &str, at: &str) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(at, &format!("undefined variable: ${name}")))
    }

    /// Evaluates a field chain; the last field may be a method taking the
    /// command's other arguments (and the piped value).
    fn eval_fields(
        &mut self,
        mut v: Value,
        path: &[String],
        c: &Cmd,
        dot: &Value,
        fin: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let has_args = c.args.len() > 1 || fin.is_some();
        if path.is_empty() {
            if has_args {
                return Err(self.err(
                    &c.describe(),
                    &format!(
                        "can't give argument to non-function {}",
                        c.args[0].describe()
                    ),
                ));
            }
            return Ok(v);
        }
        for (i, f) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let mut args = Vec::new();
            if last && has_args {
                for a in &c.args[1..] {
                    args.push(self.eval_arg(a, dot)?);
                }
                if let Some(x) = &fin {
                    args.push(x.clone());
                }
            }
            v = self.field(&v, f, args, last && has_args, &c.describe())?;
        }
        Ok(v)
    }

    fn field(
        &self,
        v: &Value,
        name: &str,
        args: Vec<Value>,
        called: bool,
        at: &str,
    ) -> Result<Value, TemplateError> {
        if let Some(r) = self.funcs.and_then(|f| f.method(v, name, &args)) {
            return r.map_err(|e| self.err(at, &e));
        }
        match v {
            Value::Root => {
                if called {
                    return Err(self.err(at, &format!("{name} is not a method but has arguments")));
                }
                Ok(Value::Str(self.data.get(name).unwrap_or("").to_string()))
            }
            Value::Map(m) => {
                if called {
                    return Err(self.err(at, &format!("{name} is not a method but has arguments")));
                }
                Ok(m.get(name).cloned().unwrap_or_else(|| match self.funcs {
                    Some(f) => f.missing_key(m),
                    None => Value::Nil,
                }))
            }
            Value::Time(t) => funcs::time_method(t, name, &args).map_err(|e| self.err(at, &e)),
            Value::Nil => {
                Err(self.err(at, &format!("nil pointer evaluating interface {{}}.{name}")))
            }
            other => Err(self.err(
                at,
                &format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    pub(crate) fn eval_arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match a {
            Arg::Field(path) => {
                let mut v = dot.clone();
                for f in path {
                    v = self.field(&v, f, Vec::new(), false, &a.describe())?;
                }
                v
            }
            Arg::Dot => dot.clone(),
            Arg::Var(name, path) => {
                let mut v = self.lookup_var(name, &a.describe())?;
                for f in path {
                    v = self.field(&v, f, Vec::new(), false, &a.describe())?;
                }
                v
            }
            Arg::Func(name) => {
                let c = Cmd {
                    args: vec![a.clone()],
                    regex: None,
                };
                self.call(name, &c, dot, None)?
            }
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Nil,
            Arg::Pipe(p, path) => {
                let mut v = self.eval_pipe_nodecl(p, dot)?;
                for f in path {
                    v = self.field(&v, f, Vec::new(), false, &a.describe())?;
                }
                v
            }
        })
    }

    fn call(
        &mut self,
        name: &str,
        c: &Cmd,
        dot: &Value,
        fin: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let at = c.describe();
        // and/or short-circuit
        if name == "and" || name == "or" {
            let n = c.args.len() - 1 + usize::from(fin.is_some());
            if n == 0 {
                return Err(self.err(
                    &at,
                    &format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = Value::Nil;
            for i in 0..n {
                let v = if i < c.args.len() - 1 {
                    self.eval_arg(&c.args[i + 1], dot)?
                } else {
                    fin.clone().unwrap_or(Value::Nil)
                };
                let t = truth(&v, self.data);
                last = v;
                if (name == "and" && !t) || (name == "or" && t) {
                    return Ok(last);
                }
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(c.args.len());
        for a in &c.args[1..] {
            args.push(self.eval_arg(a, dot)?);
        }
        if let Some(f) = fin {
            args.push(f);
        }
        let r = match self.funcs {
            Some(f) if !funcs::is_builtin(name) => f.call(name, args),
            _ => funcs::call(self, name, args, c.regex.as_ref()),
        };
        r.map_err(|e| self.err(&at, &format!("error calling {name}: {e}")))
    }
}

/// Whether an action's output is already HTML: its last command calls `safeHtml`
/// (html/template's `template.HTML`) or `html`.
fn ends_safe(p: &Pipe) -> bool {
    p.cmds
        .last()
        .and_then(|c| c.args.first())
        .is_some_and(|a| matches!(a, Arg::Func(f) if f == "safeHtml" || f == "html"))
}

/// html/template's escaping of text in HTML.
fn html_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// Go's template truthiness.
pub(crate) fn truth(v: &Value, data: &dyn Data) -> bool {
    match v {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Time(_) => true,
        Value::List(l) => !l.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::Root => !data.entries().is_empty(),
    }
}

/// Go's `%v` of a value.
pub(crate) fn display(v: &Value) -> String {
    let mut s = String::new();
    print_value(&mut s, v);
    s
}

pub(crate) fn print_value(out: &mut String, v: &Value) {
    match v {
        Value::Nil => out.push_str("<no value>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format_float_g(*f, None)),
        Value::Str(s) => out.push_str(s),
        Value::Time(t) => out.push_str(&t.go_string()),
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_inner(out, x);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_inner(out, x);
            }
            out.push(']');
        }
        Value::Root => out.push_str("map[…]"),
    }
}

fn print_inner(out: &mut String, v: &Value) {
    match v {
        Value::Nil => out.push_str("<nil>"),
        other => print_value(out, other),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', prec, 64)` (`prec` None: shortest, as `%v`
/// prints floats: exponent form when the exponent is < -4 or >= 6, e.g. `1e+06`).
pub fn format_float_g(f: f64, prec: Option<usize>) -> String {
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
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // digits and exponent of the shortest (or prec-digit) representation
    let e_repr = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, f),
        None => format!("{f:e}"),
    };
    let (mant, exp) = e_repr.split_once('e').unwrap_or((&e_repr, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = if prec.is_some() {
        digits.trim_end_matches('0').to_string()
    } else {
        digits
    };
    let digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits
    };
    let eprec: i32 = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            if p > digits.len() as i32 && digits.len() as i32 > exp {
                digits.len() as i32
            } else {
                p
            }
        }
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}
