//! The notification log: Alertmanager's nflog as an event stream on
//! `argus.notifications`.
//!
//! Every attempt to deliver one notification through one channel is a
//! [`NotificationAttempt`] record keyed by the group key (so a group's records are in
//! one partition, in order). This module owns folding those records into:
//! - the last delivered notification per (group key, receiver, channel): the firing and
//!   resolved fingerprints and when — what the dispatcher's dedup compares with
//!   ([`NotificationLog::entry`]), as Alertmanager's `DedupStage` reads its nflog;
//! - claims: a `started` record written before a send. With several notifier instances
//!   the first live claim in log order sends, the others stand back
//!   ([`NotificationLog::claim`]); a claim with no outcome after it (the instance died
//!   mid-send) stops counting after the claim timeout;
//! - the recent history of attempts, served by the notifier's API.
//!
//! The state is rebuilt by replaying the topic at start, then kept current by reading
//! what any instance writes ([`NotificationLog::sync`], [`NotificationLog::follow`]).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argus_bus::EventLog;
use argus_schemas::{
    Envelope, NotificationAttempt, NotificationOutcome, Payload, Timestamp, topics,
};

use crate::NotifierError;
use crate::metrics;

/// How many attempts the in-memory history keeps.
pub const DEFAULT_HISTORY: usize = 10_000;

/// Alertmanager's default `--data.retention`: entries older than this are forgotten.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(120 * 3600);

const READ_BATCH: usize = 1000;

/// What one notification log entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NfKey {
    pub group_key: String,
    pub receiver: String,
    /// `webhook/0`, `email/1`….
    pub channel: String,
}

/// The last delivered notification of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
    pub timestamp: Timestamp,
}

impl Entry {
    /// Alertmanager's `IsFiringSubset`: every alert of `firing` was firing then.
    pub fn is_firing_subset(&self, firing: &BTreeSet<String>) -> bool {
        firing.is_subset(&self.firing)
    }

    /// Alertmanager's `IsResolvedSubset`.
    pub fn is_resolved_subset(&self, resolved: &BTreeSet<String>) -> bool {
        resolved.is_subset(&self.resolved)
    }
}

#[derive(Debug, Clone)]
struct Claim {
    instance: String,
    at: Timestamp,
    /// Where the `started` record is: (partition, offset).
    offset: (i32, i64),
}

#[derive(Debug, Default)]
struct KeyState {
    last: Option<Entry>,
    claims: Vec<Claim>,
}

/// One attempt as the history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    pub time: Timestamp,
    pub tenant: String,
    pub attempt: NotificationAttempt,
}

/// Which history items to return (all given conditions hold).
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub group_key: Option<String>,
    pub receiver: Option<String>,
    pub channel: Option<String>,
    pub outcome: Option<NotificationOutcome>,
    /// Alert fingerprint (16 hex digits) among the firing or resolved ones.
    pub fingerprint: Option<String>,
    pub since: Option<Timestamp>,
    pub limit: Option<usize>,
}

/// Settings of the log.
#[derive(Debug, Clone)]
pub struct NflogOptions {
    pub tenant: String,
    /// This instance's name in claims.
    pub instance: String,
    pub retention: Duration,
    /// A claim with no outcome stops counting after this long.
    pub claim_timeout: Duration,
    /// Whether sends are claimed (`started` records). Off where only one instance can
    /// write the log (the embedded backend): nothing can race there.
    pub claims: bool,
    pub history: usize,
}

impl Default for NflogOptions {
    fn default() -> Self {
        NflogOptions {
            tenant: argus_schemas::DEFAULT_TENANT.to_string(),
            instance: "argus".into(),
            retention: DEFAULT_RETENTION,
            claim_timeout: Duration::from_secs(60),
            claims: true,
            history: DEFAULT_HISTORY,
        }
    }
}

#[derive(Default)]
struct State {
    keys: HashMap<NfKey, KeyState>,
    history: VecDeque<HistoryItem>,
    positions: HashMap<i32, i64>,
}

/// The notification log; cheap to clone.
#[derive(Clone)]
pub struct NotificationLog {
    inner: Arc<Inner>,
}

