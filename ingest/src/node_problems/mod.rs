//! Node problem monitors: what node-problem-detector (NPD) does on a node.
//!
//! This module owns reading NPD's monitor configuration files as they are
//! ([`config`]), the defaults Argus ships in that format ([`defaults`]), reading the
//! kernel log ([`source`]), matching it with NPD's log-monitor semantics ([`monitor`]),
//! running NPD-style check plugins ([`custom`]), and turning what they find into
//! [`argus_schemas::NodeEvent`]s and [`Envelope`]s. [`runner`] runs them as a collector
//! (the `node_problems` configuration: which monitors, where logs come from, publishing
//! to the event log), with the [`health`] checks of the kubelet, container runtime and
//! time sync.
//!
//! NPD semantics mirrored, from NPD's source (`pkg/systemlogmonitor`,
//! `pkg/custompluginmonitor`):
//!
//! - a rule's pattern is compiled as `pattern\z` and searched in the last `bufferSize`
//!   (default 10) messages joined by `"\n"`: it must end at the end of the newest message,
//!   may start anywhere (so multi-line patterns work), and the event message is the
//!   covered lines joined by `"\n"`, untruncated (NPD does not truncate log-monitor
//!   messages; custom plugin output is cut to `max_output_length`, default 80);
//! - temporary rules emit a `warn` event per match; permanent rules set their condition
//!   to True once (again only if the reason changes), and a start emits every default
//!   condition as False;
//! - plugins: exit 0 OK, 1 NonOK, anything else Unknown; a timeout kills the process
//!   group.
//!
//! See each submodule for the details and the few deliberate divergences.

pub mod config;
pub mod custom;
pub mod defaults;
pub mod health;
pub mod monitor;
pub mod runner;
pub mod source;

use argus_schemas::{Envelope, NodeEvent, Payload, Timestamp};

pub use config::{
    ConfigError, CustomPluginConfig, LogMonitorConfig, MonitorConfig, parse_custom_plugin_config,
    parse_log_monitor_config, parse_monitor_config,
};
pub use custom::{CustomPluginMonitor, PluginResult, PluginStatus, run_plugin};
pub use health::HealthChecksConfig;
pub use monitor::{ConditionState, LogMonitor};
pub use runner::{NodeProblemsConfig, NodeProblemsRunner};
pub use source::{KmsgSource, LineClock, LineSource, LogRecord, LogSource};

/// A node event and when it happened (the log timestamp, or the plugin run's time).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeProblem {
    pub event_time: Timestamp,
    pub event: NodeEvent,
}

impl NodeProblem {
    /// The record to write: source = the monitor's name, event time = the log's time.
    pub fn to_envelope(&self, tenant: &str) -> Envelope {
        Envelope::new(
            tenant,
            self.event.monitor.clone(),
            self.event_time,
            Payload::NodeEvent(self.event.clone()),
        )
    }
}

/// Wraps node problems in envelopes for `tenant`.
pub fn to_envelopes(problems: &[NodeProblem], tenant: &str) -> Vec<Envelope> {
    problems.iter().map(|p| p.to_envelope(tenant)).collect()
}
