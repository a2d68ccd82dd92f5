//! The WeCom (企业微信) group robot channel (`wecom_configs`): a rendered `text` or
//! `markdown` message POSTed to the robot's webhook, within WeCom's documented limits
//! ("群机器人配置说明"):
//!
//! - `text.content` at most 2048 bytes, `markdown.content` at most 4096 bytes of UTF-8.
//!   Longer content is cut on a character boundary and ends with [`TRUNCATION_MARKER`]
//!   (WeCom itself rejects it with errcode 40058).
//! - at most 20 messages per minute per robot. The channel never drops a message for
//!   this: it keeps a sliding one-minute window per robot URL (shared by every channel
//!   that posts to the same robot), and while it waits for room, notifications queue up;
//!   the next send merges everything queued that fits within the byte limit into one
//!   message (separated by [`MERGE_SEPARATOR`]; mention lists are united), so nothing is
//!   lost. A `notify` call returns when the message holding its content was accepted.
//! - errcode 0 is success (an HTTP 200 with another errcode is a failure); 45009 ("api
//!   freq out of limit") closes the robot's window for one period and the send is tried
//!   again, up to [`MAX_RATE_LIMIT_RETRIES`] times, then reported as transient with the
//!   period as `retry_after`; -1 (system busy) is transient; everything else — 93000
//!   "invalid webhook url", 40008 bad msgtype, 40058 invalid parameter… — is permanent,
//!   and the message names the errcode and WeCom's errmsg.
//!
//! Markdown messages cannot carry `mentioned_list`; its user ids are written into the
//! content as `<@userid>` (WeCom's extended syntax). `mentioned_mobile_list` needs
//! `msg_type: text`. If a caller drops a `notify` future while its content is queued,
//! the content is still sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::http::{HttpClient, HttpClientConfig, Secret, validate_url};
use super::{Channel, ChannelError};
use crate::config::GlobalConfig;
use crate::notification::Notification;
use crate::template::{CompiledTemplate, TemplateData, Templates};

/// WeCom's limit on `text.content`, bytes of UTF-8.
pub const TEXT_MAX_BYTES: usize = 2048;
/// WeCom's limit on `markdown.content`, bytes of UTF-8.
pub const MARKDOWN_MAX_BYTES: usize = 4096;
/// WeCom's limit: messages per minute per robot.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 20;
/// The period `rate_limit_per_minute` counts over.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Appended to content cut at the byte limit.
pub const TRUNCATION_MARKER: &str = "\n…(truncated)";
/// Between the contents of queued notifications merged into one message.
pub const MERGE_SEPARATOR: &str = "\n\n";
/// Times a message answered with 45009 is tried again after waiting out the window.
pub const MAX_RATE_LIMIT_RETRIES: u32 = 3;
/// Default `message` for `msg_type: markdown`.
pub const DEFAULT_MARKDOWN_MESSAGE: &str = r#"{{ template "wecom.default.message" . }}"#;
/// Default `message` for `msg_type: text`.
pub const DEFAULT_TEXT_MESSAGE: &str = r#"{{ template "wecom.default.text" . }}"#;

/// errcode: success.
pub const ERRCODE_OK: i64 = 0;
/// errcode: system busy, try later.
pub const ERRCODE_BUSY: i64 = -1;
/// errcode: api freq out of limit.
pub const ERRCODE_RATE_LIMITED: i64 = 45009;
/// errcode: invalid webhook url (unknown or removed key).
pub const ERRCODE_INVALID_WEBHOOK: i64 = 93000;
/// errcode: invalid request parameter (e.g. content over the byte limit).
pub const ERRCODE_INVALID_PARAMETER: i64 = 40058;

fn default_true() -> bool {
    true
}

fn default_rate() -> u32 {
    DEFAULT_RATE_LIMIT_PER_MINUTE
}

/// `msg_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WecomMsgType {
    Text,
    #[default]
    Markdown,
}

impl WecomMsgType {
    /// The content limit WeCom documents for this type.
    pub fn max_bytes(self) -> usize {
        match self {
            WecomMsgType::Text => TEXT_MAX_BYTES,
            WecomMsgType::Markdown => MARKDOWN_MAX_BYTES,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            WecomMsgType::Text => "text",
            WecomMsgType::Markdown => "markdown",
        }
    }
}

