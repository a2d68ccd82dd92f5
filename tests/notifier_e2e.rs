//! The notifier end to end on real parts: Debian's Prometheus 2.42 evaluates an
//! alerting rule and sends its alerts to Argus as to an Alertmanager (API v2); Argus
//! routes them to one receiver with four channels at once and delivers one
//! notification through each:
//!
//! - email to the real SMTP server of `deploy/start-smtp.sh` (python3-aiosmtpd), on its
//!   STARTTLS port with AUTH, the server certificate verified against the script's CA;
//! - a webhook receiver that records Alertmanager's v4 payloads;
//! - the WeCom robot API stand-in and
//! - the Tencent Cloud SMS stand-in (TC3-HMAC-SHA256 signature verified) of
//!   `notifier/tests/support/standins.rs`.
//!
//! The rule's condition is a series the test serves itself and Prometheus scrapes:
//! when the test turns it off, the rule stops firing, Prometheus sends the alert as
//! resolved, and the resolved notification goes out only on the channels whose
//! `send_resolved` is true (webhook and WeCom by default; not email, not SMS).
//!
//! Needs `ARGUS_TEST_PROMETHEUS_BIN` and the SMTP server's `ARGUS_TEST_SMTP_STARTTLS`,
//! `ARGUS_TEST_SMTP_CA` and `ARGUS_TEST_SMTP_DIR` (deploy/test.sh sets them); the SMTP
//! credentials are `ARGUS_SMTP_USER` / `ARGUS_SMTP_PASSWORD` (start-smtp.sh's defaults
//! when unset).

mod common;
#[path = "../notifier/tests/support/standins.rs"]
mod standins;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use base64::Engine as _;
use common::{free_port, service};
use serde_json::{Value, json};
use standins::{
    TENCENT_SDK_APP_ID, TENCENT_SECRET_ID, TENCENT_SECRET_KEY, TENCENT_TEMPLATE_ID, WECOM_KEY,
    serve, tencent_server, wecom_server,
};

const ALERTNAME: &str = "ArgusE2EDiskFull";
const PHONES: [&str; 2] = ["+8613800000001", "+8613800000002"];
/// How long each stage may take at most (Prometheus' start, first scrape and
/// evaluation, group_wait, delivery).
const STAGE_LIMIT: Duration = Duration::from_secs(90);

/// Kills a helper process when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `probe` every 250 ms until it gives a value; panics naming `what` after
/// [`STAGE_LIMIT`].
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + STAGE_LIMIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {STAGE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A webhook receiver: every JSON body posted to `/hook`.
async fn webhook_receiver() -> (Arc<Mutex<Vec<Value>>>, SocketAddr) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    async fn hook(State(got): State<Arc<Mutex<Vec<Value>>>>, body: Bytes) -> &'static str {
        let v: Value = serde_json::from_slice(&body).expect("webhook body is JSON");
        got.lock().unwrap().push(v);
        "ok"
    }
    let addr = serve(
        Router::new()
            .route("/hook", post(hook))
            .with_state(got.clone()),
    )
    .await;
    (got, addr)
}

/// The scrape target Prometheus' rule reads: `argus_e2e_disk_full{mountpoint="/data"}`
/// is 1 while `full` is true, else 0.
async fn condition_target(full: Arc<AtomicBool>) -> SocketAddr {
    async fn metrics(State(full): State<Arc<AtomicBool>>) -> impl axum::response::IntoResponse {
        let v = u8::from(full.load(Ordering::SeqCst));
        (
            [("content-type", "text/plain; version=0.0.4")],
            format!(
                "# TYPE argus_e2e_disk_full gauge\nargus_e2e_disk_full{{mountpoint=\"/data\"}} {v}\n"
            ),
        )
    }
    serve(
        Router::new()
            .route("/metrics", get(metrics))
            .with_state(full),
    )
    .await
}

// ------------------------------------------------------------------------------
// Reading the mail the SMTP server stored

/// One stored message: the server's metadata and the parsed message.
#[derive(Debug)]
struct Mail {
    meta: Value,
    message: Mime,
}

/// A MIME entity: unfolded headers (names lower-cased) and either its decoded body or
/// its parts.
#[derive(Debug)]
struct Mime {
    headers: Vec<(String, String)>,
    body: String,
    parts: Vec<Mime>,
}

