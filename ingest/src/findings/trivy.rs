//! `POST /api/v1/findings/trivy`: a Trivy JSON report (`trivy image --format json`,
//! `SchemaVersion` 2) of a container image.
//!
//! The report must have `SchemaVersion` 2, an `ArtifactName`, and an `ArtifactType` of
//! `container_image` when it has one (other artifact types have no image to attach
//! findings to). Every entry of every `Results[]` becomes one finding:
//!
//! | Trivy | finding |
//! |---|---|
//! | `Vulnerabilities[]` | kind `vulnerability`; id `VulnerabilityID`; title `Title`, else the id; package `PkgName`, installed/fixed version `InstalledVersion`/`FixedVersion` (empty → none) |
//! | `Misconfigurations[]` with `Status` `FAIL` (or none) | kind `misconfiguration`; id `ID`, else `AVDID`; title `Title`, else the id; package = the result's `Target` (the file checked) |
//! | `Secrets[]` | kind `secret`; id `RuleID`; title `Title`, else the id; package = the result's `Target` (the file the secret is in) |
//!
//! Misconfigurations with another status (`PASS`, `EXCEPTION`) are skipped. Severity is
//! Trivy's own scale, which is Argus' (`UNKNOWN`, `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`,
//! any case); a missing severity is `UNKNOWN`, any other value is refused. The resource
//! is kind `image`, image = `ArtifactName`, digest = the digest of the
//! `Metadata.RepoDigests` entry for the artifact's repository (else the first), else
//! `Metadata.ImageID`. The event time is the report's `CreatedAt`, else the time of
//! receipt.
//!
//! The same endpoint also takes a Trivy Operator `VulnerabilityReport` (or
//! `ClusterVulnerabilityReport`) custom resource as JSON (`kubectl get vulns -o json`
//! of one report), recognised by its `kind` (also `ImageVulnerabilityReport`): image =
//! `report.registry.server/report.artifact.repository:report.artifact.tag`, digest =
//! `report.artifact.digest`, event time = `report.updateTimestamp`, one vulnerability
//! finding per `report.vulnerabilities[]` with package = `resource` and the other
//! fields as above (camelCase).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use argus_schemas::{FindingKind, FindingSource, Resource, SecurityFinding, Severity, Timestamp};

use super::{FindingsState, Parsed, accept, invalid, non_empty, reject};
use crate::IngestError;
use crate::body::content_decoded;
use crate::events_api::tenant_of;

pub(crate) const COLLECTOR: &str = "trivy";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    schema_version: Option<i64>,
    created_at: Option<String>,
    artifact_name: Option<String>,
    artifact_type: Option<String>,
    metadata: Option<Metadata>,
    results: Option<Vec<ScanResult>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    #[serde(rename = "ImageID")]
    image_id: Option<String>,
    repo_digests: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScanResult {
    target: Option<String>,
    vulnerabilities: Option<Vec<Vulnerability>>,
    misconfigurations: Option<Vec<Misconfiguration>>,
    secrets: Option<Vec<Secret>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: Option<String>,
    pkg_name: Option<String>,
    installed_version: Option<String>,
    fixed_version: Option<String>,
    severity: Option<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Misconfiguration {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AVDID")]
    avd_id: Option<String>,
    title: Option<String>,
    severity: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Secret {
    #[serde(rename = "RuleID")]
    rule_id: Option<String>,
    title: Option<String>,
    severity: Option<String>,
}

/// Trivy's severity scale, which is Argus' own; a missing severity is `UNKNOWN`.
pub fn severity(s: Option<&str>) -> Result<Severity, String> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Severity::Unknown);
    };
    match s.to_ascii_uppercase().as_str() {
        "UNKNOWN" => Ok(Severity::Unknown),
        "LOW" => Ok(Severity::Low),
        "MEDIUM" => Ok(Severity::Medium),
        "HIGH" => Ok(Severity::High),
        "CRITICAL" => Ok(Severity::Critical),
        _ => Err(format!(
            "Severity {s:?} is not one of UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL"
        )),
    }
}

/// The digest part of `repo@sha256:…`, preferring the entry of `repo`.
fn digest(meta: Option<&Metadata>, artifact: &str) -> Option<String> {
    let meta = meta?;
    let repo = artifact
        .rsplit_once('@')
        .map(|(r, _)| r)
        .unwrap_or(artifact);
    // Strip a tag (a `:` after the last `/`, so a registry port is kept).
    let repo = match repo.rfind(':') {
        Some(i) if !repo[i..].contains('/') => &repo[..i],
        _ => repo,
    };
    let digests = meta.repo_digests.as_deref().unwrap_or_default();
    let pick = digests
        .iter()
        .find(|d| d.rsplit_once('@').is_some_and(|(r, _)| r == repo))
        .or_else(|| digests.first());
    pick.and_then(|d| d.rsplit_once('@').map(|(_, h)| h.to_string()))
        .and_then(|d| non_empty(Some(&d)))
        .or_else(|| non_empty(meta.image_id.as_deref()))
}

