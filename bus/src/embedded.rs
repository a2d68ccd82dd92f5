//! The embedded log: a durable, partitioned log in one SQLite database, no server.
//!
//! Why SQLite (through rusqlite, bundled): it is the most tested embedded storage
//! engine there is, its WAL mode gives atomic, durable commits with concurrent readers,
//! and a crash at any point leaves the last committed transaction intact. The log is
//! a table keyed by (topic, partition, offset); offsets and group commits are rows in
//! the same database, so one transaction makes records and offsets durable together.
//!
//! Writes go through one writer thread that groups concurrent requests into one
//! transaction (group commit): one fsync acknowledges many producers. A producer's
//! future resolves only after that transaction commits, so an acknowledged record
//! survives `kill -9` (and, with `sync: full`, a power loss).
//!
//! Retention runs in the writer thread: records older than the topic's retention, and
//! the oldest records of a topic over its byte limit, are deleted and their pages
//! returned to the file system (`auto_vacuum = INCREMENTAL`). Compacted topics keep the
//! newest record per key. Offsets never go back, even when a partition is emptied.
//!
//! Consumer groups: within one process a group has one member, which reads every
//! partition of its topics (the embedded log serves one process).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

use crate::config::{EmbeddedConfig, SyncMode};
use crate::{BusError, OutRecord, Position, Record, Result, TopicSpec, metrics};

/// Records in one write transaction at most.
const MAX_BATCH_RECORDS: usize = 20_000;
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(10);
/// Records deleted per retention step.
const RETENTION_CHUNK: i64 = 5_000;

#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    topics: RwLock<HashMap<String, TopicMeta>>,
    /// Next offset per (topic id, partition), as committed.
    next: RwLock<HashMap<(i64, i32), i64>>,
    changed: watch::Sender<u64>,
    groups: Mutex<HashSet<String>>,
    reader: Mutex<Connection>,
}

#[derive(Debug, Clone)]
struct TopicMeta {
    id: i64,
    partitions: i32,
}

