//! Alertmanager's `http_config` (Prometheus' common HTTP client configuration: basic
//! auth, authorization / bearer token, TLS, proxy, redirects, HTTP/2), the client built
//! from it, and how every HTTP channel turns a response into a [`ChannelError`].
//!
//! Validation follows Prometheus' `HTTPClientConfig.Validate`: at most one of
//! `basic_auth`, `authorization` and `bearer_token`/`bearer_token_file`; at most one of
//! each value and its `_file`; `authorization.type` defaults to `Bearer` and may not be
//! `Basic`. Credential files are read at every request (so rotated files are picked up)
//! and trimmed of surrounding white space, as Prometheus does.
//!
//! Responses: 2xx is delivered; 429 and 5xx are transient (with `Retry-After`, seconds
//! or an HTTP date, when the server sent one); any other status is permanent; connection
//! errors and time-outs are transient. Error messages carry a bounded snippet of the
//! body ([`BODY_SNIPPET_BYTES`]) and never the request URL (URLs may hold keys).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ChannelError;

/// `User-Agent` of every request the notifier makes.
pub const USER_AGENT: &str = concat!("Argus/", env!("CARGO_PKG_VERSION"));
/// `authorization.type` when none is given.
pub const DEFAULT_AUTHORIZATION_TYPE: &str = "Bearer";
/// `follow_redirects` when not given (Prometheus' default).
pub const DEFAULT_FOLLOW_REDIRECTS: bool = true;
/// `enable_http2` when not given (Prometheus' default).
pub const DEFAULT_ENABLE_HTTP2: bool = true;
/// Redirects followed at most when `follow_redirects` is on (Go's limit).
pub const MAX_REDIRECTS: usize = 10;
/// Time to establish a connection (TCP + TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole request, response body included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Response bodies are read up to this many bytes; the rest is dropped.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// How much of a response body an error message quotes.
pub const BODY_SNIPPET_BYTES: usize = 512;

/// A configuration value that must not be shown: `Debug` and `Serialize` print
/// `<secret>`, as Alertmanager marshals its `Secret` type.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// `authorization`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme; `Bearer` when empty.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

/// `tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA certificates that verify the server (instead of the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// PEM client certificate (chain) for mutual TLS; needs `key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// PEM private key of `cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// The name the server certificate is verified against instead of the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Accept any server certificate (testing only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    fn is_default(&self) -> bool {
        *self == TlsConfig::default()
    }
}

fn default_true() -> bool {
    true
}

/// `http_config` as Alertmanager reads it (Prometheus' `HTTPClientConfig`, without
/// OAuth 2.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Legacy: the same as `authorization: {credentials: …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// Legacy: the same as `authorization: {credentials_file: …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "TlsConfig::is_default")]
    pub tls_config: TlsConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    #[serde(default = "default_true")]
    pub enable_http2: bool,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            proxy_url: None,
            follow_redirects: DEFAULT_FOLLOW_REDIRECTS,
            enable_http2: DEFAULT_ENABLE_HTTP2,
        }
    }
}

/// Where the `Authorization` header of each request comes from.
#[derive(Debug, Clone)]
enum AuthSource {
    Basic { username: Value, password: Value },
    Scheme { scheme: String, credentials: Value },
}

/// A value given inline or read from a file at each use.
#[derive(Debug, Clone)]
enum Value {
    Inline(Secret),
    File(String),
}

impl Value {
    fn from_pair(inline: Option<&Secret>, file: Option<&String>) -> Value {
        match (inline, file) {
            (_, Some(f)) => Value::File(f.clone()),
            (Some(s), None) => Value::Inline(s.clone()),
            (None, None) => Value::Inline(Secret::default()),
        }
    }

    fn read(&self) -> Result<String, String> {
        match self {
            Value::Inline(s) => Ok(s.expose().to_string()),
            Value::File(f) => std::fs::read_to_string(f)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("reading {f}: {e}")),
        }
    }
}

