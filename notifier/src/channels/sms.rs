//! The SMS channel (`sms_configs`): one entry sends to its `phone_numbers` (E.164)
//! through exactly one provider:
//!
//! - `tencent:` Tencent Cloud SMS `SendSms` (API version 2021-01-11), signed with
//!   TC3-HMAC-SHA256 as Tencent Cloud's "signature v3" documentation describes
//!   ([`tc3_sign`]): canonical request over `content-type;host;x-tc-action`, string to
//!   sign with the `<date>/sms/tc3_request` scope, key derived from `"TC3" + SecretKey`
//!   over date, service and `tc3_request`. The template parameters are templates
//!   rendered per notification. Numbers go out at most [`TENCENT_MAX_NUMBERS`] per
//!   request, mainland (+86) and other numbers in separate requests as Tencent requires.
//!   `Response.Error` fails the whole request (its code decides transient or permanent,
//!   [`tencent_code_is_transient`]); `Response.SendStatusSet` gives each number's `Code`
//!   (`Ok` or the failure).
//! - `http:` a generic HTTP gateway: `url`, header values and `body` are templates;
//!   with `per_number` one request per number with `.Phone` in the template data,
//!   otherwise one request with `.Phones` (the numbers joined by commas). Success is a
//!   2xx (or one of `success_status`); failures are classified like every HTTP channel.
//!
//! Partial failures: the error names each failed number and why. Numbers that were
//! delivered, or failed for good, are remembered per notification (group key and flush
//! time), so the dispatcher's retry of a transient failure only sends to the numbers
//! still pending; permanent failures are reported again when the retry settles.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::http::{HttpClient, HttpClientConfig, Secret, read_secret_file, url_host, validate_url};
use super::{Channel, ChannelError};
use crate::config::GlobalConfig;
use crate::notification::Notification;
use crate::template::{CompiledTemplate, TemplateData, Templates};

/// `tencent.region` when not given.
pub const DEFAULT_TENCENT_REGION: &str = "ap-guangzhou";
/// `tencent.endpoint` when not given.
pub const DEFAULT_TENCENT_ENDPOINT: &str = "https://sms.tencentcloudapi.com";
/// The service name in the TC3 credential scope.
pub const TENCENT_SERVICE: &str = "sms";
/// `X-TC-Action`.
pub const TENCENT_ACTION: &str = "SendSms";
/// `X-TC-Version`.
pub const TENCENT_VERSION: &str = "2021-01-11";
/// The signature algorithm name.
pub const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The body's content type (signed as is).
pub const TENCENT_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// Tencent's limit of numbers in one `SendSms` request.
pub const TENCENT_MAX_NUMBERS: usize = 200;
/// `SendStatusSet[].Code` of a delivered number.
pub const TENCENT_OK: &str = "Ok";
/// `http.method` when not given.
pub const DEFAULT_HTTP_METHOD: &str = "POST";
/// Settled-number records kept (one per notification); the oldest go first.
const MAX_TRACKED_NOTIFICATIONS: usize = 4096;

/// One entry of `sms_configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Resolved notifications are not texted unless asked for.
    #[serde(default)]
    pub send_resolved: bool,
    /// E.164 numbers, e.g. `+8613800000000`.
    pub phone_numbers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tencent: Option<TencentSmsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSmsConfig>,
    /// The client settings; `global.http_config` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
}

fn default_region() -> String {
    DEFAULT_TENCENT_REGION.to_string()
}

fn default_endpoint() -> String {
    DEFAULT_TENCENT_ENDPOINT.to_string()
}

fn default_method() -> String {
    DEFAULT_HTTP_METHOD.to_string()
}

/// `tencent:` of an SMS entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TencentSmsConfig {
    pub secret_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    /// `SmsSdkAppId`.
    pub sdk_app_id: String,
    /// `SignName` (required by Tencent for mainland numbers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sign_name: String,
    /// `TemplateId` of an approved template.
    pub template_id: String,
    /// One template per `{n}` parameter of the Tencent template, rendered per
    /// notification into `TemplateParamSet`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_params: Vec<String>,
    /// Cut each rendered parameter to this many characters (Tencent rejects longer
    /// ones with `InvalidParameterValue.TemplateParameterLengthLimit`; the limit depends
    /// on the account and template type); 0 = no cut.
    #[serde(default)]
    pub template_param_max_chars: usize,
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

