//! The notifier beside Debian's Alertmanager 0.25 on the same machine, in the same run:
//! how many alerts per second each accepts on `POST /api/v2/alerts`, how fast their
//! groups reach a webhook, and the alert-to-webhook latency of new groups.
//!
//! `cargo bench --bench notifier_vs_alertmanager`. Needs
//! `/usr/bin/prometheus-alertmanager` (Debian's `prometheus-alertmanager`; another path
//! through `ARGUS_TEST_ALERTMANAGER`).
//!
//! - Both systems get the same routing file (apart from the webhook URL): one route,
//!   `group_by: [alertname]`, `group_wait: 0s`, `group_interval: 1h`,
//!   `repeat_interval: 24h` (nothing repeats during a run), one webhook receiver, served
//!   by this bench in-process (axum on `127.0.0.1:0`). Argus runs as `argus run` with
//!   its embedded defaults (every component, the embedded event log) and a config that
//!   only names the routing file.
//! - Every phase starts the system afresh (new process, new data directory), waits until
//!   it is ready and until one warm-up alert came through the webhook, and stops it
//!   afterwards.
//! - Throughput: `ARGUS_BENCH_ALERTS` distinct firing alerts (default 60000: at 20000
//!   Argus' phase lasts about half a second, too short to average out start-up) over 300
//!   alertnames, each alertname's alerts consecutive (so groups open all through the
//!   run, about 67 alerts per group), in POSTs of up to 64 alerts as Prometheus sends
//!   them, by 4 concurrent connections (`ARGUS_BENCH_CONNECTIONS`). The bodies are
//!   built before the clock starts. "Accepted" is the time from the first POST until
//!   every POST was answered 2xx. "Every group notified" is the time from the first
//!   POST until the first webhook of every group arrived: with `group_wait: 0s` a group
//!   flushes as soon as it exists, and the alerts that join it later wait for the next
//!   `group_interval` (beyond the run) — in both systems alike.
//! - Latency: `ARGUS_BENCH_RATE` alerts per second (default 20) for
//!   `ARGUS_BENCH_SECONDS` (default 30), one alert per POST, each with an alertname of
//!   its own (so each opens a new group). Latency is from just before the POST is sent
//!   until the webhook naming its alertname (`groupLabels.alertname`) arrived at the
//!   receiver.
//! - `ARGUS_BENCH_ROUNDS` rounds (default 3); in each round Alertmanager runs first, then
//!   Argus, for each phase, so that load from other processes falls on both. The table
//!   gives the median of the rounds' values (each percentile separately); every round is
//!   printed too.
//! - For profiling: `ARGUS_BENCH_VERBOSE=1` passes both systems' stderr through (e.g.
//!   with `RUST_LOG=argus_notifier=debug`); `ARGUS_BENCH_SYSTEMS=argus` (or `am`) runs
//!   one system only (no table); `ARGUS_BENCH_METRICS_DIR=DIR` saves Argus' `/metrics`
//!   after every phase; `ARGUS_BENCH_ARGUS_CONFIG` is appended to Argus' configuration
//!   (e.g. `$'bus:\n  embedded:\n    sync: normal\n'`); `ARGUS_BENCH_ARGUS_BIN` runs
//!   another build of `argus` in place of this workspace's.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use serde_json::{Value, json};

const ALERTNAMES: usize = 300;
const BATCH: usize = 64;
/// How long to wait for webhooks after the last POST before giving up.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn verbose() -> bool {
    std::env::var_os("ARGUS_BENCH_VERBOSE").is_some_and(|v| !v.is_empty() && v != "0")
}

