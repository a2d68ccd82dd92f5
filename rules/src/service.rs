//! The rule engine's runtime: the metric window fed from the event log, rule groups
//! evaluated on their schedule, their output published, and the alert state rebuilt
//! from the log after a restart.
//!
//! - **Metric window.** At start, per partition of `argus.metrics`, the records the log
//!   accepted since `now - retention` (found by bisecting the record timestamps) are
//!   read outside any group into one [`MetricWindow`] per tenant. Then the consumer
//!   group `rules.group` (`argus-rules`) tails the topic; records below the offsets the
//!   start-up read reached are skipped, so nothing is appended twice. Offsets are
//!   committed after the samples are in the window (the commits only bound the scan of
//!   a later start; the window itself is always rebuilt from the log).
//! - **Alert state.** At start every retained record of `argus.alerts` is read (outside
//!   any group) and folded into the last transition per tenant, group, rule and alert;
//!   each group evaluator is restored from it ([`GroupEvaluator::restore`]), so a
//!   pending alert keeps its `activeAt` (its `for` timer is not reset) and a firing
//!   alert stays firing without a new `firing` transition. A tail task keeps reading
//!   the topic: it keeps that fold current (for reloads and tenants that appear later)
//!   and feeds the Alertmanager API's [`AlertStore`] — rule transitions through
//!   [`AlertStore::apply_transition`], alerts posted to `/api/v2/alerts` as the alerts
//!   Alertmanager would keep.
//! - **Schedule.** Each group runs at its interval, at Prometheus' slots: offset from
//!   the interval boundary by a hash of the group's name and file, evaluated at the
//!   slot's timestamp; a tick missed because an evaluation ran long is skipped and
//!   counted. Each tick evaluates the group once per tenant (see [`crate::config`]).
//!   PromQL groups read the tenant's window; LogQL groups (`type: logs`) run as instant
//!   queries on the query service's engine. Evaluations run on blocking threads.
//! - **Output.** Every [`AlertTransition`] goes to `argus.alerts` (key: the alert's
//!   fingerprint; tenant: the group's), recorded series, `ALERTS`, `ALERTS_FOR_STATE`
//!   and staleness markers to `argus.metrics` (and straight into the window, so later
//!   rules of the group see them, as in Prometheus). A publish that fails is retried
//!   until it succeeds or the service stops (the restart then recomputes it).
//! - **Posted alerts.** [`RulesService::alert_sink`] gives the Alertmanager API a sink
//!   that publishes posted alerts as transitions with an empty `rule_group`: `to` is
//!   `firing` (from `firing` when the alert was already firing, a refresh) or `resolved`
//!   when its end has passed; `active_at` and `fired_at` are its `startsAt`, and
//!   `resolved_at` is its `endsAt` — for a firing alert the time it resolves unless
//!   posted again. With an alert store they are applied to it before the write and the
//!   tail steps over them ([`crate::alert_feed::publish_posted`]); without one the sink
//!   returns once the tail has applied them. Either way a client reads its own writes.
//! - **Reload.** [`RulesService::reload`] re-reads the rule files; on errors the old
//!   rules keep running. Groups are restarted from the alert fold, so alert state
//!   carries over; removed groups get staleness markers for their series.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argus_bus::{EventLog, TypedConsumer};
use argus_schemas::{
    AlertState, AlertTransition, Envelope, Labels, MetricSamples, Payload, Timestamp, topics,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::RulesError;
use crate::alert_feed::{OwnRecords, publish_posted};
use crate::alert_store::{Alert as AmAlert, AlertSink, AlertStore, posted_records};
use crate::config::RulesConfig;
use crate::group::{EvalOutput, GroupEvaluator, GroupOptions, QueryFn, Sample};
use crate::metrics;
use crate::prom_api::{PromApiState, RuleBoard, Windows};
use crate::promql::{Engine, EngineOptions, Value};
use crate::rulefile::{RuleExpr, RuleFile, RuleGroup};
use crate::window::{MetricWindow, WindowOptions};

/// The `source` of the records the rule engine writes.
pub const SOURCE: &str = "rules";

/// Records per read while replaying a topic.
const READ_BATCH: usize = 5_000;
/// How often the alerts tail looks for new records: each look is a watermark request
/// per partition, cheap on the embedded log, a round trip on Kafka.
fn alerts_poll(log: &EventLog) -> Duration {
    match log {
        EventLog::Embedded(_) => Duration::from_millis(100),
        EventLog::Kafka(_) => Duration::from_secs(1),
    }
}
/// How long a posted alert waits to be applied before the sink answers anyway.
const SINK_WAIT: Duration = Duration::from_secs(5);

/// The last transition of each alert, per tenant: `(group, rule, fingerprint)`.
type Fold = HashMap<String, BTreeMap<(String, String, String), AlertTransition>>;

struct Inner {
    log: EventLog,
    cfg: RulesConfig,
    windows: Arc<Windows>,
    engine: Arc<Engine>,
    board: Arc<RuleBoard>,
    query_engine: Option<Arc<argus_query::engine::Engine>>,
    store: Option<Arc<AlertStore>>,
    fold: Mutex<Fold>,
    /// Per partition of `argus.alerts`, the next offset the tail will read.
    applied: watch::Sender<HashMap<i32, i64>>,
    /// Wakes the tail at once when this process wrote to `argus.alerts`.
    tail_wake: tokio::sync::Notify,
    /// Posted alerts this process applied to its store itself.
    own: OwnRecords,
    stop: watch::Sender<bool>,
    groups: tokio::sync::Mutex<Vec<GroupTask>>,
    background: Mutex<Vec<JoinHandle<()>>>,
}

struct GroupTask {
    file: String,
    name: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<HashMap<String, GroupEvaluator>>,
}

/// The running rule engine. Cheap to clone; every clone is the same service.
#[derive(Clone)]
pub struct RulesService {
    inner: Arc<Inner>,
}

impl RulesService {
    /// Loads the rule files (any error stops the start), replays `argus.alerts` and the
    /// window's share of `argus.metrics`, and starts consuming and evaluating. The
    /// query engine runs LogQL groups; without one they fail with an error per rule.
    /// `alert_store` (the Alertmanager API's) is fed every alert.
    pub async fn start(
        log: EventLog,
        query_engine: Option<Arc<argus_query::engine::Engine>>,
        cfg: RulesConfig,
        alert_store: Option<Arc<AlertStore>>,
    ) -> Result<RulesService, RulesError> {
        cfg.validate()
            .map_err(|(k, m)| RulesError::Config(format!("{k}: {m}")))?;
        let files = load_rule_files(&cfg)?;
        let engine = Arc::new(Engine::new(EngineOptions {
            lookback_ms: cfg.lookback_delta.as_millis() as i64,
            default_subquery_step_ms: cfg.evaluation_interval.as_millis() as i64,
            // The API refuses more than 11,000 steps, as Prometheus' does.
            max_range_steps: crate::prom_api::MAX_POINTS_PER_SERIES + 1,
            ..EngineOptions::default()
        }));
        let windows = Arc::new(Windows::new(WindowOptions {
            retention_ms: cfg.retention.as_millis() as i64,
            ..WindowOptions::default()
        }));
        let (applied, _) = watch::channel(HashMap::new());
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            log,
            cfg,
            windows,
            engine,
            board: Arc::new(RuleBoard::new()),
            query_engine,
            store: alert_store,
            fold: Mutex::new(HashMap::new()),
            applied,
            tail_wake: tokio::sync::Notify::new(),
            own: OwnRecords::default(),
            stop,
            groups: tokio::sync::Mutex::new(Vec::new()),
            background: Mutex::new(Vec::new()),
        });
        let alert_positions = replay_alerts(&inner).await?;
        inner.applied.send_replace(alert_positions.clone());
        let metric_positions = replay_metrics(&inner).await?;
        let consumer = TypedConsumer::new(&inner.log, &inner.cfg.group, &[topics::METRICS]).await?;
        {
            let mut bg = inner.background.lock().expect("tasks lock");
            bg.push(tokio::spawn(tail_alerts(inner.clone(), alert_positions)));
            bg.push(tokio::spawn(consume_metrics(
                inner.clone(),
                consumer,
                metric_positions,
            )));
        }
        start_groups(&inner, files).await;
        tracing::info!(
            tenants = ?inner.windows.tenants(),
            groups = inner.groups.lock().await.len(),
            "rule engine started"
        );
        Ok(RulesService { inner })
    }

    /// The state Prometheus' HTTP API serves ([`crate::prom_api::router`]).
    pub fn prom_api(&self) -> PromApiState {
        PromApiState {
            windows: self.inner.windows.clone(),
            engine: self.inner.engine.clone(),
            rules: self.inner.board.clone(),
            query_timeout: self.inner.cfg.query_timeout,
        }
    }

    /// The metric windows, per tenant.
    pub fn windows(&self) -> &Arc<Windows> {
        &self.inner.windows
    }

    /// A sink for `POST /api/v2/alerts` ([`crate::am_api::AmApi::with_sink`]) that
    /// publishes posted alerts to `argus.alerts` (see the module docs).
    pub fn alert_sink(&self) -> Arc<dyn AlertSink> {
        Arc::new(LogAlertSink {
            inner: self.inner.clone(),
        })
    }

    /// Re-reads the rule files. On errors the running rules stay and the errors are
    /// returned (`file:line:col: message`, one per line).
    pub async fn reload(&self) -> Result<(), RulesError> {
        let files = load_rule_files(&self.inner.cfg)?;
        let old = stop_groups(&self.inner).await;
        // The fold must hold every transition published so far before groups restart.
        wait_for_alerts_tail(&self.inner).await?;
        let keep: Vec<(String, String)> = files
            .iter()
            .flat_map(|f| {
                f.groups
                    .iter()
                    .map(move |g| (f.file.clone(), g.name.clone()))
            })
            .collect();
        let now = Timestamp::now().as_millis();
        for (file, name, evaluators) in old {
            if keep.contains(&(file.clone(), name.clone())) {
                continue;
            }
            for (tenant, ev) in evaluators {
                let out = EvalOutput {
                    samples: ev.stale_markers(now),
                    ..EvalOutput::default()
                };
                publish_output(&self.inner, &tenant, &out).await;
            }
        }
        self.inner
            .board
            .retain(|_, file, name| keep.contains(&(file.to_string(), name.to_string())));
        start_groups(&self.inner, files).await;
        Ok(())
    }

    /// Runs until `shutdown` turns true, then stops ([`RulesService::stop`]).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), RulesError> {
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        self.stop().await;
        Ok(())
    }

    /// Stops evaluating (an evaluation under way finishes and is published), stops
    /// the consumers and waits for every task.
    pub async fn stop(&self) {
        stop_groups(&self.inner).await;
        self.inner.stop.send_replace(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.background.lock().expect("tasks lock"));
        for t in tasks {
            if let Err(e) = t.await {
                tracing::warn!(error = %e, "rule engine task failed");
            }
        }
    }
}

