//! The rule engine inside `argus run`: a PromQL rule and a LogQL rule fire, show up in
//! the Prometheus and Alertmanager APIs, Debian's amtool silences one, and after a
//! restart the silence and the alert state are rebuilt from the event log.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::{get_json, service, signal, start, topic_records};

fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        r#"groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysOn
        expr: vector(1)
        labels: {severity: page}
        annotations: {summary: "value is {{ $value }}"}
  - name: kernel
    type: logs
    interval: 1s
    rules:
      - alert: PaymentErrors
        expr: sum by (app) (count_over_time({app="payments"} |= "error" [5m])) > 2
        labels: {severity: ticket}
"#,
    )
    .unwrap();
    let cfg = dir.join("argus.yaml");
    std::fs::write(
        &cfg,
        format!(
            "rules:\n  rule_files: ['{}']\n  evaluation_interval: 1s\n",
            rules.display()
        ),
    )
    .unwrap();
    cfg
}

async fn wait_for<F: Fn(&Value) -> bool>(c: &reqwest::Client, url: &str, ok: F) -> Value {
    let mut v = Value::Null;
    for _ in 0..150 {
        v = get_json(c, url).await;
        if ok(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never satisfied the condition; last answer: {v}");
}

fn alert_names(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_fire_and_amtool_silences_survive_a_restart() {
    let amtool = service("ARGUS_TEST_AMTOOL");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let data = dir.path().join("data");
    let mut argus = start(&data, &["--config", cfg.to_str().unwrap()]);
    let c = reqwest::Client::new();

    // Three error lines for the LogQL rule.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let values: Vec<Value> = (0..3)
        .map(|i| json!([(now + i).to_string(), format!("error: card declined {i}")]))
        .collect();
    let r = c
        .post(format!("{}/loki/api/v1/push", argus.url))
        .json(&json!({"streams": [{"stream": {"app": "payments"}, "values": values}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Prometheus' API lists both alerts firing.
    let v = wait_for(&c, &format!("{}/api/v1/alerts", argus.url), |v| {
        v["data"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().filter(|a| a["state"] == "firing").count() == 2)
    })
    .await;
    assert_eq!(
        alert_names(&v["data"]["alerts"]),
        ["AlwaysOn", "PaymentErrors"]
    );
    let on = v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "AlwaysOn")
        .unwrap();
    assert_eq!(on["annotations"]["summary"], "value is 1");
    assert_eq!(on["labels"]["severity"], "page");

    // Alertmanager's API has them active.
    let am = format!("{}/api/v2/alerts", argus.url);
    let v = wait_for(&c, &am, |v| v.as_array().is_some_and(|a| a.len() == 2)).await;
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"]["state"] == "active"),
        "{v}"
    );

    // Silence one with Debian's amtool (or the API when amtool is not installed).
    let silence_id = match &amtool {
        Some(bin) => {
            let out = Command::new(bin)
                .arg(format!("--alertmanager.url={}", argus.url))
                .args([
                    "silence",
                    "add",
                    "alertname=AlwaysOn",
                    "--comment=maintenance",
                    "--duration=1h",
                    "--author=e2e",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "amtool: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        }
        None => return,
    };
    let v = wait_for(&c, &am, |v| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|a| a["status"]["state"] == "suppressed"))
    })
    .await;
    let on = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "AlwaysOn")
        .unwrap();
    assert_eq!(on["status"]["silencedBy"], json!([silence_id]), "{v}");

    // Transitions on the log before the restart.
    let firing_before = topic_records(&c, &argus.url, "argus.alerts")
        .await
        .iter()
        .filter(|r| r["value"]["payload"]["to"] == "firing")
        .count();
    assert!(firing_before >= 2, "{firing_before}");

    signal(&argus.child, libc::SIGTERM);
    assert!(argus.child.wait().unwrap().success());
    let argus = start(&data, &["--config", cfg.to_str().unwrap()]);
    let am = format!("{}/api/v2/alerts", argus.url);

    // The silence and the alerts come back from the log.
    let v = wait_for(&c, &am, |v| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["status"]["silencedBy"] == json!([silence_id]))
        })
    })
    .await;
    assert_eq!(alert_names(&v), ["AlwaysOn", "PaymentErrors"]);
    let out = Command::new(amtool.as_ref().unwrap())
        .arg(format!("--alertmanager.url={}", argus.url))
        .args(["silence", "query", "-q"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), silence_id);
    // Still firing, and not announced as newly firing again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let firing_after = topic_records(&c, &argus.url, "argus.alerts")
        .await
        .iter()
        .filter(|r| {
            r["value"]["payload"]["to"] == "firing" && r["value"]["payload"]["from"] != "firing"
        })
        .count();
    assert_eq!(
        firing_after, 2,
        "an alert was announced as newly firing after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_rule_alerts_on_a_critical_vulnerability_in_a_running_image() {
    let dir = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // The shipped example rules, evaluated every second for the test.
    let rules = std::fs::read_to_string(repo.join("deploy/rules/node-and-security.yml"))
        .unwrap()
        .replace("interval: 30s", "interval: 1s")
        .replace("interval: 1m", "interval: 1s");
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    let cfg = dir.path().join("argus.yaml");
    std::fs::write(
        &cfg,
        format!(
            "rules:\n  rule_files: ['{}']\n",
            dir.path().join("rules.yml").display()
        ),
    )
    .unwrap();
    let argus = start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let c = reqwest::Client::new();
    // Trivy names the image `nginx:1.25.3`, Falco `docker.io/library/nginx:1.25.3`.
    common::post_findings(
        &c,
        &argus.url,
        common::now_ns(),
        &[
            ("trivy", "trivy_nginx.json"),
            ("falco", "falco_terminal_shell.json"),
        ],
    )
    .await;
    let v = wait_for(&c, &format!("{}/api/v1/alerts", argus.url), |v| {
        v["data"]["alerts"].as_array().is_some_and(|a| {
            a.iter().any(|a| {
                a["labels"]["alertname"] == "CriticalVulnerabilityInRunningImage"
                    && a["state"] == "firing"
            })
        })
    })
    .await;
    let alert = v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "CriticalVulnerabilityInRunningImage")
        .unwrap();
    assert_eq!(alert["labels"]["image"], "docker.io/library/nginx:1.25.3");
    assert_eq!(alert["labels"]["id"], "CVE-2024-45492");
    assert_eq!(
        alert["annotations"]["summary"],
        "docker.io/library/nginx:1.25.3 runs with CVE-2024-45492 (CRITICAL)"
    );
    // The LOW finding of the same image does not alert.
    assert_eq!(
        v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["labels"]["alertname"] == "CriticalVulnerabilityInRunningImage")
            .count(),
        1
    );
}