/// `http:` of an SMS entry (a generic gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSmsConfig {
    /// Template of the request URL.
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Header name → template of its value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Template of the request body (none: empty body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Statuses that mean delivered; empty = any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_status: Vec<u16>,
    /// One request per number (`.Phone`) instead of one for all (`.Phones`).
    #[serde(default)]
    pub per_number: bool,
}

/// Whether `s` is an E.164 number: `+`, a non-zero digit, at most 15 digits in all.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

// ---------------------------------------------------------------------------------
// TC3-HMAC-SHA256

/// What one TC3 signature covers.
#[derive(Debug, Clone)]
pub struct Tc3Input<'a> {
    pub secret_id: &'a str,
    pub secret_key: &'a str,
    /// Service of the credential scope (`sms`, `cvm`…).
    pub service: &'a str,
    /// Unix seconds (`X-TC-Timestamp`); the scope's date is its UTC date.
    pub timestamp: i64,
    pub method: &'a str,
    /// Query string of the request ("" for POST).
    pub query: &'a str,
    /// The signed headers (name, value) — at least `content-type` and `host`.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// Every intermediate of a TC3 signature (for tests and debugging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Signature {
    pub hashed_payload: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub credential_scope: String,
    pub signed_headers: String,
    pub signature: String,
    /// The `Authorization` header value.
    pub authorization: String,
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Signs a request with TC3-HMAC-SHA256 as Tencent Cloud's API 3.0 documentation
/// describes it.
pub fn tc3_sign(i: &Tc3Input<'_>) -> Tc3Signature {
    let mut headers: Vec<(String, String)> = i
        .headers
        .iter()
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let hashed_payload = sha256_hex(i.payload);
    let canonical_request = format!(
        "{}\n/\n{}\n{canonical_headers}\n{signed_headers}\n{hashed_payload}",
        i.method, i.query
    );
    let date = chrono::DateTime::from_timestamp(i.timestamp, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string());
    let credential_scope = format!("{date}/{}/tc3_request", i.service);
    let string_to_sign = format!(
        "{TC3_ALGORITHM}\n{}\n{credential_scope}\n{}",
        i.timestamp,
        sha256_hex(canonical_request.as_bytes())
    );
    let secret_date = hmac_sha256(format!("TC3{}", i.secret_key).as_bytes(), date.as_bytes());
    let secret_service = hmac_sha256(&secret_date, i.service.as_bytes());
    let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&secret_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "{TC3_ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        i.secret_id
    );
    Tc3Signature {
        hashed_payload,
        canonical_request,
        string_to_sign,
        credential_scope,
        signed_headers,
        signature,
        authorization,
    }
}

/// Whether a Tencent Cloud error code (of `Response.Error` or a number's
/// `SendStatusSet` entry) is worth retrying: internal errors and time-outs, request
/// rate limits and the short per-number frequency limits. Authentication, parameter,
/// template/signature, balance, blacklist and daily/hourly per-number limits are not.
pub fn tencent_code_is_transient(code: &str) -> bool {
    const PERMANENT_INTERNAL: &[&str] = &[
        "InternalError.SigVerificationFail",
        "InternalError.SigFieldMissing",
        "InternalError.RestApiInterfaceNotExist",
        "InternalError.RequestTimeException",
    ];
    if code == "InternalError" || code.starts_with("InternalError.") {
        return !PERMANENT_INTERNAL.contains(&code);
    }
    code.starts_with("RequestLimitExceeded")
        || matches!(
            code,
            "LimitExceeded.DeliveryFrequencyLimit"
                | "LimitExceeded.PhoneNumberThirtySecondLimit"
                | "ResourceUnavailable"
        )
}

fn tencent_retry_after(code: &str) -> Option<Duration> {
    match code {
        "LimitExceeded.PhoneNumberThirtySecondLimit" => Some(Duration::from_secs(30)),
        _ => None,
    }
}

#[derive(Deserialize)]
struct TcEnvelope {
    #[serde(rename = "Response")]
    response: TcResponse,
}

