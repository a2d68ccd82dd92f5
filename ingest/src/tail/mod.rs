//! File tailing, like Promtail's file target: follows the files matched by globs and
//! writes each line to the event log as a `log_entry` record.
//!
//! This module owns finding the files, following them across rotation and truncation
//! ([`files`]), turning lines (or multiline blocks) into records, publishing them with
//! retries exactly once, and the positions file ([`positions`]) that lets a restart
//! continue exactly where the event log left off.
//!
//! **Records.** One `log_entry` per line (source `file`, tenant from the config): stream
//! labels are the configured `labels` plus `filename`, the path under which the file was
//! first followed (a rotated file keeps the name it had); the timestamp is when the line
//! was read (Unix ns), made unique within the tailer (see "Exactly once"); the line is the text without its `\n` (and without a `\r` before
//! it); invalid UTF-8 is replaced. A line longer than `max_line_bytes` is **truncated,
//! not dropped** (cut at a character boundary), gets structured metadata
//! `truncated="true"` and is counted in `argus_ingest_tail_truncated_lines_total`; only
//! `max_line_bytes + 1` bytes of a line are ever buffered. Empty lines are kept.
//!
//! **Multiline.** With `multiline`, a line matching `first_line` starts an entry and
//! every other line is appended to the current one after a `\n` (a non-matching line
//! with no entry open starts one). An entry is emitted when the next first line arrives,
//! when no line was added for `max_wait` (checked every poll), at `max_lines` lines, when
//! its file is finished, and at shutdown. A joined entry is capped at `max_line_bytes`
//! too: continuation lines past it are dropped and the entry marked `truncated`.
//!
//! **Files.** A file is identified by (device, inode), not by path. Every
//! `poll_interval` the globs are expanded again; a file is read with `pread` through a
//! descriptor kept open, so:
//! - a new file that matches is followed from its start (files present at the very
//!   first scan with no saved position start at `start_at`; `end` starts after the last
//!   complete line, so a line being written is read whole);
//! - **rename rotation**: when a path now names another inode, the old file (still open)
//!   is read to its end first and the new one from offset 0, in the same poll. The old
//!   file is read again every poll until one poll finds nothing new (a writer that has
//!   not reopened yet keeps one poll interval of grace), then finished: a last line
//!   without a newline is emitted, and the file dropped. If the rotated name still
//!   matches a glob (`app.log*`), the file is recognised by its inode and simply followed
//!   under its new name, never read twice;
//! - **copytruncate**: when a file is shorter than the offset read, it is read again from
//!   0 (what was read of the old content, a partial line or open multiline entry, is
//!   emitted first). Truncation is only detected when the file is shorter than what was
//!   read: if the writer refills it past that offset within one poll interval, those
//!   lines are missed, as with every tailer that polls;
//! - a deleted file is finished like a rotated one (read to its end through the open
//!   descriptor) and dropped.
//!
//! **Partial lines.** Bytes after the last newline are held, not emitted, until their
//! newline arrives (or the file is finished), and no checkpoint ever includes them.
//!
//! **Checkpoints.** The positions file ([`positions`]) holds, for each followed file,
//! (path, device, inode, offset, stream name, partition), where offset is just after the
//! last line whose record the event log holds; it is only moved forward once the log
//! acknowledged the records (or they were found there, below). It is always replaced
//! atomically (temporary file, fsync, rename, fsync of the directory).
//!
//! **Exactly once.** A crash at any moment (kill -9, power loss with the embedded log's
//! `sync: full`) neither loses nor repeats a line on the event log, on both backends:
//! - every record gets a timestamp unique within the tailer (the read time, or 1 ns after
//!   the previous record's when that is not later): with its stream labels it names the
//!   record on the log;
//! - before a batch (at most `batch_size` records) is published, its **intent** is
//!   written to the positions file, together with the current positions, and fsync'd:
//!   per file, the offset the batch starts at and the (timestamp, end offset) of each of
//!   its records; and per partition its streams may go to (the one a file's stream was
//!   last written to, all of them for a stream not written yet), a **mark**: an offset
//!   at or before which none of the batch can land (the offset after the tailer's last
//!   acknowledged record there if learned in the last 5 s, else the high watermark);
//! - the batch is published with [`argus_bus::EventLog::produce_batch`] on `argus.logs`;
//!   once acknowledged, the positions move past it, and the next batch's intent (or, when
//!   the files have nothing more to read, a checkpoint without intent) records them;
//! - at start, an intent in the positions file means its batch may be on the log, in
//!   whole or in part. Before reading any file, the tailer reads the marked partitions
//!   from their marks to their current end (stopping once every record is found) and
//!   looks for the batch's records by source `file`, tenant, stream labels and
//!   timestamp; each file then continues after the last of its records found (its end
//!   offset), or at the batch's start when none is. While the log is unavailable this is
//!   retried; no file is read meanwhile. A publish that fails while running is settled
//!   the same way before the rest is sent again, so a batch the log stored in part (Kafka
//!   can store a prefix of one; the embedded log stores all or nothing) is never sent
//!   twice.
//!
//! The scan is bounded by what the marked partitions received from the mark until the
//! restart (a few seconds of traffic before the batch, plus the downtime's). The cost on
//! the normal path: with more to read (a backlog), one fsync'd positions write per batch,
//! as before (the intent replaces the checkpoint); when a poll reads everything there
//! is, a second one (the checkpoint clearing the intent); plus a watermark request per
//! partition when its mark is older than 5 s. Measured on this machine (embedded log,
//! 50 000 lines of 64 bytes, a 7-9 ms fsync): 22 ms per batch of 1000 (21 ms before the
//! intent) and 11 ms per batch of 100 (12 ms before); an intent of 1000 records is 28 KB.
//!
//! What this relies on, and the limits:
//! - the records of one file share one stream, hence one partition, in order: a batch
//!   reaches the log as a prefix per file (a gap, which neither backend produces, would
//!   be logged as an error and the file continued after the last record found);
//! - on Kafka, a record the crashed process had in flight must reach the broker, or not,
//!   before the restart's scan (the broker handles a request at once; a restart takes
//!   longer). The tailer does not use the Kafka disk spool (`bus.kafka.spool`), whose
//!   drain delivers at least once: while the brokers are unavailable it holds its batch
//!   and retries, the files being the buffer;
//! - the partition count of `argus.logs` must not change while Argus runs (a stream's
//!   partition is learned from acknowledged publishes);
//! - if retention removed records after a mark while Argus was down, what of the batch
//!   they held cannot be found and is sent again (logged);
//! - lines of a file's content before a copytruncate that are emitted after it (a partial
//!   last line or an open multiline entry) are never sent twice, but cannot be read
//!   again after a crash: the file no longer holds them.
//!
//! **What a restart sees.**
//! - after a clean shutdown or a crash, a restart reads exactly the lines the event log
//!   does not hold yet (above). Lines of an open multiline entry are not checkpointed
//!   until the entry is published, so they are read again rather than lost;
//! - a file keeps its stream across restarts (`filename` is its first name, saved in the
//!   positions file);
//! - on restart a file is found by its inode, so a rename during downtime to a name the
//!   globs still match (`app.log.1` under `app.log*`) is followed from its saved offset;
//!   if the path names a new inode and the old inode is no longer matched, the new file
//!   is read from 0. **Limitation:** lines appended to the old file after the last
//!   checkpoint and before it was rotated away while Argus was down are then lost,
//!   unless the globs match the rotated name. Matching rotated names is safe (no
//!   duplicates, thanks to inode identity), and is what makes rotation during a crash
//!   lossless; note that compressed rotations (`app.log.2.gz`) would be read as text:
//!   exclude them with a narrower glob (`app.log.[0-9]`).
//! - a file shorter than its saved offset at restart is read from 0 (truncated while
//!   down); an inode reused by an unrelated file that is at least as long as the saved
//!   offset cannot be told apart and is read from the saved offset (no content
//!   fingerprint is kept).
//! - one positions file belongs to one tailer; two tailers must not share it.
//!
//! **Backpressure.** Each poll reads at most `batch_size` lines per file, then publishes;
//! while the event log refuses a batch it is retried with exponential backoff (100 ms
//! doubling to 10 s) and no file is read meanwhile, so memory stays bounded and the
//! files themselves are the buffer.
//!
//! **Shutdown** (the watch channel turns `true`, or its sender is dropped): open
//! multiline entries are emitted, everything read is published (retrying for up to 10 s)
//! and checkpointed. What could not be published is not lost: it is after the
//! checkpoint, so the next run reads it again (an unsettled intent stays in the
//! positions file and is settled at start).
//!
//! **Failpoints** (crash tests): `ARGUS_FAILPOINT=tail-after-intent`,
//! `tail-after-publish` or `tail-partial-publish` (optionally `:<n>`, the n-th batch;
//! default the first) abort the process after the intent is written, after the log
//! acknowledged the batch (before any checkpoint), or after publishing the first half of
//! the batch.
//!
//! Reading and the positions file use blocking file I/O, run on tokio's blocking pool.

