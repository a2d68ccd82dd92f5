//! The system log monitor: matches log records against a configuration's rules and
//! keeps its conditions, with NPD's semantics (`pkg/systemlogmonitor`).
//!
//! - **Window.** Each record's message is pushed into a ring of the last `bufferSize`
//!   messages (default 10). Every rule's pattern, compiled as `pattern\z`, is searched in
//!   the ring joined with `"\n"` (oldest first, not-yet-filled slots as empty lines, as
//!   NPD). So a pattern matches when it ends exactly at the end of the newest message; it
//!   may start anywhere before, which lets one pattern span several lines. Each record
//!   is matched once, when it arrives, so a single line is reported once.
//! - **Matched text.** The lines covered from the line where the match starts to the
//!   newest one, joined with `"\n"`, are the event's message (plus `"; {suffix}"` when a
//!   rule has `patternGeneratedMessageSuffix`); the first of them gives the event time.
//!   NPD does not truncate these messages, and neither does this.
//! - **Temporary rules** emit a `warn` event of kind `temporary` on every match.
//! - **Permanent rules** set their condition to `True`, and emit a `warn` event of kind
//!   `permanent` with the condition, only when the condition was `False` or had another
//!   reason: a second match with the same reason changes nothing. Conditions are never
//!   cleared by a log monitor (NPD clears them on restart only).
//! - **Start.** [`LogMonitor::start`] resets the conditions to the defaults (`False`) and
//!   emits one `info` event per default condition. NPD sends these as a status without
//!   events; Argus has no separate condition stream, so they are events here.
//! - **skipList**: messages containing any of its strings are ignored before the window.

use argus_schemas::{
    ConditionStatus, NodeCondition, NodeEvent, NodeEventSeverity, ProblemKind, Timestamp,
};

use super::NodeProblem;
use super::config::{LogMonitorConfig, LogRule, RuleType};
use super::source::{LogRecord, LogSource};
use crate::metrics;

/// The last `bufferSize` messages; NPD's `logBuffer`.
#[derive(Debug, Clone)]
pub(crate) struct LogBuffer {
    records: Vec<Option<LogRecord>>,
    /// How many records were pushed in total; the next slot is `current % max`.
    current: usize,
}

impl LogBuffer {
    pub(crate) fn new(max: usize) -> Self {
        LogBuffer {
            records: vec![None; max.max(1)],
            current: 0,
        }
    }

    fn max(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn push(&mut self, rec: LogRecord) {
        let i = self.current % self.max();
        self.records[i] = Some(rec);
        self.current += 1;
    }

    /// Oldest first; empty slots as empty strings.
    fn joined(&self) -> String {
        let head = self.current % self.max();
        fn msg(r: &Option<LogRecord>) -> &str {
            r.as_ref().map(|r| r.message.as_str()).unwrap_or("")
        }
        let mut parts: Vec<&str> = Vec::with_capacity(self.max());
        parts.extend(self.records[head..].iter().map(msg));
        parts.extend(self.records[..head].iter().map(msg));
        parts.join("\n")
    }

    /// The records a match covers, oldest first, or nothing when it does not match.
    pub(crate) fn matches(&self, joined: &str, rule: &LogRule) -> Vec<&LogRecord> {
        let Some(m) = rule.regex.find(joined) else {
            return Vec::new();
        };
        // Bytes from the match start to the end of the window, as NPD counts them.
        let span = joined.len() as isize - m.start() as isize - 1;
        let mut total: isize = 0;
        let mut out = Vec::new();
        let max = self.max();
        for i in (self.current..self.current + max).rev() {
            let Some(rec) = self.records[i % max].as_ref() else {
                break;
            };
            out.push(rec);
            total += rec.message.len() as isize + 1;
            if total > span {
                break;
            }
        }
        out.reverse();
        out
    }
}

/// Every configured condition at its default: `False`, with its default reason and
/// message, as NPD starts a monitor.
pub(crate) fn default_states(
    defaults: &[super::config::DefaultCondition],
    now: Timestamp,
) -> Vec<ConditionState> {
    defaults
        .iter()
        .map(|d| ConditionState {
            condition_type: d.condition_type.clone(),
            status: ConditionStatus::False,
            reason: d.reason.clone(),
            message: d.message.clone(),
            transition: now,
        })
        .collect()
}

/// The state of one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionState {
    pub condition_type: String,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    pub transition: Timestamp,
}

/// One system log monitor (one configuration file) on one node.
#[derive(Debug, Clone)]
pub struct LogMonitor {
    config: LogMonitorConfig,
    node: String,
    buffer: LogBuffer,
    conditions: Vec<ConditionState>,
}

