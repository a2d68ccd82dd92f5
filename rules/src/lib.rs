//! The rule engine: Prometheus-format alerting and recording rules over metrics
//! (PromQL) and logs and events (LogQL), the alert state machine, silences and
//! inhibition, and the Prometheus and Alertmanager HTTP APIs.

pub mod alert;
pub mod alert_feed;
pub mod alert_store;
pub mod am_api;
pub mod config;
pub mod error;
pub mod group;
pub mod inhibit;
pub mod metrics;
pub mod prom_api;
pub mod promql;
pub mod rulefile;
pub mod service;
pub mod silences;
pub mod template;
pub mod tools;
pub mod window;

pub use error::RulesError;
