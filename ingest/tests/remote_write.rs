//! `POST /api/v1/write` end to end: real remote write requests through the router into
//! an embedded event log in a temporary directory, read back from `argus.metrics`.
//!
//! The golden fixture `tests/fixtures/remote_write/write_request.snappy.hex` and
//! [`WRITE_REQUEST`] below were encoded by hand from the protobuf and snappy specs, so
//! they check the field numbers of the hand-declared `prost` messages, not only that
//! they round-trip with themselves.

use std::path::PathBuf;

use argus_bus::EventLog;
use argus_ingest::metrics::REJECTED;
use argus_ingest::remote_write::{self, proto};
use argus_schemas::{Envelope, Labels, Payload, STALE_NAN_BITS, Timestamp, topics};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use prost::Message;
use tower::ServiceExt;

/// The protobuf inside the golden fixture, field by field (see the fixture's comments).
#[rustfmt::skip]
const WRITE_REQUEST: &[u8] = &[
    // WriteRequest.timeseries (field 1, LEN 99)
    0x0a, 0x63,
    //   labels (1): {name (1): "__name__", value (2): "up"}
    0x0a, 0x0e, 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 0x02, b'u', b'p',
    //   labels (1): {name: "job", value: "node"}
    0x0a, 0x0b, 0x0a, 0x03, b'j', b'o', b'b', 0x12, 0x04, b'n', b'o', b'd', b'e',
    //   samples (2): {value (1, I64): 1.0, timestamp (2, VARINT): 1700000000000}
    0x12, 0x10, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31,
    //   samples (2): {value: StaleNaN 0x7ff0000000000002, timestamp: 1700000015000}
    0x12, 0x10, 0x09, 0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f, 0x10, 0x98, 0xc5, 0x96, 0xff, 0xbc, 0x31,
    //   exemplars (3): {labels (1): {trace_id="ab"}, value (2): 0.5, timestamp (3): 1700000000000}
    0x1a, 0x20,
    0x0a, 0x0e, 0x0a, 0x08, b't', b'r', b'a', b'c', b'e', b'_', b'i', b'd', 0x12, 0x02, b'a', b'b',
    0x11, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 0x18, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31,
    // WriteRequest.timeseries (field 1, LEN 37)
    0x0a, 0x25,
    //   labels (1): {name: "__name__", value: "t"}
    0x0a, 0x0d, 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 0x01, b't',
    //   samples (2): {value: absent (0.0), timestamp: -1000 (ten-byte varint)}
    0x12, 0x0b, 0x10, 0x98, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    //   histograms (4): {timestamp (15, VARINT, tag 0x78): 1700000000000}
    0x22, 0x07, 0x78, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31,
    // WriteRequest.metadata (field 3): {type (1): GAUGE = 2, metric_family_name (2): "up", help (4): "h"}
    0x1a, 0x09, 0x08, 0x02, 0x12, 0x02, b'u', b'p', 0x22, 0x01, b'h',
];

fn label(n: &str, v: &str) -> proto::Label {
    proto::Label {
        name: n.into(),
        value: v.into(),
    }
}

fn sample(value: f64, timestamp: i64) -> proto::Sample {
    proto::Sample { value, timestamp }
}

fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> proto::TimeSeries {
    proto::TimeSeries {
        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
        samples: samples.iter().map(|&(v, t)| sample(v, t)).collect(),
        ..Default::default()
    }
}

fn request(timeseries: Vec<proto::TimeSeries>) -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries,
        metadata: Vec::new(),
    }
}

/// What the golden bytes mean.
fn golden_request() -> proto::WriteRequest {
    let mut up = series(
        &[("__name__", "up"), ("job", "node")],
        &[
            (1.0, 1_700_000_000_000),
            (f64::from_bits(STALE_NAN_BITS), 1_700_000_015_000),
        ],
    );
    up.exemplars = vec![proto::Exemplar {
        labels: vec![label("trace_id", "ab")],
        value: 0.5,
        timestamp: 1_700_000_000_000,
    }];
    let mut t = series(&[("__name__", "t")], &[(0.0, -1000)]);
    t.histograms = vec![proto::Histogram {
        timestamp: 1_700_000_000_000,
        ..Default::default()
    }];
    proto::WriteRequest {
        timeseries: vec![up, t],
        metadata: vec![proto::MetricMetadata {
            r#type: proto::MetricType::Gauge as i32,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: String::new(),
        }],
    }
}

fn fixture() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/remote_write/write_request.snappy.hex");
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    let hex: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .expect("compresses")
}

