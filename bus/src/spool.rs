//! The Kafka backend's disk spool: bounded, durable buffering of published records while
//! the brokers are unavailable, and the background drain that hands them to Kafka once
//! the brokers are back.
//!
//! What this module owns:
//!
//! - **Storage** ([`Spool`]): one SQLite database, `<dir>/spool.db` (WAL,
//!   `synchronous=FULL`: an append returns after an fsync), one row per record, in append
//!   order. The folder is locked (`<dir>/spool.lock`) so one process, and one open log in
//!   a process, drains it. The size counted against `max_bytes` is the records' topic,
//!   key, value and headers plus [`RECORD_OVERHEAD_BYTES`] each; the file itself can be a
//!   little larger (SQLite pages) and shrinks when the spool empties.
//! - **Publishing** ([`Spooling::publish`], used by [`crate::EventLog::publish`] on the
//!   Kafka backend): while the spool is empty, records go to Kafka through a producer
//!   whose `message.timeout.ms` is `produce_timeout` (not idempotent, one request in
//!   flight per broker, so retries keep the order); what Kafka does not acknowledge in
//!   that time because it is unavailable (time-outs, transport failures, no leader, ...)
//!   is appended to the spool, and the publish succeeds: the records are durable locally.
//!   While the spool is not empty, every publish appends to it without trying Kafka, so a
//!   key's records reach Kafka in the order they were published. When a publish does not
//!   fit under `max_bytes`, nothing of it is spooled and it fails with
//!   [`BusError::Backpressure`] (`log_available` false while Kafka does not acknowledge,
//!   true while it does and the spool is still draining).
//! - **Draining** (a task per open log): reads the oldest records in chunks of at most
//!   [`DRAIN_CHUNK_BYTES`] / [`DRAIN_CHUNK_RECORDS`] (memory stays bounded whatever the
//!   spool holds), sends them in order through its own idempotent producer that never
//!   gives a record up (`message.timeout.ms=0`: it waits for the brokers), and removes a
//!   record only after Kafka acknowledged it. A spool left non-empty by a
//!   previous process is drained when the log opens. Delivery is at least once: a record
//!   Kafka acknowledged just before a crash, or one a publish sent that was in flight
//!   when its time ran out, can arrive twice; otherwise each arrives once. A record Kafka rejects for good (too
//!   large, unknown topic, ...) is removed with an error log and counted in
//!   `argus_bus_spool_dropped_records_total`, so it cannot block the spool.
//!
//! [`crate::EventLog::produce`] and [`crate::EventLog::produce_batch`] report where each
//! record landed in Kafka, so they never spool: they wait for Kafka as before.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, Producer as _};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::SpoolConfig;
use crate::{BusError, OutRecord, Result, kafka, metrics};

/// Counted per record on top of its topic, key, value and headers (row and index cost).
pub const RECORD_OVERHEAD_BYTES: u64 = 64;
/// Most bytes the drain reads from the spool at once.
pub const DRAIN_CHUNK_BYTES: u64 = 4 << 20;
/// Most records the drain reads from the spool at once.
pub const DRAIN_CHUNK_RECORDS: usize = 5_000;
/// The drain's first wait after Kafka did not acknowledge a chunk; doubles up to the max.
pub const DRAIN_BACKOFF_START: Duration = Duration::from_millis(200);
pub const DRAIN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a stopping drain still waits for the chunk it sent.
pub const DRAIN_STOP_GRACE: Duration = Duration::from_secs(5);
/// How long opening waits for another holder of the spool's lock to let go.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// A record read back from the spool.
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledRecord {
    /// Append order; the drain sends in this order.
    pub seq: i64,
    pub topic: String,
    pub record: OutRecord,
    /// What the record counts against `max_bytes`.
    pub bytes: u64,
}

