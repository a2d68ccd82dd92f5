//! The rule service on an embedded event log: metric samples in, alert transitions
//! out; `for` timers that survive a restart; no second `firing` after a restart;
//! recorded series and `ALERTS` published; LogQL rules over node events and security
//! findings (through the query crate's writer, embedded store and engine); alerts
//! posted to the Alertmanager API published to `argus.alerts`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use argus_bus::{BusConfig, EventLog};
use argus_rules::alert_store::{Alert as AmAlert, AlertStore, StaticRouting};
use argus_rules::config::RulesConfig;
use argus_rules::service::RulesService;
use argus_schemas::{
    AlertState, AlertTransition, Envelope, FindingKind, FindingSource, Labels, MetricSamples,
    NodeEvent, NodeEventSeverity, Payload, ProblemKind, Resource, Sample, SecurityFinding,
    Severity, Timestamp, topics,
};
use tokio::sync::watch;

async fn temp_log() -> (EventLog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&BusConfig::embedded_at(dir.path().join("log")))
        .await
        .unwrap();
    (log, dir)
}

fn config(dir: &std::path::Path, rules: &str) -> RulesConfig {
    let path = dir.join("rules.yml");
    std::fs::write(&path, rules).unwrap();
    RulesConfig {
        rule_files: vec![path.display().to_string()],
        evaluation_interval: Duration::from_secs(1),
        lookback_delta: Duration::from_secs(5),
        ..RulesConfig::default()
    }
}

/// Every record of a topic, decoded.
async fn read_all(log: &EventLog, topic: &str) -> Vec<Envelope> {
    let mut out = Vec::new();
    for p in 0..log.partitions(topic).await.unwrap() {
        let mut pos = 0;
        loop {
            let recs = log.read(topic, p, pos, 1000).await.unwrap();
            let Some(last) = recs.last() else { break };
            pos = last.offset + 1;
            out.extend(
                recs.iter()
                    .map(|r| argus_schemas::decode(&r.value).unwrap()),
            );
        }
    }
    out
}

