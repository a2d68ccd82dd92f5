//! `argus`: every component in one process (`argus run`), or one component alone
//! against Kafka (`argus ingest --config FILE`), plus tools.

mod config;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat, Settings};

/// mimalloc: the pipeline allocates many small, short-lived strings (labels, records);
/// glibc's allocator spent a quarter of the notifier benchmark's CPU on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long in-flight requests may take to finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Parser)]
#[command(
    name = "argus",
    version,
    about = "Event-sourced observability and alerting pipeline"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// YAML configuration file; without one, the embedded defaults.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Data directory of the embedded log and store (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTP listen address (overrides `listen`); port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Log format (overrides `log.format`).
    #[arg(long)]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every component in one process.
    Run(Common),
    /// Run the collectors alone, against Kafka (the distributed deployment).
    Ingest(Common),
    /// The rule engine: run it alone against Kafka, or check and unit-test rule files.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
    /// Run the notifier alone, against Kafka.
    Notifier(Common),
    /// Run the query service alone, against Kafka and ClickHouse.
    Query(Common),
    /// Check a configuration file and print the resolved settings.
    CheckConfig { file: PathBuf },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Run the rule engine alone, against Kafka.
    Run(Common),
    /// Check rule files as `promtool check rules` does (syntax, PromQL/LogQL, templates,
    /// duplicates); errors as `file:line:col: message`; exit 1 on errors.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Exit 3 when the duplicate-rule lint finds something.
        #[arg(long)]
        lint_fatal: bool,
    },
    /// Run rule unit-test files in promtool's format; exit 1 when a test fails.
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// PromQL arithmetic of Prometheus 2.x (closed range windows, plain summation),
        /// to reproduce promtool 2.x exactly; 3.x by default.
        #[arg(long)]
        prometheus2: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Component {
    All,
    Ingest,
    Query,
    Rules,
    Notifier,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (common, component) = match cli.cmd {
        Cmd::CheckConfig { file } => {
            return match Config::load(&file) {
                Ok(c) => {
                    let s = c.settings(None, None);
                    println!(
                        "{}: ok ({} event log)",
                        file.display(),
                        if s.bus.kafka.is_some() {
                            "kafka"
                        } else {
                            "embedded"
                        }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            };
        }
        Cmd::Run(c) => (c, Component::All),
        Cmd::Ingest(c) => (c, Component::Ingest),
        Cmd::Query(c) => (c, Component::Query),
        Cmd::Rules {
            cmd: RulesCmd::Check { files, lint_fatal },
        } => {
            let opts = argus_rules::tools::CheckOptions {
                lint_fatal,
                ..Default::default()
            };
            return report(argus_rules::tools::check::check(&files, &opts));
        }
        Cmd::Rules {
            cmd: RulesCmd::Test { files, prometheus2 },
        } => {
            let opts = argus_rules::tools::TestOptions {
                compat: if prometheus2 {
                    argus_rules::promql::Compat::Prometheus2
                } else {
                    argus_rules::promql::Compat::Prometheus3
                },
            };
            return report(argus_rules::tools::unittest::run(&files, &opts));
        }
        Cmd::Rules {
            cmd: RulesCmd::Run(c),
        } => (c, Component::Rules),
        Cmd::Notifier(c) => (c, Component::Notifier),
    };
    let cfg = match &common.config {
        Some(f) => Config::load(f),
        None => Ok(Config::default()),
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("argus: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if component != Component::All && cfg.bus.kafka.is_none() {
        eprintln!(
            "argus: `argus {component:?}` runs one component of the distributed deployment; its config needs bus.kafka (use `argus run` for the embedded default)"
        );
        return ExitCode::from(2);
    }
    if component == Component::Query && cfg.clickhouse.is_none() {
        eprintln!(
            "argus: `argus query` runs the query service of the distributed deployment; its config needs clickhouse.url"
        );
        return ExitCode::from(2);
    }
    let mut settings = cfg.settings(common.data_dir, common.listen);
    if let Some(f) = common.log_format {
        settings.log.format = f;
    }
    init_tracing(&settings);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("argus: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(settings, component)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "argus stopped");
            eprintln!("argus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a rules tool report as promtool does and turns its status into the exit code.
fn report(r: argus_rules::tools::Report) -> ExitCode {
    if let Err(e) = r.write_to_std() {
        eprintln!("argus: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::from(u8::try_from(r.exit_code).unwrap_or(1))
}

fn init_tracing(s: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&s.log.level));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match s.log.format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().flatten_event(true).init(),
    }
}

async fn run(s: Settings, component: Component) -> anyhow::Result<()> {
    let log = argus_bus::EventLog::open(&s.bus).await.with_context(|| {
        format!(
            "opening the {} event log",
            if s.bus.kafka.is_some() {
                "kafka"
            } else {
                "embedded"
            }
        )
    })?;
    let ready = Arc::new(AtomicBool::new(false));
    let state = server::AppState {
        log: log.clone(),
        ready: ready.clone(),
    };
    let with_ingest = matches!(component, Component::All | Component::Ingest);
    let with_query = matches!(component, Component::All | Component::Query);
    let with_rules = matches!(component, Component::All | Component::Rules);
    let mut app = server::router(state);
    if with_ingest {
        app = app
            .merge(argus_ingest::events_api::router(log.clone()))
            .merge(argus_ingest::loki_push::router(log.clone()))
            .merge(argus_ingest::remote_write::router(log.clone()))
            .merge(argus_ingest::findings::router(log.clone()));
    }
    // The query service: the log store, its writer (event log → store) and Loki's API.
    let (stop_services, services_stopped) = tokio::sync::watch::channel(false);
    let mut services = Vec::new();
    let mut log_engine = None;
    if with_query {
        let store = open_store(&s).await?;
        let engine = Arc::new(argus_query::engine::Engine::new(
            store.clone(),
            s.query.limits.to_limits(),
        ));
        log_engine = Some(engine.clone());
        app = app.merge(argus_query::api::router(argus_query::api::ApiState {
            engine,
        }));
        let (log, st, cfg, rx) = (
            log.clone(),
            store.clone(),
            s.query.writer.clone(),
            services_stopped.clone(),
        );
        services.push(tokio::spawn(async move {
            argus_query::writer::run(log, st, cfg, rx)
                .await
                .map_err(|e| format!("log writer: {e}"))
        }));
        services.push(tokio::spawn(retention_loop(
            store,
            s.query.retention.clone(),
            services_stopped.clone(),
        )));
    }
    // The rule engine, silences, the Alertmanager API and the notifier.
    let mut silence_follower = None;
    let with_notifier = matches!(component, Component::All | Component::Notifier);
    if with_rules || with_notifier {
        let inhibitor = s.alertmanager.validate().context("alertmanager config")?;
        let silences = argus_rules::silences::SilenceService::new(
            log.clone(),
            argus_rules::silences::SilenceOptions {
                retention: s.alertmanager.silence_retention,
                ..Default::default()
            },
        );
        silences
            .replay()
            .await
            .context("replaying silences from the event log")?;
        silence_follower = Some(silences.follow(s.alertmanager.silence_sync_interval));
        let store = Arc::new(argus_rules::alert_store::AlertStore::new(
            silences,
            inhibitor,
            Arc::new(s.alertmanager.route.clone()),
        ));
        let notifier_cfg = if with_notifier {
            let mut n = s.notifier.validate(None).context("notifier config")?;
            if n.settings.instance.is_none() {
                n.settings.instance = Some(argus_notifier::service::default_instance(&s.data_dir));
            }
            store.set_routing(n.routes.clone());
            if !n.file.inhibit_rules.is_empty() {
                store.set_inhibitor(
                    argus_rules::inhibit::Inhibitor::from_configs(&n.file.inhibit_rules)
                        .context("notifier config: inhibit_rules")?,
                );
            }
            Some(n)
        } else {
            None
        };
        let am_api = argus_rules::am_api::AmApi::new(
            store.clone(),
            argus_rules::am_api::AmApiSettings::from_config(&s.alertmanager),
        );
        if with_rules {
            let svc = argus_rules::service::RulesService::start(
                log.clone(),
                log_engine.clone(),
                s.rules.clone(),
                Some(store.clone()),
            )
            .await
            .context("starting the rule engine (rules)")?;
            app = app
                .merge(argus_rules::prom_api::router(svc.prom_api()))
                .merge(am_api.with_sink(svc.alert_sink()).router());
            let rx = services_stopped.clone();
            services.push(tokio::spawn(async move {
                svc.run(rx).await.map_err(|e| format!("rule engine: {e}"))
            }));
        } else {
            // The notifier alone keeps its alert store from argus.alerts.
            let feed = argus_rules::alert_feed::AlertFeed::start(
                log.clone(),
                store.clone(),
                services_stopped.clone(),
            )
            .await
            .context("replaying alerts from the event log")?;
            app = app.merge(am_api.with_sink(feed.sink()).router());
        }
        if let Some(n) = notifier_cfg {
            let notifier = argus_notifier::service::NotifierService::start(
                log.clone(),
                n,
                store,
                argus_schemas::DEFAULT_TENANT,
                services_stopped.clone(),
            )
            .await
            .context("starting the notifier")?;
            app = app.merge(notifier.router());
        }
    }
    // Collectors with sockets of their own bind before readiness, so a bad address or a
    // port in use stops the start.
    let (stop_collectors, collectors_stopped) = tokio::sync::watch::channel(false);
    let mut collectors = Vec::new();
    if let Some(cfg) = s.ingest.syslog.clone().filter(|_| with_ingest) {
        let server = argus_ingest::syslog::SyslogServer::bind(cfg)
            .await
            .context("starting the syslog receiver (ingest.syslog)")?;
        tracing::info!(udp = ?server.udp_addr(), tcp = ?server.tcp_addr(), "syslog receiver listening");
        let (log, rx) = (log.clone(), collectors_stopped.clone());
        collectors.push(tokio::spawn(async move {
            server.run(log, rx).await.map_err(|e| e.to_string())
        }));
    }
    if let Some(cfg) = s.ingest.tail.clone().filter(|_| with_ingest) {
        let tailer =
            argus_ingest::tail::Tailer::new(cfg).context("starting file tailing (ingest.tail)")?;
        let (log, rx) = (log.clone(), collectors_stopped.clone());
        collectors.push(tokio::spawn(async move {
            tailer.run(log, rx).await.map_err(|e| e.to_string())
        }));
    }
    if let Some(cfg) = s.ingest.scrape.clone().filter(|_| with_ingest) {
        let scraper = argus_ingest::scrape::Scraper::new(&cfg)
            .context("starting the scraper (ingest.scrape)")?;
        let (log, rx) = (log.clone(), collectors_stopped.clone());
        collectors.push(tokio::spawn(async move {
            scraper.run(log, rx).await.map_err(|e| e.to_string())
        }));
    }
    if let Some(cfg) = s.ingest.node_problems.clone().filter(|_| with_ingest) {
        let runner = argus_ingest::node_problems::NodeProblemsRunner::new(cfg)
            .context("starting node problem monitors (ingest.node_problems)")?;
        let (log, rx) = (log.clone(), collectors_stopped.clone());
        collectors.push(tokio::spawn(async move {
            runner.run(log, rx).await.map_err(|e| e.to_string())
        }));
    }
    let listener = tokio::net::TcpListener::bind(s.listen)
        .await
        .with_context(|| format!("listening on {}", s.listen))?;
    let addr = listener.local_addr()?;
    // The address goes to stdout, for people and for scripts that start argus on port 0.
    println!("argus listening on http://{addr}");
    tracing::info!(%addr, backend = log.backend(), component = ?component, data_dir = %s.data_dir.display(), clickhouse = ?s.clickhouse.as_ref().map(|c| &c.url), "argus started");
    ready.store(true, std::sync::atomic::Ordering::Relaxed);

    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping input, flushing"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: stopping input, flushing"),
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ready_flag = ready.clone();
    // In-flight requests finish (their records become durable) before the server returns.
    let server = tokio::spawn(
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        })
        .into_future(),
    );
    shutdown.await;
    ready_flag.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = stop_tx.send(());
    // A client that never finishes its request does not hold the shutdown up: what it
    // sent was not acknowledged, so nothing acknowledged is lost.
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(r) => r.context("HTTP server task")??,
        Err(_) => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still open after the grace period; closing them")
        }
    }
    let _ = stop_collectors.send(true);
    for c in collectors {
        match c.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "collector stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "collector task failed"),
        }
    }
    let _ = stop_services.send(true);
    if let Some(f) = silence_follower {
        f.abort();
    }
    for t in services {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "service stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "service task failed"),
        }
    }
    log.close().await.context("flushing the event log")?;
    tracing::info!("argus stopped cleanly");
    Ok(())
}