/// One entry of `wecom_configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomConfig {
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// The robot's whole webhook URL (`…/cgi-bin/webhook/send?key=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<Secret>,
    /// The robot's key; the request goes to `<api_url>?key=<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    /// With `key`: the send endpoint; `global.wecom_api_url` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default)]
    pub msg_type: WecomMsgType,
    /// Template of the content; a default per `msg_type` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// User ids to @ (`@all` for everyone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentioned_list: Vec<String>,
    /// Mobile numbers to @ (text messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentioned_mobile_list: Vec<String>,
    /// The receiver's client settings; `global.http_config` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// Messages per minute this robot accepts.
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
}

/// Cuts `s` to at most `max` bytes on a character boundary, ending with
/// [`TRUNCATION_MARKER`] when cut.
pub fn truncate_utf8(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    if max < TRUNCATION_MARKER.len() {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        return s[..end].to_string();
    }
    let mut end = max - TRUNCATION_MARKER.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATION_MARKER}", &s[..end])
}

/// The sliding window of one robot: when its last messages went out.
#[derive(Debug, Default)]
struct RateWindow {
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// Windows by robot URL, shared by every channel of the process.
static WINDOWS: LazyLock<Mutex<HashMap<String, RateWindow>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock_windows() -> std::sync::MutexGuard<'static, HashMap<String, RateWindow>> {
    WINDOWS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One notification's content waiting to be sent.
struct Pending {
    content: String,
    mentioned: Vec<String>,
    mobiles: Vec<String>,
    done: oneshot::Sender<Result<(), ChannelError>>,
}

/// A message made of one or more pending contents.
struct Batch {
    content: String,
    mentioned: Vec<String>,
    mobiles: Vec<String>,
    waiters: Vec<oneshot::Sender<Result<(), ChannelError>>>,
}

fn union(into: &mut Vec<String>, more: &[String]) {
    for m in more {
        if !into.contains(m) {
            into.push(m.clone());
        }
    }
}

enum Outcome {
    Sent,
    RateLimited(String),
    Failed(ChannelError),
}

#[derive(Deserialize)]
struct WecomResponse {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

struct Inner {
    url: String,
    client: HttpClient,
    msg_type: WecomMsgType,
    limit: usize,
    window: Duration,
    queue: Mutex<VecDeque<Pending>>,
    sending: tokio::sync::Mutex<()>,
}

/// A WeCom group robot target.
pub struct WecomChannel {
    inner: Arc<Inner>,
    template: CompiledTemplate,
    mentioned: Vec<String>,
    mobiles: Vec<String>,
    send_resolved: bool,
}

impl WecomChannel {
    pub fn new(c: &WecomConfig, g: &GlobalConfig, t: &Templates) -> Result<Self, String> {
        let url = match (&c.webhook_url, &c.key) {
            (Some(_), Some(_)) => {
                return Err("at most one of webhook_url & key must be configured".into());
            }
            (None, None) => return Err("one of webhook_url or key must be configured".into()),
            (Some(u), None) => {
                if c.api_url.is_some() {
                    return Err("api_url goes with key, not with webhook_url".into());
                }
                validate_url("webhook_url", u.expose())?;
                u.expose().to_string()
            }
            (None, Some(k)) => {
                let key = k.expose().trim();
                if key.is_empty() {
                    return Err("key is empty".into());
                }
                let api = c.api_url.as_deref().unwrap_or(g.wecom_api_url.as_str());
                let mut u = validate_url("api_url", api)?;
                u.query_pairs_mut().append_pair("key", key);
                u.to_string()
            }
        };
        if c.rate_limit_per_minute == 0 {
            return Err("rate_limit_per_minute must be at least 1".into());
        }
        if c.msg_type == WecomMsgType::Markdown && !c.mentioned_mobile_list.is_empty() {
            return Err("mentioned_mobile_list needs msg_type: text (markdown messages mention by <@userid> in the content)".into());
        }
        let text = c.message.as_deref().unwrap_or(match c.msg_type {
            WecomMsgType::Text => DEFAULT_TEXT_MESSAGE,
            WecomMsgType::Markdown => DEFAULT_MARKDOWN_MESSAGE,
        });
        let template = t.compile("message", text).map_err(|e| e.to_string())?;
        let http = c.http_config.as_ref().unwrap_or(&g.http_config);
        let client = http.build(false)?;
        Ok(WecomChannel {
            inner: Arc::new(Inner {
                url,
                client,
                msg_type: c.msg_type,
                limit: c.rate_limit_per_minute as usize,
                window: RATE_WINDOW,
                queue: Mutex::new(VecDeque::new()),
                sending: tokio::sync::Mutex::new(()),
            }),
            template,
            mentioned: c.mentioned_list.clone(),
            mobiles: c.mentioned_mobile_list.clone(),
            send_resolved: c.send_resolved,
        })
    }

