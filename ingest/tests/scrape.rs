//! The scraper end to end: relabeling rules (expectations from Prometheus' docs and
//! relabel tests), then real scrapes of local axum servers into an embedded event log
//! (formats, gzip, honor_labels, timestamps, limits, staleness, file discovery), then
//! Debian's node_exporter and Prometheus when `ARGUS_TEST_NODE_EXPORTER` /
//! `ARGUS_TEST_PROMETHEUS` name them (skipped otherwise, unless
//! `ARGUS_REQUIRE_SERVICES` is set).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argus_bus::EventLog;
use argus_ingest::scrape::relabel::{RelabelConfig, process};
use argus_ingest::scrape::{ScrapeConfig, ScrapeError};
use argus_schemas::{Envelope, Labels, Payload, STALE_NAN_BITS, topics};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod common;

// ---------------------------------------------------------------------------------
// Relabeling
// ---------------------------------------------------------------------------------

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Applies relabel steps written in YAML (as in a Prometheus config) to `input`.
fn relabel(yaml: &str, input: &[(&str, &str)]) -> Option<Labels> {
    let cfgs: Vec<RelabelConfig> = serde_yaml_ng::from_str(yaml).expect("relabel yaml");
    let steps: Vec<_> = cfgs
        .iter()
        .map(|c| c.compile().expect("valid relabel config"))
        .collect();
    process(labels(input), &steps)
}

fn compile_error(yaml: &str) -> String {
    let cfgs: Vec<RelabelConfig> = serde_yaml_ng::from_str(yaml).expect("relabel yaml");
    cfgs[0].compile().expect_err("config must be refused")
}

/// One relabeling case: steps, input, expected output (`None`: dropped).
struct Case {
    name: &'static str,
    yaml: &'static str,
    input: &'static [(&'static str, &'static str)],
    want: Option<&'static [(&'static str, &'static str)]>,
}

fn run_cases(cases: &[Case]) {
    for c in cases {
        let got = relabel(c.yaml, c.input);
        let want = c.want.map(labels);
        assert_eq!(got, want, "case {:?}", c.name);
    }
}

#[test]
fn relabel_replace() {
    run_cases(&[
        Case {
            name: "defaults copy the source value",
            yaml: "- source_labels: [a]\n  target_label: b\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo"), ("b", "foo")]),
        },
        Case {
            name: "capture group with ${1}",
            yaml: "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ${1}bar\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo"), ("d", "oobar")]),
        },
        Case {
            name: "no match changes nothing",
            yaml: "- source_labels: [a]\n  regex: x(.*)\n  target_label: d\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo")]),
        },
        Case {
            name: "the regex is anchored at both ends",
            yaml: "- source_labels: [a]\n  regex: o\n  target_label: d\n  replacement: hit\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo")]),
        },
        Case {
            name: "sources joined by the separator",
            yaml: "- source_labels: [a, b]\n  separator: ','\n  regex: '(.*),(.*)'\n  target_label: c\n  replacement: $2-$1\n",
            input: &[("a", "x"), ("b", "y")],
            want: Some(&[("a", "x"), ("b", "y"), ("c", "y-x")]),
        },
        Case {
            name: "a missing source label is the empty string (default separator ;)",
            yaml: "- source_labels: [a, missing, b]\n  target_label: c\n",
            input: &[("a", "x"), ("b", "y")],
            want: Some(&[("a", "x"), ("b", "y"), ("c", "x;;y")]),
        },
        Case {
            name: "an empty replacement removes the target label",
            yaml: "- source_labels: [nothere]\n  target_label: a\n",
            input: &[("a", "foo"), ("b", "bar")],
            want: Some(&[("b", "bar")]),
        },
        Case {
            name: "target_label is expanded too",
            yaml: "- source_labels: [a]\n  regex: '(.*)'\n  target_label: ${1}\n  replacement: bar\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo"), ("foo", "bar")]),
        },
        Case {
            name: "an expanded target that is not a label name changes nothing",
            yaml: "- source_labels: [a]\n  regex: '(.*)'\n  target_label: $1\n  replacement: bar\n",
            input: &[("a", "1-not-a-name")],
            want: Some(&[("a", "1-not-a-name")]),
        },
        Case {
            name: "$1x names group 1x (empty), so the label is removed",
            yaml: "- source_labels: [a]\n  target_label: b\n  replacement: $1x\n",
            input: &[("a", "foo"), ("b", "old")],
            want: Some(&[("a", "foo")]),
        },
        Case {
            name: "${1}x appends",
            yaml: "- source_labels: [a]\n  target_label: b\n  replacement: ${1}x\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo"), ("b", "foox")]),
        },
        Case {
            name: "$$ is a literal dollar",
            yaml: "- source_labels: [a]\n  target_label: b\n  replacement: $$1\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo"), ("b", "$1")]),
        },
        Case {
            name: "named groups",
            yaml: "- source_labels: [__address__]\n  regex: '(?P<host>[^:]+):(?P<port>\\d+)'\n  target_label: host\n  replacement: ${host}\n",
            input: &[("__address__", "db1:9100")],
            want: Some(&[("__address__", "db1:9100"), ("host", "db1")]),
        },
        Case {
            name: "the dot matches a newline",
            yaml: "- source_labels: [a]\n  regex: 'x.y'\n  target_label: b\n  replacement: ok\n",
            input: &[("a", "x\ny")],
            want: Some(&[("a", "x\ny"), ("b", "ok")]),
        },
        Case {
            name: "the address rewrite of the docs (port replaced)",
            yaml: "- source_labels: [__address__]\n  regex: '([^:]+)(?::\\d+)?'\n  target_label: __address__\n  replacement: $1:9100\n",
            input: &[("__address__", "10.0.0.1:80")],
            want: Some(&[("__address__", "10.0.0.1:9100")]),
        },
    ]);
}

