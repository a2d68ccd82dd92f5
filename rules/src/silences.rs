//! Silences with Alertmanager 0.25's semantics, kept as events on `argus.silences`.
//!
//! This module owns:
//! - [`LabelMatcher`]: Alertmanager's label matchers (`=`, `!=`, `=~`, `!~`, regexes
//!   anchored as `^(?:…)$`, a missing label matching as the empty string) and its
//!   matcher syntax (`ParseMatcher`/`ParseMatchers` in `pkg/labels`);
//! - [`Silence`] and its states (pending → active → expired, computed from time);
//! - [`SilenceService`]: creating, updating and expiring silences. Every change is a
//!   [`SilenceChange`] record on the compacted `argus.silences` topic keyed by the
//!   silence id; the in-memory state is a fold over those records (the newest
//!   `updated_at` per id wins, as Alertmanager merges gossip), so records applied when
//!   written and read back later are idempotent, and every instance that reads the topic
//!   converges on the same set. [`SilenceService::replay`] reads the topic at start,
//!   [`SilenceService::follow`] keeps reading it.
//!
//! Alertmanager rules reproduced: an update that changes matchers, or the start of an
//! active silence, or ends an active silence in the past, expires the old silence and
//! creates a new id; a new silence starting in the past starts now; at least one matcher
//! must not match the empty string; expired silences are kept for the retention period
//! (120h by default, Alertmanager's `--data.retention`) and then forgotten.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use argus_bus::EventLog;
use argus_schemas::{
    Envelope, Labels, Matcher as SchemaMatcher, Payload, SilenceAction, SilenceChange, Timestamp,
    topics,
};
use regex::Regex;

use crate::RulesError;

/// Alertmanager's default `--data.retention`: how long expired silences are kept.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(120 * 3600);

/// The source name on the envelopes this module writes.
pub const SOURCE: &str = "silences";

// ---------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------

/// Where "now" comes from; tests use [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(t: Timestamp) -> Self {
        ManualClock(AtomicI64::new(t.0))
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_nanos() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

// ---------------------------------------------------------------------------------------
// Matchers
// ---------------------------------------------------------------------------------------

/// The four matcher types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }
    /// From the API's `isEqual`/`isRegex` pair.
    pub fn from_flags(is_equal: bool, is_regex: bool) -> Self {
        match (is_equal, is_regex) {
            (true, false) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regex,
            (false, true) => MatchType::NotRegex,
        }
    }
    pub fn is_equal(self) -> bool {
        matches!(self, MatchType::Equal | MatchType::Regex)
    }
    pub fn is_regex(self) -> bool {
        matches!(self, MatchType::Regex | MatchType::NotRegex)
    }
}

/// A label matcher as Alertmanager has them.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub kind: MatchType,
    pub name: String,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for LabelMatcher {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && self.name == o.name && self.value == o.value
    }
}
impl Eq for LabelMatcher {}

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles a Go-syntax regex; the error reads like Go's `error parsing regexp: …`.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        let msg = match &e {
            regex::Error::Syntax(s) => s
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_string))
                .unwrap_or_else(|| s.trim().to_string()),
            other => other.to_string(),
        };
        format!("error parsing regexp: {msg}: `{pattern}`")
    })
}

impl LabelMatcher {
    /// A matcher; regexes are anchored (`^(?:value)$`) and must compile.
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, String> {
        let (name, value) = (name.into(), value.into());
        let re = if kind.is_regex() {
            Some(compile_regex(&format!("^(?:{value})$"))?)
        } else {
            None
        };
        Ok(LabelMatcher {
            kind,
            name,
            value,
            re,
        })
    }

    /// A matcher that is built even when its regex does not compile (it then matches
    /// nothing); [`LabelMatcher::check`] reports the problem. For request bodies, whose
    /// errors Alertmanager reports in matcher order.
    pub fn lenient(kind: MatchType, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        let re = if kind.is_regex() {
            compile_regex(&format!("^(?:{value})$")).ok()
        } else {
            None
        };
        LabelMatcher {
            kind,
            name,
            value,
            re,
        }
    }

