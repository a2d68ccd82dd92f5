//! The dispatcher on the embedded event log with recording channels: grouping timers,
//! dedup and repeat, resolved notifications, silences and inhibition, retries, restart
//! from the notification log, and two instances sharing one log.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argus_bus::{BusConfig, EventLog};
use argus_notifier::channels::{Channel, ChannelError};
use argus_notifier::config::AlertmanagerFile;
use argus_notifier::dispatch::{Dispatcher, DispatcherSetup, Receiver, RetryPolicy};
use argus_notifier::nflog::{HistoryFilter, NflogOptions, NotificationLog};
use argus_notifier::notification::Notification;
use argus_notifier::route::RouteTree;
use argus_notifier::timeinterval::TimeIntervals;
use argus_rules::alert_store::{Alert, AlertStore};
use argus_rules::inhibit::Inhibitor;
use argus_rules::silences::{LabelMatcher, SilenceOptions, SilenceService, SilenceSpec};
use argus_schemas::{Labels, NotificationOutcome, Timestamp};
use futures::future::BoxFuture;
use tokio::sync::watch;

#[derive(Default)]
struct RecInner {
    sent: Mutex<Vec<Notification>>,
    /// Failures to return before succeeding.
    fail: Mutex<VecDeque<ChannelError>>,
    calls: Mutex<usize>,
}

#[derive(Clone, Default)]
struct Recorder {
    inner: Arc<RecInner>,
    send_resolved: bool,
}

impl Recorder {
    fn new(send_resolved: bool) -> Self {
        Recorder {
            inner: Arc::default(),
            send_resolved,
        }
    }
    fn sent(&self) -> Vec<Notification> {
        self.inner.sent.lock().unwrap().clone()
    }
    fn calls(&self) -> usize {
        *self.inner.calls.lock().unwrap()
    }
    fn fail_with(&self, errs: Vec<ChannelError>) {
        self.inner.fail.lock().unwrap().extend(errs);
    }
}

impl Channel for Recorder {
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            *self.inner.calls.lock().unwrap() += 1;
            if let Some(e) = self.inner.fail.lock().unwrap().pop_front() {
                return Err(e);
            }
            self.inner.sent.lock().unwrap().push(n.clone());
            Ok(())
        })
    }
}

const ROUTES: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 300ms
  group_interval: 1s
  repeat_interval: 1h
  routes:
  - matchers: ['severity="page"']
    receiver: pager
    group_by: [alertname, cluster]
    group_wait: 300ms
    group_interval: 1s
    repeat_interval: 3s
receivers:
- name: team
- name: pager
inhibit_rules:
- source_matchers: ['alertname="ClusterDown"']
  target_matchers: ['alertname="NodeDown"']
  equal: [cluster]
"#;

struct Env {
    log: EventLog,
    store: Arc<AlertStore>,
    dispatcher: Dispatcher,
    nflog: NotificationLog,
    stop: watch::Sender<bool>,
}

