//! The dispatcher: aggregation groups, their timers, and the notification pipeline of
//! one flush, as Alertmanager 0.25's `dispatch` and `notify` packages have them.
//!
//! This module owns:
//! - routing every alert update the [`AlertStore`] stores (its listener) through the
//!   route tree into aggregation groups, one per (route, group labels);
//! - group timers: the first flush `group_wait` after the group is created (at once
//!   when an alert of a group that has not flushed yet started more than `group_wait`
//!   ago), then every `group_interval`; empty groups are removed by a maintenance pass
//!   every 30 s, as Alertmanager does;
//! - one flush: the group's alerts (firing ones get no end), sorted as Alertmanager
//!   sorts them; inhibited and silenced alerts dropped; nothing sent outside the route's
//!   active time intervals or inside its mute time intervals; then, for every channel
//!   of the receiver at once: dedup against the notification log (Alertmanager's
//!   `needsUpdate`: new firing alerts, newly resolved ones when the channel sends
//!   resolved notifications, all resolved, or `repeat_interval` passed), a claim, the
//!   send with retries (exponential backoff with jitter, until the flush's deadline of
//!   one `group_interval`; none after a permanent failure), and the outcome in the log;
//!   resolved alerts leave the group once every channel succeeded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argus_rules::alert_store::{Alert, AlertStore, am_fingerprint};
use argus_schemas::{Labels, NotificationAttempt, NotificationOutcome, Timestamp};
use rand::Rng;
use tokio::sync::{Notify, mpsc, watch};

use crate::channels::{Channel, ChannelError, NamedChannel};
use crate::metrics;
use crate::nflog::{Entry, NfKey, NotificationLog};
use crate::notification::{Notification, NotifyAlert};
#[cfg(test)]
use crate::route::go_label_set_string;
use crate::route::{Route, RouteTree};
use crate::timeinterval::TimeIntervals;

/// How often empty aggregation groups are removed (Alertmanager's maintenance).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);

/// Retry settings: Alertmanager's (the `backoff` package's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub multiplier: f64,
    pub max: Duration,
    /// Each wait is drawn from `[wait·(1−jitter), wait·(1+jitter)]`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            multiplier: 1.5,
            max: Duration::from_secs(60),
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `n` (1-based), with jitter.
    pub fn wait(&self, n: u32) -> Duration {
        let base = self.initial.as_secs_f64() * self.multiplier.powi(n.saturating_sub(1) as i32);
        let base = base.min(self.max.as_secs_f64());
        let j = self.jitter.clamp(0.0, 1.0);
        let f = if j > 0.0 {
            rand::rng().random_range((1.0 - j)..=(1.0 + j))
        } else {
            1.0
        };
        Duration::from_secs_f64(base * f)
    }
}

/// One receiver with its channels, by their names in the log (`webhook/0`…).
pub struct Receiver {
    pub name: String,
    pub channels: Vec<NamedChannel>,
}

/// What the dispatcher needs besides the alerts.
pub struct DispatcherSetup {
    pub routes: Arc<RouteTree>,
    pub receivers: HashMap<String, Arc<Receiver>>,
    pub intervals: Arc<TimeIntervals>,
    pub retry: RetryPolicy,
    /// `--web.external-url`.
    pub external_url: String,
}

/// The options of the route a group belongs to (copied at creation).
#[derive(Debug, Clone)]
struct RouteOpts {
    receiver: String,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    mute_time_intervals: Vec<String>,
    active_time_intervals: Vec<String>,
}

impl RouteOpts {
    fn of(r: &Route) -> Self {
        RouteOpts {
            receiver: r.receiver.clone(),
            group_wait: r.group_wait,
            group_interval: r.group_interval,
            repeat_interval: r.repeat_interval,
            mute_time_intervals: r.mute_time_intervals.clone(),
            active_time_intervals: r.active_time_intervals.clone(),
        }
    }
}

struct GroupState {
    alerts: BTreeMap<u64, Arc<Alert>>,
    has_flushed: bool,
}

struct Group {
    key: String,
    labels: Labels,
    route: RouteOpts,
    state: Mutex<GroupState>,
    flush_now: Notify,
    stop: Notify,
}

/// Summary of one aggregation group (for the API and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInfo {
    pub group_key: String,
    pub receiver: String,
    pub labels: Labels,
    pub alerts: usize,
}

/// The dispatcher; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    setup: DispatcherSetup,
    store: Arc<AlertStore>,
    nflog: NotificationLog,
    /// By (route id, group labels fingerprint).
    groups: Mutex<HashMap<(String, u64), Arc<Group>>>,
}

