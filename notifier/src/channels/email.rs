//! The email channel: Alertmanager's `email_configs` over SMTP.
//!
//! This module owns [`EmailConfig`] (Alertmanager 0.25's fields, the `smtp_*` globals
//! filling what an entry leaves unset) and [`EmailChannel`], which renders one
//! message per notification — the templated `headers` (`Subject`, `To`, `From` by
//! default), a `text/plain` and a `text/html` part as `multipart/alternative` — and
//! delivers it as Alertmanager does: implicit TLS on port 465, else a plain
//! connection upgraded with STARTTLS when `require_tls` (a server without STARTTLS is
//! an error then), `EHLO` with `hello`, then AUTH with the first mechanism the server
//! lists that the configuration can serve (CRAM-MD5 with `auth_secret`; PLAIN with
//! `auth_identity`, LOGIN with the password), none when no `auth_username` is set or
//! the server offers no AUTH. The envelope is the templated `from` and `to`.
//!
//! Failures: network errors, TLS errors and 4xx replies are transient; 5xx replies
//! (550 mailbox unavailable, 535 authentication failed), a server without STARTTLS
//! under `require_tls`, and messages that cannot be built are permanent.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{self, HeaderName, HeaderValue};
use lettre::message::{Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::{ClientId, Extension};
use serde::{Deserialize, Serialize};

use super::http::{Secret, TlsConfig};
use super::{Channel, ChannelError};
use crate::config::GlobalConfig;
use crate::notification::Notification;
use crate::template::{CompiledTemplate, TemplateData, Templates};

/// `html` when not given (Alertmanager's default).
pub const DEFAULT_EMAIL_HTML: &str = r#"{{ template "email.default.html" . }}"#;
/// `text` when not given. Alertmanager's is empty; Argus sends a plain-text part too.
pub const DEFAULT_EMAIL_TEXT: &str = r#"{{ template "email.default.text" . }}"#;
/// The `Subject` header when `headers` has none (Alertmanager's default).
pub const DEFAULT_EMAIL_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;
/// `send_resolved` when not given (Alertmanager's default for email).
pub const DEFAULT_EMAIL_SEND_RESOLVED: bool = false;
/// The smarthost port that means implicit TLS (SMTPS), as in Alertmanager.
pub const SMTPS_PORT: u16 = 465;
/// How long connecting (TCP and TLS) may take.
pub const SMTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one whole delivery (connect to QUIT) may take.
pub const SMTP_SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// One entry of `email_configs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Whether resolved notifications are sent (default false).
    #[serde(default)]
    pub send_resolved: bool,
    /// The recipients (templated; a comma-separated address list). Required.
    #[serde(default)]
    pub to: String,
    /// The sender (templated; exactly one address); `global.smtp_from` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The name sent with EHLO; `global.smtp_hello` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello: Option<String>,
    /// `host:port`; `global.smtp_smarthost` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smarthost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<Secret>,
    /// A file holding the password (read at each delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
    /// The CRAM-MD5 secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<Secret>,
    /// The PLAIN authorization identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_identity: Option<String>,
    /// Templated message headers; `Subject`, `To` and `From` have defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The HTML body (run with html/template's escaping); "" sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The plain-text body; "" sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// STARTTLS required (the connection fails if the server does not offer it);
    /// `global.smtp_require_tls` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "tls_config_is_default")]
    pub tls_config: TlsConfig,
    /// Argus: implicit TLS (SMTPS) on a port other than 465 (default: port 465).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implicit_tls: Option<bool>,
}

fn tls_config_is_default(t: &TlsConfig) -> bool {
    *t == TlsConfig::default()
}

/// The credentials of one channel.
struct Auth {
    username: String,
    password: Secret,
    password_file: String,
    secret: Secret,
    identity: String,
}

pub struct EmailChannel {
    send_resolved: bool,
    host: String,
    port: u16,
    implicit_tls: bool,
    require_tls: bool,
    hello: String,
    /// For implicit TLS and STARTTLS.
    tls: TlsParameters,
    auth: Auth,
    to: CompiledTemplate,
    from: CompiledTemplate,
    /// Canonical header name and its template, `Subject`/`To`/`From` included.
    headers: Vec<(String, CompiledTemplate)>,
    html: CompiledTemplate,
    text: CompiledTemplate,
}

