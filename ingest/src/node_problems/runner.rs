//! Runs the node problem monitors as a collector: the `node_problems` configuration,
//! the kernel-log and log-file followers, the schedules of custom plugins and health
//! checks, and publishing what they find to the event log.
//!
//! **Monitors.** With `defaults` (the default) the shipped `kernel-monitor` and
//! `readonly-monitor` run; `monitor_configs` adds node-problem-detector (NPD) JSON files
//! as NPD reads them (system log monitors and custom plugin monitors). Two monitors with
//! one `source` are refused (loading NPD's `kernel-monitor.json` on top of the defaults
//! would report everything twice: set `defaults: false` to replace them). Where logs
//! come from, by the monitor's `plugin`:
//! - `kmsg`: the kernel log, `kernel_log`. By default `/dev/kmsg` when it can be opened
//!   for reading, else `/var/log/kern.log`. A character device is read as `/dev/kmsg`
//!   (one record per read, non-blocking, boot-relative times turned into wall time); any
//!   other path is a file followed like `tail -F`, whose lines may be kmsg records
//!   (`6,339,5140900,-;message`, e.g. a saved `/dev/kmsg` dump), syslog lines
//!   (`Nov 25 10:00:00 host kernel: [  123.456] message`, kern.log) or dmesg lines
//!   (`[  123.456] message`), detected line by line. The monitor's `logPath` is not used.
//! - `filelog`: the monitor's `logPath`, followed like `tail -F`, its lines split with
//!   the monitor's `pluginConfig.message` regex, as NPD.
//! - `journald`: **not supported**; such a monitor (the shipped `docker-monitor`, whose
//!   events come from dockerd's journal) is not run, which is logged at start and
//!   counted in `argus_ingest_node_problem_source_errors_total{reason="unsupported_plugin"}`.
//!
//! **Where reading starts.** A source is read from its end when the runner starts: only
//! what is logged afterwards is matched (NPD's `lookback`, which replays the last
//! minutes of the kernel log, is not implemented, and neither is `delay`). A file that
//! did not exist at start is read from its beginning when it appears, as is the new file
//! after a rotation (the old one is still read through its open descriptor, every poll
//! until one finds nothing new: its writer may not have reopened yet), and a file
//! shorter than what was read (copytruncate) is read again from 0.
//! `/dev/kmsg` records overwritten before they were read are counted
//! (`reason="kmsg_overrun"`).
//!
//! **Events.** At start every monitor publishes its default conditions as `False` (NPD's
//! initial status), custom plugins and health checks included; then log records are fed
//! to the log monitors in order (each record to each monitor of its source, in
//! configuration order), custom plugin rules run at once and then every
//! `invoke_interval`, and health checks ([`super::health`]) every `interval`. Everything
//! is published as [`NodeProblem::to_envelope`] records of the configured tenant, in the
//! order found per source, keyed by node.
//!
//! **Failures** never stop the runner. A source that cannot be opened or read is logged
//! once (and again when it recovers), counted in
//! `argus_ingest_node_problem_source_errors_total`, shown by
//! `argus_ingest_node_problem_source_readable`, and retried every `poll_interval`.
//! While the event log refuses, events are held and retried with backoff (the monitors
//! wait, up to a bounded queue). On shutdown the monitors stop at once (running plugins
//! are killed) and what was found is published for up to 5 s more.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use argus_schemas::duration::serde_duration;
use argus_schemas::{ConditionStatus, Envelope, Timestamp};

use super::config::{CustomPluginConfig, LogMonitorConfig, LogPlugin, MonitorConfig};
use super::health::{HealthCheck, HealthChecksConfig};
use super::source::{KmsgSource, LineClock, LineSource, LogRecord, LogSource, parse_kmsg_line};
use super::{CustomPluginMonitor, LogMonitor, NodeProblem, defaults, parse_monitor_config};
use crate::IngestError;
use crate::metrics;

