//! Collectors: everything that brings data into the event log.
//!
//! Today: [`events_api`], the generic `POST /api/v1/events` endpoint through which any
//! producer can write records in Argus' own schema (see `schemas/json/`);
//! [`exposition`], the parser of the Prometheus text and OpenMetrics formats that the
//! scraper (not yet written) will use; and [`remote_write`], the Prometheus remote write
//! 1.0 receiver (`POST /api/v1/write`). The protocol-specific collectors (scrape, remote
//! write, Loki push, syslog, node problems, security findings) are separate modules
//! beside it.

pub mod body;
mod error;
pub mod events_api;
pub mod exposition;
pub mod loki_push;
pub mod metrics;
pub mod remote_write;

pub use error::IngestError;