/// A rendered message and its envelope.
struct Rendered {
    envelope: Envelope,
    bytes: Vec<u8>,
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `x-priority` → `X-Priority`.
fn canonical_header(k: &str) -> String {
    let valid = k
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !valid || k.is_empty() {
        return k.to_string();
    }
    let mut out = String::with_capacity(k.len());
    let mut upper = true;
    for c in k.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// `host:port` (`[v6]:port`) → (host, port).
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("address {s}: missing port in address"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(format!("address {s}: missing host"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("address {s}: invalid port {port:?}"))?;
    Ok((host.to_string(), port))
}

fn tls_parameters(t: &TlsConfig, host: &str) -> Result<TlsParameters, String> {
    if t.cert_file.is_some() || t.key_file.is_some() {
        return Err(
            "tls_config: client certificates (cert_file, key_file) are not supported for email"
                .into(),
        );
    }
    let domain = t
        .server_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| host.to_string());
    let mut b = TlsParameters::builder(domain);
    if let Some(ca) = t.ca_file.as_deref().filter(|s| !s.is_empty()) {
        let pem = std::fs::read(ca).map_err(|e| format!("tls_config: ca_file {ca}: {e}"))?;
        let cert =
            Certificate::from_pem(&pem).map_err(|e| format!("tls_config: ca_file {ca}: {e}"))?;
        // As Go's RootCAs: the file's CAs replace the system's.
        b = b
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cert);
    }
    if t.insecure_skip_verify {
        b = b
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true);
    }
    b.build_rustls().map_err(|e| format!("tls_config: {e}"))
}

fn or_global(own: &Option<String>, global: &str) -> String {
    match own.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => global.to_string(),
    }
}

fn secret_or(own: &Option<Secret>, global: &str) -> Secret {
    match own {
        Some(s) if !s.is_empty() => s.clone(),
        _ => Secret::new(global),
    }
}

impl EmailChannel {
    pub fn new(c: &EmailConfig, g: &GlobalConfig, t: &Templates) -> Result<Self, String> {
        if c.to.is_empty() {
            return Err("missing to address in email config".into());
        }
        let smarthost = or_global(&c.smarthost, &g.smtp_smarthost);
        if smarthost.is_empty() {
            return Err("no global SMTP smarthost set".into());
        }
        let (host, port) = split_host_port(&smarthost).map_err(|e| format!("smarthost: {e}"))?;
        let from = or_global(&c.from, &g.smtp_from);
        if from.is_empty() {
            return Err("no global SMTP from set".into());
        }
        let own_password = c.auth_password.as_ref().is_some_and(|p| !p.is_empty())
            || c.auth_password_file.as_ref().is_some_and(|p| !p.is_empty());
        let (password, password_file) = if own_password {
            (
                c.auth_password.clone().unwrap_or_default(),
                c.auth_password_file.clone().unwrap_or_default(),
            )
        } else {
            (
                Secret::new(g.smtp_auth_password.clone()),
                g.smtp_auth_password_file.clone(),
            )
        };
        if !password.is_empty() && !password_file.is_empty() {
            return Err(
                "at most one of auth_password & auth_password_file must be configured".into(),
            );
        }
        let auth = Auth {
            username: or_global(&c.auth_username, &g.smtp_auth_username),
            password,
            password_file,
            secret: secret_or(&c.auth_secret, &g.smtp_auth_secret),
            identity: or_global(&c.auth_identity, &g.smtp_auth_identity),
        };
        let hello = or_global(&c.hello, &g.smtp_hello);
        let hello = if hello.is_empty() {
            crate::config::DEFAULT_SMTP_HELLO.to_string()
        } else {
            hello
        };

        let compile = |what: &str, text: &str| {
            t.compile(&format!("email {what}"), text)
                .map_err(|e| e.to_string())
        };
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &c.headers {
            let name = canonical_header(k);
            if headers.insert(name.clone(), v.clone()).is_some() {
                return Err(format!("duplicate header {name:?} in email config"));
            }
        }
        headers
            .entry("Subject".into())
            .or_insert_with(|| DEFAULT_EMAIL_SUBJECT.into());
        headers.entry("To".into()).or_insert_with(|| c.to.clone());
        headers.entry("From".into()).or_insert_with(|| from.clone());
        let mut compiled = Vec::with_capacity(headers.len());
        for (name, v) in &headers {
            HeaderName::new_from_ascii(name.clone())
                .map_err(|_| format!("headers: invalid header name {name:?}"))?;
            compiled.push((name.clone(), compile(&format!("header {name:?}"), v)?));
        }
        let html = t
            .compile_html(
                "email html",
                c.html.as_deref().unwrap_or(DEFAULT_EMAIL_HTML),
            )
            .map_err(|e| e.to_string())?;
        let text = compile("text", c.text.as_deref().unwrap_or(DEFAULT_EMAIL_TEXT))?;
        Ok(EmailChannel {
            send_resolved: c.send_resolved,
            implicit_tls: c.implicit_tls.unwrap_or(port == SMTPS_PORT),
            require_tls: c.require_tls.unwrap_or(g.smtp_require_tls),
            tls: tls_parameters(&c.tls_config, &host)?,
            host,
            port,
            hello,
            auth,
            to: compile("to", &c.to)?,
            from: compile("from", &from)?,
            headers: compiled,
            html,
            text,
        })
    }

