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
    /// A thing asked for by id that does not exist (Alertmanager: "silence not found").
    #[error("{0}")]
    NotFound(String),
    /// Bad configuration or rule files (rule file errors one per line, as
    /// `file:line:col: message`).
    #[error("{0}")]
    Config(String),
    #[error("bus: {0}")]
    Bus(#[from] argus_bus::BusError),
    #[error("query: {0}")]
    Query(#[from] argus_query::QueryError),
}