async fn start(
    log: &EventLog,
    instance: &str,
    channels: &[(&str, Recorder)],
    retry: RetryPolicy,
) -> Env {
    let file = AlertmanagerFile::parse(ROUTES, "test").unwrap();
    file.validate().unwrap();
    let routes = Arc::new(RouteTree::new(&file).unwrap());
    let intervals = Arc::new(TimeIntervals::from_file(&file));
    let mut receivers = HashMap::new();
    for name in ["team", "pager"] {
        let chans: Vec<(String, Arc<dyn Channel>)> = channels
            .iter()
            .filter(|(r, _)| *r == name)
            .enumerate()
            .map(|(i, (_, c))| {
                (
                    format!("webhook/{i}"),
                    Arc::new(c.clone()) as Arc<dyn Channel>,
                )
            })
            .collect();
        receivers.insert(
            name.to_string(),
            Arc::new(Receiver {
                name: name.to_string(),
                channels: chans,
            }),
        );
    }
    let silences = SilenceService::new(log.clone(), SilenceOptions::default());
    silences.replay().await.unwrap();
    let store = Arc::new(AlertStore::new(
        silences,
        Inhibitor::from_configs(&file.inhibit_rules).unwrap(),
        routes.clone(),
    ));
    let nflog = NotificationLog::open(
        log.clone(),
        NflogOptions {
            instance: instance.to_string(),
            claim_timeout: Duration::from_secs(3),
            ..NflogOptions::default()
        },
    )
    .await
    .unwrap();
    let (stop, rx) = watch::channel(false);
    nflog.follow(Duration::from_millis(100), rx.clone());
    let dispatcher = Dispatcher::start(
        DispatcherSetup {
            routes,
            receivers,
            intervals,
            retry,
            external_url: "http://argus.example:9093".into(),
        },
        store.clone(),
        nflog.clone(),
        rx,
    );
    Env {
        log: log.clone(),
        store,
        dispatcher,
        nflog,
        stop,
    }
}

async fn open_log(dir: &std::path::Path) -> EventLog {
    EventLog::open(&BusConfig::embedded_at(dir.join("log")))
        .await
        .unwrap()
}

fn alert(pairs: &[(&str, &str)], started_ago: Duration) -> Alert {
    let now = Timestamp::now();
    Alert {
        labels: Labels::from_pairs(pairs.iter().copied()),
        annotations: Labels::from_pairs([("summary", "something is wrong")]),
        starts_at: Timestamp(now.0 - started_ago.as_nanos() as i64),
        ends_at: None,
        updated_at: now,
        generator_url: "http://prometheus/graph".into(),
        timeout: false,
    }
}

fn resolved(mut a: Alert) -> Alert {
    let now = Timestamp::now();
    a.ends_at = Some(now);
    a.updated_at = now;
    a
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Waits (at most 10 s, for a loaded machine) until `rec` has sent `n` notifications.
async fn until_sent(rec: &Recorder, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rec.sent().len() < n && std::time::Instant::now() < deadline {
        sleep_ms(20).await;
    }
}

fn names(n: &Notification) -> Vec<String> {
    n.alerts
        .iter()
        .map(|a| format!("{}:{}", a.labels.get("instance").unwrap_or(""), a.status()))
        .collect()
}

#[tokio::test]
async fn group_wait_collects_then_dedup_holds_until_something_changes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let rec = Recorder::new(true);
    let env = start(&log, "a", &[("team", rec.clone())], RetryPolicy::default()).await;
    // Two alerts of one group within group_wait: one notification with both.
    env.store.put(vec![alert(
        &[("alertname", "Disk"), ("instance", "n1")],
        Duration::ZERO,
    )]);
    sleep_ms(100).await;
    env.store.put(vec![alert(
        &[("alertname", "Disk"), ("instance", "n2")],
        Duration::ZERO,
    )]);
    sleep_ms(150).await;
    assert!(rec.sent().is_empty(), "nothing before group_wait");
    sleep_ms(400).await;
    let sent = rec.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(names(&sent[0]), ["n1:firing", "n2:firing"]);
    assert_eq!(sent[0].group_key, r#"{}:{alertname="Disk"}"#);
    assert_eq!(sent[0].receiver, "team");
    // Group intervals pass with nothing new: no repeat (repeat_interval 1h).
    sleep_ms(2200).await;
    assert_eq!(rec.sent().len(), 1);
    // A third alert: notified at the next group_interval, with all three.
    env.store.put(vec![alert(
        &[("alertname", "Disk"), ("instance", "n3")],
        Duration::ZERO,
    )]);
    sleep_ms(1300).await;
    let sent = rec.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(names(&sent[1]), ["n1:firing", "n2:firing", "n3:firing"]);
    // One resolves: a channel with send_resolved gets it.
    env.store.put(vec![resolved(alert(
        &[("alertname", "Disk"), ("instance", "n1")],
        Duration::ZERO,
    ))]);
    sleep_ms(1300).await;
    let sent = rec.sent();
    assert_eq!(sent.len(), 3);
    assert_eq!(names(&sent[2]), ["n1:resolved", "n2:firing", "n3:firing"]);
    assert_eq!(sent[2].status(), "firing");
    // The resolved alert left the group after the successful flush.
    sleep_ms(1200).await;
    assert_eq!(rec.sent().len(), 3);
    let g = env.dispatcher.groups();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].alerts, 2);
    // Every send is in the history, newest first.
    let h = env.nflog.history(&HistoryFilter {
        outcome: Some(NotificationOutcome::Sent),
        ..HistoryFilter::default()
    });
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].attempt.resolved.len(), 1);
    let _ = env.stop.send(true);
}

