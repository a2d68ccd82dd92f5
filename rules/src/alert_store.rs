//! The alerts the Alertmanager API serves, with their silenced/inhibited status.
//!
//! This module owns:
//! - [`Alert`] (Alertmanager's `types.Alert`) and its fingerprint
//!   ([`am_fingerprint`]: Prometheus' `LabelSet.Fingerprint`, FNV-1a over the sorted
//!   labels, so the API shows the fingerprints Alertmanager would);
//! - [`AlertStore`]: the current alerts, fed by the rule engine's
//!   [`AlertTransition`]s ([`AlertStore::apply_transition`]) and by alerts posted to
//!   `POST /api/v2/alerts` ([`prepare_posted`] + [`AlertStore::put`], with
//!   Alertmanager's defaults, validation and merge of re-posted alerts); the status of
//!   each alert (active or suppressed, `silencedBy`, `inhibitedBy`) is computed from the
//!   [`SilenceService`] and the [`Inhibitor`] when asked, as Alertmanager does when it
//!   serves the API;
//! - [`AlertRouting`]: which receivers an alert goes to and the labels of its group;
//!   [`StaticRouting`] is one receiver with `group_by` until the notifier brings the
//!   route tree;
//! - [`AlertSink`]: where posted alerts go when something other than this store (e.g.
//!   the event log) must see them first.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use argus_schemas::{AlertState, AlertTransition, Labels, Timestamp};
use serde::{Deserialize, Serialize};

use crate::RulesError;
use crate::inhibit::{Inhibitor, SourceAlert};
use crate::silences::{SilenceService, is_valid_label_name};

/// Alertmanager's default `global.resolve_timeout`.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Alertmanager's default `--alerts.gc-interval`: resolved alerts are dropped this often.
pub const GC_INTERVAL: Duration = Duration::from_secs(1800);

/// Prometheus' `LabelSet.Fingerprint`: FNV-1a 64 over name, 0xFF, value, 0xFF for each
/// label in name order.
pub fn am_fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(PRIME);
    };
    for (n, v) in labels.iter() {
        n.bytes().for_each(&mut add);
        add(0xff);
        v.bytes().for_each(&mut add);
        add(0xff);
    }
    h
}

/// One alert as Alertmanager keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: Timestamp,
    /// `None`: firing with no end announced (alerts of this rule engine, which keeps
    /// them until it resolves them).
    pub ends_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub generator_url: String,
    /// The end was not given but set from `resolve_timeout`.
    pub timeout: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> u64 {
        am_fingerprint(&self.labels)
    }

    /// Alertmanager's `Resolved()`: an end that is not after now.
    pub fn resolved(&self, now: Timestamp) -> bool {
        self.ends_at.is_some_and(|e| e <= now)
    }

    fn end(&self) -> i64 {
        self.ends_at.map_or(i64::MAX, |t| t.0)
    }

    /// Alertmanager's `Alert.Merge`: the younger alert's fields, the earliest start, and
    /// the end rules for resolved and timed-out alerts.
    pub fn merge(&self, o: &Alert, now: Timestamp) -> Alert {
        if o.updated_at < self.updated_at {
            return o.merge(self, now);
        }
        let mut res = o.clone();
        if self.starts_at < o.starts_at {
            res.starts_at = self.starts_at;
        }
        if o.resolved(now) {
            if self.resolved(now) && self.end() > o.end() {
                res.ends_at = self.ends_at;
            }
        } else if self.end() > o.end() && !self.timeout {
            res.ends_at = self.ends_at;
        }
        res
    }
}

/// An alert as `POST /api/v2/alerts` receives it, before defaults and validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostedAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub generator_url: String,
}

fn validate_set(set: &BTreeMap<String, String>) -> Result<(), String> {
    match set.keys().find(|n| !is_valid_label_name(n)) {
        Some(n) => Err(format!("invalid name {n:?}")),
        None => Ok(()),
    }
}

