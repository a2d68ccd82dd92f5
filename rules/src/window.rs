//! The metric window: an in-memory store of the recent samples of every series seen on
//! `argus.metrics`, which the PromQL engine reads through [`Storage`].
//!
//! - Sharded by label fingerprint; each shard sits behind its own `RwLock`, so queries
//!   read concurrently with appends to other shards.
//! - Each shard keeps an inverted index (label name → value → series), so a selector with
//!   an equality matcher (or a regex on a label that must be present, such as `__name__`)
//!   touches only the series it can match.
//! - Samples within a series must arrive in timestamp order, as Prometheus' head block
//!   requires: an older sample is refused (`out_of_order`), a sample at the newest
//!   timestamp with a different value is refused (`duplicate`; the same value is ignored
//!   silently), and a sample older than the retention is refused (`too_old`). Refusals are
//!   counted in `argus_rules_window_samples_rejected_total`.
//! - Retention is measured from the newest sample timestamp seen (the high-water mark),
//!   not from the wall clock, so replayed or synthetic data behaves the same as live data.
//!   Samples older than `high_water - retention` are dropped; series left without samples
//!   are removed.

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use argus_schemas::{Labels, MetricSamples};
use promql_parser::label::Matcher;

use crate::metrics;
use crate::promql::Storage;

/// Settings of a [`MetricWindow`].
#[derive(Debug, Clone)]
pub struct WindowOptions {
    /// How far behind the newest sample the window keeps samples.
    pub retention_ms: i64,
    /// Number of lock shards (at least 1).
    pub shards: usize,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            retention_ms: 2 * 3600 * 1000,
            shards: 16,
        }
    }
}

/// What became of the samples of one append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    pub appended: usize,
    pub out_of_order: usize,
    pub duplicate: usize,
    pub too_old: usize,
}

struct SeriesEntry {
    /// Creation sequence number: queries return series in creation order, as
    /// Prometheus' head does for unsorted selects (it decides summation order).
    seq: u64,
    labels: Labels,
    samples: VecDeque<(i64, f64)>,
}

#[derive(Default)]
struct Shard {
    by_labels: HashMap<Labels, u32>,
    series: Vec<Option<SeriesEntry>>,
    free: Vec<u32>,
    /// label name → value → ascending series ids.
    postings: HashMap<String, HashMap<String, Vec<u32>>>,
}

impl Shard {
    fn insert_series(&mut self, labels: Labels, seq: u64) -> u32 {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.series.push(None);
                (self.series.len() - 1) as u32
            }
        };
        for (n, v) in labels.iter() {
            let list = self
                .postings
                .entry(n.to_string())
                .or_default()
                .entry(v.to_string())
                .or_default();
            if let Err(pos) = list.binary_search(&id) {
                list.insert(pos, id);
            }
        }
        self.by_labels.insert(labels.clone(), id);
        self.series[id as usize] = Some(SeriesEntry {
            seq,
            labels,
            samples: VecDeque::new(),
        });
        id
    }

    fn remove_series(&mut self, id: u32) {
        let Some(entry) = self.series[id as usize].take() else {
            return;
        };
        for (n, v) in entry.labels.iter() {
            if let Some(values) = self.postings.get_mut(n) {
                if let Some(list) = values.get_mut(v) {
                    if let Ok(pos) = list.binary_search(&id) {
                        list.remove(pos);
                    }
                    if list.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.postings.remove(n);
                }
            }
        }
        self.by_labels.remove(&entry.labels);
        self.free.push(id);
    }

    /// Ids of the series that can match all `matchers`, in ascending order (a superset for
    /// matchers that are not used for the lookup; the caller filters).
    fn candidates(&self, matchers: &[Matcher]) -> Vec<u32> {
        // Equality matchers with a non-empty value: intersect their postings.
        let mut lists: Vec<&Vec<u32>> = Vec::new();
        for m in matchers {
            if matches!(m.op, promql_parser::label::MatchOp::Equal) && !m.value.is_empty() {
                match self.postings.get(&m.name).and_then(|v| v.get(&m.value)) {
                    Some(l) => lists.push(l),
                    None => return Vec::new(),
                }
            }
        }
        if !lists.is_empty() {
            lists.sort_by_key(|l| l.len());
            let mut out: Vec<u32> = lists[0].clone();
            for l in &lists[1..] {
                out.retain(|id| l.binary_search(id).is_ok());
                if out.is_empty() {
                    break;
                }
            }
            return out;
        }
        // A matcher that needs the label present: union of the matching values' postings.
        for m in matchers {
            if !m.is_match("") {
                let Some(values) = self.postings.get(&m.name) else {
                    return Vec::new();
                };
                let mut out: Vec<u32> = Vec::new();
                for (v, ids) in values {
                    if m.is_match(v) {
                        out.extend_from_slice(ids);
                    }
                }
                out.sort_unstable();
                out.dedup();
                return out;
            }
        }
        (0..self.series.len() as u32)
            .filter(|id| self.series[*id as usize].is_some())
            .collect()
    }

    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = &'a SeriesEntry> {
        self.candidates(matchers)
            .into_iter()
            .filter_map(|id| self.series[id as usize].as_ref())
            .filter(|e| {
                matchers
                    .iter()
                    .all(|m| m.is_match(e.labels.get(&m.name).unwrap_or("")))
            })
    }
}