enum Cmd {
    Produce {
        topic: String,
        records: Vec<OutRecord>,
        reply: oneshot::Sender<Result<Vec<Position>>>,
    },
    Commit {
        group: String,
        offsets: Vec<(i64, i32, i64)>,
        reply: oneshot::Sender<Result<()>>,
    },
    EnsureTopics {
        specs: Vec<TopicSpec>,
        reply: oneshot::Sender<Result<()>>,
    },
    Retention {
        reply: oneshot::Sender<Result<()>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> BusError + '_ {
    move |source| BusError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

fn open_conn(path: &Path, sync: SyncMode) -> Result<Connection> {
    let e = sql_err(path);
    let conn = Connection::open(path).map_err(&e)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(&e)?;
    // auto_vacuum only takes effect before the first table is created.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(&e)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&e)?;
    let sync = match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync).map_err(&e)?;
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS topics(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    partitions INTEGER NOT NULL,
    retention_ms INTEGER NOT NULL,
    retention_bytes INTEGER,
    compacted INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS partitions(
    topic INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY(topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records(
    id INTEGER PRIMARY KEY,
    topic INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    headers BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS records_position ON records(topic, partition, offset);
CREATE TABLE IF NOT EXISTS group_offsets(
    grp TEXT NOT NULL,
    topic INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY(grp, topic, partition)
) WITHOUT ROWID;
";

impl EmbeddedLog {
    /// Opens (or creates) the log in `cfg.dir`.
    pub async fn open(cfg: &EmbeddedConfig) -> Result<EmbeddedLog> {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&cfg))
            .await
            .map_err(|e| BusError::Embedded(format!("open task failed: {e}")))?
    }

    fn open_blocking(cfg: &EmbeddedConfig) -> Result<EmbeddedLog> {
        if cfg.dir.as_os_str().is_empty() {
            return Err(BusError::Embedded("no directory configured".into()));
        }
        std::fs::create_dir_all(&cfg.dir)?;
        let path = cfg.dir.join("log.sqlite3");
        let mut conn = open_conn(&path, cfg.sync)?;
        let e = sql_err(&path);
        conn.execute_batch(SCHEMA).map_err(&e)?;
        let mut topics = HashMap::new();
        let mut next = HashMap::new();
        {
            let mut st = conn
                .prepare("SELECT id, name, partitions FROM topics")
                .map_err(&e)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i32>(2)?,
                    ))
                })
                .map_err(&e)?;
            for row in rows {
                let (id, name, partitions) = row.map_err(&e)?;
                topics.insert(name, TopicMeta { id, partitions });
            }
            let mut st = conn
                .prepare("SELECT topic, partition, next_offset FROM partitions")
                .map_err(&e)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i32>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(&e)?;
            for row in rows {
                let (t, p, o) = row.map_err(&e)?;
                next.insert((t, p), o);
            }
        }
        let reader = open_conn(&path, cfg.sync)?;
        let (tx, rx) = mpsc::channel();
        let (changed, _) = watch::channel(0u64);
        let inner = Arc::new(Inner {
            path: path.clone(),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(None),
            topics: RwLock::new(topics),
            next: RwLock::new(next),
            changed,
            groups: Mutex::new(HashSet::new()),
            reader: Mutex::new(reader),
        });
        // The writer holds a weak reference so that dropping every handle stops it.
        let weak = Arc::downgrade(&inner);
        let path = path.clone();
        let handle = std::thread::Builder::new()
            .name("argus-log-writer".into())
            .spawn(move || {
                let _ = conn.execute_batch("PRAGMA optimize");
                writer_loop(&mut conn, rx, weak, path)
            })?;
        *inner.writer.lock().expect("lock") = Some(handle);
        Ok(EmbeddedLog { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Cmd) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        {
            let guard = self.inner.tx.lock().expect("lock");
            let tx = guard.as_ref().ok_or(BusError::Closed)?;
            tx.send(make(reply)).map_err(|_| BusError::Closed)?;
        }
        rx.await.map_err(|_| BusError::Closed)?
    }

    pub async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<()> {
        let specs = specs.to_vec();
        self.call(|reply| Cmd::EnsureTopics { specs, reply }).await
    }

    pub async fn produce_batch(
        &self,
        topic: &str,
        records: Vec<OutRecord>,
    ) -> Result<Vec<Position>> {
        if !self.inner.topics.read().expect("lock").contains_key(topic) {
            return Err(BusError::UnknownTopic(topic.to_string()));
        }
        let topic = topic.to_string();
        self.call(|reply| Cmd::Produce {
            topic,
            records,
            reply,
        })
        .await
    }

    fn topic(&self, name: &str) -> Result<TopicMeta> {
        self.inner
            .topics
            .read()
            .expect("lock")
            .get(name)
            .cloned()
            .ok_or_else(|| BusError::UnknownTopic(name.to_string()))
    }

    pub fn partitions(&self, topic: &str) -> Result<i32> {
        Ok(self.topic(topic)?.partitions)
    }

    pub async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Record>> {
        let meta = self.topic(topic)?;
        let inner = self.inner.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = inner.reader.lock().expect("lock");
            fetch(&conn, &inner.path, &topic, meta.id, partition, offset, max)
        })
        .await
        .map_err(|e| BusError::Embedded(e.to_string()))?
    }

    pub async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        let meta = self.topic(topic)?;
        let next = self.next_offset(meta.id, partition);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.reader.lock().expect("lock");
            let low: Option<i64> = conn
                .query_row(
                    "SELECT MIN(offset) FROM records WHERE topic = ?1 AND partition = ?2",
                    params![meta.id, partition],
                    |r| r.get(0),
                )
                .map_err(sql_err(&inner.path))?;
            Ok((low.unwrap_or(next), next))
        })
        .await
        .map_err(|e| BusError::Embedded(e.to_string()))?
    }

    fn next_offset(&self, topic: i64, partition: i32) -> i64 {
        *self
            .inner
            .next
            .read()
            .expect("lock")
            .get(&(topic, partition))
            .unwrap_or(&0)
    }

    pub async fn consumer(&self, group: &str, topics: &[&str]) -> Result<EmbeddedConsumer> {
        let mut assigned = Vec::new();
        for t in topics {
            let meta = self.topic(t)?;
            for p in 0..meta.partitions {
                assigned.push(Assigned {
                    topic: t.to_string(),
                    topic_id: meta.id,
                    partition: p,
                    position: 0,
                    committed: 0,
                });
            }
        }
        if !self
            .inner
            .groups
            .lock()
            .expect("lock")
            .insert(group.to_string())
        {
            return Err(BusError::GroupBusy(group.to_string()));
        }
        let guard = GroupGuard {
            log: self.clone(),
            group: group.to_string(),
        };
        let path = self.inner.path.clone();
        let g = group.to_string();
        let (conn, assigned) = tokio::task::spawn_blocking(move || -> Result<_> {
            let conn = Connection::open(&path).map_err(sql_err(&path))?;
            conn.busy_timeout(Duration::from_secs(30)).map_err(sql_err(&path))?;
            let mut assigned = assigned;
            {
                let mut st = conn
                    .prepare("SELECT next_offset FROM group_offsets WHERE grp = ?1 AND topic = ?2 AND partition = ?3")
                    .map_err(sql_err(&path))?;
                for a in &mut assigned {
                    let o: Option<i64> = st
                        .query_row(params![g, a.topic_id, a.partition], |r| r.get(0))
                        .optional()
                        .map_err(sql_err(&path))?;
                    a.position = o.unwrap_or(0);
                    a.committed = a.position;
                }
            }
            Ok((conn, assigned))
        })
        .await
        .map_err(|e| BusError::Embedded(e.to_string()))??;
        Ok(EmbeddedConsumer {
            log: self.clone(),
            group: guard,
            conn: Arc::new(Mutex::new(conn)),
            assigned,
            changed: self.inner.changed.subscribe(),
            next_start: 0,
        })
    }

    /// Applies the retention limits now instead of at the next periodic pass.
    pub async fn enforce_retention(&self) -> Result<()> {
        self.call(|reply| Cmd::Retention { reply }).await
    }

    /// Bytes the database uses on disk (main file and write-ahead log).
    pub fn disk_bytes(&self) -> u64 {
        let wal = self.inner.path.with_extension("sqlite3-wal");
        [self.inner.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Makes everything acknowledged durable and stops the writer. Later calls fail
    /// with [`BusError::Closed`].
    pub async fn close(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        let sent = {
            let mut guard = self.inner.tx.lock().expect("lock");
            match guard.take() {
                Some(tx) => tx.send(Cmd::Shutdown { reply }).is_ok(),
                None => false,
            }
        };
        if sent {
            let _ = rx.await;
        }
        let handle = self.inner.writer.lock().expect("lock").take();
        if let Some(h) = handle {
            tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| BusError::Embedded(e.to_string()))?
                .map_err(|_| BusError::Embedded("writer thread panicked".into()))?;
        }
        Ok(())
    }
}