/// What Alertmanager's `postAlertsHandler` does before storing: `updatedAt` now, a
/// missing start set to the end or now, a missing end set to now + `resolve_timeout`
/// (and marked as a timeout), empty labels removed, each alert validated. Returns the
/// valid alerts and the errors of the others (joined with `; ` they are the 400 body).
pub fn prepare_posted(
    alerts: Vec<PostedAlert>,
    now: Timestamp,
    resolve_timeout: Duration,
) -> (Vec<Alert>, Vec<String>) {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for mut p in alerts {
        let starts_at = p.starts_at.or(p.ends_at).unwrap_or(now);
        let (ends_at, timeout) = match p.ends_at {
            Some(e) => (e, false),
            None => (
                Timestamp(now.0.saturating_add(resolve_timeout.as_nanos() as i64)),
                true,
            ),
        };
        p.labels.retain(|_, v| !v.is_empty());
        let check = || -> Result<(), String> {
            if ends_at < starts_at {
                return Err("start time must be before end time".into());
            }
            validate_set(&p.labels).map_err(|e| format!("invalid label set: {e}"))?;
            if p.labels.is_empty() {
                return Err("at least one label pair required".into());
            }
            validate_set(&p.annotations).map_err(|e| format!("invalid annotations: {e}"))?;
            Ok(())
        };
        match check() {
            Ok(()) => ok.push(Alert {
                labels: Labels::from_pairs(p.labels),
                annotations: Labels::from_pairs(p.annotations),
                starts_at,
                ends_at: Some(ends_at),
                updated_at: now,
                generator_url: p.generator_url,
                timeout,
            }),
            Err(e) => errs.push(e),
        }
    }
    (ok, errs)
}

/// An alert's status as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatusState {
    Unprocessed,
    Active,
    Suppressed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertStatus {
    pub state: AlertStatusState,
    /// Ids of the active silences that match, sorted.
    pub silenced_by: Vec<String>,
    /// Fingerprints (16 hex digits) of the alerts that inhibit it.
    pub inhibited_by: Vec<String>,
}

/// Where an alert is routed: a receiver and the labels of the group it joins there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub receiver: String,
    pub group_labels: Labels,
}

/// Routing of alerts to receivers (the notifier's route tree implements this).
pub trait AlertRouting: Send + Sync {
    /// Every configured receiver name, in configuration order (`GET /api/v2/receivers`).
    fn receivers(&self) -> Vec<String>;
    /// The routes an alert with these labels takes, in route order.
    fn route(&self, labels: &Labels) -> Vec<RouteMatch>;
}

/// Every alert goes to one receiver, grouped by `group_by` (`...`: by every label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRouting {
    #[serde(default = "default_receiver")]
    pub receiver: String,
    #[serde(default)]
    pub group_by: Vec<String>,
    /// More receiver names to list in `GET /api/v2/receivers`.
    #[serde(default)]
    pub receivers: Vec<String>,
}

fn default_receiver() -> String {
    "default".into()
}

impl Default for StaticRouting {
    fn default() -> Self {
        StaticRouting {
            receiver: default_receiver(),
            group_by: Vec::new(),
            receivers: Vec::new(),
        }
    }
}

impl AlertRouting for StaticRouting {
    fn receivers(&self) -> Vec<String> {
        let mut out = vec![self.receiver.clone()];
        for r in &self.receivers {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }

    fn route(&self, labels: &Labels) -> Vec<RouteMatch> {
        let group_labels = if self.group_by.iter().any(|g| g == "...") {
            labels.clone()
        } else {
            Labels::from_pairs(
                labels
                    .iter()
                    .filter(|(n, _)| self.group_by.iter().any(|g| g == n)),
            )
        };
        vec![RouteMatch {
            receiver: self.receiver.clone(),
            group_labels,
        }]
    }
}

/// Takes validated posted alerts (e.g. to publish them on the event log, from where
/// they reach [`AlertStore`]s).
pub trait AlertSink: Send + Sync {
    fn put(
        &self,
        alerts: Vec<Alert>,
    ) -> Pin<Box<dyn Future<Output = Result<(), RulesError>> + Send + '_>>;
}

/// The `argus.alerts` record for alerts posted through the API in one request: an
/// `alert_batch` of transitions with no rule group (firing → firing for an update of a
/// firing alert the store holds).
pub fn posted_batch(
    store: Option<&AlertStore>,
    alerts: Vec<Alert>,
    now: Timestamp,
) -> argus_schemas::Envelope {
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        let firing = !a.resolved(now);
        let was_firing = store.is_some_and(|s| s.is_firing(a.fingerprint(), now));
        let (from, to) = match (firing, was_firing) {
            (true, true) => (AlertState::Firing, AlertState::Firing),
            (true, false) => (AlertState::Inactive, AlertState::Firing),
            (false, _) => (AlertState::Firing, AlertState::Resolved),
        };
        out.push(AlertTransition {
            fingerprint: a.labels.fingerprint().to_string(),
            labels: a.labels,
            annotations: a.annotations,
            from,
            to,
            rule_group: String::new(),
            rule: String::new(),
            value: None,
            active_at: Some(a.starts_at),
            fired_at: Some(a.starts_at),
            resolved_at: a.ends_at,
            generator_url: a.generator_url,
        });
    }
    argus_schemas::Envelope::new(
        argus_schemas::DEFAULT_TENANT,
        "alertmanager-api",
        now,
        argus_schemas::Payload::AlertBatch(argus_schemas::AlertBatch { alerts: out }),
    )
}

