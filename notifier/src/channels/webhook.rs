//! Alertmanager's webhook (`webhook_configs`): the version-4 JSON payload, byte for byte
//! as Alertmanager 0.25 sends it, POSTed with the receiver's `http_config`.
//!
//! The payload ([`payload`], [`encode`]) is Alertmanager's `template.Data` followed by
//! `version`, `groupKey` and `truncatedAlerts`, encoded as Go's `encoding/json` encoder
//! does: fields in struct order, maps (labels) sorted by key, `<`, `>`, `&`, U+2028 and
//! U+2029 escaped as `\u003c`…, control characters as `\u00XX`, and a trailing newline.
//! Times are Go's `time.Time` marshalling (RFC 3339 with nanoseconds, trailing zeros
//! dropped, UTC `Z`); a firing alert with no end is `0001-01-01T00:00:00Z`. `receiver`
//! is `regexp.QuoteMeta` of the receiver name, as Alertmanager 0.25 puts it in
//! `template.Data`. With `max_alerts` the alerts are cut first and everything else
//! (status, common labels) is computed from the alerts that remain, as Alertmanager does.
//!
//! Argus extras: `headers` (fixed extra request headers) and `signature`: when set, the
//! header (default `X-Argus-Signature`) carries `sha256=<hex>` where `<hex>` is the
//! lower-case hex HMAC-SHA256, keyed with the secret, of the exact request body bytes.
//! A receiver verifies by recomputing it over the raw body it read.

use std::collections::BTreeMap;

use argus_schemas::{Labels, Timestamp};
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::http::{HttpClient, HttpClientConfig, Secret, read_secret_file, url_host, validate_url};
use super::{Channel, ChannelError};
use crate::config::GlobalConfig;
use crate::notification::Notification;
use crate::template::Templates;

/// The payload version Alertmanager 0.25 sends.
pub const PAYLOAD_VERSION: &str = "4";
/// `signature.header` when not given.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Argus-Signature";
/// The only `signature.algorithm`.
pub const SIGNATURE_ALGORITHM_SHA256: &str = "sha256";
/// Headers `headers:` may not set: the channel sets them itself.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
];

fn default_true() -> bool {
    true
}

fn default_signature_header() -> String {
    DEFAULT_SIGNATURE_HEADER.to_string()
}

fn default_signature_algorithm() -> String {
    SIGNATURE_ALGORITHM_SHA256.to_string()
}

/// `signature:` of a webhook entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSignature {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    #[serde(default = "default_signature_header")]
    pub header: String,
    #[serde(default = "default_signature_algorithm")]
    pub algorithm: String,
}

/// One entry of `webhook_configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// A file holding the URL, read at each notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    /// The receiver's client settings; `global.http_config` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// At most this many alerts per payload; 0 = all.
    #[serde(default)]
    pub max_alerts: u64,
    /// Extra request headers (Argus).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// HMAC signature of the body (Argus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<WebhookSignature>,
}

/// One alert of the payload (Alertmanager's `template.Alert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// The version-4 payload (Alertmanager's `webhook.Message`), fields in its order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<WebhookAlert>,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
}

