//! The HTTP channels (webhook, WeCom, SMS) against stand-in servers on 127.0.0.1:
//! a webhook receiver that records what it got, a WeCom robot API that enforces what
//! WeCom documents (message shape, byte limits, 20 messages a minute, unknown keys),
//! a Tencent Cloud SMS endpoint that verifies the TC3-HMAC-SHA256 signature with its
//! own implementation of the documented algorithm, and a generic SMS gateway. The WeCom
//! and Tencent stand-ins live in `support/standins.rs` (the binary's end-to-end test
//! uses them too).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argus_notifier::channels::sms::{SmsChannel, SmsConfig};
use argus_notifier::channels::webhook::{self, WebhookChannel, WebhookConfig};
use argus_notifier::channels::wecom::{self, WecomChannel, WecomConfig};
use argus_notifier::channels::{Channel, ChannelError};
use argus_notifier::config::GlobalConfig;
use argus_notifier::template::Templates;
use argus_notifier::{Notification, NotifyAlert};
use argus_schemas::{Labels, Timestamp};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use support::standins::{hmac_hex, serve, tencent_server, wecom_server};

// ------------------------------------------------------------------------------
// Helpers

fn templates() -> Templates {
    Templates::load(&[], None).expect("default templates")
}

fn global() -> GlobalConfig {
    GlobalConfig::default()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

const SECOND: i64 = 1_000_000_000;

fn alert(instance: &str, summary: &str) -> NotifyAlert {
    NotifyAlert {
        labels: labels(&[
            ("alertname", "DiskFull"),
            ("instance", instance),
            ("mountpoint", "/data"),
            ("severity", "critical"),
        ]),
        annotations: labels(&[
            ("runbook", "https://wiki.example/runbooks?id=disk&lang=en"),
            ("summary", summary),
        ]),
        starts_at: Timestamp(1_709_294_400 * SECOND),
        ends_at: None,
        generator_url:
            "http://prometheus.example:9090/graph?g0.expr=node_filesystem_avail_bytes&g0.tab=1"
                .into(),
        fingerprint: 1,
        resolved: false,
    }
}

/// The notification the golden fixture describes: three alerts, the second resolved.
fn golden_notification() -> Notification {
    let mut a1 = alert("db-1:9100", "free space on db-1 < 5%");
    a1.starts_at = Timestamp(1_709_294_400 * SECOND + 500_000_000);
    a1.fingerprint = 0x0a1b_2c3d_4e5f_6071;
    let mut a2 = alert("db-2:9100", "free space on db-2 < 5%");
    a2.starts_at = Timestamp(1_709_294_310 * SECOND);
    a2.ends_at = Some(Timestamp(1_709_294_640 * SECOND + 123_456_789));
    a2.resolved = true;
    a2.fingerprint = 0xfedc_ba98_7654_3210;
    let mut a3 = alert("db-3:9100", "free space on db-3 < 5%");
    a3.starts_at = Timestamp(1_709_294_470 * SECOND + 250_000_000);
    a3.fingerprint = 0x1111_2222_3333_4444;
    Notification {
        receiver: "team-x.ops".into(),
        group_key: r#"{}/{severity="critical"}:{alertname="DiskFull"}"#.into(),
        group_labels: labels(&[("alertname", "DiskFull")]),
        alerts: vec![a1, a2, a3],
        external_url: "http://argus.example:9099".into(),
        now: Timestamp(1_709_294_700 * SECOND),
    }
}

/// A one-alert notification whose alertname is `name`.
fn named(name: &str, now_offset: i64) -> Notification {
    let mut a = alert("db-1:9100", "full");
    a.labels.insert("alertname", name);
    Notification {
        receiver: "ops".into(),
        group_key: format!("{{}}:{{alertname=\"{name}\"}}"),
        group_labels: labels(&[("alertname", name)]),
        alerts: vec![a],
        external_url: "http://argus.example:9099".into(),
        now: Timestamp(1_709_294_700 * SECOND + now_offset),
    }
}

/// JSON text without the white space outside strings.
fn minify(json: &str) -> String {
    let mut out = String::new();
    let (mut in_str, mut esc) = (false, false);
    for c in json.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

// ------------------------------------------------------------------------------
// Webhook receiver stand-in

#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Status, extra header, body to answer with.
type HookAnswer = (u16, Option<(&'static str, &'static str)>, &'static str);

#[derive(Default)]
struct HookState {
    got: Mutex<Vec<Received>>,
    /// What to answer with (200 when empty).
    answer: Mutex<Option<HookAnswer>>,
}

async fn hook(State(s): State<Arc<HookState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.got.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
    });
    let answer = *s.answer.lock().unwrap();
    match answer {
        None => StatusCode::OK.into_response(),
        Some((status, header, text)) => {
            let mut r = (StatusCode::from_u16(status).unwrap(), text).into_response();
            if let Some((n, v)) = header {
                r.headers_mut().insert(n, v.parse().unwrap());
            }
            r
        }
    }
}

async fn hook_server() -> (Arc<HookState>, SocketAddr) {
    let state = Arc::new(HookState::default());
    let addr = serve(
        Router::new()
            .route("/hook", post(hook))
            .with_state(state.clone()),
    )
    .await;
    (state, addr)
}

fn webhook_channel(yaml: &str) -> WebhookChannel {
    let c: WebhookConfig = serde_yaml_ng::from_str(yaml).expect("webhook yaml");
    WebhookChannel::new(&c, &global(), &templates()).expect("webhook channel")
}

#[tokio::test]
async fn webhook_payload_is_alertmanagers_v4_golden() {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/channels/webhook_v4.json"
    ))
    .unwrap();
    let (state, addr) = hook_server().await;
    let ch = webhook_channel(&format!("url: http://{addr}/hook\nmax_alerts: 2\n"));
    assert_eq!(ch.kind(), "webhook");
    assert!(ch.send_resolved(), "send_resolved defaults to true");
    ch.notify(&golden_notification()).await.expect("delivered");

    let got = state.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    // Byte for byte what Go's json.Encoder writes: compact, escaped, newline-terminated.
    let body = String::from_utf8(got[0].body.clone()).unwrap();
    assert_eq!(body, format!("{}\n", minify(&fixture)));
    assert_eq!(got[0].headers["content-type"], "application/json");
    let ua = got[0].headers["user-agent"].to_str().unwrap();
    assert!(ua.starts_with("Argus/"), "{ua}");

    // The typed payload agrees with the fixture too.
    let typed = webhook::payload(&golden_notification(), 2);
    let from_fixture: webhook::WebhookMessage = serde_json::from_str(&fixture).unwrap();
    assert_eq!(typed, from_fixture);
    // Without max_alerts every alert goes and nothing is truncated.
    let all = webhook::payload(&golden_notification(), 0);
    assert_eq!(all.alerts.len(), 3);
    assert_eq!(all.truncated_alerts, 0);
    assert_eq!(all.alerts[2].fingerprint, "1111222233334444");
}

