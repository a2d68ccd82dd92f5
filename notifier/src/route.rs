//! Alertmanager 0.25's route tree: which routes (and so receivers and aggregation
//! groups) an alert goes to.
//!
//! This module owns [`RouteTree`], compiled from a validated [`RouteConfig`], and its
//! [`Route`]s. As in Alertmanager's `dispatch.NewRoute`:
//! - a route takes its parent's options and overrides those it sets: `receiver`,
//!   `group_wait` (root default 30s), `group_interval` (5m), `repeat_interval` (4h);
//!   `group_by` overrides when it names at least one label, `[...]` alone turns on
//!   grouping by all labels and keeps the rest, and an empty list inherits;
//!   `mute_time_intervals` and `active_time_intervals` are the route's own (not
//!   inherited);
//! - its matchers are `match` (`=`), `match_re` (`=~` with the anchored pattern
//!   `^(?:re)$` as value) and `matchers`, sorted by name, value and type;
//! - [`RouteTree::route`] is `Route.Match`: depth-first, left to right; a child that
//!   matched stops its later siblings unless it has `continue`; a route matches itself
//!   when none of its children matched;
//! - [`Route::key`] is `Route.Key()` (`{}/{severity="critical"}`: the matchers of
//!   every route from the root, each `{…}` joined with `/`), and [`Route::group_key`]
//!   the aggregation group key `key:{labels}` that Alertmanager puts in notifications
//!   (`groupKey` of the webhook payload); [`Route::id`] is the later Alertmanagers'
//!   `Route.ID()` (the key plus the route's index among its siblings, unique).
//!
//! [`RouteTree`] implements [`AlertRouting`] for the Alertmanager API.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use argus_rules::alert_store::{AlertRouting, RouteMatch};
use argus_rules::silences::{LabelMatcher, matches_all};
use argus_schemas::Labels;

use crate::NotifierError;
use crate::config::{AlertmanagerFile, RouteConfig, split_group_by};

/// The root route's `group_wait` when not given.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// The root route's `group_interval` when not given.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The root route's `repeat_interval` when not given.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// One compiled route: its options (inheritance applied) and its children.
#[derive(Debug, Clone)]
pub struct Route {
    pub receiver: String,
    /// The labels to group by, sorted (ignored when `group_by_all`).
    pub group_by: Vec<String>,
    /// `group_by: ['...']`: every label of the alert.
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    /// `continue`: later siblings are tried after this route matched.
    pub continue_matching: bool,
    pub matchers: Vec<LabelMatcher>,
    pub routes: Vec<Route>,
    key: String,
    id: String,
    path: String,
}

/// Alertmanager's `Matchers.String()`: `{a="b",c=~"d"}`.
pub fn matchers_string(matchers: &[LabelMatcher]) -> String {
    let inner: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", inner.join(","))
}

/// Whether Go's `unicode.IsPrint` holds, close enough for label values: graphic
/// characters and the ASCII space, but not other spaces, controls, format characters
/// or private-use characters.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xE000..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xF0000..)
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Prometheus' `LabelSet.String()` as Alertmanager 0.25 prints it in group keys:
/// `name="value"` pairs (Go-quoted values) sorted as whole strings, joined with `, `
/// in braces — so `a0="x"` comes before `a="y"`.
pub fn go_label_set_string(labels: &Labels) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(n, v)| format!("{n}={}", go_quote(v)))
        .collect();
    pairs.sort();
    format!("{{{}}}", pairs.join(", "))
}

impl Route {
    fn compile(
        cfg: &RouteConfig,
        parent: Option<&Route>,
        index: usize,
        path: String,
    ) -> Result<Route, NotifierError> {
        let bad = |e: String| NotifierError::Config(format!("{path}: {e}"));
        let matchers = cfg.compiled_matchers().map_err(bad)?;
        let mstr = matchers_string(&matchers);
        let mut route = match parent {
            Some(p) => Route {
                receiver: p.receiver.clone(),
                group_by: p.group_by.clone(),
                group_by_all: p.group_by_all,
                group_wait: p.group_wait,
                group_interval: p.group_interval,
                repeat_interval: p.repeat_interval,
                mute_time_intervals: Vec::new(),
                active_time_intervals: Vec::new(),
                continue_matching: false,
                matchers: Vec::new(),
                routes: Vec::new(),
                key: format!("{}/{mstr}", p.key),
                id: format!("{}/{mstr}/{index}", p.id),
                path: String::new(),
            },
            None => Route {
                receiver: String::new(),
                group_by: Vec::new(),
                group_by_all: false,
                group_wait: DEFAULT_GROUP_WAIT,
                group_interval: DEFAULT_GROUP_INTERVAL,
                repeat_interval: DEFAULT_REPEAT_INTERVAL,
                mute_time_intervals: Vec::new(),
                active_time_intervals: Vec::new(),
                continue_matching: false,
                matchers: Vec::new(),
                routes: Vec::new(),
                key: mstr.clone(),
                id: mstr.clone(),
                path: String::new(),
            },
        };
        if !cfg.receiver.is_empty() {
            route.receiver = cfg.receiver.clone();
        }
        if let Some(group_by) = &cfg.group_by {
            let (names, all) = split_group_by(group_by);
            if !names.is_empty() {
                route.group_by = names
                    .into_iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                route.group_by_all = false;
            } else if all {
                route.group_by_all = true;
            }
        }
        if let Some(d) = cfg.group_wait {
            route.group_wait = d;
        }
        if let Some(d) = cfg.group_interval {
            route.group_interval = d;
        }
        if let Some(d) = cfg.repeat_interval {
            route.repeat_interval = d;
        }
        route.mute_time_intervals = cfg.mute_time_intervals.clone();
        route.active_time_intervals = cfg.active_time_intervals.clone();
        route.continue_matching = cfg.r#continue;
        route.matchers = matchers;
        let mut children = Vec::with_capacity(cfg.routes.len());
        for (i, c) in cfg.routes.iter().enumerate() {
            children.push(Route::compile(
                c,
                Some(&route),
                i,
                format!("{path}.routes[{i}]"),
            )?);
        }
        route.routes = children;
        route.path = path;
        Ok(route)
    }

