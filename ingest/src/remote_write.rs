//! `POST /api/v1/write`: the Prometheus remote write 1.0 receiver
//! (<https://prometheus.io/docs/specs/remote_write_spec/>).
//!
//! This module owns the protobuf messages of `prometheus.WriteRequest` (declared by hand
//! in [`proto`] with `prost`, field numbers from Prometheus' `prompb/remote.proto` and
//! `types.proto`), the validation of what a sender sends, and the mapping to records:
//! every `TimeSeries` with samples becomes one `metric_samples` record on `argus.metrics`
//! (labels sorted, samples in order, values bit for bit as decoded: the staleness
//! marker, ±Inf and NaN survive; the record's JSON writes every other NaN payload as
//! plain `"NaN"`), with tenant from `X-Scope-OrgID`, source `remote-write`, and
//! `event_time` the newest sample's time.
//!
//! The answer is 204 only once every record is durable on the event log; the log
//! refusing is 503 so that the sender retries (the spec: 5xx is retried, 4xx is not).
//!
//! Decisions, each with what Prometheus' own receiver does:
//!
//! - **Headers.** `Content-Encoding` missing is taken as `snappy` and `Content-Type`
//!   missing as `application/x-protobuf` (Prometheus does the same "not to break yolo
//!   1.0 clients"); any other encoding, another media type, or `proto=` naming anything
//!   but `prometheus.WriteRequest` (e.g. remote write 2.0's
//!   `io.prometheus.write.v2.Request`) is 415, as in Prometheus. The body is a snappy
//!   *raw* block ([`crate::body::snappy_raw`]); the framed format is refused. Bodies
//!   may be up to 64 MiB ([`MAX_DECODED_BYTES`]) compressed and decoded: axum's default
//!   2 MiB limit would answer a large batch with a 413 that Prometheus never retries.
//! - **All or nothing.** A series without `__name__`, with an empty or invalid label
//!   name, an invalid metric name, a duplicate label name, or samples out of order is
//!   400 naming the series, and nothing of the request is written. Prometheus instead
//!   drops such series with a warning and answers 204 (its code carries a TODO saying the
//!   1.0 spec wants a 400); Argus refuses loudly, as `POST /api/v1/events` does, so a
//!   broken sender is noticed rather than silently losing series. A 4xx makes Prometheus
//!   drop the whole batch without retrying.
//! - **Names** follow the 1.0 spec: label names `[a-zA-Z_][a-zA-Z0-9_]*`, metric names
//!   `[a-zA-Z_:][a-zA-Z0-9_:]*` (Prometheus 3 also accepts other UTF-8 names; the rest of
//!   Argus, like the exposition parser, uses the classic names).
//! - **Unsorted labels are accepted and sorted.** The spec says senders MUST sort them,
//!   but Prometheus' receiver sorts them itself (`labelProtosToLabels` ends with
//!   `Sort()`), and [`argus_schemas::Labels`] is always sorted.
//! - **Empty label values are dropped**: in Prometheus' data model a label with an empty
//!   value is the same as no label, and keeping it would give one series two
//!   fingerprints. An empty `__name__` counts as missing.
//! - **Samples** must not go back in time within a series (400, as Prometheus' TSDB
//!   answers `out of order sample`); two samples at the same millisecond with different
//!   values are 400 (`duplicate sample for timestamp`); an exact repeat is dropped.
//! - **Native histograms** (`TimeSeries.histograms`) are decoded but not stored: Argus
//!   has no payload for them yet. They are counted in
//!   `argus_ingest_rejected_total{collector="remote-write",reason="native_histogram"}`,
//!   logged at debug, and the request is still 204. Exemplars likewise
//!   (`reason="exemplar"`). Metadata (`WriteRequest.metadata`) is decoded and ignored.
//!   A series that carries only histograms produces no record.
//!
//! Counted: accepted series in `argus_ingest_records_received_total{collector=
//! "remote-write",type="metric_samples"}`, their samples in
//! `argus_ingest_samples_received_total{collector="remote-write"}`, and every refusal in
//! `argus_ingest_rejected_total{collector="remote-write",reason}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;