impl HttpClientConfig {
    /// Checks the combination rules of Prometheus' common HTTP configuration.
    pub fn validate(&self) -> Result<(), String> {
        let bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            return Err(
                "http_config: at most one of bearer_token & bearer_token_file must be configured"
                    .into(),
            );
        }
        if self.basic_auth.is_some() && bearer {
            return Err("http_config: at most one of basic_auth, bearer_token & bearer_token_file must be configured".into());
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && b.username_file.is_some() {
                return Err("http_config: at most one of basic_auth username & username_file must be configured".into());
            }
            if b.password.is_some() && b.password_file.is_some() {
                return Err("http_config: at most one of basic_auth password & password_file must be configured".into());
            }
        }
        if let Some(a) = &self.authorization {
            if bearer {
                return Err("http_config: authorization is not compatible with bearer_token & bearer_token_file".into());
            }
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err("http_config: at most one of authorization credentials & credentials_file must be configured".into());
            }
            if a.kind.trim().eq_ignore_ascii_case("basic") {
                return Err(
                    "http_config: authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
                        .into(),
                );
            }
            if a.kind.trim().contains(char::is_whitespace) {
                return Err(format!(
                    "http_config: authorization type {:?} must be one word",
                    a.kind
                ));
            }
        }
        if self.basic_auth.is_some() && self.authorization.is_some() {
            return Err(
                "http_config: at most one of basic_auth & authorization must be configured".into(),
            );
        }
        let t = &self.tls_config;
        if t.cert_file.is_some() != t.key_file.is_some() {
            return Err(
                "http_config: tls_config: cert_file and key_file must be configured together"
                    .into(),
            );
        }
        if let Some(p) = &self.proxy_url {
            let u =
                reqwest::Url::parse(p).map_err(|e| format!("http_config: proxy_url {p:?}: {e}"))?;
            if !matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h") {
                return Err(format!(
                    "http_config: proxy_url {p:?}: unsupported scheme {:?}",
                    u.scheme()
                ));
            }
        }
        Ok(())
    }

    fn auth_source(&self) -> Option<AuthSource> {
        if let Some(b) = &self.basic_auth {
            let username = match &b.username_file {
                Some(f) => Value::File(f.clone()),
                None => Value::Inline(Secret::new(b.username.clone())),
            };
            return Some(AuthSource::Basic {
                username,
                password: Value::from_pair(b.password.as_ref(), b.password_file.as_ref()),
            });
        }
        if let Some(a) = &self.authorization {
            let scheme = if a.kind.trim().is_empty() {
                DEFAULT_AUTHORIZATION_TYPE.to_string()
            } else {
                a.kind.trim().to_string()
            };
            return Some(AuthSource::Scheme {
                scheme,
                credentials: Value::from_pair(a.credentials.as_ref(), a.credentials_file.as_ref()),
            });
        }
        if self.bearer_token.is_some() || self.bearer_token_file.is_some() {
            return Some(AuthSource::Scheme {
                scheme: DEFAULT_AUTHORIZATION_TYPE.to_string(),
                credentials: Value::from_pair(
                    self.bearer_token.as_ref(),
                    self.bearer_token_file.as_ref(),
                ),
            });
        }
        None
    }

    /// Validates and builds the client. `force_http1` is for channels that, like
    /// Alertmanager's webhook, always speak HTTP/1.1.
    pub fn build(&self, force_http1: bool) -> Result<HttpClient, String> {
        self.validate()?;
        let source = self.auth_source();
        // Files must exist now; their contents are read again at each request.
        if let Some(s) = &source {
            let (a, b) = match s {
                AuthSource::Basic { username, password } => (username, password),
                AuthSource::Scheme { credentials, .. } => (credentials, credentials),
            };
            a.read().map_err(|e| format!("http_config: {e}"))?;
            b.read().map_err(|e| format!("http_config: {e}"))?;
        }
        let mut b = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
            .timeout(DEFAULT_REQUEST_TIMEOUT)
            .redirect(if self.follow_redirects {
                reqwest::redirect::Policy::limited(MAX_REDIRECTS)
            } else {
                reqwest::redirect::Policy::none()
            });
        let http1_only = force_http1 || !self.enable_http2;
        if http1_only {
            b = b.http1_only();
        }
        b = match &self.proxy_url {
            Some(p) => b.proxy(
                reqwest::Proxy::all(p.as_str())
                    .map_err(|e| format!("http_config: proxy_url {p:?}: {e}"))?,
            ),
            None => b.no_proxy(),
        };
        if !self.tls_config.is_default() {
            let tls = rustls_config(&self.tls_config, !http1_only)?;
            b = b.tls_backend_preconfigured(tls);
        }
        let client = b
            .build()
            .map_err(|e| format!("http_config: building the HTTP client: {e}"))?;
        Ok(HttpClient {
            client,
            auth: source,
        })
    }
}

