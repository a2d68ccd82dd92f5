//! The log writer: consumes log entries, node events and findings from the event log
//! and stores them, exactly once, in the log store.
//!
//! It reads `argus.logs`, `argus.node-events` and `argus.findings` as the consumer group
//! `argus-query-writer` (a [`TypedConsumer`]: records that do not decode go to the
//! dead-letter topic), maps each record to one [`WriteRow`] ([`to_row`]), and batches
//! rows by count, bytes and time. A batch is split into store writes that each hold one
//! day and, per source partition, one contiguous run of offsets, made in offset order
//! ([`plan::split_writes`]); after all of them succeed, the batch's offsets are
//! committed to the bus.
//!
//! Exactly once: at start the writer reads, per topic, the highest offset the store
//! holds per partition (`resume_offsets`) and skips every record at or below it
//! (`argus_query_writer_skipped_total{reason="already_stored"}`): those are the records
//! a crash between a store write and the bus commit delivers again. Because writes are
//! prefixes per partition, nothing above that offset is stored, so nothing is lost.
//! A failed store write is retried with backoff; before each retry the resume offsets
//! are read again and rows already stored (a write that succeeded but answered with an
//! error) are dropped.
//!
//! Mapping (tenant: the envelope's):
//! - `log_entry`: its labels, timestamp, line and structured metadata;
//! - `node_event`: labels `source="node-problem-detector"`, `node`, `monitor`, `reason`,
//!   `severity` (`info|warn|error`), `kind` (`temporary|permanent`), and `condition`
//!   (the condition type) when it has one; the line is the event as JSON (its wire
//!   form: `node`, `monitor`, `reason`, `message`, `severity`, `kind`, `condition`), so
//!   `| json` extracts `message`; the time is the envelope's `event_time`;
//! - `security_finding`: labels `source` (`falco|trivy|clair|other`), `kind`
//!   (`vulnerability|runtime|misconfiguration|secret`), `severity`
//!   (`UNKNOWN|LOW|MEDIUM|HIGH|CRITICAL`), `id`, `resource` (the resource kind), and when
//!   present `image`, `namespace`, `pod`, `container`, `node`, `package`; the line is the
//!   finding as JSON (every field); the time is the envelope's `event_time`.
//!
//! Other payload types on these topics are skipped (`reason="unsupported"`).
//!
//! Failpoint: with `ARGUS_FAILPOINT=query-writer-after-write` the process aborts right
//! after the first successful store write, before the commit (the crash test).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argus_bus::{BusError, Event, EventLog, TypedBatch, TypedConsumer};
use argus_schemas::duration::serde_duration;
use argus_schemas::{Labels, NodeEvent, Payload, SecurityFinding, topics};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{QueryError, Result};
use crate::metrics::{WRITE_DURATION, WRITER_ERRORS, WRITER_ROWS, WRITER_SKIPPED};
use crate::store::plan::split_writes;
use crate::store::{LogStore, SourcePos, WriteRow};

/// The writer's consumer group.
pub const GROUP: &str = "argus-query-writer";
/// The environment variable naming an active failpoint.
pub const FAILPOINT_ENV: &str = "ARGUS_FAILPOINT";
/// Abort after a successful store write, before the commit.
pub const FAILPOINT_AFTER_WRITE: &str = "query-writer-after-write";
/// The `source` label of node event streams.
pub const NODE_EVENT_SOURCE: &str = "node-problem-detector";

/// `query.writer` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WriterConfig {
    pub group: String,
    pub topics: Vec<String>,
    /// Rows per batch (and per store write) at most.
    pub max_batch_rows: usize,
    /// Line bytes per batch at most.
    pub max_batch_bytes: usize,
    /// How long rows wait for more before they are written.
    #[serde(with = "serde_duration")]
    pub max_batch_wait: Duration,
    /// Records per poll at most.
    pub poll_max: usize,
    /// Longest wait between retries of a failed store write.
    #[serde(with = "serde_duration")]
    pub max_retry_backoff: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            group: GROUP.into(),
            topics: vec![
                topics::LOGS.into(),
                topics::NODE_EVENTS.into(),
                topics::FINDINGS.into(),
            ],
            max_batch_rows: 10_000,
            max_batch_bytes: 8 << 20,
            max_batch_wait: Duration::from_secs(1),
            poll_max: 2_000,
            max_retry_backoff: Duration::from_secs(5),
        }
    }
}

/// The serde name of a unit enum variant (`"warn"`, `"CRITICAL"` …).
fn serde_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// Stream labels of a node event (see the module docs).
pub fn node_event_labels(e: &NodeEvent) -> Labels {
    let mut l = Labels::from_pairs([
        ("source", NODE_EVENT_SOURCE.to_string()),
        ("node", e.node.clone()),
        ("monitor", e.monitor.clone()),
        ("reason", e.reason.clone()),
        ("severity", serde_name(&e.severity)),
        ("kind", serde_name(&e.kind)),
    ]);
    if let Some(c) = &e.condition {
        l.insert("condition", c.condition_type.clone());
    }
    nonempty(l)
}

