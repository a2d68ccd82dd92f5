//! promtool's unit-test file format (Prometheus 2.42): the YAML structures, read
//! strictly (unknown fields are errors, as with `yaml.UnmarshalStrict`), with
//! durations in Prometheus' notation. Argus adds, for `type: logs` rule groups,
//! `input_streams` (log lines, expanded by [`super::streams`]) and
//! `logql_expr_test` (the LogQL twin of `promql_expr_test`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::gofmt::parse_model_duration;

/// One unit-test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitTestFile {
    #[serde(default, deserialize_with = "null_default")]
    pub rule_files: Vec<String>,
    #[serde(default, deserialize_with = "duration")]
    pub evaluation_interval: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub group_eval_order: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub tests: Vec<TestGroup>,
}

/// A group of input series and the tests run over them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    #[serde(default, deserialize_with = "duration")]
    pub interval: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub input_series: Vec<InputSeries>,
    /// Log streams for `type: logs` groups (Argus' addition).
    #[serde(default, deserialize_with = "null_default")]
    pub input_streams: Vec<InputStream>,
    #[serde(default, deserialize_with = "null_default")]
    pub alert_rule_test: Vec<AlertTestCase>,
    #[serde(default, deserialize_with = "null_default")]
    pub promql_expr_test: Vec<PromqlTestCase>,
    /// LogQL metric queries and their expected samples (Argus' addition).
    #[serde(default, deserialize_with = "null_default")]
    pub logql_expr_test: Vec<PromqlTestCase>,
    #[serde(default, deserialize_with = "string_map")]
    pub external_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "scalar_string")]
    pub external_url: String,
    #[serde(default, deserialize_with = "scalar_string")]
    pub name: String,
}

/// One input series in the expanding notation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    #[serde(default, deserialize_with = "scalar_string")]
    pub series: String,
    #[serde(default, deserialize_with = "scalar_string")]
    pub values: String,
}

/// One input log stream: its labels in metric notation (`{app="a", level="error"}`),
/// its lines in the notation of [`super::streams`] and structured metadata given to
/// every line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputStream {
    #[serde(default, deserialize_with = "scalar_string")]
    pub labels: String,
    #[serde(default, deserialize_with = "null_default")]
    pub lines: Vec<LineEntry>,
    #[serde(default, deserialize_with = "string_map")]
    pub structured_metadata: BTreeMap<String, String>,
}

/// One entry of `lines`: a text (placed at the next step, with the `_` and `xN`
/// shorthands) or a line with an explicit time.
#[derive(Debug, Clone)]
pub enum LineEntry {
    Text(String),
    Timed(TimedLine),
}

impl<'de> Deserialize<'de> for LineEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as a value first so that a mapping's own errors (unknown fields) are
        // reported as such rather than as "no variant matched".
        match serde_yaml_ng::Value::deserialize(d)? {
            serde_yaml_ng::Value::Mapping(m) => {
                TimedLine::deserialize(serde_yaml_ng::Value::Mapping(m))
                    .map(LineEntry::Timed)
                    .map_err(serde::de::Error::custom)
            }
            v => Scalar::deserialize(v)
                .map(|s| LineEntry::Text(s.text()))
                .map_err(|_| serde::de::Error::custom("a line is a text or a mapping with `line`")),
        }
    }
}

/// `{at: 1m30s, line: "…", structured_metadata: {…}}`; without `at` the line takes
/// the next step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedLine {
    #[serde(default, deserialize_with = "opt_duration")]
    pub at: Option<i64>,
    #[serde(default, deserialize_with = "scalar_string")]
    pub line: String,
    #[serde(default, deserialize_with = "string_map")]
    pub structured_metadata: BTreeMap<String, String>,
}

/// The alerts expected to be firing for one alert name at one time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTestCase {
    #[serde(default, deserialize_with = "duration")]
    pub eval_time: i64,
    #[serde(default, deserialize_with = "scalar_string")]
    pub alertname: String,
    #[serde(default, deserialize_with = "null_default")]
    pub exp_alerts: Vec<ExpAlert>,
}

/// One expected alert.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    #[serde(default, deserialize_with = "string_map")]
    pub exp_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "string_map")]
    pub exp_annotations: BTreeMap<String, String>,
}

