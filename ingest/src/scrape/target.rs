//! From discovered labels to a scrape target, as Prometheus' `PopulateLabels` does.
//!
//! 1. The job's settings are added where the discovered labels do not set them: `job`,
//!    `__scrape_interval__`, `__scrape_timeout__`, `__metrics_path__`, `__scheme__`,
//!    and `__param_<name>` (the first value) for each of `params`.
//! 2. `relabel_configs` run; a target they drop (or leave without labels) is not
//!    scraped.
//! 3. What is left must have an `__address__` without `/`; `__scrape_interval__` and
//!    `__scrape_timeout__` must be durations, neither 0, the timeout not above the
//!    interval; `__scheme__` must be `http`. Otherwise the target is refused (logged,
//!    counted in `argus_ingest_scrape_invalid_targets_total`).
//! 4. `__meta_*` labels are removed and `instance` defaults to `__address__`.
//!
//! The remaining labels not starting with `__` are the target's public labels, attached
//! to every series scraped from it. The URL is `__scheme__://__address____metrics_path__`
//! with the job's `params`, where a `__param_<name>` label replaces the first value of
//! `<name>` (or adds it).

use std::collections::BTreeMap;
use std::time::Duration;

use argus_schemas::Labels;
use argus_schemas::duration::{format_duration, parse_duration};

use super::Job;
use super::discovery::{ADDRESS_LABEL, check_address};
use super::relabel;

pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_PREFIX: &str = "__param_";
pub const META_PREFIX: &str = "__meta_";
/// Labels starting with this are internal: never attached to series.
pub const RESERVED_PREFIX: &str = "__";

/// A target to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// After relabeling, without `__meta_*`; still holding the other `__` labels.
    pub labels: Labels,
    /// The labels attached to its series (no `__` prefix).
    pub public: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Target {
    /// Identity of the target within its job (Prometheus hashes labels and URL; the URL
    /// is a function of the labels and the job's params here).
    pub fn key(&self) -> u64 {
        self.labels.fingerprint().0
    }
}

/// Applies steps 1–4 of the module docs; `Ok(None)` when relabeling drops the target.
pub fn populate(discovered: &Labels, job: &Job) -> Result<Option<Target>, String> {
    let mut lb = discovered.clone();
    let defaults = [
        (JOB_LABEL, job.name.clone()),
        (SCRAPE_INTERVAL_LABEL, format_duration(job.interval)),
        (SCRAPE_TIMEOUT_LABEL, format_duration(job.timeout)),
        (METRICS_PATH_LABEL, job.metrics_path.clone()),
        (SCHEME_LABEL, job.scheme.clone()),
    ];
    for (n, v) in defaults {
        if lb.get(n).is_none_or(str::is_empty) && !v.is_empty() {
            lb.insert(n, v);
        }
    }
    for (k, vs) in &job.params {
        let name = format!("{PARAM_PREFIX}{k}");
        if let Some(first) = vs.first()
            && lb.get(&name).is_none_or(str::is_empty)
            && !first.is_empty()
        {
            lb.insert(name, first.as_str());
        }
    }
    let Some(mut lb) = relabel::process(lb, &job.relabel) else {
        return Ok(None);
    };
    let addr = lb.get(ADDRESS_LABEL).unwrap_or("").to_string();
    if addr.is_empty() {
        return Err("no address".into());
    }
    check_address(&addr)?;
    let duration = |name: &str| -> Result<Duration, String> {
        let s = lb.get(name).unwrap_or("");
        let d = parse_duration(s).map_err(|e| format!("error parsing {name}: {e}"))?;
        if d.is_zero() {
            return Err(format!("{name} cannot be 0"));
        }
        Ok(d)
    };
    let interval = duration(SCRAPE_INTERVAL_LABEL)?;
    let timeout = duration(SCRAPE_TIMEOUT_LABEL)?;
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            format_duration(timeout),
            format_duration(interval)
        ));
    }
    let scheme = lb.get(SCHEME_LABEL).unwrap_or("").to_string();
    if scheme != "http" {
        return Err(format!(
            "scheme {scheme:?} is not supported (only http: TLS is not built in)"
        ));
    }
    let metas: Vec<String> = lb
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with(META_PREFIX))
        .map(str::to_string)
        .collect();
    for m in metas {
        lb.remove(&m);
    }
    if lb.get(INSTANCE_LABEL).is_none_or(str::is_empty) {
        lb.insert(INSTANCE_LABEL, addr.as_str());
    }
    let url = build_url(
        &scheme,
        &addr,
        lb.get(METRICS_PATH_LABEL).unwrap_or(""),
        &lb,
        &job.params,
    )?;
    let public = Labels::from_pairs(lb.iter().filter(|(n, _)| !n.starts_with(RESERVED_PREFIX)));
    Ok(Some(Target {
        labels: lb,
        public,
        url,
        interval,
        timeout,
    }))
}

/// `scheme://addr/path?params`, parameters sorted by name and form-encoded.
fn build_url(
    scheme: &str,
    addr: &str,
    path: &str,
    labels: &Labels,
    params: &BTreeMap<String, Vec<String>>,
) -> Result<String, String> {
    let mut merged = params.clone();
    for (n, v) in labels.iter() {
        if let Some(k) = n.strip_prefix(PARAM_PREFIX) {
            let vs = merged.entry(k.to_string()).or_default();
            match vs.first_mut() {
                Some(first) => *first = v.to_string(),
                None => vs.push(v.to_string()),
            }
        }
    }
    let mut url = reqwest::Url::parse(&format!("{scheme}://{addr}"))
        .map_err(|e| format!("{addr:?} is not a valid address: {e}"))?;
    url.set_path(path);
    if !merged.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, vs) in &merged {
            for v in vs {
                q.append_pair(k, v);
            }
        }
    }
    Ok(url.to_string())
}