impl Dispatcher {
    /// Starts dispatching: subscribes to the store, routes the alerts it holds now, and
    /// runs until `stop` turns true.
    pub fn start(
        setup: DispatcherSetup,
        store: Arc<AlertStore>,
        nflog: NotificationLog,
        mut stop: watch::Receiver<bool>,
    ) -> Dispatcher {
        let d = Dispatcher {
            inner: Arc::new(Inner {
                setup,
                store: store.clone(),
                nflog,
                groups: Mutex::new(HashMap::new()),
            }),
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Arc<Alert>>();
        store.subscribe(Arc::new(move |a: &Arc<Alert>| {
            let _ = tx.send(a.clone());
        }));
        for a in store.list() {
            d.process(Arc::new(a));
        }
        let me = d.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
            tick.tick().await;
            loop {
                tokio::select! {
                    a = rx.recv() => match a {
                        Some(a) => me.process(a),
                        None => break,
                    },
                    _ = tick.tick() => me.maintenance(),
                    _ = stop.changed() => {
                        if *stop.borrow() { break; }
                    }
                }
            }
            me.stop_all();
        });
        d
    }

    /// Routes one alert update into its groups.
    fn process(&self, alert: Arc<Alert>) {
        metrics::ALERTS_RECEIVED.inc();
        let routes = self.inner.setup.routes.clone();
        let now = self.inner.store.now();
        for route in routes.route(&alert.labels) {
            let labels = route.group_labels(&alert.labels);
            let id = (route.id().to_string(), labels.fingerprint().0);
            let group = {
                let mut groups = self.inner.groups.lock().expect("groups lock");
                match groups.get(&id) {
                    Some(g) => g.clone(),
                    None => {
                        let opts = RouteOpts::of(route);
                        let g = Arc::new(Group {
                            key: route.group_key(&labels),
                            labels,
                            route: opts,
                            state: Mutex::new(GroupState {
                                alerts: BTreeMap::new(),
                                has_flushed: false,
                            }),
                            flush_now: Notify::new(),
                            stop: Notify::new(),
                        });
                        groups.insert(id, g.clone());
                        metrics::GROUPS.set(groups.len() as i64);
                        tokio::spawn(run_group(self.inner.clone(), g.clone()));
                        g
                    }
                }
            };
            let mut st = group.state.lock().expect("group lock");
            let old_start = alert.starts_at.0;
            st.alerts.insert(alert.fingerprint(), alert.clone());
            // Alertmanager: an alert that started more than group_wait ago flushes a
            // group that has not flushed yet at once.
            let wait = group.route.group_wait.as_nanos() as i64;
            if !st.has_flushed && old_start.saturating_add(wait) < now.0 {
                group.flush_now.notify_one();
            }
        }
    }

    /// Removes empty groups.
    fn maintenance(&self) {
        let mut groups = self.inner.groups.lock().expect("groups lock");
        groups.retain(|_, g| {
            let empty = g.state.lock().expect("group lock").alerts.is_empty();
            if empty {
                g.stop.notify_one();
            }
            !empty
        });
        metrics::GROUPS.set(groups.len() as i64);
    }

    fn stop_all(&self) {
        let mut groups = self.inner.groups.lock().expect("groups lock");
        for g in groups.values() {
            g.stop.notify_one();
        }
        groups.clear();
        metrics::GROUPS.set(0);
    }

    /// The aggregation groups that exist now, by group key.
    pub fn groups(&self) -> Vec<GroupInfo> {
        let groups = self.inner.groups.lock().expect("groups lock");
        let mut v: Vec<GroupInfo> = groups
            .values()
            .map(|g| GroupInfo {
                group_key: g.key.clone(),
                receiver: g.route.receiver.clone(),
                labels: g.labels.clone(),
                alerts: g.state.lock().expect("group lock").alerts.len(),
            })
            .collect();
        v.sort_by(|a, b| a.group_key.cmp(&b.group_key));
        v
    }

    pub fn nflog(&self) -> &NotificationLog {
        &self.inner.nflog
    }
}

async fn run_group(inner: Arc<Inner>, g: Arc<Group>) {
    let mut next = tokio::time::Instant::now() + g.route.group_wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = g.flush_now.notified() => {
                if g.state.lock().expect("group lock").has_flushed {
                    continue;
                }
            }
            _ = g.stop.notified() => return,
        }
        let interval = g.route.group_interval;
        next = tokio::time::Instant::now() + interval;
        g.state.lock().expect("group lock").has_flushed = true;
        let deadline = Instant::now() + interval;
        let started = Instant::now();
        flush(&inner, &g, deadline).await;
        metrics::FLUSH_SECONDS.observe(started.elapsed().as_secs_f64());
    }
}

