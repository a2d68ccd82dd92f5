//! The alert state machine of one alerting rule, as Prometheus has it: each output
//! sample of the rule's query is an alert keyed by its label set; a new alert is
//! pending, fires once it has been active for `for`, keeps firing for
//! `keep_firing_for` after it leaves the query result, is then resolved and kept
//! (and re-sent) for 15 minutes. Also the resend schedule towards an Alertmanager
//! and the rebuilding of the state from the alerts log ([`AlertSet::restore`]).
//!
//! Times are Unix milliseconds passed in by the caller: no clock is read here.

use std::collections::{BTreeMap, BTreeSet};

use argus_schemas::{AlertState, AlertTransition, Labels};

/// How long a resolved alert is kept (and re-sent): Prometheus' `resolvedRetention`.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// One alert of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The alert's identity: the sample's labels without `__name__`, with the rule's
    /// (templated) labels and `alertname`.
    pub labels: Labels,
    pub annotations: Labels,
    /// Pending, Firing or Resolved (Prometheus' "inactive" kept for retention).
    pub state: AlertState,
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_sent_at_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
    /// When the alert left the query result while firing with `keep_firing_for`.
    pub keep_firing_since_ms: Option<i64>,
}

/// An alert as the current query result has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub labels: Labels,
    pub annotations: Labels,
    pub value: f64,
}

/// A state change of one alert in one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub from: AlertState,
    pub to: AlertState,
    /// The alert after the change (for `to: Inactive`, as it was when dropped).
    pub alert: Alert,
}

/// An alert to send to an Alertmanager, as Prometheus' notifier builds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingAlert {
    pub labels: Labels,
    pub annotations: Labels,
    /// `startsAt`: when the alert started firing.
    pub starts_at_ms: i64,
    /// `endsAt`: the resolve time, or now + 4 × max(interval, resend delay).
    pub ends_at_ms: i64,
    pub generator_url: String,
}

/// The alerts of one alerting rule.
#[derive(Debug, Clone, Default)]
pub struct AlertSet {
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    alerts: BTreeMap<Labels, Alert>,
}

/// The outcome of [`AlertSet::update`].
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub changes: Vec<Change>,
    /// Alerts now pending or firing (for the `ALERTS` series), in label order.
    pub active: Vec<Alert>,
}

impl AlertSet {
    pub fn new(for_ms: i64, keep_firing_for_ms: i64) -> Self {
        AlertSet {
            for_ms,
            keep_firing_for_ms,
            alerts: BTreeMap::new(),
        }
    }