fn body_of(req: &proto::WriteRequest) -> Vec<u8> {
    snappy(&req.encode_to_vec())
}

mod common;

async fn open_log() -> (tempfile::TempDir, EventLog) {
    let (log, dir) = common::temp_log().await;
    (dir, log)
}

/// Posts a body with the headers Prometheus sends, plus/minus `extra` (a `None` value
/// removes a header).
async fn post(
    log: &EventLog,
    body: Vec<u8>,
    extra: &[(&str, Option<&str>)],
) -> (StatusCode, String) {
    let mut headers = vec![
        ("content-encoding", Some("snappy")),
        ("content-type", Some("application/x-protobuf")),
        ("x-prometheus-remote-write-version", Some("0.1.0")),
    ];
    for (n, v) in extra {
        headers.retain(|(h, _)| !h.eq_ignore_ascii_case(n));
        headers.push((n, *v));
    }
    let mut req = Request::post("/api/v1/write");
    for (n, v) in headers {
        if let Some(v) = v {
            req = req.header(n, v);
        }
    }
    let resp = remote_write::router(log.clone())
        .oneshot(req.body(Body::from(body)).expect("request"))
        .await
        .expect("router answers");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Every record on `argus.metrics`, ordered by the metric name then the first timestamp.
async fn stored(log: &EventLog) -> Vec<Envelope> {
    let mut out = Vec::new();
    for p in 0..log.partitions(topics::METRICS).await.expect("partitions") {
        for r in log.read(topics::METRICS, p, 0, 1000).await.expect("read") {
            out.push(argus_schemas::decode(&r.value).expect("record decodes"));
        }
    }
    out.sort_by_key(|e| {
        let m = metric(e);
        (
            m.labels.get("__name__").unwrap_or("").to_string(),
            m.samples.first().map(|s| s.timestamp_ms),
        )
    });
    out
}

fn metric(e: &Envelope) -> &argus_schemas::MetricSamples {
    match &e.payload {
        Payload::MetricSamples(m) => m,
        other => panic!("not metric samples: {other:?}"),
    }
}

fn points(e: &Envelope) -> Vec<(i64, u64)> {
    metric(e)
        .samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value.to_bits()))
        .collect()
}

/// Extra request headers; a `None` value removes the header.
type Headers<'a> = Vec<(&'a str, Option<&'a str>)>;

fn rejected(reason: &str) -> u64 {
    REJECTED.with_label_values(&["remote-write", reason]).get()
}

#[test]
fn hand_encoded_bytes_match_the_prost_messages() {
    let decoded = proto::WriteRequest::decode(WRITE_REQUEST).expect("golden bytes decode");
    // NaN != NaN, so compare the Debug forms and the NaN's bits apart.
    assert_eq!(format!("{decoded:?}"), format!("{:?}", golden_request()));
    assert_eq!(
        decoded.timeseries[0].samples[1].value.to_bits(),
        STALE_NAN_BITS
    );
    // prost writes fields in tag order, as the literal is written.
    assert_eq!(golden_request().encode_to_vec(), WRITE_REQUEST);
    // The fixture is the same bytes in a hand-made snappy block, which snap reads.
    let fx = fixture();
    assert_eq!(&fx[..4], &[0x97, 0x01, 0xf0, 0x96]);
    assert_eq!(&fx[4..], WRITE_REQUEST);
    assert_eq!(
        snap::raw::Decoder::new()
            .decompress_vec(&fx)
            .expect("fixture is snappy"),
        WRITE_REQUEST
    );
}

