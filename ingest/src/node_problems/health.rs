//! Health checks of the node's daemons, as node-problem-detector's `health-checker`
//! plugin does them, without its repair step.
//!
//! This module owns the `health_checks` configuration, the probes, and the NPD
//! custom-plugin configuration each check reports through. A check is a permanent rule
//! of a one-rule [`CustomPluginConfig`], so its conditions follow NPD's custom plugin
//! semantics exactly ([`super::custom`]): at start the condition is published `False`
//! with its default reason; a failing probe sets it `True` with the check's reason and
//! the failure as message (a `warn` event); a later passing probe clears it back to
//! `False` (an `info` event); nothing is published while the state does not change.
//! Condition types, reasons and sources are NPD's own (`config/health-checker-*.json`,
//! `config/custom-plugin-monitor.json`):
//!
//! | check | monitor | condition | default reason | failing reason |
//! |---|---|---|---|---|
//! | `kubelet` | `health-checker` | `KubeletUnhealthy` | `KubeletIsHealthy` | `KubeletUnhealthy` |
//! | `container_runtime` | `health-checker` | `ContainerRuntimeUnhealthy` | `ContainerRuntimeIsHealthy` | `ContainerdUnhealthy` / `DockerUnhealthy` / `CrioUnhealthy` |
//! | `ntp` | `ntp-custom-plugin-monitor` | `NTPProblem` | `NTPIsUp` | `NTPIsDown` |
//!
//! Probes (none needs root):
//! - **kubelet**: `GET <url>` (default `http://127.0.0.1:10248/healthz`), healthy on
//!   status 200 within the timeout, as NPD's health-checker; plain `http://` only.
//! - **container runtime**: with `command` set (e.g. `["crictl", "--timeout=10s",
//!   "pods"]`), healthy when it exits 0 within the timeout; otherwise the runtime's
//!   socket: for docker `GET /_ping` over the socket must answer 200, for containerd
//!   and CRI-O the socket must accept a connection (the daemon is up and serving; a
//!   CRI call needs gRPC, which `command` with `crictl` provides).
//! - **ntp**: `adjtimex(2)` read-only (modes 0): synchronised when the kernel's clock
//!   is not `TIME_ERROR`/`STA_UNSYNC` and its maximum error is under 16 s, the test
//!   `timedatectl`'s `NTPSynchronized` uses; or `method: timedatectl`, which runs
//!   `timedatectl show -p NTPSynchronized --value` and wants `yes`.
//!
//! A probe that times out is a failure (NPD's health-checker exits 1 then), not
//! `Unknown`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use argus_schemas::duration::serde_duration;

use super::config::{CustomPluginConfig, DefaultCondition, PluginRule, RuleType};
use super::custom::{PluginResult, PluginStatus};
use crate::metrics;

/// NPD's `max_output_length` for health-checker configurations is 80; a failure is
/// more useful whole, so health checks keep up to this many bytes.
const MAX_MESSAGE: usize = 200;
/// The most of an HTTP answer read to find its status line.
const MAX_HTTP_HEAD: usize = 4096;

/// `health_checks:`: each check runs when its section is present (`kubelet: {}`
/// enables it with the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthChecksConfig {
    #[serde(default)]
    pub kubelet: Option<KubeletCheckConfig>,
    #[serde(default)]
    pub container_runtime: Option<ContainerRuntimeCheckConfig>,
    #[serde(default)]
    pub ntp: Option<NtpCheckConfig>,
}

/// `health_checks.kubelet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeletCheckConfig {
    /// Default `http://127.0.0.1:10248/healthz`.
    #[serde(default = "default_kubelet_url")]
    pub url: String,
    /// Default `10s` (NPD's `invoke_interval`).
    #[serde(default = "default_interval", with = "serde_duration")]
    pub interval: Duration,
    /// Default `10s` (NPD's `--health-check-timeout` for the kubelet).
    #[serde(default = "default_timeout", with = "serde_duration")]
    pub timeout: Duration,
}

