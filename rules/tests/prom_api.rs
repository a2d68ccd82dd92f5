//! Prometheus' HTTP API over a metric window: result shapes and value formatting,
//! GET and POST forms, parameter errors with Prometheus' texts and status codes, the
//! 11,000-point limit, series and label lookups, tenant isolation, `/rules` and
//! `/alerts` from evaluated groups, and `promtool query` against a real listener
//! (`ARGUS_TEST_PROMTOOL`: the promtool binary; skipped when unset unless
//! `ARGUS_REQUIRE_SERVICES` is set).

use std::sync::Arc;
use std::time::Duration;

use argus_rules::RulesError;
use argus_rules::group::{GroupEvaluator, GroupOptions, QueryFn, Sample};
use argus_rules::prom_api::{self, PromApiState, RuleBoard, Windows};
use argus_rules::promql::{Engine, EngineOptions, Value};
use argus_rules::rulefile::{self, RuleExpr};
use argus_rules::window::{MetricWindow, WindowOptions};
use argus_schemas::Labels;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value as Json;
use tower::ServiceExt;

/// 2023-11-14T22:13:20Z
const T0: i64 = 1_700_000_000_000;

fn state() -> PromApiState {
    let windows = Arc::new(Windows::new(WindowOptions {
        retention_ms: 3_600_000,
        ..WindowOptions::default()
    }));
    let w = windows.get_or_create("default");
    let up_a = Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "a:9100")]);
    let up_b = Labels::from_pairs([("__name__", "up"), ("job", "db"), ("instance", "b:9100")]);
    let reqs = Labels::from_pairs([("__name__", "http_requests_total"), ("job", "api")]);
    for i in 0..=20 {
        let t = T0 + i * 15_000;
        w.append_samples(&up_a, [(t, 1.0)]);
        w.append_samples(&up_b, [(t, if i < 10 { 1.0 } else { 0.0 })]);
        w.append_samples(&reqs, [(t, (i * 30) as f64)]);
    }
    let other = windows.get_or_create("team-b");
    other.append_samples(
        &Labels::from_pairs([("__name__", "secret_metric"), ("job", "b")]),
        [(T0, 7.0)],
    );
    PromApiState {
        windows,
        engine: Arc::new(engine()),
        rules: Arc::new(RuleBoard::new()),
        query_timeout: Duration::from_secs(10),
    }
}

/// The engine as the service configures it: the API, not the engine, limits steps.
fn engine() -> Engine {
    Engine::new(EngineOptions {
        max_range_steps: prom_api::MAX_POINTS_PER_SERIES + 1,
        ..EngineOptions::default()
    })
}