#[tokio::test]
async fn golden_fixture_is_stored() {
    let (_dir, log) = open_log().await;
    let (status, body) = post(&log, fixture(), &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let recs = stored(&log).await;
    assert_eq!(recs.len(), 2, "{recs:?}");

    let t = &recs[0];
    assert_eq!(metric(t).labels, Labels::from_pairs([("__name__", "t")]));
    assert_eq!(points(t), vec![(-1000, 0.0f64.to_bits())]);
    assert_eq!(t.event_time, Timestamp::from_millis(-1000));

    let up = &recs[1];
    assert_eq!(
        metric(up).labels,
        Labels::from_pairs([("__name__", "up"), ("job", "node")])
    );
    assert_eq!(
        points(up),
        vec![
            (1_700_000_000_000, 1.0f64.to_bits()),
            (1_700_000_015_000, STALE_NAN_BITS)
        ]
    );
    assert_eq!(up.event_time, Timestamp::from_millis(1_700_000_015_000));
    assert_eq!(up.event_time.0, 1_700_000_015_000_000_000);
    for e in &recs {
        assert_eq!(e.tenant, "default");
        assert_eq!(e.source, "remote-write");
        assert_eq!(e.key, metric(e).labels.fingerprint().to_string());
    }
}

#[tokio::test]
async fn special_values_and_timestamps_are_kept_exactly() {
    let (_dir, log) = open_log().await;
    let stale = f64::from_bits(STALE_NAN_BITS);
    let values = [
        (f64::NAN, -5_000),
        (f64::INFINITY, -1),
        (f64::NEG_INFINITY, 0),
        (stale, 1),
        // (-0.0 is left out: prost, like Prometheus' gogo encoder, skips a proto3 double
        // equal to 0.0, so -0.0 never reaches the wire.)
        (1e-300, 2),
        (f64::MIN_POSITIVE / 4.0, 3), // subnormal
        (f64::MAX, 4),
        (0.1 + 0.2, i64::MAX / 1_000_000),
    ];
    let req = request(vec![series(&[("__name__", "x"), ("job", "j")], &values)]);
    let (status, body) = post(&log, body_of(&req), &[("X-Scope-OrgID", Some("team-a"))]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let recs = stored(&log).await;
    assert_eq!(recs.len(), 1);
    let e = &recs[0];
    assert_eq!(e.tenant, "team-a");
    assert_eq!(e.event_time, Timestamp::from_millis(i64::MAX / 1_000_000));
    let got = &metric(e).samples;
    assert_eq!(got.len(), values.len());
    for (g, (v, t)) in got.iter().zip(values) {
        assert_eq!(g.timestamp_ms, t);
        if v.is_nan() && v.to_bits() != STALE_NAN_BITS {
            // Any NaN but the staleness marker is written as "NaN" by the schema.
            assert!(g.value.is_nan() && g.value.to_bits() != STALE_NAN_BITS);
        } else {
            assert_eq!(g.value.to_bits(), v.to_bits(), "value at {t}");
        }
    }
}

#[tokio::test]
async fn unsorted_labels_are_sorted_and_empty_values_dropped() {
    let (_dir, log) = open_log().await;
    let req = request(vec![
        series(
            &[
                ("zone", "b"),
                ("job", "api"),
                ("__name__", "req_total"),
                ("empty", ""),
            ],
            &[(1.0, 10), (2.0, 20), (2.0, 20)],
        ),
        // Only histograms: no record.
        proto::TimeSeries {
            labels: vec![label("__name__", "h")],
            histograms: vec![proto::Histogram::default(); 3],
            ..Default::default()
        },
    ]);
    let before = rejected("native_histogram");
    let (status, body) = post(&log, body_of(&req), &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(rejected("native_histogram") >= before + 3);
    let recs = stored(&log).await;
    assert_eq!(recs.len(), 1);
    let m = metric(&recs[0]);
    assert_eq!(
        m.labels.iter().collect::<Vec<_>>(),
        vec![("__name__", "req_total"), ("job", "api"), ("zone", "b")]
    );
    // The exact repeat of (2.0, 20) is dropped.
    assert_eq!(
        points(&recs[0]),
        vec![(10, 1.0f64.to_bits()), (20, 2.0f64.to_bits())]
    );
}

#[tokio::test]
async fn headers_as_prometheus_reads_them() {
    let (_dir, log) = open_log().await;
    let ok = body_of(&request(vec![series(&[("__name__", "a")], &[(1.0, 1)])]));

    // No Content-Encoding, no Content-Type: taken as snappy and remote write 1.0.
    let (status, body) = post(
        &log,
        ok.clone(),
        &[("content-encoding", None), ("content-type", None)],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = post(
        &log,
        ok.clone(),
        &[(
            "content-type",
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
        )],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(stored(&log).await.len(), 2);

    let (status, body) = post(&log, ok.clone(), &[("content-encoding", Some("gzip"))]).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        body.contains("Content-Encoding \"gzip\" is not accepted"),
        "{body}"
    );
    let (status, body) = post(
        &log,
        ok.clone(),
        &[(
            "content-type",
            Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
        )],
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        body.contains("io.prometheus.write.v2.Request is not accepted"),
        "{body}"
    );
    let (status, body) = post(&log, ok, &[("content-type", Some("application/json"))]).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(body.contains("expected application/x-protobuf"), "{body}");
    assert_eq!(stored(&log).await.len(), 2);
}

#[tokio::test]
async fn bad_requests_are_400_and_write_nothing() {
    let (_dir, log) = open_log().await;
    let good = series(&[("__name__", "ok"), ("job", "x")], &[(1.0, 1)]);
    let with_good = |bad: proto::TimeSeries| body_of(&request(vec![good.clone(), bad]));
    let cases: Vec<(&str, Vec<u8>, Headers, &str)> = vec![
        (
            "snappy",
            b"definitely not snappy".to_vec(),
            vec![],
            "body is not a snappy block",
        ),
        (
            "protobuf",
            snappy(&[0x0a, 0x05, 0x01]),
            vec![],
            "body is not a remote write request: ",
        ),
        (
            "missing_name",
            with_good(series(&[("job", "x")], &[(1.0, 1)])),
            vec![],
            r#"1 of 2 series are invalid; nothing was written:
series {job="x"}: no __name__ label"#,
        ),
        (
            "missing_name",
            with_good(series(&[("__name__", ""), ("job", "x")], &[(1.0, 1)])),
            vec![],
            r#"series {__name__="", job="x"}: no __name__ label"#,
        ),
        (
            "invalid_label",
            with_good(series(&[("__name__", "up"), ("1a", "x")], &[(1.0, 1)])),
            vec![],
            r#"series {__name__="up", 1a="x"}: label name "1a" is invalid"#,
        ),
        (
            "invalid_label",
            with_good(series(&[("__name__", "up"), ("", "x")], &[(1.0, 1)])),
            vec![],
            r#"series {__name__="up", ="x"}: empty label name"#,
        ),
        (
            "invalid_metric_name",
            with_good(series(&[("__name__", "a.b")], &[(1.0, 1)])),
            vec![],
            r#"series {__name__="a.b"}: metric name "a.b" is invalid"#,
        ),
        (
            "duplicate_label",
            with_good(series(
                &[("__name__", "up"), ("job", "a"), ("job", "b")],
                &[(1.0, 1)],
            )),
            vec![],
            r#"series {__name__="up", job="a", job="b"}: duplicate label name "job""#,
        ),
        (
            "out_of_order",
            with_good(series(&[("__name__", "up")], &[(1.0, 20), (2.0, 10)])),
            vec![],
            r#"series {__name__="up"}: sample 1 at 10 ms is older than the one before it (20 ms)"#,
        ),
        (
            "duplicate_timestamp",
            with_good(series(&[("__name__", "up")], &[(1.0, 20), (2.0, 20)])),
            vec![],
            r#"series {__name__="up"}: sample 1: two samples at 20 ms with different values"#,
        ),
        (
            "tenant",
            body_of(&request(vec![good.clone()])),
            vec![("X-Scope-OrgID", Some("a/b"))],
            "X-Scope-OrgID: ",
        ),
    ];
    for (reason, body, headers, want) in cases {
        let before = rejected(reason);
        let (status, text) = post(&log, body, &headers).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}: {text}");
        assert!(text.contains(want), "{reason}: {text:?} lacks {want:?}");
        assert!(rejected(reason) > before, "{reason} not counted");
    }
    assert!(
        stored(&log).await.is_empty(),
        "a refused request wrote records"
    );

    // Several bad series: each named.
    let body = body_of(&request(vec![
        series(&[("job", "1")], &[(1.0, 1)]),
        good.clone(),
        series(&[("__name__", "up"), ("9", "x")], &[(1.0, 1)]),
    ]));
    let (status, text) = post(&log, body, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("2 of 3 series are invalid"), "{text}");
    assert!(text.contains(r#"series {job="1"}"#) && text.contains(r#"label name "9""#));
    assert!(stored(&log).await.is_empty());
}

#[tokio::test]
async fn empty_request_is_accepted() {
    let (_dir, log) = open_log().await;
    let (status, _) = post(&log, body_of(&request(vec![])), &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(stored(&log).await.is_empty());
}

#[tokio::test]
async fn a_closed_log_is_503() {
    let (_dir, log) = open_log().await;
    log.close().await.expect("closes");
    let body = body_of(&request(vec![series(&[("__name__", "a")], &[(1.0, 1)])]));
    let (status, text) = post(&log, body, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.starts_with("event log unavailable"), "{text}");
}

#[tokio::test]
async fn bodies_over_axums_default_limit_are_read() {
    let (_dir, log) = open_log().await;
    // ~3 MiB of incompressible label values: past axum's 2 MiB default body limit.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut noise = || {
        (0..1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect::<String>()
    };
    let ts: Vec<_> = (0..3000)
        .map(|i| {
            series(
                &[("__name__", "big"), ("i", &i.to_string()), ("v", &noise())],
                &[(1.0, 1)],
            )
        })
        .collect();
    let body = body_of(&request(ts));
    assert!(body.len() > 2 << 20, "{}", body.len());
    let (status, text) = post(&log, body, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
}
