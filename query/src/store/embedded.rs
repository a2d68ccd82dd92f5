//! The embedded log store: SQLite in the data directory, no server.
//!
//! Tables (one database file, WAL mode, `synchronous=FULL`):
//! - `streams(id, tenant, fingerprint, labels JSON, first_ts, last_ts)`, unique on
//!   `(tenant, fingerprint)`;
//! - `entries(id, stream, ts, line BLOB, metadata JSON)`, indexed on `(stream, ts)`.
//!   `id` (the rowid) is the entry's `seq`: unique, increasing with ingest order. The
//!   index holds the rowid last, so `ORDER BY ts, id` of one stream reads the index;
//! - `source_offsets(topic, partition, offset)`: the highest offset stored per source
//!   partition, updated in the same transaction as the rows.
//!
//! Fingerprints are `u64`; SQLite integers are signed, so they are stored with the top
//! bit flipped (`fp ^ 2^63`), which keeps their order. Lines are stored as BLOBs so
//! `instr` and `length` work on bytes (NUL-safe, and `length` is Loki's byte count).
//!
//! One connection writes (behind a mutex); reads use a small pool of connections, all
//! on the blocking thread pool. Line filters applied here: `|=`, `!=`, and `|~`/`!~`
//! whose regexes are alternations of literals (see [`super::plan::classify`]); other
//! filters are left to the engine, and `bucket_counts` answers `None` with them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argus_schemas::Labels;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, ToSql, params};

use super::plan::{DAY_NS, Simple, classify};
use super::{
    BucketCount, Cursor, Direction, Entry, IndexStats, LogStore, ScanRequest, StreamInfo, WriteRow,
};
use crate::error::{QueryError, Result};
use crate::logql::ast::LineFilter;

/// Reader connections kept open.
const READERS: usize = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams(
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    labels TEXT NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    UNIQUE(tenant, fingerprint)
);
CREATE TABLE IF NOT EXISTS entries(
    id INTEGER PRIMARY KEY,
    stream INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    line BLOB NOT NULL,
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS entries_stream_ts ON entries(stream, ts);
CREATE TABLE IF NOT EXISTS source_offsets(
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY(topic, partition)
) WITHOUT ROWID;
";

/// The SQLite log store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn fp_to_sql(fp: u64) -> i64 {
    (fp ^ (1 << 63)) as i64
}

