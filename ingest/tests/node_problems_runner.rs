//! The node problem runner end to end: a followed kernel log file through the shipped
//! NPD-format monitors, custom plugins flipping a condition, health checks against local
//! servers, unreadable sources, and shutdown; everything read back from an embedded
//! event log.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use argus_bus::EventLog;
use argus_ingest::IngestError;
use argus_ingest::metrics;
use argus_ingest::node_problems::health::{ContainerRuntimeCheckConfig, KubeletCheckConfig};
use argus_ingest::node_problems::{NodeProblemsConfig, NodeProblemsRunner};
use argus_schemas::{ConditionStatus, NodeEvent, NodeEventSeverity, Payload, ProblemKind, topics};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const NODE: &str = "node-7";

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), IngestError>>,
}

fn start(cfg: NodeProblemsConfig, log: &EventLog) -> Running {
    let runner = NodeProblemsRunner::new(cfg).unwrap();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(runner.run(log.clone(), rx));
    Running { stop, task }
}

impl Running {
    /// Stops the runner and checks that it stopped within `limit`.
    async fn shutdown_within(self, limit: Duration) {
        let t0 = Instant::now();
        self.stop.send(true).unwrap();
        tokio::time::timeout(limit, self.task)
            .await
            .expect("runner stops promptly")
            .unwrap()
            .unwrap();
        assert!(t0.elapsed() <= limit);
    }
}

fn config(kernel_log: Option<PathBuf>, defaults: bool) -> NodeProblemsConfig {
    NodeProblemsConfig {
        node: NODE.into(),
        defaults,
        kernel_log,
        poll_interval: Duration::from_millis(40),
        ..NodeProblemsConfig::default()
    }
}

async fn events(log: &EventLog) -> Vec<NodeEvent> {
    let mut out = Vec::new();
    for p in 0..log.partitions(topics::NODE_EVENTS).await.unwrap() {
        for r in log.read(topics::NODE_EVENTS, p, 0, 100_000).await.unwrap() {
            let env = argus_schemas::decode(&r.value).unwrap();
            assert_eq!(env.tenant, "default");
            match env.payload {
                Payload::NodeEvent(e) => out.push(e),
                other => panic!("not a node event: {other:?}"),
            }
        }
    }
    out
}