async fn transitions(log: &EventLog) -> Vec<(String, AlertTransition)> {
    read_all(log, topics::ALERTS)
        .await
        .into_iter()
        .flat_map(|e| match e.payload {
            Payload::AlertTransition(t) => vec![(e.tenant, t)],
            // Alerts posted in one request: one record.
            Payload::AlertBatch(b) => b
                .alerts
                .into_iter()
                .map(|t| (e.tenant.clone(), t))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// Waits (at most `limit`) for a transition of alert `name` into `to`.
async fn wait_for(log: &EventLog, name: &str, to: AlertState, limit: Duration) -> AlertTransition {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((_, t)) = transitions(log)
            .await
            .into_iter()
            .find(|(_, t)| t.labels.get("alertname") == Some(name) && t.to == to)
        {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "no {to:?} transition of {name} within {limit:?}: {:?}",
            transitions(log).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes `load{host="a"} 5` every 200 ms until told to stop.
fn publish_load(log: EventLog, tenant: &'static str) -> watch::Sender<bool> {
    let (tx, mut rx) = watch::channel(false);
    tokio::spawn(async move {
        let labels = Labels::from_pairs([("__name__", "load"), ("host", "a")]);
        loop {
            let now = Timestamp::now();
            let env = Envelope::new(
                tenant,
                "test",
                now,
                Payload::MetricSamples(MetricSamples {
                    labels: labels.clone(),
                    samples: vec![Sample {
                        timestamp_ms: now.as_millis(),
                        value: 5.0,
                    }],
                }),
            );
            log.publish(&[env]).await.unwrap();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = rx.changed() => return,
            }
        }
    });
    tx
}

const LOAD_RULES: &str = r#"groups:
- name: node
  interval: 1s
  rules:
  - record: host:load:max
    expr: max by (host) (load)
  - alert: HighLoad
    expr: host:load:max > 1
    for: 3s
    labels: {severity: page}
    annotations: {summary: "load {{ $value }} on {{ $labels.host }}"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_timer_survives_a_restart_and_firing_is_not_repeated() {
    let (log, dir) = temp_log().await;
    let cfg = config(dir.path(), LOAD_RULES);
    let publisher = publish_load(log.clone(), "default");

    let svc = RulesService::start(log.clone(), None, cfg.clone(), None)
        .await
        .unwrap();
    let pending = wait_for(
        &log,
        "HighLoad",
        AlertState::Pending,
        Duration::from_secs(10),
    )
    .await;
    let active_at = pending.active_at.unwrap().as_millis();
    assert_eq!(pending.from, AlertState::Inactive);
    assert_eq!(pending.labels.get("severity"), Some("page"));
    assert_eq!(pending.labels.get("host"), Some("a"));
    assert_eq!(pending.annotations.get("summary"), Some("load 5 on a"));
    assert_eq!(pending.rule_group, "node");
    // Stop 1.5 s into the 3 s `for`.
    let stop_at = active_at + 1_500;
    let wait = (stop_at - Timestamp::now().as_millis()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    svc.stop().await;
    assert!(
        transitions(&log)
            .await
            .iter()
            .all(|(_, t)| t.to != AlertState::Firing),
        "fired before the restart"
    );

    // Restarted mid-pending: fires at the original activeAt + for, not 3 s after the
    // restart.
    let svc = RulesService::start(log.clone(), None, cfg.clone(), None)
        .await
        .unwrap();
    let firing = wait_for(
        &log,
        "HighLoad",
        AlertState::Firing,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(firing.from, AlertState::Pending);
    assert_eq!(firing.active_at.unwrap().as_millis(), active_at);
    let fired_at = firing.fired_at.unwrap().as_millis();
    assert!(
        (active_at + 3_000..active_at + 4_000).contains(&fired_at),
        "pending at {active_at}, fired at {fired_at}"
    );
    let all = transitions(&log).await;
    assert_eq!(
        all.iter()
            .filter(|(_, t)| t.to == AlertState::Pending)
            .count(),
        1,
        "the pending alert was published again: {all:?}"
    );
    // The API shows it firing.
    let groups = svc.prom_api().rules.groups("default");
    let rules = serde_json::to_value(&groups[0].rules).unwrap();
    assert_eq!(rules[1]["state"], "firing", "{rules}");
    svc.stop().await;

    // Restarted while firing: no new transition over several evaluations.
    let svc = RulesService::start(log.clone(), None, cfg.clone(), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let groups = svc.prom_api().rules.groups("default");
    let rules = serde_json::to_value(&groups[0].rules).unwrap();
    assert_eq!(rules[1]["state"], "firing", "{rules}");
    assert_eq!(
        rules[1]["alerts"][0]["activeAt"],
        argus_rules::group::rfc3339_ms(Some(active_at))
    );
    let after = transitions(&log).await;
    assert_eq!(
        after.len(),
        all.len(),
        "new transitions after the restart: {after:?}"
    );

    // The recorded series and ALERTS went to the metrics topic, tenant `default`.
    let metrics = read_all(&log, topics::METRICS).await;
    let names: std::collections::BTreeSet<String> = metrics
        .iter()
        .filter(|e| e.source == "rules")
        .filter_map(|e| match &e.payload {
            Payload::MetricSamples(m) => m.labels.get("__name__").map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(names.contains("host:load:max"), "{names:?}");
    assert!(names.contains("ALERTS"), "{names:?}");
    assert!(names.contains("ALERTS_FOR_STATE"), "{names:?}");
    let firing_series = metrics.iter().any(|e| match &e.payload {
        Payload::MetricSamples(m) => {
            m.labels.get("__name__") == Some("ALERTS")
                && m.labels.get("alertstate") == Some("firing")
        }
        _ => false,
    });
    assert!(firing_series);
    // And they are queryable through the window.
    let w = svc.windows().get("default").unwrap();
    let now = Timestamp::now().as_millis();
    let v = svc
        .prom_api()
        .engine
        .instant(&*w, "ALERTS{alertstate=\"firing\"}", now)
        .unwrap();
    assert!(format!("{v:?}").contains("HighLoad"), "{v:?}");

    // The series stops: the alert resolves once the lookback (5 s) has passed.
    publisher.send(true).unwrap();
    let resolved = wait_for(
        &log,
        "HighLoad",
        AlertState::Resolved,
        Duration::from_secs(12),
    )
    .await;
    assert_eq!(resolved.from, AlertState::Firing);
    assert_eq!(resolved.active_at.unwrap().as_millis(), active_at);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_evaluated_apart() {
    let (log, dir) = temp_log().await;
    let cfg = config(dir.path(), LOAD_RULES);
    let publisher = publish_load(log.clone(), "team-a");
    let svc = RulesService::start(log.clone(), None, cfg, None)
        .await
        .unwrap();
    wait_for(
        &log,
        "HighLoad",
        AlertState::Pending,
        Duration::from_secs(10),
    )
    .await;
    let all = transitions(&log).await;
    assert!(all.iter().all(|(tenant, _)| tenant == "team-a"), "{all:?}");
    // `default` has the rules but no data: no alerts, an empty API answer.
    let groups = svc.prom_api().rules.groups("default");
    let rules = serde_json::to_value(&groups[0].rules).unwrap();
    assert_eq!(rules[1]["state"], "inactive", "{rules}");
    publisher.send(true).unwrap();
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_is_refilled_from_the_log_at_start() {
    let (log, dir) = temp_log().await;
    let labels = Labels::from_pairs([("__name__", "temperature"), ("room", "lab")]);
    let now = Timestamp::now().as_millis();
    let env = Envelope::new(
        "default",
        "test",
        Timestamp::from_millis(now),
        Payload::MetricSamples(MetricSamples {
            labels: labels.clone(),
            samples: vec![
                Sample {
                    timestamp_ms: now - 2_000,
                    value: 20.5,
                },
                Sample {
                    timestamp_ms: now - 1_000,
                    value: 21.5,
                },
            ],
        }),
    );
    log.publish(&[env]).await.unwrap();
    let cfg = config(dir.path(), "groups: []\n");
    for _ in 0..2 {
        // The second start finds the group's committed offsets past the record and
        // still rebuilds the window from the log.
        let svc = RulesService::start(log.clone(), None, cfg.clone(), None)
            .await
            .unwrap();
        let w = svc.windows().get("default").expect("window replayed");
        let v = svc
            .prom_api()
            .engine
            .instant(&*w, "temperature", Timestamp::now().as_millis())
            .unwrap();
        assert!(format!("{v:?}").contains("21.5"), "{v:?}");
        assert_eq!(w.sample_count(), 2, "each sample once");
        tokio::time::sleep(Duration::from_millis(700)).await;
        svc.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rule_files_stop_the_start_and_reload_keeps_the_old_rules() {
    let (log, dir) = temp_log().await;
    let cfg = config(
        dir.path(),
        "groups:\n- name: x\n  rules:\n  - alert: A\n    expr: sum(\n",
    );
    let e = RulesService::start(log.clone(), None, cfg, None)
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("rules.yml:5:"), "{e}");

    let cfg = config(dir.path(), LOAD_RULES);
    let svc = RulesService::start(log.clone(), None, cfg.clone(), None)
        .await
        .unwrap();
    std::fs::write(&cfg.rule_files[0], "groups: [oops\n").unwrap();
    assert!(svc.reload().await.is_err());
    std::fs::write(
        &cfg.rule_files[0],
        "groups:\n- name: other\n  interval: 1s\n  rules:\n  - record: x\n    expr: vector(1)\n",
    )
    .unwrap();
    svc.reload().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let groups = svc.prom_api().rules.groups("default");
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["other"]);
    svc.stop().await;
}

fn node_event(node: &str, reason: &str) -> Envelope {
    Envelope::new(
        "default",
        "test",
        Timestamp::now(),
        Payload::NodeEvent(NodeEvent {
            node: node.into(),
            monitor: "kernel-monitor".into(),
            reason: reason.into(),
            message: "task docker:7 blocked for more than 120 seconds".into(),
            severity: NodeEventSeverity::Warn,
            kind: ProblemKind::Permanent,
            condition: None,
        }),
    )
}

fn finding(
    source: FindingSource,
    kind: FindingKind,
    severity: Severity,
    image: &str,
    id: &str,
) -> Envelope {
    Envelope::new(
        "default",
        "test",
        Timestamp::now(),
        Payload::SecurityFinding(SecurityFinding {
            source,
            kind,
            severity,
            resource: Resource {
                kind: if kind == FindingKind::Runtime {
                    "container"
                } else {
                    "image"
                }
                .into(),
                image: Some(image.into()),
                ..Resource::default()
            },
            id: id.into(),
            title: id.into(),
            package: None,
            installed_version: None,
            fixed_version: None,
        }),
    )
}

const LOG_RULES: &str = r#"groups:
- name: node-events
  type: logs
  interval: 1s
  rules:
  - alert: KernelDeadlock
    expr: sum by (node) (count_over_time({source="node-problem-detector", reason="KernelDeadlock"}[5m])) > 0
    labels: {severity: critical}
    annotations: {summary: "kernel deadlock on {{ $labels.node }}"}
- name: vulnerabilities
  type: logs
  interval: 1s
  rules:
  - alert: CriticalVulnerabilityInRunningImage
    expr: |
      sum by (image) (count_over_time({kind="vulnerability", severity="CRITICAL"}[1h]))
        and on (image)
      sum by (image) (count_over_time({source="falco"}[1h]))
    annotations: {summary: "{{ $labels.image }} runs with a CRITICAL vulnerability"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logql_rules_fire_on_node_events_and_findings() {
    let (log, dir) = temp_log().await;
    let store: Arc<dyn argus_query::store::LogStore> = Arc::new(
        argus_query::store::embedded::EmbeddedStore::open(dir.path().join("store"))
            .await
            .unwrap(),
    );
    let (stop_writer, rx) = watch::channel(false);
    let writer = tokio::spawn(argus_query::writer::run(
        log.clone(),
        store.clone(),
        argus_query::writer::WriterConfig {
            max_batch_wait: Duration::from_millis(50),
            ..Default::default()
        },
        rx,
    ));
    let engine = Arc::new(argus_query::engine::Engine::new(
        store,
        argus_query::engine::Limits::default(),
    ));
    log.publish(&[
        node_event("node-1", "KernelDeadlock"),
        node_event("node-2", "TaskHung"),
        finding(
            FindingSource::Trivy,
            FindingKind::Vulnerability,
            Severity::Critical,
            "nginx:1.25",
            "CVE-2024-0001",
        ),
        finding(
            FindingSource::Trivy,
            FindingKind::Vulnerability,
            Severity::Critical,
            "redis:7",
            "CVE-2024-0002",
        ),
        finding(
            FindingSource::Trivy,
            FindingKind::Vulnerability,
            Severity::Low,
            "postgres:16",
            "CVE-2024-0003",
        ),
        finding(
            FindingSource::Falco,
            FindingKind::Runtime,
            Severity::Medium,
            "nginx:1.25",
            "Terminal shell in container",
        ),
        finding(
            FindingSource::Falco,
            FindingKind::Runtime,
            Severity::Medium,
            "postgres:16",
            "Terminal shell in container",
        ),
    ])
    .await
    .unwrap();
    let cfg = config(dir.path(), LOG_RULES);
    let svc = RulesService::start(log.clone(), Some(engine), cfg, None)
        .await
        .unwrap();

    let t = wait_for(
        &log,
        "KernelDeadlock",
        AlertState::Firing,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(t.labels.get("node"), Some("node-1"));
    assert_eq!(
        t.annotations.get("summary"),
        Some("kernel deadlock on node-1")
    );
    assert_eq!(t.rule_group, "node-events");

    let t = wait_for(
        &log,
        "CriticalVulnerabilityInRunningImage",
        AlertState::Firing,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(t.labels.get("image"), Some("nginx:1.25"));
    // Give another evaluation a chance: redis is not running, postgres not critical.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let all = transitions(&log).await;
    let images: Vec<&str> = all
        .iter()
        .filter(|(_, t)| t.labels.get("alertname") == Some("CriticalVulnerabilityInRunningImage"))
        .filter_map(|(_, t)| t.labels.get("image"))
        .collect();
    assert!(images.iter().all(|i| *i == "nginx:1.25"), "{images:?}");
    let nodes: Vec<&str> = all
        .iter()
        .filter(|(_, t)| t.labels.get("alertname") == Some("KernelDeadlock"))
        .filter_map(|(_, t)| t.labels.get("node"))
        .collect();
    assert!(nodes.iter().all(|n| *n == "node-1"), "{nodes:?}");
    svc.stop().await;
    stop_writer.send(true).unwrap();
    writer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logql_rules_without_a_query_engine_report_errors() {
    let (log, dir) = temp_log().await;
    let cfg = config(dir.path(), LOG_RULES);
    let svc = RulesService::start(log.clone(), None, cfg, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let groups = svc.prom_api().rules.groups("default");
    let rules = serde_json::to_value(&groups[0].rules).unwrap();
    assert_eq!(rules[0]["health"], "err", "{rules}");
    assert!(
        rules[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("query service"),
        "{rules}"
    );
    svc.stop().await;
}

fn alert_store(log: &EventLog) -> Arc<AlertStore> {
    Arc::new(AlertStore::new(
        argus_rules::silences::SilenceService::new(log.clone(), Default::default()),
        argus_rules::inhibit::Inhibitor::default(),
        Arc::new(StaticRouting::default()),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_alerts_are_published_and_rule_alerts_reach_the_store() {
    let (log, dir) = temp_log().await;
    let cfg = config(dir.path(), LOAD_RULES);
    let store = alert_store(&log);
    let publisher = publish_load(log.clone(), "default");
    let svc = RulesService::start(log.clone(), None, cfg, Some(store.clone()))
        .await
        .unwrap();
    let sink = svc.alert_sink();
    let now = Timestamp::now();
    let posted = AmAlert {
        labels: Labels::from_pairs([("alertname", "FromPrometheus"), ("job", "x")]),
        annotations: Labels::from_pairs([("summary", "remote")]),
        starts_at: now,
        ends_at: Some(Timestamp(now.0 + 300_000_000_000)),
        updated_at: now,
        generator_url: "http://prometheus:9090/graph".into(),
        timeout: false,
    };
    sink.put(vec![posted.clone()]).await.unwrap();
    // Applied before `put` returned: a client reads its own write.
    let stored = store.get(posted.fingerprint()).expect("in the store");
    assert_eq!(stored.ends_at, posted.ends_at);
    let t = wait_for(
        &log,
        "FromPrometheus",
        AlertState::Firing,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(t.rule_group, "");
    assert_eq!(t.from, AlertState::Inactive);
    assert_eq!(t.resolved_at, posted.ends_at);
    // Posted again: a refresh, firing → firing.
    sink.put(vec![posted.clone()]).await.unwrap();
    let refreshes = transitions(&log)
        .await
        .into_iter()
        .filter(|(_, t)| {
            t.labels.get("alertname") == Some("FromPrometheus")
                && t.from == AlertState::Firing
                && t.to == AlertState::Firing
        })
        .count();
    assert_eq!(refreshes, 1);
    // Resolved by the sender.
    let resolved = AmAlert {
        ends_at: Some(Timestamp::now()),
        ..posted.clone()
    };
    sink.put(vec![resolved]).await.unwrap();
    assert!(
        store
            .get(posted.fingerprint())
            .unwrap()
            .resolved(Timestamp::now())
    );
    // Every request is one `alert_batch` record, its alerts in the order posted.
    let second = AmAlert {
        labels: Labels::from_pairs([("alertname", "FromPrometheus"), ("job", "y")]),
        ..posted.clone()
    };
    sink.put(vec![second.clone(), posted.clone()])
        .await
        .unwrap();
    let batches: Vec<_> = read_all(&log, topics::ALERTS)
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Payload::AlertBatch(b) => Some((e.source, b.alerts)),
            _ => None,
        })
        .collect();
    assert_eq!(batches.len(), 4, "{batches:?}");
    let (source, last) = batches.last().unwrap();
    assert_eq!(source, "alertmanager-api");
    let jobs: Vec<_> = last.iter().map(|t| t.labels.get("job").unwrap()).collect();
    assert_eq!(jobs, ["y", "x"]);
    assert_eq!(
        (last[0].from, last[1].from),
        (AlertState::Inactive, AlertState::Inactive),
        "x was resolved, so it fires anew"
    );
    // Both resolved by the sender, so the store rebuilt below holds neither firing.
    let gone = Some(Timestamp::now());
    sink.put(vec![
        AmAlert {
            ends_at: gone,
            ..second
        },
        AmAlert {
            ends_at: gone,
            ..posted.clone()
        },
    ])
    .await
    .unwrap();

    // The rule engine's firing alert reaches the store too.
    wait_for(
        &log,
        "HighLoad",
        AlertState::Firing,
        Duration::from_secs(10),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while !store
        .views()
        .iter()
        .any(|v| v.alert.labels.get("alertname") == Some("HighLoad"))
    {
        assert!(Instant::now() < deadline, "HighLoad not in the store");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.send(true).unwrap();
    svc.stop().await;

    // A new instance rebuilds the store from the log.
    let store2 = alert_store(&log);
    let cfg = config(dir.path(), LOAD_RULES);
    let svc = RulesService::start(log.clone(), None, cfg, Some(store2.clone()))
        .await
        .unwrap();
    let views = store2.views();
    assert!(
        views
            .iter()
            .any(|v| v.alert.labels.get("alertname") == Some("HighLoad"))
    );
    assert!(
        views
            .iter()
            .all(|v| v.alert.labels.get("alertname") != Some("FromPrometheus"))
    );
    svc.stop().await;
}
