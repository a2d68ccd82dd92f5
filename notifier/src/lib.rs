//! The notifier: routing, grouping, dedup and fan-out to email, SMS, webhook and WeCom.
//!
//! Alerts arrive on `argus.alerts` (from the rule engine and `POST /api/v2/alerts`);
//! the [`route`] tree (Alertmanager's configuration format, [`config`]) sends each to
//! aggregation groups ([`dispatch`]), whose flushes drop silenced and inhibited alerts,
//! consult the notification log ([`nflog`], replayed from `argus.notifications`) to
//! dedup and repeat as Alertmanager does, and fan out to every channel of the receiver
//! ([`channels`]) with retries. Every attempt and outcome is a record on
//! `argus.notifications`.

pub mod channels;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod metrics;
pub mod nflog;
pub mod notification;
pub mod route;
pub mod service;
pub mod template;
pub mod timeinterval;

pub use error::NotifierError;
pub use notification::{Notification, NotifyAlert};
