//! Exactly-once file tailing across process crashes, on the embedded log (3 partitions)
//! and on Kafka (`ARGUS_TEST_KAFKA=host:port`, a tansu broker started by
//! `deploy/start-kafka.sh`; skipped when unset unless `ARGUS_REQUIRE_SERVICES` is set).
//!
//! Each test re-executes this test binary, filtered to `child_tailer`, with
//! `ARGUS_TEST_TAIL_CHILD` holding the event log's and the tailer's configs and
//! `ARGUS_FAILPOINT` naming where the child aborts (SIGABRT): right after the event log
//! acknowledged a batch and before its checkpoint, right after the intent was written
//! and before the publish, or after publishing only the first half of a batch (what
//! Kafka can be left with). The parent then checks what the crash left, runs the tailer
//! again and checks that every line is on the log exactly once, in file order.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use argus_bus::{BusConfig, EventLog, KafkaConfig};
use argus_ingest::tail::{
    self, FAILPOINT_AFTER_INTENT, FAILPOINT_AFTER_PUBLISH, FAILPOINT_ENV,
    FAILPOINT_PARTIAL_PUBLISH, Multiline, TailConfig,
};
use argus_schemas::{Payload, topics};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

const CHILD_ENV: &str = "ARGUS_TEST_TAIL_CHILD";

#[derive(Serialize, Deserialize)]
struct ChildSpec {
    bus: BusConfig,
    tail: TailConfig,
}

/// The re-executed child: tails until the failpoint aborts the process. Does nothing
/// unless `ARGUS_TEST_TAIL_CHILD` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_tailer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: ChildSpec = serde_json::from_str(&spec).unwrap();
    let log = EventLog::open(&spec.bus).await.unwrap();
    let (_tx, rx) = watch::channel(false);
    let r = tokio::time::timeout(Duration::from_secs(60), tail::run(spec.tail, log, rx)).await;
    panic!("the failpoint did not fire: {r:?}");
}

/// Runs the child with `failpoint` and checks that it aborted.
fn crash_child(spec: &ChildSpec, failpoint: &str) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_tailer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, serde_json::to_string(spec).unwrap())
        .env(FAILPOINT_ENV, failpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(6),
        "the child must abort (SIGABRT) at {failpoint}: {status:?}"
    );
}

#[derive(Debug, Clone)]
enum Backend {
    Embedded,
    Kafka(String),
}

fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Embedded];
    match std::env::var("ARGUS_TEST_KAFKA") {
        Ok(a) if !a.is_empty() => v.push(Backend::Kafka(a)),
        _ => {
            assert!(
                std::env::var_os("ARGUS_REQUIRE_SERVICES").is_none(),
                "ARGUS_REQUIRE_SERVICES is set but ARGUS_TEST_KAFKA is not"
            );
            eprintln!("ARGUS_TEST_KAFKA not set: skipping the Kafka backend");
        }
    }
    v
}

/// One test run on one backend: a temporary folder for the files, the positions and
/// the embedded log; a label value no other run uses; where `argus.logs` ended before.
struct Case {
    dir: tempfile::TempDir,
    bus: BusConfig,
    run: String,
    from: Vec<i64>,
}