const COLLECTOR: &str = "node_problems";
const DEV_KMSG: &str = "/dev/kmsg";
const KERN_LOG: &str = "/var/log/kern.log";
/// Most bytes read from one file per poll (the rest is read at once after).
const MAX_BYTES_PER_POLL: usize = 1 << 20;
/// Most `/dev/kmsg` records read per poll.
const MAX_RECORDS_PER_POLL: usize = 10_000;
/// A line longer than this is cut (the kernel's own records are at most 1 KiB).
const MAX_LINE: usize = 64 * 1024;
/// Events queued for the publisher before the monitors wait.
const QUEUE: usize = 256;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// `node_problems:` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeProblemsConfig {
    /// The node name of every event. Default: this machine's host name.
    #[serde(default = "default_node")]
    pub node: String,
    /// Tenant of every record. Default `default`.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Run the shipped `kernel-monitor` and `readonly-monitor` (and `docker-monitor`,
    /// which needs journald and is skipped). Default `true`.
    #[serde(default = "default_true")]
    pub defaults: bool,
    /// NPD monitor configuration files (system log and custom plugin monitors), read as
    /// NPD reads them. Default: none.
    #[serde(default)]
    pub monitor_configs: Vec<PathBuf>,
    /// The kernel log fed to `kmsg` monitors: `/dev/kmsg` or a file followed like
    /// `tail -F`. Default: `/dev/kmsg` when readable, else `/var/log/kern.log`.
    #[serde(default)]
    pub kernel_log: Option<PathBuf>,
    /// How often log files and `/dev/kmsg` are read, and unreadable ones retried.
    /// Default `500ms`.
    #[serde(default = "default_poll_interval", with = "serde_duration")]
    pub poll_interval: Duration,
    /// Health checks of the kubelet, the container runtime and time sync; each runs
    /// when its section is present. Default: none.
    #[serde(default)]
    pub health_checks: HealthChecksConfig,
}

impl Default for NodeProblemsConfig {
    fn default() -> Self {
        NodeProblemsConfig {
            node: default_node(),
            tenant: default_tenant(),
            defaults: default_true(),
            monitor_configs: Vec::new(),
            kernel_log: None,
            poll_interval: default_poll_interval(),
            health_checks: HealthChecksConfig::default(),
        }
    }
}

fn default_node() -> String {
    hostname()
}
fn default_tenant() -> String {
    argus_schemas::DEFAULT_TENANT.into()
}
fn default_true() -> bool {
    true
}
fn default_poll_interval() -> Duration {
    Duration::from_millis(500)
}

/// This machine's host name (`gethostname(2)`), or `localhost` when it has none.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid and writable for its whole length, which is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
        if !name.is_empty() {
            return name;
        }
    }
    "localhost".into()
}

fn config_err(msg: impl std::fmt::Display) -> IngestError {
    IngestError::BadRequest(format!("node_problems: invalid configuration: {msg}"))
}

/// How a source's lines become records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupKind {
    /// kmsg records, syslog or dmesg lines, detected per line.
    Kernel,
    /// Each monitor's own `filelog` parsing.
    Filelog,
}

/// Where a group's records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceSpec {
    Kmsg(PathBuf),
    File(PathBuf),
}

impl SourceSpec {
    fn path(&self) -> &Path {
        match self {
            SourceSpec::Kmsg(p) | SourceSpec::File(p) => p,
        }
    }
}

/// The log monitors fed from one source.
#[derive(Debug)]
struct Group {
    kind: GroupKind,
    /// `None` for the kernel log until it is resolved at start.
    source: Option<SourceSpec>,
    monitors: Vec<LogMonitorConfig>,
}

/// The validated configuration.
#[derive(Debug)]
struct Settings {
    node: String,
    tenant: String,
    poll_interval: Duration,
    groups: Vec<Group>,
    custom: Vec<CustomPluginConfig>,
    health: Vec<HealthCheck>,
    /// Monitors not run: (source, why).
    unsupported: Vec<(String, String)>,
}

impl NodeProblemsConfig {
    /// Checks every field and reads every monitor configuration; the error names the
    /// key or the file and field.
    pub fn validate(&self) -> Result<(), IngestError> {
        self.settings().map(|_| ())
    }