#[test]
fn relabel_keep_and_drop() {
    run_cases(&[
        Case {
            name: "keep when matching",
            yaml: "- source_labels: [a]\n  regex: f.*\n  action: keep\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo")]),
        },
        Case {
            name: "keep drops when not matching (anchored)",
            yaml: "- source_labels: [a]\n  regex: o.*\n  action: keep\n",
            input: &[("a", "foo")],
            want: None,
        },
        Case {
            name: "keep with .+ drops a missing label",
            yaml: "- source_labels: [missing]\n  regex: .+\n  action: keep\n",
            input: &[("a", "foo")],
            want: None,
        },
        Case {
            name: "drop when matching",
            yaml: "- source_labels: [a]\n  regex: f|foo\n  action: drop\n",
            input: &[("a", "foo")],
            want: None,
        },
        Case {
            name: "drop keeps when not matching",
            yaml: "- source_labels: [a]\n  regex: bar\n  action: drop\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo")]),
        },
        Case {
            name: "action names are case-insensitive",
            yaml: "- source_labels: [a]\n  regex: foo\n  action: Drop\n",
            input: &[("a", "foo")],
            want: None,
        },
        Case {
            name: "keepequal keeps when equal",
            yaml: "- source_labels: [a]\n  target_label: b\n  action: keepequal\n",
            input: &[("a", "x"), ("b", "x")],
            want: Some(&[("a", "x"), ("b", "x")]),
        },
        Case {
            name: "keepequal drops when different",
            yaml: "- source_labels: [a]\n  target_label: b\n  action: keepequal\n",
            input: &[("a", "x"), ("b", "y")],
            want: None,
        },
        Case {
            name: "dropequal drops when equal (docs: drop when port differs example)",
            yaml: "- source_labels: [__tmp_port]\n  target_label: __port1\n  action: dropequal\n",
            input: &[("__tmp_port", "1234"), ("__port1", "1234")],
            want: None,
        },
        Case {
            name: "dropequal keeps when different",
            yaml: "- source_labels: [a]\n  target_label: b\n  action: dropequal\n",
            input: &[("a", "x"), ("b", "y")],
            want: Some(&[("a", "x"), ("b", "y")]),
        },
    ]);
}

#[test]
fn relabel_hashmod_labelmap_labeldrop_labelkeep_case() {
    run_cases(&[
        Case {
            name: "hashmod (Prometheus' own example: baz mod 1000 = 976)",
            yaml: "- source_labels: [c]\n  target_label: d\n  modulus: 1000\n  action: hashmod\n",
            input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
        },
        Case {
            name: "hashmod sharding then keep",
            yaml: "- source_labels: [__address__]\n  modulus: 3\n  target_label: __tmp_shard\n  action: hashmod\n- source_labels: [__tmp_shard]\n  regex: '2'\n  action: keep\n",
            input: &[("__address__", "10.0.0.1:9100")],
            want: Some(&[("__address__", "10.0.0.1:9100"), ("__tmp_shard", "2")]),
        },
        Case {
            name: "labelmap copies matching labels under the replacement's name",
            yaml: "- regex: '__meta_kubernetes_pod_label_(.+)'\n  action: labelmap\n",
            input: &[
                ("__meta_kubernetes_pod_label_app", "web"),
                ("__meta_kubernetes_pod_label_tier", "fe"),
                ("other", "x"),
            ],
            want: Some(&[
                ("__meta_kubernetes_pod_label_app", "web"),
                ("__meta_kubernetes_pod_label_tier", "fe"),
                ("app", "web"),
                ("other", "x"),
                ("tier", "fe"),
            ]),
        },
        Case {
            name: "labelmap with a prefix in the replacement",
            yaml: "- regex: '(b.*)'\n  replacement: bar_${1}\n  action: labelmap\n",
            input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            want: Some(&[
                ("a", "foo"),
                ("b1", "bar"),
                ("b2", "baz"),
                ("bar_b1", "bar"),
                ("bar_b2", "baz"),
            ]),
        },
        Case {
            name: "labelmap skips results that are not label names",
            yaml: "- regex: '(a)'\n  replacement: 1${1}\n  action: labelmap\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo")]),
        },
        Case {
            name: "labeldrop removes matching names",
            yaml: "- regex: 'b.*'\n  action: labeldrop\n",
            input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            want: Some(&[("a", "foo")]),
        },
        Case {
            name: "labelkeep keeps only matching names",
            yaml: "- regex: 'a|__name__'\n  action: labelkeep\n",
            input: &[("__name__", "m"), ("a", "foo"), ("ab", "bar")],
            want: Some(&[("__name__", "m"), ("a", "foo")]),
        },
        Case {
            name: "labeldrop of everything drops the set",
            yaml: "- regex: '.*'\n  action: labeldrop\n",
            input: &[("a", "foo")],
            want: None,
        },
        Case {
            name: "lowercase",
            yaml: "- source_labels: [a]\n  target_label: a_lower\n  action: lowercase\n",
            input: &[("a", "FoO")],
            want: Some(&[("a", "FoO"), ("a_lower", "foo")]),
        },
        Case {
            name: "uppercase of two sources",
            yaml: "- source_labels: [a, b]\n  target_label: u\n  action: uppercase\n",
            input: &[("a", "x"), ("b", "y")],
            want: Some(&[("a", "x"), ("b", "y"), ("u", "X;Y")]),
        },
        Case {
            name: "lowercase of an empty value removes the target",
            yaml: "- source_labels: [missing]\n  target_label: a\n  action: lowercase\n",
            input: &[("a", "foo"), ("b", "bar")],
            want: Some(&[("b", "bar")]),
        },
        Case {
            name: "steps run in order: replace feeds keep",
            yaml: "- source_labels: [a]\n  regex: '(.).*'\n  target_label: first\n- source_labels: [first]\n  regex: f\n  action: keep\n",
            input: &[("a", "foo")],
            want: Some(&[("a", "foo"), ("first", "f")]),
        },
    ]);
}