/// Stream labels of a security finding (see the module docs).
pub fn finding_labels(f: &SecurityFinding) -> Labels {
    let mut l = Labels::from_pairs([
        ("source", serde_name(&f.source)),
        ("kind", serde_name(&f.kind)),
        ("severity", serde_name(&f.severity)),
        ("id", f.id.clone()),
        ("resource", f.resource.kind.clone()),
    ]);
    let r = &f.resource;
    for (name, v) in [
        ("image", &r.image),
        ("namespace", &r.namespace),
        ("pod", &r.pod),
        ("container", &r.container),
        ("node", &r.node),
        ("package", &f.package),
    ] {
        if let Some(v) = v {
            l.insert(name, v.clone());
        }
    }
    nonempty(l)
}

/// Drops labels with empty values (an empty label is an absent label in LogQL).
fn nonempty(l: Labels) -> Labels {
    if l.iter().all(|(_, v)| !v.is_empty()) {
        return l;
    }
    Labels::from_pairs(l.iter().filter(|(_, v)| !v.is_empty()))
}

/// The row a record becomes; `None` for payloads that are not log streams.
pub fn to_row(ev: &Event) -> Option<WriteRow> {
    let env = &ev.envelope;
    let source = SourcePos {
        topic: ev.topic.clone(),
        partition: ev.partition,
        offset: ev.offset,
    };
    let (labels, ts, line, metadata) = match &env.payload {
        Payload::LogEntry(e) => (
            e.labels.clone(),
            e.timestamp.0,
            e.line.clone(),
            e.structured_metadata.clone(),
        ),
        Payload::NodeEvent(e) => (
            node_event_labels(e),
            env.event_time.0,
            serde_json::to_string(e).expect("node events serialize"),
            Labels::new(),
        ),
        Payload::SecurityFinding(f) => (
            finding_labels(f),
            env.event_time.0,
            serde_json::to_string(f).expect("findings serialize"),
            Labels::new(),
        ),
        _ => return None,
    };
    Some(WriteRow {
        tenant: env.tenant.clone(),
        labels,
        ts,
        line,
        metadata,
        source,
    })
}

/// Rows waiting to be written, and the offsets to commit once they are.
#[derive(Default)]
struct Pending {
    rows: Vec<WriteRow>,
    bytes: usize,
    /// (topic, partition, next offset)
    offsets: Vec<(String, i32, i64)>,
    since: Option<Instant>,
}