use argus_schemas::{Envelope, Labels, MetricSamples, Payload, Sample, Timestamp};

use crate::IngestError;
use crate::body::{MAX_DECODED_BYTES, snappy_raw};
use crate::events_api::tenant_of;
use crate::metrics::{RECEIVED, REJECTED, SAMPLES_RECEIVED};

const COLLECTOR: &str = "remote-write";
/// The source of the records written.
pub const SOURCE: &str = "remote-write";
/// The one protobuf message this receiver reads.
pub const PROTO_MESSAGE: &str = "prometheus.WriteRequest";
/// Invalid series listed in one 400 answer.
const MAX_LISTED_ERRORS: usize = 10;

/// The messages of `prometheus.WriteRequest`, declared by hand (no protoc at build
/// time). Field numbers are Prometheus' (`prompb/remote.proto`, `prompb/types.proto`).
pub mod proto {
    /// `prometheus.WriteRequest`. Field 2 is reserved (Cortex' `source`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `prometheus.Sample`: a value at Unix milliseconds.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// `prometheus.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// `prometheus.Histogram` (a native histogram), reduced to the fields this receiver
    /// looks at; the buckets (fields 1, 2, 5–14, 16) are skipped as unknown fields since
    /// native histograms are not stored.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(double, tag = "3")]
        pub sum: f64,
        #[prost(sint32, tag = "4")]
        pub schema: i32,
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }

    /// `prometheus.MetricMetadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(enumeration = "MetricType", tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// `prometheus.MetricMetadata.MetricType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        Unknown = 0,
        Counter = 1,
        Gauge = 2,
        Histogram = 3,
        Gaugehistogram = 4,
        Summary = 5,
        Info = 6,
        Stateset = 7,
    }
}

pub fn router(log: argus_bus::EventLog) -> Router {
    Router::new()
        .route("/api/v1/write", post(write))
        // axum's default limit (2 MiB) would turn a large batch into a 413 that
        // Prometheus does not retry; the decoded size is limited by `snappy_raw`.
        .layer(DefaultBodyLimit::max(MAX_DECODED_BYTES))
        .with_state(log)
}

fn reject(reason: &'static str, msg: String) -> IngestError {
    REJECTED.with_label_values(&[COLLECTOR, reason]).inc();
    IngestError::BadRequest(msg)
}

