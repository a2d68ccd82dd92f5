//! Collectors driven by the real tools operators point at Argus: Debian's Prometheus
//! 2.42 remote-writing, Debian's rsyslog forwarding, and a published Loki push client
//! from PyPI (python-logging-loki). `deploy/test.sh` installs them and sets
//! `ARGUS_TEST_PROMETHEUS_BIN`, `ARGUS_TEST_RSYSLOGD` and `ARGUS_TEST_PYTHON`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::{free_port, get_json, service, start, topic_records};

/// Kills a helper process when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type SeriesKey = BTreeMap<String, String>;

/// Samples per series on `argus.metrics`, restricted to series whose `__name__` is in
/// `names`, as `(timestamp ms, value bits)` so NaN compares.
async fn argus_samples(
    c: &reqwest::Client,
    url: &str,
    names: &[&str],
) -> BTreeMap<SeriesKey, BTreeSet<(i64, u64)>> {
    let mut out: BTreeMap<SeriesKey, BTreeSet<(i64, u64)>> = BTreeMap::new();
    for r in topic_records(c, url, "argus.metrics").await {
        let p = &r["value"]["payload"];
        let labels: SeriesKey = serde_json::from_value(p["labels"].clone()).unwrap();
        if !names.contains(&labels["__name__"].as_str()) {
            continue;
        }
        for s in p["samples"].as_array().unwrap() {
            let v = match &s["value"] {
                serde_json::Value::Number(n) => n.as_f64().unwrap(),
                serde_json::Value::String(s) => match s.as_str() {
                    "NaN" => f64::NAN,
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    other => panic!("unexpected value {other}"),
                },
                other => panic!("unexpected value {other}"),
            };
            out.entry(labels.clone())
                .or_default()
                .insert((s["timestamp_ms"].as_i64().unwrap(), v.to_bits()));
        }
    }
    out
}

