//! Behaviour only the embedded log has: reopening, retention, one member per group.

use std::time::Duration;

use argus_bus::embedded::EmbeddedLog;
use argus_bus::{BusConfig, BusError, EmbeddedConfig, EventLog, OutRecord, TopicSpec};

fn cfg(dir: &std::path::Path) -> EmbeddedConfig {
    EmbeddedConfig {
        dir: dir.to_path_buf(),
        ..Default::default()
    }
}

async fn open(dir: &std::path::Path) -> EventLog {
    EventLog::Embedded(EmbeddedLog::open(&cfg(dir)).await.unwrap())
}

fn emb(log: &EventLog) -> &EmbeddedLog {
    match log {
        EventLog::Embedded(e) => e,
        EventLog::Kafka(_) => unreachable!(),
    }
}

fn spec(name: &str, retention: Duration, bytes: Option<u64>, compacted: bool) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        partitions: 2,
        retention,
        retention_bytes: bytes,
        compacted,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_records_offsets_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    log.ensure_topics(&[spec("t", Duration::from_secs(3600), None, false)])
        .await
        .unwrap();
    let recs = (0..100)
        .map(|i| OutRecord::new(format!("k{i}"), format!("{i}")))
        .collect();
    log.produce_batch("t", recs).await.unwrap();
    let mut c = log.consumer("g", &["t"]).await.unwrap();
    let got = c.poll(1000, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 100);
    c.commit(&got[..30]).await.unwrap();
    drop(c);
    log.close().await.unwrap();
    assert!(matches!(
        log.produce_batch("t", vec![OutRecord::new("k", "x")]).await,
        Err(BusError::Closed)
    ));

    let log = open(dir.path()).await;
    let mut c = log.consumer("g", &["t"]).await.unwrap();
    let mut again = Vec::new();
    while let Ok(b) = c.poll(1000, Duration::from_millis(500)).await {
        if b.is_empty() {
            break;
        }
        again.extend(b);
    }
    // got[..30] covers some prefix of each partition; everything after it comes back.
    let committed: Vec<(i32, i64)> =
        argus_bus::next_offsets(got[..30].iter().map(|r| ("t", r.partition, r.offset)))
            .into_iter()
            .map(|(_, p, o)| (p, o))
            .collect();
    let expected = got
        .iter()
        .filter(|r| {
            committed
                .iter()
                .find(|(p, _)| *p == r.partition)
                .is_none_or(|(_, o)| r.offset >= *o)
        })
        .count();
    assert_eq!(again.len(), expected);
    assert!(again.len() < 100 && again.len() >= 70);
    // Offsets continue where they were.
    let p = log.produce("t", OutRecord::new("k0", "new")).await.unwrap();
    let (_, high_before) = (
        0,
        got.iter().filter(|r| r.partition == p.partition).count() as i64,
    );
    assert_eq!(p.offset, high_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    log.ensure_topics(&[spec("t", Duration::from_secs(3600), None, false)])
        .await
        .unwrap();
    let c = log.consumer("g", &["t"]).await.unwrap();
    assert!(matches!(
        log.consumer("g", &["t"]).await,
        Err(BusError::GroupBusy(_))
    ));
    drop(c);
    log.consumer("g", &["t"]).await.unwrap();
    assert!(matches!(
        log.consumer("h", &["nope"]).await,
        Err(BusError::UnknownTopic(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_retention_keeps_offsets_moving_forward() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    log.ensure_topics(&[spec("t", Duration::from_millis(50), None, false)])
        .await
        .unwrap();
    let recs = (0..10).map(|_| OutRecord::new("same", "v")).collect();
    let pos = log.produce_batch("t", recs).await.unwrap();
    let p = pos[0].partition;
    tokio::time::sleep(Duration::from_millis(120)).await;
    emb(&log).enforce_retention().await.unwrap();
    assert_eq!(
        log.watermarks("t", p).await.unwrap(),
        (10, 10),
        "all expired, offsets kept"
    );
    // A consumer with no commit starts at the earliest retained record.
    let fresh = log
        .produce("t", OutRecord::new("same", "after"))
        .await
        .unwrap();
    assert_eq!(fresh.offset, 10);
    let mut c = log.consumer("g", &["t"]).await.unwrap();
    let got = c.poll(100, Duration::from_secs(2)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value, b"after");
    // Survives a reopen too.
    drop(c);
    log.close().await.unwrap();
    let log = open(dir.path()).await;
    assert_eq!(
        log.produce("t", OutRecord::new("same", "x"))
            .await
            .unwrap()
            .offset,
        11
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_retention_bounds_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    let limit = 2 << 20;
    log.ensure_topics(&[spec("t", Duration::from_secs(3600), Some(limit), false)])
        .await
        .unwrap();
    let value = vec![b'x'; 4096];
    for chunk in 0..10 {
        let recs = (0..500)
            .map(|i| OutRecord::new(format!("k{chunk}-{i}"), value.clone()))
            .collect();
        log.produce_batch("t", recs).await.unwrap();
    }
    let before = emb(&log).disk_bytes();
    assert!(before > 15 << 20, "wrote about 20 MiB, file is {before}");
    emb(&log).enforce_retention().await.unwrap();
    let mut kept = 0;
    for p in 0..2 {
        let (low, high) = log.watermarks("t", p).await.unwrap();
        kept += high - low;
        assert!(low > 0, "oldest records of partition {p} were removed");
    }
    let kept_bytes = kept as u64 * 4100;
    assert!(
        kept_bytes <= limit + 4100,
        "{kept} records kept, {kept_bytes} bytes > {limit}"
    );
    assert!(
        kept_bytes > limit / 2,
        "retention removed far too much: {kept} records left"
    );
    // Produce more to reuse the freed pages: the file does not keep growing.
    for chunk in 0..10 {
        let recs = (0..500)
            .map(|i| OutRecord::new(format!("m{chunk}-{i}"), value.clone()))
            .collect();
        log.produce_batch("t", recs).await.unwrap();
        emb(&log).enforce_retention().await.unwrap();
    }
    let after = emb(&log).disk_bytes();
    assert!(after < 8 << 20, "file is {after} bytes with a 2 MiB limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topic_keeps_newest_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    log.ensure_topics(&[spec("s", Duration::from_secs(3600), None, true)])
        .await
        .unwrap();
    for v in 0..5 {
        for k in ["a", "b", "c"] {
            log.produce("s", OutRecord::new(k, format!("{k}{v}")))
                .await
                .unwrap();
        }
    }
    emb(&log).enforce_retention().await.unwrap();
    let mut c = log.consumer("g", &["s"]).await.unwrap();
    let mut vals: Vec<String> = c
        .poll(100, Duration::from_secs(2))
        .await
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value).unwrap())
        .collect();
    vals.sort();
    assert_eq!(vals, ["a4", "b4", "c4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let bc = BusConfig {
        embedded: cfg(dir.path()),
        ..Default::default()
    };
    let log = EventLog::open(&bc).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                log.produce(
                    argus_schemas::topics::LOGS,
                    OutRecord::new(format!("w{w}"), format!("{w}#{i}")),
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = log
        .consumer("g", &[argus_schemas::topics::LOGS])
        .await
        .unwrap();
    let mut n = 0;
    let mut last = std::collections::HashMap::new();
    loop {
        let b = c.poll(10_000, Duration::from_millis(300)).await.unwrap();
        if b.is_empty() {
            break;
        }
        for r in b {
            let s = String::from_utf8(r.value).unwrap();
            let (w, i) = s.split_once('#').unwrap();
            let i: i32 = i.parse().unwrap();
            let prev = last.insert(w.to_string(), i).unwrap_or(-1);
            assert_eq!(i, prev + 1, "writer {w} out of order");
            n += 1;
        }
    }
    assert_eq!(n, 1600);
}