impl Default for KubeletCheckConfig {
    fn default() -> Self {
        KubeletCheckConfig {
            url: default_kubelet_url(),
            interval: default_interval(),
            timeout: default_timeout(),
        }
    }
}

/// Which container runtime `health_checks.container_runtime` checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    #[default]
    Containerd,
    Docker,
    Crio,
}

impl Runtime {
    fn default_socket(self) -> &'static str {
        match self {
            Runtime::Containerd => "/run/containerd/containerd.sock",
            Runtime::Docker => "/var/run/docker.sock",
            Runtime::Crio => "/var/run/crio/crio.sock",
        }
    }

    /// NPD's failing reason (`ContainerdUnhealthy`, `DockerUnhealthy`).
    fn reason(self) -> &'static str {
        match self {
            Runtime::Containerd => "ContainerdUnhealthy",
            Runtime::Docker => "DockerUnhealthy",
            Runtime::Crio => "CrioUnhealthy",
        }
    }
}

/// `health_checks.container_runtime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRuntimeCheckConfig {
    /// `containerd` (default), `docker` or `crio`.
    #[serde(default)]
    pub runtime: Runtime,
    /// The runtime's socket. Default: the runtime's usual one
    /// (`/run/containerd/containerd.sock`, `/var/run/docker.sock`,
    /// `/var/run/crio/crio.sock`).
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// A command whose exit status is the check instead of the socket probe, e.g.
    /// `["crictl", "--timeout=10s", "pods"]`. Default: none.
    #[serde(default)]
    pub command: Vec<String>,
    /// Default `10s`.
    #[serde(default = "default_interval", with = "serde_duration")]
    pub interval: Duration,
    /// Default `10s`.
    #[serde(default = "default_timeout", with = "serde_duration")]
    pub timeout: Duration,
}

impl Default for ContainerRuntimeCheckConfig {
    fn default() -> Self {
        ContainerRuntimeCheckConfig {
            runtime: Runtime::default(),
            socket: None,
            command: Vec::new(),
            interval: default_interval(),
            timeout: default_timeout(),
        }
    }
}

/// How `health_checks.ntp` learns whether the clock is synchronised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NtpMethod {
    /// `adjtimex(2)` read-only: works everywhere, without root or systemd.
    #[default]
    Adjtimex,
    /// `timedatectl show -p NTPSynchronized --value` (needs systemd-timedated).
    Timedatectl,
}

/// `health_checks.ntp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtpCheckConfig {
    /// `adjtimex` (default) or `timedatectl`.
    #[serde(default)]
    pub method: NtpMethod,
    /// Default `30s` (NPD's NTP plugin interval).
    #[serde(default = "default_ntp_interval", with = "serde_duration")]
    pub interval: Duration,
    /// Default `5s`.
    #[serde(default = "default_ntp_timeout", with = "serde_duration")]
    pub timeout: Duration,
}

impl Default for NtpCheckConfig {
    fn default() -> Self {
        NtpCheckConfig {
            method: NtpMethod::default(),
            interval: default_ntp_interval(),
            timeout: default_ntp_timeout(),
        }
    }
}

fn default_kubelet_url() -> String {
    "http://127.0.0.1:10248/healthz".into()
}
fn default_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_ntp_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_ntp_timeout() -> Duration {
    Duration::from_secs(5)
}

/// What one check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `GET http://{authority}{path}`, healthy on 200.
    Http {
        url: String,
        authority: String,
        path: String,
    },
    /// `GET /_ping` over a unix socket, healthy on 200.
    DockerSocket(PathBuf),
    /// The unix socket accepts a connection.
    SocketConnect(PathBuf),
    /// The command exits 0.
    Command(Vec<String>),
    Adjtimex,
    Timedatectl,
}