mod files;
pub mod positions;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use argus_bus::{BusError, EventLog, OutRecord};
use argus_schemas::duration::serde_duration;
use argus_schemas::{Labels, Payload, topics};

use crate::metrics::{RECEIVED, TAIL_CHECKPOINT_FAILURES, TAIL_PUBLISH_FAILURES};
use files::{MultilineRules, Out, Settings, TailState};
use positions::{Intent, IntentFile, Positions};

const COLLECTOR: &str = "file";
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long an offset learned from a publish or a watermark serves as a partition's
/// intent mark before the watermark is asked again: bounds the scan after a crash to
/// what the partition received in this time plus one publish.
const MARK_FRESH: Duration = Duration::from_secs(5);
/// Records read at once when looking for a batch on the event log.
const SCAN_CHUNK: usize = 1000;

/// The environment variable naming a failpoint (for crash tests).
pub const FAILPOINT_ENV: &str = "ARGUS_FAILPOINT";
/// Aborts the process after the intent is written, before the batch is published.
pub const FAILPOINT_AFTER_INTENT: &str = "tail-after-intent";
/// Aborts the process after the event log acknowledged a batch, before the checkpoint.
pub const FAILPOINT_AFTER_PUBLISH: &str = "tail-after-publish";
/// Publishes the first half of a batch (what Kafka can be left with), then aborts.
pub const FAILPOINT_PARTIAL_PUBLISH: &str = "tail-partial-publish";
/// The positions file's name in the data directory.
pub const POSITIONS_FILE_NAME: &str = "tail-positions.json";