#[tokio::test]
async fn webhook_auth_headers_and_signature_are_verified_by_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let (state, addr) = hook_server().await;
    let ch = webhook_channel(&format!(
        "url: http://{addr}/hook\n\
         http_config:\n  basic_auth: {{username: alert, password_file: {}}}\n\
         headers: {{X-Team: storage}}\n\
         signature: {{secret: topsecret}}\n",
        pw.display()
    ));
    let n = named("DiskFull", 0);
    ch.notify(&n).await.unwrap();
    let got = state.got.lock().unwrap().clone();
    let r = &got[0];
    use base64::Engine as _;
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alert:s3cret")
    );
    assert_eq!(r.headers["authorization"], expected_auth.as_str());
    assert_eq!(r.headers["x-team"], "storage");
    let sig = r.headers["x-argus-signature"].to_str().unwrap();
    assert_eq!(sig, format!("sha256={}", hmac_hex(b"topsecret", &r.body)));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["groupLabels"]["alertname"], "DiskFull");

    // authorization with a custom scheme from a file, custom signature header.
    let cred = dir.path().join("cred");
    std::fs::write(&cred, "  tok-123 \n").unwrap();
    let ch = webhook_channel(&format!(
        "url: http://{addr}/hook\n\
         http_config:\n  authorization: {{type: Token, credentials_file: {}}}\n\
         signature: {{secret: k2, header: X-Hub-Signature-256}}\n",
        cred.display()
    ));
    ch.notify(&n).await.unwrap();
    let got = state.got.lock().unwrap().clone();
    let r = &got[1];
    assert_eq!(r.headers["authorization"], "Token tok-123");
    assert_eq!(
        r.headers["x-hub-signature-256"].to_str().unwrap(),
        format!("sha256={}", hmac_hex(b"k2", &r.body))
    );

    // Legacy bearer_token.
    let ch = webhook_channel(&format!(
        "url: http://{addr}/hook\nhttp_config: {{bearer_token: abc}}\n"
    ));
    ch.notify(&n).await.unwrap();
    assert_eq!(
        state.got.lock().unwrap()[2].headers["authorization"],
        "Bearer abc"
    );
}