    fn settings(&self) -> Result<Settings, IngestError> {
        if self.node.trim().is_empty() {
            return Err(config_err("`node`: empty"));
        }
        argus_schemas::validate_tenant(&self.tenant)
            .map_err(|m| config_err(format!("`tenant`: {:?}: {m}", self.tenant)))?;
        if self.poll_interval.is_zero() {
            return Err(config_err("`poll_interval`: must be more than 0"));
        }
        if let Some(p) = &self.kernel_log
            && p.as_os_str().is_empty()
        {
            return Err(config_err("`kernel_log`: empty"));
        }
        let health = self.health_checks.checks().map_err(config_err)?;

        let mut loaded: Vec<(String, MonitorConfig)> = Vec::new();
        if self.defaults {
            for (name, json) in defaults::ALL {
                let cfg = parse_monitor_config(name, json).map_err(config_err)?;
                loaded.push((format!("shipped {name}"), cfg));
            }
        }
        for (i, path) in self.monitor_configs.iter().enumerate() {
            let text = std::fs::read_to_string(path).map_err(|e| {
                config_err(format!("`monitor_configs[{i}]`: {}: {e}", path.display()))
            })?;
            let cfg = parse_monitor_config(&path.display().to_string(), &text)
                .map_err(|e| config_err(format!("`monitor_configs[{i}]`: {e}")))?;
            loaded.push((format!("`monitor_configs[{i}]` ({})", path.display()), cfg));
        }

        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut kernel = Group {
            kind: GroupKind::Kernel,
            source: self.kernel_log.clone().map(classify_kernel_log),
            monitors: Vec::new(),
        };
        let mut files: Vec<Group> = Vec::new();
        let mut custom = Vec::new();
        let mut unsupported = Vec::new();
        for (origin, cfg) in loaded {
            let source = match &cfg {
                MonitorConfig::Log(l) => l.source.clone(),
                MonitorConfig::Custom(c) => c.source.clone(),
            };
            if !seen.insert(source.clone()) {
                return Err(config_err(format!(
                    "{origin}: another monitor already has source {source:?} (with `defaults: true` the shipped kernel-monitor, readonly-monitor and docker-monitor are loaded; set `defaults: false` to replace them)"
                )));
            }
            match cfg {
                MonitorConfig::Custom(c) => custom.push(c),
                MonitorConfig::Log(l) => match l.plugin {
                    LogPlugin::Kmsg => kernel.monitors.push(l),
                    LogPlugin::Journald => unsupported.push((
                        l.source.clone(),
                        "the journald log plugin is not supported".to_string(),
                    )),
                    LogPlugin::Filelog => {
                        if l.log_path.is_empty() {
                            return Err(config_err(format!(
                                "{origin}: logPath: required by the filelog plugin"
                            )));
                        }
                        let path = PathBuf::from(&l.log_path);
                        match files
                            .iter_mut()
                            .find(|g| g.source.as_ref().map(SourceSpec::path) == Some(&path))
                        {
                            Some(g) => g.monitors.push(l),
                            None => files.push(Group {
                                kind: GroupKind::Filelog,
                                source: Some(SourceSpec::File(path)),
                                monitors: vec![l],
                            }),
                        }
                    }
                },
            }
        }
        let mut groups = Vec::new();
        if !kernel.monitors.is_empty() {
            groups.push(kernel);
        }
        groups.extend(files);
        Ok(Settings {
            node: self.node.clone(),
            tenant: self.tenant.clone(),
            poll_interval: self.poll_interval,
            groups,
            custom,
            health,
            unsupported,
        })
    }
}

/// A character device is read as `/dev/kmsg`, anything else (even missing) as a file.
fn classify_kernel_log(path: PathBuf) -> SourceSpec {
    match std::fs::metadata(&path) {
        Ok(m) if m.file_type().is_char_device() => SourceSpec::Kmsg(path),
        _ => SourceSpec::File(path),
    }
}

/// The default kernel log: `/dev/kmsg` when it can be opened, else `/var/log/kern.log`.
fn resolve_default_kernel_log() -> SourceSpec {
    match open_kmsg(Path::new(DEV_KMSG)) {
        Ok(_) => SourceSpec::Kmsg(PathBuf::from(DEV_KMSG)),
        Err(e) => {
            tracing::warn!(error = %e, fallback = KERN_LOG, "node_problems: /dev/kmsg is not readable; following the kernel log file instead");
            SourceSpec::File(PathBuf::from(KERN_LOG))
        }
    }
}

fn open_kmsg(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Wall time of boot: now minus `CLOCK_MONOTONIC`, the clock kernel log stamps count.
// `time_t` and `c_long` are `i64` here but `i32` on 32-bit targets.
#[allow(clippy::unnecessary_cast)]
fn boot_time() -> Timestamp {
    // SAFETY: clock_gettime writes one timespec into the valid struct passed.
    let up = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        if libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) != 0 {
            return Timestamp::now();
        }
        (ts.tv_sec as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as i64)
    };
    Timestamp(Timestamp::now().0.saturating_sub(up))
}

/// What one read of a source gave.
enum Polled {
    /// `/dev/kmsg` records.
    Records(Vec<LogRecord>),
    /// File lines, without their newline.
    Lines(Vec<String>),
}

/// Remembers whether a source is failing, so that it is logged once per episode.
struct Health {
    label: String,
    failing: bool,
}

impl Health {
    fn new(label: String) -> Self {
        metrics::NODE_SOURCE_READABLE
            .with_label_values(&[&label])
            .set(0);
        Health {
            label,
            failing: false,
        }
    }

    fn fail(&mut self, reason: &str, e: &std::io::Error, retry: Duration) {
        if self.failing {
            return;
        }
        self.failing = true;
        metrics::NODE_SOURCE_ERRORS
            .with_label_values(&[&self.label, reason])
            .inc();
        metrics::NODE_SOURCE_READABLE
            .with_label_values(&[&self.label])
            .set(0);
        tracing::error!(source = %self.label, error = %e, reason, retry_every = ?retry, "node_problems: log source cannot be read; retrying");
    }

    fn ok(&mut self) {
        metrics::NODE_SOURCE_READABLE
            .with_label_values(&[&self.label])
            .set(1);
        if self.failing {
            self.failing = false;
            tracing::info!(source = %self.label, "node_problems: log source readable again");
        }
    }
}