struct GroupGuard {
    log: EmbeddedLog,
    group: String,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.log
            .inner
            .groups
            .lock()
            .expect("lock")
            .remove(&self.group);
    }
}

struct Assigned {
    topic: String,
    topic_id: i64,
    partition: i32,
    position: i64,
    committed: i64,
}

/// The one member of a consumer group on the embedded log.
pub struct EmbeddedConsumer {
    log: EmbeddedLog,
    group: GroupGuard,
    conn: Arc<Mutex<Connection>>,
    assigned: Vec<Assigned>,
    changed: watch::Receiver<u64>,
    next_start: usize,
}

impl EmbeddedConsumer {
    pub fn group(&self) -> &str {
        &self.group.group
    }

    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.changed.borrow_and_update();
            let out = self.fetch_once(max).await?;
            if !out.is_empty() {
                return Ok(out);
            }
            match tokio::time::timeout_at(deadline, self.changed.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(BusError::Closed),
                Err(_) => return Ok(Vec::new()),
            }
        }
    }

    async fn fetch_once(&mut self, max: usize) -> Result<Vec<Record>> {
        let n = self.assigned.len();
        if n == 0 || max == 0 {
            return Ok(Vec::new());
        }
        // Only partitions with something new, starting after the last one served.
        let wanted: Vec<(usize, String, i64, i32, i64, i64)> = (0..n)
            .map(|i| (self.next_start + i) % n)
            .filter_map(|i| {
                let a = &self.assigned[i];
                let next = self.log.next_offset(a.topic_id, a.partition);
                (next > a.position).then(|| {
                    (
                        i,
                        a.topic.clone(),
                        a.topic_id,
                        a.partition,
                        a.position,
                        next,
                    )
                })
            })
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.next_start = (self.next_start + 1) % n;
        let conn = self.conn.clone();
        let path = self.log.inner.path.clone();
        type Fetched = Vec<(usize, i64, Vec<Record>)>;
        let got = tokio::task::spawn_blocking(move || -> Result<Fetched> {
            let conn = conn.lock().expect("lock");
            let mut left = max;
            let mut got = Vec::new();
            for (i, topic, id, p, pos, next) in wanted {
                if left == 0 {
                    break;
                }
                let recs = fetch(&conn, &path, &topic, id, p, pos, left)?;
                left -= recs.len();
                got.push((i, next, recs));
            }
            Ok(got)
        })
        .await
        .map_err(|e| BusError::Embedded(e.to_string()))??;
        let mut out = Vec::new();
        for (i, next, recs) in got {
            match recs.last() {
                Some(last) => self.assigned[i].position = last.offset + 1,
                // `next` was read before the query, whose snapshot holds every record
                // below it: nothing there means retention removed them; skip the gap.
                None => self.assigned[i].position = self.assigned[i].position.max(next),
            }
            out.extend(recs);
        }
        Ok(out)
    }

    pub async fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        let mut ids = Vec::with_capacity(offsets.len());
        for (t, p, o) in offsets {
            ids.push((self.log.topic(t)?.id, *p, *o));
        }
        let group = self.group.group.clone();
        let sent = ids.clone();
        self.log
            .call(|reply| Cmd::Commit {
                group,
                offsets: sent,
                reply,
            })
            .await?;
        for (id, p, o) in ids {
            if let Some(a) = self
                .assigned
                .iter_mut()
                .find(|a| a.topic_id == id && a.partition == p)
            {
                a.committed = o;
            }
        }
        Ok(())
    }

    pub async fn lag(&self) -> Result<i64> {
        Ok(self
            .assigned
            .iter()
            .map(|a| (self.log.next_offset(a.topic_id, a.partition) - a.committed).max(0))
            .sum())
    }
}