    /// Whether the matcher accepts `v`.
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher accepts the label set (a missing label is the empty string).
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// Alertmanager's `ParseMatcher`: `name op value`, the value optionally quoted with
    /// OpenMetrics escapes (`\"`, `\n`, `\\`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let name_len = t
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
            })
            .map(|(i, _)| i)
            .unwrap_or(t.len());
        let bad = || format!("bad matcher format: {s}");
        if name_len == 0 {
            return Err(bad());
        }
        let name = &t[..name_len];
        let rest = t[name_len..].trim_start();
        let (kind, raw) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchType::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchType::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchType::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchType::Equal, r)
        } else {
            return Err(bad());
        };
        let orig = raw.trim();
        let mut raw = orig;
        let mut expect_quote = false;
        if let Some(r) = raw.strip_prefix('"') {
            raw = r;
            expect_quote = true;
        }
        let unescaped_quote = || format!("matcher value contains unescaped double quote: {orig}");
        let mut value = String::new();
        let mut escaped = false;
        for (i, c) in raw.char_indices() {
            if escaped {
                escaped = false;
                match c {
                    'n' => value.push('\n'),
                    '"' | '\\' => value.push(c),
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                }
                continue;
            }
            let last = i + c.len_utf8() == raw.len();
            match c {
                '\\' => {
                    if !last {
                        escaped = true;
                    } else {
                        value.push('\\');
                    }
                }
                '"' => {
                    if !expect_quote || !last {
                        return Err(unescaped_quote());
                    }
                    expect_quote = false;
                }
                other => value.push(other),
            }
        }
        if expect_quote {
            return Err(unescaped_quote());
        }
        LabelMatcher::new(kind, name, value)
    }

    /// Alertmanager's `ParseMatchers`: a comma-separated list, optionally in braces.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, String> {
        let s = s.strip_prefix('{').unwrap_or(s);
        let s = s.strip_suffix('}').unwrap_or(s);
        let mut tokens = Vec::new();
        let mut token = String::new();
        let (mut inside, mut escaped) = (false, false);
        for c in s.chars() {
            match c {
                ',' if !inside => {
                    tokens.push(std::mem::take(&mut token));
                    continue;
                }
                ',' => {}
                '"' => {
                    if !escaped {
                        inside = !inside;
                    } else {
                        escaped = false;
                    }
                }
                '\\' => escaped = !escaped,
                _ => escaped = false,
            }
            token.push(c);
        }
        if !token.trim().is_empty() {
            tokens.push(token.trim().to_string());
        }
        tokens.iter().map(|t| LabelMatcher::parse(t)).collect()
    }

    /// From the schema's form (`isEqual`/`isRegex`).
    pub fn from_schema(m: &SchemaMatcher) -> Result<Self, String> {
        LabelMatcher::new(
            MatchType::from_flags(m.is_equal, m.is_regex),
            m.name.clone(),
            m.value.clone(),
        )
    }

    pub fn to_schema(&self) -> SchemaMatcher {
        SchemaMatcher {
            name: self.name.clone(),
            value: self.value.clone(),
            is_regex: self.kind.is_regex(),
            is_equal: self.kind.is_equal(),
        }
    }

    /// Alertmanager's `ValidateMatcher`, with its texts.
    pub fn check(&self) -> Result<(), String> {
        if !is_valid_label_name(&self.name) {
            return Err(format!("invalid label name {:?}", self.name));
        }
        if self.kind.is_regex() {
            compile_regex(&self.value)
                .map_err(|e| format!("invalid regular expression {:?}: {e}", self.value))?;
        }
        Ok(())
    }

    /// Whether the matcher matches the empty string (Alertmanager's `matchesEmpty`:
    /// only `=` and `=~` count).
    fn matches_empty(&self) -> bool {
        match self.kind {
            MatchType::Equal => self.value.is_empty(),
            MatchType::Regex => compile_regex(&self.value).is_ok_and(|r| r.is_match("")),
            _ => false,
        }
    }
}

impl fmt::Display for LabelMatcher {
    /// `name="value"` with OpenMetrics escaping, as Alertmanager prints matchers.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let v = self
            .value
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('"', "\\\"");
        write!(f, "{}{}\"{}\"", self.name, self.kind.as_str(), v)
    }
}

/// Whether every matcher accepts the label set.
pub fn matches_all(matchers: &[LabelMatcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

// ---------------------------------------------------------------------------------------
// Silences
// ---------------------------------------------------------------------------------------

/// A silence's state at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SilenceState {
    Expired,
    Active,
    Pending,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Expired => "expired",
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
        }
    }
}

