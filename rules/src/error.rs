//! The crate's one error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RulesError {
    /// A PromQL or LogQL expression that does not parse.
    #[error("{0}")]
    Parse(String),
    /// A query that parses but cannot be evaluated as written.
    #[error("{0}")]
    Eval(String),
    /// A bad request parameter, with the text Prometheus/Alertmanager give.
    #[error("{0}")]
    BadRequest(String),
    #[error("bus: {0}")]
    Bus(#[from] argus_bus::BusError),
    #[error("query: {0}")]
    Query(#[from] argus_query::QueryError),
}
