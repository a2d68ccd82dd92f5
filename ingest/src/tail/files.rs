//! The synchronous half of the tailer: finding files, following them across rotation
//! and truncation, splitting lines, joining multiline entries, giving each record a
//! timestamp unique within the tailer, knowing which offset of each file the event log
//! holds, and describing a batch's records per file for its intent. No I/O other than the files themselves; the async
//! half ([`super::Tailer`]) publishes what [`TailState::poll`] returns and reports back
//! with [`TailState::mark_published`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use argus_schemas::{Envelope, Labels, LogEntry, Payload, Timestamp};
use regex::Regex;

use super::positions::{IntentFile, SavedPosition};
use crate::metrics::{
    TAIL_BYTES_READ, TAIL_FILES_WATCHED, TAIL_LINES_READ, TAIL_ROTATIONS, TAIL_TRUNCATED_LINES,
};

/// A file's identity: (device, inode).
pub(super) type FileKey = (u64, u64);

const READ_CHUNK: usize = 64 * 1024;
/// How far back from the end `start_at: end` looks for the start of the last line.
const END_LOOKBACK: u64 = 64 * 1024;

/// What the state needs from the config, checked and compiled.
pub(super) struct Settings {
    pub patterns: Vec<String>,
    pub labels: Labels,
    pub tenant: String,
    pub max_line: usize,
    pub multiline: Option<MultilineRules>,
    /// Most lines read from one file in one poll.
    pub lines_per_poll: usize,
    pub start_at_end: bool,
}

pub(super) struct MultilineRules {
    pub first_line: Regex,
    pub max_wait: Duration,
    pub max_lines: usize,
}

/// Gives every record a timestamp unique within the tailer (so a record can be found
/// on the event log by its stream and timestamp): when its line was read, or 1 ns after
/// the previous record's when that is not later.
pub(super) struct Clock {
    /// When the current poll started: the read time of the lines it reads.
    now: Timestamp,
    last: i64,
}

impl Clock {
    fn stamp(&mut self, read_at: Timestamp) -> Timestamp {
        let t = read_at.0.max(self.last.saturating_add(1));
        self.last = t;
        Timestamp(t)
    }
}

/// One record ready to publish, and the file offset the event log holds once it is
/// published. Its timestamp (`env.event_time`) is unique within the tailer.
pub(super) struct Out {
    pub env: Envelope,
    pub key: FileKey,
    pub generation: u64,
    pub end: u64,
}

/// A multiline entry being assembled.
struct Block {
    text: String,
    lines: usize,
    read_at: Timestamp,
    last_line: Instant,
    end: u64,
    truncated: bool,
}

/// Keeps `argus_ingest_tail_files_watched` equal to the files followed.
struct FileGauge;

impl FileGauge {
    fn new() -> Self {
        TAIL_FILES_WATCHED.inc();
        FileGauge
    }
}

impl Drop for FileGauge {
    fn drop(&mut self) {
        TAIL_FILES_WATCHED.dec();
    }
}

/// A file being followed, through its open descriptor.
struct Tracked {
    key: FileKey,
    /// Where the file is now (its last name seen by a scan).
    path: PathBuf,
    file: File,
    /// Stream labels, with `filename` = the name it had when first followed.
    labels: Labels,
    /// Next byte to read; every byte before it is in `partial` or in a line.
    offset: u64,
    /// The line read so far (no newline yet), at most `max_line + 1` bytes.
    partial: Vec<u8>,
    /// `partial` overflowed: the line is longer than `max_line`.
    overflow: bool,
    /// Bumped on truncation, so offsets of the old content never become checkpoints.
    generation: u64,
    /// The offset the event log holds: the checkpoint.
    published: u64,
    /// No longer matched by the globs (rotated away or deleted): read to its end, then
    /// finished.
    detached: bool,
    /// Finished: dropped at the next poll, once its last records were published.
    done: bool,
    block: Option<Block>,
    /// The event-log partition its stream's records were last written to.
    partition: Option<i32>,
    _gauge: FileGauge,
}

pub(super) struct TailState {
    s: Settings,
    files: BTreeMap<FileKey, Tracked>,
    /// Path → identity at the previous scan, to see a path change hands.
    last_scan: HashMap<PathBuf, FileKey>,
    /// The positions file as loaded; consulted by the first scan only.
    saved: Vec<SavedPosition>,
    first_scan: bool,
    /// Paths that could not be opened, to warn once.
    unreadable: HashSet<PathBuf>,
    clock: Clock,
}

