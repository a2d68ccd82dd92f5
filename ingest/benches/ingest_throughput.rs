//! Collector throughput: log lines per second from the Loki push API into the event log,
//! beside a bare rdkafka producer sending the same records to the same broker in the same
//! run, and samples per second through Prometheus remote write.
//!
//! `cargo bench -p argus-ingest --bench ingest_throughput`. The Kafka rows need
//! `ARGUS_TEST_KAFKA` (e.g. from `deploy/start-kafka.sh`); the embedded rows always run.
//!
//! - The real routers ([`argus_ingest::loki_push::router`],
//!   [`argus_ingest::remote_write::router`]) are served in-process on `127.0.0.1:0` and
//!   fed over HTTP/1.1 by `ARGUS_BENCH_CONNECTIONS` (default 4) concurrent connections.
//!   A line counts once its push was answered 204, i.e. once the event log has it.
//! - Loki pushes are snappy-compressed protobuf as Promtail sends them: 100 streams
//!   (Kubernetes-like labels), 1000 lines of about 200 bytes per push (50 lines each of 20
//!   streams). `ARGUS_BENCH_LINES` lines in all (default 100000).
//! - Remote write requests: 1000 series × 10 samples each, node_exporter-like series
//!   (10000 in all), snappy. `ARGUS_BENCH_SAMPLES` samples in all (default 1000000).
//! - Kafka rows: the standard topics (the event log writes to `argus.logs` and
//!   `argus.metrics`; their names are fixed), once with the disk spool off (records go
//!   through the idempotent producer) and once with it on, as `argus run` configures it
//!   (records go through the spool's short-timeout producer; the row says how many were
//!   spooled instead of sent, and the time until the spool had drained).
//! - The bare baseline is an rdkafka `FutureProducer` with the producer settings of
//!   `argus_bus::kafka::KafkaLog::connect` (idempotent, `acks=all`, lz4, `linger.ms=5`),
//!   writing to a fresh topic with as many partitions as the Argus topic, up to
//!   `connections × 1000` records in flight. Its records are built before the clock
//!   starts, in two variants: the same records Argus writes (key = stream fingerprint,
//!   value = the JSON envelope bytes) and the bare lines (key = the stream's label set,
//!   value = the line's bytes).
//! - Every path runs `ARGUS_BENCH_ROUNDS` times (default 2), the paths taking turns, so
//!   that load from other processes on the machine falls on all of them; the tables give
//!   each path's best run and all its runs, and the ratios are of the best runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use argus_bus::{BusConfig, EventLog, KafkaConfig, SpoolConfig, TopicSpec};
use argus_ingest::loki_push::{EntryAdapter, ProtoTimestamp, PushRequest, StreamAdapter};
use argus_ingest::remote_write::proto;
use argus_schemas::{Envelope, Labels, LogEntry, MetricSamples, Payload, Sample, Timestamp};
use axum::body::Bytes;
use prost::Message;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const TENANT: &str = "bench";
const STREAMS: usize = 100;
const LINES_PER_PUSH: usize = 1000;
const STREAMS_PER_PUSH: usize = 20;
const SERIES: usize = 10_000;
const SERIES_PER_WRITE: usize = 1000;
const SAMPLES_PER_SERIES: usize = 10;
/// 2025-01-01T00:00:00Z.
const START_MS: i64 = 1_735_689_600_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------

fn stream_labels(s: usize) -> Vec<(String, String)> {
    let app = ["api", "web", "worker", "billing", "auth"][s % 5];
    vec![
        ("app".into(), app.into()),
        ("container".into(), app.into()),
        (
            "filename".into(),
            format!("/var/log/pods/{app}-{s:03}/0.log"),
        ),
        ("job".into(), format!("prod/{app}")),
        ("namespace".into(), format!("team-{}", s % 7)),
        ("node".into(), format!("node-{:02}", s % 12)),
        ("pod".into(), format!("{app}-7d9f8c-{s:03}x")),
        (
            "stream".into(),
            if s.is_multiple_of(4) {
                "stderr"
            } else {
                "stdout"
            }
            .into(),
        ),
    ]
}