/// An expression and the samples it must return at one time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlTestCase {
    #[serde(default, deserialize_with = "scalar_string")]
    pub expr: String,
    #[serde(default, deserialize_with = "duration")]
    pub eval_time: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub exp_samples: Vec<ExpSample>,
}

/// One expected sample: labels in metric notation and a value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    #[serde(default, deserialize_with = "scalar_string")]
    pub labels: String,
    #[serde(default)]
    pub value: f64,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A YAML scalar read into a string field, as yaml.v2 does for numbers and booleans.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    S(String),
    I(i64),
    U(u64),
    F(f64),
    B(bool),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::S(s) => s,
            Scalar::I(i) => i.to_string(),
            Scalar::U(u) => u.to_string(),
            Scalar::F(f) => f.to_string(),
            Scalar::B(b) => b.to_string(),
        }
    }
}

fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?
        .map(Scalar::text)
        .unwrap_or_default())
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = Option::<BTreeMap<String, Option<Scalar>>>::deserialize(d)?.unwrap_or_default();
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.map(Scalar::text).unwrap_or_default()))
        .collect())
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Option::<Scalar>::deserialize(d)? {
        None => Ok(0),
        Some(s) => parse_model_duration(&s.text()).map_err(serde::de::Error::custom),
    }
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Scalar>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_model_duration(&s.text())
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Reads a unit-test file, with an error text shaped like yaml.v2's.
pub fn parse(text: &str) -> Result<UnitTestFile, String> {
    serde_yaml_ng::from_str::<Option<UnitTestFile>>(text)
        .map(|f| {
            f.unwrap_or(UnitTestFile {
                rule_files: Vec::new(),
                evaluation_interval: 0,
                group_eval_order: Vec::new(),
                tests: Vec::new(),
            })
        })
        .map_err(|e| yaml_error_text(&e))
}

/// yaml.v2's `field X not found in type main.T` for unknown fields; other errors as
/// `yaml: line N: message`.
fn yaml_error_text(e: &serde_yaml_ng::Error) -> String {
    let msg = e.to_string();
    let line = e.location().map(|l| l.line()).unwrap_or(0);
    if let Some(rest) = msg.split("unknown field `").nth(1) {
        let field = rest.split('`').next().unwrap_or("");
        let ty = if msg.contains("`rule_files`") {
            "unitTestFile"
        } else if msg.contains("`input_series`") {
            "testGroup"
        } else if msg.contains("`lines`") {
            "inputStream"
        } else if msg.contains("`at`") {
            "timedLine"
        } else if msg.contains("`values`") {
            "series"
        } else if msg.contains("`alertname`") {
            "alertTestCase"
        } else if msg.contains("`exp_labels`") {
            "alert"
        } else if msg.contains("`exp_samples`") {
            "promqlTestCase"
        } else {
            "sample"
        };
        return format!(
            "yaml: unmarshal errors:\n  line {line}: field {field} not found in type main.{ty}"
        );
    }
    let text = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    let text = match text.split_once(": ") {
        Some((path, m)) if !path.contains(' ') => m.to_string(),
        _ => text,
    };
    if line > 0 {
        format!("yaml: line {line}: {text}")
    } else {
        format!("yaml: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_test_file() {
        let f = parse(
            "rule_files: [a.yml]\nevaluation_interval: 30s\ntests:\n- interval: 1m\n  input_series:\n  - series: up\n    values: 1x3\n  alert_rule_test:\n  - eval_time: 0\n    alertname: A\n    exp_alerts:\n    - exp_labels: {code: 500}\n  promql_expr_test:\n  - expr: up\n    eval_time: 2m\n    exp_samples:\n    - value: 1\n",
        )
        .unwrap();
        assert_eq!(f.evaluation_interval, 30_000);
        assert_eq!(f.tests[0].interval, 60_000);
        assert_eq!(
            f.tests[0].alert_rule_test[0].exp_alerts[0].exp_labels["code"],
            "500"
        );
        assert_eq!(f.tests[0].promql_expr_test[0].exp_samples[0].value, 1.0);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e = parse("tests:\n- interval: 1m\n  bogus: 1\n").unwrap_err();
        assert!(
            e.starts_with(
                "yaml: unmarshal errors:\n  line 3: field bogus not found in type main.testGroup"
            ),
            "{e}"
        );
        assert!(parse("evaluation_interval: 5\n").is_err());
    }
}