/// The log store: ClickHouse when configured, else the embedded store in the data
/// directory.
async fn open_store(s: &Settings) -> anyhow::Result<Arc<dyn argus_query::store::LogStore>> {
    match &s.clickhouse {
        Some(cfg) => {
            let store = argus_query::store::clickhouse::ClickHouseStore::connect(cfg.clone())
                .await
                .with_context(|| format!("connecting to ClickHouse at {}", cfg.url))?;
            store
                .ensure_schema()
                .await
                .context("creating the ClickHouse log schema")?;
            tracing::info!(url = %cfg.url, database = %cfg.database, features = ?store.features(), "log store: clickhouse");
            Ok(Arc::new(store))
        }
        None => {
            let path = s.data_dir.join("logs.db");
            let store = argus_query::store::embedded::EmbeddedStore::open(&path)
                .await
                .with_context(|| format!("opening the embedded log store {}", path.display()))?;
            tracing::info!(path = %path.display(), "log store: embedded");
            Ok(Arc::new(store))
        }
    }
}

/// Deletes expired log lines every `retention.interval` (when any retention is set).
async fn retention_loop(
    store: Arc<dyn argus_query::store::LogStore>,
    cfg: argus_query::config::RetentionConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    if cfg.default.is_none() && cfg.tenants.is_empty() {
        return Ok(());
    }
    let tenants: std::collections::HashMap<_, _> = cfg.tenants.clone().into_iter().collect();
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        if let Err(e) = store.apply_retention(&tenants, cfg.default, now).await {
            tracing::warn!(error = %e, "log retention failed; retrying at the next interval");
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}