impl LogMonitor {
    /// A monitor for `node` (the node name from configuration, or the host name).
    pub fn new(config: LogMonitorConfig, node: impl Into<String>) -> Self {
        let buffer = LogBuffer::new(config.buffer_size);
        let mut m = LogMonitor {
            config,
            node: node.into(),
            buffer,
            conditions: Vec::new(),
        };
        m.reset_conditions(Timestamp(0));
        m
    }

    pub fn config(&self) -> &LogMonitorConfig {
        &self.config
    }

    pub fn conditions(&self) -> &[ConditionState] {
        &self.conditions
    }

    fn reset_conditions(&mut self, now: Timestamp) {
        self.conditions = default_states(&self.config.conditions, now);
    }

    /// Starts (or restarts) the monitor: every condition back to its default, `False`,
    /// and one event per default condition.
    pub fn start(&mut self, now: Timestamp) -> Vec<NodeProblem> {
        self.reset_conditions(now);
        self.buffer = LogBuffer::new(self.config.buffer_size);
        let mut out = Vec::with_capacity(self.conditions.len());
        for c in &self.conditions {
            if self.config.metrics_reporting {
                metrics::NODE_PROBLEM_CONDITION
                    .with_label_values(&[&self.config.source, &c.condition_type, &c.reason])
                    .set(0);
            }
            out.push(NodeProblem {
                event_time: now,
                event: NodeEvent {
                    node: self.node.clone(),
                    monitor: self.config.source.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    severity: NodeEventSeverity::Info,
                    kind: ProblemKind::Permanent,
                    condition: Some(NodeCondition {
                        condition_type: c.condition_type.clone(),
                        status: ConditionStatus::False,
                        transition: now,
                    }),
                },
            });
        }
        out
    }

    /// Matches one record against every rule, in the configuration's order.
    pub fn observe(&mut self, rec: LogRecord) -> Vec<NodeProblem> {
        if self
            .config
            .skip_list
            .iter()
            .any(|s| rec.message.contains(s.as_str()))
        {
            return Vec::new();
        }
        if self.config.metrics_reporting {
            metrics::NODE_LOG_RECORDS
                .with_label_values(&[&self.config.source])
                .inc();
        }
        self.buffer.push(rec);
        let joined = self.buffer.joined();
        let mut out = Vec::new();
        for rule in &self.config.rules {
            let matched = self.buffer.matches(&joined, rule);
            let Some(first) = matched.first() else {
                continue;
            };
            let timestamp = first.timestamp;
            let mut message = matched
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            if !rule.message_suffix.is_empty() {
                message = format!("{message}; {}", rule.message_suffix);
            }
            match rule.rule_type {
                RuleType::Temporary => out.push(NodeProblem {
                    event_time: timestamp,
                    event: NodeEvent {
                        node: self.node.clone(),
                        monitor: self.config.source.clone(),
                        reason: rule.reason.clone(),
                        message,
                        severity: NodeEventSeverity::Warn,
                        kind: ProblemKind::Temporary,
                        condition: None,
                    },
                }),
                RuleType::Permanent => {
                    let Some(c) = self
                        .conditions
                        .iter_mut()
                        .find(|c| c.condition_type == rule.condition)
                    else {
                        continue;
                    };
                    if c.status == ConditionStatus::True && c.reason == rule.reason {
                        continue;
                    }
                    if self.config.metrics_reporting {
                        metrics::NODE_PROBLEM_CONDITION
                            .with_label_values(&[&self.config.source, &c.condition_type, &c.reason])
                            .set(0);
                        metrics::NODE_PROBLEM_CONDITION
                            .with_label_values(&[
                                &self.config.source,
                                &c.condition_type,
                                &rule.reason,
                            ])
                            .set(1);
                    }
                    c.status = ConditionStatus::True;
                    c.reason = rule.reason.clone();
                    c.message = message.clone();
                    c.transition = timestamp;
                    out.push(NodeProblem {
                        event_time: timestamp,
                        event: NodeEvent {
                            node: self.node.clone(),
                            monitor: self.config.source.clone(),
                            reason: rule.reason.clone(),
                            message,
                            severity: NodeEventSeverity::Warn,
                            kind: ProblemKind::Permanent,
                            condition: Some(NodeCondition {
                                condition_type: rule.condition.clone(),
                                status: ConditionStatus::True,
                                transition: timestamp,
                            }),
                        },
                    });
                }
            }
        }
        if self.config.metrics_reporting {
            for p in &out {
                metrics::NODE_PROBLEMS
                    .with_label_values(&[&self.config.source, &p.event.reason])
                    .inc();
            }
        }
        out
    }

    /// Reads a source to its end, returning every event in order.
    pub fn observe_all(&mut self, source: &mut dyn LogSource) -> std::io::Result<Vec<NodeProblem>> {
        let mut out = Vec::new();
        while let Some(rec) = source.next_record()? {
            out.extend(self.observe(rec));
        }
        Ok(out)
    }
}
