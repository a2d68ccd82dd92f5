//! The rule engine: Prometheus-format alerting and recording rules over metrics
//! (PromQL) and logs and events (LogQL), the alert state machine, silences and
//! inhibition. Empty until its issue lands; the crate exists so the workspace has the
//! layout the architecture names.