#[tokio::test]
async fn old_alerts_flush_at_once_and_repeat_after_repeat_interval() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let rec = Recorder::new(false);
    let env = start(&log, "a", &[("pager", rec.clone())], RetryPolicy::default()).await;
    // Started a minute ago (longer than group_wait): no waiting.
    env.store.put(vec![alert(
        &[
            ("alertname", "Api"),
            ("severity", "page"),
            ("cluster", "c1"),
        ],
        Duration::from_secs(60),
    )]);
    sleep_ms(150).await;
    let sent = rec.sent();
    assert_eq!(sent.len(), 1, "flushed before group_wait");
    assert_eq!(
        sent[0].group_key,
        r#"{}/{severity="page"}:{alertname="Api", cluster="c1"}"#
    );
    // repeat_interval 3s: repeated at the first group_interval tick after it.
    sleep_ms(2500).await;
    assert_eq!(rec.sent().len(), 1);
    sleep_ms(2000).await;
    assert_eq!(rec.sent().len(), 2);
    // Resolved with send_resolved false: nothing is sent, but the log records it so a
    // new firing counts as new.
    env.store.put(vec![resolved(alert(
        &[
            ("alertname", "Api"),
            ("severity", "page"),
            ("cluster", "c1"),
        ],
        Duration::from_secs(60),
    ))]);
    sleep_ms(1300).await;
    assert_eq!(rec.sent().len(), 2);
    let last = env.nflog.history(&HistoryFilter::default());
    assert_eq!(last[0].attempt.attempt, 0);
    assert_eq!(last[0].attempt.firing.len(), 0);
    let _ = env.stop.send(true);
}

