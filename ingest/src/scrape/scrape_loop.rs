//! One target's scrape loop: fetching, turning an exposition into series, staleness,
//! the synthetic report series, and publishing.
//!
//! See the parent module's docs for what is written; this module implements it.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use argus_schemas::{Envelope, Labels, MetricSamples, Payload, STALE_NAN_BITS, Sample, Timestamp};

use super::target::Target;
use super::{Job, relabel};
use crate::exposition::{self, Family};
use crate::metrics::{
    RECEIVED, SAMPLES_RECEIVED, SCRAPE_DROPPED_SAMPLES, SCRAPE_PUBLISH_FAILURES, SCRAPES,
};

/// The records' source.
pub const SOURCE: &str = "scrape";
const COLLECTOR: &str = "scrape";
/// What Prometheus 2 sends: OpenMetrics preferred, the text format as fallback.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,\
     application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// Prometheus' `scrape.timestamp-tolerance`.
const TIMESTAMP_TOLERANCE_MS: i64 = 2;
/// Records per publish call.
const PUBLISH_BATCH: usize = 1000;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long the stale markers of a removed target are retried.
const REMOVAL_GRACE: Duration = Duration::from_secs(5);
/// Gzip input is fed to the decoder in slices this large, so a decompression bomb
/// overshoots `body_size_limit` by at most about 1000 times this.
const GZIP_SLICE: usize = 1024;

/// The synthetic series written after every scrape, in this order.
pub const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// What a scrape loop is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Run,
    /// The target is gone from discovery: write stale markers for all its series.
    Removed,
    /// The scraper stops: no stale markers (a restart continues the series).
    Shutdown,
}

/// Why a scrape failed: a metric reason and a message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
}

fn fail(reason: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        reason,
        message: message.into(),
    }
}

/// A series of one scrape, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub value: f64,
    /// Series with a timestamp of their own (honored) get no stale markers.
    pub tracked: bool,
}

/// A parsed and relabeled scrape.
#[derive(Debug, Default)]
pub struct Processed {
    pub series: Vec<Series>,
    /// Samples in the exposition.
    pub scraped: usize,
    /// Samples left after metric relabeling (duplicates excluded).
    pub post_relabel: usize,
    pub duplicates: usize,
}