    /// Alertmanager's route key: the matchers of each route from the root, `/`-joined
    /// (`{}/{team="db"}/{severity=~"^(?:crit)$"}`). Routes may share a key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A unique id: like the key, with each route's index among its siblings
    /// (`{}/{team="db"}/0`), as later Alertmanagers' `Route.ID()`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the route is in the file: `route`, `route.routes[0].routes[2]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the route's own matchers accept the labels (a missing label is empty).
    pub fn matches(&self, labels: &Labels) -> bool {
        matches_all(&self.matchers, labels)
    }

    /// The labels of the alert's aggregation group on this route: those named in
    /// `group_by`, or all with `...`.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        if self.group_by_all {
            return labels.clone();
        }
        Labels::from_pairs(labels.iter().filter(|(n, _)| {
            self.group_by
                .binary_search_by(|g| g.as_str().cmp(n))
                .is_ok()
        }))
    }

    /// Alertmanager's aggregation group key: `route key:{group labels}`.
    pub fn group_key(&self, group_labels: &Labels) -> String {
        format!("{}:{}", self.key, go_label_set_string(group_labels))
    }

    fn match_into<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a Route>) -> bool {
        if !self.matches(labels) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            if child.match_into(labels, out) && !child.continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    fn walk_into<'a>(&'a self, out: &mut Vec<&'a Route>) {
        out.push(self);
        for c in &self.routes {
            c.walk_into(out);
        }
    }
}

/// The compiled `route:` of a configuration, with the file's receiver names.
#[derive(Debug, Clone)]
pub struct RouteTree {
    root: Route,
    receivers: Vec<String>,
}

impl RouteTree {
    /// Compiles the route tree of a file, which is validated first.
    pub fn new(file: &AlertmanagerFile) -> Result<Self, NotifierError> {
        file.validate()?;
        RouteTree::from_route(&file.root_route(), file.receiver_names())
    }

    /// Compiles a route tree (`root` should come from a validated file: this checks
    /// only that its matchers compile) with the configured receiver names.
    pub fn from_route(root: &RouteConfig, receivers: Vec<String>) -> Result<Self, NotifierError> {
        Ok(RouteTree {
            root: Route::compile(root, None, 0, "route".into())?,
            receivers,
        })
    }

    pub fn root(&self) -> &Route {
        &self.root
    }

    /// The routes an alert with these labels takes, in tree order (Alertmanager's
    /// `Route.Match` on the root; the root itself when nothing deeper matched).
    pub fn route(&self, labels: &Labels) -> Vec<&Route> {
        let mut out = Vec::new();
        self.root.match_into(labels, &mut out);
        out
    }

    /// Every route, depth-first from the root (Alertmanager's `Walk` order).
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = Vec::new();
        self.root.walk_into(&mut out);
        out
    }

    /// The route with this [`Route::id`].
    pub fn find(&self, id: &str) -> Option<&Route> {
        self.walk().into_iter().find(|r| r.id == id)
    }

    /// The configured receiver names, in file order.
    pub fn receiver_names(&self) -> &[String] {
        &self.receivers
    }
}

impl AlertRouting for RouteTree {
    fn receivers(&self) -> Vec<String> {
        self.receivers.clone()
    }

    fn route(&self, labels: &Labels) -> Vec<RouteMatch> {
        RouteTree::route(self, labels)
            .into_iter()
            .map(|r| RouteMatch {
                receiver: r.receiver.clone(),
                group_labels: r.group_labels(labels),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("plain"), r#""plain""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\x07\x00\x7f\n"), r#""\a\x00\x7f\n""#);
        assert_eq!(go_quote("é中"), "\"é中\"");
        assert_eq!(go_quote("\u{a0}\u{200b}"), r#""\u00a0\u200b""#);
    }

    #[test]
    fn label_set_strings_sort_whole_pairs() {
        let l = Labels::from_pairs([("a", "1"), ("a0", "2"), ("b", "x\"y")]);
        assert_eq!(go_label_set_string(&l), r#"{a0="2", a="1", b="x\"y"}"#);
        assert_eq!(go_label_set_string(&Labels::new()), "{}");
    }
}
