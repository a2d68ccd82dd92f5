//! The email channel against a real SMTP server: Debian's python3-aiosmtpd run by
//! deploy/start-smtp.sh (plain; STARTTLS + AUTH CRAM-MD5/LOGIN/PLAIN; implicit TLS +
//! AUTH PLAIN), which stores each message it accepts in a directory. deploy/test.sh
//! starts it and exports ARGUS_TEST_SMTP, ARGUS_TEST_SMTP_STARTTLS, ARGUS_TEST_SMTP_TLS,
//! ARGUS_TEST_SMTP_DIR and ARGUS_TEST_SMTP_CA; without them the tests start the script
//! themselves (the server exits with the test process).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use argus_notifier::channels::Channel;
use argus_notifier::channels::email::{EmailChannel, EmailConfig};
use argus_notifier::config::GlobalConfig;
use argus_notifier::notification::{Notification, NotifyAlert};
use argus_notifier::template::Templates;
use argus_schemas::{Labels, Timestamp};
use base64::Engine as _;

/// The credentials deploy/start-smtp.sh gives its server.
const USER: &str = "argus";
const PASSWORD: &str = "argus-password";

struct Smtp {
    plain: String,
    starttls: String,
    tls: String,
    dir: PathBuf,
    ca: PathBuf,
}

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("ARGUS_TEST_SMTP is set but {var} is not"))
}