/// A validated health check: what to probe, how often, and the NPD configuration its
/// condition follows.
#[derive(Debug, Clone)]
pub(crate) struct HealthCheck {
    /// `kubelet`, `container_runtime` or `ntp` (metric label and log field).
    pub name: &'static str,
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub plugin: CustomPluginConfig,
}

fn check_err(key: &str, msg: impl std::fmt::Display) -> String {
    format!("`health_checks.{key}`: {msg}")
}

fn positive(key: &str, d: Duration) -> Result<(), String> {
    if d.is_zero() {
        return Err(check_err(key, "must be more than 0"));
    }
    Ok(())
}

/// `http://host[:port][/path]` → (authority, path); only plain HTTP.
fn split_http_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} is not an http:// URL (https is not supported)"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(format!("{url:?} has no usable host"));
    }
    Ok((authority.to_string(), path.to_string()))
}

/// `[source, condition, default reason, default message, failing reason]`.
type Names<'a> = [&'a str; 5];

fn plugin_config(
    names: Names<'_>,
    name: &str,
    interval: Duration,
    timeout: Duration,
) -> CustomPluginConfig {
    let [source, condition, default_reason, default_message, reason] = names;
    CustomPluginConfig {
        invoke_interval: interval,
        timeout,
        max_output_length: MAX_MESSAGE,
        concurrency: 1,
        enable_message_change_based_condition_update: false,
        skip_initial_status: false,
        source: source.into(),
        metrics_reporting: true,
        conditions: vec![DefaultCondition {
            condition_type: condition.into(),
            reason: default_reason.into(),
            message: default_message.into(),
        }],
        rules: vec![PluginRule {
            rule_type: RuleType::Permanent,
            condition: condition.into(),
            reason: reason.into(),
            path: format!("builtin:{name}"),
            args: Vec::new(),
            timeout: None,
            invoke_interval: None,
        }],
    }
}

impl HealthChecksConfig {
    /// The enabled checks, validated; the error names the key.
    pub(crate) fn checks(&self) -> Result<Vec<HealthCheck>, String> {
        let mut out = Vec::new();
        if let Some(k) = &self.kubelet {
            positive("kubelet.interval", k.interval)?;
            positive("kubelet.timeout", k.timeout)?;
            let (authority, path) =
                split_http_url(&k.url).map_err(|m| check_err("kubelet.url", m))?;
            out.push(HealthCheck {
                name: "kubelet",
                probe: Probe::Http {
                    url: k.url.clone(),
                    authority,
                    path,
                },
                interval: k.interval,
                timeout: k.timeout,
                plugin: plugin_config(
                    [
                        "health-checker",
                        "KubeletUnhealthy",
                        "KubeletIsHealthy",
                        "kubelet on the node is functioning properly",
                        "KubeletUnhealthy",
                    ],
                    "kubelet",
                    k.interval,
                    k.timeout,
                ),
            });
        }
        if let Some(c) = &self.container_runtime {
            positive("container_runtime.interval", c.interval)?;
            positive("container_runtime.timeout", c.timeout)?;
            let probe = if !c.command.is_empty() {
                if c.command[0].is_empty() {
                    return Err(check_err("container_runtime.command[0]", "empty"));
                }
                Probe::Command(c.command.clone())
            } else {
                let socket = c
                    .socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(c.runtime.default_socket()));
                if socket.as_os_str().is_empty() {
                    return Err(check_err("container_runtime.socket", "empty"));
                }
                match c.runtime {
                    Runtime::Docker => Probe::DockerSocket(socket),
                    _ => Probe::SocketConnect(socket),
                }
            };
            out.push(HealthCheck {
                name: "container_runtime",
                probe,
                interval: c.interval,
                timeout: c.timeout,
                plugin: plugin_config(
                    [
                        "health-checker",
                        "ContainerRuntimeUnhealthy",
                        "ContainerRuntimeIsHealthy",
                        "Container runtime on the node is functioning properly",
                        c.runtime.reason(),
                    ],
                    "container_runtime",
                    c.interval,
                    c.timeout,
                ),
            });
        }
        if let Some(n) = &self.ntp {
            positive("ntp.interval", n.interval)?;
            positive("ntp.timeout", n.timeout)?;
            out.push(HealthCheck {
                name: "ntp",
                probe: match n.method {
                    NtpMethod::Adjtimex => Probe::Adjtimex,
                    NtpMethod::Timedatectl => Probe::Timedatectl,
                },
                interval: n.interval,
                timeout: n.timeout,
                plugin: plugin_config(
                    [
                        "ntp-custom-plugin-monitor",
                        "NTPProblem",
                        "NTPIsUp",
                        "ntp service is up",
                        "NTPIsDown",
                    ],
                    "ntp",
                    n.interval,
                    n.timeout,
                ),
            });
        }
        Ok(out)
    }
}