    /// The message and envelope for one notification.
    fn render(&self, n: &Notification) -> Result<Rendered, ChannelError> {
        let data = TemplateData::new(n);
        let render = |t: &CompiledTemplate| {
            t.render(&data)
                .map_err(|e| ChannelError::permanent(e.to_string()))
        };
        let mailboxes = |what: &str, s: &str| -> Result<Mailboxes, ChannelError> {
            s.trim()
                .parse::<Mailboxes>()
                .map_err(|e| ChannelError::permanent(format!("parse {what} {s:?}: {e}")))
        };
        let from = mailboxes("'from' address", &render(&self.from)?)?;
        let from: Vec<_> = from.into_iter().collect();
        let [from] = from.as_slice() else {
            return Err(ChannelError::permanent(format!(
                "must be exactly one 'from' address (got: {})",
                from.len()
            )));
        };
        let to_text = render(&self.to)?;
        let to: Vec<_> = mailboxes("'to' addresses", &to_text)?
            .into_iter()
            .map(|m| m.email)
            .collect();
        if to.is_empty() {
            return Err(ChannelError::permanent(format!(
                "parse 'to' addresses: no address in {to_text:?}"
            )));
        }
        let envelope = Envelope::new(Some(from.email.clone()), to)
            .map_err(|e| ChannelError::permanent(format!("envelope: {e}")))?;

        let mut b = Message::builder().envelope(envelope.clone());
        let mut has_message_id = false;
        for (name, t) in &self.headers {
            // a header is one line: line breaks from the data become spaces
            let value = render(t)?.replace(['\r', '\n'], " ");
            let what = format!("{name} header");
            b = match name.as_str() {
                "Subject" => b.subject(value),
                "To" => b.header(header::To::from(mailboxes(&what, &value)?)),
                "From" => b.header(header::From::from(mailboxes(&what, &value)?)),
                "Cc" => b.header(header::Cc::from(mailboxes(&what, &value)?)),
                "Reply-To" => b.header(header::ReplyTo::from(mailboxes(&what, &value)?)),
                _ => {
                    has_message_id |= name == "Message-Id";
                    let hn = HeaderName::new_from_ascii(name.clone()).map_err(|_| {
                        ChannelError::permanent(format!("invalid header name {name:?}"))
                    })?;
                    b.raw_header(HeaderValue::new(hn, value))
                }
            };
        }
        if !has_message_id {
            b = b.message_id(None);
        }
        let text = render(&self.text)?;
        let html = render(&self.html)?;
        let msg = match (text.is_empty(), html.is_empty()) {
            (false, false) => b.multipart(MultiPart::alternative_plain_html(text, html)),
            (true, false) => b.singlepart(SinglePart::html(html)),
            (false, true) => b.singlepart(SinglePart::plain(text)),
            (true, true) => b.singlepart(SinglePart::plain(String::new())),
        }
        .map_err(|e| ChannelError::permanent(format!("build message: {e}")))?;
        Ok(Rendered {
            envelope,
            bytes: msg.formatted(),
        })
    }