#[tokio::test]
async fn webhook_5xx_and_429_are_transient_4xx_permanent() {
    let (state, addr) = hook_server().await;
    let ch = webhook_channel(&format!("url: http://{addr}/hook\n"));
    let n = named("DiskFull", 0);

    *state.answer.lock().unwrap() = Some((
        503,
        Some(("retry-after", "7")),
        "overloaded, come back later",
    ));
    match ch.notify(&n).await.unwrap_err() {
        ChannelError::Transient {
            message,
            retry_after,
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(message.contains("503"), "{message}");
            assert!(message.contains("overloaded, come back later"), "{message}");
            assert!(!message.contains("/hook"), "no URL in messages: {message}");
        }
        e => panic!("want transient, got {e:?}"),
    }

    *state.answer.lock().unwrap() = Some((429, None, ""));
    assert!(ch.notify(&n).await.unwrap_err().is_transient());

    *state.answer.lock().unwrap() = Some((400, None, "bad payload"));
    match ch.notify(&n).await.unwrap_err() {
        ChannelError::Permanent(m) => {
            assert!(m.contains("400") && m.contains("bad payload"), "{m}")
        }
        e => panic!("want permanent, got {e:?}"),
    }
    *state.answer.lock().unwrap() = Some((404, None, ""));
    assert!(!ch.notify(&n).await.unwrap_err().is_transient());

    // Nobody listening: transient.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let ch = webhook_channel(&format!("url: http://{closed}/hook\n"));
    assert!(ch.notify(&n).await.unwrap_err().is_transient());
}

#[test]
fn webhook_config_is_validated() {
    let t = templates();
    let g = global();
    let bad = |yaml: &str| -> String {
        let c: WebhookConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        match WebhookChannel::new(&c, &g, &t) {
            Ok(_) => panic!("accepted {yaml}"),
            Err(e) => e,
        }
    };
    assert!(bad("url: http://a/\nurl_file: /x\n").contains("at most one of url & url_file"));
    assert!(bad("max_alerts: 1\n").contains("one of url or url_file"));
    assert!(bad("url: ftp://a/\n").contains("scheme"));
    assert!(bad("url: http://a/\nheaders: {Content-Type: text/plain}\n").contains("Content-Type"));
    assert!(bad("url: http://a/\nsignature: {secret: x, algorithm: sha1}\n").contains("sha1"));
    assert!(bad("url: http://a/\nsignature: {header: X-Sig}\n").contains("secret"));
    assert!(
        bad("url: http://a/\nhttp_config: {bearer_token: a, basic_auth: {username: u}}\n")
            .contains("at most one of basic_auth")
    );
    assert!(
        bad("url: http://a/\nhttp_config: {bearer_token_file: /does/not/exist}\n")
            .contains("/does/not/exist")
    );
    assert!(serde_yaml_ng::from_str::<WebhookConfig>("url: http://a/\nfoo: 1\n").is_err());
    // url_file is read.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("url");
    std::fs::write(&f, "http://127.0.0.1:9/hook\n").unwrap();
    let c: WebhookConfig = serde_yaml_ng::from_str(&format!(
        "url_file: {}\nsend_resolved: false\n",
        f.display()
    ))
    .unwrap();
    let ch = WebhookChannel::new(&c, &g, &t).unwrap();
    assert!(!ch.send_resolved());
}

