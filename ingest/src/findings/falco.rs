//! `POST /api/v1/findings/falco`: Falco alerts as Falco's `http_output` and the
//! falcosidekick webhook send them — one JSON object per request, NDJSON lines, or a
//! JSON array of them.
//!
//! Each alert (`rule`, `priority` and `time` required) becomes one finding of kind
//! `runtime`: id and title = `rule` (the rendered `output` has no place in a finding),
//! event time = `time` (RFC 3339, nanoseconds kept). Severity from `priority`:
//!
//! | Falco priority | severity |
//! |---|---|
//! | Emergency, Alert, Critical | CRITICAL |
//! | Error | HIGH |
//! | Warning | MEDIUM |
//! | Notice, Informational (Info) | LOW |
//! | Debug | UNKNOWN |
//!
//! (any case; anything else is refused). The resource comes from `output_fields`:
//! image = `container.image.repository:container.image.tag` (the repository alone when
//! there is no tag; else `container.image`), container = `container.name` else
//! `container.id`, pod = `k8s.pod.name`, namespace = `k8s.ns.name`, node = `hostname`
//! (else `output_fields.evt.hostname`). Its kind is `container` when there is a
//! container (a `container.id` other than empty or `host`, Falco's value for host
//! processes), else `pod` when there is a pod, else `node`. Alerts about a container
//! with an image also feed the running-images map.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use argus_schemas::{FindingKind, FindingSource, Resource, SecurityFinding, Severity, Timestamp};

use super::{FindingsState, Location, Parsed, Sighting, accept, invalid, non_empty, reject};
use crate::IngestError;
use crate::body::content_decoded;
use crate::events_api::tenant_of;

pub(crate) const COLLECTOR: &str = "falco";
/// At most this many alerts in one request.
pub const MAX_ALERTS_PER_REQUEST: usize = 10_000;

#[derive(Deserialize)]
struct Alert {
    priority: Option<String>,
    rule: Option<String>,
    time: Option<String>,
    #[serde(default)]
    output_fields: Option<Map<String, Value>>,
    hostname: Option<String>,
}

/// Falco's priority → Argus' severity (see the module docs).
pub fn severity(priority: &str) -> Result<Severity, String> {
    match priority.trim().to_ascii_lowercase().as_str() {
        "emergency" | "alert" | "critical" => Ok(Severity::Critical),
        "error" => Ok(Severity::High),
        "warning" => Ok(Severity::Medium),
        "notice" | "informational" | "info" => Ok(Severity::Low),
        "debug" => Ok(Severity::Unknown),
        _ => Err(format!(
            "priority {priority:?} is not one of Emergency, Alert, Critical, Error, Warning, \
             Notice, Informational, Debug"
        )),
    }
}

/// The alerts of a body: a JSON array, or one or more whitespace-separated objects.
fn alerts(body: &[u8]) -> Result<Vec<Value>, IngestError> {
    let not_json = |e: serde_json::Error| {
        reject(
            COLLECTOR,
            "json",
            format!("body is not Falco JSON output: {e}"),
        )
    };
    let trimmed = body.trim_ascii_start();
    if trimmed.starts_with(b"[") {
        return serde_json::from_slice(trimmed).map_err(not_json);
    }
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        out.push(v.map_err(|e| {
            reject(
                COLLECTOR,
                "json",
                format!("alert {}: not Falco JSON output: {e}", out.len()),
            )
        })?);
    }
    if out.is_empty() {
        return Err(reject(COLLECTOR, "json", "body has no Falco alert".into()));
    }
    Ok(out)
}

/// An `output_fields` value as text (`null` → none).
fn field(fields: &Map<String, Value>, name: &str) -> Option<String> {
    match fields.get(name)? {
        Value::String(s) => non_empty(Some(s)),
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => None,
        other => Some(other.to_string()),
    }
}

fn image_of(f: &Map<String, Value>) -> Option<String> {
    match (
        field(f, "container.image.repository"),
        field(f, "container.image.tag"),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r),
        _ => field(f, "container.image"),
    }
}

