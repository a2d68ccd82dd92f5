//! The syslog receiver end to end: real UDP and TCP sockets on 127.0.0.1:0, an embedded
//! event log in a temporary directory, records read back from `argus.logs`.

use std::time::Duration;

use argus_bus::EventLog;
use argus_ingest::syslog::{SyslogConfig, SyslogServer};
use argus_schemas::{Envelope, LogEntry, Payload, topics};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

mod common;

async fn log() -> (EventLog, tempfile::TempDir) {
    common::temp_log().await
}

async fn entries(log: &EventLog) -> Vec<Envelope> {
    log.read(topics::LOGS, 0, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|r| argus_schemas::decode(&r.value).unwrap())
        .collect()
}

/// Waits until `n` records are on the log (or fails after 10 s).
async fn wait_for(log: &EventLog, n: usize) -> Vec<Envelope> {
    for _ in 0..200 {
        let got = entries(log).await;
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = entries(log).await;
    panic!("expected {n} records, got {}: {got:#?}", got.len());
}

fn entry(e: &Envelope) -> &LogEntry {
    match &e.payload {
        Payload::LogEntry(l) => l,
        other => panic!("not a log entry: {other:?}"),
    }
}

fn by_line<'a>(got: &'a [Envelope], line: &str) -> &'a LogEntry {
    got.iter()
        .map(entry)
        .find(|l| l.line == line)
        .unwrap_or_else(|| panic!("no entry with line {line:?} in {got:#?}"))
}

