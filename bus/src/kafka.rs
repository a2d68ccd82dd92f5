//! The Kafka backend, through rdkafka (librdkafka).
//!
//! Producer: idempotent (`enable.idempotence=true`, hence `acks=all` and ordered
//! retries), lz4-compressed by default, retrying until `message.timeout.ms` while the
//! broker is away. A produce future resolves when the broker acknowledged the record.
//!
//! Consumer: a group member with manual commits (`enable.auto.commit=false`) that
//! starts from the group's committed offsets (earliest where there are none).
//! librdkafka reconnects by itself when a broker comes back.
//!
//! Spool: with `spool` configured, [`KafkaLog::publish`] writes what the brokers do not
//! acknowledge within `produce_timeout` to a disk spool and drains it later (see
//! [`crate::spool`]); `produce_batch` does not spool.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::spool::{Spool, Spooling};
use crate::{BusError, OutRecord, Position, Record, Result, TopicSpec};

#[derive(Clone)]
pub struct KafkaLog {
    cfg: Arc<KafkaConfig>,
    producer: FutureProducer,
    spooling: Option<Arc<Spooling>>,
}

impl KafkaLog {
    /// The client config every producer, consumer and admin client starts from.
    pub fn client_config(cfg: &KafkaConfig) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", cfg.brokers.join(","))
            .set("client.id", &cfg.client_id)
            .set("broker.address.family", "v4")
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "2000");
        for (k, v) in &cfg.properties {
            c.set(k, v);
        }
        c
    }

    pub async fn connect(cfg: &KafkaConfig) -> Result<KafkaLog> {
        let mut pc = Self::client_config(cfg);
        pc.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", &cfg.compression)
            .set("linger.ms", "5")
            .set("message.timeout.ms", "300000");
        for (k, v) in &cfg.properties {
            pc.set(k, v);
        }
        let producer: FutureProducer = pc.create()?;
        let spooling = if cfg.spool.active() {
            // Publishes try Kafka through a producer whose records fail after
            // produce_timeout (and go to the spool). It is not idempotent: a record that
            // times out makes an idempotent producer bump its epoch, which some
            // Kafka-protocol brokers (tansu 0.6) do not support; one request in flight
            // keeps the order instead.
            let mut dc = Self::client_config(cfg);
            dc.set("enable.idempotence", "false")
                .set("acks", "all")
                .set("max.in.flight.requests.per.connection", "1")
                .set("compression.type", &cfg.compression)
                .set("linger.ms", "5");
            for (k, v) in &cfg.properties {
                dc.set(k, v);
            }
            dc.set(
                "message.timeout.ms",
                cfg.spool.produce_timeout.as_millis().max(1).to_string(),
            );
            let direct: FutureProducer = dc.create()?;
            // The drain sends through an idempotent producer that never gives a record
            // up (message.timeout.ms=0): it waits for the brokers however long they are
            // away, with no epoch bump and no duplicate from its own retries.
            pc.set("message.timeout.ms", "0");
            let drain: FutureProducer = pc.create()?;
            Some(Arc::new(Spooling::start(&cfg.spool, direct, drain).await?))
        } else {
            None
        };
        Ok(KafkaLog {
            cfg: Arc::new(cfg.clone()),
            producer,
            spooling,
        })
    }

    /// The disk spool, when one is configured.
    pub fn spool(&self) -> Option<&Spool> {
        self.spooling.as_deref().map(Spooling::spool)
    }

    /// Writes `(topic, record)`s, per topic in order; returns when they are durable: in
    /// Kafka, or (with a spool) in the spool. Without a spool, like `produce_batch` per
    /// topic.
    pub async fn publish(&self, records: Vec<(String, OutRecord)>) -> Result<()> {
        if let Some(s) = &self.spooling {
            return s.publish(records).await;
        }
        let results = send_all(&self.producer, records.iter().map(|(t, r)| (t.as_str(), r))).await;
        let mut first = None;
        for ((t, _), r) in records.iter().zip(results) {
            match r {
                Ok(_) => crate::metrics::PRODUCED
                    .with_label_values(&["kafka", t])
                    .inc(),
                Err(e) => {
                    crate::metrics::PRODUCE_ERRORS
                        .with_label_values(&["kafka", t])
                        .inc();
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    pub async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<()> {
        // Create only what the metadata does not show: some Kafka-protocol brokers
        // answer a CreateTopics for an existing topic slowly or not at all.
        let probe: BaseConsumer = Self::client_config(&self.cfg).create()?;
        let existing: Vec<String> =
            tokio::task::block_in_place(|| probe.fetch_metadata(None, Duration::from_secs(10)))?
                .topics()
                .iter()
                .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                .map(|t| t.name().to_string())
                .collect();
        let specs: Vec<TopicSpec> = specs
            .iter()
            .filter(|s| !existing.contains(&s.name))
            .cloned()
            .collect();
        if specs.is_empty() {
            return Ok(());
        }
        let specs = &specs[..];
        let admin: AdminClient<DefaultClientContext> = Self::client_config(&self.cfg).create()?;
        let configs: Vec<(String, String, Option<String>)> = specs
            .iter()
            .map(|s| {
                (
                    s.retention.as_millis().to_string(),
                    if s.compacted { "compact" } else { "delete" }.to_string(),
                    s.retention_bytes.map(|b| b.to_string()),
                )
            })
            .collect();
        let topics: Vec<NewTopic> = specs
            .iter()
            .zip(&configs)
            .map(|(s, (ms, policy, bytes))| {
                let mut t = NewTopic::new(
                    &s.name,
                    s.partitions,
                    TopicReplication::Fixed(self.cfg.replication_factor as i32),
                )
                .set("retention.ms", ms)
                .set("cleanup.policy", policy);
                if let Some(b) = bytes {
                    t = t.set("retention.bytes", b);
                }
                t
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin.create_topics(topics.iter(), &opts).await?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(BusError::CreateTopic {
                        topic,
                        message: code.to_string(),
                    });
                }
            }
        }
        // Wait until the metadata shows every topic, so the first produce finds it.
        for s in specs {
            let name = s.name.clone();
            let mut ok = false;
            for _ in 0..50 {
                let md = tokio::task::block_in_place(|| {
                    probe.fetch_metadata(Some(&name), Duration::from_secs(5))
                });
                if md.is_ok_and(|m| {
                    m.topics().iter().any(|t| {
                        t.name() == name && t.error().is_none() && !t.partitions().is_empty()
                    })
                }) {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !ok {
                return Err(BusError::CreateTopic {
                    topic: name,
                    message: "not visible in the metadata after creation".into(),
                });
            }
        }
        Ok(())
    }

    pub async fn produce_batch(
        &self,
        topic: &str,
        records: Vec<OutRecord>,
    ) -> Result<Vec<Position>> {
        let mut out = Vec::with_capacity(records.len());
        for r in send_all(&self.producer, records.iter().map(|r| (topic, r))).await {
            match r {
                Ok(p) => out.push(p),
                Err(KafkaError::Canceled) => return Err(BusError::Closed),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    pub fn consumer(&self, group: &str, topics: &[&str]) -> Result<KafkaConsumer> {
        let mut c = Self::client_config(&self.cfg);
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("enable.partition.eof", "false");
        let consumer: StreamConsumer = c.create()?;
        consumer.subscribe(topics)?;
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            group: group.to_string(),
        })
    }

    fn base_consumer(&self) -> Result<BaseConsumer> {
        let mut c = Self::client_config(&self.cfg);
        c.set("group.id", format!("{}-reader", self.cfg.client_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true");
        Ok(c.create()?)
    }

    pub async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Record>> {
        let (low, high) = self.watermarks(topic, partition).await?;
        let start = offset.max(low);
        if start >= high || max == 0 {
            return Ok(Vec::new());
        }
        let c = self.base_consumer()?;
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || -> Result<Vec<Record>> {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, partition, Offset::Offset(start))?;
            c.assign(&tpl)?;
            let mut out = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while out.len() < max && std::time::Instant::now() < deadline {
                match c.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        let done = m.offset() + 1 >= high;
                        out.push(to_record(&m));
                        if done {
                            break;
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => break,
                    Some(Err(e)) => return Err(e.into()),
                    None => {}
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| BusError::Embedded(e.to_string()))?
    }

    pub async fn partitions(&self, topic: &str) -> Result<i32> {
        let c = self.base_consumer()?;
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let md = c.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            md.topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len() as i32)
                .ok_or(BusError::UnknownTopic(topic))
        })
        .await
        .map_err(|e| BusError::Embedded(e.to_string()))?
    }

    pub async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        let c = self.base_consumer()?;
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            Ok(c.fetch_watermarks(&topic, partition, Duration::from_secs(10))?)
        })
        .await
        .map_err(|e| BusError::Embedded(e.to_string()))?
    }

    /// Stops the spool's drain (the spool keeps what Kafka has not acknowledged), then
    /// waits up to `timeout` for what the producers hold.
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        if let Some(s) = &self.spooling {
            s.close(timeout).await?;
        }
        self.flush(timeout).await
    }

    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || p.flush(Timeout::After(timeout)))
            .await
            .map_err(|e| BusError::Embedded(e.to_string()))??;
        Ok(())
    }
}

