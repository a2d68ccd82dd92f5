//! An [`AlertStore`] kept current from `argus.alerts` without a rule engine: what the
//! notifier runs on when it runs alone (`argus notifier`).
//!
//! This module owns replaying the topic into the store at start, tailing it (woken at
//! once by the feed's own sink, else polling), and the [`AlertSink`] that publishes
//! alerts posted to `POST /api/v2/alerts` and answers once they are in the store.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use argus_bus::EventLog;
use argus_schemas::{Timestamp, topics};
use tokio::sync::{Notify, watch};

use crate::RulesError;
use crate::alert_store::{Alert, AlertSink, AlertStore, posted_records};

const READ_BATCH: usize = 5_000;
/// How long a posted alert waits to be applied before the sink answers anyway.
const SINK_WAIT: Duration = Duration::from_secs(5);

/// The feed; share it in an `Arc`.
pub struct AlertFeed {
    log: EventLog,
    store: Arc<AlertStore>,
    applied: watch::Sender<HashMap<i32, i64>>,
    wake: Notify,
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
                let recs = self.log.read(topics::ALERTS, *p, *pos, READ_BATCH).await?;
                let Some(last) = recs.last() else { break };
                *pos = last.offset + 1;
                for r in &recs {
                    n += 1;
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

    /// The sink for `POST /api/v2/alerts`: publishes, then waits until the store has
    /// the alerts.
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
            if alerts.is_empty() {
                return Ok(());
            }
            let recs = posted_records(Some(&self.store), alerts, Timestamp::now());
            let positions = self.log.produce_batch(topics::ALERTS, recs).await?;
            self.wake.notify_one();
            let want: Vec<(i32, i64)> = positions
                .iter()
                .map(|p| (p.partition, p.offset + 1))
                .collect();
            let ok = wait_positions(&self.applied, &want, SINK_WAIT).await;
            if !ok {
                tracing::warn!("posted alerts are durable but not applied yet");
            }
            Ok(())
        })
    }
}
