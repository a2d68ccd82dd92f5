//! Helpers shared by the Alertmanager API tests (`am_*.rs`).
#![allow(dead_code)]

use std::sync::Arc;

use argus_bus::{BusConfig, EventLog};
use argus_rules::alert_store::{AlertStore, StaticRouting};
use argus_rules::am_api::{AlertmanagerConfig, AmApi, AmApiSettings};
use argus_rules::silences::{Clock, SilenceOptions, SilenceService};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

/// An embedded event log in a fresh temporary folder (kept alive by the returned guard).
pub async fn temp_log() -> (EventLog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&BusConfig::embedded_at(dir.path()))
        .await
        .unwrap();
    (log, dir)
}

pub fn silences(log: &EventLog, clock: Arc<dyn Clock>) -> SilenceService {
    SilenceService::new(
        log.clone(),
        SilenceOptions {
            clock,
            ..SilenceOptions::default()
        },
    )
}

/// The API over a fresh store, configured from YAML (the `alertmanager:` section).
pub fn api_with(silences: SilenceService, yaml: &str) -> (AmApi, Router) {
    let cfg: AlertmanagerConfig = serde_yaml_ng::from_str(yaml).unwrap();
    let inhibitor = cfg.validate().unwrap();
    let routing: Arc<StaticRouting> = Arc::new(cfg.route.clone());
    let store = Arc::new(AlertStore::new(silences, inhibitor, routing));
    let api = AmApi::new(store, AmApiSettings::from_config(&cfg));
    let router = api.router();
    (api, router)
}

/// One request; returns the status and the body.
pub async fn call(router: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

pub async fn call_json(
    router: &Router,
    method: &str,
    uri: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let (s, b) = call(router, method, uri, body).await;
    let v = if b.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"))
    };
    (s, v)
}