/// Waits until at least `n` events are on the log (failing after 15 s), then a few
/// polls more so that an extra (duplicate) event would show.
async fn wait_events(log: &EventLog, n: usize) -> Vec<NodeEvent> {
    let t0 = Instant::now();
    loop {
        let got = events(log).await;
        if got.len() >= n {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return events(log).await;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "waited for {n} events, have {}: {:#?}",
            got.len(),
            summary(&got)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// (monitor, reason, kind, condition type and status) of one event.
type Summary = (
    String,
    String,
    ProblemKind,
    Option<(String, ConditionStatus)>,
);

fn summary(events: &[NodeEvent]) -> Vec<Summary> {
    events
        .iter()
        .map(|e| {
            (
                e.monitor.clone(),
                e.reason.clone(),
                e.kind,
                e.condition
                    .as_ref()
                    .map(|c| (c.condition_type.clone(), c.status)),
            )
        })
        .collect()
}

fn temp(m: &str, r: &str) -> Summary {
    (m.into(), r.into(), ProblemKind::Temporary, None)
}

fn cond(m: &str, r: &str, t: &str, s: ConditionStatus) -> Summary {
    (
        m.into(),
        r.into(),
        ProblemKind::Permanent,
        Some((t.into(), s)),
    )
}

fn append(path: &Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
}

fn kern(msg: &str) -> String {
    format!("Nov 25 10:00:01 {NODE} kernel: [ 1234.567890] {msg}")
}

/// The shipped kernel-monitor and readonly-monitor at start.
fn initial_kernel() -> Vec<Summary> {
    use ConditionStatus::False;
    vec![
        cond(
            "kernel-monitor",
            "KernelHasNoDeadlock",
            "KernelDeadlock",
            False,
        ),
        cond("kernel-monitor", "XfsHasNotShutDown", "XfsShutdown", False),
        cond(
            "kernel-monitor",
            "CperHardwareHasNoFatalError",
            "CperHardwareErrorFatal",
            False,
        ),
        cond(
            "readonly-monitor",
            "FilesystemIsNotReadOnly",
            "ReadonlyFilesystem",
            False,
        ),
    ]
}

#[tokio::test]
async fn kernel_log_file_through_the_shipped_monitors() {
    use ConditionStatus::True;
    let (log, _guard) = common::temp_log().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kern.log");
    // Already there at start: not matched (reading starts at the end).
    append(
        &path,
        &[
            &kern("INFO: task old:1 blocked for more than 120 seconds."),
            &kern("divide error: 0000 [#1] SMP"),
        ],
    );
    let label = path.display().to_string();
    let skipped_before = metrics::NODE_SOURCE_SKIPPED_LINES
        .with_label_values(&[&label])
        .get();
    let running = start(config(Some(path.clone()), true), &log);
    let got = wait_events(&log, 4).await;
    assert_eq!(summary(&got), initial_kernel());
    assert!(
        got.iter()
            .all(|e| e.node == NODE && e.severity == NodeEventSeverity::Info)
    );

    append(
        &path,
        &[
            &kern("INFO: task jbd2/sda1-8:312 blocked for more than 120 seconds."),
            &kern("      Not tainted 6.1.0-18-amd64 #1 Debian 6.1.76-1"),
            &kern("Out of memory: Kill process 4321 (java) score 912 or sacrifice child"),
            &kern(
                "Killed process 4321 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:1234kB, shmem-rss:0kB",
            ),
            &kern(
                "EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0",
            ),
            &kern("EXT4-fs (sda1): Remounting filesystem read-only"),
            &kern("kernel BUG at mm/slub.c:3887!"),
            &kern("divide error: 0000 [#1] SMP PTI"),
            // A /dev/kmsg dump: records, one with a dictionary line.
            "3,2001,1234600000,-;Memory cgroup out of memory: Killed process 5678 (stress) total-vm:1048576kB, anon-rss:524288kB, file-rss:512kB, shmem-rss:0kB, UID:0 pgtables:1100kB oom_score_adj:0",
            " SUBSYSTEM=memory",
            "3,2002,1234700000,-;INFO: task docker:2345 blocked for more than 120 seconds.",
            &kern("mce: [Hardware Error]: Machine check events logged"),
            // The same condition and reason again: no event.
            &kern("EXT4-fs (sdb1): Remounting filesystem read-only"),
            "3,2003,1234800000,-;INFO: task containerd:999 blocked for more than 120 seconds.",
            &kern("mce: [Hardware Error]: CPU 3: Machine Check: 0 Bank 5: be00000000800400"),
            "this line is in no kernel log format",
        ],
    );
    let mut expected = initial_kernel();
    expected.extend([
        temp("kernel-monitor", "TaskHung"),
        temp("kernel-monitor", "OOMKilling"),
        temp("kernel-monitor", "Ext4Error"),
        cond(
            "readonly-monitor",
            "FilesystemIsReadOnly",
            "ReadonlyFilesystem",
            True,
        ),
        temp("kernel-monitor", "KernelOops"),
        temp("kernel-monitor", "OOMKilling"),
        temp("kernel-monitor", "TaskHung"),
        cond("kernel-monitor", "DockerHung", "KernelDeadlock", True),
        temp("kernel-monitor", "MCEHardwareError"),
        temp("kernel-monitor", "TaskHung"),
        cond("kernel-monitor", "ContainerdHung", "KernelDeadlock", True),
        temp("kernel-monitor", "MCEHardwareError"),
    ]);
    let got = wait_events(&log, expected.len()).await;
    assert_eq!(summary(&got), expected);
    // Messages are the log lines (without the syslog and kernel stamps).
    assert_eq!(
        got[4].message,
        "INFO: task jbd2/sda1-8:312 blocked for more than 120 seconds."
    );
    assert_eq!(
        got[7].message,
        "EXT4-fs (sda1): Remounting filesystem read-only"
    );
    assert_eq!(got[7].severity, NodeEventSeverity::Warn);
    assert!(got[11].message.starts_with("INFO: task docker:2345"));
    assert_eq!(
        metrics::NODE_SOURCE_SKIPPED_LINES
            .with_label_values(&[&label])
            .get()
            - skipped_before,
        1
    );

    // Rotation: a last line for the old file, then a new file at the path, which is
    // read from its start.
    append(
        &path,
        &[&kern(
            "INFO: task kworker/0:1:77 blocked for more than 120 seconds.",
        )],
    );
    let rotated = dir.path().join("kern.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    append(&path, &[&kern("divide error: 0000 [#2] SMP PTI")]);
    // A writer that has not reopened yet still writes to the rotated file.
    append(
        &rotated,
        &[&kern(
            "EXT4-fs warning (device sda1): ext4_dx_add_entry:2461: large directory",
        )],
    );
    let got = wait_events(&log, expected.len() + 3).await;
    assert_eq!(summary(&got[..expected.len()]), expected);
    // The old file's lines come first; whether its late line is read before or after
    // the new file's depends on when the rotation was seen.
    assert_eq!(
        summary(&got[expected.len()..expected.len() + 1]),
        [temp("kernel-monitor", "TaskHung")]
    );
    let mut late = summary(&got[expected.len() + 1..]);
    late.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        late,
        [
            temp("kernel-monitor", "Ext4Warning"),
            temp("kernel-monitor", "KernelOops"),
        ]
    );
    expected = summary(&got);

    // copytruncate: the file is emptied and written again from 0.
    std::fs::write(&path, "").unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    append(&path, &[&kern("EXT4-fs error (device sdc1): x")]);
    expected.push(temp("kernel-monitor", "Ext4Error"));
    let got = wait_events(&log, expected.len()).await;
    assert_eq!(summary(&got), expected);

    running.shutdown_within(Duration::from_secs(3)).await;
}

/// A custom plugin monitor whose script exits with the code in a state file.
fn plugin_config(dir: &Path, state: &Path, interval: &str, timeout: &str, body: &str) -> PathBuf {
    let script = dir.join("check.sh");
    std::fs::write(&script, body).unwrap();
    let cfg = serde_json::json!({
        "plugin": "custom",
        "pluginConfig": {
            "invoke_interval": interval,
            "timeout": timeout,
            "max_output_length": 80,
            "concurrency": 1
        },
        "source": "disk-custom-plugin-monitor",
        "conditions": [
            {"type": "DiskProblem", "reason": "DiskIsOK", "message": "disk is fine"}
        ],
        "rules": [{
            "type": "permanent",
            "condition": "DiskProblem",
            "reason": "DiskIsBroken",
            "path": "/bin/sh",
            "args": [script.display().to_string(), state.display().to_string()]
        }]
    });
    let path = dir.join("disk-monitor.json");
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn custom_plugin_flips_a_condition_and_back() {
    use ConditionStatus::{False, True, Unknown};
    let (log, _guard) = common::temp_log().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::write(&state, "0").unwrap();
    let cfg_path = plugin_config(
        dir.path(),
        &state,
        "50ms",
        "2s",
        "code=$(cat \"$1\")\necho \"disk check says $code\"\nexit $code\n",
    );
    let mut cfg = config(None, false);
    cfg.monitor_configs = vec![cfg_path];
    let running = start(cfg, &log);
    let m = "disk-custom-plugin-monitor";

    // Start: the default condition; then OK runs change nothing.
    let mut expected = vec![cond(m, "DiskIsOK", "DiskProblem", False)];
    assert_eq!(summary(&wait_events(&log, 1).await), expected);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(events(&log).await.len(), 1);

    std::fs::write(&state, "1").unwrap();
    expected.push(cond(m, "DiskIsBroken", "DiskProblem", True));
    let got = wait_events(&log, expected.len()).await;
    assert_eq!(summary(&got), expected);
    assert_eq!(got[1].message, "disk check says 1");
    assert_eq!(got[1].severity, NodeEventSeverity::Warn);

    std::fs::write(&state, "2").unwrap();
    expected.push(cond(m, "DiskIsOK", "DiskProblem", Unknown));
    let got = wait_events(&log, expected.len()).await;
    assert_eq!(summary(&got), expected);
    assert_eq!(got[2].message, "disk check says 2");

    std::fs::write(&state, "0").unwrap();
    expected.push(cond(m, "DiskIsOK", "DiskProblem", False));
    let got = wait_events(&log, expected.len()).await;
    assert_eq!(summary(&got), expected);
    assert_eq!(got[3].message, "disk is fine");
    assert_eq!(got[3].severity, NodeEventSeverity::Info);

    running.shutdown_within(Duration::from_secs(3)).await;
}

#[tokio::test]
async fn health_checks_set_and_clear_their_conditions() {
    use ConditionStatus::{False, True};
    let (log, _guard) = common::temp_log().await;
    let dir = tempfile::tempdir().unwrap();

    // A kubelet healthz that answers 500 until told otherwise.
    let status = Arc::new(AtomicU16::new(500));
    let s = status.clone();
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let s = s.clone();
            async move {
                let code = axum::http::StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
                (code, "ok")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let socket = dir.path().join("containerd.sock");
    let mut cfg = config(None, false);
    cfg.health_checks.kubelet = Some(KubeletCheckConfig {
        url: format!("http://{addr}/healthz"),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
    });
    cfg.health_checks.container_runtime = Some(ContainerRuntimeCheckConfig {
        socket: Some(socket.clone()),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        ..ContainerRuntimeCheckConfig::default()
    });
    let unhealthy_before = metrics::NODE_HEALTH_CHECKS
        .with_label_values(&["kubelet", "unhealthy"])
        .get();
    let running = start(cfg, &log);

    // Both start cleared, then both fail: kubelet answers 500, no runtime socket.
    let got = wait_events(&log, 4).await;
    let s = summary(&got);
    let hc = "health-checker";
    assert_eq!(
        s[..2],
        [
            cond(hc, "KubeletIsHealthy", "KubeletUnhealthy", False),
            cond(
                hc,
                "ContainerRuntimeIsHealthy",
                "ContainerRuntimeUnhealthy",
                False
            ),
        ]
    );
    let mut rest = s[2..].to_vec();
    rest.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        rest,
        [
            cond(hc, "ContainerdUnhealthy", "ContainerRuntimeUnhealthy", True),
            cond(hc, "KubeletUnhealthy", "KubeletUnhealthy", True),
        ]
    );
    let kubelet_down = got.iter().find(|e| e.reason == "KubeletUnhealthy").unwrap();
    assert_eq!(
        kubelet_down.message,
        format!("GET http://{addr}/healthz: HTTP status 500")
    );
    assert_eq!(kubelet_down.severity, NodeEventSeverity::Warn);
    assert!(
        metrics::NODE_HEALTH_CHECKS
            .with_label_values(&["kubelet", "unhealthy"])
            .get()
            > unhealthy_before
    );

    // Recovery clears them, once each.
    status.store(200, Ordering::SeqCst);
    let got = wait_events(&log, 5).await;
    assert_eq!(
        summary(&got[4..]),
        [cond(hc, "KubeletIsHealthy", "KubeletUnhealthy", False)]
    );
    assert_eq!(
        got[4].message,
        "kubelet on the node is functioning properly"
    );
    let _runtime = tokio::net::UnixListener::bind(&socket).unwrap();
    let got = wait_events(&log, 6).await;
    assert_eq!(
        summary(&got[5..]),
        [cond(
            hc,
            "ContainerRuntimeIsHealthy",
            "ContainerRuntimeUnhealthy",
            False
        )]
    );

    running.shutdown_within(Duration::from_secs(3)).await;
    server.abort();
}

#[tokio::test]
async fn unreadable_kernel_log_is_retried_not_fatal() {
    let (log, _guard) = common::temp_log().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later").join("kern.log");
    let label = path.display().to_string();
    let running = start(config(Some(path.clone()), true), &log);
    assert_eq!(summary(&wait_events(&log, 4).await), initial_kernel());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Logged and counted once for the episode, not per retry.
    assert_eq!(
        metrics::NODE_SOURCE_ERRORS
            .with_label_values(&[&label, "open_failed"])
            .get(),
        1
    );
    assert_eq!(
        metrics::NODE_SOURCE_READABLE
            .with_label_values(&[&label])
            .get(),
        0
    );

    // A file that appears later is read from its start.
    std::fs::create_dir(dir.path().join("later")).unwrap();
    append(
        &path,
        &[&kern(
            "INFO: task kswapd0:98 blocked for more than 241 seconds.",
        )],
    );
    let mut expected = initial_kernel();
    expected.push(temp("kernel-monitor", "TaskHung"));
    assert_eq!(summary(&wait_events(&log, 5).await), expected);
    assert_eq!(
        metrics::NODE_SOURCE_READABLE
            .with_label_values(&[&label])
            .get(),
        1
    );
    running.shutdown_within(Duration::from_secs(3)).await;
}

#[tokio::test]
async fn filelog_monitor_follows_its_log_path() {
    let (log, _guard) = common::temp_log().await;
    let dir = tempfile::tempdir().unwrap();
    let app_log = dir.path().join("app.log");
    std::fs::write(&app_log, "").unwrap();
    // NPD's filelog format: the message is the last submatch of pluginConfig.message.
    let cfg = serde_json::json!({
        "plugin": "filelog",
        "pluginConfig": {
            "timestamp": "^.{15}",
            "message": "app\\[\\d+\\]: (.*)",
            "timestampFormat": "Jan _2 15:04:05"
        },
        "logPath": app_log.display().to_string(),
        "lookback": "5m",
        "bufferSize": 10,
        "source": "app-monitor",
        "conditions": [],
        "rules": [
            {"type": "temporary", "reason": "AppPanicked", "pattern": "panic: .*"}
        ]
    });
    let cfg_path = dir.path().join("app-monitor.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let mut c = config(None, false);
    c.monitor_configs = vec![cfg_path];
    let running = start(c, &log);
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(
        &app_log,
        &[
            "Nov 25 10:00:01 node-7 app[42]: starting",
            "Nov 25 10:00:02 node-7 app[42]: panic: runtime error: index out of range",
        ],
    );
    let got = wait_events(&log, 1).await;
    assert_eq!(summary(&got), [temp("app-monitor", "AppPanicked")]);
    assert_eq!(got[0].message, "panic: runtime error: index out of range");
    running.shutdown_within(Duration::from_secs(3)).await;
}

#[tokio::test]
async fn shutdown_stops_promptly_and_kills_running_plugins() {
    let (log, _guard) = common::temp_log().await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let cfg_path = plugin_config(
        dir.path(),
        &pid_file,
        "1m",
        "1m",
        "echo $$ > \"$1\"\nexec sleep 30\n",
    );
    let kernel = dir.path().join("kern.log");
    append(
        &kernel,
        &["Nov 25 10:00:00 node-7 kernel: [ 1.000000] booted"],
    );
    let mut cfg = config(Some(kernel), true);
    cfg.monitor_configs = vec![cfg_path];
    let running = start(cfg, &log);
    wait_events(&log, 5).await;
    let t0 = Instant::now();
    let pid = loop {
        if let Ok(s) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = s.trim().parse::<u32>()
        {
            break pid;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "plugin never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    running.shutdown_within(Duration::from_secs(2)).await;
    // The plugin is killed (gone, or a zombie until reaped).
    let t0 = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        if stat.is_empty() || state.starts_with('Z') {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "plugin {pid} still running: {stat}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn configuration_errors_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("kernel-monitor.json");
    std::fs::write(
        &bad,
        r#"{"plugin": "kmsg", "source": "mine", "rules": [{"type": "temporary", "reason": "X", "pattren": "x"}]}"#,
    )
    .unwrap();
    let mut cfg = config(None, false);
    cfg.monitor_configs = vec![bad.clone()];
    let err = NodeProblemsRunner::new(cfg).unwrap_err().to_string();
    assert!(err.contains("monitor_configs[0]"), "{err}");
    assert!(err.contains("rules[0].pattren"), "{err}");

    // NPD's own kernel-monitor on top of the defaults would report everything twice.
    std::fs::write(&bad, argus_ingest::node_problems::defaults::KERNEL_MONITOR).unwrap();
    let mut cfg = config(None, true);
    cfg.monitor_configs = vec![bad];
    let err = NodeProblemsRunner::new(cfg).unwrap_err().to_string();
    assert!(err.contains("\"kernel-monitor\""), "{err}");
    assert!(err.contains("defaults: false"), "{err}");

    let mut missing = config(Some(PathBuf::from("/x")), false);
    missing.monitor_configs = vec![dir.path().join("nope.json")];
    let err = missing.validate().unwrap_err().to_string();
    assert!(err.contains("nope.json"), "{err}");
}

/// Reads the real `/dev/kmsg` (the default kernel log). It writes one info line to the
/// kernel log, so it runs only with `ARGUS_TEST_KMSG=1` (as root).
#[tokio::test]
async fn dev_kmsg_records_reach_kmsg_monitors() {
    if std::env::var("ARGUS_TEST_KMSG").as_deref() != Ok("1") {
        eprintln!("skipped: set ARGUS_TEST_KMSG=1 (root) to write to and read /dev/kmsg");
        return;
    }
    let (log, _guard) = common::temp_log().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = serde_json::json!({
        "plugin": "kmsg",
        "logPath": "/dev/kmsg",
        "source": "selftest-monitor",
        "conditions": [],
        "rules": [{"type": "temporary", "reason": "ArgusSelfTest", "pattern": "argus-selftest: ping \\d+"}]
    });
    let cfg_path = dir.path().join("selftest.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let mut c = config(None, false);
    c.monitor_configs = vec![cfg_path];
    let running = start(c, &log);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let nonce = std::process::id();
    std::fs::write("/dev/kmsg", format!("<6>argus-selftest: ping {nonce}\n")).unwrap();
    let got = wait_events(&log, 1).await;
    assert_eq!(summary(&got), [temp("selftest-monitor", "ArgusSelfTest")]);
    assert_eq!(got[0].message, format!("argus-selftest: ping {nonce}"));
    // The record's since-boot stamp became wall time.
    let rec = &log.read(topics::NODE_EVENTS, 0, 0, 10).await.unwrap()[0];
    let env = argus_schemas::decode(&rec.value).unwrap();
    let skew = (env.event_time.0 - argus_schemas::Timestamp::now().0).abs();
    assert!(
        skew < 10_000_000_000,
        "event time {:?} is {skew} ns off",
        env.event_time
    );
    running.shutdown_within(Duration::from_secs(3)).await;
}