/// `tail:` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailConfig {
    /// Globs of the files to follow, e.g. `/var/log/app/*.log`. Required.
    pub paths: Vec<String>,
    /// Stream labels of every entry; `filename` is added per file.
    pub labels: BTreeMap<String, String>,
    /// Tenant of every record. Default `default`.
    pub tenant: String,
    /// Where read positions are kept. Default (filled in by the binary when empty):
    /// `<data_dir>/tail-positions.json`.
    pub positions_file: PathBuf,
    /// How often the globs are expanded and files read. Default `250ms`.
    #[serde(with = "serde_duration")]
    pub poll_interval: Duration,
    /// Joins lines into multiline entries (stack traces). Default: off.
    pub multiline: Option<Multiline>,
    /// Longest line kept whole; longer ones are truncated. Default 262144 (256 KiB).
    pub max_line_bytes: usize,
    /// Most records per publish, and most lines read from one file per poll.
    /// Default 1000.
    pub batch_size: usize,
    /// Where files never seen before start: `beginning` (default) or `end`.
    pub start_at: StartAt,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            paths: Vec::new(),
            labels: BTreeMap::new(),
            tenant: "default".into(),
            positions_file: PathBuf::new(),
            poll_interval: Duration::from_millis(250),
            multiline: None,
            max_line_bytes: 256 * 1024,
            batch_size: 1000,
            start_at: StartAt::Beginning,
        }
    }
}

/// `tail.multiline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Multiline {
    /// A regular expression matching the first line of an entry, e.g.
    /// `^\d{4}-\d{2}-\d{2}`. Required.
    pub first_line: String,
    /// Longest an entry waits for another line. Default `3s`.
    #[serde(default = "default_max_wait", with = "serde_duration")]
    pub max_wait: Duration,
    /// Most lines in one entry. Default 128.
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
}

fn default_max_wait() -> Duration {
    Duration::from_secs(3)
}

fn default_max_lines() -> usize {
    128
}

/// Where a file never seen before starts being read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("tail: invalid configuration: {0}")]
    Config(String),
    #[error("tail: positions file {path}: {message}")]
    Positions { path: PathBuf, message: String },
    #[error("tail: reader task failed: {0}")]
    Task(String),
    #[error("tail: event log: {0}")]
    Log(#[from] BusError),
    #[error("tail: looking for the last batch on the event log: {0}")]
    Recovery(String),
}

fn config_err(key: &str, msg: impl std::fmt::Display) -> TailError {
    TailError::Config(format!("`{key}`: {msg}"))
}

impl TailConfig {
    /// Sets `positions_file` to `<data_dir>/tail-positions.json` when it is empty.
    pub fn fill_positions_file(&mut self, data_dir: &Path) {
        if self.positions_file.as_os_str().is_empty() {
            self.positions_file = data_dir.join(POSITIONS_FILE_NAME);
        }
    }

    /// Checks every field; the error names the key.
    pub fn validate(&self) -> Result<(), TailError> {
        self.settings().map(|_| ())
    }

