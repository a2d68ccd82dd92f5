//! Node problem monitors: realistic kernel logs through the shipped NPD-format defaults,
//! the events NPD's semantics produce, configuration errors, and custom plugins.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argus_ingest::node_problems::{
    self, CustomPluginMonitor, KmsgSource, LineClock, LineSource, LogMonitor, LogSource,
    NodeProblem, PluginStatus, defaults, parse_custom_plugin_config, parse_log_monitor_config,
    parse_monitor_config, run_plugin,
};
use argus_schemas::{ConditionStatus, NodeEventSeverity, ProblemKind, Timestamp};
use chrono::FixedOffset;

const BOOT: Timestamp = Timestamp(1_700_000_000_000_000_000);
const START: Timestamp = Timestamp(1_700_000_900_000_000_000);
const NODE: &str = "node-7";

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/node_problems")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn clock() -> LineClock {
    LineClock {
        boot_time: BOOT,
        year: 2025,
        utc_offset: FixedOffset::east_opt(0).unwrap(),
    }
}

/// (reason, kind, condition type and status) of one event.
type Summary = (String, ProblemKind, Option<(String, ConditionStatus)>);

/// The [`Summary`] of each event.
fn summary(events: &[NodeProblem]) -> Vec<Summary> {
    events
        .iter()
        .map(|p| {
            (
                p.event.reason.clone(),
                p.event.kind,
                p.event
                    .condition
                    .as_ref()
                    .map(|c| (c.condition_type.clone(), c.status)),
            )
        })
        .collect()
}

fn temp(reason: &str) -> Summary {
    (reason.to_string(), ProblemKind::Temporary, None)
}

fn perm(reason: &str, cond: &str, status: ConditionStatus) -> Summary {
    (
        reason.to_string(),
        ProblemKind::Permanent,
        Some((cond.to_string(), status)),
    )
}

fn kernel_monitor() -> LogMonitor {
    LogMonitor::new(defaults::kernel_monitor().unwrap(), NODE)
}

fn run(monitor: &mut LogMonitor, src: &mut dyn LogSource) -> Vec<NodeProblem> {
    monitor.observe_all(src).unwrap()
}

#[test]
fn start_emits_the_default_conditions_as_false() {
    let mut m = kernel_monitor();
    let start = m.start(START);
    assert_eq!(
        summary(&start),
        vec![
            perm(
                "KernelHasNoDeadlock",
                "KernelDeadlock",
                ConditionStatus::False
            ),
            perm("XfsHasNotShutDown", "XfsShutdown", ConditionStatus::False),
            perm(
                "CperHardwareHasNoFatalError",
                "CperHardwareErrorFatal",
                ConditionStatus::False
            ),
        ]
    );
    for p in &start {
        assert_eq!(p.event.node, NODE);
        assert_eq!(p.event.monitor, "kernel-monitor");
        assert_eq!(p.event.severity, NodeEventSeverity::Info);
        assert_eq!(p.event_time, START);
        assert_eq!(p.event.condition.as_ref().unwrap().transition, START);
    }
    assert_eq!(start[0].event.message, "kernel has no deadlock");

    let mut ro = LogMonitor::new(defaults::readonly_monitor().unwrap(), NODE);
    assert_eq!(
        summary(&ro.start(START)),
        vec![perm(
            "FilesystemIsNotReadOnly",
            "ReadonlyFilesystem",
            ConditionStatus::False
        )]
    );
}

#[test]
fn kmsg_5x_oom_hung_task_io_and_ext4_errors() {
    let mut m = kernel_monitor();
    m.start(START);
    let mut src = KmsgSource::new(Cursor::new(fixture("kmsg-5x.txt")), BOOT);
    let events = run(&mut m, &mut src);
    assert_eq!(src.skipped(), 0);
    assert_eq!(
        summary(&events),
        vec![
            temp("OOMKilling"),
            temp("TaskHung"),
            temp("IOError"),
            temp("IOError"),
            temp("Ext4Error"),
            temp("Ext4Error"),
        ]
    );
    let oom = &events[0];
    assert_eq!(
        oom.event.message,
        "Memory cgroup out of memory: Killed process 21877 (java) total-vm:5383848kB, \
         anon-rss:1039612kB, file-rss:22472kB, shmem-rss:0kB, UID:1000 pgtables:2748kB \
         oom_score_adj:936"
    );
    assert_eq!(oom.event_time, Timestamp(BOOT.0 + 8_123_461_000 * 1_000));
    assert_eq!(oom.event.severity, NodeEventSeverity::Warn);
    assert_eq!(oom.event.monitor, "kernel-monitor");
    assert_eq!(
        events[1].event.message,
        "INFO: task jbd2/nvme0n1p1-:412 blocked for more than 120 seconds."
    );
    // The dictionary lines are not part of the message.
    assert_eq!(
        events[2].event.message,
        "blk_update_request: I/O error, dev nvme1n1, sector 2048 op 0x1:(WRITE) flags 0x800 \
         phys_seg 1 prio class 0"
    );
    // No temporary rule leaves a condition behind.
    assert!(
        m.conditions()
            .iter()
            .all(|c| c.status == ConditionStatus::False)
    );
}

