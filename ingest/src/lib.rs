//! Collectors: everything that brings data into the event log.
//!
//! Today: [`events_api`], the generic `POST /api/v1/events` endpoint through which any
//! producer can write records in Argus' own schema (see `schemas/json/`), and
//! [`exposition`], the parser of the Prometheus text and OpenMetrics formats that the
//! scraper (not yet written) will use. The protocol-specific collectors (scrape, remote
//! write, Loki push, syslog, node problems, security findings) are separate modules
//! beside it.

mod error;
pub mod events_api;
pub mod exposition;
pub mod metrics;

pub use error::IngestError;
