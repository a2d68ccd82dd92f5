//! Prometheus' relabeling (`relabel_configs`, `metric_relabel_configs`): the config
//! ([`RelabelConfig`]), its validation into a [`Relabeler`], and applying a list of them
//! to a label set ([`process`]).
//!
//! Semantics follow Prometheus (`model/relabel`), with its defaults: `separator` `;`,
//! `regex` `(.*)`, `replacement` `$1`, `action` `replace`. The regular expression is
//! fully anchored (`^(?s:REGEX)$`). The source value is the `source_labels` values (an
//! absent label is the empty string) joined by `separator`. `$1`, `$name` and `${name}`
//! in `replacement` (and in `target_label` for `replace`) expand to capture groups
//! (`$$` is a literal `$`; a longest-name rule applies, so `$1x` names group `1x`,
//! which is empty: write `${1}x`). Setting a label to the empty string removes it.
//!
//! | action | effect |
//! |---|---|
//! | `replace` | if `regex` matches the source value, sets `target_label` (expanded) to `replacement` (expanded); an empty result removes the label; no match, or an invalid expanded name, changes nothing |
//! | `keep` / `drop` | drops the set unless / if `regex` matches the source value |
//! | `keepequal` / `dropequal` | drops the set unless / if the source value equals `target_label`'s value |
//! | `hashmod` | sets `target_label` to the MD5 of the source value (its last 8 bytes, big-endian) modulo `modulus` |
//! | `lowercase` / `uppercase` | sets `target_label` to the source value in lower / upper case |
//! | `labelmap` | for every label whose name matches `regex`, adds a label named `replacement` (expanded; skipped when that is not a label name) with the same value |
//! | `labeldrop` / `labelkeep` | removes every label whose name matches / does not match `regex` |
//!
//! Label names are the classic ones (`[a-zA-Z_][a-zA-Z0-9_]*`), as everywhere in Argus.

use std::fmt;

use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use argus_schemas::Labels;

/// `separator`'s default.
pub const DEFAULT_SEPARATOR: &str = ";";
/// `regex`'s default.
pub const DEFAULT_REGEX: &str = "(.*)";
/// `replacement`'s default.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// A relabeling action; written in lower case (Prometheus accepts any case).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let lower = s.to_ascii_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown relabel action {s:?}")))
    }
}

/// One entry of `relabel_configs` / `metric_relabel_configs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values, joined by `separator`, are the source value.
    pub source_labels: Vec<String>,
    /// Default `;`.
    pub separator: String,
    /// Fully anchored. Default `(.*)`.
    pub regex: String,
    /// For `hashmod`; required (non-zero) there.
    pub modulus: u64,
    /// For `replace`, `hashmod`, `lowercase`, `uppercase`, `keepequal`, `dropequal`.
    pub target_label: String,
    /// Default `$1`.
    pub replacement: String,
    /// Default `replace`.
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.into(),
            regex: DEFAULT_REGEX.into(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.into(),
            action: Action::Replace,
        }
    }
}

/// A checked [`RelabelConfig`] with its regular expression compiled.
#[derive(Debug, Clone)]
pub struct Relabeler {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Compiles `regex` anchored at both ends, as Prometheus does.
pub fn anchored(regex: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?s:{regex})$"))
}

impl RelabelConfig {
    /// Checks the entry as Prometheus does (same rules, similar messages) and compiles it.
    pub fn compile(&self) -> Result<Relabeler, String> {
        let a = self.action;
        let templated = |s: &str| s.contains('$');
        let regex =
            anchored(&self.regex).map_err(|e| format!("invalid regex {:?}: {e}", self.regex))?;
        for l in &self.source_labels {
            if !is_label_name(l) {
                return Err(format!("{l:?} is not a valid label name in source_labels"));
            }
        }
        if a == Action::HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            a,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        if a == Action::Replace
            && !templated(&self.target_label)
            && !is_label_name(&self.target_label)
        {
            return Err(format!(
                "{:?} is invalid 'target_label' for {a} action",
                self.target_label
            ));
        }
        if matches!(
            a,
            Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        ) && !is_label_name(&self.target_label)
        {
            return Err(format!(
                "{:?} is invalid 'target_label' for {a} action",
                self.target_label
            ));
        }
        if matches!(
            a,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        ) && !(self.replacement == DEFAULT_REPLACEMENT || self.replacement.is_empty())
        {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == Action::LabelMap
            && !templated(&self.replacement)
            && !is_label_name(&self.replacement)
        {
            return Err(format!(
                "{:?} is invalid 'replacement' for {a} action",
                self.replacement
            ));
        }
        if matches!(a, Action::KeepEqual | Action::DropEqual)
            && (self.regex != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        Ok(Relabeler {
            source_labels: self.source_labels.clone(),
            separator: self.separator.clone(),
            regex,
            modulus: self.modulus,
            target_label: self.target_label.clone(),
            replacement: self.replacement.clone(),
            action: a,
        })
    }
}

/// Compiles a list; the error names the entry (`[2]: …`).
pub fn compile_all(cfgs: &[RelabelConfig]) -> Result<Vec<Relabeler>, String> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| c.compile().map_err(|e| format!("[{i}]: {e}")))
        .collect()
}

