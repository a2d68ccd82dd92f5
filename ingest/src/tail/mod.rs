//! File tailing, like Promtail's file target: follows the files matched by globs and
//! writes each line to the event log as a `log_entry` record.
//!
//! This module owns finding the files, following them across rotation and truncation
//! ([`files`]), turning lines (or multiline blocks) into records, publishing them with
//! retries, and the positions file ([`positions`]) that lets a restart continue where the
//! event log left off.
//!
//! **Records.** One `log_entry` per line (source `file`, tenant from the config): stream
//! labels are the configured `labels` plus `filename`, the path under which the file was
//! first followed (a rotated file keeps the name it had); the timestamp is when the line
//! was read (Unix ns); the line is the text without its `\n` (and without a `\r` before
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
//! **Checkpoints, and what a restart sees.** The positions file holds, for each followed
//! file, (path, device, inode, offset), where offset is just after the last line whose
//! record [`argus_bus::EventLog::publish`] acknowledged. It is only moved forward after a
//! publish returns `Ok`, and rewritten after every successful publish (at most
//! `batch_size` records each) and whenever the set of files changes; always atomically
//! (temporary file, fsync, rename, fsync of the directory). Therefore:
//! - after a clean shutdown (what was read is published, then checkpointed) a restart
//!   reads exactly the lines appended since: none lost, none repeated;
//! - after a crash, no line is lost, and the only lines that can repeat are those of
//!   the last batch, published but not yet checkpointed (at-least-once with a window of
//!   one batch, per file). Lines of an open multiline entry are not checkpointed until
//!   the entry is published, so they are read again rather than lost;
//! - on restart a file is found by its inode, so a rename during downtime to a name the
//!   globs still match (`app.log.1` under `app.log*`) is followed from its saved offset;
//!   if the path names a new inode and the old inode is no longer matched, the new file
//!   is read from 0. **Limitation:** lines appended to the old file after the last
//!   checkpoint and before it was rotated away while Argus was down are then lost,
//!   unless the globs match the rotated name. Matching rotated names is safe (no
//!   duplicates, thanks to inode identity), but note that compressed rotations
//!   (`app.log.2.gz`) would be read as text: exclude them with a narrower glob
//!   (`app.log.[0-9]`).
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
//! checkpoint, so the next run reads it again.
//!
//! Reading and the positions file use blocking file I/O, run on tokio's blocking pool.

mod files;
pub mod positions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use argus_schemas::Labels;
use argus_schemas::duration::serde_duration;

use crate::metrics::{RECEIVED, TAIL_CHECKPOINT_FAILURES, TAIL_PUBLISH_FAILURES};
use files::{MultilineRules, Out, Settings, TailState};
use positions::SavedPosition;

const COLLECTOR: &str = "file";
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
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
    /// What the positions file says now.
    written: Vec<SavedPosition>,
}

/// Checks the config, loads the positions and tails until shutdown.
pub async fn run(
    cfg: TailConfig,
    log: argus_bus::EventLog,
    shutdown: watch::Receiver<bool>,
) -> Result<(), TailError> {
    Tailer::new(cfg)?.run(log, shutdown).await
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
            state: TailState::new(settings, saved.clone()),
            positions_file: cfg.positions_file,
            poll_interval: cfg.poll_interval,
            batch_size: cfg.batch_size,
            written: saved,
        })
    }

    /// Tails until shutdown; see the module docs for the guarantees.
    pub async fn run(
        mut self,
        log: argus_bus::EventLog,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), TailError> {
        let mut pending: Vec<Out> = Vec::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (state, out, more) = poll(self.state).await?;
            self.state = state;
            pending = out;
            if !self.publish(&log, &mut pending, &mut shutdown).await {
                break;
            }
            self.checkpoint().await;
            if !more {
                tokio::select! {
                    biased;
                    _ = signalled(&mut shutdown) => break,
                    _ = tokio::time::sleep(self.poll_interval) => {}
                }
            }
        }

        self.state.finish(&mut pending);
        let give_up = Instant::now() + SHUTDOWN_GRACE;
        let mut unpublished = 0;
        while !pending.is_empty() {
            let rest = pending.split_off(pending.len().min(self.batch_size));
            if !publish_until(&log, &pending, give_up).await {
                unpublished = pending.len() + rest.len();
                break;
            }
            self.state.mark_published(&pending);
            pending = rest;
        }
        self.checkpoint().await;
        if unpublished > 0 {
            tracing::warn!(
                unpublished,
                "tail: records not published before shutdown; they are after the checkpoint and will be read again"
            );
        }
        Ok(())
    }

    /// Publishes `pending` in batches, checkpointing after each; retries while the
    /// event log refuses. False when shutdown was asked for meanwhile (what is left
    /// stays in `pending`).
    async fn publish(
        &mut self,
        log: &argus_bus::EventLog,
        pending: &mut Vec<Out>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        while !pending.is_empty() {
            let n = pending.len().min(self.batch_size);
            let mut backoff = BACKOFF_START;
            loop {
                let batch: Vec<_> = pending[..n].iter().map(|o| o.env.clone()).collect();
                match log.publish(&batch).await {
                    Ok(()) => break,
                    Err(e) => {
                        TAIL_PUBLISH_FAILURES.inc();
                        tracing::warn!(
                            error = %e,
                            pending = pending.len(),
                            retry_in = ?backoff,
                            "tail: event log unavailable; holding the batch and retrying"
                        );
                        tokio::select! {
                            biased;
                            _ = signalled(shutdown) => return false,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
            published(n);
            let done: Vec<Out> = pending.drain(..n).collect();
            self.state.mark_published(&done);
            self.checkpoint().await;
        }
        true
    }

    /// Writes the positions file if it would change. A failed write is retried at the
    /// next checkpoint; meanwhile a restart would repeat lines, never lose them.
    async fn checkpoint(&mut self) {
        let now = self.state.positions();
        if now == self.written {
            return;
        }
        let path = self.positions_file.clone();
        let entries = now.clone();
        let r = tokio::task::spawn_blocking(move || positions::save(&path, &entries)).await;
        match r {
            Ok(Ok(())) => self.written = now,
            Ok(Err(e)) => {
                TAIL_CHECKPOINT_FAILURES.inc();
                tracing::error!(path = %self.positions_file.display(), error = %e, "tail: cannot write the positions file");
            }
            Err(e) => {
                TAIL_CHECKPOINT_FAILURES.inc();
                tracing::error!(error = %e, "tail: positions writer task failed");
            }
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

/// Publishes one batch, retrying with backoff until `give_up`.
async fn publish_until(log: &argus_bus::EventLog, batch: &[Out], give_up: Instant) -> bool {
    let envs: Vec<_> = batch.iter().map(|o| o.env.clone()).collect();
    let mut backoff = BACKOFF_START;
    loop {
        match log.publish(&envs).await {
            Ok(()) => {
                published(envs.len());
                return true;
            }
            Err(e) => {
                TAIL_PUBLISH_FAILURES.inc();
                let now = Instant::now();
                if now >= give_up {
                    tracing::error!(error = %e, pending = envs.len(), "tail: giving up publishing at shutdown");
                    return false;
                }
                tokio::time::sleep(backoff.min(give_up - now)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
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
