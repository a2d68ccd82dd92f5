//! The Prometheus scraper: pulls `/metrics` from targets configured like Prometheus'
//! `scrape_configs` and writes every sample to `argus.metrics`.
//!
//! This module owns the configuration ([`ScrapeConfig`], [`JobConfig`]) and its
//! validated form ([`Job`]), and running the jobs: target discovery
//! ([`discovery`]: `static_configs`, `file_sd_configs`), target labels ([`target`]),
//! relabeling ([`relabel`]), and one loop per target ([`scrape_loop`]). Parsing is
//! [`crate::exposition`]'s.
//!
//! **Records.** Every series of a scrape is one `metric_samples` record with one sample
//! (source `scrape`, tenant from the config, keyed by the series' label fingerprint,
//! `event_time` the sample's time), as the remote write receiver writes them. A
//! series' labels are its own plus the target's (`job`, `instance` and whatever
//! relabeling left without a `__` prefix), then `metric_relabel_configs`. With
//! `honor_labels: false` (the default) a target label wins over a scraped one, which is
//! kept as `exported_<name>` (`exported_exported_<name>` if that is taken too, shorter
//! names first); with `honor_labels: true` the scraped one wins. Samples take the
//! scrape's timestamp unless the exposition gives one and `honor_timestamps` is on
//! (the default). Exemplars, help, type and unit are not stored.
//!
//! **Report series.** After every scrape, with the target's labels and the scrape's
//! timestamp: `up` (1 when the scrape succeeded, else 0), `scrape_duration_seconds`,
//! `scrape_samples_scraped` (samples in the exposition),
//! `scrape_samples_post_metric_relabeling` (left after metric relabeling) and
//! `scrape_series_added` (series not in the previous successful scrape). They are not
//! subject to `metric_relabel_configs`.
//!
//! **Failures.** A scrape fails on a connection error, a status other than 200, the
//! `scrape_timeout` passing, a body (decompressed) over `body_size_limit`, bad gzip,
//! invalid UTF-8, a parse error, a sample without a name after relabeling, or more
//! samples than `sample_limit` after metric relabeling. Then none of its samples is
//! written, `up` is 0 and the reason is counted in `argus_ingest_scrapes_total{job,
//! result}`.
//!
//! **Staleness.** A series written by one scrape and missing from the next gets a
//! staleness marker (the `StaleNaN` value) at the next scrape's timestamp; a failed
//! scrape marks every series of the previous one stale; a target removed from
//! discovery gets markers for all its series and its report series when it is removed
//! (Prometheus waits until the next scrape would have been due). Series with their own
//! timestamps get no markers, as in Prometheus. Shutdown writes no markers, so a
//! restart continues the series.
//!
//! **Timing.** A target is first scraped at the next multiple of its interval plus an
//! offset from a hash of its labels, then every interval, so targets are spread over
//! the interval and keep their phase. A scrape that starts within 2 ms of its slot is
//! timestamped at the slot (Prometheus' timestamp tolerance), otherwise at its start.
//! A slow scrape skips the slots it overran.
//!
//! **HTTP.** `GET` with `Accept` preferring OpenMetrics 1.0 over the text format 0.0.4
//! (what Prometheus 2 sends), `Accept-Encoding: gzip`,
//! `X-Prometheus-Scrape-Timeout-Seconds`; gzip bodies are decompressed; the body's
//! `Content-Type` picks the parser (the text format when absent or unknown). Only
//! `http` is supported: `scheme: https` is refused at configuration (no TLS stack is
//! built in).
//!
//! **Event log unavailable.** A scrape's records are retried with backoff until the
//! next scrape is due, then dropped and counted in
//! `argus_ingest_scrape_dropped_samples_total{reason="publish"}`: scraping is a
//! sampling, the next scrape brings fresh values.

pub mod discovery;
pub mod relabel;
pub mod scrape_loop;
pub mod target;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use argus_schemas::duration::{format_duration, parse_duration, serde_duration};

