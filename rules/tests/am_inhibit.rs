//! Inhibition as Alertmanager 0.25 applies it, through the alert store and the API, and
//! the rule engine's transitions feeding the store.

mod am_common;

use std::sync::Arc;

use am_common::{api_with, call_json, silences, temp_log};
use argus_rules::alert_store::{AlertStatusState, am_fingerprint};
use argus_rules::silences::{Clock, LabelMatcher, ManualClock, SilenceSpec};
use argus_schemas::{AlertState, AlertTransition, Labels, Timestamp};
use serde_json::json;

const T0: &str = "2030-03-01T00:00:00Z";

const RULES: &str = r#"
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"warning|info"']
    equal: [cluster]
  - source_match: {alertname: NodeDown}
    target_match_re: {alertname: 'Node.*'}
    equal: [node]
"#;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn post(labels: &[(&str, &str)]) -> serde_json::Value {
    let m: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({ "labels": m })
}

#[tokio::test]
async fn inhibition_follows_alertmanager() {
    let (log, _d) = temp_log().await;
    let clock = Arc::new(ManualClock::new(Timestamp::parse(T0).unwrap()));
    let svc = silences(&log, clock.clone());
    let (api, r) = api_with(svc.clone(), RULES);
    let store = api.store().clone();

    let crit = [
        ("alertname", "Crit"),
        ("severity", "critical"),
        ("cluster", "c1"),
    ];
    let warn_c1 = [
        ("alertname", "W"),
        ("severity", "warning"),
        ("cluster", "c1"),
    ];
    let warn_c2 = [
        ("alertname", "W"),
        ("severity", "warning"),
        ("cluster", "c2"),
    ];
    let info_nocluster = [("alertname", "I"), ("severity", "info")];
    let body = json!([
        post(&crit),
        post(&warn_c1),
        post(&warn_c2),
        post(&info_nocluster)
    ]);
    call_json(&r, "POST", "/api/v2/alerts", &body.to_string()).await;

    let crit_fp = format!("{:016x}", am_fingerprint(&l(&crit)));
    let st = store.status(&l(&warn_c1));
    assert_eq!(st.state, AlertStatusState::Suppressed);
    assert_eq!(st.inhibited_by, vec![crit_fp.clone()]);
    assert!(st.silenced_by.is_empty());
    // Other cluster: not inhibited. No cluster on either side: the equal label is "".
    assert_eq!(store.status(&l(&warn_c2)).state, AlertStatusState::Active);
    assert_eq!(
        store.status(&l(&info_nocluster)).state,
        AlertStatusState::Active
    );
    assert_eq!(store.status(&l(&crit)).state, AlertStatusState::Active);

    // The API shows it and filters on it.
    let (_, v) = call_json(&r, "GET", "/api/v2/alerts?inhibited=false", "").await;
    let shown: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["cluster"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(shown.len(), 3);
    let (_, v) = call_json(&r, "GET", "/api/v2/alerts?active=false", "").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(
        v[0]["status"],
        json!({"inhibitedBy":[crit_fp],"silencedBy":[],"state":"suppressed"})
    );

    // A silenced source still inhibits.
    let sid = svc
        .set(SilenceSpec {
            id: None,
            matchers: LabelMatcher::parse_list("alertname=Crit").unwrap(),
            starts_at: clock.now(),
            ends_at: Timestamp(clock.now().0 + 3_600_000_000_000),
            created_by: "t".into(),
            comment: "c".into(),
        })
        .await
        .unwrap();
    assert_eq!(store.status(&l(&crit)).silenced_by, vec![sid]);
    assert_eq!(store.status(&l(&warn_c1)).inhibited_by.len(), 1);

    // A resolved source no longer inhibits.
    let resolve = json!([{"labels": post(&crit)["labels"], "endsAt": "2030-02-28T00:00:00Z", "startsAt": "2030-02-27T00:00:00Z"}]);
    call_json(&r, "POST", "/api/v2/alerts", &resolve.to_string()).await;
    assert_eq!(store.status(&l(&warn_c1)).state, AlertStatusState::Active);
}

#[tokio::test]
async fn an_alert_matching_both_sides_does_not_inhibit_its_peers() {
    let (log, _d) = temp_log().await;
    let clock = Arc::new(ManualClock::new(Timestamp::parse(T0).unwrap()));
    let (api, r) = api_with(silences(&log, clock), RULES);
    let store = api.store().clone();
    // Both match source (alertname=NodeDown) and target (alertname=~Node.*).
    let a = [("alertname", "NodeDown"), ("node", "n1"), ("x", "1")];
    let b = [("alertname", "NodeDown"), ("node", "n1"), ("x", "2")];
    let target_only = [("alertname", "NodeDiskFull"), ("node", "n1")];
    let other_node = [("alertname", "NodeDiskFull"), ("node", "n2")];
    let body = json!([post(&a), post(&b), post(&target_only), post(&other_node)]);
    call_json(&r, "POST", "/api/v2/alerts", &body.to_string()).await;
    assert_eq!(store.status(&l(&a)).state, AlertStatusState::Active);
    assert_eq!(store.status(&l(&b)).state, AlertStatusState::Active);
    let by = store.status(&l(&target_only)).inhibited_by;
    let lowest = am_fingerprint(&l(&a)).min(am_fingerprint(&l(&b)));
    assert_eq!(by, vec![format!("{lowest:016x}")]);
    assert_eq!(
        store.status(&l(&other_node)).state,
        AlertStatusState::Active
    );
}

fn transition(
    labels: &[(&str, &str)],
    from: AlertState,
    to: AlertState,
    fired: i64,
    resolved: Option<i64>,
) -> AlertTransition {
    let labels = l(labels);
    AlertTransition {
        fingerprint: labels.fingerprint().to_string(),
        labels,
        annotations: l(&[("summary", "from a rule")]),
        from,
        to,
        rule_group: "g".into(),
        rule: "r".into(),
        value: Some(1.0),
        active_at: Some(Timestamp(fired - 60_000_000_000)),
        fired_at: Some(Timestamp(fired)),
        resolved_at: resolved.map(Timestamp),
        generator_url: "http://argus/graph".into(),
    }
}

#[tokio::test]
async fn rule_transitions_feed_the_store() {
    let (log, _d) = temp_log().await;
    let t0 = Timestamp::parse(T0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let (api, r) = api_with(silences(&log, clock.clone()), "resolve_timeout: 5m\n");
    let store = api.store().clone();
    let labels = [("alertname", "HighLoad"), ("instance", "a")];

    // Pending alerts are not Alertmanager alerts.
    store.apply_transition(&transition(
        &labels,
        AlertState::Inactive,
        AlertState::Pending,
        t0.0,
        None,
    ));
    assert_eq!(
        call_json(&r, "GET", "/api/v2/alerts", "").await.1,
        json!([])
    );

    store.apply_transition(&transition(
        &labels,
        AlertState::Pending,
        AlertState::Firing,
        t0.0,
        None,
    ));
    // Hours later it is still firing: it ends only when the rule resolves it.
    clock.set(Timestamp(t0.0 + 3 * 3_600_000_000_000));
    let (_, v) = call_json(&r, "GET", "/api/v2/alerts", "").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["startsAt"], "2030-03-01T00:00:00.000Z");
    assert_eq!(v[0]["endsAt"], "2030-03-01T03:05:00.000Z");
    assert_eq!(v[0]["annotations"], json!({"summary":"from a rule"}));
    assert_eq!(v[0]["generatorURL"], "http://argus/graph");
    assert_eq!(
        v[0]["fingerprint"],
        format!("{:016x}", am_fingerprint(&l(&labels)))
    );

    let resolved_at = t0.0 + 3 * 3_600_000_000_000;
    store.apply_transition(&transition(
        &labels,
        AlertState::Firing,
        AlertState::Resolved,
        t0.0,
        Some(resolved_at),
    ));
    assert_eq!(
        call_json(&r, "GET", "/api/v2/alerts", "").await.1,
        json!([])
    );
    // Resolved alerts are dropped by the periodic collection (here already by the put,
    // more than the gc interval after the last collection).
    store.gc();
    assert!(store.get(am_fingerprint(&l(&labels))).is_none());
}