impl TailState {
    pub fn new(s: Settings, saved: Vec<SavedPosition>) -> Self {
        TailState {
            s,
            files: BTreeMap::new(),
            last_scan: HashMap::new(),
            saved,
            first_scan: true,
            unreadable: HashSet::new(),
            clock: Clock {
                now: Timestamp(0),
                last: 0,
            },
        }
    }

    /// One poll: scans the globs, notices rotations, truncations, new and vanished
    /// files, and reads what was appended; records go to `out`. True when some file has
    /// more to read than one poll reads (poll again without waiting).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Out>) -> bool {
        self.files.retain(|_, f| !f.done);
        self.scan();
        self.clock.now = Timestamp::now();
        let mut more = false;
        // Files rotated away first: their lines were written before the new file's.
        for detached in [true, false] {
            for f in self.files.values_mut().filter(|f| f.detached == detached) {
                more |= f.read(&self.s, now, &mut self.clock, out);
            }
        }
        more
    }

    /// At shutdown: emits the multiline entries being assembled. Partial lines stay
    /// unread (the checkpoint is before them), to be read whole by the next run.
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        for f in self.files.values_mut() {
            f.flush_block(&self.s, &mut self.clock, out);
        }
    }

    /// Records that the event log now holds these records; true when a checkpoint moved.
    pub fn mark_published<'a>(&mut self, done: impl IntoIterator<Item = &'a Out>) -> bool {
        let mut moved = false;
        for o in done {
            if let Some(f) = self.files.get_mut(&o.key)
                && f.generation == o.generation
                && o.end > f.published
            {
                f.published = o.end;
                moved = true;
            }
        }
        moved
    }

    /// What the positions file should say now.
    pub fn positions(&self) -> Vec<SavedPosition> {
        self.files
            .values()
            .map(|f| SavedPosition {
                path: f.path.clone(),
                dev: f.key.0,
                inode: f.key.1,
                offset: f.published,
                name: f.labels.get("filename").map(str::to_string),
                partition: f.partition,
            })
            .collect()
    }

    /// The intent of publishing `batch`, per file: where the file's records start (its
    /// checkpoint), their timestamps and end offsets, in order.
    pub fn intent_files(&self, batch: &[Out]) -> Vec<IntentFile> {
        let mut by_file: BTreeMap<FileKey, IntentFile> = BTreeMap::new();
        for o in batch {
            let Some(f) = self.files.get(&o.key) else {
                continue;
            };
            let i = by_file.entry(o.key).or_insert_with(|| IntentFile {
                dev: o.key.0,
                inode: o.key.1,
                labels: f.labels.clone(),
                start: f.published,
                records: Vec::new(),
                stale: Vec::new(),
            });
            if o.generation == f.generation {
                i.records.push((o.env.event_time.0, o.end));
            } else {
                i.stale.push(o.env.event_time.0);
            }
        }
        by_file.into_values().collect()
    }

    /// The partition a file's records were last written to, if known.
    pub fn partition(&self, key: FileKey) -> Option<i32> {
        self.files.get(&key).and_then(|f| f.partition)
    }

    /// Records where a file's records were written.
    pub fn set_partition(&mut self, key: FileKey, partition: i32) {
        if let Some(f) = self.files.get_mut(&key) {
            f.partition = Some(partition);
        }
    }

    /// Before the first poll: the event log holds a file up to `offset` (an intent was
    /// resolved), whatever the positions file said.
    pub fn restore(&mut self, key: FileKey, offset: u64) {
        if let Some(s) = self.saved.iter_mut().find(|s| (s.dev, s.inode) == key) {
            s.offset = offset;
        }
    }

    fn scan(&mut self) {
        let mut found: Vec<(PathBuf, FileKey)> = Vec::new();
        let mut keys = HashSet::new();
        for pat in &self.s.patterns {
            let paths = match glob::glob(pat) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(pattern = %pat, error = %e, "tail: bad glob");
                    continue;
                }
            };
            for entry in paths {
                let path = match entry {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(error = %e, "tail: glob could not read a directory");
                        continue;
                    }
                };
                let Ok(md) = std::fs::metadata(&path) else {
                    continue;
                };
                if !md.is_file() {
                    continue;
                }
                let key = (md.dev(), md.ino());
                if keys.insert(key) {
                    found.push((path, key));
                }
            }
        }

        let mut scanned = HashMap::new();
        for (path, key) in found {
            if let Some(&old) = self.last_scan.get(&path)
                && old != key
                && self.files.contains_key(&old)
            {
                TAIL_ROTATIONS.with_label_values(&["rotation"]).inc();
                tracing::info!(path = %path.display(), "tail: file rotated; finishing the old one, then following the new one from its start");
            }
            if let Some(f) = self.files.get_mut(&key) {
                f.path = path.clone();
                f.detached = false;
                scanned.insert(path, key);
                continue;
            }
            if let Some(key) = self.open(&path) {
                scanned.insert(path, key);
            }
        }
        let live: HashSet<FileKey> = scanned.values().copied().collect();
        for (key, f) in self.files.iter_mut() {
            if !f.detached && !live.contains(key) {
                f.detached = true;
                tracing::debug!(path = %f.path.display(), "tail: file no longer matched (rotated or deleted); reading it to its end");
            }
        }
        self.last_scan = scanned;
        self.first_scan = false;
        self.saved.clear();
    }

    /// Starts following the file at `path`; its identity, or None when it cannot be read.
    fn open(&mut self, path: &PathBuf) -> Option<FileKey> {
        let opened = File::open(path).and_then(|f| f.metadata().map(|m| (f, m)));
        let (file, md) = match opened {
            Ok(x) => x,
            Err(e) => {
                if self.unreadable.insert(path.clone()) {
                    tracing::warn!(path = %path.display(), error = %e, "tail: cannot open file");
                }
                return None;
            }
        };
        self.unreadable.remove(path);
        // The identity of what was opened: the path may have changed hands since the scan.
        let key = (md.dev(), md.ino());
        if self.files.contains_key(&key) {
            return Some(key);
        }
        let (offset, saved) = self.start_offset(path, key, &file, md.len());
        let mut labels = self.s.labels.clone();
        let name = saved.as_ref().and_then(|s| s.name.clone());
        labels.insert(
            "filename",
            name.unwrap_or_else(|| path.to_string_lossy().into_owned()),
        );
        tracing::debug!(path = %path.display(), offset, "tail: following file");
        self.files.insert(
            key,
            Tracked {
                key,
                path: path.clone(),
                file,
                labels,
                offset,
                partial: Vec::new(),
                overflow: false,
                generation: 0,
                published: offset,
                detached: false,
                done: false,
                block: None,
                partition: saved.and_then(|s| s.partition),
                _gauge: FileGauge::new(),
            },
        );
        Some(key)
    }

    /// Where a newly followed file starts, and its saved position if it had one.
    fn start_offset(
        &mut self,
        path: &PathBuf,
        key: FileKey,
        file: &File,
        size: u64,
    ) -> (u64, Option<SavedPosition>) {
        if !self.first_scan {
            // Created or rotated in while running: all of it is new.
            return (0, None);
        }
        if let Some(i) = self.saved.iter().position(|s| (s.dev, s.inode) == key) {
            let s = self.saved.swap_remove(i);
            if s.offset <= size {
                return (s.offset, Some(s));
            }
            TAIL_ROTATIONS.with_label_values(&["truncation"]).inc();
            tracing::info!(path = %path.display(), "tail: file shrank while stopped (truncated); reading it from its start");
            return (0, Some(s));
        }
        if self.saved.iter().any(|s| &s.path == path) {
            TAIL_ROTATIONS.with_label_values(&["rotation"]).inc();
            tracing::info!(path = %path.display(), "tail: file rotated while stopped; reading the new one from its start");
            return (0, None);
        }
        if self.s.start_at_end {
            return (start_of_last_line(file, size), None);
        }
        (0, None)
    }
}