#[test]
fn read_only_remount_sets_the_condition_once() {
    let mut m = LogMonitor::new(defaults::readonly_monitor().unwrap(), NODE);
    m.start(START);
    let mut src = KmsgSource::new(Cursor::new(fixture("kmsg-5x.txt")), BOOT);
    let events = run(&mut m, &mut src);
    assert_eq!(
        summary(&events),
        vec![perm(
            "FilesystemIsReadOnly",
            "ReadonlyFilesystem",
            ConditionStatus::True
        )]
    );
    let e = &events[0];
    assert_eq!(
        e.event.message,
        "EXT4-fs (nvme1n1): Remounting filesystem read-only"
    );
    assert_eq!(e.event.monitor, "readonly-monitor");
    assert_eq!(e.event.severity, NodeEventSeverity::Warn);
    let t = Timestamp(BOOT.0 + 8_300_000_600 * 1_000);
    assert_eq!(e.event_time, t);
    assert_eq!(e.event.condition.as_ref().unwrap().transition, t);
    assert_eq!(m.conditions()[0].status, ConditionStatus::True);
    assert_eq!(m.conditions()[0].reason, "FilesystemIsReadOnly");
    // A restart clears it again, as NPD's do.
    m.start(START);
    assert_eq!(m.conditions()[0].status, ConditionStatus::False);
}

#[test]
fn syslog_6x_oom_oops_xfs_and_hardware_errors() {
    let mut m = kernel_monitor();
    m.start(START);
    let mut src = LineSource::new(Cursor::new(fixture("kern-6x.log")), clock());
    let events = run(&mut m, &mut src);
    assert_eq!(src.skipped(), 0);
    assert_eq!(
        summary(&events),
        vec![
            temp("OOMKilling"),
            temp("KernelOops"),
            temp("XfsError"),
            temp("XfsError"),
            temp("XfsError"),
            perm("XfsHasShutdown", "XfsShutdown", ConditionStatus::True),
            temp("MCEHardwareError"),
            temp("CperHardwareErrorCorrected"),
        ]
    );
    assert!(
        events[0]
            .event
            .message
            .starts_with("Out of memory: Killed process 48211 (stress) total-vm:1055464kB")
    );
    // Mar  3 14:22:01 2025 UTC.
    assert_eq!(events[0].event_time, Timestamp(1_741_011_721_000_000_000));
    assert_eq!(
        events[1].event.message,
        "BUG: kernel NULL pointer dereference, address: 0000000000000008"
    );
    assert!(
        events[2]
            .event
            .message
            .starts_with("XFS (sdb1): metadata I/O error in")
    );
    let xfs = m
        .conditions()
        .iter()
        .find(|c| c.condition_type == "XfsShutdown")
        .unwrap();
    assert_eq!(
        (xfs.status, xfs.reason.as_str()),
        (ConditionStatus::True, "XfsHasShutdown")
    );
}

#[test]
fn dmesg_docker_hung_task_sets_kernel_deadlock_once() {
    let mut m = kernel_monitor();
    m.start(START);
    let mut src = LineSource::new(Cursor::new(fixture("dmesg-docker-hung.txt")), clock());
    let events = run(&mut m, &mut src);
    assert_eq!(src.skipped(), 0);
    assert_eq!(
        summary(&events),
        vec![
            // The hung-task line matches both the generic temporary rule and DockerHung.
            temp("TaskHung"),
            perm("DockerHung", "KernelDeadlock", ConditionStatus::True),
            // The second report: the condition already holds with that reason.
            temp("TaskHung"),
            temp("KernelOops"),
            temp("KernelOops"),
            temp("UnregisterNetDevice"),
        ]
    );
    assert_eq!(
        events[1].event.message,
        "INFO: task docker:2207 blocked for more than 120 seconds."
    );
    assert_eq!(events[1].event_time, Timestamp(BOOT.0 + 4_802_551_102_000));
}