impl Case {
    async fn new(backend: &Backend, name: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let run = format!("{name}-{nanos}");
        let bus = match backend {
            Backend::Embedded => {
                let mut b = BusConfig::embedded_at(dir.path().join("bus"));
                b.embedded.partitions = 3;
                b
            }
            Backend::Kafka(addr) => BusConfig {
                kafka: Some(KafkaConfig {
                    brokers: vec![addr.clone()],
                    client_id: "argus-tail-test".into(),
                    partitions: 3,
                    replication_factor: 1,
                    retention: Duration::from_secs(3600),
                    compression: "lz4".into(),
                    properties: Default::default(),
                    spool: Default::default(),
                }),
                ..Default::default()
            },
        };
        // The embedded log is new (read from 0); Kafka's topic is shared between runs.
        let mut from = Vec::new();
        if let Backend::Kafka(_) = backend {
            let log = EventLog::open(&bus).await.unwrap();
            for p in 0..log.partitions(topics::LOGS).await.unwrap() {
                from.push(log.watermarks(topics::LOGS, p).await.unwrap().1);
            }
            log.close().await.unwrap();
        }
        Case {
            dir,
            bus,
            run,
            from,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn positions(&self) -> PathBuf {
        self.path("positions.json")
    }

    fn config(&self, glob: &str, batch_size: usize) -> TailConfig {
        TailConfig {
            paths: vec![self.path(glob).to_string_lossy().into_owned()],
            labels: [("run".to_string(), self.run.clone())].into(),
            tenant: "team-a".into(),
            positions_file: self.positions(),
            poll_interval: Duration::from_millis(20),
            batch_size,
            ..Default::default()
        }
    }

    fn crash(&self, tail: &TailConfig, failpoint: &str) {
        crash_child(
            &ChildSpec {
                bus: self.bus.clone(),
                tail: tail.clone(),
            },
            failpoint,
        );
    }

    async fn log(&self) -> EventLog {
        EventLog::open(&self.bus).await.unwrap()
    }

    /// This run's records on the log, per partition in offset order: (filename, line).
    async fn lines(&self, log: &EventLog) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in 0..log.partitions(topics::LOGS).await.unwrap() {
            let mut at = self.from.get(p as usize).copied().unwrap_or(0);
            loop {
                let recs = log.read(topics::LOGS, p, at, 5000).await.unwrap();
                let Some(last) = recs.last() else { break };
                at = last.offset + 1;
                for r in &recs {
                    let Ok(env) = argus_schemas::decode(&r.value) else {
                        continue;
                    };
                    if let Payload::LogEntry(e) = &env.payload
                        && e.labels.get("run") == Some(self.run.as_str())
                    {
                        out.push((
                            e.labels.get("filename").unwrap_or("").to_string(),
                            e.line.clone(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Waits until every `want` line is on the log (at most 30 s), then a little more
    /// for any extra record; checks each is there exactly once and nothing else is.
    async fn expect_exactly_once(&self, log: &EventLog, want: &[String]) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.lines(log).await;
            let have: std::collections::HashSet<&str> =
                got.iter().map(|(_, l)| l.as_str()).collect();
            if want.iter().all(|w| have.contains(w.as_str())) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "lines missing after 30 s: {:?}",
                want.iter()
                    .filter(|w| !have.contains(w.as_str()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = self.lines(log).await;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (_, l) in &got {
            *counts.entry(l.as_str()).or_default() += 1;
        }
        let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "lines on the log more than once: {repeated:?}"
        );
        assert_eq!(got.len(), want.len(), "unexpected records: {got:?}");
        got
    }

    fn has_intent(&self) -> bool {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.positions()).unwrap()).unwrap();
        !v["intent"].is_null()
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), tail::TailError>>,
}

fn start(cfg: TailConfig, log: &EventLog) -> Running {
    let (stop, rx) = watch::channel(false);
    Running {
        stop,
        task: tokio::spawn(tail::run(cfg, log.clone(), rx)),
    }
}

impl Running {
    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} {i}")).collect()
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Lines starting with `prefix ` appear in increasing number order.
fn assert_in_order(got: &[(String, String)], prefix: &str) {
    let nums: Vec<usize> = got
        .iter()
        .filter_map(|(_, l)| l.strip_prefix(&format!("{prefix} ")))
        .filter_map(|n| n.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        nums.windows(2).all(|w| w[0] < w[1]),
        "{prefix} lines out of order: {nums:?}"
    );
}

/// Two files, batches of 7; the child dies after the third batch was acknowledged and
/// before its checkpoint. The restart finds that batch on the log and repeats nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_publish_and_checkpoint_repeats_nothing() {
    for backend in backends() {
        let case = Case::new(&backend, "after-publish").await;
        let (a, b) = (numbered("a", 0..40), numbered("b", 0..25));
        append(&case.path("a.log"), &text(&a));
        append(&case.path("b.log"), &text(&b));
        let cfg = case.config("*.log", 7);
        case.crash(&cfg, &format!("{FAILPOINT_AFTER_PUBLISH}:3"));

        assert!(case.has_intent(), "{backend:?}: the crash left the intent");
        let log = case.log().await;
        assert_eq!(
            case.lines(&log).await.len(),
            21,
            "{backend:?}: three batches were acknowledged"
        );
        let (a2, b2) = (numbered("a", 40..45), numbered("b", 25..30));
        append(&case.path("a.log"), &text(&a2));
        append(&case.path("b.log"), &text(&b2));
        let run = start(cfg, &log);
        let want: Vec<String> = [a, a2, b, b2].concat();
        let got = case.expect_exactly_once(&log, &want).await;
        run.shutdown().await;
        assert_in_order(&got, "a");
        assert_in_order(&got, "b");
        assert!(!case.has_intent(), "{backend:?}: the intent was settled");
        log.close().await.unwrap();
    }
}

/// The child dies after writing the intent of its second batch, before publishing it:
/// the restart finds nothing of it on the log and sends all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_publish_sends_the_batch_once() {
    for backend in backends() {
        let case = Case::new(&backend, "after-intent").await;
        let a = numbered("a", 0..30);
        append(&case.path("a.log"), &text(&a));
        let cfg = case.config("*.log", 7);
        case.crash(&cfg, &format!("{FAILPOINT_AFTER_INTENT}:2"));

        assert!(case.has_intent(), "{backend:?}: the crash left the intent");
        let log = case.log().await;
        assert_eq!(case.lines(&log).await.len(), 7, "{backend:?}: one batch");
        let run = start(cfg, &log);
        let got = case.expect_exactly_once(&log, &a).await;
        run.shutdown().await;
        assert_in_order(&got, "a");
        log.close().await.unwrap();
    }
}

/// The child publishes 4 of the 7 records of its second batch, then dies (Kafka can
/// store a prefix of a batch): the restart continues after the fourth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_with_part_of_a_batch_published_continues_after_it() {
    for backend in backends() {
        let case = Case::new(&backend, "partial").await;
        let a = numbered("a", 0..30);
        append(&case.path("a.log"), &text(&a));
        let cfg = case.config("*.log", 7);
        case.crash(&cfg, &format!("{FAILPOINT_PARTIAL_PUBLISH}:2"));

        let log = case.log().await;
        assert_eq!(
            case.lines(&log).await.len(),
            11,
            "{backend:?}: one batch and 4 records of the next"
        );
        let run = start(cfg, &log);
        let got = case.expect_exactly_once(&log, &a).await;
        run.shutdown().await;
        assert_in_order(&got, "a");
        log.close().await.unwrap();
    }
}

/// Crash after a publish, then while stopped the writer appends to the file, which is
/// rotated (renamed to `app.log.1`) and replaced by a new `app.log`. With the glob
/// `app.log*`, the restart continues the old file where the log left it, reads the new
/// one from its start, and keeps both in the stream `filename=<app.log>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_then_rotation_while_stopped() {
    for backend in backends() {
        let case = Case::new(&backend, "rotation").await;
        let app = case.path("app.log");
        let old = numbered("old", 0..20);
        append(&app, &text(&old));
        let cfg = case.config("app.log*", 6);
        case.crash(&cfg, &format!("{FAILPOINT_AFTER_PUBLISH}:2"));

        let old2 = numbered("old", 20..25);
        append(&app, &text(&old2));
        std::fs::rename(&app, case.path("app.log.1")).unwrap();
        let new = numbered("new", 0..8);
        append(&app, &text(&new));

        let log = case.log().await;
        let run = start(cfg, &log);
        let want: Vec<String> = [old, old2, new].concat();
        let got = case.expect_exactly_once(&log, &want).await;
        run.shutdown().await;
        assert_in_order(&got, "old");
        assert_in_order(&got, "new");
        let name = app.to_string_lossy();
        assert!(
            got.iter().all(|(f, _)| *f == name),
            "{backend:?}: every record in the stream of {name}: {got:?}"
        );
        log.close().await.unwrap();
    }
}

/// Multiline entries (one record per block of 3 lines), a batch published in part: the
/// restart continues after the last block the log holds, at a block boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiline_crash_with_part_of_a_batch_published() {
    for backend in backends() {
        let case = Case::new(&backend, "multiline").await;
        let mut body = String::new();
        let mut want = Vec::new();
        for i in 0..20 {
            body.push_str(&format!("start {i}\n  at x{i}\n  at y{i}\n"));
            want.push(format!("start {i}\n  at x{i}\n  at y{i}"));
        }
        append(&case.path("app.log"), &body);
        let cfg = TailConfig {
            multiline: Some(Multiline {
                first_line: "^start".into(),
                max_wait: Duration::from_millis(100),
                max_lines: 10,
            }),
            // A poll reads 10 lines: 3 whole blocks, so batches of 3 records.
            ..case.config("*.log", 10)
        };
        case.crash(&cfg, &format!("{FAILPOINT_PARTIAL_PUBLISH}:2"));

        let log = case.log().await;
        assert_eq!(case.lines(&log).await.len(), 5, "{backend:?}: 3 + 2 blocks");
        let run = start(cfg, &log);
        let got = case.expect_exactly_once(&log, &want).await;
        run.shutdown().await;
        assert_in_order(&got, "start");
        log.close().await.unwrap();
    }
}