impl Mime {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type, lower-cased, without parameters.
    fn media_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("text/plain")
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_ascii_lowercase()
    }

    fn param(&self, header: &str, name: &str) -> Option<String> {
        self.header(header)?.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().trim_matches('"').to_string())
        })
    }
}

/// Parses a message (RFC 5322 with MIME): headers unfolded, multipart bodies split at
/// their boundary, part bodies decoded from base64 or quoted-printable.
fn parse_mime(raw: &str) -> Mime {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            let last = headers
                .last_mut()
                .expect("a continuation line follows a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (n, v) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("not a header line: {line:?}"));
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut m = Mime {
        headers,
        body: String::new(),
        parts: Vec::new(),
    };
    if m.media_type().starts_with("multipart/") {
        let boundary = m.param("content-type", "boundary").expect("a boundary");
        let delimiter = format!("--{boundary}");
        let end = format!("--{boundary}--");
        let mut current: Option<Vec<&str>> = None;
        for line in body.lines() {
            if line == delimiter || line == end {
                if let Some(lines) = current.take() {
                    m.parts.push(parse_mime(&lines.join("\n")));
                }
                if line == delimiter {
                    current = Some(Vec::new());
                }
            } else if let Some(lines) = current.as_mut() {
                lines.push(line);
            }
        }
    } else {
        let cte = m
            .header("content-transfer-encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        m.body = match cte.as_str() {
            "base64" => {
                let compact: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("base64 body");
                String::from_utf8(bytes).expect("UTF-8 body")
            }
            "quoted-printable" => quoted_printable(body),
            _ => body.to_string(),
        };
    }
    m
}

/// Decodes quoted-printable text (RFC 2045 §6.7): `=XX` bytes, `=` at a line's end
/// joins it with the next.
fn quoted_printable(s: &str) -> String {
    let lines: Vec<&str> = s.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut j = 0;
        while j < line.len() {
            if line.as_bytes()[j] == b'=' {
                let hex = line.get(j + 1..j + 3).expect("=XX escape");
                out.push(u8::from_str_radix(hex, 16).expect("=XX escape"));
                j += 3;
            } else {
                out.push(line.as_bytes()[j]);
                j += 1;
            }
        }
        if !soft && i + 1 < lines.len() {
            out.push(b'\n');
        }
    }
    String::from_utf8(out).expect("UTF-8 body")
}

/// Every message the SMTP server stored in `dir` for the envelope recipient `rcpt`.
fn mails_to(dir: &Path, rcpt: &str) -> Vec<Mail> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    for p in names {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let meta: Value = serde_json::from_str(&text).expect("metadata JSON");
        if !meta["rcpt_tos"]
            .as_array()
            .is_some_and(|r| r.iter().any(|a| a == rcpt))
        {
            continue;
        }
        let eml = dir.join(meta["eml"].as_str().unwrap());
        let raw = std::fs::read(&eml).unwrap();
        let message = parse_mime(&String::from_utf8(raw).expect("a UTF-8 message"));
        out.push(Mail { meta, message });
    }
    out
}

// ------------------------------------------------------------------------------
// Argus' notification history

/// `sent` records of receiver `oncall`, as (channel, firing, resolved).
async fn sent_records(c: &reqwest::Client, argus: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let v = common::get_json(
        c,
        format!("{argus}/api/v1/notifications?receiver=oncall&outcome=sent"),
    )
    .await;
    assert_eq!(v["status"], "success", "{v}");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["outcome"], "sent", "{r}");
            (
                r["channel"].as_str().unwrap().to_string(),
                strings(&r["firing"]),
                strings(&r["resolved"]),
            )
        })
        .collect()
}