/// The stored form of a posted alert's transition written at `event_time`.
fn posted_alert(t: AlertTransition, event_time: Timestamp) -> Alert {
    Alert {
        starts_at: t.active_at.or(t.fired_at).unwrap_or(event_time),
        labels: t.labels,
        annotations: t.annotations,
        ends_at: t.resolved_at,
        updated_at: event_time,
        generator_url: t.generator_url,
        timeout: false,
    }
}

/// [`posted_batch`] without a store at hand (every alert new or resolved), encoded for
/// the event log (none for no alerts).
pub fn posted_records(alerts: Vec<Alert>, now: Timestamp) -> Vec<argus_bus::OutRecord> {
    if alerts.is_empty() {
        return Vec::new();
    }
    vec![encode_record(&posted_batch(None, alerts, now))]
}

/// One envelope as an `argus.alerts` record (key: the envelope's).
pub fn encode_record(env: &argus_schemas::Envelope) -> argus_bus::OutRecord {
    argus_bus::OutRecord::new(env.key.as_bytes(), argus_schemas::encode(env))
}

/// An alert with what the API shows beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    pub alert: Alert,
    pub fingerprint: u64,
    pub status: AlertStatus,
    /// The routes it takes (receiver and group labels), in route order.
    pub routes: Vec<RouteMatch>,
}

/// Called with every alert as stored after a [`AlertStore::put`] (merged with what was
/// there): the notifier's dispatcher subscribes, as Alertmanager's does to its store.
pub type AlertListener = Arc<dyn Fn(&Arc<Alert>) + Send + Sync>;

/// The current alerts; share it in an `Arc`.
pub struct AlertStore {
    alerts: RwLock<HashMap<u64, Arc<Alert>>>,
    listeners: RwLock<Vec<AlertListener>>,
    silences: SilenceService,
    inhibitor: RwLock<Arc<Inhibitor>>,
    routing: RwLock<Arc<dyn AlertRouting>>,
    last_gc: AtomicI64,
}

impl AlertStore {
    pub fn new(
        silences: SilenceService,
        inhibitor: Inhibitor,
        routing: Arc<dyn AlertRouting>,
    ) -> Self {
        let now = silences.now();
        AlertStore {
            alerts: RwLock::new(HashMap::new()),
            listeners: RwLock::new(Vec::new()),
            silences,
            inhibitor: RwLock::new(Arc::new(inhibitor)),
            routing: RwLock::new(routing),
            last_gc: AtomicI64::new(now.0),
        }
    }

    pub fn silences(&self) -> &SilenceService {
        &self.silences
    }

    pub fn now(&self) -> Timestamp {
        self.silences.now()
    }

    /// Replaces the inhibition rules (configuration reload).
    pub fn set_inhibitor(&self, i: Inhibitor) {
        *self.inhibitor.write().expect("inhibitor lock") = Arc::new(i);
    }

    /// Replaces the routing (configuration reload).
    pub fn set_routing(&self, r: Arc<dyn AlertRouting>) {
        *self.routing.write().expect("routing lock") = r;
    }

    pub fn routing(&self) -> Arc<dyn AlertRouting> {
        self.routing.read().expect("routing lock").clone()
    }