use crate::metrics::{SCRAPE_INVALID_TARGETS, SCRAPE_TARGETS};
use discovery::{FileSd, TargetGroup};
use relabel::{RelabelConfig, Relabeler};
use scrape_loop::{ScrapeLoop, Stop};
use target::Target;

/// `scrape:` in the config file: global defaults and the jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// Tenant of every record unless a job sets its own. Default `default`.
    pub tenant: String,
    /// A job's interval when it sets none. Default `1m` (Prometheus' default).
    #[serde(with = "serde_duration")]
    pub scrape_interval: Duration,
    /// A job's timeout when it sets none (capped at the job's interval). Default `10s`.
    #[serde(with = "serde_duration")]
    pub scrape_timeout: Duration,
    /// The jobs. Required (at least one).
    pub scrape_configs: Vec<JobConfig>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            tenant: argus_schemas::DEFAULT_TENANT.into(),
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            scrape_configs: Vec::new(),
        }
    }
}

/// One entry of `scrape_configs`; the fields and defaults are Prometheus'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobConfig {
    /// Required; unique; the `job` label's default.
    pub job_name: String,
    /// Default: the global `scrape_interval`.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<Duration>,
    /// Default: the global `scrape_timeout`, or the interval if that is shorter.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<Duration>,
    /// Default `/metrics`.
    pub metrics_path: String,
    /// `http` (default). `https` is refused: no TLS stack is built in.
    pub scheme: String,
    /// URL query parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// Scraped labels win over target labels. Default false.
    pub honor_labels: bool,
    /// Keep timestamps the exposition gives. Default true.
    pub honor_timestamps: bool,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Most samples per scrape after metric relabeling; more fails the scrape. 0 (the
    /// default): no limit.
    pub sample_limit: usize,
    /// Largest body (decompressed); larger fails the scrape. `0` (default): no limit.
    /// Bytes, or with a base-2 unit: `10MB` = `10MiB` = 10485760.
    pub body_size_limit: ByteSize,
    /// Tenant of this job's records. Default: the global one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            job_name: String::new(),
            scrape_interval: None,
            scrape_timeout: None,
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            sample_limit: 0,
            body_size_limit: ByteSize(0),
            tenant: None,
        }
    }
}

/// `static_configs` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// Globs of `.json`, `.yml` or `.yaml` files. Required.
    pub files: Vec<String>,
    /// How often every file is re-read even if unchanged. Default `5m`.
    #[serde(with = "serde_duration")]
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// A size in bytes, written as an integer or with a base-2 unit (`B`, `KB`/`KiB`,
/// `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`), like Prometheus' `body_size_limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let bad = || format!("{s:?} is not a size (e.g. 0, 1024, 512KB, 10MB)");
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = s[..digits].parse().map_err(|_| bad())?;
        let mult: u64 = match s[digits..].trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "KB" | "KIB" => 1 << 10,
            "MB" | "MIB" => 1 << 20,
            "GB" | "GIB" => 1 << 30,
            "TB" | "TIB" => 1 << 40,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(bad)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

mod opt_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("scrape: invalid configuration: {0}")]
    Config(String),
    #[error("scrape: cannot build the HTTP client: {0}")]
    Client(String),
}

fn config_err(key: &str, msg: impl std::fmt::Display) -> ScrapeError {
    ScrapeError::Config(format!("`{key}`: {msg}"))
}

/// A checked job: what its targets and loops need.
#[derive(Debug)]
pub struct Job {
    pub name: String,
    pub tenant: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub static_groups: Vec<TargetGroup>,
    pub file_sd: Vec<FileSdConfig>,
    pub relabel: Vec<Relabeler>,
    pub metric_relabel: Vec<Relabeler>,
    pub sample_limit: usize,
    /// 0: no limit.
    pub body_size_limit: u64,
}