struct Inner {
    log: EventLog,
    opts: NflogOptions,
    state: Mutex<State>,
    /// One reader at a time (records are folded in log order).
    reading: tokio::sync::Mutex<()>,
}

impl NotificationLog {
    /// Opens the log and replays `argus.notifications`.
    pub async fn open(log: EventLog, opts: NflogOptions) -> Result<Self, NotifierError> {
        let me = NotificationLog {
            inner: Arc::new(Inner {
                log,
                opts,
                state: Mutex::new(State::default()),
                reading: tokio::sync::Mutex::new(()),
            }),
        };
        let n = me.sync().await?;
        tracing::info!(
            records = n,
            "notification log replayed from {}",
            topics::NOTIFICATIONS
        );
        Ok(me)
    }

    pub fn options(&self) -> &NflogOptions {
        &self.inner.opts
    }

    /// Reads what was written since the last read (by any instance) and folds it in;
    /// returns how many records were read.
    pub async fn sync(&self) -> Result<usize, NotifierError> {
        let _g = self.inner.reading.lock().await;
        let log = &self.inner.log;
        let parts = log.partitions(topics::NOTIFICATIONS).await?;
        let mut n = 0;
        for p in 0..parts {
            let (low, high) = log.watermarks(topics::NOTIFICATIONS, p).await?;
            let mut next = {
                let st = self.inner.state.lock().expect("nflog lock");
                st.positions.get(&p).copied().unwrap_or(low).max(low)
            };
            while next < high {
                let recs = log.read(topics::NOTIFICATIONS, p, next, READ_BATCH).await?;
                if recs.is_empty() {
                    break;
                }
                let mut st = self.inner.state.lock().expect("nflog lock");
                for r in &recs {
                    next = r.offset + 1;
                    n += 1;
                    self.apply(&mut st, p, r.offset, &r.value);
                }
                st.positions.insert(p, next);
            }
            self.inner
                .state
                .lock()
                .expect("nflog lock")
                .positions
                .insert(p, next);
        }
        Ok(n)
    }

