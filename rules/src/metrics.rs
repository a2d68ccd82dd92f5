//! The rule engine's own metrics, all declared here.
