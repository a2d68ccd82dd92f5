//! The log writer: record mapping (log entries, node events, findings) and exactly-once
//! storage across a crash between a store write and the bus commit.
//!
//! The crash test re-executes this test binary, filtered to `child_writer`, with
//! `ARGUS_TEST_WRITER_CHILD` describing the event log and store and
//! `ARGUS_FAILPOINT=query-writer-after-write`: the child writer aborts right after its
//! first store write. The parent then runs the writer again and checks that every
//! record is stored exactly once. It runs on the embedded store, and on ClickHouse 18.16
//! (`ARGUS_TEST_CLICKHOUSE_URL`) and the current engine
//! (`ARGUS_TEST_CLICKHOUSE_MODERN_URL`) when set (required with `ARGUS_REQUIRE_SERVICES`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use argus_bus::{BusConfig, Event, EventLog, OutRecord, TypedConsumer};
use argus_query::metrics::WRITER_SKIPPED;
use argus_query::store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use argus_query::store::embedded::EmbeddedStore;
use argus_query::store::plan::DAY_NS;
use argus_query::store::{LogStore, ScanRequest};
use argus_query::writer::{self, WriterConfig};
use argus_schemas::{
    ConditionStatus, Envelope, FindingKind, FindingSource, Labels, LogEntry, NodeCondition,
    NodeEvent, NodeEventSeverity, Payload, ProblemKind, Resource, SecurityFinding, Severity,
    Timestamp, topics,
};
use tokio::sync::watch;

const CHILD_ENV: &str = "ARGUS_TEST_WRITER_CHILD";
const T0: i64 = 1_700_000_000_000_000_000;

/// Serialises the crash tests: they read the process-wide skip counter.
static CRASH_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("ARGUS_REQUIRE_SERVICES").is_err(),
                "ARGUS_REQUIRE_SERVICES is set but {var} is not"
            );
            eprintln!("{var} not set: skipping this ClickHouse backend");
            None
        }
    }
}

fn unique_db(name: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("argus_test_{name}_{}_{n}", std::process::id())
}

fn bus_config(dir: &Path) -> BusConfig {
    let mut cfg = BusConfig::embedded_at(dir.join("log"));
    cfg.embedded.partitions = 2;
    cfg
}

/// Where the store lives: `embedded <path>` or `clickhouse <url> <database>`.
#[derive(Clone, Debug)]
enum StoreSpec {
    Embedded(String),
    ClickHouse(String, String),
}

impl StoreSpec {
    fn encode(&self) -> String {
        match self {
            StoreSpec::Embedded(p) => format!("embedded\t{p}"),
            StoreSpec::ClickHouse(u, d) => format!("clickhouse\t{u}\t{d}"),
        }
    }

    fn decode(s: &str) -> StoreSpec {
        let v: Vec<&str> = s.split('\t').collect();
        match v[0] {
            "embedded" => StoreSpec::Embedded(v[1].into()),
            _ => StoreSpec::ClickHouse(v[1].into(), v[2].into()),
        }
    }

    async fn open(&self) -> Arc<dyn LogStore> {
        match self {
            StoreSpec::Embedded(p) => Arc::new(EmbeddedStore::open(p).await.unwrap()),
            StoreSpec::ClickHouse(u, d) => {
                let s = ClickHouseStore::connect(ClickHouseConfig::new(u, d))
                    .await
                    .unwrap();
                s.ensure_schema().await.unwrap();
                Arc::new(s)
            }
        }
    }
}

fn test_writer_config() -> WriterConfig {
    WriterConfig {
        max_batch_wait: Duration::from_millis(300),
        ..Default::default()
    }
}

/// The re-executed child: runs the writer with the failpoint set until it aborts.
/// Does nothing unless `ARGUS_TEST_WRITER_CHILD` is set.
#[tokio::test]
async fn child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, store) = spec.split_once('\n').expect("dir\\nstore");
    let log = EventLog::open(&bus_config(Path::new(dir))).await.unwrap();
    let store = StoreSpec::decode(store).open().await;
    let (_tx, rx) = watch::channel(false);
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        writer::run(log, store, test_writer_config(), rx),
    )
    .await;
    panic!("the failpoint did not fire: {r:?}");
}

fn log_entry(tenant: &str, app: &str, ts: i64, line: String) -> Envelope {
    let payload = Payload::LogEntry(LogEntry {
        labels: Labels::from_pairs([("app", app), ("env", "test")]),
        timestamp: Timestamp(ts),
        line,
        structured_metadata: Labels::new(),
    });
    Envelope::new(tenant, "test", Timestamp(ts), payload)
}