    /// Alertmanager's `mem.Alerts.Put`: an alert whose activity overlaps the stored one
    /// with the same labels is merged with it, otherwise it replaces it.
    pub fn put(&self, alerts: Vec<Alert>) {
        let now = self.now();
        let listeners = self.listeners.read().expect("listeners lock").clone();
        let mut stored = Vec::new();
        {
            let mut st = self.alerts.write().expect("alerts lock");
            for a in alerts {
                let fp = a.fingerprint();
                let a = Arc::new(match st.get(&fp) {
                    Some(old)
                        if (a.end() > old.starts_at.0 && a.end() < old.end())
                            || (a.starts_at > old.starts_at && a.starts_at.0 < old.end()) =>
                    {
                        old.merge(&a, now)
                    }
                    _ => a,
                });
                if !listeners.is_empty() {
                    stored.push(a.clone());
                }
                st.insert(fp, a);
            }
        }
        for a in &stored {
            for l in &listeners {
                l(a);
            }
        }
        if now.0 - self.last_gc.load(Ordering::Relaxed) >= GC_INTERVAL.as_nanos() as i64 {
            self.gc();
        }
    }

    /// Calls `f` with every alert stored from now on (see [`AlertListener`]).
    pub fn subscribe(&self, f: AlertListener) {
        self.listeners.write().expect("listeners lock").push(f);
    }

    /// Every stored alert, resolved ones included (until garbage-collected), by
    /// fingerprint.
    pub fn list(&self) -> Vec<Alert> {
        let st = self.alerts.read().expect("alerts lock");
        let mut v: Vec<Alert> = st.values().map(|a| Alert::clone(a)).collect();
        v.sort_by_key(Alert::fingerprint);
        v
    }

    /// Posted alerts as [`posted_batch`] made them, in one put: what
    /// [`AlertStore::apply_envelope`] does with the record, without copying them.
    pub fn apply_posted(&self, env: argus_schemas::Envelope) {
        let argus_schemas::Payload::AlertBatch(b) = env.payload else {
            return;
        };
        self.put_posted(b.alerts, env.event_time);
    }

    /// Posted alerts' transitions, stored as posted at `at`, in one put.
    fn put_posted(&self, ts: impl IntoIterator<Item = AlertTransition>, at: Timestamp) {
        self.put(ts.into_iter().map(|t| posted_alert(t, at)).collect());
    }

    /// Folds one record of `argus.alerts` in: a rule engine transition
    /// ([`AlertStore::apply_transition`]) or alerts posted through the API (an
    /// `alert_batch`, or a transition with no rule group; stored as posted, updated at
    /// the record's time).
    pub fn apply_envelope(&self, env: &argus_schemas::Envelope) {
        let t = match &env.payload {
            argus_schemas::Payload::AlertTransition(t) => t,
            argus_schemas::Payload::AlertBatch(b) => {
                return self.put_posted(b.alerts.iter().cloned(), env.event_time);
            }
            _ => return,
        };
        if t.rule_group.is_empty() {
            self.put_posted([t.clone()], env.event_time);
        } else {
            self.apply_transition(t);
        }
    }

    /// Drops resolved alerts; returns how many.
    pub fn gc(&self) -> usize {
        let now = self.now();
        self.last_gc.store(now.0, Ordering::Relaxed);
        let mut st = self.alerts.write().expect("alerts lock");
        let before = st.len();
        st.retain(|_, a| !a.resolved(now));
        before - st.len()
    }

    /// Feeds one transition of the rule engine: a firing alert is stored (start: when it
    /// fired) with no end; a firing alert that resolves gets its end; pending alerts are
    /// not stored (Prometheus sends only firing and resolved alerts).
    pub fn apply_transition(&self, t: &AlertTransition) {
        let now = self.now();
        let labels = Labels::from_pairs(t.labels.iter().filter(|(_, v)| !v.is_empty()));
        if labels.is_empty() {
            return;
        }
        let base = |ends_at| Alert {
            labels: labels.clone(),
            annotations: t.annotations.clone(),
            starts_at: t.fired_at.or(t.active_at).unwrap_or(now),
            ends_at,
            updated_at: now,
            generator_url: t.generator_url.clone(),
            timeout: false,
        };
        match (t.from, t.to) {
            (_, AlertState::Firing) => self.put(vec![base(None)]),
            (AlertState::Firing, AlertState::Resolved | AlertState::Inactive) => {
                let end = t.resolved_at.unwrap_or(now);
                let fp = am_fingerprint(&labels);
                let known = self.alerts.read().expect("alerts lock").contains_key(&fp);
                if known {
                    self.put(vec![base(Some(end))]);
                }
            }
            _ => {}
        }
    }