    /// Applies one evaluation's result at `ts_ms`. Errors (with Prometheus' texts)
    /// leave the state unchanged, except the limit error, which drops every alert
    /// (reported as changes to Inactive).
    pub fn update(
        &mut self,
        candidates: Vec<Candidate>,
        ts_ms: i64,
        limit: usize,
    ) -> Result<Update, (String, Vec<Change>)> {
        let mut fresh: BTreeMap<Labels, Candidate> = BTreeMap::new();
        for c in candidates {
            if fresh.contains_key(&c.labels) {
                return Err((
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                    Vec::new(),
                ));
            }
            fresh.insert(c.labels.clone(), c);
        }
        let before: BTreeMap<Labels, AlertState> = self
            .alerts
            .iter()
            .map(|(k, a)| (k.clone(), a.state))
            .collect();
        let in_result: BTreeSet<Labels> = fresh.keys().cloned().collect();
        for (k, c) in fresh {
            if let Some(a) = self.alerts.get_mut(&k)
                && a.state != AlertState::Resolved
            {
                a.value = c.value;
                a.annotations = c.annotations;
                continue;
            }
            self.alerts.insert(
                k,
                Alert {
                    labels: c.labels,
                    annotations: c.annotations,
                    state: AlertState::Pending,
                    value: c.value,
                    active_at_ms: ts_ms,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                    last_sent_at_ms: None,
                    valid_until_ms: None,
                    keep_firing_since_ms: None,
                },
            );
        }
        let mut dropped: Vec<Alert> = Vec::new();
        let mut active = Vec::new();
        let for_ms = self.for_ms;
        let kff = self.keep_firing_for_ms;
        self.alerts.retain(|k, a| {
            if !in_result.contains(k) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && kff > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(ts_ms);
                    keep_firing = ts_ms - since < kff;
                }
                let delete = a.state == AlertState::Pending
                    || a.resolved_at_ms
                        .is_some_and(|r| ts_ms - r > RESOLVED_RETENTION_MS);
                if a.state != AlertState::Resolved && !keep_firing {
                    a.state = if a.state == AlertState::Pending {
                        AlertState::Inactive
                    } else {
                        AlertState::Resolved
                    };
                    a.resolved_at_ms = Some(ts_ms);
                }
                if delete {
                    dropped.push(a.clone());
                    return false;
                }
                if !keep_firing {
                    return true;
                }
            } else {
                a.keep_firing_since_ms = None;
            }
            if a.state == AlertState::Pending && ts_ms - a.active_at_ms >= for_ms {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(ts_ms);
            }
            active.push(a.clone());
            true
        });
        if limit > 0 && active.len() > limit {
            let n = active.len();
            let mut changes = Vec::new();
            for (k, a) in std::mem::take(&mut self.alerts) {
                let from = before.get(&k).copied().unwrap_or(AlertState::Inactive);
                if from != AlertState::Inactive {
                    changes.push(Change {
                        from,
                        to: AlertState::Inactive,
                        alert: a,
                    });
                }
            }
            return Err((
                format!("exceeded limit of {limit} with {n} alerts"),
                changes,
            ));
        }
        let mut changes = Vec::new();
        for a in &dropped {
            let from = before
                .get(&a.labels)
                .copied()
                .unwrap_or(AlertState::Inactive);
            // A pending alert dropped in the evaluation that created it never existed.
            if from != AlertState::Inactive && from != AlertState::Resolved {
                changes.push(Change {
                    from,
                    to: AlertState::Inactive,
                    alert: a.clone(),
                });
            }
        }
        for (k, a) in &self.alerts {
            let from = before.get(k).copied().unwrap_or(AlertState::Inactive);
            if from != a.state {
                changes.push(Change {
                    from,
                    to: a.state,
                    alert: a.clone(),
                });
            }
        }
        changes.sort_by(|x, y| x.alert.labels.cmp(&y.alert.labels));
        Ok(Update { changes, active })
    }

    /// Rebuilds one alert from a logged transition (the last one per label set wins).
    pub fn restore(&mut self, t: &AlertTransition) {
        let ms = |x: Option<argus_schemas::Timestamp>| x.map(|t| t.as_millis());
        if t.to == AlertState::Inactive {
            self.alerts.remove(&t.labels);
            return;
        }
        let active_at = ms(t.active_at).unwrap_or(0);
        let resolved_at = ms(t.resolved_at);
        self.alerts.insert(
            t.labels.clone(),
            Alert {
                labels: t.labels.clone(),
                annotations: t.annotations.clone(),
                state: t.to,
                value: t.value.unwrap_or(0.0),
                active_at_ms: active_at,
                fired_at_ms: ms(t.fired_at),
                resolved_at_ms: if t.to == AlertState::Resolved {
                    resolved_at
                } else {
                    None
                },
                // A resolved alert was sent when it resolved; a firing one is sent
                // again at once so that the Alertmanager's endsAt is renewed.
                last_sent_at_ms: if t.to == AlertState::Resolved {
                    resolved_at
                } else {
                    None
                },
                valid_until_ms: None,
                keep_firing_since_ms: None,
            },
        );
    }

    /// The alerts due to be sent at `ts_ms` (Prometheus' `needsSending`: firing or
    /// resolved alerts not sent since they resolved or for `resend_delay_ms`); marks
    /// them sent.
    pub fn to_send(
        &mut self,
        ts_ms: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
        generator_url: &str,
    ) -> Vec<OutgoingAlert> {
        let mut out = Vec::new();
        for a in self.alerts.values_mut() {
            if a.state == AlertState::Pending {
                continue;
            }
            let needs = match (a.resolved_at_ms, a.last_sent_at_ms) {
                (_, None) => true,
                (Some(r), Some(s)) if r > s => true,
                (_, Some(s)) => s + resend_delay_ms < ts_ms,
            };
            if !needs {
                continue;
            }
            a.last_sent_at_ms = Some(ts_ms);
            let valid_until = ts_ms + 4 * resend_delay_ms.max(interval_ms);
            a.valid_until_ms = Some(valid_until);
            out.push(OutgoingAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
                ends_at_ms: a.resolved_at_ms.unwrap_or(valid_until),
                generator_url: generator_url.to_string(),
            });
        }
        out
    }

    /// Every alert kept, resolved ones included, in label order.
    pub fn all(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// Pending and firing alerts, in label order.
    pub fn active(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .values()
            .filter(|a| matches!(a.state, AlertState::Pending | AlertState::Firing))
    }

    /// Forgets every alert.
    pub fn clear(&mut self) {
        self.alerts.clear();
    }
}