fn ns(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_and_tcp_with_both_framings() {
    let (log, _dir) = log().await;
    let cfg = SyslogConfig {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        tenant: "net-ops".into(),
        max_message_bytes: 256,
        batch_wait: Duration::from_millis(20),
        ..Default::default()
    };
    let server = SyslogServer::bind(cfg).await.unwrap();
    let udp_addr = server.udp_addr().unwrap();
    let tcp_addr = server.tcp_addr().unwrap();
    assert_ne!(udp_addr.port(), 0);
    assert_ne!(tcp_addr.port(), 0);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server.run(log.clone(), stopped));

    // UDP: one RFC 5424 message with structured data, one BSD line without hostname.
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(
        "<134>1 2024-05-06T07:08:09.123456+02:00 lb-01 haproxy 1234 HTTPLOG [req@41058 path=\"/a\\\"b\" status=\"503\"] \u{FEFF}backend down".as_bytes(),
        udp_addr,
    )
    .await
    .unwrap();
    udp.send_to(b"<4>May  6 05:00:00 kernel: link eth0 down\n", udp_addr)
        .await
        .unwrap();

    // TCP: octet-counted and LF/NUL-framed messages mixed on one connection, one
    // malformed, one too long.
    let mut tcp = TcpStream::connect(tcp_addr).await.unwrap();
    let counted = "<30>1 - db-2 postgres - - - checkpoint complete";
    let long = format!("<14>1 - h app - - - {}", "x".repeat(400));
    let stream = format!(
        "{} {counted}<77>May  6 05:00:01 db-2 cron[77]: job started\n\
         <13>Mai 6 05:00:02 h a: not a month\r\n\
         {long}\n\
         <14>1 - h2 - - - - nul framed\0",
        counted.len()
    );
    tcp.write_all(stream.as_bytes()).await.unwrap();
    tcp.flush().await.unwrap();

    let got = wait_for(&log, 7).await;
    assert_eq!(got.len(), 7, "{got:#?}");
    assert!(
        got.iter()
            .all(|e| e.tenant == "net-ops" && e.source == "syslog")
    );

    let l = by_line(&got, "backend down");
    assert_eq!(
        l.labels.to_string(),
        r#"{app="haproxy", facility="local0", host="lb-01", job="syslog", severity="info"}"#
    );
    assert_eq!(
        l.structured_metadata.to_string(),
        r#"{msgid="HTTPLOG", procid="1234", sd_req_41058_path="/a\"b", sd_req_41058_status="503"}"#
    );
    assert_eq!(l.timestamp.0, ns("2024-05-06T05:08:09.123456Z"));

    let l = by_line(&got, "link eth0 down");
    assert_eq!(
        l.labels.to_string(),
        r#"{app="kernel", facility="kern", host="127.0.0.1", job="syslog", severity="warning"}"#
    );
    assert!(l.structured_metadata.is_empty());

    let l = by_line(&got, "checkpoint complete");
    assert_eq!(
        l.labels.to_string(),
        r#"{app="postgres", facility="daemon", host="db-2", job="syslog", severity="info"}"#
    );
    // No TIMESTAMP: the receive time, which is recent.
    let age = argus_schemas::Timestamp::now().0 - l.timestamp.0;
    assert!((0..60_000_000_000).contains(&age), "age {age} ns");

    let l = by_line(&got, "job started");
    assert_eq!(
        l.labels.to_string(),
        r#"{app="cron", facility="cron", host="db-2", job="syslog", severity="notice"}"#
    );
    assert_eq!(l.structured_metadata.get("procid"), Some("77"));

    let l = by_line(&got, "<13>Mai 6 05:00:02 h a: not a month");
    assert_eq!(
        l.labels.to_string(),
        r#"{host="127.0.0.1", job="syslog", malformed="true"}"#
    );
    let err = l.structured_metadata.get("parse_error").unwrap();
    assert!(err.starts_with("column 5: "), "{err}");

    let l = got
        .iter()
        .map(entry)
        .find(|l| l.structured_metadata.get("truncated") == Some("true"))
        .expect("a truncated entry");
    assert_eq!(l.line.len(), 256 - "<14>1 - h app - - - ".len());
    assert_eq!(l.labels.get("host"), Some("h"));

    let l = by_line(&got, "nul framed");
    assert_eq!(l.labels.get("host"), Some("h2"));
    assert_eq!(l.labels.get("app"), None);

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("serve stops")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_partial_message_at_close_and_shutdown_flushes() {
    let (log, _dir) = log().await;
    let cfg = SyslogConfig {
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        // Long enough that only shutdown publishes the batch.
        batch_wait: Duration::from_secs(3600),
        ..Default::default()
    };
    let server = SyslogServer::bind(cfg).await.unwrap();
    let addr = server.tcp_addr().unwrap();
    assert_eq!(server.udp_addr(), None);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server.run(log.clone(), stopped));

    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"<11>1 2024-01-02T03:04:05Z web nginx - - - first\n<11>1 - web nginx - - - last, no newline")
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    drop(tcp);
    // Give the connection time to read to the end before stopping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        entries(&log).await.is_empty(),
        "published before the batch was due"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("serve stops")
        .unwrap()
        .unwrap();
    let got = entries(&log).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let l = by_line(&got, "first");
    assert_eq!(l.timestamp.0, ns("2024-01-02T03:04:05Z"));
    assert_eq!(
        l.labels.to_string(),
        r#"{app="nginx", facility="user", host="web", job="syslog", severity="err"}"#
    );
    by_line(&got, "last, no newline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_log_drops_udp_beyond_the_queue_and_reports_at_shutdown() {
    use argus_ingest::metrics::SYSLOG_DROPPED;
    let (log, _dir) = log().await;
    // A closed log refuses every publish.
    log.close().await.unwrap();
    let cfg = SyslogConfig {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        batch_size: 1,
        max_pending: 2,
        batch_wait: Duration::from_millis(10),
        shutdown_grace: Duration::from_millis(200),
        ..Default::default()
    };
    let server = SyslogServer::bind(cfg).await.unwrap();
    let addr = server.udp_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server.run(log.clone(), stopped));

    let full = SYSLOG_DROPPED.with_label_values(&["queue_full"]);
    let at_shutdown = SYSLOG_DROPPED.with_label_values(&["shutdown"]);
    let (full0, shutdown0) = (full.get(), at_shutdown.get());
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..20 {
        udp.send_to(format!("<13>1 - h a - - - m{i}").as_bytes(), addr)
            .await
            .unwrap();
        // Let the writer take the first message into its (failing) batch.
        tokio::time::sleep(Duration::from_millis(if i == 0 { 100 } else { 5 })).await;
    }
    // One in the retried batch, two queued, the rest dropped.
    for _ in 0..200 {
        if full.get() - full0 >= 17 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(full.get() - full0, 17);

    stop.send(true).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("serve stops")
        .unwrap();
    match r {
        Err(argus_ingest::syslog::SyslogError::Unpublished(3)) => {}
        other => panic!("expected 3 unpublished, got {other:?}"),
    }
    assert_eq!(at_shutdown.get() - shutdown0, 3);
}
