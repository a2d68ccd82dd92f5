//! `POST /api/v1/findings/clair?image=<repository>:<tag>`: a Clair v4 vulnerability
//! report, the response of `GET /matcher/api/v1/vulnerability_report/{digest}`.
//!
//! The report must have a `manifest_hash`. Every pair of `package_vulnerabilities`
//! (package id → vulnerability ids) becomes one finding of kind `vulnerability`; both
//! ids must resolve in `packages` and `vulnerabilities`.
//!
//! | Clair | finding |
//! |---|---|
//! | vulnerability `name` (else its id) | id |
//! | first line of `description` (at most 200 characters), else the id | title |
//! | `packages[pkg].name`/`.version` (else the vulnerability's `package`) | package / installed version |
//! | `fixed_in_version` (empty → none) | fixed version |
//! | `normalized_severity` | severity |
//!
//! Severity: Unknown → UNKNOWN, Negligible → LOW (Argus has no lower level; Clair
//! uses it for issues distributions do not consider worth fixing), Low → LOW, Medium
//! → MEDIUM, High → HIGH, Critical → CRITICAL (any case; missing → UNKNOWN; anything
//! else is refused).
//!
//! The resource is kind `image` with digest = `manifest_hash`. Clair's report does not
//! name the image, so it comes from the `image` query parameter; without one the image
//! is the digest itself, so that findings of different manifests never share a key.
//! The event time is the time of receipt (the report carries none).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use argus_schemas::{FindingKind, FindingSource, Resource, SecurityFinding, Severity, Timestamp};

use super::{FindingsState, Parsed, accept, invalid, non_empty, reject};
use crate::IngestError;
use crate::body::content_decoded;
use crate::events_api::tenant_of;

pub(crate) const COLLECTOR: &str = "clair";
/// Longest title taken from a description, in characters.
const MAX_TITLE_CHARS: usize = 200;

#[derive(Deserialize)]
struct Report {
    manifest_hash: Option<String>,
    packages: Option<BTreeMap<String, Package>>,
    vulnerabilities: Option<BTreeMap<String, Vulnerability>>,
    package_vulnerabilities: Option<BTreeMap<String, Option<Vec<String>>>>,
}

#[derive(Deserialize)]
struct Package {
    name: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
struct Vulnerability {
    name: Option<String>,
    description: Option<String>,
    normalized_severity: Option<String>,
    fixed_in_version: Option<String>,
    package: Option<Package>,
}

#[derive(Deserialize)]
pub(crate) struct ClairQuery {
    image: Option<String>,
}

/// Clair's normalized severity → Argus' (see the module docs).
pub fn severity(s: Option<&str>) -> Result<Severity, String> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Severity::Unknown);
    };
    match s.to_ascii_lowercase().as_str() {
        "unknown" => Ok(Severity::Unknown),
        "negligible" | "low" => Ok(Severity::Low),
        "medium" => Ok(Severity::Medium),
        "high" => Ok(Severity::High),
        "critical" => Ok(Severity::Critical),
        _ => Err(format!(
            "normalized_severity {s:?} is not one of Unknown, Negligible, Low, Medium, High, \
             Critical"
        )),
    }
}

fn title(description: Option<&str>) -> Option<String> {
    let line = description?
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let mut t: String = line.chars().take(MAX_TITLE_CHARS).collect();
    if line.chars().count() > MAX_TITLE_CHARS {
        t.push('…');
    }
    Some(t)
}

/// Turns a report into findings, or lists every problem with where it is.
pub(crate) fn parse(body: &[u8], image: Option<String>) -> Result<Vec<Parsed>, IngestError> {
    let report: Report = serde_json::from_slice(body).map_err(|e| {
        reject(
            COLLECTOR,
            "json",
            format!("body is not a Clair v4 vulnerability report: {e}"),
        )
    })?;
    let Some(digest) = non_empty(report.manifest_hash.as_deref()) else {
        return Err(invalid(
            COLLECTOR,
            "Clair report",
            &["missing manifest_hash: not a Clair v4 vulnerability report".to_string()],
        ));
    };
    let resource = Resource {
        kind: "image".to_string(),
        image: Some(image.unwrap_or_else(|| digest.clone())),
        image_digest: Some(digest),
        ..Default::default()
    };
    let packages = report.packages.unwrap_or_default();
    let vulns = report.vulnerabilities.unwrap_or_default();
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let now = Timestamp::now();
    for (pkg_id, vuln_ids) in report.package_vulnerabilities.unwrap_or_default() {
        let pkg = packages.get(&pkg_id);
        if pkg.is_none() {
            problems.push(format!(
                "package_vulnerabilities[{pkg_id:?}]: package {pkg_id:?} is not in packages"
            ));
            continue;
        }
        for (j, vuln_id) in vuln_ids.unwrap_or_default().into_iter().enumerate() {
            let at = format!("package_vulnerabilities[{pkg_id:?}][{j}]");
            let Some(v) = vulns.get(&vuln_id) else {
                problems.push(format!(
                    "{at}: vulnerability {vuln_id:?} is not in vulnerabilities"
                ));
                continue;
            };
            let severity = match severity(v.normalized_severity.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("vulnerabilities[{vuln_id:?}]: {e}"));
                    continue;
                }
            };
            let id = non_empty(v.name.as_deref()).unwrap_or_else(|| vuln_id.clone());
            let pick = |f: fn(&Package) -> Option<&str>| {
                pkg.and_then(|p| non_empty(f(p)))
                    .or_else(|| v.package.as_ref().and_then(|p| non_empty(f(p))))
            };
            out.push(Parsed {
                event_time: now,
                finding: SecurityFinding {
                    source: FindingSource::Clair,
                    kind: FindingKind::Vulnerability,
                    severity,
                    resource: resource.clone(),
                    title: title(v.description.as_deref()).unwrap_or_else(|| id.clone()),
                    id,
                    package: pick(|p| p.name.as_deref()),
                    installed_version: pick(|p| p.version.as_deref()),
                    fixed_version: non_empty(v.fixed_in_version.as_deref()),
                },
                occurrence: None,
            });
        }
    }
    if !problems.is_empty() {
        return Err(invalid(COLLECTOR, "Clair report", &problems));
    }
    Ok(out)
}

pub(crate) async fn receive(
    State(state): State<FindingsState>,
    headers: HeaderMap,
    Query(q): Query<ClairQuery>,
    body: Bytes,
) -> Result<StatusCode, IngestError> {
    let tenant = tenant_of(&headers, COLLECTOR)?;
    let image = match q.image {
        Some(i) => Some(non_empty(Some(&i)).ok_or_else(|| {
            reject(
                COLLECTOR,
                "query",
                "the image parameter is empty; give ?image=<repository>:<tag> or leave it out"
                    .into(),
            )
        })?),
        None => None,
    };
    let body = content_decoded(&headers, &body, COLLECTOR)?;
    let items = parse(&body, image)?;
    accept(&state, COLLECTOR, &tenant, items, Vec::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_and_titles() {
        assert_eq!(severity(Some("Negligible")), Ok(Severity::Low));
        assert_eq!(severity(Some("CRITICAL")), Ok(Severity::Critical));
        assert_eq!(severity(None), Ok(Severity::Unknown));
        assert!(severity(Some("Important")).is_err());
        assert_eq!(
            title(Some("\n  first line \nsecond")).as_deref(),
            Some("first line")
        );
        let long = "x".repeat(300);
        assert_eq!(title(Some(&long)).map(|t| t.chars().count()), Some(201));
        assert_eq!(title(Some("  ")), None);
    }
}