    fn settings(&self) -> Result<Settings, TailError> {
        if self.paths.is_empty() {
            return Err(config_err("paths", "no globs: nothing to tail"));
        }
        for (i, p) in self.paths.iter().enumerate() {
            glob::Pattern::new(p)
                .map_err(|e| config_err(&format!("paths[{i}]"), format!("{p:?}: {e}")))?;
        }
        let mut labels = Labels::new();
        for (name, value) in &self.labels {
            let key = format!("labels.{name}");
            if !valid_label_name(name) {
                return Err(config_err(
                    &key,
                    "not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                ));
            }
            if name == "filename" {
                return Err(config_err(&key, "`filename` is set per file by the tailer"));
            }
            labels.insert(name.as_str(), value.as_str());
        }
        argus_schemas::validate_tenant(&self.tenant)
            .map_err(|m| config_err("tenant", format!("{:?}: {m}", self.tenant)))?;
        if self.positions_file.as_os_str().is_empty() {
            return Err(config_err(
                "positions_file",
                "empty (the binary sets it to <data_dir>/tail-positions.json)",
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(config_err("poll_interval", "must be more than 0"));
        }
        for (name, v) in [
            ("max_line_bytes", self.max_line_bytes),
            ("batch_size", self.batch_size),
        ] {
            if v == 0 {
                return Err(config_err(name, "must be at least 1"));
            }
        }
        let multiline = match &self.multiline {
            None => None,
            Some(m) => {
                let first_line =
                    Regex::new(&m.first_line).map_err(|e| config_err("multiline.first_line", e))?;
                if m.max_wait.is_zero() {
                    return Err(config_err("multiline.max_wait", "must be more than 0"));
                }
                if m.max_lines == 0 {
                    return Err(config_err("multiline.max_lines", "must be at least 1"));
                }
                Some(MultilineRules {
                    first_line,
                    max_wait: m.max_wait,
                    max_lines: m.max_lines,
                })
            }
        };
        Ok(Settings {
            patterns: self.paths.clone(),
            labels,
            tenant: self.tenant.clone(),
            max_line: self.max_line_bytes,
            multiline,
            lines_per_poll: self.batch_size,
            start_at_end: self.start_at == StartAt::End,
        })
    }
}

fn valid_label_name(n: &str) -> bool {
    let mut cs = n.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A configured tailer with its positions loaded: [`Tailer::new`], then
/// [`Tailer::run`].
pub struct Tailer {
    state: TailState,
    positions_file: PathBuf,
    poll_interval: Duration,
    batch_size: usize,
    tenant: String,
    /// What the positions file says now.
    written: Positions,
    /// The batch that may be on the event log, in part or whole: set (and written)
    /// before each publish, cleared once the log acknowledged it or it was looked for
    /// there. Loaded from the positions file after a crash.
    intent: Option<Intent>,
    /// Partitions of the logs topic, once asked.
    partitions: Option<i32>,
    /// Per partition: an offset no later than the next one the log assigns there, and
    /// when it was learned.
    marks: HashMap<i32, (i64, Instant)>,
    failpoint: Option<Failpoint>,
    /// Publishes attempted, for the failpoint.
    attempts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailpointKind {
    AfterIntent,
    AfterPublish,
    PartialPublish,
}

/// `ARGUS_FAILPOINT=<name>[:<n>]`: fires at the `n`-th publish (default the first).
#[derive(Debug, Clone, Copy)]
struct Failpoint {
    kind: FailpointKind,
    at: u64,
}

fn failpoint_from_env() -> Option<Failpoint> {
    let v = std::env::var(FAILPOINT_ENV).ok()?;
    let (name, at) = match v.split_once(':') {
        Some((n, a)) => (n, a.parse().ok()?),
        None => (v.as_str(), 1),
    };
    let kind = match name {
        FAILPOINT_AFTER_INTENT => FailpointKind::AfterIntent,
        FAILPOINT_AFTER_PUBLISH => FailpointKind::AfterPublish,
        FAILPOINT_PARTIAL_PUBLISH => FailpointKind::PartialPublish,
        _ => return None,
    };
    Some(Failpoint { kind, at })
}

fn fire(name: &str) -> ! {
    tracing::error!("failpoint {name}: aborting");
    std::process::abort()
}

/// Checks the config, loads the positions and tails until shutdown.
pub async fn run(
    cfg: TailConfig,
    log: EventLog,
    shutdown: watch::Receiver<bool>,
) -> Result<(), TailError> {
    Tailer::new(cfg)?.run(log, shutdown).await
}

/// Until when a publish is retried.
enum Until<'a> {
    Shutdown(&'a mut watch::Receiver<bool>),
    Deadline(Instant),
}

impl Until<'_> {
    /// Waits `d` before a retry; false when it is time to stop instead.
    async fn wait(&mut self, d: Duration) -> bool {
        match self {
            Until::Shutdown(rx) => tokio::select! {
                biased;
                _ = signalled(rx) => false,
                _ = tokio::time::sleep(d) => true,
            },
            Until::Deadline(t) => {
                let now = Instant::now();
                if now >= *t {
                    return false;
                }
                tokio::time::sleep(d.min(*t - now)).await;
                true
            }
        }
    }
}

impl Tailer {
    /// Checks the config and reads the positions file (a missing one is empty; an
    /// unreadable or corrupt one is an error, as starting over would repeat every line).
    pub fn new(cfg: TailConfig) -> Result<Tailer, TailError> {
        let settings = cfg.settings()?;
        let saved =
            positions::load(&cfg.positions_file).map_err(|message| TailError::Positions {
                path: cfg.positions_file.clone(),
                message,
            })?;
        Ok(Tailer {
            state: TailState::new(settings, saved.files.clone()),
            positions_file: cfg.positions_file,
            poll_interval: cfg.poll_interval,
            batch_size: cfg.batch_size,
            tenant: cfg.tenant,
            intent: saved.intent.clone(),
            written: saved,
            partitions: None,
            marks: HashMap::new(),
            failpoint: failpoint_from_env(),
            attempts: 0,
        })
    }

    /// Tails until shutdown; see the module docs for the guarantees.
    pub async fn run(
        mut self,
        log: EventLog,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), TailError> {
        if !self.recover(&log, &mut shutdown).await {
            return Ok(());
        }
        let mut pending: Vec<Out> = Vec::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (state, out, more) = poll(self.state).await?;
            self.state = state;
            pending = out;
            if !self
                .publish(&log, &mut pending, Until::Shutdown(&mut shutdown))
                .await
            {
                break;
            }
            // While files have more to read, the next batch's intent (which holds the
            // positions) is the checkpoint: one positions write per batch.
            if !more {
                self.checkpoint().await;
                tokio::select! {
                    biased;
                    _ = signalled(&mut shutdown) => break,
                    _ = tokio::time::sleep(self.poll_interval) => {}
                }
            }
        }

        self.state.finish(&mut pending);
        let give_up = Instant::now() + SHUTDOWN_GRACE;
        let complete = self
            .publish(&log, &mut pending, Until::Deadline(give_up))
            .await;
        self.checkpoint().await;
        if !complete {
            tracing::warn!(
                unpublished = pending.len(),
                "tail: records not published before shutdown; they are after the checkpoint and will be read again"
            );
        }
        Ok(())
    }

    /// At start: when the positions file holds an intent (the last run stopped with a
    /// batch whose outcome it did not know), finds how much of the batch the event log
    /// holds and continues each file after it. Retries while the log is unavailable;
    /// false when shutdown was asked for meanwhile.
    async fn recover(&mut self, log: &EventLog, shutdown: &mut watch::Receiver<bool>) -> bool {
        let Some(intent) = self.intent.clone() else {
            return true;
        };
        let mut until = Until::Shutdown(shutdown);
        let mut backoff = BACKOFF_START;
        let found = loop {
            match find_published(log, &intent).await {
                Ok(found) => break found,
                Err(e) => {
                    TAIL_PUBLISH_FAILURES.inc();
                    tracing::warn!(error = %e, retry_in = ?backoff, "tail: cannot look for the last batch on the event log; retrying before reading any file");
                    if !until.wait(backoff).await {
                        return false;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        };
        for (f, found) in intent.files.iter().zip(&found) {
            let offset = resume_offset(f, found);
            let on_log = found.iter().filter(|b| **b).count();
            tracing::info!(
                dev = f.dev,
                inode = f.inode,
                records = f.records.len() + f.stale.len(),
                on_log,
                offset,
                "tail: the last batch before the stop was looked for on the event log; continuing after what it holds"
            );
            self.state.restore((f.dev, f.inode), offset);
        }
        // Written with the next checkpoint, once the files are found again; until then
        // the intent on disk gives the same answer.
        self.intent = None;
        true
    }

    /// Publishes `pending` in batches (each batch's intent records the positions the
    /// previous one reached; the caller checkpoints after the last); retries while the
    /// event log refuses, first finding what of a failed batch reached the log. False
    /// when it stopped (shutdown, or the deadline) with records left in `pending`.
    async fn publish(
        &mut self,
        log: &EventLog,
        pending: &mut Vec<Out>,
        mut until: Until<'_>,
    ) -> bool {
        let mut backoff = BACKOFF_START;
        while !pending.is_empty() || self.intent.is_some() {
            let r = match self.settle(log, pending).await {
                Ok(()) if pending.is_empty() => Ok(0),
                Ok(()) => {
                    let n = pending.len().min(self.batch_size);
                    self.publish_batch(log, &pending[..n]).await.map(|()| n)
                }
                Err(e) => Err(e),
            };
            match r {
                Ok(n) => {
                    pending.drain(..n);
                    backoff = BACKOFF_START;
                }
                Err(e) => {
                    match e {
                        TailError::Positions { .. } => TAIL_CHECKPOINT_FAILURES.inc(),
                        _ => TAIL_PUBLISH_FAILURES.inc(),
                    }
                    tracing::warn!(
                        error = %e,
                        pending = pending.len(),
                        retry_in = ?backoff,
                        "tail: cannot publish; holding the batch and retrying"
                    );
                    if !until.wait(backoff).await {
                        return false;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        true
    }

    /// After a failed publish: finds which records of the batch the event log holds
    /// anyway, counts them as published and takes them out of `pending`.
    async fn settle(&mut self, log: &EventLog, pending: &mut Vec<Out>) -> Result<(), TailError> {
        let Some(intent) = &self.intent else {
            return Ok(());
        };
        let found = find_published(log, intent).await?;
        let mut on_log: HashSet<(u64, u64, i64)> = HashSet::new();
        for (f, found) in intent.files.iter().zip(&found) {
            let stamps = f.records.iter().map(|r| r.0).chain(f.stale.iter().copied());
            for (ts, hit) in stamps.zip(found) {
                if *hit {
                    on_log.insert((f.dev, f.inode, ts));
                }
            }
        }
        let (done, rest): (Vec<Out>, Vec<Out>) = std::mem::take(pending)
            .into_iter()
            .partition(|o| on_log.contains(&(o.key.0, o.key.1, o.env.event_time.0)));
        if !done.is_empty() {
            tracing::info!(
                records = done.len(),
                "tail: part of a failed batch reached the event log; sending only the rest"
            );
        }
        *pending = rest;
        self.state.mark_published(&done);
        published(done.len());
        self.intent = None;
        self.checkpoint().await;
        Ok(())
    }

    /// Publishes one batch: writes its intent, then publishes. On an error the intent
    /// stays, to be settled before the next attempt.
    async fn publish_batch(&mut self, log: &EventLog, batch: &[Out]) -> Result<(), TailError> {
        let intent = self.make_intent(log, batch).await?;
        self.intent = Some(intent);
        if let Err(e) = self.write_positions().await {
            // Not on disk, so nothing may be published under it.
            self.intent = None;
            return Err(e);
        }
        self.attempts += 1;
        let fp = self
            .failpoint
            .filter(|f| f.at == self.attempts)
            .map(|f| f.kind);
        if fp == Some(FailpointKind::AfterIntent) {
            fire(FAILPOINT_AFTER_INTENT);
        }
        let mut records: Vec<OutRecord> = batch
            .iter()
            .map(|o| OutRecord::new(o.env.key.as_bytes(), argus_schemas::encode(&o.env)))
            .collect();
        if fp == Some(FailpointKind::PartialPublish) {
            records.truncate(records.len().div_ceil(2));
            let r = log.produce_batch(topics::LOGS, records).await;
            tracing::error!(result = ?r.map(|p| p.len()), "failpoint published part of a batch");
            fire(FAILPOINT_PARTIAL_PUBLISH);
        }
        let landed = log.produce_batch(topics::LOGS, records).await?;
        if fp == Some(FailpointKind::AfterPublish) {
            fire(FAILPOINT_AFTER_PUBLISH);
        }
        let now = Instant::now();
        for (o, p) in batch.iter().zip(&landed) {
            self.state.set_partition(o.key, p.partition);
            if p.offset >= 0 {
                let m = self.marks.entry(p.partition).or_insert((0, now));
                *m = (m.0.max(p.offset + 1), now);
            }
        }
        self.intent = None;
        self.state.mark_published(batch);
        published(batch.len());
        Ok(())
    }

    /// The intent of publishing `batch`: its records per file, and for each partition
    /// their streams may go to, an offset they will land at or after.
    async fn make_intent(&mut self, log: &EventLog, batch: &[Out]) -> Result<Intent, TailError> {
        let n = match self.partitions {
            Some(n) => n,
            None => {
                let n = log.partitions(topics::LOGS).await?;
                self.partitions = Some(n);
                n
            }
        };
        let files = self.state.intent_files(batch);
        let mut needed = BTreeSet::new();
        for f in &files {
            match self.state.partition((f.dev, f.inode)) {
                Some(p) if (0..n).contains(&p) => {
                    needed.insert(p);
                }
                // A stream not published yet: it may go to any partition.
                _ => needed.extend(0..n),
            }
        }
        let mut marks = Vec::with_capacity(needed.len());
        for p in needed {
            let fresh = self
                .marks
                .get(&p)
                .filter(|(_, at)| at.elapsed() < MARK_FRESH)
                .map(|m| m.0);
            let mark = match fresh {
                Some(m) => m,
                None => {
                    let (_, high) = log.watermarks(topics::LOGS, p).await?;
                    self.marks.insert(p, (high, Instant::now()));
                    high
                }
            };
            marks.push((p, mark));
        }
        Ok(Intent {
            topic: topics::LOGS.to_string(),
            tenant: self.tenant.clone(),
            marks,
            files,
        })
    }

    /// Writes the positions file if it would change; a failure is logged, and retried
    /// at the next checkpoint (the file on disk stays valid meanwhile).
    async fn checkpoint(&mut self) {
        if let Err(e) = self.write_positions().await {
            TAIL_CHECKPOINT_FAILURES.inc();
            tracing::error!(error = %e, "tail: cannot write the positions file");
        }
    }

    /// Makes the positions file say where the files are and the current intent.
    async fn write_positions(&mut self) -> Result<(), TailError> {
        let now = Positions {
            files: self.state.positions(),
            intent: self.intent.clone(),
        };
        if now == self.written {
            return Ok(());
        }
        let path = self.positions_file.clone();
        let body = now.clone();
        let r = tokio::task::spawn_blocking(move || positions::save(&path, &body)).await;
        match r {
            Ok(Ok(())) => {
                self.written = now;
                Ok(())
            }
            Ok(Err(e)) => Err(TailError::Positions {
                path: self.positions_file.clone(),
                message: e.to_string(),
            }),
            Err(e) => Err(TailError::Task(e.to_string())),
        }
    }
}

/// Which records of the intent's batch the event log holds: per file, one flag per
/// record then per stale record. Reads only the intent's partitions, from its marks to
/// the current end, and stops as soon as every record is found.
async fn find_published(log: &EventLog, intent: &Intent) -> Result<Vec<Vec<bool>>, TailError> {
    let mut found: Vec<Vec<bool>> = intent
        .files
        .iter()
        .map(|f| vec![false; f.records.len() + f.stale.len()])
        .collect();
    // Timestamps are unique within the tailer, so they name a record of the batch.
    let mut by_ts: HashMap<i64, (usize, usize)> = HashMap::new();
    for (fi, f) in intent.files.iter().enumerate() {
        let stamps = f.records.iter().map(|r| r.0).chain(f.stale.iter().copied());
        for (ri, ts) in stamps.enumerate() {
            by_ts.insert(ts, (fi, ri));
        }
    }
    let mut missing = by_ts.len();
    for &(p, mark) in &intent.marks {
        if missing == 0 {
            break;
        }
        let (low, high) = log.watermarks(&intent.topic, p).await?;
        let mut at = mark;
        if low > at {
            tracing::warn!(
                partition = p,
                mark,
                low,
                "tail: records after the intent's mark were removed by retention; what of the batch they held cannot be found and is sent again"
            );
            at = low;
        }
        while at < high && missing > 0 {
            let recs = log.read(&intent.topic, p, at, SCAN_CHUNK).await?;
            let Some(last) = recs.last() else {
                // The watermarks promise records here: only retention may have taken them.
                let (low, _) = log.watermarks(&intent.topic, p).await?;
                if low > at {
                    at = low;
                    continue;
                }
                return Err(TailError::Recovery(format!(
                    "partition {p} returned nothing at offset {at} (end {high})"
                )));
            };
            at = last.offset + 1;
            for r in &recs {
                let Ok(env) = argus_schemas::decode(&r.value) else {
                    continue;
                };
                let Payload::LogEntry(e) = &env.payload else {
                    continue;
                };
                if env.source != COLLECTOR || env.tenant != intent.tenant {
                    continue;
                }
                if let Some(&(fi, ri)) = by_ts.get(&e.timestamp.0)
                    && intent.files[fi].labels == e.labels
                    && !found[fi][ri]
                {
                    found[fi][ri] = true;
                    missing -= 1;
                }
            }
        }
    }
    Ok(found)
}

/// Where a file continues after its intent was looked for: after the last of its
/// records the log holds (the records tile the file from `start`), or at `start`.
fn resume_offset(f: &IntentFile, found: &[bool]) -> u64 {
    let found = &found[..f.records.len()];
    match found.iter().rposition(|b| *b) {
        None => f.start,
        Some(last) => {
            let gaps = found[..last].iter().filter(|b| !**b).count();
            if gaps > 0 {
                // Neither backend leaves a gap in a batch (one partition per file, in
                // order); continuing after the last one found repeats nothing.
                tracing::error!(
                    dev = f.dev,
                    inode = f.inode,
                    gaps,
                    "tail: records of the last batch are missing before others the event log holds; they are not sent again"
                );
            }
            f.records[last].1
        }
    }
}

/// Runs one poll on the blocking pool.
async fn poll(mut state: TailState) -> Result<(TailState, Vec<Out>, bool), TailError> {
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let more = state.poll(std::time::Instant::now(), &mut out);
        (state, out, more)
    })
    .await
    .map_err(|e| TailError::Task(e.to_string()))
}

/// Resolves once shutdown is asked for (or the sender is gone).
async fn signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

fn published(n: usize) {
    RECEIVED
        .with_label_values(&[COLLECTOR, "log_entry"])
        .inc_by(n as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: TailConfig = serde_json::from_str(r#"{"paths":["/var/log/*.log"]}"#).unwrap();
        assert_eq!(c.tenant, "default");
        assert_eq!(c.poll_interval, Duration::from_millis(250));
        assert_eq!(c.max_line_bytes, 262_144);
        assert_eq!(c.start_at, StartAt::Beginning);
        assert_eq!(c.multiline, None);
        let c: TailConfig = serde_json::from_str(
            r#"{"paths":["a"],"start_at":"end","poll_interval":"1s","multiline":{"first_line":"^\\d"}}"#,
        )
        .unwrap();
        assert_eq!(c.start_at, StartAt::End);
        assert_eq!(c.poll_interval, Duration::from_secs(1));
        let m = c.multiline.unwrap();
        assert_eq!((m.max_wait, m.max_lines), (Duration::from_secs(3), 128));
        for bad in [
            r#"{"path":["a"]}"#,
            r#"{"multiline":{"first_line":"x","wait":"1s"}}"#,
        ] {
            let e = serde_json::from_str::<TailConfig>(bad).unwrap_err();
            assert!(e.to_string().contains("unknown field"), "{e}");
        }
    }

    #[test]
    fn validate_names_the_key() {
        let mut ok = TailConfig {
            paths: vec!["/tmp/x/*.log".into()],
            ..Default::default()
        };
        let e = ok.validate().unwrap_err().to_string();
        assert!(e.contains("`positions_file`"), "{e}");
        ok.fill_positions_file(Path::new("/data"));
        assert_eq!(ok.positions_file, Path::new("/data/tail-positions.json"));
        ok.validate().unwrap();
        type Change = Box<dyn Fn(&mut TailConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("`paths`", Box::new(|c| c.paths.clear())),
            ("`paths[1]`", Box::new(|c| c.paths.push("a/[".into()))),
            (
                "`labels.filename`",
                Box::new(|c| {
                    c.labels.insert("filename".into(), "x".into());
                }),
            ),
            (
                "`labels.1x`",
                Box::new(|c| {
                    c.labels.insert("1x".into(), "x".into());
                }),
            ),
            ("`tenant`", Box::new(|c| c.tenant = "bad tenant".into())),
            (
                "`poll_interval`",
                Box::new(|c| c.poll_interval = Duration::ZERO),
            ),
            ("`batch_size`", Box::new(|c| c.batch_size = 0)),
            ("`max_line_bytes`", Box::new(|c| c.max_line_bytes = 0)),
            (
                "`multiline.first_line`",
                Box::new(|c| {
                    c.multiline = Some(Multiline {
                        first_line: "(".into(),
                        max_wait: default_max_wait(),
                        max_lines: 10,
                    })
                }),
            ),
            (
                "`multiline.max_lines`",
                Box::new(|c| {
                    c.multiline = Some(Multiline {
                        first_line: "x".into(),
                        max_wait: default_max_wait(),
                        max_lines: 0,
                    })
                }),
            ),
        ];
        for (key, change) in cases {
            let mut c = ok.clone();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