/// Reads `/dev/kmsg` without blocking, from the end at the first open.
struct KmsgFollower {
    path: PathBuf,
    file: Option<File>,
    boot: Timestamp,
    health: Health,
    retry: Duration,
    buf: Vec<u8>,
}

impl KmsgFollower {
    fn poll(&mut self) -> (Polled, bool) {
        let mut out = Vec::new();
        if self.file.is_none() {
            match open_kmsg(&self.path).and_then(|mut f| f.seek(SeekFrom::End(0)).map(|_| f)) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    self.health.fail("open_failed", &e, self.retry);
                    return (Polled::Records(out), false);
                }
            }
        }
        self.health.ok();
        let Some(file) = self.file.as_mut() else {
            return (Polled::Records(out), false);
        };
        while out.len() < MAX_RECORDS_PER_POLL {
            match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut src = KmsgSource::new(&self.buf[..n], self.boot);
                    if let Ok(Some(rec)) = src.next_record() {
                        out.push(rec);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    // Records were overwritten before they were read; the next read
                    // continues with the oldest one still there.
                    metrics::NODE_SOURCE_ERRORS
                        .with_label_values(&[&self.health.label, "kmsg_overrun"])
                        .inc();
                    tracing::warn!(source = %self.health.label, "node_problems: kernel log records were overwritten before they could be read");
                }
                Err(e) => {
                    self.health.fail("read_failed", &e, self.retry);
                    self.file = None;
                    break;
                }
            }
        }
        let more = out.len() >= MAX_RECORDS_PER_POLL;
        (Polled::Records(out), more)
    }
}

/// An open followed file.
struct OpenFile {
    file: File,
    dev: u64,
    ino: u64,
    offset: u64,
    /// Bytes after the last newline, held until the line is complete.
    partial: Vec<u8>,
}

impl OpenFile {
    /// Reads to the end of the file (or the per-poll limit): (bytes read, more left).
    fn read_available(&mut self, lines: &mut Vec<String>) -> std::io::Result<(usize, bool)> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0;
        loop {
            if read >= MAX_BYTES_PER_POLL {
                return Ok((read, true));
            }
            let n = match self.file.read_at(&mut buf, self.offset) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok((read, false));
            }
            self.offset += n as u64;
            read += n;
            split_lines(&buf[..n], &mut self.partial, lines);
        }
    }

    /// Reads the file to its end, emits a last unterminated line, and closes it.
    fn finish(mut self, lines: &mut Vec<String>) {
        while let Ok((_, true)) = self.read_available(lines) {}
        flush_partial(&mut self.partial, lines);
    }
}

/// Follows a file like `tail -F`: by path, across rotation and truncation.
struct FileFollower {
    path: PathBuf,
    open: Option<OpenFile>,
    /// The file the path named before a rotation or deletion: read every poll until
    /// one finds nothing new (its writer may not have reopened yet), then finished.
    rotated: Option<OpenFile>,
    /// True until the first poll: a file present then is read from its end.
    first: bool,
    health: Health,
    retry: Duration,
}

impl FileFollower {
    fn new(path: PathBuf, retry: Duration) -> Self {
        let health = Health::new(path.display().to_string());
        FileFollower {
            path,
            open: None,
            rotated: None,
            first: true,
            health,
            retry,
        }
    }

    /// Reads what a file rotated away still has, and keeps it for one more poll.
    fn retire(&mut self, mut old: OpenFile, lines: &mut Vec<String>) {
        if let Some(older) = self.rotated.take() {
            older.finish(lines);
        }
        match old.read_available(lines) {
            Ok(_) => self.rotated = Some(old),
            Err(_) => old.finish(lines),
        }
    }

