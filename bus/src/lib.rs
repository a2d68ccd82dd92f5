//! The event log: one interface over two backends.
//!
//! - **produce** with a key: records with the same key go to the same partition and keep
//!   their order; `produce` returns once the record is durable (Kafka: acknowledged by
//!   all in-sync replicas; embedded: committed to SQLite with `synchronous=FULL`).
//! - **consume** as a named group from the group's committed offsets; **commit** after
//!   the work is durable. What was polled but not committed is delivered again after a
//!   restart (at least once); what was committed is never delivered again to that group.
//!
//! Backends: [`kafka`] (rdkafka: idempotent producer, `acks=all`, lz4, topics created
//! at start-up, manual commits) and [`embedded`] (a durable log in one SQLite database
//! in the data directory, no server). [`typed`] adds envelope decoding on top of a
//! consumer and sends records that do not decode to the dead-letter topic.

pub mod config;
pub mod embedded;
mod error;
pub mod kafka;
pub mod metrics;
pub mod spool;
pub mod typed;

use std::time::Duration;

pub use config::{BusConfig, EmbeddedConfig, KafkaConfig, SpoolConfig, TopicSpec};
pub use error::BusError;
pub use typed::{Event, TypedBatch, TypedConsumer};

pub type Result<T, E = BusError> = std::result::Result<T, E>;

/// A record to write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutRecord {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl OutRecord {
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        OutRecord {
            key: key.into(),
            value: value.into(),
            headers: Vec::new(),
        }
    }
}

/// A record read from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// When the log accepted it, Unix milliseconds.
    pub timestamp_ms: i64,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// The event log, on one of its backends. Cheap to clone.
#[derive(Clone)]
pub enum EventLog {
    Embedded(embedded::EmbeddedLog),
    Kafka(kafka::KafkaLog),
}

impl EventLog {
    /// Opens the backend the config names and creates the topics it lists.
    pub async fn open(cfg: &BusConfig) -> Result<EventLog> {
        let log = match &cfg.kafka {
            Some(k) => EventLog::Kafka(kafka::KafkaLog::connect(k).await?),
            None => EventLog::Embedded(embedded::EmbeddedLog::open(&cfg.embedded).await?),
        };
        log.ensure_topics(&cfg.topic_specs()).await?;
        Ok(log)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            EventLog::Embedded(_) => "embedded",
            EventLog::Kafka(_) => "kafka",
        }
    }

    /// Creates the topics that do not exist yet; existing ones are left as they are.
    pub async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<()> {
        match self {
            EventLog::Embedded(l) => l.ensure_topics(specs).await,
            EventLog::Kafka(l) => l.ensure_topics(specs).await,
        }
    }

    /// Writes one record; returns when it is durable.
    pub async fn produce(&self, topic: &str, record: OutRecord) -> Result<Position> {
        let mut v = self.produce_batch(topic, vec![record]).await?;
        Ok(v.pop().expect("one position per record"))
    }

    /// Writes records in order; returns when all are durable, with their positions.
    pub async fn produce_batch(
        &self,
        topic: &str,
        records: Vec<OutRecord>,
    ) -> Result<Vec<Position>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let n = records.len() as u64;
        let r = match self {
            EventLog::Embedded(l) => l.produce_batch(topic, records).await,
            EventLog::Kafka(l) => l.produce_batch(topic, records).await,
        };
        match &r {
            Ok(_) => metrics::PRODUCED
                .with_label_values(&[self.backend(), topic])
                .inc_by(n),
            Err(_) => metrics::PRODUCE_ERRORS
                .with_label_values(&[self.backend(), topic])
                .inc_by(n),
        }
        r
    }

    /// Writes envelopes to their topics, keyed by their keys; returns when they are
    /// durable. On Kafka with a spool (`bus.kafka.spool`), "durable" can be the local
    /// disk spool while the brokers are unavailable, and a full spool refuses with
    /// [`BusError::Backpressure`] (see [`spool`]).
    pub async fn publish(&self, events: &[argus_schemas::Envelope]) -> Result<()> {
        if let EventLog::Kafka(l) = self {
            if events.is_empty() {
                return Ok(());
            }
            let recs = events
                .iter()
                .map(|e| {
                    (
                        e.kind().topic().to_string(),
                        OutRecord::new(e.key.as_bytes(), argus_schemas::encode(e)),
                    )
                })
                .collect();
            return l.publish(recs).await;
        }
        let mut by_topic: Vec<(&'static str, Vec<OutRecord>)> = Vec::new();
        for e in events {
            let topic = e.kind().topic();
            let rec = OutRecord::new(e.key.as_bytes(), argus_schemas::encode(e));
            match by_topic.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, v)) => v.push(rec),
                None => by_topic.push((topic, vec![rec])),
            }
        }
        let futs = by_topic
            .into_iter()
            .map(|(t, recs)| self.produce_batch(t, recs));
        for r in futures::future::join_all(futs).await {
            r?;
        }
        Ok(())
    }

    /// Joins `group` as a consumer of `topics`, starting at the group's committed
    /// offsets (the earliest retained record where it has none).
    pub async fn consumer(&self, group: &str, topics: &[&str]) -> Result<Consumer> {
        Ok(match self {
            EventLog::Embedded(l) => Consumer::Embedded(l.consumer(group, topics).await?),
            EventLog::Kafka(l) => Consumer::Kafka(l.consumer(group, topics)?),
        })
    }

    /// Reads up to `max` records of one partition from `offset` on, outside any group
    /// (for operators and tests).
    pub async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Record>> {
        match self {
            EventLog::Embedded(l) => l.read(topic, partition, offset, max).await,
            EventLog::Kafka(l) => l.read(topic, partition, offset, max).await,
        }
    }

    /// Number of partitions of a topic.
    pub async fn partitions(&self, topic: &str) -> Result<i32> {
        match self {
            EventLog::Embedded(l) => l.partitions(topic),
            EventLog::Kafka(l) => l.partitions(topic).await,
        }
    }

    /// `(earliest retained, next to be written)` offsets of a partition.
    pub async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        match self {
            EventLog::Embedded(l) => l.watermarks(topic, partition).await,
            EventLog::Kafka(l) => l.watermarks(topic, partition).await,
        }
    }

    /// Waits until everything produced so far is durable, then releases the backend.
    pub async fn close(&self) -> Result<()> {
        match self {
            EventLog::Embedded(l) => l.close().await,
            EventLog::Kafka(l) => l.close(Duration::from_secs(30)).await,
        }
    }

    /// The Kafka backend's disk spool, when one is configured.
    pub fn spool(&self) -> Option<&spool::Spool> {
        match self {
            EventLog::Embedded(_) => None,
            EventLog::Kafka(l) => l.spool(),
        }
    }
}