/// Attaches the target's labels to a sample's, as Prometheus' `mutateSampleLabels`.
/// Empty values count as absent.
pub fn attach_target_labels(sample: &Labels, target: &Labels, honor_labels: bool) -> Labels {
    let mut lb = Labels::from_pairs(sample.iter().filter(|(_, v)| !v.is_empty()));
    if honor_labels {
        for (n, v) in target.iter() {
            if lb.get(n).is_none() {
                lb.insert(n, v);
            }
        }
        return lb;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for (n, v) in target.iter() {
        if let Some(existing) = lb.get(n) {
            conflicts.push((n.to_string(), existing.to_string()));
        }
        lb.insert(n, v);
    }
    conflicts.sort_by_key(|(n, _)| n.len());
    for (name, value) in conflicts {
        let mut new = name;
        loop {
            new = format!("exported_{new}");
            if lb.get(&new).is_none() {
                lb.insert(new, value);
                break;
            }
        }
    }
    lb
}

/// Turns parsed families into series: target labels, metric relabeling, timestamps,
/// `sample_limit`. `ts_ms` is the scrape's timestamp.
pub fn process(
    families: Vec<Family>,
    target: &Target,
    job: &Job,
    ts_ms: i64,
) -> Result<Processed, (Failure, Processed)> {
    let mut p = Processed::default();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut missing_name = false;
    for fam in families {
        for s in fam.samples {
            p.scraped += 1;
            let lb = attach_target_labels(&s.labels, &target.public, job.honor_labels);
            let Some(lb) = relabel::process(lb, &job.metric_relabel) else {
                continue;
            };
            if lb.get("__name__").is_none_or(str::is_empty) {
                missing_name = true;
                continue;
            }
            if !seen.insert(lb.fingerprint().0) {
                p.duplicates += 1;
                continue;
            }
            p.post_relabel += 1;
            let own = job.honor_timestamps && s.timestamp_explicit;
            p.series.push(Series {
                labels: lb,
                timestamp_ms: if own { s.timestamp_ms } else { ts_ms },
                value: s.value,
                tracked: !own,
            });
        }
    }
    if missing_name {
        return Err((
            fail("missing_name", "missing metric name (__name__ label)"),
            p,
        ));
    }
    if job.sample_limit > 0 && p.post_relabel > job.sample_limit {
        let msg = format!(
            "sample limit exceeded: {} samples after metric relabeling, sample_limit is {}",
            p.post_relabel, job.sample_limit
        );
        return Err((fail("sample_limit", msg), p));
    }
    Ok(p)
}

/// Fetches the target: the body (decompressed) and its `Content-Type`.
pub async fn fetch(
    client: &reqwest::Client,
    target: &Target,
    body_size_limit: u64,
) -> Result<(Vec<u8>, String), Failure> {
    let attempt = async {
        let resp = client
            .get(&target.url)
            .header(reqwest::header::ACCEPT, ACCEPT_HEADER)
            .header(reqwest::header::ACCEPT_ENCODING, "gzip")
            .header(
                reqwest::header::USER_AGENT,
                concat!("Argus/", env!("CARGO_PKG_VERSION")),
            )
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", target.timeout.as_secs_f64()),
            )
            .send()
            .await
            .map_err(|e| fail("connect", error_chain(&e)))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(fail(
                "http_status",
                format!("server returned HTTP status {}", resp.status()),
            ));
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let gzip = header(reqwest::header::CONTENT_ENCODING)
            .trim()
            .eq_ignore_ascii_case("gzip");
        let body = read_body(resp, gzip, body_size_limit).await?;
        Ok((body, content_type))
    };
    match tokio::time::timeout(target.timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(fail(
            "timeout",
            format!("scrape timed out after {:?}", target.timeout),
        )),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

async fn read_body(
    mut resp: reqwest::Response,
    gzip: bool,
    limit: u64,
) -> Result<Vec<u8>, Failure> {
    let too_large = || {
        fail(
            "body_size_limit",
            format!("body size limit exceeded: the body is larger than {limit} bytes"),
        )
    };
    let over = |n: usize| limit > 0 && n as u64 > limit;
    let mut raw = Vec::new();
    let mut gz = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| fail("connect", format!("reading the body: {}", error_chain(&e))))?;
        let Some(chunk) = chunk else { break };
        match gz.as_mut() {
            None => {
                raw.extend_from_slice(&chunk);
                if over(raw.len()) {
                    return Err(too_large());
                }
            }
            Some(d) => {
                for piece in chunk.chunks(GZIP_SLICE) {
                    d.write_all(piece)
                        .map_err(|e| fail("encoding", format!("bad gzip body: {e}")))?;
                    if over(d.get_ref().len()) {
                        return Err(too_large());
                    }
                }
            }
        }
    }
    match gz {
        None => Ok(raw),
        Some(d) => {
            let out = d
                .finish()
                .map_err(|e| fail("encoding", format!("bad gzip body: {e}")))?;
            if over(out.len()) {
                return Err(too_large());
            }
            Ok(out)
        }
    }
}

/// Wall-clock Unix milliseconds.
fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

fn envelope(tenant: &str, labels: Labels, timestamp_ms: i64, value: f64) -> Envelope {
    Envelope::new(
        tenant,
        SOURCE,
        Timestamp::from_millis(timestamp_ms),
        Payload::MetricSamples(MetricSamples {
            labels,
            samples: vec![Sample {
                timestamp_ms,
                value,
            }],
        }),
    )
}

/// Resolves when the loop is told to stop (a dropped sender is a shutdown).
async fn stopped(rx: &mut watch::Receiver<Stop>) -> Stop {
    match rx.wait_for(|s| *s != Stop::Run).await {
        Ok(s) => *s,
        Err(_) => Stop::Shutdown,
    }
}

