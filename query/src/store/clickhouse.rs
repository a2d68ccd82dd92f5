//! The ClickHouse log store, for ClickHouse 18.16 (Debian's package) and the current
//! engine. [`ClickHouseStore::connect`] asks the server its version and picks the
//! features it has; [`ClickHouseStore::ensure_schema`] creates the database and tables.
//!
//! # Schema
//!
//! ```text
//! entries: tenant, fingerprint UInt64, ts Int64 (Unix ns), seq UInt64, line String,
//!          metadata String (JSON object, '' when empty), shape UInt8, field_keys
//!          Array(String), field_values Array(String), field_nums Array(Float64),
//!          field_durs Array(Int64) (the labels the engine's parser reads from the
//!          line, see [`super::shape`]), topic, partition Int32, offset Int64
//!          MergeTree PARTITION BY intDiv(ts, 86400e9) ORDER BY (tenant, fingerprint, ts, seq)
//! series:  tenant, fingerprint UInt64, day Int32, labels String (JSON object)
//!          ReplacingMergeTree ORDER BY (tenant, fingerprint, day)
//! ```
//!
//! `ts` is an `Int64` of nanoseconds (18.16 has no `DateTime64`); the partition is the
//! day number `intDiv(ts, 86400e9)` (UTC, the same as `toDate` of the time; an integer
//! so it reads the same on both servers). `seq` comes from the row's source position
//! ([`super::plan::seq_of`]). On servers from 20.3 on ("modern": the current engine)
//! the tables also get `LowCardinality(String)` for `tenant` and `topic`, codecs
//! (`Delta, ZSTD` on `ts`, `ZSTD` on `line` and `metadata`), an `ngrambf_v1` skip index
//! on `line` for substring search, and a TTL that expresses the per-tenant retention;
//! from 22.8 on, `entries` has a projection of lines, bytes and metadata rows per
//! stream and minute (`minute_counts`), which counts over whole-minute windows read.
//!
//! The series table has one row per stream and day it was seen in (first/last seen day
//! are the min/max `day`); rows are inserted once per process (a cached set), repeats
//! across restarts are merged by ReplacingMergeTree and never visible because every
//! read groups by fingerprint. `streams` is exact: a stream is listed only when it has
//! entries in the range (an `IN` subquery on `entries`).
//!
//! # Exactly once
//!
//! Each row stores its source `(topic, partition, offset)`, and `resume_offsets(topic)`
//! is `max(offset)` per partition (a scan of the `topic`/`partition`/`offset` columns; it
//! runs when the writer starts). A `write` call is split ([`super::plan::split_writes`])
//! into writes that each fall into one partition (day) and hold at most
//! `max_insert_rows` rows (below `max_insert_block_size`, also sent as a setting), each
//! ONE `INSERT` into `entries`: the server forms one block, hence one part, and an
//! insert whose body is cut off fails without writing anything. So each such insert is
//! atomic on both servers. When a call needs several (rows of several days), they are
//! made in offset order per source partition, each a contiguous run of it, so after a
//! crash between them the stored rows are a prefix of every partition and the highest
//! stored offset is still exact. The series rows of a write are inserted before its
//! entries (a crash in between leaves a series row without entries, which `streams`
//! does not list).
//!
//! # Retention
//!
//! `apply_retention` drops whole day partitions older than every tenant's cutoff, then
//! deletes the remaining expired rows with `ALTER TABLE … DELETE` (a mutation; on 18.16
//! the call polls `system.mutations` until it is done, on modern servers it runs with
//! `mutations_sync=2`). On modern servers it also sets the table TTL to the same
//! per-tenant cutoffs, so merges keep expiring rows between calls. Deleting rows may
//! lower `resume_offsets` when the newest rows of a partition expire; the writer's
//! consumer offsets are committed long before (retention is days), so nothing is
//! written twice in practice.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use argus_schemas::Labels;
use async_trait::async_trait;
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use super::plan::{DAY_NS, Simple, classify, day_of, seq_of, split_writes};
use super::pushdown::{AggAnswer, AggRequest, AggRow};
use super::{
    BucketCount, BucketRequest, Direction, Entry, IndexStats, LogStore, ScanRequest, StreamInfo,
    WriteRow,
};
use crate::error::{QueryError, Result};
use crate::logql::ast::LineFilter;

/// Fingerprints per query (`fingerprint IN (…)` stays well below `max_query_size`).
const FP_CHUNK: usize = 2000;
/// Entries of the series cache before it is cleared.
const SERIES_CACHE_MAX: usize = 1_000_000;
/// Rows of a pushed-down aggregation the server cannot evaluate exactly that are
/// sent to the engine; past this many the engine scans instead.
const MAX_UNSAFE_ROWS: usize = 100_000;
/// ClickHouse's default `max_insert_block_size` is 1048576 rows.
const MAX_INSERT_ROWS_LIMIT: usize = 1_000_000;

/// `store.clickhouse` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// The HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Rows per `INSERT` at most (at most 1000000, below `max_insert_block_size`).
    #[serde(default = "default_max_insert_rows")]
    pub max_insert_rows: usize,
    /// LZ4-compress requests and responses.
    #[serde(default = "default_true")]
    pub compression: bool,
}