    /// Whether the store holds this alert and it has not resolved by `now`.
    pub fn is_firing(&self, fingerprint: u64, now: Timestamp) -> bool {
        self.alerts
            .read()
            .expect("alerts lock")
            .get(&fingerprint)
            .is_some_and(|a| !a.resolved(now))
    }

    /// The stored alert with this fingerprint.
    pub fn get(&self, fingerprint: u64) -> Option<Alert> {
        self.alerts
            .read()
            .expect("alerts lock")
            .get(&fingerprint)
            .map(|a| Alert::clone(a))
    }

    /// The status of an alert with these labels, given the current alerts.
    pub fn status(&self, labels: &Labels) -> AlertStatus {
        // Without inhibition rules no source alert matters: skip collecting them.
        if self.inhibitor.read().expect("inhibitor lock").is_empty() {
            return self.status_among(labels, &[]);
        }
        let now = self.now();
        let st = self.alerts.read().expect("alerts lock");
        let sources: Vec<(u64, &Alert)> = st
            .iter()
            .filter(|(_, a)| !a.resolved(now))
            .map(|(fp, a)| (*fp, &**a))
            .collect();
        self.status_among(labels, &sources)
    }

    fn status_among(&self, labels: &Labels, sources: &[(u64, &Alert)]) -> AlertStatus {
        let silenced_by = self.silences.silenced_by(labels);
        let inhibitor = self.inhibitor.read().expect("inhibitor lock").clone();
        let inhibited_by: Vec<String> = inhibitor
            .inhibited_by(
                labels,
                sources.iter().map(|(fp, a)| SourceAlert {
                    fingerprint: *fp,
                    labels: &a.labels,
                }),
            )
            .map(|fp| format!("{fp:016x}"))
            .into_iter()
            .collect();
        let state = if silenced_by.is_empty() && inhibited_by.is_empty() {
            AlertStatusState::Active
        } else {
            AlertStatusState::Suppressed
        };
        AlertStatus {
            state,
            silenced_by,
            inhibited_by,
        }
    }

    /// Whether an alert with these labels is silenced or inhibited now.
    pub fn is_muted(&self, labels: &Labels) -> bool {
        self.status(labels).state == AlertStatusState::Suppressed
    }

    /// Every unresolved alert with its status and routes, by fingerprint.
    pub fn views(&self) -> Vec<AlertView> {
        let now = self.now();
        let routing = self.routing();
        let st = self.alerts.read().expect("alerts lock");
        let mut live: Vec<(u64, &Alert)> = st
            .iter()
            .filter(|(_, a)| !a.resolved(now))
            .map(|(fp, a)| (*fp, &**a))
            .collect();
        live.sort_by_key(|(fp, _)| *fp);
        live.iter()
            .map(|(fp, a)| AlertView {
                alert: (*a).clone(),
                fingerprint: *fp,
                status: self.status_among(&a.labels, &live),
                routes: routing.route(&a.labels),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_alertmanagers() {
        // Values Alertmanager 0.25 printed for these label sets.
        let l = Labels::from_pairs([("alertname", "Other"), ("job", "y")]);
        assert_eq!(format!("{:016x}", am_fingerprint(&l)), "0b992fcb3e693444");
        let l = Labels::from_pairs([
            ("alertname", "Crit"),
            ("cluster", "c1"),
            ("severity", "critical"),
        ]);
        assert_eq!(format!("{:016x}", am_fingerprint(&l)), "587b712127851cd2");
    }

    #[test]
    fn posted_alert_validation_texts() {
        let now = Timestamp(1_000_000_000_000);
        let mk = |pairs: &[(&str, &str)]| PostedAlert {
            labels: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Default::default()
        };
        let (ok, errs) = prepare_posted(
            vec![
                mk(&[]),
                mk(&[("a", "")]),
                mk(&[("a-b", "x")]),
                mk(&[("a", "x")]),
            ],
            now,
            DEFAULT_RESOLVE_TIMEOUT,
        );
        assert_eq!(ok.len(), 1);
        assert!(ok[0].timeout);
        assert_eq!(ok[0].ends_at, Some(Timestamp(now.0 + 300_000_000_000)));
        assert_eq!(
            errs.join("; "),
            "at least one label pair required; at least one label pair required; invalid label set: invalid name \"a-b\""
        );
    }
}