// ------------------------------------------------------------------------------
// WeCom robot API stand-in

fn wecom_channel(yaml: &str) -> WecomChannel {
    let c: WecomConfig = serde_yaml_ng::from_str(yaml).expect("wecom yaml");
    WecomChannel::new(&c, &global(), &templates()).expect("wecom channel")
}

#[tokio::test]
async fn wecom_text_and_markdown_shapes_with_mentions() {
    let (state, api) = wecom_server(20, Duration::from_secs(60)).await;
    let text = wecom_channel(&format!(
        "key: good-key\napi_url: {api}\nmsg_type: text\nmessage: disk full on db-1\n\
         mentioned_list: [wangqing, \"@all\"]\nmentioned_mobile_list: [\"13800001111\"]\n"
    ));
    text.notify(&named("DiskFull", 0)).await.unwrap();
    let md = wecom_channel(&format!(
        "webhook_url: {api}?key=good-key\nmessage: \"**disk** full\"\nmentioned_list: [wangqing]\n"
    ));
    md.notify(&named("DiskFull", 1)).await.unwrap();

    let got = state.messages.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0],
        serde_json::json!({"msgtype": "text", "text": {
            "content": "disk full on db-1",
            "mentioned_list": ["wangqing", "@all"],
            "mentioned_mobile_list": ["13800001111"]}})
    );
    assert_eq!(got[1]["msgtype"], "markdown");
    assert_eq!(got[1]["markdown"]["content"], "<@wangqing>\n**disk** full");
}

#[tokio::test]
async fn wecom_cuts_chinese_text_at_the_byte_limit() {
    let (state, api) = wecom_server(20, Duration::from_secs(60)).await;
    // 3 bytes per character: 1000 characters are 3000 bytes, over text's 2048.
    let long = "磁盘空间不足".repeat(170);
    assert!(long.len() > 2048);
    let text = wecom_channel(&format!(
        "key: good-key\napi_url: {api}\nmsg_type: text\nmessage: {long}\n"
    ));
    text.notify(&named("DiskFull", 0))
        .await
        .expect("accepted by the stand-in");
    let md_long = "告警".repeat(1500); // 9000 bytes, over markdown's 4096
    let md = wecom_channel(&format!(
        "key: good-key\napi_url: {api}\nmessage: {md_long}\n"
    ));
    md.notify(&named("DiskFull", 1))
        .await
        .expect("accepted by the stand-in");

    let got = state.messages.lock().unwrap().clone();
    let t = got[0]["text"]["content"].as_str().unwrap();
    assert!(t.len() <= 2048, "{}", t.len());
    assert!(t.len() > 2048 - 20, "cut close to the limit: {}", t.len());
    assert!(t.ends_with(wecom::TRUNCATION_MARKER));
    assert!(long.starts_with(t.strip_suffix(wecom::TRUNCATION_MARKER).unwrap()));
    let m = got[1]["markdown"]["content"].as_str().unwrap();
    assert!(m.len() <= 4096 && m.len() > 4096 - 20, "{}", m.len());
    assert!(md_long.starts_with(m.strip_suffix(wecom::TRUNCATION_MARKER).unwrap()));
}