fn label_set_text(pairs: &[(String, String)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// A logfmt access-log line of about 200 bytes; varied like real traffic.
fn log_line(i: usize, ts_ns: i64) -> String {
    const PATHS: [&str; 6] = [
        "/api/v1/orders",
        "/api/v1/users/me",
        "/healthz",
        "/api/v1/cart/items",
        "/static/app.js",
        "/api/v1/search",
    ];
    const STATUS: [u16; 8] = [200, 200, 200, 201, 204, 304, 404, 500];
    let secs = ts_ns / 1_000_000_000;
    let level = if i.is_multiple_of(97) {
        "error"
    } else {
        "info"
    };
    format!(
        "ts={secs}.{:09} level={level} caller=http.go:{} msg=\"request served\" method={} \
         path={}/{} status={} bytes={} duration_ms={}.{:03} client=10.{}.{}.{} trace_id={:016x}",
        ts_ns % 1_000_000_000,
        100 + i % 400,
        if i.is_multiple_of(3) { "POST" } else { "GET" },
        PATHS[i % PATHS.len()],
        (i * 7919) % 100_000,
        STATUS[(i / 3) % STATUS.len()],
        (i * 131) % 65_536,
        (i * 17) % 900,
        (i * 31) % 1000,
        i % 7,
        (i / 7) % 256,
        (i * 13) % 256,
        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    )
}

/// One line as the bench sends it and as the baselines write it.
struct Line {
    stream: usize,
    ts_ns: i64,
    text: String,
}

struct LokiWorkload {
    /// Snappy-compressed `PushRequest`s.
    bodies: Vec<Bytes>,
    lines: Vec<Line>,
    raw_bytes: usize,
}

fn loki_workload(n: usize) -> LokiWorkload {
    let pushes = n.div_ceil(LINES_PER_PUSH);
    let per_stream = LINES_PER_PUSH / STREAMS_PER_PUSH;
    let label_text: Vec<String> = (0..STREAMS)
        .map(|s| label_set_text(&stream_labels(s)))
        .collect();
    let mut lines = Vec::with_capacity(pushes * LINES_PER_PUSH);
    let mut bodies = Vec::with_capacity(pushes);
    let mut raw_bytes = 0;
    for p in 0..pushes {
        let mut req = PushRequest { streams: vec![] };
        for k in 0..STREAMS_PER_PUSH {
            let s = (p * STREAMS_PER_PUSH + k) % STREAMS;
            let mut entries = Vec::with_capacity(per_stream);
            for _ in 0..per_stream {
                let i = lines.len();
                let ts_ns = START_MS * 1_000_000 + i as i64 * 1_000_000;
                let text = log_line(i, ts_ns);
                raw_bytes += text.len();
                entries.push(EntryAdapter {
                    timestamp: Some(ProtoTimestamp {
                        seconds: ts_ns / 1_000_000_000,
                        nanos: (ts_ns % 1_000_000_000) as i32,
                    }),
                    line: text.clone(),
                    structured_metadata: vec![],
                });
                lines.push(Line {
                    stream: s,
                    ts_ns,
                    text,
                });
            }
            req.streams.push(StreamAdapter {
                labels: label_text[s].clone(),
                entries,
                hash: 0,
            });
        }
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .expect("snappy compresses");
        bodies.push(Bytes::from(body));
    }
    LokiWorkload {
        bodies,
        lines,
        raw_bytes,
    }
}

/// The records the Loki push receiver writes for `lines`: key = stream fingerprint,
/// value = the JSON envelope.
fn loki_envelope_records(lines: &[Line]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let labels: Vec<Labels> = (0..STREAMS)
        .map(|s| Labels::from_pairs(stream_labels(s)))
        .collect();
    lines
        .iter()
        .map(|l| {
            let ts = Timestamp(l.ts_ns);
            let e = Envelope::new(
                TENANT,
                "loki-push",
                ts,
                Payload::LogEntry(LogEntry {
                    labels: labels[l.stream].clone(),
                    timestamp: ts,
                    line: l.text.clone(),
                    structured_metadata: Labels::new(),
                }),
            );
            (e.key.clone().into_bytes(), argus_schemas::encode(&e))
        })
        .collect()
}

/// The bare lines: key = the stream's label set, value = the line.
fn loki_line_records(lines: &[Line]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let label_text: Vec<String> = (0..STREAMS)
        .map(|s| label_set_text(&stream_labels(s)))
        .collect();
    lines
        .iter()
        .map(|l| {
            (
                label_text[l.stream].clone().into_bytes(),
                l.text.clone().into_bytes(),
            )
        })
        .collect()
}

fn series_labels(s: usize) -> Vec<proto::Label> {
    const NAMES: [&str; 8] = [
        "node_cpu_seconds_total",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_disk_read_bytes_total",
        "node_disk_written_bytes_total",
        "node_filesystem_avail_bytes",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
    ];
    const MODES: [&str; 5] = ["user", "system", "idle", "iowait", "irq"];
    let l = |n: &str, v: String| proto::Label {
        name: n.into(),
        value: v,
    };
    // Sorted by name, as Prometheus sends them.
    vec![
        l("__name__", NAMES[s % NAMES.len()].into()),
        l(
            "instance",
            format!("10.0.{}.{}:9100", s / 250 % 40, s % 250),
        ),
        l("job", "node".into()),
        l("le", format!("{}", (s / 8) % 12)),
        l("mode", MODES[(s / 8) % MODES.len()].into()),
        l("series", format!("{s}")),
    ]
}

struct RwWorkload {
    bodies: Vec<Bytes>,
    /// Per request: the series index of each time series and its first timestamp.
    series: Vec<(usize, i64)>,
}

fn rw_workload(samples: usize) -> RwWorkload {
    let per_request = SERIES_PER_WRITE * SAMPLES_PER_SERIES;
    let requests = samples.div_ceil(per_request);
    let mut bodies = Vec::with_capacity(requests);
    let mut series = Vec::with_capacity(requests * SERIES_PER_WRITE);
    for r in 0..requests {
        // Each request covers the next 1000 series; a full round over the 10000 series
        // moves 10 samples (150 s) ahead.
        let round = (r * SERIES_PER_WRITE / SERIES) as i64;
        let t0 = START_MS + round * SAMPLES_PER_SERIES as i64 * 15_000;
        let mut req = proto::WriteRequest {
            timeseries: Vec::with_capacity(SERIES_PER_WRITE),
            metadata: vec![],
        };
        for k in 0..SERIES_PER_WRITE {
            let s = (r * SERIES_PER_WRITE + k) % SERIES;
            let samples = (0..SAMPLES_PER_SERIES)
                .map(|j| proto::Sample {
                    value: sample_value(s, t0, j),
                    timestamp: t0 + j as i64 * 15_000,
                })
                .collect();
            req.timeseries.push(proto::TimeSeries {
                labels: series_labels(s),
                samples,
                exemplars: vec![],
                histograms: vec![],
            });
            series.push((s, t0));
        }
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .expect("snappy compresses");
        bodies.push(Bytes::from(body));
    }
    RwWorkload { bodies, series }
}

fn sample_value(s: usize, t0: i64, j: usize) -> f64 {
    ((t0 / 15_000) as f64 + j as f64) * (1.0 + (s % 13) as f64 * 0.37)
}

/// The records the remote-write receiver writes: key = series fingerprint, value = the
/// JSON envelope of its `metric_samples`.
fn rw_envelope_records(series: &[(usize, i64)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    series
        .iter()
        .map(|&(s, t0)| {
            let labels =
                Labels::from_pairs(series_labels(s).into_iter().map(|l| (l.name, l.value)));
            let samples: Vec<Sample> = (0..SAMPLES_PER_SERIES)
                .map(|j| Sample {
                    timestamp_ms: t0 + j as i64 * 15_000,
                    value: sample_value(s, t0, j),
                })
                .collect();
            let newest = samples.last().map(|s| s.timestamp_ms).unwrap_or(0);
            let e = Envelope::new(
                TENANT,
                "remote-write",
                Timestamp::from_millis(newest),
                Payload::MetricSamples(MetricSamples { labels, samples }),
            );
            (e.key.clone().into_bytes(), argus_schemas::encode(&e))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------------------

async fn serve(router: axum::Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let h = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, h)
}

/// Posts every body over `conns` concurrent connections; each must be answered 204.
async fn post_all(
    url: String,
    bodies: Arc<Vec<Bytes>>,
    headers: &'static [(&'static str, &'static str)],
    conns: usize,
) -> Duration {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (client, url, bodies, next) =
                (client.clone(), url.clone(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let mut req = client.post(&url).header("x-scope-orgid", TENANT);
                    for (k, v) in headers {
                        req = req.header(*k, *v);
                    }
                    let resp = req.body(body.clone()).send().await.unwrap();
                    let status = resp.status();
                    if status.as_u16() != 204 {
                        let text = resp.text().await.unwrap_or_default();
                        panic!("request {i}: {status}: {text}");
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    t.elapsed()
}

/// The producer settings of `KafkaLog::connect` (without a spool).
fn bare_producer(addr: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("client.id", "argus-bench-bare")
        .set("broker.address.family", "v4")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000")
        .create()
        .unwrap()
}

/// Sends every record with up to `window` unacknowledged; returns when all are.
async fn bare_send(
    addr: &str,
    topic: &str,
    recs: &[(Vec<u8>, Vec<u8>)],
    window: usize,
) -> Duration {
    let producer = bare_producer(addr);
    let t = Instant::now();
    let mut futs = std::collections::VecDeque::with_capacity(window);
    for (k, v) in recs {
        loop {
            match producer.send_result(FutureRecord::to(topic).key(k).payload(v)) {
                Ok(f) => {
                    futs.push_back(f);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        while futs.len() >= window {
            futs.pop_front().unwrap().await.unwrap().unwrap();
        }
    }
    for f in futs {
        f.await.unwrap().unwrap();
    }
    t.elapsed()
}

fn kafka_config(addr: &str, spool_dir: Option<&std::path::Path>) -> BusConfig {
    BusConfig {
        kafka: Some(KafkaConfig {
            brokers: vec![addr.to_string()],
            client_id: "argus-bench".into(),
            partitions: argus_bus::config::DEFAULT_KAFKA_PARTITIONS,
            replication_factor: 1,
            retention: Duration::from_secs(3600),
            compression: "lz4".into(),
            properties: Default::default(),
            spool: SpoolConfig {
                enabled: spool_dir.is_some(),
                dir: spool_dir.map(|d| d.to_path_buf()).unwrap_or_default(),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

fn spooled_total() -> u64 {
    argus_bus::metrics::SPOOLED
        .with_label_values(&[argus_schemas::topics::LOGS])
        .get()
        + argus_bus::metrics::SPOOLED
            .with_label_values(&[argus_schemas::topics::METRICS])
            .get()
}

/// One measured path and its runs: units (lines or samples) per second until the last
/// 204 or delivery, and a note.
struct Row {
    path: String,
    runs: Vec<(f64, String)>,
}

/// Rows in the order first measured; a path measured again (another round) adds a run.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn add(&mut self, path: String, rate: f64, note: String) {
        match self.rows.iter_mut().find(|r| r.path == path) {
            Some(r) => r.runs.push((rate, note)),
            None => self.rows.push(Row {
                path,
                runs: vec![(rate, note)],
            }),
        }
    }

    fn best(&self, suffix: &str) -> Option<f64> {
        let r = self.rows.iter().find(|r| r.path.ends_with(suffix))?;
        r.runs.iter().map(|(rate, _)| *rate).reduce(f64::max)
    }

    fn print(&self, unit: &str) {
        println!("| path | {unit}/s (best) | all runs | notes (best run) |");
        println!("|---|---:|---|---|");
        for r in &self.rows {
            let (rate, note) = r
                .runs
                .iter()
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .expect("a row has a run");
            let all: Vec<String> = r.runs.iter().map(|(x, _)| format!("{x:.0}")).collect();
            println!("| {} | {rate:.0} | {} | {note} |", r.path, all.join(", "));
        }
    }
}

#[derive(Clone, Copy)]
enum Which {
    Loki,
    RemoteWrite,
}

const LOKI_HEADERS: &[(&str, &str)] = &[("content-type", "application/x-protobuf")];
const RW_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

/// Serves the real router over `log`, posts every body, and returns units per second.
async fn through_argus(
    log: &EventLog,
    which: Which,
    bodies: Arc<Vec<Bytes>>,
    units: usize,
    conns: usize,
) -> (f64, Duration) {
    let (router, path, headers) = match which {
        Which::Loki => (
            argus_ingest::loki_push::router(log.clone()),
            "/loki/api/v1/push",
            LOKI_HEADERS,
        ),
        Which::RemoteWrite => (
            argus_ingest::remote_write::router(log.clone()),
            "/api/v1/write",
            RW_HEADERS,
        ),
    };
    let (addr, server) = serve(router).await;
    let took = post_all(format!("http://{addr}{path}"), bodies, headers, conns).await;
    server.abort();
    (units as f64 / took.as_secs_f64(), took)
}

/// Argus rows for one workload: embedded, and on Kafka without and with the spool.
async fn argus_rows(
    which: Which,
    what: &str,
    bodies: Arc<Vec<Bytes>>,
    units: usize,
    conns: usize,
    kafka: Option<&str>,
    table: &mut Table,
) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&BusConfig::embedded_at(dir.path()))
        .await
        .unwrap();
    let (rate, took) = through_argus(&log, which, bodies.clone(), units, conns).await;
    log.close().await.unwrap();
    table.add(
        format!("{what} → argus embedded (sync=full)"),
        rate,
        format!("{took:.1?}"),
    );
    let Some(addr) = kafka else { return };

    let log = EventLog::open(&kafka_config(addr, None)).await.unwrap();
    let (rate, took) = through_argus(&log, which, bodies.clone(), units, conns).await;
    log.close().await.unwrap();
    table.add(
        format!("{what} → argus kafka, spool off"),
        rate,
        format!("{took:.1?}"),
    );

    let spool = tempfile::tempdir().unwrap();
    let log = EventLog::open(&kafka_config(addr, Some(spool.path())))
        .await
        .unwrap();
    let before = spooled_total();
    let (rate, took) = through_argus(&log, which, bodies, units, conns).await;
    let spooled = spooled_total() - before;
    let t = Instant::now();
    while log.spool().is_some_and(|s| !s.is_empty()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = took + t.elapsed();
    log.close().await.unwrap();
    table.add(
        format!("{what} → argus kafka, spool on (as `argus run`)"),
        rate,
        if spooled == 0 {
            format!("{took:.1?}; 0 records spooled")
        } else {
            format!(
                "{took:.1?}; {spooled} records spooled, drained after {drained:.1?} \
                 ({:.0}/s to Kafka)",
                units as f64 / drained.as_secs_f64()
            )
        },
    );
}

/// A fresh topic with as many partitions as `like`.
async fn fresh_topic(addr: &str, like: &str, name: String) -> String {
    let log = EventLog::open(&kafka_config(addr, None)).await.unwrap();
    let partitions = log.partitions(like).await.unwrap();
    log.ensure_topics(&[TopicSpec {
        name: name.clone(),
        partitions,
        retention: Duration::from_secs(3600),
        retention_bytes: None,
        compacted: false,
    }])
    .await
    .unwrap();
    log.close().await.unwrap();
    name
}

async fn bare_row(
    addr: &str,
    topic: &str,
    recs: &[(Vec<u8>, Vec<u8>)],
    units: usize,
    window: usize,
    path: &str,
    table: &mut Table,
) {
    let bytes: usize = recs.iter().map(|(k, v)| k.len() + v.len()).sum();
    let took = bare_send(addr, topic, recs, window).await;
    table.add(
        path.to_string(),
        units as f64 / took.as_secs_f64(),
        format!(
            "{took:.1?}; {} records, {:.0} B/record",
            recs.len(),
            bytes as f64 / recs.len() as f64
        ),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let lines = env_usize("ARGUS_BENCH_LINES", 100_000);
    let samples = env_usize("ARGUS_BENCH_SAMPLES", 1_000_000);
    let conns = env_usize("ARGUS_BENCH_CONNECTIONS", 4).max(1);
    let rounds = env_usize("ARGUS_BENCH_ROUNDS", 2).max(1);
    let kafka = std::env::var("ARGUS_TEST_KAFKA").ok();
    if kafka.is_none() {
        eprintln!("ARGUS_TEST_KAFKA not set: Kafka rows skipped");
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let window = conns * LINES_PER_PUSH;
    let mut loki = Table::default();
    let mut rw = Table::default();
    const SAME: &str = "bare rdkafka, same records (envelopes)";
    const LINES: &str = "bare rdkafka, bare lines";

    // Loki push.
    let w = loki_workload(lines);
    let lines = w.lines.len();
    let wire: usize = w.bodies.iter().map(Bytes::len).sum();
    let bodies = Arc::new(w.bodies);
    let bare = match kafka.as_deref() {
        Some(addr) => Some((
            fresh_topic(
                addr,
                argus_schemas::topics::LOGS,
                format!("bench.loki.bare.{stamp}"),
            )
            .await,
            loki_envelope_records(&w.lines),
            loki_line_records(&w.lines),
        )),
        None => None,
    };
    for round in 0..rounds {
        eprintln!("loki push, round {}/{rounds}", round + 1);
        argus_rows(
            Which::Loki,
            "loki push",
            bodies.clone(),
            lines,
            conns,
            kafka.as_deref(),
            &mut loki,
        )
        .await;
        if let (Some(addr), Some((topic, same, bare_lines))) = (kafka.as_deref(), &bare) {
            bare_row(addr, topic, same, lines, window, SAME, &mut loki).await;
            bare_row(addr, topic, bare_lines, lines, window, LINES, &mut loki).await;
        }
    }
    drop(bare);
    drop(bodies);
    let raw_bytes = w.raw_bytes;
    drop(w.lines);

    // Remote write.
    let RwWorkload { bodies, series } = rw_workload(samples);
    let samples = series.len() * SAMPLES_PER_SERIES;
    let requests = bodies.len();
    let rw_wire: usize = bodies.iter().map(Bytes::len).sum();
    let bodies = Arc::new(bodies);
    let bare = match kafka.as_deref() {
        Some(addr) => Some((
            fresh_topic(
                addr,
                argus_schemas::topics::METRICS,
                format!("bench.rw.bare.{stamp}"),
            )
            .await,
            rw_envelope_records(&series),
        )),
        None => None,
    };
    for round in 0..rounds {
        eprintln!("remote write, round {}/{rounds}", round + 1);
        argus_rows(
            Which::RemoteWrite,
            "remote write",
            bodies.clone(),
            samples,
            conns,
            kafka.as_deref(),
            &mut rw,
        )
        .await;
        if let (Some(addr), Some((topic, same))) = (kafka.as_deref(), &bare) {
            bare_row(addr, topic, same, samples, window, SAME, &mut rw).await;
        }
    }

    println!(
        "\nLoki push: {lines} lines ({:.0} B/line), {} pushes of {LINES_PER_PUSH} lines \
         ({STREAMS_PER_PUSH} of {STREAMS} streams each), snappy protobuf, {:.0} KiB/push on \
         the wire, {conns} connections, {rounds} rounds\n",
        raw_bytes as f64 / lines as f64,
        lines / LINES_PER_PUSH,
        wire as f64 / 1024.0 / (lines / LINES_PER_PUSH) as f64
    );
    loki.print("lines");
    println!();
    for a in ["spool off", "(as `argus run`)"] {
        for b in [SAME, LINES] {
            if let (Some(x), Some(y)) = (loki.best(a), loki.best(b)) {
                println!("- argus kafka {a} / {b}: {:.2}x", x / y);
            }
        }
    }
    println!(
        "\nRemote write: {samples} samples, {requests} requests of {SERIES_PER_WRITE} series × \
         {SAMPLES_PER_SERIES} samples ({SERIES} series), snappy, {:.0} KiB/request on the \
         wire, {conns} connections, {rounds} rounds\n",
        rw_wire as f64 / 1024.0 / requests as f64
    );
    rw.print("samples");
    println!();
    for a in ["spool off", "(as `argus run`)"] {
        if let (Some(x), Some(y)) = (rw.best(a), rw.best(SAME)) {
            println!("- argus kafka {a} / {SAME}: {:.2}x", x / y);
        }
    }
}
