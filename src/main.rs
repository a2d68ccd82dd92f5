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
    /// Run the rule engine alone, against Kafka.
    Rules(Common),
    /// Run the notifier alone, against Kafka.
    Notifier(Common),
    /// Run the query service alone, against Kafka and ClickHouse.
    Query(Common),
    /// Check a configuration file and print the resolved settings.
    CheckConfig { file: PathBuf },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Component {
    All,
    Ingest,
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
        Cmd::Rules(_) | Cmd::Notifier(_) | Cmd::Query(_) => {
            eprintln!(
                "argus: this component cannot run alone yet: the rule engine, notifier and query service \
                 are being built (see the README's status); use `argus run` or `argus ingest`"
            );
            return ExitCode::from(2);
        }
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
    let app = server::router(state)
        .merge(argus_ingest::events_api::router(log.clone()))
        .merge(argus_ingest::loki_push::router(log.clone()))
        .merge(argus_ingest::remote_write::router(log.clone()))
        .merge(argus_ingest::findings::router(log.clone()));
    // Collectors with sockets of their own bind before readiness, so a bad address or a
    // port in use stops the start.
    let (stop_collectors, collectors_stopped) = tokio::sync::watch::channel(false);
    let mut collectors = Vec::new();
    if let Some(cfg) = s.ingest.syslog.clone() {
        let server = argus_ingest::syslog::SyslogServer::bind(cfg)
            .await
            .context("starting the syslog receiver (ingest.syslog)")?;
        tracing::info!(udp = ?server.udp_addr(), tcp = ?server.tcp_addr(), "syslog receiver listening");
        let (log, rx) = (log.clone(), collectors_stopped.clone());
        collectors.push(tokio::spawn(async move {
            server.run(log, rx).await.map_err(|e| e.to_string())
        }));
    }
    if let Some(cfg) = s.ingest.tail.clone() {
        let tailer =
            argus_ingest::tail::Tailer::new(cfg).context("starting file tailing (ingest.tail)")?;
        let (log, rx) = (log.clone(), collectors_stopped.clone());
        collectors.push(tokio::spawn(async move {
            tailer.run(log, rx).await.map_err(|e| e.to_string())
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
    log.close().await.context("flushing the event log")?;
    tracing::info!("argus stopped cleanly");
    Ok(())
}