/// Parses every rule file the globs name; all errors, one per line.
fn load_rule_files(cfg: &RulesConfig) -> Result<Vec<RuleFile>, RulesError> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in cfg.resolve_rule_files()? {
        let name = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match crate::rulefile::parse(&name, &text) {
                Ok(f) => files.push(f),
                Err(es) => errors.extend(es.iter().map(|e| e.to_string())),
            },
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(RulesError::Config(errors.join("\n")))
    }
}

// ---------------------------------------------------------------------------------------
// Alerts topic: replay, tail, fold, store
// ---------------------------------------------------------------------------------------

/// Reads every retained record of `argus.alerts` into the fold and the store; returns
/// the next offset per partition.
async fn replay_alerts(inner: &Arc<Inner>) -> Result<HashMap<i32, i64>, RulesError> {
    let mut positions = HashMap::new();
    let parts = inner.log.partitions(topics::ALERTS).await?;
    for p in 0..parts {
        let (low, high) = inner.log.watermarks(topics::ALERTS, p).await?;
        let mut pos = low;
        while pos < high {
            let recs = inner.log.read(topics::ALERTS, p, pos, READ_BATCH).await?;
            let Some(last) = recs.last() else { break };
            pos = last.offset + 1;
            for r in &recs {
                apply_alert_record(inner, &r.value);
            }
        }
        positions.insert(p, pos);
    }
    let n: usize = inner
        .fold
        .lock()
        .expect("fold lock")
        .values()
        .map(BTreeMap::len)
        .sum();
    tracing::info!(alerts = n, "alert state replayed from {}", topics::ALERTS);
    Ok(positions)
}