/// Turns a report into findings, or lists every problem with where it is.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<Parsed>, IngestError> {
    let not_report = |e: serde_json::Error| {
        reject(
            COLLECTOR,
            "json",
            format!("body is not a Trivy JSON report: {e}"),
        )
    };
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(not_report)?;
    if doc
        .get("kind")
        .and_then(|k| k.as_str())
        .is_some_and(|k| k.ends_with("VulnerabilityReport"))
    {
        return parse_operator(doc);
    }
    let report: Report = serde_json::from_value(doc).map_err(not_report)?;
    let mut problems = Vec::new();
    match report.schema_version {
        Some(2) => {}
        Some(v) => problems.push(format!(
            "SchemaVersion {v} is not supported (only 2, as `trivy --format json` writes)"
        )),
        None => problems.push("missing SchemaVersion: not a Trivy JSON report".to_string()),
    }
    if let Some(t) = non_empty(report.artifact_type.as_deref())
        && t != "container_image"
    {
        problems.push(format!(
            "ArtifactType {t:?}: only container image reports (container_image) are accepted"
        ));
    }
    let artifact = non_empty(report.artifact_name.as_deref());
    if artifact.is_none() {
        problems.push("missing ArtifactName".to_string());
    }
    let event_time = match non_empty(report.created_at.as_deref()) {
        None => Timestamp::now(),
        Some(t) => Timestamp::parse(&t).unwrap_or_else(|e| {
            problems.push(format!("CreatedAt: {e}"));
            Timestamp::now()
        }),
    };
    let artifact = artifact.unwrap_or_default();
    let resource = Resource {
        kind: "image".to_string(),
        image: Some(artifact.clone()),
        image_digest: digest(report.metadata.as_ref(), &artifact),
        ..Default::default()
    };
    let finding = |kind, severity, id: String, title: Option<&str>| SecurityFinding {
        source: FindingSource::Trivy,
        kind,
        severity,
        resource: resource.clone(),
        title: non_empty(title).unwrap_or_else(|| id.clone()),
        id,
        package: None,
        installed_version: None,
        fixed_version: None,
    };
    let mut out = Vec::new();
    for (i, r) in report.results.unwrap_or_default().into_iter().enumerate() {
        let target = non_empty(r.target.as_deref());
        for (j, v) in r
            .vulnerabilities
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let at = format!("Results[{i}].Vulnerabilities[{j}]");
            let Some(id) = non_empty(v.vulnerability_id.as_deref()) else {
                problems.push(format!("{at}: missing VulnerabilityID"));
                continue;
            };
            let sev = match severity(v.severity.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let mut f = finding(FindingKind::Vulnerability, sev, id, v.title.as_deref());
            f.package = non_empty(v.pkg_name.as_deref());
            f.installed_version = non_empty(v.installed_version.as_deref());
            f.fixed_version = non_empty(v.fixed_version.as_deref());
            out.push(f);
        }
        for (j, m) in r
            .misconfigurations
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let at = format!("Results[{i}].Misconfigurations[{j}]");
            let Some(id) = non_empty(m.id.as_deref()).or_else(|| non_empty(m.avd_id.as_deref()))
            else {
                problems.push(format!("{at}: missing ID and AVDID"));
                continue;
            };
            let sev = match severity(m.severity.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
            if non_empty(m.status.as_deref()).is_some_and(|s| !s.eq_ignore_ascii_case("FAIL")) {
                continue;
            }
            let mut f = finding(FindingKind::Misconfiguration, sev, id, m.title.as_deref());
            f.package = target.clone();
            out.push(f);
        }
        for (j, s) in r.secrets.unwrap_or_default().into_iter().enumerate() {
            let at = format!("Results[{i}].Secrets[{j}]");
            let Some(id) = non_empty(s.rule_id.as_deref()) else {
                problems.push(format!("{at}: missing RuleID"));
                continue;
            };
            let sev = match severity(s.severity.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let mut f = finding(FindingKind::Secret, sev, id, s.title.as_deref());
            f.package = target.clone();
            out.push(f);
        }
    }
    if !problems.is_empty() {
        return Err(invalid(COLLECTOR, "Trivy report", &problems));
    }
    Ok(out
        .into_iter()
        .map(|finding| Parsed {
            event_time,
            finding,
            occurrence: None,
        })
        .collect())
}