fn default_database() -> String {
    "argus".into()
}
fn default_max_insert_rows() -> usize {
    100_000
}
fn default_true() -> bool {
    true
}

impl ClickHouseConfig {
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        ClickHouseConfig {
            url: url.into(),
            database: database.into(),
            user: None,
            password: None,
            max_insert_rows: default_max_insert_rows(),
            compression: true,
        }
    }
}

/// What the server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub version: (u32, u32),
    /// `LowCardinality`, codecs, skip indexes, TTL (20.3 and later).
    pub modern: bool,
    /// Projections: the per-minute counts of [`MINUTE_COUNTS`] (22.8 and later).
    pub projections: bool,
}

impl Features {
    pub fn from_version(v: &str) -> Features {
        let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        Features {
            version,
            modern: version >= (20, 3),
            projections: version >= (22, 8),
        }
    }
}

pub struct ClickHouseStore {
    /// Without a database (for `CREATE DATABASE`).
    root: Client,
    /// With the store's database.
    db: Client,
    database: String,
    features: Features,
    max_insert_rows: usize,
    /// (tenant, fingerprint, day) already in `series`.
    series_seen: Mutex<HashSet<(String, u64, i32)>>,
    /// The TTL expression last set (modern servers).
    ttl_set: Mutex<Option<String>>,
}

/// The projection of `entries` holding lines, bytes and rows with metadata per
/// tenant, stream and minute (servers from 22.8): a count over windows that start and
/// end on whole minutes reads it instead of the rows (see `bucket_rows`).
/// It lives in each data part, so it is written, merged and dropped with the rows.
const MINUTE_COUNTS: &str = "minute_counts";
const MINUTE_COUNTS_SELECT: &str = "SELECT tenant, fingerprint, intDiv(ts - 1, 60000000000) AS minute, count(), sum(line_bytes), sum(has_metadata) GROUP BY tenant, fingerprint, minute";
/// The columns the projection sums (a projection serves sums of columns, not of
/// expressions), computed by the server on insert.
const MINUTE_COUNTS_COLUMNS: [(&str, &str); 2] = [
    ("line_bytes", "UInt32 MATERIALIZED length(line)"),
    ("has_metadata", "UInt8 MATERIALIZED metadata != ''"),
];
const MINUTE_NS: i64 = 60_000_000_000;

#[derive(Row, Deserialize)]
struct VersionRow {
    version: String,
}

#[derive(Row, Serialize)]
struct EntryRow<'a> {
    tenant: &'a str,
    fingerprint: u64,
    ts: i64,
    seq: u64,
    line: &'a str,
    metadata: String,
    shape: u8,
    field_keys: Vec<String>,
    field_values: Vec<String>,
    field_nums: Vec<f64>,
    field_durs: Vec<i64>,
    topic: &'a str,
    partition: i32,
    offset: i64,
}

#[derive(Row, Serialize)]
struct SeriesRow<'a> {
    tenant: &'a str,
    fingerprint: u64,
    day: i32,
    labels: String,
}

#[derive(Row, Deserialize)]
struct OffsetRow {
    partition: i32,
    offset: i64,
}

#[derive(Row, Deserialize)]
struct StreamRow {
    fingerprint: u64,
    labels: String,
}

#[derive(Row, Deserialize)]
struct ScanRow {
    fingerprint: u64,
    ts: i64,
    seq: u64,
    line: String,
    metadata: String,
}

impl ScanRow {
    /// The row's stream and entry (structured metadata parsed).
    fn into_entry(self) -> Result<(u64, Entry)> {
        let metadata = if self.metadata.is_empty() {
            Labels::new()
        } else {
            labels_from_json(&self.metadata)?
        };
        Ok((
            self.fingerprint,
            Entry {
                ts: self.ts,
                seq: self.seq,
                line: self.line,
                metadata,
            },
        ))
    }
}

/// What `bucket_rows` computes.
#[derive(Debug, Clone, Copy)]
struct BucketSpec<'a> {
    origin: i64,
    width: i64,
    buckets: i64,
    with_bytes: bool,
    with_metadata: bool,
    /// Group ids parallel to the streams (empty: one group per stream).
    groups: &'a [u32],
}

#[derive(Row, Deserialize)]
struct BucketMetaRow {
    fingerprint: u64,
    bucket: i64,
    lines: u64,
    bytes: u64,
    meta: u64,
}

#[derive(Row, Deserialize)]
struct AggRowCh {
    fingerprint: u64,
    bucket: i64,
    keys: Vec<String>,
    count: u64,
    bytes: u64,
    sum: f64,
    min: f64,
    max: f64,
    bad: u64,
    other: u64,
}

#[derive(Row, Deserialize)]
struct StatsRow {
    streams: u64,
    entries: u64,
    bytes: u64,
    chunks: u64,
}

#[derive(Row, Deserialize)]
struct NameRow {
    name: String,
}

#[derive(Row, Deserialize)]
struct CountRow {
    n: u64,
}

#[derive(Row, Deserialize)]
struct PartitionRow {
    partition: String,
}

