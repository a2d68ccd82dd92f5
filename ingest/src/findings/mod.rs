//! Security-finding receivers: container-security documents in, normalised
//! `security_finding` records (topic `argus.findings`) out.
//!
//! | endpoint | document | module |
//! |---|---|---|
//! | `POST /api/v1/findings/falco` | Falco JSON alerts (`http_output`, falcosidekick webhook): one object, NDJSON lines or a JSON array | [`falco`] |
//! | `POST /api/v1/findings/trivy` | a Trivy JSON report (`trivy image --format json`, `SchemaVersion` 2), or a Trivy Operator `VulnerabilityReport` resource | [`trivy`] |
//! | `POST /api/v1/findings/clair` | a Clair v4 vulnerability report (`/matcher/api/v1/vulnerability_report/{digest}`), image name in `?image=` | [`clair`] |
//! | `GET /api/v1/findings/images` | images seen running (from Falco alerts), with counts | |
//! | `GET /api/v1/findings/images/running?image=<ref>` (or `/images/<url-encoded ref>/running`) | where one image was last seen running | |
//!
//! Each module documents its field and severity mappings. Common rules:
//!
//! - **Tenant** from `X-Scope-OrgID` (default `default`); the record `source` is
//!   `falco`, `trivy` or `clair`. Bodies may be gzip/deflate/snappy encoded.
//! - **All or nothing**: a body that is not JSON, or is not the document the endpoint
//!   expects, is answered 400 naming each problem and where it is
//!   (`Results[2].Vulnerabilities[5]: missing VulnerabilityID`), counted in
//!   `argus_ingest_rejected_total{collector}` and nothing is written. 204 means every
//!   new finding is durable on the event log.
//! - **Keys**: a record's key is the finding's default key (`Payload::default_key`:
//!   source, id and resource fields), so repeated reports of one finding share a key
//!   and downstream consumers can deduplicate by it.
//! - **Re-report suppression** (per process, in memory): each receiver remembers the
//!   identity of what it published — tenant, record key, package, installed version,
//!   severity, fixed version, and for runtime alerts the alert's own time — for
//!   [`FindingsConfig::dedup_window`] (default 1 h), in a set capped at
//!   [`FindingsConfig::dedup_capacity`] entries (oldest evicted first). An identical
//!   finding seen again within the window is not re-published and is counted in
//!   `argus_ingest_findings_duplicates_total{collector}`. A change of severity or fix
//!   version is published again. The package is part of the identity because the
//!   default key omits it (one CVE often affects two packages of one image); the alert
//!   time is for runtime alerts because a Falco alert is an occurrence, not a state —
//!   only a re-delivery of the same alert is a duplicate. State is lost on restart and
//!   not shared between processes; the record key is what makes durable dedup possible.
//! - **Running images** (per process, in memory): every Falco alert about a container
//!   with a known image records (node, namespace, pod, container, container id) → last
//!   seen time under (tenant, image); at most [`FindingsConfig::max_images`] images per
//!   process and [`FindingsConfig::max_locations_per_image`] places per image, the least
//!   recently seen evicted first.

pub mod clair;
pub mod falco;
pub mod trivy;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use argus_schemas::{Envelope, Payload, SecurityFinding, Severity, Timestamp};

use crate::IngestError;
use crate::events_api::tenant_of;
use crate::metrics::{FINDINGS_DUPLICATES, RECEIVED, REJECTED};

/// Problems listed in one 400 answer.
const MAX_LISTED_PROBLEMS: usize = 10;

/// Tunables of the receivers' in-memory state.
#[derive(Debug, Clone)]
pub struct FindingsConfig {
    /// How long an identical re-report is suppressed. Zero disables suppression.
    pub dedup_window: Duration,
    /// Most finding identities remembered per receiver.
    pub dedup_capacity: usize,
    /// Most images in the running-images map (over all tenants).
    pub max_images: usize,
    /// Most (node, namespace, pod, container) places remembered per image.
    pub max_locations_per_image: usize,
}

