//! The custom plugin monitor: runs check commands and turns their exit codes into node
//! events and conditions, with NPD's semantics (`pkg/custompluginmonitor`).
//!
//! - **Running** ([`run_plugin`]): the command runs in its own process group with the
//!   rule's timeout when shorter than the global one, else the global one. Up to 4 KiB of
//!   stdout is kept (stderr is read and logged at debug level); the output is trimmed and
//!   cut to `max_output_length` bytes (default 80). Exit code 0 is OK, 1 is NonOK,
//!   anything else (2, other codes, death by a signal, failure to start) is Unknown. On
//!   timeout the whole group is killed and the output becomes NPD's
//!   `Timeout when running plugin "<path>": state - signal: killed. output - "<output>"`
//!   (the status is then Unknown, as Go reports -1 for a killed process).
//! - **Temporary rules** emit a `warn` event when the status is NonOK or Unknown.
//! - **Permanent rules** move their condition: NonOK → True (reason the rule's, message
//!   the output); OK → False (the default reason and message); Unknown → Unknown (default
//!   reason, the output as message). An event is emitted only on a change of status, or
//!   of reason while True (or of message, with
//!   `enable_message_change_based_condition_update`). Events to True are `warn`, others
//!   `info`.
//! - **Start** emits the default conditions as `False` unless `skip_initial_status`.
//!
//! Scheduling (`invoke_interval`, per rule or global) is the caller's:
//! [`CustomPluginMonitor::run_once`] runs every rule once, `concurrency` at a time.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use argus_schemas::{
    ConditionStatus, NodeCondition, NodeEvent, NodeEventSeverity, ProblemKind, Timestamp,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::NodeProblem;
use super::config::{CustomPluginConfig, PluginRule, RuleType};
use super::monitor::ConditionState;
use crate::metrics;

/// How much of a plugin's stdout and stderr is kept (NPD's `maxCustomPluginBufferBytes`).
pub const MAX_PLUGIN_OUTPUT_BYTES: usize = 4096;

/// A plugin's verdict, from its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginStatus {
    /// Exit code 0.
    Ok,
    /// Exit code 1.
    NonOk,
    /// Any other exit code, a signal, a timeout, or a failure to start.
    Unknown,
}

impl PluginStatus {
    pub fn from_exit_code(code: Option<i32>) -> Self {
        match code {
            Some(0) => PluginStatus::Ok,
            Some(1) => PluginStatus::NonOk,
            _ => PluginStatus::Unknown,
        }
    }

    fn condition_status(self) -> ConditionStatus {
        match self {
            PluginStatus::Ok => ConditionStatus::False,
            PluginStatus::NonOk => ConditionStatus::True,
            PluginStatus::Unknown => ConditionStatus::Unknown,
        }
    }
}

/// The result of one run of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginResult {
    pub status: PluginStatus,
    /// Trimmed stdout, cut to `max_output_length`.
    pub output: String,
}

/// Runs one plugin command, as NPD's `plugin.run`.
pub async fn run_plugin(
    path: &str,
    args: &[String],
    timeout: Duration,
    max_output_length: usize,
) -> PluginResult {
    let mut cmd = tokio::process::Command::new(path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(plugin = path, error = %e, "custom plugin failed to start");
            return PluginResult {
                status: PluginStatus::Unknown,
                output: cut(
                    "Error in starting plugin. Please check the error log",
                    max_output_length,
                ),
            };
        }
    };
    let stdout = child.stdout.take().map(|s| tokio::spawn(read_limited(s)));
    let stderr = child.stderr.take().map(|s| tokio::spawn(read_limited(s)));

    let (exit, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(r) => (r, false),
        Err(_) => {
            kill_group(&mut child);
            (child.wait().await, true)
        }
    };
    let output = collect(stdout).await;
    let errors = collect(stderr).await;
    if !errors.is_empty() {
        tracing::debug!(plugin = path, stderr = %errors.trim(), "custom plugin stderr");
    }
    let exit = match exit {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(plugin = path, error = %e, "waiting for custom plugin failed");
            return PluginResult {
                status: PluginStatus::Unknown,
                output: cut(
                    "Error in waiting for plugin. Please check the error log",
                    max_output_length,
                ),
            };
        }
    };
    let mut output = output.trim().to_string();
    let status = if timed_out {
        output = format!(
            "Timeout when running plugin {path:?}: state - signal: killed. output - {output:?}"
        );
        PluginStatus::Unknown
    } else {
        PluginStatus::from_exit_code(exit.code())
    };
    PluginResult {
        status,
        output: cut(&output, max_output_length),
    }
}