impl HealthCheck {
    /// Runs the probe once; the result is what the check's custom plugin rule observes
    /// (healthy → OK, anything else → NonOK with the failure as output).
    pub(crate) async fn run(&self) -> PluginResult {
        let verdict = match tokio::time::timeout(self.timeout, self.probe.run(self.timeout)).await {
            Ok(v) => v,
            Err(_) => Err(format!(
                "{} check timed out after {:?}",
                self.name, self.timeout
            )),
        };
        let (status, output, label) = match verdict {
            Ok(()) => (PluginStatus::Ok, String::new(), "healthy"),
            Err(m) => (PluginStatus::NonOk, m, "unhealthy"),
        };
        metrics::NODE_HEALTH_CHECKS
            .with_label_values(&[self.name, label])
            .inc();
        PluginResult {
            status,
            output: cut(&output, MAX_MESSAGE),
        }
    }
}

impl Probe {
    async fn run(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Probe::Http {
                url,
                authority,
                path,
            } => {
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                let status = http_get_status(stream, authority, path)
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                if status == 200 {
                    Ok(())
                } else {
                    Err(format!("GET {url}: HTTP status {status}"))
                }
            }
            Probe::DockerSocket(socket) => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|e| format!("docker socket {}: {e}", socket.display()))?;
                let status = http_get_status(stream, "docker", "/_ping")
                    .await
                    .map_err(|e| format!("docker /_ping: {e}"))?;
                if status == 200 {
                    Ok(())
                } else {
                    Err(format!("docker /_ping: HTTP status {status}"))
                }
            }
            Probe::SocketConnect(socket) => tokio::net::UnixStream::connect(socket)
                .await
                .map(drop)
                .map_err(|e| format!("runtime socket {}: {e}", socket.display())),
            Probe::Command(argv) => {
                let r = super::custom::run_plugin(&argv[0], &argv[1..], timeout, MAX_MESSAGE).await;
                match r.status {
                    PluginStatus::Ok => Ok(()),
                    _ if r.output.is_empty() => Err(format!("{} failed", argv.join(" "))),
                    _ => Err(format!("{} failed: {}", argv.join(" "), r.output)),
                }
            }
            Probe::Adjtimex => adjtimex_synced(),
            Probe::Timedatectl => {
                let args = ["show", "-p", "NTPSynchronized", "--value"].map(String::from);
                let r = super::custom::run_plugin("timedatectl", &args, timeout, 80).await;
                match (r.status, r.output.trim()) {
                    (PluginStatus::Ok, "yes") => Ok(()),
                    (PluginStatus::Ok, other) => {
                        Err(format!("timedatectl: NTPSynchronized={other}"))
                    }
                    (_, out) => Err(format!("timedatectl failed: {out}")),
                }
            }
        }
    }
}

