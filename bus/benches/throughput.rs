//! Records per second through each backend, beside a bare rdkafka producer and consumer
//! on the same broker in the same run.
//!
//! `cargo bench -p argus-bus --bench throughput` (Kafka parts need `ARGUS_TEST_KAFKA`,
//! e.g. from `deploy/start-kafka.sh`). `ARGUS_BENCH_RECORDS` sets the count (default
//! 200000), values are 256 bytes, keys spread over 1000 series, batches of 1000.

use std::time::{Duration, Instant};

use argus_bus::{BusConfig, EventLog, KafkaConfig, OutRecord, TopicSpec};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

const BATCH: usize = 1000;

fn records(n: usize) -> Vec<OutRecord> {
    (0..n)
        .map(|i| OutRecord::new(format!("series-{}", i % 1000), format!("{i:0>256}")))
        .collect()
}

fn spec(name: &str) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        partitions: 3,
        retention: Duration::from_secs(3600),
        retention_bytes: None,
        compacted: false,
    }
}

async fn through_argus(log: &EventLog, topic: &str, n: usize) -> (f64, f64) {
    log.ensure_topics(&[spec(topic)]).await.unwrap();
    let recs = records(n);
    let t = Instant::now();
    // Several batches in flight, as concurrent requests would be.
    let mut inflight = Vec::new();
    for chunk in recs.chunks(BATCH) {
        let (log, topic, chunk) = (log.clone(), topic.to_string(), chunk.to_vec());
        inflight.push(tokio::spawn(async move {
            log.produce_batch(&topic, chunk).await.unwrap()
        }));
        if inflight.len() >= 8 {
            inflight.remove(0).await.unwrap();
        }
    }
    for f in inflight {
        f.await.unwrap();
    }
    let produce = n as f64 / t.elapsed().as_secs_f64();
    let mut c = log
        .consumer(&format!("bench-{topic}"), &[topic])
        .await
        .unwrap();
    let t = Instant::now();
    let mut got = 0;
    while got < n {
        let b = c.poll(BATCH, Duration::from_secs(5)).await.unwrap();
        got += b.len();
        c.commit(&b).await.unwrap();
    }
    (produce, n as f64 / t.elapsed().as_secs_f64())
}

async fn bare_rdkafka(addr: &str, topic: &str, n: usize) -> (f64, f64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let recs = records(n);
    let t = Instant::now();
    let mut futs = Vec::with_capacity(BATCH * 8);
    for r in &recs {
        loop {
            match producer.send_result(FutureRecord::to(topic).key(&r.key).payload(&r.value)) {
                Ok(f) => {
                    futs.push(f);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        if futs.len() >= BATCH * 8 {
            for f in futs.drain(..BATCH) {
                f.await.unwrap().unwrap();
            }
        }
    }
    for f in futs {
        f.await.unwrap().unwrap();
    }
    let produce = n as f64 / t.elapsed().as_secs_f64();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", format!("bare-{topic}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let t = Instant::now();
    let mut got = 0;
    let mut last: std::collections::HashMap<i32, i64> = Default::default();
    while got < n {
        let m = consumer.recv().await.unwrap();
        last.insert(m.partition(), m.offset());
        got += 1;
        if got % BATCH == 0 || got == n {
            let mut tpl = TopicPartitionList::new();
            for (p, o) in &last {
                tpl.add_partition_offset(topic, *p, Offset::Offset(o + 1))
                    .unwrap();
            }
            consumer.commit(&tpl, CommitMode::Sync).unwrap();
        }
    }
    (produce, n as f64 / t.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("ARGUS_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut rows: Vec<(String, f64, f64)> = Vec::new();

    for sync in [
        argus_bus::config::SyncMode::Full,
        argus_bus::config::SyncMode::Normal,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = BusConfig::default();
        cfg.embedded.dir = dir.path().to_path_buf();
        cfg.embedded.sync = sync;
        let log = EventLog::open(&cfg).await.unwrap();
        let (p, c) = through_argus(&log, "bench", n).await;
        rows.push((format!("argus embedded (sync={sync:?})"), p, c));
        log.close().await.unwrap();
    }
    if let Ok(addr) = std::env::var("ARGUS_TEST_KAFKA") {
        let cfg = BusConfig {
            kafka: Some(KafkaConfig {
                brokers: vec![addr.clone()],
                client_id: "argus-bench".into(),
                partitions: 3,
                replication_factor: 1,
                retention: Duration::from_secs(3600),
                compression: "lz4".into(),
                properties: Default::default(),
                spool: Default::default(),
            }),
            ..Default::default()
        };
        let log = EventLog::open(&cfg).await.unwrap();
        let (p, c) = through_argus(&log, &format!("bench.argus.{stamp}"), n).await;
        rows.push(("argus kafka".into(), p, c));
        let bare_topic = format!("bench.bare.{stamp}");
        log.ensure_topics(&[spec(&bare_topic)]).await.unwrap();
        let (p, c) = bare_rdkafka(&addr, &bare_topic, n).await;
        rows.push(("bare rdkafka (same broker)".into(), p, c));
    } else {
        eprintln!("ARGUS_TEST_KAFKA not set: Kafka rows skipped");
    }
    println!("\n{n} records of 256 bytes, batches of {BATCH}\n");
    println!("| path | produce rec/s | consume+commit rec/s |");
    println!("|---|---:|---:|");
    for (name, p, c) in &rows {
        println!("| {name} | {p:.0} | {c:.0} |");
    }
    if let (Some(a), Some(b)) = (
        rows.iter().find(|r| r.0 == "argus kafka"),
        rows.iter().find(|r| r.0.starts_with("bare")),
    ) {
        println!(
            "\nargus kafka / bare rdkafka: produce {:.2}x, consume {:.2}x",
            a.1 / b.1,
            a.2 / b.2
        );
        for r in rows.iter().filter(|r| r.0.starts_with("argus embedded")) {
            println!(
                "{} / bare rdkafka: produce {:.2}x, consume {:.2}x",
                r.0,
                r.1 / b.1,
                r.2 / b.2
            );
        }
    }
}
