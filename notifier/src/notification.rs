//! What one flush of one aggregation group hands to the channels of its receiver:
//! Alertmanager's notification context (receiver, group key and labels) and the alerts
//! as they stand at the flush.

use argus_schemas::{Labels, Timestamp};

/// One alert as notified (Alertmanager's `types.Alert` at flush time).
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyAlert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: Timestamp,
    /// `None`: firing with no end announced (Alertmanager prints `0001-01-01T00:00:00Z`).
    pub ends_at: Option<Timestamp>,
    pub generator_url: String,
    /// Alertmanager's fingerprint of `labels` (`argus_rules::alert_store::am_fingerprint`).
    pub fingerprint: u64,
    /// Resolved at the flush (its end is not after the flush time).
    pub resolved: bool,
}

impl NotifyAlert {
    /// `"firing"` or `"resolved"`, as the webhook payload and templates say it.
    pub fn status(&self) -> &'static str {
        if self.resolved { "resolved" } else { "firing" }
    }
}

/// One notification of one group to one receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub receiver: String,
    /// Alertmanager's group key: `<route key>:<group labels>`, e.g.
    /// `{}/{severity="critical"}:{alertname="Disk"}`.
    pub group_key: String,
    pub group_labels: Labels,
    /// The alerts of the group, in Alertmanager's order (by fingerprint... as the
    /// dispatcher gives them); channels that drop resolved alerts filter them.
    pub alerts: Vec<NotifyAlert>,
    /// `--web.external-url`: links back to the notifier.
    pub external_url: String,
    /// When the flush happened (templates and channels use it for "now").
    pub now: Timestamp,
}

impl Notification {
    /// `"resolved"` when every alert is resolved, else `"firing"`.
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().all(|a| a.resolved) {
            "resolved"
        } else {
            "firing"
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &NotifyAlert> {
        self.alerts.iter().filter(|a| !a.resolved)
    }

    pub fn resolved(&self) -> impl Iterator<Item = &NotifyAlert> {
        self.alerts.iter().filter(|a| a.resolved)
    }

    /// Labels every alert has with the same value (`CommonLabels`).
    pub fn common_labels(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// Annotations every alert has with the same value (`CommonAnnotations`).
    pub fn common_annotations(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.annotations))
    }
}

fn common<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::default();
    };
    let mut pairs: Vec<(String, String)> = first
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    for s in sets {
        pairs.retain(|(n, v)| s.get(n) == Some(v.as_str()));
    }
    Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}