/// Sends `GET path` and returns the answer's status code.
async fn http_get_status<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> Result<u16, String> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: argus-health-checker\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < MAX_HTTP_HEAD {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head)
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(head: &[u8]) -> Result<u16, String> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code
            .parse()
            .map_err(|_| format!("bad status line {:?}", line.trim())),
        _ if line.trim().is_empty() => Err("connection closed without an answer".into()),
        _ => Err(format!("not an HTTP answer: {:?}", line.trim())),
    }
}

/// The kernel's `STA_UNSYNC` status bit.
const STA_UNSYNC: i32 = 0x0040;
/// `adjtimex` returns this while the clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// systemd's threshold: a maximum error of 16 s or more means not synchronised.
const MAX_ERROR_US: libc::c_long = 16_000_000;

/// Whether the kernel's clock state means "synchronised", as systemd's `ntp_synced()`.
pub(crate) fn clock_synced(rc: i32, status: i32, maxerror_us: libc::c_long) -> Result<(), String> {
    if rc == TIME_ERROR || status & STA_UNSYNC != 0 {
        return Err("system clock is not synchronised (adjtimex: STA_UNSYNC)".into());
    }
    if maxerror_us >= MAX_ERROR_US {
        return Err(format!(
            "system clock is not synchronised (maximum error {} ms)",
            maxerror_us / 1000
        ));
    }
    Ok(())
}

fn adjtimex_synced() -> Result<(), String> {
    // SAFETY: a zeroed `timex` with `modes == 0` only reads the kernel's clock state;
    // the pointer is to a valid, writable struct for the duration of the call.
    let (rc, tx) = unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        let rc = libc::adjtimex(&mut tx);
        (rc, tx)
    };
    if rc < 0 {
        return Err(format!(
            "adjtimex failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    clock_synced(rc, tx.status, tx.maxerror)
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_http_url("http://127.0.0.1:10248/healthz").unwrap(),
            ("127.0.0.1:10248".to_string(), "/healthz".to_string())
        );
        assert_eq!(
            split_http_url("http://localhost").unwrap(),
            ("localhost".to_string(), "/".to_string())
        );
        assert!(split_http_url("https://127.0.0.1:10250/healthz").is_err());
        assert!(split_http_url("http:///healthz").is_err());
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Ok(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 500 Internal Server Error\r\nx"),
            Ok(500)
        );
        assert!(parse_status_line(b"").is_err());
        assert!(parse_status_line(b"SSH-2.0-OpenSSH\r\n").is_err());
    }

    #[test]
    fn clock_states() {
        assert!(clock_synced(0, 0x2001, 50_000).is_ok());
        assert!(clock_synced(5, 0x2001, 50_000).is_err());
        assert!(clock_synced(0, STA_UNSYNC, 50_000).is_err());
        assert!(clock_synced(0, 0, 16_000_000).is_err());
    }

    #[test]
    fn defaults_and_names() {
        let cfg: HealthChecksConfig = serde_json::from_str(
            r#"{"kubelet": {}, "container_runtime": {"runtime": "docker"}, "ntp": {}}"#,
        )
        .unwrap();
        let checks = cfg.checks().unwrap();
        assert_eq!(checks.len(), 3);
        assert_eq!(checks[0].interval, Duration::from_secs(10));
        assert_eq!(
            checks[1].probe,
            Probe::DockerSocket(PathBuf::from("/var/run/docker.sock"))
        );
        assert_eq!(checks[1].plugin.rules[0].reason, "DockerUnhealthy");
        assert_eq!(checks[2].plugin.conditions[0].condition_type, "NTPProblem");
        let bad: HealthChecksConfig =
            serde_json::from_str(r#"{"kubelet": {"url": "https://x/healthz"}}"#).unwrap();
        assert!(
            bad.checks()
                .unwrap_err()
                .contains("health_checks.kubelet.url")
        );
        assert!(
            serde_json::from_str::<HealthChecksConfig>(r#"{"kubelet": {"urll": "x"}}"#).is_err()
        );
    }
}