/// The in-memory window of recent metric samples (see the module docs).
pub struct MetricWindow {
    opts: WindowOptions,
    shards: Vec<RwLock<Shard>>,
    high_water: AtomicI64,
    last_gc: AtomicI64,
    next_seq: AtomicU64,
    series_count: AtomicI64,
    sample_count: AtomicI64,
}

impl Default for MetricWindow {
    fn default() -> Self {
        MetricWindow::new(WindowOptions::default())
    }
}

impl MetricWindow {
    pub fn new(opts: WindowOptions) -> Self {
        let n = opts.shards.max(1);
        MetricWindow {
            shards: (0..n).map(|_| RwLock::new(Shard::default())).collect(),
            opts,
            high_water: AtomicI64::new(i64::MIN),
            last_gc: AtomicI64::new(i64::MIN),
            next_seq: AtomicU64::new(0),
            series_count: AtomicI64::new(0),
            sample_count: AtomicI64::new(0),
        }
    }

    pub fn options(&self) -> &WindowOptions {
        &self.opts
    }

    fn shard_of(&self, labels: &Labels) -> usize {
        (labels.fingerprint().0 % self.shards.len() as u64) as usize
    }

    /// The oldest timestamp the window still accepts.
    pub fn min_valid_ms(&self) -> i64 {
        let hw = self.high_water.load(Ordering::Relaxed);
        if hw == i64::MIN {
            i64::MIN
        } else {
            hw.saturating_sub(self.opts.retention_ms)
        }
    }

    /// The newest sample timestamp seen, if any.
    pub fn high_water_ms(&self) -> Option<i64> {
        let hw = self.high_water.load(Ordering::Relaxed);
        (hw != i64::MIN).then_some(hw)
    }

    /// Appends one record's samples (see the module docs for what is refused).
    pub fn append(&self, rec: &MetricSamples) -> AppendOutcome {
        self.append_samples(
            &rec.labels,
            rec.samples.iter().map(|s| (s.timestamp_ms, s.value)),
        )
    }