/// A ClickHouse string literal, for SQL given to `Client::query` (which reads `?` as a
/// placeholder, so `?` is written `??`).
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '?' => out.push_str("??"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn fp_list(fps: &[u64]) -> String {
    let v: Vec<String> = fps.iter().map(u64::to_string).collect();
    v.join(",")
}

/// A `LIKE` pattern matching lines that contain `v`.
fn like_contains(v: &str) -> String {
    let mut p = String::with_capacity(v.len() + 2);
    p.push('%');
    for c in v.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The group id of each stream, when groups were given.
pub(super) fn group_map(streams: &[u64], groups: &[u32]) -> Option<HashMap<u64, u32>> {
    (!groups.is_empty() && groups.len() == streams.len()).then(|| {
        streams
            .iter()
            .copied()
            .zip(groups.iter().copied())
            .collect()
    })
}

/// The `GROUP BY` expression putting the streams of `fps` into their groups: a
/// constant when they all share one, else `None` (group by fingerprint: mapping
/// fingerprints to groups on the server costs more than sending a row per stream).
pub(super) fn group_expr(fps: &[u64], group_of: Option<&HashMap<u64, u32>>) -> Option<String> {
    let group_of = group_of?;
    let first = group_of.get(fps.first()?)?;
    fps.iter()
        .all(|fp| group_of.get(fp) == Some(first))
        .then(|| "toUInt32(0)".to_string())
}

/// The bucket of a row: `(origin + (i-1)*width, origin + i*width]` is bucket `i`
/// (a constant with one bucket: every row read is in it).
pub(super) fn bucket_sql(origin: i64, width: i64, buckets: i64) -> String {
    if buckets == 1 {
        "toInt64(1)".into()
    } else {
        format!("toInt64(intDiv(ts - toInt64({origin}) - 1, toInt64({width})) + 1)")
    }
}

/// SQL for the filters pushed down (values as literals), and whether all were. On
/// modern servers a positive substring filter is written `line LIKE '%v%'`, which the
/// `ngrambf_v1` index serves (`position` is not); 18.16 uses `position`.
pub(super) fn filter_sql(filters: &[LineFilter], modern: bool) -> (String, bool) {
    let mut sql = String::new();
    let mut exact = true;
    for f in filters {
        let Some(simple) = classify(f) else {
            exact = false;
            continue;
        };
        let (negate, values, func) = match &simple {
            Simple::Substrings { negate, values } => (*negate, values, "position"),
            Simple::Regexes { negate, values } => (*negate, values, "match"),
        };
        if values.is_empty() {
            exact = false;
            continue;
        }
        if func == "position" && values.iter().any(String::is_empty) {
            if negate {
                sql.push_str(" AND 0");
            }
            continue;
        }
        let parts: Vec<String> = values
            .iter()
            .map(|v| match (func, negate) {
                ("position", false) if modern => format!("line LIKE {}", quote(&like_contains(v))),
                ("position", false) => format!("position(line, {}) > 0", quote(v)),
                ("position", true) => format!("position(line, {}) = 0", quote(v)),
                (_, false) => format!("match(line, {})", quote(v)),
                (_, true) => format!("NOT match(line, {})", quote(v)),
            })
            .collect();
        let join = if negate { " AND " } else { " OR " };
        sql.push_str(&format!(" AND ({})", parts.join(join)));
    }
    (sql, exact)
}

fn labels_from_json(s: &str) -> Result<Labels> {
    serde_json::from_str(s).map_err(|e| QueryError::Store(format!("bad labels {s:?}: {e}")))
}

impl ClickHouseStore {
    /// Lines (and bytes, and whether any row carries structured metadata) per stream and
    /// bucket `(origin + (i-1)*width, origin + i*width]`, after `filters`; `None` when a
    /// filter cannot be applied exactly in SQL. Columns not asked for are not read.
    async fn bucket_rows(
        &self,
        tenant: &str,
        streams: &[u64],
        filters: &[LineFilter],
        spec: BucketSpec<'_>,
    ) -> Result<Option<(Vec<BucketCount>, Vec<u64>)>> {
        let BucketSpec {
            origin,
            width,
            buckets,
            ..
        } = spec;
        let (filters, exact) = filter_sql(filters, self.features.modern);
        if !exact || width <= 0 || buckets <= 0 {
            return Ok(None);
        }
        let hi = origin.saturating_add(width.saturating_mul(buckets));
        let group_of = group_map(streams, spec.groups);
        let mut fps = streams.to_vec();
        fps.sort_unstable();
        fps.dedup();
        // Windows on whole minutes, without line filters: in minutes, so that the
        // server reads the MINUTE_COUNTS projection (`(m, m + 1]` minutes hold minute
        // `m = intDiv(ts - 1, 1 min)`; times are positive here).
        let minutes = self.features.projections
            && filters.is_empty()
            && origin >= 0
            && origin % MINUTE_NS == 0
            && width % MINUTE_NS == 0;
        let (bucket, range) = if minutes {
            let m = format!("intDiv(ts - 1, {MINUTE_NS})");
            let (o, w, h) = (origin / MINUTE_NS, width / MINUTE_NS, hi / MINUTE_NS);
            (
                if buckets == 1 {
                    "toInt64(1)".to_string()
                } else {
                    format!("toInt64(intDiv({m} - {o}, {w}) + 1)")
                },
                format!("{m} >= {o} AND {m} < {h}"),
            )
        } else {
            (
                bucket_sql(origin, width, buckets),
                format!("ts > {origin} AND ts <= {hi}"),
            )
        };
        let mut out = Vec::new();
        let mut with_meta = Vec::new();
        for chunk in fps.chunks(FP_CHUNK) {
            let (fp_col, group_by) = match group_expr(chunk, group_of.as_ref()) {
                Some(g) => ("any(fingerprint)", g),
                None => ("fingerprint", "fingerprint".to_string()),
            };
            let sql = format!(
                "SELECT {fp_col} AS _fp, {bucket} AS _bucket,
                        toUInt64(count()) AS lines, {bytes} AS bytes, {meta} AS meta
                 FROM entries
                 WHERE tenant = ? AND fingerprint IN ({list}) AND {range}{filters}
                 GROUP BY {group_by}, _bucket",
                list = fp_list(chunk),
                bytes = match (spec.with_bytes, minutes) {
                    (false, _) => "toUInt64(0)",
                    (true, false) => "toUInt64(sum(length(line)))",
                    (true, true) => "toUInt64(sum(line_bytes))",
                },
                meta = match (spec.with_metadata, minutes) {
                    (false, _) => "toUInt64(0)",
                    (true, false) => "toUInt64(countIf(metadata != ''))",
                    (true, true) => "toUInt64(sum(has_metadata))",
                },
            );
            let rows: Vec<BucketMetaRow> = self.db.query(&sql).bind(tenant).fetch_all().await?;
            for r in rows {
                if r.meta > 0 {
                    with_meta.push(r.fingerprint);
                }
                out.push(BucketCount {
                    fingerprint: r.fingerprint,
                    bucket: r.bucket,
                    lines: r.lines,
                    bytes: r.bytes,
                });
            }
        }
        with_meta.sort_unstable();
        with_meta.dedup();
        Ok(Some((out, with_meta)))
    }

    /// Connects and reads the server version (the database need not exist yet; call
    /// [`ClickHouseStore::ensure_schema`]).
    pub async fn connect(cfg: ClickHouseConfig) -> Result<Self> {
        if cfg.database.is_empty() {
            return Err(QueryError::Store(
                "clickhouse: no database configured".into(),
            ));
        }
        let mut root = Client::default()
            .with_url(cfg.url.trim_end_matches('/'))
            .with_validation(false);
        if !cfg.compression {
            root = root.with_compression(clickhouse::Compression::None);
        }
        if let Some(u) = &cfg.user {
            root = root.with_user(u);
        }
        if let Some(p) = &cfg.password {
            root = root.with_password(p);
        }
        let v: VersionRow = root
            .query("SELECT version() AS version")
            .fetch_one()
            .await?;
        let features = Features::from_version(&v.version);
        tracing::info!(version = %v.version, modern = features.modern, "connected to ClickHouse");
        let db = root.clone().with_database(&cfg.database);
        Ok(ClickHouseStore {
            root,
            db,
            database: cfg.database,
            features,
            max_insert_rows: cfg.max_insert_rows.clamp(1, MAX_INSERT_ROWS_LIMIT),
            series_seen: Mutex::new(HashSet::new()),
            ttl_set: Mutex::new(None),
        })
    }

    pub fn features(&self) -> Features {
        self.features
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// Creates the database and the tables when missing.
    pub async fn ensure_schema(&self) -> Result<()> {
        let db = format!("`{}`", self.database.replace('`', "\\`"));
        self.root
            .query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .execute()
            .await?;
        let m = self.features.modern;
        let lc = if m {
            "LowCardinality(String)"
        } else {
            "String"
        };
        let codec = |c: &str| {
            if m {
                format!(" CODEC({c})")
            } else {
                String::new()
            }
        };
        // after the stored columns: the skip index, the projection and its columns
        let mut extras = if m {
            ",\n    INDEX line_ngrams line TYPE ngrambf_v1(4, 16384, 3, 0) GRANULARITY 1"
                .to_string()
        } else {
            String::new()
        };
        if self.features.projections {
            for (c, ty) in MINUTE_COUNTS_COLUMNS {
                extras.push_str(&format!(",\n    {c} {ty}"));
            }
            extras.push_str(&format!(
                ",\n    PROJECTION {MINUTE_COUNTS} ({MINUTE_COUNTS_SELECT})"
            ));
        }
        let entries = format!(
            "CREATE TABLE IF NOT EXISTS entries (
    tenant {lc},
    fingerprint UInt64,
    ts Int64{ts_codec},
    seq UInt64,
    line String{zstd},
    metadata String{zstd},
    shape UInt8,
    field_keys Array({lc}),
    field_values Array(String){zstd},
    field_nums Array(Float64){zstd},
    field_durs Array(Int64){zstd},
    topic {lc},
    partition Int32,
    offset Int64{extras}
) ENGINE = MergeTree()
PARTITION BY intDiv(ts, toInt64({DAY_NS}))
ORDER BY (tenant, fingerprint, ts, seq)",
            ts_codec = codec("Delta, ZSTD"),
            zstd = codec("ZSTD"),
        );
        self.db.query(&entries).execute().await?;
        // Tables made before the `shape` and `field_*` columns: old rows read as 0
        // (not parsed at write) with no fields.
        let have: Vec<NameRow> = self
            .root
            .query("SELECT name FROM system.columns WHERE database = ? AND table = 'entries'")
            .bind(&self.database)
            .fetch_all()
            .await?;
        let added = [
            ("shape", "UInt8 DEFAULT 0".to_string(), "metadata"),
            ("field_keys", format!("Array({lc})"), "shape"),
            ("field_values", "Array(String)".into(), "field_keys"),
            ("field_nums", "Array(Float64)".into(), "field_values"),
            ("field_durs", "Array(Int64)".into(), "field_nums"),
        ];
        for (col, ty, after) in added {
            if !have.iter().any(|r| r.name == col) {
                self.db
                    .query(&format!(
                        "ALTER TABLE entries ADD COLUMN {col} {ty} AFTER {after}"
                    ))
                    .execute()
                    .await?;
            }
        }
        if self.features.projections {
            let have: Vec<NameRow> = self
                .root
                .query(
                    "SELECT name FROM system.projections WHERE database = ? AND table = 'entries'",
                )
                .bind(&self.database)
                .fetch_all()
                .await?;
            if !have.iter().any(|r| r.name == MINUTE_COUNTS) {
                // Parts written before read the rows until the (background)
                // materialisation reaches them.
                for (c, ty) in MINUTE_COUNTS_COLUMNS {
                    self.db
                        .query(&format!(
                            "ALTER TABLE entries ADD COLUMN IF NOT EXISTS {c} {ty}"
                        ))
                        .execute()
                        .await?;
                }
                self.db
                    .query(&format!(
                        "ALTER TABLE entries ADD PROJECTION IF NOT EXISTS {MINUTE_COUNTS} ({MINUTE_COUNTS_SELECT})"
                    ))
                    .execute()
                    .await?;
                self.db
                    .query(&format!(
                        "ALTER TABLE entries MATERIALIZE PROJECTION {MINUTE_COUNTS}"
                    ))
                    .execute()
                    .await?;
            }
        }
        let series = format!(
            "CREATE TABLE IF NOT EXISTS series (
    tenant {lc},
    fingerprint UInt64,
    day Int32,
    labels String{zstd}
) ENGINE = ReplacingMergeTree()
ORDER BY (tenant, fingerprint, day)",
            zstd = codec("ZSTD"),
        );
        self.db.query(&series).execute().await?;
        Ok(())
    }

    /// Runs one branch of a pushed-down aggregation into `out`: its rows, and its
    /// unsafe rows for the engine. Returns how many rows it left to
    /// [`super::sql::AggSql::others`], or `None` when too many rows are unsafe (the
    /// engine then scans).
    async fn aggregate_part(
        &self,
        tenant: &str,
        q: &super::sql::AggQuery,
        out: &mut AggAnswer,
    ) -> Result<Option<u64>> {
        // Every pushed-down expression is total (see `sql`). The setting goes in the
        // query text: it is for this query only on any server (a setting sent beside
        // the query may outlive it on a shared session).
        let query = |text: &str| {
            let q = if self.features.modern {
                self.db.query(&format!(
                    "{text} SETTINGS short_circuit_function_evaluation = 'disable'"
                ))
            } else {
                self.db.query(text)
            };
            q.bind(tenant)
        };
        let rows: Vec<AggRowCh> = query(&q.agg).fetch_all().await?;
        let bad: u64 = rows.iter().map(|r| r.bad).sum();
        let other: u64 = rows.iter().map(|r| r.other).sum();
        if bad as usize + out.rest.len() > MAX_UNSAFE_ROWS {
            tracing::debug!(
                rows = bad,
                "pushdown: too many rows the server cannot evaluate exactly; scanning"
            );
            return Ok(None);
        }
        out.rows
            .extend(rows.into_iter().filter(|r| r.count > 0).map(|r| AggRow {
                fingerprint: r.fingerprint,
                bucket: r.bucket,
                keys: r.keys,
                count: r.count,
                bytes: r.bytes,
                sum: r.sum,
                min: r.min,
                max: r.max,
            }));
        if bad > 0 {
            tracing::debug!(
                rows = bad,
                "pushdown: rows the server cannot evaluate exactly go to the engine"
            );
            let rows: Vec<ScanRow> = query(&q.rest).fetch_all().await?;
            for r in rows {
                out.rest.push(r.into_entry()?);
            }
        }
        Ok(Some(other))
    }

    /// Drops the store's database (tests).
    pub async fn drop_database(&self) -> Result<()> {
        let db = format!("`{}`", self.database.replace('`', "\\`"));
        self.root
            .query(&format!("DROP DATABASE IF EXISTS {db}"))
            .execute()
            .await?;
        Ok(())
    }

    /// One atomic INSERT of rows that all fall into one day (after their series rows).
    async fn write_one(&self, rows: &[WriteRow]) -> Result<()> {
        let mut new_series: Vec<(String, u64, i32, &Labels)> = Vec::new();
        {
            let seen = self.series_seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut batch: HashSet<(&str, u64, i32)> = HashSet::new();
            for r in rows {
                let fp = r.labels.fingerprint().0;
                let day = day_of(r.ts) as i32;
                if batch.insert((&r.tenant, fp, day))
                    && !seen.contains(&(r.tenant.clone(), fp, day))
                {
                    new_series.push((r.tenant.clone(), fp, day, &r.labels));
                }
            }
        }
        if !new_series.is_empty() {
            let mut ins = self.db.insert::<SeriesRow<'_>>("series").await?;
            for (tenant, fp, day, labels) in &new_series {
                ins.write(&SeriesRow {
                    tenant,
                    fingerprint: *fp,
                    day: *day,
                    labels: serde_json::to_string(labels).expect("labels serialize"),
                })
                .await?;
            }
            ins.end().await?;
        }
        let mut ins = self
            .db
            .insert::<EntryRow<'_>>("entries")
            .await?
            .with_setting(
                "max_insert_block_size",
                (MAX_INSERT_ROWS_LIMIT + 48_576).to_string(),
            );
        for r in rows {
            let parsed = super::shape::classify(&r.line);
            ins.write(&EntryRow {
                tenant: &r.tenant,
                fingerprint: r.labels.fingerprint().0,
                ts: r.ts,
                seq: seq_of(&r.source),
                line: &r.line,
                metadata: if r.metadata.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&r.metadata).expect("labels serialize")
                },
                shape: parsed.shape,
                field_keys: parsed.keys,
                field_values: parsed.values,
                field_nums: parsed.nums,
                field_durs: parsed.durs,
                topic: &r.source.topic,
                partition: r.source.partition,
                offset: r.source.offset,
            })
            .await?;
        }
        ins.end().await?;
        if !new_series.is_empty() {
            let mut seen = self.series_seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() + new_series.len() > SERIES_CACHE_MAX {
                seen.clear();
            }
            for (tenant, fp, day, _) in new_series {
                seen.insert((tenant, fp, day));
            }
        }
        Ok(())
    }

    /// Waits until the mutations of `table` are done (18.16 has no `mutations_sync`).
    async fn wait_mutations(&self, table: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        loop {
            let c: CountRow = self
                .db
                .query(
                    "SELECT toUInt64(count()) AS n FROM system.mutations
                     WHERE database = ? AND table = ? AND is_done = 0",
                )
                .bind(&self.database)
                .bind(table)
                .fetch_one()
                .await?;
            if c.n == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(QueryError::Store(format!(
                    "clickhouse: mutations on {table} not done after 300s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes rows of `table` matching `cond` (when there are any), synchronously.
    async fn delete_where(&self, table: &str, cond: &str) -> Result<()> {
        let c: CountRow = self
            .db
            .query(&format!(
                "SELECT toUInt64(count()) AS n FROM {table} WHERE {cond}"
            ))
            .fetch_one()
            .await?;
        if c.n == 0 {
            return Ok(());
        }
        let q = self
            .db
            .query(&format!("ALTER TABLE {table} DELETE WHERE {cond}"));
        if self.features.modern {
            q.with_setting("mutations_sync", "2").execute().await?;
        } else {
            q.execute().await?;
            self.wait_mutations(table).await?;
        }
        Ok(())
    }
}

/// `(tenant, cutoff ns)` of every listed tenant, and the default cutoff.
fn cutoffs(
    per_tenant: &HashMap<String, Duration>,
    default: Option<Duration>,
    now_ns: i64,
) -> (Vec<(String, i64)>, Option<i64>) {
    let cut = |d: Duration| now_ns.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let mut tenants: Vec<(String, i64)> = per_tenant
        .iter()
        .map(|(t, d)| (t.clone(), cut(*d)))
        .collect();
    tenants.sort();
    (tenants, default.map(cut))
}

/// The TTL expression of a retention config: per row, when it expires.
fn ttl_expr(per_tenant: &HashMap<String, Duration>, default: Option<Duration>) -> String {
    let secs = "intDiv(ts, 1000000000)";
    let never = "toDateTime(4000000000)".to_string();
    let mut tenants: Vec<(&String, &Duration)> = per_tenant.iter().collect();
    tenants.sort();
    let fallback = match default {
        Some(d) => format!("toDateTime({secs} + {})", d.as_secs()),
        None => never,
    };
    if tenants.is_empty() {
        return fallback;
    }
    let mut parts = Vec::new();
    for (t, d) in tenants {
        parts.push(format!(
            "tenant = {}, toDateTime({secs} + {})",
            quote(t),
            d.as_secs()
        ));
    }
    format!("multiIf({}, {fallback})", parts.join(", "))
}

#[async_trait]
impl LogStore for ClickHouseStore {
    fn kind(&self) -> &'static str {
        "clickhouse"
    }

    async fn write(&self, rows: &[WriteRow]) -> Result<()> {
        for w in split_writes(rows.to_vec(), self.max_insert_rows) {
            self.write_one(&w).await?;
        }
        Ok(())
    }

    async fn resume_offsets(&self, topic: &str) -> Result<HashMap<i32, i64>> {
        let rows: Vec<OffsetRow> = self
            .db
            .query(
                "SELECT partition, max(offset) AS offset FROM entries
                 WHERE topic = ? GROUP BY partition",
            )
            .bind(topic)
            .fetch_all()
            .await?;
        Ok(rows.into_iter().map(|r| (r.partition, r.offset)).collect())
    }

    async fn streams(&self, tenant: &str, start: i64, end: i64) -> Result<Vec<StreamInfo>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT fingerprint, any(labels) AS labels FROM series
             WHERE tenant = ? AND day >= {d0} AND day <= {d1}
               AND fingerprint IN (SELECT fingerprint FROM entries
                                   WHERE tenant = ? AND ts >= {start} AND ts < {end})
             GROUP BY fingerprint ORDER BY fingerprint",
            d0 = day_of(start),
            d1 = day_of(end - 1),
        );
        let rows: Vec<StreamRow> = self
            .db
            .query(&sql)
            .bind(tenant)
            .bind(tenant)
            .fetch_all()
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StreamInfo {
                    fingerprint: r.fingerprint,
                    labels: labels_from_json(&r.labels)?,
                })
            })
            .collect()
    }

    /// The streams seen on the days of the range (the series table alone; no scan of
    /// `entries`).
    async fn candidate_streams(
        &self,
        tenant: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<StreamInfo>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT fingerprint, any(labels) AS labels FROM series
             WHERE tenant = ? AND day >= {d0} AND day <= {d1}
             GROUP BY fingerprint ORDER BY fingerprint",
            d0 = day_of(start),
            d1 = day_of(end - 1),
        );
        let rows: Vec<StreamRow> = self.db.query(&sql).bind(tenant).fetch_all().await?;
        rows.into_iter()
            .map(|r| {
                Ok(StreamInfo {
                    fingerprint: r.fingerprint,
                    labels: labels_from_json(&r.labels)?,
                })
            })
            .collect()
    }

    async fn scan(&self, req: &ScanRequest<'_>) -> Result<Vec<(u64, Entry)>> {
        let mut out = Vec::new();
        if req.limit == 0 || req.start >= req.end {
            return Ok(out);
        }
        let (filters, _) = filter_sql(req.filters, self.features.modern);
        let mut fps: Vec<u64> = req.streams.to_vec();
        fps.sort_unstable();
        fps.dedup();
        if let Some(c) = req.after {
            fps.retain(|&fp| fp >= c.fingerprint);
        }
        let (dir, cmp) = match req.direction {
            Direction::Forward => ("ASC", ">"),
            Direction::Backward => ("DESC", "<"),
        };
        let cursor = match req.after {
            Some(c) => format!(
                " AND (fingerprint > {fp} OR (fingerprint = {fp} AND (ts {cmp} {ts} OR (ts = {ts} AND seq {cmp} {seq}))))",
                fp = c.fingerprint,
                ts = c.ts,
                seq = c.seq
            ),
            None => String::new(),
        };
        for chunk in fps.chunks(FP_CHUNK) {
            let left = req.limit - out.len();
            if left == 0 {
                break;
            }
            let sql = format!(
                "SELECT fingerprint, ts, seq, line, metadata FROM entries
                 WHERE tenant = ? AND fingerprint IN ({list}) AND ts >= {start} AND ts < {end}
                 {cursor}{filters}
                 ORDER BY fingerprint ASC, ts {dir}, seq {dir} LIMIT {left}",
                list = fp_list(chunk),
                start = req.start,
                end = req.end,
            );
            let rows: Vec<ScanRow> = self.db.query(&sql).bind(req.tenant).fetch_all().await?;
            for r in rows {
                out.push(r.into_entry()?);
            }
        }
        Ok(out)
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
        let spec = BucketSpec {
            origin,
            width,
            buckets,
            with_bytes: true,
            with_metadata: false,
            groups: &[],
        };
        Ok(self
            .bucket_rows(tenant, streams, filters, spec)
            .await?
            .map(|(counts, _)| counts))
    }

    #[allow(clippy::too_many_arguments)]
    async fn bucket_counts_with_metadata(
        &self,
        tenant: &str,
        streams: &[u64],
        filters: &[LineFilter],
        origin: i64,
        width: i64,
        buckets: i64,
        with_bytes: bool,
    ) -> Result<Option<(Vec<BucketCount>, Vec<u64>)>> {
        let spec = BucketSpec {
            origin,
            width,
            buckets,
            with_bytes,
            with_metadata: true,
            groups: &[],
        };
        self.bucket_rows(tenant, streams, filters, spec).await
    }

    async fn bucket_counts_grouped(
        &self,
        req: &BucketRequest<'_>,
    ) -> Result<Option<(Vec<BucketCount>, Vec<u64>)>> {
        let spec = BucketSpec {
            origin: req.origin,
            width: req.width,
            buckets: req.buckets,
            with_bytes: req.with_bytes,
            with_metadata: req.with_metadata,
            groups: req.groups,
        };
        self.bucket_rows(req.tenant, req.streams, req.filters, spec)
            .await
    }

    async fn aggregate(&self, req: &AggRequest<'_>) -> Result<Option<AggAnswer>> {
        if req.width <= 0 || req.buckets <= 0 {
            return Ok(None);
        }
        let hi = req
            .origin
            .saturating_add(req.width.saturating_mul(req.buckets));
        let group_of = group_map(req.streams, req.groups);
        let mut fps = req.streams.to_vec();
        fps.sort_unstable();
        fps.dedup();
        let mut out = AggAnswer::default();
        for chunk in fps.chunks(FP_CHUNK) {
            let Some(sql) = super::sql::aggregate_sql(
                req.plan,
                self.features.modern,
                &super::sql::Span {
                    fps: &fp_list(chunk),
                    group: group_expr(chunk, group_of.as_ref()),
                    origin: req.origin,
                    width: req.width,
                    buckets: req.buckets,
                    hi,
                },
            ) else {
                return Ok(None);
            };
            let mut part = Some(&sql.first);
            while let Some(q) = part.take() {
                let other = self.aggregate_part(req.tenant, q, &mut out).await?;
                let Some(other) = other else {
                    return Ok(None);
                };
                if other > 0 {
                    tracing::debug!(
                        rows = other,
                        "pushdown: rows not parsed at write get the proofs"
                    );
                    part = sql.others.as_ref();
                }
            }
        }
        Ok(Some(out))
    }

    async fn index_stats(
        &self,
        tenant: &str,
        streams: &[u64],
        start: i64,
        end: i64,
    ) -> Result<IndexStats> {
        let mut s = IndexStats::default();
        if start >= end {
            return Ok(s);
        }
        let mut fps = streams.to_vec();
        fps.sort_unstable();
        fps.dedup();
        for chunk in fps.chunks(FP_CHUNK) {
            let sql = format!(
                "SELECT toUInt64(uniqExact(fingerprint)) AS streams, toUInt64(count()) AS entries,
                        toUInt64(sum(length(line))) AS bytes,
                        toUInt64(uniqExact(fingerprint, intDiv(ts, toInt64({DAY_NS})))) AS chunks
                 FROM entries
                 WHERE tenant = ? AND fingerprint IN ({list}) AND ts >= {start} AND ts < {end}",
                list = fp_list(chunk),
            );
            let r: StatsRow = self.db.query(&sql).bind(tenant).fetch_one().await?;
            s.streams += r.streams;
            s.entries += r.entries;
            s.bytes += r.bytes;
            s.chunks += r.chunks;
        }
        Ok(s)
    }

    async fn apply_retention(
        &self,
        per_tenant: &HashMap<String, Duration>,
        default: Option<Duration>,
        now_ns: i64,
    ) -> Result<()> {
        if self.features.modern {
            let expr = ttl_expr(per_tenant, default);
            let changed = self
                .ttl_set
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_deref()
                != Some(expr.as_str());
            if changed {
                self.db
                    .query(&format!("ALTER TABLE entries MODIFY TTL {expr}"))
                    .with_setting("materialize_ttl_after_modify", "0")
                    .execute()
                    .await?;
                *self.ttl_set.lock().unwrap_or_else(|p| p.into_inner()) = Some(expr);
            }
        }
        let (tenants, default_cut) = cutoffs(per_tenant, default, now_ns);
        if tenants.is_empty() && default_cut.is_none() {
            return Ok(());
        }
        // Whole days older than every cutoff (only when every tenant has one).
        if let Some(d) = default_cut {
            let min_cut = tenants.iter().map(|(_, c)| *c).fold(d, i64::min);
            let parts: Vec<PartitionRow> = self
                .db
                .query(
                    "SELECT DISTINCT partition FROM system.parts
                     WHERE database = ? AND table = 'entries' AND active",
                )
                .bind(&self.database)
                .fetch_all()
                .await?;
            for p in parts {
                let Ok(day) = p.partition.trim_matches('\'').parse::<i64>() else {
                    continue;
                };
                if day >= 0 && (day + 1).saturating_mul(DAY_NS) <= min_cut {
                    self.db
                        .query(&format!("ALTER TABLE entries DROP PARTITION {day}"))
                        .execute()
                        .await?;
                }
            }
        }
        let mut conds: Vec<String> = tenants
            .iter()
            .map(|(t, c)| format!("(tenant = {} AND ts < {c})", quote(t)))
            .collect();
        let mut series_conds: Vec<String> = tenants
            .iter()
            .map(|(t, c)| format!("(tenant = {} AND day < {})", quote(t), day_of(*c)))
            .collect();
        if let Some(d) = default_cut {
            let others = if tenants.is_empty() {
                "1".to_string()
            } else {
                let names: Vec<String> = tenants.iter().map(|(t, _)| quote(t)).collect();
                format!("tenant NOT IN ({})", names.join(", "))
            };
            conds.push(format!("({others} AND ts < {d})"));
            series_conds.push(format!("({others} AND day < {})", day_of(d)));
        }
        self.delete_where("entries", &conds.join(" OR ")).await?;
        self.delete_where("series", &series_conds.join(" OR "))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_features() {
        assert!(!Features::from_version("18.16.1").modern);
        assert!(Features::from_version("26.9.2.1").modern);
        assert_eq!(Features::from_version("20.3.1").version, (20, 3));
    }

    #[test]
    fn like_patterns() {
        assert_eq!(like_contains(r"100%_a\b"), r"%100\%\_a\\b%");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r"a'b\c?"), r"'a\'b\\c??'");
    }

    #[test]
    fn ttl_expression() {
        let mut m = HashMap::new();
        m.insert("a".to_string(), Duration::from_secs(60));
        assert_eq!(
            ttl_expr(&m, None),
            "multiIf(tenant = 'a', toDateTime(intDiv(ts, 1000000000) + 60), toDateTime(4000000000))"
        );
        assert_eq!(
            ttl_expr(&HashMap::new(), Some(Duration::from_secs(5))),
            "toDateTime(intDiv(ts, 1000000000) + 5)"
        );
    }
}