fn node_event(i: usize) -> NodeEvent {
    NodeEvent {
        node: format!("node-{}", i % 3),
        monitor: "kernel-monitor".into(),
        reason: if i.is_multiple_of(2) {
            "TaskHung"
        } else {
            "KernelDeadlock"
        }
        .into(),
        message: format!("node event {i}: task blocked for more than 120 seconds"),
        severity: NodeEventSeverity::Warn,
        kind: if i.is_multiple_of(2) {
            ProblemKind::Temporary
        } else {
            ProblemKind::Permanent
        },
        condition: (i % 2 == 1).then(|| NodeCondition {
            condition_type: "KernelDeadlock".into(),
            status: ConditionStatus::True,
            transition: Timestamp(T0),
        }),
    }
}

fn finding(i: usize) -> SecurityFinding {
    SecurityFinding {
        source: FindingSource::Trivy,
        kind: FindingKind::Vulnerability,
        severity: if i.is_multiple_of(2) {
            Severity::Critical
        } else {
            Severity::Low
        },
        resource: Resource {
            kind: "image".into(),
            image: Some("nginx:1.25".into()),
            namespace: Some("web".into()),
            pod: Some(format!("nginx-{i}")),
            container: Some("nginx".into()),
            ..Default::default()
        },
        id: format!("CVE-2024-{i:04}"),
        title: format!("finding {i}"),
        package: Some("openssl".into()),
        installed_version: Some("3.0.1".into()),
        fixed_version: Some("3.0.9".into()),
    }
}

/// Every line of a tenant in the store, over the test's time range.
async fn stored_lines(store: &Arc<dyn LogStore>, tenant: &str) -> Vec<String> {
    let (start, end) = (T0 - DAY_NS, T0 + 3 * DAY_NS);
    let streams = store.streams(tenant, start, end).await.unwrap();
    let fps: Vec<u64> = streams.iter().map(|s| s.fingerprint).collect();
    let got = store
        .scan(&ScanRequest {
            tenant,
            streams: &fps,
            start,
            end,
            filters: &[],
            direction: Default::default(),
            after: None,
            limit: 1_000_000,
        })
        .await
        .unwrap();
    got.into_iter().map(|(_, e)| e.line).collect()
}

fn skipped_already_stored() -> u64 {
    [topics::LOGS, topics::NODE_EVENTS, topics::FINDINGS]
        .iter()
        .map(|t| {
            WRITER_SKIPPED
                .with_label_values(&[t, "already_stored"])
                .get()
        })
        .sum()
}