/// For `start_at: end`: the offset after the last newline, so a line being written is
/// read whole; the end when no newline is within [`END_LOOKBACK`].
fn start_of_last_line(file: &File, size: u64) -> u64 {
    let from = size.saturating_sub(END_LOOKBACK);
    let Ok(len) = usize::try_from(size - from) else {
        return size;
    };
    let mut buf = vec![0u8; len];
    if file.read_exact_at(&mut buf, from).is_err() {
        return size;
    }
    match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => size,
    }
}

impl Tracked {
    /// Reads what was appended since the last poll; true when it stopped at the
    /// per-poll line limit with more to read.
    fn read(&mut self, s: &Settings, now: Instant, clock: &mut Clock, out: &mut Vec<Out>) -> bool {
        let size = match self.file.metadata() {
            Ok(m) => m.len(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "tail: cannot stat open file");
                return false;
            }
        };
        if size < self.offset {
            TAIL_ROTATIONS.with_label_values(&["truncation"]).inc();
            tracing::info!(path = %self.path.display(), "tail: file truncated; reading it again from its start");
            // What was read of the old content is still emitted; it never becomes a
            // checkpoint (new generation), and the new content starts at 0.
            self.emit_partial(s, now, clock, out);
            self.flush_block(s, clock, out);
            self.generation += 1;
            self.offset = 0;
            self.published = 0;
        }

