//! The rule engine: Prometheus-format alerting and recording rules over metrics
//! (PromQL) and logs and events (LogQL), the alert state machine, silences and
//! inhibition, and the Prometheus and Alertmanager HTTP APIs.

pub mod error;
pub mod metrics;

pub use error::RulesError;