    /// Keeps reading every `interval` until `stop` turns true.
    pub fn follow(
        &self,
        interval: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.sync().await {
                    tracing::warn!(error = %e, "reading the notification log failed");
                }
                me.gc(Timestamp::now());
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
        })
    }

    fn apply(&self, st: &mut State, partition: i32, offset: i64, bytes: &[u8]) {
        let env = match argus_schemas::decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "skipping an undecodable notification record");
                metrics::BAD_RECORDS.inc();
                return;
            }
        };
        if env.tenant != self.inner.opts.tenant {
            return;
        }
        let Payload::NotificationAttempt(a) = env.payload else {
            tracing::warn!(
                kind = env.kind().as_str(),
                "unexpected record on the notifications topic"
            );
            metrics::BAD_RECORDS.inc();
            return;
        };
        let key = NfKey {
            group_key: a.group_key.clone(),
            receiver: a.receiver.clone(),
            channel: a.channel.clone(),
        };
        let ks = st.keys.entry(key).or_default();
        match a.outcome {
            NotificationOutcome::Started => {
                // A claim decided on an outdated view (a send landed since) is void.
                if a.basis == ks.last.as_ref().map(|e| e.timestamp) {
                    ks.claims.push(Claim {
                        instance: a.instance.clone(),
                        at: env.event_time,
                        offset: (partition, offset),
                    });
                }
            }
            NotificationOutcome::Sent => {
                ks.last = Some(Entry {
                    firing: a.firing.iter().cloned().collect(),
                    resolved: a.resolved.iter().cloned().collect(),
                    timestamp: env.event_time,
                });
                ks.claims.clear();
            }
            NotificationOutcome::PermanentFailure => {
                ks.claims.retain(|c| c.instance != a.instance);
            }
            NotificationOutcome::TransientFailure => {}
        }
        if self.inner.opts.history > 0 {
            if st.history.len() >= self.inner.opts.history {
                st.history.pop_front();
            }
            st.history.push_back(HistoryItem {
                time: env.event_time,
                tenant: env.tenant,
                attempt: a,
            });
        }
    }

    /// The last delivered notification of `key`.
    pub fn entry(&self, key: &NfKey) -> Option<Entry> {
        let st = self.inner.state.lock().expect("nflog lock");
        st.keys.get(key).and_then(|k| k.last.clone())
    }

    /// Writes one attempt and reads the log up to it; returns where it landed.
    pub async fn record(
        &self,
        mut a: NotificationAttempt,
    ) -> Result<argus_bus::Position, NotifierError> {
        if a.instance.is_empty() {
            a.instance = self.inner.opts.instance.clone();
        }
        let env = Envelope::new(
            self.inner.opts.tenant.clone(),
            "notifier",
            Timestamp::now(),
            Payload::NotificationAttempt(a),
        );
        // Straight to the log (not a producer spool): the claim protocol reads it back.
        let pos = self
            .inner
            .log
            .produce(
                topics::NOTIFICATIONS,
                argus_bus::OutRecord::new(env.key.as_bytes(), argus_schemas::encode(&env)),
            )
            .await?;
        self.sync().await?;
        Ok(pos)
    }

    /// Claims the send of `key`'s next notification, decided on `basis` (the entry the
    /// caller's dedup read): writes a `started` record, reads the log up to it and
    /// answers whether this claim is the first live one (then the caller sends; else
    /// another instance sends it, or one already did since the caller looked).
    pub async fn claim(
        &self,
        key: &NfKey,
        basis: Option<&Entry>,
        firing: &[String],
        resolved: &[String],
    ) -> Result<bool, NotifierError> {
        if !self.inner.opts.claims {
            return Ok(true);
        }
        let pos = self
            .record(NotificationAttempt {
                group_key: key.group_key.clone(),
                receiver: key.receiver.clone(),
                channel: key.channel.clone(),
                firing: firing.to_vec(),
                resolved: resolved.to_vec(),
                attempt: 0,
                outcome: NotificationOutcome::Started,
                error: None,
                duration_ms: 0,
                instance: self.inner.opts.instance.clone(),
                basis: basis.map(|e| e.timestamp),
            })
            .await?;
        let now = Timestamp::now();
        let ttl = self.inner.opts.claim_timeout.as_nanos() as i64;
        let st = self.inner.state.lock().expect("nflog lock");
        let Some(k) = st.keys.get(key) else {
            return Ok(false);
        };
        let mine = (pos.partition, pos.offset);
        if !k.claims.iter().any(|c| c.offset == mine) {
            // Void (decided on an outdated view) or already settled by a send.
            return Ok(false);
        }
        let first_live = k.claims.iter().find(|c| c.at.0.saturating_add(ttl) > now.0);
        Ok(first_live.is_none_or(|c| c.offset == mine || c.instance == self.inner.opts.instance))
    }

    /// Forgets entries older than the retention and stale claims.
    pub fn gc(&self, now: Timestamp) {
        let ret = self.inner.opts.retention.as_nanos().min(i64::MAX as u128) as i64;
        let ttl = self.inner.opts.claim_timeout.as_nanos() as i64;
        let mut st = self.inner.state.lock().expect("nflog lock");
        st.keys.retain(|_, k| {
            k.claims.retain(|c| c.at.0.saturating_add(ttl) > now.0);
            if k.last
                .as_ref()
                .is_some_and(|e| e.timestamp.0.saturating_add(ret) < now.0)
            {
                k.last = None;
            }
            k.last.is_some() || !k.claims.is_empty()
        });
    }

    /// Recent attempts matching `f`, newest first.
    pub fn history(&self, f: &HistoryFilter) -> Vec<HistoryItem> {
        let st = self.inner.state.lock().expect("nflog lock");
        let limit = f.limit.unwrap_or(usize::MAX);
        st.history
            .iter()
            .rev()
            .filter(|h| {
                let a = &h.attempt;
                f.group_key.as_ref().is_none_or(|g| *g == a.group_key)
                    && f.receiver.as_ref().is_none_or(|r| *r == a.receiver)
                    && f.channel.as_ref().is_none_or(|c| *c == a.channel)
                    && f.outcome.is_none_or(|o| o == a.outcome)
                    && f.since.is_none_or(|s| h.time >= s)
                    && f.fingerprint
                        .as_ref()
                        .is_none_or(|fp| a.firing.contains(fp) || a.resolved.contains(fp))
            })
            .take(limit)
            .cloned()
            .collect()
    }
}