#[tokio::test]
async fn wecom_25_notifications_in_a_minute_all_arrive() {
    // The stand-in enforces WeCom's 20 messages per window; the window is shortened
    // to keep the test quick (the channel is told the same window).
    let window = Duration::from_secs(2);
    let (state, api) = wecom_server(20, window).await;
    let ch = Arc::new(
        wecom_channel(&format!(
            "key: good-key\napi_url: {api}\nmessage: \"alert {{{{ .GroupLabels.alertname }}}}\"\n"
        ))
        .with_rate_window(window),
    );
    let mut tasks = Vec::new();
    for i in 0..25 {
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            ch.notify(&named(&format!("A{i:02}"), i)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every notification is delivered");
    }
    let got = state.messages.lock().unwrap().clone();
    let all: String = got
        .iter()
        .map(|m| m["markdown"]["content"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for i in 0..25 {
        let marker = format!("alert A{i:02}");
        assert_eq!(
            all.matches(&marker).count(),
            1,
            "{marker} exactly once in {all}"
        );
    }
    assert!(got.len() <= 25);
    assert_eq!(state.answered_45009.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn wecom_rate_limit_queues_instead_of_exceeding() {
    let window = Duration::from_millis(700);
    let (state, api) = wecom_server(3, window).await;
    let ch = wecom_channel(&format!(
        "key: good-key\napi_url: {api}\nmsg_type: text\nmessage: hello\nrate_limit_per_minute: 3\n"
    ))
    .with_rate_window(window);
    for i in 0..8 {
        ch.notify(&named("DiskFull", i)).await.expect("delivered");
    }
    assert_eq!(state.messages.lock().unwrap().len(), 8);
    assert_eq!(
        state.answered_45009.load(Ordering::SeqCst),
        0,
        "the channel never ran into the limit"
    );
}

#[tokio::test]
async fn wecom_recovers_after_45009() {
    // The robot allows fewer messages than the channel was told: WeCom answers 45009,
    // the channel waits for the window and sends again.
    let window = Duration::from_millis(600);
    let (state, api) = wecom_server(2, window).await;
    let ch = wecom_channel(&format!(
        "key: good-key\napi_url: {api}\nmsg_type: text\nmessage: hello\n"
    ))
    .with_rate_window(window);
    for i in 0..5 {
        ch.notify(&named("DiskFull", i))
            .await
            .expect("delivered after backing off");
    }
    assert_eq!(state.messages.lock().unwrap().len(), 5);
    assert!(state.answered_45009.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn wecom_invalid_key_is_permanent_and_names_the_errcode() {
    let (state, api) = wecom_server(20, Duration::from_secs(60)).await;
    let ch = wecom_channel(&format!("key: no-such-key\napi_url: {api}\nmessage: hi\n"));
    match ch.notify(&named("DiskFull", 0)).await.unwrap_err() {
        ChannelError::Permanent(m) => {
            assert!(m.contains("93000"), "{m}");
            assert!(m.contains("invalid webhook url"), "{m}");
            assert!(
                !m.contains("no-such-key"),
                "the key stays out of messages: {m}"
            );
        }
        e => panic!("want permanent, got {e:?}"),
    }
    // HTTP 200 with errcode -1 (system busy): transient.
    *state.force_errcode.lock().unwrap() = Some(-1);
    let ok_key = wecom_channel(&format!("key: good-key\napi_url: {api}\nmessage: hi\n"));
    assert!(
        ok_key
            .notify(&named("DiskFull", 1))
            .await
            .unwrap_err()
            .is_transient()
    );
}

#[test]
fn wecom_config_is_validated() {
    let t = templates();
    let g = global();
    let bad = |yaml: &str| -> String {
        let c: WecomConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        match WecomChannel::new(&c, &g, &t) {
            Ok(_) => panic!("accepted {yaml}"),
            Err(e) => e,
        }
    };
    assert!(bad("message: x\n").contains("one of webhook_url or key"));
    assert!(bad("key: a\nwebhook_url: http://x/\n").contains("at most one"));
    assert!(
        bad("key: a\napi_url: http://x/\nmentioned_mobile_list: [\"1\"]\n")
            .contains("msg_type: text")
    );
    assert!(
        bad("key: a\napi_url: http://x/\nrate_limit_per_minute: 0\n")
            .contains("rate_limit_per_minute")
    );
}

#[tokio::test]
async fn wecom_key_uses_the_global_api_url() {
    let (state, api) = wecom_server(20, Duration::from_secs(60)).await;
    let mut g = global();
    g.wecom_api_url = api;
    let c: WecomConfig = serde_yaml_ng::from_str("key: good-key\nmessage: via global\n").unwrap();
    let ch = WecomChannel::new(&c, &g, &templates()).unwrap();
    ch.notify(&named("DiskFull", 0)).await.unwrap();
    assert_eq!(
        state.messages.lock().unwrap()[0]["markdown"]["content"],
        "via global"
    );
}

// ------------------------------------------------------------------------------
// Tencent Cloud SMS stand-in

fn sms_channel(yaml: &str) -> SmsChannel {
    let c: SmsConfig = serde_yaml_ng::from_str(yaml).expect("sms yaml");
    SmsChannel::new(&c, &global(), &templates()).expect("sms channel")
}

fn tencent_yaml(addr: SocketAddr, numbers: &[&str], secret_key: &str) -> String {
    format!(
        "phone_numbers: [{}]\n\
         tencent:\n  secret_id: AKIDstandin\n  secret_key: {secret_key}\n  sdk_app_id: \"1400006666\"\n  \
         sign_name: Argus\n  template_id: \"449739\"\n  template_params: [\"{{{{ .GroupLabels.alertname }}}}\", critical]\n  \
         endpoint: http://{addr}/\n",
        numbers
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[tokio::test]
async fn tencent_sms_is_signed_and_reports_partial_failures() {
    let (state, addr) = tencent_server(
        &[("+8613800000002", "LimitExceeded.PhoneNumberDailyLimit")],
        &[],
    )
    .await;
    let ch = sms_channel(&tencent_yaml(
        addr,
        &["+8613800000001", "+8613800000002", "+14155550123"],
        "stand-in-secret-key",
    ));
    assert!(!ch.send_resolved(), "SMS send_resolved defaults to false");
    match ch.notify(&named("DiskFull", 0)).await.unwrap_err() {
        ChannelError::Permanent(m) => {
            assert!(m.contains("+8613800000002"), "{m}");
            assert!(m.contains("LimitExceeded.PhoneNumberDailyLimit"), "{m}");
            assert!(
                !m.contains("+8613800000001:"),
                "delivered numbers are not failures: {m}"
            );
        }
        e => panic!("want permanent, got {e:?}"),
    }
    let bodies = state.bodies.lock().unwrap().clone();
    // Mainland and international numbers go in separate requests.
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0]["PhoneNumberSet"],
        serde_json::json!(["+8613800000001", "+8613800000002"])
    );
    assert_eq!(
        bodies[1]["PhoneNumberSet"],
        serde_json::json!(["+14155550123"])
    );
    assert_eq!(
        bodies[0]["TemplateParamSet"],
        serde_json::json!(["DiskFull", "critical"])
    );
    assert_eq!(bodies[0]["SignName"], "Argus");
}

#[tokio::test]
async fn tencent_sms_retries_only_the_failed_numbers() {
    let (state, addr) = tencent_server(
        &[],
        &[("+8613800000002", "LimitExceeded.DeliveryFrequencyLimit")],
    )
    .await;
    let ch = sms_channel(&tencent_yaml(
        addr,
        &["+8613800000001", "+8613800000002"],
        "stand-in-secret-key",
    ));
    let n = named("DiskFull", 0);
    let e = ch.notify(&n).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("+8613800000002"), "{e}");
    ch.notify(&n).await.expect("the retry delivers the rest");
    let bodies = state.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[1]["PhoneNumberSet"],
        serde_json::json!(["+8613800000002"])
    );
    // A new notification goes to everyone again.
    ch.notify(&named("DiskFull", 1)).await.unwrap();
    assert_eq!(
        state.bodies.lock().unwrap()[2]["PhoneNumberSet"],
        serde_json::json!(["+8613800000001", "+8613800000002"])
    );
}

#[tokio::test]
async fn tencent_sms_wrong_secret_fails_the_signature_check() {
    let (state, addr) = tencent_server(&[], &[]).await;
    let ch = sms_channel(&tencent_yaml(addr, &["+8613800000001"], "not-the-key"));
    match ch.notify(&named("DiskFull", 0)).await.unwrap_err() {
        ChannelError::Permanent(m) => assert!(m.contains("AuthFailure.SignatureFailure"), "{m}"),
        e => panic!("want permanent, got {e:?}"),
    }
    assert!(state.bodies.lock().unwrap().is_empty());
}

// ------------------------------------------------------------------------------
// Generic HTTP SMS gateway stand-in

#[derive(Clone, Debug)]
struct GatewayRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
}

#[derive(Default)]
struct GatewayState {
    got: Mutex<Vec<GatewayRequest>>,
    status: Mutex<u16>,
}

async fn gateway(
    State(s): State<Arc<GatewayState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    s.got.lock().unwrap().push(GatewayRequest {
        method,
        uri,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    StatusCode::from_u16(*s.status.lock().unwrap()).unwrap()
}

async fn gateway_server() -> (Arc<GatewayState>, SocketAddr) {
    let state = Arc::new(GatewayState::default());
    *state.status.lock().unwrap() = 200;
    let addr = serve(
        Router::new()
            .route("/send", any(gateway))
            .with_state(state.clone()),
    )
    .await;
    (state, addr)
}

#[tokio::test]
async fn http_sms_gateway_request_shape() {
    let (state, addr) = gateway_server().await;
    let ch = sms_channel(&format!(
        "phone_numbers: [\"+8613800000001\", \"+8613800000002\"]\n\
         http:\n  url: \"http://{addr}/send?to={{{{ .Phone | urlquery }}}}\"\n  method: PUT\n  per_number: true\n  \
         headers: {{X-Api-Key: k-1, X-To: \"{{{{ .Phone }}}}\"}}\n  \
         body: '{{\"to\":\"{{{{ .Phone }}}}\",\"text\":\"{{{{ .GroupLabels.alertname }}}} {{{{ .Status }}}}\"}}'\n"
    ));
    ch.notify(&named("DiskFull", 0)).await.unwrap();
    let got = state.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    for (r, phone) in got.iter().zip(["+8613800000001", "+8613800000002"]) {
        assert_eq!(r.method, Method::PUT);
        assert_eq!(r.uri.path(), "/send");
        let q: HashMap<String, String> = url_query(&r.uri);
        assert_eq!(q["to"], phone);
        assert_eq!(r.headers["x-api-key"], "k-1");
        assert_eq!(r.headers["x-to"], phone);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"to": phone, "text": "DiskFull firing"})
        );
    }

    // One request for all numbers, .Phones; success_status decides.
    let ch = sms_channel(&format!(
        "phone_numbers: [\"+8613800000001\", \"+8613800000002\"]\n\
         http:\n  url: \"http://{addr}/send\"\n  body: \"{{{{ .Phones }}}}\"\n  success_status: [202]\n"
    ));
    *state.status.lock().unwrap() = 202;
    ch.notify(&named("DiskFull", 1)).await.unwrap();
    {
        let got = state.got.lock().unwrap();
        assert_eq!(got[2].method, Method::POST);
        assert_eq!(got[2].body, "+8613800000001,+8613800000002");
    }
    *state.status.lock().unwrap() = 200;
    let e = ch.notify(&named("DiskFull", 2)).await.unwrap_err();
    assert!(!e.is_transient(), "200 is not in success_status: {e:?}");
    *state.status.lock().unwrap() = 502;
    let e = ch.notify(&named("DiskFull", 3)).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("+8613800000002"), "{e}");
}

fn url_query(uri: &Uri) -> HashMap<String, String> {
    let u = reqwest::Url::parse(&format!("http://x{uri}")).unwrap();
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[test]
fn sms_config_is_validated() {
    let t = templates();
    let g = global();
    let bad = |yaml: &str| -> String {
        let c: SmsConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        match SmsChannel::new(&c, &g, &t) {
            Ok(_) => panic!("accepted {yaml}"),
            Err(e) => e,
        }
    };
    let http = "http: {url: \"http://gw/send\"}\n";
    assert!(bad(&format!("phone_numbers: [\"13800000000\"]\n{http}")).contains("E.164"));
    assert!(bad(&format!("phone_numbers: []\n{http}")).contains("at least one"));
    assert!(
        bad("phone_numbers: [\"+8613800000000\"]\n").contains("exactly one of tencent or http")
    );
    assert!(
        bad(&format!(
            "phone_numbers: [\"+8613800000000\"]\n{http}tencent: {{secret_id: a, secret_key: b, sdk_app_id: c, template_id: d}}\n"
        ))
        .contains("not both")
    );
    assert!(
        bad("phone_numbers: [\"+8613800000000\"]\ntencent: {secret_id: a, sdk_app_id: c, template_id: d}\n")
            .contains("secret_key")
    );
    assert!(
        bad("phone_numbers: [\"+8613800000000\"]\nhttp: {url: \"http://gw/\", method: \"GE T\"}\n")
            .contains("method")
    );
    let ok: SmsConfig = serde_yaml_ng::from_str(
        "phone_numbers: [\"+8613800000000\"]\ntencent: {secret_id: a, secret_key: b, sdk_app_id: c, template_id: d}\n",
    )
    .unwrap();
    let tc = ok.tencent.as_ref().unwrap();
    assert_eq!(tc.region, "ap-guangzhou");
    assert_eq!(tc.endpoint, "https://sms.tencentcloudapi.com");
    assert!(SmsChannel::new(&ok, &g, &t).is_ok());
}

#[tokio::test]
async fn wecom_default_templates_render_for_both_types() {
    let (state, api) = wecom_server(20, Duration::from_secs(60)).await;
    for (i, t) in ["text", "markdown"].iter().enumerate() {
        let ch = wecom_channel(&format!("key: good-key\napi_url: {api}\nmsg_type: {t}\n"));
        ch.notify(&named("DiskFull", i as i64))
            .await
            .expect("delivered");
    }
    let got = state.messages.lock().unwrap().clone();
    assert!(
        got[0]["text"]["content"]
            .as_str()
            .unwrap()
            .contains("DiskFull"),
        "{}",
        got[0]
    );
    assert!(
        got[1]["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("DiskFull"),
        "{}",
        got[1]
    );
}

// ------------------------------------------------------------------------------
// TLS: a rustls server with a certificate for `argus.test` from a test CA
// (tests/fixtures/channels/{ca,server}.pem, server.key; test-only keys).

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/channels/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn tls_server(hits: Arc<AtomicUsize>) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (cfg, hits) = (cfg.clone(), hits.clone());
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
                hits.fetch_add(1, Ordering::SeqCst);
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

#[tokio::test]
async fn webhook_tls_ca_file_server_name_and_insecure_skip_verify() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = tls_server(hits.clone());
    let url = format!("https://127.0.0.1:{}/hook", addr.port());
    let n = named("DiskFull", 0);

    // The certificate names argus.test: verified against server_name with the test CA.
    let ch = webhook_channel(&format!(
        "url: {url}\nhttp_config:\n  tls_config: {{ca_file: {}, server_name: argus.test}}\n",
        fixture("ca.pem")
    ));
    ch.notify(&n).await.expect("verified against server_name");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Without server_name the name (127.0.0.1) does not match: the handshake fails.
    let ch = webhook_channel(&format!(
        "url: {url}\nhttp_config:\n  tls_config: {{ca_file: {}}}\n",
        fixture("ca.pem")
    ));
    assert!(ch.notify(&n).await.is_err());
    // A CA that did not sign the certificate: fails too.
    let ch = webhook_channel(&format!(
        "url: {url}\nhttp_config:\n  tls_config: {{ca_file: {}, server_name: argus.test}}\n",
        fixture("server.pem")
    ));
    assert!(ch.notify(&n).await.is_err());
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // insecure_skip_verify accepts it.
    let ch = webhook_channel(&format!(
        "url: {url}\nhttp_config:\n  tls_config: {{insecure_skip_verify: true}}\n"
    ));
    ch.notify(&n).await.expect("accepted without verification");
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // A missing ca_file is a configuration error naming the file.
    let c: WebhookConfig = serde_yaml_ng::from_str(&format!(
        "url: {url}\nhttp_config: {{tls_config: {{ca_file: /no/such/ca.pem}}}}\n"
    ))
    .unwrap();
    let e = WebhookChannel::new(&c, &global(), &templates())
        .err()
        .unwrap();
    assert!(e.contains("/no/such/ca.pem"), "{e}");
}