/// Why a request's headers are refused (415): a metric reason and a message.
type Unsupported = (&'static str, String);

/// 415, counted.
fn unsupported((reason, msg): Unsupported) -> Response {
    REJECTED.with_label_values(&[COLLECTOR, reason]).inc();
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [("content-type", "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

/// Checks `Content-Type` and `Content-Encoding` as Prometheus' receiver does.
fn check_headers(headers: &HeaderMap) -> Result<(), Unsupported> {
    let header = |name: &str, reason: &'static str| -> Result<Option<String>, Unsupported> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.trim().to_string()))
                .map_err(|_| (reason, format!("{name} is not valid text"))),
        }
    };
    if let Some(ct) = header("content-type", "content_type")?.filter(|s| !s.is_empty()) {
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !media.eq_ignore_ascii_case("application/x-protobuf") {
            return Err((
                "content_type",
                format!("Content-Type {ct:?}: expected application/x-protobuf"),
            ));
        }
        for p in parts.filter(|p| !p.is_empty()) {
            let Some((k, v)) = p.split_once('=') else {
                return Err((
                    "content_type",
                    format!("Content-Type {ct:?}: parameter {p:?} is not key=value"),
                ));
            };
            let v = v.trim().trim_matches('"');
            if k.trim().eq_ignore_ascii_case("proto") && v != PROTO_MESSAGE {
                return Err((
                    "content_type",
                    format!(
                        "Content-Type {ct:?}: {v} is not accepted by this server; \
                         accepted: {PROTO_MESSAGE} (remote write 1.0)"
                    ),
                ));
            }
        }
    }
    if let Some(enc) = header("content-encoding", "encoding")?.filter(|s| !s.is_empty())
        && !enc.eq_ignore_ascii_case("snappy")
    {
        return Err((
            "encoding",
            format!(
                "Content-Encoding {enc:?} is not accepted by this server; only snappy is \
                 acceptable"
            ),
        ));
    }
    Ok(())
}

async fn write(
    State(log): State<argus_bus::EventLog>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(u) = check_headers(&headers) {
        return unsupported(u);
    }
    match receive(&log, &headers, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn receive(
    log: &argus_bus::EventLog,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), IngestError> {
    let tenant = tenant_of(headers, COLLECTOR)?;
    let raw = snappy_raw(body).inspect_err(|e| {
        let reason = match e {
            IngestError::TooLarge(_) => "too_large",
            _ => "snappy",
        };
        REJECTED.with_label_values(&[COLLECTOR, reason]).inc();
    })?;
    let req = proto::WriteRequest::decode(raw.as_slice()).map_err(|e| {
        reject(
            "protobuf",
            format!("body is not a remote write request: {e}"),
        )
    })?;
    let (events, skipped) = to_envelopes(&tenant, req)?;
    if skipped.histograms > 0 {
        REJECTED
            .with_label_values(&[COLLECTOR, "native_histogram"])
            .inc_by(skipped.histograms);
        tracing::debug!(tenant = %tenant, histograms = skipped.histograms,
            "native histograms skipped: not stored by Argus");
    }
    if skipped.exemplars > 0 {
        REJECTED
            .with_label_values(&[COLLECTOR, "exemplar"])
            .inc_by(skipped.exemplars);
        tracing::debug!(tenant = %tenant, exemplars = skipped.exemplars,
            "exemplars skipped: not stored by Argus");
    }
    if skipped.metadata > 0 {
        tracing::debug!(tenant = %tenant, metadata = skipped.metadata, "metadata ignored");
    }
    log.publish(&events).await?;
    let samples: usize = events
        .iter()
        .map(|e| match &e.payload {
            Payload::MetricSamples(m) => m.samples.len(),
            _ => 0,
        })
        .sum();
    RECEIVED
        .with_label_values(&[COLLECTOR, "metric_samples"])
        .inc_by(events.len() as u64);
    SAMPLES_RECEIVED
        .with_label_values(&[COLLECTOR])
        .inc_by(samples as u64);
    tracing::debug!(tenant = %tenant, series = events.len(), samples, "remote write stored");
    Ok(())
}

/// What a request carried that is not stored.
#[derive(Debug, Default)]
struct Skipped {
    histograms: u64,
    exemplars: u64,
    metadata: u64,
}

/// Validates every series and maps those with samples to records; all or nothing.
fn to_envelopes(
    tenant: &str,
    req: proto::WriteRequest,
) -> Result<(Vec<Envelope>, Skipped), IngestError> {
    let mut skipped = Skipped {
        metadata: req.metadata.len() as u64,
        ..Skipped::default()
    };
    let total = req.timeseries.len();
    let mut events = Vec::with_capacity(total);
    let mut errors: Vec<(&'static str, String)> = Vec::new();
    for ts in req.timeseries {
        match series(&ts) {
            Ok(Some(m)) => {
                let newest = m.samples.iter().map(|s| s.timestamp_ms).max().unwrap_or(0);
                events.push(Envelope::new(
                    tenant,
                    SOURCE,
                    Timestamp::from_millis(newest),
                    Payload::MetricSamples(m),
                ));
            }
            Ok(None) => {}
            Err((reason, msg)) => {
                errors.push((reason, format!("series {}: {msg}", raw_labels(&ts.labels))));
            }
        }
        skipped.histograms += ts.histograms.len() as u64;
        skipped.exemplars += ts.exemplars.len() as u64;
    }
    if errors.is_empty() {
        return Ok((events, skipped));
    }
    for (reason, _) in &errors {
        REJECTED.with_label_values(&[COLLECTOR, reason]).inc();
    }
    let n = errors.len();
    let mut msg = format!("{n} of {total} series are invalid; nothing was written:\n");
    for (_, e) in errors.iter().take(MAX_LISTED_ERRORS) {
        msg.push_str(e);
        msg.push('\n');
    }
    if n > MAX_LISTED_ERRORS {
        msg.push_str(&format!("… and {} more\n", n - MAX_LISTED_ERRORS));
    }
    Err(IngestError::BadRequest(msg.trim_end().to_string()))
}

/// A series' labels and samples, validated; `None` when it has no samples (e.g. only
/// native histograms). The error is a metric reason and a message.
fn series(ts: &proto::TimeSeries) -> Result<Option<MetricSamples>, (&'static str, String)> {
    let mut names: Vec<&str> = Vec::with_capacity(ts.labels.len());
    for l in &ts.labels {
        if l.name.is_empty() {
            return Err(("invalid_label", "empty label name".into()));
        }
        if !is_label_name(&l.name) {
            return Err((
                "invalid_label",
                format!("label name {:?} is invalid", l.name),
            ));
        }
        names.push(&l.name);
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err((
            "duplicate_label",
            format!("duplicate label name {:?}", w[0]),
        ));
    }
    let name = ts
        .labels
        .iter()
        .find(|l| l.name == "__name__")
        .map(|l| l.value.as_str())
        .unwrap_or("");
    if name.is_empty() {
        return Err(("missing_name", "no __name__ label".into()));
    }
    if !is_metric_name(name) {
        return Err((
            "invalid_metric_name",
            format!("metric name {name:?} is invalid"),
        ));
    }
    let mut samples: Vec<Sample> = Vec::with_capacity(ts.samples.len());
    for (i, s) in ts.samples.iter().enumerate() {
        if let Some(prev) = samples.last() {
            if s.timestamp < prev.timestamp_ms {
                return Err((
                    "out_of_order",
                    format!(
                        "sample {i} at {} ms is older than the one before it ({} ms); \
                         samples must be in time order",
                        s.timestamp, prev.timestamp_ms
                    ),
                ));
            }
            if s.timestamp == prev.timestamp_ms {
                if s.value.to_bits() != prev.value.to_bits() {
                    return Err((
                        "duplicate_timestamp",
                        format!(
                            "sample {i}: two samples at {} ms with different values",
                            s.timestamp
                        ),
                    ));
                }
                continue;
            }
        }
        samples.push(Sample {
            timestamp_ms: s.timestamp,
            value: s.value,
        });
    }
    if samples.is_empty() {
        return Ok(None);
    }
    let labels = Labels::from_pairs(
        ts.labels
            .iter()
            .filter(|l| !l.value.is_empty())
            .map(|l| (l.name.as_str(), l.value.as_str())),
    );
    Ok(Some(MetricSamples { labels, samples }))
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Labels as the sender sent them (order and duplicates kept), in Prometheus' text form.
fn raw_labels(labels: &[proto::Label]) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!("{}={:?}", l.name, l.value));
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "_", "job", "__name__", "A_1"] {
            assert!(is_label_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a:b", "é", "a b"] {
            assert!(!is_label_name(bad), "{bad}");
        }
        for ok in ["up", "a:b_c", ":x", "_1"] {
            assert!(is_metric_name(ok), "{ok}");
        }
        for bad in ["", "1x", "a.b", "a-b"] {
            assert!(!is_metric_name(bad), "{bad}");
        }
    }

    #[test]
    fn raw_labels_keep_order_and_escape() {
        let l = |n: &str, v: &str| proto::Label {
            name: n.into(),
            value: v.into(),
        };
        assert_eq!(
            raw_labels(&[l("job", "x\"y"), l("1a", "")]),
            r#"{job="x\"y", 1a=""}"#
        );
    }
}
