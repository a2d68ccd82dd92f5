//! The event-log suite, run against the embedded log and against a real Kafka-protocol
//! broker (`ARGUS_TEST_KAFKA=host:port`, started by `deploy/start-kafka.sh`). Without
//! that variable the Kafka half is skipped, unless `ARGUS_REQUIRE_SERVICES=1` (as the
//! test command sets it), where a missing broker fails the run.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use argus_bus::{BusConfig, EventLog, KafkaConfig, OutRecord, Record, TopicSpec, TypedConsumer};
use argus_schemas::topics::{self, headers};

pub struct Harness {
    pub log: EventLog,
    pub tag: String,
    _dir: Option<tempfile::TempDir>,
}

fn unique(name: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{n}")
}

pub fn kafka_addr() -> Option<String> {
    match std::env::var("ARGUS_TEST_KAFKA") {
        Ok(a) if !a.is_empty() => Some(a),
        _ => {
            assert!(
                std::env::var("ARGUS_REQUIRE_SERVICES").is_err(),
                "ARGUS_REQUIRE_SERVICES is set but ARGUS_TEST_KAFKA is not"
            );
            eprintln!("ARGUS_TEST_KAFKA not set: skipping the Kafka backend");
            None
        }
    }
}

impl Harness {
    async fn embedded(name: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = BusConfig::default();
        cfg.embedded.dir = dir.path().to_path_buf();
        cfg.embedded.partitions = 3;
        Harness {
            log: EventLog::open(&cfg).await.unwrap(),
            tag: unique(name),
            _dir: Some(dir),
        }
    }

    async fn kafka(name: &str) -> Option<Harness> {
        let addr = kafka_addr()?;
        let cfg = BusConfig {
            kafka: Some(kafka_config(&addr)),
            ..Default::default()
        };
        Some(Harness {
            log: EventLog::open(&cfg).await.unwrap(),
            tag: unique(name),
            _dir: None,
        })
    }

    /// A fresh topic for this test.
    async fn topic(&self, suffix: &str, partitions: i32) -> String {
        let name = format!("test.{}.{suffix}", self.tag);
        self.log
            .ensure_topics(&[TopicSpec {
                name: name.clone(),
                partitions,
                retention: Duration::from_secs(3600),
                retention_bytes: None,
                compacted: false,
            }])
            .await
            .unwrap();
        name
    }
}

pub fn kafka_config(addr: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: vec![addr.to_string()],
        client_id: "argus-test".into(),
        partitions: 3,
        replication_factor: 1,
        retention: Duration::from_secs(3600),
        compression: "lz4".into(),
        properties: BTreeMap::new(),
        spool: Default::default(),
    }
}

async fn drain(c: &mut argus_bus::Consumer, want: usize, limit: Duration) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < want && tokio::time::Instant::now() < deadline {
        out.extend(c.poll(500, Duration::from_millis(500)).await.unwrap());
    }
    out
}

fn seq(r: &Record) -> (String, u32) {
    let v = String::from_utf8(r.value.clone()).unwrap();
    let (k, n) = v.split_once('#').unwrap();
    (k.to_string(), n.parse().unwrap())
}