impl ScrapeConfig {
    /// Checks every field (the error names the key) and builds the jobs.
    pub fn jobs(&self) -> Result<Vec<Job>, ScrapeError> {
        argus_schemas::validate_tenant(&self.tenant)
            .map_err(|m| config_err("tenant", format!("{:?}: {m}", self.tenant)))?;
        if self.scrape_interval.is_zero() {
            return Err(config_err("scrape_interval", "must be more than 0"));
        }
        if self.scrape_timeout.is_zero() {
            return Err(config_err("scrape_timeout", "must be more than 0"));
        }
        if self.scrape_configs.is_empty() {
            return Err(config_err("scrape_configs", "no jobs: nothing to scrape"));
        }
        let mut names = HashSet::new();
        let mut jobs = Vec::new();
        for (i, j) in self.scrape_configs.iter().enumerate() {
            let job = self.job(i, j)?;
            if !names.insert(job.name.clone()) {
                return Err(config_err(
                    &format!("scrape_configs[{i}].job_name"),
                    format!("found multiple scrape configs with job name {:?}", job.name),
                ));
            }
            jobs.push(job);
        }
        Ok(jobs)
    }

    /// Checks the config.
    pub fn validate(&self) -> Result<(), ScrapeError> {
        self.jobs().map(|_| ())
    }

    fn job(&self, i: usize, j: &JobConfig) -> Result<Job, ScrapeError> {
        let key = |k: &str| format!("scrape_configs[{i}].{k}");
        if j.job_name.is_empty() {
            return Err(config_err(&key("job_name"), "required"));
        }
        let interval = j.scrape_interval.unwrap_or(self.scrape_interval);
        if interval.is_zero() {
            return Err(config_err(&key("scrape_interval"), "must be more than 0"));
        }
        let timeout = match j.scrape_timeout {
            Some(t) => t,
            None => self.scrape_timeout.min(interval),
        };
        if timeout.is_zero() {
            return Err(config_err(&key("scrape_timeout"), "must be more than 0"));
        }
        if timeout > interval {
            return Err(config_err(
                &key("scrape_timeout"),
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                    j.job_name
                ),
            ));
        }
        match j.scheme.as_str() {
            "http" => {}
            "https" => {
                return Err(config_err(
                    &key("scheme"),
                    "https is not supported: the scraper has no TLS stack built in",
                ));
            }
            s => {
                return Err(config_err(&key("scheme"), format!("{s:?}: must be http")));
            }
        }
        if !j.metrics_path.starts_with('/') {
            return Err(config_err(
                &key("metrics_path"),
                format!("{:?} must start with /", j.metrics_path),
            ));
        }
        if j.params.keys().any(String::is_empty) {
            return Err(config_err(&key("params"), "empty parameter name"));
        }
        let tenant = j.tenant.clone().unwrap_or_else(|| self.tenant.clone());
        argus_schemas::validate_tenant(&tenant)
            .map_err(|m| config_err(&key("tenant"), format!("{tenant:?}: {m}")))?;
        let mut static_groups = Vec::new();
        for (k, sc) in j.static_configs.iter().enumerate() {
            let g = discovery::make_group(format!("static:{k}"), &sc.targets, &sc.labels)
                .map_err(|e| config_err(&key(&format!("static_configs[{k}]")), e))?;
            static_groups.push(g);
        }
        for (k, f) in j.file_sd_configs.iter().enumerate() {
            let fk = key(&format!("file_sd_configs[{k}]"));
            if f.files.is_empty() {
                return Err(config_err(&format!("{fk}.files"), "no files"));
            }
            for p in &f.files {
                discovery::check_pattern(p).map_err(|e| config_err(&format!("{fk}.files"), e))?;
            }
            if f.refresh_interval.is_zero() {
                return Err(config_err(
                    &format!("{fk}.refresh_interval"),
                    "must be more than 0",
                ));
            }
        }
        let relabel = relabel::compile_all(&j.relabel_configs)
            .map_err(|e| config_err(&key("relabel_configs"), e))?;
        let metric_relabel = relabel::compile_all(&j.metric_relabel_configs)
            .map_err(|e| config_err(&key("metric_relabel_configs"), e))?;
        Ok(Job {
            name: j.job_name.clone(),
            tenant,
            interval,
            timeout,
            metrics_path: j.metrics_path.clone(),
            scheme: j.scheme.clone(),
            params: j.params.clone(),
            honor_labels: j.honor_labels,
            honor_timestamps: j.honor_timestamps,
            static_groups,
            file_sd: j.file_sd_configs.clone(),
            relabel,
            metric_relabel,
            sample_limit: j.sample_limit,
            body_size_limit: j.body_size_limit.0,
        })
    }
}

