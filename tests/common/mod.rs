//! Helpers shared by the binary's integration tests: start `argus run` on a free port,
//! signal it, read JSON and whole topics over its HTTP API.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A started process (`argus`, or a real tool beside it) and the URL it serves; killed
/// when dropped.
pub struct Argus {
    pub child: Child,
    pub url: String,
}

impl Drop for Argus {
    /// A failing test must not leave the process behind (it would hold the test's output open).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `argus run` on a free port and waits for the address it prints.
pub fn start(data_dir: &Path, extra: &[&str]) -> Argus {
    start_bin(
        env!("CARGO_BIN_EXE_argus"),
        data_dir,
        extra,
        Stdio::inherit(),
    )
}

/// [`start`] with another `argus` binary and somewhere else for its stderr.
pub fn start_bin(bin: impl AsRef<OsStr>, data_dir: &Path, extra: &[&str], stderr: Stdio) -> Argus {
    let mut child = Command::new(bin)
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("argus listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Argus { child, url }
}

/// Starts Debian's Alertmanager (`bin`) with `config` and its data under `data_dir`, on
/// a free port of 127.0.0.1, clustering off.
pub fn start_alertmanager(bin: &str, config: &Path, data_dir: &Path, stderr: Stdio) -> Argus {
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", data_dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
    Argus {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Serves `app` on a free port of 127.0.0.1 (a local receiver); returns the port.
pub async fn serve(app: axum::Router) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

pub fn signal(child: &Child, sig: i32) {
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

pub async fn get_json(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// Every record of `topic` (all partitions), as the records API returns them.
pub async fn topic_records(
    client: &reqwest::Client,
    url: &str,
    topic: &str,
) -> Vec<serde_json::Value> {
    let topics = get_json(client, format!("{url}/api/v1/topics")).await;
    let parts = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == topic)
        .map(|t| t["partitions"].as_array().unwrap().len())
        .unwrap_or(0);
    let mut out = Vec::new();
    for p in 0..parts {
        let mut offset = 0;
        loop {
            let page = get_json(
                client,
                format!(
                    "{url}/api/v1/topics/{topic}/records?partition={p}&offset={offset}&limit=5000"
                ),
            )
            .await;
            let recs = page["records"].as_array().unwrap();
            if recs.is_empty() {
                break;
            }
            out.extend(recs.iter().cloned());
            offset = page["next_offset"].as_i64().unwrap();
        }
    }
    out
}

/// A service a test needs, from an environment variable; `None` (skip) when unset,
/// unless `ARGUS_REQUIRE_SERVICES` is set (then the test fails).
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("ARGUS_REQUIRE_SERVICES").is_some() => {
            panic!("{var} is not set and ARGUS_REQUIRE_SERVICES is: run deploy/test.sh")
        }
        _ => {
            eprintln!("skipped: {var} is not set (deploy/test.sh sets it)");
            None
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (proleptic Gregorian, UTC).
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Posts the finding fixtures (`(receiver, file)` under `ingest/tests/fixtures/findings`)
/// as today's scans: the fixtures are real reports from 2024, their times are moved to
/// `now_ns`.
pub async fn post_findings(c: &reqwest::Client, url: &str, now_ns: i64, docs: &[(&str, &str)]) {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest/tests/fixtures/findings");
    let today = rfc3339(now_ns / 1_000_000_000);
    for (kind, file) in docs {
        let body = std::fs::read_to_string(fixtures.join(file))
            .unwrap()
            .replace("2024-09-10T08:15:30.123456789Z", &today)
            .replace("2024-05-14T09:12:45.123456789Z", &today)
            .replace("1715677965123456789", &now_ns.to_string());
        let r = c
            .post(format!("{url}/api/v1/findings/{kind}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{kind}: {}",
            r.text().await.unwrap()
        );
    }
}
