//! Where targets come from: `static_configs` and `file_sd_configs`, as target groups.
//!
//! A [`TargetGroup`] is a list of targets (label sets holding at least `__address__`)
//! with labels common to all of them, named by its `source` (`static:0`,
//! `/etc/targets/a.yml:1`), as in Prometheus' `targetgroup.Group`.
//!
//! **File discovery** reads Prometheus' `file_sd` format: a list (JSON or YAML, chosen
//! by the extension `.json` / `.yml` / `.yaml`) of `{targets: [host:port, …], labels:
//! {name: value}}`. Every target of a file gets the meta label `__meta_filepath` (the
//! path). The globs are expanded again and the matched files' sizes and modification
//! times looked at every [`WATCH_INTERVAL`]: a change re-reads the files at once; all
//! files are re-read every `refresh_interval` anyway. A file that cannot be read or
//! parsed keeps the targets it had (logged and counted in
//! `argus_ingest_scrape_sd_failures_total`), as Prometheus does; a file that is gone
//! takes its targets with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::time::Instant;

use argus_schemas::Labels;

use super::relabel::is_label_name;
use crate::metrics::SCRAPE_SD_FAILURES;

/// How often file discovery looks for changed files.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// The label holding a target's address.
pub const ADDRESS_LABEL: &str = "__address__";
/// The meta label file discovery sets on its targets.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// Targets with common labels, from one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub source: String,
    /// Each holds `__address__` (and possibly more labels of its own).
    pub targets: Vec<Labels>,
    pub labels: Labels,
}

impl TargetGroup {
    /// Each target's discovered labels: the group's labels, overridden by the target's.
    pub fn discovered(&self) -> impl Iterator<Item = Labels> + '_ {
        self.targets.iter().map(|t| {
            let mut l = self.labels.clone();
            for (n, v) in t.iter() {
                l.insert(n, v);
            }
            l
        })
    }
}

/// Checks a target address as Prometheus does: it may not contain a `/`.
pub fn check_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err("empty target address".into());
    }
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    Ok(())
}

/// One group of a file (or of `static_configs`, which has the same shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Builds a group from targets and labels, checking names and addresses.
pub fn make_group(
    source: String,
    targets: &[String],
    labels: &BTreeMap<String, String>,
) -> Result<TargetGroup, String> {
    let mut common = Labels::new();
    for (n, v) in labels {
        if !is_label_name(n) {
            return Err(format!("{n:?} is not a valid label name"));
        }
        if !v.is_empty() {
            common.insert(n.as_str(), v.as_str());
        }
    }
    let mut ts = Vec::with_capacity(targets.len());
    for t in targets {
        check_address(t)?;
        ts.push(Labels::from_pairs([(ADDRESS_LABEL, t.as_str())]));
    }
    Ok(TargetGroup {
        source,
        targets: ts,
        labels: common,
    })
}

/// The groups of one file's text; `json` picks the parser.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<TargetGroup>, String> {
    let json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let groups: Option<Vec<FileGroup>> = if json {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
    };
    let shown = path.display().to_string();
    groups
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut group = make_group(format!("{shown}:{i}"), &g.targets, &g.labels)?;
            group.labels.insert(FILEPATH_LABEL, shown.as_str());
            Ok(group)
        })
        .collect()
}

/// Whether a `files` pattern names files file discovery can read.
pub fn check_pattern(p: &str) -> Result<(), String> {
    let ext_ok = [".json", ".yml", ".yaml"]
        .iter()
        .any(|e| p.to_ascii_lowercase().ends_with(e));
    if !ext_ok {
        return Err(format!(
            "path name {p:?} is not valid for file discovery (it must end in .json, .yml or .yaml)"
        ));
    }
    glob::Pattern::new(p).map_err(|e| format!("{p:?}: {e}"))?;
    Ok(())
}

/// What a file looked like when last read.
type Stamp = (u64, Option<SystemTime>);

/// One `file_sd_configs` entry being watched.
#[derive(Debug)]
pub struct FileSd {
    job: String,
    patterns: Vec<String>,
    refresh_interval: Duration,
    /// Per file: its stamp when read, and the groups it had (kept on read errors).
    files: BTreeMap<PathBuf, (Option<Stamp>, Vec<TargetGroup>)>,
    next_refresh: Option<Instant>,
}

