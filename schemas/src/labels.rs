//! Label sets and their fingerprint.
//!
//! A [`Labels`] is a set of `name=value` pairs kept sorted by name, with unique names.
//! Its [`Fingerprint`] is stable across processes, machines and versions:
//!
//! ```text
//! fingerprint = XXH3-64(seed 0) over, for each label in ascending byte order of name:
//!               name bytes, 0xFF, value bytes, 0xFF
//! ```
//!
//! 0xFF never occurs in UTF-8, so the encoding is unambiguous. The order in which
//! labels were given does not matter. A golden test pins the values; changing this
//! function changes every key on the log and is a breaking change.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A label set, sorted by name with unique names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

/// A stable 64-bit identity of a label set; written as 16 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The fingerprint of label pairs in any order (see the module docs).
pub fn fingerprint<'a, I>(pairs: I) -> Fingerprint
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut sorted: Vec<(&str, &str)> = pairs.into_iter().collect();
    sorted.sort_unstable();
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in sorted {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    Fingerprint(h.digest())
}

impl Labels {
    pub fn new() -> Self {
        Labels(Vec::new())
    }

    /// Builds a set from pairs in any order; a later duplicate name replaces an earlier one.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut l = Labels::new();
        for (n, v) in pairs {
            l.insert(n, v);
        }
        l
    }

    /// Sets `name` to `value`, keeping the order.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.0.binary_search_by(|l| l.name.as_str().cmp(&name)) {
            Ok(i) => self.0[i].value = value,
            Err(i) => self.0.insert(i, Label { name, value }),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => Some(self.0.remove(i).value),
            Err(_) => None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|l| (l.name.as_str(), l.value.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        // Already sorted: hash directly without re-sorting.
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        Fingerprint(h.digest())
    }
}

impl fmt::Display for Labels {
    /// Prometheus' text form: `{a="1", b="x\"y"}`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for l in &self.0 {
            m.serialize_entry(&l.name, &l.value)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of label names to string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Labels, A::Error> {
                let mut v: Vec<Label> = Vec::with_capacity(a.size_hint().unwrap_or(4));
                while let Some((name, value)) = a.next_entry::<String, String>()? {
                    if name.is_empty() {
                        return Err(serde::de::Error::custom("label name is empty"));
                    }
                    v.push(Label { name, value });
                }
                v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
                if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate label name {:?}",
                        w[0].name
                    )));
                }
                Ok(Labels(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl JsonSchema for Labels {
    fn schema_name() -> Cow<'static, str> {
        "Labels".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let mut s = <BTreeMap<String, String>>::json_schema(g);
        s.insert(
            "description".into(),
            "Label names to values; order does not matter".into(),
        );
        s
    }
}