    /// Appends samples of one series given as `(timestamp_ms, value)`.
    pub fn append_samples(
        &self,
        labels: &Labels,
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) -> AppendOutcome {
        let samples: Vec<(i64, f64)> = samples.into_iter().collect();
        let mut out = AppendOutcome::default();
        if samples.is_empty() {
            return out;
        }
        if let Some(max_t) = samples.iter().map(|s| s.0).max() {
            self.high_water.fetch_max(max_t, Ordering::Relaxed);
        }
        let min_valid = self.min_valid_ms();
        let shard_idx = self.shard_of(labels);
        let mut created = false;
        {
            let mut shard = self.shards[shard_idx].write().expect("window lock");
            let id = match shard.by_labels.get(labels) {
                Some(id) => *id,
                None => {
                    if samples.iter().all(|s| s.0 < min_valid) {
                        out.too_old = samples.len();
                        drop(shard);
                        self.count_rejections(&out);
                        return out;
                    }
                    created = true;
                    let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                    shard.insert_series(labels.clone(), seq)
                }
            };
            let entry = shard.series[id as usize].as_mut().expect("live series");
            let before = entry.samples.len();
            for (t, v) in samples {
                if t < min_valid {
                    out.too_old += 1;
                    continue;
                }
                match entry.samples.back() {
                    Some(&(lt, _)) if t < lt => out.out_of_order += 1,
                    Some(&(lt, lv)) if t == lt => {
                        if lv.to_bits() != v.to_bits() {
                            out.duplicate += 1;
                        }
                    }
                    _ => {
                        entry.samples.push_back((t, v));
                        out.appended += 1;
                    }
                }
            }
            while entry.samples.front().is_some_and(|s| s.0 < min_valid) {
                entry.samples.pop_front();
            }
            let after = entry.samples.len();
            let empty = after == 0;
            self.sample_count
                .fetch_add(after as i64 - before as i64, Ordering::Relaxed);
            if empty {
                shard.remove_series(id);
                if !created {
                    self.series_count.fetch_sub(1, Ordering::Relaxed);
                }
            } else if created {
                self.series_count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count_rejections(&out);
        self.maybe_gc();
        self.publish_gauges();
        out
    }

    fn count_rejections(&self, out: &AppendOutcome) {
        for (reason, n) in [
            ("out_of_order", out.out_of_order),
            ("duplicate", out.duplicate),
            ("too_old", out.too_old),
        ] {
            if n > 0 {
                metrics::WINDOW_SAMPLES_REJECTED
                    .with_label_values(&[reason])
                    .inc_by(n as u64);
            }
        }
    }

    fn publish_gauges(&self) {
        metrics::WINDOW_SERIES.set(self.series_count.load(Ordering::Relaxed));
        metrics::WINDOW_SAMPLES.set(self.sample_count.load(Ordering::Relaxed));
    }

    /// Runs [`MetricWindow::gc`] when the high-water mark moved by a sixteenth of the
    /// retention since the last run.
    fn maybe_gc(&self) {
        let hw = self.high_water.load(Ordering::Relaxed);
        let last = self.last_gc.load(Ordering::Relaxed);
        let every = (self.opts.retention_ms / 16).max(1);
        if last == i64::MIN {
            // First append: start counting from here.
            let _ = self
                .last_gc
                .compare_exchange(last, hw, Ordering::Relaxed, Ordering::Relaxed);
        } else if hw.saturating_sub(last) >= every
            && self
                .last_gc
                .compare_exchange(last, hw, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.gc();
        }
    }

    /// Drops samples older than the retention and series left without samples.
    pub fn gc(&self) {
        let min_valid = self.min_valid_ms();
        for shard in &self.shards {
            let mut shard = shard.write().expect("window lock");
            let mut empty = Vec::new();
            let mut dropped = 0i64;
            for (id, e) in shard.series.iter_mut().enumerate() {
                if let Some(e) = e {
                    while e.samples.front().is_some_and(|s| s.0 < min_valid) {
                        e.samples.pop_front();
                        dropped += 1;
                    }
                    if e.samples.is_empty() {
                        empty.push(id as u32);
                    }
                }
            }
            for id in &empty {
                shard.remove_series(*id);
            }
            self.sample_count.fetch_sub(dropped, Ordering::Relaxed);
            self.series_count
                .fetch_sub(empty.len() as i64, Ordering::Relaxed);
        }
        self.publish_gauges();
    }

    /// Series held.
    pub fn series_count(&self) -> usize {
        self.series_count.load(Ordering::Relaxed).max(0) as usize
    }

    /// Samples held.
    pub fn sample_count(&self) -> usize {
        self.sample_count.load(Ordering::Relaxed).max(0) as usize
    }

    /// Label sets of the series that match every matcher of at least one of
    /// `matcher_sets` and have a sample in `[start_ms, end_ms]`; sorted, without duplicates.
    pub fn series(&self, matcher_sets: &[Vec<Matcher>], start_ms: i64, end_ms: i64) -> Vec<Labels> {
        let mut out: Vec<Labels> = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().expect("window lock");
            for ms in matcher_sets {
                for e in shard.matching(ms) {
                    if has_sample_in(&e.samples, start_ms, end_ms) {
                        out.push(e.labels.clone());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Label names of the selected series (all series when `matcher_sets` is empty), sorted.
    pub fn label_names(
        &self,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<String> {
        let mut names: std::collections::BTreeSet<String> = Default::default();
        for l in self.selected(matcher_sets, start_ms, end_ms) {
            for (n, _) in l.iter() {
                names.insert(n.to_string());
            }
        }
        names.into_iter().collect()
    }

    /// Values of label `name` among the selected series (all series when `matcher_sets` is
    /// empty), sorted.
    pub fn label_values(
        &self,
        name: &str,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<String> {
        let mut values: std::collections::BTreeSet<String> = Default::default();
        for l in self.selected(matcher_sets, start_ms, end_ms) {
            if let Some(v) = l.get(name) {
                values.insert(v.to_string());
            }
        }
        values.into_iter().collect()
    }

    fn selected(&self, matcher_sets: &[Vec<Matcher>], start_ms: i64, end_ms: i64) -> Vec<Labels> {
        if matcher_sets.is_empty() {
            let mut out = Vec::new();
            for shard in &self.shards {
                let shard = shard.read().expect("window lock");
                for e in shard.series.iter().flatten() {
                    if has_sample_in(&e.samples, start_ms, end_ms) {
                        out.push(e.labels.clone());
                    }
                }
            }
            out
        } else {
            self.series(matcher_sets, start_ms, end_ms)
        }
    }
}

fn has_sample_in(samples: &VecDeque<(i64, f64)>, start_ms: i64, end_ms: i64) -> bool {
    let i = samples.partition_point(|s| s.0 < start_ms);
    i < samples.len() && samples[i].0 <= end_ms
}

impl Storage for MetricWindow {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().expect("window lock");
            for e in shard.matching(matchers) {
                let lo = e.samples.partition_point(|s| s.0 < start_ms);
                let hi = e.samples.partition_point(|s| s.0 <= end_ms);
                if lo < hi {
                    out.push((
                        e.seq,
                        e.labels.clone(),
                        e.samples.range(lo..hi).copied().collect(),
                    ));
                }
            }
        }
        out.sort_by_key(|x| x.0);
        out.into_iter().map(|(_, l, s)| (l, s)).collect()
    }
}
