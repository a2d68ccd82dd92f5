//! The monitor configurations Argus ships, in NPD's own format (files under
//! `defaults/`, embedded at build time). Their condition types and reasons are NPD's
//! (`KernelDeadlock`, `ReadonlyFilesystem`, `OOMKilling`, `TaskHung`, `DockerHung`, …);
//! the patterns were written for Argus from the kernel's message formats, so that both
//! older and newer kernels match (e.g. `Out of memory: Killed process …` and
//! `BUG: kernel NULL pointer dereference, address: …`). Additions to NPD's set:
//! `XfsError`, `MCEHardwareError`, `ContainerdHung`, and the post-5.x I/O error and
//! NULL-dereference formats.

use super::config::{ConfigError, LogMonitorConfig, parse_log_monitor_config};

/// `kernel-monitor.json`: kmsg; conditions `KernelDeadlock`, `XfsShutdown`,
/// `CperHardwareErrorFatal`.
pub const KERNEL_MONITOR: &str = include_str!("defaults/kernel-monitor.json");
/// `readonly-monitor.json`: kmsg; condition `ReadonlyFilesystem`.
pub const READONLY_MONITOR: &str = include_str!("defaults/readonly-monitor.json");
/// `docker-monitor.json`: journald (`dockerd`); condition `CorruptDockerOverlay2`.
pub const DOCKER_MONITOR: &str = include_str!("defaults/docker-monitor.json");

/// Every shipped configuration as (file name, JSON).
pub const ALL: [(&str, &str); 3] = [
    ("kernel-monitor.json", KERNEL_MONITOR),
    ("readonly-monitor.json", READONLY_MONITOR),
    ("docker-monitor.json", DOCKER_MONITOR),
];

/// The shipped `kernel-monitor.json`, parsed.
pub fn kernel_monitor() -> Result<LogMonitorConfig, ConfigError> {
    parse_log_monitor_config("kernel-monitor.json", KERNEL_MONITOR)
}

/// The shipped `readonly-monitor.json`, parsed.
pub fn readonly_monitor() -> Result<LogMonitorConfig, ConfigError> {
    parse_log_monitor_config("readonly-monitor.json", READONLY_MONITOR)
}

/// The shipped `docker-monitor.json`, parsed.
pub fn docker_monitor() -> Result<LogMonitorConfig, ConfigError> {
    parse_log_monitor_config("docker-monitor.json", DOCKER_MONITOR)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_default_parses() {
        for (name, json) in super::ALL {
            if let Err(e) = super::parse_log_monitor_config(name, json) {
                panic!("{e}");
            }
        }
    }
}
