//! The Loki push API against an embedded event log: JSON, gzip, snappy protobuf, errors.

use std::io::Write;

use argus_bus::EventLog;
use argus_schemas::{Payload, topics};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

mod common;

async fn log() -> (EventLog, tempfile::TempDir) {
    common::temp_log().await
}

async fn send(log: &EventLog, req: Request<Body>) -> (StatusCode, String) {
    let r = argus_ingest::loki_push::router(log.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn entries(log: &EventLog) -> Vec<argus_schemas::Envelope> {
    log.read(topics::LOGS, 0, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|r| argus_schemas::decode(&r.value).unwrap())
        .collect()
}

fn line(e: &argus_schemas::Envelope) -> (&str, i64, String, String) {
    let Payload::LogEntry(l) = &e.payload else {
        panic!("not a log entry")
    };
    (
        l.line.as_str(),
        l.timestamp.0,
        l.labels.to_string(),
        l.structured_metadata.to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_push_with_metadata_and_gzip() {
    let (log, _d) = log().await;
    let body = r#"{"streams":[{"stream":{"app":"web","env":"prod"},"values":[
        ["1700000000000000001","GET / 200"],
        ["1700000000000000002","GET /x 500",{"trace_id":"abc"}]]},
        {"stream":{"app":"db"},"values":[["1700000000000000003","slow query"]]}]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let req = Request::post("/loki/api/v1/push")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("x-scope-orgid", "team-a")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    let (status, text) = send(&log, req).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let got = entries(&log).await;
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|e| e.tenant == "team-a" && e.source == "loki-push")
    );
    let mut lines: Vec<_> = got.iter().map(line).collect();
    lines.sort_by_key(|l| l.1);
    assert_eq!(
        lines[0],
        (
            "GET / 200",
            1_700_000_000_000_000_001,
            r#"{app="web", env="prod"}"#.into(),
            "{}".into()
        )
    );
    assert_eq!(lines[1].3, r#"{trace_id="abc"}"#);
    assert_eq!(lines[2].2, r#"{app="db"}"#);
    // Keyed by stream: both web entries share a key, the db one differs.
    let key = |l: &str| got.iter().find(|e| line(e).0 == l).unwrap().key.clone();
    assert_eq!(key("GET / 200"), key("GET /x 500"));
    assert_ne!(key("GET / 200"), key("slow query"));
}

/// A PushRequest encoded by hand from logproto's field numbers:
/// streams[0] = { labels: `{app="x"}`, entries[0] = { timestamp {1s, 5ns}, line "hi",
/// structured_metadata [t=1] } }.
const PUSH_PROTO: &[u8] = &[
    0x0a, 0x1f, // PushRequest.streams, 31 bytes
    0x0a, 0x09, b'{', b'a', b'p', b'p', b'=', b'"', b'x', b'"', b'}', // labels
    0x12, 0x12, // entries, 18 bytes
    0x0a, 0x04, 0x08, 0x01, 0x10, 0x05, // timestamp {seconds 1, nanos 5}
    0x12, 0x02, b'h', b'i', // line
    0x1a, 0x06, 0x0a, 0x01, b't', 0x12, 0x01, b'1', // structured metadata t=1
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy_protobuf_push() {
    let (log, _d) = log().await;
    let body = snap::raw::Encoder::new().compress_vec(PUSH_PROTO).unwrap();
    let req = Request::post("/loki/api/v1/push")
        .header("content-type", "application/x-protobuf")
        .body(Body::from(body))
        .unwrap();
    let (status, text) = send(&log, req).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let got = entries(&log).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].tenant, "default");
    assert_eq!(
        line(&got[0]),
        (
            "hi",
            1_000_000_005,
            r#"{app="x"}"#.into(),
            r#"{t="1"}"#.into()
        )
    );
    assert_eq!(got[0].event_time.0, 1_000_000_005);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pushes_are_refused_whole() {
    let (log, _d) = log().await;
    let json = |b: &str| {
        Request::post("/loki/api/v1/push")
            .header("content-type", "application/json")
            .body(Body::from(b.to_string()))
            .unwrap()
    };
    let cases = [
        (json("{"), "body is not a Loki push request"),
        (
            json(
                r#"{"streams":[{"stream":{"app":"x"},"values":[["1","ok"]]},{"stream":{},"values":[["1","x"]]}]}"#,
            ),
            "stream 1: error at least one label pair is required per stream",
        ),
        (
            json(r#"{"streams":[{"stream":{"1a":"x"},"values":[]}]}"#),
            "stream 0: invalid label name \"1a\"",
        ),
        (
            json(r#"{"streams":[{"stream":{"a":"x"},"values":[["yesterday","x"]]}]}"#),
            "stream 0, entry 0: timestamp \"yesterday\"",
        ),
        (
            Request::post("/loki/api/v1/push")
                .body(Body::from(&b"not snappy"[..]))
                .unwrap(),
            "not a snappy block",
        ),
        (
            Request::post("/loki/api/v1/push")
                .body(Body::from(
                    snap::raw::Encoder::new()
                        .compress_vec(b"\xff\xff\xff")
                        .unwrap(),
                ))
                .unwrap(),
            "not a Loki push request (snappy-compressed protobuf)",
        ),
    ];
    for (req, want) in cases {
        let (status, text) = send(&log, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains(want), "{text:?} lacks {want:?}");
    }
    let long = format!(
        r#"{{"streams":[{{"stream":{{"a":"x"}},"values":[["1","{}"]]}}]}}"#,
        "x".repeat(argus_ingest::loki_push::MAX_LINE_BYTES + 1)
    );
    let (status, text) = send(&log, json(&long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("Max entry size '262144' bytes exceeded"),
        "{text}"
    );
    assert!(
        entries(&log).await.is_empty(),
        "a refused request writes nothing"
    );
}