    /// Counts `rate_limit_per_minute` over `window` instead of a minute (for tests and
    /// WeCom-compatible gateways with another period). Call before the first notify.
    pub fn with_rate_window(mut self, window: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.window = window;
        }
        self
    }

    /// The content this channel sends for `n` (rendered, mentions added, cut to the
    /// limit).
    pub fn render(&self, n: &Notification) -> Result<String, ChannelError> {
        let body = self
            .template
            .render(&TemplateData::new(n))
            .map_err(|e| ChannelError::permanent(format!("wecom: {e}")))?;
        let body = match self.inner.msg_type {
            WecomMsgType::Markdown if !self.mentioned.is_empty() => {
                let tags: Vec<String> = self.mentioned.iter().map(|m| format!("<@{m}>")).collect();
                format!("{}\n{body}", tags.join(" "))
            }
            _ => body,
        };
        if body.trim().is_empty() {
            return Err(ChannelError::permanent("wecom: the message rendered empty"));
        }
        Ok(truncate_utf8(&body, self.inner.msg_type.max_bytes()))
    }

    async fn deliver(&self, n: &Notification) -> Result<(), ChannelError> {
        let content = self.render(n)?;
        let (tx, mut rx) = oneshot::channel();
        let pending = Pending {
            content,
            mentioned: match self.inner.msg_type {
                WecomMsgType::Text => self.mentioned.clone(),
                WecomMsgType::Markdown => Vec::new(),
            },
            mobiles: self.mobiles.clone(),
            done: tx,
        };
        self.inner
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(pending);
        loop {
            tokio::select! {
                biased;
                r = &mut rx => {
                    return r.unwrap_or_else(|_| Err(ChannelError::transient(
                        "wecom: the send carrying this message was interrupted",
                    )));
                }
                guard = self.inner.sending.lock() => {
                    self.inner.pump().await;
                    drop(guard);
                }
            }
        }
    }
}

impl Inner {
    /// Waits until the robot's window has room, and takes the slot (returns its time).
    async fn take_slot(&self) -> Instant {
        loop {
            let wait = {
                let mut all = lock_windows();
                let w = all.entry(self.url.clone()).or_default();
                let now = Instant::now();
                while w
                    .sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    w.sent.pop_front();
                }
                match (w.blocked_until, w.sent.front()) {
                    (Some(until), _) if until > now => until - now,
                    (_, Some(oldest)) if w.sent.len() >= self.limit => {
                        (*oldest + self.window).saturating_duration_since(now)
                    }
                    _ => {
                        w.blocked_until = None;
                        w.sent.push_back(now);
                        return now;
                    }
                }
            };
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "wecom: robot rate window full, waiting"
            );
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Moves a slot taken at `taken` to now, once the response is in: WeCom counted
    /// the message somewhere in between, so counting it from the response's arrival
    /// never frees the slot before WeCom does.
    fn refresh_slot(&self, taken: Instant) {
        let mut all = lock_windows();
        if let Some(w) = all.get_mut(&self.url) {
            if let Some(slot) = w.sent.iter_mut().find(|t| **t == taken) {
                *slot = Instant::now();
            }
            w.sent.make_contiguous().sort();
        }
    }

    fn block_window(&self) {
        let mut all = lock_windows();
        let w = all.entry(self.url.clone()).or_default();
        w.blocked_until = Some(Instant::now() + self.window);
    }

    /// Takes what is queued and fits into one message.
    fn next_batch(&self) -> Option<Batch> {
        let max = self.msg_type.max_bytes();
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let first = q.pop_front()?;
        let mut b = Batch {
            content: first.content,
            mentioned: first.mentioned,
            mobiles: first.mobiles,
            waiters: vec![first.done],
        };
        while let Some(next) = q.front() {
            if b.content.len() + MERGE_SEPARATOR.len() + next.content.len() > max {
                break;
            }
            let Some(next) = q.pop_front() else { break };
            b.content.push_str(MERGE_SEPARATOR);
            b.content.push_str(&next.content);
            union(&mut b.mentioned, &next.mentioned);
            union(&mut b.mobiles, &next.mobiles);
            b.waiters.push(next.done);
        }
        Some(b)
    }

