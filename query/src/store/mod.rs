//! The log store: where the writer puts log lines (and node events and findings,
//! as log streams) and where the LogQL engine reads them. Two implementations answer
//! the same trait: `embedded` (SQLite in the data directory, no server) and
//! `clickhouse` (ClickHouse 18.16 and the current engine).
//!
//! Contract every implementation keeps (the conformance suite runs on all of them):
//! - `write` is atomic per call: after a crash either all rows of a call are stored or
//!   none are. Each row carries its source position (topic, partition, offset), and
//!   `resume_offsets` returns, per source partition, the highest offset stored, so the
//!   writer resumes after it: no duplicate, no gap.
//! - `streams` returns the streams of a tenant that have entries in `[start, end)`;
//!   label matching happens in the engine.
//! - `scan` returns entries ordered by stream (fingerprint ascending) and, within a
//!   stream, by `(ts, seq)` ascending (forward) or descending (backward), starting
//!   strictly after `after`, at most `limit` rows. Line filters in the request are a
//!   hint: a store may apply them (fewer rows) or not (the engine applies them again).

pub mod clickhouse;
pub mod embedded;
pub mod plan;
pub mod pushdown;
pub mod shape;
mod sql;

use std::collections::HashMap;

use argus_schemas::Labels;
use async_trait::async_trait;

use crate::error::Result;
use crate::logql::ast::LineFilter;

/// One stream: its fingerprint (`Labels::fingerprint`) and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub fingerprint: u64,
    pub labels: Labels,
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unix nanoseconds.
    pub ts: i64,
    /// Unique within the stream, increasing with ingest order; breaks timestamp ties.
    pub seq: u64,
    pub line: String,
    pub metadata: Labels,
}

/// Where a row came from on the event log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourcePos {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One row for `write`.
#[derive(Debug, Clone)]
pub struct WriteRow {
    pub tenant: String,
    pub labels: Labels,
    pub ts: i64,
    pub line: String,
    pub metadata: Labels,
    pub source: SourcePos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Forward,
    Backward,
}

/// Keyset position: scanning resumes strictly after this row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub fingerprint: u64,
    pub ts: i64,
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub struct ScanRequest<'a> {
    pub tenant: &'a str,
    /// Fingerprints to read, ascending.
    pub streams: &'a [u64],
    /// Inclusive, Unix ns.
    pub start: i64,
    /// Exclusive, Unix ns.
    pub end: i64,
    /// Leading line filters of the query (a hint, see the module docs).
    pub filters: &'a [LineFilter],
    pub direction: Direction,
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// Lines and bytes per time bucket of one stream, for metric queries without parsers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketCount {
    pub fingerprint: u64,
    /// Bucket `i` holds entries with `ts` in `(origin + (i-1)*width, origin + i*width]`.
    pub bucket: i64,
    pub lines: u64,
    pub bytes: u64,
}

/// What [`LogStore::bucket_counts_grouped`] is asked.
#[derive(Debug, Clone)]
pub struct BucketRequest<'a> {
    pub tenant: &'a str,
    /// Fingerprints, ascending.
    pub streams: &'a [u64],
    /// A group id per stream (parallel to `streams`): the counts of streams with the
    /// same id may be merged into one row per bucket, whose `fingerprint` is then one
    /// of theirs (and so is the one reported for structured metadata).
    pub groups: &'a [u32],
    /// Applied exactly (see [`LogStore::bucket_counts`]).
    pub filters: &'a [LineFilter],
    pub origin: i64,
    pub width: i64,
    pub buckets: i64,
    /// Whether `bytes` is needed (0 otherwise).
    pub with_bytes: bool,
    /// Whether the fingerprints with structured metadata on counted rows are needed.
    pub with_metadata: bool,
}

/// Totals for `/loki/api/v1/index/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexStats {
    pub streams: u64,
    pub chunks: u64,
    pub entries: u64,
    pub bytes: u64,
}