impl Default for FindingsConfig {
    fn default() -> Self {
        FindingsConfig {
            dedup_window: Duration::from_secs(3600),
            dedup_capacity: 100_000,
            max_images: 10_000,
            max_locations_per_image: 1_000,
        }
    }
}

/// The receivers' shared state: the event log, the re-report sets and the image map.
#[derive(Clone)]
pub struct FindingsState {
    log: argus_bus::EventLog,
    falco_seen: Arc<Mutex<Dedup>>,
    trivy_seen: Arc<Mutex<Dedup>>,
    clair_seen: Arc<Mutex<Dedup>>,
    images: Arc<Mutex<ImageMap>>,
}

impl FindingsState {
    pub fn new(log: argus_bus::EventLog, cfg: &FindingsConfig) -> Self {
        let dedup = || Arc::new(Mutex::new(Dedup::new(cfg.dedup_window, cfg.dedup_capacity)));
        FindingsState {
            log,
            falco_seen: dedup(),
            trivy_seen: dedup(),
            clair_seen: dedup(),
            images: Arc::new(Mutex::new(ImageMap::new(
                cfg.max_images,
                cfg.max_locations_per_image,
            ))),
        }
    }

    fn seen(&self, collector: &str) -> MutexGuard<'_, Dedup> {
        let m = match collector {
            falco::COLLECTOR => &self.falco_seen,
            trivy::COLLECTOR => &self.trivy_seen,
            _ => &self.clair_seen,
        };
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn images(&self) -> MutexGuard<'_, ImageMap> {
        self.images.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The receivers with the default [`FindingsConfig`].
pub fn router(log: argus_bus::EventLog) -> Router {
    router_with(log, &FindingsConfig::default())
}

pub fn router_with(log: argus_bus::EventLog, cfg: &FindingsConfig) -> Router {
    Router::new()
        .route("/api/v1/findings/falco", post(falco::receive))
        .route("/api/v1/findings/trivy", post(trivy::receive))
        .route("/api/v1/findings/clair", post(clair::receive))
        .route("/api/v1/findings/images", get(list_images))
        .route("/api/v1/findings/images/running", get(running_by_query))
        .route(
            "/api/v1/findings/images/{image}/running",
            get(running_by_path),
        )
        .with_state(FindingsState::new(log, cfg))
}

/// One normalised finding, before it becomes a record.
pub(crate) struct Parsed {
    pub event_time: Timestamp,
    pub finding: SecurityFinding,
    /// For runtime alerts: the alert's own time, part of its re-report identity.
    pub occurrence: Option<i64>,
}

/// Where an image was seen running.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// A sighting of an image at a place, at a time.
pub(crate) struct Sighting {
    pub image: String,
    pub location: Location,
    pub at: Timestamp,
}

/// A 400 counted under `collector` and `reason`.
pub(crate) fn reject(collector: &str, reason: &str, msg: String) -> IngestError {
    REJECTED.with_label_values(&[collector, reason]).inc();
    IngestError::BadRequest(msg)
}

/// A 400 listing `problems` (each already prefixed with where it is).
pub(crate) fn invalid(collector: &str, what: &str, problems: &[String]) -> IngestError {
    let n = problems.len();
    let mut msg = format!(
        "{n} problem{} in the {what}; nothing was written:\n",
        if n == 1 { "" } else { "s" }
    );
    for p in problems.iter().take(MAX_LISTED_PROBLEMS) {
        msg.push_str(p);
        msg.push('\n');
    }
    if n > MAX_LISTED_PROBLEMS {
        msg.push_str(&format!("… and {} more\n", n - MAX_LISTED_PROBLEMS));
    }
    reject(collector, "invalid", msg.trim_end().to_string())
}

/// A non-empty, trimmed string, or `None`.
pub(crate) fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Publishes the findings that are not re-reports, then remembers them and the
/// sightings. Answers 204.
pub(crate) async fn accept(
    state: &FindingsState,
    collector: &'static str,
    tenant: &str,
    items: Vec<Parsed>,
    sightings: Vec<Sighting>,
) -> Result<StatusCode, IngestError> {
    let now = Instant::now();
    let mut fresh = Vec::with_capacity(items.len());
    let mut identities = Vec::with_capacity(items.len());
    let mut duplicates = 0u64;
    {
        let seen = state.seen(collector);
        let mut in_request = HashSet::new();
        for mut p in items {
            if let Some(img) = p.finding.resource.image.as_mut() {
                *img = normalize_image(img);
            }
            let env = Envelope::new(
                tenant,
                collector,
                p.event_time,
                Payload::SecurityFinding(p.finding),
            );
            let id = Identity::of(&env, p.occurrence);
            if seen.contains(&id, now) || !in_request.insert(id.clone()) {
                duplicates += 1;
                continue;
            }
            identities.push(id);
            fresh.push(env);
        }
    }
    if !fresh.is_empty() {
        state.log.publish(&fresh).await?;
    }
    {
        let mut seen = state.seen(collector);
        for id in identities {
            seen.insert(id, now);
        }
    }
    if !sightings.is_empty() {
        let mut images = state.images();
        for s in sightings {
            images.record(tenant, normalize_image(&s.image), s.location, s.at);
        }
    }
    RECEIVED
        .with_label_values(&[collector, "security_finding"])
        .inc_by(fresh.len() as u64);
    FINDINGS_DUPLICATES
        .with_label_values(&[collector])
        .inc_by(duplicates);
    tracing::debug!(
        tenant,
        collector,
        written = fresh.len(),
        duplicates,
        "findings"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// What makes two reports "the same finding" for re-report suppression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Identity {
    tenant: String,
    key: String,
    package: Option<String>,
    installed_version: Option<String>,
    /// `Severity as u8` (the schema type does not implement `Hash`).
    severity: u8,
    fixed_version: Option<String>,
    occurrence: Option<i64>,
}

impl Identity {
    fn of(env: &Envelope, occurrence: Option<i64>) -> Identity {
        let (package, installed_version, severity, fixed_version) = match &env.payload {
            Payload::SecurityFinding(f) => (
                f.package.clone(),
                f.installed_version.clone(),
                f.severity as u8,
                f.fixed_version.clone(),
            ),
            _ => (None, None, Severity::Unknown as u8, None),
        };
        Identity {
            tenant: env.tenant.clone(),
            key: env.key.clone(),
            package,
            installed_version,
            severity,
            fixed_version,
            occurrence,
        }
    }
}

/// A bounded set of recently published identities: insertion-ordered, entries expire
/// after `window`, the oldest are evicted beyond `capacity`.
struct Dedup {
    window: Duration,
    capacity: usize,
    seen: HashMap<Identity, Instant>,
    order: VecDeque<(Identity, Instant)>,
}

impl Dedup {
    fn new(window: Duration, capacity: usize) -> Self {
        Dedup {
            window,
            capacity,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, id: &Identity, now: Instant) -> bool {
        self.seen
            .get(id)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.window)
    }

    fn insert(&mut self, id: Identity, now: Instant) {
        if self.window.is_zero() || self.capacity == 0 {
            return;
        }
        self.seen.insert(id.clone(), now);
        self.order.push_back((id, now));
        while let Some((front, t)) = self.order.front() {
            let expired = now.saturating_duration_since(*t) >= self.window;
            if !expired && self.seen.len() <= self.capacity {
                break;
            }
            if self.seen.get(front) == Some(t) {
                self.seen.remove(front);
            }
            self.order.pop_front();
        }
    }
}

struct ImageEntry {
    locations: HashMap<Location, Timestamp>,
    last_seen: Timestamp,
}

/// (tenant, image) → places last seen, bounded.
struct ImageMap {
    max_images: usize,
    max_locations: usize,
    images: HashMap<(String, String), ImageEntry>,
}

impl ImageMap {
    fn new(max_images: usize, max_locations: usize) -> Self {
        ImageMap {
            max_images,
            max_locations,
            images: HashMap::new(),
        }
    }

    fn record(&mut self, tenant: &str, image: String, location: Location, at: Timestamp) {
        if self.max_images == 0 || self.max_locations == 0 {
            return;
        }
        let k = (tenant.to_string(), image);
        if !self.images.contains_key(&k) && self.images.len() >= self.max_images {
            let oldest = self
                .images
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone());
            if let Some(o) = oldest {
                self.images.remove(&o);
            }
        }
        let e = self.images.entry(k).or_insert_with(|| ImageEntry {
            locations: HashMap::new(),
            last_seen: at,
        });
        e.last_seen = e.last_seen.max(at);
        if !e.locations.contains_key(&location) && e.locations.len() >= self.max_locations {
            let oldest = e
                .locations
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(l, _)| l.clone());
            if let Some(o) = oldest {
                e.locations.remove(&o);
            }
        }
        let t = e.locations.entry(location).or_insert(at);
        *t = (*t).max(at);
    }