/// Alertmanager's `AlertSlice` order: by `job`, then `instance` (alerts without the
/// label last), then by label set (fewer labels first, then by sorted names/values).
pub fn sort_alerts(alerts: &mut [NotifyAlert]) {
    alerts.sort_by(|a, b| {
        use std::cmp::Ordering;
        for k in ["job", "instance"] {
            match (a.labels.get(k), b.labels.get(k)) {
                (None, None) => continue,
                (None, Some(_)) => return Ordering::Greater,
                (Some(_), None) => return Ordering::Less,
                (Some(x), Some(y)) if x != y => return x.cmp(y),
                _ => {}
            }
        }
        if label_set_before(&a.labels, &b.labels) {
            Ordering::Less
        } else if label_set_before(&b.labels, &a.labels) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
}

/// Prometheus' `LabelSet.Before`.
fn label_set_before(a: &Labels, b: &Labels) -> bool {
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    let names: BTreeSet<&str> = a.iter().chain(b.iter()).map(|(n, _)| n).collect();
    for n in names {
        let Some(x) = a.get(n) else { return true };
        let Some(y) = b.get(n) else { return false };
        if x != y {
            return x < y;
        }
    }
    false
}

fn time_allows(inner: &Inner, r: &RouteOpts, now: Timestamp) -> bool {
    let t = chrono::DateTime::from_timestamp_nanos(now.0);
    let ivs = &inner.setup.intervals;
    // Names are checked at start; an unknown one counts as not active.
    let active = |n: &String| ivs.is_active(n, t).unwrap_or(false);
    if r.mute_time_intervals.iter().any(active) {
        return false;
    }
    if !r.active_time_intervals.is_empty() && !r.active_time_intervals.iter().any(active) {
        return false;
    }
    true
}

async fn flush(inner: &Arc<Inner>, g: &Arc<Group>, deadline: Instant) {
    let now = inner.store.now();
    // The alerts as they are now; firing ones get no end (Alertmanager: "alerts don't
    // resolve as time moves forward").
    let snapshot: Vec<Arc<Alert>> = g
        .state
        .lock()
        .expect("group lock")
        .alerts
        .values()
        .cloned()
        .collect();
    if snapshot.is_empty() {
        return;
    }
    let mut alerts: Vec<NotifyAlert> = snapshot
        .iter()
        .map(|a| {
            let resolved = a.resolved(now);
            NotifyAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.starts_at,
                ends_at: if resolved { a.ends_at } else { None },
                generator_url: a.generator_url.clone(),
                fingerprint: am_fingerprint(&a.labels),
                resolved,
            }
        })
        .collect();
    sort_alerts(&mut alerts);
    // Mute stages: inhibition and silences drop alerts; time intervals stop the flush.
    alerts.retain(|a| !inner.store.is_muted(&a.labels));
    if alerts.is_empty() {
        metrics::SKIPPED.with_label_values(&["muted"]).inc();
        return;
    }
    if !time_allows(inner, &g.route, now) {
        metrics::SKIPPED.with_label_values(&["muted"]).inc();
        return;
    }
    let Some(receiver) = inner.setup.receivers.get(&g.route.receiver).cloned() else {
        tracing::error!(receiver = %g.route.receiver, "route names an unknown receiver");
        return;
    };
    let n = Notification {
        receiver: receiver.name.clone(),
        group_key: g.key.clone(),
        group_labels: g.labels.clone(),
        alerts,
        external_url: inner.setup.external_url.clone(),
        now,
    };
    let results = futures::future::join_all(
        receiver
            .channels
            .iter()
            .map(|(name, ch)| notify_channel(inner, g, &n, name, ch.as_ref(), deadline)),
    )
    .await;
    if results.iter().all(|ok| *ok) {
        // Resolved alerts leave the group unless updated since the snapshot.
        let mut st = g.state.lock().expect("group lock");
        for a in &snapshot {
            if a.resolved(now) {
                let fp = a.fingerprint();
                if st
                    .alerts
                    .get(&fp)
                    .is_some_and(|cur| cur.updated_at == a.updated_at)
                {
                    st.alerts.remove(&fp);
                }
            }
        }
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    send_resolved: bool,
    repeat: Duration,
    now: Timestamp,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !e.is_firing_subset(firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !e.is_resolved_subset(resolved) {
        return true;
    }
    e.timestamp.0.saturating_add(repeat.as_nanos() as i64) < now.0
}

fn fp_hex(fp: u64) -> String {
    format!("{fp:016x}")
}

/// One channel of one flush; true when nothing is left to do for it.
async fn notify_channel(
    inner: &Arc<Inner>,
    g: &Group,
    n: &Notification,
    channel: &str,
    ch: &dyn Channel,
    deadline: Instant,
) -> bool {
    let key = NfKey {
        group_key: n.group_key.clone(),
        receiver: n.receiver.clone(),
        channel: channel.to_string(),
    };
    let firing: Vec<String> = n.firing().map(|a| fp_hex(a.fingerprint)).collect();
    let resolved: Vec<String> = n.resolved().map(|a| fp_hex(a.fingerprint)).collect();
    let fset: BTreeSet<String> = firing.iter().cloned().collect();
    let rset: BTreeSet<String> = resolved.iter().cloned().collect();
    let entry = inner.nflog.entry(&key);
    if !needs_update(
        entry.as_ref(),
        &fset,
        &rset,
        ch.send_resolved(),
        g.route.repeat_interval,
        n.now,
    ) {
        metrics::SKIPPED.with_label_values(&["dedup"]).inc();
        return true;
    }
    let log = &inner.nflog;
    let attempt = |attempt: u32, outcome, error: Option<String>, ms: u64| NotificationAttempt {
        group_key: key.group_key.clone(),
        receiver: key.receiver.clone(),
        channel: key.channel.clone(),
        firing: firing.clone(),
        resolved: resolved.clone(),
        attempt,
        outcome,
        error,
        duration_ms: ms,
        instance: String::new(),
        basis: None,
    };
    // A channel that does not send resolved notifications logs an all-resolved group
    // as notified without sending (Alertmanager does, so the next firing counts as new).
    let to_send: Notification = if ch.send_resolved() {
        n.clone()
    } else {
        if firing.is_empty() {
            return match log
                .record(attempt(0, NotificationOutcome::Sent, None, 0))
                .await
            {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, group_key = %key.group_key, "logging a notification failed");
                    false
                }
            };
        }
        let mut only_firing = n.clone();
        only_firing.alerts.retain(|a| !a.resolved);
        only_firing
    };
    match log.claim(&key, entry.as_ref(), &firing, &resolved).await {
        Ok(true) => {}
        Ok(false) => {
            metrics::SKIPPED.with_label_values(&["claimed"]).inc();
            return true;
        }
        Err(e) => {
            tracing::warn!(error = %e, group_key = %key.group_key, "claiming a notification failed");
            return false;
        }
    }
    let kind = ch.kind();
    let policy = inner.setup.retry;
    let mut i: u32 = 0;
    loop {
        i += 1;
        let started = Instant::now();
        let res = tokio::time::timeout_at(deadline.into(), ch.notify(&to_send)).await;
        let took = started.elapsed();
        metrics::ATTEMPT_SECONDS
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
        let ms = took.as_millis() as u64;
        let res = res.unwrap_or_else(|_| {
            Err(ChannelError::transient(
                "no answer before the flush deadline (group_interval)",
            ))
        });
        match res {
            Ok(()) => {
                metrics::ATTEMPTS.with_label_values(&[kind, "sent"]).inc();
                metrics::NOTIFICATIONS.with_label_values(&[kind]).inc();
                tracing::debug!(group_key = %key.group_key, receiver = %key.receiver, channel, attempt = i, "notified");
                if let Err(e) = log
                    .record(attempt(i, NotificationOutcome::Sent, None, ms))
                    .await
                {
                    tracing::warn!(error = %e, group_key = %key.group_key, "logging a notification failed");
                    return false;
                }
                return true;
            }
            Err(ChannelError::Permanent(msg)) => {
                metrics::ATTEMPTS
                    .with_label_values(&[kind, "permanent_failure"])
                    .inc();
                metrics::NOTIFICATIONS_FAILED
                    .with_label_values(&[kind])
                    .inc();
                tracing::error!(group_key = %key.group_key, receiver = %key.receiver, channel, attempt = i, error = %msg, "notification failed permanently");
                let _ = log
                    .record(attempt(
                        i,
                        NotificationOutcome::PermanentFailure,
                        Some(msg),
                        ms,
                    ))
                    .await;
                return false;
            }
            Err(ChannelError::Transient {
                message,
                retry_after,
            }) => {
                metrics::ATTEMPTS
                    .with_label_values(&[kind, "transient_failure"])
                    .inc();
                tracing::warn!(group_key = %key.group_key, receiver = %key.receiver, channel, attempt = i, error = %message, "notification failed, will retry");
                let _ = log
                    .record(attempt(
                        i,
                        NotificationOutcome::TransientFailure,
                        Some(message),
                        ms,
                    ))
                    .await;
                let wait = retry_after.unwrap_or_else(|| policy.wait(i));
                if Instant::now() + wait >= deadline {
                    metrics::NOTIFICATIONS_FAILED
                        .with_label_values(&[kind])
                        .inc();
                    return false;
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn entry(f: &[&str], r: &[&str], at: i64) -> Entry {
        Entry {
            firing: set(f),
            resolved: set(r),
            timestamp: Timestamp(at),
        }
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn needs_update_follows_alertmanager() {
        let h = Duration::from_secs(3600);
        let now = Timestamp(10_000 * S);
        // Nothing notified yet: only when something fires.
        assert!(needs_update(None, &set(&["a"]), &set(&[]), true, h, now));
        assert!(!needs_update(None, &set(&[]), &set(&["a"]), true, h, now));
        let e = entry(&["a", "b"], &[], 9_000 * S);
        // A new firing alert.
        assert!(needs_update(
            Some(&e),
            &set(&["a", "c"]),
            &set(&[]),
            false,
            h,
            now
        ));
        // Fewer firing, one resolved: only channels that send resolved ones.
        assert!(needs_update(
            Some(&e),
            &set(&["a"]),
            &set(&["b"]),
            true,
            h,
            now
        ));
        assert!(!needs_update(
            Some(&e),
            &set(&["a"]),
            &set(&["b"]),
            false,
            h,
            now
        ));
        // All resolved: always (clears the firing alerts from the log).
        assert!(needs_update(
            Some(&e),
            &set(&[]),
            &set(&["a", "b"]),
            false,
            h,
            now
        ));
        // Nothing new before the repeat interval; after it, again.
        assert!(!needs_update(
            Some(&e),
            &set(&["a", "b"]),
            &set(&[]),
            true,
            h,
            now
        ));
        let late = Timestamp(9_000 * S + 3601 * S);
        assert!(needs_update(
            Some(&e),
            &set(&["a", "b"]),
            &set(&[]),
            true,
            h,
            late
        ));
        // All resolved and already notified as such: nothing.
        let done = entry(&[], &["a"], 9_000 * S);
        assert!(!needs_update(
            Some(&done),
            &set(&[]),
            &set(&["a"]),
            true,
            h,
            now
        ));
    }

    fn alert(pairs: &[(&str, &str)]) -> NotifyAlert {
        let labels = Labels::from_pairs(pairs.iter().copied());
        NotifyAlert {
            fingerprint: am_fingerprint(&labels),
            labels,
            annotations: Labels::default(),
            starts_at: Timestamp(0),
            ends_at: None,
            generator_url: String::new(),
            resolved: false,
        }
    }

    #[test]
    fn alerts_sort_by_job_instance_then_labels() {
        let mut v = vec![
            alert(&[("alertname", "x"), ("z", "1")]),
            alert(&[("alertname", "x")]),
            alert(&[("alertname", "x"), ("job", "b")]),
            alert(&[("alertname", "x"), ("instance", "i1"), ("job", "a")]),
            alert(&[("alertname", "x"), ("instance", "i0"), ("job", "a")]),
            alert(&[("alertname", "y"), ("instance", "i9")]),
        ];
        sort_alerts(&mut v);
        let got: Vec<String> = v.iter().map(|a| go_label_set_string(&a.labels)).collect();
        assert_eq!(
            got,
            [
                r#"{alertname="x", instance="i0", job="a"}"#,
                r#"{alertname="x", instance="i1", job="a"}"#,
                r#"{alertname="x", job="b"}"#,
                r#"{alertname="y", instance="i9"}"#,
                r#"{alertname="x"}"#,
                r#"{alertname="x", z="1"}"#,
            ]
        );
    }

    #[test]
    fn retry_waits_grow_and_stay_bounded() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(p.wait(1), Duration::from_millis(500));
        assert_eq!(p.wait(2), Duration::from_millis(750));
        assert_eq!(p.wait(50), Duration::from_secs(60));
        let j = RetryPolicy::default();
        for _ in 0..100 {
            let w = j.wait(1);
            assert!(w >= Duration::from_millis(250) && w <= Duration::from_millis(750));
        }
    }
}
