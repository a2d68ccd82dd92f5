//! Collectors: everything that brings data into the event log. One module per
//! protocol or source:
//!
//! - [`events_api`]: `POST /api/v1/events`, records in Argus' own schema (`schemas/json/`);
//! - [`loki_push`]: Loki's push API (JSON and snappy protobuf);
//! - [`remote_write`]: Prometheus remote write 1.0 (`POST /api/v1/write`);
//! - [`findings`]: Falco, Trivy and Clair receivers (`/api/v1/findings/*`) and the
//!   running-images map;
//! - [`exposition`]: the Prometheus text / OpenMetrics parser the scraper uses;
//! - [`node_problems`]: node-problem-detector's kernel-log and custom-plugin monitors, as
//!   a library (not yet run by the binary);
//! - [`syslog`]: the syslog receiver (RFC 5424 / RFC 3164 over UDP and TCP);
//! - [`tail`]: file tailing (globs, rotation, copytruncate, positions file, multiline);
//! - [`scrape`]: the Prometheus scraper (`scrape_configs`: static and file discovery,
//!   relabeling, staleness, report series);
//! - [`body`]: request decoding shared by the HTTP collectors.
//!
//! Not yet written: disk buffering.

pub mod body;
mod error;
pub mod events_api;
pub mod exposition;
pub mod findings;
pub mod loki_push;
pub mod metrics;
pub mod node_problems;
pub mod remote_write;
pub mod scrape;
pub mod syslog;
pub mod tail;

pub use error::IngestError;