    fn running(&self, tenant: &str, image: &str) -> Vec<Running> {
        let Some(e) = self.images.get(&(tenant.to_string(), image.to_string())) else {
            return Vec::new();
        };
        let mut out: Vec<Running> = e
            .locations
            .iter()
            .map(|(l, t)| Running {
                location: l.clone(),
                last_seen: *t,
            })
            .collect();
        out.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then_with(|| a.location.node.cmp(&b.location.node))
                .then_with(|| a.location.namespace.cmp(&b.location.namespace))
                .then_with(|| a.location.pod.cmp(&b.location.pod))
                .then_with(|| a.location.container.cmp(&b.location.container))
        });
        out
    }

    fn list(&self, tenant: &str) -> Vec<ImageSummary> {
        let mut out: Vec<ImageSummary> = self
            .images
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, image), e)| ImageSummary {
                image: image.clone(),
                containers: e.locations.len(),
                nodes: e
                    .locations
                    .keys()
                    .filter_map(|l| l.node.as_deref())
                    .collect::<HashSet<_>>()
                    .len(),
                last_seen: e.last_seen,
            })
            .collect();
        out.sort_by(|a, b| a.image.cmp(&b.image));
        out
    }
}

/// One entry of `GET /api/v1/findings/images/running`.
#[derive(Debug, Serialize)]
pub struct Running {
    #[serde(flatten)]
    pub location: Location,
    /// Unix nanoseconds of the latest alert from this place.
    pub last_seen: Timestamp,
}

