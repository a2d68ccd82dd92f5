//! The query service: the log store (ClickHouse or embedded), the writer that fills it
//! from the event log exactly once, the LogQL engine and Loki's HTTP API.
//!
//! - `logql`: syntax tree, parser, matchers, the log pipeline
//! - `engine`: query execution and Loki-shaped results
//! - `store`: the `LogStore` trait, `embedded` (SQLite) and `clickhouse`
//! - `writer`: event log → store, exactly once
//! - `api`: `/loki/api/v1/*`

pub mod api;
pub mod config;
pub mod engine;
pub mod error;
pub mod logql;
pub mod metrics;
pub mod store;
pub mod writer;

pub use error::{QueryError, Result};