fn stderr() -> Stdio {
    if verbose() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------
// The webhook receiver
// ---------------------------------------------------------------------------------------

/// The first webhook per (system, alertname) and how many arrived.
#[derive(Default)]
struct Hooks {
    first: Mutex<HashMap<String, Instant>>,
    webhooks: AtomicUsize,
    alerts: AtomicUsize,
}

impl Hooks {
    fn reset(&self) {
        self.first.lock().unwrap().clear();
        self.webhooks.store(0, Ordering::Relaxed);
        self.alerts.store(0, Ordering::Relaxed);
    }

    /// Waits until a webhook arrived for every one of `keys` (`system/alertname`), at
    /// most until `deadline`; returns the arrival per key (None: never arrived).
    async fn wait_all(&self, keys: &[String], deadline: Instant) -> Vec<Option<Instant>> {
        loop {
            let got: Vec<Option<Instant>> = {
                let first = self.first.lock().unwrap();
                keys.iter().map(|k| first.get(k).copied()).collect()
            };
            if got.iter().all(Option::is_some) || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

async fn receiver() -> (u16, Arc<Hooks>) {
    let hooks: Arc<Hooks> = Arc::default();
    async fn hook(
        State(hooks): State<Arc<Hooks>>,
        UrlPath(system): UrlPath<String>,
        body: Bytes,
    ) -> &'static str {
        let now = Instant::now();
        let v: Value = serde_json::from_slice(&body).expect("webhook body is JSON");
        let name = v["groupLabels"]["alertname"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let n = v["alerts"].as_array().map_or(0, Vec::len);
        hooks.webhooks.fetch_add(1, Ordering::Relaxed);
        hooks.alerts.fetch_add(n, Ordering::Relaxed);
        hooks
            .first
            .lock()
            .unwrap()
            .entry(format!("{system}/{name}"))
            .or_insert(now);
        "ok"
    }
    let app = Router::new()
        .route("/{system}", post(hook))
        .with_state(hooks.clone());
    (common::serve(app).await, hooks)
}

// ---------------------------------------------------------------------------------------
// The systems
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum System {
    Alertmanager,
    Argus,
}

impl System {
    fn tag(self) -> &'static str {
        match self {
            System::Alertmanager => "am",
            System::Argus => "argus",
        }
    }
}

fn routing(hook_port: u16, system: System) -> String {
    format!(
        r#"global:
  resolve_timeout: 5m
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 24h
receivers:
- name: hook
  webhook_configs:
  - url: 'http://127.0.0.1:{hook_port}/{}'
    send_resolved: true
"#,
        system.tag()
    )
}

/// A running system (killed when dropped) and its directory.
struct Running {
    proc: common::Argus,
    _dir: tempfile::TempDir,
}

impl Running {
    fn url(&self) -> &str {
        &self.proc.url
    }
}

fn start(system: System, hook_port: u16) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yml");
    std::fs::write(&routes, routing(hook_port, system)).unwrap();
    match system {
        System::Alertmanager => {
            let bin = std::env::var("ARGUS_TEST_ALERTMANAGER")
                .unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".into());
            Running {
                proc: common::start_alertmanager(&bin, &routes, &dir.path().join("data"), stderr()),
                _dir: dir,
            }
        }
        System::Argus => {
            let cfg = dir.path().join("argus.yml");
            std::fs::write(
                &cfg,
                format!(
                    "notifier:\n  config_file: {}\n{}",
                    routes.display(),
                    std::env::var("ARGUS_BENCH_ARGUS_CONFIG").unwrap_or_default()
                ),
            )
            .unwrap();
            let bin = std::env::var("ARGUS_BENCH_ARGUS_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_argus").into());
            let cfg = cfg.to_str().expect("UTF-8 temp path");
            Running {
                proc: common::start_bin(
                    bin,
                    &dir.path().join("data"),
                    &["--config", cfg],
                    stderr(),
                ),
                _dir: dir,
            }
        }
    }
}

async fn wait_ready(c: &reqwest::Client, system: System, url: &str) {
    let path = match system {
        System::Alertmanager => "/-/ready",
        System::Argus => "/ready",
    };
    for _ in 0..600 {
        if let Ok(r) = c.get(format!("{url}{path}")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{system:?} at {url} did not become ready");
}

fn alert(name: &str, i: usize, starts: &str) -> Value {
    json!({
        "labels": {
            "alertname": name,
            "instance": format!("host-{:05}:9100", i),
            "job": "node",
            "severity": "warning",
            "cluster": format!("c{}", i % 7),
        },
        "annotations": {
            "summary": format!("{name} on host-{i:05}"),
            "description": "the value stayed above the threshold for 5 minutes",
        },
        "startsAt": starts,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn post_alerts(c: &reqwest::Client, url: &str, body: Bytes) {
    let r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status();
    if !status.is_success() {
        panic!(
            "POST {url}: {status}: {}",
            r.text().await.unwrap_or_default()
        );
    }
}

/// Posts one alert and waits for its webhook, so the whole path is warm and live.
async fn warm_up(c: &reqwest::Client, sys: &Running, system: System, hooks: &Hooks) {
    let name = "Warmup";
    let body = serde_json::to_vec(&json!([alert(name, 0, &now_rfc3339())])).unwrap();
    post_alerts(c, &format!("{}/api/v2/alerts", sys.url()), body.into()).await;
    let key = format!("{}/{name}", system.tag());
    let got = hooks
        .wait_all(&[key], Instant::now() + Duration::from_secs(60))
        .await;
    assert!(
        got[0].is_some(),
        "{system:?}: the warm-up alert never arrived"
    );
    hooks.reset();
}

/// With `ARGUS_BENCH_METRICS_DIR`, saves Argus' `/metrics` after a phase there
/// (`argus-<phase>-<unix ms>.txt`), for finding where the time went.
async fn dump_metrics(c: &reqwest::Client, system: System, sys: &Running, phase: &str) {
    let Some(dir) = std::env::var_os("ARGUS_BENCH_METRICS_DIR") else {
        return;
    };
    if system != System::Argus {
        return;
    }
    let Ok(r) = c.get(format!("{}/metrics", sys.url())).send().await else {
        return;
    };
    let text = r.text().await.unwrap_or_default();
    let ms = chrono::Utc::now().timestamp_millis();
    let path = Path::new(&dir).join(format!("argus-{phase}-{ms}.txt"));
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("writing {}: {e}", path.display());
    }
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Throughput {
    accepted_per_s: f64,
    delivered_per_s: f64,
    /// From the last POST's answer until the last group's webhook.
    drain: Duration,
    groups_missing: usize,
}

async fn throughput(
    c: &reqwest::Client,
    system: System,
    hook_port: u16,
    hooks: &Hooks,
    n: usize,
    conns: usize,
) -> Throughput {
    let sys = start(system, hook_port);
    wait_ready(c, system, sys.url()).await;
    warm_up(c, &sys, system, hooks).await;
    let starts = now_rfc3339();
    let name_of = |i: usize| format!("Tp{:03}", i * ALERTNAMES / n);
    let alerts: Vec<Value> = (0..n).map(|i| alert(&name_of(i), i, &starts)).collect();
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        alerts
            .chunks(BATCH)
            .map(|ch| Bytes::from(serde_json::to_vec(ch).unwrap()))
            .collect(),
    );
    let keys: Vec<String> = (0..ALERTNAMES.min(n))
        .map(|g| format!("{}/Tp{g:03}", system.tag()))
        .collect();
    let url = format!("{}/api/v2/alerts", sys.url());
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (c, url, bodies, next) = (c.clone(), url.clone(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = bodies.get(i) else { break };
                    post_alerts(&c, &url, b.clone()).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let accepted = t0.elapsed();
    let got = hooks
        .wait_all(&keys, Instant::now() + DELIVERY_TIMEOUT)
        .await;
    let missing = got.iter().filter(|g| g.is_none()).count();
    let last = got.iter().flatten().max().copied().unwrap_or(t0);
    let delivered = last.duration_since(t0);
    dump_metrics(c, system, &sys, "throughput").await;
    drop(sys);
    hooks.reset();
    Throughput {
        accepted_per_s: n as f64 / accepted.as_secs_f64(),
        delivered_per_s: n as f64 / delivered.as_secs_f64(),
        drain: delivered.saturating_sub(accepted),
        groups_missing: missing,
    }
}

#[derive(Debug, Clone, Copy)]
struct Latency {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    lost: usize,
    /// Until the POST was answered (part of the above).
    post_p50: Duration,
    post_p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn latency(
    c: &reqwest::Client,
    system: System,
    hook_port: u16,
    hooks: &Hooks,
    rate: usize,
    secs: usize,
) -> Latency {
    let sys = start(system, hook_port);
    wait_ready(c, system, sys.url()).await;
    warm_up(c, &sys, system, hooks).await;
    let total = rate * secs;
    let url = format!("{}/api/v2/alerts", sys.url());
    let bodies: Vec<Bytes> = (0..total)
        .map(|i| {
            let a = alert(&format!("Lat{i:05}"), i, &now_rfc3339());
            Bytes::from(serde_json::to_vec(&json!([a])).unwrap())
        })
        .collect();
    let keys: Vec<String> = (0..total)
        .map(|i| format!("{}/Lat{i:05}", system.tag()))
        .collect();
    // (just before sending, answered)
    type Times = Vec<Option<(Instant, Instant)>>;
    let sent: Arc<Mutex<Times>> = Arc::new(Mutex::new(vec![None; total]));
    let step = Duration::from_secs_f64(1.0 / rate as f64);
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for (i, body) in bodies.into_iter().enumerate() {
        tokio::time::sleep_until(t0 + step * i as u32).await;
        let (c, url, sent) = (c.clone(), url.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            post_alerts(&c, &url, body).await;
            sent.lock().unwrap()[i] = Some((at, Instant::now()));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = hooks
        .wait_all(&keys, Instant::now() + DELIVERY_TIMEOUT)
        .await;
    dump_metrics(c, system, &sys, "latency").await;
    drop(sys);
    hooks.reset();
    let sent = sent.lock().unwrap().clone();
    let mut lat: Vec<Duration> = sent
        .iter()
        .zip(&got)
        .filter_map(|(s, g)| Some(g.as_ref()?.saturating_duration_since(s.unwrap().0)))
        .collect();
    lat.sort();
    let mut posts: Vec<Duration> = sent
        .iter()
        .flatten()
        .map(|(at, answered)| answered.duration_since(*at))
        .collect();
    posts.sort();
    Latency {
        p50: percentile(&lat, 50.0),
        p90: percentile(&lat, 90.0),
        p99: percentile(&lat, 99.0),
        max: lat.last().copied().unwrap_or_default(),
        lost: total - lat.len(),
        post_p50: percentile(&posts, 50.0),
        post_p99: percentile(&posts, 99.0),
    }
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let n = env_usize("ARGUS_BENCH_ALERTS", 60_000).max(1);
    let conns = env_usize("ARGUS_BENCH_CONNECTIONS", 4).max(1);
    let rate = env_usize("ARGUS_BENCH_RATE", 20).max(1);
    let secs = env_usize("ARGUS_BENCH_SECONDS", 30).max(1);
    let rounds = env_usize("ARGUS_BENCH_ROUNDS", 3).max(1);
    let am_bin = std::env::var("ARGUS_TEST_ALERTMANAGER")
        .unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".into());
    if !Path::new(&am_bin).exists() {
        eprintln!("skipped: {am_bin} does not exist (apt-get install prometheus-alertmanager)");
        return;
    }
    let (hook_port, hooks) = receiver().await;
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(conns + 16)
        .build()
        .unwrap();
    let load_before = loadavg();
    let systems: Vec<System> = [System::Alertmanager, System::Argus]
        .into_iter()
        .filter(|s| {
            std::env::var("ARGUS_BENCH_SYSTEMS")
                .map_or(true, |v| v.split(',').any(|x| x.trim() == s.tag()))
        })
        .collect();
    if systems.len() < 2 {
        // Profiling runs: print each round, no table.
        for r in 1..=rounds {
            for &s in &systems {
                let t = throughput(&c, s, hook_port, &hooks, n, conns).await;
                println!("round {r} {s:?} throughput: {t:?}");
                let l = latency(&c, s, hook_port, &hooks, rate, secs).await;
                println!("round {r} {s:?} latency: {l:?}");
            }
        }
        return;
    }
    let mut tp: HashMap<System, Vec<Throughput>> = HashMap::new();
    let mut lat: HashMap<System, Vec<Latency>> = HashMap::new();
    for r in 1..=rounds {
        for &s in &systems {
            let t = throughput(&c, s, hook_port, &hooks, n, conns).await;
            println!(
                "round {r} {s:?} throughput: accepted {:.0}/s, every group notified {:.0}/s \
                 (drain {:.0} ms after the last POST, {} groups missing), load {}",
                t.accepted_per_s,
                t.delivered_per_s,
                ms(t.drain),
                t.groups_missing,
                loadavg()
            );
            tp.entry(s).or_default().push(t);
        }
        for &s in &systems {
            let l = latency(&c, s, hook_port, &hooks, rate, secs).await;
            println!(
                "round {r} {s:?} latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms, \
                 {} lost (POST answered p50 {:.1} ms, p99 {:.1} ms), load {}",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                l.lost,
                ms(l.post_p50),
                ms(l.post_p99),
                loadavg()
            );
            lat.entry(s).or_default().push(l);
        }
    }
    let load_after = loadavg();
    let med_tp = |s: System, f: fn(&Throughput) -> f64| median_f(tp[&s].iter().map(f).collect());
    let med_lat = |s: System, f: fn(&Latency) -> Duration| {
        median_f(lat[&s].iter().map(|l| ms(f(l))).collect())
    };
    println!();
    println!(
        "{n} alerts, {ALERTNAMES} alertnames, {BATCH} per POST, {conns} connections; \
         latency: {rate} alerts/s for {secs} s, each a new group; group_wait 0s; \
         median of {rounds} rounds; load average {load_before} before, {load_after} after"
    );
    println!();
    println!("| metric | Alertmanager 0.25 | Argus | Argus advantage |");
    println!("|---|---:|---:|---:|");
    type Tf = fn(&Throughput) -> f64;
    let rows: [(&str, Tf); 2] = [
        ("alerts accepted/s", |t| t.accepted_per_s),
        ("alerts/s, first POST → every group notified", |t| {
            t.delivered_per_s
        }),
    ];
    for (name, f) in rows {
        let (a, b) = (med_tp(System::Alertmanager, f), med_tp(System::Argus, f));
        println!(
            "| {name} | {} | {} | {:.2}× (Argus/AM) |",
            thousands(a),
            thousands(b),
            b / a
        );
    }
    type Lf = fn(&Latency) -> Duration;
    let rows: [(&str, Lf); 6] = [
        ("alert → webhook p50 ms", |l| l.p50),
        ("alert → webhook p90 ms", |l| l.p90),
        ("alert → webhook p99 ms", |l| l.p99),
        ("alert → webhook max ms", |l| l.max),
        ("of which POST answered p50 ms", |l| l.post_p50),
        ("of which POST answered p99 ms", |l| l.post_p99),
    ];
    for (name, f) in rows {
        let (a, b) = (med_lat(System::Alertmanager, f), med_lat(System::Argus, f));
        println!("| {name} | {a:.1} | {b:.1} | {:.2}× (AM/Argus) |", a / b);
    }
    let lost = |s: System| lat[&s].iter().map(|l| l.lost).sum::<usize>();
    let missing = |s: System| tp[&s].iter().map(|t| t.groups_missing).sum::<usize>();
    println!(
        "\nlost (never notified) over all rounds: latency alerts AM {} / Argus {}, \
         throughput groups AM {} / Argus {}",
        lost(System::Alertmanager),
        lost(System::Argus),
        missing(System::Alertmanager),
        missing(System::Argus)
    );
    println!("Argus advantage > 1 means Argus is better: throughput Argus/AM, latency AM/Argus.");
}