/// Raw samples Prometheus stored for `name` in (at − 1h, at], through a range-vector
/// instant query (which returns stored samples, not evaluated ones).
async fn prometheus_samples(
    c: &reqwest::Client,
    prom: &str,
    name: &str,
    at_ms: i64,
) -> BTreeMap<SeriesKey, BTreeSet<(i64, u64)>> {
    let v = get_json(
        c,
        format!(
            "{prom}/api/v1/query?query={name}%5B1h%5D&time={}.{:03}",
            at_ms / 1000,
            at_ms % 1000
        ),
    )
    .await;
    assert_eq!(v["status"], "success", "{v}");
    let mut out = BTreeMap::new();
    for series in v["data"]["result"].as_array().unwrap() {
        let labels: SeriesKey = serde_json::from_value(series["metric"].clone()).unwrap();
        let points: BTreeSet<(i64, u64)> = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let ts = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                let v: f64 = p[1].as_str().unwrap().parse().unwrap();
                (ts, v.to_bits())
            })
            .collect();
        out.insert(labels, points);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_matches_what_prometheus_stored() {
    let Some(bin) = service("ARGUS_TEST_PROMETHEUS_BIN") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let argus = start(&dir.path().join("data"), &[]);
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels: {{team: 'a,b=c'}}\n\
             remote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 500ms\n      max_samples_per_send: 200\n",
            argus.url
        ),
    )
    .unwrap();
    let c = reqwest::Client::new();
    let _prom = Reap(
        Command::new(&bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    // Let Prometheus scrape itself several times (its first scrape comes a while after
    // start) and ship the samples.
    let mut cutoff_ms = now_ms();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cutoff_ms = now_ms() - 1_000;
        let up = match c.get(format!("{prom}/-/ready")).send().await {
            Ok(r) if r.status().is_success() => {
                prometheus_samples(&c, &prom, "up", cutoff_ms).await
            }
            _ => continue,
        };
        if up.values().next().is_some_and(|p| p.len() >= 6) {
            break;
        }
    }
    let names = [
        "up",
        "scrape_duration_seconds",
        "prometheus_build_info",
        "prometheus_http_requests_total",
        "go_gc_duration_seconds",
    ];
    let mut expected = BTreeMap::new();
    for n in names {
        expected.extend(prometheus_samples(&c, &prom, n, cutoff_ms).await);
    }
    assert!(
        expected.len() >= 8,
        "Prometheus stored too few series: {expected:?}"
    );
    assert!(
        expected.values().all(|p| p.len() >= 5),
        "Prometheus stored too few samples: {expected:?}"
    );
    let up_key = expected
        .keys()
        .find(|k| k["__name__"] == "up")
        .unwrap()
        .clone();
    assert_eq!(up_key["team"], "a,b=c");
    // Remote write runs behind the TSDB: wait until Argus has everything up to the cutoff.
    let mut got = BTreeMap::new();
    for _ in 0..60 {
        got = argus_samples(&c, &argus.url, &names).await;
        for points in got.values_mut() {
            points.retain(|(ts, _)| *ts <= cutoff_ms);
        }
        got.retain(|_, p| !p.is_empty());
        if got == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let samples: usize = expected.values().map(BTreeSet::len).sum();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "series differ"
    );
    for (k, v) in &expected {
        assert_eq!(&got[k], v, "samples of {k:?} differ");
    }
    eprintln!("{} series, {samples} samples identical", expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_to_the_syslog_receiver() {
    let Some(rsyslogd) = service("ARGUS_TEST_RSYSLOGD") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp, input) = (free_port(), free_port(), free_port());
    let cfg = dir.path().join("argus.yaml");
    std::fs::write(
        &cfg,
        format!(
            "ingest:\n  syslog:\n    tcp: 127.0.0.1:{tcp}\n    udp: 127.0.0.1:{udp}\n    batch_wait: 50ms\n"
        ),
    )
    .unwrap();
    let argus = start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    // rsyslog takes messages on a TCP input and forwards each twice: RFC 5424 over TCP
    // with octet counting, and RFC 3164 over UDP.
    let work = dir.path().join("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{}\")\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" port=\"{input}\" address=\"127.0.0.1\")\n\
             action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{tcp}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")\n\
             action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{udp}\" protocol=\"udp\" template=\"RSYSLOG_TraditionalForwardFormat\")\n",
            work.display()
        ),
    )
    .unwrap();
    let _rsyslog = Reap(
        Command::new(&rsyslogd)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Feed rsyslog's input the way an application's syslog client would.
    let mut sent = false;
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", input)) {
            use std::io::Write;
            for i in 0..5 {
                writeln!(
                    s,
                    "<14>1 2026-11-26T01:00:0{i}.000Z web01 shop 42 ID7 - order {i} placed"
                )
                .unwrap();
            }
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent, "rsyslog's input never opened");
    let c = reqwest::Client::new();
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..100 {
        lines.clear();
        for r in topic_records(&c, &argus.url, "argus.logs").await {
            let p = &r["value"]["payload"];
            assert_eq!(p["labels"]["host"], "web01", "{p}");
            assert_eq!(p["labels"]["app"], "shop", "{p}");
            assert_eq!(p["labels"]["severity"], "info", "{p}");
            assert_eq!(p["labels"]["facility"], "user", "{p}");
            *lines
                .entry(p["line"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        if lines.values().sum::<usize>() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each message arrives twice (TCP/5424 and UDP/3164) with the same text.
    let expected: BTreeMap<String, usize> =
        (0..5).map(|i| (format!("order {i} placed"), 2)).collect();
    assert_eq!(lines, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_logging_loki_pushes_into_the_log() {
    let Some(python) = service("ARGUS_TEST_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let argus = start(&dir.path().join("data"), &[]);
    let script = format!(
        "import logging, logging_loki\n\
         h = logging_loki.LokiHandler(url='{}/loki/api/v1/push', tags={{'application': 'shop'}}, version='1')\n\
         log = logging.getLogger('checkout')\n\
         log.addHandler(h)\n\
         log.setLevel(logging.INFO)\n\
         for i in range(20):\n    log.warning('payment %d retried', i, extra={{'tags': {{'region': 'eu-1'}}}})\n",
        argus.url
    );
    let out = Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python-logging-loki failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = reqwest::Client::new();
    let records = topic_records(&c, &argus.url, "argus.logs").await;
    let mut lines: Vec<String> = records
        .iter()
        .map(|r| {
            let p = &r["value"]["payload"];
            assert_eq!(p["labels"]["application"], "shop", "{p}");
            assert_eq!(p["labels"]["region"], "eu-1", "{p}");
            assert_eq!(p["labels"]["severity"], "warning", "{p}");
            assert_eq!(p["labels"]["logger"], "checkout", "{p}");
            p["line"].as_str().unwrap().to_string()
        })
        .collect();
    lines.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("payment {i} retried")).collect();
    expected.sort();
    assert_eq!(lines, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_scrapes_node_exporter_and_prometheus() {
    let (Some(node), Some(prom)) = (
        service("ARGUS_TEST_NODE_EXPORTER"),
        service("ARGUS_TEST_PROMETHEUS"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yaml");
    std::fs::write(
        &cfg,
        format!(
            "ingest:\n  scrape:\n    scrape_configs:\n\
             \x20     - job_name: node\n        scrape_interval: 1s\n        static_configs: [{{targets: ['{node}']}}]\n\
             \x20     - job_name: prometheus\n        scrape_interval: 1s\n        static_configs: [{{targets: ['{prom}'], labels: {{env: lab}}}}]\n"
        ),
    )
    .unwrap();
    let argus = start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let c = reqwest::Client::new();
    let wanted = [
        "up",
        "node_cpu_seconds_total",
        "prometheus_build_info",
        "scrape_duration_seconds",
    ];
    let mut got = BTreeMap::new();
    for _ in 0..100 {
        got = argus_samples(&c, &argus.url, &wanted).await;
        let has =
            |name: &str, job: &str| got.keys().any(|k| k["__name__"] == name && k["job"] == job);
        if has("up", "node")
            && has("up", "prometheus")
            && has("node_cpu_seconds_total", "node")
            && has("prometheus_build_info", "prometheus")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let up: Vec<(&SeriesKey, f64)> = got
        .iter()
        .filter(|(k, _)| k["__name__"] == "up")
        .map(|(k, p)| (k, f64::from_bits(p.iter().next_back().unwrap().1)))
        .collect();
    assert_eq!(up.len(), 2, "{up:?}");
    assert!(up.iter().all(|(_, v)| *v == 1.0), "{up:?}");
    let cpu = got
        .keys()
        .find(|k| k["__name__"] == "node_cpu_seconds_total")
        .expect("node_cpu_seconds_total scraped");
    assert_eq!(cpu["instance"], node);
    assert!(
        cpu.contains_key("cpu") && cpu.contains_key("mode"),
        "{cpu:?}"
    );
    let build = got
        .keys()
        .find(|k| k["__name__"] == "prometheus_build_info")
        .expect("prometheus_build_info scraped");
    assert_eq!(build["env"], "lab");
    assert!(build["version"].starts_with("2."), "{build:?}");

    // The scraped series can be queried through the Prometheus API of the metric window.
    let mut v = serde_json::Value::Null;
    for _ in 0..100 {
        v = get_json(
            &c,
            format!("{}/api/v1/query?query=sum%20by%20(job)%20(up)", argus.url),
        )
        .await;
        if v["data"]["result"].as_array().is_some_and(|r| r.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(v["status"], "success", "{v}");
    let mut jobs: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"]["job"].as_str().unwrap().to_string(),
                r["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    jobs.sort();
    assert_eq!(
        jobs,
        [
            ("node".to_string(), "1".to_string()),
            ("prometheus".to_string(), "1".to_string())
        ]
    );
    let v = get_json(
        &c,
        format!(
            "{}/api/v1/query?query=count(count%20by%20(cpu)%20(node_cpu_seconds_total))",
            argus.url
        ),
    )
    .await;
    let cpus: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cpus >= 1.0, "{v}");
}
