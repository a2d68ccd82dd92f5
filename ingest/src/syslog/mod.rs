//! The syslog receiver: RFC 5424 and RFC 3164 messages over UDP and TCP, as rsyslog,
//! syslog-ng, network devices and `logger` send them.
//!
//! This module owns the sockets, the framing ([`framing`]), the parsers ([`parse`]), the
//! mapping of a message to a `log_entry` record, batching, and what happens when the
//! event log is unavailable.
//!
//! **Transports.** UDP: one message per datagram. TCP: octet-counting (`LEN SP MSG`,
//! RFC 6587) and non-transparent framing (LF, or NUL) auto-detected per message.
//!
//! **Records.** Each message becomes one `log_entry` (source `syslog`, tenant from the
//! config) with stream labels `{job="syslog", host, app, facility, severity}`: `host` is
//! HOSTNAME, or the sender's IP address when the message has none; `app` is APP-NAME or
//! the RFC 3164 TAG, left out when absent. These are the values Promtail's syslog target
//! exposes as `__syslog_message_hostname`, `…_app_name`, `…_facility`, `…_severity`.
//! PROCID, MSGID and structured data would make too many streams, so they go to the
//! entry's structured metadata: `procid`, `msgid`, and `sd_<SD-ID>_<PARAM-NAME>` with
//! every character outside `[A-Za-z0-9_]` replaced by `_` (`sd_origin_32473_ip`); a
//! parameter repeated within an element keeps all its values joined by `,`. The line is
//! MSG (BOM removed); the timestamp is the message's, or the receive time when it has
//! none (NILVALUE).
//!
//! **Malformed messages are kept, not dropped.** A message that does not parse becomes an
//! entry `{job="syslog", malformed="true", host=<sender IP>}` whose line is the raw text
//! (invalid UTF-8 replaced), timestamped at receipt, with the error (field and column) in
//! structured metadata `parse_error`; counted in
//! `argus_ingest_rejected_total{collector="syslog", reason}` with reason `pri`,
//! `version`, `timestamp`, `header` or `structured_data`.
//!
//! **Size limit.** Messages longer than `max_message_bytes` (default 64 KiB) are
//! **truncated, not rejected**: the first `max_message_bytes` bytes are kept, the entry
//! gets structured metadata `truncated="true"`, and
//! `argus_ingest_syslog_truncated_total{transport}` counts it. The rest of the message is
//! skipped, so a TCP connection never buffers more than one message of that size.
//!
//! **Batching and backpressure.** Messages go through a queue of `max_pending` entries
//! to one writer that publishes batches of up to `batch_size` entries, or whatever
//! arrived within `batch_wait` of the first. When publishing fails, the writer keeps the
//! batch and retries it with exponential backoff (100 ms doubling to 10 s), and stops
//! taking from the queue meanwhile. Once the queue is full, UDP messages are dropped and
//! counted in `argus_ingest_syslog_dropped_total{reason="queue_full"}` (UDP has no way
//! to push back), while TCP connections stop reading, so the kernel's TCP window pushes
//! back on the sender (rsyslog and syslog-ng then queue on their side). Memory is bounded
//! by `max_pending + batch_size` entries plus one partial message per connection.
//!
//! **Shutdown** (the watch channel turns `true`, or its sender is dropped): the sockets
//! close, whatever is queued is published with retries for up to `shutdown_grace` (10 s), and anything still
//! unpublished then is counted in `argus_ingest_syslog_dropped_total{reason="shutdown"}`
//! and reported as [`SyslogError::Unpublished`]. Syslog has no acknowledgements, so data
//! in flight in kernel buffers at shutdown is lost, as with any syslog receiver.

pub mod framing;
pub mod parse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use argus_schemas::duration::serde_duration;
use argus_schemas::{Envelope, Labels, LogEntry, Payload, Timestamp};

use crate::metrics::{
    RECEIVED, REJECTED, SYSLOG_CONNECTIONS, SYSLOG_DROPPED, SYSLOG_MESSAGES,
    SYSLOG_PUBLISH_FAILURES, SYSLOG_TRUNCATED,
};
use framing::Framer;
pub use parse::{Context, Format, LegacyZone, ParseError, SdElement, SyslogMessage};

const COLLECTOR: &str = "syslog";
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const TCP_READ_BUFFER: usize = 16 * 1024;