/// One entry of `GET /api/v1/findings/images`.
#[derive(Debug, Serialize)]
pub struct ImageSummary {
    pub image: String,
    /// Distinct (node, namespace, pod, container) places.
    pub containers: usize,
    /// Distinct nodes.
    pub nodes: usize,
    pub last_seen: Timestamp,
}

#[derive(Deserialize)]
struct ImageQuery {
    image: Option<String>,
}

const QUERY_COLLECTOR: &str = "findings-query";

async fn list_images(
    State(state): State<FindingsState>,
    headers: HeaderMap,
) -> Result<Json<Vec<ImageSummary>>, IngestError> {
    let tenant = tenant_of(&headers, QUERY_COLLECTOR)?;
    Ok(Json(state.images().list(&tenant)))
}

async fn running_by_query(
    State(state): State<FindingsState>,
    headers: HeaderMap,
    Query(q): Query<ImageQuery>,
) -> Result<Json<Vec<Running>>, IngestError> {
    let tenant = tenant_of(&headers, QUERY_COLLECTOR)?;
    let image = non_empty(q.image.as_deref()).ok_or_else(|| {
        reject(
            QUERY_COLLECTOR,
            "query",
            "the image parameter is required: ?image=<repository>:<tag>".into(),
        )
    })?;
    Ok(Json(
        state.images().running(&tenant, &normalize_image(&image)),
    ))
}

async fn running_by_path(
    State(state): State<FindingsState>,
    headers: HeaderMap,
    Path(image): Path<String>,
) -> Result<Json<Vec<Running>>, IngestError> {
    let tenant = tenant_of(&headers, QUERY_COLLECTOR)?;
    Ok(Json(
        state.images().running(&tenant, &normalize_image(&image)),
    ))
}