async fn per_key_order_and_exactly_once(h: Harness) {
    let t = h.topic("order", 3).await;
    let mut batch = Vec::new();
    for i in 0..600u32 {
        let k = format!("key{}", i % 10);
        batch.push(OutRecord::new(k.clone(), format!("{k}#{i}")));
    }
    let pos = h.log.produce_batch(&t, batch).await.unwrap();
    assert_eq!(pos.len(), 600);
    // Same key, same partition.
    let mut part_of_key: HashMap<u32, i32> = HashMap::new();
    for (i, p) in pos.iter().enumerate() {
        let e = part_of_key.entry(i as u32 % 10).or_insert(p.partition);
        assert_eq!(*e, p.partition);
    }
    let mut c = h
        .log
        .consumer(&format!("g-{}", h.tag), &[&t])
        .await
        .unwrap();
    let got = drain(&mut c, 600, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 600, "every record once");
    let mut last: HashMap<String, u32> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for r in &got {
        let (k, n) = seq(r);
        assert!(seen.insert(n), "record {n} delivered twice");
        if let Some(prev) = last.insert(k.clone(), n) {
            assert!(prev < n, "{k}: {n} after {prev}");
        }
    }
    assert!(
        c.poll(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn resumes_from_committed_offsets(h: Harness) {
    let t = h.topic("resume", 1).await;
    let recs = (0..100u32)
        .map(|i| OutRecord::new("k", format!("k#{i}")))
        .collect();
    h.log.produce_batch(&t, recs).await.unwrap();
    let group = format!("g-{}", h.tag);
    {
        let mut c = h.log.consumer(&group, &[&t]).await.unwrap();
        let got = drain(&mut c, 100, Duration::from_secs(60)).await;
        assert_eq!(got.len(), 100);
        // The work for the first 40 is durable: commit them only.
        c.commit(&got[..40]).await.unwrap();
        assert_eq!(c.lag().await.unwrap(), 60);
    }
    let mut c = h.log.consumer(&group, &[&t]).await.unwrap();
    let got = drain(&mut c, 60, Duration::from_secs(60)).await;
    let nums: Vec<u32> = got.iter().map(|r| seq(r).1).collect();
    assert_eq!(
        nums,
        (40..100).collect::<Vec<_>>(),
        "resumes after the commit, redelivers the rest"
    );
    c.commit(&got).await.unwrap();
    drop(c);
    let mut c = h.log.consumer(&group, &[&t]).await.unwrap();
    assert!(
        c.poll(10, Duration::from_secs(3)).await.unwrap().is_empty(),
        "nothing after a full commit"
    );
}

async fn independent_groups(h: Harness) {
    let t = h.topic("groups", 2).await;
    let recs = (0..50u32)
        .map(|i| OutRecord::new(format!("k{i}"), format!("k#{i}")))
        .collect();
    h.log.produce_batch(&t, recs).await.unwrap();
    let mut a = h
        .log
        .consumer(&format!("a-{}", h.tag), &[&t])
        .await
        .unwrap();
    let got = drain(&mut a, 50, Duration::from_secs(60)).await;
    a.commit(&got).await.unwrap();
    let mut b = h
        .log
        .consumer(&format!("b-{}", h.tag), &[&t])
        .await
        .unwrap();
    assert_eq!(
        drain(&mut b, 50, Duration::from_secs(60)).await.len(),
        50,
        "another group reads from the start"
    );
}

async fn headers_and_read(h: Harness) {
    let t = h.topic("read", 1).await;
    let mut r = OutRecord::new("k", "v0");
    r.headers.push(("h1".into(), b"x\0y".to_vec()));
    h.log.produce(&t, r).await.unwrap();
    for i in 1..5 {
        h.log
            .produce(&t, OutRecord::new("k", format!("v{i}")))
            .await
            .unwrap();
    }
    let (low, high) = h.log.watermarks(&t, 0).await.unwrap();
    assert_eq!((low, high), (0, 5));
    let recs = h.log.read(&t, 0, 2, 10).await.unwrap();
    assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), [2, 3, 4]);
    let first = h.log.read(&t, 0, 0, 1).await.unwrap();
    assert_eq!(first[0].header("h1"), Some(&b"x\0y"[..]));
    assert_eq!(first[0].value, b"v0");
    assert_eq!(h.log.partitions(&t).await.unwrap(), 1);
}

async fn malformed_records_go_to_dead_letter(h: Harness) {
    h.log
        .ensure_topics(&BusConfig::default().topic_specs()[8..])
        .await
        .unwrap();
    let t = h.topic("dlq", 1).await;
    let good = |i: u32| {
        let env = argus_schemas::Envelope::new(
            "team-a",
            "test",
            argus_schemas::Timestamp(i as i64),
            argus_schemas::Payload::LogEntry(argus_schemas::LogEntry {
                labels: argus_schemas::Labels::from_pairs([("app", "x")]),
                timestamp: argus_schemas::Timestamp(i as i64),
                line: format!("line {i}"),
                structured_metadata: Default::default(),
            }),
        );
        OutRecord::new(env.key.clone(), argus_schemas::encode(&env))
    };
    let mut newer: serde_json::Value = serde_json::from_slice(&good(99).value).unwrap();
    newer["version"] = 2.into();
    let recs = vec![
        good(0),
        OutRecord::new("k", "{not json"),
        good(1),
        OutRecord::new("k", serde_json::to_vec(&newer).unwrap()),
        good(2),
    ];
    h.log.produce_batch(&t, recs).await.unwrap();
    let mut c = TypedConsumer::new(&h.log, &format!("g-{}", h.tag), &[&t])
        .await
        .unwrap();
    let mut events = Vec::new();
    let mut dead = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while events.len() + dead < 5 && tokio::time::Instant::now() < deadline {
        let b = c.poll(100, Duration::from_millis(500)).await.unwrap();
        dead += b.dead_lettered;
        c.commit(&b).await.unwrap();
        events.extend(b.events);
    }
    assert_eq!(dead, 2);
    // The first commit refreshed the lag gauge of the group: the series exists, at 0.
    let group = format!("g-{}", h.tag);
    let lag: Vec<f64> = prometheus::gather()
        .iter()
        .filter(|f| f.name() == "argus_bus_consumer_lag_records")
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "group" && l.value() == group)
        })
        .map(|m| m.get_gauge().value())
        .collect();
    assert_eq!(lag, [0.0], "lag gauge of {group}");
    let lines: Vec<String> = events
        .iter()
        .map(|e| match &e.envelope.payload {
            argus_schemas::Payload::LogEntry(l) => l.line.clone(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        lines,
        ["line 0", "line 1", "line 2"],
        "the consumer kept going past bad records"
    );
    // The dead-letter topic holds both, with where they came from and why.
    let mut found = Vec::new();
    for p in 0..h.log.partitions(topics::DEAD_LETTER).await.unwrap() {
        for r in h
            .log
            .read(topics::DEAD_LETTER, p, 0, 100_000)
            .await
            .unwrap()
        {
            if r.header(headers::SOURCE_TOPIC) == Some(t.as_bytes()) {
                found.push(r);
            }
        }
    }
    found.sort_by_key(|r| {
        String::from_utf8(r.header(headers::SOURCE_OFFSET).unwrap().to_vec()).unwrap()
    });
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].header(headers::SOURCE_OFFSET), Some(&b"1"[..]));
    assert_eq!(found[0].header(headers::REASON_CODE), Some(&b"json"[..]));
    assert_eq!(found[0].value, b"{not json");
    assert_eq!(
        found[1].header(headers::REASON_CODE),
        Some(&b"newer_version"[..])
    );
    let reason = String::from_utf8(found[1].header(headers::REASON).unwrap().to_vec()).unwrap();
    assert_eq!(
        reason,
        "log_entry version 2 is newer than this build reads (up to 1)"
    );
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Harness::embedded(stringify!($name)).await).await
                }
            )*
        }
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(h) = super::Harness::kafka(stringify!($name)).await {
                        super::$name(h).await
                    }
                }
            )*
        }
    };
}

suite!(
    per_key_order_and_exactly_once,
    resumes_from_committed_offsets,
    independent_groups,
    headers_and_read,
    malformed_records_go_to_dead_letter,
);
