//! A real broker restarted mid-stream: nothing acknowledged is lost, and nothing is
//! delivered twice past the group's commit. Needs `ARGUS_TEST_KAFKA` and the commands
//! `ARGUS_TEST_KAFKA_STOP` / `ARGUS_TEST_KAFKA_START` (set by `deploy/test.sh`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use argus_bus::{BusConfig, EventLog, OutRecord, TopicSpec};

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

fn consume(
    recs: Vec<argus_bus::Record>,
    committed: &HashMap<i32, i64>,
    delivered: &mut HashMap<u32, usize>,
    violations: &mut Vec<(i32, i64)>,
) -> Vec<argus_bus::Record> {
    for r in &recs {
        if r.offset < *committed.get(&r.partition).unwrap_or(&0) {
            violations.push((r.partition, r.offset));
        }
        let v: u32 = std::str::from_utf8(&r.value).unwrap().parse().unwrap();
        *delivered.entry(v).or_default() += 1;
    }
    recs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream() {
    let Ok(addr) = std::env::var("ARGUS_TEST_KAFKA") else {
        assert!(
            std::env::var("ARGUS_REQUIRE_SERVICES").is_err(),
            "ARGUS_TEST_KAFKA is not set"
        );
        eprintln!("ARGUS_TEST_KAFKA not set: skipping");
        return;
    };
    let mut kc = argus_bus::KafkaConfig {
        brokers: vec![addr],
        client_id: "argus-restart-test".into(),
        partitions: 2,
        replication_factor: 1,
        retention: Duration::from_secs(3600),
        compression: "lz4".into(),
        properties: Default::default(),
        spool: Default::default(),
    };
    kc.properties
        .insert("message.timeout.ms".into(), "120000".into());
    let cfg = BusConfig {
        kafka: Some(kc),
        ..Default::default()
    };
    let log = EventLog::open(&cfg).await.unwrap();
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("test.restart.{n}");
    log.ensure_topics(&[TopicSpec {
        name: topic.clone(),
        partitions: 2,
        retention: Duration::from_secs(3600),
        retention_bytes: None,
        compacted: false,
    }])
    .await
    .unwrap();

    // Producer: numbered records, 20 per batch; remembers what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (log, topic, stop) = (log.clone(), topic.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = HashSet::new();
            let mut failed = 0u32;
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<OutRecord> = (i..i + 20)
                    .map(|j| OutRecord::new(format!("k{}", j % 7), j.to_string()))
                    .collect();
                match log.produce_batch(&topic, batch).await {
                    Ok(_) => acked.extend(i..i + 20),
                    Err(e) => {
                        failed += 1;
                        eprintln!("produce failed (not acknowledged): {e}");
                    }
                }
                i += 20;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (acked, failed)
        })
    };

    let group = format!("g-restart-{n}");
    let mut consumer = log.consumer(&group, &[&topic]).await.unwrap();
    let mut delivered: HashMap<u32, usize> = HashMap::new();
    let mut committed: HashMap<i32, i64> = HashMap::new();
    let mut violations = Vec::new();
    let mut restarted = false;
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(40) {
        if !restarted && start.elapsed() > Duration::from_secs(8) {
            run("ARGUS_TEST_KAFKA_STOP");
            tokio::time::sleep(Duration::from_secs(4)).await;
            run("ARGUS_TEST_KAFKA_START");
            restarted = true;
        }
        let recs = match consumer.poll(500, Duration::from_millis(300)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("poll error (retrying): {e}");
                continue;
            }
        };
        let recs = consume(recs, &committed, &mut delivered, &mut violations);
        if recs.is_empty() {
            continue;
        }
        match consumer.commit(&recs).await {
            Ok(()) => {
                for (_, p, o) in argus_bus::next_offsets(
                    recs.iter()
                        .map(|r| (r.topic.as_str(), r.partition, r.offset)),
                ) {
                    committed.insert(p, o);
                }
            }
            Err(e) => eprintln!("commit failed, will be redelivered: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = producer.await.unwrap();
    // Read the rest.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.iter().any(|a| !delivered.contains_key(a)) && tokio::time::Instant::now() < deadline
    {
        let recs = consumer
            .poll(1000, Duration::from_millis(500))
            .await
            .unwrap_or_default();
        let recs = consume(recs, &committed, &mut delivered, &mut violations);
        if !recs.is_empty() && consumer.commit(&recs).await.is_ok() {
            for (_, p, o) in argus_bus::next_offsets(
                recs.iter()
                    .map(|r| (r.topic.as_str(), r.partition, r.offset)),
            ) {
                committed.insert(p, o);
            }
        }
    }
    assert!(restarted);
    assert!(
        acked.len() > 1000,
        "only {} records acknowledged",
        acked.len()
    );
    let lost: Vec<_> = acked
        .iter()
        .filter(|a| !delivered.contains_key(a))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records never delivered, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        violations.is_empty(),
        "delivered again after commit: {violations:?}"
    );
    eprintln!(
        "acked {} records ({failed} batches failed), delivered {} distinct, {} redeliveries before commit",
        acked.len(),
        delivered.len(),
        delivered.values().filter(|c| **c > 1).count()
    );
}