#[test]
fn relabel_configs_are_validated() {
    for (yaml, want) in [
        (
            "- source_labels: [a]\n  target_label: b\n  action: hashmod\n",
            "requires non-zero modulus",
        ),
        (
            "- source_labels: [a]\n",
            "replace action requires 'target_label' value",
        ),
        (
            "- source_labels: [a]\n  target_label: 1bad\n",
            "invalid 'target_label'",
        ),
        (
            "- source_labels: [a]\n  target_label: b\n  replacement: x\n  action: lowercase\n",
            "'replacement' can not be set",
        ),
        (
            "- source_labels: [a]\n  target_label: b\n  regex: x\n  action: keepequal\n",
            "requires only 'source_labels'",
        ),
        (
            "- source_labels: [a]\n  regex: x\n  action: labeldrop\n",
            "requires only 'regex'",
        ),
        (
            "- regex: x\n  replacement: 1bad\n  action: labelmap\n",
            "invalid 'replacement'",
        ),
        (
            "- source_labels: [a]\n  regex: '('\n  target_label: b\n",
            "invalid regex",
        ),
    ] {
        let e = compile_error(yaml);
        assert!(e.contains(want), "{yaml}: {e}");
    }
    assert!(serde_yaml_ng::from_str::<Vec<RelabelConfig>>("- action: nope\n").is_err());
    assert!(serde_yaml_ng::from_str::<Vec<RelabelConfig>>("- sourcelabels: [a]\n").is_err());
}

// ---------------------------------------------------------------------------------
// Local targets
// ---------------------------------------------------------------------------------

/// What a test server answers, and what it saw.
#[derive(Default)]
struct Served {
    status: u16,
    body: String,
    content_type: String,
    /// Gzip the body when the request accepts gzip.
    gzip: bool,
    /// Delay before answering.
    delay: Duration,
    requests: Vec<(String, Option<String>, HeaderMap)>,
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<Served>>,
}

async fn serve_metrics(
    State(s): State<Arc<Mutex<Served>>>,
    uri: Uri,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (status, body, ct, gzip, delay) = {
        let mut st = s.lock().unwrap();
        st.requests
            .push((uri.path().to_string(), q.clone(), headers.clone()));
        (
            st.status,
            st.body.clone(),
            st.content_type.clone(),
            st.gzip,
            st.delay,
        )
    };
    tokio::time::sleep(delay).await;
    let accepts_gzip = headers
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let status = StatusCode::from_u16(status).unwrap();
    if gzip && accepts_gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).unwrap();
        let bytes = enc.finish().unwrap();
        (
            status,
            [
                ("content-type", ct),
                ("content-encoding", "gzip".to_string()),
            ],
            bytes,
        )
            .into_response()
    } else {
        (status, [("content-type", ct)], body).into_response()
    }
}

async fn server(body: &str) -> Server {
    let state = Arc::new(Mutex::new(Served {
        status: 200,
        body: body.to_string(),
        content_type: "text/plain; version=0.0.4; charset=utf-8".into(),
        ..Served::default()
    }));
    let app = Router::new()
        .fallback(serve_metrics)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { addr, state }
}

impl Server {
    fn set(&self, f: impl FnOnce(&mut Served)) {
        f(&mut self.state.lock().unwrap());
    }

    fn requests(&self) -> Vec<(String, Option<String>, HeaderMap)> {
        self.state.lock().unwrap().requests.clone()
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ScrapeError>>,
}

fn start(yaml: &str, log: &EventLog) -> Running {
    let cfg: ScrapeConfig = serde_yaml_ng::from_str(yaml).expect("scrape config yaml");
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(argus_ingest::scrape::run(cfg, log.clone(), rx));
    Running { stop, task }
}

impl Running {
    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("scraper stops within 10s")
            .unwrap()
            .unwrap();
    }
}

/// One stored point.
#[derive(Debug, Clone)]
struct Point {
    labels: Labels,
    ts: i64,
    value: f64,
    tenant: String,
    key: String,
    source: String,
}

impl Point {
    fn name(&self) -> &str {
        self.labels.get("__name__").unwrap_or("")
    }

    fn is_stale(&self) -> bool {
        self.value.to_bits() == STALE_NAN_BITS
    }
}