fn read_certs(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("http_config: tls_config: {what} {path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("http_config: tls_config: {what} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "http_config: tls_config: {what} {path}: no PEM certificate in the file"
        ));
    }
    Ok(certs)
}

fn rustls_config(t: &TlsConfig, http2: bool) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if t.insecure_skip_verify {
        Arc::new(AcceptAnyCert {
            provider: provider.clone(),
        })
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &t.ca_file {
            Some(f) => {
                for c in read_certs(f, "ca_file")? {
                    roots
                        .add(c)
                        .map_err(|e| format!("http_config: tls_config: ca_file {f}: {e}"))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for c in native.certs {
                    // Unparsable system certificates are skipped, as Go does.
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    return Err(
                        "http_config: tls_config: no system CA certificates found; set ca_file"
                            .into(),
                    );
                }
            }
        }
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| format!("http_config: tls_config: {e}"))?;
        match &t.server_name {
            Some(name) => {
                let name = ServerName::try_from(name.clone())
                    .map_err(|e| format!("http_config: tls_config: server_name {name:?}: {e}"))?;
                Arc::new(ServerNameOverride { inner, name })
            }
            None => inner,
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("http_config: tls_config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match (&t.cert_file, &t.key_file) {
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert, "cert_file")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("http_config: tls_config: key_file {key}: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("http_config: tls_config: client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake signatures
/// are still checked (so the session key belongs to whoever holds the certificate).
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `server_name`: the certificate is verified against the configured name instead of
/// the URL's host.
#[derive(Debug)]
struct ServerNameOverride {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ServerNameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client of one channel: reqwest with the configured TLS/proxy/redirects, plus the
/// `Authorization` header added to each request.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    auth: Option<AuthSource>,
}

/// A response read in full (up to [`MAX_RESPONSE_BYTES`]).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A bounded, single-line quote of the body for error messages.
    pub fn snippet(&self) -> String {
        body_snippet(&self.body)
    }

    /// The `Retry-After` header as a duration, when present and understood.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
    }

    /// 2xx → `Ok`; 429/5xx → transient (with `Retry-After`); other → permanent.
    /// `what` names the target in the message (never the URL).
    pub fn check(&self, what: &str) -> Result<(), ChannelError> {
        classify_status(self.status, self.retry_after(), &self.snippet(), what)
    }
}

/// The classification every HTTP channel uses.
pub fn classify_status(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    snippet: &str,
    what: &str,
) -> Result<(), ChannelError> {
    if status.is_success() {
        return Ok(());
    }
    let message = if snippet.is_empty() {
        format!("{what}: HTTP {status}")
    } else {
        format!("{what}: HTTP {status}: {snippet}")
    };
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(ChannelError::Transient {
            message,
            retry_after,
        })
    } else {
        Err(ChannelError::Permanent(message))
    }
}

/// `Retry-After`: delay seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.signed_duration_since(chrono::Utc::now());
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The first [`BODY_SNIPPET_BYTES`] of a body as one line of text (cut on a character
/// boundary, `…` when cut).
pub fn body_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.len() <= BODY_SNIPPET_BYTES {
        return one_line;
    }
    let mut end = BODY_SNIPPET_BYTES;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &one_line[..end])
}

/// A reqwest error as text without the URL, with its causes.
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

impl HttpClient {
    /// Starts a request (no auth yet: [`HttpClient::send`] adds it).
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    fn authorization(&self) -> Result<Option<HeaderValue>, ChannelError> {
        let Some(a) = &self.auth else {
            return Ok(None);
        };
        let value = match a {
            AuthSource::Basic { username, password } => {
                let u = username.read().map_err(ChannelError::transient)?;
                let p = password.read().map_err(ChannelError::transient)?;
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            }
            AuthSource::Scheme {
                scheme,
                credentials,
            } => {
                let c = credentials.read().map_err(ChannelError::transient)?;
                format!("{scheme} {c}")
            }
        };
        let mut v = HeaderValue::from_str(&value).map_err(|_| {
            ChannelError::permanent("http_config: credentials are not a valid header value")
        })?;
        v.set_sensitive(true);
        Ok(Some(v))
    }

