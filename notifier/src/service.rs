//! The notifier as a running component: the `notifier:` section of Argus'
//! configuration ([`NotifierConfig`]), loading and checking the Alertmanager-format
//! routing file, building every receiver's channels, replaying the notification log and
//! starting the [`Dispatcher`]; and the notifier's HTTP API
//! (`GET /api/v1/notifications`: the notification history; `GET /api/v1/notifier/groups`:
//! the aggregation groups).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use argus_bus::EventLog;
use argus_rules::alert_store::AlertStore;
use argus_schemas::duration::serde_duration;
use argus_schemas::{NotificationOutcome, Timestamp};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::NotifierError;
use crate::channels::build_receiver;
use crate::config::AlertmanagerFile;
use crate::dispatch::{Dispatcher, DispatcherSetup, Receiver, RetryPolicy};
use crate::nflog::{HistoryFilter, NflogOptions, NotificationLog};
use crate::route::RouteTree;
use crate::template::Templates;
use crate::timeinterval::TimeIntervals;

/// Default `notifier.external_url` (Alertmanager's default listen address).
pub const DEFAULT_EXTERNAL_URL: &str = "http://localhost:9093";
/// Default `notifier.claim_timeout`.
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `notifier.sync_interval`: how often records of other instances are read.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// `notifier:` in Argus' configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifierConfig {
    /// An Alertmanager configuration file (route, receivers, inhibit_rules,
    /// time_intervals, templates); relative paths are relative to Argus' config file.
    pub config_file: Option<PathBuf>,
    /// The same document inline (instead of `config_file`).
    pub config: Option<serde_yaml_ng::Value>,
    /// Links in notifications point here (Alertmanager's `--web.external-url`).
    pub external_url: String,
    /// This instance's name in the notification log (claims): unique per running
    /// instance and the same across its restarts; default: `<host name>:<data dir>`.
    pub instance: Option<String>,
    /// A claim with no outcome after it stops holding others back after this long.
    #[serde(with = "serde_duration")]
    pub claim_timeout: Duration,
    /// How often records other instances write are read.
    #[serde(with = "serde_duration")]
    pub sync_interval: Duration,
    /// First retry wait (grows ×1.5 up to `retry_max`, ±50% jitter).
    #[serde(with = "serde_duration")]
    pub retry_initial: Duration,
    #[serde(with = "serde_duration")]
    pub retry_max: Duration,
    /// Attempts kept in memory for `GET /api/v1/notifications`.
    pub history: usize,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        let r = RetryPolicy::default();
        NotifierConfig {
            config_file: None,
            config: None,
            external_url: DEFAULT_EXTERNAL_URL.into(),
            instance: None,
            claim_timeout: DEFAULT_CLAIM_TIMEOUT,
            sync_interval: DEFAULT_SYNC_INTERVAL,
            retry_initial: r.initial,
            retry_max: r.max,
            history: crate::nflog::DEFAULT_HISTORY,
        }
    }
}

/// A checked notifier configuration, ready to start.
pub struct ValidNotifierConfig {
    pub settings: NotifierConfig,
    pub file: AlertmanagerFile,
    pub routes: Arc<RouteTree>,
    pub intervals: Arc<TimeIntervals>,
    pub receivers: HashMap<String, Arc<Receiver>>,
}

impl NotifierConfig {
    /// Loads the routing file (or the inline document), checks it, parses templates and
    /// builds every channel; errors name the file and what is wrong.
    pub fn validate(&self, base_dir: Option<&Path>) -> Result<ValidNotifierConfig, NotifierError> {
        if self.external_url.is_empty() {
            return Err(NotifierError::Config(
                "notifier.external_url must not be empty".into(),
            ));
        }
        if self.claim_timeout.is_zero() || self.sync_interval.is_zero() {
            return Err(NotifierError::Config(
                "notifier.claim_timeout and notifier.sync_interval must be positive".into(),
            ));
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            return Err(NotifierError::Config(
                "notifier.retry_initial must be positive and not above notifier.retry_max".into(),
            ));
        }
        let (file, file_dir) = match (&self.config_file, &self.config) {
            (Some(_), Some(_)) => {
                return Err(NotifierError::Config(
                    "notifier: give config_file or config, not both".into(),
                ));
            }
            (Some(p), None) => {
                let path = match base_dir {
                    Some(b) if p.is_relative() => b.join(p),
                    _ => p.clone(),
                };
                let f = AlertmanagerFile::load(&path)?;
                (f, path.parent().map(Path::to_path_buf))
            }
            (None, Some(v)) => {
                let text = serde_yaml_ng::to_string(v)
                    .map_err(|e| NotifierError::Config(format!("notifier.config: {e}")))?;
                (
                    AlertmanagerFile::parse(&text, "notifier.config")?,
                    base_dir.map(Path::to_path_buf),
                )
            }
            (None, None) => (
                AlertmanagerFile::parse(DEFAULT_ROUTING, "the default routing")?,
                base_dir.map(Path::to_path_buf),
            ),
        };
        file.validate()?;
        let routes = Arc::new(RouteTree::new(&file)?);
        let intervals = Arc::new(TimeIntervals::from_file(&file));
        let templates = Templates::load(&file.templates, file_dir.as_deref())?;
        let mut receivers = HashMap::new();
        for r in &file.receivers {
            let channels = build_receiver(r, &file.global, &templates)?;
            receivers.insert(
                r.name.clone(),
                Arc::new(Receiver {
                    name: r.name.clone(),
                    channels,
                }),
            );
        }
        Ok(ValidNotifierConfig {
            settings: self.clone(),
            file,
            routes,
            intervals,
            receivers,
        })
    }
}

