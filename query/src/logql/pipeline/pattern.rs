//! Loki's pattern expressions (`<name>` captures, `<_>` wildcards, literals), used by
//! the `pattern` parser and the `|>` / `!>` line filters, with Loki's matching rules.

use crate::error::{QueryError, Result};

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// `<name>`; `<_>` is the unnamed capture
    Capture(String),
    Literal(String),
}

impl Node {
    fn is_unnamed(&self) -> bool {
        matches!(self, Node::Capture(n) if n == "_")
    }
}

/// A parsed pattern.
#[derive(Debug, Clone)]
pub struct Matcher {
    nodes: Vec<Node>,
    names: Vec<String>,
}

fn parse_nodes(p: &str) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let bytes = p.as_bytes();
    let mut i = 0;
    let mut lit = String::new();
    while i < bytes.len() {
        if bytes[i] == b'<'
            && let Some(len) = identifier_len(&bytes[i + 1..])
        {
            if !lit.is_empty() {
                nodes.push(Node::Literal(std::mem::take(&mut lit)));
            }
            nodes.push(Node::Capture(p[i + 1..i + 1 + len].to_string()));
            i += len + 2;
            continue;
        }
        let c = p[i..].chars().next().expect("in bounds");
        lit.push(c);
        i += c.len_utf8();
    }
    if !lit.is_empty() {
        nodes.push(Node::Literal(lit));
    }
    nodes
}

/// Length of `name` in `name>…` when it is an identifier followed by `>`.
fn identifier_len(b: &[u8]) -> Option<usize> {
    let first = *b.first()?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    (b.get(n) == Some(&b'>')).then_some(n)
}

fn check_consecutive(nodes: &[Node], p: &str) -> Result<()> {
    for w in nodes.windows(2) {
        if let (Node::Capture(a), Node::Capture(b)) = (&w[0], &w[1]) {
            return Err(QueryError::Invalid(format!(
                "invalid pattern {p:?}: found consecutive capture '<{a}><{b}>': invalid expression"
            )));
        }
    }
    Ok(())
}

impl Matcher {
    /// A pattern for the `pattern` parser: at least one named capture, no two
    /// captures in a row, unique names.
    pub fn new(p: &str) -> Result<Self> {
        let nodes = parse_nodes(p);
        let names: Vec<String> = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Capture(c) if c != "_" => Some(c.clone()),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(QueryError::Invalid(format!(
                "invalid pattern {p:?}: at least one capture is required"
            )));
        }
        check_consecutive(&nodes, p)?;
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(QueryError::Invalid(format!(
                    "invalid pattern {p:?}: duplicate capture name ({n}): invalid expression"
                )));
            }
        }
        Ok(Matcher { nodes, names })
    }

    /// A pattern for `|>` / `!>`: only `<_>` captures, none in a row.
    pub fn new_line_filter(p: &str) -> Result<Self> {
        let nodes = parse_nodes(p);
        check_consecutive(&nodes, p)?;
        if let Some(Node::Capture(c)) = nodes
            .iter()
            .find(|n| matches!(n, Node::Capture(_)) && !n.is_unnamed())
        {
            return Err(QueryError::Invalid(format!(
                "invalid pattern {p:?}: named captures are not allowed: found '<{c}>'"
            )));
        }
        Ok(Matcher {
            nodes,
            names: Vec::new(),
        })
    }

    /// The named captures, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Loki's `Matches`: byte ranges of the named captures found (possibly fewer than
    /// the names when the line ends early; none when a leading literal is missing).
    pub fn matches(&self, line: &str, out: &mut Vec<(usize, usize)>) {
        out.clear();
        if line.is_empty() || self.nodes.is_empty() {
            return;
        }
        let mut pos = 0usize;
        let mut nodes = &self.nodes[..];
        if let Node::Literal(l) = &nodes[0] {
            if !line.starts_with(l.as_str()) {
                return;
            }
            pos = l.len();
            nodes = &nodes[1..];
        }
        while !nodes.is_empty() {
            let capt = &nodes[0];
            if nodes.len() == 1 {
                if !capt.is_unnamed() {
                    out.push((pos, line.len()));
                }
                return;
            }
            let Node::Literal(lit) = &nodes[1] else {
                return;
            };
            nodes = &nodes[2..];
            match line[pos..].find(lit.as_str()) {
                None => {
                    if !capt.is_unnamed() {
                        out.push((pos, line.len()));
                    }
                    return;
                }
                Some(i) => {
                    if !capt.is_unnamed() {
                        out.push((pos, pos + i));
                    }
                    pos += i + lit.len();
                }
            }
        }
    }

    /// Loki's `Test` (the line filter): literals in order, each capture non-empty,
    /// and the line fully consumed unless the pattern ends with a capture.
    pub fn test(&self, line: &str) -> bool {
        if line.is_empty() || self.nodes.is_empty() {
            return line.is_empty() && self.nodes.is_empty();
        }
        let mut off = 0usize;
        for (i, n) in self.nodes.iter().enumerate() {
            let Node::Literal(lit) = n else { continue };
            let Some(j) = line[off..].find(lit.as_str()) else {
                return false;
            };
            if i != 0 && j == 0 {
                return false;
            }
            off += j + lit.len();
        }
        let req_rem = matches!(self.nodes.last(), Some(Node::Capture(_)));
        let has_rem = off != line.len();
        req_rem == has_rem
    }
}