fn fp_from_sql(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

fn labels_from_json(s: &str) -> Result<Labels> {
    serde_json::from_str(s).map_err(|e| QueryError::Store(format!("bad labels {s:?}: {e}")))
}

fn metadata_json(l: &Labels) -> Option<String> {
    (!l.is_empty()).then(|| serde_json::to_string(l).expect("labels serialize"))
}

/// SQL for the filters this store applies, with their parameters; `exact` is false
/// when some filter was left out.
struct FilterSql {
    sql: String,
    params: Vec<Vec<u8>>,
    exact: bool,
}

fn filter_sql(filters: &[LineFilter]) -> FilterSql {
    let mut out = FilterSql {
        sql: String::new(),
        params: Vec::new(),
        exact: true,
    };
    for f in filters {
        let Some(Simple::Substrings { negate, values }) = classify(f) else {
            out.exact = false;
            continue;
        };
        if values.is_empty() {
            out.exact = false;
            continue;
        }
        if values.iter().any(String::is_empty) {
            // Every line contains "": a positive filter keeps all, a negative none.
            if negate {
                out.sql.push_str(" AND 0");
            }
            continue;
        }
        let (op, join) = if negate {
            ("= 0", " AND ")
        } else {
            ("> 0", " OR ")
        };
        let parts: Vec<String> = values
            .iter()
            .map(|v| {
                out.params.push(v.as_bytes().to_vec());
                format!("instr(line, ?) {op}")
            })
            .collect();
        out.sql.push_str(&format!(" AND ({})", parts.join(join)));
    }
    out
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`: a database file, or a directory in
    /// which `logs.sqlite3` is used. Parent directories are created.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|e| QueryError::Store(format!("open task failed: {e}")))?
    }

    fn open_blocking(mut path: PathBuf) -> Result<Self> {
        if path.is_dir() {
            path = path.join("logs.sqlite3");
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                QueryError::Store(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let conn = open_conn(&path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer connection, off the async runtime.
    async fn with_writer<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| QueryError::Store(format!("store task failed: {e}")))?
    }

    /// Runs `f` on a reader connection, off the async runtime.
    async fn with_reader<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_conn(&inner.path)?,
            };
            let r = f(&conn);
            let mut pool = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < READERS {
                pool.push(conn);
            }
            r
        })
        .await
        .map_err(|e| QueryError::Store(format!("store task failed: {e}")))?
    }
}

/// Stream ids of `tenant`'s fingerprints, in the order given (missing ones left out).
fn stream_ids(conn: &Connection, tenant: &str, fps: &[u64]) -> Result<Vec<(u64, i64)>> {
    let mut st =
        conn.prepare_cached("SELECT id FROM streams WHERE tenant = ?1 AND fingerprint = ?2")?;
    let mut out = Vec::with_capacity(fps.len());
    for &fp in fps {
        if let Some(id) = st
            .query_row(params![tenant, fp_to_sql(fp)], |r| r.get::<_, i64>(0))
            .optional()?
        {
            out.push((fp, id));
        }
    }
    Ok(out)
}

fn write_blocking(conn: &mut Connection, rows: &[WriteRow]) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut find = tx.prepare_cached(
            "SELECT id, first_ts, last_ts FROM streams WHERE tenant = ?1 AND fingerprint = ?2",
        )?;
        let mut create = tx.prepare_cached(
            "INSERT INTO streams(tenant, fingerprint, labels, first_ts, last_ts)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )?;
        let mut span = tx.prepare_cached(
            "UPDATE streams SET first_ts = min(first_ts, ?2), last_ts = max(last_ts, ?3)
             WHERE id = ?1",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO entries(stream, ts, line, metadata) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut offset = tx.prepare_cached(
            "INSERT INTO source_offsets(topic, partition, offset) VALUES (?1, ?2, ?3)
             ON CONFLICT(topic, partition) DO UPDATE SET offset = max(offset, excluded.offset)",
        )?;
        // (tenant, fingerprint) -> (stream id, min ts, max ts) of this batch.
        let mut streams: HashMap<(&str, u64), (i64, i64, i64)> = HashMap::new();
        let mut offsets: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for r in rows {
            let fp = r.labels.fingerprint().0;
            let key = (r.tenant.as_str(), fp);
            let id = match streams.get_mut(&key) {
                Some(s) => {
                    s.1 = s.1.min(r.ts);
                    s.2 = s.2.max(r.ts);
                    s.0
                }
                None => {
                    let id = match find
                        .query_row(params![r.tenant, fp_to_sql(fp)], |x| x.get::<_, i64>(0))
                        .optional()?
                    {
                        Some(id) => id,
                        None => {
                            let labels =
                                serde_json::to_string(&r.labels).expect("labels serialize");
                            create.execute(params![r.tenant, fp_to_sql(fp), labels, r.ts])?;
                            tx.last_insert_rowid()
                        }
                    };
                    streams.insert(key, (id, r.ts, r.ts));
                    id
                }
            };
            insert.execute(params![
                id,
                r.ts,
                r.line.as_bytes(),
                metadata_json(&r.metadata)
            ])?;
            let o = offsets
                .entry((r.source.topic.as_str(), r.source.partition))
                .or_insert(r.source.offset);
            *o = (*o).max(r.source.offset);
        }
        for (id, lo, hi) in streams.values() {
            span.execute(params![id, lo, hi])?;
        }
        for ((topic, partition), o) in offsets {
            offset.execute(params![topic, partition, o])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn scan_blocking(conn: &Connection, req: &OwnedScan) -> Result<Vec<(u64, Entry)>> {
    let mut out = Vec::new();
    if req.limit == 0 || req.start >= req.end {
        return Ok(out);
    }
    let f = filter_sql(&req.filters);
    let order = match req.direction {
        Direction::Forward => "ORDER BY ts ASC, id ASC",
        Direction::Backward => "ORDER BY ts DESC, id DESC",
    };
    let cursor_cond = match req.direction {
        Direction::Forward => "AND (ts > ?4 OR id > ?5)",
        Direction::Backward => "AND (ts < ?4 OR id < ?5)",
    };
    let filters = number_params(&f.sql, 7);
    let sql = |cursor: &str| {
        format!(
            "SELECT id, ts, line, metadata FROM entries
             WHERE stream = ?1 AND ts >= ?2 AND ts < ?3 {cursor} {filters} {order} LIMIT ?6"
        )
    };
    let plain = sql("AND ?4 = ?4 AND ?5 = ?5");
    let cursored = sql(cursor_cond);
    let mut fps: Vec<u64> = match req.after {
        Some(c) => req
            .streams
            .iter()
            .copied()
            .filter(|&fp| fp >= c.fingerprint)
            .collect(),
        None => req.streams.clone(),
    };
    fps.sort_unstable();
    fps.dedup();
    for (fp, id) in stream_ids(conn, &req.tenant, &fps)? {
        let left = req.limit - out.len();
        if left == 0 {
            break;
        }
        let (mut lo, mut hi) = (req.start, req.end);
        let cur = req.after.filter(|c| c.fingerprint == fp);
        let (cts, cid) = match cur {
            Some(c) => {
                match req.direction {
                    Direction::Forward => lo = lo.max(c.ts),
                    Direction::Backward => hi = hi.min(c.ts.saturating_add(1)),
                }
                (c.ts, c.seq.min(i64::MAX as u64) as i64)
            }
            None => (0, 0),
        };
        if lo >= hi {
            continue;
        }
        let mut st = conn.prepare_cached(if cur.is_some() { &cursored } else { &plain })?;
        let mut p: Vec<&dyn ToSql> = vec![&id, &lo, &hi, &cts, &cid];
        let left_i = left as i64;
        p.push(&left_i);
        for v in &f.params {
            p.push(v);
        }
        let rows = st.query_map(p.as_slice(), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        for row in rows {
            let (seq, ts, line, meta) = row?;
            let metadata = match meta {
                Some(m) => labels_from_json(&m)?,
                None => Labels::new(),
            };
            out.push((
                fp,
                Entry {
                    ts,
                    seq: seq as u64,
                    line: String::from_utf8_lossy(&line).into_owned(),
                    metadata,
                },
            ));
        }
    }
    Ok(out)
}

/// A [`ScanRequest`] that can cross to the blocking pool.
struct OwnedScan {
    tenant: String,
    streams: Vec<u64>,
    start: i64,
    end: i64,
    filters: Vec<LineFilter>,
    direction: Direction,
    after: Option<Cursor>,
    limit: usize,
}

/// Numbers the `?` placeholders of filter SQL from `first` on.
fn number_params(sql: &str, first: usize) -> String {
    let mut n = first;
    let mut out = String::with_capacity(sql.len() + 8);
    for c in sql.chars() {
        if c == '?' {
            out.push_str(&format!("?{n}"));
            n += 1;
        } else {
            out.push(c);
        }
    }
    out
}

#[async_trait]
impl LogStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn write(&self, rows: &[WriteRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        self.with_writer(move |conn| write_blocking(conn, &rows))
            .await
    }

    async fn resume_offsets(&self, topic: &str) -> Result<HashMap<i32, i64>> {
        let topic = topic.to_string();
        self.with_reader(move |conn| {
            let mut st = conn
                .prepare_cached("SELECT partition, offset FROM source_offsets WHERE topic = ?1")?;
            let rows = st.query_map(params![topic], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<HashMap<i32, i64>>>()?)
        })
        .await
    }

    async fn streams(&self, tenant: &str, start: i64, end: i64) -> Result<Vec<StreamInfo>> {
        let tenant = tenant.to_string();
        self.with_reader(move |conn| {
            let mut st = conn.prepare_cached(
                "SELECT s.fingerprint, s.labels FROM streams s
                 WHERE s.tenant = ?1 AND s.first_ts < ?3 AND s.last_ts >= ?2
                   AND EXISTS (SELECT 1 FROM entries e
                               WHERE e.stream = s.id AND e.ts >= ?2 AND e.ts < ?3)
                 ORDER BY s.fingerprint",
            )?;
            let rows = st.query_map(params![tenant, start, end], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (fp, labels) = row?;
                out.push(StreamInfo {
                    fingerprint: fp_from_sql(fp),
                    labels: labels_from_json(&labels)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn scan(&self, req: &ScanRequest<'_>) -> Result<Vec<(u64, Entry)>> {
        let owned = OwnedScan {
            tenant: req.tenant.to_string(),
            streams: req.streams.to_vec(),
            start: req.start,
            end: req.end,
            filters: req.filters.to_vec(),
            direction: req.direction,
            after: req.after,
            limit: req.limit,
        };
        self.with_reader(move |conn| scan_blocking(conn, &owned))
            .await
    }

    async fn bucket_counts(
        &self,
        tenant: &str,
        streams: &[u64],
        filters: &[LineFilter],
        origin: i64,
        width: i64,
        buckets: i64,
    ) -> Result<Option<Vec<BucketCount>>> {
        let f = filter_sql(filters);
        if !f.exact || width <= 0 || buckets <= 0 {
            return Ok(None);
        }
        let tenant = tenant.to_string();
        let streams = streams.to_vec();
        let hi = origin.saturating_add(width.saturating_mul(buckets));
        self.with_reader(move |conn| {
            let sql = format!(
                "SELECT (ts - ?2 - 1) / ?3 + 1 AS b, count(*), sum(length(line)) FROM entries
                 WHERE stream = ?1 AND ts > ?2 AND ts <= ?4 {} GROUP BY b ORDER BY b",
                number_params(&f.sql, 5)
            );
            let mut st = conn.prepare_cached(&sql)?;
            let mut out = Vec::new();
            for (fp, id) in stream_ids(conn, &tenant, &streams)? {
                let mut p: Vec<&dyn ToSql> = vec![&id, &origin, &width, &hi];
                for v in &f.params {
                    p.push(v);
                }
                let rows = st.query_map(p.as_slice(), |r| {
                    Ok(BucketCount {
                        fingerprint: fp,
                        bucket: r.get(0)?,
                        lines: r.get::<_, i64>(1)? as u64,
                        bytes: r.get::<_, i64>(2)? as u64,
                    })
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(Some(out))
        })
        .await
    }

    async fn index_stats(
        &self,
        tenant: &str,
        streams: &[u64],
        start: i64,
        end: i64,
    ) -> Result<IndexStats> {
        let tenant = tenant.to_string();
        let streams = streams.to_vec();
        self.with_reader(move |conn| {
            let mut st = conn.prepare_cached(
                "SELECT count(*), coalesce(sum(length(line)), 0), count(DISTINCT ts / ?4)
                 FROM entries WHERE stream = ?1 AND ts >= ?2 AND ts < ?3",
            )?;
            let mut s = IndexStats::default();
            for (_, id) in stream_ids(conn, &tenant, &streams)? {
                let (n, bytes, days): (i64, i64, i64) = st
                    .query_row(params![id, start, end, DAY_NS], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                if n > 0 {
                    s.streams += 1;
                    s.entries += n as u64;
                    s.bytes += bytes as u64;
                    s.chunks += days as u64;
                }
            }
            Ok(s)
        })
        .await
    }

    async fn apply_retention(
        &self,
        per_tenant: &HashMap<String, Duration>,
        default: Option<Duration>,
        now_ns: i64,
    ) -> Result<()> {
        let per_tenant = per_tenant.clone();
        self.with_writer(move |conn| {
            let streams: Vec<(i64, String)> = {
                let mut st = conn.prepare("SELECT id, tenant FROM streams")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut deleted = 0usize;
            for (id, tenant) in streams {
                let Some(keep) = per_tenant.get(&tenant).copied().or(default) else {
                    continue;
                };
                let cutoff =
                    now_ns.saturating_sub(i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX));
                let tx = conn.transaction()?;
                let n = tx.execute(
                    "DELETE FROM entries WHERE stream = ?1 AND ts < ?2",
                    params![id, cutoff],
                )?;
                if n > 0 {
                    deleted += n;
                    let first: Option<i64> = tx.query_row(
                        "SELECT min(ts) FROM entries WHERE stream = ?1",
                        params![id],
                        |r| r.get(0),
                    )?;
                    match first {
                        Some(t) => {
                            tx.execute(
                                "UPDATE streams SET first_ts = ?2 WHERE id = ?1",
                                params![id, t],
                            )?;
                        }
                        None => {
                            tx.execute("DELETE FROM streams WHERE id = ?1", params![id])?;
                        }
                    }
                }
                tx.commit()?;
            }
            if deleted > 0 {
                conn.execute_batch("PRAGMA incremental_vacuum")?;
            }
            Ok(())
        })
        .await
    }
}
