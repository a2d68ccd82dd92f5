//! The LogQL engine: runs a parsed query against a [`LogStore`]. Stream selection,
//! the time range and leading line filters go to the store (and, for metric queries
//! without parsers, line and byte counts per bucket); the rest runs here as a
//! streaming pipeline whose memory is bounded by the query limits.

pub mod result;

use std::sync::Arc;

use crate::error::{QueryError, Result};
use crate::store::{Direction, LogStore};
pub use result::{QueryData, QueryResponse, QueryStats, Sample, Series, StreamResult};

/// Query limits, named and defaulted as Loki's.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `max_entries_limit_per_query` (5000)
    pub max_entries_limit_per_query: u32,
    /// `max_query_series` (500)
    pub max_query_series: usize,
    /// `max_query_length` in ns (30d1h); 0 = unlimited
    pub max_query_length: i64,
    /// points per series (11000), as Loki's "exceeded maximum resolution"
    pub max_points_per_series: i64,
    /// `max_streams_matchers_per_query` / lines scanned per query; 0 = unlimited
    pub max_lines_scanned: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            max_query_length: (30 * 24 + 1) * 3600 * 1_000_000_000,
            max_points_per_series: 11_000,
            max_lines_scanned: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// `/loki/api/v1/query`: evaluated at `end` (start == end).
    Instant,
    /// `/loki/api/v1/query_range`
    Range,
}

/// One query, with its parameters already resolved to numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParams {
    pub tenant: String,
    pub query: String,
    pub kind: QueryKind,
    /// ns; for instant queries equal to `end`
    pub start: i64,
    /// ns
    pub end: i64,
    /// ns (range metric queries)
    pub step: i64,
    /// ns (`interval` of log range queries; 0 = none)
    pub interval: i64,
    pub limit: u32,
    pub direction: Direction,
}

pub struct Engine {
    store: Arc<dyn LogStore>,
    limits: Limits,
}

impl Engine {
    pub fn new(store: Arc<dyn LogStore>, limits: Limits) -> Self {
        Engine { store, limits }
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses and runs a query.
    pub async fn query(&self, params: &QueryParams) -> Result<QueryResponse> {
        let _ = params;
        Err(QueryError::Invalid("engine not written yet".into()))
    }
}
