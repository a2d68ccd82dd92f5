//! The Loki HTTP API of `argus run` on the embedded default, driven the way Grafana's
//! Loki data source drives it: label browser calls, Explore range queries, the log
//! volume query, index stats, series, and a live tail over WebSocket.

use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::{rfc3339, start};

const T0: i64 = 1_764_115_200_000_000_000; // 2025-11-26T00:00:00Z

/// Pushes `n` lines per stream, one per second from T0, through Loki's push API.
async fn push(c: &reqwest::Client, url: &str, tenant: &str) {
    let mut streams = Vec::new();
    for (app, level) in [("shop", "info"), ("shop", "error"), ("billing", "info")] {
        let values: Vec<Value> = (0..30)
            .map(|i| {
                json!([
                    (T0 + i * 1_000_000_000).to_string(),
                    format!(
                        "level={level} app={app} msg=\"request {i}\" duration={}ms",
                        10 * i
                    )
                ])
            })
            .collect();
        streams
            .push(json!({"stream": {"app": app, "level": level, "env": "prod"}, "values": values}));
    }
    let r = c
        .post(format!("{url}/loki/api/v1/push"))
        .header("X-Scope-OrgID", tenant)
        .json(&json!({"streams": streams}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
}

async fn get(
    c: &reqwest::Client,
    url: &str,
    tenant: &str,
    path: &str,
    q: &[(&str, String)],
) -> (u16, String) {
    let u = reqwest::Url::parse_with_params(&format!("{url}{path}"), q).unwrap();
    let r = c
        .get(u)
        .header("X-Scope-OrgID", tenant)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get_ok(
    c: &reqwest::Client,
    url: &str,
    tenant: &str,
    path: &str,
    q: &[(&str, String)],
) -> Value {
    let (status, body) = get(c, url, tenant, path, q).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn range() -> Vec<(&'static str, String)> {
    vec![
        ("start", T0.to_string()),
        ("end", (T0 + 60_000_000_000).to_string()),
    ]
}

/// Waits until the writer has stored every pushed line (90 lines).
async fn wait_stored(c: &reqwest::Client, url: &str, tenant: &str) {
    for _ in 0..200 {
        let mut q = range();
        q.push(("query", "sum(count_over_time({env=\"prod\"}[1m]))".into()));
        q.push(("time", (T0 + 59_000_000_000).to_string()));
        let (status, body) = get(c, url, tenant, "/loki/api/v1/query", &q).await;
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["data"]["result"][0]["value"][1] == "90" {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the writer did not store the 90 pushed lines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_requests_get_loki_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let argus = start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    push(&c, &argus.url, "team-a").await;
    wait_stored(&c, &argus.url, "team-a").await;
    let url = argus.url.as_str();

    // Label browser.
    let labels = get_ok(&c, url, "team-a", "/loki/api/v1/labels", &range()).await;
    assert_eq!(
        labels,
        json!({"status": "success", "data": ["app", "env", "level"]})
    );
    let values = get_ok(&c, url, "team-a", "/loki/api/v1/label/app/values", &range()).await;
    assert_eq!(
        values,
        json!({"status": "success", "data": ["billing", "shop"]})
    );
    let mut q = range();
    q.push(("query", "{app=\"shop\"}".into()));
    let values = get_ok(&c, url, "team-a", "/loki/api/v1/label/level/values", &q).await;
    assert_eq!(values["data"], json!(["error", "info"]));
    let mut q = range();
    q.push(("match[]", "{app=\"billing\"}".into()));
    let series = get_ok(&c, url, "team-a", "/loki/api/v1/series", &q).await;
    assert_eq!(
        series,
        json!({"status": "success", "data": [{"app": "billing", "env": "prod", "level": "info"}]})
    );

    // Explore: a backward log query with a limit.
    let mut q = range();
    q.extend([
        ("query", "{app=\"shop\"} |= \"request 2\"".to_string()),
        ("limit", "5".into()),
        ("direction", "backward".into()),
        ("step", "1".into()),
    ]);
    let v = get_ok(&c, url, "team-a", "/loki/api/v1/query_range", &q).await;
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "streams");
    let result = v["data"]["result"].as_array().unwrap();
    let total: usize = result
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 5, "{v}");
    for s in result {
        assert_eq!(s["stream"]["app"], "shop");
        let ts: Vec<i64> = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[0].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] > w[1]), "backward order: {ts:?}");
    }
    let summary = &v["data"]["stats"]["summary"];
    for key in [
        "bytesProcessedPerSecond",
        "linesProcessedPerSecond",
        "totalBytesProcessed",
        "totalLinesProcessed",
        "execTime",
        "totalEntriesReturned",
    ] {
        assert!(
            summary[key].is_number(),
            "stats.summary.{key} missing: {summary}"
        );
    }
    assert_eq!(summary["totalEntriesReturned"], 5);

    // The log volume query Grafana sends with every Explore query.
    let mut q = range();
    q.extend([
        (
            "query",
            "sum by (level) (count_over_time({env=\"prod\"} | drop __error__[10s]))".to_string(),
        ),
        ("step", "10".into()),
    ]);
    let v = get_ok(&c, url, "team-a", "/loki/api/v1/query_range", &q).await;
    assert_eq!(v["data"]["resultType"], "matrix");
    let mut by_level = std::collections::BTreeMap::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let points: Vec<(f64, String)> = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
            .collect();
        by_level.insert(s["metric"]["level"].as_str().unwrap().to_string(), points);
    }
    // Lines at T0+0s..T0+29s; windows (t-10s, t] at t = T0, T0+10s, … T0+60s.
    let secs = (T0 / 1_000_000_000) as f64;
    let expect = |per_stream: u32| -> Vec<(f64, String)> {
        [(0, 1), (10, 10), (20, 10), (30, 9)]
            .iter()
            .map(|(dt, n)| (secs + *dt as f64, (n * per_stream).to_string()))
            .collect()
    };
    assert_eq!(by_level["info"], expect(2), "{v}");
    assert_eq!(by_level["error"], expect(1), "{v}");

    // Index stats for the data source's query-size hint.
    let mut q = range();
    q.push(("query", "{app=\"shop\"}".into()));
    let stats = get_ok(&c, url, "team-a", "/loki/api/v1/index/stats", &q).await;
    assert_eq!(stats["streams"], 2, "{stats}");
    assert_eq!(stats["entries"], 60, "{stats}");
    assert!(stats["bytes"].as_u64().unwrap() > 60 * 30);

    // Tenants are isolated.
    let labels = get_ok(&c, url, "team-b", "/loki/api/v1/labels", &range()).await;
    assert_eq!(labels["data"], json!([]));

    // Errors as Loki gives them: 400, text/plain.
    let mut q = range();
    q.push(("query", "{app=\"shop\"".into()));
    let (status, body) = get(&c, url, "team-a", "/loki/api/v1/query_range", &q).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("parse error at line 1, col "), "{body}");
    let mut q = range();
    q.extend([
        ("query", "{app=\"shop\"}".to_string()),
        ("limit", "0".into()),
    ]);
    let (status, body) = get(&c, url, "team-a", "/loki/api/v1/query_range", &q).await;
    assert_eq!(
        (status, body.trim()),
        (400, "limit must be a positive value")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_streams_new_lines_over_websocket() {
    use futures::StreamExt;

    let dir = tempfile::tempdir().unwrap();
    let argus = start(&dir.path().join("data"), &[]);
    let ws_url = format!(
        "{}/loki/api/v1/tail?query=%7Bapp%3D%22live%22%7D&start={}",
        argus.url.replace("http://", "ws://"),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let c = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let values: Vec<Value> = (0..3)
        .map(|i| json!([(now + i).to_string(), format!("live {i}")]))
        .collect();
    let r = c
        .post(format!("{}/loki/api/v1/push", argus.url))
        .json(&json!({"streams": [{"stream": {"app": "live"}, "values": values}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while lines.len() < 3 {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("tail sent the lines within 15s")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            for s in v["streams"].as_array().unwrap() {
                assert_eq!(s["stream"]["app"], "live");
                for e in s["values"].as_array().unwrap() {
                    lines.push(e[1].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert_eq!(lines, ["live 0", "live 1", "live 2"]);
    let _ = ws.close(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_log_problems_are_queryable_as_log_streams() {
    use std::io::Write;

    let dir = tempfile::tempdir().unwrap();
    let kern = dir.path().join("kern.log");
    std::fs::write(&kern, "").unwrap();
    let cfg = dir.path().join("argus.yaml");
    std::fs::write(
        &cfg,
        format!(
            "ingest:\n  node_problems:\n    node: worker-7\n    kernel_log: {}\n    poll_interval: 50ms\n",
            kern.display()
        ),
    )
    .unwrap();
    let argus = start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    // The monitor starts at the end of the file: append after it is running.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&kern)
        .unwrap();
    // kern.log's syslog stamp (no year, local time = UTC here): now.
    let stamp = rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months[stamp[5..7].parse::<usize>().unwrap() - 1];
    let day: u32 = stamp[8..10].parse().unwrap();
    writeln!(
        f,
        "{month} {day:>2} {} worker-7 kernel: [12345.678901] Killed process 4242 (java) total-vm:8241232kB, anon-rss:4120000kB, file-rss:0kB, shmem-rss:0kB",
        &stamp[11..19]
    )
    .unwrap();
    drop(f);
    let c = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let q = vec![
        (
            "query",
            "{source=\"node-problem-detector\", reason=\"OOMKilling\"} | json".to_string(),
        ),
        ("start", (now - 3_600_000_000_000).to_string()),
        ("end", (now + 3_600_000_000_000).to_string()),
    ];
    let mut found = Value::Null;
    for _ in 0..100 {
        let v = get_ok(&c, &argus.url, "default", "/loki/api/v1/query_range", &q).await;
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            found = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream = &found["data"]["result"][0]["stream"];
    assert_eq!(stream["node"], "worker-7", "{found}");
    assert_eq!(stream["kind"], "temporary", "{found}");
    assert_eq!(stream["severity"], "warn", "{found}");
    assert!(
        stream["message"]
            .as_str()
            .unwrap()
            .contains("Killed process 4242 (java)"),
        "{found}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_findings_are_queryable_as_log_streams() {
    let dir = tempfile::tempdir().unwrap();
    let argus = start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    let now = common::now_ns();
    common::post_findings(
        &c,
        &argus.url,
        now,
        &[
            ("trivy", "trivy_nginx.json"),
            ("clair", "clair_report.json"),
            ("falco", "falco_terminal_shell.json"),
        ],
    )
    .await;
    let range = |q: &str| {
        vec![
            ("query", q.to_string()),
            ("start", (now - 86_400_000_000_000).to_string()),
            ("end", (now + 3_600_000_000_000).to_string()),
        ]
    };
    // Every CRITICAL vulnerability, from any scanner, by its id.
    let q = range("{kind=\"vulnerability\", severity=\"CRITICAL\"}");
    let mut ids = Vec::new();
    for _ in 0..100 {
        let v = get_ok(&c, &argus.url, "default", "/loki/api/v1/query_range", &q).await;
        ids = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}:{}",
                    s["stream"]["source"].as_str().unwrap(),
                    s["stream"]["id"].as_str().unwrap()
                )
            })
            .collect();
        ids.sort();
        if ids.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ids, ["clair:CVE-2023-45853", "trivy:CVE-2024-45492"]);
    // The finding's fields are in the line as JSON, so LogQL reaches them.
    let q = range(
        "{source=\"trivy\", id=\"CVE-2024-45492\"} | json | line_format \"{{.package}} {{.fixed_version}}\"",
    );
    let v = get_ok(&c, &argus.url, "default", "/loki/api/v1/query_range", &q).await;
    let line = v["data"]["result"][0]["values"][0][1]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(line.starts_with("libexpat1 "), "{v}");
    // Runtime findings count per image.
    let q = vec![
        (
            "query",
            "sum by (image) (count_over_time({source=\"falco\", kind=\"runtime\"}[1d]))"
                .to_string(),
        ),
        ("time", (now + 3_600_000_000_000).to_string()),
    ];
    let v = get_ok(&c, &argus.url, "default", "/loki/api/v1/query", &q).await;
    assert_eq!(v["data"]["resultType"], "vector", "{v}");
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    assert!(
        v["data"]["result"][0]["metric"]["image"]
            .as_str()
            .unwrap()
            .contains("nginx"),
        "{v}"
    );
}

#[test]
fn rfc3339_formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_764_115_200), "2025-11-26T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
}