#[test]
fn multi_line_patterns_match_across_the_window() {
    let cfg = parse_log_monitor_config(
        "hung.json",
        r#"{
          "plugin": "kmsg", "source": "hung-monitor", "bufferSize": 3,
          "conditions": [],
          "rules": [
            {"type": "temporary", "reason": "TaskHungTainted",
             "pattern": "task \\S+:\\d+ blocked for more than \\d+ seconds\\.\\n\\s*Tainted: .*"},
            {"type": "temporary", "reason": "TooFar",
             "pattern": "task \\S+:\\d+ blocked for more than \\d+ seconds\\.\\n.*\\n.*\\n.*"}
          ]
        }"#,
    )
    .unwrap();
    assert_eq!(cfg.buffer_size, 3);
    let mut m = LogMonitor::new(cfg, NODE);
    let log = "6,1,1000,-;INFO: task kworker/2:1:77 blocked for more than 122 seconds.\n\
               6,2,2000,-;      Tainted: G        W          6.1.0 #1\n\
               6,3,3000,-;Call Trace:\n\
               6,4,4000,-; <TASK>\n";
    let events = run(&mut m, &mut KmsgSource::new(Cursor::new(log), BOOT));
    // "TooFar" would need 4 lines in a window of 3.
    assert_eq!(summary(&events), vec![temp("TaskHungTainted")]);
    assert_eq!(
        events[0].event.message,
        "INFO: task kworker/2:1:77 blocked for more than 122 seconds.\nTainted: G        W          6.1.0 #1"
    );
    // The first line covered gives the time.
    assert_eq!(events[0].event_time, Timestamp(BOOT.0 + 1_000_000));
}

#[test]
fn kmsg_records_with_continuation_lines() {
    let log = "6,339,5140900,-;NET: Registered protocol family 10\n\
               3,340,5141000,-;usb 1-1: device descriptor read/64, error -71\n SUBSYSTEM=usb\n DEVICE=c189:1\n\
               garbage without a header\n\
               4,341,5142000,-,caller=T12;   padded message   \n\
               6,342,5143000,-;\n\
               6,343,5144000,c;last one\n SUBSYSTEM=net";
    let mut src = KmsgSource::new(Cursor::new(log), BOOT);
    let r = src.next_kmsg().unwrap().unwrap();
    assert_eq!((r.sequence, r.timestamp_us), (339, 5_140_900));
    assert!(r.dictionary.is_empty());
    let r = src.next_kmsg().unwrap().unwrap();
    assert_eq!(r.priority, 3);
    assert_eq!(r.message, "usb 1-1: device descriptor read/64, error -71");
    assert_eq!(r.dictionary, vec!["SUBSYSTEM=usb", "DEVICE=c189:1"]);

    let mut src = KmsgSource::new(Cursor::new(log), BOOT);
    let mut got = Vec::new();
    while let Some(r) = src.next_record().unwrap() {
        got.push(r);
    }
    let messages: Vec<&str> = got.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "NET: Registered protocol family 10",
            "usb 1-1: device descriptor read/64, error -71",
            "padded message",
            "last one",
        ]
    );
    assert_eq!(got[0].timestamp, Timestamp(BOOT.0 + 5_140_900_000));
    assert_eq!(src.skipped(), 1);
}