/// A target's loop state.
pub struct ScrapeLoop {
    job: Arc<Job>,
    target: Target,
    client: reqwest::Client,
    log: argus_bus::EventLog,
    /// Tracked series written by the last scrape (they get stale markers when missing).
    last: HashMap<u64, Labels>,
    /// Series of the last successful scrape (for `scrape_series_added`).
    known: HashSet<u64>,
    /// Whether the last scrape failed (failures are logged at warn on the first one).
    failing: bool,
    /// Whether report series were written (they get stale markers on removal).
    reported: bool,
}

impl ScrapeLoop {
    pub fn new(
        job: Arc<Job>,
        target: Target,
        client: reqwest::Client,
        log: argus_bus::EventLog,
    ) -> ScrapeLoop {
        ScrapeLoop {
            job,
            target,
            client,
            log,
            last: HashMap::new(),
            known: HashSet::new(),
            failing: false,
            reported: false,
        }
    }

    /// Scrapes every interval until stopped. The first scrape is at the next multiple
    /// of the interval plus an offset derived from the target's identity, so targets
    /// are spread over the interval and each keeps a fixed phase.
    pub async fn run(mut self, mut stop: watch::Receiver<Stop>) {
        let interval = self.target.interval.as_millis().max(1) as i64;
        let offset = (self.target.key() % interval as u64) as i64;
        let now = now_ms();
        let mut next = now - now.rem_euclid(interval) + offset;
        if next < now {
            next += interval;
        }
        loop {
            let wait = Duration::from_millis((next - now_ms()).max(0) as u64);
            tokio::select! {
                biased;
                s = stopped(&mut stop) => return self.finish(s).await,
                _ = tokio::time::sleep(wait) => {}
            }
            let actual = now_ms();
            let ts = if interval > 100 * TIMESTAMP_TOLERANCE_MS
                && (actual - next).abs() <= TIMESTAMP_TOLERANCE_MS
            {
                next
            } else {
                actual
            };
            let envs = tokio::select! {
                biased;
                s = stopped(&mut stop) => return self.finish(s).await,
                e = self.scrape(ts) => e,
            };
            next += interval;
            let now = now_ms();
            if next <= now {
                next += ((now - next) / interval + 1) * interval;
            }
            let give_up = Instant::now() + Duration::from_millis((next - now).max(0) as u64);
            tokio::select! {
                biased;
                s = stopped(&mut stop) => {
                    // Shutdown or removal while publishing: this scrape's records are
                    // still written (within the grace), then the loop ends.
                    publish(&self.log, &envs, Instant::now() + REMOVAL_GRACE).await;
                    return self.finish(s).await;
                }
                _ = publish(&self.log, &envs, give_up) => {}
            }
        }
    }

    /// Writes stale markers for everything when the target was removed.
    async fn finish(&mut self, why: Stop) {
        if why != Stop::Removed {
            return;
        }
        let ts = now_ms();
        let tenant = &self.job.tenant;
        let mut envs: Vec<Envelope> = self
            .last
            .drain()
            .map(|(_, l)| envelope(tenant, l, ts, stale()))
            .collect();
        if self.reported {
            for name in REPORT_SERIES {
                envs.push(envelope(tenant, self.report_labels(name), ts, stale()));
            }
        }
        publish(&self.log, &envs, Instant::now() + REMOVAL_GRACE).await;
    }

    fn report_labels(&self, name: &str) -> Labels {
        let mut l = self.target.public.clone();
        l.insert("__name__", name);
        l
    }