    async fn deliver(&self, m: &Rendered) -> Result<(), ChannelError> {
        let client_id = ClientId::Domain(self.hello.clone());
        let at = format!("{}:{}", self.host, self.port);
        let tls = self.implicit_tls.then(|| self.tls.clone());
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(SMTP_CONNECT_TIMEOUT),
            &client_id,
            tls,
            None,
        )
        .await
        .map_err(|e| classify(&format!("establish connection to {at}"), &e))?;
        let r = self.session(&mut conn, &client_id, &at, m).await;
        if r.is_ok() {
            let _ = conn.quit().await;
        }
        // after a failure the connection is dropped (closed) as it is: lettre leaves
        // no stream behind a failed TLS upgrade, so no QUIT is attempted
        r
    }

    async fn session(
        &self,
        conn: &mut AsyncSmtpConnection,
        client_id: &ClientId,
        at: &str,
        m: &Rendered,
    ) -> Result<(), ChannelError> {
        if self.require_tls && !conn.is_encrypted() {
            if !conn.server_info().supports_feature(Extension::StartTls) {
                return Err(ChannelError::permanent(format!(
                    "'require_tls' is true (default) but {at:?} does not advertise the STARTTLS extension"
                )));
            }
            conn.starttls(self.tls.clone(), client_id)
                .await
                .map_err(|e| classify("send STARTTLS command", &e))?;
        }
        if !self.auth.username.is_empty() {
            self.authenticate(conn, client_id).await?;
        }
        conn.send(&m.envelope, &m.bytes)
            .await
            .map_err(|e| classify("send message", &e))?;
        Ok(())
    }

    /// Alertmanager's choice: the first mechanism in the server's list that the
    /// configuration can serve; no AUTH offered: no authentication.
    async fn authenticate(
        &self,
        conn: &mut AsyncSmtpConnection,
        client_id: &ClientId,
    ) -> Result<(), ChannelError> {
        // lettre keeps only the mechanisms it implements: read the server's list
        let ehlo = conn
            .command(Ehlo::new(client_id.clone()))
            .await
            .map_err(|e| classify("send EHLO command", &e))?;
        let mechs: Vec<String> = ehlo
            .message()
            .filter_map(|l| {
                let kw = l.get(..5)?;
                (kw.eq_ignore_ascii_case("AUTH ") || kw.eq_ignore_ascii_case("AUTH="))
                    .then(|| l[5..].split_whitespace().map(str::to_ascii_uppercase))
            })
            .flatten()
            .collect();
        if mechs.is_empty() {
            tracing::debug!(
                host = %self.host,
                "the server offers no AUTH; sending without authentication"
            );
            return Ok(());
        }
        let user = &self.auth.username;
        let mut problems = Vec::new();
        for mech in &mechs {
            match mech.as_str() {
                "CRAM-MD5" => {
                    if self.auth.secret.is_empty() {
                        problems.push("missing secret for CRAM-MD5 auth mechanism".to_string());
                        continue;
                    }
                    return self.auth_cram_md5(conn).await;
                }
                "PLAIN" | "LOGIN" => {
                    let password = match self.password() {
                        Ok(p) if !p.is_empty() => p,
                        Ok(_) => {
                            problems.push(format!("missing password for {mech} auth mechanism"));
                            continue;
                        }
                        Err(e) => {
                            problems.push(e);
                            continue;
                        }
                    };
                    if mech == "PLAIN" {
                        let blob = format!("{}\0{user}\0{password}", self.auth.identity);
                        let cmd = format!("AUTH PLAIN {}\r\n", B64.encode(blob));
                        return expect_235(conn.command(cmd).await, "PLAIN");
                    }
                    let r = conn.command("AUTH LOGIN\r\n").await;
                    expect_334(&r, "LOGIN")?;
                    let r = conn.command(format!("{}\r\n", B64.encode(user))).await;
                    expect_334(&r, "LOGIN")?;
                    let r = conn.command(format!("{}\r\n", B64.encode(&password))).await;
                    return expect_235(r, "LOGIN");
                }
                _ => {}
            }
        }
        if problems.is_empty() {
            problems.push(format!("unknown auth mechanism: {}", mechs.join(" ")));
        }
        Err(ChannelError::permanent(format!(
            "find auth mechanism: {}",
            problems.join("; ")
        )))
    }

    async fn auth_cram_md5(&self, conn: &mut AsyncSmtpConnection) -> Result<(), ChannelError> {
        let r = conn.command("AUTH CRAM-MD5\r\n").await;
        expect_334(&r, "CRAM-MD5")?;
        let challenge = r
            .ok()
            .and_then(|r| r.message().next().map(str::to_string))
            .and_then(|c| B64.decode(c.trim()).ok())
            .ok_or_else(|| ChannelError::transient("CRAM-MD5 auth: bad challenge"))?;
        let mut mac = Hmac::<md5::Md5>::new_from_slice(self.auth.secret.expose().as_bytes())
            .map_err(|e| ChannelError::permanent(format!("CRAM-MD5 auth: {e}")))?;
        mac.update(&challenge);
        let digest = hex::encode(mac.finalize().into_bytes());
        let answer = format!("{} {digest}", self.auth.username);
        let r = conn.command(format!("{}\r\n", B64.encode(answer))).await;
        expect_235(r, "CRAM-MD5")
    }

    /// The password, from `auth_password_file` when set (read at each delivery).
    fn password(&self) -> Result<String, String> {
        if self.auth.password_file.is_empty() {
            return Ok(self.auth.password.expose().to_string());
        }
        std::fs::read_to_string(&self.auth.password_file)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("auth_password_file {}: {e}", self.auth.password_file))
    }
}