#[test]
fn syslog_and_dmesg_lines() {
    let src = LineSource::new(Cursor::new(""), clock());
    let r = src
        .parse_line("Nov 25 10:00:00 host kernel: [12345.678901] EXT4-fs warning (device sda1): x")
        .unwrap();
    assert_eq!(r.message, "EXT4-fs warning (device sda1): x");
    assert_eq!(r.timestamp, Timestamp(1_764_064_800_000_000_000));
    let r = src.parse_line("[12345.678901] hello").unwrap();
    assert_eq!(r.message, "hello");
    assert_eq!(r.timestamp, Timestamp(BOOT.0 + 12_345_678_901_000));
    let r = src
        .parse_line("2025-11-25T10:00:00.250000+01:00 host kernel: [    1.000000] hi")
        .unwrap();
    assert_eq!(r.message, "hi");
    assert_eq!(r.timestamp, Timestamp(1_764_061_200_250_000_000));
    let r = src
        .parse_line("Nov  5 01:02:03 host dockerd[812]: level=error msg=\"boom\"")
        .unwrap();
    assert_eq!(r.message, "level=error msg=\"boom\"");
    assert!(src.parse_line("not a log line").is_none());

    // A filelog configuration's own message regex (NPD's kernel-monitor-filelog.json).
    let cfg = parse_log_monitor_config(
        "kernel-monitor-filelog.json",
        r#"{"plugin": "filelog",
            "pluginConfig": {"timestamp": "^.{15}", "message": "kernel: \\[.*\\] (.*)",
                             "timestampFormat": "Jan _2 15:04:05"},
            "logPath": "/var/log/kern.log", "lookback": "5m", "bufferSize": 10,
            "source": "kernel-monitor", "conditions": [], "rules": []}"#,
    )
    .unwrap();
    let src = cfg.line_source(Cursor::new(""), clock());
    let r = src
        .parse_line("Nov 25 10:00:00 host kernel: [12345.678901] via regex")
        .unwrap();
    assert_eq!(r.message, "via regex");
    assert!(
        src.parse_line("Nov 25 10:00:00 host sshd[1]: no kernel")
            .is_none()
    );
}

#[test]
fn skip_list_and_message_suffix() {
    let cfg = parse_log_monitor_config(
        "x.json",
        r#"{"plugin": "kmsg", "source": "m", "skipList": ["audit:"],
            "rules": [{"type": "temporary", "reason": "Boom", "pattern": ".*boom.*",
                       "patternGeneratedMessageSuffix": "see runbook"}]}"#,
    )
    .unwrap();
    let mut m = LogMonitor::new(cfg, NODE);
    let log = "6,1,1,-;audit: boom\n6,2,2,-;kaboom\n";
    let events = run(&mut m, &mut KmsgSource::new(Cursor::new(log), BOOT));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.message, "kaboom; see runbook");
}

#[test]
fn events_become_envelopes() {
    let mut m = kernel_monitor();
    let mut all = m.start(START);
    all.extend(run(
        &mut m,
        &mut LineSource::new(Cursor::new(fixture("dmesg-docker-hung.txt")), clock()),
    ));
    let envs = node_problems::to_envelopes(&all, "default");
    assert_eq!(envs.len(), all.len());
    for (env, p) in envs.iter().zip(&all) {
        assert_eq!(env.source, "kernel-monitor");
        assert_eq!(env.event_time, p.event_time);
        assert_eq!(env.key, NODE);
        let back = argus_schemas::decode(&argus_schemas::encode(env)).unwrap();
        assert_eq!(back.payload, env.payload);
    }
}

