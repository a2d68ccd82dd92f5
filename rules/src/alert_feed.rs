//! An [`AlertStore`] kept current from `argus.alerts` without a rule engine: what the
//! notifier runs on when it runs alone (`argus notifier`).
//!
//! This module owns replaying the topic into the store at start, tailing it (woken at
//! once by the feed's own sink, else polling), and the [`AlertSink`] that publishes
//! alerts posted to `POST /api/v2/alerts`.
//!
//! It also owns how posted alerts reach the log and the store, for this feed and for
//! the rule service alike ([`publish_posted`]): they are applied to the store as soon
//! as they are validated (so they are routed and notified without waiting for the
//! log), then written to `argus.alerts` as one `alert_batch` record per request; the
//! POST is answered once the write is durable. The tail skips the records this process
//! applied itself (marked with a header, [`OwnRecords`]); other processes (and a
//! restart) apply them from the log. A crash between routing and the write can thus
//! notify an alert whose POST was not acknowledged: the client posts it again
//! (Prometheus re-sends every evaluation), which is within the notifier's at-least-once
//! window.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argus_bus::{EventLog, OutRecord, Position, Record};
use argus_schemas::{Timestamp, topics};
use tokio::sync::{Notify, watch};

use crate::RulesError;
use crate::alert_store::{Alert, AlertSink, AlertStore, encode_record, posted_batch};

const READ_BATCH: usize = 5_000;

/// The feed; share it in an `Arc`.
pub struct AlertFeed {
    log: EventLog,
    store: Arc<AlertStore>,
    applied: watch::Sender<HashMap<i32, i64>>,
    own: OwnRecords,
    wake: Notify,
}

/// The record header naming the process that applied a posted alert to its store
/// before writing it.
const APPLIED_BY: &str = "argus-applied-by";

/// What this process's tail steps over: the posted alerts it applied itself. Their runs
/// of offsets are noted after each write, so the tail skips them without reading; a
/// record the tail reads before its run is noted carries this process's mark in a
/// header and is not applied again. A restart gets a new mark, so replay applies them
/// all.
#[derive(Debug)]
pub(crate) struct OwnRecords {
    mark: Vec<u8>,
    /// Per partition, start offset → end offset (exclusive).
    runs: Mutex<HashMap<i32, BTreeMap<i64, i64>>>,
}

impl Default for OwnRecords {
    fn default() -> Self {
        let nanos = Timestamp::now().0 as u64;
        let mark = format!("{:x}-{:x}", std::process::id(), nanos);
        OwnRecords {
            mark: mark.into_bytes(),
            runs: Mutex::new(HashMap::new()),
        }
    }
}

impl OwnRecords {
    /// Marks a record as applied by this process.
    fn mark(&self, mut rec: OutRecord) -> OutRecord {
        rec.headers
            .push((APPLIED_BY.to_string(), self.mark.clone()));
        rec
    }

    /// Whether this process applied the record before writing it.
    pub(crate) fn applied(&self, rec: &Record) -> bool {
        rec.header(APPLIED_BY) == Some(self.mark.as_slice())
    }

    /// Notes where one write landed (each record a run of one offset; consecutive runs
    /// are skipped in one go); records the tail (`tail`: next offset per partition) has
    /// reached already are left to the mark.
    fn note(&self, positions: &[Position], tail: &HashMap<i32, i64>) {
        let mut m = self.runs.lock().expect("own records lock");
        for p in positions {
            if tail.get(&p.partition).is_some_and(|t| *t > p.offset) {
                continue;
            }
            m.entry(p.partition)
                .or_default()
                .insert(p.offset, p.offset + 1);
        }
    }

    /// Moves `pos` past the noted runs that start there and forgets runs behind it;
    /// true when it moved.
    pub(crate) fn skip(&self, partition: i32, pos: &mut i64) -> bool {
        let mut m = self.runs.lock().expect("own records lock");
        let Some(runs) = m.get_mut(&partition) else {
            return false;
        };
        let mut moved = false;
        while let Some(end) = runs.remove(pos) {
            *pos = end;
            moved = true;
        }
        while runs.first_key_value().is_some_and(|(s, _)| s < pos) {
            runs.pop_first();
        }
        moved
    }
}

/// Posted alerts into `store` and onto `argus.alerts` (see the module docs); returns
/// once the write is durable.
pub(crate) async fn publish_posted(
    log: &EventLog,
    store: &AlertStore,
    own: &OwnRecords,
    applied: &watch::Sender<HashMap<i32, i64>>,
    alerts: Vec<Alert>,
) -> Result<(), RulesError> {
    if alerts.is_empty() {
        return Ok(());
    }
    let env = posted_batch(Some(store), alerts, Timestamp::now());
    let rec = own.mark(encode_record(&env));
    store.apply_posted(env);
    let positions = log.produce_batch(topics::ALERTS, vec![rec]).await?;
    own.note(&positions, &applied.borrow());
    Ok(())
}