/// `syslog:` in the config file. Every field is optional; the defaults are below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// UDP address to listen on, e.g. `0.0.0.0:514`. Default: none (no UDP).
    pub udp: Option<SocketAddr>,
    /// TCP address to listen on, e.g. `0.0.0.0:601`. Default: none (no TCP).
    pub tcp: Option<SocketAddr>,
    /// Tenant of every record. Default `default`.
    pub tenant: String,
    /// Longest message kept whole; longer ones are truncated to this. Default 65536.
    pub max_message_bytes: usize,
    /// Most entries per publish. Default 1000.
    pub batch_size: usize,
    /// Longest an entry waits for its batch to fill. Default `100ms`.
    #[serde(with = "serde_duration")]
    pub batch_wait: Duration,
    /// Entries queued for the writer before UDP drops and TCP stops reading.
    /// Default 10000.
    pub max_pending: usize,
    /// Zone of RFC 3164 timestamps, which carry none: `UTC`, `local` (this machine's, as
    /// rsyslog does) or an offset like `+08:00`. Default `UTC`.
    pub rfc3164_timezone: String,
    /// How long shutdown keeps retrying to publish what is queued. Default `10s`.
    #[serde(with = "serde_duration")]
    pub shutdown_grace: Duration,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            udp: None,
            tcp: None,
            tenant: "default".into(),
            max_message_bytes: 64 * 1024,
            batch_size: 1000,
            batch_wait: Duration::from_millis(100),
            max_pending: 10_000,
            rfc3164_timezone: "UTC".into(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("syslog: invalid configuration: {0}")]
    Config(String),
    #[error("syslog: cannot listen on {proto} {addr}: {source}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "syslog: {0} message(s) could not be written to the event log before shutdown and were dropped"
    )]
    Unpublished(usize),
}

/// What every receiving task needs.
struct Shared {
    tenant: String,
    zone: LegacyZone,
    max: usize,
}

/// Bound sockets, not yet serving: [`SyslogServer::bind`], read the addresses (useful
/// with port 0), then [`SyslogServer::run`].
pub struct SyslogServer {
    cfg: SyslogConfig,
    zone: LegacyZone,
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
}

/// Binds the configured sockets and serves until shutdown.
pub async fn serve(
    cfg: SyslogConfig,
    log: argus_bus::EventLog,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    SyslogServer::bind(cfg).await?.run(log, shutdown).await
}

impl SyslogServer {
    /// Checks the config and binds the sockets.
    pub async fn bind(cfg: SyslogConfig) -> Result<SyslogServer, SyslogError> {
        if cfg.udp.is_none() && cfg.tcp.is_none() {
            return Err(SyslogError::Config(
                "neither `udp` nor `tcp` is set: nothing to listen on".into(),
            ));
        }
        argus_schemas::validate_tenant(&cfg.tenant)
            .map_err(|m| SyslogError::Config(format!("tenant {:?}: {m}", cfg.tenant)))?;
        for (name, v) in [
            ("max_message_bytes", cfg.max_message_bytes),
            ("batch_size", cfg.batch_size),
            ("max_pending", cfg.max_pending),
        ] {
            if v == 0 {
                return Err(SyslogError::Config(format!("`{name}` must be at least 1")));
            }
        }
        let zone = LegacyZone::parse(&cfg.rfc3164_timezone)
            .map_err(|m| SyslogError::Config(format!("rfc3164_timezone: {m}")))?;
        let udp = match cfg.udp {
            Some(addr) => {
                Some(
                    UdpSocket::bind(addr)
                        .await
                        .map_err(|source| SyslogError::Bind {
                            proto: "udp",
                            addr,
                            source,
                        })?,
                )
            }
            None => None,
        };
        let tcp = match cfg.tcp {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| SyslogError::Bind {
                            proto: "tcp",
                            addr,
                            source,
                        })?,
                )
            }
            None => None,
        };
        Ok(SyslogServer {
            cfg,
            zone,
            udp,
            tcp,
        })
    }

    /// The bound UDP address (the real port when the config said 0).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Receives and publishes until shutdown; see the module docs for what happens to
    /// queued messages then.
    pub async fn run(
        self,
        log: argus_bus::EventLog,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), SyslogError> {
        let shared = Arc::new(Shared {
            tenant: self.cfg.tenant.clone(),
            zone: self.zone,
            max: self.cfg.max_message_bytes,
        });
        let (tx, mut rx) = mpsc::channel::<Envelope>(self.cfg.max_pending);
        let mut tasks = JoinSet::new();
        if let Some(sock) = self.udp {
            tasks.spawn(udp_loop(sock, tx.clone(), shared.clone(), shutdown.clone()));
        }
        if let Some(listener) = self.tcp {
            tasks.spawn(tcp_accept_loop(
                listener,
                tx.clone(),
                shared.clone(),
                shutdown.clone(),
            ));
        }
        drop(tx);

        let batch_size = self.cfg.batch_size;
        let mut batch: Vec<Envelope> = Vec::with_capacity(batch_size.min(10_000));
        let mut deadline: Option<Instant> = None;
        let mut stopping = false;
        while !stopping {
            tokio::select! {
                biased;
                _ = signalled(&mut shutdown) => stopping = true,
                _ = sleep_until_opt(deadline), if deadline.is_some() => {
                    stopping = !flush(&log, &mut batch, &mut shutdown).await;
                    deadline = None;
                }
                m = rx.recv() => match m {
                    Some(env) => {
                        if batch.is_empty() {
                            deadline = Some(Instant::now() + self.cfg.batch_wait);
                        }
                        batch.push(env);
                        if batch.len() >= batch_size {
                            stopping = !flush(&log, &mut batch, &mut shutdown).await;
                            deadline = None;
                        }
                    }
                    None => stopping = true,
                },
            }
        }

        tasks.abort_all();
        rx.close();
        while let Ok(env) = rx.try_recv() {
            batch.push(env);
        }
        let give_up = Instant::now() + self.cfg.shutdown_grace;
        let mut lost = 0;
        let mut rest = batch;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(batch_size));
            let mut chunk = rest;
            rest = tail;
            if !flush_until(&log, &mut chunk, give_up).await {
                lost = chunk.len() + rest.len();
                break;
            }
        }
        while tasks.join_next().await.is_some() {}
        if lost > 0 {
            SYSLOG_DROPPED
                .with_label_values(&["shutdown"])
                .inc_by(lost as u64);
            return Err(SyslogError::Unpublished(lost));
        }
        Ok(())
    }
}

