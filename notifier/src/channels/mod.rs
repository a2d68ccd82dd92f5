//! The channels a receiver fans out to: one module per kind. Each kind has its
//! configuration struct (Alertmanager's field names where Alertmanager has the kind)
//! and a [`Channel`] built from it; [`build_receiver`] makes every channel of one
//! receiver.

pub mod email;
pub mod http;
pub mod sms;
pub mod webhook;
pub mod wecom;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::NotifierError;
use crate::config::{GlobalConfig, ReceiverConfig};
use crate::notification::Notification;
use crate::template::Templates;

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChannelError {
    /// Worth retrying (network errors, 5xx, 429, WeCom 45009…); `retry_after` when the
    /// other side said how long to wait.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (4xx, invalid key, bad template output…).
    #[error("{0}")]
    Permanent(String),
}

impl ChannelError {
    pub fn transient(message: impl Into<String>) -> Self {
        ChannelError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ChannelError::Permanent(message.into())
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, ChannelError::Transient { .. })
    }
}

/// A channel with its name in the notification log (`webhook/0`, `email/1`…).
pub type NamedChannel = (String, std::sync::Arc<dyn Channel>);

/// One configured delivery target (one entry of `webhook_configs`, `email_configs`…).
pub trait Channel: Send + Sync {
    /// `email`, `sms`, `webhook` or `wecom`.
    fn kind(&self) -> &'static str;
    /// Whether resolved notifications go out through this channel (`send_resolved`).
    fn send_resolved(&self) -> bool;
    /// Delivers one notification (one attempt; the dispatcher retries transient
    /// failures). Resolved alerts are in `n.alerts` only when `send_resolved()`.
    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), ChannelError>>;
}

/// Every channel of one receiver, in the order `email_configs`, `sms_configs`,
/// `webhook_configs`, `wecom_configs` (each in file order), with its name in the
/// notification log: `webhook/0`, `email/1`….
pub fn build_receiver(
    r: &ReceiverConfig,
    global: &GlobalConfig,
    templates: &Templates,
) -> Result<Vec<NamedChannel>, NotifierError> {
    let mut out: Vec<NamedChannel> = Vec::new();
    let ctx = |kind: &str, i: usize| format!("receiver {:?}: {kind}_configs[{i}]", r.name);
    for (i, c) in r.email_configs.iter().enumerate() {
        let ch = email::EmailChannel::new(c, global, templates)
            .map_err(|e| NotifierError::Config(format!("{}: {e}", ctx("email", i))))?;
        out.push((format!("email/{i}"), std::sync::Arc::new(ch)));
    }
    for (i, c) in r.sms_configs.iter().enumerate() {
        let ch = sms::SmsChannel::new(c, global, templates)
            .map_err(|e| NotifierError::Config(format!("{}: {e}", ctx("sms", i))))?;
        out.push((format!("sms/{i}"), std::sync::Arc::new(ch)));
    }
    for (i, c) in r.webhook_configs.iter().enumerate() {
        let ch = webhook::WebhookChannel::new(c, global, templates)
            .map_err(|e| NotifierError::Config(format!("{}: {e}", ctx("webhook", i))))?;
        out.push((format!("webhook/{i}"), std::sync::Arc::new(ch)));
    }
    for (i, c) in r.wecom_configs.iter().enumerate() {
        let ch = wecom::WecomChannel::new(c, global, templates)
            .map_err(|e| NotifierError::Config(format!("{}: {e}", ctx("wecom", i))))?;
        out.push((format!("wecom/{i}"), std::sync::Arc::new(ch)));
    }
    Ok(out)
}