fn kv(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Go's `regexp.QuoteMeta`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A time as Go's `time.Time` marshals to JSON in UTC (RFC 3339, nanoseconds with
/// trailing zeros dropped); `None` is Go's zero time `0001-01-01T00:00:00Z`.
pub fn go_time(t: Option<Timestamp>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    let secs = t.0.div_euclid(1_000_000_000);
    let nanos = t.0.rem_euclid(1_000_000_000) as u32;
    let Some(dt) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    let base = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// The payload Alertmanager 0.25 would send for `n` with `max_alerts` (0 = all).
pub fn payload(n: &Notification, max_alerts: usize) -> WebhookMessage {
    let mut truncated = 0u64;
    let mut kept = n.clone();
    if max_alerts != 0 && kept.alerts.len() > max_alerts {
        truncated = (kept.alerts.len() - max_alerts) as u64;
        kept.alerts.truncate(max_alerts);
    }
    WebhookMessage {
        receiver: quote_meta(&kept.receiver),
        status: kept.status().to_string(),
        alerts: kept
            .alerts
            .iter()
            .map(|a| WebhookAlert {
                status: a.status().to_string(),
                labels: kv(&a.labels),
                annotations: kv(&a.annotations),
                starts_at: go_time(Some(a.starts_at)),
                ends_at: go_time(a.ends_at),
                generator_url: a.generator_url.clone(),
                fingerprint: format!("{:016x}", a.fingerprint),
            })
            .collect(),
        group_labels: kv(&kept.group_labels),
        common_labels: kv(&kept.common_labels()),
        common_annotations: kv(&kept.common_annotations()),
        external_url: kept.external_url.clone(),
        version: PAYLOAD_VERSION.to_string(),
        group_key: kept.group_key.clone(),
        truncated_alerts: truncated,
    }
}

/// serde_json's compact output with Go's `encoding/json` string escaping.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        e: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape as E;
        let s: String = match e {
            E::Quote => "\\\"".into(),
            E::ReverseSolidus => "\\\\".into(),
            E::Solidus => "/".into(),
            E::LineFeed => "\\n".into(),
            E::CarriageReturn => "\\r".into(),
            E::Tab => "\\t".into(),
            E::Backspace => "\\u0008".into(),
            E::FormFeed => "\\u000c".into(),
            E::AsciiControl(b) => format!("\\u{b:04x}"),
        };
        w.write_all(s.as_bytes())
    }
}

/// The request body: the message as Go's `json.Encoder` writes it (trailing newline).
pub fn encode(msg: &WebhookMessage) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Serializing plain strings, maps of strings and integers into a Vec cannot fail.
    if msg.serialize(&mut ser).is_err() {
        out.clear();
    }
    out.push(b'\n');
    out
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the signature header's value.
pub fn sign_body(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

enum UrlSource {
    Inline(String),
    File(String),
}

struct Signer {
    header: HeaderName,
    secret: Secret,
}

/// A webhook target.
pub struct WebhookChannel {
    url: UrlSource,
    client: HttpClient,
    send_resolved: bool,
    max_alerts: usize,
    headers: Vec<(HeaderName, HeaderValue)>,
    signer: Option<Signer>,
}

impl WebhookChannel {
    pub fn new(c: &WebhookConfig, g: &GlobalConfig, _t: &Templates) -> Result<Self, String> {
        let url = match (&c.url, &c.url_file) {
            (Some(_), Some(_)) => {
                return Err("at most one of url & url_file must be configured".into());
            }
            (None, None) => return Err("one of url or url_file must be configured".into()),
            (Some(u), None) => {
                validate_url("url", u.expose())?;
                UrlSource::Inline(u.expose().to_string())
            }
            (None, Some(f)) => {
                let u = read_secret_file("url_file", f)?;
                validate_url("url_file", u.expose())?;
                UrlSource::File(f.clone())
            }
        };
        let http = c.http_config.as_ref().unwrap_or(&g.http_config);
        // Alertmanager's webhook notifier disables HTTP/2.
        let client = http.build(true)?;
        let mut headers = Vec::new();
        for (name, value) in &c.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: {name:?} is not a valid header name"))?;
            if RESERVED_HEADERS.contains(&n.as_str()) {
                return Err(format!("headers: {name:?} is set by the channel itself"));
            }
            let v = HeaderValue::from_str(value).map_err(|_| {
                format!("headers: the value of {name:?} is not a valid header value")
            })?;
            headers.push((n, v));
        }
        let signer = match &c.signature {
            None => None,
            Some(s) => {
                if s.algorithm != SIGNATURE_ALGORITHM_SHA256 {
                    return Err(format!(
                        "signature.algorithm: {:?} is not supported (only {SIGNATURE_ALGORITHM_SHA256:?})",
                        s.algorithm
                    ));
                }
                let secret = match (&s.secret, &s.secret_file) {
                    (Some(_), Some(_)) => {
                        return Err(
                            "signature: at most one of secret & secret_file must be configured"
                                .into(),
                        );
                    }
                    (None, None) => {
                        return Err(
                            "signature: one of secret or secret_file must be configured".into()
                        );
                    }
                    (Some(x), None) => x.clone(),
                    (None, Some(f)) => read_secret_file("signature.secret_file", f)?,
                };
                if secret.is_empty() {
                    return Err("signature: the secret is empty".into());
                }
                let header = HeaderName::from_bytes(s.header.as_bytes()).map_err(|_| {
                    format!(
                        "signature.header: {:?} is not a valid header name",
                        s.header
                    )
                })?;
                if headers.iter().any(|(n, _)| *n == header) {
                    return Err(format!("headers: {:?} is the signature header", s.header));
                }
                Some(Signer { header, secret })
            }
        };
        Ok(WebhookChannel {
            url,
            client,
            send_resolved: c.send_resolved,
            max_alerts: usize::try_from(c.max_alerts).unwrap_or(usize::MAX),
            headers,
            signer,
        })
    }

    fn url(&self) -> Result<String, ChannelError> {
        match &self.url {
            UrlSource::Inline(u) => Ok(u.clone()),
            UrlSource::File(f) => read_secret_file("url_file", f)
                .map(|s| s.expose().to_string())
                .map_err(ChannelError::transient),
        }
    }

    async fn deliver(&self, n: &Notification) -> Result<(), ChannelError> {
        let url = self.url()?;
        let msg = payload(n, self.max_alerts);
        let body = encode(&msg);
        let what = format!("webhook {}", url_host(&url));
        let mut req = self
            .client
            .request(reqwest::Method::POST, &url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        if let Some(s) = &self.signer {
            req = req.header(&s.header, sign_body(s.secret.expose().as_bytes(), &body));
        }
        let resp = self.client.send(req.body(body), &what).await?;
        let result = resp.check(&what);
        match &result {
            Ok(()) => tracing::debug!(
                target_host = %url_host(&url),
                group_key = %n.group_key,
                alerts = msg.alerts.len(),
                truncated = msg.truncated_alerts,
                status = resp.status.as_u16(),
                "webhook delivered"
            ),
            Err(e) => tracing::warn!(
                target_host = %url_host(&url),
                group_key = %n.group_key,
                status = resp.status.as_u16(),
                transient = e.is_transient(),
                error = %e,
                "webhook failed"
            ),
        }
        result
    }
}

impl Channel for WebhookChannel {
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(self.deliver(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_matches_rfc3339nano() {
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(Some(Timestamp(0))), "1970-01-01T00:00:00Z");
        assert_eq!(
            go_time(Some(Timestamp(1_700_000_000_120_000_000))),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            go_time(Some(Timestamp(1_700_000_000_000_000_001))),
            "2023-11-14T22:13:20.000000001Z"
        );
    }

    #[test]
    fn quote_meta_like_go() {
        assert_eq!(quote_meta("team-x.ops"), "team-x\\.ops");
        assert_eq!(
            quote_meta("a+b*(c)|[d]{e}^$?\\"),
            "a\\+b\\*\\(c\\)\\|\\[d\\]\\{e\\}\\^\\$\\?\\\\"
        );
        assert_eq!(quote_meta("plain"), "plain");
    }

    #[test]
    fn go_escaping() {
        let msg = WebhookMessage {
            receiver: "r".into(),
            status: "firing".into(),
            alerts: vec![],
            group_labels: BTreeMap::from([(
                "a".to_string(),
                "<x>&\u{2028}\u{8}\u{c}\u{1}\"\\/".to_string(),
            )]),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            external_url: "http://h/?a=1&b=2".into(),
            version: "4".into(),
            group_key: "{}:{}".into(),
            truncated_alerts: 0,
        };
        let s = String::from_utf8(encode(&msg)).unwrap();
        assert_eq!(
            s,
            "{\"receiver\":\"r\",\"status\":\"firing\",\"alerts\":[],\"groupLabels\":{\"a\":\"\\u003cx\\u003e\\u0026\\u2028\\u0008\\u000c\\u0001\\\"\\\\/\"},\"commonLabels\":{},\"commonAnnotations\":{},\"externalURL\":\"http://h/?a=1\\u0026b=2\",\"version\":\"4\",\"groupKey\":\"{}:{}\",\"truncatedAlerts\":0}\n"
        );
        // Still JSON that decodes to the same message.
        let back: WebhookMessage = serde_json::from_str(&s).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign_body(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