/// Queues every `(topic, record)` in order, then waits for each acknowledgement (one
/// round trip per batch); one result per record, in order. A record librdkafka refuses to
/// queue gets that error and does not stop the others.
pub(crate) async fn send_all<'a>(
    producer: &FutureProducer,
    records: impl Iterator<Item = (&'a str, &'a OutRecord)>,
) -> Vec<Result<Position, KafkaError>> {
    let mut futs = Vec::new();
    for (topic, r) in records {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_slice()),
            });
        }
        let rec = FutureRecord::to(topic)
            .key(&r.key)
            .payload(&r.value)
            .headers(headers);
        let fut = loop {
            match producer.send_result(rec_clone(&rec)) {
                Ok(f) => break Ok(f),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => break Err(e),
            }
        };
        futs.push(fut);
    }
    let mut out = Vec::with_capacity(futs.len());
    for f in futs {
        out.push(match f {
            Err(e) => Err(e),
            Ok(f) => match f.await {
                Ok(Ok(d)) => Ok(Position {
                    partition: d.partition,
                    offset: d.offset,
                }),
                Ok(Err((e, _))) => Err(e),
                Err(_) => Err(KafkaError::Canceled),
            },
        });
    }
    out
}

/// Whether a produce error means the brokers did not take the record *now* (time-out,
/// transport, no leader, ...), as opposed to a record or request they will never take
/// (too large, unknown topic, not authorized, ...). The former are spooled and retried.
pub(crate) fn broker_unavailable(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match e {
        KafkaError::MessageProduction(code) => !matches!(
            code,
            C::BadMessage
                | C::BadCompression
                | C::UnknownPartition
                | C::UnknownTopic
                | C::InvalidArgument
                | C::KeySerialization
                | C::ValueSerialization
                | C::InvalidMessage
                | C::InvalidMessageSize
                | C::MessageSizeTooLarge
                | C::MessageBatchTooLarge
                | C::InvalidTopic
                | C::InvalidRequiredAcks
                | C::TopicAuthorizationFailed
                | C::UnsupportedForMessageFormat
                | C::PolicyViolation
                | C::InvalidRecord
        ),
        _ => true,
    }
}