/// Sets `name` to `value`, or removes it when `value` is empty.
fn set(labels: &mut Labels, name: &str, value: String) {
    if value.is_empty() {
        labels.remove(name);
    } else {
        labels.insert(name, value);
    }
}

/// Prometheus' `hashmod`: the last 8 bytes of the MD5 digest, big-endian, modulo `m`.
pub fn hashmod(value: &str, m: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(tail) % m
}

impl Relabeler {
    pub fn action(&self) -> Action {
        self.action
    }

    /// Applies this step; false when the set is dropped.
    pub fn apply(&self, labels: &mut Labels) -> bool {
        let val = self
            .source_labels
            .iter()
            .map(|n| labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&self.separator);
        match self.action {
            Action::Drop => {
                if self.regex.is_match(&val) {
                    return false;
                }
            }
            Action::Keep => {
                if !self.regex.is_match(&val) {
                    return false;
                }
            }
            Action::DropEqual => {
                if labels.get(&self.target_label).unwrap_or("") == val {
                    return false;
                }
            }
            Action::KeepEqual => {
                if labels.get(&self.target_label).unwrap_or("") != val {
                    return false;
                }
            }
            Action::Replace => {
                let Some(caps) = self.regex.captures(&val) else {
                    return true;
                };
                let mut target = String::new();
                caps.expand(&self.target_label, &mut target);
                if !is_label_name(&target) {
                    return true;
                }
                let mut res = String::new();
                caps.expand(&self.replacement, &mut res);
                set(labels, &target, res);
            }
            Action::Lowercase => set(labels, &self.target_label, val.to_lowercase()),
            Action::Uppercase => set(labels, &self.target_label, val.to_uppercase()),
            Action::HashMod => {
                let m = hashmod(&val, self.modulus);
                set(labels, &self.target_label, m.to_string());
            }
            Action::LabelMap => {
                let snapshot: Vec<(String, String)> = labels
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                for (name, value) in snapshot {
                    if self.regex.is_match(&name) {
                        let res = self.regex.replace_all(&name, self.replacement.as_str());
                        // An expansion that is not a label name is skipped (Prometheus
                        // would set it and fail the scrape later).
                        if is_label_name(&res) {
                            set(labels, &res, value);
                        }
                    }
                }
            }
            Action::LabelDrop | Action::LabelKeep => {
                let drop_matching = self.action == Action::LabelDrop;
                let names: Vec<String> = labels
                    .iter()
                    .map(|(n, _)| n)
                    .filter(|n| self.regex.is_match(n) == drop_matching)
                    .map(str::to_string)
                    .collect();
                for n in names {
                    labels.remove(&n);
                }
            }
        }
        true
    }
}

/// Applies `steps` in order. `None` when a step drops the set or nothing is left.
pub fn process(mut labels: Labels, steps: &[Relabeler]) -> Option<Labels> {
    for s in steps {
        if !s.apply(&mut labels) {
            return None;
        }
    }
    (!labels.is_empty()).then_some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_action_case() {
        let c: RelabelConfig =
            serde_json::from_str(r#"{"target_label":"x","action":"Replace"}"#).unwrap();
        assert_eq!(c.separator, ";");
        assert_eq!(c.regex, "(.*)");
        assert_eq!(c.replacement, "$1");
        assert_eq!(c.action, Action::Replace);
        assert!(serde_json::from_str::<RelabelConfig>(r#"{"action":"frob"}"#).is_err());
        assert!(serde_json::from_str::<RelabelConfig>(r#"{"regexp":"x"}"#).is_err());
    }

    #[test]
    fn hashmod_uses_the_low_half_of_md5() {
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; the last 8 bytes big-endian.
        let tail = u64::from_str_radix("edef654fccc4a4d8", 16).unwrap();
        assert_eq!(hashmod("foo", 1000), tail % 1000);
        assert_eq!(hashmod("foo", u64::MAX), tail % u64::MAX);
    }
}