#[derive(Deserialize)]
struct OperatorReport {
    report: Option<OperatorData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperatorData {
    update_timestamp: Option<String>,
    registry: Option<OperatorRegistry>,
    artifact: Option<OperatorArtifact>,
    vulnerabilities: Option<Vec<OperatorVulnerability>>,
}

#[derive(Deserialize)]
struct OperatorRegistry {
    server: Option<String>,
}

#[derive(Deserialize)]
struct OperatorArtifact {
    repository: Option<String>,
    tag: Option<String>,
    digest: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperatorVulnerability {
    #[serde(rename = "vulnerabilityID")]
    vulnerability_id: Option<String>,
    resource: Option<String>,
    installed_version: Option<String>,
    fixed_version: Option<String>,
    severity: Option<String>,
    title: Option<String>,
}

/// A Trivy Operator `VulnerabilityReport` (or `ClusterVulnerabilityReport`) custom
/// resource: image = `report.registry.server/report.artifact.repository:tag`, digest
/// = `report.artifact.digest`, one vulnerability finding per `report.vulnerabilities[]`
/// (package = `resource`), event time = `report.updateTimestamp`.
fn parse_operator(doc: serde_json::Value) -> Result<Vec<Parsed>, IngestError> {
    let r: OperatorReport = serde_json::from_value(doc).map_err(|e| {
        reject(
            COLLECTOR,
            "json",
            format!("body is not a Trivy Operator VulnerabilityReport: {e}"),
        )
    })?;
    let mut problems = Vec::new();
    let Some(data) = r.report else {
        return Err(invalid(
            COLLECTOR,
            "Trivy Operator VulnerabilityReport",
            &["missing report".to_string()],
        ));
    };
    let artifact = data.artifact.as_ref();
    let repo = artifact.and_then(|a| non_empty(a.repository.as_deref()));
    let digest = artifact.and_then(|a| non_empty(a.digest.as_deref()));
    let image = repo.map(|repo| {
        let server = data
            .registry
            .as_ref()
            .and_then(|r| non_empty(r.server.as_deref()));
        let name = match server {
            Some(s) => format!("{s}/{repo}"),
            None => repo,
        };
        match artifact.and_then(|a| non_empty(a.tag.as_deref())) {
            Some(t) => format!("{name}:{t}"),
            None => name,
        }
    });
    if image.is_none() {
        problems.push("report.artifact: missing repository".to_string());
    }
    let event_time = match non_empty(data.update_timestamp.as_deref()) {
        None => Timestamp::now(),
        Some(t) => Timestamp::parse(&t).unwrap_or_else(|e| {
            problems.push(format!("report.updateTimestamp: {e}"));
            Timestamp::now()
        }),
    };
    let resource = Resource {
        kind: "image".to_string(),
        image,
        image_digest: digest,
        ..Default::default()
    };
    let mut out = Vec::new();
    for (j, v) in data
        .vulnerabilities
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let at = format!("report.vulnerabilities[{j}]");
        let Some(id) = non_empty(v.vulnerability_id.as_deref()) else {
            problems.push(format!("{at}: missing vulnerabilityID"));
            continue;
        };
        let severity = match severity(v.severity.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        out.push(Parsed {
            event_time,
            finding: SecurityFinding {
                source: FindingSource::Trivy,
                kind: FindingKind::Vulnerability,
                severity,
                resource: resource.clone(),
                title: non_empty(v.title.as_deref()).unwrap_or_else(|| id.clone()),
                id,
                package: non_empty(v.resource.as_deref()),
                installed_version: non_empty(v.installed_version.as_deref()),
                fixed_version: non_empty(v.fixed_version.as_deref()),
            },
            occurrence: None,
        });
    }
    if !problems.is_empty() {
        return Err(invalid(
            COLLECTOR,
            "Trivy Operator VulnerabilityReport",
            &problems,
        ));
    }
    Ok(out)
}

pub(crate) async fn receive(
    State(state): State<FindingsState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, IngestError> {
    let tenant = tenant_of(&headers, COLLECTOR)?;
    let body = content_decoded(&headers, &body, COLLECTOR)?;
    let items = parse(&body)?;
    accept(&state, COLLECTOR, &tenant, items, Vec::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let m = Metadata {
            image_id: Some("sha256:cfg".into()),
            repo_digests: Some(vec![
                "mirror.example/nginx@sha256:aaa".into(),
                "nginx@sha256:bbb".into(),
            ]),
        };
        assert_eq!(
            digest(Some(&m), "nginx:1.25.3").as_deref(),
            Some("sha256:bbb")
        );
        assert_eq!(
            digest(Some(&m), "other:1").as_deref(),
            Some("sha256:aaa"),
            "first when none matches"
        );
        let m = Metadata {
            image_id: Some("sha256:cfg".into()),
            repo_digests: None,
        };
        assert_eq!(digest(Some(&m), "x").as_deref(), Some("sha256:cfg"));
        assert_eq!(digest(None, "x"), None);
    }

    #[test]
    fn severities() {
        assert_eq!(severity(Some("critical")), Ok(Severity::Critical));
        assert_eq!(severity(None), Ok(Severity::Unknown));
        assert!(severity(Some("SEVERE")).unwrap_err().contains("SEVERE"));
    }
}