/// Three consecutive free ports.
fn free_ports() -> u16 {
    for _ in 0..50 {
        let base = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 65_000 {
            continue;
        }
        let ok = (1..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}

fn start_own() -> Option<Smtp> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smtp-services");
    let port = free_ports();
    let out = Command::new(repo.join("deploy/start-smtp.sh"))
        .arg(port.to_string())
        .env("ARGUS_SERVICES_DIR", &state)
        .env("ARGUS_SMTP_EXIT_WITH", std::process::id().to_string())
        .output()
        .expect("run deploy/start-smtp.sh");
    if !out.status.success() {
        let msg = format!(
            "deploy/start-smtp.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::env::var_os("ARGUS_REQUIRE_SERVICES").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
        return None;
    }
    let dir = state.join(format!("smtp-{port}"));
    Some(Smtp {
        plain: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        starttls: format!("127.0.0.1:{}", port + 1),
        tls: format!("127.0.0.1:{}", port + 2),
        ca: dir.join("ca.pem"),
        dir: dir.join("mail"),
    })
}

/// The server: from deploy/test.sh's variables, or started here.
fn smtp() -> Option<&'static Smtp> {
    static S: OnceLock<Option<Smtp>> = OnceLock::new();
    S.get_or_init(|| match std::env::var("ARGUS_TEST_SMTP") {
        Ok(plain) if !plain.is_empty() => Some(Smtp {
            plain,
            starttls: env("ARGUS_TEST_SMTP_STARTTLS"),
            tls: env("ARGUS_TEST_SMTP_TLS"),
            dir: env("ARGUS_TEST_SMTP_DIR").into(),
            ca: env("ARGUS_TEST_SMTP_CA").into(),
        }),
        _ => start_own(),
    })
    .as_ref()
}

/// A recipient address no other test uses.
fn unique(local: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{local}-{}-{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn notification(alertname: &str, summary: &str) -> Notification {
    let t0 = 1_714_557_600 * 1_000_000_000;
    let alert = |instance: &str, resolved: bool| NotifyAlert {
        labels: labels(&[
            ("alertname", alertname),
            ("instance", instance),
            ("severity", "严重"),
        ]),
        annotations: labels(&[("summary", summary), ("description", "<b>请</b> 清理")]),
        starts_at: Timestamp(t0),
        ends_at: resolved.then_some(Timestamp(t0 + 600_000_000_000)),
        generator_url: "http://prom:9090/graph?g0.expr=up&g0.tab=1".into(),
        fingerprint: 7,
        resolved,
    };
    Notification {
        receiver: "ops".into(),
        group_key: "{}:{}".into(),
        group_labels: labels(&[("alertname", alertname)]),
        alerts: vec![alert("web-1", false), alert("web-2", true)],
        external_url: "http://argus.example:9093".into(),
        now: Timestamp(t0 + 1_200_000_000_000),
    }
}

fn config(yaml: &str) -> EmailConfig {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn channel(c: &EmailConfig, g: &GlobalConfig) -> EmailChannel {
    EmailChannel::new(c, g, &Templates::default()).unwrap()
}

/// A received message: its metadata (port, envelope, auth, tls) and text.
struct Received {
    meta: serde_json::Value,
    raw: String,
}

fn received(s: &Smtp, rcpt: &str) -> Received {
    for _ in 0..100 {
        for e in std::fs::read_dir(&s.dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            if meta["rcpt_tos"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == rcpt)
            {
                let raw = std::fs::read(s.dir.join(meta["eml"].as_str().unwrap())).unwrap();
                return Received {
                    meta,
                    raw: String::from_utf8(raw).unwrap(),
                };
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no message for {rcpt} in {}", s.dir.display());
}

/// The unfolded headers and the body of a message (or part).
fn split(raw: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.to_string(), v.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {h:?}"))
}

fn qp_decode(s: &str, underscore_space: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'=' if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if b.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'_' if underscore_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// RFC 2047: decodes `=?utf-8?b?…?=` / `=?utf-8?q?…?=` words (white space between
/// adjacent words dropped).
fn decode_2047(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let gap = &rest[..start];
        if !(after_word && gap.trim().is_empty()) {
            out.push_str(gap);
        }
        let word = &rest[start + 2..];
        let mut parts = word.splitn(3, '?');
        let (charset, enc, tail) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert!(charset.eq_ignore_ascii_case("utf-8"), "charset {charset}");
        let end = tail.find("?=").unwrap();
        let text = &tail[..end];
        let bytes = if enc.eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap()
        } else {
            qp_decode(text, true)
        };
        out.push_str(&String::from_utf8(bytes).unwrap());
        rest = &tail[end + 2..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

/// The parts of a multipart body: (content type, decoded text).
fn parts(content_type: &str, body: &str) -> Vec<(String, String)> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap()
        .trim_matches('"');
    body.split(&format!("--{boundary}"))
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .map(|p| {
            let (h, b) = split(p.trim_start_matches(['\r', '\n']));
            let cte = h
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Content-Transfer-Encoding"))
                .map(|(_, v)| v.to_ascii_lowercase())
                .unwrap_or_default();
            let text = match cte.as_str() {
                "quoted-printable" => String::from_utf8(qp_decode(&b, false)).unwrap(),
                "base64" => String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b.split_whitespace().collect::<String>())
                        .unwrap(),
                )
                .unwrap(),
                _ => b,
            };
            (header(&h, "Content-Type").to_string(), text)
        })
        .collect()
}

#[tokio::test]
async fn plain_relay_gets_a_multipart_message_with_a_chinese_subject() {
    let Some(s) = smtp() else { return };
    let ops = unique("ops");
    let dev = unique("dev");
    let c = config(&format!(
        r#"
to: "运维 <{ops}>, {dev}"
from: "Argus 告警 <argus@example.com>"
smarthost: {}
require_tls: false
send_resolved: true
headers:
  x-argus-group: "{{{{ .GroupLabels.alertname }}}}"
"#,
        s.plain
    ));
    let ch = channel(&c, &GlobalConfig::default());
    assert!(ch.send_resolved());
    let n = notification("磁盘空间不足", "根分区使用率 95%");
    ch.notify(&n).await.unwrap();

    let m = received(s, &ops);
    assert_eq!(m.meta["mail_from"], "argus@example.com");
    assert_eq!(m.meta["rcpt_tos"], serde_json::json!([ops, dev]));
    assert_eq!(m.meta["tls"], false);
    let (h, body) = split(&m.raw);
    // every header line is ASCII: non-ASCII text is RFC 2047-encoded
    let head_end = m.raw.find("\r\n\r\n").unwrap();
    assert!(m.raw[..head_end].is_ascii(), "{}", &m.raw[..head_end]);
    let subject = header(&h, "Subject");
    assert!(subject.contains("=?utf-8?"), "{subject}");
    // one of the two alerts fires; severity is common but not a group label
    assert_eq!(decode_2047(subject), "[FIRING:1] 磁盘空间不足 (严重)");
    assert_eq!(
        decode_2047(header(&h, "From")),
        "Argus 告警 <argus@example.com>"
    );
    let to = decode_2047(header(&h, "To"));
    assert!(
        to.contains(&format!("运维 <{ops}>")) && to.contains(&dev),
        "{to}"
    );
    assert_eq!(decode_2047(header(&h, "X-Argus-Group")), "磁盘空间不足");
    assert!(header(&h, "Message-ID").contains('@'));
    header(&h, "Date");

    let ct = header(&h, "Content-Type");
    assert!(ct.starts_with("multipart/alternative"), "{ct}");
    let p = parts(ct, &body);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].0.starts_with("text/plain"), "{}", p[0].0);
    assert!(p[1].0.starts_with("text/html"), "{}", p[1].0);
    assert!(p[0].1.contains("Firing (1):") && p[0].1.contains("Resolved (1):"));
    assert!(p[0].1.contains("根分区使用率 95%"), "{}", p[0].1);
    assert!(p[0].1.contains("<b>请</b> 清理"), "text is not escaped");
    assert!(
        p[1].1.contains("&lt;b&gt;请&lt;/b&gt; 清理"),
        "html is escaped"
    );
    assert!(
        p[1].1
            .contains("<title>[FIRING:1] 磁盘空间不足 (严重)</title>")
    );
}

#[tokio::test]
async fn globals_fill_the_entry_and_starttls_auth_uses_the_servers_mechanism() {
    let Some(s) = smtp() else { return };
    let g = GlobalConfig {
        smtp_smarthost: s.starttls.clone(),
        smtp_from: "alerts@example.com".into(),
        smtp_auth_username: USER.into(),
        smtp_auth_password: PASSWORD.into(),
        ..GlobalConfig::default()
    };
    assert!(g.smtp_require_tls, "STARTTLS is required by default");
    // the server lists CRAM-MD5 LOGIN PLAIN: without a secret, LOGIN is the first usable
    let rcpt = unique("login");
    let c = config(&format!(
        "to: {rcpt}\ntls_config:\n  ca_file: {}\n",
        s.ca.display()
    ));
    channel(&c, &g)
        .notify(&notification("Disk", "full"))
        .await
        .unwrap();
    let m = received(s, &rcpt);
    assert_eq!(m.meta["mail_from"], "alerts@example.com");
    assert_eq!(m.meta["tls"], true);
    assert_eq!(m.meta["auth_user"], USER);
    assert_eq!(m.meta["auth_mechanism"], "LOGIN");

    // with a secret, CRAM-MD5 (listed first) is used
    let rcpt = unique("cram");
    let c = config(&format!(
        "to: {rcpt}\nauth_secret: {PASSWORD}\ntls_config:\n  ca_file: {}\n",
        s.ca.display()
    ));
    channel(&c, &g)
        .notify(&notification("Disk", "full"))
        .await
        .unwrap();
    assert_eq!(received(s, &rcpt).meta["auth_mechanism"], "CRAM-MD5");

    // a password file, and the server name checked against the certificate
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let rcpt = unique("file");
    let c = config(&format!(
        "to: {rcpt}\nauth_password_file: {}\ntls_config:\n  ca_file: {}\n  server_name: localhost\n",
        pw.display(),
        s.ca.display()
    ));
    channel(&c, &g)
        .notify(&notification("Disk", "full"))
        .await
        .unwrap();
    assert_eq!(received(s, &rcpt).meta["auth_user"], USER);
}

#[tokio::test]
async fn implicit_tls_with_auth_plain() {
    let Some(s) = smtp() else { return };
    let rcpt = unique("smtps");
    let c = config(&format!(
        "to: {rcpt}\nfrom: argus@example.com\nsmarthost: {}\nimplicit_tls: true\n\
         auth_username: {USER}\nauth_password: {PASSWORD}\nauth_identity: {USER}\n\
         tls_config:\n  ca_file: {}\n",
        s.tls,
        s.ca.display()
    ));
    channel(&c, &GlobalConfig::default())
        .notify(&notification("Disk", "full"))
        .await
        .unwrap();
    let m = received(s, &rcpt);
    assert_eq!(m.meta["tls"], true);
    assert_eq!(m.meta["auth_mechanism"], "PLAIN");
    assert_eq!(m.meta["auth_user"], USER);
}

#[tokio::test]
async fn wrong_credentials_fail_permanently() {
    let Some(s) = smtp() else { return };
    for (smarthost, implicit) in [(&s.starttls, false), (&s.tls, true)] {
        let c = config(&format!(
            "to: {}\nfrom: argus@example.com\nsmarthost: {smarthost}\nimplicit_tls: {implicit}\n\
             auth_username: {USER}\nauth_password: wrong\ntls_config:\n  ca_file: {}\n",
            unique("wrong"),
            s.ca.display()
        ));
        let e = channel(&c, &GlobalConfig::default())
            .notify(&notification("Disk", "full"))
            .await
            .unwrap_err();
        assert!(!e.is_transient(), "{e:?}");
        assert!(e.to_string().contains("535"), "{e}");
    }
    // no credentials for a server that requires them: MAIL is refused (530)
    let c = config(&format!(
        "to: {}\nfrom: argus@example.com\nsmarthost: {}\ntls_config:\n  ca_file: {}\n",
        unique("anon"),
        s.starttls,
        s.ca.display()
    ));
    let e = channel(&c, &GlobalConfig::default())
        .notify(&notification("Disk", "full"))
        .await
        .unwrap_err();
    assert!(!e.is_transient() && e.to_string().contains("530"), "{e:?}");
}

#[tokio::test]
async fn require_tls_against_a_server_without_starttls_fails_clearly() {
    let Some(s) = smtp() else { return };
    let c = config(&format!(
        "to: {}\nfrom: argus@example.com\nsmarthost: {}\nrequire_tls: true\n",
        unique("notls"),
        s.plain
    ));
    let e = channel(&c, &GlobalConfig::default())
        .notify(&notification("Disk", "full"))
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("require_tls") && msg.contains("STARTTLS") && msg.contains(&s.plain),
        "{msg}"
    );
}

#[tokio::test]
async fn the_server_certificate_is_verified() {
    let Some(s) = smtp() else { return };
    // the test CA is not among the system's
    let c = config(&format!(
        "to: {}\nfrom: argus@example.com\nsmarthost: {}\nauth_username: {USER}\nauth_password: {PASSWORD}\n",
        unique("noca"),
        s.starttls
    ));
    let e = channel(&c, &GlobalConfig::default())
        .notify(&notification("Disk", "full"))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("STARTTLS") && msg.to_lowercase().contains("certificate"),
        "{msg}"
    );
    // insecure_skip_verify accepts it
    let rcpt = unique("insecure");
    let c = config(&format!(
        "to: {rcpt}\nfrom: argus@example.com\nsmarthost: {}\nauth_username: {USER}\nauth_password: {PASSWORD}\ntls_config:\n  insecure_skip_verify: true\n",
        s.starttls
    ));
    channel(&c, &GlobalConfig::default())
        .notify(&notification("Disk", "full"))
        .await
        .unwrap();
    assert_eq!(received(s, &rcpt).meta["tls"], true);
}

#[tokio::test]
async fn smtp_reply_codes_decide_retries() {
    let Some(s) = smtp() else { return };
    let send = |to: String| {
        let c = config(&format!(
            "to: {to}\nfrom: argus@example.com\nsmarthost: {}\nrequire_tls: false\n",
            s.plain
        ));
        async move {
            channel(&c, &GlobalConfig::default())
                .notify(&notification("Disk", "full"))
                .await
        }
    };
    let e = send("tempfail@example.com".into()).await.unwrap_err();
    assert!(e.is_transient() && e.to_string().contains("451"), "{e:?}");
    let e = send("nouser@example.com".into()).await.unwrap_err();
    assert!(!e.is_transient() && e.to_string().contains("550"), "{e:?}");

    // nothing listens: transient
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = config(&format!(
        "to: a@example.com\nfrom: argus@example.com\nsmarthost: 127.0.0.1:{port}\nrequire_tls: false\n"
    ));
    let e = channel(&c, &GlobalConfig::default())
        .notify(&notification("Disk", "full"))
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn bad_rendered_addresses_and_templates_are_permanent() {
    let g = GlobalConfig {
        smtp_smarthost: "127.0.0.1:1".into(),
        smtp_require_tls: false,
        ..GlobalConfig::default()
    };
    let n = notification("Disk", "full");
    let c = config("to: a@example.com\nfrom: 'a@example.com, b@example.com'\n");
    let e = channel(&c, &g).notify(&n).await.unwrap_err();
    assert!(
        !e.is_transient() && e.to_string().contains("exactly one 'from' address"),
        "{e}"
    );
    let c = config("to: '{{ .CommonLabels.nope }}'\nfrom: a@example.com\n");
    let e = channel(&c, &g).notify(&n).await.unwrap_err();
    assert!(!e.is_transient() && e.to_string().contains("'to'"), "{e}");
    let c = config("to: a@example.com\nfrom: a@example.com\nhtml: '{{ .Nope }}'\n");
    let e = channel(&c, &g).notify(&n).await.unwrap_err();
    assert!(
        !e.is_transient() && e.to_string().contains("email html") && e.to_string().contains("Nope"),
        "{e}"
    );
}

#[test]
fn configuration_is_checked_when_the_channel_is_built() {
    let t = Templates::default();
    let g = GlobalConfig::default();
    let err = |yaml: &str, g: &GlobalConfig| match EmailChannel::new(&config(yaml), g, &t) {
        Ok(_) => panic!("accepted {yaml}"),
        Err(e) => e,
    };
    assert_eq!(
        err("from: a@example.com\nsmarthost: h:25\n", &g),
        "missing to address in email config"
    );
    assert_eq!(
        err("to: a@example.com\nfrom: a@example.com\n", &g),
        "no global SMTP smarthost set"
    );
    assert_eq!(
        err("to: a@example.com\nsmarthost: h:25\n", &g),
        "no global SMTP from set"
    );
    assert!(err("to: a@x\nfrom: a@x\nsmarthost: h\n", &g).contains("missing port"));
    assert_eq!(
        err(
            "to: a@x\nfrom: a@x\nsmarthost: h:25\nheaders:\n  subject: a\n  Subject: b\n",
            &g
        ),
        "duplicate header \"Subject\" in email config"
    );
    assert!(
        err(
            "to: a@x\nfrom: a@x\nsmarthost: h:25\nauth_password: p\nauth_password_file: /f\n",
            &g
        )
        .contains("at most one of auth_password & auth_password_file")
    );
    let msg = err(
        "to: a@x\nfrom: a@x\nsmarthost: h:25\nheaders:\n  Subject: '{{ nope }}'\n",
        &g,
    );
    assert!(
        msg.contains("Subject") && msg.contains("function \"nope\" not defined"),
        "{msg}"
    );
    assert!(
        err(
            "to: a@x\nfrom: a@x\nsmarthost: h:25\ntls_config:\n  ca_file: /nonexistent/ca.pem\n",
            &g
        )
        .contains("/nonexistent/ca.pem")
    );
    // unknown fields are rejected, as Alertmanager does
    assert!(serde_yaml_ng::from_str::<EmailConfig>("to: a@x\nsmtp_host: x\n").is_err());
    // email's send_resolved defaults to false
    let ch = EmailChannel::new(&config("to: a@x\nfrom: a@x\nsmarthost: h:25\n"), &g, &t).unwrap();
    assert!(!ch.send_resolved());
    assert_eq!(ch.kind(), "email");
}