type SmtpResult =
    Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>;

fn expect_334(r: &SmtpResult, mech: &str) -> Result<(), ChannelError> {
    match r {
        Ok(resp) if resp.has_code(334) => Ok(()),
        Ok(resp) => Err(ChannelError::permanent(format!(
            "{mech} auth: unexpected reply {} {}",
            resp.code(),
            resp.message().collect::<Vec<_>>().join(" ")
        ))),
        Err(e) => Err(classify(&format!("{mech} auth"), e)),
    }
}

fn expect_235(r: SmtpResult, mech: &str) -> Result<(), ChannelError> {
    match r {
        Ok(resp)
            if resp.code().severity
                == lettre::transport::smtp::response::Severity::PositiveCompletion =>
        {
            Ok(())
        }
        Ok(resp) => Err(ChannelError::permanent(format!(
            "{mech} auth: unexpected reply {} {}",
            resp.code(),
            resp.message().collect::<Vec<_>>().join(" ")
        ))),
        Err(e) => Err(classify(&format!("{mech} auth"), &e)),
    }
}

/// 4xx replies and network/TLS failures are transient; 5xx replies and what the
/// client refuses to send are permanent.
fn classify(context: &str, e: &lettre::transport::smtp::Error) -> ChannelError {
    let msg = format!("{context}: {e}");
    if e.is_permanent() || e.is_client() {
        ChannelError::permanent(msg)
    } else {
        ChannelError::transient(msg)
    }
}

impl Channel for EmailChannel {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            let m = self.render(n)?;
            let r = match tokio::time::timeout(SMTP_SEND_TIMEOUT, self.deliver(&m)).await {
                Ok(r) => r,
                Err(_) => Err(ChannelError::transient(format!(
                    "no answer from {}:{} within {}s",
                    self.host,
                    self.port,
                    SMTP_SEND_TIMEOUT.as_secs()
                ))),
            };
            match &r {
                Ok(()) => tracing::debug!(
                    receiver = %n.receiver,
                    smarthost = %format!("{}:{}", self.host, self.port),
                    recipients = m.envelope.to().len(),
                    "email sent"
                ),
                Err(e) => tracing::debug!(
                    receiver = %n.receiver,
                    smarthost = %format!("{}:{}", self.host, self.port),
                    error = %e,
                    "email not sent"
                ),
            }
            r
        })
    }
}