    fn poll(&mut self) -> (Polled, bool) {
        let mut lines = Vec::new();
        let first = std::mem::replace(&mut self.first, false);
        if let Some(mut old) = self.rotated.take() {
            match old.read_available(&mut lines) {
                Ok((n, more)) if n > 0 || more => self.rotated = Some(old),
                _ => old.finish(&mut lines),
            }
        }
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) => {
                // Deleted or moved away: what the open descriptor still has is read.
                if let Some(o) = self.open.take() {
                    self.retire(o, &mut lines);
                }
                self.health.fail("open_failed", &e, self.retry);
                return (Polled::Lines(lines), false);
            }
        };
        if let Some(o) = self
            .open
            .take_if(|o| (o.dev, o.ino) != (meta.dev(), meta.ino()))
        {
            self.retire(o, &mut lines);
            metrics::NODE_SOURCE_ROTATIONS
                .with_label_values(&[&self.health.label, "rotation"])
                .inc();
        }
        if self.open.is_none() {
            match File::open(&self.path).and_then(|f| f.metadata().map(|m| (f, m))) {
                Ok((file, m)) => {
                    let offset = if first {
                        end_of_last_line(&file, m.len())
                    } else {
                        0
                    };
                    self.open = Some(OpenFile {
                        file,
                        dev: m.dev(),
                        ino: m.ino(),
                        offset,
                        partial: Vec::new(),
                    });
                }
                Err(e) => {
                    self.health.fail("open_failed", &e, self.retry);
                    return (Polled::Lines(lines), false);
                }
            }
        }
        let Some(o) = self.open.as_mut() else {
            return (Polled::Lines(lines), false);
        };
        if let Ok(m) = o.file.metadata()
            && m.len() < o.offset
        {
            o.offset = 0;
            flush_partial(&mut o.partial, &mut lines);
            metrics::NODE_SOURCE_ROTATIONS
                .with_label_values(&[&self.health.label, "truncation"])
                .inc();
        }
        match o.read_available(&mut lines) {
            Ok((_, more)) => {
                self.health.ok();
                (Polled::Lines(lines), more)
            }
            Err(e) => {
                self.health.fail("read_failed", &e, self.retry);
                (Polled::Lines(lines), false)
            }
        }
    }
}

/// Where to start in a file read from its end: after its last complete line.
fn end_of_last_line(file: &File, len: u64) -> u64 {
    let window = len.min(64 * 1024);
    let mut buf = vec![0u8; window as usize];
    match file.read_exact_at(&mut buf, len - window) {
        Ok(()) => match buf.iter().rposition(|b| *b == b'\n') {
            Some(i) => len - window + i as u64 + 1,
            None if window < len => len,
            None => 0,
        },
        Err(_) => len,
    }
}

fn split_lines(chunk: &[u8], partial: &mut Vec<u8>, lines: &mut Vec<String>) {
    let mut rest = chunk;
    while let Some(i) = rest.iter().position(|b| *b == b'\n') {
        partial.extend_from_slice(&rest[..i]);
        flush_partial(partial, lines);
        rest = &rest[i + 1..];
    }
    partial.extend_from_slice(rest);
    if partial.len() > MAX_LINE {
        flush_partial(partial, lines);
    }
}

fn flush_partial(partial: &mut Vec<u8>, lines: &mut Vec<String>) {
    if partial.is_empty() {
        return;
    }
    if partial.last() == Some(&b'\r') {
        partial.pop();
    }
    let line = String::from_utf8_lossy(&partial[..partial.len().min(MAX_LINE)]).into_owned();
    partial.clear();
    lines.push(line);
}

enum Follower {
    Kmsg(KmsgFollower),
    File(FileFollower),
}

impl Follower {
    fn new(spec: &SourceSpec, boot: Timestamp, retry: Duration) -> Self {
        match spec {
            SourceSpec::Kmsg(p) => Follower::Kmsg(KmsgFollower {
                path: p.clone(),
                file: None,
                boot,
                health: Health::new(p.display().to_string()),
                retry,
                buf: vec![0u8; 16 * 1024],
            }),
            SourceSpec::File(p) => Follower::File(FileFollower::new(p.clone(), retry)),
        }
    }

    fn poll(&mut self) -> (Polled, bool) {
        match self {
            Follower::Kmsg(k) => k.poll(),
            Follower::File(f) => f.poll(),
        }
    }

    fn label(&self) -> &str {
        match self {
            Follower::Kmsg(k) => &k.health.label,
            Follower::File(f) => &f.health.label,
        }
    }
}

/// One line of a kernel log file: a kmsg record, a syslog or a dmesg line.
enum KernelLine {
    Record(LogRecord),
    /// A kmsg dictionary line or an empty message: nothing to match.
    Nothing,
    /// No known format.
    Unparsed,
}

fn parse_kernel_line(
    line: &str,
    lines: &LineSource<std::io::Empty>,
    boot: Timestamp,
) -> KernelLine {
    if line.starts_with(' ') || line.trim().is_empty() {
        return KernelLine::Nothing;
    }
    if let Some(k) = parse_kmsg_line(line) {
        let message = k.message.trim();
        if message.is_empty() {
            return KernelLine::Nothing;
        }
        let offset = i64::try_from(k.timestamp_us)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000);
        return KernelLine::Record(LogRecord {
            timestamp: Timestamp(boot.0.saturating_add(offset)),
            message: message.to_string(),
        });
    }
    match lines.parse_line(line) {
        Some(rec) if rec.message.is_empty() => KernelLine::Nothing,
        Some(rec) => KernelLine::Record(rec),
        None => KernelLine::Unparsed,
    }
}

/// The log monitors of one source, fed what it reads.
struct FedGroup {
    kind: GroupKind,
    monitors: Vec<LogMonitor>,
    boot: Timestamp,
    label: String,
}