#[derive(Deserialize)]
struct TcResponse {
    #[serde(rename = "Error", default)]
    error: Option<TcError>,
    #[serde(rename = "SendStatusSet", default)]
    send_status_set: Vec<TcStatus>,
    #[serde(rename = "RequestId", default)]
    request_id: String,
}

#[derive(Deserialize)]
struct TcError {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

#[derive(Deserialize)]
struct TcStatus {
    #[serde(rename = "PhoneNumber")]
    phone_number: String,
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

// ---------------------------------------------------------------------------------
// Per-number bookkeeping

/// What happened to one number in one attempt.
#[derive(Debug, Clone)]
enum NumberOutcome {
    Delivered,
    Transient {
        why: String,
        retry_after: Option<Duration>,
    },
    Permanent(String),
}

/// Numbers already settled for one notification: delivered, or failed for good (why).
#[derive(Debug, Default, Clone)]
struct Settled {
    delivered: Vec<String>,
    failed: Vec<(String, String)>,
}

impl Settled {
    fn contains(&self, n: &str) -> bool {
        self.delivered.iter().any(|d| d == n) || self.failed.iter().any(|(f, _)| f == n)
    }
}

type NotificationKey = (String, i64);

#[derive(Default)]
struct Ledger {
    by_notification: HashMap<NotificationKey, Settled>,
    order: std::collections::VecDeque<NotificationKey>,
}

impl Ledger {
    fn get(&self, k: &NotificationKey) -> Settled {
        self.by_notification.get(k).cloned().unwrap_or_default()
    }

