//! The notifier beside Debian's Alertmanager 0.25: the same routing file (apart from
//! the webhook URLs) and the same alert stream posted to both at the same moments; the
//! webhook receiver sees the same groups at the same moments (within a second) with
//! payloads equal field by field apart from URLs.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use common::{free_port, service};
use serde_json::{Value, json};

/// Every webhook request: (which system, receiver path, arrival, body).
type Seen = Arc<Mutex<Vec<(String, String, Instant, Value)>>>;

async fn receiver() -> (u16, Seen) {
    let seen: Seen = Arc::default();
    async fn hook(
        State(seen): State<Seen>,
        Path((system, path)): Path<(String, String)>,
        body: axum::body::Bytes,
    ) -> &'static str {
        let v: Value = serde_json::from_slice(&body).expect("webhook body is JSON");
        seen.lock().unwrap().push((system, path, Instant::now(), v));
        "ok"
    }
    let app = Router::new()
        .route("/{system}/{path}", post(hook))
        .with_state(seen.clone());
    (common::serve(app).await, seen)
}

fn routing(port: u16, system: &str) -> String {
    format!(
        r#"global:
  resolve_timeout: 5m
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 2s
  group_interval: 5s
  repeat_interval: 1h
  routes:
  - matchers: ['severity="critical"']
    receiver: hook
    group_by: [alertname, cluster]
    continue: true
  - matchers: ['team="db"']
    receiver: db
    group_by: ['...']
    group_wait: 1s
  - match_re:
      service: 'pay.*'
    receiver: db
    group_by: [service]
receivers:
- name: hook
  webhook_configs:
  - url: 'http://127.0.0.1:{port}/{system}/hook'
    send_resolved: true
- name: db
  webhook_configs:
  - url: 'http://127.0.0.1:{port}/{system}/db'
    max_alerts: 2
  - url: 'http://127.0.0.1:{port}/{system}/db-quiet'
    send_resolved: false
inhibit_rules:
- source_matchers: ['alertname="ClusterDown"']
  target_matchers: ['alertname="NodeDown"']
  equal: [cluster]
"#
    )
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(c: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if let Ok(r) = c.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not become ready");
}

fn rfc3339_ms(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn alert(labels: &[(&str, &str)], starts: chrono::DateTime<chrono::Utc>) -> Value {
    let l: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({
        "labels": l,
        "annotations": {"summary": format!("{} 出问题了", labels[0].1), "runbook": "https://wiki/r"},
        "startsAt": rfc3339_ms(starts),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    })
}

fn resolved(mut a: Value, ends: chrono::DateTime<chrono::Utc>) -> Value {
    a["endsAt"] = json!(rfc3339_ms(ends));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_groups_and_payloads_as_alertmanager() {
    let Some(_) = service("ARGUS_TEST_AMTOOL") else {
        return;
    };
    let am_bin = std::env::var("ARGUS_TEST_ALERTMANAGER")
        .unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".into());
    let dir = tempfile::tempdir().unwrap();
    let (port, seen) = receiver().await;
    let am_cfg = dir.path().join("am.yml");
    std::fs::write(&am_cfg, routing(port, "am")).unwrap();
    let argus_routes = dir.path().join("argus-routes.yml");
    std::fs::write(&argus_routes, routing(port, "argus")).unwrap();
    let argus_cfg = dir.path().join("argus.yml");
    std::fs::write(
        &argus_cfg,
        format!("notifier:\n  config_file: {}\n", argus_routes.display()),
    )
    .unwrap();

    let am = common::start_alertmanager(
        &am_bin,
        &am_cfg,
        &dir.path().join("am-data"),
        Stdio::inherit(),
    );
    let argus = common::start(
        &dir.path().join("argus-data"),
        &["--config", argus_cfg.to_str().unwrap()],
    );
    let c = reqwest::Client::new();
    let am_url = am.url.clone();
    wait_ready(&c, &format!("{am_url}/-/ready")).await;
    wait_ready(&c, &format!("{}/ready", argus.url)).await;

    // Post to both at the same moment.
    let post = |alerts: Vec<Value>| {
        let c = c.clone();
        let urls = [
            format!("{am_url}/api/v2/alerts"),
            format!("{}/api/v2/alerts", argus.url),
        ];
        async move {
            let body = Value::Array(alerts);
            let (a, b) = tokio::join!(
                c.post(&urls[0]).json(&body).send(),
                c.post(&urls[1]).json(&body).send()
            );
            assert!(a.unwrap().status().is_success());
            let b = b.unwrap();
            assert!(
                b.status().is_success(),
                "argus: {}",
                b.text().await.unwrap()
            );
        }
    };
    let t0 = chrono::Utc::now();
    let start = Instant::now();
    let at = |s: u64| start + Duration::from_millis(s);
    let cpu_a = alert(
        &[("alertname", "Cpu"), ("instance", "a"), ("job", "node")],
        t0,
    );
    let cpu_b = alert(
        &[("alertname", "Cpu"), ("instance", "b"), ("job", "node")],
        t0,
    );
    let disk = alert(
        &[
            ("alertname", "Disk"),
            ("cluster", "c1"),
            ("severity", "critical"),
            ("instance", "a"),
        ],
        t0,
    );
    let cluster_down = alert(&[("alertname", "ClusterDown"), ("cluster", "c2")], t0);
    let node_down = alert(
        &[
            ("alertname", "NodeDown"),
            ("cluster", "c2"),
            ("instance", "z"),
        ],
        t0,
    );
    let db: Vec<Value> = (0..3)
        .map(|i| {
            alert(
                &[
                    ("alertname", "Replication"),
                    ("team", "db"),
                    ("replica", &format!("r{i}")),
                ],
                t0,
            )
        })
        .collect();
    // Three in one group to a receiver with max_alerts 2: truncatedAlerts 1.
    let pay: Vec<Value> = (0..3)
        .map(|i| {
            alert(
                &[
                    ("alertname", "Latency"),
                    ("service", "payments"),
                    ("pod", &format!("p{i}")),
                ],
                t0,
            )
        })
        .collect();
    let old = alert(
        &[("alertname", "Old"), ("instance", "x")],
        t0 - chrono::Duration::minutes(10),
    );

    tokio::time::sleep_until(at(0).into()).await;
    post(vec![
        cpu_a.clone(),
        disk.clone(),
        cluster_down.clone(),
        node_down.clone(),
    ])
    .await;
    tokio::time::sleep_until(at(700).into()).await;
    post(vec![
        cpu_b.clone(),
        db[0].clone(),
        pay[0].clone(),
        pay[1].clone(),
        pay[2].clone(),
    ])
    .await;
    tokio::time::sleep_until(at(1500).into()).await;
    post(vec![db[1].clone(), db[2].clone(), old.clone()]).await;
    // After the first flushes: one more firing, and one resolved.
    tokio::time::sleep_until(at(4500).into()).await;
    post(vec![alert(
        &[("alertname", "Cpu"), ("instance", "c"), ("job", "node")],
        t0,
    )])
    .await;
    tokio::time::sleep_until(at(8000).into()).await;
    let now = chrono::Utc::now();
    post(vec![
        resolved(cpu_a.clone(), now),
        resolved(db[0].clone(), now),
    ])
    .await;
    // Let two more group intervals pass.
    tokio::time::sleep_until(at(20_000).into()).await;

    let seen = seen.lock().unwrap().clone();
    let mut by: BTreeMap<(String, String), Vec<(Instant, Value)>> = BTreeMap::new();
    let mut per_system: BTreeMap<String, usize> = BTreeMap::new();
    for (system, path, t, v) in seen {
        *per_system.entry(system.clone()).or_default() += 1;
        let gk = v["groupKey"].as_str().unwrap_or("").to_string();
        by.entry((system, format!("{path} {gk}")))
            .or_default()
            .push((t, v));
    }
    let am_n = per_system.get("am").copied().unwrap_or(0);
    assert!(
        am_n >= 8,
        "Alertmanager sent only {am_n} notifications: {per_system:?}"
    );
    let keys = |sys: &str| -> Vec<String> {
        by.keys()
            .filter(|(s, _)| s == sys)
            .map(|(_, k)| k.clone())
            .collect()
    };
    eprintln!("notifications per system: {per_system:?}");
    for ((sys, k), v) in &by {
        eprintln!("{sys} {k}: {} notification(s)", v.len());
    }
    assert_eq!(
        keys("argus"),
        keys("am"),
        "the same groups per receiver URL"
    );
    for k in keys("am") {
        let a = &by[&("am".to_string(), k.clone())];
        let b = &by[&("argus".to_string(), k.clone())];
        assert_eq!(
            a.len(),
            b.len(),
            "{k}: Alertmanager sent {} notifications, Argus {}:\nAM: {:#?}\nArgus: {:#?}",
            a.len(),
            b.len(),
            a.iter().map(|x| &x.1).collect::<Vec<_>>(),
            b.iter().map(|x| &x.1).collect::<Vec<_>>()
        );
        for ((ta, va), (tb, vb)) in a.iter().zip(b) {
            let d = if ta > tb { *ta - *tb } else { *tb - *ta };
            assert!(
                d <= Duration::from_secs(1),
                "{k}: Alertmanager at +{:?}, Argus at +{:?}",
                *ta - start,
                *tb - start
            );
            let strip = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().unwrap().remove("externalURL");
                v
            };
            assert_eq!(strip(va), strip(vb), "{k}: payloads differ");
        }
    }
    let truncated: Vec<u64> = by
        .iter()
        .filter(|((s, k), _)| s == "argus" && k.starts_with("db {}/{service"))
        .flat_map(|(_, v)| {
            v.iter()
                .map(|(_, p)| p["truncatedAlerts"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(truncated, [1], "max_alerts 2 of 3 alerts");
}

/// A webhook receiver that can be started late and can hold requests of one alert
/// name unanswered.
#[derive(Clone, Default)]
struct Hook {
    seen: Arc<Mutex<Vec<Value>>>,
    hold: Arc<Mutex<Option<String>>>,
}

impl Hook {
    async fn serve_on(&self, port: u16) {
        async fn handle(State(h): State<Hook>, body: axum::body::Bytes) -> &'static str {
            let v: Value = serde_json::from_slice(&body).expect("webhook body is JSON");
            let name = v["groupLabels"]["alertname"]
                .as_str()
                .unwrap_or("")
                .to_string();
            h.seen.lock().unwrap().push(v);
            loop {
                let held = h.hold.lock().unwrap().as_deref() == Some(name.as_str());
                if !held {
                    return "ok";
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(self.clone());
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    }

    fn count(&self, alertname: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["groupLabels"]["alertname"] == alertname)
            .count()
    }
}

fn fault_config(dir: &std::path::Path, hook_port: u16) -> std::path::PathBuf {
    let routes = dir.join("routes.yml");
    std::fs::write(
        &routes,
        format!(
            r#"route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5m
  repeat_interval: 4h
receivers:
- name: hook
  webhook_configs:
  - url: 'http://127.0.0.1:{hook_port}/hook'
"#
        ),
    )
    .unwrap();
    let cfg = dir.join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "notifier:\n  config_file: {}\n  retry_max: 5s\n",
            routes.display()
        ),
    )
    .unwrap();
    cfg
}

async fn post_alert(c: &reqwest::Client, url: &str, name: &str) {
    let body = json!([alert(
        &[("alertname", name), ("instance", "n1")],
        chrono::Utc::now()
    )]);
    let r = c
        .post(format!("{url}/api/v2/alerts"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receiver_down_for_two_minutes_gets_the_notification_once() {
    let dir = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let cfg = fault_config(dir.path(), hook_port);
    let argus = common::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let c = reqwest::Client::new();
    wait_ready(&c, &format!("{}/ready", argus.url)).await;
    post_alert(&c, &argus.url, "Down").await;
    // Nothing listens for two minutes: the notifier keeps retrying.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let hist = common::get_json(&c, format!("{}/api/v1/notifications", argus.url)).await;
    let failures = hist["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "transient_failure")
        .count();
    assert!(
        failures >= 10,
        "retried while the receiver was down: {failures} failures"
    );
    let hook = Hook::default();
    hook.serve_on(hook_port).await;
    wait_for("the notification", Duration::from_secs(30), || {
        hook.count("Down") >= 1
    })
    .await;
    // And only once, also over the next retries' time.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(hook.count("Down"), 1);
    let hist = common::get_json(
        &c,
        format!("{}/api/v1/notifications?outcome=sent", argus.url),
    )
    .await;
    assert_eq!(hist["data"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifier_killed_mid_send_resends_only_what_was_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let cfg = fault_config(dir.path(), hook_port);
    let hook = Hook::default();
    hook.serve_on(hook_port).await;
    let data = dir.path().join("data");
    let argus = common::start(&data, &["--config", cfg.to_str().unwrap()]);
    let c = reqwest::Client::new();
    wait_ready(&c, &format!("{}/ready", argus.url)).await;
    // One notification completes…
    post_alert(&c, &argus.url, "Done").await;
    wait_for("the first notification", Duration::from_secs(15), || {
        hook.count("Done") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // …the next one is in flight (the receiver holds it) when the notifier is killed.
    *hook.hold.lock().unwrap() = Some("InFlight".into());
    post_alert(&c, &argus.url, "InFlight").await;
    wait_for("the held request", Duration::from_secs(15), || {
        hook.count("InFlight") == 1
    })
    .await;
    common::signal(&argus.child, libc::SIGKILL);
    drop(argus);
    *hook.hold.lock().unwrap() = None;
    let argus = common::start(&data, &["--config", cfg.to_str().unwrap()]);
    wait_ready(&c, &format!("{}/ready", argus.url)).await;
    // The in-flight one is sent again (the documented at-least-once window: a send
    // that had started but not been recorded), the completed one is not.
    wait_for("the resend", Duration::from_secs(20), || {
        hook.count("InFlight") == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        hook.count("Done"),
        1,
        "a completed notification is not repeated"
    );
    assert_eq!(hook.count("InFlight"), 2);
    let hist = common::get_json(
        &c,
        format!("{}/api/v1/notifications?outcome=sent", argus.url),
    )
    .await;
    assert_eq!(hist["data"].as_array().unwrap().len(), 2);
}

/// Bad notifier configuration stops `argus check-config` (and the start) with a
/// message naming the receiver, the field and what is wrong.
#[test]
fn bad_notifier_config_fails_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "unknown receiver",
            "route:\n  receiver: team\n  routes:\n  - receiver: nope\nreceivers:\n- name: team\n",
            &["route.routes[0]", r#"undefined receiver "nope""#],
        ),
        (
            "bad template",
            "route:\n  receiver: team\nreceivers:\n- name: team\n  wecom_configs:\n  - key: k1\n    message: '{{ .Status '\n",
            &[r#"receiver "team""#, "wecom_configs[0]"],
        ),
        (
            "bad URL",
            "route:\n  receiver: team\nreceivers:\n- name: team\n  webhook_configs:\n  - url: 'not a url'\n",
            &["team", "webhook_configs[0]", "url"],
        ),
        (
            "missing secret",
            "route:\n  receiver: team\nreceivers:\n- name: team\n  sms_configs:\n  - phone_numbers: ['+8613800000000']\n    tencent:\n      secret_id: AKID1\n      sdk_app_id: '1400000000'\n      sign_name: Argus\n      template_id: '1'\n",
            &["team", "sms_configs[0]", "secret_key"],
        ),
        (
            "unknown field",
            "route:\n  receiver: team\n  group_wiat: 1s\nreceivers:\n- name: team\n",
            &["group_wiat"],
        ),
    ];
    for (what, routes, wants) in cases {
        let r = dir.path().join("routes.yml");
        std::fs::write(&r, routes).unwrap();
        let cfg = dir.path().join("argus.yml");
        std::fs::write(&cfg, format!("notifier:\n  config_file: {}\n", r.display())).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_argus"))
            .arg("check-config")
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        for w in wants {
            assert!(err.contains(w), "{what}: {w:?} not in {err}");
        }
        eprintln!("{what}: {}", err.trim());
    }
}

/// Two `argus notifier` processes of the distributed deployment on a real
/// Kafka-protocol broker (tansu): both read every alert, each notification goes out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_notifier_instances_on_kafka_send_each_notification_once() {
    let Some(kafka) = service("ARGUS_TEST_KAFKA") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let hook = Hook::default();
    hook.serve_on(hook_port).await;
    let routes = dir.path().join("routes.yml");
    std::fs::write(
        &routes,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1m\n\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: 'http://127.0.0.1:{hook_port}/hook'\n"
        ),
    )
    .unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "bus:\n  kafka:\n    brokers: ['{kafka}']\n    partitions: 2\nnotifier:\n  config_file: {}\n  sync_interval: 200ms\n",
            routes.display()
        ),
    )
    .unwrap();
    let start_notifier = |name: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_argus"))
            .args(["notifier", "--listen", "127.0.0.1:0", "--config"])
            .arg(&cfg)
            .arg("--data-dir")
            .arg(dir.path().join(name))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let url = line
            .trim()
            .strip_prefix("argus listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        (Proc(child), url)
    };
    let (_a, url_a) = start_notifier("a");
    let (_b, url_b) = start_notifier("b");
    let c = reqwest::Client::new();
    wait_ready(&c, &format!("{url_a}/ready")).await;
    wait_ready(&c, &format!("{url_b}/ready")).await;
    // Names unique to this run: the broker keeps topics between runs.
    let run = std::process::id();
    let names: Vec<String> = (0..8).map(|i| format!("Kafka{run}x{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        // Half posted to each instance; both see all through argus.alerts.
        let url = if i % 2 == 0 { &url_a } else { &url_b };
        post_alert(&c, url, n).await;
    }
    wait_for("every group notified", Duration::from_secs(60), || {
        names.iter().all(|n| hook.count(n) >= 1)
    })
    .await;
    // Both instances had time to act on every group.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for n in &names {
        if hook.count(n) != 1 {
            let h = common::get_json(&c, format!("{url_a}/api/v1/notifications?limit=100")).await;
            let mine: Vec<&Value> = h["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["group_key"].as_str().unwrap().contains(n.as_str()))
                .collect();
            panic!("{n} notified {} times; history: {mine:#?}", hook.count(n));
        }
    }
    let groups_a = common::get_json(&c, format!("{url_a}/api/v1/notifier/groups")).await;
    let groups_b = common::get_json(&c, format!("{url_b}/api/v1/notifier/groups")).await;
    let ours = |v: &Value| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| {
                g["groupKey"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Kafka{run}x"))
            })
            .count()
    };
    assert_eq!(ours(&groups_a), 8, "instance a holds every group");
    assert_eq!(ours(&groups_b), 8, "instance b holds every group");
}
