//! The Kafka backend's disk spool: the storage on its own (always run), its settings, and
//! a real broker stopped and started again (needs `ARGUS_TEST_KAFKA` and the commands
//! `ARGUS_TEST_KAFKA_STOP` / `ARGUS_TEST_KAFKA_START`, as `deploy/test.sh` sets them):
//! publishes during the outage are spooled, a full spool refuses with backpressure, and
//! after the broker is back every acknowledged record is in Kafka once, in per-key order,
//! whether the same process or a restarted one drains the spool.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use argus_bus::config::{DEFAULT_SPOOL_MAX_BYTES, MIN_SPOOL_MAX_BYTES};
use argus_bus::spool::{RECORD_OVERHEAD_BYTES, Spool, record_bytes};
use argus_bus::{BusConfig, BusError, EventLog, KafkaConfig, OutRecord, SpoolConfig, TopicSpec};

fn rec(key: &str, value: impl Into<Vec<u8>>) -> (String, OutRecord) {
    ("t".to_string(), OutRecord::new(key, value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_keeps_order_headers_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = Spool::open(dir.path(), 1 << 20, Duration::from_secs(3)).unwrap();
    assert!(s.is_empty());
    let mut first = OutRecord::new("a", "v0");
    first.headers = vec![("h1".into(), b"x".to_vec()), ("empty".into(), Vec::new())];
    s.append(vec![("t1".into(), first.clone()), rec("b", "v1")])
        .await
        .unwrap();
    s.append(vec![rec("a", "v2")]).await.unwrap();
    assert_eq!(s.records(), 3);
    let want_bytes = record_bytes("t1", &first) + 2 * (1 + 1 + 2 + RECORD_OVERHEAD_BYTES);
    assert_eq!(s.bytes(), want_bytes);
    drop(s);

    let s = Spool::open(dir.path(), 1 << 20, Duration::from_secs(3)).unwrap();
    assert_eq!((s.records(), s.bytes()), (3, want_bytes));
    let chunk = s.read_chunk(1 << 20, 100).await.unwrap();
    let got: Vec<(&str, &[u8], &[u8])> = chunk
        .iter()
        .map(|r| (r.topic.as_str(), &r.record.key[..], &r.record.value[..]))
        .collect();
    assert_eq!(
        got,
        vec![
            ("t1", &b"a"[..], &b"v0"[..]),
            ("t", b"b", b"v1"),
            ("t", b"a", b"v2")
        ]
    );
    assert_eq!(chunk[0].record, first);
    assert!(chunk.windows(2).all(|w| w[0].seq < w[1].seq));

    // Removing the first two leaves the third at the head, across a reopen too.
    s.remove(chunk[..2].iter().map(|r| (r.seq, r.bytes)).collect())
        .await
        .unwrap();
    assert_eq!(s.records(), 1);
    drop(s);
    let s = Spool::open(dir.path(), 1 << 20, Duration::from_secs(3)).unwrap();
    let rest = s.read_chunk(1 << 20, 100).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].record.value, b"v2");
    s.remove(vec![(rest[0].seq, rest[0].bytes)]).await.unwrap();
    assert!(s.is_empty());
    assert_eq!(s.bytes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_refuses_whole_appends_with_backpressure() {
    let dir = tempfile::tempdir().unwrap();
    let one = record_bytes("t", &OutRecord::new("k", vec![b'x'; 100]));
    let max = one * 10;
    let s = Spool::open(dir.path(), max, Duration::from_secs(7)).unwrap();
    let batch = |n: usize| -> Vec<(String, OutRecord)> {
        (0..n).map(|_| rec("k", vec![b'x'; 100])).collect()
    };
    s.append(batch(4)).await.unwrap();
    s.append(batch(4)).await.unwrap();
    // 8 of 10 used: a batch of 3 does not fit and nothing of it is written.
    let err = s.append(batch(3)).await.unwrap_err();
    match &err {
        BusError::Backpressure {
            spooled_bytes,
            max_bytes,
            retry_after,
            ..
        } => {
            assert_eq!((*spooled_bytes, *max_bytes), (one * 8, max));
            assert_eq!(*retry_after, Duration::from_secs(7));
        }
        other => panic!("expected backpressure, got {other}"),
    }
    assert!(err.is_backpressure());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.to_string().contains("retry in 7s"), "{err}");
    assert_eq!(s.records(), 8);
    assert_eq!(s.bytes(), one * 8);
    // Exactly full is allowed.
    s.append(batch(2)).await.unwrap();
    assert_eq!(s.bytes(), max);
    assert!(s.append(batch(1)).await.unwrap_err().is_backpressure());
    // Draining makes room again.
    let chunk = s.read_chunk(u64::MAX, 3).await.unwrap();
    assert_eq!(chunk.len(), 3);
    s.remove(chunk.iter().map(|r| (r.seq, r.bytes)).collect())
        .await
        .unwrap();
    s.append(batch(3)).await.unwrap();
    assert_eq!(s.records(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_bounded_by_bytes_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = Spool::open(dir.path(), 1 << 30, Duration::from_secs(1)).unwrap();
    let recs: Vec<_> = (0..100)
        .map(|i| rec(&format!("k{i}"), vec![b'v'; 1000]))
        .collect();
    let each = record_bytes("t", &recs[0].1);
    s.append(recs).await.unwrap();
    assert_eq!(s.read_chunk(each * 5, 1000).await.unwrap().len(), 5);
    assert_eq!(
        s.read_chunk(each * 5 + each / 2, 1000).await.unwrap().len(),
        5
    );
    assert_eq!(s.read_chunk(u64::MAX, 7).await.unwrap().len(), 7);
    // A record larger than the byte bound still comes out, alone.
    let one = s.read_chunk(10, 1000).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].record.key, b"k0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_per_spool_folder() {
    let dir = tempfile::tempdir().unwrap();
    let a = Spool::open(dir.path(), 1 << 20, Duration::from_secs(1)).unwrap();
    let p = dir.path().to_path_buf();
    let second = tokio::task::spawn_blocking(move || {
        Spool::open(&p, 1 << 20, Duration::from_secs(1)).map(|_| ())
    })
    .await
    .unwrap();
    let err = second.unwrap_err().to_string();
    assert!(err.contains("in use"), "{err}");
    drop(a);
    Spool::open(dir.path(), 1 << 20, Duration::from_secs(1)).unwrap();
}

#[test]
fn spool_settings_defaults_validation_and_data_dir() {
    let cfg: BusConfig = serde_json::from_str(r#"{"kafka": {"brokers": ["k:9092"]}}"#).unwrap();
    let s = &cfg.kafka.as_ref().unwrap().spool;
    assert_eq!(s, &SpoolConfig::default());
    assert!(s.enabled && s.dir.as_os_str().is_empty() && !s.active());
    assert_eq!(s.max_bytes, DEFAULT_SPOOL_MAX_BYTES);
    assert_eq!(DEFAULT_SPOOL_MAX_BYTES, 1 << 30);

    let mut filled = cfg.clone();
    filled.fill_defaults(Path::new("/var/lib/argus"));
    assert_eq!(
        filled.kafka.as_ref().unwrap().spool.dir,
        Path::new("/var/lib/argus/spool")
    );
    assert_eq!(filled.embedded.dir, Path::new("/var/lib/argus/log"));
    assert!(filled.kafka.as_ref().unwrap().spool.active());

    let cfg: BusConfig = serde_json::from_str(
        r#"{"kafka": {"brokers": ["k:9092"], "spool": {"dir": "/s", "max_bytes": 1048576,
            "produce_timeout": "2s", "retry_after": "30s"}}}"#,
    )
    .unwrap();
    let s = &cfg.kafka.as_ref().unwrap().spool;
    assert_eq!(s.dir, Path::new("/s"));
    assert_eq!(s.max_bytes, 1 << 20);
    assert_eq!(s.produce_timeout, Duration::from_secs(2));
    assert_eq!(s.retry_after, Duration::from_secs(30));
    let mut kept = cfg.clone();
    kept.fill_defaults(Path::new("/d"));
    assert_eq!(kept.kafka.unwrap().spool.dir, Path::new("/s"));

    let off: BusConfig =
        serde_json::from_str(r#"{"kafka": {"brokers": ["k:9092"], "spool": {"enabled": false}}}"#)
            .unwrap();
    let mut off2 = off.clone();
    off2.fill_defaults(Path::new("/d"));
    assert!(off2.kafka.unwrap().spool.dir.as_os_str().is_empty());

    let unknown = serde_json::from_str::<BusConfig>(
        r#"{"kafka": {"brokers": ["k:9092"], "spool": {"max_byte": 5}}}"#,
    );
    assert!(unknown.unwrap_err().to_string().contains("max_byte"));

    let mut small = cfg.clone();
    small.kafka.as_mut().unwrap().spool.max_bytes = MIN_SPOOL_MAX_BYTES - 1;
    assert_eq!(small.validate().unwrap_err().0, "bus.kafka.spool.max_bytes");
    let mut quick = cfg.clone();
    quick.kafka.as_mut().unwrap().spool.produce_timeout = Duration::from_millis(10);
    assert_eq!(
        quick.validate().unwrap_err().0,
        "bus.kafka.spool.produce_timeout"
    );
    assert!(cfg.validate().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_log_has_no_spool() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&BusConfig::embedded_at(dir.path()))
        .await
        .unwrap();
    assert!(log.spool().is_none());
}

// ---- against a real broker ----

fn run(var: &str) {
    let cmd =
        std::env::var(var).unwrap_or_else(|_| panic!("{var} is needed to restart the broker"));
    let st = std::process::Command::new("bash")
        .arg("-c")
        .arg(&cmd)
        .status()
        .unwrap();
    assert!(st.success(), "{cmd} failed");
}

/// Starts the broker again when dropped, so a failing test does not leave it stopped.
struct Outage {
    up: bool,
}

impl Outage {
    fn begin() -> Outage {
        run("ARGUS_TEST_KAFKA_STOP");
        Outage { up: false }
    }
    fn end(&mut self) {
        if !self.up {
            run("ARGUS_TEST_KAFKA_START");
            self.up = true;
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if !self.up {
            run("ARGUS_TEST_KAFKA_START");
        }
    }
}

fn kafka_bus(addr: &str, dir: &Path, max_bytes: u64) -> BusConfig {
    BusConfig {
        kafka: Some(KafkaConfig {
            brokers: vec![addr.to_string()],
            client_id: "argus-spool-test".into(),
            partitions: 3,
            replication_factor: 1,
            retention: Duration::from_secs(3600),
            compression: "lz4".into(),
            properties: BTreeMap::new(),
            spool: SpoolConfig {
                enabled: true,
                dir: dir.to_path_buf(),
                max_bytes,
                produce_timeout: Duration::from_secs(1),
                retry_after: Duration::from_secs(7),
            },
        }),
        ..Default::default()
    }
}

async fn topic(log: &EventLog, name: &str) {
    log.ensure_topics(&[TopicSpec {
        name: name.to_string(),
        partitions: 3,
        retention: Duration::from_secs(3600),
        retention_bytes: None,
        compacted: false,
    }])
    .await
    .unwrap();
}

/// Numbered records over 7 keys; values `key#seq#padding`, seq counting per key.
struct Source {
    topic: String,
    next: HashMap<String, u32>,
    i: u32,
}

impl Source {
    fn new(topic: &str) -> Source {
        Source {
            topic: topic.to_string(),
            next: HashMap::new(),
            i: 0,
        }
    }
    fn batch(&mut self, n: u32) -> Vec<(String, OutRecord)> {
        (0..n)
            .map(|_| {
                let key = format!("k{}", self.i % 7);
                self.i += 1;
                let seq = self.next.entry(key.clone()).or_default();
                *seq += 1;
                let value = format!("{key}#{seq}#{}", "p".repeat(150));
                (self.topic.clone(), OutRecord::new(key, value))
            })
            .collect()
    }
}

async fn publish(log: &EventLog, recs: Vec<(String, OutRecord)>) -> argus_bus::Result<()> {
    let EventLog::Kafka(k) = log else {
        panic!("not the kafka backend")
    };
    k.publish(recs).await
}

async fn wait_drained(log: &EventLog, limit: Duration) {
    let spool = log.spool().unwrap();
    let deadline = tokio::time::Instant::now() + limit;
    while !spool.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "spool still holds {} records after {limit:?}",
            spool.records()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks that the topic holds each of `acked` exactly once, none of `refused`, and per
/// key in increasing sequence.
async fn check_topic(log: &EventLog, topic: &str, acked: &[String], refused: &[String]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for p in 0..log.partitions(topic).await.unwrap() {
        let (low, high) = log.watermarks(topic, p).await.unwrap();
        let mut recs: Vec<argus_bus::Record> = Vec::new();
        loop {
            let from = recs.last().map_or(low, |r| r.offset + 1);
            if from >= high {
                break;
            }
            let more = log.read(topic, p, from, 10_000).await.unwrap();
            assert!(!more.is_empty(), "partition {p} stops before {high}");
            recs.extend(more);
        }
        let mut last: HashMap<String, u32> = HashMap::new();
        for r in &recs {
            let v = String::from_utf8(r.value.clone()).unwrap();
            let mut parts = v.split('#');
            let (key, seq) = (parts.next().unwrap(), parts.next().unwrap());
            let seq: u32 = seq.parse().unwrap();
            assert_eq!(r.key, key.as_bytes());
            let prev = last.insert(key.to_string(), seq).unwrap_or(0);
            assert!(
                seq > prev,
                "{topic}/{p}: {key} seq {seq} after {prev} (out of order or duplicated)"
            );
            *seen.entry(v).or_default() += 1;
        }
    }
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "delivered more than once: {}", dup.len());
    let acked_set: HashSet<&String> = acked.iter().collect();
    let missing = acked.iter().filter(|a| !seen.contains_key(*a)).count();
    assert_eq!(
        missing, 0,
        "{missing} acknowledged records are not in {topic}"
    );
    let extra: Vec<_> = seen.keys().filter(|v| !acked_set.contains(v)).collect();
    assert!(
        extra.is_empty(),
        "{} records nobody acknowledged",
        extra.len()
    );
    assert!(refused.iter().all(|r| !seen.contains_key(r)));
}

fn values(recs: &[(String, OutRecord)]) -> Vec<String> {
    recs.iter()
        .map(|(_, r)| String::from_utf8(r.value.clone()).unwrap())
        .collect()
}

fn counter(c: &prometheus::IntCounterVec, topic: &str) -> u64 {
    c.with_label_values(&[topic]).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_spools_refuses_when_full_and_drains_after_restarts() {
    let Ok(addr) = std::env::var("ARGUS_TEST_KAFKA") else {
        assert!(
            std::env::var("ARGUS_REQUIRE_SERVICES").is_err(),
            "ARGUS_TEST_KAFKA is not set"
        );
        eprintln!("ARGUS_TEST_KAFKA not set: skipping");
        return;
    };
    use argus_bus::metrics::{DRAINED, SPOOL_REFUSED, SPOOLED};
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();

    // Phase 1: one process through an outage; a spool of 96 KiB (~430 records).
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&kafka_bus(&addr, dir.path(), 96 << 10))
        .await
        .unwrap();
    let t1 = format!("test.spool.{n}.live");
    topic(&log, &t1).await;
    let mut src = Source::new(&t1);
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let b = src.batch(20);
        publish(&log, b.clone()).await.unwrap();
        acked.extend(values(&b));
    }
    assert!(
        log.spool().unwrap().is_empty(),
        "spooled while the broker was up"
    );

    let mut outage = Outage::begin();
    // Envelopes through EventLog::publish take the same way: spooled, acknowledged.
    let env = argus_schemas::Envelope::new(
        "team-a",
        "spool-test",
        argus_schemas::Timestamp(1),
        argus_schemas::Payload::LogEntry(argus_schemas::LogEntry {
            labels: argus_schemas::Labels::from_pairs([("app", "spool")]),
            timestamp: argus_schemas::Timestamp(1),
            line: format!("spooled {n}"),
            structured_metadata: Default::default(),
        }),
    );
    log.publish(&[env]).await.unwrap();
    assert_eq!(log.spool().unwrap().records(), 1);
    let mut spooled_batches = 0;
    let full = loop {
        assert!(spooled_batches < 1000, "the spool never filled up");
        let b = src.batch(20);
        match publish(&log, b.clone()).await {
            Ok(()) => {
                acked.extend(values(&b));
                spooled_batches += 1;
            }
            Err(e) => {
                refused.extend(values(&b));
                break e;
            }
        }
    };
    let spool = log.spool().unwrap();
    match full {
        BusError::Backpressure {
            log_available,
            max_bytes,
            retry_after,
            ..
        } => {
            assert!(!log_available, "the broker is down");
            assert_eq!(max_bytes, 96 << 10);
            assert_eq!(retry_after, Duration::from_secs(7));
        }
        other => panic!("expected backpressure, got {other}"),
    }
    assert!(spooled_batches >= 10, "only {spooled_batches} batches fit");
    eprintln!("outage: {spooled_batches} batches spooled, then refused: {full}");
    assert_eq!(spool.records(), 1 + spooled_batches * 20);
    assert!(spool.bytes() <= 96 << 10);
    // A second refusal: the spool does not grow past its limit.
    let b = src.batch(20);
    assert!(
        publish(&log, b.clone())
            .await
            .unwrap_err()
            .is_backpressure()
    );
    refused.extend(values(&b));
    assert_eq!(spool.records(), 1 + spooled_batches * 20);

    outage.end();
    wait_drained(&log, Duration::from_secs(90)).await;
    assert!(spool.log_available());
    assert_eq!(spool.bytes(), 0);
    // Empty again: publishes go straight to Kafka, after the drained ones (the first
    // may still be spooled while the publish producer reconnects).
    let mut direct = 0;
    for _ in 0..10 {
        let b = src.batch(20);
        publish(&log, b.clone()).await.unwrap();
        acked.extend(values(&b));
        if spool.is_empty() {
            direct += 1;
            if direct == 3 {
                break;
            }
        } else {
            wait_drained(&log, Duration::from_secs(30)).await;
        }
    }
    assert_eq!(
        direct, 3,
        "publishes keep going to the spool with the broker up"
    );
    check_topic(&log, &t1, &acked, &refused).await;
    assert!(counter(&SPOOLED, &t1) >= spooled_batches * 20);
    assert_eq!(counter(&DRAINED, &t1), counter(&SPOOLED, &t1));
    assert_eq!(counter(&SPOOL_REFUSED, &t1), refused.len() as u64);
    log.close().await.unwrap();
    drop(log);

    // Phase 2: records spooled by a process that stops during the outage are drained
    // by the next process on the same folder.
    let dir2 = tempfile::tempdir().unwrap();
    let cfg = kafka_bus(&addr, dir2.path(), 1 << 20);
    let t2 = format!("test.spool.{n}.restart");
    let a = EventLog::open(&cfg).await.unwrap();
    topic(&a, &t2).await;
    let mut src = Source::new(&t2);
    let mut acked = Vec::new();
    let mut outage = Outage::begin();
    for _ in 0..10 {
        let b = src.batch(20);
        publish(&a, b.clone()).await.unwrap();
        acked.extend(values(&b));
    }
    assert_eq!(a.spool().unwrap().records(), 200);
    a.close().await.unwrap();
    drop(a);
    outage.end();

    let b = EventLog::open(&cfg).await.unwrap();
    wait_drained(&b, Duration::from_secs(90)).await;
    check_topic(&b, &t2, &acked, &[]).await;
    assert_eq!(counter(&SPOOLED, &t2), 200);
    assert_eq!(counter(&DRAINED, &t2), 200);
    b.close().await.unwrap();
}