    /// Sends one message made of what is queued, when the window allows.
    async fn pump(&self) {
        let mut slot = self.take_slot().await;
        let Some(batch) = self.next_batch() else {
            // Nothing queued any more: give the slot back.
            let mut all = lock_windows();
            if let Some(w) = all.get_mut(&self.url) {
                w.sent.retain(|t| *t != slot);
            }
            return;
        };
        let merged = batch.waiters.len();
        let mut tries = 0;
        let result = loop {
            let outcome = self.send_once(&batch).await;
            self.refresh_slot(slot);
            match outcome {
                Outcome::Sent => break Ok(()),
                Outcome::Failed(e) => break Err(e),
                Outcome::RateLimited(msg) => {
                    tracing::warn!(merged, tries, errmsg = %msg, "wecom: robot answered 45009, waiting for the window");
                    self.block_window();
                    if tries >= MAX_RATE_LIMIT_RETRIES {
                        break Err(ChannelError::Transient {
                            message: format!("wecom: errcode {ERRCODE_RATE_LIMITED}: {msg}"),
                            retry_after: Some(self.window),
                        });
                    }
                    tries += 1;
                    slot = self.take_slot().await;
                }
            }
        };
        match &result {
            Ok(()) => tracing::debug!(
                merged,
                bytes = batch.content.len(),
                "wecom: message delivered"
            ),
            Err(e) => {
                tracing::warn!(merged, transient = e.is_transient(), error = %e, "wecom: message failed")
            }
        }
        for w in batch.waiters {
            let _ = w.send(result.clone());
        }
    }

    fn body(&self, b: &Batch) -> serde_json::Value {
        let mut inner = serde_json::Map::new();
        inner.insert("content".into(), b.content.clone().into());
        if !b.mentioned.is_empty() {
            inner.insert("mentioned_list".into(), b.mentioned.clone().into());
        }
        if !b.mobiles.is_empty() {
            inner.insert("mentioned_mobile_list".into(), b.mobiles.clone().into());
        }
        let kind = self.msg_type.as_str();
        serde_json::json!({ "msgtype": kind, kind: inner })
    }

    async fn send_once(&self, b: &Batch) -> Outcome {
        let what = "wecom";
        let req = self
            .client
            .request(reqwest::Method::POST, &self.url)
            .json(&self.body(b));
        let resp = match self.client.send(req, what).await {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e),
        };
        if let Err(e) = resp.check(what) {
            return Outcome::Failed(e);
        }
        let parsed: WecomResponse = match serde_json::from_slice(&resp.body) {
            Ok(p) => p,
            Err(_) => {
                return Outcome::Failed(ChannelError::permanent(format!(
                    "wecom: HTTP {} without WeCom's errcode JSON: {}",
                    resp.status,
                    resp.snippet()
                )));
            }
        };
        match parsed.errcode {
            ERRCODE_OK => Outcome::Sent,
            ERRCODE_RATE_LIMITED => Outcome::RateLimited(parsed.errmsg),
            ERRCODE_BUSY => Outcome::Failed(ChannelError::transient(format!(
                "wecom: errcode {}: {}",
                parsed.errcode, parsed.errmsg
            ))),
            code => Outcome::Failed(ChannelError::permanent(format!(
                "wecom: errcode {code}: {}",
                parsed.errmsg
            ))),
        }
    }
}

impl Channel for WecomChannel {
    fn kind(&self) -> &'static str {
        "wecom"
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
    fn truncation_keeps_utf8_and_limit() {
        let s = "告警".repeat(1000); // 6000 bytes
        let t = truncate_utf8(&s, TEXT_MAX_BYTES);
        assert!(t.len() <= TEXT_MAX_BYTES, "{}", t.len());
        assert!(t.ends_with(TRUNCATION_MARKER));
        let kept = t.strip_suffix(TRUNCATION_MARKER).unwrap();
        assert!(kept.chars().all(|c| c == '告' || c == '警'));
        // Every whole character that fits is kept.
        assert!(kept.len() + 3 > TEXT_MAX_BYTES - TRUNCATION_MARKER.len());
        assert_eq!(truncate_utf8("short", 10), "short");
        let exact = "a".repeat(MARKDOWN_MAX_BYTES);
        assert_eq!(truncate_utf8(&exact, MARKDOWN_MAX_BYTES), exact);
    }

    #[test]
    fn config_defaults() {
        let c: WecomConfig = serde_yaml_ng::from_str("key: abc\n").unwrap();
        assert_eq!(c.msg_type, WecomMsgType::Markdown);
        assert!(c.send_resolved);
        assert_eq!(c.rate_limit_per_minute, 20);
        assert!(serde_yaml_ng::from_str::<WecomConfig>("key: a\nmsg_type: image\n").is_err());
    }
}