#[tokio::test]
async fn silenced_and_inhibited_alerts_are_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let rec = Recorder::new(true);
    let env = start(&log, "a", &[("team", rec.clone())], RetryPolicy::default()).await;
    let now = Timestamp::now();
    env.store
        .silences()
        .set(SilenceSpec {
            id: None,
            matchers: vec![LabelMatcher::parse(r#"instance="quiet""#).unwrap()],
            starts_at: now,
            ends_at: Timestamp(now.0 + 3_600_000_000_000),
            created_by: "test".into(),
            comment: "maintenance".into(),
        })
        .await
        .unwrap();
    env.store.put(vec![
        alert(
            &[("alertname", "Cpu"), ("instance", "quiet")],
            Duration::ZERO,
        ),
        alert(
            &[("alertname", "Cpu"), ("instance", "loud")],
            Duration::ZERO,
        ),
        alert(
            &[("alertname", "ClusterDown"), ("cluster", "c1")],
            Duration::ZERO,
        ),
        alert(
            &[
                ("alertname", "NodeDown"),
                ("cluster", "c1"),
                ("instance", "x"),
            ],
            Duration::ZERO,
        ),
        alert(
            &[
                ("alertname", "NodeDown"),
                ("cluster", "c2"),
                ("instance", "y"),
            ],
            Duration::ZERO,
        ),
    ]);
    sleep_ms(700).await;
    let mut got: Vec<(String, Vec<String>)> = rec
        .sent()
        .iter()
        .map(|n| {
            (
                n.group_labels.get("alertname").unwrap().to_string(),
                names(n),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("ClusterDown".to_string(), vec![":firing".to_string()]),
            ("Cpu".to_string(), vec!["loud:firing".to_string()]),
            ("NodeDown".to_string(), vec!["y:firing".to_string()]),
        ]
    );
    let _ = env.stop.send(true);
}

#[tokio::test]
async fn transient_failures_retry_and_permanent_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let flaky = Recorder::new(true);
    flaky.fail_with(vec![
        ChannelError::transient("503 Service Unavailable"),
        ChannelError::Transient {
            message: "429".into(),
            retry_after: Some(Duration::from_millis(50)),
        },
    ]);
    let broken = Recorder::new(true);
    broken.fail_with(vec![ChannelError::permanent("400 Bad Request")]);
    let fast = RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        ..RetryPolicy::default()
    };
    let env = start(
        &log,
        "a",
        &[("team", flaky.clone()), ("team", broken.clone())],
        fast,
    )
    .await;
    env.store.put(vec![alert(
        &[("alertname", "Mem"), ("instance", "n1")],
        Duration::ZERO,
    )]);
    sleep_ms(800).await;
    assert_eq!(flaky.sent().len(), 1, "delivered once after two failures");
    assert_eq!(flaky.calls(), 3);
    assert_eq!(broken.calls(), 1, "no retry after a permanent failure");
    let h = env.nflog.history(&HistoryFilter {
        channel: Some("webhook/0".into()),
        ..HistoryFilter::default()
    });
    let outcomes: Vec<NotificationOutcome> = h.iter().rev().map(|h| h.attempt.outcome).collect();
    assert_eq!(
        outcomes,
        [
            NotificationOutcome::Started,
            NotificationOutcome::TransientFailure,
            NotificationOutcome::TransientFailure,
            NotificationOutcome::Sent
        ]
    );
    let failed = env.nflog.history(&HistoryFilter {
        outcome: Some(NotificationOutcome::PermanentFailure),
        ..HistoryFilter::default()
    });
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempt.error.as_deref(), Some("400 Bad Request"));
    // The permanent failure is tried again at the next group interval (nothing was
    // delivered on that channel), and the delivered one is not repeated.
    sleep_ms(1100).await;
    assert_eq!(broken.sent().len(), 1);
    assert_eq!(flaky.sent().len(), 1);
    let _ = env.stop.send(true);
}

#[tokio::test]
async fn restart_neither_repeats_nor_loses() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let rec = Recorder::new(true);
    let a1 = alert(&[("alertname", "Net"), ("instance", "n1")], Duration::ZERO);
    {
        let env = start(&log, "a", &[("team", rec.clone())], RetryPolicy::default()).await;
        env.store.put(vec![a1.clone()]);
        until_sent(&rec, 1).await;
        assert_eq!(rec.sent().len(), 1);
        let _ = env.stop.send(true);
        sleep_ms(100).await;
    }
    // A new instance with the same name on the same log and the same alerts (as the
    // alert store replays them), plus one that fired while it was down.
    let env = start(&log, "a", &[("team", rec.clone())], RetryPolicy::default()).await;
    env.store.put(vec![
        a1.clone(),
        alert(&[("alertname", "Net"), ("instance", "n2")], Duration::ZERO),
    ]);
    sleep_ms(700).await;
    let sent = rec.sent();
    assert_eq!(sent.len(), 2, "one new notification, no repeat");
    assert_eq!(names(&sent[1]), ["n1:firing", "n2:firing"]);
    // And a restart with nothing new sends nothing.
    let _ = env.stop.send(true);
    sleep_ms(100).await;
    let env = start(&log, "a", &[("team", rec.clone())], RetryPolicy::default()).await;
    env.store.put(vec![
        a1,
        alert(&[("alertname", "Net"), ("instance", "n2")], Duration::ZERO),
    ]);
    sleep_ms(1500).await;
    assert_eq!(rec.sent().len(), 2);
    let _ = env.stop.send(true);
    drop(env.log);
}