/// A checked scraper: [`Scraper::new`], then [`Scraper::run`].
pub struct Scraper {
    jobs: Vec<Arc<Job>>,
    client: reqwest::Client,
}

/// Checks the config and scrapes until shutdown.
pub async fn run(
    cfg: ScrapeConfig,
    log: argus_bus::EventLog,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ScrapeError> {
    Scraper::new(&cfg)?.run(log, shutdown).await
}

impl Scraper {
    pub fn new(cfg: &ScrapeConfig) -> Result<Scraper, ScrapeError> {
        let jobs = cfg.jobs()?.into_iter().map(Arc::new).collect();
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| ScrapeError::Client(e.to_string()))?;
        Ok(Scraper { jobs, client })
    }

    /// Runs every job until the watch channel turns `true` (or its sender is dropped);
    /// returns once every loop has stopped.
    pub async fn run(
        self,
        log: argus_bus::EventLog,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), ScrapeError> {
        let tasks: Vec<_> = self
            .jobs
            .into_iter()
            .map(|job| {
                tokio::spawn(run_job(
                    job,
                    self.client.clone(),
                    log.clone(),
                    shutdown.clone(),
                ))
            })
            .collect();
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "scrape: a job task failed");
            }
        }
        Ok(())
    }
}

/// Resolves once shutdown is asked for (or the sender is gone).
async fn signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// The targets of a job's groups, by identity; refused ones are logged and counted.
fn targets_of(job: &Job, groups: &[TargetGroup]) -> HashMap<u64, Target> {
    let mut out = HashMap::new();
    for g in groups {
        for discovered in g.discovered() {
            match target::populate(&discovered, job) {
                Ok(Some(t)) => {
                    out.entry(t.key()).or_insert(t);
                }
                Ok(None) => {}
                Err(e) => {
                    SCRAPE_INVALID_TARGETS.with_label_values(&[&job.name]).inc();
                    tracing::warn!(job = %job.name, source = %g.source, labels = %discovered,
                        error = %e, "scrape: target refused");
                }
            }
        }
    }
    out
}

struct Running {
    stop: watch::Sender<Stop>,
    task: JoinHandle<()>,
}