/// Kills the plugin's whole process group (NPD: `kill(-pid, SIGKILL)`), so that children
/// holding its output pipes die too.
fn kill_group(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions; the group is the one the
        // child leads (process_group(0) above), and the child is not yet reaped.
        let rc = unsafe { libc::kill(-pid, libc::SIGKILL) };
        if rc == 0 {
            return;
        }
    }
    let _ = child.start_kill();
}

async fn read_limited<R: AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_PLUGIN_OUTPUT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// Waits for a reader briefly: a grandchild that left the process group may still hold
/// the pipe open, and that must not hang the monitor.
async fn collect(task: Option<tokio::task::JoinHandle<Vec<u8>>>) -> String {
    let Some(mut task) = task else {
        return String::new();
    };
    match tokio::time::timeout(Duration::from_secs(1), &mut task).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(Err(_)) => String::new(),
        Err(_) => {
            task.abort();
            String::new()
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Aborts the plugin runs of a [`CustomPluginMonitor::run_rules`] call that is dropped.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// One custom plugin monitor (one configuration file) on one node.
#[derive(Debug, Clone)]
pub struct CustomPluginMonitor {
    config: Arc<CustomPluginConfig>,
    node: String,
    conditions: Vec<ConditionState>,
}

impl CustomPluginMonitor {
    pub fn new(config: CustomPluginConfig, node: impl Into<String>) -> Self {
        let mut m = CustomPluginMonitor {
            config: Arc::new(config),
            node: node.into(),
            conditions: Vec::new(),
        };
        m.reset(Timestamp(0));
        m
    }

    pub fn config(&self) -> &CustomPluginConfig {
        &self.config
    }

    pub fn conditions(&self) -> &[ConditionState] {
        &self.conditions
    }

    fn reset(&mut self, now: Timestamp) {
        self.conditions = super::monitor::default_states(&self.config.conditions, now);
    }

    fn event(
        &self,
        now: Timestamp,
        reason: &str,
        message: &str,
        severity: NodeEventSeverity,
        kind: ProblemKind,
        condition: Option<NodeCondition>,
    ) -> NodeProblem {
        NodeProblem {
            event_time: now,
            event: NodeEvent {
                node: self.node.clone(),
                monitor: self.config.source.clone(),
                reason: reason.to_string(),
                message: message.to_string(),
                severity,
                kind,
                condition,
            },
        }
    }

    /// Resets the conditions to their defaults; emits them unless `skip_initial_status`.
    pub fn start(&mut self, now: Timestamp) -> Vec<NodeProblem> {
        self.reset(now);
        if self.config.skip_initial_status {
            return Vec::new();
        }
        self.conditions
            .iter()
            .map(|c| {
                self.event(
                    now,
                    &c.reason,
                    &c.message,
                    NodeEventSeverity::Info,
                    ProblemKind::Permanent,
                    Some(NodeCondition {
                        condition_type: c.condition_type.clone(),
                        status: ConditionStatus::False,
                        transition: now,
                    }),
                )
            })
            .collect()
    }

    /// Applies the result of rule `rule_index`'s run at `now`.
    pub fn observe(
        &mut self,
        rule_index: usize,
        result: &PluginResult,
        now: Timestamp,
    ) -> Vec<NodeProblem> {
        let Some(rule) = self.config.rules.get(rule_index).cloned() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match rule.rule_type {
            RuleType::Temporary => {
                if result.status != PluginStatus::Ok {
                    out.push(self.event(
                        now,
                        &rule.reason,
                        &result.output,
                        NodeEventSeverity::Warn,
                        ProblemKind::Temporary,
                        None,
                    ));
                }
            }
            RuleType::Permanent => {
                if let Some(p) = self.apply_permanent(&rule, result, now) {
                    out.push(p);
                }
            }
        }
        if self.config.metrics_reporting {
            for p in &out {
                if p.event.severity == NodeEventSeverity::Warn {
                    metrics::NODE_PROBLEMS
                        .with_label_values(&[&self.config.source, &p.event.reason])
                        .inc();
                }
            }
        }
        out
    }

    fn apply_permanent(
        &mut self,
        rule: &PluginRule,
        result: &PluginResult,
        now: Timestamp,
    ) -> Option<NodeProblem> {
        let default = self
            .config
            .conditions
            .iter()
            .find(|d| d.condition_type == rule.condition)?
            .clone();
        let message_updates = self.config.enable_message_change_based_condition_update;
        let c = self
            .conditions
            .iter_mut()
            .find(|c| c.condition_type == rule.condition)?;
        let status = result.status.condition_status();
        let (reason, message) =
            if c.status == ConditionStatus::True && status != ConditionStatus::True {
                let msg = if status == ConditionStatus::False {
                    default.message.clone()
                } else {
                    result.output.clone()
                };
                (default.reason.clone(), msg)
            } else if c.status != ConditionStatus::True && status == ConditionStatus::True {
                (rule.reason.clone(), result.output.clone())
            } else if c.status != status {
                let msg = if status == ConditionStatus::False {
                    default.message.clone()
                } else {
                    result.output.clone()
                };
                (default.reason.clone(), msg)
            } else if c.status == ConditionStatus::True
                && status == ConditionStatus::True
                && (c.reason != rule.reason || (message_updates && c.message != result.output))
            {
                (rule.reason.clone(), result.output.clone())
            } else {
                return None;
            };
        if self.config.metrics_reporting {
            metrics::NODE_PROBLEM_CONDITION
                .with_label_values(&[&self.config.source, &c.condition_type, &c.reason])
                .set(0);
            metrics::NODE_PROBLEM_CONDITION
                .with_label_values(&[&self.config.source, &c.condition_type, &reason])
                .set(i64::from(status == ConditionStatus::True));
        }
        c.status = status;
        c.reason = reason.clone();
        c.message = message.clone();
        c.transition = now;
        let condition = NodeCondition {
            condition_type: c.condition_type.clone(),
            status,
            transition: now,
        };
        let severity = if status == ConditionStatus::True {
            NodeEventSeverity::Warn
        } else {
            NodeEventSeverity::Info
        };
        Some(self.event(
            now,
            &reason,
            &message,
            severity,
            ProblemKind::Permanent,
            Some(condition),
        ))
    }

    /// Runs every rule once (`concurrency` at a time) and applies the results in the
    /// configuration's order, stamped with the time each run finished.
    pub async fn run_once(&mut self) -> Vec<NodeProblem> {
        let indexes: Vec<usize> = (0..self.config.rules.len()).collect();
        self.run_rules(&indexes).await
    }

    /// Runs the given rules once (e.g. those of one `invoke_interval`).
    pub async fn run_rules(&mut self, indexes: &[usize]) -> Vec<NodeProblem> {
        let sem = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = Vec::new();
        for &i in indexes {
            let Some(rule) = self.config.rules.get(i) else {
                continue;
            };
            let cfg = Arc::clone(&self.config);
            let rule = rule.clone();
            let sem = Arc::clone(&sem);
            tasks.push((
                i,
                tokio::spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    let r = run_plugin(
                        &rule.path,
                        &rule.args,
                        cfg.rule_timeout(&rule),
                        cfg.max_output_length,
                    )
                    .await;
                    (r, Timestamp::now())
                }),
            ));
        }
        // Dropping this future (a shutdown) stops the runs, whose children are killed.
        let _abort = AbortOnDrop(tasks.iter().map(|(_, t)| t.abort_handle()).collect());
        let mut out = Vec::new();
        for (i, task) in tasks {
            let (result, at) = match task.await {
                Ok(r) => r,
                Err(e) => (
                    PluginResult {
                        status: PluginStatus::Unknown,
                        output: cut(
                            &format!("plugin task failed: {e}"),
                            self.config.max_output_length,
                        ),
                    },
                    Timestamp::now(),
                ),
            };
            out.extend(self.observe(i, &result, at));
        }
        out
    }
}