/// Every point on `argus.metrics`, in time order.
async fn points(log: &EventLog) -> Vec<Point> {
    let mut out = Vec::new();
    for p in 0..log.partitions(topics::METRICS).await.unwrap() {
        let mut offset = 0;
        loop {
            let recs = log.read(topics::METRICS, p, offset, 5000).await.unwrap();
            if recs.is_empty() {
                break;
            }
            offset += recs.len() as i64;
            for r in recs {
                let e: Envelope = argus_schemas::decode(&r.value).expect("record decodes");
                let Payload::MetricSamples(m) = &e.payload else {
                    panic!("not metric samples: {e:?}");
                };
                for s in &m.samples {
                    out.push(Point {
                        labels: m.labels.clone(),
                        ts: s.timestamp_ms,
                        value: s.value,
                        tenant: e.tenant.clone(),
                        key: e.key.clone(),
                        source: e.source.clone(),
                    });
                }
            }
        }
    }
    out.sort_by_key(|p| p.ts);
    out
}

/// Waits (up to 15 s) until `pred` holds for the stored points; returns them.
async fn wait_for(log: &EventLog, what: &str, pred: impl Fn(&[Point]) -> bool) -> Vec<Point> {
    for _ in 0..150 {
        let ps = points(log).await;
        if pred(&ps) {
            return ps;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ps = points(log).await;
    let names: Vec<String> = ps
        .iter()
        .rev()
        .take(30)
        .map(|p| format!("{} {}", p.labels, p.value))
        .collect();
    panic!("timed out waiting for {what}; last points: {names:#?}");
}

fn named<'a>(ps: &'a [Point], name: &str) -> Vec<&'a Point> {
    ps.iter().filter(|p| p.name() == name).collect()
}

/// Report values (`up` etc.) in time order.
fn values(ps: &[Point], name: &str) -> Vec<f64> {
    named(ps, name).iter().map(|p| p.value).collect()
}