/// An image reference in Docker's normalised form, so that scanners and runtimes that
/// name the same image differently agree (`nginx:1.25.3`, `library/nginx:1.25.3` and
/// `docker.io/library/nginx:1.25.3` are one image): a first path component that is not
/// a registry (no `.` or `:`, not `localhost`) means Docker Hub, `docker.io`; a Docker
/// Hub repository without a namespace is under `library/`; `index.docker.io` is
/// `docker.io`. Tags and digests are kept as they are; a missing tag is not invented.
pub fn normalize_image(image: &str) -> String {
    let image = image.trim();
    // Empty, or a bare content digest (`sha256:<hex>`, what Clair reports without
    // `?image=`): not a name, left as it is.
    let bare_digest = image.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty()
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && hex.len() >= 32
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if image.is_empty() || bare_digest {
        return image.to_string();
    }
    let (first, rest) = match image.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (image, None),
    };
    let is_registry =
        rest.is_some() && (first.contains('.') || first.contains(':') || first == "localhost");
    let (registry, path) = if is_registry {
        let reg = if first == "index.docker.io" || first == "registry-1.docker.io" {
            "docker.io"
        } else {
            first
        };
        (reg, rest.unwrap_or_default().to_string())
    } else {
        ("docker.io", image.to_string())
    };
    let path = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    format!("{registry}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_are_normalised_as_docker_does() {
        for (given, want) in [
            ("nginx:1.25.3", "docker.io/library/nginx:1.25.3"),
            ("library/nginx:1.25.3", "docker.io/library/nginx:1.25.3"),
            (
                "docker.io/library/nginx:1.25.3",
                "docker.io/library/nginx:1.25.3",
            ),
            ("index.docker.io/library/nginx", "docker.io/library/nginx"),
            ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
            ("ghcr.io/acme/api:v2", "ghcr.io/acme/api:v2"),
            (
                "localhost:5000/app@sha256:abcd",
                "localhost:5000/app@sha256:abcd",
            ),
            ("localhost/app:1", "localhost/app:1"),
            ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
            (
                "sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac",
                "sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac",
            ),
            ("", ""),
        ] {
            assert_eq!(normalize_image(given), want, "{given}");
        }
    }

    fn id(n: u32) -> Identity {
        Identity {
            tenant: "t".into(),
            key: n.to_string(),
            package: None,
            installed_version: None,
            severity: Severity::High as u8,
            fixed_version: None,
            occurrence: None,
        }
    }

    #[test]
    fn dedup_expires_and_is_bounded() {
        let mut d = Dedup::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        d.insert(id(1), t0);
        assert!(d.contains(&id(1), t0 + Duration::from_secs(9)));
        assert!(!d.contains(&id(1), t0 + Duration::from_secs(10)));
        d.insert(id(2), t0);
        d.insert(id(3), t0);
        assert_eq!(d.seen.len(), 2);
        assert!(!d.contains(&id(1), t0), "oldest evicted beyond capacity");
        assert!(d.contains(&id(3), t0));
        // Expired entries leave on the next insert.
        d.insert(id(4), t0 + Duration::from_secs(20));
        assert_eq!(d.seen.len(), 1);
        assert_eq!(d.order.len(), 1);
        let mut off = Dedup::new(Duration::ZERO, 10);
        off.insert(id(1), t0);
        assert!(!off.contains(&id(1), t0));
    }

    #[test]
    fn image_map_is_bounded() {
        let loc = |c: &str| Location {
            node: Some("n1".into()),
            namespace: None,
            pod: None,
            container: Some(c.into()),
            container_id: None,
        };
        let mut m = ImageMap::new(2, 2);
        m.record("t", "a:1".into(), loc("x"), Timestamp(1));
        m.record("t", "a:1".into(), loc("y"), Timestamp(2));
        m.record("t", "a:1".into(), loc("z"), Timestamp(3));
        let r = m.running("t", "a:1");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].location.container.as_deref(), Some("z"));
        assert_eq!(r[1].location.container.as_deref(), Some("y"));
        m.record("t", "b:1".into(), loc("x"), Timestamp(4));
        m.record("u", "c:1".into(), loc("x"), Timestamp(5));
        assert!(
            m.running("t", "a:1").is_empty(),
            "least recent image evicted"
        );
        assert_eq!(m.list("t").len(), 1);
        assert_eq!(m.list("u")[0].image, "c:1");
    }
}
