//! The email channel. (skeleton: owned by the channels work)

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Channel, ChannelError};
use crate::config::GlobalConfig;
use crate::notification::Notification;
use crate::template::Templates;

/// One entry of `email_configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub url: String,
}

pub struct EmailChannel {}

impl EmailChannel {
    pub fn new(_c: &EmailConfig, _g: &GlobalConfig, _t: &Templates) -> Result<Self, String> {
        Err("email channel not built yet".into())
    }
}

impl Channel for EmailChannel {
    fn kind(&self) -> &'static str {
        "email"
    }
    fn send_resolved(&self) -> bool {
        true
    }
    fn notify<'a>(&'a self, _n: &'a Notification) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async { Err(ChannelError::permanent("not built")) })
    }
}