const EXPOSITION: &str = "\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code=\"200\",method=\"get\"} 1027
http_requests_total{code=\"500\",method=\"get\"} 3
# TYPE temperature gauge
temperature -12.5
# TYPE latency_seconds histogram
latency_seconds_bucket{le=\"0.1\"} 5
latency_seconds_bucket{le=\"+Inf\"} 7
latency_seconds_sum 1.5
latency_seconds_count 7
";

fn job_yaml(name: &str, target: &str, extra: &str) -> String {
    format!(
        "tenant: team-a\nscrape_configs:\n  - job_name: {name}\n    scrape_interval: 300ms\n    scrape_timeout: 250ms\n    static_configs:\n      - targets: ['{target}']\n        labels:\n          env: test\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_text_format_with_target_labels_and_report_series() {
    let (log, _dir) = common::temp_log().await;
    let srv = server(EXPOSITION).await;
    let run = start(&job_yaml("app", &srv.target(), ""), &log);
    let ps = wait_for(&log, "two scrapes", |ps| named(ps, "up").len() >= 2).await;
    run.shutdown().await;

    let inst = srv.target();
    let c200 = ps
        .iter()
        .find(|p| p.name() == "http_requests_total" && p.labels.get("code") == Some("200"))
        .expect("counter stored");
    assert_eq!(
        c200.labels,
        labels(&[
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("env", "test"),
            ("instance", &inst),
            ("job", "app"),
            ("method", "get"),
        ])
    );
    assert_eq!(c200.value, 1027.0);
    assert_eq!(c200.tenant, "team-a");
    assert_eq!(c200.source, "scrape");
    assert_eq!(c200.key, c200.labels.fingerprint().to_string());
    assert!(ps.iter().any(|p| p.name() == "latency_seconds_bucket"
        && p.labels.get("le") == Some("0.1")
        && p.value == 5.0));
    assert_eq!(named(&ps, "temperature")[0].value, -12.5);

    // Report series: the target's labels only, at the scrape's timestamp.
    let up = named(&ps, "up");
    assert_eq!(
        up[0].labels,
        labels(&[
            ("__name__", "up"),
            ("env", "test"),
            ("instance", &inst),
            ("job", "app")
        ])
    );
    assert_eq!(values(&ps, "up")[..2], [1.0, 1.0]);
    assert_eq!(values(&ps, "scrape_samples_scraped")[..2], [7.0, 7.0]);
    assert_eq!(
        values(&ps, "scrape_samples_post_metric_relabeling")[..2],
        [7.0, 7.0]
    );
    assert_eq!(values(&ps, "scrape_series_added")[..2], [7.0, 0.0]);
    let d = values(&ps, "scrape_duration_seconds")[0];
    assert!(d > 0.0 && d < 0.25, "duration {d}");
    let t0 = up[0].ts;
    assert!(
        ps.iter().filter(|p| p.ts == t0).count() >= 12,
        "samples and report series share the scrape timestamp"
    );
    // Scrapes are one interval apart (a slot may be skipped on a busy machine).
    let gap = up[1].ts - up[0].ts;
    assert!(gap > 100, "scrapes {gap} ms apart");
    assert!(
        ps.iter().all(|p| !p.is_stale()),
        "no stale markers while all series stay"
    );

    // What was asked for.
    let reqs = srv.requests();
    let (path, query, headers) = &reqs[0];
    assert_eq!(path, "/metrics");
    assert_eq!(query, &None);
    let accept = headers["accept"].to_str().unwrap();
    assert!(
        accept.starts_with("application/openmetrics-text;version=1.0.0"),
        "{accept}"
    );
    assert!(accept.contains("text/plain;version=0.0.4"), "{accept}");
    assert_eq!(headers["accept-encoding"], "gzip");
    assert_eq!(headers["x-prometheus-scrape-timeout-seconds"], "0.25");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_and_gzip() {
    let (log, _dir) = common::temp_log().await;
    let srv = server(
        "# TYPE jobs counter\njobs_total{kind=\"a\"} 4 1700000000.5\n# TYPE info_thing info\ninfo_thing_info{version=\"1.2\"} 1\n# EOF\n",
    )
    .await;
    srv.set(|s| {
        s.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8".into();
        s.gzip = true;
    });
    let run = start(&job_yaml("om", &srv.target(), ""), &log);
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "up").is_empty()).await;
    run.shutdown().await;
    assert_eq!(values(&ps, "up")[0], 1.0);
    let jobs = named(&ps, "jobs_total");
    assert_eq!(jobs[0].value, 4.0);
    // honor_timestamps (default): the exposition's own timestamp.
    assert_eq!(jobs[0].ts, 1_700_000_000_500);
    assert_eq!(
        named(&ps, "info_thing_info")[0].labels.get("version"),
        Some("1.2")
    );
    assert_eq!(values(&ps, "scrape_samples_scraped")[0], 2.0);
    let reqs = srv.requests();
    assert_eq!(reqs[0].2["accept-encoding"], "gzip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels_false_renames_conflicts_to_exported() {
    let (log, _dir) = common::temp_log().await;
    let srv =
        server("m{job=\"from-app\",instance=\"inside\",exported_job=\"taken\",env=\"\"} 1\n").await;
    let run = start(&job_yaml("j", &srv.target(), ""), &log);
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "m").is_empty()).await;
    run.shutdown().await;
    assert_eq!(
        named(&ps, "m")[0].labels,
        labels(&[
            ("__name__", "m"),
            // empty in the exposition: absent, so no conflict
            ("env", "test"),
            ("exported_exported_job", "from-app"),
            ("exported_instance", "inside"),
            ("exported_job", "taken"),
            ("instance", &srv.target()),
            ("job", "j"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels_true_keeps_scraped_values() {
    let (log, _dir) = common::temp_log().await;
    let srv = server("m{job=\"from-app\",instance=\"inside\"} 1\nn 2\n").await;
    let run = start(
        &job_yaml("j", &srv.target(), "    honor_labels: true\n"),
        &log,
    );
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "n").is_empty()).await;
    run.shutdown().await;
    assert_eq!(
        named(&ps, "m")[0].labels,
        labels(&[
            ("__name__", "m"),
            ("env", "test"),
            ("instance", "inside"),
            ("job", "from-app"),
        ])
    );
    // Where the exposition has none, the target's labels are added.
    assert_eq!(named(&ps, "n")[0].labels.get("job"), Some("j"));
    // Report series always carry the target's labels.
    assert_eq!(named(&ps, "up")[0].labels.get("job"), Some("j"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_timestamps_false_uses_the_scrape_time() {
    let (log, _dir) = common::temp_log().await;
    let srv = server("old 1 1000\n").await;
    let run = start(
        &job_yaml("j", &srv.target(), "    honor_timestamps: false\n"),
        &log,
    );
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "old").is_empty()).await;
    run.shutdown().await;
    let old = named(&ps, "old")[0];
    assert_eq!(old.ts, named(&ps, "up")[0].ts);
    assert!(old.ts > 1_600_000_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_relabeling_sets_address_path_params_and_drops_meta_labels() {
    let (log, _dir) = common::temp_log().await;
    let srv = server("probe_success 1\n").await;
    // The blackbox-exporter pattern of Prometheus' docs: the discovered address becomes
    // a parameter and `instance`, the exporter's address is scraped.
    let yaml = format!(
        "scrape_configs:
  - job_name: blackbox
    scrape_interval: 200ms
    metrics_path: /probe
    params:
      module: [http_2xx]
      extra: ['a b', 'c']
    static_configs:
      - targets: ['example.org:80']
        labels:
          __meta_zone: eu
          team: web
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: '{}'
      - source_labels: [__meta_zone]
        target_label: zone
",
        srv.target()
    );
    let run = start(&yaml, &log);
    let ps = wait_for(&log, "a scrape", |ps| {
        !named(ps, "probe_success").is_empty()
    })
    .await;
    run.shutdown().await;
    assert_eq!(
        named(&ps, "probe_success")[0].labels,
        labels(&[
            ("__name__", "probe_success"),
            ("instance", "example.org:80"),
            ("job", "blackbox"),
            ("team", "web"),
            ("zone", "eu"),
        ])
    );
    let (path, query, _) = &srv.requests()[0];
    assert_eq!(path, "/probe");
    assert_eq!(
        query.as_deref(),
        Some("extra=a+b&extra=c&module=http_2xx&target=example.org%3A80")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_relabeling_and_sample_limit() {
    let (log, _dir) = common::temp_log().await;
    let srv = server("a 1\nb 2\nc{x=\"1\"} 3\nc{x=\"2\"} 4\n").await;
    let extra = "    metric_relabel_configs:
      - source_labels: [__name__]
        regex: b
        action: drop
      - source_labels: [x]
        target_label: y
        replacement: 'y$1'
";
    let run = start(&job_yaml("j", &srv.target(), extra), &log);
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "up").is_empty()).await;
    assert!(named(&ps, "b").is_empty());
    assert_eq!(named(&ps, "c").len(), 2);
    assert!(
        named(&ps, "c")
            .iter()
            .any(|p| p.labels.get("y") == Some("y2"))
    );
    assert_eq!(values(&ps, "scrape_samples_scraped")[0], 4.0);
    assert_eq!(values(&ps, "scrape_samples_post_metric_relabeling")[0], 3.0);
    // Report series are not subject to metric relabeling.
    assert!(named(&ps, "up")[0].labels.get("y").is_none());
    run.shutdown().await;

    // sample_limit 2 < 3 samples after relabeling: the whole scrape fails.
    let (log, _dir2) = common::temp_log().await;
    let run = start(
        &job_yaml("j", &srv.target(), &format!("{extra}    sample_limit: 2\n")),
        &log,
    );
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "up").is_empty()).await;
    run.shutdown().await;
    assert_eq!(values(&ps, "up")[0], 0.0);
    assert!(named(&ps, "a").is_empty() && named(&ps, "c").is_empty());
    assert_eq!(values(&ps, "scrape_samples_scraped")[0], 4.0);
    assert_eq!(values(&ps, "scrape_samples_post_metric_relabeling")[0], 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_size_limit_and_timeout_fail_the_scrape() {
    let (log, _dir) = common::temp_log().await;
    let big = format!("padding{{v=\"{}\"}} 1\n", "x".repeat(2000));
    let srv = server(&big).await;
    srv.set(|s| s.gzip = true); // the limit applies to the decompressed body
    let run = start(
        &job_yaml("j", &srv.target(), "    body_size_limit: 1KB\n"),
        &log,
    );
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "up").is_empty()).await;
    run.shutdown().await;
    assert_eq!(values(&ps, "up")[0], 0.0);
    assert!(named(&ps, "padding").is_empty());

    let (log, _dir2) = common::temp_log().await;
    let slow = server("m 1\n").await;
    slow.set(|s| s.delay = Duration::from_millis(700));
    let run = start(&job_yaml("j", &slow.target(), ""), &log);
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "up").is_empty()).await;
    run.shutdown().await;
    assert_eq!(values(&ps, "up")[0], 0.0);
    let d = values(&ps, "scrape_duration_seconds")[0];
    assert!((0.24..0.7).contains(&d), "timed out after about 250ms: {d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disappearing_series_and_a_target_going_down_get_stale_markers() {
    let (log, _dir) = common::temp_log().await;
    let srv = server("keep 1\ngoes 2\nown_ts 3 1000\n").await;
    let run = start(&job_yaml("j", &srv.target(), ""), &log);
    wait_for(&log, "a scrape", |ps| !named(ps, "goes").is_empty()).await;

    // `goes` disappears: one stale marker at the next scrape's timestamp.
    srv.set(|s| s.body = "keep 1\n".into());
    let ps = wait_for(&log, "goes stale", |ps| {
        named(ps, "goes").iter().any(|p| p.is_stale())
    })
    .await;
    let stale = named(&ps, "goes")
        .into_iter()
        .find(|p| p.is_stale())
        .unwrap();
    assert!(
        named(&ps, "up")
            .iter()
            .any(|u| u.ts == stale.ts && u.value == 1.0),
        "the marker has a successful scrape's timestamp"
    );
    // A series with its own timestamp gets no marker (as in Prometheus).
    assert!(named(&ps, "own_ts").iter().all(|p| !p.is_stale()));

    // The target fails: up=0, zero counts, and `keep` is marked stale once.
    srv.set(|s| s.status = 500);
    let ps = wait_for(&log, "two failed scrapes", |ps| {
        values(ps, "up").iter().filter(|v| **v == 0.0).count() >= 2
    })
    .await;
    let keep_stale: Vec<_> = named(&ps, "keep")
        .into_iter()
        .filter(|p| p.is_stale())
        .collect();
    assert_eq!(keep_stale.len(), 1, "one marker, not one per failed scrape");
    let first_down = named(&ps, "up")
        .into_iter()
        .find(|u| u.value == 0.0)
        .unwrap();
    assert_eq!(keep_stale[0].ts, first_down.ts);
    let down_scraped = named(&ps, "scrape_samples_scraped")
        .into_iter()
        .find(|p| p.ts == first_down.ts)
        .unwrap();
    assert_eq!(down_scraped.value, 0.0);
    assert!(named(&ps, "up").iter().all(|p| !p.is_stale()));

    // Back up: the series comes back, counted as added again? No: it was in the last
    // successful scrape, so scrape_series_added stays 0.
    srv.set(|s| s.status = 200);
    let ps = wait_for(&log, "up again", |ps| values(ps, "up").last() == Some(&1.0)).await;
    run.shutdown().await;
    assert_eq!(values(&ps, "scrape_series_added").last(), Some(&0.0));
    assert!(!named(&ps, "keep").last().unwrap().is_stale());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_up_zero() {
    let (log, _dir) = common::temp_log().await;
    // A port nothing listens on: bind, note it, close.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let run = start(&job_yaml("j", &addr.to_string(), ""), &log);
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "up").is_empty()).await;
    run.shutdown().await;
    assert_eq!(values(&ps, "up")[0], 0.0);
    assert_eq!(values(&ps, "scrape_samples_scraped")[0], 0.0);
    assert_eq!(
        named(&ps, "up")[0].labels.get("instance"),
        Some(addr.to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_is_reread_and_removed_targets_go_stale() {
    let (log, _dir) = common::temp_log().await;
    let a = server("from_a 1\n").await;
    let b = server("from_b 2\n").await;
    let sd = tempfile::tempdir().unwrap();
    let file = sd.path().join("targets.yml");
    let write = |target: &str, color: &str| {
        let tmp = sd.path().join("tmp.txt");
        std::fs::write(
            &tmp,
            format!("- targets: ['{target}']\n  labels:\n    color: {color}\n"),
        )
        .unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    };
    write(&a.target(), "red");
    let yaml = format!(
        "scrape_configs:
  - job_name: sd
    scrape_interval: 200ms
    file_sd_configs:
      - files: ['{}/*.yml']
        refresh_interval: 1h
    relabel_configs:
      - source_labels: [__meta_filepath]
        regex: '.*/(.*)'
        target_label: sd_file
",
        sd.path().display()
    );
    let run = start(&yaml, &log);
    let ps = wait_for(&log, "a scraped", |ps| !named(ps, "from_a").is_empty()).await;
    assert_eq!(
        named(&ps, "from_a")[0].labels,
        labels(&[
            ("__name__", "from_a"),
            ("color", "red"),
            ("instance", &a.target()),
            ("job", "sd"),
            ("sd_file", "targets.yml"),
        ])
    );

    // The file changes (long before refresh_interval): b replaces a, and a's series and
    // report series get stale markers.
    write(&b.target(), "blue");
    let ps = wait_for(&log, "b scraped and a stale", |ps| {
        !named(ps, "from_b").is_empty() && named(ps, "from_a").iter().any(|p| p.is_stale())
    })
    .await;
    assert_eq!(named(&ps, "from_b")[0].labels.get("color"), Some("blue"));
    let a_up: Vec<_> = named(&ps, "up")
        .into_iter()
        .filter(|p| p.labels.get("instance") == Some(a.target().as_str()))
        .collect();
    assert!(a_up.last().unwrap().is_stale(), "a's up is marked stale");
    for name in ["scrape_duration_seconds", "scrape_series_added"] {
        assert!(
            named(&ps, name)
                .iter()
                .any(|p| p.is_stale() && p.labels.get("instance") == Some(a.target().as_str())),
            "{name}"
        );
    }
    let hits_a = a.requests().len();

    // A broken file keeps the targets it had.
    std::fs::write(&file, "- targets: [unclosed\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = named(&points(&log).await, "from_b").len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = named(&points(&log).await, "from_b").len();
    assert!(after > before, "b is still scraped after a broken update");
    assert_eq!(a.requests().len(), hits_a, "a is not scraped any more");
    run.shutdown().await;

    // Shutdown writes no stale markers.
    let ps = points(&log).await;
    assert!(named(&ps, "from_b").iter().all(|p| !p.is_stale()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_is_refused() {
    let (log, _dir) = common::temp_log().await;
    let cfg: ScrapeConfig = serde_yaml_ng::from_str(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 1s\n    scrape_timeout: 2s\n",
    )
    .unwrap();
    let (_tx, rx) = watch::channel(false);
    let e = argus_ingest::scrape::run(cfg, log, rx).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("scrape timeout greater than scrape interval"),
        "{e}"
    );
    assert!(
        serde_yaml_ng::from_str::<ScrapeConfig>(
            "scrape_configs:\n  - job_name: a\n    honour_labels: true\n"
        )
        .is_err()
    );
}

// ---------------------------------------------------------------------------------
// Real tools
// ---------------------------------------------------------------------------------

/// The address in `var`, or `None` (skip) unless services are required.
fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("ARGUS_REQUIRE_SERVICES").is_err(),
                "ARGUS_REQUIRE_SERVICES is set but {var} is not"
            );
            eprintln!(
                "skipping: {var} is not set (deploy/start-node-exporter.sh, deploy/start-prometheus.sh)"
            );
            None
        }
    }
}

/// Scrapes `addr` under `job` until one scrape is stored; returns that scrape's points.
async fn scrape_real(addr: &str, job: &str) -> Vec<Point> {
    let (log, _dir) = common::temp_log().await;
    let yaml = format!(
        "scrape_configs:\n  - job_name: {job}\n    scrape_interval: 2s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{addr}']\n"
    );
    let run = start(&yaml, &log);
    let ps = wait_for(&log, "a scrape", |ps| !named(ps, "up").is_empty()).await;
    run.shutdown().await;
    let t = named(&ps, "up")[0].ts;
    ps.into_iter().filter(|p| p.ts == t).collect()
}

/// A direct fetch of `/metrics`, parsed with the project's parser.
async fn fetch_direct(addr: &str) -> Vec<argus_ingest::exposition::Sample> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    argus_ingest::exposition::parse(&text, argus_ingest::exposition::Format::Text, 0)
        .unwrap()
        .into_iter()
        .flat_map(|f| f.samples)
        .collect()
}

fn find<'a>(ps: &'a [Point], name: &str, with: &[(&str, &str)]) -> &'a Point {
    ps.iter()
        .find(|p| p.name() == name && with.iter().all(|(n, v)| p.labels.get(n) == Some(*v)))
        .unwrap_or_else(|| panic!("no {name} {with:?}"))
}

fn common_checks(ps: &[Point], addr: &str, job: &str) {
    let up = find(ps, "up", &[]);
    assert_eq!(up.value, 1.0, "up");
    assert_eq!(
        up.labels,
        labels(&[("__name__", "up"), ("instance", addr), ("job", job)])
    );
    let d = find(ps, "scrape_duration_seconds", &[]).value;
    assert!(d > 0.0 && d < 1.0, "scrape_duration_seconds {d}");
    let scraped = find(ps, "scrape_samples_scraped", &[]).value;
    let stored = ps
        .iter()
        .filter(|p| {
            p.ts == up.ts && !argus_ingest::scrape::scrape_loop::REPORT_SERIES.contains(&p.name())
        })
        .count();
    assert!(scraped > 50.0, "scrape_samples_scraped {scraped}");
    assert_eq!(scraped as usize, stored, "every sample stored");
    for p in ps {
        assert_eq!(p.labels.get("job"), Some(job), "{}", p.labels);
        assert_eq!(p.labels.get("instance"), Some(addr), "{}", p.labels);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_exporter() {
    let Some(addr) = service("ARGUS_TEST_NODE_EXPORTER") else {
        return;
    };
    let before = fetch_direct(&addr).await;
    let ps = scrape_real(&addr, "node").await;
    let after = fetch_direct(&addr).await;
    common_checks(&ps, &addr, "node");

    let direct =
        |samples: &[argus_ingest::exposition::Sample], name: &str, with: &[(&str, &str)]| {
            samples
                .iter()
                .find(|s| s.name == name && with.iter().all(|(n, v)| s.labels.get(n) == Some(*v)))
                .unwrap_or_else(|| panic!("direct fetch has no {name}"))
                .clone()
        };
    // The build info's labels are those of a direct fetch, plus job and instance.
    let bi = find(&ps, "node_exporter_build_info", &[]);
    let d = direct(&after, "node_exporter_build_info", &[]);
    for (n, v) in d.labels.iter() {
        assert_eq!(bi.labels.get(n), Some(v), "label {n}");
    }
    assert_eq!(bi.value, 1.0);
    assert!(bi.labels.get("version").is_some_and(|v| !v.is_empty()));

    // CPU counters by cpu and mode: between the values fetched just before and after.
    let cpu = find(
        &ps,
        "node_cpu_seconds_total",
        &[("cpu", "0"), ("mode", "idle")],
    );
    let lo = direct(
        &before,
        "node_cpu_seconds_total",
        &[("cpu", "0"), ("mode", "idle")],
    )
    .value;
    let hi = direct(
        &after,
        "node_cpu_seconds_total",
        &[("cpu", "0"), ("mode", "idle")],
    )
    .value;
    assert!(
        lo <= cpu.value && cpu.value <= hi,
        "{lo} <= {} <= {hi}",
        cpu.value
    );
    let modes: std::collections::BTreeSet<_> = named(&ps, "node_cpu_seconds_total")
        .iter()
        .filter_map(|p| p.labels.get("mode").map(str::to_string))
        .collect();
    for m in ["idle", "user", "system"] {
        assert!(modes.contains(m), "mode {m} in {modes:?}");
    }
    // Gauges that do not move: total memory equals the direct fetch.
    let mem = find(&ps, "node_memory_MemTotal_bytes", &[]).value;
    assert_eq!(mem, direct(&after, "node_memory_MemTotal_bytes", &[]).value);
    // node_time_seconds is the exporter's clock at the scrape.
    let t = find(&ps, "node_time_seconds", &[]);
    assert!(
        ((t.value * 1000.0) as i64 - t.ts).abs() < 5_000,
        "clock {} vs {}",
        t.value,
        t.ts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_self_metrics() {
    let Some(addr) = service("ARGUS_TEST_PROMETHEUS") else {
        return;
    };
    let ps = scrape_real(&addr, "prometheus").await;
    let direct = fetch_direct(&addr).await;
    common_checks(&ps, &addr, "prometheus");
    let bi = find(&ps, "prometheus_build_info", &[]);
    let d = direct
        .iter()
        .find(|s| s.name == "prometheus_build_info")
        .expect("direct build info");
    for n in ["version", "revision", "goversion"] {
        assert_eq!(bi.labels.get(n), d.labels.get(n), "label {n}");
    }
    assert_eq!(bi.value, 1.0);
    // A histogram and a summary arrive with their le / quantile labels.
    assert!(ps.iter().any(
        |p| p.name() == "prometheus_http_request_duration_seconds_bucket"
            && p.labels.get("le") == Some("+Inf")
    ));
    assert!(
        ps.iter().any(
            |p| p.name() == "go_gc_duration_seconds" && p.labels.get("quantile") == Some("0.5")
        )
    );
    // A constant of the configuration: the same as a direct fetch.
    let name = "prometheus_config_last_reload_successful";
    let v = find(&ps, name, &[]).value;
    assert_eq!(v, direct.iter().find(|s| s.name == name).unwrap().value);
    assert_eq!(v, 1.0);
}
