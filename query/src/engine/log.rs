//! Log queries: the `limit` entries nearest the query's starting edge (the oldest for
//! `forward`, the newest for `backward`), across all selected streams, after the
//! pipeline; grouped into one result stream per processed label set.
//!
//! The range `[start, end)` is read in time slices that grow geometrically from the
//! starting edge. Entries of a slice go through a heap bounded by `limit`; once the
//! heap is full after a slice, later slices cannot contribute and reading stops. With
//! `interval`, Loki keeps an entry only when it is at least `interval` past the last
//! one kept (over all streams); that selection runs over each slice in time order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use argus_schemas::Labels;

use super::result::StreamResult;
use super::util::{LineProc, PAGE, select_streams};
use super::{Ctx, QueryParams};
use crate::error::Result;
use crate::logql::ast::LogExpr;
use crate::logql::pipeline::leading_line_filters;
use crate::store::{Cursor, Direction, ScanRequest};

/// One processed entry competing for a place in the result.
struct Cand {
    ts: i64,
    fp: u64,
    seq: u64,
    backward: bool,
    line: String,
    labels: Labels,
}

impl Cand {
    /// Order in the query's direction: earlier is "less" (better). Timestamp ties go
    /// by stream fingerprint ascending (Loki: stream hash), then by the stream's order.
    fn order(&self, other: &Self) -> Ordering {
        let by_ts = if self.backward {
            other.ts.cmp(&self.ts)
        } else {
            self.ts.cmp(&other.ts)
        };
        let by_seq = if self.backward {
            other.seq.cmp(&self.seq)
        } else {
            self.seq.cmp(&other.seq)
        };
        by_ts.then(self.fp.cmp(&other.fp)).then(by_seq)
    }
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.order(other) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    /// The heap's top is the worst candidate.
    fn cmp(&self, other: &Self) -> Ordering {
        self.order(other)
    }
}

pub async fn run(ctx: &mut Ctx<'_>, expr: &LogExpr, p: &QueryParams) -> Result<Vec<StreamResult>> {
    let limit = p.limit as usize;
    if limit == 0 || p.end <= p.start {
        return Ok(Vec::new());
    }
    let streams = select_streams(ctx, &expr.selector, p.start, p.end).await?;
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    let proc = LineProc::new(&expr.pipeline)?;
    let filters = leading_line_filters(&expr.pipeline);
    let fps: Vec<u64> = streams.iter().map(|s| s.fingerprint).collect();
    let backward = p.direction == Direction::Backward;
    let span = p.end - p.start;
    let mut width = (span / 64).max(1_000_000_000).min(span);

    let mut heap: BinaryHeap<Cand> = BinaryHeap::new();
    // interval selection state
    let mut selected: Vec<Cand> = Vec::new();
    let mut last_kept: Option<i64> = None;
    let interval = p.interval.max(0);

    // the unread part of the range, [lo, hi)
    let (mut lo, mut hi) = (p.start, p.end);
    while lo < hi {
        let (a, b) = if backward {
            (hi.saturating_sub(width).max(lo), hi)
        } else {
            (lo, lo.saturating_add(width).min(hi))
        };
        let mut slice: Vec<Cand> = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let req = ScanRequest {
                tenant: ctx.tenant,
                streams: &fps,
                start: a,
                end: b,
                filters: &filters,
                direction: p.direction,
                after,
                limit: PAGE,
            };
            let rows = ctx.store.scan(&req).await?;
            let n = rows.len();
            let bytes: u64 = rows.iter().map(|(_, e)| e.line.len() as u64).sum();
            ctx.add_scanned(n as u64, bytes)?;
            if let Some((fp, e)) = rows.last() {
                after = Some(Cursor {
                    fingerprint: *fp,
                    ts: e.ts,
                    seq: e.seq,
                });
            }
            for (fp, e) in rows {
                if e.ts < a || e.ts >= b {
                    continue;
                }
                let Ok(i) = streams.binary_search_by_key(&fp, |s| s.fingerprint) else {
                    continue;
                };
                let Some(out) = proc.process(e.ts, &e.line, &streams[i].labels, &e.metadata) else {
                    continue;
                };
                let c = Cand {
                    ts: e.ts,
                    fp,
                    seq: e.seq,
                    backward,
                    line: out.line,
                    labels: out.labels,
                };
                if interval > 0 {
                    slice.push(c);
                } else if heap.len() < limit {
                    heap.push(c);
                } else if heap
                    .peek()
                    .is_some_and(|worst| c.order(worst) == Ordering::Less)
                {
                    heap.pop();
                    heap.push(c);
                }
            }
            if n < PAGE {
                break;
            }
        }
        if interval > 0 {
            slice.sort();
            for c in slice {
                if selected.len() >= limit {
                    break;
                }
                let keep = match last_kept {
                    None => true,
                    Some(last) if backward => c.ts <= last - interval,
                    Some(last) => c.ts >= last + interval,
                };
                if keep {
                    last_kept = Some(c.ts);
                    selected.push(c);
                }
            }
            if selected.len() >= limit {
                break;
            }
        } else if heap.len() >= limit {
            break;
        }
        if backward {
            hi = a;
        } else {
            lo = b;
        }
        width = width.saturating_mul(2);
    }
    let chosen = if interval > 0 {
        selected
    } else {
        heap.into_sorted_vec()
    };
    let mut by_labels: BTreeMap<String, StreamResult> = BTreeMap::new();
    for c in chosen {
        let key = c.labels.to_string();
        by_labels
            .entry(key)
            .or_insert_with(|| StreamResult {
                labels: c.labels.clone(),
                entries: Vec::new(),
            })
            .entries
            .push((c.ts, c.line, Labels::new()));
    }
    Ok(by_labels.into_values().collect())
}