    /// Sends the request (adding the configured `Authorization`) and reads the whole
    /// response. Connection errors and time-outs are transient; any status is returned
    /// (see [`HttpResponse::check`]). `what` names the target in error messages.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<HttpResponse, ChannelError> {
        let req = match self.authorization()? {
            Some(v) => req.header(reqwest::header::AUTHORIZATION, v),
            None => req,
        };
        let mut resp = req.send().await.map_err(|e| {
            let e = e.without_url();
            if e.is_builder() {
                ChannelError::permanent(format!("{what}: {}", describe(&e)))
            } else {
                ChannelError::transient(format!("{what}: {}", describe(&e)))
            }
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_RESPONSE_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let e = e.without_url();
                    return Err(ChannelError::transient(format!(
                        "{what}: reading the response: {}",
                        describe(&e)
                    )));
                }
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// The host (and port) of a URL, for error messages that must not show the URL itself.
pub fn url_host(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => "?".into(),
        },
        Err(_) => "?".into(),
    }
}

/// Checks a URL given in the configuration: absolute, `http` or `https`, with a host.
pub fn validate_url(field: &str, url: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("{field}: invalid URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "{field}: unsupported scheme {:?} (http or https)",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field}: URL has no host"));
    }
    Ok(u)
}

/// Reads a `*_file` secret (trimmed), naming the field in errors.
pub fn read_secret_file(field: &str, path: &str) -> Result<Secret, String> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim()))
        .map_err(|e| format!("{field}: reading {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> HttpClientConfig {
        serde_yaml_ng::from_str(yaml).expect("yaml")
    }

    #[test]
    fn defaults_follow_redirects_and_http2() {
        let c = cfg("{}");
        assert!(c.follow_redirects);
        assert!(c.enable_http2);
        assert_eq!(c, HttpClientConfig::default());
    }

    #[test]
    fn at_most_one_auth_method() {
        let both = cfg("basic_auth: {username: a, password: b}\nbearer_token: t\n");
        assert!(
            both.validate()
                .unwrap_err()
                .contains("at most one of basic_auth")
        );
        let auth_and_bearer = cfg("authorization: {credentials: x}\nbearer_token_file: /f\n");
        assert!(
            auth_and_bearer
                .validate()
                .unwrap_err()
                .contains("not compatible with bearer_token")
        );
        let basic_and_auth = cfg("basic_auth: {username: a}\nauthorization: {credentials: x}\n");
        assert!(
            basic_and_auth
                .validate()
                .unwrap_err()
                .contains("basic_auth & authorization")
        );
        let two_passwords = cfg("basic_auth: {username: a, password: b, password_file: /p}\n");
        assert!(
            two_passwords
                .validate()
                .unwrap_err()
                .contains("password & password_file")
        );
        let basic_type = cfg("authorization: {type: Basic, credentials: x}\n");
        assert!(
            basic_type
                .validate()
                .unwrap_err()
                .contains("use \"basic_auth\"")
        );
        let unknown = serde_yaml_ng::from_str::<HttpClientConfig>("oauth2: {}\n");
        assert!(unknown.is_err());
    }

    #[test]
    fn cert_needs_key() {
        let c = cfg("tls_config: {cert_file: /c.pem}\n");
        assert!(c.validate().unwrap_err().contains("cert_file and key_file"));
    }

    #[test]
    fn secrets_are_not_serialized() {
        let c = cfg("authorization: {credentials: hunter2}\n");
        let out = serde_yaml_ng::to_string(&c).unwrap();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("<secret>"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn status_classification() {
        use reqwest::StatusCode as S;
        assert!(classify_status(S::NO_CONTENT, None, "", "t").is_ok());
        let e = classify_status(
            S::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(7)),
            "busy",
            "t",
        )
        .unwrap_err();
        assert_eq!(
            e,
            ChannelError::Transient {
                message: "t: HTTP 503 Service Unavailable: busy".into(),
                retry_after: Some(Duration::from_secs(7)),
            }
        );
        assert!(
            classify_status(S::TOO_MANY_REQUESTS, None, "", "t")
                .unwrap_err()
                .is_transient()
        );
        assert!(
            !classify_status(S::NOT_FOUND, None, "", "t")
                .unwrap_err()
                .is_transient()
        );
        assert!(
            !classify_status(S::UNAUTHORIZED, None, "", "t")
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn snippet_is_bounded_and_utf8() {
        let body = "错".repeat(400);
        let s = body_snippet(body.as_bytes());
        assert!(s.len() <= BODY_SNIPPET_BYTES + '…'.len_utf8());
        assert!(s.ends_with('…'));
        assert_eq!(body_snippet(b"a\n  b"), "a b");
    }
}