/// One silence.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<LabelMatcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// The state at `now` (`CalcSilenceState`: active until strictly before the end).
    /// Alertmanager's silencer counts the end instant itself as active; here one state
    /// serves the API, muting and updates, so an expired silence (end = now) stops
    /// muting at once and expiring it again writes nothing.
    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Whether the silence's matchers all accept the label set.
    pub fn matches(&self, labels: &Labels) -> bool {
        matches_all(&self.matchers, labels)
    }

    fn to_change(&self, action: SilenceAction) -> SilenceChange {
        SilenceChange {
            id: self.id.clone(),
            action,
            matchers: self.matchers.iter().map(LabelMatcher::to_schema).collect(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            updated_at: self.updated_at,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        }
    }

    fn from_change(c: &SilenceChange) -> Result<Self, String> {
        Ok(Silence {
            id: c.id.clone(),
            matchers: c
                .matchers
                .iter()
                .map(LabelMatcher::from_schema)
                .collect::<Result<_, _>>()?,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            updated_at: c.updated_at,
            created_by: c.created_by.clone(),
            comment: c.comment.clone(),
        })
    }
}

/// What a caller asks to create (no id) or update (an existing id).
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceSpec {
    pub id: Option<String>,
    pub matchers: Vec<LabelMatcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

/// Alertmanager's `validateSilence` (without the id and zero-time checks, which cannot
/// fail here), with its texts.
fn validate(
    matchers: &[LabelMatcher],
    starts_at: Timestamp,
    ends_at: Timestamp,
) -> Result<(), String> {
    if matchers.is_empty() {
        return Err("at least one matcher required".into());
    }
    let mut all_match_empty = true;
    for (i, m) in matchers.iter().enumerate() {
        m.check()
            .map_err(|e| format!("invalid label matcher {i}: {e}"))?;
        all_match_empty = all_match_empty && m.matches_empty();
    }
    if all_match_empty {
        return Err("at least one matcher must not match the empty string".into());
    }
    if ends_at < starts_at {
        return Err("end time must not be before start time".into());
    }
    Ok(())
}

/// Alertmanager's `canUpdate`: whether `a` can become `b` without rewriting history.
fn can_update(a: &Silence, b: &SilenceSpec, now: Timestamp) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    let secs = |t: Timestamp| t.0.div_euclid(1_000_000_000);
    match a.state(now) {
        SilenceState::Active => secs(b.starts_at) == secs(a.starts_at) && b.ends_at >= now,
        SilenceState::Pending => b.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// Settings of a [`SilenceService`].
#[derive(Clone)]
pub struct SilenceOptions {
    /// The tenant the records are written under and read for.
    pub tenant: String,
    /// How long expired silences are kept.
    pub retention: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Default for SilenceOptions {
    fn default() -> Self {
        SilenceOptions {
            tenant: argus_schemas::DEFAULT_TENANT.to_string(),
            retention: DEFAULT_RETENTION,
            clock: Arc::new(SystemClock),
        }
    }
}

struct Inner {
    log: EventLog,
    opts: SilenceOptions,
    state: RwLock<HashMap<String, Silence>>,
    version: AtomicU64,
    /// Serialises this instance's writes (read-modify-publish).
    write: tokio::sync::Mutex<()>,
    /// Next offset to read, per partition of the topic.
    positions: Mutex<HashMap<i32, i64>>,
}

/// The silences of one tenant; cheap to clone.
#[derive(Clone)]
pub struct SilenceService {
    inner: Arc<Inner>,
}

impl SilenceService {
    pub fn new(log: EventLog, opts: SilenceOptions) -> Self {
        SilenceService {
            inner: Arc::new(Inner {
                log,
                opts,
                state: RwLock::new(HashMap::new()),
                version: AtomicU64::new(0),
                write: tokio::sync::Mutex::new(()),
                positions: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.inner.opts.clock.now()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.opts.clock.clone()
    }

    /// Increases whenever the set of silences changes.
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::SeqCst)
    }

    /// Reads the topic from its start up to what is written now and folds it into the
    /// state; returns the number of records read. Call once at start.
    pub async fn replay(&self) -> Result<usize, RulesError> {
        self.sync().await
    }

    /// Reads the records written since the last read (by any instance) and folds them in.
    pub async fn sync(&self) -> Result<usize, RulesError> {
        let log = &self.inner.log;
        let parts = log.partitions(topics::SILENCES).await?;
        let mut n = 0;
        for p in 0..parts {
            let (low, high) = log.watermarks(topics::SILENCES, p).await?;
            let mut next = {
                let pos = self.inner.positions.lock().expect("positions lock");
                pos.get(&p).copied().unwrap_or(low).max(low)
            };
            while next < high {
                let recs = log.read(topics::SILENCES, p, next, 1000).await?;
                if recs.is_empty() {
                    break;
                }
                for r in &recs {
                    next = r.offset + 1;
                    n += 1;
                    self.apply_record(&r.value);
                }
            }
            self.inner
                .positions
                .lock()
                .expect("positions lock")
                .insert(p, next);
        }
        Ok(n)
    }

    /// Keeps reading the topic every `interval` until the handle is aborted.
    pub fn follow(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.sync().await {
                    tracing::warn!(error = %e, "reading silences failed");
                }
                me.gc();
                tokio::time::sleep(interval).await;
            }
        })
    }

    fn apply_record(&self, bytes: &[u8]) {
        match argus_schemas::decode(bytes) {
            Ok(env) if env.tenant != self.inner.opts.tenant => {}
            Ok(Envelope {
                payload: Payload::SilenceChange(c),
                ..
            }) => match Silence::from_change(&c) {
                Ok(s) => {
                    self.merge(s);
                }
                Err(e) => {
                    tracing::warn!(id = %c.id, error = %e, "skipping an unusable silence record")
                }
            },
            Ok(env) => {
                tracing::warn!(
                    kind = env.kind().as_str(),
                    "unexpected record on the silences topic"
                )
            }
            Err(e) => tracing::warn!(error = %e, "skipping an undecodable silence record"),
        }
    }

    /// Alertmanager's `state.merge`: the newest `updated_at` per id wins; silences past
    /// their retention are not taken.
    fn merge(&self, s: Silence) -> bool {
        let now = self.now();
        if s.ends_at.0.saturating_add(self.retention_ns()) < now.0 {
            return false;
        }
        let mut st = self.inner.state.write().expect("silences lock");
        let newer = st
            .get(&s.id)
            .is_none_or(|prev| prev.updated_at < s.updated_at);
        if newer {
            st.insert(s.id.clone(), s);
            self.inner.version.fetch_add(1, Ordering::SeqCst);
        }
        newer
    }

    fn retention_ns(&self) -> i64 {
        self.inner.opts.retention.as_nanos().min(i64::MAX as u128) as i64
    }

    /// Forgets silences that ended more than the retention ago; returns how many.
    pub fn gc(&self) -> usize {
        let now = self.now();
        let ret = self.retention_ns();
        let mut st = self.inner.state.write().expect("silences lock");
        let before = st.len();
        st.retain(|_, s| s.ends_at.0.saturating_add(ret) > now.0);
        before - st.len()
    }

    pub fn get(&self, id: &str) -> Option<Silence> {
        self.inner
            .state
            .read()
            .expect("silences lock")
            .get(id)
            .cloned()
    }

    /// Every retained silence, in no particular order.
    pub fn list(&self) -> Vec<Silence> {
        let ret = self.retention_ns();
        let now = self.now();
        self.inner
            .state
            .read()
            .expect("silences lock")
            .values()
            .filter(|s| s.ends_at.0.saturating_add(ret) > now.0)
            .cloned()
            .collect()
    }

    /// Ids of the active silences that match the label set, sorted (Alertmanager's
    /// `silencedBy`).
    pub fn silenced_by(&self, labels: &Labels) -> Vec<String> {
        let now = self.now();
        let mut ids: Vec<String> = self
            .inner
            .state
            .read()
            .expect("silences lock")
            .values()
            .filter(|s| s.state(now) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    async fn publish(&self, s: &Silence, action: SilenceAction) -> Result<(), RulesError> {
        let env = Envelope::new(
            self.inner.opts.tenant.clone(),
            SOURCE,
            s.updated_at,
            Payload::SilenceChange(s.to_change(action)),
        );
        self.inner.log.publish(&[env]).await?;
        self.merge(s.clone());
        Ok(())
    }

    /// An `updated_at` for a new version of `prev`: now, but always after the previous
    /// version so the newest-wins fold keeps it.
    fn next_update(prev: Option<&Silence>, now: Timestamp) -> Timestamp {
        match prev {
            Some(p) if p.updated_at >= now => Timestamp(p.updated_at.0 + 1),
            _ => now,
        }
    }

    /// Alertmanager's `Silences.Set`: creates a silence (no id), updates one in place
    /// when the change does not rewrite history, or expires it and creates a new one.
    /// Returns the id. Errors: [`RulesError::NotFound`] `silence not found` for an
    /// unknown id, [`RulesError::BadRequest`] `silence invalid: …`.
    pub async fn set(&self, spec: SilenceSpec) -> Result<String, RulesError> {
        let _w = self.inner.write.lock().await;
        let now = self.now();
        let id = spec.id.clone().filter(|i| !i.is_empty());
        let prev = match &id {
            Some(id) => Some(
                self.get(id)
                    .ok_or_else(|| RulesError::NotFound("silence not found".into()))?,
            ),
            None => None,
        };
        // Validated before anything is written (Alertmanager expires the old silence
        // first and may then fail to create the replacement).
        validate(&spec.matchers, spec.starts_at, spec.ends_at)
            .map_err(|e| RulesError::BadRequest(format!("silence invalid: {e}")))?;
        if let Some(prev) = &prev {
            if can_update(prev, &spec, now) {
                let s = Silence {
                    id: prev.id.clone(),
                    matchers: spec.matchers,
                    starts_at: spec.starts_at,
                    ends_at: spec.ends_at,
                    updated_at: Self::next_update(Some(prev), now),
                    created_by: spec.created_by,
                    comment: spec.comment,
                };
                self.publish(&s, SilenceAction::Update).await?;
                return Ok(s.id);
            }
            if prev.state(now) != SilenceState::Expired {
                self.expire_locked(prev, now).await?;
            }
        }
        let mut s = Silence {
            id: uuid::Uuid::new_v4().to_string(),
            matchers: spec.matchers,
            starts_at: spec.starts_at,
            ends_at: spec.ends_at,
            updated_at: now,
            created_by: spec.created_by,
            comment: spec.comment,
        };
        if s.starts_at < now {
            s.starts_at = now;
        }
        validate(&s.matchers, s.starts_at, s.ends_at)
            .map_err(|e| RulesError::BadRequest(format!("silence invalid: {e}")))?;
        self.publish(&s, SilenceAction::Create).await?;
        Ok(s.id)
    }

    /// Alertmanager's `Expire`: ends an active silence now, moves a pending one to
    /// start and end now; an expired one is left as it is. Unknown id:
    /// [`RulesError::NotFound`] `silence not found`.
    pub async fn expire(&self, id: &str) -> Result<(), RulesError> {
        let _w = self.inner.write.lock().await;
        let prev = self
            .get(id)
            .ok_or_else(|| RulesError::NotFound("silence not found".into()))?;
        let now = self.now();
        self.expire_locked(&prev, now).await
    }

    async fn expire_locked(&self, prev: &Silence, now: Timestamp) -> Result<(), RulesError> {
        let mut s = prev.clone();
        match prev.state(now) {
            SilenceState::Expired => return Ok(()),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = Self::next_update(Some(prev), now);
        self.publish(&s, SilenceAction::Expire).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> LabelMatcher {
        LabelMatcher::parse(s).unwrap()
    }

    #[test]
    fn parses_matchers_like_alertmanager() {
        let x = m(r#"foo = "bar""#);
        assert_eq!(
            (x.kind, x.name.as_str(), x.value.as_str()),
            (MatchType::Equal, "foo", "bar")
        );
        let x = m(r#"code=~"5..""#);
        assert_eq!(x.kind, MatchType::Regex);
        assert!(x.matches("503") && !x.matches("5030"));
        let x = m(r#"a!~b.*"#);
        assert!(!x.matches("bc") && x.matches("cb"));
        let x = m(r#"q="She said: \"Hi\"\n""#);
        assert_eq!(x.value, "She said: \"Hi\"\n");
        assert_eq!(
            LabelMatcher::parse("foo").unwrap_err(),
            "bad matcher format: foo"
        );
        assert_eq!(
            LabelMatcher::parse(r#"a="x"#).unwrap_err(),
            r#"matcher value contains unescaped double quote: "x"#
        );
        let l = LabelMatcher::parse_list(r#"{foo = "bar", dings != "bums", }"#).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].to_string(), r#"dings!="bums""#);
        let l = LabelMatcher::parse_list(r#"q="a,b",c=d"#).unwrap();
        assert_eq!((l[0].value.as_str(), l[1].value.as_str()), ("a,b", "d"));
    }

    #[test]
    fn validation_texts() {
        let t = Timestamp(10);
        assert_eq!(
            validate(&[m("a=~.*")], t, t).unwrap_err(),
            "at least one matcher must not match the empty string"
        );
        assert_eq!(
            validate(&[m(r#"a="""#), m("b=~x*")], t, t).unwrap_err(),
            "at least one matcher must not match the empty string"
        );
        assert!(validate(&[m("a!=x")], t, t).is_ok());
        assert_eq!(
            validate(&[m("a=x")], t, Timestamp(9)).unwrap_err(),
            "end time must not be before start time"
        );
        let bad = LabelMatcher {
            kind: MatchType::Equal,
            name: "a-b".into(),
            value: "x".into(),
            re: None,
        };
        assert_eq!(
            validate(&[bad], t, t).unwrap_err(),
            r#"invalid label matcher 0: invalid label name "a-b""#
        );
    }
}