/// Resolves once shutdown is asked for (or the sender is gone).
async fn signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d).await;
    }
}

fn published(n: usize) {
    RECEIVED
        .with_label_values(&[COLLECTOR, "log_entry"])
        .inc_by(n as u64);
}

/// Publishes the batch, retrying with backoff until it succeeds (true) or shutdown is
/// asked for (false; the batch is kept for the shutdown path).
async fn flush(
    log: &argus_bus::EventLog,
    batch: &mut Vec<Envelope>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut backoff = BACKOFF_START;
    loop {
        if batch.is_empty() {
            return true;
        }
        match log.publish(batch).await {
            Ok(()) => {
                published(batch.len());
                batch.clear();
                return true;
            }
            Err(e) => {
                SYSLOG_PUBLISH_FAILURES.inc();
                tracing::warn!(
                    error = %e,
                    pending = batch.len(),
                    retry_in = ?backoff,
                    "syslog: event log unavailable; holding the batch and retrying"
                );
                tokio::select! {
                    biased;
                    _ = signalled(shutdown) => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Publishes the batch, retrying with backoff until `give_up`.
async fn flush_until(
    log: &argus_bus::EventLog,
    batch: &mut Vec<Envelope>,
    give_up: Instant,
) -> bool {
    let mut backoff = BACKOFF_START;
    loop {
        match log.publish(batch).await {
            Ok(()) => {
                published(batch.len());
                batch.clear();
                return true;
            }
            Err(e) => {
                SYSLOG_PUBLISH_FAILURES.inc();
                let now = Instant::now();
                if now >= give_up {
                    tracing::error!(error = %e, pending = batch.len(), "syslog: giving up publishing at shutdown");
                    return false;
                }
                tokio::time::sleep(backoff.min(give_up - now)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn udp_loop(
    sock: UdpSocket,
    tx: mpsc::Sender<Envelope>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // One byte more than the limit tells a datagram that was longer from one that fit.
    let mut buf = vec![0u8; shared.max.saturating_add(1).min(u16::MAX as usize + 1)];
    loop {
        let r = tokio::select! {
            biased;
            _ = signalled(&mut shutdown) => return,
            r = sock.recv_from(&mut buf) => r,
        };
        let (n, peer) = match r {
            Ok(x) => x,
            Err(e) => {
                // E.g. ICMP port unreachable reported on a later receive: not fatal.
                tracing::debug!(error = %e, "syslog: UDP receive failed");
                continue;
            }
        };
        let truncated = n > shared.max;
        let data = &buf[..n.min(shared.max)];
        if data.iter().all(|b| matches!(b, b'\n' | b'\r' | 0)) {
            continue;
        }
        let env = to_envelope(data, truncated, peer, Utc::now(), "udp", &shared);
        match tx.try_send(env) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                SYSLOG_DROPPED.with_label_values(&["queue_full"]).inc();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

async fn tcp_accept_loop(
    listener: TcpListener,
    tx: mpsc::Sender<Envelope>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Dropping the set at shutdown closes every connection.
    let mut conns = JoinSet::new();
    loop {
        let r = tokio::select! {
            biased;
            _ = signalled(&mut shutdown) => return,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => r,
        };
        match r {
            Ok((stream, peer)) => {
                conns.spawn(tcp_connection(
                    stream,
                    peer,
                    tx.clone(),
                    shared.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "syslog: TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

struct ConnectionGauge;

impl ConnectionGauge {
    fn new() -> Self {
        SYSLOG_CONNECTIONS.inc();
        ConnectionGauge
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        SYSLOG_CONNECTIONS.dec();
    }
}

async fn tcp_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    tx: mpsc::Sender<Envelope>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _gauge = ConnectionGauge::new();
    let mut framer = Framer::new(shared.max);
    let mut buf = vec![0u8; TCP_READ_BUFFER];
    loop {
        let r = tokio::select! {
            biased;
            _ = signalled(&mut shutdown) => return,
            r = stream.read(&mut buf) => r,
        };
        match r {
            Ok(0) => break,
            Ok(n) => framer.push(&buf[..n]),
            Err(e) => {
                tracing::debug!(error = %e, %peer, "syslog: TCP read failed");
                break;
            }
        }
        while let Some(frame) = framer.next_frame() {
            let env = to_envelope(
                &frame.data,
                frame.truncated,
                peer,
                Utc::now(),
                "tcp",
                &shared,
            );
            // Waits while the queue is full: this connection stops reading meanwhile.
            tokio::select! {
                biased;
                _ = signalled(&mut shutdown) => return,
                r = tx.send(env) => if r.is_err() { return },
            }
        }
    }
    if let Some(frame) = framer.finish() {
        let env = to_envelope(
            &frame.data,
            frame.truncated,
            peer,
            Utc::now(),
            "tcp",
            &shared,
        );
        let _ = tx.send(env).await;
    }
}

/// `[A-Za-z0-9_]`, everything else replaced by `_`.
fn label_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The record of one received message (parsed or malformed).
fn to_envelope(
    raw: &[u8],
    truncated: bool,
    peer: SocketAddr,
    received: DateTime<Utc>,
    transport: &'static str,
    shared: &Shared,
) -> Envelope {
    let received_ns = received
        .timestamp_nanos_opt()
        .unwrap_or_else(|| Timestamp::now().0);
    let ctx = Context {
        now: received,
        zone: shared.zone,
    };
    let mut labels = Labels::new();
    let mut md = Labels::new();
    labels.insert("job", "syslog");
    if truncated {
        SYSLOG_TRUNCATED.with_label_values(&[transport]).inc();
        md.insert("truncated", "true");
    }
    let (line, ts, format) = match parse::parse(raw, &ctx) {
        Ok(m) => {
            labels.insert(
                "host",
                m.hostname.clone().unwrap_or_else(|| peer.ip().to_string()),
            );
            if let Some(app) = &m.app_name {
                labels.insert("app", app.as_str());
            }
            labels.insert("facility", m.facility_name());
            labels.insert("severity", m.severity_name());
            if let Some(p) = &m.procid {
                md.insert("procid", p.as_str());
            }
            if let Some(id) = &m.msgid {
                md.insert("msgid", id.as_str());
            }
            for el in &m.structured_data {
                let prefix = format!("sd_{}_", label_safe(&el.id));
                for (name, value) in &el.params {
                    let key = format!("{prefix}{}", label_safe(name));
                    let v = match md.get(&key) {
                        Some(old) => format!("{old},{value}"),
                        None => value.clone(),
                    };
                    md.insert(key, v);
                }
            }
            let format = match m.format {
                Format::Rfc5424 => "rfc5424",
                Format::Rfc3164 => "rfc3164",
            };
            (m.message, m.timestamp.unwrap_or(received_ns), format)
        }
        Err(e) => {
            REJECTED.with_label_values(&[COLLECTOR, e.reason]).inc();
            labels.insert("malformed", "true");
            labels.insert("host", peer.ip().to_string());
            md.insert("parse_error", e.to_string());
            let mut end = raw.len();
            while end > 0 && matches!(raw[end - 1], b'\n' | b'\r' | 0) {
                end -= 1;
            }
            let line = String::from_utf8_lossy(&raw[..end]).into_owned();
            (line, received_ns, "malformed")
        }
    };
    SYSLOG_MESSAGES
        .with_label_values(&[transport, format])
        .inc();
    let entry = LogEntry {
        labels,
        timestamp: Timestamp(ts),
        line,
        structured_metadata: md,
    };
    Envelope::new(
        shared.tenant.as_str(),
        COLLECTOR,
        Timestamp(ts),
        Payload::LogEntry(entry),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            tenant: "ops".into(),
            zone: LegacyZone::Fixed(chrono::FixedOffset::east_opt(0).unwrap()),
            max: 1024,
        }
    }

    fn entry(e: &Envelope) -> &LogEntry {
        match &e.payload {
            Payload::LogEntry(l) => l,
            _ => panic!("not a log entry"),
        }
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: SyslogConfig = serde_json::from_str(r#"{"udp":"127.0.0.1:5514"}"#).unwrap();
        assert_eq!(c.udp, Some("127.0.0.1:5514".parse().unwrap()));
        assert_eq!(c.tcp, None);
        assert_eq!(c.tenant, "default");
        assert_eq!(c.max_message_bytes, 65536);
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.batch_wait, Duration::from_millis(100));
        let c: SyslogConfig = serde_json::from_str(r#"{"batch_wait":"250ms"}"#).unwrap();
        assert_eq!(c.batch_wait, Duration::from_millis(250));
        let e = serde_json::from_str::<SyslogConfig>(r#"{"port":514}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[tokio::test]
    async fn bind_refuses_bad_configs() {
        let e = SyslogServer::bind(SyslogConfig::default())
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("neither"), "{e}");
        let local = Some("127.0.0.1:0".parse().unwrap());
        for cfg in [
            SyslogConfig {
                udp: local,
                tenant: "bad tenant".into(),
                ..Default::default()
            },
            SyslogConfig {
                udp: local,
                max_message_bytes: 0,
                ..Default::default()
            },
            SyslogConfig {
                udp: local,
                rfc3164_timezone: "Mars".into(),
                ..Default::default()
            },
        ] {
            let e = SyslogServer::bind(cfg).await.err().unwrap();
            assert!(matches!(e, SyslogError::Config(_)), "{e}");
        }
    }

    #[test]
    fn entry_of_a_parsed_message() {
        let peer: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        let now = Utc::now();
        let env = to_envelope(
            br#"<165>1 2024-03-01T10:00:00Z - app 77 ID1 [a@1 x="1" x="2"][b-c y="z"] hi"#,
            true,
            peer,
            now,
            "udp",
            &shared(),
        );
        assert_eq!(
            (env.tenant.as_str(), env.source.as_str()),
            ("ops", "syslog")
        );
        let l = entry(&env);
        assert_eq!(
            l.labels.to_string(),
            r#"{app="app", facility="local4", host="192.0.2.9", job="syslog", severity="notice"}"#
        );
        assert_eq!(
            l.structured_metadata.to_string(),
            r#"{msgid="ID1", procid="77", sd_a_1_x="1,2", sd_b_c_y="z", truncated="true"}"#
        );
        assert_eq!(l.line, "hi");
        assert_eq!(env.event_time, l.timestamp);
    }

    #[test]
    fn entry_of_a_malformed_message() {
        let peer: SocketAddr = "[2001:db8::1]:514".parse().unwrap();
        let now = Utc::now();
        let env = to_envelope(b"<999>garbage\n", false, peer, now, "tcp", &shared());
        let l = entry(&env);
        assert_eq!(
            l.labels.to_string(),
            r#"{host="2001:db8::1", job="syslog", malformed="true"}"#
        );
        assert_eq!(l.line, "<999>garbage");
        assert_eq!(
            l.structured_metadata.get("parse_error"),
            Some("column 2: PRI 999 is out of range 0..=191")
        );
        assert_eq!(l.timestamp.0, now.timestamp_nanos_opt().unwrap());
    }
}
