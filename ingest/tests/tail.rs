//! The file tailer end to end: real files in a temporary directory, an embedded event
//! log, records read back from `argus.logs`, a 20 ms poll interval.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use argus_bus::{BusConfig, EventLog};
use argus_ingest::tail::{Multiline, StartAt, TailConfig};
use argus_schemas::{Envelope, LogEntry, Payload, topics};
use tokio::sync::watch;
use tokio::task::JoinHandle;

async fn log(dir: &Path) -> EventLog {
    EventLog::open(&BusConfig::embedded_at(dir.join("bus")))
        .await
        .unwrap()
}

fn config(dir: &Path, glob: &str) -> TailConfig {
    TailConfig {
        paths: vec![dir.join(glob).to_string_lossy().into_owned()],
        labels: [("job".to_string(), "app".to_string())].into(),
        tenant: "team-a".into(),
        positions_file: dir.join("positions.json"),
        poll_interval: Duration::from_millis(20),
        ..Default::default()
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), argus_ingest::tail::TailError>>,
}

fn start(cfg: TailConfig, log: &EventLog) -> Running {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(argus_ingest::tail::run(cfg, log.clone(), rx));
    Running { stop, task }
}

impl Running {
    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn entry(e: &Envelope) -> &LogEntry {
    match &e.payload {
        Payload::LogEntry(l) => l,
        other => panic!("not a log entry: {other:?}"),
    }
}

async fn records(log: &EventLog) -> Vec<Envelope> {
    log.read(topics::LOGS, 0, 0, 100_000)
        .await
        .unwrap()
        .iter()
        .map(|r| argus_schemas::decode(&r.value).unwrap())
        .collect()
}

async fn lines(log: &EventLog) -> Vec<String> {
    records(log)
        .await
        .iter()
        .map(|e| entry(e).line.clone())
        .collect()
}

/// Waits until `n` records are on the log (or fails after 10 s), then a few polls more
/// to catch any extra (duplicate) record.
async fn wait_lines(log: &EventLog, n: usize) -> Vec<String> {
    for _ in 0..500 {
        if lines(log).await.len() >= n {
            tokio::time::sleep(Duration::from_millis(150)).await;
            return lines(log).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = lines(log).await;
    panic!("expected {n} records, got {}: {got:#?}", got.len());
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix} {i}\n")).collect()
}

fn expect_numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} {i}")).collect()
}

/// The saved offset of `path` in the positions file.
fn saved_offset(positions: &Path, path: &Path) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(positions).ok()?).ok()?;
    v["files"]
        .as_array()?
        .iter()
        .find(|f| f["path"].as_str() == path.to_str())
        .and_then(|f| f["offset"].as_u64())
}

async fn wait_checkpoint(positions: &Path, path: &Path, offset: u64) {
    for _ in 0..500 {
        if saved_offset(positions, path) == Some(offset) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "positions never reached {offset} for {}: {:?}",
        path.display(),
        std::fs::read_to_string(positions)
    );
}