fn config_error(json: &str) -> String {
    match parse_monitor_config("kernel-monitor.json", json) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_configurations_are_reported_with_file_and_path() {
    let base = |rules: &str| {
        format!(
            r#"{{"plugin": "kmsg", "source": "kernel-monitor",
                "conditions": [{{"type": "KernelDeadlock", "reason": "KernelHasNoDeadlock",
                                 "message": "kernel has no deadlock"}}],
                "rules": [{rules}]}}"#
        )
    };
    let ok = r#"{"type": "temporary", "reason": "A", "pattern": "a"}"#;
    let e = config_error(&base(&format!(
        r#"{ok}, {ok}, {ok}, {{"type": "temporary", "reason": "B", "pattern": "unclosed (group"}}"#
    )));
    assert!(
        e.starts_with("kernel-monitor.json: rules[3].pattern: invalid regex: "),
        "{e}"
    );
    let e = config_error(&base(
        r#"{"type": "temporary", "reason": "A", "pattren": "a"}"#,
    ));
    assert_eq!(
        e,
        "kernel-monitor.json: rules[0].pattren: unknown field \"pattren\"; did you mean \"pattern\"?"
    );
    let e = config_error(&base(r#"{"type": "temp", "reason": "A", "pattern": "a"}"#));
    assert_eq!(
        e,
        "kernel-monitor.json: rules[0].type: \"temp\" is neither \"temporary\" nor \"permanent\""
    );
    let e = config_error(&base(
        r#"{"type": "permanent", "condition": "ReadonlyFilesystem", "reason": "A", "pattern": "a"}"#,
    ));
    assert!(e.starts_with("kernel-monitor.json: rules[0].condition: \"ReadonlyFilesystem\" is not one of conditions[]"), "{e}");
    let e = config_error(r#"{"plugin": "kmsg", "source": "k", "lookback": "5 minutes"}"#);
    assert!(
        e.starts_with("kernel-monitor.json: lookback: \"5 minutes\" is not a duration"),
        "{e}"
    );
    let e = config_error(r#"{"plugin": "kmsg", "source": "k", "buffersize": 5}"#);
    assert!(e.contains("buffersize: unknown field"), "{e}");
    let e = config_error(r#"{"plugin": "kmsg", "source": "k", "bufferSize": "10"}"#);
    assert_eq!(e, "kernel-monitor.json: bufferSize: must be a number");
    let e = config_error(r#"{"plugin": "syslog", "source": "k"}"#);
    assert!(
        e.starts_with("kernel-monitor.json: plugin: unknown log plugin \"syslog\""),
        "{e}"
    );
    let e = config_error(r#"{"plugin": "kmsg"}"#);
    assert_eq!(e, "kernel-monitor.json: source: missing");
    let e = config_error(r#"{"plugin": "filelog", "source": "k"}"#);
    assert_eq!(
        e,
        "kernel-monitor.json: pluginConfig.timestamp: required by the filelog plugin"
    );
    let e = config_error("{\"plugin\": \"kmsg\",");
    assert!(
        e.starts_with("kernel-monitor.json: not valid JSON: "),
        "{e}"
    );
    let e = config_error(
        r#"{"plugin": "custom", "source": "c", "pluginConfig": {"timeout": "1s"},
            "rules": [{"type": "temporary", "reason": "R", "path": "/bin/true", "timeout": "2s"}]}"#,
    );
    assert!(
        e.starts_with(
            "kernel-monitor.json: rules[0].timeout: 2s is longer than the global timeout"
        ),
        "{e}"
    );

    // Fields NPD added that this parser does not read are fine.
    let cfg = parse_log_monitor_config(
        "kernel-monitor.json",
        &base(
            r#"{"type": "temporary", "reason": "A", "pattern": "a", "someFutureNpdOption": true}"#,
        )
        .replace(
            "\"plugin\"",
            "\"experimentalThing\": {\"x\": 1}, \"plugin\"",
        ),
    )
    .unwrap();
    assert_eq!(cfg.buffer_size, 10);
    assert_eq!(cfg.lookback, Duration::ZERO);
    assert!(cfg.metrics_reporting);
}

// ---- custom plugins ----

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    p
}

/// Runs a script through /bin/sh (executing a file just written from a multi-threaded
/// test process can fail with ETXTBSY).
async fn run_script(path: &Path, timeout: Duration) -> node_problems::PluginResult {
    run_plugin(
        "/bin/sh",
        &[path.to_string_lossy().into_owned()],
        timeout,
        80,
    )
    .await
}

#[tokio::test]
async fn plugin_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let ok = script(dir.path(), "ok.sh", "echo '  NTP is synced  '; exit 0");
    let nonok = script(dir.path(), "nonok.sh", "echo 'NTP is down'; exit 1");
    let two = script(dir.path(), "unknown.sh", "echo 'cannot tell'; exit 2");
    let three = script(dir.path(), "three.sh", "exit 3");
    let long = script(
        dir.path(),
        "long.sh",
        "printf 'x%.0s' $(seq 1 200); echo >&2 err",
    );
    let t = Duration::from_secs(5);

    let r = run_script(&ok, t).await;
    assert_eq!(
        (r.status, r.output.as_str()),
        (PluginStatus::Ok, "NTP is synced")
    );
    let r = run_script(&nonok, t).await;
    assert_eq!(
        (r.status, r.output.as_str()),
        (PluginStatus::NonOk, "NTP is down")
    );
    let r = run_script(&two, t).await;
    assert_eq!(
        (r.status, r.output.as_str()),
        (PluginStatus::Unknown, "cannot tell")
    );
    assert_eq!(run_script(&three, t).await.status, PluginStatus::Unknown);
    let r = run_script(&long, t).await;
    assert_eq!(r.status, PluginStatus::Ok);
    assert_eq!(r.output, "x".repeat(80));

    let r = run_plugin("/nonexistent/check.sh", &[], t, 80).await;
    assert_eq!(r.status, PluginStatus::Unknown);
}

#[tokio::test]
async fn plugin_timeout_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    // The sleeping child holds stdout: only killing the group ends the run promptly.
    let slow = script(dir.path(), "slow.sh", "echo started; sleep 30; echo never");
    let began = Instant::now();
    let r = run_plugin(
        "/bin/sh",
        &[slow.to_string_lossy().into_owned()],
        Duration::from_millis(300),
        200,
    )
    .await;
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(r.status, PluginStatus::Unknown);
    assert_eq!(
        r.output,
        "Timeout when running plugin \"/bin/sh\": state - signal: killed. output - \"started\""
    );
}

#[tokio::test]
async fn custom_plugin_monitor_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("exit-code");
    let check = script(
        dir.path(),
        "check_ntp.sh",
        &format!(
            "code=$(cat {}); echo \"ntp check $code\"; exit $code",
            state.display()
        ),
    );
    let json = format!(
        r#"{{
          "plugin": "custom",
          "pluginConfig": {{"invoke_interval": "30s", "timeout": "5s", "max_output_length": 80,
                            "concurrency": 3, "enable_message_change_based_condition_update": false}},
          "source": "ntp-custom-plugin-monitor",
          "metricsReporting": true,
          "conditions": [{{"type": "NTPProblem", "reason": "NTPIsUp", "message": "ntp service is up"}}],
          "rules": [
            {{"type": "temporary", "reason": "NTPIsDown", "path": "/bin/sh", "args": ["{p}"], "timeout": "3s"}},
            {{"type": "permanent", "condition": "NTPProblem", "reason": "NTPIsDown",
              "path": "/bin/sh", "args": ["{p}"], "timeout": "3s"}}
          ]
        }}"#,
        p = check.display()
    );
    let cfg = parse_custom_plugin_config("custom-plugin-monitor.json", &json).unwrap();
    assert_eq!(cfg.invoke_interval, Duration::from_secs(30));
    assert_eq!(cfg.rule_timeout(&cfg.rules[0]), Duration::from_secs(3));
    let mut m = CustomPluginMonitor::new(cfg, NODE);
    let start = m.start(START);
    assert_eq!(
        summary(&start),
        vec![perm("NTPIsUp", "NTPProblem", ConditionStatus::False)]
    );

    let step = |code: &str| {
        std::fs::write(&state, code).unwrap();
    };
    step("0");
    assert!(m.run_once().await.is_empty());
    step("1");
    let ev = m.run_once().await;
    assert_eq!(
        summary(&ev),
        vec![
            temp("NTPIsDown"),
            perm("NTPIsDown", "NTPProblem", ConditionStatus::True)
        ]
    );
    assert_eq!(ev[1].event.message, "ntp check 1");
    assert_eq!(ev[1].event.severity, NodeEventSeverity::Warn);
    // Still down: the temporary rule reports again, the condition does not change.
    let ev = m.run_once().await;
    assert_eq!(summary(&ev), vec![temp("NTPIsDown")]);
    step("0");
    let ev = m.run_once().await;
    assert_eq!(
        summary(&ev),
        vec![perm("NTPIsUp", "NTPProblem", ConditionStatus::False)]
    );
    assert_eq!(ev[0].event.message, "ntp service is up");
    assert_eq!(ev[0].event.severity, NodeEventSeverity::Info);
    step("2");
    let ev = m.run_once().await;
    assert_eq!(
        summary(&ev),
        vec![
            temp("NTPIsDown"),
            perm("NTPIsUp", "NTPProblem", ConditionStatus::Unknown)
        ]
    );
    assert_eq!(ev[1].event.message, "ntp check 2");
    assert_eq!(m.conditions()[0].status, ConditionStatus::Unknown);
}

#[test]
fn custom_plugin_config_defaults_and_skip_initial_status() {
    let cfg = parse_custom_plugin_config(
        "c.json",
        r#"{"plugin": "custom", "source": "c", "pluginConfig": {"skip_initial_status": true},
            "conditions": [{"type": "C", "reason": "Fine", "message": "fine"}],
            "rules": [{"type": "permanent", "condition": "C", "reason": "Bad", "path": "/bin/false",
                       "invoke_interval": "1m"}]}"#,
    )
    .unwrap();
    assert_eq!(cfg.timeout, Duration::from_secs(5));
    assert_eq!(cfg.max_output_length, 80);
    assert_eq!(cfg.concurrency, 3);
    assert_eq!(cfg.rule_interval(&cfg.rules[0]), Duration::from_secs(60));
    let mut m = CustomPluginMonitor::new(cfg, NODE);
    assert!(m.start(START).is_empty());
    assert_eq!(m.conditions()[0].status, ConditionStatus::False);
}
