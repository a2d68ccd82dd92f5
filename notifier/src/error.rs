//! The crate's one error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NotifierError {
    /// Bad configuration: names the field or receiver and what is wrong with it.
    #[error("{0}")]
    Config(String),
    /// A template that does not parse or fails to execute.
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("bus: {0}")]
    Bus(#[from] argus_bus::BusError),
    #[error("rules: {0}")]
    Rules(#[from] argus_rules::RulesError),
}