/// A member of a consumer group.
pub enum Consumer {
    Embedded(embedded::EmbeddedConsumer),
    Kafka(kafka::KafkaConsumer),
}

impl Consumer {
    /// Returns up to `max` records after the ones already polled, waiting up to `wait`
    /// for the first one. An empty batch means nothing arrived in time.
    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        let r = match self {
            Consumer::Embedded(c) => c.poll(max, wait).await,
            Consumer::Kafka(c) => c.poll(max, wait).await,
        };
        if let Ok(recs) = &r {
            for rec in recs {
                metrics::CONSUMED
                    .with_label_values(&[self.backend(), &rec.topic, self.group()])
                    .inc();
            }
        }
        r
    }

    /// Commits every record up to and including the given ones (per partition, the
    /// highest offset given): after a restart the group resumes after them.
    pub async fn commit(&mut self, records: &[Record]) -> Result<()> {
        let positions = next_offsets(
            records
                .iter()
                .map(|r| (r.topic.as_str(), r.partition, r.offset)),
        );
        self.commit_offsets(&positions).await
    }

    /// Commits `(topic, partition, next offset to read)` triples.
    pub async fn commit_offsets(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let r = match self {
            Consumer::Embedded(c) => c.commit(offsets).await,
            Consumer::Kafka(c) => c.commit(offsets).await,
        };
        let outcome = if r.is_ok() { "ok" } else { "error" };
        metrics::COMMITS
            .with_label_values(&[self.backend(), self.group(), outcome])
            .inc();
        r
    }

    /// Records written but not yet committed by this group, over its partitions.
    pub async fn lag(&self) -> Result<i64> {
        let lag = match self {
            Consumer::Embedded(c) => c.lag().await?,
            Consumer::Kafka(c) => c.lag().await?,
        };
        metrics::CONSUMER_LAG
            .with_label_values(&[self.backend(), self.group()])
            .set(lag);
        Ok(lag)
    }

    pub fn group(&self) -> &str {
        match self {
            Consumer::Embedded(c) => c.group(),
            Consumer::Kafka(c) => c.group(),
        }
    }

    fn backend(&self) -> &'static str {
        match self {
            Consumer::Embedded(_) => "embedded",
            Consumer::Kafka(_) => "kafka",
        }
    }
}

/// Per (topic, partition), the offset after the highest one given.
pub fn next_offsets<'a>(it: impl Iterator<Item = (&'a str, i32, i64)>) -> Vec<(String, i32, i64)> {
    let mut out: Vec<(String, i32, i64)> = Vec::new();
    for (t, p, o) in it {
        match out.iter_mut().find(|(ot, op, _)| ot == t && *op == p) {
            Some(e) => e.2 = e.2.max(o + 1),
            None => out.push((t.to_string(), p, o + 1)),
        }
    }
    out
}