/// Keeps a job's loops in line with discovery until shutdown.
async fn run_job(
    job: Arc<Job>,
    client: reqwest::Client,
    log: argus_bus::EventLog,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sds: Vec<FileSd> = job
        .file_sd
        .iter()
        .map(|f| FileSd::new(&job.name, f.files.clone(), f.refresh_interval))
        .collect();
    let mut running: HashMap<u64, Running> = HashMap::new();
    let mut finishing: Vec<JoinHandle<()>> = Vec::new();
    let mut changed = true;
    loop {
        if !sds.is_empty() {
            let polled = tokio::task::spawn_blocking(move || {
                let now = Instant::now();
                let mut any = false;
                for sd in &mut sds {
                    any |= sd.poll(now);
                }
                (sds, any)
            })
            .await;
            match polled {
                Ok((back, any)) => {
                    sds = back;
                    changed |= any;
                }
                Err(e) => {
                    tracing::error!(job = %job.name, error = %e, "scrape: file discovery task failed");
                    break;
                }
            }
        }
        if changed {
            changed = false;
            let mut groups = job.static_groups.clone();
            for sd in &sds {
                groups.extend(sd.groups());
            }
            let mut wanted = targets_of(&job, &groups);
            let removed: Vec<u64> = running
                .keys()
                .filter(|k| !wanted.contains_key(k))
                .copied()
                .collect();
            for key in removed {
                if let Some(r) = running.remove(&key) {
                    let _ = r.stop.send(Stop::Removed);
                    finishing.push(r.task);
                }
            }
            wanted.retain(|key, _| !running.contains_key(key));
            for (key, t) in wanted {
                tracing::info!(job = %job.name, url = %t.url, labels = %t.public, "scrape: new target");
                let (tx, rx) = watch::channel(Stop::Run);
                let l = ScrapeLoop::new(job.clone(), t, client.clone(), log.clone());
                running.insert(
                    key,
                    Running {
                        stop: tx,
                        task: tokio::spawn(l.run(rx)),
                    },
                );
            }
            SCRAPE_TARGETS
                .with_label_values(&[&job.name])
                .set(running.len() as i64);
            finishing.retain(|t| !t.is_finished());
        }
        if sds.is_empty() {
            signalled(&mut shutdown).await;
            break;
        }
        tokio::select! {
            biased;
            _ = signalled(&mut shutdown) => break,
            _ = tokio::time::sleep(discovery::WATCH_INTERVAL) => {}
        }
    }
    for r in running.values() {
        let _ = r.stop.send(Stop::Shutdown);
    }
    for (_, r) in running {
        let _ = r.task.await;
    }
    for t in finishing {
        let _ = t.await;
    }
    SCRAPE_TARGETS.with_label_values(&[&job.name]).set(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_prometheus() {
        let c: ScrapeConfig = serde_json::from_str(
            r#"{"scrape_configs":[{"job_name":"n","static_configs":[{"targets":["a:1"]}]}]}"#,
        )
        .unwrap();
        let jobs = c.jobs().unwrap();
        let j = &jobs[0];
        assert_eq!(j.interval, Duration::from_secs(60));
        assert_eq!(j.timeout, Duration::from_secs(10));
        assert_eq!(j.metrics_path, "/metrics");
        assert_eq!(j.scheme, "http");
        assert!(!j.honor_labels);
        assert!(j.honor_timestamps);
        assert_eq!(j.tenant, "default");
    }

    #[test]
    fn timeout_is_capped_by_interval_and_checked() {
        let mut c = ScrapeConfig {
            scrape_configs: vec![JobConfig {
                job_name: "a".into(),
                scrape_interval: Some(Duration::from_secs(5)),
                ..JobConfig::default()
            }],
            ..ScrapeConfig::default()
        };
        assert_eq!(c.jobs().unwrap()[0].timeout, Duration::from_secs(5));
        c.scrape_configs[0].scrape_timeout = Some(Duration::from_secs(6));
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("scrape timeout greater than scrape interval"),
            "{e}"
        );
        c.scrape_configs[0].scrape_timeout = None;
        c.scrape_configs.push(c.scrape_configs[0].clone());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("multiple scrape configs"), "{e}");
    }

    #[test]
    fn refuses_bad_fields() {
        for (json, want) in [
            (r#"{"job_name":"a","scheme":"https"}"#, "https"),
            (
                r#"{"job_name":"a","metrics_path":"metrics"}"#,
                "metrics_path",
            ),
            (
                r#"{"job_name":"a","static_configs":[{"targets":["a/b"]}]}"#,
                "valid hostname",
            ),
            (
                r#"{"job_name":"a","file_sd_configs":[{"files":["/x/*.txt"]}]}"#,
                "file discovery",
            ),
            (
                r#"{"job_name":"a","relabel_configs":[{"action":"hashmod","target_label":"x"}]}"#,
                "modulus",
            ),
            (r#"{"job_name":""}"#, "job_name"),
        ] {
            let j: JobConfig = serde_json::from_str(json).unwrap();
            let c = ScrapeConfig {
                scrape_configs: vec![j],
                ..ScrapeConfig::default()
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{json}: {e}");
        }
        assert!(serde_json::from_str::<JobConfig>(r#"{"job_name":"a","interval":"1s"}"#).is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("0"), Ok(ByteSize(0)));
        assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("10MB"), Ok(ByteSize(10 << 20)));
        assert_eq!(ByteSize::parse("512KiB"), Ok(ByteSize(512 << 10)));
        assert!(ByteSize::parse("10XB").is_err());
        assert!(ByteSize::parse("MB").is_err());
        let j: JobConfig = serde_json::from_str(r#"{"body_size_limit":"1KB"}"#).unwrap();
        assert_eq!(j.body_size_limit, ByteSize(1024));
    }
}