fn assert_no_duplicates(got: &[String]) {
    let mut seen = std::collections::HashSet::new();
    for l in got {
        assert!(seen.insert(l), "duplicate line {l:?} in {got:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_append_with_labels_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    append(&path, "one\n\ntwo\n");
    let run = start(config(dir.path(), "*.log"), &log);
    assert_eq!(wait_lines(&log, 3).await, ["one", "", "two"]);
    append(&path, "three\r\nfour\n");
    assert_eq!(
        wait_lines(&log, 5).await,
        ["one", "", "two", "three", "four"]
    );
    run.shutdown().await;

    let recs = records(&log).await;
    let e = &recs[0];
    assert_eq!((e.tenant.as_str(), e.source.as_str()), ("team-a", "file"));
    let l = entry(e);
    assert_eq!(
        l.labels.to_string(),
        format!(r#"{{filename="{}", job="app"}}"#, path.display())
    );
    assert!(l.structured_metadata.is_empty());
    assert_eq!(e.event_time, l.timestamp);
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        saved_offset(&dir.path().join("positions.json"), &path),
        Some(len)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_line_waits_for_its_newline_and_is_not_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    let positions = dir.path().join("positions.json");
    append(&path, "hel");
    let run = start(config(dir.path(), "app.log"), &log);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(lines(&log).await.is_empty());
    append(&path, "lo\nwor");
    assert_eq!(wait_lines(&log, 1).await, ["hello"]);
    run.shutdown().await;
    // Shutdown does not emit the partial line, and the checkpoint stops before it.
    assert_eq!(lines(&log).await, ["hello"]);
    assert_eq!(saved_offset(&positions, &path), Some(6));

    append(&path, "ld\n");
    let run = start(config(dir.path(), "app.log"), &log);
    assert_eq!(wait_lines(&log, 2).await, ["hello", "world"]);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    let rotated = dir.path().join("app.log.1");
    let run = start(config(dir.path(), "app.log"), &log);

    let mut old = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    old.write_all(numbered("old", 0..50).as_bytes()).unwrap();
    wait_lines(&log, 50).await;
    // Just before the rename, during it (the writer has not reopened), and just after
    // in the new file.
    old.write_all(numbered("old", 50..100).as_bytes()).unwrap();
    std::fs::rename(&path, &rotated).unwrap();
    old.write_all(numbered("old", 100..110).as_bytes()).unwrap();
    append(&path, &numbered("new", 0..30));
    old.write_all(b"old 110 no newline").unwrap();
    drop(old);

    let got = wait_lines(&log, 141).await;
    run.shutdown().await;
    assert_no_duplicates(&got);
    assert_eq!(got.len(), 141, "{got:#?}");
    let mut want_old = expect_numbered("old", 0..110);
    want_old.push("old 110 no newline".into());
    let old_got: Vec<_> = got
        .iter()
        .filter(|l| l.starts_with("old"))
        .cloned()
        .collect();
    let new_got: Vec<_> = got
        .iter()
        .filter(|l| l.starts_with("new"))
        .cloned()
        .collect();
    assert_eq!(old_got, want_old);
    assert_eq!(new_got, expect_numbered("new", 0..30));
    // The new file is checkpointed; the finished old one is gone from the positions.
    let pos = dir.path().join("positions.json");
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(saved_offset(&pos, &path), Some(len));
    let text = std::fs::read_to_string(&pos).unwrap();
    assert_eq!(text.matches("\"path\"").count(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_name_still_matched_is_not_read_twice() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    append(&path, &numbered("a", 0..10));
    let run = start(config(dir.path(), "app.log*"), &log);
    wait_lines(&log, 10).await;
    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    append(&dir.path().join("app.log.1"), "a 10\n");
    append(&path, "b 0\n");
    let got = wait_lines(&log, 12).await;
    run.shutdown().await;
    assert_no_duplicates(&got);
    assert_eq!(got.len(), 12, "{got:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_starts_again_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    append(&path, &numbered("before", 0..5));
    let run = start(config(dir.path(), "app.log"), &log);
    wait_lines(&log, 5).await;
    std::fs::copy(&path, dir.path().join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "after 0\n");
    let got = wait_lines(&log, 6).await;
    append(&path, "after 1\n");
    let got2 = wait_lines(&log, 7).await;
    run.shutdown().await;
    assert_eq!(got.len(), 6, "{got:#?}");
    let mut want = expect_numbered("before", 0..5);
    want.extend(expect_numbered("after", 0..2));
    assert_eq!(got2, want);
    assert_eq!(
        saved_offset(&dir.path().join("positions.json"), &path),
        Some(16)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reads_exactly_the_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    append(&path, &numbered("l", 0..20));
    let run = start(config(dir.path(), "*.log"), &log);
    wait_lines(&log, 20).await;
    run.shutdown().await;

    append(&path, &numbered("l", 20..35));
    let run = start(config(dir.path(), "*.log"), &log);
    let got = wait_lines(&log, 35).await;
    run.shutdown().await;
    assert_eq!(got, expect_numbered("l", 0..35));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_while_stopped_reads_the_new_file_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    append(&path, &numbered("old", 0..3));
    let run = start(config(dir.path(), "app.log"), &log);
    wait_lines(&log, 3).await;
    run.shutdown().await;

    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    append(&path, &numbered("new", 0..2));
    let cfg = TailConfig {
        // A file never seen before would start at the end; this one replaced a known one.
        start_at: StartAt::End,
        ..config(dir.path(), "app.log")
    };
    let run = start(cfg, &log);
    let got = wait_lines(&log, 5).await;
    run.shutdown().await;
    let mut want = expect_numbered("old", 0..3);
    want.extend(expect_numbered("new", 0..2));
    assert_eq!(got, want);
}

/// A crash (the task aborted, no shutdown) after lines were published and checkpointed:
/// the next run neither loses nor repeats a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_checkpoint_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    let positions = dir.path().join("positions.json");
    let cfg = TailConfig {
        batch_size: 7,
        ..config(dir.path(), "*.log")
    };
    append(&path, &numbered("l", 0..30));
    let run = start(cfg.clone(), &log);
    wait_lines(&log, 30).await;
    let len = std::fs::metadata(&path).unwrap().len();
    wait_checkpoint(&positions, &path, len).await;
    run.task.abort();
    let _ = run.task.await;
    drop(run.stop);

    append(&path, &numbered("l", 30..40));
    let run = start(cfg, &log);
    let got = wait_lines(&log, 40).await;
    run.shutdown().await;
    assert_eq!(got, expect_numbered("l", 0..40));
}

/// A crash at an arbitrary moment (the task aborted while it publishes batches of 5,
/// most likely between a publish and its checkpoint): every line is on the log exactly
/// once after the next run, in order. (The process crashes with the exactly-once
/// failpoints are in `tail_crash.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_any_time_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    let cfg = TailConfig {
        batch_size: 5,
        ..config(dir.path(), "*.log")
    };
    append(&path, &numbered("l", 0..200));
    for stop_after in [1, 40, 120] {
        let run = start(cfg.clone(), &log);
        while lines(&log).await.len() < stop_after {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        run.task.abort();
        let _ = run.task.await;
        drop(run.stop);
        // What the aborted task handed to the blocking pool or the log's writer thread
        // still completes; a crashed process would have none.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    append(&path, &numbered("l", 200..210));
    let run = start(cfg, &log);
    let got = wait_lines(&log, 210).await;
    run.shutdown().await;
    assert_no_duplicates(&got);
    assert_eq!(got, expect_numbered("l", 0..210));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiline_java_stack_trace() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    let cfg = TailConfig {
        multiline: Some(Multiline {
            first_line: r"^\d{4}-\d{2}-\d{2} ".into(),
            max_wait: Duration::from_millis(200),
            max_lines: 128,
        }),
        ..config(dir.path(), "app.log")
    };
    let trace = "2024-03-01 10:00:00 ERROR request failed\n\
                 java.lang.IllegalStateException: boom\n\
                 \tat com.example.Service.handle(Service.java:42)\n\
                 \tat com.example.Server.run(Server.java:7)\n\
                 Caused by: java.io.IOException: gone\n\
                 \t... 2 more\n\
                 2024-03-01 10:00:01 INFO recovered\n";
    append(&path, trace);
    let run = start(cfg, &log);
    // The second entry goes out after max_wait, with no next first line.
    let got = wait_lines(&log, 2).await;
    run.shutdown().await;
    assert_eq!(
        got,
        [
            "2024-03-01 10:00:00 ERROR request failed\n\
             java.lang.IllegalStateException: boom\n\
             \tat com.example.Service.handle(Service.java:42)\n\
             \tat com.example.Server.run(Server.java:7)\n\
             Caused by: java.io.IOException: gone\n\
             \t... 2 more",
            "2024-03-01 10:00:01 INFO recovered",
        ]
    );
    assert_eq!(
        saved_offset(&dir.path().join("positions.json"), &path),
        Some(trace.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glob_picks_up_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let run = start(config(dir.path(), "*.log"), &log);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b: PathBuf = dir.path().join("b.log");
    append(&dir.path().join("c.txt"), "ignored\n");
    append(&b, "from b\n");
    wait_lines(&log, 1).await;
    run.shutdown().await;
    let recs = records(&log).await;
    assert_eq!(recs.len(), 1);
    let l = entry(&recs[0]);
    assert_eq!(l.line, "from b");
    assert_eq!(l.labels.get("filename"), b.to_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_line_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    let cfg = TailConfig {
        max_line_bytes: 10,
        ..config(dir.path(), "app.log")
    };
    // 9 ASCII bytes then a 2-byte character: cut before it, not through it.
    append(
        &path,
        "0123456789ABCDEF\nshort\n123456789éxyz\n0123456789\r\n",
    );
    let run = start(cfg, &log);
    let got = wait_lines(&log, 4).await;
    run.shutdown().await;
    assert_eq!(got, ["0123456789", "short", "123456789", "0123456789"]);
    let recs = records(&log).await;
    let truncated: Vec<_> = recs
        .iter()
        .map(|e| entry(e).structured_metadata.get("truncated").is_some())
        .collect();
    assert_eq!(truncated, [true, false, true, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_file_is_finished_with_its_last_partial_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    append(&path, "whole\nhalf");
    let run = start(config(dir.path(), "app.log"), &log);
    wait_lines(&log, 1).await;
    std::fs::remove_file(&path).unwrap();
    let got = wait_lines(&log, 2).await;
    run.shutdown().await;
    assert_eq!(got, ["whole", "half"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_end_skips_existing_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path()).await;
    let path = dir.path().join("app.log");
    append(&path, "old\nbeing writ");
    let cfg = TailConfig {
        start_at: StartAt::End,
        ..config(dir.path(), "app.log")
    };
    let run = start(cfg, &log);
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&path, "ten\nnew\n");
    let got = wait_lines(&log, 2).await;
    run.shutdown().await;
    assert_eq!(got, ["being written", "new"]);
}