impl FedGroup {
    fn feed(&mut self, polled: Polled) -> Vec<NodeProblem> {
        let mut out = Vec::new();
        match polled {
            Polled::Records(recs) => {
                for rec in recs {
                    for m in &mut self.monitors {
                        out.extend(m.observe(rec.clone()));
                    }
                }
            }
            Polled::Lines(lines) if lines.is_empty() => {}
            Polled::Lines(lines) => {
                let clock = LineClock::local(self.boot);
                match self.kind {
                    GroupKind::Kernel => {
                        let parser = LineSource::new(std::io::empty(), clock);
                        for line in &lines {
                            match parse_kernel_line(line, &parser, self.boot) {
                                KernelLine::Record(rec) => {
                                    for m in &mut self.monitors {
                                        out.extend(m.observe(rec.clone()));
                                    }
                                }
                                KernelLine::Nothing => {}
                                KernelLine::Unparsed => self.skipped(line),
                            }
                        }
                    }
                    GroupKind::Filelog => {
                        let parsers: Vec<_> = self
                            .monitors
                            .iter()
                            .map(|m| m.config().line_source(std::io::empty(), clock))
                            .collect();
                        for line in &lines {
                            if line.trim().is_empty() {
                                continue;
                            }
                            let mut parsed = false;
                            for (m, p) in self.monitors.iter_mut().zip(&parsers) {
                                if let Some(rec) = p.parse_line(line) {
                                    parsed = true;
                                    out.extend(m.observe(rec));
                                }
                            }
                            if !parsed {
                                self.skipped(line);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn skipped(&self, line: &str) {
        metrics::NODE_SOURCE_SKIPPED_LINES
            .with_label_values(&[&self.label])
            .inc();
        tracing::debug!(source = %self.label, line, "node_problems: line in no known log format");
    }
}

/// A configured runner: [`NodeProblemsRunner::new`], then [`NodeProblemsRunner::run`].
#[derive(Debug)]
pub struct NodeProblemsRunner {
    settings: Settings,
}

/// Checks the config and runs the monitors until shutdown.
pub async fn run(
    cfg: NodeProblemsConfig,
    log: argus_bus::EventLog,
    shutdown: watch::Receiver<bool>,
) -> Result<(), IngestError> {
    NodeProblemsRunner::new(cfg)?.run(log, shutdown).await
}

impl NodeProblemsRunner {
    /// Checks the configuration and reads the monitor configuration files.
    pub fn new(cfg: NodeProblemsConfig) -> Result<Self, IngestError> {
        Ok(NodeProblemsRunner {
            settings: cfg.settings()?,
        })
    }

    /// The sources of the monitors that will run (`log monitor source` → followed
    /// path; the default kernel log shows as `auto`), for start-up logging.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for g in &self.settings.groups {
            let path = g
                .source
                .as_ref()
                .map(|s| s.path().display().to_string())
                .unwrap_or_else(|| "auto".into());
            for m in &g.monitors {
                out.push((m.source.clone(), path.clone()));
            }
        }
        for c in &self.settings.custom {
            out.push((c.source.clone(), "custom plugin".into()));
        }
        for h in &self.settings.health {
            out.push((h.plugin.source.clone(), format!("health check {}", h.name)));
        }
        out
    }

    /// Runs every monitor until `shutdown` turns true (or its sender is dropped); see
    /// the module docs. Unreadable sources and a refusing event log are retried, never
    /// fatal.
    pub async fn run(
        self,
        log: argus_bus::EventLog,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), IngestError> {
        let s = self.settings;
        let boot = boot_time();
        let now = Timestamp::now();
        let mut initial: Vec<NodeProblem> = Vec::new();

        for (source, why) in &s.unsupported {
            metrics::NODE_SOURCE_ERRORS
                .with_label_values(&[source, "unsupported_plugin"])
                .inc();
            tracing::warn!(monitor = %source, reason = %why, "node_problems: monitor not run");
        }

        // Sources are positioned (at their end) before the initial conditions are
        // published, so that everything logged after them is seen.
        let mut groups = Vec::new();
        for g in s.groups {
            let spec = g.source.unwrap_or_else(resolve_default_kernel_log);
            let follower = Follower::new(&spec, boot, s.poll_interval);
            let (follower, first, more) = blocking_poll(follower).await?;
            let mut fed = FedGroup {
                kind: g.kind,
                monitors: g
                    .monitors
                    .into_iter()
                    .map(|c| LogMonitor::new(c, s.node.clone()))
                    .collect(),
                boot,
                label: follower.label().to_string(),
            };
            for m in &mut fed.monitors {
                initial.extend(m.start(now));
            }
            tracing::info!(source = %fed.label, monitors = ?fed.monitors.iter().map(|m| m.config().source.as_str()).collect::<Vec<_>>(), "node_problems: following log source");
            groups.push((follower, fed, first, more));
        }
        let mut customs = Vec::new();
        for c in s.custom {
            let mut m = CustomPluginMonitor::new(c, s.node.clone());
            initial.extend(m.start(now));
            customs.push(m);
        }
        let mut checks = Vec::new();
        for h in s.health {
            let mut m = CustomPluginMonitor::new(h.plugin.clone(), s.node.clone());
            initial.extend(m.start(now));
            checks.push((h, m));
        }

        let tenant = s.tenant;
        let mut pending = envelopes(&initial, &tenant);
        if !publish_retrying(&log, &mut pending, &mut shutdown).await {
            return Ok(());
        }

        let (tx, mut rx) = mpsc::channel::<Vec<NodeProblem>>(QUEUE);
        let mut tasks = JoinSet::new();
        for (follower, mut fed, first, more) in groups {
            let tx = tx.clone();
            let poll = s.poll_interval;
            tasks.spawn(async move {
                let found = fed.feed(first);
                if !found.is_empty() && tx.send(found).await.is_err() {
                    return;
                }
                follow(follower, fed, more, poll, tx).await;
            });
        }
        for m in customs {
            tasks.spawn(run_custom(m, tx.clone()));
        }
        for (h, m) in checks {
            tasks.spawn(run_check(h, m, tx.clone()));
        }
        drop(tx);

        loop {
            tokio::select! {
                biased;
                _ = signalled(&mut shutdown) => break,
                batch = rx.recv() => match batch {
                    Some(first) => {
                        let mut found = first;
                        while let Ok(more) = rx.try_recv() {
                            found.extend(more);
                        }
                        log_changes(&found);
                        pending = envelopes(&found, &tenant);
                        if !publish_retrying(&log, &mut pending, &mut shutdown).await {
                            break;
                        }
                    }
                    None => {
                        // Nothing runs: wait for shutdown.
                        signalled(&mut shutdown).await;
                        break;
                    }
                },
            }
        }

        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        while let Ok(more) = rx.try_recv() {
            pending.extend(envelopes(&more, &tenant));
        }
        if !pending.is_empty() {
            let give_up = Instant::now() + SHUTDOWN_GRACE;
            let mut backoff = BACKOFF_START;
            loop {
                match log.publish(&pending).await {
                    Ok(()) => {
                        published(pending.len());
                        break;
                    }
                    Err(e) => {
                        metrics::NODE_PUBLISH_FAILURES.inc();
                        if Instant::now() + backoff > give_up {
                            tracing::warn!(error = %e, dropped = pending.len(), "node_problems: node events not published before shutdown");
                            break;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
        }
        Ok(())
    }
}

async fn blocking_poll(mut f: Follower) -> Result<(Follower, Polled, bool), IngestError> {
    tokio::task::spawn_blocking(move || {
        let (polled, more) = f.poll();
        (f, polled, more)
    })
    .await
    .map_err(|e| IngestError::BadRequest(format!("node_problems: log reader task failed: {e}")))
}

/// Reads a source every poll interval (at once while there is more) and feeds it.
async fn follow(
    mut follower: Follower,
    mut fed: FedGroup,
    mut more: bool,
    poll: Duration,
    tx: mpsc::Sender<Vec<NodeProblem>>,
) {
    loop {
        if !more {
            tokio::time::sleep(poll).await;
        }
        let polled;
        (follower, polled, more) = match blocking_poll(follower).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(source = %fed.label, error = %e, "node_problems: log reader stopped");
                return;
            }
        };
        let found = fed.feed(polled);
        if !found.is_empty() && tx.send(found).await.is_err() {
            return;
        }
    }
}

/// Runs a custom plugin monitor's rules at once and then each on its interval.
async fn run_custom(mut m: CustomPluginMonitor, tx: mpsc::Sender<Vec<NodeProblem>>) {
    let intervals: Vec<Duration> = m
        .config()
        .rules
        .iter()
        .map(|r| m.config().rule_interval(r))
        .collect();
    if intervals.is_empty() {
        return;
    }
    let start = Instant::now();
    let mut next = vec![start; intervals.len()];
    loop {
        let now = Instant::now();
        let due: Vec<usize> = (0..next.len()).filter(|&i| next[i] <= now).collect();
        if !due.is_empty() {
            let found = m.run_rules(&due).await;
            let after = Instant::now();
            for &i in &due {
                next[i] = (next[i] + intervals[i]).max(after);
            }
            if !found.is_empty() && tx.send(found).await.is_err() {
                return;
            }
        }
        let wake = next.iter().min().copied().unwrap_or(now);
        tokio::time::sleep_until(wake).await;
    }
}

/// Runs one health check at once and then every interval.
async fn run_check(
    check: HealthCheck,
    mut m: CustomPluginMonitor,
    tx: mpsc::Sender<Vec<NodeProblem>>,
) {
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = check.run().await;
        let found = m.observe(0, &result, Timestamp::now());
        if !found.is_empty() && tx.send(found).await.is_err() {
            return;
        }
    }
}

fn envelopes(found: &[NodeProblem], tenant: &str) -> Vec<Envelope> {
    found.iter().map(|p| p.to_envelope(tenant)).collect()
}

fn log_changes(found: &[NodeProblem]) {
    for p in found {
        let e = &p.event;
        match &e.condition {
            Some(c) if c.status == ConditionStatus::True => {
                tracing::warn!(monitor = %e.monitor, condition = %c.condition_type, reason = %e.reason, message = %e.message, "node condition set")
            }
            Some(c) => {
                tracing::info!(monitor = %e.monitor, condition = %c.condition_type, status = ?c.status, reason = %e.reason, "node condition changed")
            }
            None => {
                tracing::info!(monitor = %e.monitor, reason = %e.reason, message = %e.message, "node problem")
            }
        }
    }
}

fn published(n: usize) {
    metrics::RECEIVED
        .with_label_values(&[COLLECTOR, "node_event"])
        .inc_by(n as u64);
}

/// Publishes `pending`, retrying with backoff while the event log refuses; false when
/// shutdown was asked for meanwhile (what is left stays in `pending`).
async fn publish_retrying(
    log: &argus_bus::EventLog,
    pending: &mut Vec<Envelope>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let mut backoff = BACKOFF_START;
    loop {
        match log.publish(pending).await {
            Ok(()) => {
                published(pending.len());
                pending.clear();
                return true;
            }
            Err(e) => {
                metrics::NODE_PUBLISH_FAILURES.inc();
                tracing::warn!(error = %e, pending = pending.len(), retry_in = ?backoff, "node_problems: event log unavailable; holding node events and retrying");
                tokio::select! {
                    biased;
                    _ = signalled(shutdown) => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Resolves when shutdown is asked for (true) or its sender is gone.
async fn signalled(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_line_formats() {
        let boot = Timestamp(1_000_000_000_000_000_000);
        let clock = LineClock {
            boot_time: boot,
            year: 2025,
            utc_offset: chrono::FixedOffset::east_opt(0).unwrap(),
        };
        let p = LineSource::new(std::io::empty(), clock);
        let KernelLine::Record(r) =
            parse_kernel_line("6,12,5000000,-;EXT4-fs (sda1): mounted", &p, boot)
        else {
            panic!("kmsg line")
        };
        assert_eq!(r.message, "EXT4-fs (sda1): mounted");
        assert_eq!(r.timestamp, Timestamp(boot.0 + 5_000_000_000));
        let KernelLine::Record(r) = parse_kernel_line(
            "Nov 25 10:00:00 node-7 kernel: [ 1234.567890] Out of memory: Kill process 1",
            &p,
            boot,
        ) else {
            panic!("syslog line")
        };
        assert_eq!(r.message, "Out of memory: Kill process 1");
        assert!(matches!(
            parse_kernel_line(" SUBSYSTEM=block", &p, boot),
            KernelLine::Nothing
        ));
        assert!(matches!(
            parse_kernel_line("garbage without a format", &p, boot),
            KernelLine::Unparsed
        ));
    }

    #[test]
    fn line_splitting() {
        let mut partial = Vec::new();
        let mut lines = Vec::new();
        split_lines(b"one\r\ntwo\nthr", &mut partial, &mut lines);
        assert_eq!(lines, ["one", "two"]);
        split_lines(b"ee\n", &mut partial, &mut lines);
        assert_eq!(lines, ["one", "two", "three"]);
        assert!(partial.is_empty());
    }

    #[test]
    fn start_after_last_complete_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.log");
        std::fs::write(&p, "a\nbb\ncc").unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(end_of_last_line(&f, 7), 5);
        std::fs::write(&p, "no newline").unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(end_of_last_line(&f, 10), 0);
    }

    #[test]
    fn config_defaults_and_errors() {
        let c: NodeProblemsConfig = serde_json::from_str("{}").unwrap();
        assert!(c.defaults);
        assert_eq!(c.tenant, argus_schemas::DEFAULT_TENANT);
        assert_eq!(c.node, hostname());
        let s = c.settings().unwrap();
        // kernel-monitor and readonly-monitor on the kernel log; docker-monitor skipped.
        assert_eq!(s.groups.len(), 1);
        assert_eq!(s.groups[0].monitors.len(), 2);
        assert_eq!(s.unsupported.len(), 1);
        assert!(serde_json::from_str::<NodeProblemsConfig>(r#"{"kernel_logg": "/x"}"#).is_err());
        let bad = NodeProblemsConfig {
            tenant: String::new(),
            ..NodeProblemsConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("`tenant`"));
    }
}