    fn put(&mut self, k: NotificationKey, s: Settled) {
        if !self.by_notification.contains_key(&k) {
            self.order.push_back(k.clone());
        }
        self.by_notification.insert(k, s);
        while self.order.len() > MAX_TRACKED_NOTIFICATIONS {
            if let Some(old) = self.order.pop_front() {
                self.by_notification.remove(&old);
            }
        }
    }
}

/// Folds one attempt's per-number outcomes into the notification's record and the
/// attempt's result.
fn settle(
    provider: &str,
    mut settled: Settled,
    outcomes: Vec<(String, NumberOutcome)>,
) -> (Settled, Result<(), ChannelError>) {
    let mut transient: Vec<String> = Vec::new();
    let mut retry_after: Option<Duration> = None;
    for (number, o) in outcomes {
        match o {
            NumberOutcome::Delivered => settled.delivered.push(number),
            NumberOutcome::Permanent(why) => settled.failed.push((number, why)),
            NumberOutcome::Transient {
                why,
                retry_after: ra,
            } => {
                transient.push(format!("{number}: {why}"));
                retry_after = match (retry_after, ra) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    let failed: Vec<String> = settled
        .failed
        .iter()
        .map(|(n, why)| format!("{n}: {why}"))
        .collect();
    let delivered = if settled.delivered.is_empty() {
        String::new()
    } else {
        format!(" (delivered to {})", settled.delivered.join(", "))
    };
    let result = if !transient.is_empty() {
        let mut all = transient;
        all.extend(failed);
        Err(ChannelError::Transient {
            message: format!("{provider}: failed for {}{delivered}", all.join("; ")),
            retry_after,
        })
    } else if !failed.is_empty() {
        Err(ChannelError::Permanent(format!(
            "{provider}: failed for {}{delivered}",
            failed.join("; ")
        )))
    } else {
        Ok(())
    };
    (settled, result)
}

// ---------------------------------------------------------------------------------
// Providers

enum KeySource {
    Inline(Secret),
    File(String),
}

struct Tencent {
    secret_id: String,
    secret_key: KeySource,
    region: String,
    sdk_app_id: String,
    sign_name: String,
    template_id: String,
    params: Vec<CompiledTemplate>,
    param_max_chars: usize,
    endpoint: String,
    host: String,
}

struct Gateway {
    url: CompiledTemplate,
    method: reqwest::Method,
    headers: Vec<(HeaderName, CompiledTemplate)>,
    body: Option<CompiledTemplate>,
    success_status: Vec<u16>,
    per_number: bool,
}

enum Provider {
    Tencent(Box<Tencent>),
    Http(Box<Gateway>),
}

/// An SMS target.
pub struct SmsChannel {
    numbers: Vec<String>,
    provider: Provider,
    client: HttpClient,
    send_resolved: bool,
    ledger: Mutex<Ledger>,
}

fn cut_chars(s: &str, max: usize) -> String {
    if max == 0 {
        return s.to_string();
    }
    s.chars().take(max).collect()
}

impl SmsChannel {
    pub fn new(c: &SmsConfig, g: &GlobalConfig, t: &Templates) -> Result<Self, String> {
        if c.phone_numbers.is_empty() {
            return Err("phone_numbers: at least one number is needed".into());
        }
        for (i, p) in c.phone_numbers.iter().enumerate() {
            if !is_e164(p) {
                return Err(format!(
                    "phone_numbers[{i}]: {p:?} is not an E.164 number (+<country code><number>)"
                ));
            }
        }
        let mut numbers = c.phone_numbers.clone();
        numbers.dedup();
        let provider = match (&c.tencent, &c.http) {
            (Some(_), Some(_)) => {
                return Err("exactly one of tencent or http must be configured, not both".into());
            }
            (None, None) => return Err("exactly one of tencent or http must be configured".into()),
            (Some(tc), None) => Provider::Tencent(Box::new(Self::tencent(tc, t)?)),
            (None, Some(h)) => Provider::Http(Box::new(Self::gateway(h, t)?)),
        };
        let http = c.http_config.as_ref().unwrap_or(&g.http_config);
        let client = http.build(false)?;
        Ok(SmsChannel {
            numbers,
            provider,
            client,
            send_resolved: c.send_resolved,
            ledger: Mutex::new(Ledger::default()),
        })
    }

    fn tencent(tc: &TencentSmsConfig, t: &Templates) -> Result<Tencent, String> {
        for (field, v) in [
            ("tencent.secret_id", &tc.secret_id),
            ("tencent.sdk_app_id", &tc.sdk_app_id),
            ("tencent.template_id", &tc.template_id),
            ("tencent.region", &tc.region),
        ] {
            if v.trim().is_empty() {
                return Err(format!("{field} must not be empty"));
            }
        }
        let secret_key = match (&tc.secret_key, &tc.secret_key_file) {
            (Some(_), Some(_)) => {
                return Err(
                    "tencent: at most one of secret_key & secret_key_file must be configured"
                        .into(),
                );
            }
            (None, None) => {
                return Err(
                    "tencent: one of secret_key or secret_key_file must be configured".into(),
                );
            }
            (Some(k), None) => KeySource::Inline(k.clone()),
            (None, Some(f)) => {
                read_secret_file("tencent.secret_key_file", f)?;
                KeySource::File(f.clone())
            }
        };
        let u = validate_url("tencent.endpoint", &tc.endpoint)?;
        let host = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err("tencent.endpoint: URL has no host".into()),
        };
        let params = tc
            .template_params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                t.compile(&format!("tencent.template_params[{i}]"), p)
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tencent {
            secret_id: tc.secret_id.trim().to_string(),
            secret_key,
            region: tc.region.clone(),
            sdk_app_id: tc.sdk_app_id.clone(),
            sign_name: tc.sign_name.clone(),
            template_id: tc.template_id.clone(),
            params,
            param_max_chars: tc.template_param_max_chars,
            endpoint: tc.endpoint.clone(),
            host,
        })
    }

    fn gateway(h: &HttpSmsConfig, t: &Templates) -> Result<Gateway, String> {
        let method = reqwest::Method::from_bytes(h.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("http.method: {:?} is not an HTTP method", h.method))?;
        if !h.url.contains("{{") {
            validate_url("http.url", &h.url)?;
        }
        let url = t.compile("http.url", &h.url).map_err(|e| e.to_string())?;
        let mut headers = Vec::new();
        for (name, value) in &h.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("http.headers: {name:?} is not a valid header name"))?;
            if matches!(n.as_str(), "content-length" | "host" | "transfer-encoding") {
                return Err(format!(
                    "http.headers: {name:?} is set by the channel itself"
                ));
            }
            let v = t
                .compile(&format!("http.headers.{name}"), value)
                .map_err(|e| e.to_string())?;
            headers.push((n, v));
        }
        let body = match &h.body {
            Some(b) => Some(t.compile("http.body", b).map_err(|e| e.to_string())?),
            None => None,
        };
        for s in &h.success_status {
            if !(100..=599).contains(s) {
                return Err(format!("http.success_status: {s} is not an HTTP status"));
            }
        }
        Ok(Gateway {
            url,
            method,
            headers,
            body,
            success_status: h.success_status.clone(),
            per_number: h.per_number,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<(), ChannelError> {
        let key = (n.group_key.clone(), n.now.0);
        let settled = self
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key);
        let pending: Vec<String> = self
            .numbers
            .iter()
            .filter(|p| !settled.contains(p))
            .cloned()
            .collect();
        let (provider, outcomes) = match &self.provider {
            Provider::Tencent(tc) => ("sms tencent", self.send_tencent(tc, n, &pending).await?),
            Provider::Http(gw) => ("sms http", self.send_gateway(gw, n, &pending).await?),
        };
        let (settled, result) = settle(provider, settled, outcomes);
        self.ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, settled);
        match &result {
            Ok(()) => {
                tracing::debug!(group_key = %n.group_key, numbers = pending.len(), "sms delivered")
            }
            Err(e) => {
                tracing::warn!(group_key = %n.group_key, transient = e.is_transient(), error = %e, "sms failed")
            }
        }
        result
    }

    async fn send_tencent(
        &self,
        tc: &Tencent,
        n: &Notification,
        numbers: &[String],
    ) -> Result<Vec<(String, NumberOutcome)>, ChannelError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let data = TemplateData::new(n);
        let params = tc
            .params
            .iter()
            .map(|p| {
                p.render(&data)
                    .map(|s| cut_chars(&s, tc.param_max_chars))
                    .map_err(|e| ChannelError::permanent(format!("sms tencent: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let secret_key = match &tc.secret_key {
            KeySource::Inline(s) => s.clone(),
            KeySource::File(f) => {
                read_secret_file("tencent.secret_key_file", f).map_err(ChannelError::transient)?
            }
        };
        // Mainland and other numbers may not share a request.
        let (mainland, other): (Vec<&String>, Vec<&String>) =
            numbers.iter().partition(|p| p.starts_with("+86"));
        let mut outcomes = Vec::new();
        for group in [mainland, other] {
            for chunk in group.chunks(TENCENT_MAX_NUMBERS) {
                let chunk: Vec<String> = chunk.iter().map(|s| s.to_string()).collect();
                outcomes.extend(
                    self.tencent_request(tc, secret_key.expose(), &params, &chunk)
                        .await,
                );
            }
        }
        Ok(outcomes)
    }

    async fn tencent_request(
        &self,
        tc: &Tencent,
        secret_key: &str,
        params: &[String],
        numbers: &[String],
    ) -> Vec<(String, NumberOutcome)> {
        let all = |o: NumberOutcome| -> Vec<(String, NumberOutcome)> {
            numbers.iter().map(|p| (p.clone(), o.clone())).collect()
        };
        let mut body = serde_json::Map::new();
        body.insert("PhoneNumberSet".into(), numbers.to_vec().into());
        body.insert("SmsSdkAppId".into(), tc.sdk_app_id.clone().into());
        if !tc.sign_name.is_empty() {
            body.insert("SignName".into(), tc.sign_name.clone().into());
        }
        body.insert("TemplateId".into(), tc.template_id.clone().into());
        body.insert("TemplateParamSet".into(), params.to_vec().into());
        let payload = serde_json::Value::Object(body).to_string().into_bytes();
        let timestamp = chrono::Utc::now().timestamp();
        let ts = timestamp.to_string();
        let sig = tc3_sign(&Tc3Input {
            secret_id: &tc.secret_id,
            secret_key,
            service: TENCENT_SERVICE,
            timestamp,
            method: "POST",
            query: "",
            headers: &[
                ("content-type", TENCENT_CONTENT_TYPE),
                ("host", &tc.host),
                ("x-tc-action", TENCENT_ACTION),
            ],
            payload: &payload,
        });
        let req = self
            .client
            .request(reqwest::Method::POST, &tc.endpoint)
            .header(reqwest::header::AUTHORIZATION, sig.authorization)
            .header(reqwest::header::CONTENT_TYPE, TENCENT_CONTENT_TYPE)
            .header(reqwest::header::HOST, &tc.host)
            .header("X-TC-Action", TENCENT_ACTION)
            .header("X-TC-Version", TENCENT_VERSION)
            .header("X-TC-Timestamp", ts)
            .header("X-TC-Region", &tc.region)
            .body(payload);
        let what = format!("sms tencent {}", tc.host);
        let resp = match self.client.send(req, &what).await {
            Ok(r) => r,
            Err(e) => {
                return all(match e {
                    ChannelError::Transient {
                        message,
                        retry_after,
                    } => NumberOutcome::Transient {
                        why: message,
                        retry_after,
                    },
                    ChannelError::Permanent(m) => NumberOutcome::Permanent(m),
                });
            }
        };
        if let Err(e) = resp.check(&what) {
            return all(match e {
                ChannelError::Transient {
                    message,
                    retry_after,
                } => NumberOutcome::Transient {
                    why: message,
                    retry_after,
                },
                ChannelError::Permanent(m) => NumberOutcome::Permanent(m),
            });
        }
        let parsed: TcEnvelope = match serde_json::from_slice(&resp.body) {
            Ok(p) => p,
            Err(_) => {
                return all(NumberOutcome::Permanent(format!(
                    "HTTP {} without Tencent Cloud's Response JSON: {}",
                    resp.status,
                    resp.snippet()
                )));
            }
        };
        let r = parsed.response;
        if let Some(e) = r.error {
            let why = format!("{}: {} (RequestId {})", e.code, e.message, r.request_id);
            return all(if tencent_code_is_transient(&e.code) {
                NumberOutcome::Transient {
                    why,
                    retry_after: tencent_retry_after(&e.code),
                }
            } else {
                NumberOutcome::Permanent(why)
            });
        }
        numbers
            .iter()
            .map(|p| {
                let status = r
                    .send_status_set
                    .iter()
                    .find(|s| same_number(&s.phone_number, p));
                let o = match status {
                    None => NumberOutcome::Transient {
                        why: format!("not in SendStatusSet (RequestId {})", r.request_id),
                        retry_after: None,
                    },
                    Some(s) if s.code == TENCENT_OK => NumberOutcome::Delivered,
                    Some(s) => {
                        let why = format!("{}: {}", s.code, s.message);
                        if tencent_code_is_transient(&s.code) {
                            NumberOutcome::Transient {
                                why,
                                retry_after: tencent_retry_after(&s.code),
                            }
                        } else {
                            NumberOutcome::Permanent(why)
                        }
                    }
                };
                (p.clone(), o)
            })
            .collect()
    }

    async fn send_gateway(
        &self,
        gw: &Gateway,
        n: &Notification,
        numbers: &[String],
    ) -> Result<Vec<(String, NumberOutcome)>, ChannelError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let mut outcomes = Vec::new();
        if gw.per_number {
            for p in numbers {
                let data = TemplateData::new(n)
                    .with_extra("Phone", p)
                    .with_extra("Phones", &numbers.join(","));
                let o = self.gateway_request(gw, &data).await?;
                outcomes.push((p.clone(), o));
            }
        } else {
            let data = TemplateData::new(n).with_extra("Phones", &numbers.join(","));
            let o = self.gateway_request(gw, &data).await?;
            outcomes.extend(numbers.iter().map(|p| (p.clone(), o.clone())));
        }
        Ok(outcomes)
    }

    /// One gateway request; `Err` only for template failures (nothing was sent).
    async fn gateway_request(
        &self,
        gw: &Gateway,
        data: &TemplateData<'_>,
    ) -> Result<NumberOutcome, ChannelError> {
        let render = |what: &str, t: &CompiledTemplate| {
            t.render(data)
                .map_err(|e| ChannelError::permanent(format!("sms http: {what}: {e}")))
        };
        let url = render("url", &gw.url)?.trim().to_string();
        validate_url("sms http: url", &url).map_err(ChannelError::permanent)?;
        let mut req = self.client.request(gw.method.clone(), &url);
        for (name, t) in &gw.headers {
            let v = render(name.as_str(), t)?;
            let v = HeaderValue::from_str(v.trim()).map_err(|_| {
                ChannelError::permanent(format!(
                    "sms http: header {name} rendered to an invalid header value"
                ))
            })?;
            req = req.header(name, v);
        }
        if let Some(b) = &gw.body {
            req = req.body(render("body", b)?);
        }
        let what = format!("sms http {}", url_host(&url));
        let resp = match self.client.send(req, &what).await {
            Ok(r) => r,
            Err(ChannelError::Transient {
                message,
                retry_after,
            }) => {
                return Ok(NumberOutcome::Transient {
                    why: message,
                    retry_after,
                });
            }
            Err(ChannelError::Permanent(m)) => return Ok(NumberOutcome::Permanent(m)),
        };
        let code = resp.status.as_u16();
        let accepted = if gw.success_status.is_empty() {
            resp.status.is_success()
        } else {
            gw.success_status.contains(&code)
        };
        if accepted {
            return Ok(NumberOutcome::Delivered);
        }
        Ok(match resp.check(&what) {
            Err(ChannelError::Transient {
                message,
                retry_after,
            }) => NumberOutcome::Transient {
                why: message,
                retry_after,
            },
            Err(ChannelError::Permanent(m)) => NumberOutcome::Permanent(m),
            Ok(()) => NumberOutcome::Permanent(format!(
                "{what}: HTTP {} is not one of success_status {:?}: {}",
                resp.status,
                gw.success_status,
                resp.snippet()
            )),
        })
    }
}

/// Tencent echoes numbers in E.164; a mainland number may have been given without
/// `+86` normalisation differences, so compare digits.
fn same_number(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    digits(a) == digits(b)
}

impl Channel for SmsChannel {
    fn kind(&self) -> &'static str {
        "sms"
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

    const DOC_PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    fn doc_input<'a>(secret_id: &'a str, secret_key: &'a str) -> Tc3Input<'a> {
        Tc3Input {
            secret_id,
            secret_key,
            service: "cvm",
            timestamp: 1551113065,
            method: "POST",
            query: "",
            headers: &[
                ("content-type", "application/json; charset=utf-8"),
                ("host", "cvm.tencentcloudapi.com"),
            ],
            payload: DOC_PAYLOAD.as_bytes(),
        }
    }

    /// The worked example of Tencent Cloud's "签名方法 v3" page (CVM DescribeInstances,
    /// timestamp 1551113065), with the example credentials exactly as the page prints
    /// them.
    #[test]
    fn tc3_matches_tencent_documentation_example() {
        let s = tc3_sign(&doc_input(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            "Gu5t9xGARNpq86cd98joQYCN3*******",
        ));
        assert_eq!(
            s.hashed_payload,
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            s.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            s.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.authorization,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    /// The same example in the English edition of the page (other example key).
    #[test]
    fn tc3_matches_english_documentation_example() {
        let s = tc3_sign(&doc_input(
            "AKID**********************0123456789EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        ));
        assert_eq!(
            s.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn e164() {
        assert!(is_e164("+8613800000000"));
        assert!(is_e164("+14155550123"));
        assert!(!is_e164("13800000000"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+86 138"));
        assert!(!is_e164("+1234567890123456"));
    }

    #[test]
    fn code_classes() {
        assert!(tencent_code_is_transient("InternalError.Timeout"));
        assert!(tencent_code_is_transient("InternalError"));
        assert!(tencent_code_is_transient("RequestLimitExceeded"));
        assert!(tencent_code_is_transient(
            "LimitExceeded.PhoneNumberThirtySecondLimit"
        ));
        assert!(!tencent_code_is_transient(
            "LimitExceeded.PhoneNumberDailyLimit"
        ));
        assert!(!tencent_code_is_transient("AuthFailure.SignatureFailure"));
        assert!(!tencent_code_is_transient(
            "InvalidParameterValue.IncorrectPhoneNumber"
        ));
        assert!(!tencent_code_is_transient(
            "InternalError.SigVerificationFail"
        ));
        assert!(!tencent_code_is_transient(
            "FailedOperation.InsufficientBalanceInSmsPackage"
        ));
    }
}