    /// One scrape at `ts_ms`: its records (samples, stale markers, report series).
    pub async fn scrape(&mut self, ts_ms: i64) -> Vec<Envelope> {
        let started = Instant::now();
        let job = self.job.clone();
        let result = match fetch(&self.client, &self.target, job.body_size_limit).await {
            Err(f) => Err((f, Processed::default())),
            Ok((body, ct)) => match std::str::from_utf8(&body) {
                Err(e) => Err((
                    fail("parse", format!("body is not valid UTF-8: {e}")),
                    Processed::default(),
                )),
                Ok(text) => {
                    let format = exposition::format_from_content_type(&ct);
                    match exposition::parse(text, format, ts_ms) {
                        Err(e) => Err((fail("parse", e.to_string()), Processed::default())),
                        Ok(fams) => process(fams, &self.target, &job, ts_ms),
                    }
                }
            },
        };
        let tenant = job.tenant.as_str();
        let mut envs = Vec::new();
        let (up, p) = match result {
            Ok(p) => {
                SCRAPES.with_label_values(&[&job.name, "ok"]).inc();
                if std::mem::take(&mut self.failing) {
                    tracing::info!(job = %job.name, url = %self.target.url, "scrape target is up again");
                }
                (true, p)
            }
            Err((f, p)) => {
                SCRAPES.with_label_values(&[&job.name, f.reason]).inc();
                if std::mem::replace(&mut self.failing, true) {
                    tracing::debug!(job = %job.name, url = %self.target.url, reason = f.reason,
                        error = %f.message, "scrape failed");
                } else {
                    tracing::warn!(job = %job.name, url = %self.target.url, reason = f.reason,
                        error = %f.message, "scrape failed (logged again when the target recovers)");
                }
                (false, p)
            }
        };
        if p.duplicates > 0 {
            SCRAPE_DROPPED_SAMPLES
                .with_label_values(&["duplicate"])
                .inc_by(p.duplicates as u64);
        }
        let mut added = 0usize;
        if up {
            let mut current: HashMap<u64, Labels> = HashMap::with_capacity(p.series.len());
            let mut known = HashSet::with_capacity(p.series.len());
            for s in p.series {
                let fp = s.labels.fingerprint().0;
                if !self.known.contains(&fp) {
                    added += 1;
                }
                known.insert(fp);
                if s.tracked {
                    current.insert(fp, s.labels.clone());
                }
                envs.push(envelope(tenant, s.labels, s.timestamp_ms, s.value));
            }
            for (fp, l) in self.last.drain() {
                if !current.contains_key(&fp) {
                    envs.push(envelope(tenant, l, ts_ms, stale()));
                }
            }
            self.last = current;
            self.known = known;
        } else {
            // Prometheus counts what the failed attempt would have added.
            added = p
                .series
                .iter()
                .filter(|s| !self.known.contains(&s.labels.fingerprint().0))
                .count();
            for (_, l) in self.last.drain() {
                envs.push(envelope(tenant, l, ts_ms, stale()));
            }
        }
        let duration = started.elapsed().as_secs_f64();
        let values = [
            if up { 1.0 } else { 0.0 },
            duration,
            p.scraped as f64,
            p.post_relabel as f64,
            added as f64,
        ];
        for (name, v) in REPORT_SERIES.into_iter().zip(values) {
            envs.push(envelope(tenant, self.report_labels(name), ts_ms, v));
        }
        self.reported = true;
        envs
    }
}

/// Publishes in batches, retrying with backoff until `give_up`; what is left then is
/// dropped and counted. True when everything was written.
async fn publish(log: &argus_bus::EventLog, envs: &[Envelope], give_up: Instant) -> bool {
    for (i, batch) in envs.chunks(PUBLISH_BATCH).enumerate() {
        let mut backoff = BACKOFF_START;
        loop {
            match log.publish(batch).await {
                Ok(()) => {
                    RECEIVED
                        .with_label_values(&[COLLECTOR, "metric_samples"])
                        .inc_by(batch.len() as u64);
                    SAMPLES_RECEIVED
                        .with_label_values(&[COLLECTOR])
                        .inc_by(batch.len() as u64);
                    break;
                }
                Err(e) => {
                    SCRAPE_PUBLISH_FAILURES.inc();
                    let now = Instant::now();
                    if now + backoff > give_up {
                        let left = envs.len() - i * PUBLISH_BATCH;
                        SCRAPE_DROPPED_SAMPLES
                            .with_label_values(&["publish"])
                            .inc_by(left as u64);
                        tracing::warn!(error = %e, dropped = left,
                            "scrape: event log unavailable until the next scrape; samples dropped");
                        return false;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
    true
}