/// The spool's storage. Cheap to clone.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    max_bytes: u64,
    retry_after: Duration,
    /// Committed plus reserved by appends in progress.
    bytes: AtomicU64,
    /// Committed.
    records: AtomicU64,
    /// Whether Kafka acknowledged the last thing sent to it.
    log_available: AtomicBool,
    appended: Notify,
    _lock: File,
}

/// Size a record counts against `max_bytes`.
pub fn record_bytes(topic: &str, r: &OutRecord) -> u64 {
    let headers: usize = r.headers.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
    (topic.len() + r.key.len() + r.value.len() + headers) as u64 + RECORD_OVERHEAD_BYTES
}

fn encode_headers(h: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in h {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

fn decode_headers(mut b: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    fn take<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let v = b.get(4..4 + n)?;
        *b = &b[4 + n..];
        Some(v)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let k = String::from_utf8(take(&mut b)?.to_vec()).ok()?;
        let v = take(&mut b)?.to_vec();
        out.push((k, v));
    }
    Some(out)
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`, waiting up to [`LOCK_WAIT`] for
    /// a previous holder of the folder to let go. Blocking.
    pub fn open(dir: &Path, max_bytes: u64, retry_after: Duration) -> Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("spool.lock"))?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(BusError::Embedded(format!(
                        "spool {} is in use by another event log",
                        dir.display()
                    )));
                }
                Err(TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        let path = dir.join("spool.db");
        let sql = |source| BusError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        // auto_vacuum must be set before the first table exists.
        conn.execute_batch(
            "PRAGMA auto_vacuum=INCREMENTAL;
             PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS records (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 topic TEXT NOT NULL,
                 key BLOB NOT NULL,
                 value BLOB NOT NULL,
                 headers BLOB NOT NULL,
                 bytes INTEGER NOT NULL
             );",
        )
        .map_err(sql)?;
        let (bytes, records): (i64, i64) = conn
            .query_row(
                "SELECT COALESCE(SUM(bytes), 0), COUNT(*) FROM records",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql)?;
        metrics::SPOOL_BYTES.set(bytes);
        metrics::SPOOL_RECORDS.set(records);
        if records > 0 {
            tracing::info!(spool = %path.display(), records, bytes, "kafka spool holds records from before; draining them");
        }
        Ok(Spool {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(conn),
                max_bytes,
                retry_after,
                bytes: AtomicU64::new(bytes as u64),
                records: AtomicU64::new(records as u64),
                log_available: AtomicBool::new(records == 0),
                appended: Notify::new(),
                _lock: lock,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes counted against `max_bytes` (including appends in progress).
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::SeqCst)
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// Records waiting for Kafka.
    pub fn records(&self) -> u64 {
        self.inner.records.load(Ordering::SeqCst)
    }

    pub fn is_empty(&self) -> bool {
        self.records() == 0
    }

    /// Whether Kafka acknowledged the last records sent to it.
    pub fn log_available(&self) -> bool {
        self.inner.log_available.load(Ordering::SeqCst)
    }

    pub(crate) fn set_log_available(&self, up: bool) {
        self.inner.log_available.store(up, Ordering::SeqCst);
    }

    fn sql_err(&self, source: rusqlite::Error) -> BusError {
        BusError::Sqlite {
            path: self.inner.path.display().to_string(),
            source,
        }
    }

    fn publish_gauges(&self) {
        metrics::SPOOL_BYTES.set(self.bytes() as i64);
        metrics::SPOOL_RECORDS.set(self.records() as i64);
    }

    /// Appends `(topic, record)`s in order, durably (fsync'd) and all or nothing. Fails
    /// with [`BusError::Backpressure`] when they do not fit under `max_bytes`.
    pub async fn append(&self, records: Vec<(String, OutRecord)>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let sizes: Vec<u64> = records.iter().map(|(t, r)| record_bytes(t, r)).collect();
        let need: u64 = sizes.iter().sum();
        let max = self.inner.max_bytes;
        let reserved = self
            .inner
            .bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                (cur + need <= max).then_some(cur + need)
            });
        if let Err(cur) = reserved {
            for (t, _) in &records {
                metrics::SPOOL_REFUSED.with_label_values(&[t]).inc();
            }
            return Err(BusError::Backpressure {
                spooled_bytes: cur,
                max_bytes: max,
                log_available: self.log_available(),
                retry_after: self.inner.retry_after,
            });
        }
        let this = self.clone();
        let r = tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
            let mut conn = this.inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            let tx = conn.transaction().map_err(|e| this.sql_err(e))?;
            let mut topics = Vec::with_capacity(records.len());
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO records (topic, key, value, headers, bytes)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(|e| this.sql_err(e))?;
                for ((t, r), n) in records.into_iter().zip(&sizes) {
                    st.execute(params![
                        t,
                        r.key,
                        r.value,
                        encode_headers(&r.headers),
                        *n as i64
                    ])
                    .map_err(|e| this.sql_err(e))?;
                    topics.push(t);
                }
            }
            tx.commit().map_err(|e| this.sql_err(e))?;
            this.inner
                .records
                .fetch_add(topics.len() as u64, Ordering::SeqCst);
            Ok(topics)
        })
        .await
        .map_err(|e| BusError::Embedded(format!("spool append task: {e}")))
        .and_then(|r| r);
        match r {
            Ok(topics) => {
                for t in &topics {
                    metrics::SPOOLED.with_label_values(&[t]).inc();
                }
                self.publish_gauges();
                self.inner.appended.notify_one();
                Ok(())
            }
            Err(e) => {
                self.inner.bytes.fetch_sub(need, Ordering::SeqCst);
                self.publish_gauges();
                Err(e)
            }
        }
    }

    /// The oldest records, in append order: at most `max_records`, and no more bytes than
    /// `max_bytes` (but at least one record when the spool is not empty).
    pub async fn read_chunk(
        &self,
        max_bytes: u64,
        max_records: usize,
    ) -> Result<Vec<SpooledRecord>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<SpooledRecord>> {
            let conn = this.inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            let mut st = conn
                .prepare_cached(
                    "SELECT seq, topic, key, value, headers, bytes FROM records
                     ORDER BY seq LIMIT ?1",
                )
                .map_err(|e| this.sql_err(e))?;
            let mut rows = st
                .query(params![max_records as i64])
                .map_err(|e| this.sql_err(e))?;
            let mut out = Vec::new();
            let mut total = 0u64;
            while let Some(row) = rows.next().map_err(|e| this.sql_err(e))? {
                let bytes: i64 = row.get(5).map_err(|e| this.sql_err(e))?;
                if !out.is_empty() && total + bytes as u64 > max_bytes {
                    break;
                }
                total += bytes as u64;
                let seq: i64 = row.get(0).map_err(|e| this.sql_err(e))?;
                let headers: Vec<u8> = row.get(4).map_err(|e| this.sql_err(e))?;
                let headers = decode_headers(&headers).ok_or_else(|| {
                    BusError::Embedded(format!(
                        "spool {}: record {seq} has malformed headers",
                        this.inner.path.display()
                    ))
                })?;
                out.push(SpooledRecord {
                    seq,
                    topic: row.get(1).map_err(|e| this.sql_err(e))?,
                    record: OutRecord {
                        key: row.get(2).map_err(|e| this.sql_err(e))?,
                        value: row.get(3).map_err(|e| this.sql_err(e))?,
                        headers,
                    },
                    bytes: bytes as u64,
                });
            }
            Ok(out)
        })
        .await
        .map_err(|e| BusError::Embedded(format!("spool read task: {e}")))?
    }

    /// Removes records by `(seq, bytes)`, durably. When the spool is empty afterwards,
    /// gives the file's free pages back.
    pub async fn remove(&self, done: Vec<(i64, u64)>) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut conn = this.inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            let tx = conn.transaction().map_err(|e| this.sql_err(e))?;
            let mut removed = (0u64, 0u64);
            {
                let mut st = tx
                    .prepare_cached("DELETE FROM records WHERE seq = ?1")
                    .map_err(|e| this.sql_err(e))?;
                for (seq, bytes) in &done {
                    if st.execute(params![seq]).map_err(|e| this.sql_err(e))? == 1 {
                        removed.0 += 1;
                        removed.1 += bytes;
                    }
                }
            }
            tx.commit().map_err(|e| this.sql_err(e))?;
            this.inner.records.fetch_sub(removed.0, Ordering::SeqCst);
            this.inner.bytes.fetch_sub(removed.1, Ordering::SeqCst);
            let left: Option<i64> = conn
                .query_row("SELECT seq FROM records LIMIT 1", [], |r| r.get(0))
                .optional()
                .map_err(|e| this.sql_err(e))?;
            if left.is_none() {
                // Best effort: an empty spool gives its disk space back.
                let _ = conn
                    .execute_batch("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);");
            }
            Ok(())
        })
        .await
        .map_err(|e| BusError::Embedded(format!("spool remove task: {e}")))??;
        self.publish_gauges();
        Ok(())
    }
}

/// A Kafka log's spool in use: storage, the short-timeout producer publishes try first,
/// and the drain task (which owns the drain producer).
pub(crate) struct Spooling {
    spool: Spool,
    direct: FutureProducer,
    drain: Mutex<Option<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Spooling {
    /// Opens the spool in `cfg.dir` and starts draining it through `drain`.
    pub(crate) async fn start(
        cfg: &SpoolConfig,
        direct: FutureProducer,
        drain: FutureProducer,
    ) -> Result<Spooling> {
        let (dir, max, retry) = (cfg.dir.clone(), cfg.max_bytes, cfg.retry_after);
        let spool = tokio::task::spawn_blocking(move || Spool::open(&dir, max, retry))
            .await
            .map_err(|e| BusError::Embedded(format!("spool open task: {e}")))??;
        let (stop, stop_rx) = watch::channel(false);
        let drain = tokio::spawn(drain_loop(spool.clone(), drain, stop_rx));
        Ok(Spooling {
            spool,
            direct,
            drain: Mutex::new(Some(drain)),
            stop,
        })
    }

    pub(crate) fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Writes `(topic, record)`s: to Kafka while the spool is empty and Kafka
    /// acknowledges in time, to the spool otherwise (see the module docs).
    pub(crate) async fn publish(&self, records: Vec<(String, OutRecord)>) -> Result<()> {
        if !self.spool.is_empty() {
            return self.spool.append(records).await;
        }
        let results =
            kafka::send_all(&self.direct, records.iter().map(|(t, r)| (t.as_str(), r))).await;
        let mut unacked = Vec::new();
        let mut hard = None;
        for ((topic, rec), res) in records.into_iter().zip(results) {
            match res {
                Ok(_) => metrics::PRODUCED
                    .with_label_values(&["kafka", &topic])
                    .inc(),
                Err(e) if kafka::broker_unavailable(&e) => unacked.push((topic, rec)),
                Err(e) => {
                    metrics::PRODUCE_ERRORS
                        .with_label_values(&["kafka", &topic])
                        .inc();
                    hard.get_or_insert(e);
                }
            }
        }
        if unacked.is_empty() {
            self.spool.set_log_available(true);
        } else {
            self.spool.set_log_available(false);
            tracing::warn!(
                records = unacked.len(),
                "kafka did not acknowledge in time; spooling to disk"
            );
            if let Err(e) = self.spool.append(unacked).await {
                return Err(hard.map(BusError::from).unwrap_or(e));
            }
        }
        match hard {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Stops the drain after the chunk it is sending (waiting at most
    /// [`DRAIN_STOP_GRACE`] for it), then waits up to `timeout` for what the direct
    /// producer still holds.
    pub(crate) async fn close(&self, timeout: Duration) -> Result<()> {
        let _ = self.stop.send(true);
        let handle = self.drain.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.await;
        }
        let p = self.direct.clone();
        tokio::task::spawn_blocking(move || p.flush(rdkafka::util::Timeout::After(timeout)))
            .await
            .map_err(|e| BusError::Embedded(e.to_string()))??;
        Ok(())
    }
}

impl Drop for Spooling {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Resolves once `stop` turns true (or its sender is gone), then after `grace`.
async fn stopped_then(mut stop: watch::Receiver<bool>, grace: Duration) {
    let _ = stop.wait_for(|s| *s).await;
    tokio::time::sleep(grace).await;
}

async fn drain_loop(spool: Spool, producer: FutureProducer, mut stop: watch::Receiver<bool>) {
    let mut backoff = DRAIN_BACKOFF_START;
    loop {
        if *stop.borrow() {
            return;
        }
        let chunk = match spool
            .read_chunk(DRAIN_CHUNK_BYTES, DRAIN_CHUNK_RECORDS)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "kafka spool: reading failed; retrying");
                if pause(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(DRAIN_BACKOFF_MAX);
                continue;
            }
        };
        if chunk.is_empty() {
            tokio::select! {
                _ = spool.inner.appended.notified() => {}
                r = stop.changed() => if r.is_err() { return },
            }
            continue;
        }
        let results = tokio::select! {
            r = kafka::send_all(&producer, chunk.iter().map(|r| (r.topic.as_str(), &r.record))) => r,
            _ = stopped_then(stop.clone(), DRAIN_STOP_GRACE) => {
                // Left in the spool for the next start. This task holds the only handle
                // on the drain producer: returning drops it, which purges what it still
                // queues, so those records do not reach Kafka as well.
                return;
            }
        };
        let mut done = Vec::with_capacity(chunk.len());
        let mut unacked = 0usize;
        for (rec, res) in chunk.iter().zip(results) {
            match res {
                Ok(_) => {
                    metrics::DRAINED.with_label_values(&[&rec.topic]).inc();
                    metrics::PRODUCED
                        .with_label_values(&["kafka", &rec.topic])
                        .inc();
                    done.push((rec.seq, rec.bytes));
                }
                Err(e) if kafka::broker_unavailable(&e) => unacked += 1,
                Err(e) => {
                    tracing::error!(topic = %rec.topic, seq = rec.seq, error = %e, "kafka spool: kafka rejected a spooled record for good; dropping it");
                    let reason = match &e {
                        rdkafka::error::KafkaError::MessageProduction(c) => format!("{c:?}"),
                        _ => "other".to_string(),
                    };
                    metrics::SPOOL_DROPPED
                        .with_label_values(&[&rec.topic, &reason])
                        .inc();
                    metrics::PRODUCE_ERRORS
                        .with_label_values(&["kafka", &rec.topic])
                        .inc();
                    done.push((rec.seq, rec.bytes));
                }
            }
        }
        if let Err(e) = spool.remove(done).await {
            tracing::error!(error = %e, "kafka spool: removing drained records failed; they may be sent again");
        }
        if unacked == 0 {
            spool.set_log_available(true);
            backoff = DRAIN_BACKOFF_START;
        } else {
            spool.set_log_available(false);
            tracing::warn!(
                unacked,
                left = spool.records(),
                "kafka spool: kafka did not acknowledge; retrying"
            );
            if pause(&mut stop, backoff).await {
                return;
            }
            backoff = (backoff * 2).min(DRAIN_BACKOFF_MAX);
        }
    }
}

/// Sleeps `d`; true when asked to stop meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::time::timeout(d, stop.wait_for(|s| *s)).await.is_ok();
    stopped || *stop.borrow()
}
