//! Query results in Loki's JSON shapes (`/loki/api/v1/query` and `/query_range`).

use argus_schemas::Labels;
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

/// One stream of a log query result.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamResult {
    pub labels: Labels,
    /// `(ts ns, line, structured metadata)`, in the query's direction.
    pub entries: Vec<(i64, String, Labels)>,
}

/// One series of a matrix: points `(ts ms, value)` ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// ms
    pub ts: i64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    Streams(Vec<StreamResult>),
    Matrix(Vec<Series>),
    Vector(Vec<Sample>),
    /// `(ts ms, value)`
    Scalar(i64, f64),
}

impl QueryData {
    pub fn result_type(&self) -> &'static str {
        match self {
            QueryData::Streams(_) => "streams",
            QueryData::Matrix(_) => "matrix",
            QueryData::Vector(_) => "vector",
            QueryData::Scalar(..) => "scalar",
        }
    }
}

/// Work done by a query, reported as Loki's `stats.summary` (and totals).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueryStats {
    pub exec_time_secs: f64,
    pub queue_time_secs: f64,
    pub total_lines_processed: u64,
    pub total_bytes_processed: u64,
    pub total_entries_returned: u64,
    pub streams_selected: u64,
    pub subqueries: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    pub data: QueryData,
    pub stats: QueryStats,
}

/// Formats a value as Prometheus/Loki do in JSON (`"1"`, `"0.5"`, `"NaN"`, `"+Inf"`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Go's strconv.FormatFloat(v, 'f', -1, 64) for ordinary magnitudes, exponent
        // form ('e') beyond 1e21 as Go's encoding does.
        let abs = v.abs();
        if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            let s = format!("{v:e}");
            // Rust gives `1e21` / `1.5e-7`; Go gives `1e+21` / `1.5e-07`.
            match s.split_once('e') {
                Some((m, e)) => {
                    let (sign, digits) = match e.strip_prefix('-') {
                        Some(d) => ('-', d),
                        None => ('+', e),
                    };
                    let digits = if digits.len() < 2 {
                        format!("0{digits}")
                    } else {
                        digits.to_string()
                    };
                    format!("{m}e{sign}{digits}")
                }
                None => s,
            }
        } else {
            format!("{v}")
        }
    }
}

fn ts_secs(ms: i64) -> serde_json::Number {
    let secs = ms as f64 / 1000.0;
    serde_json::Number::from_f64(secs).unwrap_or_else(|| serde_json::Number::from(0))
}

struct Point(i64, f64);

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(&ts_secs(self.0))?;
        seq.serialize_element(&format_value(self.1))?;
        seq.end()
    }
}

impl QueryData {
    /// The `result` array (or scalar pair) as Loki writes it.
    pub fn result_json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        match self {
            QueryData::Streams(streams) => Value::Array(
                streams
                    .iter()
                    .map(|s| {
                        let values: Vec<Value> = s
                            .entries
                            .iter()
                            .map(|(ts, line, md)| {
                                if md.is_empty() {
                                    json!([ts.to_string(), line])
                                } else {
                                    json!([ts.to_string(), line, md])
                                }
                            })
                            .collect();
                        json!({"stream": s.labels, "values": values})
                    })
                    .collect(),
            ),
            QueryData::Matrix(series) => Value::Array(
                series
                    .iter()
                    .map(|s| {
                        let values: Vec<Value> = s
                            .points
                            .iter()
                            .map(|(t, v)| serde_json::to_value(Point(*t, *v)).unwrap_or_default())
                            .collect();
                        json!({"metric": s.labels, "values": values})
                    })
                    .collect(),
            ),
            QueryData::Vector(samples) => Value::Array(
                samples
                    .iter()
                    .map(|s| {
                        json!({"metric": s.labels, "value": serde_json::to_value(Point(s.ts, s.value)).unwrap_or_default()})
                    })
                    .collect(),
            ),
            QueryData::Scalar(t, v) => serde_json::to_value(Point(*t, *v)).unwrap_or_default(),
        }
    }
}