/// With no routing configured: every alert to one receiver with no channels (alerts are
/// grouped and visible in the API; nothing is sent).
pub const DEFAULT_ROUTING: &str = "route:\n  receiver: default\nreceivers:\n- name: default\n";

/// The running notifier.
pub struct NotifierService {
    dispatcher: Dispatcher,
    nflog: NotificationLog,
}

impl NotifierService {
    /// Replays the notification log and starts dispatching the store's alerts; runs
    /// until `stop` turns true.
    pub async fn start(
        log: EventLog,
        cfg: ValidNotifierConfig,
        store: Arc<AlertStore>,
        tenant: &str,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, NotifierError> {
        let s = &cfg.settings;
        let instance = s
            .instance
            .clone()
            .unwrap_or_else(|| default_instance(Path::new(".")));
        let claims = !matches!(log, EventLog::Embedded(_));
        let nflog = NotificationLog::open(
            log,
            NflogOptions {
                tenant: tenant.to_string(),
                instance,
                retention: crate::nflog::DEFAULT_RETENTION,
                claim_timeout: s.claim_timeout,
                claims,
                history: s.history,
            },
        )
        .await?;
        nflog.follow(s.sync_interval, stop.clone());
        let dispatcher = Dispatcher::start(
            DispatcherSetup {
                routes: cfg.routes.clone(),
                receivers: cfg.receivers,
                intervals: cfg.intervals.clone(),
                retry: RetryPolicy {
                    initial: s.retry_initial,
                    max: s.retry_max,
                    ..RetryPolicy::default()
                },
                external_url: s.external_url.clone(),
            },
            store,
            nflog.clone(),
            stop,
        );
        Ok(NotifierService { dispatcher, nflog })
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    pub fn nflog(&self) -> &NotificationLog {
        &self.nflog
    }

    /// `GET /api/v1/notifications` and `GET /api/v1/notifier/groups`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/notifications", get(history))
            .route("/api/v1/notifier/groups", get(groups))
            .with_state(self.dispatcher.clone())
    }
}

/// `<host name>:<data dir>`: unique per instance on a host, stable across restarts.
pub fn default_instance(data_dir: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "argus".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!("{host}:{}", dir.display())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    group_key: Option<String>,
    receiver: Option<String>,
    channel: Option<String>,
    outcome: Option<String>,
    fingerprint: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

fn bad(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"status": "error", "errorType": "bad_data", "error": msg})),
    )
        .into_response()
}

async fn history(
    State(d): State<Dispatcher>,
    q: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad(format!("invalid query parameters: {e}")),
    };
    let outcome = match q.outcome.as_deref() {
        None => None,
        Some(o) => match serde_json::from_value::<NotificationOutcome>(serde_json::json!(o)) {
            Ok(o) => Some(o),
            Err(_) => {
                return bad(format!(
                    "invalid outcome {o:?}: want started, sent, transient_failure or permanent_failure"
                ));
            }
        },
    };
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => match Timestamp::parse(s) {
            Ok(t) => Some(t),
            Err(e) => return bad(format!("invalid since {s:?}: {e}")),
        },
    };
    let items = d.nflog().history(&HistoryFilter {
        group_key: q.group_key,
        receiver: q.receiver,
        channel: q.channel,
        outcome,
        fingerprint: q.fingerprint,
        since,
        limit: Some(q.limit.unwrap_or(1000)),
    });
    let data: Vec<serde_json::Value> = items
        .iter()
        .map(|h| {
            let mut v = serde_json::to_value(&h.attempt).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "time".into(),
                    serde_json::json!(argus_rules::am_api::format_time(h.time)),
                );
                o.insert("tenant".into(), serde_json::json!(h.tenant));
            }
            v
        })
        .collect();
    axum::Json(serde_json::json!({"status": "success", "data": data})).into_response()
}

async fn groups(State(d): State<Dispatcher>) -> Response {
    let data: Vec<serde_json::Value> = d
        .groups()
        .into_iter()
        .map(|g| {
            serde_json::json!({
                "groupKey": g.group_key,
                "receiver": g.receiver,
                "labels": g.labels,
                "alerts": g.alerts,
            })
        })
        .collect();
    axum::Json(serde_json::json!({"status": "success", "data": data})).into_response()
}