        let mut chunk = vec![0u8; READ_CHUNK];
        let mut lines = 0usize;
        let mut consumed = 0u64;
        let mut more = false;
        'reading: loop {
            let n = match self.file.read_at(&mut chunk, self.offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "tail: read failed");
                    break;
                }
            };
            let data = &chunk[..n];
            let mut pos = 0;
            while pos < n {
                if lines >= s.lines_per_poll {
                    more = true;
                    self.offset += pos as u64;
                    consumed += pos as u64;
                    break 'reading;
                }
                match data[pos..].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.append(&data[pos..pos + i], s.max_line);
                        pos += i + 1;
                        let end = self.offset + pos as u64;
                        self.take_line(s, end, now, clock, out);
                        lines += 1;
                    }
                    None => {
                        self.append(&data[pos..], s.max_line);
                        pos = n;
                    }
                }
            }
            self.offset += n as u64;
            consumed += n as u64;
        }
        TAIL_BYTES_READ.inc_by(consumed);

        if self.detached && consumed == 0 {
            // Nothing more arrived in a whole poll interval: the writer has moved on.
            self.emit_partial(s, now, clock, out);
            self.flush_block(s, clock, out);
            self.done = true;
            tracing::debug!(path = %self.path.display(), "tail: finished rotated or deleted file");
            return false;
        }
        if !more
            && let (Some(rules), Some(b)) = (&s.multiline, &self.block)
            && now.duration_since(b.last_line) >= rules.max_wait
        {
            self.flush_block(s, clock, out);
        }
        more
    }

    fn append(&mut self, bytes: &[u8], max_line: usize) {
        // One byte over the limit, for a CR before the newline.
        let room = (max_line + 1).saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.overflow = true;
        }
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The line in `partial` without a newline, when the file is finished.
    fn emit_partial(&mut self, s: &Settings, now: Instant, clock: &mut Clock, out: &mut Vec<Out>) {
        if !self.partial.is_empty() || self.overflow {
            let end = self.offset;
            self.take_line(s, end, now, clock, out);
        }
    }

    /// Turns `partial` into a line ending at file offset `end`.
    fn take_line(
        &mut self,
        s: &Settings,
        end: u64,
        now: Instant,
        clock: &mut Clock,
        out: &mut Vec<Out>,
    ) {
        let mut bytes = std::mem::take(&mut self.partial);
        let mut truncated = std::mem::take(&mut self.overflow);
        if !truncated && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.len() > s.max_line {
            truncated = true;
            let mut cut = s.max_line;
            // Cut before a character the limit would split.
            while cut > 0 && (bytes[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            bytes.truncate(cut);
        }
        let line = String::from_utf8_lossy(&bytes).into_owned();
        TAIL_LINES_READ.inc();
        if truncated {
            TAIL_TRUNCATED_LINES.inc();
        }
        let Some(rules) = &s.multiline else {
            let ts = clock.stamp(clock.now);
            out.push(self.entry(s, line, truncated, ts, end));
            return;
        };
        let starts = rules.first_line.is_match(&line);
        if let (false, Some(b)) = (starts, &mut self.block) {
            if b.text.len() + 1 + line.len() > s.max_line {
                if !b.truncated {
                    TAIL_TRUNCATED_LINES.inc();
                }
                b.truncated = true;
            } else {
                b.text.push('\n');
                b.text.push_str(&line);
            }
            b.truncated |= truncated;
            b.lines += 1;
            b.end = end;
            b.last_line = now;
            if b.lines >= rules.max_lines {
                self.flush_block(s, clock, out);
            }
            return;
        }
        self.flush_block(s, clock, out);
        self.block = Some(Block {
            text: line,
            lines: 1,
            read_at: clock.now,
            last_line: now,
            end,
            truncated,
        });
        if rules.max_lines <= 1 {
            self.flush_block(s, clock, out);
        }
    }

    fn flush_block(&mut self, s: &Settings, clock: &mut Clock, out: &mut Vec<Out>) {
        if let Some(b) = self.block.take() {
            let ts = clock.stamp(b.read_at);
            out.push(self.entry(s, b.text, b.truncated, ts, b.end));
        }
    }

    fn entry(&self, s: &Settings, line: String, truncated: bool, ts: Timestamp, end: u64) -> Out {
        let mut md = Labels::new();
        if truncated {
            md.insert("truncated", "true");
        }
        let entry = LogEntry {
            labels: self.labels.clone(),
            timestamp: ts,
            line,
            structured_metadata: md,
        };
        Out {
            env: Envelope::new(s.tenant.as_str(), "file", ts, Payload::LogEntry(entry)),
            key: self.key,
            generation: self.generation,
            end,
        }
    }
}
