//! An amtool session against the Alertmanager API: Debian's amtool (0.25) adds,
//! queries, updates, expires and imports silences, adds and queries alerts, and sees
//! silenced alerts as silenced.
//!
//! Needs `ARGUS_TEST_AMTOOL` (the amtool binary, e.g. `/usr/bin/amtool`); skipped when
//! unset unless `ARGUS_REQUIRE_SERVICES` is set.

mod am_common;

use std::process::Command;
use std::sync::Arc;

use am_common::{api_with, call_json, silences, temp_log};
use argus_rules::silences::SystemClock;
use serde_json::Value;

fn amtool_path() -> Option<String> {
    match std::env::var("ARGUS_TEST_AMTOOL") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            if std::env::var_os("ARGUS_REQUIRE_SERVICES").is_some() {
                panic!("ARGUS_REQUIRE_SERVICES is set but ARGUS_TEST_AMTOOL is not");
            }
            eprintln!("skipping: ARGUS_TEST_AMTOOL is not set");
            None
        }
    }
}

/// Serves the API of a fresh instance on a free port; returns its URL and router.
async fn serve() -> (String, axum::Router, tempfile::TempDir) {
    let (log, dir) = temp_log().await;
    let (_api, router) = api_with(
        silences(&log, Arc::new(SystemClock)),
        "route: {receiver: default, group_by: [alertname]}\n",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), router, dir)
}

/// Runs amtool; returns stdout, failing on a non-zero exit or anything on stderr.
async fn amtool(bin: &str, url: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--alertmanager.url={url}")).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "amtool {args:?}: {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    stdout
}

fn ids(json: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_session() {
    let Some(bin) = amtool_path() else { return };
    let (url, router, _dir) = serve().await;
    let am = |args: &'static [&'static str]| {
        let (bin, url) = (bin.clone(), url.clone());
        async move { amtool(&bin, &url, args).await }
    };

    // add
    let id = amtool(
        &bin,
        &url,
        &[
            "silence",
            "add",
            "alertname=X",
            "--comment=hello",
            "--duration=1h",
        ],
    )
    .await
    .trim()
    .to_string();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    let id2 = amtool(
        &bin,
        &url,
        &[
            "silence",
            "add",
            "alertname=~\"Z.*\"",
            "job!=x",
            "--comment=second",
            "-a",
            "bob",
        ],
    )
    .await
    .trim()
    .to_string();

    // query: table, quiet, JSON with a filter
    let table = am(&["silence", "query"]).await;
    assert!(table.lines().next().unwrap().starts_with("ID "), "{table}");
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        row.contains("alertname=\"X\"") && row.contains("hello"),
        "{row}"
    );
    let row2 = table.lines().find(|l| l.starts_with(&id2)).unwrap();
    assert!(
        row2.contains("alertname=~\"Z.*\" job!=\"x\"") && row2.contains("bob"),
        "{row2}"
    );
    let mut quiet: Vec<String> = am(&["silence", "query", "-q"])
        .await
        .lines()
        .map(String::from)
        .collect();
    quiet.sort();
    let mut both = vec![id.clone(), id2.clone()];
    both.sort();
    assert_eq!(quiet, both);
    let json = am(&["silence", "query", "-o", "json", "alertname=X"]).await;
    assert_eq!(ids(&json), vec![id.clone()]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["comment"], "hello");
    assert_eq!(v[0]["status"]["state"], "active");

    // update: in place (same id)
    let out = amtool(&bin, &url, &["silence", "update", &id, "--comment=updated"]).await;
    assert!(out.contains(&id) && out.contains("updated"), "{out}");
    let (_, v) = call_json(&router, "GET", &format!("/api/v2/silence/{id}"), "").await;
    assert_eq!(v["comment"], "updated");
    let old_end = v["endsAt"].as_str().unwrap().to_string();
    amtool(&bin, &url, &["silence", "update", &id, "--duration=3h"]).await;
    let (_, v) = call_json(&router, "GET", &format!("/api/v2/silence/{id}"), "").await;
    assert!(v["endsAt"].as_str().unwrap() > old_end.as_str());
    assert_eq!(v["status"]["state"], "active");

    // expire
    amtool(&bin, &url, &["silence", "expire", &id2]).await;
    assert_eq!(am(&["silence", "query", "-q"]).await.trim(), id);
    let expired = amtool(&bin, &url, &["silence", "query", "--expired", "-o", "json"]).await;
    assert_eq!(ids(&expired), vec![id2.clone()]);

    // export, then import into the same instance (updates in place) and into a fresh
    // one (amtool retries without the id after a 404: a new silence)
    let export = am(&["silence", "query", "-o", "json"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("silences.json");
    std::fs::write(&file, &export).unwrap();
    let f = file.to_str().unwrap().to_string();
    let same = amtool(&bin, &url, &["silence", "import", &f]).await;
    assert_eq!(same.trim(), id);
    let (url2, router2, _dir2) = serve().await;
    let imported = amtool(&bin, &url2, &["silence", "import", &f]).await;
    let new_id = imported.trim().to_string();
    assert_ne!(new_id, id);
    let (_, v) = call_json(&router2, "GET", "/api/v2/silences", "").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], new_id.as_str());
    assert_eq!(v[0]["comment"], "updated");
    assert_eq!(
        v[0]["matchers"],
        serde_json::from_str::<Value>(&export).unwrap()[0]["matchers"]
    );

    // alerts: X is silenced, Y is not
    amtool(
        &bin,
        &url,
        &[
            "alert",
            "add",
            "alertname=X",
            "severity=page",
            "--annotation=summary=hi",
            "--generator-url=http://x/graph",
        ],
    )
    .await;
    amtool(&bin, &url, &["alert", "add", "Y", "severity=ticket"]).await;
    // Default query: active, unsilenced alerts only.
    let v: Value = serde_json::from_str(&am(&["alert", "query", "-o", "json"]).await).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Y"]);
    let v: Value =
        serde_json::from_str(&am(&["alert", "query", "-s", "-o", "json", "alertname=X"]).await)
            .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["status"]["state"], "suppressed");
    assert_eq!(v[0]["status"]["silencedBy"], serde_json::json!([id]));
    assert_eq!(v[0]["annotations"]["summary"], "hi");
    assert_eq!(v[0]["generatorURL"], "http://x/graph");
    let table = am(&["alert", "query", "-s", "alertname=X"]).await;
    let row = table.lines().find(|l| l.starts_with("X ")).unwrap();
    assert!(
        row.contains("hi") && row.trim_end().ends_with("suppressed"),
        "{table}"
    );

    // The API says the same.
    let (_, v) = call_json(&router, "GET", "/api/v2/alerts", "").await;
    let x = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "X")
        .unwrap();
    assert_eq!(
        x["status"],
        serde_json::json!({"inhibitedBy": [], "silencedBy": [id], "state": "suppressed"})
    );
    let y = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "Y")
        .unwrap();
    assert_eq!(y["status"]["state"], "active");

    // Once the silence is expired, X is active again.
    amtool(&bin, &url, &["silence", "expire", &id]).await;
    let v: Value = serde_json::from_str(&am(&["alert", "query", "-o", "json"]).await).unwrap();
    let mut names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["X", "Y"]);
}
