//! Helpers shared by the collectors' integration tests.

use argus_bus::{BusConfig, EventLog};

/// An embedded event log in a fresh temporary folder (kept alive by the returned guard).
pub async fn temp_log() -> (EventLog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&BusConfig::embedded_at(dir.path()))
        .await
        .unwrap();
    (log, dir)
}