impl FileSd {
    pub fn new(job: &str, patterns: Vec<String>, refresh_interval: Duration) -> FileSd {
        FileSd {
            job: job.to_string(),
            patterns,
            refresh_interval,
            files: BTreeMap::new(),
            next_refresh: None,
        }
    }

    /// The files the patterns match now, with their stamps.
    fn scan(&self) -> BTreeMap<PathBuf, Option<Stamp>> {
        let mut out = BTreeMap::new();
        for p in &self.patterns {
            let Ok(paths) = glob::glob(p) else { continue };
            for path in paths.flatten() {
                let stamp = std::fs::metadata(&path)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| (m.len(), m.modified().ok()));
                if stamp.is_some() {
                    out.insert(path, stamp);
                }
            }
        }
        out
    }

    /// Looks at the files (re-reading them when something changed or `refresh_interval`
    /// passed); true when the groups may have changed. Blocking file I/O.
    pub fn poll(&mut self, now: Instant) -> bool {
        let due = self.next_refresh.is_none_or(|t| now >= t);
        let found = self.scan();
        let same_set = found.len() == self.files.len()
            && found
                .iter()
                .all(|(p, s)| self.files.get(p).is_some_and(|(old, _)| old == s));
        if same_set && !due {
            return false;
        }
        let before = self.groups();
        let mut files = BTreeMap::new();
        for (path, stamp) in found {
            let read = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse_file(&path, &text));
            match read {
                Ok(groups) => {
                    files.insert(path, (stamp, groups));
                }
                Err(e) => {
                    SCRAPE_SD_FAILURES.with_label_values(&[&self.job]).inc();
                    tracing::error!(job = %self.job, file = %path.display(), error = %e,
                        "scrape: file discovery cannot read a file; keeping its previous targets");
                    let kept = self
                        .files
                        .get(&path)
                        .map(|(_, g)| g.clone())
                        .unwrap_or_default();
                    // The stamp is kept too, so a later fix (a new stamp) is read again.
                    files.insert(path, (stamp, kept));
                }
            }
        }
        self.files = files;
        self.next_refresh = Some(now + self.refresh_interval);
        self.groups() != before
    }

    /// The groups of every file read.
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.files
            .values()
            .flat_map(|(_, g)| g.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_and_json_groups() {
        let y = parse_file(
            Path::new("/t/a.yml"),
            "- targets: ['h1:9100', 'h2:9100']\n  labels:\n    env: prod\n- targets: ['h3:1']\n",
        )
        .unwrap();
        assert_eq!(y.len(), 2);
        assert_eq!(y[0].source, "/t/a.yml:0");
        assert_eq!(y[0].labels.get("env"), Some("prod"));
        assert_eq!(y[0].labels.get(FILEPATH_LABEL), Some("/t/a.yml"));
        assert_eq!(y[0].targets[1].get(ADDRESS_LABEL), Some("h2:9100"));
        let j = parse_file(
            Path::new("/t/b.json"),
            r#"[{"targets":["x:1"],"labels":{"a":"b"}}]"#,
        )
        .unwrap();
        assert_eq!(j[0].discovered().next().unwrap().get("a"), Some("b"));
        assert!(parse_file(Path::new("/t/e.yml"), "").unwrap().is_empty());
        assert!(parse_file(Path::new("/t/c.json"), r#"[{"targets":["x/y"]}]"#).is_err());
        assert!(parse_file(Path::new("/t/c.json"), r#"[{"labels":{"1a":"b"}}]"#).is_err());
        assert!(parse_file(Path::new("/t/c.json"), r#"[{"target":["x:1"]}]"#).is_err());
    }

    #[test]
    fn patterns_need_a_known_extension() {
        assert!(check_pattern("/etc/sd/*.json").is_ok());
        assert!(check_pattern("/etc/sd/*.YAML").is_ok());
        assert!(check_pattern("/etc/sd/*").is_err());
        assert!(check_pattern("/etc/sd/[.json").is_err());
    }
}