impl Pending {
    fn add_offsets(&mut self, offsets: &[(String, i32, i64)]) {
        for (t, p, o) in offsets {
            match self
                .offsets
                .iter_mut()
                .find(|(ot, op, _)| ot == t && op == p)
            {
                Some(e) => e.2 = e.2.max(*o),
                None => self.offsets.push((t.clone(), *p, *o)),
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.offsets.is_empty()
    }
}

/// The writer: one consumer group member and its resume offsets.
pub struct LogWriter {
    store: Arc<dyn LogStore>,
    cfg: WriterConfig,
    consumer: TypedConsumer,
    /// Highest stored offset per (topic, partition).
    resume: HashMap<(String, i32), i64>,
    failpoint: bool,
}

impl LogWriter {
    /// Joins the consumer group and reads the store's resume offsets.
    pub async fn new(log: &EventLog, store: Arc<dyn LogStore>, cfg: WriterConfig) -> Result<Self> {
        let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        let consumer = TypedConsumer::new(log, &cfg.group, &topics).await?;
        let mut resume = HashMap::new();
        for t in &cfg.topics {
            for (p, o) in store.resume_offsets(t).await? {
                resume.insert((t.clone(), p), o);
            }
        }
        let failpoint = std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == FAILPOINT_AFTER_WRITE);
        tracing::info!(
            group = %cfg.group, store = store.kind(), partitions = resume.len(),
            "log writer resumes after the stored offsets"
        );
        Ok(LogWriter {
            store,
            cfg,
            consumer,
            resume,
            failpoint,
        })
    }

    /// Runs until `shutdown` turns true (then writes what it holds and returns) or the
    /// event log closes.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let mut pending = Pending::default();
        let mut poll_backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow_and_update() {
                if !pending.is_empty() {
                    self.flush(&mut pending, &mut shutdown).await?;
                }
                return Ok(());
            }
            let wait = match pending.since {
                Some(t) => self.cfg.max_batch_wait.saturating_sub(t.elapsed()),
                None => self.cfg.max_batch_wait,
            }
            .min(Duration::from_millis(500));
            match self.consumer.poll(self.cfg.poll_max, wait).await {
                Ok(batch) => {
                    poll_backoff = Duration::from_millis(100);
                    self.take(batch, &mut pending);
                }
                Err(BusError::Closed) => return Err(QueryError::Bus(BusError::Closed)),
                Err(e) => {
                    tracing::warn!(error = %e, "log writer: poll failed; retrying");
                    tokio::time::sleep(poll_backoff).await;
                    poll_backoff = (poll_backoff * 2).min(self.cfg.max_retry_backoff);
                    continue;
                }
            }
            let due = pending
                .since
                .is_some_and(|t| t.elapsed() >= self.cfg.max_batch_wait);
            if pending.rows.len() >= self.cfg.max_batch_rows
                || pending.bytes >= self.cfg.max_batch_bytes
                || (due && !pending.is_empty())
            {
                self.flush(&mut pending, &mut shutdown).await?;
            }
        }
    }

    /// Adds a polled batch: skips what is stored already, maps the rest.
    fn take(&mut self, batch: TypedBatch, pending: &mut Pending) {
        if batch.offsets.is_empty() {
            return;
        }
        pending.since.get_or_insert_with(Instant::now);
        pending.add_offsets(&batch.offsets);
        for ev in batch.events {
            let stored = self
                .resume
                .get(&(ev.topic.clone(), ev.partition))
                .is_some_and(|&o| ev.offset <= o);
            if stored {
                WRITER_SKIPPED
                    .with_label_values(&[&ev.topic, "already_stored"])
                    .inc();
                continue;
            }
            match to_row(&ev) {
                Some(row) => {
                    pending.bytes += row.line.len();
                    pending.rows.push(row);
                }
                None => {
                    tracing::debug!(topic = %ev.topic, kind = ev.envelope.kind().as_str(),
                        "log writer: not a log stream; skipped");
                    WRITER_SKIPPED
                        .with_label_values(&[&ev.topic, "unsupported"])
                        .inc();
                }
            }
        }
    }

    /// Writes the pending rows, then commits their offsets. Returns early (nothing
    /// committed) when shut down while a write is being retried.
    async fn flush(
        &mut self,
        pending: &mut Pending,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let rows = std::mem::take(&mut pending.rows);
        pending.bytes = 0;
        for write in split_writes(rows, self.cfg.max_batch_rows) {
            if !self.write_with_retry(write, shutdown).await? {
                return Ok(());
            }
            if self.failpoint {
                tracing::error!("failpoint {FAILPOINT_AFTER_WRITE}: aborting");
                std::process::abort();
            }
        }
        let batch = TypedBatch {
            offsets: std::mem::take(&mut pending.offsets),
            ..Default::default()
        };
        if let Err(e) = self.consumer.commit(&batch).await {
            if matches!(e, BusError::Closed) {
                return Err(e.into());
            }
            // The rows are stored: a later commit covers these offsets, and what is
            // delivered again meanwhile is skipped by the resume offsets.
            tracing::warn!(error = %e, "log writer: commit failed; retried with the next batch");
            pending.add_offsets(&batch.offsets);
        }
        pending.since = None;
        Ok(())
    }

    /// One store write, retried until it succeeds (`Ok(true)`) or shutdown (`Ok(false)`).
    async fn write_with_retry(
        &mut self,
        mut rows: Vec<WriteRow>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool> {
        let kind = self.store.kind();
        let mut backoff = Duration::from_millis(100);
        loop {
            if rows.is_empty() {
                return Ok(true);
            }
            let t = Instant::now();
            match self.store.write(&rows).await {
                Ok(()) => {
                    WRITE_DURATION
                        .with_label_values(&[kind])
                        .observe(t.elapsed().as_secs_f64());
                    for r in &rows {
                        WRITER_ROWS.with_label_values(&[&r.source.topic]).inc();
                        let o = self
                            .resume
                            .entry((r.source.topic.clone(), r.source.partition))
                            .or_insert(r.source.offset);
                        *o = (*o).max(r.source.offset);
                    }
                    return Ok(true);
                }
                Err(e) => {
                    WRITER_ERRORS.with_label_values(&[kind]).inc();
                    tracing::warn!(error = %e, rows = rows.len(), store = kind,
                        "log writer: store write failed; retrying in {backoff:?}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return Ok(false);
            }
            backoff = (backoff * 2).min(self.cfg.max_retry_backoff);
            // The failed write may have stored a prefix (or all) of the rows.
            let mut topics: Vec<String> = rows.iter().map(|r| r.source.topic.clone()).collect();
            topics.sort();
            topics.dedup();
            let mut fresh = HashMap::new();
            let mut ok = true;
            for t in topics {
                match self.store.resume_offsets(&t).await {
                    Ok(m) => {
                        for (p, o) in m {
                            fresh.insert((t.clone(), p), o);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "log writer: resume offsets not readable");
                        ok = false;
                    }
                }
            }
            if ok {
                rows.retain(|r| {
                    let stored = fresh
                        .get(&(r.source.topic.clone(), r.source.partition))
                        .is_some_and(|&o| r.source.offset <= o);
                    if stored {
                        WRITER_ROWS.with_label_values(&[&r.source.topic]).inc();
                    }
                    !stored
                });
                for (k, o) in fresh {
                    let e = self.resume.entry(k).or_insert(o);
                    *e = (*e).max(o);
                }
            }
        }
    }
}

/// Runs the writer until `shutdown` turns true; see the module docs.
pub async fn run(
    log: EventLog,
    store: Arc<dyn LogStore>,
    cfg: WriterConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    LogWriter::new(&log, store, cfg).await?.run(shutdown).await
}