async fn crash_and_resume(name: &str, spec: StoreSpec, cleanup: Option<Arc<ClickHouseStore>>) {
    let _guard = CRASH_LOCK.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&bus_config(dir.path())).await.unwrap();
    // 120 log lines over two days and four streams (spread over both partitions),
    // 10 node events and 10 findings, and one record that does not decode.
    let mut events = Vec::new();
    let mut want_a = Vec::new();
    for i in 0..120i64 {
        let ts = T0 + (i / 60) * DAY_NS + i;
        let line = format!("{name} record {i:03}");
        want_a.push(line.clone());
        events.push(log_entry("team-a", &format!("app{}", i % 4), ts, line));
    }
    for i in 0..10 {
        let e = node_event(i);
        events.push(Envelope::new(
            "team-a",
            "npd",
            Timestamp(T0 + DAY_NS + i as i64),
            Payload::NodeEvent(e),
        ));
        let f = finding(i);
        events.push(Envelope::new(
            "team-a",
            "trivy",
            Timestamp(T0 + i as i64),
            Payload::SecurityFinding(f),
        ));
    }
    // Published one by one so that the days interleave within each partition.
    for e in &events {
        log.publish(std::slice::from_ref(e)).await.unwrap();
    }
    log.produce(topics::LOGS, OutRecord::new("bad", "not json"))
        .await
        .unwrap();
    log.close().await.unwrap();
    let total = events.len();

    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(
            CHILD_ENV,
            format!("{}\n{}", dir.path().display(), spec.encode()),
        )
        .env(writer::FAILPOINT_ENV, writer::FAILPOINT_AFTER_WRITE)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!child.success(), "the child must crash: {child:?}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.signal(), Some(6), "aborted (SIGABRT): {child:?}");
    }

    let store = spec.open().await;
    let before = stored_lines(&store, "team-a").await;
    assert!(
        !before.is_empty() && before.len() < total,
        "the child stored one write before crashing: {} of {total}",
        before.len()
    );

    // Restart without the failpoint: the stored records come again and are skipped.
    let skipped0 = skipped_already_stored();
    let log = EventLog::open(&bus_config(dir.path())).await.unwrap();
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(writer::run(
        log.clone(),
        store.clone(),
        test_writer_config(),
        rx,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = stored_lines(&store, "team-a").await.len();
        if n >= total || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give a wrong writer time to store duplicates, then stop it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    tx.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(
        skipped_already_stored() - skipped0,
        before.len() as u64,
        "every record stored before the crash was skipped once"
    );

    let got = stored_lines(&store, "team-a").await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for l in &got {
        *counts.entry(l.clone()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    for l in &want_a {
        assert_eq!(counts.get(l), Some(&1), "missing {l}");
    }
    assert_eq!(got.len(), total, "120 lines, 10 node events, 10 findings");
    let node_lines = got.iter().filter(|l| l.contains("\"monitor\"")).count();
    let finding_lines = got.iter().filter(|l| l.contains("CVE-2024-")).count();
    assert_eq!((node_lines, finding_lines), (10, 10));

    // Everything is committed: the group has nothing left to read.
    let topics = [topics::LOGS, topics::NODE_EVENTS, topics::FINDINGS];
    let mut c = TypedConsumer::new(&log, writer::GROUP, &topics)
        .await
        .unwrap();
    let rest = c.poll(100, Duration::from_millis(300)).await.unwrap();
    assert!(rest.offsets.is_empty(), "uncommitted: {:?}", rest.offsets);
    drop(c);
    log.close().await.unwrap();
    if let Some(ch) = cleanup {
        ch.drop_database().await.unwrap();
    }
}

#[tokio::test]
async fn crash_exactly_once_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3").display().to_string();
    crash_and_resume("embedded", StoreSpec::Embedded(path), None).await;
}

async fn crash_clickhouse(var: &str, name: &str) {
    let Some(url) = env_url(var) else { return };
    let db = unique_db(name);
    let ch = ClickHouseStore::connect(ClickHouseConfig::new(&url, &db))
        .await
        .unwrap();
    ch.ensure_schema().await.unwrap();
    crash_and_resume(name, StoreSpec::ClickHouse(url, db), Some(Arc::new(ch))).await;
}

#[tokio::test]
async fn crash_exactly_once_clickhouse_18() {
    crash_clickhouse("ARGUS_TEST_CLICKHOUSE_URL", "writer18").await;
}

#[tokio::test]
async fn crash_exactly_once_clickhouse_modern() {
    crash_clickhouse("ARGUS_TEST_CLICKHOUSE_MODERN_URL", "writer_modern").await;
}

fn event(topic: &str, offset: i64, envelope: Envelope) -> Event {
    Event {
        topic: topic.into(),
        partition: 1,
        offset,
        envelope,
    }
}

#[test]
fn node_event_mapping() {
    let env = Envelope::new(
        "team-b",
        "npd",
        Timestamp(T0 + 5),
        Payload::NodeEvent(node_event(1)),
    );
    let row = writer::to_row(&event(topics::NODE_EVENTS, 9, env)).unwrap();
    assert_eq!(row.tenant, "team-b");
    assert_eq!(row.ts, T0 + 5);
    assert_eq!(
        row.labels,
        Labels::from_pairs([
            ("source", "node-problem-detector"),
            ("node", "node-1"),
            ("monitor", "kernel-monitor"),
            ("reason", "KernelDeadlock"),
            ("severity", "warn"),
            ("kind", "permanent"),
            ("condition", "KernelDeadlock"),
        ])
    );
    let v: serde_json::Value = serde_json::from_str(&row.line).unwrap();
    assert_eq!(
        v["message"],
        "node event 1: task blocked for more than 120 seconds"
    );
    assert_eq!(v["condition"]["status"], "True");
    assert_eq!(
        (
            row.source.topic.as_str(),
            row.source.partition,
            row.source.offset
        ),
        (topics::NODE_EVENTS, 1, 9)
    );
    // Without a condition there is no condition label.
    let env = Envelope::new("t", "npd", Timestamp(T0), Payload::NodeEvent(node_event(0)));
    let row = writer::to_row(&event(topics::NODE_EVENTS, 1, env)).unwrap();
    assert_eq!(row.labels.get("condition"), None);
    assert_eq!(row.labels.get("kind"), Some("temporary"));
}

#[test]
fn finding_mapping() {
    let mut f = finding(0);
    f.resource.node = Some("node-7".into());
    let env = Envelope::new(
        "team-c",
        "trivy",
        Timestamp(T0 + 1),
        Payload::SecurityFinding(f.clone()),
    );
    let row = writer::to_row(&event(topics::FINDINGS, 3, env)).unwrap();
    assert_eq!(
        row.labels,
        Labels::from_pairs([
            ("source", "trivy"),
            ("kind", "vulnerability"),
            ("severity", "CRITICAL"),
            ("id", "CVE-2024-0000"),
            ("resource", "image"),
            ("image", "nginx:1.25"),
            ("namespace", "web"),
            ("pod", "nginx-0"),
            ("container", "nginx"),
            ("node", "node-7"),
            ("package", "openssl"),
        ])
    );
    assert_eq!(row.ts, T0 + 1);
    let back: SecurityFinding = serde_json::from_str(&row.line).unwrap();
    assert_eq!(back, f, "the line holds every field");
    // Absent resource fields give no label.
    let mut f = finding(1);
    f.resource = Resource {
        kind: "node".into(),
        node: Some("n1".into()),
        ..Default::default()
    };
    f.package = None;
    f.source = FindingSource::Falco;
    f.kind = FindingKind::Runtime;
    let env = Envelope::new("t", "falco", Timestamp(T0), Payload::SecurityFinding(f));
    let row = writer::to_row(&event(topics::FINDINGS, 4, env)).unwrap();
    let names: Vec<&str> = row.labels.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec!["id", "kind", "node", "resource", "severity", "source"]
    );
    assert_eq!(row.labels.get("source"), Some("falco"));
    assert_eq!(row.labels.get("severity"), Some("LOW"));
}

#[test]
fn log_entry_mapping_and_unsupported() {
    let mut env = log_entry("team-a", "api", T0 + 7, "hello".into());
    if let Payload::LogEntry(e) = &mut env.payload {
        e.structured_metadata = Labels::from_pairs([("trace_id", "t1")]);
    }
    // The entry's own timestamp counts, not the envelope's.
    env.event_time = Timestamp(T0);
    let row = writer::to_row(&event(topics::LOGS, 2, env)).unwrap();
    assert_eq!(row.ts, T0 + 7);
    assert_eq!(row.line, "hello");
    assert_eq!(row.labels.get("app"), Some("api"));
    assert_eq!(row.metadata, Labels::from_pairs([("trace_id", "t1")]));
    let audit = Envelope::new(
        "t",
        "api",
        Timestamp(T0),
        Payload::Audit(argus_schemas::AuditRecord {
            actor: "a".into(),
            action: "x".into(),
            resource: "r".into(),
            remote_addr: "127.0.0.1".into(),
            success: true,
            details: serde_json::Value::Null,
        }),
    );
    assert!(writer::to_row(&event(topics::LOGS, 3, audit)).is_none());
}

/// End to end on the embedded log and store: the streams are queryable by the labels
/// the mapping promises.
#[tokio::test]
async fn findings_and_node_events_are_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&bus_config(dir.path())).await.unwrap();
    let store: Arc<dyn LogStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("store")).await.unwrap());
    let mut events = Vec::new();
    for i in 0..4 {
        events.push(Envelope::new(
            "ops",
            "trivy",
            Timestamp(T0 + i as i64),
            Payload::SecurityFinding(finding(i)),
        ));
        events.push(Envelope::new(
            "ops",
            "npd",
            Timestamp(T0 + i as i64),
            Payload::NodeEvent(node_event(i)),
        ));
    }
    log.publish(&events).await.unwrap();
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(writer::run(
        log.clone(),
        store.clone(),
        test_writer_config(),
        rx,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stored_lines(&store, "ops").await.len() < 8 {
        assert!(tokio::time::Instant::now() < deadline, "not stored in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tx.send(true).unwrap();
    task.await.unwrap().unwrap();
    let streams = store
        .streams("ops", T0 - DAY_NS, T0 + DAY_NS)
        .await
        .unwrap();
    let critical: Vec<_> = streams
        .iter()
        .filter(|s| {
            s.labels.get("source") == Some("trivy") && s.labels.get("severity") == Some("CRITICAL")
        })
        .collect();
    assert_eq!(critical.len(), 2, "findings 0 and 2 are CRITICAL");
    let npd = streams
        .iter()
        .filter(|s| s.labels.get("source") == Some(writer::NODE_EVENT_SOURCE))
        .count();
    assert!(npd >= 2, "node event streams: {npd}");
    log.close().await.unwrap();
}