fn alert(v: Value, at: &str) -> Result<(Parsed, Option<Sighting>), String> {
    if !v.is_object() {
        return Err(format!("{at}: not a JSON object"));
    }
    let a: Alert = serde_json::from_value(v).map_err(|e| format!("{at}: {e}"))?;
    let rule = non_empty(a.rule.as_deref()).ok_or_else(|| format!("{at}: missing rule"))?;
    let priority =
        non_empty(a.priority.as_deref()).ok_or_else(|| format!("{at}: missing priority"))?;
    let severity = severity(&priority).map_err(|e| format!("{at}: {e}"))?;
    let time = non_empty(a.time.as_deref()).ok_or_else(|| format!("{at}: missing time"))?;
    let time = Timestamp::parse(&time).map_err(|e| format!("{at}: time: {e}"))?;
    let fields = a.output_fields.unwrap_or_default();
    let container_id = field(&fields, "container.id").filter(|id| id != "host");
    let container = container_id
        .as_ref()
        .map(|id| field(&fields, "container.name").unwrap_or_else(|| id.clone()));
    let image = container.as_ref().and_then(|_| image_of(&fields));
    let pod = field(&fields, "k8s.pod.name");
    let namespace = field(&fields, "k8s.ns.name");
    let node = non_empty(a.hostname.as_deref()).or_else(|| field(&fields, "evt.hostname"));
    let kind = if container.is_some() {
        "container"
    } else if pod.is_some() {
        "pod"
    } else {
        "node"
    };
    let resource = Resource {
        kind: kind.to_string(),
        image: image.clone(),
        image_digest: field(&fields, "container.image.digest"),
        container: container.clone(),
        pod: pod.clone(),
        namespace: namespace.clone(),
        node: node.clone(),
    };
    let sighting = image.map(|image| Sighting {
        image,
        location: Location {
            node,
            namespace,
            pod,
            container,
            container_id,
        },
        at: time,
    });
    let title = rule.clone();
    let finding = SecurityFinding {
        source: FindingSource::Falco,
        kind: FindingKind::Runtime,
        severity,
        resource,
        id: rule,
        title,
        package: None,
        installed_version: None,
        fixed_version: None,
    };
    Ok((
        Parsed {
            event_time: time,
            finding,
            occurrence: Some(time.0),
        },
        sighting,
    ))
}

/// Turns a body into findings and sightings, or lists every problem with where it is.
pub(crate) fn parse(body: &[u8]) -> Result<(Vec<Parsed>, Vec<Sighting>), IngestError> {
    let values = alerts(body)?;
    if values.len() > MAX_ALERTS_PER_REQUEST {
        return Err(reject(
            COLLECTOR,
            "too_many",
            format!(
                "{} alerts in one request; at most {MAX_ALERTS_PER_REQUEST} are accepted",
                values.len()
            ),
        ));
    }
    let mut items = Vec::with_capacity(values.len());
    let mut sightings = Vec::new();
    let mut problems = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        match alert(v, &format!("alert {i}")) {
            Ok((p, s)) => {
                items.push(p);
                sightings.extend(s);
            }
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(invalid(COLLECTOR, "Falco alerts", &problems));
    }
    Ok((items, sightings))
}

pub(crate) async fn receive(
    State(state): State<FindingsState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, IngestError> {
    let tenant = tenant_of(&headers, COLLECTOR)?;
    let body = content_decoded(&headers, &body, COLLECTOR)?;
    let (items, sightings) = parse(&body)?;
    accept(&state, COLLECTOR, &tenant, items, sightings).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        for (p, s) in [
            ("Emergency", Severity::Critical),
            ("ALERT", Severity::Critical),
            ("Critical", Severity::Critical),
            ("Error", Severity::High),
            ("Warning", Severity::Medium),
            ("Notice", Severity::Low),
            ("Informational", Severity::Low),
            ("Debug", Severity::Unknown),
        ] {
            assert_eq!(severity(p), Ok(s), "{p}");
        }
        assert!(severity("Loud").is_err());
    }

    #[test]
    fn host_process_is_a_node_finding() {
        let v = serde_json::json!({
            "rule": "Read sensitive file untrusted", "priority": "Warning",
            "time": "2024-05-14T09:12:45.123456789Z", "hostname": "worker-1",
            "output_fields": {"container.id": "host", "proc.cmdline": "cat /etc/shadow",
                              "evt.time": 1715677965123456789u64}
        });
        let (p, s) = alert(v, "alert 0").unwrap();
        assert_eq!(p.finding.resource.kind, "node");
        assert_eq!(p.finding.resource.node.as_deref(), Some("worker-1"));
        assert_eq!(p.finding.resource.container, None);
        assert_eq!(p.event_time, Timestamp(1_715_677_965_123_456_789));
        assert!(s.is_none());
    }
}