fn rec_clone<'a>(r: &FutureRecord<'a, Vec<u8>, Vec<u8>>) -> FutureRecord<'a, Vec<u8>, Vec<u8>> {
    let mut n = FutureRecord::to(r.topic);
    if let Some(k) = r.key {
        n = n.key(k);
    }
    if let Some(p) = r.payload {
        n = n.payload(p);
    }
    if let Some(h) = &r.headers {
        n = n.headers(h.clone());
    }
    n
}

fn to_record<M: Message>(m: &M) -> Record {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
        value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
        timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
    }
}

/// A member of a Kafka consumer group.
pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer>,
    group: String,
}

impl KafkaConsumer {
    pub fn group(&self) -> &str {
        &self.group
    }

    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let first = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(out),
            Ok(r) => r,
        };
        match first {
            Ok(m) => out.push(to_record(&m)),
            Err(e) => return Err(e.into()),
        }
        while out.len() < max {
            match tokio::time::timeout(Duration::from_millis(2), self.consumer.recv()).await {
                Ok(Ok(m)) => out.push(to_record(&m)),
                Ok(Err(e)) => {
                    tracing::warn!(group = %self.group, error = %e, "kafka consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }

    pub async fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
        }
        let c = self.consumer.clone();
        tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| BusError::Embedded(e.to_string()))??;
        Ok(())
    }

    pub async fn lag(&self) -> Result<i64> {
        let c = self.consumer.clone();
        tokio::task::spawn_blocking(move || -> Result<i64> {
            let assignment = c.assignment()?;
            let committed = c.committed_offsets(assignment, Duration::from_secs(10))?;
            let mut lag = 0;
            for e in committed.elements() {
                let (_, high) =
                    c.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))?;
                let at = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                };
                lag += (high - at).max(0);
            }
            Ok(lag)
        })
        .await
        .map_err(|e| BusError::Embedded(e.to_string()))?
    }
}