async fn call(st: &PromApiState, req: Request<Body>) -> (StatusCode, Json) {
    let resp = prom_api::router(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(ct.as_deref(), Some("application/json"));
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn get(st: &PromApiState, uri: &str) -> (StatusCode, Json) {
    call(st, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn instant_vector_and_scalar_as_prometheus_renders_them() {
    let st = state();
    // 2023-11-14T22:15:00.5Z: 100.5 s after T0.
    let (code, j) = get(
        &st,
        &format!("/api/v1/query?query={}&time=1700000100.5", enc("up == 1")),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{j}");
    assert_eq!(j["status"], "success");
    assert_eq!(j["data"]["resultType"], "vector");
    let r = j["data"]["result"].as_array().unwrap();
    assert_eq!(r.len(), 2, "{j}");
    assert_eq!(r[0]["metric"]["instance"], "a:9100");
    assert_eq!(r[0]["metric"]["__name__"], "up");
    // The timestamp is the evaluation time, as a JSON number in seconds.
    assert_eq!(r[0]["value"][0].to_string(), "1700000100.5");
    assert_eq!(r[0]["value"][1], "1");

    let (_, j) = get(
        &st,
        &format!(
            "/api/v1/query?query={}&time=2023-11-14T22:18:20Z",
            enc("rate(http_requests_total[1m])")
        ),
    )
    .await;
    let v: f64 = j["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((v - 2.0).abs() < 1e-9, "{j}");
    assert!(j["data"]["result"][0]["metric"].get("__name__").is_none());

    let (_, j) = get(&st, "/api/v1/query?query=1%2F3&time=1700000000.001").await;
    assert_eq!(j["data"]["resultType"], "scalar");
    assert_eq!(j["data"]["result"][0].to_string(), "1700000000.001");
    assert_eq!(j["data"]["result"][1], "0.3333333333333333");

    let (_, j) = get(&st, "/api/v1/query?query=1e-7&time=1700000000").await;
    assert_eq!(j["data"]["result"][1], "1e-07");
}

#[tokio::test]
async fn post_form_and_limit() {
    let st = state();
    let req = Request::post("/api/v1/query")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "query={}&time=1700000100&limit=1",
            enc("up")
        )))
        .unwrap();
    let (code, j) = call(&st, req).await;
    assert_eq!(code, StatusCode::OK, "{j}");
    assert_eq!(j["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(j["warnings"][0], "results truncated due to limit");
}

#[tokio::test]
async fn range_query_matrix_and_limits() {
    let st = state();
    let (code, j) = get(
        &st,
        &format!(
            "/api/v1/query_range?query={}&start=1700000000&end=1700000060&step=30s",
            enc("up{job=\"db\"}")
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{j}");
    assert_eq!(j["data"]["resultType"], "matrix");
    let values = j["data"]["result"][0]["values"].as_array().unwrap();
    let pts: Vec<String> = values
        .iter()
        .map(|v| format!("{}={}", v[0], v[1]))
        .collect();
    assert_eq!(
        pts,
        ["1700000000=\"1\"", "1700000030=\"1\"", "1700000060=\"1\""]
    );

    let (code, j) = get(&st, "/api/v1/query_range?query=up&start=0&end=11001&step=1").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(j["status"], "error");
    assert_eq!(j["errorType"], "bad_data");
    assert_eq!(
        j["error"],
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    );
    // Exactly 11,000 steps are allowed.
    let (code, _) = get(&st, "/api/v1/query_range?query=up&start=0&end=11000&step=1").await;
    assert_eq!(code, StatusCode::OK);

    let (code, j) = get(&st, "/api/v1/query_range?query=up&start=10&end=20&step=0").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        j["error"],
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
    );
    let (_, j) = get(&st, "/api/v1/query_range?query=up&start=20&end=10&step=1").await;
    assert_eq!(
        j["error"],
        "invalid parameter \"end\": end timestamp must not be before start time"
    );
    let (_, j) = get(&st, "/api/v1/query_range?query=up&start=x&end=10&step=1").await;
    assert_eq!(
        j["error"],
        "invalid parameter \"start\": cannot parse \"x\" to a valid timestamp"
    );
}

#[tokio::test]
async fn bad_queries_are_bad_data_and_failed_ones_execution_errors() {
    let st = state();
    let (code, j) = get(&st, &format!("/api/v1/query?query={}", enc("sum(up"))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{j}");
    assert_eq!(j["errorType"], "bad_data");
    let e = j["error"].as_str().unwrap();
    assert!(e.starts_with("invalid parameter \"query\": "), "{e}");

    let (code, j) = get(&st, "/api/v1/query?query=up&time=yesterday").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        j["error"],
        "invalid parameter \"time\": invalid time value for 'time': cannot parse \"yesterday\" to a valid timestamp"
    );

    // Many-to-many matching: an execution error.
    let (code, j) = get(
        &st,
        &format!(
            "/api/v1/query?query={}&time=1700000100",
            enc("up / on() up")
        ),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{j}");
    assert_eq!(j["errorType"], "execution");
}

#[tokio::test]
async fn series_labels_and_values() {
    let st = state();
    let (code, j) = get(
        &st,
        &format!(
            "/api/v1/series?match[]={}&start=1700000000&end=1700000300",
            enc("up")
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{j}");
    assert_eq!(
        j["data"],
        serde_json::json!([
            {"__name__": "up", "instance": "a:9100", "job": "api"},
            {"__name__": "up", "instance": "b:9100", "job": "db"},
        ])
    );
    let (code, j) = get(&st, "/api/v1/series").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(j["error"], "no match[] parameter provided");
    let (code, j) = get(
        &st,
        &format!("/api/v1/series?match[]={}", enc("{job=~\".*\"}")),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let e = j["error"].as_str().unwrap();
    assert!(
        e.starts_with("invalid parameter \"match[]\": ")
            && e.ends_with("must contain at least one non-empty matcher"),
        "{e}"
    );

    let (_, j) = get(&st, "/api/v1/labels").await;
    assert_eq!(
        j["data"],
        serde_json::json!(["__name__", "instance", "job"])
    );
    let (_, j) = get(
        &st,
        &format!("/api/v1/labels?match[]={}", enc("http_requests_total")),
    )
    .await;
    assert_eq!(j["data"], serde_json::json!(["__name__", "job"]));
    let (_, j) = get(&st, "/api/v1/label/job/values").await;
    assert_eq!(j["data"], serde_json::json!(["api", "db"]));
    let (_, j) = get(&st, "/api/v1/label/__name__/values").await;
    assert_eq!(j["data"], serde_json::json!(["http_requests_total", "up"]));
    // Outside the window's time range: nothing.
    let (_, j) = get(&st, "/api/v1/label/job/values?start=1&end=2").await;
    assert_eq!(j["data"], serde_json::json!([]));
}

#[tokio::test]
async fn tenants_see_only_their_own_series() {
    let st = state();
    let req = |uri: &str, tenant: &str| {
        Request::get(uri)
            .header("X-Scope-OrgID", tenant)
            .body(Body::empty())
            .unwrap()
    };
    let (_, j) = call(&st, req("/api/v1/label/__name__/values", "team-b")).await;
    assert_eq!(j["data"], serde_json::json!(["secret_metric"]));
    let (_, j) = call(&st, req("/api/v1/label/__name__/values", "default")).await;
    assert_eq!(j["data"], serde_json::json!(["http_requests_total", "up"]));
    let (_, j) = call(
        &st,
        req(
            "/api/v1/query?query=secret_metric&time=1700000000",
            "team-c",
        ),
    )
    .await;
    assert_eq!(j["data"]["result"], serde_json::json!([]));
    let (code, _) = call(&st, req("/api/v1/labels", "bad tenant")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

/// PromQL over one window, for evaluating a group in the test.
struct WindowQuery(Arc<MetricWindow>);

impl QueryFn for WindowQuery {
    fn instant(&self, expr: &RuleExpr, t_ms: i64) -> Result<Vec<Sample>, RulesError> {
        let RuleExpr::PromQL { expr, .. } = expr else {
            return Err(RulesError::Eval("PromQL only".into()));
        };
        match Engine::default().instant_expr(&*self.0, expr, t_ms)? {
            Value::Vector(v) => Ok(v),
            other => Err(RulesError::Eval(format!("{other:?}"))),
        }
    }
}

#[tokio::test]
async fn rules_and_alerts_of_evaluated_groups() {
    let st = state();
    let file = rulefile::parse(
        "rules/node.yml",
        r#"groups:
- name: node
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: InstanceDown
    expr: up == 0
    for: 5m
    labels: {severity: page}
    annotations: {summary: "{{ $labels.instance }} is down"}
"#,
    )
    .unwrap();
    let group = file.groups[0].clone();
    let mut ev = GroupEvaluator::new(
        group,
        GroupOptions {
            file: "rules/node.yml".into(),
            ..GroupOptions::default()
        },
    );
    let q = WindowQuery(st.windows.get("default").unwrap());
    let out = ev.eval(&q, T0 + 200_000);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    st.rules.set("default", ev.api_group());

    let (code, j) = get(&st, "/api/v1/rules").await;
    assert_eq!(code, StatusCode::OK, "{j}");
    let g = &j["data"]["groups"][0];
    assert_eq!(g["name"], "node");
    assert_eq!(g["file"], "rules/node.yml");
    assert_eq!(g["interval"], 60.0);
    assert_eq!(g["rules"].as_array().unwrap().len(), 2);
    assert_eq!(g["rules"][0]["type"], "recording");
    assert_eq!(g["rules"][1]["type"], "alerting");
    assert_eq!(g["rules"][1]["state"], "pending");
    assert_eq!(g["rules"][1]["duration"], 300.0);
    assert_eq!(g["rules"][1]["alerts"][0]["value"], "0e+00");
    assert_eq!(
        g["rules"][1]["alerts"][0]["annotations"]["summary"],
        "b:9100 is down"
    );
    assert_eq!(
        g["rules"][1]["alerts"][0]["activeAt"],
        "2023-11-14T22:16:40Z"
    );

    let (_, j) = get(&st, "/api/v1/rules?type=alert").await;
    let rules = j["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["name"], "InstanceDown");
    let (_, j) = get(&st, "/api/v1/rules?type=record").await;
    assert_eq!(j["data"]["groups"][0]["rules"][0]["name"], "job:up:sum");
    let (_, j) = get(&st, "/api/v1/rules?type=alert&exclude_alerts=true").await;
    assert_eq!(j["data"]["groups"][0]["rules"][0]["alerts"], Json::Null);
    let (_, j) = get(&st, "/api/v1/rules?rule_name[]=nothing").await;
    assert_eq!(j["data"]["groups"], serde_json::json!([]));
    let (_, j) = get(
        &st,
        &format!("/api/v1/rules?match[]={}", enc("{severity=\"page\"}")),
    )
    .await;
    assert_eq!(j["data"]["groups"][0]["rules"].as_array().unwrap().len(), 1);
    let (code, j) = get(&st, "/api/v1/rules?type=both").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        j["error"],
        "invalid parameter \"type\": not supported value \"both\""
    );

    let (_, j) = get(&st, "/api/v1/alerts").await;
    let alerts = j["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{j}");
    assert_eq!(alerts[0]["labels"]["alertname"], "InstanceDown");
    assert_eq!(alerts[0]["labels"]["instance"], "b:9100");
    assert_eq!(alerts[0]["state"], "pending");

    // Another tenant has no rules.
    let req = Request::get("/api/v1/alerts")
        .header("X-Scope-OrgID", "team-b")
        .body(Body::empty())
        .unwrap();
    let (_, j) = call(&st, req).await;
    assert_eq!(j["data"]["alerts"], serde_json::json!([]));

    let (_, j) = get(&st, "/api/v1/status/buildinfo").await;
    assert!(j["data"]["version"].is_string());
}

fn promtool() -> Option<String> {
    match std::env::var("ARGUS_TEST_PROMTOOL") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            if std::env::var("ARGUS_REQUIRE_SERVICES").is_ok_and(|v| !v.is_empty()) {
                panic!("ARGUS_REQUIRE_SERVICES is set but ARGUS_TEST_PROMTOOL is not");
            }
            eprintln!(
                "skipping: set ARGUS_TEST_PROMTOOL=/usr/bin/promtool to run promtool against the API"
            );
            None
        }
    }
}

fn run_promtool(bin: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_the_api() {
    let Some(bin) = promtool() else { return };
    // Live samples, so that `promtool query instant` (evaluated now) finds them.
    let st = state();
    let windows = Arc::new(Windows::new(WindowOptions::default()));
    let w = windows.get_or_create("default");
    let now = argus_schemas::Timestamp::now().as_millis();
    for (inst, job, v) in [("n1:9100", "node", 0.5), ("n2:9100", "db", 1.5)] {
        let load = Labels::from_pairs([("__name__", "node_load1"), ("instance", inst)]);
        w.append_samples(&load, [(now - 30_000, 0.25), (now - 1_000, v)]);
        let up = Labels::from_pairs([("__name__", "up"), ("instance", inst), ("job", job)]);
        w.append_samples(&up, [(now - 30_000, 1.0), (now - 1_000, 1.0)]);
    }
    let st = PromApiState { windows, ..st };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, prom_api::router(st)).await.unwrap();
    });
    let url = format!("http://{addr}");
    let promtool = |args: Vec<String>| {
        let b = bin.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_promtool(&b, &args)
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let out = promtool(s(&["query", "instant", &url, "node_load1 > 1"]))
        .await
        .unwrap();
    assert!(
        out.starts_with("node_load1{instance=\"n2:9100\"} => 1.5 @["),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");

    let start = format!("--start={}", (now - 60_000) / 1000);
    let end = format!("--end={}", now / 1000);
    let out = promtool(s(&[
        "query",
        "range",
        &start,
        &end,
        "--step=15s",
        &url,
        "node_load1{instance=\"n1:9100\"}",
    ]))
    .await
    .unwrap();
    assert!(
        out.starts_with("node_load1{instance=\"n1:9100\"} =>"),
        "{out}"
    );
    assert!(out.contains("0.25 @["), "{out}");

    let out = promtool(s(&["query", "series", "--match=up", &url]))
        .await
        .unwrap();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "{__name__=\"up\", instance=\"n1:9100\", job=\"node\"}",
            "{__name__=\"up\", instance=\"n2:9100\", job=\"db\"}"
        ]
    );

    let out = promtool(s(&["query", "labels", &url, "job"]))
        .await
        .unwrap();
    assert_eq!(out.lines().collect::<Vec<_>>(), ["db", "node"]);
    server.abort();
}
