//! Typed consumption: envelopes decoded, bad records sent to the dead-letter topic.
//!
//! A record that does not decode ([`argus_schemas::DecodeError`]) is written to
//! `argus.dead-letter` with its original key and value and headers saying where it came
//! from and why ([`argus_schemas::topics::headers`]), counted in
//! `argus_bus_dead_letter_records_total`, and skipped. The consumer carries on; the
//! record's offset is committed with the batch, so it is neither lost nor retried.

use std::time::Duration;

use argus_schemas::topics::{self, headers};
use argus_schemas::{DecodeError, Envelope};

use crate::{Consumer, EventLog, OutRecord, Record, Result, metrics, next_offsets};

/// A decoded record and where it was read.
#[derive(Debug, Clone)]
pub struct Event {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub envelope: Envelope,
}

/// What one poll returned: the decoded events, and the offsets to commit once the
/// caller has made its work durable (they cover dead-lettered records too).
#[derive(Debug, Default)]
pub struct TypedBatch {
    pub events: Vec<Event>,
    pub dead_lettered: usize,
    pub offsets: Vec<(String, i32, i64)>,
}

pub struct TypedConsumer {
    log: EventLog,
    inner: Consumer,
    lag_refreshed: Option<std::time::Instant>,
}

/// How often a typed consumer refreshes `argus_bus_consumer_lag_records`.
const LAG_REFRESH: Duration = Duration::from_secs(10);

impl TypedConsumer {
    pub async fn new(log: &EventLog, group: &str, topics: &[&str]) -> Result<Self> {
        Ok(TypedConsumer {
            log: log.clone(),
            inner: log.consumer(group, topics).await?,
            lag_refreshed: None,
        })
    }

    pub fn consumer(&mut self) -> &mut Consumer {
        &mut self.inner
    }

    /// Polls, decodes, and dead-letters what does not decode. Returns once the
    /// dead-letter records are durable.
    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<TypedBatch> {
        let records = self.inner.poll(max, wait).await?;
        let offsets = next_offsets(
            records
                .iter()
                .map(|r| (r.topic.as_str(), r.partition, r.offset)),
        );
        let mut batch = TypedBatch {
            offsets,
            ..Default::default()
        };
        let mut dead = Vec::new();
        for r in records {
            match argus_schemas::decode(&r.value) {
                Ok(envelope) => batch.events.push(Event {
                    topic: r.topic,
                    partition: r.partition,
                    offset: r.offset,
                    envelope,
                }),
                Err(e) => dead.push(dead_letter(&r, self.inner.group(), &e)),
            }
        }
        batch.dead_lettered = dead.len();
        if !dead.is_empty() {
            self.log.produce_batch(topics::DEAD_LETTER, dead).await?;
        }
        Ok(batch)
    }

    /// Commits a batch returned by [`TypedConsumer::poll`], and every
    /// [`LAG_REFRESH`] updates the group's lag gauge.
    pub async fn commit(&mut self, batch: &TypedBatch) -> Result<()> {
        self.inner.commit_offsets(&batch.offsets).await?;
        if self
            .lag_refreshed
            .is_none_or(|t| t.elapsed() >= LAG_REFRESH)
        {
            self.lag_refreshed = Some(std::time::Instant::now());
            if let Err(e) = self.inner.lag().await {
                tracing::debug!(group = self.inner.group(), error = %e, "lag not refreshed");
            }
        }
        Ok(())
    }
}

fn dead_letter(r: &Record, group: &str, e: &DecodeError) -> OutRecord {
    metrics::DEAD_LETTERS
        .with_label_values(&[&r.topic, group, e.code()])
        .inc();
    tracing::warn!(
        topic = %r.topic, partition = r.partition, offset = r.offset, group,
        reason = %e, "record does not decode; sent to the dead-letter topic"
    );
    let mut h = vec![
        (
            headers::SOURCE_TOPIC.to_string(),
            r.topic.as_bytes().to_vec(),
        ),
        (
            headers::SOURCE_PARTITION.to_string(),
            r.partition.to_string().into_bytes(),
        ),
        (
            headers::SOURCE_OFFSET.to_string(),
            r.offset.to_string().into_bytes(),
        ),
        (headers::GROUP.to_string(), group.as_bytes().to_vec()),
        (
            headers::REASON_CODE.to_string(),
            e.code().as_bytes().to_vec(),
        ),
        (headers::REASON.to_string(), e.to_string().into_bytes()),
    ];
    h.extend(r.headers.iter().cloned());
    OutRecord {
        key: r.topic.as_bytes().to_vec(),
        value: r.value.clone(),
        headers: h,
    }
}