impl AlertFeed {
    /// Replays `argus.alerts` into `store`, then tails it until `stop` turns true.
    pub async fn start(
        log: EventLog,
        store: Arc<AlertStore>,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<AlertFeed>, RulesError> {
        let feed = Arc::new(AlertFeed {
            log,
            store,
            applied: watch::Sender::new(HashMap::new()),
            own: OwnRecords::default(),
            wake: Notify::new(),
        });
        let mut positions = HashMap::new();
        let parts = feed.log.partitions(topics::ALERTS).await?;
        for p in 0..parts {
            let (low, _) = feed.log.watermarks(topics::ALERTS, p).await?;
            positions.insert(p, low);
        }
        let n = feed.read_all(&mut positions).await?;
        tracing::info!(records = n, "alerts replayed from {}", topics::ALERTS);
        feed.applied.send_replace(positions.clone());
        tokio::spawn(feed.clone().tail(positions, stop));
        Ok(feed)
    }

    /// Reads every partition up to its end; returns the records read.
    async fn read_all(&self, positions: &mut HashMap<i32, i64>) -> Result<usize, RulesError> {
        let mut n = 0;
        for (p, pos) in positions.iter_mut() {
            loop {
                if self.own.skip(*p, pos) {
                    n += 1;
                }
                let recs = self.log.read(topics::ALERTS, *p, *pos, READ_BATCH).await?;
                let Some(last) = recs.last() else { break };
                *pos = last.offset + 1;
                n += recs.len();
                for r in recs.iter().filter(|r| !self.own.applied(r)) {
                    match argus_schemas::decode(&r.value) {
                        Ok(env) => self.store.apply_envelope(&env),
                        Err(e) => {
                            tracing::debug!(error = %e, "undecodable record on {}", topics::ALERTS)
                        }
                    }
                }
            }
        }
        Ok(n)
    }

    async fn tail(
        self: Arc<Self>,
        mut positions: HashMap<i32, i64>,
        mut stop: watch::Receiver<bool>,
    ) {
        let poll = match self.log {
            EventLog::Embedded(_) => Duration::from_millis(100),
            EventLog::Kafka(_) => Duration::from_secs(1),
        };
        loop {
            match self.read_all(&mut positions).await {
                Ok(n) if n > 0 => {
                    self.applied.send_replace(positions.clone());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reading {} failed", topics::ALERTS),
            }
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// The sink for `POST /api/v2/alerts` ([`publish_posted`]).
    pub fn sink(self: &Arc<Self>) -> Arc<dyn AlertSink> {
        self.clone()
    }
}

/// Waits (at most `limit`) until `applied` (next offset per partition) has passed every
/// `(partition, next offset)` of `want`; false on timeout.
pub(crate) async fn wait_positions(
    applied: &watch::Sender<HashMap<i32, i64>>,
    want: &[(i32, i64)],
    limit: Duration,
) -> bool {
    let mut rx = applied.subscribe();
    let done = |m: &HashMap<i32, i64>| {
        want.iter()
            .all(|(p, o)| m.get(p).is_some_and(|have| have >= o))
    };
    tokio::time::timeout(limit, async {
        loop {
            if done(&rx.borrow_and_update()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await
    .is_ok()
}

impl AlertSink for AlertFeed {
    fn put(
        &self,
        alerts: Vec<Alert>,
    ) -> Pin<Box<dyn Future<Output = Result<(), RulesError>> + Send + '_>> {
        Box::pin(async move {
            // The tail is not woken: it has nothing to apply from this write.
            publish_posted(&self.log, &self.store, &self.own, &self.applied, alerts).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(rec: OutRecord) -> Record {
        Record {
            topic: topics::ALERTS.into(),
            partition: 0,
            offset: 0,
            key: rec.key,
            value: rec.value,
            headers: rec.headers,
            timestamp_ms: 0,
        }
    }

    #[test]
    fn only_this_process_skips_what_it_marked() {
        let me = OwnRecords {
            mark: b"1-a".to_vec(),
            ..OwnRecords::default()
        };
        let other = OwnRecords {
            mark: b"2-b".to_vec(),
            ..OwnRecords::default()
        };
        let mine = read_back(me.mark(OutRecord::new("k", "v")));
        let theirs = read_back(other.mark(OutRecord::new("k", "v")));
        let unmarked = read_back(OutRecord::new("k", "v"));
        assert!(me.applied(&mine));
        assert!(!me.applied(&theirs));
        assert!(!me.applied(&unmarked));
        assert!(other.applied(&theirs));
        // A restarted process has a new mark and applies its earlier records again.
        assert_ne!(OwnRecords::default().mark, me.mark);
    }

    fn at(partition: i32, offsets: &[i64]) -> Vec<Position> {
        offsets
            .iter()
            .map(|&offset| Position { partition, offset })
            .collect()
    }

    #[test]
    fn the_tail_steps_over_noted_runs_only() {
        let own = OwnRecords::default();
        let tail = HashMap::from([(0, 10), (1, 0)]);
        own.note(&at(0, &[12, 13, 14, 16]), &tail);
        own.note(&at(0, &[5, 6]), &tail); // behind the tail: left to the mark
        own.note(&at(1, &[0, 1]), &tail);
        let mut pos = 10;
        assert!(!own.skip(0, &mut pos), "10 and 11 were written by others");
        pos = 12;
        assert!(own.skip(0, &mut pos));
        assert_eq!(pos, 15, "12..15 is one run; 15 is another writer's");
        pos = 16;
        assert!(own.skip(0, &mut pos));
        assert_eq!(pos, 17);
        let mut p1 = 0;
        assert!(own.skip(1, &mut p1));
        assert_eq!(p1, 2);
        assert!(!own.skip(2, &mut 0));
    }
}