fn fetch(
    conn: &Connection,
    path: &Path,
    topic: &str,
    topic_id: i64,
    partition: i32,
    offset: i64,
    max: usize,
) -> Result<Vec<Record>> {
    let e = sql_err(path);
    let mut st = conn
        .prepare_cached(
            "SELECT offset, ts, key, value, headers FROM records
             WHERE topic = ?1 AND partition = ?2 AND offset >= ?3 ORDER BY offset LIMIT ?4",
        )
        .map_err(&e)?;
    let rows = st
        .query_map(params![topic_id, partition, offset, max as i64], |r| {
            Ok(Record {
                topic: topic.to_string(),
                partition,
                offset: r.get(0)?,
                timestamp_ms: r.get(1)?,
                key: r.get(2)?,
                value: r.get(3)?,
                headers: decode_headers(r.get::<_, Option<Vec<u8>>>(4)?.as_deref()),
            })
        })
        .map_err(&e)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(e)
}

fn encode_headers(h: &[(String, Vec<u8>)]) -> Option<Vec<u8>> {
    if h.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for (n, v) in h {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    Some(out)
}

fn decode_headers(b: Option<&[u8]>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Some(mut b) = b else { return out };
    let take = |b: &mut &[u8]| -> Option<Vec<u8>> {
        let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let v = b.get(4..4 + len)?.to_vec();
        *b = &b[4 + len..];
        Some(v)
    };
    while !b.is_empty() {
        let (Some(n), Some(v)) = (take(&mut b), take(&mut b)) else {
            break;
        };
        out.push((String::from_utf8_lossy(&n).into_owned(), v));
    }
    out
}

fn pick_partition(key: &[u8], partitions: i32, counter: &mut u64) -> i32 {
    if partitions <= 1 {
        return 0;
    }
    if key.is_empty() {
        *counter += 1;
        return (*counter % partitions as u64) as i32;
    }
    (xxhash_rust::xxh3::xxh3_64(key) % partitions as u64) as i32
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct RetentionState {
    last: Instant,
    /// Bytes of key + value per topic id.
    bytes: HashMap<i64, i64>,
}

fn writer_loop(
    conn: &mut Connection,
    rx: mpsc::Receiver<Cmd>,
    inner: std::sync::Weak<Inner>,
    path: PathBuf,
) {
    let mut rr_counter = 0u64;
    let mut retention = RetentionState {
        last: Instant::now(),
        bytes: initial_bytes(conn).unwrap_or_default(),
    };
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(c) => c,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(inner) = inner.upgrade() {
                    maybe_retention(conn, &inner, &mut retention, &path);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut cmds = vec![first];
        let mut count = cmds[0].records();
        while count < MAX_BATCH_RECORDS {
            match rx.try_recv() {
                Ok(c) => {
                    count += c.records();
                    cmds.push(c);
                }
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        // Retention requests run outside the write transaction.
        let (retention_now, cmds): (Vec<Cmd>, Vec<Cmd>) = cmds
            .into_iter()
            .partition(|c| matches!(c, Cmd::Retention { .. }));
        for c in retention_now {
            if let Cmd::Retention { reply } = c {
                let r = run_retention(conn, &inner, &mut retention).map_err(sql_err(&path));
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
                let _ = reply.send(r);
            }
        }
        let shutdown = apply(conn, &inner, cmds, &mut rr_counter, &mut retention, &path);
        if shutdown {
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
            return;
        }
        maybe_retention(conn, &inner, &mut retention, &path);
    }
}

impl Cmd {
    fn records(&self) -> usize {
        match self {
            Cmd::Produce { records, .. } => records.len(),
            _ => 1,
        }
    }
}

enum Reply {
    Produce(
        oneshot::Sender<Result<Vec<Position>>>,
        Result<Vec<Position>>,
    ),
    Unit(oneshot::Sender<Result<()>>, Result<()>),
}

/// Applies a group of commands in one transaction and answers them. Returns whether a
/// shutdown was asked for.
fn apply(
    conn: &mut Connection,
    inner: &Inner,
    cmds: Vec<Cmd>,
    rr: &mut u64,
    retention: &mut RetentionState,
    path: &Path,
) -> bool {
    let e = sql_err(path);
    let mut shutdown = Vec::new();
    let mut replies: Vec<Reply> = Vec::new();
    let mut next = inner.next.read().expect("lock").clone();
    let mut new_topics: Vec<(String, TopicMeta)> = Vec::new();
    let mut added_bytes: HashMap<i64, i64> = HashMap::new();
    let now = now_ms();
    let result = (|| -> Result<()> {
        let tx = conn.transaction().map_err(&e)?;
        for cmd in cmds {
            match cmd {
                Cmd::Shutdown { reply } => shutdown.push(reply),
                Cmd::Retention { .. } => unreachable!("retention requests are taken out before"),
                Cmd::EnsureTopics { specs, reply } => {
                    let r = ensure_topics_tx(&tx, inner, &specs, &mut new_topics, &mut next)
                        .map_err(&e);
                    replies.push(Reply::Unit(reply, r));
                }
                Cmd::Commit {
                    group,
                    offsets,
                    reply,
                } => {
                    let mut st = tx
                        .prepare_cached(
                            "INSERT INTO group_offsets(grp, topic, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT(grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                        )
                        .map_err(&e)?;
                    for (t, p, o) in &offsets {
                        st.execute(params![group, t, p, o]).map_err(&e)?;
                    }
                    replies.push(Reply::Unit(reply, Ok(())));
                }
                Cmd::Produce {
                    topic,
                    records,
                    reply,
                } => {
                    let meta = inner.topics.read().expect("lock").get(&topic).cloned();
                    let Some(meta) = meta else {
                        replies.push(Reply::Produce(reply, Err(BusError::UnknownTopic(topic))));
                        continue;
                    };
                    let mut st = tx
                        .prepare_cached(
                            "INSERT INTO records(topic, partition, offset, ts, key, value, headers)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )
                        .map_err(&e)?;
                    let mut positions = Vec::with_capacity(records.len());
                    for r in records {
                        let p = pick_partition(&r.key, meta.partitions, rr);
                        let o = next.entry((meta.id, p)).or_insert(0);
                        st.execute(params![
                            meta.id,
                            p,
                            *o,
                            now,
                            r.key,
                            r.value,
                            encode_headers(&r.headers)
                        ])
                        .map_err(&e)?;
                        *added_bytes.entry(meta.id).or_insert(0) +=
                            (r.key.len() + r.value.len()) as i64;
                        positions.push(Position {
                            partition: p,
                            offset: *o,
                        });
                        *o += 1;
                    }
                    replies.push(Reply::Produce(reply, Ok(positions)));
                }
            }
        }
        {
            let old = inner.next.read().expect("lock");
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO partitions(topic, partition, next_offset) VALUES (?1, ?2, ?3)
                     ON CONFLICT(topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                )
                .map_err(&e)?;
            for ((t, p), o) in &next {
                if old.get(&(*t, *p)) != Some(o) {
                    st.execute(params![t, p, o]).map_err(&e)?;
                }
            }
        }
        tx.commit().map_err(&e)?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            inner.topics.write().expect("lock").extend(new_topics);
            *inner.next.write().expect("lock") = next;
            for (t, b) in added_bytes {
                *retention.bytes.entry(t).or_insert(0) += b;
            }
            inner.changed.send_modify(|v| *v += 1);
            for r in replies {
                match r {
                    Reply::Produce(tx, v) => {
                        let _ = tx.send(v);
                    }
                    Reply::Unit(tx, v) => {
                        let _ = tx.send(v);
                    }
                }
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "embedded log write failed; nothing of this batch was acknowledged");
            let msg = err.to_string();
            for r in replies {
                match r {
                    Reply::Produce(tx, _) => {
                        let _ = tx.send(Err(BusError::Embedded(msg.clone())));
                    }
                    Reply::Unit(tx, _) => {
                        let _ = tx.send(Err(BusError::Embedded(msg.clone())));
                    }
                }
            }
        }
    }
    let stop = !shutdown.is_empty();
    for s in shutdown {
        let _ = s.send(());
    }
    stop
}

fn ensure_topics_tx(
    tx: &rusqlite::Transaction,
    inner: &Inner,
    specs: &[TopicSpec],
    new_topics: &mut Vec<(String, TopicMeta)>,
    next: &mut HashMap<(i64, i32), i64>,
) -> rusqlite::Result<()> {
    for s in specs {
        let existing = inner.topics.read().expect("lock").contains_key(&s.name);
        if existing || new_topics.iter().any(|(n, _)| *n == s.name) {
            // Retention settings follow the config; partitions stay as created.
            tx.execute(
                "UPDATE topics SET retention_ms = ?2, retention_bytes = ?3, compacted = ?4 WHERE name = ?1",
                params![s.name, s.retention.as_millis() as i64, s.retention_bytes.map(|b| b as i64), s.compacted],
            )?;
            continue;
        }
        tx.execute(
            "INSERT INTO topics(name, partitions, retention_ms, retention_bytes, compacted) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.name, s.partitions, s.retention.as_millis() as i64, s.retention_bytes.map(|b| b as i64), s.compacted],
        )?;
        let id = tx.last_insert_rowid();
        for p in 0..s.partitions {
            next.insert((id, p), 0);
        }
        new_topics.push((
            s.name.clone(),
            TopicMeta {
                id,
                partitions: s.partitions,
            },
        ));
    }
    Ok(())
}

fn initial_bytes(conn: &Connection) -> rusqlite::Result<HashMap<i64, i64>> {
    let mut st =
        conn.prepare("SELECT topic, SUM(length(key) + length(value)) FROM records GROUP BY topic")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<i64>>(1)?.unwrap_or(0),
        ))
    })?;
    rows.collect()
}

fn maybe_retention(conn: &mut Connection, inner: &Inner, st: &mut RetentionState, path: &Path) {
    if st.last.elapsed() < RETENTION_EVERY {
        return;
    }
    st.last = Instant::now();
    if let Err(err) = run_retention(conn, inner, st) {
        tracing::warn!(error = %err, path = %path.display(), "embedded log retention failed; will retry");
    }
}

/// Deletes what retention allows, in chunks, then hands free pages back.
fn run_retention(
    conn: &mut Connection,
    inner: &Inner,
    st: &mut RetentionState,
) -> rusqlite::Result<()> {
    let topics: Vec<(i64, String, i32, i64, Option<i64>, bool)> = {
        let mut q = conn.prepare(
            "SELECT id, name, partitions, retention_ms, retention_bytes, compacted FROM topics",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let cutoff = now_ms();
    let mut deleted_any = false;
    for (id, name, partitions, retention_ms, retention_bytes, compacted) in topics {
        let mut deleted = 0i64;
        for p in 0..partitions {
            // Time: records are in time order within a partition; delete the prefix.
            loop {
                let upto: Option<i64> = conn.query_row(
                    "SELECT MAX(offset) FROM (SELECT offset, ts FROM records WHERE topic = ?1 AND partition = ?2
                     ORDER BY offset LIMIT ?3) WHERE ts < ?4",
                    params![id, p, RETENTION_CHUNK, cutoff - retention_ms],
                    |r| r.get(0),
                )?;
                let Some(upto) = upto else { break };
                deleted += delete_upto(conn, st, id, p, upto)?;
            }
        }
        if let Some(limit) = retention_bytes {
            while st.bytes.get(&id).copied().unwrap_or(0) > limit {
                // The oldest chunk of the partition with the oldest record.
                let oldest: Option<(i32, i64)> = conn
                    .query_row(
                        "SELECT partition, offset FROM records WHERE topic = ?1 ORDER BY ts, offset LIMIT 1",
                        params![id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((p, first)) = oldest else { break };
                deleted += delete_upto(conn, st, id, p, first + RETENTION_CHUNK / 5 - 1)?;
            }
        }
        if compacted {
            let n = conn.execute(
                "DELETE FROM records WHERE topic = ?1 AND id NOT IN
                 (SELECT MAX(id) FROM records WHERE topic = ?1 GROUP BY partition, key)",
                params![id],
            )?;
            deleted += n as i64;
            if n > 0 {
                let b: i64 = conn.query_row(
                    "SELECT COALESCE(SUM(length(key) + length(value)), 0) FROM records WHERE topic = ?1",
                    params![id],
                    |r| r.get(0),
                )?;
                st.bytes.insert(id, b);
            }
        }
        if deleted > 0 {
            deleted_any = true;
            metrics::RETENTION_DELETED
                .with_label_values(&[&name])
                .inc_by(deleted as u64);
            tracing::debug!(topic = %name, deleted, "retention removed records");
        }
    }
    if deleted_any {
        // Each step of this pragma frees pages: step it to the end.
        let mut st = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
        inner.changed.send_modify(|v| *v += 1);
    }
    Ok(())
}

fn delete_upto(
    conn: &mut Connection,
    st: &mut RetentionState,
    topic: i64,
    partition: i32,
    upto: i64,
) -> rusqlite::Result<i64> {
    let tx = conn.transaction()?;
    let bytes: i64 = tx.query_row(
        "SELECT COALESCE(SUM(length(key) + length(value)), 0) FROM records WHERE topic = ?1 AND partition = ?2 AND offset <= ?3",
        params![topic, partition, upto],
        |r| r.get(0),
    )?;
    let n = tx.execute(
        "DELETE FROM records WHERE topic = ?1 AND partition = ?2 AND offset <= ?3",
        params![topic, partition, upto],
    )?;
    tx.commit()?;
    *st.bytes.entry(topic).or_insert(0) -= bytes;
    Ok(n as i64)
}