/// Keeps reading `argus.alerts` from `positions` until the service stops.
async fn tail_alerts(inner: Arc<Inner>, mut positions: HashMap<i32, i64>) {
    let mut stop = inner.stop.subscribe();
    let poll = alerts_poll(&inner.log);
    loop {
        let mut progressed = false;
        for (p, pos) in positions.iter_mut() {
            if inner.own.skip(*p, pos) {
                progressed = true;
            }
            match inner.log.read(topics::ALERTS, *p, *pos, READ_BATCH).await {
                Ok(recs) => {
                    if let Some(last) = recs.last() {
                        *pos = last.offset + 1;
                        progressed = true;
                    }
                    for r in recs.iter().filter(|r| !inner.own.applied(r)) {
                        apply_alert_record(&inner, &r.value);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, partition = *p, "reading {} failed", topics::ALERTS)
                }
            }
        }
        if progressed {
            inner.applied.send_replace(positions.clone());
            continue;
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = inner.tail_wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// Waits until the tail has read everything `argus.alerts` holds now.
async fn wait_for_alerts_tail(inner: &Arc<Inner>) -> Result<(), RulesError> {
    let parts = inner.log.partitions(topics::ALERTS).await?;
    let mut want = Vec::new();
    for p in 0..parts {
        let (_, high) = inner.log.watermarks(topics::ALERTS, p).await?;
        want.push((p, high));
    }
    wait_applied(inner, &want, Duration::from_secs(30)).await;
    Ok(())
}

/// Waits (at most `limit`) until the tail has passed `(partition, next offset)`.
async fn wait_applied(inner: &Arc<Inner>, want: &[(i32, i64)], limit: Duration) -> bool {
    crate::alert_feed::wait_positions(&inner.applied, want, limit).await
}

fn apply_alert_record(inner: &Inner, bytes: &[u8]) {
    let env = match argus_schemas::decode(bytes) {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(error = %e, "undecodable record on {}", topics::ALERTS);
            return;
        }
    };
    if let Some(store) = &inner.store {
        store.apply_envelope(&env);
    }
    // Posted alerts (an `alert_batch`) live in the store only.
    let Payload::AlertTransition(t) = &env.payload else {
        return;
    };
    if t.rule_group.is_empty() {
        return;
    }
    let mut fold = inner.fold.lock().expect("fold lock");
    let m = fold.entry(env.tenant.clone()).or_default();
    let key = (t.rule_group.clone(), t.rule.clone(), t.fingerprint.clone());
    if t.to == AlertState::Inactive {
        m.remove(&key);
    } else {
        m.insert(key, t.clone());
    }
    // Resolved alerts matter for 15 minutes (their resends); forget older ones.
    if m.len() > 1024 && m.len().is_power_of_two() {
        let cutoff = Timestamp::now().as_millis() - crate::alert::RESOLVED_RETENTION_MS;
        m.retain(|_, t| {
            t.to != AlertState::Resolved || t.resolved_at.is_none_or(|r| r.as_millis() >= cutoff)
        });
    }
}

/// The last transitions of one tenant's group, for [`GroupEvaluator::restore`].
fn restore_log(inner: &Inner, tenant: &str, group: &str) -> Vec<AlertTransition> {
    let fold = inner.fold.lock().expect("fold lock");
    fold.get(tenant)
        .map(|m| {
            m.iter()
                .filter(|((g, _, _), _)| g == group)
                .map(|(_, t)| t.clone())
                .collect()
        })
        .unwrap_or_default()
}

struct LogAlertSink {
    inner: Arc<Inner>,
}

impl AlertSink for LogAlertSink {
    fn put(
        &self,
        alerts: Vec<AmAlert>,
    ) -> Pin<Box<dyn Future<Output = Result<(), RulesError>> + Send + '_>> {
        Box::pin(async move {
            if alerts.is_empty() {
                return Ok(());
            }
            let inner = &self.inner;
            if let Some(store) = &inner.store {
                // The tail is not woken: it has nothing to apply from this write.
                return publish_posted(&inner.log, store, &inner.own, &inner.applied, alerts).await;
            }
            let recs = posted_records(alerts, Timestamp::now());
            let positions = self.inner.log.produce_batch(topics::ALERTS, recs).await?;
            self.inner.tail_wake.notify_one();
            let mut want: Vec<(i32, i64)> = Vec::new();
            for p in positions {
                match want.iter_mut().find(|(q, _)| *q == p.partition) {
                    Some(w) => w.1 = w.1.max(p.offset + 1),
                    None => want.push((p.partition, p.offset + 1)),
                }
            }
            if !wait_applied(&self.inner, &want, SINK_WAIT).await {
                tracing::warn!("posted alerts are durable but not applied yet");
            }
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------
// Metrics topic: replay and consumption
// ---------------------------------------------------------------------------------------

/// Fills the windows with what `argus.metrics` accepted since `now - retention`;
/// returns the next offset per partition.
async fn replay_metrics(inner: &Arc<Inner>) -> Result<HashMap<i32, i64>, RulesError> {
    let since = Timestamp::now().as_millis() - inner.cfg.retention.as_millis() as i64;
    let mut positions = HashMap::new();
    let mut records = 0usize;
    let parts = inner.log.partitions(topics::METRICS).await?;
    for p in 0..parts {
        let (low, high) = inner.log.watermarks(topics::METRICS, p).await?;
        let mut pos = first_offset_since(&inner.log, p, low, high, since).await?;
        while pos < high {
            let recs = inner.log.read(topics::METRICS, p, pos, READ_BATCH).await?;
            let Some(last) = recs.last() else { break };
            pos = last.offset + 1;
            for r in recs.iter().filter(|r| r.offset < high) {
                if let Ok(env) = argus_schemas::decode(&r.value) {
                    append_metric(inner, &env);
                    records += 1;
                }
            }
        }
        positions.insert(p, high);
    }
    tracing::info!(
        records,
        tenants = inner.windows.tenants().len(),
        "metric window replayed from {}",
        topics::METRICS
    );
    Ok(positions)
}

/// The first offset in `[low, high)` whose record the log accepted at or after
/// `since_ms` (bisection over record timestamps, which grow with offsets).
async fn first_offset_since(
    log: &EventLog,
    partition: i32,
    low: i64,
    high: i64,
    since_ms: i64,
) -> Result<i64, RulesError> {
    let (mut lo, mut hi) = (low, high);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let recs = log.read(topics::METRICS, partition, mid, 1).await?;
        match recs.first() {
            // Retention removed records under us: start after them.
            Some(r) if r.offset > mid => {
                if r.timestamp_ms >= since_ms {
                    hi = mid;
                } else {
                    lo = r.offset + 1;
                }
            }
            Some(r) if r.timestamp_ms >= since_ms => hi = mid,
            Some(_) => lo = mid + 1,
            None => hi = mid,
        }
    }
    Ok(lo)
}

fn append_metric(inner: &Inner, env: &Envelope) {
    if let Payload::MetricSamples(m) = &env.payload {
        inner.windows.get_or_create(&env.tenant).append(m);
    }
}

/// Tails `argus.metrics` as the service's consumer group until the service stops.
async fn consume_metrics(
    inner: Arc<Inner>,
    mut consumer: TypedConsumer,
    replayed: HashMap<i32, i64>,
) {
    let mut stop = inner.stop.subscribe();
    let mut backoff = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = tokio::select! {
            b = consumer.poll(5_000, Duration::from_millis(500)) => b,
            _ = stop.changed() => return,
        };
        let batch = match batch {
            Ok(b) => {
                backoff = Duration::from_millis(100);
                b
            }
            Err(e) => {
                tracing::warn!(error = %e, "polling {} failed", topics::METRICS);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        for ev in &batch.events {
            if replayed
                .get(&ev.partition)
                .is_some_and(|&end| ev.offset < end)
            {
                continue;
            }
            append_metric(&inner, &ev.envelope);
        }
        if !batch.offsets.is_empty()
            && let Err(e) = consumer.commit(&batch).await
        {
            tracing::warn!(error = %e, "committing {} offsets failed", topics::METRICS);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Groups: schedule, evaluation, output
// ---------------------------------------------------------------------------------------

async fn start_groups(inner: &Arc<Inner>, files: Vec<RuleFile>) {
    let mut tasks = inner.groups.lock().await;
    for f in files {
        for g in f.groups {
            let (stop, rx) = watch::channel(false);
            let (file, name) = (f.file.clone(), g.name.clone());
            let handle = tokio::spawn(run_group(inner.clone(), file.clone(), g, rx));
            tasks.push(GroupTask {
                file,
                name,
                stop,
                handle,
            });
        }
    }
}

/// Stops every group task; returns their evaluators per tenant.
async fn stop_groups(inner: &Arc<Inner>) -> Vec<(String, String, HashMap<String, GroupEvaluator>)> {
    let tasks: Vec<GroupTask> = std::mem::take(&mut *inner.groups.lock().await);
    for t in &tasks {
        t.stop.send_replace(true);
    }
    let mut out = Vec::new();
    for t in tasks {
        match t.handle.await {
            Ok(evs) => out.push((t.file, t.name, evs)),
            Err(e) => tracing::warn!(error = %e, group = %t.name, "rule group task failed"),
        }
    }
    out
}

/// Prometheus' slot for a group: `hash % interval` past each interval boundary; the
/// latest slot at or before `now_ms`.
pub fn eval_timestamp(now_ms: i64, interval_ms: i64, hash: u64) -> i64 {
    let offset = (hash % interval_ms as u64) as i64;
    let adj = now_ms - offset;
    adj - adj.rem_euclid(interval_ms) + offset
}

/// The hash that places a group in its interval (over its name and file).
pub fn group_hash(name: &str, file: &str) -> u64 {
    argus_schemas::fingerprint([("name", name), ("file", file)]).0
}

fn options_for(cfg: &RulesConfig, file: &str) -> GroupOptions {
    GroupOptions {
        file: file.to_string(),
        default_interval_ms: cfg.evaluation_interval.as_millis() as i64,
        default_query_offset_ms: cfg.rule_query_offset.as_millis() as i64,
        external_labels: Labels::from_pairs(cfg.external_labels.clone()),
        external_url: cfg.external_url.clone(),
        resend_delay_ms: cfg.resend_delay.as_millis() as i64,
    }
}

/// The tenants a tick evaluates: the configured ones and, if enabled, every tenant
/// with a window.
fn tenants(inner: &Inner) -> Vec<String> {
    let mut t = inner.cfg.tenants.clone();
    if inner.cfg.discover_tenants {
        t.extend(inner.windows.tenants());
    }
    t.sort();
    t.dedup();
    t
}

async fn run_group(
    inner: Arc<Inner>,
    file: String,
    group: RuleGroup,
    mut stop: watch::Receiver<bool>,
) -> HashMap<String, GroupEvaluator> {
    let opts = options_for(&inner.cfg, &file);
    let name = group.name.clone();
    let template = GroupEvaluator::new(group.clone(), opts.clone());
    let interval = template.interval_ms().max(1);
    let hash = group_hash(&name, &file);
    let mut evaluators: HashMap<String, Arc<Mutex<GroupEvaluator>>> = HashMap::new();
    let mut next = eval_timestamp(Timestamp::now().as_millis(), interval, hash) + interval;
    loop {
        let wait = (next - Timestamp::now().as_millis()).max(0) as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let started = std::time::Instant::now();
        for tenant in tenants(&inner) {
            let ev = evaluators
                .entry(tenant.clone())
                .or_insert_with(|| {
                    let mut ev = GroupEvaluator::new(group.clone(), opts.clone());
                    ev.restore(&restore_log(&inner, &tenant, &name));
                    Arc::new(Mutex::new(ev))
                })
                .clone();
            eval_tenant(&inner, &tenant, ev, next).await;
        }
        metrics::GROUP_EVALUATION_SECONDS.observe(started.elapsed().as_secs_f64());
        next += interval;
        let now = Timestamp::now().as_millis();
        if now >= next + interval {
            let missed = (now - next) / interval;
            metrics::GROUP_ITERATIONS_MISSED.inc_by(missed as u64);
            tracing::warn!(group = %name, missed, "rule group evaluation slower than its interval");
            next += missed * interval;
        }
    }
    evaluators
        .into_iter()
        .filter_map(|(t, ev)| {
            Arc::try_unwrap(ev)
                .ok()
                .map(|m| (t, m.into_inner().expect("evaluator lock")))
        })
        .collect()
}

/// Evaluates one tenant's group at `ts_ms` and publishes the output.
async fn eval_tenant(inner: &Arc<Inner>, tenant: &str, ev: Arc<Mutex<GroupEvaluator>>, ts_ms: i64) {
    let q = TenantQuery {
        tenant: tenant.to_string(),
        window: inner.windows.get_or_create(tenant),
        engine: inner.engine.clone(),
        logs: inner.query_engine.clone(),
        rt: tokio::runtime::Handle::current(),
    };
    let res = tokio::task::spawn_blocking(move || {
        let mut ev = ev.lock().expect("evaluator lock");
        let out = ev.eval(&q, ts_ms);
        (out, ev.api_group())
    })
    .await;
    let (out, api) = match res {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, tenant, "rule group evaluation panicked");
            metrics::GROUP_EVALUATIONS
                .with_label_values(&["error"])
                .inc();
            return;
        }
    };
    let outcome = if out.errors.is_empty() { "ok" } else { "error" };
    metrics::GROUP_EVALUATIONS
        .with_label_values(&[outcome])
        .inc();
    for (rule, e) in &out.errors {
        tracing::debug!(tenant, group = %api.name, rule, error = %e, "rule evaluation failed");
    }
    inner.board.set(tenant, api);
    publish_output(inner, tenant, &out).await;
}

/// Publishes an evaluation's transitions and samples, retrying until they are durable
/// or the service stops.
async fn publish_output(inner: &Arc<Inner>, tenant: &str, out: &EvalOutput) {
    let envs = output_envelopes(tenant, out);
    if envs.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(200);
    let stop = inner.stop.subscribe();
    loop {
        match inner.log.publish(&envs).await {
            Ok(()) => break,
            Err(e) => {
                metrics::PUBLISH_RETRIES.inc();
                if *stop.borrow() {
                    tracing::error!(error = %e, tenant, "rule output not published; the next start recomputes it");
                    return;
                }
                tracing::warn!(error = %e, tenant, "publishing rule output failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    for t in &out.transitions {
        let to = match t.to {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        metrics::ALERT_TRANSITIONS.with_label_values(&[to]).inc();
    }
    metrics::RECORDED_SAMPLES.inc_by(out.samples.len() as u64);
}

/// One record per transition (alerts topic) and per series (metrics topic).
fn output_envelopes(tenant: &str, out: &EvalOutput) -> Vec<Envelope> {
    let now = Timestamp::now();
    let mut envs = Vec::with_capacity(out.transitions.len() + out.samples.len());
    for t in &out.transitions {
        envs.push(Envelope::new(
            tenant,
            SOURCE,
            now,
            Payload::AlertTransition(t.clone()),
        ));
    }
    let mut by_series: BTreeMap<&Labels, Vec<argus_schemas::Sample>> = BTreeMap::new();
    for s in &out.samples {
        by_series
            .entry(&s.labels)
            .or_default()
            .push(argus_schemas::Sample {
                timestamp_ms: s.t_ms,
                value: s.value,
            });
    }
    for (labels, samples) in by_series {
        let t = samples
            .last()
            .map_or(now, |s| Timestamp::from_millis(s.timestamp_ms));
        envs.push(Envelope::new(
            tenant,
            SOURCE,
            t,
            Payload::MetricSamples(MetricSamples {
                labels: labels.clone(),
                samples,
            }),
        ));
    }
    envs
}

/// Runs one tenant's rule queries: PromQL over its window, LogQL on the query engine.
struct TenantQuery {
    tenant: String,
    window: Arc<MetricWindow>,
    engine: Arc<Engine>,
    logs: Option<Arc<argus_query::engine::Engine>>,
    rt: tokio::runtime::Handle,
}

impl QueryFn for TenantQuery {
    fn instant(&self, expr: &RuleExpr, t_ms: i64) -> Result<Vec<Sample>, RulesError> {
        match expr {
            RuleExpr::PromQL { expr, .. } => {
                match self.engine.instant_expr(&*self.window, expr, t_ms)? {
                    Value::Vector(v) => Ok(v),
                    Value::Scalar(t, v) => Ok(vec![Sample {
                        labels: Labels::new(),
                        t_ms: t,
                        value: v,
                    }]),
                    _ => Err(RulesError::Eval(
                        "rule result is not a vector or scalar".into(),
                    )),
                }
            }
            RuleExpr::LogQL { text, expr } => {
                let Some(engine) = &self.logs else {
                    return Err(RulesError::Eval(
                        "LogQL rules need the query service, which is not running here".into(),
                    ));
                };
                self.rt
                    .block_on(logql_instant(engine, &self.tenant, text, expr, t_ms))
            }
        }
    }

    fn record(&self, samples: &[Sample]) {
        for s in samples {
            self.window.append_samples(&s.labels, [(s.t_ms, s.value)]);
        }
    }
}

/// Runs a LogQL rule expression as an instant query of `tenant` at `t_ms` on the
/// query engine, as Loki's ruler does: a vector, or a scalar as one sample without
/// labels; anything else is an error. Shared with the unit-test runner.
pub async fn logql_instant(
    engine: &argus_query::engine::Engine,
    tenant: &str,
    text: &str,
    expr: &argus_query::logql::ast::Expr,
    t_ms: i64,
) -> Result<Vec<Sample>, RulesError> {
    let t_ns = t_ms.saturating_mul(1_000_000);
    let params = argus_query::engine::QueryParams {
        tenant: tenant.to_string(),
        query: text.to_string(),
        kind: argus_query::engine::QueryKind::Instant,
        start: t_ns,
        end: t_ns,
        step: 0,
        interval: 0,
        limit: 100,
        direction: argus_query::store::Direction::Backward,
    };
    let resp = engine.query_expr(expr, &params).await?;
    match resp.data {
        argus_query::engine::QueryData::Vector(v) => Ok(v
            .into_iter()
            .map(|s| Sample {
                labels: s.labels,
                t_ms: s.ts,
                value: s.value,
            })
            .collect()),
        argus_query::engine::QueryData::Scalar(t, v) => Ok(vec![Sample {
            labels: Labels::new(),
            t_ms: t,
            value: v,
        }]),
        _ => Err(RulesError::Eval(
            "rule result is not a vector or scalar".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_offset_by_the_group_hash() {
        let interval = 60_000;
        let h = 12_345 + 7 * interval as u64;
        // offset 12.345 s past each minute
        assert_eq!(eval_timestamp(120_000, interval, h), 72_345);
        assert_eq!(eval_timestamp(132_345, interval, h), 132_345);
        assert_eq!(eval_timestamp(132_344, interval, h), 72_345);
        // Stable per group, different between groups.
        assert_eq!(group_hash("g", "a.yml"), group_hash("g", "a.yml"));
        assert_ne!(group_hash("g", "a.yml"), group_hash("g", "b.yml"));
    }
}