#[tokio::test]
async fn two_instances_send_each_notification_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let ra = Recorder::new(true);
    let rb = Recorder::new(true);
    let a = start(&log, "a", &[("team", ra.clone())], RetryPolicy::default()).await;
    let b = start(&log, "b", &[("team", rb.clone())], RetryPolicy::default()).await;
    // Both get the same alerts (each instance's store reads argus.alerts).
    for i in 0..10 {
        let x = alert(
            &[("alertname", &format!("A{i}")), ("instance", "n1")],
            Duration::ZERO,
        );
        a.store.put(vec![x.clone()]);
        b.store.put(vec![x]);
    }
    sleep_ms(1500).await;
    let total = ra.sent().len() + rb.sent().len();
    assert_eq!(total, 10, "a: {}, b: {}", ra.sent().len(), rb.sent().len());
    let _ = a.stop.send(true);
    let _ = b.stop.send(true);
}

#[tokio::test]
async fn a_claim_left_by_a_dead_instance_expires() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    // Instance "dead" claimed the notification and died before sending.
    let dead = NotificationLog::open(
        log.clone(),
        NflogOptions {
            instance: "dead".into(),
            ..NflogOptions::default()
        },
    )
    .await
    .unwrap();
    let x = alert(&[("alertname", "Gone"), ("instance", "n1")], Duration::ZERO);
    let fp = format!("{:016x}", x.fingerprint());
    let key = argus_notifier::nflog::NfKey {
        group_key: r#"{}:{alertname="Gone"}"#.into(),
        receiver: "team".into(),
        channel: "webhook/0".into(),
    };
    assert!(dead.claim(&key, None, &[fp], &[]).await.unwrap());
    let rec = Recorder::new(true);
    let env = start(
        &log,
        "alive",
        &[("team", rec.clone())],
        RetryPolicy::default(),
    )
    .await;
    env.store.put(vec![x]);
    // Held back while the claim is live (claim_timeout 3s in these tests)…
    sleep_ms(1500).await;
    assert!(rec.sent().is_empty());
    // …then sent once.
    sleep_ms(3000).await;
    assert_eq!(rec.sent().len(), 1);
    let _ = env.stop.send(true);
}

#[tokio::test]
async fn a_claim_made_on_an_outdated_view_is_void() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let open = |name: &str| {
        NotificationLog::open(
            log.clone(),
            NflogOptions {
                instance: name.into(),
                ..NflogOptions::default()
            },
        )
    };
    let a = open("a").await.unwrap();
    let b = open("b").await.unwrap();
    let key = argus_notifier::nflog::NfKey {
        group_key: r#"{}:{alertname="X"}"#.into(),
        receiver: "team".into(),
        channel: "webhook/0".into(),
    };
    let fp = vec!["00000000000000aa".to_string()];
    // a claims and sends; b has not read the log since, so it decides on "nothing sent".
    assert!(a.claim(&key, None, &fp, &[]).await.unwrap());
    a.record(argus_schemas::NotificationAttempt {
        group_key: key.group_key.clone(),
        receiver: key.receiver.clone(),
        channel: key.channel.clone(),
        firing: fp.clone(),
        resolved: vec![],
        attempt: 1,
        outcome: NotificationOutcome::Sent,
        error: None,
        duration_ms: 1,
        instance: String::new(),
        basis: None,
    })
    .await
    .unwrap();
    assert!(b.entry(&key).is_none(), "b's view is outdated");
    assert!(
        !b.claim(&key, None, &fp, &[]).await.unwrap(),
        "b must not send again"
    );
    // With the current view, a later claim (e.g. a repeat) counts.
    let seen = b.entry(&key).unwrap();
    assert!(b.claim(&key, Some(&seen), &fp, &[]).await.unwrap());
}
