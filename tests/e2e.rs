//! End-to-end tests of the `argus` binary on the embedded default.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;
use common::{get_json, signal, start};

fn log_event(id: u32) -> serde_json::Value {
    serde_json::json!({
        "type": "log_entry",
        "tenant": "team-a",
        "payload": {"labels": {"app": "e2e", "shard": (id % 4).to_string()}, "timestamp": id as i64, "line": format!("id={id}")}
    })
}

/// Every `log_entry` id in the logs topic, with how many times it appears.
async fn ids_on_log(client: &reqwest::Client, url: &str) -> HashMap<u32, usize> {
    let mut seen = HashMap::new();
    let topics = get_json(client, format!("{url}/api/v1/topics")).await;
    let parts = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "argus.logs")
        .unwrap()["partitions"]
        .as_array()
        .unwrap()
        .len();
    for p in 0..parts {
        let mut offset = 0;
        loop {
            let page = get_json(client, format!("{url}/api/v1/topics/argus.logs/records?partition={p}&offset={offset}&limit=5000")).await;
            let recs = page["records"].as_array().unwrap();
            if recs.is_empty() {
                break;
            }
            for r in recs {
                let line = r["value"]["payload"]["line"].as_str().unwrap();
                let id: u32 = line.strip_prefix("id=").unwrap().parse().unwrap();
                *seen.entry(id).or_default() += 1;
            }
            offset = page["next_offset"].as_i64().unwrap();
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut argus = start(dir.path(), &[]);
    let client = reqwest::Client::new();
    // Four writers post batches of 25 until the process dies under them.
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let (client, url) = (client.clone(), argus.url.clone());
        writers.push(tokio::spawn(async move {
            let (mut acked, mut sent): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
            for b in 0u32.. {
                let ids: Vec<u32> = (0..25).map(|i| w * 10_000_000 + b * 25 + i).collect();
                let body: Vec<_> = ids.iter().map(|i| log_event(*i)).collect();
                sent.extend(&ids);
                match client
                    .post(format!("{url}/api/v1/events"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 204 => acked.extend(ids),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break,
                }
            }
            (acked, sent)
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    signal(&argus.child, libc::SIGKILL);
    argus.child.wait().unwrap();
    let mut acked = HashSet::new();
    let mut sent = HashSet::new();
    for w in writers {
        let (a, s) = w.await.unwrap();
        acked.extend(a);
        sent.extend(s);
    }
    assert!(
        acked.len() >= 500,
        "only {} records acknowledged before the kill",
        acked.len()
    );

    let mut argus = start(dir.path(), &[]);
    let seen = ids_on_log(&client, &argus.url).await;
    let lost: Vec<_> = acked.iter().filter(|i| !seen.contains_key(i)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records stored twice: {twice:?}");
    assert!(seen.keys().all(|i| sent.contains(i)), "records nobody sent");
    eprintln!(
        "acknowledged {}, stored {} (sent {})",
        acked.len(),
        seen.len(),
        sent.len()
    );
    signal(&argus.child, libc::SIGKILL);
    argus.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut argus = start(dir.path(), &["--log-format", "json"]);
    let client = reqwest::Client::new();
    let body: Vec<_> = (0..100).map(log_event).collect();
    let r = client
        .post(format!("{}/api/v1/events", argus.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    signal(&argus.child, libc::SIGTERM);
    let status = argus.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut argus = start(dir.path(), &[]);
    let seen = ids_on_log(&client, &argus.url).await;
    assert_eq!(seen.len(), 100);
    signal(&argus.child, libc::SIGTERM);
    assert!(argus.child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut argus = start(dir.path(), &[]);
    let c = reqwest::Client::new();
    let u = &argus.url;
    assert_eq!(
        c.get(format!("{u}/ready")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(format!("{u}/-/healthy"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A batch with one bad event is refused whole, with the event and the reason named.
    let mut body: Vec<_> = (0..3).map(log_event).collect();
    body[1]["payload"]["line"] = 7.into();
    let r = c
        .post(format!("{u}/api/v1/events"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("1 of 3 events are invalid; nothing was written"),
        "{text}"
    );
    assert!(
        text.contains("event 1: log_entry payload: invalid type: integer `7`, expected a string"),
        "{text}"
    );
    let r = c
        .post(format!("{u}/api/v1/events"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("line 1: not JSON"));
    let r = c
        .post(format!("{u}/api/v1/events"))
        .header("X-Scope-OrgID", "bad/tenant")
        .json(&body[..1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        ids_on_log(&c, u).await.is_empty(),
        "nothing written by refused requests"
    );

    // NDJSON works too.
    let nd = format!("{}\n{}\n", log_event(10), log_event(11));
    assert_eq!(
        c.post(format!("{u}/api/v1/events"))
            .body(nd)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    let m = c
        .get(format!("{u}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |needle: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle} in /metrics:\n{m}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // One bad event in the first batch, one line that is not JSON in the second.
    assert_eq!(
        value("argus_ingest_rejected_total{collector=\"events-api\",reason=\"invalid_event\"}"),
        2.0
    );
    assert_eq!(
        value("argus_ingest_rejected_total{collector=\"events-api\",reason=\"tenant\"}"),
        1.0
    );
    assert_eq!(
        value("argus_bus_records_produced_total{backend=\"embedded\",topic=\"argus.logs\"}"),
        2.0
    );
    assert_eq!(
        value("argus_ingest_records_received_total{collector=\"events-api\",type=\"log_entry\"}"),
        2.0
    );
    signal(&argus.child, libc::SIGTERM);
    assert!(argus.child.wait().unwrap().success());
}

#[test]
fn bad_config_names_key_and_line_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("argus.yaml");
    std::fs::write(
        &f,
        "listen: 127.0.0.1:0\nbus:\n  embedded:\n    partitionz: 2\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["run", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("argus.yaml:4:5: bus.embedded: unknown field `partitionz`"),
        "{err}"
    );
}

#[test]
fn example_configs_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in [
        "deploy/argus-embedded.yaml",
        "deploy/argus-distributed.yaml",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_argus"))
            .arg("check-config")
            .arg(root.join(f))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_push_is_served_by_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let argus = start(dir.path(), &[]);
    let c = reqwest::Client::new();
    let body = serde_json::json!({"streams": [{"stream": {"app": "e2e"}, "values": [["1700000000000000000", "id=7"], ["1700000000000000001", "id=8"]]}]});
    let r = c
        .post(format!("{}/loki/api/v1/push", argus.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let seen = ids_on_log(&c, &argus.url).await;
    assert_eq!(
        seen.keys()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [7, 8].into()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_is_served_by_the_binary() {
    use argus_ingest::remote_write::proto;
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let argus = start(dir.path(), &[]);
    let req = proto::WriteRequest {
        timeseries: vec![proto::TimeSeries {
            labels: vec![
                proto::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                },
                proto::Label {
                    name: "job".into(),
                    value: "node".into(),
                },
            ],
            samples: vec![proto::Sample {
                value: 1.0,
                timestamp: 1_700_000_000_000,
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/api/v1/write", argus.url))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let page = get_json(
        &c,
        format!(
            "{}/api/v1/topics/argus.metrics/records?partition=0&offset=0",
            argus.url
        ),
    )
    .await;
    let rec = &page["records"][0]["value"];
    assert_eq!(rec["type"], "metric_samples");
    assert_eq!(
        rec["payload"]["labels"],
        serde_json::json!({"__name__": "up", "job": "node"})
    );
    assert_eq!(
        rec["payload"]["samples"][0]["timestamp_ms"],
        1_700_000_000_000i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_from_config_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("argus.yaml");
    std::fs::write(
        &cfg,
        format!("ingest:\n  syslog:\n    udp: 127.0.0.1:{port}\n    batch_wait: 10ms\n"),
    )
    .unwrap();
    let argus = start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(
        b"<14>1 2026-11-25T10:00:00.5Z web01 nginx 42 - - id=9",
        ("127.0.0.1", port),
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let mut seen = HashMap::new();
    for _ in 0..50 {
        seen = ids_on_log(&c, &argus.url).await;
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, HashMap::from([(9, 1)]));
    let page = get_json(
        &c,
        format!(
            "{}/api/v1/topics/argus.logs/records?partition=0&offset=0",
            argus.url
        ),
    )
    .await;
    let labels = &page["records"][0]["value"]["payload"]["labels"];
    assert_eq!(labels["host"], "web01");
    assert_eq!(labels["app"], "nginx");
    assert_eq!(labels["severity"], "info");
    assert_eq!(labels["facility"], "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailed_file_survives_restart_without_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let file = logs.join("app.log");
    std::fs::write(&file, "id=1\nid=2\n").unwrap();
    let cfg = dir.path().join("argus.yaml");
    std::fs::write(
        &cfg,
        format!("ingest:\n  tail:\n    paths: [\"{}/*.log\"]\n    labels: {{job: app}}\n    poll_interval: 50ms\n", logs.display()),
    )
    .unwrap();
    let data = dir.path().join("data");
    let c = reqwest::Client::new();
    let wait_for = |n: usize, url: String| {
        let c = c.clone();
        async move {
            let mut seen = HashMap::new();
            for _ in 0..100 {
                seen = ids_on_log(&c, &url).await;
                if seen.len() >= n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        }
    };
    let mut argus = start(&data, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(
        wait_for(2, argus.url.clone()).await,
        HashMap::from([(1, 1), (2, 1)])
    );
    signal(&argus.child, libc::SIGTERM);
    assert!(argus.child.wait().unwrap().success());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"id=3\n")
        .unwrap();
    let argus = start(&data, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(
        wait_for(3, argus.url.clone()).await,
        HashMap::from([(1, 1), (2, 1), (3, 1)])
    );
}

/// Exactly-once file tailing through crashes and rotations: a writer appends numbered
/// lines to `app.log` and rotates it every 400 lines (rename to `app.log.<n>`, a few
/// more lines through the old handle, then a new `app.log`), while `argus run` tailing
/// `app.log*` is SIGKILLed at random moments and restarted. Every line ends up on
/// `argus.logs` exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailed_file_exactly_once_through_sigkills_and_rotations() {
    const LINES: u32 = 2400;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let cfg = dir.path().join("argus.yaml");
    std::fs::write(
        &cfg,
        format!(
            "ingest:\n  tail:\n    paths: [\"{}/app.log*\"]\n    labels: {{job: app}}\n    poll_interval: 20ms\n    batch_size: 50\n",
            logs.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let app = logs.join("app.log");
    let writer = std::thread::spawn(move || {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&app)
                .unwrap()
        };
        let mut f = open();
        let mut rotations = 0;
        for id in 0..LINES {
            if id > 0 && id % 400 == 0 {
                rotations += 1;
                std::fs::rename(&app, app.with_extension(format!("log.{rotations}"))).unwrap();
            }
            f.write_all(format!("id={id}\n").as_bytes()).unwrap();
            // The writer notices the rotation 5 lines late, as a logger reopening does.
            if id % 400 == 5 {
                f = open();
            }
            std::thread::sleep(Duration::from_micros(1500));
        }
        rotations
    });

    // A small pseudo-random generator, seeded from the clock and printed.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill schedule seed {seed}");
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let args = ["--config", cfg.to_str().unwrap()];
    let mut argus = start(&data, &args);
    let mut kills = 0;
    while !writer.is_finished() || kills < 4 {
        tokio::time::sleep(Duration::from_millis(150 + next() % 700)).await;
        signal(&argus.child, libc::SIGKILL);
        argus.child.wait().unwrap();
        kills += 1;
        argus = start(&data, &args);
    }
    let rotations = writer.join().unwrap();
    assert_eq!(rotations, LINES / 400 - 1);

    let c = reqwest::Client::new();
    for _ in 0..300 {
        if ids_on_log(&c, &argus.url).await.len() >= LINES as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A little longer, for any repeat still on its way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = ids_on_log(&c, &argus.url).await;
    let lost: Vec<u32> = (0..LINES).filter(|i| !seen.contains_key(i)).collect();
    let twice: Vec<(&u32, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        lost.is_empty() && twice.is_empty(),
        "after {kills} SIGKILLs: {} lines lost (e.g. {:?}), {} repeated (e.g. {:?})",
        lost.len(),
        &lost[..lost.len().min(10)],
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    assert_eq!(seen.len(), LINES as usize);
    signal(&argus.child, libc::SIGTERM);
    assert!(argus.child.wait().unwrap().success());
}

#[test]
fn rules_check_and_test_subcommands_exit_as_promtool() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/tests/promtool");
    let run = |args: &[&str], files: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_argus"))
            .args(args)
            .args(files.iter().map(|f| corpus.join(f)))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["rules", "test"], &["01_alert_basic.test.yml"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("  SUCCESS"), "{out}");
    let (code, out, err) = run(&["rules", "test"], &["44_fail_nan.test.yml"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(format!("{out}{err}").contains("FAILED"), "{out}{err}");
    let (code, out, err) = run(&["rules", "check"], &["check/bad_for_duration.yml"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        format!("{out}{err}").contains("bad_for_duration.yml:6:14: not a valid duration string"),
        "{out}{err}"
    );
    let (code, out, _) = run(&["rules", "check"], &["01_alert_basic.rules.yml"]);
    assert_eq!(code, Some(0), "{out}");
}
