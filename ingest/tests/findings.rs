//! The Falco, Trivy and Clair receivers against an embedded event log: normalisation,
//! re-report suppression, the running-images map and refusals.

use argus_bus::EventLog;
use argus_ingest::findings::{FindingsConfig, router, router_with};
use argus_ingest::metrics::{FINDINGS_DUPLICATES, REJECTED};
use argus_schemas::{
    Envelope, FindingKind, FindingSource, Payload, Resource, SecurityFinding, Severity, Timestamp,
    topics,
};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

const FALCO_SHELL: &str = include_str!("fixtures/findings/falco_terminal_shell.json");
const FALCO_STREAM: &str = include_str!("fixtures/findings/falco_stream.ndjson");
const TRIVY: &str = include_str!("fixtures/findings/trivy_nginx.json");
const TRIVY_OPERATOR: &str =
    include_str!("fixtures/findings/trivy_operator_vulnerabilityreport.json");
const CLAIR: &str = include_str!("fixtures/findings/clair_report.json");
const NGINX_DIGEST: &str =
    "sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac";

mod common;

async fn log() -> (EventLog, tempfile::TempDir) {
    common::temp_log().await
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn post(app: &Router, uri: &str, body: &str) -> (StatusCode, String) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .header("x-scope-orgid", "team-sec")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

async fn get(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::get(uri)
        .header("x-scope-orgid", "team-sec")
        .body(Body::empty())
        .unwrap();
    let (status, text) = send(app, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    (status, serde_json::from_str(&text).unwrap())
}

async fn findings(log: &EventLog) -> Vec<Envelope> {
    log.read(topics::FINDINGS, 0, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let e = argus_schemas::decode(&r.value).unwrap();
            assert_eq!(r.key, e.key.as_bytes(), "record key");
            e
        })
        .collect()
}

fn finding(e: &Envelope) -> &SecurityFinding {
    let Payload::SecurityFinding(f) = &e.payload else {
        panic!("not a security finding: {e:?}")
    };
    f
}

fn image_resource(image: &str, digest: &str) -> Resource {
    Resource {
        kind: "image".into(),
        image: Some(image.into()),
        image_digest: Some(digest.into()),
        ..Default::default()
    }
}

fn assert_envelope(e: &Envelope, source: &str) {
    assert_eq!(e.tenant, "team-sec");
    assert_eq!(e.source, source);
    assert_eq!(
        e.key,
        e.payload.default_key(&e.tenant),
        "key is the default key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falco_alert_is_normalised_deduplicated_and_mapped() {
    let (log, _d) = log().await;
    let app = router(log.clone());
    let (status, text) = post(&app, "/api/v1/findings/falco", FALCO_SHELL).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let got = findings(&log).await;
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_envelope(e, "falco");
    assert_eq!(e.event_time, Timestamp(1_715_677_965_123_456_789));
    assert_eq!(
        *finding(e),
        SecurityFinding {
            source: FindingSource::Falco,
            kind: FindingKind::Runtime,
            severity: Severity::Low,
            resource: Resource {
                kind: "container".into(),
                image: Some("docker.io/library/nginx:1.25.3".into()),
                image_digest: None,
                container: Some("nginx".into()),
                pod: Some("nginx-7d9c5b8f6-x2k4p".into()),
                namespace: Some("web".into()),
                node: Some("worker-2".into()),
            },
            id: "Terminal shell in container".into(),
            title: "Terminal shell in container".into(),
            package: None,
            installed_version: None,
            fixed_version: None,
        }
    );

    // The same alert delivered again (a retry) is not re-published.
    let dups = FINDINGS_DUPLICATES.with_label_values(&["falco"]).get();
    let (status, _) = post(&app, "/api/v1/findings/falco", FALCO_SHELL).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(findings(&log).await.len(), 1);
    assert!(FINDINGS_DUPLICATES.with_label_values(&["falco"]).get() > dups);

    // NDJSON: another pod of the same image, and a host process.
    let (status, text) = post(&app, "/api/v1/findings/falco", FALCO_STREAM).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let got = findings(&log).await;
    assert_eq!(got.len(), 3);
    let shadow = finding(&got[1]);
    assert_eq!(shadow.severity, Severity::Critical);
    assert_eq!(shadow.id, "Read sensitive file untrusted");
    assert_eq!(shadow.resource.node.as_deref(), Some("worker-3"));
    let host = finding(&got[2]);
    assert_eq!(host.severity, Severity::Medium);
    assert_eq!(
        host.resource,
        Resource {
            kind: "node".into(),
            node: Some("worker-3".into()),
            ..Default::default()
        }
    );
    assert_eq!(got[2].event_time, Timestamp(1_715_678_470_500_000_000));

    // Where nginx:1.25.3 runs, newest first; by query parameter or encoded path segment.
    let (_, running) = get(
        &app,
        "/api/v1/findings/images/running?image=docker.io/library/nginx:1.25.3",
    )
    .await;
    assert_eq!(
        running,
        serde_json::json!([
            {"node": "worker-3", "namespace": "web", "pod": "nginx-7d9c5b8f6-q8m2w",
             "container": "nginx", "container_id": "9ab8c7d6e5f4",
             "last_seen": 1_715_678_401_000_000_001i64},
            {"node": "worker-2", "namespace": "web", "pod": "nginx-7d9c5b8f6-x2k4p",
             "container": "nginx", "container_id": "3f6c1a2b9d0e",
             "last_seen": 1_715_677_965_123_456_789i64},
        ])
    );
    let (_, by_path) = get(
        &app,
        "/api/v1/findings/images/docker.io%2Flibrary%2Fnginx%3A1.25.3/running",
    )
    .await;
    assert_eq!(by_path, running);
    let (_, images) = get(&app, "/api/v1/findings/images").await;
    assert_eq!(
        images,
        serde_json::json!([{"image": "docker.io/library/nginx:1.25.3", "containers": 2,
                            "nodes": 2, "last_seen": 1_715_678_401_000_000_001i64}])
    );
    let (_, unknown) = get(&app, "/api/v1/findings/images/running?image=redis:7").await;
    assert_eq!(unknown, serde_json::json!([]));
    // Another tenant sees nothing.
    let req = Request::get("/api/v1/findings/images")
        .header("x-scope-orgid", "team-other")
        .body(Body::empty())
        .unwrap();
    let (_, text) = send(&app, req).await;
    assert_eq!(text, "[]");
    // The image parameter is required.
    let req = Request::get("/api/v1/findings/images/running")
        .body(Body::empty())
        .unwrap();
    let (status, text) = send(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("image parameter is required"), "{text}");
}

fn trivy_expected() -> Vec<SecurityFinding> {
    let res = image_resource("docker.io/library/nginx:1.25.3", NGINX_DIGEST);
    let f = |kind, severity, id: &str, title: &str| SecurityFinding {
        source: FindingSource::Trivy,
        kind,
        severity,
        resource: res.clone(),
        id: id.into(),
        title: title.into(),
        package: None,
        installed_version: None,
        fixed_version: None,
    };
    vec![
        SecurityFinding {
            package: Some("libexpat1".into()),
            installed_version: Some("2.5.0-1".into()),
            fixed_version: Some("2.5.0-1+deb12u1".into()),
            ..f(
                FindingKind::Vulnerability,
                Severity::Critical,
                "CVE-2024-45492",
                "libexpat: integer overflow",
            )
        },
        SecurityFinding {
            package: Some("apt".into()),
            installed_version: Some("2.6.1".into()),
            ..f(
                FindingKind::Vulnerability,
                Severity::Low,
                "CVE-2011-3374",
                "CVE-2011-3374",
            )
        },
        SecurityFinding {
            package: Some("Dockerfile".into()),
            ..f(
                FindingKind::Misconfiguration,
                Severity::High,
                "DS002",
                "Image user should not be 'root'",
            )
        },
        SecurityFinding {
            package: Some("/usr/share/nginx/html/.env".into()),
            ..f(
                FindingKind::Secret,
                Severity::Critical,
                "aws-access-key-id",
                "AWS Access Key ID",
            )
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trivy_report_is_normalised_and_deduplicated() {
    let (log, _d) = log().await;
    let app = router(log.clone());
    let (status, text) = post(&app, "/api/v1/findings/trivy", TRIVY).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let got = findings(&log).await;
    for e in &got {
        assert_envelope(e, "trivy");
        assert_eq!(e.event_time, Timestamp(1_725_956_130_123_456_789));
    }
    let got_findings: Vec<SecurityFinding> = got.iter().map(|e| finding(e).clone()).collect();
    assert_eq!(
        got_findings,
        trivy_expected(),
        "PASS misconfiguration skipped"
    );

    // Identical re-report: nothing new.
    let dups = FINDINGS_DUPLICATES.with_label_values(&["trivy"]).get();
    let (status, _) = post(&app, "/api/v1/findings/trivy", TRIVY).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(findings(&log).await.len(), 4);
    assert!(FINDINGS_DUPLICATES.with_label_values(&["trivy"]).get() >= dups + 4);

    // A fix appearing for apt is news: only that finding is re-published, same key.
    let mut doc: serde_json::Value = serde_json::from_str(TRIVY).unwrap();
    doc["Results"][0]["Vulnerabilities"][1]["FixedVersion"] = "2.6.1+deb12u1".into();
    let (status, _) = post(&app, "/api/v1/findings/trivy", &doc.to_string()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = findings(&log).await;
    assert_eq!(got.len(), 5);
    assert_eq!(finding(&got[4]).id, "CVE-2011-3374");
    assert_eq!(
        finding(&got[4]).fixed_version.as_deref(),
        Some("2.6.1+deb12u1")
    );
    assert_eq!(got[4].key, got[1].key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trivy_operator_vulnerability_report() {
    let (log, _d) = log().await;
    let app = router(log.clone());
    let (status, text) = post(&app, "/api/v1/findings/trivy", TRIVY_OPERATOR).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let got = findings(&log).await;
    assert_eq!(got.len(), 1);
    assert_envelope(&got[0], "trivy");
    assert_eq!(got[0].event_time, Timestamp(1_725_956_400_000_000_000));
    assert_eq!(
        *finding(&got[0]),
        SecurityFinding {
            source: FindingSource::Trivy,
            kind: FindingKind::Vulnerability,
            severity: Severity::Critical,
            resource: image_resource("docker.io/library/nginx:1.25.3", NGINX_DIGEST),
            id: "CVE-2024-45492".into(),
            title: "libexpat: integer overflow".into(),
            package: Some("libexpat1".into()),
            installed_version: Some("2.5.0-1".into()),
            fixed_version: Some("2.5.0-1+deb12u1".into()),
        }
    );
    let mut doc: serde_json::Value = serde_json::from_str(TRIVY_OPERATOR).unwrap();
    doc["report"]["vulnerabilities"][0]["severity"] = "BAD".into();
    let (status, text) = post(&app, "/api/v1/findings/trivy", &doc.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("report.vulnerabilities[0]: Severity \"BAD\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_window_zero_republishes() {
    let (log, _d) = log().await;
    let cfg = FindingsConfig {
        dedup_window: std::time::Duration::ZERO,
        ..Default::default()
    };
    let app = router_with(log.clone(), &cfg);
    for _ in 0..2 {
        let (status, text) = post(&app, "/api/v1/findings/trivy", TRIVY).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    }
    assert_eq!(findings(&log).await.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clair_report_is_normalised() {
    let (log, _d) = log().await;
    let app = router(log.clone());
    let (status, text) = post(
        &app,
        "/api/v1/findings/clair?image=registry.example.com/web/nginx:1.25.3",
        CLAIR,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let got = findings(&log).await;
    for e in &got {
        assert_envelope(e, "clair");
    }
    let res = image_resource("registry.example.com/web/nginx:1.25.3", NGINX_DIGEST);
    let f = |severity, id: &str, title: &str, pkg: &str, ver: &str, fix: Option<&str>| {
        SecurityFinding {
            source: FindingSource::Clair,
            kind: FindingKind::Vulnerability,
            severity,
            resource: res.clone(),
            id: id.into(),
            title: title.into(),
            package: Some(pkg.into()),
            installed_version: Some(ver.into()),
            fixed_version: fix.map(Into::into),
        }
    };
    let got_findings: Vec<SecurityFinding> = got.iter().map(|e| finding(e).clone()).collect();
    assert_eq!(
        got_findings,
        vec![
            f(
                Severity::Medium,
                "CVE-2023-5678",
                "Issue summary: Generating excessively long X9.42 DH keys or checking",
                "openssl",
                "3.0.11-1~deb12u2",
                Some("3.0.13-1~deb12u1")
            ),
            f(
                Severity::Low,
                "CVE-2024-0727",
                "Issue summary: Processing a maliciously formatted PKCS12 file may lead OpenSSL",
                "openssl",
                "3.0.11-1~deb12u2",
                Some("3.0.13-1~deb12u1")
            ),
            f(
                Severity::Critical,
                "CVE-2023-45853",
                "MiniZip in zlib through 1.3 has an integer overflow and resultant heap-based \
                 buffer overflow in zipOpenNewFileInZip4_64 via a long filename, comment, or \
                 extra field.",
                "zlib1g",
                "1:1.2.13.dfsg-1",
                None
            ),
        ]
    );

    // Without ?image= the digest stands in for the image; a new key, so published.
    let (status, _) = post(&app, "/api/v1/findings/clair", CLAIR).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = findings(&log).await;
    assert_eq!(got.len(), 6);
    assert_eq!(
        finding(&got[3]).resource,
        image_resource(NGINX_DIGEST, NGINX_DIGEST)
    );
    // And again: all duplicates.
    let (status, _) = post(&app, "/api/v1/findings/clair", CLAIR).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(findings(&log).await.len(), 6);
}

async fn assert_refused(
    app: &Router,
    uri: &str,
    body: &str,
    collector: &str,
    reason: &str,
    needles: &[&str],
) {
    let before = REJECTED.with_label_values(&[collector, reason]).get();
    let (status, text) = post(app, uri, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {text}");
    for n in needles {
        assert!(text.contains(n), "{uri}: {n:?} not in {text:?}");
    }
    assert!(
        REJECTED.with_label_values(&[collector, reason]).get() > before,
        "{collector}/{reason} counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_documents_are_refused_whole() {
    let (log, _d) = log().await;
    let app = router(log.clone());
    let trivy = "/api/v1/findings/trivy";
    let falco = "/api/v1/findings/falco";
    let clair = "/api/v1/findings/clair";

    assert_refused(
        &app,
        trivy,
        "{not json",
        "trivy",
        "json",
        &["not a Trivy JSON report"],
    )
    .await;
    let mut doc: serde_json::Value = serde_json::from_str(TRIVY).unwrap();
    doc["Results"][0]["Vulnerabilities"][1]
        .as_object_mut()
        .unwrap()
        .remove("VulnerabilityID");
    doc["Results"][1]["Misconfigurations"][0]["Severity"] = "SEVERE".into();
    assert_refused(
        &app,
        trivy,
        &doc.to_string(),
        "trivy",
        "invalid",
        &[
            "2 problems in the Trivy report; nothing was written",
            "Results[0].Vulnerabilities[1]: missing VulnerabilityID",
            "Results[1].Misconfigurations[0]: Severity \"SEVERE\"",
        ],
    )
    .await;
    assert_refused(
        &app,
        trivy,
        r#"{"SchemaVersion": 2, "ArtifactName": "/src", "ArtifactType": "filesystem"}"#,
        "trivy",
        "invalid",
        &["ArtifactType \"filesystem\""],
    )
    .await;
    // A Clair report posted to the Trivy endpoint.
    assert_refused(
        &app,
        trivy,
        CLAIR,
        "trivy",
        "invalid",
        &["missing SchemaVersion", "missing ArtifactName"],
    )
    .await;

    let stream = format!(
        "{}\n{}\n",
        FALCO_SHELL.trim(),
        r#"{"priority":"Loud","time":"2024-05-14T09:12:45Z","output_fields":{}}"#
    );
    assert_refused(
        &app,
        falco,
        &stream,
        "falco",
        "invalid",
        &["alert 1: missing rule"],
    )
    .await;
    let bad = r#"{"rule":"x","priority":"Loud","time":"2024-05-14T09:12:45Z"}"#;
    assert_refused(
        &app,
        falco,
        bad,
        "falco",
        "invalid",
        &["alert 0: priority \"Loud\""],
    )
    .await;
    let bad = r#"{"rule":"x","priority":"Error","time":"yesterday"}"#;
    assert_refused(&app, falco, bad, "falco", "invalid", &["alert 0: time"]).await;
    assert_refused(
        &app,
        falco,
        "[1]",
        "falco",
        "invalid",
        &["alert 0: not a JSON object"],
    )
    .await;
    assert_refused(&app, falco, "", "falco", "json", &["no Falco alert"]).await;
    assert_refused(
        &app,
        falco,
        &format!("{}\n{{\"rule\":", FALCO_SHELL.trim()),
        "falco",
        "json",
        &["alert 1: not Falco JSON output"],
    )
    .await;

    let mut doc: serde_json::Value = serde_json::from_str(CLAIR).unwrap();
    doc["package_vulnerabilities"]["20"] = serde_json::json!(["402113", "999"]);
    assert_refused(
        &app,
        clair,
        &doc.to_string(),
        "clair",
        "invalid",
        &["package_vulnerabilities[\"20\"][1]: vulnerability \"999\" is not in vulnerabilities"],
    )
    .await;
    assert_refused(
        &app,
        clair,
        TRIVY,
        "clair",
        "invalid",
        &["missing manifest_hash"],
    )
    .await;
    assert_refused(&app, clair, "[]", "clair", "json", &["not a Clair v4"]).await;
    assert_refused(
        &app,
        &format!("{clair}?image="),
        CLAIR,
        "clair",
        "query",
        &["image parameter is empty"],
    )
    .await;

    // A bad tenant is refused before the body is read.
    let req = Request::post(trivy)
        .header("x-scope-orgid", "bad tenant")
        .body(Body::from(TRIVY))
        .unwrap();
    let (status, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert!(findings(&log).await.is_empty(), "nothing was written");
}