#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// A short name for logs and metrics (`embedded`, `clickhouse`).
    fn kind(&self) -> &'static str;

    /// Stores rows atomically (all or none).
    async fn write(&self, rows: &[WriteRow]) -> Result<()>;

    /// Highest stored offset per partition of `topic`.
    async fn resume_offsets(&self, topic: &str) -> Result<HashMap<i32, i64>>;

    /// Streams of `tenant` with entries in `[start, end)`.
    async fn streams(&self, tenant: &str, start: i64, end: i64) -> Result<Vec<StreamInfo>>;

    /// Streams of `tenant` that may have entries in `[start, end)`: a superset of
    /// [`LogStore::streams`] is allowed (a query reads entries anyway, a stream
    /// without any adds nothing), so a store may answer from a coarser index.
    async fn candidate_streams(
        &self,
        tenant: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<StreamInfo>> {
        self.streams(tenant, start, end).await
    }

    /// Entries in the documented order; see [`ScanRequest`].
    async fn scan(&self, req: &ScanRequest<'_>) -> Result<Vec<(u64, Entry)>>;

    /// Per-bucket line and byte counts for `streams` over `(origin, origin + n*width]`
    /// after `filters` (which here must be applied exactly). `None` when the store
    /// cannot push this down; the engine then scans.
    async fn bucket_counts(
        &self,
        tenant: &str,
        streams: &[u64],
        filters: &[LineFilter],
        origin: i64,
        width: i64,
        buckets: i64,
    ) -> Result<Option<Vec<BucketCount>>> {
        let _ = (tenant, streams, filters, origin, width, buckets);
        Ok(None)
    }

    /// [`LogStore::bucket_counts`] plus the fingerprints among `streams` that have a
    /// counted row (in range, after `filters`) carrying structured metadata, computed
    /// in the same pass; `bytes` 0 unless `with_bytes`. `None` when the store cannot
    /// answer (the engine falls back).
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
        let _ = (tenant, streams, filters, origin, width, buckets, with_bytes);
        Ok(None)
    }

    /// [`LogStore::bucket_counts`] (or, with `with_metadata`,
    /// [`LogStore::bucket_counts_with_metadata`]) where streams of one group may be
    /// counted together (see [`BucketRequest::groups`]). The default ignores the
    /// groups.
    async fn bucket_counts_grouped(
        &self,
        req: &BucketRequest<'_>,
    ) -> Result<Option<(Vec<BucketCount>, Vec<u64>)>> {
        if req.with_metadata {
            self.bucket_counts_with_metadata(
                req.tenant,
                req.streams,
                req.filters,
                req.origin,
                req.width,
                req.buckets,
                req.with_bytes,
            )
            .await
        } else {
            Ok(self
                .bucket_counts(
                    req.tenant,
                    req.streams,
                    req.filters,
                    req.origin,
                    req.width,
                    req.buckets,
                )
                .await?
                .map(|c| (c, Vec::new())))
        }
    }

    /// Per stream, bucket and extracted key values, the samples of a range
    /// aggregation over a parsed pipeline (see [`pushdown`]), plus the rows the store
    /// cannot evaluate exactly. `None` when the store cannot answer (the engine then
    /// scans).
    async fn aggregate(
        &self,
        req: &pushdown::AggRequest<'_>,
    ) -> Result<Option<pushdown::AggAnswer>> {
        let _ = req;
        Ok(None)
    }

    /// Entry and byte totals of `streams` in `[start, end)`.
    async fn index_stats(
        &self,
        tenant: &str,
        streams: &[u64],
        start: i64,
        end: i64,
    ) -> Result<IndexStats>;

    /// Deletes entries older than each tenant's retention (`default` for others).
    async fn apply_retention(
        &self,
        per_tenant: &HashMap<String, std::time::Duration>,
        default: Option<std::time::Duration>,
        now_ns: i64,
    ) -> Result<()>;
}