const CHANNELS: [&str; 4] = ["email/0", "sms/0", "webhook/0", "wecom/0"];

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_alert_reaches_email_webhook_wecom_and_sms() {
    let Some(prometheus_bin) = service("ARGUS_TEST_PROMETHEUS_BIN") else {
        return;
    };
    let Some(smtp) = service("ARGUS_TEST_SMTP_STARTTLS") else {
        return;
    };
    let Some(smtp_ca) = service("ARGUS_TEST_SMTP_CA") else {
        return;
    };
    let Some(mail_dir) = service("ARGUS_TEST_SMTP_DIR") else {
        return;
    };
    let mail_dir = Path::new(&mail_dir);
    let smtp_user = env_or("ARGUS_SMTP_USER", "argus");
    let smtp_password = env_or("ARGUS_SMTP_PASSWORD", "argus-password");

    let dir = tempfile::tempdir().unwrap();
    // The stand-ins and the webhook receiver.
    let (hooks, hook_addr) = webhook_receiver().await;
    let (wecom, wecom_url) = wecom_server(20, Duration::from_secs(60)).await;
    let (tencent, tencent_addr) = tencent_server(&[], &[]).await;
    let full = Arc::new(AtomicBool::new(true));
    let target = condition_target(full.clone()).await;

    // A recipient no other test uses: the mail directory is shared.
    let rcpt = format!(
        "oncall-{}-{}@example.org",
        std::process::id(),
        common::now_ns()
    );
    let secret_file = dir.path().join("tencent-secret");
    std::fs::write(&secret_file, format!("{TENCENT_SECRET_KEY}\n")).unwrap();
    // Links in notifications point here (any URL: nothing fetches it).
    let external_url = "http://argus.e2e.test:9099";
    let routing = dir.path().join("routing.yml");
    std::fs::write(
        &routing,
        format!(
            r#"route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
- name: oncall
  email_configs:
  - to: '{rcpt}'
    from: 'Argus E2E <argus-e2e@argus.test>'
    hello: argus-e2e.test
    smarthost: '{smtp}'
    require_tls: true
    auth_username: '{smtp_user}'
    auth_password: '{smtp_password}'
    tls_config:
      ca_file: '{smtp_ca}'
  sms_configs:
  - phone_numbers: ['{p0}', '{p1}']
    tencent:
      secret_id: {TENCENT_SECRET_ID}
      secret_key_file: '{secret}'
      sdk_app_id: '{TENCENT_SDK_APP_ID}'
      sign_name: Argus
      template_id: '{TENCENT_TEMPLATE_ID}'
      template_params: ['{{{{ .GroupLabels.alertname }}}}', '{{{{ .CommonLabels.severity }}}}']
      endpoint: 'http://{tencent_addr}/'
  webhook_configs:
  - url: 'http://{hook_addr}/hook'
  wecom_configs:
  - key: {WECOM_KEY}
    api_url: '{wecom_url}'
"#,
            p0 = PHONES[0],
            p1 = PHONES[1],
            secret = secret_file.display(),
        ),
    )
    .unwrap();
    let argus_cfg = dir.path().join("argus.yml");
    std::fs::write(
        &argus_cfg,
        format!(
            "notifier:\n  config_file: {}\n  external_url: {external_url}\n",
            routing.display()
        ),
    )
    .unwrap();
    let argus = common::start(
        &dir.path().join("argus-data"),
        &["--config", argus_cfg.to_str().unwrap()],
    );
    let argus_addr = argus.url.strip_prefix("http://").unwrap().to_string();
    let c = reqwest::Client::new();
    eventually("argus ready", async || {
        let r = c.get(format!("{}/ready", argus.url)).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    // Prometheus with the rule, scraping the condition, alerting to Argus.
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        format!(
            r#"groups:
- name: argus-e2e
  rules:
  - alert: {ALERTNAME}
    expr: max by (mountpoint) (argus_e2e_disk_full) > 0
    for: 0s
    labels:
      severity: critical
      team: storage
    annotations:
      summary: 'disk {{{{ $labels.mountpoint }}}} is full'
"#
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['{rules}']
scrape_configs:
- job_name: argus-e2e
  static_configs:
  - targets: ['{target}']
alerting:
  alertmanagers:
  - api_version: v2
    static_configs:
    - targets: ['{argus_addr}']
"#,
            rules = rules.display()
        ),
    )
    .unwrap();
    let _prometheus = Reap(
        Command::new(&prometheus_bin)
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {prometheus_bin}: {e}")),
    );

    // ---- Firing: one notification through each of the four channels.
    let history = eventually("a sent record for each of the 4 channels", async || {
        let recs = sent_records(&c, &argus.url).await;
        CHANNELS
            .iter()
            .all(|ch| recs.iter().any(|(name, _, _)| name == ch))
            .then_some(recs)
    })
    .await;

    // The webhook: Alertmanager's v4 payload.
    let firing = {
        let got = hooks.lock().unwrap();
        assert_eq!(got.len(), 1, "one webhook notification: {got:?}");
        got[0].clone()
    };
    let want_labels = json!({
        "alertname": ALERTNAME, "mountpoint": "/data", "severity": "critical", "team": "storage"
    });
    assert_eq!(firing["version"], "4", "{firing}");
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "oncall");
    let group_key = format!("{{}}:{{alertname=\"{ALERTNAME}\"}}");
    assert_eq!(firing["groupKey"], group_key.as_str());
    assert_eq!(firing["groupLabels"], json!({ "alertname": ALERTNAME }));
    assert_eq!(firing["commonLabels"], want_labels);
    assert_eq!(
        firing["commonAnnotations"],
        json!({"summary": "disk /data is full"})
    );
    assert_eq!(firing["externalURL"], external_url);
    assert_eq!(firing["truncatedAlerts"], 0);
    let alerts = firing["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"], want_labels);
    assert_eq!(a["annotations"]["summary"], "disk /data is full");
    assert_eq!(
        a["endsAt"], "0001-01-01T00:00:00Z",
        "a firing alert has no end"
    );
    let generator = a["generatorURL"].as_str().unwrap();
    assert!(
        generator.contains("/graph?g0.expr=") && generator.contains("argus_e2e_disk_full"),
        "Prometheus' generator URL: {generator}"
    );
    let fingerprint = a["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fingerprint.len(), 16, "{fingerprint}");
    let starts_at = chrono::DateTime::parse_from_rfc3339(a["startsAt"].as_str().unwrap())
        .expect("startsAt is RFC 3339");

    // The history: one sent record per channel, for this alert, firing.
    let mut per_channel: BTreeMap<&str, usize> = BTreeMap::new();
    for (ch, f, r) in &history {
        *per_channel.entry(ch.as_str()).or_default() += 1;
        assert_eq!(
            f,
            std::slice::from_ref(&fingerprint),
            "{ch}: firing fingerprints"
        );
        assert!(r.is_empty(), "{ch}: nothing resolved yet: {r:?}");
    }
    assert_eq!(
        per_channel,
        CHANNELS.iter().map(|ch| (*ch, 1)).collect(),
        "one sent record per channel"
    );

    // Email: one message over STARTTLS with AUTH, the default headers and both parts.
    let mails = mails_to(mail_dir, &rcpt);
    assert_eq!(mails.len(), 1, "one mail to {rcpt}: {mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail.meta["mail_from"], "argus-e2e@argus.test");
    assert_eq!(mail.meta["rcpt_tos"], json!([rcpt]));
    assert_eq!(mail.meta["tls"], true, "STARTTLS was used: {}", mail.meta);
    assert_eq!(mail.meta["auth_user"], smtp_user.as_str());
    let m = &mail.message;
    assert_eq!(
        m.header("subject"),
        Some(format!("[FIRING:1] {ALERTNAME} (/data critical storage)").as_str()),
        "the default subject: {:?}",
        m.headers
    );
    assert!(m.header("to").unwrap().contains(&rcpt), "{:?}", m.headers);
    let from = m.header("from").unwrap();
    assert!(
        from.contains("argus-e2e@argus.test") && from.contains("Argus E2E"),
        "{from}"
    );
    assert_eq!(m.media_type(), "multipart/alternative", "{:?}", m.headers);
    let types: Vec<String> = m.parts.iter().map(Mime::media_type).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let (text, html) = (&m.parts[0].body, &m.parts[1].body);
    for (what, body) in [("text", text), ("html", html)] {
        assert!(body.contains(ALERTNAME), "{what} part: {body}");
        assert!(body.contains("disk /data is full"), "{what} part: {body}");
    }
    assert!(
        text.contains(&format!(
            "Labels: alertname={ALERTNAME}, mountpoint=/data, severity=critical, team=storage"
        )),
        "{text}"
    );
    assert!(html.contains("<html"), "{html}");
    assert!(!text.contains("<html"), "{text}");
    assert_eq!(
        m.parts[1].param("content-type", "charset").as_deref(),
        Some("utf-8"),
        "{:?}",
        m.parts[1].headers
    );

    // WeCom: one markdown message through the valid key.
    {
        let msgs = wecom.messages.lock().unwrap();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert_eq!(msgs[0]["msgtype"], "markdown", "{}", msgs[0]);
        let content = msgs[0]["markdown"]["content"].as_str().unwrap();
        assert!(content.contains(ALERTNAME), "{content}");
        assert!(content.contains("disk /data is full"), "{content}");
        assert!(content.contains(external_url), "links to Argus: {content}");
    }

    // SMS: one signed SendSms request (the stand-in records only verified ones).
    {
        let bodies = tencent.bodies.lock().unwrap();
        assert_eq!(bodies.len(), 1, "{bodies:?}");
        let b = &bodies[0];
        assert_eq!(b["PhoneNumberSet"], json!(PHONES));
        assert_eq!(b["TemplateParamSet"], json!([ALERTNAME, "critical"]));
        assert_eq!(b["SmsSdkAppId"], TENCENT_SDK_APP_ID);
        assert_eq!(b["TemplateId"], TENCENT_TEMPLATE_ID);
        assert_eq!(b["SignName"], "Argus");
    }

    // ---- Resolved: the condition goes away; Prometheus resolves the alert.
    full.store(false, Ordering::SeqCst);
    let resolved_record = |recs: &[(String, Vec<String>, Vec<String>)], ch: &str| {
        recs.iter().any(|(name, f, r)| {
            name == ch && f.is_empty() && r == std::slice::from_ref(&fingerprint)
        })
    };
    // Every channel's flush is done once each has a record for the resolved alert:
    // webhook and WeCom after sending, email and SMS (send_resolved false) logged as
    // notified without sending.
    eventually("the resolved notification on every channel", async || {
        let recs = sent_records(&c, &argus.url).await;
        CHANNELS
            .iter()
            .all(|ch| resolved_record(&recs, ch))
            .then_some(())
    })
    .await;

    let got = hooks.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "firing, then resolved: {got:?}");
    let r = &got[1];
    assert_eq!(r["status"], "resolved", "{r}");
    assert_eq!(r["groupKey"], group_key.as_str());
    let ra = &r["alerts"].as_array().unwrap()[..];
    assert_eq!(ra.len(), 1, "{r}");
    assert_eq!(ra[0]["status"], "resolved");
    assert_eq!(ra[0]["labels"], want_labels);
    assert_eq!(ra[0]["fingerprint"], fingerprint.as_str());
    assert_eq!(ra[0]["startsAt"], a["startsAt"]);
    let ends_at = chrono::DateTime::parse_from_rfc3339(ra[0]["endsAt"].as_str().unwrap())
        .expect("a resolved alert has an end");
    assert!(ends_at > starts_at, "{ends_at} after {starts_at}");

    {
        let msgs = wecom.messages.lock().unwrap();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        let content = msgs[1]["markdown"]["content"].as_str().unwrap();
        assert!(content.contains(ALERTNAME), "{content}");
        assert!(content.contains("RESOLVED"), "{content}");
    }
    // Email and SMS do not send resolved notifications by default.
    assert_eq!(mails_to(mail_dir, &rcpt).len(), 1, "no resolved mail");
    assert_eq!(tencent.bodies.lock().unwrap().len(), 1, "no resolved SMS");
}

#[test]
fn mime_reader_decodes_multipart_quoted_printable_and_base64() {
    let raw = "Subject: [FIRING:1] Disk\r\n\
               Content-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n\r\n\
               --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
               Content-Transfer-Encoding: quoted-printable\r\n\r\n\
               a=3Db, sever=\r\nity=3Dcrit=C3=A9\r\nnext line\r\n\
               --b1\r\nContent-Type: text/html; charset=\"utf-8\"\r\n\
               Content-Transfer-Encoding: base64\r\n\r\nPGI+w6k8L2I+\r\n\
               --b1--\r\n";
    let m = parse_mime(raw);
    assert_eq!(m.header("subject"), Some("[FIRING:1] Disk"));
    assert_eq!(m.media_type(), "multipart/alternative");
    assert_eq!(m.param("content-type", "boundary").as_deref(), Some("b1"));
    assert_eq!(m.parts.len(), 2);
    assert_eq!(m.parts[0].body, "a=b, severity=crit\u{e9}\nnext line");
    assert_eq!(m.parts[1].media_type(), "text/html");
    assert_eq!(
        m.parts[1].param("content-type", "charset").as_deref(),
        Some("utf-8")
    );
    assert_eq!(m.parts[1].body, "<b>\u{e9}</b>");
}
